//! Prometheus metrics: one registry per gateway, served at `GET /metrics`.
//!
//! We use `prometheus-client` (the Prometheus project's own crate) rather
//! than the `metrics` facade: its registry is a value, not a process-wide
//! recorder, so tests that run several gateways in one process each see
//! their own numbers. Counters get `_total` from the encoder; units are in
//! the names (`_seconds`, `_bytes`).
//!
//! Counters and histograms are updated where things happen. Levels (queue
//! depth, lag, DLQ depth, disk size) are read from their owners at scrape
//! time into a [`Levels`] snapshot and rendered from it, so they cannot
//! drift from what the admin API shows. A store backend registers its own
//! metrics (group commits, say) in [`Metrics::registry_mut`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicOutcome {
    /// Empty for requests naming no configured topic: user input must not
    /// become label values, or a scanner could grow the registry forever.
    pub topic: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicReason {
    pub topic: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestOutcome {
    pub destination: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestLabel {
    pub destination: String,
}

/// A destination and a priority (0 to 9), for the depth by priority.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestPriority {
    pub destination: String,
    pub priority: u8,
}

/// A destination and the schema subject it checks payloads against.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestSubject {
    pub destination: String,
    pub subject: String,
}

/// An API access refusal: the configured token's name (empty when none
/// was recognised) and why (`missing`, `unknown_token`, `forbidden`,
/// `rate_limited`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenReason {
    pub token: String,
    pub reason: String,
}

/// An operator event (`circuit_opened`, `circuit_closed`,
/// `destination_paused`) and the destination it is about.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperatorLabel {
    pub kind: String,
    pub destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    pub plugin: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    pub ingest_events: Family<TopicOutcome, Counter>,
    pub ingest_duration: Family<TopicLabel, Histogram>,
    pub signature_failures: Family<TopicReason, Counter>,
    pub routed_events: Family<TopicLabel, Counter>,
    /// Idempotency keys reused with a different body (answered as duplicates).
    pub idempotency_conflicts: Family<TopicLabel, Counter>,
    pub delivery_attempts: Family<DestOutcome, Counter>,
    pub delivery_duration: Family<DestLabel, Histogram>,
    pub dead_letters: Family<DestLabel, Counter>,
    /// Connections the outbound address guard refused (`delivery/guard.rs`).
    pub delivery_refused: Family<DestLabel, Counter>,
    /// Payloads dead-lettered because they break the destination's own
    /// `schema` (egress validation), push and pull alike.
    pub egress_schema_rejections: Family<DestSubject, Counter>,
    queue_depth: Family<DestLabel, Gauge>,
    queue_depth_by_priority: Family<DestPriority, Gauge>,
    in_flight: Family<DestLabel, Gauge>,
    oldest_pending_age: Family<DestLabel, FloatGauge>,
    dlq_depth: Family<DestLabel, Gauge>,
    queue_delayed: Family<DestLabel, Gauge>,
    blocked_keys: Family<DestLabel, Gauge>,
    /// 0 closed, 1 half-open (a probe in flight), 2 open: one series an
    /// alert can compare, for destinations with a `circuit_breaker`.
    circuit_state: Family<DestLabel, Gauge>,
    /// Free bytes on the data dir's file system, and the floor under which
    /// ingest answers 503: an alert warns before the two meet.
    free_disk: Gauge,
    min_free_disk: Gauge,
    /// 1 while a plugin is quarantined (its events fail fast).
    plugin_quarantined: Family<PluginLabel, Gauge>,
    pull_receives: Family<DestLabel, Counter>,
    pull_acks: Family<DestLabel, Counter>,
    pull_nacks: Family<DestLabel, Counter>,
    pull_lease_expiries: Family<DestLabel, Counter>,
    store_size: Gauge,
    plugin_invocations: Family<PluginLabel, Counter>,
    plugin_errors: Family<PluginLabel, Counter>,
    plugin_traps: Family<PluginLabel, Counter>,
    plugin_time: Family<PluginLabel, Counter<f64, AtomicU64>>,
    /// Requests refused by API access control (`auth/`).
    pub auth_refusals: Family<TokenReason, Counter>,
    /// State changes operators hear about (delivery's circuit breakers).
    pub operator_events: Family<OperatorLabel, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to ~8 s: a group commit is a few ms, a slow destination seconds.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Metrics {
    /// A registry with every metric.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("switchyard");
        let m = Self {
            ingest_events: Family::default(),
            ingest_duration: Family::new_with_constructor(latency_histogram),
            signature_failures: Family::default(),
            routed_events: Family::default(),
            idempotency_conflicts: Family::default(),
            delivery_attempts: Family::default(),
            delivery_duration: Family::new_with_constructor(latency_histogram),
            dead_letters: Family::default(),
            delivery_refused: Family::default(),
            egress_schema_rejections: Family::default(),
            queue_depth: Family::default(),
            queue_depth_by_priority: Family::default(),
            queue_delayed: Family::default(),
            blocked_keys: Family::default(),
            circuit_state: Family::default(),
            free_disk: Gauge::default(),
            min_free_disk: Gauge::default(),
            plugin_quarantined: Family::default(),
            pull_receives: Family::default(),
            pull_acks: Family::default(),
            pull_nacks: Family::default(),
            pull_lease_expiries: Family::default(),
            in_flight: Family::default(),
            oldest_pending_age: Family::default(),
            dlq_depth: Family::default(),
            store_size: Gauge::default(),
            plugin_invocations: Family::default(),
            plugin_errors: Family::default(),
            plugin_traps: Family::default(),
            plugin_time: Family::default(),
            auth_refusals: Family::default(),
            operator_events: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "ingest_events",
            "Events posted to ingest, by topic and outcome (accepted, duplicate, or the error code).",
            m.ingest_events.clone(),
        );
        r.register_with_unit(
            "ingest_duration",
            "Time from request to answer on the ingest endpoints, including the durable write.",
            Unit::Seconds,
            m.ingest_duration.clone(),
        );
        r.register(
            "signature_failures",
            "Ingest requests refused for their signature, by topic and reason.",
            m.signature_failures.clone(),
        );
        r.register(
            "idempotency_conflicts",
            "Requests that reused an idempotency key with a different body, by topic: answered as duplicates, nothing stored.",
            m.idempotency_conflicts.clone(),
        );
        r.register(
            "routed_events",
            "Events the router has queued for their destinations, by topic.",
            m.routed_events.clone(),
        );
        r.register_with_unit(
            "store_disk",
            "Space the store takes on disk.",
            Unit::Bytes,
            m.store_size.clone(),
        );
        r.register(
            "delivery_attempts",
            "Delivery attempts, by destination and outcome (delivered, retry, dead_letter, paused).",
            m.delivery_attempts.clone(),
        );
        r.register_with_unit(
            "delivery_duration",
            "Time one delivery attempt took, connect to response.",
            Unit::Seconds,
            m.delivery_duration.clone(),
        );
        r.register(
            "dead_letters",
            "Entries moved to a destination's dead-letter queue.",
            m.dead_letters.clone(),
        );
        r.register(
            "delivery_refused",
            "Delivery attempts refused by the outbound address guard (metadata, link-local, private peers).",
            m.delivery_refused.clone(),
        );
        r.register(
            "egress_schema_rejections",
            "Payloads dead-lettered unsent because they break the destination's schema (after plugins and format conversion).",
            m.egress_schema_rejections.clone(),
        );
        r.register(
            "queue_depth",
            "Entries waiting for a destination (visible and delayed; in flight not included).",
            m.queue_depth.clone(),
        );
        r.register(
            "queue_depth_by_priority",
            "Entries waiting for a destination, by priority (0 to 9): queue_depth split by band.",
            m.queue_depth_by_priority.clone(),
        );
        r.register(
            "in_flight",
            "Entries being delivered (or leased to pull consumers) now.",
            m.in_flight.clone(),
        );
        r.register_with_unit(
            "oldest_pending_age",
            "Age of the oldest entry waiting for a destination: its lag.",
            Unit::Seconds,
            m.oldest_pending_age.clone(),
        );
        r.register(
            "queue_delayed",
            "Waiting entries not yet due (backing off, or delayed by a nack).",
            m.queue_delayed.clone(),
        );
        r.register(
            "blocked_keys",
            "Ordering keys whose head is in flight or backing off (FIFO destinations).",
            m.blocked_keys.clone(),
        );
        r.register(
            "circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            m.circuit_state.clone(),
        );
        r.register_with_unit(
            "disk_free",
            "Free space on the data dir's file system.",
            Unit::Bytes,
            m.free_disk.clone(),
        );
        r.register_with_unit(
            "disk_min_free",
            "server.min_free_disk: below it ingest answers 503.",
            Unit::Bytes,
            m.min_free_disk.clone(),
        );
        r.register(
            "plugin_quarantined",
            "1 while the plugin is quarantined after repeated failures.",
            m.plugin_quarantined.clone(),
        );
        r.register(
            "operator_events",
            "Operator events (circuit opened or closed, destination paused), by kind and destination.",
            m.operator_events.clone(),
        );
        r.register(
            "auth_refusals",
            "Requests refused by API access control, by token name and reason.",
            m.auth_refusals.clone(),
        );
        r.register(
            "pull_receives",
            "Messages leased to pull consumers.",
            m.pull_receives.clone(),
        );
        r.register(
            "pull_acks",
            "Messages acknowledged by pull consumers.",
            m.pull_acks.clone(),
        );
        r.register(
            "pull_nacks",
            "Messages handed back by pull consumers.",
            m.pull_nacks.clone(),
        );
        r.register(
            "pull_lease_expiries",
            "Leases that ran out before an ack.",
            m.pull_lease_expiries.clone(),
        );
        r.register(
            "dlq_depth",
            "Entries in a destination's dead-letter queue.",
            m.dlq_depth.clone(),
        );
        r.register(
            "plugin_invocations",
            "Events handed to a plugin.",
            m.plugin_invocations.clone(),
        );
        r.register(
            "plugin_errors",
            "Events a plugin failed on (errors, bad verdicts, traps).",
            m.plugin_errors.clone(),
        );
        r.register(
            "plugin_traps",
            "Plugin calls that trapped (panic, timeout, memory limit).",
            m.plugin_traps.clone(),
        );
        r.register_with_unit(
            "plugin_time",
            "Time spent inside a plugin.",
            Unit::Seconds,
            m.plugin_time.clone(),
        );
        Self { registry: r, ..m }
    }

    /// Counts an ingest request's events under an outcome.
    pub fn ingested(&self, topic: &str, outcome: &str, events: u64) {
        self.ingest_events
            .get_or_create(&TopicOutcome {
                topic: topic.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc_by(events);
    }

    /// An idempotency key came back with a body unlike the first one's.
    pub fn idempotency_conflict(&self, topic: &str) {
        self.idempotency_conflicts
            .get_or_create(&TopicLabel {
                topic: topic.to_owned(),
            })
            .inc();
    }

    pub fn signature_failure(&self, topic: &str, reason: &str) {
        self.signature_failures
            .get_or_create(&TopicReason {
                topic: topic.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// One delivery attempt and how it came out.
    pub fn attempt(&self, destination: &str, outcome: &str, seconds: f64) {
        let d = DestLabel {
            destination: destination.to_owned(),
        };
        self.delivery_duration.get_or_create(&d).observe(seconds);
        if outcome == "dead_letter" {
            self.dead_letters.get_or_create(&d).inc();
        }
        self.delivery_attempts
            .get_or_create(&DestOutcome {
                destination: d.destination,
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Events accepted on `topic` since start (the `accepted` outcome of
    /// `ingest_events`). Read without creating a series, so sampling never
    /// adds zero lines to `/metrics`.
    pub fn ingest_accepted(&self, topic: &str) -> u64 {
        self.ingest_events
            .get(&TopicOutcome {
                topic: topic.to_owned(),
                outcome: "accepted".to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// Delivery attempts at `destination` that came out as `outcome`
    /// (`delivered`, `retry`, `dead_letter`, `paused`) since start.
    /// Counts one payload refused by `destination`'s schema `subject`.
    pub fn egress_rejected(&self, destination: &str, subject: &str) {
        self.egress_schema_rejections
            .get_or_create(&DestSubject {
                destination: destination.to_owned(),
                subject: subject.to_owned(),
            })
            .inc();
    }

    pub fn attempts_total(&self, destination: &str, outcome: &str) -> u64 {
        self.delivery_attempts
            .get(&DestOutcome {
                destination: destination.to_owned(),
                outcome: outcome.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// Plugin totals as the plugin host reports them (cumulative since
    /// start), set at scrape time. Counters only move forward, so a total
    /// that went down (a restart of the host's counters) is ignored.
    pub fn set_plugin(&self, name: &str, invocations: u64, errors: u64, traps: u64, seconds: f64) {
        let l = PluginLabel {
            plugin: name.to_owned(),
        };
        let bump = |c: &Counter, total: u64| {
            let now = c.get();
            if total > now {
                c.inc_by(total - now);
            }
        };
        bump(&self.plugin_invocations.get_or_create(&l), invocations);
        bump(&self.plugin_errors.get_or_create(&l), errors);
        bump(&self.plugin_traps.get_or_create(&l), traps);
        let t = self.plugin_time.get_or_create(&l);
        let now = t.get();
        if seconds > now {
            t.inc_by(seconds - now);
        }
    }

    /// The registry, for a store backend to add its own metrics to (their
    /// names get the `switchyard_` prefix too).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Renders the text format, with the levels of `levels`.
    pub fn render(&self, levels: &Levels) -> String {
        self.store_size.set(levels.store_disk_bytes as i64);
        if let Some(free) = levels.free_disk_bytes {
            self.free_disk.set(free as i64);
        }
        self.min_free_disk.set(levels.min_free_disk_bytes as i64);
        for s in &levels.destinations {
            let l = DestLabel {
                destination: s.name.clone(),
            };
            self.queue_depth.get_or_create(&l).set(s.queue_depth as i64);
            for (priority, n) in s.depth_by_priority.iter().enumerate() {
                self.queue_depth_by_priority
                    .get_or_create(&DestPriority {
                        destination: s.name.clone(),
                        priority: priority as u8,
                    })
                    .set(*n as i64);
            }
            self.in_flight.get_or_create(&l).set(s.in_flight as i64);
            self.oldest_pending_age
                .get_or_create(&l)
                .set(s.oldest_pending_age_seconds);
            self.dlq_depth.get_or_create(&l).set(s.dlq_depth as i64);
            self.queue_delayed.get_or_create(&l).set(s.delayed as i64);
            if let Some(b) = s.blocked_keys {
                self.blocked_keys.get_or_create(&l).set(b as i64);
            }
            if let Some(c) = s.circuit {
                self.circuit_state.get_or_create(&l).set(c as i64);
            }
            if let Some(p) = &s.pull {
                // The destination keeps the totals; mirror them.
                for (family, total) in [
                    (&self.pull_receives, p.receives),
                    (&self.pull_acks, p.acks),
                    (&self.pull_nacks, p.nacks),
                    (&self.pull_lease_expiries, p.lease_expiries),
                ] {
                    let c = family.get_or_create(&l);
                    c.inc_by(total.saturating_sub(c.get()));
                }
            }
        }
        for p in &levels.plugins {
            self.set_plugin(&p.name, p.invocations, p.errors, p.traps, p.seconds);
            self.plugin_quarantined
                .get_or_create(&PluginLabel {
                    plugin: p.name.clone(),
                })
                .set(i64::from(p.quarantined));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "Cannot encode /metrics.");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The levels `/metrics` shows, read from their owners at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Levels {
    /// Bytes the store takes on disk.
    pub store_disk_bytes: u64,
    /// Free bytes where the data dir is; `None` when it can't be read.
    pub free_disk_bytes: Option<u64>,
    /// `server.min_free_disk`, in bytes.
    pub min_free_disk_bytes: u64,
    pub destinations: Vec<DestinationLevels>,
    pub plugins: Vec<PluginTotals>,
}

/// One destination's queue levels.
#[derive(Debug, Clone, Default)]
pub struct DestinationLevels {
    pub name: String,
    pub queue_depth: u64,
    /// `queue_depth` by priority (index 0 to 9).
    pub depth_by_priority: [u64; 10],
    pub in_flight: u64,
    pub oldest_pending_age_seconds: f64,
    pub dlq_depth: u64,
    pub delayed: u64,
    /// FIFO destinations only.
    pub blocked_keys: Option<u64>,
    /// Pull destinations only: totals since start.
    pub pull: Option<PullTotals>,
    /// Destinations with a circuit breaker: 0 closed, 1 half-open, 2 open.
    pub circuit: Option<u8>,
}

/// What pull consumers did with a destination since start.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullTotals {
    pub receives: u64,
    pub acks: u64,
    pub nacks: u64,
    pub lease_expiries: u64,
}

/// One plugin's totals since start, as its host reports them.
#[derive(Debug, Clone, Default)]
pub struct PluginTotals {
    pub name: String,
    pub invocations: u64,
    pub errors: u64,
    pub traps: u64,
    /// Time spent inside the plugin.
    pub seconds: f64,
    /// Whether it is quarantined now.
    pub quarantined: bool,
}
