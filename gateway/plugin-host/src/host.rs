//! [`PluginHost`]: the loaded plugins, running chains, failure handling
//! (trap bisection, quarantine) and statistics.
//!
//! A chain runs on the caller's task: plugin calls are wasmtime async calls
//! that yield to the executor at every epoch tick (2 ms), so a looping
//! plugin takes slices of a tokio worker between other tasks until its
//! deadline interrupts it, and a batch costs no hand-off to another thread
//! and back (which cost more than the plugin itself at small batches). Each
//! plugin keeps a few long-lived instances that calls check out and return;
//! a trap throws its instance away and the next call gets a fresh one.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::engine::{Compiled, EPOCH_TICK, Instance, LogCapture, PluginEngine, PoolSize};
use super::limits::{Language, Limits, LimitsStatus};
use super::{ChainOutcome, OnError, PluginConfig, PluginError, PluginEvent, Step, Verdict};

/// Consecutive failed calls (traps, timeouts, failed instantiation) after
/// which a plugin is quarantined: its events fail fast with `on_error`
/// instead of each costing a full timeout.
pub const QUARANTINE_AFTER: u32 = 5;
/// The first quarantine; each one that follows a failed probe doubles it.
const QUARANTINE_FIRST: Duration = Duration::from_secs(1);
const QUARANTINE_MAX: Duration = Duration::from_secs(60);

/// How a timeout's trap message starts (`engine::describe_trap`).
const TIMED_OUT: &str = "timed out";

/// Instances of one plugin alive at once: calls beyond it wait for one to be
/// returned. The router runs one chain at a time; the rest is headroom for
/// the CLI and tests.
const INSTANCES_PER_PLUGIN: usize = 4;

/// The plugins. `Send + Sync`; share it as `Arc<PluginHost>`. Dropping it
/// stops the ticker and the file watcher.
pub struct PluginHost {
    shared: Arc<Shared>,
    /// Kept alive for as long as the host: dropping it stops the watching.
    _watcher: Option<Mutex<switchyard_core::watch::Watcher>>,
}

/// What the host, the ticker and the reloader share.
pub(crate) struct Shared {
    pub(crate) engine: PluginEngine,
    pub(crate) slots: HashMap<String, Arc<Slot>>,
    ready: AtomicBool,
    stop: AtomicBool,
}

/// One configured plugin: its current version, health and counters.
pub(crate) struct Slot {
    pub(crate) name: Arc<str>,
    pub(crate) config: PluginConfig,
    config_pairs: Vec<(String, String)>,
    /// Swapped whole by a reload; a batch holds its own `Arc`, so in-flight
    /// batches finish on the version they started with.
    current: RwLock<Arc<Loaded>>,
    health: Mutex<Health>,
    stats: Stats,
    /// Instances not in a call, with the generation they were made from.
    idle: Mutex<Vec<(u64, Instance)>>,
    /// One per instance that may exist ([`INSTANCES_PER_PLUGIN`]).
    permits: tokio::sync::Semaphore,
}

struct Loaded {
    compiled: Compiled,
    /// Resolved against this version's language: a reload from Rust to
    /// Python moves an unset limit to Python's default.
    limits: Limits,
    /// Bumped by every reload; an idle instance that is older is dropped.
    generation: u64,
}

#[derive(Default)]
struct Stats {
    invocations: AtomicU64,
    calls: AtomicU64,
    errors: AtomicU64,
    traps: AtomicU64,
    busy_nanos: AtomicU64,
    timed_events: AtomicU64,
    reloads: AtomicU64,
    /// Replacement files refused (the old version ran on).
    refused_reloads: AtomicU64,
    /// Batches (calls of more than one event) that failed and were re-run
    /// one event at a time.
    batch_retries: AtomicU64,
    /// Calls that ran out of `timeout`.
    timeouts: AtomicU64,
    last_timeout: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
    reload_error: Mutex<Option<String>>,
}

#[derive(Default)]
struct Health {
    consecutive_failures: u32,
    quarantined_until: Option<Instant>,
    /// Out of a quarantine but not yet proven: one more failure
    /// re-quarantines at once, for twice as long.
    probation: bool,
    backoff: Duration,
    quarantines: u64,
}

/// A plugin as `GET /v1/plugins` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub name: String,
    pub path: String,
    /// sha256 of the loaded `.wasm`, hex.
    pub version: String,
    /// The contract version it implements.
    pub contract: String,
    /// What the component was written in (`rust`, `python`, `javascript`,
    /// `unknown`), which picks the limits it gets by default.
    pub language: Language,
    /// The limits in force, each with where it came from.
    pub limits: LimitsStatus,
    /// When the running version was loaded (RFC 3339).
    pub loaded_at: String,
    /// Events handed to the plugin.
    pub invocations: u64,
    /// Calls of the plugin's `handle`, one per batch (more when a trapped
    /// batch is re-run event by event): `invocations / calls` is the mean
    /// batch size, which is what spreads the fixed cost of a call.
    pub calls: u64,
    /// Events the plugin failed on (error results, bad verdicts, traps).
    pub errors: u64,
    /// Calls that trapped (panics, timeouts, memory limit).
    pub traps: u64,
    /// Mean time per event in successful calls, microseconds.
    pub avg_us_per_event: f64,
    pub quarantined: bool,
    /// Milliseconds left in the current quarantine.
    pub quarantine_remaining_ms: Option<u64>,
    pub quarantines: u64,
    pub consecutive_failures: u32,
    /// Hot reloads that went live.
    pub reloads: u64,
    /// Replacement files refused since start (the old version ran on).
    pub refused_reloads: u64,
    /// Batches that failed (trap, timeout) and were re-run one event at a time.
    pub batch_retries: u64,
    /// Calls that ran out of time.
    pub timeouts: u64,
    /// The last call that ran out of time, and what to change.
    pub last_timeout: Option<String>,
    pub last_error: Option<String>,
    /// Why the last replacement file was refused (the old version runs on);
    /// cleared by the next successful reload.
    pub reload_error: Option<String>,
}

impl PluginHost {
    /// Compiles every plugin (through the cache under `cache_dir`), checks
    /// its contract, initialises it once with its config, then starts the
    /// epoch ticker and the file watchers. Blocking: compiling
    /// takes a while the first time; call it before serving, or from
    /// `spawn_blocking`.
    pub fn start(
        configs: &[PluginConfig],
        cache_dir: &Path,
    ) -> Result<Arc<PluginHost>, PluginError> {
        Self::start_with(configs, Some(cache_dir.to_owned()), true, None)
    }

    pub(crate) fn start_with(
        configs: &[PluginConfig],
        cache_dir: Option<PathBuf>,
        watch: bool,
        capture: Option<Arc<LogCapture>>,
    ) -> Result<Arc<PluginHost>, PluginError> {
        let pool = PoolSize {
            // Each plugin's instances, plus one being test-initialised by a
            // reload.
            instances: u32::try_from(configs.len() * (INSTANCES_PER_PLUGIN + 1) + 4)
                .unwrap_or(u32::MAX),
            max_memory: super::limits::pool_max_memory(configs),
        };
        let engine = PluginEngine::with_capture(pool, cache_dir, capture)?;
        let slots = on_side_runtime(|| async {
            let mut slots = HashMap::new();
            for c in configs {
                let slot = Slot::load(&engine, c).await?;
                let loaded = slot.current();
                let l = loaded.limits;
                tracing::info!(plugin = %c.name, version = %short(&loaded.compiled.version), path = %c.path.display(), language = %l.language, max_memory = %bytesize::ByteSize::b(l.max_memory), timeout = %humantime::format_duration(l.timeout), max_batch = l.max_batch, "Plugin loaded.");
                slots.insert(c.name.clone(), Arc::new(slot));
            }
            Ok::<_, PluginError>(slots)
        })
        .map_err(PluginError::Engine)??;
        let shared = Arc::new(Shared {
            engine,
            slots,
            ready: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        start_ticker(&shared)?;
        let watcher = if watch && !shared.slots.is_empty() {
            Some(Mutex::new(super::reload::watch(shared.clone())?))
        } else {
            None
        };
        shared.ready.store(true, Ordering::Release);
        Ok(Arc::new(PluginHost {
            shared,
            _watcher: watcher,
        }))
    }

    /// Runs `chain` over a batch, on the calling task. One outcome per
    /// event, same order. Each plugin sees the events as the plugins before
    /// it left them; an event that fails leaves the chain there. A route
    /// outside `known_destinations` is a failure of the plugin that set it.
    pub async fn run_chain(
        &self,
        chain: &[String],
        known_destinations: &HashSet<String>,
        events: Vec<PluginEvent>,
    ) -> Vec<ChainOutcome> {
        self.run(chain, Some(known_destinations), events).await
    }

    pub(crate) async fn run(
        &self,
        chain: &[String],
        known: Option<&HashSet<String>>,
        events: Vec<PluginEvent>,
    ) -> Vec<ChainOutcome> {
        self.run_traced(chain, known, events)
            .await
            .into_iter()
            .map(|(outcome, _)| outcome)
            .collect()
    }

    /// [`PluginHost::run_chain`], with what each plugin decided for each
    /// event (in chain order; a failed plugin is the last step), for the
    /// router to record.
    pub async fn run_chain_traced(
        &self,
        chain: &[String],
        known_destinations: &HashSet<String>,
        events: Vec<PluginEvent>,
    ) -> Vec<(ChainOutcome, Vec<Step>)> {
        self.run_traced(chain, Some(known_destinations), events)
            .await
    }

    async fn run_traced(
        &self,
        chain: &[String],
        known: Option<&HashSet<String>>,
        events: Vec<PluginEvent>,
    ) -> Vec<(ChainOutcome, Vec<Step>)> {
        if chain.is_empty() || events.is_empty() {
            return events
                .iter()
                .map(|_| (ChainOutcome::Done(Verdict::default()), Vec::new()))
                .collect();
        }
        run_on(&self.shared, chain, known, events).await
    }

    /// Every plugin's version, counters and health, sorted by name.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let mut out: Vec<PluginStatus> = self.shared.slots.values().map(|s| s.status()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// True once every plugin is loaded.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// Re-reads one plugin's file now, as the watcher does on a change.
    /// Returns true if a new version went live.
    pub fn reload(&self, name: &str) -> Result<bool, PluginError> {
        match self.shared.slots.get(name) {
            Some(slot) => slot.reload(&self.shared.engine),
            None => Err(PluginError::Unknown(name.to_owned())),
        }
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        // The ticker and the reloader poll this flag.
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// Advances the engine's epoch every tick; deadlines are counted in ticks.
fn start_ticker(shared: &Arc<Shared>) -> Result<(), PluginError> {
    // A weak reference: the ticker must not keep the host alive.
    let weak = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name("plugin-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(s) if !s.stop.load(Ordering::Acquire) => s.engine.engine.increment_epoch(),
                    _ => break,
                }
            }
        })
        .map(|_| ())
        .map_err(|e| PluginError::Engine(format!("cannot start the epoch ticker: {e}")))
}

pub(crate) fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

impl Shared {
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

impl Slot {
    /// Compiles, checks and test-initialises a plugin for the first time.
    async fn load(engine: &PluginEngine, config: &PluginConfig) -> Result<Self, PluginError> {
        let name: Arc<str> = Arc::from(config.name.as_str());
        let config_pairs: Vec<(String, String)> = config
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let compiled = engine.compile(&config.name, &config.path)?;
        let limits = Limits::resolve(config, compiled.language);
        // Initialise once now so a bad config fails the start, with the
        // plugin's own message, instead of every batch later.
        Instance::new(
            engine,
            &compiled,
            &name,
            &config_pairs,
            limits.max_memory,
            limits.timeout,
        )
        .await
        .map_err(|message| PluginError::Init {
            plugin: config.name.clone(),
            message,
        })?;
        Ok(Self {
            name,
            config: config.clone(),
            config_pairs,
            current: RwLock::new(Arc::new(Loaded {
                compiled,
                limits,
                generation: 0,
            })),
            health: Mutex::new(Health {
                backoff: QUARANTINE_FIRST,
                ..Health::default()
            }),
            stats: Stats::default(),
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(INSTANCES_PER_PLUGIN),
        })
    }

    fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the file again; swaps it in if it changed and works. A file
    /// that fails to compile or initialise is refused: the old version keeps
    /// running and the reason shows in the status and the log.
    pub(crate) fn reload(&self, engine: &PluginEngine) -> Result<bool, PluginError> {
        let path = &self.config.path;
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                let e = PluginError::Load {
                    plugin: self.config.name.clone(),
                    message: format!("cannot read {}: {e}", path.display()),
                };
                self.refuse(&e);
                return Err(e);
            }
        };
        let old = self.current();
        let hash = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        if hash == old.compiled.version {
            return Ok(false);
        }
        let result = engine
            .compile(&self.config.name, path)
            .and_then(|compiled| {
                let limits = Limits::resolve(&self.config, compiled.language);
                on_side_runtime(|| {
                    Instance::new(
                        engine,
                        &compiled,
                        &self.name,
                        &self.config_pairs,
                        limits.max_memory,
                        limits.timeout,
                    )
                })
                .map_err(PluginError::Engine)?
                .map_err(|message| PluginError::Init {
                    plugin: self.config.name.clone(),
                    message,
                })?;
                Ok((compiled, limits))
            });
        match result {
            Ok((compiled, limits)) => {
                let version = compiled.version.clone();
                let next = Arc::new(Loaded {
                    compiled,
                    limits,
                    generation: old.generation + 1,
                });
                match self.current.write() {
                    Ok(mut g) => *g = next,
                    Err(poisoned) => *poisoned.into_inner() = next,
                }
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                set(&self.stats.reload_error, None);
                // A new version deserves a fresh start.
                if let Ok(mut h) = self.health.lock() {
                    *h = Health {
                        backoff: QUARANTINE_FIRST,
                        quarantines: h.quarantines,
                        ..Health::default()
                    };
                }
                tracing::info!(plugin = %self.name, from = %short(&old.compiled.version), to = %short(&version), "Plugin reloaded.");
                Ok(true)
            }
            Err(e) => {
                self.refuse(&e);
                Err(e)
            }
        }
    }

    fn refuse(&self, e: &PluginError) {
        let message = format!("replacement refused, the previous version keeps running: {e}");
        tracing::error!(plugin = %self.name, error = %e, "Plugin replacement refused; the previous version keeps running.");
        self.stats.refused_reloads.fetch_add(1, Ordering::Relaxed);
        set(&self.stats.reload_error, Some(message.clone()));
        set(&self.stats.last_error, Some(message));
    }

    /// An idle instance of `generation`; older ones are dropped.
    fn take_idle(&self, generation: u64) -> Option<Instance> {
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.idle.lock().ok()?;
            loop {
                match idle.pop() {
                    Some((g, inst)) if g == generation => break Some(inst),
                    Some(old) => stale.push(old),
                    None => break None,
                }
            }
        };
        // Dropped outside the lock: freeing a store is not free.
        drop(stale);
        found
    }

    fn give_back(&self, generation: u64, inst: Instance) {
        if generation != self.current().generation {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((generation, inst));
        }
    }

    fn quarantined(&self) -> Option<Instant> {
        let h = self.health.lock().ok()?;
        h.quarantined_until.filter(|until| *until > Instant::now())
    }

    fn succeeded(&self) {
        if let Ok(mut h) = self.health.lock()
            && (h.consecutive_failures > 0 || h.probation)
        {
            h.consecutive_failures = 0;
            h.probation = false;
            h.backoff = QUARANTINE_FIRST;
        }
    }

    /// Counts a failed call; quarantines the plugin when it keeps failing.
    fn failed(&self, error: &str) {
        set(&self.stats.last_error, Some(error.to_owned()));
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        h.consecutive_failures += 1;
        let now = Instant::now();
        let expired = h.quarantined_until.is_some_and(|u| u <= now);
        if expired {
            h.quarantined_until = None;
            h.probation = true;
        }
        if h.probation || h.consecutive_failures >= QUARANTINE_AFTER {
            let backoff = h.backoff;
            h.quarantined_until = Some(now + backoff);
            h.quarantines += 1;
            h.probation = true;
            h.consecutive_failures = 0;
            h.backoff = (backoff * 2).min(QUARANTINE_MAX);
            tracing::warn!(plugin = %self.name, seconds = backoff.as_secs_f64(), error, "Plugin quarantined after repeated failures.");
        }
    }

    /// Counts a call cut by its timeout, and says what to change: a batch
    /// that needs more time than it has fails every time and is re-run one
    /// event at a time, which is slow and silent unless someone says so.
    fn timed_out(&self, events: usize, limits: &Limits) {
        self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        let timeout = humantime::format_duration(limits.timeout);
        let advice = if events > 1 {
            format!(
                "a call of {events} events ran out of its timeout of {timeout}: raise `timeout` \
                 or lower `max_batch` (now {}) in the plugin's [[plugins]] entry",
                limits.max_batch
            )
        } else {
            format!(
                "a call of one event ran out of its timeout of {timeout}: raise `timeout` \
                 in the plugin's [[plugins]] entry, or look for a loop"
            )
        };
        tracing::warn!(plugin = %self.name, events, timeout = %timeout, max_batch = limits.max_batch, "Plugin call timed out; raise the plugin's timeout or lower its max_batch.");
        set(&self.stats.last_timeout, Some(advice));
    }

    fn status(&self) -> PluginStatus {
        let loaded = self.current();
        let s = &self.stats;
        let timed = s.timed_events.load(Ordering::Relaxed);
        let (quarantined_until, quarantines, consecutive) = match self.health.lock() {
            Ok(h) => (h.quarantined_until, h.quarantines, h.consecutive_failures),
            Err(_) => (None, 0, 0),
        };
        let remaining = quarantined_until.and_then(|u| u.checked_duration_since(Instant::now()));
        PluginStatus {
            name: self.config.name.clone(),
            path: self.config.path.display().to_string(),
            version: loaded.compiled.version.clone(),
            contract: loaded.compiled.contract.version().to_owned(),
            language: loaded.limits.language,
            limits: loaded.limits.status(),
            loaded_at: humantime::format_rfc3339_millis(loaded.compiled.loaded_at).to_string(),
            invocations: s.invocations.load(Ordering::Relaxed),
            calls: s.calls.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            traps: s.traps.load(Ordering::Relaxed),
            avg_us_per_event: if timed == 0 {
                0.0
            } else {
                s.busy_nanos.load(Ordering::Relaxed) as f64 / timed as f64 / 1000.0
            },
            quarantined: remaining.is_some(),
            quarantine_remaining_ms: remaining
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            quarantines,
            consecutive_failures: consecutive,
            reloads: s.reloads.load(Ordering::Relaxed),
            refused_reloads: s.refused_reloads.load(Ordering::Relaxed),
            batch_retries: s.batch_retries.load(Ordering::Relaxed),
            timeouts: s.timeouts.load(Ordering::Relaxed),
            last_timeout: s.last_timeout.lock().ok().and_then(|g| g.clone()),
            last_error: s.last_error.lock().ok().and_then(|g| g.clone()),
            reload_error: s.reload_error.lock().ok().and_then(|g| g.clone()),
        }
    }
}

fn set(cell: &Mutex<Option<String>>, value: Option<String>) {
    if let Ok(mut g) = cell.lock() {
        *g = value;
    }
}

/// Runs `f`'s future to completion on a thread of its own, with a
/// current-thread runtime: loading and reloading instantiate plugins (async)
/// but are called from sync code, sometimes inside a runtime, where
/// blocking on another one would panic.
fn on_side_runtime<F, Fut>(f: F) -> Result<Fut::Output, String>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future,
    Fut::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(f()))
                    .map_err(|e| format!("cannot start a runtime to load plugins: {e}"))
            })
            .join()
            .unwrap_or_else(|_| Err("the plugin loading thread panicked".to_owned()))
    })
}

/// What the plugins so far changed on one event, so the merged verdict can
/// take the final values from the event itself at the end (no copies).
#[derive(Default, Clone, Copy)]
struct Changed {
    payload: bool,
    headers: bool,
    content_type: bool,
    attributes: bool,
}

async fn run_on(
    shared: &Shared,
    chain: &[String],
    known: Option<&HashSet<String>>,
    events: Vec<PluginEvent>,
) -> Vec<(ChainOutcome, Vec<Step>)> {
    // Each plugin's changes are applied to the events in place for the
    // next one; each call lays them out afresh as the contract's batch.
    let mut events = events;
    let n = events.len();
    let mut merged: Vec<Verdict> = vec![Verdict::default(); n];
    let mut changed: Vec<Changed> = vec![Changed::default(); n];
    let mut failed: Vec<Option<ChainOutcome>> = vec![None; n];
    let mut steps: Vec<Vec<Step>> = vec![Vec::new(); n];
    let mut rewritten_by: Vec<Option<String>> = vec![None; n];
    for name in chain {
        let idx: Vec<usize> = (0..n).filter(|i| failed[*i].is_none()).collect();
        if idx.is_empty() {
            break;
        }
        let Some(slot) = shared.slots.get(name).cloned() else {
            for i in idx {
                let error = format!("plugin {name:?} is not configured");
                steps[i].push(Step::failed(name, 0, &error));
                failed[i] = Some(ChainOutcome::Failed {
                    plugin: name.clone(),
                    error,
                    on_error: OnError::DeadLetter,
                });
            }
            continue;
        };
        let started = Instant::now();
        let results = call(shared, &slot, &events, &idx).await;
        // The call's time shared out over its events: what one event cost.
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
            / idx.len().max(1) as u64;
        for (i, result) in idx.into_iter().zip(results) {
            let rewrites =
                matches!(&result, Ok(v) if v.payload.is_some() || v.content_type.is_some());
            let applied = result.and_then(|v| {
                let step = Step {
                    plugin: name.clone(),
                    routes: v.routes.clone(),
                    priority: v.priority,
                    micros,
                    error: None,
                };
                apply(v, &mut events[i], &mut merged[i], &mut changed[i], known)?;
                steps[i].push(step);
                Ok(())
            });
            if let Err(error) = applied {
                steps[i].push(Step::failed(name, micros, &error));
                slot.stats.errors.fetch_add(1, Ordering::Relaxed);
                set(&slot.stats.last_error, Some(error.clone()));
                failed[i] = Some(ChainOutcome::Failed {
                    plugin: name.clone(),
                    error,
                    on_error: slot.config.on_error,
                });
            } else if rewrites {
                rewritten_by[i] = Some(name.clone());
            }
        }
    }
    events
        .into_iter()
        .zip(merged)
        .zip(changed)
        .zip(failed)
        .zip(steps)
        .zip(rewritten_by)
        .map(|(((((e, mut m), c), failed), steps), by)| {
            if let Some(outcome) = failed {
                return (outcome, steps);
            }
            m.rewritten_by = by;
            if c.payload {
                m.payload = Some(e.payload);
            }
            if c.headers {
                m.headers = Some(e.headers);
            }
            if c.content_type {
                m.content_type = Some(e.content_type);
            }
            if c.attributes {
                m.attributes = Some(e.attributes);
            }
            (ChainOutcome::Done(m), steps)
        })
        .collect()
}

/// One plugin over the router's batch, in calls of at most its
/// `max_batch` events: one result per event.
async fn call(
    shared: &Shared,
    slot: &Arc<Slot>,
    events: &[PluginEvent],
    idx: &[usize],
) -> Vec<Result<Verdict, String>> {
    let max_batch = slot.current().limits.max_batch.max(1);
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(max_batch) {
        out.extend(call_batch(shared, slot, events, chunk).await);
    }
    out
}

/// One call over `idx`. A trap fails the batch; its events are then re-run
/// one at a time so only the event that traps again fails.
async fn call_batch(
    shared: &Shared,
    slot: &Arc<Slot>,
    events: &[PluginEvent],
    idx: &[usize],
) -> Vec<Result<Verdict, String>> {
    let n = idx.len();
    if let Some(until) = slot.quarantined() {
        return quarantined(slot, until, n);
    }
    slot.stats
        .invocations
        .fetch_add(n as u64, Ordering::Relaxed);
    let batch: Vec<&PluginEvent> = idx.iter().map(|i| &events[*i]).collect();
    match invoke(shared, slot, &batch).await {
        Ok(results) => results,
        Err(error) if n == 1 => vec![Err(error)],
        Err(error) => {
            slot.stats.batch_retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(plugin = %slot.name, events = n, %error, "Plugin batch failed; retrying its events one by one.");
            let mut out = Vec::with_capacity(n);
            for i in idx {
                if let Some(until) = slot.quarantined() {
                    out.push(quarantined(slot, until, 1).remove(0));
                    continue;
                }
                out.push(match invoke(shared, slot, &[&events[*i]]).await {
                    Ok(mut r) => r.pop().unwrap_or_else(|| Err("no verdict".to_owned())),
                    Err(error) => Err(error),
                });
            }
            out
        }
    }
}

/// One call, on an idle instance of the plugin's current version or a new
/// one. `Err` is a failed call (trap, timeout, failed instantiation): the
/// instance is dropped, never reused.
async fn invoke(
    shared: &Shared,
    slot: &Arc<Slot>,
    batch: &[&PluginEvent],
) -> Result<Vec<Result<Verdict, String>>, String> {
    let n = batch.len();
    // Never closed; waiting here means every instance is in a call.
    let _permit = slot
        .permits
        .acquire()
        .await
        .map_err(|_| "the plugin host has stopped".to_owned())?;
    let loaded = slot.current();
    let limits = loaded.limits;
    let mut inst = match slot.take_idle(loaded.generation) {
        Some(inst) => inst,
        None => match Instance::new(
            &shared.engine,
            &loaded.compiled,
            &slot.name,
            &slot.config_pairs,
            limits.max_memory,
            limits.timeout,
        )
        .await
        {
            Ok(inst) => inst,
            Err(e) => {
                let error = format!("failed to initialise: {e}");
                slot.failed(&error);
                return Err(error);
            }
        },
    };
    slot.stats.calls.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let result = inst.handle(batch, limits.timeout, limits.max_memory).await;
    match result {
        Ok(Ok(results)) => {
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            slot.stats.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
            slot.stats
                .timed_events
                .fetch_add(n as u64, Ordering::Relaxed);
            slot.succeeded();
            slot.give_back(loaded.generation, inst);
            Ok(results)
        }
        // An answer that breaks the contract (wrong count, a verdict buffer
        // that cannot be read): the call failed, but the instance is sound.
        Ok(Err(error)) => {
            slot.failed(&error);
            slot.give_back(loaded.generation, inst);
            Err(error)
        }
        Err(error) => {
            // The store may be half-way through anything: never reuse it.
            drop(inst);
            slot.stats.traps.fetch_add(1, Ordering::Relaxed);
            if error.starts_with(TIMED_OUT) {
                slot.timed_out(n, &limits);
            } else {
                tracing::warn!(plugin = %slot.name, %error, "Plugin trapped; its instance is replaced.");
            }
            slot.failed(&error);
            Err(error)
        }
    }
}

fn quarantined(slot: &Slot, until: Instant, n: usize) -> Vec<Result<Verdict, String>> {
    let left = until.saturating_duration_since(Instant::now());
    let last = slot
        .stats
        .last_error
        .lock()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_default();
    let error = format!(
        "quarantined for another {} after repeated failures (last: {last})",
        humantime::format_duration(Duration::from_millis(
            u64::try_from(left.as_millis()).unwrap_or(0)
        ))
    );
    (0..n).map(|_| Err(error.clone())).collect()
}

/// Checks a plugin's verdict, then applies it to the event (for the next
/// plugin) and to the merged verdict (for the router). Payload, headers,
/// content type and attributes live on the event until the chain ends;
/// `changed` says which to hand back.
fn apply(
    v: Verdict,
    e: &mut PluginEvent,
    m: &mut Verdict,
    changed: &mut Changed,
    known: Option<&HashSet<String>>,
) -> Result<(), String> {
    if let (Some(routes), Some(known)) = (&v.routes, known)
        && let Some(bad) = routes.iter().find(|r| !known.contains(r.as_str()))
    {
        return Err(format!("routed the event to unknown destination {bad:?}"));
    }
    if let Some(p) = v.priority.filter(|p| *p > 9) {
        return Err(format!("set priority {p}; priorities are 0-9"));
    }
    if let Some(routes) = v.routes {
        m.routes = Some(routes);
    }
    if let Some(p) = v.priority {
        m.priority = Some(p);
    }
    if let Some(payload) = v.payload {
        e.payload = payload;
        changed.payload = true;
    }
    if let Some(headers) = v.headers {
        e.headers = headers;
        changed.headers = true;
    }
    if let Some(ct) = v.content_type {
        e.content_type = ct;
        changed.content_type = true;
    }
    if let Some(d) = v.delay_ms {
        m.delay_ms = Some(d);
    }
    if let Some(k) = v.ordering_key {
        m.ordering_key = Some(k);
    }
    if let Some(attrs) = v.attributes {
        for (k, val) in attrs {
            match e.attributes.iter_mut().find(|(ek, _)| *ek == k) {
                Some(slot) => slot.1 = val,
                None => e.attributes.push((k, val)),
            }
        }
        changed.attributes = true;
    }
    Ok(())
}
