//! The module cache: installed packages, keyed by the blake3 hash of their file tree.
//!
//! `.flotilla/modules/` beside the configuration, or the directory `FLOTILLA_MODULE_CACHE`
//! names (shared between working directories). A package lives in `<cache>/<HEX>/`, what it
//! was installed from in `<cache>/<HEX>.origins/`, git's bare clones in `<cache>/git/`. A package
//! is only ever written whole: fetched into a staging directory, hashed, then renamed into
//! place, so a half-written package never has a name.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The environment variable naming a shared cache directory.
pub const CACHE_ENV: &str = "FLOTILLA_MODULE_CACHE";

/// Where a package came from, stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The package's source (without a subdirectory).
    pub source: String,
    /// The version chosen, if any.
    pub version: Option<String>,
    /// Git commit or OCI manifest digest.
    pub revision: String,
}

/// A module cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache for a configuration in `workdir`.
    pub fn for_workdir(workdir: &Path) -> Cache {
        let root = match std::env::var_os(CACHE_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => workdir.join(".flotilla").join("modules"),
        };
        Cache { root }
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of the package with `hash` (`blake3:HEX`).
    pub fn package_dir(&self, hash: &str) -> PathBuf {
        self.root.join(hash.trim_start_matches("blake3:"))
    }

    /// Where the record of installing `hash` from `source` is: one per source, since two
    /// sources may hold the same files.
    fn origin_path(&self, hash: &str, source: &str) -> PathBuf {
        let key = blake3::hash(source.as_bytes()).to_hex();
        self.package_dir(hash)
            .with_extension("origins")
            .join(format!("{}.json", &key[..16]))
    }

    /// What the package with `hash` was installed from `source` as, if it was.
    pub fn origin(&self, hash: &str, source: &str) -> Option<Origin> {
        let meta = self.origin_path(hash, source);
        serde_json::from_slice(&std::fs::read(meta).ok()?).ok()
    }

    /// Records that the package with `hash` was installed as `origin`.
    pub fn record(&self, hash: &str, origin: &Origin) -> std::io::Result<()> {
        let path = self.origin_path(hash, &origin.source);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let meta = serde_json::to_vec_pretty(origin).map_err(std::io::Error::other)?;
        std::fs::write(path, meta)
    }

    /// A new empty staging directory inside the cache (removed when dropped).
    pub fn staging(&self) -> std::io::Result<tempfile::TempDir> {
        std::fs::create_dir_all(&self.root)?;
        tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&self.root)
    }

    /// Moves a staged package into place and records its origin; returns its hash.
    pub fn store(&self, staged: tempfile::TempDir, origin: &Origin) -> std::io::Result<String> {
        let hash = tree_hash(staged.path())?;
        let dir = self.package_dir(&hash);
        if dir.is_dir() && tree_hash(&dir).ok().as_deref() == Some(hash.as_str()) {
            drop(staged);
        } else {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::rename(staged.keep(), &dir)?;
        }
        self.record(&hash, origin)?;
        Ok(hash)
    }

    /// The directory for git's bare clone of `url`.
    pub fn git_dir(&self, url: &str) -> PathBuf {
        let key = blake3::hash(url.as_bytes()).to_hex();
        self.root.join("git").join(format!("{}.git", &key[..20]))
    }
}

/// `blake3:HEX` over every regular file below `dir`: relative path (with `/`), whether it
/// is executable, and contents, in path order. Empty directories, symlinks and `.git`
/// do not count, so the same files hash the same on every machine.
pub fn tree_hash(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    files.sort();
    let mut h = blake3::Hasher::new();
    for (rel, exec) in files {
        let bytes = std::fs::read(dir.join(&rel))?;
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update(&[u8::from(exec)]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(format!("blake3:{}", h.finalize().to_hex()))
}

/// Every regular file below `dir` as (relative path with `/`, executable), unsorted.
pub fn collect(dir: &Path, rel: &Path, out: &mut Vec<(String, bool)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir.join(rel))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        let path = rel.join(&name);
        if kind.is_dir() {
            collect(dir, &path, out)?;
        } else if kind.is_file() {
            let shown = path
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((shown, is_executable(&entry.metadata()?)));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_paths_contents_and_nothing_else() {
        let a = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(a.path().join("sub")).unwrap();
        std::fs::write(a.path().join("main.hcl"), "x").unwrap();
        std::fs::write(a.path().join("sub/y.hcl"), "y").unwrap();
        let h1 = tree_hash(a.path()).unwrap();
        std::fs::create_dir_all(a.path().join("empty")).unwrap();
        std::fs::create_dir_all(a.path().join(".git")).unwrap();
        std::fs::write(a.path().join(".git/HEAD"), "ref").unwrap();
        assert_eq!(tree_hash(a.path()).unwrap(), h1);
        std::fs::write(a.path().join("sub/y.hcl"), "z").unwrap();
        assert_ne!(tree_hash(a.path()).unwrap(), h1);
        assert!(h1.starts_with("blake3:") && h1.len() == 71);
    }

    #[test]
    fn store_moves_a_staged_package_into_place() {
        let w = tempfile::tempdir().unwrap();
        let cache = Cache {
            root: w.path().join("c"),
        };
        let staged = cache.staging().unwrap();
        std::fs::write(staged.path().join("main.hcl"), "x").unwrap();
        let origin = Origin {
            source: "git::file:///r.git".into(),
            version: None,
            revision: "abc".into(),
        };
        let hash = cache.store(staged, &origin).unwrap();
        assert!(cache.package_dir(&hash).join("main.hcl").is_file());
        assert_eq!(cache.origin(&hash, "git::file:///r.git"), Some(origin));
        let leftovers: Vec<_> = std::fs::read_dir(cache.root())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".staging"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
