//! Health for rollout gates ([`flotilla_provider::Provider::observe`]), bound to the
//! revision applied:
//!
//! - a Flagger `Canary` is healthy when its phase is `Succeeded` (or `Initialized`, a first
//!   install) for the target's current pod template: when the target's template changed
//!   since the baseline, Flagger's `lastAppliedSpec` must have moved on from the baseline's
//!   first, so the status of the previous revision never passes; `Failed` is a failure;
//! - any other object by the readiness rule its apply waits for: Deployments, StatefulSets
//!   and DaemonSets rolled out at their current generation (`observedGeneration` included),
//!   Flux and Kyverno objects `Ready`, the rest by a `Ready` condition or as accepted.

use flotilla_provider::{Health, Observation, ProviderError};
use kube::discovery::ApiResource;
use serde_json::{Value as Json, json};

use crate::conn::Target;
use crate::ops::{self, Status};

fn deployments() -> ApiResource {
    ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        plural: "deployments".into(),
    }
}

/// The digest of a pod template, to tell whether it changed.
fn template_digest(obj: &Json) -> String {
    blake3::hash(obj["spec"]["template"].to_string().as_bytes())
        .to_hex()
        .to_string()
}

/// An object that does not exist (yet): progressing.
pub fn missing(what: String) -> Observation {
    Observation {
        health: Health::Progressing,
        message: what,
        weight: None,
        failed_checks: None,
        baseline: Json::Null,
    }
}

/// The health of `live`, judged against `baseline`.
pub async fn observe(
    target: &Target,
    live: &Json,
    baseline: Option<&Json>,
) -> Result<Observation, ProviderError> {
    let kind = live["kind"].as_str().unwrap_or_default();
    let group = live["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default();
    if group == "flagger.app" && kind == "Canary" {
        return canary(target, live, baseline).await;
    }
    let readiness =
        crate::kinds::manifest_readiness(live["apiVersion"].as_str().unwrap_or_default(), kind);
    let (health, message) = match ops::check(live, readiness) {
        Status::Ready => (Health::Healthy, "ready".to_string()),
        Status::Waiting(why) => (Health::Progressing, why),
        Status::Failed(why) => (Health::Failed, why),
    };
    Ok(Observation {
        health,
        message,
        weight: None,
        failed_checks: None,
        baseline: json!({"generation": live["metadata"]["generation"]}),
    })
}

async fn canary(
    target: &Target,
    live: &Json,
    baseline: Option<&Json>,
) -> Result<Observation, ProviderError> {
    let status = &live["status"];
    let applied = status["lastAppliedSpec"].as_str().unwrap_or_default();
    let namespace = live["metadata"]["namespace"].as_str().unwrap_or("default");
    let target_ref = &live["spec"]["targetRef"];
    let template = match target_ref["name"].as_str() {
        Some(name) if target_ref["kind"] == "Deployment" => {
            ops::get(target, &deployments(), Some(namespace), name)
                .await?
                .map(|d| template_digest(&d))
        }
        _ => None,
    };
    let phase = status["phase"].as_str().unwrap_or("");
    let promoted = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Promoted")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default();
    let stale = baseline.is_some_and(|b| {
        b["template"].as_str() != template.as_deref() && b["applied"].as_str() == Some(applied)
    });
    let health = match phase {
        _ if stale => Health::Progressing,
        "Succeeded" | "Initialized" => Health::Healthy,
        "Failed" => Health::Failed,
        _ => Health::Progressing,
    };
    let promoted = promoted.trim_end_matches('.');
    let message = match phase {
        _ if stale => "waiting for Flagger to pick up the new revision".to_string(),
        "" => "waiting for Flagger to initialise the canary".to_string(),
        "Failed" if !promoted.is_empty() => format!("canary analysis failed: {promoted}"),
        "Failed" => "canary analysis failed".to_string(),
        _ if promoted.is_empty() => format!("canary {phase}"),
        _ => format!("canary {phase}: {promoted}"),
    };
    Ok(Observation {
        health,
        message,
        weight: status["canaryWeight"].as_i64(),
        failed_checks: status["failedChecks"].as_i64(),
        baseline: json!({"applied": applied, "template": template}),
    })
}
