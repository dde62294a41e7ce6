//! Walking a DAG with bounded parallelism: a node runs once everything it needs is done.
//! The walk is generic over [`Dag`]: the configuration [`Graph`] and any [`OpGraph`] (a
//! graph of operations, such as apply's deletions) walk the same way.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use petgraph::graph::NodeIndex;
use tokio::task::JoinSet;

use crate::Graph;

/// What [`walk`] visits: nodes in dependency order and each node's edges.
pub trait Dag: Sync {
    /// Every node, each after everything it needs.
    fn order(&self) -> &[NodeIndex];
    /// The nodes `n` needs.
    fn needs(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_;
    /// The nodes that need `n`.
    fn needed_by(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_;
}

impl Dag for Graph {
    fn order(&self) -> &[NodeIndex] {
        &self.order
    }
    fn needs(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.dependencies(n)
    }
    fn needed_by(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.dependents(n)
    }
}

impl<G: Dag + Send> Dag for Arc<G> {
    fn order(&self) -> &[NodeIndex] {
        (**self).order()
    }
    fn needs(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        (**self).needs(n)
    }
    fn needed_by(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        (**self).needed_by(n)
    }
}

/// A DAG of operations (`T`), built edge by edge and then ordered with [`OpGraph::seal`].
#[derive(Debug, Clone)]
pub struct OpGraph<T> {
    /// The operations; an edge `a -> b` means `b` runs after `a`.
    pub inner: petgraph::graph::DiGraph<T, ()>,
    order: Vec<NodeIndex>,
}

impl<T> Default for OpGraph<T> {
    fn default() -> Self {
        OpGraph {
            inner: petgraph::graph::DiGraph::new(),
            order: Vec::new(),
        }
    }
}

impl<T> OpGraph<T> {
    /// Adds an operation.
    pub fn add(&mut self, op: T) -> NodeIndex {
        self.inner.add_node(op)
    }

    /// `after` runs once `before` is done. Constant time (petgraph's `update_edge` scans
    /// the node's edges, quadratic for an operation 100,000 others follow); an edge added
    /// twice is harmless, the walk counts and releases it twice.
    pub fn edge(&mut self, before: NodeIndex, after: NodeIndex) {
        self.inner.add_edge(before, after, ());
    }

    /// Orders the operations; on a cycle, the operation found on it.
    pub fn seal(&mut self) -> Result<(), NodeIndex> {
        // petgraph's toposort is iterative (a DFS with an explicit stack).
        self.order = petgraph::algo::toposort(&self.inner, None).map_err(|c| c.node_id())?;
        Ok(())
    }

    /// Orders the operations as they were added, which must already be an order in which
    /// every operation comes after the ones it needs (no sort: a builder that adds in
    /// dependency order pays nothing); on an edge that points back, the operation it
    /// leaves.
    pub fn seal_in_added_order(&mut self) -> Result<(), NodeIndex> {
        if let Some(e) = self
            .inner
            .raw_edges()
            .iter()
            .find(|e| e.source().index() >= e.target().index())
        {
            return Err(e.source());
        }
        self.order = self.inner.node_indices().collect();
        Ok(())
    }

    /// The operation at `n`.
    pub fn op(&self, n: NodeIndex) -> &T {
        &self.inner[n]
    }
}

impl<T: Sync> Dag for OpGraph<T> {
    fn order(&self) -> &[NodeIndex] {
        &self.order
    }
    fn needs(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.inner
            .neighbors_directed(n, petgraph::Direction::Incoming)
    }
    fn needed_by(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.inner
            .neighbors_directed(n, petgraph::Direction::Outgoing)
    }
}

/// How a walk ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WalkOutcome {
    /// Nodes whose visit failed.
    pub failed: Vec<NodeIndex>,
    /// Nodes not visited because something they need failed.
    pub skipped: Vec<NodeIndex>,
    /// Nodes not visited because the walk was stopped (Ctrl-C).
    pub not_started: Vec<NodeIndex>,
}

/// The most visits one batch polls before reporting back: large enough that handing a
/// batch to another thread costs little next to its work, small enough that dependents
/// are released soon.
const BATCH: usize = 64;

/// With fewer ready nodes than this, the walking thread visits them itself.
const INLINE_BELOW: usize = 4;

/// Visits `nodes` (all nodes when `None`) in dependency order. When a visit fails,
/// everything that needs that node is skipped while independent branches continue. When
/// `stop` becomes true, nothing new starts and in-flight visits finish.
///
/// Most visits (variables, locals, resources whose provider needs no I/O) finish the first
/// time they are polled. Ready nodes (when there are a few) are handed to the runtime in
/// batches whose visits are polled one after another, so that work spreads over the cores without a task and a
/// cross-thread wake-up per node (which at 100,000 nodes was most of a plan's time). A
/// batch stops at the first visit that waits and hands it back to run as a task of its
/// own. At most `parallelism` batches and waiting visits are in flight, so at most
/// `parallelism` visits wait on I/O at once.
pub async fn walk<G, F, Fut>(
    graph: &G,
    nodes: Option<&HashSet<NodeIndex>>,
    parallelism: usize,
    stop: Arc<AtomicBool>,
    visit: F,
) -> WalkOutcome
where
    G: Dag,
    F: Fn(NodeIndex) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let mut walker = Walker::new(graph, |n| nodes.is_none_or(|s| s.contains(&n)));
    let mut running: JoinSet<Finished<Fut>> = JoinSet::new();
    let parallelism = parallelism.max(1);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    loop {
        while running.len() < parallelism && !stop.load(Ordering::SeqCst) {
            if walker.ready.len() < INLINE_BELOW {
                // Too little to share out: do it here, on the walking thread (a resource
                // with many instances shares its own work out).
                let Some(n) = walker.next_ready() else { break };
                let mut fut = Box::pin(visit(n));
                match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(ok) => walker.finish(n, ok),
                    // The spawned task polls it again at once, with a real waker.
                    Poll::Pending => {
                        running.spawn(async move { Finished::One(n, fut.await) });
                    }
                }
                continue;
            }
            let size = walker.ready.len().div_ceil(workers).clamp(1, BATCH);
            let mut batch = Vec::with_capacity(size);
            while batch.len() < size {
                let Some(n) = walker.next_ready() else { break };
                batch.push((n, Box::pin(visit(n))));
            }
            if batch.is_empty() {
                break;
            }
            running.spawn(run_batch(batch, Arc::clone(&stop)));
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok(Finished::One(n, ok)) => walker.finish(n, ok),
            Ok(Finished::Batch {
                done,
                waiting,
                unstarted,
            }) => {
                for (n, ok) in done {
                    walker.finish(n, ok);
                }
                // Unstarted visits go back to the front of the queue, in order.
                for n in unstarted.into_iter().rev() {
                    walker.ready.push_front(n);
                }
                if let Some((n, fut)) = waiting {
                    running.spawn(async move { Finished::One(n, fut.await) });
                }
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let mut outcome = walker.outcome;
    if stop.load(Ordering::SeqCst) {
        outcome.not_started.extend(walker.ready);
        outcome.not_started.extend(walker.pending.keys().copied());
        outcome.not_started.sort();
    }
    outcome
}

/// What a task spawned by [`walk`] reports.
enum Finished<Fut> {
    /// A visit that waited, now done.
    One(NodeIndex, bool),
    /// A batch: the visits that finished, the one that waits (if any) and those after it,
    /// not started.
    Batch {
        done: Vec<(NodeIndex, bool)>,
        waiting: Option<(NodeIndex, Pin<Box<Fut>>)>,
        unstarted: Vec<NodeIndex>,
    },
}

/// Polls each visit once, in order, until one waits or the walk is stopped.
async fn run_batch<Fut>(
    batch: Vec<(NodeIndex, Pin<Box<Fut>>)>,
    stop: Arc<AtomicBool>,
) -> Finished<Fut>
where
    Fut: Future<Output = bool>,
{
    let mut done = Vec::with_capacity(batch.len());
    let mut waiting = None;
    let mut visits = batch.into_iter();
    for (n, mut fut) in visits.by_ref() {
        if stop.load(Ordering::SeqCst) {
            // Put back, so the walk reports it as not started.
            return Finished::Batch {
                done,
                waiting: None,
                unstarted: std::iter::once(n).chain(visits.map(|(n, _)| n)).collect(),
            };
        }
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(ok) => done.push((n, ok)),
            Poll::Pending => {
                waiting = Some((n, fut));
                break;
            }
        }
    }
    Finished::Batch {
        done,
        waiting,
        // Dropping a visit that was never polled does nothing; it is created again when
        // its node is taken from the queue.
        unstarted: visits.map(|(n, _)| n).collect(),
    }
}

/// The bookkeeping of a walk: what waits on how many dependencies, what is ready, what
/// is poisoned by a failure.
struct Walker<'g, G, I> {
    graph: &'g G,
    included: I,
    pending: HashMap<NodeIndex, usize>,
    ready: VecDeque<NodeIndex>,
    poisoned: HashSet<NodeIndex>,
    outcome: WalkOutcome,
}

impl<'g, G: Dag, I: Fn(NodeIndex) -> bool> Walker<'g, G, I> {
    fn new(graph: &'g G, included: I) -> Self {
        let mut pending = HashMap::new();
        let mut ready = VecDeque::new();
        for &n in graph.order() {
            if !included(n) {
                continue;
            }
            let deps = graph.needs(n).filter(|&d| included(d)).count();
            if deps == 0 {
                ready.push_back(n);
            } else {
                pending.insert(n, deps);
            }
        }
        Walker {
            graph,
            included,
            pending,
            ready,
            poisoned: HashSet::new(),
            outcome: WalkOutcome::default(),
        }
    }

    /// The next node to visit. Nodes that need a failed node are skipped on the way (and
    /// their dependents poisoned in turn).
    fn next_ready(&mut self) -> Option<NodeIndex> {
        while let Some(n) = self.ready.pop_front() {
            if !self.poisoned.contains(&n) {
                return Some(n);
            }
            self.outcome.skipped.push(n);
            self.release(n, false);
        }
        None
    }

    /// Records a finished visit (a failure in the outcome) and releases its dependents.
    fn finish(&mut self, n: NodeIndex, ok: bool) {
        if !ok {
            self.outcome.failed.push(n);
        }
        self.release(n, ok);
    }

    fn release(&mut self, n: NodeIndex, ok: bool) {
        let graph = self.graph;
        for d in graph.needed_by(n) {
            if !(self.included)(d) {
                continue;
            }
            if !ok {
                self.poisoned.insert(d);
            }
            if let Some(count) = self.pending.get_mut(&d) {
                *count -= 1;
                if *count == 0 {
                    self.pending.remove(&d);
                    self.ready.push_back(d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A graph of `fan` resources that all need `builtin_data.root`, and ten chains of ten.
    fn graph(fan: usize) -> Graph {
        let mut hcl = String::from("resource \"builtin_data\" \"root\" { input = 1 }\n");
        for i in 0..fan {
            hcl += &format!(
                "resource \"builtin_data\" \"f{i}\" {{ input = builtin_data.root.output }}\n"
            );
        }
        for c in 0..10 {
            hcl += &format!("resource \"builtin_data\" \"c{c}_0\" {{ input = {c} }}\n");
            for i in 1..10 {
                hcl += &format!(
                    "resource \"builtin_data\" \"c{c}_{i}\" {{ input = builtin_data.c{c}_{}.output }}\n",
                    i - 1
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.hcl"), hcl).unwrap();
        let mut sources = flotilla_syntax::SourceMap::new();
        let (module, diags) = flotilla_config::load_dir(dir.path(), &mut sources);
        assert!(diags.is_empty(), "{diags:?}");
        let (graph, diags) = crate::build(&module.unwrap());
        assert!(diags.is_empty(), "{diags:?}");
        graph
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap()
    }

    fn named(g: &Graph, name: &str) -> NodeIndex {
        g.inner
            .node_indices()
            .find(|&n| g.node(n).to_string() == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Visits every node, some waiting on a timer, recording when each starts and ends.
    #[test]
    fn every_node_runs_once_after_everything_it_needs() {
        let g = Arc::new(graph(300));
        let clock = Arc::new(AtomicUsize::new(0));
        let log: Arc<Mutex<HashMap<NodeIndex, (usize, usize)>>> = Arc::default();
        let outcome =
            runtime().block_on(walk(&g, None, 10, Arc::new(AtomicBool::new(false)), |n| {
                let (clock, log) = (Arc::clone(&clock), Arc::clone(&log));
                async move {
                    let start = clock.fetch_add(1, Ordering::SeqCst);
                    if n.index() % 7 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    let end = clock.fetch_add(1, Ordering::SeqCst);
                    let earlier = log.lock().unwrap().insert(n, (start, end));
                    assert!(earlier.is_none(), "{n:?} visited twice");
                    true
                }
            }));
        assert_eq!(outcome, WalkOutcome::default());
        let log = log.lock().unwrap();
        assert_eq!(log.len(), g.inner.node_count());
        for n in g.inner.node_indices() {
            for d in g.dependencies(n) {
                assert!(
                    log[&d].1 < log[&n].0,
                    "{} started before {} ended",
                    g.node(n),
                    g.node(d)
                );
            }
        }
    }

    #[test]
    fn a_failure_skips_what_needs_it_and_nothing_else() {
        let g = graph(50);
        let failing = named(&g, "builtin_data.c3_4");
        let visited: Arc<Mutex<HashSet<NodeIndex>>> = Arc::default();
        let outcome =
            runtime().block_on(walk(&g, None, 4, Arc::new(AtomicBool::new(false)), |n| {
                let visited = Arc::clone(&visited);
                async move {
                    visited.lock().unwrap().insert(n);
                    n != failing
                }
            }));
        assert_eq!(outcome.failed, vec![failing]);
        let mut skipped: Vec<String> = outcome
            .skipped
            .iter()
            .map(|&n| g.node(n).to_string())
            .collect();
        skipped.sort();
        let expected: Vec<String> = (5..10).map(|i| format!("builtin_data.c3_{i}")).collect();
        assert_eq!(skipped, expected);
        assert_eq!(
            visited.lock().unwrap().len(),
            g.inner.node_count() - expected.len()
        );
    }

    /// Visits that wait (provider calls) never exceed `parallelism`, even when many
    /// nodes are ready at once.
    #[test]
    fn waiting_visits_are_bounded_by_parallelism() {
        let g = graph(100);
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let outcome =
            runtime().block_on(walk(&g, None, 3, Arc::new(AtomicBool::new(false)), |_| {
                let (now, most) = (Arc::clone(&now), Arc::clone(&most));
                async move {
                    let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(current, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    true
                }
            }));
        assert_eq!(outcome, WalkOutcome::default());
        let most = most.load(Ordering::SeqCst);
        assert!(most <= 3, "{most} visits waited at once");
        assert!(most >= 2, "the fan-out ran one at a time");
    }

    #[test]
    fn a_stop_starts_nothing_new() {
        let g = graph(200);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let outcome = runtime().block_on(walk(&g, None, 10, Arc::clone(&stop), |_| {
            let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
            async move {
                if started.fetch_add(1, Ordering::SeqCst) + 1 == 20 {
                    stop.store(true, Ordering::SeqCst);
                }
                true
            }
        }));
        // The other worker may be polling a visit as the stop comes; nothing after that.
        let started = started.load(Ordering::SeqCst);
        assert!((20..=21).contains(&started), "{started} visits started");
        assert_eq!(
            outcome.not_started.len(),
            g.inner.node_count() - started,
            "every node not visited is reported"
        );
    }

    #[test]
    fn an_op_graph_walks_in_dependency_order_and_refuses_a_backward_edge() {
        let mut ops = OpGraph::default();
        let a = ops.add("a");
        let b = ops.add("b");
        let c = ops.add("c");
        ops.edge(a, c);
        ops.edge(b, c);
        ops.seal_in_added_order().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let ops = Arc::new(ops);
        let outcome =
            runtime().block_on(walk(&ops, None, 4, Arc::new(AtomicBool::new(false)), |n| {
                let seen = Arc::clone(&seen);
                let name = *ops.op(n);
                async move {
                    seen.lock().unwrap().push(name);
                    name != "b"
                }
            }));
        // "b" failed, so "c", which needs it, is skipped.
        assert_eq!(outcome.failed, vec![b]);
        assert_eq!(outcome.skipped, vec![c]);
        assert_eq!(*seen.lock().unwrap(), vec!["a", "b"]);
        let mut back = OpGraph::default();
        let x = back.add(1);
        let y = back.add(2);
        back.edge(y, x);
        assert_eq!(back.seal_in_added_order(), Err(y));
        assert!(back.seal().is_ok());
    }
}
