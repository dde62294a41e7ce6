//! Simulated controllers: what the ecosystems' controllers do that a client can see. A
//! short while (the controller delay) after a cluster changes, every controller looks at
//! the objects of its kinds and moves them one step on: conditions and phases, generated
//! objects (kubeconfig Secrets, ResourceBindings, PodGroups, Deployments' ReplicaSets),
//! copies of propagated objects
//! in member clusters, and new sandbox clusters for Cluster API Clusters.
//!
//! Controllers are registered per ecosystem ([`controllers`]). They are level-triggered and idempotent: a pass that finds nothing to do writes
//! nothing, and a pass that writes wakes the next one, so multi-step progress (Pending, then
//! Running) takes one delay per step.

mod apps;
mod capi;
mod karmada;
mod simple;

use crate::local::Local;
use crate::{Cluster, Shared};
use flotilla_ecosystems::Ecosystem;
use serde_json::{Value, json};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How long controllers wait after a change before they act, unless configured.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(200);

/// The field manager controllers write with.
const MANAGER: &str = "sandbox-controller";

/// Runs the controllers of one cluster until it stops.
pub(crate) async fn run(shared: Weak<Shared>, cluster: Arc<Cluster>) {
    let Some((mut topology, delay)) = shared
        .upgrade()
        .map(|s| (s.topology.subscribe(), s.controller_delay))
    else {
        return;
    };
    let mut changes = cluster.subscribe();
    let mut stop = cluster.stop.subscribe();
    // A first pass picks up what a restarted sandbox left half-done.
    let mut pending = true;
    loop {
        if !pending {
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                r = topology.changed() => if r.is_err() { return },
                _ = stop.changed() => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        changes.borrow_and_update();
        topology.borrow_and_update();
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if cluster.stopped() {
            return;
        }
        pass(&shared, &cluster);
        pending = false;
    }
}

/// A controller's pass over one cluster (it returns at once when the cluster does not serve
/// its kinds).
type Controller = fn(&Shared, &Local<'_>);

/// The controllers registered for an ecosystem.
fn controllers(eco: Ecosystem) -> &'static [Controller] {
    match eco {
        Ecosystem::Capi => &[capi::reconcile],
        Ecosystem::Karmada => &[karmada::reconcile],
        Ecosystem::KubeEdge => &[|_, l| simple::kubeedge(l)],
        Ecosystem::Volcano => &[|_, l| simple::volcano(l)],
        Ecosystem::Kyverno => &[|_, l| simple::ready_policies(l)],
        Ecosystem::Flagger => &[|_, l| simple::flagger(l)],
        Ecosystem::Flux => &[|_, l| simple::flux(l)],
        Ecosystem::Istio | Ecosystem::Prometheus => &[],
    }
}

/// One pass of every ecosystem's controllers over one cluster.
fn pass(shared: &Shared, cluster: &Arc<Cluster>) {
    let local = Local::new(cluster, MANAGER);
    // Kubernetes' own: Deployments and their ReplicaSets, in every cluster.
    apps::reconcile(&local);
    for eco in Ecosystem::ALL {
        for controller in controllers(eco) {
            controller(shared, &local);
        }
    }
}

/// A condition list with `wanted` (type, status, reason, message) in order, keeping each
/// condition's `lastTransitionTime` from `existing` while its status is unchanged.
pub(crate) fn conditions(
    existing: &Value,
    wanted: &[(&str, bool, &str, &str)],
    generation: Option<i64>,
) -> Value {
    let now = crate::store::now();
    let list: Vec<Value> = wanted
        .iter()
        .map(|(ty, ok, reason, message)| {
            let status = if *ok { "True" } else { "False" };
            let since = existing
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == *ty && c["status"] == status)
                .and_then(|c| c["lastTransitionTime"].as_str())
                .unwrap_or(&now)
                .to_string();
            let mut c = json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": since});
            if let Some(g) = generation {
                c["observedGeneration"] = json!(g);
            }
            c
        })
        .collect();
    Value::Array(list)
}

pub(crate) fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(1)
}

pub(crate) fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub(crate) fn namespace(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub(crate) fn deleting(obj: &Value) -> bool {
    obj["metadata"].get("deletionTimestamp").is_some()
}

/// An owner reference to `obj`.
pub(crate) fn owner_ref(obj: &Value, controller: bool) -> Value {
    json!({"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
           "uid": obj["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": true})
}

/// Logs a controller failure; controllers retry on the next pass.
pub(crate) fn report(cluster: &Cluster, what: &str, error: &crate::status::ApiError) {
    eprintln!(
        "flotilla sandbox: controller in cluster {:?}: {what}: {}",
        cluster.name, error.message
    );
}
