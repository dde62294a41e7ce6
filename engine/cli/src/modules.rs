//! `flotilla init` (module installation), `flotilla modules` and `flotilla module publish`.

use std::path::{Path, PathBuf};

use flotilla_config::{ModuleSource, SOURCE_GRAMMAR};
use flotilla_sources::{Installed, LockFile};
use flotilla_syntax::{Diagnostic, SourceMap};

use crate::commands::error;
use crate::output::Ui;

/// `flotilla init [-upgrade] [-migrate-state]`: installs modules, writes the lock file, sets
/// up the backend, then checks the rest.
pub async fn init(
    ui: &Ui,
    host: &std::sync::Arc<flotilla_provider::ProviderHost>,
    args: crate::InitArgs,
) -> u8 {
    let upgrade = args.upgrade;
    let dir = PathBuf::from(".");
    ui.out("Initializing flotilla...\n\n");
    let mut sources = SourceMap::new();
    let mut said_header = false;
    let mut progress = |line: &str| {
        if !said_header {
            ui.out(if upgrade {
                "Upgrading modules...\n"
            } else {
                "Installing modules...\n"
            });
            said_header = true;
        }
        ui.out(&format!("{line}\n"));
    };
    let outcome = flotilla_sources::install(&dir, &mut sources, upgrade, &mut progress).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(diags) => {
            ui.diags(&diags.0, &sources);
            return 1;
        }
    };
    if !outcome.changes.is_empty() {
        ui.out(&format!("\n{}:\n", flotilla_config::LOCK_FILE));
        for c in &outcome.changes {
            let line = match (&c.old, &c.new) {
                (None, Some(n)) => format!("  + {}: {n}", c.key),
                (Some(o), Some(n)) => format!("  ~ {}: {o} -> {n}", c.key),
                (Some(o), None) => format!("  - {}: {o} (no longer called)", c.key),
                (None, None) => continue,
            };
            ui.out(&format!("{line}\n"));
        }
    }
    if !outcome.lock.modules.is_empty() {
        let n = outcome.lock.modules.len();
        ui.out(&format!(
            "\n{n} module{} locked in {} ({} fetched, {} from the module cache).\n\n",
            if n == 1 { "" } else { "s" },
            flotilla_config::LOCK_FILE,
            outcome.fetched.len(),
            n - outcome.fetched.len().min(n)
        ));
    }
    crate::commands::init(ui, host, &args)
}

/// `flotilla modules [-json]`.
pub fn list(ui: &Ui, json: bool) -> u8 {
    let dir = PathBuf::from(".");
    let mut sources = SourceMap::new();
    let lock = match LockFile::read(&dir, &mut sources) {
        Ok(l) => l,
        Err(d) => {
            ui.diags(&[d], &sources);
            return 1;
        }
    };
    let installed = Installed::new(&dir, lock.clone());
    let mut rows = Vec::new();
    let mut broken = 0;
    for (key, l) in &lock.modules {
        let status = match ModuleSource::parse(&l.source) {
            Err(e) => format!("invalid source: {e}"),
            Ok(source) => {
                let call = flotilla_config::ModuleCall {
                    name: key.rsplit('.').next().unwrap_or(key).to_string(),
                    source,
                    source_span: l.span.clone().unwrap_or_default(),
                    version: l.constraint.clone().map(|c| (c, Default::default())),
                    count: None,
                    for_each: None,
                    depends_on: Vec::new(),
                    providers: Vec::new(),
                    args: Vec::new(),
                    span: Default::default(),
                };
                match installed.verify(key, &call, l) {
                    Ok(_) => "installed".to_string(),
                    Err(d) => d.detail.unwrap_or(d.summary),
                }
            }
        };
        if status != "installed" {
            broken += 1;
        }
        rows.push((key.clone(), l.clone(), status));
    }
    if json {
        let doc = serde_json::json!({
            "format_version": "1.0",
            "lock_version": flotilla_sources::LOCK_VERSION,
            "cache": installed.cache().root().display().to_string(),
            "modules": rows.iter().map(|(key, l, status)| serde_json::json!({
                "path": key,
                "source": l.source,
                "constraint": l.constraint,
                "version": l.version,
                "revision": l.revision,
                "hash": l.hash,
                "installed": status == "installed",
                "problem": (status != "installed").then_some(status),
            })).collect::<Vec<_>>(),
        });
        ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    } else if rows.is_empty() {
        ui.out("No remote modules: flotilla.lock.hcl pins nothing.\n");
    } else {
        for (key, l, status) in &rows {
            ui.out(&format!(
                "{key}\n  source:   {}\n  version:  {}\n  revision: {}\n  hash:     {}\n  status:   {status}\n",
                l.source,
                match (&l.version, &l.constraint) {
                    (Some(v), Some(c)) => format!("{v} ({c})"),
                    (Some(v), None) => v.clone(),
                    (None, _) => "(fixed revision)".into(),
                },
                l.revision,
                l.hash
            ));
        }
    }
    u8::from(broken > 0)
}

/// `flotilla module publish DIR oci://HOST/REPOSITORY:VERSION`.
pub async fn publish(ui: &Ui, dir: &Path, target: &str) -> u8 {
    let bad_target = |detail: String| {
        Diagnostic::error("invalid publish target")
            .with_detail(detail)
            .with_help("write oci://HOST/REPOSITORY:VERSION, e.g. oci://registry.example.com/platform/edge:1.2.0")
    };
    let Some(rest) = target.strip_prefix("oci://") else {
        return error(
            ui,
            bad_target(format!("`{target}` is not an oci:// address")),
        );
    };
    let Some((repo, tag)) = rest
        .rsplit_once(':')
        .filter(|(r, t)| r.contains('/') && !t.contains('/'))
    else {
        return error(ui, bad_target(format!("`{target}` names no version tag")));
    };
    if flotilla_sources::Version::parse(tag).is_none() {
        return error(
            ui,
            bad_target(format!(
                "`{tag}` is not a version; `version` constraints match tags like 1.2.0"
            )),
        );
    }
    let source = match ModuleSource::parse(&format!("oci://{repo}")) {
        Ok(ModuleSource::Oci(o)) => o,
        Ok(_) => return error(ui, bad_target(format!("`{target}` is not an OCI address"))),
        Err(e) => {
            return error(
                ui,
                Diagnostic::error("invalid publish target")
                    .with_detail(e)
                    .with_help(SOURCE_GRAMMAR),
            );
        }
    };
    let mut sources = SourceMap::new();
    let (module, diags) = flotilla_config::load_dir(dir, &mut sources);
    if module.is_none() || diags.has_errors() {
        ui.diags(&diags.0, &sources);
        return 1;
    }
    let registry = flotilla_sources::oci::Registry::new(&source.registry);
    match registry.publish(dir, &source.repository, tag).await {
        Ok((digest, hash)) => {
            ui.out(&format!(
                "Published {} as {target}\n  digest: {digest}\n  hash:   {hash}\n\nUse it with:\n  module \"NAME\" {{\n    source  = \"oci://{repo}\"\n    version = \"~> {tag}\"\n  }}\n",
                dir.display()
            ));
            0
        }
        Err(e) => error(
            ui,
            Diagnostic::error("cannot publish the module")
                .with_detail(e)
                .with_help("check the registry address, that it is up, and your credentials in the docker configuration"),
        ),
    }
}
