//! The scale benchmark: flotilla and Terraform on the same generated graphs, side by side.
//!
//! ```text
//! cargo bench -p flotilla-cli --bench scale                       # everything (see docs/performance.md)
//! cargo bench -p flotilla-cli --bench scale -- --sizes 1000 --flotilla-only ''   # a quick look
//! ```
//!
//! Each workload is written twice, as `builtin_data` for flotilla and `terraform_data` for
//! Terraform, and every step runs as a separate process measured by a small wrapper (this
//! binary re-executed with `--measure`), which reports the wall time and the peak resident
//! memory of everything it waited for. `terraform` is looked up on `PATH`; without it flotilla
//! runs alone and the report says so. The `rollout` workload (a fleet rollout in three
//! waves over `n` members) has no Terraform counterpart and runs for flotilla alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Parser;

#[path = "support/measure.rs"]
mod measure;

use measure::{Numbers, Sample, find_on_path, machine, measure, median, mib, numbers};

#[derive(Parser, Debug)]
#[command(about = "flotilla and Terraform on the same generated graphs")]
struct Opts {
    /// Sizes run by both tools (comma-separated).
    #[arg(long, value_parser = numbers, default_value = "1000,10000")]
    sizes: Numbers,
    /// Sizes run by flotilla alone (comma-separated; empty to skip).
    #[arg(long, value_parser = numbers, default_value = "100000")]
    flotilla_only: Numbers,
    /// Workloads: chains, fanout, for_each, modules, rollout.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "chains,fanout,for_each,modules,rollout"
    )]
    workloads: Vec<String>,
    /// flotilla runs of every step; the report shows the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Run flotilla alone even when terraform is on PATH.
    #[arg(long)]
    no_terraform: bool,
    /// Stop a Terraform step after this many seconds (or above 12 GiB resident) and report a
    /// lower bound.
    #[arg(long, default_value_t = 300)]
    terraform_timeout: u64,
    #[command(flatten)]
    common: measure::Common,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    opts.common.main(|| run(&opts))
}

// ---------------------------------------------------------------------------------------------
// Workloads

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    Chains,
    Fanout,
    ForEach,
    Modules,
    Rollout,
}

impl Workload {
    fn parse(s: &str) -> Result<Workload, String> {
        Ok(match s {
            "chains" => Workload::Chains,
            "fanout" => Workload::Fanout,
            "for_each" => Workload::ForEach,
            "modules" => Workload::Modules,
            "rollout" => Workload::Rollout,
            _ => {
                return Err(format!(
                    "unknown workload `{s}` (chains, fanout, for_each, modules, rollout)"
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Workload::Chains => "chains",
            Workload::Fanout => "fanout",
            Workload::ForEach => "for_each",
            Workload::Modules => "modules",
            Workload::Rollout => "rollout",
        }
    }

    /// Whether Terraform has the same to run.
    fn compared(self) -> bool {
        self != Workload::Rollout
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Flotilla,
    Terraform,
}

impl Tool {
    fn resource_type(self) -> &'static str {
        match self {
            Tool::Flotilla => "builtin_data",
            Tool::Terraform => "terraform_data",
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Tool::Flotilla => "hcl",
            Tool::Terraform => "tf",
        }
    }
}

/// Resources per generated file, so no single file is unrealistically large.
const PER_FILE: usize = 1000;

/// `n` resources in chains of ten: each `input` references the previous resource's `output`,
/// every tenth starts a chain from a variable.
fn chain_blocks(ty: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let input = if i % 10 == 0 {
                format!("\"${{var.seed}}-{i}\"")
            } else {
                format!("{ty}.r{}.output", i - 1)
            };
            format!("resource \"{ty}\" \"r{i}\" {{\n  input = {input}\n}}\n")
        })
        .collect()
}

fn write_files(dir: &Path, stem: &str, ext: &str, blocks: &[String]) -> Result<(), String> {
    for (k, chunk) in blocks.chunks(PER_FILE).enumerate() {
        let path = dir.join(format!("{stem}{k:03}.{ext}"));
        std::fs::write(&path, chunk.concat()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Writes workload `w` of size `n` for `tool` into `dir` (emptied first).
fn generate(w: Workload, n: usize, tool: Tool, dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (ty, ext) = (tool.resource_type(), tool.ext());
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let seed = "variable \"seed\" {\n  type    = string\n  default = \"s\"\n}\n".to_string();
    match w {
        Workload::Chains => {
            write(&format!("variables.{ext}"), seed)?;
            write_files(dir, "chains", ext, &chain_blocks(ty, n))?;
        }
        Workload::Fanout => {
            write(&format!("variables.{ext}"), seed)?;
            let mut blocks = vec![format!(
                "resource \"{ty}\" \"root\" {{\n  input = var.seed\n}}\n"
            )];
            blocks.extend((1..n).map(|i| {
                format!("resource \"{ty}\" \"r{i}\" {{\n  input = {ty}.root.output\n}}\n")
            }));
            write_files(dir, "fanout", ext, &blocks)?;
        }
        Workload::ForEach => {
            let mut items = String::from("locals {\n  items = {\n");
            for i in 0..n {
                let _ = writeln!(items, "    k{i} = {i}");
            }
            items.push_str("  }\n}\n");
            write(&format!("items.{ext}"), items)?;
            write(
                &format!("main.{ext}"),
                format!(
                    "resource \"{ty}\" \"a\" {{\n  for_each = local.items\n  input    = each.value\n}}\n\n\
                     resource \"{ty}\" \"b\" {{\n  for_each = local.items\n  input    = {ty}.a[each.key].output\n}}\n"
                ),
            )?;
        }
        Workload::Rollout => {
            // A module with one object per member and the rollout that moves them: 1% as
            // a canary, then a quarter of the rest, 10% at a time, then the rest, 25% at a
            // time.
            let module = dir.join("fleet");
            std::fs::create_dir_all(&module).map_err(|e| format!("{}: {e}", module.display()))?;
            let canary = (n / 100).max(1);
            let second = canary + (n - canary) / 4;
            let text = format!(
                "{seed}\nlocals {{\n  members = [for i in range({n}) : format(\"m%06d\", i)]\n}}\n\n\
                 resource \"{ty}\" \"member\" {{\n  for_each = toset(local.members)\n  input    = \"${{var.seed}}-${{each.key}}\"\n}}\n\n\
                 resource \"builtin_rollout\" \"this\" {{\n  name     = \"fleet\"\n  revision = {{ seed = var.seed }}\n  members  = local.members\n  manages  = [\"{ty}.member\"]\n  waves = [\n\
                 \x20   {{ name = \"canary\", selected = slice(local.members, 0, {canary}), names = [], max_concurrency = \"100%\", soak = \"0s\", approval = false, max_failures = 0 }},\n\
                 \x20   {{ name = \"second\", selected = slice(local.members, {canary}, {second}), names = [], max_concurrency = \"10%\", soak = \"0s\", approval = false, max_failures = 0 }},\n\
                 \x20   {{ name = \"rest\", selected = null, names = [], max_concurrency = \"25%\", soak = \"0s\", approval = false, max_failures = 0 }},\n  ]\n}}\n"
            );
            let path = module.join(format!("main.{ext}"));
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            write(
                &format!("main.{ext}"),
                "module \"fleet\" {\n  source = \"./fleet\"\n}\n".to_string(),
            )?;
        }
        Workload::Modules => {
            let module = dir.join("mod");
            std::fs::create_dir_all(&module).map_err(|e| format!("{}: {e}", module.display()))?;
            let path = module.join(format!("main.{ext}"));
            std::fs::write(&path, format!("{seed}\n{}", chain_blocks(ty, 100).concat()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            write(
                &format!("main.{ext}"),
                format!(
                    "module \"m\" {{\n  source = \"./mod\"\n  count  = {}\n  seed   = \"m${{count.index}}\"\n}}\n",
                    n / 100
                ),
            )?;
        }
    }
    Ok(())
}

/// The Terraform state an apply of workload `w` would write, for when Terraform's own apply
/// ran out of time: its no-change plan is still measured, against exactly this state.
fn terraform_state(w: Workload, n: usize) -> serde_json::Value {
    use serde_json::{Value as J, json};
    fn attrs(value: J) -> J {
        let ty = if value.is_number() {
            "number"
        } else {
            "string"
        };
        json!({ "schema_version": 0, "sensitive_attributes": [], "attributes": {
            "id": uuid::Uuid::new_v4().to_string(),
            "input": { "value": value, "type": ty },
            "output": { "value": value, "type": ty },
            "triggers_replace": null,
        }})
    }
    fn resource(module: Option<String>, name: String, instances: Vec<J>) -> J {
        let mut r = json!({
            "mode": "managed", "type": "terraform_data", "name": name,
            "provider": "provider[\"terraform.io/builtin/terraform\"]", "instances": instances,
        });
        if let Some(m) = module {
            r["module"] = json!(m);
        }
        r
    }
    fn with_deps(mut inst: J, deps: Vec<String>) -> J {
        if !deps.is_empty() {
            inst["dependencies"] = json!(deps);
        }
        inst
    }
    let chains = |module: Option<String>, seed: &str, n: usize, out: &mut Vec<J>| {
        let prefix = module.as_ref().map(|m| format!("{m}.")).unwrap_or_default();
        let mut start = 0;
        for i in 0..n {
            if i % 10 == 0 {
                start = i;
            }
            let deps = (start..i)
                .rev()
                .map(|j| format!("{prefix}terraform_data.r{j}"))
                .collect();
            let value = json!(format!("{seed}-{start}"));
            out.push(resource(
                module.clone(),
                format!("r{i}"),
                vec![with_deps(attrs(value), deps)],
            ));
        }
    };
    let mut resources = Vec::new();
    match w {
        Workload::Chains => chains(None, "s", n, &mut resources),
        Workload::Fanout => {
            resources.push(resource(None, "root".into(), vec![attrs(json!("s"))]));
            for i in 1..n {
                let inst = with_deps(attrs(json!("s")), vec!["terraform_data.root".into()]);
                resources.push(resource(None, format!("r{i}"), vec![inst]));
            }
        }
        Workload::ForEach => {
            let keyed = |i: usize, inst: J| {
                let mut inst = inst;
                inst["index_key"] = json!(format!("k{i}"));
                inst
            };
            let a = (0..n).map(|i| keyed(i, attrs(json!(i)))).collect();
            let b = (0..n)
                .map(|i| {
                    keyed(
                        i,
                        with_deps(attrs(json!(i)), vec!["terraform_data.a".into()]),
                    )
                })
                .collect();
            resources.push(resource(None, "a".into(), a));
            resources.push(resource(None, "b".into(), b));
        }
        // Never run by Terraform (`Workload::compared`).
        Workload::Rollout => {}
        Workload::Modules => {
            for m in 0..n / 100 {
                chains(
                    Some(format!("module.m[{m}]")),
                    &format!("m{m}"),
                    100,
                    &mut resources,
                );
            }
        }
    }
    // Terraform sorts resources by module, mode, type and name.
    let key = |r: &J| {
        (
            r["module"].as_str().unwrap_or("").to_string(),
            r["name"].as_str().unwrap_or("").to_string(),
        )
    };
    resources.sort_by_key(key);
    json!({
        "version": 4, "terraform_version": "1.11.4", "serial": 1,
        "lineage": uuid::Uuid::new_v4().to_string(), "outputs": {}, "resources": resources, "check_results": null,
    })
}

// ---------------------------------------------------------------------------------------------
// Steps

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Validate,
    Plan,
    PlanOut,
    Apply,
    NoChangePlan,
}

const STEPS: [Step; 5] = [
    Step::Validate,
    Step::Plan,
    Step::PlanOut,
    Step::Apply,
    Step::NoChangePlan,
];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::Plan => "plan",
            Step::PlanOut => "plan -out",
            Step::Apply => "apply",
            Step::NoChangePlan => "no-change plan",
        }
    }

    fn args(self, tool: Tool) -> Vec<&'static str> {
        match (self, tool) {
            (Step::Validate, _) => vec!["validate", "-no-color"],
            (Step::Plan, Tool::Flotilla) => vec!["plan", "-no-color"],
            (Step::Plan, Tool::Terraform) => vec!["plan", "-no-color", "-input=false"],
            (Step::PlanOut, Tool::Flotilla) => vec!["plan", "-no-color", "-out=saved.plan"],
            (Step::PlanOut, Tool::Terraform) => {
                vec!["plan", "-no-color", "-input=false", "-out=saved.plan"]
            }
            (Step::Apply, Tool::Flotilla) => vec!["apply", "-auto-approve", "-no-color"],
            (Step::Apply, Tool::Terraform) => {
                vec!["apply", "-auto-approve", "-no-color", "-input=false"]
            }
            (Step::NoChangePlan, Tool::Flotilla) => vec!["plan", "-detailed-exitcode", "-no-color"],
            (Step::NoChangePlan, Tool::Terraform) => {
                vec!["plan", "-detailed-exitcode", "-no-color", "-input=false"]
            }
        }
    }
}

/// One measured cell: a median of flotilla runs, or one Terraform run.
#[derive(Clone, Copy, Debug)]
struct Cell {
    secs: f64,
    peak_kib: u64,
    /// Terraform ran out of time: `secs` is a lower bound.
    timed_out: bool,
    /// Terraform's apply ran out of time and this no-change plan ran on a generated state.
    generated_state: bool,
}

type Key = (Workload, usize, Step, Tool);

fn check(tool: Tool, step: Step, s: &Sample, log: &Path) -> Result<(), String> {
    let ok = s.code == 0 || s.timed_out;
    if ok {
        Ok(())
    } else if step == Step::NoChangePlan && s.code == 2 {
        Err(format!(
            "{tool:?}'s no-change plan found changes; see {}",
            log.display()
        ))
    } else {
        Err(format!(
            "{tool:?} {} exited with {}; see {}",
            step.name(),
            s.code,
            log.display()
        ))
    }
}

fn run_flotilla(
    bin: &Path,
    w: Workload,
    n: usize,
    runs: usize,
    root: &Path,
    out: &mut BTreeMap<Key, Cell>,
) -> Result<(), String> {
    let dir = root.join(format!("{}-{n}", w.name())).join("flotilla");
    generate(w, n, Tool::Flotilla, &dir)?;
    let mut samples: BTreeMap<Step, Vec<Sample>> = BTreeMap::new();
    for _ in 0..runs.max(1) {
        let _ = std::fs::remove_dir_all(dir.join(".flotilla"));
        for f in ["flotilla.state.json", "flotilla.state.json.backup"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        for step in STEPS {
            let log = dir.join(format!("{}.log", step.name().replace(' ', "-")));
            let s = measure(
                &dir,
                bin,
                &step.args(Tool::Flotilla),
                &[],
                Duration::from_secs(3600),
                &log,
            )?;
            check(Tool::Flotilla, step, &s, &log)?;
            samples.entry(step).or_default().push(s);
        }
    }
    for (step, xs) in samples {
        let m = median(xs);
        eprintln!(
            "  flotilla  {:<9} {:>7} {:<15} {:>8.3} s {:>8.1} MiB",
            w.name(),
            n,
            step.name(),
            m.secs,
            mib(m.peak_kib)
        );
        out.insert(
            (w, n, step, Tool::Flotilla),
            Cell {
                secs: m.secs,
                peak_kib: m.peak_kib,
                timed_out: false,
                generated_state: false,
            },
        );
    }
    Ok(())
}

fn run_terraform(
    bin: &Path,
    w: Workload,
    n: usize,
    timeout: Duration,
    root: &Path,
    out: &mut BTreeMap<Key, Cell>,
) -> Result<(), String> {
    let dir = root.join(format!("{}-{n}", w.name())).join("terraform");
    generate(w, n, Tool::Terraform, &dir)?;
    let init = measure(
        &dir,
        bin,
        &["init", "-input=false", "-no-color"],
        &[],
        timeout,
        &dir.join("init.log"),
    )?;
    check(
        Tool::Terraform,
        Step::Validate,
        &init,
        &dir.join("init.log"),
    )?;
    let mut apply_timed_out = false;
    for step in STEPS {
        let log = dir.join(format!("{}.log", step.name().replace(' ', "-")));
        let generated_state = step == Step::NoChangePlan && apply_timed_out;
        if generated_state {
            let state = serde_json::to_vec(&terraform_state(w, n)).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("terraform.tfstate"), state).map_err(|e| e.to_string())?;
        }
        let s = measure(&dir, bin, &step.args(Tool::Terraform), &[], timeout, &log)?;
        check(Tool::Terraform, step, &s, &log)?;
        if step == Step::Apply && s.timed_out {
            apply_timed_out = true;
            // A killed apply leaves its lock; the generated state replaces what it wrote.
            let _ = std::fs::remove_file(dir.join(".terraform.tfstate.lock.info"));
        }
        let shown = if s.timed_out {
            format!(">{:.0}", s.secs)
        } else {
            format!("{:.3}", s.secs)
        };
        eprintln!(
            "  terraform {:<9} {:>7} {:<15} {:>8} s {:>8.1} MiB",
            w.name(),
            n,
            step.name(),
            shown,
            mib(s.peak_kib)
        );
        out.insert(
            (w, n, step, Tool::Terraform),
            Cell {
                secs: s.secs,
                peak_kib: s.peak_kib,
                timed_out: s.timed_out,
                generated_state,
            },
        );
    }
    Ok(())
}

fn run(opts: &Opts) -> Result<(), String> {
    let workloads = opts
        .workloads
        .iter()
        .map(|s| Workload::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let flotilla = opts.common.flotilla();
    let root = opts.common.work_dir("scale")?;
    let terraform = if opts.no_terraform {
        None
    } else {
        find_on_path("terraform")
    };
    let tf_version = terraform.as_ref().and_then(|t| {
        let out = Command::new(t)
            .arg("version")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .ok()?;
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()?
                .to_string(),
        )
    });
    match &tf_version {
        Some(v) => eprintln!(
            "comparing with {v} ({})",
            terraform.as_ref().unwrap().display()
        ),
        None if opts.no_terraform => eprintln!("flotilla alone (--no-terraform)"),
        None => eprintln!("terraform is not on PATH: flotilla runs alone"),
    }
    let mut cells = BTreeMap::new();
    let timeout = Duration::from_secs(opts.terraform_timeout);
    for &w in &workloads {
        for n in opts.sizes.0.iter().map(|&n| n as usize) {
            run_flotilla(&flotilla, w, n, opts.runs, &root, &mut cells)?;
            if let Some(tf) = terraform.as_ref().filter(|_| w.compared()) {
                run_terraform(tf, w, n, timeout, &root, &mut cells)?;
            }
        }
        for n in opts.flotilla_only.0.iter().map(|&n| n as usize) {
            run_flotilla(&flotilla, w, n, opts.runs, &root, &mut cells)?;
        }
    }
    opts.common
        .report(&report(opts, &workloads, &cells, tf_version.as_deref()))
}

// ---------------------------------------------------------------------------------------------
// The report

fn secs(c: &Cell) -> String {
    let s = if c.secs < 10.0 {
        format!("{:.3}", c.secs)
    } else {
        format!("{:.1}", c.secs)
    };
    let mark = if c.generated_state { "†" } else { "" };
    if c.timed_out {
        format!("> {s}{mark}")
    } else {
        format!("{s}{mark}")
    }
}

fn report(
    opts: &Opts,
    workloads: &[Workload],
    cells: &BTreeMap<Key, Cell>,
    tf: Option<&str>,
) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "## Results\n");
    let _ = writeln!(r, "- machine: {}", machine());
    let _ = writeln!(
        r,
        "- flotilla {} (release build), median of {} runs per step",
        env!("CARGO_PKG_VERSION"),
        opts.runs.max(1)
    );
    match tf {
        Some(v) => {
            let _ = writeln!(
                r,
                "- {v}, one run per step, each stopped after {} s or above 12 GiB resident (shown as `> T`)",
                opts.terraform_timeout
            );
        }
        None => {
            let _ = writeln!(r, "- Terraform: not run (not on PATH or --no-terraform)");
        }
    }
    let _ = writeln!(
        r,
        "\n| workload | N | step | flotilla s | flotilla MiB | terraform s | terraform MiB | speed-up | memory |"
    );
    let _ = writeln!(
        r,
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut sizes: Vec<usize> = opts
        .sizes
        .0
        .iter()
        .chain(&opts.flotilla_only.0)
        .map(|&n| n as usize)
        .collect();
    sizes.sort();
    sizes.dedup();
    let mut any_generated = false;
    for &w in workloads {
        for &n in &sizes {
            for step in STEPS {
                let Some(f) = cells.get(&(w, n, step, Tool::Flotilla)) else {
                    continue;
                };
                let (ts, tm, speed, mem) = match cells.get(&(w, n, step, Tool::Terraform)) {
                    Some(t) => {
                        any_generated |= t.generated_state;
                        let ratio = t.secs / f.secs.max(1e-9);
                        let bound = if t.timed_out { "> " } else { "" };
                        // A stopped Terraform had not reached its peak: no memory ratio.
                        let mem = if t.timed_out {
                            "–".to_string()
                        } else {
                            format!("{:.2}", f.peak_kib as f64 / t.peak_kib.max(1) as f64)
                        };
                        (
                            secs(t),
                            format!("{bound}{:.0}", mib(t.peak_kib)),
                            format!("{bound}{ratio:.0}x"),
                            mem,
                        )
                    }
                    None => ("–".into(), "–".into(), "–".into(), "–".into()),
                };
                let _ = writeln!(
                    r,
                    "| {} | {n} | {} | {} | {:.0} | {ts} | {tm} | {speed} | {mem} |",
                    w.name(),
                    step.name(),
                    secs(f),
                    mib(f.peak_kib)
                );
            }
        }
    }
    let _ = writeln!(
        r,
        "\n`speed-up` is Terraform's time over flotilla's; `memory` is flotilla's peak over Terraform's, shown only where Terraform finished (a stopped Terraform had not reached its peak)."
    );
    if any_generated {
        let _ = writeln!(
            r,
            "† Terraform's apply ran out of time, so its no-change plan ran against the state that apply would have written, generated by the harness."
        );
    }
    let _ = writeln!(
        r,
        "\n### Growth from 1,000 to 10,000 (flotilla; target ≤ 12)\n"
    );
    let _ = writeln!(
        r,
        "| workload | validate | plan | plan -out | apply | no-change plan |"
    );
    let _ = writeln!(r, "| --- | ---: | ---: | ---: | ---: | ---: |");
    for &w in workloads {
        let row: Vec<String> = STEPS
            .iter()
            .map(|&s| {
                match (
                    cells.get(&(w, 1000, s, Tool::Flotilla)),
                    cells.get(&(w, 10000, s, Tool::Flotilla)),
                ) {
                    (Some(a), Some(b)) => format!("{:.1}", b.secs / a.secs.max(1e-9)),
                    _ => "–".into(),
                }
            })
            .collect();
        let _ = writeln!(r, "| {} | {} |", w.name(), row.join(" | "));
    }
    let _ = writeln!(r, "\n### Targets\n");
    for line in targets(workloads, cells) {
        let _ = writeln!(r, "- {line}");
    }
    r
}

/// The issue's targets, each judged on this run's numbers.
fn targets(workloads: &[Workload], cells: &BTreeMap<Key, Cell>) -> Vec<String> {
    let mut lines = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for &w in workloads {
        let get = |n, s, t| cells.get(&(w, n, s, t));
        for (step, want) in [
            (Step::Plan, 30.0),
            (Step::NoChangePlan, 30.0),
            (Step::Apply, 100.0),
        ] {
            if let (Some(f), Some(t)) = (
                get(10000, step, Tool::Flotilla),
                get(10000, step, Tool::Terraform),
            ) {
                let ratio = t.secs / f.secs.max(1e-9);
                let bound = if t.timed_out { "at least " } else { "" };
                lines.push(format!("{} {} at 10,000: {bound}{ratio:.0}x faster than Terraform (target {want}x): {}", w.name(), step.name(), verdict(ratio >= want)));
            }
        }
        for step in [Step::Plan, Step::PlanOut, Step::NoChangePlan] {
            if let Some(f) = get(100000, step, Tool::Flotilla) {
                lines.push(format!(
                    "{} {} at 100,000: {:.2} s (target < 3 s): {}",
                    w.name(),
                    step.name(),
                    f.secs,
                    verdict(f.secs < 3.0)
                ));
            }
        }
        let growth: Vec<f64> = STEPS
            .iter()
            .filter_map(|&s| {
                Some(
                    get(10000, s, Tool::Flotilla)?.secs
                        / get(1000, s, Tool::Flotilla)?.secs.max(1e-9),
                )
            })
            .collect();
        if let Some(worst) = growth.iter().copied().reduce(f64::max) {
            lines.push(format!(
                "{} growth 1,000 → 10,000: at most {worst:.1}x (target ≤ 12x): {}",
                w.name(),
                verdict(worst <= 12.0)
            ));
        }
        let mem: Vec<f64> = STEPS
            .iter()
            .filter_map(|&s| {
                let (f, t) = (
                    get(10000, s, Tool::Flotilla)?,
                    get(10000, s, Tool::Terraform)?,
                );
                (!t.timed_out).then(|| f.peak_kib as f64 / t.peak_kib.max(1) as f64)
            })
            .collect();
        if let Some(worst) = mem.iter().copied().reduce(f64::max) {
            lines.push(format!(
                "{} peak memory at 10,000, steps Terraform finished: at most {worst:.2} of Terraform's (target ≤ 0.25): {}",
                w.name(),
                verdict(worst <= 0.25)
            ));
        }
    }
    lines
}
