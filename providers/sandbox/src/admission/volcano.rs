//! Volcano's webhooks: queue and job defaulting, jobs and pod groups only into Open queues,
//! task counts, the fields a job may change, and the queues that cannot be deleted.

use super::{IMMUTABLE, Lookup, Rules, changed_paths, denied, invalid};
use crate::kinds::ResourceType;
use crate::status::{ApiError, Cause};
use serde_json::{Value, json};

pub(super) static RULES: Rules = Rules {
    mutate,
    validate,
    validate_delete,
};

fn mutate(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) {
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
        _ => {}
    }
}

fn validate(
    store: &dyn Lookup,
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    match (rt.group.as_str(), rt.kind.as_str()) {
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
        _ => {}
    }
    invalid(rt, obj, causes)
}

/// Deletes the webhooks refuse.
/// Queues the webhook refuses to delete, as current Volcano does (with its allocated-pods
/// check enabled): `default` and `root`, a queue whose Running jobs hold pods, and a queue
/// that is the parent of other queues.
fn validate_delete(store: &dyn Lookup, rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if (rt.group.as_str(), rt.kind.as_str()) != ("scheduling.volcano.sh", "Queue") {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let webhook = "validatequeue.volcano.sh";
    if name == "default" || name == "root" {
        return Err(denied(
            webhook,
            format!("`{name}` queue can not be deleted"),
        ));
    }
    let allocated: i64 = store
        .list("batch.volcano.sh", "Job")
        .into_iter()
        .filter(|j| j["spec"]["queue"] == name && j["status"]["state"]["phase"] == "Running")
        .flat_map(|j| j["spec"]["tasks"].as_array().cloned().unwrap_or_default())
        .map(|t| t["replicas"].as_i64().unwrap_or(0))
        .sum();
    if allocated > 0 {
        return Err(denied(
            webhook,
            format!("queue {name} cannot be deleted because it has allocated Pods: {allocated}"),
        ));
    }
    let children: Vec<&str> = store
        .list("scheduling.volcano.sh", "Queue")
        .into_iter()
        .filter(|q| q["spec"]["parent"] == name)
        .filter_map(|q| q["metadata"]["name"].as_str())
        .collect();
    if !children.is_empty() {
        return Err(denied(
            webhook,
            format!(
                "queue {name} can not be deleted because it has {} child queues: {}",
                children.len(),
                children.join(", ")
            ),
        ));
    }
    Ok(())
}

fn queue_open(store: &dyn Lookup, queue: &Value, webhook: &str) -> Result<(), ApiError> {
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
