//! The one `bindgen!`: host-side types and calls for `schemas/wit/plugin.wit`.
//!
//! Everything else in the gateway uses the plain types of `plugins/mod.rs`;
//! generated names stay in this module so a contract change touches one place.

wasmtime::component::bindgen!({
    path: "../../schemas/wit",
    world: "switchyard:plugin/plugin@0.2.0",
    // `init` and `handle` are called async, on the caller's task, yielding
    // at epoch ticks (see `engine::Instance`); the log import stays sync.
    exports: { default: async },
});

pub use exports::switchyard::plugin::handler::{Batch as WitBatch, Verdict as WitVerdict};
pub use switchyard::plugin::log::{Host as LogHost, Level as LogLevel};
pub use switchyard::plugin::types::Host as TypesHost;
pub use switchyard::plugin::types::{Event as WitEvent, Field as WitField, Span as WitSpan};

/// The package version of the contract this host speaks.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The export a plugin must have, name and version.
pub const HANDLER_EXPORT: &str = "switchyard:plugin/handler@0.2.0";

/// The interface name without its version, to recognise other versions.
pub const HANDLER_INTERFACE: &str = "switchyard:plugin/handler";

/// Lays events out as the contract's batch: every text and payload back to
/// back in `data`, every header and attribute in `fields`, and per event
/// only ranges. A topic or content type equal to the previous event's is
/// not copied again. Ranges are `u32`: a batch is bounded by the router's
/// batch size times the topic's body limit, far below 4 GiB.
pub fn encode_batch<'a, I>(events: I) -> WitBatch
where
    I: Iterator<Item = &'a super::PluginEvent> + Clone,
{
    let (mut bytes, mut pairs, mut count) = (0, 0, 0);
    for e in events.clone() {
        count += 1;
        bytes += e.id.len() + e.topic.len() + e.content_type.len() + e.payload.len();
        for (k, v) in e.headers.iter().chain(&e.attributes) {
            bytes += k.len() + v.len();
        }
        pairs += e.headers.len() + e.attributes.len();
    }
    let mut data = Vec::with_capacity(bytes);
    let mut fields = Vec::with_capacity(pairs);
    let mut out = Vec::with_capacity(count);
    let mut last_topic: Option<(&str, WitSpan)> = None;
    let mut last_type: Option<(&str, WitSpan)> = None;
    for e in events {
        let id = put(&mut data, e.id.as_bytes());
        let topic = match last_topic {
            Some((t, span)) if t == e.topic => span,
            _ => put(&mut data, e.topic.as_bytes()),
        };
        last_topic = Some((&e.topic, topic));
        let content_type = match last_type {
            Some((t, span)) if t == e.content_type => span,
            _ => put(&mut data, e.content_type.as_bytes()),
        };
        last_type = Some((&e.content_type, content_type));
        let payload = put(&mut data, &e.payload);
        let headers = put_fields(&mut data, &mut fields, &e.headers);
        let attributes = put_fields(&mut data, &mut fields, &e.attributes);
        out.push(WitEvent {
            id,
            topic,
            received_at_ms: e.received_at_ms,
            headers,
            content_type,
            payload,
            attributes,
        });
    }
    WitBatch {
        data,
        fields,
        events: out,
    }
}

fn span(offset: usize, len: usize) -> WitSpan {
    WitSpan {
        offset: u32::try_from(offset).unwrap_or(u32::MAX),
        len: u32::try_from(len).unwrap_or(u32::MAX),
    }
}

fn put(data: &mut Vec<u8>, bytes: &[u8]) -> WitSpan {
    let s = span(data.len(), bytes.len());
    data.extend_from_slice(bytes);
    s
}

fn put_fields(
    data: &mut Vec<u8>,
    fields: &mut Vec<WitField>,
    pairs: &[(String, String)],
) -> WitSpan {
    let s = span(fields.len(), pairs.len());
    for (k, v) in pairs {
        let name = put(data, k.as_bytes());
        let value = put(data, v.as_bytes());
        fields.push(WitField { name, value });
    }
    s
}
