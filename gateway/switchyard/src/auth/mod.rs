//! API access: bearer tokens with scopes, per-token rate limits, and the
//! loopback rule that guards a gateway configured without tokens.
//!
//! Who may do what:
//! - the admin API (`/v1/events`, `/v1/destinations`, DLQs, ...) needs `admin`;
//! - pull endpoints (`/v1/queues/{name}/...`) need `consume:NAME` (or `admin`);
//! - registry writes (register, delete, config and mode changes) need `admin`;
//!   reads, lookups and compatibility checks stay open, as on Confluent's;
//! - ingest on a topic with `auth = "token"` needs `publish:TOPIC` (or `admin`);
//! - `/healthz`, `/readyz` and `/metrics` are always open.
//!
//! A token travels as `Authorization: Bearer <token>` or as the password of
//! HTTP Basic auth (any user name), which is what Confluent's clients send
//! for `basic.auth.user.info`. With no tokens configured, every guarded
//! endpoint answers only loopback peers: a fresh install is usable on the
//! machine it runs on and closed to the network.
//!
//! Module map: this file holds the config types, their validation and the
//! decision ([`Auth::check`]); [`layer`] the axum middlewares that apply it
//! and turn refusals into answers (the gateway's error shape, or Confluent's
//! on `/registry`).

pub mod layer;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;

use axum::http::{HeaderMap, header};
use base64::Engine;
use governor::DefaultDirectRateLimiter;
use governor::clock::Clock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use switchyard_core::rate as ratelimit;
use switchyard_core::{RateLimit, Secret};
use switchyard_delivery::DestinationKind;

use crate::config::Config;
use switchyard_telemetry::metrics::TokenReason;

/// Shortest accepted token: anything shorter can be guessed over the network.
const MIN_SECRET_LEN: usize = 16;

/// `[auth]`: the API tokens.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// With none, guarded endpoints answer only loopback peers.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// One token: `{ name = "ci", secret = "env:CI_TOKEN", scopes = [...] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Names the token in logs, metrics and 403 messages, where the secret
    /// itself must never appear.
    pub name: String,
    /// The token itself, `env:NAME` (`Debug` shows only where it came from).
    #[serde(alias = "token")]
    pub secret: Secret,
    /// What the token may do: `admin`, `publish:TOPIC`, `consume:DESTINATION`,
    /// with `*` for every topic or pull destination.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// Requests per second (`"100/s"`, `"600/m"`); over it, 429 with
    /// `Retry-After`. Bursts of up to one second's worth are allowed.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// A topic's `auth`: who may publish to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicAuth {
    /// Anyone who can reach the port (webhook senders; `verify` still applies).
    #[default]
    Open,
    /// A token with `publish:TOPIC` (or `admin`) is required.
    Token,
}

/// One permission a token holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The admin API, registry writes, every publish and every consume.
    Admin,
    Publish(Target),
    Consume(Target),
    /// A string that is none of the above: kept so that validation can name
    /// the exact key instead of failing inside the TOML parser.
    Unknown(String),
}

/// What a publish or consume scope covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `*`: every topic, or every pull destination.
    Any,
    Named(String),
}

impl Target {
    fn covers(&self, name: &str) -> bool {
        match self {
            Target::Any => true,
            Target::Named(n) => n == name,
        }
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Scope::parse(&String::deserialize(d)?))
    }
}

impl Scope {
    pub fn parse(raw: &str) -> Scope {
        let target = |t: &str| match t {
            "*" => Target::Any,
            t => Target::Named(t.to_owned()),
        };
        match raw.split_once(':') {
            None if raw == "admin" => Scope::Admin,
            Some(("publish", t)) if !t.is_empty() => Scope::Publish(target(t)),
            Some(("consume", t)) if !t.is_empty() => Scope::Consume(target(t)),
            _ => Scope::Unknown(raw.to_owned()),
        }
    }

    fn grants(&self, need: &Need<'_>) -> bool {
        match (self, need) {
            (Scope::Admin, _) => true,
            (Scope::Publish(t), Need::Publish(topic)) => t.covers(topic),
            (Scope::Consume(t), Need::Consume(dest)) => t.covers(dest),
            _ => false,
        }
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    Admin,
    Publish(&'a str),
    Consume(&'a str),
}

impl fmt::Display for Need<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Admin => write!(f, "admin"),
            Need::Publish(t) => write!(f, "publish:{t}"),
            Need::Consume(d) => write!(f, "consume:{d}"),
        }
    }
}

/// Checks `[auth]` and the topics' `auth` against the rest of the config.
/// Errors are `(key, message)`; the message never contains a secret.
pub(crate) fn validate(config: &Config) -> Result<(), (String, String)> {
    let tokens = &config.auth.tokens;
    let mut names = HashSet::new();
    let mut digests = HashSet::new();
    for (i, t) in tokens.iter().enumerate() {
        let key = format!("auth.tokens[{i}]");
        switchyard_core::config::check_name(&t.name).map_err(|m| (format!("{key}.name"), m))?;
        if !names.insert(t.name.as_str()) {
            return Err((
                format!("{key}.name"),
                format!("token {:?} is defined twice", t.name),
            ));
        }
        let len = t.secret.expose().chars().count();
        if len < MIN_SECRET_LEN {
            return Err((
                format!("{key}.secret"),
                format!(
                    "the secret from {} is {len} characters long; use at least {MIN_SECRET_LEN} \
                     (e.g. the output of `openssl rand -hex 32`)",
                    t.secret.source()
                ),
            ));
        }
        if !digests.insert(digest(t.secret.expose())) {
            return Err((
                format!("{key}.secret"),
                format!(
                    "token {:?} has the same secret as another token: each token needs its own",
                    t.name
                ),
            ));
        }
        if t.scopes.is_empty() {
            return Err((
                format!("{key}.scopes"),
                "a token needs at least one scope: \"admin\", \"publish:TOPIC\" or \"consume:DESTINATION\"".into(),
            ));
        }
        for (j, s) in t.scopes.iter().enumerate() {
            let skey = format!("{key}.scopes[{j}]");
            match s {
                Scope::Admin | Scope::Publish(Target::Any) | Scope::Consume(Target::Any) => {}
                Scope::Publish(Target::Named(topic)) => {
                    if config.topic(topic).is_none() {
                        return Err((skey, format!("unknown topic {topic:?}")));
                    }
                }
                Scope::Consume(Target::Named(dest)) => match config.destination(dest) {
                    None => return Err((skey, format!("unknown destination {dest:?}"))),
                    Some(d) if d.kind != DestinationKind::Pull => {
                        return Err((
                            skey,
                            format!(
                                "destination {dest:?} is not of kind \"pull\": only pull destinations are consumed"
                            ),
                        ));
                    }
                    Some(_) => {}
                },
                Scope::Unknown(raw) => {
                    return Err((
                        skey,
                        format!(
                            "unknown scope {raw:?}: expected \"admin\", \"publish:TOPIC\", \
                             \"consume:DESTINATION\", \"publish:*\" or \"consume:*\""
                        ),
                    ));
                }
            }
        }
    }
    for (i, topic) in config.topics.iter().enumerate() {
        if topic.auth == TopicAuth::Token {
            // Both would read `Authorization`, which can carry only one token.
            if topic
                .verify
                .as_ref()
                .is_some_and(|v| v.scheme == switchyard_signatures::Scheme::Bearer)
            {
                return Err((
                    format!("topics[{i}].auth"),
                    format!(
                        "topic {:?} has verify.scheme = \"bearer\", which reads the same \
                         Authorization header as auth = \"token\": use one or the other",
                        topic.name
                    ),
                ));
            }
            let need = Need::Publish(&topic.name);
            if !tokens
                .iter()
                .any(|t| t.scopes.iter().any(|s| s.grants(&need)))
            {
                return Err((
                    format!("topics[{i}].auth"),
                    format!(
                        "topic {:?} takes only tokens, but no [auth] token has \"publish:{}\", \"publish:*\" or \"admin\"",
                        topic.name, topic.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A configured token, ready for requests.
struct Token {
    name: String,
    /// SHA-256 of the secret: comparing fixed-length digests in constant
    /// time reveals neither the secret's bytes nor its length.
    digest: [u8; 32],
    scopes: Vec<Scope>,
    limit: Option<(DefaultDirectRateLimiter, RateLimit)>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization` header on an endpoint that needs a token.
    Missing,
    /// An `Authorization` header that is neither Bearer nor Basic.
    Malformed,
    /// A token that matches no configured one.
    Unknown,
    /// A valid token without the scope the endpoint needs.
    Forbidden { token: String, need: String },
    /// A valid token over its rate limit; retry after this many seconds.
    RateLimited {
        token: String,
        retry_after: u64,
        rate: String,
    },
    /// No tokens are configured and the peer is not on loopback.
    NotLoopback { peer: Option<SocketAddr> },
}

impl Denied {
    /// The metric label: a short, fixed word.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::Malformed => "malformed",
            Denied::Unknown => "unknown_token",
            Denied::Forbidden { .. } => "forbidden",
            Denied::RateLimited { .. } => "rate_limited",
            Denied::NotLoopback { .. } => "not_loopback",
        }
    }

    fn token(&self) -> &str {
        match self {
            Denied::Forbidden { token, .. } | Denied::RateLimited { token, .. } => token,
            _ => "",
        }
    }
}

/// The access decisions of one gateway, built once from the config.
pub struct Auth {
    tokens: Vec<Token>,
    topics: HashMap<String, TopicAuth>,
    refusals: Family<TokenReason, Counter>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.tokens)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Builds the decisions from a validated config; `refusals` counts every
    /// refusal by token name and reason (the gateway's metrics hand theirs).
    pub fn new(config: &Config, refusals: Family<TokenReason, Counter>) -> Auth {
        let tokens: Vec<Token> = config
            .auth
            .tokens
            .iter()
            .map(|t| Token {
                name: t.name.clone(),
                digest: digest(t.secret.expose()),
                scopes: t.scopes.clone(),
                limit: t
                    .rate_limit
                    .and_then(|r| ratelimit::bucket(r).map(|(l, _)| (l, r))),
            })
            .collect();
        let topics = config
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.auth))
            .collect();
        Auth {
            tokens,
            topics,
            refusals,
        }
    }

    /// Logs what a config without tokens means, so nobody is surprised by a
    /// 403 from another machine (or by an open admin API behind a proxy).
    pub fn warn_if_open(&self) {
        if self.tokens.is_empty() {
            tracing::warn!("{NO_TOKENS_WARNING}");
        } else {
            let names: Vec<&str> = self.tokens.iter().map(|t| t.name.as_str()).collect();
            tracing::info!(tokens = ?names, "API tokens loaded.");
        }
    }

    /// Whether ingest on `topic` needs a token.
    pub fn topic_needs_token(&self, topic: &str) -> bool {
        self.topics.get(topic) == Some(&TopicAuth::Token)
    }

    /// Decides one request: `Ok` with the token's name (empty when no tokens
    /// are configured and the loopback rule let it through), or why not.
    /// Every refusal is counted.
    pub fn check(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        need: Need<'_>,
    ) -> Result<String, Denied> {
        let decided = self.decide(headers, peer, need);
        if let Err(d) = &decided {
            self.refusals
                .get_or_create(&TokenReason {
                    token: d.token().to_owned(),
                    reason: d.reason().to_owned(),
                })
                .inc();
            tracing::debug!(
                reason = d.reason(),
                token = d.token(),
                need = %need,
                peer = ?peer,
                "Request refused by API access control."
            );
        }
        decided
    }

    fn decide(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        need: Need<'_>,
    ) -> Result<String, Denied> {
        if self.tokens.is_empty() {
            // A missing peer (a router served without connect info) is
            // treated as remote: closed unless proven local.
            return match peer {
                Some(p) if p.ip().to_canonical().is_loopback() => Ok(String::new()),
                _ => Err(Denied::NotLoopback { peer }),
            };
        }
        let presented = credential(headers)?;
        let token = self.find(&presented).ok_or(Denied::Unknown)?;
        if let Some((limiter, rate)) = &token.limit
            && let Err(not_until) = limiter.check()
        {
            let wait = not_until.wait_time_from(limiter.clock().now());
            return Err(Denied::RateLimited {
                token: token.name.clone(),
                retry_after: ratelimit::retry_after_secs(wait),
                rate: ratelimit::describe(*rate),
            });
        }
        if token.scopes.iter().any(|s| s.grants(&need)) {
            Ok(token.name.clone())
        } else {
            Err(Denied::Forbidden {
                token: token.name.clone(),
                need: need.to_string(),
            })
        }
    }

    /// The token whose secret is `presented`. Every token is compared, in
    /// constant time, so timing tells nothing about which (if any) matched.
    fn find(&self, presented: &str) -> Option<&Token> {
        let d = digest(presented);
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.digest.ct_eq(&d)) {
                found = Some(t);
            }
        }
        found
    }
}

/// What a config without `[auth] tokens` means: `serve` logs it at start,
/// `check-config` prints it.
pub const NO_TOKENS_WARNING: &str = "No [auth] tokens are configured: the admin API, registry \
     writes and pull endpoints answer only loopback peers (403 to everyone else). Behind a \
     reverse proxy on this host every request looks local: configure tokens.";

/// The token a request presents: a Bearer token, or a Basic password.
pub fn credential(headers: &HeaderMap) -> Result<String, Denied> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Denied::Missing);
    };
    let value = value.to_str().map_err(|_| Denied::Malformed)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(Denied::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| Denied::Malformed)?;
        let text = String::from_utf8(raw).map_err(|_| Denied::Malformed)?;
        // The token is the password (Confluent clients need a user name,
        // which is ignored), or, with an empty password, the user name, as
        // `curl -u TOKEN:` sends it (the Stripe style).
        let (user, password) = text.split_once(':').ok_or(Denied::Malformed)?;
        if !password.is_empty() {
            return Ok(password.to_owned());
        }
        if !user.is_empty() {
            return Ok(user.to_owned());
        }
    }
    Err(Denied::Malformed)
}
