//! The ecosystems through kube-rs: CRDs installed with `with`, admission rules on real and
//! dry-run requests, the simulated controllers (including Cluster API clusters that become
//! new sandbox clusters and Karmada propagation into members), and fault injection.

mod support;

use base64::Engine;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Error};
use serde_json::{Value, json};
use std::time::Duration;
use support::{api_error, client, sandbox_with};

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn ns_api(c: &Client, api_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(c.clone(), "default", &resource(api_version, kind, plural))
}

fn all_api(c: &Client, api_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::all_with(c.clone(), &resource(api_version, kind, plural))
}

fn obj(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

/// The error's message contains every one of `parts`.
#[track_caller]
fn assert_says(err: &kube::core::Status, parts: &[&str]) {
    for part in parts {
        assert!(
            err.message.contains(part),
            "{part:?} not in: {}",
            err.message
        );
    }
}

/// A merge patch the server refuses.
async fn merge_refused<K>(api: &Api<K>, name: &str, patch: Value) -> kube::core::Status
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api_error(
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await,
    )
}

fn apply() -> PatchParams {
    PatchParams::apply("test").force()
}

fn dry_apply() -> PatchParams {
    PatchParams::apply("test").force().dry_run()
}

/// Server-side applies `body` (its name from metadata).
async fn put(api: &Api<DynamicObject>, body: Value) -> DynamicObject {
    let name = body["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(&name, &apply(), &Patch::Apply(body))
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"))
}

/// Polls until `check` holds for the object (or its absence), for up to five seconds.
async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    for _ in 0..250 {
        let current = api
            .get_opt(name)
            .await
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap());
        if check(current.as_ref()) {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name}: timed out waiting for {what}");
}

fn condition(obj: Option<&Value>, ty: &str) -> Option<String> {
    obj?["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)?["status"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn every_ecosystem_installs_and_serves_its_kinds() {
    let sb = sandbox_with(&["one"], "all").await;
    let c = client(&sb, "one").await;
    let discovery = kube::discovery::Discovery::new(c.clone())
        .run()
        .await
        .unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    for group in [
        "cluster.x-k8s.io",
        "controlplane.cluster.x-k8s.io",
        "infrastructure.cluster.x-k8s.io",
        "cluster.karmada.io",
        "policy.karmada.io",
        "work.karmada.io",
        "apps.kubeedge.io",
        "rules.kubeedge.io",
        "networking.istio.io",
        "security.istio.io",
        "scheduling.volcano.sh",
        "batch.volcano.sh",
        "kyverno.io",
        "flagger.app",
        "helm.toolkit.fluxcd.io",
    ] {
        assert!(groups.iter().any(|g| g == group), "{group} is served");
    }
    // Istio objects are accepted and get no status, as with a default istiod.
    let vs = ns_api(
        &c,
        "networking.istio.io/v1",
        "VirtualService",
        "virtualservices",
    );
    put(
        &vs,
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews"},
               "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = serde_json::to_value(vs.get("reviews").await.unwrap()).unwrap();
    assert!(got.get("status").is_none());
    // Schemas are enforced: a wrong type is a 422 naming the field.
    let err = api_error(
        ns_api(
            &c,
            "cluster.x-k8s.io/v1beta2",
            "MachineDeployment",
            "machinedeployments",
        )
        .patch(
            "md",
            &apply(),
            &Patch::Apply(
                json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
                    "metadata": {"name": "md"}, "spec": {"clusterName": "x", "replicas": "three"}}),
            ),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    assert_says(&err, &["spec.replicas"]);
    // Installing again (a restart with the same `with`) changes nothing.
    let rv = sb.cluster("one").unwrap().store().resource_version();
    flotilla_sandbox::ecosystems::install(
        &sb.cluster("one").unwrap(),
        flotilla_sandbox::Ecosystem::Capi,
    )
    .unwrap();
    assert_eq!(sb.cluster("one").unwrap().store().resource_version(), rv);
}

fn capi_objects(name: &str, version: &str) -> Vec<(ApiResource, Value)> {
    let infra = resource(
        "infrastructure.cluster.x-k8s.io/v1beta2",
        "DockerCluster",
        "dockerclusters",
    );
    let template = resource(
        "infrastructure.cluster.x-k8s.io/v1beta2",
        "DockerMachineTemplate",
        "dockermachinetemplates",
    );
    let kcp = resource(
        "controlplane.cluster.x-k8s.io/v1beta2",
        "KubeadmControlPlane",
        "kubeadmcontrolplanes",
    );
    let cluster = resource("cluster.x-k8s.io/v1beta2", "Cluster", "clusters");
    vec![
        (
            infra,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerCluster", "metadata": {"name": name}, "spec": {}}),
        ),
        (
            template,
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachineTemplate", "metadata": {"name": format!("{name}-cp")},
            "spec": {"template": {"spec": {"customImage": "kindest/node:v1.33.0"}}}}),
        ),
        (
            kcp,
            json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1beta2", "kind": "KubeadmControlPlane", "metadata": {"name": format!("{name}-cp")},
            "spec": {"replicas": 1, "version": version, "machineTemplate": {"spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachineTemplate", "name": format!("{name}-cp")}}}}}),
        ),
        (
            cluster,
            json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": name},
            "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}},
                     "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerCluster", "name": name},
                     "controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "KubeadmControlPlane", "name": format!("{name}-cp")}}}),
        ),
    ]
}

#[tokio::test]
async fn a_capi_cluster_becomes_a_new_sandbox_cluster_and_goes_with_it() {
    let sb = sandbox_with(&["mgmt"], "capi").await;
    let c = client(&sb, "mgmt").await;
    for (ar, body) in capi_objects("beijing", "v1.33.0") {
        put(&Api::namespaced_with(c.clone(), "default", &ar), body).await;
    }
    let clusters = ns_api(&c, "cluster.x-k8s.io/v1beta2", "Cluster", "clusters");
    let ready = wait_for(&clusters, "beijing", "Available", |o| {
        condition(o, "Available").as_deref() == Some("True")
    })
    .await
    .unwrap();
    assert_eq!(
        ready["status"]["observedGeneration"],
        ready["metadata"]["generation"]
    );
    assert_eq!(ready["status"]["phase"], "Provisioned");
    assert_eq!(
        ready["status"]["initialization"]["controlPlaneInitialized"],
        true
    );
    let kcp = ns_api(
        &c,
        "controlplane.cluster.x-k8s.io/v1beta2",
        "KubeadmControlPlane",
        "kubeadmcontrolplanes",
    );
    let kcp_obj = wait_for(&kcp, "beijing-cp", "ready replicas", |o| {
        o.is_some_and(|o| o["status"]["readyReplicas"] == 1)
    })
    .await
    .unwrap();
    assert_eq!(kcp_obj["metadata"]["ownerReferences"][0]["name"], "beijing");

    // The kubeconfig Secret reaches the new cluster.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.clone(), "default");
    let secret = secrets.get("beijing-kubeconfig").await.unwrap();
    let value = &secret.data.unwrap()["value"].0;
    let workload = support::client_from(
        Kubeconfig::from_yaml(std::str::from_utf8(value).unwrap()).unwrap(),
        "beijing",
    )
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(workload.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_string()));
    let made = sb
        .cluster("beijing")
        .expect("a sandbox cluster named after the Cluster");
    assert_eq!(
        made.created_by.as_deref(),
        Some("capi:mgmt/default/beijing")
    );

    // A MachineDeployment reports its replicas ready.
    let mds = ns_api(
        &c,
        "cluster.x-k8s.io/v1beta2",
        "MachineDeployment",
        "machinedeployments",
    );
    put(&mds, json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment", "metadata": {"name": "beijing-md"},
        "spec": {"clusterName": "beijing", "replicas": 3, "template": {"spec": {"clusterName": "beijing", "version": "v1.33.0",
            "bootstrap": {"dataSecretName": "x"}, "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachineTemplate", "name": "beijing-cp"}}}}})).await;
    let md = wait_for(&mds, "beijing-md", "ready replicas", |o| {
        o.is_some_and(|o| o["status"]["readyReplicas"] == 3)
    })
    .await
    .unwrap();
    assert_eq!(md["status"]["phase"], "Running");
    assert_eq!(condition(Some(&md), "Available").as_deref(), Some("True"));

    // Admission: immutable template spec, clusterName, refs, version rules; dry-run too.
    let templates = ns_api(
        &c,
        "infrastructure.cluster.x-k8s.io/v1beta2",
        "DockerMachineTemplate",
        "dockermachinetemplates",
    );
    let change = json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachineTemplate", "metadata": {"name": "beijing-cp"},
        "spec": {"template": {"spec": {"customImage": "kindest/node:v1.34.0"}}}});
    for params in [dry_apply(), apply()] {
        let err = api_error(
            templates
                .patch("beijing-cp", &params, &Patch::Apply(change.clone()))
                .await,
        );
        assert_eq!(err.code, 422);
        assert_eq!(err.reason, "Invalid");
        assert_says(&err, &["spec.template.spec", "field is immutable"]);
    }
    let err = merge_refused(
        &mds,
        "beijing-md",
        json!({"spec": {"clusterName": "shanghai"}}),
    )
    .await;
    assert_says(&err, &["spec.clusterName", "field is immutable"]);
    let err = merge_refused(
        &clusters,
        "beijing",
        json!({"spec": {"controlPlaneRef": null}}),
    )
    .await;
    assert_says(&err, &["spec.controlPlaneRef", "cannot be removed"]);
    for (to, expect) in [
        ("v1.32.0", "cannot be decreased"),
        ("v1.35.0", "skip a minor"),
    ] {
        let err = api_error(
            kcp.patch(
                "beijing-cp",
                &PatchParams::default().dry_run(),
                &Patch::Merge(json!({"spec": {"version": to}})),
            )
            .await,
        );
        assert!(err.message.contains(expect), "{}", err.message);
    }
    kcp.patch(
        "beijing-cp",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"version": "v1.34.1", "replicas": 3}})),
    )
    .await
    .expect("a one-minor upgrade and a scale are allowed");
    let err = merge_refused(
        &kcp,
        "beijing-cp",
        json!({"spec": {"kubeadmConfigSpec": {"clusterConfiguration": {"certificatesDir": "/x"}}}}),
    )
    .await;
    assert_says(&err, &["certificatesDir", "cannot be modified"]);

    // Deleting the Cluster removes the sandbox cluster after the finalizer, and its parts.
    clusters
        .delete("beijing", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&clusters, "beijing", "deletion", |o| o.is_none()).await;
    assert!(sb.cluster("beijing").is_none());
    wait_for(&kcp, "beijing-cp", "garbage collection", |o| o.is_none()).await;
    assert!(
        namespaces.list(&ListParams::default()).await.is_err(),
        "the workload cluster is gone"
    );
}

#[tokio::test]
async fn karmada_propagates_templates_into_members() {
    let sb = sandbox_with(&["karmada", "member-1", "member-2"], "karmada").await;
    let c = client(&sb, "karmada").await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(c.clone(), "karmada-cluster");
    let karmada_clusters = all_api(&c, "cluster.karmada.io/v1alpha1", "Cluster", "clusters");
    for member in ["member-1", "member-2"] {
        let m = sb.cluster(member).unwrap();
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"metadata": {"name": member}, "data": {"token": b64(&m.token)}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        put(&karmada_clusters, json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster", "metadata": {"name": member, "labels": {"region": if member == "member-1" { "north" } else { "south" }}},
            "spec": {"syncMode": "Push", "apiEndpoint": m.url(), "secretRef": {"namespace": "karmada-cluster", "name": member}}})).await;
    }
    // A member whose secret holds a wrong token is not Ready.
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "bad"}, "data": {"token": b64("nope")}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    put(&karmada_clusters, json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "bad"},
        "spec": {"syncMode": "Push", "apiEndpoint": sb.cluster("member-1").unwrap().url(), "secretRef": {"namespace": "karmada-cluster", "name": "bad"}}})).await;
    for member in ["member-1", "member-2"] {
        wait_for(&karmada_clusters, member, "Ready", |o| {
            condition(o, "Ready").as_deref() == Some("True")
        })
        .await;
    }
    let bad = wait_for(&karmada_clusters, "bad", "not Ready", |o| {
        condition(o, "Ready").as_deref() == Some("False")
    })
    .await;
    assert!(
        bad.unwrap()["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not accepted")
    );
    let long = "x".repeat(49);
    let err = api_error(
        karmada_clusters
            .patch(
                &long,
                &dry_apply(),
                &Patch::Apply(
                    json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": long}, "spec": {"syncMode": "Push"}}),
                ),
            )
            .await,
    );
    assert_says(&err, &["48 characters"]);

    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(c.clone(), "default");
    deployments.patch("nginx", &apply(), &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "nginx"}}, "template": {"metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}))).await.unwrap();
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(c.clone(), "default");
    configmaps.patch("settings", &apply(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": {"app": "nginx"}}, "data": {"mode": "fleet"}}))).await.unwrap();
    let overrides = ns_api(
        &c,
        "policy.karmada.io/v1alpha1",
        "OverridePolicy",
        "overridepolicies",
    );
    put(&overrides, json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "OverridePolicy", "metadata": {"name": "south-registry"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}],
                 "overrideRules": [{"targetCluster": {"labelSelector": {"matchLabels": {"region": "south"}}},
                                    "overriders": {"imageOverrider": [{"component": "Registry", "operator": "replace", "value": "registry.south.example"}],
                                                   "labelsOverrider": [{"operator": "add", "value": {"region": "south"}}]}}]}})).await;
    let policies = ns_api(
        &c,
        "policy.karmada.io/v1alpha1",
        "PropagationPolicy",
        "propagationpolicies",
    );
    let pp = put(&policies, json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy", "metadata": {"name": "nginx"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}, {"apiVersion": "v1", "kind": "ConfigMap", "labelSelector": {"matchLabels": {"app": "nginx"}}}],
                 "placement": {"clusterAffinity": {"clusterNames": ["member-1", "member-2"]},
                               "replicaScheduling": {"replicaSchedulingType": "Divided",
                                   "weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": ["member-1"]}, "weight": 1}, {"targetCluster": {"clusterNames": ["member-2"]}, "weight": 2}]}}}}})).await;
    // The mutating webhook's defaults, as a naive diff would see them.
    let pp = serde_json::to_value(pp).unwrap();
    assert_eq!(pp["spec"]["resourceSelectors"][0]["namespace"], "default");
    assert_eq!(
        pp["spec"]["placement"]["replicaScheduling"]["replicaDivisionPreference"],
        "Weighted"
    );
    assert!(pp["metadata"]["labels"]["propagationpolicy.karmada.io/permanent-id"].is_string());

    let bindings = ns_api(
        &c,
        "work.karmada.io/v1alpha2",
        "ResourceBinding",
        "resourcebindings",
    );
    let rb = wait_for(&bindings, "nginx-deployment", "FullyApplied", |o| {
        condition(o, "FullyApplied").as_deref() == Some("True")
    })
    .await
    .unwrap();
    assert_eq!(condition(Some(&rb), "Scheduled").as_deref(), Some("True"));
    assert_eq!(
        rb["spec"]["clusters"],
        json!([{"name": "member-1", "replicas": 2}, {"name": "member-2", "replicas": 4}])
    );
    wait_for(&bindings, "settings-configmap", "FullyApplied", |o| {
        condition(o, "FullyApplied").as_deref() == Some("True")
    })
    .await;
    let member_deploy = |m: &str| {
        let c = sb.cluster(m).unwrap();
        flotilla_sandbox::local::Local::new(&c, "test").get(
            "apps",
            "Deployment",
            "default",
            "nginx",
        )
    };
    let one = member_deploy("member-1").unwrap();
    let two = member_deploy("member-2").unwrap();
    assert_eq!(one["spec"]["replicas"], 2);
    assert_eq!(two["spec"]["replicas"], 4);
    assert_eq!(
        one["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(
        two["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.south.example/nginx:1.27"
    );
    assert_eq!(two["metadata"]["labels"]["region"], "south");
    let m1 = client(&sb, "member-1").await;
    let copies: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(m1.clone(), "default");
    assert_eq!(
        copies.get("settings").await.unwrap().data.unwrap()["mode"],
        "fleet"
    );

    // A ClusterPropagationPolicy duplicates replicas into every member.
    deployments.patch("web", &apply(), &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}))).await.unwrap();
    let cluster_policies = all_api(
        &c,
        "policy.karmada.io/v1alpha1",
        "ClusterPropagationPolicy",
        "clusterpropagationpolicies",
    );
    put(&cluster_policies, json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterPropagationPolicy", "metadata": {"name": "web"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
                 "placement": {"clusterAffinity": {"labelSelector": {"matchExpressions": [{"key": "region", "operator": "Exists"}]}},
                               "replicaScheduling": {"replicaSchedulingType": "Duplicated"}}}})).await;
    let rb = wait_for(&bindings, "web-deployment", "FullyApplied", |o| {
        condition(o, "FullyApplied").as_deref() == Some("True")
    })
    .await
    .unwrap();
    assert_eq!(
        rb["spec"]["clusters"],
        json!([{"name": "member-1", "replicas": 3}, {"name": "member-2", "replicas": 3}])
    );
    for m in ["member-1", "member-2"] {
        let c = sb.cluster(m).unwrap();
        let copy = flotilla_sandbox::local::Local::new(&c, "test")
            .get("apps", "Deployment", "default", "web")
            .unwrap();
        assert_eq!(copy["spec"]["replicas"], 3);
    }

    // MultiClusterService types are immutable.
    let services = ns_api(
        &c,
        "networking.karmada.io/v1alpha1",
        "MultiClusterService",
        "multiclusterservices",
    );
    put(&services, json!({"apiVersion": "networking.karmada.io/v1alpha1", "kind": "MultiClusterService", "metadata": {"name": "nginx"},
        "spec": {"types": ["CrossCluster"], "ports": [{"port": 80}]}})).await;
    let err = api_error(services.patch("nginx", &dry_apply(), &Patch::Apply(json!({"apiVersion": "networking.karmada.io/v1alpha1", "kind": "MultiClusterService",
        "metadata": {"name": "nginx"}, "spec": {"types": ["LoadBalancer"], "ports": [{"port": 80}]}}))).await);
    assert_says(&err, &["spec.types", "field is immutable"]);

    // schedulerName is immutable.
    let err = merge_refused(
        &policies,
        "nginx",
        json!({"spec": {"schedulerName": "other"}}),
    )
    .await;
    assert_says(&err, &["spec.schedulerName", "field is immutable"]);

    // Narrowing the placement takes the copy out of the member that left.
    policies
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"placement": {"clusterAffinity": {"clusterNames": ["member-1"]}}}}),
            ),
        )
        .await
        .unwrap();
    wait_for(&bindings, "nginx-deployment", "one member", |o| {
        o.is_some_and(|o| o["spec"]["clusters"] == json!([{"name": "member-1", "replicas": 6}]))
    })
    .await;
    assert!(member_deploy("member-2").is_none());
    assert_eq!(member_deploy("member-1").unwrap()["spec"]["replicas"], 6);

    // Removing the template, then the policy, removes the copies and the bindings.
    configmaps
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&bindings, "settings-configmap", "removal", |o| o.is_none()).await;
    assert!(copies.get_opt("settings").await.unwrap().is_none());
    policies
        .delete("nginx", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&bindings, "nginx-deployment", "removal", |o| o.is_none()).await;
    assert!(member_deploy("member-1").is_none());
}

#[tokio::test]
async fn volcano_queues_jobs_and_their_webhooks() {
    let sb = sandbox_with(&["one"], "volcano").await;
    let c = client(&sb, "one").await;
    let queues = all_api(&c, "scheduling.volcano.sh/v1beta1", "Queue", "queues");
    wait_for(&queues, "default", "Open", |o| {
        o.is_some_and(|o| o["status"]["state"] == "Open")
    })
    .await;
    let q = put(&queues, json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": "research"}, "spec": {}})).await;
    let q = serde_json::to_value(q).unwrap();
    assert_eq!(q["spec"]["weight"], 1, "defaulted by the webhook");
    assert_eq!(q["spec"]["reclaimable"], true);
    wait_for(&queues, "research", "Open", |o| {
        o.is_some_and(|o| o["status"]["state"] == "Open")
    })
    .await;

    let jobs = ns_api(&c, "batch.volcano.sh/v1alpha1", "Job", "jobs");
    let job = |image: &str, replicas: i64| {
        json!({"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "metadata": {"name": "train"},
        "spec": {"tasks": [{"replicas": replicas, "template": {"spec": {"containers": [{"name": "worker", "image": image}]}}}]}})
    };
    let created = serde_json::to_value(put(&jobs, job("trainer:1", 2)).await).unwrap();
    assert_eq!(created["spec"]["queue"], "default");
    assert_eq!(created["spec"]["schedulerName"], "volcano");
    assert_eq!(created["spec"]["maxRetry"], 3);
    assert_eq!(created["spec"]["minAvailable"], 2);
    assert_eq!(created["spec"]["tasks"][0]["name"], "default0");
    let running = wait_for(&jobs, "train", "Running", |o| {
        o.is_some_and(|o| o["status"]["state"]["phase"] == "Running")
    })
    .await
    .unwrap();
    assert_eq!(running["status"]["running"], 2);
    let uid = running["metadata"]["uid"].as_str().unwrap();
    let groups = ns_api(&c, "scheduling.volcano.sh/v1beta1", "PodGroup", "podgroups");
    wait_for(&groups, &format!("train-{uid}"), "Running", |o| {
        o.is_some_and(|o| o["status"]["phase"] == "Running")
    })
    .await;

    // Only replicas, minAvailable and priorityClassName may change. (`tasks` is an atomic
    // list, so an update sends the defaulted task name back, as a real client must.)
    let named = |image: &str, replicas: i64| {
        let mut j = job(image, replicas);
        j["spec"]["tasks"][0]["name"] = json!("default0");
        j
    };
    put(&jobs, named("trainer:1", 4)).await;
    for params in [dry_apply(), apply()] {
        let err = api_error(
            jobs.patch("train", &params, &Patch::Apply(named("trainer:2", 4)))
                .await,
        );
        assert_eq!(err.code, 422);
        assert_says(&err, &["spec.tasks", "field is immutable"]);
    }

    // A closed queue refuses jobs; a Command opens and closes queues.
    let commands = ns_api(&c, "bus.volcano.sh/v1alpha1", "Command", "commands");
    commands.create(&PostParams::default(), &obj(json!({"apiVersion": "bus.volcano.sh/v1alpha1", "kind": "Command", "metadata": {"name": "close-research"},
        "action": "CloseQueue", "target": {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "name": "research"}}))).await.unwrap();
    wait_for(&queues, "research", "Closed", |o| {
        o.is_some_and(|o| o["status"]["state"] == "Closed")
    })
    .await;
    wait_for(
        &commands,
        "close-research",
        "the command to be consumed",
        |o| o.is_none(),
    )
    .await;
    let mut in_research = job("trainer:1", 1);
    in_research["metadata"]["name"] = json!("late");
    in_research["spec"]["queue"] = json!("research");
    for params in [dry_apply(), apply()] {
        let err = api_error(
            jobs.patch("late", &params, &Patch::Apply(in_research.clone()))
                .await,
        );
        assert_eq!(err.code, 403);
        assert_says(&err, &["queue with state `Open`", "`Closed`"]);
    }
    let err = api_error(queues.delete("default", &DeleteParams::default()).await);
    assert_says(&err, &["can not be deleted"]);
}

#[tokio::test]
async fn kubeedge_kyverno_flagger_and_flux_report_status() {
    let sb = sandbox_with(&["edge"], "kubeedge,kyverno,flagger,flux").await;
    let c = client(&sb, "edge").await;
    let groups = all_api(&c, "apps.kubeedge.io/v1alpha1", "NodeGroup", "nodegroups");
    put(&groups, json!({"apiVersion": "apps.kubeedge.io/v1alpha1", "kind": "NodeGroup", "metadata": {"name": "hangzhou"},
        "spec": {"nodes": ["edge-control-plane", "ghost"]}})).await;
    let ng = wait_for(&groups, "hangzhou", "node statuses", |o| {
        o.is_some_and(|o| o["status"]["nodeStatuses"].is_array())
    })
    .await
    .unwrap();
    assert_eq!(
        ng["status"]["nodeStatuses"][0],
        json!({"nodeName": "edge-control-plane", "readyStatus": "Ready", "selectionStatus": "Succeeded"})
    );
    assert_eq!(ng["status"]["nodeStatuses"][1]["selectionStatus"], "Failed");
    let apps = ns_api(
        &c,
        "apps.kubeedge.io/v1alpha1",
        "EdgeApplication",
        "edgeapplications",
    );
    put(&apps, json!({"apiVersion": "apps.kubeedge.io/v1alpha1", "kind": "EdgeApplication", "metadata": {"name": "camera"},
        "spec": {"workloadTemplate": {"manifests": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "camera"},
                     "spec": {"selector": {"matchLabels": {"app": "camera"}}, "template": {"metadata": {"labels": {"app": "camera"}},
                              "spec": {"containers": [{"name": "camera", "image": "camera:1"}]}}}}]},
                 "workloadScope": {"targetNodeGroups": [{"name": "hangzhou"}]}}})).await;
    let app = wait_for(&apps, "camera", "workload status", |o| {
        o.is_some_and(|o| o["status"]["workloadStatus"].is_array())
    })
    .await
    .unwrap();
    assert_eq!(
        app["status"]["workloadStatus"][0]["conditions"],
        "Available"
    );
    // The copy for the group, pinned to its nodes; the node is labelled with its group.
    let deployments = ns_api(&c, "apps/v1", "Deployment", "deployments");
    let copy = wait_for(&deployments, "camera-hangzhou", "the rendered copy", |o| {
        o.is_some()
    })
    .await
    .unwrap();
    assert_eq!(
        copy["spec"]["template"]["spec"]["nodeSelector"]["apps.kubeedge.io/belonging-to"],
        "hangzhou"
    );
    let nodes = all_api(&c, "v1", "Node", "nodes");
    let node = wait_for(&nodes, "edge-control-plane", "the group label", |o| {
        o.is_some_and(|o| o["metadata"]["labels"]["apps.kubeedge.io/belonging-to"] == "hangzhou")
    })
    .await;
    assert!(node.is_some());

    let endpoints = ns_api(&c, "rules.kubeedge.io/v1", "RuleEndpoint", "ruleendpoints");
    let rules = ns_api(&c, "rules.kubeedge.io/v1", "Rule", "rules");
    let rule = json!({"apiVersion": "rules.kubeedge.io/v1", "kind": "Rule", "metadata": {"name": "r"},
        "spec": {"source": "rest", "sourceResource": {"path": "/a"}, "target": "bus", "targetResource": {"topic": "t"}}});
    let err = api_error(
        rules
            .patch("r", &dry_apply(), &Patch::Apply(rule.clone()))
            .await,
    );
    assert_eq!(err.code, 403);
    assert_says(&err, &["ruleEndpoint rest"]);
    put(&endpoints, json!({"apiVersion": "rules.kubeedge.io/v1", "kind": "RuleEndpoint", "metadata": {"name": "rest"}, "spec": {"ruleEndpointType": "rest"}})).await;
    put(&endpoints, json!({"apiVersion": "rules.kubeedge.io/v1", "kind": "RuleEndpoint", "metadata": {"name": "bus"}, "spec": {"ruleEndpointType": "eventbus"}})).await;
    put(&rules, rule.clone()).await;
    let mut changed = rule.clone();
    changed["spec"]["targetResource"]["topic"] = json!("t2");
    let err = api_error(rules.patch("r", &apply(), &Patch::Apply(changed)).await);
    assert_eq!(err.code, 422);
    assert_says(&err, &["field is immutable"]);
    put(&rules, rule).await; // an unchanged apply is fine

    let policies = all_api(&c, "kyverno.io/v1", "ClusterPolicy", "clusterpolicies");
    put(&policies, json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "require-labels"},
        "spec": {"rules": [{"name": "check", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "validate": {"message": "label app required", "pattern": {"metadata": {"labels": {"app": "?*"}}}}}]}})).await;
    let p = wait_for(&policies, "require-labels", "Ready", |o| {
        condition(o, "Ready").as_deref() == Some("True")
    })
    .await
    .unwrap();
    assert_eq!(p["spec"]["background"], true, "schema default");
    assert_eq!(p["status"]["rulecount"]["validate"], 1);

    let canaries = ns_api(&c, "flagger.app/v1beta1", "Canary", "canaries");
    put(&canaries, json!({"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "podinfo"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"}, "service": {"port": 9898},
                 "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}}})).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let waiting = serde_json::to_value(canaries.get("podinfo").await.unwrap()).unwrap();
    assert_eq!(
        waiting["status"]["phase"], "Initializing",
        "waits for its Deployment"
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(c.clone(), "default");
    deployments.patch("podinfo", &apply(), &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "podinfo"},
        "spec": {"selector": {"matchLabels": {"app": "podinfo"}}, "template": {"metadata": {"labels": {"app": "podinfo"}}, "spec": {"containers": [{"name": "podinfo", "image": "podinfo:6"}]}}}}))).await.unwrap();
    let initialized = wait_for(&canaries, "podinfo", "Initialized", |o| {
        o.is_some_and(|o| o["status"]["phase"] == "Initialized")
    })
    .await
    .unwrap();
    let first = initialized["status"]["lastAppliedSpec"].clone();
    assert_eq!(initialized["status"]["lastPromotedSpec"], first);
    // A new revision of the pod template runs the analysis: the weight steps up, then the
    // canary is promoted.
    let podinfo = |image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "podinfo"},
        "spec": {"selector": {"matchLabels": {"app": "podinfo"}}, "template": {"metadata": {"labels": {"app": "podinfo"}}, "spec": {"containers": [{"name": "podinfo", "image": image}]}}}})
    };
    deployments
        .patch("podinfo", &apply(), &Patch::Apply(podinfo("podinfo:7")))
        .await
        .unwrap();
    let stepping = wait_for(&canaries, "podinfo", "a weight step", |o| {
        o.is_some_and(|o| {
            o["status"]["phase"] == "Progressing" && o["status"]["canaryWeight"] == 20
        })
    })
    .await
    .unwrap();
    let second = stepping["status"]["lastAppliedSpec"].clone();
    assert_ne!(second, first, "bound to the new revision");
    let done = wait_for(&canaries, "podinfo", "Succeeded", |o| {
        o.is_some_and(|o| o["status"]["phase"] == "Succeeded")
    })
    .await
    .unwrap();
    assert_eq!(done["status"]["lastPromotedSpec"], second);
    assert_eq!(done["status"]["canaryWeight"], 0);
    assert_eq!(condition(Some(&done), "Promoted").as_deref(), Some("True"));
    // With the analysis failing, checks accumulate to the threshold and the canary fails.
    sb.cluster("edge")
        .unwrap()
        .faults
        .set(flotilla_sandbox::FaultConfig {
            canary_analysis_fail: true,
            ..Default::default()
        });
    deployments
        .patch("podinfo", &apply(), &Patch::Apply(podinfo("podinfo:8")))
        .await
        .unwrap();
    let failed = wait_for(&canaries, "podinfo", "Failed", |o| {
        o.is_some_and(|o| o["status"]["phase"] == "Failed")
    })
    .await
    .unwrap();
    assert_eq!(failed["status"]["failedChecks"], 5);
    assert_eq!(failed["status"]["canaryWeight"], 0);
    assert_eq!(failed["status"]["lastPromotedSpec"], second);
    assert_eq!(
        condition(Some(&failed), "Promoted").as_deref(),
        Some("False")
    );
    // Reverting to the promoted revision succeeds without an analysis.
    sb.cluster("edge").unwrap().faults.set(Default::default());
    deployments
        .patch("podinfo", &apply(), &Patch::Apply(podinfo("podinfo:7")))
        .await
        .unwrap();
    let reverted = wait_for(&canaries, "podinfo", "the revert", |o| {
        o.is_some_and(|o| o["status"]["phase"] == "Succeeded")
    })
    .await
    .unwrap();
    assert_eq!(reverted["status"]["lastAppliedSpec"], second);
    assert_eq!(reverted["status"]["failedChecks"], 0);

    let releases = ns_api(
        &c,
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
        "helmreleases",
    );
    put(&releases, json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "istiod"},
        "spec": {"interval": "5m", "chart": {"spec": {"chart": "istiod", "version": "1.24.1", "sourceRef": {"kind": "HelmRepository", "name": "istio"}}}}})).await;
    // Without its HelmRepository the release waits, saying why.
    let waiting = wait_for(&releases, "istiod", "a missing source", |o| {
        condition(o, "Ready").as_deref() == Some("False")
    })
    .await
    .unwrap();
    assert!(
        waiting["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("HelmRepository 'default/istio' not found"),
        "{waiting}"
    );
    let repositories = ns_api(
        &c,
        "source.toolkit.fluxcd.io/v1",
        "HelmRepository",
        "helmrepositories",
    );
    put(&repositories, json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository", "metadata": {"name": "istio"},
        "spec": {"url": "https://istio-release.storage.googleapis.com/charts"}})).await;
    let hr = wait_for(&releases, "istiod", "Ready", |o| {
        condition(o, "Ready").as_deref() == Some("True")
    })
    .await
    .unwrap();
    assert_eq!(hr["status"]["observedGeneration"], 1);
    // A release of a chart the catalogue knows installs that platform: Istio's CRDs.
    let crds = all_api(
        &c,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    assert!(
        crds.get_opt("virtualservices.networking.istio.io")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn faults_are_injected_and_lifted_at_runtime() {
    let sb = sandbox_with(&["flaky"], "").await;
    // kube-rs retries 429 and 503 by default; this test looks at the raw answers.
    let kubeconfig = Kubeconfig::from_yaml(&sb.kubeconfig()).unwrap();
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.default_retry = false;
    let c = Client::try_from(config).unwrap();
    let set = |config: Value| {
        let c = c.clone();
        async move {
            let req = http::Request::put("/flotilla/v1/faults")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&config).unwrap())
                .unwrap();
            let resp = c.send(req.map(kube::client::Body::from)).await.unwrap();
            assert_eq!(resp.status(), 200);
        }
    };
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());

    set(json!({"error_rate": 1.0, "seed": 3})).await;
    let err = api_error(namespaces.get("default").await);
    assert!(err.code == 500 || err.code == 503, "{err:?}");

    set(json!({"throttle_rate": 1.0, "retry_after_seconds": 7})).await;
    let req = http::Request::get("/api/v1/namespaces/default")
        .body(Vec::new())
        .unwrap();
    let resp = c.send(req.map(kube::client::Body::from)).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");

    set(json!({"conflict_rate": 1.0, "writes_only": true})).await;
    namespaces
        .get("default")
        .await
        .expect("reads are not affected");
    let err = merge_refused(
        &namespaces,
        "default",
        json!({"metadata": {"labels": {"a": "b"}}}),
    )
    .await;
    assert_eq!(err.code, 409);
    namespaces
        .patch(
            "default",
            &apply(),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            ),
        )
        .await
        .expect("server-side apply is not an update that conflicts");

    set(json!({"unreachable_for_ms": 300})).await;
    match namespaces.get("default").await {
        Err(Error::Api(s)) => panic!("expected a dropped connection, got {s:?}"),
        Err(_) => {}
        Ok(_) => panic!("expected a dropped connection"),
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    namespaces
        .get("default")
        .await
        .expect("back after the outage");

    // The same seed gives the same answers; with this one the first request is throttled.
    let throttled = json!({"throttle_rate": 0.5, "seed": 1});
    let mut runs = Vec::new();
    for _ in 0..2 {
        set(throttled.clone()).await;
        let mut codes = Vec::new();
        for _ in 0..8 {
            let req = http::Request::get("/api/v1/namespaces/default")
                .body(Vec::new())
                .unwrap();
            codes.push(
                c.send(req.map(kube::client::Body::from))
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        runs.push(codes);
    }
    assert_eq!(runs[0], runs[1], "deterministic");
    assert_eq!(runs[0][0], 429, "{:?}", runs[0]);
    assert!(runs[0].contains(&200), "{:?}", runs[0]);
    // A default (retrying) kube client gets through: its first attempt is that 429.
    set(throttled).await;
    let retrying: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client(&sb, "flaky").await);
    retrying
        .get("default")
        .await
        .expect("retried through the 429");

    set(json!({})).await;
    namespaces.get("default").await.unwrap();
    // Bad configurations are refused with the field named.
    let req = http::Request::put("/flotilla/v1/faults")
        .body(serde_json::to_vec(&json!({"error_rate": 3})).unwrap())
        .unwrap();
    let resp = c.send(req.map(kube::client::Body::from)).await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn capi_clusters_and_the_faults_file_work_with_a_sandbox_directory() {
    let dir = tempfile::tempdir().unwrap();
    let options = flotilla_sandbox::SandboxOptions {
        dir: Some(dir.path().to_path_buf()),
        clusters: vec!["mgmt".into()],
        with: vec![flotilla_sandbox::Ecosystem::Capi],
        controller_delay: Some(Duration::from_millis(20)),
        ..flotilla_sandbox::SandboxOptions::default()
    };
    let sb = flotilla_sandbox::Sandbox::start(options.clone())
        .await
        .unwrap();
    let c = client(&sb, "mgmt").await;
    for (ar, body) in capi_objects("tokyo", "v1.33.0") {
        put(&Api::namespaced_with(c.clone(), "default", &ar), body).await;
    }
    let clusters = ns_api(&c, "cluster.x-k8s.io/v1beta2", "Cluster", "clusters");
    wait_for(&clusters, "tokyo", "Available", |o| {
        condition(o, "Available").as_deref() == Some("True")
    })
    .await;
    let kubeconfig = std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap();
    assert!(
        kubeconfig.contains("name: tokyo"),
        "the sandbox kubeconfig lists the new cluster"
    );

    // The faults file is read while the sandbox runs.
    std::fs::write(
        dir.path().join(flotilla_sandbox::FAULTS_FILE),
        r#"{"mgmt": {"error_rate": 1.0, "writes_only": true}}"#,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sb.cluster("mgmt").unwrap().faults.config().error_rate, 1.0);
    std::fs::write(dir.path().join(flotilla_sandbox::FAULTS_FILE), "{}").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sb.cluster("mgmt").unwrap().faults.config(),
        flotilla_sandbox::FaultConfig::default()
    );
    sb.stop().await.unwrap();

    // After a restart the workload cluster is back, still known as the Cluster's.
    let sb = flotilla_sandbox::Sandbox::start(flotilla_sandbox::SandboxOptions {
        clusters: vec![],
        ..options
    })
    .await
    .unwrap();
    let tokyo = sb.cluster("tokyo").expect("the workload cluster is kept");
    assert_eq!(tokyo.created_by.as_deref(), Some("capi:mgmt/default/tokyo"));
    let c = client(&sb, "mgmt").await;
    let clusters = ns_api(&c, "cluster.x-k8s.io/v1beta2", "Cluster", "clusters");
    clusters
        .delete("tokyo", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&clusters, "tokyo", "deletion", |o| o.is_none()).await;
    assert!(sb.cluster("tokyo").is_none());
    assert!(!dir.path().join("clusters/tokyo.json").exists());
    sb.stop().await.unwrap();
}

/// The documents of a YAML file under examples/sandbox-ecosystems.
fn example(file: &str) -> Vec<Value> {
    let path = format!(
        "{}/../../examples/sandbox-ecosystems/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

async fn apply_document(c: &Client, doc: &Value) {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let kind = doc["kind"].as_str().unwrap();
    let plural = format!("{}s", kind.to_lowercase());
    let ar = resource(api_version, kind, &plural);
    let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(c.clone(), ns, &ar),
        None if kind == "Queue" => Api::all_with(c.clone(), &ar),
        None => Api::namespaced_with(c.clone(), "default", &ar),
    };
    put(&api, doc.clone()).await;
}

#[tokio::test]
async fn the_examples_apply_as_their_readme_says() {
    let sb = sandbox_with(&["mgmt"], "capi,volcano").await;
    let c = client(&sb, "mgmt").await;
    for doc in example("capi-cluster.yaml") {
        apply_document(&c, &doc).await;
    }
    let clusters = ns_api(&c, "cluster.x-k8s.io/v1beta2", "Cluster", "clusters");
    wait_for(&clusters, "beijing", "Available", |o| {
        condition(o, "Available").as_deref() == Some("True")
    })
    .await;
    assert!(sb.cluster("beijing").is_some());

    let docs = example("volcano-job.yaml");
    apply_document(&c, &docs[0]).await;
    let queues = all_api(&c, "scheduling.volcano.sh/v1beta1", "Queue", "queues");
    wait_for(&queues, "research", "Open", |o| {
        o.is_some_and(|o| o["status"]["state"] == "Open")
    })
    .await;
    apply_document(&c, &docs[1]).await;
    let jobs = ns_api(&c, "batch.volcano.sh/v1alpha1", "Job", "jobs");
    wait_for(&jobs, "train", "Running", |o| {
        o.is_some_and(|o| o["status"]["state"]["phase"] == "Running")
    })
    .await;
}

#[tokio::test]
async fn deployments_roll_out_through_replica_sets() {
    let sb = sandbox_with(&["apps"], "").await;
    let c = client(&sb, "apps").await;
    let deployments = ns_api(&c, "apps/v1", "Deployment", "deployments");
    let sets = ns_api(&c, "apps/v1", "ReplicaSet", "replicasets");
    let body = |image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image,
                    "ports": [{"name": "http", "containerPort": 8080}]}]}}}})
    };
    let rolled = |generation: i64| {
        move |o: Option<&Value>| {
            o.is_some_and(|o| {
                let s = &o["status"];
                s["observedGeneration"] == generation
                    && s["updatedReplicas"] == 3
                    && s["availableReplicas"] == 3
                    && s["replicas"] == 3
                    && condition(Some(o), "Available").as_deref() == Some("True")
            })
        }
    };
    put(&deployments, body("nginx:1.27")).await;
    let d = wait_for(&deployments, "web", "the first rollout", rolled(1))
        .await
        .unwrap();
    assert_eq!(condition(Some(&d), "Progressing").as_deref(), Some("True"));
    let first: Vec<Value> = sets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    assert_eq!(first.len(), 1);
    let first_name = first[0]["metadata"]["name"].as_str().unwrap().to_string();
    assert!(first_name.starts_with("web-"), "{first_name}");
    assert_eq!(
        first[0]["metadata"]["labels"]["pod-template-hash"],
        first_name["web-".len()..]
    );

    // A new pod template: a second ReplicaSet (revision 2), the first scaled to zero.
    put(&deployments, body("nginx:1.28")).await;
    let second = wait_for(&deployments, "web", "the second rollout", rolled(2))
        .await
        .unwrap();
    // The port applied without `protocol` is the live port defaulted to TCP, not a second
    // one (the applied configuration is defaulted before it is merged).
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    let old = wait_for(&sets, &first_name, "the old ReplicaSet scaled down", |o| {
        o.is_some_and(|o| o["spec"]["replicas"] == 0)
    })
    .await
    .unwrap();
    assert_eq!(
        old["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(sets.list(&Default::default()).await.unwrap().items.len(), 2);

    // With rollouts stalled, a third template never becomes available.
    sb.cluster("apps")
        .unwrap()
        .faults
        .set(flotilla_sandbox::FaultConfig {
            rollouts_stall: true,
            ..Default::default()
        });
    put(&deployments, body("nginx:1.29")).await;
    let stuck = wait_for(&deployments, "web", "the stalled rollout", |o| {
        o.is_some_and(|o| {
            o["status"]["observedGeneration"] == 3 && o["status"]["updatedReplicas"] == 3
        })
    })
    .await
    .unwrap();
    assert_eq!(stuck["status"]["availableReplicas"], 0, "{stuck}");
    assert_eq!(
        condition(Some(&stuck), "Available").as_deref(),
        Some("False")
    );
}
