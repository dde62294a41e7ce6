//! Repository hygiene: every source file says what it owns in a `//!` doc.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        // engine/vendor holds patched copies of other projects' crates, not our code.
        if p.is_dir()
            && p.file_name()
                .is_some_and(|n| n != "target" && n != "vendor")
        {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["engine", "providers"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20);
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "add a `//!` doc saying what these files own: {missing:?}"
    );
}

/// The `flotilla-*` crates a manifest's `[dependencies]` names.
fn flotilla_deps(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && line.starts_with("flotilla-") {
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            out.push(name.to_string());
        }
    }
    out.sort();
    out
}

/// The edges docs/architecture.md states, in its "Dependency edges" block:
/// `crate -> dep, dep` per line.
fn documented_edges(doc: &str) -> Vec<(String, Vec<String>)> {
    let section = doc
        .split("## Dependency edges")
        .nth(1)
        .expect("docs/architecture.md has a `## Dependency edges` section");
    let block = section
        .split("```")
        .nth(1)
        .expect("the section has a fenced block of edges");
    let mut out: Vec<(String, Vec<String>)> = block
        .lines()
        .filter_map(|l| l.split_once("->"))
        .map(|(from, to)| {
            let mut deps: Vec<String> = to
                .split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty() && d != "(none)")
                .collect();
            deps.sort();
            (from.trim().to_string(), deps)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn crate_dependencies_match_the_architecture_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut actual = Vec::new();
    for member in workspace
        .split("members = [")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
    {
        let manifest = std::fs::read_to_string(root.join(member).join("Cargo.toml")).unwrap();
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        actual.push((name, flotilla_deps(&manifest)));
    }
    actual.sort();
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let documented = documented_edges(&doc);
    assert_eq!(
        documented, actual,
        "docs/architecture.md's dependency edges differ from the Cargo.toml files: update one or the other"
    );
    // The API boundary: providers reach the engine through `provider` and `lang` only, plus
    // the ecosystem catalogue and the shared Kubernetes runtime; never the sandbox.
    let allowed = [
        "flotilla-provider",
        "flotilla-lang",
        "flotilla-ecosystems",
        "flotilla-provider-kube",
    ];
    for (name, deps) in &actual {
        if name.starts_with("flotilla-provider-") {
            let bad: Vec<&String> = deps
                .iter()
                .filter(|d| !allowed.contains(&d.as_str()))
                .collect();
            assert!(
                bad.is_empty(),
                "{name} depends on {bad:?}; providers may depend on {allowed:?} only"
            );
        }
    }
}

#[test]
fn the_edge_parser_reads_what_it_is_given() {
    let doc = "x\n## Dependency edges\ntext\n```\nb -> c, a\nd -> (none)\n```\n";
    assert_eq!(
        documented_edges(doc),
        vec![
            ("b".to_string(), vec!["a".to_string(), "c".to_string()]),
            ("d".to_string(), vec![])
        ]
    );
    assert_eq!(
        flotilla_deps(
            "[dependencies]\nflotilla-lang.workspace = true\nserde = \"1\"\n[dev-dependencies]\nflotilla-x.workspace = true\n"
        ),
        vec!["flotilla-lang".to_string()]
    );
}

/// Every directory of configuration the repository ships (examples, the standard library)
/// is in the canonical layout `flotilla fmt` writes.
#[test]
fn shipped_configuration_is_formatted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs = Vec::new();
    for top in ["examples", "modules"] {
        for entry in std::fs::read_dir(root.join(top)).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
    dirs.sort();
    let mut unformatted = Vec::new();
    for dir in &dirs {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args(["fmt", "-check"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("run flotilla fmt");
        if !out.status.success() {
            unformatted.push(format!(
                "{}: {}{}",
                dir.display(),
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        unformatted.is_empty(),
        "run `flotilla fmt` in these:\n{}",
        unformatted.join("\n")
    );
}
