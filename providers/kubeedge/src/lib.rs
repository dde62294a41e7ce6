//! The KubeEdge provider (`kubeedge`): edge node groups and the applications rendered into
//! them, devices and their models, message rules and their endpoints, and operations jobs.
//!
//! Every kind is a row of [`KINDS`], run by the shared Kubernetes runtime (facts per kind:
//! docs/providers/kubeedge.md):
//!
//! - `kubeedge_node_group` is cluster-scoped and ready when every node it selects reports
//!   `selectionStatus: Succeeded`; `kubeedge_edge_application` when every workload it renders
//!   is `Available`;
//! - a Device moves to another mapper when its `nodeName`, `deviceModelRef` or `protocol`
//!   changes, so those plan a replacement;
//! - KubeEdge's webhook refuses every update of a Rule or RuleEndpoint, and the operations
//!   jobs' spec never changes after creation: any change plans a replacement;
//! - a Rule's endpoint pair must be one KubeEdge supports (rest→eventbus, rest→servicebus,
//!   eventbus→rest): checked across the configuration when both endpoints are in it.

use std::sync::{Arc, OnceLock};

use flotilla_ecosystems::Ecosystem;
use flotilla_lang::AttrPath;
use flotilla_provider::{Finding, Provider, ProviderError, ProviderHost, Review, Value};
use flotilla_provider_kube::{Catalog, Kind, KubeProvider, NodeList, Readiness};

/// The provider's name.
pub const NAME: &str = "kubeedge";

/// The ecosystem whose CRDs define these kinds.
pub const ECOSYSTEM: Ecosystem = Ecosystem::KubeEdge;

/// The KubeEdge kinds.
pub static KINDS: [Kind; 8] = [
    Kind {
        namespaced: false,
        readiness: Readiness::Entries {
            path: "status.nodeStatuses",
            field: "selectionStatus",
            ready: "Succeeded",
            reason: "selectionStatusReason",
        },
        ..Kind::of_crd(
            ECOSYSTEM,
            "kubeedge_node_group",
            "Edge nodes grouped by name or labels; ready when every selected node is in the group.",
            "apps.kubeedge.io/v1alpha1",
            "NodeGroup",
            "nodegroups",
        )
    },
    Kind {
        readiness: Readiness::Entries {
            path: "status.workloadStatus",
            field: "conditions",
            ready: "Available",
            reason: "message",
        },
        ..Kind::of_crd(
            ECOSYSTEM,
            "kubeedge_edge_application",
            "Workloads rendered into each target node group (`NAME-GROUP`), with per-group overrides; ready when every one is Available.",
            "apps.kubeedge.io/v1alpha1",
            "EdgeApplication",
            "edgeapplications",
        )
    },
    Kind::of_crd(
        ECOSYSTEM,
        "kubeedge_device_model",
        "The properties a kind of device has and the protocol it speaks.",
        "devices.kubeedge.io/v1beta1",
        "DeviceModel",
        "devicemodels",
    ),
    Kind {
        force_new: &["spec.nodeName", "spec.deviceModelRef", "spec.protocol"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "kubeedge_device",
            "A device bound to an edge node; a new node, model or protocol replaces it.",
            "devices.kubeedge.io/v1beta1",
            "Device",
            "devices",
        )
    },
    Kind {
        force_new: &["spec"],
        immutable: &["spec"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "kubeedge_rule_endpoint",
            "A place messages come from or go to (rest, eventbus, servicebus); never updated, replaced.",
            "rules.kubeedge.io/v1",
            "RuleEndpoint",
            "ruleendpoints",
        )
    },
    Kind {
        force_new: &["spec"],
        immutable: &["spec"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "kubeedge_rule",
            "Messages from one endpoint to another; created after both endpoints, never updated, replaced.",
            "rules.kubeedge.io/v1",
            "Rule",
            "rules",
        )
    },
    Kind {
        namespaced: false,
        force_new: &["spec"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "kubeedge_node_upgrade_job",
            "Upgrades KubeEdge on edge nodes; immutable once created.",
            "operations.kubeedge.io/v1alpha2",
            "NodeUpgradeJob",
            "nodeupgradejobs",
        )
    },
    Kind {
        namespaced: false,
        force_new: &["spec"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "kubeedge_image_pre_pull_job",
            "Pulls images onto edge nodes ahead of time; immutable once created.",
            "operations.kubeedge.io/v1alpha2",
            "ImagePrePullJob",
            "imageprepulljobs",
        )
    },
];

/// `data "kubeedge_edge_nodes"`: the cluster's edge nodes, for node groups built from labels.
static EDGE_NODES: NodeList = NodeList {
    type_name: "kubeedge_edge_nodes",
    description: "The cluster's edge nodes (labelled `node-role.kubernetes.io/edge`), optionally only those with `selector`'s labels, with their labels and readiness.",
    label: "node-role.kubernetes.io/edge",
};

/// The provider's table.
pub static CATALOG: Catalog = Catalog {
    name: NAME,
    kinds: &[
        &KINDS[0], &KINDS[1], &KINDS[2], &KINDS[3], &KINDS[4], &KINDS[5], &KINDS[6], &KINDS[7],
    ],
    ecosystems: &[ECOSYSTEM],
    data_sources: false,
    check: None,
    notes: None,
    review: Some(review),
    nodes: Some(&EDGE_NODES),
    references: Some(references),
    schema: OnceLock::new(),
};

/// A new instance, for the provider registry.
pub fn factory(host: &Arc<ProviderHost>) -> Arc<dyn Provider> {
    Arc::new(KubeProvider::new(&CATALOG, host))
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let v = path.iter().try_fold(v.clone(), |v, k| v.get_attr(k))?;
    match v.unmark().0 {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// The endpoint pairs KubeEdge's rule webhook accepts.
const PAIRS: [(&str, &str); 3] = [
    ("rest", "eventbus"),
    ("rest", "servicebus"),
    ("eventbus", "rest"),
];

/// What KubeEdge resolves by name, as dependencies: a Rule needs its two RuleEndpoints (the
/// webhook refuses it before they exist), a Device its DeviceModel, an EdgeApplication the
/// NodeGroups it targets.
fn references(review: &Review<'_>) -> Vec<(usize, usize)> {
    let find = |ty: &str, name: &str, ns: Option<&str>| {
        review.resources.iter().position(|r| {
            r.type_name == ty
                && text(r.value, &["name"]).as_deref() == Some(name)
                && ns.is_none_or(|ns| {
                    text(r.value, &["namespace"])
                        .as_deref()
                        .unwrap_or("default")
                        == ns
                })
        })
    };
    let mut out = Vec::new();
    for (i, r) in review.resources.iter().enumerate() {
        let ns = text(r.value, &["namespace"]).unwrap_or_else(|| "default".into());
        let named: Vec<(&str, Option<String>, bool)> = match r.type_name {
            "kubeedge_rule" => ["source", "target"]
                .iter()
                .map(|k| ("kubeedge_rule_endpoint", text(r.value, &["spec", k]), true))
                .collect(),
            "kubeedge_device" => vec![(
                "kubeedge_device_model",
                text(r.value, &["spec", "deviceModelRef", "name"]),
                true,
            )],
            "kubeedge_edge_application" => match r
                .value
                .get_attr("spec")
                .and_then(|s| s.get_attr("workloadScope"))
                .and_then(|s| s.get_attr("targetNodeGroups"))
            {
                Some(Value::List(targets)) => targets
                    .iter()
                    .map(|t| ("kubeedge_node_group", text(t, &["name"]), false))
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        for (ty, name, namespaced) in named {
            if let Some(name) = name
                && let Some(j) = find(ty, &name, namespaced.then_some(ns.as_str()))
            {
                out.push((i, j));
            }
        }
    }
    out
}

/// Rules whose two endpoints are in the configuration must pair types KubeEdge supports.
fn review(review: &Review<'_>) -> Vec<Finding> {
    let endpoint_type = |name: &str, namespace: &str| {
        review.resources.iter().find_map(|r| {
            (r.type_name == "kubeedge_rule_endpoint"
                && text(r.value, &["name"]).as_deref() == Some(name)
                && text(r.value, &["namespace"])
                    .as_deref()
                    .unwrap_or("default")
                    == namespace)
                .then(|| text(r.value, &["spec", "ruleEndpointType"]))
                .flatten()
        })
    };
    let mut findings = Vec::new();
    let groups: Vec<String> = review
        .resources
        .iter()
        .filter(|r| r.type_name == "kubeedge_node_group")
        .filter_map(|r| text(r.value, &["name"]))
        .collect();
    let groups_known = review
        .resources
        .iter()
        .filter(|r| r.type_name == "kubeedge_node_group")
        .all(|r| text(r.value, &["name"]).is_some());
    for (i, r) in review.resources.iter().enumerate() {
        if r.type_name != "kubeedge_edge_application" || !groups_known {
            continue;
        }
        let targets = r
            .value
            .get_attr("spec")
            .and_then(|s| s.get_attr("workloadScope"))
            .and_then(|s| s.get_attr("targetNodeGroups"));
        let Some(Value::List(targets)) = targets else {
            continue;
        };
        for target in targets {
            let Some(group) = text(&target, &["name"]) else {
                continue;
            };
            if !groups.contains(&group) {
                findings.push(Finding {
                    resource: i,
                    error: ProviderError::new(format!(
                        "the application targets node group {group:?}, which no kubeedge_node_group in this configuration declares"
                    ))
                    .with_detail(if groups.is_empty() {
                        "unless it exists in the cluster already, nothing is rendered for it and apply waits until its timeout".to_string()
                    } else {
                        format!("this configuration declares {}; unless {group:?} exists in the cluster already, nothing is rendered for it", groups.join(", "))
                    })
                    .at(AttrPath::attr("spec")),
                    warning: true,
                });
            }
        }
    }
    for (i, r) in review.resources.iter().enumerate() {
        if r.type_name != "kubeedge_rule" {
            continue;
        }
        let ns = text(r.value, &["namespace"]).unwrap_or_else(|| "default".into());
        let (Some(source), Some(target)) = (
            text(r.value, &["spec", "source"]),
            text(r.value, &["spec", "target"]),
        ) else {
            continue;
        };
        let (Some(from), Some(to)) = (endpoint_type(&source, &ns), endpoint_type(&target, &ns))
        else {
            continue;
        };
        if !PAIRS.contains(&(from.as_str(), to.as_str())) {
            findings.push(Finding {
                resource: i,
                error: ProviderError::new(format!(
                    "a rule from a {from} endpoint ({source}) to a {to} endpoint ({target}) is not supported"
                ))
                .with_detail("KubeEdge routes rest→eventbus, rest→servicebus and eventbus→rest only")
                .at(AttrPath::attr("spec")),
                warning: false,
            });
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_crd() {
        assert_eq!(CATALOG.mismatches(), Vec::<String>::new());
        let p = factory(&Arc::new(ProviderHost::new()));
        for kind in &KINDS {
            assert!(p.schema().resources.contains_key(kind.type_name));
        }
    }

    #[test]
    fn rules_devices_and_applications_depend_on_what_they_name() {
        let v = |j: serde_json::Value| Value::from_json(&j);
        let resources = [
            (
                "kubeedge_rule",
                v(serde_json::json!({"name": "r", "spec": {"source": "api", "target": "bus"}})),
            ),
            (
                "kubeedge_rule_endpoint",
                v(serde_json::json!({"name": "api", "spec": {}})),
            ),
            (
                "kubeedge_rule_endpoint",
                v(serde_json::json!({"name": "bus", "namespace": "other", "spec": {}})),
            ),
            (
                "kubeedge_device",
                v(serde_json::json!({"name": "d", "spec": {"deviceModelRef": {"name": "m"}}})),
            ),
            (
                "kubeedge_device_model",
                v(serde_json::json!({"name": "m", "spec": {}})),
            ),
            (
                "kubeedge_edge_application",
                v(
                    serde_json::json!({"name": "a", "namespace": "x", "spec": {"workloadScope": {"targetNodeGroups": [{"name": "g"}]}}}),
                ),
            ),
            (
                "kubeedge_node_group",
                v(serde_json::json!({"name": "g", "spec": {}})),
            ),
        ];
        let review = Review {
            resources: resources
                .iter()
                .map(|(t, v)| flotilla_provider::ReviewedResource {
                    address: (*t).into(),
                    type_name: t,
                    provider: "provider.kubeedge".into(),
                    value: v,
                })
                .collect(),
            providers: Vec::new(),
        };
        // `bus` is in another namespace: not the rule's endpoint.
        assert_eq!(references(&review), [(0, 1), (3, 4), (5, 6)]);
    }

    #[test]
    fn a_rule_between_endpoints_kubeedge_does_not_route_is_refused() {
        let endpoint = |name: &str, ty: &str| {
            Value::from_json(&serde_json::json!({"name": name, "spec": {"ruleEndpointType": ty}}))
        };
        let rule = |s: &str, t: &str| {
            Value::from_json(&serde_json::json!({"name": "r", "spec": {"source": s, "target": t}}))
        };
        let (bus, api, svc) = (
            endpoint("bus", "eventbus"),
            endpoint("api", "rest"),
            endpoint("svc", "servicebus"),
        );
        let found = |rule: &Value| {
            let resources = [
                ("kubeedge_rule_endpoint", &bus),
                ("kubeedge_rule_endpoint", &api),
                ("kubeedge_rule_endpoint", &svc),
                ("kubeedge_rule", rule),
            ]
            .into_iter()
            .map(|(t, v)| flotilla_provider::ReviewedResource {
                address: t.into(),
                type_name: t,
                provider: "provider.kubeedge".into(),
                value: v,
            })
            .collect();
            review(&Review {
                resources,
                providers: Vec::new(),
            })
            .into_iter()
            .map(|f| f.error.message)
            .collect::<Vec<_>>()
        };
        assert!(found(&rule("api", "bus")).is_empty());
        assert_eq!(
            found(&rule("bus", "svc")),
            [
                "a rule from a eventbus endpoint (bus) to a servicebus endpoint (svc) is not supported"
            ]
        );
        assert!(
            found(&rule("api", "elsewhere")).is_empty(),
            "an endpoint outside the configuration is the server's to judge"
        );
    }
}
