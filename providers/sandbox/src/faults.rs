//! Fault injection: per cluster, seeded and deterministic. A cluster can add latency, answer a
//! fraction of requests with 500/503, 429 (with `Retry-After`) or 409 conflicts on updates,
//! drop connections, or go unreachable for a while. Set at start (`SandboxOptions::faults`)
//! or at runtime through the admin endpoint `/flotilla/v1/faults`.
//!
//! Decisions come from a xorshift generator seeded with `seed`: the same configuration and
//! the same sequence of requests give the same faults.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What faults a cluster injects. Rates are fractions of requests, from 0 to 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the generator that decides which requests fail.
    pub seed: u64,
    /// Added to every request before it is answered.
    pub latency_ms: u64,
    /// Answered 500 or 503 (alternating by the generator).
    pub error_rate: f64,
    /// Answered 429 Too Many Requests with `Retry-After: retry_after_seconds`.
    pub throttle_rate: f64,
    pub retry_after_seconds: u64,
    /// Updates (PUT, and PATCH other than server-side apply) answered 409 Conflict.
    pub conflict_rate: f64,
    /// Connections closed without an answer.
    pub drop_rate: f64,
    /// Every connection is closed without an answer until this is turned off.
    pub unreachable: bool,
    /// Unreachable for this long from when the configuration is set, then back.
    pub unreachable_for_ms: u64,
    /// Only writes (POST, PUT, PATCH, DELETE) are subject to the rates.
    pub writes_only: bool,
    /// Deployments never finish rolling out: a new ReplicaSet's pods never become available.
    pub rollouts_stall: bool,
    /// Flagger's analysis of every new revision fails its checks (`canary_analysis=fail`):
    /// failed checks accumulate to the Canary's `threshold`, then it is `Failed`.
    pub canary_analysis_fail: bool,
}

impl FaultConfig {
    /// Checks the rates; the message names the bad field.
    pub fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("conflict_rate", self.conflict_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        Ok(())
    }

    /// Parses `key=value,key=value` (the `--fault` syntax). Durations take `ms` or `s`.
    pub fn parse(spec: &str) -> Result<FaultConfig, String> {
        let mut config = FaultConfig::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .unwrap_or((part, "true"));
            let rate = || {
                value
                    .parse::<f64>()
                    .map_err(|_| format!("{key}: expected a number between 0 and 1, got {value:?}"))
            };
            let millis = || {
                parse_millis(value).ok_or(format!(
                    "{key}: expected a duration such as 200ms or 2s, got {value:?}"
                ))
            };
            let flag = || {
                value
                    .parse::<bool>()
                    .map_err(|_| format!("{key}: expected true or false, got {value:?}"))
            };
            match key {
                "seed" => {
                    config.seed = value
                        .parse()
                        .map_err(|_| format!("seed: expected a whole number, got {value:?}"))?
                }
                "latency" => config.latency_ms = millis()?,
                "errors" | "error_rate" => config.error_rate = rate()?,
                "throttle" | "throttle_rate" => config.throttle_rate = rate()?,
                "retry_after" => config.retry_after_seconds = millis()?.div_ceil(1000),
                "conflicts" | "conflict_rate" => config.conflict_rate = rate()?,
                "drops" | "drop_rate" => config.drop_rate = rate()?,
                "unreachable" => config.unreachable = flag()?,
                "unreachable_for" => config.unreachable_for_ms = millis()?,
                "writes_only" => config.writes_only = flag()?,
                "rollouts_stall" => config.rollouts_stall = flag()?,
                "canary_analysis" => {
                    config.canary_analysis_fail = match value {
                        "fail" => true,
                        "pass" => false,
                        _ => {
                            return Err(format!(
                                "canary_analysis: expected fail or pass, got {value:?}"
                            ));
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown fault {key:?}; known: seed, latency, errors, throttle, retry_after, conflicts, drops, unreachable, unreachable_for, writes_only, rollouts_stall, canary_analysis"
                    ));
                }
            }
        }
        config.check()?;
        Ok(config)
    }
}

fn parse_millis(value: &str) -> Option<u64> {
    if let Some(ms) = value.strip_suffix("ms") {
        return ms.trim().parse().ok();
    }
    if let Some(s) = value.strip_suffix('s') {
        return s.trim().parse::<f64>().ok().map(|s| (s * 1000.0) as u64);
    }
    value.parse().ok()
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Close the connection without answering.
    Drop,
    /// Answer with this status code.
    Status(u16),
    /// 429 with `Retry-After`.
    Throttle(u64),
    /// 409 Conflict on an update.
    Conflict,
}

/// A cluster's fault state: its configuration and generator.
#[derive(Debug, Default)]
pub struct Injector {
    state: Mutex<InjectorState>,
}

#[derive(Debug, Default)]
struct InjectorState {
    config: FaultConfig,
    rng: u64,
    unreachable_until: Option<Instant>,
}

impl Injector {
    pub fn set(&self, config: FaultConfig) {
        let mut state = self.lock();
        state.rng = config.seed ^ 0x9E37_79B9_7F4A_7C15;
        state.unreachable_until = (config.unreachable_for_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(config.unreachable_for_ms));
        state.config = config;
    }

    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InjectorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether every connection is dropped now (`unreachable`, or within `unreachable_for`):
    /// what controllers of other clusters see when they try to reach this one.
    pub fn unreachable(&self) -> bool {
        let state = self.lock();
        state.config.unreachable || state.unreachable_until.is_some_and(|t| Instant::now() < t)
    }

    /// The latency to add and the fault (if any) for a request.
    pub fn decide(&self, method: &str, is_update: bool) -> (Duration, Option<Fault>) {
        if self.unreachable() {
            let latency = Duration::from_millis(self.lock().config.latency_ms);
            return (latency, Some(Fault::Drop));
        }
        let mut state = self.lock();
        let latency = Duration::from_millis(state.config.latency_ms);
        let write = !matches!(method, "GET" | "HEAD" | "OPTIONS");
        if state.config.writes_only && !write {
            return (latency, None);
        }
        let c = state.config.clone();
        let mut roll = |rate: f64| rate > 0.0 && state.next_unit() < rate;
        let fault = if roll(c.drop_rate) {
            Some(Fault::Drop)
        } else if roll(c.error_rate) {
            Some(Fault::Status(if roll(0.5) { 503 } else { 500 }))
        } else if roll(c.throttle_rate) {
            Some(Fault::Throttle(c.retry_after_seconds.max(1)))
        } else if is_update && roll(c.conflict_rate) {
            Some(Fault::Conflict)
        } else {
            None
        };
        (latency, fault)
    }
}

impl InjectorState {
    /// xorshift64*: a uniform number in [0, 1).
    fn next_unit(&mut self) -> f64 {
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag_syntax() {
        let c = FaultConfig::parse(
            "seed=7, errors=0.2,throttle=0.1,retry_after=2s,latency=50ms,writes_only",
        )
        .unwrap();
        assert_eq!(c.seed, 7);
        assert_eq!(c.error_rate, 0.2);
        assert_eq!(c.throttle_rate, 0.1);
        assert_eq!(c.retry_after_seconds, 2);
        assert_eq!(c.latency_ms, 50);
        assert!(c.writes_only);
        assert!(
            FaultConfig::parse("errors=2")
                .unwrap_err()
                .contains("between 0 and 1")
        );
        assert!(
            FaultConfig::parse("explode=1")
                .unwrap_err()
                .contains("unknown fault")
        );
    }

    #[test]
    fn same_seed_same_faults() {
        let run = |seed| {
            let injector = Injector::default();
            injector.set(FaultConfig {
                seed,
                error_rate: 0.3,
                throttle_rate: 0.2,
                ..FaultConfig::default()
            });
            (0..200)
                .map(|_| injector.decide("GET", false).1)
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        let errors = a
            .iter()
            .filter(|f| matches!(f, Some(Fault::Status(_))))
            .count();
        assert!(
            (30..=90).contains(&errors),
            "about 30% of 200, got {errors}"
        );
        assert!(a.contains(&Some(Fault::Status(500))) && a.contains(&Some(Fault::Status(503))));
    }

    #[test]
    fn writes_only_and_conflicts() {
        let injector = Injector::default();
        injector.set(FaultConfig {
            conflict_rate: 1.0,
            writes_only: true,
            ..FaultConfig::default()
        });
        assert_eq!(injector.decide("GET", false).1, None);
        assert_eq!(injector.decide("POST", false).1, None);
        assert_eq!(injector.decide("PUT", true).1, Some(Fault::Conflict));
    }

    #[test]
    fn unreachable_for_a_while() {
        let injector = Injector::default();
        injector.set(FaultConfig {
            unreachable_for_ms: 30,
            ..FaultConfig::default()
        });
        assert_eq!(injector.decide("GET", false).1, Some(Fault::Drop));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(injector.decide("GET", false).1, None);
    }
}
