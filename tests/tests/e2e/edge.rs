//! The edge of the server on real sockets: HTTPS with a self-signed
//! certificate (HTTP/1.1 and HTTP/2), clients that speak plaintext to the
//! TLS port or never finish a handshake, slowloris headers, idle keep-alive
//! connections, oversized headers, stalled bodies, the connection cap, and a
//! gzip bomb against the real binary's memory.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic, path, quoted};
use switchyard_tests::{Gateway, Process, Sink, client, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(15);

/// Topic `orders` routed to `sink`; a test adds the `[server]` keys it is about.
fn config(sink: &str) -> Config {
    Config::new()
        .destination(
            Destination::http("hook", sink).retry("{ initial = \"100ms\", max_attempts = 2 }"),
        )
        .topic(Topic::new("orders").routes(["hook"]))
}

fn addr(gw: &Gateway) -> String {
    gw.url.trim_start_matches("http://").to_owned()
}

// ---------------------------------------------------------------- raw HTTP

/// What a raw connection saw.
#[derive(Debug)]
enum Seen {
    /// A whole response (head and `content-length` body).
    Response(String),
    /// The server closed (or reset) the connection; with what came before.
    Closed(String),
    /// Nothing conclusive within the time given.
    Silent,
}

/// Reads one HTTP/1.1 response, or until the connection closes.
async fn read_response(s: &mut TcpStream, within: Duration) -> Seen {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return Seen::Response(text);
            }
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return Seen::Silent,
            Ok(Ok(0)) | Ok(Err(_)) => return Seen::Closed(text),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Waits for the server to close the connection; how long it took.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), s.read(&mut buf)).await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n";

async fn healthy(gw: &Gateway) {
    let r = client().get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the gateway still serves");
}

// ---------------------------------------------------------------------- TLS

struct Pki {
    dir: tempfile::TempDir,
    cert: CertificateDer<'static>,
    cert_file: std::path::PathBuf,
    /// The `server.tls` value.
    tls: String,
}

/// A self-signed certificate for 127.0.0.1 in PEM files, and the `tls`
/// config value naming them.
fn self_signed() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    Pki {
        tls: format!(
            "{{ cert = {}, key = {}, handshake_timeout = \"1s\" }}",
            path(&cert),
            path(&key)
        ),
        cert: ck.cert.der().clone(),
        cert_file: cert,
        dir,
    }
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS connection that trusts only `cert`, offering `alpn`.
async fn tls_connect(addr: &str, cert: &CertificateDer<'static>, alpn: &[&[u8]]) -> Tls {
    try_tls_connect(addr, cert, alpn).await.unwrap()
}

async fn try_tls_connect(
    addr: &str,
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> std::io::Result<Tls> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
}

type Req = hyper::Request<Full<Bytes>>;

fn post_event(uri: &str, body: &str) -> Req {
    hyper::Request::post(uri)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// One request over HTTP/1.1 on `io`: status and body.
async fn send_h1<T>(io: T, req: Req) -> (u16, Value)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = tx.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// One request over HTTP/2 on `io`: status and body.
async fn send_h2<T>(io: T, req: Req) -> (u16, Value)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn https_listener_takes_events_over_http1_and_http2_and_they_are_delivered() {
    let sink = Sink::start().await;
    let pki = self_signed();
    let gw = Gateway::start(&config(&sink.url).server("tls", &pki.tls).build()).await;
    let addr = addr(&gw);

    // HTTP/1.1, chosen by ALPN.
    let tls = tls_connect(&addr, &pki.cert, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (status, body) = send_h1(tls, post_event("/v1/topics/orders/events", r#"{"n":1}"#)).await;
    assert_eq!(status, 202, "{body}");

    // HTTP/2, chosen by ALPN.
    let tls = tls_connect(&addr, &pki.cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let uri = format!("https://{addr}/v1/topics/orders/events");
    let (status, body) = send_h2(tls, post_event(&uri, r#"{"n":2}"#)).await;
    assert_eq!(status, 202, "{body}");

    let got = sink.wait_for(2, WAIT).await;
    let mut bodies: Vec<_> = got
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, [r#"{"n":1}"#, r#"{"n":2}"#]);

    // Plain HTTP to the TLS port gets no answer, only a closed connection.
    let mut raw = TcpStream::connect(&addr).await.unwrap();
    raw.write_all(HEALTHZ).await.unwrap();
    match read_response(&mut raw, Duration::from_secs(5)).await {
        Seen::Closed(text) => assert!(!text.starts_with("HTTP/"), "{text:?}"),
        other => panic!("plaintext to the TLS port: expected a close, got {other:?}"),
    }
    gw.stop().await;
}

/// A certificate renewed in place (as certbot or an editor writes it) is
/// served to new connections without a restart; a broken replacement keeps
/// the last good one.
#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let sink = Sink::start().await;
    let pki = self_signed();
    let gw = Gateway::start(&config(&sink.url).server("tls", &pki.tls).build()).await;
    let addr = addr(&gw);
    let publish = |tls: Tls, n: u32| {
        send_h1(
            tls,
            post_event("/v1/topics/orders/events", &format!(r#"{{"n":{n}}}"#)),
        )
    };
    let tls = tls_connect(&addr, &pki.cert, &[b"http/1.1"]).await;
    assert_eq!(publish(tls, 1).await.0, 202);

    let renewed = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let new_cert = renewed.cert.der().clone();
    let write = |name: &str, text: String| {
        // Written aside and renamed into place, as renewal tools do.
        let tmp = pki.dir.path().join(format!("{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, pki.dir.path().join(name)).unwrap();
    };
    write("cert.pem", renewed.cert.pem());
    write("key.pem", renewed.signing_key.serialize_pem());
    let (at, trusted) = (&addr, &new_cert);
    let tls = eventually(
        Duration::from_secs(10),
        "the renewed certificate to be served",
        || async move { try_tls_connect(at, trusted, &[b"http/1.1"]).await.ok() },
    )
    .await;
    assert_eq!(publish(tls, 2).await.0, 202);
    assert!(
        try_tls_connect(&addr, &pki.cert, &[b"http/1.1"])
            .await
            .is_err(),
        "the old certificate is still served"
    );

    // A broken file is refused; the renewed certificate stays in use.
    write("cert.pem", "not a certificate".to_owned());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tls = tls_connect(&addr, &new_cert, &[b"http/1.1"]).await;
    assert_eq!(publish(tls, 3).await.0, 202);
    assert_eq!(sink.wait_for(3, WAIT).await.len(), 3);
    gw.stop().await;
}

#[tokio::test]
async fn failed_and_stalled_handshakes_do_not_disturb_other_tls_clients() {
    let sink = Sink::start().await;
    let pki = self_signed();
    // A handshake timeout long enough that, on a loaded machine too, the
    // real client below is served well before it.
    let tls = pki
        .tls
        .replace("handshake_timeout = \"1s\"", "handshake_timeout = \"3s\"");
    let gw = Gateway::start(&config(&sink.url).server("tls", &tls).build()).await;
    let addr = addr(&gw);

    // A client that connects and never starts the handshake, one that sends
    // garbage, and one that starts a ClientHello and stalls.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let mut garbage = TcpStream::connect(&addr).await.unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    garbage.write_all(&[0u8; 64]).await.unwrap();
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();

    // Meanwhile a real TLS client is served at once, not after the stalled
    // handshakes time out: when it has its answer, they are still open.
    let tls = tls_connect(&addr, &pki.cert, &[b"http/1.1"]).await;
    let get = hyper::Request::get("/healthz")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _) = send_h1(tls, get).await;
    assert_eq!(status, 200);
    for (what, s) in [("silent", &silent), ("half", &half)] {
        let mut buf = [0u8; 1];
        assert!(
            matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{what}: closed before the real client was served"
        );
    }

    assert!(
        closed_within(&mut garbage, Duration::from_secs(5))
            .await
            .is_some(),
        "a garbage handshake is closed"
    );
    // handshake_timeout = 3s in this config.
    for (what, s) in [("silent", &mut silent), ("half", &mut half)] {
        let took = closed_within(s, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{what}: not closed after the handshake timeout"));
        assert!(
            took < Duration::from_secs(6),
            "{what}: closed after {took:?}"
        );
    }

    // And the next TLS client is still fine.
    let tls = tls_connect(&addr, &pki.cert, &[b"http/1.1"]).await;
    let (status, _) = send_h1(tls, post_event("/v1/topics/orders/events", "{}")).await;
    assert_eq!(status, 202);
    gw.stop().await;
}

#[tokio::test]
async fn tls_files_that_cannot_be_used_are_config_errors_naming_the_file() {
    let pki = self_signed();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let cert = pki.cert_file.display();
    for (tls, expect) in [
        (
            format!("tls = {{ cert = \"{cert}\", key = \"missing.pem\" }}"),
            "missing.pem",
        ),
        (
            format!(
                "tls = {{ cert = \"{cert}\", key = \"{}\" }}",
                garbage.display()
            ),
            "garbage.pem",
        ),
        (
            format!("tls = {{ cert = \"{cert}\", key = \"k.pem\", extra = 1 }}"),
            "extra",
        ),
    ] {
        let text = format!("[server]\n{tls}\n");
        let err = switchyard::config::Config::parse(&text, "t.toml".as_ref(), dir.path())
            .expect_err("a broken tls table is refused");
        let msg = err.to_string();
        assert!(msg.contains(expect), "{msg}");
    }
}

// -------------------------------------------------------------- slow clients

#[tokio::test]
async fn a_slowloris_client_is_cut_off_while_others_are_served() {
    let sink = Sink::start().await;
    let gw = Gateway::start(
        &config(&sink.url)
            .server("header_read_timeout", quoted("3s"))
            .build(),
    )
    .await;
    let slow = TcpStream::connect(addr(&gw)).await.unwrap();
    let (mut rd, mut wr) = slow.into_split();
    let started = Instant::now();
    // Dribble a request head a byte every 50 ms, never finishing it.
    let dribble = tokio::spawn(async move {
        let head = b"POST /v1/topics/orders/events HTTP/1.1\r\nHost: gw\r\nX-Slow: ";
        for b in head.iter().chain(std::iter::repeat(&b'a')).take(400) {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // Normal clients are served meanwhile, well before the slow one's 3s.
    for _ in 0..5 {
        let t = Instant::now();
        healthy(&gw).await;
        let took = t.elapsed();
        assert!(took < Duration::from_millis(1500), "{took:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = client()
        .post(gw.url("/v1/topics/orders/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // The slow one is dropped 3s after its first byte.
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut buf))
        .await
        .expect("the slowloris connection was not closed")
        .unwrap_or(0);
    let took = started.elapsed();
    assert_eq!(n, 0, "no answer, just a close");
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    dribble.abort();
    gw.stop().await;
}

#[tokio::test]
async fn silent_new_connections_and_idle_keep_alive_ones_are_closed() {
    let sink = Sink::start().await;
    let gw = Gateway::start(
        &config(&sink.url)
            .server("header_read_timeout", quoted("500ms"))
            .server("idle_timeout", quoted("3s"))
            .build(),
    )
    .await;
    // Connects and says nothing: gone after header_read_timeout, well
    // before idle_timeout.
    let mut silent = TcpStream::connect(addr(&gw)).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("a silent connection is closed");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2500),
        "{took:?}"
    );

    // One request, then idle: kept for idle_timeout (longer than the header
    // timeout), then closed.
    let mut idle = TcpStream::connect(addr(&gw)).await.unwrap();
    idle.write_all(HEALTHZ).await.unwrap();
    let Seen::Response(r) = read_response(&mut idle, WAIT).await else {
        panic!("no answer")
    };
    assert_eq!(status_of(&r), 200);
    let took = closed_within(&mut idle, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(
        took >= Duration::from_millis(2800) && took < Duration::from_millis(5000),
        "{took:?}"
    );

    // A connection that keeps sending requests inside the idle timeout
    // stays open past it.
    let mut busy = TcpStream::connect(addr(&gw)).await.unwrap();
    for _ in 0..5 {
        busy.write_all(HEALTHZ).await.unwrap();
        let Seen::Response(r) = read_response(&mut busy, WAIT).await else {
            panic!("a keep-alive connection in use was closed")
        };
        assert_eq!(status_of(&r), 200);
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_is_freed() {
    let sink = Sink::start().await;
    let gw = Gateway::start(
        &config(&sink.url)
            .server("body_read_timeout", quoted("1s"))
            .server("max_connections", "2")
            .build(),
    )
    .await;
    let mut stalled = Vec::new();
    for path in ["/v1/topics/orders/events", "/v1/topics/orders/events/batch"] {
        let mut s = TcpStream::connect(addr(&gw)).await.unwrap();
        s.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\n\
                 content-length: 100\r\n\r\n[{{\"half\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        stalled.push((Instant::now(), s));
    }
    // Both connection slots are taken by stalled uploads, for a second.
    for (started, mut s) in stalled {
        let Seen::Response(r) = read_response(&mut s, Duration::from_secs(5)).await else {
            panic!("no 408")
        };
        assert_eq!(status_of(&r), 408, "{r}");
        assert!(r.contains("\"request_timeout\""), "{r}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(
            closed_within(&mut s, Duration::from_secs(3))
                .await
                .is_some(),
            "the connection is closed after the 408"
        );
    }
    // The slots are free again and nothing half-sent was stored.
    healthy(&gw).await;
    let v: Value = client()
        .get(gw.url("/v1/events?topic=orders"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["events"].as_array().map(Vec::len), Some(0), "{v}");
    gw.stop().await;
}

/// Routes whose handlers read the body through axum's extractors (admin,
/// registry) saw only a failed read and answered 400; they answer 408 too,
/// each in its own error shape.
#[tokio::test]
async fn a_stalled_body_on_admin_and_registry_routes_gets_408_in_their_shapes() {
    let sink = Sink::start().await;
    let gw = Gateway::start(
        &config(&sink.url)
            .server("body_read_timeout", quoted("1s"))
            .build(),
    )
    .await;
    for (path, shape) in [
        ("/v1/destinations/hook/dlq/replay", "\"request_timeout\""),
        ("/registry/subjects/s/versions", "\"error_code\":408"),
    ] {
        let mut s = TcpStream::connect(addr(&gw)).await.unwrap();
        s.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\n\
                 content-length: 100\r\n\r\n{{\"half\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let Seen::Response(r) = read_response(&mut s, Duration::from_secs(5)).await else {
            panic!("no answer on {path}")
        };
        assert_eq!(status_of(&r), 408, "{path}: {r}");
        assert!(r.contains(shape), "{path}: {r}");
        assert!(r.contains("body_read_timeout"), "{path}: {r}");
    }
    // A malformed body that does arrive is still a 400.
    let r = client()
        .post(gw.url("/v1/destinations/hook/dlq/replay"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    gw.stop().await;
}

// -------------------------------------------------------------- header limits

#[tokio::test]
async fn too_large_or_too_many_headers_get_431_and_the_server_keeps_serving() {
    let sink = Sink::start().await;
    let gw = Gateway::start(
        &config(&sink.url)
            .server("max_header_bytes", quoted("16KiB"))
            .server("max_headers", "20")
            .build(),
    )
    .await;
    let big = format!(
        "POST /v1/topics/orders/events HTTP/1.1\r\nHost: gw\r\nX-Big: {}\r\n\
         content-length: 2\r\n\r\n{{}}",
        "a".repeat(20 * 1024)
    );
    let many = format!(
        "POST /v1/topics/orders/events HTTP/1.1\r\nHost: gw\r\n{}content-length: 2\r\n\r\n{{}}",
        (0..30)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    for (what, req) in [("a 20 KiB header", big), ("30 headers", many)] {
        let mut s = TcpStream::connect(addr(&gw)).await.unwrap();
        // The server may answer and close before reading all of it.
        let _ = s.write_all(req.as_bytes()).await;
        match read_response(&mut s, Duration::from_secs(5)).await {
            Seen::Response(r) | Seen::Closed(r) if r.starts_with("HTTP/") => {
                assert_eq!(status_of(&r), 431, "{what}: {r}");
            }
            other => panic!("{what}: expected 431, got {other:?}"),
        }
        assert!(
            closed_within(&mut s, Duration::from_secs(3))
                .await
                .is_some(),
            "{what}: the connection is closed after the 431"
        );
        healthy(&gw).await;
    }
    // Just under both limits is fine.
    let r = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("x-big", "a".repeat(12 * 1024))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(sink.wait_for(1, WAIT).await.len() == 1);
    gw.stop().await;
}

// --------------------------------------------------------- connection cap

#[tokio::test]
async fn connections_over_max_connections_wait_for_a_free_slot() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).server("max_connections", "2").build()).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr(&gw)).await.unwrap();
        s.write_all(HEALTHZ).await.unwrap();
        let Seen::Response(r) = read_response(&mut s, WAIT).await else {
            panic!("no answer")
        };
        assert_eq!(status_of(&r), 200);
        held.push(s);
    }
    // The third connects (the kernel's backlog) but is not served...
    let mut third = TcpStream::connect(addr(&gw)).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    assert!(
        matches!(
            read_response(&mut third, Duration::from_millis(800)).await,
            Seen::Silent
        ),
        "a third connection was served over max_connections = 2"
    );
    // ...until one of the two closes.
    drop(held.pop());
    let Seen::Response(r) = read_response(&mut third, Duration::from_secs(5)).await else {
        panic!("the waiting connection was not served once a slot was free")
    };
    assert_eq!(status_of(&r), 200);
    drop(held);
    drop(third);
    gw.stop().await;
}

#[tokio::test]
async fn plaintext_http2_with_prior_knowledge_is_served_and_kept_between_requests() {
    let sink = Sink::start().await;
    let gw = Gateway::start(
        &config(&sink.url)
            .server("header_read_timeout", quoted("300ms"))
            .server("idle_timeout", quoted("5s"))
            .build(),
    )
    .await;
    let tcp = TcpStream::connect(addr(&gw)).await.unwrap();
    // The client pings while idle, as many do: bytes between requests that
    // are not the start of a request head.
    let (mut tx, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(Duration::from_millis(100))
            .keep_alive_while_idle(true)
            .handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let uri = format!("{}/v1/topics/orders/events", gw.url);
    for n in 0..3 {
        let resp = tx
            .send_request(post_event(&uri, &format!("{{\"h2\":{n}}}")))
            .await
            .unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        assert_eq!(resp.status(), 202);
        // Quiet for longer than the header timeout: the idle timeout is
        // what applies between requests.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let got = sink.wait_for(3, WAIT).await;
    let mut bodies: Vec<_> = got
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, [r#"{"h2":0}"#, r#"{"h2":1}"#, r#"{"h2":2}"#]);
    gw.stop().await;
}

// ------------------------------------------------------------------- gzip

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[tokio::test]
async fn a_gzip_bomb_is_413_without_the_binary_growing_and_gzip_over_tls_is_delivered() {
    let sink = Sink::start().await;
    let pki = self_signed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    let text = config(&sink.url)
        .for_process(&dir.path().join("data"))
        .server("tls", &pki.tls)
        .build();
    std::fs::write(&path, text).unwrap();
    let gw = Process::start(&path);
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let pid = gw.child.id();

    let gzip = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let post_gzip = |body: Vec<u8>| {
        hyper::Request::post("/v1/topics/orders/events")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };

    // A compressed event arrives at the destination exactly as it was
    // before compression, without the content-encoding.
    let payload = br#"{"compressed":true,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    let tls = tls_connect(&addr, &pki.cert, &[b"http/1.1"]).await;
    let (status, body) = send_h1(tls, post_gzip(gzip(payload))).await;
    assert_eq!(status, 202, "{body}");
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(&got[0].body[..], &payload[..]);
    assert_eq!(got[0].header("content-encoding"), None);

    // 200 MB of zeros is about 200 KB of gzip: under the 1 MiB limit on the
    // wire, far over it decompressed.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..200 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 512 * 1024, "bomb is {} bytes", bomb.len());

    let before = rss_kib(pid, "VmRSS:");
    for _ in 0..3 {
        let started = Instant::now();
        let tls = tls_connect(&addr, &pki.cert, &[b"http/1.1"]).await;
        let (status, body) = send_h1(tls, post_gzip(bomb.clone())).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"]["code"], "payload_too_large");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // The peak resident size during all that: the bomb never expanded.
    let peak = rss_kib(pid, "VmHWM:");
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "RSS went from {before} KiB to a peak of {peak} KiB"
    );
    eprintln!("gzip bomb: RSS {before} KiB before, peak {peak} KiB after three bombs");

    let tls = tls_connect(&addr, &pki.cert, &[b"http/1.1"]).await;
    let (status, _) = send_h1(tls, post_event("/v1/topics/orders/events", "{}")).await;
    assert_eq!(status, 202, "still serving");
    gw.sigterm();
}
