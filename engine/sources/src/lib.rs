//! Module sources: where remote modules come from, how they are pinned, and where they live.
//!
//! - [`version`]: versions and Terraform's constraint operators (`~> 1.2`, `>= 1.0, < 2`).
//! - [`lock`]: `flotilla.lock.hcl`, the versioned lock file `flotilla init` writes.
//! - [`cache`]: installed packages keyed by the blake3 hash of their file tree.
//! - [`installed`]: the offline, verifying [`flotilla_config::ModuleResolver`] every command
//!   but `init` loads with.
//! - [`install`]: `flotilla init`'s resolve, fetch, verify and lock.
//! - [`git`], [`oci`], [`registry`]: the three remote source kinds (git2 and the `git`
//!   program; `oci-client`; Terraform's module registry protocol over reqwest); [`archive`]
//!   packs and unpacks packages deterministically.
//! - [`standard`]: the standard library (`modules/`), embedded in the binary; domain blocks
//!   call it.
//!
//! **Invariant:** only [`install`] (and `flotilla module publish` through [`oci`]) touches the
//! network; loading reads the lock file and the cache and checks every hash.

pub mod archive;
pub mod cache;
pub mod git;
mod http;
pub mod install;
pub mod installed;
pub mod lock;
pub mod oci;
pub mod registry;
pub mod standard;
pub mod version;

pub use cache::{CACHE_ENV, Cache};
pub use install::{Change, Outcome, install};
pub use installed::Installed;
pub use lock::{LOCK_VERSION, LockFile, Locked};
pub use version::{Constraint, Version, version_matches};
