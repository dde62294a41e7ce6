//! Resource types a sandbox cluster serves: the built-in kinds and one per established
//! CustomResourceDefinition, with what discovery says about each.

use crate::schema::{ListType, Schema, loose};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Built-in kinds with their own validation and defaulting (see `builtin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Namespace,
    Secret,
    ConfigMap,
    Service,
    ServiceAccount,
    Deployment,
    ReplicaSet,
    Crd,
    Lease,
    Node,
    Event,
    /// `rbac.authorization.k8s.io` roles and bindings (stored, not enforced: the sandbox
    /// authorizes every holder of a cluster's token).
    Rbac,
}

/// A column of `kubectl get` output (`additionalPrinterColumns` for custom resources).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub type_name: String,
    pub json_path: String,
    pub priority: i64,
    pub description: String,
}

/// One served resource: a group, its served versions, and how it behaves.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, highest priority first.
    pub versions: Vec<String>,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub status_subresource: bool,
    pub has_generation: bool,
    pub builtin: Option<Builtin>,
    /// Schema per served version (custom resources); built-ins share one loose schema.
    pub schemas: BTreeMap<String, Arc<Schema>>,
    pub columns: BTreeMap<String, Vec<Column>>,
    /// The CRD's name, for custom resources.
    pub crd: Option<String>,
    pub terminating: bool,
}

impl ResourceType {
    pub fn schema(&self, version: &str) -> Arc<Schema> {
        self.schemas
            .get(version)
            .or_else(|| self.schemas.values().next())
            .cloned()
            .unwrap_or_else(|| Arc::new(loose()))
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    /// The APIResource entries for discovery at `version`: the resource and its subresources.
    pub fn discovery(&self) -> Vec<Value> {
        let verbs = json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]);
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut out = vec![main];
        if self.status_subresource {
            out.push(json!({"name": format!("{}/status", self.plural), "singularName": "", "namespaced": self.namespaced, "kind": self.kind, "verbs": ["get", "patch", "update"]}));
        }
        if self.builtin == Some(Builtin::Namespace) {
            out.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
        }
        out
    }
}

fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    builtin: Builtin,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        versions: vec![version.into()],
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        short_names: Vec::new(),
        categories: Vec::new(),
        namespaced,
        status_subresource: false,
        has_generation: false,
        builtin: Some(builtin),
        schemas: BTreeMap::new(),
        columns: BTreeMap::new(),
        crd: None,
        terminating: false,
    }
}

fn with_schema(mut rt: ResourceType, schema: Schema) -> ResourceType {
    rt.schemas.insert(rt.versions[0].clone(), Arc::new(schema));
    rt
}

fn short(mut rt: ResourceType, names: &[&str]) -> ResourceType {
    rt.short_names = names.iter().map(|s| s.to_string()).collect();
    rt
}

/// List semantics of ObjectMeta, shared by every kind.
fn meta_schema() -> Schema {
    loose()
        .with_list("metadata.finalizers", ListType::Set)
        .with_list(
            "metadata.ownerReferences",
            ListType::Map(vec!["uid".into()]),
        )
}

/// The pod template's lists, as the built-in OpenAPI declares them.
fn pod_template(schema: Schema, prefix: &str) -> Schema {
    let name = || ListType::Map(vec!["name".into()]);
    schema
        .with_list(&format!("{prefix}.containers"), name())
        .with_list(&format!("{prefix}.initContainers"), name())
        .with_list(&format!("{prefix}.volumes"), name())
        .with_list(&format!("{prefix}.imagePullSecrets"), name())
        .with_list(&format!("{prefix}.containers.[].env"), name())
        .with_list(
            &format!("{prefix}.containers.[].volumeMounts"),
            ListType::Map(vec!["mountPath".into()]),
        )
        .with_list(
            &format!("{prefix}.containers.[].ports"),
            ListType::Map(vec!["containerPort".into(), "protocol".into()]),
        )
}

/// Every built-in kind the sandbox serves.
pub fn builtins() -> Vec<ResourceType> {
    let conditions = || ListType::Map(vec!["type".into()]);
    let mut deployment = builtin(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        Builtin::Deployment,
    );
    deployment.short_names = vec!["deploy".into()];
    deployment.categories = vec!["all".into()];
    deployment.status_subresource = true;
    deployment.has_generation = true;
    let deployment = with_schema(
        deployment,
        pod_template(meta_schema(), "spec.template.spec")
            .with_list("status.conditions", conditions()),
    );

    let mut replica_set = builtin(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        Builtin::ReplicaSet,
    );
    replica_set.short_names = vec!["rs".into()];
    replica_set.categories = vec!["all".into()];
    replica_set.status_subresource = true;
    replica_set.has_generation = true;
    let replica_set = with_schema(
        replica_set,
        pod_template(meta_schema(), "spec.template.spec")
            .with_list("status.conditions", conditions()),
    );

    let mut service = short(
        builtin("", "v1", "Service", "services", true, Builtin::Service),
        &["svc"],
    );
    service.categories = vec!["all".into()];
    service.status_subresource = true;
    let service = with_schema(
        service,
        meta_schema().with_list(
            "spec.ports",
            ListType::Map(vec!["port".into(), "protocol".into()]),
        ),
    );

    let mut namespace = short(
        builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            Builtin::Namespace,
        ),
        &["ns"],
    );
    namespace.status_subresource = true;
    let namespace = with_schema(
        namespace,
        meta_schema()
            .with_list("spec.finalizers", ListType::Set)
            .with_list("status.conditions", conditions()),
    );

    let mut crd = short(
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            Builtin::Crd,
        ),
        &["crd", "crds"],
    );
    crd.status_subresource = true;
    crd.has_generation = true;
    let crd = with_schema(
        crd,
        meta_schema()
            .with_list("spec.versions", ListType::Map(vec!["name".into()]))
            .with_list("status.conditions", conditions())
            .with_list("status.storedVersions", ListType::Atomic),
    );

    let mut node = short(
        builtin("", "v1", "Node", "nodes", false, Builtin::Node),
        &["no"],
    );
    node.status_subresource = true;
    let node = with_schema(
        node,
        meta_schema().with_list("status.conditions", conditions()),
    );

    vec![
        namespace,
        with_schema(
            builtin("", "v1", "Secret", "secrets", true, Builtin::Secret),
            meta_schema(),
        ),
        with_schema(
            short(
                builtin(
                    "",
                    "v1",
                    "ConfigMap",
                    "configmaps",
                    true,
                    Builtin::ConfigMap,
                ),
                &["cm"],
            ),
            meta_schema(),
        ),
        service,
        with_schema(
            short(
                builtin(
                    "",
                    "v1",
                    "ServiceAccount",
                    "serviceaccounts",
                    true,
                    Builtin::ServiceAccount,
                ),
                &["sa"],
            ),
            meta_schema().with_list("secrets", ListType::Map(vec!["name".into()])),
        ),
        node,
        with_schema(
            short(
                builtin("", "v1", "Event", "events", true, Builtin::Event),
                &["ev"],
            ),
            meta_schema(),
        ),
        deployment,
        replica_set,
        crd,
        with_schema(
            builtin(
                "coordination.k8s.io",
                "v1",
                "Lease",
                "leases",
                true,
                Builtin::Lease,
            ),
            meta_schema(),
        ),
        rbac("ClusterRole", "clusterroles", false),
        rbac("ClusterRoleBinding", "clusterrolebindings", false),
        rbac("Role", "roles", true),
        rbac("RoleBinding", "rolebindings", true),
    ]
}

fn rbac(kind: &str, plural: &str, namespaced: bool) -> ResourceType {
    with_schema(
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            kind,
            plural,
            namespaced,
            Builtin::Rbac,
        ),
        meta_schema()
            .with_list("rules", ListType::Atomic)
            .with_list("subjects", ListType::Atomic),
    )
}

/// Kubernetes version ordering: GA before beta before alpha, higher numbers first, then others
/// alphabetically.
pub fn version_priority(version: &str) -> (u8, i64, i64, String) {
    let parse = |rest: &str| -> Option<(u8, i64, i64)> {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: i64 = rest[..digits_end].parse().ok()?;
        let tail = &rest[digits_end..];
        if tail.is_empty() {
            return Some((0, -major, 0));
        }
        for (level, prefix) in [(1u8, "beta"), (2u8, "alpha")] {
            if let Some(minor) = tail.strip_prefix(prefix) {
                let minor: i64 = minor.parse().ok()?;
                return Some((level, -major, -minor));
            }
        }
        None
    };
    match version.strip_prefix('v').and_then(parse) {
        Some((level, major, minor)) => (level, major, minor, String::new()),
        None => (3, 0, 0, version.to_string()),
    }
}

/// Parses a CustomResourceDefinition into the resource type it serves. The CRD has already
/// passed validation, so missing pieces fall back to defaults instead of failing.
pub fn from_crd(crd: &Value) -> Result<ResourceType, String> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    let mut versions: Vec<&Value> = spec["versions"]
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    versions.retain(|v| v["served"].as_bool().unwrap_or(false));
    versions.sort_by_key(|v| version_priority(v["name"].as_str().unwrap_or_default()));
    let mut schemas = BTreeMap::new();
    let mut columns = BTreeMap::new();
    let mut status_subresource = false;
    for v in &versions {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let schema = match v.pointer("/schema/openAPIV3Schema") {
            Some(doc) => Schema::parse(
                doc,
                &format!("spec.versions[{name}].schema.openAPIV3Schema"),
            )?,
            None => loose(),
        };
        schemas.insert(name.clone(), Arc::new(schema));
        status_subresource |= v.pointer("/subresources/status").is_some();
        let cols: Vec<Column> = v["additionalPrinterColumns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| Column {
                        name: c["name"].as_str().unwrap_or_default().to_string(),
                        type_name: c["type"].as_str().unwrap_or("string").to_string(),
                        json_path: c["jsonPath"].as_str().unwrap_or_default().to_string(),
                        priority: c["priority"].as_i64().unwrap_or(0),
                        description: c["description"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        columns.insert(name, cols);
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(ResourceType {
        group: spec["group"].as_str().unwrap_or_default().to_string(),
        versions: versions
            .iter()
            .map(|v| v["name"].as_str().unwrap_or_default().to_string())
            .collect(),
        list_kind: names["listKind"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{kind}List")),
        plural: names["plural"].as_str().unwrap_or_default().to_string(),
        singular: names["singular"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase()),
        short_names: strings(&names["shortNames"]),
        categories: strings(&names["categories"]),
        kind,
        namespaced: spec["scope"].as_str() == Some("Namespaced"),
        status_subresource,
        has_generation: true,
        builtin: None,
        schemas,
        columns,
        crd: crd["metadata"]["name"].as_str().map(str::to_string),
        terminating: crd.pointer("/metadata/deletionTimestamp").is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec![
            "v1alpha1",
            "foo",
            "v1beta1",
            "v2",
            "v1",
            "v1beta2",
            "v10alpha1",
        ];
        v.sort_by_key(|s| version_priority(s));
        assert_eq!(
            v,
            vec![
                "v2",
                "v1",
                "v1beta2",
                "v1beta1",
                "v10alpha1",
                "v1alpha1",
                "foo"
            ]
        );
    }

    #[test]
    fn crd_becomes_a_resource_type() {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1alpha1", "served": true, "storage": false},
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v0", "served": false, "storage": false}]}});
        let rt = from_crd(&crd).unwrap();
        assert_eq!(rt.versions, vec!["v1", "v1alpha1"]);
        assert_eq!(
            (rt.singular.as_str(), rt.list_kind.as_str()),
            ("widget", "WidgetList")
        );
        assert!(rt.status_subresource && rt.namespaced && rt.is_custom());
        assert_eq!(rt.discovery().len(), 2);
    }
}
