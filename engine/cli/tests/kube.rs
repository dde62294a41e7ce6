//! End-to-end: the real `flotilla` binary applying the `kube` and `capi` providers to
//! sandbox clusters it starts in its own process (under the scratch directory's
//! `.flotilla/sandbox`), and the test changing clusters behind flotilla's back between runs.

mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use support::Work;
use support::clusters::{example, with_cluster};

fn config_maps(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// The names of the ConfigMaps in a namespace of a sandbox cluster.
fn config_map_names(w: &Work, cluster: &str, ns: &str) -> Vec<String> {
    with_cluster(w, cluster, async |client| {
        let mut names: Vec<String> = config_maps(&client, ns)
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .filter(|n| n != "kube-root-ca.crt")
            .collect();
        names.sort();
        names
    })
}

#[test]
fn examples_apply_and_then_plan_no_changes() {
    for name in ["kube-basics", "capi-cluster"] {
        let (w, readme) = example(name);
        assert!(
            readme.contains(&format!(
                "cargo run -q -p flotilla-cli -- -chdir=examples/{name} apply -auto-approve"
            )),
            "{name}/README.md gives the command"
        );
        let applied = w.run(&["apply", "-auto-approve"]).expect(0);
        assert!(
            applied.stdout.contains("Apply complete!"),
            "{}",
            applied.stdout
        );
        let clean = w.run(&["plan", "-detailed-exitcode"]).expect(0);
        assert!(
            clean.stdout.contains("No changes."),
            "{name}: {}",
            clean.stdout
        );
        if name == "kube-basics" {
            // The Secret read back through `data "kube_secret"`, decoded but never shown.
            assert!(
                applied.stdout.contains("db_password  = (sensitive value)"),
                "{}",
                applied.stdout
            );
            assert!(
                !applied.stdout.contains("correct-horse"),
                "{}",
                applied.stdout
            );
            let outputs = &w.state()["outputs"];
            assert_eq!(
                outputs["db_password"]["value"],
                "correct-horse-battery-staple"
            );
        }
        if name == "capi-cluster" {
            // The ConfigMap lives in the new cluster, reached through its kubeconfig.
            assert_eq!(config_map_names(&w, "beijing", "apps"), ["settings"]);
            assert!(
                !applied.stdout.contains("apiVersion: v1"),
                "the kubeconfig never shows"
            );
            let destroyed = w.run(&["destroy", "-auto-approve"]).expect(0);
            assert!(
                destroyed
                    .stdout
                    .contains("Destroy complete! Resources: 6 destroyed."),
                "{}",
                destroyed.stdout
            );
            assert!(w.state_addresses().is_empty());
            assert!(!w.path(".flotilla/sandbox/clusters/beijing.json").exists());
        }
    }
}

#[test]
fn a_cluster_and_its_objects_plan_in_one_plan() {
    let (w, _) = example("capi-cluster");
    let plan = w.run(&["plan"]).expect(0);
    for line in [
        "# capi_cluster.beijing will be created",
        "# kube_namespace.apps will be created",
        "# (because its provider's configuration is known only after apply; it is planned again then)",
        "Plan: 6 to add, 0 to change, 0 to destroy.",
    ] {
        assert!(plan.stdout.contains(line), "{line}\n{}", plan.stdout);
    }
    assert!(!w.has_state() || w.state_addresses().is_empty());
}

const SETTINGS: &str = r#"provider "kube" {
  sandbox = "dev"
}

resource "kube_config_map" "settings" {
  name = "settings"
  data = {
    region = "REGION"
  }
  FORCE
}
"#;

fn settings(region: &str, force: bool) -> String {
    SETTINGS
        .replace("REGION", region)
        .replace("FORCE", if force { "force_conflicts = true" } else { "" })
}

/// Server-side applies `data` to ConfigMap `settings` as the field manager `ops-team`.
fn patch_as_ops_team(w: &Work, data: serde_json::Value) {
    with_cluster(w, "dev", async |client| {
        let patch = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings"}, "data": data});
        config_maps(&client, "default")
            .patch(
                "settings",
                &PatchParams::apply("ops-team").force(),
                &Patch::Apply(&patch),
            )
            .await
            .expect("patch");
    });
}

#[test]
fn drift_conflicts_and_refresh_only() {
    let w = Work::new(&[("main.hcl", &settings("cn-north", false))]);
    w.run(&["apply", "-auto-approve"]).expect(0);

    // Someone else takes `region` over with their own field manager.
    patch_as_ops_team(&w, serde_json::json!({"region": "eu-west"}));

    let refresh = w.run(&["plan", "-refresh-only"]).expect(0);
    assert!(
        refresh
            .stdout
            .contains("# kube_config_map.settings has changed"),
        "{}",
        refresh.stdout
    );
    assert!(
        refresh.stdout.contains(r#""cn-north" -> "eu-west""#),
        "{}",
        refresh.stdout
    );

    // `ignore_changes` on the field keeps the other manager's value, with no conflict.
    w.write(
        "main.hcl",
        &settings("cn-north", false).replace(
            "  \n}\n",
            "  lifecycle {\n    ignore_changes = [data]\n  }\n}\n",
        ),
    );
    let ignored = w.run(&["plan", "-detailed-exitcode"]).expect(0);
    assert!(ignored.stdout.contains("No changes."), "{}", ignored.stdout);

    // A field flotilla applied before, changed by another manager: drift the plan takes back,
    // naming who changed it, and the apply forces exactly that.
    w.write("main.hcl", &settings("cn-north", false));
    let plan = w.run(&["plan"]).expect(0);
    for part in [
        "# kube_config_map.settings will be updated in place",
        "# (takes back data.region from ops-team, which changed it outside flotilla)",
        r#""eu-west" -> "cn-north""#,
    ] {
        assert!(plan.stdout.contains(part), "{part}\n{}", plan.stdout);
    }
    w.run(&["apply", "-auto-approve"]).expect(0);
    let region = with_cluster(&w, "dev", async |client| {
        let cm = config_maps(&client, "default")
            .get("settings")
            .await
            .expect("get");
        serde_json::to_value(cm).unwrap()["data"]["region"].clone()
    });
    assert_eq!(region, "cn-north");
    w.run(&["plan", "-detailed-exitcode"]).expect(0);

    // A field flotilla never set that another manager owns stays a conflict, with the hint.
    patch_as_ops_team(&w, serde_json::json!({"owner": "ops"}));
    w.write(
        "main.hcl",
        &settings("cn-north", false).replace(
            "region = \"cn-north\"",
            "region = \"cn-north\"\n    owner  = \"platform\"",
        ),
    );
    let conflict = w.run(&["plan"]).expect(1);
    assert!(conflict.stderr.contains("ops-team"), "{}", conflict.stderr);
    assert!(
        conflict.stderr.contains("force_conflicts = true"),
        "{}",
        conflict.stderr
    );

    // Taking such a field over, deliberately.
    w.write(
        "main.hcl",
        &settings("cn-north", true).replace(
            "region = \"cn-north\"",
            "region = \"cn-north\"\n    owner  = \"platform\"",
        ),
    );
    let forced = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(forced.stdout.contains("1 changed"), "{}", forced.stdout);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);

    // Deleted outside flotilla: planned as a create.
    with_cluster(&w, "dev", async |client| {
        config_maps(&client, "default")
            .delete("settings", &Default::default())
            .await
            .expect("delete");
    });
    let gone = w.run(&["plan"]).expect(0);
    assert!(gone.stdout.contains("will be created"), "{}", gone.stdout);
}

const HEALTH_CHECK: &str = r#"provider "capi" {
  sandbox = "mgmt"
}

resource "capi_machine_health_check" "workers" {
  name = "workers"
  spec = {
    clusterName = "CLUSTER"
    selector    = { matchLabels = { "cluster.x-k8s.io/cluster-name" = "CLUSTER" } }
  }
}
"#;

#[test]
fn an_immutable_field_change_is_a_replacement_with_the_servers_reason() {
    let w = Work::new(&[("main.hcl", &HEALTH_CHECK.replace("CLUSTER", "beijing"))]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    w.write("main.hcl", &HEALTH_CHECK.replace("CLUSTER", "shanghai"));
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("# capi_machine_health_check.workers must be replaced"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("field is immutable"),
        "{}",
        plan.stdout
    );
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        applied.stdout.contains("1 added, 0 changed, 1 destroyed"),
        "{}",
        applied.stdout
    );
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}

const NEVER_READY: &str = r#"provider "capi" {
  sandbox = "mgmt"
}

resource "capi_cluster" "lonely" {
  name = "lonely"
  spec = {
    infrastructureRef = {
      apiGroup = "infrastructure.cluster.x-k8s.io"
      kind     = "DockerCluster"
      name     = "missing"
    }
  }
  timeouts {
    create = "1s"
  }
}
"#;

#[test]
fn a_readiness_timeout_records_the_object_tainted_and_the_next_plan_replaces_it() {
    let w = Work::new(&[("main.hcl", NEVER_READY)]);
    let failed = w.run(&["apply", "-auto-approve"]).expect(1);
    assert!(
        failed
            .stderr
            .contains("did not become ready within 1s (the create timeout)"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("waiting for DockerCluster missing"),
        "{}",
        failed.stderr
    );
    let state = w.state();
    assert_eq!(
        state["resources"]["capi_cluster.lonely"]["tainted"], true,
        "{state}"
    );
    let plan = w.run(&["plan"]).expect(0);
    assert!(plan.stdout.contains("must be replaced"), "{}", plan.stdout);
    assert!(plan.stdout.contains("tainted"), "{}", plan.stdout);
}

fn many_config_maps(n: usize) -> String {
    let mut text = String::from("provider \"kube\" {\n  sandbox = \"dev\"\n}\n");
    text.push_str(&format!(
        "resource \"kube_config_map\" \"many\" {{\n  count = {n}\n  name  = \"cm-${{count.index}}\"\n  data  = {{ index = tostring(count.index) }}\n}}\n"
    ));
    text
}

#[test]
fn transient_errors_during_apply_are_retried_and_state_matches_the_cluster() {
    let w = Work::new(&[("main.hcl", &many_config_maps(8))]);
    w.run(&["plan"]).expect(0);
    w.run(&[
        "sandbox",
        "fault",
        "dev",
        "errors=0.25,throttle=0.15,retry_after=0s,seed=11",
    ])
    .expect(0);
    let applied = w.run(&["apply", "-auto-approve"]);
    assert!(applied.code == 0 || applied.code == 1, "{applied:?}");
    assert!(applied.stderr.contains("retrying in"), "{}", applied.stderr);
    // Whatever happened, state records exactly what exists.
    w.run(&["sandbox", "fault", "dev", "--clear"]).expect(0);
    let recorded: Vec<String> = w.state()["resources"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|r| {
                    r["attributes"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut recorded = recorded;
    recorded.sort();
    assert_eq!(config_map_names(&w, "dev", "default"), recorded);
    w.run(&["apply", "-auto-approve"]).expect(0);
    assert_eq!(config_map_names(&w, "dev", "default").len(), 8);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}

#[test]
fn an_unreachable_cluster_is_named_and_nothing_unattempted_is_recorded() {
    let w = Work::new(&[("main.hcl", &many_config_maps(2))]);
    w.run(&["plan", "-out", "tfplan"]).expect(0);
    w.run(&["sandbox", "fault", "dev", "unreachable"]).expect(0);
    let failed = w.run(&["apply", "tfplan"]).expect(1);
    assert!(
        failed
            .stderr
            .contains("cannot reach sandbox cluster \"dev\""),
        "{}",
        failed.stderr
    );
    assert!(w.state_addresses().is_empty(), "{:?}", w.state_addresses());
    let plan = w.run(&["plan"]).expect(1);
    assert!(
        plan.stderr.contains("cannot reach sandbox cluster \"dev\""),
        "{}",
        plan.stderr
    );
}

#[test]
fn validate_checks_kinds_offline() {
    let w = Work::new(&[(
        "main.hcl",
        r#"resource "capi_cluster" "c" {
  name = "c"
  spec = {
    clusterNetwrok = { pods = { cidrBlocks = ["10.0.0.0/16"] } }
  }
}
"#,
    )]);
    let out = w.run(&["validate"]).expect(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("did you mean `clusterNetwork`?"), "{text}");
    assert!(text.contains("main.hcl:4:5"), "{text}");
    assert!(
        !w.path(".flotilla/sandbox").exists(),
        "validate needs no cluster"
    );
}

#[test]
fn import_by_command_and_by_block() {
    let w = Work::new(&[("main.hcl", &settings("cn-north", false))]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    std::fs::remove_file(w.path("flotilla.state.json")).expect("forget the state");

    let missing = w
        .run(&["import", "kube_config_map.settings", "default/nope"])
        .expect(1);
    assert!(
        missing
            .stderr
            .contains("ConfigMap default/nope does not exist"),
        "{}",
        missing.stderr
    );
    let no_block = w
        .run(&["import", "kube_config_map.other", "default/settings"])
        .expect(1);
    assert!(
        no_block
            .stderr
            .contains("import target has no resource block"),
        "{}",
        no_block.stderr
    );

    let imported = w
        .run(&["import", "kube_config_map.settings", "default/settings"])
        .expect(0);
    assert!(
        imported.stdout.contains("Import successful!"),
        "{}",
        imported.stdout
    );
    assert_eq!(w.state_addresses(), ["kube_config_map.settings"]);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);

    // An `import` block adopts it as part of a plan, with any change the configuration asks.
    std::fs::remove_file(w.path("flotilla.state.json")).expect("forget the state");
    w.write(
        "main.hcl",
        &format!(
            "{}\nimport {{\n  to = kube_config_map.settings\n  id = \"default/settings\"\n}}\n",
            settings("eu-west", false)
        ),
    );
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("# (imported from \"default/settings\")"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 1 to import, 0 to add, 1 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        applied.stdout.contains("1 imported, 0 added, 1 changed"),
        "{}",
        applied.stdout
    );
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}

#[test]
fn a_template_change_rotates_it_and_moves_its_referrers() {
    let (w, _) = example("capi-cluster");
    w.run(&["apply", "-auto-approve"]).expect(0);
    let new_version = ["-var", "kubernetes_version=v1.32.0"];
    let plan = w.run(&[&["plan"][..], &new_version].concat()).expect(0);
    for line in [
        "# capi_docker_machine_template.control_plane must be replaced",
        "the template is rotated to a new object, beijing-control-plane-",
        "# capi_kubeadm_control_plane.beijing will be updated in place",
        "Plan: 1 to add, 1 to change, 1 to destroy.",
    ] {
        assert!(plan.stdout.contains(line), "{line}\n{}", plan.stdout);
    }
    assert!(
        plan.stdout.contains("+/-"),
        "create before destroy: {}",
        plan.stdout
    );
    w.run(&[&["apply", "-auto-approve"][..], &new_version].concat())
        .expect(0);
    w.run(&[&["plan", "-detailed-exitcode"][..], &new_version].concat())
        .expect(0);
    let state = w.state();
    let name = state["resources"]["capi_docker_machine_template.control_plane"]["attributes"]["object_name"]
        .as_str()
        .expect("object_name")
        .to_string();
    let referred = &state["resources"]["capi_kubeadm_control_plane.beijing"]["attributes"]["spec"]
        ["machineTemplate"]["spec"]["infrastructureRef"]["name"];
    assert_eq!(referred, &serde_json::json!(name));
}

/// Two clusters made with Cluster API and one provider instance per cluster, from
/// `provider "kube" { for_each = ... }`, each configured from its cluster's kubeconfig.
const FLEET_OF_PROVIDERS: &str = r#"locals {
  clusters = toset(["beijing", "shanghai"])
}

provider "capi" {
  sandbox = "mgmt"
}

resource "capi_docker_cluster" "c" {
  for_each = local.clusters
  name     = each.key
  spec     = {}
}

resource "capi_docker_machine_template" "cp" {
  for_each = local.clusters
  name     = "${each.key}-cp"
  spec = {
    template = { spec = { customImage = "kindest/node:v1.31.2" } }
  }
}

resource "capi_kubeadm_control_plane" "c" {
  for_each = local.clusters
  name     = "${each.key}-cp"
  spec = {
    replicas = 1
    version  = "v1.31.2"
    machineTemplate = {
      spec = {
        infrastructureRef = {
          apiGroup = "infrastructure.cluster.x-k8s.io"
          kind     = "DockerMachineTemplate"
          name     = capi_docker_machine_template.cp[each.key].object_name
        }
      }
    }
  }
}

resource "capi_cluster" "c" {
  for_each = local.clusters
  name     = each.key
  spec = {
    controlPlaneRef = {
      apiGroup = "controlplane.cluster.x-k8s.io"
      kind     = "KubeadmControlPlane"
      name     = capi_kubeadm_control_plane.c[each.key].name
    }
    infrastructureRef = {
      apiGroup = "infrastructure.cluster.x-k8s.io"
      kind     = "DockerCluster"
      name     = capi_docker_cluster.c[each.key].name
    }
  }
}

provider "kube" {
  alias          = "member"
  for_each       = capi_cluster.c
  kubeconfig_raw = each.value.kubeconfig
}

resource "kube_namespace" "apps" {
  for_each = local.clusters
  provider = kube.member[each.key]
  name     = "apps-${each.key}"
}

module "team" {
  for_each  = local.clusters
  source    = "./team"
  providers = { kube = kube.member[each.key] }
  namespace = kube_namespace.apps[each.key].name
}
"#;

const TEAM_MODULE: &str = r#"variable "namespace" {
  type = string
}

resource "kube_config_map" "owner" {
  name      = "owner"
  namespace = var.namespace
  data      = { team = "platform" }
}
"#;

#[test]
fn provider_for_each_configures_one_instance_per_member_in_one_apply() {
    let w = Work::new(&[
        ("main.hcl", FLEET_OF_PROVIDERS),
        ("team/main.hcl", TEAM_MODULE),
    ]);
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("# kube_namespace.apps[\"shanghai\"] will be created"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("its provider's configuration is known only after apply"),
        "{}",
        plan.stdout
    );
    w.run(&["apply", "-auto-approve"]).expect(0);
    let state = w.state();
    assert_eq!(
        state["resources"]["kube_namespace.apps[\"beijing\"]"]["provider"],
        "provider.kube.member[\"beijing\"]"
    );
    for member in ["beijing", "shanghai"] {
        let found = with_cluster(&w, member, async |client| {
            let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
            api.get_opt(&format!("apps-{member}"))
                .await
                .expect("get")
                .is_some()
        });
        assert!(found, "namespace apps-{member} in cluster {member}");
        assert_eq!(
            config_map_names(&w, member, &format!("apps-{member}")),
            ["owner"],
            "module.team[{member:?}] used the provider instance its call selected"
        );
    }
    let clean = w.run(&["plan", "-detailed-exitcode"]).expect(0);
    assert!(clean.stdout.contains("No changes."), "{}", clean.stdout);

    // Selecting an instance the provider does not have, or none, is an error at the line.
    let broken = FLEET_OF_PROVIDERS.replace("kube.member[each.key]", "kube.member[\"paris\"]");
    w.write("main.hcl", &broken);
    let e = w.run(&["plan"]).expect(1);
    assert!(
        e.stderr.contains("no such provider instance"),
        "{}",
        e.stderr
    );
    assert!(
        e.stderr.contains("[\"beijing\"], [\"shanghai\"]"),
        "{}",
        e.stderr
    );
    w.write(
        "main.hcl",
        &FLEET_OF_PROVIDERS.replace("kube.member[each.key]", "kube.member"),
    );
    let e = w.run(&["plan"]).expect(1);
    assert!(
        e.stderr.contains("provider instance not selected"),
        "{}",
        e.stderr
    );
    assert!(e.stderr.contains("main.hcl:"), "{}", e.stderr);
}

fn deployment(image: &str, extra: &str) -> String {
    format!(
        r#"provider "kube" {{
  sandbox = "dev"
}}

resource "kube_manifest" "web" {{
  manifest = {{
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = {{ name = "web", namespace = "default" }}
    spec = {{
      replicas = 2
      selector = {{ matchLabels = {{ app = "web" }} }}
      template = {{
        metadata = {{ labels = {{ app = "web" }} }}
        spec     = {{ containers = [{{ name = "web", image = "{image}" }}] }}
      }}
    }}
  }}
  {extra}
}}
"#
    )
}

#[test]
fn deployments_wait_for_their_rollout_at_the_new_generation() {
    let w = Work::new(&[("main.hcl", &deployment("nginx:1.27", ""))]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    let status = |w: &Work| {
        with_cluster(w, "dev", async |client| {
            let api: Api<k8s_openapi::api::apps::v1::Deployment> =
                Api::namespaced(client, "default");
            let d = api.get("web").await.expect("get");
            serde_json::to_value(d.status).unwrap()
        })
    };
    // The apply returned once the rollout was done, not when the object was accepted.
    let s = status(&w);
    assert_eq!(s["availableReplicas"], 2, "{s}");
    assert_eq!(s["observedGeneration"], 1, "{s}");

    // A rollout that never finishes times out naming what it waits for, and is tainted.
    w.write(
        ".flotilla/sandbox/faults.json",
        r#"{"dev": {"rollouts_stall": true}}"#,
    );
    w.write(
        "main.hcl",
        &deployment("nginx:1.28", "timeouts {\n    update = \"1s\"\n  }"),
    );
    let e = w.run(&["apply", "-auto-approve"]).expect(1);
    assert!(
        e.stderr
            .contains("Deployment default/web did not become ready within 1s"),
        "{}",
        e.stderr
    );
    assert!(
        e.stderr.contains(
            "rollout: 2 old replicas still running while the 2 updated ones become available (Available is False"
        ),
        "{}",
        e.stderr
    );
    // `wait = false` does not wait.
    w.write("main.hcl", &deployment("nginx:1.29", "wait = false"));
    w.run(&["apply", "-auto-approve"]).expect(0);
}
