//! The dependency graph: one node per configuration object (not per instance), edges from
//! what is needed to what needs it.
//!
//! [`build`] runs a short list of named steps over a loaded [`Module`] tree:
//!
//! 1. `add_nodes` — variables, locals, outputs, resources, module calls and provider
//!    configurations of every module (plus implied default provider configurations);
//! 2. `add_reference_edges` — every reference in every expression, resolved in its module,
//!    with did-you-mean diagnostics for undeclared names;
//! 3. `add_module_edges` — a module call comes before everything inside the module;
//! 4. `add_provider_edges` — a provider configuration comes before its resources;
//! 5. `check_acyclic` — a cycle is reported with its whole path and the span of each reference.
//!
//! Instances (`count`, `for_each`) are expanded while walking, not here, so a resource with
//! 100,000 instances is one node. [`walk`] runs a visitor over the graph with bounded
//! parallelism; [`export`] renders DOT or Mermaid.
//!
//! **Invariant:** nothing here is recursive over graph size; cycle detection and walks are
//! iterative so 100,000-node graphs cannot overflow the stack.

mod build;
pub mod export;
mod walk;

use std::collections::HashMap;
use std::fmt;

use flotilla_config::addr::{ModulePath, ProviderConfigAddr, ResourceAddr};
use flotilla_syntax::Span;
use petgraph::graph::{DiGraph, NodeIndex};

pub use build::{build, build_with, resolve_provider};
pub use petgraph::graph::NodeIndex as NodeId;
pub use walk::{Dag, OpGraph, WalkOutcome, walk};

/// What a node stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// `variable "NAME"`
    Variable(String),
    /// `locals { NAME = ... }`
    Local(String),
    /// `output "NAME"`
    Output(String),
    /// `resource` or `data`
    Resource(ResourceAddr),
    /// `module "NAME"`: evaluates `count`/`for_each`; everything inside comes after it.
    ModuleCall(String),
    /// A provider configuration.
    Provider(ProviderConfigAddr),
}

/// One configuration object in one (static) module.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// The module that declares it.
    pub module: ModulePath,
    /// What it is.
    pub kind: NodeKind,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let NodeKind::Provider(p) = &self.kind {
            return write!(f, "{p}");
        }
        if !self.module.is_root() {
            write!(f, "{}.", self.module)?;
        }
        match &self.kind {
            NodeKind::Variable(n) => write!(f, "var.{n}"),
            NodeKind::Local(n) => write!(f, "local.{n}"),
            NodeKind::Output(n) => write!(f, "output.{n}"),
            NodeKind::Resource(r) => write!(f, "{r}"),
            NodeKind::ModuleCall(n) => write!(f, "{}", flotilla_config::call_address(n)),
            NodeKind::Provider(_) => unreachable!("handled above"),
        }
    }
}

/// The dependency graph of a configuration.
#[derive(Debug, Default)]
pub struct Graph {
    /// Nodes and edges; an edge `a -> b` means `b` needs `a`. The weight is where `b`
    /// references `a`, when the edge comes from a reference.
    pub inner: DiGraph<Node, Option<Span>>,
    index: HashMap<Node, NodeIndex>,
    /// Edges by their ends: petgraph finds an edge by scanning a node's edges, which is
    /// quadratic for a node everything depends on (a provider, a shared variable).
    edges: HashMap<(NodeIndex, NodeIndex), petgraph::graph::EdgeIndex>,
    /// Nodes in dependency order (every node after everything it needs).
    pub order: Vec<NodeIndex>,
}

impl Graph {
    /// The index of a node, if present.
    pub fn find(&self, node: &Node) -> Option<NodeIndex> {
        self.index.get(node).copied()
    }

    /// The node at an index.
    pub fn node(&self, id: NodeIndex) -> &Node {
        &self.inner[id]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.inner.node_count()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.inner.node_count() == 0
    }

    /// The nodes this node needs.
    pub fn dependencies(&self, id: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.inner
            .neighbors_directed(id, petgraph::Direction::Incoming)
    }

    /// The nodes that need this node.
    pub fn dependents(&self, id: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.inner
            .neighbors_directed(id, petgraph::Direction::Outgoing)
    }

    /// Every node `roots` need, directly or not, plus the roots themselves.
    pub fn closure(
        &self,
        roots: impl IntoIterator<Item = NodeIndex>,
    ) -> std::collections::HashSet<NodeIndex> {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<NodeIndex> = roots.into_iter().collect();
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(self.dependencies(n));
            }
        }
        seen
    }

    fn add(&mut self, node: Node) -> NodeIndex {
        if let Some(&i) = self.index.get(&node) {
            return i;
        }
        let i = self.inner.add_node(node.clone());
        self.index.insert(node, i);
        i
    }

    pub(crate) fn edge(&mut self, from: NodeIndex, to: NodeIndex, span: Option<Span>) {
        if from == to && span.is_none() {
            return;
        }
        match self.edges.get(&(from, to)) {
            Some(&e) => self.inner[e] = span,
            None => {
                let e = self.inner.add_edge(from, to, span);
                self.edges.insert((from, to), e);
            }
        }
    }
}
