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

/// Mermaid class definitions for nodes coloured by planned action (`:::create`, ...).
pub const MERMAID_CLASSES: &str = "  classDef create fill:#d7f5dd,stroke:#1a7f37\n  classDef update fill:#fff3c4,stroke:#9a6700\n  classDef replace fill:#ffe0c2,stroke:#bc4c00\n  classDef destroy fill:#ffd7d5,stroke:#cf222e\n  classDef read fill:#ddf4ff,stroke:#0969da\n  classDef unchanged fill:#f6f8fa,stroke:#8c959f\n";

/// DOT fill colours for the same classes.
fn dot_fill(class: &str) -> &'static str {
    match class {
        "create" => "#d7f5dd",
        "update" => "#fff3c4",
        "replace" => "#ffe0c2",
        "destroy" => "#ffd7d5",
        "read" => "#ddf4ff",
        _ => "#f6f8fa",
    }
}

/// The domain block a node belongs to: the block's own call, or anything inside it.
fn block_of(n: &crate::Node) -> Option<String> {
    if let Some(first) = n.module.0.first() {
        return first.contains('.').then(|| first.clone());
    }
    match &n.kind {
        NodeKind::ModuleCall(name) if name.contains('.') => Some(name.clone()),
        _ => None,
    }
}

/// Renders resources and module calls (or every node with `include_all`), and the
/// dependencies between them, with intermediate nodes (locals, variables) collapsed.
pub fn render(g: &Graph, format: Format, include_all: bool) -> String {
    render_classed(g, format, include_all, &|_| None)
}

/// Like [`render`], with each node given a class by `class_of` (the planned action, for
/// `flotilla graph -plan`): Mermaid `:::class` with [`MERMAID_CLASSES`], DOT fill colours.
pub fn render_classed(
    g: &Graph,
    format: Format,
    include_all: bool,
    class_of: &dyn Fn(&crate::Node) -> Option<&'static str>,
) -> String {
    let nodes = shown(g, include_all);
    let classes: Vec<Option<&'static str>> = nodes.iter().map(|&i| class_of(g.node(i))).collect();
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
    // Domain blocks are drawn as clusters of their objects: the block's own node and
    // everything in the module it calls.
    let blocks: Vec<Option<String>> = nodes.iter().map(|&i| block_of(g.node(i))).collect();
    let mut block_names: Vec<&String> = blocks.iter().flatten().collect();
    block_names.sort();
    block_names.dedup();
    match format {
        Format::Dot => {
            out.push_str("digraph flotilla {\n  rankdir = \"LR\";\n  node [shape = box];\n");
            let node_line =
                |out: &mut String, indent: &str, n: &str, class: &Option<&str>| match class {
                    Some(c) => writeln!(
                        out,
                        "{indent}\"{n}\" [style = filled, fillcolor = \"{}\", tooltip = \"{c}\"];",
                        dot_fill(c)
                    )
                    .unwrap(),
                    None => writeln!(out, "{indent}\"{n}\";").unwrap(),
                };
            for (bi, b) in block_names.iter().enumerate() {
                writeln!(
                    out,
                    "  subgraph \"cluster_{bi}\" {{\n    label = \"{b}\";\n    style = rounded;"
                )
                .unwrap();
                for ((n, class), nb) in names.iter().zip(&classes).zip(&blocks) {
                    if nb.as_ref() == Some(*b) {
                        node_line(&mut out, "    ", n, class);
                    }
                }
                out.push_str("  }\n");
            }
            for ((n, class), nb) in names.iter().zip(&classes).zip(&blocks) {
                if nb.is_none() {
                    node_line(&mut out, "  ", n, class);
                }
            }
            for (a, b) in &edges {
                writeln!(out, "  \"{a}\" -> \"{b}\";").unwrap();
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            let ids: std::collections::HashMap<&str, usize> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect();
            let node_line = |out: &mut String, indent: &str, i: usize| {
                let class = classes[i].map(|c| format!(":::{c}")).unwrap_or_default();
                writeln!(
                    out,
                    "{indent}n{i}[\"{}\"]{class}",
                    names[i].replace('"', "#quot;")
                )
                .unwrap();
            };
            for (bi, b) in block_names.iter().enumerate() {
                writeln!(out, "  subgraph b{bi}[\"{b}\"]").unwrap();
                for i in (0..names.len()).filter(|&i| blocks[i].as_ref() == Some(*b)) {
                    node_line(&mut out, "    ", i);
                }
                out.push_str("  end\n");
            }
            for i in (0..names.len()).filter(|&i| blocks[i].is_none()) {
                node_line(&mut out, "  ", i);
            }
            for (a, b) in &edges {
                writeln!(out, "  n{} --> n{}", ids[a.as_str()], ids[b.as_str()]).unwrap();
            }
            if classes.iter().any(Option::is_some) {
                out.push_str(MERMAID_CLASSES);
            }
        }
    }
    out
}
