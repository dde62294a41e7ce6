//! The three non-apply patch types: JSON merge patch (RFC 7396), JSON patch (RFC 6902) and
//! strategic merge patch (for built-in kinds; custom resources refuse it, as the API server does).

use crate::fields::key_elem;
use crate::schema::{ListType, Schema};
use crate::status::ApiError;
use serde_json::{Map, Value};

/// Which patch a request carries, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        Some(match media {
            "application/merge-patch+json" => PatchType::Merge,
            "application/json-patch+json" => PatchType::Json,
            "application/strategic-merge-patch+json" => PatchType::Strategic,
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => PatchType::Apply,
            _ => return None,
        })
    }
}

/// Applies a merge, JSON or strategic patch to `target`.
pub fn apply_patch(
    target: &Value,
    patch_type: PatchType,
    body: &Value,
    schema: &Schema,
) -> Result<Value, ApiError> {
    let mut out = target.clone();
    match patch_type {
        PatchType::Merge => json_patch::merge(&mut out, body),
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(body.clone()).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            json_patch::patch(&mut out, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchType::Strategic => {
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "the body of a strategic merge patch must be a JSON object",
                ));
            }
            if strategic_merge(&mut out, body, Some(schema)) {
                out = Value::Object(Map::new());
            }
        }
        PatchType::Apply => unreachable!("server-side apply is handled by the apply module"),
    }
    Ok(out)
}

/// Merges a strategic patch into `target`. Returns true when the patch says `$patch: delete`
/// for the whole of `target`.
fn strategic_merge(target: &mut Value, patch: &Value, schema: Option<&Schema>) -> bool {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return false;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("delete") => return true,
        Some("replace") => {
            *target = Value::Object(strip_directives(patch_map));
            return false;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(Value::Array(retain)) = patch_map.get("$retainKeys") {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        if let Some(map) = target.as_object_mut() {
            map.retain(|k, _| keep.contains(&k.as_str()));
        }
    }
    for (key, patch_value) in patch_map {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(remove)) =
                (target.get_mut(field), patch_value)
            {
                items.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        let child_schema = schema.and_then(|s| s.field(key));
        let map = target.as_object_mut().expect("made an object above");
        if patch_value.is_null() {
            map.remove(key);
            continue;
        }
        match (map.get_mut(key), patch_value) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                if strategic_merge(existing, patch_value, child_schema) {
                    map.remove(key);
                }
            }
            (Some(Value::Array(existing)), Value::Array(items)) => {
                merge_list(existing, items, child_schema);
            }
            (_, Value::Object(_)) => {
                let mut fresh = Value::Object(Map::new());
                if !strategic_merge(&mut fresh, patch_value, child_schema) {
                    map.insert(key.clone(), fresh);
                }
            }
            (_, Value::Array(items)) => {
                let mut fresh = Vec::new();
                merge_list(&mut fresh, items, child_schema);
                map.insert(key.clone(), Value::Array(fresh));
            }
            _ => {
                map.insert(key.clone(), patch_value.clone());
            }
        }
    }
    for (key, order) in patch_map {
        if let (Some(field), Value::Array(order)) = (key.strip_prefix("$setElementOrder/"), order) {
            let child_schema = schema.and_then(|s| s.field(field));
            if let Some(Value::Array(items)) = target.get_mut(field) {
                reorder(items, order, child_schema);
            }
        }
    }
    false
}

fn strip_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn merge_list(existing: &mut Vec<Value>, patch: &[Value], schema: Option<&Schema>) {
    let list_type = schema.map(|s| s.list_type.clone()).unwrap_or_default();
    let item_schema = schema.and_then(|s| s.items.as_deref());
    if patch
        .iter()
        .any(|item| item.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *existing = patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return;
    }
    match list_type {
        ListType::Atomic => *existing = patch.to_vec(),
        ListType::Set => {
            for item in patch {
                if !existing.contains(item) {
                    existing.push(item.clone());
                }
            }
        }
        ListType::Map(keys) => {
            // Strategic merge keys lists by the first key only (the patch merge key).
            let merge_key = &keys[..1];
            for item in patch {
                let key = key_elem(item, merge_key);
                let position = key.as_ref().and_then(|k| {
                    existing
                        .iter()
                        .position(|e| key_elem(e, merge_key).as_ref() == Some(k))
                });
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        existing.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        if strategic_merge(&mut existing[i], item, item_schema) {
                            existing.remove(i);
                        }
                    }
                    (None, false) => {
                        let mut fresh = Value::Object(Map::new());
                        strategic_merge(&mut fresh, item, item_schema);
                        existing.push(fresh);
                    }
                }
            }
        }
    }
}

/// `$setElementOrder`: items named in `order` come first, in that order; the rest keep theirs.
fn reorder(items: &mut Vec<Value>, order: &[Value], schema: Option<&Schema>) {
    let identity = |item: &Value| -> Value {
        match schema.map(|s| &s.list_type) {
            Some(ListType::Map(keys)) => item.get(&keys[0]).cloned().unwrap_or(Value::Null),
            _ => item.clone(),
        }
    };
    let wanted: Vec<Value> = order.iter().map(&identity).collect();
    let mut ordered: Vec<Value> = Vec::with_capacity(items.len());
    for w in &wanted {
        if let Some(i) = items.iter().position(|item| &identity(item) == w) {
            ordered.push(items.remove(i));
        }
    }
    ordered.append(items);
    *items = ordered;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::loose;
    use serde_json::json;

    fn schema() -> Schema {
        loose()
            .with_list("spec.containers", ListType::Map(vec!["name".into()]))
            .with_list("metadata.finalizers", ListType::Set)
    }

    #[test]
    fn strategic_merges_lists_by_key() {
        let target = json!({"metadata": {"finalizers": ["a"]}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}], "tolerations": [1]}});
        let patch = json!({"metadata": {"finalizers": ["b"]},
                           "spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}, {"name": "c", "image": "w"}],
                                    "tolerations": [2]}});
        let out = apply_patch(&target, PatchType::Strategic, &patch, &schema()).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}], "tolerations": [2]}})
        );
    }

    #[test]
    fn strategic_directives() {
        let target =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "x": {"y": 1, "z": 2}}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "x": {"$patch": "replace", "w": 3}}});
        let out = apply_patch(&target, PatchType::Strategic, &patch, &schema()).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "b"}, {"name": "a"}], "x": {"w": 3}}})
        );
    }

    #[test]
    fn merge_and_json_patches() {
        let target = json!({"a": {"b": 1, "c": 2}});
        assert_eq!(
            apply_patch(
                &target,
                PatchType::Merge,
                &json!({"a": {"b": null, "d": 4}}),
                &loose()
            )
            .unwrap(),
            json!({"a": {"c": 2, "d": 4}})
        );
        let ops = json!([{"op": "replace", "path": "/a/b", "value": 5}, {"op": "add", "path": "/e", "value": [1]}]);
        assert_eq!(
            apply_patch(&target, PatchType::Json, &ops, &loose()).unwrap(),
            json!({"a": {"b": 5, "c": 2}, "e": [1]})
        );
        let bad = json!([{"op": "test", "path": "/a/b", "value": 9}]);
        assert_eq!(
            apply_patch(&target, PatchType::Json, &bad, &loose())
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml; charset=utf-8"),
            Some(PatchType::Apply)
        );
    }
}
