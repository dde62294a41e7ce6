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
    let destroyed = w
        .command(&["destroy", "-auto-approve"])
        .env("FLOTILLA_WORKSPACE", "staging")
        .output()
        .unwrap();
    assert!(destroyed.status.success(), "{destroyed:?}");
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
    let refused = w.run(&["plan", "-lock-timeout=300ms"]).expect(1);
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
    let listed = w2
        .command(&["workspace", "list"])
        .env("PG_CONN_STR", pg.conn_str())
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let missing = w2.run(&["workspace", "list"]).expect(1);
    assert!(missing.stderr.contains("PG_CONN_STR"), "{}", missing.stderr);
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
}
