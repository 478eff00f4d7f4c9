//! A generic HMAC of the body in a header of the sender's choosing, for the
//! many senders with their own variant: Shopify's base64
//! `x-shopify-hmac-sha256`, plain hex headers, `sha256=`-style prefixes.
//!
//! ```toml
//! verify = { scheme = "hmac", secrets = ["env:SHOP_KEY"], header = "x-shopify-hmac-sha256",
//!            algorithm = "sha256", encoding = "base64" }
//! ```
//!
//! Only the body is signed, with no timestamp, so replays are bounded by the
//! topic's idempotency window, not by this check.

use ::hmac::{Hmac, Mac};
use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use http::{HeaderMap, HeaderName};

use super::{
    HmacAlgorithm, Key, SignatureEncoding, VerifyConfig, VerifyError, ct_eq, single_header,
    utf8_keys,
};

/// Standard base64 with or without padding: senders differ and both are
/// unambiguous.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Strips `prefix` from a header value and decodes the signature, which
/// must be exactly `len` bytes (the algorithm's output size).
pub fn parse_signature_header(
    value: &str,
    prefix: &str,
    encoding: SignatureEncoding,
    len: usize,
) -> Result<Vec<u8>, String> {
    let encoded = value
        .strip_prefix(prefix)
        .ok_or_else(|| format!("expected the signature to start with `{prefix}`"))?;
    let sig = match encoding {
        SignatureEncoding::Hex => hex::decode(encoded).map_err(|_| "expected hex".to_owned())?,
        SignatureEncoding::Base64 => BASE64
            .decode(encoded)
            .map_err(|_| "expected base64".to_owned())?,
    };
    if sig.len() != len {
        return Err(format!("expected a {len}-byte signature"));
    }
    Ok(sig)
}

/// The prepared check for one topic.
#[derive(Clone, Debug)]
pub(crate) struct Verify {
    keys: Vec<Key>,
    header: HeaderName,
    algorithm: HmacAlgorithm,
    encoding: SignatureEncoding,
    prefix: String,
}

impl Verify {
    pub(crate) fn new(config: &VerifyConfig) -> Result<Self, String> {
        let name = config
            .header
            .as_deref()
            .ok_or("scheme hmac needs `verify.header`, the header carrying the signature")?;
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`verify.header` = {name:?} is not a valid header name"))?;
        Ok(Verify {
            keys: utf8_keys(&config.secrets),
            header,
            algorithm: config.algorithm.unwrap_or_default(),
            encoding: config.encoding.unwrap_or_default(),
            prefix: config.prefix.clone().unwrap_or_default(),
        })
    }

    pub(crate) fn secret_count(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let name = self.header.as_str();
        let len = match self.algorithm {
            HmacAlgorithm::Sha256 => 32,
            HmacAlgorithm::Sha512 => 64,
        };
        let candidate = parse_signature_header(
            single_header(headers, name)?,
            &self.prefix,
            self.encoding,
            len,
        )
        .map_err(|reason| VerifyError::malformed(name, reason))?;
        let mut matched = false;
        for key in &self.keys {
            matched |= ct_eq(&mac(self.algorithm, &key.0, body), &candidate);
        }
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatch)
        }
    }
}

/// The HMAC of `body` under `key` with the configured hash.
fn mac(algorithm: HmacAlgorithm, key: &[u8], body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so the error arms never run; an empty
    // MAC would simply match nothing.
    match algorithm {
        HmacAlgorithm::Sha256 => match Hmac::<sha2::Sha256>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(body);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
        HmacAlgorithm::Sha512 => match Hmac::<sha2::Sha512>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(body);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use http::HeaderValue;

    use super::*;
    use crate::verify::test_support::{config, headers};
    use crate::verify::{Scheme, Verifier};

    // Computed independently with Python's standard library:
    //   hmac.new(b"generic-secret", b'{"a":1}', hashlib.sha256).hexdigest()
    //   base64.b64encode(hmac.new(b"generic-secret", b'{"a":1}', hashlib.sha512).digest())
    const SECRET: &str = "generic-secret";
    const BODY: &[u8] = br#"{"a":1}"#;
    const SHA256_HEX: &str = "25356a87463a4b8f8cc3d46102f9e21794a511ab94e337c1faf307f1d9a5677c";
    const SHA512_B64: &str =
        "EgxYAjxysQuBTmMd7Ea6+QB3I/V/KS3L4wJ/5tIyG6Za7o9Wir4X9p4Nsg58+nqPNH7JaJqrCA+DKFPEyPt2+w==";

    fn verifier(
        secrets: &[&str],
        algorithm: Option<HmacAlgorithm>,
        encoding: Option<SignatureEncoding>,
        prefix: Option<&str>,
    ) -> Verifier {
        let mut c = config(Scheme::Hmac, secrets);
        c.header = Some("X-Signature".into());
        c.algorithm = algorithm;
        c.encoding = encoding;
        c.prefix = prefix.map(str::to_owned);
        Verifier::new(&c).expect("verifier")
    }

    fn check(v: &Verifier, value: &str, body: &[u8]) -> Result<(), VerifyError> {
        v.verify(&headers(&[("x-signature", value)]), body, SystemTime::now())
    }

    #[test]
    fn sha256_hex_is_the_default() {
        let v = verifier(&[SECRET], None, None, None);
        check(&v, SHA256_HEX, BODY).expect("sha256 hex");
        check(&v, &SHA256_HEX.to_uppercase(), BODY).expect("upper-case hex");
    }

    #[test]
    fn sha512_base64_with_and_without_padding() {
        let v = verifier(
            &[SECRET],
            Some(HmacAlgorithm::Sha512),
            Some(SignatureEncoding::Base64),
            None,
        );
        check(&v, SHA512_B64, BODY).expect("padded");
        check(&v, SHA512_B64.trim_end_matches('='), BODY).expect("unpadded");
    }

    #[test]
    fn a_prefix_is_required_when_configured() {
        let v = verifier(&[SECRET], None, None, Some("sha256="));
        check(&v, &format!("sha256={SHA256_HEX}"), BODY).expect("prefixed");
        let err = check(&v, SHA256_HEX, BODY).expect_err("no prefix");
        assert_eq!(
            err.to_string(),
            "malformed header `x-signature`: expected the signature to start with `sha256=`"
        );
    }

    #[test]
    fn tampering_wrong_secret_and_rotation() {
        let v = verifier(&[SECRET], None, None, None);
        assert_eq!(
            check(&v, SHA256_HEX, br#"{"a":2}"#),
            Err(VerifyError::NoMatch)
        );
        let wrong = verifier(&["other"], None, None, None);
        assert_eq!(check(&wrong, SHA256_HEX, BODY), Err(VerifyError::NoMatch));
        let rotated = verifier(&["other", SECRET], None, None, None);
        check(&rotated, SHA256_HEX, BODY).expect("second secret");
    }

    #[test]
    fn malformed_signatures_are_malformed() {
        let v = verifier(&[SECRET], None, None, None);
        let long = "ab".repeat(3000);
        for bad in [
            "garbage",
            "abcd",
            &SHA256_HEX[..63],
            SHA512_B64,
            long.as_str(),
        ] {
            let err = check(&v, bad, BODY).expect_err(bad);
            assert_eq!(err.reason_code(), "malformed_header", "{bad}");
        }
        // A sha256-sized signature where sha512 is configured names the size.
        let v512 = verifier(&[SECRET], Some(HmacAlgorithm::Sha512), None, None);
        let err = check(&v512, SHA256_HEX, BODY).expect_err("too short");
        assert!(err.to_string().contains("64-byte"), "{err}");
        let mut h = HeaderMap::new();
        h.insert(
            "x-signature",
            HeaderValue::from_bytes(b"\xfe\xff").expect("opaque"),
        );
        let err = v.verify(&h, BODY, SystemTime::now()).expect_err("non-utf8");
        assert_eq!(err.reason_code(), "malformed_header");
        let err = v
            .verify(&HeaderMap::new(), BODY, SystemTime::now())
            .expect_err("missing");
        assert_eq!(err.to_string(), "missing header `x-signature`");
    }

    #[test]
    fn config_needs_a_valid_header_name() {
        let c = config(Scheme::Hmac, &[SECRET]);
        assert!(
            Verifier::new(&c)
                .expect_err("no header")
                .contains("verify.header")
        );
        let mut c = config(Scheme::Hmac, &[SECRET]);
        c.header = Some("bad header".into());
        assert!(
            Verifier::new(&c)
                .expect_err("bad name")
                .contains("not a valid header name")
        );
    }
}
