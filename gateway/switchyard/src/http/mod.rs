//! The HTTP side: shared state for handlers, the router, and the pieces
//! every route shares.
//!
//! - [`http_router`]: every route of the API as a plain router, so tests can
//!   call it without a socket.
//! - `error`: [`ApiError`], the one place failures become answers, and
//!   [`rewrite_plain_errors`] for axum's plain-text refusals.
//! - [`listener`]: accepting connections: TLS, limits, slow clients, the
//!   graceful stop.
//! - `observe`: the ingest telemetry layer and `GET /metrics`.
//! - [`csrf`]: the guard that keeps a web page in the operator's browser
//!   from changing state (cross-origin and form-style writes get 403).

pub mod csrf;
mod error;
pub mod listener;
pub(crate) mod observe;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::routing::{get, post};
use switchyard_delivery::Delivery;
use switchyard_plugin_host::PluginHost;
use switchyard_registry::Registry;
use switchyard_signatures::Verifier;
use switchyard_store::SharedStore;
use switchyard_telemetry::Telemetry;

pub use error::{ApiError, ErrorCode, code_for, rewrite_plain_errors};

use crate::auth::Auth;
use crate::config::Config;
use crate::ingest::limits::TopicLimits;
use crate::router::Handoff;

/// Liveness facts that gate ingest.
#[derive(Debug, Default)]
pub struct Health {
    disk_low: AtomicBool,
    ready: AtomicBool,
}

impl Health {
    pub fn disk_low(&self) -> bool {
        self.disk_low.load(Ordering::Acquire)
    }

    /// Sets the low-disk flag; whether it was set before.
    pub fn set_disk_low(&self, low: bool) -> bool {
        self.disk_low.swap(low, Ordering::AcqRel)
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// What every request handler can reach.
pub struct AppInner {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub delivery: Arc<Delivery>,
    pub health: Arc<Health>,
    /// Where ingest hands stored events to the router.
    pub handoff: Handoff,
    /// Signature checks per topic, built once from the config.
    pub verifiers: HashMap<String, Verifier>,
    /// This gateway's tracer and metrics (never process-global).
    pub telemetry: Arc<Telemetry>,
    /// The Wasm plugin host, when the config names plugins.
    pub plugins: Option<Arc<PluginHost>>,
    /// The schema registry (served under `/registry`, used by ingest).
    pub registry: Registry,
    /// API tokens and the access decisions the route guards ask for.
    pub auth: Arc<Auth>,
    /// Per-topic ingest rate limits (`rate_limit`).
    pub topic_limits: TopicLimits,
    /// Asks the gateway to reload its config (`POST /v1/admin/reload`).
    pub reload: crate::reload::Reload,
    /// The last minutes of rates and levels, for the console's charts.
    pub series: Arc<crate::admin::series::Series>,
}

/// Shared state handed to handlers (cheap to clone).
#[derive(Clone)]
pub struct App(pub Arc<AppInner>);

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The OpenAPI 3.1 document of this API, kept in `docs/` beside the prose
/// reference and embedded so the binary serves the one it was built with.
/// `tests/tests/e2e/openapi.rs` checks it against the router both ways.
const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// `GET /openapi.json`: open like `/healthz`, since it says nothing about
/// this gateway's config, only what the code serves.
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// The HTTP API as a plain router, so tests can call it without a socket.
pub fn http_router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/v1/topics/{topic}/events", post(crate::ingest::publish))
        .route(
            "/v1/topics/{topic}/events/batch",
            post(crate::ingest::publish_batch),
        )
        .route("/metrics", get(observe::metrics))
        .merge(crate::admin::routes(&app.auth))
        // Confluent-compatible: a client's base URL is http://host:port/registry.
        // Writes need an admin token; reads stay open.
        .nest_service(
            "/registry",
            crate::registry_api::router(app.registry.core().clone()).layer(
                axum::middleware::from_fn_with_state(
                    app.auth.clone(),
                    crate::auth::layer::guard_registry,
                ),
            ),
        )
        .merge(crate::console::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint") })
        // Before any handler or guard, a cross-site write is refused; after
        // them, plain-text refusals become JSON.
        .layer(axum::middleware::from_fn(error::edge))
        .with_state(app)
}
