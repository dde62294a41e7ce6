//! Examples copied into scratch directories, and kube-rs clients for the sandbox clusters
//! a run left there.

use std::path::Path;

use flotilla_sandbox::{Sandbox, SandboxOptions};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::Work;

/// A scratch directory holding a copy of an example.
pub fn example(name: &str) -> (Work, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let w = Work::new(&[]);
    for entry in std::fs::read_dir(&dir).expect("example exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "hcl" || e == "md") {
            let text = std::fs::read_to_string(&path).expect("read");
            w.write(
                path.file_name().and_then(|n| n.to_str()).expect("name"),
                &text,
            );
        }
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
    (w, readme)
}

/// Runs `f` against one cluster of the scratch directory's sandbox, started in this process
/// while no flotilla runs.
pub fn with_cluster<T>(w: &Work, cluster: &str, f: impl AsyncFnOnce(kube::Client) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // A sandbox process that was just stopped may hold the directory's lock for a
        // moment after `sandbox down` returns (seen once under load): wait for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let sandbox = loop {
            match Sandbox::start(SandboxOptions {
                dir: Some(w.path(".flotilla/sandbox")),
                ..SandboxOptions::default()
            })
            .await
            {
                Err(flotilla_sandbox::SandboxError::Locked { .. })
                    if std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => break other.expect("sandbox starts"),
            }
        };
        let out = f(client(&sandbox.kubeconfig(), cluster).await).await;
        sandbox.stop().await.expect("sandbox stops");
        out
    })
}

/// A kube-rs client for `context` of a kubeconfig document.
pub async fn client(kubeconfig: &str, context: &str) -> kube::Client {
    let kc = Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig");
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}
