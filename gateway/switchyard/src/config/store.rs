//! `[store]`: which backend keeps the gateway's state.
//!
//! ```toml
//! [store]
//! backend = "jetstream"          # default "fjall": embedded, one machine
//! servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
//! replicas = 3
//! # prefix = "switchyard"
//! # token = "env:NATS_TOKEN"     # or user + password, or creds_file
//! # tls = { ca_file = "ca.pem", client_cert = "c.pem", client_key = "c.key" }
//! # pinned_routing = true      # default: when a destination has `ordering`
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use switchyard_core::secret::Secret;
use switchyard_store_jetstream::{JetStreamConfig, TlsFiles};

/// Which store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded fjall in `server.data_dir`: one machine.
    #[default]
    Fjall,
    /// A NATS JetStream cluster shared by every gateway that names it.
    Jetstream,
}

/// `[store]` as written. The JetStream fields are refused with fjall.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub backend: Backend,
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub replicas: Option<usize>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub creds_file: Option<PathBuf>,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// How long one JetStream call may take (then ingest answers 503).
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
    /// How long work a dead gateway held waits before another takes it.
    #[serde(default, with = "humantime_serde")]
    pub ack_wait: Option<Duration>,
    /// One gateway at a time routes (keeps each ordering key's order across
    /// gateways); default: when a destination has `ordering`.
    #[serde(default)]
    pub pinned_routing: Option<bool>,
}

impl StoreConfig {
    /// The JetStream settings, with paths resolved from `base`; `None` for
    /// fjall.
    pub fn jetstream(&self, base: &std::path::Path) -> Option<JetStreamConfig> {
        if self.backend != Backend::Jetstream {
            return None;
        }
        let mut c = JetStreamConfig::new(self.servers.clone());
        if let Some(r) = self.replicas {
            c.replicas = r;
        }
        if let Some(p) = &self.prefix {
            c.prefix = p.clone();
        }
        c.token = self.token.clone();
        c.user = self.user.clone();
        c.password = self.password.clone();
        c.creds_file = self.creds_file.as_ref().map(|p| base.join(p));
        c.tls = self.tls.as_ref().map(|t| TlsFiles {
            ca_file: t.ca_file.as_ref().map(|p| base.join(p)),
            client_cert: t.client_cert.as_ref().map(|p| base.join(p)),
            client_key: t.client_key.as_ref().map(|p| base.join(p)),
        });
        if let Some(t) = self.request_timeout {
            c.request_timeout = t;
        }
        if let Some(t) = self.ack_wait {
            c.ack_wait = t;
        }
        c.pinned_routing = self.pinned_routing;
        Some(c)
    }

    /// What is wrong: `(key, message)`.
    pub fn check(&self, durability_set: bool) -> Result<(), (String, String)> {
        match self.backend {
            Backend::Fjall => {
                let set: Vec<&str> = [
                    ("servers", !self.servers.is_empty()),
                    ("replicas", self.replicas.is_some()),
                    ("prefix", self.prefix.is_some()),
                    ("token", self.token.is_some()),
                    ("user", self.user.is_some()),
                    ("password", self.password.is_some()),
                    ("creds_file", self.creds_file.is_some()),
                    ("tls", self.tls.is_some()),
                    ("request_timeout", self.request_timeout.is_some()),
                    ("ack_wait", self.ack_wait.is_some()),
                    ("pinned_routing", self.pinned_routing.is_some()),
                ]
                .into_iter()
                .filter_map(|(k, on)| on.then_some(k))
                .collect();
                match set.first() {
                    Some(k) => Err((
                        format!("store.{k}"),
                        "applies only to backend = \"jetstream\"; set store.backend = \"jetstream\" or remove it".into(),
                    )),
                    None => Ok(()),
                }
            }
            Backend::Jetstream => {
                if durability_set {
                    return Err((
                        "server.durability".into(),
                        "does not apply with store.backend = \"jetstream\": the stream's replication decides what a 202 means (docs/scale-out.md); remove it".into(),
                    ));
                }
                let c = self
                    .jetstream(std::path::Path::new("."))
                    .expect("jetstream");
                c.check().map_err(|m| ("store".to_string(), m))
            }
        }
    }
}
