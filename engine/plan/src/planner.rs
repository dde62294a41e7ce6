//! Planning: what each resource instance needs, decided from prior state, refresh and config.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use flotilla_config::addr::{
    AbsResourceAddr, InstanceKey, ModuleInstance, ModulePath, ResourceInstanceAddr, ResourceMode,
    TargetAddr,
};
use flotilla_config::{IgnoreChanges, Module, Resource};
use flotilla_graph::{Graph, NodeKind};
use flotilla_lang::{AttrPath, PathStep, Subject, Value, diff_paths, references};
use flotilla_provider::{
    BlockSchema, ImportRequest, PlanRequest, Provider, ProviderRegistry, ReadDataRequest,
    ReadRequest, ReplaceReason,
};
use flotilla_state::{ResourceInstanceState, State};
use flotilla_syntax::{Diagnostic, Diagnostics, Span};

use crate::eval::{
    Expansion, InputValue, InstanceAt, InstanceSet, Paths, ResourceHandler, WalkCtx, check_rules,
    set_instance_key,
};
use crate::model::{Action, OutputChange, Plan, PlanMode, ResourceChange};

/// What the user asked for besides the configuration.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Normal, destroy or refresh-only.
    pub mode: PlanMode,
    /// Read real objects before diffing (`-refresh=false` turns it off).
    pub refresh: bool,
    /// `-target` addresses: plan only these and what they need.
    pub targets: Vec<TargetAddr>,
    /// `-replace` addresses: replace these even if unchanged.
    pub replace: Vec<ResourceInstanceAddr>,
    /// How many provider calls may run at once.
    pub parallelism: usize,
    /// Objects to adopt into state, besides the configuration's `import` blocks
    /// (`flotilla import ADDR ID`).
    pub imports: Vec<(ResourceInstanceAddr, String)>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            mode: PlanMode::Normal,
            refresh: true,
            targets: Vec::new(),
            replace: Vec::new(),
            parallelism: 10,
            imports: Vec::new(),
        }
    }
}

/// Everything planning needs.
pub struct PlanInput {
    /// The configuration.
    pub config: Arc<Module>,
    /// Its graph (already checked: no cycles).
    pub graph: Arc<Graph>,
    /// Providers linked into the binary.
    pub registry: ProviderRegistry,
    /// `path.*` values.
    pub paths: Paths,
    /// Root variable values.
    pub inputs: BTreeMap<String, InputValue>,
    /// The recorded state.
    pub prior: State,
    /// blake3 of the configuration files.
    pub config_hash: String,
    /// Flags.
    pub options: PlanOptions,
    /// Set on Ctrl-C.
    pub stop: Arc<AtomicBool>,
}

/// Makes a plan. Returns it with any warnings, or every error found.
pub async fn plan(input: PlanInput) -> Result<(Plan, Diagnostics), Diagnostics> {
    let state_serial = input.prior.serial;
    let (prior, moved, move_diags) = apply_moves(&input.config, input.prior);
    let (imports, import_diags) = collect_imports(&input.config, &input.options, &prior);
    let targeting = !input.options.targets.is_empty();
    let (subset, direct) = if targeting {
        let direct: HashSet<_> = input
            .graph
            .inner
            .node_indices()
            .filter(|&i| {
                let n = input.graph.node(i);
                matches!(&n.kind, NodeKind::Resource(addr) if input.options.targets.iter().any(|t| target_matches_node(t, &n.module, addr)))
            })
            .collect();
        (Some(input.graph.closure(direct.iter().copied())), direct)
    } else {
        (None, HashSet::new())
    };
    let ctx = Arc::new(WalkCtx::new(
        input.config.clone(),
        input.graph.clone(),
        input.registry,
        input.paths,
        input.inputs,
        input.stop,
    ));
    ctx.report_all(move_diags);
    ctx.report_all(import_diags);
    let planner = Arc::new(Planner {
        prior: Mutex::new(prior),
        moved,
        imports,
        changes: Mutex::new(Vec::new()),
        pending_resources: Mutex::new(HashSet::new()),
        drift: Mutex::new(Vec::new()),
        seen: Mutex::new(HashSet::new()),
        changed_resources: Mutex::new(HashSet::new()),
        options: input.options.clone(),
        direct_targets: direct
            .iter()
            .map(|&i| input.graph.node(i).clone())
            .collect(),
    });
    let walk = flotilla_syntax::timing::phase("plan walk");
    let outcome = ctx
        .run(planner.clone(), subset.as_ref(), input.options.parallelism)
        .await;
    drop(walk);
    let mut diags = ctx.take_diags();
    if !outcome.not_started.is_empty() {
        diags.push(
            Diagnostic::error("plan interrupted")
                .with_help("nothing was changed; run the plan again"),
        );
    }
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    planner.plan_orphans(&ctx, targeting).await;
    diags.extend(ctx.take_diags().0);
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    let Ok(planner) = Arc::try_unwrap(planner) else {
        unreachable!("the walk is over")
    };
    let prior = planner
        .prior
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let mut changes = planner
        .changes
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    // Addresses are unique, so an unstable sort gives the same order, with fewer moves.
    changes.sort_unstable_by(|a, b| a.addr.cmp(&b.addr));
    let mut drift = planner
        .drift
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    drift.sort_unstable_by(|a, b| a.addr.cmp(&b.addr));
    let findings = review(&ctx, &input.config, &changes);
    let failed = findings.has_errors();
    diags.extend(findings);
    diags.sort();
    if failed {
        return Err(diags);
    }
    let root_outputs = ctx
        .root_outputs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let outputs = output_changes(
        &input.config,
        &prior,
        root_outputs,
        input.options.mode,
        targeting,
    );
    let variables = ctx
        .values()
        .modules
        .get(&ModuleInstance::root())
        .map(|m| m.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let (rollouts, rollout_diags) = if input.options.mode == PlanMode::Destroy {
        (Vec::new(), Vec::new())
    } else {
        crate::rollout::plan_rollouts(&changes, &prior, Some(&input.graph), |addr| {
            input
                .config
                .descendant(&addr.module.path())
                .and_then(|m| m.resources.get(&addr.resource))
                .map(|r| r.span.clone())
        })
    };
    if !rollout_diags.is_empty() {
        diags.extend(rollout_diags);
        diags.sort();
        return Err(diags);
    }
    let deposed = deposed_changes(&prior, input.options.mode);
    let mut plan = Plan {
        rollouts,
        deposed,
        execution: Default::default(),
        mode: input.options.mode,
        changes,
        drift,
        outputs,
        prior_state: prior,
        state_serial,
        variables,
        config_hash: input.config_hash,
        targets: input
            .options
            .targets
            .iter()
            .map(|t| t.to_string())
            .collect(),
    };
    // Made here when a rollout moves, so a rollout that cannot be ordered is a plan error;
    // otherwise when the plan is saved or applied (a plan that is only shown skips it).
    if plan.rollouts.iter().any(crate::exec::has_gates)
        && let Err(d) = crate::exec::ensure(&mut plan, &input.graph)
    {
        diags.push(d);
        diags.sort();
        return Err(diags);
    }
    Ok((plan, diags))
}

/// The deletions of old objects an interrupted create-before-destroy replacement left.
fn deposed_changes(prior: &State, mode: PlanMode) -> Vec<ResourceChange> {
    if mode == PlanMode::RefreshOnly {
        return Vec::new();
    }
    prior
        .deposed
        .iter()
        .map(|(addr, old)| ResourceChange {
            addr: addr.clone(),
            prev_addr: None,
            provider: old.provider.clone(),
            action: Action::Delete,
            before: Some(state_value(old)),
            after: None,
            replace_reasons: Vec::new(),
            reason: Some("the old object of a create-before-destroy replacement that an interrupted apply did not delete".into()),
            dependencies: old.dependencies.clone(),
            create_before_destroy: true,
            importing: None,
            notes: Vec::new(),
        })
        .collect()
}

/// The providers' review of the planned values (what each resource will be, deletes left
/// out) and the provider configurations.
fn review(ctx: &WalkCtx, config: &Module, changes: &[ResourceChange]) -> Diagnostics {
    let names: HashSet<String> = lock(&ctx.provider_configs)
        .iter()
        .map(|(addr, _)| addr.name.clone())
        .collect();
    let reviewing = names
        .iter()
        .any(|name| ctx.registry.instantiate(name).is_some_and(|p| p.reviews()));
    if !reviewing {
        return Diagnostics::new();
    }
    let mut resources = Vec::new();
    let mut reviewed = Vec::new();
    for c in changes {
        let (Some(after), ResourceMode::Managed) = (&c.after, c.mode()) else {
            continue;
        };
        let Some(r) = config
            .descendant(&c.addr.module.path())
            .and_then(|m| m.resources.get(&c.addr.resource))
        else {
            continue;
        };
        resources.push(r);
        reviewed.push(flotilla_provider::ReviewedResource {
            address: c.addr.to_string(),
            type_name: &c.addr.resource.type_,
            provider: c.provider.to_string(),
            value: after,
        });
    }
    let providers = lock(&ctx.provider_configs)
        .iter()
        .map(|(addr, config)| flotilla_provider::ReviewedProvider {
            address: addr.to_string(),
            name: addr.name.clone(),
            config: config.clone(),
        })
        .collect();
    let review = flotilla_provider::Review {
        resources: reviewed,
        providers,
    };
    crate::validate::review_findings(&ctx.registry, &review, &resources)
}

fn target_matches_node(
    t: &TargetAddr,
    module: &ModulePath,
    addr: &flotilla_config::addr::ResourceAddr,
) -> bool {
    match t {
        TargetAddr::Module(m) => module.0.starts_with(&m.path().0),
        TargetAddr::Resource(r) => &r.module.path() == module && &r.resource == addr,
        TargetAddr::Instance(i) => &i.module.path() == module && &i.resource == addr,
    }
}

fn output_changes(
    config: &Module,
    prior: &State,
    outputs: BTreeMap<String, Value>,
    mode: PlanMode,
    targeting: bool,
) -> Vec<OutputChange> {
    let mut out = Vec::new();
    let mut names: Vec<&String> = prior.outputs.keys().chain(outputs.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let before = prior.outputs.get(name).map(|o| {
            let v = Value::from_json(&o.value);
            if o.sensitive { v.sensitive() } else { v }
        });
        let after = if mode == PlanMode::Destroy {
            None
        } else {
            outputs.get(name).cloned()
        };
        if after.is_none()
            && (targeting
                || (config.outputs.contains_key(name.as_str()) && mode != PlanMode::Destroy))
        {
            continue;
        }
        let sensitive = config
            .outputs
            .get(name.as_str())
            .is_some_and(|o| o.sensitive)
            || before.as_ref().is_some_and(Value::is_sensitive);
        let action = match (&before, &after) {
            (None, Some(_)) => Action::Create,
            (Some(_), None) => Action::Delete,
            (Some(b), Some(a)) if diff_paths(b, a).is_empty() => Action::NoOp,
            (Some(_), Some(_)) => Action::Update,
            (None, None) => continue,
        };
        out.push(OutputChange {
            name: name.clone(),
            action,
            before,
            after,
            sensitive,
        });
    }
    out
}

/// The imports to plan: `import` blocks of the root module and `-import`s from the command
/// line, for addresses not in state yet, each checked to have a resource block.
fn collect_imports(
    config: &Module,
    options: &PlanOptions,
    prior: &State,
) -> (
    HashMap<ResourceInstanceAddr, (String, Option<Span>)>,
    Diagnostics,
) {
    let mut diags = Diagnostics::new();
    let mut out = HashMap::new();
    let mut wanted: Vec<(ResourceInstanceAddr, String, Option<Span>)> = options
        .imports
        .iter()
        .map(|(a, id)| (a.clone(), id.clone(), None))
        .collect();
    if options.mode == PlanMode::Normal {
        for i in &config.imports {
            match i.to.parse::<ResourceInstanceAddr>() {
                Ok(a) => wanted.push((a, i.id.clone(), Some(i.span.clone()))),
                Err(e) => diags.push(
                    Diagnostic::error("invalid `import` address")
                        .with_span(i.span.clone())
                        .with_detail(e.to_string())
                        .with_help("write a resource instance address like `kube_namespace.apps` or `capi_cluster.c[\"beijing\"]`"),
                ),
            }
        }
    }
    for (addr, id, span) in wanted {
        let declared = config
            .descendant(&addr.module.path())
            .is_some_and(|m| m.resources.contains_key(&addr.resource));
        if !declared || addr.resource.mode != ResourceMode::Managed {
            let mut d = Diagnostic::error("import target has no resource block")
                .with_detail(format!(
                    "there is no `{}` in the configuration to import {id:?} into",
                    addr.without_key()
                ))
                .with_help("add the resource block first, then import into it");
            if let Some(s) = &span {
                d = d.with_span(s.clone());
            }
            diags.push(d);
            continue;
        }
        if prior.resources.contains_key(&addr) {
            continue;
        }
        out.insert(addr, (id, span));
    }
    (out, diags)
}

/// Renames state entries according to `moved` blocks in the root module.
fn apply_moves(
    config: &Module,
    mut prior: State,
) -> (
    State,
    HashMap<ResourceInstanceAddr, ResourceInstanceAddr>,
    Vec<Diagnostic>,
) {
    let mut moved = HashMap::new();
    let mut diags = Vec::new();
    for m in &config.moved {
        let (from, to) = match (m.from.parse::<TargetAddr>(), m.to.parse::<TargetAddr>()) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => {
                diags.push(Diagnostic::error("invalid `moved` address").with_span(m.span.clone()).with_detail(e.to_string()).with_help("write addresses like `builtin_data.a`, `builtin_data.a[0]` or `module.net`"));
                continue;
            }
        };
        let renames: Vec<(ResourceInstanceAddr, ResourceInstanceAddr)> = prior
            .resources
            .keys()
            .filter_map(|addr| moved_address(&from, &to, addr).map(|new| (addr.clone(), new)))
            .collect();
        for (old, new) in renames {
            if prior.resources.contains_key(&new) {
                diags.push(
                    Diagnostic::warning("`moved` target already exists")
                        .with_span(m.span.clone())
                        .with_detail(format!(
                            "`{new}` is already in state, so `{old}` was not moved"
                        )),
                );
                continue;
            }
            if let Some(r) = prior.resources.remove(&old) {
                prior.resources.insert(new.clone(), r);
                let original = moved.remove(&old).unwrap_or(old);
                moved.insert(new, original);
            }
        }
    }
    (prior, moved, diags)
}

/// Where `addr` goes when `from` moves to `to` (module, resource or instance moves), if it moves.
pub fn moved_address(
    from: &TargetAddr,
    to: &TargetAddr,
    addr: &ResourceInstanceAddr,
) -> Option<ResourceInstanceAddr> {
    match (from, to) {
        (TargetAddr::Module(f), TargetAddr::Module(t)) if addr.module.0.starts_with(&f.0) => {
            let mut module = t.clone();
            module.0.extend(addr.module.0[f.0.len()..].iter().cloned());
            Some(ResourceInstanceAddr {
                module,
                ..addr.clone()
            })
        }
        (TargetAddr::Resource(f), TargetAddr::Resource(t))
            if addr.module == f.module && addr.resource == f.resource =>
        {
            Some(ResourceInstanceAddr {
                module: t.module.clone(),
                resource: t.resource.clone(),
                key: addr.key.clone(),
            })
        }
        (TargetAddr::Instance(f), TargetAddr::Instance(t)) if addr == f => Some(t.clone()),
        (TargetAddr::Instance(f), TargetAddr::Resource(t)) if addr == f => {
            Some(t.instance(InstanceKey::None))
        }
        (TargetAddr::Resource(f), TargetAddr::Instance(t))
            if addr == &f.instance(InstanceKey::None) =>
        {
            Some(t.clone())
        }
        _ => None,
    }
}

struct Planner {
    prior: Mutex<State>,
    moved: HashMap<ResourceInstanceAddr, ResourceInstanceAddr>,
    /// Objects to adopt, by address: their id and the `import` block, if one asked.
    imports: HashMap<ResourceInstanceAddr, (String, Option<Span>)>,
    changes: Mutex<Vec<ResourceChange>>,
    /// The configuration addresses of managed resources with a planned change.
    pending_resources: Mutex<HashSet<String>>,
    drift: Mutex<Vec<ResourceChange>>,
    seen: Mutex<HashSet<ResourceInstanceAddr>>,
    changed_resources: Mutex<HashSet<AbsResourceAddr>>,
    options: PlanOptions,
    direct_targets: HashSet<flotilla_graph::Node>,
}

/// Turns state JSON back into a value with its sensitive marks.
pub fn state_value(s: &ResourceInstanceState) -> Value {
    Value::from_json_parts(&s.attributes, &serde_json::Value::Bool(false), &s.sensitive)
}

/// Sets every computed attribute the configuration leaves unset to unknown: only the
/// provider, after apply, knows it.
pub(crate) fn with_unknown_computed(schema: &BlockSchema, config: Value) -> Value {
    let Value::Map(mut m) = config else {
        return config;
    };
    for (name, a) in &schema.attributes {
        if a.computed && m.get(name).is_none_or(Value::is_null) {
            m.insert(name.clone(), Value::Unknown);
        }
    }
    Value::Map(m)
}

/// Marks the attributes a schema calls sensitive.
pub fn mark_schema_sensitive(v: Value, schema: &BlockSchema) -> Value {
    match v {
        Value::Map(mut m) => {
            for (name, a) in &schema.attributes {
                if a.sensitive
                    && let Some(x) = m.remove(name)
                {
                    m.insert(name.clone(), if x.is_null() { x } else { x.sensitive() });
                }
            }
            Value::Map(m)
        }
        other => other,
    }
}

/// Terraform's "proposed new state": configuration, with computed attributes left unset in
/// configuration taking their prior values.
pub fn proposed_new(schema: &BlockSchema, prior: Option<&Value>, config: &Value) -> Value {
    let (Value::Map(cfg), Some(Value::Map(prior))) =
        (config.shallow_unmark(), prior.map(Value::shallow_unmark))
    else {
        return config.clone();
    };
    let mut out = cfg.clone();
    for (name, a) in &schema.attributes {
        if a.computed
            && out.get(name).is_none_or(Value::is_null)
            && let Some(p) = prior.get(name)
        {
            out.insert(name.clone(), p.clone());
        }
    }
    Value::Map(out)
}

fn set_path(v: &mut Value, path: &[PathStep], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    match (v, first) {
        (Value::Map(m), PathStep::Key(k)) => match m.get_mut(k) {
            Some(child) => set_path(child, rest, new),
            None if rest.is_empty() => {
                m.insert(k.clone(), new);
            }
            None => {}
        },
        (Value::List(items), PathStep::Index(i)) => {
            if let Some(child) = items.get_mut(*i) {
                set_path(child, rest, new);
            }
        }
        (Value::Sensitive(inner), _) => set_path(inner, path, new),
        _ => {}
    }
}

pub fn ignore_changes(
    lc: &IgnoreChanges,
    schema: &BlockSchema,
    prior: &Value,
    proposed: Value,
) -> Value {
    match lc {
        IgnoreChanges::None => proposed,
        IgnoreChanges::All => {
            let mut out = proposed;
            for name in schema.attributes.keys() {
                if let Some(p) = AttrPath::attr(name.clone()).get(prior) {
                    set_path(&mut out, &[PathStep::Key(name.clone())], p.clone());
                }
            }
            out
        }
        IgnoreChanges::Paths(paths) => {
            let mut out = proposed;
            for (names, _) in paths {
                let path = AttrPath(names.iter().map(|n| PathStep::Key(n.clone())).collect());
                if let Some(p) = path.get(prior) {
                    set_path(&mut out, &path.0, p.clone());
                }
            }
            out
        }
    }
}

impl Planner {
    fn record(&self, c: ResourceChange) {
        if matches!(
            c.action,
            Action::Update | Action::DeleteThenCreate | Action::CreateThenDelete
        ) {
            lock(&self.changed_resources).insert(c.addr.without_key());
        }
        if c.mode() == ResourceMode::Managed && c.action != Action::NoOp {
            lock(&self.pending_resources).insert(c.addr.config_addr());
        }
        lock(&self.changes).push(c);
    }

    fn prior_instances(
        &self,
        abs: &AbsResourceAddr,
    ) -> Vec<(ResourceInstanceAddr, ResourceInstanceState)> {
        let prior = lock(&self.prior);
        prior
            .resources
            .range(abs.instance(InstanceKey::None)..)
            .take_while(|(a, _)| a.module == abs.module && a.resource == abs.resource)
            .map(|(a, s)| (a.clone(), s.clone()))
            .collect()
    }

    /// Reads the real object; records drift; returns the refreshed value (None: gone).
    async fn refresh(
        &self,
        addr: &ResourceInstanceAddr,
        state: &ResourceInstanceState,
        provider: &dyn Provider,
        ctx: &WalkCtx,
    ) -> Result<Option<Value>, ()> {
        let current = state_value(state);
        if !self.options.refresh
            || addr.resource.mode == ResourceMode::Data
            || ctx.is_deferred(&state.provider)
        {
            return Ok(Some(current));
        }
        match provider
            .read(ReadRequest {
                type_name: &addr.resource.type_,
                current: &current,
            })
            .await
        {
            Ok(resp) => {
                let refreshed = resp.state.map(|v| {
                    match provider.schema().resources.get(&addr.resource.type_) {
                        Some(s) => mark_schema_sensitive(v, &s.block),
                        None => v,
                    }
                });
                let drifted = match &refreshed {
                    None => Some((Action::Delete, None, "deleted outside flotilla")),
                    Some(v) if !diff_paths(&current, v).is_empty() => {
                        Some((Action::Update, Some(v.clone()), "changed outside flotilla"))
                    }
                    Some(_) => None,
                };
                if let Some((action, after, why)) = drifted {
                    lock(&self.drift).push(ResourceChange {
                        addr: addr.clone(),
                        prev_addr: None,
                        provider: state.provider.clone(),
                        action,
                        before: Some(current),
                        after,
                        replace_reasons: Vec::new(),
                        reason: Some(why.into()),
                        dependencies: state.dependencies.clone(),
                        create_before_destroy: state.create_before_destroy,
                        importing: None,
                        notes: Vec::new(),
                    });
                    let mut prior = lock(&self.prior);
                    match &refreshed {
                        Some(v) => {
                            if let Some(entry) = prior.resources.get_mut(addr) {
                                let (json, _, sens) = v.to_json_parts();
                                entry.attributes = json;
                                entry.sensitive = sens;
                            }
                        }
                        None => {
                            prior.resources.remove(addr);
                        }
                    }
                }
                Ok(refreshed)
            }
            Err(e) => {
                ctx.report(Diagnostic::error("cannot refresh resource").with_detail(format!("{addr}: {}", e.describe())).with_help("check that the object's provider can reach it, or pass -refresh=false to plan from recorded state"));
                Err(())
            }
        }
    }

    async fn plan_orphans(&self, ctx: &WalkCtx, targeting: bool) {
        let orphans: Vec<(ResourceInstanceAddr, ResourceInstanceState)> = {
            let prior = lock(&self.prior);
            let seen = lock(&self.seen);
            prior
                .resources
                .iter()
                .filter(|(a, _)| !seen.contains(*a))
                .map(|(a, s)| (a.clone(), s.clone()))
                .collect()
        };
        for (addr, state) in orphans {
            if targeting && !self.options.targets.iter().any(|t| t.contains(&addr)) {
                continue;
            }
            let Some(provider) = ctx.provider_or_default(&state.provider) else {
                ctx.report(Diagnostic::error("unknown provider in state").with_detail(format!("`{addr}` is managed by `{}`, which this flotilla does not have", state.provider)).with_help("use a flotilla build with that provider, or remove the entry with `flotilla state rm`"));
                continue;
            };
            let Ok(current) = self.refresh(&addr, &state, provider.as_ref(), ctx).await else {
                continue;
            };
            let Some(current) = current else { continue };
            if self.options.mode == PlanMode::RefreshOnly {
                continue;
            }
            let reason = if self.options.mode == PlanMode::Destroy {
                "destroy requested".to_string()
            } else if ctx
                .config
                .descendant(&addr.module.path())
                .is_some_and(|m| m.resources.contains_key(&addr.resource))
            {
                if ctx
                    .module_instances(&addr.module.path())
                    .contains(&addr.module)
                {
                    format!(
                        "`{}` no longer has the instance key {}",
                        addr.without_key(),
                        if addr.key == InstanceKey::None {
                            "(none)".into()
                        } else {
                            addr.key.to_string()
                        }
                    )
                } else {
                    format!("module instance `{}` no longer exists", addr.module)
                }
            } else {
                "its resource block was removed from the configuration".to_string()
            };
            self.record(ResourceChange {
                addr: addr.clone(),
                prev_addr: self.moved.get(&addr).cloned(),
                provider: state.provider.clone(),
                action: Action::Delete,
                before: Some(current),
                after: None,
                replace_reasons: Vec::new(),
                reason: Some(reason),
                dependencies: state.dependencies.clone(),
                create_before_destroy: state.create_before_destroy,
                importing: None,
                notes: Vec::new(),
            });
        }
    }

    fn replace_triggered(
        &self,
        ctx: &WalkCtx,
        inst: &ModuleInstance,
        r: &Resource,
    ) -> Option<String> {
        let changed = self
            .changed_resources
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for expr in &r.lifecycle.replace_triggered_by {
            for reference in references(expr).0 {
                if let Subject::Resource(addr) = reference.subject {
                    let abs = AbsResourceAddr {
                        module: inst.clone(),
                        resource: addr,
                    };
                    if changed.contains(&abs) {
                        let _ = ctx;
                        return Some(format!("replace_triggered_by: `{abs}` changes"));
                    }
                }
            }
        }
        None
    }
}

/// What every instance of one resource shares while it is planned.
#[derive(Clone)]
struct ResourcePlan {
    path: ModulePath,
    addr: flotilla_config::addr::ResourceAddr,
    provider_addr: flotilla_config::addr::ProviderConfigAddr,
    provider: Arc<dyn Provider>,
    schema: BlockSchema,
    /// The provider's configuration is known only after apply.
    deferred: bool,
    /// The provider block has `for_each`: each instance selects its own provider instance,
    /// and the fields above are the block's (see [`Planner::bind`]).
    keyed: bool,
    /// A data source that reads during apply.
    read_later: bool,
    /// `-target` names this resource itself (not just something that needs it).
    directly_targeted: bool,
    dependencies: Vec<String>,
}

/// An instance to plan: the index of its [`InstanceSet`] and its address.
type InstanceWork = (usize, ResourceInstanceAddr);

/// A planned instance: the value references see (none when it could not be refreshed).
type InstanceOutcome = (usize, InstanceKey, Option<Value>);

/// Below this many instances a resource is planned in its own task; above, in up to
/// `parallelism` tasks of at least this many instances each, so both cores (and, for
/// providers that wait on the network, several requests) work at once.
const INSTANCES_PER_TASK: usize = 32;

#[async_trait::async_trait]
impl ResourceHandler for Planner {
    async fn visit_resource(
        self: Arc<Self>,
        ctx: &Arc<WalkCtx>,
        path: &ModulePath,
        r: &Resource,
    ) -> bool {
        let config = Arc::clone(&ctx.config);
        let module = config.descendant(path).expect("resource module exists");
        let Some((provider_addr, provider, schema)) = ctx.resource_type(path, r) else {
            return false;
        };
        if self.options.mode == PlanMode::Destroy {
            return self.plan_destroy(ctx, path, r, provider.as_ref()).await;
        }
        let keyed = r.provider.as_ref().is_some_and(|p| p.key.is_some())
            || ctx.has_for_each(&provider_addr);
        // With `for_each` on the provider, the block's instances decide; any deferred one
        // makes a data source read during apply.
        let deferred = if keyed {
            lock(&ctx.deferred)
                .iter()
                .any(|a| a.block() == provider_addr)
        } else {
            ctx.is_deferred(&provider_addr)
        };
        let node = flotilla_graph::Node {
            module: path.clone(),
            kind: NodeKind::Resource(r.addr.clone()),
        };
        let res = Arc::new(ResourcePlan {
            path: path.clone(),
            addr: r.addr.clone(),
            // A data source reads during apply when what it reads may change first (its
            // dependencies are planned before it, so their changes are known here).
            read_later: r.addr.mode == ResourceMode::Data
                && (deferred || self.dependencies_change(ctx, module, r)),
            directly_targeted: self.direct_targets.contains(&node),
            dependencies: resource_dependencies(ctx, module, r),
            provider_addr,
            provider,
            schema,
            deferred,
            keyed,
        });
        let (sets, mut ok) = ctx.expand_instances(path, module, r);
        let mut work: Vec<InstanceWork> = Vec::new();
        {
            let mut seen = lock(&self.seen);
            for (i, set) in sets.iter().enumerate() {
                let abs = AbsResourceAddr {
                    module: set.inst.clone(),
                    resource: r.addr.clone(),
                };
                for key in set.expansion.keys() {
                    let addr = abs.instance(key);
                    seen.insert(addr.clone());
                    work.push((i, addr));
                }
            }
        }
        let sets = Arc::new(sets);
        let (outcomes, planned) = self.plan_instances(ctx, &res, &sets, work).await;
        ok &= planned;
        let mut values: Vec<BTreeMap<InstanceKey, Value>> =
            sets.iter().map(|_| BTreeMap::new()).collect();
        for (i, key, value) in outcomes {
            if let Some(v) = value {
                values[i].insert(key, v);
            }
        }
        for (set, values) in sets.iter().zip(values) {
            if r.lifecycle.prevent_destroy {
                let abs = AbsResourceAddr {
                    module: set.inst.clone(),
                    resource: r.addr.clone(),
                };
                for (addr, _) in self.prior_instances(&abs) {
                    if !set.expansion.contains(&addr.key) {
                        ctx.report(prevent_destroy_error(r, &addr));
                        ok = false;
                    }
                }
            }
            ctx.set_resource(&set.inst, &r.addr, set.expansion.aggregate(values));
        }
        ok
    }
}

fn prevent_destroy_error(r: &Resource, addr: &ResourceInstanceAddr) -> Diagnostic {
    Diagnostic::error("instance cannot be destroyed")
        .with_span(r.span.clone())
        .with_detail(format!("`{addr}` has `lifecycle {{ prevent_destroy = true }}`, but the plan would destroy it"))
        .with_help("if destroying it is intended, set `prevent_destroy = false` first; otherwise change the configuration so it is kept")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Planner {
    /// Plans instances, in this task when there are few and in several when there are
    /// many. Returns each instance's value and whether all went well.
    async fn plan_instances(
        self: &Arc<Self>,
        ctx: &Arc<WalkCtx>,
        res: &Arc<ResourcePlan>,
        sets: &Arc<Vec<InstanceSet>>,
        work: Vec<InstanceWork>,
    ) -> (Vec<InstanceOutcome>, bool) {
        let tasks = (work.len() / INSTANCES_PER_TASK).min(self.options.parallelism);
        if tasks < 2 {
            return self.plan_chunk(ctx, res, sets, work).await;
        }
        let per_task = work.len().div_ceil(tasks);
        let mut running = tokio::task::JoinSet::new();
        let mut rest = work;
        while !rest.is_empty() {
            let tail = rest.split_off(per_task.min(rest.len()));
            let chunk = std::mem::replace(&mut rest, tail);
            let (planner, ctx, res, sets) = (
                Arc::clone(self),
                Arc::clone(ctx),
                Arc::clone(res),
                Arc::clone(sets),
            );
            running.spawn(async move { planner.plan_chunk(&ctx, &res, &sets, chunk).await });
        }
        let mut outcomes = Vec::new();
        let mut ok = true;
        while let Some(joined) = running.join_next().await {
            let (mut part, part_ok) = match joined {
                Ok(r) => r,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            outcomes.append(&mut part);
            ok &= part_ok;
        }
        (outcomes, ok)
    }

    /// Plans instances one after another.
    async fn plan_chunk(
        &self,
        ctx: &WalkCtx,
        res: &ResourcePlan,
        sets: &[InstanceSet],
        work: Vec<InstanceWork>,
    ) -> (Vec<InstanceOutcome>, bool) {
        let config = Arc::clone(&ctx.config);
        let module = config
            .descendant(&res.path)
            .expect("resource module exists");
        let r = &module.resources[&res.addr];
        // The recorded states, copied under one lock.
        let priors: Vec<Option<ResourceInstanceState>> = {
            let prior = lock(&self.prior);
            work.iter()
                .map(|(_, addr)| prior.resources.get(addr).cloned())
                .collect()
        };
        let mut outcomes = Vec::with_capacity(work.len());
        let mut ok = true;
        for ((i, addr), prior_state) in work.into_iter().zip(priors) {
            let bound;
            let res = if res.keyed {
                match Self::bind(ctx, res, module, r, &sets[i], &addr) {
                    Ok(b) => {
                        bound = b;
                        &bound
                    }
                    Err(d) => {
                        ctx.report(d);
                        ok = false;
                        outcomes.push((i, addr.key, Some(Value::Unknown)));
                        continue;
                    }
                }
            } else {
                res
            };
            let (value, instance_ok) = self
                .plan_instance(ctx, res, module, r, &sets[i], &addr, prior_state.as_ref())
                .await;
            ok &= instance_ok;
            outcomes.push((i, addr.key, value));
        }
        (outcomes, ok)
    }

    /// The resource plan of one instance of a resource whose provider block has `for_each`:
    /// the provider instance its `provider = NAME.ALIAS[KEY]` selects.
    fn bind(
        ctx: &WalkCtx,
        res: &ResourcePlan,
        module: &Module,
        r: &Resource,
        set: &InstanceSet,
        addr: &ResourceInstanceAddr,
    ) -> Result<ResourcePlan, Diagnostic> {
        let provider_addr = ctx.instance_provider(
            &res.provider_addr,
            &set.inst,
            module,
            r,
            &addr.key,
            &set.expansion,
        )?;
        let provider = ctx
            .provider(&provider_addr)
            .unwrap_or_else(|| Arc::clone(&res.provider));
        Ok(ResourcePlan {
            deferred: ctx.is_deferred(&provider_addr),
            provider,
            provider_addr,
            keyed: false,
            ..res.clone()
        })
    }

    /// Plans one instance. Returns the value references see (none when it could not be
    /// refreshed) and whether it went well.
    #[allow(clippy::too_many_arguments)]
    async fn plan_instance(
        &self,
        ctx: &WalkCtx,
        res: &ResourcePlan,
        module: &Module,
        r: &Resource,
        set: &InstanceSet,
        addr: &ResourceInstanceAddr,
        prior_state: Option<&ResourceInstanceState>,
    ) -> (Option<Value>, bool) {
        let (inst, expansion, key) = (&set.inst, &set.expansion, &addr.key);
        let provider = res.provider.as_ref();
        let schema = &res.schema;
        let included = self.options.targets.is_empty()
            || !res.directly_targeted
            || self.options.targets.iter().any(|t| t.contains(addr));
        if !included {
            return (
                Some(prior_state.map(state_value).unwrap_or(Value::Unknown)),
                true,
            );
        }
        let cfg = match ctx.eval_instance(inst, module, r, key, expansion, schema) {
            Ok(v) => v,
            Err(ds) => {
                ctx.report_all(ds);
                return (Some(Value::Unknown), false);
            }
        };
        let invalid = provider.validate(&r.addr.type_, &cfg);
        if !invalid.is_empty() {
            for e in &invalid {
                ctx.report(crate::validate::provider_error(r, &addr.to_string(), e));
            }
            return (Some(Value::Unknown), false);
        }
        let mut ok = true;
        if !r.lifecycle.preconditions.is_empty() {
            let values_guard = ctx.values();
            let mut scope = ctx.scope(&values_guard, inst, module);
            set_instance_key(&mut scope, key, Some(expansion));
            let mut diags = Diagnostics::new();
            if !check_rules(
                &scope,
                module,
                &r.lifecycle.preconditions,
                "precondition",
                Some(addr),
                &mut diags,
            ) {
                ok = false;
            }
            drop(values_guard);
            ctx.report_all(diags);
        }
        let importing = match (prior_state, self.imports.get(addr)) {
            (None, Some((id, span))) => match provider
                .import(ImportRequest {
                    type_name: &r.addr.type_,
                    id,
                })
                .await
            {
                Ok(v) => Some((id.clone(), mark_schema_sensitive(v, schema))),
                Err(e) => {
                    ctx.report(
                        Diagnostic::error("cannot import")
                            .with_span(span.clone().unwrap_or_else(|| r.span.clone()))
                            .with_detail(format!("{addr} from {id:?}: {}", e.describe()))
                            .with_help("check the id (e.g. \"namespace/name\") and that the object exists where the provider points"),
                    );
                    return (Some(Value::Unknown), false);
                }
            },
            _ => None,
        };
        let refreshed = match prior_state {
            None => importing.as_ref().map(|(_, v)| v.clone()),
            Some(s) if res.deferred => Some(state_value(s)),
            Some(s) => match self.refresh(addr, s, provider, ctx).await {
                Ok(v) => v,
                Err(()) => return (None, false),
            },
        };
        let value = match r.addr.mode {
            ResourceMode::Data => {
                self.plan_data(
                    ctx,
                    addr,
                    &res.provider_addr,
                    provider,
                    schema,
                    cfg,
                    res.read_later,
                )
                .await
            }
            ResourceMode::Managed if res.deferred && self.options.mode != PlanMode::RefreshOnly => {
                Some(self.plan_deferred(r, addr, res, refreshed, cfg))
            }
            ResourceMode::Managed if self.options.mode == PlanMode::RefreshOnly => {
                if let Some(v) = &refreshed {
                    self.record(ResourceChange {
                        addr: addr.clone(),
                        prev_addr: self.moved.get(addr).cloned(),
                        provider: res.provider_addr.clone(),
                        action: Action::NoOp,
                        before: Some(v.clone()),
                        after: Some(v.clone()),
                        replace_reasons: Vec::new(),
                        reason: None,
                        dependencies: prior_state
                            .map(|s| s.dependencies.clone())
                            .unwrap_or_default(),
                        create_before_destroy: r.lifecycle.create_before_destroy,
                        importing: None,
                        notes: Vec::new(),
                    });
                }
                Some(refreshed.unwrap_or(Value::Unknown))
            }
            ResourceMode::Managed => {
                self.plan_managed(
                    ctx,
                    set,
                    module,
                    r,
                    addr,
                    res,
                    refreshed,
                    cfg,
                    prior_state.is_some_and(|s| s.tainted),
                    importing.map(|(id, _)| id),
                )
                .await
            }
        };
        match value {
            Some(v) => (Some(v), ok),
            None => (Some(Value::Unknown), false),
        }
    }

    /// Plans the destruction of every recorded instance of a resource (`-destroy`).
    async fn plan_destroy(
        &self,
        ctx: &WalkCtx,
        path: &ModulePath,
        r: &Resource,
        provider: &dyn Provider,
    ) -> bool {
        let mut ok = true;
        for inst in ctx.module_instances(path) {
            let abs = AbsResourceAddr {
                module: inst.clone(),
                resource: r.addr.clone(),
            };
            // What is recorded is what references see, so providers configured from
            // these resources (a new cluster's kubeconfig) can reach what they manage.
            let recorded = recorded_value(&lock(&self.prior), &abs);
            ctx.set_resource(&inst, &r.addr, recorded);
            for (addr, s) in self.prior_instances(&abs) {
                if !self.options.targets.is_empty()
                    && !self.options.targets.iter().any(|t| t.contains(&addr))
                {
                    continue;
                }
                if r.lifecycle.prevent_destroy {
                    ctx.report(prevent_destroy_error(r, &addr));
                    ok = false;
                    continue;
                }
                lock(&self.seen).insert(addr.clone());
                let Ok(Some(current)) = self.refresh(&addr, &s, provider, ctx).await else {
                    continue;
                };
                self.record(ResourceChange {
                    addr: addr.clone(),
                    prev_addr: self.moved.get(&addr).cloned(),
                    provider: s.provider.clone(),
                    action: Action::Delete,
                    before: Some(current),
                    after: None,
                    replace_reasons: Vec::new(),
                    reason: Some("destroy requested".into()),
                    dependencies: s.dependencies.clone(),
                    create_before_destroy: s.create_before_destroy,
                    importing: None,
                    notes: Vec::new(),
                });
            }
        }
        ok
    }
}

impl Planner {
    /// Whether a resource this one depends on has a planned change (so a data source reads
    /// what the change leaves, during apply).
    fn dependencies_change(&self, ctx: &WalkCtx, module: &Module, r: &Resource) -> bool {
        let deps = resource_dependencies(ctx, module, r);
        if deps.is_empty() {
            return false;
        }
        let pending = lock(&self.pending_resources);
        deps.iter().any(|d| pending.contains(d))
    }
}

/// The aggregate value of a resource's recorded instances, as references see it (`count`
/// instances as a list, `for_each` ones as a map).
pub fn recorded_value(state: &flotilla_state::State, abs: &AbsResourceAddr) -> Value {
    let recorded: BTreeMap<InstanceKey, Value> = state
        .resources
        .range(abs.instance(InstanceKey::None)..)
        .take_while(|(a, _)| a.module == abs.module && a.resource == abs.resource)
        .map(|(a, s)| (a.key.clone(), state_value(s)))
        .collect();
    let shape = match recorded.keys().next() {
        Some(InstanceKey::Int(_)) => Expansion::Count(recorded.len()),
        Some(InstanceKey::Str(_)) => Expansion::ForEach(BTreeMap::new()),
        _ => Expansion::Single,
    };
    shape.aggregate(recorded)
}

/// Why a resource whose provider is not configured yet is planned the way it is.
const DEFERRED: &str =
    "its provider's configuration is known only after apply; it is planned again then";

impl Planner {
    /// Plans a resource whose provider configuration is not known yet (it depends on a
    /// resource this apply creates, such as a new cluster's kubeconfig): nothing can be read
    /// or asked of the provider, so a new instance is a create and an existing one an update,
    /// with every computed attribute known after apply. Apply plans it again, for real, once
    /// the provider is configured.
    fn plan_deferred(
        &self,
        r: &Resource,
        addr: &ResourceInstanceAddr,
        res: &ResourcePlan,
        prior: Option<Value>,
        config: Value,
    ) -> Value {
        let schema = &res.schema;
        let planned = with_unknown_computed(
            schema,
            mark_schema_sensitive(proposed_new(schema, None, &config), schema),
        );
        self.record(ResourceChange {
            addr: addr.clone(),
            prev_addr: self.moved.get(addr).cloned(),
            provider: res.provider_addr.clone(),
            action: if prior.is_some() {
                Action::Update
            } else {
                Action::Create
            },
            before: prior,
            after: Some(planned.clone()),
            replace_reasons: Vec::new(),
            reason: Some(DEFERRED.into()),
            dependencies: res.dependencies.clone(),
            create_before_destroy: r.lifecycle.create_before_destroy,
            importing: None,
            notes: Vec::new(),
        });
        planned
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_managed(
        &self,
        ctx: &WalkCtx,
        set: &InstanceSet,
        module: &Module,
        r: &Resource,
        addr: &ResourceInstanceAddr,
        res: &ResourcePlan,
        prior: Option<Value>,
        config: Value,
        tainted: bool,
        importing: Option<String>,
    ) -> Option<Value> {
        let (inst, expansion, key) = (&set.inst, &set.expansion, &addr.key);
        let (provider, schema) = (res.provider.as_ref(), &res.schema);
        let type_name = r.addr.type_.as_str();
        let create_before_destroy = r.lifecycle.create_before_destroy
            || provider
                .schema()
                .resources
                .get(type_name)
                .is_some_and(|s| s.create_before_destroy);
        let mut proposed = proposed_new(schema, prior.as_ref(), &config);
        if let Some(p) = &prior {
            proposed = ignore_changes(&r.lifecycle.ignore_changes, schema, p, proposed);
        }
        let fail = |e: flotilla_provider::ProviderError| {
            ctx.report(
                Diagnostic::error("provider could not plan the resource")
                    .with_span(r.span.clone())
                    .with_detail(format!("{addr}: {}", e.describe()))
                    .with_help("check the resource's arguments"),
            );
        };
        let resp = match provider
            .plan_change(PlanRequest {
                type_name,
                prior: prior.as_ref(),
                proposed: &proposed,
                dependencies_pending: self.dependencies_change(ctx, module, r),
                applying: false,
            })
            .await
        {
            Ok(r) => r,
            Err(e) => {
                fail(e);
                return None;
            }
        };
        let mut reasons = resp.requires_replace;
        let mut notes = resp.notes;
        let mut reason = None;
        if prior.is_some() && self.options.replace.contains(addr) {
            reason = Some("requested with -replace".to_string());
        } else if prior.is_some() && tainted {
            reason = Some(
                "tainted: the last apply wrote it but did not finish (e.g. it never became ready)"
                    .to_string(),
            );
        } else if prior.is_some() {
            reason = self.replace_triggered(ctx, inst, r);
        }
        if reason.is_some() && reasons.is_empty() {
            reasons.push(ReplaceReason {
                path: AttrPath::default(),
                reason: reason.clone().unwrap_or_default(),
            });
        }
        let mut planned = mark_schema_sensitive(resp.planned, schema);
        let action = match &prior {
            None => Action::Create,
            Some(_) if !reasons.is_empty() => {
                if r.lifecycle.prevent_destroy {
                    ctx.report(prevent_destroy_error(r, addr));
                    return None;
                }
                match provider
                    .plan_change(PlanRequest {
                        type_name,
                        prior: None,
                        proposed: &config,
                        dependencies_pending: true,
                        applying: false,
                    })
                    .await
                {
                    Ok(created) => {
                        planned = mark_schema_sensitive(created.planned, schema);
                        notes = created.notes;
                    }
                    Err(e) => {
                        fail(e);
                        return None;
                    }
                }
                if create_before_destroy {
                    Action::CreateThenDelete
                } else {
                    Action::DeleteThenCreate
                }
            }
            Some(p) if diff_paths(p, &planned).is_empty() => Action::NoOp,
            Some(_) => Action::Update,
        };
        // Postconditions with `self` = the planned object (unknown parts are checked at apply).
        let at = InstanceAt {
            inst,
            module,
            resource: r,
            key,
            expansion,
        };
        if !ctx.check_postconditions(&at, &planned, addr) {
            return None;
        }
        self.record(ResourceChange {
            addr: addr.clone(),
            prev_addr: self.moved.get(addr).cloned(),
            provider: res.provider_addr.clone(),
            action,
            before: prior.clone(),
            after: Some(planned.clone()),
            replace_reasons: if action.is_replace() {
                reasons
            } else {
                Vec::new()
            },
            reason: if action.is_replace() { reason } else { None },
            dependencies: res.dependencies.clone(),
            create_before_destroy,
            importing,
            notes,
        });
        Some(if action == Action::NoOp {
            prior.unwrap_or(planned)
        } else {
            planned
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_data(
        &self,
        ctx: &WalkCtx,
        addr: &ResourceInstanceAddr,
        provider_addr: &flotilla_config::addr::ProviderConfigAddr,
        provider: &dyn Provider,
        schema: &BlockSchema,
        config: Value,
        pending: bool,
    ) -> Option<Value> {
        if config.contains_unknown() || pending {
            let after = with_unknown_computed(schema, config.clone());
            self.record(ResourceChange {
                addr: addr.clone(),
                prev_addr: None,
                provider: provider_addr.clone(),
                action: Action::Read,
                before: None,
                after: Some(after.clone()),
                replace_reasons: Vec::new(),
                reason: Some(if config.contains_unknown() {
                    "its configuration depends on values known only after apply".into()
                } else {
                    "it depends on resources this plan changes, or on a provider configured after apply"
                        .into()
                }),
                dependencies: Vec::new(),
                create_before_destroy: false,
                importing: None,
                notes: Vec::new(),
            });
            return Some(after);
        }
        match provider
            .read_data(ReadDataRequest {
                type_name: &addr.resource.type_,
                config: &config,
            })
            .await
        {
            Ok(v) => {
                let v = mark_schema_sensitive(v, schema);
                self.record(ResourceChange {
                    addr: addr.clone(),
                    prev_addr: None,
                    provider: provider_addr.clone(),
                    action: Action::NoOp,
                    before: None,
                    after: Some(v.clone()),
                    replace_reasons: Vec::new(),
                    reason: None,
                    dependencies: Vec::new(),
                    create_before_destroy: false,
                    importing: None,
                    notes: Vec::new(),
                });
                Some(v)
            }
            Err(e) => {
                ctx.report(
                    Diagnostic::error("cannot read data source")
                        .with_detail(format!("{addr}: {}", e.describe()))
                        .with_help("check the data source's arguments"),
                );
                None
            }
        }
    }
}

/// The resources a resource depends on, directly or through locals, variables and its
/// provider's configuration, in its module.
pub fn resource_dependencies(ctx: &WalkCtx, module: &Module, r: &Resource) -> Vec<String> {
    let g = &ctx.graph;
    let Some(me) = g.find(&flotilla_graph::Node {
        module: module.path.clone(),
        kind: NodeKind::Resource(r.addr.clone()),
    }) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<_> = g.dependencies(me).collect();
    let mut seen = HashSet::new();
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        match &g.node(n).kind {
            NodeKind::Resource(a) if a.mode == ResourceMode::Managed => {
                out.push(g.node(n).to_string())
            }
            NodeKind::Resource(_) => {}
            // A provider configured from resources (a cluster's kubeconfig) makes what it
            // manages depend on them: they are destroyed after it.
            _ => stack.extend(g.dependencies(n)),
        }
    }
    out.sort();
    out
}
