//! The Kubernetes benchmark: flotilla against sandbox clusters, as fleets use it.
//!
//! ```text
//! cargo bench -p flotilla-cli --bench kubernetes                     # everything (docs/performance.md)
//! cargo bench -p flotilla-cli --bench kubernetes -- --clusters 100 --latencies 10   # a quick look
//! ```
//!
//! Two workloads, each step a separate process measured by the wrapper in
//! `support/measure.rs` (wall time, peak resident memory):
//!
//! - **fleet**: N sandbox clusters (`flotilla sandbox up --clusters N`, a server in its own
//!   process), one `kube` provider block per cluster and ten ConfigMaps in each: `sandbox up`,
//!   `apply`, a no-change `plan -detailed-exitcode`;
//! - **quickstart**: `examples/quickstart` scaled to N clusters (the standard library's
//!   cost: a management cluster, N clusters made with Cluster API, a Karmada fleet of them,
//!   four addons, a policy and a rollout), the sandbox in its own process with a 20 ms
//!   controller delay: `sandbox up`, `apply`, a no-change `plan -detailed-exitcode`;
//! - **kube**: 1,000 ConfigMaps in 10 namespaces in one cluster, through flotilla and through
//!   kubectl (`apply --server-side`, `diff --server-side`), created, checked for changes, and
//!   with one object changed, with the sandbox adding no latency and 10 ms to every request (a
//!   remote API server). flotilla counts its requests (`FLOTILLA_TIMINGS=1`), so the report
//!   prints the floor they allow: the step's time without latency plus requests × latency /
//!   `-parallelism`.
//!
//! kubectl is looked up on `PATH`; without it flotilla runs alone and the report says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[path = "support/measure.rs"]
mod measure;

use measure::{Numbers, Sample, find_on_path, machine, measure, median, mib, numbers};

#[derive(Parser, Debug)]
#[command(about = "flotilla against sandbox clusters: a fleet, and kubectl side by side")]
struct Opts {
    /// Fleet sizes in clusters (comma-separated; empty to skip the fleet).
    #[arg(long, value_parser = numbers, default_value = "100,1000")]
    clusters: Numbers,
    /// Quickstart sizes in clusters (comma-separated; empty to skip).
    #[arg(long, value_parser = numbers, default_value = "10,100")]
    quickstart: Numbers,
    /// Latencies the sandbox adds to every request in the kube workload, in ms (empty to skip).
    #[arg(long, value_parser = numbers, default_value = "0,10")]
    latencies: Numbers,
    /// ConfigMaps in the kube workload (in 10 namespaces).
    #[arg(long, default_value_t = 1000)]
    objects: usize,
    /// Runs of every step; the report shows the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// flotilla's `-parallelism` (the floor divides by it).
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Run flotilla alone even when kubectl is on PATH.
    #[arg(long)]
    no_kubectl: bool,
    #[command(flatten)]
    common: measure::Common,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    opts.common.main(|| run(&opts))
}

/// A step's measurement: the median of the runs, and flotilla's request count.
#[derive(Clone, Copy, Debug)]
struct Cell {
    sample: Sample,
    requests: Option<u64>,
}

/// Any single step is stopped after this long.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Measures `args` of `program` in `dir`; the command must exit with `want`.
fn step(
    dir: &Path,
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    want: i32,
    log: &Path,
) -> Result<Sample, String> {
    let s = measure(dir, program, args, env, STEP_TIMEOUT, log)?;
    if s.timed_out || s.code != want {
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(20).collect();
        return Err(format!(
            "`{} {}` in {} exited {} (wanted {want}){}; its log, {}, ends:\n{}",
            program.display(),
            args.join(" "),
            dir.display(),
            s.code,
            if s.timed_out {
                " after the time limit"
            } else {
                ""
            },
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(s)
}

/// The `count: kubernetes requests N` line flotilla printed into a log.
fn requests(log: &Path) -> Option<u64> {
    std::fs::read_to_string(log)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("count: kubernetes requests "))?
        .trim()
        .parse()
        .ok()
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Runs `commands` (name, arguments) in `dir`, in order, `runs` times from a clean
/// directory, stopping the sandbox after each run; the median of each step, with
/// flotilla's request count. `label` names the workload in progress lines.
fn run_steps(
    opts: &Opts,
    bin: &Path,
    dir: &Path,
    label: &str,
    commands: &[(&'static str, Vec<String>)],
) -> Result<BTreeMap<&'static str, Cell>, String> {
    let env = [("FLOTILLA_TIMINGS", "1")];
    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for _ in 0..opts.runs.max(1) {
        for f in [
            ".flotilla",
            "flotilla.state.json",
            "flotilla.state.json.backup",
        ] {
            let p = dir.join(f);
            let _ = std::fs::remove_dir_all(&p);
            let _ = std::fs::remove_file(&p);
        }
        let result = (|| -> Result<(), String> {
            for (name, args) in commands {
                let log = dir.join(format!("{}.log", name.replace(' ', "-")));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let s = step(dir, bin, &args, &env, 0, &log)?;
                samples.entry(name).or_default().push(s);
                if let Some(r) = requests(&log) {
                    counts.insert(name, r);
                }
            }
            Ok(())
        })();
        let _ = measure(
            dir,
            bin,
            &["sandbox", "down"],
            &[],
            STEP_TIMEOUT,
            &dir.join("down.log"),
        );
        result?;
    }
    let mut out = BTreeMap::new();
    for (name, xs) in samples {
        let m = median(xs);
        eprintln!(
            "  {label:<24} {name:<15} {:>8.3} s {:>8.1} MiB",
            m.secs,
            mib(m.peak_kib)
        );
        out.insert(
            name,
            Cell {
                sample: m,
                requests: counts.get(name).copied(),
            },
        );
    }
    Ok(out)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// The fleet

const FLEET_STEPS: [&str; 3] = ["sandbox up", "apply", "no-change plan"];

/// N provider blocks on the clusters `sandbox up --clusters N` makes, ten ConfigMaps each.
fn fleet_config(n: usize) -> String {
    let mut out = String::new();
    for i in 1..=n {
        let _ = writeln!(
            out,
            "provider \"kube\" {{\n  alias   = \"c{i}\"\n  sandbox = \"cluster-{i}\"\n}}\n"
        );
        for j in 0..10 {
            let _ = writeln!(
                out,
                "resource \"kube_config_map\" \"c{i}_{j}\" {{\n  provider = kube.c{i}\n  name     = \"settings-{j}\"\n  data     = {{ region = \"r{i}\", slot = \"{j}\" }}\n}}\n"
            );
        }
    }
    out
}

fn run_fleet(
    opts: &Opts,
    bin: &Path,
    n: usize,
    root: &Path,
) -> Result<BTreeMap<&'static str, Cell>, String> {
    let dir = root.join(format!("fleet-{n}"));
    fresh_dir(&dir)?;
    write(&dir.join("main.hcl"), &fleet_config(n))?;
    let parallelism = format!("-parallelism={}", opts.parallelism);
    let clusters = n.to_string();
    let commands = [
        (
            "sandbox up",
            args(&["sandbox", "up", "--clusters", &clusters]),
        ),
        (
            "apply",
            args(&["apply", "-auto-approve", "-no-color", &parallelism]),
        ),
        (
            "no-change plan",
            args(&["plan", "-detailed-exitcode", "-no-color", &parallelism]),
        ),
    ];
    run_steps(opts, bin, &dir, &format!("fleet {n} clusters"), &commands)
}

// ---------------------------------------------------------------------------------------------
// The quickstart, scaled

const QUICKSTART_STEPS: [&str; 3] = ["sandbox up", "apply", "no-change plan"];

/// `examples/quickstart` with N clusters instead of two.
fn quickstart_config(n: usize) -> String {
    let mut out = String::from("cluster \"mgmt\" {\n  sandbox = \"mgmt\"\n}\n\n");
    for i in 1..=n {
        let _ = writeln!(
            out,
            "cluster \"c{i}\" {{\n  management = cluster.mgmt\n  labels     = {{ region = \"r{}\" }}\n}}\n",
            i % 4
        );
    }
    let members: Vec<String> = (1..=n).map(|i| format!("cluster.c{i}")).collect();
    let _ = writeln!(
        out,
        "fleet \"prod\" {{\n  clusters      = [{}]\n  control_plane = cluster.mgmt\n}}\n",
        members.join(", ")
    );
    for addon in ["flagger", "istio", "kyverno"] {
        let _ = writeln!(out, "addon \"{addon}\" {{\n  fleet = fleet.prod\n}}\n");
    }
    out.push_str("addon \"volcano\" {\n  fleet   = fleet.prod\n  members = [\"c1\"]\n}\n\n");
    out.push_str("policy \"require-requests\" {\n  fleet      = fleet.prod\n  preset     = \"require-requests-limits\"\n  mode       = \"enforce\"\n  depends_on = [addon.kyverno]\n}\n\n");
    out.push_str("rollout \"checkout\" {\n  fleet      = fleet.prod\n  namespace  = \"shop\"\n  image      = \"ghcr.io/acme/checkout:1.4.0\"\n  depends_on = [addon.flagger, addon.istio]\n}\n");
    out
}

fn run_quickstart(
    opts: &Opts,
    bin: &Path,
    n: usize,
    root: &Path,
) -> Result<BTreeMap<&'static str, Cell>, String> {
    let dir = root.join(format!("quickstart-{n}"));
    fresh_dir(&dir)?;
    write(&dir.join("main.hcl"), &quickstart_config(n))?;
    let parallelism = format!("-parallelism={}", opts.parallelism);
    // The sandbox in its own process, its simulated controllers acting 20 ms after a
    // change (200 ms by default): what is measured is flotilla, not the simulation's pace
    // (at 200 ms, 100 clusters take about 100 s, nearly all of it waiting).
    let commands = [
        (
            "sandbox up",
            args(&[
                "sandbox",
                "up",
                "--name",
                "mgmt",
                "--controller-delay",
                "20ms",
            ]),
        ),
        (
            "apply",
            args(&["apply", "-auto-approve", "-no-color", &parallelism]),
        ),
        (
            "no-change plan",
            args(&["plan", "-detailed-exitcode", "-no-color", &parallelism]),
        ),
    ];
    run_steps(
        opts,
        bin,
        &dir,
        &format!("quickstart {n} clusters"),
        &commands,
    )
}

// ---------------------------------------------------------------------------------------------
// 1,000 objects, flotilla and kubectl

const KUBE_STEPS: [&str; 3] = ["create", "no-change check", "one object changed"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Flotilla,
    Kubectl,
}

fn kube_config(objects: usize, changed: bool) -> String {
    let mut out = String::from("provider \"kube\" {\n  sandbox = \"bench\"\n}\n\n");
    for ns in 0..10 {
        let _ = writeln!(
            out,
            "resource \"kube_namespace\" \"ns{ns}\" {{\n  name = \"flotilla-{ns}\"\n}}\n"
        );
    }
    for i in 0..objects {
        let value = if changed && i == 0 {
            "changed"
        } else {
            "value"
        };
        let _ = writeln!(
            out,
            "resource \"kube_config_map\" \"cm{i}\" {{\n  name      = \"cm{i}\"\n  namespace = kube_namespace.ns{}.name\n  data      = {{ key = \"{value}-{i}\" }}\n}}\n",
            i % 10
        );
    }
    out
}

fn kube_yaml(objects: usize, changed: bool) -> String {
    let mut out = String::new();
    for ns in 0..10 {
        let _ = writeln!(
            out,
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: kubectl-{ns}"
        );
    }
    for i in 0..objects {
        let value = if changed && i == 0 {
            "changed"
        } else {
            "value"
        };
        let _ = writeln!(
            out,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\n  namespace: kubectl-{}\ndata:\n  key: {value}-{i}",
            i % 10
        );
    }
    out
}

type KubeKey = (u64, Tool, &'static str);

fn run_kube(
    opts: &Opts,
    bin: &Path,
    kubectl: Option<&Path>,
    latency: u64,
    root: &Path,
    out: &mut BTreeMap<KubeKey, Cell>,
) -> Result<(), String> {
    let dir = root.join(format!("kube-{latency}ms"));
    fresh_dir(&dir)?;
    let (fdir, kdir, sdir) = (
        dir.join("flotilla"),
        dir.join("kubectl"),
        dir.join("sandbox"),
    );
    for d in [&fdir, &kdir] {
        fresh_dir(d)?;
    }
    let sandbox = sdir.display().to_string();
    let kubeconfig = sdir.join("kubeconfig").display().to_string();
    let flotilla_env = [
        ("FLOTILLA_TIMINGS", "1"),
        ("FLOTILLA_SANDBOX_DIR", sandbox.as_str()),
    ];
    let kubectl_env = [("KUBECONFIG", kubeconfig.as_str())];
    let parallelism = format!("-parallelism={}", opts.parallelism);
    let fault = format!("bench:latency={latency}ms");
    let mut samples: BTreeMap<KubeKey, Vec<Sample>> = BTreeMap::new();
    let mut counts: BTreeMap<KubeKey, u64> = BTreeMap::new();
    for _ in 0..opts.runs.max(1) {
        let _ = std::fs::remove_dir_all(&sdir);
        for f in ["flotilla.state.json", "flotilla.state.json.backup"] {
            let _ = std::fs::remove_file(fdir.join(f));
        }
        let mut up = vec!["sandbox", "up", "--dir", &sandbox, "--name", "bench"];
        if latency > 0 {
            up.extend(["--fault", &fault]);
        }
        step(&dir, bin, &up, &[], 0, &dir.join("up.log"))?;
        let result = (|| -> Result<(), String> {
            for (i, name) in KUBE_STEPS.iter().enumerate() {
                write(&fdir.join("main.hcl"), &kube_config(opts.objects, i == 2))?;
                let args: Vec<&str> = match i {
                    1 => vec!["plan", "-detailed-exitcode", "-no-color", &parallelism],
                    _ => vec!["apply", "-auto-approve", "-no-color", &parallelism],
                };
                let log = fdir.join(format!("{}.log", name.replace(' ', "-")));
                let s = step(&fdir, bin, &args, &flotilla_env, 0, &log)?;
                let key = (latency, Tool::Flotilla, *name);
                samples.entry(key).or_default().push(s);
                if let Some(r) = requests(&log) {
                    counts.insert(key, r);
                }
            }
            let Some(kubectl) = kubectl else {
                return Ok(());
            };
            for (i, name) in KUBE_STEPS.iter().enumerate() {
                write(&kdir.join("all.yaml"), &kube_yaml(opts.objects, i == 2))?;
                let args: Vec<&str> = match i {
                    1 => vec![
                        "--context",
                        "bench",
                        "diff",
                        "--server-side",
                        "-f",
                        "all.yaml",
                    ],
                    _ => vec![
                        "--context",
                        "bench",
                        "apply",
                        "--server-side",
                        "-f",
                        "all.yaml",
                    ],
                };
                let log = kdir.join(format!("{}.log", name.replace(' ', "-")));
                let s = step(&kdir, kubectl, &args, &kubectl_env, 0, &log)?;
                samples
                    .entry((latency, Tool::Kubectl, *name))
                    .or_default()
                    .push(s);
            }
            Ok(())
        })();
        let _ = measure(
            &dir,
            bin,
            &["sandbox", "down", "--dir", &sandbox],
            &[],
            STEP_TIMEOUT,
            &dir.join("down.log"),
        );
        result?;
    }
    for (key, xs) in samples {
        let m = median(xs);
        eprintln!(
            "  kube {:>3} ms  {:<8} {:<19} {:>8.3} s {:>8.1} MiB",
            key.0,
            format!("{:?}", key.1).to_lowercase(),
            key.2,
            m.secs,
            mib(m.peak_kib)
        );
        out.insert(
            key,
            Cell {
                sample: m,
                requests: counts.get(&key).copied(),
            },
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The report

fn run(opts: &Opts) -> Result<(), String> {
    let flotilla = opts.common.flotilla();
    let root = opts.common.work_dir("kubernetes")?;
    let kubectl = if opts.no_kubectl {
        None
    } else {
        find_on_path("kubectl")
    };
    match &kubectl {
        Some(k) => eprintln!("comparing with {}", k.display()),
        None if opts.no_kubectl => eprintln!("flotilla alone (--no-kubectl)"),
        None => eprintln!("kubectl is not on PATH: flotilla runs alone"),
    }
    let mut fleet = BTreeMap::new();
    for &n in &opts.clusters.0 {
        let n = n as usize;
        fleet.insert(n, run_fleet(opts, &flotilla, n, &root)?);
    }
    let mut quickstart = BTreeMap::new();
    for &n in &opts.quickstart.0 {
        let n = n as usize;
        quickstart.insert(n, run_quickstart(opts, &flotilla, n, &root)?);
    }
    let mut kube = BTreeMap::new();
    for &latency in &opts.latencies.0 {
        run_kube(
            opts,
            &flotilla,
            kubectl.as_deref(),
            latency,
            &root,
            &mut kube,
        )?;
    }
    opts.common
        .report(&report(opts, &fleet, &quickstart, &kube, kubectl.is_some()))
}

fn secs(s: &Sample) -> String {
    if s.secs < 10.0 {
        format!("{:.3}", s.secs)
    } else {
        format!("{:.1}", s.secs)
    }
}

/// The time `requests` need at `latency` ms with `parallelism` of them in flight.
fn floor(requests: u64, latency: u64, parallelism: usize) -> f64 {
    requests as f64 * latency as f64 / 1000.0 / parallelism.max(1) as f64
}

fn report(
    opts: &Opts,
    fleet: &BTreeMap<usize, BTreeMap<&'static str, Cell>>,
    quickstart: &BTreeMap<usize, BTreeMap<&'static str, Cell>>,
    kube: &BTreeMap<KubeKey, Cell>,
    with_kubectl: bool,
) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "## Results: Kubernetes\n");
    let _ = writeln!(r, "- machine: {}", machine());
    let _ = writeln!(
        r,
        "- flotilla {} (release build), median of {} runs per step, `-parallelism={}`",
        env!("CARGO_PKG_VERSION"),
        opts.runs.max(1),
        opts.parallelism
    );
    if !with_kubectl {
        let _ = writeln!(r, "- kubectl: not run (not on PATH or --no-kubectl)");
    }
    let mut verdicts = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    if !fleet.is_empty() {
        let _ = writeln!(
            r,
            "\n### Fleet: N clusters, one provider block each, 10 ConfigMaps per cluster\n"
        );
        let _ = writeln!(
            r,
            "| clusters | step | s | peak MiB | MiB per cluster | requests |"
        );
        let _ = writeln!(r, "| ---: | --- | ---: | ---: | ---: | ---: |");
        for (n, cells) in fleet {
            for name in FLEET_STEPS {
                let Some(c) = cells.get(name) else { continue };
                let per = mib(c.sample.peak_kib) / *n as f64;
                let _ = writeln!(
                    r,
                    "| {n} | {name} | {} | {:.0} | {} | {} |",
                    secs(&c.sample),
                    mib(c.sample.peak_kib),
                    if name == "sandbox up" {
                        "–".to_string()
                    } else {
                        format!("{per:.2}")
                    },
                    c.requests.map_or("–".into(), |q| q.to_string())
                );
            }
        }
        let at = |n: usize, name: &str| fleet.get(&n).and_then(|c| c.get(name));
        for (name, limit) in [
            ("no-change plan", 5.0),
            ("apply", 10.0),
            ("sandbox up", 3.0),
        ] {
            if let Some(c) = at(1000, name) {
                verdicts.push(format!(
                    "fleet {name} of 1,000 clusters: {:.2} s (target < {limit} s): {}",
                    c.sample.secs,
                    verdict(c.sample.secs < limit)
                ));
            }
        }
        let growth: Vec<(&str, f64)> = FLEET_STEPS
            .iter()
            .filter_map(|&name| {
                Some((
                    name,
                    at(1000, name)?.sample.secs / at(100, name)?.sample.secs.max(1e-9),
                ))
            })
            .collect();
        if let Some((name, worst)) = growth
            .iter()
            .copied()
            .reduce(|a, b| if b.1 > a.1 { b } else { a })
        {
            verdicts.push(format!(
                "fleet growth 100 → 1,000 clusters: at most {worst:.1}x ({name}; target ≤ 12x): {}",
                verdict(worst <= 12.0)
            ));
        }
        if let Some(c) = at(1000, "apply") {
            verdicts.push(format!(
                "fleet peak memory at 1,000 clusters: {:.2} MiB per cluster (apply, stated)",
                mib(c.sample.peak_kib) / 1000.0
            ));
        }
    }
    if !quickstart.is_empty() {
        let _ = writeln!(
            r,
            "\n### The quickstart scaled: N clusters made with Cluster API, a Karmada fleet, four addons, a policy, a rollout\n"
        );
        let _ = writeln!(r, "| clusters | objects | step | s | peak MiB | requests |");
        let _ = writeln!(r, "| ---: | ---: | --- | ---: | ---: | ---: |");
        for (n, cells) in quickstart {
            // 4 per cluster, 8 + 1 per member in the fleet, 2 per addon per member (volcano
            // on one), 2 for the policy, 3 per member for the rollout.
            let objects = 4 * n + (8 * n + 1) + 2 * 3 * n + 2 + 2 + 3 * n;
            for name in QUICKSTART_STEPS {
                let Some(c) = cells.get(name) else { continue };
                let _ = writeln!(
                    r,
                    "| {n} | {objects} | {name} | {} | {:.0} | {} |",
                    secs(&c.sample),
                    mib(c.sample.peak_kib),
                    c.requests.map_or("–".into(), |q| q.to_string())
                );
            }
        }
        if let Some(c) = quickstart.get(&100).and_then(|c| c.get("no-change plan")) {
            verdicts.push(format!(
                "quickstart no-change plan at 100 clusters: {:.2} s (stated)",
                c.sample.secs
            ));
        }
    }
    if !kube.is_empty() {
        let _ = writeln!(
            r,
            "\n### {} ConfigMaps in 10 namespaces: flotilla and kubectl\n",
            opts.objects
        );
        let _ = writeln!(
            r,
            "| latency | step | flotilla s | requests | floor s | of floor | kubectl s | flotilla faster |"
        );
        let _ = writeln!(
            r,
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let latencies: Vec<u64> = {
            let mut l: Vec<u64> = kube.keys().map(|k| k.0).collect();
            l.dedup();
            l
        };
        for latency in latencies {
            for name in KUBE_STEPS {
                let Some(f) = kube.get(&(latency, Tool::Flotilla, name)) else {
                    continue;
                };
                // The same step without added latency is what the work costs besides waiting.
                let base = kube
                    .get(&(0, Tool::Flotilla, name))
                    .map_or(0.0, |b| b.sample.secs);
                let fl = f
                    .requests
                    .map(|q| base + floor(q, latency, opts.parallelism))
                    .filter(|_| latency > 0);
                let k = kube.get(&(latency, Tool::Kubectl, name));
                let _ = writeln!(
                    r,
                    "| {latency} ms | {name} | {} | {} | {} | {} | {} | {} |",
                    secs(&f.sample),
                    f.requests.map_or("–".into(), |q| q.to_string()),
                    fl.map_or("–".into(), |x| format!("{x:.3}")),
                    fl.map_or("–".into(), |x| format!(
                        "{:.2}x",
                        f.sample.secs / x.max(1e-9)
                    )),
                    k.map_or("–".into(), |k| secs(&k.sample)),
                    k.map_or("–".into(), |k| format!(
                        "{:.1}x",
                        k.sample.secs / f.sample.secs.max(1e-9)
                    )),
                );
                if latency == 10 {
                    if let Some(k) = k {
                        let want = if name == "no-change check" { 20.0 } else { 5.0 };
                        let what = if name == "no-change check" {
                            "`kubectl diff --server-side`"
                        } else {
                            "`kubectl apply --server-side`"
                        };
                        if name != "one object changed" {
                            let ratio = k.sample.secs / f.sample.secs.max(1e-9);
                            verdicts.push(format!(
                                "{name} at 10 ms: {ratio:.1}x faster than {what} (target {want}x): {}",
                                verdict(ratio >= want)
                            ));
                        }
                    }
                    if let Some(fl) = fl {
                        let ratio = f.sample.secs / fl.max(1e-9);
                        verdicts.push(format!(
                            "{name} at 10 ms: {ratio:.2}x the floor of {fl:.3} s ({} requests; target ≤ 2x): {}",
                            f.requests.unwrap_or(0),
                            verdict(ratio <= 2.0)
                        ));
                    }
                }
            }
        }
        let _ = writeln!(
            r,
            "\n`floor` is the least time the step can take at that latency: the same step without added latency (its work besides waiting) plus flotilla's requests × latency / `-parallelism`; `of floor` is flotilla's time over it."
        );
    }
    let _ = writeln!(r, "\n### Targets\n");
    for line in verdicts {
        let _ = writeln!(r, "- {line}");
    }
    r
}
