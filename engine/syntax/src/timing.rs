//! Phase timings for profiling: with `FLOTILLA_TIMINGS=1` in the environment, every
//! [`phase`] prints `timing: NAME 0.123s` to stderr when it ends, and [`count`] prints
//! `count: NAME N` (the CLI reports the provider host's counters so). Off, a phase costs one
//! relaxed load.

use std::sync::OnceLock;
use std::time::Instant;

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("FLOTILLA_TIMINGS").is_some_and(|v| !v.is_empty() && v != "0")
    })
}

/// A running phase; reports when dropped.
#[must_use = "a phase ends when this is dropped"]
pub struct Phase {
    name: &'static str,
    start: Option<Instant>,
}

/// Starts timing `name` (a no-op unless `FLOTILLA_TIMINGS` is set).
pub fn phase(name: &'static str) -> Phase {
    Phase {
        name,
        start: enabled().then(Instant::now),
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            eprintln!(
                "timing: {} {:.3}s",
                self.name,
                start.elapsed().as_secs_f64()
            );
        }
    }
}

/// Reports a count for profiling (`count: kubernetes requests 2050`), only when
/// `FLOTILLA_TIMINGS` is set.
pub fn count(name: &str, n: u64) {
    if enabled() {
        eprintln!("count: {name} {n}");
    }
}
