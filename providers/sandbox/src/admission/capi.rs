//! Cluster API's webhooks: topology and reference rules of Clusters, template immutability,
//! MachineDeployment and MachineHealthCheck cluster names, the KubeadmControlPlane
//! allow-list, and Kubernetes version skew.

use super::{IMMUTABLE, Lookup, Rules, changed, changed_paths, immutable, invalid};
use crate::kinds::ResourceType;
use crate::status::{ApiError, Cause};
use serde_json::{Value, json};

pub(super) static RULES: Rules = Rules {
    mutate: super::no_mutation,
    validate,
    validate_delete: super::any_delete,
};

fn validate(
    _: &dyn Lookup,
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
        _ => {}
    }
    invalid(rt, obj, causes)
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
}
