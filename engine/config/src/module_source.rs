//! The `source` of a module call, parsed: a local path, a git repository, an OCI repository or
//! a module registry address. Parsing is pure; fetching is `flotilla-sources`' job.
//!
//! ```text
//! ./path, ../path                                   a directory beside the calling module
//! git::URL[//SUBDIR][?ref=REF][&depth=N]             URL: https://, http://, ssh://, file:///,
//!                                                    or USER@HOST:PATH
//! oci://HOST/REPOSITORY[//SUBDIR][?tag=TAG|?digest=sha256:HEX]
//! HOST/NAMESPACE/NAME/SYSTEM[//SUBDIR]               a Terraform/OpenTofu module registry
//! std::KIND                                          the standard library built into flotilla
//! ```

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The grammar, for help texts.
pub const SOURCE_GRAMMAR: &str = "write `./dir` or `../dir`, `git::https://host/repo.git//sub?ref=v1.2.0`, `oci://host/repository`, or `host/namespace/name/system`";

/// Where a module's files come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModuleSource {
    /// A directory relative to the calling module (`./x`, `../x`).
    Local(PathBuf),
    /// A git repository.
    Git(GitSource),
    /// An OCI repository (any container registry).
    Oci(OciSource),
    /// A module in a Terraform-protocol module registry.
    Registry(RegistrySource),
    /// A module of the standard library built into flotilla (`std::cluster`): what a domain
    /// block (`cluster "x" { ... }`) calls unless its `source` says otherwise.
    Standard(String),
}

/// `git::URL//SUBDIR?ref=REF&depth=N`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GitSource {
    /// The repository URL, without `git::`, subdirectory or query.
    pub url: String,
    /// The module's directory inside the repository.
    pub subdir: Option<String>,
    /// A tag, branch or commit.
    pub reference: Option<String>,
    /// Shallow-fetch depth.
    pub depth: Option<u32>,
}

/// `oci://HOST/REPOSITORY//SUBDIR?tag=TAG`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciSource {
    /// Registry host (with port).
    pub registry: String,
    /// Repository path inside the registry.
    pub repository: String,
    /// The module's directory inside the package.
    pub subdir: Option<String>,
    /// A fixed tag (instead of a `version` constraint).
    pub tag: Option<String>,
    /// A fixed manifest digest.
    pub digest: Option<String>,
}

/// `HOST/NAMESPACE/NAME/SYSTEM//SUBDIR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistrySource {
    /// Registry host (with port).
    pub host: String,
    /// The publishing organisation.
    pub namespace: String,
    /// The module name.
    pub name: String,
    /// The target system (`kube`, `fleet`, ...).
    pub system: String,
    /// The module's directory inside the package.
    pub subdir: Option<String>,
}

impl ModuleSource {
    /// Parses a `source` string; the error says what is wrong (see [`SOURCE_GRAMMAR`]).
    pub fn parse(s: &str) -> Result<ModuleSource, String> {
        if s.starts_with("./") || s.starts_with("../") || s == "." || s == ".." {
            return Ok(ModuleSource::Local(PathBuf::from(s)));
        }
        if let Some(rest) = s.strip_prefix("git::") {
            return parse_git(rest).map(ModuleSource::Git);
        }
        if let Some(rest) = s.strip_prefix("oci://") {
            return parse_oci(rest).map(ModuleSource::Oci);
        }
        if let Some(kind) = s.strip_prefix("std::") {
            return if crate::DOMAIN_KINDS.contains(&kind) {
                Ok(ModuleSource::Standard(kind.to_string()))
            } else {
                Err(format!(
                    "`{kind}` is not a standard-library module; they are {}",
                    crate::DOMAIN_KINDS.join(", ")
                ))
            };
        }
        if s.starts_with('/') {
            return Err(format!(
                "`{s}` is an absolute path; local module paths start with `./` or `../` (or use `git::file://{s}` for a repository)"
            ));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!(
                "`{scheme}://` sources are not supported; prefix a git URL with `git::` or use `oci://`"
            ));
        }
        parse_registry(s).map(ModuleSource::Registry)
    }

    /// Whether the files come from outside the configuration and the binary (and need
    /// `flotilla init`).
    pub fn is_remote(&self) -> bool {
        !matches!(self, ModuleSource::Local(_) | ModuleSource::Standard(_))
    }

    /// The module's directory inside its package.
    pub fn subdir(&self) -> Option<&str> {
        match self {
            ModuleSource::Local(_) | ModuleSource::Standard(_) => None,
            ModuleSource::Git(g) => g.subdir.as_deref(),
            ModuleSource::Oci(o) => o.subdir.as_deref(),
            ModuleSource::Registry(r) => r.subdir.as_deref(),
        }
    }

    /// The same source without its subdirectory: what identifies the package.
    pub fn package(&self) -> ModuleSource {
        let mut p = self.clone();
        match &mut p {
            ModuleSource::Local(_) | ModuleSource::Standard(_) => {}
            ModuleSource::Git(g) => g.subdir = None,
            ModuleSource::Oci(o) => o.subdir = None,
            ModuleSource::Registry(r) => r.subdir = None,
        }
        p
    }

    /// Whether a `version` argument applies (git tags, OCI tags, registry versions).
    pub fn takes_version(&self) -> bool {
        match self {
            ModuleSource::Local(_) | ModuleSource::Standard(_) => false,
            ModuleSource::Git(g) => g.reference.is_none(),
            ModuleSource::Oci(o) => o.tag.is_none() && o.digest.is_none(),
            ModuleSource::Registry(_) => true,
        }
    }
}

fn split_subdir(s: &str) -> Result<(&str, Option<String>), String> {
    // The first `//` after the scheme's own `://` separates the subdirectory.
    let start = s.find("://").map(|i| i + 3).unwrap_or(0);
    let Some(i) = s[start..].find("//") else {
        return Ok((s, None));
    };
    let (base, sub) = (&s[..start + i], &s[start + i + 2..]);
    let sub = sub.trim_end_matches('/');
    if sub.is_empty() {
        return Err("the subdirectory after `//` is empty".into());
    }
    let p = Path::new(sub);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
    {
        return Err(format!(
            "the subdirectory `{sub}` escapes its repository; name a directory inside it without `..`"
        ));
    }
    Ok((base, Some(sub.to_string())))
}

fn split_query(s: &str) -> (&str, Vec<(&str, &str)>) {
    match s.split_once('?') {
        None => (s, Vec::new()),
        Some((base, q)) => (
            base,
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect(),
        ),
    }
}

fn parse_git(s: &str) -> Result<GitSource, String> {
    let (s, query) = split_query(s);
    let (url, subdir) = split_subdir(s)?;
    let scp_like = !url.contains("://") && url.contains('@') && url.contains(':');
    let known = ["https://", "http://", "ssh://", "file://"];
    if !scp_like && !known.iter().any(|k| url.starts_with(k)) {
        return Err(format!(
            "`{url}` is not a git URL; use https://, ssh://, file:/// or USER@HOST:PATH after `git::`"
        ));
    }
    if url.starts_with("file://") && !url.starts_with("file:///") {
        return Err(format!(
            "`{url}` is not an absolute file URL; write `file:///absolute/path/repo.git`"
        ));
    }
    let mut g = GitSource {
        url: url.to_string(),
        subdir,
        reference: None,
        depth: None,
    };
    for (k, v) in query {
        match k {
            "ref" if !v.is_empty() => g.reference = Some(v.to_string()),
            "depth" => {
                g.depth = Some(
                    v.parse()
                        .ok()
                        .filter(|d| *d > 0)
                        .ok_or_else(|| format!("`depth={v}` is not a positive number"))?,
                )
            }
            _ => {
                return Err(format!(
                    "`{k}` is not a git source argument; git sources take `ref` and `depth`"
                ));
            }
        }
    }
    Ok(g)
}

fn parse_oci(s: &str) -> Result<OciSource, String> {
    let (s, query) = split_query(s);
    let (base, subdir) = split_subdir(s)?;
    let Some((registry, repository)) = base.split_once('/') else {
        return Err(format!(
            "`oci://{base}` names no repository; write `oci://HOST/REPOSITORY`"
        ));
    };
    if registry.is_empty() || repository.is_empty() || repository.contains(':') {
        return Err(format!(
            "`oci://{base}` is not `oci://HOST/REPOSITORY`; put a tag in `version` or `?tag=`"
        ));
    }
    let mut o = OciSource {
        registry: registry.to_string(),
        repository: repository.trim_end_matches('/').to_string(),
        subdir,
        tag: None,
        digest: None,
    };
    for (k, v) in query {
        match k {
            "tag" if !v.is_empty() => o.tag = Some(v.to_string()),
            "digest" if v.starts_with("sha256:") => o.digest = Some(v.to_string()),
            _ => {
                return Err(format!(
                    "`{k}={v}` is not an OCI source argument; OCI sources take `tag=TAG` or `digest=sha256:HEX`"
                ));
            }
        }
    }
    if o.tag.is_some() && o.digest.is_some() {
        return Err("give either `tag` or `digest`, not both".into());
    }
    Ok(o)
}

fn parse_registry(s: &str) -> Result<RegistrySource, String> {
    let (base, subdir) = split_subdir(s)?;
    let parts: Vec<&str> = base.split('/').collect();
    let valid = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    match parts.as_slice() {
        [host, ns, name, system]
            if !host.is_empty() && [ns, name, system].iter().all(|p| valid(p)) =>
        {
            Ok(RegistrySource {
                host: host.to_string(),
                namespace: ns.to_string(),
                name: name.to_string(),
                system: system.to_string(),
                subdir,
            })
        }
        [_, _, _] => Err(format!(
            "`{s}` names no registry host; write `HOST/NAMESPACE/NAME/SYSTEM`"
        )),
        _ => Err(format!("`{s}` is not a module source")),
    }
}

impl fmt::Display for ModuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sub = |s: &Option<String>| s.as_ref().map(|s| format!("//{s}")).unwrap_or_default();
        match self {
            ModuleSource::Local(p) => write!(f, "{}", p.display()),
            ModuleSource::Standard(k) => write!(f, "std::{k}"),
            ModuleSource::Git(g) => {
                write!(f, "git::{}{}", g.url, sub(&g.subdir))?;
                let mut q = Vec::new();
                if let Some(r) = &g.reference {
                    q.push(format!("ref={r}"));
                }
                if let Some(d) = g.depth {
                    q.push(format!("depth={d}"));
                }
                if !q.is_empty() {
                    write!(f, "?{}", q.join("&"))?;
                }
                Ok(())
            }
            ModuleSource::Oci(o) => {
                write!(f, "oci://{}/{}{}", o.registry, o.repository, sub(&o.subdir))?;
                if let Some(t) = &o.tag {
                    write!(f, "?tag={t}")?;
                }
                if let Some(d) = &o.digest {
                    write!(f, "?digest={d}")?;
                }
                Ok(())
            }
            ModuleSource::Registry(r) => write!(
                f,
                "{}/{}/{}/{}{}",
                r.host,
                r.namespace,
                r.name,
                r.system,
                sub(&r.subdir)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> ModuleSource {
        let parsed = ModuleSource::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(parsed.to_string(), s);
        parsed
    }

    #[test]
    fn parses_every_kind_of_source() {
        assert!(matches!(round_trip("./net"), ModuleSource::Local(_)));
        let ModuleSource::Git(g) =
            round_trip("git::https://example.com/org/repo.git//modules/edge?ref=v1.2.0&depth=1")
        else {
            panic!()
        };
        assert_eq!(g.url, "https://example.com/org/repo.git");
        assert_eq!(g.subdir.as_deref(), Some("modules/edge"));
        assert_eq!(g.reference.as_deref(), Some("v1.2.0"));
        assert_eq!(g.depth, Some(1));
        round_trip("git::ssh://git@example.com/org/repo.git");
        round_trip("git::git@example.com:org/repo.git//x");
        let ModuleSource::Git(g) = round_trip("git::file:///tmp/repo.git") else {
            panic!()
        };
        assert_eq!(g.subdir, None);
        let ModuleSource::Oci(o) = round_trip("oci://127.0.0.1:5000/acme/edge//site?tag=1.0.0")
        else {
            panic!()
        };
        assert_eq!(
            (o.registry.as_str(), o.repository.as_str()),
            ("127.0.0.1:5000", "acme/edge")
        );
        let ModuleSource::Registry(r) = round_trip("registry.example.com/acme/edge/kube") else {
            panic!()
        };
        assert_eq!(r.system, "kube");
        assert!(round_trip("registry.example.com/acme/edge/kube//sub").is_remote());
        assert!(!round_trip("std::fleet").is_remote());
    }

    #[test]
    fn malformed_sources_say_what_is_wrong() {
        let err = |s: &str| ModuleSource::parse(s).unwrap_err();
        assert!(err("/abs/path").contains("absolute path"));
        assert!(err("https://example.com/x.zip").contains("git::"));
        assert!(err("git::example.com/repo").contains("not a git URL"));
        assert!(err("git::file://relative/repo").contains("absolute file URL"));
        assert!(err("git::file:///r.git//../../etc").contains("escapes its repository"));
        assert!(err("git::https://h/r.git?branch=main").contains("take `ref` and `depth`"));
        assert!(err("git::https://h/r.git?depth=0").contains("positive"));
        assert!(err("oci://host").contains("names no repository"));
        assert!(err("oci://host/repo:1.0").contains("put a tag in `version`"));
        assert!(err("acme/edge/kube").contains("names no registry host"));
        assert!(err("edge").contains("is not a module source"));
        assert!(err("std::flet").contains("not a standard-library module"));
    }
}
