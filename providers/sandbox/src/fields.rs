//! Field sets for server-side apply: paths into an object, the sets of paths a field manager
//! owns, their `fieldsV1` encoding, and the walks that compute them from objects.

use crate::schema::{ListType, Schema};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One step of a path: a field, an associative-list item by key, a set item by value, or an index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    Field(String),
    /// Compact JSON of the key fields, sorted by name: `{"name":"web"}`.
    Key(String),
    /// Compact JSON of the set item.
    Value(String),
    Index(usize),
}

impl Elem {
    fn encode(&self) -> String {
        match self {
            Elem::Field(name) => format!("f:{name}"),
            Elem::Key(json) => format!("k:{json}"),
            Elem::Value(json) => format!("v:{json}"),
            Elem::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Elem> {
        let (prefix, rest) = s.split_at_checked(2)?;
        Some(match prefix {
            "f:" => Elem::Field(rest.to_string()),
            "k:" => Elem::Key(rest.to_string()),
            "v:" => Elem::Value(rest.to_string()),
            "i:" => Elem::Index(rest.parse().ok()?),
            _ => return None,
        })
    }

    /// `.spec.ports[port=80]`-style rendering used in conflict messages.
    fn display(&self) -> String {
        match self {
            Elem::Field(name) => format!(".{name}"),
            Elem::Key(json) => {
                let keys: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            Elem::Value(json) => format!("[={json}]"),
            Elem::Index(i) => format!("[{i}]"),
        }
    }
}

pub type Path = Vec<Elem>;

pub fn display_path(path: &[Elem]) -> String {
    path.iter().map(Elem::display).collect()
}

/// A set of paths, as a tree: `members` are paths in the set, `children` hold deeper paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    members: BTreeSet<Elem>,
    children: BTreeMap<Elem, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    pub fn insert(&mut self, path: &[Elem]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[Elem]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Every path in the set, in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        let keys: BTreeSet<&Elem> = self.members.iter().chain(self.children.keys()).collect();
        for elem in keys {
            prefix.push(elem.clone());
            if self.members.contains(elem) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(elem) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for path in other.paths() {
            out.insert(&path);
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::default();
        for path in self.paths() {
            if !other.contains(&path) {
                out.insert(&path);
            }
        }
        out
    }

    /// Whether this set has any path at or below `path`.
    pub fn has_prefix(&self, path: &[Elem]) -> bool {
        match path {
            [] => !self.is_empty(),
            [last] => {
                self.members.contains(last)
                    || self.children.get(last).is_some_and(|c| !c.is_empty())
            }
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has_prefix(rest)),
        }
    }

    /// Whether the set tracks paths below `path` (so `path` itself is a container, such as a
    /// list item, whose own value is not compared).
    pub fn has_children(&self, path: &[Elem]) -> bool {
        match path {
            [] => !self.is_empty(),
            [last] => self.children.get(last).is_some_and(|c| !c.is_empty()),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|c| c.has_children(rest)),
        }
    }

    /// The `fieldsV1` JSON form.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        let keys: BTreeSet<&Elem> = self.members.iter().chain(self.children.keys()).collect();
        for elem in keys {
            let mut node = match self.children.get(elem).filter(|c| !c.is_empty()) {
                Some(child) => match child.to_json() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                None => Map::new(),
            };
            if self.members.contains(elem) && !node.is_empty() {
                node.insert(".".into(), Value::Object(Map::new()));
            }
            map.insert(elem.encode(), Value::Object(node));
        }
        Value::Object(map)
    }

    pub fn from_json(value: &Value) -> Option<FieldSet> {
        let mut set = FieldSet::default();
        for (key, child) in value.as_object()? {
            let elem = Elem::decode(key)?;
            let child_map = child.as_object()?;
            if child_map.is_empty() || child_map.contains_key(".") {
                set.members.insert(elem.clone());
            }
            let nested: Map<String, Value> = child_map
                .iter()
                .filter(|(k, _)| *k != ".")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !nested.is_empty() {
                set.children
                    .insert(elem, FieldSet::from_json(&Value::Object(nested))?);
            }
        }
        Some(set)
    }
}

/// The key element of an associative-list item; `None` if a key field is missing.
pub fn key_elem(item: &Value, keys: &[String]) -> Option<Elem> {
    let mut key = Map::new();
    for k in keys {
        key.insert(k.clone(), item.get(k)?.clone());
    }
    Some(Elem::Key(Value::Object(key).to_string()))
}

fn list_type(schema: Option<&Schema>) -> ListType {
    schema.map(|s| s.list_type.clone()).unwrap_or_default()
}

/// Whether a value is owned as one leaf rather than field by field.
fn is_leaf(value: &Value, schema: Option<&Schema>) -> bool {
    match value {
        Value::Object(map) => map.is_empty() || schema.is_some_and(|s| s.atomic_map),
        Value::Array(items) => items.is_empty() || list_type(schema) == ListType::Atomic,
        _ => true,
    }
}

/// The set of paths an object sets: leaves, plus associative-list items themselves.
pub fn fields_of(value: &Value, schema: &Schema) -> FieldSet {
    let mut set = FieldSet::default();
    collect(value, Some(schema), &mut Vec::new(), &mut set);
    set
}

fn collect(value: &Value, schema: Option<&Schema>, prefix: &mut Path, set: &mut FieldSet) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_schema = schema.and_then(|s| s.field(key));
                prefix.push(Elem::Field(key.clone()));
                if is_leaf(child, child_schema) {
                    set.insert(prefix);
                } else {
                    collect(child, child_schema, prefix, set);
                }
                prefix.pop();
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.items.as_deref());
            match list_type(schema) {
                ListType::Set => {
                    for item in items {
                        prefix.push(Elem::Value(item.to_string()));
                        set.insert(prefix);
                        prefix.pop();
                    }
                }
                ListType::Map(keys) => {
                    for (i, item) in items.iter().enumerate() {
                        prefix.push(key_elem(item, &keys).unwrap_or(Elem::Index(i)));
                        set.insert(prefix);
                        if !is_leaf(item, item_schema) {
                            collect(item, item_schema, prefix, set);
                        }
                        prefix.pop();
                    }
                }
                ListType::Atomic => set.insert(prefix),
            }
        }
        _ => set.insert(prefix),
    }
}

/// The value at a path, if present.
pub fn get<'a>(value: &'a Value, path: &[Elem], schema: Option<&Schema>) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    match first {
        Elem::Field(name) => get(value.get(name)?, rest, schema.and_then(|s| s.field(name))),
        Elem::Index(i) => get(
            value.get(*i)?,
            rest,
            schema.and_then(|s| s.items.as_deref()),
        ),
        Elem::Key(_) | Elem::Value(_) => {
            let index = find_item(value.as_array()?, first, schema)?;
            get(&value[index], rest, schema.and_then(|s| s.items.as_deref()))
        }
    }
}

fn find_item(items: &[Value], elem: &Elem, schema: Option<&Schema>) -> Option<usize> {
    match (elem, list_type(schema)) {
        (Elem::Key(_), ListType::Map(keys)) => items
            .iter()
            .position(|item| key_elem(item, &keys).as_ref() == Some(elem)),
        (Elem::Value(json), _) => items.iter().position(|item| &item.to_string() == json),
        (Elem::Index(i), _) => (*i < items.len()).then_some(*i),
        _ => None,
    }
}

/// Removes the field or list item at a path. Returns whether something was removed.
pub fn remove(value: &mut Value, path: &[Elem], schema: Option<&Schema>) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return match (first, value) {
            (Elem::Field(name), Value::Object(map)) => map.remove(name).is_some(),
            (_, Value::Array(items)) => match find_item(items, first, schema) {
                Some(i) => {
                    items.remove(i);
                    true
                }
                None => false,
            },
            _ => false,
        };
    }
    match first {
        Elem::Field(name) => match value.get_mut(name) {
            Some(child) => remove(child, rest, schema.and_then(|s| s.field(name))),
            None => false,
        },
        _ => {
            let Some(items) = value.as_array() else {
                return false;
            };
            match find_item(items, first, schema) {
                Some(i) => remove(&mut value[i], rest, schema.and_then(|s| s.items.as_deref())),
                None => false,
            }
        }
    }
}

/// Paths whose values differ between `old` and `new` (added or changed in `new`), and paths
/// of `old` that `new` no longer has.
pub fn changes(old: &Value, new: &Value, schema: &Schema) -> (FieldSet, FieldSet) {
    let new_fields = fields_of(new, schema);
    let old_fields = fields_of(old, schema);
    let mut changed = FieldSet::default();
    for path in new_fields.paths() {
        let before = get(old, &path, Some(schema));
        let differs = if new_fields.has_children(&path) {
            before.is_none()
        } else {
            before != get(new, &path, Some(schema))
        };
        if differs {
            changed.insert(&path);
        }
    }
    let mut removed = FieldSet::default();
    for path in old_fields.paths() {
        if get(new, &path, Some(schema)).is_none() {
            removed.insert(&path);
        }
    }
    (changed, removed)
}

/// Merges an applied configuration into a live object, by the schema's list semantics.
pub fn apply_merge(live: &mut Value, applied: &Value, schema: Option<&Schema>) {
    match (live, applied) {
        (Value::Object(live_map), Value::Object(applied_map))
            if !schema.is_some_and(|s| s.atomic_map) =>
        {
            for (key, applied_child) in applied_map {
                let child_schema = schema.and_then(|s| s.field(key));
                match live_map.get_mut(key) {
                    Some(live_child) => apply_merge(live_child, applied_child, child_schema),
                    None => {
                        live_map.insert(key.clone(), applied_child.clone());
                    }
                }
            }
        }
        (Value::Array(live_items), Value::Array(applied_items)) => {
            let item_schema = schema.and_then(|s| s.items.as_deref());
            match list_type(schema) {
                ListType::Atomic => *live_items = applied_items.clone(),
                ListType::Set => {
                    for item in applied_items {
                        if !live_items.contains(item) {
                            live_items.push(item.clone());
                        }
                    }
                }
                ListType::Map(keys) => {
                    for item in applied_items {
                        let key = key_elem(item, &keys);
                        match live_items
                            .iter_mut()
                            .find(|live| key.is_some() && key_elem(live, &keys) == key)
                        {
                            Some(live_item) => apply_merge(live_item, item, item_schema),
                            None => live_items.push(item.clone()),
                        }
                    }
                }
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::loose;
    use serde_json::json;

    fn deployment_schema() -> Schema {
        loose()
            .with_list(
                "spec.template.spec.containers",
                ListType::Map(vec!["name".into()]),
            )
            .with_list("metadata.finalizers", ListType::Set)
    }

    #[test]
    fn fields_v1_round_trip_and_shape() {
        let schema = deployment_schema();
        let obj = json!({"metadata": {"labels": {"app": "web"}, "finalizers": ["a"]},
                         "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "args": ["-x"]}]}}}});
        let set = fields_of(&obj, &schema);
        let encoded = set.to_json();
        assert_eq!(
            encoded,
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}, "f:labels": {"f:app": {}}},
                   "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                       "k:{\"name\":\"web\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}}}}}})
        );
        assert_eq!(FieldSet::from_json(&encoded).unwrap(), set);
        let image = vec![
            Elem::Field("spec".into()),
            Elem::Field("template".into()),
            Elem::Field("spec".into()),
            Elem::Field("containers".into()),
            Elem::Key("{\"name\":\"web\"}".into()),
            Elem::Field("image".into()),
        ];
        assert!(set.contains(&image));
        assert_eq!(get(&obj, &image, Some(&schema)), Some(&json!("nginx")));
        assert_eq!(
            display_path(&image),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
    }

    #[test]
    fn merge_changes_and_remove() {
        let schema = deployment_schema();
        let mut live = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let applied = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "b", "image": "z"}]}}}});
        let before = live.clone();
        apply_merge(&mut live, &applied, Some(&schema));
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][1]["image"],
            "z"
        );
        assert_eq!(live["spec"]["replicas"], 3);
        let (changed, removed) = changes(&before, &live, &schema);
        let changed: Vec<String> = changed.paths().iter().map(|p| display_path(p)).collect();
        assert_eq!(
            changed,
            vec![
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"b\"].image"
            ]
        );
        assert!(removed.is_empty());
        let item_a = vec![
            Elem::Field("spec".into()),
            Elem::Field("template".into()),
            Elem::Field("spec".into()),
            Elem::Field("containers".into()),
            Elem::Key("{\"name\":\"a\"}".into()),
        ];
        assert!(remove(&mut live, &item_a, Some(&schema)));
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
