//! `flotilla sandbox` end to end: up in the background, status, kubeconfig, kubectl against
//! it, down, restart on the same ports with the objects kept, and clear errors.

mod support;

use support::Work;

/// Stops the background sandbox even when an assertion fails.
struct Down<'a>(&'a Work);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["sandbox", "down"]);
    }
}

fn status(work: &Work) -> serde_json::Value {
    let run = work.run(&["sandbox", "status", "-json"]).expect(0);
    serde_json::from_str(&run.stdout).expect("status -json is JSON")
}

#[test]
fn sandbox_up_status_kubeconfig_down_and_restart() {
    let work = Work::new(&[]);
    let _down = Down(&work);
    let up = work
        .run(&["sandbox", "up", "--name", "mgmt", "--name", "edge"])
        .expect(0);
    assert!(
        up.stdout.contains("mgmt") && up.stdout.contains("https://127.0.0.1:"),
        "{}",
        up.stdout
    );
    assert!(up.stdout.contains("export KUBECONFIG="), "{}", up.stdout);

    let s = status(&work);
    assert_eq!(s["running"], true);
    let names: Vec<&str> = s["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["edge", "mgmt"]);
    let servers: Vec<String> = s["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["server"].as_str().unwrap().to_string())
        .collect();

    // Idempotent while running; adding clusters needs a restart and says so.
    work.run(&["sandbox", "up", "--name", "mgmt"]).expect(0);
    let refused = work.run(&["sandbox", "up", "--name", "other"]).expect(1);
    assert!(
        refused
            .stderr
            .contains("cannot be added to a running sandbox")
            && refused.stderr.contains("help:"),
        "{}",
        refused.stderr
    );

    let kubeconfig = work.run(&["sandbox", "kubeconfig"]).expect(0).stdout;
    assert!(kubeconfig.contains("certificate-authority-data") && kubeconfig.contains("token:"));
    work.run(&["sandbox", "kubeconfig", "--out", "k.yaml"])
        .expect(0);
    assert_eq!(
        std::fs::read_to_string(work.path("k.yaml")).unwrap(),
        kubeconfig
    );

    let kubectl = std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok();
    if kubectl {
        let run = |args: &[&str]| {
            std::process::Command::new("kubectl")
                .args(args)
                .env("KUBECONFIG", work.path("k.yaml"))
                .env("KUBECACHEDIR", work.path("kcache"))
                .output()
                .unwrap()
        };
        std::fs::write(
            work.path("ns.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
        )
        .unwrap();
        let ns_file = work.path("ns.yaml");
        let created = run(&[
            "--context",
            "mgmt",
            "apply",
            "--server-side",
            "-f",
            ns_file.to_str().unwrap(),
        ]);
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
    } else {
        eprintln!("kubectl is not installed: skipping the kubectl part");
    }

    let down = work.run(&["sandbox", "down"]).expect(0);
    assert!(down.stdout.contains("Stopped"), "{}", down.stdout);
    assert_eq!(status(&work)["running"], false);
    let stopped = work.run(&["sandbox", "status"]).expect(0);
    assert!(stopped.stdout.contains("stopped"), "{}", stopped.stdout);

    // Restart: same ports (so the kubeconfig stays valid) and the objects are still there.
    work.run(&["sandbox", "up"]).expect(0);
    let s = status(&work);
    let again: Vec<String> = s["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["server"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(again, servers);
    if kubectl {
        let got = std::process::Command::new("kubectl")
            .args([
                "--context",
                "mgmt",
                "get",
                "namespace",
                "team",
                "-o",
                "name",
            ])
            .env("KUBECONFIG", work.path("k.yaml"))
            .env("KUBECACHEDIR", work.path("kcache"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got.stdout).trim(),
            "namespace/team"
        );
    }
    work.run(&["sandbox", "down", "--delete"]).expect(0);
    assert!(!work.path(".flotilla/sandbox").exists());
    let none = work.run(&["sandbox", "kubeconfig"]).expect(1);
    assert!(
        none.stderr.contains("flotilla sandbox up"),
        "{}",
        none.stderr
    );
}

#[test]
fn sandbox_rejects_bad_cluster_names() {
    let work = Work::new(&[]);
    let _down = Down(&work);
    let run = work.run(&["sandbox", "up", "--name", "Bad_Name"]).expect(1);
    assert!(
        run.stderr
            .contains("invalid sandbox cluster name \"Bad_Name\""),
        "{}",
        run.stderr
    );
}

#[test]
fn sandbox_with_ecosystems_and_faults() {
    let work = Work::new(&[]);
    let _down = Down(&work);
    let bad = work
        .run(&["sandbox", "up", "--with", "capi,mesos"])
        .expect(1);
    assert!(
        bad.stderr.contains("unknown ecosystem \"mesos\"") && bad.stderr.contains("known: capi"),
        "{}",
        bad.stderr
    );
    let bad = work
        .run(&["sandbox", "up", "--fault", "default:errors=2"])
        .expect(1);
    assert!(bad.stderr.contains("between 0 and 1"), "{}", bad.stderr);
    work.run(&[
        "sandbox",
        "up",
        "--with",
        "capi,volcano",
        "--controller-delay",
        "50ms",
        "--fault",
        "default:latency=1ms,seed=3",
    ])
    .expect(0);
    // The CRDs are installed and saved with the cluster.
    let file = work.path(".flotilla/sandbox/clusters/default.json");
    let mut saved = String::new();
    for _ in 0..100 {
        saved = std::fs::read_to_string(&file).unwrap_or_default();
        if saved.contains("queues.scheduling.volcano.sh") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(saved.contains("clusters.cluster.x-k8s.io"));
    assert!(saved.contains("queues.scheduling.volcano.sh"));
    let refused = work.run(&["sandbox", "up", "--with", "istio"]).expect(1);
    assert!(
        refused.stderr.contains("installed when it starts"),
        "{}",
        refused.stderr
    );

    // Faults: set, shown, cleared; mistakes are named.
    let listed = work.run(&["sandbox", "fault"]).expect(0);
    assert!(
        listed.stdout.contains("\"latency_ms\":1"),
        "{}",
        listed.stdout
    );
    let set = work
        .run(&["sandbox", "fault", "default", "errors=0.5,throttle=0.1"])
        .expect(0);
    assert!(set.stdout.contains("apply now"), "{}", set.stdout);
    let shown = work.run(&["sandbox", "fault", "default"]).expect(0);
    assert!(
        shown.stdout.contains("\"error_rate\": 0.5"),
        "{}",
        shown.stdout
    );
    let bad = work
        .run(&["sandbox", "fault", "nosuch", "errors=0.1"])
        .expect(1);
    assert!(
        bad.stderr.contains("no sandbox cluster \"nosuch\""),
        "{}",
        bad.stderr
    );
    let bad = work
        .run(&["sandbox", "fault", "default", "explode=1"])
        .expect(1);
    assert!(
        bad.stderr.contains("unknown fault \"explode\""),
        "{}",
        bad.stderr
    );
    work.run(&["sandbox", "fault", "default", "--clear"])
        .expect(0);
    let listed = work.run(&["sandbox", "fault"]).expect(0);
    assert!(listed.stdout.contains("No faults"), "{}", listed.stdout);
    work.run(&["sandbox", "down", "--delete"]).expect(0);
}
