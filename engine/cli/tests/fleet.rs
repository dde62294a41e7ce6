//! End-to-end: the real `flotilla` binary applying the `karmada`, `volcano` and `istio`
//! providers to sandbox clusters, with what the members hold checked through kube-rs, and the
//! faults a user meets first: a misspelled policy field, a job for a queue nobody made, a
//! member whose credentials the control plane refuses, route weights and subsets that do not
//! add up.

mod support;

use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use support::Work;
use support::clusters::{example, with_cluster};

fn api(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// An object of a sandbox cluster as JSON, if it exists.
fn get(
    w: &Work,
    cluster: &str,
    api_version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
    name: &str,
) -> Option<serde_json::Value> {
    with_cluster(w, cluster, async |client| {
        api(&client, api_version, kind, plural, ns)
            .get_opt(name)
            .await
            .expect("get")
            .map(|o| serde_json::to_value(o).expect("json"))
    })
}

/// A Karmada control plane (the `karmada` block and `kube.karmada`) and a member's connection
/// (`kube.beijing`, `data.kube_connection.beijing`): how the Karmada faults start.
const HEADER: &str = r#"provider "karmada" {
  sandbox = "karmada"
}

provider "kube" {
  alias   = "karmada"
  sandbox = "karmada"
}

provider "kube" {
  alias   = "beijing"
  sandbox = "beijing"
}

data "kube_connection" "beijing" {
  provider = kube.beijing
}
"#;

/// A configuration: [`HEADER`] then `rest`.
fn with_header(rest: &str) -> String {
    format!("{HEADER}{rest}")
}

/// Diagnostics as one line: miette wraps long messages and prefixes continuation lines.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The example applied (its README gives the command) and planned again with no changes;
/// the work directory and what apply printed.
fn applied(name: &str) -> (Work, String) {
    let (w, readme) = example(name);
    assert!(
        readme.contains(&format!(
            "cargo run -q -p flotilla-cli -- -chdir=examples/{name} apply -auto-approve"
        )),
        "{name}/README.md gives the command"
    );
    let out = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(out.stdout.contains("Apply complete!"), "{}", out.stdout);
    assert!(
        !out.stderr.contains('⚠'),
        "{name} plans without warnings: {}",
        out.stderr
    );
    let clean = w.run(&["plan", "-detailed-exitcode"]).expect(0);
    assert!(
        clean.stdout.contains("No changes."),
        "{name}: {}",
        clean.stdout
    );
    (w, out.stdout)
}

/// `kubectl ARGS` against the sandbox that `flotilla sandbox up` serves for `w`, its output;
/// `None` (and a note) when kubectl is not installed.
fn kubectl(w: &Work, args: &[&str]) -> Option<String> {
    let available = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("kubectl is not installed: skipping the kubectl check");
        return None;
    }
    let out = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", w.path(".flotilla/sandbox/kubeconfig"))
        .env("KUBECACHEDIR", w.path(".kube-cache"))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `kubectl get deployment web` in each member: replicas and the region label Karmada's
/// override gave the copy.
fn kubectl_sees_the_copies(w: &Work) {
    w.run(&["sandbox", "up"]).expect(0);
    for (member, want) in [("beijing", "2 beijing"), ("shanghai", "1 shanghai")] {
        let got = kubectl(
            w,
            &[
                "--context",
                member,
                "get",
                "deployment",
                "web",
                "-n",
                "apps",
                "-o",
                "jsonpath={.spec.replicas} {.metadata.labels.region}",
            ],
        );
        if let Some(got) = got {
            assert_eq!(got, want, "{member}");
        }
    }
    w.run(&["sandbox", "down"]).expect(0);
}

#[test]
fn karmada_fleet_propagates_to_both_members() {
    let (w, apply) = applied("karmada-fleet");
    assert!(
        apply.contains("# (places Deployment apps/web on beijing and shanghai, replicas divided 2 (beijing) : 1 (shanghai))"),
        "{apply}"
    );
    for (member, replicas) in [("beijing", 2), ("shanghai", 1)] {
        let web = get(
            &w,
            member,
            "apps/v1",
            "Deployment",
            "deployments",
            Some("apps"),
            "web",
        )
        .unwrap_or_else(|| panic!("{member} holds apps/web"));
        assert_eq!(web["spec"]["replicas"], replicas, "{member}");
        assert_eq!(web["metadata"]["labels"]["region"], member, "{member}");
        assert_eq!(
            web["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        let cluster = get(
            &w,
            "karmada",
            "cluster.karmada.io/v1alpha1",
            "Cluster",
            "clusters",
            None,
            member,
        )
        .expect("the member is joined");
        assert_eq!(cluster["spec"]["syncMode"], "Push");
        assert_eq!(cluster["spec"]["secretRef"]["namespace"], "karmada-cluster");
        let secret = get(
            &w,
            "karmada",
            "v1",
            "Secret",
            "secrets",
            Some("karmada-cluster"),
            member,
        )
        .expect("the access Secret");
        assert!(secret["data"]["token"].is_string());
    }
    // What a user sees with kubectl in each member (skipped without kubectl).
    kubectl_sees_the_copies(&w);
    // The member's kubeconfig is sensitive: never shown, and kept in state as recorded.
    let show = w.run(&["show"]).expect(0);
    assert!(!show.stdout.contains("token:"), "{}", show.stdout);
    let destroyed = w.run(&["destroy", "-auto-approve"]).expect(0);
    assert!(
        destroyed
            .stdout
            .contains("Destroy complete! Resources: 6 destroyed."),
        "{}",
        destroyed.stdout
    );
    assert!(
        get(
            &w,
            "karmada",
            "cluster.karmada.io/v1alpha1",
            "Cluster",
            "clusters",
            None,
            "beijing"
        )
        .is_none()
    );
    assert!(
        get(
            &w,
            "karmada",
            "v1",
            "Secret",
            "secrets",
            Some("karmada-cluster"),
            "beijing"
        )
        .is_none()
    );
}

#[test]
fn volcano_training_runs_its_job_in_the_new_queue() {
    let (w, _) = applied("volcano-training");
    let queue = get(
        &w,
        "gpu",
        "scheduling.volcano.sh/v1beta1",
        "Queue",
        "queues",
        None,
        "training",
    )
    .expect("queue");
    assert_eq!(queue["status"]["state"], "Open");
    assert_eq!(queue["spec"]["weight"], 2);
    let job = get(
        &w,
        "gpu",
        "batch.volcano.sh/v1alpha1",
        "Job",
        "jobs",
        Some("ml"),
        "train",
    )
    .expect("job");
    assert_eq!(job["status"]["state"]["phase"], "Running");
    assert_eq!(job["spec"]["queue"], "training");

    // A change the webhook refuses in place is a replacement with its message; one it allows
    // is an update.
    let text = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &text.replace("minAvailable = 1", "minAvailable = 2"),
    );
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("# volcano_job.train will be updated in place"),
        "{}",
        plan.stdout
    );
    w.write("main.hcl", &text.replace("train.py", "eval.py"));
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout.contains("# volcano_job.train must be replaced"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("job updates may not change fields"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_queue_with_someone_elses_running_job_is_not_destroyed() {
    let (w, _) = applied("volcano-training");
    // Someone submits a job to the queue with kubectl; it runs.
    with_cluster(&w, "gpu", async |client| {
        let jobs = api(
            &client,
            "batch.volcano.sh/v1alpha1",
            "Job",
            "jobs",
            Some("default"),
        );
        let job: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job",
            "metadata": {"name": "adhoc", "namespace": "default"},
            "spec": {"queue": "training", "tasks": [{"name": "t", "replicas": 1,
                "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}]}}))
        .unwrap();
        jobs.create(&Default::default(), &job)
            .await
            .expect("create");
        for _ in 0..100 {
            let now = jobs.get("adhoc").await.expect("get");
            if serde_json::to_value(&now).unwrap()["status"]["state"]["phase"] == "Running" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the job never ran");
    });
    let out = w.run(&["destroy", "-auto-approve"]).expect(1);
    assert!(
        out.stderr.contains("cannot delete Queue training"),
        "{}",
        out.stderr
    );
    assert!(
        flat(&out.stderr).contains("remove or finish what it names"),
        "{}",
        out.stderr
    );
    assert!(
        flat(&out.stderr)
            .contains("queue training cannot be deleted because it has allocated Pods: 1"),
        "{}",
        out.stderr
    );
    // flotilla's own job went first; the queue stays recorded because it is still there.
    assert_eq!(w.state_addresses(), ["volcano_queue.training"]);
}

const POLICY_TYPO: &str = r#"provider "karmada" {
  sandbox = "karmada"
}

resource "karmada_propagation_policy" "web" {
  name      = "web"
  namespace = "default"
  spec = {
    resourceSelectors = [{ apiVersion = "apps/v1", kind = "Deployment", name = "web" }]
    placment          = { clusterAffinity = { clusterNames = ["beijing"] } }
  }
}
"#;

#[test]
fn a_misspelled_policy_field_is_caught_offline() {
    let w = Work::new(&[("main.hcl", POLICY_TYPO)]);
    let out = w.run(&["validate"]).expect(1);
    assert!(
        out.stderr.contains("unknown field `placment`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `placement`?"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("main.hcl:10:5"), "{}", out.stderr);
    assert!(
        !w.path(".flotilla/sandbox").exists(),
        "validate reaches no cluster"
    );
}

/// After [`HEADER`].
const UNJOINED: &str = r#"
resource "karmada_cluster" "beijing" {
  name       = "beijing"
  kubeconfig = data.kube_connection.beijing.kubeconfig
}

resource "karmada_propagation_policy" "web" {
  name = "web"
  spec = {
    resourceSelectors = [{ apiVersion = "apps/v1", kind = "Deployment", name = "web" }]
    placement = {
      replicaScheduling = {
        replicaSchedulingType     = "Divided"
        replicaDivisionPreference = "Weighted"
        weightPreference = {
          staticWeightList = [{ targetCluster = { clusterNames = ["beijng"] }, weight = 1 }]
        }
      }
    }
  }
}

resource "kube_manifest" "api" {
  provider = kube.karmada
  manifest = {
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = { name = "api", namespace = "default" }
    data       = { port = "8080" }
  }
}
"#;

#[test]
fn a_weight_for_a_member_nobody_joins_is_an_error_and_an_unselected_template_a_warning() {
    let w = Work::new(&[("main.hcl", &with_header(UNJOINED))]);
    let out = w.run(&["validate"]).expect(1);
    assert!(
        out.stderr.contains(
            "names member \"beijng\", which no karmada_cluster in this configuration joins"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean \"beijing\"?"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("main.hcl:33:11"), "{}", out.stderr);
    // With the name fixed, the ConfigMap on the control plane is still selected by nothing.
    let text = with_header(UNJOINED).replace("beijng", "beijing");
    w.write("main.hcl", &text);
    let out = w.run(&["validate"]).expect(0);
    assert!(
        out.stderr.contains("ConfigMap default/api is a resource template on a Karmada control plane, and no propagation policy in this configuration selects it"),
        "{}",
        out.stderr
    );
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stderr
            .contains("no propagation policy in this configuration selects it"),
        "{}",
        plan.stderr
    );
    // Selecting it ends the warning.
    w.write(
        "main.hcl",
        &text.replace(
            r#"kind = "Deployment", name = "web" }]"#,
            r#"kind = "Deployment", name = "web" }, { apiVersion = "v1", kind = "ConfigMap", name = "api" }]"#,
        ),
    );
    let out = w.run(&["validate"]).expect(0);
    assert!(!out.stderr.contains("selects it"), "{}", out.stderr);
}

/// After [`HEADER`].
const TWO_MEMBERS: &str = r#"
provider "kube" {
  alias   = "shanghai"
  sandbox = "shanghai"
}

data "kube_connection" "shanghai" {
  provider = kube.shanghai
}

resource "karmada_cluster" "beijing" {
  name       = "beijing"
  kubeconfig = data.kube_connection.beijing.kubeconfig
}

resource "karmada_cluster" "shanghai" {
  name       = "shanghai"
  kubeconfig = data.kube_connection.shanghai.kubeconfig
}

resource "kube_manifest" "web" {
  provider = kube.karmada
  manifest = {
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = "web", namespace = "default" }
    spec = {
      replicas = 2
      selector = { matchLabels = { app = "web" } }
      template = {
        metadata = { labels = { app = "web" } }
        spec     = { containers = [{ name = "web", image = "nginx:1.27" }] }
      }
    }
  }
}

resource "karmada_propagation_policy" "web" {
  name = "web"
  spec = {
    resourceSelectors = [{ apiVersion = "apps/v1", kind = "Deployment", name = kube_manifest.web.manifest.metadata.name }]
    placement         = { clusterAffinity = { clusterNames = [karmada_cluster.beijing.name, karmada_cluster.shanghai.name] } }
  }
  timeouts {
    create = "2s"
  }
}
"#;

#[test]
fn a_member_unreachable_while_propagating_fails_the_policy_with_karmadas_message() {
    let w = Work::new(&[("main.hcl", &with_header(TWO_MEMBERS))]);
    w.run(&[
        "apply",
        "-auto-approve",
        "-target=karmada_cluster.beijing",
        "-target=karmada_cluster.shanghai",
    ])
    .expect(0);
    // shanghai drops every connection from now on.
    w.write(
        ".flotilla/sandbox/faults.json",
        r#"{"shanghai": {"unreachable": true}}"#,
    );
    let out = w.run(&["apply", "-auto-approve"]).expect(1);
    assert!(
        out.stderr.contains("did not become ready within 2s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "Cluster shanghai: Ready is False: cluster is not reachable at https://127.0.0.1:"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        w.state()["resources"]["karmada_propagation_policy.web"]["tainted"],
        true
    );
    // What could be placed was: the reachable member holds its copy.
    std::fs::remove_file(w.path(".flotilla/sandbox/faults.json")).unwrap();
    assert!(
        get(
            &w,
            "beijing",
            "apps/v1",
            "Deployment",
            "deployments",
            Some("default"),
            "web"
        )
        .is_some()
    );
}

const MISSING_QUEUE: &str = r#"provider "volcano" {
  sandbox = "gpu"
}

resource "volcano_job" "train" {
  name = "train"
  spec = {
    queue = "nightly"
    tasks = [{ name = "worker", replicas = 1, template = { spec = { containers = [{ name = "w", image = "busybox" }] } } }]
  }
}
"#;

#[test]
fn a_job_for_a_queue_nobody_made_is_refused_at_plan() {
    let w = Work::new(&[("main.hcl", MISSING_QUEUE)]);
    let out = w.run(&["apply", "-auto-approve"]).expect(1);
    assert!(
        out.stderr.contains(
            "unable to find job queue: queues.scheduling.volcano.sh \"nightly\" not found"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("main.hcl"), "{}", out.stderr);
    assert!(!w.has_state() || w.state_addresses().is_empty());
    assert!(
        get(
            &w,
            "gpu",
            "batch.volcano.sh/v1alpha1",
            "Job",
            "jobs",
            Some("default"),
            "train"
        )
        .is_none()
    );
}

/// After [`HEADER`].
const BAD_TOKEN: &str = r#"
resource "karmada_cluster" "beijing" {
  name       = "beijing"
  kubeconfig = yamlencode({
    apiVersion        = "v1"
    kind              = "Config"
    current-context   = "beijing"
    contexts          = [{ name = "beijing", context = { cluster = "beijing", user = "beijing" } }]
    clusters          = [{ name = "beijing", cluster = { server = data.kube_connection.beijing.server, insecure-skip-tls-verify = true } }]
    users             = [{ name = "beijing", user = { token = "not-the-token" } }]
  })
  timeouts {
    create = "2s"
  }
}
"#;

#[test]
fn a_member_whose_token_is_refused_fails_the_join_and_is_recorded_tainted() {
    let w = Work::new(&[("main.hcl", &with_header(BAD_TOKEN))]);
    let out = w.run(&["apply", "-auto-approve"]).expect(1);
    assert!(
        out.stderr.contains("did not become ready within 2s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("is not accepted by the cluster (Unauthorized)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not-the-token"), "{}", out.stderr);
    assert_eq!(
        w.state()["resources"]["karmada_cluster.beijing"]["tainted"],
        true
    );
    let plan = w.run(&["plan"]).expect(0);
    assert!(plan.stdout.contains("tainted"), "{}", plan.stdout);
}

#[test]
fn istio_canary_routing_moves_the_split_in_place() {
    let (w, _) = applied("istio-canary-routing");
    // The names istiod resolves are dependencies too.
    let graph = w.run(&["graph"]).expect(0);
    for edge in [
        "\"istio_gateway.shop\" -> \"istio_virtual_service.checkout\"",
        "\"istio_destination_rule.checkout\" -> \"istio_virtual_service.checkout\"",
    ] {
        assert!(graph.stdout.contains(edge), "{edge}\n{}", graph.stdout);
    }
    let vs = get(
        &w,
        "mesh",
        "networking.istio.io/v1",
        "VirtualService",
        "virtualservices",
        Some("shop"),
        "checkout",
    )
    .expect("the VirtualService");
    let route = &vs["spec"]["http"][0]["route"];
    assert_eq!(
        (&route[0]["weight"], &route[1]["weight"]),
        (&90.into(), &10.into())
    );
    // 50/50: an update whose diff is the two weights.
    let plan = w.run(&["plan", "-var", "canary_percent=50"]).expect(0);
    assert!(
        plan.stdout
            .contains("# istio_virtual_service.checkout will be updated in place"),
        "{}",
        plan.stdout
    );
    let changed: Vec<&str> = plan
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("~ ") && l.contains(" -> "))
        .collect();
    assert_eq!(
        changed,
        ["~ weight = 90 -> 50", "~ weight = 10 -> 50"],
        "{}",
        plan.stdout
    );
    w.run(&["sandbox", "up"]).expect(0);
    let weights = kubectl(
        &w,
        &[
            "--context",
            "mesh",
            "get",
            "virtualservice",
            "checkout",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.http[0].route[*].weight}",
        ],
    );
    w.run(&["sandbox", "down"]).expect(0);
    if let Some(weights) = weights {
        assert_eq!(weights, "90 10");
    }
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy.")
    );
}

#[test]
fn weights_that_miss_100_and_unknown_subsets_are_warnings_pointing_at_the_route() {
    let (w, _) = example("istio-canary-routing");
    let text = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &text
            .replace("weight = 100 - var.canary_percent", "weight = 80")
            .replace(
                "subset = \"canary\" }, weight = var.canary_percent",
                "subset = \"canry\" }, weight = 10",
            ),
    );
    let out = w.run(&["validate"]).expect(0);
    let text = flat(&out.stderr);
    assert!(
        text.contains("the weights of http[0] add up to 90, not 100"),
        "{}",
        out.stderr
    );
    assert!(
        text.contains("subset \"canry\" of checkout, which no DestinationRule for checkout in this configuration defines (it defines stable, canary)"),
        "{}",
        out.stderr
    );
    let route_line = std::fs::read_to_string(w.path("main.hcl"))
        .unwrap()
        .lines()
        .position(|l| l.trim_start().starts_with("route = ["))
        .unwrap()
        + 1;
    assert!(
        out.stderr.contains(&format!("main.hcl:{route_line}:")),
        "points at the route (line {route_line}): {}",
        out.stderr
    );
    // A route with neither destinations nor a redirect is refused outright.
    w.write(
        "main.hcl",
        &std::fs::read_to_string(w.path("main.hcl"))
            .unwrap()
            .replace("      match = [{ uri = { prefix = \"/checkout\" } }]\n      route = [", "      match = [{ uri = { prefix = \"/checkout\" } }]\n      mirrors = [\"x\"]\n      routes = ["),
    );
    let out = w.run(&["validate"]).expect(1);
    let text = flat(&out.stderr);
    assert!(text.contains("unknown field `routes`"), "{}", out.stderr);
    assert!(
        text.contains("HTTP route, redirect or direct_response is required"),
        "{}",
        out.stderr
    );
}

/// The edge-site example's sandbox: cluster `edge` with three edge nodes, served by
/// `flotilla sandbox up` as its README says.
fn edge_sandbox(w: &Work) {
    w.run(&[
        "sandbox",
        "up",
        "--name",
        "edge",
        "--with",
        "kubeedge",
        "--edge-node",
        "edge/hz-1:site=hangzhou",
        "--edge-node",
        "edge/hz-2:site=hangzhou",
        "--edge-node",
        "edge/nb-1:site=ningbo",
    ])
    .expect(0);
}

#[test]
fn edge_site_renders_the_application_into_each_node_group() {
    let (w, readme) = example("edge-site");
    assert!(readme.contains("--edge-node edge/hz-1:site=hangzhou"));
    edge_sandbox(&w);
    let out = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        out.stdout.contains("Apply complete! Resources: 9 added"),
        "{}",
        out.stdout
    );
    assert!(!out.stderr.contains('⚠'), "{}", out.stderr);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
    if let Some(rows) = kubectl(
        &w,
        &[
            "--context",
            "edge",
            "get",
            "deployments",
            "-n",
            "sensors",
            "-o",
            "custom-columns=NAME:.metadata.name,IMAGE:.spec.template.spec.containers[0].image",
            "--no-headers",
        ],
    ) {
        let rows: Vec<Vec<&str>> = rows
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec!["sensor-agent-hangzhou", "registry.local/agent:1.0"],
                vec!["sensor-agent-ningbo", "registry.local/agent:1.0-lite"]
            ]
        );
    }
    w.run(&["sandbox", "down"]).expect(0);
    for (group, image) in [
        ("hangzhou", "registry.local/agent:1.0"),
        ("ningbo", "registry.local/agent:1.0-lite"),
    ] {
        let name = format!("sensor-agent-{group}");
        let d = get(
            &w,
            "edge",
            "apps/v1",
            "Deployment",
            "deployments",
            Some("sensors"),
            &name,
        )
        .unwrap_or_else(|| panic!("{name} is rendered"));
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["image"], image);
        assert_eq!(pod["nodeSelector"]["apps.kubeedge.io/belonging-to"], group);
    }
    let node = get(&w, "edge", "v1", "Node", "nodes", None, "nb-1").expect("node");
    assert_eq!(
        node["metadata"]["labels"]["apps.kubeedge.io/belonging-to"],
        "ningbo"
    );
}

/// After [`HEADER`]-less: one edge cluster, a rule and an application with problems.
const EDGE_FAULTS: &str = r#"provider "kubeedge" {
  sandbox = "edge"
}

resource "kubeedge_rule" "orphan" {
  name = "orphan"
  spec = {
    source         = "nowhere"
    sourceResource = { path = "/a" }
    target         = "nobody"
    targetResource = { topic = "t" }
  }
}
"#;

const EDGE_APP_NO_GROUP: &str = r#"provider "kubeedge" {
  sandbox = "edge"
}

resource "kubeedge_edge_application" "agent" {
  name = "agent"
  spec = {
    workloadTemplate = { manifests = [{ apiVersion = "apps/v1", kind = "Deployment", metadata = { name = "agent" }, spec = { selector = { matchLabels = { app = "a" } }, template = { metadata = { labels = { app = "a" } }, spec = { containers = [{ name = "a", image = "busybox" }] } } } }] }
    workloadScope    = { targetNodeGroups = [{ name = "atlantis" }] }
  }
  timeouts {
    create = "2s"
  }
}
"#;

#[test]
fn edge_faults_a_rule_without_endpoints_and_an_application_for_a_missing_group() {
    let w = Work::new(&[("main.hcl", EDGE_FAULTS)]);
    let out = w.run(&["apply", "-auto-approve"]).expect(1);
    assert!(
        flat(&out.stderr).contains("cant get source ruleEndpoint nowhere"),
        "{}",
        out.stderr
    );
    assert!(!w.has_state() || w.state_addresses().is_empty());

    let w = Work::new(&[("main.hcl", EDGE_APP_NO_GROUP)]);
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        flat(&plan.stderr).contains("targets node group \"atlantis\", which no kubeedge_node_group in this configuration declares"),
        "{}",
        plan.stderr
    );
    let out = w.run(&["apply", "-auto-approve"]).expect(1);
    let text = flat(&out.stderr);
    assert!(
        text.contains("did not become ready within 2s"),
        "{}",
        out.stderr
    );
    assert!(
        text.contains(
            "agent-atlantis: conditions is Processing: node group atlantis does not exist"
        ),
        "{}",
        out.stderr
    );
}

const RAW_VS: &str = r#"provider "kube" {
  sandbox = "mesh"
}

resource "kube_manifest" "vs" {
  manifest = {
    apiVersion = "networking.istio.io/v1"
    kind       = "VirtualService"
    metadata   = { name = "checkout", namespace = "default" }
    spec = {
      hosts = ["checkout"]
      http  = [{ route = [{ destination = { host = "checkout" } }], redirect = { uri = "/elsewhere" } }]
    }
  }
}
"#;

#[test]
fn the_sandbox_refuses_what_istiod_refuses_so_the_plan_shows_it() {
    let w = Work::new(&[("main.hcl", RAW_VS)]);
    w.run(&["sandbox", "up", "--name", "mesh", "--with", "istio"])
        .expect(0);
    let out = w.run(&["plan"]).expect(1);
    w.run(&["sandbox", "down"]).expect(0);
    let text = flat(&out.stderr);
    assert!(
        text.contains("admission webhook \"validation.istio.io\" denied the request: configuration is invalid: spec.http[0].redirect: `route` and `redirect` cannot both be set on an HTTP route"),
        "{}",
        out.stderr
    );
}

/// Polls `f` against one cluster of the scratch directory's sandbox (its controllers running)
/// until it returns `Some`, for up to ten seconds.
fn eventually<T>(
    w: &Work,
    cluster: &str,
    what: &str,
    f: impl AsyncFn(&kube::Client) -> Option<T>,
) -> T {
    with_cluster(w, cluster, async |client| {
        for _ in 0..200 {
            if let Some(v) = f(&client).await {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{cluster}: timed out waiting for {what}");
    })
}

fn serves(client: &kube::Client, crd: &str) -> impl Future<Output = bool> {
    let api = api(
        client,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        None,
    );
    let crd = crd.to_string();
    async move { api.get_opt(&crd).await.expect("get CRD").is_some() }
}

#[test]
fn the_quickstart_makes_a_fleet_in_one_apply() {
    let (w, readme) = example("quickstart");
    assert!(
        readme.contains(
            "cargo run -q -p flotilla-cli -- -chdir=examples/quickstart apply -auto-approve"
        ),
        "the README gives the command"
    );
    // The plan groups the objects under their blocks, a summary line each.
    let plan = w.run(&["plan", "-out=quickstart.plan"]).expect(0);
    for line in [
        "── cluster.beijing: created with Cluster API, 4 to add",
        "── fleet.prod: 2 members joined, 17 to add on beijing and shanghai",
        "── addon.volcano: 2 to add on beijing",
        "── rollout.checkout: 7 to add on beijing and shanghai",
        "# cluster.beijing.capi_cluster.this[0] will be created",
        "# fleet.prod.karmada_cluster.member[\"shanghai\"] will be created",
        "Plan: 48 to add, 0 to change, 0 to destroy.",
    ] {
        assert!(plan.stdout.contains(line), "{line}\n{}", plan.stdout);
    }
    let md = w
        .run(&["show", "-format", "markdown", "quickstart.plan"])
        .expect(0);
    assert!(
        md.stdout
            .contains("| `fleet.prod` (2 members joined) | 17 | 0 | 0 | 0 |"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout.contains("| `policy.require-requests` | 2 |"),
        "{}",
        md.stdout
    );
    let graph = w.run(&["graph", "-format=mermaid"]).expect(0);
    assert!(
        graph.stdout.contains("subgraph b7[\"fleet.prod\"]"),
        "{}",
        graph.stdout
    );
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        applied
            .stdout
            .contains("Apply complete! Resources: 48 added"),
        "{}",
        applied.stdout
    );
    for member in ["beijing", "shanghai"] {
        let (istio, volcano, deployment, canary) = with_cluster(&w, member, async |c| {
            (
                serves(&c, "virtualservices.networking.istio.io").await,
                serves(&c, "queues.scheduling.volcano.sh").await,
                api(&c, "apps/v1", "Deployment", "deployments", Some("shop"))
                    .get_opt("checkout")
                    .await
                    .expect("get"),
                api(
                    &c,
                    "flagger.app/v1beta1",
                    "Canary",
                    "canaries",
                    Some("shop"),
                )
                .get_opt("checkout")
                .await
                .expect("get"),
            )
        });
        assert!(istio, "{member} serves the Istio CRDs");
        assert_eq!(volcano, member == "beijing", "Volcano on beijing only");
        let deployment =
            serde_json::to_value(deployment.expect("Deployment shop/checkout")).unwrap();
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/acme/checkout:1.4.0"
        );
        assert!(canary.is_some(), "Canary shop/checkout on {member}");
        // Karmada propagates the policy from mgmt.
        let action = eventually(&w, member, "ClusterPolicy require-requests", async |c| {
            api(c, "kyverno.io/v1", "ClusterPolicy", "clusterpolicies", None)
                .get_opt("require-requests")
                .await
                .expect("get")
                .map(|p| {
                    serde_json::to_value(p).unwrap()["spec"]["validationFailureAction"].clone()
                })
        });
        assert_eq!(action, "Enforce");
    }
    for member in ["beijing", "shanghai"] {
        let joined = get(
            &w,
            "mgmt",
            "cluster.karmada.io/v1alpha1",
            "Cluster",
            "clusters",
            None,
            member,
        )
        .expect("Karmada Cluster");
        let ready = joined["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert!(ready, "Karmada Cluster {member} Ready: {joined}");
    }
    let again = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    // A new image: in-place updates of the two Deployments and of the rollout's record of
    // its revision, nothing else, moved in the rollout's one wave.
    let plan = w.run(&["plan", "-var", "checkout_version=1.5.0"]).expect(0);
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 3 to change, 0 to destroy.")
            && plan
                .stdout
                .contains("# rollout.checkout.builtin_rollout.this will be updated in place")
            && plan
                .stdout
                .contains("beijing   1 to change (kube_manifest.deployment)"),
        "{}",
        plan.stdout
    );
    for member in ["beijing", "shanghai"] {
        assert!(
            plan.stdout.contains(&format!(
                "# rollout.checkout.kube_manifest.deployment[\"{member}\"] will be updated in place"
            )),
            "{}",
            plan.stdout
        );
    }

    // A new Kubernetes version upgrades a cluster through Cluster API, never replacing it.
    let main = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &main.replacen(
            "kubernetes_version = \"v1.31.2\"",
            "kubernetes_version = \"v1.32.0\"",
            1,
        ),
    );
    let upgrade = w.run(&["plan"]).expect(0);
    assert!(
        upgrade.stdout.contains(
            "# cluster.beijing.capi_kubeadm_control_plane.this[0] will be updated in place"
        ),
        "{}",
        upgrade.stdout
    );
    assert!(
        !upgrade
            .stdout
            .contains("capi_cluster.this[0] must be replaced"),
        "{}",
        upgrade.stdout
    );
    assert!(
        !upgrade.stdout.contains("cluster.shanghai."),
        "{}",
        upgrade.stdout
    );
}

#[test]
fn domain_blocks_are_checked_like_resources() {
    let w = Work::new(&[(
        "main.hcl",
        r#"cluster "mgmt" {
  sandboxx = "mgmt"
}

fleet "prod" {
  clusters = [cluster.beijng]
}
"#,
    )]);
    let e = w.run(&["validate"]).expect(1);
    for part in [
        "`cluster \"mgmt\"` has no argument `sandboxx`",
        "did you mean `sandbox`?",
        "no `cluster \"beijng\"` block is declared in the root module",
        "main.hcl:2:3",
        "main.hcl:6:15",
    ] {
        assert!(e.stderr.contains(part), "{part}\n{}", e.stderr);
    }
    // An addon for members the fleet does not have: an error at plan time naming both.
    w.write(
        "main.hcl",
        r#"cluster "mgmt" {
  sandbox = "mgmt"
}

fleet "prod" {
  clusters = [cluster.mgmt]
}

addon "istio" {
  fleet   = fleet.prod
  members = ["hangzhou"]
}

addon "istio-but-unknown" {
  fleet = fleet.prod
}
"#,
    );
    // `validate` evaluates domain blocks offline: no cluster is reached.
    let e = w.run(&["validate"]).expect(1);
    assert!(
        !w.path(".flotilla/sandbox").exists(),
        "validate started no sandbox"
    );
    for part in [
        "addon \"istio\" names members fleet prod does not have: hangzhou (its members: mgmt)",
        "main.hcl:9:1: in addon.istio",
        "addon \"istio-but-unknown\" is not one flotilla knows",
        "set `chart = { repository, name, version }`",
    ] {
        assert!(e.stderr.contains(part), "{part}\n{}", e.stderr);
    }
    // A value of the wrong type for a block's argument.
    w.write(
        "main.hcl",
        "cluster \"mgmt\" {\n  sandbox = \"mgmt\"\n  labels  = \"eu\"\n}\n",
    );
    let e = w.run(&["validate"]).expect(1);
    assert!(
        e.stderr
            .contains("variable `labels` must be map(string) (from `cluster \"mgmt\"`)"),
        "{}",
        e.stderr
    );
    assert!(e.stderr.contains("main.hcl:3:"), "{}", e.stderr);
}

#[test]
fn domain_blocks_take_for_each_and_name_each_instance_by_its_key() {
    let w = Work::new(&[(
        "main.hcl",
        r#"cluster "site" {
  for_each = toset(["edge-a", "edge-b"])
  sandbox  = each.key
  labels   = { tier = "edge" }
}

fleet "edge" {
  clusters = cluster.site
}

addon "kyverno" {
  fleet         = fleet.edge
  member_values = { edge-b = { admissionController = { replicas = 3 } } }
}

policy "baseline" {
  fleet      = fleet.edge
  preset     = "pod-security-baseline"
  depends_on = [addon.kyverno]
}

rollout "sensor" {
  fleet    = fleet.edge
  selector = { "flotilla.dev/cluster" = "edge-a" }
  image    = "ghcr.io/acme/sensor:2.0"
  strategy = "none"
}

output "members" {
  value = fleet.edge.member_names
}

output "labels" {
  value = fleet.edge.member_labels["edge-b"]
}
"#,
    )]);
    // Per-member values reach only that member's release.
    let plan = w.run(&["plan"]).expect(0);
    assert_eq!(
        plan.stdout.matches("replicas = 3").count(),
        1,
        "{}",
        plan.stdout
    );
    let out = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("members = [\n  \"edge-a\",\n  \"edge-b\",\n]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"flotilla.dev/cluster\" = \"edge-b\""),
        "{}",
        out.stdout
    );
    assert!(
        w.state_addresses()
            .iter()
            .any(|a| a == "fleet.edge.kube_namespace.flux[\"edge-b\"]"),
        "{:?}",
        w.state_addresses()
    );
    // Without Karmada the policy is applied to each member (after Kyverno is installed
    // there), and `strategy = "none"` is a Deployment and a Service on the selected member.
    for member in ["edge-a", "edge-b"] {
        let policy = get(
            &w,
            member,
            "kyverno.io/v1",
            "ClusterPolicy",
            "clusterpolicies",
            None,
            "baseline",
        )
        .expect("ClusterPolicy baseline");
        assert_eq!(
            policy["spec"]["rules"][0]["validate"]["podSecurity"]["level"],
            "baseline"
        );
        let service = get(
            &w,
            member,
            "v1",
            "Service",
            "services",
            Some("default"),
            "sensor",
        );
        assert_eq!(
            service.is_some(),
            member == "edge-a",
            "Service sensor on {member}"
        );
    }
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}
