//! The Kubernetes provider runtime, shared by every Kubernetes provider, and the generic
//! `kube` provider built on it.
//!
//! A Kubernetes provider is a [`Catalog`]: a name, a table of [`Kind`]s (one per resource
//! type) and the ecosystems whose CRDs it needs. [`KubeProvider`] turns any catalog into a
//! [`Provider`]:
//!
//! - **connection** ([`conn`]): `kubeconfig`, `kubeconfig_raw`, `context` or `sandbox`; one
//!   client per cluster, made on first use;
//! - **plan**: GET the live object, then a server-side apply with `dryRun=All` as
//!   `fieldManager=flotilla`. Attributes are compared on the fields flotilla sets, projected
//!   from the live object and from the dry-run result ([`object`]), so server defaults,
//!   webhooks and controllers never cause perpetual diffs. A refusal on a field of the kind's
//!   `immutable` list plans a replacement with the server's message; any other refusal is a
//!   plan error with that message; a 409 names the other field manager;
//! - **apply**: server-side apply, then wait for the kind's readiness ([`ops::check`]) within
//!   `timeouts`; an object that never becomes ready is recorded tainted. Deletes use
//!   foreground propagation and wait until the object is gone;
//! - **refresh**: the live object projected onto the recorded attributes, so edits made
//!   outside flotilla to fields it manages show as drift;
//! - **retries**: 429, 5xx and broken connections are retried with backoff ([`ops::call`]);
//! - **offline validation** ([`validate`]): `spec` against the kind's CRD schema.

pub mod conn;
mod health;
pub mod join;
pub mod kinds;
pub mod object;
pub mod ops;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flotilla_ecosystems::Ecosystem;
use flotilla_lang::{AttrPath, PathStep};
use flotilla_provider::{
    ApplyRequest, ApplyResponse, AttributeSchema, BlockSchema, Finding, ImportRequest,
    NestedBlockSchema, Nesting, PlanRequest, PlanResponse, Provider, ProviderError, ProviderHost,
    ProviderResult, ProviderSchema, ReadDataRequest, ReadRequest, ReadResponse, ReplaceReason,
    ResourceSchema, Review, Type, Value,
};
use kube::discovery::ApiResource;
use serde_json::Value as Json;

pub use conn::{Settings, Target};
pub use kinds::{Credentials, Export, Field, Kind, Named, Readiness, Related, Shape};

use object::{attrs, string};

/// A Kubernetes provider's table.
#[derive(Debug)]
pub struct Catalog {
    /// The provider's name (the prefix of its resource types).
    pub name: &'static str,
    /// Its resource types.
    pub kinds: &'static [&'static Kind],
    /// The ecosystems whose CRDs sandbox clusters get when this provider connects.
    pub ecosystems: &'static [Ecosystem],
    /// Whether it offers the data sources `<name>_object`, `<name>_secret` and
    /// `<name>_connection`.
    pub data_sources: bool,
    /// Offline checks beyond the schemas (rules upstream webhooks enforce).
    pub check: Option<fn(&Kind, &Value) -> Vec<ProviderError>>,
    /// Notes for the plan text from a planned value (where a policy places what it selects).
    pub notes: Option<fn(&Kind, &Value) -> Vec<String>>,
    /// Checks across the configuration's resources (see [`flotilla_provider::Review`]).
    pub review: Option<fn(&Review<'_>) -> Vec<Finding>>,
    /// A data source listing the cluster's nodes that carry a label (KubeEdge's edge nodes).
    pub nodes: Option<&'static NodeList>,
    /// Dependencies implied by names the platform resolves (see
    /// [`flotilla_provider::Provider::references`]).
    pub references: Option<ImpliedDependencies>,
    /// Its schema, built on first use.
    pub schema: OnceLock<ProviderSchema>,
}

/// (dependent, dependency) pairs of resources, from names a platform resolves.
pub type ImpliedDependencies = fn(&Review<'_>) -> Vec<(usize, usize)>;

/// A data source of nodes: `data "<type_name>" "x" { selector = { site = "hangzhou" } }`
/// exports `nodes`, by name, each with its `labels` and whether it is `ready`.
#[derive(Debug)]
pub struct NodeList {
    /// The data source's type.
    pub type_name: &'static str,
    /// What it lists.
    pub description: &'static str,
    /// The label every listed node has (`node-role.kubernetes.io/edge`).
    pub label: &'static str,
}

impl Catalog {
    /// Where the table disagrees with the ecosystem catalogue: a kind whose CRD is missing
    /// from its ecosystem, or differs in plural or scope. Empty for a sound table (each
    /// provider's tests check theirs).
    pub fn mismatches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in self.kinds {
            let Some(eco) = kind.ecosystem else { continue };
            let found = eco.crds().iter().any(|c| {
                let spec = &c["spec"];
                spec["group"] == kind.group()
                    && spec["names"]["kind"] == kind.kind
                    && spec["names"]["plural"] == kind.plural
                    && (spec["scope"] == "Namespaced") == kind.namespaced
                    && spec["versions"]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|v| v["name"] == kind.version()))
            });
            if !found {
                out.push(format!(
                    "{}: no {} CRD serves {} {} ({}, {})",
                    kind.type_name,
                    eco.name(),
                    kind.api_version,
                    kind.kind,
                    kind.plural,
                    if kind.namespaced {
                        "namespaced"
                    } else {
                        "cluster-scoped"
                    }
                ));
            }
        }
        out
    }
}

/// The generic `kube` provider.
pub static KUBE: Catalog = Catalog {
    name: "kube",
    kinds: &[
        &kinds::MANIFEST,
        &kinds::KUBE_KINDS[0],
        &kinds::KUBE_KINDS[1],
        &kinds::KUBE_KINDS[2],
        &kinds::KUBE_KINDS[3],
    ],
    ecosystems: &[],
    data_sources: true,
    check: None,
    notes: None,
    review: None,
    nodes: None,
    references: None,
    schema: OnceLock::new(),
};

/// A new `kube` provider instance, for the registry.
pub fn factory(host: &Arc<ProviderHost>) -> Arc<dyn Provider> {
    Arc::new(KubeProvider::new(&KUBE, host))
}

/// Default time to wait for an object to become ready after a create or an update.
const WRITE_TIMEOUT: Duration = Duration::from_secs(600);

/// Default time to wait for an object to be gone after a delete.
const DELETE_TIMEOUT: Duration = Duration::from_secs(600);

/// A provider over a [`Catalog`].
pub struct KubeProvider {
    catalog: &'static Catalog,
    schema: &'static ProviderSchema,
    host: Arc<ProviderHost>,
    settings: OnceLock<Settings>,
    target: tokio::sync::OnceCell<Arc<Target>>,
}

impl KubeProvider {
    /// An unconfigured instance served by `host`.
    pub fn new(catalog: &'static Catalog, host: &Arc<ProviderHost>) -> KubeProvider {
        KubeProvider {
            catalog,
            schema: catalog.schema.get_or_init(|| build_schema(catalog)),
            host: Arc::clone(host),
            settings: OnceLock::new(),
            target: tokio::sync::OnceCell::new(),
        }
    }

    fn kind(&self, type_name: &str) -> ProviderResult<&'static Kind> {
        self.catalog
            .kinds
            .iter()
            .copied()
            .find(|k| k.type_name == type_name)
            .ok_or_else(|| ProviderError::new(format!("unknown resource type {type_name}")))
    }

    /// The cluster, connecting on first use.
    async fn target(&self) -> ProviderResult<&Arc<Target>> {
        self.target
            .get_or_try_init(|| async {
                let settings = self.settings.get().cloned().unwrap_or_default();
                conn::connect(&self.host, &settings, self.catalog.ecosystems).await
            })
            .await
    }
}

fn string_map() -> Type {
    Type::Map(Box::new(Type::String))
}

fn build_schema(catalog: &Catalog) -> ProviderSchema {
    let mut s = ProviderSchema {
        provider: BlockSchema::default()
            .attr(
                "kubeconfig",
                AttributeSchema::optional(Type::String, "Path of a kubeconfig file."),
            )
            .attr(
                "kubeconfig_raw",
                AttributeSchema::optional(
                    Type::String,
                    "A kubeconfig document, e.g. `capi_cluster.x.kubeconfig`.",
                )
                .sensitive(),
            )
            .attr(
                "context",
                AttributeSchema::optional(
                    Type::String,
                    "The kubeconfig context; default: its current context.",
                ),
            )
            .attr(
                "sandbox",
                AttributeSchema::optional(
                    Type::String,
                    "A sandbox cluster's name (started under .flotilla/sandbox if needed).",
                ),
            ),
        ..ProviderSchema::default()
    };
    let timeouts = BlockSchema::default()
        .attr(
            "create",
            AttributeSchema::optional(
                Type::String,
                "How long to wait for readiness after a create (default 10m).",
            ),
        )
        .attr(
            "update",
            AttributeSchema::optional(
                Type::String,
                "How long to wait for readiness after an update (default 10m).",
            ),
        )
        .attr(
            "delete",
            AttributeSchema::optional(
                Type::String,
                "How long to wait for the object to be gone (default 10m).",
            ),
        );
    for kind in catalog.kinds {
        let mut b = BlockSchema::default();
        if !kind.is_manifest() {
            b = b
                .attr("name", AttributeSchema::required(Type::String, if kind.rotate { "The base name; the object is named `NAME-HASH`, HASH covering spec.template.spec." } else { "The object's name." }))
                .attr("labels", AttributeSchema::optional(string_map(), "Labels flotilla sets (others' labels are left alone)."))
                .attr("annotations", AttributeSchema::optional(string_map(), "Annotations flotilla sets."));
            if kind.namespaced {
                b = b.attr(
                    "namespace",
                    AttributeSchema::optional(Type::String, "The namespace, default \"default\".")
                        .with_default(),
                );
            }
        }
        for f in kind.fields {
            let ty = match f.shape {
                Shape::Any | Shape::Manifest => Type::Any,
                Shape::String => Type::String,
                Shape::StringMap | Shape::Base64Map => string_map(),
            };
            let mut a = if f.required {
                AttributeSchema::required(ty, f.doc)
            } else {
                AttributeSchema::optional(ty, f.doc)
            };
            if f.sensitive {
                a = a.sensitive();
            }
            b = b.attr(f.attr, a);
        }
        b = b
            .attr(
                "force_conflicts",
                AttributeSchema::optional(
                    Type::Bool,
                    "Take over fields another field manager owns (server-side apply `force`).",
                ),
            )
            .attr(
                "wait",
                AttributeSchema::optional(
                    Type::Bool,
                    "Wait for the object to become ready after a write (default true).",
                ),
            )
            .attr(
                "id",
                AttributeSchema::computed(
                    Type::String,
                    "`namespace/name`, or `name` when cluster-scoped.",
                ),
            )
            .attr(
                "uid",
                AttributeSchema::computed(Type::String, "The object's uid."),
            )
            .block(
                "timeouts",
                NestedBlockSchema {
                    nesting: Nesting::Single,
                    block: timeouts.clone(),
                },
            );
        if kind.rotate {
            b = b.attr(
                "object_name",
                AttributeSchema::computed(
                    Type::String,
                    "The object's name, `NAME-HASH`: refer to this from other objects.",
                ),
            );
        }
        if let Some(c) = kind.credentials {
            b = b.attr(
                c.attr,
                AttributeSchema::required(Type::String, c.doc).sensitive(),
            );
        }
        for e in kind.exports {
            let a = AttributeSchema::computed(Type::String, e.doc);
            b = b.attr(e.attr, if e.sensitive { a.sensitive() } else { a });
        }
        s.resources.insert(
            kind.type_name.to_string(),
            ResourceSchema {
                description: format!("{} ({} {})", kind.description, kind.api_version, kind.kind)
                    .replace(" ( )", ""),
                block: b,
                create_before_destroy: kind.rotate,
            },
        );
    }
    if let Some(n) = catalog.nodes {
        s.data_sources.insert(
            n.type_name.to_string(),
            ResourceSchema {
                description: n.description.into(),
                block: BlockSchema::default()
                    .attr(
                        "selector",
                        AttributeSchema::optional(
                            string_map(),
                            "Labels the nodes must also have (all of them).",
                        ),
                    )
                    .attr(
                        "nodes",
                        AttributeSchema::computed(
                            Type::Any,
                            "The nodes by name: `{ labels = {...}, ready = true }`.",
                        ),
                    ),
                create_before_destroy: false,
            },
        );
    }
    if catalog.data_sources {
        s.data_sources.insert(
            format!("{}_object", catalog.name),
            ResourceSchema {
                description: "Reads any object, e.g. one a controller generated.".into(),
                block: BlockSchema::default()
                    .attr(
                        "api_version",
                        AttributeSchema::required(Type::String, "`group/version`, or `v1`."),
                    )
                    .attr("kind", AttributeSchema::required(Type::String, "The kind."))
                    .attr("name", AttributeSchema::required(Type::String, "The name."))
                    .attr(
                        "namespace",
                        AttributeSchema::optional(
                            Type::String,
                            "The namespace (namespaced kinds; default \"default\").",
                        ),
                    )
                    .attr(
                        "object",
                        AttributeSchema::computed(Type::Any, "The object, without managedFields."),
                    ),
                create_before_destroy: false,
            },
        );
        s.data_sources.insert(
            format!("{}_connection", catalog.name),
            ResourceSchema {
                description: "The connection this provider block uses, to hand to another cluster (e.g. a Karmada member's `kubeconfig`).".into(),
                block: BlockSchema::default()
                    .attr(
                        "kubeconfig",
                        AttributeSchema::computed(
                            Type::String,
                            "A kubeconfig with only this cluster's context.",
                        )
                        .sensitive(),
                    )
                    .attr(
                        "server",
                        AttributeSchema::computed(Type::String, "The API server's URL."),
                    ),
                create_before_destroy: false,
            },
        );
        s.data_sources.insert(
            format!("{}_secret", catalog.name),
            ResourceSchema {
                description: "Reads a Secret; `data` is decoded and sensitive.".into(),
                block: BlockSchema::default()
                    .attr("name", AttributeSchema::required(Type::String, "The name."))
                    .attr(
                        "namespace",
                        AttributeSchema::optional(
                            Type::String,
                            "The namespace, default \"default\".",
                        ),
                    )
                    .attr(
                        "data",
                        AttributeSchema::computed(string_map(), "The data, decoded.").sensitive(),
                    )
                    .attr(
                        "type",
                        AttributeSchema::computed(Type::String, "The Secret's type."),
                    ),
                create_before_destroy: false,
            },
        );
    }
    s
}

/// Where an object lives: its API resource, namespace and name.
struct Location {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
}

impl Location {
    fn id(&self) -> String {
        object::id(self.namespace.as_deref(), &self.name)
    }
}

fn resource_of(kind: &Kind) -> ApiResource {
    ApiResource {
        group: kind.group().into(),
        version: kind.version().into(),
        api_version: kind.api_version.into(),
        kind: kind.kind.into(),
        plural: kind.plural.into(),
    }
}

impl KubeProvider {
    /// The API resource of a kind and whether it is namespaced, by discovery (cached per
    /// cluster for the run); `None` when the cluster does not serve it.
    async fn discover(
        &self,
        api_version: &str,
        kind_name: &str,
    ) -> ProviderResult<Option<(ApiResource, bool)>> {
        let target = self.target().await?;
        if let Some(known) = target.discovered(api_version, kind_name) {
            return Ok(Some(known));
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind_name);
        match ops::call(target, "discover", || {
            kube::discovery::pinned_kind(&target.client, &gvk)
        })
        .await
        {
            Ok((resource, caps)) => {
                let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
                target.remember(api_version, kind_name, (resource.clone(), namespaced));
                Ok(Some((resource, namespaced)))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(e) => Err(ops::api_error(
                target,
                &format!("cannot discover {api_version} {kind_name}"),
                &e,
            )),
        }
    }

    /// Where the object a value describes lives. For `kube_manifest`, discovery tells the
    /// plural and scope (`None` when the kind is not served yet, e.g. its CRD is created in
    /// the same apply).
    async fn locate(&self, kind: &Kind, v: &Value) -> ProviderResult<Option<Location>> {
        let m = attrs(v);
        if !kind.is_manifest() {
            let name = object::object_name(kind, &m)
                .ok_or_else(|| ProviderError::new("the object's name is not known"))?;
            return Ok(Some(Location {
                resource: resource_of(kind),
                namespace: object::namespace(kind, &m),
                name,
            }));
        }
        let manifest = m.get("manifest").map(Value::to_json).unwrap_or(Json::Null);
        let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
        let kind_name = manifest["kind"].as_str().unwrap_or_default();
        let name = manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some((resource, namespaced)) = self.discover(api_version, kind_name).await? else {
            return Ok(None);
        };
        let namespace = namespaced.then(|| {
            manifest["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        });
        Ok(Some(Location {
            resource,
            namespace,
            name,
        }))
    }
}

/// The `timeouts` block's setting for `op`, or the default.
fn timeout(v: &Value, op: &str, default: Duration) -> Duration {
    v.get_attr("timeouts")
        .and_then(|t| t.get_attr(op))
        .and_then(|d| match d {
            Value::String(s) => flotilla_provider::parse_duration(&s),
            _ => None,
        })
        .unwrap_or(default)
}

fn flag(v: &Value, key: &str, default: bool) -> bool {
    match v.get_attr(key) {
        Some(Value::Bool(b)) => b,
        _ => default,
    }
}

/// A dotted object path as an attribute path (`spec.clusterName` → `spec.clusterName`; for
/// `kube_manifest`, under `manifest`).
fn attr_path(kind: &Kind, dotted: &str) -> AttrPath {
    let mut steps: Vec<PathStep> = Vec::new();
    if kind.is_manifest() {
        steps.push(PathStep::Key("manifest".into()));
    }
    steps.extend(
        dotted
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| PathStep::Key(s.to_string())),
    );
    AttrPath(steps)
}

/// The object-path changes between two values that need a new object, by the kind's table.
fn static_replacements(kind: &Kind, prior: &Value, proposed: &Value) -> Vec<ReplaceReason> {
    let old = object::build(kind, prior).ok();
    let new = object::build(kind, proposed).ok();
    let (Some(old), Some(new)) = (old, new) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !kind.is_manifest() {
        let new_name = object::at(&new, "metadata.name");
        let renamed = string(&attrs(prior), "name") != string(&attrs(proposed), "name");
        if object::at(&old, "metadata.name") != new_name {
            out.push(if kind.rotate && !renamed {
                ReplaceReason {
                    path: attr_path(kind, "spec.template.spec"),
                    reason: format!(
                        "spec.template.spec cannot change in place; the template is rotated to a new object, {}, and its referrers follow",
                        new_name.and_then(Json::as_str).unwrap_or("?")
                    ),
                }
            } else {
                ReplaceReason {
                    path: AttrPath::attr("name"),
                    reason: "the name of a Kubernetes object cannot change".into(),
                }
            });
        }
        if object::at(&old, "metadata.namespace") != object::at(&new, "metadata.namespace") {
            out.push(ReplaceReason {
                path: AttrPath::attr("namespace"),
                reason: "the namespace of a Kubernetes object cannot change".into(),
            });
        }
    }
    for entry in kind.force_new {
        let (path, presence) = match entry.strip_suffix('?') {
            Some(p) => (p, true),
            None => (*entry, false),
        };
        let (a, b) = (object::at(&old, path), object::at(&new, path));
        let changed = if presence {
            a.is_some() != b.is_some()
        } else {
            a != b
        };
        let path_attr = attr_path(kind, path);
        if changed && !out.iter().any(|r| r.path == path_attr) {
            let reason = if presence {
                format!("{path} cannot be added or removed once the object exists")
            } else {
                format!("{path} cannot change in place")
            };
            out.push(ReplaceReason {
                path: path_attr,
                reason,
            });
        }
    }
    out
}

/// The field a refusal is about, from its causes (`spec.clusterName`), when the server says.
fn refused_fields(status: &kube::core::Status) -> Vec<String> {
    status
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| c.field.trim_start_matches('.').to_string())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a refusal is the server saying a field cannot change in place.
fn immutability_refusal(kind: &Kind, status: &kube::core::Status) -> Option<String> {
    if !matches!(status.code, 400 | 403 | 422) {
        return None;
    }
    let fields = refused_fields(status);
    let listed = |f: &str| {
        kind.immutable
            .iter()
            .any(|p| f.starts_with(p) || p.starts_with(f))
    };
    let hit = fields.iter().find(|f| listed(f)).cloned().or_else(|| {
        kind.immutable
            .iter()
            .find(|p| status.message.contains(*p))
            .map(|p| p.to_string())
    })?;
    Some(hit)
}

/// Whether namespace `ns` does not exist (read the way planning reads, so many objects in
/// new namespaces cost one LIST of namespaces).
async fn ns_missing(target: &Target, ns: &str) -> ProviderResult<bool> {
    let namespaces = resource_of(&kinds::KUBE_KINDS[0]);
    Ok(ops::get_for_plan(target, &namespaces, None, ns)
        .await?
        .is_none())
}

/// Whether a refusal came from an admission webhook (ordering rules live there).
fn webhook_denial(status: &kube::core::Status) -> bool {
    status.code == 403 && status.message.contains("admission webhook")
}

/// The plan-time error for a conflict with another field manager.
fn conflict_error(target: &Target, loc: &Location, status: &kube::core::Status) -> ProviderError {
    ProviderError::new(format!(
        "{} {} has fields another field manager owns: {}",
        loc.resource.kind,
        loc.id(),
        status.message
    ))
    .with_detail(format!(
        "{} refused flotilla's server-side apply; set `force_conflicts = true` on the resource to take the fields over, or drop them from the configuration to leave them to their owner",
        target.describe()
    ))
}

/// Fields another manager took over from flotilla: when every field of a conflict is one
/// flotilla applied before (in `prior`, what state records), the fields and the managers
/// that changed them; `None` when any is a field flotilla never set.
fn taken_from_flotilla(
    kind: &Kind,
    prior: Option<&Value>,
    status: &kube::core::Status,
) -> Option<(Vec<String>, Vec<String>)> {
    let before = object::build(kind, prior?).ok()?;
    let causes = status.details.as_ref()?.causes.clone();
    if causes.is_empty() {
        return None;
    }
    let mut fields = Vec::new();
    let mut managers = Vec::new();
    for cause in causes {
        if !field_in(&before, &cause.field) {
            return None;
        }
        fields.push(cause.field.trim_start_matches('.').to_string());
        if let Some(m) = cause.message.split('"').nth(1)
            && !managers.iter().any(|x| x == m)
        {
            managers.push(m.to_string());
        }
    }
    Some((fields, managers))
}

/// Whether a managed-fields path (`.data.region`, `.spec.containers[name="web"].image`) is in
/// `obj`.
fn field_in(obj: &Json, path: &str) -> bool {
    let mut at = obj;
    let mut rest = path.trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(sel) = rest.strip_prefix('[') {
            let Some((inside, after)) = sel.split_once(']') else {
                return false;
            };
            let Some(items) = at.as_array() else {
                return false;
            };
            let found = match inside.split_once('=') {
                Some((k, v)) => {
                    let v = v.trim_matches('"');
                    items.iter().find(|i| match &i[k] {
                        Json::String(s) => s == v,
                        Json::Number(n) => n.to_string() == v,
                        other => *other == *v,
                    })
                }
                None => inside.parse::<usize>().ok().and_then(|n| items.get(n)),
            };
            let Some(next) = found else { return false };
            at = next;
            rest = after.trim_start_matches('.');
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let (key, after) = rest.split_at(end);
        match at.get(key) {
            Some(next) => at = next,
            None => return false,
        }
        rest = after.trim_start_matches('.');
    }
    true
}

/// The plan's note for fields taken back from other managers.
fn takeback_note(fields: &[String], managers: &[String]) -> String {
    format!(
        "takes back {} from {}, which changed {} outside flotilla",
        fields.join(", "),
        managers.join(" and "),
        if fields.len() == 1 { "it" } else { "them" }
    )
}

impl KubeProvider {
    /// The computed attributes of a planned value.
    /// Fills the computed attributes of a planned value. `same` is the refreshed prior value
    /// when the plan keeps the same object (its uid and kubeconfig carry over), `None` when
    /// the object is new.
    fn computed(
        &self,
        kind: &Kind,
        planned: &mut BTreeMap<String, Value>,
        same: Option<&Value>,
        loc: Option<&Location>,
    ) {
        let known = |k: &str| same.and_then(|p| p.get_attr(k)).filter(|v| !v.is_null());
        planned.insert(
            "id".into(),
            loc.map(|l| Value::string(l.id())).unwrap_or(Value::Unknown),
        );
        planned.insert("uid".into(), known("uid").unwrap_or(Value::Unknown));
        if kind.namespaced
            && !kind.is_manifest()
            && planned.get("namespace").is_none_or(Value::is_null)
        {
            planned.insert("namespace".into(), Value::string("default"));
        }
        if kind.rotate {
            planned.insert(
                "object_name".into(),
                object::object_name(kind, planned)
                    .map(Value::string)
                    .unwrap_or(Value::Unknown),
            );
        }
        for e in kind.exports {
            let unknown = if e.sensitive {
                Value::Unknown.sensitive()
            } else {
                Value::Unknown
            };
            planned.insert(e.attr.into(), known(e.attr).unwrap_or(unknown));
        }
    }

    async fn plan(&self, req: PlanRequest<'_>) -> ProviderResult<PlanResponse> {
        let kind = self.kind(req.type_name)?;
        let mut resp = self.plan_object(kind, req).await?;
        if let Some(notes) = self.catalog.notes {
            resp.notes = notes(kind, &resp.planned);
        }
        Ok(resp)
    }

    async fn plan_object(
        &self,
        kind: &'static Kind,
        req: PlanRequest<'_>,
    ) -> ProviderResult<PlanResponse> {
        let mut planned = attrs(req.proposed);
        let config_known = object::managed(kind, req.proposed)
            .keys()
            .all(|k| planned.get(k).is_none_or(|v| !v.contains_unknown()))
            && ["name", "namespace"]
                .iter()
                .all(|k| planned.get(*k).is_none_or(|v| !v.contains_unknown()));
        let mut reasons = match req.prior {
            Some(prior) if config_known => static_replacements(kind, prior, req.proposed),
            _ => Vec::new(),
        };
        if !config_known {
            let loc = if kind.is_manifest() {
                None
            } else {
                object::object_name(kind, &planned).map(|name| Location {
                    resource: resource_of(kind),
                    namespace: object::namespace(kind, &planned),
                    name,
                })
            };
            self.computed(kind, &mut planned, req.prior, loc.as_ref());
            return Ok(PlanResponse {
                planned: Value::Map(planned),
                requires_replace: reasons,
                notes: Vec::new(),
            });
        }
        if req.applying && req.prior.is_none() && !kind.is_manifest() {
            // A new object, about to be written: the write makes every check a dry run
            // would, so apply spends no requests on asking first.
            let loc = object::object_name(kind, &planned).map(|name| Location {
                resource: resource_of(kind),
                namespace: object::namespace(kind, &planned),
                name,
            });
            self.computed(kind, &mut planned, None, loc.as_ref());
            return Ok(PlanResponse {
                planned: Value::Map(planned),
                requires_replace: reasons,
                notes: Vec::new(),
            });
        }
        let target = self.target().await?;
        let Some(loc) = self.locate(kind, req.proposed).await? else {
            // The kind is not served yet (its CRD comes with this apply): plan without the server.
            self.computed(kind, &mut planned, None, None);
            return Ok(PlanResponse {
                planned: Value::Map(planned),
                requires_replace: reasons,
                notes: Vec::new(),
            });
        };
        if req.prior.is_none()
            && req.dependencies_pending
            && let Some(ns) = loc.namespace.as_deref()
            && ns_missing(target, ns).await?
        {
            // A new object in a namespace this plan creates first: nothing is there to read,
            // and the server could only answer that the namespace is missing.
            self.computed(kind, &mut planned, None, Some(&loc));
            return Ok(PlanResponse {
                planned: Value::Map(planned),
                requires_replace: reasons,
                notes: Vec::new(),
            });
        }
        let live =
            ops::get_for_plan(target, &loc.resource, loc.namespace.as_deref(), &loc.name).await?;
        let prior = req.prior.filter(|_| live.is_some());
        if let Some(prior) = prior
            && reasons.is_empty()
            && object::managed(kind, prior) == object::managed(kind, req.proposed)
        {
            // Nothing flotilla sets differs from the cluster: nothing to ask the server.
            self.computed(kind, &mut planned, Some(prior), Some(&loc));
            return Ok(PlanResponse {
                planned: Value::Map(planned),
                requires_replace: reasons,
                notes: Vec::new(),
            });
        }
        if req.prior.is_none() && live.is_some() {
            // The new half of a replacement: the object it replaces is still there, so the
            // server can only judge the new one once the old one is gone.
            self.computed(kind, &mut planned, None, Some(&loc));
            return Ok(PlanResponse {
                planned: Value::Map(planned),
                requires_replace: reasons,
                notes: Vec::new(),
            });
        }
        let desired = object::build(kind, req.proposed)?;
        let force = flag(req.proposed, "force_conflicts", false);
        let mut notes = Vec::new();
        let mut answer = ops::apply(
            target,
            &loc.resource,
            loc.namespace.as_deref(),
            &loc.name,
            &desired,
            true,
            force,
        )
        .await;
        // Drift made by another manager on fields flotilla applied: planned as an update that
        // takes them back (forced, those fields only), not a conflict.
        if let Err(kube::Error::Api(status)) = &answer
            && status.code == 409
            && let Some((fields, managers)) = taken_from_flotilla(kind, prior, status)
        {
            notes.push(takeback_note(&fields, &managers));
            answer = ops::apply(
                target,
                &loc.resource,
                loc.namespace.as_deref(),
                &loc.name,
                &desired,
                true,
                true,
            )
            .await;
        }
        match answer {
            Ok(merged) => {
                if let (Some(prior), Some(live)) = (prior, &live)
                    && reasons.is_empty()
                    && object::unchanged(kind, prior, req.proposed, live, &merged)
                {
                    // The server would leave every field flotilla sets as it is (it normalises
                    // or defaults them): keep what is recorded, so the plan shows no change.
                    for (k, v) in object::managed(kind, prior) {
                        planned.insert(k, Value::from_json(&v));
                    }
                }
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                return Err(conflict_error(target, &loc, &status));
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                // Its namespace is created by this apply: the server can check it only then.
            }
            Err(kube::Error::Api(status))
                if prior.is_none() && req.dependencies_pending && webhook_denial(&status) =>
            {
                // A webhook refused the new object, perhaps for something this plan creates
                // first (a Volcano queue that is not Open yet): apply asks the server again.
            }
            Err(kube::Error::Api(status)) => match (prior, immutability_refusal(kind, &status)) {
                (Some(_), Some(field)) => {
                    reasons.retain(|r| !r.path.to_string().starts_with(&field));
                    reasons.push(ReplaceReason {
                        path: attr_path(kind, &field),
                        reason: status.message.clone(),
                    });
                }
                _ => {
                    return Err(ProviderError::new(format!(
                        "the API server refused {} {}: {}",
                        loc.resource.kind,
                        loc.id(),
                        status.message
                    ))
                    .with_detail(format!(
                        "{} answered {} {} to a dry-run apply",
                        target.describe(),
                        status.code,
                        status.reason
                    )));
                }
            },
            Err(e) => {
                return Err(ops::api_error(
                    target,
                    &format!("cannot plan {} {}", loc.resource.kind, loc.id()),
                    &e,
                ));
            }
        }
        let same = prior.filter(|_| reasons.is_empty());
        self.computed(kind, &mut planned, same, Some(&loc));
        Ok(PlanResponse {
            planned: Value::Map(planned),
            requires_replace: reasons,
            notes,
        })
    }

    /// The nodes with the list's label and the selector's labels.
    async fn nodes(
        &self,
        list: &NodeList,
        mut m: BTreeMap<String, Value>,
    ) -> ProviderResult<Value> {
        let target = self.target().await?;
        let mut selector = vec![list.label.to_string()];
        if let Some(Value::Map(labels)) = m.get("selector") {
            for (k, v) in labels {
                if let Value::String(v) = v.clone().unmark().0 {
                    selector.push(format!("{k}={v}"));
                }
            }
        }
        let resource = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Node".into(),
            plural: "nodes".into(),
        };
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::all_with(target.client.clone(), &resource);
        let params = kube::api::ListParams::default().labels(&selector.join(","));
        let listed = ops::call(target, "list Nodes", || api.list(&params))
            .await
            .map_err(|e| ops::api_error(target, "cannot list Nodes", &e))?;
        let mut nodes = BTreeMap::new();
        for node in listed.items {
            let json = serde_json::to_value(&node).unwrap_or(Json::Null);
            let ready = ops::check(&json, Readiness::Condition("Ready")) == ops::Status::Ready;
            nodes.insert(
                node.metadata.name.clone().unwrap_or_default(),
                Value::object([
                    ("labels", Value::from_json(&json["metadata"]["labels"])),
                    ("ready", Value::Bool(ready)),
                ]),
            );
        }
        m.insert("nodes".into(), Value::Map(nodes));
        Ok(Value::Map(m))
    }

    /// Writes the namespace and access Secret that credentials become.
    async fn hand_over(&self, c: &Credentials, name: &str, kubeconfig: &str) -> ProviderResult<()> {
        let target = self.target().await?;
        for obj in join::objects(c, name, kubeconfig)? {
            let kind_name = obj["kind"].as_str().unwrap_or_default();
            let (resource, namespace) = if kind_name == "Secret" {
                (secret_resource(), Some(c.secret_namespace))
            } else {
                (resource_of(&kinds::KUBE_KINDS[0]), None)
            };
            let obj_name = obj["metadata"]["name"].as_str().unwrap_or_default();
            ops::apply(target, &resource, namespace, obj_name, &obj, false, true)
                .await
                .map_err(|e| {
                    ops::api_error(
                        target,
                        &format!("cannot write {kind_name} {obj_name} for {name}'s credentials"),
                        &e,
                    )
                })?;
        }
        Ok(())
    }

    /// Reads an export from its Secret; `None` while the Secret or its key is missing.
    async fn export(&self, e: &Export, loc: &Location) -> ProviderResult<Option<Value>> {
        let target = self.target().await?;
        let secret = ops::get(
            target,
            &secret_resource(),
            loc.namespace.as_deref(),
            &format!("{}{}", loc.name, e.secret_suffix),
        )
        .await?;
        let text = secret.and_then(|s| {
            let encoded = s["data"][e.key].as_str()?.to_string();
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        });
        Ok(text.map(|t| {
            let v = Value::string(t);
            if e.sensitive { v.sensitive() } else { v }
        }))
    }

    /// The state after a write: the applied object projected onto the planned attributes.
    fn written(
        &self,
        kind: &Kind,
        planned: &Value,
        obj: &Json,
        loc: &Location,
    ) -> BTreeMap<String, Value> {
        let mut m = attrs(&object::refreshed(kind, planned, obj));
        m.insert("id".into(), Value::string(loc.id()));
        m.insert("uid".into(), uid_of(obj));
        if kind.rotate {
            m.insert("object_name".into(), Value::string(&loc.name));
        }
        m
    }

    async fn apply(&self, req: ApplyRequest<'_>) -> ProviderResult<ApplyResponse> {
        let kind = self.kind(req.type_name)?;
        let target = self.target().await?;
        let Some(planned) = req.planned else {
            let prior = req
                .prior
                .ok_or_else(|| ProviderError::new("nothing to delete"))?;
            let Some(loc) = self.locate(kind, prior).await? else {
                return Ok(ApplyResponse::done(None));
            };
            ops::delete(
                target,
                &loc.resource,
                loc.namespace.as_deref(),
                &loc.name,
                timeout(prior, "delete", DELETE_TIMEOUT),
            )
            .await?;
            if let Some(c) = kind.credentials {
                ops::delete(
                    target,
                    &secret_resource(),
                    Some(c.secret_namespace),
                    &loc.name,
                    timeout(prior, "delete", DELETE_TIMEOUT),
                )
                .await?;
            }
            return Ok(ApplyResponse::done(None));
        };
        let loc = self.locate(kind, planned).await?.ok_or_else(|| {
            let m = object::build(kind, planned).unwrap_or_default();
            ProviderError::new(format!(
                "the cluster does not serve {} {}",
                m["apiVersion"], m["kind"]
            ))
            .with_detail(
                "create its CustomResourceDefinition first, and make this resource depend on it",
            )
        })?;
        let desired = object::build(kind, planned)?;
        let force = flag(planned, "force_conflicts", false);
        if let (Some(c), Some(kubeconfig)) = (kind.credentials, join::kubeconfig(kind, planned)) {
            self.hand_over(c, &loc.name, &kubeconfig).await?;
        }
        let mut answer = ops::apply(
            target,
            &loc.resource,
            loc.namespace.as_deref(),
            &loc.name,
            &desired,
            false,
            force,
        )
        .await;
        // Fields flotilla applied before that another manager changed: taken back, as the
        // plan said.
        if let Err(kube::Error::Api(status)) = &answer
            && status.code == 409
            && taken_from_flotilla(kind, req.prior, status).is_some()
        {
            answer = ops::apply(
                target,
                &loc.resource,
                loc.namespace.as_deref(),
                &loc.name,
                &desired,
                false,
                true,
            )
            .await;
        }
        let applied = match answer {
            Ok(o) => o,
            Err(kube::Error::Api(status)) if status.code == 409 => {
                return Err(conflict_error(target, &loc, &status));
            }
            Err(e) => {
                return Err(ops::api_error(
                    target,
                    &format!("cannot apply {} {}", loc.resource.kind, loc.id()),
                    &e,
                ));
            }
        };
        let mut state = self.written(kind, planned, &applied, &loc);
        for e in kind.exports {
            state.insert(e.attr.into(), Value::Null);
        }
        if !flag(planned, "wait", true) {
            return Ok(ApplyResponse::done(Some(Value::Map(state))));
        }
        let op = if req.prior.is_some() {
            "update"
        } else {
            "create"
        };
        let limit = timeout(planned, op, WRITE_TIMEOUT);
        let started = std::time::Instant::now();
        let not_ready = |why: String| -> ProviderError {
            ProviderError::new(format!(
                "{} {} did not become ready within {} (the {op} timeout)",
                loc.resource.kind,
                loc.id(),
                ops::human(limit)
            ))
            .with_detail(format!(
                "last seen: {why}; raise `timeouts {{ {op} = ... }}` if it needs longer"
            ))
        };
        // What the write returned may already be ready (always, for kinds ready once
        // accepted): no read needed.
        let readiness = if kind.is_manifest() {
            kinds::manifest_readiness(&loc.resource.api_version, &loc.resource.kind)
        } else {
            kind.readiness
        };
        let ready_now = !matches!(readiness, Readiness::Related(_))
            && ops::check(&applied, readiness) == ops::Status::Ready;
        let waited = if ready_now {
            Ok(applied)
        } else {
            ops::wait_ready(
                target,
                &loc.resource,
                loc.namespace.as_deref(),
                &loc.name,
                readiness,
                limit,
            )
            .await
        };
        let ready = match waited {
            Ok(o) => o,
            Err(ops::NotReady::Timeout(why)) => {
                return Ok(ApplyResponse {
                    new_state: Some(Value::Map(state)),
                    failed: Some(not_ready(why)),
                });
            }
            Err(ops::NotReady::Failed(why)) => {
                let e =
                    ProviderError::new(format!("{} {} failed: {why}", loc.resource.kind, loc.id()))
                        .with_detail(format!("reported by {}", target.describe()));
                return Ok(ApplyResponse {
                    new_state: Some(Value::Map(state)),
                    failed: Some(e),
                });
            }
            Err(ops::NotReady::Error(e)) => {
                return Ok(ApplyResponse {
                    new_state: Some(Value::Map(state)),
                    failed: Some(e),
                });
            }
        };
        state.insert("uid".into(), uid_of(&ready));
        for e in kind.exports {
            let mut pause = Duration::from_millis(50);
            loop {
                if let Some(v) = self.export(e, &loc).await? {
                    state.insert(e.attr.into(), v);
                    break;
                }
                if started.elapsed() >= limit {
                    let why = format!("no Secret {}{} yet", loc.name, e.secret_suffix);
                    return Ok(ApplyResponse {
                        new_state: Some(Value::Map(state)),
                        failed: Some(not_ready(why)),
                    });
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
        Ok(ApplyResponse::done(Some(Value::Map(state))))
    }

    async fn refresh(&self, req: ReadRequest<'_>) -> ProviderResult<ReadResponse> {
        let kind = self.kind(req.type_name)?;
        let target = self.target().await?;
        let Some(loc) = self.locate(kind, req.current).await? else {
            return Ok(ReadResponse { state: None });
        };
        let Some(live) =
            ops::get_for_plan(target, &loc.resource, loc.namespace.as_deref(), &loc.name).await?
        else {
            return Ok(ReadResponse { state: None });
        };
        let mut m = attrs(&object::refreshed(kind, req.current, &live));
        m.insert("uid".into(), uid_of(&live));
        for e in kind.exports {
            if let Some(v) = self.export(e, &loc).await? {
                m.insert(e.attr.into(), v);
            }
        }
        // Sensitive attributes stay marked as recorded.
        let current = attrs(req.current);
        let sensitive = kind
            .fields
            .iter()
            .filter(|f| f.sensitive)
            .map(|f| f.attr)
            .chain(kind.credentials.map(|c| c.attr));
        for attr in sensitive {
            if let Some(v) = m.get_mut(attr)
                && current.get(attr).is_some_and(Value::is_sensitive)
            {
                *v = v.clone().sensitive();
            }
        }
        Ok(ReadResponse {
            state: Some(Value::Map(m)),
        })
    }

    async fn adopt(&self, req: ImportRequest<'_>) -> ProviderResult<Value> {
        let kind = self.kind(req.type_name)?;
        if kind.is_manifest() || kind.rotate {
            return Err(
                ProviderError::new(format!("{} cannot be imported", kind.type_name)).with_detail(
                    if kind.rotate {
                        "its object name carries a content hash; create it with flotilla instead"
                    } else {
                        "declare it with a typed resource, or recreate it with flotilla"
                    },
                ),
            );
        }
        let (namespace, name) = match req.id.split_once('/') {
            Some((ns, n)) if kind.namespaced => (Some(ns.to_string()), n.to_string()),
            None if !kind.namespaced => (None, req.id.to_string()),
            None => (Some("default".to_string()), req.id.to_string()),
            Some(_) => {
                return Err(ProviderError::new(format!(
                    "{} is cluster-scoped: import it by name, not {:?}",
                    kind.kind, req.id
                )));
            }
        };
        let target = self.target().await?;
        let resource = resource_of(kind);
        let live = ops::get(target, &resource, namespace.as_deref(), &name)
            .await?
            .ok_or_else(|| {
                ProviderError::new(format!("{} {} does not exist", kind.kind, req.id))
                    .with_detail(format!("looked in {}", target.describe()))
            })?;
        let mut m = BTreeMap::new();
        m.insert("name".to_string(), Value::string(&name));
        if let Some(ns) = &namespace {
            m.insert("namespace".to_string(), Value::string(ns));
        }
        for (k, v) in object::live_attrs(kind, &live) {
            m.insert(k, Value::from_json(&v));
        }
        m.insert(
            "id".into(),
            Value::string(object::id(namespace.as_deref(), &name)),
        );
        m.insert("uid".into(), uid_of(&live));
        // Every other argument is unset, as in a configuration that does not mention it.
        if let Some(schema) = self.schema.resources.get(kind.type_name) {
            for name in schema
                .block
                .attributes
                .keys()
                .chain(schema.block.blocks.keys())
            {
                m.entry(name.clone()).or_insert(Value::Null);
            }
        }
        Ok(Value::Map(m))
    }

    async fn data(&self, req: ReadDataRequest<'_>) -> ProviderResult<Value> {
        let m = attrs(req.config);
        if let Some(n) = self.catalog.nodes.filter(|n| n.type_name == req.type_name) {
            return self.nodes(n, m).await;
        }
        if req.type_name.ends_with("_connection") {
            let target = self.target().await?;
            let mut out = m;
            out.insert(
                "kubeconfig".into(),
                Value::string(&target.kubeconfig).sensitive(),
            );
            out.insert("server".into(), Value::string(&target.url));
            return Ok(Value::Map(out));
        }
        let secret = req.type_name.ends_with("_secret");
        let (resource, namespaced) = if secret {
            (secret_resource(), true)
        } else {
            let api_version = string(&m, "api_version").unwrap_or_default();
            let kind_name = string(&m, "kind").unwrap_or_default();
            self.discover(&api_version, &kind_name)
                .await?
                .ok_or_else(|| {
                    ProviderError::new(format!(
                        "the cluster does not serve {api_version} {kind_name}"
                    ))
                })?
        };
        let name = string(&m, "name").unwrap_or_default();
        let namespace =
            namespaced.then(|| string(&m, "namespace").unwrap_or_else(|| "default".into()));
        let target = self.target().await?;
        let live = ops::get(target, &resource, namespace.as_deref(), &name)
            .await?
            .ok_or_else(|| {
                ProviderError::new(format!(
                    "{} {} does not exist",
                    resource.kind,
                    object::id(namespace.as_deref(), &name)
                ))
                .with_detail(format!("looked in {}", target.describe()))
            })?;
        let mut out = m.clone();
        if let Some(ns) = namespace {
            out.insert("namespace".into(), Value::string(ns));
        }
        if secret {
            let data = object::live_attrs(&kinds::KUBE_KINDS[2], &live)
                .remove("data")
                .unwrap_or(Json::Null);
            out.insert("data".into(), Value::from_json(&data).sensitive());
            out.insert(
                "type".into(),
                live["type"]
                    .as_str()
                    .map(Value::string)
                    .unwrap_or(Value::Null),
            );
        } else {
            let mut obj = live;
            if let Some(md) = obj["metadata"].as_object_mut() {
                md.remove("managedFields");
            }
            out.insert("object".into(), Value::from_json(&obj));
        }
        Ok(Value::Map(out))
    }
}

/// An object's uid as an attribute value.
fn uid_of(obj: &Json) -> Value {
    obj["metadata"]["uid"]
        .as_str()
        .map(Value::string)
        .unwrap_or(Value::Null)
}

fn secret_resource() -> ApiResource {
    resource_of(&kinds::KUBE_KINDS[2])
}

/// Checks a resource's configuration without a cluster.
fn check(kind: &Kind, config: &Value) -> Vec<ProviderError> {
    let m = attrs(config);
    let mut errors = Vec::new();
    if let Some(name) = string(&m, "name").or_else(|| {
        m.get("manifest")
            .and_then(|v| v.get_attr("metadata"))
            .and_then(|md| md.get_attr("name"))
            .and_then(|n| match n {
                Value::String(s) => Some(s),
                _ => None,
            })
    }) && let Some(problem) = bad_name(&name, if kind.rotate { 54 } else { kind.max_name })
    {
        let path = if kind.is_manifest() {
            attr_path(kind, "metadata.name")
        } else {
            AttrPath::attr("name")
        };
        errors.push(
            ProviderError::new(format!("{name:?} is not a valid object name: {problem}")).at(path),
        );
    }
    if let Some(Value::Map(t)) = m.get("timeouts") {
        for (op, d) in t {
            if let Value::String(s) = d
                && flotilla_provider::parse_duration(s).is_none()
            {
                errors.push(
                    ProviderError::new(format!(
                        "timeouts.{op}: {s:?} is not a duration like \"30s\", \"5m\" or \"1h\""
                    ))
                    .at(AttrPath(vec![
                        PathStep::Key("timeouts".into()),
                        PathStep::Key(op.clone()),
                    ])),
                );
            }
        }
    }
    if kind.is_manifest() {
        let Some(manifest) = m.get("manifest").filter(|v| !v.is_unknown()) else {
            return errors;
        };
        for key in ["apiVersion", "kind", "metadata"] {
            if manifest.get_attr(key).is_none() {
                errors.push(
                    ProviderError::new(format!("the manifest needs `{key}`"))
                        .at(AttrPath::attr("manifest")),
                );
            }
        }
        if let (Some(Value::String(av)), Some(Value::String(k))) =
            (manifest.get_attr("apiVersion"), manifest.get_attr("kind"))
        {
            let group = av.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            if flotilla_ecosystems::is_generated(group, &k) {
                errors.push(ProviderError::new(format!("{k} objects are generated by their controller; flotilla does not manage them"))
                    .with_detail("read one with `data \"kube_object\"` instead")
                    .at(attr_path(kind, "kind")));
            }
            if let Some(schema) = flotilla_ecosystems::spec_schema(&av, &k)
                && let Some(spec) = manifest.get_attr("spec")
            {
                validate::check(&spec, schema, &mut attr_path(kind, "spec"), &mut errors);
            }
        }
        return errors;
    }
    if let Some(schema) = kind
        .ecosystem
        .and_then(|_| flotilla_ecosystems::spec_schema(kind.api_version, kind.kind))
        && let Some(spec) = m.get("spec")
    {
        let spec = with_defaults(kind, spec);
        validate::check(&spec, schema, &mut AttrPath::attr("spec"), &mut errors);
    }
    errors
}

/// `spec` with the values flotilla fills in when the configuration leaves them out (a
/// member's `syncMode`), so validation judges what is applied.
fn with_defaults(kind: &Kind, spec: &Value) -> Value {
    let Some(c) = kind.credentials else {
        return spec.clone();
    };
    let Value::Map(mut m) = spec.clone() else {
        return spec.clone();
    };
    for (path, value) in c.defaults {
        if let Some(key) = path.strip_prefix("spec.").filter(|k| !k.contains('.')) {
            m.entry(key.to_string())
                .or_insert_with(|| Value::string(*value));
        }
    }
    Value::Map(m)
}

/// Why a name is not a valid DNS subdomain, if it is not.
fn bad_name(name: &str, max: usize) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.len() > max {
        return Some(format!(
            "it is {} characters long; the most is {max}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Some(format!(
            "{c:?} is not allowed; use lowercase letters, digits, '-' and '.'"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

#[async_trait::async_trait]
impl Provider for KubeProvider {
    fn schema(&self) -> &ProviderSchema {
        self.schema
    }

    fn reviews(&self) -> bool {
        self.catalog.review.is_some()
    }

    fn review(&self, review: &Review<'_>) -> Vec<Finding> {
        self.catalog.review.map(|r| r(review)).unwrap_or_default()
    }

    fn references(&self, review: &Review<'_>) -> Vec<(usize, usize)> {
        self.catalog
            .references
            .map(|r| r(review))
            .unwrap_or_default()
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<ProviderError> {
        match self.kind(type_name) {
            Ok(kind) => {
                let mut errors = check(kind, config);
                if let Some(extra) = self.catalog.check {
                    errors.extend(extra(kind, config));
                }
                errors
            }
            Err(_) => Vec::new(),
        }
    }

    async fn configure(&self, config: &Value) -> ProviderResult<()> {
        let settings = Settings::from_config(config)?;
        let _ = self.settings.set(settings);
        Ok(())
    }

    async fn plan_change(&self, req: PlanRequest<'_>) -> ProviderResult<PlanResponse> {
        self.plan(req).await
    }

    async fn apply_change(&self, req: ApplyRequest<'_>) -> ProviderResult<ApplyResponse> {
        self.apply(req).await
    }

    async fn read(&self, req: ReadRequest<'_>) -> ProviderResult<ReadResponse> {
        self.refresh(req).await
    }

    async fn read_data(&self, req: ReadDataRequest<'_>) -> ProviderResult<Value> {
        self.data(req).await
    }

    async fn import(&self, req: ImportRequest<'_>) -> ProviderResult<Value> {
        self.adopt(req).await
    }

    async fn observe(
        &self,
        req: flotilla_provider::ObserveRequest<'_>,
    ) -> ProviderResult<Option<flotilla_provider::Observation>> {
        let kind = self.kind(req.type_name)?;
        let target = self.target().await?;
        let Some(loc) = self.locate(kind, req.current).await? else {
            return Ok(Some(health::missing("its kind is not served yet".into())));
        };
        let Some(live) =
            ops::get(target, &loc.resource, loc.namespace.as_deref(), &loc.name).await?
        else {
            return Ok(Some(health::missing(format!(
                "{} {} does not exist yet",
                loc.resource.kind, loc.name
            ))));
        };
        health::observe(target, &live, req.baseline).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(bad_name("web-1", 253), None);
        assert!(bad_name("Web", 253).unwrap().contains("'W'"));
        assert!(bad_name("-a", 253).is_some());
        assert!(
            bad_name(&"a".repeat(60), 54)
                .unwrap()
                .contains("60 characters")
        );
    }

    #[test]
    fn the_kube_schema_has_every_kind() {
        let s = KUBE.schema.get_or_init(|| build_schema(&KUBE));
        for t in [
            "kube_manifest",
            "kube_namespace",
            "kube_secret",
            "kube_config_map",
            "kube_crd",
        ] {
            assert!(s.resources.contains_key(t), "{t}");
        }
        assert!(s.resources["kube_secret"].block.attributes["data"].sensitive);
        assert!(s.data_sources.contains_key("kube_object"));
        assert!(s.data_sources.contains_key("kube_secret"));
    }

    #[test]
    fn a_table_that_disagrees_with_the_catalogue_is_named() {
        static WRONG: Kind = Kind {
            namespaced: false,
            ..Kind::of_crd(
                Ecosystem::Volcano,
                "volcano_job",
                "",
                "batch.volcano.sh/v1alpha1",
                "Job",
                "jobz",
            )
        };
        static TABLE: Catalog = Catalog {
            name: "volcano",
            kinds: &[&WRONG],
            ecosystems: &[],
            data_sources: false,
            check: None,
            notes: None,
            review: None,
            nodes: None,
            references: None,
            schema: OnceLock::new(),
        };
        assert_eq!(
            TABLE.mismatches(),
            [
                "volcano_job: no volcano CRD serves batch.volcano.sh/v1alpha1 Job (jobz, cluster-scoped)"
            ]
        );
    }

    #[test]
    fn generated_kinds_are_refused() {
        let config = Value::object([(
            "manifest",
            Value::from_json(
                &serde_json::json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding", "metadata": {"name": "x"}}),
            ),
        )]);
        let e = check(&kinds::MANIFEST, &config);
        assert!(
            e.iter()
                .any(|e| e.message.contains("generated by their controller")),
            "{e:?}"
        );
    }

    #[test]
    fn secrets_type_changes_replace() {
        let kind = &kinds::KUBE_KINDS[2];
        let v = |t: &str| Value::object([("name", Value::string("s")), ("type", Value::string(t))]);
        let r = static_replacements(kind, &v("Opaque"), &v("kubernetes.io/tls"));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].path, AttrPath::attr("type"));
    }
}

#[cfg(test)]
mod takeback_tests {
    use super::*;

    #[test]
    fn managed_field_paths_are_found_in_objects() {
        let obj = serde_json::json!({"data": {"region": "x"},
            "spec": {"containers": [{"name": "web", "image": "a"}], "ports": [{"port": 80, "protocol": "TCP"}]}});
        assert!(field_in(&obj, ".data.region"));
        assert!(field_in(&obj, ".spec.containers[name=\"web\"].image"));
        assert!(field_in(&obj, ".spec.ports[port=80]"));
        assert!(!field_in(&obj, ".data.owner"));
        assert!(!field_in(&obj, ".spec.containers[name=\"db\"].image"));
    }
}
