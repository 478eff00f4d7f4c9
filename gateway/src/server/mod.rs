//! The running gateway: shared state, the HTTP router, background tasks, and
//! [`run`], which tests and `main.rs` both call.
//!
//! `run` takes a bound listener and a shutdown future instead of owning the
//! process: tests bind port 0 and stop the gateway themselves.

mod error;
pub mod listener;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

pub use error::{ApiError, rewrite_plain_errors};

use crate::config::Config;
use crate::delivery::Delivery;
use crate::router::Router;
use crate::store::Store;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        dir: std::path::PathBuf,
        source: crate::store::StoreError,
    },
    #[error(transparent)]
    Delivery(#[from] crate::delivery::DeliveryError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginError),
    #[error("cannot load the schema registry: {0}")]
    Registry(#[from] crate::registry::RegistryError),
    #[error("topic {topic:?}: verify: {message}")]
    Verify { topic: String, message: String },
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
}

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

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// What every request handler can reach.
pub struct AppInner {
    pub config: Arc<Config>,
    pub store: Store,
    pub delivery: Arc<Delivery>,
    pub health: Arc<Health>,
    /// Signature checks per topic, built once from the config.
    pub verifiers: std::collections::HashMap<String, crate::ingest::verify::Verifier>,
    /// This gateway's tracer and metrics (never process-global).
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// The Wasm plugin host, when the config names plugins.
    pub plugins: Option<Arc<crate::plugins::PluginHost>>,
    /// The schema registry (served under `/registry`, used by ingest).
    pub registry: crate::registry::Registry,
    /// API tokens and the access decisions the route guards ask for.
    pub auth: Arc<crate::auth::Auth>,
    /// Per-topic ingest rate limits (`rate_limit`).
    pub topic_limits: crate::ingest::limits::TopicLimits,
}

/// Shared state handed to handlers (cheap to clone).
#[derive(Clone)]
pub struct App(Arc<AppInner>);

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The HTTP API as a plain router, so tests can call it without a socket.
pub fn http_router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/v1/topics/{topic}/events", post(crate::ingest::publish))
        .route(
            "/v1/topics/{topic}/events/batch",
            post(crate::ingest::publish_batch),
        )
        // Topics with `auth = "token"`; inside the telemetry layer below,
        // so its refusals are counted as ingest refusals too.
        .route_layer(axum::middleware::from_fn_with_state(
            app.auth.clone(),
            crate::auth::layer::require_publish,
        ))
        // Only the routes above: the ingest span, latency and refusal counts.
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::telemetry::ingest_layer,
        ))
        .route("/metrics", get(crate::telemetry::metrics::handler))
        .merge(crate::admin::routes(&app.auth))
        // Confluent-compatible: a client's base URL is http://host:port/registry.
        // Writes need an admin token; reads stay open.
        .nest_service(
            "/registry",
            app.registry
                .router()
                .layer(axum::middleware::from_fn_with_state(
                    app.auth.clone(),
                    crate::auth::layer::guard_registry,
                )),
        )
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint") })
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(app)
}

/// Runs the gateway on `listener` until `shutdown` resolves, then drains:
/// stops accepting, lets deliveries in flight finish (up to
/// `server.shutdown_grace`), and persists the store.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let config = Arc::new(config);
    let dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&dir)?;
    let store = {
        let (d, durability) = (dir.clone(), config.server.durability);
        tokio::task::spawn_blocking(move || Store::open(&d, durability))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?
            .map_err(|source| Error::Store {
                dir: dir.clone(),
                source,
            })?
    };
    let telemetry = Arc::new(crate::telemetry::Telemetry::start(&config, &store)?);
    let delivery = Delivery::start(&config, store.clone(), telemetry.clone())?;
    let stop = CancellationToken::new();
    let health = Arc::new(Health::default());

    let plugins = if config.plugins.is_empty() {
        None
    } else {
        // Compiling takes a while the first time (the cache makes restarts
        // fast): keep it off the async workers.
        let (configs, cache) = (config.plugins.clone(), dir.join("plugin-cache"));
        let host = tokio::task::spawn_blocking(move || {
            crate::plugins::PluginHost::start(&configs, &cache)
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        Some(host)
    };
    let router = Router::new(&config, store.clone(), delivery.clone(), plugins.clone());
    let router_task = tokio::spawn(router.run(stop.clone()));
    tokio::spawn(watch_disk(
        dir.clone(),
        config.server.min_free_disk.as_u64(),
        health.clone(),
        stop.clone(),
    ));
    tokio::spawn(sweep(config.clone(), store.clone(), stop.clone()));

    let auth = Arc::new(crate::auth::Auth::new(
        &config,
        telemetry.metrics.auth_refusals.clone(),
    ));
    auth.warn_if_open();
    let registry = crate::registry::Registry::new(store.clone())?;
    delivery.set_registry(registry.clone());
    let app = App(Arc::new(AppInner {
        config: config.clone(),
        store: store.clone(),
        delivery: delivery.clone(),
        health: health.clone(),
        verifiers: crate::ingest::verifiers(&config)?,
        telemetry: telemetry.clone(),
        plugins,
        registry,
        auth,
        topic_limits: crate::ingest::limits::TopicLimits::new(&config),
    }));
    health.ready.store(true, Ordering::Release);
    let addr = listener.local_addr()?;
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, scheme, data_dir = %dir.display(), "Switchyard is listening.");

    // TLS, connection and header limits, slow-client timeouts and the
    // graceful stop are all in `listener`.
    listener::serve(listener, http_router(app), &config.server, shutdown).await?;

    tracing::info!("Shutting down: draining deliveries in flight.");
    health.ready.store(false, Ordering::Release);
    stop.cancel();
    delivery.drain(config.server.shutdown_grace).await;
    let _ = router_task.await;
    let flushed = tokio::task::spawn_blocking(move || store.flush()).await;
    if let Ok(Err(e)) = flushed {
        tracing::error!(error = %e, "Final flush of the store failed.");
    }
    // Spans of the drain above are exported too; the exporters send on
    // this runtime, so flush from a blocking thread while it still runs.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    tracing::info!("Switchyard stopped.");
    Ok(())
}

/// Trips `disk_low` while free space under the data dir is below `min_free`,
/// so ingest refuses with 503 before fjall ever fails a write (which would
/// poison the database until reopened). Clears it again when space returns.
async fn watch_disk(
    dir: std::path::PathBuf,
    min_free: u64,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let free = match fs4::available_space(&dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read free disk space.");
                continue;
            }
        };
        let low = free < min_free;
        let was = health.disk_low.swap(low, Ordering::AcqRel);
        if low && !was {
            tracing::warn!(
                free_bytes = free,
                min_free_bytes = min_free,
                "Free disk space is below server.min_free_disk: ingest answers 503 until it returns."
            );
        } else if !low && was {
            tracing::info!(
                free_bytes = free,
                "Free disk space is back above server.min_free_disk: ingest resumes."
            );
        }
    }
}

/// Retention: removes finished events older than `server.retention`, and
/// idempotency keys past the longest window of any topic.
async fn sweep(config: Arc<Config>, store: Store, stop: CancellationToken) {
    let window = config
        .topics
        .iter()
        .map(|t| t.idempotency_window)
        .max()
        .unwrap_or(Duration::from_secs(24 * 3600));
    let retention = config.server.retention;
    let mut low_water: Option<Ulid> = None;
    // Sweep often enough that nothing outlives its retention by much.
    let every = (retention / 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = crate::event::now_ms();
        let cutoff = now.saturating_sub(window.as_millis() as u64);
        if let Err(e) = store.expire_idempotency(cutoff, 10_000).await {
            tracing::warn!(error = %e, "Expiring idempotency keys failed.");
        }
        let cutoff = now.saturating_sub(retention.as_millis() as u64);
        match store.sweep_retention(cutoff, low_water, 10_000).await {
            Ok((removed, lw)) => {
                low_water = lw;
                if removed > 0 {
                    tracing::info!(removed, "Retention removed finished events.");
                }
            }
            Err(e) => tracing::warn!(error = %e, "Retention sweep failed."),
        }
    }
}
