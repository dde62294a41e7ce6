//! The sandbox through kube-rs, exactly as providers use it: discovery, auth, CRUD, CRDs with
//! schemas, conflicts, server-side apply, dry-run, watch, finalizers, GC and persistence.

mod support;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    PropagationPolicy, WatchEvent, WatchParams,
};
use kube::discovery::Discovery;
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};
use std::time::Duration;
use support::{api_error, client, client_with_token, sandbox, widget_crd};

async fn install_widgets(client: &Client, scope: &str) -> ApiResource {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd(scope)).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = await_condition(
        crds,
        "widgets.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(5), established)
        .await
        .unwrap()
        .unwrap();
    let (ar, _caps) = kube::discovery::pinned_kind(
        client,
        &kube::api::GroupVersionKind::gvk("example.com", "v1", "Widget"),
    )
    .await
    .unwrap();
    ar
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})).unwrap()
}

fn cm(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap()
}

#[tokio::test]
async fn discovery_lists_builtin_kinds_and_crds() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, flotilla_sandbox::KUBERNETES_VERSION);
    let kinds = |d: &Discovery| -> Vec<String> {
        let mut kinds: Vec<String> = d
            .groups()
            .flat_map(|g| g.recommended_resources().into_iter().map(|(ar, _)| ar.kind))
            .collect();
        kinds.sort();
        kinds
    };
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert_eq!(
        kinds(&discovery),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "Event",
            "Lease",
            "Namespace",
            "Node",
            "ReplicaSet",
            "Role",
            "RoleBinding",
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

    install_widgets(&client, "Namespaced").await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(kinds(&discovery).contains(&"Widget".to_string()));
    let group = discovery.get("example.com").unwrap();
    assert_eq!(group.preferred_version_or_latest(), "v1");
    let (ar, caps) = group.recommended_kind("Widget").unwrap();
    assert_eq!(
        (ar.plural.as_str(), caps.scope),
        ("widgets", kube::discovery::Scope::Namespaced)
    );
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural.ends_with("status"))
    );
    assert_eq!(group.versions().collect::<Vec<_>>(), ["v1", "v1beta1"]);
}

#[tokio::test]
async fn wrong_or_missing_token_is_401() {
    let sb = sandbox(&["one"]).await;
    for token in [None, Some("wrong")] {
        let client = client_with_token(&sb, "one", token).await;
        let namespaces: Api<Namespace> = Api::all(client);
        let status = api_error(namespaces.list(&ListParams::default()).await);
        assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
    }
}

#[tokio::test]
async fn clusters_are_independent() {
    let sb = sandbox(&["mgmt", "member-1"]).await;
    let (a, b) = (client(&sb, "mgmt").await, client(&sb, "member-1").await);
    Api::<ConfigMap>::namespaced(a, "default")
        .create(&PostParams::default(), &cm("only-in-mgmt", json!({})))
        .await
        .unwrap();
    let status = api_error(
        Api::<ConfigMap>::namespaced(b, "default")
            .get("only-in-mgmt")
            .await,
    );
    assert_eq!(status.code, 404);
    assert_ne!(
        sb.cluster("mgmt").unwrap().token,
        sb.cluster("member-1").unwrap().token
    );
    assert_ne!(
        sb.cluster("mgmt").unwrap().credentials.ca_pem,
        sb.cluster("member-1").unwrap().credentials.ca_pem
    );
}

#[tokio::test]
async fn crd_schema_is_enforced_with_defaults_and_pruning() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let ar = install_widgets(&client, "Namespaced").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);

    let created = widgets
        .create(
            &PostParams::default(),
            &widget(
                "w1",
                json!({"size": 3, "extra": {"free": {"form": [1]}}, "unknown": true}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["mode"], "slow", "default applied");
    assert_eq!(
        created.data["spec"]["extra"]["free"]["form"],
        json!([1]),
        "preserve-unknown-fields honoured"
    );
    assert!(
        created.data["spec"].get("unknown").is_none(),
        "unknown field pruned"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let bad = widget("w2", json!({"size": 20, "mode": "medium", "color": "Red1"}));
    let status = api_error(widgets.create(&PostParams::default(), &bad).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let causes: Vec<String> = status
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(causes, ["spec.color", "spec.mode", "spec.size"]);
    assert!(
        status
            .message
            .starts_with("Widget.example.com \"w2\" is invalid: ["),
        "{}",
        status.message
    );

    let missing = widget("w3", json!({}));
    let status = api_error(widgets.create(&PostParams::default(), &missing).await);
    assert_eq!(
        status.message,
        "Widget.example.com \"w3\" is invalid: spec.size: Required value"
    );

    let strict = PatchParams::apply("x").validation_strict();
    let status = api_error(
        widgets
            .patch(
                "w4",
                &strict,
                &Patch::Apply(widget("w4", json!({"size": 1, "typo": 1}))),
            )
            .await,
    );
    assert_eq!(status.code, 400);
    assert!(
        status
            .message
            .contains("strict decoding error: unknown field \"spec.typo\""),
        "{}",
        status.message
    );

    // The same object is served at the second version.
    let beta: Api<DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("example.com", "v1beta1", "Widget"),
            "widgets",
        ),
    );
    let seen = beta.get("w1").await.unwrap();
    assert_eq!(seen.types.unwrap().api_version, "example.com/v1beta1");
    assert_eq!(seen.data["spec"]["size"], 3);
}

#[tokio::test]
async fn crud_on_cluster_scoped_custom_resources_with_selectors() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let ar = install_widgets(&client, "Cluster").await;
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let mut w = widget(name, json!({"size": 1}));
        w.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        let created = widgets.create(&PostParams::default(), &w).await.unwrap();
        assert!(created.metadata.namespace.is_none());
    }
    let status = api_error(
        widgets
            .create(&PostParams::default(), &widget("a", json!({"size": 1})))
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );

    let front = widgets
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(
        front
            .items
            .iter()
            .filter_map(|w| w.metadata.name.clone())
            .collect::<Vec<_>>(),
        ["a", "c"]
    );
    let by_name = widgets
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let page = widgets.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = widgets
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(page.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items
            .iter()
            .filter_map(|w| w.metadata.name.clone())
            .collect::<Vec<_>>(),
        ["c"]
    );

    // Optimistic concurrency: a replace with a stale resourceVersion is a 409 Conflict.
    let mut a = widgets.get("a").await.unwrap();
    a.data["spec"]["size"] = json!(2);
    let updated = widgets
        .replace("a", &PostParams::default(), &a)
        .await
        .unwrap();
    assert_eq!(updated.metadata.generation, Some(2));
    let status = api_error(widgets.replace("a", &PostParams::default(), &a).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(status.message.contains("the object has been modified"));

    // Label-only changes do not bump generation.
    let labelled = widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));

    widgets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("tier=front"),
        )
        .await
        .unwrap();
    let left: Vec<String> = widgets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|w| w.metadata.name)
        .collect();
    assert_eq!(left, ["b"]);
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let ar = install_widgets(&client, "Namespaced").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let mut w = widget("w", json!({"size": 1}));
    w.data["status"] = json!({"phase": "Made-up"});
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is ignored on create"
    );

    let patch = json!({"spec": {"size": 9}, "status": {"phase": "Ready"}});
    let after = widgets
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(after.data["status"]["phase"], "Ready");
    assert_eq!(
        after.data["spec"]["size"], 1,
        "spec writes through status are ignored"
    );
    assert_eq!(
        after.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );

    let main = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"size": 2}, "status": {"phase": "Lost"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        main.data["status"]["phase"], "Ready",
        "status writes through the main resource are ignored"
    );
    assert_eq!(main.metadata.generation, Some(2));
}

#[tokio::test]
async fn server_side_apply_tracks_owners_conflicts_and_removals() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let ar = install_widgets(&client, "Namespaced").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let apply = |spec: Value| Patch::Apply(widget("w", spec));

    let first = widgets
        .patch(
            "w",
            &PatchParams::apply("alice"),
            &apply(json!({"size": 2, "color": "red", "ports": [{"name": "http", "port": 80}]})),
        )
        .await
        .unwrap();
    let managed = first.metadata.managed_fields.clone().unwrap();
    assert_eq!(
        (
            managed[0].manager.as_deref(),
            managed[0].operation.as_deref()
        ),
        (Some("alice"), Some("Apply"))
    );
    assert_eq!(
        managed[0].fields_v1.as_ref().unwrap().0,
        json!({"f:spec": {"f:color": {}, "f:ports": {"k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:port": {}}}, "f:size": {}}})
    );

    // Another manager changing alice's field conflicts, naming the manager and the field.
    let status = api_error(
        widgets
            .patch("w", &PatchParams::apply("bob"), &apply(json!({"size": 5})))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"alice\" using example.com/v1: .spec.size"
    );
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldManagerConflict", ".spec.size")
    );

    // The same value is shared ownership, not a conflict; map-list items merge by key.
    let shared = widgets
        .patch(
            "w",
            &PatchParams::apply("bob"),
            &apply(json!({"size": 2, "ports": [{"name": "https", "port": 443}]})),
        )
        .await
        .unwrap();
    let ports: Vec<&str> = shared.data["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["http", "https"]);

    // force takes ownership.
    let forced = widgets
        .patch(
            "w",
            &PatchParams::apply("bob").force(),
            &apply(json!({"size": 5, "ports": [{"name": "https", "port": 443}]})),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["size"], 5);

    // Fields alice stops applying are removed, unless someone else owns them.
    let trimmed = widgets
        .patch(
            "w",
            &PatchParams::apply("alice"),
            &apply(json!({"ports": [{"name": "http", "port": 80}]})),
        )
        .await
        .unwrap();
    assert!(
        trimmed.data["spec"].get("color").is_none(),
        "alice's color is gone"
    );
    assert_eq!(trimmed.data["spec"]["size"], 5, "bob's size stays");

    // Re-applying the same configuration is a no-op: no new resourceVersion.
    let again = widgets
        .patch(
            "w",
            &PatchParams::apply("alice"),
            &apply(json!({"ports": [{"name": "http", "port": 80}]})),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        trimmed.metadata.resource_version
    );

    // A non-apply write takes the fields it changes away from the appliers.
    let updated = widgets
        .patch(
            "w",
            &PatchParams {
                field_manager: Some("edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"spec": {"size": 7}})),
        )
        .await
        .unwrap();
    let bob = updated
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("bob"))
        .unwrap();
    assert!(bob.fields_v1.unwrap().0["f:spec"].get("f:size").is_none());
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let would = cms
        .create(&dry, &cm("ghost", json!({"a": "1"})))
        .await
        .unwrap();
    assert!(would.metadata.uid.is_some());
    assert_eq!(api_error(cms.get("ghost").await).code, 404);

    let applied = cms.patch("ghost", &PatchParams::apply("flotilla").dry_run(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost"}, "data": {"a": "2"}}))).await.unwrap();
    assert_eq!(applied.data.unwrap()["a"], "2");
    assert_eq!(api_error(cms.get("ghost").await).code, 404);

    let real = cms
        .create(&PostParams::default(), &cm("real", json!({"a": "1"})))
        .await
        .unwrap();
    let dry_delete = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    cms.delete("real", &dry_delete).await.unwrap();
    // The creator owns data.a, so changing it by apply needs force (dry-run or not).
    let patched = cms.patch("real", &PatchParams::apply("x").force().dry_run(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "real"}, "data": {"a": "9"}}))).await.unwrap();
    assert_eq!(patched.data.unwrap()["a"], "9");
    let still = cms.get("real").await.unwrap();
    assert_eq!(
        still.metadata.resource_version,
        real.metadata.resource_version
    );
    assert_eq!(still.data.unwrap()["a"], "1");
    // Dry-run validates like the real thing.
    let invalid: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap();
    assert_eq!(api_error(cms.create(&dry, &invalid).await).code, 422);
}

#[tokio::test]
async fn patch_types_on_builtin_kinds() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.27"}, {"name": "sidecar", "image": "envoy:1"}]}}}}))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let spec = created.spec;
    assert_eq!(spec.replicas, Some(1), "defaulted");
    assert_eq!(
        spec.template.spec.unwrap().containers[0]
            .image_pull_policy
            .as_deref(),
        Some("IfNotPresent")
    );

    let strategic = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}});
    let after = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(strategic))
        .await
        .unwrap();
    let containers = after.spec.template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2, "strategic merge keeps the sidecar");
    assert_eq!(containers[0].image.as_deref(), Some("nginx:1.28"));
    assert_eq!(after.metadata.generation, Some(2));

    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]))
            .unwrap();
    let after = deployments
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .unwrap();
    assert_eq!(after.spec.replicas, Some(3));

    let immutable = json!({"spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}}}}});
    let status = api_error(
        deployments
            .patch("web", &PatchParams::default(), &Patch::Merge(immutable))
            .await,
    );
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .contains("spec.selector: Invalid value: \"object\": field is immutable"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn watch_streams_events_and_reports_gone() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let start = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(
            &WatchParams::default().labels("app=web").timeout(10),
            &start,
        )
        .await
        .unwrap()
        .boxed();
    let writer = cms.clone();
    tokio::spawn(async move {
        let mut c = cm("w", json!({"a": "1"}));
        c.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        writer.create(&PostParams::default(), &c).await.unwrap();
        writer
            .create(&PostParams::default(), &cm("unlabelled", json!({})))
            .await
            .unwrap();
        writer
            .patch(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "2"}})),
            )
            .await
            .unwrap();
        writer
            .patch(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"app": null}}})),
            )
            .await
            .unwrap();
    });
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream.next().await.unwrap().unwrap() {
            WatchEvent::Added(c) => seen.push(format!("ADDED {}", c.metadata.name.unwrap())),
            WatchEvent::Modified(c) => seen.push(format!("MODIFIED {}", c.data.unwrap()["a"])),
            WatchEvent::Deleted(c) => seen.push(format!("DELETED {}", c.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        ["ADDED w", "MODIFIED 2", "DELETED w"],
        "leaving the selector is a DELETED event"
    );

    // await_condition (list + watch) sees a change made after it started.
    let waiter = tokio::spawn(await_condition(
        cms.clone(),
        "later",
        |c: Option<&ConfigMap>| {
            c.is_some_and(|c| c.data.as_ref().is_some_and(|d| d.contains_key("ready")))
        },
    ));
    cms.create(&PostParams::default(), &cm("later", json!({})))
        .await
        .unwrap();
    cms.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ready": "yes"}})),
    )
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // A resourceVersion older than the event log is 410 Gone.
    sb.cluster("one").unwrap().store().set_event_capacity(2);
    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &cm(&format!("filler-{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::default(), &start)
        .await
        .unwrap()
        .boxed();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut c = cm("held", json!({}));
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &c).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = cms.get("held").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    let status = api_error(
        cms.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "x/y"]}})),
        )
        .await,
    );
    assert!(
        status
            .message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        status.message
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("held").await).code, 404);
}

#[tokio::test]
async fn owner_references_are_garbage_collected() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let dependent = |name: &str, owner: &ConfigMap| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
            "name": owner.metadata.name, "uid": owner.metadata.uid, "blockOwnerDeletion": true}]}, "stringData": {"k": "v"}}))
        .unwrap()
    };
    for policy in [
        PropagationPolicy::Background,
        PropagationPolicy::Foreground,
        PropagationPolicy::Orphan,
    ] {
        let owner = cms
            .create(&PostParams::default(), &cm("owner", json!({})))
            .await
            .unwrap();
        let mut held = dependent("held", &owner);
        held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        secrets.create(&PostParams::default(), &held).await.unwrap();
        secrets
            .create(&PostParams::default(), &dependent("child", &owner))
            .await
            .unwrap();
        cms.delete(
            "owner",
            &DeleteParams {
                propagation_policy: Some(policy.clone()),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
        match policy {
            PropagationPolicy::Foreground => {
                // The owner waits for its dependents; the held one blocks it until released.
                assert!(
                    cms.get("owner")
                        .await
                        .unwrap()
                        .metadata
                        .deletion_timestamp
                        .is_some()
                );
                assert_eq!(api_error(secrets.get("child").await).code, 404);
                secrets
                    .patch(
                        "held",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await
                    .unwrap();
            }
            PropagationPolicy::Orphan => {
                let orphan = secrets.get("child").await.unwrap();
                assert!(
                    orphan.metadata.owner_references.is_none(),
                    "orphans lose the reference"
                );
                secrets
                    .patch(
                        "held",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await
                    .unwrap();
                secrets
                    .delete("held", &DeleteParams::default())
                    .await
                    .unwrap();
                secrets
                    .delete("child", &DeleteParams::default())
                    .await
                    .unwrap();
            }
            _ => {
                assert_eq!(api_error(secrets.get("child").await).code, 404);
                secrets
                    .patch(
                        "held",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await
                    .unwrap();
            }
        }
        assert_eq!(api_error(cms.get("owner").await).code, 404, "{policy:?}");
        assert_eq!(
            api_error(secrets.get("child").await).code,
            404,
            "{policy:?}"
        );
        assert_eq!(api_error(secrets.get("held").await).code, 404, "{policy:?}");
    }
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let names: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["kube-root-ca.crt"],
        "new namespaces get the root CA config map"
    );
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.create(&PostParams::default(), &cm("plain", json!({})))
        .await
        .unwrap();
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    let ns = namespaces.get("team").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert_eq!(api_error(cms.get("plain").await).code, 404);
    let status = api_error(
        cms.create(&PostParams::default(), &cm("late", json!({})))
            .await,
    );
    assert_eq!(status.code, 403);
    assert!(status.message.contains("because it is being terminated"));
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(namespaces.get("team").await).code, 404);
    let status = api_error(
        Api::<ConfigMap>::namespaced(client, "nowhere")
            .create(&PostParams::default(), &cm("x", json!({})))
            .await,
    );
    assert_eq!(status.message, "namespaces \"nowhere\" not found");
}

#[tokio::test]
async fn deleting_a_crd_removes_its_resources() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let ar = install_widgets(&client, "Namespaced").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let mut held = widget("held", json!({"size": 1}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    widgets.create(&PostParams::default(), &held).await.unwrap();

    // Custom resources take merge and JSON patches, never strategic ones.
    let strategic = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 2}})),
        )
        .await;
    assert_eq!(api_error(strategic).code, 415);

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(widgets.get("w").await).code, 404);
    // The held widget keeps the CRD terminating, and no new widgets can be made meanwhile.
    let terminating = crds.get("widgets.example.com").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    let status = api_error(
        widgets
            .create(&PostParams::default(), &widget("late", json!({"size": 1})))
            .await,
    );
    assert_eq!(status.code, 405);
    assert!(status.message.contains("terminating"), "{}", status.message);
    widgets
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(api_error(crds.get("widgets.example.com").await).code, 404);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = flotilla_sandbox::SandboxOptions {
        dir: Some(dir.path().to_path_buf()),
        clusters: vec!["keep".into()],
        ..flotilla_sandbox::SandboxOptions::default()
    };
    let sb = flotilla_sandbox::Sandbox::start(options.clone())
        .await
        .unwrap();
    let port = sb.cluster("keep").unwrap().port;
    let c = client(&sb, "keep").await;
    let ar = install_widgets(&c, "Namespaced").await;
    Api::<DynamicObject>::namespaced_with(c, "default", &ar)
        .create(&PostParams::default(), &widget("w", json!({"size": 4})))
        .await
        .unwrap();
    // A second server on the same directory is refused while the first runs.
    assert!(matches!(
        flotilla_sandbox::Sandbox::start(options.clone()).await,
        Err(flotilla_sandbox::SandboxError::Locked { .. })
    ));
    sb.stop().await.unwrap();

    let sb = flotilla_sandbox::Sandbox::start(flotilla_sandbox::SandboxOptions {
        clusters: vec![],
        ..options
    })
    .await
    .unwrap();
    assert_eq!(
        sb.cluster("keep").unwrap().port,
        port,
        "the kubeconfig stays valid"
    );
    let c = client(&sb, "keep").await;
    let w = Api::<DynamicObject>::namespaced_with(c, "default", &ar)
        .get("w")
        .await
        .unwrap();
    assert_eq!(w.data["spec"]["size"], 4);
    sb.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_a_status_and_the_server_keeps_serving() {
    let sb = sandbox(&["one"]).await;
    let client = client(&sb, "one").await;
    let raw = |method: &str, path: &str, content_type: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    let cases = [
        (
            raw(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                "{\"apiVersion\": ",
            ),
            400,
            "BadRequest",
        ),
        (
            raw(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"a\"}}",
            ),
            400,
            "BadRequest",
        ),
        (
            raw(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: UPPER\n",
            ),
            422,
            "Invalid",
        ),
        (
            raw(
                "GET",
                "/apis/nope.example.com/v1/things",
                "application/json",
                "",
            ),
            404,
            "NotFound",
        ),
        (
            raw(
                "PATCH",
                "/api/v1/namespaces/default/configmaps/kube-root-ca.crt",
                "text/plain",
                "x",
            ),
            415,
            "UnsupportedMediaType",
        ),
        (
            raw(
                "DELETE",
                "/api/v1/namespaces/default/configmaps/kube-root-ca.crt?dryRun=Yes",
                "application/json",
                "",
            ),
            400,
            "BadRequest",
        ),
    ];
    for (request, code, reason) in cases {
        let path = request.uri().to_string();
        let status = api_error(client.request::<Value>(request).await);
        assert_eq!(
            (status.code, status.reason.as_str()),
            (code, reason),
            "{path}: {}",
            status.message
        );
    }
    let ok = Api::<ConfigMap>::namespaced(client, "default")
        .get("kube-root-ca.crt")
        .await;
    assert!(ok.is_ok());
}
