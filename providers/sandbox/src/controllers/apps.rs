//! The Deployment and ReplicaSet controllers, in every cluster (pods stay virtual).
//!
//! A Deployment gets one ReplicaSet per pod template, named `<deployment>-<pod-template-hash>`
//! and labelled with the hash, owned by the Deployment and annotated with its revision. The
//! current one is scaled to the Deployment's replicas and the older ones to zero; the oldest
//! beyond `revisionHistoryLimit` are deleted. A ReplicaSet's (virtual) pods are ready and
//! available one controller pass after it is scaled, unless the cluster has the
//! `rollouts_stall` fault. The Deployment's status then follows, as the upstream controller
//! reports it: `observedGeneration`, `replicas`, `updatedReplicas`, `readyReplicas`,
//! `availableReplicas`, and the `Available` and `Progressing` conditions.

use super::{conditions, deleting, generation, name, namespace, owner_ref, report};
use crate::local::Local;
use serde_json::{Value, json};

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

/// Kubernetes' alphabet for generated names (no vowels, no look-alike digits).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable 10-character hash of a pod template.
pub(super) fn template_hash(template: &Value) -> String {
    let digest = blake3::hash(template.to_string().as_bytes());
    digest
        .as_bytes()
        .iter()
        .take(10)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn owned_by(rs: &Value, deployment: &Value) -> bool {
    rs["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["uid"] == deployment["metadata"]["uid"])
}

pub(super) fn reconcile(local: &Local<'_>) {
    let stall = local.cluster().faults.config().rollouts_stall;
    let deployments = local.list("apps", "Deployment");
    let sets = local.list("apps", "ReplicaSet");
    // ReplicaSets whose Deployment is gone are garbage-collected by their owner reference.
    for d in deployments.iter().filter(|d| !deleting(d)) {
        deployment(local, d, &sets);
    }
    for rs in local.list("apps", "ReplicaSet") {
        replica_set(local, &rs, stall);
    }
}

fn deployment(local: &Local<'_>, d: &Value, sets: &[Value]) {
    let template = &d["spec"]["template"];
    let hash = template_hash(template);
    let rs_name = format!("{}-{hash}", name(d));
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let mut owned: Vec<&Value> = sets.iter().filter(|rs| owned_by(rs, d)).collect();
    owned.sort_by_key(|rs| {
        rs["metadata"]["annotations"][REVISION]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    });
    let current = owned.iter().find(|rs| name(rs) == rs_name).copied();
    let revision = match current {
        Some(rs) => rs["metadata"]["annotations"][REVISION]
            .as_str()
            .unwrap_or("1")
            .to_string(),
        None => (owned
            .iter()
            .filter_map(|rs| {
                rs["metadata"]["annotations"][REVISION]
                    .as_str()?
                    .parse::<i64>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
            + 1)
        .to_string(),
    };
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels[HASH_LABEL] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut rs_template = template.clone();
    rs_template["metadata"]["labels"] = labels.clone();
    let want = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name,
            "namespace": namespace(d),
            "labels": labels,
            "annotations": {REVISION: revision, "deployment.kubernetes.io/desired-replicas": replicas.to_string()},
            "ownerReferences": [owner_ref(d, true)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
    });
    let same = current.is_some_and(|rs| {
        rs["spec"]["replicas"] == want["spec"]["replicas"]
            && rs["metadata"]["annotations"][REVISION] == want["metadata"]["annotations"][REVISION]
    });
    if !same && let Err(e) = local.apply(&want) {
        report(local.cluster(), &format!("ReplicaSet {rs_name}"), &e);
        return;
    }
    // Older revisions scale down once the new one is available; the history is bounded.
    let new_available = current.map_or(0, |rs| {
        rs["status"]["availableReplicas"].as_i64().unwrap_or(0)
    });
    let history = d["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let old: Vec<&Value> = owned
        .iter()
        .filter(|rs| name(rs) != rs_name)
        .copied()
        .collect();
    for (i, rs) in old.iter().enumerate() {
        if i + history < old.len() {
            if let Err(e) = local.delete(rs) {
                report(
                    local.cluster(),
                    &format!("deleting ReplicaSet {}", name(rs)),
                    &e,
                );
            }
            continue;
        }
        if new_available >= replicas && rs["spec"]["replicas"].as_i64().unwrap_or(0) != 0 {
            let mut scaled = (*rs).clone();
            scaled["spec"]["replicas"] = json!(0);
            if let Err(e) = local.update(&scaled) {
                report(local.cluster(), &format!("ReplicaSet {}", name(rs)), &e);
            }
        }
    }
    // The status, from the ReplicaSets as they are now.
    let n = |rs: &Value, k: &str| rs["status"][k].as_i64().unwrap_or(0);
    let total: i64 = owned.iter().map(|rs| n(rs, "replicas")).sum();
    let ready: i64 = owned.iter().map(|rs| n(rs, "readyReplicas")).sum();
    let available: i64 = owned.iter().map(|rs| n(rs, "availableReplicas")).sum();
    let updated = current.map_or(0, |rs| n(rs, "replicas"));
    let g = generation(d);
    let done = updated == replicas && new_available == replicas && total == replicas;
    let min_available = available >= replicas.saturating_sub(replicas / 4);
    let (progressing_reason, progressing_message) = if done {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else if current.is_none() {
        (
            "NewReplicaSetCreated",
            format!("Created new replica set \"{rs_name}\""),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    };
    let (available_reason, available_message) = if min_available && available > 0 {
        (
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let status = json!({
        "observedGeneration": g,
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (replicas - available).max(0),
        "conditions": conditions(&d["status"]["conditions"], &[
            ("Available", min_available && available > 0, available_reason, available_message),
            ("Progressing", true, progressing_reason, &progressing_message),
        ], None),
    });
    if let Err(e) = local.set_status(d, status) {
        report(
            local.cluster(),
            &format!("status of Deployment {}", name(d)),
            &e,
        );
    }
}

/// A ReplicaSet's virtual pods: all of them exist at once, and are ready (and available)
/// one pass later, unless rollouts stall in this cluster.
fn replica_set(local: &Local<'_>, rs: &Value, stall: bool) {
    let want = rs["spec"]["replicas"].as_i64().unwrap_or(1);
    let g = generation(rs);
    let had = rs["status"]["replicas"].as_i64().unwrap_or(0);
    let ready = if stall || had != want { 0 } else { want };
    let status = json!({
        "observedGeneration": g,
        "replicas": want,
        "fullyLabeledReplicas": want,
        "readyReplicas": ready,
        "availableReplicas": ready,
    });
    if let Err(e) = local.set_status(rs, status) {
        report(
            local.cluster(),
            &format!("status of ReplicaSet {}", name(rs)),
            &e,
        );
    }
}
