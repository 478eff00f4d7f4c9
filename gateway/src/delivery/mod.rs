//! Delivery: one dispatcher per destination takes due entries from its queue,
//! sends them (bounded concurrency, optional rate limit), and settles each
//! attempt in the store: delivered, retried later, or dead-lettered.
//!
//! - `queue`: the in-memory order of a destination's pending entries.
//! - `retry`: the one policy that decides what follows an attempt.
//! - `http`: the HTTP push client; `signing`: Standard Webhooks signatures.
//! - `guard`: which addresses a push may connect to (SSRF guard);
//!   `tls`: a destination's CA bundle and client certificate.
//! - `pull`: leases for pull consumers (receive, ack, nack, extend).
//!
//! Settling is written before the in-memory queue changes, so what the store
//! says is what a restart will resume from; an attempt whose settle write was
//! lost in a crash is simply made again (at-least-once).

pub mod format;
pub mod guard;
pub mod http;
pub mod pull;
pub mod queue;
pub mod retry;
pub mod signing;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ulid::Ulid;

use crate::config::{Config, DestinationConfig, DestinationKind};
use crate::event::now_ms;
use crate::store::{AttemptRecord, QueueEntry, Settle, Store, StoreError};
use queue::MemQueue;
use retry::{Decision, RetryPolicy};

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
    Http(Box<http::HttpPush>),
    Log,
    /// Nothing is sent: consumers receive (see `pull`).
    Pull,
}

/// One configured destination and its queue.
pub struct Destination {
    pub config: DestinationConfig,
    sender: Sender,
    policy: RetryPolicy,
    queue: Mutex<MemQueue>,
    /// Rung when entries arrive, a pause ends, or shutdown starts.
    wake: Notify,
    paused: AtomicBool,
    /// Pull counters, for stats and metrics.
    pub(crate) counters: PullCounters,
}

/// What pull consumers did with a destination since start.
#[derive(Debug, Default)]
pub struct PullCounters {
    pub receives: std::sync::atomic::AtomicU64,
    pub acks: std::sync::atomic::AtomicU64,
    pub nacks: std::sync::atomic::AtomicU64,
    pub lease_expiries: std::sync::atomic::AtomicU64,
}

/// What `GET /v1/destinations` shows for one destination.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationStats {
    pub name: String,
    pub kind: DestinationKind,
    pub paused: bool,
    pub queue_depth: usize,
    pub in_flight: usize,
    pub dlq_depth: u64,
    pub oldest_pending_age_seconds: f64,
    /// Pending entries not yet due (backing off, delayed by a nack).
    pub delayed: usize,
    /// Ordering keys whose head is in flight or backing off (FIFO destinations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_keys: Option<usize>,
    /// Pull destinations: receives, acks, nacks and lease expiries since start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullStats>,
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
    fn queue(&self) -> MutexGuard<'_, MemQueue> {
        // A panic while holding this lock would be a bug in MemQueue; the data
        // is still consistent enough to keep delivering, so don't cascade it.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Whether this event has an entry pending or in flight here.
    pub fn has_entry(&self, id: Ulid) -> bool {
        self.queue().contains(id)
    }

    pub fn is_in_flight(&self, id: Ulid) -> bool {
        self.queue().is_in_flight(id)
    }

    /// FIFO with `on_dead_letter = "block"`.
    fn blocks_on_dead_letter(&self) -> bool {
        self.config
            .ordering
            .as_ref()
            .is_some_and(|o| o.on_dead_letter == crate::config::OnDeadLetter::Block)
    }

    /// A dead letter of this destination was purged: release its key.
    pub fn dead_letter_purged(&self, id: Ulid) {
        self.queue().unblock(id);
        self.wake.notify_one();
    }

    fn push(&self, e: QueueEntry) {
        if self.queue().push(e) {
            self.wake.notify_one();
        }
    }
}

/// Every destination, and the tasks that deliver to them.
pub struct Delivery {
    store: Store,
    destinations: BTreeMap<String, Arc<Destination>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// Spans of each attempt, delivery metrics.
    telemetry: Arc<crate::telemetry::Telemetry>,
    /// For destinations with `format = "json" | "avro"`; set once at start.
    registry: std::sync::OnceLock<crate::registry::Registry>,
}

impl Delivery {
    /// Gives delivery the schema registry, for format conversion.
    pub fn set_registry(&self, registry: crate::registry::Registry) {
        let _ = self.registry.set(registry);
    }

    /// Builds the destinations, reloads their queues from the store and
    /// starts a dispatcher for each.
    pub fn start(
        config: &Config,
        store: Store,
        telemetry: Arc<crate::telemetry::Telemetry>,
    ) -> Result<Arc<Self>, DeliveryError> {
        let mut destinations = BTreeMap::new();
        for d in &config.destinations {
            let sender = match d.kind {
                DestinationKind::Http => {
                    Sender::Http(Box::new(http::HttpPush::new(d, &config.server).map_err(
                        |message| DeliveryError::Setup {
                            name: d.name.clone(),
                            message,
                        },
                    )?))
                }
                DestinationKind::Log => Sender::Log,
                DestinationKind::Pull => Sender::Pull,
            };
            let paused = store.is_paused(&d.name)?;
            destinations.insert(
                d.name.clone(),
                Arc::new(Destination {
                    config: d.clone(),
                    sender,
                    policy: RetryPolicy::new(d.retry.clone()),
                    queue: Mutex::new(MemQueue::new(queue::Policy {
                        aging_ms: d.priority_aging.map(|a| a.as_millis().max(1) as u64),
                        ordered: d.ordering.is_some(),
                    })),
                    wake: Notify::new(),
                    paused: AtomicBool::new(paused),
                    counters: PullCounters::default(),
                }),
            );
        }
        let mut orphans = 0usize;
        let now = now_ms();
        for e in store.load_queue()? {
            match destinations.get(&e.destination) {
                Some(d) => match e.lease {
                    // A lease from before the restart still holds until it ends.
                    Some(nonce) if e.due_ms > now => {
                        let lease = queue::Lease {
                            nonce,
                            until_ms: e.due_ms,
                        };
                        d.queue().insert_leased(e, lease);
                    }
                    _ => {
                        d.queue().push(e);
                    }
                },
                // Entries of a destination removed from the config stay in the
                // store untouched: restoring the destination resumes them.
                None => orphans += 1,
            }
        }
        // Keys held by dead letters survive a restart: hold them again.
        for d in destinations.values() {
            if !d.blocks_on_dead_letter() {
                continue;
            }
            let mut cursor = None;
            loop {
                let (page, next) = store.dlq_page(&d.config.name, false, cursor, 1000)?;
                for e in page {
                    if let Some(k) = &e.ordering_key {
                        d.queue().block(k, e.event_id);
                    }
                }
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
        }
        if orphans > 0 {
            tracing::warn!(
                entries = orphans,
                "Queue entries for destinations no longer in the config are kept but not delivered."
            );
        }
        let delivery = Arc::new(Self {
            store,
            destinations,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            telemetry,
            registry: std::sync::OnceLock::new(),
        });
        for d in delivery.destinations.values() {
            let (dl, d) = (delivery.clone(), d.clone());
            if d.config.kind == DestinationKind::Pull {
                tokio::spawn(async move { dl.expire_leases(d).await });
            } else {
                tokio::spawn(async move { dl.dispatch(d).await });
            }
        }
        Ok(delivery)
    }

    /// The gateway's telemetry (the router makes its spans through it).
    pub fn telemetry(&self) -> &Arc<crate::telemetry::Telemetry> {
        &self.telemetry
    }

    pub fn destination(&self, name: &str) -> Option<&Arc<Destination>> {
        self.destinations.get(name)
    }

    pub fn destinations(&self) -> impl Iterator<Item = &Arc<Destination>> {
        self.destinations.values()
    }

    /// Hands entries the store has just written to their dispatchers.
    pub fn enqueue(&self, entries: Vec<QueueEntry>) {
        for e in entries {
            if let Some(d) = self.destinations.get(&e.destination) {
                d.push(e);
            }
        }
    }

    /// Entries waiting across all destinations.
    pub fn backlog(&self) -> u64 {
        self.destinations
            .values()
            .map(|d| d.queue().depth() as u64)
            .sum()
    }

    pub fn stats(&self) -> Result<Vec<DestinationStats>, StoreError> {
        let now = now_ms();
        self.destinations
            .values()
            .map(|d| {
                let (depth, in_flight, oldest, delayed, blocked) = {
                    let q = d.queue();
                    (
                        q.depth(),
                        q.in_flight(),
                        q.oldest_enqueued_ms(),
                        q.delayed(now),
                        q.blocked_keys(now),
                    )
                };
                let c = &d.counters;
                let pull = (d.config.kind == DestinationKind::Pull).then(|| PullStats {
                    receives: c.receives.load(Ordering::Relaxed),
                    acks: c.acks.load(Ordering::Relaxed),
                    nacks: c.nacks.load(Ordering::Relaxed),
                    lease_expiries: c.lease_expiries.load(Ordering::Relaxed),
                });
                Ok(DestinationStats {
                    name: d.config.name.clone(),
                    kind: d.config.kind,
                    paused: d.is_paused(),
                    queue_depth: depth,
                    in_flight,
                    dlq_depth: self.store.dlq_depth(&d.config.name, false)?,
                    oldest_pending_age_seconds: oldest
                        .map(|t| now.saturating_sub(t) as f64 / 1000.0)
                        .unwrap_or(0.0),
                    delayed,
                    blocked_keys: d.config.ordering.is_some().then_some(blocked),
                    pull,
                })
            })
            .collect()
    }

    /// Holds or releases delivery to a destination; persisted across restarts.
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<bool, StoreError> {
        let Some(d) = self.destinations.get(name) else {
            return Ok(false);
        };
        self.store.set_paused(name, paused).await?;
        d.paused.store(paused, Ordering::Release);
        d.wake.notify_one();
        tracing::info!(destination = %name, paused, "Destination pause state changed.");
        Ok(true)
    }

    /// Queues events again for a destination with a fresh attempt budget,
    /// removing them from its DLQ in the same write. Events that already
    /// have an entry pending or in flight there are skipped (and not counted).
    pub async fn requeue(
        &self,
        dest: &str,
        events: &[(Ulid, u8, Option<String>)],
        from_dlq: bool,
    ) -> Result<usize, StoreError> {
        let Some(d) = self.destinations.get(dest) else {
            return Ok(0);
        };
        let now = now_ms();
        let mut entries = Vec::new();
        let mut dlq_keys = Vec::new();
        for (id, priority, ordering_key) in events {
            if d.has_entry(*id) {
                continue;
            }
            let history_base = self
                .store
                .delivery_state(*id, dest)?
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
            if from_dlq {
                dlq_keys.push((dest.to_owned(), *id));
            }
        }
        self.store.requeue(&entries, &dlq_keys).await?;
        let n = entries.len();
        for e in entries {
            d.push(e);
        }
        Ok(n)
    }

    /// Stops taking new entries and waits up to `grace` for attempts in flight.
    pub async fn drain(&self, grace: Duration) {
        self.shutdown.cancel();
        for d in self.destinations.values() {
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
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = self.shutdown.cancelled() => return,
            };
            let Some(entry) = self.next_entry(&d).await else {
                return;
            };
            if let Some(pace) = pace.as_mut() {
                pace.tick().await;
            }
            let (dl, dest) = (self.clone(), d.clone());
            self.tracker
                .spawn(async move { dl.attempt(dest, entry, permit).await });
        }
    }

    /// Waits for the next due entry, or `None` at shutdown.
    async fn next_entry(&self, d: &Destination) -> Option<QueueEntry> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            let next_due = if d.is_paused() {
                None
            } else {
                let mut q = d.queue();
                if let Some(e) = q.take_due(now_ms(), None) {
                    return Some(e);
                }
                q.next_due()
            };
            let sleep = match next_due {
                Some(due) => Duration::from_millis(due.saturating_sub(now_ms()).max(1)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = d.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = self.shutdown.cancelled() => return None,
            }
        }
    }

    /// Makes one attempt and settles it.
    async fn attempt(&self, d: Arc<Destination>, entry: QueueEntry, _permit: OwnedSemaphorePermit) {
        let id = entry.event_id;
        if let Err(e) = self.try_attempt(&d, entry).await {
            tracing::error!(event_id = %id, destination = %d.config.name, error = %e,
                "Could not record a delivery attempt; the event stays queued and will be retried after restart.");
            d.queue().finish(id);
        }
    }

    async fn try_attempt(&self, d: &Destination, entry: QueueEntry) -> Result<(), StoreError> {
        let id = entry.event_id;
        let name = &d.config.name;
        let Some(event) = self.store.event(id)? else {
            // Retention removed the event (or the data dir was edited): there
            // is nothing left to deliver. Settle so the entry goes away.
            tracing::warn!(event_id = %id, destination = %name, "Queued event no longer exists; dropping its entry.");
            let record = AttemptRecord {
                attempt: entry.history_base + entry.attempt + 1,
                at_ms: now_ms(),
                status: None,
                error: Some("event no longer stored".into()),
                latency_ms: 0,
                response_excerpt: None,
                delay_before_ms: entry.delay_ms,
            };
            let outcome = Settle::DeadLetter {
                error: "event no longer stored".into(),
            };
            self.store.settle(&entry, &record, &outcome).await?;
            d.queue().finish(id);
            return Ok(());
        };
        let transformed = self.store.transformed(id)?;
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
            self.registry.get(),
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
                let record = AttemptRecord {
                    attempt: entry.history_base + entry.attempt + 1,
                    at_ms: now_ms(),
                    status: None,
                    error: Some(reason.clone()),
                    latency_ms: 0,
                    response_excerpt: None,
                    delay_before_ms: entry.delay_ms,
                };
                let outcome = Settle::DeadLetter { error: reason };
                self.store.settle(&entry, &record, &outcome).await?;
                if d.blocks_on_dead_letter() {
                    d.queue().finish_blocking(id);
                } else {
                    d.queue().finish(id);
                }
                d.wake.notify_one();
                return Ok(());
            }
        };
        let (content_type, body) = match &converted {
            Some((ct, b)) => (ct.as_str(), b.clone()),
            None => (content_type, body),
        };
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
            Sender::Pull => crate::telemetry::TraceSpan::default(),
        };
        let answer = match &d.sender {
            Sender::Http(push) => {
                let id_text = id.to_string();
                push.send(http::Outgoing {
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
                d.queue().requeue(entry);
                return Ok(());
            }
            Sender::Log => {
                let preview = String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned();
                tracing::info!(event_id = %id, topic = %event.topic, destination = %name,
                    content_type, size = body.len(), body = %preview, "Event delivered to the log.");
                http::Answer {
                    result: retry::AttemptResult {
                        status: Some(200),
                        ..Default::default()
                    },
                    latency: Duration::ZERO,
                    excerpt: None,
                }
            }
        };
        let age = Duration::from_millis(at_ms.saturating_sub(event.received_at_ms));
        let decision = d
            .policy
            .decide(n_budget, &answer.result, age, &mut rand::rng());
        tel.attempt_done(span, &event, name, n_history, &answer, &decision);
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
        let mut requeue = None;
        let settle = match &decision {
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
                requeue = Some(next.clone());
                Settle::Retry { next }
            }
            Decision::Pause { reason } => {
                // 410: the attempt does not count against the budget; the
                // entry waits, due now, for an operator to resume.
                let next = QueueEntry {
                    due_ms: now_ms(),
                    delay_ms: 0,
                    ..entry.clone()
                };
                tracing::warn!(destination = %name, event_id = %id, reason = %reason,
                    "Destination paused: it answered 410 Gone. Resume it with POST /v1/destinations/{}/resume.", name);
                requeue = Some(next.clone());
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
        self.store.settle(&entry, &record, &settle).await?;
        if matches!(decision, Decision::Pause { .. }) {
            self.store.set_paused(name, true).await?;
            d.paused.store(true, Ordering::Release);
        }
        match requeue {
            Some(next) => {
                d.queue().requeue(next);
                d.wake.notify_one();
            }
            None => {
                if matches!(decision, Decision::DeadLetter { .. }) && d.blocks_on_dead_letter() {
                    d.queue().finish_blocking(id);
                } else {
                    d.queue().finish(id);
                }
                // With ordering keys, finishing the head makes the key's next
                // event eligible: the dispatcher may be asleep waiting for it.
                d.wake.notify_one();
            }
        }
        Ok(())
    }
}
