//! Operator events for levels crossing a line: a DLQ reaching `[operator]
//! dlq_threshold` (once per crossing), free disk going below
//! `server.min_free_disk` and back (through a reload), a plugin
//! quarantined. Each is listed by `GET /v1/operator/events`, counted, sent
//! to the `[operator]` destination, and shown by `switchyard status` with
//! the destinations' circuits.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Plugin, Topic, quoted};
use switchyard_tests::{Gateway, Reply, Sink, bin, client, eventually, workspace};

const WAIT: Duration = Duration::from_secs(20);

async fn get(gw: &Gateway, path: &str) -> Value {
    client()
        .get(gw.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn publish(gw: &Gateway, topic: &str, body: &str) {
    let r = client()
        .post(gw.url(&format!("/v1/topics/{topic}/events")))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "publish to {topic}");
}

/// The kinds (with destinations) of the gateway's recent operator events.
async fn kinds(gw: &Gateway) -> Vec<(String, String)> {
    get(gw, "/v1/operator/events").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["destination"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The operator events a sink received, as kinds.
fn received_kinds(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|v| v["kind"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dlq_past_its_threshold_is_an_operator_event_once_and_status_shows_it() {
    let bad = Sink::start().await;
    bad.set_default(Reply::status(400));
    let ops = Sink::start().await;
    let cfg = Config::new()
        .destination(
            Destination::http("bad", &bad.url).set("circuit_breaker", "{ consecutive = 100 }"),
        )
        .destination(Destination::http("ops", &ops.url))
        .topic(Topic::new("orders").routes(["bad"]))
        .raw(&format!(
            "[operator]\ndestination = {}\ndlq_threshold = 2\n",
            quoted("ops")
        ))
        .build();
    let gw = Gateway::start(&cfg).await;
    publish(&gw, "orders", r#"{"n":1}"#).await;
    eventually(WAIT, "one dead letter", || async {
        (get(&gw, "/v1/destinations/bad").await["dlq_depth"] == 1).then_some(())
    })
    .await;
    // Below the threshold: no event, even after a few polls.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(kinds(&gw).await.is_empty());
    for n in 2..5 {
        publish(&gw, "orders", &format!(r#"{{"n":{n}}}"#)).await;
    }
    eventually(WAIT, "dlq_growing at the operator destination", || async {
        received_kinds(&ops)
            .contains(&"dlq_growing".to_owned())
            .then_some(())
    })
    .await;
    eventually(WAIT, "four dead letters", || async {
        (get(&gw, "/v1/destinations/bad").await["dlq_depth"] == 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        kinds(&gw).await,
        vec![("dlq_growing".to_owned(), "bad".to_owned())],
        "once per crossing"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(
            r#"switchyard_operator_events_total{kind="dlq_growing",destination="bad"} 1"#
        ),
        "{metrics}"
    );

    let server = gw.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .args(["status", "--server", &server])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CIRCUIT") && text.contains("closed"),
        "{text}"
    );
    assert!(
        text.contains("Recent operator events") && text.contains("dlq_growing"),
        "{text}"
    );
    assert!(text.contains("operator.dlq_threshold = 2"), "{text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_low_and_recovered_are_operator_events() {
    let cfg = |min_free: &str| {
        Config::new()
            .server("min_free_disk", quoted(min_free))
            .destination(Destination::log("audit"))
            .topic(Topic::new("orders").routes(["audit"]))
            .build()
    };
    let gw = Gateway::start(&cfg("1000PiB")).await;
    eventually(WAIT, "disk_low", || async {
        kinds(&gw)
            .await
            .contains(&("disk_low".to_owned(), String::new()))
            .then_some(())
    })
    .await;
    // Lower the floor by a reload: the disk is fine again.
    let text = switchyard_tests::fill(&cfg("1MiB"), gw.dir.path().join("data"));
    std::fs::write(gw.dir.path().join("switchyard.toml"), text).unwrap();
    let r = client()
        .post(gw.url("/v1/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    eventually(WAIT, "disk_recovered", || async {
        let k = kinds(&gw).await;
        (k.first() == Some(&("disk_recovered".to_owned(), String::new()))).then_some(())
    })
    .await;
    gw.stop().await;
}

fn wasm(name: &str) -> PathBuf {
    let p = workspace()
        .join("plugins/target/wasm32-wasip2/release")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-plugins.sh",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_plugin_is_an_operator_event() {
    let cfg = Config::new()
        .plugin(
            Plugin::new("shaky", &wasm("panic.wasm"))
                .set("on_error", quoted("skip"))
                .config([("route", "audit")]),
        )
        .destination(Destination::log("audit"))
        .topic(Topic::new("shaky").routes(["audit"]).plugins(["shaky"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    // Five failed calls in a row quarantine it; one at a time, so each is
    // a call of its own.
    for _ in 0..6 {
        publish(&gw, "shaky", r#"{"panic":true}"#).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually(WAIT, "plugin_quarantined", || async {
        kinds(&gw)
            .await
            .contains(&("plugin_quarantined".to_owned(), String::new()))
            .then_some(())
    })
    .await;
    let events = get(&gw, "/v1/operator/events").await;
    let reason = events["events"][0]["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("shaky"), "{reason}");
    gw.stop().await;
}
