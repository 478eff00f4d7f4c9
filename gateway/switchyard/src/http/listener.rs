//! The listener: accepts TCP (or TLS) connections and serves the router on
//! each with hyper, with the guards a public edge needs.
//!
//! - **Connection cap** (`max_connections`): a slot is taken *before*
//!   `accept`, so clients over the cap wait in the kernel's listen backlog
//!   instead of costing a file descriptor and a task each.
//! - **TLS** (`tls`): rustls, ALPN `h2` and `http/1.1`. Each handshake runs
//!   in its connection's own task under `handshake_timeout`, so a failed or
//!   stalled handshake (or plaintext sent to the TLS port) ends only that
//!   connection. The certificate and key files are watched (notify): when
//!   they change, new connections get the new pair, without a restart; a
//!   pair that can't be used is logged and the old one stays.
//! - **Slow clients**: a watchdog per connection closes it when a request's
//!   headers take longer than `header_read_timeout` from their first byte
//!   (slowloris), when a new connection sends no request within that time,
//!   or when a keep-alive connection sits idle for `idle_timeout`. hyper's
//!   own header timer also counts the idle time before a request, which
//!   would tie the two limits together; the watchdog keeps them apart.
//! - **Stalled bodies**: each request body gets a deadline,
//!   `body_read_timeout` after its headers. Past it the body yields
//!   [`BodyTimedOut`], which ingest answers with 408; hyper then closes the
//!   connection, since the rest of the body was never read.
//! - **Header limits**: `max_header_bytes` is hyper's HTTP/1 read buffer
//!   (and HTTP/2's header list size), `max_headers` its header count; over
//!   either, hyper itself answers 431 and closes the connection.
//! - **Graceful shutdown**: stop accepting, ask every connection to finish
//!   its requests in flight (HTTP/1 closes once idle, HTTP/2 sends GOAWAY),
//!   and wait for them up to `shutdown_grace`.
//!
//! Handlers see the peer address as axum's `ConnectInfo<SocketAddr>`, as
//! they did under `axum::serve`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where each request finds the router that serves it: the one in force
/// when the request arrives (a reload swaps it under open connections).
pub type RouterSource = Arc<dyn Fn() -> axum::Router + Send + Sync>;

/// `[server] tls = { cert = "cert.pem", key = "key.pem" }`: serve HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// A client that has not finished the handshake by then is dropped, so
    /// half-open TLS connections cannot pile up.
    #[serde(default = "default_tls_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

fn default_tls_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

impl TlsConfig {
    /// Makes relative paths relative to the config file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.cert, &mut self.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Reads the certificate and key into a rustls acceptor. Errors name
    /// the file and what is wrong with it.
    pub fn acceptor(&self) -> Result<TlsAcceptor, String> {
        let file = |key: &str, path: &Path, e: rustls_pki_types::pem::Error| match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                format!("{key} {}: no PEM {key} found in the file", path.display())
            }
            rustls_pki_types::pem::Error::Io(io) => format!("{key} {}: {io}", path.display()),
            other => format!("{key} {}: {other}", path.display()),
        };
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file("cert", &self.cert, e))?;
        if certs.is_empty() {
            return Err(format!(
                "cert {}: no PEM certificate found in the file",
                self.cert.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| file("key", &self.key, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "cert {} and key {} are not a usable pair: {e}",
                    self.cert.display(),
                    self.key.display()
                )
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Checks the listener keys of `[server]`: `(key, message)` on failure.
pub fn validate(s: &ServerConfig) -> Result<(), (String, String)> {
    let bad = |k: &str, m: &str| Err((k.to_owned(), m.to_owned()));
    // hyper refuses a read buffer under 8 KiB (it would panic).
    if s.max_header_bytes.as_u64() < 8192 {
        return bad("max_header_bytes", "must be at least 8KiB");
    }
    if s.max_header_bytes.as_u64() > u64::from(u32::MAX) {
        return bad("max_header_bytes", "must be under 4GiB");
    }
    if s.max_headers == 0 {
        return bad("max_headers", "must be at least 1");
    }
    if s.max_connections == 0 || s.max_connections > Semaphore::MAX_PERMITS {
        return bad("max_connections", "must be at least 1");
    }
    for (k, d) in [
        ("header_read_timeout", s.header_read_timeout),
        ("idle_timeout", s.idle_timeout),
        ("body_read_timeout", s.body_read_timeout),
    ] {
        if d.is_zero() {
            return bad(k, "must be above zero");
        }
    }
    if let Some(tls) = &s.tls {
        if tls.handshake_timeout.is_zero() {
            return bad("tls.handshake_timeout", "must be above zero");
        }
        tls.acceptor().map_err(|m| ("tls".to_owned(), m))?;
    }
    Ok(())
}

/// The TLS acceptor, swapped when the certificate or key file changes.
struct LiveTls {
    acceptor: std::sync::RwLock<TlsAcceptor>,
    handshake_timeout: Duration,
}

impl LiveTls {
    fn current(&self) -> TlsAcceptor {
        match self.acceptor.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, next: TlsAcceptor) {
        match self.acceptor.write() {
            Ok(mut a) => *a = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}

/// Quiet time after the last change to the TLS files before reloading:
/// renewal tools write the certificate and the key one after the other.
const TLS_RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the certificate and key; on a change to either, reads the pair
/// again into `live`. The watching stops when the returned watcher is
/// dropped.
fn watch_tls(
    config: TlsConfig,
    live: Arc<LiveTls>,
) -> Result<switchyard_core::watch::Watcher, String> {
    let files = vec![(config.cert.clone(), ()), (config.key.clone(), ())];
    switchyard_core::watch::watch_files(files, TLS_RELOAD_DEBOUNCE, "tls-reload", move |_| {
        match config.acceptor() {
            Ok(next) => {
                live.replace(next);
                tracing::info!(cert = %config.cert.display(), "TLS certificate reloaded; new connections use it.");
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS files changed but can't be used; the previous certificate stays.");
            }
        }
        true
    })
}

/// What the accept loop needs from `[server]`, resolved once.
struct Settings {
    tls: Option<Arc<LiveTls>>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    body_read_timeout: Duration,
    max_connections: usize,
    shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and lets the connections finish their requests (up to
/// `shutdown_grace`). Returns an error only if the TLS files can't be read.
pub async fn serve(
    listener: TcpListener,
    router: RouterSource,
    server: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let tls = match &server.tls {
        Some(t) => Some(Arc::new(LiveTls {
            acceptor: std::sync::RwLock::new(t.acceptor().map_err(io::Error::other)?),
            handshake_timeout: t.handshake_timeout,
        })),
        None => None,
    };
    // Kept for as long as the listener serves.
    let _tls_watch = match (&server.tls, &tls) {
        (Some(config), Some(live)) => match watch_tls(config.clone(), live.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "Can't watch the TLS files; a new certificate needs a restart.");
                None
            }
        },
        _ => None,
    };
    let settings = Arc::new(Settings {
        tls,
        header_read_timeout: server.header_read_timeout,
        idle_timeout: server.idle_timeout,
        body_read_timeout: server.body_read_timeout,
        max_connections: server.max_connections,
        shutdown_grace: server.shutdown_grace,
    });
    let builder = builder(server);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            // The peer gave up before we got to it: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of
                // spinning, and let open connections finish.
                tracing::error!(error = %e, "Accepting a connection failed; retrying in 1s.");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        // Answers are small and written whole: don't let Nagle hold them.
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(
            stream,
            peer,
            router.clone(),
            builder.clone(),
            settings.clone(),
            stop.clone(),
            permit,
        ));
    }
    // New connections are refused from here on.
    drop(listener);
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(settings.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "Connections still busy after server.shutdown_grace; closing them."
        );
    }
    Ok(())
}

fn builder(server: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let max_header_bytes = server.max_header_bytes.as_u64();
    let mut b = auto::Builder::new(TokioExecutor::new());
    let mut h1 = b.http1();
    h1.keep_alive(true)
        // The watchdog does this, without counting idle time (see above).
        .header_read_timeout(None)
        .max_buf_size(usize::try_from(max_header_bytes).unwrap_or(usize::MAX))
        .timer(TokioTimer::new());
    // hyper parses up to 100 headers on the stack; asking for another
    // count moves them to the heap, so only do it when asked.
    if server.max_headers != 100 {
        h1.max_headers(server.max_headers);
    }
    b.http2()
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX))
        .timer(TokioTimer::new());
    b
}

/// Errors of one connection that accept reports but that say nothing about
/// the listener (same list as `axum::serve`).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection: the TLS handshake if any, then HTTP. Holds a
/// connection slot until it ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: RouterSource,
    builder: auto::Builder<TokioExecutor>,
    settings: Arc<Settings>,
    stop: CancellationToken,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let Some(tls) = &settings.tls else {
        return serve_http(stream, peer, router, builder, &settings, stop).await;
    };
    let acceptor = tls.current();
    let handshake = tokio::select! {
        r = tokio::time::timeout(tls.handshake_timeout, acceptor.accept(stream)) => r,
        () = stop.cancelled() => return,
    };
    match handshake {
        Ok(Ok(tls)) => serve_http(tls, peer, router, builder, &settings, stop).await,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed; connection closed.");
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out; connection closed.");
        }
    }
}

/// HTTP/1.1 or HTTP/2 (by ALPN or the client's preface) on one connection,
/// watched for slow and idle clients.
async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    router: RouterSource,
    builder: auto::Builder<TokioExecutor>,
    settings: &Settings,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let body_timeout = settings.body_read_timeout;
    let on_request = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut router = router();
        let h2 = req.version() == hyper::Version::HTTP_2;
        let in_flight = InFlight::begin(on_request.clone(), h2);
        let seen = BodyTimeoutSeen::default();
        let mut req = req.map(|body| DeadlineBody::new(body, body_timeout, seen.clone()));
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(seen);
        async move {
            let _in_flight = in_flight;
            tower_service::Service::call(&mut router, req).await
        }
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // One timer for the connection's life, moved rather than made anew.
    let watchdog = tokio::time::sleep_until(activity.deadline(settings).wake);
    tokio::pin!(watchdog);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "Connection ended with an error.");
                }
                return;
            }
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = watchdog.as_mut() => {
                let deadline = activity.deadline(settings);
                if Instant::now() >= deadline.at {
                    // Nothing is in flight: dropping the connection
                    // loses no request.
                    tracing::debug!(%peer, reason = deadline.why, "Connection closed.");
                    return;
                }
                watchdog.as_mut().reset(deadline.wake);
            }
        }
    }
}

/// What a connection is doing, for its watchdog.
///
/// Requests and bytes only write here; nothing wakes the watchdog. It looks
/// again at least every `header_read_timeout` (see [`Deadline::wake`]), and
/// no deadline can move earlier than that: a request head that starts now
/// is due `header_read_timeout` from now. So a keep-alive request costs no
/// wake-up and no new timer, and every limit still holds to the moment.
struct Activity {
    phase: Mutex<Phase>,
}

struct Phase {
    /// Requests handed to the router and not answered yet.
    in_flight: usize,
    /// Whether any request has been seen: a new connection gets the
    /// (shorter) header timeout to start its first one.
    served: bool,
    /// HTTP/2 clients send frames between requests (pings, window updates,
    /// acks), so bytes while idle don't mean a request head has begun; only
    /// the idle timeout applies to them (hyper's h2 bounds the rest).
    h2: bool,
    /// Since when the connection has had nothing in flight.
    idle_since: Instant,
    /// First byte received while nothing was in flight: the start of the
    /// next request's head.
    head_started: Option<Instant>,
}

/// When the connection would be closed, what for, and when the watchdog
/// looks again.
struct Deadline {
    at: Instant,
    why: &'static str,
    /// `at`, or sooner: never later than `header_read_timeout` from now.
    wake: Instant,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase {
                in_flight: 0,
                served: false,
                h2: false,
                idle_since: Instant::now(),
                head_started: None,
            }),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // The lock is never held across a panic that matters: recover.
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deadline(&self, s: &Settings) -> Deadline {
        let now = Instant::now();
        let p = self.phase();
        let (at, why) = if p.in_flight > 0 {
            // Busy: the body deadline and the handler bound the request.
            (now + s.idle_timeout, "busy")
        } else {
            match p.head_started {
                Some(t) if !p.h2 => (
                    t + s.header_read_timeout,
                    "request headers not received within server.header_read_timeout",
                ),
                _ if !p.served => (
                    p.idle_since + s.header_read_timeout,
                    "no request within server.header_read_timeout of connecting",
                ),
                _ => (
                    p.idle_since + s.idle_timeout,
                    "idle for server.idle_timeout",
                ),
            }
        };
        Deadline {
            at,
            why,
            wake: at.min(now + s.header_read_timeout),
        }
    }

    fn received(&self) {
        let mut p = self.phase();
        if p.in_flight == 0 && p.head_started.is_none() {
            p.head_started = Some(Instant::now());
        }
    }
}

/// Counts a request in flight for as long as its handler runs.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>, h2: bool) -> Self {
        {
            let mut p = activity.phase();
            p.in_flight += 1;
            p.served = true;
            p.h2 |= h2;
            p.head_started = None;
        }
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut p = self.0.phase();
        p.in_flight = p.in_flight.saturating_sub(1);
        if p.in_flight == 0 {
            p.idle_since = Instant::now();
            p.head_started = None;
        }
    }
}

/// The connection's stream, noting when bytes arrive.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.received();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The request body did not arrive within `server.body_read_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimedOut {
    pub after: Duration,
}

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} (server.body_read_timeout)",
            humantime::format_duration(self.after)
        )
    }
}

impl std::error::Error for BodyTimedOut {}

/// Put in each request's extensions; set when its body hits the deadline.
/// Handlers that read the body with axum's extractors only see a failed
/// read (a 400), so the error layers look here to answer 408 instead.
#[derive(Debug, Clone, Default)]
pub struct BodyTimeoutSeen(Arc<std::sync::OnceLock<BodyTimedOut>>);

impl BodyTimeoutSeen {
    /// The timeout, if this request's body hit it.
    pub fn get(&self) -> Option<BodyTimedOut> {
        self.0.get().copied()
    }

    /// The timeout seen by `req`'s body, if it has a deadline and hit it.
    pub fn of<B>(req: &axum::http::Request<B>) -> Self {
        req.extensions().get::<Self>().cloned().unwrap_or_default()
    }
}

impl BodyTimedOut {
    /// Whether `e`, or anything in its source chain, is a body timeout.
    pub fn is_cause_of(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if err.is::<BodyTimedOut>() {
                return true;
            }
            cur = err.source();
        }
        false
    }
}

/// A request body with a deadline for its last byte.
struct DeadlineBody {
    inner: Incoming,
    /// When the request's headers arrived.
    start: Instant,
    after: Duration,
    /// Made on the first wait only: most bodies arrive with their headers.
    sleep: Option<Pin<Box<Sleep>>>,
    seen: BodyTimeoutSeen,
}

impl DeadlineBody {
    fn new(inner: Incoming, after: Duration, seen: BodyTimeoutSeen) -> Self {
        Self {
            inner,
            start: Instant::now(),
            after,
            sleep: None,
            seen,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
        }
        let (start, after) = (this.start, this.after);
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(start + after)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let timed_out = BodyTimedOut { after };
                let _ = this.seen.0.set(timed_out);
                Poll::Ready(Some(Err(Box::new(timed_out))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
