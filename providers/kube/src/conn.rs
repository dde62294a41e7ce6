//! Connections: how a provider block names a cluster (`kubeconfig`, `kubeconfig_raw`,
//! `context` or `sandbox`), and one client per cluster, shared by every provider block that
//! names the same one.
//!
//! `sandbox = "NAME"` means a cluster of the sandbox under `.flotilla/sandbox/` (or
//! `$FLOTILLA_SANDBOX_DIR`): flotilla starts that sandbox inside its own process, creating the
//! cluster if needed, unless `flotilla sandbox up` already serves the directory, in which case
//! it connects to that server. [`shutdown`] stops what this process started, saving it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_provider::{ProviderError, Value};
use flotilla_sandbox::{Ecosystem, Sandbox, SandboxError, SandboxOptions};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Where a provider block's cluster is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// A kubeconfig file.
    pub kubeconfig: Option<String>,
    /// A kubeconfig document.
    pub kubeconfig_raw: Option<String>,
    /// The context to use (default: the kubeconfig's current context).
    pub context: Option<String>,
    /// A sandbox cluster's name.
    pub sandbox: Option<String>,
}

fn string(config: &Value, key: &str) -> Option<String> {
    match config.get_attr(key).map(|v| v.unmark().0) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

impl Settings {
    /// Reads the connection arguments of a provider block.
    pub fn from_config(config: &Value) -> Result<Settings, ProviderError> {
        let s = Settings {
            kubeconfig: string(config, "kubeconfig"),
            kubeconfig_raw: string(config, "kubeconfig_raw"),
            context: string(config, "context"),
            sandbox: string(config, "sandbox"),
        };
        let sources = [
            s.kubeconfig.is_some(),
            s.kubeconfig_raw.is_some(),
            s.sandbox.is_some(),
        ];
        if sources.iter().filter(|b| **b).count() > 1 {
            return Err(ProviderError::new(
                "set only one of `kubeconfig`, `kubeconfig_raw` and `sandbox`",
            ));
        }
        if s.sandbox.is_some() && s.context.is_some() {
            return Err(ProviderError::new(
                "`context` does not apply to `sandbox`; the sandbox cluster's name is its context",
            ));
        }
        Ok(s)
    }
}

/// A connection to one cluster.
pub struct Target {
    /// The client (retries are flotilla's own, see `ops`).
    pub client: Client,
    /// How the user named it, for messages: `context "prod"`, `sandbox cluster "mgmt"`.
    pub label: String,
    /// The API server's URL.
    pub url: String,
    /// Whether it was named with `sandbox = "NAME"` (ecosystems' CRDs are installed on demand).
    pub sandbox: bool,
    installed: Mutex<Vec<&'static str>>,
}

impl Target {
    /// A connection named in messages as `label`.
    pub fn new(client: Client, label: String, url: String, sandbox: bool) -> Target {
        Target {
            client,
            label,
            url,
            sandbox,
            installed: Mutex::new(Vec::new()),
        }
    }

    /// Describes the cluster for an error message.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.label, self.url)
    }
}

type RuntimeId = tokio::runtime::Id;

/// Clients by runtime and cluster identity (a client belongs to the runtime that made it).
static TARGETS: Mutex<Vec<(RuntimeId, String, Arc<Target>)>> = Mutex::new(Vec::new());

/// Sandboxes this process started, by runtime and directory.
static SANDBOXES: Mutex<Vec<(RuntimeId, PathBuf, Arc<Sandbox>)>> = Mutex::new(Vec::new());

/// Serialises starting sandboxes, so two provider blocks do not race for the lock.
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sandbox directory: `$FLOTILLA_SANDBOX_DIR`, else `.flotilla/sandbox`.
pub fn sandbox_dir() -> PathBuf {
    std::env::var_os("FLOTILLA_SANDBOX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".flotilla/sandbox"))
}

/// Connects to the cluster the settings name (reusing a client made before), installing the
/// ecosystems' CRDs first when it is a sandbox cluster.
pub async fn connect(
    settings: &Settings,
    ecosystems: &[Ecosystem],
) -> Result<Arc<Target>, ProviderError> {
    let runtime = tokio::runtime::Handle::current().id();
    let key = identity(settings);
    let cached = lock(&TARGETS)
        .iter()
        .find(|(r, k, _)| *r == runtime && *k == key)
        .map(|(_, _, t)| Arc::clone(t));
    let target = match cached {
        Some(t) => t,
        None => {
            let target = Arc::new(open(settings).await?);
            let mut targets = lock(&TARGETS);
            match targets.iter().find(|(r, k, _)| *r == runtime && *k == key) {
                Some((_, _, t)) => Arc::clone(t),
                None => {
                    targets.push((runtime, key, Arc::clone(&target)));
                    target
                }
            }
        }
    };
    if target.sandbox {
        for eco in ecosystems {
            install(&target, *eco).await?;
        }
    }
    Ok(target)
}

fn identity(s: &Settings) -> String {
    let source = if let Some(name) = &s.sandbox {
        format!("sandbox:{}:{name}", sandbox_dir().display())
    } else if let Some(path) = &s.kubeconfig {
        format!("file:{path}")
    } else if let Some(raw) = &s.kubeconfig_raw {
        format!("raw:{}", blake3::hash(raw.as_bytes()).to_hex())
    } else {
        "default".to_string()
    };
    format!("{source}|{}", s.context.as_deref().unwrap_or(""))
}

async fn open(settings: &Settings) -> Result<Target, ProviderError> {
    if let Some(name) = &settings.sandbox {
        let kubeconfig = sandbox_cluster(name).await?;
        let (client, url) = client(kubeconfig, Some(name.clone())).await?;
        return Ok(Target::new(
            client,
            format!("sandbox cluster \"{name}\""),
            url,
            true,
        ));
    }
    let (kubeconfig, origin) = if let Some(raw) = &settings.kubeconfig_raw {
        let kc = Kubeconfig::from_yaml(raw).map_err(|e| {
            ProviderError::new("`kubeconfig_raw` is not a usable kubeconfig")
                .with_detail(e.to_string())
        })?;
        (kc, "kubeconfig_raw".to_string())
    } else if let Some(path) = &settings.kubeconfig {
        let kc = Kubeconfig::read_from(path).map_err(|e| {
            ProviderError::new(format!("cannot read kubeconfig {path}")).with_detail(e.to_string())
        })?;
        (kc, path.clone())
    } else {
        let kc = Kubeconfig::read().map_err(|e| {
            ProviderError::new("no kubeconfig: set `kubeconfig`, `kubeconfig_raw` or `sandbox` in the provider block, or KUBECONFIG in the environment")
                .with_detail(e.to_string())
        })?;
        (kc, "the default kubeconfig".to_string())
    };
    let context = settings
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone());
    if let Some(c) = &context
        && !kubeconfig.contexts.iter().any(|n| &n.name == c)
    {
        let names: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        return Err(
            ProviderError::new(format!("{origin} has no context \"{c}\"")).with_detail(
                match flotilla_syntax::did_you_mean(c, names.iter().copied()) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => format!("its contexts: {}", names.join(", ")),
                },
            ),
        );
    }
    let (client, url) = client(kubeconfig, context.clone()).await?;
    // Never a sandbox, even on loopback: a local kind cluster must not get CRDs installed.
    Ok(Target::new(
        client,
        format!("context \"{}\"", context.unwrap_or_default()),
        url,
        false,
    ))
}

async fn client(
    kubeconfig: Kubeconfig,
    context: Option<String>,
) -> Result<(Client, String), ProviderError> {
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| {
            ProviderError::new("the kubeconfig is not usable").with_detail(e.to_string())
        })?;
    // flotilla retries itself, bounded and visibly (see `ops::call`).
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(60));
    let url = config.cluster_url.to_string();
    let url = url.trim_end_matches('/').to_string();
    let client = Client::try_from(config).map_err(|e| {
        ProviderError::new("cannot build a Kubernetes client").with_detail(e.to_string())
    })?;
    Ok((client, url))
}

/// The kubeconfig of a sandbox cluster, starting the sandbox in this process if no
/// `flotilla sandbox up` serves the directory.
async fn sandbox_cluster(name: &str) -> Result<Kubeconfig, ProviderError> {
    let dir = sandbox_dir();
    let runtime = tokio::runtime::Handle::current().id();
    let _starting = STARTING.lock().await;
    let running = lock(&SANDBOXES)
        .iter()
        .find(|(r, d, _)| *r == runtime && *d == dir)
        .map(|(_, _, s)| Arc::clone(s));
    let sandbox = match running {
        Some(s) => Some(s),
        None => match Sandbox::start(SandboxOptions {
            dir: Some(dir.clone()),
            ..SandboxOptions::default()
        })
        .await
        {
            Ok(s) => {
                let s = Arc::new(s);
                lock(&SANDBOXES).push((runtime, dir.clone(), Arc::clone(&s)));
                Some(s)
            }
            Err(SandboxError::Locked { .. }) => None,
            Err(e) => {
                return Err(ProviderError::new(format!(
                    "cannot start the sandbox in {}",
                    dir.display()
                ))
                .with_detail(format!("{e}; {}", e.help())));
            }
        },
    };
    let text = match sandbox {
        Some(s) => {
            let cluster = match s.cluster(name) {
                Some(c) => c,
                None => s.add_cluster(name).map_err(|e| {
                    ProviderError::new(format!("cannot create sandbox cluster \"{name}\""))
                        .with_detail(e.to_string())
                })?,
            };
            cluster.kubeconfig()
        }
        None => {
            let path = dir.join("kubeconfig");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ProviderError::new(format!("cannot read {}", path.display()))
                    .with_detail(e.to_string())
            })?;
            let kc = Kubeconfig::from_yaml(&text).map_err(|e| {
                ProviderError::new(format!("{} is not a kubeconfig", path.display()))
                    .with_detail(e.to_string())
            })?;
            if !kc.contexts.iter().any(|c| c.name == name) {
                return Err(ProviderError::new(format!(
                    "the sandbox running in {} has no cluster \"{name}\"",
                    dir.display()
                ))
                .with_detail(format!(
                    "another process serves it; add the cluster with `flotilla sandbox down` then `flotilla sandbox up --name {name}`, or let flotilla start the sandbox itself"
                )));
            }
            text
        }
    };
    Kubeconfig::from_yaml(&text).map_err(|e| {
        ProviderError::new("the sandbox wrote an unusable kubeconfig").with_detail(e.to_string())
    })
}

/// Installs an ecosystem's CRDs into a sandbox cluster when they are missing.
async fn install(target: &Target, eco: Ecosystem) -> Result<(), ProviderError> {
    if lock(&target.installed).contains(&eco.name()) {
        return Ok(());
    }
    use kube::api::{Api, DynamicObject, PostParams};
    use kube::discovery::ApiResource;
    let resource = ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(target.client.clone(), &resource);
    let list_params = kube::api::ListParams::default();
    let present: Vec<String> = crate::ops::call(target, "list CustomResourceDefinitions", || {
        api.list(&list_params)
    })
    .await
    .map_err(|e| crate::ops::api_error(target, "cannot list CustomResourceDefinitions", &e))?
    .items
    .into_iter()
    .filter_map(|o| o.metadata.name)
    .collect();
    for crd in eco.crds() {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if present.contains(&name) {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(crd).map_err(|e| {
            ProviderError::new(format!("the {} CRD {name} is malformed", eco.name()))
                .with_detail(e.to_string())
        })?;
        let post = PostParams::default();
        match crate::ops::call(target, "install CRDs", || api.create(&post, &obj)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                return Err(crate::ops::api_error(
                    target,
                    &format!("cannot install the {} CRD {name}", eco.name()),
                    &e,
                ));
            }
        }
    }
    lock(&target.installed).push(eco.name());
    Ok(())
}

/// Stops the sandboxes this process started on the current runtime (saving their clusters)
/// and forgets the clients made on it. The CLI calls this before it exits.
pub async fn shutdown() {
    let runtime = tokio::runtime::Handle::current().id();
    lock(&TARGETS).retain(|(r, _, _)| *r != runtime);
    let mine: Vec<Arc<Sandbox>> = {
        let mut all = lock(&SANDBOXES);
        let (mine, rest) = std::mem::take(&mut *all)
            .into_iter()
            .partition::<Vec<_>, _>(|(r, _, _)| *r == runtime);
        *all = rest;
        mine.into_iter().map(|(_, _, s)| s).collect()
    };
    for s in mine {
        if let Ok(s) = Arc::try_unwrap(s) {
            let _ = s.stop().await;
        }
    }
}
