//! The HTTP side of telemetry: what the ingest handlers run inside (the SERVER span,
//! the latency histogram, refusal counts) and `GET /metrics`, which reads
//! each level from its owner and has `switchyard-telemetry` render it.

use std::future::Future;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use opentelemetry::context::FutureExt;
use switchyard_telemetry::metrics::{
    DestinationLevels, Levels, PluginTotals, PullTotals, TopicLabel,
};
use switchyard_telemetry::spans;

use super::error::{ErrorCode, code_for};
use super::{ApiError, App};

/// What each ingest handler runs inside: the topic's token check, the
/// SERVER span (child of the sender's `traceparent`), made current while the
/// handler runs so the event stores this span's context; the latency
/// histogram; and the count of refusals, by the error code the client got.
/// A function the handlers call rather than a layer, because every layer
/// costs every request a boxed service and future.
pub async fn ingest<F, Fut>(app: &App, topic: &str, req: Request, handler: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let started = Instant::now();
    // Label by topic only if it is configured: user input must not become
    // label values.
    let label = if app.config.topic(topic).is_some() {
        topic
    } else {
        ""
    };
    let tel = &app.telemetry;
    let span = {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path(), |m| m.as_str());
        let client = req
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        // `None` at once when tracing is off.
        spans::ingest(tel, &req, route, client, label)
    };
    let work = async move {
        if let Some(refused) = crate::auth::layer::publish_refusal(&app.auth, &req, topic) {
            return refused;
        }
        handler(req)
            .await
            .unwrap_or_else(IntoResponse::into_response)
    };
    let resp = match span {
        Some(span) => {
            let cx = span.context().cloned().unwrap_or_default();
            let resp = work.with_context(cx).await;
            span.finish_server(resp.status());
            resp
        }
        None => work.await,
    };
    let status = resp.status();
    tel.metrics
        .ingest_duration
        .get_or_create(&TopicLabel {
            topic: label.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
    if !status.is_success() {
        let code = resp
            .extensions()
            .get::<ErrorCode>()
            .map_or_else(|| code_for(status), |c| c.0);
        tel.metrics.ingested(label, code, 1);
    }
    resp
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<App>) -> Response {
    let levels = levels(&app).await;
    let body = app.telemetry.metrics.render(&levels);
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Every level `/metrics` shows, from the part that owns it.
async fn levels(app: &App) -> Levels {
    let destinations = match app.delivery.stats().await {
        Ok(stats) => stats
            .into_iter()
            .map(|s| DestinationLevels {
                name: s.name,
                queue_depth: s.queue_depth,
                depth_by_priority: s.depth_by_priority,
                in_flight: s.in_flight,
                oldest_pending_age_seconds: s.oldest_pending_age_seconds,
                dlq_depth: s.dlq_depth,
                delayed: s.delayed,
                blocked_keys: s.blocked_keys,
                pull: s.pull.map(|p| PullTotals {
                    receives: p.receives,
                    acks: p.acks,
                    nacks: p.nacks,
                    lease_expiries: p.lease_expiries,
                }),
                circuit: s.circuit.map(|c| match c {
                    switchyard_delivery::breaker::State::Closed => 0,
                    switchyard_delivery::breaker::State::HalfOpen => 1,
                    switchyard_delivery::breaker::State::Open => 2,
                }),
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read destination stats for /metrics.");
            Vec::new()
        }
    };
    let plugins = app
        .plugins
        .as_ref()
        .map(|host| {
            host.statuses()
                .into_iter()
                .map(|s| PluginTotals {
                    seconds: s.avg_us_per_event * s.invocations as f64 / 1e6,
                    name: s.name,
                    invocations: s.invocations,
                    errors: s.errors,
                    traps: s.traps,
                    quarantined: s.quarantined,
                })
                .collect()
        })
        .unwrap_or_default();
    Levels {
        store_disk_bytes: app.store.disk_space(),
        free_disk_bytes: fs4::available_space(&app.config.server.data_dir).ok(),
        min_free_disk_bytes: app.config.server.min_free_disk.as_u64(),
        destinations,
        plugins,
    }
}
