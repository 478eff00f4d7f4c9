//! The TOML config: parsed and validated once at start, then read-only.
//!
//! [`Config`] only aggregates: each component owns its section and checks
//! it (`[[destinations]]` in `switchyard-delivery`, `[[plugins]]` in
//! `switchyard-plugin-host`, `[telemetry]` in `switchyard-telemetry`, a
//! topic's `verify` in `switchyard-signatures`, `[auth]` in [`crate::auth`],
//! `server.tls` and the listener limits in [`crate::http::listener`]). This
//! file holds `[server]` and `[[topics]]`, and checks what crosses sections:
//! unique names, a route naming a destination, a chain naming a plugin, a
//! converting destination behind a topic without a schema.
//!
//! Every struct denies unknown keys so a typo is an error that names the key,
//! not a setting silently ignored. Relative paths resolve from the config
//! file's folder. Durations (`"30s"`) and sizes (`"1MiB"`) are human-readable.
//! Each default sits beside the struct it belongs to.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;
use switchyard_core::RateLimit;
use switchyard_core::config::{Invalid, check_name, resolve_path};
use switchyard_delivery::format::DeliveryFormat;
use switchyard_delivery::guard::AddressRange;
use switchyard_delivery::{AddressRules, DestinationConfig};
use switchyard_plugin_host::PluginConfig;
use switchyard_registry::SchemaRef;
use switchyard_signatures::{Verifier, VerifyConfig};
use switchyard_store_fjall::Durability;
use switchyard_telemetry::TelemetryConfig;

pub mod store;

/// A config that failed to load: the file, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// More than one problem: each on its own line, so one run of
    /// `check-config` shows them all.
    #[error("config file {path} has {} problems:\n{}", problems.len(), list(path, problems))]
    Several {
        path: PathBuf,
        problems: Vec<Invalid>,
    },
}

impl ConfigError {
    /// Each problem as its own message (file, key, what is wrong), for
    /// answers that list them, such as a refused reload.
    pub fn messages(&self) -> Vec<String> {
        match self {
            ConfigError::Several { path, problems } => problems
                .iter()
                .map(|p| format!("config file {}: {}: {}", path.display(), p.key, p.message))
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

fn list(path: &Path, problems: &[Invalid]) -> String {
    problems
        .iter()
        .map(|p| format!("  {}: {}: {}", path.display(), p.key, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sections of the file and how each is read, so a file that does not
/// deserialize is diagnosed section by section (every bad entry named)
/// rather than at the first error serde meets.
fn diagnose(text: &str) -> Option<Vec<Invalid>> {
    fn one<T: for<'de> Deserialize<'de>>(v: &toml::Value, key: &str, out: &mut Vec<Invalid>) {
        if let Err(e) = T::deserialize(v.clone()) {
            out.push(Invalid::new(key, e.message().trim().to_owned()));
        }
    }
    fn each<T: for<'de> Deserialize<'de>>(v: &toml::Value, key: &str, out: &mut Vec<Invalid>) {
        match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    one::<T>(item, &format!("{key}[{i}]"), out);
                }
            }
            None => out.push(Invalid::new(
                key,
                format!("expected an array of tables, e.g. [[{key}]] sections"),
            )),
        }
    }
    let table: toml::Table = text.parse().ok()?;
    let mut out = Vec::new();
    for (key, v) in &table {
        match key.as_str() {
            "server" => one::<ServerConfig>(v, key, &mut out),
            "telemetry" => one::<TelemetryConfig>(v, key, &mut out),
            "auth" => one::<crate::auth::AuthConfig>(v, key, &mut out),
            "topics" => each::<TopicConfig>(v, key, &mut out),
            "destinations" => each::<DestinationConfig>(v, key, &mut out),
            "plugins" => each::<PluginConfig>(v, key, &mut out),
            "operator" => one::<OperatorConfig>(v, key, &mut out),
            "store" => one::<store::StoreConfig>(v, key, &mut out),
            other => out.push(Invalid::new(
                other,
                "unknown section: expected one of server, store, topics, destinations, \
                 plugins, telemetry, auth, operator",
            )),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub topics: Vec<TopicConfig>,
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    /// `[[plugins]]`: Wasm components that topics chain by name.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// `[telemetry]`: OTLP trace export; absent means the `OTEL_*`
    /// variables decide (and with none of them set, tracing is off).
    #[serde(default)]
    pub telemetry: Option<TelemetryConfig>,
    /// `[auth]`: API tokens and their scopes. With none, the admin API,
    /// registry writes and pull endpoints answer only loopback peers.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// `[operator]`: where operator events (a circuit opened or closed, a
    /// destination paused) are delivered as JSON events, besides the log.
    #[serde(default)]
    pub operator: Option<OperatorConfig>,
    /// `[store]`: the embedded fjall store (default) or a JetStream cluster.
    #[serde(default)]
    pub store: store::StoreConfig,
    /// The folder the config file sits in: relative paths resolve from here.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this config came from, for error messages.
    #[serde(skip)]
    pub source: PathBuf,
}

/// `[operator]`: operator events go to an existing destination, so its
/// URL, signing, retries and address guard apply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// The `[[destinations]]` entry operator events are delivered to;
    /// without one they are logged, counted and listed only.
    #[serde(default)]
    pub destination: Option<String>,
    /// A destination's DLQ reaching this many entries is an operator event
    /// (`dlq_growing`), once per crossing; without it, DLQ depth raises
    /// none.
    #[serde(default)]
    pub dlq_threshold: Option<u64>,
}

/// The topic operator events are stored under. Not a configured topic:
/// nobody can publish to it, and only the `[operator]` destination gets it.
pub const OPERATOR_TOPIC: &str = "switchyard.operator";

/// `[server]`: the listener, the store and the global limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen", deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// Where fjall keeps its files.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where compiled plugins are cached; unset: `<data_dir>/plugin-cache`.
    /// Several gateways may share one (the e2e tests do): a 12-18 MB
    /// Python or JavaScript component then compiles once, not once per
    /// data dir. It must be writable by this user only (0700): artefacts
    /// are loaded as native code.
    #[serde(default)]
    pub plugin_cache_dir: Option<PathBuf>,
    /// `sync` fsyncs (fdatasync) each group commit before the 2xx; `buffered`
    /// hands the write to the OS, which survives a process crash but not a
    /// power cut.
    /// Unset: `sync`. Refused with `store.backend = "jetstream"`.
    #[serde(default)]
    pub durability: Option<Durability>,
    /// Largest accepted request body (a batch counts as one body).
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    /// Delivered events and dead letters older than this are removed.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub retention: Duration,
    /// Ingest answers 503 while the data dir's disk has less free space than
    /// this: fjall poisons itself after a failed write, so we stop first.
    #[serde(default = "default_min_free_disk")]
    pub min_free_disk: ByteSize,
    /// Ingest answers 503 while more than this many queue entries wait for
    /// delivery across all destinations. Unset: no limit.
    #[serde(default)]
    pub max_backlog: Option<u64>,
    /// How long a `SIGTERM` waits for in-flight deliveries, and for the
    /// router to route the events already accepted, before exiting.
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Also refuse deliveries to loopback, private (RFC 1918), CGNAT and
    /// other non-public addresses, for gateways that forward to the
    /// internet. Metadata and link-local addresses are refused regardless.
    #[serde(default)]
    pub deny_private_destinations: bool,
    /// Addresses or CIDR ranges deliveries may reach even when the
    /// address guard would refuse them (`["169.254.170.2/32"]`).
    #[serde(default)]
    pub allow_destination_addresses: Vec<AddressRange>,
    /// Serve HTTPS instead of HTTP: `{ cert = "cert.pem", key = "key.pem" }`
    /// (PEM files, read at start; `handshake_timeout` optional).
    #[serde(default)]
    pub tls: Option<crate::http::listener::TlsConfig>,
    /// A request's headers must arrive within this much of its first byte
    /// (and a new connection must start its first request within it):
    /// a client that dribbles headers (slowloris) is cut off.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A request's whole body must arrive within this much of its headers;
    /// ingest answers 408 otherwise, so a stalled upload frees its slot.
    #[serde(default = "default_body_read_timeout", with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Largest request head (request line and headers); over it, 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: ByteSize,
    /// Most headers a request may carry; over it, 431.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Open connections at most. Further clients wait in the listen backlog
    /// until a connection closes, so a flood cannot exhaust file descriptors.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

/// `[[topics]]`: a named stream that senders publish to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub name: String,
    /// Destinations every event goes to when no plugin decides.
    #[serde(default)]
    pub routes: Vec<String>,
    /// How long an `Idempotency-Key` (or `webhook-id`) is remembered.
    #[serde(default = "default_idempotency_window", with = "humantime_serde")]
    pub idempotency_window: Duration,
    /// A sender header that may set the priority (0-9, 9 most urgent).
    /// Unset: senders cannot choose; plugins still can.
    #[serde(default)]
    pub priority_header: Option<String>,
    /// Per-topic body limit; defaults to `server.max_body`. With
    /// `Content-Encoding: gzip` it applies to the decompressed body (and
    /// to the compressed one).
    #[serde(default)]
    pub max_body: Option<ByteSize>,
    /// Events per second this topic accepts (`"500/s"`, `"1000/m"`), in
    /// bursts of up to one second's worth; over it, 429 with `Retry-After`.
    /// A batch counts each of its events. Unset: no limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Validate payloads against a registry subject (optionally a pinned
    /// version): `schema = { subject = "orders-value" }`.
    #[serde(default)]
    pub schema: Option<SchemaRef>,
    /// Signature check on the raw body before anything is stored.
    #[serde(default)]
    pub verify: Option<VerifyConfig>,
    /// `"open"` (default): anyone may publish; `"token"`: a token with
    /// `publish:TOPIC` (or `admin`) is required, besides any `verify`.
    #[serde(default)]
    pub auth: crate::auth::TopicAuth,
    /// Plugin names, run in this order over each batch; each sees the
    /// events as the previous one left them.
    #[serde(default)]
    pub plugins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            plugin_cache_dir: None,
            durability: None,
            max_body: default_max_body(),
            retention: default_retention(),
            min_free_disk: default_min_free_disk(),
            max_backlog: None,
            shutdown_grace: default_shutdown_grace(),
            deny_private_destinations: false,
            allow_destination_addresses: Vec::new(),
            tls: None,
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            body_read_timeout: default_body_read_timeout(),
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./switchyard-data")
}
fn default_max_body() -> ByteSize {
    ByteSize::mib(1)
}
fn default_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_min_free_disk() -> ByteSize {
    ByteSize::gib(1)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(10)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_body_read_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_header_bytes() -> ByteSize {
    ByteSize::kib(64)
}
fn default_max_headers() -> usize {
    100
}
fn default_max_connections() -> usize {
    4096
}
fn default_idempotency_window() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl Default for Config {
    /// What `switchyard serve` runs with no config file: 127.0.0.1:8080, data
    /// in ./switchyard-data, no topics.
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            topics: Vec::new(),
            destinations: Vec::new(),
            plugins: Vec::new(),
            telemetry: None,
            auth: crate::auth::AuthConfig::default(),
            operator: None,
            store: store::StoreConfig::default(),
            base_dir: PathBuf::from("."),
            source: PathBuf::from("<defaults>"),
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        Self::parse(&text, path, &base)
    }

    /// Parses and validates config text; `base_dir` anchors relative paths.
    pub fn parse(text: &str, source: &Path, base_dir: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            // A TOML syntax error stops everything; a file that is TOML but
            // not a valid config is read section by section, naming each
            // bad entry.
            match diagnose(text) {
                Some(mut problems) if problems.len() > 1 => ConfigError::Several {
                    path: source.to_owned(),
                    problems: std::mem::take(&mut problems),
                },
                _ => ConfigError::Parse {
                    path: source.to_owned(),
                    message: e.to_string(),
                },
            }
        })?;
        config.source = source.to_owned();
        config.base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir.to_owned()
        };
        config.server.data_dir = config.resolve_path(&config.server.data_dir);
        config.server.plugin_cache_dir = config
            .server
            .plugin_cache_dir
            .as_ref()
            .map(|d| config.resolve_path(d));
        let plugin_paths: Vec<PathBuf> = config
            .plugins
            .iter()
            .map(|p| config.resolve_path(&p.path))
            .collect();
        for (p, path) in config.plugins.iter_mut().zip(plugin_paths) {
            p.path = path;
        }
        let base = config.base_dir.clone();
        if let Some(tls) = &mut config.server.tls {
            tls.resolve_paths(&base);
        }
        for d in &mut config.destinations {
            if let Some(tls) = &mut d.tls {
                tls.resolve_paths(|p| resolve_path(&base, p));
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// A path from the config, made absolute against the config's folder.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        resolve_path(&self.base_dir, p)
    }

    fn invalid(&self, problem: Invalid) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.clone(),
            key: problem.key,
            message: problem.message,
        }
    }

    /// The JetStream store's settings (`None`: the embedded fjall store),
    /// knowing whether a destination is ordered (that pins routing to one
    /// gateway at a time unless `store.pinned_routing` says otherwise).
    pub fn jetstream_store(&self) -> Option<switchyard_store_jetstream::JetStreamConfig> {
        let mut c = self.store.jetstream(&self.base_dir)?;
        c.ordered_destinations = self.destinations.iter().any(|d| d.ordering.is_some());
        Some(c)
    }

    /// What delivery needs from `[server]`.
    pub fn address_rules(&self) -> AddressRules {
        AddressRules {
            deny_private: self.server.deny_private_destinations,
            allow: self.server.allow_destination_addresses.clone(),
        }
    }

    /// Checks what serde cannot. Each section validates itself; this adds
    /// the checks that cross sections. Every problem is reported, not only
    /// the first (each section still stops at its own first one).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = self.check();
        // A bad name is found by the uniqueness check and by its section.
        let mut seen = HashSet::new();
        problems.retain(|p| seen.insert((p.key.clone(), p.message.clone())));
        match problems.len() {
            0 => Ok(()),
            1 => Err(self.invalid(problems.remove(0))),
            _ => Err(ConfigError::Several {
                path: self.source.clone(),
                problems,
            }),
        }
    }

    fn check(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if let Err((key, message)) = crate::http::listener::validate(&self.server) {
            out.push(Invalid::new(key, message).under("server"));
        }
        positive(&mut out, "server.retention", self.server.retention, "7d");
        if let Err((key, message)) = self.store.check(self.server.durability.is_some()) {
            out.push(Invalid::new(key, message));
        }
        let rules = self.address_rules();
        let mut dest_names = HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            let key = format!("destinations[{i}]");
            if let Err(p) = unique(&mut dest_names, &d.name, "destination", &key) {
                out.push(p);
            }
            if let Err(p) = d.validate(&rules) {
                out.push(p.under(&key));
            }
            // Durations that make no sense at zero: an attempt with no time,
            // a retry policy that cannot wait or has no age to retry within.
            positive(&mut out, &format!("{key}.timeout"), d.timeout, "10s");
            positive(
                &mut out,
                &format!("{key}.retry.max_delay"),
                d.retry.max_delay,
                "1h",
            );
            positive(
                &mut out,
                &format!("{key}.retry.max_age"),
                d.retry.max_age,
                "24h",
            );
            if let Some(a) = d.priority_aging {
                positive(&mut out, &format!("{key}.priority_aging"), a, "30s");
            }
        }
        let mut plugin_names = HashSet::new();
        for (i, p) in self.plugins.iter().enumerate() {
            let key = format!("plugins[{i}]");
            if let Err(e) = unique(&mut plugin_names, &p.name, "plugin", &key) {
                out.push(e);
            }
            if let Err(e) = p.validate() {
                out.push(e.under(&key));
            }
        }
        let mut topic_names = HashSet::new();
        for (i, t) in self.topics.iter().enumerate() {
            let key = format!("topics[{i}]");
            if let Err(p) = unique(&mut topic_names, &t.name, "topic", &key) {
                out.push(p);
            }
            if let Err(p) = t.validate() {
                out.push(p.under(&key));
            }
            positive(
                &mut out,
                &format!("{key}.idempotency_window"),
                t.idempotency_window,
                "24h",
            );
            for (j, p) in t.plugins.iter().enumerate() {
                if !plugin_names.contains(p.as_str()) {
                    out.push(Invalid::new(
                        format!("{key}.plugins[{j}]"),
                        format!("unknown plugin {p:?}: no [[plugins]] entry has this name"),
                    ));
                }
            }
            for (j, r) in t.routes.iter().enumerate() {
                if !dest_names.contains(r.as_str()) {
                    out.push(Invalid::new(
                        format!("{key}.routes[{j}]"),
                        format!(
                            "unknown destination {r:?}: name a [[destinations]] entry, e.g. \
                             routes = [\"{}\"]",
                            self.destinations
                                .first()
                                .map(|d| d.name.as_str())
                                .unwrap_or("billing")
                        ),
                    ));
                    continue;
                }
                if t.schema.is_none()
                    && self
                        .destination(r)
                        .is_some_and(|d| d.format != DeliveryFormat::AsReceived)
                {
                    out.push(Invalid::new(
                        format!("{key}.routes[{j}]"),
                        format!(
                            "destination {r:?} converts payloads (format), which needs a schema: \
                             give this topic `schema = {{ subject = ... }}`"
                        ),
                    ));
                }
            }
        }
        if let Some(t) = &self.telemetry
            && let Err(p) = t.validate()
        {
            out.push(p.under("telemetry"));
        }
        if let Err((key, message)) = crate::auth::validate(self) {
            out.push(Invalid::new(key, message));
        }
        if let Some(dest) = self.operator.as_ref().and_then(|o| o.destination.as_ref())
            && !self.destinations.iter().any(|d| &d.name == dest)
        {
            out.push(Invalid::new(
                "operator.destination",
                format!("unknown destination {dest:?}: name one of [[destinations]]"),
            ));
        }
        if self.operator.as_ref().and_then(|o| o.dlq_threshold) == Some(0) {
            out.push(Invalid::new(
                "operator.dlq_threshold",
                "must be at least 1 (leave it out for no DLQ events), e.g. 100",
            ));
        }
        out
    }

    /// The topic named `name`, if configured.
    pub fn topic(&self, name: &str) -> Option<&TopicConfig> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The destination named `name`, if configured.
    pub fn destination(&self, name: &str) -> Option<&DestinationConfig> {
        self.destinations.iter().find(|d| d.name == name)
    }
}

/// `server.listen`: an IP address and port. Host names are refused with an
/// example, since `localhost:8080` is the usual first try.
fn listen_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{s:?} is not an IP address and port: use e.g. \"127.0.0.1:8080\" or \"[::]:8080\" \
             (a host name such as localhost is not accepted)"
        ))
    })
}

/// A duration that must be above zero, with an example of one that is.
fn positive(out: &mut Vec<Invalid>, key: &str, d: Duration, example: &str) {
    if d.is_zero() {
        out.push(Invalid::new(
            key,
            format!("must be above zero, e.g. \"{example}\""),
        ));
    }
}

/// A valid name, seen once: `names` remembers it.
fn unique<'a>(
    names: &mut HashSet<&'a str>,
    name: &'a str,
    what: &str,
    key: &str,
) -> Result<(), Invalid> {
    check_name(name).map_err(|m| Invalid::new(format!("{key}.name"), m))?;
    if !names.insert(name) {
        return Err(Invalid::new(
            format!("{key}.name"),
            format!("{what} {name:?} is defined twice"),
        ));
    }
    Ok(())
}

impl TopicConfig {
    /// Checks one topic on its own: its name and its signature settings.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name(&self.name).map_err(|m| Invalid::new("name", m))?;
        if let Some(v) = &self.verify {
            Verifier::new(v).map_err(|m| Invalid::new("verify", m))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"), Path::new("/base"))
    }

    #[test]
    fn defaults_match_the_design() {
        let c = parse("").expect("empty config is valid");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.max_body, ByteSize::mib(1));
        assert_eq!(c.server.data_dir, PathBuf::from("/base/./switchyard-data"));
        assert!(c.server.tls.is_none());
        assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.server.body_read_timeout, Duration::from_secs(30));
        assert_eq!(c.server.max_header_bytes, ByteSize::kib(64));
        assert_eq!(c.server.max_headers, 100);
        assert_eq!(c.server.max_connections, 4096);
    }

    #[test]
    fn listener_limits_out_of_range_name_the_key() {
        for (text, key) in [
            (
                "[server]\nmax_header_bytes = \"4KiB\"\n",
                "server.max_header_bytes",
            ),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            (
                "[server]\nheader_read_timeout = \"0s\"\n",
                "server.header_read_timeout",
            ),
            (
                "[server]\ntls = { cert = \"nope.pem\", key = \"nope.key\" }\n",
                "/base/nope.pem",
            ),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn an_ordered_destination_pins_routing_unless_the_store_says_otherwise() {
        let js = "[store]\nbackend = \"jetstream\"\nservers = [\"nats://127.0.0.1:4222\"]\n";
        let ordered =
            "[[destinations]]\nname = \"d\"\nkind = \"log\"\nordering = { key = \"header:x-k\" }\n";
        let plain = "[[destinations]]\nname = \"d\"\nkind = \"log\"\n";
        for (text, pinned) in [
            (format!("{js}{ordered}"), true),
            (format!("{js}{plain}"), false),
            (format!("{js}pinned_routing = false\n{ordered}"), false),
            (format!("{js}pinned_routing = true\n{plain}"), true),
        ] {
            let c = parse(&text)
                .expect(&text)
                .jetstream_store()
                .expect("jetstream");
            assert_eq!(c.pins_routing(), pinned, "{text}");
        }
        let err = parse("[store]\npinned_routing = true\n").expect_err("fjall");
        assert!(err.to_string().contains("store.pinned_routing"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n").expect_err("typo");
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn unknown_route_names_the_key() {
        let err = parse(
            "[[destinations]]\nname = \"a\"\nkind = \"log\"\n[[topics]]\nname = \"t\"\nroutes = [\"b\"]\n",
        )
        .expect_err("unknown destination");
        let msg = err.to_string();
        assert!(
            msg.contains("topics[0].routes[0]") && msg.contains("\"b\""),
            "{msg}"
        );
    }

    #[test]
    fn telemetry_values_are_checked_at_load_naming_the_key() {
        let err = parse("[telemetry]\nsample_ratio = 1.5\n").expect_err("out of range");
        assert!(
            err.to_string().contains("telemetry.sample_ratio") && err.to_string().contains("1.5"),
            "{err}"
        );
        let err =
            parse("[telemetry]\notlp_endpoint = \"localhost:4317\"\n").expect_err("no scheme");
        assert!(err.to_string().contains("telemetry.otlp_endpoint"), "{err}");
    }

    #[test]
    fn sections_check_themselves_and_the_aggregate_names_the_path() {
        for (text, key) in [
            (
                "[[destinations]]\nname = \"a\"\nkind = \"log\"\nretry = { initial = \"0s\" }\n",
                "destinations[0].retry.initial",
            ),
            (
                "[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\ntimeout = \"0s\"\n",
                "plugins[0].timeout",
            ),
            ("[[topics]]\nname = \"bad name\"\n", "topics[0].name"),
            (
                "[[destinations]]\nname = \"a\"\nkind = \"log\"\n[[destinations]]\nname = \"a\"\nkind = \"log\"\n",
                "destinations[1].name",
            ),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(err.starts_with("config file test.toml: "), "{err}");
        }
    }

    #[test]
    fn http_destination_needs_a_url() {
        let err = parse("[[destinations]]\nname = \"a\"\nkind = \"http\"\n").expect_err("no url");
        assert!(err.to_string().contains("destinations[0].url"), "{err}");
    }
}
