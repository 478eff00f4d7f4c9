//! The cross-site request guard: a web page in the operator's browser must
//! not be able to change the gateway's state.
//!
//! A browser on the operator's machine is a loopback client, and the admin
//! API trusts loopback when no tokens are configured, so any page the
//! operator visits could otherwise POST `.../dlq` purges with a form. The
//! browser itself tells us when a request is cross-site, and a "simple"
//! request (the only kind a page can send cross-origin without a CORS
//! preflight, which we never answer) is recognisable by its content type:
//!
//! 1. Every state-changing request (POST, PUT, PATCH, DELETE) with an
//!    `Origin` header must come from the origin it is sent to: the
//!    `Origin`'s host and port must equal `Host`. `Origin: null` (sandboxed
//!    frames, some privacy modes) is refused. `Sec-Fetch-Site: cross-site`
//!    or `same-site` is refused too. Browsers send `Origin` on every
//!    cross-origin POST; webhook senders and CLIs send none, so ingest keeps
//!    working for them.
//! 2. Outside ingest (`/v1/topics/{t}/events...`), a state-changing request
//!    with a body content type a form can send (`text/plain`,
//!    `application/x-www-form-urlencoded`, `multipart/form-data`) must also
//!    carry the custom header `X-Switchyard-Request`. A page cannot set a
//!    custom header or a JSON content type cross-origin without a
//!    preflight, and this gateway answers no preflight. Ingest is exempt:
//!    webhook senders post any content type.

use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The custom header that marks a request as sent by a script of this
/// origin (the console sends it on every call).
pub const REQUEST_HEADER: &str = "x-switchyard-request";

/// The refusal of a cross-site state-changing request (see the module's
/// rules), or `None` for a request that may go on.
pub fn refusal<B>(req: &Request<B>) -> Option<Response> {
    // HTTP/2 carries the host as `:authority`, which lands in the URI.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let why = check(req.method(), req.uri().path(), host, req.headers()).err()?;
    tracing::warn!(
        method = %req.method(),
        path = %req.uri().path(),
        reason = why,
        "Cross-site request refused."
    );
    Some(ApiError::new(StatusCode::FORBIDDEN, "cross_site_request", why).into_response())
}

/// Why a request is refused, if it is.
fn check(
    method: &Method,
    path: &str,
    host: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    if !matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && matches!(site.as_bytes(), b"cross-site" | b"same-site")
    {
        return Err("a state-changing request must come from this origin (Sec-Fetch-Site)");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let same = origin
            .to_str()
            .ok()
            .and_then(origin_authority)
            .zip(host)
            .is_some_and(|(o, h)| o.eq_ignore_ascii_case(h));
        if !same {
            return Err("the Origin of a state-changing request must match its Host");
        }
    }
    if is_ingest(path) || headers.contains_key(REQUEST_HEADER) {
        return Ok(());
    }
    let simple = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|ct| {
            matches!(
                ct.as_str(),
                "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
            )
        });
    if simple {
        return Err(
            "a state-changing admin request needs a JSON content type or the X-Switchyard-Request header",
        );
    }
    Ok(())
}

/// `host[:port]` of an `Origin` value (`scheme://host[:port]`), as `Host`
/// carries it. The default port is left out by browsers in both, so the
/// two compare as strings.
fn origin_authority(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return None;
    }
    Some(rest)
}

/// Publish endpoints, which webhook senders call with any content type.
fn is_ingest(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v1/topics/") else {
        return false;
    };
    matches!(
        rest.split('/').collect::<Vec<_>>().as_slice(),
        [_, "events"] | [_, "events", "batch"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn c(m: &Method, p: &str, h: &HeaderMap) -> Result<(), &'static str> {
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
        check(m, p, host, h)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_pass_whatever_their_origin() {
        let h = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert!(c(&Method::GET, "/v1/events", &h).is_ok());
    }

    #[test]
    fn a_foreign_origin_cannot_write_even_to_ingest() {
        let h = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert!(c(&Method::POST, "/v1/topics/t/events", &h).is_err());
        assert!(c(&Method::DELETE, "/v1/destinations/d/dlq", &h).is_err());
        let null = headers(&[("origin", "null"), ("host", "127.0.0.1:8080")]);
        assert!(c(&Method::POST, "/v1/destinations/d/pause", &null).is_err());
        let site = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(c(&Method::POST, "/v1/destinations/d/pause", &site).is_err());
    }

    #[test]
    fn the_same_origin_may_write() {
        let h = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080"),
            ("content-type", "application/json"),
        ]);
        assert!(c(&Method::POST, "/v1/destinations/d/pause", &h).is_ok());
    }

    #[test]
    fn form_content_types_need_the_custom_header_outside_ingest() {
        let form = headers(&[("content-type", "text/plain;charset=UTF-8")]);
        assert!(c(&Method::POST, "/v1/destinations/d/dlq/replay", &form).is_err());
        assert!(c(&Method::POST, "/v1/topics/t/events", &form).is_ok());
        assert!(c(&Method::POST, "/v1/topics/t/events/batch", &form).is_ok());
        assert!(c(&Method::POST, "/v1/topics/t/dlq/replay", &form).is_err());
        let marked = headers(&[
            ("content-type", "text/plain"),
            ("x-switchyard-request", "1"),
        ]);
        assert!(c(&Method::POST, "/v1/destinations/d/dlq/replay", &marked).is_ok());
        // A CLI's bodiless POST sends no content type and no Origin.
        assert!(c(&Method::POST, "/v1/destinations/d/pause", &HeaderMap::new()).is_ok());
    }
}
