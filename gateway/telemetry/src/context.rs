//! W3C trace context: reading `traceparent`/`tracestate` from requests and
//! from stored events, and writing them onto outbound requests.
//!
//! The event keeps the trace context of its ingest (the ingest span's own
//! when tracing is on, else the sender's headers verbatim), so spans made
//! later, even after a restart, join the same trace; and a receiver gets the
//! sender's trace even when this gateway exports nothing.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;

use switchyard_core::EventMeta;

struct HeaderExtract<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The stored pair, read like headers.
struct StoredExtract<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for StoredExtract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// Collects what a propagator writes.
#[derive(Default)]
struct Pair {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Pair {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.traceparent = Some(value),
            "tracestate" if !value.is_empty() => self.tracestate = Some(value),
            _ => {}
        }
    }
}

/// The remote parent named by a request's headers (an empty context if
/// there is none or it is malformed: then a new trace starts).
pub fn extract(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtract(headers))
}

/// The context stored with an event.
pub fn from_meta(meta: &EventMeta) -> Context {
    if meta.traceparent.is_none() {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&StoredExtract {
        traceparent: meta.traceparent.as_deref(),
        tracestate: meta.tracestate.as_deref(),
    })
}

/// `traceparent` and `tracestate` for `cx`, if it has a valid span context.
pub fn encode(cx: &Context) -> Option<(String, Option<String>)> {
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut pair = Pair::default();
    TraceContextPropagator::new().inject_context(cx, &mut pair);
    pair.traceparent.map(|tp| (tp, pair.tracestate))
}

/// Stamps the current context (the ingest span, set by the ingest layer)
/// onto an event about to be stored. Without tracing there is no current
/// span and the sender's own headers stay.
pub fn stamp_current(meta: &mut EventMeta) {
    if let Some((tp, ts)) = encode(&Context::current()) {
        meta.traceparent = Some(tp);
        meta.tracestate = ts;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips_through_headers_and_storage() {
        let mut h = http::HeaderMap::new();
        h.insert("traceparent", TP.parse().unwrap());
        h.insert("tracestate", "vendor=1".parse().unwrap());
        let cx = extract(&h);
        assert!(cx.span().span_context().is_remote());
        let (tp, ts) = encode(&cx).unwrap();
        assert_eq!(tp, TP);
        assert_eq!(ts.as_deref(), Some("vendor=1"));
        let meta = EventMeta {
            traceparent: Some(tp),
            tracestate: ts,
            ..Default::default()
        };
        assert_eq!(
            from_meta(&meta)
                .span()
                .span_context()
                .trace_id()
                .to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn garbage_starts_a_new_trace() {
        let meta = EventMeta {
            traceparent: Some("not-a-traceparent".into()),
            ..Default::default()
        };
        assert!(encode(&from_meta(&meta)).is_none());
        assert!(encode(&Context::new()).is_none());
    }
}
