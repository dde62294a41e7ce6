//! `flotilla.lock.hcl`: what `flotilla init` resolved for each remote module call.
//!
//! ```hcl
//! lock_version = 1
//!
//! module "module.edge" {
//!   source     = "git::file:///srv/modules.git//edge"
//!   constraint = "~> 1.0"
//!   version    = "1.1.0"
//!   revision   = "1f0c…"            # git commit, or OCI manifest digest
//!   hash       = "blake3:9a3e…"     # the installed package's file tree
//! }
//! ```
//!
//! One block per module call path. The format is versioned (`lock_version`); a newer version
//! than this binary knows is refused with a hint to upgrade. Writing is deterministic (blocks
//! sorted by path), so the file diffs cleanly in review.

use std::collections::BTreeMap;
use std::path::Path;

use flotilla_config::literal_str;
use flotilla_syntax::hcl_edit::structure::Structure;
use flotilla_syntax::{Diagnostic, FileId, SourceMap, Span, parse_body};

/// The newest lock format this binary reads and the one it writes.
pub const LOCK_VERSION: u64 = 1;

/// One locked module call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// The call's `source`, as written (canonical form).
    pub source: String,
    /// The call's `version` constraint, when it had one.
    pub constraint: Option<String>,
    /// The version chosen (a tag's version, a registry version), when there is one.
    pub version: Option<String>,
    /// The git commit or OCI manifest digest that was installed.
    pub revision: String,
    /// `blake3:HEX` over the installed package's files.
    pub hash: String,
    /// Where the block is in the lock file (for diagnostics), when read from one.
    pub span: Option<Span>,
}

/// The lock file's contents: module call path (`module.a.module.b`) to what was locked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockFile {
    /// Entries by call path.
    pub modules: BTreeMap<String, Locked>,
    /// The file the lock was read from, if any.
    pub file: Option<FileId>,
}

impl LockFile {
    /// Reads the lock file in `dir` (a missing file is an empty lock).
    pub fn read(dir: &Path, sources: &mut SourceMap) -> Result<LockFile, Diagnostic> {
        let path = dir.join(flotilla_config::LOCK_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let shown = path.strip_prefix("./").unwrap_or(&path).to_path_buf();
                let file = sources.add(shown, text.as_str());
                LockFile::parse(file, &text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LockFile::default()),
            Err(e) => Err(Diagnostic::error("cannot read the lock file")
                .with_detail(format!("{}: {e}", path.display()))
                .with_help("check the file's permissions, or delete it and run `flotilla init`")),
        }
    }

    /// Parses lock file text registered as `file`.
    pub fn parse(file: FileId, text: &str) -> Result<LockFile, Diagnostic> {
        use flotilla_syntax::hcl_edit::Span as _;
        let body = parse_body(file, text)?;
        let span_of = |r: Option<std::ops::Range<usize>>| Span::new(file, r.unwrap_or(0..0));
        let bad = |span: Span, detail: String| {
            Diagnostic::error("invalid lock file")
                .with_span(span)
                .with_detail(detail)
                .with_help("the lock file is written by `flotilla init`; undo the hand edit, or delete it and run `flotilla init`")
        };
        let mut lock = LockFile {
            file: Some(file),
            ..LockFile::default()
        };
        let mut version = None;
        for s in body.iter() {
            match s {
                Structure::Attribute(a) if a.key.as_str() == "lock_version" => {
                    let v = match &a.value {
                        flotilla_syntax::hcl_edit::expr::Expression::Number(n) => n.as_u64(),
                        _ => None,
                    };
                    let span = span_of(a.value.span());
                    match v {
                        Some(v) if v <= LOCK_VERSION => version = Some(v),
                        Some(v) => {
                            return Err(Diagnostic::error("lock file from a newer flotilla")
                                .with_span(span)
                                .with_detail(format!(
                                    "lock_version {v} is newer than this flotilla reads ({LOCK_VERSION})"
                                ))
                                .with_help("upgrade flotilla to the version that wrote the lock file"));
                        }
                        None => {
                            return Err(bad(span, "`lock_version` must be a whole number".into()));
                        }
                    }
                }
                Structure::Block(b) if b.ident.as_str() == "module" && b.labels.len() == 1 => {
                    let key = b.labels[0].as_str().to_string();
                    let span = span_of(b.span());
                    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
                    for inner in b.body.iter() {
                        let Structure::Attribute(a) = inner else {
                            return Err(bad(span, format!("module `{key}` holds a block")));
                        };
                        let name = a.key.as_str();
                        if !["source", "constraint", "version", "revision", "hash"].contains(&name)
                        {
                            return Err(bad(
                                span_of(a.span()),
                                format!("`{name}` is not a lock file field"),
                            ));
                        }
                        let Some(v) = literal_str(&a.value) else {
                            return Err(bad(
                                span_of(a.value.span()),
                                format!("`{name}` must be a string"),
                            ));
                        };
                        fields.insert(name, v);
                    }
                    let mut take = |name: &str| fields.remove(name);
                    let (Some(source), Some(revision), Some(hash)) =
                        (take("source"), take("revision"), take("hash"))
                    else {
                        return Err(bad(
                            span,
                            format!("module `{key}` needs `source`, `revision` and `hash`"),
                        ));
                    };
                    if !hash.starts_with("blake3:") || hash.len() != 7 + 64 {
                        return Err(bad(
                            span,
                            format!("module `{key}` has a malformed hash `{hash}`"),
                        ));
                    }
                    let locked = Locked {
                        source,
                        constraint: take("constraint"),
                        version: take("version"),
                        revision,
                        hash,
                        span: Some(span.clone()),
                    };
                    if lock.modules.insert(key.clone(), locked).is_some() {
                        return Err(bad(span, format!("module `{key}` is locked twice")));
                    }
                }
                other => {
                    let span = span_of(match other {
                        Structure::Attribute(a) => a.span(),
                        Structure::Block(b) => b.span(),
                    });
                    return Err(bad(
                        span,
                        "expected `lock_version` and `module \"PATH\"` blocks".into(),
                    ));
                }
            }
        }
        if version.is_none() && !lock.modules.is_empty() {
            return Err(bad(
                Span::new(file, 0..0),
                "`lock_version` is missing".into(),
            ));
        }
        Ok(lock)
    }

    /// The lock file's text, deterministic.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# This file is maintained by \"flotilla init\"; commit it, so every run\n\
             # uses the same module versions. Do not edit it by hand.\n\n",
        );
        out.push_str(&format!("lock_version = {LOCK_VERSION}\n"));
        for (key, m) in &self.modules {
            out.push_str(&format!("\nmodule {} {{\n", quote(key)));
            let mut field = |name: &str, v: &str| {
                out.push_str(&format!("  {name:<10} = {}\n", quote(v)));
            };
            field("source", &m.source);
            if let Some(c) = &m.constraint {
                field("constraint", c);
            }
            if let Some(v) = &m.version {
                field("version", v);
            }
            field("revision", &m.revision);
            field("hash", &m.hash);
            out.push_str("}\n");
        }
        out
    }

    /// Writes the lock file into `dir` (atomically: a temporary file renamed over it).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(flotilla_config::LOCK_FILE);
        let tmp = dir.join(format!(".{}.tmp", flotilla_config::LOCK_FILE));
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(&tmp, &path)
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace("${", "$${")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LockFile {
        let mut l = LockFile::default();
        l.modules.insert(
            "module.edge".into(),
            Locked {
                source: "git::file:///srv/modules.git//edge".into(),
                constraint: Some("~> 1.0".into()),
                version: Some("1.1.0".into()),
                revision: "0123456789abcdef0123456789abcdef01234567".into(),
                hash: format!("blake3:{}", "a".repeat(64)),
                span: None,
            },
        );
        l
    }

    #[test]
    fn renders_and_reads_back() {
        let text = sample().render();
        let mut sm = SourceMap::new();
        let id = sm.add("flotilla.lock.hcl", text.as_str());
        let mut back = LockFile::parse(id, &text).unwrap();
        for m in back.modules.values_mut() {
            m.span = None;
        }
        back.file = None;
        assert_eq!(back, sample());
    }

    #[test]
    fn reads_the_fixture_of_every_format_version() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/lockfiles");
        let path = dir.join(format!("v{LOCK_VERSION}.lock.hcl"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut sm = SourceMap::new();
        let id = sm.add(path.clone(), text.as_str());
        let lock = LockFile::parse(id, &text).unwrap();
        assert_eq!(lock.modules.len(), 2);
        let edge = &lock.modules["module.edge"];
        assert_eq!(edge.version.as_deref(), Some("1.1.0"));
        assert!(lock.modules["module.mesh"].revision.starts_with("sha256:"));
    }

    #[test]
    fn hand_edits_are_errors_with_a_line() {
        let text = sample().render().replace("blake3:aaaa", "blake3:zz");
        let mut sm = SourceMap::new();
        let id = sm.add("flotilla.lock.hcl", text.as_str());
        let err = LockFile::parse(id, &text).unwrap_err();
        assert!(
            err.detail
                .as_deref()
                .unwrap_or("")
                .contains("malformed hash"),
            "{err:?}"
        );
        let newer = "lock_version = 9\n";
        let id = sm.add("flotilla.lock.hcl", newer);
        let err = LockFile::parse(id, newer).unwrap_err();
        assert!(err.summary.contains("newer flotilla"), "{err:?}");
    }
}
