//! istiod's validating webhook (`validation.istio.io`): the rules of
//! [`flotilla_ecosystems::rules::istio`], refused as istiod refuses them, on real and dry-run
//! writes alike.

use super::{Lookup, Rules};
use crate::kinds::ResourceType;
use crate::status::ApiError;
use serde_json::Value;

pub(super) static RULES: Rules = Rules {
    mutate: super::no_mutation,
    validate,
    validate_delete: super::any_delete,
};

fn validate(
    _: &dyn Lookup,
    rt: &ResourceType,
    obj: &Value,
    _old: Option<&Value>,
) -> Result<(), ApiError> {
    let violations = flotilla_ecosystems::rules::istio(&rt.kind, &obj["spec"]);
    if violations.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.field(), v.message))
        .collect();
    Err(super::denied(
        "validation.istio.io",
        format!("configuration is invalid: {}", reasons.join("; ")),
    ))
}
