//! Value encodings. Small records are JSON (readable in a hex dump, cheap to
//! evolve with `#[serde(default)]`); an event is a JSON header followed by the
//! payload's raw bytes, so a 1 MiB binary body is never base64-inflated.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::StoreError;
use crate::event::{Event, EventMeta};

/// The JSON header of a stored event.
#[derive(Serialize, Deserialize)]
struct StoredHeader {
    topic: String,
    received_at_ms: u64,
    #[serde(flatten)]
    meta: EventMeta,
}

/// `[u32 LE header length][header JSON][payload]`.
pub fn encode_event(topic: &str, received_at_ms: u64, meta: &EventMeta, payload: &[u8]) -> Vec<u8> {
    let header = StoredHeader {
        topic: topic.to_owned(),
        received_at_ms,
        meta: meta.clone(),
    };
    // Serialising plain strings and numbers cannot fail.
    let json = serde_json::to_vec(&header).unwrap_or_default();
    let mut v = Vec::with_capacity(4 + json.len() + payload.len());
    v.extend_from_slice(&(json.len() as u32).to_le_bytes());
    v.extend_from_slice(&json);
    v.extend_from_slice(payload);
    v
}

pub fn decode_event(id: Ulid, value: &[u8]) -> Result<Event, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        keyspace: "events",
        message: format!("event {id}: {message}"),
    };
    let len_bytes: [u8; 4] = value
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("truncated header length".into()))?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let json = value
        .get(4..4 + len)
        .ok_or_else(|| corrupt("truncated header".into()))?;
    let header: StoredHeader =
        serde_json::from_slice(json).map_err(|e| corrupt(format!("bad header: {e}")))?;
    Ok(Event {
        id,
        topic: header.topic,
        received_at_ms: header.received_at_ms,
        meta: header.meta,
        payload: Bytes::copy_from_slice(&value[4 + len..]),
    })
}

/// One pending delivery of one event to one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub event_id: Ulid,
    pub destination: String,
    /// 0-9, 9 most urgent.
    pub priority: u8,
    /// Not to be delivered before this time (epoch ms).
    pub due_ms: u64,
    /// Attempts already made. Kept in the entry (not derived from a broker's
    /// delivery count) because a replay resets it while history keeps counting.
    pub attempt: u32,
    /// Attempts recorded in history before this entry's budget started, so
    /// attempt records of a replayed event keep unique, growing numbers.
    #[serde(default)]
    pub history_base: u32,
    /// The backoff chosen when this entry was scheduled (0 for a first try).
    #[serde(default)]
    pub delay_ms: u64,
    pub enqueued_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// A pull consumer's lease (its nonce); `due_ms` is then the lease's end.
    /// Stored so a lease survives a restart: the message stays invisible
    /// until the timeout, and the consumer's receipt still works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
}

impl QueueEntry {
    pub fn key(&self) -> Vec<u8> {
        super::keys::queue(&self.destination, self.priority, self.due_ms, self.event_id)
    }
}

/// Where one event stands with one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    /// Only ever reported, never stored: in flight is a fact of the running
    /// process, and after a crash such an entry is simply pending again.
    InFlight,
    Delivered,
    DeadLettered,
}

/// The stored summary of one event's delivery to one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryState {
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub updated_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One delivery attempt, as the history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based, unique per event and destination.
    pub attempt: u32,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
    /// The first KiB of the response body, lossily decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    /// The backoff that preceded this attempt.
    #[serde(default)]
    pub delay_before_ms: u64,
}

/// A dead letter: an event that one destination (or a topic's plugin chain)
/// gave up on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DlqEntry {
    pub event_id: Ulid,
    pub error: String,
    pub attempts: u32,
    pub dead_lettered_at_ms: u64,
    /// The priority to requeue with on replay.
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

fn default_priority() -> u8 {
    5
}

/// A plugin's rewrite of an event, delivered instead of the original body.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformed {
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

#[derive(Serialize, Deserialize)]
struct TransformedHeader {
    content_type: String,
    headers: Vec<(String, String)>,
}

pub fn encode_transformed(t: &Transformed) -> Vec<u8> {
    let header = TransformedHeader {
        content_type: t.content_type.clone(),
        headers: t.headers.clone(),
    };
    let json = serde_json::to_vec(&header).unwrap_or_default();
    let mut v = Vec::with_capacity(4 + json.len() + t.payload.len());
    v.extend_from_slice(&(json.len() as u32).to_le_bytes());
    v.extend_from_slice(&json);
    v.extend_from_slice(&t.payload);
    v
}

pub fn decode_transformed(value: &[u8]) -> Result<Transformed, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        keyspace: "transformed",
        message: message.to_owned(),
    };
    let len_bytes: [u8; 4] = value
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("truncated"))?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let json = value.get(4..4 + len).ok_or_else(|| corrupt("truncated"))?;
    let h: TransformedHeader = serde_json::from_slice(json).map_err(|_| corrupt("bad header"))?;
    Ok(Transformed {
        content_type: h.content_type,
        headers: h.headers,
        payload: Bytes::copy_from_slice(&value[4 + len..]),
    })
}

pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Our records hold only strings, numbers and options: serialising cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

pub fn from_json<T: for<'de> Deserialize<'de>>(
    keyspace: &'static str,
    v: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        keyspace,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_roundtrip_keeps_binary_payload() {
        let meta = EventMeta {
            content_type: "application/octet-stream".into(),
            headers: vec![("x-a".into(), "1".into())],
            ..Default::default()
        };
        let payload = [0u8, 255, 1, 2, b'{'];
        let v = encode_event("orders", 42, &meta, &payload);
        let id = Ulid::new();
        let e = decode_event(id, &v).expect("decodes");
        assert_eq!(e.topic, "orders");
        assert_eq!(e.received_at_ms, 42);
        assert_eq!(e.meta, meta);
        assert_eq!(&e.payload[..], &payload);
    }

    #[test]
    fn truncated_event_is_corrupt_not_a_panic() {
        let id = Ulid::new();
        assert!(decode_event(id, &[1, 0]).is_err());
        assert!(decode_event(id, &[200, 0, 0, 0, b'{']).is_err());
    }
}
