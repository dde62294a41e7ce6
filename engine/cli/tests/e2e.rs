//! End-to-end: the real `flotilla` binary on scratch configurations.

mod support;

use std::time::{Duration, Instant};

use support::Work;

const BASIC: &str = r#"variable "name" {
  default = "web"
}

resource "builtin_data" "app" {
  input = "${var.name}-app"
}

resource "builtin_data" "pinned" {
  input            = builtin_data.app.output
  triggers_replace = var.name == "web" ? "v1" : "v2"
}

resource "builtin_file" "out" {
  path    = "out/app.txt"
  content = builtin_data.pinned.output
}

output "app" {
  value = builtin_data.app.output
}
"#;

#[test]
fn apply_then_plan_is_clean_and_changes_show_up() {
    let w = Work::new(&[("main.hcl", BASIC)]);
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        applied
            .stdout
            .contains("Apply complete! Resources: 3 added, 0 changed, 0 destroyed."),
        "{}",
        applied.stdout
    );
    assert!(applied.stdout.contains("app = \"web-app\""));
    assert_eq!(
        std::fs::read_to_string(w.path("out/app.txt")).unwrap(),
        "web-app"
    );
    let mut addrs = w.state_addresses();
    addrs.sort();
    assert_eq!(
        addrs,
        [
            "builtin_data.app",
            "builtin_data.pinned",
            "builtin_file.out"
        ]
    );

    let clean = w.run(&["plan", "-detailed-exitcode"]).expect(0);
    assert!(clean.stdout.contains("No changes."), "{}", clean.stdout);

    // A variable change: exit 2, an in-place update of app, a replacement of pinned.
    let changed = w
        .run(&["plan", "-detailed-exitcode", "-var", "name=api"])
        .expect(2);
    assert!(
        changed
            .stdout
            .contains("# builtin_data.app will be updated in place"),
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains(r#"~ input  = "web-app" -> "api-app""#),
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains("# builtin_data.pinned must be replaced")
    );
    assert!(
        changed
            .stdout
            .contains(r#"~ triggers_replace = "v1" -> "v2" # forces replacement"#),
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains("Plan: 1 to add, 2 to change, 1 to destroy."),
        "{}",
        changed.stdout
    );

    // -replace forces a replacement with its reason.
    let replaced = w.run(&["plan", "-replace=builtin_data.app"]).expect(0);
    assert!(
        replaced
            .stdout
            .contains("# builtin_data.app must be replaced\n  # (because requested with -replace)"),
        "{}",
        replaced.stdout
    );

    let applied = w
        .run(&["apply", "-auto-approve", "-var", "name=api"])
        .expect(0);
    assert!(
        applied.stdout.contains("1 added, 2 changed, 1 destroyed"),
        "{}",
        applied.stdout
    );
    assert_eq!(
        std::fs::read_to_string(w.path("out/app.txt")).unwrap(),
        "api-app"
    );
    w.run(&["plan", "-detailed-exitcode", "-var", "name=api"])
        .expect(0);

    let destroyed = w
        .run(&["destroy", "-auto-approve", "-var", "name=api"])
        .expect(0);
    assert!(
        destroyed
            .stdout
            .contains("Destroy complete! Resources: 3 destroyed."),
        "{}",
        destroyed.stdout
    );
    assert!(w.state_addresses().is_empty());
    assert!(w.state()["outputs"].as_object().unwrap().is_empty());
    assert!(!w.path("out/app.txt").exists());
}

#[test]
fn drift_is_detected_and_refresh_only_accepts_it() {
    let w = Work::new(&[("main.hcl", BASIC)]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    std::fs::write(w.path("out/app.txt"), "edited by hand").unwrap();
    let plan = w.run(&["plan", "-detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout.contains("# builtin_file.out has changed"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# builtin_file.out will be updated in place")
    );
    w.run(&["plan", "-refresh=false", "-detailed-exitcode"])
        .expect(0);
    w.run(&["apply", "-refresh-only", "-auto-approve"])
        .expect(0);
    assert_eq!(
        w.state()["resources"]["builtin_file.out"]["attributes"]["content"],
        "edited by hand"
    );
    std::fs::remove_file(w.path("out/app.txt")).unwrap();
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout.contains("# builtin_file.out has been deleted"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("# builtin_file.out will be created"),
        "{}",
        plan.stdout
    );
}

#[test]
fn saved_plans_apply_exactly_and_stale_ones_are_refused() {
    let w = Work::new(&[("main.hcl", BASIC)]);
    w.run(&["plan", "-out=first.plan"]).expect(0);
    w.run(&["plan", "-out=second.plan"]).expect(0);
    let shown = w.run(&["show", "first.plan"]).expect(0);
    assert!(shown.stdout.contains("Plan: 3 to add"), "{}", shown.stdout);
    let applied = w.run(&["apply", "first.plan"]).expect(0);
    assert!(applied.stdout.contains("3 added"), "{}", applied.stdout);
    let stale = w.run(&["apply", "second.plan"]).expect(1);
    assert!(
        stale.stderr.contains("saved plan is stale") && stale.stderr.contains("state changed"),
        "{}",
        stale.stderr
    );

    w.run(&["plan", "-out=third.plan", "-var", "name=api"])
        .expect(0);
    w.write("main.hcl", &BASIC.replace("-app", "-svc"));
    let stale = w.run(&["apply", "third.plan"]).expect(1);
    assert!(
        stale.stderr.contains("configuration changed"),
        "{}",
        stale.stderr
    );

    let mut bytes = std::fs::read(w.path("third.plan")).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(w.path("third.plan"), bytes).unwrap();
    let bad = w.run(&["apply", "third.plan"]).expect(1);
    assert!(
        bad.stderr.contains("not a valid flotilla plan file"),
        "{}",
        bad.stderr
    );
}

#[test]
fn corrupt_and_future_state_is_refused_and_left_alone() {
    let w = Work::new(&[("main.hcl", BASIC)]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    let original = std::fs::read_to_string(w.path("flotilla.state.json")).unwrap();

    let edited = original.replace("web-app", "wab-app");
    std::fs::write(w.path("flotilla.state.json"), &edited).unwrap();
    let run = w.run(&["plan"]).expect(1);
    assert!(
        run.stderr.contains("is corrupt") && run.stderr.contains(".backup"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(w.path("flotilla.state.json")).unwrap(),
        edited,
        "nothing overwritten"
    );

    std::fs::write(
        w.path("flotilla.state.json"),
        &original[..original.len() / 2],
    )
    .unwrap();
    let run = w.run(&["apply", "-auto-approve"]).expect(1);
    assert!(run.stderr.contains("is corrupt"), "{}", run.stderr);

    let future = original.replace("\"format_version\": 2", "\"format_version\": 7");
    std::fs::write(w.path("flotilla.state.json"), &future).unwrap();
    let run = w.run(&["plan"]).expect(1);
    assert!(
        run.stderr.contains("format version 7") && run.stderr.contains("upgrade flotilla"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_held_lock_fails_with_the_holder_after_the_timeout() {
    let slow = r#"
resource "builtin_sleep" "wait" {
  create_duration = "3s"
}
"#;
    let w = Work::new(&[("main.hcl", slow)]);
    let mut running = w.spawn_until(
        &["apply", "-auto-approve"],
        "builtin_sleep.wait: Creating...",
    );
    let start = Instant::now();
    let run = w.run(&["plan", "-lock-timeout=300ms"]).expect(1);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(
        run.stderr.contains("state is locked by") && run.stderr.contains("(pid "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("running `apply`"), "{}", run.stderr);
    running.lines.for_each(drop);
    assert!(running.child.wait().unwrap().success());
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}

#[test]
fn a_killed_apply_leaves_state_matching_what_exists() {
    // Five steps, each a wait followed by a file that depends on it.
    let mut config = String::new();
    for i in 0..5 {
        let after = if i == 0 {
            String::new()
        } else {
            format!("  triggers = {{ after = builtin_file.f{}.id }}\n", i - 1)
        };
        config.push_str(&format!(
            "resource \"builtin_sleep\" \"s{i}\" {{\n  create_duration = \"400ms\"\n{after}}}\n\nresource \"builtin_file\" \"f{i}\" {{\n  path    = \"out/f{i}.txt\"\n  content = builtin_sleep.s{i}.id\n}}\n\n"
        ));
    }
    let w = Work::new(&[("main.hcl", &config)]);
    let mut running = w.spawn_until(
        &["apply", "-auto-approve"],
        "builtin_file.f1: Creation complete",
    );
    std::thread::sleep(Duration::from_millis(150));
    running.child.kill().unwrap();
    running.child.wait().unwrap();

    let listed = w.run(&["state", "list"]).expect(0);
    let in_state: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|l| l.starts_with("builtin_file."))
        .collect();
    let on_disk: Vec<String> = (0..5)
        .filter(|i| w.path(&format!("out/f{i}.txt")).exists())
        .map(|i| format!("builtin_file.f{i}"))
        .collect();
    assert!(
        on_disk.len() >= 2,
        "the apply was killed after f1 was created: {on_disk:?}"
    );
    assert!(
        on_disk.len() < 5,
        "the apply should have been interrupted: {on_disk:?}"
    );
    assert_eq!(
        in_state, on_disk,
        "state lists exactly the files that exist"
    );

    // The next apply picks up where the killed one stopped.
    let resumed = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(resumed.stderr.contains("recovered"), "{}", resumed.stderr);
    assert!((0..5).all(|i| w.path(&format!("out/f{i}.txt")).exists()));
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}

#[test]
fn instances_of_a_resource_run_side_by_side_after_what_they_need() {
    // Apply's execution graph has a node per planned instance: the four waits start
    // together, and the files, which need every wait, start only after all of them.
    let config = r#"
resource "builtin_sleep" "wait" {
  count           = 4
  create_duration = "600ms"
}

resource "builtin_file" "after" {
  count   = 2
  path    = "out/after${count.index}.txt"
  content = join(",", builtin_sleep.wait[*].id)
}
"#;
    let w = Work::new(&[("main.hcl", config)]);
    let out = w
        .run(&["apply", "-auto-approve", "-parallelism=4"])
        .expect(0);
    let at = |needle: &str| {
        out.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}:\n{}", out.stdout))
    };
    let first_done = (0..4)
        .map(|i| at(&format!("builtin_sleep.wait[{i}]: Creation complete")))
        .min()
        .unwrap();
    for i in 0..4 {
        assert!(
            at(&format!("builtin_sleep.wait[{i}]: Creating...")) < first_done,
            "all waits start before one finishes:\n{}",
            out.stdout
        );
    }
    // ("Creation complete" is printed once the journal holds it, which may be after the
    // next operation started; what the files hold shows they waited for every wait.)
    for i in 0..2 {
        let text = std::fs::read_to_string(w.path(&format!("out/after{i}.txt"))).unwrap();
        let ids: Vec<&str> = text.split(',').filter(|id| !id.is_empty()).collect();
        assert_eq!(ids.len(), 4, "{text}");
    }
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}

#[test]
fn destroy_removes_dependents_first_and_a_failed_deletion_keeps_what_it_needs() {
    // base <- mid <- top (two instances), and a separate file.
    let config = r#"
resource "builtin_file" "base" {
  path    = "out/base.txt"
  content = "base"
}

resource "builtin_file" "mid" {
  path    = "out/mid.txt"
  content = builtin_file.base.id
}

resource "builtin_file" "top" {
  count   = 2
  path    = "out/top${count.index}.txt"
  content = builtin_file.mid.id
}

resource "builtin_file" "alone" {
  path    = "out/alone.txt"
  content = "alone"
}
"#;
    let w = Work::new(&[("main.hcl", config)]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    let out = w
        .run(&["destroy", "-auto-approve", "-parallelism=4"])
        .expect(0);
    // "Destruction complete" is printed once the journal has it, which may be after the
    // next deletion started; the order deletions start in is the order that matters.
    let started = |addr: &str| {
        out.stdout
            .find(&format!("{addr}: Destroying"))
            .unwrap_or_else(|| panic!("{addr} started:\n{}", out.stdout))
    };
    assert!(
        started("builtin_file.top[0]") < started("builtin_file.mid"),
        "{}",
        out.stdout
    );
    assert!(
        started("builtin_file.top[1]") < started("builtin_file.mid"),
        "{}",
        out.stdout
    );
    assert!(
        started("builtin_file.mid") < started("builtin_file.base"),
        "{}",
        out.stdout
    );
    assert!(w.run(&["state", "list"]).expect(0).stdout.is_empty());

    // A deletion that fails keeps everything it depended on, and nothing else waits.
    w.run(&["apply", "-auto-approve"]).expect(0);
    std::fs::remove_file(w.path("out/mid.txt")).unwrap();
    std::fs::create_dir(w.path("out/mid.txt")).unwrap();
    std::fs::write(w.path("out/mid.txt/blocker"), "x").unwrap();
    let failed = w
        .run(&["destroy", "-auto-approve", "-refresh=false"])
        .expect(1);
    assert!(
        failed.stderr.contains("cannot delete resource"),
        "{}",
        failed.stderr
    );
    let left = w.run(&["state", "list"]).expect(0).stdout;
    assert_eq!(
        left, "builtin_file.base\nbuiltin_file.mid\n",
        "{}",
        failed.stdout
    );
    assert!(w.path("out/base.txt").exists());
}

#[test]
fn a_failed_resource_skips_dependents_and_keeps_the_rest() {
    let config = r#"
resource "builtin_data" "ok" {
  input = "fine"
}

resource "builtin_file" "bad" {
  path    = "blocker/file.txt"
  content = "x"
}

resource "builtin_data" "after_bad" {
  input = builtin_file.bad.id
}
"#;
    let w = Work::new(&[("main.hcl", config)]);
    // A regular file where a directory is needed makes the write fail.
    w.write("blocker", "not a directory");
    let run = w.run(&["apply", "-auto-approve"]).expect(1);
    assert!(
        run.stderr.contains("cannot create resource")
            || run.stderr.contains("cannot create directory"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("state records exactly what exists"),
        "{}",
        run.stderr
    );
    assert_eq!(w.state_addresses(), ["builtin_data.ok"]);
}

#[test]
fn sensitive_values_never_appear_in_output() {
    let secret = "hunter2-S3CRET-value";
    let config = r#"
variable "password" {
  type      = string
  sensitive = true
}

resource "builtin_file" "creds" {
  path              = "out/creds.txt"
  sensitive_content = "user=admin password=${var.password}"
}

resource "builtin_data" "derived" {
  input = { user = "admin", password = var.password, length = length(var.password) }
}

output "password" {
  value     = var.password
  sensitive = true
}

output "derived" {
  value     = builtin_data.derived.output
  sensitive = true
}
"#
    .to_string();
    let w = Work::new(&[("main.hcl", &config)]);
    let var = format!("password={secret}");
    let mut everything = String::new();
    for args in [
        vec!["plan", "-var", &var],
        vec!["plan", "-json", "-var", &var],
        vec!["plan", "-out=p.plan", "-var", &var],
        vec!["show", "p.plan"],
        vec!["show", "-json", "p.plan"],
        vec!["apply", "-auto-approve", "-var", &var],
        vec!["show"],
        vec!["show", "-json"],
        vec!["output"],
        vec!["output", "-json"],
        vec!["output", "password"],
        vec!["state", "show", "builtin_data.derived"],
        vec!["plan", "-var", "password=changed-S3CRET"],
    ] {
        let run = w.run(&args);
        everything.push_str(&run.stdout);
        everything.push_str(&run.stderr);
    }
    let console = {
        use std::io::Write;
        let mut child = w
            .command(&["console", "-var", &var])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"var.password\nupper(var.password)\nbuiltin_data.derived.output\n")
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    everything.push_str(&console);
    assert!(
        !everything.contains(secret),
        "a sensitive value leaked:\n{everything}"
    );
    assert!(
        !everything.contains("changed-S3CRET"),
        "a sensitive value leaked:\n{everything}"
    );
    assert!(everything.contains("(sensitive value)"));
    // var.password, upper(...), and two attributes of the derived object (password, length).
    assert_eq!(console.matches("(sensitive value)").count(), 4, "{console}");
    assert_eq!(
        std::fs::read_to_string(w.path("out/creds.txt")).unwrap(),
        format!("user=admin password={secret}")
    );
}

#[test]
fn state_commands_list_show_move_and_remove() {
    let config = r#"
resource "builtin_data" "item" {
  count = 2
  input = count.index
}
"#;
    let w = Work::new(&[("main.hcl", config)]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    let list = w.run(&["state", "list"]).expect(0);
    assert_eq!(list.stdout, "builtin_data.item[0]\nbuiltin_data.item[1]\n");
    let show = w.run(&["state", "show", "builtin_data.item[1]"]).expect(0);
    assert!(show.stdout.contains("input  = 1"), "{}", show.stdout);
    let missing = w.run(&["state", "show", "builtin_data.item[7]"]).expect(1);
    assert!(
        missing.stderr.contains("not in state"),
        "{}",
        missing.stderr
    );
    w.run(&["state", "mv", "builtin_data.item", "builtin_data.thing"])
        .expect(0);
    assert_eq!(
        w.run(&["state", "list"]).stdout,
        "builtin_data.thing[0]\nbuiltin_data.thing[1]\n"
    );
    let rm = w.run(&["state", "rm", "builtin_data.thing[0]"]).expect(0);
    assert!(rm.stdout.contains("Removed builtin_data.thing[0]"));
    assert_eq!(w.run(&["state", "list"]).stdout, "builtin_data.thing[1]\n");
    // The config still says `item`, so the plan creates two and deletes the renamed one.
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("Plan: 2 to add, 0 to change, 1 to destroy."),
        "{}",
        plan.stdout
    );
}

#[test]
fn moved_blocks_and_modules() {
    let child = r#"
variable "name" {
  type = string
}

resource "builtin_data" "thing" {
  input = upper(var.name)
}

output "shout" {
  value = builtin_data.thing.output
}
"#;
    let root = r#"
module "first" {
  source = "./modules/thing"
  name   = "a"
}

module "many" {
  source   = "./modules/thing"
  for_each = toset(["x", "y"])
  name     = each.key
}

output "all" {
  value = concat([module.first.shout], [for m in module.many : m.shout])
}
"#;
    let w = Work::new(&[("main.hcl", root), ("modules/thing/main.hcl", child)]);
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(applied.stdout.contains("3 added"), "{}", applied.stdout);
    let mut addrs = w.state_addresses();
    addrs.sort();
    assert_eq!(
        addrs,
        [
            "module.first.builtin_data.thing",
            "module.many[\"x\"].builtin_data.thing",
            "module.many[\"y\"].builtin_data.thing"
        ]
    );
    assert!(applied.stdout.contains("\"A\","), "{}", applied.stdout);

    let renamed = root
        .replace("module \"first\"", "module \"primary\"")
        .replace("module.first.shout", "module.primary.shout")
        + "\nmoved {\n  from = module.first\n  to   = module.primary\n}\n";
    w.write("main.hcl", &renamed);
    let plan = w.run(&["plan", "-detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout.contains(
            "# module.first.builtin_data.thing has moved to module.primary.builtin_data.thing"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("0 to add, 0 to change, 0 to destroy, 1 to move"),
        "{}",
        plan.stdout
    );
    w.run(&["apply", "-auto-approve"]).expect(0);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}

/// Resources with many instances are planned in several tasks at once: every instance is
/// planned once, references by key see the right instance, and a failing instance is
/// reported once, by its address, among hundreds that succeed.
#[test]
fn many_instances_plan_together_and_failures_name_their_instance() {
    let config = r#"
variable "limit" {
  default = 1000
}

locals {
  items = { for i in range(400) : "k${i}" => i }
}

resource "builtin_data" "a" {
  for_each = local.items
  input    = each.value
}

resource "builtin_data" "b" {
  for_each = local.items
  input    = builtin_data.a[each.key].output * 2
}

resource "builtin_data" "c" {
  count = 300
  input = count.index
  lifecycle {
    precondition {
      condition     = count.index < var.limit
      error_message = "index over the limit."
    }
    postcondition {
      condition     = self.output == count.index
      error_message = "output differs from input."
    }
  }
}

output "b_k399" {
  value = builtin_data.b["k399"].output
}

output "counts" {
  value = [length(builtin_data.a), length(builtin_data.b), length(builtin_data.c)]
}
"#;
    let w = Work::new(&[("main.hcl", config)]);
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        applied
            .stdout
            .contains("Resources: 1100 added, 0 changed, 0 destroyed."),
        "{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains("b_k399 = 798"),
        "{}",
        applied.stdout
    );
    assert_eq!(w.state_addresses().len(), 1100);
    let clean = w.run(&["plan", "-detailed-exitcode"]).expect(0);
    assert!(clean.stdout.contains("No changes."), "{}", clean.stdout);
    let json = w.run(&["plan", "-json"]).expect(0);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let changes = plan["resource_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1100, "each instance planned once");
    assert_eq!(
        plan["output_changes"]["counts"]["after"],
        serde_json::json!([400, 400, 300])
    );

    let failed = w.run(&["plan", "-var", "limit=299"]).expect(1);
    assert_eq!(
        failed.stderr.matches("precondition failed").count(),
        1,
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("builtin_data.c[299]: index over the limit."),
        "{}",
        failed.stderr
    );
}

/// Removing a key from a protected `for_each` names the instance that would go.
#[test]
fn prevent_destroy_names_a_removed_instance() {
    let config = |keys: &str| {
        format!(
            r#"
resource "builtin_data" "kept" {{
  for_each = toset([{keys}])
  input    = each.key
  lifecycle {{
    prevent_destroy = true
  }}
}}
"#
        )
    };
    let w = Work::new(&[("main.hcl", &config(r#""a", "b", "c""#))]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    w.write("main.hcl", &config(r#""a", "c""#));
    let refused = w.run(&["plan"]).expect(1);
    assert!(
        refused
            .stderr
            .contains(r#"`builtin_data.kept["b"]` has `lifecycle"#),
        "{}",
        refused.stderr
    );
    assert_eq!(
        refused
            .stderr
            .matches("instance cannot be destroyed")
            .count(),
        1
    );
}

#[test]
fn prevent_destroy_and_targets() {
    let config = r#"
resource "builtin_data" "precious" {
  input = "keep"
  lifecycle {
    prevent_destroy = true
  }
}

resource "builtin_data" "a" {
  input = "a"
}

resource "builtin_data" "b" {
  input = builtin_data.a.output
}
"#;
    let w = Work::new(&[("main.hcl", config)]);
    let targeted = w
        .run(&["apply", "-auto-approve", "-target=builtin_data.b"])
        .expect(0);
    assert!(targeted.stdout.contains("2 added"), "{}", targeted.stdout);
    let mut addrs = w.state_addresses();
    addrs.sort();
    assert_eq!(addrs, ["builtin_data.a", "builtin_data.b"]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    let refused = w.run(&["destroy", "-auto-approve"]).expect(1);
    assert!(
        refused.stderr.contains("instance cannot be destroyed"),
        "{}",
        refused.stderr
    );
    assert_eq!(w.state_addresses().len(), 3, "nothing destroyed");
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let w = Work::new(&[("main.hcl", BASIC)]);
    let run = w.run(&["apply"]).expect(1);
    assert!(run.stderr.contains("pass -auto-approve"), "{}", run.stderr);
    assert!(!w.has_state() || w.state_addresses().is_empty());
}

#[test]
fn variables_from_files_environment_and_flags() {
    let config = r#"
variable "a" { type = string }
variable "b" { type = list(number) }
variable "c" { default = "default" }

output "all" {
  value = "${var.a}/${join(",", var.b)}/${var.c}"
}
"#;
    let w = Work::new(&[
        ("main.hcl", config),
        ("prod.auto.vars.hcl", "a = \"file\"\nb = [1, 2]\n"),
        ("extra.vars.hcl", "c = \"varfile\"\n"),
    ]);
    let run = w
        .command(&[
            "apply",
            "-auto-approve",
            "-var-file=extra.vars.hcl",
            "-var",
            "b=[3]",
        ])
        .env("FLOTILLA_VAR_c", "env")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        out.contains(r#"all = "file/3/varfile""#),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn console_evaluates_against_config_and_state() {
    use std::io::Write;
    let w = Work::new(&[("main.hcl", BASIC)]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    let mut child = w
        .command(&["console"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"builtin_data.app.output\n[for s in [\"a\", \"b\"] : upper(s)]\nvar.nope\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, "\"web-app\"\n[\n  \"A\",\n  \"B\",\n]\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("undeclared input variable"));
}

#[test]
fn validate_fmt_graph_and_version() {
    let w = Work::new(&[("main.hcl", BASIC)]);
    let ok = w.run(&["validate"]).expect(0);
    assert!(ok.stdout.contains("The configuration is valid."));
    let json = w.run(&["validate", "-json"]).expect(0);
    assert!(json.stdout.contains("\"valid\": true"));

    w.write("ugly.hcl", "locals {\nx=1\n    longer_name =   2\n}\n");
    w.run(&["fmt", "-check"]).expect(3);
    let fixed = w.run(&["fmt"]).expect(0);
    assert_eq!(fixed.stdout, "ugly.hcl\n");
    assert_eq!(
        std::fs::read_to_string(w.path("ugly.hcl")).unwrap(),
        "locals {\n  x           = 1\n  longer_name = 2\n}\n"
    );
    w.run(&["fmt", "-check"]).expect(0);

    let dot = w.run(&["graph"]).expect(0);
    assert!(
        dot.stdout
            .contains("\"builtin_data.app\" -> \"builtin_data.pinned\""),
        "{}",
        dot.stdout
    );
    let mermaid = w.run(&["graph", "-format=mermaid"]).expect(0);
    assert!(mermaid.stdout.starts_with("flowchart LR"));

    let v = w.run(&["version"]).expect(0);
    assert!(v.stdout.starts_with("flotilla v"));
    let help = w.run(&["apply", "--help"]).expect(0);
    assert!(help.stdout.contains("Examples:"), "{}", help.stdout);
}

#[test]
fn ctrl_c_stops_scheduling_and_saves_state() {
    let config = r#"
resource "builtin_sleep" "first" {
  create_duration = "600ms"
}

resource "builtin_data" "after_first" {
  input = builtin_sleep.first.id
}

resource "builtin_sleep" "second" {
  create_duration = "600ms"
  triggers        = { after = builtin_data.after_first.id }
}
"#;
    let w = Work::new(&[("main.hcl", config)]);
    let running = w.spawn_until(&["apply", "-auto-approve"], "builtin_sleep.first: Creating");
    let (child, lines) = (running.child, running.lines);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        rest.iter()
            .any(|l| l.starts_with("builtin_sleep.first: Creation complete")),
        "the operation in flight finishes: {rest:?}"
    );
    assert!(
        !rest.iter().any(|l| l.contains("after_first")),
        "nothing new starts: {rest:?}"
    );
    assert!(stderr.contains("apply interrupted"), "{stderr}");
    assert_eq!(w.state_addresses(), ["builtin_sleep.first"]);
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
}

#[test]
fn an_old_object_an_interrupted_replacement_left_is_deleted_by_the_next_apply() {
    let w = Work::new(&[(
        "main.hcl",
        "resource \"builtin_file\" \"a\" {\n  path    = \"new.txt\"\n  content = \"new\"\n}\n",
    )]);
    w.run(&["apply", "-auto-approve"]).expect(0);
    // State as an apply killed between a create-before-destroy's two halves leaves it: the
    // new object recorded, the old one deposed (and still on disk).
    std::fs::write(w.path("old.txt"), "old").unwrap();
    let path = w.path("flotilla.state.json");
    let mut state =
        flotilla_state::format::decode(&std::fs::read(&path).unwrap(), "state").unwrap();
    let addr: flotilla_config::addr::ResourceInstanceAddr = "builtin_file.a".parse().unwrap();
    let mut old = state.resources[&addr].clone();
    old.attributes["path"] = serde_json::json!("old.txt");
    old.attributes["content"] = serde_json::json!("old");
    state.deposed.insert(addr, old);
    std::fs::write(&path, flotilla_state::format::encode(&state)).unwrap();

    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("# builtin_file.a (deposed object) will be destroyed")
            && plan
                .stdout
                .contains("Plan: 0 to add, 0 to change, 1 to destroy."),
        "{}",
        plan.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&w.run(&["plan", "-json"]).expect(0).stdout).unwrap();
    assert_eq!(json["deposed_changes"][0]["address"], "builtin_file.a");
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        applied.stdout.contains("0 added, 0 changed, 1 destroyed"),
        "{}",
        applied.stdout
    );
    assert!(!w.path("old.txt").exists(), "the old object is gone");
    assert!(w.path("new.txt").exists(), "the new one stays");
    assert!(w.state().get("deposed").is_none(), "{}", w.state());
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}
