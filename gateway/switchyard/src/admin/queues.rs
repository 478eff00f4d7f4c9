//! The pull-consumer API: `POST /v1/queues/{name}/receive | ack | nack | extend`.
//!
//! Bodies are JSON; every field is optional where it can be. Ranges are
//! checked here so a consumer gets a clear 400 instead of a surprise.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::http::{ApiError, App};
use switchyard_delivery::Destination;
use switchyard_delivery::DestinationKind;

/// Longest long-poll, like SQS.
const MAX_WAIT_SECONDS: u64 = 20;
/// Longest visibility timeout: 12 hours, like SQS.
const MAX_VISIBILITY_SECONDS: u64 = 12 * 3600;

/// The pull routes; each needs a `consume:NAME` (or `admin`) token.
pub fn routes(auth: &std::sync::Arc<crate::auth::Auth>) -> axum::Router<App> {
    axum::Router::new()
        .route("/v1/queues/{name}/receive", post(receive))
        .route("/v1/queues/{name}/ack", post(ack))
        .route("/v1/queues/{name}/nack", post(nack))
        .route("/v1/queues/{name}/extend", post(extend))
        .route_layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            crate::auth::layer::require_consume,
        ))
}

fn queue(app: &App, name: &str) -> Result<std::sync::Arc<Destination>, ApiError> {
    match app.delivery.destination(name) {
        Some(d) if d.config.kind == DestinationKind::Pull => Ok(d),
        Some(_) => Err(ApiError::not_found(
            "unknown_queue",
            format!("destination {name:?} is not of kind \"pull\""),
        )),
        None => Err(ApiError::not_found(
            "unknown_queue",
            format!("no pull destination named {name:?}"),
        )),
    }
}

fn in_range(name: &str, v: u64, lo: u64, hi: u64) -> Result<u64, ApiError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::malformed(format!(
            "{name} must be between {lo} and {hi}, got {v}"
        )))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReceiveBody {
    max_messages: Option<u64>,
    wait_seconds: Option<u64>,
    visibility_timeout_seconds: Option<u64>,
}

async fn receive(
    State(app): State<App>,
    Path(name): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let d = queue(&app, &name)?;
    let req: ReceiveBody = super::json_body(&b)?;
    let max = in_range("max_messages", req.max_messages.unwrap_or(1), 1, 100)?;
    let wait = in_range(
        "wait_seconds",
        req.wait_seconds.unwrap_or(0),
        0,
        MAX_WAIT_SECONDS,
    )?;
    let vt = match req.visibility_timeout_seconds {
        Some(v) => Duration::from_secs(in_range(
            "visibility_timeout_seconds",
            v,
            1,
            MAX_VISIBILITY_SECONDS,
        )?),
        None => d.config.visibility_timeout,
    };
    let got = app
        .delivery
        .receive(&d, max as usize, Duration::from_secs(wait), vt)
        .await?;
    let messages: Vec<serde_json::Value> = got
        .into_iter()
        .map(|m| {
            let mut v = json!({
                "id": m.event.id.to_string(),
                "receipt": m.receipt,
                "attempt": m.attempt,
                "topic": m.event.topic,
                "received_at": switchyard_core::event::rfc3339(m.event.received_at_ms),
                "content_type": m.content_type,
                "headers": m.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            });
            if let Some((traceparent, tracestate)) = &m.trace {
                v["traceparent"] = json!(traceparent);
                if let Some(ts) = tracestate {
                    v["tracestate"] = json!(ts);
                }
            }
            match std::str::from_utf8(&m.body) {
                Ok(text) => v["body"] = json!(text),
                Err(_) => {
                    v["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&m.body))
                }
            }
            v
        })
        .collect();
    Ok(axum::Json(json!({ "messages": messages })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReceiptsBody {
    #[serde(default)]
    receipts: Vec<String>,
    delay_seconds: Option<u64>,
    visibility_timeout_seconds: Option<u64>,
}

fn receipts(req: &ReceiptsBody) -> Result<(), ApiError> {
    if req.receipts.is_empty() || req.receipts.len() > 100 {
        return Err(ApiError::malformed("receipts must list 1 to 100 receipts"));
    }
    Ok(())
}

fn answer(results: Vec<switchyard_delivery::pull::ReceiptResult>) -> Response {
    axum::Json(json!({ "results": results })).into_response()
}

async fn ack(
    State(app): State<App>,
    Path(name): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let d = queue(&app, &name)?;
    let req: ReceiptsBody = super::json_body(&b)?;
    receipts(&req)?;
    Ok(answer(app.delivery.ack(&d, &req.receipts).await?))
}

async fn nack(
    State(app): State<App>,
    Path(name): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let d = queue(&app, &name)?;
    let req: ReceiptsBody = super::json_body(&b)?;
    receipts(&req)?;
    let delay = in_range(
        "delay_seconds",
        req.delay_seconds.unwrap_or(0),
        0,
        MAX_VISIBILITY_SECONDS,
    )?;
    Ok(answer(
        app.delivery
            .nack(&d, &req.receipts, Duration::from_secs(delay))
            .await?,
    ))
}

async fn extend(
    State(app): State<App>,
    Path(name): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let d = queue(&app, &name)?;
    let req: ReceiptsBody = super::json_body(&b)?;
    receipts(&req)?;
    let vt = match req.visibility_timeout_seconds {
        Some(v) => Duration::from_secs(in_range(
            "visibility_timeout_seconds",
            v,
            1,
            MAX_VISIBILITY_SECONDS,
        )?),
        None => d.config.visibility_timeout,
    };
    Ok(answer(app.delivery.extend(&d, &req.receipts, vt).await?))
}
