//! Writing to the terminal: plans and results to stdout, diagnostics and progress to stderr.

use std::io::Write;

use flotilla_apply::{ApplyEvent, Progress};
use flotilla_plan::Action;
use flotilla_syntax::{Diagnostic, SourceMap};

/// The terminal, with colour on or off.
pub struct Ui {
    /// Whether ANSI colour is used.
    pub color: bool,
}

impl Ui {
    /// A UI with the given colour setting.
    pub fn new(color: bool) -> Ui {
        Ui { color }
    }

    /// Writes to stdout.
    pub fn out(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }

    /// Writes a line to stderr.
    pub fn err(&self, text: &str) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{text}");
    }

    /// Renders diagnostics to stderr.
    pub fn diags(&self, diags: &[Diagnostic], sources: &SourceMap) {
        if diags.is_empty() {
            return;
        }
        let text = flotilla_render::render_diagnostics(
            diags,
            sources,
            self.color && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        );
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
    }

    /// Bold text when colour is on.
    pub fn bold(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Green text when colour is on.
    pub fn green(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1;32m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Prints apply progress lines, Terraform-style.
pub struct PrintProgress;

fn verbs(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create | Action::CreateThenDelete | Action::DeleteThenCreate => {
            ("Creating...", "Creation complete")
        }
        Action::Update => ("Modifying...", "Modifications complete"),
        Action::Delete => ("Destroying...", "Destruction complete"),
        Action::Read => ("Reading...", "Read complete"),
        Action::NoOp => ("", ""),
    }
}

impl Progress for PrintProgress {
    fn event(&self, event: ApplyEvent<'_>) {
        let line = match event {
            ApplyEvent::Started { addr, action } => format!("{addr}: {}", verbs(action).0),
            ApplyEvent::Finished {
                addr,
                action,
                elapsed,
                id,
            } => {
                let id = id.map(|i| format!(" [id={i}]")).unwrap_or_default();
                format!(
                    "{addr}: {} after {}s{id}",
                    verbs(action).1,
                    elapsed.as_secs()
                )
            }
            ApplyEvent::Failed { addr, action } => {
                format!("{addr}: {} failed", verbs(action).0.trim_end_matches("..."))
            }
            ApplyEvent::Rollout { rollout, message } => format!("{rollout}: {message}"),
        };
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{line}");
    }
}
