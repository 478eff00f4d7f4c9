//! Ingest guards on a real gateway: `Content-Encoding: gzip` bodies (with
//! the body limit applied after decompression) and per-topic rate limits.

use std::io::Write;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic, list, quoted};
use switchyard_tests::{Gateway, Sink, client};

/// GitHub's published example: this secret signs "Hello, World!" as below.
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_BODY: &str = "Hello, World!";
const GITHUB_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn config(sink: &str) -> String {
    Config::new()
        .destination(
            Destination::http("hook", sink)
                .set("forward_headers", list(["content-encoding", "x-tag"]))
                .retry("{ initial = \"100ms\", max_attempts = 2 }"),
        )
        .topic(Topic::new("orders").routes(["hook"]))
        .topic(
            Topic::new("github")
                .routes(["hook"])
                .verify("github", [GITHUB_SECRET]),
        )
        .topic(Topic::new("limited").set("rate_limit", quoted("5/s")))
        .topic(Topic::new("batched").set("rate_limit", quoted("5/s")))
        .topic(Topic::new("free"))
        .topic(Topic::new("typed").schema("typed-value"))
        .build()
}

async fn post(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = client().post(gw.url(path)).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn error_of(r: reqwest::Response) -> Value {
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"].clone()
}

async fn stored(gw: &Gateway, topic: &str) -> Vec<Value> {
    let v: Value = client()
        .get(gw.url(&format!("/v1/events?topic={topic}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn gzip_event_is_stored_and_delivered_decompressed_without_its_encoding() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    let payload =
        br#"{"order":42,"items":["a","b","c"],"note":"compressed on the wire"}"#.repeat(20);

    let r = post(
        &gw,
        "/v1/topics/orders/events",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("x-tag", "t1"),
        ],
        gz(&payload),
    )
    .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());

    // `x-gzip` is the same coding; `identity` is none.
    for (ce, body) in [
        ("x-gzip", gz(b"{\"n\":2}")),
        ("identity", b"{\"n\":3}".to_vec()),
    ] {
        let r = post(
            &gw,
            "/v1/topics/orders/events",
            &[
                ("content-type", "application/json"),
                ("content-encoding", ce),
            ],
            body,
        )
        .await;
        assert_eq!(r.status(), 202, "{ce}: {}", r.text().await.unwrap());
    }

    let got = sink.wait_for(3, Duration::from_secs(10)).await;
    let first = got
        .iter()
        .find(|r| r.header("x-tag") == Some("t1"))
        .unwrap();
    assert_eq!(
        &first.body[..],
        &payload[..],
        "delivered byte-identical, decompressed"
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    // The destination forwards content-encoding if the event had one: it must not.
    assert!(
        got.iter().all(|r| r.header("content-encoding").is_none()),
        "{:?}",
        got.iter().map(|r| r.headers.clone()).collect::<Vec<_>>()
    );
    let bodies: Vec<&[u8]> = got.iter().map(|r| &r.body[..]).collect();
    assert!(bodies.contains(&&b"{\"n\":2}"[..]) && bodies.contains(&&b"{\"n\":3}"[..]));
    gw.stop().await;
}

#[tokio::test]
async fn gzip_ndjson_batch_is_split_into_its_events() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    let ndjson = b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n";
    let r = post(
        &gw,
        "/v1/topics/orders/events/batch",
        &[
            ("content-type", "application/x-ndjson"),
            ("content-encoding", "gzip"),
        ],
        gz(ndjson),
    )
    .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ids"].as_array().unwrap().len(), 3, "{v}");
    let got = sink.wait_for(3, Duration::from_secs(10)).await;
    let mut bodies: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.body.to_vec()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]);
    gw.stop().await;
}

#[tokio::test]
async fn zip_bomb_is_413_fast_stores_nothing_and_the_gateway_keeps_serving() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    // 200 MB of zeros, one gzip member of about 200 KB: under the 1 MiB
    // limit on the wire, 200 times over it decompressed.
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..200 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());

    for path in ["/v1/topics/orders/events", "/v1/topics/orders/events/batch"] {
        let started = Instant::now();
        let r = post(
            &gw,
            path,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            bomb.clone(),
        )
        .await;
        let took = started.elapsed();
        assert_eq!(r.status(), 413, "{path}");
        let err = error_of(r).await;
        assert_eq!(err["code"], "payload_too_large");
        assert!(
            err["message"].as_str().unwrap().contains("1048576"),
            "{err}"
        );
        assert!(took < Duration::from_secs(3), "{path}: 413 took {took:?}");
        eprintln!("zip bomb on {path}: 413 in {took:?}");
    }
    assert!(stored(&gw, "orders").await.is_empty());

    // Still serving, and a gzip body right at the limit passes.
    let at_limit = vec![b'7'; 1 << 20];
    let r = post(
        &gw,
        "/v1/topics/orders/events",
        &[("content-type", "text/plain"), ("content-encoding", "gzip")],
        gz(&at_limit),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert_eq!(stored(&gw, "orders").await.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn broken_gzip_is_400_and_other_encodings_are_415() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    let good = gz(&br#"{"some":"payload","that":"is long enough to cut in half"}"#.repeat(10));
    let truncated = good[..good.len() / 2].to_vec();
    for (what, body) in [
        ("truncated", truncated),
        ("garbage", b"this is not gzip".to_vec()),
    ] {
        let r = post(
            &gw,
            "/v1/topics/orders/events",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            body,
        )
        .await;
        assert_eq!(r.status(), 400, "{what}");
        let err = error_of(r).await;
        assert_eq!(err["code"], "malformed", "{what}: {err}");
        assert!(err["message"].as_str().unwrap().contains("gzip"), "{err}");
    }

    for ce in ["br", "deflate", "zstd", "gzip, br", "gzip, gzip"] {
        for path in ["/v1/topics/orders/events", "/v1/topics/orders/events/batch"] {
            let r = post(
                &gw,
                path,
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", ce),
                ],
                good.clone(),
            )
            .await;
            assert_eq!(r.status(), 415, "{ce} on {path}");
            let err = error_of(r).await;
            assert_eq!(err["code"], "unsupported_media_type");
            assert!(err["message"].as_str().unwrap().contains("gzip"), "{err}");
        }
    }
    assert!(stored(&gw, "orders").await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn signatures_are_checked_on_the_decompressed_body() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    let r = post(
        &gw,
        "/v1/topics/github/events",
        &[
            ("content-type", "text/plain"),
            ("content-encoding", "gzip"),
            ("x-hub-signature-256", GITHUB_SIG),
        ],
        gz(GITHUB_BODY.as_bytes()),
    )
    .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());

    // The same signature over another (compressed) payload is refused.
    let r = post(
        &gw,
        "/v1/topics/github/events",
        &[
            ("content-type", "text/plain"),
            ("content-encoding", "gzip"),
            ("x-hub-signature-256", GITHUB_SIG),
        ],
        gz(b"Hello, World?"),
    )
    .await;
    assert_eq!(r.status(), 401);

    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(&got[0].body[..], GITHUB_BODY.as_bytes());
    assert_eq!(stored(&gw, "github").await.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn schemas_validate_the_decompressed_payload() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    let schema = r#"{"type":"record","name":"T","fields":[{"name":"id","type":"long"}]}"#;
    let r = post(
        &gw,
        "/registry/subjects/typed-value/versions",
        &[("content-type", "application/vnd.schemaregistry.v1+json")],
        serde_json::json!({ "schema": schema })
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let r = post(&gw, "/v1/topics/typed/events", &headers, gz(br#"{"id":7}"#)).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let r = post(
        &gw,
        "/v1/topics/typed/events",
        &headers,
        gz(br#"{"id":"x"}"#),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_of(r).await["path"], "/id");
    let r = post(
        &gw,
        "/v1/topics/typed/events/batch",
        &[
            ("content-type", "application/x-ndjson"),
            ("content-encoding", "gzip"),
        ],
        gz(b"{\"id\":1}\n{\"id\":false}\n"),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_of(r).await["index"], 1);
    assert_eq!(stored(&gw, "typed").await.len(), 1);
    gw.stop().await;
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no whole-seconds Retry-After: {:?}", r.headers()))
}

async fn metric(gw: &Gateway, line_prefix: &str) -> u64 {
    gw.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn one(gw: &Gateway, topic: &str) -> reqwest::Response {
    post(
        gw,
        &format!("/v1/topics/{topic}/events"),
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    )
    .await
}

#[tokio::test]
async fn topic_over_its_rate_gets_429_with_retry_after_and_recovers() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;

    // A burst of 20 at once: the bucket holds one second's worth (5).
    let started = Instant::now();
    let burst = futures::future::join_all((0..20).map(|_| one(&gw, "limited"))).await;
    let took = started.elapsed();
    let (mut accepted, mut limited, mut wait) = (0, 0, 0);
    for r in burst {
        match r.status().as_u16() {
            202 => accepted += 1,
            429 => {
                limited += 1;
                let secs = retry_after(&r);
                assert!(secs >= 1, "Retry-After {secs}");
                wait = wait.max(secs);
                let err = error_of(r).await;
                assert_eq!(err["code"], "rate_limited", "{err}");
            }
            s => panic!("unexpected {s}"),
        }
    }
    // At most the burst plus what refilled while the burst was in flight.
    let most = 5 + (took.as_secs_f64() * 5.0).ceil() as usize;
    assert!(
        accepted >= 5 && accepted <= most && limited > 0,
        "{accepted} accepted, {limited} limited in {took:?}"
    );
    // Another topic is unaffected while this one is limited.
    for _ in 0..10 {
        assert_eq!(one(&gw, "free").await.status(), 202);
    }
    // Nothing refused was kept.
    assert_eq!(stored(&gw, "limited").await.len(), accepted);
    // Refusals are counted with the other ingest refusals.
    assert_eq!(
        metric(
            &gw,
            "switchyard_ingest_events_total{topic=\"limited\",outcome=\"rate_limited\"}"
        )
        .await,
        limited as u64
    );

    // After waiting what Retry-After said, the topic takes events again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(one(&gw, "limited").await.status(), 202);
    gw.stop().await;
}

#[tokio::test]
async fn a_batch_counts_as_its_number_of_events() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    let batch = |n: usize| {
        let body = "{\"n\":1}\n".repeat(n).into_bytes();
        post(
            &gw,
            "/v1/topics/batched/events/batch",
            &[("content-type", "application/x-ndjson")],
            body,
        )
    };
    // The bucket holds one second's worth (5 events): 4, then 4 more is over.
    assert_eq!(batch(4).await.status(), 202);
    let r = batch(4).await;
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) >= 1);
    // More events than the bucket ever holds: split it, rather than wait forever.
    let r = batch(6).await;
    assert_eq!(r.status(), 413);
    assert_eq!(error_of(r).await["code"], "payload_too_large");
    assert_eq!(stored(&gw, "batched").await.len(), 4);
    gw.stop().await;
}
