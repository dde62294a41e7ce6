//! The saved plan file (`plan -out FILE`), format version 1 (docs/plan-file.md).
//!
//! A JSON document `{ "format_version", "flotilla_version", "checksum", "plan": {...} }` where
//! values are stored as Terraform-style parts (`value`, `unknown` mask, `sensitive` mask) so
//! unknowns and sensitive marks survive the round trip. The checksum is blake3 over the
//! compact JSON of `plan`. A plan file holds sensitive values in clear, because apply needs
//! them: treat it like the state file.

use std::collections::BTreeMap;

use flotilla_config::addr::{ProviderConfigAddr, ResourceInstanceAddr};
use flotilla_lang::Value;
use flotilla_provider::ReplaceReason;
use serde_json::json;

use crate::model::{Action, OutputChange, Plan, PlanMode, ResourceChange};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// Why a plan file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanFileError {
    /// Not a flotilla plan file, or damaged.
    #[error("{0} is not a valid flotilla plan file: {1}")]
    Invalid(String, String),
    /// Written by another flotilla version.
    #[error("{path} was written by flotilla {found}; this is flotilla {ours}")]
    Foreign {
        /// The file.
        path: String,
        /// The version that wrote it.
        found: String,
        /// This version.
        ours: String,
    },
}

fn parts(v: &Option<Value>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(v) => {
            let (value, unknown, sensitive) = v.to_json_parts();
            json!({ "value": value, "unknown": unknown, "sensitive": sensitive })
        }
    }
}

fn from_parts(j: &serde_json::Value) -> Option<Value> {
    if j.is_null() {
        return None;
    }
    Some(Value::from_json_parts(
        &j["value"],
        &j["unknown"],
        &j["sensitive"],
    ))
}

fn change_json(c: &ResourceChange) -> serde_json::Value {
    json!({
        "address": c.addr,
        "previous_address": c.prev_addr,
        "provider": c.provider,
        "action": c.action,
        "before": parts(&c.before),
        "after": parts(&c.after),
        "replace_reasons": c.replace_reasons,
        "reason": c.reason,
        "dependencies": c.dependencies,
        "create_before_destroy": c.create_before_destroy,
        "importing": c.importing,
        "notes": c.notes,
    })
}

fn change_from(j: &serde_json::Value) -> Result<ResourceChange, String> {
    let get = |k: &str| j.get(k).cloned().unwrap_or(serde_json::Value::Null);
    Ok(ResourceChange {
        addr: serde_json::from_value::<ResourceInstanceAddr>(get("address"))
            .map_err(|e| e.to_string())?,
        prev_addr: serde_json::from_value(get("previous_address")).map_err(|e| e.to_string())?,
        provider: serde_json::from_value::<ProviderConfigAddr>(get("provider"))
            .map_err(|e| e.to_string())?,
        action: serde_json::from_value::<Action>(get("action")).map_err(|e| e.to_string())?,
        before: from_parts(&get("before")),
        after: from_parts(&get("after")),
        replace_reasons: serde_json::from_value::<Vec<ReplaceReason>>(get("replace_reasons"))
            .map_err(|e| e.to_string())?,
        reason: serde_json::from_value(get("reason")).map_err(|e| e.to_string())?,
        dependencies: serde_json::from_value(get("dependencies")).map_err(|e| e.to_string())?,
        create_before_destroy: get("create_before_destroy").as_bool().unwrap_or(false),
        importing: get("importing").as_str().map(str::to_string),
        notes: serde_json::from_value(get("notes")).unwrap_or_default(),
    })
}

/// Serializes a plan.
pub fn encode(plan: &Plan) -> Vec<u8> {
    let body = json!({
        "mode": plan.mode,
        "changes": plan.changes.iter().map(change_json).collect::<Vec<_>>(),
        "drift": plan.drift.iter().map(change_json).collect::<Vec<_>>(),
        "outputs": plan.outputs.iter().map(|o| json!({
            "name": o.name, "action": o.action, "before": parts(&o.before), "after": parts(&o.after), "sensitive": o.sensitive,
        })).collect::<Vec<_>>(),
        "prior_state": flotilla_state::format::to_json(&plan.prior_state),
        "state_serial": plan.state_serial,
        "variables": plan.variables.iter().map(|(k, v)| (k.clone(), parts(&Some(v.clone())))).collect::<serde_json::Map<_, _>>(),
        "config_hash": plan.config_hash,
        "targets": plan.targets,
    });
    let checksum = blake3::hash(&serde_json::to_vec(&body).expect("JSON serializes"))
        .to_hex()
        .to_string();
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "flotilla_version": env!("CARGO_PKG_VERSION"),
        "checksum": format!("blake3:{checksum}"),
        "plan": body,
    });
    serde_json::to_vec(&doc).expect("JSON serializes")
}

/// Parses and verifies a plan file; `path` is only used in errors.
pub fn decode(bytes: &[u8], path: &str) -> Result<Plan, PlanFileError> {
    let invalid = |why: &str| PlanFileError::Invalid(path.to_string(), why.to_string());
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| invalid("not JSON"))?;
    if doc
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        != Some(FORMAT_VERSION)
    {
        return Err(invalid("unknown format version"));
    }
    let version = doc
        .get("flotilla_version")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    if version != env!("CARGO_PKG_VERSION") {
        return Err(PlanFileError::Foreign {
            path: path.to_string(),
            found: version.to_string(),
            ours: env!("CARGO_PKG_VERSION").to_string(),
        });
    }
    let body = &doc["plan"];
    let checksum = format!(
        "blake3:{}",
        blake3::hash(&serde_json::to_vec(body).expect("JSON serializes")).to_hex()
    );
    if doc.get("checksum").and_then(serde_json::Value::as_str) != Some(checksum.as_str()) {
        return Err(invalid(
            "its checksum does not match (the file was modified or truncated)",
        ));
    }
    let changes = |k: &str| -> Result<Vec<ResourceChange>, PlanFileError> {
        body[k]
            .as_array()
            .map(|a| a.iter().map(change_from).collect::<Result<Vec<_>, _>>())
            .unwrap_or(Ok(Vec::new()))
            .map_err(|e| invalid(&e))
    };
    let prior_state =
        flotilla_state::format::from_json(body["prior_state"].clone()).map_err(|e| invalid(&e))?;
    let outputs = body["outputs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| -> Result<OutputChange, PlanFileError> {
                    Ok(OutputChange {
                        name: o["name"].as_str().unwrap_or_default().to_string(),
                        action: serde_json::from_value(o["action"].clone())
                            .map_err(|e| invalid(&e.to_string()))?,
                        before: from_parts(&o["before"]),
                        after: from_parts(&o["after"]),
                        sensitive: o["sensitive"].as_bool().unwrap_or(false),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or(Ok(Vec::new()))?;
    let variables: BTreeMap<String, Value> = body["variables"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| from_parts(v).map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Plan {
        mode: serde_json::from_value::<PlanMode>(body["mode"].clone())
            .map_err(|e| invalid(&e.to_string()))?,
        changes: changes("changes")?,
        drift: changes("drift")?,
        outputs,
        prior_state,
        state_serial: body["state_serial"].as_u64().unwrap_or(0),
        variables,
        config_hash: body["config_hash"].as_str().unwrap_or_default().to_string(),
        targets: serde_json::from_value(body["targets"].clone()).unwrap_or_default(),
    })
}
