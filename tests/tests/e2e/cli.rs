//! The `switchyard` command line: config checking and the DLQ tools, run as
//! a user would run them, against a live gateway.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic};
use switchyard_tests::{Gateway, Reply, Sink, bin, client, eventually, workspace};

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[destinations]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\nconcurency = 3\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["check-config", "--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("concurency") && err.contains("bad.toml"),
        "{err}"
    );

    let bad_route = dir.path().join("route.toml");
    std::fs::write(
        &bad_route,
        "[[topics]]\nname = \"t\"\nroutes = [\"ghost\"]\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["check-config", "--config", bad_route.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("topics[0].routes[0]") && err.contains("ghost"),
        "{err}"
    );
}

#[test]
fn the_quickstart_config_is_valid() {
    let qs = workspace().join("examples/quickstart/switchyard.toml");
    let (ok, out, err) = run(&["check-config", "--config", qs.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("ok"), "{out}");
    // The quickstart has no tokens: check-config says what that means.
    assert!(
        err.contains("warning: No [auth] tokens are configured"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_replay_and_purge_from_the_command_line() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(500));
    let cfg = Config::new()
        .destination(
            Destination::http("billing", &sink.url)
                .retry("{ initial = \"20ms\", max_attempts = 1 }"),
        )
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    for _ in 0..3 {
        client()
            .post(gw.url("/v1/topics/orders/events"))
            .body("{}")
            .send()
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(15), "three dead letters", || async {
        let v: Value = client()
            .get(gw.url("/v1/destinations/billing/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["depth"] == 3).then_some(())
    })
    .await;
    let server = gw.url.clone();
    let cli = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&a)
        })
    };
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--destination".into(),
            "billing".into(),
            "--server".into(),
            server.clone(),
        ]);
        v
    };

    let (ok, out, err) = cli(args(&["dlq", "list"])).await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("3 dead letters"), "{out}");
    assert!(out.contains("HTTP 500"), "{out}");

    // Purge one by id.
    let v: Value = client()
        .get(gw.url("/v1/destinations/billing/dlq"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let one = v["entries"][0]["id"].as_str().unwrap().to_owned();
    let (ok, out, err) = cli(args(&["dlq", "purge", "--id", &one])).await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("purged 1"), "{out}");

    // Replay the rest to a sink that now works.
    sink.set_default(Reply::status(200));
    let before = sink.received().len();
    let (ok, out, err) = cli(args(&["dlq", "replay"])).await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("replayed 2"), "{out}");
    sink.wait_for(before + 2, Duration::from_secs(10)).await;

    let (ok, out, _) = cli(args(&["dlq", "purge"])).await.unwrap();
    assert!(ok);
    assert!(out.contains("purged 0"), "{out}");

    let (ok, _, err) = cli(vec![
        "dlq".into(),
        "list".into(),
        "--destination".into(),
        "ghost".into(),
        "--server".into(),
        gw.url.clone(),
    ])
    .await
    .unwrap();
    assert!(!ok);
    assert!(err.contains("404"), "{err}");
    gw.stop().await;
}
