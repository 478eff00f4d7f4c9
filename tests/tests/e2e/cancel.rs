//! Cancelling deliveries, as an operator does it: one pending delivery
//! (`DELETE /v1/destinations/{name}/events/{id}`, `switchyard events
//! cancel`), a pull lease, a push attempt in flight (cancelled when it
//! ends), and a whole queue (`DELETE /v1/destinations/{name}/queue`,
//! `switchyard destinations purge`, confirmed). Depths stay exact, across
//! a restart too; unknown names and ids and callers without `admin` are
//! refused.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic};
use switchyard_tests::{Gateway, Reply, Sink, bin, client, eventually};

const WAIT: Duration = Duration::from_secs(15);
const ADMIN: &str = "cancel-admin-token-5e4d3c2b1a";
const PUBLISHER: &str = "cancel-publish-token-0f9e8d7c";

fn config() -> String {
    Config::new()
        .destination(Destination::pull("jobs"))
        .topic(Topic::new("orders").routes(["jobs"]))
        .build()
}

async fn publish(gw: &Gateway, n: u32) -> String {
    let v: Value = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"n":{n}}}"#))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["id"].as_str().unwrap().to_owned()
}

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

async fn delete(gw: &Gateway, path: &str) -> (u16, Value) {
    let r = client().delete(gw.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The delivery of `id` to `dest` as `GET /v1/events/{id}` shows it.
async fn delivery(gw: &Gateway, id: &str, dest: &str) -> Value {
    let v = get(gw, &format!("/v1/events/{id}")).await;
    v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == dest)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn wait_depth(gw: &Gateway, dest: &str, depth: u64) {
    eventually(WAIT, &format!("{dest} at depth {depth}"), || async {
        let v = get(gw, &format!("/v1/destinations/{dest}")).await;
        (v["queue_depth"] == depth).then_some(())
    })
    .await;
}

async fn receive(gw: &Gateway, max: u32) -> Vec<Value> {
    let v: Value = client()
        .post(gw.url("/v1/queues/jobs/receive"))
        .json(&json!({"max_messages": max}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["messages"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_delivery_leaves_the_queue_and_its_history_says_so() {
    let gw = Gateway::start(&config()).await;
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for n in 0..3 {
            v.push(publish(&gw, n).await);
        }
        v
    };
    wait_depth(&gw, "jobs", 3).await;

    let (status, v) = delete(&gw, &format!("/v1/destinations/jobs/events/{}", ids[0])).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "cancelled");
    wait_depth(&gw, "jobs", 2).await;
    let del = delivery(&gw, &ids[0], "jobs").await;
    assert_eq!(del["state"], "cancelled", "{del}");
    let attempts = del["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{del}");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("cancelled: by an operator"),
        "{del}"
    );
    // The list filter knows the state.
    let listed = get(&gw, "/v1/events?destination=jobs&state=cancelled").await;
    assert_eq!(listed["events"].as_array().unwrap().len(), 1, "{listed}");

    // Twice: nothing is pending any more.
    let (status, v) = delete(&gw, &format!("/v1/destinations/jobs/events/{}", ids[0])).await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("unknown_event"))
    );

    // A consumer never sees it: the next message is the second event. Its
    // lease is cancelled at once, and the consumer's ack then fails.
    let got = receive(&gw, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], ids[1].as_str());
    let (status, v) = delete(&gw, &format!("/v1/destinations/jobs/events/{}", ids[1])).await;
    assert_eq!(
        (status, v["state"].clone()),
        (200, json!("cancelled")),
        "{v}"
    );
    let ack: Value = client()
        .post(gw.url("/v1/queues/jobs/ack"))
        .json(&json!({"receipts": [got[0]["receipt"]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ack["results"][0]["ok"], false, "{ack}");
    assert_eq!(delivery(&gw, &ids[1], "jobs").await["state"], "cancelled");
    eventually(WAIT, "one pending, none in flight", || async {
        let d = get(&gw, "/v1/destinations/jobs").await;
        (d["queue_depth"] == 1 && d["in_flight"] == 0).then_some(())
    })
    .await;

    // Purge: the rest, counted.
    for n in 3..6 {
        publish(&gw, n).await;
    }
    wait_depth(&gw, "jobs", 4).await;
    let (status, v) = delete(&gw, "/v1/destinations/jobs/queue").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["purged"].clone(), v["in_flight"].clone()),
        (json!(4), json!(0))
    );
    wait_depth(&gw, "jobs", 0).await;
    assert_eq!(delivery(&gw, &ids[2], "jobs").await["state"], "cancelled");
    assert!(receive(&gw, 10).await.is_empty());

    // After a restart nothing comes back and the counters agree.
    let dir = gw.stop().await;
    let gw = Gateway::start_in(&config(), dir).await;
    wait_depth(&gw, "jobs", 0).await;
    assert!(receive(&gw, 10).await.is_empty());
    // And the queue works as before.
    let id = publish(&gw, 9).await;
    wait_depth(&gw, "jobs", 1).await;
    let got = receive(&gw, 10).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], id.as_str());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_attempt_in_flight_is_cancelled_when_it_ends() {
    // Each attempt takes 1.5 s and fails: without the cancel it would be
    // retried at once.
    let sink = Sink::start().await;
    sink.set_default(Reply::status(503).delay(Duration::from_millis(1500)));
    let cfg = Config::new()
        .destination(
            Destination::http("billing", &sink.url)
                .set("concurrency", "1")
                .retry("{ initial = \"10ms\", multiplier = 1.0, max_attempts = 100 }"),
        )
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    let id = publish(&gw, 1).await;
    eventually(WAIT, "the attempt in flight", || async {
        let v = get(&gw, "/v1/destinations/billing").await;
        (v["in_flight"] == 1).then_some(())
    })
    .await;
    let (status, v) = delete(&gw, &format!("/v1/destinations/billing/events/{id}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "cancelled_at_attempt_end");
    eventually(WAIT, "the cancellation after the attempt", || async {
        let d = delivery(&gw, &id, "billing").await;
        (d["state"] == "cancelled").then_some(())
    })
    .await;
    // Levels are exact on fjall; on a cluster they are read from the
    // servers every second.
    eventually(WAIT, "an empty queue with nothing in flight", || async {
        let d = get(&gw, "/v1/destinations/billing").await;
        (d["queue_depth"] == 0 && d["in_flight"] == 0).then_some(())
    })
    .await;
    // The attempt that ran is in the history, then the cancellation.
    let del = delivery(&gw, &id, "billing").await;
    let attempts = del["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{del}");
    assert_eq!(attempts[0]["status"], 503);
    assert!(
        attempts[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("cancelled"),
        "{del}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1, "no retry after the cancel");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_purge_refuse_unknown_names_ids_and_non_admins() {
    let cfg = Config::new()
        .destination(Destination::pull("jobs"))
        .topic(Topic::new("orders").routes(["jobs"]))
        .token("ops", ADMIN, ["admin"])
        .token("ci", PUBLISHER, ["publish:orders"])
        .build();
    let gw = Gateway::start(&cfg).await;
    let c = client();
    let id = {
        let v: Value = c
            .post(gw.url("/v1/topics/orders/events"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["id"].as_str().unwrap().to_owned()
    };
    wait_depth_with(&gw, ADMIN, 1).await;
    let one = format!("/v1/destinations/jobs/events/{id}");
    for (path, token, status, code) in [
        (one.as_str(), None, 401, "unauthorized"),
        (one.as_str(), Some(PUBLISHER), 403, "forbidden"),
        (
            "/v1/destinations/jobs/queue",
            Some(PUBLISHER),
            403,
            "forbidden",
        ),
        (
            "/v1/destinations/nosuch/queue",
            Some(ADMIN),
            404,
            "unknown_destination",
        ),
        (
            "/v1/destinations/nosuch/events/01JAAAAAAAAAAAAAAAAAAAAAAA",
            Some(ADMIN),
            404,
            "unknown_destination",
        ),
        (
            "/v1/destinations/jobs/events/not-an-id",
            Some(ADMIN),
            400,
            "malformed",
        ),
        (
            "/v1/destinations/jobs/events/01JAAAAAAAAAAAAAAAAAAAAAAA",
            Some(ADMIN),
            404,
            "unknown_event",
        ),
    ] {
        let mut req = c.delete(gw.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{path}: {v}");
    }
    // Nothing was cancelled by any of them.
    wait_depth_with(&gw, ADMIN, 1).await;
    gw.stop().await;
}

async fn wait_depth_with(gw: &Gateway, token: &str, depth: u64) {
    eventually(WAIT, "the depth", || async {
        let v: Value = client()
            .get(gw.url("/v1/destinations/jobs"))
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (v["queue_depth"] == depth).then_some(())
    })
    .await;
}

/// The CLI with stdin a pipe (not a terminal), from a blocking task so the
/// in-process gateway keeps serving.
async fn cli(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(bin())
            .args(&args)
            .stdin(Stdio::piped())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_cancels_one_delivery_and_purges_with_confirmation() {
    let gw = Gateway::start(&config()).await;
    let first = publish(&gw, 1).await;
    publish(&gw, 2).await;
    publish(&gw, 3).await;
    wait_depth(&gw, "jobs", 3).await;
    let with = |a: &[&str]| {
        let mut v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        v.extend(["--server".to_owned(), gw.url.clone()]);
        v
    };
    let (code, out, err) = cli(with(&["events", "cancel", "--destination", "jobs", &first])).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cancelled"), "{out}");
    wait_depth(&gw, "jobs", 2).await;
    // Again: the gateway's refusal, and a failing exit.
    let (code, _, err) = cli(with(&["events", "cancel", "--destination", "jobs", &first])).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown_event") || err.contains("no pending delivery"),
        "{err}"
    );

    // No terminal, no --yes: exit 2 naming --yes, nothing purged.
    let (code, _, err) = cli(with(&["destinations", "purge", "jobs"])).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(get(&gw, "/v1/destinations/jobs").await["queue_depth"], 2);
    let (code, out, err) = cli(with(&["destinations", "purge", "jobs", "--yes"])).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("purged 2"), "{out}");
    wait_depth(&gw, "jobs", 0).await;
    let (code, _, err) = cli(with(&["destinations", "purge", "nosuch", "--yes"])).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown_destination") || err.contains("nosuch"),
        "{err}"
    );
    gw.stop().await;
}
