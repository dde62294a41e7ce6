//! The waves section of a plan: for each rollout, every wave before anything moves: its
//! members in order and what changes on each, concurrency, gate, approval and soak, and the
//! cumulative exposure after it. The same facts as text, JSON and markdown.

use std::fmt::Write;

use flotilla_plan::rollout::{MemberPlan, OnChange, OnFailure, RolloutPlan, WavePlan};
use flotilla_plan::{Action, Plan};
use serde_json::{Value as Json, json};

/// `1 to add, 2 to change` for a member's changes; `no changes` when it has none.
fn member_summary(m: &MemberPlan) -> String {
    let (mut add, mut change, mut destroy) = (0, 0, 0);
    for (_, a) in &m.changes {
        match a {
            Action::Create => add += 1,
            Action::Update => change += 1,
            Action::Delete => destroy += 1,
            Action::DeleteThenCreate | Action::CreateThenDelete => {
                add += 1;
                destroy += 1;
            }
            Action::NoOp | Action::Read => {}
        }
    }
    let mut parts = Vec::new();
    for (n, what) in [
        (add, "to add"),
        (change, "to change"),
        (destroy, "to destroy"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if parts.is_empty() {
        if m.gate_pending {
            "changed by an earlier apply; waits for its gate".into()
        } else {
            "no changes".into()
        }
    } else {
        let what: Vec<String> = m
            .changes
            .iter()
            .map(|(addr, _)| addr.resource.to_string())
            .collect();
        format!("{} ({})", parts.join(", "), what.join(", "))
    }
}

/// What a new revision does to the unfinished rollout it replaces.
fn change_line(r: &RolloutPlan, old: &str) -> String {
    match r.on_change {
        OnChange::Supersede => format!(
            "supersedes the unfinished rollout of {old}: starts again from wave 1 (with `on_change = \"fold\"` its approvals and soaks would carry over)"
        ),
        OnChange::Fold => format!(
            "folds into the unfinished rollout of {old}: the approvals and soaks of its waves carry over; every member still moves, wave by wave"
        ),
    }
}

/// `3 of 4 members (75%<what>), 6 replicas`.
fn exposure_text(e: &flotilla_plan::rollout::Exposure, fleet: usize, what: &str) -> String {
    format!(
        "{} of {fleet} members ({:.0}%{what}), {} replicas",
        e.members,
        e.share * 100.0,
        e.replicas
    )
}

fn on_failure(r: &RolloutPlan) -> &'static str {
    match r.on_failure {
        OnFailure::Rollback => "roll back every touched member",
        OnFailure::Pause => "pause",
        OnFailure::Abort => "abort",
    }
}

fn duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn wave_line(i: usize, w: &WavePlan, gate: &str) -> String {
    let mut parts = vec![if w.max_concurrency >= w.members.len() {
        "all at once".to_string()
    } else {
        format!(
            "{} at a time (max_concurrency {})",
            w.max_concurrency, w.concurrency
        )
    }];
    parts.push(format!("gate: {gate}"));
    if w.approval {
        parts.push(match &w.approved {
            Some(by) => format!("approved by {by}"),
            None => "needs approval".into(),
        });
    }
    if w.soak_ms > 0 {
        parts.push(format!("soak {}", duration(w.soak_ms)));
    }
    if w.max_failures > 0 {
        parts.push(format!("tolerates {} failed", w.max_failures));
    }
    if w.done {
        parts.push("done".into());
    }
    format!("wave {} {:?}: {}", i + 1, w.name, parts.join(", "))
}

fn gate(r: &RolloutPlan) -> String {
    let mut out = match &r.gate {
        Some(g) => format!("{g} healthy at the revision applied"),
        None => "the objects' own readiness".into(),
    };
    if !r.checks.is_empty() {
        let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
        out.push_str(&format!(
            " and {} {}",
            plural(names.len(), "check"),
            names.join(", ")
        ));
    }
    out
}

/// The rollouts a plan's waves section shows: those that move, or that are held.
fn shown(plan: &Plan) -> impl Iterator<Item = &RolloutPlan> {
    plan.rollouts
        .iter()
        .filter(|r| r.moves() || r.held.is_some())
}

/// `word`, with an `s` unless there is one.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// A revision's readable name.
fn label(r: &RolloutPlan) -> &str {
    if r.label.is_empty() {
        &r.revision
    } else {
        &r.label
    }
}

/// The waves section as text (empty when the plan has no rollout that moves).
pub fn waves_text(plan: &Plan) -> String {
    let mut out = String::new();
    for r in plan.rollouts.iter().filter(|r| r.runs() && !r.moves()) {
        let _ = writeln!(
            out,
            "Rollout {}: {} has reached every member it can; apply records the rollout complete.\n",
            r.key,
            label(r)
        );
    }
    for r in shown(plan) {
        let _ = writeln!(
            out,
            "Rollout {}: {} in {} {}; on a failure beyond {} failed {}: {}",
            r.key,
            label(r),
            r.waves.len(),
            plural(r.waves.len(), "wave"),
            r.max_failures,
            plural(r.max_failures, "member"),
            on_failure(r)
        );
        if let Some(held) = &r.held {
            let _ = writeln!(out, "  held: {held}");
        }
        if let Some(old) = &r.supersedes {
            let _ = writeln!(out, "  {}", change_line(r, old));
        }
        let width = r
            .waves
            .iter()
            .flat_map(|w| &w.members)
            .map(|m| m.name.len())
            .max()
            .unwrap_or(0);
        let exposure = r.exposure();
        let gate = gate(r);
        for (i, w) in r.waves.iter().enumerate() {
            let _ = writeln!(out, "  {}", wave_line(i, w, &gate));
            for m in &w.members {
                let _ = writeln!(out, "      {:width$}  {}", m.name, member_summary(m));
            }
            let _ = writeln!(
                out,
                "      after wave {}: {}",
                i + 1,
                exposure_text(&exposure[i], r.fleet_size, " of the fleet")
            );
        }
        out.push('\n');
    }
    out
}

/// The waves section as JSON (`rollouts` of the JSON plan).
pub fn waves_json(plan: &Plan) -> Json {
    Json::Array(
        plan.rollouts
            .iter()
            .map(|r| {
                let exposure = r.exposure();
                json!({
                    "address": r.key,
                    "name": r.name,
                    "revision": r.revision,
                    "label": r.label,
                    "max_failures": r.max_failures,
                    "on_failure": r.on_failure,
                    "progress_deadline_ms": r.progress_deadline_ms,
                    "gate": r.gate,
                    "checks": r.checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                    "held": r.held,
                    "supersedes": r.supersedes,
                    "on_change": r.on_change,
                    "waves": r.waves.iter().zip(exposure).map(|(w, e)| json!({
                        "name": w.name,
                        "max_concurrency": w.max_concurrency,
                        "max_concurrency_spec": w.concurrency,
                        "soak_ms": w.soak_ms,
                        "approval": w.approval,
                        "approved": w.approved,
                        "max_failures": w.max_failures,
                        "done": w.done,
                        "members": w.members.iter().map(|m| json!({
                            "name": m.name,
                            "changes": m.changes.iter().map(|(a, act)| json!({"address": a.to_string(), "actions": act.as_list()})).collect::<Vec<_>>(),
                            "gate_pending": m.gate_pending,
                        })).collect::<Vec<_>>(),
                        "exposure": {"members": e.members, "share": e.share, "replicas": e.replicas},
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// The waves section as markdown: one table per rollout.
pub fn waves_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    for r in shown(plan) {
        let _ = writeln!(
            out,
            "#### Rollout `{}`: {} in {} {}\n",
            r.key,
            label(r),
            r.waves.len(),
            plural(r.waves.len(), "wave")
        );
        if let Some(held) = &r.held {
            let _ = writeln!(out, "**Held:** {held}\n");
        }
        let _ = writeln!(
            out,
            "On a failure beyond {} failed {}: {}. Gate: {}.\n",
            r.max_failures,
            plural(r.max_failures, "member"),
            on_failure(r),
            gate(r)
        );
        out.push_str("| wave | members | at once | approval | soak | exposure after |\n| --- | --- | --- | --- | --- | --- |\n");
        for (i, (w, e)) in r.waves.iter().zip(r.exposure()).enumerate() {
            let members: Vec<String> = w
                .members
                .iter()
                .map(|m| format!("{} ({})", m.name, member_summary(m)))
                .collect();
            let _ = writeln!(
                out,
                "| {} {} | {} | {} | {} | {} | {} |",
                i + 1,
                w.name.replace('|', "\\|"),
                members.join("<br>").replace('|', "\\|"),
                w.max_concurrency,
                if w.approval { "required" } else { "no" },
                if w.soak_ms > 0 {
                    duration(w.soak_ms)
                } else {
                    "none".into()
                },
                exposure_text(&e, r.fleet_size, "")
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_wave_is_not_waves() {
        assert_eq!(super::plural(1, "wave"), "wave");
        assert_eq!(super::plural(0, "member"), "members");
        assert_eq!(super::plural(2, "check"), "checks");
    }
}
