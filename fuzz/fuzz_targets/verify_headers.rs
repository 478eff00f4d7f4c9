//! Arbitrary header values and body to every scheme's verifier: any
//! outcome is fine except a panic (and a pass, which would be a forgery).
#![no_main]
use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchyard::ingest::verify::{Verifier, VerifyConfig};

const CONFIGS: &[&str] = &[
    "scheme = \"standard-webhooks\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]",
    "scheme = \"github\"\nsecrets = [\"It's a Secret to Everybody\"]",
    "scheme = \"stripe\"\nsecrets = [\"whsec_test\"]",
    "scheme = \"slack\"\nsecrets = [\"8f742231b10e8888abcd99yyyzzz85a5\"]",
    "scheme = \"hmac\"\nsecrets = [\"k\"]\nheader = \"x-signature\"\nalgorithm = \"sha512\"\nencoding = \"base64\"\nprefix = \"sha512=\"",
    "scheme = \"bearer\"\nsecrets = [\"token-123\"]",
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
    // Layout: [now: 4 bytes] then `\n`-separated header values, one per
    // name in NAMES, and the rest is the body.
    if data.len() < 4 {
        return;
    }
    let now = UNIX_EPOCH
        + Duration::from_secs(u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as u64);
    let mut parts = data[4..].splitn(NAMES.len() + 1, |b| *b == b'\n');
    let mut headers = HeaderMap::new();
    for name in NAMES {
        if let Some(v) = parts.next() {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                headers.append(HeaderName::from_static(name), v);
            }
        }
    }
    let body = parts.next().unwrap_or_default();
    for v in VERIFIERS.iter() {
        let _ = v.verify(&headers, body, now);
    }
});
