//! What state records about a fleet rollout: the revision it moves to, the wave cursor,
//! each member's phase and the revision it runs, approvals (who, when), soak timers, and
//! each touched member's objects as they were before, so a rollback can put them back and
//! an interrupted apply resumes where it stopped.

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
}
