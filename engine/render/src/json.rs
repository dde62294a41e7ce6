//! Machine-readable plans and state (`-json`), with sensitive values redacted.
//!
//! Field names follow Terraform's `show -json` where they overlap, so existing tooling can
//! read them. Values marked sensitive appear as `null` with `true` in the matching
//! `*_sensitive` mask; they are never present in clear.

use flotilla_config::addr::{InstanceKey, ResourceMode};
use flotilla_lang::Value;
use flotilla_plan::{Plan, ResourceChange};
use flotilla_state::State;
use flotilla_syntax::{Diagnostic, SourceMap};
use serde_json::{Value as Json, json};

/// The format version of this JSON.
pub const JSON_FORMAT_VERSION: &str = "1.0";

/// Plain JSON with sensitive and unknown parts replaced by `null`.
pub fn redacted(v: &Value) -> Json {
    match v {
        Value::Sensitive(_) | Value::Unknown | Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(_) | Value::String(_) => v.to_json(),
        Value::List(items) | Value::Set(items) => Json::Array(items.iter().map(redacted).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, x)| (k.clone(), redacted(x))).collect()),
    }
}

fn index(key: &InstanceKey) -> Json {
    match key {
        InstanceKey::None => Json::Null,
        InstanceKey::Int(i) => json!(i),
        InstanceKey::Str(s) => json!(s),
    }
}

fn change(c: &ResourceChange) -> Json {
    let masks = |v: &Option<Value>| match v {
        Some(v) => {
            let (_, unknown, sensitive) = v.to_json_parts();
            (redacted(v), unknown, sensitive)
        }
        None => (Json::Null, Json::Bool(false), Json::Bool(false)),
    };
    let (before, _, before_sensitive) = masks(&c.before);
    let (after, after_unknown, after_sensitive) = masks(&c.after);
    let r = &c.addr.resource;
    json!({
        "address": c.addr.to_string(),
        "previous_address": c.prev_addr.as_ref().map(|a| a.to_string()),
        "module_address": if c.addr.module.is_root() { Json::Null } else { json!(c.addr.module.to_string()) },
        "mode": if r.mode == ResourceMode::Data { "data" } else { "managed" },
        "type": r.type_,
        "name": r.name,
        "index": index(&c.addr.key),
        "provider_name": c.provider.to_string(),
        "change": {
            "actions": c.action.as_list(),
            "before": before,
            "after": after,
            "after_unknown": after_unknown,
            "before_sensitive": before_sensitive,
            "after_sensitive": after_sensitive,
            "replace_paths": c.replace_reasons.iter().map(|r| r.path.to_string()).collect::<Vec<_>>(),
        },
        "action_reason": c.reason,
        "notes": c.notes,
        "importing": c.importing.as_ref().map(|id| json!({ "id": id })),
        "replace_reasons": c.replace_reasons.iter().map(|r| json!({ "path": r.path.to_string(), "reason": r.reason })).collect::<Vec<_>>(),
    })
}

/// Diagnostics as JSON: severity, summary, detail, help and where (file, line, column).
pub fn diagnostics_json(diags: &[Diagnostic], sources: &SourceMap) -> Vec<Json> {
    diags
        .iter()
        .map(|d| {
            let range = d.span.as_ref().map(|s| {
                let f = sources.file(s.file);
                let (line, col) = f.line_col(s.range.start);
                let (end_line, end_col) = f.line_col(s.range.end);
                json!({
                    "filename": f.path.display().to_string(),
                    "start": { "line": line, "column": col, "byte": s.range.start },
                    "end": { "line": end_line, "column": end_col, "byte": s.range.end },
                })
            });
            json!({ "severity": d.severity, "summary": d.summary, "detail": d.detail, "help": d.help, "range": range })
        })
        .collect()
}

/// A plan as JSON, with the diagnostics (warnings) planning produced.
pub fn plan_json(plan: &Plan, diagnostics: Vec<Json>) -> Json {
    let outputs: serde_json::Map<String, Json> = plan
        .outputs
        .iter()
        .map(|o| {
            let red = |v: &Option<Value>| match v {
                Some(v) if o.sensitive => {
                    let _ = v;
                    Json::Null
                }
                Some(v) => redacted(v),
                None => Json::Null,
            };
            let unknown = o
                .after
                .as_ref()
                .map_or(Json::Bool(false), |v| v.to_json_parts().1);
            (
                o.name.clone(),
                json!({
                    "actions": o.action.as_list(),
                    "before": red(&o.before),
                    "after": red(&o.after),
                    "after_unknown": unknown,
                    "before_sensitive": o.sensitive,
                    "after_sensitive": o.sensitive,
                }),
            )
        })
        .collect();
    let s = plan.summary();
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "flotilla_version": env!("CARGO_PKG_VERSION"),
        "mode": plan.mode,
        "resource_changes": plan.changes.iter().map(change).collect::<Vec<_>>(),
        "drift": plan.drift.iter().map(change).collect::<Vec<_>>(),
        "deposed_changes": plan.deposed.iter().map(change).collect::<Vec<_>>(),
        "output_changes": outputs,
        "summary": { "add": s.add, "change": s.change, "destroy": s.destroy, "move": s.moved, "import": s.import },
        "has_changes": plan.has_changes(),
        "rollouts": crate::rollouts::waves_json(plan),
        "diagnostics": diagnostics,
    })
}

/// State as JSON.
pub fn state_json(state: &State) -> Json {
    let resources: Vec<Json> = state
        .resources
        .iter()
        .map(|(addr, r)| {
            let v = flotilla_plan::state_value(r);
            json!({
                "address": addr.to_string(),
                "mode": if addr.resource.mode == ResourceMode::Data { "data" } else { "managed" },
                "type": addr.resource.type_,
                "name": addr.resource.name,
                "index": index(&addr.key),
                "provider_name": r.provider.to_string(),
                "values": redacted(&v),
                "sensitive_values": r.sensitive,
                "depends_on": r.dependencies,
            })
        })
        .collect();
    let outputs: serde_json::Map<String, Json> = state
        .outputs
        .iter()
        .map(|(k, o)| (k.clone(), json!({ "sensitive": o.sensitive, "value": if o.sensitive { Json::Null } else { o.value.clone() } })))
        .collect();
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "flotilla_version": env!("CARGO_PKG_VERSION"),
        "serial": state.serial,
        "lineage": state.lineage,
        "values": { "outputs": outputs, "resources": resources },
    })
}
