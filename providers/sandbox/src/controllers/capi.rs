//! Cluster API: a Cluster whose infrastructure and control plane exist is provisioned as a
//! new sandbox cluster, gets its `<name>-kubeconfig` Secret and becomes `Available`;
//! deleting it removes that sandbox cluster after the Cluster's finalizer. Control planes,
//! MachineDeployments, DockerClusters, MachineHealthChecks and ClusterClasses report ready.

use super::{conditions, deleting, generation, name, namespace, owner_ref, report};
use crate::local::Local;
use crate::{Cluster, Shared};
use base64::Engine;
use serde_json::{Value, json};

const GROUP: &str = "cluster.x-k8s.io";
const FINALIZER: &str = "cluster.cluster.x-k8s.io";

/// The sandbox cluster a CAPI Cluster becomes: its name in `default`, else `NS-NAME`.
pub(crate) fn sandbox_name(obj: &Value) -> String {
    match namespace(obj) {
        "default" => name(obj).to_string(),
        ns => format!("{ns}-{}", name(obj)),
    }
}

/// Who created a workload sandbox cluster, recorded in the sandbox.
fn creator(mgmt: &Cluster, obj: &Value) -> String {
    format!("capi:{}/{}/{}", mgmt.name, namespace(obj), name(obj))
}

pub(super) fn reconcile(shared: &Shared, local: &Local<'_>) {
    if local.resource_type(GROUP, "Cluster").is_none() {
        return;
    }
    for obj in local.list(GROUP, "Cluster") {
        if let Err(e) = cluster_step(shared, local, &obj) {
            report(
                local.cluster(),
                &format!("Cluster {}/{}", namespace(&obj), name(&obj)),
                &e,
            );
        }
    }
    let ready_replicas = |obj: &Value| -> Value {
        let n = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        json!({"replicas": n, "readyReplicas": n, "availableReplicas": n, "upToDateReplicas": n})
    };
    for obj in local.list("controlplane.cluster.x-k8s.io", "KubeadmControlPlane") {
        let g = generation(&obj);
        let mut status = ready_replicas(&obj);
        status["version"] = obj["spec"]["version"].clone();
        status["observedGeneration"] = json!(g);
        status["initialization"] = json!({"controlPlaneInitialized": true});
        status["conditions"] = conditions(
            &obj["status"]["conditions"],
            &[
                ("Available", true, "Available", ""),
                ("MachinesReady", true, "Ready", ""),
                ("MachinesUpToDate", true, "UpToDate", ""),
            ],
            Some(g),
        );
        set(local, &obj, status);
    }
    for obj in local.list(GROUP, "MachineDeployment") {
        let g = generation(&obj);
        let mut status = ready_replicas(&obj);
        status["phase"] = json!("Running");
        status["observedGeneration"] = json!(g);
        status["conditions"] = conditions(
            &obj["status"]["conditions"],
            &[
                ("Available", true, "Available", ""),
                ("MachinesReady", true, "Ready", ""),
            ],
            Some(g),
        );
        set(local, &obj, status);
    }
    for obj in local.list("infrastructure.cluster.x-k8s.io", "DockerCluster") {
        let g = generation(&obj);
        let status = json!({"observedGeneration": g, "initialization": {"provisioned": true},
            "conditions": conditions(&obj["status"]["conditions"], &[("Ready", true, "Ready", "")], Some(g))});
        set(local, &obj, status);
    }
    for obj in local.list(GROUP, "MachineHealthCheck") {
        let g = generation(&obj);
        let status = json!({"observedGeneration": g, "expectedMachines": 0, "currentHealthy": 0, "remediationsAllowed": 0,
            "conditions": conditions(&obj["status"]["conditions"], &[("RemediationAllowed", true, "RemediationAllowed", "")], Some(g))});
        set(local, &obj, status);
    }
    for obj in local.list(GROUP, "ClusterClass") {
        let g = generation(&obj);
        let status = json!({"observedGeneration": g,
            "conditions": conditions(&obj["status"]["conditions"], &[("VariablesReady", true, "VariablesReady", ""), ("RefVersionsUpToDate", true, "RefVersionsUpToDate", "")], Some(g))});
        set(local, &obj, status);
    }
}

fn set(local: &Local<'_>, obj: &Value, status: Value) {
    if let Err(e) = local.set_status(obj, status) {
        report(local.cluster(), &format!("status of {}", name(obj)), &e);
    }
}

/// One step of a Cluster: finalizer, then provisioning, then Available; or deletion.
fn cluster_step(
    shared: &Shared,
    local: &Local<'_>,
    obj: &Value,
) -> Result<(), crate::status::ApiError> {
    let mgmt = local.cluster();
    let workload = sandbox_name(obj);
    let tag = creator(mgmt, obj);
    if deleting(obj) {
        if let Some(c) = shared.cluster(&workload)
            && c.created_by.as_deref() == Some(tag.as_str())
            && let Err(e) = shared.remove_cluster(&workload)
        {
            eprintln!("flotilla sandbox: removing cluster {workload:?}: {e}");
        }
        return local.remove_finalizer(obj, FINALIZER);
    }
    let obj = &local.add_finalizer(obj, FINALIZER)?;
    let g = generation(obj);
    let ns = namespace(obj);
    // What the Cluster waits for: its infrastructure, its control plane, or its class.
    let mut missing = Vec::new();
    let mut owned = Vec::new();
    for field in ["infrastructureRef", "controlPlaneRef"] {
        let r = &obj["spec"][field];
        if !r.is_object() {
            continue;
        }
        let (group, kind, rname) = (
            r["apiGroup"].as_str().unwrap_or_default(),
            r["kind"].as_str().unwrap_or_default(),
            r["name"].as_str().unwrap_or_default(),
        );
        match local.get(group, kind, ns, rname) {
            Some(target) => owned.push(target),
            None => missing.push(format!("{kind} {rname}")),
        }
    }
    if let Some(class) = obj["spec"]["topology"]["classRef"]["name"].as_str() {
        let class_ns = obj["spec"]["topology"]["classRef"]["namespace"]
            .as_str()
            .unwrap_or(ns);
        if local.get(GROUP, "ClusterClass", class_ns, class).is_none() {
            missing.push(format!("ClusterClass {class}"));
        }
    }
    // The Cluster owns its infrastructure and control plane, so deleting it deletes them.
    let owner = owner_ref(obj, true);
    for target in owned {
        let refs = target["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !refs.iter().any(|r| r["uid"] == owner["uid"]) {
            let mut body = target.clone();
            let mut refs = refs;
            refs.push(owner.clone());
            body["metadata"]["ownerReferences"] = Value::Array(refs);
            local.update(&body)?;
        }
    }
    if !missing.is_empty() {
        let message = format!("waiting for {}", missing.join(", "));
        let status = json!({"phase": "Provisioning", "observedGeneration": g,
            "initialization": {"infrastructureProvisioned": false, "controlPlaneInitialized": false},
            "conditions": conditions(&obj["status"]["conditions"], &[
                ("Available", false, "NotAvailable", &message),
                ("InfrastructureReady", false, "NotReady", &message)], Some(g))});
        local.set_status(obj, status)?;
        return Ok(());
    }
    let target = match shared.cluster(&workload) {
        Some(c) if c.created_by.as_deref() == Some(tag.as_str()) => c,
        Some(_) => {
            let message = format!(
                "the sandbox already has a cluster named {workload:?} that this Cluster did not create; rename the Cluster"
            );
            let status = json!({"phase": "Failed", "observedGeneration": g,
                "conditions": conditions(&obj["status"]["conditions"], &[("Available", false, "NameTaken", &message)], Some(g))});
            local.set_status(obj, status)?;
            return Ok(());
        }
        None => match shared.add_cluster(&workload, Some(tag)) {
            Ok(c) => c,
            Err(e) => {
                let message = e.to_string();
                let status = json!({"phase": "Failed", "observedGeneration": g,
                    "conditions": conditions(&obj["status"]["conditions"], &[("Available", false, "ProvisioningFailed", &message)], Some(g))});
                local.set_status(obj, status)?;
                return Ok(());
            }
        },
    };
    let kubeconfig = target.kubeconfig();
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{}-kubeconfig", name(obj)), "namespace": ns,
                     "labels": {"cluster.x-k8s.io/cluster-name": name(obj)},
                     "ownerReferences": [owner]},
        "type": "cluster.x-k8s.io/secret",
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(kubeconfig)}});
    local.apply(&secret)?;
    let ok = |ty: &'static str| (ty, true, ty, "");
    let status = json!({"phase": "Provisioned", "observedGeneration": g,
        "initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true},
        "conditions": conditions(&obj["status"]["conditions"], &[
            ok("Available"), ok("InfrastructureReady"), ok("ControlPlaneInitialized"),
            ok("ControlPlaneAvailable"), ok("WorkersAvailable"), ok("RemoteConnectionProbe")], Some(g))});
    local.set_status(obj, status)?;
    Ok(())
}
