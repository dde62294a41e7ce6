//! The table every Kubernetes provider is made of: one [`Kind`] per resource type, saying
//! which Kubernetes kind it manages, how its attributes map onto the object, which changes
//! force a replacement and when the object counts as ready.

use flotilla_ecosystems::Ecosystem;

/// One resource type backed by one Kubernetes kind.
#[derive(Debug)]
pub struct Kind {
    /// The resource type, e.g. `capi_cluster`.
    pub type_name: &'static str,
    /// What it is, for docs and `--help`.
    pub description: &'static str,
    /// `group/version` (or `v1` for the core group).
    pub api_version: &'static str,
    /// The Kubernetes kind.
    pub kind: &'static str,
    /// The resource's plural name in URLs.
    pub plural: &'static str,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Attributes that become top-level fields of the object, besides the metadata.
    pub fields: &'static [Field],
    /// Dotted object paths whose change always needs a new object, whatever the server says.
    /// A trailing `?` means only adding or removing the field does.
    pub force_new: &'static [&'static str],
    /// Dotted object paths the server refuses to change in place (webhooks answer 422 or deny
    /// the request); a dry-run refused on one of these plans a replacement with the server's
    /// message as the reason. Refusals elsewhere are plan errors.
    pub immutable: &'static [&'static str],
    /// Whether the object's name carries a hash of `spec.template.spec`, so a change creates a
    /// new object under a new name (create before destroy) and the referrers move to it.
    pub rotate: bool,
    /// When the object counts as ready after a write.
    pub readiness: Readiness,
    /// The ecosystem whose CRDs define the kind (installed into sandbox clusters; the source
    /// of the offline schema).
    pub ecosystem: Option<Ecosystem>,
    /// Computed attributes read from other objects once the object is ready (a Cluster API
    /// cluster's `kubeconfig`).
    pub exports: &'static [Export],
    /// A kubeconfig attribute that becomes an access Secret and fields of the object (a
    /// Karmada member's join).
    pub credentials: Option<&'static Credentials>,
    /// The longest object name the server accepts.
    pub max_name: usize,
}

/// How a kind takes another cluster's credentials: the `attr` attribute holds a kubeconfig
/// (sensitive); flotilla writes its bearer token and CA to a Secret named like the object in
/// `secret_namespace` (creating the namespace if needed), points the object at it, and
/// removes the Secret after the object is gone.
#[derive(Debug)]
pub struct Credentials {
    /// The attribute holding the kubeconfig.
    pub attr: &'static str,
    /// What it is, for the schema.
    pub doc: &'static str,
    /// Where the Secret goes.
    pub secret_namespace: &'static str,
    /// The object's field (dotted) that gets the kubeconfig's server URL.
    pub endpoint: &'static str,
    /// The object's field (dotted) that gets `{namespace, name}` of the Secret.
    pub secret_ref: &'static str,
    /// Fields (dotted) set to a value when the configuration leaves them out.
    pub defaults: &'static [(&'static str, &'static str)],
}

/// A computed attribute read from a Secret beside the object once it is ready.
#[derive(Debug)]
pub struct Export {
    /// The attribute's name.
    pub attr: &'static str,
    /// What it holds.
    pub doc: &'static str,
    /// The Secret's name is the object's name with this suffix (`-kubeconfig`), in the
    /// object's namespace.
    pub secret_suffix: &'static str,
    /// The key of the Secret's data that holds the value.
    pub key: &'static str,
    /// Never shown.
    pub sensitive: bool,
}

impl Kind {
    /// A kind an ecosystem's CRD defines, with the defaults most rows share: namespaced, one
    /// `spec` attribute, no replace triggers, ready once accepted. Rows override the rest.
    pub const fn of_crd(
        ecosystem: Ecosystem,
        type_name: &'static str,
        description: &'static str,
        api_version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Kind {
        Kind {
            type_name,
            description,
            api_version,
            kind,
            plural,
            namespaced: true,
            fields: &[SPEC],
            force_new: &[],
            immutable: &[],
            rotate: false,
            readiness: Readiness::Accepted,
            ecosystem: Some(ecosystem),
            exports: &[],
            credentials: None,
            max_name: 253,
        }
    }

    /// The API group (empty for the core group).
    pub fn group(&self) -> &'static str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// The version.
    pub fn version(&self) -> &'static str {
        self.api_version
            .rsplit_once('/')
            .map(|(_, v)| v)
            .unwrap_or(self.api_version)
    }
}

/// An attribute stored as a top-level field of the object (`spec`, `data`, `type`).
#[derive(Debug)]
pub struct Field {
    /// The attribute's name.
    pub attr: &'static str,
    /// The object's field.
    pub key: &'static str,
    /// Its shape.
    pub shape: Shape,
    /// Must be set.
    pub required: bool,
    /// Never shown.
    pub sensitive: bool,
    /// What it means.
    pub doc: &'static str,
}

/// How an attribute's value is written into the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Any value, in upstream field names (`spec`).
    Any,
    /// A string.
    String,
    /// A map of strings.
    StringMap,
    /// A map of strings written base64-encoded (Secret `data`).
    Base64Map,
    /// The whole object (`kube_manifest`): apiVersion, kind, metadata and the rest.
    Manifest,
}

/// When a written object counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// As soon as the API server accepted it (kinds without status).
    Accepted,
    /// When the condition of this type is `True` and observes the current generation.
    Condition(&'static str),
    /// When a status field (dotted path, e.g. `status.state`) holds one of `ready`; one of
    /// `failed` is a terminal failure.
    Field {
        /// The dotted path.
        path: &'static str,
        /// Values that mean ready.
        ready: &'static [&'static str],
        /// Values that mean it failed for good.
        failed: &'static [&'static str],
    },
    /// Every entry of a status list (dotted path) has `field` equal to `ready`, and there is
    /// at least one: a KubeEdge node group's `status.nodeStatuses[].selectionStatus`.
    Entries {
        /// The list's dotted path.
        path: &'static str,
        /// The field of each entry.
        field: &'static str,
        /// The value that means ready.
        ready: &'static str,
        /// A field of the entry explaining a different value, for the wait's message.
        reason: &'static str,
    },
    /// Judged from the objects a controller made for it (a Karmada policy's bindings).
    Related(&'static Related),
    /// A workload's rollout at its current generation (Terraform's `wait_for_rollout`):
    /// Deployments, StatefulSets and DaemonSets.
    Rollout,
    /// Any kind (`kube_manifest`): a `Ready` condition when the object has one, else accepted.
    Auto,
}

impl Readiness {
    /// `status.phase` equals `value`.
    pub const fn phase(value: &'static [&'static str]) -> Readiness {
        Readiness::Field {
            path: "status.phase",
            ready: value,
            failed: &[],
        }
    }
}

/// Objects of another kind that tell whether an object is ready: those carrying the label
/// `label` with the value the object itself carries under that label, in the object's
/// namespace (or cluster-wide with `namespaced = false`). The object is ready when at least
/// one exists and every one has each of `conditions` `True` (observing its generation).
#[derive(Debug, PartialEq, Eq)]
pub struct Related {
    /// `group/version`.
    pub api_version: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// Its plural.
    pub plural: &'static str,
    /// Listed in the object's namespace (true) or cluster-wide.
    pub namespaced: bool,
    /// The label both carry.
    pub label: &'static str,
    /// Conditions each related object must have `True`.
    pub conditions: &'static [&'static str],
    /// What they are, for messages ("bindings").
    pub noun: &'static str,
    /// Objects the object names that must be ready too (the members a policy places on).
    pub named: Option<&'static Named>,
}

/// Cluster-scoped objects an object names, each of which must have `condition` `True`: a
/// Karmada policy is not done while a member it names is not Ready.
#[derive(Debug, PartialEq, Eq)]
pub struct Named {
    /// Dotted paths in the object to lists of names; `[]` steps into every element of a
    /// list (`spec.placement.replicaScheduling.weightPreference.staticWeightList[].targetCluster.clusterNames`).
    pub paths: &'static [&'static str],
    /// `group/version`.
    pub api_version: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// Its plural.
    pub plural: &'static str,
    /// The condition each must have `True`.
    pub condition: &'static str,
}

impl Named {
    /// The names an object gives at the paths, in order, without repeats.
    pub fn names(&self, obj: &serde_json::Value) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for path in self.paths {
            let mut at = vec![obj];
            for step in path.split('.') {
                let (key, each) = match step.strip_suffix("[]") {
                    Some(k) => (k, true),
                    None => (step, false),
                };
                at = at
                    .into_iter()
                    .map(|v| &v[key])
                    .flat_map(|v| match (each, v.as_array()) {
                        (true, Some(items)) => items.iter().collect::<Vec<_>>(),
                        _ => vec![v],
                    })
                    .collect();
            }
            for v in at {
                for name in v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str())
                {
                    if !out.iter().any(|o| o == name) {
                        out.push(name.to_string());
                    }
                }
            }
        }
        out
    }
}

/// The `spec` attribute of a kind defined by a CRD.
pub const SPEC: Field = Field {
    attr: "spec",
    key: "spec",
    shape: Shape::Any,
    required: true,
    sensitive: false,
    doc: "The object's `spec`, in the kind's upstream field names (camelCase).",
};

/// `kube_manifest`: any object, given whole.
pub static MANIFEST: Kind = Kind {
    type_name: "kube_manifest",
    description: "Any Kubernetes object, given whole in upstream field names: `manifest = { apiVersion, kind, metadata, ... }`.",
    api_version: "",
    kind: "",
    plural: "",
    namespaced: true,
    fields: &[Field {
        attr: "manifest",
        key: "",
        shape: Shape::Manifest,
        required: true,
        sensitive: false,
        doc: "The object: `apiVersion`, `kind`, `metadata` (`name`, optional `namespace`) and the rest of its fields.",
    }],
    force_new: &["apiVersion", "kind", "metadata.name", "metadata.namespace"],
    immutable: &[],
    rotate: false,
    readiness: Readiness::Auto,
    ecosystem: None,
    exports: &[],
    credentials: None,
    max_name: 253,
};

/// When an object applied with `kube_manifest` is ready, by its kind: kinds whose
/// controllers report a `Ready` condition wait for it even before the first status arrives
/// (a Flux HelmRelease is ready once its chart is installed, a Kyverno policy once its
/// webhooks serve it); workloads wait for their rollout at the new generation; every other
/// kind waits for `Ready` if it has one, else is ready once accepted.
pub fn manifest_readiness(api_version: &str, kind: &str) -> Readiness {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    match (group, kind) {
        ("helm.toolkit.fluxcd.io", "HelmRelease")
        | ("source.toolkit.fluxcd.io", "HelmRepository" | "GitRepository" | "OCIRepository")
        | ("kustomize.toolkit.fluxcd.io", "Kustomization")
        | ("kyverno.io", "ClusterPolicy" | "Policy") => Readiness::Condition("Ready"),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet") => Readiness::Rollout,
        _ => Readiness::Auto,
    }
}

impl Kind {
    /// Whether this is `kube_manifest`.
    pub fn is_manifest(&self) -> bool {
        self.fields
            .first()
            .is_some_and(|f| f.shape == Shape::Manifest)
    }
}

/// The generic kinds of the `kube` provider.
pub static KUBE_KINDS: &[Kind] = &[
    Kind {
        type_name: "kube_namespace",
        description: "A Namespace.",
        api_version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
        fields: &[],
        force_new: &[],
        immutable: &[],
        rotate: false,
        readiness: Readiness::phase(&["Active"]),
        ecosystem: None,
        exports: &[],
        credentials: None,
        max_name: 253,
    },
    Kind {
        type_name: "kube_config_map",
        description: "A ConfigMap.",
        api_version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        fields: &[Field {
            attr: "data",
            key: "data",
            shape: Shape::StringMap,
            required: false,
            sensitive: false,
            doc: "The ConfigMap's data: string keys and values.",
        }],
        force_new: &[],
        immutable: &[],
        rotate: false,
        readiness: Readiness::Accepted,
        ecosystem: None,
        exports: &[],
        credentials: None,
        max_name: 253,
    },
    Kind {
        type_name: "kube_secret",
        description: "A Secret. `data` holds plain strings (flotilla encodes them) and is sensitive.",
        api_version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
        fields: &[
            Field {
                attr: "data",
                key: "data",
                shape: Shape::Base64Map,
                required: false,
                sensitive: true,
                doc: "The Secret's data as plain strings; never shown.",
            },
            Field {
                attr: "type",
                key: "type",
                shape: Shape::String,
                required: false,
                sensitive: false,
                doc: "The Secret's type, default \"Opaque\"; changing it replaces the Secret.",
            },
        ],
        force_new: &["type"],
        immutable: &["type"],
        rotate: false,
        readiness: Readiness::Accepted,
        ecosystem: None,
        exports: &[],
        credentials: None,
        max_name: 253,
    },
    Kind {
        type_name: "kube_crd",
        description: "A CustomResourceDefinition; ready once `Established`.",
        api_version: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        namespaced: false,
        fields: &[SPEC],
        force_new: &["spec.group", "spec.names.plural", "spec.scope"],
        immutable: &["spec.group", "spec.names.plural", "spec.scope"],
        rotate: false,
        readiness: Readiness::Condition("Established"),
        ecosystem: None,
        exports: &[],
        credentials: None,
        max_name: 253,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_of_reporting_kinds_wait_for_ready() {
        assert_eq!(
            manifest_readiness("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
            Readiness::Condition("Ready")
        );
        assert_eq!(
            manifest_readiness("kyverno.io/v1", "ClusterPolicy"),
            Readiness::Condition("Ready")
        );
        assert_eq!(manifest_readiness("v1", "ConfigMap"), Readiness::Auto);
        assert_eq!(
            manifest_readiness("apps/v1", "Deployment"),
            Readiness::Rollout
        );
    }
}
