//! Measuring one command, shared by the benchmarks: the bench binary re-executes itself with
//! `--measure TIMEOUT -- PROGRAM ARGS...` as a wrapper that waits for the command and reports
//! its wall time and peak resident memory (`getrusage(RUSAGE_CHILDREN)` of its one child);
//! plus what a report says about the machine.

#![allow(dead_code)]

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
