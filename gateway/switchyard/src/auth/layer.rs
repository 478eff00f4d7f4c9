//! The axum middlewares that guard routes with [`Auth`], and the answers a
//! refused request gets.
//!
//! Each middleware takes `State<Arc<Auth>>` (not the whole `App`), so the
//! guards can be tried on any router. The peer address comes from
//! `ConnectInfo<SocketAddr>`, which the server inserts for every connection.
//!
//! Refusals: 401 with `WWW-Authenticate` when the token is missing or wrong,
//! 403 naming the scope the token lacks, 429 with `Retry-After` over a
//! token's rate limit. The gateway's own endpoints answer in its error shape
//! (`{"error": {"code", "message"}}`); `/registry` answers in Confluent's
//! (`{"error_code": 40101, "message"}`), because its clients parse that.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, OriginalUri, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Auth, Denied, Need};
use crate::http::ApiError;

/// The `realm` of every challenge.
const REALM: &str = "switchyard";
/// Confluent's content type, so registry clients read our refusals as theirs.
const REGISTRY_JSON: &str = "application/vnd.schemaregistry.v1+json";

/// Which error shape a refusal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Gateway,
    Registry,
}

/// The peer address, looked up the way axum's `ConnectInfo` extractor does
/// (including its `MockConnectInfo` stand-in, which tests use to fake a peer).
fn peer<B>(req: &axum::http::Request<B>) -> Option<SocketAddr> {
    let ext = req.extensions();
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0))
}

async fn guarded(auth: &Auth, need: Need<'_>, shape: Shape, req: Request, next: Next) -> Response {
    match auth.check(req.headers(), peer(&req), need) {
        Ok(token) => {
            // An audit trail of who changed what (reads are not logged).
            if need == Need::Admin && !is_read(req.method()) {
                let who = if token.is_empty() {
                    "(loopback, no tokens configured)"
                } else {
                    token.as_str()
                };
                // The full path: the registry's router sees it without `/registry`.
                let path = req
                    .extensions()
                    .get::<OriginalUri>()
                    .map_or(req.uri().path(), |o| o.0.path());
                tracing::info!(token = who, method = %req.method(), path, "Admin change authorised.");
            }
            next.run(req).await
        }
        Err(denied) => refusal(denied, &need, shape),
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The admin API: needs `admin`.
pub async fn require_admin(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    guarded(&auth, Need::Admin, Shape::Gateway, req, next).await
}

/// Pull endpoints (`/v1/queues/{name}/...`): need `consume:NAME` or `admin`.
pub async fn require_consume(
    State(auth): State<Arc<Auth>>,
    Path(params): Path<HashMap<String, String>>,
    req: Request,
    next: Next,
) -> Response {
    let name = params.get("name").map(String::as_str).unwrap_or_default();
    guarded(&auth, Need::Consume(name), Shape::Gateway, req, next).await
}

/// Ingest (`/v1/topics/{topic}/events...`): topics with `auth = "token"`
/// need `publish:TOPIC` or `admin`; open (and unknown) topics pass, and the
/// handler answers them as before: the refusal, if any. A function the
/// ingest handlers call, not a layer: the hottest route pays for no extra
/// boxed service.
pub fn publish_refusal<B>(
    auth: &Auth,
    req: &axum::http::Request<B>,
    topic: &str,
) -> Option<Response> {
    if !auth.topic_needs_token(topic) {
        return None;
    }
    let need = Need::Publish(topic);
    auth.check(req.headers(), peer(req), need)
        .err()
        .map(|denied| refusal(denied, &need, Shape::Gateway))
}

/// The registry (layered on its router, so paths lack `/registry`): writes
/// need `admin`; reads, lookups and compatibility checks are open.
pub async fn guard_registry(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    if !registry_write(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    guarded(&auth, Need::Admin, Shape::Registry, req, next).await
}

/// Whether a registry request changes something. Anything that is not a
/// known read is treated as a write, so a new route is guarded by default.
fn registry_write(method: &Method, path: &str) -> bool {
    if is_read(method) {
        return false;
    }
    if *method != Method::POST {
        return true;
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        // POST /subjects/{subject}: "is this schema registered?" (lookup).
        ["subjects", _] => false,
        // POST /compatibility/subjects/{subject}/versions[/{version}]: a test.
        ["compatibility", ..] => false,
        _ => true,
    }
}

/// The answer to a refused request.
fn refusal(denied: Denied, need: &Need<'_>, shape: Shape) -> Response {
    let scope_hint = match need {
        Need::Admin => "\"admin\"".to_owned(),
        other => format!("\"{other}\" (or \"admin\")"),
    };
    let how = match shape {
        Shape::Gateway => "send `Authorization: Bearer <token>`",
        Shape::Registry => {
            "send `Authorization: Bearer <token>`, or HTTP Basic auth with the token as the \
             password (basic.auth.user.info = \"any-user:<token>\")"
        }
    };
    let (status, message, challenge) = match &denied {
        Denied::Missing => (
            StatusCode::UNAUTHORIZED,
            format!("this endpoint needs an API token with the scope {scope_hint}: {how}"),
            Some(format!("Bearer realm=\"{REALM}\"")),
        ),
        Denied::Malformed => (
            StatusCode::UNAUTHORIZED,
            format!("the Authorization header is not one this gateway reads: {how}"),
            Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_request\""
            )),
        ),
        Denied::Unknown => (
            StatusCode::UNAUTHORIZED,
            "the API token is not valid".to_owned(),
            Some(format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")),
        ),
        Denied::Forbidden { token, .. } => (
            StatusCode::FORBIDDEN,
            format!("token {token:?} lacks the scope {scope_hint}"),
            Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{need}\""
            )),
        ),
        Denied::RateLimited {
            token,
            retry_after,
            rate,
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("token {token:?} is over its rate limit of {rate}; retry in {retry_after}s"),
            None,
        ),
        Denied::NotLoopback { peer } => (
            StatusCode::FORBIDDEN,
            format!(
                "no API tokens are configured ([auth] tokens), so this endpoint answers only \
                 loopback peers, and {} is not one",
                peer.map_or_else(|| "this peer".to_owned(), |p| p.ip().to_string())
            ),
            None,
        ),
    };
    let retry_after = match &denied {
        Denied::RateLimited { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    let mut resp = match shape {
        Shape::Gateway => {
            let code = match status {
                StatusCode::UNAUTHORIZED => "unauthorized",
                StatusCode::FORBIDDEN => "forbidden",
                _ => "rate_limited",
            };
            let mut err = ApiError::new(status, code, message);
            if matches!(denied, Denied::Forbidden { .. } | Denied::Missing) {
                err = err.with("scope", need.to_string());
            }
            if let Some(secs) = retry_after {
                err = err.retry_after(secs);
            }
            err.into_response()
        }
        Shape::Registry => {
            // Confluent's codes: the status followed by 01.
            let code = u32::from(status.as_u16()) * 100 + 1;
            let mut resp = (
                status,
                axum::Json(serde_json::json!({ "error_code": code, "message": message })),
            )
                .into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(REGISTRY_JSON),
            );
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
    };
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let headers = resp.headers_mut();
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.append(header::WWW_AUTHENTICATE, c);
        }
        if shape == Shape::Registry && status == StatusCode::UNAUTHORIZED {
            headers.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"switchyard\""),
            );
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_reads_lookups_and_checks_are_not_writes() {
        let get = Method::GET;
        let post = Method::POST;
        assert!(!registry_write(&get, "/subjects/a/versions"));
        assert!(!registry_write(&post, "/subjects/a"));
        assert!(!registry_write(
            &post,
            "/compatibility/subjects/a/versions/latest"
        ));
        assert!(registry_write(&post, "/subjects/a/versions"));
        assert!(registry_write(&Method::DELETE, "/subjects/a"));
        assert!(registry_write(&Method::PUT, "/config"));
        assert!(registry_write(&Method::PUT, "/mode"));
        assert!(registry_write(&post, "/something/new"));
    }
}
