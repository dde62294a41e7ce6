//! What state records about a fleet rollout: the revision it moves to, the wave cursor,
//! each member's phase and the revision it runs, approvals (who, when), soak timers, and
//! each touched member's objects as they were before, so a rollback can put them back and
//! an interrupted apply resumes where it stopped.
//!
//! A decision made while another process holds the state lock (`flotilla rollout pause`
//! during an apply) is a [`RolloutRequest`], left in the store beside the state
//! ([`crate::StateStore::post_request`]): the running apply reads it between steps and
//! records its effect; whoever holds the lock next folds what is still pending
//! ([`RolloutRecord::take_request`]) and removes it.

use std::collections::BTreeMap;

use flotilla_config::addr::ResourceInstanceAddr;

use crate::ResourceInstanceState;

/// One rollout's progress, keyed in [`crate::State::rollouts`] by the address of the module
/// instance that declares it (`rollout.checkout`).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct RolloutRecord {
    /// The rollout's name (`checkout`).
    #[serde(default)]
    pub name: String,
    /// The digest of the configuration being rolled out (what the plan calls its revision).
    pub revision: String,
    /// A readable name of that revision (the image).
    #[serde(default)]
    pub label: String,
    /// Where it stands.
    pub status: RolloutStatus,
    /// The wave in progress (or next), from 0.
    #[serde(default)]
    pub wave: usize,
    /// Every wave, in order.
    #[serde(default)]
    pub waves: Vec<WaveRecord>,
    /// Every member touched or planned, by name.
    #[serde(default)]
    pub members: BTreeMap<String, MemberRecord>,
    /// Members that failed so far.
    #[serde(default)]
    pub failures: usize,
    /// Why it stopped, when it did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the record last changed (RFC 3339).
    #[serde(default)]
    pub updated: String,
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    /// Members are being moved (or an apply moving them was interrupted).
    #[default]
    Progressing,
    /// Stopped before a wave that needs `flotilla rollout approve`.
    WaitingApproval,
    /// Stopped by `flotilla rollout pause` or `on_failure = "pause"`.
    Paused,
    /// Every member runs the revision.
    Completed,
    /// A failure beyond the budget put every touched member back.
    RolledBack,
    /// Stopped for good by `flotilla rollout abort` or `on_failure = "abort"`.
    Aborted,
}

impl RolloutStatus {
    /// How status output spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutStatus::Progressing => "progressing",
            RolloutStatus::WaitingApproval => "waiting for approval",
            RolloutStatus::Paused => "paused",
            RolloutStatus::Completed => "completed",
            RolloutStatus::RolledBack => "rolled back",
            RolloutStatus::Aborted => "aborted",
        }
    }

    /// Whether the rollout of this revision is over (nothing more will move it).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RolloutStatus::Completed | RolloutStatus::RolledBack | RolloutStatus::Aborted
        )
    }
}

/// One wave's record.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct WaveRecord {
    /// Its name.
    pub name: String,
    /// Its members, in order.
    #[serde(default)]
    pub members: Vec<String>,
    /// Whether it waits for `flotilla rollout approve` before it starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_approval: bool,
    /// Every member healthy and the soak over.
    #[serde(default)]
    pub done: bool,
    /// When its soak began (RFC 3339), so a resumed apply waits only what is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_started: Option<String>,
    /// Its approval, when it needs one and got it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// Who approved a wave, and when.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    /// The user.
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

/// One member's record.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct MemberRecord {
    /// Its wave, from 0.
    pub wave: usize,
    /// Where it stands.
    pub phase: MemberPhase,
    /// The rollout revision it runs (`None`: the one before this rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The canary's traffic weight, last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// Failed checks of its analysis, last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_checks: Option<i64>,
    /// Its gate object's revision as observed before its changes (opaque, from the
    /// provider), so a resumed apply judges the gate against the same baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<serde_json::Value>,
    /// What its health gate last said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Its objects as they were before this rollout touched it (`None`: it did not exist),
    /// recorded once when it starts, for a rollback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub previous: BTreeMap<ResourceInstanceAddr, Option<ResourceInstanceState>>,
}

/// Where a member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberPhase {
    /// Not started.
    #[default]
    Pending,
    /// Its changes are applied (or being applied) and its health gate is open.
    Progressing,
    /// Its gate passed for the revision.
    Healthy,
    /// It failed (apply error, failed analysis, progress deadline).
    Failed,
    /// Put back to what it ran before.
    Reverted,
}

impl MemberPhase {
    /// How status output spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberPhase::Pending => "pending",
            MemberPhase::Progressing => "progressing",
            MemberPhase::Healthy => "healthy",
            MemberPhase::Failed => "failed",
            MemberPhase::Reverted => "reverted",
        }
    }
}

/// A decision about a rollout left for the process that holds the state lock.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutRequest {
    /// Unique, so the holder removes exactly what it read.
    pub id: String,
    /// The rollout's key in [`crate::State::rollouts`].
    pub rollout: String,
    /// The revision it was made about: a request never touches a later rollout.
    pub revision: String,
    /// What is asked.
    pub action: RequestAction,
    /// The wave an approval is for, from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    /// Who asked (the user name).
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
}

/// What a [`RolloutRequest`] asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestAction {
    /// Start no new member; stop as `paused`.
    Pause,
    /// Start no new member; stop as `aborted`.
    Abort,
    /// Approve a wave ([`RolloutRequest::wave`]).
    Approve,
}

impl RequestAction {
    /// The verb, as messages say it.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestAction::Pause => "pause",
            RequestAction::Abort => "abort",
            RequestAction::Approve => "approve",
        }
    }
}

impl RolloutRequest {
    /// A request by this process's user, now.
    pub fn new(rollout: &str, revision: &str, action: RequestAction, wave: Option<usize>) -> Self {
        RolloutRequest {
            id: uuid::Uuid::new_v4().to_string(),
            rollout: rollout.to_string(),
            revision: revision.to_string(),
            action,
            wave,
            by: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            at: now(),
        }
    }
}

impl RolloutRecord {
    /// Everything but the members (what a [`crate::JournalEntry::RolloutHead`] carries).
    pub fn head(&self) -> RolloutRecord {
        RolloutRecord {
            name: self.name.clone(),
            revision: self.revision.clone(),
            label: self.label.clone(),
            status: self.status,
            wave: self.wave,
            waves: self.waves.clone(),
            members: BTreeMap::new(),
            failures: self.failures,
            message: self.message.clone(),
            updated: self.updated.clone(),
        }
    }

    /// Takes everything but the members from `head`.
    pub fn set_head(&mut self, head: &RolloutRecord) {
        let members = std::mem::take(&mut self.members);
        *self = head.clone();
        self.members = members;
    }

    /// Carries out `request` on this record: a pause or abort stops it (with who and when
    /// as its message), an approval approves its wave. Whether anything changed: a request
    /// about another revision, or about a rollout that is over, changes nothing.
    pub fn take_request(&mut self, request: &RolloutRequest) -> bool {
        if request.revision != self.revision || self.status.is_final() {
            return false;
        }
        let stopped = |s: RolloutStatus, verb: &str, r: &mut RolloutRecord| {
            if r.status == s {
                return false;
            }
            r.status = s;
            r.message = format!("{verb} by {} at {}", request.by, request.at);
            true
        };
        match request.action {
            RequestAction::Pause => stopped(RolloutStatus::Paused, "paused", self),
            RequestAction::Abort => stopped(RolloutStatus::Aborted, "aborted", self),
            RequestAction::Approve => {
                let Some(w) = request.wave.and_then(|w| self.waves.get_mut(w)) else {
                    return false;
                };
                if !w.needs_approval || w.approval.is_some() {
                    return false;
                }
                w.approval = Some(Approval {
                    by: request.by.clone(),
                    at: request.at.clone(),
                });
                if self.status == RolloutStatus::WaitingApproval {
                    self.status = RolloutStatus::Progressing;
                    self.message.clear();
                }
                true
            }
        }
    }
}

/// Folds requests into the state's rollout records (those they still apply to).
pub fn fold_requests(state: &mut crate::State, requests: &[RolloutRequest]) {
    for q in requests {
        if let Some(r) = state.rollouts.get_mut(&q.rollout) {
            r.take_request(q);
        }
    }
}

/// The current time, RFC 3339 (UTC, milliseconds).
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Seconds since an RFC 3339 time (0 when it does not parse or is in the future).
pub fn seconds_since(at: &str) -> f64 {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| {
            (time::OffsetDateTime::now_utc() - t)
                .as_seconds_f64()
                .max(0.0)
        })
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_old_documents_read() {
        let mut r = RolloutRecord {
            revision: "abc".into(),
            status: RolloutStatus::WaitingApproval,
            wave: 1,
            ..Default::default()
        };
        r.members.insert(
            "bj-1".into(),
            MemberRecord {
                phase: MemberPhase::Healthy,
                revision: Some("abc".into()),
                ..Default::default()
            },
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"waiting_approval\""), "{json}");
        assert_eq!(serde_json::from_str::<RolloutRecord>(&json).unwrap(), r);
        let minimal: RolloutRecord =
            serde_json::from_str(r#"{"revision":"x","status":"completed"}"#).unwrap();
        assert!(minimal.status.is_final());
        assert!(seconds_since(&now()) < 5.0);
    }

    #[test]
    fn a_head_and_members_journaled_apart_make_the_whole_record() {
        let mut whole = RolloutRecord {
            name: "checkout".into(),
            revision: "abc".into(),
            wave: 1,
            ..Default::default()
        };
        whole.members.insert("a".into(), MemberRecord::default());
        let mut state = crate::State::new();
        state.apply_entry(&crate::JournalEntry::Rollout {
            name: "r".into(),
            record: Box::new(whole.clone()),
        });
        whole.status = RolloutStatus::Paused;
        whole.message = "paused by x".into();
        let head = whole.head();
        assert!(head.members.is_empty());
        let entry = crate::JournalEntry::RolloutHead {
            name: "r".into(),
            head: Box::new(head),
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert!(json.contains(r#""op":"rollout_head""#), "{json}");
        state.apply_entry(&serde_json::from_str(&json).unwrap());
        let b = MemberRecord {
            phase: MemberPhase::Healthy,
            ..Default::default()
        };
        whole.members.insert("b".into(), b.clone());
        state.apply_entry(&crate::JournalEntry::RolloutMember {
            name: "r".into(),
            member: "b".into(),
            record: Box::new(b),
        });
        assert_eq!(state.rollouts["r"], whole);
    }

    #[test]
    fn requests_touch_only_their_revision_and_unfinished_rollouts() {
        let mut r = RolloutRecord {
            revision: "abc".into(),
            status: RolloutStatus::WaitingApproval,
            waves: vec![
                WaveRecord::default(),
                WaveRecord {
                    needs_approval: true,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let approve = RolloutRequest::new("rollout.x", "abc", RequestAction::Approve, Some(1));
        let json = serde_json::to_string(&approve).unwrap();
        assert_eq!(
            serde_json::from_str::<RolloutRequest>(&json).unwrap(),
            approve
        );
        assert!(r.take_request(&approve));
        assert_eq!(r.status, RolloutStatus::Progressing);
        assert_eq!(r.waves[1].approval.as_ref().unwrap().by, approve.by);
        // Once is enough: approving again, or a wave that needs none, changes nothing.
        assert!(!r.take_request(&approve));
        let first = RolloutRequest::new("rollout.x", "abc", RequestAction::Approve, Some(0));
        assert!(!r.take_request(&first));
        // Another revision's pause never stops this one.
        let stale = RolloutRequest::new("rollout.x", "old", RequestAction::Pause, None);
        assert!(!r.take_request(&stale));
        let pause = RolloutRequest::new("rollout.x", "abc", RequestAction::Pause, None);
        assert!(r.take_request(&pause));
        assert_eq!(r.status, RolloutStatus::Paused);
        assert!(r.message.starts_with("paused by "), "{}", r.message);
        let abort = RolloutRequest::new("rollout.x", "abc", RequestAction::Abort, None);
        assert!(r.take_request(&abort));
        assert_eq!(r.status, RolloutStatus::Aborted);
        // Over: nothing more applies.
        assert!(!r.take_request(&pause));
        let mut state = crate::State::new();
        state.rollouts.insert("rollout.x".into(), r.clone());
        fold_requests(&mut state, &[pause, stale]);
        assert_eq!(state.rollouts["rollout.x"], r);
    }
}
