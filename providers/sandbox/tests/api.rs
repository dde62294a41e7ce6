//! The sandbox through kube-rs, exactly as providers use it: discovery, auth, CRUD, CRDs with
//! schemas, conflicts, server-side apply, dry-run, watch, finalizers, GC and persistence.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use kube::discovery::Discovery;
use serde_json::json;
use support::{client, client_with_token, sandbox};

#[tokio::test]
async fn discovery_lists_builtin_kinds() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, flotilla_sandbox::KUBERNETES_VERSION);
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources().into_iter().map(|(ar, _)| ar.kind))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "Event",
            "Lease",
            "Namespace",
            "Node",
            "Secret",
            "Service",
            "ServiceAccount"
        ]
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"a": "1"}}))
            .unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.uid.is_some());
    sb.stop().await.unwrap();
}

#[tokio::test]
async fn wrong_or_missing_token_is_401() {
    let sb = sandbox(&["one"]).await;
    for token in [None, Some("wrong")] {
        let client = client_with_token(&sb, "one", token).await;
        let namespaces: Api<Namespace> = Api::all(client);
        match namespaces.list(&ListParams::default()).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 401);
                assert_eq!(status.reason, "Unauthorized");
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
}
