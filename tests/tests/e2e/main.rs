//! The end-to-end tests: the real gateway (in process through
//! `switchyard::run`, or the real binary) on port 0 with a temp dir, real
//! sockets, real plugins, real peers. One test binary with a module per
//! area, so the suite links wasmtime once; the harness is
//! `switchyard_tests` (`tests/support/lib.rs`).
#![allow(clippy::unwrap_used)]

mod auth;
mod breaker;
mod cancel;
mod cli;
mod cluster;
mod console;
mod console_api;
mod crash;
mod delivery;
mod deploy;
mod docs;
mod edge;
mod formats;
mod hostile;
mod ingest;
mod ingest_guards;
mod migrate;
mod openapi;
mod operator;
mod outbound;
mod plugins;
mod protobuf;
mod pull;
mod registry_client;
mod reload;
mod schemas;
mod signatures;
mod startup;
mod telemetry;
