//! The state store seam: where state lives, how it is locked, and how an apply records what
//! it does as it goes. The CLI, plan and apply use a [`StateStore`] and never a file; the
//! local backend ([`crate::LocalBackend`]) is one implementation, team backends are others.
//!
//! Every store keeps these promises:
//! - [`StateStore::lock`] returns a guard that holds the lock until dropped; a lock that can
//!   be lost (a lease) reports it through [`StoreLock::lost`], and apply stops the way Ctrl-C
//!   stops it, saving what it did.
//! - [`StateStore::persist`] is a compare-and-swap: it writes only when the stored state is
//!   still the one this store last read or wrote (same lineage, same serial), so two writers
//!   never silently overwrite each other; otherwise it fails with [`StateError::Conflict`]
//!   and writes nothing.
//! - [`StateStore::journal`] supplies the writer apply records each operation with, durably,
//!   so a crash loses at most what was in flight; [`StateStore::load`] replays it.
//!
//! - [`StateStore::post_request`] works without the lock: a request (`rollout pause` while
//!   an apply runs) is kept until the holder that read it removes it, never lost, never
//!   applied to a revision it was not made about.
//!
//! A [`Backend`] is the configured place (a directory, a database schema, a namespace) that
//! holds one store per workspace.
//!
//! The trait is synchronous: the local backend's work is file IO, and the remote backends
//! run their async clients on the command's runtime (`block_in_place`), so callers on a
//! runtime worker, on the journal writer's thread and on a plain thread all work the same.

use std::sync::Arc;
use std::time::Duration;

use crate::{JournalEntry, RolloutRequest, State, StateError};

/// The workspace every backend has.
pub const DEFAULT_WORKSPACE: &str = "default";

/// Who holds a lock, recorded with it so others can say who is blocking them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LockInfo {
    /// The lock's id (for `force-unlock`).
    #[serde(default)]
    pub id: String,
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// The command (`plan`, `apply`, ...).
    pub operation: String,
    /// When the lock was taken (RFC 3339).
    pub created: String,
    /// Who ran it (the user name), when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub who: String,
}

impl LockInfo {
    /// Describes this process taking a lock for `operation`.
    pub fn here(operation: &str) -> LockInfo {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            pid: std::process::id(),
            host: hostname(),
            operation: operation.to_string(),
            created: now_rfc3339(),
            who: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.who.is_empty() {
            String::new()
        } else {
            format!("{} ", self.who)
        };
        write!(
            f,
            "{who}(pid {} on {}) running `{}` since {}",
            self.pid, self.host, self.operation, self.created
        )?;
        if !self.id.is_empty() {
            write!(f, "; lock ID {}", self.id)?;
        }
        Ok(())
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown host".into())
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Holds a store's lock until dropped.
pub trait StoreLock: Send + Sync {
    /// Whether the lock has been lost since it was taken (a lease that expired, a database
    /// session that ended): whoever holds this guard must stop writing.
    fn lost(&self) -> bool {
        false
    }
}

/// Records an apply's operations as they happen.
pub trait JournalWriter: Send {
    /// Appends entries durably (one sync for the batch).
    fn append(&mut self, entries: &[JournalEntry]) -> Result<(), StateError>;
}

/// Where a workspace's state lives.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// How the store is named in messages (`flotilla.state.json`, `postgres schema "x"`).
    fn describe(&self) -> String;
    /// Takes the lock for `operation`, waiting up to `timeout` for another holder; the error
    /// says who holds it.
    fn lock(&self, operation: &str, timeout: Duration) -> Result<Box<dyn StoreLock>, StateError>;
    /// The state (`None`: none yet), with a journal left by an interrupted apply replayed, and
    /// how many journal entries that was.
    fn load(&self) -> Result<(Option<State>, usize), StateError>;
    /// Writes `state` as the new snapshot, its serial one higher, if the stored state is
    /// still the one last read or written here; clears the journal.
    fn persist(&self, state: &mut State) -> Result<(), StateError>;
    /// The journal for an apply (after the first snapshot is persisted).
    fn journal(&self) -> Result<Box<dyn JournalWriter>, StateError>;
    /// Writes `state` exactly as given, serial included, replacing what is stored and
    /// clearing the journal (`state push`, migration; the caller has checked with
    /// [`prepare_push`] and holds the lock).
    fn write_exact(&self, state: &State) -> Result<(), StateError>;
    /// Breaks the lock with this id held by someone else (`flotilla force-unlock`).
    fn force_unlock(&self, id: &str) -> Result<(), StateError>;
    /// Leaves a request for the lock's holder; needs no lock.
    fn post_request(&self, request: &RolloutRequest) -> Result<(), StateError>;
    /// The requests left and not yet removed, oldest first.
    fn requests(&self) -> Result<Vec<RolloutRequest>, StateError>;
    /// Removes requests (the lock holder, once the state it persisted records them).
    fn remove_requests(&self, ids: &[String]) -> Result<(), StateError>;
}

/// The configured place state lives: one [`StateStore`] per workspace.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// How the backend is named in messages.
    fn describe(&self) -> String;
    /// The workspaces that have state, sorted, `default` always among them.
    fn workspaces(&self) -> Result<Vec<String>, StateError>;
    /// The store of one workspace (which need not exist yet).
    fn store(&self, workspace: &str) -> Result<Arc<dyn StateStore>, StateError>;
    /// Removes a workspace's state (never `default`'s).
    fn delete_workspace(&self, workspace: &str) -> Result<(), StateError>;
}

/// Refuses names a backend could not store: lower-case letters, digits and `-`, starting
/// and ending with a letter or digit, at most 40 characters (they become parts of
/// Kubernetes object names and database keys, so one rule holds for every backend and
/// state can move between them).
pub fn check_workspace_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(StateError::Workspace(format!(
            "`{name}` is not a valid workspace name"
        )))
    }
}

/// A backend's workspace names as it lists them: `default` among them, sorted, once each.
pub fn workspace_list(mut names: Vec<String>) -> Vec<String> {
    names.push(DEFAULT_WORKSPACE.to_string());
    names.sort();
    names.dedup();
    names
}

/// Refuses to delete `default`, or a workspace with an invalid name.
pub fn check_deletable(workspace: &str) -> Result<(), StateError> {
    check_workspace_name(workspace)?;
    if workspace == DEFAULT_WORKSPACE {
        return Err(StateError::Workspace(
            "the default workspace cannot be deleted".into(),
        ));
    }
    Ok(())
}

/// What `state push` writes over `stored`: `pushed`, refused for another lineage or a lower
/// serial unless forced. A document that differs from the stored one without a higher serial
/// gets the next serial: no two documents ever share one (readers compare by serial).
pub fn prepare_push(
    stored: Option<&State>,
    mut pushed: State,
    force: bool,
) -> Result<State, StateError> {
    let Some(stored) = stored else {
        return Ok(pushed);
    };
    if !force && stored.lineage != pushed.lineage {
        return Err(StateError::Refused(format!(
            "the pushed state has lineage {}, the stored state lineage {}: they are different histories",
            pushed.lineage, stored.lineage
        )));
    }
    if !force && pushed.serial < stored.serial {
        return Err(StateError::Refused(format!(
            "the pushed state has serial {}, lower than the stored state's {}: it is older",
            pushed.serial, stored.serial
        )));
    }
    if stored.serial >= pushed.serial && *stored != pushed {
        pushed.serial = stored.serial + 1;
    }
    Ok(pushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_refuses_other_histories_and_older_states_and_never_reuses_a_serial() {
        let mut stored = State::new();
        stored.serial = 5;
        let mut other = State::new();
        other.serial = 9;
        assert!(prepare_push(Some(&stored), other.clone(), false).is_err());
        assert_eq!(prepare_push(Some(&stored), other, true).unwrap().serial, 9);
        let mut older = stored.clone();
        older.serial = 4;
        assert!(prepare_push(Some(&stored), older.clone(), false).is_err());
        // Forced over a newer serial, it takes the next one.
        assert_eq!(prepare_push(Some(&stored), older, true).unwrap().serial, 6);
        // The same document keeps its serial; a changed one at the same serial moves on.
        assert_eq!(
            prepare_push(Some(&stored), stored.clone(), false)
                .unwrap()
                .serial,
            5
        );
        let mut changed = stored.clone();
        changed.outputs.insert(
            "x".into(),
            crate::OutputState {
                value: serde_json::json!(1),
                sensitive: false,
            },
        );
        assert_eq!(
            prepare_push(Some(&stored), changed, false).unwrap().serial,
            6
        );
        assert_eq!(prepare_push(None, stored.clone(), false).unwrap(), stored);
    }
}
