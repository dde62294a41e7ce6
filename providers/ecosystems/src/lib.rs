//! The ecosystem catalogue: pure data about the platforms flotilla manages (Cluster API,
//! Karmada, KubeEdge, Istio, Volcano) and the ones it installs through `kube_manifest`
//! (Kyverno, Flagger, Flux, the Prometheus Operator). For each [`Ecosystem`]:
//!
//! - its CustomResourceDefinitions ([`Ecosystem::crds`]) with the upstream schemas of the
//!   kinds, written in a compact notation under `providers/ecosystems/crds/` and expanded
//!   here to `openAPIV3Schema`;
//! - the kinds its controllers generate ([`Ecosystem::generated`]), which flotilla never
//!   manages;
//! - the objects a fresh installation has ([`Ecosystem::seeds`]: Volcano's `default` and
//!   `root` queues, Karmada's `karmada-cluster` namespace).
//!
//! Both sides read it: providers validate configurations offline against the schemas
//! ([`spec_schema`]) and the webhooks' rules ([`rules`]), and the sandbox serves the CRDs and
//! seeds and admits with the same rules. **Invariant:** no IO here: data, the expansion of
//! the notation, and the webhooks' rules as pure functions over JSON.
//!
//! The notation:
//! - a scalar is a type: `string`, `integer`, `number`, `boolean`, `object` (free-form),
//!   `any` (any JSON), `quantity` (int-or-string); `string(A|B)` is an enum, `integer(1..9)`
//!   a range, and `=VALUE` a default (`integer=3`);
//! - a mapping is an object with those properties; a key ending in `!` is required;
//!   `$map: TYPE` makes it a map of TYPE;
//! - a one-element sequence is a list of that element; `$key: NAME` in the element makes it a
//!   map-list keyed by NAME.

pub mod rules;

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// A platform whose CRDs a cluster can have installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// Cluster API (with the Docker infrastructure provider).
    Capi,
    /// Karmada's control plane.
    Karmada,
    /// KubeEdge.
    KubeEdge,
    /// Istio.
    Istio,
    /// Volcano.
    Volcano,
    /// Kyverno.
    Kyverno,
    /// Flagger.
    Flagger,
    /// Flux's Helm controller and sources.
    Flux,
    /// The Prometheus Operator's monitoring kinds.
    Prometheus,
}

impl Ecosystem {
    /// Every ecosystem, in order.
    pub const ALL: [Ecosystem; 9] = [
        Ecosystem::Capi,
        Ecosystem::Karmada,
        Ecosystem::KubeEdge,
        Ecosystem::Istio,
        Ecosystem::Volcano,
        Ecosystem::Kyverno,
        Ecosystem::Flagger,
        Ecosystem::Flux,
        Ecosystem::Prometheus,
    ];

    /// Its name, as `--with` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Capi => "capi",
            Ecosystem::Karmada => "karmada",
            Ecosystem::KubeEdge => "kubeedge",
            Ecosystem::Istio => "istio",
            Ecosystem::Volcano => "volcano",
            Ecosystem::Kyverno => "kyverno",
            Ecosystem::Flagger => "flagger",
            Ecosystem::Flux => "flux",
            Ecosystem::Prometheus => "prometheus",
        }
    }

    /// Parses one name, or `all`, from a comma-separated `--with` list.
    pub fn parse_list(list: &str) -> Result<Vec<Ecosystem>, String> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                out.extend(Ecosystem::ALL);
                continue;
            }
            let eco = Ecosystem::ALL
                .into_iter()
                .find(|e| e.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown ecosystem {name:?}; known: {}, or all",
                        Ecosystem::ALL.map(Ecosystem::name).join(", ")
                    )
                })?;
            out.push(eco);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn source(self) -> &'static str {
        match self {
            Ecosystem::Capi => include_str!("../crds/capi.yaml"),
            Ecosystem::Karmada => include_str!("../crds/karmada.yaml"),
            Ecosystem::KubeEdge => include_str!("../crds/kubeedge.yaml"),
            Ecosystem::Istio => include_str!("../crds/istio.yaml"),
            Ecosystem::Volcano => include_str!("../crds/volcano.yaml"),
            Ecosystem::Kyverno => include_str!("../crds/kyverno.yaml"),
            Ecosystem::Flagger => include_str!("../crds/flagger.yaml"),
            Ecosystem::Flux => include_str!("../crds/flux.yaml"),
            Ecosystem::Prometheus => include_str!("../crds/prometheus.yaml"),
        }
    }

    /// The ecosystem's CustomResourceDefinitions, expanded once.
    pub fn crds(self) -> &'static [Value] {
        static CRDS: [OnceLock<Vec<Value>>; 9] = [const { OnceLock::new() }; 9];
        CRDS[self as usize].get_or_init(|| {
            let kinds: Vec<Value> = serde_yaml::from_str(self.source())
                .unwrap_or_else(|e| panic!("crds/{}.yaml: {e}", self.name()));
            kinds
                .iter()
                .map(|k| crd(k).unwrap_or_else(|e| panic!("crds/{}.yaml: {e}", self.name())))
                .collect()
        })
    }

    /// The kinds its controllers generate, as (API group, kind): never managed, only read.
    pub fn generated(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Ecosystem::Capi => &[
                ("cluster.x-k8s.io", "Machine"),
                ("cluster.x-k8s.io", "MachineSet"),
            ],
            Ecosystem::Karmada => &[
                ("work.karmada.io", "ResourceBinding"),
                ("work.karmada.io", "ClusterResourceBinding"),
                ("work.karmada.io", "Work"),
            ],
            Ecosystem::Volcano => &[("scheduling.volcano.sh", "PodGroup")],
            _ => &[],
        }
    }

    /// Objects a fresh installation has.
    pub fn seeds(self) -> Vec<Value> {
        match self {
            Ecosystem::Volcano => ["root", "default"]
                .iter()
                .map(|name| {
                    json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
                           "metadata": {"name": name}, "spec": {"weight": 1, "reclaimable": *name != "root"}})
                })
                .collect(),
            Ecosystem::Karmada => vec![
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "karmada-cluster"}}),
            ],
            _ => Vec::new(),
        }
    }

    /// The ecosystem a Helm chart installs, by the chart's name: what the sandbox's Flux
    /// installs into a cluster for a HelmRelease of that chart.
    pub fn of_chart(chart: &str) -> Option<Ecosystem> {
        Some(match chart {
            "istiod" | "base" | "istio-base" | "gateway" => Ecosystem::Istio,
            "volcano" => Ecosystem::Volcano,
            "cloudcore" => Ecosystem::KubeEdge,
            "kyverno" => Ecosystem::Kyverno,
            "flagger" => Ecosystem::Flagger,
            "kube-prometheus-stack" | "prometheus-operator-crds" => Ecosystem::Prometheus,
            "karmada" => Ecosystem::Karmada,
            _ => return None,
        })
    }

    /// The ecosystem that defines an API group, if any.
    pub fn of_group(group: &str) -> Option<Ecosystem> {
        index().groups.get(group).copied()
    }
}

/// Whether some ecosystem's controllers generate this kind.
pub fn is_generated(group: &str, kind: &str) -> bool {
    Ecosystem::of_group(group).is_some_and(|e| e.generated().contains(&(group, kind)))
}

/// The OpenAPI schema of `spec` of a kind some ecosystem defines, at `apiVersion`
/// (`group/version`). One hash lookup.
pub fn spec_schema(api_version: &str, kind: &str) -> Option<&'static Value> {
    index()
        .specs
        .get(&(api_version.to_string(), kind.to_string()))
}

/// Lookups over every ecosystem, built once.
struct Index {
    groups: HashMap<String, Ecosystem>,
    specs: HashMap<(String, String), Value>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = Index {
            groups: HashMap::new(),
            specs: HashMap::new(),
        };
        for eco in Ecosystem::ALL {
            for crd in eco.crds() {
                let spec = &crd["spec"];
                let group = spec["group"].as_str().unwrap_or_default();
                let kind = spec["names"]["kind"].as_str().unwrap_or_default();
                index.groups.insert(group.to_string(), eco);
                for v in spec["versions"].as_array().into_iter().flatten() {
                    let version = v["name"].as_str().unwrap_or_default();
                    index.specs.insert(
                        (format!("{group}/{version}"), kind.to_string()),
                        v["schema"]["openAPIV3Schema"]["properties"]["spec"].clone(),
                    );
                }
            }
        }
        index
    })
}

/// Expands one compact kind entry into a CRD.
fn crd(entry: &Value) -> Result<Value, String> {
    let s = |k: &str| entry[k].as_str().map(str::to_string);
    let group = s("group").ok_or("an entry has no group")?;
    let kind = s("kind").ok_or("an entry has no kind")?;
    let lower = kind.to_lowercase();
    let plural = s("plural").unwrap_or_else(|| plural_of(&lower));
    let with_status = entry["status"].as_bool().unwrap_or(true);
    let mut properties = Map::new();
    if let Some(spec) = entry.get("spec") {
        properties.insert("spec".into(), expand(spec)?);
    }
    if let Some(Value::Object(fields)) = entry.get("fields") {
        for (k, v) in fields {
            properties.insert(k.clone(), expand(v)?);
        }
    }
    if with_status {
        properties.insert(
            "status".into(),
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    let schema = json!({"type": "object", "properties": properties});
    let columns: Vec<Value> = entry["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({"name": c[0], "type": c[1], "jsonPath": c[2]}))
        .chain([json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})])
        .collect();
    let versions: Vec<Value> = entry["versions"]
        .as_array()
        .ok_or(format!("{kind}: no versions"))?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut version = json!({"name": v, "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": schema}, "additionalPrinterColumns": columns});
            if with_status {
                version["subresources"] = json!({"status": {}});
            }
            version
        })
        .collect();
    let mut names = json!({"kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": lower});
    if let Some(short) = entry.get("short") {
        names["shortNames"] = short.clone();
    }
    let scope = if entry["cluster"].as_bool().unwrap_or(false) {
        "Cluster"
    } else {
        "Namespaced"
    };
    Ok(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}"), "labels": {"flotilla.dev/sandbox-ecosystem": "true"}},
        "spec": {"group": group, "scope": scope, "names": names, "versions": versions},
    }))
}

/// The English plural Kubernetes uses for a lower-cased kind: policies, gateways, classes.
fn plural_of(lower: &str) -> String {
    let consonant_y =
        lower.ends_with('y') && !lower[..lower.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{}ies", &lower[..lower.len() - 1])
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// Expands the compact schema notation (see the module docs).
fn expand(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) => scalar(s),
        Value::Array(items) => {
            let [item] = items.as_slice() else {
                return Err(format!(
                    "a list schema has one element, not {}",
                    items.len()
                ));
            };
            let mut out = json!({"type": "array", "items": expand(item)?});
            if let Some(key) = item.get("$key").and_then(Value::as_str) {
                out["x-kubernetes-list-type"] = json!("map");
                out["x-kubernetes-list-map-keys"] = json!([key]);
            }
            Ok(out)
        }
        Value::Object(map) => {
            if let Some(inner) = map.get("$map") {
                return Ok(json!({"type": "object", "additionalProperties": expand(inner)?}));
            }
            let mut properties = Map::new();
            let mut required = Vec::new();
            for (k, v) in map.iter().filter(|(k, _)| !k.starts_with('$')) {
                let name = match k.strip_suffix('!') {
                    Some(name) => {
                        required.push(json!(name));
                        name
                    }
                    None => k,
                };
                properties.insert(name.to_string(), expand(v)?);
            }
            let mut out = json!({"type": "object", "properties": properties});
            if !required.is_empty() {
                out["required"] = Value::Array(required);
            }
            Ok(out)
        }
        other => Err(format!("not a schema: {other}")),
    }
}

fn scalar(s: &str) -> Result<Value, String> {
    let (head, default) = match s.split_once('=') {
        Some((h, d)) => (h, Some(d)),
        None => (s, None),
    };
    let (ty, arg) = match head.split_once('(') {
        Some((t, rest)) => (
            t,
            Some(
                rest.strip_suffix(')')
                    .ok_or(format!("unclosed ( in {s:?}"))?,
            ),
        ),
        None => (head, None),
    };
    let mut out = match ty {
        "string" | "integer" | "number" | "boolean" => json!({"type": ty}),
        "object" => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        "any" => json!({"x-kubernetes-preserve-unknown-fields": true}),
        "quantity" => {
            json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]})
        }
        _ => return Err(format!("unknown type {ty:?} in {s:?}")),
    };
    match (ty, arg) {
        (_, None) => {}
        ("string", Some(values)) => out["enum"] = json!(values.split('|').collect::<Vec<_>>()),
        ("integer", Some(range)) => {
            let (lo, hi) = range
                .split_once("..")
                .ok_or(format!("expected integer(MIN..MAX) in {s:?}"))?;
            let num = |n: &str| n.parse::<i64>().map_err(|_| format!("bad bound in {s:?}"));
            out["minimum"] = json!(num(lo)?);
            out["maximum"] = json!(num(hi)?);
        }
        _ => return Err(format!("{ty} takes no argument in {s:?}")),
    }
    if let Some(d) = default {
        out["default"] =
            serde_yaml::from_str(d).map_err(|e| format!("bad default in {s:?}: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(
            Ecosystem::of_group("policy.karmada.io"),
            Some(Ecosystem::Karmada)
        );
        assert!(is_generated("work.karmada.io", "ResourceBinding"));
        assert!(!is_generated("policy.karmada.io", "PropagationPolicy"));
        let spec = spec_schema("scheduling.volcano.sh/v1beta1", "Queue").unwrap();
        assert_eq!(spec["properties"]["weight"]["type"], "integer");
        assert!(spec_schema("scheduling.volcano.sh/v9", "Queue").is_none());
    }

    #[test]
    fn the_notation() {
        assert_eq!(
            expand(&json!({"name!": "string(Push|Pull)", "n": "integer(1..9)=3", "m": {"$map": "string"}})).unwrap(),
            json!({"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "enum": ["Push", "Pull"]},
                "n": {"type": "integer", "minimum": 1, "maximum": 9, "default": 3},
                "m": {"type": "object", "additionalProperties": {"type": "string"}}}})
        );
        for (kind, plural) in [
            ("gateway", "gateways"),
            ("serviceentry", "serviceentries"),
            ("clusterclass", "clusterclasses"),
            ("queue", "queues"),
        ] {
            assert_eq!(plural_of(kind), plural);
        }
        let list = expand(&json!([{"$key": "name", "name!": "string"}])).unwrap();
        assert_eq!(list["x-kubernetes-list-map-keys"], json!(["name"]));
        assert!(scalar("strin").is_err());
        assert_eq!(
            Ecosystem::parse_list("volcano,capi,capi").unwrap(),
            vec![Ecosystem::Capi, Ecosystem::Volcano]
        );
        assert_eq!(Ecosystem::parse_list("all").unwrap().len(), 9);
        assert_eq!(Ecosystem::of_chart("istiod"), Some(Ecosystem::Istio));
        assert_eq!(Ecosystem::of_chart("cloudcore"), Some(Ecosystem::KubeEdge));
        assert_eq!(
            Ecosystem::of_chart("kube-prometheus-stack"),
            Some(Ecosystem::Prometheus)
        );
        assert_eq!(Ecosystem::of_chart("podinfo"), None);
        assert!(
            Ecosystem::parse_list("mesos")
                .unwrap_err()
                .contains("known: capi")
        );
    }
}
