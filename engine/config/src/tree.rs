//! The source tree seam: where configuration files and the files `file()` reads come from.
//!
//! A [`SourceTree`] is a read-only file system: the disk ([`Disk`]), a git revision
//! (`flotilla diff`), modules embedded in the binary, or an installed module in the module
//! cache (a directory on disk). The loader and the file functions read only through one, so
//! the configuration at a git revision reads `file("x")` from that revision, not from the
//! checkout.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// A read-only tree of files.
pub trait SourceTree: Send + Sync + fmt::Debug {
    /// The regular files directly inside `dir`, as `dir.join(name)`, sorted.
    fn files(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// The bytes of one file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// What `path` names, or `None` when nothing is there.
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>>;
    /// The name a file is shown by in diagnostics (a git tree prefixes the revision).
    fn display(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }
    /// A name equal for every spelling of one directory (for recursion checks).
    fn identity(&self, dir: &Path) -> PathBuf {
        normalize(dir)
    }
    /// Reads a file as UTF-8 text.
    fn read_string(&self, path: &Path) -> io::Result<String> {
        String::from_utf8(self.read(path)?).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not UTF-8 text", self.display(path).display()),
            )
        })
    }
}

/// A shared handle on a tree; the default is the disk.
#[derive(Clone)]
pub struct Tree(pub Arc<dyn SourceTree>);

impl Tree {
    /// A handle on `tree`.
    pub fn new(tree: impl SourceTree + 'static) -> Tree {
        Tree(Arc::new(tree))
    }
}

impl Default for Tree {
    fn default() -> Tree {
        Tree::new(Disk)
    }
}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::ops::Deref for Tree {
    type Target = dyn SourceTree;
    fn deref(&self) -> &(dyn SourceTree + 'static) {
        &*self.0
    }
}

/// A directory inside a tree: what relative paths in file functions resolve against.
#[derive(Debug, Clone, Copy)]
pub struct Dir<'a> {
    /// The tree.
    pub tree: &'a dyn SourceTree,
    /// The directory inside it.
    pub path: &'a Path,
}

impl<'a> Dir<'a> {
    /// A directory on disk.
    pub fn disk(path: &'a Path) -> Dir<'a> {
        Dir { tree: &Disk, path }
    }
}

/// The local file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl SourceTree for Disk {
    fn files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() || std::fs::metadata(entry.path())?.is_file() {
                let path = entry.path();
                let path = path
                    .strip_prefix("./")
                    .map(Path::to_path_buf)
                    .unwrap_or(path);
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn identity(&self, dir: &Path) -> PathBuf {
        dir.canonicalize().unwrap_or_else(|_| normalize(dir))
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(Some(EntryKind::Dir)),
            Ok(_) => Ok(Some(EntryKind::File)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Files held in memory (modules embedded in the binary, tests).
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    files: BTreeMap<PathBuf, Vec<u8>>,
    label: String,
}

impl MemoryTree {
    /// An empty tree whose files are shown as `LABEL:path`.
    pub fn new(label: impl Into<String>) -> MemoryTree {
        MemoryTree {
            files: BTreeMap::new(),
            label: label.into(),
        }
    }

    /// Adds a file.
    pub fn insert(&mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(normalize(&path.into()), bytes.into());
    }
}

impl SourceTree for MemoryTree {
    fn files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let dir = normalize(dir);
        if self.kind(&dir)? != Some(EntryKind::Dir) {
            return Err(not_found(&self.display(&dir)));
        }
        Ok(self
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir.as_path()))
            .cloned()
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| not_found(&self.display(path)))
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        let path = normalize(path);
        if self.files.contains_key(&path) {
            return Ok(Some(EntryKind::File));
        }
        let is_dir = path.as_os_str().is_empty() || self.files.keys().any(|p| p.starts_with(&path));
        Ok(is_dir.then_some(EntryKind::Dir))
    }

    fn display(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("{}:{}", self.label, normalize(path).display()))
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

/// `a/./b/../c` → `a/c`, lexically; a leading `..` that cannot be removed is kept.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if out.file_name().is_some() && !out.ends_with("..") =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_tree_lists_reads_and_names_files() {
        let mut t = MemoryTree::new("embedded");
        t.insert("cluster/main.hcl", "a = 1");
        t.insert("cluster/sub/x.hcl", "b = 2");
        assert_eq!(
            t.files(Path::new("cluster")).unwrap(),
            vec![PathBuf::from("cluster/main.hcl")]
        );
        assert_eq!(t.read(Path::new("./cluster/main.hcl")).unwrap(), b"a = 1");
        assert_eq!(
            t.kind(Path::new("cluster/sub")).unwrap(),
            Some(EntryKind::Dir)
        );
        assert_eq!(t.kind(Path::new("nope")).unwrap(), None);
        let err = t.read(Path::new("cluster/none.hcl")).unwrap_err();
        assert_eq!(err.to_string(), "embedded:cluster/none.hcl does not exist");
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalize(Path::new("../x/..")), PathBuf::from(".."));
    }
}
