//! Source files and byte spans into them.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hcl_edit::structure::Body;

use crate::Diagnostic;

/// Identifies one file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// The file the range points into.
    pub file: FileId,
    /// Byte offsets, start inclusive, end exclusive.
    pub range: Range<usize>,
}

impl Span {
    /// A span covering `range` in `file`.
    pub fn new(file: FileId, range: Range<usize>) -> Span {
        Span { file, range }
    }

    /// The span of an hcl-edit node, falling back to `fallback` for nodes built in code.
    pub fn of(file: FileId, node: &impl hcl_edit::Span, fallback: &Span) -> Span {
        match node.span() {
            Some(range) => Span { file, range },
            None => fallback.clone(),
        }
    }
}

/// One file of configuration text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as shown to users (relative to the working directory where possible).
    pub path: PathBuf,
    /// The full text.
    pub text: Arc<str>,
}

impl SourceFile {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }
}

/// All source files read during one run.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Registers a file and returns its id.
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            path: path.into(),
            text: text.into(),
        });
        id
    }

    /// The file with this id.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// The id of a registered path, if any.
    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.path == path)
            .map(|i| FileId(i as u32))
    }

    /// The text a span covers.
    pub fn snippet(&self, span: &Span) -> &str {
        let text = &self.file(span.file).text;
        text.get(span.range.clone()).unwrap_or("")
    }

    /// `path:line:col` for a span, the way compilers print locations.
    pub fn location(&self, span: &Span) -> String {
        let file = self.file(span.file);
        let (line, col) = file.line_col(span.range.start);
        format!("{}:{line}:{col}", file.path.display())
    }

    /// All files, in registration order.
    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }
}

/// Parses a whole file body, turning a syntax error into a diagnostic at its position.
pub fn parse_body(file: FileId, text: &str) -> Result<Body, Diagnostic> {
    hcl_edit::parser::parse_body(text).map_err(|err| syntax_error(file, text, &err))
}

/// Parses a standalone expression (for `-var` values, the console and tests).
pub fn parse_expr_in(file: FileId, text: &str) -> Result<hcl_edit::expr::Expression, Diagnostic> {
    hcl_edit::parser::parse_expr(text).map_err(|err| syntax_error(file, text, &err))
}

fn syntax_error(file: FileId, text: &str, err: &hcl_edit::parser::Error) -> Diagnostic {
    let offset = err.location().offset().min(text.len());
    let end = text[offset..]
        .char_indices()
        .nth(1)
        .map_or(text.len(), |(i, _)| offset + i);
    Diagnostic::error("syntax error")
        .with_span(Span::new(file, offset..end.max(offset)))
        .with_label(err.message().to_string())
        .with_help("check the HCL syntax near this position: unbalanced brackets, a missing `=` or an unterminated string are the usual causes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile {
            path: "a.hcl".into(),
            text: "ab\ncd\n".into(),
        };
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(4), (2, 2));
    }

    /// The patched object parser (engine/vendor/README.md) keeps upstream's key equality.
    #[test]
    fn object_keys_are_checked_for_redefinition() {
        for text in [
            "a = { x = 1, y = 2, x = 3 }\n",
            "a = { \"x\" = 1, \"x\" = 2 }\n",
        ] {
            let err = parse_body(FileId(0), text).unwrap_err();
            assert!(
                err.label
                    .as_deref()
                    .unwrap_or("")
                    .contains("redefined object key"),
                "{text}: {err:?}"
            );
        }
        // An identifier and a string are different keys to the parser, as upstream.
        let body = parse_body(FileId(0), "a = { x = 1, \"x\" = 2, (k) = 3, (k) = 4 }\n");
        assert!(body.is_err(), "a repeated key expression is a redefinition");
        let body = parse_body(FileId(0), "a = { x = 1, \"x\" = 2 }\n").unwrap();
        let object = body.get_attribute("a").unwrap().value.as_object().unwrap();
        assert_eq!(object.len(), 2);
    }

    #[test]
    fn large_objects_keep_every_item_in_order() {
        let items: String = (0..5000).map(|i| format!("  k{i} = {i}\n")).collect();
        let body = parse_body(FileId(0), &format!("a = {{\n{items}}}\n")).unwrap();
        let object = body.get_attribute("a").unwrap().value.as_object().unwrap();
        assert_eq!(object.len(), 5000);
        let keys: Vec<&str> = object
            .iter()
            .map(|(k, _)| k.as_ident().map_or("", |i| i.as_str()))
            .collect();
        assert_eq!((keys[0], keys[4999]), ("k0", "k4999"));
        assert!(
            object
                .get(&hcl_edit::expr::ObjectKey::from(hcl_edit::Ident::new(
                    "k2500"
                )))
                .is_some()
        );
    }

    #[test]
    fn syntax_error_points_at_problem() {
        let err = parse_body(FileId(0), "a = [1, 2\n").unwrap_err();
        assert_eq!(err.summary, "syntax error");
        assert!(err.span.is_some());
    }
}
