//! Loading a working directory: configuration, graph, backend and state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flotilla_config::Module;
use flotilla_graph::Graph;
use flotilla_provider::{ProviderHost, ProviderRegistry};
use flotilla_state::{LocalBackend, State, StateStore};
use flotilla_syntax::{Diagnostic, Diagnostics, SourceMap};

use crate::output::Ui;

/// The default state file name, next to the configuration.
pub const DEFAULT_STATE: &str = "flotilla.state.json";

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
    /// Where state lives.
    pub backend: Arc<dyn StateStore>,
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
pub fn load(ui: &Ui) -> Result<Workspace, u8> {
    load_with(ui, |_| (), false).map(|(ws, ())| ws)
}

/// Loads configuration and graph like [`load`], running `alongside` with the configured
/// backend on a second thread while the graph is built (plan and apply read state there:
/// at 100,000 resources each takes about a third of a second). `alongside` does not run
/// when the configuration has errors.
pub fn load_alongside<T: Send>(
    ui: &Ui,
    alongside: impl FnOnce(&dyn StateStore) -> T + Send,
) -> Result<(Workspace, T), u8> {
    load_with(ui, alongside, true)
}

fn load_with<T: Send>(
    ui: &Ui,
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
    let backend = match backend_for(&module, &dir) {
        Ok(b) => b,
        Err(d) => {
            diags.push(d);
            Arc::new(LocalBackend::new(dir.join(DEFAULT_STATE)))
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
            config_hash,
        },
        beside,
    ))
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

fn backend_for(module: &Module, dir: &Path) -> Result<Arc<dyn StateStore>, Diagnostic> {
    let Some(b) = &module.settings.backend else {
        return Ok(Arc::new(LocalBackend::new(dir.join(DEFAULT_STATE))));
    };
    if b.kind != "local" {
        return Err(Diagnostic::error("unsupported backend")
            .with_span(b.span.clone())
            .with_detail(format!(
                "backend `{}` is not available in this version",
                b.kind
            ))
            .with_help("use `backend \"local\" { path = \"...\" }`"));
    }
    for a in &b.body.attrs {
        if a.name != "path" {
            return Err(Diagnostic::error("unsupported argument")
                .with_span(a.span.clone())
                .with_detail(format!(
                    "`{}` is not an argument of the local backend",
                    a.name
                ))
                .with_help("the local backend takes only `path`"));
        }
    }
    match b.body.attr("path") {
        None => Ok(Arc::new(LocalBackend::new(dir.join(DEFAULT_STATE)))),
        Some(a) => match flotilla_config::literal_str(&a.expr.expr) {
            Some(p) => Ok(Arc::new(LocalBackend::new(dir.join(p)))),
            None => Err(Diagnostic::error("expected a literal string")
                .with_span(a.expr.span())
                .with_detail("the backend `path` must be known before anything is evaluated")
                .with_help("write a quoted path without interpolation")),
        },
    }
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
            if replayed > 0 {
                ui.err(&format!(
                    "Warning: recovered {replayed} change(s) recorded by an interrupted apply into {}",
                    ws.backend.describe()
                ));
                if holding_lock && let Err(e) = ws.backend.persist(&mut state) {
                    ui.diags(&[e.to_diagnostic("cannot save state")], &SourceMap::new());
                    return Err(1);
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
    }
}
