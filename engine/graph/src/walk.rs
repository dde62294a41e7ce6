//! Walking the graph with bounded parallelism: a node runs once everything it needs is done.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use petgraph::graph::NodeIndex;

use crate::Graph;

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

/// Visits `nodes` (all nodes when `None`) in dependency order, at most `parallelism` at a
/// time. When a visit fails, everything that needs that node is skipped while independent
/// branches continue. When `stop` becomes true, nothing new starts and in-flight visits finish.
pub async fn walk<F, Fut>(
    graph: &Graph,
    nodes: Option<&HashSet<NodeIndex>>,
    parallelism: usize,
    stop: Arc<AtomicBool>,
    visit: F,
) -> WalkOutcome
where
    F: Fn(NodeIndex) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let included = |n: NodeIndex| nodes.is_none_or(|s| s.contains(&n));
    let mut pending: HashMap<NodeIndex, usize> = HashMap::new();
    let mut ready: VecDeque<NodeIndex> = VecDeque::new();
    for &n in &graph.order {
        if !included(n) {
            continue;
        }
        let deps = graph.dependencies(n).filter(|&d| included(d)).count();
        if deps == 0 {
            ready.push_back(n);
        } else {
            pending.insert(n, deps);
        }
    }
    let mut outcome = WalkOutcome::default();
    let mut poisoned: HashSet<NodeIndex> = HashSet::new();
    let mut running = tokio::task::JoinSet::new();
    let parallelism = parallelism.max(1);
    loop {
        while running.len() < parallelism && !stop.load(Ordering::SeqCst) {
            let Some(n) = ready.pop_front() else { break };
            if poisoned.contains(&n) {
                outcome.skipped.push(n);
                // Skipped, not failed: its dependents are poisoned all the same.
                finish(
                    graph,
                    n,
                    false,
                    &included,
                    &mut pending,
                    &mut ready,
                    &mut poisoned,
                    &mut WalkOutcome::default(),
                );
                continue;
            }
            // Most visits (variables, locals, resources whose provider needs no I/O) finish
            // without waiting: run those in place, and hand only the ones that wait to the
            // runtime. Spawning each one costs a task and a cross-thread wake-up, which at
            // 100,000 nodes was most of a plan's time.
            let mut fut = Box::pin(visit(n));
            match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(ok) => finish(
                    graph,
                    n,
                    ok,
                    &included,
                    &mut pending,
                    &mut ready,
                    &mut poisoned,
                    &mut outcome,
                ),
                // The spawned task polls it again at once, with a real waker.
                Poll::Pending => {
                    running.spawn(async move { (n, fut.await) });
                }
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (n, ok) = joined.expect("graph visits do not panic");
        finish(
            graph,
            n,
            ok,
            &included,
            &mut pending,
            &mut ready,
            &mut poisoned,
            &mut outcome,
        );
    }
    if stop.load(Ordering::SeqCst) {
        outcome.not_started.extend(ready);
        outcome.not_started.extend(pending.keys().copied());
        outcome.not_started.sort();
    }
    outcome
}

/// Records a finished visit (a failure in `outcome`) and releases its dependents.
#[allow(clippy::too_many_arguments)]
fn finish(
    graph: &Graph,
    n: NodeIndex,
    ok: bool,
    included: &impl Fn(NodeIndex) -> bool,
    pending: &mut HashMap<NodeIndex, usize>,
    ready: &mut VecDeque<NodeIndex>,
    poisoned: &mut HashSet<NodeIndex>,
    outcome: &mut WalkOutcome,
) {
    if !ok {
        outcome.failed.push(n);
    }
    for d in graph.dependents(n) {
        if !included(d) {
            continue;
        }
        if !ok {
            poisoned.insert(d);
        }
        if let Some(count) = pending.get_mut(&d) {
            *count -= 1;
            if *count == 0 {
                pending.remove(&d);
                ready.push_back(d);
            }
        }
    }
}
