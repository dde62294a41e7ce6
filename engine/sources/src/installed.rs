//! Loading installed modules: the lock file and the cache, verified, offline.
//!
//! [`Installed`] is the [`ModuleResolver`] every command but `init` loads with. For each
//! remote module call it finds the call's entry in the lock file, checks the entry still
//! describes the call (same source and constraint), finds the package in the cache, checks
//! the cache's record of where it came from agrees with the lock, and hashes its files
//! against the lock. Any disagreement is an error naming the module, what was expected,
//! what was found, and the command that fixes it. Nothing is fetched.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use flotilla_config::addr::ModulePath;
use flotilla_config::{ModuleCall, ModuleResolver, Package, Resolution, Tree};
use flotilla_syntax::Diagnostic;

use crate::cache::{Cache, tree_hash};
use crate::lock::{LockFile, Locked};

/// The installed modules of one configuration.
#[derive(Debug)]
pub struct Installed {
    lock: LockFile,
    cache: Cache,
    tree: Tree,
    /// Hashes computed this run, by package directory.
    hashed: Mutex<HashMap<std::path::PathBuf, Result<String, String>>>,
}

impl Installed {
    /// The modules installed for the configuration in `workdir`, per `lock`.
    pub fn new(workdir: &Path, lock: LockFile) -> Installed {
        Installed {
            lock,
            cache: Cache::for_workdir(workdir),
            tree: Tree::default(),
            hashed: Mutex::new(HashMap::new()),
        }
    }

    /// The lock file.
    pub fn lock(&self) -> &LockFile {
        &self.lock
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Checks that `locked` is what `call` asks for and that its package is installed intact.
    pub fn verify(
        &self,
        key: &str,
        call: &ModuleCall,
        locked: &Locked,
    ) -> Result<Package, Diagnostic> {
        let at_call = |d: Diagnostic| {
            let d = d.with_span(call.source_span.clone());
            match &locked.span {
                Some(s) => d.with_related(s.clone(), "locked here"),
                None => d,
            }
        };
        let source = call.source.to_string();
        let constraint = call.version.as_ref().map(|(v, _)| v.clone());
        if locked.source != source || locked.constraint != constraint {
            let (what, was, now) = if locked.source != source {
                ("source", locked.source.clone(), source)
            } else {
                (
                    "version constraint",
                    locked.constraint.clone().unwrap_or_else(|| "(none)".into()),
                    constraint.unwrap_or_else(|| "(none)".into()),
                )
            };
            return Err(at_call(
                Diagnostic::error("module changed since `flotilla init`")
                    .with_detail(format!(
                        "`{key}` is locked with {what} `{was}`; the configuration now says `{now}`"
                    ))
                    .with_help("run `flotilla init` to install what the configuration asks for and update the lock file"),
            ));
        }
        let dir = self.cache.package_dir(&locked.hash);
        let package_source = call.source.package().to_string();
        let Some(origin) = self
            .cache
            .origin(&locked.hash, &package_source)
            .filter(|_| dir.is_dir())
        else {
            return Err(at_call(
                Diagnostic::error("module not installed")
                    .with_detail(format!(
                        "`{key}` ({}) is locked but not in the module cache at {}",
                        locked.source,
                        self.cache.root().display()
                    ))
                    .with_help(
                        "run `flotilla init` to install it (the lock file's version is kept)",
                    ),
            ));
        };
        if origin.source != package_source
            || origin.revision != locked.revision
            || origin.version != locked.version
        {
            return Err(at_call(
                Diagnostic::error("lock file does not match the installed module")
                    .with_detail(format!(
                        "`{key}` is locked at {} (revision {}), but the package with hash {} was installed from {} at {} (revision {})",
                        locked.version.as_deref().unwrap_or("no version"),
                        locked.revision,
                        locked.hash,
                        origin.source,
                        origin.version.as_deref().unwrap_or("no version"),
                        origin.revision
                    ))
                    .with_help("the lock file was edited by hand: restore it from version control, or run `flotilla init -upgrade` to resolve and lock again"),
            ));
        }
        let found = {
            let mut hashed = self.hashed.lock().unwrap_or_else(|e| e.into_inner());
            hashed
                .entry(dir.clone())
                .or_insert_with(|| tree_hash(&dir).map_err(|e| e.to_string()))
                .clone()
        };
        match found {
            Ok(h) if h == locked.hash => {}
            Ok(h) => {
                return Err(at_call(
                    Diagnostic::error("installed module does not match the lock file")
                        .with_detail(format!(
                            "the files of `{key}` in {} changed after they were installed: expected {}, found {h}",
                            dir.display(),
                            locked.hash
                        ))
                        .with_help("run `flotilla init` to reinstall it from its source; the lock file's hash is checked again"),
                ));
            }
            Err(e) => {
                return Err(at_call(
                    Diagnostic::error("cannot read an installed module")
                        .with_detail(format!("{}: {e}", dir.display()))
                        .with_help("run `flotilla init` to reinstall it"),
                ));
            }
        }
        Ok(Package {
            tree: self.tree.clone(),
            dir: match call.source.subdir() {
                Some(sub) => dir.join(sub),
                None => dir.clone(),
            },
            root: dir,
        })
    }
}

impl ModuleResolver for Installed {
    fn resolve(&self, path: &ModulePath, call: &ModuleCall) -> Resolution {
        if let flotilla_config::ModuleSource::Standard(kind) = &call.source {
            return Resolution::Found(crate::standard::package(kind));
        }
        let key = path.to_string();
        let Some(locked) = self.lock.modules.get(&key) else {
            return Resolution::Failed(
                Diagnostic::error("module not installed")
                    .with_span(call.source_span.clone())
                    .with_detail(format!(
                        "`{key}` comes from `{}`, which is not in the lock file",
                        call.source
                    ))
                    .with_help(
                        "run `flotilla init` to install it and record it in flotilla.lock.hcl",
                    ),
            );
        };
        match self.verify(&key, call, locked) {
            Ok(p) => Resolution::Found(p),
            Err(d) => Resolution::Failed(d),
        }
    }
}
