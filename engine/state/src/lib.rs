//! State: what flotilla has created, recorded so the next plan can diff against it.
//!
//! - [`State`] is the in-memory model: resource instances by address, root outputs, a
//!   `serial` that grows with every write and a `lineage` that identifies one state's history.
//! - [`format`] is the versioned on-disk JSON document with a blake3 checksum; a corrupt or
//!   truncated file, or one from a newer format version, is refused with a clear error and
//!   never overwritten.
//! - [`StateStore`] is the seam the CLI, plan and apply use: lock, read, compare-and-swap
//!   persist, and the journal writer; a [`Backend`] holds one store per workspace (the
//!   PostgreSQL and Kubernetes ones live in flotilla-backends).
//! - [`crypt`] is client-side encryption: the [`Codec`] every store encodes with.
//! - [`LocalBackend`] stores state in a file next to the configuration, with an OS file lock
//!   (a second run waits, then fails naming the holder), atomic snapshots (temp file, fsync,
//!   rename, previous copy kept as `.backup`) and an append-only journal during apply so a
//!   crash loses at most the resources in flight; [`LocalWorkspaces`] keeps other workspaces
//!   in `flotilla.state.d/`.
//!
//! **Invariant:** nothing in this crate prints; every failure is a [`StateError`].

pub mod crypt;
pub mod format;
mod local;
mod model;
pub mod rollout;
mod store;

pub use crypt::{Codec, Encryption, Key, KeySource};
pub use local::{Journal, LocalBackend, LocalWorkspaces, LockGuard};
pub use model::{JournalEntry, OutputState, ResourceInstanceState, State};
pub use rollout::{
    Approval, MemberPhase, MemberRecord, RequestAction, RolloutRecord, RolloutRequest,
    RolloutStatus, WaveRecord, fold_requests,
};
pub use store::{
    Backend, DEFAULT_WORKSPACE, JournalWriter, LockInfo, StateStore, StoreLock, check_deletable,
    check_workspace_name, prepare_push, workspace_list,
};

/// Everything that can go wrong reading, writing or locking state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("cannot write").
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid state.
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written by a newer flotilla.
    #[error(
        "state file {path} has format version {found}, newer than this flotilla understands ({supported})"
    )]
    TooNew {
        /// The file.
        path: String,
        /// Its version.
        found: u64,
        /// The newest this build reads.
        supported: u64,
    },
    /// Another process holds the state lock.
    #[error("state is locked by {holder}")]
    Locked {
        /// Who holds it: pid, host, operation and since when.
        holder: String,
        /// The lock's id, for `flotilla force-unlock` (when the store can break it).
        id: Option<String>,
    },
    /// A remote store (a database, an API server) failed or could not be reached.
    #[error("{store}: {action}: {message}")]
    Remote {
        /// The store.
        store: String,
        /// What was being done ("cannot connect").
        action: String,
        /// What went wrong.
        message: String,
    },
    /// No configured key opens the encrypted data.
    #[error("cannot decrypt {path}: no configured key opens it (tried {tried})")]
    Decrypt {
        /// The document.
        path: String,
        /// The keys tried.
        tried: String,
    },
    /// Encrypted data, and no encryption configured.
    #[error("{path} is encrypted, and this configuration has no `encryption` block")]
    Encrypted {
        /// The document.
        path: String,
    },
    /// Unencrypted data where encryption is configured.
    #[error("{path} is not encrypted, and this configuration requires encryption")]
    NotEncrypted {
        /// The document.
        path: String,
    },
    /// A workspace name, or a workspace that does not exist.
    #[error("{0}")]
    Workspace(String),
    /// `state push` or a forced unlock refused.
    #[error("{0}")]
    Refused(String),
    /// The stored state changed since it was read here: another writer got there first.
    #[error("{store} changed since it was read: expected {expected}, found {found}")]
    Conflict {
        /// The store.
        store: String,
        /// The lineage and serial this run read.
        expected: String,
        /// What is stored now.
        found: String,
    },
}

impl StateError {
    /// This error as a diagnostic under `summary` ("cannot lock state"), with its fix hint.
    pub fn to_diagnostic(&self, summary: &str) -> flotilla_syntax::Diagnostic {
        flotilla_syntax::Diagnostic::error(summary)
            .with_detail(self.to_string())
            .with_help(self.help())
    }

    /// How to get past this error.
    pub fn help(&self) -> &'static str {
        match self {
            StateError::Io { .. } => "check the path and its permissions",
            StateError::Corrupt { .. } => {
                "restore the previous version from the `.backup` file next to it, or from version control; flotilla did not modify the file"
            }
            StateError::TooNew { .. } => "upgrade flotilla to the version that wrote this state",
            StateError::Locked { id: Some(_), .. } => {
                "wait for the other run to finish, or pass -lock-timeout=DURATION to wait; a holder that was killed releases the lock by itself; if it is stuck, `flotilla force-unlock LOCK_ID` with the id above"
            }
            StateError::Locked { id: None, .. } => {
                "wait for the other run to finish, or pass -lock-timeout=DURATION to wait longer; if the holder is gone, the lock is released automatically"
            }
            StateError::Remote { .. } => {
                "check that the backend is reachable and the credentials are right; nothing was lost: what an apply did is kept in its journal and recovered by the next run"
            }
            StateError::Decrypt { .. } => {
                "check the passphrase or key; when rotating keys, keep the old key in a `fallback` block until the state has been written once"
            }
            StateError::Encrypted { .. } => {
                "add the `encryption` block (and its key) this state was written with to the `flotilla` block"
            }
            StateError::NotEncrypted { .. } => {
                "to encrypt existing state, add `fallback { unencrypted = true }` to the `encryption` block for one apply, then remove it"
            }
            StateError::Workspace(_) => {
                "`flotilla workspace list` shows the workspaces; names are lower-case letters, digits and `-` (at most 40), and `default` always exists"
            }
            StateError::Refused(_) => "pass -force to do it anyway",
            StateError::Conflict { .. } => {
                "another run wrote the state meanwhile; nothing was overwritten: run the command again"
            }
        }
    }
}
