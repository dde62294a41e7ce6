//! The evaluation walk shared by plan and apply: module instances, `count`/`for_each`
//! expansion, scopes, and the evaluation of variables, locals, outputs, module calls and
//! provider configurations. Resource nodes are handed to a [`ResourceHandler`], which is where
//! plan and apply differ.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use flotilla_config::addr::{
    InstanceKey, ModuleInstance, ModulePath, ProviderConfigAddr, ResourceAddr, ResourceInstanceAddr,
};
use flotilla_config::{BlockBody, Expr, Module, Resource};
use flotilla_graph::{Graph, Node, NodeId, NodeKind, WalkOutcome};
use flotilla_lang::{EvalContext, Evaluator, Scope, Subject, Type, Value, convert};
use flotilla_provider::{BlockSchema, Nesting, Provider, ProviderRegistry};
use flotilla_syntax::{Diagnostic, Diagnostics, Span, did_you_mean};

/// A root variable value supplied by the user, with where it came from.
#[derive(Debug, Clone)]
pub struct InputValue {
    /// The value, before conversion to the variable's type.
    pub value: Value,
    /// Where it was set, when it came from a file.
    pub span: Option<Span>,
    /// Human description of the source (`-var`, `FLOTILLA_VAR_x`, `prod.auto.vars.hcl`).
    pub source: String,
}

/// How a resource or module call expands into instances.
#[derive(Debug, Clone, PartialEq)]
pub enum Expansion {
    /// No `count` or `for_each`.
    Single,
    /// `count = N`.
    Count(usize),
    /// `for_each`: keys and their `each.value`.
    ForEach(BTreeMap<String, Value>),
}

/// One resource instance being planned or applied: its module instance, module, resource
/// block, key and the expansion the key belongs to.
pub struct InstanceAt<'a> {
    /// The module instance.
    pub inst: &'a ModuleInstance,
    /// The module declaring the resource.
    pub module: &'a Module,
    /// The resource block.
    pub resource: &'a Resource,
    /// The instance key.
    pub key: &'a InstanceKey,
    /// The resource's expansion in `inst`.
    pub expansion: &'a Expansion,
}

/// One module instance of a resource and its expansion.
#[derive(Debug, Clone)]
pub struct InstanceSet {
    /// The module instance.
    pub inst: ModuleInstance,
    /// Its instances of the resource.
    pub expansion: Expansion,
}

impl Expansion {
    /// The instance keys, in order.
    pub fn keys(&self) -> Vec<InstanceKey> {
        match self {
            Expansion::Single => vec![InstanceKey::None],
            Expansion::Count(n) => (0..*n as i64).map(InstanceKey::Int).collect(),
            Expansion::ForEach(m) => m.keys().cloned().map(InstanceKey::Str).collect(),
        }
    }

    /// Whether `key` is one of the instance keys.
    pub fn contains(&self, key: &InstanceKey) -> bool {
        match (self, key) {
            (Expansion::Single, InstanceKey::None) => true,
            (Expansion::Count(n), InstanceKey::Int(i)) => usize::try_from(*i).is_ok_and(|i| i < *n),
            (Expansion::ForEach(m), InstanceKey::Str(s)) => m.contains_key(s),
            _ => false,
        }
    }

    /// The aggregate value of all instances, as references see it.
    pub fn aggregate(&self, mut values: BTreeMap<InstanceKey, Value>) -> Value {
        match self {
            Expansion::Single => values.remove(&InstanceKey::None).unwrap_or(Value::Null),
            Expansion::Count(_) => Value::List(values.into_values().collect()),
            Expansion::ForEach(_) => Value::Map(
                values
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        InstanceKey::Str(s) => Some((s, v)),
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }
}

/// Values computed so far in one module instance.
#[derive(Debug, Default)]
pub struct ModuleValues {
    /// Input variables.
    pub vars: HashMap<String, Value>,
    /// Local values.
    pub locals: HashMap<String, Value>,
    /// Outputs.
    pub outputs: HashMap<String, Value>,
    /// Resources (aggregate values: object, list or map of instances).
    pub resources: HashMap<ResourceAddr, Value>,
    /// How each module call expanded.
    pub calls: HashMap<String, Expansion>,
}

/// Every value computed during a walk.
#[derive(Debug, Default)]
pub struct Values {
    /// Per module instance.
    pub modules: HashMap<ModuleInstance, ModuleValues>,
    /// The instances of each static module path, once known.
    pub instances: HashMap<ModulePath, Vec<ModuleInstance>>,
}

/// Where `path.*` points, and which workspace `flotilla.workspace` names.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The root module directory.
    pub root: PathBuf,
    /// The working directory.
    pub cwd: PathBuf,
    /// The selected workspace (`flotilla.workspace`).
    pub workspace: String,
}

/// Resolves references from one module instance (optionally inside one resource instance).
pub struct InstanceScope<'a> {
    /// All values.
    pub values: &'a Values,
    /// The module instance we are in.
    pub module: &'a ModuleInstance,
    /// Its configuration.
    pub config: &'a Module,
    /// Path values.
    pub paths: &'a Paths,
    /// `count.index`, in a counted instance.
    pub count_index: Option<i64>,
    /// `each.key` / `each.value`, in a `for_each` instance.
    pub each: Option<(String, Value)>,
    /// `self`, in postconditions.
    pub self_value: Option<&'a Value>,
}

impl InstanceScope<'_> {
    fn not_available(span: &Span, what: &str, help: &str) -> Diagnostic {
        Diagnostic::error(format!("{what} is not available here"))
            .with_span(span.clone())
            .with_help(help.to_string())
    }
}

/// A value not computed yet (its node failed or is outside `-target`) reads as unknown.
fn unknown_if_pending(found: Option<&Value>) -> Cow<'_, Value> {
    match found {
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(Value::Unknown),
    }
}

impl Scope for InstanceScope<'_> {
    fn resolve(&self, subject: &Subject, span: &Span) -> Result<Cow<'_, Value>, Diagnostic> {
        let mv = self.values.modules.get(self.module);
        match subject {
            Subject::Var(n) => match mv.and_then(|m| m.vars.get(n)) {
                Some(v) => Ok(Cow::Borrowed(v)),
                None if self.config.variables.contains_key(n) => Ok(Cow::Owned(Value::Unknown)),
                None => {
                    let mut d = Diagnostic::error("reference to undeclared input variable")
                        .with_span(span.clone())
                        .with_detail(format!("no variable named `{n}` is declared"));
                    if let Some(s) =
                        did_you_mean(n, self.config.variables.keys().map(String::as_str))
                    {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    Err(d)
                }
            },
            Subject::Local(n) => Ok(unknown_if_pending(mv.and_then(|m| m.locals.get(n)))),
            Subject::Resource(addr) => {
                Ok(unknown_if_pending(mv.and_then(|m| m.resources.get(addr))))
            }
            Subject::Module { call, .. } => {
                let Some(expansion) = mv.and_then(|m| m.calls.get(call)) else {
                    return Ok(Cow::Owned(Value::Unknown));
                };
                let mut per_key = BTreeMap::new();
                for key in expansion.keys() {
                    let child = self.module.child(call, key.clone());
                    let outputs = self
                        .values
                        .modules
                        .get(&child)
                        .map(|m| {
                            m.outputs
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut obj: BTreeMap<String, Value> = outputs;
                    if let Some(child_cfg) = self.config.children.get(call) {
                        for name in child_cfg.outputs.keys() {
                            obj.entry(name.clone()).or_insert(Value::Unknown);
                        }
                    }
                    per_key.insert(key, Value::Map(obj));
                }
                Ok(Cow::Owned(expansion.aggregate(per_key)))
            }
            Subject::CountIndex => self
                .count_index
                .map(|i| Cow::Owned(Value::Number(flotilla_lang::Number::from(i))))
                .ok_or_else(|| {
                    Self::not_available(
                        span,
                        "`count.index`",
                        "use it only inside a resource or module with `count`",
                    )
                }),
            Subject::EachKey => self
                .each
                .as_ref()
                .map(|(k, _)| Cow::Owned(Value::String(k.clone())))
                .ok_or_else(|| {
                    Self::not_available(
                        span,
                        "`each.key`",
                        "use it only inside a resource or module with `for_each`",
                    )
                }),
            Subject::EachValue => self
                .each
                .as_ref()
                .map(|(_, v)| Cow::Owned(v.clone()))
                .ok_or_else(|| {
                    Self::not_available(
                        span,
                        "`each.value`",
                        "use it only inside a resource or module with `for_each`",
                    )
                }),
            Subject::Path(p) => {
                let dir = match p.as_str() {
                    "module" => self.config.dir.clone(),
                    "root" => self.paths.root.clone(),
                    _ => self.paths.cwd.clone(),
                };
                Ok(Cow::Owned(Value::String(dir.display().to_string())))
            }
            Subject::SelfRef => self.self_value.map(Cow::Borrowed).ok_or_else(|| {
                Self::not_available(span, "`self`", "`self` can only be used in postconditions")
            }),
            Subject::Flotilla(_) => Ok(Cow::Owned(Value::string(self.paths.workspace.clone()))),
        }
    }
}

/// Plan and apply decide what to do with resources; everything else is shared.
#[async_trait::async_trait]
pub trait ResourceHandler: Send + Sync {
    /// Handles one resource node (all its instances in all module instances).
    /// Returns false if it failed (diagnostics recorded in the context).
    async fn visit_resource(
        self: Arc<Self>,
        ctx: &Arc<WalkCtx>,
        module: &ModulePath,
        resource: &Resource,
    ) -> bool;
}

/// Shared state of one walk over the graph.
pub struct WalkCtx {
    /// The configuration.
    pub config: Arc<Module>,
    /// Its graph.
    pub graph: Arc<Graph>,
    /// Providers linked into the binary.
    pub registry: ProviderRegistry,
    /// `path.*` values.
    pub paths: Paths,
    /// Root variable values supplied by the user.
    pub inputs: BTreeMap<String, InputValue>,
    /// Computed values.
    pub values: RwLock<Values>,
    /// Configured provider instances.
    pub providers: Mutex<HashMap<ProviderConfigAddr, Arc<dyn Provider>>>,
    /// Each provider block's evaluated arguments (unknowns included), for providers'
    /// cross-resource review of the plan.
    pub provider_configs: Mutex<Vec<(ProviderConfigAddr, Value)>>,
    /// Provider configurations that depend on values known only after apply: their
    /// instances exist but are not configured, and their resources are planned again during
    /// apply, once the configuration is known.
    pub deferred: Mutex<HashSet<ProviderConfigAddr>>,
    /// Problems found.
    pub diags: Mutex<Diagnostics>,
    /// Root output values.
    pub root_outputs: Mutex<BTreeMap<String, Value>>,
    /// Set on Ctrl-C: nothing new starts.
    pub stop: Arc<AtomicBool>,
    /// Evaluate without configuring any provider (a desired-state diff): every provider
    /// configuration is treated as deferred.
    pub offline: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WalkCtx {
    /// A context ready to walk.
    pub fn new(
        config: Arc<Module>,
        graph: Arc<Graph>,
        registry: ProviderRegistry,
        paths: Paths,
        inputs: BTreeMap<String, InputValue>,
        stop: Arc<AtomicBool>,
    ) -> WalkCtx {
        let mut values = Values::default();
        values
            .instances
            .insert(ModulePath::root(), vec![ModuleInstance::root()]);
        values
            .modules
            .insert(ModuleInstance::root(), ModuleValues::default());
        WalkCtx {
            config,
            graph,
            registry,
            paths,
            inputs,
            values: RwLock::new(values),
            providers: Mutex::new(HashMap::new()),
            provider_configs: Mutex::new(Vec::new()),
            deferred: Mutex::new(HashSet::new()),
            diags: Mutex::new(Diagnostics::new()),
            root_outputs: Mutex::new(BTreeMap::new()),
            stop,
            offline: false,
        }
    }

    /// Records a diagnostic.
    pub fn report(&self, d: Diagnostic) {
        lock(&self.diags).push(d);
    }

    /// Takes every diagnostic recorded so far. One about a file of a child module says where
    /// that module is called from (each enclosing call, innermost first): an error inside a
    /// standard-library module points at the user's `addon "istio"` block too.
    pub fn take_diags(&self) -> Diagnostics {
        let diags = std::mem::take(&mut *lock(&self.diags));
        if self.config.children.is_empty() {
            return diags;
        }
        let mut files: HashMap<flotilla_syntax::FileId, ModulePath> = HashMap::new();
        for m in self.config.all_modules() {
            if m.path.is_root() {
                continue;
            }
            let spans = m
                .resources
                .values()
                .map(|r| &r.span)
                .chain(m.outputs.values().map(|o| &o.span))
                .chain(m.variables.values().map(|v| &v.span))
                .chain(m.module_calls.values().map(|c| &c.span))
                .chain(m.providers.values().map(|p| &p.span));
            for span in spans {
                files.entry(span.file).or_insert_with(|| m.path.clone());
            }
        }
        Diagnostics(
            diags
                .0
                .into_iter()
                .map(|d| {
                    let Some(path) = d.span.as_ref().and_then(|s| files.get(&s.file)) else {
                        return d;
                    };
                    let mut d = d;
                    let mut at = path.clone();
                    while let Some(parent) = at.parent() {
                        let name = at.0.last().cloned().unwrap_or_default();
                        if let Some(call) = self
                            .config
                            .descendant(&parent)
                            .and_then(|m| m.module_calls.get(&name))
                        {
                            d = d.with_related(
                                call.span.clone(),
                                format!("in {}", flotilla_config::call_address(&name)),
                            );
                        }
                        at = parent;
                    }
                    d
                })
                .collect(),
        )
    }

    /// Records several diagnostics.
    pub fn report_all(&self, ds: impl IntoIterator<Item = Diagnostic>) {
        lock(&self.diags).extend(ds);
    }

    /// Locks the values.
    pub fn values(&self) -> RwLockReadGuard<'_, Values> {
        self.values.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the values to change them.
    pub fn values_mut(&self) -> RwLockWriteGuard<'_, Values> {
        self.values.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The configured provider instance for an address.
    pub fn provider(&self, addr: &ProviderConfigAddr) -> Option<Arc<dyn Provider>> {
        lock(&self.providers).get(addr).cloned()
    }

    /// Whether a provider configuration is known only after apply (see [`WalkCtx::deferred`]).
    pub fn is_deferred(&self, addr: &ProviderConfigAddr) -> bool {
        lock(&self.deferred).contains(addr)
    }

    /// A provider for a state entry whose configuration may be gone: the configured one if
    /// present, else a fresh default instance of the same provider.
    pub fn provider_or_default(&self, addr: &ProviderConfigAddr) -> Option<Arc<dyn Provider>> {
        self.provider(addr)
            .or_else(|| self.registry.instantiate(&addr.name))
    }

    /// Checks a resource instance's postconditions with `self` = `value`, reporting what
    /// fails; whether all held.
    pub fn check_postconditions(
        &self,
        at: &InstanceAt<'_>,
        value: &Value,
        addr: &ResourceInstanceAddr,
    ) -> bool {
        if at.resource.lifecycle.postconditions.is_empty() {
            return true;
        }
        let values = self.values();
        let mut scope = self.scope(&values, at.inst, at.module);
        set_instance_key(&mut scope, at.key, Some(at.expansion));
        scope.self_value = Some(value);
        let mut diags = Diagnostics::new();
        let ok = check_rules(
            &scope,
            at.module,
            &at.resource.lifecycle.postconditions,
            "postcondition",
            Some(addr),
            &mut diags,
        );
        drop(values);
        self.report_all(diags);
        ok
    }

    /// Walks the graph (or the given subset), calling `handler` for resource nodes.
    pub async fn run(
        self: &Arc<Self>,
        handler: Arc<dyn ResourceHandler>,
        nodes: Option<&HashSet<NodeId>>,
        parallelism: usize,
    ) -> WalkOutcome {
        let ctx = Arc::clone(self);
        flotilla_graph::walk(
            &self.graph,
            nodes,
            parallelism,
            Arc::clone(&self.stop),
            move |id| {
                let ctx = Arc::clone(&ctx);
                let handler = Arc::clone(&handler);
                async move { ctx.visit(id, handler).await }
            },
        )
        .await
    }

    /// Visits one configuration node (what [`WalkCtx::run`] does for each node), for
    /// callers that walk a graph of their own (apply's execution graph).
    pub async fn visit(self: Arc<Self>, id: NodeId, handler: Arc<dyn ResourceHandler>) -> bool {
        let node: Node = self.graph.node(id).clone();
        let config = Arc::clone(&self.config);
        let Some(module) = config.descendant(&node.module) else {
            return false;
        };
        match &node.kind {
            NodeKind::Variable(name) => self.visit_variable(module, name),
            NodeKind::Local(name) => self.for_each_instance(
                module,
                |ev, _| ev.eval_expr(&module.locals[name].expr),
                |mv, v| {
                    mv.locals.insert(name.clone(), v);
                },
            ),
            NodeKind::Output(name) => self.visit_output(module, name),
            NodeKind::ModuleCall(name) => self.visit_module_call(module, name),
            NodeKind::Provider(addr) => self.visit_provider(module, addr).await,
            NodeKind::Resource(addr) => {
                handler
                    .visit_resource(&self, &node.module, &module.resources[addr])
                    .await
            }
        }
    }

    /// The instances of a static module path (known once its call has been visited).
    pub fn module_instances(&self, path: &ModulePath) -> Vec<ModuleInstance> {
        self.values()
            .instances
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Evaluates something in every instance of `module` and stores the result.
    fn for_each_instance(
        &self,
        module: &Module,
        eval: impl Fn(&mut Evaluator<'_>, &ModuleInstance) -> Result<Value, Diagnostic>,
        store: impl Fn(&mut ModuleValues, Value),
    ) -> bool {
        let mut ok = true;
        for inst in self.module_instances(&module.path) {
            let result = {
                let values = self.values();
                let scope = self.scope(&values, &inst, module);
                let ectx = EvalContext::in_dir(Default::default(), module.files());
                let mut ev = Evaluator::new(&scope, &ectx);
                eval(&mut ev, &inst)
            };
            match result {
                Ok(v) => store(self.values_mut().modules.entry(inst).or_default(), v),
                Err(d) => {
                    self.report(d);
                    ok = false;
                }
            }
        }
        ok
    }

    /// A scope for a module instance (no `count`/`each`/`self`).
    pub fn scope<'a>(
        &'a self,
        values: &'a Values,
        inst: &'a ModuleInstance,
        module: &'a Module,
    ) -> InstanceScope<'a> {
        InstanceScope {
            values,
            module: inst,
            config: module,
            paths: &self.paths,
            count_index: None,
            each: None,
            self_value: None,
        }
    }

    fn visit_variable(&self, module: &Module, name: &str) -> bool {
        let var = &module.variables[name];
        let ty = match &var.type_expr {
            Some(t) => match flotilla_lang::parse_type(t.file, &t.expr) {
                Ok(ty) => ty,
                Err(d) => {
                    self.report(d);
                    return false;
                }
            },
            None => Type::Any,
        };
        let mut ok = true;
        for inst in self.module_instances(&module.path) {
            match self.variable_value(module, &inst, var, &ty) {
                Ok(v) => {
                    let v = if var.sensitive { v.sensitive() } else { v };
                    if !self.check_validations(module, &inst, var, &v) {
                        ok = false;
                    }
                    self.values_mut()
                        .modules
                        .entry(inst)
                        .or_default()
                        .vars
                        .insert(name.to_string(), v);
                }
                Err(d) => {
                    self.report(d);
                    ok = false;
                    self.values_mut()
                        .modules
                        .entry(inst)
                        .or_default()
                        .vars
                        .insert(name.to_string(), Value::Unknown);
                }
            }
        }
        ok
    }

    fn variable_value(
        &self,
        module: &Module,
        inst: &ModuleInstance,
        var: &flotilla_config::Variable,
        ty: &Type,
    ) -> Result<Value, Diagnostic> {
        let (raw, span, source): (Option<Value>, Span, String) = if inst.is_root() {
            match self.inputs.get(&var.name) {
                Some(input) => (
                    Some(input.value.clone()),
                    input.span.clone().unwrap_or_else(|| var.span.clone()),
                    input.source.clone(),
                ),
                None => (None, var.span.clone(), String::new()),
            }
        } else {
            let parent = inst.parent().expect("child instance has a parent");
            let parent_cfg = self
                .config
                .descendant(&parent.path())
                .expect("parent module");
            let call_name = &inst.0.last().expect("child step").name;
            let call = &parent_cfg.module_calls[call_name];
            match call.args.iter().find(|a| a.name == var.name) {
                Some(arg) => {
                    let key = inst.0.last().expect("child step").key.clone();
                    let v = {
                        let values = self.values();
                        let mut scope = self.scope(&values, &parent, parent_cfg);
                        set_instance_key(
                            &mut scope,
                            &key,
                            values
                                .modules
                                .get(&parent)
                                .and_then(|m| m.calls.get(call_name)),
                        );
                        let ectx = EvalContext::in_dir(arg.expr.file, parent_cfg.files());
                        Evaluator::new(&scope, &ectx).eval_expr(&arg.expr)?
                    };
                    let from = match call_name.split_once('.') {
                        Some((kind, label)) => format!("`{kind} \"{label}\"`"),
                        None => format!("module `{call_name}`"),
                    };
                    (Some(v), arg.expr.span(), from)
                }
                None => (None, var.span.clone(), String::new()),
            }
        };
        let value = match raw {
            Some(v) => v,
            None => match &var.default {
                Some(d) => {
                    let ectx = EvalContext::in_dir(d.file, module.files());
                    Evaluator::new(&flotilla_lang::EmptyScope, &ectx).eval_expr(d)?
                }
                None => {
                    return Err(Diagnostic::error("no value for required variable")
                        .with_span(var.span.clone())
                        .with_detail(format!("variable `{}` has no default and no value was given", var.name))
                        .with_help(format!(
                            "pass -var '{0}=VALUE', set FLOTILLA_VAR_{0}, or add `{0} = VALUE` to a *.auto.vars.hcl file",
                            var.name
                        )));
                }
            },
        };
        if value.is_null() && !var.nullable {
            return Err(Diagnostic::error("required variable is null")
                .with_span(span)
                .with_detail(format!(
                    "variable `{}` is declared with `nullable = false`",
                    var.name
                ))
                .with_help("give it a non-null value"));
        }
        convert(value, ty).map_err(|e| {
            let from = if source.is_empty() {
                String::new()
            } else {
                format!(" (from {source})")
            };
            Diagnostic::error("invalid value for variable")
                .with_span(span)
                .with_detail(format!("variable `{}` must be {ty}{from}: {e}", var.name))
                .with_help(format!(
                    "change the value to match the declared type `{ty}`"
                ))
        })
    }

    fn check_validations(
        &self,
        module: &Module,
        inst: &ModuleInstance,
        var: &flotilla_config::Variable,
        value: &Value,
    ) -> bool {
        let mut ok = true;
        for rule in &var.validations {
            let mut only_self = ModuleValues::default();
            only_self.vars.insert(var.name.clone(), value.clone());
            let mut values = Values::default();
            values.modules.insert(inst.clone(), only_self);
            let scope = self.scope(&values, inst, module);
            let ectx = EvalContext::in_dir(rule.condition.file, module.files());
            let mut ev = Evaluator::new(&scope, &ectx);
            match ev.eval_expr(&rule.condition).map(|v| v.unmark().0) {
                Ok(Value::Bool(true)) | Ok(Value::Unknown) => {}
                Ok(Value::Bool(false)) => {
                    let msg = ev
                        .eval_expr(&rule.error_message)
                        .map(|m| match m.unmark().0 {
                            Value::String(s) => s,
                            other => flotilla_lang::render_value(&other),
                        });
                    self.report(
                        Diagnostic::error("invalid value for variable")
                            .with_span(rule.condition.span())
                            .with_detail(msg.unwrap_or_else(|d| d.to_string()))
                            .with_help(format!(
                                "this validation rule of `var.{}` failed; change the value",
                                var.name
                            )),
                    );
                    ok = false;
                }
                Ok(other) => {
                    self.report(
                        Diagnostic::error("invalid validation condition")
                            .with_span(rule.condition.span())
                            .with_detail(format!(
                                "a condition must be true or false, got {}",
                                other.type_name()
                            )),
                    );
                    ok = false;
                }
                Err(d) => {
                    self.report(d.with_help(format!(
                        "a validation rule may only refer to `var.{}`",
                        var.name
                    )));
                    ok = false;
                }
            }
        }
        ok
    }

    fn visit_output(&self, module: &Module, name: &str) -> bool {
        let out = &module.outputs[name];
        let is_root = module.path.is_root();
        let mut ok = self.check_conditions(module, &out.preconditions, None, "precondition");
        ok &= self.for_each_instance(
            module,
            |ev, _| {
                let v = ev.eval_expr(&out.value)?;
                if v.contains_sensitive() && !out.sensitive && is_root {
                    return Err(Diagnostic::error("output refers to sensitive values")
                        .with_span(out.value.span())
                        .with_detail(format!("output `{name}` would show a value marked sensitive"))
                        .with_help("add `sensitive = true` to the output block, or wrap the value in nonsensitive() if you are sure it is safe to show"));
                }
                Ok(if out.sensitive { v.sensitive() } else { v })
            },
            |mv, v| {
                mv.outputs.insert(name.to_string(), v);
            },
        );
        if is_root
            && let Some(v) = self
                .values()
                .modules
                .get(&ModuleInstance::root())
                .and_then(|m| m.outputs.get(name))
        {
            lock(&self.root_outputs).insert(name.to_string(), v.clone());
        }
        ok
    }

    /// Evaluates pre/postconditions in every instance of `module`; false ones are errors.
    pub fn check_conditions(
        &self,
        module: &Module,
        rules: &[flotilla_config::CheckRule],
        self_value: Option<&Value>,
        kind: &str,
    ) -> bool {
        let mut ok = true;
        for inst in self.module_instances(&module.path) {
            let values = self.values();
            let mut scope = self.scope(&values, &inst, module);
            scope.self_value = self_value;
            ok &= check_rules(&scope, module, rules, kind, None, &mut lock(&self.diags));
        }
        ok
    }

    fn visit_module_call(&self, module: &Module, name: &str) -> bool {
        let call = &module.module_calls[name];
        let mut ok = true;
        let mut child_instances = Vec::new();
        for inst in self.module_instances(&module.path) {
            let result = {
                let values = self.values();
                let scope = self.scope(&values, &inst, module);
                expand(
                    &scope,
                    module.files(),
                    call.count.as_ref(),
                    call.for_each.as_ref(),
                )
            };
            match result {
                Ok(expansion) => {
                    for key in expansion.keys() {
                        let child = inst.child(name, key);
                        self.values_mut().modules.entry(child.clone()).or_default();
                        child_instances.push(child);
                    }
                    self.values_mut()
                        .modules
                        .entry(inst)
                        .or_default()
                        .calls
                        .insert(name.to_string(), expansion);
                }
                Err(d) => {
                    self.report(d);
                    ok = false;
                }
            }
        }
        self.values_mut()
            .instances
            .insert(module.path.child(name), child_instances);
        ok
    }

    async fn visit_provider(&self, module: &Module, addr: &ProviderConfigAddr) -> bool {
        let Some(provider) = self.registry.instantiate(&addr.name) else {
            let mut d = Diagnostic::error("unknown provider")
                .with_detail(format!("flotilla has no provider named `{}`", addr.name));
            if let Some(block) = module
                .providers
                .get(&(addr.name.clone(), addr.alias.clone()))
            {
                d = d.with_span(block.span.clone());
            } else if let Some(r) = module
                .resources
                .values()
                .find(|r| r.addr.implied_provider() == addr.name && r.provider.is_none())
            {
                d = d.with_span(r.span.clone()).with_label(format!(
                    "resource type `{}` implies provider `{}`",
                    r.addr.type_, addr.name
                ));
            }
            d = match did_you_mean(&addr.name, self.registry.names()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!(
                    "available providers: {}",
                    self.registry.names().collect::<Vec<_>>().join(", ")
                )),
            };
            self.report(d);
            return false;
        };
        let block = module
            .providers
            .get(&(addr.name.clone(), addr.alias.clone()));
        let Some(block) = block else {
            return self
                .configure_provider(module, addr, provider, Value::Map(BTreeMap::new()))
                .await;
        };
        let instances = self.module_instances(&module.path);
        let Some(inst) = instances.first() else {
            return true;
        };
        // `for_each`: one configuration per key, each evaluated with `each.key`/`each.value`.
        let expansion = match &block.for_each {
            None => Expansion::Single,
            Some(f) => {
                let values = self.values();
                let scope = self.scope(&values, inst, module);
                let expanded = expand(&scope, module.files(), None, Some(f));
                drop(values);
                match expanded {
                    Ok(e) => e,
                    Err(d) => {
                        self.report(d.with_help(
                            "a provider's `for_each` needs keys known at plan time (values may be unknown)",
                        ));
                        return false;
                    }
                }
            }
        };
        let mut ok = true;
        for key in expansion.keys() {
            let config_value = {
                let values = self.values();
                let mut scope = self.scope(&values, inst, module);
                set_instance_key(&mut scope, &key, Some(&expansion));
                let mut diags = Diagnostics::new();
                let v = eval_body(
                    &scope,
                    module,
                    &block.body,
                    &provider.schema().provider,
                    &block.span,
                    &format!("provider \"{}\"", addr.name),
                    &mut diags,
                );
                drop(values);
                if diags.has_errors() {
                    self.report_all(diags);
                    ok = false;
                    continue;
                }
                v
            };
            let instance = if block.for_each.is_some() {
                self.registry
                    .instantiate(&addr.name)
                    .unwrap_or_else(|| Arc::clone(&provider))
            } else {
                Arc::clone(&provider)
            };
            ok &= self
                .configure_provider(module, &addr.instance(key), instance, config_value)
                .await;
        }
        ok
    }

    /// Configures one provider instance (or defers it when its configuration is unknown).
    async fn configure_provider(
        &self,
        module: &Module,
        addr: &ProviderConfigAddr,
        provider: Arc<dyn Provider>,
        config_value: Value,
    ) -> bool {
        lock(&self.provider_configs).push((addr.clone(), config_value.clone()));
        if config_value.contains_unknown() || self.offline {
            lock(&self.deferred).insert(addr.clone());
        } else if let Err(e) = provider.configure(&config_value).await {
            let mut d =
                Diagnostic::error("cannot configure provider").with_detail(format!("{addr}: {e}"));
            if let Some(block) = module
                .providers
                .get(&(addr.name.clone(), addr.alias.clone()))
            {
                d = d.with_span(block.span.clone());
            }
            self.report(d.with_help("check the provider block's settings"));
            return false;
        }
        lock(&self.providers).insert(addr.clone(), provider);
        true
    }

    /// For a resource in module instance `inst` whose provider comes from a module call's
    /// `providers = { NAME = PARENT.ALIAS[KEY] }`: the calling module instance, the call's
    /// name and the key expression.
    fn keyed_mapping<'c>(
        &'c self,
        inst: &ModuleInstance,
        r: &Resource,
    ) -> Option<(ModuleInstance, String, &'c Expr)> {
        let (mut name, mut alias) = match &r.provider {
            Some(p) => (p.name.clone(), p.alias.clone()),
            None => (r.addr.implied_provider().to_string(), None),
        };
        let mut at = inst.clone();
        loop {
            let m = self.config.descendant(&at.path())?;
            if m.providers.contains_key(&(name.clone(), alias.clone())) {
                return None;
            }
            let parent = at.parent()?;
            let call_name = at.0.last()?.name.clone();
            let call = self
                .config
                .descendant(&parent.path())?
                .module_calls
                .get(&call_name)?;
            if alias.is_none()
                && let Some((_, mapped)) = call.providers.iter().find(|(k, _)| *k == name)
            {
                if let Some(k) = &mapped.key {
                    return Some((parent, call_name, k));
                }
                name = mapped.name.clone();
                alias = mapped.alias.clone();
            }
            at = parent;
        }
    }

    /// Whether the provider block at `addr` has `for_each`.
    pub fn has_for_each(&self, addr: &ProviderConfigAddr) -> bool {
        self.config
            .descendant(&addr.module)
            .and_then(|m| m.providers.get(&(addr.name.clone(), addr.alias.clone())))
            .is_some_and(|b| b.for_each.is_some())
    }

    /// The provider instance a resource instance uses: the resource's provider block, and
    /// for a block with `for_each` the instance its `provider = NAME.ALIAS[KEY]` selects,
    /// evaluated in the instance's scope.
    pub fn instance_provider(
        &self,
        block_addr: &ProviderConfigAddr,
        inst: &ModuleInstance,
        module: &Module,
        r: &Resource,
        key: &InstanceKey,
        expansion: &Expansion,
    ) -> Result<ProviderConfigAddr, Diagnostic> {
        let has_for_each = self.has_for_each(block_addr);
        let mut key_expr = r.provider.as_ref().and_then(|p| p.key.as_ref());
        // Or a module call above maps this module's provider to `NAME.ALIAS[KEY]`: the key
        // is evaluated in that call's instance (its `each.key`).
        let mut key_scope: Option<(ModuleInstance, String)> = None;
        if key_expr.is_none()
            && let Some((parent, call_name, k)) = self.keyed_mapping(inst, r)
        {
            key_expr = Some(k);
            key_scope = Some((parent, call_name));
        }
        let shown = || {
            format!(
                "{}.{}",
                block_addr.name,
                block_addr.alias.as_deref().unwrap_or("")
            )
        };
        match (has_for_each, key_expr) {
            (false, None) => Ok(block_addr.clone()),
            (false, Some(k)) => Err(Diagnostic::error("provider has no instances")
                .with_span(k.span())
                .with_detail(format!(
                    "`{}` has no `for_each`, so it has no `[KEY]`",
                    shown()
                ))
                .with_help(format!("write `provider = {}`", shown()))),
            (true, None) => Err(Diagnostic::error("provider instance not selected")
                .with_span(
                    r.provider
                        .as_ref()
                        .map(|p| p.span.clone())
                        .unwrap_or_else(|| r.span.clone()),
                )
                .with_detail(format!(
                    "`{}` has `for_each`: `{}` must say which instance it uses",
                    shown(),
                    r.addr
                ))
                .with_help(format!("write `provider = {}[each.key]`", shown()))),
            (true, Some(k)) => {
                let values = self.values();
                let v = match &key_scope {
                    None => {
                        let mut scope = self.scope(&values, inst, module);
                        set_instance_key(&mut scope, key, Some(expansion));
                        let ectx = EvalContext::in_dir(k.file, module.files());
                        Evaluator::new(&scope, &ectx).eval_expr(k)?
                    }
                    Some((parent, call_name)) => {
                        let parent_module = self
                            .config
                            .descendant(&parent.path())
                            .expect("module exists");
                        let call_key = inst
                            .0
                            .get(parent.0.len())
                            .map(|s| s.key.clone())
                            .unwrap_or_default();
                        let call_expansion = values
                            .modules
                            .get(parent)
                            .and_then(|m| m.calls.get(call_name))
                            .cloned()
                            .unwrap_or(Expansion::Single);
                        let mut scope = self.scope(&values, parent, parent_module);
                        set_instance_key(&mut scope, &call_key, Some(&call_expansion));
                        let ectx = EvalContext::in_dir(k.file, parent_module.files());
                        Evaluator::new(&scope, &ectx).eval_expr(k)?
                    }
                };
                let instance_key = match v.unmark().0 {
                    Value::String(s) => InstanceKey::Str(s),
                    Value::Number(n) if n.to_usize().is_some() => {
                        InstanceKey::Int(n.to_i64().unwrap_or_default())
                    }
                    other => {
                        return Err(Diagnostic::error("invalid provider instance key")
                            .with_span(k.span())
                            .with_detail(format!(
                                "the key must be a string known at plan time, got {}",
                                flotilla_lang::render_value(&other)
                            ))
                            .with_help(
                                "use a key of the provider's `for_each`, such as `each.key`",
                            ));
                    }
                };
                let addr = block_addr.instance(instance_key);
                if !lock(&self.providers).contains_key(&addr) {
                    let mut known: Vec<String> = lock(&self.providers)
                        .keys()
                        .filter(|a| a.block() == *block_addr)
                        .map(|a| a.key.to_string())
                        .collect();
                    known.sort();
                    return Err(Diagnostic::error("no such provider instance")
                        .with_span(k.span())
                        .with_detail(format!(
                            "`{}` has no instance {} (its `for_each` has {})",
                            shown(),
                            addr.key,
                            if known.is_empty() {
                                "no keys".to_string()
                            } else {
                                known.join(", ")
                            }
                        ))
                        .with_help("select a key the provider's `for_each` has"));
                }
                Ok(addr)
            }
        }
    }

    /// Evaluates `count`/`for_each` of a resource in one module instance.
    pub fn expand_resource(
        &self,
        inst: &ModuleInstance,
        module: &Module,
        r: &Resource,
    ) -> Result<Expansion, Diagnostic> {
        let values = self.values();
        let scope = self.scope(&values, inst, module);
        expand(
            &scope,
            module.files(),
            r.count.as_ref(),
            r.for_each.as_ref(),
        )
    }

    /// Expands a resource in every instance of its module. Instances whose `count` or
    /// `for_each` cannot be evaluated are reported and left out (the flag is then false).
    pub fn expand_instances(
        &self,
        path: &ModulePath,
        module: &Module,
        r: &Resource,
    ) -> (Vec<InstanceSet>, bool) {
        let mut ok = true;
        let mut sets = Vec::new();
        for inst in self.module_instances(path) {
            match self.expand_resource(&inst, module, r) {
                Ok(expansion) => sets.push(InstanceSet { inst, expansion }),
                Err(d) => {
                    self.report(d);
                    ok = false;
                }
            }
        }
        (sets, ok)
    }

    /// Evaluates one resource instance's body against its schema.
    pub fn eval_instance(
        &self,
        inst: &ModuleInstance,
        module: &Module,
        r: &Resource,
        key: &InstanceKey,
        expansion: &Expansion,
        schema: &BlockSchema,
    ) -> Result<Value, Diagnostics> {
        let values = self.values();
        let mut scope = self.scope(&values, inst, module);
        set_instance_key(&mut scope, key, Some(expansion));
        let mut diags = Diagnostics::new();
        let v = eval_body(
            &scope,
            module,
            &r.body,
            schema,
            &r.span,
            &r.addr.to_string(),
            &mut diags,
        );
        diags.into_result(v)
    }

    /// The provider configuration, provider instance and schema of a resource, reporting why
    /// when one is missing.
    pub fn resource_type(
        &self,
        path: &ModulePath,
        r: &Resource,
    ) -> Option<(ProviderConfigAddr, Arc<dyn Provider>, BlockSchema)> {
        let provider_addr = match flotilla_graph::resolve_provider(&self.config, path, r) {
            Ok(p) => p,
            Err(d) => {
                self.report(d);
                return None;
            }
        };
        let provider = match self.provider(&provider_addr) {
            Some(p) => p,
            // A block with `for_each` has only keyed instances; each resource instance binds
            // to one (`instance_provider`), and this one only serves the schema.
            None if self.has_for_each(&provider_addr) => {
                self.registry.instantiate(&provider_addr.name)?
            }
            None => return None,
        };
        let types = match r.addr.mode {
            flotilla_config::addr::ResourceMode::Managed => &provider.schema().resources,
            flotilla_config::addr::ResourceMode::Data => &provider.schema().data_sources,
        };
        let Some(schema) = types.get(&r.addr.type_) else {
            self.report(crate::validate::unknown_type(r, &provider_addr.name, types));
            return None;
        };
        let schema = schema.block.clone();
        Some((provider_addr, provider, schema))
    }

    /// Stores the aggregate value of a resource in a module instance.
    pub fn set_resource(&self, inst: &ModuleInstance, addr: &ResourceAddr, value: Value) {
        self.values_mut()
            .modules
            .entry(inst.clone())
            .or_default()
            .resources
            .insert(addr.clone(), value);
    }

    /// Replaces one instance's value inside the resource's recorded value (a key of its
    /// map, an element of its list), in place: what apply does after each instance of a
    /// resource whose instances move at different times. `false` (nothing changed) when
    /// there is no recorded value of that shape to update; publish the whole one then.
    pub fn set_resource_instance(
        &self,
        inst: &ModuleInstance,
        addr: &ResourceAddr,
        key: &InstanceKey,
        value: Value,
    ) -> bool {
        let mut values = self.values_mut();
        let Some(current) = values
            .modules
            .get_mut(inst)
            .and_then(|m| m.resources.get_mut(addr))
        else {
            return false;
        };
        match (current, key) {
            (Value::Map(m), InstanceKey::Str(k)) if m.contains_key(k) => {
                m.insert(k.clone(), value);
                true
            }
            (Value::List(l), InstanceKey::Int(i)) if (*i as usize) < l.len() => {
                l[*i as usize] = value;
                true
            }
            _ => false,
        }
    }
}

/// Sets `count.index` or `each` on a scope for the instance `key`.
pub fn set_instance_key(
    scope: &mut InstanceScope<'_>,
    key: &InstanceKey,
    expansion: Option<&Expansion>,
) {
    match key {
        InstanceKey::Int(i) => scope.count_index = Some(*i),
        InstanceKey::Str(k) => {
            let v = match expansion {
                Some(Expansion::ForEach(m)) => m.get(k).cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            };
            scope.each = Some((k.clone(), v));
        }
        InstanceKey::None => {}
    }
}

/// Evaluates conditions; reports false ones, naming `instance` when the rules are a resource
/// instance's. Unknown conditions pass (checked again at apply).
pub fn check_rules(
    scope: &InstanceScope<'_>,
    module: &Module,
    rules: &[flotilla_config::CheckRule],
    kind: &str,
    instance: Option<&ResourceInstanceAddr>,
    diags: &mut Diagnostics,
) -> bool {
    let mut ok = true;
    for rule in rules {
        let ectx = EvalContext::in_dir(rule.condition.file, module.files());
        let mut ev = Evaluator::new(scope, &ectx);
        match ev.eval_expr(&rule.condition).map(|v| v.unmark().0) {
            Ok(Value::Bool(true)) | Ok(Value::Unknown) => {}
            Ok(Value::Bool(false)) => {
                let msg = ev
                    .eval_expr(&rule.error_message)
                    .map(|m| match m.unmark().0 {
                        Value::String(s) => s,
                        other => flotilla_lang::render_value(&other),
                    })
                    .unwrap_or_else(|d| d.to_string());
                let msg = match instance {
                    Some(addr) => format!("{addr}: {msg}"),
                    None => msg,
                };
                diags.push(
                    Diagnostic::error(format!("{kind} failed"))
                        .with_span(rule.condition.span())
                        .with_detail(msg)
                        .with_help(format!(
                            "this {kind} must hold; fix the configuration or the values it checks"
                        )),
                );
                ok = false;
            }
            Ok(other) => {
                diags.push(
                    Diagnostic::error(format!("invalid {kind}"))
                        .with_span(rule.condition.span())
                        .with_detail(format!(
                            "a condition must be true or false, got {}",
                            other.type_name()
                        )),
                );
                ok = false;
            }
            Err(d) => {
                diags.push(d);
                ok = false;
            }
        }
    }
    ok
}

/// Evaluates `count` / `for_each`.
pub fn expand(
    scope: &InstanceScope<'_>,
    dir: flotilla_config::Dir<'_>,
    count: Option<&Expr>,
    for_each: Option<&Expr>,
) -> Result<Expansion, Diagnostic> {
    if let Some(c) = count {
        let ectx = EvalContext::in_dir(c.file, dir);
        let v = Evaluator::new(scope, &ectx).eval_expr(c)?;
        let (v, _) = v.unmark();
        return match v {
            Value::Number(n) if n.to_usize().is_some() => {
                Ok(Expansion::Count(n.to_usize().unwrap_or_default()))
            }
            Value::Unknown => Err(Diagnostic::error("invalid count argument")
                .with_span(c.span())
                .with_detail("the value of `count` depends on values known only after apply")
                .with_help("derive `count` from values known at plan time, or apply the resources it depends on first with -target")),
            other => Err(Diagnostic::error("invalid count argument")
                .with_span(c.span())
                .with_detail(format!("`count` must be a whole number of zero or more, got {}", flotilla_lang::render_value(&other)))
                .with_help("use a number such as `count = 3` or `count = length(var.names)`")),
        };
    }
    let Some(f) = for_each else {
        return Ok(Expansion::Single);
    };
    let ectx = EvalContext::in_dir(f.file, dir);
    let v = Evaluator::new(scope, &ectx).eval_expr(f)?;
    let unknown_keys = || {
        Diagnostic::error("invalid for_each argument")
            .with_span(f.span())
            .with_detail("the keys of `for_each` depend on values known only after apply, so flotilla cannot know which instances to plan")
            .with_help("use keys known at plan time (values may be unknown, keys may not), or apply the resources they depend on first with -target")
    };
    if v.is_sensitive() {
        return Err(Diagnostic::error("invalid for_each argument")
            .with_span(f.span())
            .with_detail("sensitive values cannot be used as `for_each` keys, because instance addresses are shown in plans")
            .with_help("use nonsensitive() on the keys if they are not secret"));
    }
    match v {
        Value::Unknown => Err(unknown_keys()),
        Value::Map(m) => Ok(Expansion::ForEach(m)),
        Value::Set(items) | Value::List(items) if matches!(v_kind(&items), Some(true)) => {
            let mut m = BTreeMap::new();
            for item in items {
                match item {
                    Value::String(s) => {
                        m.insert(s.clone(), Value::String(s));
                    }
                    Value::Unknown => return Err(unknown_keys()),
                    _ => unreachable!("checked by v_kind"),
                }
            }
            Ok(Expansion::ForEach(m))
        }
        Value::Set(items) | Value::List(items) if items.iter().any(Value::is_unknown) => {
            Err(unknown_keys())
        }
        other => Err(Diagnostic::error("invalid for_each argument")
            .with_span(f.span())
            .with_detail(format!(
                "`for_each` needs a map or a set of strings, got {}",
                other.type_name()
            ))
            .with_help(
                "convert a list of strings with toset(...), or build a map with a `for` expression",
            )),
    }
}

/// `Some(true)` when every element is a string or unknown.
fn v_kind(items: &[Value]) -> Option<bool> {
    Some(
        items
            .iter()
            .all(|i| matches!(i, Value::String(_) | Value::Unknown)),
    )
}

/// Evaluates a body against a schema: every attribute converted to its type, nested blocks as
/// objects or lists, unset attributes null, sensitive attributes marked. Problems go to `diags`;
/// the shape (names, blocks, required arguments) is checked by [`crate::validate::check_body`].
pub fn eval_body(
    scope: &dyn Scope,
    module: &Module,
    body: &BlockBody,
    schema: &BlockSchema,
    block_span: &Span,
    what: &str,
    diags: &mut Diagnostics,
) -> Value {
    crate::validate::check_body(body, schema, block_span, what, diags);
    eval_known(scope, module, body, schema, diags)
}

/// Evaluates the attributes and blocks the schema knows, skipping the ones `check_body` reports.
fn eval_known(
    scope: &dyn Scope,
    module: &Module,
    body: &BlockBody,
    schema: &BlockSchema,
    diags: &mut Diagnostics,
) -> Value {
    let mut out = BTreeMap::new();
    for attr in &body.attrs {
        let Some(a) = schema
            .attributes
            .get(&attr.name)
            .filter(|a| a.required || a.optional)
        else {
            continue;
        };
        let ectx = EvalContext::in_dir(attr.expr.file, module.files());
        match Evaluator::new(scope, &ectx).eval_expr(&attr.expr) {
            Ok(v) => match convert(v, &a.ty) {
                Ok(v) => {
                    let v = if a.sensitive { v.sensitive() } else { v };
                    out.insert(attr.name.clone(), v);
                }
                Err(e) => diags.push(
                    Diagnostic::error("incorrect attribute value type")
                        .with_span(attr.expr.span())
                        .with_detail(format!("`{}` must be {}: {e}", attr.name, a.ty))
                        .with_help(format!("change the value to a {}", a.ty)),
                ),
            },
            Err(d) => diags.push(d),
        }
    }
    let mut nested: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for block in &body.blocks {
        if let Some(b) = schema.blocks.get(&block.kind) {
            let v = eval_known(scope, module, &block.body, &b.block, diags);
            nested.entry(block.kind.clone()).or_default().push(v);
        }
    }
    for name in schema.attributes.keys() {
        out.entry(name.clone()).or_insert(Value::Null);
    }
    for (name, b) in &schema.blocks {
        let items = nested.remove(name).unwrap_or_default();
        let v = match b.nesting {
            Nesting::List => Value::List(items),
            Nesting::Single => items.into_iter().next().unwrap_or(Value::Null),
        };
        out.insert(name.clone(), v);
    }
    Value::Map(out)
}

/// A handler that gives resources the values recorded in state, changing nothing
/// (`flotilla console`).
pub struct StateValues {
    /// The state to read from.
    pub state: flotilla_state::State,
}

#[async_trait::async_trait]
impl ResourceHandler for StateValues {
    async fn visit_resource(
        self: Arc<Self>,
        ctx: &Arc<WalkCtx>,
        path: &ModulePath,
        r: &Resource,
    ) -> bool {
        let config = Arc::clone(&ctx.config);
        let module = config.descendant(path).expect("resource module exists");
        for inst in ctx.module_instances(path) {
            let Ok(expansion) = ctx.expand_resource(&inst, module, r) else {
                continue;
            };
            let mut values = BTreeMap::new();
            for key in expansion.keys() {
                let addr = flotilla_config::addr::ResourceInstanceAddr {
                    module: inst.clone(),
                    resource: r.addr.clone(),
                    key: key.clone(),
                };
                let v = self
                    .state
                    .resources
                    .get(&addr)
                    .map(crate::state_value)
                    .unwrap_or(Value::Unknown);
                values.insert(key, v);
            }
            ctx.set_resource(&inst, &r.addr, expansion.aggregate(values));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instance_is_republished_in_place_or_not_at_all() {
        let module = Module::default();
        let (graph, _) = flotilla_graph::build(&module);
        let ctx = WalkCtx::new(
            Arc::new(module),
            Arc::new(graph),
            ProviderRegistry::new(),
            Paths {
                root: ".".into(),
                cwd: ".".into(),
                workspace: "default".into(),
            },
            BTreeMap::new(),
            Arc::new(AtomicBool::new(false)),
        );
        let a: ResourceInstanceAddr = "builtin_data.x[\"a\"]".parse().unwrap();
        let (inst, addr) = (&a.module, &a.resource);
        let key = |k: &str| InstanceKey::Str(k.into());
        // Nothing recorded yet: the caller publishes the whole value.
        assert!(!ctx.set_resource_instance(inst, addr, &key("a"), Value::int(1)));
        ctx.set_resource(
            inst,
            addr,
            Value::object([("a", Value::Unknown), ("b", Value::int(2))]),
        );
        assert!(ctx.set_resource_instance(inst, addr, &key("a"), Value::int(1)));
        // A key the value does not have, or the wrong shape of key: not in place.
        assert!(!ctx.set_resource_instance(inst, addr, &key("c"), Value::int(3)));
        assert!(!ctx.set_resource_instance(inst, addr, &InstanceKey::Int(0), Value::int(3)));
        let value = |ctx: &WalkCtx| ctx.values().modules[inst].resources[addr].clone();
        assert_eq!(
            value(&ctx),
            Value::object([("a", Value::int(1)), ("b", Value::int(2))])
        );
        ctx.set_resource(
            inst,
            addr,
            Value::List(vec![Value::Unknown, Value::Unknown]),
        );
        assert!(ctx.set_resource_instance(inst, addr, &InstanceKey::Int(1), Value::int(7)));
        assert!(!ctx.set_resource_instance(inst, addr, &InstanceKey::Int(2), Value::int(8)));
        assert_eq!(
            value(&ctx),
            Value::List(vec![Value::Unknown, Value::int(7)])
        );
    }

    #[test]
    fn an_expansion_contains_exactly_its_keys() {
        let keys = |e: &Expansion| e.keys();
        let each = Expansion::ForEach(BTreeMap::from([
            ("a".to_string(), Value::Null),
            ("b".to_string(), Value::Null),
        ]));
        for e in [Expansion::Single, Expansion::Count(3), each] {
            for key in keys(&e) {
                assert!(e.contains(&key), "{key:?}");
            }
            for other in [
                InstanceKey::None,
                InstanceKey::Int(-1),
                InstanceKey::Int(3),
                InstanceKey::Str("c".into()),
            ] {
                assert_eq!(e.contains(&other), keys(&e).contains(&other), "{other:?}");
            }
        }
    }
}
