//! Switchyard's common ground: what every other crate of the gateway may
//! use, and which depends on none of them.
//!
//! - [`event`]: the event as the gateway keeps it; ids, time, the default priority.
//! - [`secret`]: `env:NAME` secrets that never print their value.
//! - [`rate`]: the `"200/s"` rate value and the token buckets that enforce it.
//! - [`config`]: [`config::Invalid`], the shape of a config problem, and the name rule.
//! - [`watch`]: watching files that get replaced in place (plugins, certificates).

pub mod config;
pub mod event;
pub mod rate;
pub mod secret;
pub mod watch;

pub use event::{DEFAULT_PRIORITY, Event, EventId, EventMeta, NewEvent, now_ms};
pub use rate::RateLimit;
pub use secret::Secret;
