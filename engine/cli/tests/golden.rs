//! Golden tests: diagnostics for bad input, and plan text and JSON, under testdata/.
//!
//! - `testdata/diagnostics/NAME.hcl` is run as `main.hcl` with the arguments on its first line
//!   (`# flotilla: plan -var x=1`, default `plan`); stdout, stderr and the exit code are compared
//!   with `NAME.out`, and no state may be written.
//! - `testdata/plans/NAME/` holds `main.hcl` and optionally `before.hcl`, applied first; the
//!   plan is compared with `plan.txt`, `plan.json` (which must also match
//!   docs/schemas/plan.schema.json), `plan.md` (the pull-request comment of the saved plan) and
//!   `graph.mmd` (`graph -plan`, resources coloured by action).
//! - `testdata/previews/large.md`: the comment for a plan of thousands of changes, cut down to
//!   the default size limit.

#[path = "support/schema.rs"]
mod schema;
mod support;

use support::{Work, golden, normalize, testdata};

fn cases(dir: &str, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(testdata().join(dir))
        .expect("testdata dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            ext.is_empty() && p.is_dir()
                || !ext.is_empty() && p.extension().is_some_and(|e| e == ext)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn diagnostics_for_bad_input() {
    let all = cases("diagnostics", "hcl");
    assert!(
        all.len() >= 10,
        "expected the bad-input cases in testdata/diagnostics"
    );
    for case in all {
        let text = std::fs::read_to_string(&case).unwrap();
        let args: Vec<String> = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# flotilla: "))
            .unwrap_or("plan")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let work = Work::new(&[("main.hcl", &text)]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = work.run(&args);
        let actual = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            run.code,
            normalize(&run.stdout, &work),
            normalize(&run.stderr, &work)
        );
        golden(&case.with_extension("out"), &actual);
        assert_ne!(run.code, 0, "{} should fail", case.display());
        assert!(
            !work.has_state(),
            "{}: nothing may be written to state",
            case.display()
        );
    }
}

#[test]
fn plan_text_and_json() {
    let all = cases("plans", "");
    assert!(!all.is_empty());
    for case in all {
        let work = Work::new(&[]);
        for entry in std::fs::read_dir(&case).unwrap().flatten() {
            let name = entry.file_name().into_string().unwrap();
            if [
                "plan.txt",
                "plan.json",
                "plan.md",
                "graph.mmd",
                "main.hcl",
                "before.hcl",
            ]
            .contains(&name.as_str())
            {
                continue;
            }
            std::fs::copy(entry.path(), work.path(&name)).unwrap();
        }
        if let Ok(before) = std::fs::read_to_string(case.join("before.hcl")) {
            work.write("main.hcl", &before);
            work.run(&["apply", "-auto-approve"]).expect(0);
        }
        work.write(
            "main.hcl",
            &std::fs::read_to_string(case.join("main.hcl")).unwrap(),
        );
        let text = work.run(&["plan"]);
        golden(
            &case.join("plan.txt"),
            &normalize(&format!("{}{}", text.stdout, text.stderr), &work),
        );
        let json = work.run(&["plan", "-json"]);
        let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: plan -json is not JSON: {e}\n{}",
                case.display(),
                json.stdout
            )
        });
        let problems = schema::check(&plan_schema(), &parsed);
        assert!(
            problems.is_empty(),
            "{}: plan -json does not match docs/schemas/plan.schema.json:\n{}",
            case.display(),
            problems.join("\n")
        );
        golden(
            &case.join("plan.json"),
            &normalize(
                &format!("{}\n", serde_json::to_string_pretty(&parsed).unwrap()),
                &work,
            ),
        );
        work.run(&["plan", "-out", "tfplan"]).expect(0);
        let md = work
            .run(&["show", "-format", "markdown", "tfplan"])
            .expect(0);
        golden(&case.join("plan.md"), &normalize(&md.stdout, &work));
        let graph = work
            .run(&["graph", "-plan", "tfplan", "-format", "mermaid"])
            .expect(0);
        golden(&case.join("graph.mmd"), &graph.stdout);
        let dot = work.run(&["graph", "-plan", "tfplan"]).expect(0);
        assert!(dot.stdout.contains("fillcolor"), "{}", dot.stdout);
        let shown = work.run(&["show", "-json", "tfplan"]).expect(0);
        let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
        assert!(
            schema::check(&plan_schema(), &shown).is_empty(),
            "show -json matches the schema"
        );
    }
}

fn plan_schema() -> serde_json::Value {
    let path = testdata().join("../docs/schemas/plan.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A plan of thousands of changes: the comment stays under the limit, degrading predictably.
#[test]
fn markdown_preview_of_a_large_plan() {
    let work = Work::new(&[(
        "main.hcl",
        "resource \"builtin_data\" \"r\" {\n  for_each = toset([for i in range(3000) : format(\"item-%04d\", i)])\n  input    = each.key\n}\n",
    )]);
    work.run(&["plan", "-out", "tfplan"]).expect(0);
    let md = work
        .run(&["show", "-format", "markdown", "tfplan"])
        .expect(0);
    assert!(md.stdout.chars().count() <= 65_536);
    assert!(md.stdout.contains("only counts are shown"), "{}", md.stdout);
    golden(
        &testdata().join("previews/large.md"),
        &normalize(&md.stdout, &work),
    );
    // With room for addresses, every address is listed and diffs are collapsed.
    let roomy = work
        .run(&[
            "show",
            "-format",
            "markdown",
            "-max-chars",
            "400000",
            "tfplan",
        ])
        .expect(0);
    assert!(roomy.stdout.chars().count() <= 400_000);
    assert!(
        roomy.stdout.contains("diffs are collapsed"),
        "{}",
        &roomy.stdout[..2000]
    );
    assert_eq!(roomy.stdout.matches("- `+ builtin_data.r[").count(), 3000);
    // Grouping by cluster (provider configuration) and a bad grouping.
    let by_cluster = work
        .run(&[
            "show",
            "-format",
            "markdown",
            "-group-by",
            "cluster",
            "tfplan",
        ])
        .expect(0);
    assert!(
        by_cluster
            .stdout
            .contains("| `provider.builtin` | 3000 | 0 | 0 | 0 |"),
        "{}",
        by_cluster.stdout
    );
    let bad = work
        .run(&["show", "-format", "markdown", "-group-by", "team", "tfplan"])
        .expect(1);
    assert!(
        bad.stderr
            .contains("use -group-by=module or -group-by=cluster"),
        "{}",
        bad.stderr
    );
}

/// A secret marked sensitive appears in no output: plan text and JSON, the saved plan shown
/// as text, JSON and markdown, and the coloured graph.
#[test]
fn no_sensitive_value_in_any_preview() {
    const SECRET: &str = "s3cr3t-value-never-shown";
    let config = |image: &str| {
        format!(
            r#"variable "token" {{
  type      = string
  default   = "{SECRET}"
  sensitive = true
}}

resource "builtin_data" "app" {{
  input = {{ image = "{image}", token = var.token, nested = [{{ deep = var.token }}] }}
}}

resource "builtin_file" "creds" {{
  path              = "out/creds"
  sensitive_content = "user=admin password=${{var.token}}"
}}

output "token" {{
  value     = var.token
  sensitive = true
}}

output "derived" {{
  value     = "prefix-${{var.token}}"
  sensitive = true
}}
"#
        )
    };
    let work = Work::new(&[("main.hcl", &config("nginx:1.25"))]);
    work.run(&["apply", "-auto-approve"]).expect(0);
    work.write(
        "main.hcl",
        &config("nginx:1.27").replace("password=", "pw="),
    );
    let mut outputs = Vec::new();
    for args in [
        &["plan"][..],
        &["plan", "-json"],
        &["plan", "-out", "tfplan"],
        &["show", "tfplan"],
        &["show", "-json", "tfplan"],
        &["show", "-format", "markdown", "tfplan"],
        &[
            "show",
            "-format",
            "markdown",
            "-max-chars",
            "1000",
            "tfplan",
        ],
        &["graph", "-plan", "tfplan", "-format", "mermaid"],
        &["show"],
        &["show", "-json"],
        &["output"],
        &["output", "-json"],
    ] {
        let run = work.run(args);
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "`flotilla {}` printed the secret:\n{}{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        outputs.push(run.stdout);
    }
    // The changes are still there, redacted.
    assert!(outputs[5].contains("(sensitive value)"), "{}", outputs[5]);
    assert!(outputs[1].contains("\"after_sensitive\""), "{}", outputs[1]);
}
