//! A shared token: `Authorization: Bearer <token>`, for senders that can
//! attach a header but cannot sign. It proves who sent the request, not
//! that the body is intact, so prefer a signing scheme when the sender has
//! one.
//!
//! Tokens are compared as SHA-256 digests in constant time, so neither the
//! content nor the length of a configured token shows in response times.

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::{VerifyError, ct_eq, single_header};
use switchyard_core::Secret;

/// The header carrying the token.
pub const AUTHORIZATION: &str = "authorization";

/// Extracts the token from an `Authorization` value: the `Bearer` scheme
/// (any case, as RFC 7235 has it) then a non-empty token.
pub fn parse_authorization_header(value: &str) -> Result<&str, &'static str> {
    let (scheme, token) = value.split_once(' ').ok_or("expected `Bearer <token>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("expected the `Bearer` scheme");
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err("expected a token after `Bearer`");
    }
    Ok(token)
}

/// The prepared check for one topic: digests of the configured tokens.
#[derive(Clone)]
pub(crate) struct Verify {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Verify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("bearer::Verify")
            .field("tokens", &self.digests.len())
            .finish()
    }
}

impl Verify {
    pub(crate) fn new(secrets: &[Secret]) -> Self {
        Verify {
            digests: secrets
                .iter()
                .map(|s| Sha256::digest(s.expose().as_bytes()).into())
                .collect(),
        }
    }

    pub(crate) fn secret_count(&self) -> usize {
        self.digests.len()
    }

    pub(crate) fn verify(&self, headers: &HeaderMap) -> Result<(), VerifyError> {
        let token = parse_authorization_header(single_header(headers, AUTHORIZATION)?)
            .map_err(|reason| VerifyError::malformed(AUTHORIZATION, reason))?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut matched = false;
        for digest in &self.digests {
            matched |= ct_eq(digest, &presented);
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

    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::verify::test_support::{config, headers};
    use crate::verify::{Scheme, Verifier};

    fn verify(tokens: &[&str], authorization: &str) -> Result<(), VerifyError> {
        Verifier::new(&config(Scheme::Bearer, tokens))
            .expect("verifier")
            .verify(
                &headers(&[(AUTHORIZATION, authorization)]),
                b"{}",
                SystemTime::now(),
            )
    }

    #[test]
    fn the_right_token_passes_in_any_scheme_case() {
        verify(&["s3cr3t-token"], "Bearer s3cr3t-token").expect("exact");
        verify(&["s3cr3t-token"], "bearer s3cr3t-token").expect("lower-case scheme");
    }

    #[test]
    fn wrong_tokens_fail_including_prefixes_and_case() {
        for wrong in [
            "Bearer s3cr3t-toke",
            "Bearer s3cr3t-token2",
            "Bearer S3CR3T-TOKEN",
        ] {
            assert_eq!(
                verify(&["s3cr3t-token"], wrong),
                Err(VerifyError::NoMatch),
                "{wrong}"
            );
        }
    }

    #[test]
    fn either_token_passes_during_rotation() {
        verify(&["old-token", "new-token"], "Bearer new-token").expect("second");
        verify(&["old-token", "new-token"], "Bearer old-token").expect("first");
    }

    #[test]
    fn malformed_authorization_is_malformed_and_not_echoed() {
        for bad in [
            "s3cr3t-token",
            "Basic czNjcjN0LXRva2Vu",
            "Bearer",
            "Bearer    ",
            "Token s3cr3t-token",
        ] {
            let err = verify(&["s3cr3t-token"], bad).expect_err(bad);
            assert_eq!(err.reason_code(), "malformed_header", "{bad}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xfftoken").expect("opaque"),
        );
        let err = Verifier::new(&config(Scheme::Bearer, &["token"]))
            .expect("verifier")
            .verify(&h, b"", SystemTime::now())
            .expect_err("non-utf8");
        assert_eq!(err.reason_code(), "malformed_header");
    }

    #[test]
    fn a_missing_header_is_named() {
        let err = Verifier::new(&config(Scheme::Bearer, &["t"]))
            .expect("verifier")
            .verify(&HeaderMap::new(), b"", SystemTime::now())
            .expect_err("missing");
        assert_eq!(err.to_string(), "missing header `authorization`");
    }
}
