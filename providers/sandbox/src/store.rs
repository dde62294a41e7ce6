//! One cluster's object store and the API server's write semantics: create, update, patch,
//! server-side apply, delete with finalizers, garbage collection, namespace and CRD cleanup,
//! resourceVersion and generation, managed fields, dry-run, and the event log watches read.

use crate::admission;
use crate::builtin;
use crate::fields::{self, FieldSet, display_path};
use crate::kinds::{self, Builtin, ResourceType};
use crate::names::{self, NameRule};
use crate::patch::{self, PatchType};
use crate::schema::{self, Schema};
use crate::status::{ApiError, Cause, success_status};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// Where an object lives: its resource, namespace (empty for cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

/// `?fieldValidation=`: what to do with fields the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Strict,
    #[default]
    Warn,
    Ignore,
}

/// Per-request options shared by the write verbs.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    pub force: bool,
    pub user_agent: String,
}

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// A successful response: status code, body, and `Warning` headers.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as watches replay it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub key: Key,
    pub object: Arc<Value>,
    pub old: Option<Arc<Value>>,
}

/// How many events watches can resume from before a 410 Gone.
const EVENT_LOG: usize = 10_000;

/// The persisted part of a cluster's store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub resource_version: u64,
    pub objects: Vec<(Key, Value)>,
}

/// A cluster's objects and everything derived from them.
pub struct Store {
    pub cluster: String,
    rv: u64,
    objects: BTreeMap<Key, Value>,
    types: Vec<Arc<ResourceType>>,
    events: VecDeque<Event>,
    /// The highest resourceVersion no longer in the event log.
    compacted: u64,
    event_capacity: usize,
    needs_gc: bool,
}

pub(crate) fn now() -> String {
    let t = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero nanoseconds is valid");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formats any UTC time")
}

fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).get(field).and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)["finalizers"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn set_finalizers(obj: &mut Value, list: &[String]) {
    let m = meta_mut(obj);
    if list.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(list));
    }
}

/// Metadata the server owns; clients cannot set it and field managers never own it.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

const CRD_CLEANUP: &str = "customresourcecleanup.apiextensions.k8s.io";

/// A managedFields entry.
#[derive(Debug, Clone, PartialEq)]
struct Managed {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    fields: FieldSet,
}

fn read_managed(obj: &Value) -> Vec<Managed> {
    meta(obj)["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    Some(Managed {
                        manager: e["manager"].as_str().unwrap_or_default().to_string(),
                        operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                        api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                        time: e["time"].as_str().unwrap_or_default().to_string(),
                        subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
                        fields: FieldSet::from_json(e.get("fieldsV1")?)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_managed(obj: &mut Value, entries: &[Managed]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields.to_json(),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    let m = meta_mut(obj);
    if list.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), Value::Array(list));
    }
}

/// The default field manager: the user agent up to its first `/`, as the API server derives it.
fn manager_name(opts: &WriteOptions) -> String {
    match &opts.field_manager {
        Some(m) => m.clone(),
        None => {
            let agent = opts.user_agent.split('/').next().unwrap_or("").trim();
            if agent.is_empty() {
                "unknown".into()
            } else {
                agent.to_string()
            }
        }
    }
}

/// The part of an object field managers track for a write to `subresource`.
fn tracked(obj: &Value, rt: &ResourceType, subresource: &str) -> Value {
    let mut out = obj.clone();
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    map.remove("apiVersion");
    map.remove("kind");
    if subresource == "status" {
        map.retain(|k, _| k == "status");
        return out;
    }
    if rt.status_subresource {
        map.remove("status");
    }
    if let Some(m) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA.iter().chain(&["name", "namespace"]) {
            m.remove(*field);
        }
        if m.is_empty() {
            map.remove("metadata");
        }
    }
    out
}

/// A request's resolved target, shared by the write verbs.
pub struct Target<'a> {
    pub rt: &'a Arc<ResourceType>,
    pub version: &'a str,
    pub namespace: &'a str,
}

impl Target<'_> {
    fn key(&self, name: &str) -> Key {
        Key {
            group: self.rt.group.clone(),
            plural: self.rt.plural.clone(),
            namespace: if self.rt.namespaced {
                self.namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    fn schema(&self) -> Arc<Schema> {
        self.rt.schema(self.version)
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(&self.rt.group, &self.rt.plural, name)
    }

    fn invalid(&self, name: &str, causes: Vec<Cause>) -> ApiError {
        ApiError::invalid(&self.rt.group, &self.rt.kind, name, causes)
    }
}

/// How managed fields change in a write.
enum Managing {
    /// A non-apply write by this manager: it takes the fields it changed.
    Update(String),
    /// Server-side apply already computed the entries.
    Given(Vec<Managed>),
}

impl Store {
    /// A new cluster with what a fresh real cluster has: system namespaces, a node, the
    /// `kubernetes` service, and per-namespace default service accounts and root CA config maps.
    pub fn new(cluster: &str, ca_pem: &str) -> Store {
        let mut store = Store {
            cluster: cluster.into(),
            rv: 0,
            objects: BTreeMap::new(),
            types: Vec::new(),
            events: VecDeque::new(),
            compacted: 0,
            event_capacity: EVENT_LOG,
            needs_gc: false,
        };
        store.rebuild_types();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            store.seed(
                "",
                "namespaces",
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                ca_pem,
            );
        }
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("{cluster}-control-plane"), "labels": {
            "kubernetes.io/hostname": format!("{cluster}-control-plane"), "kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "sandbox node is always ready"}],
                       "nodeInfo": {"kubeletVersion": crate::KUBERNETES_VERSION, "operatingSystem": "linux", "architecture": "amd64"}}});
        store.seed("", "nodes", "", node, ca_pem);
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]}});
        store.seed("", "services", "default", svc, ca_pem);
        store
    }

    /// Restores a persisted store.
    pub fn restore(cluster: &str, snapshot: Snapshot) -> Store {
        let mut store = Store {
            cluster: cluster.into(),
            rv: snapshot.resource_version,
            objects: BTreeMap::new(),
            types: Vec::new(),
            events: VecDeque::new(),
            compacted: snapshot.resource_version,
            event_capacity: EVENT_LOG,
            needs_gc: false,
        };
        store.objects.extend(snapshot.objects);
        store.rebuild_types();
        store
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            resource_version: self.rv,
            objects: self
                .objects
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    fn seed(&mut self, group: &str, plural: &str, ns: &str, obj: Value, ca_pem: &str) {
        let rt = self
            .types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
            .expect("seeded kinds are built in");
        let target = Target {
            rt: &rt,
            version: "v1",
            namespace: ns,
        };
        let opts = WriteOptions {
            field_manager: Some("sandbox".into()),
            ..WriteOptions::default()
        };
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let created = self.finish(
            &target,
            &name,
            None,
            obj,
            &opts,
            "",
            Managing::Update("sandbox".into()),
        );
        debug_assert!(created.is_ok(), "seed objects are valid: {created:?}");
        if plural == "namespaces" {
            self.seed_namespace(&name, ca_pem);
        }
    }

    /// What the service-account and root-CA controllers put in every new namespace.
    fn seed_namespace(&mut self, ns: &str, ca_pem: &str) {
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": ns}, "data": {"ca.crt": ca_pem}});
        self.seed("", "serviceaccounts", ns, sa, ca_pem);
        self.seed("", "configmaps", ns, cm, ca_pem);
    }

    fn rebuild_types(&mut self) {
        let mut types: Vec<Arc<ResourceType>> =
            kinds::builtins().into_iter().map(Arc::new).collect();
        for (key, crd) in &self.objects {
            if key.group == "apiextensions.k8s.io"
                && key.plural == "customresourcedefinitions"
                && let Ok(rt) = kinds::from_crd(crd)
            {
                types.push(Arc::new(rt));
            }
        }
        self.types = types;
    }

    pub fn types(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// The resource type served at `group/version/plural`.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| {
                t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version)
            })
            .cloned()
    }

    /// An object as a client sees it at `version`.
    pub fn present(obj: &Value, rt: &ResourceType, version: &str) -> Value {
        let mut out = obj.clone();
        out["apiVersion"] = json!(rt.api_version(version));
        out["kind"] = json!(rt.kind);
        out
    }

    pub fn get(&self, target: &Target<'_>, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&target.key(name))
            .map(|o| Store::present(o, target.rt, target.version))
            .ok_or_else(|| target.not_found(name))
    }

    /// The stored object of `group`/`kind` at `namespace`/`name`, if there is one.
    pub fn find(&self, group: &str, kind: &str, namespace: &str, name: &str) -> Option<&Value> {
        admission::Lookup::find(self, group, kind, namespace, name)
    }
}

impl admission::Lookup for Store {
    fn find(&self, group: &str, kind: &str, namespace: &str, name: &str) -> Option<&Value> {
        let rt = self
            .types
            .iter()
            .find(|t| t.group == group && t.kind == kind)?;
        self.objects.get(&Key {
            group: group.to_string(),
            plural: rt.plural.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    fn list(&self, group: &str, kind: &str) -> Vec<&Value> {
        match self
            .types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
        {
            Some(rt) => self.list_objects(rt, None).map(|(_, v)| v).collect(),
            None => Vec::new(),
        }
    }
}

impl Store {
    /// Objects of one resource, in key order, optionally within one namespace.
    pub fn list_objects<'s>(
        &'s self,
        rt: &ResourceType,
        namespace: Option<&'s str>,
    ) -> impl Iterator<Item = (&'s Key, &'s Value)> + 's {
        let (group, plural) = (rt.group.clone(), rt.plural.clone());
        self.objects.iter().filter(move |(k, _)| {
            k.group == group && k.plural == plural && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// Whether a new object of this type may be created in `ns`: the CRD is not being
    /// deleted, and the namespace exists and is not terminating.
    fn check_creatable(&self, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
        if rt.terminating {
            return Err(ApiError::method_not_allowed(
                "create not allowed while custom resource definition is terminating",
            ));
        }
        if !rt.namespaced {
            return Ok(());
        }
        if ns.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ));
        }
        let key = Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.into(),
        };
        match self.objects.get(&key) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if meta(n).get("deletionTimestamp").is_some() => {
                Err(ApiError::forbidden(format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    crate::status::qualified(&rt.plural, &rt.group)
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Checks that a body's apiVersion, kind, namespace and name agree with the URL, and fills
    /// in what it leaves out.
    fn normalize(
        target: &Target<'_>,
        mut body: Value,
        url_name: Option<&str>,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON or YAML object",
            ));
        }
        let expected = target.rt.api_version(target.version);
        match body.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => body["apiVersion"] = json!(expected),
            Some(v) if v == expected => {}
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({expected})"
                )));
            }
        }
        match body.get("kind").and_then(Value::as_str) {
            None | Some("") => body["kind"] = json!(target.rt.kind),
            Some(k) if k == target.rt.kind => {}
            Some(k) => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    target.rt.kind
                )));
            }
        }
        let m = meta_mut(&mut body);
        if target.rt.namespaced {
            match m.get("namespace").and_then(Value::as_str) {
                None | Some("") => {
                    m.insert("namespace".into(), json!(target.namespace));
                }
                Some(ns) if ns == target.namespace => {}
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        } else {
            m.remove("namespace");
        }
        if let Some(url_name) = url_name {
            match m.get("name").and_then(Value::as_str) {
                None | Some("") => {
                    m.insert("name".into(), json!(url_name));
                }
                Some(n) if n == url_name => {}
                Some(n) => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({url_name})"
                    )));
                }
            }
        }
        Ok(body)
    }

    pub fn create(
        &mut self,
        target: &Target<'_>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        self.check_creatable(target.rt, target.namespace)?;
        let mut body = Store::normalize(target, body, None)?;
        let m = meta_mut(&mut body);
        let name = match m
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(n) => n.to_string(),
            None => match m.get("generateName").and_then(Value::as_str) {
                Some(prefix) => {
                    let name = format!("{prefix}{}", names::random_suffix());
                    m.insert("name".into(), json!(name));
                    name
                }
                None => {
                    return Err(target.invalid(
                        "",
                        vec![
                            Cause::required("metadata.name")
                                .with_message("name or generateName is required"),
                        ],
                    ));
                }
            },
        };
        if self.objects.contains_key(&target.key(&name)) {
            return Err(ApiError::already_exists(
                &target.rt.group,
                &target.rt.plural,
                &name,
            ));
        }
        self.finish(
            target,
            &name,
            None,
            body,
            opts,
            "",
            Managing::Update(manager_name(opts)),
        )
    }

    pub fn update(
        &mut self,
        target: &Target<'_>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
        subresource: &str,
    ) -> Result<Outcome, ApiError> {
        let body = Store::normalize(target, body, Some(name))?;
        let old = self
            .objects
            .get(&target.key(name))
            .cloned()
            .ok_or_else(|| target.not_found(name))?;
        if target.rt.is_custom()
            && subresource.is_empty()
            && meta_str(&body, "resourceVersion").is_none_or(str::is_empty)
        {
            let cause = Cause::invalid(
                "metadata.resourceVersion",
                &json!(0),
                "must be specified for an update",
            );
            return Err(target.invalid(name, vec![cause]));
        }
        self.finish(
            target,
            name,
            Some(&old),
            body,
            opts,
            subresource,
            Managing::Update(manager_name(opts)),
        )
    }

    pub fn patch(
        &mut self,
        target: &Target<'_>,
        name: &str,
        patch_type: PatchType,
        body: Value,
        opts: &WriteOptions,
        subresource: &str,
    ) -> Result<Outcome, ApiError> {
        if patch_type == PatchType::Apply {
            return self.apply(target, name, body, opts, subresource);
        }
        if patch_type == PatchType::Strategic && target.rt.is_custom() {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json",
            ));
        }
        let old = self
            .objects
            .get(&target.key(name))
            .cloned()
            .ok_or_else(|| target.not_found(name))?;
        let current = Store::present(&old, target.rt, target.version);
        let patched = patch::apply_patch(&current, patch_type, &body, &target.schema())?;
        let patched = Store::normalize(target, patched, Some(name))?;
        self.finish(
            target,
            name,
            Some(&old),
            patched,
            opts,
            subresource,
            Managing::Update(manager_name(opts)),
        )
    }

    /// Server-side apply (`application/apply-patch+yaml`).
    fn apply(
        &mut self,
        target: &Target<'_>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
        subresource: &str,
    ) -> Result<Outcome, ApiError> {
        let manager = opts.field_manager.clone().ok_or_else(|| {
            ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager to be set",
            )
        })?;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of an apply patch must be a YAML or JSON object",
            ));
        }
        for field in ["apiVersion", "kind"] {
            if body
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request(format!("{field} must be set")));
            }
        }
        let mut applied = Store::normalize(target, body, Some(name))?;
        if !target.rt.is_custom() {
            crate::builtin::default_list_keys(&mut applied);
        }
        let schema = target.schema();
        let mut warnings = Vec::new();
        if target.rt.is_custom() {
            warnings = prune_request(&mut applied, &schema, target, name, opts)?;
        }
        let old = self.objects.get(&target.key(name)).cloned();
        if old.is_none() {
            self.check_creatable(target.rt, target.namespace)?;
        }
        let live = old.clone().unwrap_or_else(|| {
            json!({"apiVersion": applied["apiVersion"], "kind": applied["kind"], "metadata": {"name": name, "namespace": applied["metadata"]["namespace"]}})
        });
        let live = Store::present(&live, target.rt, target.version);
        let applied_tracked = tracked(&applied, target.rt, subresource);
        let new_set = fields::fields_of(&applied_tracked, &schema);
        let mut entries = read_managed(&live);
        let is_mine = |e: &Managed| {
            e.manager == manager && e.operation == "Apply" && e.subresource == subresource
        };

        // Conflicts: fields this apply changes that another manager owns.
        let mut conflicts: BTreeMap<(String, String), Vec<fields::Path>> = BTreeMap::new();
        for path in new_set.paths() {
            let wanted = fields::get(&applied_tracked, &path, Some(&schema));
            let current = fields::get(&live, &path, Some(&schema));
            let Some(current) = current else { continue };
            if wanted == Some(current)
                || wanted.is_some_and(|w| w.is_object() && current.is_object())
            {
                continue;
            }
            for e in entries.iter().filter(|e| !is_mine(e)) {
                if e.fields.contains(&path) {
                    conflicts
                        .entry((e.manager.clone(), e.api_version.clone()))
                        .or_default()
                        .push(path.clone());
                }
            }
        }
        if !conflicts.is_empty() {
            if !opts.force {
                return Err(conflict_error(&conflicts));
            }
            let mut taken = FieldSet::default();
            for paths in conflicts.values() {
                for p in paths {
                    taken.insert(p);
                }
            }
            for e in entries.iter_mut().filter(|e| !is_mine(e)) {
                e.fields = e.fields.difference(&taken);
            }
        }

        let mut merged = live.clone();
        fields::apply_merge(
            &mut merged,
            &strip_untracked(&applied, target.rt, subresource),
            Some(&schema),
        );
        let previous = entries
            .iter()
            .find(|e| is_mine(e))
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        for path in previous.difference(&new_set).paths() {
            let owned_elsewhere = entries
                .iter()
                .any(|e| !is_mine(e) && e.fields.has_prefix(&path));
            if !owned_elsewhere {
                fields::remove(&mut merged, &path, Some(&schema));
            }
        }
        let time = now();
        match entries.iter_mut().find(|e| is_mine(e)) {
            Some(e) => {
                if e.fields != new_set {
                    e.time = time;
                }
                e.fields = new_set;
                e.api_version = target.rt.api_version(target.version);
            }
            None => entries.push(Managed {
                manager,
                operation: "Apply".into(),
                api_version: target.rt.api_version(target.version),
                time,
                subresource: subresource.into(),
                fields: new_set,
            }),
        }
        let mut outcome = self.finish(
            target,
            name,
            old.as_ref(),
            merged,
            opts,
            subresource,
            Managing::Given(entries),
        )?;
        outcome.warnings.extend(warnings);
        Ok(outcome)
    }

    /// The shared tail of every write: subresource rules, pruning, defaulting, server
    /// metadata, validation, generation, managed fields, no-op detection, dry-run and commit.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        target: &Target<'_>,
        name: &str,
        old: Option<&Value>,
        mut new: Value,
        opts: &WriteOptions,
        subresource: &str,
        managing: Managing,
    ) -> Result<Outcome, ApiError> {
        let rt = target.rt;
        let schema = target.schema();
        // Subresources: a status write changes only status; a main write never changes status.
        if subresource == "status" {
            let Some(old) = old else {
                return Err(target.not_found(name));
            };
            let status = new.get("status").cloned();
            let mut merged = Store::present(old, rt, target.version);
            match status {
                Some(s) => merged["status"] = s,
                None => {
                    merged
                        .as_object_mut()
                        .expect("objects are objects")
                        .remove("status");
                }
            }
            if let Some(mf) = meta(&new).get("managedFields") {
                meta_mut(&mut merged).insert("managedFields".into(), mf.clone());
            }
            new = merged;
        } else if rt.status_subresource && rt.builtin != Some(Builtin::Crd) {
            let obj = new.as_object_mut().expect("objects are objects");
            match old.and_then(|o| o.get("status")) {
                Some(s) => {
                    obj.insert("status".into(), s.clone());
                }
                None if rt.is_custom()
                    || matches!(rt.builtin, Some(Builtin::Deployment | Builtin::Service)) =>
                {
                    obj.remove("status");
                }
                None => {}
            }
        }
        let mut warnings = Vec::new();
        if rt.is_custom() {
            warnings = prune_request(&mut new, &schema, target, name, opts)?;
            schema::apply_defaults(&mut new, &schema);
            if subresource.is_empty() {
                admission::mutate(rt, &mut new, old);
            }
        } else {
            let mut removed = Vec::new();
            if let Some(Value::Object(m)) = new.get_mut("metadata") {
                schema::prune_metadata(m, "metadata", &mut removed);
            }
        }

        // Server-owned metadata.
        let created_now = old.is_none();
        let time = now();
        {
            let m = meta_mut(&mut new);
            match old {
                None => {
                    for f in SERVER_METADATA.iter().filter(|f| **f != "managedFields") {
                        m.remove(*f);
                    }
                    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                    m.insert("creationTimestamp".into(), json!(time));
                    if rt.has_generation {
                        m.insert("generation".into(), json!(1));
                    }
                }
                Some(old) => {
                    let requested = m
                        .get("resourceVersion")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string);
                    if let Some(requested) = requested
                        && Some(requested.as_str()) != meta_str(old, "resourceVersion")
                    {
                        return Err(ApiError::conflict(
                            &rt.group,
                            &rt.plural,
                            name,
                            "the object has been modified; please apply your changes to the latest version and try again",
                        ));
                    }
                    if let Some(uid) = m.get("uid").and_then(Value::as_str)
                        && !uid.is_empty()
                        && Some(uid) != meta_str(old, "uid")
                    {
                        return Err(ApiError::conflict(
                            &rt.group,
                            &rt.plural,
                            name,
                            &format!(
                                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                                meta_str(old, "uid").unwrap_or("")
                            ),
                        ));
                    }
                    for f in SERVER_METADATA.iter().filter(|f| **f != "managedFields") {
                        match meta(old).get(*f) {
                            Some(v) => m.insert(f.to_string(), v.clone()),
                            None => m.remove(*f),
                        };
                    }
                }
            }
        }

        // Validation.
        let mut causes = Vec::new();
        let rule = rt
            .builtin
            .map(builtin::name_rule)
            .unwrap_or(NameRule::Subdomain);
        if rt.builtin != Some(Builtin::Crd) {
            causes.extend(names::check_name(rule, name, "metadata.name"));
        }
        causes.extend(names::check_metadata_maps(meta(&new)));
        for (i, owner) in meta(&new)["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            for field in ["apiVersion", "kind", "name", "uid"] {
                if owner
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required(format!(
                        "metadata.ownerReferences[{i}].{field}"
                    )));
                }
            }
        }
        if let Some(old) = old
            && meta(old).get("deletionTimestamp").is_some()
        {
            let before = finalizers(old);
            if finalizers(&new).iter().any(|f| !before.contains(f)) {
                causes.push(Cause::forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        match rt.builtin {
            Some(kind) => builtin::prepare(kind, &mut new, old, &mut causes),
            None => schema::validate(&new, &schema, "", &mut causes),
        }
        if !causes.is_empty() {
            return Err(target.invalid(name, causes));
        }
        if subresource.is_empty() && rt.is_custom() {
            admission::validate(self, rt, &new, old)?;
        }
        if rt.builtin == Some(Builtin::Crd) {
            if created_now && !finalizers(&new).contains(&CRD_CLEANUP.to_string()) {
                let mut f = finalizers(&new);
                f.push(CRD_CLEANUP.into());
                set_finalizers(&mut new, &f);
            }
            let terminating = meta(&new).get("deletionTimestamp").is_some();
            let since = old
                .and_then(|o| o.pointer("/status/conditions/0/lastTransitionTime"))
                .and_then(Value::as_str)
                .unwrap_or(&time)
                .to_string();
            new["status"]["conditions"] = builtin::crd_conditions(&since, terminating);
        }

        // Generation: bumped when anything but metadata and status changes.
        if let (Some(old), true) = (old, rt.has_generation) {
            let strip = |o: &Value| -> Value {
                let mut o = o.clone();
                if let Some(map) = o.as_object_mut() {
                    for k in ["metadata", "status", "apiVersion", "kind"] {
                        map.remove(k);
                    }
                }
                o
            };
            if strip(old) != strip(&new) {
                let g = meta(old)["generation"].as_i64().unwrap_or(0) + 1;
                meta_mut(&mut new).insert("generation".into(), json!(g));
            }
        }

        // Managed fields.
        let entries = match managing {
            Managing::Given(entries) => entries,
            Managing::Update(manager) => {
                let mut entries = match meta(&new).get("managedFields") {
                    Some(mf) if old.is_none_or(|o| meta(o).get("managedFields") != Some(mf)) => {
                        if mf.as_array().is_some_and(|a| {
                            a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty)
                        }) {
                            Vec::new()
                        } else {
                            read_managed(&new)
                        }
                    }
                    _ => old.map(read_managed).unwrap_or_default(),
                };
                let old_tracked = old
                    .map(|o| tracked(o, rt, subresource))
                    .unwrap_or(json!({}));
                let (changed, removed) =
                    fields::changes(&old_tracked, &tracked(&new, rt, subresource), &schema);
                if !changed.is_empty() || !removed.is_empty() {
                    let gone = changed.union(&removed);
                    for e in entries.iter_mut() {
                        e.fields = e.fields.difference(&gone);
                    }
                    let api_version = rt.api_version(target.version);
                    match entries.iter_mut().find(|e| {
                        e.manager == manager
                            && e.operation == "Update"
                            && e.subresource == subresource
                    }) {
                        Some(e) => {
                            e.fields = e.fields.union(&changed);
                            e.time = time.clone();
                            e.api_version = api_version;
                        }
                        None => entries.push(Managed {
                            manager,
                            operation: "Update".into(),
                            api_version,
                            time: time.clone(),
                            subresource: subresource.into(),
                            fields: changed,
                        }),
                    }
                }
                entries
            }
        };
        write_managed(&mut new, &entries);

        // A write that changes nothing is not a write.
        if let Some(old) = old {
            let mut same = Store::present(old, rt, target.version);
            let mut candidate = new.clone();
            for o in [&mut same, &mut candidate] {
                meta_mut(o).remove("resourceVersion");
            }
            if same == candidate {
                let body = Store::present(old, rt, target.version);
                return Ok(Outcome {
                    code: 200,
                    body,
                    warnings,
                });
            }
        }
        if opts.dry_run {
            if created_now {
                meta_mut(&mut new).remove("resourceVersion");
            }
            return Ok(Outcome {
                code: if created_now { 201 } else { 200 },
                body: new,
                warnings,
            });
        }
        let key = target.key(name);
        let stored = self.commit(key, new, old.cloned());
        if created_now && rt.builtin == Some(Builtin::Namespace) {
            let ca = self.root_ca();
            self.seed_namespace(name, &ca);
        }
        self.collect_garbage();
        Ok(Outcome {
            code: if created_now { 201 } else { 200 },
            body: Store::present(&stored, rt, target.version),
            warnings,
        })
    }

    fn root_ca(&self) -> String {
        let key = Key {
            group: String::new(),
            plural: "configmaps".into(),
            namespace: "default".into(),
            name: "kube-root-ca.crt".into(),
        };
        self.objects
            .get(&key)
            .and_then(|cm| cm["data"]["ca.crt"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// Stores an object under a new resourceVersion and logs the event.
    fn commit(&mut self, key: Key, mut obj: Value, old: Option<Value>) -> Value {
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        if meta(&obj).get("deletionTimestamp").is_some()
            || meta(&obj).get("ownerReferences").is_some()
        {
            self.needs_gc = true;
        }
        let is_crd =
            key.plural == "customresourcedefinitions" && key.group == "apiextensions.k8s.io";
        self.objects.insert(key.clone(), obj.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.log(Event {
            rv: self.rv,
            kind,
            key,
            object: Arc::new(obj.clone()),
            old: old.map(Arc::new),
        });
        if is_crd {
            self.rebuild_types();
        }
        obj
    }

    /// Removes an object for good and logs the DELETED event.
    fn remove(&mut self, key: &Key) {
        let Some(mut obj) = self.objects.remove(key) else {
            return;
        };
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.needs_gc = true;
        let object = Arc::new(obj);
        self.log(Event {
            rv: self.rv,
            kind: EventType::Deleted,
            key: key.clone(),
            object: object.clone(),
            old: Some(object),
        });
        if key.plural == "customresourcedefinitions" && key.group == "apiextensions.k8s.io" {
            self.rebuild_types();
        }
    }

    fn log(&mut self, event: Event) {
        self.events.push_back(event);
        while self.events.len() > self.event_capacity {
            if let Some(e) = self.events.pop_front() {
                self.compacted = e.rv;
            }
        }
    }

    /// How many events to keep for watches to resume from (tests shrink it to reach 410 Gone).
    pub fn set_event_capacity(&mut self, capacity: usize) {
        self.event_capacity = capacity;
    }

    /// Events after `since`, or `Err` if the log no longer reaches back that far.
    pub fn events_since(&self, since: u64) -> Result<impl Iterator<Item = &Event>, ApiError> {
        if since < self.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {since} ({})",
                self.compacted + 1
            )));
        }
        let start = self.events.partition_point(|e| e.rv <= since);
        Ok(self.events.range(start..))
    }

    pub fn delete(
        &mut self,
        target: &Target<'_>,
        name: &str,
        opts: &DeleteOptions,
        dry_run: bool,
    ) -> Result<Outcome, ApiError> {
        let key = target.key(name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| target.not_found(name))?;
        let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
        if let Some(want) = &opts.uid
            && *want != uid
        {
            return Err(ApiError::conflict(
                &target.rt.group,
                &target.rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
        if let Some(want) = &opts.resource_version
            && Some(want.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &target.rt.group,
                &target.rt.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or("")
                ),
            ));
        }
        admission::validate_delete(self, target.rt, &old)?;
        let mut obj = old.clone();
        let mut list = finalizers(&obj);
        match opts.propagation {
            Some(Propagation::Foreground) if !list.iter().any(|f| f == "foregroundDeletion") => {
                list.push("foregroundDeletion".into())
            }
            Some(Propagation::Orphan) if !list.iter().any(|f| f == "orphan") => {
                list.push("orphan".into())
            }
            _ => {}
        }
        set_finalizers(&mut obj, &list);
        let spec_finalizers = target.rt.builtin == Some(Builtin::Namespace)
            && obj["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
        if list.is_empty() && !spec_finalizers {
            if !dry_run {
                self.remove(&key);
                self.collect_garbage();
            }
            let body = if target.rt.is_custom() {
                Store::present(&old, target.rt, target.version)
            } else {
                success_status(&target.rt.group, &target.rt.plural, name, &uid)
            };
            return Ok(Outcome {
                code: 200,
                body,
                warnings: Vec::new(),
            });
        }
        if meta(&obj).get("deletionTimestamp").is_none() {
            start_deleting(&mut obj, target.rt);
        }
        if dry_run {
            return Ok(Outcome {
                code: 200,
                body: Store::present(&obj, target.rt, target.version),
                warnings: Vec::new(),
            });
        }
        let stored = if obj != old {
            self.commit(key, obj, Some(old))
        } else {
            obj
        };
        self.collect_garbage();
        let body = match self.objects.get(&target.key(name)) {
            Some(current) => Store::present(current, target.rt, target.version),
            None => Store::present(&stored, target.rt, target.version),
        };
        Ok(Outcome {
            code: 200,
            body,
            warnings: Vec::new(),
        })
    }

    /// The garbage collector, namespace controller and CRD finalizer, run to a fixed point.
    fn collect_garbage(&mut self) {
        while std::mem::take(&mut self.needs_gc) {
            let uids: HashSet<String> = self
                .objects
                .values()
                .filter_map(|o| meta_str(o, "uid").map(str::to_string))
                .collect();
            let mut dependents: BTreeMap<String, Vec<Key>> = BTreeMap::new();
            for (key, obj) in &self.objects {
                for owner in meta(obj)["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let Some(uid) = owner["uid"].as_str() {
                        dependents
                            .entry(uid.to_string())
                            .or_default()
                            .push(key.clone());
                    }
                }
            }
            let deleting: Vec<Key> = self
                .objects
                .iter()
                .filter(|(_, o)| meta(o).get("deletionTimestamp").is_some())
                .map(|(k, _)| k.clone())
                .collect();
            for key in deleting {
                let Some(obj) = self.objects.get(&key).cloned() else {
                    continue;
                };
                let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
                let mut list = finalizers(&obj);
                let mut updated = obj.clone();
                let children: Vec<Key> = dependents
                    .get(&uid)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|k| self.objects.contains_key(k))
                    .collect();
                if list.iter().any(|f| f == "orphan") {
                    for child in &children {
                        self.drop_owner(child, &uid);
                    }
                    list.retain(|f| f != "orphan");
                }
                if list.iter().any(|f| f == "foregroundDeletion") {
                    if children.is_empty() {
                        list.retain(|f| f != "foregroundDeletion");
                    } else {
                        for child in &children {
                            self.mark_deleted(child);
                        }
                    }
                }
                if key.plural == "namespaces" && key.group.is_empty() {
                    let contents: Vec<Key> = self
                        .objects
                        .keys()
                        .filter(|k| k.namespace == key.name)
                        .cloned()
                        .collect();
                    if contents.is_empty() {
                        if let Some(spec) = updated.get_mut("spec").and_then(Value::as_object_mut) {
                            spec.remove("finalizers");
                        }
                    } else {
                        for k in contents {
                            self.mark_deleted(&k);
                        }
                    }
                }
                if key.plural == "customresourcedefinitions"
                    && list.iter().any(|f| f == CRD_CLEANUP)
                {
                    let group = obj["spec"]["group"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let plural = obj["spec"]["names"]["plural"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let instances: Vec<Key> = self
                        .objects
                        .keys()
                        .filter(|k| k.group == group && k.plural == plural)
                        .cloned()
                        .collect();
                    if instances.is_empty() {
                        list.retain(|f| f != CRD_CLEANUP);
                    } else {
                        for k in instances {
                            self.mark_deleted(&k);
                        }
                    }
                }
                set_finalizers(&mut updated, &list);
                let spec_pending = key.plural == "namespaces"
                    && key.group.is_empty()
                    && updated["spec"]["finalizers"]
                        .as_array()
                        .is_some_and(|f| !f.is_empty());
                if list.is_empty() && !spec_pending {
                    self.remove(&key);
                } else if updated != obj {
                    self.commit(key, updated, Some(obj));
                }
            }
            // Dependents whose owners are all gone are deleted (background propagation).
            let orphans: Vec<Key> = self
                .objects
                .iter()
                .filter(|(_, o)| {
                    let owners = meta(o)["ownerReferences"].as_array();
                    owners.is_some_and(|os| {
                        !os.is_empty()
                            && os
                                .iter()
                                .all(|r| !r["uid"].as_str().is_some_and(|u| uids.contains(u)))
                    })
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in orphans {
                self.mark_deleted(&key);
            }
        }
    }

    /// Starts deleting an object on behalf of a controller.
    fn mark_deleted(&mut self, key: &Key) {
        let Some(obj) = self.objects.get(key).cloned() else {
            return;
        };
        if meta(&obj).get("deletionTimestamp").is_some() {
            return;
        }
        let list = finalizers(&obj);
        let is_namespace = key.plural == "namespaces" && key.group.is_empty();
        if list.is_empty() && !is_namespace {
            self.remove(key);
            return;
        }
        let mut updated = obj.clone();
        if let Some(rt) = self
            .types
            .iter()
            .find(|t| t.group == key.group && t.plural == key.plural)
            .cloned()
        {
            start_deleting(&mut updated, &rt);
        }
        self.commit(key.clone(), updated, Some(obj));
    }

    fn drop_owner(&mut self, key: &Key, uid: &str) {
        let Some(obj) = self.objects.get(key).cloned() else {
            return;
        };
        let mut updated = obj.clone();
        let m = meta_mut(&mut updated);
        if let Some(Value::Array(refs)) = m.get_mut("ownerReferences") {
            refs.retain(|r| r["uid"].as_str() != Some(uid));
            if refs.is_empty() {
                m.remove("ownerReferences");
            }
        }
        self.commit(key.clone(), updated, Some(obj));
    }
}

/// Prunes unknown fields from a custom resource request, honouring `fieldValidation`.
fn prune_request(
    obj: &mut Value,
    schema: &Schema,
    target: &Target<'_>,
    _name: &str,
    opts: &WriteOptions,
) -> Result<Vec<String>, ApiError> {
    let mut removed = Vec::new();
    let meta_value = obj.as_object_mut().and_then(|m| m.remove("metadata"));
    let mut root = obj.clone();
    if let Some(map) = root.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    schema::prune(&mut root, schema, "", &mut removed);
    let mut out = root;
    out["apiVersion"] = obj["apiVersion"].clone();
    out["kind"] = obj["kind"].clone();
    if let Some(mut m) = meta_value {
        if let Value::Object(map) = &mut m {
            schema::prune_metadata(map, "metadata", &mut removed);
        }
        out["metadata"] = m;
    }
    *obj = out;
    if removed.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = removed
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    match opts.field_validation {
        FieldValidation::Strict => {
            let kind = &target.rt.kind;
            Err(ApiError::bad_request(format!(
                "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                target.version,
                messages.join(", ")
            )))
        }
        FieldValidation::Warn => Ok(messages),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

/// What server-side apply merges: the tracked fields plus identity.
fn strip_untracked(applied: &Value, rt: &ResourceType, subresource: &str) -> Value {
    let mut out = tracked(applied, rt, subresource);
    if let Some(map) = out.as_object_mut() {
        map.insert("apiVersion".into(), applied["apiVersion"].clone());
        map.insert("kind".into(), applied["kind"].clone());
    }
    out
}

fn conflict_error(conflicts: &BTreeMap<(String, String), Vec<fields::Path>>) -> ApiError {
    let total: usize = conflicts.values().map(Vec::len).sum();
    let mut causes = Vec::new();
    let mut parts = Vec::new();
    for ((manager, api_version), paths) in conflicts {
        let shown: Vec<String> = paths.iter().map(|p| display_path(p)).collect();
        for field in &shown {
            causes.push(Cause {
                reason: "FieldManagerConflict",
                message: format!("conflict with \"{manager}\" using {api_version}"),
                field: field.clone(),
            });
        }
        if shown.len() == 1 {
            parts.push(format!(
                "conflict with \"{manager}\" using {api_version}: {}",
                shown[0]
            ));
        } else {
            let lines: Vec<String> = shown.iter().map(|f| format!("- {f}")).collect();
            parts.push(format!(
                "conflicts with \"{manager}\" using {api_version}:\n{}",
                lines.join("\n")
            ));
        }
    }
    let noun = if total == 1 { "conflict" } else { "conflicts" };
    let mut error = ApiError::new(
        409,
        "Conflict",
        format!("Apply failed with {total} {noun}: {}", parts.join("\n")),
    );
    error.causes = causes;
    error
}

/// Marks an object as being deleted: deletionTimestamp, a new generation for kinds that have
/// one, and the kind's own terminating state (namespace phase, CRD condition).
fn start_deleting(obj: &mut Value, rt: &ResourceType) {
    let m = meta_mut(obj);
    m.insert("deletionTimestamp".into(), json!(now()));
    m.insert("deletionGracePeriodSeconds".into(), json!(0));
    if rt.has_generation {
        let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0) + 1;
        m.insert("generation".into(), json!(g));
    }
    match rt.builtin {
        Some(Builtin::Namespace) => obj["status"]["phase"] = json!("Terminating"),
        Some(Builtin::Crd) => obj["status"]["conditions"] = builtin::crd_conditions(&now(), true),
        _ => {}
    }
}
