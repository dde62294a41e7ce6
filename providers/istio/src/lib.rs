//! The Istio provider (`istio`): routing (`networking.istio.io/v1`), security
//! (`security.istio.io/v1`) and telemetry (`telemetry.istio.io/v1`) configuration.
//!
//! Every kind is a row of [`KINDS`], run by the shared Kubernetes runtime. Istio objects have
//! no status unless istiod runs with status enabled, so each is ready once the API server
//! accepts it; nothing is immutable. Offline, flotilla checks what istiod's validating webhook
//! refuses (see docs/providers/istio.md): an HTTP route needs exactly one of `route`,
//! `redirect` and `directResponse`, some of their companions exclude each other, a string
//! match sets exactly one of `exact`, `prefix` and `regex`, hosts are well-formed, and an
//! AuthorizationPolicy's `provider` goes with `CUSTOM` only. Across the configuration it warns
//! when route weights do not add up to 100 and when a route names a subset no
//! DestinationRule for its host defines.

use std::sync::{Arc, OnceLock};

use flotilla_ecosystems::{Ecosystem, rules};
use flotilla_lang::{AttrPath, PathStep};
use flotilla_provider::{Finding, Provider, ProviderError, ProviderHost, Review, Value};
use flotilla_provider_kube::{Catalog, Kind, KubeProvider};
use serde_json::Value as Json;

/// The provider's name.
pub const NAME: &str = "istio";

/// The ecosystem whose CRDs define these kinds.
pub const ECOSYSTEM: Ecosystem = Ecosystem::Istio;

/// The Istio kinds.
pub static KINDS: [Kind; 9] = [
    Kind::of_crd(
        ECOSYSTEM,
        "istio_virtual_service",
        "Routing rules for hosts: HTTP, TCP and TLS routes to destinations (and their subsets).",
        "networking.istio.io/v1",
        "VirtualService",
        "virtualservices",
    ),
    Kind::of_crd(
        ECOSYSTEM,
        "istio_destination_rule",
        "Policies for traffic to a host after routing, and its named subsets.",
        "networking.istio.io/v1",
        "DestinationRule",
        "destinationrules",
    ),
    Kind::of_crd(
        ECOSYSTEM,
        "istio_gateway",
        "A load balancer at the mesh's edge: ports, protocols and hosts it serves.",
        "networking.istio.io/v1",
        "Gateway",
        "gateways",
    ),
    Kind::of_crd(
        ECOSYSTEM,
        "istio_service_entry",
        "A service outside the mesh's registry (an external API, a VM).",
        "networking.istio.io/v1",
        "ServiceEntry",
        "serviceentries",
    ),
    Kind::of_crd(
        ECOSYSTEM,
        "istio_sidecar",
        "What a workload's sidecar proxy accepts and reaches.",
        "networking.istio.io/v1",
        "Sidecar",
        "sidecars",
    ),
    Kind::of_crd(
        ECOSYSTEM,
        "istio_peer_authentication",
        "Mutual TLS between workloads: UNSET, DISABLE, PERMISSIVE or STRICT.",
        "security.istio.io/v1",
        "PeerAuthentication",
        "peerauthentications",
    ),
    Kind::of_crd(
        ECOSYSTEM,
        "istio_request_authentication",
        "JWT rules for end-user requests.",
        "security.istio.io/v1",
        "RequestAuthentication",
        "requestauthentications",
    ),
    Kind::of_crd(
        ECOSYSTEM,
        "istio_authorization_policy",
        "Who may do what to a workload: ALLOW, DENY, AUDIT or CUSTOM rules.",
        "security.istio.io/v1",
        "AuthorizationPolicy",
        "authorizationpolicies",
    ),
    Kind::of_crd(
        ECOSYSTEM,
        "istio_telemetry",
        "Metrics, tracing and access logging for workloads.",
        "telemetry.istio.io/v1",
        "Telemetry",
        "telemetries",
    ),
];

/// The provider's table.
pub static CATALOG: Catalog = Catalog {
    name: NAME,
    kinds: &[
        &KINDS[0], &KINDS[1], &KINDS[2], &KINDS[3], &KINDS[4], &KINDS[5], &KINDS[6], &KINDS[7],
        &KINDS[8],
    ],
    ecosystems: &[ECOSYSTEM],
    data_sources: false,
    check: Some(check),
    notes: None,
    review: Some(review),
    nodes: None,
    references: Some(references),
    schema: OnceLock::new(),
};

/// A new instance, for the provider registry.
pub fn factory(host: &Arc<ProviderHost>) -> Arc<dyn Provider> {
    Arc::new(KubeProvider::new(&CATALOG, host))
}

/// `spec.a[0].b` as an attribute path.
fn path(steps: &[Step<'_>]) -> AttrPath {
    AttrPath(
        std::iter::once(PathStep::Key("spec".into()))
            .chain(steps.iter().map(|s| match s {
                Step::Key(k) => PathStep::Key((*k).to_string()),
                Step::Index(i) => PathStep::Index(*i),
            }))
            .collect(),
    )
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `spec` as JSON (unknown parts `null`).
fn spec(config: &Value) -> Json {
    config
        .get_attr("spec")
        .map(|v| v.to_json())
        .unwrap_or(Json::Null)
}

/// `spec` as JSON for the webhook's rules, with every list element that is not fully known
/// yet as `null` (the rules skip those; the server checks them at plan time).
fn known_spec(config: &Value) -> Option<Json> {
    let spec = config.get_attr("spec")?;
    let Value::Map(m) = spec.shallow_unmark() else {
        return Some(spec.to_json());
    };
    Some(Json::Object(
        m.iter()
            .map(|(k, v)| {
                let j = match v.shallow_unmark() {
                    Value::List(items) => Json::Array(
                        items
                            .iter()
                            .map(|i| {
                                if i.contains_unknown() {
                                    Json::Null
                                } else {
                                    i.to_json()
                                }
                            })
                            .collect(),
                    ),
                    other => other.to_json(),
                };
                (k.clone(), j)
            })
            .collect(),
    ))
}

/// What istiod's validating webhook refuses ([`flotilla_ecosystems::rules::istio`]), checked
/// offline on what is known.
fn check(kind: &Kind, config: &Value) -> Vec<ProviderError> {
    if kind.kind == "AuthorizationPolicy"
        && config
            .get_attr("spec")
            .is_some_and(|s| s.contains_unknown())
    {
        return Vec::new();
    }
    let Some(spec) = known_spec(config) else {
        return Vec::new();
    };
    flotilla_ecosystems::rules::istio(kind.kind, &spec)
        .into_iter()
        .map(|v| {
            let steps: Vec<Step<'_>> = v
                .path
                .iter()
                .map(|s| match s {
                    rules::Step::Key(k) => Step::Key(k.as_str()),
                    rules::Step::Index(i) => Step::Index(*i),
                })
                .collect();
            ProviderError::new(v.message.clone())
                .with_detail(v.hint)
                .at(path(&steps))
        })
        .collect()
}

/// Across the configuration: routes whose weights do not add up to 100 (istiod treats them
/// as relative; older Istio refused them) and subsets no DestinationRule for the host defines.
fn review(review: &Review<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    // host -> subsets, from the DestinationRules of the configuration (known ones).
    let mut subsets: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in review
        .resources
        .iter()
        .filter(|r| r.type_name == "istio_destination_rule")
    {
        let spec = spec(r.value);
        if let Some(host) = spec["host"].as_str() {
            subsets.entry(short(host).to_string()).or_default().extend(
                spec["subsets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["name"].as_str().map(str::to_string)),
            );
        }
    }
    for (index, r) in review.resources.iter().enumerate() {
        if r.type_name != "istio_virtual_service" {
            continue;
        }
        let spec = spec(r.value);
        for section in ["http", "tcp", "tls"] {
            for (i, route) in spec[section].as_array().into_iter().flatten().enumerate() {
                let at = |extra: &[Step<'_>]| {
                    let mut steps = vec![Step::Key(section), Step::Index(i), Step::Key("route")];
                    steps.extend_from_slice(extra);
                    path(&steps)
                };
                let destinations: Vec<&Json> =
                    route["route"].as_array().into_iter().flatten().collect();
                let weights: Option<Vec<i64>> =
                    destinations.iter().map(|d| d["weight"].as_i64()).collect();
                if destinations.len() > 1
                    && let Some(w) = weights
                    && w.iter().sum::<i64>() != 100
                {
                    findings.push(Finding {
                        resource: index,
                        error: ProviderError::new(format!(
                            "the weights of {section}[{i}] add up to {}, not 100",
                            w.iter().sum::<i64>()
                        ))
                        .with_detail("Istio divides traffic by each weight over their sum, so this works, but a split written to add up to 100 says what it means; older Istio refused it")
                        .at(at(&[])),
                        warning: true,
                    });
                }
                for (d, dest) in destinations.iter().enumerate() {
                    let (Some(host), Some(subset)) = (
                        dest["destination"]["host"].as_str(),
                        dest["destination"]["subset"].as_str(),
                    ) else {
                        continue;
                    };
                    let Some(defined) = subsets.get(short(host)) else {
                        continue;
                    };
                    if !defined.iter().any(|s| s == subset) {
                        findings.push(Finding {
                            resource: index,
                            error: ProviderError::new(format!(
                                "the route sends traffic to subset {subset:?} of {host}, which no DestinationRule for {host} in this configuration defines (it defines {})",
                                defined.join(", ")
                            ))
                            .with_detail("istiod sends nothing to an undefined subset: add it to the DestinationRule's `subsets`, or fix the name")
                            .at(at(&[Step::Index(d), Step::Key("destination"), Step::Key("subset")])),
                            warning: true,
                        });
                    }
                }
            }
        }
    }
    findings
}

/// What istiod resolves by name, as dependencies: a VirtualService needs the Gateways its
/// `gateways` name (`NAMESPACE/NAME`, or `NAME` in its own namespace) and the
/// DestinationRules of the hosts it routes to subsets of.
fn references(review: &Review<'_>) -> Vec<(usize, usize)> {
    let text = |v: &Value, k: &str| match v.get_attr(k).map(|v| v.unmark().0) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    // A namespace not known offline (taken from another resource) matches any.
    let ns_of = |v: &Value| match v.get_attr("namespace") {
        Some(Value::Unknown) => None,
        _ => Some(text(v, "namespace").unwrap_or_else(|| "default".into())),
    };
    let mut out = Vec::new();
    for (i, r) in review.resources.iter().enumerate() {
        if r.type_name != "istio_virtual_service" {
            continue;
        }
        let spec = spec(r.value);
        let ns = ns_of(r.value);
        for g in spec["gateways"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str())
        {
            let (gns, gname) = match g.split_once('/') {
                Some((n, g)) => (Some(n.to_string()), g),
                None => (ns.clone(), g),
            };
            out.extend(review.resources.iter().enumerate().filter_map(|(j, o)| {
                let same_ns = match (&gns, ns_of(o.value)) {
                    (Some(a), Some(b)) => *a == b,
                    _ => true,
                };
                (o.type_name == "istio_gateway"
                    && text(o.value, "name").as_deref() == Some(gname)
                    && same_ns)
                    .then_some((i, j))
            }));
        }
        let hosts: Vec<&str> = ["http", "tcp", "tls"]
            .iter()
            .flat_map(|s| spec[*s].as_array().into_iter().flatten())
            .flat_map(|route| route["route"].as_array().into_iter().flatten())
            .filter(|d| d["destination"]["subset"].is_string())
            .filter_map(|d| d["destination"]["host"].as_str())
            .collect();
        for (j, o) in review.resources.iter().enumerate() {
            if o.type_name == "istio_destination_rule"
                && let Some(h) = spec_host(o.value)
                && hosts.iter().any(|x| short(x) == short(&h))
            {
                out.push((i, j));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn spec_host(v: &Value) -> Option<String> {
    spec(v)["host"].as_str().map(str::to_string)
}

/// A host's short name (`checkout` of `checkout.shop.svc.cluster.local`), so a route and a
/// DestinationRule that spell it differently still meet.
fn short(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<dyn Provider> {
        factory(&Arc::new(ProviderHost::new()))
    }

    fn errors(type_name: &str, spec: Json) -> Vec<String> {
        let config = Value::object([
            ("name", Value::string("x")),
            ("spec", Value::from_json(&spec)),
        ]);
        provider()
            .validate(type_name, &config)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn every_kind_has_its_crd() {
        assert_eq!(CATALOG.mismatches(), Vec::<String>::new());
        let p = provider();
        for kind in &KINDS {
            assert!(p.schema().resources.contains_key(kind.type_name));
        }
    }

    #[test]
    fn what_istiods_webhook_refuses_is_refused_offline() {
        let e = errors(
            "istio_virtual_service",
            serde_json::json!({"hosts": ["https://checkout/api"], "http": [
                {"match": [{"uri": {"prefix": "/", "exact": "/"}}]},
                {"route": [{"destination": {"host": "checkout"}}], "redirect": {"uri": "/x"}}]}),
        );
        assert!(e.iter().any(|m| m.contains("has a scheme")), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.contains("route, redirect or direct_response is required")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("exactly one of `exact`, `prefix` and `regex`, not 2")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("`route` and `redirect` cannot both be set")),
            "{e:?}"
        );
        let ok = errors(
            "istio_virtual_service",
            serde_json::json!({"hosts": ["*.shop.example.com", "checkout"], "http": [
                {"match": [{"uri": {"prefix": "/"}}], "route": [{"destination": {"host": "checkout"}}]}]}),
        );
        assert!(ok.is_empty(), "{ok:?}");
        let ap = errors(
            "istio_authorization_policy",
            serde_json::json!({"action": "DENY", "provider": {"name": "ext-authz"}}),
        );
        assert!(
            ap.iter()
                .any(|m| m.contains("only to action CUSTOM, not DENY")),
            "{ap:?}"
        );
    }

    #[test]
    fn routes_depend_on_the_gateways_and_destination_rules_they_name() {
        let vs = Value::from_json(
            &serde_json::json!({"name": "checkout", "namespace": "shop", "spec": {
            "gateways": ["shop/edge", "mesh"],
            "http": [{"route": [{"destination": {"host": "checkout.shop.svc.cluster.local", "subset": "stable"}}]}]}}),
        );
        let gw =
            Value::from_json(&serde_json::json!({"name": "edge", "namespace": "shop", "spec": {}}));
        let other_gw = Value::from_json(
            &serde_json::json!({"name": "edge", "namespace": "elsewhere", "spec": {}}),
        );
        let dr = Value::from_json(
            &serde_json::json!({"name": "checkout", "spec": {"host": "checkout"}}),
        );
        let resources = [
            ("istio_virtual_service", &vs),
            ("istio_gateway", &gw),
            ("istio_gateway", &other_gw),
            ("istio_destination_rule", &dr),
        ]
        .into_iter()
        .map(|(t, v)| flotilla_provider::ReviewedResource {
            address: t.into(),
            type_name: t,
            provider: "provider.istio".into(),
            value: v,
        })
        .collect();
        let review = Review {
            resources,
            providers: Vec::new(),
        };
        assert_eq!(references(&review), [(0, 1), (0, 3)]);
    }

    #[test]
    fn weights_and_subsets_are_reviewed_across_the_configuration() {
        let vs = Value::from_json(
            &serde_json::json!({"name": "checkout", "spec": {"hosts": ["checkout"], "http": [
            {"route": [
                {"destination": {"host": "checkout", "subset": "stable"}, "weight": 80},
                {"destination": {"host": "checkout", "subset": "canry"}, "weight": 10}]}]}}),
        );
        let dr = Value::from_json(
            &serde_json::json!({"name": "checkout", "spec": {"host": "checkout.shop.svc.cluster.local",
            "subsets": [{"name": "stable"}, {"name": "canary"}]}}),
        );
        let review_of = |vs: &Value| {
            let r = Review {
                resources: vec![
                    flotilla_provider::ReviewedResource {
                        address: "istio_virtual_service.checkout".into(),
                        type_name: "istio_virtual_service",
                        provider: "provider.istio".into(),
                        value: vs,
                    },
                    flotilla_provider::ReviewedResource {
                        address: "istio_destination_rule.checkout".into(),
                        type_name: "istio_destination_rule",
                        provider: "provider.istio".into(),
                        value: &dr,
                    },
                ],
                providers: Vec::new(),
            };
            review(&r)
                .into_iter()
                .map(|f| (f.warning, f.error.message))
                .collect::<Vec<_>>()
        };
        let found = review_of(&vs);
        assert!(found.iter().all(|(w, _)| *w));
        assert!(
            found
                .iter()
                .any(|(_, m)| m.contains("add up to 90, not 100")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(_, m)| m.contains("subset \"canry\"") && m.contains("stable, canary")),
            "{found:?}"
        );
        let fine = Value::from_json(&serde_json::json!({"name": "checkout", "spec": {"http": [
            {"route": [
                {"destination": {"host": "checkout", "subset": "stable"}, "weight": 90},
                {"destination": {"host": "checkout", "subset": "canary"}, "weight": 10}]}]}}));
        assert!(review_of(&fine).is_empty());
    }
}
