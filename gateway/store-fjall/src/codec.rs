//! Value encodings. Small records are JSON (readable in a hex dump, cheap to
//! evolve with `#[serde(default)]`); an event is a JSON header followed by the
//! payload's raw bytes, so a 1 MiB binary body is never base64-inflated.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchyard_core::{Event, EventMeta};
use switchyard_store::{StoreError, Transformed};
use ulid::Ulid;

/// The JSON header of a stored event.
#[derive(Serialize, Deserialize)]
struct StoredHeader {
    topic: String,
    received_at_ms: u64,
    #[serde(flatten)]
    meta: EventMeta,
}

/// [`StoredHeader`] borrowed, for writing: the same JSON without copying
/// the event's metadata.
#[derive(Serialize)]
struct StoredHeaderRef<'a> {
    topic: &'a str,
    received_at_ms: u64,
    #[serde(flatten)]
    meta: &'a EventMeta,
}

/// `[u32 LE header length][header JSON][payload]`.
pub fn encode_event(topic: &str, received_at_ms: u64, meta: &EventMeta, payload: &[u8]) -> Vec<u8> {
    let header = StoredHeaderRef {
        topic,
        received_at_ms,
        meta,
    };
    let mut v = Vec::with_capacity(4 + 256 + payload.len());
    v.extend_from_slice(&[0; 4]);
    // Serialising plain strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut v, &header);
    let len = (v.len() - 4) as u32;
    v[..4].copy_from_slice(&len.to_le_bytes());
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

#[derive(Serialize, Deserialize)]
struct TransformedHeader {
    content_type: String,
    headers: Vec<(String, String)>,
    /// Added later: older records have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plugin: Option<String>,
}

pub fn encode_transformed(t: &Transformed) -> Vec<u8> {
    let header = TransformedHeader {
        content_type: t.content_type.clone(),
        headers: t.headers.clone(),
        plugin: t.plugin.clone(),
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
        plugin: h.plugin,
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

    /// The borrowed header writes the very bytes the owned one reads, so
    /// stores written before and after read alike.
    #[test]
    fn borrowed_header_encodes_like_the_owned_one() {
        let meta = EventMeta {
            content_type: "application/json".into(),
            headers: vec![("x-a".into(), "\"1\"".into())],
            attributes: vec![("schema_id".into(), "7".into())],
            idempotency_key: Some("k-1".into()),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            tracestate: None,
        };
        let owned = serde_json::to_vec(&StoredHeader {
            topic: "orders".into(),
            received_at_ms: 42,
            meta: meta.clone(),
        })
        .expect("a header serialises");
        let v = encode_event("orders", 42, &meta, b"{}");
        let len = u32::from_le_bytes(v[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(&v[4..4 + len], owned.as_slice());
        assert_eq!(&v[4 + len..], b"{}");
    }

    #[test]
    fn truncated_event_is_corrupt_not_a_panic() {
        let id = Ulid::new();
        assert!(decode_event(id, &[1, 0]).is_err());
        assert!(decode_event(id, &[200, 0, 0, 0, b'{']).is_err());
    }
}
