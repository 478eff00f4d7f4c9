//! Wasm plugins through the real gateway: the example plugins built from
//! `plugins/` change where and how events arrive at real sinks; a hostile
//! plugin is cut off and its events follow `on_error` while other topics
//! keep flowing; a topic DLQ replay runs the chain again.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Plugin, Topic, quoted};
use switchyard_tests::{Gateway, Sink, client, eventually, get_json, workspace};

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
    let cfg = Config::new()
        .plugin(
            Plugin::new("route-by-field", &wasm("route_by_field.wasm")).config([
                ("pointer", "/type"),
                ("routes", "refund=refunds|audit,order=billing"),
                ("default", "audit"),
            ]),
        )
        .plugin(Plugin::new("redact", &wasm("redact.wasm")).config([("keys", "email")]))
        .destination(Destination::http("billing", &billing.url))
        .destination(Destination::http("refunds", &refunds.url))
        .destination(Destination::http("audit", &audit.url))
        .topic(
            Topic::new("orders")
                .routes(["audit"])
                .plugins(["route-by-field", "redact"]),
        )
        .build();
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
    let cfg = Config::new()
        .plugin(
            Plugin::new("spin", &wasm("loop_forever.wasm"))
                .set("timeout", quoted("50ms"))
                .set("on_error", quoted("dead-letter")),
        )
        .destination(Destination::http("out", &sink.url))
        .topic(Topic::new("bad").routes(["out"]).plugins(["spin"]))
        .topic(Topic::new("good").routes(["out"]))
        .build();
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("switchyard:plugin@0.3.0"));

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

// ---------------------------------------------------------------------------
// Through the real binary: hostile plugins, hot reload, priorities, GitHub.
// ---------------------------------------------------------------------------

/// The real `switchyard` binary on a config, in a temp dir of its own (its
/// `{data_dir}` is the one `--data-dir` names). Killed if the test fails
/// half-way, so no gateway outlives its test.
struct Binary {
    proc: Option<switchyard_tests::Process>,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start(config: &Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchyard.toml");
        let data = dir.path().join("data");
        let text = switchyard_tests::fill(&config.build(), &data);
        std::fs::write(&path, text).unwrap();
        let proc = switchyard_tests::Process::start_with_args(
            &path,
            &[
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data.to_str().unwrap(),
            ],
        );
        Self {
            proc: Some(proc),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        self.proc.as_ref().unwrap().url(path)
    }

    fn logs(&self) -> Vec<String> {
        self.proc.as_ref().unwrap().logs.lock().unwrap().clone()
    }

    async fn get(&self, path: &str) -> Value {
        client()
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str) -> Value {
        let r = client().post(self.url(path)).send().await.unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Publishes one JSON event; returns its id.
    async fn publish(&self, topic: &str, body: &str, headers: &[(&str, &str)]) -> String {
        publish_to(&self.url(""), topic, body, headers).await
    }

    /// The status of one plugin from `GET /v1/plugins`.
    async fn plugin(&self, name: &str) -> Value {
        let v = self.get("/v1/plugins").await;
        v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no plugin {name} in {v}"))
    }

    fn stop(mut self) {
        let p = self.proc.take().unwrap();
        assert!(p.sigterm().success(), "the gateway exits cleanly");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

async fn publish_to(base: &str, topic: &str, body: &str, headers: &[(&str, &str)]) -> String {
    let mut req = client()
        .post(format!("{base}/v1/topics/{topic}/events"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 202, "publish to {topic}");
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The event ids a sink received, in arrival order.
fn ids(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_and_a_panicking_plugin_follow_on_error_while_another_topic_flows() {
    let out = Sink::start().await;
    let routed = Sink::start().await;
    let gw = Binary::start(
        &Config::new()
            .plugin(
                Plugin::new("bomb", &wasm("memory_bomb.wasm"))
                    .set("max_memory", quoted("16MiB"))
                    // Generous time, so the memory limit is what stops it
                    // even on a loaded machine (filling 16 MiB can take
                    // longer than the 50 ms default there).
                    .set("timeout", quoted("10s"))
                    .set("on_error", quoted("dead-letter")),
            )
            .plugin(
                Plugin::new("shaky", &wasm("panic.wasm"))
                    .set("on_error", quoted("skip"))
                    .config([("route", "routed")]),
            )
            .destination(Destination::http("out", &out.url))
            .destination(Destination::http("routed", &routed.url))
            .topic(Topic::new("bomb").routes(["out"]).plugins(["bomb"]))
            .topic(Topic::new("shaky").routes(["out"]).plugins(["shaky"]))
            .topic(Topic::new("good").routes(["out"])),
    );
    // The hostile events and plain ones on another topic, interleaved.
    let bomb_id = gw.publish("bomb", r#"{"bomb":true}"#, &[]).await;
    let mut good = Vec::new();
    for i in 0..3 {
        good.push(gw.publish("good", &format!(r#"{{"n":{i}}}"#), &[]).await);
    }
    let panic_id = gw.publish("shaky", r#"{"panic":true}"#, &[]).await;
    for i in 3..6 {
        good.push(gw.publish("good", &format!(r#"{{"n":{i}}}"#), &[]).await);
    }
    out.wait_for(good.len(), WAIT).await;

    // The bomb hit its memory limit and its event is in the topic's DLQ.
    let dlq = eventually(WAIT, "the bomb's event in the topic DLQ", || async {
        let v = gw.get("/v1/topics/bomb/dlq").await;
        (v["depth"] == 1).then_some(v)
    })
    .await;
    assert_eq!(dlq["entries"][0]["id"], bomb_id.as_str());
    let error = dlq["entries"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("bomb") && error.contains("memory limit"),
        "{error}"
    );

    // The panic trapped; on_error = "skip" dropped that event only.
    let shaky = eventually(WAIT, "the panic counted as a trap", || async {
        let p = gw.plugin("shaky").await;
        (p["traps"].as_u64() >= Some(1)).then_some(p)
    })
    .await;
    assert!(shaky["errors"].as_u64() >= Some(1), "{shaky}");
    let bomb = gw.plugin("bomb").await;
    assert!(bomb["traps"].as_u64() >= Some(1), "{bomb}");
    let e = gw.get(&format!("/v1/events/{panic_id}")).await;
    assert_eq!(e["deliveries"], json!([]), "skipped, not delivered: {e}");

    // Fresh instances serve the next batches: both plugins work again.
    let fine_bomb = gw.publish("bomb", r#"{"fine":1}"#, &[]).await;
    let fine_shaky = gw.publish("shaky", r#"{"fine":2}"#, &[]).await;
    let r = routed.wait_for(1, WAIT).await;
    assert_eq!(r[0].header("webhook-id"), Some(fine_shaky.as_str()));
    eventually(WAIT, "the bomb topic's next event delivered", || async {
        ids(&out).contains(&fine_bomb).then_some(())
    })
    .await;

    let delivered = ids(&out);
    assert!(!delivered.contains(&bomb_id) && !delivered.contains(&panic_id));
    for id in &good {
        assert_eq!(delivered.iter().filter(|d| *d == id).count(), 1, "{id}");
    }
    gw.stop();
}

/// Publishes one event every few ms until told to stop; records each id
/// with the moment its request started.
fn start_publisher(
    base: String,
    topic: &'static str,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<Vec<(String, std::time::Instant)>>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut n = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let at = std::time::Instant::now();
            let id = publish_to(&base, topic, &format!(r#"{{"n":{n}}}"#), &[]).await;
            sent.push((id, at));
            n += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sent
    });
    (stop, task)
}

/// Waits until an event published after `since` (and after every event
/// already seen) reaches `sink`; returns how long after `since` that was.
async fn first_delivery_after(sink: &Sink, since: std::time::Instant, what: &str) -> Duration {
    let r = eventually(WAIT, what, || async {
        sink.received().into_iter().find(|r| r.at > since)
    })
    .await;
    r.at - since
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_by_copy_and_by_rename_swaps_behaviour_without_losing_or_duplicating_events() {
    let a = Sink::start().await;
    let b = Sink::start().await;
    let folder = tempfile::tempdir().unwrap();
    let live = folder.path().join("router.wasm");
    // Version 1 (the panic fixture with `route`) sends events to "b";
    // version 2 (the memory-bomb fixture) keeps the topic's route, "a".
    // Both accept the same config.
    std::fs::copy(wasm("panic.wasm"), &live).unwrap();
    let gw = Binary::start(
        &Config::new()
            .plugin(Plugin::new("router", &live).config([("route", "b")]))
            .destination(Destination::http("a", &a.url))
            .destination(Destination::http("b", &b.url))
            .topic(Topic::new("flow").routes(["a"]).plugins(["router"])),
    );
    let v1 = gw.plugin("router").await["version"].clone();
    let (stop, publisher) = start_publisher(gw.url(""), "flow");
    b.wait_for(5, WAIT).await;
    assert!(a.received().is_empty(), "version 1 routes everything to b");

    // `cp` over the file: truncated and rewritten in place.
    let copied_at = std::time::Instant::now();
    std::fs::copy(wasm("memory_bomb.wasm"), &live).unwrap();
    let by_copy = first_delivery_after(&a, copied_at, "version 2 routing to a").await;
    // Every event published once version 2 has routed one goes to a.
    let switched = a.received()[0].at;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A deploy tool's way: write a temporary file, rename it into place.
    let tmp = folder.path().join(".router.wasm.tmp");
    std::fs::copy(wasm("panic.wasm"), &tmp).unwrap();
    let renamed_at = std::time::Instant::now();
    std::fs::rename(&tmp, &live).unwrap();
    first_delivery_after(&b, renamed_at, "version 1 routing to b again").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = publisher.await.unwrap();
    // The first event published after the rename that reached b (a late
    // delivery of an older event does not count).
    let published: std::collections::HashMap<&str, std::time::Instant> =
        sent.iter().map(|(id, at)| (id.as_str(), *at)).collect();
    let switched_back = b
        .received()
        .into_iter()
        .filter(|r| published[r.header("webhook-id").unwrap()] > renamed_at)
        .map(|r| r.at)
        .min()
        .expect("an event published after the rename reached b");
    let by_rename = switched_back - renamed_at;
    eprintln!(
        "hot reload: {} events; behaviour changed {by_copy:?} after cp, {by_rename:?} after rename",
        sent.len()
    );
    // Within a second, without a restart. The rename brings back a version
    // whose compiled artefact is cached; the copy needs a compile, which a
    // debug build on a busy machine does slowly, hence its wider margin.
    assert!(by_rename < Duration::from_secs(1), "{by_rename:?}");
    assert!(by_copy < Duration::from_secs(3), "{by_copy:?}");

    // Nothing lost, nothing twice: each id once, across both sinks.
    let all: std::collections::HashSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    eventually(WAIT, "every published event delivered", || async {
        let got: std::collections::HashSet<String> = ids(&a).into_iter().chain(ids(&b)).collect();
        all.is_subset(&got).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (at_a, at_b) = (ids(&a), ids(&b));
    assert_eq!(at_a.len() + at_b.len(), sent.len(), "no duplicates");
    let got: std::collections::HashSet<&String> = at_a.iter().chain(&at_b).collect();
    assert_eq!(got.len(), sent.len(), "no duplicates");

    // Each event went where the version live when it was published said:
    // published after version 2 had visibly taken over -> a, and after
    // version 1 came back -> b.
    for (id, at) in &sent {
        if *at > switched && *at < renamed_at {
            assert!(at_a.contains(id), "{id} published under version 2");
        }
        if *at > switched_back {
            assert!(at_b.contains(id), "{id} published under version 1 again");
        }
    }
    let status = gw.plugin("router").await;
    assert_eq!(status["version"], v1, "back on version 1");
    assert_eq!(status["reloads"], 2, "{status}");
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_replacement_is_refused_and_the_old_version_keeps_routing() {
    let a = Sink::start().await;
    let b = Sink::start().await;
    let folder = tempfile::tempdir().unwrap();
    let live = folder.path().join("router.wasm");
    std::fs::copy(wasm("panic.wasm"), &live).unwrap();
    let gw = Binary::start(
        &Config::new()
            .plugin(Plugin::new("router", &live).config([("route", "b")]))
            .destination(Destination::http("a", &a.url))
            .destination(Destination::http("b", &b.url))
            .topic(Topic::new("flow").routes(["a"]).plugins(["router"])),
    );
    let v1 = gw.plugin("router").await["version"].clone();

    // Garbage bytes, renamed into place.
    let tmp = folder.path().join("router.wasm.part");
    std::fs::write(&tmp, b"\0asm this is not a component").unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let refused = eventually(WAIT, "the garbage refused", || async {
        let p = gw.plugin("router").await;
        p["reload_error"].is_string().then_some(p)
    })
    .await;
    assert!(
        refused["reload_error"]
            .as_str()
            .unwrap()
            .contains("not a valid Wasm component"),
        "{refused}"
    );
    assert_eq!(refused["version"], v1, "{refused}");
    let id = gw.publish("flow", r#"{"n":1}"#, &[]).await;
    let got = b.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), Some(id.as_str()));

    // A real component whose init fails on this config (route-by-field
    // wants `pointer` and `routes`), copied over the file.
    std::fs::copy(wasm("route_by_field.wasm"), &live).unwrap();
    let refused = eventually(WAIT, "the failing init refused", || async {
        let p = gw.plugin("router").await;
        p["reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("failed to initialise"))
            .then_some(p)
    })
    .await;
    assert!(
        refused["reload_error"]
            .as_str()
            .unwrap()
            .contains("pointer"),
        "the plugin's own message: {refused}"
    );
    assert_eq!(refused["version"], v1);
    assert_eq!(refused["reloads"], 0);
    let id = gw.publish("flow", r#"{"n":2}"#, &[]).await;
    let got = b.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), Some(id.as_str()));
    assert!(a.received().is_empty());
    assert!(
        gw.logs()
            .iter()
            .any(|l| l.contains("Plugin replacement refused")),
        "the refusal is logged"
    );

    // A good file afterwards goes live and clears the error.
    std::fs::copy(wasm("memory_bomb.wasm"), &live).unwrap();
    eventually(WAIT, "the good replacement live", || async {
        let p = gw.plugin("router").await;
        (p["reloads"] == 1 && p["reload_error"].is_null()).then_some(())
    })
    .await;
    let id = gw.publish("flow", r#"{"n":3}"#, &[]).await;
    let got = a.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), Some(id.as_str()));
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_by_sla_delivers_higher_tiers_first_when_the_destination_is_backlogged() {
    let sink = Sink::start().await;
    let gw = Binary::start(
        &Config::new()
            .plugin(Plugin::new("sla", &wasm("priority_by_sla.wasm")).config([
                ("tiers", "enterprise=9,pro=6,free=1"),
                ("pointer", "/customer/tier"),
            ]))
            .destination(Destination::http("ledger", &sink.url).set("concurrency", "1"))
            .topic(Topic::new("payments").routes(["ledger"]).plugins(["sla"])),
    );
    gw.post("/v1/destinations/ledger/pause").await;
    // The tier from the header, or from the payload when there is none.
    let sent = [
        ("free", true),
        ("enterprise", false),
        ("pro", true),
        ("free", false),
        ("enterprise", true),
        ("pro", false),
    ];
    for (i, (tier, by_header)) in sent.iter().enumerate() {
        let body = if *by_header {
            format!(r#"{{"n":{i}}}"#)
        } else {
            format!(r#"{{"n":{i},"customer":{{"tier":"{tier}"}}}}"#)
        };
        let headers: &[(&str, &str)] = if *by_header {
            &[("x-customer-tier", tier)]
        } else {
            &[]
        };
        gw.publish("payments", &body, headers).await;
    }
    eventually(WAIT, "six queued behind the paused destination", || async {
        let v = gw.get("/v1/destinations").await;
        (v["destinations"][0]["queue_depth"] == 6).then_some(())
    })
    .await;
    gw.post("/v1/destinations/ledger/resume").await;
    let got = sink.wait_for(6, WAIT).await;
    let tiers: Vec<&str> = got
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            sent[usize::try_from(v["n"].as_u64().unwrap()).unwrap()].0
        })
        .collect();
    assert_eq!(
        tiers,
        ["enterprise", "enterprise", "pro", "pro", "free", "free"],
        "delivery order"
    );
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_router_sends_webhooks_to_sinks_by_event_kind_and_branch() {
    let deploys = Sink::start().await;
    let triage = Sink::start().await;
    let reviews = Sink::start().await;
    let archive = Sink::start().await;
    let gw = Binary::start(
        &Config::new()
            .plugin(
                Plugin::new("github", &wasm("github_router.wasm")).config([("default", "archive")]),
            )
            .destination(Destination::http("deploys", &deploys.url))
            .destination(Destination::http("triage", &triage.url))
            .destination(Destination::http("reviews", &reviews.url))
            .destination(Destination::http("archive", &archive.url))
            .topic(Topic::new("github").routes(["archive"]).plugins(["github"])),
    );
    let repo = r#""repository":{"full_name":"acme/api"}"#;
    let hook = |kind: &'static str| [("x-github-event", kind)];
    let push_main = gw
        .publish(
            "github",
            &format!(r#"{{"ref":"refs/heads/main",{repo}}}"#),
            &hook("push"),
        )
        .await;
    let push_dev = gw
        .publish(
            "github",
            &format!(r#"{{"ref":"refs/heads/dev",{repo}}}"#),
            &hook("push"),
        )
        .await;
    let issue = gw
        .publish(
            "github",
            &format!(r#"{{"action":"opened",{repo}}}"#),
            &hook("issues"),
        )
        .await;
    let pr = gw
        .publish(
            "github",
            &format!(r#"{{"action":"opened",{repo}}}"#),
            &hook("pull_request"),
        )
        .await;
    let star = gw
        .publish("github", &format!("{{{repo}}}"), &hook("star"))
        .await;
    let ping = gw
        .publish("github", &format!("{{{repo}}}"), &hook("ping"))
        .await;
    let not_github = gw.publish("github", "{}", &[]).await;

    deploys.wait_for(1, WAIT).await;
    triage.wait_for(1, WAIT).await;
    reviews.wait_for(1, WAIT).await;
    archive.wait_for(2, WAIT).await;
    // Not a GitHub webhook: a plugin error, so the topic's DLQ.
    let dlq = eventually(WAIT, "the headerless event dead-lettered", || async {
        let v = gw.get("/v1/topics/github/dlq").await;
        (v["depth"] == 1).then_some(v)
    })
    .await;
    assert_eq!(dlq["entries"][0]["id"], not_github.as_str());
    let ping_event = gw.get(&format!("/v1/events/{ping}")).await;
    assert_eq!(ping_event["deliveries"], json!([]), "ping is dropped");
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(ids(&deploys), [push_main]);
    assert_eq!(ids(&triage), [issue]);
    assert_eq!(ids(&reviews), [pr]);
    let mut archived = ids(&archive);
    archived.sort();
    let mut expected = vec![push_dev, star];
    expected.sort();
    assert_eq!(archived, expected);
    gw.stop();
}

/// A plugin built for contract 0.2.0 (users' plugins from before 0.3.0)
/// still loads and routes through a real gateway, chained before a 0.3.0
/// one, and `GET /v1/plugins` says which contract each speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_for_contract_0_2_routes_beside_a_0_3_one() {
    let billing = Sink::start().await;
    let audit = Sink::start().await;
    let cfg = Config::new()
        .plugin(Plugin::new("old", &wasm("contract_v0_2.wasm")).config([("route", "audit")]))
        .plugin(
            Plugin::new("route-by-field", &wasm("route_by_field.wasm"))
                .config([("pointer", "/type"), ("routes", "order=billing")]),
        )
        .destination(Destination::http("billing", &billing.url))
        .destination(Destination::http("audit", &audit.url))
        .topic(Topic::new("orders").plugins(["old", "route-by-field"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    // The 0.2.0 plugin routes to `audit`; route-by-field overrides orders.
    assert_eq!(publish(&gw, "orders", r#"{"type":"order"}"#).await.0, 202);
    assert_eq!(publish(&gw, "orders", r#"{"type":"x"}"#).await.0, 202);
    let b = billing.wait_for(1, WAIT).await;
    assert!(String::from_utf8_lossy(&b[0].body).contains("order"));
    let a = audit.wait_for(1, WAIT).await;
    assert!(String::from_utf8_lossy(&a[0].body).contains(r#""x""#));
    let plugins = get_json(gw.url("/v1/plugins")).await;
    let contract = |name: &str| {
        plugins["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["contract"].clone())
    };
    assert_eq!(contract("old"), Some(Value::from("0.2.0")), "{plugins}");
    assert_eq!(
        contract("route-by-field"),
        Some(Value::from("0.3.0")),
        "{plugins}"
    );
    gw.stop().await;
}

/// The Python example (built with the Python SDK by scripts/build-plugins.sh)
/// passes `plugin check`, routes through a real gateway like the Rust one,
/// and gets Python's default limits, shown with their source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_built_with_the_sdk_routes_with_pythons_default_limits() {
    let py = wasm("route_by_field_py.wasm");
    let out = std::process::Command::new(switchyard_tests::bin())
        .args(["plugin", "check"])
        .arg(&py)
        .arg("--cache-dir")
        .arg(switchyard_tests::plugin_cache_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let billing = Sink::start().await;
    let audit = Sink::start().await;
    let cfg = Config::new()
        .plugin(Plugin::new("py-route", &py).config([
            ("pointer", "/type"),
            ("routes", "order=billing"),
            ("default", "audit"),
            ("priorities", "order=8"),
        ]))
        .destination(Destination::http("billing", &billing.url))
        .destination(Destination::http("audit", &audit.url))
        .topic(Topic::new("orders").plugins(["py-route"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    assert_eq!(publish(&gw, "orders", r#"{"type":"order"}"#).await.0, 202);
    assert_eq!(publish(&gw, "orders", r#"{"type":"x"}"#).await.0, 202);
    let b = billing.wait_for(1, WAIT).await;
    assert!(String::from_utf8_lossy(&b[0].body).contains("order"));
    audit.wait_for(1, WAIT).await;
    let plugins: Value = client()
        .get(gw.url("/v1/plugins"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = &plugins["plugins"][0];
    assert_eq!(p["language"], "python", "{p}");
    assert_eq!(p["limits"]["max_memory"]["value"], 64 * 1024 * 1024, "{p}");
    assert_eq!(p["limits"]["max_memory"]["source"], "python default", "{p}");
    assert_eq!(p["limits"]["timeout_ms"]["value"], 500, "{p}");
    assert_eq!(p["limits"]["max_batch"]["source"], "default", "{p}");
    assert_eq!(p["errors"], 0, "{p}");
    assert_eq!(p["batch_retries"], 0, "{p}");
    gw.stop().await;
}

/// The TypeScript example (built with the TypeScript SDK and componentize-js
/// by scripts/build-plugins.sh) passes `plugin check`, routes through a real
/// gateway like the Rust one, and gets JavaScript's default limits, shown
/// with their source; a bad config is refused with the SDK's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_plugin_built_with_the_sdk_routes_with_javascripts_default_limits() {
    let ts = wasm("route_by_field_ts.wasm");
    let out = std::process::Command::new(switchyard_tests::bin())
        .args(["plugin", "check"])
        .arg(&ts)
        .arg("--cache-dir")
        .arg(switchyard_tests::plugin_cache_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let billing = Sink::start().await;
    let audit = Sink::start().await;
    let cfg = Config::new()
        .plugin(Plugin::new("ts-route", &ts).config([
            ("pointer", "/type"),
            ("routes", "order=billing"),
            ("default", "audit"),
            ("priorities", "order=8"),
        ]))
        .destination(Destination::http("billing", &billing.url))
        .destination(Destination::http("audit", &audit.url))
        .topic(Topic::new("orders").plugins(["ts-route"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    assert_eq!(publish(&gw, "orders", r#"{"type":"order"}"#).await.0, 202);
    assert_eq!(publish(&gw, "orders", r#"{"type":"x"}"#).await.0, 202);
    assert_eq!(publish(&gw, "orders", "not json").await.0, 202);
    let b = billing.wait_for(1, WAIT).await;
    assert!(String::from_utf8_lossy(&b[0].body).contains("order"));
    // "x" and the payload that is not JSON take the default.
    audit.wait_for(2, WAIT).await;
    let plugins: Value = client()
        .get(gw.url("/v1/plugins"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = &plugins["plugins"][0];
    assert_eq!(p["language"], "javascript", "{p}");
    assert_eq!(p["limits"]["max_memory"]["value"], 64 * 1024 * 1024, "{p}");
    assert_eq!(
        p["limits"]["max_memory"]["source"], "javascript default",
        "{p}"
    );
    assert_eq!(p["limits"]["timeout_ms"]["value"], 500, "{p}");
    assert_eq!(p["errors"], 0, "{p}");
    assert_eq!(p["batch_retries"], 0, "{p}");
    // Compiled into the cache the suite's gateways share (named after the
    // file's sha256, the version shown), not into one per data dir.
    let sha = p["version"].as_str().unwrap_or_default().to_owned();
    assert_eq!(sha.len(), 64, "{p}");
    let shared = std::fs::read_dir(switchyard_tests::plugin_cache_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with(&sha));
    assert!(shared, "no artefact for {sha} in the shared cache");
    assert!(!gw.dir.path().join("data/plugin-cache").exists());
    gw.stop().await;

    // The SDK's ConfigError reaches the operator whole.
    let bad = Config::new()
        .plugin(Plugin::new("ts-route", &ts).config([("pointer", "type"), ("routes", "a=b")]))
        .topic(Topic::new("orders").plugins(["ts-route"]))
        .build();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchyard.toml");
    std::fs::write(&file, switchyard_tests::fill(&bad, dir.path().join("data"))).unwrap();
    let out = std::process::Command::new(switchyard_tests::bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("config key 'pointer': 'type' must start with '/'"),
        "{stderr}"
    );
}
