//! `switchyard migrate`: a single node's data dir moved into the JetStream
//! cluster (the run's, `SWITCHYARD_NATS`), then served by two gateways.
//! Everything the node kept arrives: queued entries with their priority,
//! due time and attempts, unrouted events, DLQs, paused flags, attempt
//! history, the registry with the same ids, live idempotency keys. A second
//! run changes nothing, an interrupted one resumes, and a data dir in use
//! is refused.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::{EventMeta, NewEvent};
use switchyard_store::{Appended, EventLog, Routing};
use switchyard_store_fjall::{Durability, FjallStore};
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::nats::servers;
use switchyard_tests::{
    Gateway, Process, Reply, Sink, bin, eventually, get_json as get, order_by_key,
    post_json as post,
};

const WAIT: Duration = Duration::from_secs(30);

/// `switchyard migrate --from <dir> --config <file> [extra]`.
fn migrate(from: &Path, config: &Path, extra: &[&str]) -> Output {
    Command::new(bin())
        .arg("migrate")
        .arg("--from")
        .arg(from)
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The same destinations and topics on either backend: `hook` (push, retries
/// with backoff), `dead` (one attempt, then its DLQ), `held` (paused before
/// the move, with priorities).
fn gateway_config(base: Config, hook: &Sink, dead: &Sink, held: &Sink) -> Config {
    base.destination(
        Destination::http("hook", &format!("{}/in", hook.url))
            .retry("{ max_attempts = 20, initial = \"1s\", multiplier = 1.0, max_delay = \"1s\" }"),
    )
    .destination(
        Destination::http("dead", &format!("{}/in", dead.url)).retry("{ max_attempts = 1 }"),
    )
    // One at a time, so the order it delivers in is the order it takes in.
    .destination(Destination::http("held", &format!("{}/in", held.url)).set("concurrency", "1"))
    .topic(Topic::new("orders").routes(["hook"]))
    .topic(Topic::new("failing").routes(["dead"]))
    .topic(
        Topic::new("bulk")
            .routes(["held"])
            .set("priority_header", quoted("x-priority")),
    )
}

fn ns(received: &[switchyard_tests::Received]) -> Vec<i64> {
    received
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_node_moves_into_the_cluster_with_everything_it_kept() {
    let (hook, dead, held) = (
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
    );
    hook.set_default(Reply::status(503));
    dead.set_default(Reply::status(500));

    // The single node, on fjall.
    let fjall_text = gateway_config(Config::new(), &hook, &dead, &held).build();
    let node = Gateway::start(&fjall_text).await;
    let schema_a = json!({"type": "object", "properties": {"n": {"type": "integer"}}}).to_string();
    let schema_b = json!({"type": "object", "properties": {"m": {"type": "string"}}}).to_string();
    let (s, v) = post(
        node.url("/registry/subjects/orders-value/versions"),
        json!({ "schemaType": "JSON", "schema": schema_a }),
        &[],
    )
    .await;
    assert_eq!((s, v["id"].as_u64()), (200, Some(1)), "{v}");
    let (s, v) = post(
        node.url("/registry/subjects/other-value/versions"),
        json!({ "schemaType": "JSON", "schema": schema_b }),
        &[],
    )
    .await;
    assert_eq!((s, v["id"].as_u64()), (200, Some(2)), "{v}");
    let (s, v) = post(node.url("/v1/destinations/held/pause"), json!({}), &[]).await;
    assert_eq!(s, 200, "{v}");
    let mut hook_ids = Vec::new();
    for n in 0..6 {
        let key = format!("order-{n}");
        let (s, v) = post(
            node.url("/v1/topics/orders/events"),
            json!({ "n": n }),
            &[("idempotency-key", &key)],
        )
        .await;
        assert_eq!(s, 202, "{v}");
        hook_ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let mut dead_ids = Vec::new();
    for n in 100..102 {
        let (s, v) = post(
            node.url("/v1/topics/failing/events"),
            json!({ "n": n }),
            &[],
        )
        .await;
        assert_eq!(s, 202, "{v}");
        dead_ids.push(v["id"].as_str().unwrap().to_owned());
    }
    for (n, p) in [(200, "1"), (201, "9"), (202, "5")] {
        let (s, v) = post(
            node.url("/v1/topics/bulk/events"),
            json!({ "n": n }),
            &[("x-priority", p)],
        )
        .await;
        assert_eq!(s, 202, "{v}");
    }
    // Every hook event attempted at least once (a 503), both dead ones in
    // the DLQ.
    eventually(WAIT, "first attempts and dead letters", || async {
        let dlq = get(node.url("/v1/destinations/dead/dlq")).await;
        let seen: HashSet<i64> = ns(&hook.received()).into_iter().collect();
        (seen.len() == 6 && dlq["entries"].as_array().is_some_and(|e| e.len() == 2)).then_some(())
    })
    .await;
    let dir = node.stop().await;
    let data = dir.path().join("data");
    // Two events accepted and not yet routed (the node stopped between
    // storing and routing them), written as the node would have.
    {
        let store = FjallStore::open(&data, Durability::Sync).unwrap();
        let events = (300..302)
            .map(|n| NewEvent {
                meta: EventMeta {
                    content_type: "application/json".into(),
                    ..Default::default()
                },
                payload: format!("{{\"n\":{n}}}").into(),
            })
            .collect();
        let got = store
            .append(
                "orders",
                None,
                Duration::from_secs(60),
                events,
                Routing::Pending,
            )
            .await
            .unwrap();
        assert!(matches!(got, Appended::New { .. }));
    }
    let attempts_before = hook.received().len();

    // The move.
    let cluster_text =
        gateway_config(Config::new().jetstream(&servers()), &hook, &dead, &held).build();
    let cluster_file = dir.path().join("cluster.toml");
    std::fs::write(&cluster_file, &cluster_text).unwrap();
    let out = migrate(&data, &cluster_file, &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let said = text(&out.stdout);
    assert!(said.contains("13 events"), "{said}");
    assert!(
        said.contains("2 of the events had not been routed when"),
        "{said}"
    );
    assert!(said.contains("2 schemas"), "{said}");
    assert!(said.contains("1 paused"), "{said}");
    assert!(
        !data
            .join(format!("migrate-{}.json", prefix_of(&cluster_text)))
            .exists(),
        "a finished run leaves no checkpoint"
    );
    // Again: nothing new is written.
    let again = migrate(&data, &cluster_file, &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let log = text(&again.stderr);
    assert!(
        log.contains("events: 0 written, 13 already in the cluster"),
        "{log}"
    );
    assert!(
        log.contains("idempotency keys: 0 written, 6 already"),
        "{log}"
    );

    // Two gateways serve it, and the receivers are back.
    hook.set_default(Reply::status(200));
    dead.set_default(Reply::status(200));
    let a = Gateway::start(&cluster_text).await;
    let b = Gateway::start(&cluster_text).await;
    // The six retried events and the two that were never routed: each
    // delivered once.
    eventually(WAIT, "the backlog delivered", || async {
        let ok: Vec<i64> = hook
            .received()
            .iter()
            .skip(attempts_before)
            .map(|r| {
                serde_json::from_slice::<Value>(&r.body).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        (ok.len() >= 8).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut after: Vec<i64> = ns(&hook.received()[attempts_before..]);
    after.sort();
    assert_eq!(after, vec![0, 1, 2, 3, 4, 5, 300, 301], "each once");
    // The history kept its attempts: the node's 503s, then the cluster's 200.
    let ev = get(b.url(&format!("/v1/events/{}", hook_ids[0]))).await;
    let d = &ev["deliveries"][0];
    assert_eq!(d["state"], "delivered", "{ev}");
    let statuses: Vec<u64> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64().unwrap_or(0))
        .collect();
    assert!(statuses.len() >= 2 && statuses[0] == 503, "{ev}");
    assert_eq!(*statuses.last().unwrap(), 200, "{ev}");
    let numbers: Vec<u64> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "{ev}"
    );
    // The DLQ came along, and replays through either gateway.
    let dlq = get(a.url("/v1/destinations/dead/dlq")).await;
    let listed: HashSet<&str> = dlq["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        dead_ids.iter().map(String::as_str).collect(),
        "{dlq}"
    );
    let (s, v) = post(b.url("/v1/destinations/dead/dlq/replay"), json!({}), &[]).await;
    assert_eq!(s, 200, "{v}");
    eventually(WAIT, "the replayed dead letters delivered", || async {
        // Two failed attempts on the node, then the two replays.
        (dead.received().len() >= 4).then_some(())
    })
    .await;
    // Still paused on the cluster; resumed, its entries go urgent first.
    let dests = get(a.url("/v1/destinations")).await;
    let h = dests["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "held")
        .unwrap()
        .clone();
    assert_eq!(h["paused"], true, "{dests}");
    assert!(held.received().is_empty(), "paused: nothing delivered");
    let (s, v) = post(a.url("/v1/destinations/held/resume"), json!({}), &[]).await;
    assert_eq!(s, 200, "{v}");
    held.wait_for(3, WAIT).await;
    assert_eq!(ns(&held.received())[0], 201, "priority 9 first");
    // The registry kept its ids, and the next one follows them.
    let s1 = get(b.url("/registry/schemas/ids/1")).await;
    assert_eq!(s1["schema"].as_str(), Some(schema_a.as_str()), "{s1}");
    let schema_c = json!({"type": "object", "properties": {"k": {"type": "boolean"}}}).to_string();
    let (s, v) = post(
        a.url("/registry/subjects/third-value/versions"),
        json!({ "schemaType": "JSON", "schema": schema_c }),
        &[],
    )
    .await;
    assert_eq!((s, v["id"].as_u64()), (200, Some(3)), "{v}");
    // A resend of a key the node accepted is still a duplicate of it.
    let (s, v) = post(
        b.url("/v1/topics/orders/events"),
        json!({ "n": 2 }),
        &[("idempotency-key", "order-2")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"].as_str(), Some(hook_ids[2].as_str()), "{v}");
    b.stop().await;
    a.stop().await;
}

/// The `[store] prefix` in config text.
fn prefix_of(text: &str) -> String {
    let v: toml::Value = toml::from_str(text).unwrap();
    v["store"]["prefix"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_migration_resumes_and_delivers_everything_once() {
    let hook = Sink::start().await;
    let base = |c: Config| {
        c.destination(Destination::http("hook", &format!("{}/in", hook.url)))
            .topic(Topic::new("orders").routes(["hook"]))
    };
    let node = Gateway::start(&base(Config::new()).build()).await;
    let (s, _) = post(node.url("/v1/destinations/hook/pause"), json!({}), &[]).await;
    assert_eq!(s, 200);
    let n = 3000;
    for chunk in (0..n).collect::<Vec<i64>>().chunks(500) {
        let body: Vec<Value> = chunk.iter().map(|n| json!({ "n": n })).collect();
        let (s, v) = post(node.url("/v1/topics/orders/events/batch"), json!(body), &[]).await;
        assert_eq!(s, 202, "{v}");
    }
    eventually(WAIT, "the backlog routed", || async {
        let q = get(node.url("/v1/destinations/hook")).await;
        (q["queue_depth"].as_u64() == Some(n as u64)).then_some(())
    })
    .await;
    let dir = node.stop().await;
    let data = dir.path().join("data");
    let cluster_text = base(Config::new().jetstream(&servers())).build();
    let cluster_file = dir.path().join("cluster.toml");
    std::fs::write(&cluster_file, &cluster_text).unwrap();
    let checkpoint = data.join(format!("migrate-{}.json", prefix_of(&cluster_text)));

    // Killed after its first steps.
    let mut child = Command::new(bin())
        .args(["migrate", "--batch", "50", "--from"])
        .arg(&data)
        .arg("--config")
        .arg(&cluster_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("migrate said nothing").unwrap();
        if line.starts_with("events: ") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        checkpoint.exists(),
        "an interrupted run leaves its checkpoint"
    );
    let cp: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert!(cp["events_after"].is_string(), "{cp}");

    // Run again: it goes on from there, and finishes.
    let out = migrate(&data, &cluster_file, &["--batch", "500"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("{n} queue entries")),
        "{}",
        text(&out.stdout)
    );
    assert!(!checkpoint.exists());

    let a = Gateway::start(&cluster_text).await;
    let (s, v) = post(a.url("/v1/destinations/hook/resume"), json!({}), &[]).await;
    assert_eq!(s, 200, "{v}");
    hook.wait_for(n as usize, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = ns(&hook.received());
    let distinct: HashSet<i64> = got.iter().copied().collect();
    assert_eq!(distinct.len(), n as usize, "every event delivered");
    assert_eq!(got.len(), n as usize, "none twice");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_refuses_a_data_dir_in_use_and_a_config_without_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fjall_file = dir.path().join("single.toml");
    std::fs::write(
        &fjall_file,
        Config::new()
            .topic(Topic::new("orders"))
            .for_process(&data)
            .build(),
    )
    .unwrap();
    let cluster_file = dir.path().join("cluster.toml");
    std::fs::write(
        &cluster_file,
        Config::new()
            .jetstream(&servers())
            .topic(Topic::new("orders"))
            .build(),
    )
    .unwrap();

    // Not a data dir.
    let out = migrate(&dir.path().join("nothing"), &cluster_file, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not a Switchyard data dir"),
        "{}",
        text(&out.stderr)
    );

    // A gateway runs on it.
    let gw = Process::start(&fjall_file);
    let out = migrate(&data, &cluster_file, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("another switchyard process")
            && err.contains(&format!("pid {}", gw.child.id())),
        "{err}"
    );
    gw.sigterm();

    // A config whose store is not a cluster.
    let out = migrate(&data, &fjall_file, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("backend = \"jetstream\""),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_queue_moves_key_by_key_and_keeps_its_order() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(503));
    let base = |c: Config| {
        c.destination(
            Destination::http("ledger", &format!("{}/in", sink.url))
                .retry("{ max_attempts = 50, initial = \"1s\", multiplier = 1.0 }")
                .ordered_by_header("x-account"),
        )
        .topic(Topic::new("payments").routes(["ledger"]))
    };
    let node = Gateway::start(&base(Config::new()).build()).await;
    let mut sent: std::collections::HashMap<String, Vec<String>> = Default::default();
    for i in 0..4 {
        for acct in ["a", "b", "c"] {
            let (s, v) = post(
                node.url("/v1/topics/payments/events"),
                json!({ "account": acct, "i": i }),
                &[("x-account", acct)],
            )
            .await;
            assert_eq!(s, 202, "{v}");
            sent.entry(acct.into())
                .or_default()
                .push(v["id"].as_str().unwrap().to_owned());
        }
    }
    // All twelve routed (an event accepted but not yet routed travels as
    // an event, not a queue entry), and each key's head failed at least
    // once; the rest wait behind it.
    eventually(WAIT, "the events routed", || async {
        let q = get(node.url("/v1/destinations/ledger")).await;
        (q["queue_depth"].as_u64() == Some(12)).then_some(())
    })
    .await;
    eventually(WAIT, "the heads attempted", || async {
        let keys: HashSet<String> = sink
            .received()
            .iter()
            .filter_map(|r| r.header("x-account").map(String::from))
            .collect();
        (keys.len() == 3).then_some(())
    })
    .await;
    let dir = node.stop().await;
    let data = dir.path().join("data");
    let before = sink.received().len();
    let cluster_text = base(Config::new().jetstream(&servers())).build();
    let cluster_file = dir.path().join("cluster.toml");
    std::fs::write(&cluster_file, &cluster_text).unwrap();
    let out = migrate(&data, &cluster_file, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("12 queue entries"),
        "{}",
        text(&out.stdout)
    );

    sink.set_default(Reply::status(200));
    let a = Gateway::start(&cluster_text).await;
    let got = sink.wait_for(before + 12, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = order_by_key(&got[before..], "x-account");
    for (acct, ids) in &sent {
        assert_eq!(
            seen.get(acct),
            Some(ids),
            "order of key {acct} after the move"
        );
    }
    assert_eq!(sink.received().len(), before + 12, "each once");
    a.stop().await;
}
