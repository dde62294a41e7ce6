//! The Kubernetes backend: `backend "kubernetes" { sandbox = "mgmt" namespace = "flotilla"
//! secret_suffix = "fleet" }` (or `kubeconfig`/`context`, as in a kube provider block).
//!
//! Objects, all labelled `app.kubernetes.io/managed-by=flotilla` with the workspace and
//! suffix:
//! - Secret `flotilla-state-WS-SUFFIX`: the snapshot, gzip, with its lineage, serial,
//!   generation and chunk count as annotations. A snapshot above [`CHUNK`] bytes continues
//!   in Secrets `flotilla-state-WS-SUFFIX-GEN-N`, named after the generation that wrote
//!   them, so a reader never mixes two writes; chunks of older generations are removed
//!   after the main Secret moves on.
//! - Secrets `flotilla-journal-WS-SUFFIX-N`: the apply journal, one data key per batch
//!   (a merge patch), a new Secret when one fills.
//! - Lease `flotilla-lock-WS-SUFFIX` (`coordination.k8s.io/v1`): `holderIdentity` is the
//!   lock id, renewed every [`RENEW`] for [`LEASE_SECONDS`]; the holder's info is an
//!   annotation. A killed holder stops renewing and the lease expires; a holder that cannot
//!   renew before expiry reports the lock lost.
//!
//! - Secrets `flotilla-request-WS-SUFFIX-ID` (part `request`): a rollout request left for
//!   the lock holder (`rollout pause` during an apply), removed once it is recorded.
//!
//! Writes to the main Secret carry its resourceVersion: the API server refuses a write
//! based on a version that is no longer current, which is the compare-and-swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use flotilla_provider::ProviderHost;
use flotilla_state::{
    Backend, Codec, JournalEntry, JournalWriter, LockInfo, RolloutRequest, State, StateError,
    StateStore, StoreLock, check_deletable, check_workspace_name, workspace_list,
};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use tokio::runtime::Handle;

use crate::{block_on, gunzip, gzip, remote};

/// The largest piece of a snapshot one Secret holds (Secrets are limited to 1 MiB).
pub const CHUNK: usize = 1_000_000;
/// A journal Secret is closed once it holds this much (base64).
const JOURNAL_FULL: usize = 800_000;
/// The largest piece of one journal batch (gzip, before base64).
const JOURNAL_PIECE: usize = 600_000;
/// How long a lease lasts without renewal.
pub const LEASE_SECONDS: i64 = 15;
/// How often the holder renews it.
pub const RENEW: Duration = Duration::from_secs(5);

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const WORKSPACE: &str = "flotilla.dev/workspace";
const SUFFIX: &str = "flotilla.dev/state-suffix";
const PART: &str = "flotilla.dev/part";
const LINEAGE: &str = "flotilla.dev/lineage";
const SERIAL: &str = "flotilla.dev/serial";
const GENERATION: &str = "flotilla.dev/generation";
const CHUNKS: &str = "flotilla.dev/chunks";
const LOCK_INFO: &str = "flotilla.dev/lock-info";

/// The backend block's arguments.
#[derive(Debug, Clone)]
pub struct KubernetesSettings {
    /// The cluster, named as in a kube provider block.
    pub connection: flotilla_provider_kube::Settings,
    /// The namespace the Secrets and Leases live in.
    pub namespace: String,
    /// Part of every object's name, so several configurations share a namespace.
    pub secret_suffix: String,
}

/// State in Secrets of a Kubernetes cluster.
#[derive(Debug, Clone)]
pub struct Kubernetes {
    shared: Arc<Shared>,
}

struct Shared {
    settings: KubernetesSettings,
    codec: Codec,
    handle: Handle,
    host: Arc<ProviderHost>,
    client: tokio::sync::OnceCell<(kube::Client, String)>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubernetes")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn secrets() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Secret".into(),
        plural: "secrets".into(),
    }
}

fn leases() -> ApiResource {
    ApiResource {
        group: "coordination.k8s.io".into(),
        version: "v1".into(),
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        plural: "leases".into(),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn annotation<'a>(o: &'a DynamicObject, key: &str) -> Option<&'a str> {
    o.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn data_of<'a>(o: &'a DynamicObject, key: &str) -> Option<&'a str> {
    o.data
        .get("data")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => {
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            msg
        }
    }
}

fn micro_time(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

fn object(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("a well-formed object")
}

impl Kubernetes {
    /// A backend in the cluster `settings` name, connecting through `host` (which resolves
    /// sandbox names); `handle` is the runtime its requests and lease renewals run on.
    pub fn new(
        settings: KubernetesSettings,
        codec: Codec,
        host: Arc<ProviderHost>,
        handle: Handle,
    ) -> Kubernetes {
        Kubernetes {
            shared: Arc::new(Shared {
                settings,
                codec,
                handle,
                host,
                client: tokio::sync::OnceCell::new(),
            }),
        }
    }
}

impl Shared {
    fn describe(&self) -> String {
        format!(
            "kubernetes namespace \"{}\" (suffix \"{}\")",
            self.settings.namespace, self.settings.secret_suffix
        )
    }

    fn err(&self, action: &str, e: &kube::Error) -> StateError {
        remote(&self.describe(), action, message(e))
    }

    async fn client(&self) -> Result<&(kube::Client, String), StateError> {
        self.client
            .get_or_try_init(|| async {
                let target = flotilla_provider_kube::conn::connect(
                    &self.host,
                    &self.settings.connection,
                    &[],
                )
                .await
                .map_err(|e| {
                    let detail = e.detail.map(|d| format!(": {d}")).unwrap_or_default();
                    remote(
                        &self.describe(),
                        "cannot connect",
                        format!("{}{detail}", e.message),
                    )
                })?;
                Ok((target.client.clone(), target.describe()))
            })
            .await
    }

    async fn api(&self, resource: &ApiResource) -> Result<Api<DynamicObject>, StateError> {
        let (client, _) = self.client().await?;
        Ok(Api::namespaced_with(
            client.clone(),
            &self.settings.namespace,
            resource,
        ))
    }

    fn labels(&self, workspace: &str, part: &str) -> Value {
        json!({
            MANAGED_BY: "flotilla",
            WORKSPACE: workspace,
            SUFFIX: self.settings.secret_suffix,
            PART: part,
        })
    }

    fn selector(&self, workspace: Option<&str>, part: Option<&str>) -> String {
        let mut s = format!(
            "{MANAGED_BY}=flotilla,{SUFFIX}={}",
            self.settings.secret_suffix
        );
        if let Some(w) = workspace {
            s.push_str(&format!(",{WORKSPACE}={w}"));
        }
        if let Some(p) = part {
            s.push_str(&format!(",{PART}={p}"));
        }
        s
    }

    async fn list(
        &self,
        resource: &ApiResource,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, StateError> {
        let api = self.api(resource).await?;
        let mut items = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| self.err("cannot list state objects", &e))?
            .items;
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(items)
    }

    async fn delete_all(&self, resource: &ApiResource, selector: &str) -> Result<(), StateError> {
        let api = self.api(resource).await?;
        for o in self.list(resource, selector).await? {
            let name = o.metadata.name.unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(self.err(&format!("cannot delete Secret {name}"), &e)),
            }
        }
        Ok(())
    }
}

impl Backend for Kubernetes {
    fn describe(&self) -> String {
        self.shared.describe()
    }

    fn workspaces(&self) -> Result<Vec<String>, StateError> {
        let s = &self.shared;
        let names: Vec<String> = block_on(&s.handle, async {
            let found = s.list(&secrets(), &s.selector(None, Some("state"))).await?;
            Ok::<_, StateError>(
                found
                    .iter()
                    .filter_map(|o| o.metadata.labels.as_ref()?.get(WORKSPACE).cloned())
                    .collect(),
            )
        })?;
        Ok(workspace_list(names))
    }

    fn store(&self, workspace: &str) -> Result<Arc<dyn StateStore>, StateError> {
        check_workspace_name(workspace)?;
        Ok(Arc::new(KubeStore {
            shared: Arc::clone(&self.shared),
            workspace: workspace.to_string(),
        }))
    }

    fn delete_workspace(&self, workspace: &str) -> Result<(), StateError> {
        check_deletable(workspace)?;
        let s = &self.shared;
        block_on(&s.handle, async {
            s.delete_all(&secrets(), &s.selector(Some(workspace), None))
                .await
        })
    }
}

/// One workspace's state in the cluster.
#[derive(Debug)]
pub struct KubeStore {
    shared: Arc<Shared>,
    workspace: String,
}

impl KubeStore {
    fn base(&self) -> String {
        format!("{}-{}", self.workspace, self.shared.settings.secret_suffix)
    }

    fn state_name(&self) -> String {
        format!("flotilla-state-{}", self.base())
    }

    fn lease_name(&self) -> String {
        format!("flotilla-lock-{}", self.base())
    }

    fn name(&self) -> String {
        format!(
            "Secret {}/{}",
            self.shared.settings.namespace,
            self.state_name()
        )
    }

    async fn read(&self) -> Result<Option<(DynamicObject, State)>, StateError> {
        let s = &self.shared;
        let api = s.api(&secrets()).await?;
        let main = api
            .get_opt(&self.state_name())
            .await
            .map_err(|e| s.err("cannot read state", &e))?;
        let Some(main) = main else { return Ok(None) };
        let corrupt = |reason: &str| StateError::Corrupt {
            path: self.name(),
            reason: reason.to_string(),
        };
        let chunks: usize = annotation(&main, CHUNKS)
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let generation = annotation(&main, GENERATION)
            .unwrap_or_default()
            .to_string();
        let mut gz = unb64(data_of(&main, "state").unwrap_or_default())
            .ok_or_else(|| corrupt("its data is not base64"))?;
        for i in 1..chunks {
            let name = chunk_name(&self.state_name(), &generation, i);
            let part = api
                .get_opt(&name)
                .await
                .map_err(|e| s.err("cannot read state", &e))?
                .ok_or_else(|| corrupt(&format!("its part {name} is missing")))?;
            gz.extend(
                unb64(data_of(&part, "state").unwrap_or_default())
                    .ok_or_else(|| corrupt("a part is not base64"))?,
            );
        }
        let bytes = gunzip(&gz).ok_or_else(|| corrupt("its data is not gzip"))?;
        let state = s.codec.decode_state(&bytes, &self.name())?;
        Ok(Some((main, state)))
    }

    /// Writes `state`; `expect` is the main Secret's resourceVersion it must still have
    /// (`None`: create it, `Some(None)`: no check at all).
    async fn write(&self, state: &State, expected: Expected) -> Result<(), StateError> {
        let s = &self.shared;
        let api = s.api(&secrets()).await?;
        let gz = gzip(&s.codec.encode_state(state));
        let generation = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let pieces: Vec<&[u8]> = gz.chunks(CHUNK).collect();
        let pieces = if pieces.is_empty() {
            vec![&[][..]]
        } else {
            pieces
        };
        for (i, piece) in pieces.iter().enumerate().skip(1) {
            let name = chunk_name(&self.state_name(), &generation, i);
            let o = object(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {
                    "name": name,
                    "labels": s.labels(&self.workspace, "chunk"),
                    "annotations": { GENERATION: generation },
                },
                "type": "Opaque",
                "data": { "state": b64(piece) },
            }));
            api.create(&PostParams::default(), &o)
                .await
                .map_err(|e| s.err("cannot write state", &e))?;
        }
        let mut main = object(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": self.state_name(),
                "labels": s.labels(&self.workspace, "state"),
                "annotations": {
                    LINEAGE: state.lineage,
                    SERIAL: state.serial.to_string(),
                    GENERATION: generation,
                    CHUNKS: pieces.len().to_string(),
                },
            },
            "type": "Opaque",
            "data": { "state": b64(pieces[0]) },
        }));
        let current = match &expected {
            Expected::Version(v) => Some(v.clone()),
            Expected::Nothing => None,
            Expected::Any => api
                .get_opt(&self.state_name())
                .await
                .map_err(|e| s.err("cannot read state", &e))?
                .and_then(|o| o.metadata.resource_version),
        };
        let conflict = || StateError::Conflict {
            store: self.name(),
            expected: match &expected {
                Expected::Version(v) => format!("resourceVersion {v}"),
                _ => "no state yet".into(),
            },
            found: "a newer version written by another run".into(),
        };
        let written = match current {
            Some(rv) => {
                main.metadata.resource_version = Some(rv);
                api.replace(&self.state_name(), &PostParams::default(), &main)
                    .await
            }
            None => api.create(&PostParams::default(), &main).await,
        };
        match written {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {
                self.remove_chunks(Some(&generation), true).await?;
                return Err(conflict());
            }
            Err(e) => return Err(s.err("cannot write state", &e)),
        }
        self.remove_chunks(Some(&generation), false).await?;
        s.delete_all(
            &secrets(),
            &s.selector(Some(&self.workspace), Some("journal")),
        )
        .await
    }

    /// Removes chunk Secrets of generations other than `keep` (or only of `keep`, when
    /// `only` is set: the parts of a write that lost its compare-and-swap).
    async fn remove_chunks(&self, keep: Option<&str>, only: bool) -> Result<(), StateError> {
        let s = &self.shared;
        let api = s.api(&secrets()).await?;
        for o in s
            .list(
                &secrets(),
                &s.selector(Some(&self.workspace), Some("chunk")),
            )
            .await?
        {
            let mine = annotation(&o, GENERATION) == keep;
            if mine != only {
                continue;
            }
            let name = o.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(s.err("cannot remove an old state part", &e)),
            }
        }
        Ok(())
    }
}

enum Expected {
    /// The main Secret must still have this resourceVersion.
    Version(String),
    /// There must be no main Secret yet.
    Nothing,
    /// Whatever is there is replaced.
    Any,
}

fn chunk_name(main: &str, generation: &str, i: usize) -> String {
    format!("{main}-{generation}-{i}")
}

/// Holds the Lease; a background task renews it.
struct LeaseLock {
    lost: Arc<AtomicBool>,
    renew: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
    name: String,
    id: String,
}

impl StoreLock for LeaseLock {
    fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LeaseLock {
    fn drop(&mut self) {
        self.renew.abort();
        let s = Arc::clone(&self.shared);
        let (name, id) = (self.name.clone(), self.id.clone());
        // Release it now rather than letting it expire, if it is still ours.
        let release = async move {
            let Ok(api) = s.api(&leases()).await else {
                return;
            };
            if let Ok(Some(l)) = api.get_opt(&name).await
                && holder(&l) == Some(id.as_str())
            {
                let _ = api.delete(&name, &unchanged_since(&l)).await;
            }
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            block_on(&self.shared.handle, release)
        }));
    }
}

/// Deletes only the version of `o` that was read (a Lease renewed or taken meanwhile stays).
fn unchanged_since(o: &DynamicObject) -> DeleteParams {
    DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: o.metadata.resource_version.clone(),
            uid: None,
        }),
        ..DeleteParams::default()
    }
}

fn holder(lease: &DynamicObject) -> Option<&str> {
    lease
        .data
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
}

/// Whether the lease has run out (or was never renewed).
fn expired(lease: &DynamicObject, now: time::OffsetDateTime) -> bool {
    let spec = lease.data.get("spec");
    let seconds = spec
        .and_then(|s| s.get("leaseDurationSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(LEASE_SECONDS);
    let renewed = spec
        .and_then(|s| s.get("renewTime").or_else(|| s.get("acquireTime")))
        .and_then(Value::as_str)
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        });
    renewed.is_none_or(|r| now > r + time::Duration::seconds(seconds))
}

impl KubeStore {
    fn lease(&self, info: &LockInfo, now: &str, version: Option<String>) -> DynamicObject {
        let mut o = object(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {
                "name": self.lease_name(),
                "labels": self.shared.labels(&self.workspace, "lock"),
                "annotations": { LOCK_INFO: serde_json::to_string(info).expect("lock info serializes") },
            },
            "spec": {
                "holderIdentity": info.id,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": now,
                "renewTime": now,
            },
        }));
        o.metadata.resource_version = version;
        o
    }
}

async fn renew_loop(api: Api<DynamicObject>, name: String, id: String, lost: Arc<AtomicBool>) {
    let mut last_ok = Instant::now();
    loop {
        tokio::time::sleep(RENEW).await;
        let renewed = async {
            // Gone (force-unlocked) counts as taken.
            let mut l = api.get(&name).await.map_err(|e| is_status(&e, 404))?;
            if holder(&l) != Some(id.as_str()) {
                return Err(true); // someone else holds it now
            }
            if let Some(spec) = l.data.get_mut("spec") {
                spec["renewTime"] = json!(micro_time(time::OffsetDateTime::now_utc()));
            }
            api.replace(&name, &PostParams::default(), &l)
                .await
                .map(|_| ())
                .map_err(|_| false)
        }
        .await;
        match renewed {
            Ok(()) => last_ok = Instant::now(),
            Err(taken) => {
                if taken || last_ok.elapsed() >= Duration::from_secs(LEASE_SECONDS as u64) {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

struct KubeJournal {
    shared: Arc<Shared>,
    workspace: String,
    base: String,
    index: usize,
    seq: u64,
    size: usize,
    created: bool,
}

impl JournalWriter for KubeJournal {
    fn append(&mut self, entries: &[JournalEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        let s = Arc::clone(&self.shared);
        let mut lines = Vec::new();
        for e in entries {
            lines.extend(
                s.codec
                    .seal_line(&serde_json::to_vec(e).expect("entries serialize")),
            );
            lines.push(b'\n');
        }
        self.seq += 1;
        // A batch larger than a Secret holds (one big attribute) is split into pieces, in
        // order, across as many Secrets as it takes.
        for (part, piece) in gzip(&lines).chunks(JOURNAL_PIECE).enumerate() {
            let value = b64(piece);
            if self.created && self.size + value.len() > JOURNAL_FULL {
                self.index += 1;
                self.created = false;
                self.size = 0;
            }
            let name = format!("flotilla-journal-{}-{}", self.base, self.index);
            let key = format!("e{:08}-{part:04}", self.seq);
            let labels = s.labels(&self.workspace, "journal");
            let create = !self.created;
            let size = value.len();
            block_on(&s.handle, async {
                let api = s.api(&secrets()).await?;
                let written = if create {
                    let o = object(json!({
                        "apiVersion": "v1", "kind": "Secret",
                        "metadata": { "name": name, "labels": labels },
                        "type": "Opaque",
                        "data": { key: value },
                    }));
                    api.create(&PostParams::default(), &o).await.map(|_| ())
                } else {
                    api.patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "data": { key: value } })),
                    )
                    .await
                    .map(|_| ())
                };
                written.map_err(|e| s.err("cannot record the apply journal", &e))
            })?;
            self.created = true;
            self.size += size;
        }
        Ok(())
    }
}

/// The journal's lines: every batch's pieces in order (Secrets by index, keys sorted),
/// joined and unzipped.
fn journal_lines(
    mut journals: Vec<(usize, DynamicObject)>,
    name: &str,
) -> Result<Vec<Vec<u8>>, StateError> {
    journals.sort_by_key(|(i, _)| *i);
    let corrupt = |key: &str| StateError::Corrupt {
        path: name.to_string(),
        reason: format!("journal batch {key} is not readable"),
    };
    let mut batches: Vec<(String, Vec<u8>)> = Vec::new();
    for (_, j) in &journals {
        let Some(data) = j.data.get("data").and_then(Value::as_object) else {
            continue;
        };
        let mut keys: Vec<&String> = data.keys().collect();
        keys.sort();
        for k in keys {
            let batch = k.split('-').next().unwrap_or_default().to_string();
            let piece = data[k].as_str().and_then(unb64).ok_or_else(|| corrupt(k))?;
            match batches.last_mut() {
                Some((b, bytes)) if *b == batch => bytes.extend(piece),
                _ => batches.push((batch, piece)),
            }
        }
    }
    let mut lines = Vec::new();
    for (key, gz) in batches {
        let batch = gunzip(&gz).ok_or_else(|| corrupt(&key))?;
        lines.extend(
            batch
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    Ok(lines)
}

impl StateStore for KubeStore {
    fn describe(&self) -> String {
        self.name()
    }

    fn lock(&self, operation: &str, timeout: Duration) -> Result<Box<dyn StoreLock>, StateError> {
        let s = &self.shared;
        let info = LockInfo::here(operation);
        let name = self.lease_name();
        block_on(&s.handle, async {
            let api = s.api(&leases()).await?;
            let start = Instant::now();
            loop {
                let now = time::OffsetDateTime::now_utc();
                let stamp = micro_time(now);
                let found = api
                    .get_opt(&name)
                    .await
                    .map_err(|e| s.err("cannot lock state", &e))?;
                let attempt = match &found {
                    None => Some(
                        api.create(&PostParams::default(), &self.lease(&info, &stamp, None))
                            .await,
                    ),
                    Some(l) if holder(l).is_none() || expired(l, now) => Some(
                        api.replace(
                            &name,
                            &PostParams::default(),
                            &self.lease(&info, &stamp, l.metadata.resource_version.clone()),
                        )
                        .await,
                    ),
                    Some(_) => None,
                };
                match attempt {
                    Some(Ok(_)) => break,
                    Some(Err(e)) if is_status(&e, 409) => continue, // raced another taker
                    Some(Err(e)) => return Err(s.err("cannot lock state", &e)),
                    None => {}
                }
                if start.elapsed() >= timeout {
                    let l = found.expect("held leases are found");
                    let held: Option<LockInfo> =
                        annotation(&l, LOCK_INFO).and_then(|t| serde_json::from_str(t).ok());
                    return Err(StateError::Locked {
                        holder: held.map_or_else(
                            || format!("lease holder {}", holder(&l).unwrap_or_default()),
                            |h| h.to_string(),
                        ),
                        id: holder(&l).map(str::to_string),
                    });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let lost = Arc::new(AtomicBool::new(false));
            let renew = s.handle.spawn(renew_loop(
                api,
                name.clone(),
                info.id.clone(),
                Arc::clone(&lost),
            ));
            Ok(Box::new(LeaseLock {
                lost,
                renew,
                shared: Arc::clone(s),
                name,
                id: info.id,
            }) as Box<dyn StoreLock>)
        })
    }

    fn load(&self) -> Result<(Option<State>, usize), StateError> {
        let s = &self.shared;
        block_on(&s.handle, async {
            let base = self.read().await?.map(|(_, st)| st);
            let journals = s
                .list(
                    &secrets(),
                    &s.selector(Some(&self.workspace), Some("journal")),
                )
                .await?;
            let journals: Vec<(usize, DynamicObject)> = journals
                .into_iter()
                .map(|o| {
                    let index = o
                        .metadata
                        .name
                        .as_deref()
                        .and_then(|n| n.rsplit('-').next())
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(0);
                    (index, o)
                })
                .collect();
            let lines = journal_lines(journals, &self.name())?;
            if lines.is_empty() {
                return Ok((base, 0));
            }
            let mut state = base.unwrap_or_else(State::new);
            let n = crate::replay(&s.codec, &mut state, lines, &self.name())?;
            Ok((Some(state), n))
        })
    }

    fn persist(&self, state: &mut State) -> Result<(), StateError> {
        let s = &self.shared;
        let mut next = state.clone();
        next.serial += 1;
        block_on(&s.handle, async {
            let api = s.api(&secrets()).await?;
            let current = api
                .get_opt(&self.state_name())
                .await
                .map_err(|e| s.err("cannot read state", &e))?;
            let expected = match current {
                None => Expected::Nothing,
                Some(o) => {
                    let lineage = annotation(&o, LINEAGE).unwrap_or_default();
                    let serial: u64 = annotation(&o, SERIAL)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_default();
                    if lineage != state.lineage || serial != state.serial {
                        return Err(StateError::Conflict {
                            store: self.name(),
                            expected: format!("lineage {} serial {}", state.lineage, state.serial),
                            found: format!("lineage {lineage} serial {serial}"),
                        });
                    }
                    Expected::Version(o.metadata.resource_version.clone().unwrap_or_default())
                }
            };
            self.write(&next, expected).await
        })?;
        state.serial = next.serial;
        Ok(())
    }

    fn journal(&self) -> Result<Box<dyn JournalWriter>, StateError> {
        let s = &self.shared;
        // Continue after any journal Secret already there (none after a persist).
        let existing = block_on(&s.handle, async {
            s.list(
                &secrets(),
                &s.selector(Some(&self.workspace), Some("journal")),
            )
            .await
        })?;
        let next = existing
            .iter()
            .filter_map(|o| {
                o.metadata
                    .name
                    .as_deref()?
                    .rsplit('-')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map_or(0, |m| m + 1);
        Ok(Box::new(KubeJournal {
            shared: Arc::clone(s),
            workspace: self.workspace.clone(),
            base: self.base(),
            index: next,
            seq: 0,
            size: 0,
            created: false,
        }))
    }

    fn write_exact(&self, state: &State) -> Result<(), StateError> {
        let s = &self.shared;
        block_on(&s.handle, async { self.write(state, Expected::Any).await })
    }

    fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        let s = &self.shared;
        let name = self.lease_name();
        block_on(&s.handle, async {
            let api = s.api(&leases()).await?;
            let lease = api
                .get_opt(&name)
                .await
                .map_err(|e| s.err("cannot unlock", &e))?;
            match lease {
                Some(l) if holder(&l) == Some(id) => api
                    .delete(&name, &unchanged_since(&l))
                    .await
                    .map(|_| ())
                    .map_err(|e| s.err("cannot unlock", &e)),
                _ => Err(StateError::Refused(format!(
                    "{} is not locked with ID {id}",
                    self.name()
                ))),
            }
        })
    }

    fn post_request(&self, request: &RolloutRequest) -> Result<(), StateError> {
        let s = &self.shared;
        let o = object(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": format!("flotilla-request-{}-{}", self.base(), request.id),
                "labels": s.labels(&self.workspace, "request"),
            },
            "type": "Opaque",
            "data": { "request": b64(&serde_json::to_vec(request).expect("requests serialize")) },
        }));
        block_on(&s.handle, async {
            let api = s.api(&secrets()).await?;
            api.create(&PostParams::default(), &o)
                .await
                .map(|_| ())
                .map_err(|e| s.err("cannot record the request", &e))
        })
    }

    fn requests(&self) -> Result<Vec<RolloutRequest>, StateError> {
        let s = &self.shared;
        let found = block_on(&s.handle, async {
            s.list(
                &secrets(),
                &s.selector(Some(&self.workspace), Some("request")),
            )
            .await
        })?;
        let mut out = Vec::new();
        for o in &found {
            let request = data_of(o, "request")
                .and_then(unb64)
                .and_then(|b| serde_json::from_slice::<RolloutRequest>(&b).ok())
                .ok_or_else(|| StateError::Corrupt {
                    path: format!(
                        "Secret {}/{}",
                        s.settings.namespace,
                        o.metadata.name.as_deref().unwrap_or_default()
                    ),
                    reason: "it does not hold a rollout request".into(),
                })?;
            out.push(request);
        }
        out.sort_by(|a, b| (&a.at, &a.id).cmp(&(&b.at, &b.id)));
        Ok(out)
    }

    fn remove_requests(&self, ids: &[String]) -> Result<(), StateError> {
        let s = &self.shared;
        block_on(&s.handle, async {
            let api = s.api(&secrets()).await?;
            for id in ids {
                let name = format!("flotilla-request-{}-{id}", self.base());
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_status(&e, 404) => {}
                    Err(e) => return Err(s.err(&format!("cannot delete Secret {name}"), &e)),
                }
            }
            Ok(())
        })
    }
}
