//! Team state backends against real servers the tests start themselves: a PostgreSQL
//! cluster made with `initdb` on a free loopback port, and a sandbox Kubernetes API server
//! served by `flotilla sandbox up`. For each backend: a plan/apply/destroy round trip with
//! workspaces, two runs at once, a holder killed with -9, the store going away mid-apply;
//! then migration between all three backends, encryption, and force-unlock.

mod support;

use std::time::{Duration, Instant};

use support::Work;
use support::postgres::Postgres;

/// Five steps, each a wait and then a file that depends on it: an apply slow enough to
/// interrupt, whose effects are files a test can count.
fn chain(backend: &str) -> String {
    let mut config = format!("flotilla {{\n{backend}\n}}\n\n");
    for i in 0..5 {
        let after = if i == 0 {
            String::new()
        } else {
            format!("  triggers = {{ after = builtin_file.f{}.id }}\n", i - 1)
        };
        config.push_str(&format!(
            "resource \"builtin_sleep\" \"s{i}\" {{\n  create_duration = \"400ms\"\n{after}}}\n\nresource \"builtin_file\" \"f{i}\" {{\n  path    = \"out/${{flotilla.workspace}}/f{i}.txt\"\n  content = builtin_sleep.s{i}.id\n}}\n\n"
        ));
    }
    config.push_str("output \"workspace\" {\n  value = flotilla.workspace\n}\n");
    config
}

fn pg_backend(pg: &Postgres) -> String {
    format!(
        "  backend \"postgres\" {{\n    conn_str    = \"{}\"\n    schema_name = \"team\"\n  }}",
        pg.conn_str()
    )
}

const KUBE_BACKEND: &str = "  backend \"kubernetes\" {\n    sandbox       = \"mgmt\"\n    namespace     = \"default\"\n    secret_suffix = \"fleet\"\n  }";

/// The files the chain wrote in `workspace`.
fn files(w: &Work, workspace: &str) -> Vec<String> {
    (0..5)
        .filter(|i| w.path(&format!("out/{workspace}/f{i}.txt")).exists())
        .map(|i| format!("builtin_file.f{i}"))
        .collect()
}

fn files_in_state(w: &Work) -> Vec<String> {
    w.run(&["state", "list"])
        .expect(0)
        .stdout
        .lines()
        .filter(|l| l.starts_with("builtin_file."))
        .map(str::to_string)
        .collect()
}

/// A sandbox cluster `mgmt` served for `w` until dropped.
struct Served<'a>(&'a Work);

impl<'a> Served<'a> {
    fn up(w: &'a Work) -> Served<'a> {
        w.run(&["sandbox", "up", "--name", "mgmt"]).expect(0);
        Served(w)
    }
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["sandbox", "down"]);
    }
}

/// Apply, no-change plan, workspaces (each with its own state and `flotilla.workspace`),
/// destroy.
fn round_trip_with_workspaces(w: &Work) {
    w.run(&["init"]).expect(0);
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        applied.stdout.contains("workspace = \"default\""),
        "{}",
        applied.stdout
    );
    assert_eq!(files(w, "default").len(), 5);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
    assert!(
        !w.has_state(),
        "no local state file: the state is in the backend"
    );

    let created = w.run(&["workspace", "new", "staging"]).expect(0);
    assert!(created.stdout.contains("\"staging\""), "{}", created.stdout);
    assert_eq!(w.run(&["workspace", "show"]).expect(0).stdout, "staging\n");
    // A new workspace starts empty: everything is planned again, under its own name.
    w.run(&["plan", "-detailed-exitcode"]).expect(2);
    w.run(&["apply", "-auto-approve"]).expect(0);
    assert_eq!(files(w, "staging").len(), 5);
    let listed = w.run(&["workspace", "list"]).expect(0).stdout;
    assert_eq!(listed, "  default\n* staging\n");
    w.run(&["workspace", "new", "staging"]).expect(1);
    w.run(&["workspace", "select", "nope"]).expect(1);
    let refused = w.run(&["workspace", "delete", "staging"]).expect(1);
    assert!(refused.stderr.contains("selected"), "{}", refused.stderr);
    w.run(&["workspace", "select", "default"]).expect(0);
    let refused = w.run(&["workspace", "delete", "staging"]).expect(1);
    assert!(
        refused.stderr.contains("still records"),
        "{}",
        refused.stderr
    );
    // FLOTILLA_WORKSPACE selects too.
    w.run_with(
        &[("FLOTILLA_WORKSPACE", "staging")],
        &["destroy", "-auto-approve"],
    )
    .expect(0);
    assert!(files(w, "staging").is_empty());
    w.run(&["workspace", "delete", "staging"]).expect(0);
    assert_eq!(
        w.run(&["workspace", "list"]).expect(0).stdout,
        "* default\n"
    );
    w.run(&["destroy", "-auto-approve"]).expect(0);
    assert!(files(w, "default").is_empty());
}

/// A second run waits for the lock (`-lock-timeout`) or fails naming the holder; nothing
/// is lost either way.
fn two_runs_at_once(w: &Work) {
    let mut running = w.spawn_until(&["apply", "-auto-approve"], "builtin_sleep.s0: Creating...");
    let start = Instant::now();
    let refused = w
        .run(&["apply", "-auto-approve", "-lock-timeout=300ms"])
        .expect(1);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(
        refused.stderr.contains("state is locked by"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("running `apply`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("lock ID"), "{}", refused.stderr);
    // This one waits for the first to finish, then finds nothing to do.
    let waited = w
        .run(&["apply", "-auto-approve", "-lock-timeout=60s"])
        .expect(0);
    assert!(waited.stdout.contains("0 added"), "{}", waited.stdout);
    assert!(
        waited.stderr.contains("waiting up to 60s"),
        "{}",
        waited.stderr
    );
    running.lines.for_each(drop);
    assert!(running.child.wait().unwrap().success());
    assert_eq!(files(w, "default").len(), 5);
    assert_eq!(files_in_state(w), files(w, "default"));
    w.run(&["destroy", "-auto-approve"]).expect(0);
}

/// The holder killed with -9: its lock frees itself, its journal is recovered, and the
/// next apply converges.
fn holder_killed(w: &Work, lock_timeout: &str) {
    let mut running = w.spawn_until(
        &["apply", "-auto-approve"],
        "builtin_file.f1: Creation complete",
    );
    std::thread::sleep(Duration::from_millis(150));
    running.child.kill().unwrap();
    running.child.wait().unwrap();
    let on_disk = files(w, "default");
    assert!(
        (2..5).contains(&on_disk.len()),
        "killed after f1: {on_disk:?}"
    );
    let resumed = w
        .run(&[
            "apply",
            "-auto-approve",
            &format!("-lock-timeout={lock_timeout}"),
        ])
        .expect(0);
    assert!(resumed.stderr.contains("recovered"), "{}", resumed.stderr);
    assert_eq!(files(w, "default").len(), 5);
    assert_eq!(files_in_state(w), files(w, "default"));
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
    w.run(&["destroy", "-auto-approve"]).expect(0);
}

/// The store goes away mid-apply: a clear error, the state kept in a local file, and once
/// the store is back, `state push` of that file makes state match what exists.
fn store_goes_away(w: &Work, away: impl FnOnce(), back: impl FnOnce()) {
    let mut running = w.spawn_until(
        &["apply", "-auto-approve"],
        "builtin_file.f1: Creation complete",
    );
    away();
    let mut rest = String::new();
    for line in running.lines.by_ref() {
        rest.push_str(&line.unwrap());
        rest.push('\n');
    }
    let status = running.child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(running.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{rest}\n{stderr}");
    assert!(stderr.contains("flotilla.errored.state.json"), "{stderr}");
    assert!(stderr.contains("state push"), "{stderr}");
    back();
    // What was recorded before the store went away is in its journal, which the next read
    // replays: at least the two files whose completion was reported.
    let recorded = files_in_state(w);
    assert!(
        recorded.starts_with(&["builtin_file.f0".to_string(), "builtin_file.f1".to_string()]),
        "{recorded:?}"
    );
    let pushed = w
        .run(&[
            "state",
            "push",
            "flotilla.errored.state.json",
            "-lock-timeout=30s",
        ])
        .expect(0);
    assert!(pushed.stdout.contains("Pushed"), "{}", pushed.stdout);
    assert_eq!(
        files_in_state(w),
        files(w, "default"),
        "state records exactly what exists"
    );
    w.run(&["apply", "-auto-approve", "-lock-timeout=60s"])
        .expect(0);
    assert_eq!(files(w, "default").len(), 5);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
    w.run(&["destroy", "-auto-approve"]).expect(0);
}

/// A rollout of three files (`a` first, with a soak to act in; then `b` and `c`, behind an
/// approval when `approve` is set), under `backend`.
fn file_rollout(backend: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "main.hcl",
            format!(
                "flotilla {{\n{backend}\n}}\n\nvariable \"content\" {{\n  default = \"v1\"\n}}\n\nvariable \"approve\" {{\n  type    = bool\n  default = false\n}}\n\nmodule \"files\" {{\n  source  = \"./files\"\n  content = var.content\n  approve = var.approve\n}}\n"
            ),
        ),
        (
            "files/main.hcl",
            r#"variable "content" {}

variable "approve" {
  type = bool
}

locals {
  members = ["a", "b", "c"]
}

resource "builtin_file" "member" {
  for_each = toset(local.members)
  path     = "out/${each.key}.txt"
  content  = var.content
}

resource "builtin_rollout" "this" {
  name     = "files"
  revision = { content = var.content }
  members  = local.members
  manages  = ["builtin_file.member"]
  waves = [
    { name = "first", selected = ["a"], names = ["a"], max_concurrency = "1", soak = "3s", approval = false, max_failures = 0 },
    { name = "rest", selected = null, names = [], max_concurrency = "1", soak = "0s", approval = var.approve, max_failures = 0 },
  ]
}
"#
            .to_string(),
        ),
    ]
}

/// The three files' contents.
fn contents(w: &Work) -> Vec<String> {
    ["a", "b", "c"]
        .iter()
        .map(|m| std::fs::read_to_string(w.path(&format!("out/{m}.txt"))).unwrap_or_default())
        .collect()
}

/// `rollout approve` and `rollout pause` while an apply moves the rollout (the lock held):
/// each leaves a request in the store, which the running apply carries out, records, and
/// removes.
fn rollout_requests_reach_the_running_apply(w: &Work) {
    const SOAKING: &str = "module.files: wave 1 \"first\" healthy; soaking";
    w.run(&["init"]).expect(0);
    w.run(&["apply", "-auto-approve"]).expect(0);
    assert_eq!(contents(w), ["v1", "v1", "v1"]);

    // An approval for wave 2 given during wave 1: the apply does not stop at the gate.
    let v2 = [
        "apply",
        "-auto-approve",
        "-var",
        "content=v2",
        "-var",
        "approve=true",
    ];
    let running = w.spawn_until(&v2, SOAKING);
    let approved = w.run(&["rollout", "approve", "files"]).expect(0);
    assert!(
        approved.stdout.contains("State is locked by")
            && approved
                .stdout
                .contains("left the approval of wave 2 \"rest\" of module.files"),
        "{}",
        approved.stdout
    );
    let (code, out, err) = running.finish();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("wave 2 approved by"), "{out}");
    assert!(out.contains("rollout complete"), "{out}");
    assert_eq!(contents(w), ["v2", "v2", "v2"]);

    // A pause during wave 1: the apply starts nothing more and stops, paused.
    let v3 = [
        "apply",
        "-auto-approve",
        "-var",
        "content=v3",
        "-var",
        "approve=true",
    ];
    let running = w.spawn_until(&v3, SOAKING);
    let paused = w.run(&["rollout", "pause", "files"]).expect(0);
    assert!(
        paused
            .stdout
            .contains("left a request to pause module.files"),
        "{}",
        paused.stdout
    );
    let (code, out, err) = running.finish();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("pause asked by"), "{out}");
    assert!(err.contains("module.files paused by"), "{err}");
    assert!(err.contains("a; the others keep what they ran"), "{err}");
    assert_eq!(contents(w), ["v3", "v2", "v2"]);
    let status = w.run(&["rollout", "status", "files"]).expect(0).stdout;
    assert!(status.contains("paused: paused by"), "{status}");
    assert!(
        !status.contains("requested:"),
        "carried out and removed: {status}"
    );
    let held = w
        .run(&[&v3[..], &["-lock-timeout=10s"][..]].concat())
        .expect(1);
    assert!(held.stderr.contains("does not move"), "{}", held.stderr);
    assert_eq!(contents(w), ["v3", "v2", "v2"]);

    // Resumed: wave 1 is not run again; wave 2 waits for its approval, then moves.
    w.run(&["rollout", "resume", "files"]).expect(0);
    let gate = w.run(&v3).expect(4);
    assert!(!gate.stdout.contains("a: rolling out"), "{}", gate.stdout);
    let approved = w.run(&["rollout", "approve", "files"]).expect(0);
    assert!(
        approved.stdout.contains("Approved wave 2"),
        "{}",
        approved.stdout
    );
    w.run(&v3).expect(0);
    assert_eq!(contents(w), ["v3", "v3", "v3"]);
    w.run(&["destroy", "-auto-approve"]).expect(0);
}

#[test]
fn rollout_requests_reach_a_running_apply_with_local_state() {
    let files = file_rollout("");
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let w = Work::new(&files);
    rollout_requests_reach_the_running_apply(&w);
    assert!(
        !w.path("flotilla.state.json.requests").exists(),
        "no request is left behind"
    );
}

#[test]
fn postgres_backend_keeps_every_promise() {
    let Some(pg) = Postgres::start() else { return };
    let w = Work::new(&[("main.hcl", &chain(&pg_backend(&pg)))]);
    round_trip_with_workspaces(&w);
    assert_eq!(
        pg.sql("SELECT name || ' ' || serial FROM team.flotilla_states ORDER BY name"),
        "default 4\n",
        "one row per workspace; staging's was deleted"
    );
    two_runs_at_once(&w);
    holder_killed(&w, "10s");
    store_goes_away(&w, || pg.crash(), || pg.start_server());
    // The connection string can come from the environment instead.
    let w2 = Work::new(&[(
        "main.hcl",
        &chain("  backend \"postgres\" {\n    schema_name = \"team\"\n  }"),
    )]);
    w2.run_with(&[("PG_CONN_STR", &pg.conn_str())], &["workspace", "list"])
        .expect(0);
    let missing = w2.run(&["workspace", "list"]).expect(1);
    assert!(missing.stderr.contains("PG_CONN_STR"), "{}", missing.stderr);
    // Rollout requests wait in their table until the apply that read them is recorded.
    let files = file_rollout(&pg_backend(&pg).replace("\"team\"", "\"rollouts\""));
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    rollout_requests_reach_the_running_apply(&Work::new(&files));
    assert_eq!(
        pg.sql("SELECT count(*) FROM rollouts.flotilla_requests"),
        "0\n"
    );
}

#[test]
fn kubernetes_backend_keeps_every_promise() {
    let w = Work::new(&[("main.hcl", &chain(KUBE_BACKEND))]);
    let _served = Served::up(&w);
    round_trip_with_workspaces(&w);
    two_runs_at_once(&w);
    // A killed holder's Lease expires (15 s without renewal).
    holder_killed(&w, "40s");
    store_goes_away(
        &w,
        || {
            w.run(&["sandbox", "fault", "mgmt", "unreachable=true"])
                .expect(0);
        },
        || {
            w.run(&["sandbox", "fault", "mgmt", "--clear"]).expect(0);
            // The serving sandbox reads its faults file every 100 ms.
            std::thread::sleep(Duration::from_millis(500));
        },
    );
    // Rollout requests are Secrets until the apply that read them is recorded.
    // (In the same directory, for the cluster it serves; under another suffix.)
    for (name, text) in file_rollout(&KUBE_BACKEND.replace("\"fleet\"", "\"rollouts\"")) {
        w.write(name, &text);
    }
    let changed = w.run(&["plan"]).expect(1).stderr;
    let flat: Vec<&str> = changed.split_whitespace().filter(|w| *w != "│").collect();
    assert!(
        flat.join(" ")
            .contains("changed its `secret_suffix` from \"fleet\" to \"rollouts\""),
        "{changed}"
    );
    w.run(&["init", "-reconfigure"]).expect(0);
    rollout_requests_reach_the_running_apply(&w);
    assert!(
        secrets(&w, "flotilla.dev/part=request").is_empty(),
        "no request is left behind"
    );
}

/// The secrets of the sandbox cluster `mgmt` that `flotilla sandbox up` serves for `w`,
/// by name, with their labels.
fn secrets(w: &Work, selector: &str) -> Vec<String> {
    let text = std::fs::read_to_string(w.path(".flotilla/sandbox/kubeconfig")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = support::clusters::client(&text, "mgmt").await;
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, "default");
        let list = api
            .list(&kube::api::ListParams::default().labels(selector))
            .await
            .unwrap();
        let mut names: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect();
        names.sort();
        names
    })
}

fn config_with(backend: &str, body: &str) -> String {
    format!("flotilla {{\n{backend}\n}}\n\n{body}")
}

const OUTPUTS: &str = r#"
variable "token" {
  type      = string
  sensitive = true
  default   = "s3cr3t-token-value"
}

resource "builtin_data" "token" {
  input = var.token
}

resource "builtin_file" "note" {
  path    = "out/${flotilla.workspace}.txt"
  content = "kept"
}

output "where" {
  value = flotilla.workspace
}
"#;

#[test]
fn state_migrates_local_to_postgres_to_kubernetes_and_back_unchanged() {
    let Some(pg) = Postgres::start() else { return };
    let w = Work::new(&[("main.hcl", OUTPUTS)]);
    let _served = Served::up(&w);
    w.run(&["init"]).expect(0);
    w.run(&["apply", "-auto-approve"]).expect(0);
    w.run(&["workspace", "new", "staging"]).expect(0);
    w.run(&["apply", "-auto-approve"]).expect(0);
    w.run(&["workspace", "select", "default"]).expect(0);
    let pull = |w: &Work, ws: &str| {
        w.run_with(&[("FLOTILLA_WORKSPACE", ws)], &["state", "pull"])
            .expect(0)
            .stdout
    };
    let (default0, staging0) = (pull(&w, "default"), pull(&w, "staging"));
    assert!(default0.contains("\"lineage\""), "{default0}");

    for backend in [pg_backend(&pg), KUBE_BACKEND.to_string()] {
        w.write("main.hcl", &config_with(&backend, OUTPUTS));
        // Until the state is migrated, nothing runs against the new backend.
        let refused = w.run(&["plan"]).expect(1);
        assert!(
            refused.stderr.contains("backend configuration changed"),
            "{}",
            refused.stderr
        );
        assert!(
            refused.stderr.contains("init -migrate-state"),
            "{}",
            refused.stderr
        );
        let refused = w.run(&["init"]).expect(1);
        assert!(
            refused.stderr.contains("-migrate-state"),
            "{}",
            refused.stderr
        );
        let migrated = w.run(&["init", "-migrate-state", "-force-copy"]).expect(0);
        assert!(
            migrated.stdout.contains("workspace \"staging\""),
            "{}",
            migrated.stdout
        );
        assert_eq!(pull(&w, "default"), default0);
        assert_eq!(pull(&w, "staging"), staging0);
        assert_eq!(
            w.run(&["workspace", "list"]).expect(0).stdout,
            "* default\n  staging\n"
        );
        w.run(&["plan", "-detailed-exitcode"]).expect(0);
    }
    // Back to a local file that is gone meanwhile: written again, byte for byte.
    std::fs::remove_file(w.path("flotilla.state.json")).unwrap();
    std::fs::remove_dir_all(w.path("flotilla.state.d")).unwrap();
    w.write("main.hcl", OUTPUTS);
    w.run(&["init", "-migrate-state", "-force-copy"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(w.path("flotilla.state.json")).unwrap(),
        default0
    );
    assert_eq!(
        std::fs::read_to_string(w.path("flotilla.state.d/staging/flotilla.state.json")).unwrap(),
        staging0
    );
    w.run(&["plan", "-detailed-exitcode"]).expect(0);

    // state push refuses another lineage or an older serial unless forced.
    let other = Work::new(&[("main.hcl", OUTPUTS)]);
    other.run(&["apply", "-auto-approve"]).expect(0);
    std::fs::copy(other.path("flotilla.state.json"), w.path("other.json")).unwrap();
    let refused = w.run(&["state", "push", "other.json"]).expect(1);
    assert!(refused.stderr.contains("lineage"), "{}", refused.stderr);
    std::fs::write(w.path("old.json"), &default0).unwrap();
    w.run(&[
        "apply",
        "-auto-approve",
        "-var",
        "token=another-secret-value",
    ])
    .expect(0);
    let refused = w.run(&["state", "push", "old.json"]).expect(1);
    assert!(refused.stderr.contains("older"), "{}", refused.stderr);
    w.run(&["state", "push", "-force", "old.json"]).expect(0);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}

const ENCRYPTED: &str = r#"
variable "passphrase" {
  type      = string
  sensitive = true
}

flotilla {
  encryption {
    key_provider "pbkdf2" {
      passphrase = var.passphrase
      iterations = 100000
    }
  }
}
"#;

#[test]
fn encrypted_state_never_holds_a_secret_in_clear_and_needs_its_key() {
    let Some(pg) = Postgres::start() else { return };
    let key = ("FLOTILLA_VAR_passphrase", "correct horse battery staple");
    // Local: the state file, its backup and saved plans are ciphertext.
    let w = Work::new(&[("main.hcl", &format!("{OUTPUTS}{ENCRYPTED}"))]);
    w.run_with(&[key], &["apply", "-auto-approve"]).expect(0);
    w.run_with(
        &[key],
        &[
            "apply",
            "-auto-approve",
            "-var",
            "token=second-secret-value",
        ],
    )
    .expect(0);
    w.run_with(
        &[key],
        &["plan", "-out", "p.plan", "-var", "token=third-secret-value"],
    )
    .expect(0);
    for f in [
        "flotilla.state.json",
        "flotilla.state.json.backup",
        "p.plan",
    ] {
        let bytes = std::fs::read(w.path(f)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [
            "s3cr3t-token-value",
            "second-secret-value",
            "third-secret-value",
        ] {
            assert!(!text.contains(secret), "{f} holds {secret} in clear");
        }
        assert!(text.starts_with("{\"encryption\":"), "{f}: {text}");
    }
    let shown = w.run_with(&[key], &["show", "p.plan"]).expect(0);
    assert!(
        shown.stdout.contains("builtin_data.token"),
        "{}",
        shown.stdout
    );
    // Without the key, or with a wrong one: a clear error, and nothing is written.
    let before = std::fs::read(w.path("flotilla.state.json")).unwrap();
    let missing = w.run_with(&[], &["plan"]).expect(1);
    assert!(
        missing.stderr.contains("FLOTILLA_VAR_passphrase"),
        "{}",
        missing.stderr
    );
    let wrong = w
        .run_with(
            &[("FLOTILLA_VAR_passphrase", "not the right passphrase")],
            &["apply", "-auto-approve"],
        )
        .expect(1);
    assert!(wrong.stderr.contains("cannot decrypt"), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("fallback"), "{}", wrong.stderr);
    let shown = w
        .run_with(
            &[("FLOTILLA_VAR_passphrase", "not the right passphrase")],
            &["show", "p.plan"],
        )
        .expect(1);
    assert!(shown.stderr.contains("cannot decrypt"), "{}", shown.stderr);
    assert_eq!(
        std::fs::read(w.path("flotilla.state.json")).unwrap(),
        before
    );
    // Rotation: the new key writes, the old one in `fallback` reads.
    let rotated = ENCRYPTED.replace(
        "  }\n}\n",
        "    fallback {\n      key_provider \"pbkdf2\" {\n        passphrase = var.old_passphrase\n        iterations = 100000\n      }\n    }\n  }\n}\n\nvariable \"old_passphrase\" {\n  type      = string\n  sensitive = true\n}\n",
    );
    w.write("main.hcl", &format!("{OUTPUTS}{rotated}"));
    let new_key = ("FLOTILLA_VAR_passphrase", "a brand new passphrase for 2027");
    let old_key = ("FLOTILLA_VAR_old_passphrase", key.1);
    w.run_with(
        &[new_key, old_key],
        &[
            "apply",
            "-auto-approve",
            "-var",
            "token=fourth-secret-value",
        ],
    )
    .expect(0);
    w.write("main.hcl", &format!("{OUTPUTS}{ENCRYPTED}"));
    w.run_with(
        &[new_key],
        &[
            "plan",
            "-detailed-exitcode",
            "-var",
            "token=fourth-secret-value",
        ],
    )
    .expect(0);
    w.run_with(&[key], &["plan"]).expect(1);

    // Plain state stays readable only when the configuration says so, once.
    let plain = Work::new(&[("main.hcl", OUTPUTS)]);
    plain.run(&["apply", "-auto-approve"]).expect(0);
    plain.write("main.hcl", &format!("{OUTPUTS}{ENCRYPTED}"));
    let refused = plain.run_with(&[key], &["plan"]).expect(1);
    assert!(
        refused.stderr.contains("unencrypted = true"),
        "{}",
        refused.stderr
    );
    let migrating = ENCRYPTED.replace(
        "  }\n}\n",
        "    fallback {\n      unencrypted = true\n    }\n  }\n}\n",
    );
    plain.write("main.hcl", &format!("{OUTPUTS}{migrating}"));
    plain
        .run_with(&[key], &["apply", "-auto-approve"])
        .expect(0);
    let text = std::fs::read_to_string(plain.path("flotilla.state.json")).unwrap();
    assert!(
        text.starts_with("{\"encryption\":") && !text.contains("s3cr3t"),
        "{text}"
    );
    // Only a literal says whether unencrypted state may be read.
    plain.write(
        "main.hcl",
        &format!(
            "{OUTPUTS}{}",
            migrating.replace("unencrypted = true", "unencrypted = \"yes\"")
        ),
    );
    let refused = plain.run_with(&[key], &["plan"]).expect(1);
    assert!(
        refused.stderr.contains("expected a literal boolean")
            && refused.stderr.contains("unencrypted"),
        "{}",
        refused.stderr
    );

    // PostgreSQL holds only ciphertext too.
    let w = Work::new(&[(
        "main.hcl",
        &format!("{}{ENCRYPTED}", config_with(&pg_backend(&pg), OUTPUTS)),
    )]);
    w.run_with(&[key], &["apply", "-auto-approve"]).expect(0);
    let rows = pg.sql("SELECT encode(data, 'escape') FROM team.flotilla_states");
    assert!(
        rows.contains("\"encryption\":") && !rows.contains("s3cr3t"),
        "{rows}"
    );
    let pulled = w.run_with(&[key], &["state", "pull"]).expect(0);
    assert!(
        pulled.stdout.contains("s3cr3t-token-value"),
        "state pull decrypts"
    );
}

#[test]
fn force_unlock_breaks_a_stuck_holder_and_nothing_else() {
    let Some(pg) = Postgres::start() else { return };
    let slow = "resource \"builtin_sleep\" \"wait\" {\n  create_duration = \"8s\"\n}\n";
    let lock_id = |stderr: &str| {
        let at = stderr.find("lock ID ").expect("a lock ID in the message") + "lock ID ".len();
        stderr[at..at + 36].to_string()
    };
    let w = Work::new(&[("main.hcl", &config_with(&pg_backend(&pg), slow))]);
    let served = Work::new(&[("main.hcl", &config_with(KUBE_BACKEND, slow))]);
    let _sandbox = Served::up(&served);
    for w in [&w, &served] {
        let mut running = w.spawn_until(
            &["apply", "-auto-approve"],
            "builtin_sleep.wait: Creating...",
        );
        let refused = w.run(&["plan"]).expect(1);
        let id = lock_id(&refused.stderr);
        let wrong = w
            .run(&[
                "force-unlock",
                "-force",
                "00000000-0000-0000-0000-000000000000",
            ])
            .expect(1);
        assert!(
            wrong.stderr.contains("no lock") || wrong.stderr.contains("not locked"),
            "{}",
            wrong.stderr
        );
        let asked = w.run(&["force-unlock", &id]).expect(1);
        assert!(
            asked.stderr.contains("-force"),
            "without a terminal it asks for -force: {}",
            asked.stderr
        );
        w.run(&["force-unlock", "-force", &id]).expect(0);
        // The holder notices, finishes what it started, records it, and stops.
        let mut out = String::new();
        for line in running.lines.by_ref() {
            out.push_str(&line.unwrap());
            out.push('\n');
        }
        let status = running.child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(running.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(stderr.contains("lock was lost"), "{out}\n{stderr}");
        assert!(stderr.contains("apply interrupted"), "{out}\n{stderr}");
        assert_eq!(status.code(), Some(1), "{out}\n{stderr}");
        assert!(
            out.contains("Creation complete"),
            "the operation in progress finished: {out}"
        );
        w.run(&["plan", "-detailed-exitcode", "-lock-timeout=30s"])
            .expect(0);
    }
}

#[test]
fn kubernetes_state_above_a_megabyte_is_chunked_and_read_back() {
    // 3 MB of hex does not compress below two chunks.
    let mut big = String::with_capacity(3_000_000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while big.len() < 3_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.push_str(&format!("{x:016x}"));
    }
    let body = format!("resource \"builtin_data\" \"big\" {{\n  input = \"{big}\"\n}}\n");
    let w = Work::new(&[("main.hcl", &config_with(KUBE_BACKEND, &body))]);
    let _served = Served::up(&w);
    w.run(&["apply", "-auto-approve"]).expect(0);
    let chunks = secrets(&w, "flotilla.dev/part=chunk");
    assert!(!chunks.is_empty(), "{chunks:?}");
    assert_eq!(
        secrets(&w, "flotilla.dev/part=state"),
        ["flotilla-state-default-fleet"]
    );
    assert!(
        secrets(&w, "flotilla.dev/part=journal").is_empty(),
        "the journal is cleared"
    );
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
    // A second write replaces the chunks: only the current generation's remain.
    w.write(
        "main.hcl",
        &config_with(KUBE_BACKEND, &body.replace("\"big\"", "\"large\"")),
    );
    w.write(
        "moved.hcl",
        "moved {\n  from = builtin_data.big\n  to   = builtin_data.large\n}\n",
    );
    w.run(&["apply", "-auto-approve"]).expect(0);
    assert_eq!(secrets(&w, "flotilla.dev/part=chunk").len(), chunks.len());
    assert_ne!(secrets(&w, "flotilla.dev/part=chunk"), chunks);
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
    let pulled = w.run(&["state", "pull"]).expect(0);
    assert!(pulled.stdout.contains(&big[..64]));
}

#[test]
fn the_team_state_example_runs_as_its_readme_says() {
    let (w, readme) = support::clusters::example("team-state");
    let key = "FLOTILLA_STATE_KEY";
    let value = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let run = |args: &[&str]| w.run_with(&[(key, value)], args).expect(0).stdout;
    for step in [
        "sandbox up --name mgmt",
        "workspace new production",
        "state pull",
    ] {
        assert!(
            readme.contains(&format!("flotilla {step}")),
            "README shows `{step}`"
        );
    }
    let _served = Served::up(&w);
    run(&["init"]);
    assert!(run(&["apply", "-auto-approve"]).contains("replicas    = 1"));
    run(&["workspace", "new", "production"]);
    assert!(run(&["apply", "-auto-approve"]).contains("replicas    = 3"));
    assert_eq!(run(&["workspace", "list"]), "  default\n* production\n");
    assert!(run(&["state", "pull"]).contains("example-token-not-for-production"));
    run(&["workspace", "select", "default"]);
    assert_eq!(
        secrets(&w, "flotilla.dev/part=state"),
        [
            "flotilla-state-default-platform",
            "flotilla-state-production-platform"
        ]
    );
    let without = w.run(&["plan"]).expect(1);
    assert!(without.stderr.contains(key), "{}", without.stderr);
}
