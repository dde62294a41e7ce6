//! Admission: the defaulting the ecosystems' mutating webhooks do and the checks their
//! validating webhooks make, on real and dry-run requests alike, registered per ecosystem
//! ([`rules`]): one module per ecosystem with webhooks (`capi`, `istio`, `karmada`,
//! `volcano`, `kubeedge`). A write is admitted by the rules of the ecosystem that owns its API group.
//! Immutable fields are refused with 422 Invalid naming the field ("field is immutable");
//! ordering rules (a Volcano queue must be Open, KubeEdge rule endpoints must exist) are
//! refused as webhook denials (403, "admission webhook ... denied the request").
//!
//! Only writes to the main resource are admitted here; status writes are not (as upstream,
//! where the webhooks do not register for the status subresource). Rules read other objects
//! through [`Lookup`], so this module does not depend on the store.

mod capi;
mod istio;
mod karmada;
mod kubeedge;
mod volcano;

use crate::kinds::ResourceType;
use crate::status::{ApiError, Cause};
use flotilla_ecosystems::Ecosystem;
use serde_json::Value;

pub(crate) const IMMUTABLE: &str = "field is immutable";

/// How admission rules read other objects of the cluster.
pub trait Lookup {
    /// The object, if it exists.
    fn find(&self, group: &str, kind: &str, namespace: &str, name: &str) -> Option<&Value>;

    /// Every object of a kind, in every namespace.
    fn list(&self, group: &str, kind: &str) -> Vec<&Value>;
}

/// A validating webhook: the cluster's objects, the kind, the new object and the old one.
pub(crate) type Validate =
    fn(&dyn Lookup, &ResourceType, &Value, Option<&Value>) -> Result<(), ApiError>;

/// One ecosystem's webhooks.
pub(crate) struct Rules {
    /// Defaulting of a create (`old` is `None`) or update.
    pub mutate: fn(&ResourceType, &mut Value, Option<&Value>),
    /// Validation of a create or update.
    pub validate: Validate,
    /// Validation of a delete.
    pub validate_delete: fn(&dyn Lookup, &ResourceType, &Value) -> Result<(), ApiError>,
}

/// The webhooks of an ecosystem, if it has any.
pub(crate) fn rules(eco: Ecosystem) -> Option<&'static Rules> {
    match eco {
        Ecosystem::Capi => Some(&capi::RULES),
        Ecosystem::Karmada => Some(&karmada::RULES),
        Ecosystem::Volcano => Some(&volcano::RULES),
        Ecosystem::KubeEdge => Some(&kubeedge::RULES),
        Ecosystem::Istio => Some(&istio::RULES),
        Ecosystem::Kyverno | Ecosystem::Flagger | Ecosystem::Flux | Ecosystem::Prometheus => None,
    }
}

fn rules_of(rt: &ResourceType) -> Option<&'static Rules> {
    Ecosystem::of_group(&rt.group).and_then(rules)
}

/// Applies the owning ecosystem's defaulting to a write of the main resource.
pub fn mutate(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) {
    if let Some(r) = rules_of(rt) {
        (r.mutate)(rt, obj, old);
    }
}

/// The owning ecosystem's validating webhooks, for a create (`old` is `None`) or update of
/// the main resource.
pub fn validate(
    lookup: &dyn Lookup,
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    match rules_of(rt) {
        Some(r) => (r.validate)(lookup, rt, obj, old),
        None => Ok(()),
    }
}

/// Deletes the owning ecosystem's webhooks refuse.
pub fn validate_delete(
    lookup: &dyn Lookup,
    rt: &ResourceType,
    obj: &Value,
) -> Result<(), ApiError> {
    match rules_of(rt) {
        Some(r) => (r.validate_delete)(lookup, rt, obj),
        None => Ok(()),
    }
}

/// Rules that change nothing.
pub(crate) fn no_mutation(_: &ResourceType, _: &mut Value, _: Option<&Value>) {}

/// Rules that allow every delete.
pub(crate) fn any_delete(_: &dyn Lookup, _: &ResourceType, _: &Value) -> Result<(), ApiError> {
    Ok(())
}

pub(crate) fn invalid(rt: &ResourceType, obj: &Value, causes: Vec<Cause>) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid(&rt.group, &rt.kind, name, causes))
}

pub(crate) fn denied(webhook: &str, message: impl Into<String>) -> ApiError {
    ApiError::forbidden(format!(
        "admission webhook \"{webhook}\" denied the request: {}",
        message.into()
    ))
}

/// `field` changed between `old` and `new` (missing counts as null).
pub(crate) fn changed(old: &Value, new: &Value, pointer: &str) -> bool {
    old.pointer(pointer).unwrap_or(&Value::Null) != new.pointer(pointer).unwrap_or(&Value::Null)
}

pub(crate) fn immutable(old: &Value, new: &Value, pointer: &str, causes: &mut Vec<Cause>) {
    if changed(old, new, pointer) {
        let field = pointer.trim_start_matches('/').replace('/', ".");
        let value = new.pointer(pointer).cloned().unwrap_or(Value::Null);
        causes.push(Cause::invalid(field, &value, IMMUTABLE));
    }
}

/// Leaf paths (dotted) where `old` and `new` differ; lists count as leaves.
pub(crate) fn changed_paths(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                changed_paths(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &sub,
                    out,
                );
            }
        }
        (Value::Null, Value::Object(_)) | (Value::Object(_), Value::Null) => {
            let empty = Value::Object(serde_json::Map::new());
            let (a, b) = match (old, new) {
                (Value::Null, b) => (&empty, b),
                (a, _) => (a, &empty),
            };
            changed_paths(a, b, path, out);
        }
        (a, b) if a != b => out.push(path.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_leaf_paths() {
        let mut out = Vec::new();
        changed_paths(
            &json!({"a": {"b": 1, "c": [1]}, "d": 1}),
            &json!({"a": {"b": 2, "c": [1]}, "e": 1}),
            "spec",
            &mut out,
        );
        assert_eq!(out, vec!["spec.a.b", "spec.d", "spec.e"]);
    }

    #[test]
    fn every_ecosystem_with_webhooks_owns_its_groups() {
        assert!(rules(Ecosystem::of_group("batch.volcano.sh").unwrap()).is_some());
        assert!(rules(Ecosystem::of_group("kyverno.io").unwrap()).is_none());
    }
}
