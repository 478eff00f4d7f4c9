//! The files in `deploy/` that operators load stay true to the gateway:
//! every metric the Prometheus alerts and the Grafana dashboard name is one
//! a real gateway exports after real traffic (ingest, a delivery, a dead
//! letter, a plugin, a circuit breaker, an operator event), and every alert
//! has a runbook in `docs/runbooks.md` that its `runbook_url` points at.
//! (`promtool check rules` and `promtool test rules` run in
//! `scripts/test.sh`.)

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Plugin, Topic, quoted};
use switchyard_tests::{Gateway, Reply, Sink, client, eventually, workspace};

const WAIT: Duration = Duration::from_secs(20);

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace().join(rel)).unwrap()
}

/// Every `switchyard_*` metric name a file mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("switchyard_") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..len].to_owned());
        rest = &tail[len..];
    }
    out
}

/// The metric names of a scrape: one per sample line (histograms appear
/// as their `_bucket`, `_sum` and `_count` series, counters with `_total`).
fn scraped(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or("").to_owned())
        .collect()
}

/// Whether `name` is exported: as it is, or (a histogram named by its
/// base) through its `_bucket` series.
fn exported(name: &str, scrape: &BTreeSet<String>) -> bool {
    scrape.contains(name) || scrape.contains(&format!("{name}_bucket"))
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

#[test]
fn metric_names_are_read_from_files_and_scrapes_alike() {
    let names = metric_names(
        "expr: rate(switchyard_a_total[5m]) / switchyard_b_seconds_bucket{x=\"switchyard\"}\n# switchyardalert",
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "switchyard_a_total".to_owned(),
            "switchyard_b_seconds_bucket".to_owned()
        ])
    );
    let s = scraped("# TYPE h histogram\nswitchyard_h_bucket{le=\"1\"} 1\nswitchyard_g 3\n");
    assert!(exported("switchyard_h", &s) && exported("switchyard_g", &s));
    assert!(!exported("switchyard_nope", &s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_dashboard_use_is_exported() {
    // `ok` delivers; `bad` answers 400, which dead-letters at once; `down`
    // answers 503 behind a circuit breaker that opens on the first failure:
    // an operator event, sent to `ok`.
    let ok = Sink::start().await;
    let bad = Sink::start().await;
    bad.set_default(Reply::status(400));
    let down = Sink::start().await;
    down.set_default(Reply::status(503));
    let cfg = Config::new()
        .plugin(
            Plugin::new("route-by-field", &wasm("route_by_field.wasm")).config([
                ("pointer", "/type"),
                ("routes", "x=ok"),
                ("default", "ok"),
            ]),
        )
        .destination(Destination::http("ok", &ok.url))
        .destination(Destination::http("bad", &bad.url))
        .destination(Destination::http("down", &down.url).set(
            "circuit_breaker",
            "{ consecutive = 1, probe_interval = \"1h\", max_probe_interval = \"1h\" }",
        ))
        .topic(
            Topic::new("orders")
                .routes(["ok"])
                .plugins(["route-by-field"]),
        )
        .topic(Topic::new("plain").routes(["bad", "down"]))
        .raw(&format!("[operator]\ndestination = {}\n", quoted("ok")))
        .build();
    let gw = Gateway::start(&cfg).await;
    for (topic, body) in [("orders", r#"{"type":"x"}"#), ("plain", r#"{"n":1}"#)] {
        let r = client()
            .post(gw.url(&format!("/v1/topics/{topic}/events")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "publish to {topic}");
    }
    // A refusal too, so ingest outcomes other than `accepted` exist.
    let r = client()
        .post(gw.url("/v1/topics/plain/events/batch"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    eventually(
        WAIT,
        "a delivery, a dead letter and an open circuit",
        || async {
            let v: Value = client()
                .get(gw.url("/v1/destinations"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let d = |n: &str| {
                v["destinations"]
                    .as_array()
                    .and_then(|a| a.iter().find(|d| d["name"] == n).cloned())
                    .unwrap_or(Value::Null)
            };
            // The event and the operator event about `down`.
            (ok.received().len() >= 2
                && d("bad")["dlq_depth"] == 1
                && d("down")["circuit"] == "open")
                .then_some(())
        },
    )
    .await;

    let scrape = scraped(&gw.metrics().await);
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/switchyard.json",
    ] {
        let used = metric_names(&read(file));
        assert!(used.len() >= 8, "{file} names only {used:?}");
        let missing: Vec<_> = used.iter().filter(|n| !exported(n, &scrape)).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics the gateway does not export: {missing:?}\nexported: {scrape:?}"
        );
    }
    gw.stop().await;
}

#[test]
fn the_dashboard_is_grafana_json_with_a_query_per_panel() {
    let d: Value = serde_json::from_str(&read("deploy/grafana/switchyard.json")).unwrap();
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    for p in panels {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            assert!(t["expr"].as_str().unwrap().contains("switchyard_"), "{t}");
        }
    }
}

/// `(alert, runbook_url)` from alerts.yml, in order.
fn alerts() -> Vec<(String, String)> {
    let text = read("deploy/prometheus/alerts.yml");
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert:") {
            out.push((name.trim().to_owned(), String::new()));
        } else if let Some(url) = line.strip_prefix("runbook_url:") {
            let last = out.last_mut().expect("a runbook_url after an alert");
            last.1 = url.trim().trim_matches('"').to_owned();
        }
    }
    out
}

#[test]
fn every_alert_has_a_runbook_its_url_points_at() {
    let alerts = alerts();
    assert!(alerts.len() >= 8, "{alerts:?}");
    let runbooks = read("docs/runbooks.md");
    let sections: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|s| s.trim().to_owned())
        .collect();
    for (name, url) in &alerts {
        assert!(
            sections.contains(name),
            "docs/runbooks.md has no `## {name}`"
        );
        // GitHub's anchor for a heading that is one word: lower case.
        assert_eq!(
            url,
            &format!("docs/runbooks.md#{}", name.to_lowercase()),
            "{name}'s runbook_url"
        );
        let body = runbooks
            .split(&format!("## {name}\n"))
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap();
        for part in ["**Means:**", "**Look at:**", "**Fix:**"] {
            assert!(body.contains(part), "{name}'s runbook lacks {part}");
        }
        assert!(
            body.contains("switchyard "),
            "{name}'s runbook names no command"
        );
    }
    let names: BTreeSet<String> = alerts.into_iter().map(|(n, _)| n).collect();
    let orphans: Vec<_> = sections.difference(&names).collect();
    assert!(orphans.is_empty(), "runbooks for no alert: {orphans:?}");
}
