//! The sandbox: a local server that speaks the Kubernetes API closely enough that kube-rs and
//! kubectl use it as a real cluster. One [`Sandbox`] runs several clusters in one process,
//! each with its own HTTPS port, CA, bearer token and object store; with a directory it keeps
//! them across restarts, without one it lives in memory (tests).
//!
//! Layout: [`store`] holds a cluster's objects and the API server's write semantics (with
//! [`schema`], [`fields`], [`patch`] and [`builtin`] for validation, defaulting, patches and
//! server-side apply); [`server`] is the HTTP layer (routing, discovery, watch, tables);
//! [`tls`] makes the certificates; this module starts, persists and stops clusters.

pub mod admission;
pub mod builtin;
pub mod controllers;
pub mod ecosystems;
pub mod faults;
pub mod fields;
pub mod kinds;
pub mod local;
pub mod names;
pub mod patch;
pub mod protobuf;
pub mod query;
pub mod schema;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;

use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use store::{Snapshot, Store};

pub use ecosystems::Ecosystem;
pub use faults::FaultConfig;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The Kubernetes version the sandbox reports.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// Version of the on-disk cluster files.
const FORMAT_VERSION: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sandbox cluster {cluster:?} cannot listen on 127.0.0.1:{port}: {source}")]
    Listen {
        cluster: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("the sandbox in {} is already running (another process holds {})", dir.display(), dir.join("lock").display())]
    Locked { dir: PathBuf },
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("{0}")]
    Tls(String),
    #[error(
        "invalid sandbox cluster name {0:?}: use lowercase letters, digits and '-', starting with a letter (at most 40 characters)"
    )]
    InvalidName(String),
    #[error("sandbox cluster {0:?} already exists")]
    Duplicate(String),
    #[error("there is no sandbox cluster {0:?}")]
    UnknownCluster(String),
    #[error("installing {ecosystem} in sandbox cluster {cluster:?}: {message}")]
    Install {
        cluster: String,
        ecosystem: &'static str,
        message: String,
    },
}

impl SandboxError {
    /// What the user can do about it.
    pub fn help(&self) -> &'static str {
        match self {
            SandboxError::Locked { .. } => {
                "use `flotilla sandbox status` to see it, or `flotilla sandbox down` to stop it"
            }
            SandboxError::Listen { .. } => {
                "another program took the cluster's port; stop it, or delete the cluster's file under the sandbox directory to get a new port"
            }
            SandboxError::Corrupt { .. } => {
                "the sandbox files were edited or truncated; remove the sandbox directory to start afresh"
            }
            SandboxError::InvalidName(_) => "for example: mgmt, member-1",
            SandboxError::Install { .. } => {
                "an object in the cluster is in the way (e.g. a namespace being deleted); remove it, or start without --with"
            }
            SandboxError::UnknownCluster(_) => {
                "`flotilla sandbox status` lists the sandbox's clusters"
            }
            _ => "check the path and permissions of the sandbox directory",
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// One running cluster.
pub struct Cluster {
    pub name: String,
    pub port: u16,
    pub token: String,
    pub credentials: tls::Credentials,
    /// Who created the cluster at runtime (e.g. the Cluster API controller), if not a user.
    pub created_by: Option<String>,
    /// The faults this cluster injects.
    pub faults: faults::Injector,
    store: Mutex<Store>,
    changes: watch::Sender<u64>,
    dirty: Notify,
    /// The resource version last written to the cluster's file (0: never), so saves of an
    /// unchanged cluster are skipped.
    saved: std::sync::atomic::AtomicU64,
    stop: watch::Sender<bool>,
}

impl Cluster {
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Locks the store. Callers that change it must call [`Cluster::changed`] afterwards.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes watches and schedules a save.
    pub fn changed(&self) {
        let rv = self.store().resource_version();
        self.changes.send_replace(rv);
        self.dirty.notify_one();
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A kubeconfig for this cluster alone.
    pub fn kubeconfig(&self) -> String {
        kubeconfig(std::slice::from_ref(&self), &self.name)
    }

    /// Whether the cluster was stopped (the sandbox stopped, or the cluster was removed).
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

/// A kubeconfig document for `clusters`, with `current` as the current context.
pub fn kubeconfig(clusters: &[&Cluster], current: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters.iter().map(|c| json!({"name": c.name, "cluster": {"server": c.url(), "certificate-authority-data": b64(&c.credentials.ca_pem)}})).collect::<Vec<_>>(),
        "users": clusters.iter().map(|c| json!({"name": c.name, "user": {"token": c.token}})).collect::<Vec<_>>(),
        "contexts": clusters.iter().map(|c| json!({"name": c.name, "context": {"cluster": c.name, "user": c.name}})).collect::<Vec<_>>(),
        "current-context": current,
        "preferences": {},
    });
    serde_yaml::to_string(&doc).expect("kubeconfig documents serialize")
}

/// The persisted form of a cluster.
#[derive(Serialize, Deserialize)]
struct ClusterFile {
    format_version: u64,
    name: String,
    port: u16,
    token: String,
    credentials: tls::Credentials,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_by: Option<String>,
    store: Snapshot,
}

/// Where and what to start.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Keep clusters here across restarts; `None` keeps them in memory.
    pub dir: Option<PathBuf>,
    /// Clusters to create if they do not exist yet (existing ones in `dir` always start).
    pub clusters: Vec<String>,
    /// Ecosystems whose CRDs (and seed objects) are installed in every cluster at start.
    pub with: Vec<Ecosystem>,
    /// How long the simulated controllers wait after a change before they act
    /// (`None`: [`controllers::DEFAULT_DELAY`]).
    pub controller_delay: Option<std::time::Duration>,
    /// Faults per cluster name, set at start.
    pub faults: Vec<(String, FaultConfig)>,
}

/// A set of running clusters.
pub struct Sandbox {
    shared: Arc<Shared>,
}

/// What the sandbox's tasks share: the clusters (which the Cluster API controller adds and
/// removes at runtime), the directory and the shutdown signal.
pub(crate) struct Shared {
    clusters: Mutex<Vec<Arc<Cluster>>>,
    dir: Option<PathBuf>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) controller_delay: std::time::Duration,
    /// Bumped when a cluster is added or removed, so controllers look again.
    pub(crate) topology: watch::Sender<u64>,
    /// Itself, for the tasks it starts (weak, so they do not keep a dropped sandbox alive).
    me: Weak<Shared>,
    /// Notified when the kubeconfig file needs rewriting (see `kubeconfig_loop`).
    kubeconfig_dirty: Arc<Notify>,
    /// While starting: the faults each cluster has from its first moment, before its server
    /// and controllers run (so no controller pass ever sees it without them).
    starting_faults: Mutex<std::collections::BTreeMap<String, FaultConfig>>,
    /// Held while the kubeconfig is computed and written, so writes land in order.
    kubeconfig_write: Mutex<()>,
    _lock: Option<File>,
}

impl Sandbox {
    /// Starts the sandbox: loads the clusters in `dir`, creates the missing ones, installs the
    /// requested ecosystems, and serves each cluster on its port.
    pub async fn start(options: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let (shutdown, _) = watch::channel(false);
        let (topology, _) = watch::channel(0);
        let mut lock_file = None;
        let mut files = Vec::new();
        if let Some(dir) = &options.dir {
            let clusters_dir = dir.join("clusters");
            std::fs::create_dir_all(&clusters_dir).map_err(io_err(&clusters_dir))?;
            let lock_path = dir.join("lock");
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io_err(&lock_path))?;
            if file.try_lock().is_err() {
                return Err(SandboxError::Locked { dir: dir.clone() });
            }
            lock_file = Some(file);
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&clusters_dir)
                .map_err(io_err(&clusters_dir))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            entries.sort();
            for path in entries {
                files.push(load_cluster_file(&path)?);
            }
        }
        // Faults recorded while the sandbox was down, and those asked for, apply from each
        // cluster's first moment.
        let faults_text = options
            .dir
            .as_ref()
            .map(|d| std::fs::read_to_string(d.join(FAULTS_FILE)).unwrap_or_default());
        let mut starting = std::collections::BTreeMap::new();
        if let Some(text) = &faults_text
            && let Ok(map) =
                serde_json::from_str::<std::collections::BTreeMap<String, FaultConfig>>(text)
        {
            starting.extend(map.into_iter().filter(|(_, c)| c.check().is_ok()));
        }
        starting.extend(options.faults.iter().cloned());
        let sandbox = Sandbox {
            shared: Arc::new_cyclic(|me| Shared {
                me: me.clone(),
                kubeconfig_dirty: Arc::new(Notify::new()),
                starting_faults: Mutex::new(starting),
                kubeconfig_write: Mutex::new(()),
                clusters: Mutex::new(Vec::new()),
                dir: options.dir.clone(),
                shutdown,
                tasks: Mutex::new(Vec::new()),
                controller_delay: options
                    .controller_delay
                    .unwrap_or(controllers::DEFAULT_DELAY),
                topology,
                _lock: lock_file,
            }),
        };
        for file in files {
            sandbox.shared.launch(file)?;
        }
        for name in &options.clusters {
            if sandbox.cluster(name).is_none() {
                sandbox.shared.add_cluster(name, None)?;
            }
        }
        if options.dir.is_some() {
            let task = tokio::spawn(kubeconfig_loop(
                sandbox.shared.me.clone(),
                sandbox.shared.shutdown.subscribe(),
            ));
            lock(&sandbox.shared.tasks).push(task);
        }
        for cluster in sandbox.clusters() {
            for eco in &options.with {
                ecosystems::install(&cluster, *eco).map_err(|message| SandboxError::Install {
                    cluster: cluster.name.clone(),
                    ecosystem: eco.name(),
                    message,
                })?;
            }
        }
        if let Some(dir) = &options.dir {
            let applied: Vec<String> = lock(&sandbox.shared.starting_faults)
                .keys()
                .filter(|name| sandbox.cluster(name).is_some())
                .cloned()
                .collect();
            let task = tokio::spawn(faults_file_loop(
                sandbox.shared.me.clone(),
                dir.join(FAULTS_FILE),
                sandbox.shared.shutdown.subscribe(),
                (faults_text.clone(), applied),
            ));
            lock(&sandbox.shared.tasks).push(task);
        }
        for (name, _) in &options.faults {
            if sandbox.cluster(name).is_none() {
                return Err(SandboxError::UnknownCluster(name.clone()));
            }
        }
        lock(&sandbox.shared.starting_faults).clear();
        sandbox.shared.write_kubeconfig()?;
        Ok(sandbox)
    }

    /// The clusters, sorted by name.
    pub fn clusters(&self) -> Vec<Arc<Cluster>> {
        self.shared.clusters()
    }

    pub fn cluster(&self, name: &str) -> Option<Arc<Cluster>> {
        self.shared.cluster(name)
    }

    /// Creates and starts a new, empty cluster.
    pub fn add_cluster(&self, name: &str) -> Result<Arc<Cluster>, SandboxError> {
        self.shared.add_cluster(name, None)
    }

    /// Stops a cluster and deletes it (and its file).
    pub fn remove_cluster(&self, name: &str) -> Result<(), SandboxError> {
        self.shared.remove_cluster(name)
    }

    /// A kubeconfig with a context per cluster; the first by name is current.
    pub fn kubeconfig(&self) -> String {
        self.shared.kubeconfig()
    }

    /// Stops serving and saves every cluster.
    pub async fn stop(self) -> Result<(), SandboxError> {
        self.shared.shutdown.send_replace(true);
        for cluster in self.clusters() {
            cluster.stop.send_replace(true);
        }
        let tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        for task in tasks {
            let _ = task.await;
        }
        if let Some(dir) = &self.shared.dir {
            for cluster in self.clusters() {
                save_cluster(&cluster, dir)?;
            }
        }
        self.shared.write_kubeconfig()
    }
}

impl Drop for Sandbox {
    /// A sandbox dropped without [`Sandbox::stop`] still stops serving (its last changes are
    /// saved by the write-behind task only if it ran; call `stop` to be sure).
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        for cluster in self.shared.clusters() {
            cluster.stop.send_replace(true);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn clusters(&self) -> Vec<Arc<Cluster>> {
        lock(&self.clusters).clone()
    }

    pub(crate) fn cluster(&self, name: &str) -> Option<Arc<Cluster>> {
        // Kept sorted by name (see `launch`).
        let clusters = lock(&self.clusters);
        clusters
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .map(|at| Arc::clone(&clusters[at]))
    }

    /// The cluster serving at `url` (`https://127.0.0.1:PORT`, `https://localhost:PORT`).
    pub(crate) fn cluster_at(&self, url: &str) -> Option<Arc<Cluster>> {
        let rest = url
            .strip_prefix("https://127.0.0.1:")
            .or_else(|| url.strip_prefix("https://localhost:"))?;
        let port: u16 = rest.trim_end_matches('/').parse().ok()?;
        lock(&self.clusters)
            .iter()
            .find(|c| c.port == port)
            .cloned()
    }

    pub(crate) fn add_cluster(
        &self,
        name: &str,
        created_by: Option<String>,
    ) -> Result<Arc<Cluster>, SandboxError> {
        if !valid_name(name) {
            return Err(SandboxError::InvalidName(name.to_string()));
        }
        if self.cluster(name).is_some() {
            return Err(SandboxError::Duplicate(name.to_string()));
        }
        let credentials = tls::generate(name).map_err(SandboxError::Tls)?;
        let store = Store::new(name, &credentials.ca_pem).snapshot();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let file = ClusterFile {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            port: 0,
            token,
            credentials,
            created_by,
            store,
        };
        let created_by_controller = file.created_by.is_some();
        let cluster = self.launch(file)?;
        if let Some(dir) = &self.dir {
            save_cluster(&cluster, dir)?;
        }
        if created_by_controller {
            // A cluster a controller made (Cluster API's) is one at a time, and tools outside
            // (kubectl, `flotilla sandbox kubeconfig`) look for it as soon as it is Available.
            self.write_kubeconfig()?;
        } else {
            self.kubeconfig_dirty.notify_one();
        }
        self.topology.send_modify(|n| *n += 1);
        Ok(cluster)
    }

    pub(crate) fn remove_cluster(&self, name: &str) -> Result<(), SandboxError> {
        let cluster = {
            let mut clusters = lock(&self.clusters);
            let at = clusters
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| SandboxError::UnknownCluster(name.to_string()))?;
            clusters.remove(at)
        };
        cluster.stop.send_replace(true);
        if let Some(dir) = &self.dir {
            let path = dir.join("clusters").join(format!("{name}.json"));
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(&path)(e));
                }
                _ => {}
            }
        }
        self.kubeconfig_dirty.notify_one();
        self.topology.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Starts serving a cluster (binding is synchronous: loopback binds do not wait, and it
    /// keeps this callable from the controllers' tasks).
    fn launch(&self, file: ClusterFile) -> Result<Arc<Cluster>, SandboxError> {
        let listen_err = |source| SandboxError::Listen {
            cluster: file.name.clone(),
            port: file.port,
            source,
        };
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", file.port)).map_err(listen_err)?;
        std_listener.set_nonblocking(true).map_err(listen_err)?;
        let port = std_listener.local_addr().map_err(listen_err)?.port();
        let listener = TcpListener::from_std(std_listener).map_err(listen_err)?;
        let config = tls::server_config(&file.credentials).map_err(SandboxError::Tls)?;
        let store = Store::restore(&file.name, file.store);
        let (changes, _) = watch::channel(store.resource_version());
        let (stop, _) = watch::channel(*self.shutdown.borrow());
        let cluster = Arc::new(Cluster {
            name: file.name,
            port,
            token: file.token,
            credentials: file.credentials,
            created_by: file.created_by,
            faults: faults::Injector::default(),
            store: Mutex::new(store),
            changes,
            dirty: Notify::new(),
            saved: std::sync::atomic::AtomicU64::new(0),
            stop,
        });
        if let Some(config) = lock(&self.starting_faults).get(&cluster.name) {
            cluster.faults.set(config.clone());
        }
        let mut tasks = vec![
            tokio::spawn(server::serve(
                cluster.clone(),
                listener,
                config,
                cluster.stop.subscribe(),
            )),
            tokio::spawn(controllers::run(self.me.clone(), cluster.clone())),
        ];
        if let Some(dir) = &self.dir {
            tasks.push(tokio::spawn(persist_loop(cluster.clone(), dir.clone())));
        }
        lock(&self.tasks).extend(tasks);
        let mut clusters = lock(&self.clusters);
        let at = clusters.partition_point(|c| c.name < cluster.name);
        clusters.insert(at, cluster.clone());
        Ok(cluster)
    }

    fn write_kubeconfig(&self) -> Result<(), SandboxError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let _one_at_a_time = lock(&self.kubeconfig_write);
        let path = dir.join("kubeconfig");
        write_atomic(&path, self.kubeconfig().as_bytes())
    }

    fn kubeconfig(&self) -> String {
        let clusters = self.clusters();
        let refs: Vec<&Cluster> = clusters.iter().map(Arc::as_ref).collect();
        let current = refs.first().map(|c| c.name.clone()).unwrap_or_default();
        kubeconfig(&refs, &current)
    }
}

fn load_cluster_file(path: &Path) -> Result<ClusterFile, SandboxError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| SandboxError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let version = value["format_version"].as_u64().unwrap_or(0);
    if version != FORMAT_VERSION {
        return Err(SandboxError::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "format version {version} is not supported (this flotilla reads version {FORMAT_VERSION})"
            ),
        });
    }
    serde_json::from_value(value).map_err(|e| SandboxError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes a cluster's file, unless it holds this resource version already.
fn save_cluster(cluster: &Cluster, dir: &Path) -> Result<(), SandboxError> {
    use std::sync::atomic::Ordering;
    let (snapshot, version) = {
        let store = cluster.store();
        let version = store.resource_version();
        if cluster.saved.load(Ordering::Acquire) == version {
            return Ok(());
        }
        (store.snapshot(), version)
    };
    let file = ClusterFile {
        format_version: FORMAT_VERSION,
        name: cluster.name.clone(),
        port: cluster.port,
        token: cluster.token.clone(),
        credentials: cluster.credentials.clone(),
        created_by: cluster.created_by.clone(),
        store: snapshot,
    };
    let bytes = serde_json::to_vec(&file).expect("cluster files serialize");
    write_atomic(
        &dir.join("clusters").join(format!("{}.json", cluster.name)),
        &bytes,
    )?;
    cluster.saved.store(version, Ordering::Release);
    Ok(())
}

/// The file in a sandbox directory that sets faults at runtime: a JSON object from cluster
/// name to [`FaultConfig`]. `flotilla sandbox fault` writes it; the server reads it.
pub const FAULTS_FILE: &str = "faults.json";

/// Reads the faults file whenever it changes (polling, so editors and scripts can write it
/// any way they like) and sets each listed cluster's faults; a cluster dropped from the file
/// goes back to no faults.
async fn faults_file_loop(
    shared: Weak<Shared>,
    path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
    (mut last, mut applied): (Option<String>, Vec<String>),
) {
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if last.as_ref() != Some(&text) {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let parsed: Result<std::collections::BTreeMap<String, FaultConfig>, String> =
                if text.trim().is_empty() {
                    Ok(Default::default())
                } else {
                    serde_json::from_str(&text).map_err(|e| e.to_string())
                };
            match parsed.and_then(|m| {
                m.values().try_for_each(FaultConfig::check)?;
                Ok(m)
            }) {
                Ok(map) => {
                    for name in applied.iter().filter(|n| !map.contains_key(*n)) {
                        if let Some(c) = shared.cluster(name) {
                            c.faults.set(FaultConfig::default());
                        }
                    }
                    for (name, config) in &map {
                        match shared.cluster(name) {
                            Some(c) => c.faults.set(config.clone()),
                            None => eprintln!(
                                "flotilla sandbox: {}: there is no cluster {name:?}",
                                path.display()
                            ),
                        }
                    }
                    applied = map.into_keys().collect();
                }
                Err(e) => eprintln!("flotilla sandbox: {}: {e}", path.display()),
            }
            last = Some(text);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Writes through a temporary file and a rename, so a killed process leaves the old or the
/// new file, never half of one. There is no fsync: the sandbox is a local test cluster, and
/// a thousand clusters saved with one fsync each took seconds; a power loss may lose the last
/// writes.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SandboxError> {
    // A temporary name of its own: two writers of one file (the kubeconfig's write-behind
    // task and a direct write) must not rename each other's temporary file away.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Rewrites the sandbox's kubeconfig shortly after clusters come or go (coalescing bursts:
/// a thousand clusters added one after another write it a few times, not a thousand), until
/// the sandbox stops ([`Sandbox::stop`] writes it once more).
async fn kubeconfig_loop(shared: Weak<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let Some(dirty) = shared.upgrade().map(|s| Arc::clone(&s.kubeconfig_dirty)) else {
            return;
        };
        tokio::select! {
            _ = dirty.notified() => {}
            _ = shutdown.changed() => return,
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(e) = shared.write_kubeconfig() {
            eprintln!("flotilla sandbox: writing the kubeconfig failed: {e}");
        }
    }
}

/// Saves a cluster shortly after it changes (coalescing bursts of writes), until the cluster
/// stops ([`Sandbox::stop`] saves once more).
async fn persist_loop(cluster: Arc<Cluster>, dir: PathBuf) {
    let mut stop = cluster.stop.subscribe();
    loop {
        tokio::select! {
            _ = cluster.dirty.notified() => {}
            _ = stop.changed() => return,
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if cluster.stopped() {
            return;
        }
        if let Err(e) = save_cluster(&cluster, &dir) {
            eprintln!(
                "flotilla sandbox: saving cluster {:?} failed: {e}",
                cluster.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_atomic_writes_of_one_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..50 {
                        write_atomic(path, format!("{t}-{i}").as_bytes()).unwrap();
                    }
                });
            }
        });
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("-49"));
    }
}
