//! Fleet rollouts in the plan: a `builtin_rollout` instance (the standard `rollout` module
//! declares one) becomes a [`RolloutPlan`]: its waves resolved and checked, each member's
//! changes, what state recorded of an unfinished rollout of the same revision (so apply
//! resumes where it stopped), and the cumulative exposure after each wave. Apply turns it
//! into gates of its execution graph.
//!
//! `max_concurrency` is a whole number of members (at least 1) or a percentage of the wave's
//! members, rounded **up** and at least 1: `50%` of 3 members is 2, `1%` of 3 is 1. `0` and
//! `0%` are errors (a peer reads `"0%"` as 1, which no one means).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flotilla_config::addr::{InstanceKey, ModuleInstance, ResourceInstanceAddr};
use flotilla_lang::Value;
use flotilla_state::{MemberPhase, RolloutRecord, RolloutStatus, State};
use flotilla_syntax::Diagnostic;

use crate::model::{Action, ResourceChange};

/// The resource type that declares a rollout.
pub const ROLLOUT_TYPE: &str = "builtin_rollout";

/// What a failure beyond the budget does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Every touched member back to its previous revision, last wave first.
    Rollback,
    /// Stop; `flotilla rollout resume` lets the next apply continue.
    Pause,
    /// Stop for good at this revision.
    Abort,
}

/// What a new revision does to an unfinished rollout of another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// Start again from wave 1: approvals and soaks are asked again.
    #[default]
    Supersede,
    /// Fold the change into the rollout in progress: the waves it approved and soaked keep
    /// their approvals and soaks (every member still moves, wave by wave, gated).
    Fold,
}

/// One rollout as planned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutPlan {
    /// Where its state record lives: the declaring module instance (`rollout.checkout`).
    pub key: String,
    /// The declaring module instance.
    pub module: ModuleInstance,
    /// The rollout's name.
    pub name: String,
    /// Digest of what is rolled out.
    pub revision: String,
    /// Its readable name (the image).
    pub label: String,
    /// The waves, in order.
    pub waves: Vec<WavePlan>,
    /// Failed members the whole rollout tolerates.
    pub max_failures: usize,
    /// What a failure beyond a budget does.
    pub on_failure: OnFailure,
    /// How long one member may take to become healthy, in milliseconds.
    pub progress_deadline_ms: u64,
    /// The module's resources it moves, keyed by member.
    pub manages: Vec<String>,
    /// The resource whose instance per member is the health gate.
    pub gate: Option<String>,
    /// Replicas per member.
    pub replicas: BTreeMap<String, i64>,
    /// Members of the whole fleet.
    pub fleet_size: usize,
    /// Why apply will not move it (paused, aborted, rolled back at this revision).
    pub held: Option<String>,
    /// The unfinished rollout of another revision this one replaces (its label and wave).
    pub supersedes: Option<String>,
    /// How it replaces it.
    #[serde(default)]
    pub on_change: OnChange,
    /// State records an unfinished rollout of this revision (apply continues it, and
    /// records it complete even when no member is left to move).
    #[serde(default)]
    pub unfinished: bool,
    /// Extra checks each member must pass after its gate.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Resources outside the rollout that join its waves: they depend on the rollout's
    /// outputs (`wave_members`) and are keyed by member, so each member's instance moves
    /// with that member (configuration addresses).
    #[serde(default)]
    pub joins: Vec<String>,
    /// Each member's wave and place in it, made on first use (lookups by member name are
    /// made for every instance of every change).
    #[serde(skip)]
    pub index: MemberIndex,
}

/// Where each member of a rollout is: `(wave, position)` by name, built once from the
/// waves (which do not change after planning). A clone starts empty; any two compare
/// equal, so it never makes two plans differ.
#[derive(Default)]
pub struct MemberIndex(std::sync::OnceLock<HashMap<String, (usize, usize)>>);

impl Clone for MemberIndex {
    fn clone(&self) -> Self {
        MemberIndex::default()
    }
}

impl PartialEq for MemberIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for MemberIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberIndex")
    }
}

/// An extra health check: a data source read on the member whose value at `field` must
/// satisfy the condition.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// Its name, for messages.
    pub name: String,
    /// The data source type read (`kube_object` on the member, or `builtin_http`).
    pub data: String,
    /// Its configuration.
    pub config: serde_json::Value,
    /// A dotted path into the data source's value.
    pub field: String,
    /// The field must equal this.
    pub equals: Option<serde_json::Value>,
    /// ... or be one of these.
    pub one_of: Option<Vec<serde_json::Value>>,
    /// ... or be a number at least this.
    pub min: Option<f64>,
    /// ... and at most this.
    pub max: Option<f64>,
    /// How long it may fail, after the member's gate passed, before the member fails.
    pub wait_ms: u64,
}

impl Check {
    /// The field in a data source's value (JSON), or why the check fails.
    pub fn judge(&self, value: &serde_json::Value) -> Result<(), String> {
        let mut at = value;
        for part in self.field.split('.') {
            at = match at {
                serde_json::Value::Object(m) => m.get(part).unwrap_or(&serde_json::Value::Null),
                serde_json::Value::Array(a) => part
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get(i))
                    .unwrap_or(&serde_json::Value::Null),
                _ => &serde_json::Value::Null,
            };
        }
        let shown = self.field.strip_prefix("object.").unwrap_or(&self.field);
        if at.is_null() {
            return Err(format!("check {}: {shown} is not set", self.name));
        }
        if let Some(want) = &self.equals
            && at != want
        {
            return Err(format!("check {}: {shown} is {at}, not {want}", self.name));
        }
        if let Some(list) = &self.one_of
            && !list.contains(at)
        {
            let list: Vec<String> = list.iter().map(|v| v.to_string()).collect();
            return Err(format!(
                "check {}: {shown} is {at}, not one of {}",
                self.name,
                list.join(", ")
            ));
        }
        if self.min.is_some() || self.max.is_some() {
            let n = at
                .as_f64()
                .or_else(|| at.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| format!("check {}: {shown} is {at}, not a number", self.name))?;
            if let Some(min) = self.min
                && n < min
            {
                return Err(format!("check {}: {shown} is {n}, below {min}", self.name));
            }
            if let Some(max) = self.max
                && n > max
            {
                return Err(format!("check {}: {shown} is {n}, above {max}", self.name));
            }
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct RawCheck {
    name: String,
    data: String,
    config: serde_json::Value,
    field: String,
    equals: Option<serde_json::Value>,
    one_of: Option<Vec<serde_json::Value>>,
    min: Option<f64>,
    max: Option<f64>,
    wait: Option<String>,
}

/// One wave as planned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WavePlan {
    /// Its name.
    pub name: String,
    /// Its members, in order.
    pub members: Vec<MemberPlan>,
    /// `max_concurrency` as written.
    pub concurrency: String,
    /// ... and resolved: members at once.
    pub max_concurrency: usize,
    /// Soak after the wave is healthy, in milliseconds.
    pub soak_ms: u64,
    /// Whether it waits for `flotilla rollout approve`.
    pub approval: bool,
    /// Who approved it already (`by at`), for this revision.
    pub approved: Option<String>,
    /// Failed members it tolerates.
    pub max_failures: usize,
    /// Finished by an earlier apply of this revision.
    pub done: bool,
}

/// One member of a wave as planned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MemberPlan {
    /// The member's name.
    pub name: String,
    /// Its instances that change, with their actions.
    pub changes: Vec<(ResourceInstanceAddr, Action)>,
    /// An earlier apply changed it but its gate never passed: apply waits for the gate.
    pub gate_pending: bool,
}

impl MemberPlan {
    /// Whether this apply moves it (changes or a gate to finish).
    pub fn moves(&self) -> bool {
        !self.changes.is_empty() || self.gate_pending
    }
}

impl WavePlan {
    /// Whether this apply has anything to do in the wave.
    pub fn moves(&self) -> bool {
        self.members.iter().any(MemberPlan::moves)
    }
}

/// Cumulative exposure after a wave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exposure {
    /// Members on the revision.
    pub members: usize,
    /// Their share of the fleet, 0 to 1.
    pub share: f64,
    /// Their replicas.
    pub replicas: i64,
}

impl RolloutPlan {
    /// Whether this apply moves any member.
    pub fn moves(&self) -> bool {
        self.waves.iter().any(WavePlan::moves)
    }

    /// Whether apply has anything to do for it: members to move, or an unfinished record to
    /// complete.
    pub fn runs(&self) -> bool {
        self.held.is_none() && (self.moves() || self.unfinished)
    }

    /// Exposure after each wave (members of earlier waves included).
    pub fn exposure(&self) -> Vec<Exposure> {
        let mut members = 0;
        let mut replicas = 0;
        self.waves
            .iter()
            .map(|w| {
                members += w.members.len();
                replicas += w
                    .members
                    .iter()
                    .map(|m| self.replicas.get(&m.name).copied().unwrap_or(0))
                    .sum::<i64>();
                Exposure {
                    members,
                    share: if self.fleet_size == 0 {
                        0.0
                    } else {
                        members as f64 / self.fleet_size as f64
                    },
                    replicas,
                }
            })
            .collect()
    }

    /// The member an instance of a managed (or joining) resource belongs to.
    pub fn member_of<'a>(&self, addr: &'a ResourceInstanceAddr) -> Option<&'a str> {
        let managed = addr.module == self.module && {
            let resource = addr.resource.to_string();
            self.manages.contains(&resource)
        };
        let joining = !managed
            && !self.joins.is_empty()
            && self.joins.contains(&addr.config_addr())
            && matches!(&addr.key, InstanceKey::Str(m) if self.find(m).is_some());
        if !managed && !joining {
            return None;
        }
        match &addr.key {
            InstanceKey::Str(m) => Some(m),
            _ => None,
        }
    }

    /// The wave (index) and member plan of a member.
    pub fn find(&self, member: &str) -> Option<(usize, &MemberPlan)> {
        let index = self.index.0.get_or_init(|| {
            let mut at = HashMap::new();
            for (i, w) in self.waves.iter().enumerate() {
                for (j, m) in w.members.iter().enumerate() {
                    at.entry(m.name.clone()).or_insert((i, j));
                }
            }
            at
        });
        let &(i, j) = index.get(member)?;
        Some((i, &self.waves[i].members[j]))
    }
}

#[derive(serde::Deserialize)]
struct RawWave {
    name: String,
    selected: Option<Vec<String>>,
    #[serde(default)]
    names: Vec<String>,
    max_concurrency: String,
    soak: String,
    approval: bool,
    max_failures: f64,
}

#[derive(serde::Deserialize)]
struct RawSpec {
    name: String,
    revision: serde_json::Value,
    label: Option<String>,
    members: Vec<String>,
    waves: Vec<RawWave>,
    max_failures: Option<f64>,
    on_failure: Option<OnFailure>,
    progress_deadline: Option<String>,
    manages: Vec<String>,
    gate: Option<String>,
    replicas: Option<BTreeMap<String, f64>>,
    fleet_size: Option<f64>,
    #[serde(default)]
    checks: Option<Vec<RawCheck>>,
    #[serde(default)]
    on_change: Option<OnChange>,
}

/// Members at once for `spec` in a wave of `n` members (see the module doc).
pub fn concurrency(spec: &str, n: usize) -> Result<usize, String> {
    let spec = spec.trim();
    let bad = || {
        format!(
            "`max_concurrency` is a number of members (at least 1) or a percentage such as \"25%\", not {spec:?}"
        )
    };
    if let Some(p) = spec.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(format!(
                "`max_concurrency` {spec:?} must be above 0% and at most 100%"
            ));
        }
        return Ok(((p * n as f64 / 100.0).ceil() as usize).max(1));
    }
    match spec.parse::<f64>() {
        Ok(v) if v >= 1.0 && v.fract() == 0.0 => Ok(v as usize),
        _ => Err(bad()),
    }
}

fn whole(v: f64, what: &str) -> Result<usize, String> {
    if v >= 0.0 && v.fract() == 0.0 {
        Ok(v as usize)
    } else {
        Err(format!("`{what}` is a whole number of members, not {v}"))
    }
}

fn list(names: &[&str]) -> String {
    names.join(", ")
}

/// The resources outside the module at `path` that depend on one of its outputs (they join
/// its waves when keyed by member).
fn joining(graph: &flotilla_graph::Graph, path: &flotilla_config::addr::ModulePath) -> Vec<String> {
    use flotilla_graph::NodeKind;
    let mut out: Vec<String> = graph
        .inner
        .node_indices()
        .filter(|&i| {
            let n = graph.node(i);
            matches!(n.kind, NodeKind::Resource(_))
                && !n.module.0.starts_with(&path.0)
                && graph.dependencies(i).any(|d| {
                    let d = graph.node(d);
                    d.module == *path && matches!(d.kind, NodeKind::Output(_))
                })
        })
        .map(|i| graph.node(i).to_string())
        .collect();
    out.sort();
    out
}

/// Reads the rollouts the plan's `builtin_rollout` instances declare. `span_of` gives the
/// declaring resource's diagnostics their location; `graph` tells which resources join
/// their waves.
pub fn plan_rollouts(
    changes: &[ResourceChange],
    prior: &State,
    graph: Option<&flotilla_graph::Graph>,
    span_of: impl Fn(&ResourceInstanceAddr) -> Option<flotilla_syntax::Span>,
) -> (Vec<RolloutPlan>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for c in changes
        .iter()
        .filter(|c| c.addr.resource.type_ == ROLLOUT_TYPE && c.action != Action::Delete)
    {
        let Some(value) = c.after.as_ref().or(c.before.as_ref()) else {
            continue;
        };
        if value.contains_unknown() {
            // Its members are not known yet (clusters still to be made): nothing runs on
            // them yet, so the first apply installs every member at once.
            continue;
        }
        match rollout_from(c, value, prior) {
            Ok(mut r) => {
                if let Some(g) = graph {
                    r.joins = joining(g, &r.module.path());
                }
                out.push(r)
            }
            Err((summary, help)) => {
                let mut d =
                    Diagnostic::error(format!("invalid rollout waves in {}", c.addr.module))
                        .with_detail(summary)
                        .with_help(help);
                if let Some(span) = span_of(&c.addr) {
                    d = d.with_span(span);
                }
                diags.push(d);
            }
        }
    }
    attach_changes(&mut out, changes);
    (out, diags)
}

fn rollout_from(
    c: &ResourceChange,
    value: &Value,
    prior: &State,
) -> Result<RolloutPlan, (String, String)> {
    let plain = |e: String| {
        (
            e,
            "see docs/rollouts.md for the fields of a wave".to_string(),
        )
    };
    let raw: RawSpec = serde_json::from_value(value.clone().unmark().0.to_json())
        .map_err(|e| plain(format!("the rollout's description is malformed: {e}")))?;
    if raw.waves.is_empty() {
        return Err((
            "it has no waves".into(),
            "give `waves` at least one wave, or leave it unset for one wave of every member".into(),
        ));
    }
    let all: BTreeSet<&str> = raw.members.iter().map(String::as_str).collect();
    // Explicit waves first; a wave that selects nothing takes the rest.
    let mut taken: BTreeMap<&str, &str> = BTreeMap::new();
    let mut members: Vec<Vec<String>> = Vec::new();
    for w in &raw.waves {
        let unknown: Vec<&str> = w
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| !all.contains(n))
            .collect();
        if !unknown.is_empty() {
            return Err((
                format!(
                    "wave {:?} names members the rollout does not have: {}",
                    w.name,
                    list(&unknown)
                ),
                format!(
                    "its members are: {}",
                    list(&all.iter().copied().collect::<Vec<_>>())
                ),
            ));
        }
        let Some(sel) = &w.selected else {
            members.push(Vec::new());
            continue;
        };
        for m in sel {
            if let Some(other) = taken.insert(m, &w.name) {
                return Err((
                    format!("member {m} is in two waves: {other:?} and {:?}", w.name),
                    "a member moves once: narrow the selectors or lists so each member is in one wave".into(),
                ));
            }
        }
        members.push(sel.clone());
    }
    for (w, ms) in raw.waves.iter().zip(members.iter_mut()) {
        if w.selected.is_none() {
            *ms = raw
                .members
                .iter()
                .filter(|m| !taken.contains_key(m.as_str()))
                .cloned()
                .collect();
            for m in ms.iter() {
                taken.insert(m, &w.name);
            }
        }
    }
    let unassigned: Vec<&str> = raw
        .members
        .iter()
        .map(String::as_str)
        .filter(|m| !taken.contains_key(m))
        .collect();
    if !unassigned.is_empty() {
        return Err((
            format!("members in no wave: {}", list(&unassigned)),
            "add them to a wave, or end `waves` with one that sets neither `selector` nor `members` (it takes the rest)".into(),
        ));
    }
    let key = c.addr.module.to_string();
    let revision = blake3::hash(raw.revision.to_string().as_bytes())
        .to_hex()
        .to_string();
    let record = prior.rollouts.get(&key);
    let same = record.filter(|r| r.revision == revision);
    let on_change = raw.on_change.unwrap_or_default();
    // Folded into an unfinished rollout of another revision: its waves' approvals and soaks.
    let folded = record
        .filter(|r| on_change == OnChange::Fold && r.revision != revision && !r.status.is_final());
    let mut waves = Vec::new();
    for (w, ms) in raw.waves.iter().zip(members) {
        if ms.is_empty() {
            return Err((
                format!("wave {:?} selects no member", w.name),
                "check its `selector` and `members` against the members' names and labels (`fleet.NAME.member_labels`)".into(),
            ));
        }
        let max_concurrency = concurrency(&w.max_concurrency, ms.len()).map_err(plain)?;
        let soak_ms = duration_ms(&w.soak, "soak").map_err(plain)?;
        let index = waves.len();
        let recorded = same
            .or(folded)
            .and_then(|r| r.waves.get(index))
            .filter(|r| r.name == w.name);
        let members = ms
            .into_iter()
            .map(|name| MemberPlan {
                changes: Vec::new(),
                gate_pending: same.is_some_and(|r| {
                    r.members
                        .get(&name)
                        .is_some_and(|m| m.phase == MemberPhase::Progressing)
                }),
                name,
            })
            .collect();
        waves.push(WavePlan {
            name: w.name.clone(),
            members,
            concurrency: w.max_concurrency.clone(),
            max_concurrency,
            soak_ms,
            approval: w.approval,
            approved: recorded
                .and_then(|r| r.approval.as_ref())
                .map(|a| format!("{} at {}", a.by, a.at)),
            max_failures: whole(w.max_failures, "max_failures").map_err(plain)?,
            done: same.is_some() && recorded.is_some_and(|r| r.done),
        });
    }
    let held = same.and_then(|r| held_reason(r, &raw.name));
    let supersedes = record
        .filter(|r| r.revision != revision && !r.status.is_final())
        .map(|r| {
            format!(
                "{} (stopped in wave {} of {}, {})",
                if r.label.is_empty() {
                    &r.revision
                } else {
                    &r.label
                },
                r.wave + 1,
                r.waves.len(),
                r.status.as_str()
            )
        });
    Ok(RolloutPlan {
        key,
        module: c.addr.module.clone(),
        name: raw.name.clone(),
        revision,
        label: raw.label.clone().unwrap_or_default(),
        waves,
        max_failures: whole(raw.max_failures.unwrap_or(0.0), "max_failures").map_err(plain)?,
        on_failure: raw.on_failure.unwrap_or(OnFailure::Pause),
        progress_deadline_ms: duration_ms(
            raw.progress_deadline.as_deref().unwrap_or("10m"),
            "progress_deadline",
        )
        .map_err(plain)?,
        manages: raw.manages.clone(),
        gate: raw.gate.clone(),
        replicas: raw
            .replicas
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), *v as i64))
            .collect(),
        fleet_size: raw.fleet_size.unwrap_or(raw.members.len() as f64) as usize,
        unfinished: same.is_some_and(|r| !r.status.is_final()),
        held,
        supersedes,
        on_change,
        joins: Vec::new(),
        index: MemberIndex::default(),
        checks: raw
            .checks
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let conditions = [
                    c.equals.is_some(),
                    c.one_of.is_some(),
                    c.min.is_some() || c.max.is_some(),
                ];
                if !conditions.contains(&true) {
                    return Err((
                        format!("check {:?} has no condition", c.name),
                        "give it `equals`, `one_of`, `min` or `max`".to_string(),
                    ));
                }
                Ok(Check {
                    wait_ms: duration_ms(c.wait.as_deref().unwrap_or("0s"), "wait")
                        .map_err(plain)?,
                    name: c.name,
                    data: c.data,
                    config: c.config,
                    field: c.field,
                    equals: c.equals,
                    one_of: c.one_of,
                    min: c.min,
                    max: c.max,
                })
            })
            .collect::<Result<_, _>>()?,
    })
}

/// Why a recorded rollout of the same revision does not move.
fn held_reason(r: &RolloutRecord, name: &str) -> Option<String> {
    let why = |what: &str| {
        let message = if r.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.message)
        };
        Some(format!(
            "{what}{message}; run `flotilla rollout resume {name}` to move it again, or change the configuration"
        ))
    };
    match r.status {
        RolloutStatus::Paused => why("paused"),
        RolloutStatus::Aborted => why("this revision's rollout was aborted"),
        RolloutStatus::RolledBack => why("this revision was rolled back"),
        _ => None,
    }
}

/// Puts each managed instance's change under its member.
fn attach_changes(rollouts: &mut [RolloutPlan], changes: &[ResourceChange]) {
    for r in rollouts.iter_mut() {
        let mut by_member: BTreeMap<String, Vec<(ResourceInstanceAddr, Action)>> = BTreeMap::new();
        for c in changes.iter().filter(|c| c.action != Action::NoOp) {
            if let Some(m) = r.member_of(&c.addr) {
                by_member
                    .entry(m.to_string())
                    .or_default()
                    .push((c.addr.clone(), c.action));
            }
        }
        for w in &mut r.waves {
            for m in &mut w.members {
                m.changes = by_member.remove(&m.name).unwrap_or_default();
            }
        }
    }
}

fn duration_ms(s: &str, what: &str) -> Result<u64, String> {
    flotilla_provider::parse_duration(s)
        .map(|d| d.as_millis() as u64)
        .ok_or_else(|| {
            format!("`{what}` {s:?} is not a duration like \"30s\", \"2m\" or \"500ms\"")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_state::{MemberRecord, WaveRecord};

    fn wave(name: &str, selected: Option<&[&str]>, extra: serde_json::Value) -> serde_json::Value {
        let mut w = serde_json::json!({
            "name": name,
            "selected": selected.map(|s| s.to_vec()),
            "names": [],
            "max_concurrency": "100%",
            "soak": "0s",
            "approval": false,
            "max_failures": 0,
        });
        for (k, v) in extra.as_object().unwrap() {
            w[k] = v.clone();
        }
        w
    }

    /// A planned `builtin_rollout` in `rollout.checkout` over members a, b, c, d, and an
    /// update of member `b`'s Deployment.
    fn changes(waves: Vec<serde_json::Value>) -> Vec<ResourceChange> {
        let spec = serde_json::json!({
            "name": "checkout",
            "revision": {"image": "app:2"},
            "label": "app:2",
            "members": ["a", "b", "c", "d"],
            "waves": waves,
            "max_failures": 0,
            "on_failure": "rollback",
            "progress_deadline": "1m",
            "manages": ["kube_manifest.deployment"],
            "gate": "kube_manifest.deployment",
            "replicas": {"a": 1, "b": 2, "c": 3, "d": 4},
            "fleet_size": 8,
        });
        let change = |addr: &str, action: Action, after: serde_json::Value| ResourceChange {
            addr: addr.parse().unwrap(),
            prev_addr: None,
            provider: "provider.builtin".parse().unwrap(),
            action,
            before: None,
            after: Some(Value::from_json(&after)),
            replace_reasons: Vec::new(),
            reason: None,
            dependencies: Vec::new(),
            create_before_destroy: false,
            importing: None,
            notes: Vec::new(),
        };
        vec![
            change(
                "rollout.checkout.builtin_rollout.this",
                Action::Update,
                spec,
            ),
            change(
                "rollout.checkout.kube_manifest.deployment[\"b\"]",
                Action::Update,
                serde_json::json!({}),
            ),
            change(
                "rollout.checkout.kube_manifest.deployment[\"c\"]",
                Action::NoOp,
                serde_json::json!({}),
            ),
        ]
    }

    fn planned(waves: Vec<serde_json::Value>, prior: &State) -> Result<RolloutPlan, String> {
        let (mut r, d) = plan_rollouts(&changes(waves), prior, None, |_| None);
        match d.first() {
            Some(d) => Err(format!(
                "{} | {}",
                d.detail.clone().unwrap_or_default(),
                d.help.clone().unwrap_or_default()
            )),
            None => Ok(r.remove(0)),
        }
    }

    #[test]
    fn waves_resolve_the_rest_and_carry_each_members_changes_and_exposure() {
        let r = planned(
            vec![
                wave("canary", Some(&["b"]), serde_json::json!({"soak": "2s"})),
                wave("rest", None, serde_json::json!({"max_concurrency": "50%"})),
            ],
            &State::new(),
        )
        .unwrap();
        let names: Vec<Vec<&str>> = r
            .waves
            .iter()
            .map(|w| w.members.iter().map(|m| m.name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["b"], vec!["a", "c", "d"]]);
        assert_eq!(r.waves[0].soak_ms, 2000);
        assert_eq!(r.waves[1].max_concurrency, 2, "50% of 3, rounded up");
        assert_eq!(r.waves[0].members[0].changes.len(), 1);
        assert!(
            r.waves[1].members.iter().all(|m| !m.moves()),
            "only b changes"
        );
        assert!(r.moves());
        let e = r.exposure();
        assert_eq!((e[0].members, e[0].replicas), (1, 2));
        assert_eq!((e[1].members, e[1].replicas), (4, 10));
        assert!((e[0].share - 0.125).abs() < 1e-9, "of the whole fleet of 8");
        assert_eq!(r.on_failure, OnFailure::Rollback);
        assert_eq!(r.progress_deadline_ms, 60_000);
        // Members are found by name (through the index, built on first use).
        assert_eq!(
            r.find("c").map(|(w, m)| (w, m.name.as_str())),
            Some((1, "c"))
        );
        assert_eq!(r.find("b").map(|(w, _)| w), Some(0));
        assert!(r.find("z").is_none());
        let copy = r.clone();
        assert_eq!(copy, r, "the index never makes two plans differ");
        assert_eq!(copy.find("d").map(|(w, _)| w), Some(1));
    }

    #[test]
    fn the_traps_are_errors_that_say_what_to_do() {
        let none = State::new();
        let err = planned(
            vec![wave("one", Some(&["a", "b"]), serde_json::json!({}))],
            &none,
        )
        .unwrap_err();
        assert!(err.contains("members in no wave: c, d"), "{err}");
        assert!(err.contains("takes the rest"), "{err}");
        let err = planned(
            vec![
                wave("one", Some(&["a", "b"]), serde_json::json!({})),
                wave("two", Some(&["b", "c", "d"]), serde_json::json!({})),
            ],
            &none,
        )
        .unwrap_err();
        assert!(
            err.contains("member b is in two waves: \"one\" and \"two\""),
            "{err}"
        );
        let err = planned(
            vec![
                wave("empty", Some(&[]), serde_json::json!({})),
                wave("rest", None, serde_json::json!({})),
            ],
            &none,
        )
        .unwrap_err();
        assert!(err.contains("wave \"empty\" selects no member"), "{err}");
        let err = planned(
            vec![wave("x", None, serde_json::json!({"names": ["zz"]}))],
            &none,
        )
        .unwrap_err();
        assert!(
            err.contains("names members the rollout does not have: zz"),
            "{err}"
        );
        let err = planned(
            vec![wave(
                "x",
                None,
                serde_json::json!({"max_concurrency": "0%"}),
            )],
            &none,
        )
        .unwrap_err();
        assert!(err.contains("above 0%"), "{err}");
        let err = planned(vec![], &none).unwrap_err();
        assert!(err.contains("no waves"), "{err}");
    }

    #[test]
    fn a_recorded_rollout_of_the_revision_resumes_or_holds() {
        let waves = || {
            vec![
                wave("canary", Some(&["b"]), serde_json::json!({})),
                wave("rest", None, serde_json::json!({"approval": true})),
            ]
        };
        let fresh = planned(waves(), &State::new()).unwrap();
        let mut prior = State::new();
        let mut record = RolloutRecord {
            name: "checkout".into(),
            revision: fresh.revision.clone(),
            status: RolloutStatus::WaitingApproval,
            wave: 1,
            waves: vec![
                WaveRecord {
                    name: "canary".into(),
                    done: true,
                    ..Default::default()
                },
                WaveRecord {
                    name: "rest".into(),
                    needs_approval: true,
                    approval: Some(flotilla_state::Approval {
                        by: "alice".into(),
                        at: "2026-12-01T00:00:00Z".into(),
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        record.members.insert(
            "c".into(),
            MemberRecord {
                wave: 1,
                phase: MemberPhase::Progressing,
                ..Default::default()
            },
        );
        prior
            .rollouts
            .insert("rollout.checkout".into(), record.clone());
        let resumed = planned(waves(), &prior).unwrap();
        assert!(resumed.waves[0].done);
        assert_eq!(
            resumed.waves[1].approved.as_deref(),
            Some("alice at 2026-12-01T00:00:00Z")
        );
        let c = &resumed.waves[1].members[1];
        assert_eq!(c.name, "c");
        assert!(c.gate_pending && c.moves(), "c's gate never passed");
        assert!(resumed.held.is_none() && resumed.supersedes.is_none());

        record.status = RolloutStatus::RolledBack;
        record.message = "c failed".into();
        prior
            .rollouts
            .insert("rollout.checkout".into(), record.clone());
        let held = planned(waves(), &prior).unwrap();
        assert!(
            held.held
                .as_deref()
                .unwrap()
                .contains("rolled back (c failed)")
        );

        record.revision = "another".into();
        record.label = "app:1".into();
        record.status = RolloutStatus::Progressing;
        prior.rollouts.insert("rollout.checkout".into(), record);
        let superseding = planned(waves(), &prior).unwrap();
        assert_eq!(
            superseding.supersedes.as_deref(),
            Some("app:1 (stopped in wave 2 of 2, progressing)")
        );
        assert!(
            !superseding.waves[0].done,
            "a new revision starts from wave 1"
        );
        assert_eq!(superseding.on_change, OnChange::Supersede);
        assert!(
            superseding.waves[1].approved.is_none(),
            "approvals are asked again"
        );

        // Folded: the old rollout's approvals carry over to the new revision.
        let mut fold = changes(waves());
        let mut spec = fold[0].after.clone().unwrap().to_json();
        spec["on_change"] = serde_json::json!("fold");
        fold[0].after = Some(Value::from_json(&spec));
        let (folding, d) = plan_rollouts(&fold, &prior, None, |_| None);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(folding[0].on_change, OnChange::Fold);
        assert_eq!(
            folding[0].waves[1].approved.as_deref(),
            Some("alice at 2026-12-01T00:00:00Z")
        );
        assert!(!folding[0].waves[0].done, "its members still move");
    }

    #[test]
    fn checks_judge_a_field_of_what_they_read() {
        let check = |field: &str, cond: serde_json::Value| {
            let mut c = Check {
                name: "slo".into(),
                data: "kube_object".into(),
                config: serde_json::json!({}),
                field: field.into(),
                equals: None,
                one_of: None,
                min: None,
                max: None,
                wait_ms: 0,
            };
            c.equals = cond.get("equals").cloned();
            c.one_of = cond
                .get("one_of")
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            c.min = cond["min"].as_f64();
            c.max = cond["max"].as_f64();
            c
        };
        let read = serde_json::json!({"object": {"data": {"status": "ok", "ratio": "0.97"},
            "status": {"readyReplicas": 2, "conditions": [{"type": "Ready"}]}}});
        let ok = |c: Check| c.judge(&read);
        assert_eq!(
            ok(check(
                "object.data.status",
                serde_json::json!({"equals": "ok"})
            )),
            Ok(())
        );
        assert_eq!(
            ok(check(
                "object.data.status",
                serde_json::json!({"equals": "fine"})
            )),
            Err("check slo: data.status is \"ok\", not \"fine\"".into())
        );
        assert_eq!(
            ok(check(
                "object.status.readyReplicas",
                serde_json::json!({"min": 2})
            )),
            Ok(())
        );
        assert!(
            ok(check(
                "object.status.readyReplicas",
                serde_json::json!({"min": 3})
            ))
            .unwrap_err()
            .contains("below 3")
        );
        assert_eq!(
            ok(check(
                "object.data.ratio",
                serde_json::json!({"min": 0.95, "max": 1})
            )),
            Ok(())
        );
        assert_eq!(
            ok(check(
                "object.status.conditions.0.type",
                serde_json::json!({"one_of": ["Ready", "Available"]})
            )),
            Ok(())
        );
        assert!(
            ok(check(
                "object.data.missing",
                serde_json::json!({"equals": 1})
            ))
            .unwrap_err()
            .contains("data.missing is not set")
        );
    }

    #[test]
    fn concurrency_rounds_percentages_up_and_refuses_zero() {
        assert_eq!(concurrency("2", 5), Ok(2));
        assert_eq!(concurrency("50%", 3), Ok(2));
        assert_eq!(concurrency("1%", 3), Ok(1));
        assert_eq!(concurrency("100%", 7), Ok(7));
        assert_eq!(concurrency("34%", 3), Ok(2));
        assert!(concurrency("0", 3).is_err());
        assert!(concurrency("0%", 3).is_err());
        assert!(concurrency("150%", 3).is_err());
        assert!(concurrency("1.5", 3).is_err());
        assert!(concurrency("many", 3).is_err());
    }
}
