//! The configuration model: one [`Module`] per directory, blocks as typed structs, expressions
//! kept as hcl-edit ASTs with their file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flotilla_syntax::hcl_edit::expr::Expression;
use flotilla_syntax::{FileId, Span};

use crate::addr::{ModulePath, ResourceAddr};

/// An unevaluated expression and the file it came from.
#[derive(Debug, Clone)]
pub struct Expr {
    /// File holding the expression.
    pub file: FileId,
    /// The expression tree (with byte spans into the file).
    pub expr: Expression,
}

impl Expr {
    /// Where the expression is.
    pub fn span(&self) -> Span {
        use flotilla_syntax::hcl_edit::Span as _;
        Span::new(self.file, self.expr.span().unwrap_or(0..0))
    }
}

/// `name = expr` inside a block.
#[derive(Debug, Clone)]
pub struct Attr {
    /// Attribute name.
    pub name: String,
    /// Its value.
    pub expr: Expr,
    /// The whole `name = expr`.
    pub span: Span,
}

/// A nested block inside a resource, provider or other body.
#[derive(Debug, Clone)]
pub struct NestedBlock {
    /// Block type (`timeouts`, `rule`, ...).
    pub kind: String,
    /// Labels, if any.
    pub labels: Vec<String>,
    /// The contents.
    pub body: BlockBody,
    /// The whole block.
    pub span: Span,
}

/// The attributes and nested blocks of a body, in source order.
#[derive(Debug, Clone, Default)]
pub struct BlockBody {
    /// Attributes in source order.
    pub attrs: Vec<Attr>,
    /// Nested blocks in source order.
    pub blocks: Vec<NestedBlock>,
}

impl BlockBody {
    /// The attribute with this name.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// A `condition` + `error_message` pair (variable validation, pre/postconditions).
#[derive(Debug, Clone)]
pub struct CheckRule {
    /// Must evaluate to true.
    pub condition: Expr,
    /// The message shown when it does not.
    pub error_message: Expr,
    /// The whole block.
    pub span: Span,
}

/// `variable "NAME" { ... }`
#[derive(Debug, Clone)]
pub struct Variable {
    /// Variable name.
    pub name: String,
    /// The `type` constraint expression.
    pub type_expr: Option<Expr>,
    /// The `default`.
    pub default: Option<Expr>,
    /// The `description`.
    pub description: Option<String>,
    /// `sensitive = true`.
    pub sensitive: bool,
    /// `nullable` (default true).
    pub nullable: bool,
    /// `validation` blocks.
    pub validations: Vec<CheckRule>,
    /// The block header.
    pub span: Span,
}

/// One entry of a `locals` block.
#[derive(Debug, Clone)]
pub struct Local {
    /// Local name.
    pub name: String,
    /// Its expression.
    pub expr: Expr,
    /// The whole `name = expr`.
    pub span: Span,
}

/// `output "NAME" { ... }`
#[derive(Debug, Clone)]
pub struct Output {
    /// Output name.
    pub name: String,
    /// The `value`.
    pub value: Expr,
    /// `description`.
    pub description: Option<String>,
    /// `sensitive = true`.
    pub sensitive: bool,
    /// `depends_on`.
    pub depends_on: Vec<Expr>,
    /// `precondition` blocks.
    pub preconditions: Vec<CheckRule>,
    /// The block header.
    pub span: Span,
}

/// `provider "NAME" { alias = ..., ... }`
#[derive(Debug, Clone)]
pub struct ProviderBlock {
    /// Provider name.
    pub name: String,
    /// Alias, for additional configurations.
    pub alias: Option<String>,
    /// `for_each`: one configuration per key, selected as `NAME.ALIAS[KEY]`.
    pub for_each: Option<Expr>,
    /// The configuration arguments (without `alias` and `for_each`).
    pub body: BlockBody,
    /// The block header.
    pub span: Span,
}

/// A reference to a provider configuration from a resource or module call (`kube.beijing`).
#[derive(Debug, Clone)]
pub struct ProviderRef {
    /// Provider name.
    pub name: String,
    /// Alias, if any.
    pub alias: Option<String>,
    /// `[KEY]`: which instance of a provider block with `for_each`, evaluated per resource
    /// or module instance (`each.key`).
    pub key: Option<Expr>,
    /// Where it was written.
    pub span: Span,
}

/// What `lifecycle { ignore_changes = ... }` says.
#[derive(Debug, Clone, Default)]
pub enum IgnoreChanges {
    /// Nothing ignored.
    #[default]
    None,
    /// `ignore_changes = all`.
    All,
    /// Attribute paths, e.g. `[tags, spec.replicas]`.
    Paths(Vec<(Vec<String>, Span)>),
}

/// `lifecycle { ... }` of a resource.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// Create the replacement before destroying the old object.
    pub create_before_destroy: bool,
    /// Refuse any plan that destroys this resource.
    pub prevent_destroy: bool,
    /// Attributes whose changes in configuration are ignored.
    pub ignore_changes: IgnoreChanges,
    /// References whose change forces replacement.
    pub replace_triggered_by: Vec<Expr>,
    /// Checked before planning a change.
    pub preconditions: Vec<CheckRule>,
    /// Checked after applying a change.
    pub postconditions: Vec<CheckRule>,
}

/// `resource "TYPE" "NAME"` or `data "TYPE" "NAME"`.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The resource's address within its module.
    pub addr: ResourceAddr,
    /// `count`.
    pub count: Option<Expr>,
    /// `for_each`.
    pub for_each: Option<Expr>,
    /// `depends_on`.
    pub depends_on: Vec<Expr>,
    /// `provider = NAME.ALIAS`, when not the default.
    pub provider: Option<ProviderRef>,
    /// `lifecycle`.
    pub lifecycle: Lifecycle,
    /// The resource's own arguments.
    pub body: BlockBody,
    /// The block header (`resource "t" "n"`).
    pub span: Span,
}

/// `module "NAME" { source = ..., ... }`
#[derive(Debug, Clone)]
pub struct ModuleCall {
    /// The call's name.
    pub name: String,
    /// `source`.
    pub source: crate::ModuleSource,
    /// Where `source` was written.
    pub source_span: Span,
    /// `version`: a constraint on the tags or versions of a remote source, and where.
    pub version: Option<(String, Span)>,
    /// `count`.
    pub count: Option<Expr>,
    /// `for_each`.
    pub for_each: Option<Expr>,
    /// `depends_on`.
    pub depends_on: Vec<Expr>,
    /// `providers = { child = parent }`.
    pub providers: Vec<(String, ProviderRef)>,
    /// The input variables passed to the child.
    pub args: Vec<Attr>,
    /// The block header.
    pub span: Span,
}

/// `moved { from = ..., to = ... }`
#[derive(Debug, Clone)]
pub struct Moved {
    /// The old address, as written.
    pub from: String,
    /// The new address, as written.
    pub to: String,
    /// The block.
    pub span: Span,
}

/// `import { to = ADDR, id = "..." }`: adopt an existing object into state.
#[derive(Debug, Clone)]
pub struct Import {
    /// The resource instance address, as written.
    pub to: String,
    /// The provider-specific id (`namespace/name` for Kubernetes objects).
    pub id: String,
    /// The block.
    pub span: Span,
}

/// `backend "KIND" { ... }` inside the `flotilla` block.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// `local`, `postgres` or `kubernetes`.
    pub kind: String,
    /// Its arguments.
    pub body: BlockBody,
    /// The block.
    pub span: Span,
}

/// `encryption { ... }` inside the `flotilla` block: its arguments stay unevaluated here
/// (the passphrase may be a variable); the CLI evaluates them before touching state.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// `method`, `key_provider "KIND" {}` and `fallback {}`.
    pub body: BlockBody,
    /// The block.
    pub span: Span,
}

/// The `flotilla { ... }` settings block.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `required_version = ">= 0.1"`.
    pub required_version: Option<(String, Span)>,
    /// The state backend.
    pub backend: Option<BackendConfig>,
    /// Client-side encryption of state and plan files.
    pub encryption: Option<EncryptionConfig>,
}

/// One module: the blocks of every file in one directory, plus its loaded children.
#[derive(Debug, Clone, Default)]
pub struct Module {
    /// The directory of the module's files in [`Module::tree`].
    pub dir: PathBuf,
    /// The tree the module's files were read from (the disk unless said otherwise).
    pub tree: crate::Tree,
    /// For a module installed from a remote source: the package's root in the tree.
    pub package: Option<PathBuf>,
    /// Its path from the root.
    pub path: ModulePath,
    /// `variable` blocks by name.
    pub variables: BTreeMap<String, Variable>,
    /// `locals` entries by name.
    pub locals: BTreeMap<String, Local>,
    /// `output` blocks by name.
    pub outputs: BTreeMap<String, Output>,
    /// `provider` blocks by (name, alias).
    pub providers: BTreeMap<(String, Option<String>), ProviderBlock>,
    /// `resource` and `data` blocks by address.
    pub resources: BTreeMap<ResourceAddr, Resource>,
    /// `module` blocks by name.
    pub module_calls: BTreeMap<String, ModuleCall>,
    /// `moved` blocks.
    pub moved: Vec<Moved>,
    /// `import` blocks (root module only).
    pub imports: Vec<Import>,
    /// The `flotilla` block (root module only).
    pub settings: Settings,
    /// Loaded child modules by call name.
    pub children: BTreeMap<String, Module>,
}

impl Module {
    /// What relative paths in file functions resolve against: the working directory (the
    /// root module's directory), as in Terraform, in the tree this module was read from.
    /// Modules name their own files with `"${path.module}/..."`.
    pub fn files(&self) -> crate::Dir<'_> {
        crate::Dir {
            tree: &*self.tree,
            path: std::path::Path::new("."),
        }
    }

    /// The module at a static path below this one.
    pub fn descendant(&self, path: &ModulePath) -> Option<&Module> {
        let mut m = self;
        for name in &path.0 {
            m = m.children.get(name)?;
        }
        Some(m)
    }

    /// This module and every descendant, depth first, parents before children.
    pub fn all_modules(&self) -> Vec<&Module> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(m) = stack.pop() {
            out.push(m);
            stack.extend(m.children.values().rev());
        }
        out
    }
}
