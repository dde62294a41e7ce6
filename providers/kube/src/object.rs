//! Between attributes and objects: building the object a resource's attributes describe,
//! reading attributes back from a live object, and projecting live objects onto the fields
//! flotilla manages, so server defaults and controllers' fields never show as changes.

use std::collections::BTreeMap;

use base64::Engine;
use flotilla_provider::{ProviderError, Value};
use serde_json::{Map, Value as Json, json};

use crate::kinds::{Kind, Shape};

/// The attributes of a resource value, unmarked.
pub fn attrs(v: &Value) -> BTreeMap<String, Value> {
    match v.clone().unmark().0 {
        Value::Map(m) => m,
        _ => BTreeMap::new(),
    }
}

/// A string attribute.
pub fn string(m: &BTreeMap<String, Value>, key: &str) -> Option<String> {
    match m.get(key).map(|v| v.clone().unmark().0) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// The namespace a namespaced object goes into.
pub fn namespace(kind: &Kind, m: &BTreeMap<String, Value>) -> Option<String> {
    kind.namespaced
        .then(|| string(m, "namespace").unwrap_or_else(|| "default".into()))
}

/// The object's name: `name`, or for rotating kinds `name-HASH` where HASH covers
/// `spec.template.spec`. `None` while unknown.
pub fn object_name(kind: &Kind, m: &BTreeMap<String, Value>) -> Option<String> {
    let name = string(m, "name")?;
    if !kind.rotate {
        return Some(name);
    }
    let spec = m.get("spec")?;
    let template = spec
        .get_attr("template")
        .and_then(|t| t.get_attr("spec"))
        .unwrap_or(Value::Null);
    if template.contains_unknown() {
        return None;
    }
    let canonical = template.to_json().to_string();
    let hash = blake3::hash(canonical.as_bytes()).to_hex();
    Some(format!("{name}-{}", &hash[..8]))
}

/// The object the attributes describe, as flotilla applies it. The attributes must be known.
pub fn build(kind: &Kind, v: &Value) -> Result<Json, ProviderError> {
    let m = attrs(v);
    if kind.is_manifest() {
        return Ok(m.get("manifest").map(Value::to_json).unwrap_or(Json::Null));
    }
    let name = object_name(kind, &m).ok_or_else(|| ProviderError::new("the name is not known"))?;
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if let Some(ns) = namespace(kind, &m) {
        metadata.insert("namespace".into(), json!(ns));
    }
    for key in ["labels", "annotations"] {
        if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
            metadata.insert(key.into(), v.to_json());
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(kind.api_version));
    obj.insert("kind".into(), json!(kind.kind));
    obj.insert("metadata".into(), Json::Object(metadata));
    for f in kind.fields {
        let Some(v) = m.get(f.attr).filter(|v| !v.is_null()) else {
            continue;
        };
        let json = match f.shape {
            Shape::Base64Map => match v.to_json() {
                Json::Object(entries) => Json::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| {
                            let text = match v {
                                Json::String(s) => s,
                                other => other.to_string(),
                            };
                            (
                                k,
                                json!(base64::engine::general_purpose::STANDARD.encode(text)),
                            )
                        })
                        .collect(),
                ),
                other => other,
            },
            _ => v.to_json(),
        };
        obj.insert(f.key.into(), json);
    }
    let mut obj = Json::Object(obj);
    if let (Some(c), Some(kubeconfig)) = (kind.credentials, crate::join::kubeconfig(kind, v)) {
        crate::join::fill(c, &mut obj, &name, &kubeconfig)?;
    }
    Ok(obj)
}

/// The attribute-space view of a live object: labels, annotations and each field, decoded.
pub fn live_attrs(kind: &Kind, live: &Json) -> BTreeMap<String, Json> {
    let mut out = BTreeMap::new();
    if kind.is_manifest() {
        out.insert("manifest".to_string(), live.clone());
        return out;
    }
    for key in ["labels", "annotations"] {
        out.insert(key.to_string(), live["metadata"][key].clone());
    }
    for f in kind.fields {
        let raw = live.get(f.key).cloned().unwrap_or(Json::Null);
        let value = match (f.shape, raw) {
            (Shape::Base64Map, Json::Object(entries)) => Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let decoded = v
                            .as_str()
                            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                            .and_then(|b| String::from_utf8(b).ok())
                            .map(Json::String)
                            .unwrap_or(v);
                        (k, decoded)
                    })
                    .collect(),
            ),
            (_, raw) => raw,
        };
        out.insert(f.attr.to_string(), value);
    }
    out
}

/// The part of `live` that `shape` covers: the keys of objects in `shape` (missing ones are
/// null), lists element by element, everything else as live has it. What flotilla never set
/// (server defaults, controllers' fields) is left out.
pub fn project(shape: &Json, live: &Json) -> Json {
    match (shape, live) {
        (Json::Null, _) => Json::Null,
        (Json::Object(s), Json::Object(l)) => Json::Object(
            s.iter()
                .map(|(k, sv)| (k.clone(), project(sv, l.get(k).unwrap_or(&Json::Null))))
                .filter(|(_, v)| !v.is_null())
                .collect(),
        ),
        (Json::Object(_), Json::Null) => Json::Null,
        (Json::Array(s), Json::Array(l)) => Json::Array(
            l.iter()
                .enumerate()
                .map(|(i, lv)| match s.get(i) {
                    Some(sv) => project(sv, lv),
                    None => lv.clone(),
                })
                .collect(),
        ),
        (_, l) => l.clone(),
    }
}

/// The fields of `a` and `b` together (the shape that covers both).
pub fn union(a: &Json, b: &Json) -> Json {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let merged = match x.get(k) {
                    Some(xv) => union(xv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Json::Object(out)
        }
        (Json::Array(x), Json::Array(y)) => Json::Array(
            (0..x.len().max(y.len()))
                .map(|i| match (x.get(i), y.get(i)) {
                    (Some(a), Some(b)) => union(a, b),
                    (Some(v), None) | (None, Some(v)) => v.clone(),
                    (None, None) => Json::Null,
                })
                .collect(),
        ),
        (Json::Null, b) => b.clone(),
        (a, _) => a.clone(),
    }
}

/// The managed attributes (labels, annotations, fields, credentials) of a resource value as
/// JSON.
pub fn managed(kind: &Kind, v: &Value) -> BTreeMap<String, Json> {
    let m = attrs(v);
    let metadata: &[&str] = if kind.is_manifest() {
        &[]
    } else {
        &["labels", "annotations"]
    };
    metadata
        .iter()
        .copied()
        .chain(kind.fields.iter().map(|f| f.attr))
        .chain(kind.credentials.map(|c| c.attr))
        .map(|k| {
            (
                k.to_string(),
                m.get(k).map(Value::to_json).unwrap_or(Json::Null),
            )
        })
        .collect()
}

/// `value` with its managed attributes replaced by what `live` has under the same shape.
pub fn refreshed(kind: &Kind, value: &Value, live: &Json) -> Value {
    let mut m = attrs(value);
    let live = live_attrs(kind, live);
    for (key, shape) in managed(kind, value) {
        if kind.credentials.is_some_and(|c| c.attr == key) {
            // Handed over, never read back: the recorded kubeconfig stays.
            continue;
        }
        let projected = project(&shape, live.get(&key).unwrap_or(&Json::Null));
        m.insert(key, Value::from_json(&projected));
    }
    Value::Map(m)
}

/// Whether applying `desired` over `live` leaves the fields of interest (those `prior` or
/// `desired` set) as they are, judging by `merged`, the dry-run result.
pub fn unchanged(kind: &Kind, prior: &Value, desired: &Value, live: &Json, merged: &Json) -> bool {
    let shapes_prior = managed(kind, prior);
    let shapes_desired = managed(kind, desired);
    let live = live_attrs(kind, live);
    let merged = live_attrs(kind, merged);
    shapes_desired.iter().all(|(key, shape)| {
        if kind.credentials.is_some_and(|c| c.attr == key) {
            return shapes_prior.get(key) == Some(shape);
        }
        let shape = union(shape, shapes_prior.get(key).unwrap_or(&Json::Null));
        let null = Json::Null;
        project(&shape, live.get(key).unwrap_or(&null))
            == project(&shape, merged.get(key).unwrap_or(&null))
    })
}

/// `namespace/name`, or `name` for cluster-scoped objects.
pub fn id(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// The value at a dotted path of a JSON object.
pub fn at<'a>(obj: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.')
        .try_fold(obj, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::KUBE_KINDS;

    fn kind(name: &str) -> &'static Kind {
        KUBE_KINDS.iter().find(|k| k.type_name == name).unwrap()
    }

    #[test]
    fn projection_keeps_only_what_flotilla_set() {
        let shape = json!({"replicas": 3, "template": {"image": "a"}, "ports": [{"port": 80}]});
        let live = json!({"replicas": 5, "paused": false, "template": {"image": "a", "pullPolicy": "Always"},
                          "ports": [{"port": 80, "protocol": "TCP"}]});
        assert_eq!(
            project(&shape, &live),
            json!({"replicas": 5, "template": {"image": "a"}, "ports": [{"port": 80}]})
        );
        assert_eq!(project(&json!({"a": 1}), &json!({})), json!({}));
    }

    #[test]
    fn unions_cover_both_shapes() {
        assert_eq!(
            union(
                &json!({"a": 1, "b": {"c": 1}}),
                &json!({"b": {"d": 2}, "e": [1]})
            ),
            json!({"a": 1, "b": {"c": 1, "d": 2}, "e": [1]})
        );
    }

    #[test]
    fn secrets_are_encoded_and_decoded() {
        let k = kind("kube_secret");
        let v = Value::object([
            ("name", Value::string("s")),
            (
                "data",
                Value::object([("password", Value::string("hunter2"))]).sensitive(),
            ),
        ]);
        let obj = build(k, &v).unwrap();
        assert_eq!(obj["data"]["password"], json!("aHVudGVyMg=="));
        assert_eq!(obj["metadata"]["namespace"], json!("default"));
        let back = live_attrs(k, &obj);
        assert_eq!(back["data"], json!({"password": "hunter2"}));
    }

    #[test]
    fn refresh_sees_changes_to_managed_fields_only() {
        let k = kind("kube_config_map");
        let v = Value::object([
            ("name", Value::string("c")),
            ("data", Value::object([("a", Value::string("1"))])),
        ]);
        let live = json!({"metadata": {"name": "c", "labels": {"team": "x"}}, "data": {"a": "2", "b": "3"}});
        let r = refreshed(k, &v, &live);
        assert_eq!(
            r.get_attr("data"),
            Some(Value::object([("a", Value::string("2"))]))
        );
        assert_eq!(r.get_attr("labels"), Some(Value::Null));
    }

    #[test]
    fn rotating_names_follow_the_template() {
        let k = Kind {
            rotate: true,
            ..*kind("kube_config_map")
        };
        let with = |image: &str| {
            attrs(&Value::object([
                ("name", Value::string("md")),
                (
                    "spec",
                    Value::object([(
                        "template",
                        Value::object([("spec", Value::object([("image", Value::string(image))]))]),
                    )]),
                ),
            ]))
        };
        let a = object_name(&k, &with("a")).unwrap();
        assert!(a.starts_with("md-") && a.len() == 11);
        assert_eq!(object_name(&k, &with("a")).unwrap(), a);
        assert_ne!(object_name(&k, &with("b")).unwrap(), a);
    }
}
