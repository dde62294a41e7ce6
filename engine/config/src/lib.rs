//! The typed configuration model: what the user's `.hcl` files declare, before evaluation.
//!
//! [`load_dir`] reads a directory of configuration (every `*.hcl` file except variable files
//! `*.vars.hcl`), checks its shape (known blocks and attributes, no duplicates, no `count`
//! together with `for_each`) and returns a [`Module`] tree with every local child module
//! loaded. Expressions are kept unevaluated ([`Expr`]) with their source spans; evaluating
//! them is `flotilla-lang`'s job.
//!
//! [`addr`] holds the typed addresses used everywhere (`module.a["x"].kube_namespace.ns[0]`),
//! each with `Display` and `FromStr` that round-trip.
//!
//! **Invariant:** the config model is pure data; the only IO here is reading files in
//! [`load_dir`].

pub mod addr;
mod load;
mod model;

pub use load::{
    is_config_file, is_identifier, literal_str, load_dir, load_dir_with, traversal_names,
};
pub use model::*;
