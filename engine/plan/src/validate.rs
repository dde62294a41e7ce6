//! Offline validation: what can be checked without evaluating anything or touching state.

use flotilla_config::addr::ResourceMode;
use flotilla_config::{BlockBody, Module};
use flotilla_provider::{
    BlockSchema, ProviderRegistry, Review, ReviewedProvider, ReviewedResource,
};
use flotilla_syntax::{Diagnostic, Diagnostics, Span, did_you_mean};

/// Checks every resource's provider, type, argument names, nested blocks and required
/// arguments against the provider schemas, and every variable's type constraint.
pub fn validate_static(root: &Module, registry: &ProviderRegistry) -> Diagnostics {
    let mut diags = Diagnostics::new();
    // What the providers' cross-resource review sees: every resource with its value (all
    // references unknown) and every provider block's arguments.
    let mut reviewed: Vec<(&flotilla_config::Resource, String, flotilla_lang::Value)> = Vec::new();
    let mut providers = Vec::new();
    for m in root.all_modules() {
        for ((name, alias), block) in &m.providers {
            let Some(provider) = registry.instantiate(name) else {
                continue;
            };
            let mut ignored = Diagnostics::new();
            let config = crate::eval::eval_body(
                &UnknownScope,
                m,
                &block.body,
                &provider.schema().provider,
                &block.span,
                name,
                &mut ignored,
            );
            let address = flotilla_config::addr::ProviderConfigAddr {
                module: m.path.clone(),
                name: name.clone(),
                alias: alias.clone(),
                key: Default::default(),
            };
            providers.push(ReviewedProvider {
                address: address.to_string(),
                name: name.clone(),
                config,
            });
        }
        for v in m.variables.values() {
            if let Some(t) = &v.type_expr
                && let Err(d) = flotilla_lang::parse_type(t.file, &t.expr)
            {
                diags.push(d);
            }
        }
        for r in m.resources.values() {
            let name = match &r.provider {
                Some(p) => p.name.clone(),
                None => r.addr.implied_provider().to_string(),
            };
            let Some(provider) = registry.instantiate(&name) else {
                let mut d = Diagnostic::error("unknown provider")
                    .with_span(r.span.clone())
                    .with_detail(format!(
                        "`{}` needs provider `{name}`, which flotilla does not have",
                        r.addr
                    ));
                d = match did_you_mean(&name, registry.names()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!(
                        "available providers: {}",
                        registry.names().collect::<Vec<_>>().join(", ")
                    )),
                };
                diags.push(d);
                continue;
            };
            let types = match r.addr.mode {
                ResourceMode::Managed => &provider.schema().resources,
                ResourceMode::Data => &provider.schema().data_sources,
            };
            let Some(schema) = types.get(&r.addr.type_) else {
                diags.push(unknown_type(r, &name, types));
                continue;
            };
            let before = diags.0.len();
            check_body(
                &r.body,
                &schema.block,
                &r.span,
                &r.addr.to_string(),
                &mut diags,
            );
            if diags.0.len() == before {
                // The provider's own checks, on the values known without evaluating
                // references (those are unknown here and checked again at plan time).
                let mut ignored = Diagnostics::new();
                let value = crate::eval::eval_body(
                    &UnknownScope,
                    m,
                    &r.body,
                    &schema.block,
                    &r.span,
                    &r.addr.to_string(),
                    &mut ignored,
                );
                for e in provider.validate(&r.addr.type_, &value) {
                    diags.push(provider_error(r, &r.addr.to_string(), &e));
                }
                if r.addr.mode == ResourceMode::Managed
                    && let Ok(p) = flotilla_graph::resolve_provider(root, &m.path, r)
                {
                    reviewed.push((r, p.to_string(), value));
                }
            }
        }
    }
    if !diags.has_errors() {
        let review = Review {
            resources: reviewed
                .iter()
                .map(|(r, provider, value)| ReviewedResource {
                    address: r.addr.to_string(),
                    type_name: &r.addr.type_,
                    provider: provider.clone(),
                    value,
                })
                .collect(),
            providers,
        };
        let resources: Vec<&flotilla_config::Resource> =
            reviewed.iter().map(|(r, _, _)| *r).collect();
        diags.extend(review_findings(registry, &review, &resources));
    }
    diags
}

/// Asks each provider the configuration uses to review it, as diagnostics on the resources
/// the findings are about.
pub(crate) fn review_findings(
    registry: &ProviderRegistry,
    review: &Review<'_>,
    resources: &[&flotilla_config::Resource],
) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let mut names: Vec<&str> = review.providers.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let Some(provider) = registry.instantiate(name).filter(|p| p.reviews()) else {
            continue;
        };
        for f in provider.review(review) {
            let (Some(r), Some(seen)) =
                (resources.get(f.resource), review.resources.get(f.resource))
            else {
                continue;
            };
            diags.push(if f.warning {
                about(
                    Diagnostic::warning("the plan may not do what you expect"),
                    r,
                    &seen.address,
                    &f.error,
                )
            } else {
                provider_error(r, &seen.address, &f.error)
            });
        }
    }
    diags
}

/// Dependencies that providers infer from names their platforms resolve (see
/// [`flotilla_provider::Provider::references`]), as (dependent, dependency) graph nodes,
/// from each resource's literal values (references unknown). Only resources of providers that
/// review are evaluated, so configurations without them pay nothing.
pub fn implied_dependencies(
    root: &Module,
    registry: &ProviderRegistry,
) -> Vec<(flotilla_graph::Node, flotilla_graph::Node)> {
    let mut resources = Vec::new();
    // Whether each provider reviews, asked once per provider (configurations of 100,000
    // built-in resources go through here).
    let mut reviewing: std::collections::HashMap<
        String,
        Option<std::sync::Arc<dyn flotilla_provider::Provider>>,
    > = std::collections::HashMap::new();
    for m in root.all_modules() {
        for r in m.resources.values() {
            if r.addr.mode != ResourceMode::Managed {
                continue;
            }
            let name = match &r.provider {
                Some(p) => p.name.as_str(),
                None => r.addr.implied_provider(),
            };
            let provider = match reviewing.get(name) {
                Some(p) => p.clone(),
                None => {
                    let p = registry.instantiate(name).filter(|p| p.reviews());
                    reviewing.insert(name.to_string(), p.clone());
                    p
                }
            };
            let Some(provider) = provider else {
                continue;
            };
            let Ok(p) = flotilla_graph::resolve_provider(root, &m.path, r) else {
                continue;
            };
            let Some(schema) = provider.schema().resources.get(&r.addr.type_) else {
                continue;
            };
            let mut ignored = Diagnostics::new();
            let value = crate::eval::eval_body(
                &UnknownScope,
                m,
                &r.body,
                &schema.block,
                &r.span,
                &r.addr.to_string(),
                &mut ignored,
            );
            resources.push((m, r, p, value));
        }
    }
    if resources.is_empty() {
        return Vec::new();
    }
    let review = Review {
        resources: resources
            .iter()
            .map(|(_, r, p, value)| ReviewedResource {
                address: r.addr.to_string(),
                type_name: &r.addr.type_,
                provider: p.to_string(),
                value,
            })
            .collect(),
        providers: Vec::new(),
    };
    let node = |i: usize| {
        let (m, r, _, _) = &resources[i];
        flotilla_graph::Node {
            module: m.path.clone(),
            kind: flotilla_graph::NodeKind::Resource(r.addr.clone()),
        }
    };
    let mut names: Vec<&str> = resources
        .iter()
        .map(|(_, _, p, _)| p.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        if let Some(provider) = registry.instantiate(name) {
            for (a, b) in provider.references(&review) {
                if a < resources.len() && b < resources.len() && a != b {
                    out.push((node(a), node(b)));
                }
            }
        }
    }
    out
}

/// Resolves every reference to an unknown value: what `validate` evaluates with.
struct UnknownScope;

impl flotilla_lang::Scope for UnknownScope {
    fn resolve(
        &self,
        _subject: &flotilla_lang::Subject,
        _span: &Span,
    ) -> Result<std::borrow::Cow<'_, flotilla_lang::Value>, Diagnostic> {
        Ok(std::borrow::Cow::Owned(flotilla_lang::Value::Unknown))
    }
}

/// A provider's complaint about a resource's configuration, pointing at the value at fault
/// (inside object literals too) when it names one.
pub fn provider_error(
    r: &flotilla_config::Resource,
    what: &str,
    e: &flotilla_provider::ProviderError,
) -> Diagnostic {
    about(
        Diagnostic::error("invalid resource configuration"),
        r,
        what,
        e,
    )
}

/// `d` about a provider's complaint: the span of the value at fault, the message, the fix.
fn about(
    d: Diagnostic,
    r: &flotilla_config::Resource,
    what: &str,
    e: &flotilla_provider::ProviderError,
) -> Diagnostic {
    let span = e
        .attribute
        .as_ref()
        .and_then(|p| span_of(&r.body, p))
        .unwrap_or_else(|| r.span.clone());
    let mut d = d
        .with_span(span)
        .with_detail(format!("{what}: {}", e.message));
    d = match &e.detail {
        Some(detail) => d.with_help(detail.clone()),
        None => d.with_help("fix the value; docs/providers describes what each resource accepts"),
    };
    d
}

/// Where the value at `path` is written in a body: the attribute, then keys of object
/// literals and elements of tuple literals, as deep as the source spells them out.
fn span_of(body: &BlockBody, path: &flotilla_lang::AttrPath) -> Option<Span> {
    use flotilla_lang::PathStep;
    use flotilla_syntax::hcl_edit::Span as _;
    use flotilla_syntax::hcl_edit::expr::{Expression, ObjectKey};
    let mut steps = path.0.iter();
    let Some(PathStep::Key(first)) = steps.next() else {
        return None;
    };
    let attr = body.attr(first)?;
    let file = attr.expr.file;
    let mut expr = &attr.expr.expr;
    let mut span = attr.expr.expr.span();
    for step in steps {
        let next = match (expr, step) {
            (Expression::Object(o), PathStep::Key(k)) => o.iter().find_map(|(key, value)| {
                let name = match key {
                    ObjectKey::Ident(i) => i.as_str().to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.as_str().to_string(),
                    _ => return None,
                };
                (name == *k).then(|| (value.expr(), key.span()))
            }),
            (Expression::Array(a), PathStep::Index(i)) => a.iter().nth(*i).map(|e| (e, e.span())),
            _ => None,
        };
        match next {
            Some((e, s)) => {
                expr = e;
                span = s.or(span);
            }
            None => break,
        }
    }
    span.map(|range| Span::new(file, range))
}

/// Checks a body's shape against a schema: known arguments (settable ones), known nested
/// blocks, required arguments present. Shared by `validate` and evaluation.
pub(crate) fn check_body(
    body: &BlockBody,
    schema: &BlockSchema,
    span: &Span,
    what: &str,
    diags: &mut Diagnostics,
) {
    let settable: Vec<&str> = schema
        .attributes
        .iter()
        .filter(|(_, a)| a.required || a.optional)
        .map(|(k, _)| k.as_str())
        .chain(schema.blocks.keys().map(String::as_str))
        .collect();
    for a in &body.attrs {
        match schema.attributes.get(&a.name) {
            Some(s) if s.required || s.optional => {}
            Some(_) => diags.push(
                Diagnostic::error("cannot set a computed attribute")
                    .with_span(a.span.clone())
                    .with_detail(format!("`{}` of {what} is set by the provider", a.name))
                    .with_help("remove this line; read the value with a reference instead"),
            ),
            None => {
                let mut d = Diagnostic::error("unsupported argument")
                    .with_span(a.span.clone())
                    .with_detail(format!("`{}` is not an argument of {what}", a.name));
                d = match did_you_mean(&a.name, settable.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("arguments are: {}", settable.join(", "))),
                };
                diags.push(d);
            }
        }
    }
    for b in &body.blocks {
        match schema.blocks.get(&b.kind) {
            Some(s) => check_body(
                &b.body,
                &s.block,
                &b.span,
                &format!("a `{}` block", b.kind),
                diags,
            ),
            None => {
                let mut d = Diagnostic::error("unsupported block type")
                    .with_span(b.span.clone())
                    .with_detail(format!(
                        "blocks of type `{}` are not expected in {what}",
                        b.kind
                    ));
                if let Some(s) = did_you_mean(&b.kind, schema.blocks.keys().map(String::as_str)) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else if schema.attributes.contains_key(&b.kind) {
                    d = d.with_help(format!(
                        "`{0}` is an argument: write `{0} = {{ ... }}`",
                        b.kind
                    ));
                }
                diags.push(d);
            }
        }
    }
    for (name, b) in &schema.blocks {
        let count = body.blocks.iter().filter(|x| &x.kind == name).count();
        if b.nesting == flotilla_provider::Nesting::Single && count > 1 {
            diags.push(
                Diagnostic::error("too many blocks")
                    .with_span(span.clone())
                    .with_detail(format!(
                        "{what} allows at most one `{name}` block, found {count}"
                    ))
                    .with_help("merge the blocks into one"),
            );
        }
    }
    for (name, a) in &schema.attributes {
        if a.required && body.attr(name).is_none() {
            diags.push(
                Diagnostic::error("missing required argument")
                    .with_span(span.clone())
                    .with_detail(format!("{what} needs `{name}`"))
                    .with_help(format!("add `{name} = ...` ({})", a.description)),
            );
        }
    }
}

/// "unknown resource type" with a suggestion from the provider's types.
pub(crate) fn unknown_type(
    r: &flotilla_config::Resource,
    provider: &str,
    types: &std::collections::BTreeMap<String, flotilla_provider::ResourceSchema>,
) -> Diagnostic {
    let what = if r.addr.mode == ResourceMode::Data {
        "data source"
    } else {
        "resource"
    };
    let d = Diagnostic::error(format!("unknown {what} type"))
        .with_span(r.span.clone())
        .with_detail(format!(
            "provider `{provider}` has no {what} type `{}`",
            r.addr.type_
        ));
    match did_you_mean(&r.addr.type_, types.keys().map(String::as_str)) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(format!(
            "`{provider}` offers: {}",
            types.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}
