//! The controllers that only report on their own objects: KubeEdge node groups and edge
//! applications, Volcano queues (and the Commands that open and close them), jobs and pod
//! groups, Kyverno policies, Flagger canaries and Flux objects. Istio objects get no status,
//! as with a default istiod.

use super::{conditions, deleting, generation, name, namespace, owner_ref, report};
use crate::local::Local;
use crate::query::LabelSelector;
use serde_json::{Value, json};

fn set(local: &Local<'_>, obj: &Value, status: Value) {
    if let Err(e) = local.set_status(obj, status) {
        report(local.cluster(), &format!("status of {}", name(obj)), &e);
    }
}

/// The label KubeEdge's node group controller puts on the nodes of a group.
const BELONGING_TO: &str = "apps.kubeedge.io/belonging-to";
/// The label on what an EdgeApplication rendered (so copies of dropped groups go).
const RENDERED_BY: &str = "apps.kubeedge.io/edge-application";

/// KubeEdge: node groups take the nodes they name or select (a node belongs to one group,
/// the first by name) and label them `apps.kubeedge.io/belonging-to=<group>`; an edge
/// application renders each of its manifests once per target group as `<name>-<group>`,
/// pinned to the group's nodes and with the group's overriders, and reports each one.
pub(super) fn kubeedge(local: &Local<'_>) {
    let mut groups = local.list("apps.kubeedge.io", "NodeGroup");
    groups.sort_by(|a, b| name(a).cmp(name(b)));
    let nodes = local.list("", "Node");
    let mut owner: std::collections::BTreeMap<String, String> = Default::default();
    for ng in groups.iter().filter(|g| !deleting(g)) {
        let selector = ng["spec"]["matchLabels"]
            .as_object()
            .filter(|m| !m.is_empty())
            .map(|m| LabelSelector::from_object(&json!({"matchLabels": m})));
        let mut names: Vec<String> = ng["spec"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        for node in &nodes {
            if selector
                .as_ref()
                .is_some_and(|s| s.matches(node["metadata"].get("labels")))
            {
                names.push(name(node).to_string());
            }
        }
        names.sort();
        names.dedup();
        let statuses: Vec<Value> = names
            .iter()
            .map(|n| {
                let exists = nodes.iter().any(|node| name(node) == n);
                match owner.get(n) {
                    _ if !exists => json!({"nodeName": n, "readyStatus": "Unknown", "selectionStatus": "Failed",
                                           "selectionStatusReason": format!("node {n} does not exist")}),
                    Some(other) => json!({"nodeName": n, "readyStatus": "Ready", "selectionStatus": "Failed",
                                          "selectionStatusReason": format!("node {n} already belongs to node group {other}")}),
                    None => {
                        owner.insert(n.clone(), name(ng).to_string());
                        json!({"nodeName": n, "readyStatus": "Ready", "selectionStatus": "Succeeded"})
                    }
                }
            })
            .collect();
        set(local, ng, json!({"nodeStatuses": statuses}));
    }
    for node in &nodes {
        let want = owner.get(name(node)).map(String::as_str);
        if node["metadata"]["labels"][BELONGING_TO].as_str() == want {
            continue;
        }
        let labels = match want {
            Some(g) => json!({BELONGING_TO: g}),
            None => json!({}),
        };
        let patch = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name(node), "labels": labels}});
        if let Err(e) = local.apply(&patch) {
            report(
                local.cluster(),
                &format!("labelling node {}", name(node)),
                &e,
            );
        }
    }
    for app in local.list("apps.kubeedge.io", "EdgeApplication") {
        if deleting(&app) {
            continue;
        }
        render_edge_application(local, &app, &groups);
    }
}

/// One EdgeApplication: a copy of each manifest per target node group.
fn render_edge_application(local: &Local<'_>, app: &Value, groups: &[Value]) {
    let ns = namespace(app);
    let mut statuses = Vec::new();
    let mut wanted = Vec::new();
    let targets = app["spec"]["workloadScope"]["targetNodeGroups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, manifest) in app["spec"]["workloadTemplate"]["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let (group, kind) = crate::local::group_kind(manifest);
        let version = manifest["apiVersion"]
            .as_str()
            .and_then(|v| v.rsplit('/').next())
            .unwrap_or("v1");
        for target in &targets {
            let node_group = target["name"].as_str().unwrap_or_default();
            let copy_name = format!(
                "{}-{node_group}",
                manifest["metadata"]["name"].as_str().unwrap_or_default()
            );
            let identifier = json!({"ordinal": i, "group": group, "version": version, "kind": kind,
                                    "namespace": ns, "name": copy_name});
            if !groups.iter().any(|g| name(g) == node_group && !deleting(g)) {
                statuses.push(json!({"identifier": identifier, "conditions": "Processing",
                    "message": format!("node group {node_group} does not exist")}));
                continue;
            }
            let mut copy = manifest.clone();
            copy["metadata"] = json!({"name": copy_name, "namespace": ns,
                "labels": {RENDERED_BY: name(app)}, "ownerReferences": [owner_ref(app, true)]});
            if copy["spec"]["template"].is_object() {
                copy["spec"]["template"]["spec"]["nodeSelector"][BELONGING_TO] = json!(node_group);
            }
            overrides(&mut copy, &target["overriders"]);
            let result = local.apply(&copy);
            let condition = match &result {
                Ok(_) => "Available",
                Err(_) => "Processing",
            };
            if let Err(e) = result {
                report(local.cluster(), &format!("rendering {copy_name}"), &e);
            }
            wanted.push((group.clone(), kind.clone(), copy_name));
            statuses.push(json!({"identifier": identifier, "conditions": condition}));
        }
    }
    // Copies of groups (or manifests) the application no longer has.
    for (group, kind) in [("apps".to_string(), "Deployment".to_string())] {
        for obj in local.list(&group, &kind) {
            if namespace(&obj) == ns
                && obj["metadata"]["labels"][RENDERED_BY] == name(app)
                && !wanted
                    .iter()
                    .any(|(g, k, n)| *g == group && *k == kind && n == name(&obj))
                && let Err(e) = local.delete(&obj)
            {
                report(local.cluster(), &format!("removing {}", name(&obj)), &e);
            }
        }
    }
    set(local, app, json!({"workloadStatus": statuses}));
}

/// A target group's overriders on a rendered copy: `replicas` and `imageOverriders`.
fn overrides(copy: &mut Value, overriders: &Value) {
    if let Some(r) = overriders["replicas"].as_i64() {
        copy["spec"]["replicas"] = json!(r);
    }
    for o in overriders["imageOverriders"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let component = o["component"].as_str().unwrap_or("Tag");
        let operator = o["operator"].as_str().unwrap_or("replace");
        let value = o["value"].as_str().unwrap_or_default();
        for c in copy
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(image) = c["image"].as_str() {
                c["image"] = json!(super::karmada::override_image(
                    image, component, operator, value
                ));
            }
        }
    }
}

pub(super) fn volcano(local: &Local<'_>) {
    // Commands open and close queues, then go away.
    for cmd in local.list("bus.volcano.sh", "Command") {
        let target = cmd["target"]["name"].as_str().unwrap_or_default();
        let state = match cmd["action"].as_str() {
            Some("OpenQueue") => "Open",
            Some("CloseQueue") => "Closed",
            _ => continue,
        };
        if cmd["target"]["kind"] != "Queue" {
            continue;
        }
        if let Some(q) = local.get("scheduling.volcano.sh", "Queue", "", target) {
            let mut status = q["status"].clone();
            if !status.is_object() {
                status = json!({});
            }
            status["state"] = json!(state);
            set(local, &q, status);
        }
        if let Err(e) = local.delete(&cmd) {
            report(local.cluster(), "deleting a Command", &e);
        }
    }
    let jobs = local.list("batch.volcano.sh", "Job");
    for q in local.list("scheduling.volcano.sh", "Queue") {
        // Open unless a Command closed it; the counts follow the queue's jobs.
        let state = q["status"]["state"].as_str().unwrap_or("Open");
        let count = |phase: &str| {
            jobs.iter()
                .filter(|j| {
                    j["spec"]["queue"] == name(&q) && j["status"]["state"]["phase"] == phase
                })
                .count()
        };
        set(
            local,
            &q,
            json!({"state": state, "running": count("Running"), "pending": count("Pending"),
            "inqueue": 0, "completed": 0, "unknown": 0}),
        );
    }
    for job in jobs {
        if deleting(&job) {
            continue;
        }
        let replicas: i64 = job["spec"]["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["replicas"].as_i64().unwrap_or(0))
            .sum();
        let min = job["spec"]["minAvailable"].as_i64().unwrap_or(replicas);
        let phase = job["status"]["state"]["phase"].as_str().unwrap_or("");
        let next = match phase {
            "" => "Pending",
            "Pending" => "Running",
            other => other,
        };
        if next == "Pending" {
            let pg = json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                "metadata": {"name": format!("{}-{}", name(&job), job["metadata"]["uid"].as_str().unwrap_or("")),
                             "namespace": namespace(&job), "ownerReferences": [owner_ref(&job, true)]},
                "spec": {"minMember": min, "queue": job["spec"]["queue"]}});
            let mut pg = pg;
            if let Some(p) = job["spec"].get("priorityClassName") {
                pg["spec"]["priorityClassName"] = p.clone();
            }
            if let Err(e) = local.apply(&pg) {
                report(
                    local.cluster(),
                    &format!("PodGroup of job {}", name(&job)),
                    &e,
                );
                continue;
            }
        }
        let running = if next == "Running" { replicas } else { 0 };
        let status = json!({"state": {"phase": next, "lastTransitionTime": job["status"]["state"]["lastTransitionTime"].as_str().filter(|_| next == phase).map(str::to_string).unwrap_or_else(crate::store::now)},
            "minAvailable": min, "running": running, "pending": replicas - running,
            "succeeded": 0, "failed": 0, "terminating": 0, "unknown": 0, "version": 1, "retryCount": 0});
        set(local, &job, status);
    }
    for pg in local.list("scheduling.volcano.sh", "PodGroup") {
        let owner_running = pg["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["kind"] == "Job")
            .filter_map(|o| {
                local.get(
                    "batch.volcano.sh",
                    "Job",
                    namespace(&pg),
                    o["name"].as_str().unwrap_or_default(),
                )
            })
            .any(|j| j["status"]["state"]["phase"] == "Running");
        let phase = if owner_running { "Running" } else { "Inqueue" };
        let g = generation(&pg);
        set(
            local,
            &pg,
            json!({"phase": phase, "running": 0, "succeeded": 0, "failed": 0,
            "conditions": conditions(&pg["status"]["conditions"], &[("Scheduled", true, "tasks in gang are ready to be scheduled", "")], Some(g))}),
        );
    }
}

pub(super) fn ready_policies(local: &Local<'_>) {
    for kind in ["ClusterPolicy", "Policy"] {
        for p in local.list("kyverno.io", kind) {
            let rules = p["spec"]["rules"].as_array().map_or(&[][..], Vec::as_slice);
            let count = |f: &str| rules.iter().filter(|r| r.get(f).is_some()).count();
            let g = generation(&p);
            set(
                local,
                &p,
                json!({"ready": true,
                "rulecount": {"validate": count("validate"), "mutate": count("mutate"), "generate": count("generate"), "verifyimages": count("verifyImages")},
                "conditions": conditions(&p["status"]["conditions"], &[("Ready", true, "Succeeded", "Ready")], Some(g))}),
            );
        }
    }
}

/// Flagger: a Canary initialises once its target exists (the target's spec becomes the
/// promoted one); each new revision of the target's pod template (its hash differs from
/// `lastAppliedSpec`) runs the analysis, one step per controller pass (the `interval`, scaled
/// down to the controller delay): `Progressing` with the weight stepping by `stepWeight` to
/// `maxWeight` (or `iterations` steps without a `stepWeight`), then `Promoting`,
/// `Finalising`, `Succeeded`. A revision equal to `lastPromotedSpec` (a revert) succeeds
/// without analysis, as upstream skips it. With the cluster's `canary_analysis=fail` fault
/// every check fails: `failedChecks` grows to `threshold`, then the Canary is `Failed` with
/// its weight back at 0 (traffic to the primary).
pub(super) fn flagger(local: &Local<'_>) {
    let fail = local.cluster().faults.config().canary_analysis_fail;
    for canary in local.list("flagger.app", "Canary") {
        if let Some(status) = flagger_step(local, &canary, fail)
            && status != canary["status"]
        {
            set(local, &canary, status);
        }
    }
}

/// The Canary's next status, or `None` to leave it.
fn flagger_step(local: &Local<'_>, canary: &Value, fail: bool) -> Option<Value> {
    let target = &canary["spec"]["targetRef"];
    let target_name = target["name"].as_str().unwrap_or_default();
    let ns = namespace(canary);
    let old = &canary["status"];
    let text = |k: &str| old[k].as_str().unwrap_or("").to_string();
    let num = |k: &str| old[k].as_i64().unwrap_or(0);
    let (mut phase, mut weight, mut checks, mut iterations) = (
        text("phase"),
        num("canaryWeight"),
        num("failedChecks"),
        num("iterations"),
    );
    let (mut applied, mut promoted) = (text("lastAppliedSpec"), text("lastPromotedSpec"));
    let hash = if target["kind"] == "Deployment" {
        local
            .get("apps", "Deployment", ns, target_name)
            .map(|d| super::apps::template_hash(&d["spec"]["template"]))
    } else {
        Some(String::new())
    };
    let analysis = &canary["spec"]["analysis"];
    let step = analysis["stepWeight"].as_i64().unwrap_or(0);
    let max_weight = analysis["maxWeight"].as_i64().unwrap_or(50);
    let threshold = analysis["threshold"].as_i64().unwrap_or(5).max(1);
    let max_iterations = analysis["iterations"].as_i64().unwrap_or(10).max(1);
    let message;
    match hash {
        None => {
            phase = "Initializing".into();
            message = format!("deployment {target_name}.{ns} not found, waiting for it");
        }
        Some(hash) => match phase.as_str() {
            "" => {
                phase = "Initializing".into();
                message = "New Deployment detected, starting initialization.".into();
            }
            "Initializing" => {
                phase = "Initialized".into();
                (applied, promoted) = (hash.clone(), hash);
                message = "Deployment initialization completed.".into();
            }
            _ if hash != applied && phase != "Progressing" => {
                applied = hash.clone();
                (weight, checks, iterations) = (0, 0, 0);
                if hash == promoted {
                    phase = "Succeeded".into();
                    message = "Revision is the promoted one; no analysis.".into();
                } else {
                    phase = "Progressing".into();
                    message = "New revision detected, starting canary analysis.".into();
                }
            }
            "Progressing" if hash != applied => {
                applied = hash;
                (weight, checks, iterations) = (0, 0, 0);
                message = "New revision detected! Restarting analysis.".into();
            }
            "Progressing" if fail => {
                checks += 1;
                if checks >= threshold {
                    phase = "Failed".into();
                    weight = 0;
                    message = format!(
                        "Canary failed! {checks} failed checks (threshold {threshold}); traffic is back on the primary."
                    );
                } else {
                    message = format!("Halt advancement: {checks} failed checks.");
                }
            }
            "Progressing" => {
                let done = if step > 0 {
                    weight = (weight + step).min(max_weight);
                    weight >= max_weight
                } else {
                    iterations += 1;
                    iterations >= max_iterations
                };
                if done {
                    phase = "Promoting".into();
                    message = "Copying the canary spec to the primary.".into();
                } else {
                    message = format!("Advance canary weight {weight}.");
                }
            }
            "Promoting" => {
                phase = "Finalising".into();
                promoted = applied.clone();
                message = "Routing all traffic to the primary.".into();
            }
            "Finalising" => {
                phase = "Succeeded".into();
                weight = 0;
                message = "Canary analysis completed successfully, promotion finished.".into();
            }
            _ => return None,
        },
    }
    let ok = matches!(phase.as_str(), "Initialized" | "Succeeded");
    let mut status = json!({"phase": phase, "failedChecks": checks, "canaryWeight": weight,
        "iterations": iterations, "observedGeneration": generation(canary),
        "conditions": conditions(&old["conditions"], &[("Promoted", ok, &phase, &message)], None)});
    if !applied.is_empty() {
        status["lastAppliedSpec"] = json!(applied);
        status["lastPromotedSpec"] = json!(promoted);
    }
    Some(status)
}

/// Flux: sources are Ready; a HelmRelease is Ready once its HelmRepository exists, and a
/// release of a chart the catalogue knows (`istiod`, `volcano`, `cloudcore`, `kyverno`,
/// `flagger`, `kube-prometheus-stack`, ...) installs that platform's CRDs, webhooks and
/// controllers into the cluster, as the real chart would. Other charts install nothing.
pub(super) fn flux(local: &Local<'_>) {
    let sources = [
        ("source.toolkit.fluxcd.io", "HelmRepository", "Succeeded"),
        ("source.toolkit.fluxcd.io", "GitRepository", "Succeeded"),
        (
            "kustomize.toolkit.fluxcd.io",
            "Kustomization",
            "ReconciliationSucceeded",
        ),
    ];
    for (group, kind, reason) in sources {
        for obj in local.list(group, kind) {
            let g = generation(&obj);
            let message = format!("{kind} reconciled");
            set(
                local,
                &obj,
                json!({"observedGeneration": g,
                "conditions": conditions(&obj["status"]["conditions"], &[("Ready", true, reason, &message)], Some(g))}),
            );
        }
    }
    for release in local.list("helm.toolkit.fluxcd.io", "HelmRelease") {
        let g = generation(&release);
        let chart = &release["spec"]["chart"]["spec"];
        let chart_name = chart["chart"].as_str().unwrap_or_default();
        let source = &chart["sourceRef"];
        let source_ns = source["namespace"].as_str().unwrap_or(namespace(&release));
        let source_name = source["name"].as_str().unwrap_or_default();
        let found = source["kind"] != "HelmRepository"
            || local
                .get(
                    "source.toolkit.fluxcd.io",
                    "HelmRepository",
                    source_ns,
                    source_name,
                )
                .is_some();
        let release_name = release["spec"]["releaseName"]
            .as_str()
            .unwrap_or(name(&release));
        let (ok, reason, message) = if !found {
            (
                false,
                "ArtifactFailed",
                format!("HelmRepository '{source_ns}/{source_name}' not found"),
            )
        } else {
            let installed = match flotilla_ecosystems::Ecosystem::of_chart(chart_name) {
                Some(eco) => crate::ecosystems::install(local.cluster(), eco),
                None => Ok(()),
            };
            match installed {
                Ok(()) => (
                    true,
                    "InstallSucceeded",
                    format!(
                        "Helm install succeeded for release {}/{release_name}.v1 with chart {chart_name}@{}",
                        release["spec"]["targetNamespace"]
                            .as_str()
                            .unwrap_or(namespace(&release)),
                        chart["version"].as_str().unwrap_or("latest")
                    ),
                ),
                Err(e) => (false, "InstallFailed", format!("Helm install failed: {e}")),
            }
        };
        set(
            local,
            &release,
            json!({"observedGeneration": g, "lastAttemptedRevision": chart["version"],
            "conditions": conditions(&release["status"]["conditions"], &[("Ready", ok, reason, &message)], Some(g))}),
        );
    }
}
