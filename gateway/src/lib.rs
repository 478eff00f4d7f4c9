//! Switchyard: a WebAssembly-extensible event-routing gateway.
//!
//! An event flows: ingest (HTTP) -> group commit into the store -> router
//! (plugin chain) -> destination queues -> delivery (push with retries, or
//! pull) -> delivered or dead-lettered. See `docs/ARCHITECTURE.md`.
//!
//! Module map:
//! - [`config`]: the TOML config, validated once at start.
