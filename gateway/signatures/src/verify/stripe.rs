//! Stripe webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, each
//! `v1` an HMAC-SHA256 of `t.body` keyed with the endpoint secret's UTF-8
//! bytes (`whsec_...` as a whole; Stripe does not base64-decode it, unlike
//! Standard Webhooks).
//!
//! Stripe sends several `v1` entries while an endpoint secret is being
//! rolled, and sometimes a `v0` test-mode entry, which is ignored. Stripe's
//! own libraries allow 300 s; so does the default here.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::{
    Key, VerifyError, check_timestamp, ct_eq, hmac_sha256, parse_unix_seconds, single_header,
    utf8_keys,
};
use switchyard_core::Secret;

/// The header Stripe signs with.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// A parsed `Stripe-Signature` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSignature {
    /// The `t=` timestamp, Unix seconds.
    pub timestamp: i64,
    /// Every `v1=` signature, decoded from hex.
    pub v1: Vec<Vec<u8>>,
}

/// Parses a `Stripe-Signature` value: comma-separated `key=value` pairs with
/// exactly one `t` and at least one `v1`; other keys (`v0`, future schemes)
/// are ignored.
pub fn parse_signature_header(value: &str) -> Result<StripeSignature, &'static str> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for pair in value.split(',') {
        let Some((key, val)) = pair.trim().split_once('=') else {
            return Err("expected comma-separated `key=value` pairs like `t=...,v1=...`");
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err("more than one `t=` timestamp");
                }
                timestamp = Some(parse_unix_seconds(val).ok_or("`t=` is not Unix seconds")?);
            }
            "v1" => v1.push(hex::decode(val).map_err(|_| "a `v1=` signature is not hex")?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("no `t=` timestamp")?;
    if v1.is_empty() {
        return Err("no `v1=` signature");
    }
    Ok(StripeSignature { timestamp, v1 })
}

/// The prepared check for one topic.
#[derive(Clone, Debug)]
pub(crate) struct Verify {
    keys: Vec<Key>,
    tolerance: Duration,
}

impl Verify {
    pub(crate) fn new(secrets: &[Secret], tolerance: Duration) -> Self {
        Verify {
            keys: utf8_keys(secrets),
            tolerance,
        }
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
        let parsed = parse_signature_header(single_header(headers, SIGNATURE_HEADER)?)
            .map_err(|reason| VerifyError::malformed(SIGNATURE_HEADER, reason))?;
        check_timestamp(parsed.timestamp, now, self.tolerance)?;
        let timestamp = parsed.timestamp.to_string();
        let mut matched = false;
        for key in &self.keys {
            let expected = hmac_sha256(&key.0, &[timestamp.as_bytes(), b".", body]);
            for candidate in &parsed.v1 {
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
    use http::HeaderValue;

    use super::*;
    use crate::verify::test_support::{at, config, headers};
    use crate::verify::{Scheme, Verifier};

    // Stripe publishes no secret/body/signature triple. This one was computed
    // independently of this code, with Python's standard library:
    //   hmac.new(b"whsec_test_secret",
    //            b'1700000000.{"id": "evt_test_webhook", "object": "event"}',
    //            hashlib.sha256).hexdigest()
    const SECRET: &str = "whsec_test_secret";
    const TS: u64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id": "evt_test_webhook", "object": "event"}"#;
    const V1: &str = "aafb6f8becb4b5db5da0da34d6fb419de5f0866d738651a835f821a8a96cf1f3";

    fn verify(secrets: &[&str], header: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
        Verifier::new(&config(Scheme::Stripe, secrets))
            .expect("verifier")
            .verify(&headers(&[(SIGNATURE_HEADER, header)]), body, at(now))
    }

    fn header(v1: &str) -> String {
        format!("t={TS},v1={v1}")
    }

    #[test]
    fn an_independently_computed_signature_verifies() {
        verify(&[SECRET], &header(V1), BODY, TS).expect("vector");
    }

    #[test]
    fn the_header_example_in_stripes_docs_parses() {
        // From Stripe's "Check the webhook signatures" guide: a v1 and a v0.
        let parsed = parse_signature_header(
            "t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
        )
        .expect("documented header");
        assert_eq!(parsed.timestamp, 1_492_774_577);
        assert_eq!(parsed.v1.len(), 1);
        assert_eq!(parsed.v1[0][..2], [0x52, 0x57]);
    }

    #[test]
    fn several_v1_entries_and_v0_are_handled() {
        let h = format!("t={TS},v0={V1},v1={},v1={V1}", "00".repeat(32));
        verify(&[SECRET], &h, BODY, TS).expect("second v1 matches");
        // A v0 alone is not a signature we check.
        let h = format!("t={TS},v0={V1}");
        let err = verify(&[SECRET], &h, BODY, TS).expect_err("v0 only");
        assert_eq!(err.reason_code(), "malformed_header");
    }

    #[test]
    fn the_secret_is_used_as_utf8_not_base64() {
        // Same secret without the prefix is a different key: the prefix is
        // part of what Stripe signs with.
        assert_eq!(
            verify(&["test_secret"], &header(V1), BODY, TS),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn tampering_wrong_secret_and_rotation() {
        assert_eq!(
            verify(&[SECRET], &header(V1), br#"{"id": "evt_test_webhook"}"#, TS),
            Err(VerifyError::NoMatch)
        );
        // The signed timestamp is part of the payload.
        let moved = format!("t={},v1={V1}", TS + 1);
        assert_eq!(
            verify(&[SECRET], &moved, BODY, TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&["whsec_other"], &header(V1), BODY, TS),
            Err(VerifyError::NoMatch)
        );
        verify(&["whsec_other", SECRET], &header(V1), BODY, TS).expect("rotation");
    }

    #[test]
    fn timestamps_outside_300s_fail_both_ways() {
        verify(&[SECRET], &header(V1), BODY, TS + 300).expect("edge");
        let old = verify(&[SECRET], &header(V1), BODY, TS + 301).expect_err("old");
        assert_eq!(old.reason_code(), "timestamp_out_of_tolerance");
        assert!(old.to_string().contains("301s in the past"), "{old}");
        let new = verify(&[SECRET], &header(V1), BODY, TS - 301).expect_err("new");
        assert!(new.to_string().contains("301s in the future"), "{new}");
    }

    #[test]
    fn malformed_headers_are_malformed() {
        let huge = format!("t={TS}{}", format!(",v1={V1}").repeat(100));
        for bad in [
            "garbage",
            "t=",
            "v1=abc",
            &format!("v1={V1}"),
            &format!("t=soon,v1={V1}"),
            &format!("t={TS},t={TS},v1={V1}"),
            &format!("t={TS},v1=xyz"),
            &format!("t={TS},,v1={V1}"),
            &format!("t={TS}"),
            huge.as_str(),
        ] {
            let err = verify(&[SECRET], bad, BODY, TS).expect_err(bad);
            assert_eq!(err.reason_code(), "malformed_header", "{bad}: {err}");
        }
        let mut h = http::HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_bytes(b"t=1,v1=\xe9").expect("opaque"),
        );
        let err = Verifier::new(&config(Scheme::Stripe, &[SECRET]))
            .expect("verifier")
            .verify(&h, BODY, at(TS))
            .expect_err("non-utf8");
        assert_eq!(err.reason_code(), "malformed_header");
        let err = Verifier::new(&config(Scheme::Stripe, &[SECRET]))
            .expect("verifier")
            .verify(&http::HeaderMap::new(), BODY, at(TS))
            .expect_err("missing");
        assert_eq!(err.to_string(), "missing header `stripe-signature`");
    }
}
