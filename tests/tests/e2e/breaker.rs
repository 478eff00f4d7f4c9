//! Endpoint health: a destination's circuit breaker opens after the
//! configured failures, sends only probes while open (counted at a real
//! sink), closes when the endpoint recovers and drains the backlog; its
//! state changes reach the `[operator]` destination as JSON events, the
//! metrics and `GET /v1/destinations`; `disable_after` pauses a destination
//! that keeps failing.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::{Gateway, Reply, Sink, client, eventually};

fn config(billing: &str, ops: &str, breaker: &str) -> String {
    Config::new()
        .destination(
            Destination::http("billing", billing)
                .set("concurrency", "1")
                .retry("{ initial = \"50ms\", multiplier = 1.0, max_delay = \"50ms\", max_attempts = 1000 }")
                .set("circuit_breaker", breaker),
        )
        .destination(Destination::http("ops", ops))
        .topic(Topic::new("orders").routes(["billing"]))
        .raw(&format!("[operator]\ndestination = {}\n", quoted("ops")))
        .build()
}

async fn billing(gw: &Gateway) -> Value {
    let v: Value = client()
        .get(gw.url("/v1/destinations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "billing")
        .unwrap()
        .clone()
}

/// The operator events the ops sink received, as (kind, destination).
fn operator_events(ops: &Sink) -> Vec<(String, String)> {
    ops.received()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|v| {
            (
                v["kind"].as_str().unwrap_or("").to_owned(),
                v["destination"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_breaker_opens_probes_only_closes_on_recovery_and_tells_the_operator() {
    let (dead, ops) = (Sink::start().await, Sink::start().await);
    dead.set_default(Reply::status(503));
    let gw = Gateway::start(&config(
        &dead.url,
        &ops.url,
        "{ consecutive = 3, min_requests = 100, probe_interval = \"300ms\", max_probe_interval = \"600ms\" }",
    ))
    .await;
    let mut ids = HashSet::new();
    for n in 0..5 {
        let r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .header("content-type", "application/json")
            .body(format!("{{\"n\":{n}}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        ids.insert(v["id"].as_str().unwrap().to_owned());
    }
    eventually(Duration::from_secs(10), "the circuit open", || async {
        (billing(&gw).await["circuit"] == "open").then_some(())
    })
    .await;
    // Opened after exactly the configured three failures.
    assert_eq!(dead.received().len(), 3);

    // While open, only probes go out: one after 300 ms, then every 600 ms.
    // Without the breaker, five entries retrying every 50 ms would send
    // about a hundred requests in this time.
    let before = dead.received().len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let probes = dead.received().len() - before;
    assert!(
        (1..=5).contains(&probes),
        "{probes} requests while the circuit was open"
    );
    eventually(
        Duration::from_secs(10),
        "circuit_opened at the operator",
        || {
            let got = operator_events(&ops);
            async move {
                got.contains(&("circuit_opened".into(), "billing".into()))
                    .then_some(())
            }
        },
    )
    .await;
    let metrics = gw.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchyard_operator_events_total")
                && l.contains("circuit_opened")
                && l.contains("billing")
                && l.ends_with(" 1")),
        "{metrics}"
    );

    // The endpoint recovers: the next probe closes the circuit and the
    // backlog drains.
    dead.set_default(Reply::status(200));
    let recovered_from = dead.received().len();
    eventually(Duration::from_secs(15), "every event delivered", || {
        let got: HashSet<String> = dead.received()[recovered_from..]
            .iter()
            .filter_map(|r| r.header("webhook-id").map(str::to_owned))
            .collect();
        let done = ids.is_subset(&got);
        async move { done.then_some(()) }
    })
    .await;
    let b = billing(&gw).await;
    assert_eq!(b["circuit"], "closed", "{b}");
    eventually(
        Duration::from_secs(10),
        "circuit_closed at the operator",
        || {
            let got = operator_events(&ops);
            async move {
                got.contains(&("circuit_closed".into(), "billing".into()))
                    .then_some(())
            }
        },
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_after_pauses_a_destination_that_keeps_failing() {
    let (dead, ops) = (Sink::start().await, Sink::start().await);
    dead.set_default(Reply::status(503));
    let gw = Gateway::start(&config(
        &dead.url,
        &ops.url,
        "{ consecutive = 2, probe_interval = \"100ms\", max_probe_interval = \"100ms\", disable_after = \"700ms\" }",
    ))
    .await;
    let r = client()
        .post(gw.url("/v1/topics/orders/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually(Duration::from_secs(10), "billing paused", || async {
        (billing(&gw).await["paused"] == true).then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "destination_paused at the operator",
        || {
            let got = operator_events(&ops);
            async move {
                got.contains(&("destination_paused".into(), "billing".into()))
                    .then_some(())
            }
        },
    )
    .await;
    // Paused: nothing more is sent.
    let n = dead.received().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dead.received().len(), n);
    gw.stop().await;
}
