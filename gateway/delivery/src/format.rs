//! A destination's delivery format: `as-received` (default), `json` or
//! `avro`. Conversion runs at delivery, after plugins, on whatever payload
//! the event carries then (a plugin's transform returns JSON), using the
//! schema the event was validated against (its `schema.id` attribute).

use bytes::Bytes;
use serde::Deserialize;

use switchyard_registry::{self as registry, Registry};

/// `format = "as-received" | "json" | "avro"` on a destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryFormat {
    /// The body as the sender sent it (or as a plugin transformed it).
    #[default]
    AsReceived,
    /// Natural JSON of the topic's schema; Avro payloads are decoded.
    Json,
    /// Confluent wire format with the topic's schema id; JSON payloads are encoded.
    Avro,
}

pub const AVRO_CONTENT_TYPE: &str = "application/vnd.apache.avro+binary";

/// The content type and body to send, or `Ok(None)` to send as is. An
/// `Err` is a reason to dead-letter: the event can't be converted.
pub fn convert(
    registry: &Registry,
    format: DeliveryFormat,
    attributes: &[(String, String)],
    content_type: &str,
    body: &[u8],
) -> Result<Option<(String, Bytes)>, String> {
    if format == DeliveryFormat::AsReceived {
        return Ok(None);
    }
    let wanted = if format == DeliveryFormat::Json {
        "json"
    } else {
        "avro"
    };
    let id = attributes
        .iter()
        .find(|(k, _)| k == "schema.id")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .ok_or_else(|| {
            format!(
                "can't deliver as {wanted}: the event was not validated against a schema \
                 (give its topic `schema = {{ subject = ... }}`)"
            )
        })?;
    match format {
        DeliveryFormat::Json => registry
            .to_json(id, content_type, body)
            .map(|b| b.map(|b| ("application/json".to_string(), Bytes::from(b)))),
        DeliveryFormat::Avro => {
            // Only an Avro schema encodes to Avro: a JSON Schema or Protobuf
            // payload would be sent under a label it doesn't match.
            match registry.schema_type(id) {
                Some(registry::SchemaType::Avro) | None => {}
                Some(other) => {
                    return Err(format!(
                        "can't deliver as avro: the event was validated against a {} schema \
                         ({id}), not an Avro one",
                        other.as_str()
                    ));
                }
            }
            let avro = registry::is_avro(content_type).ok_or_else(|| {
                format!(
                    "can't deliver as {wanted}: content type {content_type:?} is neither JSON \
                     nor Confluent's wire format"
                )
            })?;
            if avro {
                Ok(None)
            } else {
                registry
                    .json_to_avro(id, body)
                    .map(|b| Some((AVRO_CONTENT_TYPE.to_string(), Bytes::from(b))))
            }
        }
        DeliveryFormat::AsReceived => Ok(None),
    }
    .map_err(|e| format!("can't deliver as {wanted}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn as_received_never_converts_and_others_need_a_schema_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = switchyard_store_fjall::FjallStore::open(
            dir.path(),
            switchyard_store_fjall::Durability::Sync,
        )
        .unwrap();
        let registry = Registry::open(std::sync::Arc::new(store)).unwrap();
        assert_eq!(
            convert(
                &registry,
                DeliveryFormat::AsReceived,
                &[],
                "text/plain",
                b"x"
            ),
            Ok(None)
        );
        let err = convert(
            &registry,
            DeliveryFormat::Avro,
            &[],
            "application/json",
            b"{}",
        )
        .unwrap_err();
        assert!(err.contains("not validated against a schema"), "{err}");
    }

    #[test]
    fn protobuf_payloads_convert_to_json_and_never_to_avro() {
        let dir = tempfile::tempdir().unwrap();
        let store = switchyard_store_fjall::FjallStore::open(
            dir.path(),
            switchyard_store_fjall::Durability::Sync,
        )
        .unwrap();
        let registry = Registry::open(std::sync::Arc::new(store)).unwrap();
        let sub = registry
            .core()
            .submission(
                "syntax = \"proto3\";\nmessage Order { string id = 1; int32 qty = 2; }",
                Some("PROTOBUF"),
                vec![],
            )
            .unwrap();
        let id = registry.core().register("orders", sub).unwrap();
        let attrs = vec![("schema.id".to_string(), id.to_string())];
        let mut framed = vec![0u8];
        framed.extend_from_slice(&id.to_be_bytes());
        framed.extend_from_slice(&[0, 0x0a, 0x02, b'o', b'1', 0x10, 0x03]);
        let (ct, body) = convert(
            &registry,
            DeliveryFormat::Json,
            &attrs,
            "application/x-protobuf",
            &framed,
        )
        .unwrap()
        .unwrap();
        assert_eq!(ct, "application/json");
        assert_eq!(body.as_ref(), br#"{"id":"o1","qty":3}"#);
        let err = convert(
            &registry,
            DeliveryFormat::Avro,
            &attrs,
            "application/x-protobuf",
            &framed,
        )
        .unwrap_err();
        assert!(err.contains("PROTOBUF schema"), "{err}");
    }

    #[test]
    fn format_key_parses_kebab_case() {
        #[derive(Deserialize)]
        struct T {
            format: DeliveryFormat,
        }
        let t: T = toml::from_str("format = \"as-received\"").unwrap();
        assert_eq!(t.format, DeliveryFormat::AsReceived);
        assert!(toml::from_str::<T>("format = \"xml\"").is_err());
    }
}
