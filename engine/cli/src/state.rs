//! The commands that work on state itself: `state list|show|rm|mv|pull|push`, `workspace
//! list|show|new|select|delete`, `force-unlock`, and the backend part of `init` (recording
//! the backend in use and migrating state when the backend block changes).

use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;

use flotilla_config::addr::{ResourceInstanceAddr, TargetAddr};
use flotilla_provider::ProviderHost;
use flotilla_state::{Backend, Codec, State, StateError};
use flotilla_syntax::{Diagnostic, SourceMap};

use crate::backend::{self, BackendSpec};
use crate::commands::{env, error, parse_addrs, resource_text};
use crate::output::Ui;
use crate::workspace::{self, Workspace};
use crate::{ForceUnlockArgs, InitArgs, StateCommand, VarArgs, WorkspaceCommand};

/// `flotilla state ...`.
pub fn state(ui: &Ui, host: &Arc<ProviderHost>, cmd: StateCommand) -> u8 {
    let vars = VarArgs::default();
    let ws = tri!(workspace::load(ui, &env(host, &vars)));
    match cmd {
        StateCommand::Pull => pull(ui, &ws),
        StateCommand::Push {
            file,
            force,
            lock_timeout,
        } => push(ui, &ws, &file, force, &lock_timeout),
        StateCommand::List { addresses } => {
            let filters = tri!(parse_addrs::<TargetAddr>(ui, "state list", &addresses));
            let state = tri!(workspace::load_state(&ws, ui, false));
            for addr in state.resources.keys() {
                if filters.is_empty() || filters.iter().any(|f| f.contains(addr)) {
                    ui.out(&format!("{addr}\n"));
                }
            }
            0
        }
        StateCommand::Show { address } => {
            let addr = tri!(parse_addrs::<ResourceInstanceAddr>(
                ui,
                "state show",
                &[address]
            ))
            .remove(0);
            let state = tri!(workspace::load_state(&ws, ui, false));
            match state.resources.get(&addr) {
                Some(r) => {
                    ui.out(&format!(
                        "# {addr}:\n{}\n",
                        resource_text(&addr, &flotilla_plan::state_value(r))
                    ));
                    0
                }
                None => {
                    let names: Vec<String> =
                        state.resources.keys().map(|a| a.to_string()).collect();
                    let mut d = Diagnostic::error("no such resource instance in state")
                        .with_detail(format!("`{addr}` is not in state"));
                    d = match flotilla_syntax::did_you_mean(
                        &addr.to_string(),
                        names.iter().map(String::as_str),
                    ) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help("list what state holds with `flotilla state list`"),
                    };
                    error(ui, d)
                }
            }
        }
        StateCommand::Rm { addresses } => {
            let filters = tri!(parse_addrs::<TargetAddr>(ui, "state rm", &addresses));
            edit_state(ui, &ws, |state| {
                let doomed = flotilla_plan::state_edit::remove(state, &filters);
                if doomed.is_empty() {
                    return Err(Diagnostic::error("nothing to remove")
                        .with_detail(format!(
                            "no instance in state matches {}",
                            addresses.join(", ")
                        ))
                        .with_help("list what state holds with `flotilla state list`"));
                }
                Ok(format!(
                    "{}Successfully removed {} resource instance(s). The real objects were not destroyed.\n",
                    doomed
                        .iter()
                        .map(|a| format!("Removed {a}\n"))
                        .collect::<String>(),
                    doomed.len()
                ))
            })
        }
        StateCommand::Mv { from, to } => {
            let f = tri!(parse_addrs::<TargetAddr>(
                ui,
                "state mv",
                std::slice::from_ref(&from)
            ))
            .remove(0);
            let t = tri!(parse_addrs::<TargetAddr>(
                ui,
                "state mv",
                std::slice::from_ref(&to)
            ))
            .remove(0);
            edit_state(ui, &ws, |state| {
                use flotilla_plan::state_edit::MoveError;
                match flotilla_plan::state_edit::move_instances(state, &f, &t) {
                    Err(MoveError::Nothing) => Err(Diagnostic::error("nothing to move").with_detail(format!("no instance in state matches `{from}`")).with_help("source and destination must be the same kind of address (module, resource or instance); list what state holds with `flotilla state list`")),
                    Err(MoveError::Exists(clash)) => Err(Diagnostic::error("destination already exists")
                        .with_detail(format!("`{clash}` is already in state"))
                        .with_help("remove or move the existing instance first")),
                    Ok(moves) => {
                        let mut text = String::new();
                        for (a, n) in &moves {
                            text.push_str(&format!("Move \"{a}\" to \"{n}\"\n"));
                        }
                        text.push_str(&format!("Successfully moved {} object(s).\n", moves.len()));
                        Ok(text)
                    }
                }
            })
        }
    }
}

fn edit_state(
    ui: &Ui,
    ws: &Workspace,
    edit: impl FnOnce(&mut State) -> Result<String, Diagnostic>,
) -> u8 {
    let _lock = match ws.backend.lock("state", std::time::Duration::ZERO) {
        Ok(l) => l,
        Err(e) => {
            return error(ui, e.to_diagnostic("cannot lock state"));
        }
    };
    let mut state = tri!(workspace::load_state(ws, ui, true));
    match edit(&mut state) {
        Ok(message) => match ws.backend.persist(&mut state) {
            Ok(()) => {
                ui.out(&message);
                0
            }
            Err(e) => error(ui, e.to_diagnostic("cannot save state")),
        },
        Err(d) => error(ui, d),
    }
}

/// `flotilla state pull`: the state document, decrypted, on stdout.
fn pull(ui: &Ui, ws: &Workspace) -> u8 {
    let state = tri!(workspace::load_state(ws, ui, false));
    ui.out(&String::from_utf8_lossy(&flotilla_state::format::encode(
        &state,
    )));
    0
}

/// Reads a state file given to `state push` (encrypted with this configuration's keys, or
/// plain).
fn read_state_file(ui: &Ui, codec: &Codec, file: &Path) -> Result<State, u8> {
    let name = file.display().to_string();
    let bytes = if name == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(file)
    }
    .map_err(|e| {
        error(
            ui,
            Diagnostic::error("cannot read state file")
                .with_detail(format!("{name}: {e}"))
                .with_help("pass a file written by `flotilla state pull` or a state file"),
        )
    })?;
    match codec.decode_state(&bytes, &name) {
        Err(StateError::NotEncrypted { .. }) => flotilla_state::format::decode(&bytes, &name),
        other => other,
    }
    .map_err(|e| error(ui, e.to_diagnostic("cannot read state file")))
}

/// `flotilla state push FILE`.
fn push(ui: &Ui, ws: &Workspace, file: &Path, force: bool, lock_timeout: &str) -> u8 {
    let timeout = match workspace::lock_timeout(lock_timeout) {
        Ok(t) => t,
        Err(d) => return error(ui, d),
    };
    let pushed = tri!(read_state_file(ui, &ws.codec, file));
    let _lock = match workspace::lock(ui, &*ws.backend, "state push", timeout) {
        Ok(l) => l,
        Err(e) => return error(ui, e.to_diagnostic("cannot lock state")),
    };
    let stored = match ws.backend.load() {
        Ok((s, _)) => s,
        Err(e) => return error(ui, e.to_diagnostic("cannot read state")),
    };
    let pushed = match flotilla_state::prepare_push(stored.as_ref(), pushed, force) {
        Ok(p) => p,
        Err(e) => return error(ui, e.to_diagnostic("state push refused")),
    };
    match ws.backend.write_exact(&pushed) {
        Ok(()) => {
            ui.out(&format!(
                "Pushed {} (serial {}, {} resource instance(s)) to {}.\n",
                file.display(),
                pushed.serial,
                pushed.resources.len(),
                ws.backend.describe()
            ));
            0
        }
        Err(e) => error(ui, e.to_diagnostic("cannot save state")),
    }
}

/// `flotilla workspace ...`.
pub fn workspace(ui: &Ui, host: &Arc<ProviderHost>, cmd: WorkspaceCommand) -> u8 {
    let dir = Path::new(".");
    let opened = tri!(workspace::backend_only(ui, &env(host, &VarArgs::default())));
    let backends = &opened.backends;
    let list = |ui: &Ui| {
        backends
            .workspaces()
            .map_err(|e| error(ui, e.to_diagnostic("cannot list workspaces")))
    };
    let select = |ui: &Ui, name: &str| -> u8 {
        let path = dir.join(backend::ENVIRONMENT);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, format!("{name}\n")));
        if let Err(e) = written {
            return error(
                ui,
                Diagnostic::error("cannot select workspace")
                    .with_detail(format!("{}: {e}", path.display())),
            );
        }
        if std::env::var_os(backend::WORKSPACE_ENV).is_some_and(|v| !v.is_empty()) {
            ui.err(&format!(
                "Warning: {} is set and selects the workspace while it is",
                backend::WORKSPACE_ENV
            ));
        }
        0
    };
    match cmd {
        WorkspaceCommand::Show => {
            ui.out(&format!("{}\n", opened.workspace));
            0
        }
        WorkspaceCommand::List => {
            for w in tri!(list(ui)) {
                let mark = if w == opened.workspace { "*" } else { " " };
                ui.out(&format!("{mark} {w}\n"));
            }
            0
        }
        WorkspaceCommand::New { name } => {
            if let Err(e) = flotilla_state::check_workspace_name(&name) {
                return error(ui, e.to_diagnostic("invalid workspace name"));
            }
            if tri!(list(ui)).contains(&name) {
                return error(
                    ui,
                    Diagnostic::error("workspace already exists")
                        .with_detail(format!(
                            "\"{name}\" exists in the {}",
                            opened.spec.describe()
                        ))
                        .with_help(format!("select it with `flotilla workspace select {name}`")),
                );
            }
            let created = backends.store(&name).and_then(|store| {
                let _lock = store.lock("workspace new", std::time::Duration::ZERO)?;
                store.persist(&mut State::new())
            });
            if let Err(e) = created {
                return error(ui, e.to_diagnostic("cannot create workspace"));
            }
            let code = select(ui, &name);
            if code == 0 {
                ui.out(&format!(
                    "{} Created and switched to workspace \"{name}\".\n\nIt has empty state: `flotilla plan` shows everything as new.\n",
                    ui.green("Done:")
                ));
            }
            code
        }
        WorkspaceCommand::Select { name } => {
            let known = tri!(list(ui));
            if !known.contains(&name) {
                let mut d = Diagnostic::error("workspace does not exist").with_detail(format!(
                    "there is no workspace \"{name}\" in the {}",
                    opened.spec.describe()
                ));
                d = match flotilla_syntax::did_you_mean(&name, known.iter().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean \"{s}\"? Create a new one with `flotilla workspace new {name}`")),
                    None => d.with_help(format!("create it with `flotilla workspace new {name}`")),
                };
                return error(ui, d);
            }
            let code = select(ui, &name);
            if code == 0 {
                ui.out(&format!("Switched to workspace \"{name}\".\n"));
            }
            code
        }
        WorkspaceCommand::Delete { name, force } => {
            if name == opened.workspace {
                return error(
                    ui,
                    Diagnostic::error("cannot delete the selected workspace")
                        .with_detail(format!("\"{name}\" is selected"))
                        .with_help(
                            "select another workspace first: `flotilla workspace select default`",
                        ),
                );
            }
            if !tri!(list(ui)).contains(&name) {
                return error(
                    ui,
                    Diagnostic::error("workspace does not exist")
                        .with_detail(format!("there is no workspace \"{name}\""))
                        .with_help("`flotilla workspace list` shows those that exist"),
                );
            }
            let deleted = backends.store(&name).and_then(|store| {
                let _lock = store.lock("workspace delete", std::time::Duration::ZERO)?;
                let (state, _) = store.load()?;
                let n = state.map_or(0, |s| s.resources.len());
                if n > 0 && !force {
                    return Err(StateError::Refused(format!(
                        "workspace \"{name}\" still records {n} resource instance(s); deleting it would leave them unmanaged (destroy them first with `FLOTILLA_WORKSPACE={name} flotilla destroy`)"
                    )));
                }
                backends.delete_workspace(&name)
            });
            match deleted {
                Ok(()) => {
                    ui.out(&format!("Deleted workspace \"{name}\".\n"));
                    0
                }
                Err(e) => error(ui, e.to_diagnostic("cannot delete workspace")),
            }
        }
    }
}

/// `flotilla force-unlock LOCK_ID`.
pub fn force_unlock(ui: &Ui, host: &Arc<ProviderHost>, args: ForceUnlockArgs) -> u8 {
    let ws = tri!(workspace::load(ui, &env(host, &VarArgs::default())));
    if !args.force
        && !ask(
            ui,
            &format!(
                "Do you really want to break the lock {} on {}?\n  Breaking a lock another run holds lets two runs write the same state.",
                args.lock_id,
                ws.backend.describe()
            ),
        )
    {
        ui.err("Unlock cancelled (pass -force to skip this question).");
        return 1;
    }
    match ws.backend.force_unlock(&args.lock_id) {
        Ok(()) => {
            ui.out(&format!(
                "{} The lock {} was released.\n",
                ui.green("Done:"),
                args.lock_id
            ));
            0
        }
        Err(e) => error(ui, e.to_diagnostic("cannot unlock state")),
    }
}

/// Asks a yes/no question on the terminal; `false` without one.
fn ask(ui: &Ui, question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    ui.out(&format!(
        "\n{}\n  Only 'yes' will be accepted.\n\n  Enter a value: ",
        ui.bold(question)
    ));
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    answer.trim() == "yes"
}

/// The backend part of `init`: records the backend in use; when the backend block changed
/// (or a first backend block replaces local state), copies every workspace's state with
/// `-migrate-state`, or refuses to go on without it.
pub fn init_backend(ui: &Ui, host: &Arc<ProviderHost>, args: &InitArgs) -> Result<(), u8> {
    let dir = Path::new(".");
    let mut sources = SourceMap::new();
    let (Some(module), _) = workspace::load_config(dir, &mut sources) else {
        return Ok(()); // the load after this reports the configuration's errors
    };
    let spec = match backend::spec_of(&module) {
        Ok(s) => s,
        Err(d) => {
            ui.diags(&[d], &sources);
            return Err(1);
        }
    };
    let record = |ui: &Ui| {
        backend::record(dir, &spec).map_err(|e| {
            error(
                ui,
                Diagnostic::error("cannot record the backend")
                    .with_detail(format!("{}: {e}", backend::RECORD)),
            )
        })
    };
    let previous = match backend::recorded(dir) {
        Some(r) if r == spec => return Ok(()),
        _ if args.reconfigure => return record(ui),
        Some(r) => r,
        None if spec == BackendSpec::local_default() => return record(ui),
        None => {
            let local = BackendSpec::local_default();
            if !dir.join(backend::DEFAULT_STATE).exists() {
                return record(ui);
            }
            local
        }
    };
    if !args.migrate_state {
        return Err(error(
            ui,
            Diagnostic::error("backend configuration changed")
                .with_detail(spec.change_from(&previous))
                .with_help("run `flotilla init -migrate-state` to copy it there, or `flotilla init -reconfigure` to start the new backend without it"),
        ));
    }
    let codec = {
        let (inputs, _) =
            flotilla_plan::inputs::collect(&module, dir, &mut sources, &[], std::env::vars());
        match backend::codec(&module, &inputs) {
            Ok(c) => c,
            Err(d) => {
                ui.diags(&[d], &sources);
                return Err(1);
            }
        }
    };
    let from = backend::open(&previous, dir, codec.clone(), host);
    let to = backend::open(&spec, dir, codec, host);
    ui.out(&format!(
        "Migrating state from the {} to the {}...\n",
        previous.describe(),
        spec.describe()
    ));
    if let Err(e) = migrate(ui, &*from, &*to, args.force_copy) {
        return Err(error(ui, e));
    }
    record(ui)?;
    ui.out(&format!(
        "\n{} The state in the {} was left as it was; remove it when you no longer need it.\n\n",
        ui.green("Migration complete."),
        previous.describe()
    ));
    Ok(())
}

/// Copies every workspace of `from` into `to`, each under both backends' locks.
fn migrate(ui: &Ui, from: &dyn Backend, to: &dyn Backend, force: bool) -> Result<(), Diagnostic> {
    let zero = std::time::Duration::ZERO;
    let names = from
        .workspaces()
        .map_err(|e| e.to_diagnostic("cannot list workspaces"))?;
    for name in names {
        let (src, dst) = (
            from.store(&name)
                .map_err(|e| e.to_diagnostic("cannot migrate state"))?,
            to.store(&name)
                .map_err(|e| e.to_diagnostic("cannot migrate state"))?,
        );
        let _src_lock = src
            .lock("init -migrate-state", zero)
            .map_err(|e| e.to_diagnostic("cannot lock state"))?;
        let Some(state) = src
            .load()
            .map_err(|e| e.to_diagnostic("cannot read state"))?
            .0
        else {
            continue;
        };
        let _dst_lock = dst
            .lock("init -migrate-state", zero)
            .map_err(|e| e.to_diagnostic("cannot lock state"))?;
        let existing = dst
            .load()
            .map_err(|e| e.to_diagnostic("cannot read state"))?
            .0;
        if let Some(e) =
            existing.filter(|e| *e != state && (!e.resources.is_empty() || !e.outputs.is_empty()))
            && !force
            && !ask(
                ui,
                &format!(
                    "The {} already has state for workspace \"{name}\" (serial {}, {} resource instance(s)). Replace it with the state being migrated?",
                    to.describe(),
                    e.serial,
                    e.resources.len()
                ),
            )
        {
            return Err(Diagnostic::error("migration would replace state")
                .with_detail(format!(
                    "the {} already has state for workspace \"{name}\"",
                    to.describe()
                ))
                .with_help("pass -force-copy to replace it, or remove it first"));
        }
        dst.write_exact(&state)
            .map_err(|e| e.to_diagnostic("cannot save state"))?;
        ui.out(&format!(
            "- workspace \"{name}\": copied serial {}, {} resource instance(s)\n",
            state.serial,
            state.resources.len()
        ));
    }
    Ok(())
}
