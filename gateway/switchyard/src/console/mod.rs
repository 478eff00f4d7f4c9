//! The web console at `/console`: plain HTML, CSS and ES modules in
//! `assets/`, embedded in the binary by rust-embed (also in debug builds,
//! `debug-embed`), so serving it needs no file, no CDN and no Node.
//!
//! The pages talk to the JSON API (`/v1/...`, `/registry/...`) like any
//! client: the assets themselves hold no data, so they are served without
//! a token, and the API's guards decide what the console may see. Every
//! answer carries a strict Content-Security-Policy: scripts and styles
//! from this origin only, no inline code, requests to this origin only,
//! and no framing.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::http::ApiError;

#[derive(rust_embed::Embed)]
#[folder = "src/console/assets/"]
struct Assets;

/// What the console's pages may load and do. `connect-src 'self'` keeps
/// the token from ever being sent elsewhere; `frame-ancestors 'none'`
/// stops clickjacking of the pause and purge buttons.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console's routes, merged into the gateway's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(|| async { asset("index.html") }))
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// One embedded file, with the console's security headers.
fn asset(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return ApiError::not_found("not_found", format!("no console file {path:?}"))
            .into_response();
    };
    let mut r = (StatusCode::OK, file.data.into_owned()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(path)));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends
    // `Origin: null` on the console's own POSTs, which the CSRF guard refuses.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Small and versioned with the binary; a stale page after an upgrade
    // would call endpoints the gateway no longer has.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
