//! The `flotilla` command-line tool: the only part of flotilla that prints or exits.
//!
//! Flags are accepted Terraform-style (`-auto-approve`, `-var=x=1`) and GNU-style
//! (`--auto-approve`); see [`normalize_args`]. Exit codes: 0 success, 1 error, and with
//! `plan -detailed-exitcode`, 2 when the plan has changes.

/// A 100,000-resource plan allocates millions of small values; glibc's allocator spent
/// close to half of such a plan in `free` (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the exit code from an `Err`.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}

mod backend;
mod commands;
mod diff;
mod fmt;
mod host;
mod modules;
mod output;
mod rollout;
mod sandbox;
mod state;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  flotilla -chdir=examples/basics init
  flotilla plan -out=tfplan        # preview and save the plan
  flotilla apply tfplan            # apply exactly that plan
  flotilla apply -auto-approve -var 'region=eu'

Flags work with one dash or two: -auto-approve and --auto-approve are the same.
Set NO_COLOR=1 (or pass -no-color) for plain output.";

/// Declarative infrastructure for Kubernetes fleets.
#[derive(Parser, Debug)]
#[command(name = "flotilla", version, about, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    /// Switch to DIR before doing anything (like `cd DIR && flotilla ...`).
    #[arg(long, value_name = "DIR", global = true)]
    chdir: Option<PathBuf>,
    /// Disable colour in output (also: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    no_color: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prepare a working directory: install remote modules, write the lock file, check the
    /// configuration loads and its providers exist.
    #[command(
        after_help = "Examples:\n  flotilla init             # install what is missing, keeping flotilla.lock.hcl's versions\n  flotilla init -upgrade    # resolve every module again within its `version` constraint\n\nModules come from git, OCI registries and module registries (docs/modules.md); init is the\nonly command that fetches them. flotilla's providers are built in. Safe to run any time."
    )]
    Init(InitArgs),
    /// List the modules flotilla.lock.hcl pins and whether each is installed intact.
    #[command(
        after_help = "Examples:\n  flotilla modules\n  flotilla modules -json\n\nExit code 1 when a locked module is missing or its files no longer match the lock file."
    )]
    Modules(ModulesArgs),
    /// Work with module packages: publish one to an OCI registry.
    #[command(
        subcommand,
        after_help = "Example:\n  flotilla module publish ./modules/edge oci://registry.example.com/platform/edge:1.2.0"
    )]
    Module(ModuleCommand),
    /// Check the configuration without touching state or any real object.
    #[command(
        after_help = "Example:\n  flotilla validate\n\nReports every problem at once: syntax, unknown blocks and arguments, undeclared references,\ncycles, and arguments a resource type does not accept. Exit code 1 when anything is wrong."
    )]
    Validate(ValidateArgs),
    /// Rewrite configuration files in the canonical layout (comments are kept).
    #[command(
        after_help = "Examples:\n  flotilla fmt              # rewrite files in place\n  flotilla fmt -check -diff # CI: fail and show what would change"
    )]
    Fmt(FmtArgs),
    /// Show what apply would change.
    #[command(
        after_help = "Examples:\n  flotilla plan\n  flotilla plan -out=tfplan -var 'replicas=3'\n  flotilla plan -detailed-exitcode   # exit 0: no changes, 1: error, 2: changes\n  flotilla plan -target=module.net -replace='builtin_random.suffix'"
    )]
    Plan(PlanArgs),
    /// Make the real objects match the configuration (or apply a saved plan).
    #[command(
        after_help = "Examples:\n  flotilla apply                 # plan, ask for approval, apply\n  flotilla apply -auto-approve   # no prompt (CI)\n  flotilla apply tfplan          # apply a saved plan exactly, no prompt\n\nCtrl-C stops scheduling new work, lets operations in progress finish, saves state and exits 1.\nExit codes: 0 done, 1 failed, 4 stopped before a rollout wave that needs approval (it prints\nthe `flotilla rollout approve` command that continues it)."
    )]
    Apply(ApplyArgs),
    /// Destroy every object flotilla manages in this configuration.
    #[command(
        after_help = "Examples:\n  flotilla destroy\n  flotilla destroy -auto-approve -target=builtin_file.report\n\nResources with `prevent_destroy = true` make the plan fail instead."
    )]
    Destroy(PlanArgs),
    /// Show the state, or a saved plan.
    #[command(
        after_help = "Examples:\n  flotilla show                          # resources in state\n  flotilla show tfplan                   # a saved plan\n  flotilla show -json tfplan             # machine-readable (schema: docs/schemas/plan.schema.json)\n  flotilla show -format markdown tfplan  # a pull-request comment (docs/previews.md)"
    )]
    Show(ShowArgs),
    /// Show root module outputs from state.
    #[command(
        after_help = "Examples:\n  flotilla output\n  flotilla output -json\n  flotilla output endpoint\n\nSensitive outputs are shown as (sensitive value)."
    )]
    Output(OutputArgs),
    /// Inspect or edit state: list, show, rm, mv, pull, push.
    #[command(
        subcommand,
        after_help = "Examples:\n  flotilla state list\n  flotilla state show 'builtin_data.a[0]'\n  flotilla state mv builtin_data.old builtin_data.new\n  flotilla state rm builtin_file.tmp\n  flotilla state pull > backup.json\n  flotilla state push backup.json"
    )]
    State(StateCommand),
    /// Manage workspaces: several states of one configuration in one backend.
    #[command(
        subcommand,
        after_help = "Examples:\n  flotilla workspace new staging\n  flotilla workspace select staging\n  flotilla workspace list\n  FLOTILLA_WORKSPACE=prod flotilla plan\n\n`flotilla.workspace` in expressions is the selected workspace's name."
    )]
    Workspace(WorkspaceCommand),
    /// Release a state lock whose holder is stuck (the lock ID is in the "locked" error).
    #[command(
        after_help = "Example:\n  flotilla force-unlock 3f2c9e4a-...\n\nA holder that was killed releases its lock by itself (a closed database session, an\nexpired Lease); force-unlock is for a holder that is alive but stuck, and ends it.\nLocal locks are released by the operating system when their process exits."
    )]
    ForceUnlock(ForceUnlockArgs),
    /// Follow and steer fleet rollouts: where each wave and member stands, approvals,
    /// pause, resume, abort.
    #[command(
        subcommand,
        after_help = "Examples:\n  flotilla rollout status                 # every rollout, per wave and member\n  flotilla rollout status checkout -json\n  flotilla rollout approve checkout       # the next wave that waits for approval\n  flotilla rollout pause checkout         # apply will not move it until resume\n  flotilla rollout resume checkout\n  flotilla rollout abort checkout\n\nDecisions are recorded in state and take effect at the next `flotilla apply`. An apply that\nstops before a wave needing approval exits with code 4 and names the command that\ncontinues it. See docs/rollouts.md."
    )]
    Rollout(RolloutCommand),
    /// Print the dependency graph as DOT or Mermaid.
    #[command(
        after_help = "Examples:\n  flotilla graph | dot -Tsvg > graph.svg\n  flotilla graph -format=mermaid\n  flotilla graph -plan tfplan -format=mermaid   # resources coloured by planned action"
    )]
    Graph(GraphArgs),
    /// Compare the desired state at two git revisions, without providers or state.
    #[command(
        long_about = "Compare the desired state at two git revisions, without providers or state.\n\nBoth configurations are read from the git object database (no checkout; a bare clone works) and evaluated with every value that only infrastructure knows left unknown. The result lists resources added, removed, changed (with attribute diffs) and moved (by `moved` blocks at the head). This is the plan preview for pull requests that cannot reach any cluster, such as those from forks.",
        after_help = "Examples:\n  flotilla diff --base origin/main\n  flotilla diff --base v1.2.0 --head HEAD envs/prod\n  flotilla diff --base origin/main -format markdown > comment.md"
    )]
    Diff(DiffArgs),
    /// Evaluate expressions against the configuration and state.
    #[command(
        after_help = "Examples:\n  echo 'upper(var.name)' | flotilla console\n  flotilla console          # interactive; one expression per line, Ctrl-D to quit"
    )]
    Console(VarArgs),
    /// Adopt an existing object into state under a resource address.
    #[command(
        after_help = "Examples:\n  flotilla import kube_namespace.apps apps\n  flotilla import kube_config_map.settings shop/settings\n  flotilla import 'capi_cluster.c[\"beijing\"]' default/beijing\n\nThe resource block must exist; the object is read through its provider and recorded in\nstate without changing it. Run `flotilla plan` afterwards to see how the configuration\ndiffers. An `import { to = ADDR, id = \"...\" }` block does the same as part of a plan."
    )]
    Import(ImportArgs),
    /// Run local Kubernetes-API clusters to try flotilla without a fleet.
    #[command(
        subcommand,
        after_help = "Examples:\n  flotilla sandbox up --name mgmt\n  flotilla sandbox status\n  KUBECONFIG=.flotilla/sandbox/kubeconfig kubectl get ns\n  flotilla sandbox down"
    )]
    Sandbox(sandbox::SandboxCommand),
    /// Print the flotilla version.
    Version,
}

#[derive(Args, Debug, Clone, Default)]
struct VarArgs {
    /// Set a root variable: -var 'name=value' (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Read root variables from a file of `name = value` lines (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    var_files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct InitArgs {
    /// Resolve every module again within its `version` constraint and rewrite the lock file.
    #[arg(long)]
    upgrade: bool,
    /// Copy every workspace's state from the backend used before to the configured one.
    #[arg(long)]
    migrate_state: bool,
    /// With -migrate-state: copy without asking, replacing state already in the new backend.
    #[arg(long)]
    force_copy: bool,
    /// Use the configured backend as it is, without copying state from the previous one.
    #[arg(long)]
    reconfigure: bool,
}

#[derive(Subcommand, Debug)]
enum RolloutCommand {
    /// Where rollouts stand: per wave and member, the phase, revision, canary weight and
    /// failed checks.
    Status {
        /// Only this rollout (`checkout` or `rollout.checkout`).
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve the next wave that waits for approval; `flotilla apply` then continues. While
    /// an apply runs (the state is locked), the approval is left for it and counts before
    /// that wave starts.
    Approve(RolloutTarget),
    /// Stop a rollout: `flotilla apply` will not move it until it is resumed. While an apply
    /// moves it, that apply starts no new member, lets members in progress finish their
    /// gates, and stops with the rollout paused.
    Pause(RolloutTarget),
    /// Let a paused rollout continue, or clear a rolled back or aborted one so the next
    /// apply starts it again from wave 1.
    Resume(RolloutTarget),
    /// Stop a rollout for good at its revision (members keep what they run now); a running
    /// apply stops as for `pause`.
    Abort(RolloutTarget),
}

#[derive(Args, Debug)]
struct RolloutTarget {
    /// The rollout (`checkout` or `rollout.checkout`).
    name: String,
    /// How long to wait for the state lock (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    lock_timeout: String,
}

#[derive(Args, Debug)]
struct ForceUnlockArgs {
    /// The lock ID from the error that named the holder.
    lock_id: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand, Debug)]
enum WorkspaceCommand {
    /// List workspaces; the selected one is marked with `*`.
    List,
    /// Print the selected workspace's name.
    Show,
    /// Create a workspace (with empty state) and select it.
    New {
        /// Its name: lower-case letters, digits and `-`.
        name: String,
    },
    /// Select a workspace (recorded in .flotilla/environment; FLOTILLA_WORKSPACE overrides).
    Select {
        /// The workspace.
        name: String,
    },
    /// Delete a workspace's state (refused while it still records resources, unless -force).
    Delete {
        /// The workspace.
        name: String,
        /// Delete even if its state records resources (they are not destroyed, only forgotten).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
struct ModulesArgs {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum ModuleCommand {
    /// Pack a module directory (deterministic archive, blake3 tree hash) and push it.
    #[command(
        after_help = "Example:\n  flotilla module publish ./edge oci://127.0.0.1:5000/platform/edge:1.2.0\n\nCredentials come from the docker configuration (~/.docker/config.json or $DOCKER_CONFIG);\nloopback registries are reached over plain HTTP."
    )]
    Publish {
        /// The module directory.
        dir: PathBuf,
        /// Where to push: oci://HOST/REPOSITORY:VERSION.
        target: String,
    },
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// Print diagnostics as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct FmtArgs {
    /// Do not write; exit 3 if any file is not formatted.
    #[arg(long)]
    check: bool,
    /// Show the changes as a diff.
    #[arg(long)]
    diff: bool,
    /// Files or directories (default: the working directory).
    paths: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct PlanArgs {
    #[command(flatten)]
    vars: VarArgs,
    /// Plan only these resources or modules and what they need (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    target: Vec<String>,
    /// Replace this resource instance even if nothing forces it (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    replace: Vec<String>,
    /// Plan to destroy everything.
    #[arg(long)]
    destroy: bool,
    /// Only record changes made outside flotilla; change nothing.
    #[arg(long)]
    refresh_only: bool,
    /// Read real objects before planning (default true).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    refresh: bool,
    /// Write the plan to FILE for `flotilla apply FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 1 on error, 2 when there are changes.
    #[arg(long)]
    detailed_exitcode: bool,
    /// How many resources are planned or applied at once; a resource with many instances
    /// also plans up to this many of them at once.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// How long to wait for the state lock (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    lock_timeout: String,
    /// Skip interactive approval (apply and destroy).
    #[arg(long)]
    auto_approve: bool,
    /// Print the plan as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The resource instance address, e.g. `kube_namespace.apps`.
    addr: String,
    /// The provider's id for the object: `namespace/name`, or `name` when cluster-scoped.
    id: String,
    #[command(flatten)]
    vars: VarArgs,
    /// How long to wait for the state lock (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    lock_timeout: String,
}

#[derive(Args, Debug)]
struct ApplyArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// A plan file written by `flotilla plan -out`.
    plan_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// Print JSON (the same as -format json).
    #[arg(long)]
    json: bool,
    /// text, json, or markdown (a pull-request comment; saved plans only).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    format: String,
    #[command(flatten)]
    markdown: MarkdownArgs,
    /// A saved plan file (default: show state).
    file: Option<PathBuf>,
}

/// How markdown previews look (`show -format markdown`, `diff -format markdown`).
#[derive(Args, Debug, Clone)]
struct MarkdownArgs {
    /// Longest markdown allowed, in characters; bigger plans degrade step by step (collapsed
    /// diffs, then addresses, then counts) and say so.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    max_chars: usize,
    /// Summary rows per `module` or per `cluster` (provider configuration).
    #[arg(long, value_name = "WHAT", default_value = "module")]
    group_by: String,
    /// The comment's heading.
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_MARKDOWN_TITLE)]
    title: String,
}

/// The heading of `show -format markdown`; `diff` names its revisions instead.
const DEFAULT_MARKDOWN_TITLE: &str = "flotilla plan";

#[derive(Args, Debug)]
struct DiffArgs {
    /// The revision to compare from (a commit, branch or tag; e.g. origin/main).
    #[arg(long, value_name = "REV")]
    base: String,
    /// The revision to compare to.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    head: String,
    /// text, json or markdown.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    format: String,
    /// Print JSON (the same as -format json).
    #[arg(long)]
    json: bool,
    /// Exit 0 when the desired state is the same, 2 when it differs.
    #[arg(long)]
    detailed_exitcode: bool,
    #[command(flatten)]
    markdown: MarkdownArgs,
    #[command(flatten)]
    vars: VarArgs,
    /// The configuration directory (default: the working directory).
    dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct OutputArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Only this output.
    name: Option<String>,
}

#[derive(Subcommand, Debug)]
enum StateCommand {
    /// List resource instances in state.
    List {
        /// Only addresses matching these (module, resource or instance).
        addresses: Vec<String>,
    },
    /// Show one resource instance's attributes.
    Show {
        /// The instance address.
        address: String,
    },
    /// Forget instances without destroying them.
    Rm {
        /// Instances, resources or modules to forget.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Rename an instance, resource or module in state.
    Mv {
        /// Current address.
        from: String,
        /// New address.
        to: String,
    },
    /// Print the state document (decrypted) to stdout.
    Pull,
    /// Replace the stored state with a state file (refused for another lineage or an older
    /// serial unless -force).
    Push {
        /// The state file (`-` for stdin).
        file: PathBuf,
        /// Replace even another lineage or an older serial.
        #[arg(long)]
        force: bool,
        /// How long to wait for the state lock (e.g. 30s, 2m).
        #[arg(long, value_name = "DURATION", default_value = "0s")]
        lock_timeout: String,
    },
}

#[derive(Args, Debug)]
struct GraphArgs {
    /// dot or mermaid.
    #[arg(long, default_value = "dot")]
    format: String,
    /// Colour resources by the action a saved plan takes on them.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Include variables, locals, outputs and providers.
    #[arg(long)]
    all: bool,
}

/// Turns Terraform-style `-flag` into `--flag` so clap accepts both spellings.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest_literal = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest_literal {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest_literal = true;
            out.push(a);
            continue;
        }
        let long_single = a.starts_with('-')
            && !a.starts_with("--")
            && a.len() > 2
            && a[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        out.push(if long_single { format!("-{a}") } else { a });
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    let color = !cli.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    if let Some(dir) = &cli.chdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        eprintln!("Error: cannot change to directory {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    let ui = output::Ui::new(color);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        let _run = flotilla_syntax::timing::phase("command");
        let host = host::for_command();
        let code = commands::run(cli.command, &ui, &host).await;
        for (what, n) in host.counters() {
            flotilla_syntax::timing::count(what, n);
        }
        // Sandboxes started for this command are saved and stopped.
        host.shutdown().await;
        code
    });
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_terraform_and_gnu_flags() {
        let args = |v: &[&str]| normalize_args(v.iter().map(|s| s.to_string()));
        assert_eq!(
            args(&[
                "flotilla",
                "-chdir=x",
                "apply",
                "-auto-approve",
                "-var",
                "a=-1"
            ]),
            [
                "flotilla",
                "--chdir=x",
                "apply",
                "--auto-approve",
                "--var",
                "a=-1"
            ]
        );
        assert_eq!(
            args(&["flotilla", "plan", "--out", "p", "-h", "--", "-x"]),
            ["flotilla", "plan", "--out", "p", "-h", "--", "-x"]
        );
        Cli::try_parse_from(args(&[
            "flotilla",
            "plan",
            "-detailed-exitcode",
            "-refresh=false",
            "-target=a.b",
        ]))
        .unwrap();
    }
}
