//! The expression evaluator over hcl-edit ASTs, with Unknown and Sensitive propagation.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use flotilla_config::{Dir, Expr};
use flotilla_syntax::hcl_edit::Decorated;
use flotilla_syntax::hcl_edit::expr::{
    BinaryOperator, Expression, ForExpr, FuncCall, ObjectKey, TraversalOperator, UnaryOperator,
};
use flotilla_syntax::hcl_edit::template::{Directive, Element, Strip, Template};
use flotilla_syntax::{Diagnostic, FileId, Span, did_you_mean};

use crate::Number;
use crate::functions::{self, FnCtx};
use crate::refs::{Subject, parse_reference};
use crate::value::Value;

/// Resolves references to values. Implemented by the planner (module instance scopes), the
/// console, and [`EmptyScope`].
pub trait Scope: Sync {
    /// The value of a reference's subject; the evaluator applies the rest of the traversal.
    fn resolve(&self, subject: &Subject, span: &Span) -> Result<Cow<'_, Value>, Diagnostic>;
}

/// A scope in which nothing can be referenced (type defaults, `-var` values, templatefile).
pub struct EmptyScope;

impl Scope for EmptyScope {
    fn resolve(&self, subject: &Subject, span: &Span) -> Result<Cow<'_, Value>, Diagnostic> {
        Err(Diagnostic::error("reference not allowed here")
            .with_span(span.clone())
            .with_detail(format!("`{subject}` cannot be used in this expression"))
            .with_help("only literal values and functions can be used here"))
    }
}

/// Where an evaluation happens: the file (for spans) and the module directory (for `file()`).
#[derive(Debug, Clone)]
pub struct EvalContext<'a> {
    /// The file the expressions come from.
    pub file: FileId,
    /// The directory relative paths in file functions resolve against.
    pub dir: Dir<'a>,
}

impl<'a> EvalContext<'a> {
    /// A context for expressions of `file`, with file functions relative to `base_dir` on
    /// disk.
    pub fn new(file: FileId, base_dir: &'a Path) -> EvalContext<'a> {
        EvalContext {
            file,
            dir: Dir::disk(base_dir),
        }
    }

    /// A context whose file functions read `dir` (a module's tree: disk, git revision, cache).
    pub fn in_dir(file: FileId, dir: Dir<'a>) -> EvalContext<'a> {
        EvalContext { file, dir }
    }
}

/// Evaluates expressions against a scope.
pub struct Evaluator<'a> {
    scope: &'a dyn Scope,
    dir: Dir<'a>,
    file: FileId,
    bindings: Vec<(String, Value)>,
}

type EvalResult = Result<Value, Diagnostic>;

impl<'a> Evaluator<'a> {
    /// An evaluator for a scope and context.
    pub fn new(scope: &'a dyn Scope, ctx: &EvalContext<'a>) -> Evaluator<'a> {
        Evaluator {
            scope,
            dir: ctx.dir,
            file: ctx.file,
            bindings: Vec::new(),
        }
    }

    /// Adds names visible to every expression (as `for` variables are).
    pub fn with_bindings(mut self, bindings: Vec<(String, Value)>) -> Evaluator<'a> {
        self.bindings.extend(bindings);
        self
    }

    /// Evaluates an expression from configuration.
    pub fn eval_expr(&mut self, expr: &Expr) -> EvalResult {
        let saved = self.file;
        self.file = expr.file;
        let out = self.eval(&expr.expr);
        self.file = saved;
        out
    }

    fn span(&self, node: &impl flotilla_syntax::hcl_edit::Span) -> Span {
        Span::new(self.file, node.span().unwrap_or(0..0))
    }

    fn err(
        &self,
        node: &impl flotilla_syntax::hcl_edit::Span,
        summary: &str,
        detail: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(summary)
            .with_span(self.span(node))
            .with_detail(detail)
    }

    /// Evaluates an expression.
    pub fn eval(&mut self, e: &Expression) -> EvalResult {
        match e {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => Ok(Value::Number(literal_number(n))),
            Expression::String(s) => Ok(Value::String(s.value().to_string())),
            Expression::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.eval(item)?);
                }
                Ok(Value::List(out))
            }
            Expression::Object(obj) => {
                let mut out = BTreeMap::new();
                let mut unknown = false;
                let mut sensitive = false;
                for (k, v) in obj.iter() {
                    let key = match k {
                        ObjectKey::Ident(i) => i.as_str().to_string(),
                        ObjectKey::Expression(Expression::Variable(v)) => v.as_str().to_string(),
                        ObjectKey::Expression(ke) => match self.object_key(ke)? {
                            Some((key, s)) => {
                                sensitive |= s;
                                key
                            }
                            None => {
                                unknown = true;
                                continue;
                            }
                        },
                    };
                    let value = self.eval(v.expr())?;
                    out.insert(key, value);
                }
                let v = if unknown {
                    Value::Unknown
                } else {
                    Value::Map(out)
                };
                Ok(if sensitive { v.sensitive() } else { v })
            }
            Expression::StringTemplate(t) => {
                let elements: Vec<&Element> = t.iter().collect();
                if let [Element::Interpolation(i)] = elements.as_slice() {
                    return self.eval(&i.expr);
                }
                self.template_whole(t)
            }
            Expression::HeredocTemplate(h) => match h.undented() {
                // `<<-`: HCL's indentation rule over the template as written.
                Some(raw) => {
                    self.template_value(&crate::template::normalize(raw, true), false, false)
                }
                None => self.template_whole(&h.template),
            },
            Expression::Parenthesis(p) => self.eval(p.inner()),
            Expression::Variable(v) => self.variable(v.as_str(), &[], e),
            Expression::Traversal(t) => match &t.expr {
                Expression::Variable(v) => self.variable(v.as_str(), &t.operators, e),
                root => {
                    let base = self.eval(root)?;
                    self.traverse(Cow::Owned(base), &t.operators)
                        .map(Cow::into_owned)
                }
            },
            Expression::Conditional(c) => {
                let (cond, sensitive) = self.eval(&c.cond_expr)?.unmark();
                let out = match cond {
                    Value::Unknown => Value::Unknown,
                    Value::Bool(b) => self.conditional(c, b)?,
                    Value::String(s) if s == "true" || s == "false" => {
                        self.conditional(c, s == "true")?
                    }
                    Value::Null => {
                        return Err(self.err(&c.cond_expr, "null condition", "the condition of a conditional expression is null")
                            .with_help("make sure the condition is always true or false, e.g. `var.x != null`"));
                    }
                    other => {
                        return Err(self.err(
                            &c.cond_expr,
                            "incorrect condition type",
                            format!("a bool is required, got {}", other.type_name()),
                        ));
                    }
                };
                Ok(if sensitive { out.sensitive() } else { out })
            }
            Expression::FuncCall(call) => self.call(call),
            Expression::UnaryOp(u) => {
                let (v, sensitive) = self.eval(&u.expr)?.unmark();
                let out = match (u.operator.value(), v) {
                    (_, Value::Unknown) => Value::Unknown,
                    (UnaryOperator::Neg, v) => Value::Number(self.number(&u.expr, v)?.neg()),
                    (UnaryOperator::Not, v) => Value::Bool(!self.boolean(&u.expr, v)?),
                };
                Ok(if sensitive { out.sensitive() } else { out })
            }
            Expression::BinaryOp(b) => self.binary(b.operator.value(), &b.lhs_expr, &b.rhs_expr, e),
            Expression::ForExpr(f) => self.for_expr(f),
        }
    }

    fn variable(
        &mut self,
        name: &str,
        ops: &[Decorated<TraversalOperator>],
        whole: &Expression,
    ) -> EvalResult {
        if let Some(pos) = self.bindings.iter().rposition(|(n, _)| n == name) {
            let v = self.bindings[pos].1.clone();
            return self.traverse(Cow::Owned(v), ops).map(Cow::into_owned);
        }
        let span = self.span(whole);
        let (subject, consumed) = parse_reference(name, ops, &span)?;
        let scope = self.scope;
        let base = scope.resolve(&subject, &span)?;
        self.traverse(base, &ops[consumed..]).map(Cow::into_owned)
    }

    fn traverse<'v>(
        &mut self,
        mut cur: Cow<'v, Value>,
        ops: &[Decorated<TraversalOperator>],
    ) -> Result<Cow<'v, Value>, Diagnostic> {
        let mut i = 0;
        while i < ops.len() {
            let op = &ops[i];
            match op.value() {
                TraversalOperator::GetAttr(name) => {
                    cur = self.step(cur, op, |v| get_attr(v, name.as_str()))?;
                }
                TraversalOperator::Index(idx) => {
                    let key = self.eval(idx)?;
                    cur = self.step(cur, op, |v| index(v, &key))?;
                }
                TraversalOperator::LegacyIndex(n) => {
                    let key = Value::Number(Number::from(*n.value()));
                    cur = self.step(cur, op, |v| index(v, &key))?;
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let full = matches!(op.value(), TraversalOperator::FullSplat(_));
                    let rest = &ops[i + 1..];
                    let take = if full {
                        rest.len()
                    } else {
                        rest.iter()
                            .take_while(|o| matches!(o.value(), TraversalOperator::GetAttr(_)))
                            .count()
                    };
                    let (v, sensitive) = cur.into_owned().unmark_shallow();
                    let items = match v {
                        Value::Unknown => return Ok(Cow::Owned(Value::Unknown)),
                        Value::Null => Vec::new(),
                        Value::List(items) | Value::Set(items) => items,
                        other => vec![other],
                    };
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.traverse(Cow::Owned(item), &rest[..take])?.into_owned());
                    }
                    let list = Value::List(out);
                    cur = Cow::Owned(if sensitive { list.sensitive() } else { list });
                    i += take;
                }
            }
            i += 1;
        }
        Ok(cur)
    }

    fn step<'v>(
        &self,
        cur: Cow<'v, Value>,
        op: &Decorated<TraversalOperator>,
        f: impl Fn(&Value) -> Result<Step<'_>, (String, String, Option<String>)>,
    ) -> Result<Cow<'v, Value>, Diagnostic> {
        let fail = |(summary, detail, help): (String, String, Option<String>)| {
            let mut d = self.err(op, &summary, detail);
            if let Some(h) = help {
                d = d.with_help(h);
            }
            d
        };
        match cur {
            Cow::Borrowed(v) => match f(v).map_err(fail)? {
                Step::Ref(r) => Ok(Cow::Borrowed(r)),
                Step::Owned(o) => Ok(Cow::Owned(o)),
            },
            Cow::Owned(v) => match f(&v).map_err(fail)? {
                Step::Ref(r) => Ok(Cow::Owned(r.clone())),
                Step::Owned(o) => Ok(Cow::Owned(o)),
            },
        }
    }

    fn number(&self, node: &Expression, v: Value) -> Result<Number, Diagnostic> {
        match v {
            Value::Number(n) => Ok(n),
            Value::String(ref s) => Number::parse(s).ok_or_else(|| {
                self.err(
                    node,
                    "invalid operand",
                    format!("a number is required, got the string {s:?}"),
                )
            }),
            other => Err(self.err(
                node,
                "invalid operand",
                format!("a number is required, got {}", other.type_name()),
            )),
        }
    }

    fn boolean(&self, node: &Expression, v: Value) -> Result<bool, Diagnostic> {
        match v {
            Value::Bool(b) => Ok(b),
            Value::String(ref s) if s == "true" => Ok(true),
            Value::String(ref s) if s == "false" => Ok(false),
            other => Err(self.err(
                node,
                "invalid operand",
                format!("a bool is required, got {}", other.type_name()),
            )),
        }
    }

    fn binary(
        &mut self,
        op: &BinaryOperator,
        lhs: &Expression,
        rhs: &Expression,
        whole: &Expression,
    ) -> EvalResult {
        let (l, r) = (self.eval(lhs)?, self.eval(rhs)?);
        // Comparing with null says nothing about what a value holds: only a mark on the
        // value itself carries over (as in Terraform), so `var.cluster != null` is not
        // sensitive because the cluster object has a sensitive attribute.
        let null_check = matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq)
            && (l.is_null() || r.is_null());
        let top = |v: &Value| matches!(v, Value::Sensitive(_));
        let (top_l, top_r) = (top(&l), top(&r));
        let (l, ls) = l.unmark();
        let (r, rs) = r.unmark();
        let sensitive = if null_check { top_l || top_r } else { ls || rs };
        let out = match op {
            BinaryOperator::Eq | BinaryOperator::NotEq => {
                if l.contains_unknown() || r.contains_unknown() {
                    Value::Unknown
                } else {
                    let eq = values_equal(&l, &r);
                    Value::Bool(if *op == BinaryOperator::Eq { eq } else { !eq })
                }
            }
            _ if l.is_unknown() || r.is_unknown() => Value::Unknown,
            BinaryOperator::And | BinaryOperator::Or => {
                let a = self.boolean(lhs, l)?;
                let b = self.boolean(rhs, r)?;
                Value::Bool(if *op == BinaryOperator::And {
                    a && b
                } else {
                    a || b
                })
            }
            _ => {
                let a = self.number(lhs, l)?;
                let b = self.number(rhs, r)?;
                match op {
                    BinaryOperator::Plus => Value::Number(a.add(&b)),
                    BinaryOperator::Minus => Value::Number(a.sub(&b)),
                    BinaryOperator::Mul => Value::Number(a.mul(&b)),
                    // As in Terraform: x / 0 is an infinity, x % 0 is x, 0 / 0 an error.
                    BinaryOperator::Div => Value::Number(a.div(&b).map_err(|_| {
                        self.err(
                            whole,
                            "division by zero",
                            "cannot divide zero by zero or infinity by infinity",
                        )
                    })?),
                    BinaryOperator::Mod => Value::Number(a.rem(&b)),
                    BinaryOperator::Less => Value::Bool(a < b),
                    BinaryOperator::LessEq => Value::Bool(a <= b),
                    BinaryOperator::Greater => Value::Bool(a > b),
                    BinaryOperator::GreaterEq => Value::Bool(a >= b),
                    _ => unreachable!("handled above"),
                }
            }
        };
        Ok(if sensitive { out.sensitive() } else { out })
    }

    /// An object key computed by an expression, and whether it was sensitive; `None` while
    /// it is unknown.
    fn object_key(&mut self, ke: &Expression) -> Result<Option<(String, bool)>, Diagnostic> {
        let (kv, sensitive) = self.eval(ke)?.unmark();
        let key = match kv {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Unknown => return Ok(None),
            other => {
                return Err(self.err(
                    ke,
                    "invalid object key",
                    format!("object keys must be strings, got {}", other.type_name()),
                ));
            }
        };
        Ok(Some((key, sensitive)))
    }

    fn for_expr(&mut self, f: &ForExpr) -> EvalResult {
        // Only a mark on the collection itself marks the result; elements keep their own
        // marks (as in Terraform), so `{ for c in var.clusters : c.name => c }` is not
        // sensitive because each cluster has a sensitive kubeconfig.
        let (coll, mut sensitive) = match self.eval(&f.intro.collection_expr)? {
            Value::Sensitive(inner) => (*inner, true),
            other => (other, false),
        };
        let pairs: Vec<(Value, Value)> = match coll {
            Value::Unknown => return Ok(Value::Unknown),
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Number(Number::from(i)), v))
                .collect(),
            Value::Set(items) => items.into_iter().map(|v| (v.clone(), v)).collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            Value::Null => {
                return Err(self
                    .err(
                        &f.intro.collection_expr,
                        "iteration over null value",
                        "a `for` expression needs a list, set, map or object",
                    )
                    .with_help(
                        "use `coalesce(x, [])` or a conditional to handle a null collection",
                    ));
            }
            other => {
                return Err(self.err(
                    &f.intro.collection_expr,
                    "iteration over non-iterable value",
                    format!(
                        "a `for` expression needs a list, set, map or object, got {}",
                        other.type_name()
                    ),
                ));
            }
        };
        let n = self.bindings.len();
        let mut list = Vec::new();
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        let mut unknown = false;
        let result = (|| -> Result<(), Diagnostic> {
            for (k, v) in pairs {
                self.bindings.truncate(n);
                if let Some(kv) = &f.intro.key_var {
                    self.bindings.push((kv.as_str().to_string(), k));
                }
                self.bindings
                    .push((f.intro.value_var.as_str().to_string(), v));
                if let Some(c) = &f.cond {
                    match self.eval(&c.expr)?.unmark().0 {
                        Value::Bool(true) => {}
                        Value::Bool(false) => continue,
                        Value::Unknown => {
                            unknown = true;
                            continue;
                        }
                        other => {
                            return Err(self.err(
                                &c.expr,
                                "invalid `for` condition",
                                format!("a bool is required, got {}", other.type_name()),
                            ));
                        }
                    }
                }
                let value = self.eval(&f.value_expr)?;
                match &f.key_expr {
                    None => list.push(value),
                    Some(ke) => {
                        // A sensitive key makes the whole result sensitive, as in literals.
                        let key = match self.object_key(ke)? {
                            Some((key, s)) => {
                                sensitive |= s;
                                key
                            }
                            None => {
                                unknown = true;
                                continue;
                            }
                        };
                        if f.grouping {
                            match map.entry(key).or_insert_with(|| Value::List(Vec::new())) {
                                Value::List(items) => items.push(value),
                                _ => unreachable!("grouping entries are lists"),
                            }
                        } else {
                            match map.entry(key) {
                                std::collections::btree_map::Entry::Occupied(e) => {
                                    return Err(self
                                        .err(
                                            ke,
                                            "duplicate object key",
                                            format!("two elements produce the key {:?}", e.key()),
                                        )
                                        .with_help(
                                            "use `...` after the value expression to group values by key",
                                        ));
                                }
                                std::collections::btree_map::Entry::Vacant(e) => {
                                    e.insert(value);
                                }
                            }
                        }
                    }
                }
            }
            Ok(())
        })();
        self.bindings.truncate(n);
        result?;
        let out = if unknown {
            Value::Unknown
        } else if f.key_expr.is_some() {
            Value::Map(map)
        } else {
            Value::List(list)
        };
        Ok(if sensitive { out.sensitive() } else { out })
    }

    fn call(&mut self, call: &FuncCall) -> EvalResult {
        let name = call.name.name.as_str();
        if !call.name.namespace.is_empty() {
            return Err(self
                .err(
                    call,
                    "unknown function",
                    format!(
                        "`{}::{name}` is not a function flotilla knows",
                        call.name
                            .namespace
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join("::")
                    ),
                )
                .with_help("provider-defined functions are not supported"));
        }
        let args: Vec<&Expression> = call.args.iter().collect();
        match name {
            "try" => {
                if args.is_empty() {
                    return Err(self.err(
                        call,
                        "invalid function call",
                        "`try` needs at least one argument",
                    ));
                }
                let mut last = None;
                for a in &args {
                    match self.eval(a) {
                        Ok(v) => return Ok(v),
                        Err(d) => last = Some(d),
                    }
                }
                let detail = last.map(|d| d.to_string()).unwrap_or_default();
                return Err(self.err(
                    call,
                    "no `try` argument succeeded",
                    format!("the last error was: {detail}"),
                ));
            }
            "can" => {
                if args.len() != 1 {
                    return Err(self.err(
                        call,
                        "invalid function call",
                        "`can` takes exactly one argument",
                    ));
                }
                return Ok(match self.eval(args[0]) {
                    Ok(v) if v.contains_unknown() => Value::Unknown,
                    Ok(_) => Value::Bool(true),
                    Err(_) => Value::Bool(false),
                });
            }
            _ => {}
        }
        let Some(def) = functions::lookup(name) else {
            let mut d = self.err(
                call,
                "call to unknown function",
                format!("there is no function named `{name}`"),
            );
            if let Some(s) = did_you_mean(name, functions::names()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            return Err(d);
        };
        let mut values = Vec::with_capacity(args.len());
        for a in &args {
            values.push(self.eval(a)?);
        }
        if call.args.expand_final() {
            match values.pop().map(|v| v.unmark()) {
                Some((Value::List(items) | Value::Set(items), s)) => {
                    values.extend(items.into_iter().map(|v| if s { v.sensitive() } else { v }))
                }
                Some((Value::Unknown, _)) => return Ok(Value::Unknown),
                _ => {
                    return Err(self.err(
                        call,
                        "invalid expanding argument",
                        "the argument before `...` must be a list or set",
                    ));
                }
            }
        }
        let ctx = FnCtx { dir: self.dir };
        functions::call(def, values, &ctx).map_err(|msg| {
            self.err(call, "error in function call", format!("`{name}`: {msg}"))
                .with_help(format!(
                    "see `{name}` in docs/language.md for its arguments"
                ))
        })
    }

    fn template_value(&mut self, t: &Template, trim_first: bool, trim_last: bool) -> EvalResult {
        let mut out = String::new();
        let mut unknown = false;
        let mut sensitive = false;
        self.template_into(
            t,
            trim_first,
            trim_last,
            &mut out,
            &mut unknown,
            &mut sensitive,
        )?;
        let v = if unknown {
            Value::Unknown
        } else {
            Value::String(out)
        };
        Ok(if sensitive { v.sensitive() } else { v })
    }

    fn template_into(
        &mut self,
        t: &Template,
        trim_first: bool,
        trim_last: bool,
        out: &mut String,
        unknown: &mut bool,
        sensitive: &mut bool,
    ) -> Result<(), Diagnostic> {
        let elements: Vec<&Element> = t.iter().collect();
        for (i, el) in elements.iter().enumerate() {
            match el {
                Element::Literal(lit) => {
                    let mut s: &str = lit.value();
                    let strip_before = if i == 0 {
                        trim_first
                    } else {
                        strip_of(elements[i - 1]).1
                    };
                    let strip_after = if i + 1 == elements.len() {
                        trim_last
                    } else {
                        strip_of(elements[i + 1]).0
                    };
                    if strip_before {
                        s = s.trim_start();
                    }
                    if strip_after {
                        s = s.trim_end();
                    }
                    out.push_str(s);
                }
                Element::Interpolation(interp) => {
                    let (v, s) = self.eval(&interp.expr)?.unmark();
                    *sensitive |= s;
                    match v {
                        Value::Unknown => *unknown = true,
                        Value::String(s) => out.push_str(&s),
                        Value::Number(n) => out.push_str(&n.to_string()),
                        Value::Bool(b) => out.push_str(&b.to_string()),
                        Value::Null => {
                            return Err(self
                                .err(
                                    &interp.expr,
                                    "invalid template interpolation value",
                                    "the value is null",
                                )
                                .with_help(
                                    "use `coalesce(x, \"\")` or a conditional to handle null",
                                ));
                        }
                        other => {
                            return Err(self.err(&interp.expr, "invalid template interpolation value", format!("cannot include a {} in a string", other.type_name()))
                                .with_help("convert it first, e.g. with `jsonencode(...)` or `join(\",\", ...)`"));
                        }
                    }
                }
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(dir) => {
                        let (cond, s) = self.eval(&dir.if_expr.cond_expr)?.unmark();
                        *sensitive |= s;
                        let else_strip_start = dir
                            .else_expr
                            .as_ref()
                            .is_some_and(|e| e.strip.strip_start());
                        match cond {
                            Value::Unknown => *unknown = true,
                            Value::Bool(true) => {
                                let last = if dir.else_expr.is_some() {
                                    else_strip_start
                                } else {
                                    dir.endif_expr.strip.strip_start()
                                };
                                self.template_into(
                                    &dir.if_expr.template,
                                    dir.if_expr.strip.strip_end(),
                                    last,
                                    out,
                                    unknown,
                                    sensitive,
                                )?;
                            }
                            Value::Bool(false) => {
                                if let Some(e) = &dir.else_expr {
                                    self.template_into(
                                        &e.template,
                                        e.strip.strip_end(),
                                        dir.endif_expr.strip.strip_start(),
                                        out,
                                        unknown,
                                        sensitive,
                                    )?;
                                }
                            }
                            other => {
                                return Err(self.err(
                                    &dir.if_expr.cond_expr,
                                    "invalid `if` condition",
                                    format!("a bool is required, got {}", other.type_name()),
                                ));
                            }
                        }
                    }
                    Directive::For(dir) => {
                        let (coll, s) = self.eval(&dir.for_expr.collection_expr)?.unmark();
                        *sensitive |= s;
                        let pairs: Vec<(Value, Value)> = match coll {
                            Value::Unknown => {
                                *unknown = true;
                                Vec::new()
                            }
                            Value::List(items) => items
                                .into_iter()
                                .enumerate()
                                .map(|(i, v)| (Value::Number(Number::from(i)), v))
                                .collect(),
                            Value::Set(items) => {
                                items.into_iter().map(|v| (v.clone(), v)).collect()
                            }
                            Value::Map(m) => {
                                m.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                            }
                            other => {
                                return Err(self.err(
                                    &dir.for_expr.collection_expr,
                                    "iteration over non-iterable value",
                                    format!(
                                        "a `for` directive needs a collection, got {}",
                                        other.type_name()
                                    ),
                                ));
                            }
                        };
                        let n = self.bindings.len();
                        for (k, v) in pairs {
                            self.bindings.truncate(n);
                            if let Some(kv) = &dir.for_expr.key_var {
                                self.bindings.push((kv.as_str().to_string(), k));
                            }
                            self.bindings
                                .push((dir.for_expr.value_var.as_str().to_string(), v));
                            let r = self.template_into(
                                &dir.for_expr.template,
                                dir.for_expr.strip.strip_end(),
                                dir.endfor_expr.strip.strip_start(),
                                out,
                                unknown,
                                sensitive,
                            );
                            if r.is_err() {
                                self.bindings.truncate(n);
                                return r;
                            }
                        }
                        self.bindings.truncate(n);
                    }
                },
            }
        }
        Ok(())
    }

    /// A conditional's result, unified with the other branch's type as Terraform does
    /// (`true ? 1 : "x"` is `"1"`). The other branch is evaluated for its type only: its
    /// errors are not this expression's.
    fn conditional(
        &mut self,
        c: &flotilla_syntax::hcl_edit::expr::Conditional,
        taken: bool,
    ) -> EvalResult {
        let (chosen, other) = if taken {
            (&c.true_expr, &c.false_expr)
        } else {
            (&c.false_expr, &c.true_expr)
        };
        let value = self.eval(chosen)?;
        let Ok(other_value) = self.eval(other) else {
            return Ok(value);
        };
        let describe = |v: &Value| v.type_name();
        let (t, f) = if taken {
            (describe(&value), describe(&other_value))
        } else {
            (describe(&other_value), describe(&value))
        };
        match crate::types::unify(vec![value, other_value]) {
            Ok(mut both) => Ok(both.swap_remove(0)),
            Err(e) => Err(self
                .err(
                    chosen,
                    "inconsistent conditional result types",
                    format!("the true and false results must have consistent types: the true value is {t}, the false value is {f} ({e})"),
                )
                .with_help("convert one of them, e.g. with tostring() or jsonencode(), or make both the same kind")),
        }
    }

    /// Evaluates a standalone template (for `templatefile`).
    pub fn eval_template(&mut self, t: &Template) -> EvalResult {
        self.template_whole(t)
    }

    /// A whole template, its strip markers applied line by line as HCL does.
    fn template_whole(&mut self, t: &Template) -> EvalResult {
        if crate::template::has_strip_markers(t) {
            self.template_value(&crate::template::normalize(t, false), false, false)
        } else {
            self.template_value(t, false, false)
        }
    }
}

/// (strips whitespace before it, strips whitespace after it) for a template element.
fn strip_of(el: &Element) -> (bool, bool) {
    let pair = |start: Strip, end: Strip| (start.strip_start(), end.strip_end());
    match el {
        Element::Literal(_) => (false, false),
        Element::Interpolation(i) => pair(i.strip, i.strip),
        Element::Directive(d) => match d.as_ref() {
            Directive::If(dir) => pair(dir.if_expr.strip, dir.endif_expr.strip),
            Directive::For(dir) => pair(dir.for_expr.strip, dir.endfor_expr.strip),
        },
    }
}

enum Step<'v> {
    Ref(&'v Value),
    Owned(Value),
}

type StepError = (String, String, Option<String>);

fn get_attr<'v>(v: &'v Value, name: &str) -> Result<Step<'v>, StepError> {
    match v {
        Value::Map(m) => match m.get(name) {
            Some(x) => Ok(Step::Ref(x)),
            None => {
                let help = did_you_mean(name, m.keys().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| {
                        (!m.is_empty()).then(|| {
                            format!(
                                "available attributes: {}",
                                m.keys().take(12).cloned().collect::<Vec<_>>().join(", ")
                            )
                        })
                    });
                Err((
                    "unsupported attribute".into(),
                    format!("this object has no attribute named `{name}`"),
                    help,
                ))
            }
        },
        Value::Unknown => Ok(Step::Owned(Value::Unknown)),
        Value::Sensitive(inner) => Ok(Step::Owned(match get_attr(inner, name)? {
            Step::Ref(r) => r.clone().sensitive(),
            Step::Owned(o) => o.sensitive(),
        })),
        Value::Null => Err((
            "attempt to get attribute from null value".into(),
            format!("cannot read `{name}` from null"),
            Some(
                "check for null first, e.g. `x != null ? x.attr : default`, or use `try(...)`"
                    .into(),
            ),
        )),
        Value::List(_) | Value::Set(_) => Err((
            "unsupported attribute".into(),
            format!("cannot read `{name}` from a list"),
            Some(format!(
                "pick one element (`x[0].{name}`) or all of them with a splat (`x[*].{name}`)"
            )),
        )),
        other => Err((
            "unsupported attribute".into(),
            format!("a {} has no attributes", other.type_name()),
            None,
        )),
    }
}

fn index<'v>(v: &'v Value, key: &Value) -> Result<Step<'v>, StepError> {
    let (key, key_sensitive) = key.clone().unmark();
    if matches!(key, Value::Unknown) || matches!(v, Value::Unknown) {
        return Ok(Step::Owned(Value::Unknown));
    }
    let out = match v {
        Value::Sensitive(inner) => {
            return Ok(Step::Owned(match index(inner, &key)? {
                Step::Ref(r) => r.clone().sensitive(),
                Step::Owned(o) => o.sensitive(),
            }));
        }
        Value::List(items) => {
            let i = match &key {
                Value::Number(n) => n.to_usize().ok_or_else(|| invalid_index(&key))?,
                Value::String(s) => s.parse::<usize>().map_err(|_| invalid_index(&key))?,
                _ => return Err(invalid_index(&key)),
            };
            match items.get(i) {
                Some(x) => Step::Ref(x),
                None => {
                    return Err((
                        "invalid index".into(),
                        format!(
                            "index {i} is out of range for a list of {} elements",
                            items.len()
                        ),
                        Some("indexes start at 0; use `length(...)` to check the size".into()),
                    ));
                }
            }
        }
        Value::Map(m) => {
            let k = match &key {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(invalid_index(&key)),
            };
            match m.get(&k) {
                Some(x) => Step::Ref(x),
                None => {
                    let help = did_you_mean(&k, m.keys().map(String::as_str))
                        .map(|s| format!("did you mean {s:?}?"));
                    return Err((
                        "invalid index".into(),
                        format!(
                            "the given key {k:?} does not identify an element in this collection"
                        ),
                        help,
                    ));
                }
            }
        }
        Value::Set(_) => {
            return Err((
                "invalid index".into(),
                "elements of a set are identified only by their value and cannot be indexed".into(),
                Some("convert it with `tolist(...)` first".into()),
            ));
        }
        Value::Null => {
            return Err((
                "attempt to index null value".into(),
                "cannot index a null value".into(),
                None,
            ));
        }
        other => {
            return Err((
                "invalid index".into(),
                format!("a {} cannot be indexed", other.type_name()),
                None,
            ));
        }
    };
    Ok(if key_sensitive {
        Step::Owned(match out {
            Step::Ref(r) => r.clone().sensitive(),
            Step::Owned(o) => o.sensitive(),
        })
    } else {
        out
    })
}

fn invalid_index(key: &Value) -> StepError {
    (
        "invalid index".into(),
        format!("a {} cannot be used as an index here", key.type_name()),
        None,
    )
}

/// A number literal exactly as written (`0.1` is a tenth at 512 bits, not the nearest
/// `f64`); the parser's value only when the text is somehow unavailable.
fn literal_number(
    n: &flotilla_syntax::hcl_edit::Formatted<flotilla_syntax::hcl_edit::Number>,
) -> Number {
    n.as_repr()
        .map(|r| r.replace(|c: char| c.is_whitespace(), ""))
        .and_then(|s| Number::parse(&s))
        .unwrap_or_else(|| {
            let v = n.value();
            v.as_i64()
                .map(Number::from)
                .or_else(|| v.as_u64().map(Number::from))
                .unwrap_or_else(|| Number::from_f64(v.as_f64().unwrap_or(0.0)))
        })
}

/// Equality as the `==` operator sees it: numbers by value, collections element-wise.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::List(x), Value::List(y)) | (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && values_equal(v1, v2))
        }
        (Value::Sensitive(x), y) | (y, Value::Sensitive(x)) => values_equal(x, y),
        _ => a == b,
    }
}

/// The string of a literal string expression, if it is one.
pub(crate) fn literal_string(e: &Expression) -> Option<String> {
    flotilla_config::literal_str(e)
}

impl Value {
    fn unmark_shallow(self) -> (Value, bool) {
        match self {
            Value::Sensitive(v) => (*v, true),
            v => (v, false),
        }
    }
}
