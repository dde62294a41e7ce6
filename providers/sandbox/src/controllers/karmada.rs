//! Karmada: member Clusters whose `apiEndpoint` is a reachable sandbox cluster (not one whose
//! injected faults drop every connection) become Ready, and
//! (Cluster)PropagationPolicies schedule the resource templates they select onto Ready
//! members: a (Cluster)ResourceBinding per template (`Scheduled`, `FullyApplied`) and a copy
//! of the template in each chosen member, with replicas Duplicated or Divided by static
//! weight and OverridePolicies applied. Copies leave members when the policy, the template or
//! the member's place in the schedule goes.

use super::{MANAGER, conditions, deleting, generation, name, namespace, report};
use crate::local::{Local, group_kind};
use crate::query::LabelSelector;
use crate::{Cluster, Shared};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

const POLICY: &str = "policy.karmada.io";
const WORK: &str = "work.karmada.io";
/// Annotations a binding carries: the policy that made it.
const POLICY_NAME: &str = "propagationpolicy.karmada.io/name";
const POLICY_NAMESPACE: &str = "propagationpolicy.karmada.io/namespace";
/// The field manager of the copies in member clusters.
const WORK_MANAGER: &str = "karmada-work";

/// A Ready member: its Karmada name, labels, and the sandbox cluster behind it.
struct Member {
    name: String,
    labels: Value,
    cluster: Arc<Cluster>,
}

pub(super) fn reconcile(shared: &Shared, local: &Local<'_>) {
    if local
        .resource_type("cluster.karmada.io", "Cluster")
        .is_none()
    {
        return;
    }
    let members = clusters(shared, local);
    let mut desired: BTreeMap<(String, String, String), Binding> = BTreeMap::new();
    let mut policies = local.list(POLICY, "PropagationPolicy");
    // Namespaced policies win over cluster-wide ones; then higher priority; then name.
    policies.sort_by_key(|p| {
        (
            -p["spec"]["priority"].as_i64().unwrap_or(0),
            name(p).to_string(),
        )
    });
    let mut cluster_policies = local.list(POLICY, "ClusterPropagationPolicy");
    cluster_policies.sort_by_key(|p| {
        (
            -p["spec"]["priority"].as_i64().unwrap_or(0),
            name(p).to_string(),
        )
    });
    for policy in policies.iter().chain(&cluster_policies) {
        if deleting(policy) {
            continue;
        }
        for template in selected(local, policy) {
            let (group, kind) = group_kind(&template);
            let key = (
                format!("{group}/{kind}"),
                namespace(&template).to_string(),
                name(&template).to_string(),
            );
            desired
                .entry(key)
                .or_insert_with(|| schedule(policy, template, &members));
        }
    }
    let overrides: Vec<Value> = local
        .list(POLICY, "OverridePolicy")
        .into_iter()
        .chain(local.list(POLICY, "ClusterOverridePolicy"))
        .collect();
    for binding in desired.values() {
        if let Err(e) = bind(local, binding, &members, &overrides) {
            report(local.cluster(), &format!("binding {}", binding.name()), &e);
        }
    }
    // Bindings nobody wants any more: remove their copies, then the binding.
    for kind in ["ResourceBinding", "ClusterResourceBinding"] {
        for rb in local.list(WORK, kind) {
            if rb["metadata"]["annotations"].get(POLICY_NAME).is_none() {
                continue;
            }
            let res = &rb["spec"]["resource"];
            let (group, k) = group_kind(res);
            let key = (
                format!("{group}/{k}"),
                res["namespace"].as_str().unwrap_or_default().to_string(),
                res["name"].as_str().unwrap_or_default().to_string(),
            );
            if desired.contains_key(&key) {
                continue;
            }
            for c in rb["spec"]["clusters"].as_array().into_iter().flatten() {
                remove_copy(&members, c["name"].as_str().unwrap_or_default(), res);
            }
            if let Err(e) = local.delete(&rb) {
                report(
                    local.cluster(),
                    &format!("deleting binding {}", name(&rb)),
                    &e,
                );
            }
        }
    }
}

/// Karmada Clusters: Ready when their endpoint is a running sandbox cluster that accepts
/// the token in their secret. Returns the Ready ones.
fn clusters(shared: &Shared, local: &Local<'_>) -> Vec<Member> {
    let mut members = Vec::new();
    for obj in local.list("cluster.karmada.io", "Cluster") {
        let endpoint = obj["spec"]["apiEndpoint"].as_str().unwrap_or_default();
        let target = shared.cluster_at(endpoint);
        let problem = match &target {
            None if endpoint.is_empty() => Some("the cluster has no spec.apiEndpoint".to_string()),
            None => Some(format!("cluster is not reachable at {endpoint}")),
            // A member that drops every connection (injected faults) is as gone as one that
            // is not there.
            Some(c) if c.faults.unreachable() => {
                Some(format!("cluster is not reachable at {endpoint}"))
            }
            Some(c) => token_problem(local, &obj, c),
        };
        let g = generation(&obj);
        let status = match (&problem, &target) {
            (None, Some(c)) => {
                let nodes = Local::new(c, MANAGER).list("", "Node").len();
                json!({"kubernetesVersion": crate::KUBERNETES_VERSION,
                       "nodeSummary": {"totalNum": nodes, "readyNum": nodes},
                       "conditions": conditions(&obj["status"]["conditions"], &[("Ready", true, "ClusterReady", "cluster is healthy and ready to accept workloads")], Some(g))})
            }
            (Some(message), _) => {
                json!({"conditions": conditions(&obj["status"]["conditions"], &[("Ready", false, "ClusterNotReachable", message)], Some(g))})
            }
            (None, None) => unreachable!("no problem means a target"),
        };
        if let Err(e) = local.set_status(&obj, status) {
            report(
                local.cluster(),
                &format!("Karmada Cluster {}", name(&obj)),
                &e,
            );
        }
        if let (None, Some(cluster)) = (problem, target) {
            members.push(Member {
                name: name(&obj).to_string(),
                labels: obj["metadata"]["labels"].clone(),
                cluster,
            });
        }
    }
    members
}

/// A Push cluster's secret must exist; if it carries a token, the member must accept it.
fn token_problem(local: &Local<'_>, obj: &Value, member: &Cluster) -> Option<String> {
    let r = &obj["spec"]["secretRef"];
    let (ns, sname) = (r["namespace"].as_str()?, r["name"].as_str()?);
    let Some(secret) = local.get("", "Secret", ns, sname) else {
        return Some(format!("secret {ns}/{sname} (spec.secretRef) not found"));
    };
    let token = secret["data"]["token"]
        .as_str()
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .map(|t| String::from_utf8_lossy(&t).trim().to_string())?;
    (token != member.token).then(|| {
        format!("the token in secret {ns}/{sname} is not accepted by the cluster (Unauthorized)")
    })
}

/// The templates a policy selects (in its namespace for a PropagationPolicy).
fn selected(local: &Local<'_>, policy: &Value) -> Vec<Value> {
    let scoped = policy["kind"] == "PropagationPolicy";
    let mut out: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for sel in policy["spec"]["resourceSelectors"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (group, kind) = group_kind(sel);
        for obj in local.list(&group, &kind) {
            let ns_ok = if scoped {
                namespace(&obj) == namespace(policy)
            } else {
                sel["namespace"]
                    .as_str()
                    .is_none_or(|ns| ns == namespace(&obj))
            };
            let name_ok = sel["name"].as_str().is_none_or(|n| n == name(&obj));
            let labels_ok = sel.get("labelSelector").is_none_or(|s| {
                LabelSelector::from_object(s).matches(obj["metadata"].get("labels"))
            });
            let key = (
                group.clone(),
                kind.clone(),
                namespace(&obj).to_string(),
                name(&obj).to_string(),
            );
            if ns_ok && name_ok && labels_ok && !deleting(&obj) && seen.insert(key) {
                out.push(obj);
            }
        }
    }
    out
}

/// One template's schedule: where it goes and with how many replicas.
struct Binding {
    policy: Value,
    template: Value,
    replicas: Option<i64>,
    /// (member name, replicas) in name order.
    clusters: Vec<(String, Option<i64>)>,
}

impl Binding {
    fn name(&self) -> String {
        let (_, kind) = group_kind(&self.template);
        format!("{}-{}", name(&self.template), kind.to_lowercase()).replace(':', ".")
    }
}

fn affinity_matches(affinity: &Value, member: &Member) -> bool {
    if affinity.is_null() {
        return true;
    }
    let listed = |f: &str| {
        affinity[f]
            .as_array()
            .is_some_and(|l| l.iter().any(|n| n == member.name.as_str()))
    };
    if listed("exclude") {
        return false;
    }
    if affinity["clusterNames"]
        .as_array()
        .is_some_and(|l| !l.is_empty())
        && !listed("clusterNames")
    {
        return false;
    }
    affinity
        .get("labelSelector")
        .is_none_or(|s| LabelSelector::from_object(s).matches(Some(&member.labels)))
}

fn schedule(policy: &Value, template: Value, members: &[Member]) -> Binding {
    let placement = &policy["spec"]["placement"];
    let chosen: Vec<&Member> = members
        .iter()
        .filter(|m| affinity_matches(&placement["clusterAffinity"], m))
        .collect();
    let replicas = template["spec"]["replicas"].as_i64();
    let scheduling = &placement["replicaScheduling"];
    let clusters = match replicas {
        Some(total) if scheduling["replicaSchedulingType"] == "Divided" => {
            let list = &scheduling["weightPreference"]["staticWeightList"];
            let weights: Vec<i64> = chosen
                .iter()
                .map(|m| match list.as_array() {
                    Some(entries) if !entries.is_empty() => entries
                        .iter()
                        .filter(|e| affinity_matches(&e["targetCluster"], m))
                        .map(|e| e["weight"].as_i64().unwrap_or(0))
                        .max()
                        .unwrap_or(0),
                    _ => 1,
                })
                .collect();
            divide(total, &weights)
                .into_iter()
                .zip(&chosen)
                .filter(|(n, _)| *n > 0)
                .map(|(n, m)| (m.name.clone(), Some(n)))
                .collect()
        }
        _ => chosen.iter().map(|m| (m.name.clone(), replicas)).collect(),
    };
    Binding {
        policy: policy.clone(),
        template,
        replicas,
        clusters,
    }
}

/// Splits `total` by `weights`: floors first, then the remainder by largest fraction (ties
/// to the earlier cluster).
pub(crate) fn divide(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i64 = weights.iter().sum();
    if sum <= 0 {
        return vec![0; weights.len()];
    }
    let mut out: Vec<i64> = weights.iter().map(|w| total * w / sum).collect();
    let mut rest = total - out.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (-((total * weights[i]) % sum), i));
    for i in order {
        if rest == 0 {
            break;
        }
        if weights[i] > 0 {
            out[i] += 1;
            rest -= 1;
        }
    }
    out
}

/// Writes a binding and its copies, and reports how applying went.
fn bind(
    local: &Local<'_>,
    b: &Binding,
    members: &[Member],
    overrides: &[Value],
) -> Result<(), crate::status::ApiError> {
    let t = &b.template;
    let cluster_scoped = namespace(t).is_empty();
    let kind = if cluster_scoped {
        "ClusterResourceBinding"
    } else {
        "ResourceBinding"
    };
    let existing = local.get(WORK, kind, namespace(t), &b.name());
    // Members it leaves: remove the copies there first.
    for old in existing
        .as_ref()
        .and_then(|rb| rb["spec"]["clusters"].as_array())
        .into_iter()
        .flatten()
    {
        let old_name = old["name"].as_str().unwrap_or_default();
        if !b.clusters.iter().any(|(n, _)| n == old_name) {
            remove_copy(members, old_name, &resource_ref(t));
        }
    }
    let mut metadata = json!({"name": b.name(),
        "annotations": {POLICY_NAME: name(&b.policy), POLICY_NAMESPACE: namespace(&b.policy)},
        "labels": {"propagationpolicy.karmada.io/permanent-id": b.policy["metadata"]["labels"]["propagationpolicy.karmada.io/permanent-id"]}});
    if !cluster_scoped {
        metadata["namespace"] = json!(namespace(t));
    }
    let mut spec = json!({"resource": resource_ref(t), "schedulerName": "default-scheduler",
        "clusters": b.clusters.iter().map(|(n, r)| match r {
            Some(r) => json!({"name": n, "replicas": r}),
            None => json!({"name": n}),
        }).collect::<Vec<_>>()});
    if let Some(r) = b.replicas {
        spec["replicas"] = json!(r);
    }
    if let Some(p) = b.policy["spec"].get("placement") {
        spec["placement"] = p.clone();
    }
    let rb = local.apply(&json!({"apiVersion": format!("{WORK}/v1alpha2"), "kind": kind, "metadata": metadata, "spec": spec}))?;
    let mut aggregated = Vec::new();
    let mut all_applied = true;
    for (member_name, replicas) in &b.clusters {
        let Some(member) = members.iter().find(|m| &m.name == member_name) else {
            continue;
        };
        let result = copy_to(member, t, *replicas, overrides);
        let mut entry = json!({"clusterName": member_name, "applied": result.is_ok(),
            "health": if result.is_ok() { "Healthy" } else { "Unknown" }});
        if let Err(message) = result {
            all_applied = false;
            entry["appliedMessage"] = json!(message);
        }
        aggregated.push(entry);
    }
    let g = generation(&rb);
    let scheduled_message = if b.clusters.is_empty() {
        "0/0 clusters are available: no cluster fits"
    } else {
        "Binding has been scheduled successfully."
    };
    let applied_message = if all_applied {
        "All works have been successfully applied"
    } else {
        "Failed to apply all works, see status.aggregatedStatus for details"
    };
    let status = json!({"schedulerObservedGeneration": g, "aggregatedStatus": aggregated,
        "conditions": conditions(&rb["status"]["conditions"], &[
            ("Scheduled", !b.clusters.is_empty(), if b.clusters.is_empty() { "NoClusterFit" } else { "Success" }, scheduled_message),
            ("FullyApplied", all_applied && !b.clusters.is_empty(), if all_applied { "FullyAppliedSuccess" } else { "FullyAppliedFailed" }, applied_message)], None)});
    local.set_status(&rb, status)?;
    Ok(())
}

fn resource_ref(t: &Value) -> Value {
    let mut r = json!({"apiVersion": t["apiVersion"], "kind": t["kind"], "name": name(t),
        "uid": t["metadata"]["uid"], "resourceVersion": t["metadata"]["resourceVersion"]});
    if !namespace(t).is_empty() {
        r["namespace"] = json!(namespace(t));
    }
    r
}

/// The member's copy: the template without server metadata and status, with its share of
/// replicas and the matching overrides applied.
fn copy_to(
    member: &Member,
    template: &Value,
    replicas: Option<i64>,
    overrides: &[Value],
) -> Result<(), String> {
    let mut obj = Map::new();
    for (k, v) in template.as_object().into_iter().flatten() {
        if k != "metadata" && k != "status" {
            obj.insert(k.clone(), v.clone());
        }
    }
    let mut obj = Value::Object(obj);
    let m = &template["metadata"];
    obj["metadata"] = json!({"name": m["name"]});
    if !namespace(template).is_empty() {
        obj["metadata"]["namespace"] = m["namespace"].clone();
    }
    for f in ["labels", "annotations"] {
        if let Some(v) = m.get(f) {
            obj["metadata"][f] = v.clone();
        }
    }
    obj["metadata"]["labels"]["karmada.io/managed"] = json!("true");
    if let Some(r) = replicas {
        obj["spec"]["replicas"] = json!(r);
    }
    for policy in overrides {
        apply_override(policy, template, member, &mut obj);
    }
    let target = Local::new(&member.cluster, WORK_MANAGER);
    let ns = namespace(template);
    if !ns.is_empty() && target.get("", "Namespace", "", ns).is_none() {
        target
            .apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .map_err(|e| e.message)?;
    }
    target.apply(&obj).map(|_| ()).map_err(|e| e.message)
}

fn remove_copy(members: &[Member], member_name: &str, res: &Value) {
    let Some(member) = members.iter().find(|m| m.name == member_name) else {
        return;
    };
    let mut stub = json!({"apiVersion": res["apiVersion"], "kind": res["kind"], "metadata": {"name": res["name"]}});
    if let Some(ns) = res["namespace"].as_str() {
        stub["metadata"]["namespace"] = json!(ns);
    }
    if let Err(e) = Local::new(&member.cluster, WORK_MANAGER).delete(&stub) {
        report(&member.cluster, "removing a propagated object", &e);
    }
}

/// Applies one (Cluster)OverridePolicy's rules that select `template` and target `member`.
fn apply_override(policy: &Value, template: &Value, member: &Member, obj: &mut Value) {
    if policy["kind"] == "OverridePolicy" && namespace(policy) != namespace(template) {
        return;
    }
    let selectors = policy["spec"]["resourceSelectors"].as_array();
    let (group, kind) = group_kind(template);
    let selected = selectors.is_none_or(|s| s.is_empty())
        || selectors.into_iter().flatten().any(|sel| {
            group_kind(sel) == (group.clone(), kind.clone())
                && sel["name"].as_str().is_none_or(|n| n == name(template))
                && sel.get("labelSelector").is_none_or(|s| {
                    LabelSelector::from_object(s).matches(template["metadata"].get("labels"))
                })
        });
    if !selected {
        return;
    }
    for rule in policy["spec"]["overrideRules"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if !affinity_matches(&rule["targetCluster"], member) {
            continue;
        }
        let o = &rule["overriders"];
        for p in o["plaintext"].as_array().into_iter().flatten() {
            plaintext(obj, p);
        }
        for p in o["imageOverrider"].as_array().into_iter().flatten() {
            image(obj, p);
        }
        for (field, list) in [
            ("labels", &o["labelsOverrider"]),
            ("annotations", &o["annotationsOverrider"]),
        ] {
            for p in list.as_array().into_iter().flatten() {
                for (k, v) in p["value"].as_object().into_iter().flatten() {
                    if p["operator"] == "remove" {
                        if let Some(m) = obj["metadata"]
                            .get_mut(field)
                            .and_then(Value::as_object_mut)
                        {
                            m.remove(k);
                        }
                    } else {
                        obj["metadata"][field][k] = v.clone();
                    }
                }
            }
        }
    }
}

/// A plaintext overrider: add, replace or remove at a JSON pointer.
fn plaintext(obj: &mut Value, p: &Value) {
    let path = p["path"].as_str().unwrap_or_default();
    let Some((parent, last)) = path.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    let Some(container) = obj.pointer_mut(parent) else {
        return;
    };
    match (p["operator"].as_str(), container) {
        (Some("remove"), Value::Object(m)) => {
            m.remove(&last);
        }
        (Some("remove"), Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        (Some(_), Value::Object(m)) => {
            m.insert(last, p["value"].clone());
        }
        (Some(_), Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => a[i] = p["value"].clone(),
            _ if last == "-" => a.push(p["value"].clone()),
            _ => {}
        },
        _ => {}
    }
}

/// An image overrider on every container (or the one at `predicate.path`).
fn image(obj: &mut Value, p: &Value) {
    let value = p["value"].as_str().unwrap_or_default();
    let operator = p["operator"].as_str().unwrap_or("replace");
    let component = p["component"].as_str().unwrap_or_default();
    let mut paths = Vec::new();
    match p["predicate"]["path"].as_str() {
        Some(path) => paths.push(path.to_string()),
        None => {
            for (i, _) in obj["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                paths.push(format!("/spec/template/spec/containers/{i}/image"));
            }
        }
    }
    for path in paths {
        let Some(Value::String(img)) = obj.pointer_mut(&path) else {
            continue;
        };
        *img = override_image(img, component, operator, value);
    }
}

/// Registry/Repository/Tag edits of an image reference.
pub(crate) fn override_image(image: &str, component: &str, operator: &str, value: &str) -> String {
    let (rest, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (image, None),
    };
    let (registry, repo) = match rest.split_once('/') {
        Some((r, repo)) if r.contains('.') || r.contains(':') || r == "localhost" => {
            (Some(r), repo)
        }
        _ => (None, rest),
    };
    let edit = |current: Option<&str>| -> Option<String> {
        match operator {
            "remove" => None,
            "add" => Some(format!("{}{value}", current.unwrap_or(""))),
            _ => Some(value.to_string()),
        }
    };
    let (mut registry, mut repo, mut tag) = (
        registry.map(str::to_string),
        repo.to_string(),
        tag.map(str::to_string),
    );
    match component {
        "Registry" => registry = edit(registry.as_deref()),
        "Repository" => repo = edit(Some(&repo)).unwrap_or_default(),
        "Tag" => tag = edit(tag.as_deref()),
        _ => {}
    }
    let mut out = String::new();
    if let Some(r) = registry {
        out.push_str(&r);
        out.push('/');
    }
    out.push_str(&repo);
    if let Some(t) = tag {
        out.push(':');
        out.push_str(&t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_by_weight() {
        assert_eq!(divide(6, &[1, 2]), vec![2, 4]);
        assert_eq!(divide(5, &[1, 1]), vec![3, 2]);
        assert_eq!(divide(7, &[1, 1, 1]), vec![3, 2, 2]);
        assert_eq!(divide(4, &[0, 1]), vec![0, 4]);
        assert_eq!(divide(3, &[0, 0]), vec![0, 0]);
    }

    #[test]
    fn image_edits() {
        assert_eq!(
            override_image("nginx:1.25", "Registry", "replace", "registry.cn"),
            "registry.cn/nginx:1.25"
        );
        assert_eq!(
            override_image("docker.io/library/nginx:1.25", "Tag", "replace", "1.27"),
            "docker.io/library/nginx:1.27"
        );
        assert_eq!(
            override_image("docker.io/nginx", "Registry", "remove", ""),
            "nginx"
        );
        assert_eq!(
            override_image("nginx", "Repository", "add", "-edge"),
            "nginx-edge"
        );
    }
}
