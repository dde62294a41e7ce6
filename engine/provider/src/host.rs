//! The provider host: what the CLI hands every provider for one run, instead of
//! process-global state. It carries the notice sink (progress that is not an error, such as
//! a retry), per-run caches that providers share by type (the Kubernetes runtime keeps its
//! cluster clients and discovery there), the sandbox resolver (how `sandbox = "NAME"` becomes
//! a kubeconfig; the CLI implements it, so providers never link the sandbox server) and
//! shutdown hooks, run once when the command ends.
//!
//! **Invariant:** everything a provider keeps beyond one instance lives in the host, so two
//! runs in one process (tests) share nothing.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::ProviderError;

/// Work to run when the command ends (stop what a provider started, flush caches).
pub type ShutdownHook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Resolves a sandbox cluster's name to a kubeconfig, starting the sandbox (or connecting
/// to the one `flotilla sandbox up` serves) as needed.
#[async_trait::async_trait]
pub trait SandboxResolver: Send + Sync {
    /// The kubeconfig document of sandbox cluster `name`, creating the cluster if needed.
    async fn cluster(&self, name: &str) -> Result<SandboxCluster, ProviderError>;

    /// Stops what this resolver started, saving it.
    async fn shutdown(&self);
}

/// A sandbox cluster a resolver found or made.
#[derive(Debug, Clone)]
pub struct SandboxCluster {
    /// A kubeconfig with a context named after the cluster.
    pub kubeconfig: String,
}

type Sink = Box<dyn Fn(&str) + Send + Sync>;

/// The host of one run. Cheap to share (`Arc`); the CLI makes one per command.
pub struct ProviderHost {
    notices: Sink,
    sandbox: Option<Arc<dyn SandboxResolver>>,
    shared: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    hooks: Mutex<Vec<ShutdownHook>>,
    counters: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Default for ProviderHost {
    fn default() -> Self {
        ProviderHost::new()
    }
}

impl std::fmt::Debug for ProviderHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHost")
            .field("sandbox", &self.sandbox.is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProviderHost {
    /// A host that drops notices and has no sandbox (tests, offline commands).
    pub fn new() -> ProviderHost {
        ProviderHost {
            notices: Box::new(|_| {}),
            sandbox: None,
            shared: Mutex::new(HashMap::new()),
            hooks: Mutex::new(Vec::new()),
            counters: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// Shows notices through `sink` (the CLI prints them to stderr).
    pub fn with_notices(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> ProviderHost {
        self.notices = Box::new(sink);
        self
    }

    /// Resolves `sandbox = "NAME"` through `resolver`.
    pub fn with_sandbox(mut self, resolver: Arc<dyn SandboxResolver>) -> ProviderHost {
        self.sandbox = Some(resolver);
        self
    }

    /// Reports progress that is not an error, such as a retry after a transient API failure.
    /// Never pass sensitive values.
    pub fn notice(&self, message: &str) {
        (self.notices)(message);
    }

    /// Adds `n` to the run's counter `what` ("kubernetes requests"), for profiling
    /// (`FLOTILLA_TIMINGS=1` prints them) and benchmarks.
    pub fn count(&self, what: &'static str, n: u64) {
        *lock(&self.counters).entry(what).or_insert(0) += n;
    }

    /// The run's counters, by name.
    pub fn counters(&self) -> std::collections::BTreeMap<&'static str, u64> {
        lock(&self.counters).clone()
    }

    /// The sandbox resolver, when this run has one.
    pub fn sandbox(&self) -> Option<&Arc<dyn SandboxResolver>> {
        self.sandbox.as_ref()
    }

    /// The run's one value of type `T`, made on first use: where providers keep caches that
    /// outlive one provider instance (clients per cluster, discovery).
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut all = lock(&self.shared);
        let entry = all
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        Arc::clone(entry)
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("the map is keyed by the value's type"))
    }

    /// Runs `hook` when the command ends.
    pub fn on_shutdown(&self, hook: impl Future<Output = ()> + Send + 'static) {
        lock(&self.hooks).push(Box::pin(hook));
    }

    /// Runs the shutdown hooks in the order they were added, then stops the sandbox
    /// resolver. The CLI calls this once, before it exits.
    pub async fn shutdown(&self) {
        let hooks = std::mem::take(&mut *lock(&self.hooks));
        for hook in hooks {
            hook.await;
        }
        lock(&self.shared).clear();
        if let Some(s) = &self.sandbox {
            s.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counter(AtomicUsize);

    #[test]
    fn shared_values_are_one_per_type_and_host() {
        let host = ProviderHost::new();
        host.shared::<Counter>().0.fetch_add(1, Ordering::SeqCst);
        assert_eq!(host.shared::<Counter>().0.load(Ordering::SeqCst), 1);
        assert_eq!(
            ProviderHost::new()
                .shared::<Counter>()
                .0
                .load(Ordering::SeqCst),
            0
        );
    }

    #[test]
    fn notices_and_hooks() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let host = ProviderHost::new().with_notices(move |m| lock(&sink).push(m.to_string()));
        host.notice("retrying");
        host.count("requests", 2);
        host.count("requests", 1);
        assert_eq!(host.counters()["requests"], 3);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        host.on_shutdown(async move {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(host.shutdown());
        rt.block_on(host.shutdown());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(*lock(&seen), vec!["retrying".to_string()]);
    }
}
