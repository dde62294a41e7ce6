//! `flotilla sandbox`: start, inspect and stop local Kubernetes-API clusters for trying
//! flotilla and for tests. `up` starts a background server (this binary, `sandbox serve`)
//! that keeps its clusters under `.flotilla/sandbox/`; `down` stops it.

use crate::output::Ui;
use clap::{Args, Subcommand};
use flotilla_sandbox::{Ecosystem, FaultConfig, Sandbox, SandboxError, SandboxOptions};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where `flotilla sandbox` keeps its clusters unless told otherwise.
pub const DEFAULT_DIR: &str = ".flotilla/sandbox";

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Start the sandbox in the background (creating the named clusters if needed).
    #[command(
        after_help = "Examples:\n  flotilla sandbox up                        # one cluster named \"default\"\n  flotilla sandbox up --name mgmt --name edge\n  flotilla sandbox up --clusters 3            # cluster-1, cluster-2, cluster-3\n  flotilla sandbox up --name mgmt --with capi # Cluster API CRDs and controllers\n  flotilla sandbox up --with all --fault default:errors=0.1,seed=7\n  flotilla sandbox up --foreground            # serve in this terminal until Ctrl-C\n  flotilla sandbox up --name edge --with kubeedge --edge-node edge/hz-1:site=hangzhou\n\nEcosystems: capi, karmada, kubeedge, istio, volcano, kyverno, flagger, flux (or all).\nClusters and their objects are kept in the sandbox directory across restarts."
    )]
    Up(UpArgs),
    /// Show the sandbox's clusters and whether it is running.
    Status(StatusArgs),
    /// Print (or write) a kubeconfig with one context per sandbox cluster.
    #[command(
        after_help = "Examples:\n  flotilla sandbox kubeconfig > sandbox.kubeconfig\n  export KUBECONFIG=$PWD/.flotilla/sandbox/kubeconfig\n  kubectl --context default get namespaces"
    )]
    Kubeconfig(KubeconfigArgs),
    /// Stop the background sandbox (its clusters stay on disk unless --delete).
    Down(DownArgs),
    /// Inject faults into a sandbox cluster, now (a running sandbox picks them up at once).
    #[command(
        after_help = "SPEC keys (comma-separated key=value):\n  seed=N              generator seed: the same seed and requests give the same faults\n  latency=200ms       added to every request\n  errors=0.1          fraction answered 500 or 503\n  throttle=0.1        fraction answered 429 with Retry-After (retry_after=2s)\n  conflicts=0.1       fraction of updates answered 409\n  drops=0.1           fraction of connections closed without an answer\n  unreachable=true    every connection closed until cleared\n  unreachable_for=5s  unreachable for a while, then back\n  writes_only=true    rates apply to writes only\n  rollouts_stall=true Deployments never finish rolling out (their new pods never become available)\n  canary_analysis=fail Flagger's analysis of every new revision fails (the Canary ends Failed)\n\nExamples:\n  flotilla sandbox fault default errors=0.2,throttle=0.1,seed=7\n  flotilla sandbox fault member-1 unreachable_for=10s\n  flotilla sandbox fault default --clear\n  flotilla sandbox fault                      # show what is set"
    )]
    Fault(FaultArgs),
    /// Run the sandbox server in this process (what `up` starts in the background).
    #[command(hide = true)]
    Serve(UpArgs),
}

#[derive(Args, Debug)]
pub struct DirArg {
    /// The sandbox directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    dir: DirArg,
    /// A cluster to create if it does not exist (repeatable).
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
    /// Create clusters cluster-1 .. cluster-N.
    #[arg(long, value_name = "N", conflicts_with = "names")]
    clusters: Option<usize>,
    /// Install these ecosystems' CRDs, admission rules and controllers in every cluster
    /// (comma-separated, repeatable).
    #[arg(long, value_name = "ECOSYSTEMS")]
    with: Vec<String>,
    /// How long simulated controllers wait after a change before acting (e.g. 200ms, 1s).
    #[arg(long, value_name = "DURATION")]
    controller_delay: Option<String>,
    /// Inject faults into a cluster: NAME:SPEC (see `flotilla sandbox fault --help`).
    #[arg(long, value_name = "NAME:SPEC")]
    fault: Vec<String>,
    /// Add an edge node (a Node labelled `node-role.kubernetes.io/edge`, Ready) to a cluster:
    /// CLUSTER/NODE, optionally with labels, CLUSTER/NODE:KEY=VALUE,KEY=VALUE (repeatable).
    #[arg(long, value_name = "CLUSTER/NODE[:LABELS]")]
    edge_node: Vec<String>,
    /// Serve in the foreground until Ctrl-C instead of starting a background server.
    #[arg(long)]
    foreground: bool,
}

#[derive(Args, Debug)]
pub struct FaultArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The cluster; without it, show every cluster's faults.
    cluster: Option<String>,
    /// What to inject, as key=value pairs separated by commas.
    #[arg(value_name = "SPEC")]
    spec: Option<String>,
    /// Stop injecting faults into the cluster.
    #[arg(long, conflicts_with = "spec")]
    clear: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct KubeconfigArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DownArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Also delete the sandbox directory and every cluster in it.
    #[arg(long)]
    delete: bool,
}

pub async fn run(ui: &Ui, command: SandboxCommand) -> u8 {
    let result = match command {
        SandboxCommand::Up(args) if args.foreground => serve(ui, args, true).await,
        SandboxCommand::Up(args) => up(ui, args).await,
        SandboxCommand::Serve(args) => serve(ui, args, false).await,
        SandboxCommand::Status(args) => status(ui, args),
        SandboxCommand::Kubeconfig(args) => kubeconfig(ui, args),
        SandboxCommand::Down(args) => down(ui, args).await,
        SandboxCommand::Fault(args) => fault(ui, args),
    };
    match result {
        Ok(code) => code,
        Err(Failure { message, help }) => {
            ui.err(&format!("Error: {message}\n  help: {help}"));
            1
        }
    }
}

struct Failure {
    message: String,
    help: String,
}

impl From<SandboxError> for Failure {
    fn from(e: SandboxError) -> Failure {
        Failure {
            help: e.help().to_string(),
            message: e.to_string(),
        }
    }
}

fn fail(message: impl Into<String>, help: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        help: help.into(),
    }
}

fn ecosystems(args: &UpArgs) -> Result<Vec<Ecosystem>, Failure> {
    let mut out = Vec::new();
    for list in &args.with {
        out.extend(Ecosystem::parse_list(list).map_err(|e| {
            fail(
                format!("--with {list}: {e}"),
                "for example: --with capi,karmada",
            )
        })?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn controller_delay(args: &UpArgs) -> Result<Option<Duration>, Failure> {
    let Some(text) = &args.controller_delay else {
        return Ok(None);
    };
    crate::workspace::parse_duration(text)
        .map(Some)
        .ok_or_else(|| {
            fail(
                format!("--controller-delay {text}: not a duration"),
                "for example: 200ms, 1.5s, 1m",
            )
        })
}

/// An edge node `--edge-node` asks for: its cluster, its name and its labels.
struct EdgeNode {
    cluster: String,
    name: String,
    labels: serde_json::Map<String, Value>,
}

fn parse_edge_nodes(args: &UpArgs) -> Result<Vec<EdgeNode>, Failure> {
    args.edge_node
        .iter()
        .map(|spec| {
            let bad = |why: &str| {
                fail(
                    format!("--edge-node {spec}: {why}"),
                    "write CLUSTER/NODE or CLUSTER/NODE:KEY=VALUE,KEY=VALUE, e.g. --edge-node edge/hz-1:site=hangzhou",
                )
            };
            let (at, labels) = spec.split_once(':').unwrap_or((spec, ""));
            let (cluster, name) = at.split_once('/').ok_or_else(|| bad("expected CLUSTER/NODE"))?;
            if cluster.is_empty() || name.is_empty() {
                return Err(bad("the cluster and the node need names"));
            }
            let mut map = serde_json::Map::new();
            map.insert("node-role.kubernetes.io/edge".into(), json!(""));
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| bad(&format!("label {pair:?} is not KEY=VALUE")))?;
                map.insert(k.to_string(), json!(v));
            }
            Ok(EdgeNode {
                cluster: cluster.to_string(),
                name: name.to_string(),
                labels: map,
            })
        })
        .collect()
}

/// Creates (or relabels) the edge nodes in their clusters, Ready.
fn add_edge_nodes(sandbox: &Sandbox, nodes: &[EdgeNode]) -> Result<(), Failure> {
    for n in nodes {
        let cluster = sandbox.cluster(&n.cluster).ok_or_else(|| {
            fail(
                format!(
                    "--edge-node {}/{}: there is no sandbox cluster {:?}",
                    n.cluster, n.name, n.cluster
                ),
                "create it in the same command with --name",
            )
        })?;
        let local = flotilla_sandbox::local::Local::new(&cluster, "flotilla-sandbox");
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n.name, "labels": n.labels}});
        let written = local
            .apply(&node)
            .and_then(|o| {
                local.set_status(
                    &o,
                    json!({"conditions": [{"type": "Ready", "status": "True", "reason": "EdgeReady",
                        "message": "edgecore is posting ready status"}]}),
                )
            })
            .map_err(|e| {
                fail(
                    format!("cannot add edge node {}: {}", n.name, e.message),
                    "check the node's name and labels",
                )
            })?;
        drop(written);
    }
    Ok(())
}

fn parse_faults(args: &UpArgs) -> Result<Vec<(String, FaultConfig)>, Failure> {
    args.fault
        .iter()
        .map(|f| {
            let (name, spec) = f.split_once(':').ok_or_else(|| {
                fail(
                    format!("--fault {f}: expected NAME:SPEC"),
                    "for example: --fault default:errors=0.1,seed=7",
                )
            })?;
            let config = FaultConfig::parse(spec).map_err(|e| {
                fail(
                    format!("--fault {f}: {e}"),
                    "see `flotilla sandbox fault --help` for the keys",
                )
            })?;
            Ok((name.to_string(), config))
        })
        .collect()
}

type FaultFile = std::collections::BTreeMap<String, FaultConfig>;

fn read_faults(dir: &Path) -> Result<FaultFile, Failure> {
    let path = dir.join(flotilla_sandbox::FAULTS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text).map_err(|e| {
            fail(
                format!("{}: {e}", path.display()),
                "fix the file or delete it to clear every fault",
            )
        }),
        _ => Ok(FaultFile::new()),
    }
}

/// Adds faults to the sandbox's faults file (which the server reads while it runs).
fn record_faults(dir: &Path, faults: &[(String, FaultConfig)]) -> Result<(), Failure> {
    if faults.is_empty() {
        return Ok(());
    }
    let mut file = read_faults(dir)?;
    for (name, config) in faults {
        file.insert(name.clone(), config.clone());
    }
    write_faults(dir, &file)
}

fn write_faults(dir: &Path, file: &FaultFile) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        fail(
            format!("cannot create {}: {e}", dir.display()),
            "check the path and permissions",
        )
    })?;
    let text = serde_json::to_string_pretty(file).expect("fault files serialize");
    flotilla_sandbox::write_atomic(&dir.join(flotilla_sandbox::FAULTS_FILE), text.as_bytes())?;
    Ok(())
}

fn fault(ui: &Ui, args: FaultArgs) -> Result<u8, Failure> {
    let dir = &args.dir.dir;
    let mut file = read_faults(dir)?;
    let Some(cluster) = args.cluster else {
        if file.is_empty() {
            ui.out("No faults are set.\n");
        }
        for (name, config) in &file {
            ui.out(&format!(
                "{name:<20} {}\n",
                serde_json::to_string(config).expect("serializes")
            ));
        }
        return Ok(0);
    };
    let known = recorded_clusters(dir);
    if !known.iter().any(|(n, _)| *n == cluster) {
        return Err(fail(
            format!(
                "there is no sandbox cluster {cluster:?} in {}",
                dir.display()
            ),
            "`flotilla sandbox status` lists the clusters",
        ));
    }
    if args.clear {
        file.remove(&cluster);
        write_faults(dir, &file)?;
        ui.out(&format!("Cleared the faults of {cluster}.\n"));
        return Ok(0);
    }
    let Some(spec) = args.spec else {
        match file.get(&cluster) {
            Some(config) => ui.out(&format!(
                "{}\n",
                serde_json::to_string_pretty(config).expect("serializes")
            )),
            None => ui.out(&format!("No faults are set for {cluster}.\n")),
        }
        return Ok(0);
    };
    let config = FaultConfig::parse(&spec)
        .map_err(|e| fail(e, "see `flotilla sandbox fault --help` for the keys"))?;
    file.insert(cluster.clone(), config);
    write_faults(dir, &file)?;
    let when = if is_running(dir) {
        "now"
    } else {
        "when the sandbox starts"
    };
    ui.out(&format!("Faults for {cluster} set; they apply {when}.\n"));
    Ok(0)
}

fn requested_names(args: &UpArgs) -> Vec<String> {
    match args.clusters {
        Some(n) => (1..=n).map(|i| format!("cluster-{i}")).collect(),
        None => args.names.clone(),
    }
}

/// The clusters recorded in a sandbox directory, from their files: (name, port).
fn recorded_clusters(dir: &Path) -> Vec<(String, u16)> {
    let mut out: Vec<(String, u16)> = std::fs::read_dir(dir.join("clusters"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            Some((v["name"].as_str()?.to_string(), v["port"].as_u64()? as u16))
        })
        .collect();
    out.sort();
    out
}

/// Whether a server holds the sandbox directory's lock.
fn is_running(dir: &Path) -> bool {
    match std::fs::File::options().write(true).open(dir.join("lock")) {
        Ok(file) => file.try_lock().is_err(),
        Err(_) => false,
    }
}

fn server_info(dir: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("server.json")).ok()?).ok()
}

async fn serve(ui: &Ui, args: UpArgs, announce: bool) -> Result<u8, Failure> {
    let dir = args.dir.dir.clone();
    let mut names = requested_names(&args);
    if names.is_empty() && recorded_clusters(&dir).is_empty() {
        names.push("default".into());
    }
    let options = SandboxOptions {
        dir: Some(dir.clone()),
        clusters: names,
        with: ecosystems(&args)?,
        controller_delay: controller_delay(&args)?,
        faults: Vec::new(),
    };
    record_faults(&dir, &parse_faults(&args)?)?;
    let edge_nodes = parse_edge_nodes(&args)?;
    let sandbox = Sandbox::start(options).await?;
    add_edge_nodes(&sandbox, &edge_nodes)?;
    let clusters: Vec<Value> = sandbox
        .clusters()
        .iter()
        .map(|c| json!({"name": c.name, "server": c.url()}))
        .collect();
    let info = json!({"pid": std::process::id(), "clusters": clusters});
    flotilla_sandbox::write_atomic(&dir.join("server.json"), info.to_string().as_bytes())?;
    if announce {
        print_clusters(ui, &dir, &info);
        ui.out("Serving in the foreground; press Ctrl-C to stop.\n");
    }
    wait_for_signal().await;
    sandbox.stop().await?;
    let _ = std::fs::remove_file(dir.join("server.json"));
    Ok(0)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn print_clusters(ui: &Ui, dir: &Path, info: &Value) {
    for c in info["clusters"].as_array().into_iter().flatten() {
        ui.out(&format!(
            "  {:<20} {}\n",
            c["name"].as_str().unwrap_or(""),
            c["server"].as_str().unwrap_or("")
        ));
    }
    let kubeconfig = dir.join("kubeconfig");
    let shown = std::path::absolute(&kubeconfig).unwrap_or(kubeconfig);
    ui.out(&format!(
        "\nKubeconfig: {}\n  export KUBECONFIG={}\n",
        shown.display(),
        shown.display()
    ));
}

async fn up(ui: &Ui, args: UpArgs) -> Result<u8, Failure> {
    let dir = args.dir.dir.clone();
    let names = requested_names(&args);
    if is_running(&dir) {
        let known: Vec<String> = recorded_clusters(&dir)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let missing: Vec<&String> = names.iter().filter(|n| !known.contains(n)).collect();
        if !missing.is_empty() {
            return Err(fail(
                format!(
                    "the sandbox in {} is running, and clusters cannot be added to a running sandbox ({} missing)",
                    dir.display(),
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "run `flotilla sandbox down`, then `up` again with the new names",
            ));
        }
        if !args.with.is_empty() {
            return Err(fail(
                format!(
                    "the sandbox in {} is running; ecosystems are installed when it starts",
                    dir.display()
                ),
                "run `flotilla sandbox down`, then `up --with ...` (clusters and objects are kept)",
            ));
        }
        record_faults(&dir, &parse_faults(&args)?)?;
        ui.out(&format!(
            "The sandbox in {} is already running.\n",
            dir.display()
        ));
        if let Some(info) = server_info(&dir) {
            print_clusters(ui, &dir, &info);
        }
        return Ok(0);
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        fail(
            format!("cannot create {}: {e}", dir.display()),
            "check the path and permissions",
        )
    })?;
    let _ = std::fs::remove_file(dir.join("server.json"));
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).map_err(|e| {
        fail(
            format!("cannot create {}: {e}", log_path.display()),
            "check the path and permissions",
        )
    })?;
    let exe = std::env::current_exe().map_err(|e| {
        fail(
            format!("cannot find the flotilla executable: {e}"),
            "run flotilla by its full path",
        )
    })?;
    let mut command = std::process::Command::new(exe);
    command.arg("sandbox").arg("serve").arg("--dir").arg(&dir);
    for name in &names {
        command.arg("--name").arg(name);
    }
    // Checked here, so mistakes show in this terminal rather than in the server's log.
    ecosystems(&args)?;
    controller_delay(&args)?;
    parse_faults(&args)?;
    for with in &args.with {
        command.arg("--with").arg(with);
    }
    if let Some(delay) = &args.controller_delay {
        command.arg("--controller-delay").arg(delay);
    }
    for fault in &args.fault {
        command.arg("--fault").arg(fault);
    }
    parse_edge_nodes(&args)?;
    for node in &args.edge_node {
        command.arg("--edge-node").arg(node);
    }
    {
        use std::os::unix::process::CommandExt;
        // Its own process group, so a Ctrl-C in this terminal does not stop the sandbox.
        command.process_group(0);
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| fail(e.to_string(), "check the sandbox directory"))?,
        )
        .stderr(log);
    let mut child = command.spawn().map_err(|e| {
        fail(
            format!("cannot start the sandbox server: {e}"),
            "check that the flotilla executable can be run",
        )
    })?;
    let started = Instant::now();
    loop {
        if let Some(info) = server_info(&dir) {
            ui.out(&format!(
                "Sandbox running in {} (pid {}):\n",
                dir.display(),
                info["pid"]
            ));
            print_clusters(ui, &dir, &info);
            return Ok(0);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(fail(
                format!("the sandbox server exited ({status}):\n{}", log.trim_end()),
                format!("see {}", log_path.display()),
            ));
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err(fail(
                "the sandbox server did not become ready within 15 seconds",
                format!("see {}", log_path.display()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status(ui: &Ui, args: StatusArgs) -> Result<u8, Failure> {
    let dir = &args.dir.dir;
    let clusters = recorded_clusters(dir);
    let running = is_running(dir);
    let pid = server_info(dir)
        .and_then(|i| i["pid"].as_u64())
        .filter(|_| running);
    if args.json {
        let list: Vec<Value> = clusters
            .iter()
            .map(|(n, p)| json!({"name": n, "server": format!("https://127.0.0.1:{p}")}))
            .collect();
        let doc = json!({"dir": dir, "running": running, "pid": pid, "clusters": list, "kubeconfig": dir.join("kubeconfig")});
        ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("JSON serializes")
        ));
        return Ok(0);
    }
    if clusters.is_empty() {
        ui.out(&format!(
            "No sandbox in {}.\n  Start one with: flotilla sandbox up\n",
            dir.display()
        ));
        return Ok(0);
    }
    match pid {
        Some(pid) => ui.out(&format!(
            "Sandbox in {}: running (pid {pid})\n",
            dir.display()
        )),
        None if running => ui.out(&format!("Sandbox in {}: running\n", dir.display())),
        None => ui.out(&format!(
            "Sandbox in {}: stopped (start it with `flotilla sandbox up`)\n",
            dir.display()
        )),
    }
    for (name, port) in clusters {
        ui.out(&format!("  {name:<20} https://127.0.0.1:{port}\n"));
    }
    Ok(0)
}

fn kubeconfig(ui: &Ui, args: KubeconfigArgs) -> Result<u8, Failure> {
    let path = args.dir.dir.join("kubeconfig");
    let text = std::fs::read_to_string(&path).map_err(|_| {
        fail(
            format!("no sandbox kubeconfig at {}", path.display()),
            "start a sandbox first: flotilla sandbox up",
        )
    })?;
    match args.out {
        Some(out) => {
            std::fs::write(&out, text).map_err(|e| {
                fail(
                    format!("cannot write {}: {e}", out.display()),
                    "check the path and permissions",
                )
            })?;
            ui.out(&format!("Wrote {}\n", out.display()));
        }
        None => ui.out(&text),
    }
    Ok(0)
}

async fn down(ui: &Ui, args: DownArgs) -> Result<u8, Failure> {
    let dir = &args.dir.dir;
    if is_running(dir) {
        let pid = server_info(dir)
            .and_then(|i| i["pid"].as_u64())
            .and_then(|p| i32::try_from(p).ok());
        let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) else {
            return Err(fail(
                format!(
                    "the sandbox in {} is running, but {} does not say which process serves it",
                    dir.display(),
                    dir.join("server.json").display()
                ),
                "it was probably started with --foreground; stop it with Ctrl-C in its terminal",
            ));
        };
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).map_err(|e| {
            fail(
                format!(
                    "cannot stop the sandbox server (pid {}): {e}",
                    pid.as_raw_nonzero()
                ),
                "stop it by hand with `kill`",
            )
        })?;
        let started = Instant::now();
        while is_running(dir) {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(fail(
                    "the sandbox server did not stop within 10 seconds",
                    format!("stop it by hand: kill {}", pid.as_raw_nonzero()),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ui.out(&format!("Stopped the sandbox in {}.\n", dir.display()));
    } else {
        ui.out(&format!(
            "The sandbox in {} is not running.\n",
            dir.display()
        ));
    }
    if args.delete && dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| {
            fail(
                format!("cannot delete {}: {e}", dir.display()),
                "check permissions",
            )
        })?;
        ui.out(&format!("Deleted {}.\n", dir.display()));
    }
    Ok(0)
}
