//! Switchyard: a WebAssembly-extensible event-routing gateway.
//!
//! An event flows: ingest (HTTP) -> group commit into the store -> router
//! (plugin chain) -> destination queues -> delivery (push with retries, or
//! pull) -> delivered or dead-lettered. See `docs/ARCHITECTURE.md`.
//!
//! Module map:
//! - [`config`]: the TOML config, validated once at start.
//! - [`delivery`]: dispatchers, the retry policy, HTTP push.
//! - [`event`]: the event as the gateway keeps it; ids and time helpers.
//! - [`store`]: everything fjall: keyspaces, group commit, recovery.

pub mod config;
pub mod delivery;
pub mod event;
pub mod store;
