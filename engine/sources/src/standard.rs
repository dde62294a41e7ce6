//! The standard library: the first-party modules in the repository's `modules/` directory
//! (`cluster`, `fleet`, `addon`, `policy`, `rollout`), embedded in the binary at build time.
//! Domain blocks call them (`cluster "beijing" { ... }` is a call of `std::cluster`); they
//! need no `flotilla init` and no lock entry, since they change only with flotilla itself.

use std::path::PathBuf;
use std::sync::OnceLock;

use flotilla_config::{MemoryTree, Package, Tree};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/std_modules.rs"));
}

/// The standard library as a tree; its files are shown as `std:KIND/FILE`.
pub fn tree() -> Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut t = MemoryTree::new("std");
        for (path, bytes) in embedded::FILES {
            t.insert(*path, bytes.to_vec());
        }
        Tree::new(t)
    })
    .clone()
}

/// The package of the standard-library module `kind`.
pub fn package(kind: &str) -> Package {
    Package {
        tree: tree(),
        // One package: the standard modules may call each other (`../cluster`).
        root: PathBuf::new(),
        dir: PathBuf::from(kind),
    }
}

/// The embedded files (path under `modules/`, contents), for `flotilla modules -std` and tests.
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    embedded::FILES
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_domain_kind_is_a_module_with_a_readme_that_loads() {
        let tree = tree();
        for kind in flotilla_config::DOMAIN_KINDS {
            assert!(
                tree.kind(&Path::new(kind).join("README.md"))
                    .unwrap()
                    .is_some(),
                "modules/{kind}/README.md"
            );
            let mut sources = flotilla_syntax::SourceMap::new();
            let (module, diags) = flotilla_config::load(
                &tree,
                Path::new(kind),
                &mut sources,
                &flotilla_config::LocalOnly,
            );
            assert!(!diags.has_errors(), "modules/{kind}: {:?}", diags.0);
            let module = module.expect("loads");
            assert!(
                module.variables.contains_key("name"),
                "{kind} takes its label as `name`"
            );
            assert!(!module.outputs.is_empty(), "{kind} has outputs");
        }
    }
}
