//! The saved plan file (`plan -out FILE`), format version 2 (docs/plan-file.md).
//!
//! A JSON document `{ "format_version", "checksum", "flotilla_version", "plan": {...} }` where
//! values are stored as Terraform-style parts (`value`, `unknown` mask, `sensitive` mask) so
//! unknowns and sensitive marks survive the round trip. The checksum is blake3 over the file's
//! bytes with its own hex digits read as `0`s (as in state format 2), so the file is written
//! straight from the plan, without a JSON tree in between, and checked in one pass. Version 1
//! files (checksum over the compact JSON of `plan`) are still read. A plan file holds
//! sensitive values in clear, because apply needs them: treat it like the state file.

use std::collections::BTreeMap;

use flotilla_config::addr::{ProviderConfigAddr, ResourceInstanceAddr};
use flotilla_lang::Value;
use flotilla_provider::ReplaceReason;

use crate::model::{Action, OutputChange, Plan, PlanMode, ResourceChange};

/// The format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u64 = 2;

/// What precedes the checksum's hex digits in a version 2 file (written compact).
const CHECKSUM_KEY: &[u8] = b"\"checksum\":\"blake3:";

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

/// A value as its three parts, `{ "value", "unknown", "sensitive" }`, written as it is
/// serialized (the same JSON [`Value::to_json_parts`] gives).
struct Parts<'a>(&'a Value);

impl serde::Serialize for Parts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("value", &Plain(self.0))?;
        m.serialize_entry("unknown", &Mask(self.0, Mark::Unknown))?;
        m.serialize_entry("sensitive", &Mask(self.0, Mark::Sensitive))?;
        m.end()
    }
}

/// A value as plain JSON ([`Value::to_json`]).
struct Plain<'a>(&'a Value);

impl serde::Serialize for Plain<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null | Value::Unknown => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => flotilla_lang::number_to_json(n).serialize(s),
            Value::String(v) => s.serialize_str(v),
            Value::List(items) | Value::Set(items) => s.collect_seq(items.iter().map(Plain)),
            Value::Map(m) => s.collect_map(m.iter().map(|(k, v)| (k, Plain(v)))),
            Value::Sensitive(v) => Plain(v).serialize(s),
        }
    }
}

#[derive(Clone, Copy)]
enum Mark {
    Unknown,
    Sensitive,
}

impl Mark {
    fn on(self, v: &Value) -> bool {
        match self {
            Mark::Unknown => matches!(v, Value::Unknown),
            Mark::Sensitive => v.is_sensitive(),
        }
    }

    fn inside(self, v: &Value) -> bool {
        match self {
            Mark::Unknown => v.contains_unknown(),
            Mark::Sensitive => v.contains_sensitive(),
        }
    }
}

/// A mask: `true` where the mark is, containers mirrored where a part of them has it,
/// `false` elsewhere (the masks of [`Value::to_json_parts`]).
struct Mask<'a>(&'a Value, Mark);

impl serde::Serialize for Mask<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (v, mark) = (self.0, self.1);
        if mark.on(v) {
            return s.serialize_bool(true);
        }
        if !mark.inside(v) {
            return s.serialize_bool(false);
        }
        match v {
            Value::Sensitive(inner) => Mask(inner, mark).serialize(s),
            Value::List(items) | Value::Set(items) => {
                s.collect_seq(items.iter().map(|i| Mask(i, mark)))
            }
            Value::Map(m) => s.collect_map(
                m.iter()
                    .filter(|(_, v)| mark.on(v) || mark.inside(v))
                    .map(|(k, v)| (k, Mask(v, mark))),
            ),
            _ => s.serialize_bool(false),
        }
    }
}

#[derive(serde::Serialize)]
struct ChangeRef<'a> {
    address: &'a ResourceInstanceAddr,
    previous_address: &'a Option<ResourceInstanceAddr>,
    provider: &'a ProviderConfigAddr,
    action: Action,
    before: Option<Parts<'a>>,
    after: Option<Parts<'a>>,
    replace_reasons: &'a [ReplaceReason],
    reason: &'a Option<String>,
    dependencies: &'a [String],
    create_before_destroy: bool,
    importing: &'a Option<String>,
    notes: &'a [String],
}

impl<'a> From<&'a ResourceChange> for ChangeRef<'a> {
    fn from(c: &'a ResourceChange) -> Self {
        ChangeRef {
            address: &c.addr,
            previous_address: &c.prev_addr,
            provider: &c.provider,
            action: c.action,
            before: c.before.as_ref().map(Parts),
            after: c.after.as_ref().map(Parts),
            replace_reasons: &c.replace_reasons,
            reason: &c.reason,
            dependencies: &c.dependencies,
            create_before_destroy: c.create_before_destroy,
            importing: &c.importing,
            notes: &c.notes,
        }
    }
}

#[derive(serde::Serialize)]
struct OutputRef<'a> {
    name: &'a str,
    action: Action,
    before: Option<Parts<'a>>,
    after: Option<Parts<'a>>,
    sensitive: bool,
}

/// A list written element by element, converted as it goes.
struct Each<'a, T, R>(&'a [T], fn(&'a T) -> R);

impl<T, R> Each<'_, T, R> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a, T, R: serde::Serialize> serde::Serialize for Each<'a, T, R> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(self.1))
    }
}

#[derive(serde::Serialize)]
struct BodyRef<'a, P: serde::Serialize> {
    mode: PlanMode,
    changes: Each<'a, ResourceChange, ChangeRef<'a>>,
    drift: Each<'a, ResourceChange, ChangeRef<'a>>,
    outputs: Each<'a, OutputChange, OutputRef<'a>>,
    prior_state: P,
    state_serial: u64,
    variables: BTreeMap<&'a String, Parts<'a>>,
    config_hash: &'a str,
    targets: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    rollouts: &'a [crate::rollout::RolloutPlan],
    #[serde(skip_serializing_if = "Option::is_none")]
    execution: Option<crate::exec::SavedExecution>,
    #[serde(skip_serializing_if = "Each::is_empty")]
    deposed: Each<'a, ResourceChange, ChangeRef<'a>>,
}

#[derive(serde::Serialize)]
struct DocumentRef<'a, B: serde::Serialize> {
    format_version: u64,
    checksum: &'a str,
    flotilla_version: &'a str,
    plan: B,
}

/// Serializes a plan, streaming it into the buffer; `graph` is the configuration graph it
/// was made from (the execution graph names its nodes).
pub fn encode(plan: &Plan, graph: &flotilla_graph::Graph) -> Vec<u8> {
    let placeholder = format!("blake3:{}", flotilla_state::format::seal::placeholder());
    let doc = DocumentRef {
        format_version: FORMAT_VERSION,
        checksum: &placeholder,
        flotilla_version: env!("CARGO_PKG_VERSION"),
        plan: BodyRef {
            mode: plan.mode,
            changes: Each(&plan.changes, ChangeRef::from),
            drift: Each(&plan.drift, ChangeRef::from),
            outputs: Each(&plan.outputs, |o| OutputRef {
                name: &o.name,
                action: o.action,
                before: o.before.as_ref().map(Parts),
                after: o.after.as_ref().map(Parts),
                sensitive: o.sensitive,
            }),
            prior_state: flotilla_state::format::embedded(&plan.prior_state),
            state_serial: plan.state_serial,
            variables: plan.variables.iter().map(|(k, v)| (k, Parts(v))).collect(),
            config_hash: &plan.config_hash,
            targets: &plan.targets,
            rollouts: &plan.rollouts,
            execution: (!plan.execution.is_empty()).then(|| plan.execution.saved(graph)),
            deposed: Each(&plan.deposed, ChangeRef::from),
        },
    };
    let mut out = serde_json::to_vec(&doc).expect("plans always serialize");
    assert!(
        flotilla_state::format::seal::write(&mut out, CHECKSUM_KEY),
        "the checksum is written second"
    );
    out
}

/// Parses and verifies a plan file; `path` is only used in errors.
pub fn decode(bytes: &[u8], path: &str) -> Result<Plan, PlanFileError> {
    let invalid = |why: &str| PlanFileError::Invalid(path.to_string(), why.to_string());
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| invalid("not JSON"))?;
    let format = doc
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    if !matches!(format, Some(1 | 2)) {
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
    let sound = if format == Some(1) {
        let checksum = format!(
            "blake3:{}",
            blake3::hash(&serde_json::to_vec(body).expect("JSON serializes")).to_hex()
        );
        doc.get("checksum").and_then(serde_json::Value::as_str) == Some(checksum.as_str())
    } else {
        flotilla_state::format::seal::check(bytes, CHECKSUM_KEY) == Some(true)
    };
    if !sound {
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
        rollouts: match body.get("rollouts") {
            Some(r) => serde_json::from_value(r.clone()).map_err(|e| invalid(&e.to_string()))?,
            None => Vec::new(),
        },
        deposed: if body.get("deposed").is_some() {
            changes("deposed")?
        } else {
            Vec::new()
        },
        execution: match body.get("execution") {
            Some(e) => crate::exec::Execution::from_saved(
                serde_json::from_value(e.clone()).map_err(|e| invalid(&e.to_string()))?,
            )
            .map_err(|e| invalid(&format!("its execution graph is damaged: {e}")))?,
            None => Default::default(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A plan with every kind of part: a sensitive nested value, unknowns, a replacement
    /// with its reason, a note, drift, an output and a variable.
    fn sample() -> Plan {
        let secret = Value::object([
            ("user", Value::string("admin")),
            ("password", Value::string("hunter2").sensitive()),
        ]);
        let change = ResourceChange {
            addr: "builtin_data.a".parse().unwrap(),
            prev_addr: Some("builtin_data.old".parse().unwrap()),
            provider: ProviderConfigAddr::root("builtin"),
            action: Action::DeleteThenCreate,
            before: Some(Value::object([
                ("input", secret.clone()),
                ("n", Value::float(1.5)),
            ])),
            after: Some(Value::object([
                ("input", secret),
                ("id", Value::Unknown),
                ("list", Value::List(vec![Value::int(3), Value::Unknown])),
            ])),
            replace_reasons: vec![ReplaceReason {
                path: flotilla_lang::AttrPath::attr("input"),
                reason: "cannot change in place".into(),
            }],
            reason: Some("requested with -replace".into()),
            dependencies: vec!["builtin_data.b".into()],
            create_before_destroy: false,
            importing: None,
            notes: vec!["places it somewhere".into()],
        };
        let mut drift = change.clone();
        drift.action = Action::Update;
        drift.notes.clear();
        Plan {
            mode: PlanMode::Normal,
            changes: vec![change],
            drift: vec![drift],
            outputs: vec![OutputChange {
                name: "o".into(),
                action: Action::Create,
                before: None,
                after: Some(Value::Unknown),
                sensitive: true,
            }],
            prior_state: flotilla_state::State::default(),
            state_serial: 7,
            variables: [("region".to_string(), Value::string("cn-north"))].into(),
            config_hash: "abc".into(),
            targets: vec!["builtin_data.a".into()],
            rollouts: Vec::new(),
            execution: Default::default(),
            deposed: Vec::new(),
        }
    }

    fn fixture(version: u64) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../testdata/planfiles/v{version}.json"))
    }

    /// A version 1 file of the same plan: the document as a JSON tree, with the checksum over
    /// the compact JSON of `plan`.
    fn as_version_1(v2: &[u8]) -> Vec<u8> {
        let mut doc: serde_json::Value = serde_json::from_slice(v2).unwrap();
        doc["format_version"] = 1.into();
        let sum = blake3::hash(&serde_json::to_vec(&doc["plan"]).unwrap());
        doc["checksum"] = format!("blake3:{}", sum.to_hex()).into();
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn plan_files_of_each_version_are_read_back() {
        let plan = sample();
        let written = encode(&plan, &flotilla_graph::Graph::default());
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(fixture(2), &written).unwrap();
            std::fs::write(fixture(1), as_version_1(&written)).unwrap();
        }
        assert_eq!(decode(&written, "new").unwrap(), plan);
        for version in [1, 2] {
            let bytes = std::fs::read(fixture(version)).unwrap();
            let read = decode(&bytes, "fixture").unwrap();
            // The fixtures carry the flotilla version that wrote them: this one.
            assert_eq!(read, plan, "testdata/planfiles/v{version}.json");
        }
        // Every value is written as `Value::to_json_parts` would give it.
        let doc: serde_json::Value = serde_json::from_slice(&written).unwrap();
        let after = plan.changes[0].after.as_ref().unwrap().to_json_parts();
        let c = &doc["plan"]["changes"][0]["after"];
        assert_eq!(
            (&c["value"], &c["unknown"], &c["sensitive"]),
            (&after.0, &after.1, &after.2)
        );
    }

    #[test]
    fn an_edited_plan_file_is_refused() {
        let mut bytes = encode(&sample(), &flotilla_graph::Graph::default());
        let at = bytes.windows(7).position(|w| w == b"hunter2").unwrap();
        bytes[at] = b'H';
        assert!(matches!(
            decode(&bytes, "p"),
            Err(PlanFileError::Invalid(_, why)) if why.contains("checksum")
        ));
        let truncated = &encode(&sample(), &flotilla_graph::Graph::default())[..200];
        assert!(decode(truncated, "p").is_err());
    }
}
