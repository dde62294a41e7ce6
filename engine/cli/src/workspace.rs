//! Loading a working directory: configuration, graph, backend and state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flotilla_config::Module;
use flotilla_graph::Graph;
use flotilla_plan::inputs::VarArg;
use flotilla_provider::{ProviderHost, ProviderRegistry};
use flotilla_state::{Backend, Codec, LocalBackend, State, StateStore};
use flotilla_syntax::{Diagnostic, Diagnostics, SourceMap};

use crate::backend::{self, BackendSpec};
use crate::output::Ui;

/// What loading a directory needs beyond the directory: the host (the Kubernetes backend
/// connects through it) and the root variables (an encryption passphrase may be one).
pub struct Env<'a> {
    /// The command's provider host.
    pub host: &'a Arc<ProviderHost>,
    /// `-var` and `-var-file` arguments.
    pub vars: Vec<VarArg>,
}

/// A loaded configuration directory.
pub struct Workspace {
    /// The configuration root.
    pub dir: PathBuf,
    /// Every file read.
    pub sources: SourceMap,
    /// The module tree.
    pub config: Arc<Module>,
    /// Its dependency graph.
    pub graph: Arc<Graph>,
    /// The selected workspace's state.
    pub backend: Arc<dyn StateStore>,
    /// The selected workspace (`flotilla.workspace`).
    pub workspace: String,
    /// How state and plan files are encoded (encrypted when configured).
    pub codec: Codec,
    /// blake3 over the configuration files.
    pub config_hash: String,
}

/// The providers linked into this binary, served by `host`.
pub fn registry(host: &Arc<ProviderHost>) -> ProviderRegistry {
    let mut r = ProviderRegistry::with_host(Arc::clone(host));
    r.register(
        flotilla_provider_builtin::NAME,
        flotilla_provider_builtin::factory,
    );
    r.register(
        flotilla_provider_capi::NAME,
        flotilla_provider_capi::factory,
    );
    r.register(
        flotilla_provider_kube::KUBE.name,
        flotilla_provider_kube::factory,
    );
    r.register(
        flotilla_provider_karmada::NAME,
        flotilla_provider_karmada::factory,
    );
    r.register(
        flotilla_provider_volcano::NAME,
        flotilla_provider_volcano::factory,
    );
    r.register(
        flotilla_provider_istio::NAME,
        flotilla_provider_istio::factory,
    );
    r.register(
        flotilla_provider_kubeedge::NAME,
        flotilla_provider_kubeedge::factory,
    );
    r
}

/// The providers for a command that reaches no cluster (validate, diff): their schemas and
/// offline checks only.
pub fn offline_registry() -> ProviderRegistry {
    registry(&Arc::new(ProviderHost::new()))
}

/// Loads configuration and graph; prints diagnostics and returns `Err(exit code)` on errors.
pub fn load(ui: &Ui, env: &Env<'_>) -> Result<Workspace, u8> {
    load_with(ui, env, |_| (), false).map(|(ws, ())| ws)
}

/// Loads configuration and graph like [`load`], running `alongside` with the configured
/// backend on a second thread while the graph is built (plan and apply read state there:
/// at 100,000 resources each takes about a third of a second). `alongside` does not run
/// when the configuration has errors.
pub fn load_alongside<T: Send>(
    ui: &Ui,
    env: &Env<'_>,
    alongside: impl FnOnce(&dyn StateStore) -> T + Send,
) -> Result<(Workspace, T), u8> {
    load_with(ui, env, alongside, true)
}

fn load_with<T: Send>(
    ui: &Ui,
    env: &Env<'_>,
    alongside: impl FnOnce(&dyn StateStore) -> T + Send,
    on_a_thread: bool,
) -> Result<(Workspace, T), u8> {
    let dir = PathBuf::from(".");
    let mut sources = SourceMap::new();
    let load = flotilla_syntax::timing::phase("load configuration");
    let (module, mut diags) = load_config(&dir, &mut sources);
    drop(load);
    let Some(module) = module else {
        ui.diags(&diags.0, &sources);
        return Err(1);
    };
    check_required_version(&module, &mut diags);
    let opened = if diags.has_errors() {
        None
    } else {
        match open_backend(&module, &dir, &mut sources, env, true) {
            Ok(o) => Some(o),
            Err(d) => {
                diags.push(d);
                None
            }
        }
    };
    let (_, codec, _, workspace, backend) = match opened {
        Some(o) => o,
        None => {
            let spec = BackendSpec::local_default();
            let path = dir.join(backend::DEFAULT_STATE);
            let backends: Arc<dyn Backend> =
                Arc::new(flotilla_state::LocalWorkspaces::new(&path, Codec::plain()));
            let store: Arc<dyn StateStore> = Arc::new(LocalBackend::new(path));
            (
                spec,
                Codec::plain(),
                backends,
                flotilla_state::DEFAULT_WORKSPACE.to_string(),
                store,
            )
        }
    };
    let usable = !diags.has_errors();
    let build_graph = || {
        let _build = flotilla_syntax::timing::phase("build graph");
        let implied = flotilla_plan::implied_dependencies(&module, &offline_registry());
        flotilla_graph::build_with(&module, &implied)
    };
    let ((graph, graph_diags), beside) = if on_a_thread && usable {
        std::thread::scope(|scope| {
            let beside = scope.spawn(|| alongside(&*backend));
            let built = build_graph();
            match beside.join() {
                Ok(v) => (built, Some(v)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    } else {
        (build_graph(), usable.then(|| alongside(&*backend)))
    };
    diags.extend(graph_diags);
    let Some(beside) = beside.filter(|_| !diags.has_errors()) else {
        ui.diags(&diags.0, &sources);
        return Err(1);
    };
    ui.diags(&diags.0, &sources);
    let config_hash = config_hash(&sources);
    Ok((
        Workspace {
            dir,
            sources,
            config: Arc::new(module),
            graph: Arc::new(graph),
            backend,
            workspace,
            codec,
            config_hash,
        },
        beside,
    ))
}

/// The backend of the configuration in the working directory, for the `workspace`
/// commands (the selected workspace need not exist: `workspace select` is how to leave it).
pub struct BackendOnly {
    /// Which backend.
    pub spec: BackendSpec,
    /// Its workspaces.
    pub backends: Arc<dyn Backend>,
    /// The selected workspace.
    pub workspace: String,
    /// How state and plan files are encoded.
    pub codec: Codec,
}

/// Opens the configured backend without building the graph.
pub fn backend_only(ui: &Ui, env: &Env<'_>) -> Result<BackendOnly, u8> {
    let dir = PathBuf::from(".");
    let mut sources = SourceMap::new();
    let (module, diags) = load_config(&dir, &mut sources);
    let module = match module {
        Some(m) if !diags.has_errors() => m,
        _ => {
            ui.diags(&diags.0, &sources);
            return Err(1);
        }
    };
    match open_backend(&module, &dir, &mut sources, env, false) {
        Ok((spec, codec, backends, workspace, _)) => Ok(BackendOnly {
            spec,
            backends,
            workspace,
            codec,
        }),
        Err(d) => {
            ui.diags(&[d], &sources);
            Err(1)
        }
    }
}

/// Loads the configuration in `dir` with the modules `flotilla init` installed, verified
/// against the lock file (offline: nothing is fetched).
pub fn load_config(dir: &Path, sources: &mut SourceMap) -> (Option<Module>, Diagnostics) {
    let lock = match flotilla_sources::LockFile::read(dir, sources) {
        Ok(l) => l,
        Err(d) => return (None, Diagnostics(vec![d])),
    };
    let installed = flotilla_sources::Installed::new(dir, lock);
    flotilla_config::load(&flotilla_config::Tree::default(), dir, sources, &installed)
}

fn config_hash(sources: &SourceMap) -> String {
    let mut files: Vec<(String, &str)> = sources
        .files()
        .map(|(_, f)| (f.path.display().to_string(), &*f.text))
        .collect();
    files.sort();
    let mut h = blake3::Hasher::new();
    for (path, text) in files {
        h.update(&(path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(&(text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// The configured backend, encryption and selected workspace's store; an error when the
/// backend block changed since `flotilla init` recorded it, or the workspace is missing.
type Opened = (
    BackendSpec,
    Codec,
    Arc<dyn Backend>,
    String,
    Arc<dyn StateStore>,
);

fn open_backend(
    module: &Module,
    dir: &Path,
    sources: &mut SourceMap,
    env: &Env<'_>,
    require_selected: bool,
) -> Result<Opened, Diagnostic> {
    let spec = backend::spec_of(module)?;
    // The backend state was last used in: the one `init` (or the first command) recorded,
    // or, before any record, a local state file that a new backend block would hide.
    let previous = match backend::recorded(dir) {
        Some(r) => Some(r),
        None if spec != BackendSpec::local_default()
            && dir.join(backend::DEFAULT_STATE).exists() =>
        {
            Some(BackendSpec::local_default())
        }
        None => {
            // Best effort: without a record, a later change of the block goes unnoticed.
            let _ = backend::record(dir, &spec);
            None
        }
    };
    if let Some(recorded) = previous
        && recorded != spec
    {
        let mut d = Diagnostic::error("backend configuration changed")
            .with_detail(spec.change_from(&recorded))
            .with_help("run `flotilla init -migrate-state` to copy the state to the new backend, or `flotilla init -reconfigure` to use it as it is");
        if let Some(b) = &module.settings.backend {
            d = d.with_span(b.span.clone());
        }
        return Err(d);
    }
    let codec = if module.settings.encryption.is_some() {
        let (inputs, diags) =
            flotilla_plan::inputs::collect(module, dir, sources, &env.vars, std::env::vars());
        if let Some(d) = diags.0.into_iter().find(|d| d.is_error()) {
            return Err(d);
        }
        backend::codec(module, &inputs)?
    } else {
        Codec::plain()
    };
    let backends = backend::open(&spec, dir, codec.clone(), env.host);
    let workspace = backend::selected_workspace(dir);
    let store = backends.store(&workspace).map_err(|e| {
        e.to_diagnostic("invalid workspace")
            .with_help("select another with `flotilla workspace select NAME`")
    })?;
    if require_selected && workspace != flotilla_state::DEFAULT_WORKSPACE {
        let known = backends
            .workspaces()
            .map_err(|e| e.to_diagnostic("cannot list workspaces"))?;
        if !known.contains(&workspace) {
            return Err(Diagnostic::error("workspace does not exist")
                .with_detail(format!(
                    "the selected workspace \"{workspace}\" does not exist in the {}",
                    spec.describe()
                ))
                .with_help(format!(
                    "create it with `flotilla workspace new {workspace}`, or select one of: {}",
                    known.join(", ")
                )));
        }
    }
    Ok((spec, codec, backends, workspace, store))
}

fn check_required_version(module: &Module, diags: &mut Diagnostics) {
    let Some((constraint, span)) = &module.settings.required_version else {
        return;
    };
    let ours = env!("CARGO_PKG_VERSION");
    match flotilla_sources::version_matches(constraint, ours) {
        Some(true) => {}
        Some(false) => diags.push(
            Diagnostic::error("unsupported flotilla version")
                .with_span(span.clone())
                .with_detail(format!(
                    "this configuration requires flotilla {constraint}; this is flotilla {ours}"
                ))
                .with_help("install a matching flotilla version, or change `required_version`"),
        ),
        None => diags.push(
            Diagnostic::error("invalid version constraint")
                .with_span(span.clone())
                .with_detail(format!("cannot parse `{constraint}`"))
                .with_help("write constraints like \">= 0.1, < 1.0\" or \"~> 0.1\""),
        ),
    }
}

pub use flotilla_provider::parse_duration;

/// A `-lock-timeout` value, or the error for one that is not a duration.
pub fn lock_timeout(text: &str) -> Result<std::time::Duration, Diagnostic> {
    parse_duration(text).ok_or_else(|| {
        Diagnostic::error("invalid -lock-timeout")
            .with_detail(format!("`{text}` is not a duration"))
            .with_help("write durations like 0s, 30s, 5m")
    })
}

/// Takes `store`'s lock for `operation`; when another run holds it and `timeout` allows
/// waiting, says who holds it, then waits.
pub fn lock(
    ui: &Ui,
    store: &dyn StateStore,
    operation: &str,
    timeout: std::time::Duration,
) -> Result<Box<dyn flotilla_state::StoreLock>, flotilla_state::StateError> {
    match store.lock(operation, std::time::Duration::ZERO) {
        Err(flotilla_state::StateError::Locked { holder, .. }) if !timeout.is_zero() => {
            ui.err(&format!(
                "State is locked by {holder}; waiting up to {}s for it...",
                timeout.as_secs_f64()
            ));
            store.lock(operation, timeout)
        }
        other => other,
    }
}

/// Folds the rollout requests left in the store (while another process held the lock) into
/// `state`; their ids, for [`requests_done`] once `state` is persisted.
pub fn fold_requests(ws: &Workspace, ui: &Ui, state: &mut State) -> Result<Vec<String>, u8> {
    // A request names a rollout in state: without one there is nothing to read.
    if state.rollouts.is_empty() {
        return Ok(Vec::new());
    }
    match ws.backend.requests() {
        Ok(requests) => {
            flotilla_state::fold_requests(state, &requests);
            Ok(requests.into_iter().map(|r| r.id).collect())
        }
        Err(e) => {
            ui.diags(
                &[e.to_diagnostic("cannot read rollout requests")],
                &SourceMap::new(),
            );
            Err(1)
        }
    }
}

/// Removes requests the persisted state now records (a failure only warns: they are
/// folded in again, to the same effect, by the next holder).
pub fn requests_done(ws: &Workspace, ui: &Ui, ids: &[String]) {
    if let Err(e) = ws.backend.remove_requests(ids) {
        let mut d = e.to_diagnostic("cannot remove carried out rollout requests");
        d.severity = flotilla_syntax::Severity::Warning;
        ui.diags(&[d], &SourceMap::new());
    }
}

/// Loads state, finishing the recovery of an interrupted apply when the lock is held.
pub fn load_state(ws: &Workspace, ui: &Ui, holding_lock: bool) -> Result<State, u8> {
    let loaded = {
        let _load = flotilla_syntax::timing::phase("load state");
        ws.backend.load()
    };
    finish_state_load(ws, ui, loaded, holding_lock)
}

/// What [`LocalBackend::load`] read, ready to plan with: recovers an interrupted apply's
/// journal into the state file (when holding the lock) and reports problems.
pub fn finish_state_load(
    ws: &Workspace,
    ui: &Ui,
    loaded: Result<(Option<State>, usize), flotilla_state::StateError>,
    holding_lock: bool,
) -> Result<State, u8> {
    match loaded {
        Ok((state, replayed)) => {
            let mut state = state.unwrap_or_else(State::new);
            let encrypt = ws.codec.read_unencrypted_data() && state.serial > 0;
            // Without the lock the journal may be a running apply's: no warning then.
            if replayed > 0 && holding_lock {
                ui.err(&format!(
                    "Warning: recovered {replayed} change(s) recorded by an interrupted apply into {}",
                    ws.backend.describe()
                ));
            }
            if holding_lock && (replayed > 0 || encrypt) {
                if let Err(e) = ws.backend.persist(&mut state) {
                    ui.diags(&[e.to_diagnostic("cannot save state")], &SourceMap::new());
                    return Err(1);
                }
                if encrypt {
                    ui.err(&format!(
                        "Encrypted the state in {}: remove `unencrypted = true` from the fallback block now",
                        ws.backend.describe()
                    ));
                }
            }
            Ok(state)
        }
        Err(e) => {
            ui.diags(&[e.to_diagnostic("cannot read state")], &SourceMap::new());
            Err(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(lock_timeout("30s"), Ok(Duration::from_secs(30)));
        let bad = lock_timeout("soon").unwrap_err();
        assert_eq!(bad.summary, "invalid -lock-timeout");
        assert_eq!(bad.detail.as_deref(), Some("`soon` is not a duration"));
    }
}
