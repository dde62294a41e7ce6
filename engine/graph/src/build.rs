//! Building the graph from a module tree, as a list of named steps.

use std::collections::HashMap;

use flotilla_config::addr::{ModulePath, ProviderConfigAddr};
use flotilla_config::{BlockBody, Expr, Module, ProviderRef, Resource};
use flotilla_lang::{Subject, references};
use flotilla_syntax::{Diagnostic, Diagnostics, Span, did_you_mean};
use petgraph::graph::NodeIndex;

use crate::{Graph, Node, NodeKind};

/// Builds and checks the dependency graph of a configuration.
///
/// Returns the graph even when there are diagnostics, so `validate` can report everything.
pub fn build(root: &Module) -> (Graph, Diagnostics) {
    build_with(root, &[])
}

/// [`build`], plus dependencies no expression states: (dependent, dependency) pairs of
/// resource nodes that providers report from names their platform resolves (an Istio route
/// naming a gateway). Pairs naming nodes that do not exist are ignored.
pub fn build_with(root: &Module, implied: &[(Node, Node)]) -> (Graph, Diagnostics) {
    let mut b = Builder {
        root,
        graph: Graph::default(),
        diags: Diagnostics::new(),
    };
    b.add_nodes();
    b.add_reference_edges();
    b.add_module_edges();
    b.add_provider_edges();
    b.add_implied_edges(implied);
    b.check_acyclic();
    (b.graph, b.diags)
}

struct Builder<'a> {
    root: &'a Module,
    graph: Graph,
    diags: Diagnostics,
}

/// Every expression inside a body, nested blocks included.
pub(crate) fn body_exprs(body: &BlockBody) -> Vec<&Expr> {
    let mut out: Vec<&Expr> = body.attrs.iter().map(|a| &a.expr).collect();
    for b in &body.blocks {
        out.extend(body_exprs(&b.body));
    }
    out
}

fn resource_exprs(r: &Resource) -> Vec<&Expr> {
    let mut out = body_exprs(&r.body);
    out.extend(r.count.iter());
    out.extend(r.for_each.iter());
    out.extend(r.depends_on.iter());
    out.extend(r.lifecycle.replace_triggered_by.iter());
    for c in r
        .lifecycle
        .preconditions
        .iter()
        .chain(&r.lifecycle.postconditions)
    {
        out.push(&c.condition);
        out.push(&c.error_message);
    }
    out
}

impl Builder<'_> {
    fn add_nodes(&mut self) {
        for m in self.root.all_modules() {
            let path = &m.path;
            let node = |kind| Node {
                module: path.clone(),
                kind,
            };
            for name in m.variables.keys() {
                self.graph.add(node(NodeKind::Variable(name.clone())));
            }
            for name in m.locals.keys() {
                self.graph.add(node(NodeKind::Local(name.clone())));
            }
            for name in m.outputs.keys() {
                self.graph.add(node(NodeKind::Output(name.clone())));
            }
            for addr in m.resources.keys() {
                self.graph.add(node(NodeKind::Resource(addr.clone())));
            }
            for name in m.module_calls.keys() {
                self.graph.add(node(NodeKind::ModuleCall(name.clone())));
            }
            for (name, alias) in m.providers.keys() {
                let addr = ProviderConfigAddr {
                    module: path.clone(),
                    name: name.clone(),
                    alias: alias.clone(),
                    key: Default::default(),
                };
                self.graph.add(node(NodeKind::Provider(addr)));
            }
        }
    }

    /// Edges for every reference in `exprs`, made from the point of view of `module`.
    fn refs_to(&mut self, module: &Module, to: NodeIndex, exprs: &[&Expr]) {
        for expr in exprs {
            let (refs, diags) = references(expr);
            self.diags.extend(diags);
            for r in refs {
                for from in self.resolve(module, &r.subject, &r.span) {
                    self.graph.edge(from, to, Some(r.span.clone()));
                }
            }
        }
    }

    fn resolve(&mut self, m: &Module, subject: &Subject, span: &Span) -> Vec<NodeIndex> {
        let node = |kind| Node {
            module: m.path.clone(),
            kind,
        };
        let undeclared = |what: &str, name: &str, known: Vec<&str>, help: String| {
            let mut d = Diagnostic::error(format!("reference to undeclared {what}"))
                .with_span(span.clone())
                .with_detail(format!(
                    "no {what} named `{name}` is declared in {}",
                    module_name(&m.path)
                ));
            d = match did_you_mean(name, known) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(help),
            };
            d
        };
        match subject {
            Subject::Var(n) => match self.graph.find(&node(NodeKind::Variable(n.clone()))) {
                Some(i) => vec![i],
                None => {
                    let d = undeclared(
                        "input variable",
                        n,
                        m.variables.keys().map(String::as_str).collect(),
                        format!("declare it with `variable \"{n}\" {{}}`"),
                    );
                    self.diags.push(d);
                    vec![]
                }
            },
            Subject::Local(n) => match self.graph.find(&node(NodeKind::Local(n.clone()))) {
                Some(i) => vec![i],
                None => {
                    let d = undeclared(
                        "local value",
                        n,
                        m.locals.keys().map(String::as_str).collect(),
                        format!("declare it in a `locals {{ {n} = ... }}` block"),
                    );
                    self.diags.push(d);
                    vec![]
                }
            },
            Subject::Resource(addr) => {
                match self.graph.find(&node(NodeKind::Resource(addr.clone()))) {
                    Some(i) => vec![i],
                    None => {
                        let names: Vec<String> =
                            m.resources.keys().map(|a| a.to_string()).collect();
                        let shown = addr.to_string();
                        let what = if addr.mode == flotilla_config::addr::ResourceMode::Data {
                            "data source"
                        } else {
                            "resource"
                        };
                        let d = undeclared(
                            what,
                            &shown,
                            names.iter().map(String::as_str).collect(),
                            format!(
                                "declare a `{}` block, or check the spelling",
                                if what == "resource" {
                                    format!("resource \"{}\" \"{}\"", addr.type_, addr.name)
                                } else {
                                    format!("data \"{}\" \"{}\"", addr.type_, addr.name)
                                }
                            ),
                        );
                        self.diags.push(d);
                        vec![]
                    }
                }
            }
            Subject::Module { call, output } => {
                let Some(call_node) = self.graph.find(&node(NodeKind::ModuleCall(call.clone())))
                else {
                    let d = match call.split_once('.') {
                        // A domain block: `cluster.beijing` names `cluster "beijing"`.
                        Some((kind, name)) => {
                            let same_kind: Vec<&str> = m
                                .module_calls
                                .keys()
                                .filter_map(|k| k.strip_prefix(kind)?.strip_prefix('.'))
                                .collect();
                            let mut d =
                                Diagnostic::error(format!("reference to undeclared {kind}"))
                                    .with_span(span.clone())
                                    .with_detail(format!(
                                        "no `{kind} \"{name}\"` block is declared in {}",
                                        module_name(&m.path)
                                    ));
                            d = match did_you_mean(name, same_kind) {
                                Some(s) => d.with_help(format!("did you mean `{kind}.{s}`?")),
                                None => d.with_help(format!(
                                    "declare it with `{kind} \"{name}\" {{ ... }}`"
                                )),
                            };
                            d
                        }
                        None => undeclared(
                            "module call",
                            call,
                            m.module_calls.keys().map(String::as_str).collect(),
                            format!("declare it with `module \"{call}\" {{ source = ... }}`"),
                        ),
                    };
                    self.diags.push(d);
                    return vec![];
                };
                let Some(child) = m.children.get(call) else {
                    return vec![call_node];
                };
                let outputs: Vec<String> = match output {
                    Some(o) if child.outputs.contains_key(o) => vec![o.clone()],
                    Some(o) => {
                        let mut d = Diagnostic::error("unsupported attribute")
                            .with_span(span.clone())
                            .with_detail(format!(
                                "{} has no output named `{o}`",
                                match call.split_once('.') {
                                    Some((kind, label)) => format!("`{kind} \"{label}\"`"),
                                    None => format!("module `{call}`"),
                                }
                            ));
                        d = match did_you_mean(o, child.outputs.keys().map(String::as_str)) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_help(format!(
                                "declare `output \"{o}\"` in {}",
                                child.dir.display()
                            )),
                        };
                        self.diags.push(d);
                        return vec![call_node];
                    }
                    None => child.outputs.keys().cloned().collect(),
                };
                let mut out = vec![call_node];
                for o in outputs {
                    out.extend(self.graph.find(&Node {
                        module: child.path.clone(),
                        kind: NodeKind::Output(o),
                    }));
                }
                out
            }
            Subject::CountIndex
            | Subject::EachKey
            | Subject::EachValue
            | Subject::Path(_)
            | Subject::SelfRef
            | Subject::Flotilla(_) => vec![],
        }
    }

    fn add_reference_edges(&mut self) {
        for m in self.root.all_modules() {
            let at = |g: &Graph, kind| {
                g.find(&Node {
                    module: m.path.clone(),
                    kind,
                })
                .expect("node added in add_nodes")
            };
            for (name, v) in &m.variables {
                let i = at(&self.graph, NodeKind::Variable(name.clone()));
                let exprs: Vec<&Expr> = v.default.iter().collect();
                self.refs_to(m, i, &exprs);
            }
            for (name, l) in &m.locals {
                let i = at(&self.graph, NodeKind::Local(name.clone()));
                self.refs_to(m, i, &[&l.expr]);
            }
            for (name, o) in &m.outputs {
                let i = at(&self.graph, NodeKind::Output(name.clone()));
                let mut exprs = vec![&o.value];
                exprs.extend(o.depends_on.iter());
                for c in &o.preconditions {
                    exprs.push(&c.condition);
                    exprs.push(&c.error_message);
                }
                self.refs_to(m, i, &exprs);
            }
            for (addr, r) in &m.resources {
                let i = at(&self.graph, NodeKind::Resource(addr.clone()));
                self.refs_to(m, i, &resource_exprs(r));
                self.check_meta_references(r);
            }
            for (name, c) in &m.module_calls {
                let i = at(&self.graph, NodeKind::ModuleCall(name.clone()));
                let mut exprs: Vec<&Expr> = c.count.iter().chain(c.for_each.iter()).collect();
                exprs.extend(c.depends_on.iter());
                self.refs_to(m, i, &exprs);
                // Arguments are evaluated in this module and feed the child's variables.
                if let Some(child) = m.children.get(name) {
                    for arg in &c.args {
                        match self.graph.find(&Node {
                            module: child.path.clone(),
                            kind: NodeKind::Variable(arg.name.clone()),
                        }) {
                            Some(v) => self.refs_to(m, v, &[&arg.expr]),
                            None => {
                                let mut d = Diagnostic::error("unsupported argument")
                                    .with_span(arg.span.clone())
                                    .with_detail(match name.split_once('.') {
                                        Some((kind, label)) => format!(
                                            "`{kind} \"{label}\"` has no argument `{}` (its module declares no such variable)",
                                            arg.name
                                        ),
                                        None => format!(
                                            "module `{name}` declares no variable named `{}`",
                                            arg.name
                                        ),
                                    });
                                d = match did_you_mean(
                                    &arg.name,
                                    child.variables.keys().map(String::as_str),
                                ) {
                                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                                    None => d.with_help(format!(
                                        "declare `variable \"{}\"` in {}",
                                        arg.name,
                                        child.dir.display()
                                    )),
                                };
                                self.diags.push(d);
                            }
                        }
                    }
                    for (vname, var) in &child.variables {
                        if var.default.is_none() && !c.args.iter().any(|a| &a.name == vname) {
                            self.diags.push(
                                Diagnostic::error("missing required argument")
                                    .with_span(c.span.clone())
                                    .with_detail(format!(
                                        "module `{name}` needs a value for its variable `{vname}`"
                                    ))
                                    .with_related(
                                        var.span.clone(),
                                        "declared here without a default",
                                    )
                                    .with_help(format!("add `{vname} = ...` to the module block")),
                            );
                        }
                    }
                }
            }
            for ((pname, alias), p) in &m.providers {
                let addr = ProviderConfigAddr {
                    module: m.path.clone(),
                    name: pname.clone(),
                    alias: alias.clone(),
                    key: Default::default(),
                };
                let i = at(&self.graph, NodeKind::Provider(addr));
                let mut exprs = body_exprs(&p.body);
                exprs.extend(p.for_each.iter());
                self.refs_to(m, i, &exprs);
            }
        }
    }

    /// `count.index` and `each.*` only make sense in resources that set `count` / `for_each`.
    fn check_meta_references(&mut self, r: &Resource) {
        for expr in body_exprs(&r.body) {
            for reference in references(expr).0 {
                let problem = match reference.subject {
                    Subject::CountIndex if r.count.is_none() => Some(("`count.index`", "count")),
                    Subject::EachKey | Subject::EachValue if r.for_each.is_none() => {
                        Some(("`each`", "for_each"))
                    }
                    _ => None,
                };
                if let Some((what, meta)) = problem {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "reference to {what} outside a `{meta}` resource"
                        ))
                        .with_span(reference.span)
                        .with_detail(format!("`{}` does not set `{meta}`", r.addr))
                        .with_help(format!(
                            "set `{meta}` on the resource, or remove the reference"
                        )),
                    );
                }
            }
        }
    }

    fn add_module_edges(&mut self) {
        let mut by_module: HashMap<ModulePath, Vec<NodeIndex>> = HashMap::new();
        for i in self.graph.inner.node_indices() {
            by_module
                .entry(self.graph.inner[i].module.clone())
                .or_default()
                .push(i);
        }
        for m in self.root.all_modules() {
            for name in m.module_calls.keys() {
                let call = self
                    .graph
                    .find(&Node {
                        module: m.path.clone(),
                        kind: NodeKind::ModuleCall(name.clone()),
                    })
                    .expect("call node");
                for &i in by_module.get(&m.path.child(name)).into_iter().flatten() {
                    self.graph.edge(call, i, None);
                }
            }
        }
    }

    fn add_provider_edges(&mut self) {
        for m in self.root.all_modules() {
            for (addr, r) in &m.resources {
                let to = self
                    .graph
                    .find(&Node {
                        module: m.path.clone(),
                        kind: NodeKind::Resource(addr.clone()),
                    })
                    .expect("resource node");
                match resolve_provider(self.root, &m.path, r) {
                    Ok(p) => {
                        let node = Node {
                            module: p.module.clone(),
                            kind: NodeKind::Provider(p),
                        };
                        let from = self.graph.add(node);
                        self.graph.edge(from, to, None);
                    }
                    Err(d) => self.diags.push(d),
                }
            }
        }
    }

    fn add_implied_edges(&mut self, implied: &[(Node, Node)]) {
        for (dependent, dependency) in implied {
            if let (Some(to), Some(from)) =
                (self.graph.find(dependent), self.graph.find(dependency))
            {
                self.graph.edge(from, to, None);
            }
        }
    }

    fn check_acyclic(&mut self) {
        match petgraph::algo::toposort(&self.graph.inner, None) {
            Ok(order) => self.graph.order = order,
            Err(_) => {
                let cycle = find_cycle(&self.graph.inner).unwrap_or_default();
                // `cycle` follows dependency edges (a is needed by b); report it as "refers to".
                let names: Vec<String> = cycle
                    .iter()
                    .rev()
                    .map(|&i| self.graph.inner[i].to_string())
                    .collect();
                let mut d = Diagnostic::error("dependency cycle")
                    .with_detail(format!("these objects refer to each other in a loop: {}", names.join(" -> ")))
                    .with_help("break the loop by removing one of the references, or move the shared value into a variable or local that depends on neither");
                for pair in cycle.windows(2) {
                    if let Some(e) = self.graph.inner.find_edge(pair[0], pair[1])
                        && let Some(span) = &self.graph.inner[e]
                    {
                        let label = format!(
                            "`{}` refers to `{}` here",
                            self.graph.inner[pair[1]], self.graph.inner[pair[0]]
                        );
                        if d.span.is_none() {
                            d = d.with_span(span.clone()).with_label(label);
                        } else {
                            d = d.with_related(span.clone(), label);
                        }
                    }
                }
                self.diags.push(d);
            }
        }
    }
}

fn module_name(path: &ModulePath) -> String {
    if path.is_root() {
        "the root module".into()
    } else {
        format!("`{path}`")
    }
}

/// The provider configuration a resource uses: its `provider` argument or its type's prefix,
/// looked up in its module, then through `providers` maps and inherited from the parents.
pub fn resolve_provider(
    root: &Module,
    module: &ModulePath,
    r: &Resource,
) -> Result<ProviderConfigAddr, Diagnostic> {
    let (mut name, mut alias, span) = match &r.provider {
        Some(ProviderRef {
            name, alias, span, ..
        }) => (name.clone(), alias.clone(), span.clone()),
        None => (r.addr.implied_provider().to_string(), None, r.span.clone()),
    };
    let mut path = module.clone();
    loop {
        let m = root.descendant(&path).expect("module path exists");
        if m.providers.contains_key(&(name.clone(), alias.clone())) {
            return Ok(ProviderConfigAddr {
                module: path,
                name,
                alias,
                key: Default::default(),
            });
        }
        let Some(parent) = path.parent() else { break };
        let call_name = path.0.last().expect("non-root path").clone();
        let call = &root
            .descendant(&parent)
            .expect("parent exists")
            .module_calls[&call_name];
        if alias.is_none()
            && let Some((_, mapped)) = call.providers.iter().find(|(k, _)| *k == name)
        {
            name = mapped.name.clone();
            alias = mapped.alias.clone();
        }
        path = parent;
    }
    match alias {
        None => Ok(ProviderConfigAddr::root(name)),
        Some(a) => Err(Diagnostic::error("provider configuration not found")
            .with_span(span)
            .with_detail(format!(
                "no `provider \"{name}\"` block has `alias = \"{a}\"`"
            ))
            .with_help(format!(
                "add `provider \"{name}\" {{ alias = \"{a}\" ... }}` to the root module"
            ))),
    }
}

/// A cycle as a node path `[a, b, ..., a]` following edge direction, found iteratively.
fn find_cycle<N, E>(g: &petgraph::graph::DiGraph<N, E>) -> Option<Vec<NodeIndex>> {
    for scc in petgraph::algo::kosaraju_scc(g) {
        let start = *scc.iter().min()?;
        if scc.len() == 1 {
            if g.contains_edge(start, start) {
                return Some(vec![start, start]);
            }
            continue;
        }
        let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
        let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(u) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = g.neighbors(u).filter(|v| members.contains(v)).collect();
            next.sort();
            for v in next {
                if v == start {
                    let mut path = vec![start];
                    let mut c = u;
                    while c != start {
                        path.push(c);
                        c = prev[&c];
                    }
                    path.push(start);
                    path.reverse();
                    return Some(path);
                }
                if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(v) {
                    e.insert(u);
                    queue.push_back(v);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_syntax::SourceMap;

    fn load(files: &[(&str, &str)]) -> Module {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let mut sources = SourceMap::new();
        let (m, d) = flotilla_config::load_dir(dir.path(), &mut sources);
        assert!(d.is_empty(), "{d:?}");
        m.unwrap()
    }

    #[test]
    fn orders_dependencies_first() {
        let m = load(&[(
            "main.hcl",
            r#"
variable "v" { default = 1 }
locals { l = var.v + 1 }
resource "builtin_data" "b" { input = builtin_data.a.output }
resource "builtin_data" "a" { input = local.l }
output "o" { value = builtin_data.b.output }
"#,
        )]);
        let (g, d) = build(&m);
        assert!(d.is_empty(), "{d:?}");
        let names: Vec<String> = g.order.iter().map(|&i| g.node(i).to_string()).collect();
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("var.v") < pos("local.l"));
        assert!(pos("local.l") < pos("builtin_data.a"));
        assert!(pos("builtin_data.a") < pos("builtin_data.b"));
        assert!(pos("builtin_data.b") < pos("output.o"));
        assert!(pos("provider.builtin") < pos("builtin_data.a"));
    }

    #[test]
    fn reports_cycle_with_every_reference() {
        let m = load(&[(
            "main.hcl",
            r#"
resource "builtin_data" "a" { input = builtin_data.c.output }
resource "builtin_data" "b" { input = builtin_data.a.output }
resource "builtin_data" "c" { input = builtin_data.b.output }
"#,
        )]);
        let (_, d) = build(&m);
        assert_eq!(d.len(), 1);
        let cycle = &d.0[0];
        assert_eq!(cycle.summary, "dependency cycle");
        assert!(
            cycle
                .detail
                .as_ref()
                .unwrap()
                .contains("builtin_data.a -> builtin_data.c -> builtin_data.b -> builtin_data.a"),
            "{:?}",
            cycle.detail
        );
        assert!(cycle.span.is_some());
        assert_eq!(cycle.related.len(), 2);
    }

    #[test]
    fn undeclared_references_suggest_names() {
        let m = load(&[(
            "main.hcl",
            r#"
variable "region" {}
resource "builtin_data" "a" { input = var.regoin }
resource "builtin_data" "b" { input = builtin_data.aa.output }
"#,
        )]);
        let (_, d) = build(&m);
        let helps: Vec<_> = d.iter().map(|d| d.help.clone().unwrap()).collect();
        assert_eq!(
            helps,
            ["did you mean `region`?", "did you mean `builtin_data.a`?"]
        );
    }

    #[test]
    fn module_internals_follow_the_call() {
        let m = load(&[
            (
                "main.hcl",
                "module \"m\" {\n  source = \"./m\"\n  x = 1\n}\noutput \"o\" { value = module.m.y }\n",
            ),
            (
                "m/main.hcl",
                "variable \"x\" {}\nresource \"builtin_data\" \"r\" { input = var.x }\noutput \"y\" { value = builtin_data.r.output }\n",
            ),
        ]);
        let (g, d) = build(&m);
        assert!(d.is_empty(), "{d:?}");
        let names: Vec<String> = g.order.iter().map(|&i| g.node(i).to_string()).collect();
        let pos = |n: &str| {
            names
                .iter()
                .position(|x| x == n)
                .unwrap_or_else(|| panic!("{n} in {names:?}"))
        };
        assert!(pos("module.m") < pos("module.m.var.x"));
        assert!(pos("module.m.builtin_data.r") < pos("module.m.output.y"));
        assert!(pos("module.m.output.y") < pos("output.o"));
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let mut text = String::from("resource \"builtin_data\" \"r0\" { input = 0 }\n");
        for i in 1..20_000 {
            text.push_str(&format!(
                "resource \"builtin_data\" \"r{i}\" {{ input = builtin_data.r{}.output }}\n",
                i - 1
            ));
        }
        text.push_str("resource \"builtin_data\" \"loop\" { input = builtin_data.loop2.output }\nresource \"builtin_data\" \"loop2\" { input = builtin_data.loop.output }\n");
        let m = load(&[("main.hcl", &text)]);
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || build(&m).1.len())
            .unwrap();
        assert_eq!(handle.join().unwrap(), 1);
    }
}
