//! End-to-end: fleet rollouts in waves with the real `flotilla` binary against four sandbox
//! clusters (examples/fleet-rollout): the plan shows every wave, the apply moves the canary
//! cluster first and then the rest two at a time, a member whose canary analysis fails rolls
//! every touched member back (checked in each cluster), an apply killed during wave 2
//! resumes at wave 2, and an approval gate stops the apply until `flotilla rollout approve`.

#[path = "support/schema.rs"]
mod schema;
mod support;

use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use support::Work;
use support::clusters::{client, example, with_cluster};

const MEMBERS: [&str; 4] = ["bj-1", "gz-1", "sh-1", "sh-2"];

/// The image of the checkout Deployment in a member.
async fn image(client: kube::Client) -> Option<String> {
    let resource = ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        plural: "deployments".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client, "shop", &resource);
    api.get_opt("checkout").await.expect("get").map(|d| {
        let d = serde_json::to_value(d).expect("json");
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

/// The image of the checkout Deployment in each member (`None` where it does not exist),
/// from the scratch directory's sandbox started in this process.
fn images(w: &Work) -> Vec<(String, Option<String>)> {
    MEMBERS
        .iter()
        .map(|m| (m.to_string(), with_cluster(w, m, image)))
        .collect()
}

/// The same from the sandbox `flotilla sandbox up` serves.
fn served_images(w: &Work) -> Vec<(String, Option<String>)> {
    let kubeconfig = std::fs::read_to_string(w.path(".flotilla/sandbox/kubeconfig")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    MEMBERS
        .iter()
        .map(|m| {
            let found = rt.block_on(async { image(client(&kubeconfig, m).await).await });
            (m.to_string(), found)
        })
        .collect()
}

/// The four clusters served by `flotilla sandbox up` until dropped (so killing an apply
/// does not take the clusters with it).
struct Served<'a>(&'a Work);

impl<'a> Served<'a> {
    fn up(w: &'a Work) -> Served<'a> {
        let mut args = vec!["sandbox", "up"];
        for m in MEMBERS {
            args.extend(["--name", m]);
        }
        w.run(&args).expect(0);
        Served(w)
    }
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["sandbox", "down"]);
    }
}

fn everywhere(version: &str) -> Vec<(String, Option<String>)> {
    MEMBERS
        .iter()
        .map(|m| {
            (
                m.to_string(),
                Some(format!("ghcr.io/acme/checkout:{version}")),
            )
        })
        .collect()
}

/// The example with 1.4.0 on every member.
fn installed() -> Work {
    let w = fresh();
    install(&w);
    assert_eq!(images(&w), everywhere("1.4.0"));
    w
}

fn fresh() -> Work {
    let (w, readme) = example("fleet-rollout");
    assert!(
        readme.contains(
            "cargo run -q -p flotilla-cli -- -chdir=examples/fleet-rollout apply -auto-approve"
        ),
        "the README gives the command"
    );
    w
}

fn install(w: &Work) {
    let out = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(out.stdout.contains("Apply complete!"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("rollout.checkout: rollout complete: every member runs the revision"),
        "{}",
        out.stdout
    );
}

/// What a run printed on stderr, on one line (miette wraps long messages).
fn flat_stderr(run: &support::Run) -> String {
    run.stderr.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Index of the first stdout line containing `text`.
fn line_of(out: &str, text: &str) -> usize {
    out.lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{out}"))
}

/// The most members of `wave` rolling out at once, from the progress lines.
fn most_at_once(out: &str) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for l in out.lines().filter(|l| l.starts_with("rollout.checkout: ")) {
        if l.ends_with(": rolling out") {
            now += 1;
            most = most.max(now);
        } else if l.contains(": healthy at the new revision") || l.contains(": failed: ") {
            now = now.saturating_sub(1);
        }
    }
    most
}

#[test]
fn the_plan_shows_every_wave_and_a_failed_canary_rolls_every_touched_member_back() {
    let w = installed();
    let v15 = ["-var", "checkout_version=1.5.0"];

    // The plan shows both waves, what changes on each member, and the exposure.
    let plan = w
        .run(&[&["plan", "-out", "tfplan"][..], &v15].concat())
        .expect(0);
    for text in [
        "Rollout rollout.checkout: ghcr.io/acme/checkout:1.5.0 in 2 waves; on a failure beyond 0 failed members: roll back every touched member",
        "wave 1 \"canary\": all at once, gate: kube_manifest.canary healthy at the revision applied, soak 2s",
        "bj-1  1 to change (kube_manifest.deployment)",
        "after wave 1: 1 of 4 members (25% of the fleet), 2 replicas",
        "wave 2 \"rest\": 2 at a time (max_concurrency 2)",
        "gz-1  1 to change (kube_manifest.deployment)",
        "after wave 2: 4 of 4 members (100% of the fleet), 8 replicas",
    ] {
        assert!(plan.stdout.contains(text), "{text:?} in:\n{}", plan.stdout);
    }
    assert!(line_of(&plan.stdout, "wave 1 \"canary\"") < line_of(&plan.stdout, "wave 2 \"rest\""));
    // The saved plan carries the execution graph apply walks, gates included.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.path("tfplan")).unwrap()).unwrap();
    let ops = saved["plan"]["execution"]["ops"]
        .as_array()
        .expect("execution graph");
    let gates: Vec<&serde_json::Value> = ops.iter().filter_map(|o| o.get("gate")).collect();
    assert!(
        gates.iter().any(|g| g.get("member_gate").is_some())
            && gates.iter().any(|g| g.get("wave_end").is_some()),
        "{gates:?}"
    );
    // The JSON plan and the markdown preview carry the same waves.
    let json: serde_json::Value =
        serde_json::from_str(&w.run(&["show", "-json", "tfplan"]).expect(0).stdout).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs/schemas/plan.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(schema::check(&schema, &json), Vec::<String>::new());
    let waves = &json["rollouts"][0]["waves"];
    assert_eq!(waves[0]["members"][0]["name"], "bj-1");
    assert_eq!(waves[1]["max_concurrency"], 2);
    let rest: Vec<&str> = waves[1]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["gz-1", "sh-1", "sh-2"]);
    assert_eq!(waves[1]["exposure"]["members"], 4);
    let md = w
        .run(&["show", "-format", "markdown", "tfplan"])
        .expect(0)
        .stdout;
    assert!(
        md.contains("#### Rollout `rollout.checkout`: ghcr.io/acme/checkout:1.5.0 in 2 waves"),
        "{md}"
    );
    assert!(md.contains("| 2 rest |"), "{md}");

    // gz-1 fails its analysis: the apply fails naming it, and every member that got 1.5.0
    // is back on 1.4.0.
    w.run(&["sandbox", "fault", "gz-1", "canary_analysis=fail"])
        .expect(0);
    let failed = w.run(&["apply", "tfplan"]).expect(1);
    let out = &failed.stdout;
    assert!(
        line_of(out, "bj-1: healthy at the new revision") < line_of(out, "gz-1: rolling out"),
        "bj-1 first:\n{out}"
    );
    assert!(most_at_once(out) <= 2, "two at a time:\n{out}");
    assert!(
        out.contains("gz-1: failed: canary analysis failed"),
        "{out}"
    );
    let err = flat_stderr(&failed);
    assert!(
        err.contains("rollout.checkout failed and was rolled back") && err.contains("gz-1 failed"),
        "{err}"
    );
    assert!(line_of(out, "bj-1: back on its previous revision") > line_of(out, "gz-1: back on"));
    assert_eq!(images(&w), everywhere("1.4.0"));
    let status = w.run(&["rollout", "status", "checkout"]).expect(0).stdout;
    assert!(status.contains("rolled back"), "{status}");
    assert!(status.contains("gz-1  reverted"), "{status}");
    // Held: the same revision does not move again until resumed.
    let held = w
        .run(&[&["apply", "-auto-approve"][..], &v15].concat())
        .expect(1);
    assert!(
        held.stdout.contains("held: this revision was rolled back"),
        "{}",
        held.stdout
    );
    assert_eq!(images(&w), everywhere("1.4.0"));

    // With the fault gone and the rollout resumed, 1.5.0 reaches every member.
    w.run(&["sandbox", "fault", "gz-1", "--clear"]).expect(0);
    let resumed = w.run(&["rollout", "resume", "checkout"]).expect(0);
    assert!(resumed.stdout.contains("from wave 1"), "{}", resumed.stdout);
    let done = w
        .run(&[&["apply", "-auto-approve"][..], &v15].concat())
        .expect(0);
    assert!(done.stdout.contains("rollout complete"), "{}", done.stdout);
    assert_eq!(images(&w), everywhere("1.5.0"));
    let json: serde_json::Value =
        serde_json::from_str(&w.run(&["rollout", "status", "-json"]).expect(0).stdout).unwrap();
    assert_eq!(json["rollouts"][0]["status"], "completed");
    assert!(
        !json.to_string().contains("previous\":{"),
        "status JSON leaves out the recorded objects"
    );
}

#[test]
fn an_apply_killed_during_wave_two_resumes_at_wave_two() {
    let w = fresh();
    let _served = Served::up(&w);
    install(&w);
    assert_eq!(served_images(&w), everywhere("1.4.0"));
    let v15 = ["-var", "checkout_version=1.5.0"];
    let mut running = w.spawn_until(
        &[&["apply", "-auto-approve"][..], &v15].concat(),
        "rollout.checkout: gz-1: rolling out",
    );
    running.child.kill().expect("kill -9");
    let _ = running.child.wait();
    let again = w
        .run(&[&["apply", "-auto-approve"][..], &v15].concat())
        .expect(0);
    let out = &again.stdout;
    assert!(
        !out.contains("wave 1 of 2"),
        "wave 1 is not run again:\n{out}"
    );
    assert!(!out.contains("bj-1: rolling out"), "{out}");
    assert!(out.contains("wave 2 of 2 \"rest\""), "{out}");
    assert!(out.contains("rollout complete"), "{out}");
    assert!(out.contains("bj-1  no changes"), "{out}");
    assert_eq!(served_images(&w), everywhere("1.5.0"));
    let status = w.run(&["rollout", "status"]).expect(0).stdout;
    assert!(status.contains("completed"), "{status}");
}

#[test]
fn an_approval_gate_stops_the_apply_and_rollout_approve_continues_it() {
    let w = installed();
    let args = [
        "apply",
        "-auto-approve",
        "-var",
        "checkout_version=1.5.0",
        "-var",
        "approve_rest=true",
    ];
    let stopped = w.run(&args).expect(4);
    assert!(
        stopped
            .stdout
            .contains("Apply stopped at an approval gate.")
            && stopped.stdout.contains("flotilla rollout approve checkout"),
        "{}",
        stopped.stdout
    );
    let mut halfway = everywhere("1.4.0");
    halfway[0].1 = Some("ghcr.io/acme/checkout:1.5.0".into());
    assert_eq!(images(&w), halfway, "only the canary wave moved");
    let status = w.run(&["rollout", "status", "checkout"]).expect(0).stdout;
    assert!(
        status.contains("waiting for approval at wave 2 of 2"),
        "{status}"
    );
    // The plan says the wave needs approval.
    let plan = w.run(&[
        "plan",
        "-var",
        "checkout_version=1.5.0",
        "-var",
        "approve_rest=true",
    ]);
    assert!(plan.stdout.contains("needs approval"), "{}", plan.stdout);

    let approved = w
        .run_with(&[("USER", "alice")], &["rollout", "approve", "checkout"])
        .expect(0);
    assert!(
        approved
            .stdout
            .contains("Approved wave 2 \"rest\" of rollout.checkout as alice"),
        "{}",
        approved.stdout
    );
    let done = w.run(&args).expect(0);
    assert!(
        !done.stdout.contains("bj-1: rolling out"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("rollout complete"), "{}", done.stdout);
    assert_eq!(images(&w), everywhere("1.5.0"));
    let status = w.run(&["rollout", "status", "checkout"]).expect(0).stdout;
    assert!(status.contains("approved by alice"), "{status}");
    // Nothing waits any more.
    let again = w.run(&["rollout", "approve", "checkout"]).expect(1);
    assert!(
        again.stderr.contains("checkout is completed"),
        "{}",
        again.stderr
    );
}

#[test]
fn waves_that_leave_members_out_are_a_plan_error_with_the_place() {
    let (w, _) = example("fleet-rollout");
    let main = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &main.replace(
            "{ name = \"rest\", max_concurrency = 2, soak = \"2s\", approval = var.approve_rest },",
            "{ name = \"east\", selector = { region = \"cn-east\" } },",
        ),
    );
    let out = w.run(&["plan"]).expect(1);
    let err = flat_stderr(&out);
    assert!(
        err.contains("invalid rollout waves in rollout.checkout")
            && err.contains("members in no wave: gz-1")
            && err.contains("end `waves` with one that sets neither `selector` nor `members`"),
        "{err}"
    );
    assert!(err.contains("main.hcl"), "names the file: {err}");
}

#[test]
fn a_failure_within_the_budget_is_a_warning_and_pause_holds_until_resumed() {
    let w = fresh();
    let main = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &main
            .replace(
                "approval = var.approve_rest },",
                "approval = var.approve_rest, max_failures = 1 },",
            )
            .replace(
                "on_failure        = \"rollback\"",
                "on_failure        = \"pause\"\n  max_failures      = 1",
            ),
    );
    install(&w);
    // One failed member is within both budgets: a warning, and the rollout goes on.
    w.run(&["sandbox", "fault", "gz-1", "canary_analysis=fail"])
        .expect(0);
    let within = w
        .run(&["apply", "-auto-approve", "-var", "checkout_version=1.5.0"])
        .expect(0);
    let err = flat_stderr(&within);
    assert!(
        err.contains("rollout.checkout: member gz-1 failed")
            && err.contains("within the failure budget"),
        "{err}"
    );
    assert!(
        within.stdout.contains("sh-2: healthy at the new revision"),
        "{}",
        within.stdout
    );
    let status = w.run(&["rollout", "status", "checkout"]).expect(0).stdout;
    assert!(
        status.contains("completed") && status.contains("gz-1  failed"),
        "{status}"
    );

    // With no failure allowed for the whole rollout, the first failure is beyond the
    // budget: paused (the members in progress finish; none fails and passes, so none
    // starts after them), held until resumed.
    let main = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &main.replace("max_failures      = 1", "max_failures      = 0"),
    );
    w.run(&["sandbox", "fault", "sh-1", "canary_analysis=fail"])
        .expect(0);
    let v16 = ["apply", "-auto-approve", "-var", "checkout_version=1.6.0"];
    let paused = w.run(&v16).expect(1);
    let err = flat_stderr(&paused);
    assert!(
        err.contains("rollout.checkout failed and is paused"),
        "{err}"
    );
    assert!(
        !paused.stdout.contains("sh-2: rolling out"),
        "nothing new starts: {}",
        paused.stdout
    );
    let status = w.run(&["rollout", "status", "checkout"]).expect(0).stdout;
    assert!(status.contains("paused"), "{status}");
    let held = w.run(&v16).expect(1);
    let err = flat_stderr(&held);
    assert!(
        err.contains("rollout.checkout does not move") && err.contains("paused"),
        "{err}"
    );
    w.run(&["rollout", "resume", "checkout"]).expect(0);
    let resumed = w.run(&v16).expect(0);
    assert!(
        resumed.stdout.contains("sh-2: rolling out"),
        "{}",
        resumed.stdout
    );
    assert!(
        !resumed.stdout.contains("bj-1: rolling out"),
        "{}",
        resumed.stdout
    );
    assert_eq!(images(&w), everywhere("1.6.0"));
}

/// Sets `data.status` of the ConfigMap `default/checkout-slo` in a member.
fn set_slo(w: &Work, member: &str, status: &str) {
    with_cluster(w, member, async |client| {
        let resource = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &resource);
        let cm: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "checkout-slo"},
            "data": {"status": status},
        }))
        .unwrap();
        api.patch(
            "checkout-slo",
            &kube::api::PatchParams::apply("slo-test").force(),
            &kube::api::Patch::Apply(cm),
        )
        .await
        .expect("apply the ConfigMap");
    });
}

#[test]
fn an_extra_check_failing_on_a_member_rolls_the_fleet_back() {
    let w = fresh();
    with_checks(
        &w,
        "[{\n    name   = \"slo\"\n    object = { kind = \"ConfigMap\", name = \"checkout-slo\", namespace = \"default\" }\n    field  = \"data.status\"\n    equals = \"ok\"\n  }]",
    );
    // The clusters exist (and keep their objects) before the first apply.
    let mut up = vec!["sandbox", "up"];
    for m in MEMBERS {
        up.extend(["--name", m]);
    }
    w.run(&up).expect(0);
    w.run(&["sandbox", "down"]).expect(0);
    for m in MEMBERS {
        set_slo(&w, m, "ok");
    }
    install(&w);
    assert_eq!(images(&w), everywhere("1.4.0"));

    set_slo(&w, "gz-1", "degraded");
    let plan = w.run(&["plan", "-var", "checkout_version=1.5.0"]).expect(0);
    assert!(
        plan.stdout
            .contains("gate: kube_manifest.canary healthy at the revision applied and check slo"),
        "{}",
        plan.stdout
    );
    fails_the_check_and_rolls_back(&w, "check slo: data.status is \"degraded\", not \"ok\"");
}

/// The apply to 1.5.0 fails `gz-1` on `why` and puts every touched member back on 1.4.0.
fn fails_the_check_and_rolls_back(w: &Work, why: &str) {
    let failed = w
        .run(&["apply", "-auto-approve", "-var", "checkout_version=1.5.0"])
        .expect(1);
    assert!(
        failed.stdout.contains(&format!("gz-1: failed: {why}")),
        "{}",
        failed.stdout
    );
    let err = flat_stderr(&failed);
    assert!(
        err.contains("rollout.checkout failed and was rolled back"),
        "{err}"
    );
    assert_eq!(images(w), everywhere("1.4.0"));
}

/// The example with `checks` (HCL) added to its rollout.
fn with_checks(w: &Work, checks: &str) {
    let main = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &main.replace(
            "progress_deadline = \"1m\"",
            &format!("progress_deadline = \"1m\"\n  checks = {checks}"),
        ),
    );
}

#[test]
fn a_new_revision_mid_rollout_supersedes_it_or_folds_into_it() {
    let w = installed();
    let with = |version: &str| {
        vec![
            "-var".to_string(),
            format!("checkout_version={version}"),
            "-var".to_string(),
            "approve_rest=true".to_string(),
        ]
    };
    let run = |cmd: &str, version: &str| {
        let mut args = vec![cmd.to_string()];
        if cmd == "apply" {
            args.push("-auto-approve".into());
        }
        args.extend(with(version));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        w.run(&args)
    };
    run("apply", "1.5.0").expect(4);
    w.run(&["rollout", "approve", "checkout"]).expect(0);
    // 1.6.0 before 1.5.0 reached wave 2: by default it starts again, approvals asked again.
    let plan = run("plan", "1.6.0").expect(0);
    assert!(
        plan.stdout.contains(
            "supersedes the unfinished rollout of ghcr.io/acme/checkout:1.5.0 (stopped in wave 2 of 2, progressing): starts again from wave 1"
        ) && plan.stdout.contains("needs approval"),
        "{}",
        plan.stdout
    );
    // Folded into it, wave 2's approval carries over: the apply goes through both waves.
    let main = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &main.replace(
            "on_failure        = \"rollback\"",
            "on_failure        = \"rollback\"\n  on_change         = \"fold\"",
        ),
    );
    let folded = run("apply", "1.6.0").expect(0);
    assert!(
        folded
            .stdout
            .contains("folds into the unfinished rollout of ghcr.io/acme/checkout:1.5.0")
            && folded.stdout.contains("approved by"),
        "{}",
        folded.stdout
    );
    assert!(
        folded.stdout.contains("rollout complete"),
        "{}",
        folded.stdout
    );
    assert_eq!(images(&w), everywhere("1.6.0"));
}

#[test]
fn a_resource_keyed_by_the_waves_members_joins_their_waves() {
    let (w, _) = example("fleet-rollout");
    let main = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    w.write(
        "main.hcl",
        &format!(
            r#"{main}
provider "kube" {{
  alias    = "site"
  for_each = toset(["bj-1", "gz-1", "sh-1", "sh-2"])
  sandbox  = each.key
}}

# A banner on the canary wave's members, moved with each of them.
resource "kube_manifest" "banner" {{
  for_each = toset(rollout.checkout.wave_members["canary"])
  provider = kube.site[each.key]
  manifest = {{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = {{ name = "banner", namespace = "default" }}
    data       = {{ version = var.checkout_version }}
  }}
}}
"#
        ),
    );
    install(&w);
    let v15 = ["-var", "checkout_version=1.5.0"];
    let plan = w.run(&[&["plan"][..], &v15].concat()).expect(0);
    assert!(
        plan.stdout
            .contains("bj-1  2 to change (kube_manifest.banner, kube_manifest.deployment)"),
        "{}",
        plan.stdout
    );
    let out = w
        .run(&[&["apply", "-auto-approve"][..], &v15].concat())
        .expect(0)
        .stdout;
    let banner = line_of(&out, "kube_manifest.banner[\"bj-1\"]: Modifying...");
    assert!(
        line_of(&out, "rollout.checkout: bj-1: rolling out") < banner
            && banner < line_of(&out, "rollout.checkout: bj-1: healthy at the new revision"),
        "the banner moves inside bj-1's gates:\n{out}"
    );
}

#[test]
fn an_apply_stopped_with_ctrl_c_during_wave_two_resumes_at_wave_two() {
    let w = installed();
    let v15 = ["-var", "checkout_version=1.5.0"];
    let mut running = w.spawn_until(
        &[&["apply", "-auto-approve"][..], &v15].concat(),
        "rollout.checkout: gz-1: rolling out",
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(running.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("Ctrl-C");
    let rest: Vec<String> = running.lines.by_ref().map_while(Result::ok).collect();
    let status = running.child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "{rest:?}");
    // State says where it stopped: wave 1 done, wave 2 in progress.
    let status = w.run(&["rollout", "status", "checkout"]).expect(0).stdout;
    assert!(status.contains("progressing at wave 2 of 2"), "{status}");
    let again = w
        .run(&[&["apply", "-auto-approve"][..], &v15].concat())
        .expect(0);
    assert!(!again.stdout.contains("wave 1 of 2"), "{}", again.stdout);
    assert!(
        again.stdout.contains("rollout complete"),
        "{}",
        again.stdout
    );
    assert_eq!(images(&w), everywhere("1.5.0"));
}

#[test]
fn an_abort_asked_for_during_the_apply_stops_it_after_the_canary() {
    let w = installed();
    let v15 = ["-var", "checkout_version=1.5.0"];
    let running = w.spawn_until(
        &[&["apply", "-auto-approve"][..], &v15].concat(),
        "rollout.checkout: bj-1: rolling out",
    );
    // The apply holds the lock: the abort is left for it.
    let asked = w.run(&["rollout", "abort", "checkout"]).expect(0);
    assert!(
        asked
            .stdout
            .contains("left a request to abort rollout.checkout"),
        "{}",
        asked.stdout
    );
    let (code, rest, stderr) = running.finish();
    assert_eq!(code, 1, "{rest}\n{stderr}");
    // bj-1 was in progress: it finished its gate; nothing else started.
    assert!(rest.contains("bj-1: healthy at the new revision"), "{rest}");
    assert!(!rest.contains("wave 2 of 2"), "{rest}");
    assert!(stderr.contains("rollout.checkout aborted by"), "{stderr}");
    let mut expected = everywhere("1.4.0");
    expected[0].1 = Some("ghcr.io/acme/checkout:1.5.0".into());
    assert_eq!(images(&w), expected);
    let status = w.run(&["rollout", "status", "checkout"]).expect(0).stdout;
    assert!(status.contains("aborted: aborted by"), "{status}");
    // The aborted revision does not move again until it is cleared.
    let plan = w.run(&[&["plan"][..], &v15].concat()).expect(0).stdout;
    assert!(
        plan.contains("this revision's rollout was aborted"),
        "{plan}"
    );
    w.run(&["rollout", "resume", "checkout"]).expect(0);
    w.run(&[&["apply", "-auto-approve"][..], &v15].concat())
        .expect(0);
    assert_eq!(images(&w), everywhere("1.5.0"));
}

/// A health endpoint on loopback for the rollout's HTTP check: `/health/MEMBER` answers 200,
/// or 503 for the members in `failing`; every path asked is kept. Stopped when dropped.
struct Health {
    url: String,
    failing: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Health {
    fn start() -> Health {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let failing = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (f, a, s) = (failing.clone(), asked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split(' ').nth(1).unwrap_or("").to_string();
                let member = path.strip_prefix("/health/").unwrap_or("").to_string();
                let down = f.lock().unwrap().contains(&member);
                a.lock().unwrap().push(path);
                let (status, body) = if down {
                    ("503 Service Unavailable", r#"{"status":"down"}"#)
                } else {
                    ("200 OK", r#"{"status":"up"}"#)
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Health {
            url,
            failing,
            asked,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn an_http_check_failing_on_a_member_rolls_the_fleet_back() {
    let health = Health::start();
    let w = fresh();
    // A check names what it reads: an object or an endpoint, exactly one.
    let plain = std::fs::read_to_string(w.path("main.hcl")).unwrap();
    with_checks(
        &w,
        "[{ name = \"health\", field = \"status_code\", equals = 200 }]",
    );
    let refused = w.run(&["plan"]).expect(1);
    assert!(
        flat_stderr(&refused).contains("give exactly one of them"),
        "{}",
        refused.stderr
    );
    w.write("main.hcl", &plain);
    with_checks(
        &w,
        &format!(
            "[{{\n    name   = \"health\"\n    http   = {{ url = \"{}/health/{{member}}\" }}\n    field  = \"status_code\"\n    equals = 200\n  }}]",
            health.url
        ),
    );
    install(&w);
    let asked = health.asked.lock().unwrap().clone();
    for m in MEMBERS {
        assert!(
            asked.contains(&format!("/health/{m}")),
            "each member's own endpoint is checked: {asked:?}"
        );
    }
    health.failing.lock().unwrap().push("gz-1".into());
    fails_the_check_and_rolls_back(&w, "check health: status_code is 503, not 200");
}
