//! Diagnostics rendered with miette: location, source snippet, label and help.

use std::fmt;

use flotilla_syntax::{Diagnostic, Severity, SourceMap};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};

struct Report {
    message: String,
    severity: Severity,
    help: Option<String>,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

fn report(d: &Diagnostic, sources: &SourceMap) -> Report {
    let mut message = d.summary.clone();
    let mut labels = Vec::new();
    let mut source = None;
    let mut elsewhere = Vec::new();
    match &d.span {
        Some(span) => {
            let file = sources.file(span.file);
            source = Some(
                NamedSource::new(file.path.display().to_string(), file.text.to_string())
                    .with_language("hcl"),
            );
            let label = match (&d.label, &d.detail) {
                (Some(l), Some(detail)) => {
                    message = format!("{message}: {detail}");
                    l.clone()
                }
                (Some(l), None) => l.clone(),
                (None, Some(detail)) => detail.clone(),
                (None, None) => String::new(),
            };
            labels.push(LabeledSpan::new_primary_with_span(
                Some(label),
                span.range.clone(),
            ));
            for (rs, text) in &d.related {
                if rs.file == span.file {
                    labels.push(LabeledSpan::new_with_span(
                        Some(text.clone()),
                        rs.range.clone(),
                    ));
                } else {
                    elsewhere.push(format!("{}: {text}", sources.location(rs)));
                }
            }
        }
        None => {
            if let Some(detail) = &d.detail {
                message = format!("{message}: {detail}");
            }
            for (rs, text) in &d.related {
                elsewhere.push(format!("{}: {text}", sources.location(rs)));
            }
        }
    }
    for e in elsewhere {
        message.push_str(&format!("\n  {e}"));
    }
    Report {
        message,
        severity: d.severity,
        help: d.help.clone(),
        source,
        labels,
    }
}

/// Renders diagnostics for a terminal (or plain text without colour), each with its location
/// (`file:line:column`), a source snippet and its help line, errors and warnings in the order given.
pub fn render_diagnostics(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_context_lines(1);
    let mut out = String::new();
    for d in diags {
        let r = report(d, sources);
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&format!("{}\n", r.message));
        }
    }
    out
}
