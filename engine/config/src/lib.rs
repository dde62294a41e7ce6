//! The typed configuration model: what the user's `.hcl` files declare, before evaluation.
//!
//! [`load`] reads a directory of configuration (every `*.hcl` file except variable files
//! `*.vars.hcl`), checks its shape (known blocks and attributes, no duplicates, no `count`
//! together with `for_each`) and returns a [`Module`] tree with every local child module
//! loaded, through a [`SourceTree`] (the disk, a git revision, an installed module) and a
//! [`ModuleResolver`] that says where remote module calls were installed. Expressions are kept unevaluated ([`Expr`]) with their source spans; evaluating
//! them is `flotilla-lang`'s job.
//!
//! [`addr`] holds the typed addresses used everywhere (`module.a["x"].kube_namespace.ns[0]`),
//! each with `Display` and `FromStr` that round-trip.
//!
//! **Invariant:** the config model is pure data; the only IO here is reading files through a
//! [`SourceTree`] in [`load`]. Nothing here fetches: installing modules is `flotilla-sources`.

pub mod addr;
mod load;
mod model;
mod module_source;
pub mod tree;

pub use load::{
    LocalOnly, ModuleResolver, Package, Resolution, is_config_file, is_identifier, literal_str,
    load, load_dir, traversal_names,
};
pub use model::*;
pub use module_source::{GitSource, ModuleSource, OciSource, RegistrySource, SOURCE_GRAMMAR};
pub use tree::{Dir, Disk, EntryKind, MemoryTree, SourceTree, Tree};

/// The domain blocks: each is a module call on the standard-library module of its kind,
/// addressed `KIND.NAME` (`cluster.beijing`).
pub const DOMAIN_KINDS: [&str; 5] = ["cluster", "fleet", "addon", "policy", "rollout"];

/// How a module call is addressed: `module.NAME`, or `KIND.NAME` for a domain block (whose
/// call name already is `KIND.NAME`).
pub fn call_address(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains('.') {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("module.{name}"))
    }
}

/// The lock file `flotilla init` writes beside the root module (not configuration).
pub const LOCK_FILE: &str = "flotilla.lock.hcl";
