//! Admission for the ecosystems' kinds: the defaulting their mutating webhooks do and the
//! checks their validating webhooks make, on real and dry-run requests alike. Immutable
//! fields are refused with 422 Invalid naming the field ("field is immutable"); ordering
//! rules (a Volcano queue must be Open, KubeEdge rule endpoints must exist) are refused as
//! webhook denials (403, "admission webhook ... denied the request").
//!
//! Only writes to the main resource are admitted here; status writes are not (as upstream,
//! where the webhooks do not register for the status subresource).

use crate::kinds::ResourceType;
use crate::status::{ApiError, Cause};
use crate::store::Store;
use serde_json::{Value, json};

const IMMUTABLE: &str = "field is immutable";

fn invalid(rt: &ResourceType, obj: &Value, causes: Vec<Cause>) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid(&rt.group, &rt.kind, name, causes))
}

fn denied(webhook: &str, message: impl Into<String>) -> ApiError {
    ApiError::forbidden(format!(
        "admission webhook \"{webhook}\" denied the request: {}",
        message.into()
    ))
}

/// `field` changed between `old` and `new` (missing counts as null).
fn changed(old: &Value, new: &Value, pointer: &str) -> bool {
    old.pointer(pointer).unwrap_or(&Value::Null) != new.pointer(pointer).unwrap_or(&Value::Null)
}

fn immutable(old: &Value, new: &Value, pointer: &str, causes: &mut Vec<Cause>) {
    if changed(old, new, pointer) {
        let field = pointer.trim_start_matches('/').replace('/', ".");
        let value = new.pointer(pointer).cloned().unwrap_or(Value::Null);
        causes.push(Cause::invalid(field, &value, IMMUTABLE));
    }
}

/// Leaf paths (dotted) where `old` and `new` differ; lists count as leaves.
fn changed_paths(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                changed_paths(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &sub,
                    out,
                );
            }
        }
        (Value::Null, Value::Object(_)) | (Value::Object(_), Value::Null) => {
            let empty = Value::Object(serde_json::Map::new());
            let (a, b) = match (old, new) {
                (Value::Null, b) => (&empty, b),
                (a, _) => (a, &empty),
            };
            changed_paths(a, b, path, out);
        }
        (a, b) if a != b => out.push(path.to_string()),
        _ => {}
    }
}

/// Applies the ecosystems' defaulting to a write of the main resource.
pub fn mutate(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) {
    let spec_default = |obj: &mut Value, field: &str, value: Value| {
        if !obj["spec"].is_object() {
            obj["spec"] = json!({});
        }
        if obj["spec"].get(field).is_none_or(Value::is_null) {
            obj["spec"][field] = value;
        }
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("scheduling.volcano.sh", "Queue") => {
            spec_default(obj, "weight", json!(1));
            spec_default(obj, "reclaimable", json!(true));
        }
        ("batch.volcano.sh", "Job") if old.is_none() => {
            spec_default(obj, "queue", json!("default"));
            spec_default(obj, "schedulerName", json!("volcano"));
            spec_default(obj, "maxRetry", json!(3));
            let mut total = 0;
            for (i, task) in obj
                .pointer_mut("/spec/tasks")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if task.get("name").is_none_or(Value::is_null) {
                    task["name"] = json!(format!("default{i}"));
                }
                total += task["minAvailable"]
                    .as_i64()
                    .or(task["replicas"].as_i64())
                    .unwrap_or(0);
            }
            spec_default(obj, "minAvailable", json!(total));
        }
        ("policy.karmada.io", "PropagationPolicy" | "ClusterPropagationPolicy") => {
            let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
            default_selector_namespaces(obj, namespace.as_deref());
            if let Some(list) = obj
                .pointer_mut("/spec/placement/spreadConstraints")
                .and_then(Value::as_array_mut)
            {
                for c in list.iter_mut().filter(|c| c.is_object()) {
                    if c.get("spreadByField").is_none() && c.get("spreadByLabel").is_none() {
                        c["spreadByField"] = json!("cluster");
                    }
                    if c.get("minGroups").is_none() {
                        c["minGroups"] = json!(1);
                    }
                }
            }
            if let Some(scheduling) = obj
                .pointer_mut("/spec/placement/replicaScheduling")
                .and_then(Value::as_object_mut)
                && scheduling.get("replicaSchedulingType") == Some(&json!("Divided"))
                && !scheduling.contains_key("replicaDivisionPreference")
            {
                scheduling.insert("replicaDivisionPreference".into(), json!("Weighted"));
            }
            // The permanent id: set once, kept across updates that do not send it.
            let label = "propagationpolicy.karmada.io/permanent-id";
            let kept = old
                .and_then(|o| o["metadata"]["labels"][label].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            if obj["metadata"]["labels"].get(label).is_none() {
                if !obj["metadata"]["labels"].is_object() {
                    obj["metadata"]["labels"] = json!({});
                }
                obj["metadata"]["labels"][label] = json!(kept);
            }
        }
        ("policy.karmada.io", "OverridePolicy") => {
            let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
            default_selector_namespaces(obj, namespace.as_deref());
        }
        _ => {}
    }
}

fn default_selector_namespaces(obj: &mut Value, namespace: Option<&str>) {
    let Some(ns) = namespace else { return };
    for sel in obj
        .pointer_mut("/spec/resourceSelectors")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if sel.get("namespace").is_none_or(|n| n == "") {
            sel["namespace"] = json!(ns);
        }
    }
}

/// The validating webhooks, for a create (`old` is `None`) or update of the main resource.
pub fn validate(
    store: &Store,
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("cluster.x-k8s.io", "Cluster") => capi_cluster(obj, old, &mut causes),
        (
            "infrastructure.cluster.x-k8s.io" | "controlplane.cluster.x-k8s.io",
            "DockerMachineTemplate" | "DockerClusterTemplate" | "KubeadmControlPlaneTemplate",
        ) => {
            if let Some(old) = old
                && changed(old, obj, "/spec/template/spec")
            {
                causes.push(Cause::invalid(
                    "spec.template.spec",
                    &obj["spec"]["template"]["spec"],
                    format!("{IMMUTABLE}. Please create a new resource instead."),
                ));
            }
        }
        ("cluster.x-k8s.io", "MachineDeployment") => {
            if let Some(old) = old {
                immutable(old, obj, "/spec/clusterName", &mut causes);
            }
            if obj["spec"]["clusterName"] != obj["spec"]["template"]["spec"]["clusterName"] {
                causes.push(Cause::invalid(
                    "spec.template.spec.clusterName",
                    &obj["spec"]["template"]["spec"]["clusterName"],
                    "must match spec.clusterName",
                ));
            }
            check_version(obj, old, "/spec/template/spec/version", &mut causes);
        }
        ("cluster.x-k8s.io", "MachineHealthCheck") => {
            if let Some(old) = old {
                immutable(old, obj, "/spec/clusterName", &mut causes);
            }
        }
        ("controlplane.cluster.x-k8s.io", "KubeadmControlPlane") => kcp(obj, old, &mut causes),
        ("batch.volcano.sh", "Job") => match old {
            None => {
                queue_open(store, &obj["spec"]["queue"], "validatejob.volcano.sh")?;
                volcano_job_counts(obj, &mut causes);
            }
            Some(old) => {
                volcano_job_update(old, obj, &mut causes)?;
                volcano_job_counts(obj, &mut causes);
            }
        },
        ("scheduling.volcano.sh", "PodGroup") if old.is_none() => {
            queue_open(store, &obj["spec"]["queue"], "validatepodgroup.volcano.sh")?;
        }
        ("rules.kubeedge.io", "Rule" | "RuleEndpoint") => match old {
            Some(old) if changed(old, obj, "/spec") => {
                causes.push(Cause::invalid(
                    "spec",
                    &obj["spec"],
                    format!("{IMMUTABLE}: updates of {} are not supported", rt.kind),
                ));
            }
            Some(_) => {}
            None if rt.kind == "Rule" => kubeedge_rule(store, obj)?,
            None => {}
        },
        ("policy.karmada.io", "PropagationPolicy" | "ClusterPropagationPolicy") => {
            if let Some(old) = old {
                immutable(old, obj, "/spec/schedulerName", &mut causes);
                let label = "/metadata/labels/propagationpolicy.karmada.io~1permanent-id";
                immutable(old, obj, label, &mut causes);
            }
        }
        ("cluster.karmada.io", "Cluster") => {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            if name.len() > 48 {
                causes.push(Cause::invalid(
                    "metadata.name",
                    &json!(name),
                    "must be no more than 48 characters",
                ));
            }
            if let Some(endpoint) = obj["spec"]["apiEndpoint"].as_str()
                && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
            {
                causes.push(Cause::invalid(
                    "spec.apiEndpoint",
                    &json!(endpoint),
                    "must be a valid URL",
                ));
            }
        }
        ("networking.karmada.io", "MultiClusterService") => {
            if let Some(old) = old {
                immutable(old, obj, "/spec/types", &mut causes);
            }
        }
        _ => {}
    }
    invalid(rt, obj, causes)
}

/// Deletes the webhooks refuse.
pub fn validate_delete(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if (rt.group.as_str(), rt.kind.as_str()) == ("scheduling.volcano.sh", "Queue") {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if name == "default" || name == "root" {
            return Err(denied(
                "validatequeue.volcano.sh",
                format!("`{name}` queue can not be deleted"),
            ));
        }
    }
    Ok(())
}

/// `vMAJOR.MINOR.PATCH` → (major, minor, patch).
fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let core = rest.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let out = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(out)
}

/// A Kubernetes version field: semver with a `v`; on update, not down and not past the next
/// minor.
fn check_version(obj: &Value, old: Option<&Value>, pointer: &str, causes: &mut Vec<Cause>) {
    let Some(new) = obj.pointer(pointer).and_then(Value::as_str) else {
        return;
    };
    let field = pointer.trim_start_matches('/').replace('/', ".");
    let Some(nv) = semver(new) else {
        causes.push(Cause::invalid(
            field,
            &json!(new),
            "must be a valid semantic version with a v prefix, e.g. v1.33.0",
        ));
        return;
    };
    let Some(ov) = old
        .and_then(|o| o.pointer(pointer))
        .and_then(Value::as_str)
        .and_then(semver)
    else {
        return;
    };
    let old_text = old
        .and_then(|o| o.pointer(pointer))
        .and_then(Value::as_str)
        .unwrap_or("");
    if nv < ov {
        causes.push(Cause::invalid(
            field,
            &json!(new),
            format!("version cannot be decreased from \"{old_text}\" to \"{new}\""),
        ));
    } else if nv.0 == ov.0 && nv.1 > ov.1 + 1 {
        causes.push(Cause::forbidden(
            field,
            format!(
                "version cannot be increased from \"{old_text}\" to \"{new}\": upgrades may not skip a minor version"
            ),
        ));
    }
}

fn capi_cluster(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if name.len() > 63 {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be no more than 63 characters (a valid label value)",
        ));
    }
    let set = |f: &str| spec.get(f).is_some_and(|v| !v.is_null());
    if !set("controlPlaneRef") && !set("infrastructureRef") && !set("topology") {
        causes.push(Cause::required("spec").with_message(
            "at least one of spec.controlPlaneRef, spec.infrastructureRef or spec.topology must be set",
        ));
    }
    check_version(obj, old, "/spec/topology/version", causes);
    let Some(old) = old else { return };
    for field in ["controlPlaneRef", "infrastructureRef", "topology"] {
        if old["spec"].get(field).is_some_and(|v| !v.is_null()) && !set(field) {
            causes.push(Cause::forbidden(
                format!("spec.{field}"),
                format!("{field} cannot be removed from an existing Cluster"),
            ));
        }
    }
    for field in ["controlPlaneRef", "infrastructureRef"] {
        for part in ["apiGroup", "kind"] {
            if old["spec"][field].is_object() && set(field) {
                immutable(old, obj, &format!("/spec/{field}/{part}"), causes);
            }
        }
    }
}

/// KubeadmControlPlane: changes outside the webhook's allow-list are refused.
fn kcp(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    if let Some(replicas) = obj["spec"]["replicas"].as_i64() {
        let external = obj
            .pointer("/spec/kubeadmConfigSpec/clusterConfiguration/etcd/external")
            .is_some();
        if replicas <= 0 {
            causes.push(Cause::forbidden(
                "spec.replicas",
                "cannot be less than or equal to 0",
            ));
        } else if !external && replicas % 2 == 0 {
            causes.push(Cause::forbidden(
                "spec.replicas",
                "cannot be an even number when etcd is stacked",
            ));
        }
    }
    check_version(obj, old, "/spec/version", causes);
    let Some(old) = old else { return };
    const ALLOWED: &[&str] = &[
        "spec.replicas",
        "spec.version",
        "spec.remediation",
        "spec.machineNaming",
        "spec.rollout",
        "spec.machineTemplate.metadata",
        "spec.machineTemplate.spec",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd",
        "spec.kubeadmConfigSpec.clusterConfiguration.dns",
        "spec.kubeadmConfigSpec.clusterConfiguration.imageRepository",
        "spec.kubeadmConfigSpec.clusterConfiguration.featureGates",
        "spec.kubeadmConfigSpec.clusterConfiguration.apiServer",
        "spec.kubeadmConfigSpec.clusterConfiguration.controllerManager",
        "spec.kubeadmConfigSpec.clusterConfiguration.scheduler",
        "spec.kubeadmConfigSpec.clusterConfiguration.certificateValidityPeriodDays",
        "spec.kubeadmConfigSpec.clusterConfiguration.encryptionAlgorithm",
        "spec.kubeadmConfigSpec.initConfiguration.nodeRegistration",
        "spec.kubeadmConfigSpec.initConfiguration.patches",
        "spec.kubeadmConfigSpec.initConfiguration.skipPhases",
        "spec.kubeadmConfigSpec.initConfiguration.bootstrapTokens",
        "spec.kubeadmConfigSpec.initConfiguration.localAPIEndpoint",
        "spec.kubeadmConfigSpec.initConfiguration.timeouts",
        "spec.kubeadmConfigSpec.joinConfiguration.nodeRegistration",
        "spec.kubeadmConfigSpec.joinConfiguration.patches",
        "spec.kubeadmConfigSpec.joinConfiguration.skipPhases",
        "spec.kubeadmConfigSpec.joinConfiguration.caCertPath",
        "spec.kubeadmConfigSpec.joinConfiguration.controlPlane",
        "spec.kubeadmConfigSpec.joinConfiguration.discovery",
        "spec.kubeadmConfigSpec.joinConfiguration.timeouts",
        "spec.kubeadmConfigSpec.bootCommands",
        "spec.kubeadmConfigSpec.preKubeadmCommands",
        "spec.kubeadmConfigSpec.postKubeadmCommands",
        "spec.kubeadmConfigSpec.files",
        "spec.kubeadmConfigSpec.verbosity",
        "spec.kubeadmConfigSpec.users",
        "spec.kubeadmConfigSpec.ntp",
        "spec.kubeadmConfigSpec.ignition",
        "spec.kubeadmConfigSpec.diskSetup",
        "spec.kubeadmConfigSpec.format",
        "spec.kubeadmConfigSpec.mounts",
    ];
    let mut paths = Vec::new();
    changed_paths(&old["spec"], &obj["spec"], "spec", &mut paths);
    for path in paths {
        let allowed = ALLOWED
            .iter()
            .any(|a| path == *a || path.starts_with(&format!("{a}.")));
        if !allowed {
            causes.push(Cause::forbidden(path, "cannot be modified"));
        }
    }
}

fn queue_open(store: &Store, queue: &Value, webhook: &str) -> Result<(), ApiError> {
    let name = queue.as_str().unwrap_or("default");
    let Some(q) = store.find("scheduling.volcano.sh", "Queue", "", name) else {
        return Err(denied(
            webhook,
            format!("unable to find job queue: queues.scheduling.volcano.sh \"{name}\" not found"),
        ));
    };
    let state = q["status"]["state"].as_str().unwrap_or("");
    if state != "Open" {
        return Err(denied(
            webhook,
            format!(
                "can only submit job to queue with state `Open`, queue `{name}` status is `{}`",
                if state.is_empty() { "Unknown" } else { state }
            ),
        ));
    }
    Ok(())
}

fn volcano_job_counts(obj: &Value, causes: &mut Vec<Cause>) {
    let mut total = 0;
    for (i, task) in obj["spec"]["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let replicas = task["replicas"].as_i64().unwrap_or(0);
        total += replicas;
        if replicas < 0 {
            causes.push(Cause::invalid(
                format!("spec.tasks[{i}].replicas"),
                &json!(replicas),
                "must be greater than or equal to 0",
            ));
        }
        if let Some(min) = task["minAvailable"].as_i64()
            && (min < 0 || min > replicas)
        {
            causes.push(Cause::invalid(
                format!("spec.tasks[{i}].minAvailable"),
                &json!(min),
                "must be between 0 and the task's replicas",
            ));
        }
    }
    if let Some(min) = obj["spec"]["minAvailable"].as_i64()
        && min > total
    {
        causes.push(Cause::invalid(
            "spec.minAvailable",
            &json!(min),
            "job 'minAvailable' should not be greater than total replicas in tasks",
        ));
    }
}

/// A Volcano Job may change only `minAvailable`, task replicas and minAvailable, and
/// `priorityClassName`, and may not add or remove tasks.
fn volcano_job_update(old: &Value, obj: &Value, causes: &mut Vec<Cause>) -> Result<(), ApiError> {
    let old_tasks = old["spec"]["tasks"].as_array().map_or(0, Vec::len);
    let new_tasks = obj["spec"]["tasks"].as_array().map_or(0, Vec::len);
    if old_tasks != new_tasks {
        causes.push(Cause::forbidden(
            "spec.tasks",
            "job updates may not add or remove tasks",
        ));
        return Ok(());
    }
    let mut a = old["spec"].clone();
    let mut b = obj["spec"].clone();
    for spec in [&mut a, &mut b] {
        if let Some(m) = spec.as_object_mut() {
            m.remove("minAvailable");
            m.remove("priorityClassName");
        }
        for task in spec["tasks"].as_array_mut().into_iter().flatten() {
            if let Some(t) = task.as_object_mut() {
                t.remove("replicas");
                t.remove("minAvailable");
            }
        }
    }
    let mut paths = Vec::new();
    changed_paths(&a, &b, "spec", &mut paths);
    if let Some(first) = paths.first() {
        let pointer = format!("/{}", first.replace('.', "/"));
        causes.push(Cause::invalid(
            first.clone(),
            obj.pointer(&pointer).unwrap_or(&Value::Null),
            format!(
                "{IMMUTABLE}: job updates may not change fields other than `minAvailable`, `tasks[*].replicas`, `tasks[*].minAvailable` and `priorityClassName` under spec"
            ),
        ));
    }
    Ok(())
}

/// A KubeEdge Rule needs both endpoints, and one of the supported pairs.
fn kubeedge_rule(store: &Store, obj: &Value) -> Result<(), ApiError> {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut types = Vec::new();
    for end in ["source", "target"] {
        let name = obj["spec"][end].as_str().unwrap_or_default();
        let Some(ep) = store.find("rules.kubeedge.io", "RuleEndpoint", ns, name) else {
            return Err(denied(
                "validate.rule.kubeedge.io",
                format!(
                    "cant get {end} ruleEndpoint {name}: ruleendpoints.rules.kubeedge.io \"{name}\" not found"
                ),
            ));
        };
        types.push(
            ep["spec"]["ruleEndpointType"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    let pair = (types[0].as_str(), types[1].as_str());
    if !matches!(
        pair,
        ("rest", "eventbus") | ("rest", "servicebus") | ("eventbus", "rest")
    ) {
        return Err(denied(
            "validate.rule.kubeedge.io",
            format!(
                "the rule from {} to {} is not supported (supported: rest->eventbus, rest->servicebus, eventbus->rest)",
                pair.0, pair.1
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let obj = |v: &str| json!({"spec": {"version": v}});
        let check = |new: &str, old: &str| {
            let mut causes = Vec::new();
            check_version(&obj(new), Some(&obj(old)), "/spec/version", &mut causes);
            causes.first().map(|c| c.message.clone())
        };
        assert_eq!(check("v1.31.2", "v1.31.0"), None);
        assert_eq!(check("v1.32.0", "v1.31.0"), None);
        assert!(
            check("v1.30.0", "v1.31.0")
                .unwrap()
                .contains("cannot be decreased")
        );
        assert!(
            check("v1.33.0", "v1.31.0")
                .unwrap()
                .contains("skip a minor")
        );
        assert!(check("1.31.0", "v1.31.0").unwrap().contains("v prefix"));
    }

    #[test]
    fn changed_leaf_paths() {
        let mut out = Vec::new();
        changed_paths(
            &json!({"a": {"b": 1, "c": [1]}, "d": 1}),
            &json!({"a": {"b": 2, "c": [1]}, "e": 1}),
            "spec",
            &mut out,
        );
        assert_eq!(out, vec!["spec.a.b", "spec.d", "spec.e"]);
    }
}
