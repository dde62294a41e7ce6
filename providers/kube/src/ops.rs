//! Calls to the Kubernetes API: bounded retries of transient failures, server-side apply
//! (real and dry-run), reads, foreground deletes, and waiting for readiness.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flotilla_provider::ProviderError;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, ValidationDirective};
use kube::discovery::ApiResource;
use serde_json::Value as Json;

use crate::conn::{ReadKey, Target};
use crate::kinds::{Named, Readiness, Related};

/// The field manager flotilla applies with.
pub const FIELD_MANAGER: &str = "flotilla";

/// Attempts for a call that keeps failing transiently.
const ATTEMPTS: u32 = 6;

/// The longest wait between attempts (and the most of a server's Retry-After honoured).
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Whether an error is worth retrying: throttling, server errors, broken connections.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// A short name for a transient error, for the retry notice.
fn what_failed(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}", s.code, s.reason),
        _ => "connection failed".to_string(),
    }
}

/// A factor in [0.5, 1.5) from a xorshift sequence (kept in `state`, one per cluster)
/// seeded by the clock.
fn jitter(state: &AtomicU64) -> f64 {
    let mut x = state.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    0.5 + (x % 1000) as f64 / 1000.0
}

/// How long to wait before attempt `attempt + 1`.
fn backoff(attempt: u32, e: &kube::Error, jitter_state: &AtomicU64) -> Duration {
    if let kube::Error::Api(s) = e
        && let Some(after) = s.details.as_ref().map(|d| d.retry_after_seconds)
        && after > 0
    {
        return Duration::from_secs(after.into()).min(MAX_BACKOFF);
    }
    let base = Duration::from_millis(200) * 2u32.pow(attempt);
    base.mul_f64(jitter(jitter_state)).min(MAX_BACKOFF)
}

/// Runs `f`, retrying transient failures with exponential backoff and jitter (honouring a
/// server's Retry-After) up to a bound, and saying so through the notice channel.
pub async fn call<T, F, Fut>(target: &Target, what: &str, mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        target.count_request();
        match f().await {
            Err(e) if transient(&e) && attempt + 1 < ATTEMPTS => {
                let wait = backoff(attempt, &e, &target.jitter);
                target.notice(&format!(
                    "{what} on {}: {}; retrying in {:.1}s (attempt {} of {ATTEMPTS})",
                    target.label,
                    what_failed(&e),
                    wait.as_secs_f64(),
                    attempt + 2,
                ));
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// A provider error for a failed call: the server's own message, or which cluster could not
/// be reached.
pub fn api_error(target: &Target, what: &str, e: &kube::Error) -> ProviderError {
    match e {
        kube::Error::Api(s) => ProviderError::new(format!("{what}: {}", s.message)).with_detail(
            format!("{} answered {} {}", target.describe(), s.code, s.reason),
        ),
        other => unreachable_error(target, other),
    }
}

/// The error for a cluster that cannot be reached.
pub fn unreachable_error(target: &Target, e: &kube::Error) -> ProviderError {
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    ProviderError::new(format!("cannot reach {}", target.describe())).with_detail(format!(
        "{cause}; check that the cluster is running and that the provider block names the right context{}",
        if target.sandbox {
            " (sandbox clusters start with `flotilla apply`/`plan`, or `flotilla sandbox up`)"
        } else {
            ""
        }
    ))
}

/// The API for one resource in one namespace (or cluster-wide).
pub fn api(target: &Target, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(target.client.clone(), ns, resource),
        None => Api::all_with(target.client.clone(), resource),
    }
}

fn to_json(o: DynamicObject) -> Json {
    serde_json::to_value(o).unwrap_or(Json::Null)
}

fn read_key(resource: &ApiResource, namespace: Option<&str>) -> ReadKey {
    (
        resource.api_version.clone(),
        resource.plural.clone(),
        namespace.map(str::to_string),
    )
}

/// Reads an object as planning sees it; `None` when it does not exist. Many such reads of one
/// resource in one namespace share one LIST (see [`crate::conn::Reads`]), so use this for
/// refresh and planning, and [`get`] where the answer must be current (waiting, polling).
pub async fn get_for_plan(
    target: &Target,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Json>, ProviderError> {
    if let Some(listing) = target.next_read(&read_key(resource, namespace)) {
        let api = api(target, resource, namespace);
        let listed = listing
            .get_or_init(|| async {
                let what = format!("list {}", resource.plural);
                let params = kube::api::ListParams::default();
                call(target, &what, || api.list(&params))
                    .await
                    .ok()
                    .map(|l| {
                        l.items
                            .into_iter()
                            .filter_map(|o| Some((o.metadata.name.clone()?, to_json(o))))
                            .collect()
                    })
            })
            .await;
        if let Some(objects) = listed {
            return Ok(objects.get(name).cloned());
        }
    }
    get(target, resource, namespace, name).await
}

/// Reads an object from the server now; `None` when it does not exist.
pub async fn get(
    target: &Target,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Json>, ProviderError> {
    let api = api(target, resource, namespace);
    let what = format!("read {} {name}", resource.kind);
    match call(target, &what, || api.get_opt(name)).await {
        Ok(o) => Ok(o.map(to_json)),
        Err(e) => Err(api_error(target, &format!("cannot {what}"), &e)),
    }
}

/// Server-side applies `object` as flotilla (dry-run or for real); the raw error is returned
/// so the caller can tell refusals apart.
pub async fn apply(
    target: &Target,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
    object: &Json,
    dry_run: bool,
    force: bool,
) -> Result<Json, kube::Error> {
    let api = api(target, resource, namespace);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.dry_run = dry_run;
    params.force = force;
    params.field_validation = Some(ValidationDirective::Strict);
    let what = format!(
        "{} {} {name}",
        if dry_run { "dry-run apply" } else { "apply" },
        resource.kind
    );
    let patch = Patch::Apply(object);
    if !dry_run {
        target.wrote(read_key(resource, namespace));
    }
    call(target, &what, || api.patch(name, &params, &patch))
        .await
        .map(to_json)
}

/// Deletes an object with foreground propagation and waits until it is gone (finalizers
/// included), up to `timeout`.
pub async fn delete(
    target: &Target,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
    timeout: Duration,
) -> Result<(), ProviderError> {
    let api = api(target, resource, namespace);
    let what = format!("delete {} {name}", resource.kind);
    let params = DeleteParams::foreground();
    target.wrote(read_key(resource, namespace));
    match call(target, &what, || api.delete(name, &params)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("admission webhook") => {
            return Err(ProviderError::new(format!("cannot {what}: {}", s.message))
                .with_detail(format!(
                    "an admission webhook of {} refused the delete; remove or finish what it names (objects created outside flotilla, for example), then run the command again; flotilla keeps the object in state until it is gone",
                    target.describe()
                )));
        }
        Err(e) => return Err(api_error(target, &format!("cannot {what}"), &e)),
    }
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let Some(obj) = get(target, resource, namespace, name).await? else {
            return Ok(());
        };
        if start.elapsed() >= timeout {
            let finalizers = obj["metadata"]["finalizers"].clone();
            return Err(ProviderError::new(format!(
                "{} {name} was not gone within {} (the delete timeout)",
                resource.kind,
                human(timeout)
            ))
            .with_detail(format!(
                "it is still there with finalizers {finalizers}; raise `timeouts {{ delete = ... }}` or find what holds it"
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Why waiting for readiness ended without it.
pub enum NotReady {
    /// The object reports a terminal failure.
    Failed(String),
    /// The time ran out; the last reason the object gave.
    Timeout(String),
    /// The object disappeared or could not be read.
    Error(ProviderError),
}

/// Waits until the object is ready by its kind's rule; returns the ready object.
pub async fn wait_ready(
    target: &Target,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
    readiness: Readiness,
    timeout: Duration,
) -> Result<Json, NotReady> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let obj = match get(target, resource, namespace, name).await {
            Ok(Some(o)) => o,
            Ok(None) => {
                return Err(NotReady::Error(ProviderError::new(format!(
                    "{} {name} disappeared while flotilla waited for it to become ready",
                    resource.kind
                ))));
            }
            Err(e) => return Err(NotReady::Error(e)),
        };
        let status = match readiness {
            Readiness::Related(rel) => {
                let named = match rel.named {
                    Some(n) => check_named(target, &obj, n).await,
                    None => Ok(Status::Ready),
                };
                match (named, list_related(target, &obj, rel).await) {
                    (Err(e), _) | (_, Err(e)) => return Err(NotReady::Error(e)),
                    (Ok(Status::Ready), Ok(related)) => check_related(&obj, &related, rel),
                    (Ok(waiting), Ok(_)) => waiting,
                }
            }
            r => check(&obj, r),
        };
        match status {
            Status::Ready => return Ok(obj),
            Status::Failed(why) => return Err(NotReady::Failed(why)),
            Status::Waiting(why) if start.elapsed() >= timeout => {
                return Err(NotReady::Timeout(why));
            }
            Status::Waiting(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// The objects that tell whether `obj` is ready by `rel`: those with the same value of the
/// shared label.
pub async fn list_related(
    target: &Target,
    obj: &Json,
    rel: &Related,
) -> Result<Vec<Json>, ProviderError> {
    let Some(value) = obj["metadata"]["labels"][rel.label].as_str() else {
        return Ok(Vec::new());
    };
    let (group, version) = rel
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", rel.api_version));
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: rel.api_version.into(),
        kind: rel.kind.into(),
        plural: rel.plural.into(),
    };
    let namespace = obj["metadata"]["namespace"]
        .as_str()
        .filter(|_| rel.namespaced);
    let api = api(target, &resource, namespace);
    let params = kube::api::ListParams::default().labels(&format!("{}={value}", rel.label));
    let what = format!("list {} {}", rel.kind, rel.noun);
    match call(target, &what, || api.list(&params)).await {
        Ok(list) => Ok(list.items.into_iter().map(to_json).collect()),
        Err(e) => Err(api_error(target, &format!("cannot {what}"), &e)),
    }
}

/// Whether every object `obj` names by `named` exists with its condition `True`; the first
/// that does not is the reason to wait (its own message).
async fn check_named(target: &Target, obj: &Json, named: &Named) -> Result<Status, ProviderError> {
    let (group, version) = named
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", named.api_version));
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: named.api_version.into(),
        kind: named.kind.into(),
        plural: named.plural.into(),
    };
    for name in named.names(obj) {
        let status = match get(target, &resource, None, &name).await? {
            None => Status::Waiting(format!("{} {name} does not exist", named.kind)),
            Some(o) => check(&o, Readiness::Condition(named.condition)),
        };
        if let Status::Waiting(why) | Status::Failed(why) = status {
            return Ok(Status::Waiting(format!("{} {name}: {why}", named.kind)));
        }
    }
    Ok(Status::Ready)
}

/// Judges readiness from the related objects: at least one, each with every condition
/// `True` at its current generation. A condition `False` with a reason stays "waiting" (the
/// controller may still get there), with its message as the reason.
pub fn check_related(obj: &Json, related: &[Json], rel: &Related) -> Status {
    if obj["metadata"]["labels"][rel.label].is_null() {
        return Status::Waiting(format!("no {} label yet", rel.label));
    }
    if related.is_empty() {
        return Status::Waiting(format!(
            "no {} yet: nothing it selects has been scheduled",
            rel.noun
        ));
    }
    for r in related {
        for want in rel.conditions {
            if let Status::Waiting(why) | Status::Failed(why) = check(r, Readiness::Condition(want))
            {
                let name = r["metadata"]["name"].as_str().unwrap_or("?");
                return Status::Waiting(format!("{} {name}: {why}", rel.kind));
            }
        }
    }
    Status::Ready
}

/// Where an object stands by its kind's readiness rule.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ready,
    /// Not yet, and why (the object's own words when it gives any).
    Waiting(String),
    /// It failed for good.
    Failed(String),
}

/// Judges readiness from an object. A `Failed` phase is terminal for every kind; conditions
/// and `status.observedGeneration` only count once they observe the current generation.
pub fn check(obj: &Json, readiness: Readiness) -> Status {
    let status = &obj["status"];
    let generation = obj["metadata"]["generation"].as_i64();
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let message_of = |c: &Json| {
        let m = c["message"].as_str().unwrap_or_default();
        let r = c["reason"].as_str().unwrap_or_default();
        match (r.is_empty(), m.is_empty()) {
            (_, false) => m.to_string(),
            (false, true) => r.to_string(),
            (true, true) => format!(
                "{} is {}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?")
            ),
        }
    };
    if status["phase"].as_str() == Some("Failed") {
        let why = conditions
            .iter()
            .find(|c| {
                c["status"] == "False" && c["message"].as_str().is_some_and(|m| !m.is_empty())
            })
            .map(message_of)
            .unwrap_or_else(|| "its status.phase is Failed".to_string());
        return Status::Failed(why);
    }
    let observed = |c: Option<&Json>| -> bool {
        let seen = c
            .and_then(|c| c["observedGeneration"].as_i64())
            .or_else(|| status["observedGeneration"].as_i64());
        match (seen, generation) {
            (Some(s), Some(g)) => s >= g,
            _ => true,
        }
    };
    let readiness = match readiness {
        Readiness::Auto if conditions.iter().any(|c| c["type"] == "Ready") => {
            Readiness::Condition("Ready")
        }
        Readiness::Auto => Readiness::Accepted,
        r => r,
    };
    match readiness {
        // Related objects are judged by `check_related`; the object itself is accepted.
        Readiness::Accepted | Readiness::Auto | Readiness::Related(_) => Status::Ready,
        Readiness::Entries {
            path,
            field,
            ready,
            reason,
        } => {
            let list = path.rsplit('.').next().unwrap_or(path);
            let entries = crate::object::at(obj, path)
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            if !observed(None) {
                return Status::Waiting(format!(
                    "its status does not observe generation {} yet",
                    generation.unwrap_or_default()
                ));
            }
            match entries.iter().find(|e| e[field].as_str() != Some(ready)) {
                _ if entries.is_empty() => Status::Waiting(format!("no {list} yet")),
                None => Status::Ready,
                Some(e) => {
                    let id = ["nodeName", "name"]
                        .iter()
                        .find_map(|k| e[*k].as_str())
                        .or_else(|| e["identifier"]["name"].as_str())
                        .unwrap_or("?");
                    let got = e[field].as_str().unwrap_or("unset");
                    let why = e[reason].as_str().filter(|r| !r.is_empty());
                    Status::Waiting(match why {
                        Some(why) => format!("{id}: {field} is {got}: {why}"),
                        None => format!("{id}: {field} is {got}, waiting for {ready}"),
                    })
                }
            }
        }
        Readiness::Field {
            path,
            ready,
            failed,
        } => {
            let field = path.rsplit('.').next().unwrap_or(path);
            let want = ready.join(" or ");
            match crate::object::at(obj, path).and_then(Json::as_str) {
                Some(v) if ready.contains(&v) => Status::Ready,
                Some(v) if failed.contains(&v) => Status::Failed(format!("its {path} is {v}")),
                Some(v) => Status::Waiting(format!("its {field} is {v}, waiting for {want}")),
                None => Status::Waiting(format!("no {field} yet, waiting for {want}")),
            }
        }
        Readiness::Rollout => rollout(obj),
        Readiness::Condition(kind) => {
            let c = conditions.iter().find(|c| c["type"] == kind);
            match c {
                Some(c) if c["status"] == "True" && observed(Some(c)) => Status::Ready,
                Some(c) if c["status"] == "True" => Status::Waiting(format!(
                    "{kind} is True but does not observe generation {} yet",
                    generation.unwrap_or_default()
                )),
                Some(c) => Status::Waiting(format!(
                    "{kind} is {}: {}",
                    c["status"].as_str().unwrap_or("?"),
                    message_of(c)
                )),
                None => Status::Waiting(format!("no {kind} condition yet")),
            }
        }
    }
}

/// A workload's rollout, as `kubectl rollout status` judges it: the controller has seen the
/// current generation, and every desired replica is updated and available (a DaemonSet: every
/// scheduled node's pod updated and available). Waiting names the condition that is short.
fn rollout(obj: &Json) -> Status {
    let status = &obj["status"];
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    if observed < generation {
        return Status::Waiting(format!(
            "the rollout of generation {generation} has not started (observedGeneration {observed})"
        ));
    }
    let n = |k: &str| status[k].as_i64().unwrap_or(0);
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (want, updated, available) = match kind {
        "DaemonSet" => (
            n("desiredNumberScheduled"),
            n("updatedNumberScheduled"),
            n("numberAvailable"),
        ),
        "StatefulSet" => (
            obj["spec"]["replicas"].as_i64().unwrap_or(1),
            n("updatedReplicas"),
            n("readyReplicas"),
        ),
        _ => (
            obj["spec"]["replicas"].as_i64().unwrap_or(1),
            n("updatedReplicas"),
            n("availableReplicas"),
        ),
    };
    let progressing = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing");
    if let Some(p) = progressing
        && p["status"] == "False"
        && p["reason"] == "ProgressDeadlineExceeded"
    {
        return Status::Failed(format!(
            "its rollout exceeded its progress deadline: {}",
            p["message"].as_str().unwrap_or_default()
        ));
    }
    let total = if kind == "Deployment" {
        n("replicas")
    } else {
        updated
    };
    if updated < want {
        return Status::Waiting(format!("rollout: {updated} of {want} replicas updated"));
    }
    let why = || {
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Available" && c["status"] != "True")
            .map(|c| {
                format!(
                    " (Available is {}: {})",
                    c["status"].as_str().unwrap_or("?"),
                    c["message"]
                        .as_str()
                        .or(c["reason"].as_str())
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default()
    };
    if total > updated {
        return Status::Waiting(format!(
            "rollout: {} old replicas still running while the {updated} updated ones become available{}",
            total - updated,
            why()
        ));
    }
    if available < want {
        let why = why();
        return Status::Waiting(format!(
            "rollout: {available} of {want} updated replicas available{why}"
        ));
    }
    Status::Ready
}

/// `90s`, `5m`, `1h30m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 && s < 10 {
        return format!("{}ms", d.as_millis());
    }
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deployment_is_ready_when_its_rollout_at_this_generation_is_done() {
        let d = |generation: i64, status: Json| {
            serde_json::json!({"kind": "Deployment", "metadata": {"generation": generation},
                "spec": {"replicas": 2}, "status": status})
        };
        let status = |o: i64, r: i64, u: i64, a: i64| {
            serde_json::json!({"observedGeneration": o, "replicas": r, "updatedReplicas": u,
                "availableReplicas": a, "conditions": [{"type": "Available", "status": if a >= 2 { "True" } else { "False" },
                "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}]})
        };
        assert_eq!(
            check(&d(2, status(2, 2, 2, 2)), Readiness::Rollout),
            Status::Ready
        );
        assert!(
            matches!(check(&d(3, status(2, 2, 2, 2)), Readiness::Rollout),
            Status::Waiting(w) if w.contains("generation 3 has not started"))
        );
        assert!(
            matches!(check(&d(2, status(2, 3, 1, 2)), Readiness::Rollout),
            Status::Waiting(w) if w == "rollout: 1 of 2 replicas updated")
        );
        assert!(
            matches!(check(&d(2, status(2, 2, 2, 1)), Readiness::Rollout),
            Status::Waiting(w) if w.contains("1 of 2 updated replicas available (Available is False: Deployment does not have minimum availability.)"))
        );
        let deadline = serde_json::json!({"observedGeneration": 1, "conditions": [{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]});
        assert!(matches!(
            check(&d(1, deadline), Readiness::Rollout),
            Status::Failed(_)
        ));
    }

    #[test]
    fn readiness_by_condition_needs_the_current_generation() {
        let obj = |status: &str, observed: i64| {
            json!({"metadata": {"generation": 2}, "status": {"conditions": [
                {"type": "Available", "status": status, "reason": "R", "message": "waiting for KCP", "observedGeneration": observed}]}})
        };
        let r = Readiness::Condition("Available");
        assert_eq!(check(&obj("True", 2), r), Status::Ready);
        assert!(
            matches!(check(&obj("True", 1), r), Status::Waiting(m) if m.contains("generation 2"))
        );
        assert!(
            matches!(check(&obj("False", 2), r), Status::Waiting(m) if m == "Available is False: waiting for KCP")
        );
        assert!(
            matches!(check(&json!({}), r), Status::Waiting(m) if m == "no Available condition yet")
        );
    }

    #[test]
    fn a_failed_phase_is_terminal_with_the_objects_message() {
        let obj = json!({"status": {"phase": "Failed", "conditions": [
            {"type": "Available", "status": "False", "reason": "NameTaken", "message": "the name is taken"}]}});
        assert_eq!(
            check(&obj, Readiness::Accepted),
            Status::Failed("the name is taken".into())
        );
    }

    #[test]
    fn phases_and_durations() {
        let ns = json!({"status": {"phase": "Active"}});
        assert_eq!(check(&ns, Readiness::phase(&["Active"])), Status::Ready);
        assert_eq!(
            check(&json!({}), Readiness::phase(&["Active"])),
            Status::Waiting("no phase yet, waiting for Active".into())
        );
        let job = Readiness::Field {
            path: "status.state.phase",
            ready: &["Running", "Completed"],
            failed: &["Failed", "Aborted"],
        };
        let phase = |p: &str| json!({"status": {"state": {"phase": p}}});
        assert_eq!(check(&phase("Completed"), job), Status::Ready);
        assert_eq!(
            check(&phase("Pending"), job),
            Status::Waiting("its phase is Pending, waiting for Running or Completed".into())
        );
        assert_eq!(
            check(&phase("Aborted"), job),
            Status::Failed("its status.state.phase is Aborted".into())
        );
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn every_entry_of_a_status_list_decides() {
        let r = Readiness::Entries {
            path: "status.nodeStatuses",
            field: "selectionStatus",
            ready: "Succeeded",
            reason: "selectionStatusReason",
        };
        let with = |entries: serde_json::Value| json!({"status": {"nodeStatuses": entries}});
        assert_eq!(
            check(
                &with(json!([{"nodeName": "a", "selectionStatus": "Succeeded"}])),
                r
            ),
            Status::Ready
        );
        assert_eq!(
            check(
                &with(json!([{"nodeName": "a", "selectionStatus": "Succeeded"},
                    {"nodeName": "b", "selectionStatus": "Failed", "selectionStatusReason": "node b does not exist"}])),
                r
            ),
            Status::Waiting("b: selectionStatus is Failed: node b does not exist".into())
        );
        assert_eq!(
            check(&with(json!([])), r),
            Status::Waiting("no nodeStatuses yet".into())
        );
    }

    #[test]
    fn related_objects_decide() {
        static BINDINGS: Related = Related {
            api_version: "work.karmada.io/v1alpha2",
            kind: "ResourceBinding",
            plural: "resourcebindings",
            namespaced: true,
            label: "id",
            conditions: &["Scheduled", "FullyApplied"],
            noun: "bindings",
            named: None,
        };
        let policy = json!({"metadata": {"labels": {"id": "7"}}});
        let binding = |applied: &str| {
            json!({"metadata": {"name": "web-deployment", "generation": 1}, "status": {"conditions": [
                {"type": "Scheduled", "status": "True", "observedGeneration": 1},
                {"type": "FullyApplied", "status": applied, "message": "member down", "observedGeneration": 1}]}})
        };
        assert_eq!(
            check_related(&policy, &[binding("True")], &BINDINGS),
            Status::Ready
        );
        assert_eq!(
            check_related(&policy, &[binding("True"), binding("False")], &BINDINGS),
            Status::Waiting(
                "ResourceBinding web-deployment: FullyApplied is False: member down".into()
            )
        );
        assert!(matches!(
            check_related(&policy, &[], &BINDINGS),
            Status::Waiting(m) if m.contains("no bindings yet")
        ));
    }

    #[test]
    fn named_objects_are_found_at_their_paths() {
        let n = Named {
            paths: &["spec.a.names", "spec.list[].target.names"],
            api_version: "x/v1",
            kind: "Cluster",
            plural: "clusters",
            condition: "Ready",
        };
        let obj = json!({"spec": {"a": {"names": ["b", "s"]},
            "list": [{"target": {"names": ["s", "g"]}}, {"target": {}}]}});
        assert_eq!(n.names(&obj), ["b", "s", "g"]);
        assert!(n.names(&json!({})).is_empty());
    }

    #[test]
    fn backoff_is_bounded_and_honours_retry_after() {
        let throttled = kube::Error::Api(Box::new(kube::core::Status {
            code: 429,
            details: Some(kube::core::response::StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: Vec::new(),
                retry_after_seconds: 3,
            }),
            ..Default::default()
        }));
        let state = AtomicU64::new(0);
        assert_eq!(backoff(0, &throttled, &state), Duration::from_secs(3));
        assert!(transient(&throttled));
        let unavailable = kube::Error::Api(Box::new(kube::core::Status {
            code: 503,
            ..Default::default()
        }));
        for attempt in 0..ATTEMPTS {
            assert!(backoff(attempt, &unavailable, &state) <= MAX_BACKOFF);
        }
        let invalid = kube::Error::Api(Box::new(kube::core::Status {
            code: 422,
            ..Default::default()
        }));
        assert!(!transient(&invalid));
    }
}
