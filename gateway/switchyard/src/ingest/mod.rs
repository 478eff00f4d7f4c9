//! HTTP ingest: routes, limits, idempotency, signature verification.
//!
//! A request is answered 202 only once its events are durable (the store's
//! group commit). Everything that can refuse an event — unknown topic, size,
//! a full disk or backlog, a malformed batch — refuses before the write, so a
//! 4xx/5xx means nothing was kept and a 2xx means it was.

pub mod batch;
pub mod limits;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use switchyard_core::{EventMeta, NewEvent};
use switchyard_signatures::Verifier;
use switchyard_store::{Appended, Routing};

use crate::config::TopicConfig;
use crate::http::observe;
use crate::http::{ApiError, App};

/// Longest accepted idempotency key, in bytes.
const MAX_IDEMPOTENCY_KEY: usize = 256;

/// Headers never kept with an event: hop-by-hop ones, and credentials that
/// must not end up in the store or be forwarded.
const DROPPED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    // The stored payload is always decoded (gzip is undone at ingest).
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-authorization",
    "proxy-connection",
    "authorization",
    "cookie",
];

/// `POST /v1/topics/{topic}/events`: one event, any content type.
pub async fn publish(State(app): State<App>, Path(topic): Path<String>, req: Request) -> Response {
    observe::ingest(&app, &topic, req, |req| publish_one(&app, &topic, req)).await
}

async fn publish_one(app: &App, topic: &str, req: Request) -> Result<Response, ApiError> {
    let t = admit(app, topic)?;
    let limit = body_limit(app, t);
    // The request's own headers, not a copy (an extractor would clone them).
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let payload = read_body(body, headers, limit).await?;
    check_signature(app, &t.name, headers, &payload)?;
    // After the signature: unsigned traffic must not use up the topic's rate.
    app.topic_limits.check(&t.name, 1)?;
    let key = idempotency_key(headers)?;
    let mut meta = event_meta(headers);
    if let Some(schema) = &t.schema {
        let v = validate(app, schema, &meta.content_type, &payload)
            .await
            .map_err(|e| e.into_api(None))?;
        meta.attributes.extend(schema_attributes(&v));
    }
    let outcome = app
        .store
        .append(
            &t.name,
            key,
            t.idempotency_window,
            vec![NewEvent {
                meta,
                payload: payload.clone(),
            }],
            routing(t),
        )
        .await?;
    handed_over(app, t, &outcome);
    Ok(match outcome {
        Appended::New { ids, .. } => {
            let id = ids.first().map(|i| i.to_string()).unwrap_or_default();
            // An id is Crockford base32: nothing in it needs escaping, and
            // the answer needs no JSON value built and serialised.
            json_answer(StatusCode::ACCEPTED, format!("{{\"id\":\"{id}\"}}"))
        }
        Appended::Duplicate { ids } => {
            let differs = body_differs(app, &t.name, &ids, &[payload]).await?;
            let id = ids.first().map(|i| i.to_string()).unwrap_or_default();
            let mut answer = json!({ "id": id, "duplicate": true });
            if differs {
                answer["body_differs"] = json!(true);
            }
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
    })
}

/// `POST /v1/topics/{topic}/events/batch`: a JSON array or NDJSON; all or nothing.
pub async fn publish_batch(
    State(app): State<App>,
    Path(topic): Path<String>,
    req: Request,
) -> Response {
    observe::ingest(&app, &topic, req, |req| publish_many(&app, &topic, req)).await
}

async fn publish_many(app: &App, topic: &str, req: Request) -> Result<Response, ApiError> {
    let t = admit(app, topic)?;
    let limit = body_limit(app, t);
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let format = batch::Format::from_content_type(content_type(headers).as_deref())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "a batch is a JSON array (content-type: application/json) or NDJSON (content-type: application/x-ndjson)",
            )
        })?;
    let raw = read_body(body, headers, limit).await?;
    check_signature(app, &t.name, headers, &raw)?;
    let items = batch::split(&raw, format)
        .map_err(|e| ApiError::malformed(e.message).with("index", e.index))?;
    app.topic_limits.check(&t.name, items.len())?;
    let key = idempotency_key(headers)?;
    let mut meta = event_meta(headers);
    // Each element is a JSON value of its own, whatever the envelope was.
    meta.content_type = "application/json".to_owned();
    let mut validated = Vec::new();
    if let Some(schema) = &t.schema {
        for (index, item) in items.iter().enumerate() {
            let v = validate(app, schema, &meta.content_type, item)
                .await
                .map_err(|e| e.into_api(Some(index)))?;
            validated.push(schema_attributes(&v));
        }
    }
    let payloads = items.clone();
    let events = items
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut meta = meta.clone();
            if let Some(attrs) = validated.get(i) {
                meta.attributes.extend(attrs.iter().cloned());
            }
            NewEvent { meta, payload }
        })
        .collect();
    let outcome = app
        .store
        .append(&t.name, key, t.idempotency_window, events, routing(t))
        .await?;
    handed_over(app, t, &outcome);
    Ok(match outcome {
        Appended::New { ids, .. } => {
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            (StatusCode::ACCEPTED, axum::Json(json!({ "ids": ids }))).into_response()
        }
        Appended::Duplicate { ids } => {
            let differs = body_differs(app, &t.name, &ids, &payloads).await?;
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let mut answer = json!({ "ids": ids, "duplicate": true });
            if differs {
                answer["body_differs"] = json!(true);
            }
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
    })
}

/// A JSON answer from text already JSON.
fn json_answer(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A topic with neither routes nor plugins has nothing for the router to
/// decide: its events are stored and finished.
fn routing(t: &TopicConfig) -> Routing {
    if t.routes.is_empty() && t.plugins.is_empty() {
        Routing::Nowhere
    } else {
        Routing::Pending
    }
}

/// Whether a duplicate's payloads differ from those first accepted under
/// its idempotency key: a reused key with another body is most likely a
/// sender's bug, so it is said in the answer and counted (nothing is stored
/// either way). Events removed since by retention are not compared.
async fn body_differs(
    app: &App,
    topic: &str,
    first: &[switchyard_core::EventId],
    payloads: &[bytes::Bytes],
) -> Result<bool, ApiError> {
    let mut differs = first.len() != payloads.len();
    for (id, payload) in first.iter().zip(payloads) {
        if differs {
            break;
        }
        if let Some(e) = app.store.event(*id).await? {
            differs = e.payload != *payload;
        }
    }
    if differs {
        app.telemetry.metrics.idempotency_conflict(topic);
        tracing::warn!(
            topic,
            first_id = %first.first().map(|i| i.to_string()).unwrap_or_default(),
            "An idempotency key was reused with a different body; answered as a duplicate."
        );
    }
    Ok(differs)
}

/// The event(s) are stored: hand them to the router, and count them.
fn handed_over(app: &App, t: &TopicConfig, outcome: &Appended) {
    // Events stored as routed nowhere are not waiting for the router:
    // waking it would cost a scan that finds nothing.
    if matches!(outcome, Appended::New { .. }) && routing(t) == Routing::Pending {
        app.handoff.appended();
    }
    app.telemetry.ingested(&t.name, outcome);
}

/// The checks that come before reading the body: does the topic exist, and
/// is there room to take more?
fn admit<'a>(app: &'a App, topic: &str) -> Result<&'a TopicConfig, ApiError> {
    let t = app
        .config
        .topic(topic)
        .ok_or_else(|| ApiError::not_found("unknown_topic", format!("no topic named {topic:?}")))?;
    if app.health.disk_low() {
        return Err(ApiError::unavailable(
            "free disk space is below server.min_free_disk; events are refused until space returns",
            30,
        ));
    }
    if let Some(max) = app.config.server.max_backlog {
        let backlog = app.delivery.backlog();
        if backlog >= max {
            return Err(ApiError::unavailable(
                format!(
                    "the delivery backlog ({backlog} entries) is over server.max_backlog ({max})"
                ),
                5,
            ));
        }
    }
    Ok(t)
}

/// A payload the topic's schema refused.
struct Refused(switchyard_registry::ValidationError);

impl Refused {
    /// 415 for a content type the registry can't read, 422 for the rest; in
    /// a batch, `index` names the element.
    fn into_api(self, index: Option<usize>) -> ApiError {
        use switchyard_registry::ValidationError as V;
        let message = self.0.to_string();
        let mut err = match &self.0 {
            V::UnsupportedMediaType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            ),
            V::Mismatch {
                path,
                expected,
                keyword,
                ..
            } => {
                let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "schema_mismatch", message)
                    .with("path", path.clone())
                    .with("expected", expected.clone());
                match keyword {
                    Some(k) => e.with("keyword", k.clone()),
                    None => e,
                }
            }
            _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "schema_mismatch", message),
        };
        if let Some(i) = index {
            err = err.with("index", i);
        }
        err
    }
}

/// Validates one payload. On a store other gateways share, a schema this
/// gateway does not know yet (the subject's first version, or the id in a
/// wire-format header, registered through another gateway a moment ago)
/// is looked for again after loading what changed.
async fn validate(
    app: &App,
    schema: &switchyard_registry::SchemaRef,
    content_type: &str,
    body: &[u8],
) -> Result<switchyard_registry::Validated, Refused> {
    use switchyard_registry::ValidationError as V;
    match app.registry.validate_ref(schema, content_type, body) {
        Err(V::NoSchema { .. } | V::UnknownSchemaId(_)) if app.store.shared() => {
            let core = app.registry.core().clone();
            let _ = tokio::task::spawn_blocking(move || core.sync()).await;
            app.registry
                .validate_ref(schema, content_type, body)
                .map_err(Refused)
        }
        r => r.map_err(Refused),
    }
}

/// What validation tells plugins and operators about an event.
fn schema_attributes(v: &switchyard_registry::Validated) -> Vec<(String, String)> {
    let mut a = vec![
        ("schema.subject".to_owned(), v.subject.clone()),
        ("schema.id".to_owned(), v.schema_id.to_string()),
        ("schema.version".to_owned(), v.version.to_string()),
    ];
    if let Some(w) = v.writer_schema_id {
        a.push(("schema.writer_id".to_owned(), w.to_string()));
    }
    a
}

/// Builds each topic's signature verifier once, at start.
pub fn verifiers(
    config: &crate::config::Config,
) -> Result<std::collections::HashMap<String, Verifier>, crate::Error> {
    let mut out = std::collections::HashMap::new();
    for t in &config.topics {
        if let Some(v) = &t.verify {
            let verifier = Verifier::new(v).map_err(|message| crate::Error::Verify {
                topic: t.name.clone(),
                message,
            })?;
            out.insert(t.name.clone(), verifier);
        }
    }
    Ok(out)
}

/// Checks the sender's signature on the raw body, before anything parses
/// it. With `Content-Encoding: gzip` that is the decompressed body: the
/// sender signs its payload, the compression belongs to the transport. A
/// failure is 401 with a reason that helps the sender (which header, how
/// far off the clock is) and never echoes a secret.
fn check_signature(
    app: &App,
    topic: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let Some(v) = app.verifiers.get(topic) else {
        return Ok(());
    };
    v.verify(headers, body, std::time::SystemTime::now())
        .map_err(|e| {
            tracing::info!(topic, scheme = %v.scheme(), reason = e.reason_code(), "Signature check failed; event refused.");
            app.telemetry.metrics.signature_failure(topic, e.reason_code());
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("{} signature check failed: {e}", v.scheme()),
            )
            .with("reason", e.reason_code())
        })
}

fn body_limit(app: &App, t: &TopicConfig) -> u64 {
    t.max_body.unwrap_or(app.config.server.max_body).as_u64()
}

/// Reads the whole body, refusing (413) as soon as it passes `limit`. A
/// `Content-Encoding: gzip` body is decompressed, and `limit` applies to
/// what was sent and again to what it decompresses to; any other encoding
/// is 415. A body that stops arriving is 408 (`server.body_read_timeout`).
pub async fn read_body(body: Body, headers: &HeaderMap, limit: u64) -> Result<Bytes, ApiError> {
    let coding = limits::coding(headers)?;
    let raw = read_raw(body, headers, limit).await?;
    match coding {
        limits::Coding::Identity => Ok(raw),
        // Small bodies decompress in microseconds; big ones off the workers.
        limits::Coding::Gzip if raw.len() <= 64 * 1024 => limits::gunzip(&raw, limit),
        limits::Coding::Gzip => tokio::task::spawn_blocking(move || limits::gunzip(&raw, limit))
            .await
            .map_err(|e| ApiError::internal(format!("decompressing the body failed: {e}")))?,
    }
}

async fn read_raw(body: Body, headers: &HeaderMap, limit: u64) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(ApiError::too_large(limit));
    }
    let limited = http_body_util::Limited::new(body, limit as usize);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(e) if crate::http::listener::BodyTimedOut::is_cause_of(&*e) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::malformed(format!("could not read the body: {e}"))),
    }
}

/// `Idempotency-Key` wins over `webhook-id` (what Standard Webhooks senders set).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let raw = headers
        .get("idempotency-key")
        .or_else(|| headers.get("webhook-id"));
    let Some(raw) = raw else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .map_err(|_| ApiError::malformed("the idempotency key must be visible ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::malformed(format!(
            "the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} bytes"
        )));
    }
    Ok(Some(key.to_owned()))
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// What of the request is kept with the event.
fn event_meta(headers: &HeaderMap) -> EventMeta {
    let mut kept = Vec::new();
    for (name, value) in headers {
        let n = name.as_str();
        if DROPPED_HEADERS.contains(&n) || n == "content-type" {
            continue;
        }
        if let Ok(v) = value.to_str() {
            kept.push((n.to_owned(), v.to_owned()));
        }
    }
    let get = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut meta = EventMeta {
        content_type: content_type(headers)
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        headers: kept,
        attributes: Vec::new(),
        idempotency_key: None,
        traceparent: get("traceparent"),
        tracestate: get("tracestate"),
    };
    // With tracing on, later spans hang under the ingest span, not directly
    // under the sender's: store that span's context (same trace id).
    switchyard_telemetry::context::stamp_current(&mut meta);
    meta
}
