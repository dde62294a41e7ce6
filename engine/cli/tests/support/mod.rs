//! Running the real `flotilla` binary in a scratch directory, and golden files.

#![allow(dead_code)]

pub mod clusters;
pub mod git;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A scratch working directory.
pub struct Work {
    pub dir: tempfile::TempDir,
}

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Work {
    pub fn new(files: &[(&str, &str)]) -> Work {
        let w = Work {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for (name, text) in files {
            w.write(name, text);
        }
        w
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, name: &str, text: &str) {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flotilla"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("FLOTILLA_MODULE_CACHE")
            .stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("FLOTILLA_VAR_") {
                c.env_remove(k);
            }
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(&[], args)
    }

    /// Runs flotilla with extra environment variables.
    pub fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("run flotilla");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("flotilla.state.json")).expect("state file");
        serde_json::from_str(&text).expect("state JSON")
    }

    pub fn state_addresses(&self) -> Vec<String> {
        self.state()["resources"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn has_state(&self) -> bool {
        self.path("flotilla.state.json").exists()
    }
}

/// The repository's testdata directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Replaces run-specific text (UUIDs, temp paths) so output can be compared with golden files.
pub fn normalize(text: &str, work: &Work) -> String {
    let uuid = regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        .expect("regex");
    let text = text.replace(&work.dir.path().display().to_string(), "$WORK");
    uuid.replace_all(&text, "<uuid>").into_owned()
}

/// Compares `actual` with the golden file at `path`; `UPDATE_GOLDEN=1` rewrites it instead.
#[track_caller]
pub fn golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual)
            .unified_diff()
            .header("golden", "actual")
            .to_string();
        panic!(
            "{} differs from the golden file (UPDATE_GOLDEN=1 rewrites it):\n{diff}",
            path.display()
        );
    }
}

/// A running flotilla and its remaining stdout lines.
pub struct Running {
    pub child: std::process::Child,
    pub lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Running {
    /// Waits for it: its exit code, the rest of its stdout, and its stderr on one line
    /// (miette wraps long messages).
    pub fn finish(mut self) -> (i32, String, String) {
        let rest: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        let code = self.child.wait().expect("wait").code().unwrap_or(-1);
        let mut stderr = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut stderr);
        }
        (
            code,
            rest.join("\n"),
            stderr.split_whitespace().collect::<Vec<_>>().join(" "),
        )
    }
}

impl Work {
    /// Starts flotilla and reads its stdout until a line starts with `prefix`.
    pub fn spawn_until(&self, args: &[&str], prefix: &str) -> Running {
        use std::io::BufRead;
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flotilla");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        for line in lines.by_ref() {
            if line.expect("utf-8 output").starts_with(prefix) {
                return Running { child, lines };
            }
        }
        let status = child.wait();
        panic!(
            "flotilla {args:?} ended ({status:?}) without printing a line starting with {prefix:?}"
        );
    }
}
