//! Rendering for people: plans as text, values, and diagnostics with source snippets.
//!
//! Everything here returns strings; the CLI decides where they go. Output is deterministic
//! (sorted), so it can be compared against golden files. Colour is a parameter: the CLI turns
//! it off for `NO_COLOR`, `-no-color` and non-terminals.
//!
//! **Invariant:** no sensitive value is ever rendered: values marked sensitive print as
//! `(sensitive value)` at every depth, in plans, outputs and diagnostics.

pub mod blocks;
mod diagnostics;
pub mod json;
pub mod markdown;
mod plan;
pub mod rollouts;

pub use diagnostics::render_diagnostics;
pub use plan::{Style, changed_attributes, render_change, render_plan, render_value_diff};
