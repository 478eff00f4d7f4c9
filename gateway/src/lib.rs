//! Switchyard: a WebAssembly-extensible event-routing gateway.
//!
//! An event flows: ingest (HTTP) -> group commit into the store -> router
//! (plugin chain) -> destination queues -> delivery (push with retries, or
//! pull) -> delivered or dead-lettered. See `docs/ARCHITECTURE.md`.
//!
//! Module map:
//! - [`admin`]: the admin API: events, destinations, DLQs, readiness.
//! - [`auth`]: API tokens, scopes, per-token rate limits; the guards on admin, pull, registry writes and token topics.
//! - [`config`]: the TOML config, validated once at start.
//! - [`delivery`]: dispatchers, the retry policy, HTTP push.
//! - [`event`]: the event as the gateway keeps it; ids and time helpers.
//! - [`ingest`]: HTTP ingest: publish, batch, limits, idempotency keys.
//! - [`plugins`]: the Wasm plugin host: contract, sandbox, limits, chains, hot reload.
//! - [`registry`]: the Avro schema registry (Confluent's REST API) and payload validation.
//! - [`router`]: pending events -> plugin chain -> destination queues.
//! - [`server`]: [`run`], shared state, the HTTP router, background tasks.
//! - [`store`]: everything fjall: keyspaces, group commit, recovery.
//! - [`telemetry`]: OpenTelemetry traces (OTLP), W3C context, Prometheus metrics.

pub mod admin;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod event;
pub mod ingest;
pub mod plugins;
pub mod ratelimit;
pub mod registry;
pub mod router;
pub mod server;
pub mod store;
pub mod telemetry;
pub(crate) mod watch;

pub use server::{Error, http_router, run};
