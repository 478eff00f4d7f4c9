//! The circuit breaker of one push destination: stops sending to an
//! endpoint that keeps failing, so a dead receiver cannot hold every worker
//! slot and burn every entry's retry budget.
//!
//! Closed, it counts attempts in a sliding `window` and opens after
//! `consecutive` failures in a row, or when at least `min_requests`
//! attempts in the window failed at `failure_ratio` or more. Open, the
//! dispatcher takes nothing (entries keep their attempt counts) until a
//! probe is due: one attempt, after `probe_interval`, doubling up to
//! `max_probe_interval` while probes fail. A probe that succeeds closes it.
//! With `disable_after`, a destination failing that long (from its first
//! failure since the last success) is paused for an operator.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::config::Invalid;

/// `circuit_breaker = { ... }` on a destination. Absent: no breaker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Share of failed attempts in the window that opens the circuit.
    #[serde(default = "default_failure_ratio")]
    pub failure_ratio: f64,
    /// How far back the failure ratio looks.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Attempts the window needs before the ratio counts, so two failures
    /// out of three do not open it.
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
    /// Failures in a row that open the circuit whatever the ratio.
    #[serde(default = "default_consecutive")]
    pub consecutive: u32,
    /// Wait before the first probe of an open circuit.
    #[serde(default = "default_probe_interval", with = "humantime_serde")]
    pub probe_interval: Duration,
    /// The longest wait between probes (the wait doubles per failed probe).
    #[serde(default = "default_max_probe_interval", with = "humantime_serde")]
    pub max_probe_interval: Duration,
    /// Pause the destination once it has failed this long, e.g. `"24h"`.
    #[serde(default, with = "humantime_serde")]
    pub disable_after: Option<Duration>,
}

fn default_failure_ratio() -> f64 {
    0.5
}
fn default_window() -> Duration {
    Duration::from_secs(60)
}
fn default_min_requests() -> u32 {
    10
}
fn default_consecutive() -> u32 {
    5
}
fn default_probe_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_max_probe_interval() -> Duration {
    Duration::from_secs(300)
}

impl BreakerConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(Invalid::new(
                "failure_ratio",
                format!(
                    "must be above 0 and at most 1 (e.g. 0.5), got {}",
                    self.failure_ratio
                ),
            ));
        }
        for (key, d) in [
            ("window", self.window),
            ("probe_interval", self.probe_interval),
            ("max_probe_interval", self.max_probe_interval),
        ] {
            if d.is_zero() {
                return Err(Invalid::new(key, "must be above zero (e.g. \"5s\")"));
            }
        }
        if self.max_probe_interval < self.probe_interval {
            return Err(Invalid::new(
                "max_probe_interval",
                "must be at least probe_interval",
            ));
        }
        if self.min_requests == 0 || self.consecutive == 0 {
            return Err(Invalid::new(
                if self.min_requests == 0 {
                    "min_requests"
                } else {
                    "consecutive"
                },
                "must be at least 1",
            ));
        }
        if self.disable_after.is_some_and(|d| d.is_zero()) {
            return Err(Invalid::new(
                "disable_after",
                "must be above zero (e.g. \"24h\")",
            ));
        }
        Ok(())
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Closed,
    Open,
    /// Open, with its one probe in flight.
    HalfOpen,
}

/// What the dispatcher may do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Send as usual.
    Go,
    /// Send one entry: the probe. Report it with [`Breaker::record`], or
    /// give the slot back with [`Breaker::no_probe`] if nothing was due.
    Probe,
    /// Send nothing before this time (epoch ms).
    Wait(u64),
}

/// A state change worth an operator's attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Opened {
        reason: String,
    },
    Closed,
    /// `disable_after` passed: the destination should be paused.
    Disable {
        failing_for: Duration,
    },
}

/// One destination's breaker.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Outcomes in the window, oldest first: (at ms, failed).
    recent: VecDeque<(u64, bool)>,
    failures_in_a_row: u32,
    /// The first failure since the last success: what `disable_after`
    /// counts from.
    failing_since: Option<u64>,
    next_probe_ms: u64,
    interval: Duration,
    /// `disable_after` fired already (once per failing stretch).
    disabled: bool,
}

/// The window keeps at most this many outcomes: enough for any ratio,
/// bounded whatever the traffic.
const MAX_RECENT: usize = 4096;

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        let interval = config.probe_interval;
        Self {
            config,
            inner: Mutex::new(Inner {
                state: State::Closed,
                recent: VecDeque::new(),
                failures_in_a_row: 0,
                failing_since: None,
                next_probe_ms: 0,
                interval,
                disabled: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> State {
        self.lock().state
    }

    /// Whether an attempt may start at `now`.
    pub fn admit(&self, now: u64) -> Admit {
        let mut i = self.lock();
        match i.state {
            State::Closed => Admit::Go,
            State::Open if now >= i.next_probe_ms => {
                i.state = State::HalfOpen;
                Admit::Probe
            }
            State::Open => Admit::Wait(i.next_probe_ms),
            // The probe's answer decides; look again shortly.
            State::HalfOpen => Admit::Wait(now + 100),
        }
    }

    /// The probe slot was given but nothing was due: give it back.
    pub fn no_probe(&self) {
        let mut i = self.lock();
        if i.state == State::HalfOpen {
            i.state = State::Open;
        }
    }

    /// Records an attempt's outcome; answers the state changes it caused.
    pub fn record(&self, now: u64, failed: bool) -> Vec<Change> {
        let c = &self.config;
        let mut i = self.lock();
        let mut changes = Vec::new();
        if !failed {
            i.failures_in_a_row = 0;
            i.failing_since = None;
            i.disabled = false;
        } else {
            i.failures_in_a_row += 1;
            i.failing_since.get_or_insert(now);
        }
        i.recent.push_back((now, failed));
        let horizon = now.saturating_sub(c.window.as_millis() as u64);
        while i.recent.front().is_some_and(|(at, _)| *at < horizon) || i.recent.len() > MAX_RECENT {
            i.recent.pop_front();
        }
        match (i.state, failed) {
            (State::HalfOpen, false) => {
                i.state = State::Closed;
                i.recent.clear();
                i.interval = c.probe_interval;
                changes.push(Change::Closed);
            }
            (State::HalfOpen, true) => {
                i.interval = (i.interval * 2).min(c.max_probe_interval);
                i.state = State::Open;
                i.next_probe_ms = now + i.interval.as_millis() as u64;
            }
            (State::Closed, true) => {
                let n = i.recent.len() as u32;
                let bad = i.recent.iter().filter(|(_, f)| *f).count() as u32;
                let reason = if i.failures_in_a_row >= c.consecutive {
                    Some(format!("{} failed attempts in a row", i.failures_in_a_row))
                } else if n >= c.min_requests && f64::from(bad) / f64::from(n) >= c.failure_ratio {
                    Some(format!(
                        "{bad} of the last {n} attempts failed (within {})",
                        humantime::format_duration(c.window)
                    ))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    i.state = State::Open;
                    i.interval = c.probe_interval;
                    i.next_probe_ms = now + i.interval.as_millis() as u64;
                    changes.push(Change::Opened { reason });
                }
            }
            // Attempts that were in flight when it opened: counted above,
            // they change nothing more.
            _ => {}
        }
        if let (Some(after), Some(since)) = (c.disable_after, i.failing_since)
            && failed
            && !i.disabled
            && now.saturating_sub(since) >= after.as_millis() as u64
        {
            i.disabled = true;
            changes.push(Change::Disable {
                failing_for: Duration::from_millis(now - since),
            });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_ratio: 0.5,
            window: Duration::from_secs(10),
            min_requests: 4,
            consecutive: 3,
            probe_interval: Duration::from_millis(100),
            max_probe_interval: Duration::from_millis(350),
            disable_after: Some(Duration::from_secs(60)),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_probes_with_backoff_and_closes() {
        let b = Breaker::new(config());
        assert!(b.record(0, true).is_empty());
        assert!(b.record(1, true).is_empty());
        assert!(matches!(b.record(2, true)[..], [Change::Opened { .. }]));
        assert_eq!(b.admit(50), Admit::Wait(102));
        assert_eq!(b.admit(102), Admit::Probe);
        // One probe at a time.
        assert!(matches!(b.admit(103), Admit::Wait(_)));
        assert!(b.record(110, true).is_empty());
        // The wait doubled: 200 ms, then capped at 350.
        assert_eq!(b.admit(111), Admit::Wait(310));
        assert_eq!(b.admit(310), Admit::Probe);
        b.record(310, true);
        assert_eq!(b.admit(311), Admit::Wait(660));
        assert_eq!(b.admit(660), Admit::Probe);
        assert_eq!(b.record(661, false), [Change::Closed]);
        assert_eq!(b.admit(662), Admit::Go);
    }

    #[test]
    fn opens_on_the_failure_ratio_only_past_min_requests() {
        let b = Breaker::new(config());
        for (t, failed) in [(0, true), (1, false), (2, true)] {
            assert!(b.record(t, failed).is_empty());
        }
        assert!(matches!(b.record(3, true)[..], [Change::Opened { .. }]));
    }

    #[test]
    fn an_unused_probe_slot_is_given_back() {
        let b = Breaker::new(config());
        for t in 0..3 {
            b.record(t, true);
        }
        assert_eq!(b.admit(200), Admit::Probe);
        b.no_probe();
        assert_eq!(b.admit(201), Admit::Probe);
    }

    #[test]
    fn disable_after_fires_once_per_failing_stretch() {
        let b = Breaker::new(config());
        b.record(0, true);
        assert!(
            b.record(30_000, true)
                .iter()
                .all(|c| !matches!(c, Change::Disable { .. }))
        );
        let c = b.record(60_000, true);
        assert!(
            c.iter().any(|c| matches!(c, Change::Disable { .. })),
            "{c:?}"
        );
        assert!(b.record(61_000, true).is_empty());
    }
}
