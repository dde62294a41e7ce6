//! Shared helpers: an in-memory sandbox and kube-rs clients for its clusters.
#![allow(dead_code)]

use flotilla_sandbox::{Sandbox, SandboxOptions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Starts an in-memory sandbox with the named clusters.
pub async fn sandbox(names: &[&str]) -> Sandbox {
    let options = SandboxOptions {
        dir: None,
        clusters: names.iter().map(|s| s.to_string()).collect(),
        ..SandboxOptions::default()
    };
    Sandbox::start(options).await.expect("sandbox starts")
}

/// Starts an in-memory sandbox with ecosystems installed and a short controller delay.
pub async fn sandbox_with(names: &[&str], with: &str) -> Sandbox {
    let options = SandboxOptions {
        clusters: names.iter().map(|s| s.to_string()).collect(),
        with: flotilla_sandbox::Ecosystem::parse_list(with).expect("ecosystems parse"),
        controller_delay: Some(std::time::Duration::from_millis(20)),
        ..SandboxOptions::default()
    };
    Sandbox::start(options).await.expect("sandbox starts")
}

/// A kube-rs client for one cluster, built from the generated kubeconfig exactly as users would.
pub async fn client(sandbox: &Sandbox, cluster: &str) -> Client {
    client_from(
        Kubeconfig::from_yaml(&sandbox.kubeconfig()).expect("kubeconfig parses"),
        cluster,
    )
    .await
}

/// A client with a different bearer token (or none).
pub async fn client_with_token(sandbox: &Sandbox, cluster: &str, token: Option<&str>) -> Client {
    let mut kubeconfig = Kubeconfig::from_yaml(&sandbox.kubeconfig()).expect("kubeconfig parses");
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.token = token.map(|t| t.to_string().into());
        }
    }
    client_from(kubeconfig, cluster).await
}

/// A client for one context of a kubeconfig.
pub async fn client_from(kubeconfig: Kubeconfig, cluster: &str) -> Client {
    let options = KubeConfigOptions {
        context: Some(cluster.to_string()),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("client builds")
}

/// The `widgets.example.com` CRD from testdata, with the given scope.
pub fn widget_crd(scope: &str) -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/sandbox/widget-crd.yaml"
    );
    let mut crd: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    crd["spec"]["scope"] = serde_json::json!(scope);
    crd
}

/// The API error a request must have failed with.
pub fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}
