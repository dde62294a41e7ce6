//! Loading a directory of `.hcl` files into a [`Module`] tree, checking the shape of every block.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flotilla_syntax::hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use flotilla_syntax::hcl_edit::structure::{Block, BlockLabel, Body, Structure};
use flotilla_syntax::hcl_edit::template::Element;
use flotilla_syntax::{Diagnostic, Diagnostics, FileId, SourceMap, Span, did_you_mean, parse_body};

use crate::addr::{ModulePath, ResourceAddr, ResourceMode};
use crate::model::*;
use crate::module_source::{ModuleSource, SOURCE_GRAMMAR};
use crate::tree::{SourceTree, Tree, normalize};

/// Where the files of remote module calls are: the installed module cache, or nowhere.
pub trait ModuleResolver {
    /// Finds the package for `call`, whose module will live at `path`.
    fn resolve(&self, path: &ModulePath, call: &ModuleCall) -> Resolution;
}

/// What a [`ModuleResolver`] found.
pub enum Resolution {
    /// The module's files.
    Found(Package),
    /// Not available yet, and not an error (`flotilla init` installs it and loads again).
    Pending,
    /// An error to report at the call.
    Failed(Diagnostic),
}

/// An installed module package and the module's directory inside it.
#[derive(Debug, Clone)]
pub struct Package {
    /// The tree holding the package.
    pub tree: Tree,
    /// The package's root in the tree: local sources inside it may not leave it.
    pub root: PathBuf,
    /// The module's directory (the root, or a subdirectory of it).
    pub dir: PathBuf,
}

/// A resolver for configurations without remote modules: every remote call is an error.
pub struct LocalOnly;

impl ModuleResolver for LocalOnly {
    fn resolve(&self, _: &ModulePath, call: &ModuleCall) -> Resolution {
        Resolution::Failed(
            Diagnostic::error("module not installed")
                .with_span(call.source_span.clone())
                .with_detail(format!(
                    "module `{}` comes from `{}`, which is not installed",
                    call.name, call.source
                ))
                .with_help("run `flotilla init` to install it"),
        )
    }
}

/// Loads the module in `dir` on disk and every local child module.
///
/// Returns the module (if it could be built at all) and every diagnostic found.
pub fn load_dir(dir: &Path, sources: &mut SourceMap) -> (Option<Module>, Diagnostics) {
    load(&Tree::default(), dir, sources, &LocalOnly)
}

/// Loads the module in `dir` of `tree`, its local children from the same tree and its remote
/// children from wherever `resolver` says they are installed. Reads nothing else.
pub fn load(
    tree: &Tree,
    dir: &Path,
    sources: &mut SourceMap,
    resolver: &dyn ModuleResolver,
) -> (Option<Module>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let mut loader = Loader {
        sources,
        resolver,
        diags: &mut diags,
        stack: Vec::new(),
    };
    let module = loader.module(tree, None, dir, ModulePath::root());
    (module, diags)
}

/// The configuration files of `dir`: `(path shown in diagnostics, text)`.
fn config_files(tree: &dyn SourceTree, dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    for path in tree.files(dir)? {
        if is_config_file(&path) {
            let text = tree.read_string(&path)?;
            files.push((tree.display(&path), text));
        }
    }
    Ok(files)
}

/// Whether a file name is configuration (`*.hcl`, but not a `*.vars.hcl` variable file).
pub fn is_config_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".hcl")
        && !name.ends_with(".vars.hcl")
        && !name.starts_with('.')
        && name != crate::LOCK_FILE
}

struct Loader<'a, 'd> {
    sources: &'a mut SourceMap,
    resolver: &'a dyn ModuleResolver,
    diags: &'d mut Diagnostics,
    /// The (tree, directory) of every module being loaded, outermost first.
    stack: Vec<(usize, PathBuf)>,
}

impl Loader<'_, '_> {
    fn module(
        &mut self,
        tree: &Tree,
        package: Option<&Path>,
        dir: &Path,
        path: ModulePath,
    ) -> Option<Module> {
        let files = match config_files(&**tree, dir) {
            Ok(files) => files,
            Err(err) => {
                self.diags.push(
                    Diagnostic::error("cannot read configuration directory")
                        .with_detail(format!("{}: {err}", tree.display(dir).display()))
                        .with_help("check that the directory exists and is readable"),
                );
                return None;
            }
        };
        if files.is_empty() && path.is_root() {
            self.diags.push(
                Diagnostic::error("no configuration files")
                    .with_detail(format!(
                        "{} holds no `*.hcl` files",
                        tree.display(dir).display()
                    ))
                    .with_help(
                        "run flotilla in a directory with configuration, or pass -chdir=DIR",
                    ),
            );
            return None;
        }
        let ids: Vec<FileId> = files
            .into_iter()
            .map(|(file_path, text)| self.sources.add(file_path, text.as_str()))
            .collect();
        let mut module = parse_each(&ids, dir, path.clone(), self.sources, self.diags);
        module.tree = tree.clone();
        module.package = package.map(Path::to_path_buf);
        let here = (tree_id(tree), canonical(&**tree, dir));
        self.stack.push(here);
        let calls: Vec<ModuleCall> = module.module_calls.values().cloned().collect();
        for call in calls {
            let child_path = path.child(&call.name);
            let Some(found) = self.child_package(tree, package, dir, &child_path, &call) else {
                continue;
            };
            let key = (tree_id(&found.tree), canonical(&*found.tree, &found.dir));
            if self.stack.contains(&key) {
                self.diags.push(
                    Diagnostic::error("recursive module")
                        .with_span(call.source_span.clone())
                        .with_detail(format!("module `{}` includes itself", call.name))
                        .with_help(
                            "a module cannot call itself, directly or through another module",
                        ),
                );
                continue;
            }
            let files_exist = config_files(&*found.tree, &found.dir)
                .map(|f| !f.is_empty())
                .unwrap_or(false);
            if !files_exist {
                self.diags.push(
                    Diagnostic::error("module source not found")
                        .with_span(call.source_span.clone())
                        .with_detail(format!(
                            "`{}` holds no `*.hcl` files",
                            found.tree.display(&found.dir).display()
                        ))
                        .with_help(if call.source.is_remote() {
                            "check the subdirectory after `//` in `source`"
                        } else {
                            "check the `source` path; it is relative to the calling module's directory"
                        }),
                );
                continue;
            }
            let root = found.root.clone();
            let mut child = self.module(
                &found.tree,
                (package.is_some() || call.source.is_remote()).then_some(root.as_path()),
                &found.dir,
                child_path,
            );
            if let Some(child) = &mut child
                && let Some((_, label)) = call.name.split_once('.')
                && child.variables.contains_key("name")
                && !call.args.iter().any(|a| a.name == "name")
            {
                // A domain block's label is its module's `name` unless it sets one; with
                // `for_each` each instance is named by its key, with `count` LABEL-INDEX.
                let text = if call.for_each.is_some() {
                    "each.key".to_string()
                } else if call.count.is_some() {
                    format!("\"{label}-${{count.index}}\"")
                } else {
                    format!("{:?}", label)
                };
                let Ok(parsed) = flotilla_syntax::parse_expr_in(call.span.file, &text) else {
                    unreachable!("a fixed expression parses")
                };
                let expr = Expr {
                    file: call.span.file,
                    expr: parsed,
                };
                if let Some(c) = module.module_calls.get_mut(&call.name) {
                    c.args.push(Attr {
                        name: "name".into(),
                        expr,
                        span: call.span.clone(),
                    });
                }
            }
            if let Some(child) = child {
                module.children.insert(call.name.clone(), child);
            }
        }
        self.stack.pop();
        Some(module)
    }

    /// Where the module `call` (made from `dir` in `tree`) lives.
    fn child_package(
        &mut self,
        tree: &Tree,
        package: Option<&Path>,
        dir: &Path,
        path: &ModulePath,
        call: &ModuleCall,
    ) -> Option<Package> {
        if let ModuleSource::Local(rel) = &call.source {
            let child = normalize(&dir.join(rel));
            if let Some(root) = package
                && !child.starts_with(normalize(root))
            {
                self.diags.push(
                    Diagnostic::error("module source escapes its package")
                        .with_span(call.source_span.clone())
                        .with_detail(format!(
                            "`{}` leaves the installed module package at {}",
                            call.source,
                            tree.display(root).display()
                        ))
                        .with_help("a module from git, OCI or a registry can call only modules inside its own package; use a remote source for the other module"),
                );
                return None;
            }
            return Some(Package {
                tree: tree.clone(),
                root: package.map(Path::to_path_buf).unwrap_or_default(),
                dir: child,
            });
        }
        match self.resolver.resolve(path, call) {
            Resolution::Found(p) => Some(p),
            Resolution::Pending => None,
            Resolution::Failed(d) => {
                self.diags.push(d);
                None
            }
        }
    }
}

fn tree_id(tree: &Tree) -> usize {
    std::sync::Arc::as_ptr(&tree.0) as *const () as usize
}

fn canonical(tree: &dyn SourceTree, dir: &Path) -> PathBuf {
    tree.identity(dir)
}

/// Below this many bytes of configuration, files are parsed on the calling thread: a second
/// thread saves little there, and its freed syntax trees would stay resident, unused by
/// the calling thread's allocations.
const PARSE_THREAD_ABOVE: usize = 1 << 20;

/// Parses and builds one file at a time, so only one file's syntax tree is alive at once
/// (the model keeps what it needs); at 100,000 resources that halves peak memory. Files come
/// from disk or, for `flotilla diff`, from a git tree, through a [`SourceTree`].
fn parse_each(
    ids: &[FileId],
    dir: &Path,
    path: ModulePath,
    sources: &SourceMap,
    diags: &mut Diagnostics,
) -> Module {
    let mut b = Builder {
        module: Module {
            dir: dir.to_path_buf(),
            path,
            ..Module::default()
        },
        sources,
        diags,
    };
    let total: usize = ids.iter().map(|&id| sources.file(id).text.len()).sum();
    if ids.len() < 2 || total < PARSE_THREAD_ABOVE {
        for &id in ids {
            match parse_body(id, &sources.file(id).text) {
                Ok(body) => b.body(id, body),
                Err(d) => b.diags.push(d),
            }
        }
        return b.module;
    }
    // Parsing and modelling take about as long as each other: a second thread parses the
    // next files while this one models the last, in file order, a few files ahead at most.
    let texts: Vec<(FileId, std::sync::Arc<str>)> = ids
        .iter()
        .map(|&id| (id, sources.file(id).text.clone()))
        .collect();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        scope.spawn(move || {
            for (id, text) in texts {
                if tx.send((id, parse_body(id, &text))).is_err() {
                    break;
                }
            }
        });
        for (id, parsed) in rx {
            match parsed {
                Ok(body) => b.body(id, body),
                Err(d) => b.diags.push(d),
            }
        }
    });
    b.module
}

const TOP_LEVEL_BLOCKS: &[&str] = &[
    "variable", "locals", "output", "provider", "resource", "data", "module", "moved", "import",
    "flotilla", "cluster", "fleet", "addon", "policy", "rollout",
];

struct Builder<'a> {
    module: Module,
    sources: &'a SourceMap,
    diags: &'a mut Diagnostics,
}

impl Builder<'_> {
    fn body(&mut self, file: FileId, body: Body) {
        for structure in body {
            match structure {
                Structure::Attribute(attr) => {
                    let span = span_of(file, &attr);
                    self.diags.push(
                        Diagnostic::error("unexpected attribute")
                            .with_span(span)
                            .with_detail(format!(
                                "`{}` cannot be set at the top level of a file",
                                attr.key.as_str()
                            ))
                            .with_help("top-level attributes belong in a `locals { ... }` block"),
                    );
                }
                // `locals` values move into the model, so a large literal is not held twice.
                Structure::Block(block)
                    if block.ident.as_str() == "locals" && block.labels.is_empty() =>
                {
                    self.locals(file, block)
                }
                Structure::Block(block) => self.block(file, &block),
            }
        }
    }

    fn block(&mut self, file: FileId, block: &Block) {
        let span = header_span(file, block);
        let kind = block.ident.as_str();
        let labels: Vec<String> = block.labels.iter().map(label_str).collect();
        match kind {
            "variable" => {
                if let Some([name]) = self.labels::<1>(&labels, kind, &["NAME"], &span) {
                    self.variable(file, name, block, span);
                }
            }
            "locals" => {
                if self.labels::<0>(&labels, kind, &[], &span).is_some() {
                    self.locals(file, block.clone());
                }
            }
            "output" => {
                if let Some([name]) = self.labels::<1>(&labels, kind, &["NAME"], &span) {
                    self.output(file, name, block, span);
                }
            }
            "provider" => {
                if let Some([name]) = self.labels::<1>(&labels, kind, &["NAME"], &span) {
                    self.provider(file, name, block, span);
                }
            }
            "resource" | "data" => {
                if let Some([t, n]) = self.labels::<2>(&labels, kind, &["TYPE", "NAME"], &span) {
                    let mode = if kind == "data" {
                        ResourceMode::Data
                    } else {
                        ResourceMode::Managed
                    };
                    self.resource(file, mode, t, n, block, span);
                }
            }
            "module" => {
                if let Some([name]) = self.labels::<1>(&labels, kind, &["NAME"], &span) {
                    self.module_call(file, name, block, span, None);
                }
            }
            k if crate::DOMAIN_KINDS.contains(&k) => {
                // A domain block: a module call on the standard library's module of its kind,
                // named `KIND.NAME` (`cluster.beijing`); `source` overrides the module.
                if let Some([name]) = self.labels::<1>(&labels, kind, &["NAME"], &span) {
                    let std = ModuleSource::Standard(k.to_string());
                    self.module_call(file, format!("{k}.{name}"), block, span, Some(std));
                }
            }
            "moved" => {
                if self.labels::<0>(&labels, kind, &[], &span).is_some() {
                    self.moved(file, block, span);
                }
            }
            "import" => {
                if self.labels::<0>(&labels, kind, &[], &span).is_some() {
                    self.import(file, block, span);
                }
            }
            "flotilla" => {
                if self.labels::<0>(&labels, kind, &[], &span).is_some() {
                    self.settings(file, block);
                }
            }
            other => {
                let mut d = Diagnostic::error("unknown block type")
                    .with_span(span)
                    .with_detail(format!("`{other}` is not a block flotilla knows"));
                d = match did_you_mean(other, TOP_LEVEL_BLOCKS.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!(
                        "top-level blocks are: {}",
                        TOP_LEVEL_BLOCKS.join(", ")
                    )),
                };
                self.diags.push(d);
            }
        }
    }

    fn labels<const N: usize>(
        &mut self,
        labels: &[String],
        kind: &str,
        names: &[&str],
        span: &Span,
    ) -> Option<[String; N]> {
        if labels.len() != N {
            let expected = if N == 0 {
                format!("`{kind}` blocks take no labels")
            } else {
                format!(
                    "`{kind}` blocks take {N} label{}: {kind} {}",
                    if N == 1 { "" } else { "s" },
                    names
                        .iter()
                        .map(|n| format!("\"{n}\""))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            };
            self.diags.push(
                Diagnostic::error("wrong number of block labels")
                    .with_span(span.clone())
                    .with_detail(format!("found {}, expected {N}", labels.len()))
                    .with_help(expected),
            );
            return None;
        }
        for l in labels {
            if N > 0 && !is_identifier(l) {
                self.diags.push(
                    Diagnostic::error("invalid name")
                        .with_span(span.clone())
                        .with_detail(format!("`{l}` is not a valid name"))
                        .with_help("names start with a letter or `_` and contain only letters, digits, `_` and `-`"),
                );
                return None;
            }
        }
        labels.to_vec().try_into().ok()
    }

    /// Splits a body into the attributes/blocks a block kind knows, reporting unknown ones.
    fn known_body<'b>(
        &mut self,
        file: FileId,
        body: &'b Body,
        kind: &str,
        attrs: &[&str],
        blocks: &[&str],
    ) -> (BTreeMap<String, Attr>, Vec<(String, &'b Block)>) {
        let mut found_attrs = BTreeMap::new();
        let mut found_blocks = Vec::new();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let name = a.key.as_str();
                    if attrs.contains(&name) {
                        let attr = attr_of(file, a);
                        if found_attrs.insert(name.to_string(), attr).is_some() {
                            self.duplicate_attr(file, a);
                        }
                    } else {
                        self.unknown(span_of(file, a), "argument", name, kind, attrs);
                    }
                }
                Structure::Block(b) => {
                    let name = b.ident.as_str();
                    if blocks.contains(&name) {
                        found_blocks.push((name.to_string(), b));
                    } else {
                        self.unknown(header_span(file, b), "block", name, kind, blocks);
                    }
                }
            }
        }
        (found_attrs, found_blocks)
    }

    fn duplicate_attr(
        &mut self,
        file: FileId,
        a: &flotilla_syntax::hcl_edit::structure::Attribute,
    ) {
        self.diags.push(
            Diagnostic::error("duplicate argument")
                .with_span(span_of(file, a))
                .with_detail(format!("`{}` is set more than once", a.key.as_str()))
                .with_help("remove one of the assignments"),
        );
    }

    fn unknown(&mut self, span: Span, what: &str, name: &str, kind: &str, known: &[&str]) {
        let mut d = Diagnostic::error(format!("unsupported {what}"))
            .with_span(span)
            .with_detail(format!("`{name}` is not expected in a `{kind}` block"));
        d = match did_you_mean(name, known.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None if known.is_empty() => d.with_help(format!("a `{kind}` block takes no {what}s")),
            None => d.with_help(format!("expected one of: {}", known.join(", "))),
        };
        self.diags.push(d);
    }

    fn literal_string(&mut self, attr: &Attr, what: &str) -> Option<String> {
        match literal_str(&attr.expr.expr) {
            Some(s) => Some(s),
            None => {
                self.diags.push(
                    Diagnostic::error("expected a literal string")
                        .with_span(attr.expr.span())
                        .with_detail(format!(
                            "{what} must be a plain string, known before evaluation"
                        ))
                        .with_help("write a quoted string without `${...}` interpolation"),
                );
                None
            }
        }
    }

    fn literal_bool(&mut self, attr: &Attr, what: &str) -> bool {
        match attr.expr.expr {
            Expression::Bool(ref b) => *b.value(),
            _ => {
                self.diags.push(
                    Diagnostic::error("expected a literal boolean")
                        .with_span(attr.expr.span())
                        .with_detail(format!("{what} must be `true` or `false`"))
                        .with_help(
                            "write `true` or `false` directly; expressions are not allowed here",
                        ),
                );
                false
            }
        }
    }

    fn check_rules(
        &mut self,
        file: FileId,
        blocks: &[(String, &Block)],
        kind: &str,
    ) -> Vec<CheckRule> {
        let mut out = Vec::new();
        for (name, b) in blocks {
            if name != kind {
                continue;
            }
            let span = header_span(file, b);
            let (attrs, _) =
                self.known_body(file, &b.body, kind, &["condition", "error_message"], &[]);
            match (attrs.get("condition"), attrs.get("error_message")) {
                (Some(c), Some(m)) => out.push(CheckRule {
                    condition: c.expr.clone(),
                    error_message: m.expr.clone(),
                    span,
                }),
                _ => self.diags.push(
                    Diagnostic::error(format!("incomplete `{kind}` block"))
                        .with_span(span)
                        .with_help("a check needs both `condition` and `error_message`"),
                ),
            }
        }
        out
    }

    fn variable(&mut self, file: FileId, name: String, block: &Block, span: Span) {
        let (attrs, blocks) = self.known_body(
            file,
            &block.body,
            "variable",
            &["type", "default", "description", "sensitive", "nullable"],
            &["validation"],
        );
        let description = attrs
            .get("description")
            .and_then(|a| self.literal_string(a, "description"));
        let sensitive = attrs
            .get("sensitive")
            .is_some_and(|a| self.literal_bool(a, "sensitive"));
        let nullable = attrs
            .get("nullable")
            .is_none_or(|a| self.literal_bool(a, "nullable"));
        let validations = self.check_rules(file, &blocks, "validation");
        let var = Variable {
            name: name.clone(),
            type_expr: attrs.get("type").map(|a| a.expr.clone()),
            default: attrs.get("default").map(|a| a.expr.clone()),
            description,
            sensitive,
            nullable,
            validations,
            span: span.clone(),
        };
        if let Some(prev) = self.module.variables.insert(name.clone(), var) {
            self.duplicate("variable", &name, span, prev.span);
        }
    }

    fn duplicate(&mut self, kind: &str, name: &str, span: Span, prev: Span) {
        self.diags.push(
            Diagnostic::error(format!("duplicate {kind}"))
                .with_span(span)
                .with_detail(format!("{kind} `{name}` is declared more than once"))
                .with_related(prev, "first declared here")
                .with_help("rename or remove one of the declarations"),
        );
    }

    fn locals(&mut self, file: FileId, block: Block) {
        for s in block.body {
            match s {
                Structure::Attribute(a) => {
                    let name = a.key.as_str().to_string();
                    let span = span_of(file, &a);
                    let local = Local {
                        name: name.clone(),
                        expr: Expr {
                            file,
                            expr: a.value,
                        },
                        span: span.clone(),
                    };
                    if let Some(prev) = self.module.locals.insert(name.clone(), local) {
                        self.duplicate("local value", &name, span, prev.span);
                    }
                }
                Structure::Block(b) => self.diags.push(
                    Diagnostic::error("unexpected block")
                        .with_span(header_span(file, &b))
                        .with_detail("`locals` holds only `name = value` assignments")
                        .with_help("write the value as an object expression instead of a block"),
                ),
            }
        }
    }

    fn output(&mut self, file: FileId, name: String, block: &Block, span: Span) {
        let (attrs, blocks) = self.known_body(
            file,
            &block.body,
            "output",
            &["value", "description", "sensitive", "depends_on"],
            &["precondition"],
        );
        let Some(value) = attrs.get("value") else {
            self.diags.push(
                Diagnostic::error("missing required argument")
                    .with_span(span)
                    .with_detail(format!("output `{name}` has no `value`"))
                    .with_help("add `value = <expression>`"),
            );
            return;
        };
        let output = Output {
            name: name.clone(),
            value: value.expr.clone(),
            description: attrs
                .get("description")
                .and_then(|a| self.literal_string(a, "description")),
            sensitive: attrs
                .get("sensitive")
                .is_some_and(|a| self.literal_bool(a, "sensitive")),
            depends_on: attrs
                .get("depends_on")
                .map(|a| self.list_items(a))
                .unwrap_or_default(),
            preconditions: self.check_rules(file, &blocks, "precondition"),
            span: span.clone(),
        };
        if let Some(prev) = self.module.outputs.insert(name.clone(), output) {
            self.duplicate("output", &name, span, prev.span);
        }
    }

    fn list_items(&mut self, attr: &Attr) -> Vec<Expr> {
        match &attr.expr.expr {
            Expression::Array(items) => items
                .iter()
                .map(|e| Expr {
                    file: attr.expr.file,
                    expr: e.clone(),
                })
                .collect(),
            _ => {
                self.diags.push(
                    Diagnostic::error("expected a list")
                        .with_span(attr.expr.span())
                        .with_detail(format!("`{}` takes a list of references", attr.name))
                        .with_help("write it as `[builtin_data.a, module.b]`"),
                );
                Vec::new()
            }
        }
    }

    fn provider(&mut self, file: FileId, name: String, block: &Block, span: Span) {
        let mut body = generic_body(file, &block.body);
        let alias = match body.attrs.iter().position(|a| a.name == "alias") {
            Some(i) => {
                let a = body.attrs.remove(i);
                self.literal_string(&a, "alias")
            }
            None => None,
        };
        let for_each = body
            .attrs
            .iter()
            .position(|a| a.name == "for_each")
            .map(|i| body.attrs.remove(i).expr);
        if for_each.is_some() && alias.is_none() {
            self.diags.push(
                Diagnostic::error("`for_each` needs an alias")
                    .with_span(span.clone())
                    .with_detail(format!(
                        "the default `{name}` configuration cannot have several instances"
                    ))
                    .with_help(format!(
                        "add `alias = \"member\"` and select an instance with `provider = {name}.member[each.key]`"
                    )),
            );
        }
        let key = (name.clone(), alias.clone());
        let p = ProviderBlock {
            name: name.clone(),
            alias: alias.clone(),
            for_each,
            body,
            span: span.clone(),
        };
        if let Some(prev) = self.module.providers.insert(key, p) {
            let shown = match &alias {
                Some(a) => format!("{name}.{a}"),
                None => name,
            };
            self.diags.push(
                Diagnostic::error("duplicate provider configuration")
                    .with_span(span)
                    .with_detail(format!("provider `{shown}` is configured more than once"))
                    .with_related(prev.span, "first configured here")
                    .with_help("give the additional configuration an `alias = \"...\"`"),
            );
        }
    }

    fn provider_ref(&mut self, expr: &Expr) -> Option<ProviderRef> {
        // `kube.member[each.key]`: the instance of a provider block with `for_each`.
        let (target, key) = match &expr.expr {
            Expression::Traversal(t)
                if matches!(
                    t.operators.last().map(|o| o.value()),
                    Some(TraversalOperator::Index(_))
                ) =>
            {
                let Some(TraversalOperator::Index(index)) = t.operators.last().map(|o| o.value())
                else {
                    unreachable!("matched above")
                };
                let mut base = (**t).clone();
                base.operators.pop();
                (
                    Expression::Traversal(Box::new(base)),
                    Some(Expr {
                        file: expr.file,
                        expr: index.clone(),
                    }),
                )
            }
            other => (other.clone(), None),
        };
        let parts = traversal_names(&target);
        match parts.as_deref() {
            Some([name]) if key.is_none() => Some(ProviderRef {
                name: name.clone(),
                alias: None,
                key: None,
                span: expr.span(),
            }),
            Some([name, alias]) => Some(ProviderRef {
                name: name.clone(),
                alias: Some(alias.clone()),
                key,
                span: expr.span(),
            }),
            _ => {
                self.diags.push(
                    Diagnostic::error("invalid provider reference")
                        .with_span(expr.span())
                        .with_detail("expected a provider name, optionally with an alias and an instance key")
                        .with_help("write `provider = kube.beijing` or `provider = kube.member[each.key]` (no quotes)"),
                );
                None
            }
        }
    }

    fn resource(
        &mut self,
        file: FileId,
        mode: ResourceMode,
        type_: String,
        name: String,
        block: &Block,
        span: Span,
    ) {
        let mut body = BlockBody::default();
        let mut count = None;
        let mut for_each = None;
        let mut depends_on = Vec::new();
        let mut provider = None;
        let mut lifecycle = Lifecycle::default();
        for s in block.body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let attr = attr_of(file, a);
                    match attr.name.as_str() {
                        "count" => count = Some(attr.expr),
                        "for_each" => for_each = Some(attr.expr),
                        "depends_on" => depends_on = self.list_items(&attr),
                        "provider" => provider = self.provider_ref(&attr.expr),
                        _ => {
                            if body.attr(&attr.name).is_some() {
                                self.duplicate_attr(file, a);
                            }
                            body.attrs.push(attr);
                        }
                    }
                }
                Structure::Block(b) if b.ident.as_str() == "lifecycle" => {
                    lifecycle = self.lifecycle(file, b, mode);
                }
                Structure::Block(b) => body.blocks.push(nested_block(file, b)),
            }
        }
        if let (Some(c), Some(f)) = (&count, &for_each) {
            self.diags.push(
                Diagnostic::error("invalid combination of `count` and `for_each`")
                    .with_span(f.span())
                    .with_related(c.span(), "`count` set here")
                    .with_detail("a resource can use `count` or `for_each`, not both")
                    .with_help("remove one of them; `for_each` gives instances stable keys"),
            );
        }
        let addr = ResourceAddr { mode, type_, name };
        let res = Resource {
            addr: addr.clone(),
            count,
            for_each,
            depends_on,
            provider,
            lifecycle,
            body,
            span: span.clone(),
        };
        if let Some(prev) = self.module.resources.insert(addr.clone(), res) {
            self.diags.push(
                Diagnostic::error("duplicate resource")
                    .with_span(span)
                    .with_detail(format!("`{addr}` is declared more than once"))
                    .with_related(prev.span, "first declared here")
                    .with_help(
                        "every resource needs a unique TYPE and NAME within its module; rename one",
                    ),
            );
        }
    }

    fn lifecycle(&mut self, file: FileId, block: &Block, mode: ResourceMode) -> Lifecycle {
        let allowed: &[&str] = if mode == ResourceMode::Managed {
            &[
                "create_before_destroy",
                "prevent_destroy",
                "ignore_changes",
                "replace_triggered_by",
            ]
        } else {
            &[]
        };
        let (attrs, blocks) = self.known_body(
            file,
            &block.body,
            "lifecycle",
            allowed,
            &["precondition", "postcondition"],
        );
        let mut lc = Lifecycle {
            create_before_destroy: attrs
                .get("create_before_destroy")
                .is_some_and(|a| self.literal_bool(a, "create_before_destroy")),
            prevent_destroy: attrs
                .get("prevent_destroy")
                .is_some_and(|a| self.literal_bool(a, "prevent_destroy")),
            preconditions: self.check_rules(file, &blocks, "precondition"),
            postconditions: self.check_rules(file, &blocks, "postcondition"),
            ..Lifecycle::default()
        };
        if let Some(a) = attrs.get("ignore_changes") {
            lc.ignore_changes = match &a.expr.expr {
                Expression::Variable(v) if v.as_str() == "all" => IgnoreChanges::All,
                _ => {
                    let mut paths = Vec::new();
                    for item in self.list_items(a) {
                        match traversal_names(&item.expr) {
                            Some(p) => paths.push((p, item.span())),
                            None => self.diags.push(
                                Diagnostic::error("invalid ignore_changes entry")
                                    .with_span(item.span())
                                    .with_help("list attribute names without quotes, e.g. `[tags, spec.replicas]`, or write `all`"),
                            ),
                        }
                    }
                    IgnoreChanges::Paths(paths)
                }
            };
        }
        if let Some(a) = attrs.get("replace_triggered_by") {
            lc.replace_triggered_by = self.list_items(a);
        }
        lc
    }

    fn module_call(
        &mut self,
        file: FileId,
        name: String,
        block: &Block,
        span: Span,
        default_source: Option<ModuleSource>,
    ) {
        let mut args = Vec::new();
        let mut source = None;
        let mut version = None;
        let mut count = None;
        let mut for_each = None;
        let mut depends_on = Vec::new();
        let mut providers = Vec::new();
        for s in block.body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let attr = attr_of(file, a);
                    match attr.name.as_str() {
                        "source" => {
                            source = self
                                .literal_string(&attr, "source")
                                .map(|s| (s, attr.expr.span()))
                        }
                        "version" => {
                            version = self
                                .literal_string(&attr, "version")
                                .map(|v| (v, attr.expr.span()))
                        }
                        "count" => count = Some(attr.expr),
                        "for_each" => for_each = Some(attr.expr),
                        "depends_on" => depends_on = self.list_items(&attr),
                        "providers" => providers = self.provider_map(&attr),
                        _ => args.push(attr),
                    }
                }
                Structure::Block(b) => self.diags.push(
                    Diagnostic::error("unexpected block")
                        .with_span(header_span(file, b))
                        .with_detail(format!(
                            "`{}` blocks are not allowed in a module call",
                            b.ident.as_str()
                        ))
                        .with_help("pass values to a module as arguments: `name = value`"),
                ),
            }
        }
        let (source, source_span) = match (source, default_source) {
            (Some((s, sp)), _) => (ModuleSource::parse(&s), sp),
            (None, Some(std)) => (Ok(std), span.clone()),
            (None, None) => {
                self.diags.push(
                    Diagnostic::error("missing required argument")
                        .with_span(span)
                        .with_detail(format!("module `{name}` has no `source`"))
                        .with_help("add `source = \"./path/to/module\"`"),
                );
                return;
            }
        };
        let source = match source {
            Ok(s) => s,
            Err(detail) => {
                self.diags.push(
                    Diagnostic::error("invalid module source")
                        .with_span(source_span)
                        .with_detail(detail)
                        .with_help(SOURCE_GRAMMAR),
                );
                return;
            }
        };
        if let Some((v, vspan)) = &version
            && !source.takes_version()
        {
            self.diags.push(
                Diagnostic::error("`version` does not apply to this source")
                    .with_span(vspan.clone())
                    .with_detail(format!(
                        "module `{name}` has `version = \"{v}\"`, but `{source}` {}",
                        if source.is_remote() {
                            "already names a fixed revision"
                        } else {
                            "is a local path"
                        }
                    ))
                    .with_help("remove `version`, or remove the fixed `ref`, `tag` or `digest` from `source`"),
            );
        }
        if let (Some(c), Some(f)) = (&count, &for_each) {
            self.diags.push(
                Diagnostic::error("invalid combination of `count` and `for_each`")
                    .with_span(f.span())
                    .with_related(c.span(), "`count` set here")
                    .with_help("remove one of them"),
            );
        }
        let call = ModuleCall {
            name: name.clone(),
            source,
            source_span,
            version,
            count,
            for_each,
            depends_on,
            providers,
            args,
            span: span.clone(),
        };
        if let Some(prev) = self.module.module_calls.insert(name.clone(), call) {
            self.duplicate("module call", &name, span, prev.span);
        }
    }

    fn provider_map(&mut self, attr: &Attr) -> Vec<(String, ProviderRef)> {
        let Expression::Object(obj) = &attr.expr.expr else {
            self.diags.push(
                Diagnostic::error("expected an object")
                    .with_span(attr.expr.span())
                    .with_help("write `providers = { kube = kube.beijing }`"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in obj.iter() {
            let key = match k {
                ObjectKey::Ident(i) => Some(i.as_str().to_string()),
                ObjectKey::Expression(e) => traversal_names(e).and_then(|p| p.into_iter().next()),
            };
            let value = Expr {
                file: attr.expr.file,
                expr: v.expr().clone(),
            };
            if let (Some(key), Some(r)) = (key, self.provider_ref(&value)) {
                out.push((key, r));
            }
        }
        out
    }

    fn moved(&mut self, file: FileId, block: &Block, span: Span) {
        let (attrs, _) = self.known_body(file, &block.body, "moved", &["from", "to"], &[]);
        match (attrs.get("from"), attrs.get("to")) {
            (Some(from), Some(to)) => {
                let text = |a: &Attr| self.sources.snippet(&a.expr.span()).trim().to_string();
                let moved = Moved {
                    from: text(from),
                    to: text(to),
                    span,
                };
                self.module.moved.push(moved);
            }
            _ => self.diags.push(
                Diagnostic::error("incomplete `moved` block")
                    .with_span(span)
                    .with_help("a `moved` block needs both `from` and `to` addresses"),
            ),
        }
    }

    fn import(&mut self, file: FileId, block: &Block, span: Span) {
        if !self.module.path.is_root() {
            self.diags.push(
                Diagnostic::error("`import` outside the root module")
                    .with_span(span)
                    .with_detail("a module cannot adopt objects by itself")
                    .with_help(
                        "move the block to the root module, with `to = module.NAME.TYPE.NAME`",
                    ),
            );
            return;
        }
        let (attrs, _) = self.known_body(file, &block.body, "import", &["to", "id"], &[]);
        match (attrs.get("to"), attrs.get("id")) {
            (Some(to), Some(id)) => {
                let to = self.sources.snippet(&to.expr.span()).trim().to_string();
                if let Some(id) = self.literal_string(id, "the import id") {
                    self.module.imports.push(Import { to, id, span });
                }
            }
            _ => self.diags.push(
                Diagnostic::error("incomplete `import` block")
                    .with_span(span)
                    .with_help("an `import` block needs `to` (a resource address) and `id` (e.g. \"namespace/name\")"),
            ),
        }
    }

    fn settings(&mut self, file: FileId, block: &Block) {
        let (attrs, blocks) = self.known_body(
            file,
            &block.body,
            "flotilla",
            &["required_version"],
            &["backend", "encryption"],
        );
        if let Some(a) = attrs.get("required_version")
            && let Some(v) = self.literal_string(a, "required_version")
        {
            self.module.settings.required_version = Some((v, a.expr.span()));
        }
        for (name, b) in blocks {
            let span = header_span(file, b);
            let labels: Vec<String> = b.labels.iter().map(label_str).collect();
            if name == "encryption" {
                if self
                    .labels::<0>(&labels, "encryption", &[], &span)
                    .is_some()
                {
                    self.module.settings.encryption = Some(EncryptionConfig {
                        body: generic_body(file, &b.body),
                        span,
                    });
                }
            } else if let Some([kind]) = self.labels::<1>(&labels, "backend", &["KIND"], &span) {
                self.module.settings.backend = Some(BackendConfig {
                    kind,
                    body: generic_body(file, &b.body),
                    span,
                });
            }
        }
    }
}

fn label_str(l: &BlockLabel) -> String {
    match l {
        BlockLabel::Ident(i) => i.as_str().to_string(),
        BlockLabel::String(s) => s.value().to_string(),
    }
}

/// Whether `s` is a valid HCL identifier (letters, digits, `_`, `-`; not starting with a digit or `-`).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

fn span_of(file: FileId, node: &impl flotilla_syntax::hcl_edit::Span) -> Span {
    Span::new(file, node.span().unwrap_or(0..0))
}

/// The span of a block's header: its identifier and labels, not its body.
fn header_span(file: FileId, block: &Block) -> Span {
    use flotilla_syntax::hcl_edit::Span as _;
    let start = block.ident.span().map_or(0, |r| r.start);
    let end = block
        .labels
        .last()
        .and_then(|l| l.span())
        .or(block.ident.span())
        .map_or(start, |r| r.end);
    Span::new(file, start..end)
}

fn attr_of(file: FileId, a: &flotilla_syntax::hcl_edit::structure::Attribute) -> Attr {
    Attr {
        name: a.key.as_str().to_string(),
        expr: Expr {
            file,
            expr: a.value.clone(),
        },
        span: span_of(file, a),
    }
}

fn nested_block(file: FileId, b: &Block) -> NestedBlock {
    NestedBlock {
        kind: b.ident.as_str().to_string(),
        labels: b.labels.iter().map(label_str).collect(),
        body: generic_body(file, &b.body),
        span: header_span(file, b),
    }
}

fn generic_body(file: FileId, body: &Body) -> BlockBody {
    let mut out = BlockBody::default();
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => out.attrs.push(attr_of(file, a)),
            Structure::Block(b) => out.blocks.push(nested_block(file, b)),
        }
    }
    out
}

/// The string of a literal string expression (or a template with only literal parts).
pub fn literal_str(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.value().to_string()),
        Expression::StringTemplate(t) => {
            let mut out = String::new();
            for el in t.iter() {
                match el {
                    Element::Literal(l) => out.push_str(l.value()),
                    _ => return None,
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// `a.b.c` as `["a", "b", "c"]` when the expression is a plain attribute traversal.
pub fn traversal_names(expr: &Expression) -> Option<Vec<String>> {
    match expr {
        Expression::Variable(v) => Some(vec![v.as_str().to_string()]),
        Expression::Traversal(t) => {
            let mut out = traversal_names(&t.expr)?;
            for op in &t.operators {
                match op.value() {
                    TraversalOperator::GetAttr(id) => out.push(id.as_str().to_string()),
                    _ => return None,
                }
            }
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Option<Module>, Diagnostics) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.hcl"), text).unwrap();
        let mut sources = SourceMap::new();
        load_dir(dir.path(), &mut sources)
    }

    #[test]
    fn loads_blocks() {
        let (m, d) = load(
            r#"
variable "region" {
  type    = string
  default = "eu"
  validation {
    condition     = length(var.region) > 0
    error_message = "must not be empty"
  }
}
locals { a = 1 }
resource "builtin_data" "x" {
  count = 2
  input = var.region
  lifecycle { create_before_destroy = true }
}
output "o" { value = builtin_data.x[0].output }
"#,
        );
        assert!(d.is_empty(), "{d:?}");
        let m = m.unwrap();
        assert_eq!(m.variables["region"].validations.len(), 1);
        let r = &m.resources[&ResourceAddr::managed("builtin_data", "x")];
        assert!(r.count.is_some());
        assert!(r.lifecycle.create_before_destroy);
        assert_eq!(r.body.attrs.len(), 1);
    }

    #[test]
    fn import_blocks_belong_to_the_root_module() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.hcl"),
            "import {\n  to = builtin_data.a\n  id = \"x\"\n}\nmodule \"child\" { source = \"./child\" }\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("child")).unwrap();
        std::fs::write(
            dir.path().join("child/main.hcl"),
            "import {\n  to = builtin_data.b\n  id = \"y\"\n}\n",
        )
        .unwrap();
        let (m, d) = load_dir(dir.path(), &mut SourceMap::new());
        assert_eq!(m.unwrap().imports[0].id, "x");
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert_eq!(d.0[0].summary, "`import` outside the root module");
    }

    #[test]
    fn reports_every_shape_error() {
        let (_, d) = load(
            r#"
resourse "a" "b" {}
resource "builtin_data" "x" {
  count    = 1
  for_each = {}
}
resource "builtin_data" "x" {}
variable "v" { tpye = string }
"#,
        );
        let summaries: Vec<&str> = d.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "unknown block type",
                "invalid combination of `count` and `for_each`",
                "duplicate resource",
                "unsupported argument"
            ]
        );
        assert_eq!(d.0[0].help.as_deref(), Some("did you mean `resource`?"));
        assert_eq!(d.0[3].help.as_deref(), Some("did you mean `type`?"));
    }
}
