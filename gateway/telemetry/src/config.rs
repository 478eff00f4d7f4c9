//! `[telemetry]` in the TOML config: where traces go and how many are kept.
//!
//! Every key is optional. A value set here wins over the matching standard
//! `OTEL_*` environment variable, and the variables fill in whatever is left
//! out, so an operator can keep the file generic and point it per host.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use switchyard_core::Secret;
use switchyard_core::config::Invalid;

/// The `[telemetry]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's base URL, like `OTEL_EXPORTER_OTLP_ENDPOINT`: with
    /// `http/protobuf`, `/v1/traces` is appended unless it is already there.
    /// Without it (and without the env vars) the OTLP default for the
    /// protocol is used: `http://localhost:4317` for gRPC, `:4318` for HTTP.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `grpc` or `http/protobuf` (the OTLP default).
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// `service.name` on every span; default `switchyard`.
    #[serde(default)]
    pub service_name: Option<String>,
    /// The share of new traces kept, 0.0 to 1.0. Spans of a trace whose
    /// sender already decided (a `traceparent` with its sampled flag) follow
    /// that decision, so one trace is never half exported.
    #[serde(default)]
    pub sample_ratio: Option<f64>,
    /// Extra headers on every export (collector API keys): values may be
    /// `env:NAME` secrets and are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// How long finished spans wait to be batched before export (default
    /// `OTEL_BSP_SCHEDULE_DELAY` or 5s). Tests shorten it; shutdown always
    /// flushes whatever is left.
    #[serde(default, with = "humantime_serde")]
    pub export_delay: Option<Duration>,
}

/// An OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl Protocol {
    /// Parses the value of `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(format!(
                "unsupported OTLP protocol {other:?}: expected \"grpc\" or \"http/protobuf\""
            )),
        }
    }
}

impl TelemetryConfig {
    /// Checks what serde cannot: the ratio's range and the endpoint's shape.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(r) = self.sample_ratio
            && !(0.0..=1.0).contains(&r)
        {
            return Err(Invalid::new(
                "sample_ratio",
                format!("{r} is outside 0.0 to 1.0"),
            ));
        }
        if let Some(e) = &self.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(Invalid::new(
                "otlp_endpoint",
                format!("{e:?} must start with http:// or https://"),
            ));
        }
        Ok(())
    }
}
