//! Karmada's webhooks: policy defaulting (selector namespaces, spread constraints, the
//! division preference, the permanent id), the scheduler name and permanent id that never
//! change, Cluster names and endpoints, and MultiClusterService types.

use super::{Lookup, Rules, immutable, invalid};
use crate::kinds::ResourceType;
use crate::status::{ApiError, Cause};
use serde_json::{Value, json};

pub(super) static RULES: Rules = Rules {
    mutate,
    validate,
    validate_delete: super::any_delete,
};

fn mutate(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("policy.karmada.io", "PropagationPolicy" | "ClusterPropagationPolicy") => {
            let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
            default_selector_namespaces(obj, namespace.as_deref());
            if let Some(list) = obj
                .pointer_mut("/spec/placement/spreadConstraints")
                .and_then(Value::as_array_mut)
            {
                for c in list.iter_mut().filter(|c| c.is_object()) {
                    if c.get("spreadByField").is_none() && c.get("spreadByLabel").is_none() {
                        c["spreadByField"] = json!("cluster");
                    }
                    if c.get("minGroups").is_none() {
                        c["minGroups"] = json!(1);
                    }
                }
            }
            if let Some(scheduling) = obj
                .pointer_mut("/spec/placement/replicaScheduling")
                .and_then(Value::as_object_mut)
                && scheduling.get("replicaSchedulingType") == Some(&json!("Divided"))
                && !scheduling.contains_key("replicaDivisionPreference")
            {
                scheduling.insert("replicaDivisionPreference".into(), json!("Weighted"));
            }
            // The permanent id: set once, kept across updates that do not send it.
            let label = "propagationpolicy.karmada.io/permanent-id";
            let kept = old
                .and_then(|o| o["metadata"]["labels"][label].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            if obj["metadata"]["labels"].get(label).is_none() {
                if !obj["metadata"]["labels"].is_object() {
                    obj["metadata"]["labels"] = json!({});
                }
                obj["metadata"]["labels"][label] = json!(kept);
            }
        }
        ("policy.karmada.io", "OverridePolicy") => {
            let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
            default_selector_namespaces(obj, namespace.as_deref());
        }
        _ => {}
    }
}

fn default_selector_namespaces(obj: &mut Value, namespace: Option<&str>) {
    let Some(ns) = namespace else { return };
    for sel in obj
        .pointer_mut("/spec/resourceSelectors")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if sel.get("namespace").is_none_or(|n| n == "") {
            sel["namespace"] = json!(ns);
        }
    }
}

fn validate(
    _: &dyn Lookup,
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("policy.karmada.io", "PropagationPolicy" | "ClusterPropagationPolicy") => {
            if let Some(old) = old {
                immutable(old, obj, "/spec/schedulerName", &mut causes);
                let label = "/metadata/labels/propagationpolicy.karmada.io~1permanent-id";
                immutable(old, obj, label, &mut causes);
            }
        }
        ("cluster.karmada.io", "Cluster") => {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            if name.len() > 48 {
                causes.push(Cause::invalid(
                    "metadata.name",
                    &json!(name),
                    "must be no more than 48 characters",
                ));
            }
            if let Some(endpoint) = obj["spec"]["apiEndpoint"].as_str()
                && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
            {
                causes.push(Cause::invalid(
                    "spec.apiEndpoint",
                    &json!(endpoint),
                    "must be a valid URL",
                ));
            }
        }
        ("networking.karmada.io", "MultiClusterService") => {
            if let Some(old) = old {
                immutable(old, obj, "/spec/types", &mut causes);
            }
        }
        _ => {}
    }
    invalid(rt, obj, causes)
}
