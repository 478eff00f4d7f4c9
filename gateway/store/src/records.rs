//! What the store keeps besides events: queue entries, delivery states,
//! attempts, dead letters and plugin rewrites. Backends persist them as
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
}

impl DeliveryStatus {
    /// The name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::DeadLettered => "dead_lettered",
        }
    }

    /// Reads a name the API uses.
    pub fn parse(name: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::InFlight,
            DeliveryStatus::Delivered,
            DeliveryStatus::DeadLettered,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Nothing more will happen without an operator.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered | DeliveryStatus::DeadLettered
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
