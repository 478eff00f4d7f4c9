//! GitHub webhooks: `X-Hub-Signature-256: sha256=<hex>`, an HMAC-SHA256 of
//! the body keyed with the webhook secret as UTF-8.
//!
//! GitHub signs no timestamp, so a captured delivery can be replayed; the
//! topic's idempotency window is what limits that. The legacy SHA-1
//! `X-Hub-Signature` is deliberately not accepted.

use http::HeaderMap;

use super::{Key, VerifyError, ct_eq, hmac_sha256, single_header, utf8_keys};
use switchyard_core::Secret;

/// The header GitHub signs with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Parses an `X-Hub-Signature-256` value (`sha256=` and 64 hex digits) into
/// the 32 signature bytes.
pub fn parse_signature_header(value: &str) -> Result<[u8; 32], &'static str> {
    let hex_digits = value
        .strip_prefix("sha256=")
        .ok_or("expected `sha256=<hex>`")?;
    let mut sig = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut sig)
        .map_err(|_| "expected `sha256=` followed by 64 hex digits")?;
    Ok(sig)
}

/// The prepared check for one topic.
#[derive(Clone, Debug)]
pub(crate) struct Verify {
    keys: Vec<Key>,
}

impl Verify {
    pub(crate) fn new(secrets: &[Secret]) -> Self {
        Verify {
            keys: utf8_keys(secrets),
        }
    }

    pub(crate) fn secret_count(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let candidate = parse_signature_header(single_header(headers, SIGNATURE_HEADER)?)
            .map_err(|reason| VerifyError::malformed(SIGNATURE_HEADER, reason))?;
        let mut matched = false;
        for key in &self.keys {
            matched |= ct_eq(&hmac_sha256(&key.0, &[body]), &candidate);
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
    use std::time::SystemTime;

    use http::HeaderValue;

    use super::*;
    use crate::verify::test_support::{config, headers};
    use crate::verify::{Scheme, Verifier};

    // GitHub's documented example ("Validating webhook deliveries", section
    // "Testing the webhook payload validation"): this secret and payload give
    // this signature.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn verify(secrets: &[&str], sig: &str, body: &[u8]) -> Result<(), VerifyError> {
        Verifier::new(&config(Scheme::Github, secrets))
            .expect("verifier")
            .verify(
                &headers(&[(SIGNATURE_HEADER, sig)]),
                body,
                SystemTime::now(),
            )
    }

    #[test]
    fn githubs_documented_example_verifies() {
        verify(&[SECRET], SIG, BODY).expect("GitHub's example");
        // Header names are case-insensitive; upper-case hex is still hex.
        let h = headers(&[(
            "X-Hub-Signature-256",
            &SIG.to_uppercase().replace("SHA256", "sha256"),
        )]);
        Verifier::new(&config(Scheme::Github, &[SECRET]))
            .expect("verifier")
            .verify(&h, BODY, SystemTime::now())
            .expect("upper-case hex");
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_fails() {
        assert_eq!(
            verify(&[SECRET], SIG, b"Hello, World?"),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&["It's a secret to everybody"], SIG, BODY),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn the_second_secret_matches_during_rotation() {
        verify(&["old secret", SECRET], SIG, BODY).expect("rotation");
    }

    #[test]
    fn malformed_headers_are_malformed() {
        let long = format!("sha256={}", "ab".repeat(5000));
        for bad in [
            "garbage",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d",
            "sha256=",
            "sha256=757107ea",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1700",
            long.as_str(),
        ] {
            let err = verify(&[SECRET], bad, BODY).expect_err(bad);
            assert_eq!(err.reason_code(), "malformed_header", "{err}");
        }
        let mut h = http::HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_bytes(b"sha256=\xff").expect("opaque"),
        );
        let err = Verifier::new(&config(Scheme::Github, &[SECRET]))
            .expect("verifier")
            .verify(&h, BODY, SystemTime::now())
            .expect_err("non-utf8");
        assert_eq!(err.reason_code(), "malformed_header");
    }

    #[test]
    fn a_missing_header_is_named() {
        let err = Verifier::new(&config(Scheme::Github, &[SECRET]))
            .expect("verifier")
            .verify(&http::HeaderMap::new(), BODY, SystemTime::now())
            .expect_err("missing");
        assert_eq!(err.to_string(), "missing header `x-hub-signature-256`");
    }
}
