//! `flotilla diff --base REV [--head REV] [DIR]`: the desired state at two git revisions,
//! compared without providers, state or a checkout.
//!
//! Both configurations are read straight from the git object database (so a bare clone
//! works), evaluated with every value that only infrastructure knows left unknown, and
//! compared instance by instance: added, removed, changed (with attribute diffs) and moved
//! (when the head's `moved` blocks say so). The result renders as text, JSON or markdown.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use flotilla_plan::eval::Paths;
use flotilla_plan::{Action, Plan, PlanMode};
use flotilla_syntax::{Diagnostic, Diagnostics, SourceMap};

use flotilla_sources::git::RevisionTree;

use crate::DiffArgs;
use crate::commands::{Format, error, markdown_options, output_format, var_args};
use crate::output::Ui;

/// One side of the comparison, as the user named it and as git resolved it.
struct Side {
    rev: String,
    commit: String,
    desired: flotilla_plan::desired::Desired,
    config: Arc<flotilla_config::Module>,
    sources: SourceMap,
}

/// Turns a git error into a diagnostic with a fix.
fn git_error(what: &str, e: &git2::Error, help: &str) -> Diagnostic {
    Diagnostic::error(what.to_string())
        .with_detail(e.message().to_string())
        .with_help(help.to_string())
}

/// The configuration directory as a path inside the repository.
fn repo_relative(repo: &git2::Repository, dir: &Path) -> Result<PathBuf, Diagnostic> {
    let Some(workdir) = repo.workdir().filter(|_| dir.exists()) else {
        // A bare repository: DIR already names a path inside the tree.
        return Ok(normalize(dir));
    };
    let abs = std::fs::canonicalize(dir).map_err(|e| {
        Diagnostic::error("cannot find the configuration directory")
            .with_detail(format!("{}: {e}", dir.display()))
            .with_help("pass a directory inside the repository, or none for the working directory")
    })?;
    let root = std::fs::canonicalize(workdir).unwrap_or_else(|_| workdir.to_path_buf());
    abs.strip_prefix(&root).map(Path::to_path_buf).map_err(|_| {
        Diagnostic::error("the directory is outside the repository")
            .with_detail(format!(
                "{} is not inside {}",
                abs.display(),
                root.display()
            ))
            .with_help("run flotilla diff from inside the repository that holds the configuration")
    })
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Loads and evaluates the configuration in `dir` at `rev`.
async fn side(
    ui: &Ui,
    repo: &git2::Repository,
    rev: &str,
    dir: &Path,
    args: &DiffArgs,
) -> Result<Side, u8> {
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            error(
                ui,
                git_error(
                    &format!("cannot resolve revision `{rev}`"),
                    &e,
                    "name a commit, branch or tag that exists in this repository (fetch it first in CI)",
                ),
            )
        })?;
    let short = commit.id().to_string()[..12].to_string();
    let label = format!("{rev}@{short}");
    // Files are read from the revision, `file()` and `templatefile()` included: named
    // `REV@COMMIT:path` in diagnostics, so the side is never ambiguous.
    let tree = match RevisionTree::open(repo.path(), commit.id(), dir, label) {
        Ok(t) => flotilla_config::Tree::new(t),
        Err(e) => {
            return Err(error(
                ui,
                git_error(
                    "cannot read the commit's tree",
                    &e,
                    "check the repository is not corrupt",
                ),
            ));
        }
    };
    let mut local = SourceMap::new();
    // Remote modules come from the module cache, as that revision's lock file pins them.
    let lock_path = Path::new(flotilla_config::LOCK_FILE);
    let lock = match tree.read_string(lock_path) {
        Ok(text) => {
            let id = local.add(tree.display(lock_path), text.as_str());
            match flotilla_sources::LockFile::parse(id, &text) {
                Ok(l) => l,
                Err(d) => {
                    ui.diags(&[d], &local);
                    return Err(1);
                }
            }
        }
        Err(_) => flotilla_sources::LockFile::default(),
    };
    let installed = flotilla_sources::Installed::new(Path::new("."), lock);
    let (module, mut diags) = flotilla_config::load(&tree, Path::new("."), &mut local, &installed);
    let report = |diags: &Diagnostics, local: &SourceMap| ui.diags(&diags.0, local);
    let Some(module) = module else {
        report(&diags, &local);
        return Err(1);
    };
    let (graph, graph_diags) = flotilla_graph::build(&module);
    diags.extend(graph_diags);
    if diags.has_errors() {
        report(&diags, &local);
        return Err(1);
    }
    let (inputs, input_diags) = flotilla_plan::inputs::collect_with(
        &module,
        None,
        &mut local,
        &var_args(&args.vars),
        std::env::vars(),
    );
    diags.extend(input_diags.0);
    if diags.has_errors() {
        report(&diags, &local);
        return Err(1);
    }
    let config = Arc::new(module);
    // As on disk from inside the configuration's directory.
    let paths = Paths {
        root: PathBuf::from("."),
        cwd: PathBuf::from("."),
        workspace: crate::backend::selected_workspace(std::path::Path::new(".")),
    };
    match flotilla_plan::desired::desired_state(
        Arc::clone(&config),
        Arc::new(graph),
        crate::workspace::offline_registry(),
        paths,
        inputs,
    )
    .await
    {
        Ok((desired, warnings)) => {
            diags.extend(warnings.0);
            report(&diags, &local);
            Ok(Side {
                rev: rev.to_string(),
                commit: commit.id().to_string(),
                desired,
                config,
                sources: local,
            })
        }
        Err(errors) => {
            diags.extend(errors.0);
            report(&diags, &local);
            Err(1)
        }
    }
}

pub async fn diff(ui: &Ui, args: DiffArgs) -> u8 {
    let format = match output_format(ui, &args.format, args.json) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let start = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    // In a bare clone DIR names a path inside the tree, not on disk: look from here.
    let probe = if start.exists() {
        start.clone()
    } else {
        PathBuf::from(".")
    };
    let repo = match git2::Repository::discover(&probe) {
        Ok(r) => r,
        Err(e) => {
            return error(
                ui,
                git_error(
                    "not in a git repository",
                    &e,
                    "run flotilla diff inside a clone (a bare clone works too), or pass its directory",
                ),
            );
        }
    };
    let dir = match repo_relative(&repo, &start) {
        Ok(d) => d,
        Err(d) => return error(ui, d),
    };
    let base = match side(ui, &repo, &args.base, &dir, &args).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let head = match side(ui, &repo, &args.head, &dir, &args).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (changes, diags) =
        flotilla_plan::desired::diff_desired(&base.desired, &head.desired, &head.config);
    if !diags.is_empty() {
        ui.diags(&diags, &head.sources);
        if diags.iter().any(Diagnostic::is_error) {
            return 1;
        }
    }
    let plan = Plan {
        mode: PlanMode::Normal,
        changes,
        ..Plan::default()
    };
    let shown_dir = if dir.as_os_str().is_empty() {
        ".".to_string()
    } else {
        dir.display().to_string()
    };
    let short = |s: &Side| format!("{} ({})", s.rev, &s.commit[..12]);
    let title = format!(
        "flotilla diff: {} → {} in `{shown_dir}`",
        short(&base),
        short(&head)
    );
    match format {
        Format::Json => {
            let mut doc = flotilla_render::json::plan_json(&plan, Vec::new());
            doc["kind"] = serde_json::json!("desired-state-diff");
            doc["base"] = serde_json::json!({ "rev": base.rev, "commit": base.commit });
            doc["head"] = serde_json::json!({ "rev": head.rev, "commit": head.commit });
            doc["directory"] = serde_json::json!(shown_dir);
            ui.out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ));
        }
        Format::Markdown => {
            let opts = match markdown_options(
                ui,
                &args.markdown,
                format!("flotilla diff --base {} --head {}", base.rev, head.rev),
            ) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let opts = flotilla_render::markdown::MarkdownOptions {
                title: if args.markdown.title == crate::DEFAULT_MARKDOWN_TITLE {
                    title
                } else {
                    args.markdown.title.clone()
                },
                ..opts
            };
            ui.out(&flotilla_render::markdown::plan_markdown(&plan, &opts));
        }
        Format::Text => ui.out(&text(&plan, &title)),
    }
    if args.detailed_exitcode && plan.changes.iter().any(|c| c.is_change()) {
        2
    } else {
        0
    }
}

/// The diff as text: each changed instance with its attribute diff, then the counts.
fn text(plan: &Plan, title: &str) -> String {
    let mut out = format!(
        "{title}\n(desired state only: no provider or state was consulted; values only infrastructure knows are unknown)\n\n"
    );
    if plan.changes.is_empty() {
        out.push_str("No differences in the desired state.\n");
        return out;
    }
    let (mut added, mut removed, mut changed, mut moved) = (0, 0, 0, 0);
    for c in &plan.changes {
        out.push_str(&flotilla_render::render_change(c));
        out.push('\n');
        match c.action {
            Action::Create => added += 1,
            Action::Delete => removed += 1,
            Action::Update => changed += 1,
            _ => {}
        }
        if c.prev_addr.is_some() {
            moved += 1;
        }
    }
    out.push_str(&format!(
        "Diff: {added} added, {removed} removed, {changed} changed, {moved} moved.\n"
    ));
    out
}
