//! The event: what a sender posted, as the gateway keeps it.
//!
//! Ids are ULIDs minted by the store's writer: sortable by time, unique
//! without a global counter (a JetStream backend could mint them too).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// An event id.
pub type EventId = Ulid;

/// The priority of an event nothing else set one for (0-9, 9 most urgent).
pub const DEFAULT_PRIORITY: u8 = 5;

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub topic: String,
    /// Milliseconds since the Unix epoch, when the gateway accepted it.
    pub received_at_ms: u64,
    pub meta: EventMeta,
    /// The body exactly as the sender sent it.
    pub payload: Bytes,
}

/// Everything about an event but its id and body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    /// The sender's `content-type`, kept so delivery can repeat it.
    pub content_type: String,
    /// Sender headers, lower-cased names, minus hop-by-hop and credentials.
    /// Plugins read them; `forward_headers` picks the ones passed on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Attributes set by plugins or by validation (e.g. the schema id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
    /// The key this event was deduplicated on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// W3C `traceparent` of the ingest request, so later spans (even after a
    /// restart) join the sender's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// An event as ingest hands it to the store, before it has an id.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub meta: EventMeta,
    pub payload: Bytes,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// Formats epoch milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}
