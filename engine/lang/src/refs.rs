//! References: what an expression points at (`var.x`, `builtin_data.a`, `module.m.out`, ...).

use flotilla_config::Expr;
use flotilla_config::addr::{ResourceAddr, ResourceMode};
use flotilla_syntax::hcl_edit::expr::{Expression, TraversalOperator};
use flotilla_syntax::hcl_edit::template::{Directive, Element, Template};
use flotilla_syntax::hcl_edit::{Decorated, Span as _};
use flotilla_syntax::{Diagnostic, FileId, Span};

/// The object a reference names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// `var.NAME`
    Var(String),
    /// `local.NAME`
    Local(String),
    /// `TYPE.NAME` or `data.TYPE.NAME`
    Resource(ResourceAddr),
    /// `module.NAME`, with the output named right after it when there is one.
    Module {
        /// The module call.
        call: String,
        /// `module.NAME.OUTPUT` or `module.NAME[KEY].OUTPUT`.
        output: Option<String>,
    },
    /// `count.index`
    CountIndex,
    /// `each.key`
    EachKey,
    /// `each.value`
    EachValue,
    /// `path.module`, `path.root`, `path.cwd`
    Path(String),
    /// `self`
    SelfRef,
    /// `flotilla.workspace`
    Flotilla(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Var(n) => write!(f, "var.{n}"),
            Subject::Local(n) => write!(f, "local.{n}"),
            Subject::Resource(r) => write!(f, "{r}"),
            Subject::Module { call, .. } => write!(f, "{}", flotilla_config::call_address(call)),
            Subject::CountIndex => f.write_str("count.index"),
            Subject::EachKey => f.write_str("each.key"),
            Subject::EachValue => f.write_str("each.value"),
            Subject::Path(p) => write!(f, "path.{p}"),
            Subject::SelfRef => f.write_str("self"),
            Subject::Flotilla(a) => write!(f, "flotilla.{a}"),
        }
    }
}

/// A reference found in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// What it names.
    pub subject: Subject,
    /// The traversal in the source.
    pub span: Span,
}

fn invalid(span: Span, detail: impl Into<String>, help: &str) -> Diagnostic {
    Diagnostic::error("invalid reference")
        .with_span(span)
        .with_detail(detail)
        .with_help(help)
}

/// Parses the subject of a traversal rooted at `root` with operators `ops`.
///
/// Returns the subject and how many operators it consumed.
pub fn parse_reference(
    root: &str,
    ops: &[Decorated<TraversalOperator>],
    span: &Span,
) -> Result<(Subject, usize), Diagnostic> {
    let attr = |i: usize| -> Option<&str> {
        match ops.get(i).map(|o| o.value()) {
            Some(TraversalOperator::GetAttr(id)) => Some(id.as_str()),
            _ => None,
        }
    };
    let need = |what: &str, example: &str| {
        invalid(
            span.clone(),
            format!("`{root}` must be followed by {what}"),
            example,
        )
    };
    match root {
        "var" => attr(0)
            .map(|n| (Subject::Var(n.to_string()), 1))
            .ok_or_else(|| need("a variable name", "write `var.NAME`")),
        "local" => attr(0)
            .map(|n| (Subject::Local(n.to_string()), 1))
            .ok_or_else(|| need("a local value name", "write `local.NAME`")),
        "module" => {
            let call =
                attr(0).ok_or_else(|| need("a module call name", "write `module.NAME.OUTPUT`"))?;
            let output = match ops.get(1).map(|o| o.value()) {
                Some(TraversalOperator::GetAttr(id)) => Some(id.as_str().to_string()),
                Some(TraversalOperator::Index(_)) => attr(2).map(str::to_string),
                _ => None,
            };
            Ok((
                Subject::Module {
                    call: call.to_string(),
                    output,
                },
                1,
            ))
        }
        kind if flotilla_config::DOMAIN_KINDS.contains(&kind) => {
            // `cluster.beijing.kubeconfig`: an output of the domain block `cluster "beijing"`.
            let name = attr(0).ok_or_else(|| {
                need(
                    &format!("a `{kind}` block's name"),
                    &format!("write `{kind}.NAME.OUTPUT`"),
                )
            })?;
            let output = match ops.get(1).map(|o| o.value()) {
                Some(TraversalOperator::GetAttr(id)) => Some(id.as_str().to_string()),
                Some(TraversalOperator::Index(_)) => attr(2).map(str::to_string),
                _ => None,
            };
            Ok((
                Subject::Module {
                    call: format!("{kind}.{name}"),
                    output,
                },
                1,
            ))
        }
        "data" => match (attr(0), attr(1)) {
            (Some(t), Some(n)) => Ok((
                Subject::Resource(ResourceAddr {
                    mode: ResourceMode::Data,
                    type_: t.to_string(),
                    name: n.to_string(),
                }),
                2,
            )),
            _ => Err(need(
                "a data source type and name",
                "write `data.TYPE.NAME`",
            )),
        },
        "count" => match attr(0) {
            Some("index") => Ok((Subject::CountIndex, 1)),
            _ => Err(need("`.index`", "write `count.index`")),
        },
        "each" => match attr(0) {
            Some("key") => Ok((Subject::EachKey, 1)),
            Some("value") => Ok((Subject::EachValue, 1)),
            _ => Err(need(
                "`.key` or `.value`",
                "write `each.key` or `each.value`",
            )),
        },
        "path" => match attr(0) {
            Some(p @ ("module" | "root" | "cwd")) => Ok((Subject::Path(p.to_string()), 1)),
            _ => Err(need("`.module`, `.root` or `.cwd`", "write `path.module`")),
        },
        "self" => Ok((Subject::SelfRef, 0)),
        "flotilla" => match attr(0) {
            Some("workspace") => Ok((Subject::Flotilla("workspace".into()), 1)),
            _ => Err(need("`.workspace`", "write `flotilla.workspace`")),
        },
        type_ => match attr(0) {
            Some(n) => Ok((Subject::Resource(ResourceAddr::managed(type_, n)), 1)),
            None => Err(invalid(
                span.clone(),
                format!("`{type_}` is not a variable in this scope"),
                "resources are referenced as `TYPE.NAME`, variables as `var.NAME`, locals as `local.NAME`",
            )),
        },
    }
}

/// Every reference in an expression (names bound by `for` are not references).
///
/// Invalid references are returned as diagnostics alongside the valid ones.
pub fn references(expr: &Expr) -> (Vec<Reference>, Vec<Diagnostic>) {
    let mut w = Walker {
        file: expr.file,
        bound: Vec::new(),
        refs: Vec::new(),
        diags: Vec::new(),
    };
    w.expr(&expr.expr);
    (w.refs, w.diags)
}

struct Walker {
    file: FileId,
    bound: Vec<String>,
    refs: Vec<Reference>,
    diags: Vec<Diagnostic>,
}

impl Walker {
    fn root(&mut self, name: &str, ops: &[Decorated<TraversalOperator>], span: Span) {
        if self.bound.iter().any(|b| b == name) {
            return;
        }
        match parse_reference(name, ops, &span) {
            Ok((subject, _)) => self.refs.push(Reference { subject, span }),
            Err(d) => self.diags.push(d),
        }
    }

    fn expr(&mut self, e: &Expression) {
        let span = Span::new(self.file, e.span().unwrap_or(0..0));
        match e {
            Expression::Variable(v) => self.root(v.as_str(), &[], span),
            Expression::Traversal(t) => {
                if let Expression::Variable(v) = &t.expr {
                    self.root(v.as_str(), &t.operators, span);
                } else {
                    self.expr(&t.expr);
                }
                for op in &t.operators {
                    if let TraversalOperator::Index(i) = op.value() {
                        self.expr(i);
                    }
                }
            }
            Expression::Array(items) => items.iter().for_each(|i| self.expr(i)),
            Expression::Object(obj) => {
                for (k, v) in obj.iter() {
                    if let flotilla_syntax::hcl_edit::expr::ObjectKey::Expression(k) = k {
                        // A bare identifier in parentheses-free key position is a literal key.
                        if !matches!(k, Expression::Variable(_)) {
                            self.expr(k);
                        }
                    }
                    self.expr(v.expr());
                }
            }
            Expression::StringTemplate(t) => self.template(t),
            Expression::HeredocTemplate(h) => self.template(&h.template),
            Expression::Parenthesis(p) => self.expr(p.inner()),
            Expression::Conditional(c) => {
                self.expr(&c.cond_expr);
                self.expr(&c.true_expr);
                self.expr(&c.false_expr);
            }
            Expression::FuncCall(f) => f.args.iter().for_each(|a| self.expr(a)),
            Expression::UnaryOp(u) => self.expr(&u.expr),
            Expression::BinaryOp(b) => {
                self.expr(&b.lhs_expr);
                self.expr(&b.rhs_expr);
            }
            Expression::ForExpr(f) => {
                self.expr(&f.intro.collection_expr);
                let n = self.bound.len();
                if let Some(k) = &f.intro.key_var {
                    self.bound.push(k.as_str().to_string());
                }
                self.bound.push(f.intro.value_var.as_str().to_string());
                if let Some(k) = &f.key_expr {
                    self.expr(k);
                }
                self.expr(&f.value_expr);
                if let Some(c) = &f.cond {
                    self.expr(&c.expr);
                }
                self.bound.truncate(n);
            }
            Expression::Null(_)
            | Expression::Bool(_)
            | Expression::Number(_)
            | Expression::String(_) => {}
        }
    }

    fn template(&mut self, t: &Template) {
        for el in t.iter() {
            match el {
                Element::Literal(_) => {}
                Element::Interpolation(i) => self.expr(&i.expr),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(i) => {
                        self.expr(&i.if_expr.cond_expr);
                        self.template(&i.if_expr.template);
                        if let Some(e) = &i.else_expr {
                            self.template(&e.template);
                        }
                    }
                    Directive::For(f) => {
                        self.expr(&f.for_expr.collection_expr);
                        let n = self.bound.len();
                        if let Some(k) = &f.for_expr.key_var {
                            self.bound.push(k.as_str().to_string());
                        }
                        self.bound.push(f.for_expr.value_var.as_str().to_string());
                        self.template(&f.for_expr.template);
                        self.bound.truncate(n);
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(s: &str) -> Vec<String> {
        let expr = Expr {
            file: FileId(0),
            expr: flotilla_syntax::hcl_edit::parser::parse_expr(s).unwrap(),
        };
        let (refs, diags) = references(&expr);
        assert!(diags.is_empty(), "{diags:?}");
        refs.iter().map(|r| r.subject.to_string()).collect()
    }

    #[test]
    fn finds_references_but_not_for_bindings() {
        assert_eq!(
            refs(
                r#"[for k, v in var.m : "${k}-${v}-${local.x}" if v != data.builtin_file.f.content]"#
            ),
            ["var.m", "local.x", "data.builtin_file.f"]
        );
        assert_eq!(refs("module.net[0].vpc_id"), ["module.net"]);
        assert_eq!(
            refs("builtin_data.a[count.index].output"),
            ["builtin_data.a", "count.index"]
        );
        assert_eq!(
            refs(r#"{ a = each.value, (local.k) = 1 }"#),
            ["each.value", "local.k"]
        );
    }

    #[test]
    fn module_reference_names_its_output() {
        let expr = Expr {
            file: FileId(0),
            expr: flotilla_syntax::hcl_edit::parser::parse_expr("module.net[\"a\"].id").unwrap(),
        };
        let (refs, _) = references(&expr);
        assert_eq!(
            refs[0].subject,
            Subject::Module {
                call: "net".into(),
                output: Some("id".into())
            }
        );
    }
}
