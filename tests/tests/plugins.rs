//! Wasm plugins through the real gateway: the example plugins built from
//! `plugins/` change where and how events arrive at real sinks; a hostile
//! plugin is cut off and its events follow `on_error` while other topics
//! keep flowing; a topic DLQ replay runs the chain again.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::{Gateway, Sink, client, eventually, workspace};

const WAIT: Duration = Duration::from_secs(20);

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

async fn publish(gw: &Gateway, topic: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(gw.url(&format!("/v1/topics/{topic}/events")))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_by_field_and_redact_change_where_and_how_events_arrive() {
    let billing = Sink::start().await;
    let refunds = Sink::start().await;
    let audit = Sink::start().await;
    let cfg = format!(
        "[server]\ndata_dir = \"{{data_dir}}\"\n\
         [[plugins]]\nname = \"route-by-field\"\npath = \"{}\"\n\
         config = {{ pointer = \"/type\", routes = \"refund=refunds|audit,order=billing\", default = \"audit\" }}\n\
         [[plugins]]\nname = \"redact\"\npath = \"{}\"\nconfig = {{ keys = \"email\" }}\n\
         [[destinations]]\nname = \"billing\"\nkind = \"http\"\nurl = \"{}\"\n\
         [[destinations]]\nname = \"refunds\"\nkind = \"http\"\nurl = \"{}\"\n\
         [[destinations]]\nname = \"audit\"\nkind = \"http\"\nurl = \"{}\"\n\
         [[topics]]\nname = \"orders\"\nroutes = [\"audit\"]\nplugins = [\"route-by-field\", \"redact\"]\n",
        wasm("route_by_field.wasm").display(),
        wasm("redact.wasm").display(),
        billing.url,
        refunds.url,
        audit.url
    );
    let gw = Gateway::start(&cfg).await;
    assert_eq!(
        publish(&gw, "orders", r#"{"type":"order","email":"a@b.c"}"#)
            .await
            .0,
        202
    );
    assert_eq!(
        publish(&gw, "orders", r#"{"type":"refund","email":"x@y.z"}"#)
            .await
            .0,
        202
    );
    assert_eq!(publish(&gw, "orders", r#"{"type":"other"}"#).await.0, 202);

    let b = billing.wait_for(1, WAIT).await;
    let body: Value = serde_json::from_slice(&b[0].body).unwrap();
    assert_eq!(body["type"], "order");
    assert_ne!(body["email"], "a@b.c", "redacted before delivery: {body}");
    let r = refunds.wait_for(1, WAIT).await;
    assert!(String::from_utf8_lossy(&r[0].body).contains("refund"));
    // The refund goes to audit too, and "other" falls to the default.
    audit.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(billing.received().len(), 1);
    assert_eq!(refunds.received().len(), 1);
    assert_eq!(audit.received().len(), 2);

    let plugins: Value = client()
        .get(gw.url("/v1/plugins"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = plugins["plugins"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{plugins}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_plugin_is_cut_off_and_its_events_dead_lettered_while_others_flow() {
    let sink = Sink::start().await;
    let cfg = format!(
        "[server]\ndata_dir = \"{{data_dir}}\"\n\
         [[plugins]]\nname = \"spin\"\npath = \"{}\"\ntimeout = \"50ms\"\non_error = \"dead-letter\"\n\
         [[destinations]]\nname = \"out\"\nkind = \"http\"\nurl = \"{}\"\n\
         [[topics]]\nname = \"bad\"\nroutes = [\"out\"]\nplugins = [\"spin\"]\n\
         [[topics]]\nname = \"good\"\nroutes = [\"out\"]\n",
        wasm("loop_forever.wasm").display(),
        sink.url
    );
    let gw = Gateway::start(&cfg).await;
    // The fixture spins on any payload containing "loop".
    let (s, v) = publish(&gw, "bad", "{\"loop\":true}").await;
    assert_eq!(s, 202);
    let bad_id = v["id"].as_str().unwrap().to_owned();
    let (_, v) = publish(&gw, "good", "{\"ok\":true}").await;
    let good_id = v["id"].as_str().unwrap().to_owned();
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), Some(good_id.as_str()));

    let dlq: Value = eventually(WAIT, "the runaway event in the topic DLQ", || async {
        let v: Value = client()
            .get(gw.url("/v1/topics/bad/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["depth"] == 1).then_some(v)
    })
    .await;
    assert_eq!(dlq["entries"][0]["id"], bad_id.as_str());
    assert!(
        dlq["entries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("spin"),
        "{dlq}"
    );
    let e: Value = client()
        .get(gw.url(&format!("/v1/events/{bad_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(e["topic_dead_letter"]["error"].is_string(), "{e}");

    // Replay runs the chain again: the plugin still spins, so it comes back.
    let r: Value = client()
        .post(gw.url("/v1/topics/bad/dlq/replay"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["replayed"], 1);
    eventually(WAIT, "dead-lettered again after replay", || async {
        let v: Value = client()
            .get(gw.url("/v1/topics/bad/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["depth"] == 1).then_some(())
    })
    .await;
    assert_eq!(
        sink.received().len(),
        1,
        "the runaway event was never delivered"
    );
    gw.stop().await;
}

#[test]
fn plugin_check_and_test_from_the_command_line() {
    let bin = switchyard_tests::bin();
    let out = std::process::Command::new(&bin)
        .args(["plugin", "check"])
        .arg(wasm("route_by_field.wasm"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0.1.0"));

    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        json!([{"body": {"type": "refund"}}, {"body": {"type": "x"}}]).to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(&bin)
        .args(["plugin", "test"])
        .arg(wasm("route_by_field.wasm"))
        .arg("--event")
        .arg(&event)
        .args([
            "--config",
            "pointer=/type",
            "--config",
            "routes=refund=refunds",
            "--config",
            "default=audit",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("refunds") && stdout.contains("audit"),
        "{stdout}"
    );

    let bad = std::process::Command::new(&bin)
        .args(["plugin", "check"])
        .arg(wasm("wrong_contract.wasm"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_routes_events_with_its_plugin() {
    let qs = workspace().join("examples/quickstart/switchyard.toml");
    let data = tempfile::tempdir().unwrap();
    let gw = switchyard_tests::Process::start_with_args(
        &qs,
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
    );
    let r = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("content-type", "application/json")
        .body(r#"{"id":1,"type":"refund"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e: Value = eventually(WAIT, "delivered to the refunds log", || async {
        let e: Value = client()
            .get(gw.url(&format!("/v1/events/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (e["deliveries"][0]["state"] == "delivered").then_some(e)
    })
    .await;
    assert_eq!(e["deliveries"][0]["destination"], "refunds");
    assert!(gw.sigterm().success());
}
