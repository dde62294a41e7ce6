//! The execution graph: the operations a plan's apply runs and the order between them,
//! made with the plan (and saved in the plan file), so apply runs exactly what was planned.
//!
//! It is the configuration graph with each resource that has planned instances split into
//! an opening (its `count`/`for_each` at apply), one operation per planned instance, and a
//! closing (the resource's value from all instances); a resource with one planned instance
//! is one operation. Other configuration nodes (variables, locals, outputs, module calls,
//! providers) are evaluated as in planning, so deferred provider configurations are
//! configured once their values exist.
//!
//! Deletions are operations of the same graph: an object is deleted after everything that
//! depended on it when it was recorded (the instances still configured are updated first,
//! those also going are deleted first) and after its provider's configuration; a failed
//! deletion keeps what it depended on. A create-before-destroy replacement is a pair: the new
//! object is made by the instance's operation, the old one deleted by a second operation
//! once everything that depends on the resource has moved to the new one.
//!
//! Rollouts add gates ([`GateOp`]) between their members' operations: per wave that has
//! something to do a `WaveStart` (approval, cursor) and `WaveEnd` (soak), per moving member
//! a `MemberStart` and a `MemberGate` around its operations, each member after the gate
//! `max_concurrency` places before it. Resources a rollout moves are ordered per member,
//! not as wholes (the canary of `bj-1` after the Deployment of `bj-1`), since later waves'
//! Deployments wait for the gates of earlier ones.

use std::collections::{HashMap, HashSet};

use flotilla_config::addr::{InstanceKey, ResourceInstanceAddr};
use flotilla_graph::{Graph, Node, NodeId, NodeKind, OpGraph};
use flotilla_syntax::Diagnostic;

use crate::model::{Action, PlanMode, ResourceChange};
use crate::rollout::RolloutPlan;

/// One operation of the execution graph. Configuration nodes are the configuration
/// graph's indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOp {
    /// A configuration node evaluated as in planning: variables, locals, outputs, module
    /// calls, providers, and resources with nothing planned.
    Node(NodeId),
    /// A resource with exactly one planned instance (by index into the plan's changes):
    /// open, apply it and close in one operation (most resources; three operations each
    /// made a 100,000-resource apply 30% slower).
    Only(NodeId, u32),
    /// Before a resource's instances: its `count`/`for_each` in each module instance.
    Open(NodeId),
    /// One planned instance (by index into the plan's changes): evaluated with the values
    /// now known, planned again, executed.
    Instance(NodeId, u32),
    /// After every instance: the resource's value, for what references it.
    Close(NodeId),
    /// Deletes an instance (no longer configured, or every one for destroy), by index into
    /// the plan's changes.
    Delete(u32),
    /// Deletes the object a create-before-destroy replacement replaced.
    DeleteDeposed(u32),
    /// Deletes an old object an interrupted replacement left (by index into the plan's
    /// `deposed`).
    DeleteLeftover(u32),
    /// A rollout's gate.
    Gate(GateOp),
}

/// A rollout's gate (indexes into the plan's rollouts, a rollout's waves, and a wave's
/// members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOp {
    /// Before a wave: approval, cursor.
    WaveStart(usize, usize),
    /// Before a member's operations: its previous objects and its gate's baseline.
    MemberStart(usize, usize, usize),
    /// After them: its health gate.
    MemberGate(usize, usize, usize),
    /// After every member of the wave: the soak.
    WaveEnd(usize, usize),
    /// After the last wave.
    End(usize),
}

/// The execution graph of a plan.
#[derive(Debug, Clone, Default)]
pub struct Execution {
    /// The operations, sealed (ordered).
    pub ops: OpGraph<ExecOp>,
    /// Resources (configuration nodes) a rollout moves: apply republishes their value after
    /// each instance.
    pub managed: HashSet<NodeId>,
    /// Read from a plan file and not yet resolved against the configuration graph: the
    /// configuration nodes the operations name, by index into this list.
    names: Option<Vec<String>>,
}

impl PartialEq for Execution {
    fn eq(&self, other: &Execution) -> bool {
        let edges = |e: &Execution| -> Vec<(usize, usize)> {
            e.ops
                .inner
                .raw_edges()
                .iter()
                .map(|x| (x.source().index(), x.target().index()))
                .collect()
        };
        self.names == other.names
            && self.managed == other.managed
            && self
                .ops
                .inner
                .node_weights()
                .eq(other.ops.inner.node_weights())
            && edges(self) == edges(other)
    }
}

impl Execution {
    /// Whether it has no operation (a plan made without one, e.g. edited by `import`).
    pub fn is_empty(&self) -> bool {
        self.ops.inner.node_count() == 0
    }

    /// Maps the node names a plan file gave back to the configuration graph, and checks the
    /// changes it names exist (the plan has `changes` of them); what is missing is the error.
    pub fn resolve(&mut self, graph: &Graph, changes: usize, deposed: usize) -> Result<(), String> {
        let Some(names) = self.names.take() else {
            return Ok(());
        };
        for op in self.ops.inner.node_weights() {
            if let ExecOp::Only(_, c)
            | ExecOp::Instance(_, c)
            | ExecOp::Delete(c)
            | ExecOp::DeleteDeposed(c) = op
                && *c as usize >= changes
            {
                return Err(format!("change {c} of {changes}"));
            }
            if let ExecOp::DeleteLeftover(c) = op
                && *c as usize >= deposed
            {
                return Err(format!("deposed object {c} of {deposed}"));
            }
        }
        let by_name: HashMap<String, NodeId> = graph
            .inner
            .node_indices()
            .map(|i| (graph.node(i).to_string(), i))
            .collect();
        let ids = names
            .iter()
            .map(|n| by_name.get(n).copied().ok_or_else(|| n.clone()))
            .collect::<Result<Vec<NodeId>, String>>()?;
        let map = |n: &mut NodeId| *n = ids[n.index()];
        for op in self.ops.inner.node_weights_mut() {
            match op {
                ExecOp::Node(n) | ExecOp::Only(n, _) | ExecOp::Open(n) | ExecOp::Close(n) => map(n),
                ExecOp::Instance(n, _) => map(n),
                ExecOp::Delete(_)
                | ExecOp::DeleteDeposed(_)
                | ExecOp::DeleteLeftover(_)
                | ExecOp::Gate(_) => {}
            }
        }
        self.managed = self.managed.iter().map(|n| ids[n.index()]).collect();
        Ok(())
    }

    /// The form a plan file stores: configuration nodes by name.
    pub fn saved(&self, graph: &Graph) -> SavedExecution {
        let mut nodes: Vec<String> = Vec::new();
        let mut index: HashMap<NodeId, u32> = HashMap::new();
        let mut name = |n: NodeId| -> u32 {
            *index.entry(n).or_insert_with(|| {
                nodes.push(graph.node(n).to_string());
                (nodes.len() - 1) as u32
            })
        };
        let ops = self
            .ops
            .inner
            .node_weights()
            .map(|op| match op {
                ExecOp::Node(n) => SavedOp::Node(name(*n)),
                ExecOp::Only(n, c) => SavedOp::Only(name(*n), *c),
                ExecOp::Open(n) => SavedOp::Open(name(*n)),
                ExecOp::Instance(n, c) => SavedOp::Instance(name(*n), *c),
                ExecOp::Close(n) => SavedOp::Close(name(*n)),
                ExecOp::Delete(c) => SavedOp::Delete(*c),
                ExecOp::DeleteDeposed(c) => SavedOp::DeleteDeposed(*c),
                ExecOp::DeleteLeftover(c) => SavedOp::DeleteLeftover(*c),
                ExecOp::Gate(g) => SavedOp::Gate(*g),
            })
            .collect();
        let mut managed: Vec<u32> = self.managed.iter().map(|n| name(*n)).collect();
        managed.sort_unstable();
        SavedExecution {
            nodes,
            ops,
            edges: self
                .ops
                .inner
                .raw_edges()
                .iter()
                .map(|e| (e.source().index() as u32, e.target().index() as u32))
                .collect(),
            managed,
        }
    }

    /// Reads the form a plan file stores; [`Execution::resolve`] then names the nodes.
    pub fn from_saved(saved: SavedExecution) -> Result<Execution, String> {
        let mut ops = OpGraph::default();
        let count = saved.nodes.len() as u32;
        let node = |n: u32| -> Result<NodeId, String> {
            if n < count {
                Ok(NodeId::new(n as usize))
            } else {
                Err(format!("operation names node {n} of {count}"))
            }
        };
        for op in saved.ops {
            ops.add(match op {
                SavedOp::Node(n) => ExecOp::Node(node(n)?),
                SavedOp::Only(n, c) => ExecOp::Only(node(n)?, c),
                SavedOp::Open(n) => ExecOp::Open(node(n)?),
                SavedOp::Instance(n, c) => ExecOp::Instance(node(n)?, c),
                SavedOp::Close(n) => ExecOp::Close(node(n)?),
                SavedOp::Delete(c) => ExecOp::Delete(c),
                SavedOp::DeleteDeposed(c) => ExecOp::DeleteDeposed(c),
                SavedOp::DeleteLeftover(c) => ExecOp::DeleteLeftover(c),
                SavedOp::Gate(g) => ExecOp::Gate(g),
            });
        }
        let total = ops.inner.node_count() as u32;
        for (a, b) in saved.edges {
            if a >= total || b >= total {
                return Err(format!("an edge names operation {} of {total}", a.max(b)));
            }
            ops.edge(NodeId::new(a as usize), NodeId::new(b as usize));
        }
        ops.seal()
            .map_err(|_| "its operations form a cycle".to_string())?;
        Ok(Execution {
            ops,
            managed: saved
                .managed
                .into_iter()
                .map(node)
                .collect::<Result<_, _>>()?,
            names: Some(saved.nodes),
        })
    }
}

/// An execution graph as a plan file stores it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedExecution {
    /// The configuration nodes the operations name (their display names).
    pub nodes: Vec<String>,
    /// The operations.
    pub ops: Vec<SavedOp>,
    /// `(before, after)` pairs of operation indexes.
    pub edges: Vec<(u32, u32)>,
    /// Resources rollouts move, as indexes into `nodes`.
    pub managed: Vec<u32>,
}

/// [`ExecOp`] with its node as an index into [`SavedExecution::nodes`] (changes are indexes
/// into the plan's changes, as in memory).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SavedOp {
    Node(u32),
    Only(u32, u32),
    Open(u32),
    Instance(u32, u32),
    Close(u32),
    Delete(u32),
    DeleteDeposed(u32),
    DeleteLeftover(u32),
    Gate(GateOp),
}

/// Which rollout (index) and member each planned instance a rollout moves belongs to.
pub fn member_instances<'a>(
    rollouts: &[RolloutPlan],
    changes: impl Iterator<Item = &'a ResourceInstanceAddr>,
) -> HashMap<ResourceInstanceAddr, (usize, String)> {
    let mut out = HashMap::new();
    if rollouts.is_empty() {
        return out;
    }
    for addr in changes {
        for (i, r) in rollouts.iter().enumerate() {
            if let Some(m) = r.member_of(addr)
                && r.find(m).is_some_and(|(_, p)| p.moves())
            {
                out.insert(addr.clone(), (i, m.to_string()));
            }
        }
    }
    out
}

/// Whether a rollout has gates in the execution graph: it moves members (a held one too:
/// its one gate refuses them) or completes an unfinished record.
pub fn has_gates(r: &RolloutPlan) -> bool {
    r.moves() || r.runs()
}

/// Makes the plan's execution graph unless it has one (the planner makes it only when a
/// rollout moves; a plan is given its graph when it is saved or applied).
pub fn ensure(plan: &mut crate::Plan, graph: &Graph) -> Result<(), Diagnostic> {
    if plan.execution.is_empty() {
        let mut e = build(
            graph,
            &plan.changes,
            plan.mode,
            !plan.targets.is_empty(),
            &plan.rollouts,
            &plan.prior_state,
        )?;
        add_leftovers(graph, &plan.deposed, &mut e)?;
        plan.execution = e;
    }
    Ok(())
}

/// The deletions of old objects interrupted replacements left: each after its provider's
/// configuration (the graph is sealed again).
fn add_leftovers(
    graph: &Graph,
    deposed: &[ResourceChange],
    e: &mut Execution,
) -> Result<(), Diagnostic> {
    if deposed.is_empty() {
        return Ok(());
    }
    let providers: HashMap<NodeId, NodeId> = e
        .ops
        .inner
        .node_indices()
        .filter_map(|n| match e.ops.op(n) {
            ExecOp::Node(id) => Some((*id, n)),
            _ => None,
        })
        .collect();
    for (i, c) in deposed.iter().enumerate() {
        let op = e.ops.add(ExecOp::DeleteLeftover(i as u32));
        if let Some(&p) = provider_node(graph, c).and_then(|p| providers.get(&p)) {
            e.ops.edge(p, op);
        }
    }
    e.ops
        .seal()
        .map_err(|_| Diagnostic::error("the execution graph has a cycle"))
}

/// The configuration node of a change's provider configuration.
fn provider_node(graph: &Graph, c: &ResourceChange) -> Option<NodeId> {
    let mut p = c.provider.clone();
    p.key = InstanceKey::None;
    graph.find(&Node {
        module: p.module.clone(),
        kind: NodeKind::Provider(p),
    })
}

/// The execution graph for a plan's changes.
pub fn build(
    graph: &Graph,
    changes: &[ResourceChange],
    mode: PlanMode,
    targeting: bool,
    rollouts: &[RolloutPlan],
    prior: &flotilla_state::State,
) -> Result<Execution, Diagnostic> {
    let members = member_instances(
        rollouts,
        changes
            .iter()
            .filter(|c| c.action != Action::Delete)
            .map(|c| &c.addr),
    );
    let node_of = |addr: &ResourceInstanceAddr| {
        graph.find(&Node {
            module: addr.module.path(),
            kind: NodeKind::Resource(addr.resource.clone()),
        })
    };
    // With -target, only what the targeted changes need.
    let subset = targeting.then(|| {
        graph.closure(
            changes
                .iter()
                .filter(|c| c.action != Action::Delete)
                .filter_map(|c| node_of(&c.addr)),
        )
    });
    // Each resource's planned instances, as indexes into `changes` (sorted by address).
    let mut planned: HashMap<NodeId, Vec<u32>> = HashMap::new();
    let mut managed = HashSet::new();
    if mode != PlanMode::Destroy {
        for (i, c) in changes.iter().enumerate() {
            if c.action == Action::Delete {
                continue;
            }
            if let Some(id) = node_of(&c.addr) {
                planned.entry(id).or_default().push(i as u32);
                if members.contains_key(&c.addr) {
                    managed.insert(id);
                }
            }
        }
    }
    let mut ops = OpGraph::default();
    // Each configuration node's first and last operation, by node index.
    let mut ends: Vec<Option<(NodeId, NodeId)>> = vec![None; graph.inner.node_count()];
    // The operation of each planned instance, when deletions or replacements need it.
    let indexed = changes
        .iter()
        .any(|c| matches!(c.action, Action::Delete | Action::CreateThenDelete));
    let mut instance_op: HashMap<u32, NodeId> = HashMap::new();
    // Per resource a rollout moves, its instances' operations.
    let mut managed_ops: HashMap<NodeId, Vec<(&ResourceInstanceAddr, NodeId)>> = HashMap::new();
    for &id in &graph.order {
        if subset.as_ref().is_some_and(|s| !s.contains(&id)) {
            continue;
        }
        match planned.get_mut(&id) {
            Some(list) if list.len() == 1 && !managed.contains(&id) => {
                let n = ops.add(ExecOp::Only(id, list[0]));
                if indexed {
                    instance_op.insert(list[0], n);
                }
                ends[id.index()] = Some((n, n));
            }
            Some(list) => {
                let open = ops.add(ExecOp::Open(id));
                let instances: Vec<NodeId> = list
                    .iter()
                    .map(|&i| ops.add(ExecOp::Instance(id, i)))
                    .collect();
                let close = ops.add(ExecOp::Close(id));
                for (&i, &n) in list.iter().zip(&instances) {
                    ops.edge(open, n);
                    ops.edge(n, close);
                    if indexed {
                        instance_op.insert(i, n);
                    }
                }
                ops.edge(open, close);
                if managed.contains(&id) {
                    managed_ops.insert(
                        id,
                        list.iter()
                            .map(|&i| &changes[i as usize].addr)
                            .zip(instances)
                            .collect(),
                    );
                }
                ends[id.index()] = Some((open, close));
            }
            None => {
                let n = ops.add(ExecOp::Node(id));
                ends[id.index()] = Some((n, n));
            }
        }
        // Everything this node needs was added before it, in dependency order.
        let (first, _) = ends[id.index()].expect("just added");
        for dep in graph.dependencies(id) {
            let Some((dep_first, last)) = ends[dep.index()] else {
                continue;
            };
            if managed.contains(&id) && managed.contains(&dep) {
                ops.edge(dep_first, first);
                for (addr, n) in managed_ops.get(&id).into_iter().flatten() {
                    let Some(member) = members.get(*addr) else {
                        continue;
                    };
                    for (other, m) in managed_ops.get(&dep).into_iter().flatten() {
                        if members.get(*other) == Some(member) {
                            ops.edge(*m, *n);
                        }
                    }
                }
            } else {
                ops.edge(last, first);
            }
        }
    }
    let mut ordered = true;
    // Create-before-destroy: the old object goes once what depends on the resource moved.
    for (i, c) in changes.iter().enumerate() {
        if c.action != Action::CreateThenDelete || mode == PlanMode::Destroy {
            continue;
        }
        let (Some(&create), Some(id)) = (instance_op.get(&(i as u32)), node_of(&c.addr)) else {
            continue;
        };
        let old = ops.add(ExecOp::DeleteDeposed(i as u32));
        ordered = false;
        ops.edge(create, old);
        for d in graph.dependents(id) {
            if let Some((_, last)) = ends[d.index()] {
                ops.edge(last, old);
            }
        }
    }
    if changes.iter().any(|c| c.action == Action::Delete) {
        ordered = false;
        add_deletes(graph, changes, prior, &mut ops, &ends, &instance_op);
    }
    for (r, rollout) in rollouts.iter().enumerate() {
        if !has_gates(rollout) {
            continue;
        }
        ordered = false;
        let opens: Vec<NodeId> = managed
            .iter()
            .filter_map(|id| ends[id.index()].map(|(open, _)| open))
            .collect();
        // Each member's operations, found once (not once per member).
        let mut of_member: HashMap<&str, Vec<NodeId>> = HashMap::new();
        for (addr, n) in managed_ops.values().flatten() {
            if let Some((_, m)) = members.get(*addr).filter(|(i, _)| *i == r) {
                of_member.entry(m.as_str()).or_default().push(*n);
            }
        }
        let ops_of = |member: &str| of_member.get(member).cloned().unwrap_or_default();
        add_gates(&mut ops, r, rollout, ops_of, &opens);
    }
    let sealed = if ordered {
        ops.seal_in_added_order()
    } else {
        ops.seal()
    };
    if sealed.is_err() {
        return Err(Diagnostic::error("a rollout's waves cannot be ordered")
            .with_detail("an object a rollout moves on one member depends on what it moves on other members (through a resource outside the rollout), so the members cannot go wave by wave")
            .with_help("make each member's objects depend only on that member's objects (`resource[each.key]`), or move the shared resource out of the rollout's dependencies"));
    }
    Ok(Execution {
        ops,
        managed,
        names: None,
    })
}

/// The deletions: each after the deletions of what depended on it, after the operations of
/// the instances still configured that depended on it when recorded, and after its
/// provider's configuration. Added after every other operation, with edges only into
/// them, so the added order stays a dependency order.
fn add_deletes(
    graph: &Graph,
    changes: &[ResourceChange],
    prior: &flotilla_state::State,
    ops: &mut OpGraph<ExecOp>,
    ends: &[Option<(NodeId, NodeId)>],
    instance_op: &HashMap<u32, NodeId>,
) {
    let deletes: Vec<(u32, &ResourceChange)> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.action == Action::Delete)
        .map(|(i, c)| (i as u32, c))
        .collect();
    if deletes.is_empty() {
        return;
    }
    let mut by_resource: HashMap<String, Vec<NodeId>> = HashMap::new();
    let nodes: Vec<NodeId> = deletes
        .iter()
        .map(|(i, c)| {
            let n = ops.add(ExecOp::Delete(*i));
            by_resource.entry(c.addr.config_addr()).or_default().push(n);
            n
        })
        .collect();
    let deletes: Vec<&ResourceChange> = deletes.into_iter().map(|(_, c)| c).collect();
    for (c, &n) in deletes.iter().zip(&nodes) {
        if let Some((_, last)) = provider_node(graph, c).and_then(|p| ends[p.index()]) {
            ops.edge(last, n);
        }
        // Its own configuration node and what refers to it evaluate with the recorded
        // object (destroy configures providers from what is recorded): before it goes.
        let own = graph.find(&Node {
            module: c.addr.module.path(),
            kind: NodeKind::Resource(c.addr.resource.clone()),
        });
        if let Some(id) = own {
            for d in std::iter::once(id).chain(graph.dependents(id)) {
                if let Some((_, last)) = ends[d.index()] {
                    ops.edge(last, n);
                }
            }
        }
    }
    // Instances still configured that depended on a deleted resource: updated first.
    for (i, c) in changes.iter().enumerate() {
        if c.action == Action::Delete {
            continue;
        }
        let Some(&op) = instance_op.get(&(i as u32)) else {
            continue;
        };
        let Some(recorded) = prior.resources.get(&c.addr) else {
            continue;
        };
        for dep in &recorded.dependencies {
            for &m in by_resource.get(dep).into_iter().flatten() {
                ops.edge(op, m);
            }
        }
    }
    // Deleted instances after the deleted instances that depended on them. Dependencies
    // recorded in state form no cycle unless state was edited by hand; then these edges
    // are left out rather than deleting nothing.
    let mut edges = Vec::new();
    for (c, &n) in deletes.iter().zip(&nodes) {
        let own = c.addr.config_addr();
        for dep in c.dependencies.iter().filter(|d| **d != own) {
            for &m in by_resource.get(dep).into_iter().flatten() {
                edges.push((n, m));
            }
        }
    }
    let mut among: OpGraph<()> = OpGraph::default();
    let base = nodes.first().map_or(0, |n| n.index());
    for _ in &nodes {
        among.add(());
    }
    for &(a, b) in &edges {
        among.edge(NodeId::new(a.index() - base), NodeId::new(b.index() - base));
    }
    if among.seal().is_ok() {
        for (a, b) in edges {
            ops.edge(a, b);
        }
    }
}

/// The gates a rollout adds, with their edges to each member's instance operations
/// (`ops_of(member)`) and to what must come first (`before_members`: the opening of each
/// resource the rollout moves, so providers are configured).
fn add_gates(
    ops: &mut OpGraph<ExecOp>,
    r: usize,
    rollout: &RolloutPlan,
    ops_of: impl Fn(&str) -> Vec<NodeId>,
    before_members: &[NodeId],
) {
    if rollout.held.is_some() {
        // A held rollout: one gate that refuses it, before everything it would move.
        let start = ops.add(ExecOp::Gate(GateOp::WaveStart(r, 0)));
        for wave in &rollout.waves {
            for m in wave.members.iter().filter(|m| m.moves()) {
                for n in ops_of(&m.name) {
                    ops.edge(start, n);
                }
            }
        }
        return;
    }
    let mut previous_end: Option<NodeId> = None;
    for (w, wave) in rollout.waves.iter().enumerate() {
        if !wave.moves() {
            continue;
        }
        let start = ops.add(ExecOp::Gate(GateOp::WaveStart(r, w)));
        if let Some(p) = previous_end {
            ops.edge(p, start);
        }
        let end = ops.add(ExecOp::Gate(GateOp::WaveEnd(r, w)));
        ops.edge(start, end);
        let mut gates: Vec<NodeId> = Vec::new();
        let moving = wave.members.iter().enumerate().filter(|(_, m)| m.moves());
        for (k, (j, m)) in moving.enumerate() {
            let ms = ops.add(ExecOp::Gate(GateOp::MemberStart(r, w, j)));
            let mg = ops.add(ExecOp::Gate(GateOp::MemberGate(r, w, j)));
            ops.edge(start, ms);
            for &b in before_members {
                ops.edge(b, ms);
            }
            ops.edge(ms, mg);
            for n in ops_of(&m.name) {
                ops.edge(ms, n);
                ops.edge(n, mg);
            }
            // At most `max_concurrency` in progress: this one after the gate that many
            // places before it.
            if k >= wave.max_concurrency {
                ops.edge(gates[k - wave.max_concurrency], ms);
            }
            ops.edge(mg, end);
            gates.push(mg);
        }
        previous_end = Some(end);
    }
    let done = ops.add(ExecOp::Gate(GateOp::End(r)));
    if let Some(p) = previous_end {
        ops.edge(p, done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_lang::Value;
    use flotilla_state::{ResourceInstanceState, State};

    fn graph(text: &str) -> Graph {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.hcl"), text).unwrap();
        let mut sources = flotilla_syntax::SourceMap::new();
        let (m, d) = flotilla_config::load_dir(dir.path(), &mut sources);
        assert!(d.is_empty(), "{d:?}");
        let (g, d) = flotilla_graph::build(&m.unwrap());
        assert!(d.is_empty(), "{d:?}");
        g
    }

    fn change(addr: &str, action: Action, deps: &[&str]) -> ResourceChange {
        ResourceChange {
            addr: addr.parse().unwrap(),
            prev_addr: None,
            provider: "provider.builtin".parse().unwrap(),
            action,
            before: Some(Value::Null),
            after: (action != Action::Delete).then_some(Value::Null),
            replace_reasons: Vec::new(),
            reason: None,
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            create_before_destroy: action == Action::CreateThenDelete,
            importing: None,
            notes: Vec::new(),
        }
    }

    /// The position of each operation in the sealed order, by a readable name.
    fn positions(e: &Execution, g: &Graph, changes: &[ResourceChange]) -> HashMap<String, usize> {
        let addr = |c: &u32| &changes[*c as usize].addr;
        let name = |op: &ExecOp| match op {
            ExecOp::Node(n) | ExecOp::Open(n) | ExecOp::Close(n) => {
                format!("{op:?}").split('(').next().unwrap().to_string()
                    + " "
                    + &g.node(*n).to_string()
            }
            ExecOp::Only(_, c) | ExecOp::Instance(_, c) => format!("apply {}", addr(c)),
            ExecOp::Delete(c) => format!("delete {}", addr(c)),
            ExecOp::DeleteDeposed(c) => format!("delete old {}", addr(c)),
            ExecOp::DeleteLeftover(c) => format!("delete leftover {c}"),
            ExecOp::Gate(g) => format!("{g:?}"),
        };
        flotilla_graph::Dag::order(&e.ops)
            .iter()
            .enumerate()
            .map(|(i, n)| (name(e.ops.op(*n)), i))
            .collect()
    }

    #[test]
    fn deletions_follow_what_depended_on_them_and_replacements_are_pairs() {
        let g = graph(
            r#"
resource "builtin_data" "base" { input = "b" }
resource "builtin_data" "app" { input = builtin_data.base.output }
resource "builtin_data" "user" { input = "u" }
"#,
        );
        // `app` no longer uses `old` (deleted) but did when recorded; `gone` depended on
        // `old` and goes too; `base` is replaced create-before-destroy.
        let mut prior = State::new();
        let recorded = |deps: &[&str]| ResourceInstanceState {
            provider: "provider.builtin".parse().unwrap(),
            attributes: serde_json::json!({}),
            sensitive: serde_json::Value::Bool(false),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            create_before_destroy: false,
            tainted: false,
        };
        prior.resources.insert(
            "builtin_data.app".parse().unwrap(),
            recorded(&["builtin_data.old"]),
        );
        let changes = vec![
            change("builtin_data.app", Action::Update, &["builtin_data.base"]),
            change("builtin_data.base", Action::CreateThenDelete, &[]),
            change("builtin_data.gone", Action::Delete, &["builtin_data.old"]),
            change("builtin_data.old", Action::Delete, &[]),
            change("builtin_data.user", Action::NoOp, &[]),
        ];
        let e = build(&g, &changes, PlanMode::Normal, false, &[], &prior).unwrap();
        let at = positions(&e, &g, &changes);
        let before = |a: &str, b: &str| {
            assert!(at[a] < at[b], "{a} before {b}: {at:?}");
        };
        before("apply builtin_data.app", "delete builtin_data.old");
        before("delete builtin_data.gone", "delete builtin_data.old");
        before("Node provider.builtin", "delete builtin_data.gone");
        before("apply builtin_data.base", "delete old builtin_data.base");
        before("apply builtin_data.app", "delete old builtin_data.base");
        // Nothing else waits for the deletions (the create of `user` is independent).
        let deletes: Vec<NodeId> = e
            .ops
            .inner
            .node_indices()
            .filter(|&n| matches!(e.ops.op(n), ExecOp::Delete(_)))
            .collect();
        for d in deletes {
            for n in e.ops.inner.neighbors(d) {
                assert!(
                    matches!(e.ops.op(n), ExecOp::Delete(_)),
                    "only deletions follow a deletion"
                );
            }
        }
        // A destroy: every recorded instance deleted, dependents first.
        let destroy = vec![
            change("builtin_data.app", Action::Delete, &["builtin_data.base"]),
            change("builtin_data.base", Action::Delete, &[]),
        ];
        let e = build(&g, &destroy, PlanMode::Destroy, false, &[], &State::new()).unwrap();
        let at = positions(&e, &g, &destroy);
        assert!(
            at["delete builtin_data.app"] < at["delete builtin_data.base"],
            "{at:?}"
        );
    }

    #[test]
    fn a_saved_execution_graph_names_its_nodes_and_resolves_against_the_configuration() {
        let g = graph(
            r#"
variable "n" { default = 2 }
resource "builtin_data" "a" {
  count = var.n
  input = count.index
}
resource "builtin_data" "b" { input = builtin_data.a[0].output }
"#,
        );
        let changes = vec![
            change("builtin_data.a[0]", Action::Create, &[]),
            change("builtin_data.a[1]", Action::Create, &[]),
            change("builtin_data.b", Action::Create, &["builtin_data.a"]),
        ];
        let e = build(&g, &changes, PlanMode::Normal, false, &[], &State::new()).unwrap();
        let saved = e.saved(&g);
        assert!(
            saved.nodes.contains(&"builtin_data.a".to_string()),
            "{saved:?}"
        );
        assert!(saved.nodes.contains(&"var.n".to_string()), "{saved:?}");
        let json = serde_json::to_string(&saved).unwrap();
        let mut back = Execution::from_saved(serde_json::from_str(&json).unwrap()).unwrap();
        assert_ne!(back, e, "names until resolved");
        assert!(
            back.clone().resolve(&g, 2, 0).is_err(),
            "names a third change"
        );
        back.resolve(&g, 3, 0).unwrap();
        assert_eq!(back, e);
        // A configuration without one of its nodes refuses it.
        let other = graph(r#"resource "builtin_data" "a" { input = 1 }"#);
        let mut stale = Execution::from_saved(serde_json::from_str(&json).unwrap()).unwrap();
        assert!(stale.resolve(&other, 3, 0).is_err());
        // A damaged one is refused when read.
        let mut cyclic = saved.clone();
        cyclic.edges.push((cyclic.edges[0].1, cyclic.edges[0].0));
        assert!(Execution::from_saved(cyclic).is_err());
    }
}
