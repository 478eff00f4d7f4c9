//! The JSON API the console stands on, as any client sees it: payloads of
//! events and dead letters (`include=payload`), lists newest first
//! (`order=desc`) with cursors that keep their direction, one destination
//! by name, the in-gateway time series, and the cross-site request guard.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Plugin, Topic, quoted};
use switchyard_tests::{Gateway, Reply, Sink, client, eventually, workspace};

const WAIT: Duration = Duration::from_secs(15);

/// `orders` routed to a pull queue `jobs` (nothing takes from it, so its
/// depth is exactly what was published) and, when given, to `hook`, an
/// http destination at `sink`.
fn config(sink: Option<&str>) -> String {
    let mut c = Config::new().destination(Destination::pull("jobs"));
    let mut routes = vec!["jobs"];
    if let Some(url) = sink {
        c = c.destination(
            Destination::http("hook", url)
                .set("timeout", quoted("2s"))
                .retry("{ initial = \"50ms\", multiplier = 2.0, max_attempts = 2 }"),
        );
        routes.push("hook");
    }
    c.topic(Topic::new("orders").routes(routes)).build()
}

async fn publish(gw: &Gateway, body: Vec<u8>, ct: &str) -> String {
    let resp = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn get(gw: &Gateway, path: &str) -> (u16, Value) {
    let r = client().get(gw.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn an_events_payload_comes_as_text_or_base64_under_a_cap() {
    let gw = Gateway::start(&config(None)).await;
    let json_id = publish(
        &gw,
        br#"{"id":1,"name":"caf\u00e9"}"#.to_vec(),
        "application/json",
    )
    .await;
    let bin_id = publish(
        &gw,
        vec![0xff, 0x00, 0xfe, 0x41],
        "application/octet-stream",
    )
    .await;
    let long = "é".repeat(100); // 200 bytes of two-byte characters
    let long_id = publish(&gw, long.clone().into_bytes(), "text/plain").await;

    let (_, plain) = get(&gw, &format!("/v1/events/{json_id}")).await;
    assert!(
        plain.get("payload").is_none(),
        "no payload unless asked: {plain}"
    );

    let (s, e) = get(&gw, &format!("/v1/events/{json_id}?include=payload")).await;
    assert_eq!(s, 200);
    assert_eq!(e["payload"], r#"{"id":1,"name":"caf\u00e9"}"#);
    assert_eq!(e["payload_truncated"], false);
    assert!(e.get("payload_base64").is_none());

    let (_, e) = get(&gw, &format!("/v1/events/{bin_id}?include=payload")).await;
    assert_eq!(e["payload_base64"], "/wD+QQ==", "{e}");
    assert!(e.get("payload").is_none());

    // A cap of 11 bytes cuts the sixth "é" in half: it is left out whole.
    let (_, e) = get(
        &gw,
        &format!("/v1/events/{long_id}?include=payload&payload_limit=11"),
    )
    .await;
    assert_eq!(e["payload"], "é".repeat(5), "{e}");
    assert_eq!(e["payload_truncated"], true);
    assert_eq!(e["size"], 200);

    let (s, e) = get(&gw, &format!("/v1/events/{json_id}?include=everything")).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["code"], "malformed");
    gw.stop().await;
}

#[tokio::test]
async fn events_list_newest_first_and_the_cursor_keeps_the_direction() {
    let gw = Gateway::start(&config(None)).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            publish(
                &gw,
                format!("{{\"n\":{i}}}").into_bytes(),
                "application/json",
            )
            .await,
        );
    }
    let walk = |order: &'static str| {
        let gw = &gw;
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/v1/events?order={order}&limit=3");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let (s, page) = get(gw, &path).await;
                assert_eq!(s, 200, "{page}");
                for e in page["events"].as_array().unwrap() {
                    seen.push(e["id"].as_str().unwrap().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => return seen,
                }
            }
        }
    };
    assert_eq!(walk("asc").await, ids);
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(walk("desc").await, newest_first);
    // The default is oldest first, as before.
    let (_, page) = get(&gw, "/v1/events?limit=1").await;
    assert_eq!(page["events"][0]["id"], ids[0].as_str());
    let (s, _) = get(&gw, "/v1/events?order=sideways").await;
    assert_eq!(s, 400);
    gw.stop().await;
}

#[tokio::test]
async fn dead_letters_list_newest_first_with_their_payloads() {
    let sink = Sink::start().await;
    // A 400 is not retried: each event is dead-lettered at once.
    sink.set_default(Reply::status(400).body("no"));
    let gw = Gateway::start(&config(Some(&sink.url))).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            publish(
                &gw,
                format!("{{\"n\":{i}}}").into_bytes(),
                "application/json",
            )
            .await,
        );
    }
    eventually(WAIT, "five dead letters", || async {
        let (_, v) = get(&gw, "/v1/destinations/hook/dlq").await;
        (v["depth"] == 5).then_some(())
    })
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/destinations/hook/dlq?order=desc&limit=2&include=payload".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, page) = get(&gw, &path).await;
        assert_eq!(s, 200, "{page}");
        for e in page["entries"].as_array().unwrap() {
            let n = seen.len();
            // Newest first: the i-th entry seen is event 4 - i.
            assert_eq!(e["payload"], format!("{{\"n\":{}}}", 4 - n), "{e}");
            assert_eq!(e["topic"], "orders");
            assert_eq!(e["payload_truncated"], false);
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    // Ascending stays the default, without payloads unless asked.
    let (_, page) = get(&gw, "/v1/destinations/hook/dlq?limit=1").await;
    assert_eq!(page["entries"][0]["id"], ids[0].as_str());
    assert!(page["entries"][0].get("payload").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn one_destination_is_served_by_name() {
    let gw = Gateway::start(&config(None)).await;
    publish(&gw, b"{}".to_vec(), "application/json").await;
    let d = eventually(WAIT, "queued", || async {
        let (s, d) = get(&gw, "/v1/destinations/jobs").await;
        assert_eq!(s, 200, "{d}");
        (d["queue_depth"] == 1).then_some(d)
    })
    .await;
    assert_eq!(d["name"], "jobs");
    assert_eq!(d["kind"], "pull");
    let (_, all) = get(&gw, "/v1/destinations").await;
    let mut listed = all["destinations"][0].clone();
    let mut one = d.clone();
    // The age moves between the two reads.
    for v in [&mut listed, &mut one] {
        v.as_object_mut()
            .unwrap()
            .remove("oldest_pending_age_seconds");
    }
    assert_eq!(listed, one);
    let (s, e) = get(&gw, "/v1/destinations/nope").await;
    assert_eq!(s, 404);
    assert_eq!(e["error"]["code"], "unknown_destination");
    gw.stop().await;
}

/// The value of the metric line starting with `prefix` (labels included).
async fn metric(gw: &Gateway, prefix: &str) -> u64 {
    let text = gw.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {prefix} in:\n{text}"))
}

#[tokio::test]
async fn a_destination_shows_its_depth_by_priority_and_pull_counters_as_metrics_do() {
    let config = Config::new()
        .destination(Destination::pull("jobs"))
        .topic(
            Topic::new("orders")
                .routes(["jobs"])
                .set("priority_header", quoted("x-priority")),
        )
        .build();
    let gw = Gateway::start(&config).await;
    for p in ["9", "9", "9", "0", "0", ""] {
        let mut r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .header("content-type", "application/json");
        if !p.is_empty() {
            r = r.header("x-priority", p);
        }
        assert_eq!(r.body("{}").send().await.unwrap().status(), 202);
    }
    eventually(WAIT, "all six queued", || async {
        (get(&gw, "/v1/destinations/jobs").await.1["queue_depth"] == 6).then_some(())
    })
    .await;
    // Two receives (the urgent ones go first): one acked, one handed back.
    let received = client()
        .post(gw.url("/v1/queues/jobs/receive"))
        .json(&json!({"max_messages": 2}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let receipts: Vec<String> = received["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["receipt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(receipts.len(), 2, "{received}");
    for (verb, receipt) in [("ack", &receipts[0]), ("nack", &receipts[1])] {
        let r = client()
            .post(gw.url(&format!("/v1/queues/jobs/{verb}")))
            .json(&json!({"receipts": [receipt]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (_, d) = get(&gw, "/v1/destinations/jobs").await;
    // Priority 9: three published, one acknowledged; 5 is the default.
    assert_eq!(
        d["depth_by_priority"],
        json!([2, 0, 0, 0, 0, 1, 0, 0, 0, 2]),
        "{d}"
    );
    assert_eq!(d["queue_depth"], 5);
    assert_eq!(
        d["pull"],
        json!({"receives": 2, "acks": 1, "nacks": 1, "lease_expiries": 0})
    );
    // /metrics says the same.
    let l = "{destination=\"jobs\"";
    assert_eq!(
        metric(&gw, &format!("switchyard_queue_depth{l}}} ")).await,
        5
    );
    for (p, n) in [(9, 2), (5, 1), (0, 2), (3, 0)] {
        let line = format!("switchyard_queue_depth_by_priority{l},priority=\"{p}\"}} ");
        assert_eq!(metric(&gw, &line).await, n, "priority {p}");
    }
    for (name, n) in [
        ("receives", 2),
        ("acks", 1),
        ("nacks", 1),
        ("lease_expiries", 0),
    ] {
        let line = format!("switchyard_pull_{name}_total{l}}} ");
        assert_eq!(metric(&gw, &line).await, n, "{name}");
    }
    gw.stop().await;
}

fn wasm(name: &str) -> std::path::PathBuf {
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
async fn an_event_shows_each_plugins_verdict_and_its_next_retry() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(503));
    let config = Config::new()
        .plugin(
            Plugin::new("route-by-field", &wasm("route_by_field.wasm")).config([
                ("pointer", "/type"),
                ("routes", "refund=jobs|hook,spam="),
                ("priorities", "refund=8"),
                ("default", "jobs"),
            ]),
        )
        .plugin(Plugin::new("redact", &wasm("redact.wasm")).config([("keys", "email")]))
        .destination(Destination::pull("jobs"))
        .destination(
            Destination::http("hook", &sink.url)
                .set("timeout", quoted("2s"))
                .retry("{ initial = \"60s\", multiplier = 2.0, max_attempts = 5 }"),
        )
        .topic(
            Topic::new("orders")
                .routes(["jobs"])
                .plugins(["route-by-field", "redact"]),
        )
        .build();
    let gw = Gateway::start(&config).await;
    let id = publish(
        &gw,
        br#"{"type":"refund","email":"a@b.c"}"#.to_vec(),
        "application/json",
    )
    .await;
    // The first attempt fails (503): the retry is due a minute later.
    let e = eventually(WAIT, "the first attempt", || async {
        let (_, e) = get(&gw, &format!("/v1/events/{id}")).await;
        let hook = e["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["destination"] == "hook")?
            .clone();
        (hook["attempt_count"] == 1 && hook["state"] == "pending").then_some(e)
    })
    .await;
    let plugins = e["plugins"].as_array().expect("the verdicts");
    assert_eq!(plugins.len(), 2, "{e}");
    assert_eq!(plugins[0]["plugin"], "route-by-field");
    assert_eq!(plugins[0]["verdict"], "route");
    assert_eq!(plugins[0]["routes"], json!(["jobs", "hook"]));
    assert_eq!(plugins[0]["priority"], 8);
    assert!(plugins[0]["duration_us"].is_u64());
    assert_eq!(plugins[1]["plugin"], "redact");
    assert_eq!(plugins[1]["verdict"], "keep", "{e}");
    let hook = e["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "hook")
        .unwrap();
    let next = hook["next_attempt_at"].as_str().expect("a retry due");
    let at = hook["updated_at"].as_str().unwrap();
    let wait = (ms_of_day(next) - ms_of_day(at)).rem_euclid(86_400_000);
    // A minute with equal jitter: between half a minute and a minute.
    assert!(
        (29_000..=61_000).contains(&wait),
        "the retry is due 30-60 s after the attempt: {hook}"
    );
    // A pull delivery waiting for a consumer has no retry to show.
    let jobs = e["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "jobs")
        .unwrap();
    assert!(jobs.get("next_attempt_at").is_none(), "{jobs}");

    // A drop is recorded as one: routed nowhere.
    let spam = publish(&gw, br#"{"type":"spam"}"#.to_vec(), "application/json").await;
    let e = eventually(WAIT, "routed", || async {
        let (_, e) = get(&gw, &format!("/v1/events/{spam}")).await;
        e.get("plugins").is_some().then_some(e)
    })
    .await;
    assert_eq!(e["plugins"][0]["verdict"], "drop", "{e}");
    assert_eq!(e["deliveries"], json!([]));
    gw.stop().await;
}

/// Milliseconds into the day of an RFC 3339 time such as
/// `2026-01-02T03:04:05.678Z` (what the API writes).
fn ms_of_day(t: &str) -> i64 {
    let clock = t.split('T').nth(1).unwrap().trim_end_matches('Z');
    let mut parts = clock.split(':');
    let h: i64 = parts.next().unwrap().parse().unwrap();
    let m: i64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    (h * 3600 + m * 60) * 1000 + (s * 1000.0).round() as i64
}

#[tokio::test]
async fn the_time_series_shows_ingest_rate_and_depth_from_the_gateway() {
    let gw = Gateway::start(&config(None)).await;
    for i in 0..10 {
        publish(
            &gw,
            format!("{{\"n\":{i}}}").into_bytes(),
            "application/json",
        )
        .await;
    }
    let series = eventually(
        Duration::from_secs(20),
        "a sample after the events",
        || async {
            let (s, v) = get(&gw, "/v1/stats/series").await;
            assert_eq!(s, 200, "{v}");
            let samples = v["samples"].as_array().unwrap().clone();
            let depth_seen = samples
                .iter()
                .any(|s| s["destinations"]["jobs"]["queue_depth"] == 10);
            let rate_seen = samples
                .iter()
                .any(|s| s["ingest_per_second"].as_f64().unwrap() > 0.0);
            (depth_seen && rate_seen).then_some(v)
        },
    )
    .await;
    assert_eq!(series["interval_seconds"], 2);
    assert_eq!(series["window_seconds"], 900);
    let last = series["samples"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(last["store_disk_bytes"].as_u64().unwrap() > 0, "{last}");
    assert!(last["free_disk_bytes"].as_u64().unwrap() > 0, "{last}");
    // The rates over the window add up to at most what was accepted (the
    // first sample may have been taken after the first events).
    let accepted: f64 = series["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ingest_per_second"].as_f64().unwrap() * 2.0)
        .sum();
    assert!(accepted > 0.0 && accepted < 11.5, "{accepted}");
    gw.stop().await;
}

#[tokio::test]
async fn a_cross_origin_simple_post_is_refused_and_changes_nothing() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(400));
    let gw = Gateway::start(&config(Some(&sink.url))).await;
    publish(&gw, b"{}".to_vec(), "application/json").await;
    eventually(WAIT, "a dead letter", || async {
        let (_, v) = get(&gw, "/v1/destinations/hook/dlq").await;
        (v["depth"] == 1).then_some(())
    })
    .await;
    let host = gw.url("").trim_start_matches("http://").to_owned();

    // What a form on another site sends: text/plain, its own Origin.
    for (method, path) in [
        (reqwest::Method::POST, "/v1/destinations/jobs/pause"),
        (reqwest::Method::POST, "/v1/destinations/hook/dlq/replay"),
        (reqwest::Method::DELETE, "/v1/destinations/hook/dlq"),
        (reqwest::Method::POST, "/v1/topics/orders/events"),
    ] {
        let r = client()
            .request(method.clone(), gw.url(path))
            .header("content-type", "text/plain")
            .header("origin", "http://evil.example")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "cross_site_request", "{v}");
    }
    // Form-style without an Origin (an old browser, a stripped header):
    // refused outside ingest all the same.
    let r = client()
        .delete(gw.url("/v1/destinations/hook/dlq"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Nothing changed: not paused, the dead letter still there, and the one
    // event is still the only one.
    let (_, d) = get(&gw, "/v1/destinations/jobs").await;
    assert_eq!(d["paused"], false);
    let (_, dlq) = get(&gw, "/v1/destinations/hook/dlq").await;
    assert_eq!(dlq["depth"], 1);
    let (_, events) = get(&gw, "/v1/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1);

    // A webhook sender (no Origin, any content type) still publishes.
    publish(&gw, b"plain words".to_vec(), "text/plain").await;
    // The console: same origin, JSON and its header.
    let r = client()
        .post(gw.url("/v1/destinations/jobs/pause"))
        .header("origin", format!("http://{host}"))
        .header("x-switchyard-request", "console")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A CLI's bodiless POST.
    let r = client()
        .post(gw.url("/v1/destinations/jobs/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_csp() {
    let gw = Gateway::start(&config(None)).await;
    let r = client().get(gw.url("/console")).send().await.unwrap();
    // reqwest follows the redirect to /console/.
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("/console/app.js"), "{html}");
    // No page loads anything from elsewhere.
    for file in [
        "index.html",
        "app.js",
        "api.js",
        "chart.js",
        "dom.js",
        "errors.js",
        "events.js",
        "destinations.js",
        "overview.js",
        "plugins.js",
        "schemas.js",
        "console.css",
    ] {
        let r = client()
            .get(gw.url(&format!("/console/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        let body = r.text().await.unwrap();
        for bad in ["http://", "https://", "//cdn", "innerHTML"] {
            let hits: Vec<&str> = body
                .lines()
                .filter(|l| l.contains(bad) && !l.contains("www.w3.org/2000/svg"))
                .collect();
            assert!(hits.is_empty(), "{file} has {bad}: {hits:?}");
        }
    }
    let (s, _) = get(&gw, "/console/nope.js").await;
    assert_eq!(s, 404);
    gw.stop().await;
}
