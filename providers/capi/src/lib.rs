//! The Cluster API provider (`capi`): clusters, their control planes, workers, health
//! checks and Docker infrastructure, in `v1beta2`.
//!
//! Every kind is a row of [`KINDS`], run by the shared Kubernetes runtime
//! ([`flotilla_provider_kube::KubeProvider`]); facts per kind come from the upstream webhooks
//! and CRDs (see docs/providers/capi.md):
//!
//! - `capi_cluster` waits for `Available` and exports `kubeconfig` (sensitive) from the
//!   `<name>-kubeconfig` Secret, which other provider blocks take as `kubeconfig_raw`;
//! - machine templates (`capi_docker_machine_template`, `capi_kubeadm_config_template`) are
//!   named `NAME-HASH`: a change of `spec.template.spec` creates a new template before the
//!   old one goes, and the objects that refer to `object_name` are updated to the new one;
//! - what the controllers generate (Machines, MachineSets, the kubeconfig Secret) is never
//!   managed; read it with `data "kube_object"`.

use std::sync::{Arc, OnceLock};

use flotilla_ecosystems::Ecosystem;
use flotilla_provider::{Provider, ProviderHost};
use flotilla_provider_kube::{Catalog, Export, Kind, KubeProvider, Readiness};

/// The provider's name.
pub const NAME: &str = "capi";

/// A cluster's kubeconfig, from the `<name>-kubeconfig` Secret its controller writes.
const KUBECONFIG: Export = Export {
    attr: "kubeconfig",
    doc: "A kubeconfig for the new cluster, from its `<name>-kubeconfig` Secret once it is Available.",
    secret_suffix: "-kubeconfig",
    key: "value",
    sensitive: true,
};

/// The Cluster API kinds.
pub static KINDS: [Kind; 8] = [
    Kind {
        force_new: &[
            "spec.topology?",
            "spec.controlPlaneRef",
            "spec.infrastructureRef",
        ],
        immutable: &[
            "spec.topology",
            "spec.controlPlaneRef",
            "spec.infrastructureRef",
        ],
        readiness: Readiness::Condition("Available"),
        exports: &[KUBECONFIG],
        ..Kind::of_crd(
            ECOSYSTEM,
            "capi_cluster",
            "A workload cluster; ready when Available, then `kubeconfig` is set.",
            "cluster.x-k8s.io/v1beta2",
            "Cluster",
            "clusters",
        )
    },
    Kind {
        readiness: Readiness::Condition("VariablesReady"),
        ..Kind::of_crd(
            ECOSYSTEM,
            "capi_cluster_class",
            "A ClusterClass: the templates clusters with a topology are built from.",
            "cluster.x-k8s.io/v1beta2",
            "ClusterClass",
            "clusterclasses",
        )
    },
    Kind {
        immutable: &["spec.kubeadmConfigSpec"],
        readiness: Readiness::Condition("Available"),
        ..Kind::of_crd(
            ECOSYSTEM,
            "capi_kubeadm_control_plane",
            "A kubeadm control plane; fields outside the upstream allow-list are replaced.",
            "controlplane.cluster.x-k8s.io/v1beta2",
            "KubeadmControlPlane",
            "kubeadmcontrolplanes",
        )
    },
    Kind {
        rotate: true,
        force_new: &["spec.template.spec"],
        immutable: &["spec.template.spec"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "capi_kubeadm_config_template",
            "A kubeadm bootstrap template; named NAME-HASH and rotated when its template changes.",
            "bootstrap.cluster.x-k8s.io/v1beta2",
            "KubeadmConfigTemplate",
            "kubeadmconfigtemplates",
        )
    },
    Kind {
        force_new: &["spec.clusterName", "spec.selector"],
        immutable: &["spec.clusterName"],
        readiness: Readiness::Condition("Available"),
        ..Kind::of_crd(
            ECOSYSTEM,
            "capi_machine_deployment",
            "A set of worker machines.",
            "cluster.x-k8s.io/v1beta2",
            "MachineDeployment",
            "machinedeployments",
        )
    },
    Kind {
        force_new: &["spec.clusterName"],
        immutable: &["spec.clusterName"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "capi_machine_health_check",
            "Remediation rules for a cluster's machines.",
            "cluster.x-k8s.io/v1beta2",
            "MachineHealthCheck",
            "machinehealthchecks",
        )
    },
    Kind {
        force_new: &["spec.loadBalancer"],
        readiness: Readiness::Condition("Ready"),
        ..Kind::of_crd(
            ECOSYSTEM,
            "capi_docker_cluster",
            "Docker infrastructure for a cluster (CAPD).",
            "infrastructure.cluster.x-k8s.io/v1beta2",
            "DockerCluster",
            "dockerclusters",
        )
    },
    Kind {
        rotate: true,
        force_new: &["spec.template.spec"],
        immutable: &["spec.template.spec"],
        ..Kind::of_crd(
            ECOSYSTEM,
            "capi_docker_machine_template",
            "Docker machine settings; named NAME-HASH and rotated when its template changes.",
            "infrastructure.cluster.x-k8s.io/v1beta2",
            "DockerMachineTemplate",
            "dockermachinetemplates",
        )
    },
];

/// The provider's table.
pub static CATALOG: Catalog = Catalog {
    name: NAME,
    kinds: &[
        &KINDS[0], &KINDS[1], &KINDS[2], &KINDS[3], &KINDS[4], &KINDS[5], &KINDS[6], &KINDS[7],
    ],
    ecosystems: &[ECOSYSTEM],
    data_sources: false,
    check: None,
    notes: None,
    review: None,
    nodes: None,
    references: None,
    schema: OnceLock::new(),
};

/// The ecosystem whose CRDs define these kinds (what a sandbox cluster needs to serve them).
pub const ECOSYSTEM: Ecosystem = Ecosystem::Capi;

/// A new instance, for the provider registry.
pub fn factory(host: &Arc<ProviderHost>) -> Arc<dyn Provider> {
    Arc::new(KubeProvider::new(&CATALOG, host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_provider::Value;

    #[test]
    fn every_kind_has_a_schema_in_the_capi_crds() {
        let p = factory(&Arc::new(ProviderHost::new()));
        assert_eq!(CATALOG.mismatches(), Vec::<String>::new());
        for kind in &KINDS {
            assert!(p.schema().resources.contains_key(kind.type_name));
        }
        let cluster = &p.schema().resources["capi_cluster"];
        assert!(cluster.block.attributes["kubeconfig"].sensitive);
        assert!(p.schema().resources["capi_docker_machine_template"].create_before_destroy);
    }

    #[test]
    fn offline_validation_suggests_field_names() {
        let p = factory(&Arc::new(ProviderHost::new()));
        let config = Value::object([
            ("name", Value::string("beijing")),
            (
                "spec",
                Value::object([(
                    "infrastructureRef",
                    Value::object([
                        ("apiGroup", Value::string("g")),
                        ("kind", Value::string("DockerCluster")),
                        ("nmae", Value::string("x")),
                    ]),
                )]),
            ),
        ]);
        let errors: Vec<String> = p
            .validate("capi_cluster", &config)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("unknown field `nmae`") && e.contains("did you mean `name`?")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("missing required field `name`")),
            "{errors:?}"
        );
    }
}
