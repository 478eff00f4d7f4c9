//! The JetStream backend with several gateways: shared idempotency, each
//! delivery made by one gateway, pull receipts that settle anywhere, a
//! cluster-wide pause, killed gateways and killed NATS servers losing
//! nothing, and the config read-back at start.
//!
//! They run against real 3-node nats-server 2.15 clusters: the run's
//! (`SWITCHYARD_NATS`, started by `scripts/test.sh`) for tests that kill
//! nothing, and a private one ([`Cluster`]) for those that kill servers.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic, path, quoted};
use switchyard_tests::nats::{Cluster, servers};
use switchyard_tests::{
    Gateway, Process, Reply, Sink, client, eventually, post_json as post, run_python,
};

const WAIT: Duration = Duration::from_secs(30);

fn push_config(servers: &[String], sink: &Sink) -> Config {
    Config::new()
        .jetstream(servers)
        .destination(Destination::http("hook", &format!("{}/in", sink.url)))
        .topic(Topic::new("orders").routes(["hook"]))
}

fn delivered_ids(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v["n"].to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_share_idempotency_keys_and_make_each_delivery_once() {
    let sink = Sink::start().await;
    let text = push_config(&servers(), &sink).build();
    let a = Gateway::start(&text).await;
    let b = Gateway::start(&text).await;
    let n = 40;
    let mut ids = HashMap::new();
    for i in 0..n {
        let (first, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let key = format!("key-{i}");
        let (s, v) = post(
            first.url("/v1/topics/orders/events"),
            json!({ "n": i }),
            &[("idempotency-key", &key)],
        )
        .await;
        assert_eq!(s, 202, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        // The same key through the other gateway is a duplicate of the
        // first acceptance, not a second event.
        let (s2, v2) = post(
            other.url("/v1/topics/orders/events"),
            json!({ "n": i }),
            &[("idempotency-key", &key)],
        )
        .await;
        assert_eq!(s2, 200, "{v2}");
        assert_eq!(v2["duplicate"], true, "{v2}");
        assert_eq!(v2["id"], id.as_str(), "{v2}");
        ids.insert(i, id);
    }
    sink.wait_for(n, WAIT).await;
    // Give a second delivery every chance to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = delivered_ids(&sink);
    assert_eq!(got.len(), n, "each event delivered exactly once: {got:?}");
    let distinct: HashSet<_> = got.iter().collect();
    assert_eq!(distinct.len(), n);
    // Either gateway answers for any event, with the history the other
    // wrote.
    let id = &ids[&3];
    for gw in [&a, &b] {
        let v: Value = client()
            .get(gw.url(&format!("/v1/events/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["deliveries"][0]["state"], "delivered", "{v}");
        assert_eq!(v["deliveries"][0]["attempts"][0]["status"], 200, "{v}");
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_back_off_and_end_in_a_dlq_either_gateway_replays() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(503));
    let text = Config::new()
        .jetstream(&servers())
        .destination(
            Destination::http("hook", &format!("{}/in", sink.url)).retry(
                "{ max_attempts = 3, initial = \"300ms\", multiplier = 1.0, max_delay = \"1s\" }",
            ),
        )
        .topic(Topic::new("orders").routes(["hook"]))
        .build();
    let a = Gateway::start(&text).await;
    let b = Gateway::start(&text).await;
    let (s, v) = post(a.url("/v1/topics/orders/events"), json!({"n": 1}), &[]).await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let dlq = eventually(WAIT, "the event in the DLQ", || async {
        let v: Value = client()
            .get(b.url("/v1/destinations/hook/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["entries"].as_array().is_some_and(|e| !e.is_empty())).then_some(v)
    })
    .await;
    assert_eq!(dlq["entries"][0]["id"], id.as_str(), "{dlq}");
    let times: Vec<Instant> = sink.received().iter().map(|r| r.at).collect();
    assert_eq!(times.len(), 3, "three attempts");
    assert!(
        times[1] - times[0] >= Duration::from_millis(250),
        "the retry waited its backoff: {:?}",
        times[1] - times[0]
    );
    let attempts: Value = client()
        .get(a.url(&format!("/v1/events/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        attempts["deliveries"][0]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{attempts}"
    );
    // Replayed through A, delivered (now that the sink answers 200).
    sink.set_default(Reply::status(200));
    let (s, v) = post(
        a.url("/v1/destinations/hook/dlq/replay"),
        json!({ "ids": [id] }),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    sink.wait_for(4, WAIT).await;
    eventually(WAIT, "the DLQ empty on B", || async {
        let v: Value = client()
            .get(b.url("/v1/destinations/hook/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["entries"]
            .as_array()
            .is_some_and(|e| e.is_empty())
            .then_some(())
    })
    .await;
    b.stop().await;
    a.stop().await;
}

/// A pull destination `jobs` on the cluster, fed by `work` (a topic
/// routed to it).
fn pull_text(work: Topic) -> String {
    Config::new()
        .jetstream(&servers())
        .destination(Destination::pull("jobs").set("visibility_timeout", quoted("30s")))
        .topic(work)
        .build()
}

async fn receive(gw: &Gateway, body: Value) -> Vec<Value> {
    let (s, v) = post(gw.url("/v1/queues/jobs/receive"), body, &[]).await;
    assert_eq!(s, 200, "{v}");
    v["messages"].as_array().unwrap().clone()
}

async fn settle(gw: &Gateway, op: &str, body: Value) -> Vec<Value> {
    let (s, v) = post(gw.url(&format!("/v1/queues/jobs/{op}")), body, &[]).await;
    assert_eq!(s, 200, "{v}");
    v["results"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_receipt_from_one_gateway_settles_on_the_other_and_stale_ones_settle_nothing() {
    let text = pull_text(Topic::new("work").routes(["jobs"]));
    let a = Gateway::start(&text).await;
    let b = Gateway::start(&text).await;
    let (s, _) = post(a.url("/v1/topics/work/events"), json!({"job": 1}), &[]).await;
    assert_eq!(s, 202);
    let got = eventually(WAIT, "a message on A", || async {
        let m = receive(&a, json!({"visibility_timeout_seconds": 2})).await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    let receipt = got[0]["receipt"].as_str().unwrap().to_owned();
    assert_eq!(got[0]["attempt"], 1);
    // Leased on A: B sees nothing while the 2 s last.
    assert!(receive(&b, json!({})).await.is_empty());
    // A forged receipt (right id, wrong nonce) settles nothing.
    let id = receipt.split('.').next().unwrap();
    let forged = format!("{id}.00000000deadbeef");
    let r = settle(&b, "ack", json!({"receipts": [forged]})).await;
    assert_eq!(r[0]["ok"], false, "{r:?}");
    // The real one settles on B.
    let r = settle(&b, "ack", json!({"receipts": [receipt]})).await;
    assert_eq!(r[0]["ok"], true, "{r:?}");
    // Acked: nothing comes back, on either gateway, after the lease.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(receive(&a, json!({})).await.is_empty());
    assert!(receive(&b, json!({})).await.is_empty());

    // A lease that runs out: the message goes to the next receiver, and
    // the first receipt is stale everywhere.
    let (s, _) = post(b.url("/v1/topics/work/events"), json!({"job": 2}), &[]).await;
    assert_eq!(s, 202);
    let first = eventually(WAIT, "job 2 on A", || async {
        let m = receive(&a, json!({"visibility_timeout_seconds": 1})).await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    let old = first[0]["receipt"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = receive(&b, json!({"visibility_timeout_seconds": 30})).await;
    assert_eq!(again.len(), 1, "visible again after its lease");
    assert_eq!(again[0]["attempt"], 2, "its second receive");
    let fresh = again[0]["receipt"].as_str().unwrap().to_owned();
    let r = settle(&a, "ack", json!({"receipts": [old]})).await;
    assert_eq!(r[0]["ok"], false, "{r:?}");
    assert!(r[0]["error"].as_str().unwrap().contains("stale"), "{r:?}");
    // Nack on A with a delay: hidden for it, then visible with attempt 3.
    let r = settle(&a, "nack", json!({"receipts": [fresh], "delay_seconds": 1})).await;
    assert_eq!(r[0]["ok"], true, "{r:?}");
    assert!(
        receive(&b, json!({})).await.is_empty(),
        "hidden during the nack's delay"
    );
    let third = eventually(WAIT, "job 2 after the nack's delay", || async {
        let m = receive(&b, json!({"visibility_timeout_seconds": 2})).await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(third[0]["attempt"], 3);
    let receipt = third[0]["receipt"].as_str().unwrap().to_owned();
    // Extended through A past its 2 s: still leased at 3 s, then acked.
    let r = settle(
        &a,
        "extend",
        json!({"receipts": [receipt.clone()], "visibility_timeout_seconds": 20}),
    )
    .await;
    assert_eq!(r[0]["ok"], true, "{r:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        receive(&a, json!({})).await.is_empty(),
        "the extension holds"
    );
    let r = settle(&a, "ack", json!({"receipts": [receipt]})).await;
    assert_eq!(r[0]["ok"], true, "{r:?}");
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_through_one_gateway_holds_delivery_through_every_gateway() {
    let sink = Sink::start().await;
    let text = push_config(&servers(), &sink).build();
    let a = Gateway::start(&text).await;
    let b = Gateway::start(&text).await;
    let (s, v) = post(a.url("/v1/destinations/hook/pause"), json!({}), &[]).await;
    assert_eq!(s, 200, "{v}");
    // B's status follows the flag A wrote.
    eventually(Duration::from_secs(10), "B to show the pause", || async {
        let v: Value = client()
            .get(b.url("/v1/destinations"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let d = v["destinations"]
            .as_array()?
            .iter()
            .find(|d| d["name"] == "hook")?
            .clone();
        (d["paused"] == true).then_some(())
    })
    .await;
    for i in 0..5 {
        let (s, _) = post(b.url("/v1/topics/orders/events"), json!({ "n": i }), &[]).await;
        assert_eq!(s, 202);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        sink.received().is_empty(),
        "paused: nothing delivered by either gateway"
    );
    let (s, v) = post(a.url("/v1/destinations/hook/resume"), json!({}), &[]).await;
    assert_eq!(s, 200, "{v}");
    sink.wait_for(5, WAIT).await;
    b.stop().await;
    a.stop().await;
}

/// The server answers a resume once it is proposed, and each band's
/// consumer applies it on its own a moment later: the resume must wait
/// for every band, or the first receive after it finds the urgent band
/// still shut and hands out a lower one first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resumed_destination_hands_out_its_most_urgent_entries_first() {
    let text = pull_text(
        Topic::new("work")
            .routes(["jobs"])
            .set("priority_header", quoted("x-priority")),
    );
    let gw = Gateway::start(&text).await;
    let (s, v) = post(gw.url("/v1/destinations/jobs/pause"), json!({}), &[]).await;
    assert_eq!(s, 200, "{v}");
    for (n, p) in [(1, "1"), (2, "5"), (3, "9"), (4, "1"), (5, "5"), (6, "9")] {
        let (s, v) = post(
            gw.url("/v1/topics/work/events"),
            json!({ "n": n }),
            &[("x-priority", p)],
        )
        .await;
        assert_eq!(s, 202, "{v}");
    }
    eventually(WAIT, "six entries queued", || async {
        let v = switchyard_tests::get_json(gw.url("/v1/destinations/jobs")).await;
        (v["queue_depth"] == 6).then_some(())
    })
    .await;
    assert!(
        receive(&gw, json!({"max_messages": 6})).await.is_empty(),
        "paused: nothing handed out"
    );
    let (s, v) = post(gw.url("/v1/destinations/jobs/resume"), json!({}), &[]).await;
    assert_eq!(s, 200, "{v}");
    // At once: every band is open when the resume has answered.
    let got: Vec<i64> = receive(&gw, json!({"max_messages": 6}))
        .await
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
            body["n"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(got, vec![3, 6, 2, 5, 1, 4], "by priority, then in order");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_registered_through_one_gateway_validates_on_the_other_at_once() {
    let sink = Sink::start().await;
    let text = push_config(&servers(), &sink)
        .topic(Topic::new("typed").routes(["hook"]).schema("typed-value"))
        .build();
    let a = Gateway::start(&text).await;
    let b = Gateway::start(&text).await;
    let schema = json!({
        "type": "object",
        "properties": { "n": { "type": "integer" } },
        "required": ["n"]
    });
    let register = |gw: &Gateway, schema: &Value| {
        let url = gw.url("/registry/subjects/typed-value/versions");
        let body = json!({ "schemaType": "JSON", "schema": schema.to_string() });
        async move { post(url, body, &[]).await }
    };
    let (s, v) = register(&a, &schema).await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_u64().unwrap();
    // No waiting: B loads what A registered when it misses it.
    let (s, v) = post(b.url("/v1/topics/typed/events"), json!({ "n": 1 }), &[]).await;
    assert_eq!(s, 202, "{v}");
    let (s, v) = post(b.url("/v1/topics/typed/events"), json!({ "n": "x" }), &[]).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "schema_mismatch", "{v}");
    let got: Value = client()
        .get(b.url(&format!("/registry/schemas/ids/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["schemaType"], "JSON", "{got}");
    // Registered again through B: the same id, no second version.
    let (s, v) = register(&b, &schema).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"].as_u64(), Some(id), "{v}");
    let r = client()
        .put(a.url("/registry/config/typed-value"))
        .json(&json!({ "compatibility": "NONE" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Two gateways registering different schemas at once hand out
    // distinct ids and versions: the registry is one compare-and-set.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let gw = if i % 2 == 0 { a.url("") } else { b.url("") };
        let body = json!({ "schemaType": "JSON", "schema": json!({
            "type": "object",
            "properties": { "n": { "type": "integer" }, format!("f{i}"): { "type": "string" } },
            "required": ["n"]
        }).to_string() });
        tasks.push(tokio::spawn(async move {
            post(
                format!("{gw}/registry/subjects/typed-value/versions"),
                body,
                &[],
            )
            .await
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 200, "{v}");
        assert!(
            ids.insert(v["id"].as_u64().unwrap()),
            "an id handed out twice: {v}"
        );
    }
    // Every version landed; A shows those B wrote within a second.
    eventually(Duration::from_secs(10), "seven versions on A", || async {
        let v: Value = client()
            .get(a.url("/registry/subjects/typed-value/versions"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (v == json!([1, 2, 3, 4, 5, 6, 7])).then_some(())
    })
    .await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_mid_delivery_leaves_its_work_to_the_others() {
    let sink = Sink::start().await;
    // Slow answers keep attempts in flight when the first gateway dies.
    sink.set_default(Reply::status(200).delay(Duration::from_millis(300)));
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let base = push_config(&servers(), &sink);
    let cfg_a = dir_a.path().join("a.toml");
    let cfg_b = dir_b.path().join("b.toml");
    std::fs::write(
        &cfg_a,
        base.clone().for_process(&dir_a.path().join("data")).build(),
    )
    .unwrap();
    std::fs::write(&cfg_b, base.for_process(&dir_b.path().join("data")).build()).unwrap();
    let a = Process::start(&cfg_a);
    let n = 30;
    let batch: Vec<Value> = (0..n).map(|i| json!({ "n": i })).collect();
    let r = client()
        .post(a.url("/v1/topics/orders/events/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Some delivered, some in flight: then SIGKILL.
    sink.wait_for(3, WAIT).await;
    a.kill9();
    let b = Process::start(&cfg_b);
    let started = Instant::now();
    eventually(Duration::from_secs(60), "every event delivered", || async {
        let got: HashSet<String> = delivered_ids(&sink).into_iter().collect();
        (got.len() == n).then_some(())
    })
    .await;
    let took = started.elapsed();
    let total = sink.received().len();
    // At-least-once: what A had in flight (at most the destination's
    // concurrency, 16 by default) may have reached the sink before A died,
    // and is delivered again by B. Nothing else repeats.
    assert!(
        total <= n + 16,
        "duplicates stay bounded by what was in flight: {total} deliveries of {n}"
    );
    eprintln!("B finished A's work {took:?} after the kill; {total} deliveries of {n}");
    let _ = b.sigterm();
    let _ = path;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_queue_leader_loses_no_acknowledged_event() {
    let cluster = Cluster::start();
    let sink = Sink::start().await;
    let text = push_config(&cluster.servers(), &sink)
        .store("request_timeout", quoted("3s"))
        .build();
    let gw = Gateway::start(&text).await;
    let prefix = text
        .lines()
        .find_map(|l| l.strip_prefix("prefix = "))
        .unwrap()
        .trim_matches('"')
        .to_ascii_uppercase();
    let mut accepted = Vec::new();
    let mut refused = 0;
    let mut longest = Duration::ZERO;
    let mut last_ok = Instant::now();
    let mut killed = None;
    for i in 0..120 {
        if i == 40 {
            let leader = cluster
                .stream_leader(&format!("{prefix}_Q"))
                .expect("the queue stream has a leader");
            cluster.kill(leader);
            killed = Some(leader);
        }
        // A sender retries (same idempotency key) until it gets a 2xx.
        let key = format!("k{i}");
        loop {
            let r = client()
                .post(gw.url("/v1/topics/orders/events"))
                .header("idempotency-key", &key)
                .json(&json!({ "n": i }))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    accepted.push(i);
                    longest = longest.max(last_ok.elapsed());
                    last_ok = Instant::now();
                    break;
                }
                _ => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    assert_eq!(accepted.len(), 120);
    assert!(
        longest < Duration::from_secs(20),
        "ingest came back within seconds: the longest gap was {longest:?}"
    );
    eventually(
        Duration::from_secs(60),
        "every accepted event delivered",
        || async {
            let got: HashSet<String> = delivered_ids(&sink).into_iter().collect();
            (got.len() == accepted.len()).then_some(())
        },
    )
    .await;
    let total = sink.received().len();
    eprintln!(
        "leader n{} killed: longest ingest gap {longest:?}, {refused} refused tries, {total} deliveries of 120",
        killed.unwrap()
    );
    assert!(
        total <= 130,
        "duplicates stay rare: {total} deliveries of 120"
    );
    cluster.restart(killed.unwrap());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_without_a_setting_the_gateway_needs_is_refused_at_start_naming_it() {
    let servers = servers();
    let base = Config::new()
        .jetstream(&servers)
        .destination(Destination::log("log"))
        .topic(Topic::new("t").routes(["log"]));
    let text = base.build();
    let prefix = text
        .lines()
        .find_map(|l| l.strip_prefix("prefix = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    // Someone made the queue stream first, without scheduled messages.
    let (ok, out) = run_python(
        "js_stream.py",
        &json!({
            "servers": servers,
            "config": {
                "name": format!("{}_Q", prefix.to_ascii_uppercase()),
                "subjects": [format!("{prefix}.q.>")],
                "retention": "workqueue",
                "storage": "file",
                "num_replicas": 1,
            }
        }),
    );
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, switchyard_tests::fill(&text, dir.path().join("d"))).unwrap();
    let config = switchyard::config::Config::load(&path).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = switchyard::run(config, listener, std::future::pending::<()>())
        .await
        .expect_err("the gateway must refuse to start");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{}_Q", prefix.to_ascii_uppercase()))
            && msg.contains("allow_msg_schedules"),
        "{msg}"
    );
}

/// Replicas of a deployment start together: each creates or checks the
/// same streams and consumers (an ordered destination pins the route
/// consumer too) at the same moment, and every one must come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateways_starting_at_the_same_moment_all_come_up() {
    let sink = Sink::start().await;
    for _ in 0..3 {
        let text = ordered_config(&servers(), &sink)
            .destination(Destination::http("hook", &format!("{}/in", sink.url)))
            .topic(Topic::new("orders").routes(["hook"]))
            .build();
        let (a, b, c) = tokio::join!(
            Gateway::start(&text),
            Gateway::start(&text),
            Gateway::start(&text)
        );
        for gw in [&a, &b, &c] {
            let (s, v) = post(
                gw.url("/v1/topics/payments/events"),
                json!({ "account": "a" }),
                &[("x-account", "a")],
            )
            .await;
            assert_eq!(s, 202, "{v}");
        }
        tokio::join!(a.stop(), b.stop(), c.stop());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_key_order_holds_while_two_gateways_deliver() {
    let sink = Sink::start().await;
    // The first key's head fails twice: its followers wait for it on both
    // gateways, while the other keys go on.
    sink.script([Reply::status(503), Reply::status(503)]);
    let text = Config::new()
        .jetstream(&servers())
        .destination(
            Destination::http("ledger", &format!("{}/in", sink.url))
                .retry("{ initial = \"200ms\", multiplier = 1.0 }")
                .ordered_by_header("x-account"),
        )
        .topic(Topic::new("payments").routes(["ledger"]))
        .build();
    let a = Gateway::start(&text).await;
    let b = Gateway::start(&text).await;
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..6 {
        for (n, acct) in ["a", "b", "c"].into_iter().enumerate() {
            let gw = if (i + n) % 2 == 0 { &a } else { &b };
            let (s, v) = post(
                gw.url("/v1/topics/payments/events"),
                json!({ "account": acct, "i": i }),
                &[("x-account", acct)],
            )
            .await;
            assert_eq!(s, 202, "{v}");
            sent.entry(acct.into())
                .or_default()
                .push(v["id"].as_str().unwrap().to_owned());
        }
        // No pause between them: with an ordered destination one gateway
        // routes at a time, in the order the cluster accepted the events.
    }
    // Batches in turn through each gateway: a backlog that routers sharing
    // the work would split between them and route side by side.
    for round in 0..4 {
        let gw = if round % 2 == 0 { &a } else { &b };
        let batch: Vec<Value> = (0..60).map(|i| json!({ "account": "d", "i": i })).collect();
        let r = client()
            .post(gw.url("/v1/topics/payments/events/batch"))
            .header("x-account", "d")
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        let ids = v["ids"].as_array().unwrap().iter();
        sent.entry("d".into())
            .or_default()
            .extend(ids.map(|id| id.as_str().unwrap().to_owned()));
    }
    // 18 + 240 events, the failing head's retries counted once.
    let deadline = std::time::Instant::now() + WAIT;
    let seen = loop {
        let seen = switchyard_tests::order_by_key(&sink.received(), "x-account");
        if seen.values().map(Vec::len).sum::<usize>() >= 18 + 240
            || std::time::Instant::now() > deadline
        {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    for (acct, ids) in &sent {
        let got = seen.get(acct).cloned().unwrap_or_default();
        if &got != ids {
            let pos = |id: &String| ids.iter().position(|x| x == id);
            let got: Vec<_> = got.iter().map(pos).collect();
            panic!(
                "key {acct}: sent {} delivered {} in this order of sending: {got:?}",
                ids.len(),
                got.len()
            );
        }
    }
    let v = switchyard_tests::get_json(b.url("/v1/destinations")).await;
    assert_eq!(v["destinations"][0]["blocked_keys"], 0, "{v}");
    b.stop().await;
    a.stop().await;
}

fn ordered_config(servers: &[String], sink: &Sink) -> Config {
    Config::new()
        .jetstream(servers)
        .destination(
            Destination::http("ledger", &format!("{}/in", sink.url)).ordered_by_header("x-account"),
        )
        .topic(Topic::new("payments").routes(["ledger"]))
}

/// Posts event `i` of key `acct` and records its id under the key.
async fn post_keyed(
    url: &str,
    acct: &str,
    i: usize,
    sent: &mut HashMap<String, Vec<String>>,
) -> Result<(), String> {
    let r = client()
        .post(format!("{url}/v1/topics/payments/events"))
        .header("x-account", acct)
        .json(&json!({ "account": acct, "i": i }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 202 {
        return Err(format!("status {}", r.status()));
    }
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    sent.entry(acct.into())
        .or_default()
        .push(v["id"].as_str().unwrap().to_owned());
    Ok(())
}

fn pinned(p: &Process) -> bool {
    p.logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("now the pinned puller"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routing_moves_to_the_other_gateway_when_the_pinned_one_is_killed_and_keeps_each_keys_order()
 {
    let sink = Sink::start().await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    // The pin moves after ack_wait + 5 s.
    let base = ordered_config(&servers(), &sink).store("ack_wait", quoted("2s"));
    let (cfg_a, cfg_b) = (dir_a.path().join("a.toml"), dir_b.path().join("b.toml"));
    std::fs::write(
        &cfg_a,
        base.clone().for_process(&dir_a.path().join("data")).build(),
    )
    .unwrap();
    std::fs::write(&cfg_b, base.for_process(&dir_b.path().join("data")).build()).unwrap();
    let mut gws = vec![Process::start(&cfg_a), Process::start(&cfg_b)];
    let keys = ["a", "b", "c"];
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    let mut n = 0;
    for i in 0..5 {
        for (k, acct) in keys.into_iter().enumerate() {
            post_keyed(&gws[(i + k) % 2].url(""), acct, n, &mut sent)
                .await
                .unwrap();
            n += 1;
        }
    }
    sink.wait_for(n, WAIT).await;
    let p = gws
        .iter()
        .position(pinned)
        .expect("one gateway holds the pin");
    assert!(!pinned(&gws[1 - p]), "only one gateway is pinned");
    let pinned_gw = gws.remove(p);
    let survivor = gws.pop().unwrap();
    // Events keep coming through the survivor while the pinned one dies.
    let url = survivor.url("");
    let mut later = HashMap::new();
    let first = n;
    let poster = tokio::spawn(async move {
        for i in first..first + 30 {
            post_keyed(&url, keys[i % 3], i, &mut later).await.unwrap();
        }
        later
    });
    eventually(WAIT, "some events posted after the first round", || async {
        (sink.received().len() > n + 3).then_some(())
    })
    .await;
    let killed = Instant::now();
    pinned_gw.kill9();
    for (k, ids) in poster.await.unwrap() {
        sent.entry(k).or_default().extend(ids);
    }
    let total = n + 30;
    eventually(Duration::from_secs(60), "every event delivered", || async {
        let got = switchyard_tests::order_by_key(&sink.received(), "x-account");
        (got.values().map(Vec::len).sum::<usize>() == total).then_some(())
    })
    .await;
    eprintln!(
        "every event delivered {:?} after the kill",
        killed.elapsed()
    );
    let seen = switchyard_tests::order_by_key(&sink.received(), "x-account");
    for (acct, ids) in &sent {
        assert_eq!(
            seen.get(acct),
            Some(ids),
            "order of key {acct} across the kill"
        );
    }
    assert!(pinned(&survivor), "the survivor took the pin");
    let _ = survivor.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pinned_gateway_that_stops_cleanly_hands_routing_over_at_once() {
    let sink = Sink::start().await;
    // A pin lost without a word would move only after 25 s.
    let text = ordered_config(&servers(), &sink)
        .store("ack_wait", quoted("20s"))
        .build();
    let a = Gateway::start(&text).await;
    let mut sent = HashMap::new();
    // Routed by A, the only gateway: A holds the pin.
    post_keyed(&a.url(""), "a", 0, &mut sent).await.unwrap();
    sink.wait_for(1, WAIT).await;
    let b = Gateway::start(&text).await;
    a.stop().await;
    let stopped = Instant::now();
    post_keyed(&b.url(""), "a", 1, &mut sent).await.unwrap();
    sink.wait_for(2, WAIT).await;
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "routing resumed {took:?} after A stopped: the pin was not released"
    );
    let seen = switchyard_tests::order_by_key(&sink.received(), "x-account");
    assert_eq!(seen.get("a"), sent.get("a"));
    b.stop().await;
}

/// The route consumer's config as the server holds it.
fn route_consumer_config(servers: &[String], prefix: &str) -> Value {
    let stream = format!("{}_EV", prefix.to_ascii_uppercase());
    let (ok, out) = run_python(
        "js_api.py",
        &json!({ "servers": servers, "subject": format!("CONSUMER.INFO.{stream}.route") }),
    );
    assert!(ok, "consumer info: {out}");
    serde_json::from_str::<Value>(&out).unwrap()["config"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_that_adds_an_ordered_destination_pins_routing() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = switchyard_tests::nats::fresh_prefix();
    let plain = push_config(&servers(), &sink).store("prefix", quoted(&prefix));
    let ordered = plain
        .clone()
        .destination(
            Destination::http("ledger", &format!("{}/ledger", sink.url))
                .ordered_by_header("x-account"),
        )
        .topic(Topic::new("payments").routes(["ledger"]));
    let cfg = dir.path().join("gw.toml");
    let data = dir.path().join("data");
    std::fs::write(&cfg, plain.for_process(&data).build()).unwrap();
    let gw = Process::start(&cfg);
    // No ordered destination: every gateway routes a share.
    let before = route_consumer_config(&servers(), &prefix);
    assert!(before.get("priority_policy").is_none(), "{before}");
    std::fs::write(&cfg, ordered.for_process(&data).build()).unwrap();
    let r = client()
        .post(gw.url("/v1/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = route_consumer_config(&servers(), &prefix);
    assert_eq!(after["priority_policy"], "pinned_client", "{after}");
    assert_eq!(after["priority_groups"], json!(["route"]), "{after}");
    // ack_wait (5 s in tests) + 5 s.
    assert_eq!(
        after["priority_timeout"],
        json!(10_000_000_000u64),
        "{after}"
    );
    // Routing goes on through the pin.
    let (s, v) = post(
        gw.url("/v1/topics/payments/events"),
        json!({ "account": "a" }),
        &[("x-account", "a")],
    )
    .await;
    assert_eq!(s, 202, "{v}");
    sink.wait_for(1, WAIT).await;
    let _ = gw.sigterm();
}
