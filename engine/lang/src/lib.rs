//! flotilla's expression language: values with marks, type constraints, the evaluator and the
//! function library.
//!
//! - [`Value`] is a dynamically typed value that may be wholly or partly [`Value::Unknown`]
//!   ("known after apply") and may carry the [`Value::Sensitive`] mark. Both marks propagate
//!   through every operator, function, conditional, `for` expression and template.
//! - [`Type`] is a type constraint (`list(object({ name = string, port = optional(number, 80) }))`)
//!   with Terraform's conversion rules ([`convert`]).
//! - [`Evaluator`] evaluates hcl-edit expressions against a [`Scope`] that resolves references
//!   (`var.x`, `local.y`, `builtin_data.a`, `module.m`, `count.index`, `each.key`, ...). Every
//!   error is a [`Diagnostic`] with the span of the failing sub-expression.
//! - [`references`] lists the references an expression makes, for building the graph.
//! - [`functions`] holds the built-in function library, with Terraform's names and semantics.
//!
//! **Invariant:** evaluation does no IO except the file functions (`file`, `templatefile`,
//! `fileexists`), which read relative to the module directory given in [`EvalContext`].

mod eval;
pub mod functions;
mod number;
mod path;
mod refs;
mod template;
mod types;
mod value;

pub use eval::{EmptyScope, EvalContext, Evaluator, Scope, values_equal};
pub use number::{Number, NumberError};
pub use path::{AttrPath, PathStep, diff_paths};
pub use refs::{Reference, Subject, parse_reference, references};
pub use types::{ObjectAttr, Type, convert, parse_type, unify};
pub use value::{Value, number_from_json, number_to_json, render_value};

pub use flotilla_syntax::{Diagnostic, Diagnostics, Span};
