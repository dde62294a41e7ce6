//! Team state backends: where a platform team's state lives when it is not a file on one
//! laptop. Each is a [`flotilla_state::Backend`] (one store per workspace) whose stores keep
//! every promise of [`flotilla_state::StateStore`]:
//!
//! - [`postgres`]: one row per workspace in `SCHEMA.flotilla_states`, a session-level
//!   advisory lock per workspace held by a dedicated connection (the server releases it when
//!   the holder dies), the holder's info in `flotilla_locks`, compare-and-swap updates on
//!   lineage and serial, and the apply journal as rows committed one transaction per batch.
//! - [`kubernetes`]: state in Secret `flotilla-state-WORKSPACE-SUFFIX` (gzip, chunked into
//!   extra Secrets above 1 MB), the lock a `coordination.k8s.io` Lease renewed in the
//!   background (a killed holder's lease expires), optimistic concurrency on
//!   resourceVersion, and the journal in Secrets of its own. It connects through the kube
//!   provider's connection code, so `sandbox`, `kubeconfig` and `context` mean what they do
//!   in a provider block.
//!
//! Both encode with the store's [`flotilla_state::Codec`], so with encryption configured
//! they only ever hold ciphertext. The trait is synchronous; the async clients run on the
//! command's runtime through [`block_on`].

use std::future::Future;

use flotilla_state::StateError;
use tokio::runtime::Handle;

pub mod kubernetes;
pub mod postgres;

pub use kubernetes::{Kubernetes, KubernetesSettings};
pub use postgres::{Postgres, PostgresSettings};

/// Runs `f` on the runtime `handle` belongs to and waits for it, from any thread: a worker
/// of a multi-threaded runtime (the command's; the worker is handed off while it waits),
/// the apply journal's writer thread, or any plain thread.
///
/// # Panics
/// On a current-thread runtime's thread, which cannot wait for itself.
pub fn block_on<F: Future>(handle: &Handle, f: F) -> F::Output {
    match Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(|| handle.block_on(f)),
        Err(_) => handle.block_on(f),
    }
}

/// A failure of a remote store as a [`StateError`].
pub(crate) fn remote(store: &str, action: &str, message: impl std::fmt::Display) -> StateError {
    StateError::Remote {
        store: store.to_string(),
        action: action.to_string(),
        message: message.to_string(),
    }
}

/// gzip.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("writing to memory cannot fail");
    e.finish().expect("writing to memory cannot fail")
}

/// gunzip; `None` when the bytes are not gzip.
pub(crate) fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Replays journal lines (each a sealed JSON entry) onto `state`; the number replayed.
pub(crate) fn replay(
    codec: &flotilla_state::Codec,
    state: &mut flotilla_state::State,
    lines: impl IntoIterator<Item = Vec<u8>>,
    name: &str,
) -> Result<usize, StateError> {
    let mut n = 0;
    for line in lines {
        let json = codec.open_line(&line, name)?;
        let entry: flotilla_state::JournalEntry =
            serde_json::from_slice(&json).map_err(|e| StateError::Corrupt {
                path: name.to_string(),
                reason: format!("a journal entry is not valid ({e})"),
            })?;
        state.apply_entry(&entry);
        n += 1;
    }
    Ok(n)
}
