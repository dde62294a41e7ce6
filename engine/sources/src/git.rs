//! Git: a revision as a [`SourceTree`] (for `flotilla diff`), and git module sources.
//!
//! Sources are fetched into bare clones in the cache (no working tree): `file://` URLs
//! through git2 in process; `https://`, `ssh://` and `USER@HOST:PATH` through the `git`
//! program, so the user's credential helpers, ssh keys and agent work as they do for git
//! itself. The chosen commit's tree is then read with git2 into a staging directory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flotilla_config::tree::normalize;
use flotilla_config::{EntryKind, GitSource, SourceTree};

use crate::version::{Constraint, Version};

/// One commit's tree in a repository, read-only, with relative paths taken from a base
/// directory inside it (the configuration's directory, as the working directory is on disk).
pub struct RevisionTree {
    repo: Mutex<git2::Repository>,
    tree: git2::Oid,
    base: PathBuf,
    label: String,
}

impl std::fmt::Debug for RevisionTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RevisionTree({})", self.label)
    }
}

impl RevisionTree {
    /// The tree of `commit` in the repository at `git_dir`, relative paths starting at
    /// `base`; files are shown as `LABEL:path-in-repository`.
    pub fn open(
        git_dir: &Path,
        commit: git2::Oid,
        base: &Path,
        label: String,
    ) -> Result<RevisionTree, git2::Error> {
        let repo = git2::Repository::open(git_dir)?;
        let tree = repo.find_commit(commit)?.tree_id();
        Ok(RevisionTree {
            repo: Mutex::new(repo),
            tree,
            base: normalize(base),
            label,
        })
    }

    fn in_repo(&self, path: &Path) -> PathBuf {
        normalize(&self.base.join(path))
    }

    fn with_entry<T>(
        &self,
        path: &Path,
        f: impl FnOnce(&git2::Repository, Option<git2::Object<'_>>) -> io::Result<T>,
    ) -> io::Result<T> {
        let repo = self.repo.lock().unwrap_or_else(|e| e.into_inner());
        let tree = repo.find_tree(self.tree).map_err(io::Error::other)?;
        let path = self.in_repo(path);
        if path.is_absolute() || path.starts_with("..") {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is outside the repository at {}",
                    path.display(),
                    self.label
                ),
            ));
        }
        if path.as_os_str().is_empty() {
            return f(&repo, Some(tree.into_object()));
        }
        let object = match tree.get_path(&path) {
            Ok(entry) => Some(entry.to_object(&repo).map_err(io::Error::other)?),
            Err(_) => None,
        };
        f(&repo, object)
    }
}

impl SourceTree for RevisionTree {
    fn files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let shown = self.display(dir);
        self.with_entry(dir, |_, obj| {
            let tree = obj.and_then(|o| o.into_tree().ok()).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no directory {}", shown.display()),
                )
            })?;
            let mut files: Vec<PathBuf> = tree
                .iter()
                .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
                .filter_map(|e| e.name().map(|n| normalize(&dir.join(n))))
                .collect();
            files.sort();
            Ok(files)
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let shown = self.display(path);
        self.with_entry(path, |_, obj| {
            obj.and_then(|o| o.into_blob().ok())
                .map(|b| b.content().to_vec())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{} does not exist", shown.display()),
                    )
                })
        })
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        self.with_entry(path, |_, obj| {
            Ok(obj.and_then(|o| match o.kind() {
                Some(git2::ObjectType::Tree) => Some(EntryKind::Dir),
                Some(git2::ObjectType::Blob) => Some(EntryKind::File),
                _ => None,
            }))
        })
    }

    fn display(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("{}:{}", self.label, self.in_repo(path).display()))
    }
}

/// What fetching a git source chose.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The commit.
    pub commit: git2::Oid,
    /// The version of the tag chosen by a constraint.
    pub version: Option<Version>,
}

/// The bare clone of `src.url` at `git_dir`, created and fetched.
pub fn fetch(src: &GitSource, git_dir: &Path) -> Result<git2::Repository, String> {
    let repo = match git2::Repository::open_bare(git_dir) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(git_dir).map_err(|e| format!("{}: {e}", git_dir.display()))?;
            git2::Repository::init_bare(git_dir).map_err(|e| e.message().to_string())?
        }
    };
    let refspecs = [
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
        "+HEAD:refs/flotilla/HEAD",
    ];
    if src.url.starts_with("file://") {
        let mut remote = repo
            .remote_anonymous(&src.url)
            .map_err(|e| e.message().to_string())?;
        let mut opts = git2::FetchOptions::new();
        opts.download_tags(git2::AutotagOption::All);
        // libgit2's local transport cannot fetch shallow, and a local repository costs
        // nothing to read whole: `depth` applies to network URLs.
        remote
            .fetch(&refspecs, Some(&mut opts), None)
            .map_err(|e| format!("cannot fetch {}: {}", src.url, e.message()))?;
    } else {
        let mut cmd = std::process::Command::new("git");
        cmd.arg("--git-dir")
            .arg(git_dir)
            .args(["fetch", "--quiet", "--force", "--tags"]);
        if let Some(d) = src.depth {
            cmd.arg(format!("--depth={d}"));
        }
        cmd.arg(&src.url).args(refspecs);
        let out = cmd.output().map_err(|e| {
            format!(
                "cannot run `git` to fetch {} ({e}); install git, or use a file:// URL",
                src.url
            )
        })?;
        if !out.status.success() {
            return Err(format!(
                "cannot fetch {}: {}",
                src.url,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(repo)
}

/// The version tags of a repository (`v1.2.0` and `1.2.0`), by version.
pub fn version_tags(repo: &git2::Repository) -> Vec<(Version, String)> {
    let mut tags: Vec<(Version, String)> = repo
        .tag_names(None)
        .map(|names| {
            names
                .iter()
                .flatten()
                .filter_map(|t| Version::parse(t).map(|v| (v, t.to_string())))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// Picks the commit for `src` in a fetched `repo`: a locked commit, the `ref`, the newest
/// tag matching `constraint`, or the default branch.
pub fn choose(
    repo: &git2::Repository,
    src: &GitSource,
    constraint: Option<&Constraint>,
    locked: Option<&str>,
) -> Result<Chosen, String> {
    let commit_of = |spec: &str| {
        repo.revparse_single(spec)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
    };
    if let Some(rev) = locked {
        let commit = commit_of(rev)
            .map_err(|_| format!("the locked commit {rev} is no longer in {}", src.url))?;
        let version = constraint.and_then(|_| {
            version_tags(repo)
                .into_iter()
                .rev()
                .find(|(_, t)| commit_of(&format!("refs/tags/{t}")).ok() == Some(commit))
                .map(|(v, _)| v)
        });
        return Ok(Chosen { commit, version });
    }
    if let Some(r) = &src.reference {
        for spec in [
            format!("refs/tags/{r}"),
            format!("refs/heads/{r}"),
            r.clone(),
        ] {
            if let Ok(commit) = commit_of(&spec) {
                return Ok(Chosen {
                    commit,
                    version: None,
                });
            }
        }
        let tags: Vec<String> = version_tags(repo).into_iter().map(|(_, t)| t).collect();
        let branches: Vec<String> = repo
            .branches(Some(git2::BranchType::Local))
            .map(|bs| {
                bs.flatten()
                    .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        return Err(format!(
            "ref `{r}` does not exist in {} (tags: {}; branches: {})",
            src.url,
            list(&tags),
            list(&branches)
        ));
    }
    if let Some(c) = constraint {
        let tags = version_tags(repo);
        let Some((version, tag)) = tags.iter().rev().find(|(v, _)| c.matches(v)) else {
            let all: Vec<String> = tags.iter().map(|(v, _)| v.to_string()).collect();
            return Err(format!(
                "no version of {} matches `{c}` (versions: {})",
                src.url,
                list(&all)
            ));
        };
        let commit = commit_of(&format!("refs/tags/{tag}")).map_err(|e| e.message().to_string())?;
        return Ok(Chosen {
            commit,
            version: Some(version.clone()),
        });
    }
    let commit = commit_of("refs/flotilla/HEAD").map_err(|_| {
        format!(
            "{} has no default branch; set `?ref=` or `version`",
            src.url
        )
    })?;
    Ok(Chosen {
        commit,
        version: None,
    })
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Writes the files of `commit`'s tree into `dir`.
pub fn extract(repo: &git2::Repository, commit: git2::Oid, dir: &Path) -> Result<(), String> {
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| e.message().to_string())?;
    write_tree(repo, &tree, dir).map_err(|e| format!("cannot write the module's files: {e}"))
}

fn write_tree(repo: &git2::Repository, tree: &git2::Tree<'_>, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in tree.iter() {
        let Some(name) = entry.name() else { continue };
        let path = dir.join(name);
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                let sub = entry
                    .to_object(repo)
                    .and_then(|o| o.peel_to_tree())
                    .map_err(io::Error::other)?;
                write_tree(repo, &sub, &path)?;
            }
            Some(git2::ObjectType::Blob) if entry.filemode() != 0o120000 => {
                let blob = entry
                    .to_object(repo)
                    .and_then(|o| o.peel_to_blob())
                    .map_err(io::Error::other)?;
                std::fs::write(&path, blob.content())?;
                #[cfg(unix)]
                if entry.filemode() == 0o100755 {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
                }
            }
            // Symlinks and submodules are not part of a module package.
            _ => {}
        }
    }
    Ok(())
}
