//! The small hand-written parsers of request and response values:
//! `Authorization` (Bearer / Basic), `Retry-After`,
//! `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,...`, percent-decoded), batch and
//! registry content types, the registry's `Accept` negotiation and
//! compatibility levels, W3C trace context. No panic, and what they return
//! is well-formed. (Pull receipts have their own target, `pull_receipt`.)
#![no_main]
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchyard::ingest::batch::Format;
use switchyard_delivery::retry::parse_retry_after;

fuzz_target!(|data: &[u8]| {
    // Header values, raw bytes as a client may send them.
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut h = HeaderMap::new();
        h.insert("authorization", v.clone());
        h.insert("traceparent", v.clone());
        h.insert("tracestate", v);
        if let Ok(token) = switchyard::auth::credential(&h) {
            assert!(!token.is_empty());
        }
        let _ = switchyard_telemetry::context::extract(&h);
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = parse_retry_after(text, now);
    for (k, v) in switchyard_telemetry::otlp::parse_headers(text) {
        assert!(!k.is_empty() && !k.contains(',') && !k.contains('='));
        assert!(v.len() <= text.len());
    }
    let _ = Format::from_content_type(Some(text));
    let _ = switchyard_registry::is_avro(text);
    let picked = switchyard::registry_api::pick_response_type(text);
    assert!(picked.contains("json"));
    let _ = switchyard_registry::compat::Level::parse(text);
});
