//! Outbound safety end to end: the address guard refuses destinations that
//! point at cloud metadata or (with `deny_private_destinations`) at private
//! addresses, at config load for IP literals and at connect time for names;
//! refused deliveries are dead-lettered at once with the reason in the
//! attempt history. Per-destination TLS: a sink that requires client
//! certificates from a private CA gets deliveries only from a destination
//! with the CA bundle and the client certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic, list, path, quoted};
use switchyard_tests::{Gateway, Sink, bin, client, eventually};

const WAIT: Duration = Duration::from_secs(15);
const FAST_RETRY: &str = "{ initial = \"100ms\", multiplier = 2.0, max_attempts = 3 }";

/// The http destination `out`, which `config` routes to.
fn out(url: &str) -> Destination {
    Destination::http("out", url)
        .set("timeout", quoted("2s"))
        .retry(FAST_RETRY)
}

/// One topic `orders` routed to `out`; a test adds the `[server]` keys it
/// is about.
fn config(out: Destination) -> Config {
    Config::new()
        .destination(out)
        .topic(Topic::new("orders").routes(["out"]))
}

/// `config` with `server.deny_private_destinations` on.
fn denying(out: Destination) -> Config {
    config(out).server("deny_private_destinations", "true")
}

fn load(text: &str, dir: &Path) -> Result<switchyard::config::Config, String> {
    let text = switchyard_tests::fill(text, dir.join("data"));
    let path = dir.join("switchyard.toml");
    std::fs::write(&path, text).unwrap();
    switchyard::config::Config::load(&path).map_err(|e| e.to_string())
}

async fn publish(gw: &Gateway) -> String {
    let resp = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("content-type", "application/json")
        .body(r#"{"order": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// The delivery to `out` once it is in `state`; its attempts.
async fn wait_state(gw: &Gateway, id: &str, state: &str) -> Vec<Value> {
    eventually(WAIT, &format!("the delivery to reach {state}"), || async {
        let e: Value = client()
            .get(gw.url(&format!("/v1/events/{id}")))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let d = e["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["destination"] == "out")?
            .clone();
        (d["state"] == state).then(|| d["attempts"].as_array().cloned().unwrap_or_default())
    })
    .await
}

async fn dlq(gw: &Gateway) -> Vec<Value> {
    let v: Value = client()
        .get(gw.url("/v1/destinations/out/dlq"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["entries"].as_array().unwrap().clone()
}

#[test]
fn a_metadata_ip_destination_is_refused_at_config_load() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
    ] {
        let err = load(&config(out(url)).build(), dir.path()).expect_err(url);
        assert!(
            err.contains("destinations[0].url")
                && err.contains("destination \"out\"")
                && err.contains("is a cloud metadata address")
                && err.contains("allow_destination_addresses"),
            "{url}: {err}"
        );
    }
    let err =
        load(&config(out("http://[fe80::1]:8080/")).build(), dir.path()).expect_err("link-local");
    assert!(err.contains("fe80::1 is a link-local address"), "{err}");

    // `switchyard check-config` says the same and fails.
    let path = dir.path().join("meta.toml");
    std::fs::write(
        &path,
        switchyard_tests::fill(
            &config(out("http://[::ffff:169.254.169.254]/")).build(),
            "data",
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config accepted it: {stderr}");
    assert!(
        stderr.contains("destination \"out\"")
            && stderr.contains("refused: ::ffff:169.254.169.254 is a cloud metadata address"),
        "{stderr}"
    );
}

#[test]
fn private_literals_are_refused_at_load_only_with_deny_private() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "http://127.0.0.1:9/",
        "http://10.1.2.3/",
        "http://[::1]:9/",
        "http://[::ffff:192.168.0.10]/",
    ] {
        assert!(load(&config(out(url)).build(), dir.path()).is_ok(), "{url}");
        let err = load(&denying(out(url)).build(), dir.path()).expect_err(url);
        assert!(
            err.contains("server.deny_private_destinations is on"),
            "{url}: {err}"
        );
    }
    // An explicit allow, server-wide or per destination, wins.
    let allow = |url: &str| {
        denying(out(url))
            .server(
                "allow_destination_addresses",
                list(["169.254.169.254/32", "10.0.0.0/8"]),
            )
            .build()
    };
    assert!(load(&allow("http://169.254.169.254/"), dir.path()).is_ok());
    assert!(load(&allow("http://10.1.2.3/"), dir.path()).is_ok());
    let per_dest = out("http://127.0.0.1:9/").set("allow_addresses", list(["127.0.0.1"]));
    assert!(load(&denying(per_dest).build(), dir.path()).is_ok());
    let bad_cidr = out("http://10.0.0.1/").set("allow_addresses", list(["10.0.0.0/40"]));
    let err = load(&config(bad_cidr).build(), dir.path()).expect_err("bad CIDR");
    assert!(err.contains("10.0.0.0/40"), "{err}");
}

#[tokio::test]
async fn with_deny_private_a_name_resolving_to_loopback_is_dead_lettered_unsent() {
    let sink = Sink::start().await;
    let url = format!("http://localhost:{}/hook", sink.addr.port());
    let gw = Gateway::start(&denying(out(&url)).build()).await;

    let id = publish(&gw).await;
    let attempts = wait_state(&gw, &id, "dead_lettered").await;
    assert_eq!(attempts.len(), 1, "a refusal is not retried: {attempts:?}");
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("refused: localhost resolves to ")
            && error
                .contains("which is a loopback address and server.deny_private_destinations is on"),
        "{error}"
    );
    let entries = dlq(&gw).await;
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("refused: localhost"),
        "{entries:?}"
    );
    assert!(sink.received().is_empty(), "the sink was reached");

    let metrics = gw.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchyard_delivery_refused_total{destination=\"out\"} 1")),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_numeric_host_the_resolver_reads_as_loopback_is_caught_at_connect() {
    // 2130706433 is 127.0.0.1 to getaddrinfo (inet_aton's single-number
    // form) but not an IP literal to a URL parser: only the connect-time
    // check can see where it goes.
    let sink = Sink::start().await;
    let url = format!("http://2130706433:{}/hook", sink.addr.port());
    let gw = Gateway::start(&denying(out(&url)).build()).await;
    let id = publish(&gw).await;
    let attempts = wait_state(&gw, &id, "dead_lettered").await;
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("refused: 2130706433 resolves to 127.0.0.1"),
        "{error}"
    );
    assert!(sink.received().is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn without_deny_private_the_same_destination_delivers() {
    let sink = Sink::start().await;
    let url = format!("http://localhost:{}/hook", sink.addr.port());
    let gw = Gateway::start(&config(out(&url)).build()).await;
    let id = publish(&gw).await;
    let attempts = wait_state(&gw, &id, "delivered").await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], 200);
    assert_eq!(sink.received().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn the_allow_list_lets_an_otherwise_refused_address_through() {
    // Server-wide: the IP literal passes config load and the connect check.
    let sink = Sink::start().await;
    let url = format!("http://127.0.0.1:{}/hook", sink.addr.port());
    let cfg = denying(out(&url)).server("allow_destination_addresses", list(["127.0.0.1/32"]));
    let gw = Gateway::start(&cfg.build()).await;
    let id = publish(&gw).await;
    wait_state(&gw, &id, "delivered").await;
    assert_eq!(sink.received().len(), 1);
    gw.stop().await;

    // Per destination, for a name: every loopback address it may resolve to.
    let sink = Sink::start().await;
    let url = format!("http://localhost:{}/hook", sink.addr.port());
    let dest = out(&url).set("allow_addresses", list(["127.0.0.0/8", "::1"]));
    let gw = Gateway::start(&denying(dest).build()).await;
    let id = publish(&gw).await;
    wait_state(&gw, &id, "delivered").await;
    assert_eq!(sink.received().len(), 1);
    gw.stop().await;
}

// ---------------------------------------------------------------- mTLS

/// A private CA, the sink's server certificate for 127.0.0.1 and a client
/// certificate, all written as PEM files in `dir`.
struct Pki {
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    ca_der: CertificateDer<'static>,
}

fn make_pki(dir: &Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "switchyard test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();

    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "switchyard");
    let client = client_params.signed_by(&client_key, &issuer).unwrap();

    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
    Pki {
        server_chain: vec![server.der().clone()],
        server_key: PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).unwrap(),
        ca_der: ca.der().clone(),
    }
}

/// An HTTPS sink that requires a client certificate signed by the CA.
struct TlsSink {
    addr: SocketAddr,
    /// Requests received over an authenticated connection.
    requests: Arc<Mutex<Vec<Bytes>>>,
    /// Handshakes that failed (no client certificate, untrusted server…).
    failed_handshakes: Arc<AtomicUsize>,
}

async fn tls_sink(pki: &Pki) -> TlsSink {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let failed_handshakes = Arc::new(AtomicUsize::new(0));
    let (reqs, failed) = (requests.clone(), failed_handshakes.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, reqs, failed) = (acceptor.clone(), reqs.clone(), failed.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(_) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                assert!(
                    tls.get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty()),
                    "the verifier let a connection without a client certificate through"
                );
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let reqs = reqs.clone();
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            reqs.lock().unwrap().push(body);
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsSink {
        addr,
        requests,
        failed_handshakes,
    }
}

/// `config` for `sink`, with `tls` (an inline table) on the destination.
fn tls_config(sink: &TlsSink, tls: &str) -> String {
    let url = format!("https://127.0.0.1:{}/hook", sink.addr.port());
    config(out(&url).set("tls", tls)).build()
}

#[tokio::test]
async fn mtls_delivers_with_the_ca_bundle_and_a_client_certificate() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let sink = tls_sink(&pki).await;
    let p = |file: &str| path(&pki_dir.path().join(file));
    let tls = format!(
        "{{ ca_file = {}, ca_only = true, client_cert = {}, client_key = {} }}",
        p("ca.pem"),
        p("client.pem"),
        p("client.key")
    );
    let gw = Gateway::start(&tls_config(&sink, &tls)).await;
    let id = publish(&gw).await;
    let attempts = wait_state(&gw, &id, "delivered").await;
    assert_eq!(attempts[0]["status"], 200);
    let got = sink.requests.lock().unwrap().clone();
    assert_eq!(got, vec![Bytes::from_static(br#"{"order": 1}"#)]);
    gw.stop().await;
}

#[tokio::test]
async fn without_a_client_certificate_the_attempts_fail_with_a_tls_error() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let sink = tls_sink(&pki).await;
    let tls = format!("{{ ca_file = {} }}", path(&pki_dir.path().join("ca.pem")));
    let gw = Gateway::start(&tls_config(&sink, &tls)).await;
    let id = publish(&gw).await;
    // Retried like any transport failure, then dead-lettered.
    let attempts = wait_state(&gw, &id, "dead_lettered").await;
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for a in &attempts {
        let e = a["error"].as_str().unwrap_or_default().to_ascii_lowercase();
        assert!(
            e.contains("fatal alert: certificaterequired")
                && e.contains("set tls.client_cert and tls.client_key"),
            "not the TLS error: {a}"
        );
        assert!(a["status"].is_null(), "{a}");
    }
    assert!(sink.requests.lock().unwrap().is_empty());
    assert!(sink.failed_handshakes.load(Ordering::SeqCst) >= 1);
    gw.stop().await;
}

#[tokio::test]
async fn without_the_ca_bundle_the_server_certificate_is_not_trusted() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let sink = tls_sink(&pki).await;
    let p = |file: &str| path(&pki_dir.path().join(file));
    let tls = format!(
        "{{ client_cert = {}, client_key = {} }}",
        p("client.pem"),
        p("client.key")
    );
    let gw = Gateway::start(&tls_config(&sink, &tls)).await;
    let id = publish(&gw).await;
    let attempts = wait_state(&gw, &id, "dead_lettered").await;
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let e = attempts[0]["error"].as_str().unwrap();
    assert!(
        e.contains("invalid peer certificate: UnknownIssuer") && e.contains("tls.ca_file"),
        "{e}"
    );
    assert!(sink.requests.lock().unwrap().is_empty());
    gw.stop().await;
}

#[test]
fn tls_file_problems_are_config_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = "https://127.0.0.1:9/hook";
    let err = load(
        &config(out(url).set("tls", "{ ca_file = \"missing-ca.pem\" }")).build(),
        dir.path(),
    )
    .expect_err("missing file");
    let missing = dir.path().join("missing-ca.pem");
    assert!(
        err.contains("destinations[0].tls")
            && err.contains(&format!("ca_file {}", missing.display())),
        "{err}"
    );
    std::fs::write(
        dir.path().join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nnope\n",
    )
    .unwrap();
    let err = load(
        &config(out(url).set(
            "tls",
            "{ client_cert = \"cert.pem\", client_key = \"cert.pem\" }",
        ))
        .build(),
        dir.path(),
    )
    .expect_err("bad PEM");
    assert!(
        err.contains("client_cert") && err.contains("cert.pem"),
        "{err}"
    );
    let err = load(
        &config(out("http://127.0.0.1:9/").set("tls", "{ ca_file = \"cert.pem\" }")).build(),
        dir.path(),
    )
    .expect_err("tls on http://");
    assert!(err.contains("is not https://"), "{err}");
    let log = "[[destinations]]\nname = \"l\"\nkind = \"log\"\ntls = { ca_file = \"cert.pem\" }\n";
    let err = load(log, dir.path()).expect_err("tls on a log destination");
    assert!(
        err.contains("destinations[0].tls") && err.contains("http destinations only"),
        "{err}"
    );
}
