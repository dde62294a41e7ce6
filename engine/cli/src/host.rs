//! The provider host of one command (`flotilla_provider::ProviderHost`): notices go to
//! stderr, and `sandbox = "NAME"` resolves through [`LocalSandboxes`], which starts the
//! sandbox under `.flotilla/sandbox/` (or `$FLOTILLA_SANDBOX_DIR`) in this process, or reads
//! the kubeconfig of the `flotilla sandbox up` server that already holds the directory. Only
//! the CLI links the sandbox server; providers see a kubeconfig.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use flotilla_provider::{ProviderError, ProviderHost, SandboxCluster, SandboxResolver};
use flotilla_sandbox::{Sandbox, SandboxError, SandboxOptions};

/// The host for a command that may reach clusters.
pub fn for_command() -> Arc<ProviderHost> {
    Arc::new(
        ProviderHost::new()
            .with_notices(|message| eprintln!("  note: {message}"))
            .with_sandbox(Arc::new(LocalSandboxes::new(sandbox_dir()))),
    )
}

/// The sandbox directory: `$FLOTILLA_SANDBOX_DIR`, else `.flotilla/sandbox`.
pub fn sandbox_dir() -> PathBuf {
    std::env::var_os("FLOTILLA_SANDBOX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::sandbox::DEFAULT_DIR))
}

/// Where this run's sandbox clusters come from, found on first use.
enum Source {
    /// Started in this process (stopped and saved at shutdown).
    Started(Sandbox),
    /// Served by another process (`flotilla sandbox up`): its kubeconfig file, read once.
    Running(PathBuf, Option<Served>),
}

/// The kubeconfig of a sandbox another process serves, parsed and indexed once: one
/// cluster's kubeconfig is cut out of it per request (a thousand clusters make a file of
/// megabytes, and each lookup is a hash lookup).
struct Served {
    /// `contexts`, `clusters` and `users` entries by (list, name).
    entries: HashMap<(&'static str, String), serde_json::Value>,
}

impl Served {
    fn read(path: &std::path::Path) -> Result<Served, ProviderError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ProviderError::new(format!("cannot read {}", path.display())).with_detail(e.to_string())
        })?;
        let mut doc: serde_json::Value = serde_yaml::from_str(&text).map_err(|e| {
            ProviderError::new(format!("{} is not a kubeconfig", path.display()))
                .with_detail(e.to_string())
        })?;
        let mut entries = HashMap::new();
        for list in ["contexts", "clusters", "users"] {
            if let serde_json::Value::Array(items) = doc[list].take() {
                for item in items {
                    if let Some(name) = item["name"].as_str() {
                        entries.insert((list, name.to_string()), item);
                    }
                }
            }
        }
        Ok(Served { entries })
    }

    /// A kubeconfig with only the context `name`, its cluster and user.
    fn cluster(&self, name: &str) -> Option<String> {
        let named = |list: &'static str, n: &serde_json::Value| {
            self.entries.get(&(list, n.as_str()?.to_string())).cloned()
        };
        let context = named("contexts", &serde_json::Value::from(name))?;
        let cluster = named("clusters", &context["context"]["cluster"])?;
        let user = named("users", &context["context"]["user"])?;
        let doc = serde_json::json!({"apiVersion": "v1", "kind": "Config",
            "current-context": name, "contexts": [context], "clusters": [cluster], "users": [user]});
        serde_yaml::to_string(&doc).ok()
    }
}

/// Sandboxes in one directory.
pub struct LocalSandboxes {
    dir: PathBuf,
    source: tokio::sync::Mutex<Option<Source>>,
}

impl LocalSandboxes {
    /// Sandboxes under `dir`, started on first use.
    pub fn new(dir: PathBuf) -> LocalSandboxes {
        LocalSandboxes {
            dir,
            source: tokio::sync::Mutex::new(None),
        }
    }

    async fn find(&self) -> Result<Source, ProviderError> {
        match Sandbox::start(SandboxOptions {
            dir: Some(self.dir.clone()),
            ..SandboxOptions::default()
        })
        .await
        {
            Ok(s) => Ok(Source::Started(s)),
            Err(SandboxError::Locked { .. }) => {
                Ok(Source::Running(self.dir.join("kubeconfig"), None))
            }
            Err(e) => Err(ProviderError::new(format!(
                "cannot start the sandbox in {}",
                self.dir.display()
            ))
            .with_detail(format!("{e}; {}", e.help()))),
        }
    }
}

#[async_trait::async_trait]
impl SandboxResolver for LocalSandboxes {
    async fn cluster(&self, name: &str) -> Result<SandboxCluster, ProviderError> {
        let mut source = self.source.lock().await;
        if source.is_none() {
            *source = Some(self.find().await?);
        }
        let kubeconfig = match source.as_mut() {
            Some(Source::Started(s)) => {
                let cluster = match s.cluster(name) {
                    Some(c) => c,
                    None => s.add_cluster(name).map_err(|e| {
                        ProviderError::new(format!("cannot create sandbox cluster \"{name}\""))
                            .with_detail(e.to_string())
                    })?,
                };
                cluster.kubeconfig()
            }
            Some(Source::Running(path, served)) => {
                if served.is_none() {
                    *served = Some(Served::read(path)?);
                }
                let Some(text) = served.as_ref().and_then(|s| s.cluster(name)) else {
                    return Err(ProviderError::new(format!(
                        "the sandbox running in {} has no cluster \"{name}\"",
                        self.dir.display()
                    ))
                    .with_detail(format!(
                        "another process serves it; add the cluster with `flotilla sandbox down` then `flotilla sandbox up --name {name}`, or let flotilla start the sandbox itself"
                    )));
                };
                text
            }
            None => unreachable!("set above"),
        };
        Ok(SandboxCluster { kubeconfig })
    }

    async fn shutdown(&self) {
        if let Some(Source::Started(s)) = self.source.lock().await.take() {
            let _ = s.stop().await;
        }
    }
}
