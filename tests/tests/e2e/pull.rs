//! Pull consumers (receive/ack/nack/extend with visibility timeouts),
//! FIFO per ordering key, and priority with aging — end to end.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic, list, quoted};
use switchyard_tests::{Gateway, Reply, Sink, client, eventually};

const WAIT: Duration = Duration::from_secs(20);

fn pull_config() -> String {
    Config::new()
        .destination(
            Destination::pull("jobs")
                .set("visibility_timeout", quoted("30s"))
                .set("max_receives", "3"),
        )
        .topic(Topic::new("work").routes(["jobs"]))
        .build()
}

async fn post_json(url: String, body: Value) -> (u16, Value) {
    let r = client().post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn publish(gw: &Gateway, topic: &str, body: &str, headers: &[(&str, &str)]) -> String {
    let mut req = client()
        .post(gw.url(&format!("/v1/topics/{topic}/events")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let v: Value = req.send().await.unwrap().json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn receive(gw: &Gateway, body: Value) -> Vec<Value> {
    let (s, v) = post_json(gw.url("/v1/queues/jobs/receive"), body).await;
    assert_eq!(s, 200, "{v}");
    v["messages"].as_array().unwrap().clone()
}

async fn ack(gw: &Gateway, receipts: Vec<&str>) -> Vec<Value> {
    let (s, v) = post_json(
        gw.url("/v1/queues/jobs/ack"),
        json!({ "receipts": receipts }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["results"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumers_share_the_work_without_double_leases() {
    let gw = Arc::new(Gateway::start(&pull_config()).await);
    let m = 300;
    let batch: Vec<Value> = (0..m).map(|i| json!({ "n": i })).collect();
    let r = client()
        .post(gw.url("/v1/topics/work/events/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let leased: Arc<Mutex<HashSet<String>>> = Arc::default();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut consumers = Vec::new();
    for _ in 0..8 {
        let (gw, leased, acked) = (gw.clone(), leased.clone(), acked.clone());
        consumers.push(tokio::spawn(async move {
            loop {
                let msgs = receive(&gw, json!({"max_messages": 10, "wait_seconds": 1})).await;
                if msgs.is_empty() {
                    return;
                }
                for msg in &msgs {
                    let id = msg["id"].as_str().unwrap().to_owned();
                    assert!(
                        leased.lock().unwrap().insert(id.clone()),
                        "{id} leased twice at once"
                    );
                    assert!(msg["body"].as_str().unwrap().starts_with("{\"n\":"));
                }
                for msg in &msgs {
                    leased.lock().unwrap().remove(msg["id"].as_str().unwrap());
                }
                let receipts: Vec<&str> = msgs
                    .iter()
                    .map(|m| m["receipt"].as_str().unwrap())
                    .collect();
                let results = ack(&gw, receipts).await;
                assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");
                acked
                    .lock()
                    .unwrap()
                    .extend(msgs.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
            }
        }));
    }
    for c in consumers {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(acked.len(), m, "every message acked once");
    assert_eq!(unique.len(), m, "no message delivered twice");
    let stats: Value = client()
        .get(gw.url("/v1/destinations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = &stats["destinations"][0];
    assert_eq!(d["queue_depth"], 0);
    assert_eq!(d["in_flight"], 0);
    assert_eq!(d["pull"]["acks"], m);
    let metrics = gw.metrics().await;
    let line = metrics
        .lines()
        .find(|l| l.contains("pull_acks_total{") && l.contains("jobs"))
        .unwrap_or_else(|| panic!("no pull_acks_total in {metrics}"));
    assert!(line.ends_with(&format!(" {m}")), "{line}");
}

#[tokio::test]
async fn an_expired_lease_redelivers_and_the_stale_receipt_is_refused() {
    let gw = Gateway::start(&pull_config()).await;
    let id = publish(&gw, "work", "{\"job\":1}", &[]).await;
    let first = eventually(WAIT, "a message", || async {
        let m = receive(&gw, json!({"visibility_timeout_seconds": 1})).await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(first[0]["id"], id.as_str());
    assert_eq!(first[0]["attempt"], 1);
    // Invisible while leased.
    assert!(receive(&gw, json!({})).await.is_empty());
    // Visible again after the timeout, to someone else.
    let second = receive(&gw, json!({"wait_seconds": 3})).await;
    assert_eq!(second[0]["id"], id.as_str());
    assert_eq!(second[0]["attempt"], 2);
    let stale = ack(&gw, vec![first[0]["receipt"].as_str().unwrap()]).await;
    assert_eq!(stale[0]["ok"], false);
    assert!(
        stale[0]["error"].as_str().unwrap().contains("stale"),
        "{stale:?}"
    );
    let fresh = ack(&gw, vec![second[0]["receipt"].as_str().unwrap()]).await;
    assert_eq!(fresh[0]["ok"], true);
    let again = ack(&gw, vec![second[0]["receipt"].as_str().unwrap()]).await;
    assert_eq!(again[0]["ok"], false);
    let e: Value = client()
        .get(gw.url(&format!("/v1/events/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["deliveries"][0]["state"], "delivered");
    gw.stop().await;
}

#[tokio::test]
async fn nack_extend_and_max_receives() {
    let gw = Gateway::start(&pull_config()).await;
    publish(&gw, "work", "{}", &[]).await;
    let m = receive(
        &gw,
        json!({"wait_seconds": 5, "visibility_timeout_seconds": 1}),
    )
    .await;
    let receipt = m[0]["receipt"].as_str().unwrap().to_owned();

    // Extend to 30 s: still invisible after the original second.
    let (s, v) = post_json(
        gw.url("/v1/queues/jobs/extend"),
        json!({"receipts": [receipt], "visibility_timeout_seconds": 30}),
    )
    .await;
    assert_eq!((s, v["results"][0]["ok"].clone()), (200, json!(true)));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(receive(&gw, json!({})).await.is_empty());

    // Nack with a delay: visible again after it.
    let (_, v) = post_json(
        gw.url("/v1/queues/jobs/nack"),
        json!({"receipts": [receipt], "delay_seconds": 1}),
    )
    .await;
    assert_eq!(v["results"][0]["ok"], true);
    assert!(receive(&gw, json!({})).await.is_empty());
    let m = receive(
        &gw,
        json!({"wait_seconds": 3, "visibility_timeout_seconds": 1}),
    )
    .await;
    assert_eq!(m[0]["attempt"], 2);
    // Third receive uses the last of max_receives = 3; then it is dead-lettered.
    let m = receive(
        &gw,
        json!({"wait_seconds": 3, "visibility_timeout_seconds": 1}),
    )
    .await;
    assert_eq!(m[0]["attempt"], 3);
    let m = receive(&gw, json!({"wait_seconds": 2})).await;
    assert!(m.is_empty());
    let dlq: Value = eventually(WAIT, "a dead letter", || async {
        let v: Value = client()
            .get(gw.url("/v1/destinations/jobs/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["depth"] == 1).then_some(v)
    })
    .await;
    assert!(
        dlq["entries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("max_receives")
    );
    // The DLQ tools work on pull queues too: replay makes it receivable again.
    let (s, v) = post_json(gw.url("/v1/destinations/jobs/dlq/replay"), json!({})).await;
    assert_eq!((s, v["replayed"].clone()), (200, json!(1)));
    let m = receive(&gw, json!({"wait_seconds": 3})).await;
    assert_eq!(m.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn bad_consumer_requests_get_clear_errors() {
    let gw = Gateway::start(&pull_config()).await;
    for (path, body) in [
        ("/v1/queues/jobs/receive", json!({"max_messages": 0})),
        ("/v1/queues/jobs/receive", json!({"max_messages": 101})),
        ("/v1/queues/jobs/receive", json!({"wait_seconds": 21})),
        (
            "/v1/queues/jobs/receive",
            json!({"visibility_timeout_seconds": 0}),
        ),
        ("/v1/queues/jobs/receive", json!({"bogus": 1})),
        ("/v1/queues/jobs/ack", json!({"receipts": []})),
        ("/v1/queues/jobs/ack", json!({"receipts": "x"})),
    ] {
        let (s, v) = post_json(gw.url(path), body.clone()).await;
        assert_eq!(s, 400, "{path} {body}: {v}");
        assert_eq!(v["error"]["code"], "malformed");
    }
    let (s, _) = post_json(gw.url("/v1/queues/nope/receive"), json!({})).await;
    assert_eq!(s, 404);
    let r = client()
        .post(gw.url("/v1/queues/jobs/receive"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let results = ack(&gw, vec!["garbage", "01ARZ3NDEKTSV4RRFFQ69G5FAV.00ff"]).await;
    assert!(results.iter().all(|r| r["ok"] == false));
    gw.stop().await;
}

#[tokio::test]
async fn leases_survive_a_restart() {
    let gw = Gateway::start(&pull_config()).await;
    // One batch: both are routed in the same write, so one receive gets both.
    let r = client()
        .post(gw.url("/v1/topics/work/events/batch"))
        .json(&json!([{"a": 1}, {"b": 2}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let m = receive(
        &gw,
        json!({"max_messages": 2, "wait_seconds": 5, "visibility_timeout_seconds": 3}),
    )
    .await;
    assert_eq!(m.len(), 2, "{m:?}");
    let dir = gw.stop().await;
    let gw = Gateway::start_in(&pull_config(), dir).await;
    // Still leased: nothing visible, and the receipts still work.
    assert!(receive(&gw, json!({})).await.is_empty());
    let r = ack(&gw, vec![m[0]["receipt"].as_str().unwrap()]).await;
    assert_eq!(r[0]["ok"], true, "{r:?}");
    // The other one comes back after its timeout: not lost.
    let back = receive(&gw, json!({"wait_seconds": 6})).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["id"], m[1]["id"]);
    assert_eq!(back[0]["attempt"], 2);
    gw.stop().await;
}

#[tokio::test]
async fn pull_payloads_that_are_not_utf8_come_as_base64() {
    let gw = Gateway::start(&pull_config()).await;
    client()
        .post(gw.url("/v1/topics/work/events"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 255, 1])
        .send()
        .await
        .unwrap();
    let m = receive(&gw, json!({"wait_seconds": 5})).await;
    assert_eq!(m[0]["body_base64"], "AP8B");
    assert!(m[0].get("body").is_none());
    assert_eq!(m[0]["content_type"], "application/octet-stream");
    gw.stop().await;
}

/// The http destination `ledger`, which `push_config` routes to.
fn ledger(sink: &str) -> Destination {
    Destination::http("ledger", sink)
        .set("concurrency", "8")
        .retry("{ initial = \"100ms\", multiplier = 1.5, max_attempts = 10 }")
}

/// Topic `payments`, its priority in `x-priority`, routed to `ledger`.
fn push_config(ledger: Destination) -> String {
    Config::new()
        .destination(ledger)
        .topic(
            Topic::new("payments")
                .routes(["ledger"])
                .set("priority_header", quoted("x-priority")),
        )
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_holds_per_key_under_retries_while_other_keys_flow() {
    let sink = Sink::start().await;
    // The very first request fails twice: that key's head retries, and its
    // followers must wait, while other keys go on.
    sink.script([Reply::status(503), Reply::status(503)]);
    let gw = Gateway::start(&push_config(
        ledger(&sink.url).ordered_by_header("x-account"),
    ))
    .await;
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..10 {
        for acct in ["a", "b", "c", "d", "e"] {
            let body = format!("{{\"account\":\"{acct}\",\"n\":{i}}}");
            let id = publish(&gw, "payments", &body, &[("x-account", acct)]).await;
            sent.entry(acct.to_owned()).or_default().push(id);
        }
    }
    let got = sink.wait_for(52, WAIT).await;
    // Per key: the sequence of ids the sink saw, with retries collapsed,
    // is exactly the ingest order, and no event was sent before the one
    // ahead of it succeeded.
    let seen = switchyard_tests::order_by_key(&got, "x-account");
    for (acct, ids) in &sent {
        assert_eq!(seen.get(acct), Some(ids), "order of key {acct}");
    }
    let dests: Value = client()
        .get(gw.url("/v1/destinations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dests["destinations"][0]["blocked_keys"], 0);
    gw.stop().await;
}

#[tokio::test]
async fn higher_priority_goes_first_under_a_backlog() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&push_config(ledger(&sink.url).set("concurrency", "1"))).await;
    client()
        .post(gw.url("/v1/destinations/ledger/pause"))
        .send()
        .await
        .unwrap();
    for p in ["1", "9", "5", "3", "7"] {
        publish(
            &gw,
            "payments",
            &format!("{{\"p\":{p}}}"),
            &[("x-priority", p)],
        )
        .await;
    }
    eventually(WAIT, "five queued", || async {
        let v: Value = client()
            .get(gw.url("/v1/destinations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["destinations"][0]["queue_depth"] == 5).then_some(())
    })
    .await;
    client()
        .post(gw.url("/v1/destinations/ledger/resume"))
        .send()
        .await
        .unwrap();
    let got = sink.wait_for(5, WAIT).await;
    let order: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.body.to_vec()).unwrap())
        .collect();
    assert_eq!(
        order,
        vec![
            "{\"p\":9}",
            "{\"p\":7}",
            "{\"p\":5}",
            "{\"p\":3}",
            "{\"p\":1}"
        ]
    );
    gw.stop().await;
}

#[tokio::test]
async fn aging_keeps_low_priority_from_starving() {
    let sink = Sink::start().await;
    let cfg = push_config(
        ledger(&sink.url)
            .set("concurrency", "1")
            .set("priority_aging", quoted("100ms")),
    );
    let gw = Gateway::start(&cfg).await;
    client()
        .post(gw.url("/v1/destinations/ledger/pause"))
        .send()
        .await
        .unwrap();
    publish(&gw, "payments", "\"old-low\"", &[("x-priority", "0")]).await;
    // Waiting 1.5 s is worth 15 levels at 100 ms per level: more than 9.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        publish(&gw, "payments", "\"new-high\"", &[("x-priority", "9")]).await;
    }
    eventually(WAIT, "four queued", || async {
        let v: Value = client()
            .get(gw.url("/v1/destinations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["destinations"][0]["queue_depth"] == 4).then_some(())
    })
    .await;
    client()
        .post(gw.url("/v1/destinations/ledger/resume"))
        .send()
        .await
        .unwrap();
    let got = sink.wait_for(4, WAIT).await;
    assert_eq!(
        &got[0].body[..],
        b"\"old-low\"",
        "the long-waiting event went first"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_consumer_drains_a_queue() {
    // Built by the same `cargo build --workspace` as the gateway, beside it.
    let bin = switchyard_tests::bin().with_file_name("pull-consumer");
    assert!(
        bin.exists(),
        "build the workspace first (scripts/test.sh does)"
    );
    let gw = Gateway::start(&pull_config()).await;
    for i in 0..25 {
        publish(&gw, "work", &format!("{{\"job\":{i}}}"), &[]).await;
    }
    let url = gw.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["--server", &url, "--queue", "jobs", "--max", "25"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 25, "{stdout}");
    let v: Value = client()
        .get(gw.url("/v1/destinations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["destinations"][0]["queue_depth"], 0);
    assert_eq!(v["destinations"][0]["in_flight"], 0);
    assert_eq!(v["destinations"][0]["pull"]["acks"], 25);
    gw.stop().await;
}

#[tokio::test]
async fn a_blocking_key_waits_for_its_dead_letter_to_be_dealt_with() {
    let sink = Sink::start().await;
    sink.script([Reply::status(400)]);
    let gw = Gateway::start(&push_config(
        ledger(&sink.url)
            .set("concurrency", "1")
            .set(
                "ordering",
                "{ key = \"header:x-account\", on_dead_letter = \"block\" }",
            )
            .set("forward_headers", list(["x-account"])),
    ))
    .await;
    let a1 = publish(&gw, "payments", "\"a1\"", &[("x-account", "a")]).await;
    sink.wait_for(1, WAIT).await;
    publish(&gw, "payments", "\"a2\"", &[("x-account", "a")]).await;
    publish(&gw, "payments", "\"b1\"", &[("x-account", "b")]).await;
    let got = sink.wait_for(2, WAIT).await;
    assert_eq!(&got[1].body[..], b"\"b1\"", "other keys flow");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        sink.received().len(),
        2,
        "a2 waits behind the dead-lettered a1"
    );
    let v: Value = client()
        .get(gw.url("/v1/destinations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["destinations"][0]["blocked_keys"], 1);
    // Purging the dead letter releases the key.
    let r = client()
        .delete(gw.url(&format!("/v1/destinations/ledger/dlq/{a1}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = sink.wait_for(3, WAIT).await;
    assert_eq!(&got[2].body[..], b"\"a2\"");
    gw.stop().await;
}
