//! The configured state backend and encryption: what the `flotilla` block's `backend` and
//! `encryption` blocks say, the backend they open, the workspace selected, and the record
//! `flotilla init` keeps of the backend in use (`.flotilla/backend.json`), by which a changed
//! backend block is noticed and its state migrated.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flotilla_config::{BlockBody, Module};
use flotilla_lang::{EvalContext, Evaluator, Scope, Subject, Value};
use flotilla_plan::eval::InputValue;
use flotilla_provider::ProviderHost;
use flotilla_state::{
    Backend, Codec, DEFAULT_WORKSPACE, Encryption, Key, KeySource, LocalWorkspaces,
};
use flotilla_syntax::{Diagnostic, Span};

/// The default state file name, next to the configuration.
pub const DEFAULT_STATE: &str = "flotilla.state.json";
/// Where `flotilla init` records the backend in use.
pub const RECORD: &str = ".flotilla/backend.json";
/// Where `flotilla workspace select` records the selected workspace.
pub const ENVIRONMENT: &str = ".flotilla/environment";
/// The environment variable that selects a workspace (over `.flotilla/environment`).
pub const WORKSPACE_ENV: &str = "FLOTILLA_WORKSPACE";

/// A backend block reduced to what opens it: the kind and its (literal) arguments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackendSpec {
    /// `local`, `postgres` or `kubernetes`.
    pub kind: String,
    /// Its arguments (the connection string resolved from `PG_CONN_STR` when not given).
    pub settings: BTreeMap<String, String>,
}

impl BackendSpec {
    /// The local backend at its default path.
    pub fn local_default() -> BackendSpec {
        BackendSpec {
            kind: "local".into(),
            settings: BTreeMap::new(),
        }
    }

    /// How it is named to the user.
    pub fn describe(&self) -> String {
        match self.kind.as_str() {
            "local" => format!(
                "local backend ({})",
                self.settings
                    .get("path")
                    .map_or(DEFAULT_STATE, String::as_str)
            ),
            "postgres" => format!(
                "postgres backend (schema \"{}\")",
                self.settings
                    .get("schema_name")
                    .map_or(flotilla_backends::postgres::DEFAULT_SCHEMA, String::as_str)
            ),
            other => format!("{other} backend"),
        }
    }

    /// What moved from `old` to this one, for the "backend configuration changed" error:
    /// the kinds, or the arguments that differ (values of `conn_str` and `kubeconfig_raw`
    /// withheld, since they may hold credentials).
    pub fn change_from(&self, old: &BackendSpec) -> String {
        if self.kind != old.kind {
            return format!(
                "the state is in the {}; the configuration now names the {}",
                old.describe(),
                self.describe()
            );
        }
        let keys: std::collections::BTreeSet<&String> =
            self.settings.keys().chain(old.settings.keys()).collect();
        let shown = |k: &str, v: Option<&String>| match v {
            None => "unset".to_string(),
            Some(_) if k == "conn_str" || k == "kubeconfig_raw" => "another value".to_string(),
            Some(v) => format!("{v:?}"),
        };
        let moved: Vec<String> = keys
            .into_iter()
            .filter(|k| self.settings.get(*k) != old.settings.get(*k))
            .map(|k| {
                format!(
                    "`{k}` from {} to {}",
                    shown(k, old.settings.get(k)),
                    shown(k, self.settings.get(k))
                )
            })
            .collect();
        format!(
            "the state is in the {} as configured before; the configuration changed its {}",
            old.describe(),
            moved.join(", ")
        )
    }
}

/// The arguments each backend kind takes, and which are required.
const ARGUMENTS: &[(&str, &[&str], &[&str])] = &[
    ("local", &["path"], &[]),
    ("postgres", &["conn_str", "schema_name"], &[]),
    (
        "kubernetes",
        &[
            "sandbox",
            "kubeconfig",
            "kubeconfig_raw",
            "context",
            "namespace",
            "secret_suffix",
        ],
        &["secret_suffix"],
    ),
];

/// Reads the configuration's backend block (the local default without one).
pub fn spec_of(module: &Module) -> Result<BackendSpec, Diagnostic> {
    let Some(b) = &module.settings.backend else {
        return Ok(BackendSpec::local_default());
    };
    let Some((_, allowed, required)) = ARGUMENTS.iter().find(|(k, _, _)| *k == b.kind) else {
        let kinds: Vec<&str> = ARGUMENTS.iter().map(|(k, _, _)| *k).collect();
        return Err(Diagnostic::error("unsupported backend")
            .with_span(b.span.clone())
            .with_detail(format!("there is no backend `{}`", b.kind))
            .with_help(
                match flotilla_syntax::did_you_mean(&b.kind, kinds.iter().copied()) {
                    Some(s) => format!("did you mean \"{s}\"? (backends: {})", kinds.join(", ")),
                    None => format!("the backends are {}", kinds.join(", ")),
                },
            ));
    };
    let mut settings = BTreeMap::new();
    for a in &b.body.attrs {
        if !allowed.contains(&a.name.as_str()) {
            return Err(Diagnostic::error("unsupported argument")
                .with_span(a.span.clone())
                .with_detail(format!(
                    "`{}` is not an argument of the {} backend",
                    a.name, b.kind
                ))
                .with_help(format!(
                    "the {} backend takes {}",
                    b.kind,
                    allowed
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
        }
        let Some(v) = flotilla_config::literal_str(&a.expr.expr) else {
            return Err(Diagnostic::error("expected a literal string")
                .with_span(a.expr.span())
                .with_detail(format!(
                    "the backend's `{}` must be known before anything is evaluated",
                    a.name
                ))
                .with_help("write a quoted string without interpolation (the postgres connection string may come from PG_CONN_STR instead)"));
        };
        settings.insert(a.name.clone(), v);
    }
    for r in *required {
        if !settings.contains_key(*r) {
            return Err(Diagnostic::error("missing argument")
                .with_span(b.span.clone())
                .with_detail(format!("the {} backend needs `{r}`", b.kind))
                .with_help(format!("add `{r} = \"...\"` to the backend block")));
        }
    }
    if b.kind == "postgres" && !settings.contains_key("conn_str") {
        match std::env::var("PG_CONN_STR") {
            Ok(c) if !c.is_empty() => {
                settings.insert("conn_str".into(), c);
            }
            _ => {
                return Err(Diagnostic::error("missing argument")
                    .with_span(b.span.clone())
                    .with_detail("the postgres backend needs a connection string")
                    .with_help("set `conn_str = \"postgres://user@host/db\"` or the PG_CONN_STR environment variable"));
            }
        }
    }
    if b.kind == "kubernetes" {
        let sources = ["sandbox", "kubeconfig", "kubeconfig_raw"]
            .iter()
            .filter(|k| settings.contains_key(**k))
            .count();
        if sources > 1 {
            return Err(Diagnostic::error("conflicting arguments")
                .with_span(b.span.clone())
                .with_detail("set only one of `sandbox`, `kubeconfig` and `kubeconfig_raw`")
                .with_help("name the cluster the way a kube provider block does"));
        }
        let suffix = &settings["secret_suffix"];
        if flotilla_state::check_workspace_name(suffix).is_err() {
            return Err(Diagnostic::error("invalid argument")
                .with_span(b.span.clone())
                .with_detail(format!(
                    "`secret_suffix = \"{suffix}\"` cannot be part of a Kubernetes object name"
                ))
                .with_help("use lower-case letters, digits and `-`"));
        }
    }
    Ok(BackendSpec {
        kind: b.kind.clone(),
        settings,
    })
}

/// Opens the backend `spec` describes, for the configuration in `dir`.
pub fn open(
    spec: &BackendSpec,
    dir: &Path,
    codec: Codec,
    host: &Arc<ProviderHost>,
) -> Arc<dyn Backend> {
    let get = |k: &str| spec.settings.get(k).cloned();
    match spec.kind.as_str() {
        "postgres" => Arc::new(flotilla_backends::Postgres::new(
            flotilla_backends::PostgresSettings {
                conn_str: get("conn_str").unwrap_or_default(),
                schema_name: get("schema_name")
                    .unwrap_or_else(|| flotilla_backends::postgres::DEFAULT_SCHEMA.into()),
            },
            codec,
            tokio::runtime::Handle::current(),
        )),
        "kubernetes" => Arc::new(flotilla_backends::Kubernetes::new(
            flotilla_backends::KubernetesSettings {
                connection: flotilla_provider_kube::Settings {
                    kubeconfig: get("kubeconfig"),
                    kubeconfig_raw: get("kubeconfig_raw"),
                    context: get("context"),
                    sandbox: get("sandbox"),
                },
                namespace: get("namespace").unwrap_or_else(|| "default".into()),
                secret_suffix: get("secret_suffix").unwrap_or_default(),
            },
            codec,
            Arc::clone(host),
            tokio::runtime::Handle::current(),
        )),
        _ => Arc::new(LocalWorkspaces::new(
            dir.join(get("path").unwrap_or_else(|| DEFAULT_STATE.into())),
            codec,
        )),
    }
}

/// The selected workspace: `FLOTILLA_WORKSPACE`, else `.flotilla/environment`, else
/// `default`.
pub fn selected_workspace(dir: &Path) -> String {
    if let Ok(w) = std::env::var(WORKSPACE_ENV)
        && !w.is_empty()
    {
        return w;
    }
    std::fs::read_to_string(dir.join(ENVIRONMENT))
        .map(|t| t.trim().to_string())
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| DEFAULT_WORKSPACE.to_string())
}

/// The backend `flotilla init` last recorded, if any.
pub fn recorded(dir: &Path) -> Option<BackendSpec> {
    let text = std::fs::read_to_string(dir.join(RECORD)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records `spec` as the backend in use (owner-only: it may hold a connection string).
pub fn record(dir: &Path, spec: &BackendSpec) -> std::io::Result<()> {
    let path = dir.join(RECORD);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = serde_json::to_string_pretty(spec).expect("a spec serializes");
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)
}

/// Root variables for the encryption block: given values, else literal defaults.
struct VarScope<'a> {
    inputs: &'a BTreeMap<String, InputValue>,
    module: &'a Module,
}

impl Scope for VarScope<'_> {
    fn resolve(&self, subject: &Subject, span: &Span) -> Result<Cow<'_, Value>, Diagnostic> {
        let Subject::Var(name) = subject else {
            return Err(Diagnostic::error("reference not allowed here")
                .with_span(span.clone())
                .with_detail(format!("`{subject}` cannot be used in the encryption block: it is evaluated before anything else"))
                .with_help("use root variables (`var.NAME`), literals and functions"));
        };
        if let Some(v) = self.inputs.get(name) {
            return Ok(Cow::Borrowed(&v.value));
        }
        let Some(var) = self.module.variables.get(name) else {
            return Err(Diagnostic::error("reference to undeclared variable")
                .with_span(span.clone())
                .with_detail(format!("there is no `variable \"{name}\"`"))
                .with_help("declare the variable, or use another one"));
        };
        match &var.default {
            Some(d) => {
                let ctx = EvalContext::new(d.file, Path::new("."));
                Evaluator::new(&flotilla_lang::EmptyScope, &ctx)
                    .eval(&d.expr)
                    .map(Cow::Owned)
            }
            None => Err(Diagnostic::error("no value for the encryption key")
                .with_span(span.clone())
                .with_detail(format!(
                    "`var.{name}` has no value, and state cannot be read without it"
                ))
                .with_help(format!("pass -var '{name}=...' or set FLOTILLA_VAR_{name}"))),
        }
    }
}

fn eval_string(
    body: &BlockBody,
    name: &str,
    scope: &VarScope<'_>,
) -> Result<Option<(String, Span)>, Diagnostic> {
    let Some(a) = body.attr(name) else {
        return Ok(None);
    };
    let ctx = EvalContext::new(a.expr.file, Path::new("."));
    let v = Evaluator::new(scope, &ctx).eval(&a.expr.expr)?;
    match v.unmark().0 {
        Value::String(s) => Ok(Some((s, a.expr.span()))),
        Value::Number(n) => Ok(Some((n.to_string(), a.expr.span()))),
        _ => Err(Diagnostic::error("expected a string")
            .with_span(a.expr.span())
            .with_detail(format!("`{name}` must be a string"))
            .with_help("write a quoted string or a variable holding one")),
    }
}

fn unknown_in(
    body: &BlockBody,
    what: &str,
    attrs: &[&str],
    blocks: &[&str],
) -> Result<(), Diagnostic> {
    for a in &body.attrs {
        if !attrs.contains(&a.name.as_str()) {
            return Err(Diagnostic::error("unsupported argument")
                .with_span(a.span.clone())
                .with_detail(format!("`{}` is not an argument of {what}", a.name))
                .with_help(format!("{what} takes {}", attrs.join(", "))));
        }
    }
    for b in &body.blocks {
        if !blocks.contains(&b.kind.as_str()) {
            return Err(Diagnostic::error("unsupported block")
                .with_span(b.span.clone())
                .with_detail(format!("`{}` is not a block of {what}", b.kind))
                .with_help(if blocks.is_empty() {
                    format!("{what} has no blocks")
                } else {
                    format!("{what} takes {}", blocks.join(", "))
                }));
        }
    }
    Ok(())
}

/// The keys of one body's `key_provider` blocks.
fn keys(body: &BlockBody, scope: &VarScope<'_>) -> Result<Vec<Key>, Diagnostic> {
    let mut out = Vec::new();
    for b in body.blocks.iter().filter(|b| b.kind == "key_provider") {
        let kind = b.labels.first().map(String::as_str).unwrap_or_default();
        match kind {
            "pbkdf2" => {
                unknown_in(
                    &b.body,
                    "key_provider \"pbkdf2\"",
                    &["passphrase", "iterations"],
                    &[],
                )?;
                let Some((passphrase, span)) = eval_string(&b.body, "passphrase", scope)? else {
                    return Err(Diagnostic::error("missing argument")
                        .with_span(b.span.clone())
                        .with_detail("key_provider \"pbkdf2\" needs `passphrase`")
                        .with_help(
                            "add `passphrase = var.state_passphrase` (a sensitive variable)",
                        ));
                };
                if passphrase.chars().count() < 16 {
                    return Err(Diagnostic::error("passphrase too short")
                        .with_span(span)
                        .with_detail("an encryption passphrase needs at least 16 characters")
                        .with_help("use a longer passphrase"));
                }
                let iterations = match eval_string(&b.body, "iterations", scope)? {
                    None => flotilla_state::crypt::DEFAULT_ITERATIONS,
                    Some((n, span)) => match n.parse::<u32>() {
                        Ok(n) if n >= flotilla_state::crypt::MIN_ITERATIONS => n,
                        _ => {
                            return Err(Diagnostic::error("invalid iterations")
                                .with_span(span)
                                .with_detail(format!(
                                    "`iterations` must be a whole number of at least {}",
                                    flotilla_state::crypt::MIN_ITERATIONS
                                ))
                                .with_help("leave it out for the default (600000)"));
                        }
                    },
                };
                out.push(Key {
                    name: "key_provider \"pbkdf2\"".into(),
                    source: KeySource::Passphrase {
                        passphrase,
                        iterations,
                    },
                });
            }
            "env" => {
                unknown_in(&b.body, "key_provider \"env\"", &["variable"], &[])?;
                let Some((var, span)) = eval_string(&b.body, "variable", scope)? else {
                    return Err(Diagnostic::error("missing argument")
                        .with_span(b.span.clone())
                        .with_detail("key_provider \"env\" needs `variable`, the environment variable holding a base64 key")
                        .with_help("add `variable = \"FLOTILLA_STATE_KEY\"`"));
                };
                let raw = std::env::var(&var).unwrap_or_default();
                use base64::Engine as _;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(raw.trim())
                    .ok()
                    .and_then(|k| <[u8; 32]>::try_from(k).ok());
                let Some(key) = key else {
                    return Err(Diagnostic::error("no encryption key")
                        .with_span(span)
                        .with_detail(format!("the environment variable {var} must hold a 32-byte key in base64"))
                        .with_help("make one with `head -c 32 /dev/urandom | base64` and keep it in your secret store"));
                };
                out.push(Key {
                    name: format!("key_provider \"env\" ({var})"),
                    source: KeySource::Raw(key),
                });
            }
            other => {
                return Err(Diagnostic::error("unknown key provider")
                    .with_span(b.span.clone())
                    .with_detail(format!("there is no key_provider \"{other}\""))
                    .with_help("use key_provider \"pbkdf2\" { passphrase = ... } or key_provider \"env\" { variable = \"...\" }"));
            }
        }
    }
    Ok(out)
}

/// The codec the configuration's `encryption` block describes (plain without one).
pub fn codec(module: &Module, inputs: &BTreeMap<String, InputValue>) -> Result<Codec, Diagnostic> {
    let Some(enc) = &module.settings.encryption else {
        return Ok(Codec::plain());
    };
    let scope = VarScope { inputs, module };
    unknown_in(
        &enc.body,
        "the encryption block",
        &["method"],
        &["key_provider", "fallback"],
    )?;
    if let Some((m, span)) = eval_string(&enc.body, "method", &scope)?
        && m != "aes_gcm"
    {
        return Err(Diagnostic::error("unknown encryption method")
            .with_span(span)
            .with_detail(format!("there is no method `{m}`"))
            .with_help("use method = \"aes_gcm\""));
    }
    let primary = keys(&enc.body, &scope)?;
    let [primary] = <[Key; 1]>::try_from(primary).map_err(|found| {
        Diagnostic::error("one key provider needed")
            .with_span(enc.span.clone())
            .with_detail(format!(
                "the encryption block has {} key_provider blocks; one key writes",
                found.len()
            ))
            .with_help("keep one key_provider; put older keys in a `fallback` block")
    })?;
    let mut fallback = Vec::new();
    let mut unencrypted = false;
    for f in enc.body.blocks.iter().filter(|b| b.kind == "fallback") {
        unknown_in(&f.body, "fallback", &["unencrypted"], &["key_provider"])?;
        fallback.extend(keys(&f.body, &scope)?);
        if let Some(a) = f.body.attr("unencrypted") {
            let flotilla_syntax::hcl_edit::expr::Expression::Bool(b) = &a.expr.expr else {
                // Worded as the loader's own literal checks are.
                return Err(Diagnostic::error("expected a literal boolean")
                    .with_span(a.expr.span())
                    .with_detail("`unencrypted` must be `true` or `false`")
                    .with_help(
                        "write `unencrypted = true` to read existing unencrypted state once",
                    ));
            };
            unencrypted |= *b.value();
        }
    }
    Ok(Codec::encrypted(Encryption::new(
        primary,
        fallback,
        unencrypted,
    )))
}
