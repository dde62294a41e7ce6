//! DOT and Mermaid renderings of the graph (`flotilla graph`).

use std::fmt::Write;

use crate::{Graph, NodeKind};

/// Output formats for pictures of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart (renders on GitHub).
    Mermaid,
}

fn shown(g: &Graph, include_all: bool) -> Vec<petgraph::graph::NodeIndex> {
    let mut nodes: Vec<_> = g
        .order
        .iter()
        .copied()
        .filter(|&i| {
            include_all
                || matches!(
                    g.node(i).kind,
                    NodeKind::Resource(_) | NodeKind::ModuleCall(_)
                )
        })
        .collect();
    nodes.sort_by_key(|&i| g.node(i).to_string());
    nodes
}

/// Renders resources and module calls (or every node with `include_all`), and the
/// dependencies between them, with intermediate nodes (locals, variables) collapsed.
pub fn render(g: &Graph, format: Format, include_all: bool) -> String {
    let nodes = shown(g, include_all);
    let set: std::collections::HashSet<_> = nodes.iter().copied().collect();
    let mut edges: Vec<(String, String)> = Vec::new();
    for &to in &nodes {
        // Follow dependencies through hidden nodes to the nearest shown ones.
        let mut stack: Vec<_> = g.dependencies(to).collect();
        let mut seen = std::collections::HashSet::new();
        while let Some(from) = stack.pop() {
            if !seen.insert(from) {
                continue;
            }
            if set.contains(&from) {
                edges.push((g.node(from).to_string(), g.node(to).to_string()));
            } else {
                stack.extend(g.dependencies(from));
            }
        }
    }
    edges.sort();
    edges.dedup();
    let mut out = String::new();
    let names: Vec<String> = nodes.iter().map(|&i| g.node(i).to_string()).collect();
    match format {
        Format::Dot => {
            out.push_str("digraph flotilla {\n  rankdir = \"LR\";\n  node [shape = box];\n");
            for n in &names {
                writeln!(out, "  \"{n}\";").unwrap();
            }
            for (a, b) in &edges {
                writeln!(out, "  \"{a}\" -> \"{b}\";").unwrap();
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            let id = |n: &str| {
                names
                    .iter()
                    .position(|x| x == n)
                    .map(|i| format!("n{i}"))
                    .unwrap_or_default()
            };
            for (i, n) in names.iter().enumerate() {
                writeln!(out, "  n{i}[\"{}\"]", n.replace('"', "#quot;")).unwrap();
            }
            for (a, b) in &edges {
                writeln!(out, "  {} --> {}", id(a), id(b)).unwrap();
            }
        }
    }
    out
}
