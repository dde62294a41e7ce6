//! Structural schemas: CRD `openAPIV3Schema` enforcement (types, required, enums, patterns,
//! bounds, defaults, pruning) and the list/map semantics that patches and server-side apply
//! need, for custom resources and built-in kinds alike.

use crate::status::Cause;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How a list merges: replaced whole, as a set of scalars, or as a map keyed by item fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ListType {
    #[default]
    Atomic,
    Set,
    Map(Vec<String>),
}

/// One node of a structural schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub type_name: Option<String>,
    pub properties: BTreeMap<String, Schema>,
    pub additional: Option<Box<Schema>>,
    pub items: Option<Box<Schema>>,
    pub required: Vec<String>,
    pub enum_values: Vec<Value>,
    pub pattern: Option<Regex>,
    pub default: Option<Value>,
    pub nullable: bool,
    pub preserve_unknown: bool,
    pub int_or_string: bool,
    pub embedded_resource: bool,
    pub list_type: ListType,
    pub atomic_map: bool,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: bool,
    pub exclusive_maximum: bool,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub format: Option<String>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub all_of: Vec<Schema>,
}

/// A schema that keeps whatever it is given (built-in kinds, unknown subtrees).
pub fn loose() -> Schema {
    Schema {
        preserve_unknown: true,
        ..Schema::default()
    }
}

impl Schema {
    /// Parses an `openAPIV3Schema` document. Errors name the JSON path of the bad node.
    pub fn parse(doc: &Value, path: &str) -> Result<Schema, String> {
        let obj = doc
            .as_object()
            .ok_or_else(|| format!("{path}: must be an object"))?;
        let mut schema = Schema::default();
        let get_u64 = |key: &str| obj.get(key).and_then(Value::as_u64);
        schema.type_name = obj.get("type").and_then(Value::as_str).map(str::to_string);
        if let Some(t) = &schema.type_name
            && !matches!(
                t.as_str(),
                "object" | "array" | "string" | "integer" | "number" | "boolean"
            )
        {
            return Err(format!(
                "{path}.type: Unsupported value: {t:?}: supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
            ));
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                schema.properties.insert(
                    name.clone(),
                    Schema::parse(sub, &format!("{path}.properties[{name}]"))?,
                );
            }
        }
        match obj.get("additionalProperties") {
            Some(Value::Object(sub)) => {
                schema.additional = Some(Box::new(Schema::parse(
                    &Value::Object(sub.clone()),
                    &format!("{path}.additionalProperties"),
                )?));
            }
            Some(Value::Bool(true)) => schema.additional = Some(Box::new(loose())),
            _ => {}
        }
        if !schema.properties.is_empty() && schema.additional.is_some() {
            return Err(format!(
                "{path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
            ));
        }
        if let Some(items) = obj.get("items") {
            schema.items = Some(Box::new(Schema::parse(items, &format!("{path}.items"))?));
        }
        if schema.type_name.as_deref() == Some("array") && schema.items.is_none() {
            return Err(format!("{path}.items: Required value: must be specified"));
        }
        if let Some(req) = obj.get("required").and_then(Value::as_array) {
            schema.required = req
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        }
        if let Some(values) = obj.get("enum").and_then(Value::as_array) {
            schema.enum_values = values.clone();
        }
        if let Some(pattern) = obj.get("pattern").and_then(Value::as_str) {
            let regex = Regex::new(pattern)
                .map_err(|e| format!("{path}.pattern: Invalid value: {pattern:?}: {e}"))?;
            schema.pattern = Some(regex);
        }
        schema.default = obj.get("default").cloned();
        schema.nullable = obj
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        schema.preserve_unknown = obj
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        schema.int_or_string = obj
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        schema.embedded_resource = obj
            .get("x-kubernetes-embedded-resource")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        schema.list_type = match obj.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => {
                let keys: Vec<String> = obj
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if keys.is_empty() {
                    return Err(format!(
                        "{path}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
                    ));
                }
                ListType::Map(keys)
            }
            Some("atomic") | None => ListType::Atomic,
            Some(other) => {
                return Err(format!(
                    "{path}.x-kubernetes-list-type: Unsupported value: {other:?}: supported values: \"atomic\", \"map\", \"set\""
                ));
            }
        };
        schema.atomic_map =
            obj.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        schema.minimum = obj.get("minimum").and_then(Value::as_f64);
        schema.maximum = obj.get("maximum").and_then(Value::as_f64);
        schema.exclusive_minimum = obj
            .get("exclusiveMinimum")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        schema.exclusive_maximum = obj
            .get("exclusiveMaximum")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        schema.min_length = get_u64("minLength");
        schema.max_length = get_u64("maxLength");
        schema.min_items = get_u64("minItems");
        schema.max_items = get_u64("maxItems");
        schema.min_properties = get_u64("minProperties");
        schema.max_properties = get_u64("maxProperties");
        schema.format = obj
            .get("format")
            .and_then(Value::as_str)
            .map(str::to_string);
        for (key, target) in [
            ("anyOf", &mut schema.any_of),
            ("oneOf", &mut schema.one_of),
            ("allOf", &mut schema.all_of),
        ] {
            if let Some(list) = obj.get(key).and_then(Value::as_array) {
                for (i, sub) in list.iter().enumerate() {
                    target.push(Schema::parse(sub, &format!("{path}.{key}[{i}]"))?);
                }
            }
        }
        Ok(schema)
    }

    /// The schema of a field of an object described by `self`.
    pub fn field(&self, name: &str) -> Option<&Schema> {
        self.properties.get(name).or(self.additional.as_deref())
    }

    /// Marks the list at `path` (field names, `[]` for list items) with a merge type,
    /// creating loose nodes along the way. Used to describe built-in kinds.
    pub fn with_list(mut self, path: &str, list_type: ListType) -> Schema {
        let mut node = &mut self;
        for part in path.split('.') {
            node = if part == "[]" {
                node.items.get_or_insert_with(|| Box::new(loose()))
            } else {
                node.properties
                    .entry(part.to_string())
                    .or_insert_with(loose)
            };
        }
        node.list_type = list_type;
        node.type_name = Some("array".into());
        self
    }
}

/// Where a field sits, rendered as the API server does: `spec.items[0].name`.
fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes fields the schema does not declare (unless it preserves unknown fields).
/// Returns the paths removed, for `fieldValidation=Strict|Warn`.
pub fn prune(value: &mut Value, schema: &Schema, path: &str, removed: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if schema.embedded_resource {
                for key in ["apiVersion", "kind", "metadata"] {
                    if let Some(Value::Object(meta)) =
                        map.get_mut(key).filter(|_| key == "metadata")
                    {
                        prune_metadata(meta, &child_path(path, key), removed);
                    }
                }
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let embedded_key = schema.embedded_resource
                    && matches!(key.as_str(), "apiVersion" | "kind" | "metadata");
                match schema.field(&key) {
                    Some(sub) => prune(
                        map.get_mut(&key).expect("key listed"),
                        sub,
                        &child_path(path, &key),
                        removed,
                    ),
                    None if schema.preserve_unknown || embedded_key => {}
                    None => {
                        map.remove(&key);
                        removed.push(child_path(path, &key));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item, item_schema, &format!("{path}[{i}]"), removed);
                }
            }
        }
        _ => {}
    }
}

/// Fields of ObjectMeta a client may set; others are dropped.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Drops fields that are not part of ObjectMeta.
pub fn prune_metadata(meta: &mut Map<String, Value>, path: &str, removed: &mut Vec<String>) {
    let unknown: Vec<String> = meta
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in unknown {
        meta.remove(&key);
        removed.push(child_path(path, &key));
    }
}

/// Fills in `default` values for absent fields, recursively (defaults of defaults included).
pub fn apply_defaults(value: &mut Value, schema: &Schema) {
    match value {
        Value::Object(map) => {
            for (name, sub) in &schema.properties {
                if !map.contains_key(name)
                    && let Some(default) = &sub.default
                {
                    map.insert(name.clone(), default.clone());
                }
            }
            for (key, field_value) in map.iter_mut() {
                if let Some(sub) = schema.field(key) {
                    apply_defaults(field_value, sub);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                for item in items {
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    let actual = type_of(value);
    actual == expected || (expected == "number" && actual == "integer")
}

/// Validates `value` against `schema`, appending the API server's field errors to `causes`.
pub fn validate(value: &Value, schema: &Schema, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if !schema.nullable && schema.type_name.is_some() {
            causes.push(Cause::invalid(
                path,
                value,
                format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema.type_name.as_deref().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    if schema.int_or_string {
        if !matches!(type_of(value), "integer" | "string") {
            causes.push(Cause::invalid(
                path,
                value,
                format!(
                    "{path} in body must be of type integer-or-string: {:?}",
                    type_of(value)
                ),
            ));
            return;
        }
    } else if let Some(expected) = &schema.type_name
        && !type_matches(expected, value)
    {
        causes.push(Cause::invalid(
            path,
            value,
            format!(
                "{path} in body must be of type {expected}: {:?}",
                type_of(value)
            ),
        ));
        return;
    }
    if !schema.enum_values.is_empty() && !schema.enum_values.contains(value) {
        causes.push(Cause::unsupported(path, value, &schema.enum_values));
    }
    match value {
        Value::String(s) => {
            if let Some(pattern) = &schema.pattern
                && !pattern.is_match(s)
            {
                causes.push(Cause::invalid(
                    path,
                    value,
                    format!("{path} in body should match '{}'", pattern.as_str()),
                ));
            }
            let len = s.chars().count() as u64;
            if let Some(max) = schema.max_length
                && len > max
            {
                causes.push(Cause::too_long(path, max));
            }
            if let Some(min) = schema.min_length
                && len < min
            {
                causes.push(Cause::invalid(
                    path,
                    value,
                    format!("{path} in body should be at least {min} chars long"),
                ));
            }
            if let Some(format) = &schema.format
                && !format_ok(format, s)
            {
                causes.push(Cause::invalid(
                    path,
                    value,
                    format!("{path} in body must be of type {format}: {s:?}"),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = schema.minimum
                && (x < min || (schema.exclusive_minimum && x == min))
            {
                let op = if schema.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                causes.push(Cause::invalid(
                    path,
                    value,
                    format!("{path} in body should be {op} {}", trim_float(min)),
                ));
            }
            if let Some(max) = schema.maximum
                && (x > max || (schema.exclusive_maximum && x == max))
            {
                let op = if schema.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                causes.push(Cause::invalid(
                    path,
                    value,
                    format!("{path} in body should be {op} {}", trim_float(max)),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema.max_items
                && items.len() as u64 > max
            {
                causes.push(Cause {
                    reason: "FieldValueTooMany",
                    message: format!("Too many: {}: must have at most {max} items", items.len()),
                    field: path.to_string(),
                });
            }
            if let Some(min) = schema.min_items
                && (items.len() as u64) < min
            {
                causes.push(Cause::invalid(
                    path,
                    value,
                    format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(item_schema) = &schema.items {
                for (i, item) in items.iter().enumerate() {
                    validate(item, item_schema, &format!("{path}[{i}]"), causes);
                }
            }
            check_list_uniqueness(items, &schema.list_type, path, causes);
        }
        Value::Object(map) => {
            for name in &schema.required {
                if !map.contains_key(name) {
                    causes.push(Cause::required(child_path(path, name)));
                }
            }
            if let Some(max) = schema.max_properties
                && map.len() as u64 > max
            {
                causes.push(Cause {
                    reason: "FieldValueTooMany",
                    message: format!("Too many: {}: must have at most {max} items", map.len()),
                    field: path.to_string(),
                });
            }
            if let Some(min) = schema.min_properties
                && (map.len() as u64) < min
            {
                causes.push(Cause::invalid(
                    path,
                    value,
                    format!("{path} in body should have at least {min} properties"),
                ));
            }
            for (key, field_value) in map {
                if let Some(sub) = schema.field(key) {
                    validate(field_value, sub, &child_path(path, key), causes);
                }
            }
        }
        _ => {}
    }
    for sub in &schema.all_of {
        validate(value, sub, path, causes);
    }
    if !schema.any_of.is_empty()
        && !schema
            .any_of
            .iter()
            .any(|sub| matches_schema(value, sub, path))
    {
        causes.push(Cause::invalid(
            path,
            value,
            format!("{path} in body must match at least one schema (anyOf)"),
        ));
    }
    if !schema.one_of.is_empty() {
        let matching = schema
            .one_of
            .iter()
            .filter(|sub| matches_schema(value, sub, path))
            .count();
        if matching != 1 {
            causes.push(Cause::invalid(
                path,
                value,
                format!("{path} in body must match exactly one schema (oneOf)"),
            ));
        }
    }
}

fn matches_schema(value: &Value, schema: &Schema, path: &str) -> bool {
    let mut scratch = Vec::new();
    validate(value, schema, path, &mut scratch);
    scratch.is_empty()
}

fn check_list_uniqueness(
    items: &[Value],
    list_type: &ListType,
    path: &str,
    causes: &mut Vec<Cause>,
) {
    match list_type {
        ListType::Atomic => {}
        ListType::Set => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    causes.push(Cause::duplicate(format!("{path}[{i}]"), item));
                }
            }
        }
        ListType::Map(keys) => {
            let key_of = |item: &Value| -> Vec<Value> {
                keys.iter()
                    .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                    .collect()
            };
            for (i, item) in items.iter().enumerate() {
                for k in keys {
                    if item.get(k).is_none() {
                        causes.push(Cause::required(format!("{path}[{i}].{k}")));
                    }
                }
                let key = key_of(item);
                if items[..i].iter().any(|prev| key_of(prev) == key) {
                    let shown: Map<String, Value> = keys.iter().cloned().zip(key).collect();
                    causes.push(Cause::duplicate(
                        format!("{path}[{i}]"),
                        &Value::Object(shown),
                    ));
                }
            }
        }
    }
}

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "int32" | "int64" | "byte" | "password" | "" => true,
        "date-time" => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        }
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
        }),
        _ => true,
    }
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn widget_schema() -> Schema {
        Schema::parse(
            &json!({
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "mode": {"type": "string", "enum": ["fast", "slow"], "default": "slow"},
                            "name": {"type": "string", "pattern": "^[a-z]+$"},
                            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                                      "items": {"type": "object", "properties": {"port": {"type": "integer"}, "name": {"type": "string"}}}}
                        }
                    }
                }
            }),
            "schema",
        )
        .unwrap()
    }

    #[test]
    fn defaults_prune_and_validate() {
        let schema = widget_schema();
        let mut obj = json!({"spec": {"size": 20, "name": "Bad1", "unknown": 1, "extra": {"anything": [1]},
                                      "ports": [{"port": 80}, {"port": 80}]}});
        let mut removed = Vec::new();
        prune(&mut obj, &schema, "", &mut removed);
        assert_eq!(removed, vec!["spec.unknown"]);
        apply_defaults(&mut obj, &schema);
        assert_eq!(obj["spec"]["mode"], "slow");
        assert_eq!(obj["spec"]["extra"]["anything"], json!([1]));
        let mut causes = Vec::new();
        validate(&obj, &schema, "", &mut causes);
        let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
        assert_eq!(
            rendered,
            vec![
                "spec.name: Invalid value: \"Bad1\": spec.name in body should match '^[a-z]+$'",
                "spec.ports[1]: Duplicate value: \"object\"",
                "spec.size: Invalid value: 20: spec.size in body should be less than or equal to 10",
            ]
        );
    }

    #[test]
    fn type_enum_and_required_errors() {
        let schema = widget_schema();
        let mut causes = Vec::new();
        validate(
            &json!({"spec": {"mode": "medium", "size": "big"}}),
            &schema,
            "",
            &mut causes,
        );
        let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
        assert_eq!(
            rendered,
            vec![
                "spec.mode: Unsupported value: \"medium\": supported values: \"fast\", \"slow\"",
                "spec.size: Invalid value: \"big\": spec.size in body must be of type integer: \"string\"",
            ]
        );
        let mut causes = Vec::new();
        validate(&json!({"spec": {}}), &schema, "", &mut causes);
        assert_eq!(causes[0].render(), "spec.size: Required value");
    }

    #[test]
    fn bad_schemas_are_rejected_with_a_path() {
        let err = Schema::parse(
            &json!({"type": "object", "properties": {"a": {"type": "array"}}}),
            "spec.versions[0].schema.openAPIV3Schema",
        )
        .unwrap_err();
        assert!(
            err.starts_with(
                "spec.versions[0].schema.openAPIV3Schema.properties[a].items: Required value"
            ),
            "{err}"
        );
    }
}
