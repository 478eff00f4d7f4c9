//! What the store keeps besides events: queue entries, delivery states,
//! attempts, dead letters, plugin rewrites and plugin verdicts. Backends persist them as
//! they see fit; the fjall backend writes them as JSON (their serde shape is
//! part of its on-disk format).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchyard_core::{DEFAULT_PRIORITY, EventId};

/// One pending delivery of one event to one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub event_id: EventId,
    pub destination: String,
    /// 0-9, 9 most urgent.
    pub priority: u8,
    /// Not to be taken before this (epoch ms). For a leased entry: when the
    /// lease ends.
    pub due_ms: u64,
    /// Attempts (or receives) spent from this entry's budget.
    pub attempt: u32,
    /// Attempts recorded before this budget began (a replay starts a fresh
    /// budget, but attempt numbers in the history keep counting).
    #[serde(default)]
    pub history_base: u32,
    /// The delay that preceded this due time (backoff, a nack's delay).
    #[serde(default)]
    pub delay_ms: u64,
    pub enqueued_at_ms: u64,
    /// FIFO key, at destinations with `ordering`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// The nonce of a pull consumer's lease while one holds the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
}

/// Where one event stands at one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    /// Never stored: a fact of the running process, reported by the backend
    /// that holds the entry.
    InFlight,
    Delivered,
    DeadLettered,
    /// An operator cancelled the delivery (one event, or a purge of the
    /// destination's queue): it left the queue and will not be attempted.
    Cancelled,
}

impl DeliveryStatus {
    /// The name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::DeadLettered => "dead_lettered",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    /// Reads a name the API uses.
    pub fn parse(name: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::InFlight,
            DeliveryStatus::Delivered,
            DeliveryStatus::DeadLettered,
            DeliveryStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Nothing more will happen without an operator.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered | DeliveryStatus::DeadLettered | DeliveryStatus::Cancelled
        )
    }
}

/// The delivery state of one event at one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryState {
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub updated_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt falls due (epoch ms): the due time a failed
    /// attempt's retry, or a delayed first delivery, was queued with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_ms: Option<u64>,
}

/// One delivery attempt (or pull receive), as the history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Numbered across budgets: 1, 2, ... for the event at this destination.
    pub attempt: u32,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    #[serde(default)]
    pub delay_before_ms: u64,
}

/// An entry of a dead-letter queue (a destination's or a topic's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DlqEntry {
    pub event_id: EventId,
    pub error: String,
    pub attempts: u32,
    pub dead_lettered_at_ms: u64,
    /// Kept so a replay queues the event as urgently as before.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Kept so a replay keeps its FIFO key (and frees a held key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

fn default_priority() -> u8 {
    DEFAULT_PRIORITY
}

/// A plugin's rewrite of an event: what is delivered instead of the original.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformed {
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
    /// The plugin that produced the payload, when the chain says: a
    /// destination's schema refusal names it. Absent in records written
    /// before it was kept.
    pub plugin: Option<String>,
}

/// What one plugin of a topic's chain decided for one event, kept so an
/// operator can see why the event went where it went. Bounded: the router
/// keeps at most [`MAX_VERDICTS`] a routing, and cuts long errors and route
/// lists (see [`PluginVerdict::bounded`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginVerdict {
    pub plugin: String,
    pub verdict: VerdictKind,
    /// The destinations it chose (`route`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// The priority it set, if it set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Its call's time per event (the call's time over the events in it).
    pub duration_us: u64,
    /// Why it failed (`error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The kind of a plugin's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// Chose destinations.
    Route,
    /// Chose none: the event goes nowhere.
    Drop,
    /// Left the routing as it was (it may still have rewritten the event).
    Keep,
    /// Failed on the event; the plugin's `on_error` applied.
    Error,
}

/// Verdicts kept per routing of an event: a chain longer than this keeps
/// its first ones (chains are a few plugins long).
pub const MAX_VERDICTS: usize = 16;
/// Destinations kept per verdict.
const MAX_VERDICT_ROUTES: usize = 32;
/// Bytes of an error kept per verdict.
const MAX_VERDICT_ERROR: usize = 512;

impl PluginVerdict {
    /// The verdict cut to its bounds, so one event's record stays a few KiB
    /// whatever a plugin returns.
    pub fn bounded(mut self) -> Self {
        self.routes.truncate(MAX_VERDICT_ROUTES);
        if let Some(e) = &mut self.error
            && e.len() > MAX_VERDICT_ERROR
        {
            let mut cut = MAX_VERDICT_ERROR;
            while !e.is_char_boundary(cut) {
                cut -= 1;
            }
            e.truncate(cut);
            e.push('…');
        }
        self
    }
}
