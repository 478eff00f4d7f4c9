//! Durability: a SIGKILL during load loses no event that was answered 202;
//! a restart resumes pending and in-flight deliveries; SIGTERM drains.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::{Gateway, Process, Reply, Sink, client, eventually, post_json};

fn write_config(dir: &std::path::Path, sink: &str) -> std::path::PathBuf {
    let text = Config::new()
        .for_process(&dir.join("data"))
        .server("shutdown_grace", quoted("5s"))
        .destination(
            Destination::http("billing", sink)
                .set("concurrency", "32")
                .retry("{ initial = \"50ms\", multiplier = 2.0, max_delay = \"500ms\", max_attempts = 50 }"),
        )
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let path = dir.join("switchyard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_load_loses_no_acknowledged_event() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sink.url);
    let gw = Process::start(&config);

    let acked = Arc::new(Mutex::new(HashSet::new()));
    let stop_at = Instant::now() + Duration::from_secs(3);
    let mut senders = Vec::new();
    for w in 0..16 {
        let (url, acked) = (gw.url("/v1/topics/orders/events"), acked.clone());
        senders.push(tokio::spawn(async move {
            let c = client();
            let mut n = 0;
            while Instant::now() < stop_at {
                n += 1;
                let body = format!("{{\"worker\":{w},\"n\":{n}}}");
                match c
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 202 => {
                        let v: Value = r.json().await.unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .insert(v["id"].as_str().unwrap().to_owned());
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    // The gateway is gone: nothing more can be acknowledged.
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    gw.kill9();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the load should have been real: {} acked",
        acked.len()
    );

    let gw = Process::start(&config);
    let delivered = eventually(
        Duration::from_secs(60),
        "every acknowledged event at the sink",
        || {
            let sink = sink.clone();
            let acked = acked.clone();
            async move {
                let got: HashSet<String> = sink
                    .received()
                    .iter()
                    .filter_map(|r| r.header("webhook-id").map(str::to_owned))
                    .collect();
                acked.is_subset(&got).then_some(got)
            }
        },
    )
    .await;
    assert!(delivered.len() >= acked.len());
    assert!(gw.sigterm().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_deliveries_in_flight_finish() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(200).delay(Duration::from_millis(700)));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sink.url);
    let gw = Process::start(&config);
    let r = client()
        .post(gw.url("/v1/topics/orders/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    sink.wait_for(1, Duration::from_secs(10)).await;
    let status = gw.sigterm();
    assert!(status.success(), "{status:?}");

    // The attempt finished before exit: after a restart it is not sent again.
    sink.set_default(Reply::status(200));
    let gw = Process::start(&config);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1);
    assert!(gw.sigterm().success());
}

#[tokio::test]
async fn a_restart_resumes_pending_retries() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(503));
    let cfg = Config::new()
        .destination(
            Destination::http("billing", &sink.url)
                .retry("{ initial = \"300ms\", multiplier = 1.0, max_attempts = 100 }"),
        )
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    let v: Value = client()
        .post(gw.url("/v1/topics/orders/events"))
        .body("{\"keep\":true}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    sink.wait_for(2, Duration::from_secs(10)).await;
    let dir = gw.stop().await;

    sink.set_default(Reply::status(200));
    let before = sink.received().len();
    let gw = Gateway::start_in(&cfg, dir).await;
    let got = sink.wait_for(before + 1, Duration::from_secs(10)).await;
    assert_eq!(got.last().unwrap().header("webhook-id"), Some(id.as_str()));
    assert_eq!(&got.last().unwrap().body[..], b"{\"keep\":true}");
    gw.stop().await;
}

/// A clean stop routes every event it accepted: the stopped node's queues
/// hold all of them, and none waits for the router (so `migrate`, or an
/// operator looking at the queues, sees everything in place).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_routes_every_event_it_accepted() {
    use switchyard_store::EventLog;
    use switchyard_store::transfer::Export;
    use switchyard_store_fjall::{Durability, FjallStore};

    let sink = Sink::start().await;
    sink.set_default(Reply::status(503));
    let cfg = Config::new()
        .destination(
            Destination::http("billing", &sink.url)
                .retry("{ initial = \"1h\", multiplier = 1.0, max_attempts = 3 }"),
        )
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    // Accepted far faster than routed: the stop comes with most of them
    // still waiting for the router.
    let n = 6000;
    for chunk in (0..n).collect::<Vec<u32>>().chunks(1000) {
        let body: Vec<Value> = chunk.iter().map(|n| json!({ "n": n })).collect();
        let (s, v) = post_json(gw.url("/v1/topics/orders/events/batch"), json!(body), &[]).await;
        assert_eq!(s, 202, "{v}");
    }
    let dir = gw.stop().await;

    let store = FjallStore::open(&dir.path().join("data"), Durability::Sync).unwrap();
    let unrouted = store.pending_routes(None, n as usize).await.unwrap();
    assert!(
        unrouted.is_empty(),
        "{} of {n} events still wait for the router after a clean stop",
        unrouted.len()
    );
    let queued = store.export_queue("billing", None, n as usize + 1).unwrap();
    assert_eq!(queued.len(), n as usize, "every event is queued");
}
