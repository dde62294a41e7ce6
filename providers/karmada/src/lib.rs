//! The Karmada provider (`karmada`), on a Karmada control plane: members joined in Push mode,
//! propagation and override policies, federated autoscalers and multi-cluster services.
//!
//! Every kind is a row of [`KINDS`], run by the shared Kubernetes runtime; the facts per kind
//! come from the upstream API types and webhooks (see docs/providers/karmada.md):
//!
//! - `karmada_cluster` joins a member from its kubeconfig: flotilla writes the access Secret
//!   (`karmada-cluster/<name>`, token and CA), points the Cluster at it, waits for `Ready`,
//!   and on destroy removes the Cluster and then the Secret;
//! - a `karmada_propagation_policy` is ready when the bindings it made are `Scheduled` and
//!   `FullyApplied`;
//! - `spec.schedulerName` of a policy and `spec.types` of a MultiClusterService never change
//!   in place; a Cluster's `syncMode` or endpoint is a new registration;
//! - ResourceBindings and Works are the controllers': read them with `data "kube_object"`.

use std::sync::{Arc, OnceLock};

use flotilla_ecosystems::Ecosystem;
use flotilla_lang::{AttrPath, PathStep};
use flotilla_provider::{
    Finding, Provider, ProviderError, ProviderHost, Review, ReviewedResource, Value,
};
use flotilla_provider_kube::kinds::SPEC;
use flotilla_provider_kube::{
    Catalog, Credentials, Field, Kind, KubeProvider, Named, Readiness, Related,
};

/// The provider's name.
pub const NAME: &str = "karmada";

/// The ecosystem whose CRDs define these kinds.
pub const ECOSYSTEM: Ecosystem = Ecosystem::Karmada;

/// A member's join: its kubeconfig becomes the access Secret Karmada's Push mode reads.
static JOIN: Credentials = Credentials {
    attr: "kubeconfig",
    doc: "The member's kubeconfig (e.g. `capi_cluster.x.kubeconfig` or `data.kube_connection.x.kubeconfig`); its bearer token and CA go into the Secret `karmada-cluster/NAME`.",
    secret_namespace: "karmada-cluster",
    endpoint: "spec.apiEndpoint",
    secret_ref: "spec.secretRef",
    defaults: &[("spec.syncMode", "Push")],
};

/// A policy's bindings: the ResourceBindings carrying its permanent id.
static BINDINGS: Related = Related {
    api_version: "work.karmada.io/v1alpha2",
    kind: "ResourceBinding",
    plural: "resourcebindings",
    namespaced: true,
    label: PERMANENT_ID,
    conditions: &["Scheduled", "FullyApplied"],
    noun: "bindings",
    named: Some(&MEMBERS),
};

/// The members a policy names: each must be Ready for the policy to be done.
static MEMBERS: Named = Named {
    paths: &[
        "spec.placement.clusterAffinity.clusterNames",
        "spec.placement.replicaScheduling.weightPreference.staticWeightList[].targetCluster.clusterNames",
    ],
    api_version: "cluster.karmada.io/v1alpha1",
    kind: "Cluster",
    plural: "clusters",
    condition: "Ready",
};

/// The label Karmada's webhook gives each policy and its controllers copy to its bindings.
const PERMANENT_ID: &str = "propagationpolicy.karmada.io/permanent-id";

/// The Karmada kinds.
pub static KINDS: [Kind; 7] = [
    Kind {
        namespaced: false,
        fields: &[Field {
            required: false,
            doc: "The Cluster's `spec` in upstream field names (`syncMode` default Push, `region`, `zone`, `provider`, `taints`); `apiEndpoint` and `secretRef` come from `kubeconfig`.",
            ..SPEC
        }],
        force_new: &["spec.syncMode", "spec.apiEndpoint"],
        readiness: Readiness::Condition("Ready"),
        credentials: Some(&JOIN),
        max_name: 48,
        ..Kind::of_crd(
            ECOSYSTEM,
            "karmada_cluster",
            "A member cluster joined in Push mode; ready when Karmada reports it Ready.",
            "cluster.karmada.io/v1alpha1",
            "Cluster",
            "clusters",
        )
    },
    Kind {
        force_new: &["spec.schedulerName"],
        immutable: &["spec.schedulerName"],
        readiness: Readiness::Related(&BINDINGS),
        ..Kind::of_crd(
            ECOSYSTEM,
            "karmada_propagation_policy",
            "Which members the resource templates it selects go to; ready when their bindings are Scheduled and FullyApplied.",
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            "propagationpolicies",
        )
    },
    Kind {
        namespaced: false,
        force_new: &["spec.schedulerName"],
        immutable: &["spec.schedulerName"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "karmada_cluster_propagation_policy",
            "A PropagationPolicy for templates in every namespace and cluster-scoped ones.",
            "policy.karmada.io/v1alpha1",
            "ClusterPropagationPolicy",
            "clusterpropagationpolicies",
        )
    },
    Kind::of_crd(
        ECOSYSTEM,
        "karmada_override_policy",
        "Changes to the copies of selected templates, per member.",
        "policy.karmada.io/v1alpha1",
        "OverridePolicy",
        "overridepolicies",
    ),
    Kind {
        namespaced: false,
        ..Kind::of_crd(
            ECOSYSTEM,
            "karmada_cluster_override_policy",
            "An OverridePolicy for templates in every namespace.",
            "policy.karmada.io/v1alpha1",
            "ClusterOverridePolicy",
            "clusteroverridepolicies",
        )
    },
    Kind::of_crd(
        ECOSYSTEM,
        "karmada_federated_hpa",
        "Autoscaling of a template's replicas across members (it owns the template's `replicas`).",
        "autoscaling.karmada.io/v1alpha1",
        "FederatedHPA",
        "federatedhpas",
    ),
    Kind {
        force_new: &["spec.types"],
        immutable: &["spec.types"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "karmada_multi_cluster_service",
            "A Service reachable across members; `spec.types` never changes in place.",
            "networking.karmada.io/v1alpha1",
            "MultiClusterService",
            "multiclusterservices",
        )
    },
];

/// The provider's table.
pub static CATALOG: Catalog = Catalog {
    name: NAME,
    kinds: &[
        &KINDS[0], &KINDS[1], &KINDS[2], &KINDS[3], &KINDS[4], &KINDS[5], &KINDS[6],
    ],
    ecosystems: &[ECOSYSTEM],
    data_sources: false,
    check: Some(check),
    notes: Some(placement),
    review: Some(review),
    nodes: None,
    references: None,
    schema: OnceLock::new(),
};

/// A new instance, for the provider registry.
pub fn factory(host: &Arc<ProviderHost>) -> Arc<dyn Provider> {
    Arc::new(KubeProvider::new(&CATALOG, host))
}

/// The rules Karmada's policy webhook enforces that a schema cannot say.
fn check(kind: &Kind, config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    if !kind.kind.ends_with("PropagationPolicy") {
        return errors;
    }
    let at = |path: &[&str]| {
        AttrPath(
            std::iter::once("spec")
                .chain(path.iter().copied())
                .map(|s| PathStep::Key(s.to_string()))
                .collect(),
        )
    };
    let get = |path: &[&str]| -> Option<Value> {
        path.iter()
            .try_fold(config.get_attr("spec")?, |v, k| v.get_attr(k))
            .filter(|v| !v.is_null() && !v.is_unknown())
    };
    let text = |path: &[&str]| match get(path).map(|v| v.unmark().0) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let scheduling = ["placement", "replicaScheduling"];
    let ty = text(&["placement", "replicaScheduling", "replicaSchedulingType"]);
    let preference = text(&[
        "placement",
        "replicaScheduling",
        "replicaDivisionPreference",
    ]);
    if ty.as_deref() == Some("Duplicated") && preference.is_some() {
        errors.push(
            ProviderError::new(
                "replicaDivisionPreference applies only to replicaSchedulingType = \"Divided\"",
            )
            .with_detail("Duplicated gives every member the template's replicas; drop replicaDivisionPreference or divide the replicas")
            .at(at(&[scheduling[0], scheduling[1], "replicaDivisionPreference"])),
        );
    }
    let weights = get(&["placement", "replicaScheduling", "weightPreference"]);
    if weights.is_some() && preference.as_deref() == Some("Aggregated") {
        errors.push(
            ProviderError::new(
                "weightPreference applies only to replicaDivisionPreference = \"Weighted\"",
            )
            .with_detail("Aggregated puts the replicas on as few members as fit; drop weightPreference or weigh the members")
            .at(at(&[scheduling[0], scheduling[1], "weightPreference"])),
        );
    }
    if get(&["placement", "clusterAffinity"]).is_some()
        && get(&["placement", "clusterAffinities"]).is_some()
    {
        errors.push(
            ProviderError::new("clusterAffinity and clusterAffinities cannot both be set")
                .with_detail("use clusterAffinities for ordered groups of members, or clusterAffinity for one")
                .at(at(&["placement", "clusterAffinities"])),
        );
    }
    errors
}

/// Checks across the configuration: members a policy names that no `karmada_cluster` joins
/// (an error), and resource templates on a Karmada control plane that no policy in the
/// configuration selects (a warning: Karmada runs them nowhere).
fn review(review: &Review<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let text = |v: &Value, path: &[&str]| -> Option<String> {
        let v = path.iter().try_fold(v.clone(), |v, k| v.get_attr(k))?;
        match v.unmark().0 {
            Value::String(s) => Some(s),
            _ => None,
        }
    };
    let members: Vec<String> = review
        .resources
        .iter()
        .filter(|r| r.type_name == "karmada_cluster")
        .filter_map(|r| text(r.value, &["name"]))
        .collect();
    let joins_unknown = review
        .resources
        .iter()
        .any(|r| r.type_name == "karmada_cluster" && text(r.value, &["name"]).is_none());
    let policies: Vec<(usize, &ReviewedResource<'_>)> = review
        .resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.type_name.ends_with("propagation_policy"))
        .collect();
    if !members.is_empty() && !joins_unknown {
        for (i, p) in &policies {
            let spec = p.value.get_attr("spec").unwrap_or(Value::Null).to_json();
            let placement = &spec["placement"];
            let lists = std::iter::once((
                vec!["placement", "clusterAffinity", "clusterNames"],
                &placement["clusterAffinity"]["clusterNames"],
            ))
            .chain(
                placement["replicaScheduling"]["weightPreference"]["staticWeightList"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| {
                        (
                            vec![
                                "placement",
                                "replicaScheduling",
                                "weightPreference",
                                "staticWeightList",
                            ],
                            &w["targetCluster"]["clusterNames"],
                        )
                    }),
            );
            for (path, names) in lists {
                for name in names
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str())
                {
                    if members.iter().any(|m| m == name) {
                        continue;
                    }
                    let hint = match flotilla_provider::did_you_mean(
                        name,
                        members.iter().map(String::as_str),
                    ) {
                        Some(s) => format!("did you mean \"{s}\"?"),
                        None => format!("this configuration joins {}.", list(&members)),
                    };
                    findings.push(Finding {
                        resource: *i,
                        error: ProviderError::new(format!(
                            "the policy names member \"{name}\", which no karmada_cluster in this configuration joins"
                        ))
                        .with_detail(format!(
                            "{hint} Karmada places nothing on a member it does not know."
                        ))
                        .at(AttrPath(
                            std::iter::once("spec")
                                .chain(path.iter().copied())
                                .map(|s| PathStep::Key(s.to_string()))
                                .collect(),
                        )),
                        warning: false,
                    });
                }
            }
        }
    }
    // The kube provider blocks that reach a Karmada control plane: the same connection as
    // a `karmada` provider block.
    let connection = |config: &Value| {
        (!config.contains_unknown())
            .then(|| flotilla_provider_kube::Settings::from_config(config).ok())
            .flatten()
    };
    let planes: Vec<flotilla_provider_kube::Settings> = review
        .providers
        .iter()
        .filter(|p| p.name == NAME)
        .filter_map(|p| connection(&p.config))
        .collect();
    let on_plane: Vec<&str> = review
        .providers
        .iter()
        .filter(|p| p.name == "kube" && connection(&p.config).is_some_and(|c| planes.contains(&c)))
        .map(|p| p.address.as_str())
        .collect();
    for (i, r) in review.resources.iter().enumerate() {
        if r.type_name != "kube_manifest" || !on_plane.contains(&r.provider.as_str()) {
            continue;
        }
        let manifest = r.value.get_attr("manifest").unwrap_or(Value::Null);
        if manifest.contains_unknown() {
            continue;
        }
        let m = manifest.to_json();
        let (api_version, kind) = (
            m["apiVersion"].as_str().unwrap_or(""),
            m["kind"].as_str().unwrap_or(""),
        );
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if kind == "Namespace"
            || group == "apiextensions.k8s.io"
            || Ecosystem::of_group(group).is_some()
        {
            continue;
        }
        let selected = policies.iter().any(|(_, p)| selects(p.value, &m));
        if !selected {
            let name = m["metadata"]["name"].as_str().unwrap_or("?");
            let ns = m["metadata"]["namespace"].as_str().unwrap_or("default");
            findings.push(Finding {
                resource: i,
                error: ProviderError::new(format!(
                    "{kind} {ns}/{name} is a resource template on a Karmada control plane, and no propagation policy in this configuration selects it: Karmada will not place it on any member"
                ))
                .with_detail("add a karmada_propagation_policy whose resourceSelectors name it, or create it in a member cluster instead")
                .at(AttrPath(vec![PathStep::Key("manifest".into())])),
                warning: true,
            });
        }
    }
    findings
}

/// Whether a (Cluster)PropagationPolicy's selectors pick an object (unknown parts count as
/// picking it).
fn selects(policy: &Value, obj: &serde_json::Value) -> bool {
    let spec = policy.get_attr("spec").unwrap_or(Value::Null);
    let namespace = policy.get_attr("namespace").unwrap_or(Value::Null);
    if spec.contains_unknown() || namespace.contains_unknown() {
        return true;
    }
    let p = policy.to_json();
    let scoped = p.get("namespace").and_then(|n| n.as_str());
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
    p["spec"]["resourceSelectors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|sel| {
            let same = |k: &str| sel[k] == obj[k];
            let in_ns = match sel["namespace"].as_str().or(scoped) {
                Some(want) => want == ns,
                None => true,
            };
            let named = match sel["name"].as_str() {
                Some(n) => Some(n) == obj["metadata"]["name"].as_str(),
                None => sel["labelSelector"]["matchLabels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .all(|(k, v)| obj["metadata"]["labels"][k] == *v),
            };
            same("apiVersion") && same("kind") && in_ns && named
        })
}

/// Where a propagation policy places what it selects, when its configuration names the
/// members: "places Deployment apps/web on beijing and shanghai, replicas divided 2:1".
fn placement(kind: &Kind, planned: &Value) -> Vec<String> {
    if !kind.kind.ends_with("PropagationPolicy") || planned.contains_sensitive() {
        return Vec::new();
    }
    let json = planned.to_json();
    let spec = &json["spec"];
    let namespace = json["namespace"].as_str();
    let templates: Vec<String> = spec["resourceSelectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|sel| {
            let kind = sel["kind"].as_str()?;
            let ns = sel["namespace"].as_str().or(namespace);
            Some(match (sel["name"].as_str(), ns) {
                (Some(name), Some(ns)) => format!("{kind} {ns}/{name}"),
                (Some(name), None) => format!("{kind} {name}"),
                (None, _) if !sel["labelSelector"].is_null() => {
                    format!("the {kind}s it selects by label")
                }
                (None, Some(ns)) => format!("every {kind} in {ns}"),
                (None, None) => format!("every {kind}"),
            })
        })
        .collect();
    let placement = &spec["placement"];
    let weights: Vec<(Vec<String>, i64)> =
        placement["replicaScheduling"]["weightPreference"]["staticWeightList"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| {
                let names = names(&w["targetCluster"]["clusterNames"])?;
                Some((names, w["weight"].as_i64()?))
            })
            .collect();
    let members = names(&placement["clusterAffinity"]["clusterNames"]).or_else(|| {
        (!weights.is_empty()).then(|| weights.iter().flat_map(|(n, _)| n.clone()).collect())
    });
    let (Some(members), false) = (members, templates.is_empty()) else {
        return Vec::new();
    };
    let scheduling = &placement["replicaScheduling"];
    // Replicas only mean something for the kinds that have them.
    let replicated = spec["resourceSelectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|sel| sel["kind"].as_str())
        .any(|k| matches!(k, "Deployment" | "StatefulSet" | "ReplicaSet" | "Job"));
    let how = match scheduling["replicaSchedulingType"].as_str() {
        _ if !replicated => String::new(),
        Some("Divided") if !weights.is_empty() => format!(
            ", replicas divided {}",
            weights
                .iter()
                .map(|(n, w)| format!("{w} ({})", n.join(", ")))
                .collect::<Vec<_>>()
                .join(" : ")
        ),
        Some("Divided") => ", replicas divided between them".to_string(),
        _ => ", each with all replicas".to_string(),
    };
    vec![format!(
        "places {} on {}{how}",
        list(&templates),
        list(&members)
    )]
}

/// The cluster names of a list, when every one is known.
fn names(v: &serde_json::Value) -> Option<Vec<String>> {
    let list = v.as_array().filter(|l| !l.is_empty())?;
    list.iter()
        .map(|n| n.as_str().map(str::to_string))
        .collect()
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<dyn Provider> {
        factory(&Arc::new(ProviderHost::new()))
    }

    #[test]
    fn every_kind_has_a_schema_in_the_karmada_crds() {
        let p = provider();
        assert_eq!(CATALOG.mismatches(), Vec::<String>::new());
        for kind in &KINDS {
            assert!(p.schema().resources.contains_key(kind.type_name));
        }
        let cluster = &p.schema().resources["karmada_cluster"];
        assert!(cluster.block.attributes["kubeconfig"].sensitive);
        assert!(!cluster.block.attributes["spec"].required);
    }

    fn policy(spec: Value) -> Vec<String> {
        let config = Value::object([("name", Value::string("web")), ("spec", spec)]);
        provider()
            .validate("karmada_propagation_policy", &config)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    fn selectors() -> (&'static str, Value) {
        (
            "resourceSelectors",
            Value::List(vec![Value::object([
                ("apiVersion", Value::string("apps/v1")),
                ("kind", Value::string("Deployment")),
            ])]),
        )
    }

    #[test]
    fn the_plan_says_where_templates_land() {
        let planned = Value::from_json(&serde_json::json!({
            "name": "web", "namespace": "apps",
            "spec": {
                "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
                "placement": {
                    "clusterAffinity": {"clusterNames": ["beijing", "shanghai"]},
                    "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                        "weightPreference": {"staticWeightList": [
                            {"targetCluster": {"clusterNames": ["beijing"]}, "weight": 2},
                            {"targetCluster": {"clusterNames": ["shanghai"]}, "weight": 1}]}}}}}));
        assert_eq!(
            placement(&KINDS[1], &planned),
            [
                "places Deployment apps/web on beijing and shanghai, replicas divided 2 (beijing) : 1 (shanghai)"
            ]
        );
        let duplicated = Value::from_json(&serde_json::json!({
            "name": "cm", "spec": {"resourceSelectors": [{"apiVersion": "v1", "kind": "ConfigMap"}],
                "placement": {"clusterAffinity": {"clusterNames": ["a", "b", "c"]}}}}));
        assert_eq!(
            placement(&KINDS[2], &duplicated),
            ["places every ConfigMap on a, b and c"]
        );
        let unknown = Value::object([("name", Value::string("x")), ("spec", Value::Unknown)]);
        assert!(placement(&KINDS[1], &unknown).is_empty());
        assert!(placement(&KINDS[3], &planned).is_empty());
    }

    #[test]
    fn placement_rules_upstream_refuses_are_caught_offline() {
        let scheduling = |ty: &str, pref: &str| {
            Value::object([
                selectors(),
                (
                    "placement",
                    Value::object([(
                        "replicaScheduling",
                        Value::object([
                            ("replicaSchedulingType", Value::string(ty)),
                            ("replicaDivisionPreference", Value::string(pref)),
                            (
                                "weightPreference",
                                Value::object([(
                                    "dynamicWeight",
                                    Value::string("AvailableReplicas"),
                                )]),
                            ),
                        ]),
                    )]),
                ),
            ])
        };
        let e = policy(scheduling("Duplicated", "Aggregated"));
        assert!(
            e.iter()
                .any(|m| m.contains("only to replicaSchedulingType")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("only to replicaDivisionPreference")),
            "{e:?}"
        );
        assert!(policy(scheduling("Divided", "Weighted")).is_empty());
    }

    #[test]
    fn unknown_fields_get_a_suggestion_and_long_member_names_are_refused() {
        let e = policy(Value::object([
            selectors(),
            ("placment", Value::Map(Default::default())),
        ]));
        assert!(
            e.iter().any(|m| m.contains("unknown field `placment`")
                && m.contains("did you mean `placement`?")),
            "{e:?}"
        );
        let long = Value::object([
            ("name", Value::string("m".repeat(49))),
            ("kubeconfig", Value::string("x")),
        ]);
        let e: Vec<String> = provider()
            .validate("karmada_cluster", &long)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert!(e.iter().any(|m| m.contains("the most is 48")), "{e:?}");
    }
}
