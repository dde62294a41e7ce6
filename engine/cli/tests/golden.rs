//! Golden tests: diagnostics for bad input, and plan text and JSON, under testdata/.
//!
//! - `testdata/diagnostics/NAME.hcl` is run as `main.hcl` with the arguments on its first line
//!   (`# flotilla: plan -var x=1`, default `plan`); stdout, stderr and the exit code are compared
//!   with `NAME.out`, and no state may be written.
//! - `testdata/plans/NAME/` holds `main.hcl` and optionally `before.hcl`, applied first; the
//!   plan is compared with `plan.txt` and `plan.json`.

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
            if ["plan.txt", "plan.json", "main.hcl", "before.hcl"].contains(&name.as_str()) {
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
        golden(
            &case.join("plan.json"),
            &normalize(
                &format!("{}\n", serde_json::to_string_pretty(&parsed).unwrap()),
                &work,
            ),
        );
    }
}
