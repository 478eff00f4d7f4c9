//! Inbound signature verification: proof that an event came from the sender
//! a topic trusts, checked on the raw body before anything parses it.
//!
//! A topic's `verify = { scheme = "...", secrets = [...] }` becomes a
//! [`Verifier`] once, at config load, so a bad secret or a misplaced option
//! stops the gateway at start rather than failing every request later.
//!
//! One file per scheme, each holding its header parser as a pure function
//! (the fuzz targets call those directly) and its verification:
//! - [`standard_webhooks`]: `webhook-id` / `webhook-timestamp` / `webhook-signature`.
//! - [`github`]: `X-Hub-Signature-256: sha256=<hex>`.
//! - [`stripe`]: `Stripe-Signature: t=..,v1=..`.
//! - [`slack`]: `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`.
//! - [`hmac`]: a generic HMAC header (name, algorithm, encoding, prefix).
//! - [`bearer`]: `Authorization: Bearer <token>`.
//!
//! Every scheme accepts several secrets at once so a sender can rotate: any
//! secret that matches passes. Comparisons are constant-time, and no error
//! ever repeats a header's value or a secret.

pub mod bearer;
pub mod github;
pub mod hmac;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use switchyard_core::Secret;

/// Longest signature-carrying header we look at. Real ones are well under
/// 1 KiB even with a few rotated signatures; the cap keeps a hostile header
/// from costing more than a quick rejection.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 4096;

/// Default tolerance between a signed timestamp and our clock: five minutes,
/// what Standard Webhooks, Slack and Stripe (300 s) all document.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// How a topic checks that an event came from who it claims.
///
/// ```toml
/// verify = { scheme = "standard-webhooks", secrets = ["env:ORDERS_WHSEC"] }
/// verify = { scheme = "hmac", secrets = ["env:SHOP_KEY"], header = "x-shopify-hmac-sha256",
///            algorithm = "sha256", encoding = "base64" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// Which sender convention the signatures follow.
    pub scheme: Scheme,
    /// One or more secrets (`env:NAME`). Several at once let a sender rotate
    /// without a window where its requests fail: any match passes.
    pub secrets: Vec<Secret>,
    /// How far a signed timestamp may be from our clock, either way, before
    /// the request counts as a replay. Only for schemes that sign a
    /// timestamp (standard-webhooks, stripe, slack); default five minutes.
    #[serde(default, with = "humantime_serde")]
    pub tolerance: Option<Duration>,
    /// `hmac` only: the header carrying the signature.
    #[serde(default)]
    pub header: Option<String>,
    /// `hmac` only: the hash behind the HMAC; default `sha256`.
    #[serde(default)]
    pub algorithm: Option<HmacAlgorithm>,
    /// `hmac` only: how the signature is written; default `hex`.
    #[serde(default)]
    pub encoding: Option<SignatureEncoding>,
    /// `hmac` only: text before the signature in the header, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// The signature conventions Switchyard understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// <https://www.standardwebhooks.com/>: also what Svix-based senders use.
    StandardWebhooks,
    /// GitHub's `X-Hub-Signature-256`.
    Github,
    /// Stripe's `Stripe-Signature`.
    Stripe,
    /// Slack's `X-Slack-Signature` (v0).
    Slack,
    /// Any sender putting an HMAC of the body in a header of its choice.
    Hmac,
    /// A shared token in `Authorization: Bearer`; no signature at all.
    Bearer,
}

impl Scheme {
    /// The name as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Slack => "slack",
            Scheme::Hmac => "hmac",
            Scheme::Bearer => "bearer",
        }
    }

    /// Whether the scheme signs a timestamp, which is what `tolerance` checks.
    fn signs_timestamp(self) -> bool {
        matches!(
            self,
            Scheme::StandardWebhooks | Scheme::Stripe | Scheme::Slack
        )
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hash behind a generic HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    /// HMAC-SHA256 (32-byte signatures).
    #[default]
    Sha256,
    /// HMAC-SHA512 (64-byte signatures).
    Sha512,
}

/// How a generic HMAC signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// Lower- or upper-case hexadecimal.
    #[default]
    Hex,
    /// Standard base64, padded or not.
    Base64,
}

/// Why a request failed verification. Each message helps the sender fix its
/// request and names headers, never their values or any secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    #[error("missing header `{header}`")]
    MissingHeader {
        /// The header's name, as the scheme documents it.
        header: String,
    },
    /// A header is present but not in the scheme's format.
    #[error("malformed header `{header}`: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: String,
        /// What was expected; never the value received.
        reason: String,
    },
    /// The signed timestamp is too far from our clock: a replay, or a sender
    /// whose clock is off.
    #[error(
        "timestamp is {}s in the {}, outside the tolerance of {}s",
        skew_secs.unsigned_abs(),
        if *skew_secs < 0 { "past" } else { "future" },
        tolerance.as_secs()
    )]
    TimestampOutOfTolerance {
        /// Signed timestamp minus our clock, in seconds: negative is old.
        skew_secs: i64,
        /// The configured tolerance.
        tolerance: Duration,
    },
    /// The headers were well formed but no signature (or token) matched any
    /// configured secret.
    #[error("no signature matched")]
    NoMatch,
}

impl VerifyError {
    /// A short stable label for metrics (`reason="..."`).
    pub fn reason_code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader { .. } => "missing_header",
            VerifyError::MalformedHeader { .. } => "malformed_header",
            VerifyError::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            VerifyError::NoMatch => "no_match",
        }
    }

    pub(crate) fn malformed(header: &str, reason: impl Into<String>) -> Self {
        VerifyError::MalformedHeader {
            header: header.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A topic's verification, built once from its [`VerifyConfig`].
///
/// Holds the decoded keys; its `Debug` shows only the scheme and how many
/// secrets there are.
#[derive(Clone)]
pub struct Verifier {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    StandardWebhooks(standard_webhooks::Verify),
    Github(github::Verify),
    Stripe(stripe::Verify),
    Slack(slack::Verify),
    Hmac(hmac::Verify),
    Bearer(bearer::Verify),
}

impl Verifier {
    /// Checks the config and prepares the keys. The error names the option
    /// at fault (never a secret's value) for the config loader to prefix
    /// with the topic.
    pub fn new(config: &VerifyConfig) -> Result<Verifier, String> {
        let scheme = config.scheme;
        if config.secrets.is_empty() {
            return Err(format!(
                "`verify.secrets` is empty: scheme {scheme} needs at least one secret"
            ));
        }
        if scheme != Scheme::Hmac {
            for (key, set) in [
                ("header", config.header.is_some()),
                ("algorithm", config.algorithm.is_some()),
                ("encoding", config.encoding.is_some()),
                ("prefix", config.prefix.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "`verify.{key}` only applies to scheme hmac, not {scheme}"
                    ));
                }
            }
        }
        if config.tolerance.is_some() && !scheme.signs_timestamp() {
            return Err(format!(
                "`verify.tolerance` has no effect for scheme {scheme}: it signs no timestamp"
            ));
        }
        let tolerance = config.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        if tolerance.is_zero() {
            return Err("`verify.tolerance` must be more than zero".to_owned());
        }
        let secrets = &config.secrets;
        let kind = match scheme {
            Scheme::StandardWebhooks => {
                Kind::StandardWebhooks(standard_webhooks::Verify::new(secrets, tolerance)?)
            }
            Scheme::Github => Kind::Github(github::Verify::new(secrets)),
            Scheme::Stripe => Kind::Stripe(stripe::Verify::new(secrets, tolerance)),
            Scheme::Slack => Kind::Slack(slack::Verify::new(secrets, tolerance)),
            Scheme::Hmac => Kind::Hmac(hmac::Verify::new(config)?),
            Scheme::Bearer => Kind::Bearer(bearer::Verify::new(secrets)),
        };
        Ok(Verifier { kind })
    }

    /// The scheme this verifier checks.
    pub fn scheme(&self) -> Scheme {
        match self.kind {
            Kind::StandardWebhooks(_) => Scheme::StandardWebhooks,
            Kind::Github(_) => Scheme::Github,
            Kind::Stripe(_) => Scheme::Stripe,
            Kind::Slack(_) => Scheme::Slack,
            Kind::Hmac(_) => Scheme::Hmac,
            Kind::Bearer(_) => Scheme::Bearer,
        }
    }

    /// Checks a request: `body` must be the raw bytes as received (before
    /// any decompression or parsing), `now` our clock (a parameter so tests
    /// can pin it).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        match &self.kind {
            Kind::StandardWebhooks(v) => v.verify(headers, body, now),
            Kind::Github(v) => v.verify(headers, body),
            Kind::Stripe(v) => v.verify(headers, body, now),
            Kind::Slack(v) => v.verify(headers, body, now),
            Kind::Hmac(v) => v.verify(headers, body),
            Kind::Bearer(v) => v.verify(headers),
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secrets = match &self.kind {
            Kind::StandardWebhooks(v) => v.secret_count(),
            Kind::Github(v) => v.secret_count(),
            Kind::Stripe(v) => v.secret_count(),
            Kind::Slack(v) => v.secret_count(),
            Kind::Hmac(v) => v.secret_count(),
            Kind::Bearer(v) => v.secret_count(),
        };
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme().as_str())
            .field("secrets", &secrets)
            .finish_non_exhaustive()
    }
}

/// The one value of header `name`, as text.
///
/// Absent is [`VerifyError::MissingHeader`]; repeated, empty, over
/// [`MAX_SIGNATURE_HEADER_LEN`] or not visible ASCII is malformed. A repeated
/// header is refused rather than guessed at: which copy a proxy keeps is not
/// something a signature check should depend on.
pub(crate) fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<&'a str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Err(VerifyError::MissingHeader {
            header: name.to_owned(),
        });
    };
    if values.next().is_some() {
        return Err(VerifyError::malformed(
            name,
            "the header appears more than once",
        ));
    }
    if value.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(VerifyError::malformed(
            name,
            format!("longer than {MAX_SIGNATURE_HEADER_LEN} bytes"),
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| VerifyError::malformed(name, "not visible ASCII text"))?
        .trim();
    if text.is_empty() {
        return Err(VerifyError::malformed(name, "empty"));
    }
    Ok(text)
}

/// Parses a Unix timestamp in whole seconds: ASCII digits only, as every
/// scheme here writes it (no sign, no fraction, no spaces).
pub fn parse_unix_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Refuses a signed timestamp more than `tolerance` away from `now`, either
/// way: too old is a replay, too new is a sender clock we can't trust.
pub(crate) fn check_timestamp(
    timestamp: i64,
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let now_secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    let skew_secs = timestamp.saturating_sub(now_secs);
    if skew_secs.unsigned_abs() > tolerance.as_secs() {
        return Err(VerifyError::TimestampOutOfTolerance {
            skew_secs,
            tolerance,
        });
    }
    Ok(())
}

/// Constant-time equality for MACs. The length is public (it's fixed by the
/// algorithm), so an early `false` on a length mismatch leaks nothing.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC-SHA256 over the concatenation of `parts`, so callers can sign
/// `id.timestamp.body` without copying the body into a new buffer.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use ::hmac::{Hmac, Mac};
    // `new_from_slice` accepts any key length for HMAC; the error arm is
    // unreachable but handled without a panic all the same.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The UTF-8 bytes of each secret: the key for every scheme but Standard
/// Webhooks, whose secrets are base64.
pub(crate) fn utf8_keys(secrets: &[Secret]) -> Vec<Key> {
    secrets
        .iter()
        .map(|s| Key(s.expose().as_bytes().to_vec()))
        .collect()
}

/// Key bytes that never print.
#[derive(Clone)]
pub(crate) struct Key(pub(crate) Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the schemes' tests.

    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use http::{HeaderMap, HeaderName, HeaderValue};

    use super::{Scheme, VerifyConfig};
    use switchyard_core::Secret;

    pub fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        map
    }

    pub fn config(scheme: Scheme, secrets: &[&str]) -> VerifyConfig {
        VerifyConfig {
            scheme,
            secrets: secrets
                .iter()
                .map(|s| Secret::resolve(s).expect("inline secret"))
                .collect(),
            tolerance: None,
            header: None,
            algorithm: None,
            encoding: None,
            prefix: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{at, config, headers};
    use super::*;

    #[test]
    fn config_parses_the_documented_toml_shape() {
        let toml = r#"
            scheme = "standard-webhooks"
            secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
            tolerance = "2m"
        "#;
        let parsed: VerifyConfig = toml::from_str(toml).expect("valid config");
        assert_eq!(parsed.scheme, Scheme::StandardWebhooks);
        assert_eq!(parsed.tolerance, Some(Duration::from_secs(120)));
        Verifier::new(&parsed).expect("valid verifier");

        let hmac: VerifyConfig = toml::from_str(
            r#"
            scheme = "hmac"
            secrets = ["k1", "k2"]
            header = "x-signature"
            algorithm = "sha512"
            encoding = "base64"
            prefix = "sha512="
        "#,
        )
        .expect("valid hmac config");
        assert_eq!(hmac.algorithm, Some(HmacAlgorithm::Sha512));
        assert_eq!(hmac.encoding, Some(SignatureEncoding::Base64));
        Verifier::new(&hmac).expect("valid hmac verifier");
    }

    #[test]
    fn config_refuses_unknown_keys_and_schemes() {
        let err = toml::from_str::<VerifyConfig>(
            r#"scheme = "github"
secrets = ["x"]
secret = "typo""#,
        )
        .expect_err("unknown key");
        assert!(err.to_string().contains("secret"), "{err}");
        let err = toml::from_str::<VerifyConfig>(
            r#"scheme = "gitlab"
secrets = ["x"]"#,
        )
        .expect_err("unknown scheme");
        assert!(err.to_string().contains("gitlab"), "{err}");
    }

    #[test]
    fn verifier_refuses_options_that_would_be_ignored() {
        let mut c = config(Scheme::Github, &["s"]);
        c.tolerance = Some(Duration::from_secs(60));
        assert!(
            Verifier::new(&c)
                .expect_err("tolerance")
                .contains("tolerance")
        );

        let mut c = config(Scheme::Stripe, &["s"]);
        c.header = Some("x-sig".into());
        assert!(Verifier::new(&c).expect_err("header").contains("header"));

        let c = config(Scheme::Slack, &[]);
        assert!(
            Verifier::new(&c)
                .expect_err("no secrets")
                .contains("secrets")
        );

        let mut c = config(Scheme::Slack, &["s"]);
        c.tolerance = Some(Duration::ZERO);
        assert!(Verifier::new(&c).expect_err("zero").contains("tolerance"));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let v = Verifier::new(&config(Scheme::Bearer, &["hunter2-token"])).expect("verifier");
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("bearer"), "{shown}");
    }

    #[test]
    fn timestamps_are_checked_both_ways_with_a_helpful_message() {
        let tol = Duration::from_secs(300);
        check_timestamp(1000, at(1300), tol).expect("exactly at the edge (old)");
        check_timestamp(1300, at(1000), tol).expect("exactly at the edge (new)");
        let old = check_timestamp(1000, at(1301), tol).expect_err("too old");
        assert_eq!(
            old.to_string(),
            "timestamp is 301s in the past, outside the tolerance of 300s"
        );
        let new = check_timestamp(1301, at(1000), tol).expect_err("too new");
        assert_eq!(
            new.to_string(),
            "timestamp is 301s in the future, outside the tolerance of 300s"
        );
        assert_eq!(new.reason_code(), "timestamp_out_of_tolerance");
        // Extremes saturate instead of overflowing.
        check_timestamp(i64::MAX, at(0), tol).expect_err("far future");
        check_timestamp(0, UNIX_EPOCH - Duration::from_secs(u64::MAX / 2), tol)
            .expect_err("clock before the epoch");
    }

    #[test]
    fn unix_seconds_are_plain_digits() {
        assert_eq!(parse_unix_seconds("1614265330"), Some(1_614_265_330));
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            " 1",
            "1e9",
            "abc",
            "9999999999999999999999",
        ] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn single_header_refuses_repeats_oversize_and_non_ascii() {
        let h = headers(&[("x-sig", "a"), ("x-sig", "b")]);
        assert_eq!(
            single_header(&h, "x-sig")
                .expect_err("repeat")
                .reason_code(),
            "malformed_header"
        );
        let long = "a".repeat(MAX_SIGNATURE_HEADER_LEN + 1);
        let h = headers(&[("x-sig", &long)]);
        assert_eq!(
            single_header(&h, "x-sig").expect_err("long").reason_code(),
            "malformed_header"
        );
        let mut h = HeaderMap::new();
        h.insert(
            "x-sig",
            http::HeaderValue::from_bytes(b"sha256=\xff\xfe").expect("opaque bytes"),
        );
        let err = single_header(&h, "x-sig").expect_err("non-ascii");
        assert!(matches!(err, VerifyError::MalformedHeader { .. }), "{err}");
        let h = headers(&[("x-sig", "   ")]);
        single_header(&h, "x-sig").expect_err("blank");
        assert_eq!(
            single_header(&HeaderMap::new(), "x-sig").expect_err("absent"),
            VerifyError::MissingHeader {
                header: "x-sig".into()
            }
        );
    }

    /// Every scheme, every header it reads, hostile values: always an
    /// error, never a panic, never `Ok`.
    #[test]
    fn hostile_headers_are_refused_by_every_scheme() {
        let mut hmac = config(Scheme::Hmac, &["k"]);
        hmac.header = Some("x-signature".into());
        hmac.prefix = Some("sha256=".into());
        let cases: Vec<(VerifyConfig, &'static [&'static str])> = vec![
            (
                config(
                    Scheme::StandardWebhooks,
                    &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                ),
                &["webhook-id", "webhook-timestamp", "webhook-signature"],
            ),
            (config(Scheme::Github, &["k"]), &["x-hub-signature-256"]),
            (config(Scheme::Stripe, &["k"]), &["stripe-signature"]),
            (
                config(Scheme::Slack, &["k"]),
                &["x-slack-signature", "x-slack-request-timestamp"],
            ),
            (hmac, &["x-signature"]),
            (config(Scheme::Bearer, &["k"]), &["authorization"]),
        ];
        let huge = "v1,".repeat(10_000);
        let hostile: Vec<&[u8]> = vec![
            b"",
            b" ",
            b",",
            b"=",
            b"\xff\xfe\xfd",
            b"v1,\xc3\x28",
            b"t=\x80,v1=\x80",
            b"sha256=\xe2\x82",
            b"v0=",
            b"Bearer ",
            b"18446744073709551616",
            huge.as_bytes(),
        ];
        for (cfg, names) in cases {
            let v = Verifier::new(&cfg).expect("verifier");
            for value in &hostile {
                for name in names {
                    let mut h = HeaderMap::new();
                    for other in names {
                        h.insert(*other, http::HeaderValue::from_static("1"));
                    }
                    h.insert(*name, http::HeaderValue::from_bytes(value).expect("opaque"));
                    let result = v.verify(&h, b"{}", at(1));
                    assert!(result.is_err(), "{} {name}: {value:?}", cfg.scheme);
                }
            }
        }
    }

    /// A deterministic stand-in for the fuzz targets: random strings over
    /// each parser's alphabet must never panic.
    #[test]
    fn parsers_survive_random_input() {
        const ALPHABET: &[u8] = b"v01,= t9afAF+/sha256x:Bearer\t-.";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
                .collect();
            let _ = standard_webhooks::parse_signature_header(&text);
            let _ = github::parse_signature_header(&text);
            let _ = stripe::parse_signature_header(&text);
            let _ = slack::parse_signature_header(&text);
            let _ = bearer::parse_authorization_header(&text);
            let _ = hmac::parse_signature_header(&text, "sha256=", SignatureEncoding::Base64, 32);
            let _ = hmac::parse_signature_header(&text, "", SignatureEncoding::Hex, 64);
            let _ = parse_unix_seconds(&text);
        }
    }

    #[test]
    fn reason_codes_are_stable() {
        assert_eq!(VerifyError::NoMatch.reason_code(), "no_match");
        assert_eq!(
            VerifyError::MissingHeader { header: "a".into() }.reason_code(),
            "missing_header"
        );
    }
}
