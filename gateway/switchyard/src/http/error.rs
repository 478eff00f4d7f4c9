//! The one place where failures become HTTP answers.
//!
//! Every error body is `{"error": {"code": "...", "message": "..."}}` with the
//! codes `docs/http-api.md` lists; a schema mismatch adds `path` and
//! `expected`. Over a limit or short of disk, the answer carries
//! `Retry-After`. Every error answer also carries its code as an
//! [`ErrorCode`] extension, so the layers that count refusals count the
//! code the client got; [`code_for`] is the one table from a status to a
//! code, for answers that were not built here (axum's own refusals).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API failure, as the client will see it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields for the error object (e.g. `index`, `path`, `expected`).
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: serde_json::Map::new(),
            retry_after: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
        .with("limit", limit)
    }

    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message).retry_after(retry_after)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

/// The error code of an answer, as a response extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

/// The code for an error status that no handler named: the one table.
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "malformed",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "schema_mismatch",
        429 => "rate_limited",
        431 => "headers_too_large",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

impl From<switchyard_store::StoreError> for ApiError {
    fn from(e: switchyard_store::StoreError) -> Self {
        tracing::error!(error = %e, "Store failure while serving a request.");
        // A failed write is worth retrying once the operator has looked at the
        // disk; the event was not accepted, so the sender must retry.
        Self::unavailable(format!("storage failure: {e}"), 5)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        error.extend(self.extra);
        let mut resp = (self.status, axum::Json(json!({ "error": error }))).into_response();
        resp.extensions_mut().insert(ErrorCode(self.code));
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// axum's extractors and routing answer their own refusals in plain text
/// (a path segment that is not UTF-8, a method the route lacks, a missing
/// content type). This layer rewrites any error answer that is not JSON
/// into `shape`, keeping its status and headers (`Allow`, `Retry-After`),
/// so every error a client gets can be parsed. Successful answers and JSON
/// errors pass untouched and unbuffered. A 400 for a request whose body hit
/// `body_read_timeout` (`timed_out`) becomes a 408: the handler only saw a
/// body that failed to arrive.
pub async fn rewrite_plain_errors(
    resp: Response,
    timed_out: Option<super::listener::BodyTimedOut>,
    shape: fn(StatusCode, String) -> Response,
) -> Response {
    let status = resp.status();
    if let Some(t) = timed_out
        && status == StatusCode::BAD_REQUEST
    {
        return shape(StatusCode::REQUEST_TIMEOUT, t.to_string());
    }
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // Rejection texts are a line or two; anything longer is cut.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut out = shape(status, message);
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"))
}

/// The gateway's shape, with the code the one table gives the status.
fn gateway_shape(status: StatusCode, message: String) -> Response {
    ApiError::new(status, code_for(status), message).into_response()
}

/// Every request's first and last step, in one layer (a layer per concern
/// costs each request another boxed service and future): the cross-site
/// guard before anything runs, and, on the way out, axum's plain-text
/// refusals rewritten in the gateway's JSON shape ([`rewrite_plain_errors`]).
pub async fn edge(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if let Some(refused) = super::csrf::refusal(&req) {
        return refused;
    }
    let seen = super::listener::BodyTimeoutSeen::of(&req);
    let resp = next.run(req).await;
    rewrite_plain_errors(resp, seen.get(), gateway_shape).await
}
