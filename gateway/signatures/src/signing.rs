//! Outbound signing: every delivery to a destination with
//! `signing = { scheme = "standard-webhooks", secrets = [...] }` carries
//! `webhook-id`, `webhook-timestamp` and `webhook-signature`, so the receiver
//! can check it with any Standard Webhooks library.
//!
//! The id stays the same across retries (receivers dedupe on it); the
//! timestamp and signature are fresh on each attempt, or a receiver's
//! replay window would refuse a late retry. With two secrets configured
//! during a rotation, each delivery carries one signature per secret, so the
//! receiver verifies whichever secret it currently holds.

use std::fmt;

use base64::Engine;
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;

use crate::verify::standard_webhooks::{
    WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, decode_secret, signature,
};
use switchyard_core::Secret;

/// How a destination signs what it sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// The signature convention; only Standard Webhooks for now.
    pub scheme: SigningScheme,
    /// `whsec_<base64>` secrets (`env:NAME`). Two during a rotation: the
    /// receiver accepts whichever it knows, so neither side has a cut-over
    /// moment.
    pub secrets: Vec<Secret>,
}

/// The signature conventions Switchyard can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SigningScheme {
    /// <https://www.standardwebhooks.com/>.
    StandardWebhooks,
}

/// A destination's signer, built once from its [`SigningConfig`]. `Debug`
/// shows only how many keys it holds.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl Signer {
    /// Decodes the secrets; the error names the secret's source (`env:NAME`),
    /// never its value.
    pub fn new(config: &SigningConfig) -> Result<Signer, String> {
        match config.scheme {
            SigningScheme::StandardWebhooks => {}
        }
        if config.secrets.is_empty() {
            return Err("`signing.secrets` is empty: give at least one `whsec_` secret".to_owned());
        }
        let keys = config
            .secrets
            .iter()
            .map(|s| decode_secret(s.expose()).map_err(|e| format!("secret {}: {e}", s.source())))
            .collect::<Result<_, _>>()?;
        Ok(Signer { keys })
    }

    /// The `webhook-signature` value: one `v1,<base64>` per secret, in
    /// config order, separated by spaces.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let engine = &base64::engine::general_purpose::STANDARD;
        let mut out = String::with_capacity(self.keys.len() * 48);
        for key in &self.keys {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("v1,");
            engine.encode_string(signature(key, msg_id, timestamp_secs, body), &mut out);
        }
        out
    }

    /// Sets the three Standard Webhooks headers on an outgoing request,
    /// replacing any already there. Fails only if `msg_id` can't be a header
    /// value (control characters), which a ULID never has.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        msg_id: &str,
        timestamp_secs: i64,
        body: &[u8],
    ) -> Result<(), String> {
        let id = HeaderValue::from_str(msg_id)
            .map_err(|_| "the message id is not a valid header value".to_owned())?;
        let signature = HeaderValue::from_str(&self.sign(msg_id, timestamp_secs, body))
            .map_err(|_| "the signature is not a valid header value".to_owned())?;
        headers.insert(WEBHOOK_ID, id);
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp_secs));
        headers.insert(WEBHOOK_SIGNATURE, signature);
        Ok(())
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("scheme", &SigningScheme::StandardWebhooks)
            .field("secrets", &self.keys.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::verify::{Scheme, Verifier, VerifyConfig, VerifyError};

    // The Standard Webhooks reference test vector (see
    // ingest::verify::standard_webhooks for its source).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    // A second secret, as during a rotation: base64 of 32 bytes 0x00..0x1f.
    const NEXT: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values
            .iter()
            .map(|v| Secret::resolve(v).expect("inline secret"))
            .collect()
    }

    fn signer(values: &[&str]) -> Signer {
        Signer::new(&SigningConfig {
            scheme: SigningScheme::StandardWebhooks,
            secrets: secrets(values),
        })
        .expect("signer")
    }

    fn verifier(values: &[&str]) -> Verifier {
        Verifier::new(&VerifyConfig {
            scheme: Scheme::StandardWebhooks,
            secrets: secrets(values),
            tolerance: None,
            header: None,
            algorithm: None,
            encoding: None,
            prefix: None,
        })
        .expect("verifier")
    }

    fn unix_now() -> i64 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        i64::try_from(secs).expect("fits")
    }

    #[test]
    fn signing_reproduces_the_published_vector() {
        assert_eq!(signer(&[SECRET]).sign(MSG_ID, TS, BODY), SIG);
    }

    #[test]
    fn rotation_sends_one_signature_per_secret_in_order() {
        let both = signer(&[SECRET, NEXT]).sign(MSG_ID, TS, BODY);
        let entries: Vec<&str> = both.split(' ').collect();
        assert_eq!(entries.len(), 2, "{both}");
        assert_eq!(entries[0], SIG);
        assert_eq!(entries[1], signer(&[NEXT]).sign(MSG_ID, TS, BODY));
    }

    #[test]
    fn what_we_sign_our_verifier_accepts_with_either_secret() {
        let mut headers = HeaderMap::new();
        let now = unix_now();
        let body = br#"{"order": 42}"#;
        signer(&[SECRET, NEXT])
            .apply(&mut headers, "01J0000000000000000000000", now, body)
            .expect("apply");
        let clock = SystemTime::now();
        verifier(&[SECRET])
            .verify(&headers, body, clock)
            .expect("old secret");
        verifier(&[NEXT])
            .verify(&headers, body, clock)
            .expect("new secret");
        assert_eq!(
            verifier(&[SECRET]).verify(&headers, br#"{"order": 43}"#, clock),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            headers.get(WEBHOOK_TIMESTAMP).expect("ts"),
            &now.to_string()
        );
    }

    #[test]
    fn config_is_checked_once() {
        let parsed: SigningConfig = toml::from_str(
            r#"scheme = "standard-webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]"#,
        )
        .expect("documented shape");
        Signer::new(&parsed).expect("valid");
        toml::from_str::<SigningConfig>(
            r#"scheme = "standard-webhooks"
secrets = ["x"]
tolerance = "5m""#,
        )
        .expect_err("unknown key");
        toml::from_str::<SigningConfig>(
            r#"scheme = "github"
secrets = ["x"]"#,
        )
        .expect_err("not a signing scheme");
        let err = Signer::new(&SigningConfig {
            scheme: SigningScheme::StandardWebhooks,
            secrets: secrets(&["not base64!"]),
        })
        .expect_err("bad secret");
        assert!(
            err.contains("inline") && !err.contains("not base64!"),
            "{err}"
        );
        let err = Signer::new(&SigningConfig {
            scheme: SigningScheme::StandardWebhooks,
            secrets: vec![],
        })
        .expect_err("no secrets");
        assert!(err.contains("signing.secrets"), "{err}");
    }

    #[test]
    fn debug_never_shows_key_material() {
        let shown = format!("{:?}", signer(&[SECRET]));
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert!(shown.contains("secrets: 1"), "{shown}");
    }

    #[test]
    fn an_id_that_cannot_be_a_header_is_an_error_not_a_panic() {
        let mut headers = HeaderMap::new();
        signer(&[SECRET])
            .apply(&mut headers, "bad\nid", 1, b"")
            .expect_err("newline in id");
        assert!(headers.is_empty());
    }

    /// Runs tests/python/verify_standardwebhooks.py, which checks a
    /// signature with the reference Python library: true if it accepted.
    fn python_verifies(
        python: &str,
        secret: &str,
        id: &str,
        ts: i64,
        sig: &str,
        body: &str,
    ) -> bool {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/python/verify_standardwebhooks.py"
        );
        let input = serde_json::json!({
            "secret": secret, "id": id, "timestamp": ts.to_string(),
            "signature": sig, "body": body,
        });
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("SWITCHYARD_PYTHON runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.to_string().as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("python finishes");
        eprintln!(
            "python: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success()
    }

    /// A real peer: the reference `standardwebhooks` Python library must
    /// accept what we sign. Skipped locally without SWITCHYARD_PYTHON (a venv
    /// python with `standardwebhooks` installed); in CI a missing variable is
    /// a failure, so the check can't silently stop running.
    #[test]
    fn the_python_reference_library_verifies_our_signatures() {
        let Some(python) = std::env::var_os("SWITCHYARD_PYTHON") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but SWITCHYARD_PYTHON is unset: point it at a venv python with \
                 `standardwebhooks` installed"
            );
            eprintln!("SWITCHYARD_PYTHON unset: skipping the Python interoperability check");
            return;
        };
        let python = python.to_str().expect("utf-8 path");
        let body = r#"{"type":"order.created","data":{"id":42,"note":"héllo"}}"#;
        let id = "01J9Z8Y7X6W5V4T3S2R1Q0P9N8";
        // The library checks the timestamp against its own clock.
        let now = unix_now();
        let both = signer(&[SECRET, NEXT]).sign(id, now, body.as_bytes());
        assert!(
            python_verifies(python, SECRET, id, now, &both, body),
            "old secret"
        );
        assert!(
            python_verifies(python, NEXT, id, now, &both, body),
            "new secret"
        );
        let bare = SECRET.trim_start_matches("whsec_");
        assert!(
            python_verifies(python, bare, id, now, &both, body),
            "bare base64 secret"
        );
        // And the negative cases, so this test can fail: a tampered body, a
        // secret we did not sign with, a stale timestamp.
        let tampered = body.replace("42", "43");
        assert!(
            !python_verifies(python, SECRET, id, now, &both, &tampered),
            "tampered"
        );
        let other = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=";
        assert!(
            !python_verifies(python, other, id, now, &both, body),
            "other secret"
        );
        let stale = now - 3600;
        let old = signer(&[SECRET]).sign(id, stale, body.as_bytes());
        assert!(
            !python_verifies(python, SECRET, id, stale, &old, body),
            "stale"
        );
    }
}
