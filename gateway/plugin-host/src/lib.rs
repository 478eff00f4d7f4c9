//! The Wasm plugin host, and the only crate of the gateway that links
//! wasmtime: user components that route, transform and prioritise events.
//!
//! A plugin is a WebAssembly component implementing the WIT contract in
//! `schemas/wit/plugin.wit` (`switchyard:plugin@0.3.0`; components built for
//! `@0.2.0`, `schemas/wit/v0.2.0/`, still load): `init(config)` once per
//! instance, then `handle(events)` with batches, one verdict per event.
//! Plugin authors use the `switchyard-sdk` crate (`sdk-guest/`).
//!
//! What the router calls:
//! - [`PluginHost::start`]`(&configs, &cache_dir) -> Result<Arc<PluginHost>, PluginError>`:
//!   compiles every plugin (cached on disk under `cache_dir`, meant to be
//!   `<data_dir>/plugin-cache`), checks the contract version, initialises
//!   each once, starts the epoch ticker and the file watchers. Blocking.
//! - [`PluginHost::run_chain`]`(&chain, &known_destinations, events).await -> Vec<ChainOutcome>`:
//!   one [`ChainOutcome`] per event, same order, run on the calling task
//!   (async calls that yield at every epoch tick).
//!   `Done(verdict)` carries the chain's merged [`Verdict`] (unset fields:
//!   keep the current value); `Failed { plugin, error, on_error }` asks the
//!   router to apply that plugin's [`OnError`].
//! - [`PluginHost::statuses`] for `GET /v1/plugins`, [`PluginHost::is_ready`]
//!   for `/readyz`.
//!
//! What the CLI calls: [`check_plugin`], [`test_plugin`], [`events_from_json`].
//!
//! Files: `config.rs` (the `[[plugins]]` table, which validates itself), `bindings.rs` (the one
//! module with `bindgen!`: both contract versions, the 0.3.0 byte layouts), `engine.rs` (wasmtime: compile, cache, sandbox, instances),
//! `host.rs` (instances, chains, traps, quarantine, statistics), `limits.rs`
//! (the component's language, and the limits in force and where they came
//! from), `reload.rs`
//! (hot reload), `cli.rs` (check, test, event files).

mod bindings;
mod cli;
mod config;
mod engine;
mod host;
mod limits;
mod reload;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use serde::Serialize;

pub use bindings::CONTRACT_VERSION;
pub use cli::{
    BatchTiming, CheckReport, TestOptions, TestReport, check_plugin, default_cache_dir,
    events_from_json, test_plugin,
};
pub use config::{OnError, PluginConfig};
pub use host::{PluginHost, PluginStatus, QUARANTINE_AFTER};
pub use limits::{INTERPRETED_MAX_MEMORY, INTERPRETED_TIMEOUT, Language, Limit, LimitsStatus};

/// Everything that can go wrong loading or running plugins outside a batch.
/// (Failures inside a batch are [`ChainOutcome::Failed`], per event.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The file is missing, not a component, or not built for our contract.
    #[error("plugin {plugin:?} cannot be loaded: {message}")]
    Load { plugin: String, message: String },
    /// Its `init` returned an error, trapped or timed out.
    #[error("plugin {plugin:?} failed to initialise: {message}")]
    Init { plugin: String, message: String },
    /// The engine or a host thread could not be set up.
    #[error("plugin host: {0}")]
    Engine(String),
    /// The file watcher could not be set up.
    #[error("plugin hot reload: {0}")]
    Watch(String),
    /// An event file for `switchyard plugin test` is malformed.
    #[error("event file: {0}")]
    Event(String),
    /// A name that no `[[plugins]]` entry has.
    #[error("no plugin named {0:?}")]
    Unknown(String),
}

/// An event as a plugin sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginEvent {
    pub id: String,
    pub topic: String,
    /// When the gateway accepted it, ms since the Unix epoch.
    pub received_at_ms: u64,
    /// Sender headers, names in lower case.
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub payload: Bytes,
    /// Notes from earlier plugins in the chain.
    pub attributes: Vec<(String, String)>,
}

/// What a chain decided for one event. `None` everywhere means "keep": the
/// topic's static routes, the default priority, the original payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// Destination names; empty means drop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    /// 0-9, 9 most urgent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// A replacement payload.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_payload"
    )]
    pub payload: Option<Bytes>,
    /// A replacement header list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<(String, String)>>,
    /// A replacement content type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Hold back the first delivery this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// FIFO key for destinations that ask for ordering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// The event's attributes after the chain, if any plugin set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<(String, String)>>,
    /// The last plugin of the chain that replaced the payload or its
    /// content type: named when a destination's schema refuses what it
    /// produced, so the operator knows which plugin to look at.
    #[serde(skip)]
    pub rewritten_by: Option<String>,
}

/// Payloads print as text when they are UTF-8 (JSON, mostly), else as
/// `base64:...`, so `switchyard plugin test` output stays readable.
fn serialize_payload<S: serde::Serializer>(p: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    match p {
        None => s.serialize_none(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.serialize_str(&format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )),
        },
    }
}

/// What one plugin of a chain decided for one event
/// ([`PluginHost::run_chain_traced`]), so the router can record it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub plugin: String,
    /// The destinations it chose: `None` left the routing as it was, an
    /// empty list routes the event nowhere.
    pub routes: Option<Vec<String>>,
    pub priority: Option<u8>,
    /// Its call's time per event.
    pub micros: u64,
    /// Why it failed on the event (then it is the chain's last step).
    pub error: Option<String>,
}

impl Step {
    fn failed(plugin: &str, micros: u64, error: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
            routes: None,
            priority: None,
            micros,
            error: Some(error.to_owned()),
        }
    }
}

/// The result of a chain for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainOutcome {
    /// Every plugin decided; the verdicts merged in chain order.
    Done(Verdict),
    /// `plugin` failed on this event (trap, timeout, memory limit, error
    /// result, unknown route, quarantine); the router applies `on_error`.
    Failed {
        plugin: String,
        error: String,
        on_error: OnError,
    },
}
