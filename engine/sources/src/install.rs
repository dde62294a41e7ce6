//! Installing modules (`flotilla init`): resolve each remote call, fetch it into the cache,
//! verify it, and write the lock file.
//!
//! Installation loads the configuration the way every other command does, with a resolver
//! that reuses what the lock file and cache already hold and reports every other remote
//! call as pending; the pending calls are fetched, and the configuration is loaded again,
//! until nothing is pending (so modules that call remote modules install too). A call the
//! lock file covers is installed at exactly the locked revision, and must hash as locked;
//! `upgrade` resolves every call again within its constraint.

use std::cell::RefCell;
use std::path::Path;

use flotilla_config::addr::ModulePath;
use flotilla_config::{ModuleCall, ModuleResolver, ModuleSource, Resolution, Tree};
use flotilla_syntax::{Diagnostic, Diagnostics, SourceMap};

use crate::cache::{Cache, Origin, tree_hash};
use crate::installed::Installed;
use crate::lock::{LockFile, Locked};
use crate::version::{Constraint, Version};

/// One module whose locked version changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The call path.
    pub key: String,
    /// What was locked before (`None`: newly locked).
    pub old: Option<String>,
    /// What is locked now (`None`: no longer called).
    pub new: Option<String>,
}

/// What an installation did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The lock file written.
    pub lock: LockFile,
    /// Modules fetched this run (the others came from the cache).
    pub fetched: Vec<String>,
    /// Lock entries that changed.
    pub changes: Vec<Change>,
    /// Warnings from loading.
    pub warnings: Diagnostics,
}

/// Installs what the configuration in `workdir` needs; writes `flotilla.lock.hcl`.
/// `progress` receives one line per module fetched. Diagnostics refer to `sources`.
pub async fn install(
    workdir: &Path,
    sources: &mut SourceMap,
    upgrade: bool,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Outcome, Diagnostics> {
    let old = LockFile::read(workdir, sources).map_err(|d| Diagnostics(vec![d]))?;
    let cache = Cache::for_workdir(workdir);
    let mut new = LockFile::default();
    let mut fetched = Vec::new();
    let tree = Tree::default();
    for _round in 0..64 {
        let resolver = Collecting {
            old: &old,
            upgrade,
            new: RefCell::new(std::mem::take(&mut new)),
            pending: RefCell::new(Vec::new()),
            // One per round: a package is hashed once within a round, and again after the
            // fetches between rounds may have replaced it.
            installed: Installed::new(workdir, LockFile::default()),
        };
        let mut round_sources = SourceMap::new();
        let (_, diags) = flotilla_config::load(&tree, workdir, &mut round_sources, &resolver);
        new = resolver.new.into_inner();
        let pending = resolver.pending.into_inner();
        if diags.has_errors() || pending.is_empty() {
            *sources = merge(std::mem::take(sources), round_sources);
            if diags.has_errors() {
                return Err(diags);
            }
            let changes = changes(&old, &new);
            if new.render() != old.render() || !workdir.join(flotilla_config::LOCK_FILE).exists() {
                new.write(workdir).map_err(|e| {
                    Diagnostics(vec![
                        Diagnostic::error("cannot write the lock file")
                            .with_detail(format!("{}: {e}", flotilla_config::LOCK_FILE))
                            .with_help("check that the configuration directory is writable"),
                    ])
                })?;
            }
            return Ok(Outcome {
                lock: new,
                fetched,
                changes,
                warnings: diags,
            });
        }
        let mut errors = Diagnostics::new();
        for (key, call) in pending {
            let locked = reusable(&old, &key, &call, upgrade);
            progress(&format!(
                "- {key}: {}{}",
                call.source,
                match (locked, &call.version) {
                    (Some(l), _) =>
                        format!(" (locked {})", l.version.as_deref().unwrap_or(&l.revision)),
                    (None, Some((c, _))) => format!(" ({c})"),
                    (None, None) => String::new(),
                }
            ));
            match fetch(&cache, &call, locked).await {
                Ok(entry) => {
                    new.modules.insert(key.clone(), entry);
                    fetched.push(key);
                }
                Err(detail) => errors.push(
                    Diagnostic::error("cannot install module")
                        .with_span(call.source_span.clone())
                        .with_detail(format!("`{key}`: {detail}"))
                        .with_help(fetch_help(&detail)),
                ),
            }
        }
        if errors.has_errors() {
            *sources = merge(std::mem::take(sources), round_sources);
            return Err(errors);
        }
    }
    Err(Diagnostics(vec![
        Diagnostic::error("modules nest too deeply")
            .with_detail("remote modules call remote modules more than 64 levels deep")
            .with_help("check for modules that call each other through different sources"),
    ]))
}

/// Keeps the lock file's diagnostics (read into `a`) and the last load's files (`b`).
fn merge(a: SourceMap, b: SourceMap) -> SourceMap {
    if a.files().next().is_none() {
        return b;
    }
    let mut out = b;
    for (_, f) in a.files() {
        out.add(f.path.clone(), f.text.clone());
    }
    out
}

fn fetch_help(detail: &str) -> &'static str {
    if detail.contains("matches") {
        "change the `version` constraint to one the listed versions satisfy, or publish a matching version"
    } else if detail.contains("does not exist") {
        "name a tag, branch or commit that exists in the repository"
    } else if detail.contains("lock file says") {
        "if the change is expected, run `flotilla init -upgrade` to lock what the source holds now"
    } else if detail.contains("cannot reach")
        || detail.contains("cannot fetch")
        || detail.contains("cannot list")
        || detail.contains("cannot pull")
    {
        "check the address and that the server is up; modules already locked and installed keep working offline"
    } else {
        "check the module's `source` and `version`"
    }
}

/// The old lock entry for `key`, if it still describes `call` and no upgrade was asked.
fn reusable<'a>(
    old: &'a LockFile,
    key: &str,
    call: &ModuleCall,
    upgrade: bool,
) -> Option<&'a Locked> {
    let l = old.modules.get(key).filter(|_| !upgrade)?;
    let same_source = l.source == call.source.to_string();
    let same_constraint = l.constraint == call.version.as_ref().map(|(v, _)| v.clone());
    (same_source && same_constraint).then_some(l)
}

struct Collecting<'a> {
    old: &'a LockFile,
    upgrade: bool,
    new: RefCell<LockFile>,
    pending: RefCell<Vec<(String, ModuleCall)>>,
    installed: Installed,
}

impl ModuleResolver for Collecting<'_> {
    fn resolve(&self, path: &ModulePath, call: &ModuleCall) -> Resolution {
        if let ModuleSource::Standard(kind) = &call.source {
            return Resolution::Found(crate::standard::package(kind));
        }
        let key = path.to_string();
        if let Some(entry) = self.new.borrow().modules.get(&key).cloned() {
            return match self.installed.verify(&key, call, &entry) {
                Ok(p) => Resolution::Found(p),
                Err(d) => Resolution::Failed(d),
            };
        }
        if let Some(entry) = reusable(self.old, &key, call, self.upgrade)
            && let Ok(p) = self.installed.verify(&key, call, entry)
        {
            let mut entry = entry.clone();
            entry.span = None;
            self.new.borrow_mut().modules.insert(key, entry);
            return Resolution::Found(p);
        }
        self.pending.borrow_mut().push((key, call.clone()));
        Resolution::Pending
    }
}

/// Fetches one call's package into the cache: at the locked revision when `locked`.
async fn fetch(
    cache: &Cache,
    call: &ModuleCall,
    locked: Option<&Locked>,
) -> Result<Locked, String> {
    let constraint = match &call.version {
        Some((v, _)) => Some(Constraint::parse(v).map_err(|e| format!("invalid `version`: {e}"))?),
        None => None,
    };
    let (version, revision, hash) =
        fetch_source(cache, &call.source, constraint.as_ref(), locked).await?;
    if let Some(l) = locked
        && l.hash != hash
    {
        return Err(format!(
            "{} at {} hashes to {hash}, but the lock file says {}: the source changed since it was locked (a moved tag, or tampering)",
            call.source, l.revision, l.hash
        ));
    }
    Ok(Locked {
        source: call.source.to_string(),
        constraint: call.version.as_ref().map(|(v, _)| v.clone()),
        version: version.map(|v| v.to_string()),
        revision,
        hash,
        span: None,
    })
}

type Fetched = (Option<Version>, String, String);

fn io(e: std::io::Error) -> String {
    format!("cannot write the module cache: {e}")
}

async fn fetch_source(
    cache: &Cache,
    source: &ModuleSource,
    constraint: Option<&Constraint>,
    locked: Option<&Locked>,
) -> Result<Fetched, String> {
    let package = source.package().to_string();
    let locked_version = locked
        .and_then(|l| l.version.as_deref())
        .and_then(Version::parse);
    match source {
        ModuleSource::Local(_) | ModuleSource::Standard(_) => {
            Err("a local path or standard-library module is not installed".into())
        }
        ModuleSource::Git(g) => {
            let repo = crate::git::fetch(g, &cache.git_dir(&g.url))?;
            let chosen =
                crate::git::choose(&repo, g, constraint, locked.map(|l| l.revision.as_str()))?;
            let version = chosen.version.or(locked_version);
            let staged = cache.staging().map_err(io)?;
            crate::git::extract(&repo, chosen.commit, staged.path())?;
            let revision = chosen.commit.to_string();
            let origin = Origin {
                source: package,
                version: version.as_ref().map(Version::to_string),
                revision: revision.clone(),
            };
            let hash = cache.store(staged, &origin).map_err(io)?;
            Ok((version, revision, hash))
        }
        ModuleSource::Oci(o) => {
            let reg = crate::oci::Registry::new(&o.registry);
            let (reference, version) = match (locked, &o.digest, &o.tag, constraint) {
                (Some(l), ..) => (l.revision.clone(), locked_version),
                (None, Some(d), ..) => (d.clone(), None),
                (None, None, Some(t), _) => (t.clone(), None),
                (None, None, None, Some(c)) => {
                    let (v, tag) = reg.newest(&o.repository, c).await?;
                    (tag, Some(v))
                }
                (None, None, None, None) => ("latest".to_string(), None),
            };
            let pulled = reg.pull(&o.repository, &reference).await?;
            let staged = cache.staging().map_err(io)?;
            crate::archive::unpack(&pulled.archive, staged.path())
                .map_err(|e| format!("cannot unpack {source}: {e}"))?;
            let computed = tree_hash(staged.path()).map_err(io)?;
            if let Some(claimed) = &pulled.tree_hash
                && *claimed != computed
            {
                return Err(format!(
                    "the package at {source} ({}) hashes to {computed}, but its manifest says {claimed}",
                    pulled.digest
                ));
            }
            let origin = Origin {
                source: package,
                version: version.as_ref().map(Version::to_string),
                revision: pulled.digest.clone(),
            };
            let hash = cache.store(staged, &origin).map_err(io)?;
            Ok((version, pulled.digest, hash))
        }
        ModuleSource::Registry(r) => {
            let reg = crate::registry::ModuleRegistry::discover(&r.host).await?;
            let version = match locked_version {
                Some(v) => v,
                None => reg.choose(r, constraint).await?,
            };
            let location = reg.location(r, &version).await?;
            let origin = |revision: String| Origin {
                source: package.clone(),
                version: Some(version.to_string()),
                revision,
            };
            if location.starts_with("git::") || location.starts_with("oci://") {
                let inner = ModuleSource::parse(&location)
                    .map_err(|e| format!("the registry gave the location `{location}`: {e}"))?;
                if inner.subdir().is_some() {
                    return Err(format!(
                        "the registry gave the location `{location}` with a subdirectory; registry packages are whole"
                    ));
                }
                let (_, inner_rev, hash) =
                    Box::pin(fetch_source(cache, &inner, None, None)).await?;
                let revision = format!("{location}@{inner_rev}");
                cache.record(&hash, &origin(revision.clone())).map_err(io)?;
                return Ok((Some(version), revision, hash));
            }
            let bytes = reg.download(&location).await?;
            let staged = cache.staging().map_err(io)?;
            crate::archive::unpack(&bytes, staged.path())
                .map_err(|e| format!("cannot unpack {location}: {e}"))?;
            let hash = cache.store(staged, &origin(location.clone())).map_err(io)?;
            Ok((Some(version), location, hash))
        }
    }
}

fn describe(l: &Locked) -> String {
    match &l.version {
        Some(v) => format!("{v} ({})", short(&l.revision)),
        None => short(&l.revision),
    }
}

fn short(rev: &str) -> String {
    let (prefix, rest) = rev
        .split_once(':')
        .filter(|(p, _)| *p == "sha256")
        .unwrap_or(("", rev));
    let cut: String = rest.chars().take(12).collect();
    if prefix.is_empty() {
        cut
    } else {
        format!("{prefix}:{cut}")
    }
}

fn changes(old: &LockFile, new: &LockFile) -> Vec<Change> {
    let mut out = Vec::new();
    for (key, n) in &new.modules {
        match old.modules.get(key) {
            Some(o) if o.revision == n.revision && o.hash == n.hash => {}
            o => out.push(Change {
                key: key.clone(),
                old: o.map(describe),
                new: Some(describe(n)),
            }),
        }
    }
    for (key, o) in &old.modules {
        if !new.modules.contains_key(key) {
            out.push(Change {
                key: key.clone(),
                old: Some(describe(o)),
                new: None,
            });
        }
    }
    out
}
