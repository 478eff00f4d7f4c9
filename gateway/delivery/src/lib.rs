//! Delivery: one dispatcher per push destination takes due entries from the
//! store's queue, sends them (bounded concurrency, optional rate limit), and
//! settles each attempt in the store: delivered, retried later, or
//! dead-lettered. Pull destinations lease entries to consumers instead.
//! Delivery keeps no queue of its own: order, leases and FIFO keys are the
//! store's ([`switchyard_store::Queues`]).
//!
//! - [`config`]: `[[destinations]]`, each validating itself.
//! - [`retry`]: the one policy that decides what follows an attempt.
//! - [`breaker`]: the circuit breaker that stops sending to a failing
//!   endpoint and probes it; its state changes are [`OperatorEvent`]s.
//! - [`push`]: the HTTP push client; [`guard`]: which addresses a push may
//!   connect to (SSRF guard); [`tls`]: a destination's CA bundle and
//!   client certificate. Signing is `switchyard-signatures`.
//! - [`format`]: JSON/Avro conversion at delivery, through the registry.
//! - [`pull`]: leases for pull consumers (receive, ack, nack, extend).
//!
//! Settling is written before the queue moves on, so what the store says is
//! what a restart will resume from; an attempt whose settle write was lost
//! in a crash is simply made again (at-least-once).
//!
//! [`Delivery::new`] builds everything and opens the queues but sends
//! nothing; [`Delivery::start`] starts the dispatchers, once everything
//! delivery needs is up.

#![forbid(unsafe_code)]

pub mod breaker;
pub mod config;
pub mod format;
pub mod guard;
pub mod pull;
pub mod push;
pub mod retry;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use switchyard_core::{EventId, now_ms};
use switchyard_registry::Registry;
use switchyard_store::{
    AttemptRecord, DlqOwner, Hold, QueueEntry, Settle, Settlement, SharedStore, StoreError,
};
use switchyard_telemetry::{AttemptOutcome, AttemptReport, Telemetry, TraceSpan};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{AddressRules, DestinationConfig, DestinationKind, OrderingKey};
use retry::{Decision, RetryPolicy};

/// How long an entry waits after the store failed to record its attempt.
const STORE_RETRY_MS: u64 = 5000;

/// Entries a push dispatcher takes at most at once (bounded by its free
/// concurrency slots).
const TAKE_BATCH: usize = 64;

/// Failures of delivery set-up and of operator actions on destinations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    #[error("destination {name:?}: {message}")]
    Setup { name: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a destination sends.
enum Sender {
    Http(Box<push::HttpPush>),
    Log,
    /// Nothing is sent: consumers receive (see `pull`).
    Pull,
}

/// One configured destination.
pub struct Destination {
    pub config: DestinationConfig,
    sender: Sender,
    policy: RetryPolicy,
    /// The store's doorbell for this queue: rung when entries arrive or a
    /// key moves on; delivery rings it too when a pause ends or shutdown
    /// starts.
    wake: Arc<Notify>,
    paused: AtomicBool,
    /// Pull counters, for stats and metrics. Shared with the destination
    /// that replaces this one at a reload, so the counts run on.
    counters: Arc<PullCounters>,
    /// Stops this destination's dispatcher (or lease keeper) when a reload
    /// replaces or removes it; attempts already in flight finish with the
    /// config they started with.
    stop: CancellationToken,
    /// The circuit breaker (`circuit_breaker`), kept across reloads that
    /// leave the destination's breaker config as it was.
    breaker: Option<Arc<breaker::Breaker>>,
}

/// How many operator events [`Delivery::recent_operator_events`] keeps.
const RECENT_OPERATOR_EVENTS: usize = 50;

/// A state change an operator should hear about: logged, counted
/// (`switchyard_operator_events_total`), and handed to the operator sink
/// (`[operator] destination`).
#[derive(Debug, Clone, Serialize)]
pub struct OperatorEvent {
    /// `circuit_opened`, `circuit_closed`, `destination_paused`,
    /// `dlq_growing`, `disk_low`, `disk_recovered` or `plugin_quarantined`.
    pub kind: &'static str,
    pub destination: String,
    /// RFC 3339.
    pub at: String,
    pub reason: String,
}

/// What pull consumers did with a destination since start.
#[derive(Debug, Default)]
struct PullCounters {
    receives: AtomicU64,
    acks: AtomicU64,
    nacks: AtomicU64,
    lease_expiries: AtomicU64,
}

/// What `GET /v1/destinations` shows for one destination.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationStats {
    pub name: String,
    pub kind: DestinationKind,
    pub paused: bool,
    pub queue_depth: u64,
    /// `queue_depth` by priority: index 0 to 9 is the priority.
    pub depth_by_priority: [u64; 10],
    pub in_flight: u64,
    pub dlq_depth: u64,
    pub oldest_pending_age_seconds: f64,
    /// Pending entries not yet due (backing off, delayed by a nack).
    pub delayed: u64,
    /// Ordering keys whose head is in flight or backing off (FIFO destinations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_keys: Option<u64>,
    /// Pull destinations: receives, acks, nacks and lease expiries since start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullStats>,
    /// `closed`, `open` or `half-open`, for destinations with a breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<breaker::State>,
    /// The destination left the config at a reload: its queue is kept, and
    /// delivered again if it returns, but nothing is sent meanwhile.
    pub removed: bool,
}

/// The pull counters of one destination.
#[derive(Debug, Clone, Serialize)]
pub struct PullStats {
    pub receives: u64,
    pub acks: u64,
    pub nacks: u64,
    pub lease_expiries: u64,
}

impl Destination {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }
}

/// Every destination, and the tasks that deliver to them.
pub struct Delivery {
    store: SharedStore,
    /// The current destinations. A reload swaps in a new map; a caller
    /// holding an `Arc<Destination>` keeps the one it started with.
    destinations: RwLock<Arc<BTreeMap<String, Arc<Destination>>>>,
    /// Destinations a reload removed whose queues are still open in the
    /// store (shown by `stats` with `removed: true`).
    removed: Mutex<BTreeMap<String, DestinationKind>>,
    /// Whether `start` ran: destinations added by a reload start at once.
    started: AtomicBool,
    /// Where operator events go besides the log and the metric.
    operator: Mutex<Option<tokio::sync::mpsc::UnboundedSender<OperatorEvent>>>,
    /// The last operator events, for `switchyard status`: the log has them
    /// all, but an operator asking "what happened?" wants them here.
    recent: Mutex<std::collections::VecDeque<OperatorEvent>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// Spans of each attempt, delivery metrics.
    telemetry: Arc<Telemetry>,
    /// For destinations with `format = "json" | "avro"`.
    registry: Registry,
}

impl Delivery {
    /// Builds the destinations and opens their queues in the store (which
    /// restores entries, leases and held FIFO keys). Sends nothing: see
    /// [`Delivery::start`].
    pub async fn new(
        configs: &[DestinationConfig],
        rules: &AddressRules,
        store: SharedStore,
        registry: Registry,
        telemetry: Arc<Telemetry>,
    ) -> Result<Arc<Self>, DeliveryError> {
        let shutdown = CancellationToken::new();
        let mut destinations = BTreeMap::new();
        for d in configs {
            store.open_queue(&d.name, d.queue_policy()).await?;
            let built = build(d, rules, &store, &shutdown, None).await?;
            destinations.insert(d.name.clone(), Arc::new(built));
        }
        let orphans = store.orphaned_queues().await?;
        if !orphans.is_empty() {
            // Restoring the destination resumes them.
            tracing::warn!(destinations = ?orphans,
                "Queue entries for destinations no longer in the config are kept but not delivered.");
        }
        Ok(Arc::new(Self {
            store,
            destinations: RwLock::new(Arc::new(destinations)),
            removed: Mutex::new(BTreeMap::new()),
            started: AtomicBool::new(false),
            operator: Mutex::new(None),
            recent: Mutex::new(std::collections::VecDeque::new()),
            shutdown,
            tracker: TaskTracker::new(),
            telemetry,
            registry,
        }))
    }

    /// Starts a dispatcher for each push destination and the lease keeper of
    /// each pull destination: from here on, events are delivered.
    pub fn start(self: &Arc<Self>) {
        self.started.store(true, Ordering::Release);
        for d in self.current().values() {
            self.spawn_worker(d.clone());
        }
        if self.store.shared() {
            let dl = self.clone();
            self.tracker.spawn(async move { dl.follow_paused().await });
        }
    }

    /// On a shared store, another gateway's pause or resume reaches this
    /// one's flags (what `GET /v1/destinations` shows and the dispatcher
    /// obeys) within a second. The store itself already holds the work of
    /// a paused destination back on every gateway.
    async fn follow_paused(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for d in self.current().values() {
                match self.store.is_paused(d.name()).await {
                    Ok(p) if p != d.is_paused() => {
                        d.paused.store(p, Ordering::Release);
                        d.wake.notify_one();
                        tracing::info!(destination = %d.name(), paused = p,
                            "Destination pause state changed on another gateway.");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(destination = %d.name(), error = %e,
                        "Cannot read the paused flag."),
                }
            }
        }
    }

    fn spawn_worker(self: &Arc<Self>, d: Arc<Destination>) {
        let dl = self.clone();
        if d.config.kind == DestinationKind::Pull {
            tokio::spawn(async move { dl.expire_leases(d).await });
        } else {
            tokio::spawn(async move { dl.dispatch(d).await });
        }
    }

    /// Operator events are sent here from now on (see [`OperatorEvent`]).
    pub fn set_operator_sink(&self, tx: tokio::sync::mpsc::UnboundedSender<OperatorEvent>) {
        *self.operator.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    }

    /// Raises an operator event: logged, counted, kept among the recent
    /// ones (`GET /v1/operator/events`, `switchyard status`) and sent to
    /// the operator sink. `destination` is empty for gateway-wide events.
    pub fn operator_event(&self, kind: &'static str, destination: &str, reason: String) {
        tracing::warn!(kind, destination = %destination, reason = %reason, "Operator event.");
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT_OPERATOR_EVENTS {
                recent.pop_front();
            }
            recent.push_back(OperatorEvent {
                kind,
                destination: destination.to_owned(),
                at: switchyard_core::event::rfc3339(now_ms()),
                reason: reason.clone(),
            });
        }
        self.telemetry
            .metrics
            .operator_events
            .get_or_create(&switchyard_telemetry::metrics::OperatorLabel {
                kind: kind.to_owned(),
                destination: destination.to_owned(),
            })
            .inc();
        if let Some(tx) = &*self.operator.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = tx.send(OperatorEvent {
                kind,
                destination: destination.to_owned(),
                at: switchyard_core::event::rfc3339(now_ms()),
                reason,
            });
        }
    }

    /// The last operator events, newest first.
    pub fn recent_operator_events(&self) -> Vec<OperatorEvent> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().cloned().collect()
    }

    /// The current destinations, as one snapshot.
    fn current(&self) -> Arc<BTreeMap<String, Arc<Destination>>> {
        self.destinations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn destination(&self, name: &str) -> Option<Arc<Destination>> {
        self.current().get(name).cloned()
    }

    pub fn destinations(&self) -> Vec<Arc<Destination>> {
        self.current().values().cloned().collect()
    }

    /// Builds the destinations of a new config without touching the running
    /// ones: every failure (a TLS file, a URL) comes out here, before
    /// anything changes. Opens queues for names new to this process.
    pub async fn prepare(
        &self,
        configs: &[DestinationConfig],
        rules: &AddressRules,
    ) -> Result<Prepared, DeliveryError> {
        let current = self.current();
        let removed = self
            .removed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut next = BTreeMap::new();
        let mut restart_needed = Vec::new();
        for c in configs {
            let old = current.get(&c.name);
            if let Some(old) = old
                && !same_policy(&old.config.queue_policy(), &c.queue_policy())
            {
                // The store's window is laid out by the policy, with entries
                // in flight in it: changing it under them is a restart's job.
                restart_needed.push(format!("destinations.{}.ordering/priority_aging", c.name));
                next.insert(c.name.clone(), old.clone());
                continue;
            }
            if old.is_none() && !removed.contains_key(&c.name) {
                // New to this process (or orphaned since start): restore its
                // queue from the store. A queue already open is never opened
                // again, which would lose its entries in flight.
                self.store.open_queue(&c.name, c.queue_policy()).await?;
            }
            let mut built = build(
                c,
                rules,
                &self.store,
                &self.shutdown,
                old.map(|o| o.counters.clone()),
            )
            .await?;
            // An unchanged breaker keeps its state: a reload must not close
            // a circuit on an endpoint that is still down.
            if let Some(o) = old
                && format!("{:?}", o.config.circuit_breaker) == format!("{:?}", c.circuit_breaker)
            {
                built.breaker = o.breaker.clone();
            }
            next.insert(c.name.clone(), Arc::new(built));
        }
        Ok(Prepared {
            next,
            restart_needed,
        })
    }

    /// Swaps in what `prepare` built: replaced and removed destinations'
    /// dispatchers stop (attempts in flight finish), new ones start.
    /// Answers the names added and removed.
    pub fn apply(self: &Arc<Self>, prepared: Prepared) -> (Vec<String>, Vec<String>) {
        let Prepared { next, .. } = prepared;
        let next = Arc::new(next);
        let old = {
            let mut w = self.destinations.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *w, next.clone())
        };
        let mut added = Vec::new();
        let mut gone = Vec::new();
        {
            let mut removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
            for (name, d) in old.iter() {
                let kept = next.get(name).is_some_and(|n| Arc::ptr_eq(n, d));
                if !kept {
                    d.stop.cancel();
                    // The old dispatcher may be the one waiting on the
                    // doorbell: ring it so the new one is not left asleep.
                    d.wake.notify_one();
                }
                if !next.contains_key(name) {
                    removed.insert(name.clone(), d.config.kind);
                    gone.push(name.clone());
                }
            }
            for name in next.keys() {
                removed.remove(name);
                if !old.contains_key(name) {
                    added.push(name.clone());
                }
            }
        }
        if self.started.load(Ordering::Acquire) {
            for (name, d) in next.iter() {
                if !old.get(name).is_some_and(|o| Arc::ptr_eq(o, d)) {
                    self.spawn_worker(d.clone());
                }
            }
        }
        (added, gone)
    }

    /// Entries waiting across all destinations.
    pub fn backlog(&self) -> u64 {
        self.store.backlog()
    }

    /// The levels of every destination, as the store knows them without a
    /// round trip (what metrics and the time series sample).
    pub async fn stats(&self) -> Result<Vec<DestinationStats>, StoreError> {
        self.stats_read(false).await
    }

    /// The levels of every destination read now (what the admin API
    /// answers): on a clustered store, one read of each queue.
    pub async fn stats_now(&self) -> Result<Vec<DestinationStats>, StoreError> {
        self.stats_read(true).await
    }

    async fn stats_read(&self, fresh: bool) -> Result<Vec<DestinationStats>, StoreError> {
        let now = now_ms();
        let current = self.current();
        let mut out = Vec::with_capacity(current.len());
        for d in current.values() {
            let q = if fresh {
                self.store.queue_stats_now(d.name(), now).await?
            } else {
                self.store.queue_stats(d.name(), now)?
            };
            let c = &d.counters;
            let pull = (d.config.kind == DestinationKind::Pull).then(|| PullStats {
                receives: c.receives.load(Ordering::Relaxed),
                acks: c.acks.load(Ordering::Relaxed),
                nacks: c.nacks.load(Ordering::Relaxed),
                lease_expiries: c.lease_expiries.load(Ordering::Relaxed),
            });
            out.push(DestinationStats {
                name: d.config.name.clone(),
                kind: d.config.kind,
                paused: d.is_paused(),
                queue_depth: q.depth,
                depth_by_priority: q.depth_by_priority,
                in_flight: q.in_flight,
                dlq_depth: self
                    .store
                    .dlq_depth(DlqOwner::Destination(d.name()))
                    .await?,
                oldest_pending_age_seconds: q
                    .oldest_enqueued_ms
                    .map(|t| now.saturating_sub(t) as f64 / 1000.0)
                    .unwrap_or(0.0),
                delayed: q.delayed,
                blocked_keys: d.config.ordering.is_some().then_some(q.blocked_keys),
                pull,
                circuit: d.breaker.as_ref().map(|b| b.state()),
                removed: false,
            });
        }
        let removed = self
            .removed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, kind) in removed {
            // Still open in the store: its levels are exact.
            let Ok(q) = self.store.queue_stats(&name, now) else {
                continue;
            };
            out.push(DestinationStats {
                dlq_depth: self.store.dlq_depth(DlqOwner::Destination(&name)).await?,
                name,
                kind,
                paused: false,
                queue_depth: q.depth,
                depth_by_priority: q.depth_by_priority,
                in_flight: q.in_flight,
                oldest_pending_age_seconds: q
                    .oldest_enqueued_ms
                    .map(|t| now.saturating_sub(t) as f64 / 1000.0)
                    .unwrap_or(0.0),
                delayed: q.delayed,
                blocked_keys: None,
                pull: None,
                circuit: None,
                removed: true,
            });
        }
        Ok(out)
    }

    /// Holds or releases delivery to a destination; persisted across restarts.
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<bool, StoreError> {
        let Some(d) = self.destination(name) else {
            return Ok(false);
        };
        self.store.set_paused(name, paused).await?;
        d.paused.store(paused, Ordering::Release);
        d.wake.notify_one();
        tracing::info!(destination = %name, paused, "Destination pause state changed.");
        Ok(true)
    }

    /// Queues events again for a destination with a fresh attempt budget,
    /// removing them from its DLQ in the same write (`from_dlq`). Events
    /// that already have an entry pending or in flight there are skipped
    /// (and not counted).
    pub async fn requeue(
        &self,
        dest: &str,
        events: &[(EventId, u8, Option<String>)],
        from_dlq: bool,
    ) -> Result<usize, StoreError> {
        if self.destination(dest).is_none() {
            return Ok(0);
        }
        let now = now_ms();
        let mut entries = Vec::with_capacity(events.len());
        for (id, priority, ordering_key) in events {
            if self.store.contains(dest, *id).await {
                continue;
            }
            let history_base = self
                .store
                .delivery_state(*id, dest)
                .await?
                .map(|s| s.attempts)
                .unwrap_or(0);
            entries.push(QueueEntry {
                event_id: *id,
                destination: dest.to_owned(),
                priority: *priority,
                due_ms: now,
                attempt: 0,
                history_base,
                delay_ms: 0,
                enqueued_at_ms: now,
                ordering_key: ordering_key.clone(),
                lease: None,
            });
        }
        self.store.requeue(entries, from_dlq).await
    }

    /// Stops taking new entries and waits up to `grace` for attempts in flight.
    pub async fn drain(&self, grace: Duration) {
        self.shutdown.cancel();
        for d in self.current().values() {
            d.wake.notify_one();
        }
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "Deliveries still in flight after the shutdown grace period; they will be retried after restart."
            );
        }
    }

    /// The dispatcher of one destination.
    async fn dispatch(self: Arc<Self>, d: Arc<Destination>) {
        let permits = Arc::new(Semaphore::new(d.config.concurrency));
        let mut pace = d.config.rate_limit.map(|r| {
            let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / r.per_second));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        loop {
            let first = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = d.stop.cancelled() => return,
            };
            // As many entries as there are free slots, in one take: on a
            // clustered store each take is a round trip, and one at a time
            // would bound a destination to one delivery per round trip.
            let mut slots = vec![first];
            while slots.len() < TAKE_BATCH
                && let Ok(p) = permits.clone().try_acquire_owned()
            {
                slots.push(p);
            }
            let Some(entries) = self.next_entries(&d, slots.len()).await else {
                return;
            };
            for entry in entries {
                let Some(permit) = slots.pop() else { break };
                if let Some(pace) = pace.as_mut() {
                    pace.tick().await;
                }
                let (dl, dest) = (self.clone(), d.clone());
                self.tracker
                    .spawn(async move { dl.attempt(dest, entry, permit).await });
            }
            // Slots not used go back here.
        }
    }

    /// Waits for due entries (up to `max`), or `None` at shutdown.
    async fn next_entries(&self, d: &Destination, max: usize) -> Option<Vec<QueueEntry>> {
        loop {
            if d.stop.is_cancelled() {
                return None;
            }
            let admit = d
                .breaker
                .as_ref()
                .map_or(breaker::Admit::Go, |b| b.admit(now_ms()));
            let next_due = if d.is_paused() {
                None
            } else if let breaker::Admit::Wait(until) = admit {
                // Open: nothing is taken, so no entry's attempt count moves.
                Some(until)
            } else {
                // A half-open circuit lets one probe through.
                let max = if admit == breaker::Admit::Probe {
                    1
                } else {
                    max
                };
                match self.store.take(d.name(), max, Hold::InFlight).await {
                    Ok(taken) if !taken.is_empty() => return Some(taken),
                    Ok(_) => {
                        if admit == breaker::Admit::Probe
                            && let Some(b) = &d.breaker
                        {
                            b.no_probe();
                        }
                        self.store.next_due(d.name())
                    }
                    Err(e) => {
                        tracing::error!(destination = %d.name(), error = %e,
                            "Cannot take from the queue; trying again in 1s.");
                        Some(now_ms() + 1000)
                    }
                }
            };
            let sleep = match next_due {
                Some(due) => Duration::from_millis(due.saturating_sub(now_ms()).max(1)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = d.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = d.stop.cancelled() => return None,
            }
        }
    }

    /// Makes one attempt and settles it.
    async fn attempt(&self, d: Arc<Destination>, entry: QueueEntry, _permit: OwnedSemaphorePermit) {
        let id = entry.event_id;
        if let Err(e) = self.try_attempt(&d, entry.clone()).await {
            tracing::error!(event_id = %id, destination = %d.config.name, error = %e,
                "Could not record a delivery attempt; the event stays queued and will be retried after restart.");
            // Give it back due in a few seconds: sooner would spin on a
            // failing disk. If even that write fails, the entry stays held
            // until a restart, which finds it due.
            let (due, delay) = (now_ms() + STORE_RETRY_MS, STORE_RETRY_MS);
            if let Err(e) = self.store.release(&[entry], due, delay).await {
                tracing::error!(event_id = %id, error = %e, "Cannot give the entry back to its queue.");
            }
        }
    }

    /// Dead-letters `entry` at once: no retry can fix `reason`.
    async fn dead_letter_now(&self, entry: QueueEntry, reason: String) -> Result<(), StoreError> {
        let attempt = AttemptRecord {
            attempt: entry.history_base + entry.attempt + 1,
            at_ms: now_ms(),
            status: None,
            error: Some(reason.clone()),
            latency_ms: 0,
            response_excerpt: None,
            delay_before_ms: entry.delay_ms,
        };
        self.store
            .settle(vec![Settlement {
                entry,
                attempt,
                outcome: Settle::DeadLetter { error: reason },
            }])
            .await
    }

    async fn try_attempt(&self, d: &Destination, entry: QueueEntry) -> Result<(), StoreError> {
        let id = entry.event_id;
        let name = &d.config.name;
        // Both reads at once: on a clustered store each is a round trip.
        let (event, transformed) = tokio::join!(self.store.event(id), self.store.transformed(id));
        let Some(event) = event? else {
            // Retention removed the event (or the data dir was edited): there
            // is nothing left to deliver. Settle so the entry goes away.
            tracing::warn!(event_id = %id, destination = %name, "Queued event no longer exists; dropping its entry.");
            return self
                .dead_letter_now(entry, "event no longer stored".into())
                .await;
        };
        let transformed = transformed?;
        let (content_type, headers, body) = match &transformed {
            Some(t) => (
                t.content_type.as_str(),
                t.headers.as_slice(),
                t.payload.clone(),
            ),
            None => (
                event.meta.content_type.as_str(),
                event.meta.headers.as_slice(),
                event.payload.clone(),
            ),
        };
        let converted = match format::convert(
            &self.registry,
            d.config.format,
            &event.meta.attributes,
            content_type,
            &body,
        ) {
            Ok(c) => c,
            Err(reason) => {
                // No retry can fix a payload that can't be converted.
                tracing::warn!(event_id = %id, destination = %name, reason = %reason,
                    "Delivery dead-lettered.");
                return self.dead_letter_now(entry, reason).await;
            }
        };
        let (content_type, body) = match &converted {
            Some((ct, b)) => (ct.as_str(), b.clone()),
            None => (content_type, body),
        };
        if let Err(reason) = egress_check(
            &self.registry,
            &self.telemetry,
            d,
            &event.topic,
            transformed.as_ref().map(|t| t.plugin.as_deref()),
            content_type,
            &body,
        ) {
            tracing::warn!(event_id = %id, destination = %name, reason = %reason,
                "Delivery dead-lettered: the payload breaks the destination's schema.");
            return self.dead_letter_now(entry, reason).await;
        }
        let n_budget = entry.attempt + 1;
        let n_history = entry.history_base + n_budget;
        let at_ms = now_ms();
        // The attempt's CLIENT span, in the event's trace (pull has none).
        let tel = &self.telemetry;
        let span = match &d.sender {
            Sender::Http(p) => {
                tel.attempt_span(&event, name, Some(p.uri()), n_history, entry.delay_ms)
            }
            Sender::Log => tel.attempt_span(&event, name, None, n_history, entry.delay_ms),
            Sender::Pull => TraceSpan::default(),
        };
        let answer = match &d.sender {
            Sender::Http(push) => {
                let id_text = id.to_string();
                push.send(push::Outgoing {
                    event_id: &id_text,
                    topic: &event.topic,
                    attempt: n_history,
                    content_type,
                    headers,
                    body,
                    trace: span.carried(&event),
                })
                .await
            }
            // Pull destinations have no dispatcher, so no attempts to make;
            // should one get here, the entry simply waits for a consumer.
            Sender::Pull => {
                return self
                    .store
                    .release(std::slice::from_ref(&entry), entry.due_ms, entry.delay_ms)
                    .await;
            }
            Sender::Log => {
                let preview = String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned();
                tracing::info!(event_id = %id, topic = %event.topic, destination = %name,
                    content_type, size = body.len(), body = %preview, "Event delivered to the log.");
                push::Answer {
                    result: retry::AttemptResult {
                        status: Some(200),
                        ..Default::default()
                    },
                    latency: Duration::ZERO,
                    excerpt: None,
                }
            }
        };
        if let (Some(b), Sender::Http(_)) = (&d.breaker, &d.sender) {
            let r = &answer.result;
            // The endpoint's health: no answer, a 5xx or a 429 is a failure;
            // a refusal by the address guard says nothing about it.
            let failed = !r.refused
                && (r.status.is_none() || r.status.is_some_and(|s| s >= 500 || s == 429));
            for change in b.record(now_ms(), failed) {
                match change {
                    breaker::Change::Opened { reason } => {
                        self.operator_event("circuit_opened", name, reason);
                        // Its attempt settles below; the dispatcher is woken
                        // then, and waits for the probe time.
                    }
                    breaker::Change::Closed => {
                        self.operator_event("circuit_closed", name, "a probe succeeded".into());
                        d.wake.notify_one();
                    }
                    breaker::Change::Disable { failing_for } => {
                        self.store.set_paused(name, true).await?;
                        d.paused.store(true, Ordering::Release);
                        self.operator_event(
                            "destination_paused",
                            name,
                            format!(
                                "failing for {} (disable_after); resume with POST /v1/destinations/{name}/resume",
                                humantime::format_duration(Duration::from_secs(failing_for.as_secs()))
                            ),
                        );
                    }
                }
            }
        }
        let age = Duration::from_millis(at_ms.saturating_sub(event.received_at_ms));
        let decision = d
            .policy
            .decide(n_budget, &answer.result, age, &mut rand::rng());
        tel.attempt_done(
            span,
            &event,
            name,
            n_history,
            &AttemptReport {
                status: answer.result.status,
                error: answer.result.error.clone(),
                refused: answer.result.refused,
                latency: answer.latency,
            },
            &match &decision {
                Decision::Delivered => AttemptOutcome::Delivered,
                Decision::Retry { after } => AttemptOutcome::Retry { after: *after },
                Decision::DeadLetter { reason } => AttemptOutcome::DeadLetter {
                    reason: reason.clone(),
                },
                Decision::Pause { .. } => AttemptOutcome::Paused,
            },
        );
        let record = AttemptRecord {
            attempt: n_history,
            at_ms,
            status: answer.result.status,
            error: answer.result.error.clone(),
            latency_ms: answer.latency.as_millis() as u64,
            response_excerpt: answer.excerpt,
            delay_before_ms: entry.delay_ms,
        };
        let what = retry::describe(&answer.result);
        let outcome = match &decision {
            Decision::Delivered => Settle::Delivered,
            Decision::Retry { after } => {
                let next = QueueEntry {
                    due_ms: now_ms() + after.as_millis() as u64,
                    attempt: n_budget,
                    delay_ms: after.as_millis() as u64,
                    ..entry.clone()
                };
                tracing::info!(event_id = %id, destination = %name, attempt = n_history, result = %what,
                    retry_in = %humantime::format_duration(Duration::from_secs(after.as_secs())),
                    "Delivery attempt failed; retrying.");
                Settle::Retry { next }
            }
            Decision::Pause { reason } => {
                // 410: the attempt does not count against the budget; the
                // entry waits, due now, for an operator to resume. It is in
                // the history, though: the next attempt gets the next number.
                let next = QueueEntry {
                    due_ms: now_ms(),
                    delay_ms: 0,
                    history_base: entry.history_base + 1,
                    ..entry.clone()
                };
                tracing::warn!(destination = %name, event_id = %id, reason = %reason,
                    "Destination paused: it answered 410 Gone. Resume it with POST /v1/destinations/{}/resume.", name);
                Settle::Retry { next }
            }
            Decision::DeadLetter { reason } => {
                tracing::warn!(event_id = %id, destination = %name, attempt = n_history, reason = %reason,
                    "Delivery dead-lettered.");
                Settle::DeadLetter {
                    error: reason.clone(),
                }
            }
        };
        if matches!(decision, Decision::Pause { .. }) {
            // Paused before the entry is back in the queue, so the
            // dispatcher does not take it again at once.
            self.store.set_paused(name, true).await?;
            d.paused.store(true, Ordering::Release);
        }
        self.store
            .settle(vec![Settlement {
                entry,
                attempt: record,
                outcome,
            }])
            .await
    }
}

/// What [`Delivery::prepare`] built, for [`Delivery::apply`].
pub struct Prepared {
    next: BTreeMap<String, Arc<Destination>>,
    /// Changes left as they are until a restart (named by config key).
    pub restart_needed: Vec<String>,
}

fn same_policy(a: &switchyard_store::QueuePolicy, b: &switchyard_store::QueuePolicy) -> bool {
    a.aging_ms == b.aging_ms && a.ordered == b.ordered && a.hold_dead_letters == b.hold_dead_letters
}

/// One destination from its config, over a queue already open in the store.
async fn build(
    d: &DestinationConfig,
    rules: &AddressRules,
    store: &SharedStore,
    shutdown: &CancellationToken,
    counters: Option<Arc<PullCounters>>,
) -> Result<Destination, DeliveryError> {
    let sender = match d.kind {
        DestinationKind::Http => Sender::Http(Box::new(push::HttpPush::new(d, rules).map_err(
            |message| DeliveryError::Setup {
                name: d.name.clone(),
                message,
            },
        )?)),
        DestinationKind::Log => Sender::Log,
        DestinationKind::Pull => Sender::Pull,
    };
    let paused = store.is_paused(&d.name).await?;
    Ok(Destination {
        config: d.clone(),
        sender,
        policy: RetryPolicy::new(d.retry.clone()),
        wake: store.waker(&d.name)?,
        paused: AtomicBool::new(paused),
        counters: counters.unwrap_or_default(),
        stop: shutdown.child_token(),
        breaker: d
            .circuit_breaker
            .clone()
            .map(|c| Arc::new(breaker::Breaker::new(c))),
    })
}

/// Checks a payload about to leave against the destination's `schema`, if
/// it has one. The reason names the failing path and keyword, and says
/// when a plugin's rewrite produced the payload (the usual culprit), by
/// name when the chain recorded it. `rewritten` is `None` for the payload
/// as received, `Some(plugin)` for a rewrite. A refusal is counted in
/// `switchyard_egress_schema_rejections_total`.
pub(crate) fn egress_check(
    registry: &Registry,
    telemetry: &Telemetry,
    d: &Destination,
    topic: &str,
    rewritten: Option<Option<&str>>,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let Some(schema) = &d.config.schema else {
        return Ok(());
    };
    registry
        .validate_ref(schema, content_type, body)
        .map(|_| ())
        .map_err(|e| {
            let at = match &e {
                switchyard_registry::ValidationError::Mismatch { path, keyword, .. } => format!(
                    " (path {path:?}{})",
                    keyword
                        .as_ref()
                        .map(|k| format!(", keyword {k:?}"))
                        .unwrap_or_default()
                ),
                _ => String::new(),
            };
            telemetry
                .metrics
                .egress_rejected(&d.config.name, &schema.subject);
            let by = match rewritten {
                Some(Some(plugin)) => format!(
                    "; the payload was produced by plugin {plugin:?} (the plugin chain of topic \
                     {topic:?})"
                ),
                Some(None) => {
                    format!("; the payload was rewritten by the plugin chain of topic {topic:?}")
                }
                None => String::new(),
            };
            format!(
                "payload breaks the destination's schema {:?}{at}: {e}{by}",
                schema.subject
            )
        })
}
