//! Telemetry: OpenTelemetry traces over OTLP, W3C context propagation, and
//! Prometheus metrics.
//!
//! - `config`: the `[telemetry]` section.
//! - `otlp`: resolving `[telemetry]` and `OTEL_*` into an exporter and sampler.
//! - `context`: `traceparent`/`tracestate` in and out (requests, stored events).
//! - `spans`: the spans of an event's story (ingest, routing, plugins,
//!   delivery attempts, dead-lettering), named per the OpenTelemetry HTTP and
//!   messaging semantic conventions.
//! - `metrics`: the metric families behind `GET /metrics`, rendered from a
//!   [`metrics::Levels`] snapshot that the caller reads from its parts.
//!
//! One [`Telemetry`] per running gateway, owned by its state: nothing here is
//! process-global, so tests can run several gateways side by side, each
//! exporting to its own collector. Spans are made with the OpenTelemetry API
//! directly (not through `tracing`) because each event's spans belong to the
//! event's own trace, a parent chosen per event rather than "the current
//! span", and because a `tracing` layer would be one per process.

#![forbid(unsafe_code)]

pub mod config;
pub mod context;
pub mod metrics;
pub mod otlp;
pub mod spans;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use switchyard_store::Appended;

pub use config::TelemetryConfig;
pub use spans::{AttemptOutcome, AttemptReport, Routing, TraceSpan};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    #[error("telemetry: {0}")]
    Config(String),
    #[error("telemetry: cannot build the OTLP exporter for {endpoint}: {message}")]
    Exporter { endpoint: String, message: String },
}

/// This gateway's tracer and metrics.
pub struct Telemetry {
    /// The exporter and tracer in force; `None` when tracing is off. A
    /// reload swaps it (see [`Telemetry::install`]).
    pipeline: RwLock<Option<Arc<Pipeline>>>,
    /// Whether `pipeline` is `Some`, read without the lock: an untraced
    /// gateway pays one atomic load per span helper.
    on: AtomicBool,
    /// Pipelines a reload replaced, until they are shut down: spans begun
    /// under one end under it.
    retired: Mutex<Vec<Arc<Pipeline>>>,
    pub metrics: metrics::Metrics,
}

/// An OTLP exporter and its tracer.
struct Pipeline {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    shut: AtomicBool,
}

impl Pipeline {
    fn new(provider: SdkTracerProvider) -> Self {
        let tracer = provider.tracer("switchyard");
        Self {
            provider,
            tracer,
            shut: AtomicBool::new(false),
        }
    }

    /// Exports what is buffered and stops the exporter, once. Blocks.
    fn shutdown(&self) {
        if self.shut.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "Flushing traces at shutdown failed; some spans were lost.");
        }
    }
}

/// A tracing setup built from a config but not yet in force: a reload builds
/// it with the rest of the new config, and installs it only if all of that
/// config is accepted.
pub struct Prepared(Option<Pipeline>);

/// How long spans begun under a pipeline a reload replaced may still end
/// there before it is shut down (an attempt's span lasts its timeout).
const RETIRE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl Telemetry {
    /// Metrics only: for gateways (and tests) that trace nothing.
    pub fn metrics_only() -> Self {
        Self {
            pipeline: RwLock::new(None),
            on: AtomicBool::new(false),
            retired: Mutex::new(Vec::new()),
            metrics: metrics::Metrics::new(),
        }
    }

    /// Tracing as `[telemetry]` and the standard `OTEL_*` variables say
    /// (see [`otlp::Settings::resolve`]); off when neither names an
    /// endpoint.
    pub fn start(config: Option<&TelemetryConfig>) -> Result<Self, TelemetryError> {
        let t = Self::metrics_only();
        t.install(Self::prepare(config)?);
        Ok(t)
    }

    /// Builds the exporter `config` asks for, without putting it in force.
    pub fn prepare(config: Option<&TelemetryConfig>) -> Result<Prepared, TelemetryError> {
        let settings = otlp::Settings::resolve(config, &|k| std::env::var(k).ok())
            .map_err(TelemetryError::Config)?;
        let Some(settings) = settings else {
            return Ok(Prepared(None));
        };
        let provider = settings.provider()?;
        tracing::info!(
            endpoint = %settings.endpoint,
            protocol = ?settings.protocol,
            sampler = ?settings.sampler,
            service = %settings.service_name,
            "Exporting traces over OTLP."
        );
        Ok(Prepared(Some(Pipeline::new(provider))))
    }

    /// Puts `prepared` in force: new spans go to it. The pipeline it
    /// replaces keeps the spans already begun under it, and is shut down
    /// (its buffer exported) a minute later, or at [`Telemetry::shutdown`].
    pub fn install(&self, prepared: Prepared) {
        let next = prepared.0.map(Arc::new);
        let off = next.is_none();
        self.on.store(!off, Ordering::Release);
        let old = std::mem::replace(
            &mut *self.pipeline.write().unwrap_or_else(|p| p.into_inner()),
            next,
        );
        let Some(old) = old else {
            return;
        };
        if off {
            tracing::info!(
                "Tracing turned off by a reload; spans already begun are still exported."
            );
        }
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(old.clone());
        // The exporters send on the runtime: shut down from a blocking task
        // while it still runs. Without a runtime (a test), at `shutdown`.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(RETIRE_AFTER).await;
                let _ = tokio::task::spawn_blocking(move || old.shutdown()).await;
            });
        }
    }

    fn tracer(&self) -> Option<SdkTracer> {
        if !self.on.load(Ordering::Acquire) {
            return None;
        }
        let p = self.pipeline.read().unwrap_or_else(|p| p.into_inner());
        p.as_ref().map(|p| p.tracer.clone())
    }

    /// Whether spans are made and exported.
    pub fn tracing(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Exports what is buffered and stops the exporter (and any a reload
    /// replaced). Blocks: call it from `spawn_blocking` while the runtime
    /// still runs (the exporters send on it).
    pub fn shutdown(&self) {
        let current = self
            .pipeline
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let retired = std::mem::take(&mut *self.retired.lock().unwrap_or_else(|p| p.into_inner()));
        for p in retired.iter().chain(current.as_ref()) {
            p.shutdown();
        }
    }

    /// Called by the ingest handlers once the store answered: names the
    /// event(s) on the ingest span and counts them.
    pub fn ingested(&self, topic: &str, outcome: &Appended) {
        let (ids, label) = match outcome {
            Appended::New { ids, .. } => (ids, "accepted"),
            Appended::Duplicate { ids } => (ids, "duplicate"),
        };
        self.metrics.ingested(topic, label, ids.len().max(1) as u64);
        if self.tracing() {
            spans::note_ingested(ids, label == "duplicate");
        }
    }
}
