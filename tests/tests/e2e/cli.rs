//! The `switchyard` command line: config checking and the DLQ tools, run as
//! a user would run them, against a live gateway.

use std::process::{Command, Stdio};
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
    let (ok, out, err) = cli(args(&["dlq", "purge", "--yes", "--id", &one]))
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("purged 1"), "{out}");

    // Replay the rest to a sink that now works.
    sink.set_default(Reply::status(200));
    let before = sink.received().len();
    let (ok, out, err) = cli(args(&["dlq", "replay"])).await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("replayed 2"), "{out}");
    sink.wait_for(before + 2, Duration::from_secs(10)).await;

    let (ok, out, _) = cli(args(&["dlq", "purge", "--yes"])).await.unwrap();
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

/// Runs the binary with stdin closed (not a terminal) and returns its exit
/// code with stdout and stderr.
fn run_code(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The CLI run from a blocking task, so the in-process gateway keeps serving.
async fn cli_async(args: Vec<String>, stdin: Vec<u8>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_code(&a, &stdin)
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn check_config_reports_every_problem_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    // Two entries that do not deserialize: both named.
    let shape = dir.path().join("shape.toml");
    std::fs::write(
        &shape,
        "[[destinations]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\nconcurency = 3\n\n\
         [[topics]]\nname = \"t\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let (code, _, err) = run_code(&["check-config", "--config", shape.to_str().unwrap()], b"");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 problems"), "{err}");
    assert!(
        err.contains("destinations[0]") && err.contains("concurency"),
        "{err}"
    );
    assert!(err.contains("topics[0]") && err.contains("colour"), "{err}");

    // Four mistakes that parse: all four reported, each with its key.
    let checks = dir.path().join("checks.toml");
    std::fs::write(
        &checks,
        "[[destinations]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\ntimeout = \"0s\"\n\n\
         [[topics]]\nname = \"t\"\nroutes = [\"ghost\"]\n\n\
         [[topics]]\nname = \"t\"\nidempotency_window = \"0s\"\n",
    )
    .unwrap();
    let (code, _, err) = run_code(&["check-config", "--config", checks.to_str().unwrap()], b"");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("4 problems"), "{err}");
    for key in [
        "destinations[0].timeout: must be above zero, e.g. \"10s\"",
        "topics[0].routes[0]: unknown destination \"ghost\"",
        "topics[1].name: topic \"t\" is defined twice",
        "topics[1].idempotency_window: must be above zero",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
    assert!(err.contains("checks.toml"), "{err}");
}

#[test]
fn check_config_no_env_checks_a_config_without_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secrets.toml");
    std::fs::write(
        &cfg,
        "[[destinations]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n\
         headers = { authorization = \"env:SWITCHYARD_TEST_NEVER_SET_TOKEN\" }\n\
         signing = { scheme = \"standard-webhooks\", secrets = [\"env:SWITCHYARD_TEST_NEVER_SET_WHSEC\"] }\n",
    )
    .unwrap();
    let path = cfg.to_str().unwrap();
    let (code, _, err) = run_code(&["check-config", "--config", path], b"");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("SWITCHYARD_TEST_NEVER_SET") && err.contains("--no-env"),
        "{err}"
    );
    let (code, out, err) = run_code(&["check-config", "--config", path, "--no-env"], b"");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok (0 topics, 1 destinations)"), "{out}");
    // --no-env still finds the other mistakes.
    std::fs::write(
        &cfg,
        "[[destinations]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\ntimeout = \"0s\"\n\
         headers = { authorization = \"env:SWITCHYARD_TEST_NEVER_SET_TOKEN\" }\n",
    )
    .unwrap();
    let (code, _, err) = run_code(&["check-config", "--config", path, "--no-env"], b"");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("destinations[0].timeout"), "{err}");
}

#[test]
fn a_host_name_as_listen_address_is_refused_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("listen.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"localhost:8080\"\n").unwrap();
    let (code, _, err) = run_code(&["check-config", "--config", cfg.to_str().unwrap()], b"");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("\"localhost:8080\" is not an IP address and port")
            && err.contains("127.0.0.1:8080"),
        "{err}"
    );
    let (code, _, err) = run_code(&["serve", "--listen", "localhost:8080"], b"");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("127.0.0.1:8080"), "{err}");
}

#[test]
fn every_command_has_a_description_and_an_example() {
    for cmd in [
        vec!["serve"],
        vec!["check-config"],
        vec!["status"],
        vec!["destinations"],
        vec!["destinations", "pause"],
        vec!["destinations", "resume"],
        vec!["events"],
        vec!["events", "list"],
        vec!["events", "show"],
        vec!["events", "tail"],
        vec!["publish"],
        vec!["dlq"],
        vec!["dlq", "list"],
        vec!["dlq", "show"],
        vec!["dlq", "replay"],
        vec!["dlq", "purge"],
        vec!["plugin"],
        vec!["plugin", "check"],
        vec!["plugin", "test"],
        vec!["completions"],
    ] {
        let mut args = cmd.clone();
        args.push("-h");
        let (code, out, err) = run_code(&args, b"");
        assert_eq!(code, 0, "{cmd:?}: {err}");
        let first = out.lines().next().unwrap_or("");
        assert!(
            !first.trim().is_empty(),
            "{cmd:?} has no description:\n{out}"
        );
        let example = out.split("Example:\n  ").nth(1).unwrap_or("");
        assert!(
            example.lines().next().unwrap_or("").contains("switchyard "),
            "{cmd:?} has no example:\n{out}"
        );
        // Every flag says what it does: its help is on its line, or (clap's
        // layout for long flags) on the next, indented deeper.
        let lines: Vec<&str> = out.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with('-') {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let next = lines.get(i + 1).copied().unwrap_or("");
            let next_indent = next.len() - next.trim_start().len();
            assert!(
                line.trim().contains("  ") || (!next.trim().is_empty() && next_indent > indent),
                "{cmd:?}: a flag without a description: {line:?}\n{out}"
            );
        }
    }
}

#[test]
fn shell_completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef switchyard"),
        ("fish", "complete -c switchyard"),
    ] {
        let (code, out, err) = run_code(&["completions", shell], b"");
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(out.contains("dlq") && out.contains("publish"), "{shell}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pause_publish_and_events_from_the_command_line() {
    let sink = Sink::start().await;
    let cfg = Config::new()
        .destination(Destination::http("billing", &sink.url))
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    let server = gw.url.clone();
    let with = |a: &[&str]| {
        let mut v = strings(a);
        v.extend(["--server".to_owned(), server.clone()]);
        v
    };

    // Pause, then publish from stdin: the event waits in the queue.
    let (code, out, err) = cli_async(with(&["destinations", "pause", "billing"]), vec![]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "billing: paused");
    let (code, out, err) = cli_async(
        with(&["publish", "orders", "--header", "Idempotency-Key: o-1"]),
        br#"{"id":1,"note":"from stdin"}"#.to_vec(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_owned();
    assert_eq!(id.len(), 26, "an event id: {out}");

    let (code, out, err) = cli_async(with(&["status", "--json"]), vec![]).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["destinations"][0]["paused"], true, "{v}");
    assert_eq!(v["destinations"][0]["queue_depth"], 1, "{v}");
    let (code, out, err) = cli_async(with(&["status"]), vec![]).await;
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap_or("");
    for col in [
        "DESTINATION",
        "DEPTH",
        "LAG",
        "IN FLIGHT",
        "DLQ",
        "PAUSED",
        "CIRCUIT",
    ] {
        assert!(header.contains(col), "{out}");
    }
    // PAUSED, then CIRCUIT (`-`: no circuit breaker).
    let row = out.lines().nth(1).unwrap_or("");
    let cells: Vec<&str> = row.split_whitespace().rev().take(2).collect();
    assert!(row.starts_with("billing") && cells == ["-", "yes"], "{out}");

    // From a file, with a header; a resend is a duplicate.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.json");
    std::fs::write(&file, r#"{"id":2}"#).unwrap();
    let f = file.to_str().unwrap();
    let (code, out, err) = cli_async(
        with(&[
            "publish",
            "orders",
            "--file",
            f,
            "-H",
            "Idempotency-Key:o-2",
            "--json",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    let (_, out, _) = cli_async(
        with(&[
            "publish",
            "orders",
            "--file",
            f,
            "-H",
            "Idempotency-Key:o-2",
        ]),
        vec![],
    )
    .await;
    assert!(
        out.contains(first["id"].as_str().unwrap()) && out.contains("duplicate"),
        "{out}"
    );

    // Events, with their payloads.
    let (code, out, err) = cli_async(with(&["events", "list", "--topic", "orders"]), vec![]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ID"), "{out}");
    assert!(out.contains(&id) && out.contains("from stdin"), "{out}");
    let (code, out, err) = cli_async(
        with(&["events", "list", "--topic", "orders", "--json"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["events"][0]["payload"], r#"{"id":1,"note":"from stdin"}"#);
    let (code, out, err) = cli_async(with(&["events", "show", &id]), vec![]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("from stdin") && out.contains("delivery to billing: pending"),
        "{out}"
    );
    let (code, _, err) = cli_async(with(&["events", "list", "--topic", "nosuch"]), vec![]).await;
    assert_ne!(code, 0);
    assert!(err.contains("404") && err.contains("nosuch"), "{err}");

    // Resume: the queue drains to the sink.
    let (code, out, err) = cli_async(with(&["destinations", "resume", "billing"]), vec![]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "billing: delivering");
    sink.wait_for(2, Duration::from_secs(10)).await;
    let args = with(&["events", "show", &id, "--json"]);
    eventually(Duration::from_secs(10), "the attempt recorded", || {
        let args = args.clone();
        async move {
            let (code, out, _) = cli_async(args, vec![]).await;
            let v: Value = serde_json::from_str(&out).ok()?;
            (code == 0 && v["deliveries"][0]["attempts"][0]["status"] == 200).then_some(())
        }
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_follows_new_events() {
    use std::io::BufRead;
    let cfg = Config::new()
        .destination(Destination::log("audit"))
        .topic(Topic::new("orders").routes(["audit"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    // An event from before the tail started is not shown.
    client()
        .post(gw.url("/v1/topics/orders/events"))
        .body(r#"{"old":true}"#)
        .send()
        .await
        .unwrap();
    let mut child = Command::new(bin())
        .args([
            "events",
            "tail",
            "--json",
            "--interval",
            "100ms",
            "--server",
            &gw.url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..2 {
        client()
            .post(gw.url("/v1/topics/orders/events"))
            .body(format!(r#"{{"new":{i}}}"#))
            .send()
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(10)))
            .expect("tail printed the new events");
        let v: Value = serde_json::from_str(&line).unwrap();
        seen.push(v["payload"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, [r#"{"new":0}"#, r#"{"new":1}"#]);
    child.kill().unwrap();
    child.wait().unwrap();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_show_and_a_purge_that_asks_first() {
    let sink = Sink::start().await;
    sink.set_default(Reply::status(500).body("down for maintenance"));
    let cfg = Config::new()
        .destination(
            Destination::http("billing", &sink.url)
                .retry("{ initial = \"20ms\", max_attempts = 2 }"),
        )
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    let v: Value = client()
        .post(gw.url("/v1/topics/orders/events"))
        .body(r#"{"order":7}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(15), "a dead letter", || async {
        let v: Value = client()
            .get(gw.url("/v1/destinations/billing/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["depth"] == 1).then_some(())
    })
    .await;
    let server = gw.url.clone();
    let with = |a: &[&str]| {
        let mut v = strings(a);
        v.extend(["--server".to_owned(), server.clone()]);
        v
    };
    let (code, out, err) = cli_async(
        with(&["dlq", "show", "--destination", "billing", &id]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#"{"order":7}"#), "the payload: {out}");
    assert!(
        out.contains("attempt 1") && out.contains("attempt 2"),
        "{out}"
    );
    assert!(out.contains("HTTP 500"), "{out}");
    let (code, out, err) = cli_async(
        with(&["dlq", "show", "--destination", "billing", &id, "--json"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["event"]["payload"], r#"{"order":7}"#);
    assert_eq!(v["attempts"], 2);

    // No terminal and no --yes: exit 2 naming --yes, without reading stdin
    // (the pipe stays open with "yes" in it) and without deleting anything.
    let (code, _, err) = cli_async(
        with(&["dlq", "purge", "--destination", "billing"]),
        b"yes\n".to_vec(),
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--yes"), "{err}");
    let v: Value = client()
        .get(gw.url("/v1/destinations/billing/dlq"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["depth"], 1, "nothing purged without confirmation");
    let (code, out, err) = cli_async(
        with(&["dlq", "purge", "--destination", "billing", "--yes"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("purged 1"), "{out}");
    gw.stop().await;
}

#[test]
fn plugin_check_on_a_file_that_is_not_wasm_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("notes.wasm");
    std::fs::write(&f, "this is a text file\n").unwrap();
    let (code, out, err) = run_code(&["plugin", "check", f.to_str().unwrap()], b"");
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(out.contains("not a WebAssembly file"), "{out}");
}

#[test]
fn logs_carry_no_colour_codes_when_not_at_a_terminal() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("s.toml");
    std::fs::write(
        &cfg,
        Config::new().for_process(&dir.path().join("data")).build(),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.contains("Switchyard is listening.");
        lines.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = lines.join("\n");
    assert!(text.contains("Switchyard is listening."), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in a piped log: {text:?}"
    );
}

#[test]
fn a_second_gateway_on_the_same_data_dir_names_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("s.toml");
    std::fs::write(&cfg, Config::new().for_process(&data).build()).unwrap();
    let first = switchyard_tests::Process::start(&cfg);
    let pid = first.child.id();
    let (code, _, err) = run_code(&["serve", "--config", cfg.to_str().unwrap()], b"");
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "another switchyard process (pid {pid}) is using {}",
            data.display()
        )),
        "{err}"
    );
    assert_eq!(
        err.matches("another switchyard process").count(),
        1,
        "{err}"
    );
    first.kill9();
}

/// The unit in deploy/systemd passes `systemd-analyze verify` (with the
/// binary path pointed at the one built here). Machines without systemd
/// skip this, saying so.
#[test]
fn the_systemd_unit_verifies() {
    let unit =
        std::fs::read_to_string(workspace().join("deploy/systemd/switchyard.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/switchyard serve"));
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the unit was not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/switchyard", bin().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}
