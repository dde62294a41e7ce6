//! Rollouts in the execution graph: the gates between a rollout's waves and members.
//!
//! For each rollout the plan moves, the graph gets, per wave that has something to do, a
//! `WaveStart` (the approval gate, the wave cursor), per moving member a `MemberStart` (its
//! objects as they were and its gate's baseline recorded, for a rollback and for a gate bound
//! to the revision), the member's instance operations, a `MemberGate` (polls the provider's
//! [`Provider::observe`] until healthy, failed, or past `progress_deadline`), and a `WaveEnd`
//! (the soak). A member starts once the member `max_concurrency` places before it has
//! passed its gate, so at most that many are in progress. Every step is written to the
//! state journal as the rollout's record, so an interrupted apply resumes where it stopped.
//!
//! A member that fails counts against its wave's and the rollout's budgets; beyond either,
//! the rollout halts: members not started are skipped, those in progress finish, and then
//! [`Applier::finish_rollouts`] does what `on_failure` says (rollback: every touched member
//! back to its recorded objects, last wave first).
//!
//! Between steps the apply reads the requests people leave while it holds the lock
//! (`flotilla rollout pause|abort|approve`, [`flotilla_state::RolloutRequest`]): a pause or
//! abort stops the rollout as a budget would (nothing new starts, members in progress
//! finish their gates), then records it paused or aborted; an approval counts at once. The
//! requests are removed once the final state records them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_config::addr::ResourceInstanceAddr;
use flotilla_lang::Value;
use flotilla_plan::rollout::{OnFailure, RolloutPlan};
use flotilla_plan::{Action, Plan, mark_schema_sensitive, state_value};
use flotilla_provider::{ApplyRequest, Health, ObserveRequest};
use flotilla_state::rollout::{now, seconds_since};
use flotilla_state::{
    JournalEntry, MemberPhase, MemberRecord, RequestAction, ResourceInstanceState, RolloutRecord,
    RolloutRequest, RolloutStatus, WaveRecord,
};
use flotilla_syntax::Diagnostic;

use super::{Applier, ApplyEvent, lock};
use flotilla_plan::eval::WalkCtx;
use flotilla_plan::exec::GateOp;

/// One rollout being carried out.
pub(super) struct Run {
    pub(super) plan: RolloutPlan,
    record: Mutex<RolloutRecord>,
    /// A failure beyond a budget: nothing more starts.
    halted: AtomicBool,
    /// Stopped before a wave that needs approval.
    pub(super) waiting: AtomicBool,
    /// A pause or abort asked for while this apply ran.
    requested: Mutex<Option<RolloutRequest>>,
    /// Whether the whole record has been written once (later writes are deltas).
    written: AtomicBool,
    /// Members' start times, for `progress_deadline`.
    started: Mutex<HashMap<String, Instant>>,
    /// Members whose operations failed in this apply, and why.
    failed: Mutex<BTreeMap<String, String>>,
    /// Failed members per wave.
    wave_failures: Mutex<HashMap<usize, usize>>,
    /// Each member's gate instance.
    gates: HashMap<String, ResourceInstanceAddr>,
    /// Each member's managed instances (in this plan or in state), in `manages` order.
    instances: HashMap<String, Vec<ResourceInstanceAddr>>,
}

impl Run {
    fn key(&self) -> &str {
        &self.plan.key
    }

    fn member(&self, w: usize, j: usize) -> &str {
        &self.plan.waves[w].members[j].name
    }

    /// Whether nothing more may move (halted, waiting, or asked to stop).
    pub(super) fn stopped(&self) -> bool {
        self.stopping() || self.waiting.load(Ordering::SeqCst)
    }

    /// Halted by a failure, or asked to pause or abort: waits (the soak) end early.
    fn stopping(&self) -> bool {
        self.halted.load(Ordering::SeqCst) || lock(&self.requested).is_some()
    }
}

/// A check's configuration for one member: `{member}` in its strings is the member's name
/// (`https://checkout.{member}.acme.internal/healthz`).
fn for_member(config: &serde_json::Value, member: &str) -> serde_json::Value {
    match config {
        serde_json::Value::String(s) => serde_json::Value::String(s.replace("{member}", member)),
        serde_json::Value::Array(a) => a.iter().map(|v| for_member(v, member)).collect(),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), for_member(v, member)))
            .collect(),
        other => other.clone(),
    }
}

/// How often the requests are read while members move.
const POLL: Duration = Duration::from_millis(250);

/// The requests this apply has read.
#[derive(Default)]
pub(super) struct Requests {
    /// Every one read, by id: removed from the store once the final state records them.
    pub(super) seen: Vec<String>,
    /// Those about rollouts this apply does not move: folded into the state at the end.
    pub(super) others: Vec<RolloutRequest>,
    last: Option<Instant>,
    /// A read failed (said once).
    failed: bool,
}

/// A run for each of the plan's rollouts (by the same index as the execution graph's
/// gates; only those that move or have a record to complete have gates).
pub(super) fn runs(plan: &Plan) -> Vec<Run> {
    plan.rollouts
        .iter()
        .map(|r| {
            let prior = plan.prior_state.rollouts.get(&r.key);
            let record = match prior {
                Some(p) if r.held.is_some() => p.clone(),
                Some(p) if p.revision == r.revision && !p.status.is_final() => resumed(r, p),
                Some(p)
                    if r.on_change == flotilla_plan::rollout::OnChange::Fold
                        && !p.status.is_final() =>
                {
                    // The new revision, with the old one's approvals and soaks.
                    let mut rec = fresh(r);
                    rec.waves = wave_records(r, Some(p));
                    for w in &mut rec.waves {
                        w.done = false;
                    }
                    rec
                }
                _ => fresh(r),
            };
            let mut gates = HashMap::new();
            let mut instances: HashMap<String, Vec<ResourceInstanceAddr>> = HashMap::new();
            let addrs = plan
                .changes
                .iter()
                .map(|c| &c.addr)
                .chain(plan.prior_state.resources.keys());
            for addr in addrs {
                let Some(m) = r.member_of(addr) else { continue };
                let list = instances.entry(m.to_string()).or_default();
                if !list.contains(addr) {
                    list.push(addr.clone());
                }
                if r.gate.as_deref() == Some(addr.resource.to_string().as_str()) {
                    gates.insert(m.to_string(), addr.clone());
                }
            }
            let position = |a: &ResourceInstanceAddr| {
                let s = a.resource.to_string();
                r.manages.iter().position(|m| *m == s).unwrap_or(usize::MAX)
            };
            for list in instances.values_mut() {
                list.sort_by_key(|a| position(a));
            }
            Run {
                plan: r.clone(),
                record: Mutex::new(record),
                halted: AtomicBool::new(false),
                waiting: AtomicBool::new(false),
                requested: Mutex::new(None),
                written: AtomicBool::new(false),
                started: Mutex::new(HashMap::new()),
                failed: Mutex::new(BTreeMap::new()),
                wave_failures: Mutex::new(HashMap::new()),
                gates,
                instances,
            }
        })
        .collect()
}

fn wave_records(r: &RolloutPlan, old: Option<&RolloutRecord>) -> Vec<WaveRecord> {
    r.waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let kept = old
                .and_then(|o| o.waves.get(i))
                .filter(|o| o.name == w.name);
            WaveRecord {
                name: w.name.clone(),
                members: w.members.iter().map(|m| m.name.clone()).collect(),
                needs_approval: w.approval,
                done: kept.is_some_and(|k| k.done),
                soak_started: kept.and_then(|k| k.soak_started.clone()),
                approval: kept.and_then(|k| k.approval.clone()),
            }
        })
        .collect()
}

/// A new rollout of the plan's revision: members with nothing to change already run it.
fn fresh(r: &RolloutPlan) -> RolloutRecord {
    let members = r
        .waves
        .iter()
        .enumerate()
        .flat_map(|(i, w)| {
            w.members.iter().map(move |m| {
                let moves = m.moves();
                (
                    m.name.clone(),
                    MemberRecord {
                        wave: i,
                        phase: if moves {
                            MemberPhase::Pending
                        } else {
                            MemberPhase::Healthy
                        },
                        revision: (!moves).then(|| r.revision.clone()),
                        ..MemberRecord::default()
                    },
                )
            })
        })
        .collect();
    RolloutRecord {
        name: r.name.clone(),
        revision: r.revision.clone(),
        label: r.label.clone(),
        status: RolloutStatus::Progressing,
        wave: 0,
        waves: wave_records(r, None),
        members,
        failures: 0,
        message: String::new(),
        updated: now(),
    }
}

/// An unfinished rollout of the same revision, continued.
fn resumed(r: &RolloutPlan, old: &RolloutRecord) -> RolloutRecord {
    let mut rec = old.clone();
    rec.waves = wave_records(r, Some(old));
    for (i, w) in r.waves.iter().enumerate() {
        for m in &w.members {
            let e = rec.members.entry(m.name.clone()).or_default();
            e.wave = i;
        }
    }
    rec.status = RolloutStatus::Progressing;
    rec.message.clear();
    rec
}

impl Applier {
    fn run(&self, r: usize) -> &Run {
        &self.runs[r]
    }

    /// Writes a run's record but its members to state and the journal (the whole record
    /// the first time).
    fn save(&self, run: &Run) {
        let key = run.key().to_string();
        if !run.written.swap(true, Ordering::SeqCst) {
            let record = {
                let mut rec = lock(&run.record);
                rec.updated = now();
                rec.clone()
            };
            lock(&self.state)
                .rollouts
                .insert(key.clone(), record.clone());
            self.journal.record(JournalEntry::Rollout {
                name: key,
                record: Box::new(record),
            });
            return;
        }
        let head = {
            let mut rec = lock(&run.record);
            rec.updated = now();
            rec.head()
        };
        lock(&self.state)
            .rollouts
            .entry(key.clone())
            .or_default()
            .set_head(&head);
        self.journal.record(JournalEntry::RolloutHead {
            name: key,
            head: Box::new(head),
        });
    }

    /// Writes one member's record to state and the journal: a member's step costs the
    /// same in a fleet of ten or of ten thousand.
    fn save_member(&self, run: &Run, member: &str) {
        if !run.written.load(Ordering::SeqCst) {
            return self.save(run);
        }
        let Some(record) = lock(&run.record).members.get(member).cloned() else {
            return;
        };
        let key = run.key().to_string();
        lock(&self.state)
            .rollouts
            .entry(key.clone())
            .or_default()
            .members
            .insert(member.to_string(), record.clone());
        self.journal.record(JournalEntry::RolloutMember {
            name: key,
            member: member.to_string(),
            record: Box::new(record),
        });
    }

    /// Reads the requests left since the last read (at most every [`POLL`] unless `now`)
    /// and carries out those about this apply's rollouts.
    pub(super) fn poll_requests(&self, ctx: &WalkCtx, now: bool) {
        let fresh: Vec<RolloutRequest> = {
            // Another step reading them now is as good.
            let Ok(mut q) = self.requests.try_lock() else {
                return;
            };
            if !now && q.last.is_some_and(|t| t.elapsed() < POLL) {
                return;
            }
            q.last = Some(Instant::now());
            match self.store.requests() {
                Ok(list) => {
                    let fresh: Vec<RolloutRequest> = list
                        .into_iter()
                        .filter(|r| !q.seen.contains(&r.id))
                        .collect();
                    q.seen.extend(fresh.iter().map(|r| r.id.clone()));
                    fresh
                }
                Err(e) => {
                    if !std::mem::replace(&mut q.failed, true) {
                        let mut d = e.to_diagnostic("cannot read rollout requests");
                        d.severity = flotilla_syntax::Severity::Warning;
                        ctx.report(d);
                    }
                    return;
                }
            }
        };
        for request in fresh {
            let Some(run) = self.runs.iter().find(|r| r.key() == request.rollout) else {
                lock(&self.requests).others.push(request);
                continue;
            };
            match request.action {
                RequestAction::Approve => {
                    if lock(&run.record).take_request(&request) {
                        self.save(run);
                        self.say(
                            run,
                            format!(
                                "wave {} approved by {}",
                                request.wave.unwrap_or(0) + 1,
                                request.by
                            ),
                        );
                    }
                }
                RequestAction::Pause | RequestAction::Abort => {
                    // Not when already held so (the plan folded it in).
                    let applies = {
                        let rec = lock(&run.record);
                        rec.revision == request.revision
                            && !rec.status.is_final()
                            && rec.status != RolloutStatus::Paused
                    };
                    if applies {
                        self.say(
                            run,
                            format!(
                                "{} asked by {}: nothing new starts; members in progress finish their gates",
                                request.action.as_str(),
                                request.by
                            ),
                        );
                        *lock(&run.requested) = Some(request);
                    }
                }
            }
        }
    }

    /// Reports progress once everything recorded before it is durable, so it reads in
    /// order with the operations' "complete" lines (which wait for the same).
    fn say(&self, run: &Run, message: String) {
        let (progress, rollout) = (Arc::clone(&self.progress), run.key().to_string());
        self.journal.after_sync(move || {
            progress.event(ApplyEvent::Rollout {
                rollout: &rollout,
                message,
            })
        });
    }

    pub(super) async fn run_rollout_op(&self, ctx: &Arc<WalkCtx>, op: GateOp) -> bool {
        match op {
            GateOp::WaveStart(r, w) => self.wave_start(ctx, r, w),
            GateOp::MemberStart(r, w, j) => self.member_start(ctx, r, w, j).await,
            GateOp::MemberGate(r, w, j) => self.member_gate(ctx, r, w, j).await,
            GateOp::WaveEnd(r, w) => self.wave_end(ctx, r, w).await,
            GateOp::End(r) => {
                let run = self.run(r);
                {
                    let mut rec = lock(&run.record);
                    rec.status = RolloutStatus::Completed;
                    rec.wave = run.plan.waves.len();
                }
                self.save(run);
                self.say(
                    run,
                    "rollout complete: every member runs the revision".into(),
                );
                true
            }
        }
    }

    fn wave_start(&self, ctx: &WalkCtx, r: usize, w: usize) -> bool {
        let run = self.run(r);
        if let Some(held) = &run.plan.held {
            ctx.report(
                Diagnostic::error(format!("{} does not move", run.key()))
                    .with_detail(held.clone())
                    .with_help(format!(
                        "see where it stands with `flotilla rollout status {}`",
                        run.plan.name
                    )),
            );
            return false;
        }
        self.poll_requests(ctx, true);
        if run.stopped() || ctx.stop.load(Ordering::SeqCst) {
            return false;
        }
        let wave = &run.plan.waves[w];
        let waiting = {
            let mut rec = lock(&run.record);
            rec.wave = w;
            rec.status = RolloutStatus::Progressing;
            let waiting = wave.approval && rec.waves.get(w).is_some_and(|x| x.approval.is_none());
            if waiting {
                rec.status = RolloutStatus::WaitingApproval;
                rec.message = format!("wave {} {:?} waits for approval", w + 1, wave.name);
            }
            waiting
        };
        self.save(run);
        if waiting {
            run.waiting.store(true, Ordering::SeqCst);
            self.say(
                run,
                format!(
                    "wave {} of {} {:?} waits for approval: run `flotilla rollout approve {}`, then apply again",
                    w + 1,
                    run.plan.waves.len(),
                    wave.name,
                    run.plan.name
                ),
            );
            return false;
        }
        let moving: Vec<&str> = wave
            .members
            .iter()
            .filter(|m| m.moves())
            .map(|m| m.name.as_str())
            .collect();
        self.say(
            run,
            format!(
                "wave {} of {} {:?}: {} ({} at a time)",
                w + 1,
                run.plan.waves.len(),
                wave.name,
                moving.join(", "),
                wave.max_concurrency
            ),
        );
        true
    }

    async fn member_start(&self, ctx: &WalkCtx, r: usize, w: usize, j: usize) -> bool {
        let run = self.run(r);
        self.poll_requests(ctx, false);
        if run.stopped() || ctx.stop.load(Ordering::SeqCst) {
            return false;
        }
        let member = run.member(w, j).to_string();
        lock(&run.started).insert(member.clone(), Instant::now());
        let first = lock(&run.record)
            .members
            .get(&member)
            .is_none_or(|m| m.phase != MemberPhase::Progressing);
        if first {
            // What it ran before, for a rollback, and its gate's baseline.
            let previous: BTreeMap<_, _> = {
                let state = lock(&self.state);
                run.instances
                    .get(&member)
                    .into_iter()
                    .flatten()
                    .map(|a| (a.clone(), state.resources.get(a).cloned()))
                    .collect()
            };
            let baseline = self
                .observe(ctx, run, &member, None)
                .await
                .map(|o| o.baseline);
            let mut rec = lock(&run.record);
            let target = rec.revision.clone();
            let m = rec.members.entry(member.clone()).or_default();
            m.wave = w;
            // Kept from an earlier attempt at this revision: the objects before it.
            if m.previous.is_empty() || m.revision.as_deref() != Some(target.as_str()) {
                m.previous = previous;
            }
            m.baseline = baseline;
            m.phase = MemberPhase::Progressing;
            m.revision = Some(target);
            m.message.clear();
        }
        self.save_member(run, &member);
        self.say(run, format!("{member}: rolling out"));
        // Its record (what it ran before) is durable before its objects change, and said
        // before their operations start.
        self.journal.synced().await;
        true
    }

    /// The gate object's health, judged against `baseline`; `None` without a gate or when
    /// its provider has no notion of health.
    async fn observe(
        &self,
        ctx: &WalkCtx,
        run: &Run,
        member: &str,
        baseline: Option<&serde_json::Value>,
    ) -> Option<flotilla_provider::Observation> {
        let addr = run.gates.get(member)?;
        let recorded = lock(&self.state).resources.get(addr).cloned()?;
        let provider = ctx.provider_or_default(&recorded.provider)?;
        let current = state_value(&recorded);
        match provider
            .observe(ObserveRequest {
                type_name: &addr.resource.type_,
                current: &current,
                baseline,
            })
            .await
        {
            Ok(o) => o,
            Err(e) => Some(flotilla_provider::Observation {
                health: Health::Progressing,
                message: format!("cannot read it: {}", e.describe()),
                weight: None,
                failed_checks: None,
                baseline: baseline.cloned().unwrap_or_default(),
            }),
        }
    }

    async fn member_gate(&self, ctx: &WalkCtx, r: usize, w: usize, j: usize) -> bool {
        let run = self.run(r);
        let member = run.member(w, j).to_string();
        if let Some(why) = lock(&run.failed).get(&member).cloned() {
            return self.member_failed(ctx, run, w, &member, why);
        }
        let deadline = Duration::from_millis(run.plan.progress_deadline_ms);
        let start = lock(&run.started)
            .get(&member)
            .copied()
            .unwrap_or_else(Instant::now);
        let baseline = lock(&run.record)
            .members
            .get(&member)
            .and_then(|m| m.baseline.clone());
        let mut last = String::new();
        let mut pause = Duration::from_millis(50);
        loop {
            if ctx.stop.load(Ordering::SeqCst) {
                return false;
            }
            self.poll_requests(ctx, false);
            let Some(o) = self.observe(ctx, run, &member, baseline.as_ref()).await else {
                break;
            };
            let line = format!(
                "{}{}{}",
                o.message.trim_end_matches('.'),
                o.weight
                    .filter(|w| *w > 0)
                    .map(|w| format!(", canary weight {w}%"))
                    .unwrap_or_default(),
                o.failed_checks
                    .filter(|c| *c > 0)
                    .map(|c| format!(", {c} failed checks"))
                    .unwrap_or_default()
            );
            if line != last {
                {
                    let mut rec = lock(&run.record);
                    if let Some(m) = rec.members.get_mut(&member) {
                        m.weight = o.weight;
                        m.failed_checks = o.failed_checks;
                        m.message = o.message.clone();
                    }
                }
                self.save_member(run, &member);
                if o.health != Health::Healthy {
                    self.say(run, format!("{member}: {line}"));
                }
                last = line;
            }
            match o.health {
                Health::Healthy => break,
                Health::Failed => {
                    return self.member_failed(ctx, run, w, &member, o.message);
                }
                Health::Progressing if start.elapsed() >= deadline => {
                    let why = format!(
                        "not healthy within its progress_deadline of {}s: {}",
                        deadline.as_secs(),
                        o.message
                    );
                    return self.member_failed(ctx, run, w, &member, why);
                }
                Health::Progressing => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
        if let Err(why) = self.run_checks(ctx, run, &member, start, deadline).await {
            if ctx.stop.load(Ordering::SeqCst) {
                return false;
            }
            return self.member_failed(ctx, run, w, &member, why);
        }
        {
            let mut rec = lock(&run.record);
            if let Some(m) = rec.members.get_mut(&member) {
                m.phase = MemberPhase::Healthy;
                m.message = "healthy".into();
            }
        }
        self.save_member(run, &member);
        self.say(run, format!("{member}: healthy at the new revision"));
        true
    }

    /// The rollout's extra checks on a member, after its gate: each data source read on the
    /// member until its value satisfies the check; a check still failing after its `wait`
    /// (or past the member's deadline) is the member's failure.
    async fn run_checks(
        &self,
        ctx: &WalkCtx,
        run: &Run,
        member: &str,
        start: Instant,
        deadline: Duration,
    ) -> Result<(), String> {
        if run.plan.checks.is_empty() {
            return Ok(());
        }
        let provider_addr = {
            let state = lock(&self.state);
            run.gates
                .get(member)
                .into_iter()
                .chain(run.instances.get(member).into_iter().flatten())
                .find_map(|a| state.resources.get(a).map(|r| r.provider.clone()))
        };
        let member_provider = provider_addr.and_then(|p| ctx.provider_or_default(&p));
        // `builtin_` data sources (an HTTP endpoint) need no cluster: the built-in provider.
        let builtin = "provider.builtin"
            .parse()
            .ok()
            .and_then(|a| ctx.provider_or_default(&a));
        let checking = Instant::now();
        let mut said = String::new();
        loop {
            let mut failing = None;
            for c in &run.plan.checks {
                let provider = if c.data.starts_with("builtin_") {
                    builtin.as_ref()
                } else {
                    member_provider.as_ref()
                };
                let Some(provider) = provider else {
                    return Err(format!(
                        "check {}: no provider configuration reaches the member to read {}",
                        c.name, c.data
                    ));
                };
                let config = Value::from_json(&for_member(&c.config, member));
                let verdict = match provider
                    .read_data(flotilla_provider::ReadDataRequest {
                        type_name: &c.data,
                        config: &config,
                    })
                    .await
                {
                    Ok(v) => c.judge(&v.unmark().0.to_json()),
                    Err(e) => Err(format!("check {}: {}", c.name, e.describe())),
                };
                if let Err(why) = verdict {
                    failing = Some((c, why));
                    break;
                }
            }
            let Some((c, why)) = failing else {
                return Ok(());
            };
            if checking.elapsed() >= Duration::from_millis(c.wait_ms)
                || start.elapsed() >= deadline
                || ctx.stop.load(Ordering::SeqCst)
            {
                return Err(why);
            }
            if why != said {
                self.say(run, format!("{member}: {why}; checking again"));
                said = why;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Records a failed member; whether the rollout goes on (within its budgets).
    fn member_failed(&self, ctx: &WalkCtx, run: &Run, w: usize, member: &str, why: String) -> bool {
        let in_wave = {
            let mut f = lock(&run.wave_failures);
            let n = f.entry(w).or_default();
            *n += 1;
            *n
        };
        let total = {
            let mut rec = lock(&run.record);
            rec.failures += 1;
            if let Some(m) = rec.members.get_mut(member) {
                m.phase = MemberPhase::Failed;
                m.message = why.clone();
            }
            rec.failures
        };
        let wave = &run.plan.waves[w];
        let over = in_wave > wave.max_failures || total > run.plan.max_failures;
        let why = why.trim_end_matches('.').to_string();
        self.say(run, format!("{member}: failed: {why}"));
        if over {
            run.halted.store(true, Ordering::SeqCst);
            lock(&run.record).message = format!("{member} failed: {why}");
        } else {
            ctx.report(
                Diagnostic::warning(format!("{}: member {member} failed", run.key()))
                    .with_detail(format!(
                        "{why}; within the failure budget ({in_wave} of {} in wave {:?}, {total} of {} in the rollout), the rollout went on",
                        wave.max_failures, wave.name, run.plan.max_failures
                    )),
            );
        }
        self.save(run);
        self.save_member(run, member);
        !over
    }

    async fn wave_end(&self, ctx: &WalkCtx, r: usize, w: usize) -> bool {
        let run = self.run(r);
        let wave = &run.plan.waves[w];
        if wave.soak_ms > 0 {
            let started = {
                let mut rec = lock(&run.record);
                match rec.waves.get_mut(w) {
                    Some(x) => x.soak_started.get_or_insert_with(now).clone(),
                    None => now(),
                }
            };
            self.save(run);
            let total = wave.soak_ms as f64 / 1000.0;
            let left = (total - seconds_since(&started)).max(0.0);
            self.say(
                run,
                format!("wave {} {:?} healthy; soaking {left:.1}s", w + 1, wave.name),
            );
            let until = Instant::now() + Duration::from_secs_f64(left);
            while Instant::now() < until {
                self.poll_requests(ctx, false);
                if ctx.stop.load(Ordering::SeqCst) || run.stopping() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(50).min(until - Instant::now())).await;
            }
        }
        if let Some(x) = lock(&run.record).waves.get_mut(w) {
            x.done = true;
        }
        self.save(run);
        self.say(run, format!("wave {} {:?} done", w + 1, wave.name));
        true
    }

    /// Marks a member whose operation failed, so its gate counts the failure.
    pub(super) fn instance_failed(&self, addr: &ResourceInstanceAddr, why: String) {
        if let Some(&(r, ref member)) = self.members.get(addr) {
            lock(&self.run(r).failed)
                .entry(member.clone())
                .or_insert(why);
        }
    }

    /// Whether an instance belongs to a member that already failed (its operations stop).
    pub(super) fn member_has_failed(&self, addr: &ResourceInstanceAddr) -> bool {
        self.members
            .get(addr)
            .is_some_and(|(r, m)| lock(&self.run(*r).failed).contains_key(m))
    }

    /// After the walk: what `on_failure` says for each halted rollout.
    pub(super) async fn finish_rollouts(&self, ctx: &WalkCtx) {
        for run in &self.runs {
            if !run.halted.load(Ordering::SeqCst) {
                let asked = lock(&run.requested).take();
                if let Some(request) = asked {
                    self.finish_requested(ctx, run, &request);
                }
                continue;
            }
            let why = lock(&run.record).message.clone();
            let name = &run.plan.name;
            let d = match run.plan.on_failure {
                OnFailure::Rollback => {
                    let reverted = self.roll_back(ctx, run).await;
                    let mut rec = lock(&run.record);
                    rec.status = RolloutStatus::RolledBack;
                    for w in &mut rec.waves {
                        w.done = false;
                        w.soak_started = None;
                    }
                    Diagnostic::error(format!("{} failed and was rolled back", run.key()))
                        .with_detail(format!(
                            "{why}; put back on their previous revision: {}",
                            if reverted.is_empty() { "nothing (no member had changed)".to_string() } else { reverted.join(", ") }
                        ))
                        .with_help(format!("fix the cause and change the configuration (a new revision), or run `flotilla rollout resume {name}` to try this revision again"))
                }
                OnFailure::Pause => {
                    lock(&run.record).status = RolloutStatus::Paused;
                    Diagnostic::error(format!("{} failed and is paused", run.key()))
                        .with_detail(format!("{why}; members that moved keep the new revision (see `flotilla rollout status {name}`)"))
                        .with_help(format!("fix the cause, then `flotilla rollout resume {name}` and apply again"))
                }
                OnFailure::Abort => {
                    lock(&run.record).status = RolloutStatus::Aborted;
                    Diagnostic::error(format!("{} failed and was aborted", run.key()))
                        .with_detail(format!("{why}; members that moved keep the new revision (see `flotilla rollout status {name}`)"))
                        .with_help(format!("change the configuration for a new rollout, or `flotilla rollout resume {name}` to try this revision again"))
                }
            };
            self.save(run);
            ctx.report(d);
        }
    }

    /// Records a rollout stopped by a pause or abort asked for while it moved.
    fn finish_requested(&self, ctx: &WalkCtx, run: &Run, request: &RolloutRequest) {
        let name = &run.plan.name;
        let (took, moved) = {
            let mut rec = lock(&run.record);
            let took = rec.take_request(request);
            let moved: Vec<String> = rec
                .members
                .iter()
                .filter(|(_, m)| {
                    m.phase != MemberPhase::Pending && m.revision.as_deref() == Some(&rec.revision)
                })
                .map(|(n, _)| n.clone())
                .collect();
            (took, moved)
        };
        if !took {
            ctx.report(
                Diagnostic::warning(format!(
                    "{} finished before the {} asked by {} took effect",
                    run.key(),
                    request.action.as_str(),
                    request.by
                ))
                .with_detail(format!("see `flotilla rollout status {name}`")),
            );
            return;
        }
        self.save(run);
        let (what, help) = match request.action {
            RequestAction::Abort => (
                "aborted",
                format!(
                    "change the configuration for a new rollout, or `flotilla rollout resume {name}` to try this revision again"
                ),
            ),
            _ => (
                "paused",
                format!("`flotilla rollout resume {name}`, then apply again to go on"),
            ),
        };
        ctx.report(
            Diagnostic::error(format!("{} {what} by {}", run.key(), request.by))
                .with_detail(format!(
                    "asked at {} while the apply ran; members on the new revision: {}; the others keep what they ran",
                    request.at,
                    if moved.is_empty() { "none".to_string() } else { moved.join(", ") }
                ))
                .with_help(help),
        );
    }

    /// Puts every member this rollout touched back on what it ran before, last wave (and
    /// last member) first; the members reverted.
    async fn roll_back(&self, ctx: &WalkCtx, run: &Run) -> Vec<String> {
        let mut touched: Vec<(usize, usize, String)> = {
            let rec = lock(&run.record);
            rec.members
                .iter()
                .filter(|(_, m)| {
                    matches!(
                        m.phase,
                        MemberPhase::Progressing | MemberPhase::Healthy | MemberPhase::Failed
                    ) && m.revision.as_deref() == Some(rec.revision.as_str())
                        && !m.previous.is_empty()
                })
                .map(|(name, m)| {
                    let j = run
                        .plan
                        .waves
                        .get(m.wave)
                        .and_then(|w| w.members.iter().position(|x| x.name == *name));
                    (m.wave, j.unwrap_or(0), name.clone())
                })
                .collect()
        };
        touched.sort();
        touched.reverse();
        let mut reverted = Vec::new();
        for (_, _, member) in touched {
            self.say(run, format!("{member}: rolling back"));
            let previous = lock(&run.record)
                .members
                .get(&member)
                .map(|m| m.previous.clone())
                .unwrap_or_default();
            let mut addrs: Vec<&ResourceInstanceAddr> = previous.keys().collect();
            let position = |a: &ResourceInstanceAddr| {
                let s = a.resource.to_string();
                run.plan.manages.iter().position(|m| *m == s).unwrap_or(0)
            };
            addrs.sort_by_key(|a| std::cmp::Reverse(position(a)));
            let mut ok = true;
            for addr in addrs {
                if let Err(d) = self.revert(ctx, addr, previous[addr].as_ref()).await {
                    ctx.report(d);
                    ok = false;
                }
            }
            {
                let mut rec = lock(&run.record);
                if let Some(m) = rec.members.get_mut(&member) {
                    if ok {
                        m.phase = MemberPhase::Reverted;
                        m.revision = None;
                        m.message = "put back on its previous revision".into();
                    } else {
                        m.message = "the rollback of some of its objects failed".into();
                    }
                }
            }
            self.save_member(run, &member);
            if ok {
                self.say(run, format!("{member}: back on its previous revision"));
                reverted.push(member);
            }
        }
        reverted
    }

    /// One object back to `previous` (deleted when it did not exist before).
    async fn revert(
        &self,
        ctx: &WalkCtx,
        addr: &ResourceInstanceAddr,
        previous: Option<&ResourceInstanceState>,
    ) -> Result<(), Diagnostic> {
        let current = lock(&self.state).resources.get(addr).cloned();
        let fail = |what: &str, e: flotilla_provider::ProviderError| {
            Diagnostic::error(format!("cannot roll back {addr}"))
                .with_detail(format!("{what}: {}", e.describe()))
                .with_help("the state records what it is now; fix the cause and apply again")
        };
        let provider_addr = match (previous, &current) {
            (Some(p), _) => p.provider.clone(),
            (None, Some(c)) => c.provider.clone(),
            (None, None) => return Ok(()),
        };
        let Some(provider) = ctx.provider_or_default(&provider_addr) else {
            return Err(Diagnostic::error(format!("cannot roll back {addr}"))
                .with_detail(format!("provider `{provider_addr}` is not available")));
        };
        let type_name = addr.resource.type_.as_str();
        let cur = current.as_ref().map(state_value);
        let start = Instant::now();
        match previous {
            None => {
                let Some(cur) = cur else { return Ok(()) };
                self.progress.event(ApplyEvent::Started {
                    addr,
                    action: Action::Delete,
                });
                provider
                    .apply_change(ApplyRequest {
                        type_name,
                        prior: Some(&cur),
                        planned: None,
                    })
                    .await
                    .map_err(|e| fail("delete", e))?;
                self.remove(addr);
                self.count(Action::Delete);
                self.finished(addr, Action::Delete, start.elapsed(), None);
            }
            Some(prev) => {
                if current.as_ref() == Some(prev) {
                    return Ok(());
                }
                let schema = provider
                    .schema()
                    .resources
                    .get(type_name)
                    .map(|s| s.block.clone())
                    .unwrap_or_default();
                let wanted = state_value(prev);
                let action = if cur.is_some() {
                    Action::Update
                } else {
                    Action::Create
                };
                let fin =
                    super::final_plan(provider.as_ref(), type_name, cur.as_ref(), &wanted, &schema)
                        .await
                        .map_err(|e| fail("plan", e))?;
                self.progress.event(ApplyEvent::Started { addr, action });
                let done = provider
                    .apply_change(ApplyRequest {
                        type_name,
                        prior: cur.as_ref(),
                        planned: Some(&fin),
                    })
                    .await
                    .map_err(|e| fail("apply", e))?;
                let new = mark_schema_sensitive(done.new_state.unwrap_or(Value::Null), &schema);
                let (json, _, sensitive) = new.to_json_parts();
                let instance = ResourceInstanceState {
                    attributes: json,
                    sensitive,
                    tainted: done.failed.is_some(),
                    ..prev.clone()
                };
                self.record(addr, instance);
                if let Some(e) = done.failed {
                    return Err(fail("apply", e));
                }
                self.count(action);
                self.finished(addr, action, start.elapsed(), None);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checks_strings_name_the_member() {
        let config = serde_json::json!({
            "url": "https://checkout.{member}.acme.internal/healthz",
            "request_headers": {"x-member": "{member}"},
            "names": ["{member}-a", 3],
            "timeout": null,
        });
        assert_eq!(
            for_member(&config, "bj-1"),
            serde_json::json!({
                "url": "https://checkout.bj-1.acme.internal/healthz",
                "request_headers": {"x-member": "bj-1"},
                "names": ["bj-1-a", 3],
                "timeout": null,
            })
        );
    }
}
