//! `[[destinations]]`: where events are delivered, and how. Each destination
//! validates itself ([`DestinationConfig::validate`]); the config aggregate
//! adds the cross-checks (unique names, routes naming destinations).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use switchyard_core::config::{Invalid, check_name};
use switchyard_core::{RateLimit, Secret};
use switchyard_signatures::{Signer, SigningConfig};

use crate::format::DeliveryFormat;
use crate::guard::{AddressPolicy, AddressRange};

/// `[[destinations]]`: one place events are delivered to.
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
    pub signing: Option<SigningConfig>,
    /// Static headers added to every delivery, e.g. an API key
    /// (`{ "x-api-key" = "env:BILLING_KEY" }`).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
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
    pub allow_addresses: Vec<AddressRange>,
    /// Outbound TLS: `{ ca_file, ca_only, client_cert, client_key }`.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
    /// `as-received` (default), `json` or `avro`: converts payloads of
    /// schema-validated topics at delivery.
    #[serde(default)]
    pub format: DeliveryFormat,
    /// The contract of what leaves: `schema = { subject = "billing-v2" }`.
    /// Each payload about to be delivered (after plugins and `format`) is
    /// validated against it; one that does not conform is dead-lettered at
    /// once, never sent. It may differ from the topic's schema: a plugin
    /// may translate between the two.
    #[serde(default)]
    pub schema: Option<switchyard_registry::SchemaRef>,
    /// Stops sending to an endpoint that keeps failing and probes it
    /// (`http` destinations; see `breaker.rs`). Absent: no breaker.
    #[serde(default)]
    pub circuit_breaker: Option<crate::breaker::BreakerConfig>,
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

/// `retry = { ... }`: the backoff policy of a destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The wait before the second attempt.
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    pub initial: Duration,
    /// Each wait is this many times the one before.
    #[serde(default = "default_retry_multiplier")]
    pub multiplier: f64,
    /// No wait is longer than this.
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

/// What delivery needs from `[server]`: the gateway-wide address rules of
/// the guard (`deny_private_destinations`, `allow_destination_addresses`).
#[derive(Debug, Clone, Default)]
pub struct AddressRules {
    pub deny_private: bool,
    pub allow: Vec<AddressRange>,
}

impl DestinationConfig {
    /// Checks what serde cannot: the name, the URL and what the address
    /// guard says of an IP-literal host, TLS and signing settings, header
    /// names and ranges. Keys in the answer are relative to the destination.
    pub fn validate(&self, rules: &AddressRules) -> Result<(), Invalid> {
        check_name(&self.name).map_err(|m| Invalid::new("name", m))?;
        if let Some(b) = &self.circuit_breaker {
            b.validate().map_err(|p| p.under("circuit_breaker"))?;
        }
        match self.kind {
            DestinationKind::Http => self.validate_http(rules)?,
            DestinationKind::Log | DestinationKind::Pull => {
                if self.tls.is_some() {
                    return Err(Invalid::new("tls", "tls applies to http destinations only"));
                }
                if self.circuit_breaker.is_some() {
                    return Err(Invalid::new(
                        "circuit_breaker",
                        "circuit_breaker applies to http destinations only",
                    ));
                }
                if !self.allow_addresses.is_empty() {
                    return Err(Invalid::new(
                        "allow_addresses",
                        "allow_addresses applies to http destinations only",
                    ));
                }
            }
        }
        if let Some(signing) = &self.signing {
            Signer::new(signing).map_err(|m| Invalid::new("signing", m))?;
        }
        for name in self.headers.keys() {
            if http::HeaderName::try_from(name.as_str()).is_err() {
                return Err(Invalid::new(
                    "headers",
                    format!("{name:?} is not a valid header name"),
                ));
            }
        }
        if self.kind == DestinationKind::Pull
            && (self.visibility_timeout.is_zero() || self.max_receives == 0)
        {
            return Err(Invalid::new(
                "visibility_timeout",
                "a pull destination needs a visibility_timeout above zero and max_receives of at least 1",
            ));
        }
        if self.concurrency == 0 {
            return Err(Invalid::new("concurrency", "must be at least 1"));
        }
        let r = &self.retry;
        if r.max_attempts == 0 {
            return Err(Invalid::new("retry.max_attempts", "must be at least 1"));
        }
        if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
            return Err(Invalid::new("retry.multiplier", "must be at least 1.0"));
        }
        if r.initial.is_zero() {
            return Err(Invalid::new("retry.initial", "must be above zero"));
        }
        Ok(())
    }

    fn validate_http(&self, rules: &AddressRules) -> Result<(), Invalid> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| Invalid::new("url", "an http destination needs a url"))?;
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Invalid::new("url", format!("{url:?}: {e}")))?;
        if uri.scheme_str() != Some("http") && uri.scheme_str() != Some("https") {
            return Err(Invalid::new(
                "url",
                format!("{url:?}: only http:// and https:// URLs can be delivered to"),
            ));
        }
        let Some(host) = uri.host() else {
            return Err(Invalid::new("url", format!("{url:?} has no host")));
        };
        // Names are checked on every connect; IP literals now.
        AddressPolicy::new(rules.deny_private, &rules.allow, &self.allow_addresses)
            .check_host(host)
            .map_err(|r| Invalid::new("url", format!("destination {:?}: {r}", self.name)))?;
        if let Some(tls) = &self.tls {
            if uri.scheme_str() != Some("https") {
                return Err(Invalid::new(
                    "tls",
                    format!(
                        "destination {:?}: tls is set but {url:?} is not https://",
                        self.name
                    ),
                ));
            }
            tls.check()
                .map_err(|m| Invalid::new("tls", format!("destination {:?}: {m}", self.name)))?;
        }
        Ok(())
    }

    /// The order of this destination's queue.
    pub fn queue_policy(&self) -> switchyard_store::QueuePolicy {
        switchyard_store::QueuePolicy {
            aging_ms: self.priority_aging.map(|a| a.as_millis().max(1) as u64),
            ordered: self.ordering.is_some(),
            hold_dead_letters: self
                .ordering
                .as_ref()
                .is_some_and(|o| o.on_dead_letter == OnDeadLetter::Block),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_defaults() {
        let r = RetryConfig::default();
        assert_eq!(r.initial, Duration::from_secs(5));
        assert_eq!(r.max_attempts, 8);
        assert_eq!(r.max_delay, Duration::from_secs(36000));
        assert_eq!(r.max_age, Duration::from_secs(3 * 86400));
    }
}
