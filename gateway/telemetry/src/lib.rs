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
    /// Kept to flush and shut down the exporter; `None` when tracing is off.
    provider: Option<SdkTracerProvider>,
    /// `None` when tracing is off: every span helper then returns at once,
    /// so an untraced gateway pays nothing but a branch.
    tracer: Option<SdkTracer>,
    pub metrics: metrics::Metrics,
}

impl Telemetry {
    /// Metrics only: for gateways (and tests) that trace nothing.
    pub fn metrics_only() -> Self {
        Self {
            provider: None,
            tracer: None,
            metrics: metrics::Metrics::new(),
        }
    }

    /// Sets up tracing from `[telemetry]` and the `OTEL_*` variables (off
    /// when neither names an exporter) and the metrics registry. Runs inside
    /// the tokio runtime, which the exporters send on.
    pub fn start(config: Option<&TelemetryConfig>) -> Result<Self, TelemetryError> {
        let settings = otlp::Settings::resolve(config, &|k| std::env::var(k).ok())
            .map_err(TelemetryError::Config)?;
        let Some(settings) = settings else {
            return Ok(Self::metrics_only());
        };
        let provider = settings.provider()?;
        tracing::info!(
            endpoint = %settings.endpoint,
            protocol = ?settings.protocol,
            sampler = ?settings.sampler,
            service = %settings.service_name,
            "Exporting traces over OTLP."
        );
        let tracer = provider.tracer("switchyard");
        Ok(Self {
            provider: Some(provider),
            tracer: Some(tracer),
            metrics: metrics::Metrics::new(),
        })
    }

    /// Whether spans are being made at all.
    pub fn tracing(&self) -> bool {
        self.tracer.is_some()
    }

    /// Exports what is buffered and stops the exporter. Blocks: call it from
    /// `spawn_blocking` while the runtime still runs (the exporters send on
    /// it).
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "Flushing traces at shutdown failed; some spans were lost.");
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
        if self.tracer.is_some() {
            spans::note_ingested(ids, label == "duplicate");
        }
    }
}
