//! Connections: how a provider block names a cluster (`kubeconfig`, `kubeconfig_raw`,
//! `context` or `sandbox`), and one client per cluster, shared by every provider block that
//! names the same one.
//!
//! `sandbox = "NAME"` means a cluster of the sandbox: the run's [`ProviderHost`] resolves the
//! name to a kubeconfig (the CLI starts the sandbox under `.flotilla/sandbox/` in its own
//! process, or connects to the one `flotilla sandbox up` serves). Clients live in the host,
//! one per cluster and run ([`Clusters`]), with the cluster's discovery answers beside them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_ecosystems::Ecosystem;
use flotilla_provider::{ProviderError, ProviderHost, Value};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;

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

/// The host counter of requests sent to Kubernetes API servers.
pub const REQUESTS: &str = "kubernetes requests";

/// A served kind's API resource and whether it is namespaced.
pub(crate) type Discovered = (ApiResource, bool);

/// A connection to one cluster, with what this run learned about it.
pub struct Target {
    /// The client (retries are flotilla's own, see `ops`).
    pub client: Client,
    /// How the user named it, for messages: `context "prod"`, `sandbox cluster "mgmt"`.
    pub label: String,
    /// The API server's URL.
    pub url: String,
    /// Whether it was named with `sandbox = "NAME"` (ecosystems' CRDs are installed on demand).
    pub sandbox: bool,
    /// The kubeconfig it was made from (exported by `data "kube_connection"`).
    pub kubeconfig: String,
    host: Arc<ProviderHost>,
    /// The retry jitter's generator state (see `ops::call`).
    pub(crate) jitter: std::sync::atomic::AtomicU64,
    installed: Mutex<HashSet<Ecosystem>>,
    discovered: Mutex<HashMap<(String, String), Discovered>>,
    /// Reads of each resource in each namespace, for `ops::get` (see [`Reads`]).
    pub(crate) reads: Mutex<HashMap<ReadKey, Reads>>,
}

/// A resource (`apiVersion`, plural) in a namespace (`None`: cluster-wide).
pub(crate) type ReadKey = (String, String, Option<String>);

/// The objects one LIST returned, by name (`None` when the LIST failed).
pub(crate) type Listing = Arc<tokio::sync::OnceCell<Option<HashMap<String, serde_json::Value>>>>;

/// How `ops::get` reads objects of one resource in one namespace. The first few are single
/// GETs; once a run reads more, one LIST serves the rest (a plan of 1,000 ConfigMaps in a
/// namespace asks once, not 1,000 times). The first write through this connection to that
/// resource and namespace makes later reads single GETs again, so what apply reads after
/// writing is current.
pub(crate) enum Reads {
    /// This many single reads so far.
    Counting(u32),
    /// Served from one LIST.
    Listed(Listing),
    /// Written to since: single reads only.
    Written,
}

impl Target {
    /// Describes the cluster for an error message.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.label, self.url)
    }

    /// Reports progress through the run's host.
    pub fn notice(&self, message: &str) {
        self.host.notice(message);
    }

    /// Counts one request to the API server (the run's `kubernetes requests`).
    pub(crate) fn count_request(&self) {
        self.host.count(REQUESTS, 1);
    }

    /// A discovery answer this run already has for `api_version` `kind` (one hash lookup).
    pub(crate) fn discovered(&self, api_version: &str, kind: &str) -> Option<Discovered> {
        lock(&self.discovered)
            .get(&(api_version.to_string(), kind.to_string()))
            .cloned()
    }

    /// How the next read of `key` is served, counting it: `Some` when a LIST serves it.
    pub(crate) fn next_read(&self, key: &ReadKey) -> Option<Listing> {
        next_read(&mut lock(&self.reads), key)
    }

    /// Notes a write to `key`: later reads go to the server one by one.
    pub(crate) fn wrote(&self, key: ReadKey) {
        lock(&self.reads).insert(key, Reads::Written);
    }

    /// Remembers a discovery answer (only kinds that are served: a kind missing now may be
    /// created by a CRD later in the same run).
    pub(crate) fn remember(&self, api_version: &str, kind: &str, found: Discovered) {
        lock(&self.discovered).insert((api_version.to_string(), kind.to_string()), found);
    }
}

/// Single GETs of one resource in one namespace before a LIST serves the rest.
const SINGLE_READS: u32 = 4;

fn next_read(reads: &mut HashMap<ReadKey, Reads>, key: &ReadKey) -> Option<Listing> {
    let state = reads.entry(key.clone()).or_insert(Reads::Counting(0));
    match state {
        Reads::Counting(n) if *n < SINGLE_READS => {
            *n += 1;
            None
        }
        Reads::Counting(_) => {
            let listing = Listing::default();
            *state = Reads::Listed(Arc::clone(&listing));
            Some(listing)
        }
        Reads::Listed(listing) => Some(Arc::clone(listing)),
        Reads::Written => None,
    }
}

/// The run's clients, one per cluster identity, kept in the provider host. Each entry is
/// made once even when many provider blocks name the same cluster at the same time.
#[derive(Default)]
pub struct Clusters {
    by_identity: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Target>>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects to the cluster the settings name (reusing this run's client for it), installing
/// the ecosystems' CRDs first when it is a sandbox cluster.
pub async fn connect(
    host: &Arc<ProviderHost>,
    settings: &Settings,
    ecosystems: &[Ecosystem],
) -> Result<Arc<Target>, ProviderError> {
    let cell = {
        let clusters = host.shared::<Clusters>();
        let mut all = lock(&clusters.by_identity);
        Arc::clone(all.entry(identity(settings)).or_default())
    };
    let target = cell
        .get_or_try_init(|| async { open(host, settings).await.map(Arc::new) })
        .await?;
    if target.sandbox {
        for eco in ecosystems {
            install(target, *eco).await?;
        }
    }
    Ok(Arc::clone(target))
}

fn identity(s: &Settings) -> String {
    let source = if let Some(name) = &s.sandbox {
        format!("sandbox:{name}")
    } else if let Some(path) = &s.kubeconfig {
        format!("file:{path}")
    } else if let Some(raw) = &s.kubeconfig_raw {
        format!("raw:{}", blake3::hash(raw.as_bytes()).to_hex())
    } else {
        "default".to_string()
    };
    format!("{source}|{}", s.context.as_deref().unwrap_or(""))
}

async fn open(host: &Arc<ProviderHost>, settings: &Settings) -> Result<Target, ProviderError> {
    let target = |client, label, url, sandbox, kubeconfig| Target {
        client,
        label,
        url,
        sandbox,
        kubeconfig,
        host: Arc::clone(host),
        jitter: std::sync::atomic::AtomicU64::new(0),
        installed: Mutex::new(HashSet::new()),
        discovered: Mutex::new(HashMap::new()),
        reads: Mutex::new(HashMap::new()),
    };
    if let Some(name) = &settings.sandbox {
        let resolver = host.sandbox().ok_or_else(|| {
            ProviderError::new(format!("sandbox cluster \"{name}\" is not available here"))
                .with_detail("this command runs without the sandbox; name a kubeconfig instead")
        })?;
        let text = resolver.cluster(name).await?.kubeconfig;
        let kubeconfig = parse(&text, "the sandbox's kubeconfig")?;
        let text = minimal(&kubeconfig, name);
        let (client, url) = client(kubeconfig, Some(name.clone())).await?;
        return Ok(target(
            client,
            format!("sandbox cluster \"{name}\""),
            url,
            true,
            text,
        ));
    }
    let (kubeconfig, origin) = if let Some(raw) = &settings.kubeconfig_raw {
        (
            parse(raw, "`kubeconfig_raw`")?,
            "kubeconfig_raw".to_string(),
        )
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
                match flotilla_provider::did_you_mean(c, names.iter().copied()) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => format!("its contexts: {}", names.join(", ")),
                },
            ),
        );
    }
    let text = minimal(&kubeconfig, context.as_deref().unwrap_or_default());
    let (client, url) = client(kubeconfig, context.clone()).await?;
    // Never a sandbox, even on loopback: a local kind cluster must not get CRDs installed.
    Ok(target(
        client,
        format!("context \"{}\"", context.unwrap_or_default()),
        url,
        false,
        text,
    ))
}

/// A kubeconfig with only `context` (its cluster and user), which is also its current one:
/// what `data "kube_connection"` hands to another provider.
fn minimal(kc: &Kubeconfig, context: &str) -> String {
    let mut k = kc.clone();
    k.contexts.retain(|c| c.name == context);
    if let Some(ctx) = k.contexts.first().and_then(|c| c.context.clone()) {
        k.clusters.retain(|c| c.name == ctx.cluster);
        k.auth_infos
            .retain(|a| ctx.user.as_deref() == Some(a.name.as_str()));
    }
    k.current_context = Some(context.to_string());
    serde_yaml::to_string(&k).unwrap_or_default()
}

fn parse(text: &str, what: &str) -> Result<Kubeconfig, ProviderError> {
    Kubeconfig::from_yaml(text).map_err(|e| {
        ProviderError::new(format!("{what} is not a usable kubeconfig")).with_detail(e.to_string())
    })
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

/// Installs an ecosystem's CRDs into a sandbox cluster when they are missing.
async fn install(target: &Target, eco: Ecosystem) -> Result<(), ProviderError> {
    if lock(&target.installed).contains(&eco) {
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
        let obj: DynamicObject = serde_json::from_value(crd.clone()).map_err(|e| {
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
    lock(&target.installed).insert(eco);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_reads_are_single_then_one_list_serves_the_rest_until_a_write() {
        let mut reads = HashMap::new();
        let cms: ReadKey = ("v1".into(), "configmaps".into(), Some("apps".into()));
        let other: ReadKey = ("v1".into(), "configmaps".into(), Some("ops".into()));
        for _ in 0..SINGLE_READS {
            assert!(next_read(&mut reads, &cms).is_none());
        }
        let first = next_read(&mut reads, &cms).expect("a LIST from the fifth read on");
        let again = next_read(&mut reads, &cms).expect("the same LIST");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(
            next_read(&mut reads, &other).is_none(),
            "namespaces count apart"
        );
        reads.insert(cms.clone(), Reads::Written);
        assert!(
            next_read(&mut reads, &cms).is_none(),
            "after a write, reads are current"
        );
    }
}
