//! API access through the real gateway: admin, pull, registry writes and
//! token topics need the right token (Bearer, or the password of HTTP Basic
//! auth), refuse without one (401) or with the wrong scope (403), and a
//! token over its rate limit gets 429 with `Retry-After`. Confluent's Python
//! client registers schemas with `basic.auth.user.info`; the CLI sends
//! `--token`; with no tokens, guarded endpoints refuse non-loopback peers.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic, path, quoted};
use switchyard_tests::{Gateway, Process, bin, client, python, workspace};

const ADMIN: &str = "ops-token-7f3a9c1e5b2d4f60";
const PUBLISHER: &str = "ci-token-19d8e7f6a5b4c3d2";
const CONSUMER: &str = "worker-token-0a1b2c3d4e5f6071";
const LIMITED: &str = "limited-token-8899aabbccddeeff";

/// GitHub's documented example: this signature of "Hello, World!".
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn config() -> String {
    Config::new()
        .destination(Destination::pull("jobs"))
        .destination(Destination::pull("other-jobs"))
        .destination(Destination::log("audit"))
        .topic(
            Topic::new("orders")
                .routes(["jobs"])
                .set("auth", quoted("token")),
        )
        .topic(
            Topic::new("signed")
                .routes(["audit"])
                .set("auth", quoted("token"))
                .verify("github", [GITHUB_SECRET]),
        )
        .topic(Topic::new("open").routes(["audit"]))
        .token("ops", ADMIN, ["admin"])
        .token("ci", PUBLISHER, ["publish:orders", "publish:signed"])
        .token("worker", CONSUMER, ["consume:jobs"])
        .token_raw(&format!(
            "{{ name = \"limited\", secret = {}, scopes = [\"admin\"], rate_limit = \"2/s\" }}",
            quoted(LIMITED)
        ))
        .build()
}

fn basic(token: &str) -> (String, Option<String>) {
    ("any-user".to_owned(), Some(token.to_owned()))
}

#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str),
}

async fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    cred: Cred<'_>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(method, gw.url(path));
    req = match cred {
        Cred::None => req,
        Cred::Bearer(t) => req.bearer_auth(t),
        Cred::Basic(t) => {
            let (user, pass) = basic(t);
            req.basic_auth(user, pass)
        }
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    for secret in [ADMIN, PUBLISHER, CONSUMER, LIMITED] {
        assert!(!text.contains(secret), "a token was echoed: {text}");
    }
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

fn challenges(h: &reqwest::header::HeaderMap) -> Vec<String> {
    h.get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_an_admin_token() {
    let gw = Gateway::start(&config()).await;

    let (s, h, body) = call(&gw, "GET", "/v1/destinations", Cred::None, None).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(challenges(&h), ["Bearer realm=\"switchyard\""]);

    let (s, h, body) = call(
        &gw,
        "GET",
        "/v1/destinations",
        Cred::Bearer("not-a-token-0000000000"),
        None,
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(challenges(&h)[0].contains("invalid_token"), "{h:?}");

    let (s, h, body) = call(
        &gw,
        "GET",
        "/v1/destinations",
        Cred::Bearer(PUBLISHER),
        None,
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["scope"], "admin");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("\"ci\"") && msg.contains("admin"), "{msg}");
    assert!(challenges(&h)[0].contains("insufficient_scope"), "{h:?}");

    let (s, _, body) = call(&gw, "GET", "/v1/destinations", Cred::Bearer(ADMIN), None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["destinations"].as_array().unwrap().len(), 3);
    let (s, _, _) = call(&gw, "GET", "/v1/destinations", Cred::Basic(ADMIN), None).await;
    assert_eq!(s, 200, "the token as a Basic password works too");
    // As `curl -u TOKEN:` sends it: the token as the user name.
    let s = client()
        .get(gw.url("/v1/destinations"))
        .basic_auth(ADMIN, None::<&str>)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        s, 200,
        "the token as a Basic user name with no password works"
    );

    // Writes as well as reads, and the DLQ endpoints.
    let pause = "/v1/destinations/audit/pause";
    assert_eq!(call(&gw, "POST", pause, Cred::None, None).await.0, 401);
    assert_eq!(
        call(&gw, "POST", pause, Cred::Bearer(CONSUMER), None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(&gw, "POST", pause, Cred::Bearer(ADMIN), None).await.0,
        200
    );
    let dlq = "/v1/destinations/audit/dlq";
    assert_eq!(call(&gw, "GET", dlq, Cred::None, None).await.0, 401);
    assert_eq!(
        call(&gw, "DELETE", dlq, Cred::Bearer(PUBLISHER), None)
            .await
            .0,
        403
    );
    assert_eq!(call(&gw, "GET", dlq, Cred::Basic(ADMIN), None).await.0, 200);
    for path in [
        "/v1/events",
        "/v1/topics",
        "/v1/plugins",
        "/v1/topics/open/dlq",
    ] {
        assert_eq!(
            call(&gw, "GET", path, Cred::None, None).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            call(&gw, "GET", path, Cred::Bearer(ADMIN), None).await.0,
            200,
            "{path}"
        );
    }

    // Health, readiness and metrics stay open.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            call(&gw, "GET", path, Cred::None, None).await.0,
            200,
            "{path}"
        );
    }
    let m = gw.metrics().await;
    assert!(
        m.contains("switchyard_auth_refusals_total{token=\"ci\",reason=\"forbidden\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("switchyard_auth_refusals_total{token=\"\",reason=\"unknown_token\"} 1"),
        "{m}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_endpoints_need_a_consume_scope_for_that_queue() {
    let gw = Gateway::start(&config()).await;
    let receive = "/v1/queues/jobs/receive";

    assert_eq!(call(&gw, "POST", receive, Cred::None, None).await.0, 401);
    let (s, _, body) = call(&gw, "POST", receive, Cred::Bearer(PUBLISHER), None).await;
    assert_eq!(s, 403);
    assert_eq!(body["error"]["scope"], "consume:jobs");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("consume:jobs"),
        "{body}"
    );
    // The worker's scope names one queue, not the other.
    let other = "/v1/queues/other-jobs/receive";
    assert_eq!(
        call(&gw, "POST", other, Cred::Bearer(CONSUMER), None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(&gw, "POST", other, Cred::Bearer(ADMIN), None).await.0,
        200
    );

    // A published event reaches the consumer holding the right token.
    let (s, _, _) = call(
        &gw,
        "POST",
        "/v1/topics/orders/events",
        Cred::Bearer(PUBLISHER),
        Some(json!({"order": 1})),
    )
    .await;
    assert_eq!(s, 202);
    let mut got = Value::Null;
    for _ in 0..100 {
        let (s, _, body) = call(
            &gw,
            "POST",
            receive,
            Cred::Basic(CONSUMER),
            Some(json!({"max_messages": 10, "wait_seconds": 1})),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        if !body["messages"].as_array().unwrap().is_empty() {
            got = body["messages"][0].clone();
            break;
        }
    }
    assert_eq!(got["topic"], "orders", "nothing received");
    // The publisher's credentials were not stored with the event.
    assert!(got["headers"].get("authorization").is_none(), "{got}");
    let receipt = got["receipt"].as_str().unwrap().to_owned();
    let ack = json!({"receipts": [receipt]});
    let ack_path = "/v1/queues/jobs/ack";
    assert_eq!(
        call(&gw, "POST", ack_path, Cred::None, Some(ack.clone()))
            .await
            .0,
        401
    );
    let (s, _, body) = call(&gw, "POST", ack_path, Cred::Bearer(CONSUMER), Some(ack)).await;
    assert_eq!(s, 200, "{body}");
    for op in ["nack", "extend"] {
        let path = format!("/v1/queues/jobs/{op}");
        assert_eq!(
            call(&gw, "POST", &path, Cred::None, None).await.0,
            401,
            "{op}"
        );
    }
    gw.stop().await;
}

async fn publish(gw: &Gateway, path: &str, cred: Cred<'_>, sig: Option<&str>, body: &str) -> u16 {
    let mut req = client()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    req = match cred {
        Cred::None => req,
        Cred::Bearer(t) => req.bearer_auth(t),
        Cred::Basic(t) => req.basic_auth("sender", Some(t)),
    };
    if let Some(sig) = sig {
        req = req.header("x-hub-signature-256", sig);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_topics_need_a_publish_token_on_single_and_batch_ingest() {
    let gw = Gateway::start(&config()).await;
    let one = "/v1/topics/orders/events";
    let batch = "/v1/topics/orders/events/batch";

    assert_eq!(publish(&gw, one, Cred::None, None, "{}").await, 401);
    assert_eq!(
        publish(&gw, one, Cred::Bearer("wrong-token-000000000"), None, "{}").await,
        401
    );
    assert_eq!(
        publish(&gw, one, Cred::Bearer(CONSUMER), None, "{}").await,
        403
    );
    assert_eq!(
        publish(&gw, one, Cred::Bearer(PUBLISHER), None, "{}").await,
        202
    );
    assert_eq!(
        publish(&gw, one, Cred::Basic(PUBLISHER), None, "{}").await,
        202
    );
    assert_eq!(
        publish(&gw, one, Cred::Bearer(ADMIN), None, "{}").await,
        202
    );

    assert_eq!(publish(&gw, batch, Cred::None, None, "[1,2]").await, 401);
    assert_eq!(
        publish(&gw, batch, Cred::Bearer(CONSUMER), None, "[1,2]").await,
        403
    );
    assert_eq!(
        publish(&gw, batch, Cred::Bearer(PUBLISHER), None, "[1,2]").await,
        202
    );

    // An open topic needs nothing; an unknown one is still a 404.
    assert_eq!(
        publish(&gw, "/v1/topics/open/events", Cred::None, None, "{}").await,
        202
    );
    assert_eq!(
        publish(&gw, "/v1/topics/nope/events", Cred::None, None, "{}").await,
        404
    );

    // Token and signature together: each is checked.
    let signed = "/v1/topics/signed/events";
    let hello = "Hello, World!";
    let good = Some(GITHUB_SIG);
    assert_eq!(publish(&gw, signed, Cred::None, good, hello).await, 401);
    assert_eq!(
        publish(&gw, signed, Cred::Bearer(PUBLISHER), None, hello).await,
        401
    );
    assert_eq!(
        publish(&gw, signed, Cred::Bearer(PUBLISHER), good, "Hello, World?").await,
        401
    );
    assert_eq!(
        publish(&gw, signed, Cred::Bearer(PUBLISHER), good, hello).await,
        202
    );

    // Exactly the accepted events were stored: 3 single + 2 batched on orders.
    let (_, _, body) = call(
        &gw,
        "GET",
        "/v1/events?topic=orders",
        Cred::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 5, "{body}");
    let (_, _, body) = call(
        &gw,
        "GET",
        "/v1/events?topic=signed",
        Cred::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");

    // Ingest refusals by token are counted with the other ingest refusals.
    let m = gw.metrics().await;
    assert!(
        m.contains("switchyard_ingest_events_total{topic=\"orders\",outcome=\"unauthorized\"} 3"),
        "{m}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_writes_need_admin_and_refusals_keep_confluents_error_shape() {
    let gw = Gateway::start(&config()).await;
    let schema = json!({"schema": "{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"n\",\"type\":\"long\"}]}"});
    let register = "/registry/subjects/a-value/versions";

    let (s, h, body) = call(&gw, "POST", register, Cred::None, Some(schema.clone())).await;
    assert_eq!(s, 401);
    assert_eq!(body["error_code"], 40101, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("token"),
        "{body}"
    );
    assert_eq!(h["content-type"], "application/vnd.schemaregistry.v1+json");
    let c = challenges(&h);
    assert!(
        c.iter().any(|c| c.starts_with("Bearer")) && c.iter().any(|c| c.starts_with("Basic")),
        "{c:?}"
    );
    let (s, _, body) = call(
        &gw,
        "POST",
        register,
        Cred::Basic("wrong-token-0000000000"),
        Some(schema.clone()),
    )
    .await;
    assert_eq!((s, body["error_code"].clone()), (401, json!(40101)));
    let (s, _, body) = call(
        &gw,
        "POST",
        register,
        Cred::Basic(PUBLISHER),
        Some(schema.clone()),
    )
    .await;
    assert_eq!(
        (s, body["error_code"].clone()),
        (403, json!(40301)),
        "{body}"
    );
    let (s, _, body) = call(
        &gw,
        "POST",
        register,
        Cred::Basic(ADMIN),
        Some(schema.clone()),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body["id"].as_u64().unwrap() > 0);

    // Reads, lookups and compatibility checks stay open.
    assert_eq!(
        call(&gw, "GET", "/registry/subjects", Cred::None, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            &gw,
            "GET",
            "/registry/subjects/a-value/versions/latest",
            Cred::None,
            None
        )
        .await
        .0,
        200
    );
    let (s, _, body) = call(
        &gw,
        "POST",
        "/registry/subjects/a-value",
        Cred::None,
        Some(schema.clone()),
    )
    .await;
    assert_eq!(s, 200, "lookup: {body}");
    let (s, _, body) = call(
        &gw,
        "POST",
        "/registry/compatibility/subjects/a-value/versions/latest",
        Cred::None,
        Some(schema.clone()),
    )
    .await;
    assert_eq!(
        (s, body["is_compatible"].clone()),
        (200, json!(true)),
        "{body}"
    );

    // Config, mode and deletes are writes.
    let level = json!({"compatibility": "FULL"});
    assert_eq!(
        call(
            &gw,
            "PUT",
            "/registry/config",
            Cred::None,
            Some(level.clone())
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(
            &gw,
            "PUT",
            "/registry/config/a-value",
            Cred::Bearer(CONSUMER),
            Some(level.clone())
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &gw,
            "PUT",
            "/registry/config/a-value",
            Cred::Bearer(ADMIN),
            Some(level)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(&gw, "DELETE", "/registry/config", Cred::None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        call(
            &gw,
            "PUT",
            "/registry/mode",
            Cred::None,
            Some(json!({"mode": "READWRITE"}))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(
            &gw,
            "DELETE",
            "/registry/subjects/a-value",
            Cred::None,
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(
            &gw,
            "DELETE",
            "/registry/subjects/a-value/versions/1",
            Cred::None,
            None
        )
        .await
        .0,
        401
    );
    let (s, _, body) = call(
        &gw,
        "DELETE",
        "/registry/subjects/a-value",
        Cred::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!((s, body), (200, json!([1])));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_python_client_registers_with_basic_auth_user_info() {
    let gw = Gateway::start(&config()).await;
    let out = tokio::process::Command::new(python())
        .arg(workspace().join("tests/python/registry_auth_test.py"))
        .env("SWITCHYARD_REGISTRY_URL", gw.url("/registry"))
        .env("SWITCHYARD_ADMIN_TOKEN", ADMIN)
        .env("SWITCHYARD_OTHER_TOKEN", PUBLISHER)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "the Confluent client test failed:\n{stdout}\n{stderr}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after() {
    let gw = Gateway::start(&config()).await;
    // "2/s": a burst of two, then one every 500 ms. Keep asking until
    // refused; on a slow machine a request or two may be refilled between.
    let started = std::time::Instant::now();
    let mut served = 0;
    let (s, h, body) = loop {
        let (s, h, body) = call(&gw, "GET", "/v1/topics", Cred::Bearer(LIMITED), None).await;
        if s != 200 {
            break (s, h, body);
        }
        served += 1;
        assert!(served < 20, "never rate limited");
    };
    let refill = (started.elapsed().as_secs_f64() * 2.0).ceil() as u32;
    assert!(
        (2..=2 + refill).contains(&served),
        "{served} served before the limit"
    );
    assert_eq!(s, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"limited\""),
        "{body}"
    );
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry, 1, "500 ms, rounded up to whole seconds");
    // The limit is per token: the admin token is unaffected.
    assert_eq!(
        call(&gw, "GET", "/v1/topics", Cred::Bearer(ADMIN), None)
            .await
            .0,
        200
    );
    // Waiting as told is enough.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(
        call(&gw, "GET", "/v1/topics", Cred::Bearer(LIMITED), None)
            .await
            .0,
        200
    );
    let m = gw.metrics().await;
    assert!(
        m.contains("switchyard_auth_refusals_total{token=\"limited\",reason=\"rate_limited\"} 1"),
        "{m}"
    );
    gw.stop().await;
}

/// An address of this machine that is not loopback, if it has one.
fn non_loopback_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it only picks a source address.
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// With no tokens, a real connection from a non-loopback address of this
/// machine is refused on guarded endpoints, while loopback is served. (The
/// same rule with a faked peer, for machines with no such address, is in
/// the gateway's unit tests: `auth::tests::without_tokens_*`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_non_loopback_peers_are_refused_on_guarded_endpoints() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no non-loopback address");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = Config::new()
        .server("data_dir", path(&dir.path().join("data")))
        .destination(Destination::pull("jobs"))
        .topic(Topic::new("orders").routes(["jobs"]))
        .build();
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, text).unwrap();
    let config = switchyard::config::Config::load(&path).unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(switchyard::run(config, listener, async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let far = SocketAddr::new(ip, port);
    let near = SocketAddr::from(([127, 0, 0, 1], port));
    let status = |addr: SocketAddr, method: &'static str, path: &'static str| {
        let http = http.clone();
        async move {
            let mut resp = None;
            // The gateway may still be starting.
            for _ in 0..100 {
                let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                match http
                    .request(m, format!("http://{addr}{path}"))
                    .json(&json!({}))
                    .send()
                    .await
                {
                    Ok(r) => {
                        resp = Some(r);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            let r = resp.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    let (s, body) = status(far, "GET", "/v1/destinations").await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body.contains("loopback") && body.contains(&ip.to_string()),
        "{body}"
    );
    assert_eq!(status(far, "POST", "/v1/queues/jobs/receive").await.0, 403);
    let (s, body) = status(far, "POST", "/registry/subjects/x-value/versions").await;
    assert_eq!(s, 403);
    assert!(body.contains("40301"), "{body}");
    // Open endpoints answer everyone.
    assert_eq!(status(far, "POST", "/v1/topics/orders/events").await.0, 202);
    assert_eq!(status(far, "GET", "/registry/subjects").await.0, 200);
    assert_eq!(status(far, "GET", "/healthz").await.0, 200);
    // Loopback is served.
    assert_eq!(status(near, "GET", "/v1/destinations").await.0, 200);
    assert_eq!(status(near, "POST", "/v1/queues/jobs/receive").await.0, 200);

    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

fn logs_of(p: &Process) -> String {
    p.logs.lock().unwrap().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_warns_without_tokens_and_never_logs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open.toml");
    std::fs::write(
        &open,
        Config::new()
            .for_process(&dir.path().join("open-data"))
            .build(),
    )
    .unwrap();
    let p = Process::start(&open);
    let logs = logs_of(&p);
    assert!(
        logs.contains("No [auth] tokens are configured") && logs.contains("\"WARN\""),
        "{logs}"
    );
    p.sigterm();

    // Tokens from the environment, and debug logging of every refusal.
    let secured = dir.path().join("secured.toml");
    std::fs::write(
        &secured,
        Config::new()
            .for_process(&dir.path().join("secured-data"))
            .token("ops", "env:SWITCHYARD_AUTH_TEST_ADMIN", ["admin"])
            .build(),
    )
    .unwrap();
    let p = Process::start_with_env(
        &secured,
        &[("SWITCHYARD_AUTH_TEST_ADMIN", ADMIN), ("RUST_LOG", "debug")],
    );
    let url = p.url("/v1/destinations");
    let ok = client().get(&url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = client()
        .get(&url)
        .bearer_auth(PUBLISHER)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let basic = client()
        .get(&url)
        .basic_auth("u", Some(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    // Changes leave an audit line naming the token.
    let pause = client()
        .post(p.url("/v1/destinations/nowhere/pause"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(pause.status(), 404);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = logs_of(&p);
    assert!(logs.contains("API tokens loaded"), "{logs}");
    let audit = logs
        .lines()
        .find(|l| l.contains("Admin change authorised."))
        .expect("an audit line");
    assert!(
        audit.contains("\"token\":\"ops\"") && audit.contains("/v1/destinations/nowhere/pause"),
        "{audit}"
    );
    assert!(
        logs.contains("Request refused by API access control"),
        "{logs}"
    );
    for secret in [ADMIN, PUBLISHER] {
        assert!(!logs.contains(secret), "a token is in the logs");
    }
    p.sigterm();
}

/// Runs the CLI off the async workers (the gateway serves on them).
async fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("SWITCHYARD_TOKEN")
        .envs(env.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_cli_sends_its_token() {
    let gw = Gateway::start(&config()).await;
    let list = [
        "dlq",
        "list",
        "--destination",
        "audit",
        "--server",
        gw.url.as_str(),
    ];
    let (ok, out, err) = cli(&list, &[]).await;
    assert!(!ok, "{out}");
    assert!(err.contains("401") && err.contains("--token"), "{err}");

    let with_flag = [&list[..], &["--token", ADMIN]].concat();
    let (ok, out, err) = cli(&with_flag, &[]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("0 dead letters"), "{out}");

    let (ok, out, err) = cli(&list, &[("SWITCHYARD_TOKEN", ADMIN)]).await;
    assert!(ok, "{out}{err}");

    let purge = [
        "dlq",
        "purge",
        "--topic",
        "orders",
        "--yes",
        "--server",
        gw.url.as_str(),
        "--token",
        PUBLISHER,
    ];
    let (ok, out, err) = cli(&purge, &[]).await;
    assert!(!ok, "{out}");
    assert!(err.contains("403") && err.contains("admin"), "{err}");
    assert!(!err.contains(PUBLISHER), "the CLI echoed the token: {err}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_consumer_drains_a_queue_with_its_token() {
    let consumer = bin().with_file_name("pull-consumer");
    assert!(consumer.exists(), "build the workspace first");
    let gw = Gateway::start(&config()).await;
    for i in 0..3 {
        let body = format!("{{\"job\":{i}}}");
        let s = publish(
            &gw,
            "/v1/topics/orders/events",
            Cred::Bearer(PUBLISHER),
            None,
            &body,
        )
        .await;
        assert_eq!(s, 202);
    }
    let run = |token: Option<&'static str>| {
        let mut cmd = Command::new(&consumer);
        cmd.args(["--server", gw.url.as_str(), "--queue", "jobs", "--max", "3"])
            .env_remove("SWITCHYARD_TOKEN");
        if let Some(t) = token {
            cmd.env("SWITCHYARD_TOKEN", t);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let out = run(None).await.unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );
    let out = run(Some(CONSUMER)).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    gw.stop().await;
}
