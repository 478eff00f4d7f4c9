//! The TOML config: parsed and validated once at start, then read-only.
//!
//! Every struct denies unknown keys so a typo is an error that names the key,
//! not a setting silently ignored. Relative paths resolve from the config
//! file's folder. Durations (`"30s"`) and sizes (`"1MiB"`) are human-readable.
//! Defaults live in the `default_*` functions of this file and nowhere else.

mod secret;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

pub use secret::Secret;

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
    pub plugins: Vec<crate::plugins::PluginConfig>,
    /// `[telemetry]`: OTLP trace export; absent means the `OTEL_*`
    /// variables decide (and with none of them set, tracing is off).
    #[serde(default)]
    pub telemetry: Option<crate::telemetry::TelemetryConfig>,
    /// `[auth]`: API tokens and their scopes. With none, the admin API,
    /// registry writes and pull endpoints answer only loopback peers.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// The folder the config file sits in: relative paths resolve from here.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this config came from, for error messages.
    #[serde(skip)]
    pub source: PathBuf,
}

/// `[server]`: the listener, the store and the global limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where fjall keeps its files.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `sync` fsyncs (fdatasync) each group commit before the 2xx; `buffered`
    /// hands the write to the OS, which survives a process crash but not a
    /// power cut.
    #[serde(default)]
    pub durability: Durability,
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
    /// How long a `SIGTERM` waits for in-flight deliveries before exiting.
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
    pub allow_destination_addresses: Vec<crate::delivery::guard::AddressRange>,
    /// Serve HTTPS instead of HTTP: `{ cert = "cert.pem", key = "key.pem" }`
    /// (PEM files, read at start; `handshake_timeout` optional).
    #[serde(default)]
    pub tls: Option<crate::server::listener::TlsConfig>,
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

/// How hard ingest pushes a write to disk before answering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync through the group commit (survives power loss).
    #[default]
    Sync,
    /// Written to the OS before answering (survives a process crash).
    Buffered,
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
    pub schema: Option<crate::registry::SchemaRef>,
    /// Signature check on the raw body before anything is stored.
    #[serde(default)]
    pub verify: Option<crate::ingest::verify::VerifyConfig>,
    /// `"open"` (default): anyone may publish; `"token"`: a token with
    /// `publish:TOPIC` (or `admin`) is required, besides any `verify`.
    #[serde(default)]
    pub auth: crate::auth::TopicAuth,
    /// Plugin names, run in this order over each batch; each sees the
    /// events as the previous one left them.
    #[serde(default)]
    pub plugins: Vec<String>,
}

/// `[[destinations]]`: where events are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    pub name: String,
    pub kind: DestinationKind,
    /// Target of an `http` destination.
    #[serde(default)]
    pub url: Option<String>,
    /// Time allowed for one delivery attempt, from connect to the full response.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Deliveries in flight at once to this destination.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Optional outbound cap, e.g. `"200/s"` or `"1000/m"`.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Sender headers passed on to the destination (content-type always is).
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Standard Webhooks signing of every delivery.
    #[serde(default)]
    pub signing: Option<crate::delivery::signing::SigningConfig>,
    /// Static headers added to every delivery, e.g. an API key
    /// (`{ "x-api-key" = "env:BILLING_KEY" }`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
    /// FIFO per key: `{ key = "header:x-account" }`, `"pointer:/account"`, or
    /// `"plugin"` (the ordering key a plugin verdict sets).
    #[serde(default)]
    pub ordering: Option<OrderingConfig>,
    /// Waiting this long lifts an entry one priority level, so low-priority
    /// events never starve behind a stream of urgent ones. Unset: strict priority.
    #[serde(default, with = "humantime_serde")]
    pub priority_aging: Option<Duration>,
    /// `kind = "pull"`: how long a received message stays invisible to others.
    #[serde(default = "default_visibility_timeout", with = "humantime_serde")]
    pub visibility_timeout: Duration,
    /// `kind = "pull"`: receives without an ack before the message is dead-lettered.
    #[serde(default = "default_max_receives")]
    pub max_receives: u32,
    /// Addresses or CIDR ranges this destination may reach despite the
    /// address guard, on top of `server.allow_destination_addresses`.
    #[serde(default)]
    pub allow_addresses: Vec<crate::delivery::guard::AddressRange>,
    /// Outbound TLS: `{ ca_file, ca_only, client_cert, client_key }`.
    #[serde(default)]
    pub tls: Option<crate::delivery::tls::TlsConfig>,
    /// `as-received` (default), `json` or `avro`: converts payloads of
    /// schema-validated topics at delivery.
    #[serde(default)]
    pub format: crate::delivery::format::DeliveryFormat,
}

/// `ordering = { key = "..." }`: where a destination's ordering key comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderingConfig {
    pub key: OrderingKey,
    /// When a key's head is dead-lettered: `continue` (default) lets the
    /// key's next event go; `block` holds the key until that dead letter is
    /// replayed or purged, for flows where a gap is worse than a stall.
    #[serde(default)]
    pub on_dead_letter: OnDeadLetter,
}

/// What a FIFO key does when its head is dead-lettered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDeadLetter {
    #[default]
    Continue,
    Block,
}

/// The source of an ordering key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderingKey {
    /// A sender header (lower-cased name).
    Header(String),
    /// A JSON Pointer into the (JSON) payload.
    Pointer(String),
    /// The `ordering_key` of the plugin chain's verdict.
    Plugin,
}

impl<'de> Deserialize<'de> for OrderingKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if let Some(h) = raw.strip_prefix("header:") {
            if http::HeaderName::try_from(h).is_ok() {
                return Ok(Self::Header(h.to_ascii_lowercase()));
            }
        } else if let Some(p) = raw.strip_prefix("pointer:") {
            if p.starts_with('/') {
                return Ok(Self::Pointer(p.to_owned()));
            }
        } else if raw == "plugin" {
            return Ok(Self::Plugin);
        }
        Err(serde::de::Error::custom(format!(
            "invalid ordering key {raw:?}: expected \"header:NAME\", \"pointer:/json/pointer\" or \"plugin\""
        )))
    }
}

/// The kinds of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// HTTP POST push with retries.
    Http,
    /// Writes each event to the gateway's log; useful to try things out.
    Log,
    /// A durable queue that consumers drain over HTTP (receive/ack/nack).
    Pull,
}

/// `retry = { ... }`: the backoff policy of a destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    pub initial: Duration,
    #[serde(default = "default_retry_multiplier")]
    pub multiplier: f64,
    #[serde(default = "default_retry_max_delay", with = "humantime_serde")]
    pub max_delay: Duration,
    /// Attempts in all, the first included.
    #[serde(default = "default_retry_max_attempts")]
    pub max_attempts: u32,
    /// No retry is scheduled past this age of the event.
    #[serde(default = "default_retry_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// Extra status codes to retry besides 408, 429 and 5xx (e.g. `[409]`).
    #[serde(default)]
    pub retry_on: Vec<u16>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial: default_retry_initial(),
            multiplier: default_retry_multiplier(),
            max_delay: default_retry_max_delay(),
            max_attempts: default_retry_max_attempts(),
            max_age: default_retry_max_age(),
            retry_on: Vec::new(),
        }
    }
}

/// An outbound rate, parsed from `"N/s"`, `"N/m"` or `"N/h"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained rate in events per second.
    pub per_second: f64,
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        parse_rate(&raw).map_err(serde::de::Error::custom)
    }
}

fn parse_rate(raw: &str) -> Result<RateLimit, String> {
    let bad = || format!("invalid rate {raw:?}: expected N/s, N/m or N/h, e.g. \"200/s\"");
    let (n, unit) = raw.split_once('/').ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(bad()),
    };
    if !(n.is_finite() && n > 0.0) {
        return Err(bad());
    }
    let per_second = n / secs;
    // The limiters and pacers run one permit every 1/per_second seconds: a
    // period that rounds to zero (tokio's interval), or that governor can't
    // hold (over 584 years), would panic them at start.
    match Duration::try_from_secs_f64(1.0 / per_second) {
        Ok(period) if !period.is_zero() && period <= MAX_RATE_PERIOD => {
            Ok(RateLimit { per_second })
        }
        _ => Err(format!(
            "invalid rate {raw:?}: out of range (from one event a year up to 1000000000/s)"
        )),
    }
}

/// The slowest rate: one event a year.
const MAX_RATE_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            durability: Durability::default(),
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
pub(crate) fn default_tls_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idempotency_window() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrency() -> usize {
    16
}
fn default_visibility_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_receives() -> u32 {
    5
}
fn default_retry_initial() -> Duration {
    Duration::from_secs(5)
}
fn default_retry_multiplier() -> f64 {
    5.0
}
fn default_retry_max_delay() -> Duration {
    Duration::from_secs(10 * 3600)
}
fn default_retry_max_attempts() -> u32 {
    8
}
fn default_retry_max_age() -> Duration {
    Duration::from_secs(3 * 24 * 3600)
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
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: source.to_owned(),
            message: e.to_string(),
        })?;
        config.source = source.to_owned();
        config.base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir.to_owned()
        };
        config.server.data_dir = config.resolve_path(&config.server.data_dir);
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
                tls.resolve_paths(|p| {
                    if p.is_absolute() {
                        p.to_owned()
                    } else {
                        base.join(p)
                    }
                });
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// A path from the config, made absolute against the config's folder.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Checks what serde cannot: names, references between sections, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::server::listener::validate(&self.server)
            .map_err(|(key, message)| self.invalid(format!("server.{key}"), message))?;
        let mut dest_names = HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            let key = format!("destinations[{i}]");
            check_name(&d.name).map_err(|m| self.invalid(format!("{key}.name"), m))?;
            if !dest_names.insert(d.name.as_str()) {
                return Err(self.invalid(
                    format!("{key}.name"),
                    format!("destination {:?} is defined twice", d.name),
                ));
            }
            match d.kind {
                DestinationKind::Http => {
                    let url = d.url.as_deref().ok_or_else(|| {
                        self.invalid(format!("{key}.url"), "an http destination needs a url")
                    })?;
                    let uri: http::Uri = url
                        .parse()
                        .map_err(|e| self.invalid(format!("{key}.url"), format!("{url:?}: {e}")))?;
                    if uri.scheme_str() != Some("http") && uri.scheme_str() != Some("https") {
                        return Err(self.invalid(
                            format!("{key}.url"),
                            format!("{url:?}: only http:// and https:// URLs can be delivered to"),
                        ));
                    }
                    let Some(host) = uri.host() else {
                        return Err(
                            self.invalid(format!("{key}.url"), format!("{url:?} has no host"))
                        );
                    };
                    // Names are checked on every connect; IP literals now.
                    crate::delivery::guard::AddressPolicy::new(
                        self.server.deny_private_destinations,
                        &self.server.allow_destination_addresses,
                        &d.allow_addresses,
                    )
                    .check_host(host)
                    .map_err(|r| {
                        self.invalid(
                            format!("{key}.url"),
                            format!("destination {:?}: {r}", d.name),
                        )
                    })?;
                    if let Some(tls) = &d.tls {
                        if uri.scheme_str() != Some("https") {
                            return Err(self.invalid(
                                format!("{key}.tls"),
                                format!(
                                    "destination {:?}: tls is set but {url:?} is not https://",
                                    d.name
                                ),
                            ));
                        }
                        tls.check().map_err(|m| {
                            self.invalid(
                                format!("{key}.tls"),
                                format!("destination {:?}: {m}", d.name),
                            )
                        })?;
                    }
                }
                DestinationKind::Log | DestinationKind::Pull => {
                    if d.tls.is_some() {
                        return Err(self.invalid(
                            format!("{key}.tls"),
                            "tls applies to http destinations only",
                        ));
                    }
                    if !d.allow_addresses.is_empty() {
                        return Err(self.invalid(
                            format!("{key}.allow_addresses"),
                            "allow_addresses applies to http destinations only",
                        ));
                    }
                }
            }
            if let Some(signing) = &d.signing {
                crate::delivery::signing::Signer::new(signing)
                    .map_err(|m| self.invalid(format!("{key}.signing"), m))?;
            }
            for name in d.headers.keys() {
                if http::HeaderName::try_from(name.as_str()).is_err() {
                    return Err(self.invalid(
                        format!("{key}.headers"),
                        format!("{name:?} is not a valid header name"),
                    ));
                }
            }
            if d.kind == DestinationKind::Pull
                && (d.visibility_timeout.is_zero() || d.max_receives == 0)
            {
                return Err(self.invalid(
                    format!("{key}.visibility_timeout"),
                    "a pull destination needs a visibility_timeout above zero and max_receives of at least 1",
                ));
            }
            if d.concurrency == 0 {
                return Err(self.invalid(format!("{key}.concurrency"), "must be at least 1"));
            }
            if d.retry.max_attempts == 0 {
                return Err(self.invalid(format!("{key}.retry.max_attempts"), "must be at least 1"));
            }
            if !(d.retry.multiplier.is_finite() && d.retry.multiplier >= 1.0) {
                return Err(self.invalid(format!("{key}.retry.multiplier"), "must be at least 1.0"));
            }
            if d.retry.initial.is_zero() {
                return Err(self.invalid(format!("{key}.retry.initial"), "must be above zero"));
            }
        }
        let mut plugin_names = HashSet::new();
        for (i, p) in self.plugins.iter().enumerate() {
            let key = format!("plugins[{i}]");
            check_name(&p.name).map_err(|m| self.invalid(format!("{key}.name"), m))?;
            if !plugin_names.insert(p.name.as_str()) {
                return Err(self.invalid(
                    format!("{key}.name"),
                    format!("plugin {:?} is defined twice", p.name),
                ));
            }
            if p.timeout.is_zero() {
                return Err(self.invalid(format!("{key}.timeout"), "must be above zero"));
            }
            if p.max_memory.as_u64() < 1024 * 1024 {
                return Err(self.invalid(format!("{key}.max_memory"), "must be at least 1MiB"));
            }
        }
        let mut topic_names = HashSet::new();
        for (i, t) in self.topics.iter().enumerate() {
            let key = format!("topics[{i}]");
            check_name(&t.name).map_err(|m| self.invalid(format!("{key}.name"), m))?;
            if !topic_names.insert(t.name.as_str()) {
                return Err(self.invalid(
                    format!("{key}.name"),
                    format!("topic {:?} is defined twice", t.name),
                ));
            }
            if let Some(v) = &t.verify {
                crate::ingest::verify::Verifier::new(v)
                    .map_err(|m| self.invalid(format!("{key}.verify"), m))?;
            }
            for (j, p) in t.plugins.iter().enumerate() {
                if !plugin_names.contains(p.as_str()) {
                    return Err(self.invalid(
                        format!("{key}.plugins[{j}]"),
                        format!("unknown plugin {p:?}: no [[plugins]] entry has this name"),
                    ));
                }
            }
            for (j, r) in t.routes.iter().enumerate() {
                if !dest_names.contains(r.as_str()) {
                    return Err(self.invalid(
                        format!("{key}.routes[{j}]"),
                        format!("unknown destination {r:?}"),
                    ));
                }
                if t.schema.is_none()
                    && self.destination(r).is_some_and(|d| {
                        d.format != crate::delivery::format::DeliveryFormat::AsReceived
                    })
                {
                    return Err(self.invalid(
                        format!("{key}.routes[{j}]"),
                        format!(
                            "destination {r:?} converts payloads (format), which needs a schema: \
                             give this topic `schema = {{ subject = ... }}`"
                        ),
                    ));
                }
            }
        }
        crate::auth::validate(self).map_err(|(key, message)| self.invalid(key, message))?;
        Ok(())
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

/// Topic and destination names appear in URLs and store keys: keep them tame.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: use 1-128 characters of A-Z, a-z, 0-9, '-', '_' or '.'"
        ))
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
        let r = RetryConfig::default();
        assert_eq!(r.initial, Duration::from_secs(5));
        assert_eq!(r.max_attempts, 8);
        assert_eq!(r.max_delay, Duration::from_secs(36000));
        assert_eq!(r.max_age, Duration::from_secs(3 * 86400));
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
    fn http_destination_needs_a_url() {
        let err = parse("[[destinations]]\nname = \"a\"\nkind = \"http\"\n").expect_err("no url");
        assert!(err.to_string().contains("destinations[0].url"), "{err}");
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("200/s").map(|r| r.per_second), Ok(200.0));
        assert_eq!(parse_rate("60/m").map(|r| r.per_second), Ok(1.0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0/s").is_err());
    }

    #[test]
    fn rates_whose_period_cannot_be_scheduled_are_refused() {
        // 1/per_second must be a non-zero Duration that governor can hold:
        // the limiters and the destination pacer would panic at start.
        for raw in [
            "1e10/s", "1e300/m", "1e-300/h", "5e-324/s", "1e-11/s", "0.0001/h",
        ] {
            let err = parse_rate(raw).expect_err(raw);
            assert!(err.contains("out of range"), "{raw}: {err}");
        }
        assert_eq!(parse_rate("1000000000/s").map(|r| r.per_second), Ok(1e9));
        assert!(parse_rate("0.001/h").is_ok(), "about nine a year");
    }
}
