//! The real kubectl against a sandbox cluster: server-side apply of a CRD and a custom
//! resource, get -o yaml, diff (exit 0 when equal, 1 when not), wait, delete, api-resources,
//! and a table of more rows than one page.
//! Skipped, with a printed reason, when kubectl is not installed.

mod support;

use std::path::Path;
use std::process::{Command, Output};

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs kubectl with the sandbox kubeconfig and a private cache directory.
fn kubectl(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env("KUBECACHEDIR", dir.join("cache"))
        .env("HOME", dir)
        .current_dir(dir)
        .output()
        .expect("kubectl runs");
    eprintln!(
        "$ kubectl {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = kubectl(dir, args);
    assert!(out.status.success(), "kubectl {} failed", args.join(" "));
    String::from_utf8(out.stdout).unwrap()
}

const WIDGET: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec:\n  size: 3\n  ports:\n  - name: http\n    port: 80\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_sandbox() {
    if !kubectl_available() {
        eprintln!("skipping: kubectl is not installed");
        return;
    }
    let sb = support::sandbox(&["one"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("kubeconfig"), sb.kubeconfig()).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/sandbox/widget-crd.yaml"
        ),
        path.join("crd.yaml"),
    )
    .unwrap();
    std::fs::write(path.join("widget.yaml"), WIDGET).unwrap();

    // kubectl blocks; the sandbox keeps serving on the other worker.
    tokio::task::spawn_blocking(move || {
        let d = path.as_path();
        let resources = ok(d, &["api-resources"]);
        assert!(
            resources.lines().any(|l| l.starts_with("deployments")
                && l.contains("apps/v1")
                && l.contains("Deployment")),
            "{resources}"
        );

        assert!(
            ok(d, &["apply", "--server-side", "-f", "crd.yaml"]).contains("serverside-applied")
        );
        ok(
            d,
            &[
                "wait",
                "--for=condition=Established",
                "crd/widgets.example.com",
                "--timeout=10s",
            ],
        );
        let resources = ok(d, &["api-resources", "--api-group=example.com"]);
        assert!(
            resources.contains("widgets")
                && resources.contains("wd")
                && resources.contains("Widget"),
            "{resources}"
        );

        assert!(
            ok(d, &["apply", "--server-side", "-f", "widget.yaml"])
                .contains("widget.example.com/w1 serverside-applied")
        );
        let yaml = ok(d, &["get", "widget", "w1", "-o", "yaml"]);
        assert!(
            yaml.contains("mode: slow"),
            "the CRD default is applied: {yaml}"
        );
        assert!(yaml.contains("resourceVersion:"), "{yaml}");
        let table = ok(d, &["get", "wd"]);
        assert!(
            table.starts_with("NAME") && table.contains("SIZE") && table.contains("w1"),
            "{table}"
        );

        assert_eq!(
            kubectl(d, &["diff", "--server-side", "-f", "widget.yaml"])
                .status
                .code(),
            Some(0),
            "no diff against itself"
        );
        std::fs::write(d.join("widget.yaml"), WIDGET.replace("size: 3", "size: 4")).unwrap();
        let diff = kubectl(d, &["diff", "--server-side", "-f", "widget.yaml"]);
        assert_eq!(diff.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&diff.stdout).contains("+  size: 4"));

        std::fs::write(d.join("bad.yaml"), WIDGET.replace("size: 3", "size: 99")).unwrap();
        let bad = kubectl(d, &["apply", "--server-side", "-f", "bad.yaml"]);
        assert!(
            String::from_utf8_lossy(&bad.stderr)
                .contains("spec.size in body should be less than or equal to 10")
        );

        let status = r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#;
        ok(
            d,
            &[
                "patch",
                "widget",
                "w1",
                "--subresource=status",
                "--type=merge",
                "-p",
                status,
            ],
        );
        ok(
            d,
            &[
                "wait",
                "--for=condition=Ready",
                "widget/w1",
                "--timeout=10s",
            ],
        );

        assert!(ok(d, &["delete", "-f", "widget.yaml"]).contains("deleted"));
        assert!(!kubectl(d, &["get", "widget", "w1"]).status.success());
        ok(d, &["delete", "crd", "widgets.example.com"]);

        // Typed commands send protobuf bodies; `scale` goes through the scale subresource.
        assert!(ok(d, &["create", "namespace", "typed"]).contains("namespace/typed created"));
        ok(d, &["create", "configmap", "settings", "-n", "typed", "--from-literal=region=eu"]);
        assert_eq!(
            ok(d, &["get", "configmap", "settings", "-n", "typed", "-o", "jsonpath={.data.region}"]),
            "eu"
        );
        ok(d, &["create", "secret", "generic", "token", "-n", "typed", "--from-literal=k=v"]);
        assert_eq!(
            ok(d, &["get", "secret", "token", "-n", "typed", "-o", "jsonpath={.data.k}"]),
            "dg=="
        );
        ok(d, &["create", "serviceaccount", "robot", "-n", "typed"]);
        std::fs::write(
            d.join("web.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: typed\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
        )
        .unwrap();
        ok(d, &["apply", "-f", "web.yaml"]);
        assert!(ok(d, &["scale", "deployment", "web", "-n", "typed", "--replicas=3"]).contains("scaled"));
        assert_eq!(
            ok(d, &["get", "deployment", "web", "-n", "typed", "-o", "jsonpath={.spec.replicas}"]),
            "3"
        );
        ok(d, &["create", "deployment", "api", "-n", "typed", "--image=nginx", "--replicas=0", "--port=8080"]);
        assert_eq!(
            ok(d, &["get", "deployment", "api", "-n", "typed", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[0].containerPort}"]),
            "0 8080",
            "an explicit zero survives the protobuf body"
        );
        ok(d, &["create", "service", "clusterip", "api", "-n", "typed", "--tcp=80:8080"]);
        assert_eq!(
            ok(d, &["get", "service", "api", "-n", "typed", "-o", "jsonpath={.spec.ports[0].targetPort}"]),
            "8080"
        );
        ok(d, &["create", "role", "reader", "-n", "typed", "--verb=get,list", "--resource=configmaps"]);
        ok(d, &["create", "rolebinding", "readers", "-n", "typed", "--role=reader", "--user=ana"]);
        assert_eq!(
            ok(d, &["get", "rolebinding", "readers", "-n", "typed", "-o", "jsonpath={.roleRef.name} {.subjects[0].name}"]),
            "reader ana"
        );

        // kubectl's tables come 500 rows at a time: the sandbox pages them like a server.
        let many: String = (0..620)
            .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\n  namespace: default\n"))
            .collect();
        std::fs::write(d.join("many.yaml"), many).unwrap();
        ok(d, &["apply", "--server-side", "-f", "many.yaml"]);
        let rows = ok(d, &["get", "configmaps", "--no-headers"]);
        assert_eq!(
            rows.lines().filter(|l| l.starts_with("cm")).count(),
            620,
            "every page is shown"
        );
    })
    .await
    .unwrap();
    sb.stop().await.unwrap();
}

/// The commands of examples/sandbox-ecosystems/README.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_ecosystem_example() {
    if !kubectl_available() {
        eprintln!("skipping: kubectl is not installed");
        return;
    }
    let sb = support::sandbox_with(&["mgmt"], "capi,volcano").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("kubeconfig"), sb.kubeconfig()).unwrap();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/sandbox-ecosystems"
    );
    let capi = format!("{example}/capi-cluster.yaml");
    ok(
        &path,
        &["--context", "mgmt", "apply", "--server-side", "-f", &capi],
    );
    ok(
        &path,
        &[
            "--context",
            "mgmt",
            "wait",
            "--for=condition=Available",
            "--timeout=10s",
            "cluster/beijing",
        ],
    );
    let value = ok(
        &path,
        &[
            "--context",
            "mgmt",
            "get",
            "secret",
            "beijing-kubeconfig",
            "-o",
            "jsonpath={.data.value}",
        ],
    );
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .unwrap();
    std::fs::write(path.join("beijing.yaml"), decoded).unwrap();
    let namespaces = ok(
        &path,
        &[
            "--kubeconfig",
            "beijing.yaml",
            "get",
            "namespaces",
            "-o",
            "name",
        ],
    );
    assert!(namespaces.contains("namespace/kube-system"), "{namespaces}");
    // A changed machine template is refused, by kubectl's dry run too.
    std::fs::write(
        path.join("template.yaml"),
        "apiVersion: infrastructure.cluster.x-k8s.io/v1beta2\nkind: DockerMachineTemplate\nmetadata:\n  name: beijing-control-plane\n  namespace: default\nspec:\n  template:\n    spec:\n      customImage: kindest/node:v1.34.0\n",
    )
    .unwrap();
    let refused = kubectl(
        &path,
        &[
            "--context",
            "mgmt",
            "apply",
            "--server-side",
            "--dry-run=server",
            "-f",
            "template.yaml",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("field is immutable"));
    let volcano = format!("{example}/volcano-job.yaml");
    // The queue has to be Open before the job is admitted: apply until it is.
    for _ in 0..50 {
        if kubectl(
            &path,
            &[
                "--context",
                "mgmt",
                "apply",
                "--server-side",
                "-f",
                &volcano,
            ],
        )
        .status
        .success()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ok(
        &path,
        &[
            "--context",
            "mgmt",
            "wait",
            "--for=jsonpath={.status.state.phase}=Running",
            "--timeout=10s",
            "vcjob/train",
        ],
    );
}
