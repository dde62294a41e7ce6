//! `flotilla rollout status|approve|pause|resume|abort`: where fleet rollouts stand, and the
//! decisions people make about them. Each reads the rollout's record in state (written by
//! apply as it moves members); the decisions change that record under the state lock and
//! take effect at the next `flotilla apply`.

use std::sync::Arc;

use flotilla_provider::ProviderHost;
use flotilla_state::rollout::now;
use flotilla_state::{Approval, MemberPhase, RolloutRecord, RolloutStatus, State};
use flotilla_syntax::Diagnostic;
use serde_json::json;

use crate::commands::{env, error};
use crate::output::Ui;
use crate::workspace::{self, Workspace};
use crate::{RolloutCommand, RolloutTarget, VarArgs};

/// `flotilla rollout ...`.
pub fn rollout(ui: &Ui, host: &Arc<ProviderHost>, cmd: RolloutCommand) -> u8 {
    let ws = tri!(workspace::load(ui, &env(host, &VarArgs::default())));
    match cmd {
        RolloutCommand::Status { name, json } => {
            let state = tri!(workspace::load_state(&ws, ui, false));
            let keys: Vec<String> = match &name {
                Some(n) => vec![tri!(find(ui, &state, n))],
                None => state.rollouts.keys().cloned().collect(),
            };
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| status_json(k, &state.rollouts[k]))
                    .collect();
                ui.out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&json!({ "rollouts": list })).unwrap_or_default()
                ));
            } else if keys.is_empty() {
                ui.out("No rollouts in state: a `rollout` block records its progress at its first apply.\n");
            } else {
                for k in &keys {
                    ui.out(&status_text(k, &state.rollouts[k]));
                }
            }
            0
        }
        RolloutCommand::Approve(t) => {
            edit(ui, &ws, &t, "rollout approve", |key, r| {
                if r.status.is_final() {
                    return Err(not_moving(key, r));
                }
                let Some(w) = (r.wave..r.waves.len())
                    .find(|&w| r.waves[w].needs_approval && r.waves[w].approval.is_none())
                else {
                    return Err(Diagnostic::error("nothing waits for approval")
                    .with_detail(format!(
                        "no wave of {key} from wave {} on needs an approval it does not have",
                        r.wave + 1
                    ))
                    .with_help("waves that need one set `approval = true`; see `flotilla rollout status`"));
                };
                let by = user();
                r.waves[w].approval = Some(Approval {
                    by: by.clone(),
                    at: now(),
                });
                if r.status == RolloutStatus::WaitingApproval {
                    r.status = RolloutStatus::Progressing;
                    r.message.clear();
                }
                Ok(format!(
                    "Approved wave {} {:?} of {key} as {by}. Run `flotilla apply` to continue the rollout.\n",
                    w + 1,
                    r.waves[w].name
                ))
            })
        }
        RolloutCommand::Pause(t) => edit(ui, &ws, &t, "rollout pause", |key, r| {
            if r.status.is_final() {
                return Err(not_moving(key, r));
            }
            r.status = RolloutStatus::Paused;
            r.message = format!("paused by {} at {}", user(), now());
            Ok(format!(
                "Paused {key} at wave {} of {}: `flotilla apply` will not move it until `flotilla rollout resume {}`.\n",
                r.wave + 1,
                r.waves.len(),
                t.name
            ))
        }),
        RolloutCommand::Abort(t) => edit(ui, &ws, &t, "rollout abort", |key, r| {
            if r.status.is_final() {
                return Err(not_moving(key, r));
            }
            r.status = RolloutStatus::Aborted;
            r.message = format!("aborted by {} at {}", user(), now());
            Ok(format!(
                "Aborted {key}: members keep the revision they run now (see `flotilla rollout status {}`); `flotilla apply` will not move this revision again.\n",
                t.name
            ))
        }),
        RolloutCommand::Resume(t) => {
            let name = t.name.clone();
            edit(ui, &ws, &t, "rollout resume", move |key, r| {
                match r.status {
                    RolloutStatus::Paused | RolloutStatus::WaitingApproval => {
                        r.status = RolloutStatus::Progressing;
                        r.message.clear();
                        Ok(format!(
                            "Resumed {key} at wave {} of {}. Run `flotilla apply` to continue it.\n",
                            r.wave + 1,
                            r.waves.len()
                        ))
                    }
                    RolloutStatus::RolledBack | RolloutStatus::Aborted => {
                        // Forgotten: the next apply starts this revision again from wave 1.
                        *r = RolloutRecord::default();
                        Ok(format!(
                            "Cleared {key}: the next `flotilla apply` rolls the configured revision out again from wave 1.\n"
                        ))
                    }
                    RolloutStatus::Progressing => Err(Diagnostic::error("nothing to resume")
                        .with_detail(format!("{key} is not paused"))
                        .with_help(format!(
                            "`flotilla apply` continues it; see `flotilla rollout status {name}`"
                        ))),
                    RolloutStatus::Completed => Err(not_moving(key, r)),
                }
            })
        }
    }
}

fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn not_moving(key: &str, r: &RolloutRecord) -> Diagnostic {
    Diagnostic::error(format!("{key} is {}", r.status.as_str()))
        .with_detail("nothing more moves at this revision")
        .with_help("change the configuration for a new rollout, or `flotilla rollout resume` a rolled back or aborted one to try it again")
}

/// The state key of the rollout `name` (`checkout`, `rollout.checkout`, or a full module
/// address).
fn find(ui: &Ui, state: &State, name: &str) -> Result<String, u8> {
    let matches: Vec<&String> = state
        .rollouts
        .iter()
        .filter(|(k, r)| {
            k.as_str() == name || r.name == name || k.ends_with(&format!("rollout.{name}"))
        })
        .map(|(k, _)| k)
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let known: Vec<&str> = state.rollouts.keys().map(String::as_str).collect();
            Err(error(
                ui,
                Diagnostic::error("no such rollout in state")
                    .with_detail(format!("no rollout named {name:?} has been applied"))
                    .with_help(if known.is_empty() {
                        "a `rollout` block records its progress at its first apply".to_string()
                    } else {
                        format!("rollouts in state: {}", known.join(", "))
                    }),
            ))
        }
        many => Err(error(
            ui,
            Diagnostic::error("ambiguous rollout name")
                .with_detail(format!(
                    "{name:?} names {}",
                    many.iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .with_help("give the full address"),
        )),
    }
}

/// Changes one rollout's record under the state lock.
fn edit(
    ui: &Ui,
    ws: &Workspace,
    target: &RolloutTarget,
    operation: &str,
    change: impl FnOnce(&str, &mut RolloutRecord) -> Result<String, Diagnostic>,
) -> u8 {
    let timeout = match workspace::lock_timeout(&target.lock_timeout) {
        Ok(t) => t,
        Err(d) => return error(ui, d),
    };
    let _lock = match workspace::lock(ui, &*ws.backend, operation, timeout) {
        Ok(l) => l,
        Err(e) => return error(ui, e.to_diagnostic("cannot lock state")),
    };
    let mut state = tri!(workspace::load_state(ws, ui, true));
    let key = tri!(find(ui, &state, &target.name));
    let mut record = state.rollouts[&key].clone();
    let message = match change(&key, &mut record) {
        Ok(m) => m,
        Err(d) => return error(ui, d),
    };
    if record == RolloutRecord::default() {
        state.rollouts.remove(&key);
    } else {
        record.updated = now();
        state.rollouts.insert(key, record);
    }
    match ws.backend.persist(&mut state) {
        Ok(()) => {
            ui.out(&message);
            0
        }
        Err(e) => error(ui, e.to_diagnostic("cannot save state")),
    }
}

fn revision_of(r: &RolloutRecord, revision: Option<&String>) -> String {
    match revision {
        Some(rev) if *rev == r.revision && !r.label.is_empty() => r.label.clone(),
        Some(rev) => rev.chars().take(12).collect(),
        None => "previous".into(),
    }
}

fn status_text(key: &str, r: &RolloutRecord) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = write!(
        out,
        "{key}: {} ({}), {}",
        if r.label.is_empty() {
            "revision"
        } else {
            &r.label
        },
        r.revision.chars().take(12).collect::<String>(),
        r.status.as_str()
    );
    if r.status == RolloutStatus::Progressing || r.status == RolloutStatus::WaitingApproval {
        let _ = write!(
            out,
            " at wave {} of {}",
            (r.wave + 1).min(r.waves.len()),
            r.waves.len()
        );
    }
    if !r.message.is_empty() {
        let _ = write!(out, ": {}", r.message);
    }
    let _ = writeln!(out, "\n  updated {}", r.updated);
    let width = r.members.keys().map(String::len).max().unwrap_or(0);
    for (i, w) in r.waves.iter().enumerate() {
        let mut notes = Vec::new();
        if w.done {
            notes.push("done".to_string());
        }
        match (&w.approval, w.needs_approval) {
            (Some(a), _) => notes.push(format!("approved by {} at {}", a.by, a.at)),
            (None, true) => notes.push("needs approval".into()),
            _ => {}
        }
        if let Some(s) = &w.soak_started {
            notes.push(format!("soak began {s}"));
        }
        let _ = writeln!(
            out,
            "  wave {} {:?}{}",
            i + 1,
            w.name,
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            }
        );
        for name in &w.members {
            let Some(m) = r.members.get(name) else {
                continue;
            };
            let mut line = format!(
                "    {name:width$}  {:11}  {}",
                m.phase.as_str(),
                revision_of(r, m.revision.as_ref())
            );
            if let Some(weight) = m.weight.filter(|_| m.phase == MemberPhase::Progressing) {
                let _ = write!(line, ", canary weight {weight}%");
            }
            if let Some(c) = m.failed_checks.filter(|c| *c > 0) {
                let _ = write!(line, ", {c} failed checks");
            }
            if !m.message.is_empty() && m.phase != MemberPhase::Healthy {
                let _ = write!(line, ": {}", m.message);
            }
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// A record as JSON, without the objects kept for a rollback (they may hold secrets).
fn status_json(key: &str, r: &RolloutRecord) -> serde_json::Value {
    json!({
        "address": key,
        "name": r.name,
        "revision": r.revision,
        "label": r.label,
        "status": r.status,
        "wave": r.wave,
        "failures": r.failures,
        "message": r.message,
        "updated": r.updated,
        "waves": r.waves.iter().map(|w| json!({
            "name": w.name,
            "needs_approval": w.needs_approval,
            "approval": w.approval.as_ref().map(|a| json!({"by": a.by, "at": a.at})),
            "done": w.done,
            "soak_started": w.soak_started,
            "members": w.members.iter().filter_map(|n| r.members.get(n).map(|m| json!({
                "name": n,
                "phase": m.phase,
                "revision": m.revision.as_ref().map(|rev| if *rev == r.revision { "new" } else { "other" }).unwrap_or("previous"),
                "canary_weight": m.weight,
                "failed_checks": m.failed_checks,
                "message": m.message,
            }))).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
