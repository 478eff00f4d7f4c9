//! Arbitrary header values and body to every scheme's verifier, and
//! arbitrary text to every signature header parser: any outcome is fine
//! except a panic; what a parser accepts must be well-formed.
#![no_main]
use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchyard_signatures::verify::{
    SignatureEncoding, Verifier, VerifyConfig, bearer, github, hmac, parse_unix_seconds, slack,
    standard_webhooks, stripe,
};

const CONFIGS: &[&str] = &[
    "scheme = \"standard-webhooks\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"whsec_dGVzdA==\"]",
    "scheme = \"github\"\nsecrets = [\"It's a Secret to Everybody\"]",
    "scheme = \"stripe\"\nsecrets = [\"whsec_test\"]",
    "scheme = \"slack\"\nsecrets = [\"8f742231b10e8888abcd99yyyzzz85a5\"]\ntolerance = \"1h\"",
    "scheme = \"hmac\"\nsecrets = [\"k\"]\nheader = \"x-signature\"\nalgorithm = \"sha512\"\nencoding = \"base64\"\nprefix = \"sha512=\"",
    "scheme = \"hmac\"\nsecrets = [\"k\"]\nheader = \"x-signature\"",
    "scheme = \"bearer\"\nsecrets = [\"token-123\", \"token-456\"]",
];

const NAMES: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
    "stripe-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-signature",
    "authorization",
];

static VERIFIERS: LazyLock<Vec<Verifier>> = LazyLock::new(|| {
    CONFIGS
        .iter()
        .map(|c| {
            Verifier::new(&toml::from_str::<VerifyConfig>(c).expect("config")).expect("verifier")
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    parsers(data);
    // Layout: [now: 4 bytes] then `\n`-separated header values, one per
    // name in NAMES (a value that starts with `+` is appended a second
    // time, as a repeated header), and the rest is the body.
    if data.len() < 4 {
        return;
    }
    let now = UNIX_EPOCH
        + Duration::from_secs(u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as u64);
    let mut parts = data[4..].splitn(NAMES.len() + 1, |b| *b == b'\n');
    let mut headers = HeaderMap::new();
    for name in NAMES {
        if let Some(v) = parts.next()
            && let Ok(v) = HeaderValue::from_bytes(v)
        {
            if v.as_bytes().first() == Some(&b'+') {
                headers.append(HeaderName::from_static(name), v.clone());
            }
            headers.append(HeaderName::from_static(name), v);
        }
    }
    let body = parts.next().unwrap_or_default();
    for v in VERIFIERS.iter() {
        if let Err(e) = v.verify(&headers, body, now) {
            // The reason shown to senders is built without panicking.
            let _ = (e.to_string(), e.reason_code());
        }
    }
});

/// Each header parser on its own, on the input as text.
fn parsers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sigs) = standard_webhooks::parse_signature_header(text) {
        assert!(!sigs.is_empty() && sigs.iter().all(|s| !s.is_empty()));
    }
    let _ = standard_webhooks::decode_secret(text);
    let _ = github::parse_signature_header(text);
    let _ = slack::parse_signature_header(text);
    if let Ok(s) = stripe::parse_signature_header(text) {
        assert!(s.timestamp >= 0 && !s.v1.is_empty());
    }
    for (prefix, encoding, len) in [
        ("", SignatureEncoding::Hex, 32),
        ("sha512=", SignatureEncoding::Base64, 64),
    ] {
        if let Ok(sig) = hmac::parse_signature_header(text, prefix, encoding, len) {
            assert_eq!(sig.len(), len);
        }
    }
    if let Ok(token) = bearer::parse_authorization_header(text) {
        assert!(!token.is_empty() && text.ends_with(token));
    }
    if let Some(n) = parse_unix_seconds(text) {
        assert!(n >= 0);
        let digits = text.trim_start_matches('0');
        assert_eq!(n.to_string(), if digits.is_empty() { "0" } else { digits });
    }
}
