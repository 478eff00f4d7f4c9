//! Delivery end to end: events posted to a running gateway arrive at real
//! HTTP sinks, failures are retried with growing delays, exhausted entries
//! land in the DLQ and can be replayed, and operators can pause, resume and
//! redeliver.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::{Gateway, Reply, Sink, client, eventually};

const WAIT: Duration = Duration::from_secs(15);

/// A config with one topic routed to the given http destinations.
fn config(dests: &[(&str, &str)], retry: &str) -> String {
    let mut c = Config::new();
    for (name, url) in dests {
        c = c.destination(destination(name, url, retry));
    }
    c.topic(Topic::new("orders").routes(dests.iter().map(|&(name, _)| name)))
        .build()
}

/// An http destination as `config` makes them.
fn destination(name: &str, url: &str, retry: &str) -> Destination {
    Destination::http(name, url)
        .set("timeout", quoted("2s"))
        .retry(retry)
}

const FAST_RETRY: &str = "{ initial = \"100ms\", multiplier = 2.0, max_attempts = 4 }";

async fn publish(gw: &Gateway, body: &'static [u8], ct: &str) -> String {
    let resp = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn event(gw: &Gateway, id: &str) -> Value {
    client()
        .get(gw.url(&format!("/v1/events/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn state_of(gw: &Gateway, id: &str, dest: &str) -> Option<String> {
    let e = event(gw, id).await;
    e["deliveries"]
        .as_array()?
        .iter()
        .find(|d| d["destination"] == dest)
        .and_then(|d| d["state"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn roundtrip_keeps_body_content_type_and_id() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&[("billing", &sink.url)], FAST_RETRY)).await;

    let json_id = publish(&gw, br#"{"id":1, "amount": 10.50}"#, "application/json").await;
    let form_id = publish(&gw, b"a=1&b=%20x", "application/x-www-form-urlencoded").await;
    let bin_id = publish(&gw, b"\x00\xff\x01binary\x80", "application/octet-stream").await;

    let got = sink.wait_for(3, WAIT).await;
    let by_id = |id: &str| {
        got.iter()
            .find(|r| r.header("webhook-id") == Some(id))
            .unwrap()
            .clone()
    };
    let j = by_id(&json_id);
    assert_eq!(&j.body[..], br#"{"id":1, "amount": 10.50}"#);
    assert_eq!(j.header("content-type"), Some("application/json"));
    assert!(j.header("webhook-timestamp").is_some());
    let f = by_id(&form_id);
    assert_eq!(&f.body[..], b"a=1&b=%20x");
    assert_eq!(
        f.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let b = by_id(&bin_id);
    assert_eq!(&b.body[..], b"\x00\xff\x01binary\x80");

    let e = eventually(WAIT, "delivered state", || async {
        let e = event(&gw, &json_id).await;
        (e["deliveries"][0]["state"] == "delivered").then_some(e)
    })
    .await;
    assert_eq!(e["topic"], "orders");
    assert_eq!(e["content_type"], "application/json");
    assert_eq!(e["size"], 25);
    assert_eq!(e["deliveries"][0]["attempts"][0]["status"], 200);
    gw.stop().await;
}

#[tokio::test]
async fn fan_out_reaches_every_route() {
    let a = Sink::start().await;
    let b = Sink::start().await;
    let gw = Gateway::start(&config(&[("a", &a.url), ("b", &b.url)], FAST_RETRY)).await;
    let id = publish(&gw, b"{}", "application/json").await;
    assert_eq!(
        a.wait_for(1, WAIT).await[0].header("webhook-id"),
        Some(id.as_str())
    );
    assert_eq!(
        b.wait_for(1, WAIT).await[0].header("webhook-id"),
        Some(id.as_str())
    );
    gw.stop().await;
}

#[tokio::test]
async fn failing_sink_is_retried_with_growing_delays_and_a_stable_id() {
    let sink = Sink::start().await;
    sink.script([
        Reply::status(503),
        Reply::status(500).body("boom"),
        Reply::status(502),
    ]);
    let retry = "{ initial = \"200ms\", multiplier = 2.0, max_attempts = 5 }";
    let gw = Gateway::start(&config(&[("billing", &sink.url)], retry)).await;
    let id = publish(&gw, b"{\"n\":1}", "application/json").await;

    let got = sink.wait_for(4, WAIT).await;
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == Some(id.as_str()))
    );
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    // Equal jitter: the n-th wait is within [d/2, d] for d = 200ms * 2^(n-1).
    assert!(gaps[0] >= Duration::from_millis(100), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(200), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(400), "{gaps:?}");

    let e = eventually(WAIT, "delivered after retries", || async {
        let e = event(&gw, &id).await;
        (e["deliveries"][0]["state"] == "delivered").then_some(e)
    })
    .await;
    let attempts = e["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    let statuses: Vec<i64> = attempts
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![503, 500, 502, 200]);
    assert_eq!(attempts[1]["response_excerpt"], "boom");
    let delays: Vec<u64> = attempts
        .iter()
        .map(|a| a["delay_before_ms"].as_u64().unwrap())
        .collect();
    assert!(delays[1] < delays[2] && delays[2] < delays[3], "{delays:?}");
    gw.stop().await;
}

#[tokio::test]
async fn connection_refused_is_retried_until_the_dlq_then_replay_delivers() {
    // A port with nothing listening: bind, note the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let url = format!("http://127.0.0.1:{port}/hook");
    let retry = "{ initial = \"50ms\", multiplier = 2.0, max_attempts = 3 }";
    let gw = Gateway::start(&config(&[("billing", &url)], retry)).await;
    let id = publish(&gw, b"{\"n\":1}", "application/json").await;

    eventually(WAIT, "dead-lettered", || async {
        (state_of(&gw, &id, "billing").await.as_deref() == Some("dead_lettered")).then_some(())
    })
    .await;
    let dlq: Value = client()
        .get(gw.url("/v1/destinations/billing/dlq"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = dlq["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], id.as_str());
    assert_eq!(entries[0]["attempts"], 3);
    assert!(
        entries[0]["error"].as_str().unwrap().contains("refused"),
        "{dlq}"
    );

    // The destination comes back; replay delivers with a fresh budget.
    let sink = Sink::start_on(&format!("127.0.0.1:{port}")).await;
    let r: Value = client()
        .post(gw.url("/v1/destinations/billing/dlq/replay"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["replayed"], 1);
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), Some(id.as_str()));
    eventually(WAIT, "delivered after replay", || async {
        (state_of(&gw, &id, "billing").await.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    let e = event(&gw, &id).await;
    // History keeps counting across the replay: attempts 1..=4.
    let n: Vec<u64> = e["deliveries"][0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(n, vec![1, 2, 3, 4]);
    let dlq: Value = client()
        .get(gw.url("/v1/destinations/billing/dlq"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dlq["depth"], 0);
    gw.stop().await;
}

#[tokio::test]
async fn client_errors_are_dead_lettered_at_once_and_redirects_not_followed() {
    let sink = Sink::start().await;
    sink.script([
        Reply::status(400).body("bad field"),
        Reply::status(302).header("location", "http://127.0.0.1:1/elsewhere"),
    ]);
    let gw = Gateway::start(&config(&[("billing", &sink.url)], FAST_RETRY)).await;
    let a = publish(&gw, b"1", "application/json").await;
    sink.wait_for(1, WAIT).await;
    let b = publish(&gw, b"2", "application/json").await;
    sink.wait_for(2, WAIT).await;
    for id in [&a, &b] {
        eventually(WAIT, "dead-lettered", || async {
            (state_of(&gw, id, "billing").await.as_deref() == Some("dead_lettered")).then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One attempt each: nothing retried, the redirect not followed.
    assert_eq!(sink.received().len(), 2);
    let e = event(&gw, &a).await;
    assert!(
        e["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("400")
    );
    gw.stop().await;
}

#[tokio::test]
async fn retry_after_from_the_destination_is_honoured() {
    let sink = Sink::start().await;
    sink.script([Reply::status(429).header("retry-after", "1")]);
    let retry = "{ initial = \"10ms\", multiplier = 2.0, max_attempts = 3 }";
    let gw = Gateway::start(&config(&[("billing", &sink.url)], retry)).await;
    publish(&gw, b"{}", "application/json").await;
    let got = sink.wait_for(2, WAIT).await;
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(950),
        "{:?}",
        got[1].at - got[0].at
    );
    gw.stop().await;
}

#[tokio::test]
async fn gone_pauses_the_destination_until_resumed() {
    let sink = Sink::start().await;
    sink.script([Reply::status(410)]);
    let gw = Gateway::start(&config(&[("billing", &sink.url)], FAST_RETRY)).await;
    let id = publish(&gw, b"{}", "application/json").await;
    sink.wait_for(1, WAIT).await;
    let dests: Value = eventually(WAIT, "paused", || async {
        let v: Value = client()
            .get(gw.url("/v1/destinations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Levels are exact on fjall; on a cluster they are read from the
        // servers every second.
        (v["destinations"][0]["paused"] == true && v["destinations"][0]["queue_depth"] == 1)
            .then_some(v)
    })
    .await;
    assert_eq!(dests["destinations"][0]["queue_depth"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "nothing is sent while paused");

    let r = client()
        .post(gw.url("/v1/destinations/billing/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = sink.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), Some(id.as_str()));
    // Both attempts are in the history, numbered apart: the 410 did not
    // count against the retry budget, but it happened.
    let attempts: Vec<(Value, Value)> = eventually(WAIT, "two attempts recorded", || async {
        let v: Value = client()
            .get(gw.url(&format!("/v1/events/{id}")))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let a = v["deliveries"][0]["attempts"].as_array()?.clone();
        (a.len() == 2).then(|| {
            a.iter()
                .map(|a| (a["attempt"].clone(), a["status"].clone()))
                .collect()
        })
    })
    .await;
    assert_eq!(
        attempts,
        vec![(json!(1), json!(410)), (json!(2), json!(200))]
    );
    gw.stop().await;
}

#[tokio::test]
async fn pause_holds_delivery_without_losing_anything() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&[("billing", &sink.url)], FAST_RETRY)).await;
    let r = client()
        .post(gw.url("/v1/destinations/billing/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for _ in 0..5 {
        publish(&gw, b"{}", "application/json").await;
    }
    let v: Value = eventually(WAIT, "queued while paused", || async {
        let v: Value = client()
            .get(gw.url("/v1/destinations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["destinations"][0]["queue_depth"] == 5).then_some(v)
    })
    .await;
    assert_eq!(v["destinations"][0]["paused"], true);
    assert!(
        v["destinations"][0]["oldest_pending_age_seconds"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
    assert_eq!(sink.received().len(), 0);
    client()
        .post(gw.url("/v1/destinations/billing/resume"))
        .send()
        .await
        .unwrap();
    sink.wait_for(5, WAIT).await;
    let missing = client()
        .post(gw.url("/v1/destinations/nope/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn redeliver_sends_an_event_again() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&[("billing", &sink.url)], FAST_RETRY)).await;
    let id = publish(&gw, b"{\"x\":1}", "application/json").await;
    sink.wait_for(1, WAIT).await;
    eventually(WAIT, "delivered", || async {
        (state_of(&gw, &id, "billing").await.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    let r = client()
        .post(gw.url(&format!("/v1/events/{id}/redeliver")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let got = sink.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), Some(id.as_str()));
    assert_eq!(&got[1].body[..], b"{\"x\":1}");

    let unknown = client()
        .post(gw.url(&format!("/v1/events/{}/redeliver", ulid::Ulid::new())))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bad = client()
        .post(gw.url("/v1/events/not-an-id/redeliver"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    gw.stop().await;
}

#[tokio::test]
async fn rate_limit_spaces_out_deliveries() {
    let sink = Sink::start().await;
    let c = Config::new()
        .destination(
            destination("billing", &sink.url, FAST_RETRY).set("rate_limit", quoted("20/s")),
        )
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&c).await;
    for _ in 0..11 {
        publish(&gw, b"{}", "application/json").await;
    }
    let got = sink.wait_for(11, WAIT).await;
    // 11 deliveries at 20/s span at least 10 intervals of 50 ms.
    let span = got[10].at - got[0].at;
    assert!(span >= Duration::from_millis(450), "{span:?}");
    gw.stop().await;
}

#[tokio::test]
async fn log_destination_accepts_everything() {
    let c = Config::new()
        .destination(Destination::log("audit"))
        .topic(Topic::new("orders").routes(["audit"]))
        .build();
    let gw = Gateway::start(&c).await;
    let id = publish(&gw, b"{}", "application/json").await;
    eventually(WAIT, "delivered to the log", || async {
        (state_of(&gw, &id, "audit").await.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_body_is_delivered_with_content_length_0() {
    let sink = Sink::start().await;
    let cfg = Config::new()
        .destination(Destination::http("hook", &sink.url))
        .topic(Topic::new("orders").routes(["hook"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    let resp = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].header("content-length"),
        Some("0"),
        "{:?}",
        got[0].headers
    );
    assert!(got[0].header("transfer-encoding").is_none());
    assert!(got[0].body.is_empty());
    gw.stop().await;
}
