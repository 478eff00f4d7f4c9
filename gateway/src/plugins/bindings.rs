//! The one `bindgen!`: host-side types and calls for `schemas/wit/plugin.wit`.
//!
//! Everything else in the gateway uses the plain types of `plugins/mod.rs`;
//! generated names stay in this module so a contract change touches one place.

wasmtime::component::bindgen!({
    path: "../schemas/wit",
    world: "switchyard:plugin/plugin@0.1.0",
});

pub use exports::switchyard::plugin::handler::{Event as WitEvent, Verdict as WitVerdict};
pub use switchyard::plugin::log::{Host as LogHost, Level as LogLevel};
pub use switchyard::plugin::types::Host as TypesHost;

/// The package version of the contract this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The export a plugin must have, name and version.
pub const HANDLER_EXPORT: &str = "switchyard:plugin/handler@0.1.0";

/// The interface name without its version, to recognise other versions.
pub const HANDLER_INTERFACE: &str = "switchyard:plugin/handler";
