//! Config reload: re-reads the config file of a running gateway and puts
//! what may change into force without dropping a connection or an event.
//!
//! A reload is asked for through a [`Reload`] handle: `main.rs` asks on
//! SIGHUP, `POST /v1/admin/reload` asks for an operator. One task (started
//! by `run`) answers the requests one at a time, so two reloads never
//! interleave.
//!
//! A reload first builds everything the new config needs (validation,
//! signature verifiers, the plugin host, the destinations' senders): any
//! failure refuses the file whole and the running config stays. Then it
//! swaps, each part as one snapshot: the destinations (replaced ones stop
//! taking entries; attempts in flight finish with the config they started
//! with), the router's table (a batch being routed keeps the one it
//! loaded), and the HTTP state (tokens, topic limits, verifiers; a request
//! being served keeps the state it started with, and keep-alive
//! connections carry on with the new one).
//!
//! Settings read once at start (the listen address, the data dir, the
//! store's durability, the listener's TLS and limits) are named in the
//! answer and the log as needing a restart, and keep their running values.
//! Telemetry is swapped: a new exporter for new spans, the old one kept
//! until the spans begun under it have ended.

use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::http::{App, AppInner, http_router};
use crate::router::{RouteTable, Routes};

/// Asks a running gateway to reload its config file. Cheap to clone; made
/// before `run_with_reload` so `main.rs` can hand it to a signal handler.
#[derive(Clone)]
pub struct Reload {
    tx: mpsc::Sender<oneshot::Sender<Report>>,
    /// The receiving end, taken once by the gateway that serves requests.
    rx: Arc<std::sync::Mutex<Option<mpsc::Receiver<oneshot::Sender<Report>>>>>,
}

impl Default for Reload {
    fn default() -> Self {
        Self::new()
    }
}

impl Reload {
    pub fn new() -> Self {
        // A few requests may wait while one runs; more would reload the
        // same file again for nothing.
        let (tx, rx) = mpsc::channel(4);
        Self {
            tx,
            rx: Arc::new(std::sync::Mutex::new(Some(rx))),
        }
    }

    /// Reloads and answers what happened. Waits for a reload already
    /// running to finish first.
    pub async fn request(&self) -> Report {
        let (answer, report) = oneshot::channel();
        if self.tx.send(answer).await.is_err() {
            return Report::refused(vec!["the gateway is not running".into()]);
        }
        report
            .await
            .unwrap_or_else(|_| Report::refused(vec!["the gateway stopped".into()]))
    }

    fn take_requests(&self) -> Option<mpsc::Receiver<oneshot::Sender<Report>>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What a reload did: the answer of `POST /v1/admin/reload`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the new config is in force. `false`: nothing changed.
    pub reloaded: bool,
    /// Every problem that refused the file (empty when reloaded).
    pub errors: Vec<String>,
    /// Settings that changed in the file but keep their running values
    /// until a restart.
    pub restart_needed: Vec<String>,
    pub destinations_added: Vec<String>,
    /// Removed destinations keep their queues (see `GET /v1/destinations`).
    pub destinations_removed: Vec<String>,
}

impl Report {
    fn refused(errors: Vec<String>) -> Self {
        Self {
            reloaded: false,
            errors,
            restart_needed: Vec::new(),
            destinations_added: Vec::new(),
            destinations_removed: Vec::new(),
        }
    }
}

/// A value swapped whole at a reload; each reader loads it once and keeps
/// that snapshot for as long as it works with it.
pub struct Current<T>(RwLock<Arc<T>>);

impl<T> Current<T> {
    pub fn new(v: Arc<T>) -> Self {
        Self(RwLock::new(v))
    }

    pub fn load(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn store(&self, v: Arc<T>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = v;
    }
}

/// The HTTP API whose every request is served by the router in force when
/// it arrives: the listener asks for the router per request, and a reload
/// swaps what it gets, so no connection is closed. (A source, not a router
/// wrapping a router: that would cost every request a second routing pass.)
pub(crate) fn live_router(
    current: Arc<Current<axum::Router>>,
) -> crate::http::listener::RouterSource {
    Arc::new(move || (*current.load()).clone())
}

/// What a reload swaps, and the parts it keeps.
pub(crate) struct Live {
    pub app: App,
    pub config: Arc<Current<Config>>,
    pub http: Arc<Current<axum::Router>>,
    pub routes: Routes,
}

/// Answers reload requests until the gateway stops.
pub(crate) async fn serve(
    reload: Reload,
    mut live: Live,
    stop: tokio_util::sync::CancellationToken,
) {
    let Some(mut requests) = reload.take_requests() else {
        tracing::warn!("This reload handle already serves another gateway; reloads are off here.");
        return;
    };
    loop {
        let answer = tokio::select! {
            r = requests.recv() => match r { Some(a) => a, None => return },
            _ = stop.cancelled() => return,
        };
        let report = reload_once(&mut live).await;
        let _ = answer.send(report);
    }
}

async fn reload_once(live: &mut Live) -> Report {
    let old = live.config.load();
    let path = old.source.clone();
    tracing::info!(path = %path.display(), "Reloading the config file.");
    let mut new = match Config::load(&path) {
        Ok(c) => c,
        // Every problem in the file, each on its own, as check-config lists them.
        Err(e) => return refuse(e.messages()),
    };
    let restart_needed = keep_restart_only(&old, &mut new);
    let app = &live.app;
    // Schema use is checked against the registry as it is now (a subject
    // registered since start-up counts), before anything is built.
    if let Err(e) = crate::run::check_schema_messages(&new, &app.registry) {
        return refuse(vec![e.to_string()]);
    }
    let mut errors = Vec::new();
    let verifiers = match crate::ingest::verifiers(&new) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    // The plugin host is rebuilt only when `[[plugins]]` changed: building
    // compiles (from the cache) and initialises every plugin again.
    let plugins = if format!("{:?}", new.plugins) == format!("{:?}", old.plugins) {
        Some(app.plugins.clone())
    } else if new.plugins.is_empty() {
        Some(None)
    } else {
        let (configs, cache) = (
            new.plugins.clone(),
            new.server.data_dir.join("plugin-cache"),
        );
        match tokio::task::spawn_blocking(move || {
            switchyard_plugin_host::PluginHost::start(&configs, &cache)
        })
        .await
        {
            Ok(Ok(h)) => Some(Some(h)),
            Ok(Err(e)) => {
                errors.push(e.to_string());
                None
            }
            Err(e) => {
                errors.push(format!("building the plugin host failed: {e}"));
                None
            }
        }
    };
    let prepared = match app
        .delivery
        .prepare(&new.destinations, &new.address_rules())
        .await
    {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    // A new exporter is built now and put in force only with the rest.
    let telemetry = if format!("{:?}", old.telemetry) == format!("{:?}", new.telemetry) {
        Some(None)
    } else {
        match switchyard_telemetry::Telemetry::prepare(new.telemetry.as_ref()) {
            Ok(t) => Some(Some(t)),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        }
    };
    let (Some(verifiers), Some(plugins), Some(prepared), Some(telemetry)) =
        (verifiers, plugins, prepared, telemetry)
    else {
        return refuse(errors);
    };
    let mut restart_needed = restart_needed;
    restart_needed.extend(prepared.restart_needed.iter().cloned());

    // Everything is built: swap. Destinations first, so the router never
    // routes to a queue that is not there.
    let (added, removed) = app.delivery.apply(prepared);
    if let Some(t) = telemetry {
        app.telemetry.install(t);
    }
    let new = Arc::new(new);
    live.routes.swap(RouteTable::new(&new, plugins.clone()));
    let auth = Arc::new(crate::auth::Auth::new(
        &new,
        app.telemetry.metrics.auth_refusals.clone(),
    ));
    let next = App(Arc::new(AppInner {
        config: new.clone(),
        store: app.store.clone(),
        delivery: app.delivery.clone(),
        health: app.health.clone(),
        handoff: app.handoff.clone(),
        verifiers,
        telemetry: app.telemetry.clone(),
        plugins,
        registry: app.registry.clone(),
        auth,
        topic_limits: crate::ingest::limits::TopicLimits::new(&new),
        reload: app.reload.clone(),
        series: app.series.clone(),
    }));
    live.http.store(Arc::new(http_router(next.clone())));
    live.config.store(new.clone());
    live.app = next;
    // Routes may now lead somewhere events were waiting for.
    live.app.handoff.appended();
    if restart_needed.is_empty() {
        tracing::info!(destinations_added = ?added, destinations_removed = ?removed,
            topics = new.topics.len(), destinations = new.destinations.len(),
            "Config reloaded.");
    } else {
        tracing::warn!(destinations_added = ?added, destinations_removed = ?removed,
            restart_needed = ?restart_needed,
            "Config reloaded; some changed settings keep their running values until a restart.");
    }
    if !removed.is_empty() {
        tracing::warn!(destinations = ?removed,
            "Destinations left the config: their queues are kept, not delivered, until they return.");
    }
    Report {
        reloaded: true,
        errors: Vec::new(),
        restart_needed,
        destinations_added: added,
        destinations_removed: removed,
    }
}

fn refuse(errors: Vec<String>) -> Report {
    tracing::error!(errors = ?errors,
        "Config reload refused: the file has errors; the running config stays.");
    Report::refused(errors)
}

/// Names the settings read only at start that changed in `new`, and puts
/// their running values back into it, so the config in force says what
/// really runs.
fn keep_restart_only(old: &Config, new: &mut Config) -> Vec<String> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($($field:ident),*) => {$(
            if format!("{:?}", old.server.$field) != format!("{:?}", new.server.$field) {
                changed.push(concat!("server.", stringify!($field)).to_owned());
                new.server.$field = old.server.$field.clone();
            }
        )*};
    }
    keep!(
        listen,
        data_dir,
        durability,
        tls,
        header_read_timeout,
        idle_timeout,
        body_read_timeout,
        max_header_bytes,
        max_headers,
        max_connections
    );
    if format!("{:?}", old.store) != format!("{:?}", new.store) {
        changed.push("store".to_owned());
        new.store = old.store.clone();
    }
    changed
}

/// `POST /v1/admin/reload` (admin scope): 200 with the [`Report`] when the
/// new config is in force, 422 `invalid_config` with every error when the
/// file was refused (the running config stays).
pub(crate) async fn handler(
    axum::extract::State(app): axum::extract::State<App>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let report = app.reload.request().await;
    if report.reloaded {
        return axum::Json(report).into_response();
    }
    let message = format!(
        "the config file was refused; the running config stays: {}",
        report.errors.join("; ")
    );
    crate::http::ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_config",
        message,
    )
    .with("errors", report.errors)
    .into_response()
}
