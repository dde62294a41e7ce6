//! Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for, and the
//! PartialObjectMetadata forms metadata-only clients ask for.

use crate::kinds::{Builtin, Column, ResourceType};
use serde_json::{Value, json};

fn col(name: &str, type_name: &str, json_path: &str) -> Column {
    Column {
        name: name.into(),
        type_name: type_name.into(),
        json_path: json_path.into(),
        priority: 0,
        description: String::new(),
    }
}

/// The columns `kubectl get` shows for a kind (NAME first, as the API server does).
fn columns(rt: &ResourceType, version: &str) -> Vec<Column> {
    let age = || col("Age", "date", ".metadata.creationTimestamp");
    let mut cols = vec![col("Name", "string", ".metadata.name")];
    match rt.builtin {
        Some(Builtin::Namespace) => cols.extend([col("Status", "string", ".status.phase"), age()]),
        Some(Builtin::ConfigMap) => cols.extend([col("Data", "integer", "#data"), age()]),
        Some(Builtin::Secret) => cols.extend([
            col("Type", "string", ".type"),
            col("Data", "integer", "#data"),
            age(),
        ]),
        Some(Builtin::Service) => cols.extend([
            col("Type", "string", ".spec.type"),
            col("Cluster-IP", "string", ".spec.clusterIP"),
            col("External-IP", "string", "#external-ip"),
            col("Port(s)", "string", "#ports"),
            age(),
        ]),
        Some(Builtin::Deployment) => cols.extend([
            col("Ready", "string", "#ready"),
            col("Up-to-date", "integer", ".status.updatedReplicas"),
            col("Available", "integer", ".status.availableReplicas"),
            age(),
        ]),
        Some(Builtin::ReplicaSet) => cols.extend([
            col("Desired", "integer", ".spec.replicas"),
            col("Current", "integer", ".status.replicas"),
            col("Ready", "integer", ".status.readyReplicas"),
            age(),
        ]),
        Some(Builtin::Crd) => cols.push(col("Created At", "date", ".metadata.creationTimestamp")),
        Some(Builtin::Node) => cols.extend([
            col("Status", "string", "#node-status"),
            age(),
            col("Version", "string", ".status.nodeInfo.kubeletVersion"),
        ]),
        Some(Builtin::Lease) => {
            cols.extend([col("Holder", "string", ".spec.holderIdentity"), age()])
        }
        Some(Builtin::Event) => cols.extend([
            col("Type", "string", ".type"),
            col("Reason", "string", ".reason"),
            col("Message", "string", ".message"),
        ]),
        Some(Builtin::ServiceAccount | Builtin::Rbac) => cols.push(age()),
        None => {
            let custom = rt.columns.get(version).cloned().unwrap_or_default();
            let has_age = custom
                .iter()
                .any(|c| c.json_path == ".metadata.creationTimestamp");
            cols.extend(custom);
            if !has_age {
                cols.push(age());
            }
        }
    }
    cols
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0].b`, `.a[?(@.k=="v")].b`.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = obj;
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            current = current.get(&after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = &after[..end];
            rest = &after[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, value) = filter.split_once("==")?;
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                current = current
                    .as_array()?
                    .iter()
                    .find(|item| item.get(field.trim()).and_then(Value::as_str) == Some(value))?;
            } else {
                current = current.get(inner.parse::<usize>().ok()?)?;
            }
        } else {
            return None;
        }
    }
    Some(current)
}

fn cell(obj: &Value, column: &Column) -> Value {
    match column.json_path.as_str() {
        "#data" => {
            let count = |k: &str| obj.get(k).and_then(Value::as_object).map_or(0, |m| m.len());
            json!(count("data") + count("binaryData"))
        }
        "#external-ip" => json!("<none>"),
        "#ports" => {
            let ports: Vec<String> = obj["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            })
        }
        "#ready" => json!(format!(
            "{}/{}",
            obj["status"]["readyReplicas"].as_i64().unwrap_or(0),
            obj["spec"]["replicas"].as_i64().unwrap_or(0)
        )),
        "#node-status" => {
            let ready = json_path(obj, ".status.conditions[?(@.type==\"Ready\")].status")
                .and_then(Value::as_str)
                == Some("True");
            json!(if ready { "Ready" } else { "NotReady" })
        }
        path if column.type_name == "date" && column.name != "Created At" => {
            match json_path(obj, path).and_then(Value::as_str) {
                Some(stamp) => json!(age(stamp)),
                None => json!("<unknown>"),
            }
        }
        path => match json_path(obj, path) {
            Some(Value::Array(items)) => json!(
                items
                    .iter()
                    .map(|i| i
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Some(v) => v.clone(),
            None => Value::Null,
        },
    }
}

/// How long ago an RFC 3339 timestamp was, the way `kubectl get` shows ages (`45s`, `3m12s`, `5d`).
pub fn age(stamp: &str) -> String {
    let Ok(then) =
        time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
    else {
        return "<invalid>".into();
    };
    let seconds = (time::OffsetDateTime::now_utc() - then)
        .whole_seconds()
        .max(0);
    human_duration(seconds)
}

/// Kubernetes' HumanDuration: two units while short, one unit as it grows.
pub fn human_duration(s: i64) -> String {
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 => format!("{d}d{}h", h % 24),
        _ if h < 24 * 365 * 2 => format!("{d}d"),
        _ if h < 24 * 365 * 8 => format!("{}y{}d", d / 365, d % 365),
        _ => format!("{}y", d / 365),
    }
}

/// The metadata-only form of an object.
pub fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// A Table of `objects`. `include_object` is `?includeObject=` (None, Object, or metadata).
pub fn table(
    rt: &ResourceType,
    version: &str,
    objects: &[Value],
    resource_version: &str,
    include_object: &str,
) -> Value {
    let cols = columns(rt, version);
    let definitions: Vec<Value> = cols
        .iter()
        .map(|c| {
            let format = if c.name == "Name" { "name" } else { "" };
            json!({"name": c.name, "type": if c.type_name == "date" { "string" } else { c.type_name.as_str() }, "format": format, "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = cols.iter().map(|c| cell(obj, c)).collect();
            let object = match include_object {
                "None" => Value::Null,
                "Object" => obj.clone(),
                _ => partial(obj),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}, "columnDefinitions": definitions, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_subset() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}], "items": [1, 2]}});
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(json_path(&obj, ".status.items[1]"), Some(&json!(2)));
        assert_eq!(json_path(&obj, ".status.missing"), None);
    }

    #[test]
    fn ages_read_like_kubectl() {
        let shown: Vec<String> = [
            5,
            150,
            900,
            4 * 3600 + 120,
            30 * 3600,
            3 * 86400 + 7200,
            40 * 86400,
        ]
        .map(human_duration)
        .to_vec();
        assert_eq!(shown, ["5s", "2m30s", "15m", "4h2m", "30h", "3d2h", "40d"]);
    }

    #[test]
    fn tables_have_name_first() {
        let rt = crate::kinds::builtins()
            .into_iter()
            .find(|t| t.kind == "ConfigMap")
            .unwrap();
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"}, "data": {"x": "1"}});
        let t = table(&rt, "v1", &[obj], "5", "");
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert_eq!(t["rows"][0]["cells"][1], 1);
        assert!(t["rows"][0]["cells"][2].as_str().unwrap().ends_with('d'));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
