//! Measuring one command, shared by the benchmarks: the bench binary re-executes itself with
//! `--measure TIMEOUT -- PROGRAM ARGS...` as a wrapper that waits for the command and reports
//! its wall time and peak resident memory (`getrusage(RUSAGE_CHILDREN)` of its one child);
//! plus what a report says about the machine.

#![allow(dead_code)]

/// The options every benchmark takes, besides its own.
#[derive(clap::Args, Debug)]
pub struct Common {
    /// The flotilla binary to measure (default: the one cargo built with this benchmark).
    #[arg(long)]
    pub flotilla: Option<PathBuf>,
    /// Where workloads are generated (default: target/bench-NAME).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Also write the report (markdown) to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
    /// Internal: measure one command (`--measure TIMEOUT -- PROGRAM ARGS…`).
    #[arg(long, hide = true, value_name = "TIMEOUT")]
    pub measure: Option<u64>,
    #[arg(last = true, hide = true)]
    pub command: Vec<String>,
}

impl Common {
    /// Runs the benchmark, or (re-executed with `--measure`) the wrapper around one command.
    pub fn main(&self, run: impl FnOnce() -> Result<(), String>) -> ExitCode {
        if let Some(timeout) = self.measure {
            return measure_child(&self.command, Duration::from_secs(timeout));
        }
        match run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// The flotilla binary.
    pub fn flotilla(&self) -> PathBuf {
        self.flotilla
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flotilla")))
    }

    /// The work directory, created: `--work-dir`, else `target/bench-NAME`.
    pub fn work_dir(&self, name: &str) -> Result<PathBuf, String> {
        let root = self.work_dir.clone().unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/bench-{name}"))
        });
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        Ok(root)
    }

    /// Prints the report, and writes it to `--report`.
    pub fn report(&self, report: &str) -> Result<(), String> {
        print!("{report}");
        if let Some(path) = &self.report {
            std::fs::write(path, report).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// A comma-separated list of whole numbers (`1000,10_000`; empty for none).
#[derive(Clone, Debug)]
pub struct Numbers(pub Vec<u64>);

/// Parses [`Numbers`], for clap.
pub fn numbers(s: &str) -> Result<Numbers, String> {
    s.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            x.trim()
                .replace('_', "")
                .parse()
                .map_err(|_| format!("`{x}` is not a whole number"))
        })
        .collect::<Result<_, _>>()
        .map(Numbers)
}

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// What the wrapper reports about one command.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub secs: f64,
    pub peak_kib: u64,
    pub code: i32,
    pub timed_out: bool,
}

/// Runs inside the wrapper process: spawn, wait (killing after `timeout`), then print
/// `secs peak_kib code timed_out`. The peak is `getrusage(RUSAGE_CHILDREN)`, whose only child
/// is the measured command, so it is that command's own peak.
pub fn measure_child(command: &[String], timeout: Duration) -> ExitCode {
    let Some((program, args)) = command.split_first() else {
        eprintln!("--measure needs a command after --");
        return ExitCode::FAILURE;
    };
    let start = Instant::now();
    // The command's output goes to the wrapper's stderr (the step's log), never into the
    // pipe that carries the wrapper's one-line report.
    let log = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut child = match Command::new(program).args(args).stdout(log).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    // Stop at the time limit, or when the command's memory passes MEMORY_LIMIT (Terraform's
    // for_each plans grow quadratically; the machine must survive them).
    let mut timed_out = false;
    loop {
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
        let over_memory = rss_kib(pid.as_raw()).is_some_and(|k| k > MEMORY_LIMIT_KIB);
        if start.elapsed() >= timeout || over_memory {
            timed_out = true;
            if over_memory {
                eprintln!(
                    "stopped: more than {} MiB resident",
                    MEMORY_LIMIT_KIB / 1024
                );
            }
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            break;
        }
    }
    let status = waiter.join().expect("waiter thread");
    let secs = start.elapsed().as_secs_f64();
    let code = status.ok().and_then(|s| s.code()).unwrap_or(-1);
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    // Linux reports ru_maxrss in KiB.
    println!("{secs} {} {code} {timed_out}", usage.max_rss());
    ExitCode::SUCCESS
}

/// A measured command is stopped above this resident size.
const MEMORY_LIMIT_KIB: u64 = 12 * 1024 * 1024;

/// The resident size of a running process, from /proc.
fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `program args` in `dir` (with `env` added) under the wrapper; its output goes to
/// `log`.
pub fn measure(
    dir: &Path,
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
    log: &Path,
) -> Result<Sample, String> {
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(me)
        .arg("--measure")
        .arg(timeout.as_secs().to_string())
        .arg("--")
        .arg(program)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stderr(out)
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|c| c.wait_with_output())
        .map_err(|e| format!("cannot run the wrapper: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    let parts: Vec<&str> = line.split(' ').collect();
    let parse = || -> Option<Sample> {
        Some(Sample {
            secs: parts.first()?.parse().ok()?,
            peak_kib: parts.get(1)?.parse().ok()?,
            code: parts.get(2)?.parse().ok()?,
            timed_out: parts.get(3)?.parse().ok()?,
        })
    };
    parse().ok_or_else(|| format!("the wrapper printed {line:?}; see {}", log.display()))
}

/// The median run by time, with the highest peak of all runs.
pub fn median(mut xs: Vec<Sample>) -> Sample {
    xs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let mid = xs[xs.len() / 2];
    Sample {
        peak_kib: xs.iter().map(|s| s.peak_kib).max().unwrap_or(0),
        ..mid
    }
}

/// KiB as MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A program on `PATH`, if there is one.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The CPU, cores and memory, for reports.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| format!("{:.0} GiB", k as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}")
}
