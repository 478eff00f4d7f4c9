//! Start-up order: after a restart, entries already due for a destination
//! that converts payloads (`format = "json"`) are delivered, not
//! dead-lettered because delivery started before the schema registry. A
//! plugin in the config widens the window (it loads before delivery starts).

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Plugin, Topic, quoted};
use switchyard_tests::{Gateway, Reply, Sink, client, eventually, workspace};

const SCHEMA: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"int"}]}"#;
const EVENTS: usize = 20;

fn config(sink: &Sink) -> String {
    let plugin = workspace().join("plugins/target/wasm32-wasip2/release/route_by_field.wasm");
    Config::new()
        .server("shutdown_grace", quoted("1s"))
        .plugin(
            Plugin::new("router", &plugin).config([("pointer", "/kind"), ("routes", "x=as-json")]),
        )
        .destination(
            Destination::http("as-json", &sink.url)
                .set("format", quoted("json"))
                .retry("{ initial = \"200ms\", multiplier = 1.0, max_attempts = 1000 }"),
        )
        .topic(
            Topic::new("orders")
                .routes(["as-json"])
                .schema("orders-value"),
        )
        .topic(Topic::new("other").plugins(["router"]))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_entries_for_a_converting_destination_are_delivered_after_a_restart() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(503));
    let gw = Gateway::start(&config(&sink)).await;
    let r = client()
        .post(gw.url("/registry/subjects/orders-value/versions"))
        .json(&json!({ "schema": SCHEMA }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for i in 0..EVENTS {
        let r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .header("content-type", "application/json")
            .body(json!({ "id": i }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    // Every event has failed once: all of them sit in the queue, retrying.
    sink.wait_for(EVENTS, Duration::from_secs(15)).await;
    let dir = gw.stop().await;

    // By the time the gateway is back, every entry is due.
    sink.set_default(Reply::status(200));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = sink.received().len();
    let gw = Gateway::start_in(&config(&sink), dir).await;

    // Delivered, or dead-lettered: whichever happens, it happens soon.
    let dlq_of = |gw_url: String| async move {
        let v: Value = client()
            .get(format!("{gw_url}/v1/destinations/as-json/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v
    };
    let url = gw.url.clone();
    let (delivered, dlq) = eventually(Duration::from_secs(20), "every event delivered", || {
        let url = url.clone();
        let sink = sink.clone();
        async move {
            let dlq = dlq_of(url).await;
            let ok: Vec<_> = sink.received().split_off(before);
            (ok.len() >= EVENTS || dlq["depth"].as_u64() > Some(0)).then_some((ok, dlq))
        }
    })
    .await;
    assert_eq!(dlq["entries"], json!([]), "nothing dead-lettered: {dlq}");
    for r in &delivered {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["id"].is_i64(), "delivered as JSON: {v}");
    }
    gw.stop().await;
}
