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

use std::time::Duration;

use crate::{JournalEntry, State, StateError};

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
}
