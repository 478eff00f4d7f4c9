//! [`run`]: a gateway from a config, a bound listener and a shutdown
//! future. `main.rs` calls it, and so do tests (on port 0).
//!
//! Start-up builds things in dependency order, and nothing runs before
//! everything it needs is up: the store, telemetry, the schema registry,
//! the plugin host, delivery (given the registry, its queues opened but no
//! dispatcher started), the router, the HTTP state; only then do the
//! dispatchers, the router and the listener start. A failed start returns
//! an error having sent nothing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::now_ms;
use switchyard_delivery::{Delivery, DeliveryError};
use switchyard_plugin_host::{PluginError, PluginHost};
use switchyard_registry::{Registry, RegistryError};
use switchyard_store::{SharedStore, StoreError};
use switchyard_store_fjall::FjallStore;
use switchyard_telemetry::{Telemetry, TelemetryError};
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

use crate::config::{Config, ConfigError, OPERATOR_TOPIC};
use crate::http::{App, AppInner, Health, http_router, listener};
use crate::reload::{Current, Live, Reload};
use crate::router::{Handoff, Router};

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the JetStream store: {0}")]
    JetStream(#[source] switchyard_store_jetstream::Error),
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        dir: std::path::PathBuf,
        source: StoreError,
    },
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("cannot load the schema registry: {0}")]
    Registry(#[from] RegistryError),
    /// A `schema.message` its (registered) Protobuf subject lacks.
    #[error(
        "{owner}: schema.message {message:?} is not in subject {subject:?}; its schema declares: {}",
        available.join(", ")
    )]
    SchemaMessage {
        owner: String,
        subject: String,
        message: String,
        available: Vec<String>,
    },
    /// A `schema.message` on a subject that is not Protobuf: only a
    /// Protobuf file holds several messages to choose from.
    #[error(
        "{owner}: schema.message {message:?} names a Protobuf message, but subject {subject:?} \
         holds a {schema_type} schema: remove `message`, or point `subject` at a PROTOBUF subject"
    )]
    SchemaMessageNotProtobuf {
        owner: String,
        subject: String,
        message: String,
        schema_type: &'static str,
    },
    /// `format = "avro"` behind a topic whose subject is not Avro.
    #[error(
        "topic {topic:?} routes to destination {destination:?}, whose format = \"avro\" needs an \
         Avro schema, but subject {subject:?} holds a {schema_type} schema: use format = \"json\" \
         or \"as-received\""
    )]
    AvroFormatBehindNonAvro {
        topic: String,
        destination: String,
        subject: String,
        schema_type: &'static str,
    },
    #[error("topic {topic:?}: verify: {message}")]
    Verify { topic: String, message: String },
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
}

/// Refuses to start when a topic or destination names a Protobuf message
/// its subject's registered schema lacks (every payload would be refused),
/// or a topic whose subject is not Avro routes to a `format = "avro"`
/// destination (nothing it accepts could be encoded), or a `message` is
/// set on a subject that is not Protobuf. A subject not registered yet is
/// left to ingest and delivery, which refuse until it is. Run at start-up
/// once the registry is loaded, and on every reload.
pub(crate) fn check_schema_messages(config: &Config, registry: &Registry) -> Result<(), Error> {
    for t in &config.topics {
        let Some(s) = &t.schema else { continue };
        let Some((_, stored)) = registry.core().resolve_reader(&s.subject, s.version) else {
            continue;
        };
        let ty = stored.schema_type();
        if ty == switchyard_registry::SchemaType::Avro {
            continue;
        }
        for r in &t.routes {
            let avro = config.destinations.iter().any(|d| {
                &d.name == r && d.format == switchyard_delivery::format::DeliveryFormat::Avro
            });
            if avro {
                return Err(Error::AvroFormatBehindNonAvro {
                    topic: t.name.clone(),
                    destination: r.clone(),
                    subject: s.subject.clone(),
                    schema_type: ty.as_str(),
                });
            }
        }
    }
    let topics = config
        .topics
        .iter()
        .map(|t| (format!("topic {:?}", t.name), &t.schema));
    let destinations = config
        .destinations
        .iter()
        .map(|d| (format!("destination {:?}", d.name), &d.schema));
    for (owner, schema) in topics.chain(destinations) {
        let Some(s) = schema else { continue };
        let Some(message) = &s.message else { continue };
        if let Some((_, stored)) = registry.core().resolve_reader(&s.subject, s.version) {
            let ty = stored.schema_type();
            if ty != switchyard_registry::SchemaType::Protobuf {
                return Err(Error::SchemaMessageNotProtobuf {
                    owner,
                    subject: s.subject.clone(),
                    message: message.clone(),
                    schema_type: ty.as_str(),
                });
            }
        }
        if let Some(available) = registry.missing_message(&s.subject, s.version, message) {
            return Err(Error::SchemaMessage {
                owner,
                subject: s.subject.clone(),
                message: message.clone(),
                available,
            });
        }
    }
    Ok(())
}

/// Runs `f` on the blocking pool (opening files, compiling plugins).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))
}

/// A gateway with every part built and nothing started: no dispatcher,
/// no router task, no listener.
pub(crate) struct Assembled {
    pub app: App,
    pub router: Router,
}

/// Builds every part in dependency order (see the module's doc); `reload`
/// is the handle `POST /v1/admin/reload` asks through.
pub(crate) async fn assemble(config: Arc<Config>, reload: Reload) -> Result<Assembled, Error> {
    let dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&dir)?;
    let started = std::time::Instant::now();
    let mut steps: Vec<(&str, Duration)> = Vec::new();
    let mut lap = std::time::Instant::now();
    let mut step = |name: &'static str| {
        steps.push((name, lap.elapsed()));
        lap = std::time::Instant::now();
    };

    // 1. The store.
    let store: SharedStore = match config.jetstream_store() {
        None => {
            let (d, durability) = (dir.clone(), config.server.durability.unwrap_or_default());
            let store = blocking(move || FjallStore::open(&d, durability))
                .await?
                .map_err(|source| Error::Store {
                    dir: dir.clone(),
                    source,
                })?;
            Arc::new(store)
        }
        Some(js) => Arc::new(
            switchyard_store_jetstream::JetStreamStore::open(&js)
                .await
                .map_err(Error::JetStream)?,
        ),
    };
    step("store");
    // 2. Telemetry, with the store's own metrics in its registry.
    let mut telemetry = Telemetry::start(config.telemetry.as_ref())?;
    store.register_metrics(telemetry.metrics.registry_mut());
    let telemetry = Arc::new(telemetry);
    // 3. The schema registry.
    let registry = {
        let schemas = store.clone();
        blocking(move || Registry::open(schemas)).await??
    };
    check_schema_messages(&config, &registry)?;
    step("registry");
    // 4. The plugin host. Compiling takes a while the first time (the
    // cache makes restarts fast): keep it off the async workers.
    let plugins = if config.plugins.is_empty() {
        None
    } else {
        let cache = config
            .server
            .plugin_cache_dir
            .clone()
            .unwrap_or_else(|| dir.join("plugin-cache"));
        let configs = config.plugins.clone();
        Some(blocking(move || PluginHost::start(&configs, &cache)).await??)
    };
    step("plugins");
    // 5. Delivery, given the registry: queues open, nothing sent yet.
    let delivery = Delivery::new(
        &config.destinations,
        &config.address_rules(),
        store.clone(),
        registry.clone(),
        telemetry.clone(),
    )
    .await?;
    step("queues");
    // 6. The router and the HTTP state.
    let handoff = Handoff::default();
    let router = Router::new(
        &config,
        store.clone(),
        telemetry.clone(),
        handoff.clone(),
        plugins.clone(),
    );
    let auth = Arc::new(crate::auth::Auth::new(
        &config,
        telemetry.metrics.auth_refusals.clone(),
    ));
    let app = App(Arc::new(AppInner {
        config: config.clone(),
        store,
        delivery,
        health: Arc::new(Health::default()),
        handoff,
        verifiers: crate::ingest::verifiers(&config)?,
        telemetry,
        plugins,
        registry,
        auth,
        topic_limits: crate::ingest::limits::TopicLimits::new(&config),
        reload,
        series: Default::default(),
    }));
    step("http");
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        steps = %steps
            .iter()
            .map(|(n, d)| format!("{n} {}ms", d.as_millis()))
            .collect::<Vec<_>>()
            .join(", "),
        "Gateway assembled."
    );
    Ok(Assembled { app, router })
}

/// Runs the gateway on `listener` until `shutdown` resolves, then drains:
/// stops accepting, lets deliveries in flight finish (up to
/// `server.shutdown_grace`), and persists the store.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    run_with_reload(config, listener, shutdown, Reload::new()).await
}

/// [`run`], reloading the config file (`config.source`) whenever `reload`
/// asks (`main.rs` asks on SIGHUP) as well as on `POST /v1/admin/reload`.
pub async fn run_with_reload(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reload: Reload,
) -> Result<(), Error> {
    let config = Arc::new(config);
    let Assembled { app, router } = assemble(config.clone(), reload.clone()).await?;
    let routes = router.routes();
    let live_config = Arc::new(Current::new(config.clone()));
    app.auth.warn_if_open();
    let (store, delivery, health) = (app.store.clone(), app.delivery.clone(), app.health.clone());
    let telemetry = app.telemetry.clone();
    let dir = config.server.data_dir.clone();

    // Everything is up: start delivering, routing, and the housekeeping.
    let stop = CancellationToken::new();
    delivery.start();
    // It starts by routing what was waiting before the restart.
    let router_task = tokio::spawn(router.run(stop.clone(), config.server.shutdown_grace));
    tokio::spawn(watch_disk(
        dir.clone(),
        live_config.clone(),
        health.clone(),
        stop.clone(),
    ));
    tokio::spawn(sweep(live_config.clone(), store.clone(), stop.clone()));
    if store.shared() {
        tokio::spawn(follow_registry(app.registry.clone(), stop.clone()));
    }
    let (operator_tx, operator_rx) = tokio::sync::mpsc::unbounded_channel();
    delivery.set_operator_sink(operator_tx);
    tokio::spawn(send_operator_events(
        operator_rx,
        live_config.clone(),
        store.clone(),
        app.handoff.clone(),
        stop.clone(),
    ));
    let http = Arc::new(Current::new(Arc::new(http_router(app.clone()))));
    tokio::spawn(crate::reload::serve(
        reload,
        Live {
            app: app.clone(),
            config: live_config.clone(),
            http: http.clone(),
            routes,
        },
        stop.clone(),
    ));
    tokio::spawn(crate::admin::series::sample(app.clone(), stop.clone()));
    tokio::spawn(watch_for_operator(
        app.clone(),
        live_config.clone(),
        stop.clone(),
    ));
    health.set_ready(true);
    let addr = listener.local_addr()?;
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, scheme, data_dir = %dir.display(), "Switchyard is listening.");

    // TLS, connection and header limits, slow-client timeouts and the
    // graceful stop are all in `listener`.
    listener::serve(
        listener,
        crate::reload::live_router(http),
        &config.server,
        shutdown,
    )
    .await?;
    drop(app);

    tracing::info!("Shutting down: draining deliveries in flight.");
    health.set_ready(false);
    stop.cancel();
    delivery
        .drain(live_config.load().server.shutdown_grace)
        .await;
    let _ = router_task.await;
    let flushed = blocking(move || store.flush()).await;
    if let Ok(Err(e)) = flushed {
        tracing::error!(error = %e, "Final flush of the store failed.");
    }
    // Spans of the drain above are exported too; the exporters send on
    // this runtime, so flush from a blocking thread while it still runs.
    let _ = blocking(move || telemetry.shutdown()).await;
    tracing::info!("Switchyard stopped.");
    Ok(())
}

/// The HTTP API of a gateway built on `config` in a fresh temp dir, with
/// nothing running: for tests that call routes without a socket.
#[cfg(test)]
pub(crate) async fn test_router(mut config: Config) -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().expect("a temp dir");
    config.server.data_dir = dir.path().join("data");
    let Assembled { app, .. } = assemble(Arc::new(config), Reload::new())
        .await
        .expect("assembles");
    (dir, http_router(app))
}

/// Trips `disk_low` while free space under the data dir is below `min_free`,
/// so ingest refuses with 503 before fjall ever fails a write (which would
/// poison the database until reopened). Clears it again when space returns.
async fn watch_disk(
    dir: std::path::PathBuf,
    config: Arc<Current<Config>>,
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
        // Read each time: a reload may change it.
        let min_free = config.load().server.min_free_disk.as_u64();
        let low = free < min_free;
        let was = health.set_disk_low(low);
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

/// Raises the operator events that are levels crossing a line rather than
/// a state change delivery makes: a DLQ reaching `[operator]
/// dlq_threshold`, free disk going below `server.min_free_disk` (and back),
/// a plugin quarantined. Each once per crossing, polled every 2 s.
async fn watch_for_operator(app: App, config: Arc<Current<Config>>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut over: std::collections::HashSet<String> = Default::default();
    let mut quarantines: std::collections::HashMap<String, u64> = Default::default();
    let mut disk_low = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let threshold = config
            .load()
            .operator
            .as_ref()
            .and_then(|o| o.dlq_threshold);
        if let Some(th) = threshold
            && let Ok(stats) = app.delivery.stats().await
        {
            for s in stats {
                if s.dlq_depth >= th {
                    if over.insert(s.name.clone()) {
                        app.delivery.operator_event(
                            "dlq_growing",
                            &s.name,
                            format!(
                                "the dead-letter queue holds {} entries (operator.dlq_threshold = {th})",
                                s.dlq_depth
                            ),
                        );
                    }
                } else {
                    over.remove(&s.name);
                }
            }
        }
        let low = app.health.disk_low();
        if low != disk_low {
            disk_low = low;
            let (kind, reason) = if low {
                (
                    "disk_low",
                    "free disk is below server.min_free_disk: ingest answers 503",
                )
            } else {
                (
                    "disk_recovered",
                    "free disk is back above server.min_free_disk",
                )
            };
            app.delivery.operator_event(kind, "", reason.to_owned());
        }
        if let Some(host) = &app.plugins {
            // By the count of quarantines, not the flag: a first quarantine
            // lasts a second, less than the poll interval.
            for p in host.statuses() {
                let seen = quarantines.insert(p.name.clone(), p.quarantines);
                if p.quarantines > seen.unwrap_or(0) {
                    let why = p
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "repeated failures".into());
                    app.delivery.operator_event(
                        "plugin_quarantined",
                        "",
                        format!("plugin {:?} was quarantined: {why}", p.name),
                    );
                }
            }
        }
    }
}

/// Stores each operator event as a JSON event of [`OPERATOR_TOPIC`], which
/// the router sends to the `[operator]` destination (read at each event,
/// so a reload may set or change it). Without one, the log and the metric
/// are all there is.
async fn send_operator_events(
    mut events: tokio::sync::mpsc::UnboundedReceiver<switchyard_delivery::OperatorEvent>,
    config: Arc<Current<Config>>,
    store: SharedStore,
    handoff: Handoff,
    stop: CancellationToken,
) {
    // Ends with the gateway, not with the channel: the sender lives in
    // `delivery`, which this task's handoff keeps alive, and the store it
    // holds must be dropped for the data dir to be free again.
    loop {
        let e = tokio::select! {
            e = events.recv() => match e { Some(e) => e, None => return },
            () = stop.cancelled() => return,
        };
        if config
            .load()
            .operator
            .as_ref()
            .and_then(|o| o.destination.as_ref())
            .is_none()
        {
            continue;
        }
        let payload = match serde_json::to_vec(&e) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot encode an operator event.");
                continue;
            }
        };
        let event = switchyard_core::NewEvent {
            meta: switchyard_core::EventMeta {
                content_type: "application/json".into(),
                ..Default::default()
            },
            payload: payload.into(),
        };
        match store
            .append(
                OPERATOR_TOPIC,
                None,
                Duration::ZERO,
                vec![event],
                switchyard_store::Routing::Pending,
            )
            .await
        {
            Ok(_) => handoff.appended(),
            Err(err) => tracing::warn!(kind = e.kind, destination = %e.destination, error = %err,
                "Cannot store an operator event; it is logged only."),
        }
    }
}

/// On a shared store, schemas registered or deleted through another
/// gateway reach this one's registry within a second (its writes already
/// read the latest state first).
async fn follow_registry(registry: Registry, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let core = registry.core().clone();
        match blocking(move || core.sync()).await {
            Ok(Ok(true)) => {
                tracing::debug!("Schema registry reloaded: changed on another gateway.")
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "Cannot follow the schema registry."),
            Err(e) => tracing::warn!(error = %e, "Cannot follow the schema registry."),
        }
    }
}

/// Retention: removes finished events older than `server.retention`, and
/// idempotency keys past the longest window of any topic.
async fn sweep(live: Arc<Current<Config>>, store: SharedStore, stop: CancellationToken) {
    let mut low_water: Option<Ulid> = None;
    loop {
        // Read each round: a reload may change the windows.
        let config = live.load();
        let window = config
            .topics
            .iter()
            .map(|t| t.idempotency_window)
            .max()
            .unwrap_or(Duration::from_secs(24 * 3600));
        let retention = config.server.retention;
        // Sweep often enough that nothing outlives its retention by much.
        let every = (retention / 2).clamp(Duration::from_millis(200), Duration::from_secs(30));
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let now = now_ms();
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
