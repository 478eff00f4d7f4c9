//! Sign with the Standard Webhooks signer, then verify: always passes, and
//! a flipped body byte always fails.
#![no_main]
use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchyard::ingest::verify::{Verifier, VerifyConfig, standard_webhooks};

const SECRET_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let c = format!("scheme = \"standard-webhooks\"\nsecrets = [\"whsec_{SECRET_B64}\"]");
    Verifier::new(&toml::from_str::<VerifyConfig>(&c).expect("config")).expect("verifier")
});

fn key() -> Vec<u8> {
    standard_webhooks::decode_secret(&format!("whsec_{SECRET_B64}")).expect("secret")
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let ts = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as i64 + 1_000_000_000;
    let id_len = (data[4] as usize).min(data.len() - 5);
    let Ok(id) = std::str::from_utf8(&data[5..5 + id_len]) else {
        return;
    };
    let Ok(id_value) = HeaderValue::from_str(id) else {
        return;
    };
    let body = &data[5 + id_len..];
    let entry = standard_webhooks::signature_entry(&key(), id, ts, body);
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", id_value);
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&ts.to_string()).expect("ts"),
    );
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&entry).expect("sig"),
    );
    let now = UNIX_EPOCH + Duration::from_secs(ts as u64);
    assert!(
        VERIFIER.verify(&headers, body, now).is_ok(),
        "a correct signature was refused"
    );
    let mut forged = body.to_vec();
    forged.push(b'x');
    assert!(
        VERIFIER.verify(&headers, &forged, now).is_err(),
        "a changed body passed"
    );
});
