//! Config reload on the real binary: SIGHUP and `POST /v1/admin/reload`
//! put a new config file in force without dropping a connection or an
//! event; an invalid file is refused whole and the running config stays;
//! a setting read only at start is named as needing a restart; a removed
//! destination keeps its queue until it returns.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::{Process, Reply, Sink, client, eventually};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const ROOT: &str = "root-token-0123456789abcdef";
const OLD: &str = "old-token-0123456789abcdef";
const NEW: &str = "new-token-0123456789abcdef";

fn write(path: &Path, config: &Config) {
    std::fs::write(path, config.build()).unwrap();
}

fn base(dir: &Path) -> Config {
    Config::new().for_process(&dir.join("data"))
}

fn sighup(gw: &Process) {
    let pid = gw.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Counts the gateway's log lines with this message.
fn logged(gw: &Process, message: &str) -> usize {
    gw.logs
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == message)
        .count()
}

async fn wait_logged(gw: &Process, message: &str, n: usize) {
    eventually(Duration::from_secs(20), message, || async move {
        (logged(gw, message) >= n).then_some(())
    })
    .await;
}

/// One HTTP/1.1 keep-alive connection, written by hand so the test knows
/// every request goes over the same socket.
struct KeepAlive {
    stream: BufReader<tokio::net::TcpStream>,
    host: String,
}

impl KeepAlive {
    async fn open(base_url: &str) -> Self {
        let host = base_url.trim_start_matches("http://").to_owned();
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        Self {
            stream: BufReader::new(stream),
            host,
        }
    }

    /// Sends a request and reads the whole answer: (status, body).
    async fn post(&mut self, path: &str, body: &str) -> (u16, String) {
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        assert!(!line.is_empty(), "the connection was closed by the gateway");
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            self.stream.read_line(&mut h).await.unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

fn ids(sink: &Sink) -> HashSet<String> {
    sink.received()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_adds_a_destination_and_a_route_without_dropping_a_connection_or_an_event() {
    let (a, b) = (Sink::start().await, Sink::start().await);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    write(
        &path,
        &base(dir.path())
            .destination(Destination::http("a", &a.url))
            .topic(Topic::new("orders").routes(["a"])),
    );
    let gw = Process::start(&path);
    let mut conn = KeepAlive::open(&gw.url).await;
    let (s, _) = conn.post("/v1/topics/orders/events", "{\"n\":0}").await;
    assert_eq!(s, 202);
    a.wait_for(1, Duration::from_secs(10)).await;

    // Publishers run through the reload: every event answered 202 must
    // arrive at `a`, whose route stays.
    let stop = Arc::new(AtomicBool::new(false));
    let mut publishers = Vec::new();
    for w in 0..4 {
        let (url, stop) = (gw.url("/v1/topics/orders/events"), stop.clone());
        publishers.push(tokio::spawn(async move {
            let c = client();
            let mut acked = HashSet::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let r = c
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(format!("{{\"w\":{w},\"n\":{n}}}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202, "publishing during a reload");
                let v: Value = r.json().await.unwrap();
                acked.insert(v["id"].as_str().unwrap().to_owned());
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    write(
        &path,
        &base(dir.path())
            .destination(Destination::http("a", &a.url))
            .destination(Destination::http("b", &b.url))
            .topic(Topic::new("orders").routes(["a", "b"])),
    );
    sighup(&gw);
    wait_logged(&gw, "Config reloaded.", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = HashSet::new();
    for p in publishers {
        acked.extend(p.await.unwrap());
    }
    assert!(acked.len() > 10, "publishers got {} events in", acked.len());

    // The same connection, after the reload: the new route is in force.
    let (s, body) = conn.post("/v1/topics/orders/events", "{\"n\":1}").await;
    assert_eq!(s, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(Duration::from_secs(20), "the new event at b", || {
        let got = ids(&b);
        let id = id.clone();
        async move { got.contains(&id).then_some(()) }
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "every event acknowledged during the reload at a",
        || {
            let got = ids(&a);
            let missing = acked.difference(&got).count();
            async move { (missing == 0).then_some(()) }
        },
    )
    .await;
    assert!(gw.child.id() > 0);
    let status = gw.sigterm();
    assert!(
        status.success(),
        "SIGHUP must not end the process: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_added_by_reload_works_and_a_removed_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    let config = |second: (&str, &str)| {
        base(dir.path())
            .destination(Destination::log("audit"))
            .topic(Topic::new("orders").routes(["audit"]))
            .token("root", ROOT, ["admin"])
            .token(second.0, second.1, ["admin"])
    };
    write(&path, &config(("old", OLD)));
    let gw = Process::start(&path);
    let status = |token: &'static str| {
        let url = gw.url("/v1/destinations");
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(OLD).await, 200);
    assert_eq!(status(NEW).await, 401);

    write(&path, &config(("new", NEW)));
    // The admin endpoint needs the admin scope.
    let r = client()
        .post(gw.url("/v1/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(gw.url("/v1/admin/reload"))
        .bearer_auth(ROOT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["reloaded"], true, "{v}");
    assert_eq!(v["restart_needed"], serde_json::json!([]), "{v}");
    assert_eq!(status(NEW).await, 200);
    assert_eq!(status(OLD).await, 401);
    gw.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_is_refused_whole_and_the_running_config_stays() {
    let a = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    write(
        &path,
        &base(dir.path())
            .destination(Destination::http("a", &a.url))
            .topic(Topic::new("orders").routes(["a"])),
    );
    let gw = Process::start(&path);

    // A new destination (valid) and a topic routing to one that does not
    // exist: nothing of it may come into force.
    write(
        &path,
        &base(dir.path())
            .destination(Destination::http("a", &a.url))
            .destination(Destination::log("extra"))
            .topic(Topic::new("orders").routes(["a"]))
            .topic(Topic::new("refunds").routes(["nosuch"])),
    );
    let r = client()
        .post(gw.url("/v1/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_config", "{v}");
    let errors = v["error"]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e
            .as_str()
            .unwrap()
            .contains("unknown destination \"nosuch\"")),
        "{v}"
    );

    // SIGHUP with the same file: refused and logged, the process lives on.
    sighup(&gw);
    wait_logged(
        &gw,
        "Config reload refused: the file has errors; the running config stays.",
        2,
    )
    .await;
    let r = client()
        .post(gw.url("/v1/topics/refunds/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the refused file's topic must not exist");
    let dests: Value = client()
        .get(gw.url("/v1/destinations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = dests
        .as_array()
        .or_else(|| dests["destinations"].as_array())
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"], "{dests}");
    let r = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("content-type", "application/json")
        .body("{\"after\":\"refusal\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    a.wait_for(1, Duration::from_secs(10)).await;
    gw.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_change_is_reported_as_needing_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    let config = base(dir.path())
        .destination(Destination::log("audit"))
        .topic(Topic::new("orders").routes(["audit"]));
    write(&path, &config);
    let gw = Process::start(&path);
    write(
        &path,
        &config
            .server("listen", quoted("127.0.0.1:1"))
            .topic(Topic::new("refunds").routes(["audit"])),
    );
    let r = client()
        .post(gw.url("/v1/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["reloaded"], true, "{v}");
    assert_eq!(
        v["restart_needed"],
        serde_json::json!(["server.listen"]),
        "{v}"
    );
    // The rest came into force, on the old address.
    let r = client()
        .post(gw.url("/v1/topics/refunds/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let warned = gw.logs.lock().unwrap().iter().any(|l| {
        l.contains("keep their running values until a restart") && l.contains("server.listen")
    });
    assert!(warned, "the log names server.listen");
    gw.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_destination_keeps_its_queue_until_it_returns() {
    let b = Sink::start().await;
    b.set_default(Reply::status(503));
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("switchyard.toml");
    let with_b = base(dir.path())
        .destination(Destination::log("audit"))
        .destination(Destination::http("b", &b.url).retry(
            "{ initial = \"300ms\", multiplier = 1.0, max_delay = \"300ms\", max_attempts = 1000 }",
        ))
        .topic(Topic::new("orders").routes(["b"]));
    write(&path, &with_b);
    let gw = Process::start(&path);
    for n in 0..3 {
        let r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .body(format!("{{\"n\":{n}}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    b.wait_for(3, Duration::from_secs(10)).await;

    write(
        &path,
        &base(dir.path())
            .destination(Destination::log("audit"))
            .topic(Topic::new("orders").routes(["audit"])),
    );
    let v: Value = client()
        .post(gw.url("/v1/admin/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["destinations_removed"], serde_json::json!(["b"]), "{v}");
    let removed = eventually(
        Duration::from_secs(10),
        "b shown as removed, 3 queued",
        || async {
            let v: Value = client()
                .get(gw.url("/v1/destinations"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let list = v
                .as_array()
                .or_else(|| v["destinations"].as_array())?
                .clone();
            let b = list.into_iter().find(|d| d["name"] == "b")?;
            (b["removed"] == true && b["queue_depth"].as_u64()? + b["in_flight"].as_u64()? == 3)
                .then_some(b)
        },
    )
    .await;
    assert_eq!(removed["in_flight"], 0, "{removed}");
    // Nothing goes out to a removed destination.
    let before = b.received().len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(b.received().len(), before, "sent to a removed destination");

    // It returns (now answering 200): the kept queue drains.
    b.set_default(Reply::status(200));
    write(&path, &with_b);
    let v: Value = client()
        .post(gw.url("/v1/admin/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["destinations_added"], serde_json::json!(["b"]), "{v}");
    eventually(
        Duration::from_secs(20),
        "the kept queue drained",
        || async {
            let ok = b.received().len();
            (ok >= before + 3).then_some(())
        },
    )
    .await;
    gw.sigterm();
}

/// In process, through the real `switchyard::run`: a file with several
/// independent mistakes is refused with every one of them listed, each
/// naming its key; a `[telemetry]` change comes into force with the rest
/// and needs no restart (its spans: `telemetry::a_reload_turns_tracing_on...`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_lists_every_error_and_a_telemetry_change_needs_no_restart() {
    let config = || {
        Config::new()
            .destination(Destination::log("audit"))
            .topic(Topic::new("orders").routes(["audit"]))
    };
    let gw = switchyard_tests::Gateway::start(&config().build()).await;
    let file = gw.dir.path().join("switchyard.toml");
    let data = gw.dir.path().join("data").display().to_string();
    let write_in =
        |c: Config| std::fs::write(&file, switchyard_tests::fill(&c.build(), &data)).unwrap();
    let reload = || async {
        let r = client()
            .post(gw.url("/v1/admin/reload"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };

    // Three mistakes in sections that each parse: all three reported.
    write_in(
        config()
            .destination(
                Destination::http("slow", "http://127.0.0.1:9/").set("timeout", quoted("0s")),
            )
            .topic(Topic::new("refunds").routes(["nosuch"]))
            .raw("[operator]\ndlq_threshold = 0\n"),
    );
    let (status, v) = reload().await;
    assert_eq!(status, 422, "{v}");
    let errors: Vec<String> = v["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    for key in ["timeout", "nosuch", "operator.dlq_threshold"] {
        assert!(
            errors.iter().any(|e| e.contains(key)),
            "no error about {key}: {errors:#?}"
        );
    }
    assert!(errors.len() >= 3, "{errors:#?}");
    // Two entries that do not even deserialize: both reported too.
    write_in(
        config()
            .destination(Destination::log("a").set("concurency", "3"))
            .topic(
                Topic::new("b")
                    .routes(["audit"])
                    .set("max_bodyy", quoted("1KiB")),
            ),
    );
    let (status, v) = reload().await;
    assert_eq!(status, 422, "{v}");
    let text = v["error"]["errors"].to_string();
    assert!(
        text.contains("concurency") && text.contains("max_bodyy"),
        "{v}"
    );
    assert!(v["error"]["errors"].as_array().unwrap().len() >= 2, "{v}");

    // A telemetry change: in force with the rest (a new topic), no restart.
    write_in(
        config()
            .topic(Topic::new("refunds").routes(["audit"]))
            .raw("[telemetry]\nservice_name = \"renamed\"\n"),
    );
    let (status, v) = reload().await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["restart_needed"], serde_json::json!([]), "{v}");
    let r = client()
        .post(gw.url("/v1/topics/refunds/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    gw.stop().await;
}
