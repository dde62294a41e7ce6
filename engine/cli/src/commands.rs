//! The commands: each returns the process exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flotilla_apply::ApplyInput;
use flotilla_config::addr::{ResourceInstanceAddr, TargetAddr};
use flotilla_lang::{EvalContext, Evaluator, Value, render_value};
use flotilla_plan::eval::{Paths, StateValues, WalkCtx};
use flotilla_plan::inputs::VarArg;
use flotilla_plan::{Plan, PlanInput, PlanMode, PlanOptions};
use flotilla_provider::{ProviderHost, ProviderRegistry};
use flotilla_render::{Style, render_plan};
use flotilla_state::State;
use flotilla_syntax::{Diagnostic, SourceMap};

use crate::output::{PrintProgress, Ui};
use crate::workspace::{self, Workspace};
use crate::{
    ApplyArgs, Command, FmtArgs, GraphArgs, ImportArgs, OutputArgs, PlanArgs, ShowArgs, VarArgs,
};

/// Runs one command.
pub async fn run(command: Command, ui: &Ui, host: &Arc<ProviderHost>) -> u8 {
    match command {
        Command::Init(a) => crate::modules::init(ui, host, a).await,
        Command::Modules(a) => crate::modules::list(ui, a.json),
        Command::Module(crate::ModuleCommand::Publish { dir, target }) => {
            crate::modules::publish(ui, &dir, &target).await
        }
        Command::Validate(a) => validate(ui, a.json).await,
        Command::Fmt(a) => fmt(ui, a),
        Command::Plan(a) => plan_apply(ui, host, a, None, Op::Plan).await,
        Command::Apply(ApplyArgs { plan, plan_file }) => {
            plan_apply(ui, host, plan, plan_file, Op::Apply).await
        }
        Command::Destroy(a) => plan_apply(ui, host, a, None, Op::Destroy).await,
        Command::Show(a) => show(ui, host, a),
        Command::Output(a) => output(ui, host, a),
        Command::State(c) => crate::state::state(ui, host, c),
        Command::Workspace(c) => crate::state::workspace(ui, host, c),
        Command::ForceUnlock(a) => crate::state::force_unlock(ui, host, a),
        Command::Rollout(c) => crate::rollout::rollout(ui, host, c),
        Command::Graph(a) => graph(ui, host, a),
        Command::Diff(a) => crate::diff::diff(ui, a).await,
        Command::Console(a) => console(ui, host, a).await,
        Command::Import(a) => import(ui, host, a).await,
        Command::Sandbox(c) => crate::sandbox::run(ui, c).await,
        Command::Version => {
            ui.out(&format!("flotilla v{}\n", env!("CARGO_PKG_VERSION")));
            0
        }
    }
}

pub(crate) fn error(ui: &Ui, d: Diagnostic) -> u8 {
    ui.diags(&[d], &SourceMap::new());
    1
}

/// The part of `init` after modules are installed: the configuration loads, providers, and
/// the backend (migrating state when the backend block changed).
pub(crate) fn init(ui: &Ui, host: &Arc<ProviderHost>, args: &crate::InitArgs) -> u8 {
    if let Err(code) = crate::state::init_backend(ui, host, args) {
        return code;
    }
    let ws = tri!(workspace::load(ui, &env(host, &VarArgs::default())));
    let registry = workspace::offline_registry();
    let diags = flotilla_plan::validate_static(&ws.config, &registry);
    ui.diags(&diags.0, &ws.sources);
    if diags.has_errors() {
        return 1;
    }
    if let Err(e) = std::fs::create_dir_all(".flotilla") {
        return error(
            ui,
            Diagnostic::error("cannot create .flotilla").with_detail(e.to_string()),
        );
    }
    let mut used: Vec<String> = ws
        .graph
        .inner
        .node_weights()
        .filter_map(|n| match &n.kind {
            flotilla_graph::NodeKind::Provider(p) => Some(p.name.clone()),
            _ => None,
        })
        .collect();
    used.sort();
    used.dedup();
    for p in &used {
        ui.out(&format!("- provider \"{p}\": built in\n"));
    }
    ui.out(&format!(
        "- state: {} (workspace \"{}\")\n\n{}\n",
        ws.backend.describe(),
        ws.workspace,
        ui.green("flotilla has been successfully initialized!")
    ));
    ui.out("\nRun `flotilla plan` to see what flotilla would change.\n");
    0
}

async fn validate(ui: &Ui, json: bool) -> u8 {
    let dir = PathBuf::from(".");
    let mut sources = SourceMap::new();
    let (module, mut diags) = workspace::load_config(&dir, &mut sources);
    if let Some(m) = module {
        let (graph, graph_diags) = flotilla_graph::build(&m);
        diags.extend(graph_diags);
        diags.extend(flotilla_plan::validate_static(
            &m,
            &workspace::offline_registry(),
        ));
        if !diags.has_errors() && uses_domain_blocks(&m) {
            diags.extend(evaluate_offline(m, graph).await);
        }
    }
    let ok = !diags.has_errors();
    if json {
        let items = flotilla_render::json::diagnostics_json(&diags.0, &sources);
        let doc = serde_json::json!({ "format_version": "1.0", "valid": ok, "error_count": diags.iter().filter(|d| d.is_error()).count(), "diagnostics": items });
        ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    } else {
        ui.diags(&diags.0, &sources);
        if ok {
            ui.out(&format!(
                "{} The configuration is valid.\n",
                ui.green("Success!")
            ));
        }
    }
    if ok { 0 } else { 1 }
}

fn uses_domain_blocks(m: &flotilla_config::Module) -> bool {
    m.all_modules()
        .iter()
        .any(|m| m.module_calls.keys().any(|k| k.contains('.')))
}

/// The checks domain blocks make in their modules' preconditions and types (an addon for
/// members its fleet lacks, a value of the wrong type), evaluated offline as `flotilla diff`
/// does, every root variable without a value unknown. Errors that only unknown values cause
/// (keys known only after apply) are left to `plan`, which has the values.
async fn evaluate_offline(
    config: flotilla_config::Module,
    graph: flotilla_graph::Graph,
) -> Vec<Diagnostic> {
    let paths = Paths {
        root: PathBuf::from("."),
        cwd: PathBuf::from("."),
        workspace: crate::backend::selected_workspace(std::path::Path::new(".")),
    };
    let evaluated = flotilla_plan::desired::desired_state(
        Arc::new(config),
        Arc::new(graph),
        workspace::offline_registry(),
        paths,
        Default::default(),
    )
    .await;
    match evaluated {
        Ok(_) => Vec::new(),
        Err(diags) => diags
            .0
            .into_iter()
            .filter(|d| {
                !d.detail
                    .as_deref()
                    .is_some_and(|t| t.contains("known only after apply"))
            })
            .collect(),
    }
}

fn fmt(ui: &Ui, args: FmtArgs) -> u8 {
    let roots = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths
    };
    let mut files = Vec::new();
    for r in roots {
        if r.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&r)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "hcl"))
                .collect();
            found.sort();
            files.extend(
                found
                    .into_iter()
                    .map(|p| p.strip_prefix("./").map(PathBuf::from).unwrap_or(p)),
            );
        } else {
            files.push(r);
        }
    }
    let mut code = 0;
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                ui.err(&format!("Error: cannot read {}: {e}", f.display()));
                code = 1;
                continue;
            }
        };
        match crate::fmt::format_hcl(&text) {
            Ok(out) if out == text => {}
            Ok(out) => {
                ui.out(&format!("{}\n", f.display()));
                if args.diff {
                    let diff = similar::TextDiff::from_lines(&text, &out);
                    ui.out(
                        &diff
                            .unified_diff()
                            .header(&f.display().to_string(), &f.display().to_string())
                            .to_string(),
                    );
                }
                if args.check {
                    code = code.max(3);
                } else if let Err(e) = std::fs::write(&f, out) {
                    ui.err(&format!("Error: cannot write {}: {e}", f.display()));
                    code = 1;
                }
            }
            Err(msg) => {
                ui.err(&format!("Error: {}: {msg}", f.display()));
                code = 1;
            }
        }
    }
    code
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Plan,
    Apply,
    Destroy,
}

/// What loading the working directory needs from the command.
pub(crate) fn env<'a>(host: &'a Arc<ProviderHost>, vars: &VarArgs) -> workspace::Env<'a> {
    workspace::Env {
        host,
        vars: var_args(vars),
    }
}

pub(crate) fn var_args(v: &VarArgs) -> Vec<VarArg> {
    // -var and -var-file keep their relative order only within each kind; files first.
    v.var_files
        .iter()
        .cloned()
        .map(VarArg::File)
        .chain(v.vars.iter().cloned().map(VarArg::Var))
        .collect()
}

fn paths(ws: &Workspace) -> Paths {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    Paths {
        root: PathBuf::from("."),
        cwd,
        workspace: ws.workspace.clone(),
    }
}

fn ctrl_c_stop() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!(
                "\nInterrupt received: no new operations will start; waiting for those in progress to finish..."
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "Second interrupt: exiting now. Completed operations are recorded in the state journal."
                );
                std::process::exit(130);
            }
        }
    });
    stop
}

pub(crate) fn parse_addrs<T: std::str::FromStr<Err = flotilla_config::addr::AddrError>>(
    ui: &Ui,
    flag: &str,
    items: &[String],
) -> Result<Vec<T>, u8> {
    items
        .iter()
        .map(|s| s.parse::<T>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(ui, Diagnostic::error(format!("invalid {flag} address")).with_detail(e.to_string()).with_help("write addresses like `builtin_data.a`, `builtin_data.a[0]`, `module.net` or `data.builtin_file.f`")))
}

/// What kind of plan to make: its mode, and the objects to import with it.
struct PlanKind {
    mode: PlanMode,
    imports: Vec<(ResourceInstanceAddr, String)>,
}

async fn make_plan(
    ui: &Ui,
    ws: &Workspace,
    registry: &ProviderRegistry,
    sources: &mut SourceMap,
    args: &PlanArgs,
    state: State,
    kind: PlanKind,
) -> Result<(Plan, Vec<Diagnostic>), u8> {
    let PlanKind { mode, imports } = kind;
    let (inputs, diags) = flotilla_plan::inputs::collect(
        &ws.config,
        &ws.dir,
        sources,
        &var_args(&args.vars),
        std::env::vars(),
    );
    ui.diags(&diags.0, sources);
    if diags.has_errors() {
        return Err(1);
    }
    let options = PlanOptions {
        mode,
        refresh: args.refresh,
        targets: parse_addrs::<TargetAddr>(ui, "-target", &args.target)?,
        replace: parse_addrs::<ResourceInstanceAddr>(ui, "-replace", &args.replace)?,
        parallelism: args.parallelism.max(1),
        imports,
    };
    let input = PlanInput {
        config: Arc::clone(&ws.config),
        graph: Arc::clone(&ws.graph),
        registry: registry.clone(),
        paths: paths(ws),
        inputs,
        prior: state,
        config_hash: ws.config_hash.clone(),
        options,
        stop: ctrl_c_stop(),
    };
    match flotilla_plan::plan(input).await {
        Ok((plan, warnings)) => {
            ui.diags(&warnings.0, sources);
            Ok((plan, warnings.0))
        }
        Err(diags) => {
            ui.diags(&diags.0, sources);
            Err(1)
        }
    }
}

async fn plan_apply(
    ui: &Ui,
    host: &Arc<ProviderHost>,
    args: PlanArgs,
    plan_file: Option<PathBuf>,
    op: Op,
) -> u8 {
    let registry = workspace::registry(host);
    let timeout = match workspace::lock_timeout(&args.lock_timeout) {
        Ok(t) => t,
        Err(d) => return error(ui, d),
    };
    let op_name = match op {
        Op::Plan => "plan",
        Op::Apply => "apply",
        Op::Destroy => "destroy",
    };
    // The lock is taken and state read while the graph is built.
    let (ws, locked) = tri!(workspace::load_alongside(
        ui,
        &env(host, &args.vars),
        |backend| {
            let lock = workspace::lock(ui, backend, op_name, timeout)?;
            let _load = flotilla_syntax::timing::phase("load state");
            Ok::<_, flotilla_state::StateError>((lock, backend.load()))
        }
    ));
    let mut sources = ws.sources.clone();
    let (lock, loaded) = match locked {
        Ok((l, loaded)) => (Arc::<dyn flotilla_state::StoreLock>::from(l), loaded),
        Err(e) => {
            return error(ui, e.to_diagnostic("cannot lock state"));
        }
    };
    let mut state = tri!(workspace::finish_state_load(&ws, ui, loaded, true));
    // Rollout requests left while another run held the lock: the plan shows their effect,
    // and apply records it (and removes them).
    tri!(workspace::fold_requests(&ws, ui, &mut state));
    let mode = if op == Op::Destroy || args.destroy {
        PlanMode::Destroy
    } else if args.refresh_only {
        PlanMode::RefreshOnly
    } else {
        PlanMode::Normal
    };
    let saved = plan_file.is_some();
    let (mut plan, warnings) = match plan_file {
        Some(file) => (tri!(read_saved_plan(ui, &ws, &state, &file)), Vec::new()),
        None => tri!(
            make_plan(
                ui,
                &ws,
                &registry,
                &mut sources,
                &args,
                state,
                PlanKind {
                    mode,
                    imports: Vec::new()
                }
            )
            .await
        ),
    };
    let style = Style { color: ui.color };
    if op == Op::Plan {
        if args.json {
            ui.out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&flotilla_render::json::plan_json(
                    &plan,
                    flotilla_render::json::diagnostics_json(&warnings, &sources)
                ))
                .unwrap_or_default()
            ));
        } else {
            ui.out(&render_plan(&plan, style));
        }
        if let Some(out) = &args.out {
            if let Err(d) = flotilla_plan::exec::ensure(&mut plan, &ws.graph) {
                return error(ui, d);
            }
            let bytes = ws.codec.seal_document(
                flotilla_plan::planfile::encode(&plan, &ws.graph),
                PLAN_DOCUMENT,
            );
            if let Err(e) = std::fs::write(out, bytes) {
                return error(
                    ui,
                    Diagnostic::error("cannot write plan file")
                        .with_detail(format!("{}: {e}", out.display())),
                );
            }
            if !args.json {
                ui.out(&format!("\nSaved the plan to: {}\n\nTo perform exactly these actions, run:\n  flotilla apply {}\n", out.display(), out.display()));
            }
        }
        let code = if args.detailed_exitcode && plan.has_changes() {
            2
        } else {
            0
        };
        exit_without_freeing((plan, ws, sources));
        return code;
    }
    if !saved {
        ui.out(&render_plan(&plan, style));
    }
    if !plan.has_changes() {
        ui.out(&format!(
            "\n{} Resources: 0 added, 0 changed, 0 destroyed.\n",
            ui.green("Apply complete!")
        ));
        print_outputs(ui, &plan.prior_state);
        return 0;
    }
    if !saved && !args.auto_approve && !approve(ui, op) {
        ui.err("Apply cancelled.");
        return 1;
    }
    ui.out("\n");
    let report =
        flotilla_apply::apply(apply_input(&ws, registry, plan, args.parallelism, &lock)).await;
    ui.diags(&report.diags.0, &sources);
    if !report.saved {
        return keep_unsaved_state(ui, &ws, &report.state);
    }
    if !report.waiting.is_empty() && !report.diags.has_errors() {
        let commands: Vec<String> = report
            .waiting
            .iter()
            .map(|n| format!("  flotilla rollout approve {n}"))
            .collect();
        ui.out(&format!(
            "\n{} Resources: {} added, {} changed, {} destroyed; a rollout waits for approval before its next wave.\n\nTo continue, approve it and apply again:\n{}\n  flotilla apply\n",
            ui.bold("Apply stopped at an approval gate."),
            report.added,
            report.changed,
            report.destroyed,
            commands.join("\n")
        ));
        exit_without_freeing((report, ws, sources));
        return EXIT_APPROVAL;
    }
    if report.diags.has_errors() {
        ui.err(&format!("\nApply failed. Resources: {} added, {} changed, {} destroyed; the state records exactly what exists.", report.added, report.changed, report.destroyed));
        return 1;
    }
    if op == Op::Destroy || mode == PlanMode::Destroy {
        ui.out(&format!(
            "\n{} Resources: {} destroyed.\n",
            ui.green("Destroy complete!"),
            report.destroyed
        ));
    } else {
        let imported = if report.imported > 0 {
            format!(" {} imported,", report.imported)
        } else {
            String::new()
        };
        ui.out(&format!(
            "\n{} Resources:{imported} {} added, {} changed, {} destroyed.\n",
            ui.green("Apply complete!"),
            report.added,
            report.changed,
            report.destroyed
        ));
        print_outputs(ui, &report.state);
    }
    exit_without_freeing((report, ws, sources));
    0
}

/// The exit code of an apply that stopped before a rollout wave needing approval.
pub const EXIT_APPROVAL: u8 = 4;

/// Where an apply whose store went away keeps the state it could not write.
pub const ERRORED_STATE: &str = "flotilla.errored.state.json";

/// Writes the state an apply could not save to [`ERRORED_STATE`] (encrypted like the store)
/// and says how to push it once the backend is back. Always exit code 1.
fn keep_unsaved_state(ui: &Ui, ws: &Workspace, state: &State) -> u8 {
    let bytes = ws.codec.encode_state(state);
    match std::fs::write(ERRORED_STATE, bytes) {
        Ok(()) => ui.err(&format!(
            "\nError: the state could not be saved to {}.\n  flotilla wrote it to {ERRORED_STATE} instead: it records everything this apply did.\n  help: once the backend is reachable, run `flotilla state push {ERRORED_STATE}`, then `flotilla plan`",
            ws.backend.describe()
        )),
        Err(e) => ui.err(&format!(
            "\nError: the state could not be saved to {}, nor to {ERRORED_STATE} ({e}).\n  The apply's journal in the backend holds what was recorded before it went away.",
            ws.backend.describe()
        )),
    }
    1
}

/// Skips freeing a command's large structures: the process exits right after, and freeing a
/// 100,000-resource plan value by value took longer than the OS takes to reclaim it all.
fn exit_without_freeing<T>(big: T) {
    std::mem::forget(big);
}

/// What apply needs to carry out `plan` in this workspace, printing progress.
fn apply_input(
    ws: &Workspace,
    registry: ProviderRegistry,
    plan: Plan,
    parallelism: usize,
    lock: &Arc<dyn flotilla_state::StoreLock>,
) -> ApplyInput {
    let stop = ctrl_c_stop();
    watch_lock(Arc::downgrade(lock), Arc::clone(&stop));
    ApplyInput {
        plan,
        config: Arc::clone(&ws.config),
        graph: Arc::clone(&ws.graph),
        registry,
        paths: paths(ws),
        backend: ws.backend.clone(),
        parallelism: parallelism.max(1),
        stop,
        progress: Arc::new(PrintProgress),
    }
}

/// Stops an apply the way Ctrl-C does when the state lock is lost (a lease that expired):
/// nothing new starts, what is in progress finishes and is recorded. The watcher holds the
/// lock weakly: the command releases it by dropping its guard (a Lease is deleted then,
/// rather than left to expire).
fn watch_lock(lock: std::sync::Weak<dyn flotilla_state::StoreLock>, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Some(lock) = lock.upgrade() else { return };
            if lock.lost() {
                stop.store(true, Ordering::SeqCst);
                eprintln!(
                    "\nThe state lock was lost: no new operations will start; waiting for those in progress to finish and recording them..."
                );
                return;
            }
        }
    });
}

/// `flotilla import ADDR ID`: plans the import alone (targeting the address) and records the
/// object in state as it is, changing nothing real.
async fn import(ui: &Ui, host: &Arc<ProviderHost>, args: ImportArgs) -> u8 {
    let registry = workspace::registry(host);
    let addr = match args.addr.parse::<ResourceInstanceAddr>() {
        Ok(a) => a,
        Err(e) => {
            return error(
                ui,
                Diagnostic::error("invalid import address")
                    .with_detail(e.to_string())
                    .with_help("write a resource instance address like `kube_namespace.apps`"),
            );
        }
    };
    let plan_args = PlanArgs {
        vars: args.vars,
        target: vec![args.addr.clone()],
        replace: Vec::new(),
        destroy: false,
        refresh_only: false,
        refresh: true,
        out: None,
        detailed_exitcode: false,
        parallelism: 10,
        lock_timeout: args.lock_timeout,
        auto_approve: true,
        json: false,
    };
    let ws = tri!(workspace::load(ui, &env(host, &plan_args.vars)));
    let mut sources = ws.sources.clone();
    let timeout = match workspace::lock_timeout(&plan_args.lock_timeout) {
        Ok(t) => t,
        Err(d) => return error(ui, d),
    };
    let lock: Arc<dyn flotilla_state::StoreLock> =
        match workspace::lock(ui, &*ws.backend, "import", timeout) {
            Ok(l) => Arc::from(l),
            Err(e) => return error(ui, e.to_diagnostic("cannot lock state")),
        };
    let state = tri!(workspace::load_state(&ws, ui, true));
    if state.resources.contains_key(&addr) {
        return error(
            ui,
            Diagnostic::error("resource already managed")
                .with_detail(format!("`{addr}` is already in state"))
                .with_help(
                    "remove it with `flotilla state rm` first to import another object there",
                ),
        );
    }
    let (mut plan, _) = tri!(
        make_plan(
            ui,
            &ws,
            &registry,
            &mut sources,
            &plan_args,
            state,
            PlanKind {
                mode: PlanMode::Normal,
                imports: vec![(addr.clone(), args.id.clone())],
            },
        )
        .await
    );
    // Only the import itself: the object is recorded as it is; planned changes wait for apply.
    plan.changes
        .retain(|c| c.addr == addr && c.importing.is_some());
    for c in &mut plan.changes {
        c.action = flotilla_plan::Action::NoOp;
        c.after = c.before.clone();
        c.replace_reasons.clear();
    }
    plan.outputs.clear();
    // Made again for what is left.
    plan.execution = Default::default();
    if plan.changes.is_empty() {
        return error(ui, Diagnostic::error("nothing imported").with_detail(format!("`{addr}` was not planned; check that the address names an instance of a resource block")));
    }
    ui.out(&format!("{addr}: Importing from ID {:?}...\n", args.id));
    let report = flotilla_apply::apply(apply_input(&ws, registry, plan, 10, &lock)).await;
    ui.diags(&report.diags.0, &sources);
    if !report.saved {
        return keep_unsaved_state(ui, &ws, &report.state);
    }
    if report.diags.has_errors() {
        return 1;
    }
    ui.out(&format!(
        "\n{} `{addr}` is now in state and managed by flotilla.\nRun `flotilla plan` to see how the configuration differs from the object.\n",
        ui.green("Import successful!")
    ));
    0
}

fn approve(ui: &Ui, op: Op) -> bool {
    if !std::io::stdin().is_terminal() {
        ui.err("\nError: approval needed, but standard input is not a terminal.\n  help: pass -auto-approve to apply without a prompt, or save a plan with -out and apply that file");
        return false;
    }
    let question = if op == Op::Destroy {
        "Do you really want to destroy all resources?"
    } else {
        "Do you want to perform these actions?"
    };
    ui.out(&format!("\n{}\n  flotilla will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", ui.bold(question)));
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    answer.trim() == "yes"
}

/// What encrypted plan files are sealed as (the additional authenticated data).
const PLAN_DOCUMENT: &str = "flotilla-plan";

/// A plan file's bytes opened with `codec` (encrypted plan files need the configuration's
/// keys) and decoded.
fn decode_plan(ui: &Ui, codec: &flotilla_state::Codec, file: &std::path::Path) -> Result<Plan, u8> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| {
        error(
            ui,
            Diagnostic::error("cannot read plan file")
                .with_detail(format!("{name}: {e}"))
                .with_help("pass a file written by `flotilla plan -out FILE`"),
        )
    })?;
    let bytes = match codec.open_document_as(&bytes, PLAN_DOCUMENT, &name) {
        // A plan saved before encryption was configured is still readable.
        Err(flotilla_state::StateError::NotEncrypted { .. }) => bytes,
        Ok(b) => b,
        Err(e) => return Err(error(ui, e.to_diagnostic("cannot read plan file"))),
    };
    flotilla_plan::planfile::decode(&bytes, &name).map_err(|e| {
        error(
            ui,
            Diagnostic::error("cannot use plan file")
                .with_detail(e.to_string())
                .with_help("make a new plan with `flotilla plan -out FILE`"),
        )
    })
}

fn read_saved_plan(
    ui: &Ui,
    ws: &Workspace,
    state: &State,
    file: &std::path::Path,
) -> Result<Plan, u8> {
    let plan = decode_plan(ui, &ws.codec, file)?;
    if plan.config_hash != ws.config_hash {
        return Err(error(
            ui,
            Diagnostic::error("saved plan is stale")
                .with_detail(format!(
                    "the configuration changed since {} was made",
                    file.display()
                ))
                .with_help("make a new plan with `flotilla plan -out FILE` and review it"),
        ));
    }
    if let Some(why) = flotilla_plan::state_edit::stale_reason(&plan, state) {
        return Err(error(
            ui,
            Diagnostic::error("saved plan is stale")
                .with_detail(format!(
                    "the state changed since {} was made ({why})",
                    file.display()
                ))
                .with_help("make a new plan with `flotilla plan -out FILE` and review it"),
        ));
    }
    Ok(plan)
}

fn print_outputs(ui: &Ui, state: &State) {
    if state.outputs.is_empty() {
        return;
    }
    ui.out(&format!("\n{}\n\n", ui.bold("Outputs:")));
    let width = state.outputs.keys().map(String::len).max().unwrap_or(0);
    for (k, o) in &state.outputs {
        let v = if o.sensitive {
            "(sensitive value)".to_string()
        } else {
            render_value(&Value::from_json(&o.value))
        };
        ui.out(&format!("{k:width$} = {v}\n"));
    }
}

/// Reads a saved plan for `show` and `graph` (the configuration is only read for its
/// encryption keys, when the plan file is encrypted).
fn read_plan_file(ui: &Ui, host: &Arc<ProviderHost>, file: &std::path::Path) -> Result<Plan, u8> {
    let sealed = std::fs::read(file)
        .map(|b| flotilla_state::crypt::is_sealed_document(&b))
        .unwrap_or(false);
    let codec = if sealed {
        workspace::backend_only(ui, &env(host, &VarArgs::default()))?.codec
    } else {
        flotilla_state::Codec::plain()
    };
    decode_plan(ui, &codec, file)
}

/// Markdown settings from the command line.
pub(crate) fn markdown_options(
    ui: &Ui,
    args: &crate::MarkdownArgs,
    full_command: String,
) -> Result<flotilla_render::markdown::MarkdownOptions, u8> {
    use flotilla_render::markdown::{GroupBy, MarkdownOptions};
    let group_by = match args.group_by.as_str() {
        "module" => GroupBy::Module,
        "cluster" => GroupBy::Cluster,
        other => {
            return Err(error(
                ui,
                Diagnostic::error("unknown -group-by")
                    .with_detail(format!("`{other}`"))
                    .with_help("use -group-by=module or -group-by=cluster"),
            ));
        }
    };
    if args.max_chars < 1000 {
        return Err(error(
            ui,
            Diagnostic::error("-max-chars is too small")
                .with_detail(format!(
                    "{} characters cannot hold even the summary",
                    args.max_chars
                ))
                .with_help("use at least 1000 (GitHub allows 65536 per comment)"),
        ));
    }
    Ok(MarkdownOptions {
        max_chars: args.max_chars,
        group_by,
        title: args.title.clone(),
        full_command,
    })
}

/// The output formats of `show` and `diff`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
    Markdown,
}

pub(crate) fn output_format(ui: &Ui, format: &str, json: bool) -> Result<Format, u8> {
    match (format, json) {
        (_, true) | ("json", _) => Ok(Format::Json),
        ("text", _) => Ok(Format::Text),
        ("markdown" | "md", _) => Ok(Format::Markdown),
        (other, _) => Err(error(
            ui,
            Diagnostic::error("unknown output format")
                .with_detail(format!("`{other}`"))
                .with_help("use -format=text, -format=json or -format=markdown"),
        )),
    }
}

fn show(ui: &Ui, host: &Arc<ProviderHost>, args: ShowArgs) -> u8 {
    let format = tri!(output_format(ui, &args.format, args.json));
    if let Some(file) = &args.file {
        let plan = tri!(read_plan_file(ui, host, file));
        match format {
            Format::Json => ui.out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&flotilla_render::json::plan_json(&plan, Vec::new()))
                    .unwrap_or_default()
            )),
            Format::Markdown => {
                let opts = tri!(markdown_options(
                    ui,
                    &args.markdown,
                    format!("flotilla show {}", file.display())
                ));
                ui.out(&flotilla_render::markdown::plan_markdown(&plan, &opts));
            }
            Format::Text => ui.out(&render_plan(&plan, Style { color: ui.color })),
        }
        return 0;
    }
    if format == Format::Markdown {
        return error(
            ui,
            Diagnostic::error("markdown needs a saved plan").with_help(
                "run `flotilla plan -out tfplan`, then `flotilla show -format markdown tfplan`",
            ),
        );
    }
    let json = format == Format::Json;
    let ws = tri!(workspace::load(ui, &env(host, &VarArgs::default())));
    let state = tri!(workspace::load_state(&ws, ui, false));
    if json {
        ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&flotilla_render::json::state_json(&state))
                .unwrap_or_default()
        ));
        return 0;
    }
    if state.resources.is_empty() && state.outputs.is_empty() {
        ui.out("The state is empty.\n");
        return 0;
    }
    for (addr, r) in &state.resources {
        ui.out(&format!(
            "# {addr}:\n{}\n\n",
            resource_text(addr, &flotilla_plan::state_value(r))
        ));
    }
    print_outputs(ui, &state);
    0
}

pub(crate) fn resource_text(addr: &ResourceInstanceAddr, v: &Value) -> String {
    let kind = if addr.resource.mode == flotilla_config::addr::ResourceMode::Data {
        "data"
    } else {
        "resource"
    };
    let shown = match v {
        Value::Map(m) => Value::Map(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    let body = render_value(&shown);
    let body = body.strip_prefix('{').unwrap_or(&body);
    format!(
        "{kind} \"{}\" \"{}\" {{{body}",
        addr.resource.type_, addr.resource.name
    )
}

fn output(ui: &Ui, host: &Arc<ProviderHost>, args: OutputArgs) -> u8 {
    let ws = tri!(workspace::load(ui, &env(host, &VarArgs::default())));
    let state = tri!(workspace::load_state(&ws, ui, false));
    let shown = |o: &flotilla_state::OutputState| {
        if o.sensitive {
            "(sensitive value)".to_string()
        } else {
            render_value(&Value::from_json(&o.value))
        }
    };
    match args.name {
        Some(name) => {
            match state.outputs.get(&name) {
                Some(o) if args.json => {
                    let v = if o.sensitive {
                        serde_json::Value::Null
                    } else {
                        o.value.clone()
                    };
                    ui.out(&format!(
                        "{}\n",
                        serde_json::to_string_pretty(&v).unwrap_or_default()
                    ));
                    0
                }
                Some(o) => {
                    ui.out(&format!("{}\n", shown(o)));
                    0
                }
                None => {
                    let mut d = Diagnostic::error("output not found")
                        .with_detail(format!("the state has no output named `{name}`"));
                    d = match flotilla_syntax::did_you_mean(&name, state.outputs.keys().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("run `flotilla apply` to record outputs, or `flotilla output` to list them"),
                };
                    error(ui, d)
                }
            }
        }
        None if args.json => {
            let doc: serde_json::Map<String, serde_json::Value> = state
                .outputs
                .iter()
                .map(|(k, o)| (k.clone(), serde_json::json!({ "sensitive": o.sensitive, "value": if o.sensitive { serde_json::Value::Null } else { o.value.clone() } })))
                .collect();
            ui.out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ));
            0
        }
        None => {
            if state.outputs.is_empty() {
                ui.err("Warning: no outputs found in state.\n  help: declare `output` blocks in the root module and run `flotilla apply`");
                return 0;
            }
            let width = state.outputs.keys().map(String::len).max().unwrap_or(0);
            for (k, o) in &state.outputs {
                ui.out(&format!("{k:width$} = {}\n", shown(o)));
            }
            0
        }
    }
}

fn graph(ui: &Ui, host: &Arc<ProviderHost>, args: GraphArgs) -> u8 {
    let ws = tri!(workspace::load(ui, &env(host, &VarArgs::default())));
    let format = match args.format.as_str() {
        "dot" => flotilla_graph::export::Format::Dot,
        "mermaid" => flotilla_graph::export::Format::Mermaid,
        other => {
            return error(
                ui,
                Diagnostic::error("unknown graph format")
                    .with_detail(format!("`{other}`"))
                    .with_help("use -format=dot or -format=mermaid"),
            );
        }
    };
    let Some(file) = &args.plan else {
        ui.out(&flotilla_graph::export::render(&ws.graph, format, args.all));
        return 0;
    };
    let plan = tri!(read_plan_file(ui, host, file));
    // A resource's class is the strongest action any of its instances takes.
    let mut actions: std::collections::HashMap<String, flotilla_plan::Action> =
        std::collections::HashMap::new();
    for c in &plan.changes {
        let e = actions.entry(c.addr.config_addr()).or_insert(c.action);
        if c.action.weight() > e.weight() {
            *e = c.action;
        }
    }
    let class_of = |n: &flotilla_graph::Node| -> Option<&'static str> {
        matches!(n.kind, flotilla_graph::NodeKind::Resource(_)).then(|| {
            actions
                .get(&n.to_string())
                .map_or("unchanged", |a| a.class())
        })
    };
    ui.out(&flotilla_graph::export::render_classed(
        &ws.graph, format, args.all, &class_of,
    ));
    0
}

async fn console(ui: &Ui, host: &Arc<ProviderHost>, args: VarArgs) -> u8 {
    let ws = tri!(workspace::load(ui, &env(host, &args)));
    let state = tri!(workspace::load_state(&ws, ui, false));
    let mut sources = ws.sources.clone();
    let (inputs, diags) = flotilla_plan::inputs::collect(
        &ws.config,
        &ws.dir,
        &mut sources,
        &var_args(&args),
        std::env::vars(),
    );
    ui.diags(&diags.0, &sources);
    if diags.has_errors() {
        return 1;
    }
    let ctx = Arc::new(WalkCtx::new(
        Arc::clone(&ws.config),
        Arc::clone(&ws.graph),
        workspace::registry(host),
        paths(&ws),
        inputs,
        Arc::new(AtomicBool::new(false)),
    ));
    ctx.run(Arc::new(StateValues { state }), None, 4).await;
    let walk_diags = std::mem::take(&mut *ctx.diags.lock().unwrap_or_else(|e| e.into_inner()));
    ui.diags(&walk_diags.0, &sources);
    let interactive = std::io::stdin().is_terminal();
    let mut failed = false;
    let stdin = std::io::stdin();
    loop {
        if interactive {
            ui.out("> ");
        }
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "exit" {
            break;
        }
        let file = sources.add("<console>", text);
        let result = flotilla_syntax::parse_expr_in(file, text).and_then(|expr| {
            let values = ctx.values();
            let root = flotilla_config::addr::ModuleInstance::root();
            let scope = ctx.scope(&values, &root, &ws.config);
            let ectx = EvalContext::new(file, &ws.config.dir);
            Evaluator::new(&scope, &ectx).eval(&expr)
        });
        match result {
            Ok(v) => ui.out(&format!("{}\n", render_value(&v))),
            Err(d) => {
                ui.diags(&[d], &sources);
                failed = true;
            }
        }
        let _ = std::io::stdout().flush();
    }
    if failed && !interactive { 1 } else { 0 }
}
