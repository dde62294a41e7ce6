//! Executing a plan: the apply walk and the deletion phase.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_config::addr::{
    AbsResourceAddr, InstanceKey, ModulePath, ResourceInstanceAddr, ResourceMode,
};
use flotilla_config::{Module, Resource};
use flotilla_graph::{Graph, NodeId};
use flotilla_lang::{AttrPath, Value, diff_paths};
use flotilla_plan::eval::{InputValue, Paths, ResourceHandler, WalkCtx};
use flotilla_plan::exec::ExecOp;
use flotilla_plan::{
    Action, Plan, PlanMode, ResourceChange, ignore_changes, mark_schema_sensitive, proposed_new,
    state_value,
};
use flotilla_provider::{ApplyRequest, PlanRequest, Provider, ProviderRegistry, ReadDataRequest};
use flotilla_state::{JournalEntry, OutputState, ResourceInstanceState, State, StateStore};
use flotilla_syntax::{Diagnostic, Diagnostics};

use crate::journal::JournalSink;

mod rollout;

/// What apply reports as it works, for progress output.
#[derive(Debug)]
pub enum ApplyEvent<'a> {
    /// An operation started.
    Started {
        /// The instance.
        addr: &'a ResourceInstanceAddr,
        /// What is being done.
        action: Action,
    },
    /// An operation finished.
    Finished {
        /// The instance.
        addr: &'a ResourceInstanceAddr,
        /// What was done.
        action: Action,
        /// How long it took.
        elapsed: Duration,
        /// The object's `id`, if it has a known, non-sensitive one.
        id: Option<String>,
    },
    /// An operation failed.
    Failed {
        /// The instance.
        addr: &'a ResourceInstanceAddr,
        /// What was attempted.
        action: Action,
    },
    /// A rollout moved on: a wave started, a member progressed or passed its gate.
    Rollout {
        /// The rollout's address (`rollout.checkout`).
        rollout: &'a str,
        /// What happened.
        message: String,
    },
}

/// Receives progress events (the CLI prints them).
pub trait Progress: Send + Sync {
    /// One event.
    fn event(&self, event: ApplyEvent<'_>);
}

/// Everything apply needs.
pub struct ApplyInput {
    /// The plan to carry out.
    pub plan: Plan,
    /// The configuration the plan was made from.
    pub config: Arc<Module>,
    /// Its graph.
    pub graph: Arc<Graph>,
    /// Providers linked into the binary.
    pub registry: ProviderRegistry,
    /// `path.*` values.
    pub paths: Paths,
    /// Where state lives.
    pub backend: Arc<dyn StateStore>,
    /// How many operations may run at once.
    pub parallelism: usize,
    /// Set on Ctrl-C.
    pub stop: Arc<AtomicBool>,
    /// Progress output.
    pub progress: Arc<dyn Progress>,
}

/// What apply did.
#[derive(Debug)]
pub struct ApplyReport {
    /// The state now on disk.
    pub state: State,
    /// Errors and warnings.
    pub diags: Diagnostics,
    /// Objects created (replacements included).
    pub added: usize,
    /// Objects updated in place.
    pub changed: usize,
    /// Objects destroyed (replacements included).
    pub destroyed: usize,
    /// Existing objects adopted into state.
    pub imported: usize,
    /// Whether Ctrl-C stopped it early.
    pub interrupted: bool,
    /// Whether `state` is what the store holds now: `false` when the final write failed
    /// (the store went away), so the caller must keep `state` somewhere else.
    pub saved: bool,
    /// Rollouts (their names) stopped before a wave that needs approval.
    pub waiting: Vec<String>,
}

struct Applier {
    /// The plan's changes, which the execution graph's operations name by index.
    changes: Vec<ResourceChange>,
    /// The plan's deletions of old objects interrupted replacements left.
    leftovers: Vec<ResourceChange>,
    /// Each opened resource: its instance sets (`count`/`for_each` evaluated at apply), its
    /// provider and schema, shared by its instances.
    opened: Mutex<HashMap<NodeId, Arc<Opened>>>,
    /// Values of the instances applied so far, for their resource's [`ExecOp::Close`].
    applied: Mutex<HashMap<ResourceInstanceAddr, Value>>,
    state: Mutex<State>,
    journal: JournalSink,
    progress: Arc<dyn Progress>,
    counts: Mutex<(usize, usize, usize, usize)>,
    mode: PlanMode,
    /// The rollouts this apply moves.
    runs: Vec<rollout::Run>,
    /// The rollout (index into `runs`) and member of each instance a rollout moves.
    members: HashMap<ResourceInstanceAddr, (usize, String)>,
    /// Resources a rollout moves: their value is republished after each instance, since
    /// other members' instances of them may still wait for later waves.
    managed: std::collections::HashSet<NodeId>,
    /// Held while a value is republished, so a publish that read fewer applied instances
    /// never overwrites one that read more.
    publishing: Mutex<()>,
    /// Where state lives: read for rollout requests while the apply runs.
    store: Arc<dyn StateStore>,
    /// The rollout requests read so far.
    requests: Mutex<rollout::Requests>,
}

/// A resource being applied, as its [`ExecOp::Open`] found it.
struct Opened {
    sets: Vec<flotilla_plan::eval::InstanceSet>,
    /// Each module instance's set, by position in `sets`.
    by_module: HashMap<flotilla_config::addr::ModuleInstance, usize>,
    provider: Arc<dyn Provider>,
    schema: flotilla_provider::BlockSchema,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ApplyReport {
    /// A report for an apply that failed before changing anything.
    fn nothing_done(state: State, error: Diagnostic) -> ApplyReport {
        ApplyReport {
            state,
            diags: Diagnostics::from(error),
            added: 0,
            changed: 0,
            destroyed: 0,
            imported: 0,
            interrupted: false,
            saved: true,
            waiting: Vec::new(),
        }
    }
}

/// Carries out a plan. The caller holds the state lock.
pub async fn apply(mut input: ApplyInput) -> ApplyReport {
    // The plan's execution graph (made now for a plan that was only shown so far, or
    // edited after planning as `import` does).
    if let Err(d) = flotilla_plan::exec::ensure(&mut input.plan, &input.graph) {
        return ApplyReport::nothing_done(input.plan.prior_state.clone(), d);
    }
    let mut execution = std::mem::take(&mut input.plan.execution);
    if let Err(name) = execution.resolve(
        &input.graph,
        input.plan.changes.len(),
        input.plan.deposed.len(),
    ) {
        return ApplyReport::nothing_done(
            input.plan.prior_state.clone(),
            Diagnostic::error("saved plan does not match the configuration")
                .with_detail(format!(
                    "its execution graph names `{name}`, which the configuration does not have"
                ))
                .with_help("make a new plan with `flotilla plan -out FILE`"),
        );
    }
    let runs = rollout::runs(&input.plan);
    let members = flotilla_plan::exec::member_instances(
        &input.plan.rollouts,
        input
            .plan
            .changes
            .iter()
            .filter(|c| c.action != Action::Delete)
            .map(|c| &c.addr),
    );
    let managed = execution.managed;
    let ops = Arc::new(execution.ops);
    let changes = std::mem::take(&mut input.plan.changes);
    let leftovers = std::mem::take(&mut input.plan.deposed);
    let mut state = input.plan.prior_state.clone();
    // The refreshed prior state becomes the baseline snapshot, so the journal replays onto it.
    if let Err(e) = input.backend.persist(&mut state) {
        return ApplyReport::nothing_done(state, e.to_diagnostic("cannot save state"));
    }
    let journal = match input.backend.journal() {
        Ok(j) => JournalSink::start(j),
        Err(e) => {
            return ApplyReport::nothing_done(state, e.to_diagnostic("cannot save state"));
        }
    };
    let inputs: BTreeMap<String, InputValue> = input
        .plan
        .variables
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                InputValue {
                    value: v.clone(),
                    span: None,
                    source: "the saved plan".into(),
                },
            )
        })
        .collect();
    let ctx = Arc::new(WalkCtx::new(
        input.config.clone(),
        input.graph.clone(),
        input.registry,
        input.paths,
        inputs,
        input.stop.clone(),
    ));
    let applier = Arc::new(Applier {
        store: Arc::clone(&input.backend),
        requests: Mutex::new(rollout::Requests::default()),
        runs,
        members,
        managed,
        publishing: Mutex::new(()),
        changes,
        leftovers,
        state: Mutex::new(state),
        journal,
        progress: input.progress,
        counts: Mutex::new((0, 0, 0, 0)),
        mode: input.plan.mode,
        opened: Mutex::new(HashMap::new()),
        applied: Mutex::new(HashMap::new()),
    });
    // Requests left before this apply began (a pause asked for while it was planned);
    // there can be none without a rollout in state.
    if !lock(&applier.state).rollouts.is_empty() {
        applier.poll_requests(&ctx, true);
    }
    let outcome = {
        let (ctx, applier, ops2) = (Arc::clone(&ctx), Arc::clone(&applier), Arc::clone(&ops));
        flotilla_graph::walk(
            &ops,
            None,
            input.parallelism,
            Arc::clone(&input.stop),
            move |n| {
                let (ctx, applier) = (Arc::clone(&ctx), Arc::clone(&applier));
                let op = ops2.op(n).clone();
                async move { applier.run_op(&ctx, op).await }
            },
        )
        .await
    };
    let mut interrupted = !outcome.not_started.is_empty();
    applier.finish_rollouts(&ctx).await;
    // A rollout stopped part-way left outputs unevaluated: keep the recorded ones.
    let partial = applier.runs.iter().any(|r| r.stopped());
    let waiting: Vec<String> = applier
        .runs
        .iter()
        .filter(|r| r.waiting.load(Ordering::SeqCst))
        .map(|r| r.plan.name.clone())
        .collect();
    interrupted |= input.stop.load(Ordering::SeqCst);
    let mut diags = ctx.take_diags();
    diags.sort();
    let Ok(applier) = Arc::try_unwrap(applier) else {
        unreachable!("the walk is over")
    };
    let counts = *lock(&applier.counts);
    let journal_result = applier.journal.finish();
    let requests = applier
        .requests
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let mut state = applier
        .state
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    // Requests about rollouts this apply did not move still count.
    flotilla_state::fold_requests(&mut state, &requests.others);
    if !interrupted && !partial && !diags.has_errors() || input.plan.mode == PlanMode::Destroy {
        let outputs = lock(&ctx.root_outputs).clone();
        state.outputs = if input.plan.mode == PlanMode::Destroy {
            BTreeMap::new()
        } else {
            outputs
                .into_iter()
                .filter(|(_, v)| !v.contains_unknown())
                .map(|(k, v)| {
                    let sensitive = v.contains_sensitive()
                        || input.config.outputs.get(&k).is_some_and(|o| o.sensitive);
                    (
                        k,
                        OutputState {
                            value: v.to_json(),
                            sensitive,
                        },
                    )
                })
                .collect()
        };
    }
    if let Err(e) = journal_result {
        diags.push(e.to_diagnostic("cannot record the apply journal"));
    }
    // The snapshot holds everything, so a journal that failed part-way loses nothing once
    // it is written.
    let saved = match input.backend.persist(&mut state) {
        Ok(()) => true,
        Err(e) => {
            diags.push(e.to_diagnostic("cannot save state"));
            false
        }
    };
    // Recorded now: the requests read are done with (kept when the write failed, so the
    // next holder folds them in).
    if saved && let Err(e) = input.backend.remove_requests(&requests.seen) {
        let mut d = e.to_diagnostic("cannot remove the rollout requests this apply carried out");
        d.severity = flotilla_syntax::Severity::Warning;
        diags.push(d);
    }
    if interrupted {
        diags.push(Diagnostic::error("apply interrupted").with_detail("operations in progress were allowed to finish and the state records everything that was done").with_help("run `flotilla apply` again to finish the remaining changes"));
    }
    ApplyReport {
        state,
        diags,
        added: counts.0,
        changed: counts.1,
        destroyed: counts.2,
        imported: counts.3,
        interrupted,
        saved,
        waiting,
    }
}

/// The provider's final plan of a change at apply time, marked by its schema.
async fn final_plan(
    provider: &dyn Provider,
    type_name: &str,
    prior: Option<&Value>,
    proposed: &Value,
    schema: &flotilla_provider::BlockSchema,
) -> Result<Value, flotilla_provider::ProviderError> {
    let fin = provider
        .plan_change(PlanRequest {
            type_name,
            prior,
            proposed,
            dependencies_pending: false,
            applying: true,
        })
        .await?;
    Ok(mark_schema_sensitive(fin.planned, schema))
}

/// Whether every value known in `planned` is the same in `fin`.
fn conforms(planned: &Value, fin: &Value) -> Option<AttrPath> {
    diff_paths(planned, fin)
        .into_iter()
        .find(|p| p.get(planned).is_some_and(|v| !v.contains_unknown()))
}

impl Applier {
    fn count(&self, action: Action) {
        let mut c = lock(&self.counts);
        match action {
            Action::Create => c.0 += 1,
            Action::Update => c.1 += 1,
            Action::Delete => c.2 += 1,
            Action::DeleteThenCreate | Action::CreateThenDelete => {
                c.0 += 1;
                c.2 += 1;
            }
            Action::NoOp | Action::Read => {}
        }
    }

    fn put(
        &self,
        addr: &ResourceInstanceAddr,
        change: &ResourceChange,
        value: &Value,
        tainted: bool,
    ) {
        let (json, _, sensitive) = value.to_json_parts();
        let instance = ResourceInstanceState {
            provider: change.provider.clone(),
            attributes: json,
            sensitive,
            dependencies: change.dependencies.clone(),
            create_before_destroy: change.create_before_destroy,
            tainted,
        };
        self.record(addr, instance);
    }

    /// Moves an instance's recorded object to the deposed ones (its replacement follows).
    fn depose(&self, addr: &ResourceInstanceAddr) {
        let mut state = lock(&self.state);
        if let Some(old) = state.resources.get(addr).cloned() {
            state.deposed.insert(addr.clone(), old.clone());
            drop(state);
            self.journal.record(JournalEntry::Depose {
                addr: addr.clone(),
                instance: old,
            });
        }
    }

    /// Forgets a deposed object once it is deleted.
    fn undepose(&self, addr: &ResourceInstanceAddr) {
        if lock(&self.state).deposed.remove(addr).is_some() {
            self.journal
                .record(JournalEntry::Undepose { addr: addr.clone() });
        }
    }

    /// Records an instance in state and the journal.
    fn record(&self, addr: &ResourceInstanceAddr, instance: ResourceInstanceState) {
        lock(&self.state)
            .resources
            .insert(addr.clone(), instance.clone());
        self.journal.record(JournalEntry::Put {
            addr: addr.clone(),
            instance,
        });
    }

    fn remove(&self, addr: &ResourceInstanceAddr) {
        lock(&self.state).resources.remove(addr);
        self.journal
            .record(JournalEntry::Remove { addr: addr.clone() });
    }

    fn rename(&self, from: &ResourceInstanceAddr, to: &ResourceInstanceAddr) {
        let mut state = lock(&self.state);
        if let Some(r) = state.resources.remove(from) {
            state.resources.insert(to.clone(), r);
            self.journal.record(JournalEntry::Rename {
                from: from.clone(),
                to: to.clone(),
            });
        }
    }

    /// Deletes one object; whether it is gone. `deposed`: the old object of a
    /// create-before-destroy replacement (its replacement is in state, under the same
    /// address), recorded as deposed until it is gone.
    async fn delete(&self, ctx: &WalkCtx, c: &ResourceChange, deposed: bool) -> bool {
        let addr = &c.addr;
        let Some(provider) = ctx.provider_or_default(&c.provider) else {
            ctx.report(
                Diagnostic::error("unknown provider in state").with_detail(format!(
                    "cannot delete `{addr}`: provider `{}` is not available",
                    c.provider
                )),
            );
            return false;
        };
        self.progress.event(ApplyEvent::Started {
            addr,
            action: Action::Delete,
        });
        let start = Instant::now();
        let before = c.before.clone().unwrap_or(Value::Null);
        let deleted = provider
            .apply_change(ApplyRequest {
                type_name: &addr.resource.type_,
                prior: Some(&before),
                planned: None,
            })
            .await;
        if let Err(e) = deleted {
            self.progress.event(ApplyEvent::Failed {
                addr,
                action: Action::Delete,
            });
            let (summary, help) = if deposed {
                (
                    "cannot delete the replaced object",
                    "the replacement is recorded in state and the old object as deposed; fix the cause and run apply again to delete it",
                )
            } else {
                (
                    "cannot delete resource",
                    "fix the cause and run apply again; the object is still recorded in state",
                )
            };
            ctx.report(
                Diagnostic::error(summary)
                    .with_detail(format!("{addr}: {}", e.describe()))
                    .with_help(help),
            );
            return false;
        }
        let elapsed = start.elapsed();
        if deposed {
            self.undepose(addr);
        } else {
            self.remove(addr);
        }
        self.count(Action::Delete);
        // Announced once state no longer lists it, as for creates.
        self.finished(addr, Action::Delete, elapsed, None);
        true
    }

    /// Announces a finished operation once the journal holds it durably: a crash right
    /// after the "complete" line cannot leave the object out of state.
    fn finished(
        &self,
        addr: &ResourceInstanceAddr,
        action: Action,
        elapsed: Duration,
        id: Option<String>,
    ) {
        let (progress, addr) = (Arc::clone(&self.progress), addr.clone());
        self.journal.after_sync(move || {
            progress.event(ApplyEvent::Finished {
                addr: &addr,
                action,
                elapsed,
                id,
            })
        });
    }

    async fn execute(
        &self,
        r: &Resource,
        addr: &ResourceInstanceAddr,
        change: &ResourceChange,
        provider: &dyn Provider,
        schema: &flotilla_provider::BlockSchema,
        config: Value,
    ) -> Result<Value, Diagnostic> {
        let type_name = r.addr.type_.as_str();
        let fail = |what: &str, e: flotilla_provider::ProviderError| {
            Diagnostic::error(format!("cannot {what} resource"))
                .with_span(r.span.clone())
                .with_detail(format!("{addr}: {}", e.describe()))
                .with_help("fix the cause and run apply again; everything that succeeded is recorded in state")
        };
        if let Some(prev) = &change.prev_addr {
            self.rename(prev, addr);
        }
        if change.action == Action::NoOp {
            let value = change
                .after
                .clone()
                .or(change.before.clone())
                .unwrap_or(Value::Null);
            if change.importing.is_some() {
                self.put(addr, change, &value, false);
                lock(&self.counts).3 += 1;
            }
            return Ok(value);
        }
        if config.contains_unknown() {
            return Err(Diagnostic::error("configuration not known at apply time")
                .with_span(r.span.clone())
                .with_detail(format!("{addr}: some arguments are still unknown after everything they depend on was applied"))
                .with_help("this is a bug in a provider or in flotilla; please report it with the configuration"));
        }
        let replacing = change.action.is_replace();
        let prior = if replacing {
            None
        } else {
            change.before.clone()
        };
        let mut proposed = proposed_new(schema, prior.as_ref(), &config);
        if let Some(p) = &prior {
            proposed = ignore_changes(&r.lifecycle.ignore_changes, schema, p, proposed);
        }
        let fin = final_plan(provider, type_name, prior.as_ref(), &proposed, schema)
            .await
            .map_err(|e| fail("plan", e))?;
        if let Some(planned) = &change.after
            && let Some(path) = conforms(planned, &fin)
        {
            return Err(Diagnostic::error("inconsistent final plan")
                .with_span(r.span.clone())
                .with_detail(format!(
                    "{addr}: `{path}` was planned as one value but would now be another"
                ))
                .with_help("something changed between plan and apply; run `flotilla plan` again"));
        }
        self.progress.event(ApplyEvent::Started {
            addr,
            action: change.action,
        });
        let start = Instant::now();
        let before = change.before.clone().unwrap_or(Value::Null);
        let delete_old = || {
            provider.apply_change(ApplyRequest {
                type_name,
                prior: Some(&before),
                planned: None,
            })
        };
        let verb = if change.action == Action::Update {
            "update"
        } else {
            "create"
        };
        let result: Result<Value, Diagnostic> = async {
            if change.action == Action::DeleteThenCreate {
                delete_old().await.map_err(|e| fail("delete", e))?;
                self.remove(addr);
            }
            let created = provider
                .apply_change(ApplyRequest { type_name, prior: prior.as_ref(), planned: Some(&fin) })
                .await
                .map_err(|e| fail(verb, e))?;
            let new = mark_schema_sensitive(created.new_state.unwrap_or(Value::Null), schema);
            if let Some(e) = created.failed {
                if change.action == Action::CreateThenDelete {
                    // The old object stays recorded (deposed); the next plan deletes it.
                    self.depose(addr);
                }
                self.put(addr, change, &new, true);
                return Err(fail(verb, e)
                    .with_help("the object was written and is recorded in state as tainted; the next plan replaces it"));
            }
            if change.action == Action::CreateThenDelete {
                // The old object waits in state as deposed until it is deleted, so an
                // apply interrupted before that still records it.
                self.depose(addr);
            }
            self.put(addr, change, &new, false);
            if change.importing.is_some() {
                lock(&self.counts).3 += 1;
            }
            Ok(new)
        }
        .await;
        match &result {
            Ok(new) => {
                let id = new.get_attr("id").and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                });
                self.finished(addr, change.action, start.elapsed(), id);
                // A create-before-destroy's old object is counted when it is deleted.
                self.count(if change.action == Action::CreateThenDelete {
                    Action::Create
                } else {
                    change.action
                });
            }
            Err(_) => self.progress.event(ApplyEvent::Failed {
                addr,
                action: change.action,
            }),
        }
        result
    }
}

#[async_trait::async_trait]
impl ResourceHandler for Applier {
    /// A resource with no planned instance in this module path (or in destroy mode): its
    /// value is what state records, so references to it evaluate.
    async fn visit_resource(
        self: Arc<Self>,
        ctx: &Arc<WalkCtx>,
        path: &ModulePath,
        r: &Resource,
    ) -> bool {
        let config = Arc::clone(&ctx.config);
        let module = config.descendant(path).expect("resource module exists");
        if self.mode == PlanMode::Destroy {
            // References see what is recorded, so providers configured from these resources
            // (a new cluster's kubeconfig) can still reach what they manage.
            for inst in ctx.module_instances(path) {
                let abs = AbsResourceAddr {
                    module: inst.clone(),
                    resource: r.addr.clone(),
                };
                let recorded = flotilla_plan::recorded_value(&lock(&self.state), &abs);
                ctx.set_resource(&inst, &r.addr, recorded);
            }
            return true;
        }
        let (sets, ok) = ctx.expand_instances(path, module, r);
        for set in sets {
            let value = self.aggregate(&set, r, true);
            ctx.set_resource(&set.inst, &r.addr, value);
        }
        ok
    }
}

impl Applier {
    async fn run_op(self: Arc<Self>, ctx: &Arc<WalkCtx>, op: ExecOp) -> bool {
        match op {
            ExecOp::Node(id) => Arc::clone(ctx).visit(id, self).await,
            ExecOp::Only(id, c) => {
                self.open(ctx, id) && self.apply_instance(ctx, id, c).await && self.close(ctx, id)
            }
            ExecOp::Open(id) => {
                let ok = self.open(ctx, id);
                if ok && self.managed.contains(&id) {
                    self.publish(ctx, id);
                }
                ok
            }
            ExecOp::Instance(id, c)
                if self.members.contains_key(&self.changes[c as usize].addr) =>
            {
                // A member's operations stop at its first failure; the failure is its
                // gate's to count, so the rollout's budget decides what happens next.
                let addr = &self.changes[c as usize].addr;
                if self.member_has_failed(addr) {
                    return true;
                }
                if !self.apply_instance(ctx, id, c).await {
                    self.instance_failed(addr, format!("{addr} could not be applied"));
                }
                self.publish_instance(ctx, id, addr);
                true
            }
            ExecOp::Instance(id, c) => {
                let ok = self.apply_instance(ctx, id, c).await;
                if self.managed.contains(&id) {
                    self.publish_instance(ctx, id, &self.changes[c as usize].addr);
                }
                ok
            }
            ExecOp::Close(id) => self.close(ctx, id),
            ExecOp::Delete(c) => self.delete(ctx, &self.changes[c as usize], false).await,
            ExecOp::DeleteDeposed(c) => self.delete(ctx, &self.changes[c as usize], true).await,
            ExecOp::DeleteLeftover(c) => self.delete(ctx, &self.leftovers[c as usize], true).await,
            ExecOp::Gate(op) => self.run_rollout_op(ctx, op).await,
        }
    }

    /// Sets a resource's value from the instances applied so far and the rest as recorded,
    /// while its instances are still being applied (resources rollouts move: a member's
    /// objects refer to that member's instance of another resource before the later waves'
    /// instances exist).
    fn publish(&self, ctx: &WalkCtx, id: NodeId) {
        let config = Arc::clone(&ctx.config);
        let Some((_, _, r)) = resource_of(&config, &ctx.graph, id) else {
            return;
        };
        let Some(opened) = lock(&self.opened).get(&id).cloned() else {
            return;
        };
        let _one_at_a_time = lock(&self.publishing);
        for set in &opened.sets {
            let value = self.aggregate(set, r, false);
            ctx.set_resource(&set.inst, &r.addr, value);
        }
    }

    /// Republishes one instance's value inside its resource's value (in place: a member's
    /// step costs the same whatever the fleet's size), or the whole value when there is
    /// none of that shape yet.
    fn publish_instance(&self, ctx: &WalkCtx, id: NodeId, addr: &ResourceInstanceAddr) {
        {
            let _one_at_a_time = lock(&self.publishing);
            let value = lock(&self.applied).get(addr).cloned().unwrap_or_else(|| {
                lock(&self.state)
                    .resources
                    .get(addr)
                    .map(state_value)
                    .unwrap_or(Value::Unknown)
            });
            if ctx.set_resource_instance(&addr.module, &addr.resource, &addr.key, value) {
                return;
            }
        }
        self.publish(ctx, id);
    }

    /// Expands the resource at `id` in each of its module instances.
    fn open(&self, ctx: &WalkCtx, id: NodeId) -> bool {
        let config = Arc::clone(&ctx.config);
        let Some((path, module, r)) = resource_of(&config, &ctx.graph, id) else {
            return false;
        };
        let Some((_, provider, schema)) = ctx.resource_type(path, r) else {
            return false;
        };
        let (sets, ok) = ctx.expand_instances(path, module, r);
        let by_module = sets
            .iter()
            .enumerate()
            .map(|(i, s)| (s.inst.clone(), i))
            .collect();
        lock(&self.opened).insert(
            id,
            Arc::new(Opened {
                sets,
                by_module,
                provider,
                schema,
            }),
        );
        ok
    }

    /// Stores the resource's value from its instances (only reached when all succeeded:
    /// a failure skips what follows it).
    fn close(&self, ctx: &WalkCtx, id: NodeId) -> bool {
        let config = Arc::clone(&ctx.config);
        let Some((_, _, r)) = resource_of(&config, &ctx.graph, id) else {
            return false;
        };
        let Some(opened) = lock(&self.opened).remove(&id) else {
            return true;
        };
        for set in &opened.sets {
            let value = self.aggregate(set, r, true);
            ctx.set_resource(&set.inst, &r.addr, value);
        }
        true
    }

    /// A resource's value in one module instance: applied instances as applied, the rest
    /// as recorded (unknown when neither, e.g. an instance whose apply failed). `take`
    /// consumes the applied values (the resource's final value).
    fn aggregate(&self, set: &flotilla_plan::eval::InstanceSet, r: &Resource, take: bool) -> Value {
        let abs = AbsResourceAddr {
            module: set.inst.clone(),
            resource: r.addr.clone(),
        };
        let mut values = BTreeMap::new();
        let mut applied = lock(&self.applied);
        let state = lock(&self.state);
        for key in set.expansion.keys() {
            let addr = abs.instance(key.clone());
            let found = if take {
                applied.remove(&addr)
            } else {
                applied.get(&addr).cloned()
            };
            let v = match found {
                Some(v) => v,
                None => state
                    .resources
                    .get(&addr)
                    .map(state_value)
                    .unwrap_or(Value::Unknown),
            };
            values.insert(key, v);
        }
        set.expansion.aggregate(values)
    }

    /// One planned instance: evaluates its configuration with the values known now,
    /// executes exactly the planned action, checks postconditions.
    async fn apply_instance(self: &Arc<Self>, ctx: &Arc<WalkCtx>, id: NodeId, c: u32) -> bool {
        let config = Arc::clone(&ctx.config);
        let Some((_, module, r)) = resource_of(&config, &ctx.graph, id) else {
            return false;
        };
        let change = &self.changes[c as usize];
        let addr = &change.addr;
        let Some(opened) = lock(&self.opened).get(&id).cloned() else {
            return true;
        };
        // Its module instance and key as expanded at apply; a planned instance that the
        // configuration no longer expands to is left alone (apply decides nothing new).
        let Some(set) = opened
            .by_module
            .get(&addr.module)
            .map(|&i| &opened.sets[i])
            .filter(|s| s.expansion.contains(&addr.key))
        else {
            return true;
        };
        let schema = &opened.schema;
        // The instance the plan bound it to (a provider block with `for_each` has one per
        // key).
        let provider = ctx
            .provider(&change.provider)
            .unwrap_or_else(|| Arc::clone(&opened.provider));
        let key = addr.key.clone();
        let value = if r.addr.mode == ResourceMode::Data {
            self.read_data(
                ctx,
                &set.inst,
                module,
                r,
                &key,
                &set.expansion,
                change,
                provider.as_ref(),
                schema,
            )
            .await
        } else {
            match ctx.eval_instance(&set.inst, module, r, &key, &set.expansion, schema) {
                Ok(cfg) => {
                    self.execute(r, addr, change, provider.as_ref(), schema, cfg)
                        .await
                }
                Err(ds) => Err(ds
                    .0
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Diagnostic::error("invalid configuration"))),
            }
        };
        let v = match value {
            Ok(v) => v,
            Err(d) => {
                ctx.report(d);
                return false;
            }
        };
        let at = flotilla_plan::eval::InstanceAt {
            inst: &set.inst,
            module,
            resource: r,
            key: &key,
            expansion: &set.expansion,
        };
        let ok = ctx.check_postconditions(&at, &v, addr);
        lock(&self.applied).insert(addr.clone(), v);
        ok
    }
}

/// The module path, module and resource of a configuration node that is a resource.
fn resource_of<'a>(
    config: &'a Module,
    graph: &'a Graph,
    id: NodeId,
) -> Option<(&'a ModulePath, &'a Module, &'a Resource)> {
    let node = graph.node(id);
    let flotilla_graph::NodeKind::Resource(addr) = &node.kind else {
        return None;
    };
    let module = config.descendant(&node.module)?;
    Some((&node.module, module, module.resources.get(addr)?))
}

impl Applier {
    #[allow(clippy::too_many_arguments)]
    async fn read_data(
        &self,
        ctx: &WalkCtx,
        inst: &flotilla_config::addr::ModuleInstance,
        module: &Module,
        r: &Resource,
        key: &InstanceKey,
        expansion: &flotilla_plan::eval::Expansion,
        change: &ResourceChange,
        provider: &dyn Provider,
        schema: &flotilla_provider::BlockSchema,
    ) -> Result<Value, Diagnostic> {
        if change.action != Action::Read {
            return Ok(change.after.clone().unwrap_or(Value::Null));
        }
        let cfg = ctx
            .eval_instance(inst, module, r, key, expansion, schema)
            .map_err(|ds| {
                ds.0.into_iter()
                    .next()
                    .unwrap_or_else(|| Diagnostic::error("invalid configuration"))
            })?;
        provider
            .read_data(ReadDataRequest {
                type_name: &r.addr.type_,
                config: &cfg,
            })
            .await
            .map(|v| mark_schema_sensitive(v, schema))
            .map_err(|e| {
                Diagnostic::error("cannot read data source")
                    .with_span(r.span.clone())
                    .with_detail(format!("{}: {}", change.addr, e.describe()))
            })
    }
}
