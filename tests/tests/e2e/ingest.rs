//! Ingest end to end: batches, idempotent resends, and every kind of bad
//! input getting a clear JSON error with nothing stored.

use std::time::Duration;

use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::{Gateway, Sink, client, eventually};

const WAIT: Duration = Duration::from_secs(15);

/// Topic `orders` routed to `sink`, bodies up to 1 KiB; a test adds the
/// `[server]` keys it is about.
fn config(sink: &str) -> Config {
    Config::new()
        .server("max_body", quoted("1KiB"))
        .destination(
            Destination::http("billing", sink).retry("{ initial = \"100ms\", max_attempts = 2 }"),
        )
        .topic(Topic::new("orders").routes(["billing"]))
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "error bodies are JSON, got {ct:?}"
    );
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn batches_as_json_array_and_ndjson_are_stored_whole() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).build()).await;
    let r = client()
        .post(gw.url("/v1/topics/orders/events/batch"))
        .header("content-type", "application/json")
        .body(r#"[{"n":1}, {"n": 2.50}, "three"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ids"].as_array().unwrap().len(), 3);

    let r = client()
        .post(gw.url("/v1/topics/orders/events/batch"))
        .header("content-type", "application/x-ndjson")
        .body("{\"n\":4}\n{\"n\":5}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let got = sink.wait_for(5, WAIT).await;
    let mut bodies: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.body.to_vec()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        vec![
            "\"three\"",
            "{\"n\": 2.50}",
            "{\"n\":1}",
            "{\"n\":4}",
            "{\"n\":5}"
        ]
    );
    assert!(
        got.iter()
            .all(|r| r.header("content-type") == Some("application/json"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole_and_names_the_element() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).build()).await;
    let (status, v) = error_of(
        client()
            .post(gw.url("/v1/topics/orders/events/batch"))
            .header("content-type", "application/x-ndjson")
            .body("{\"n\":1}\n{\"n\":\n")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "malformed");
    assert_eq!(v["error"]["index"], 1);

    let (status, v) = error_of(
        client()
            .post(gw.url("/v1/topics/orders/events/batch"))
            .header("content-type", "text/plain")
            .body("[1]")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(v["error"]["code"], "unsupported_media_type");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sink.received().is_empty(),
        "nothing of a refused batch is delivered"
    );
    let list: Value = client()
        .get(gw.url("/v1/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["events"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_idempotent_resend_returns_the_original_and_is_delivered_once() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).build()).await;
    let send = |key: &'static str, header: &'static str| {
        client()
            .post(gw.url("/v1/topics/orders/events"))
            .header(header, key)
            .header("content-type", "application/json")
            .body("{}")
            .send()
    };
    let first = send("order-42", "idempotency-key").await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = send("order-42", "idempotency-key").await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["duplicate"], true);
    // webhook-id works as a key too (what Standard Webhooks senders set).
    let w1: Value = send("msg_1", "webhook-id")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let w2 = send("msg_1", "webhook-id").await.unwrap();
    assert_eq!(w2.status(), 200);
    assert_eq!(w2.json::<Value>().await.unwrap()["id"], w1["id"]);

    // Concurrent duplicates: exactly one is accepted.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let url = gw.url("/v1/topics/orders/events");
        tasks.push(tokio::spawn(async move {
            client()
                .post(url)
                .header("idempotency-key", "race")
                .body("{}")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );

    sink.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 3);
    gw.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).build()).await;
    let c = client();

    let (s, v) = error_of(
        c.post(gw.url("/v1/topics/nope/events"))
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_topic"))
    );

    let big = vec![b'x'; 2048];
    let (s, v) = error_of(
        c.post(gw.url("/v1/topics/orders/events"))
            .body(big.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    // Chunked, so no content-length to refuse early: the limit holds mid-stream.
    let stream = futures_stream(big);
    let (s, _) = error_of(
        c.post(gw.url("/v1/topics/orders/events"))
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 413);

    let long_key = "k".repeat(300);
    let (s, v) = error_of(
        c.post(gw.url("/v1/topics/orders/events"))
            .header("idempotency-key", long_key)
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("malformed")));

    let (s, _) = error_of(c.get(gw.url("/v1/events/not-an-id")).send().await.unwrap()).await;
    assert_eq!(s, 400);
    let (s, _) = error_of(
        c.get(gw.url(&format!("/v1/events/{}", ulid::Ulid::new())))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = error_of(
        c.get(gw.url("/v1/events?state=bogus"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = error_of(
        c.get(gw.url("/v1/events?since=yesterday"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = error_of(
        c.post(gw.url("/v1/destinations/billing/dlq/replay"))
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = error_of(
        c.get(gw.url("/v1/destinations/nope/dlq"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = error_of(c.get(gw.url("/v1/no/such/endpoint")).send().await.unwrap()).await;
    assert_eq!(s, 404);

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sink.received().is_empty());
    gw.stop().await;
}

fn futures_stream(data: Vec<u8>) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter(data.chunks(256).map(|c| Ok(c.to_vec())).collect::<Vec<_>>())
}

#[tokio::test]
async fn a_backlog_over_the_limit_answers_503_with_retry_after() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).server("max_backlog", "3").build()).await;
    client()
        .post(gw.url("/v1/destinations/billing/pause"))
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        let r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let resp = eventually(WAIT, "503 once the backlog is full", || async {
        let r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .body("{}")
            .send()
            .await
            .unwrap();
        (r.status() == 503).then_some(r)
    })
    .await;
    assert!(resp.headers().get("retry-after").is_some());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unavailable");
    // Draining the backlog lets ingest in again by itself.
    client()
        .post(gw.url("/v1/destinations/billing/resume"))
        .send()
        .await
        .unwrap();
    eventually(WAIT, "ingest recovers", || async {
        let r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .body("{}")
            .send()
            .await
            .unwrap();
        (r.status() == 202).then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn low_disk_answers_503_before_writing() {
    let sink = Sink::start().await;
    // More free space than any test machine has: the watermark trips at once.
    let gw = Gateway::start(
        &config(&sink.url)
            .server("min_free_disk", quoted("1000PiB"))
            .build(),
    )
    .await;
    let resp = eventually(WAIT, "503 on low disk", || async {
        let r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .body("{}")
            .send()
            .await
            .unwrap();
        (r.status() == 503).then_some(r)
    })
    .await;
    assert!(resp.headers().get("retry-after").is_some());
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("min_free_disk")
    );
    gw.stop().await;
}

#[tokio::test]
async fn events_are_listed_and_filtered() {
    let sink = Sink::start().await;
    sink.script([switchyard_tests::Reply::status(400)]);
    let gw = Gateway::start(&config(&sink.url).build()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let v: Value = client()
            .post(gw.url("/v1/topics/orders/events"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    sink.wait_for(3, WAIT).await;
    let dead: Value = eventually(WAIT, "one dead letter", || async {
        let v: Value = client()
            .get(gw.url("/v1/events?state=dead_lettered&destination=billing"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["events"].as_array().unwrap().len() == 1).then_some(v)
    })
    .await;
    assert_eq!(dead["events"][0]["id"], ids[0].as_str());

    let page: Value = client()
        .get(gw.url("/v1/events?topic=orders&limit=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = client()
        .get(gw.url(&format!("/v1/events?topic=orders&limit=2&cursor={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["events"].as_array().unwrap().len(), 1);
    assert_eq!(rest["events"][0]["id"], ids[2].as_str());
    // A topic that is not configured is a mistake, not an empty list.
    let resp = client()
        .get(gw.url("/v1/events?topic=other"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let other: Value = resp.json().await.unwrap();
    assert_eq!(other["error"]["code"], "unknown_topic", "{other}");
    gw.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).build()).await;
    assert_eq!(
        client()
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client()
            .get(gw.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    gw.stop().await;
}

#[tokio::test]
async fn retention_removes_delivered_events() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).server("retention", quoted("1s")).build()).await;
    let v: Value = client()
        .post(gw.url("/v1/topics/orders/events"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    sink.wait_for(1, WAIT).await;
    eventually(Duration::from_secs(20), "the event to be swept", || async {
        let r = client()
            .get(gw.url(&format!("/v1/events/{id}")))
            .send()
            .await
            .unwrap();
        (r.status() == 404).then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_idempotency_key_with_another_body_is_reported_and_counted() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).build()).await;
    let post = |body: &'static str| {
        client()
            .post(gw.url("/v1/topics/orders/events"))
            .header("idempotency-key", "order-42")
            .body(body)
            .send()
    };
    let first: Value = post(r#"{"id":42}"#).await.unwrap().json().await.unwrap();
    let same: Value = post(r#"{"id":42}"#).await.unwrap().json().await.unwrap();
    assert_eq!(same["duplicate"], true);
    assert!(same.get("body_differs").is_none(), "{same}");
    let resp = post(r#"{"id":43}"#).await.unwrap();
    assert_eq!(resp.status(), 200);
    let other: Value = resp.json().await.unwrap();
    assert_eq!(other["id"], first["id"]);
    assert_eq!(other["duplicate"], true);
    assert_eq!(other["body_differs"], true, "{other}");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("switchyard_idempotency_conflicts_total{topic=\"orders\"} 1"),
        "{metrics}"
    );
    // A batch resend with other events says so too.
    let batch = |body: &'static str| {
        client()
            .post(gw.url("/v1/topics/orders/events/batch"))
            .header("content-type", "application/json")
            .header("idempotency-key", "batch-1")
            .body(body)
            .send()
    };
    batch("[1,2]").await.unwrap();
    let v: Value = batch("[1,3]").await.unwrap().json().await.unwrap();
    assert_eq!(v["body_differs"], true, "{v}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_sent_as_ndjson_is_refused_at_index_0() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).build()).await;
    let resp = client()
        .post(gw.url("/v1/topics/orders/events/batch"))
        .header("content-type", "application/x-ndjson")
        .body(r#"[{"id":1},{"id":2}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "malformed", "{v}");
    assert_eq!(v["error"]["index"], 0, "{v}");
    let list: Value = client()
        .get(gw.url("/v1/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["events"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_filters_name_unknown_topics_and_refuse_limit_0() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url).build()).await;
    for _ in 0..2 {
        client()
            .post(gw.url("/v1/topics/orders/events"))
            .body("{}")
            .send()
            .await
            .unwrap();
    }
    for (query, status, code) in [
        ("topic=nosuch", 404, "unknown_topic"),
        ("destination=nosuch", 404, "unknown_destination"),
        ("limit=0", 400, "malformed"),
        ("include=everything", 400, "malformed"),
    ] {
        let resp = client()
            .get(gw.url(&format!("/v1/events?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{query}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{query}: {v}");
    }
    let resp = client()
        .get(gw.url("/v1/destinations/billing/dlq?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = client()
        .get(gw.url("/v1/events?topic=orders&limit=1&include=payload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["events"][0]["payload"], "{}", "{v}");
    gw.stop().await;
}
