//! Switchyard: a WebAssembly-extensible event-routing gateway. This crate
//! is the top of the house: the config aggregate, the router, the HTTP API
//! and the `switchyard` binary. Everything below it is a crate of its own,
//! and Cargo lets dependencies point only down:
//!
//! ```text
//! switchyard (this crate)
//!   -> switchyard-delivery -> switchyard-registry, switchyard-signatures, switchyard-telemetry
//!   -> switchyard-plugin-host (the only crate that links wasmtime)
//!   -> switchyard-store-fjall -> switchyard-store -> switchyard-core
//! ```
//!
//! An event flows: ingest (HTTP) -> the store's group commit -> (hand-off)
//! the router (plugin chain) -> the destination's queue in the store ->
//! delivery (push with retries, or pull) -> delivered or dead-lettered.
//! See `docs/ARCHITECTURE.md`.
//!
//! Module map:
//! - [`config`]: the TOML config: `[server]`, `[[topics]]`, and the sections
//!   the other crates own, validated once at start.
//! - [`run()`]: start-up in dependency order, the background tasks, the drain.
//! - [`router`]: pending events -> plugin chain -> destination queues; the
//!   [`router::Handoff`] from ingest.
//! - [`http`]: shared state, the router of the HTTP API, errors, the listener.
//! - [`ingest`]: publish and batch: limits, signatures, idempotency keys.
//! - [`admin`]: events, destinations, DLQs, readiness; the pull endpoints.
//! - [`auth`]: API tokens, scopes, per-token rate limits, the route guards.
//! - [`registry_api`]: Confluent's REST API over the schema registry.
//! - [`reload`]: re-reading the config file of a running gateway.
//! - [`console`]: the web console at `/console`, embedded assets.

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod console;
pub mod http;
pub mod ingest;
pub mod registry_api;
pub mod reload;
pub mod router;
mod run;

pub use http::http_router;
pub use reload::{Reload, Report as ReloadReport};
pub use run::{Error, run, run_with_reload};
