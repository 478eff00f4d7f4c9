//! Slack request signing: `X-Slack-Signature: v0=<hex>`, an HMAC-SHA256 of
//! `v0:<X-Slack-Request-Timestamp>:<body>` keyed with the app's signing
//! secret as UTF-8. Slack asks receivers to refuse timestamps more than five
//! minutes off, which is the default tolerance.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::{
    Key, VerifyError, check_timestamp, ct_eq, hmac_sha256, parse_unix_seconds, single_header,
    utf8_keys,
};
use switchyard_core::Secret;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// The header carrying the signed timestamp, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

/// Parses an `X-Slack-Signature` value (`v0=` and 64 hex digits) into the
/// 32 signature bytes.
pub fn parse_signature_header(value: &str) -> Result<[u8; 32], &'static str> {
    let hex_digits = value.strip_prefix("v0=").ok_or("expected `v0=<hex>`")?;
    let mut sig = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut sig)
        .map_err(|_| "expected `v0=` followed by 64 hex digits")?;
    Ok(sig)
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
        let timestamp = parse_unix_seconds(single_header(headers, TIMESTAMP_HEADER)?)
            .ok_or_else(|| VerifyError::malformed(TIMESTAMP_HEADER, "expected Unix seconds"))?;
        let candidate = parse_signature_header(single_header(headers, SIGNATURE_HEADER)?)
            .map_err(|reason| VerifyError::malformed(SIGNATURE_HEADER, reason))?;
        check_timestamp(timestamp, now, self.tolerance)?;
        let timestamp = timestamp.to_string();
        let mut matched = false;
        for key in &self.keys {
            let expected = hmac_sha256(&key.0, &[b"v0:", timestamp.as_bytes(), b":", body]);
            matched |= ct_eq(&expected, &candidate);
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

    // Slack's worked example in "Verifying requests from Slack"
    // (api.slack.com/authentication/verifying-requests-from-slack): signing
    // secret, timestamp, slash-command body and the resulting signature.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: u64 = 1_531_420_618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn verify(
        secrets: &[&str],
        ts: &str,
        sig: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), VerifyError> {
        Verifier::new(&config(Scheme::Slack, secrets))
            .expect("verifier")
            .verify(
                &headers(&[(TIMESTAMP_HEADER, ts), (SIGNATURE_HEADER, sig)]),
                body,
                at(now),
            )
    }

    #[test]
    fn slacks_documented_example_verifies() {
        verify(&[SECRET], "1531420618", SIG, BODY, TS).expect("Slack's example");
    }

    #[test]
    fn tampering_wrong_secret_and_rotation() {
        let mut tampered = BODY.to_vec();
        tampered[6] ^= 1;
        assert_eq!(
            verify(&[SECRET], "1531420618", SIG, &tampered, TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&[SECRET], "1531420619", SIG, BODY, TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(
                &["8f742231b10e8888abcd99yyyzzz85a6"],
                "1531420618",
                SIG,
                BODY,
                TS
            ),
            Err(VerifyError::NoMatch)
        );
        verify(&["new-secret", SECRET], "1531420618", SIG, BODY, TS).expect("rotation");
    }

    #[test]
    fn timestamps_outside_five_minutes_fail_both_ways() {
        verify(&[SECRET], "1531420618", SIG, BODY, TS + 300).expect("edge");
        verify(&[SECRET], "1531420618", SIG, BODY, TS - 300).expect("edge");
        for now in [TS + 301, TS - 301, TS + 86_400 * 365] {
            let err = verify(&[SECRET], "1531420618", SIG, BODY, now).expect_err("replay");
            assert_eq!(err.reason_code(), "timestamp_out_of_tolerance");
        }
    }

    #[test]
    fn malformed_and_missing_headers() {
        for bad_sig in [
            "garbage",
            "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            "v0=",
            "v0=a2114d57",
            "v0=g2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ] {
            let err = verify(&[SECRET], "1531420618", bad_sig, BODY, TS).expect_err(bad_sig);
            assert_eq!(err.reason_code(), "malformed_header", "{bad_sig}");
        }
        for bad_ts in [
            "yesterday",
            "1531420618.0",
            "-1531420618",
            "1".repeat(40).as_str(),
        ] {
            let err = verify(&[SECRET], bad_ts, SIG, BODY, TS).expect_err(bad_ts);
            assert_eq!(
                err,
                VerifyError::MalformedHeader {
                    header: TIMESTAMP_HEADER.into(),
                    reason: "expected Unix seconds".into()
                }
            );
        }
        let v = Verifier::new(&config(Scheme::Slack, &[SECRET])).expect("verifier");
        let only_sig = headers(&[(SIGNATURE_HEADER, SIG)]);
        assert_eq!(
            v.verify(&only_sig, BODY, at(TS))
                .expect_err("no ts")
                .to_string(),
            "missing header `x-slack-request-timestamp`"
        );
        let only_ts = headers(&[(TIMESTAMP_HEADER, "1531420618")]);
        assert_eq!(
            v.verify(&only_ts, BODY, at(TS))
                .expect_err("no sig")
                .to_string(),
            "missing header `x-slack-signature`"
        );
        let mut h = only_ts.clone();
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_bytes(b"v0=\x80\x81").expect("opaque"),
        );
        assert_eq!(
            v.verify(&h, BODY, at(TS))
                .expect_err("non-utf8")
                .reason_code(),
            "malformed_header"
        );
    }
}
