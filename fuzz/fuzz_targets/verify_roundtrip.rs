//! Every scheme, signed here independently (the `hmac`/`sha2` crates, not
//! the gateway's code): a correct signature within the tolerance always
//! passes, among decoys; a changed body, another secret or a timestamp past
//! the tolerance (either way) always fails.
#![no_main]
use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sha2::{Sha256, Sha512};
use switchyard_signatures::verify::{Verifier, VerifyConfig};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY: &str = "It's a Secret to Everybody";
/// Tolerance of the timestamped schemes, as configured below.
const TOLERANCE: i64 = 300;

fn verifier(config: &str) -> Verifier {
    Verifier::new(&toml::from_str::<VerifyConfig>(config).expect("config")).expect("verifier")
}

static SW: LazyLock<Verifier> = LazyLock::new(|| {
    verifier(&format!(
        "scheme = \"standard-webhooks\"\nsecrets = [\"whsec_b3RoZXI=\", \"{WHSEC}\"]"
    ))
});
static GITHUB: LazyLock<Verifier> =
    LazyLock::new(|| verifier(&format!("scheme = \"github\"\nsecrets = [\"{KEY}\"]")));
static STRIPE: LazyLock<Verifier> =
    LazyLock::new(|| verifier(&format!("scheme = \"stripe\"\nsecrets = [\"{KEY}\"]")));
static SLACK: LazyLock<Verifier> =
    LazyLock::new(|| verifier(&format!("scheme = \"slack\"\nsecrets = [\"{KEY}\"]")));
static HMAC512: LazyLock<Verifier> = LazyLock::new(|| {
    verifier(&format!(
        "scheme = \"hmac\"\nsecrets = [\"{KEY}\"]\nheader = \"x-sig\"\nalgorithm = \"sha512\"\n\
         encoding = \"base64\"\nprefix = \"sha512=\""
    ))
});
static BEARER: LazyLock<Verifier> =
    LazyLock::new(|| verifier(&format!("scheme = \"bearer\"\nsecrets = [\"{KEY}\"]")));

fn sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn sha512(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// The headers a sender would set for `scheme`, signed with `key` at `ts`.
fn signed(scheme: u8, key: &[u8], id: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        h.insert(name, HeaderValue::from_str(&value).expect("ascii"));
    };
    let t = ts.to_string();
    match scheme {
        0 => {
            let whkey = STANDARD
                .decode(WHSEC.trim_start_matches("whsec_"))
                .expect("b64");
            let k = if key == KEY.as_bytes() {
                &whkey[..]
            } else {
                key
            };
            let sig = sha256(k, &[id.as_bytes(), b".", t.as_bytes(), b".", body]);
            set("webhook-id", id.to_owned());
            set("webhook-timestamp", t);
            // A decoy and a future scheme around the real one.
            set(
                "webhook-signature",
                format!(
                    "v1,{} v1a,AAAA v1,{}",
                    STANDARD.encode([7u8; 32]),
                    STANDARD.encode(sig)
                ),
            );
        }
        1 => set(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(sha256(key, &[body]))),
        ),
        2 => {
            let sig = sha256(key, &[t.as_bytes(), b".", body]);
            set(
                "stripe-signature",
                format!(
                    "t={t},v0={},v1={}",
                    hex::encode([1u8; 32]),
                    hex::encode(sig)
                ),
            );
        }
        3 => {
            let sig = sha256(key, &[b"v0:", t.as_bytes(), b":", body]);
            set("x-slack-request-timestamp", t);
            set("x-slack-signature", format!("v0={}", hex::encode(sig)));
        }
        _ => set(
            "x-sig",
            format!("sha512={}", STANDARD.encode(sha512(key, body))),
        ),
    }
    h
}

fuzz_target!(|data: &[u8]| {
    // Layout: [scheme][ts: 4 bytes][id length][id][body].
    if data.len() < 6 {
        return;
    }
    let scheme = data[0] % 5;
    let ts = u32::from_le_bytes([data[1], data[2], data[3], data[4]]) as i64 + 1_000_000_000;
    let id_len = (data[5] as usize).min(data.len() - 6);
    let Ok(id) = std::str::from_utf8(&data[6..6 + id_len]) else {
        return;
    };
    // A message id a sender can put in a header: visible ASCII (the
    // gateway refuses obs-text), no surrounding blanks.
    if id.is_empty() || !id.is_ascii() || HeaderValue::from_str(id).is_err() || id.trim() != id {
        return;
    }
    let body = &data[6 + id_len..];
    let v: &Verifier = match scheme {
        0 => &SW,
        1 => &GITHUB,
        2 => &STRIPE,
        3 => &SLACK,
        _ => &HMAC512,
    };
    let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(secs as u64);
    let key = KEY.as_bytes();
    let good = signed(scheme, key, id, ts, body);
    // Inside the tolerance, at both edges.
    for now in [ts, ts - TOLERANCE, ts + TOLERANCE] {
        if let Err(e) = v.verify(&good, body, at(now)) {
            panic!(
                "scheme {scheme}: a correct signature was refused at skew {}: {e}",
                now - ts
            );
        }
    }
    let mut changed = body.to_vec();
    changed.push(b'x');
    assert!(
        v.verify(&good, &changed, at(ts)).is_err(),
        "scheme {scheme}: a changed body passed"
    );
    assert!(
        v.verify(&signed(scheme, b"wrong key", id, ts, body), body, at(ts))
            .is_err(),
        "scheme {scheme}: another secret passed"
    );
    if scheme == 0 || scheme == 2 || scheme == 3 {
        for now in [ts - TOLERANCE - 1, ts + TOLERANCE + 1] {
            assert!(
                v.verify(&good, body, at(now)).is_err(),
                "scheme {scheme}: a replay at skew {} passed",
                now - ts
            );
        }
    }
    // Bearer: the configured token passes, with any case of the scheme name;
    // the id as a token does not.
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("bEaReR {KEY}")).expect("ascii"),
    );
    assert!(
        BEARER.verify(&h, body, at(ts)).is_ok(),
        "the bearer token was refused"
    );
    if id != KEY {
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {id}")).expect("ascii"),
        );
        assert!(
            BEARER.verify(&h, body, at(ts)).is_err(),
            "a wrong bearer token passed"
        );
    }
});
