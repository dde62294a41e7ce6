//! KubeEdge's webhooks: rules and rule endpoints are never updated, and a rule needs both of
//! its endpoints, in a supported pair.

use super::{IMMUTABLE, Lookup, Rules, changed, denied, invalid};
use crate::kinds::ResourceType;
use crate::status::{ApiError, Cause};
use serde_json::Value;

pub(super) static RULES: Rules = Rules {
    mutate: super::no_mutation,
    validate,
    validate_delete: super::any_delete,
};

fn validate(
    store: &dyn Lookup,
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    if rt.group != "rules.kubeedge.io" {
        return Ok(());
    }
    match old {
        Some(old) if changed(old, obj, "/spec") => {
            causes.push(Cause::invalid(
                "spec",
                &obj["spec"],
                format!("{IMMUTABLE}: updates of {} are not supported", rt.kind),
            ));
        }
        Some(_) => {}
        None if rt.kind == "Rule" => kubeedge_rule(store, obj)?,
        None => {}
    }
    invalid(rt, obj, causes)
}

/// A KubeEdge Rule needs both endpoints, and one of the supported pairs.
fn kubeedge_rule(store: &dyn Lookup, obj: &Value) -> Result<(), ApiError> {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut types = Vec::new();
    for end in ["source", "target"] {
        let name = obj["spec"][end].as_str().unwrap_or_default();
        let Some(ep) = store.find("rules.kubeedge.io", "RuleEndpoint", ns, name) else {
            return Err(denied(
                "validate.rule.kubeedge.io",
                format!(
                    "cant get {end} ruleEndpoint {name}: ruleendpoints.rules.kubeedge.io \"{name}\" not found"
                ),
            ));
        };
        types.push(
            ep["spec"]["ruleEndpointType"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    let pair = (types[0].as_str(), types[1].as_str());
    if !matches!(
        pair,
        ("rest", "eventbus") | ("rest", "servicebus") | ("eventbus", "rest")
    ) {
        return Err(denied(
            "validate.rule.kubeedge.io",
            format!(
                "the rule from {} to {} is not supported (supported: rest->eventbus, rest->servicebus, eventbus->rest)",
                pair.0, pair.1
            ),
        ));
    }
    Ok(())
}
