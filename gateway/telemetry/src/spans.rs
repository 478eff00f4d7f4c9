//! The spans of an event's story, named and attributed per the
//! OpenTelemetry HTTP and messaging semantic conventions:
//!
//! - ingest: a SERVER span `POST /v1/topics/{topic}/events`, child of the
//!   sender's `traceparent` (`messaging.operation.type = send`);
//! - routing: one CONSUMER span `process` per router batch (a root, linked
//!   to every event of the batch) and, in each event's own trace, a
//!   `process {topic}` span linked back to it;
//! - plugins: `plugin {name}` under the batch span, one per plugin run;
//! - delivery: each attempt a CLIENT span `send {destination}` with its
//!   attempt number, status code, error and the delay that preceded it;
//! - dead-lettering: `dead-letter {destination}` (`settle`);
//! - pull consumers: `receive {destination}` (a CLIENT span per message,
//!   whose context the consumer gets as `traceparent`) and `ack`/`nack
//!   {destination}` (`settle`).
//!
//! Every helper returns an empty [`TraceSpan`] when tracing is off. Spans
//! are values, never entered guards, so nothing is held across an `.await`.

use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use ulid::Ulid;

use std::time::Duration;

use switchyard_core::Event;
use switchyard_store::Routed;

use super::Telemetry;
use super::context;

/// How a delivery attempt ended, as its span and metrics record it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered,
    Retry {
        after: Duration,
    },
    DeadLetter {
        reason: String,
    },
    /// The destination answered 410 Gone and was paused.
    Paused,
}

impl AttemptOutcome {
    /// The `outcome` label of `delivery_attempts`.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::DeadLetter { .. } => "dead_letter",
            AttemptOutcome::Paused => "paused",
        }
    }
}

/// What an attempt got back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptReport {
    pub status: Option<u16>,
    /// A transport failure (connect, timeout, TLS), or a refusal.
    pub error: Option<String>,
    /// The address guard refused the connection.
    pub refused: bool,
    pub latency: Duration,
}

fn system() -> KeyValue {
    KeyValue::new("messaging.system", "switchyard")
}

/// A started span (or nothing, when tracing is off or the span is not
/// wanted). Ends when [`TraceSpan::end`] is called or when dropped.
#[derive(Default)]
pub struct TraceSpan(Option<Context>);

impl TraceSpan {
    /// The context carrying this span, for children and propagation.
    pub fn context(&self) -> Option<&Context> {
        self.0.as_ref()
    }

    pub fn set(&self, kv: KeyValue) {
        if let Some(cx) = &self.0 {
            cx.span().set_attribute(kv);
        }
    }

    pub fn error(&self, message: impl Into<String>) {
        if let Some(cx) = &self.0 {
            cx.span().set_status(Status::error(message.into()));
        }
    }

    pub fn end(self) {
        if let Some(cx) = self.0 {
            cx.span().end();
        }
    }

    /// Records the answer of a SERVER span (errors are 5xx only, per the
    /// HTTP conventions: a 4xx is the client's problem) and ends it.
    pub fn finish_server(self, status: http::StatusCode) {
        self.set(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        if status.is_server_error() {
            self.set(KeyValue::new("error.type", status.as_u16().to_string()));
            self.error(status.to_string());
        }
        self.end();
    }

    /// What outbound requests carry: this span's context, or the stored one
    /// when tracing is off (so receivers still join the sender's trace).
    pub fn carried(&self, event: &Event) -> Option<(String, Option<String>)> {
        match &self.0 {
            Some(cx) => context::encode(cx),
            None => event
                .meta
                .traceparent
                .clone()
                .map(|tp| (tp, event.meta.tracestate.clone())),
        }
    }
}

impl Telemetry {
    /// A span with `parent`, or nothing when tracing is off.
    fn span(
        &self,
        name: String,
        kind: SpanKind,
        parent: &Context,
        attributes: Vec<KeyValue>,
        links: Vec<Link>,
    ) -> TraceSpan {
        let Some(tracer) = self.tracer() else {
            return TraceSpan(None);
        };
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(&tracer, parent);
        TraceSpan(Some(Context::new().with_span(span)))
    }

    /// One delivery attempt to `destination` (a CLIENT span in the event's
    /// trace). `url` is absent for destinations that are not HTTP.
    pub fn attempt_span(
        &self,
        event: &Event,
        destination: &str,
        url: Option<&http::Uri>,
        attempt: u32,
        delay_ms: u64,
    ) -> TraceSpan {
        if !self.tracing() {
            return TraceSpan(None);
        }
        let mut attrs = vec![
            system(),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.operation.name", "deliver"),
            KeyValue::new("messaging.destination.name", destination.to_owned()),
            KeyValue::new("messaging.message.id", event.id.to_string()),
            KeyValue::new("switchyard.topic", event.topic.clone()),
            KeyValue::new("switchyard.delivery.attempt", i64::from(attempt)),
            KeyValue::new("switchyard.delivery.delay_ms", delay_ms as i64),
        ];
        if attempt > 1 {
            attrs.push(KeyValue::new(
                "http.request.resend_count",
                i64::from(attempt - 1),
            ));
        }
        if let Some(u) = url {
            attrs.push(KeyValue::new("http.request.method", "POST"));
            // Without the query: it may hold a token.
            let host = u.host().unwrap_or("");
            let port = u.port_u16().unwrap_or(if u.scheme_str() == Some("https") {
                443
            } else {
                80
            });
            attrs.push(KeyValue::new(
                "url.full",
                format!(
                    "{}://{}{}",
                    u.scheme_str().unwrap_or("http"),
                    u.authority().map(|a| a.as_str()).unwrap_or(host),
                    u.path()
                ),
            ));
            attrs.push(KeyValue::new("server.address", host.to_owned()));
            attrs.push(KeyValue::new("server.port", i64::from(port)));
        }
        self.span(
            format!("send {destination}"),
            SpanKind::Client,
            &context::from_meta(&event.meta),
            attrs,
            Vec::new(),
        )
    }

    /// Closes an attempt: its answer and outcome on the span, the attempt
    /// and latency metrics, and a dead-letter span if that is where it ends.
    pub fn attempt_done(
        &self,
        span: TraceSpan,
        event: &Event,
        destination: &str,
        attempt: u32,
        answer: &AttemptReport,
        decision: &AttemptOutcome,
    ) {
        let outcome = decision.label();
        self.metrics
            .attempt(destination, outcome, answer.latency.as_secs_f64());
        if answer.refused {
            self.metrics
                .delivery_refused
                .get_or_create(&super::metrics::DestLabel {
                    destination: destination.to_owned(),
                })
                .inc();
        }
        if !self.tracing() {
            return;
        }
        let r = answer;
        if let Some(s) = r.status {
            span.set(KeyValue::new("http.response.status_code", i64::from(s)));
        }
        span.set(KeyValue::new("switchyard.delivery.outcome", outcome));
        if let AttemptOutcome::Retry { after } = decision {
            span.set(KeyValue::new(
                "switchyard.delivery.retry_in_ms",
                after.as_millis() as i64,
            ));
        }
        let failed = match (r.status, &r.error) {
            (_, Some(e)) => Some((
                if r.refused {
                    "refused"
                } else if e.contains("timed out") {
                    "timeout"
                } else {
                    "transport"
                }
                .to_owned(),
                e.clone(),
            )),
            (Some(s), None) if s >= 300 => Some((s.to_string(), format!("answered {s}"))),
            _ => None,
        };
        if let Some((kind, message)) = failed {
            span.set(KeyValue::new("error.type", kind));
            span.set(KeyValue::new("switchyard.delivery.error", message.clone()));
            span.error(message);
        }
        span.end();
        if let AttemptOutcome::DeadLetter { reason } = decision {
            self.dead_letter_span(event, destination, reason, attempt);
        }
    }

    /// Dead-lettering of `event` at `destination` (a span that ends at once).
    pub fn dead_letter_span(&self, event: &Event, destination: &str, reason: &str, attempts: u32) {
        if !self.tracing() {
            return;
        }
        let span = self.span(
            format!("dead-letter {destination}"),
            SpanKind::Internal,
            &context::from_meta(&event.meta),
            vec![
                system(),
                KeyValue::new("messaging.operation.type", "settle"),
                KeyValue::new("messaging.operation.name", "dead_letter"),
                KeyValue::new("messaging.destination.name", destination.to_owned()),
                KeyValue::new("messaging.message.id", event.id.to_string()),
                KeyValue::new("switchyard.dead_letter.reason", reason.to_owned()),
                KeyValue::new("switchyard.delivery.attempts", i64::from(attempts)),
            ],
            Vec::new(),
        );
        span.error(reason.to_owned());
        span.end();
    }

    /// A pull consumer's receive of `event` from `destination`: a CLIENT
    /// span in the event's trace (pull receives are client operations in the
    /// messaging conventions), from `started` (before the lease was written)
    /// to now. The consumer gets this span's context to continue the trace.
    pub fn receive_span(
        &self,
        event: &Event,
        destination: &str,
        attempt: u32,
        started: std::time::SystemTime,
    ) -> TraceSpan {
        let Some(tracer) = self.tracer() else {
            return TraceSpan(None);
        };
        let span = tracer
            .span_builder(format!("receive {destination}"))
            .with_kind(SpanKind::Client)
            .with_start_time(started)
            .with_attributes(vec![
                system(),
                KeyValue::new("messaging.operation.type", "receive"),
                KeyValue::new("messaging.operation.name", "receive"),
                KeyValue::new("messaging.destination.name", destination.to_owned()),
                KeyValue::new("messaging.message.id", event.id.to_string()),
                KeyValue::new("switchyard.topic", event.topic.clone()),
                KeyValue::new("switchyard.delivery.attempt", i64::from(attempt)),
            ])
            .start_with_context(&tracer, &context::from_meta(&event.meta));
        TraceSpan(Some(Context::new().with_span(span)))
    }

    /// A pull consumer settling `event`: `ack` or `nack` (a CLIENT span,
    /// `messaging.operation.type = settle`, that ends at once).
    pub fn settle_span(&self, event: &Event, destination: &str, operation: &'static str) {
        if !self.tracing() {
            return;
        }
        self.span(
            format!("{operation} {destination}"),
            SpanKind::Client,
            &context::from_meta(&event.meta),
            vec![
                system(),
                KeyValue::new("messaging.operation.type", "settle"),
                KeyValue::new("messaging.operation.name", operation),
                KeyValue::new("messaging.destination.name", destination.to_owned()),
                KeyValue::new("messaging.message.id", event.id.to_string()),
            ],
            Vec::new(),
        )
        .end();
    }

    /// Starts the spans of one router batch: see [`Routing`].
    pub fn start_routing(&self, batch: &[Event]) -> Routing {
        let mut topics: Vec<(String, u64)> = Vec::new();
        for e in batch {
            match topics.iter_mut().find(|(t, _)| *t == e.topic) {
                Some((_, n)) => *n += 1,
                None => topics.push((e.topic.clone(), 1)),
            }
        }
        if !self.tracing() || batch.is_empty() {
            return Routing {
                topics,
                ..Routing::default()
            };
        }
        let parents: Vec<Context> = batch.iter().map(|e| context::from_meta(&e.meta)).collect();
        let links = parents
            .iter()
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid())
            .map(Link::with_context)
            .collect();
        let batch_span = self.span(
            "process".to_owned(),
            SpanKind::Consumer,
            &Context::new(),
            vec![
                system(),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", "route"),
                KeyValue::new("messaging.batch.message_count", batch.len() as i64),
            ],
            links,
        );
        let back = batch_span
            .context()
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid());
        let events = batch
            .iter()
            .zip(&parents)
            .map(|(e, parent)| {
                // An event stored without a trace context (ingested while
                // tracing was off) gets no span of its own: it would be a
                // trace of one span.
                if !parent.span().span_context().is_valid() {
                    return (e.id, TraceSpan(None));
                }
                let span = self.span(
                    format!("process {}", e.topic),
                    SpanKind::Consumer,
                    parent,
                    vec![
                        system(),
                        KeyValue::new("messaging.operation.type", "process"),
                        KeyValue::new("messaging.operation.name", "route"),
                        KeyValue::new("messaging.destination.name", e.topic.clone()),
                        KeyValue::new("messaging.message.id", e.id.to_string()),
                    ],
                    back.iter().cloned().map(Link::with_context).collect(),
                );
                (e.id, span)
            })
            .collect();
        Routing {
            batch: batch_span,
            events,
            topics,
        }
    }
}

/// The spans of one router batch: the batch span and each event's
/// `process` span. Made before the plugin chain runs, ended once the
/// routing is written.
#[derive(Default)]
pub struct Routing {
    batch: TraceSpan,
    events: Vec<(Ulid, TraceSpan)>,
    /// Events per topic in the batch, counted once the routing is written.
    topics: Vec<(String, u64)>,
}

impl Routing {
    /// A span for one plugin's run over this batch, under the batch span.
    /// The router calls it around each plugin of a topic's chain and ends
    /// it (with `error()` on failure) when the plugin returns.
    pub fn plugin_run(&self, telemetry: &Telemetry, plugin: &str, events: usize) -> TraceSpan {
        let Some(parent) = self.batch.context() else {
            return TraceSpan(None);
        };
        telemetry.span(
            format!("plugin {plugin}"),
            SpanKind::Internal,
            parent,
            vec![
                system(),
                KeyValue::new("switchyard.plugin.name", plugin.to_owned()),
                KeyValue::new("messaging.batch.message_count", events as i64),
            ],
            Vec::new(),
        )
    }

    /// Notes where each event went.
    pub fn record(&self, routed: &[Routed]) {
        if self.events.is_empty() {
            return;
        }
        for r in routed {
            let Some((_, span)) = self.events.iter().find(|(id, _)| *id == r.event_id) else {
                continue;
            };
            let routes: Vec<opentelemetry::StringValue> = r
                .entries
                .iter()
                .map(|e| e.destination.clone().into())
                .collect();
            span.set(KeyValue::new(
                "switchyard.routes",
                opentelemetry::Value::Array(routes.into()),
            ));
            if let Some((_, dlq)) = &r.topic_dead_letter {
                span.set(KeyValue::new(
                    "switchyard.dead_letter.reason",
                    dlq.error.clone(),
                ));
                span.error(format!("dead-lettered: {}", dlq.error));
            }
        }
    }

    /// Ends every span; `error` if the routing write failed (the batch is
    /// then routed again, under new spans).
    pub fn end(self, telemetry: &Telemetry, error: Option<&str>) {
        match error {
            Some(e) => self.batch.error(e.to_owned()),
            None => {
                for (topic, n) in &self.topics {
                    telemetry
                        .metrics
                        .routed_events
                        .get_or_create(&super::metrics::TopicLabel {
                            topic: topic.clone(),
                        })
                        .inc_by(*n);
                }
            }
        }
        for (_, s) in self.events {
            if let Some(e) = error {
                s.error(e.to_owned());
            }
            s.end();
        }
        self.batch.end();
    }
}

/// Names the ingested event(s) on the current (ingest) span.
pub(super) fn note_ingested(ids: &[Ulid], duplicate: bool) {
    let cx = Context::current();
    let span = cx.span();
    if ids.len() == 1 {
        span.set_attribute(KeyValue::new("messaging.message.id", ids[0].to_string()));
    } else {
        span.set_attribute(KeyValue::new(
            "messaging.batch.message_count",
            ids.len() as i64,
        ));
    }
    if duplicate {
        span.set_attribute(KeyValue::new("switchyard.duplicate", true));
    }
}

/// The SERVER span of an ingest request to `topic`, or `None` when tracing
/// is off. `route` is the matched route template, `client` the peer.
pub fn ingest<B>(
    telemetry: &Telemetry,
    req: &http::Request<B>,
    route: &str,
    client: Option<std::net::IpAddr>,
    topic: &str,
) -> Option<TraceSpan> {
    if !telemetry.tracing() {
        return None;
    }
    let route = route.to_owned();
    let mut attrs = vec![
        system(),
        KeyValue::new("messaging.operation.type", "send"),
        KeyValue::new("messaging.operation.name", "publish"),
        KeyValue::new("messaging.destination.name", topic.to_owned()),
        KeyValue::new("http.request.method", req.method().as_str().to_owned()),
        KeyValue::new("http.route", route.clone()),
        KeyValue::new("url.path", req.uri().path().to_owned()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new(
            "network.protocol.version",
            match req.version() {
                http::Version::HTTP_2 => "2",
                http::Version::HTTP_10 => "1.0",
                _ => "1.1",
            },
        ),
    ];
    if let Some(ip) = client {
        attrs.push(KeyValue::new("client.address", ip.to_string()));
    }
    if let Some(ua) = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attrs.push(KeyValue::new("user_agent.original", ua.to_owned()));
    }
    let parent = context::extract(req.headers());
    Some(telemetry.span(
        format!("{} {route}", req.method()),
        SpanKind::Server,
        &parent,
        attrs,
        Vec::new(),
    ))
}
