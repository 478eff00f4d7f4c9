//! Standard Webhooks (<https://www.standardwebhooks.com/>), the scheme
//! Switchyard also signs its own deliveries with (see
//! `delivery::signing`), so the primitives here are shared by both sides.
//!
//! A request carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`: space-separated `v1,<base64>` entries, each an
//! HMAC-SHA256 over `id.timestamp.body`. Several entries let a sender sign
//! with an old and a new secret during rotation. Secrets are `whsec_` plus
//! base64 of the key bytes; the timestamp must be within the tolerance of
//! our clock either way.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use http::HeaderMap;

use super::{
    Key, VerifyError, check_timestamp, ct_eq, hmac_sha256, parse_unix_seconds, single_header,
};
use switchyard_core::Secret;

/// The message id header: stable across retries, so receivers dedupe on it.
pub const WEBHOOK_ID: &str = "webhook-id";
/// When the message was signed, in Unix seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The `v1,<base64>` signatures, space-separated.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// The prefix Standard Webhooks secrets are written with.
pub const SECRET_PREFIX: &str = "whsec_";

/// Longest `webhook-id` accepted. Ids are short (`msg_` + 27 chars in the
/// reference libraries, a ULID here); a bound keeps the signed prefix small.
const MAX_ID_LEN: usize = 256;

/// Standard base64 that takes padding or none, and ignores stray trailing
/// bits, as the reference libraries (Python's `b64decode`) do: a secret or a
/// signature they accept must not be refused here.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes a secret: `whsec_<base64>` or bare base64, to the HMAC key bytes.
/// The error says what is wrong without repeating the secret.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = LENIENT_BASE64.decode(encoded).map_err(|_| {
        format!("a Standard Webhooks secret must be `{SECRET_PREFIX}` followed by base64")
    })?;
    if key.is_empty() {
        return Err("a Standard Webhooks secret may not be empty".to_owned());
    }
    Ok(key)
}

/// The raw HMAC-SHA256 signature of `id.timestamp.body`.
pub fn signature(key: &[u8], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> [u8; 32] {
    let timestamp = timestamp_secs.to_string();
    hmac_sha256(
        key,
        &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    )
}

/// One `v1,<base64>` entry, as it appears in `webhook-signature`.
pub fn signature_entry(key: &[u8], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let sig = signature(key, msg_id, timestamp_secs, body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
}

/// Parses a `webhook-signature` value into the decoded `v1` signatures.
///
/// Entries are `version,base64` separated by spaces; versions other than
/// `v1` (such as `v1a`, asymmetric) are skipped, as the spec asks. An entry
/// without a comma, a `v1` entry that is not base64, or a header with no
/// `v1` entry at all is an error naming what was expected.
pub fn parse_signature_header(value: &str) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut signatures = Vec::new();
    for entry in value.split(' ').filter(|e| !e.is_empty()) {
        let Some((version, encoded)) = entry.split_once(',') else {
            return Err("expected space-separated `v1,<base64>` entries");
        };
        if version != "v1" {
            continue;
        }
        let sig = LENIENT_BASE64
            .decode(encoded)
            .map_err(|_| "a `v1,` signature is not valid base64")?;
        if sig.is_empty() {
            return Err("a `v1,` signature is empty");
        }
        signatures.push(sig);
    }
    if signatures.is_empty() {
        return Err("no `v1,<base64>` signature in the header");
    }
    Ok(signatures)
}

/// The prepared check for one topic.
#[derive(Clone, Debug)]
pub(crate) struct Verify {
    keys: Vec<Key>,
    tolerance: Duration,
}

impl Verify {
    pub(crate) fn new(secrets: &[Secret], tolerance: Duration) -> Result<Self, String> {
        let keys = secrets
            .iter()
            .map(|s| {
                decode_secret(s.expose())
                    .map(Key)
                    .map_err(|e| format!("secret {}: {e}", s.source()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Verify { keys, tolerance })
    }

    pub(crate) fn secret_count(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let msg_id = single_header(headers, WEBHOOK_ID)?;
        if msg_id.len() > MAX_ID_LEN {
            return Err(VerifyError::malformed(
                WEBHOOK_ID,
                format!("longer than {MAX_ID_LEN} bytes"),
            ));
        }
        let timestamp = parse_unix_seconds(single_header(headers, WEBHOOK_TIMESTAMP)?)
            .ok_or_else(|| VerifyError::malformed(WEBHOOK_TIMESTAMP, "expected Unix seconds"))?;
        let candidates = parse_signature_header(single_header(headers, WEBHOOK_SIGNATURE)?)
            .map_err(|reason| VerifyError::malformed(WEBHOOK_SIGNATURE, reason))?;
        // The timestamp first: a replay is refused without hashing its body.
        check_timestamp(timestamp, now, self.tolerance)?;
        // One HMAC per secret whatever the number of entries; every
        // comparison runs so the time taken says nothing about which matched.
        let mut matched = false;
        for key in &self.keys {
            let expected = signature(&key.0, msg_id, timestamp, body);
            for candidate in &candidates {
                matched |= ct_eq(&expected, candidate);
            }
        }
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::verify::test_support::{at, config, headers};
    use crate::verify::{Scheme, Verifier, VerifyConfig};

    // The published test vector of the Standard Webhooks reference libraries
    // (standard-webhooks/standard-webhooks, libraries/*/tests; the same one
    // Svix's libraries use): secret, id, timestamp, body and signature.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: u64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(&config(Scheme::StandardWebhooks, secrets)).expect("verifier")
    }

    fn request(sig: &str) -> HeaderMap {
        headers(&[
            (WEBHOOK_ID, MSG_ID),
            (WEBHOOK_TIMESTAMP, "1614265330"),
            (WEBHOOK_SIGNATURE, sig),
        ])
    }

    #[test]
    fn the_published_vector_signs_and_verifies() {
        let key = decode_secret(SECRET).expect("secret");
        assert_eq!(signature_entry(&key, MSG_ID, TS as i64, BODY), SIG);
        verifier(&[SECRET])
            .verify(&request(SIG), BODY, at(TS))
            .expect("reference vector verifies");
    }

    #[test]
    fn the_secret_prefix_is_optional_and_padding_is_too() {
        let bare = SECRET.strip_prefix(SECRET_PREFIX).expect("prefixed");
        verifier(&[bare])
            .verify(&request(SIG), BODY, at(TS))
            .expect("bare base64 secret");
        assert_eq!(decode_secret("whsec_AAE=").expect("padded"), vec![0, 1]);
        assert_eq!(decode_secret("whsec_AAE").expect("unpadded"), vec![0, 1]);
    }

    #[test]
    fn bad_secrets_are_refused_at_config_load_without_echoing_them() {
        for bad in ["whsec_not base64!", "whsec_", "plain-text-key"] {
            let err = Verifier::new(&config(Scheme::StandardWebhooks, &[bad]))
                .expect_err("invalid secret");
            assert!(err.contains("base64") || err.contains("empty"), "{err}");
            assert!(!err.contains(bad), "{err}");
        }
    }

    #[test]
    fn a_tampered_body_fails() {
        let err = verifier(&[SECRET])
            .verify(&request(SIG), br#"{"test": 2432232315}"#, at(TS))
            .expect_err("tampered");
        assert_eq!(err, VerifyError::NoMatch);
    }

    #[test]
    fn a_tampered_id_or_timestamp_fails() {
        let mut h = request(SIG);
        h.insert(WEBHOOK_ID, HeaderValue::from_static("msg_other"));
        assert_eq!(
            verifier(&[SECRET]).verify(&h, BODY, at(TS)),
            Err(VerifyError::NoMatch)
        );
        let mut h = request(SIG);
        h.insert(WEBHOOK_TIMESTAMP, HeaderValue::from_static("1614265331"));
        assert_eq!(
            verifier(&[SECRET]).verify(&h, BODY, at(TS)),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn the_wrong_secret_fails() {
        let err = verifier(&["whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="])
            .verify(&request(SIG), BODY, at(TS))
            .expect_err("wrong secret");
        assert_eq!(err.reason_code(), "no_match");
    }

    #[test]
    fn any_configured_secret_may_match_during_rotation() {
        verifier(&["whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=", SECRET])
            .verify(&request(SIG), BODY, at(TS))
            .expect("second secret matches");
    }

    #[test]
    fn any_signature_in_the_header_may_match() {
        let with_others = format!("v1,Zm9v v1a,c29tZXRoaW5nZWxzZQ== {SIG}  v2,YmFy");
        verifier(&[SECRET])
            .verify(&request(&with_others), BODY, at(TS))
            .expect("third entry matches");
    }

    #[test]
    fn timestamps_outside_five_minutes_fail_both_ways() {
        let v = verifier(&[SECRET]);
        v.verify(&request(SIG), BODY, at(TS + 300)).expect("edge");
        v.verify(&request(SIG), BODY, at(TS - 300)).expect("edge");
        let old = v
            .verify(&request(SIG), BODY, at(TS + 301))
            .expect_err("too old");
        assert_eq!(
            old,
            VerifyError::TimestampOutOfTolerance {
                skew_secs: -301,
                tolerance: Duration::from_secs(300)
            }
        );
        let new = v
            .verify(&request(SIG), BODY, at(TS - 3600))
            .expect_err("too new");
        assert!(new.to_string().contains("3600s in the future"), "{new}");
    }

    #[test]
    fn a_configured_tolerance_is_used() {
        let mut c: VerifyConfig = config(Scheme::StandardWebhooks, &[SECRET]);
        c.tolerance = Some(Duration::from_secs(3600));
        let v = Verifier::new(&c).expect("verifier");
        v.verify(&request(SIG), BODY, at(TS + 3000))
            .expect("within an hour");
    }

    #[test]
    fn missing_headers_are_named() {
        for missing in [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE] {
            let mut h = request(SIG);
            h.remove(missing);
            let err = verifier(&[SECRET])
                .verify(&h, BODY, at(TS))
                .expect_err("missing");
            assert_eq!(
                err,
                VerifyError::MissingHeader {
                    header: missing.to_owned()
                }
            );
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn malformed_headers_are_malformed_and_never_echoed() {
        let v = verifier(&[SECRET]);
        for bad_sig in [
            "garbage",
            "v1",
            "v1,",
            "v1,!!!notbase64!!!",
            "v2,Zm9v",
            ",",
            "v1,Zm9v,YmFy",
        ] {
            let err = v
                .verify(&request(bad_sig), BODY, at(TS))
                .expect_err(bad_sig);
            assert_eq!(err.reason_code(), "malformed_header", "{bad_sig}: {err}");
            if bad_sig.len() > 6 {
                assert!(!err.to_string().contains(bad_sig), "{err}");
            }
        }
        for bad_ts in ["soon", "-5", "1614265330.5", "99999999999999999999999"] {
            let mut h = request(SIG);
            h.insert(
                WEBHOOK_TIMESTAMP,
                HeaderValue::from_str(bad_ts).expect("value"),
            );
            let err = v.verify(&h, BODY, at(TS)).expect_err(bad_ts);
            assert_eq!(err.reason_code(), "malformed_header", "{bad_ts}");
        }
        let mut h = request(SIG);
        h.insert(WEBHOOK_SIGNATURE, HeaderValue::from_static(""));
        assert_eq!(
            v.verify(&h, BODY, at(TS)).expect_err("empty").reason_code(),
            "malformed_header"
        );
        let mut h = request(SIG);
        h.insert(
            WEBHOOK_SIGNATURE,
            HeaderValue::from_bytes(b"v1,\xc3\x28\xa0\xa1").expect("opaque"),
        );
        assert_eq!(
            v.verify(&h, BODY, at(TS))
                .expect_err("non-utf8")
                .reason_code(),
            "malformed_header"
        );
        let huge = format!("{SIG} ").repeat(200);
        let err = v.verify(&request(&huge), BODY, at(TS)).expect_err("huge");
        assert_eq!(err.reason_code(), "malformed_header");
        let long_id = "m".repeat(MAX_ID_LEN + 1);
        let mut h = request(SIG);
        h.insert(WEBHOOK_ID, HeaderValue::from_str(&long_id).expect("value"));
        assert_eq!(
            v.verify(&h, BODY, at(TS))
                .expect_err("long id")
                .reason_code(),
            "malformed_header"
        );
    }

    #[test]
    fn a_wrong_length_signature_just_does_not_match() {
        assert_eq!(
            verifier(&[SECRET]).verify(&request("v1,Zm9v"), BODY, at(TS)),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn the_parser_handles_arbitrary_text_without_panicking() {
        let samples = [
            "",
            " ",
            ",",
            ",,",
            "v1,",
            "v1, ",
            " v1,Zm9v ",
            "v1,Zm9v=",
            "v1,Zm9v==",
            "v1,Zm9v===",
            "v1,Zm",
            "v1,Z",
            "v1,ÿ",
            "v1,\u{0}",
            "v1,Zm9v\tv1,YmFy",
        ];
        for s in samples {
            let _ = parse_signature_header(s);
        }
        assert_eq!(
            parse_signature_header("v1a,abc v1,Zm9v  v1,YmFy"),
            Ok(vec![b"foo".to_vec(), b"bar".to_vec()])
        );
    }
}
