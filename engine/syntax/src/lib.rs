//! Source text, spans and diagnostics: the bottom layer of flotilla.
//!
//! Every configuration file flotilla reads is registered in a [`SourceMap`] and gets a
//! [`FileId`]. Anything that can go wrong with user input is reported as a [`Diagnostic`]
//! carrying a [`Span`] (file + byte range), a fixed summary, a detail that says what is
//! wrong, and a help line that says how to fix it. Diagnostics accumulate in
//! [`Diagnostics`] so a run reports every problem it finds, not just the first.
//!
//! This crate does no printing: rendering diagnostics lives in `flotilla-render`.
//!
//! **Invariant:** spans always point into text held by the [`SourceMap`] they were made with.

mod diagnostic;
mod source;
mod suggest;
pub mod timing;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use source::{FileId, SourceFile, SourceMap, Span, parse_body, parse_expr_in};
pub use suggest::did_you_mean;

/// The hcl-edit crate flotilla parses with, re-exported so every crate uses the same version.
pub use hcl_edit;
