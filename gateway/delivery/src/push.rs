//! HTTP push: one POST per attempt, over a keep-alive pool per destination.
//!
//! Redirects are never followed (hyper's client doesn't, and we don't add a
//! layer that would): a 3xx is an answer like any other, and the retry policy
//! dead-letters it. The whole attempt — connect, send, and reading the first
//! KiB of the response — runs under the destination's timeout.
//!
//! Every new connection goes through the address guard (`guard.rs`): a peer
//! the policy refuses is never written to, and the attempt is marked
//! `refused` so the retry policy dead-letters it at once. TLS trusts the
//! system's roots plus the destination's `tls.ca_file`, and presents its
//! client certificate if one is configured (`tls.rs`).

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::guard::{AddressPolicy, GuardedConnector, find_refusal};
use super::retry::{AttemptResult, parse_retry_after};
use crate::config::{AddressRules, DestinationConfig};

/// How much of a response body the attempt history keeps.
pub const EXCERPT_BYTES: usize = 1024;

/// What one attempt sends.
pub struct Outgoing<'a> {
    pub event_id: &'a str,
    pub topic: &'a str,
    pub attempt: u32,
    pub content_type: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Bytes,
    /// `traceparent` and `tracestate` to send, so the receiver continues
    /// the event's trace (the attempt span's context when tracing is on).
    pub trace: Option<(String, Option<String>)>,
}

/// What one attempt got back.
pub struct Answer {
    pub result: AttemptResult,
    pub latency: Duration,
    pub excerpt: Option<String>,
}

/// A destination of kind `http`.
pub struct HttpPush {
    client: Client<hyper_rustls::HttpsConnector<GuardedConnector>, Full<Bytes>>,
    uri: http::Uri,
    timeout: Duration,
    forward: Vec<HeaderName>,
    /// Static headers from config (values may be secrets: never logged).
    fixed: Vec<(HeaderName, HeaderValue)>,
    signer: Option<switchyard_signatures::Signer>,
}

impl HttpPush {
    /// `rules` are the gateway-wide address rules (`server.deny_private_destinations`,
    /// `server.allow_destination_addresses`).
    pub fn new(config: &DestinationConfig, rules: &AddressRules) -> Result<Self, String> {
        let url = config
            .url
            .as_deref()
            .ok_or("an http destination needs a url")?;
        let uri: http::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        let policy = AddressPolicy::new(rules.deny_private, &rules.allow, &config.allow_addresses);
        let timeout = config.timeout;
        let http = GuardedConnector::new(policy, |http| {
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(timeout));
        });
        let (tls_config, roots) = super::tls::client_config(config.tls.as_ref(), true)?;
        if roots == 0 && uri.scheme_str() == Some("https") {
            return Err(
                "no trusted root certificates: the system has none; set tls.ca_file".to_owned(),
            );
        }
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(config.concurrency.max(1))
            .build(tls);
        let mut forward = Vec::new();
        for h in &config.forward_headers {
            forward.push(
                HeaderName::try_from(h.as_str())
                    .map_err(|e| format!("forward_headers: {h:?}: {e}"))?,
            );
        }
        let mut fixed = Vec::new();
        for (name, value) in &config.headers {
            let n = HeaderName::try_from(name.as_str())
                .map_err(|e| format!("headers: {name:?}: {e}"))?;
            let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
                format!("headers: the value of {name:?} ({value}) is not a valid header value")
            })?;
            v.set_sensitive(true);
            fixed.push((n, v));
        }
        let signer = config
            .signing
            .as_ref()
            .map(switchyard_signatures::Signer::new)
            .transpose()?;
        Ok(Self {
            client,
            uri,
            timeout: config.timeout,
            forward,
            fixed,
            signer,
        })
    }

    /// Where attempts go (for span attributes).
    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }

    /// Sends one attempt. Never fails: a transport error is an [`AttemptResult`] too.
    pub async fn send(&self, out: Outgoing<'_>) -> Answer {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.exchange(out)).await;
        let latency = started.elapsed();
        match result {
            Ok(Ok((result, excerpt))) => Answer {
                result,
                latency,
                excerpt,
            },
            Ok(Err(failure)) => Answer {
                result: AttemptResult {
                    error: Some(failure.message),
                    refused: failure.refused,
                    ..Default::default()
                },
                latency,
                excerpt: None,
            },
            Err(_) => Answer {
                result: AttemptResult {
                    error: Some(format!(
                        "timed out after {}",
                        humantime::format_duration(self.timeout)
                    )),
                    ..Default::default()
                },
                latency,
                excerpt: None,
            },
        }
    }

    async fn exchange(
        &self,
        out: Outgoing<'_>,
    ) -> Result<(AttemptResult, Option<String>), Failure> {
        let body = out.body.clone();
        let mut req = http::Request::post(self.uri.clone())
            .body(Full::new(out.body))
            .map_err(|e| Failure::from(e.to_string()))?;
        let h = req.headers_mut();
        // Always said, even for an empty body: hyper leaves it out at zero,
        // and receivers that wait for a length (or a chunked body) hang or
        // crash on a POST that has neither.
        h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        if let Ok(v) = HeaderValue::from_str(out.content_type) {
            h.insert(CONTENT_TYPE, v);
        }
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in out.headers {
            if let Some(forward) = self
                .forward
                .iter()
                .find(|f| f.as_str().eq_ignore_ascii_case(name))
                && let Ok(v) = HeaderValue::from_str(value)
            {
                h.append(forward.clone(), v);
            }
        }
        let set = |h: &mut http::HeaderMap, name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        // webhook-id stays the same across retries so receivers can dedupe.
        set(h, "webhook-id", out.event_id);
        let ts = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        set(h, "webhook-timestamp", &ts.to_string());
        set(h, "x-switchyard-topic", out.topic);
        set(h, "x-switchyard-attempt", &out.attempt.to_string());
        if let Some((tp, ts)) = &out.trace {
            set(h, "traceparent", tp);
            if let Some(ts) = ts {
                set(h, "tracestate", ts);
            }
        }
        for (n, v) in &self.fixed {
            h.insert(n.clone(), v.clone());
        }
        if let Some(signer) = &self.signer {
            // Same id on every retry; a fresh timestamp and signature per attempt.
            signer.apply(h, out.event_id, ts as i64, &body)?;
        }

        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| Failure::transport(&e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut body = resp.into_body();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let take = (EXCERPT_BYTES - excerpt.len()).min(data.len());
                        excerpt.extend_from_slice(&data[..take]);
                    }
                }
                // A body cut short still leaves us the status: keep it.
                Some(Err(_)) | None => break,
            }
        }
        let excerpt = (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned());
        Ok((
            AttemptResult {
                status: Some(status),
                retry_after,
                ..Default::default()
            },
            excerpt,
        ))
    }
}

/// An attempt that got no answer.
struct Failure {
    message: String,
    /// The address guard refused the peer: retrying cannot help.
    refused: bool,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self {
            message,
            refused: false,
        }
    }
}

impl Failure {
    /// A short, specific description of a client failure: "connect:
    /// Connection refused (os error 111)" rather than hyper's nested
    /// wrapper chain; a refusal by the address guard as it is.
    fn transport(e: &hyper_util::client::legacy::Error) -> Self {
        if let Some(r) = find_refusal(e) {
            return Self {
                message: r.to_string(),
                refused: true,
            };
        }
        let mut innermost: &dyn std::error::Error = e;
        while let Some(s) = innermost.source() {
            innermost = s;
        }
        let what = if e.is_connect() { "connect" } else { "request" };
        let hint = tls_hint(e).unwrap_or_default();
        format!("{what}: {innermost}{hint}").into()
    }
}

/// What to change in the config for the TLS failures that a setting fixes.
fn tls_hint(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use rustls::{AlertDescription, CertificateError, Error as TlsError};
    let mut cur = Some(e);
    while let Some(err) = cur {
        match as_tls_error(err) {
            Some(TlsError::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                return Some(
                    " (the destination's certificate is not signed by a trusted CA: add it with tls.ca_file)",
                );
            }
            Some(TlsError::AlertReceived(AlertDescription::CertificateRequired))
            | Some(TlsError::NoCertificatesPresented) => {
                return Some(
                    " (the destination requires a client certificate: set tls.client_cert and tls.client_key)",
                );
            }
            Some(_) => return None,
            None => {}
        }
        cur = err.source();
    }
    None
}

/// The rustls error inside `e`: TLS errors reach us wrapped in one or more
/// io::Errors, whose `source()` skips the error they wrap.
fn as_tls_error<'a>(mut e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        e = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}
