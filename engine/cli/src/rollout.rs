//! `flotilla rollout status|approve|pause|resume|abort`: where fleet rollouts stand, and the
//! decisions people make about them. Each reads the rollout's record in state (written by
//! apply as it moves members); the decisions change that record under the state lock and
//! take effect at the next `flotilla apply`. While another process holds the lock (an apply
//! moving the rollout), `approve`, `pause` and `abort` leave a request in the state store
//! instead, which that apply carries out between steps (see flotilla-state's `rollout`).

use std::sync::Arc;

use flotilla_provider::ProviderHost;
use flotilla_state::rollout::now;
use flotilla_state::{
    MemberPhase, RequestAction, RolloutRecord, RolloutRequest, RolloutStatus, State, StateError,
};
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
            let requests = match ws.backend.requests() {
                Ok(r) => r,
                Err(e) => return error(ui, e.to_diagnostic("cannot read rollout requests")),
            };
            let pending = |k: &str| -> Vec<&RolloutRequest> {
                requests
                    .iter()
                    .filter(|q| q.rollout == k && q.revision == state.rollouts[k].revision)
                    .collect()
            };
            let keys: Vec<String> = match &name {
                Some(n) => vec![tri!(find(ui, &state, n))],
                None => state.rollouts.keys().cloned().collect(),
            };
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| status_json(k, &state.rollouts[k], &pending(k)))
                    .collect();
                ui.out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&json!({ "rollouts": list })).unwrap_or_default()
                ));
            } else if keys.is_empty() {
                ui.out("No rollouts in state: a `rollout` block records its progress at its first apply.\n");
            } else {
                for k in &keys {
                    ui.out(&status_text(k, &state.rollouts[k], &pending(k)));
                }
            }
            0
        }
        RolloutCommand::Approve(t) => decide(ui, &ws, &t, RequestAction::Approve),
        RolloutCommand::Pause(t) => decide(ui, &ws, &t, RequestAction::Pause),
        RolloutCommand::Abort(t) => decide(ui, &ws, &t, RequestAction::Abort),
        RolloutCommand::Resume(t) => {
            let name = t.name.clone();
            let timeout = match workspace::lock_timeout(&t.lock_timeout) {
                Ok(t) => t,
                Err(d) => return error(ui, d),
            };
            let lock = match workspace::lock(ui, &*ws.backend, "rollout resume", timeout) {
                Ok(l) => l,
                Err(e) => return error(ui, e.to_diagnostic("cannot lock state")),
            };
            edit(ui, &ws, &*lock, &t.name, move |key, r| {
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

/// `approve`, `pause` or `abort`: under the lock, the record changes now; while another
/// process holds the lock, a request is left for it.
fn decide(ui: &Ui, ws: &Workspace, target: &RolloutTarget, action: RequestAction) -> u8 {
    let operation = format!("rollout {}", action.as_str());
    let name = target.name.clone();
    let timeout = match workspace::lock_timeout(&target.lock_timeout) {
        Ok(t) => t,
        Err(d) => return error(ui, d),
    };
    let lock = match workspace::lock(ui, &*ws.backend, &operation, timeout) {
        Ok(l) => l,
        Err(StateError::Locked { holder, .. }) => {
            return leave_request(ui, ws, target, action, &holder);
        }
        Err(e) => return error(ui, e.to_diagnostic("cannot lock state")),
    };
    edit(ui, ws, &*lock, &target.name, move |key, r| {
        let request = request_for(key, r, action)?;
        let message = match action {
            RequestAction::Approve => format!(
                "Approved wave {} of {key} as {}. Run `flotilla apply` to continue the rollout.\n",
                wave_name(r, request.wave),
                request.by
            ),
            RequestAction::Pause => format!(
                "Paused {key} at wave {} of {}: `flotilla apply` will not move it until `flotilla rollout resume {name}`.\n",
                r.wave + 1,
                r.waves.len(),
            ),
            RequestAction::Abort => format!(
                "Aborted {key}: members keep the revision they run now (see `flotilla rollout status {name}`); `flotilla apply` will not move this revision again.\n"
            ),
        };
        r.take_request(&request);
        Ok(message)
    })
}

/// The decision while `holder` holds the lock: a request left in the store for it.
fn leave_request(
    ui: &Ui,
    ws: &Workspace,
    target: &RolloutTarget,
    action: RequestAction,
    holder: &str,
) -> u8 {
    // The journal replayed: where the running apply has got to.
    let state = tri!(workspace::load_state(ws, ui, false));
    let key = tri!(find(ui, &state, &target.name));
    let request = match request_for(&key, &state.rollouts[&key], action) {
        Ok(r) => r,
        Err(d) => return error(ui, d),
    };
    if let Err(e) = ws.backend.post_request(&request) {
        return error(ui, e.to_diagnostic("cannot leave the request"));
    }
    let (what, when) = match action {
        RequestAction::Approve => (
            format!(
                "the approval of wave {} of {key}",
                wave_name(&state.rollouts[&key], request.wave)
            ),
            "counts it before that wave starts",
        ),
        _ => (
            format!("a request to {} {key}", action.as_str()),
            "starts no new member of it, lets members in progress finish their gates, and stops",
        ),
    };
    ui.out(&format!(
        "State is locked by {holder}: left {what}. The apply running now {when}; \
         if none is, the next `flotilla apply` carries it out. See `flotilla rollout status {}`.\n",
        target.name
    ));
    0
}

/// `2 "rest"`: a wave as messages name it.
fn wave_name(r: &RolloutRecord, wave: Option<usize>) -> String {
    let w = wave.unwrap_or(0);
    match r.waves.get(w) {
        Some(x) => format!("{} {:?}", w + 1, x.name),
        None => (w + 1).to_string(),
    }
}

/// The request `action` makes of the rollout `key` as recorded, or why it cannot be made.
fn request_for(
    key: &str,
    r: &RolloutRecord,
    action: RequestAction,
) -> Result<RolloutRequest, Diagnostic> {
    if r.status.is_final() {
        return Err(not_moving(key, r));
    }
    let wave = match action {
        RequestAction::Approve => Some(
            (r.wave..r.waves.len())
                .find(|&w| r.waves[w].needs_approval && r.waves[w].approval.is_none())
                .ok_or_else(|| {
                    Diagnostic::error("nothing waits for approval")
                        .with_detail(format!(
                            "no wave of {key} from wave {} on needs an approval it does not have",
                            r.wave + 1
                        ))
                        .with_help("waves that need one set `approval = true`; see `flotilla rollout status`")
                })?,
        ),
        _ => None,
    };
    Ok(RolloutRequest::new(key, &r.revision, action, wave))
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

/// Changes one rollout's record; the caller holds the state lock (`_lock`).
fn edit(
    ui: &Ui,
    ws: &Workspace,
    _lock: &dyn flotilla_state::StoreLock,
    name: &str,
    change: impl FnOnce(&str, &mut RolloutRecord) -> Result<String, Diagnostic>,
) -> u8 {
    let mut state = tri!(workspace::load_state(ws, ui, true));
    // A pause left while an apply ran counts before the change (a resume undoes it).
    let pending = tri!(workspace::fold_requests(ws, ui, &mut state));
    let key = tri!(find(ui, &state, name));
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
            workspace::requests_done(ws, ui, &pending);
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

fn status_text(key: &str, r: &RolloutRecord, pending: &[&RolloutRequest]) -> String {
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
    for q in pending {
        let _ = writeln!(
            out,
            "  requested: {}{} by {} at {} (the apply holding the lock, or the next one, carries it out)",
            q.action.as_str(),
            q.wave
                .map(|w| format!(" wave {}", w + 1))
                .unwrap_or_default(),
            q.by,
            q.at
        );
    }
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
fn status_json(key: &str, r: &RolloutRecord, pending: &[&RolloutRequest]) -> serde_json::Value {
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
        "requests": pending.iter().map(|q| json!({
            "action": q.action,
            "wave": q.wave,
            "by": q.by,
            "at": q.at,
        })).collect::<Vec<_>>(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_state::WaveRecord;

    #[test]
    fn status_lists_the_requests_not_yet_carried_out() {
        let record = RolloutRecord {
            name: "checkout".into(),
            revision: "abc".into(),
            waves: vec![
                WaveRecord {
                    name: "canary".into(),
                    ..Default::default()
                },
                WaveRecord {
                    name: "rest".into(),
                    needs_approval: true,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut pause = RolloutRequest::new("rollout.checkout", "abc", RequestAction::Pause, None);
        pause.by = "alice".into();
        let approve = request_for("rollout.checkout", &record, RequestAction::Approve).unwrap();
        assert_eq!(
            approve.wave,
            Some(1),
            "the next wave that needs an approval"
        );
        let text = status_text("rollout.checkout", &record, &[&pause, &approve]);
        assert!(
            text.contains(&format!("  requested: pause by alice at {}", pause.at)),
            "{text}"
        );
        assert!(text.contains("  requested: approve wave 2 by "), "{text}");
        let json = status_json("rollout.checkout", &record, &[&pause]);
        assert_eq!(json["requests"][0]["action"], "pause");
        assert_eq!(json["requests"][0]["by"], "alice");
        assert_eq!(wave_name(&record, Some(1)), "2 \"rest\"");
        // Nothing to approve, or a rollout that is over: refused before anything is left.
        let mut done = record.clone();
        done.waves[1].needs_approval = false;
        assert!(request_for("rollout.checkout", &done, RequestAction::Approve).is_err());
        done.status = RolloutStatus::Completed;
        assert!(request_for("rollout.checkout", &done, RequestAction::Pause).is_err());
    }
}
