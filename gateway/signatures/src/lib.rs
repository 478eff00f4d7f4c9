//! Webhook signatures, both ways, in one place: what proves an inbound
//! event came from its sender, and what lets a receiver check that a
//! delivery came from this gateway. Both sides of Standard Webhooks share
//! one implementation of its signature.
//!
//! - [`verify`]: inbound verification, one module per scheme (Standard
//!   Webhooks, GitHub, Stripe, Slack, generic HMAC, bearer), built once
//!   per topic from `verify = { ... }`.
//! - [`signing`]: outbound Standard Webhooks signing from a destination's
//!   `signing = { ... }`.

pub mod signing;
pub mod verify;

pub use signing::{Signer, SigningConfig};
pub use verify::{Scheme, Verifier, VerifyConfig, VerifyError};
