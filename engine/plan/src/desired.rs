//! The desired state of a configuration, evaluated without providers or state, and the diff
//! of two desired states (`flotilla diff --base REV`).
//!
//! Every resource instance's arguments are evaluated as the planner would, but no provider is
//! configured or asked anything and no state is read: attributes only infrastructure knows
//! (computed ones, data sources) are unknown. This is what a pull request from a fork, which
//! has no credentials, can still show.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use flotilla_config::addr::{
    ModulePath, ProviderConfigAddr, ResourceInstanceAddr, ResourceMode, TargetAddr,
};
use flotilla_config::{Module, Resource};
use flotilla_graph::Graph;
use flotilla_lang::Value;
use flotilla_provider::ProviderRegistry;
use flotilla_syntax::{Diagnostic, Diagnostics};

use crate::eval::{InputValue, Paths, ResourceHandler, WalkCtx};
use crate::{Action, ResourceChange, moved_address};

/// One resource instance as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredInstance {
    /// The provider configuration that would manage it.
    pub provider: ProviderConfigAddr,
    /// Its arguments; computed attributes and anything derived from them are unknown.
    pub value: Value,
    /// The resources it depends on (configuration addresses).
    pub dependencies: Vec<String>,
}

/// Every resource instance a configuration declares, by address.
pub type Desired = BTreeMap<ResourceInstanceAddr, DesiredInstance>;

struct Collector {
    out: Mutex<Desired>,
}

#[async_trait]
impl ResourceHandler for Collector {
    async fn visit_resource(
        self: Arc<Self>,
        ctx: &Arc<WalkCtx>,
        path: &ModulePath,
        r: &Resource,
    ) -> bool {
        let config = Arc::clone(&ctx.config);
        let module = config.descendant(path).expect("resource module exists");
        let Some((provider, _, schema)) = ctx.resource_type(path, r) else {
            return false;
        };
        let dependencies = crate::resource_dependencies(ctx, module, r);
        let (sets, mut ok) = ctx.expand_instances(path, module, r);
        for crate::eval::InstanceSet { inst, expansion } in sets {
            let mut values = BTreeMap::new();
            for key in expansion.keys() {
                let value = if r.addr.mode == ResourceMode::Data {
                    Value::Unknown
                } else {
                    match ctx.eval_instance(&inst, module, r, &key, &expansion, &schema) {
                        Ok(cfg) => {
                            let v = crate::mark_schema_sensitive(
                                crate::planner::with_unknown_computed(&schema, cfg),
                                &schema,
                            );
                            let addr = ResourceInstanceAddr {
                                module: inst.clone(),
                                resource: r.addr.clone(),
                                key: key.clone(),
                            };
                            self.out.lock().unwrap_or_else(|e| e.into_inner()).insert(
                                addr,
                                DesiredInstance {
                                    provider: provider.clone(),
                                    value: v.clone(),
                                    dependencies: dependencies.clone(),
                                },
                            );
                            v
                        }
                        Err(ds) => {
                            ctx.report_all(ds);
                            ok = false;
                            Value::Unknown
                        }
                    }
                };
                values.insert(key, value);
            }
            ctx.set_resource(&inst, &r.addr, expansion.aggregate(values));
        }
        ok
    }
}

/// Evaluates a configuration's desired state. Root variables without a value are unknown.
pub async fn desired_state(
    config: Arc<Module>,
    graph: Arc<Graph>,
    registry: ProviderRegistry,
    paths: Paths,
    mut inputs: BTreeMap<String, InputValue>,
) -> Result<(Desired, Diagnostics), Diagnostics> {
    for (name, var) in &config.variables {
        if var.default.is_none() && !inputs.contains_key(name) {
            inputs.insert(
                name.clone(),
                InputValue {
                    value: Value::Unknown,
                    span: None,
                    source: "no value (unknown in a desired-state diff)".into(),
                },
            );
        }
    }
    let mut ctx = WalkCtx::new(
        config,
        graph,
        registry,
        paths,
        inputs,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    ctx.offline = true;
    let ctx = Arc::new(ctx);
    let collector = Arc::new(Collector {
        out: Mutex::new(BTreeMap::new()),
    });
    ctx.run(collector.clone(), None, 1).await;
    let mut diags = ctx.take_diags();
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    let out = std::mem::take(&mut *collector.out.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((out, diags))
}

/// The changes from `base` to `head`, as plan changes: creates for added instances, deletes
/// for removed ones, updates for changed arguments, and moves (`prev_addr`) where `head`'s
/// root `moved` blocks say so. Unknown values count as equal to each other.
pub fn diff_desired(
    base: &Desired,
    head: &Desired,
    head_config: &Module,
) -> (Vec<ResourceChange>, Vec<Diagnostic>) {
    let mut base: Desired = base.clone();
    let mut moved: BTreeMap<ResourceInstanceAddr, ResourceInstanceAddr> = BTreeMap::new();
    let mut diags = Vec::new();
    for m in &head_config.moved {
        let (Ok(from), Ok(to)) = (m.from.parse::<TargetAddr>(), m.to.parse::<TargetAddr>()) else {
            diags.push(
                Diagnostic::error("invalid `moved` address")
                    .with_span(m.span.clone())
                    .with_help("write addresses like `builtin_data.a`, `builtin_data.a[0]` or `module.net`"),
            );
            continue;
        };
        let renames: Vec<_> = base
            .keys()
            .filter_map(|a| moved_address(&from, &to, a).map(|n| (a.clone(), n)))
            .filter(|(_, n)| !base.contains_key(n))
            .collect();
        for (old, new) in renames {
            if let Some(d) = base.remove(&old) {
                let original = moved.remove(&old).unwrap_or(old);
                moved.insert(new.clone(), original);
                base.insert(new, d);
            }
        }
    }
    let addrs: std::collections::BTreeSet<&ResourceInstanceAddr> =
        base.keys().chain(head.keys()).collect();
    let mut changes = Vec::new();
    for addr in addrs {
        let (b, h) = (base.get(addr), head.get(addr));
        let prev_addr = moved.get(addr).filter(|_| h.is_some()).cloned();
        let action = match (b, h) {
            (None, Some(_)) => Action::Create,
            (Some(_), None) => Action::Delete,
            (Some(b), Some(h)) if same(&b.value, &h.value) => Action::NoOp,
            (Some(_), Some(_)) => Action::Update,
            (None, None) => continue,
        };
        if action == Action::NoOp && prev_addr.is_none() {
            continue;
        }
        let reason = match action {
            Action::Delete => {
                Some("its resource block was removed from the configuration".to_string())
            }
            _ => None,
        };
        let either = h.or(b).expect("one side exists");
        // A removed instance that was moved is reported under its original address.
        let addr = match (action, moved.get(addr)) {
            (Action::Delete, Some(original)) => original.clone(),
            _ => addr.clone(),
        };
        changes.push(ResourceChange {
            addr,
            prev_addr,
            provider: either.provider.clone(),
            action,
            before: b.map(|d| d.value.clone()),
            after: h.map(|d| d.value.clone()),
            replace_reasons: Vec::new(),
            reason,
            dependencies: either.dependencies.clone(),
            create_before_destroy: false,
            importing: None,
            notes: Vec::new(),
        });
    }
    changes.sort_by(|a, b| a.addr.cmp(&b.addr));
    (changes, diags)
}

/// Equal for a diff: unknowns match unknowns (both sides come from infrastructure).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Unknown, Value::Unknown) => true,
        (Value::Sensitive(x), Value::Sensitive(y)) => same(x, y),
        (Value::Map(x), Value::Map(y)) => {
            let keys: HashSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => same(p, q),
                (None, Some(Value::Null)) | (Some(Value::Null), None) => true,
                _ => false,
            })
        }
        (Value::List(x), Value::List(y)) | (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => flotilla_lang::values_equal(a, b),
    }
}
