//! `flotilla diff --base REV`: desired-state diffs read from a git repository built here,
//! in a clone with a working tree and in a bare clone.

mod support;

use std::path::Path;

use support::Work;
use support::git::commit_all;

const SECRET: &str = "hunter2-do-not-print";

fn base_files(w: &Work) {
    w.write(
        "infra/main.hcl",
        &format!(
            r#"variable "token" {{
  type      = string
  default   = "{SECRET}"
  sensitive = true
}}

module "old" {{
  source = "./net"
}}

resource "builtin_data" "app" {{
  input = {{ image = "nginx:1.25", token = var.token }}
}}

resource "builtin_data" "follower" {{
  input = builtin_data.app.output
}}
"#
        ),
    );
    w.write(
        "infra/net/main.hcl",
        "resource \"builtin_data\" \"x\" {\n  input = \"in-module\"\n}\n",
    );
    w.write("README.md", "not configuration\n");
}

fn head_files(w: &Work) {
    let main = std::fs::read_to_string(w.path("infra/main.hcl")).unwrap();
    let main = main
        .replace("module \"old\"", "module \"new\"")
        .replace("nginx:1.25", "nginx:1.27")
        + "\nmoved {\n  from = module.old\n  to   = module.new\n}\n\nresource \"builtin_data\" \"added\" {\n  input = \"fresh\"\n}\n";
    w.write("infra/main.hcl", &main);
}

fn check_text(out: &str) {
    assert!(
        out.contains("module.old.builtin_data.x has moved to module.new.builtin_data.x"),
        "{out}"
    );
    assert!(out.contains("builtin_data.added will be created"), "{out}");
    assert!(
        out.contains("builtin_data.app will be updated in place"),
        "{out}"
    );
    assert!(out.contains(r#""nginx:1.25" -> "nginx:1.27""#), "{out}");
    assert!(
        out.contains("Diff: 1 added, 0 removed, 1 changed, 1 moved."),
        "{out}"
    );
    // Unknown on both sides (only infrastructure knows `output`): not a change.
    assert!(!out.contains("builtin_data.follower"), "{out}");
    assert!(
        !out.contains("module.old.builtin_data.x will be destroyed"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");
}

fn repo_with_history(w: &Work) -> (git2::Repository, String, String) {
    let repo = git2::Repository::init(w.dir.path()).unwrap();
    base_files(w);
    let base = commit_all(&repo, "base");
    head_files(w);
    let head = commit_all(&repo, "head");
    (repo, base, head)
}

#[test]
fn diff_between_revisions_reports_added_changed_and_moved() {
    let w = Work::new(&[]);
    let (_repo, base, head) = repo_with_history(&w);

    let text = w
        .run(&["diff", "--base", &base, "--head", &head, "infra"])
        .expect(0);
    check_text(&text.stdout);
    assert!(
        text.stdout.contains(&format!("({}) → ", &base[..12])),
        "{}",
        text.stdout
    );

    // From inside the directory, with HEAD as the default head and a detailed exit code.
    let inside = w
        .command(&[
            "-chdir=infra",
            "diff",
            "--base",
            &base,
            "-detailed-exitcode",
        ])
        .output()
        .unwrap();
    assert_eq!(inside.status.code(), Some(2));
    check_text(&String::from_utf8_lossy(&inside.stdout));

    let json = w
        .run(&["diff", "--base", &base, "-json", "infra"])
        .expect(0);
    assert!(!json.stdout.contains(SECRET));
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["kind"], "desired-state-diff");
    assert_eq!(doc["base"]["commit"], base.as_str());
    let changes = doc["resource_changes"].as_array().unwrap();
    let by_addr = |a: &str| changes.iter().find(|c| c["address"] == a).unwrap().clone();
    assert_eq!(
        by_addr("builtin_data.added")["change"]["actions"],
        serde_json::json!(["create"])
    );
    assert_eq!(
        by_addr("builtin_data.app")["change"]["actions"],
        serde_json::json!(["update"])
    );
    assert_eq!(
        by_addr("builtin_data.app")["change"]["after_sensitive"]["input"]["token"],
        true
    );
    assert_eq!(
        by_addr("builtin_data.app")["change"]["after"]["input"]["token"],
        serde_json::Value::Null
    );
    let moved = by_addr("module.new.builtin_data.x");
    assert_eq!(moved["previous_address"], "module.old.builtin_data.x");
    assert_eq!(moved["change"]["actions"], serde_json::json!(["no-op"]));
    assert_eq!(changes.len(), 3);

    let md = w
        .run(&["diff", "--base", &base, "-format", "markdown", "infra"])
        .expect(0);
    assert!(!md.stdout.contains(SECRET));
    assert!(
        md.stdout
            .contains("**Plan:** 1 to add, 1 to change, 0 to destroy, 1 to move."),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout.contains("moved from `module.old.builtin_data.x`"),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("```mermaid"), "{}", md.stdout);

    // Same revision on both sides: nothing differs.
    let same = w.run(&["diff", "--base", &head, "infra"]).expect(0);
    assert!(
        same.stdout.contains("No differences in the desired state."),
        "{}",
        same.stdout
    );
}

#[test]
fn without_a_moved_block_a_rename_is_destroy_and_create() {
    let w = Work::new(&[]);
    let repo = git2::Repository::init(w.dir.path()).unwrap();
    base_files(&w);
    let base = commit_all(&repo, "base");
    let main = std::fs::read_to_string(w.path("infra/main.hcl")).unwrap();
    w.write(
        "infra/main.hcl",
        &main.replace("module \"old\"", "module \"new\""),
    );
    commit_all(&repo, "rename without moved");
    let out = w.run(&["diff", "--base", &base, "infra"]).expect(0);
    assert!(
        out.stdout
            .contains("module.old.builtin_data.x will be destroyed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("module.new.builtin_data.x will be created"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Diff: 1 added, 1 removed, 0 changed, 0 moved."),
        "{}",
        out.stdout
    );
}

#[test]
fn works_in_a_bare_clone() {
    let w = Work::new(&[]);
    let (_repo, base, _head) = repo_with_history(&w);
    let bare_dir = tempfile::tempdir().unwrap();
    let bare = bare_dir.path().join("infra.git");
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(w.dir.path().to_str().unwrap(), &bare)
        .unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["diff", "--base", &base, "infra"])
        .current_dir(&bare)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    check_text(&String::from_utf8_lossy(&run.stdout));
}

#[test]
fn bad_revisions_and_configurations_are_clear_errors() {
    let w = Work::new(&[]);
    let (repo, base, _) = repo_with_history(&w);
    let out = w
        .run(&["diff", "--base", "no-such-branch", "infra"])
        .expect(1);
    assert!(
        out.stderr
            .contains("cannot resolve revision `no-such-branch`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("fetch it first in CI"),
        "{}",
        out.stderr
    );

    // A broken configuration at the head is reported with its revision, file and line.
    w.write(
        "infra/main.hcl",
        "resource \"builtin_data\" \"a\" {\n  input = [1,\n}\n",
    );
    commit_all(&repo, "broken");
    let out = w.run(&["diff", "--base", &base, "infra"]).expect(1);
    assert!(out.stderr.contains("syntax error"), "{}", out.stderr);
    assert!(out.stderr.contains("HEAD@"), "{}", out.stderr);
    assert!(out.stderr.contains("infra/main.hcl:3"), "{}", out.stderr);

    let outside = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["diff", "--base", "main"])
        .current_dir(outside.path())
        .env("NO_COLOR", "1")
        .env(
            "GIT_CEILING_DIRECTORIES",
            outside.path().parent().unwrap_or(Path::new("/")),
        )
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("not in a git repository"));
}

#[test]
fn file_functions_read_the_revision_not_the_checkout() {
    let w = Work::new(&[]);
    let repo = git2::Repository::init(w.dir.path()).unwrap();
    w.write(
        "infra/main.hcl",
        "resource \"builtin_data\" \"motd\" {\n  input = {\n    text  = file(\"${path.module}/motd.txt\")\n    greet = templatefile(\"greet.tpl\", { who = \"fleet\" })\n    seen  = fileexists(\"motd.txt\")\n  }\n}\n",
    );
    w.write("infra/motd.txt", "first");
    w.write("infra/greet.tpl", "hello ${who}");
    let base = commit_all(&repo, "base");
    w.write("infra/motd.txt", "second");
    w.write("infra/greet.tpl", "goodbye ${who}");
    let head = commit_all(&repo, "head");
    // The checkout says something else again: neither side may read it.
    w.write("infra/motd.txt", "uncommitted");
    std::fs::remove_file(w.path("infra/greet.tpl")).unwrap();

    let out = w
        .run(&["diff", "--base", &base, "--head", &head, "infra"])
        .expect(0);
    assert!(
        out.stdout.contains(r#""first" -> "second""#),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(r#""hello fleet" -> "goodbye fleet""#),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("uncommitted"), "{}", out.stdout);

    // A missing file is named by revision, not by a path in the checkout.
    w.write(
        "infra/main.hcl",
        "resource \"builtin_data\" \"x\" {\n  input = file(\"nope.txt\")\n}\n",
    );
    let broken = commit_all(&repo, "broken");
    let err = w
        .run(&["diff", "--base", &head, "--head", &broken, "infra"])
        .expect(1);
    assert!(
        err.stderr
            .contains(&format!("{}@{}:infra/nope.txt", &broken, &broken[..12])),
        "{}",
        err.stderr
    );
}
