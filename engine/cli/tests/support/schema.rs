//! A JSON Schema checker for the keywords docs/schemas/*.json use, so tests can prove that
//! golden outputs match the published schemas. Any other keyword is an error, so the schemas
//! cannot silently rely on something this does not check.

use serde_json::Value;

const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "anyOf",
];

/// Every way `value` fails `schema` (empty when it conforms), each with its JSON path.
pub fn check(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    at(schema, schema, value, "$", &mut errors);
    errors
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        other => panic!("unknown type {other:?} in schema"),
    }
}

fn at(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        assert!(schema.is_boolean(), "a schema is an object or a boolean");
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: nothing is allowed here"));
        }
        return;
    };
    for k in s.keys() {
        assert!(
            KNOWN.contains(&k.as_str()),
            "schema keyword {k:?} is not supported by this checker"
        );
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/$defs/")
            .expect("only local $defs references");
        at(root, &root["$defs"][name], v, path, errors);
    }
    if let Some(ty) = s.get("type") {
        let ok = match ty {
            Value::String(t) => type_matches(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), v)),
            _ => panic!("bad type"),
        };
        if !ok {
            errors.push(format!("{path}: expected type {ty}, found {v}"));
            return;
        }
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{path}: expected {c}, found {v}"));
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{path}: {v} is not one of {e:?}"));
    }
    if let Some(any) = s.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(|sub| check_sub(root, sub, v))
    {
        errors.push(format!("{path}: {v} matches none of the allowed shapes"));
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().unwrap();
            if !obj.contains_key(req) {
                errors.push(format!("{path}: missing required field {req:?}"));
            }
        }
        for (k, x) in obj {
            let sub_path = format!("{path}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(sub) => at(root, sub, x, &sub_path, errors),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{path}: unexpected field {k:?}"));
                    }
                    Some(sub) => at(root, sub, x, &sub_path, errors),
                    None => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            at(root, items, x, &format!("{path}[{i}]"), errors);
        }
    }
}

fn check_sub(root: &Value, schema: &Value, v: &Value) -> bool {
    let mut errors = Vec::new();
    at(root, schema, v, "", &mut errors);
    errors.is_empty()
}

#[test]
fn the_checker_catches_what_it_claims_to() {
    let schema = serde_json::json!({
        "type": "object", "required": ["a"], "additionalProperties": false,
        "properties": { "a": { "type": "integer" }, "b": { "anyOf": [{ "type": "null" }, { "$ref": "#/$defs/s" }] } },
        "$defs": { "s": { "enum": ["x", "y"] } }
    });
    assert!(check(&schema, &serde_json::json!({"a": 1, "b": "x"})).is_empty());
    assert_eq!(
        check(&schema, &serde_json::json!({"b": "z", "c": 1})).len(),
        3
    );
    assert_eq!(check(&schema, &serde_json::json!({"a": "1"})).len(), 1);
}
