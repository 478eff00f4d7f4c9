//! Shared pieces of the end-to-end tests: a gateway started in-process with
//! `switchyard::run` on port 0, the real binary as a child process (for
//! crash and signal tests), and a recording HTTP sink whose answers a test
//! scripts (fail N times, then succeed; a status; a delay).
//!
//! The binary is found through `SWITCHYARD_BIN`, which `scripts/test.sh`
//! sets after building it (a separate tests package gets no
//! `CARGO_BIN_EXE_switchyard`), falling back to `target/debug/switchyard`.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use tempfile::TempDir;

pub mod config;
pub mod nats;

/// The workspace root (tests/ is one level down).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The compiled-plugin cache every test gateway shares (`plugin_cache_dir`
/// in [`config::Config::new`]): `target/e2e-plugin-cache`, or
/// `SWITCHYARD_TEST_PLUGIN_CACHE`. A 12-18 MB Python or JavaScript component
/// then compiles once per run of the suite (or once until it changes), not
/// once per test gateway; artefacts are named after the file's sha256 and
/// the engine's build, so a stale one is never loaded.
pub fn plugin_cache_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_TEST_PLUGIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace().join("target"))
                .join("e2e-plugin-cache")
        })
}

/// The `switchyard` binary under test.
pub fn bin() -> PathBuf {
    let p = std::env::var_os("SWITCHYARD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/debug/switchyard"));
    assert!(
        p.exists(),
        "the switchyard binary is missing at {}: run scripts/test.sh (or cargo build -p switchyard) first",
        p.display()
    );
    p
}

/// Config text for a gateway whose data dir is `data_dir`: `{data_dir}` is
/// that path, and `{store_prefix}` (a JetStream run's `[store] prefix`,
/// see [`config::Config::new`]) a prefix derived from it, so a gateway
/// restarted on the same data dir finds the same state in the cluster, as
/// it would on fjall.
pub fn fill(text: &str, data_dir: impl AsRef<std::path::Path>) -> String {
    let data_dir = data_dir.as_ref();
    text.replace("{data_dir}", &data_dir.display().to_string())
        .replace("{store_prefix}", &nats::prefix_for(data_dir))
}

/// A gateway running inside the test process.
pub struct Gateway {
    pub url: String,
    pub dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), switchyard::Error>>>,
}

impl Gateway {
    /// Starts a gateway from config text. `{data_dir}` in the text is
    /// replaced by a fresh temp dir; the listener is 127.0.0.1:0.
    pub async fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(config, dir).await
    }

    /// Starts a gateway on an existing data dir (for restarts).
    pub async fn start_in(config: &str, dir: TempDir) -> Self {
        let text = fill(config, dir.path().join("data"));
        let path = dir.path().join("switchyard.toml");
        std::fs::write(&path, &text).unwrap();
        let config = switchyard::config::Config::load(&path).unwrap();
        // Over TLS (the edge tests) the plain probe below cannot ask.
        let probe_ready = config.server.tls.is_none();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut task = tokio::spawn(switchyard::run(config, listener, async {
            let _ = rx.await;
        }));
        if probe_ready {
            wait_until_ready(&url, &mut task).await;
        }
        Self {
            url,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the gateway gracefully and hands back its data dir.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// `GET /metrics`: the Prometheus text (asserting a 200).
    pub async fn metrics(&self) -> String {
        let resp = client().get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET /metrics");
        resp.text().await.unwrap()
    }
}

/// Waits until the gateway being started by `task` answers `/healthz`.
/// Until then connections wait in the listen backlog, and a gateway that
/// fails to start drops them with a reset that would hide its error: this
/// panics with the error instead.
async fn wait_until_ready(
    url: &str,
    task: &mut tokio::task::JoinHandle<Result<(), switchyard::Error>>,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    loop {
        if task.is_finished() {
            match task.await {
                Ok(Ok(())) => panic!("the gateway stopped as it started"),
                Ok(Err(e)) => panic!("the gateway failed to start: {e:#}"),
                Err(e) => panic!("the gateway's task failed: {e}"),
            }
        }
        if let Ok(r) = probe.get(format!("{url}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not start within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real binary as a child process, logging JSON lines.
pub struct Process {
    pub url: String,
    pub child: Child,
    pub logs: Arc<Mutex<Vec<String>>>,
}

/// A test that fails midway still stops its gateway: an orphan would keep
/// the test run's output pipe open (and its ports and data dir) after the
/// test binary exited.
impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `switchyard serve --config <path>` and waits until it listens.
    /// The config should listen on 127.0.0.1:0; the address is read from the log.
    pub fn start(config: &Path) -> Self {
        Self::spawn(config, &[], &[])
    }

    /// Like [`Process::start`], with extra environment variables (the
    /// `OTEL_*` ones are process-global, so only a child can test them).
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(config, env, &[])
    }

    /// Like [`Process::start`], with extra `serve` arguments.
    pub fn start_with_args(config: &Path, args: &[&str]) -> Self {
        Self::spawn(config, &[], args)
    }

    fn spawn(config: &Path, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .args(["serve", "--log-json", "--config"])
            .arg(config)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "Switchyard is listening."
                {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or("").to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway did not start listening within 30s");
        Self {
            url: format!("http://{addr}"),
            child,
            logs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

/// One request a sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: String::new(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn body(mut self, b: &str) -> Self {
        self.body = b.to_owned();
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct SinkState {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

/// A recording HTTP sink on 127.0.0.1:0.
#[derive(Clone)]
pub struct Sink {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<Mutex<SinkState>>,
}

impl Sink {
    /// A sink that answers 200 unless scripted otherwise.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> Self {
        let state = Arc::new(Mutex::new(SinkState::default()));
        let st = state.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let st = st.clone();
            async move {
                let reply = {
                    let mut s = st.lock().unwrap();
                    s.received.push(Received {
                        at: Instant::now(),
                        headers,
                        body,
                    });
                    s.script
                        .pop_front()
                        .or_else(|| s.default.clone())
                        .unwrap_or_else(|| Reply::status(200))
                };
                tokio::time::sleep(reply.delay).await;
                let mut resp =
                    (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
                for (k, v) in reply.headers {
                    resp.headers_mut().insert(
                        axum::http::HeaderName::try_from(k).unwrap(),
                        v.parse().unwrap(),
                    );
                }
                resp
            }
        });
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            addr,
            state,
        }
    }

    /// Answers these, in order, before falling back to the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// The answer once the script is used up (200 if never set).
    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until at least `n` requests arrived, or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "sink got {} requests, expected {n} within {timeout:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A reqwest client for the tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POSTs `body` as JSON with extra headers: the status and the JSON
/// answer (`null` if it is not JSON).
pub async fn post_json(
    url: String,
    body: serde_json::Value,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = client().post(url).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// GETs `url` and reads its answer as JSON.
pub async fn get_json(url: String) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Per FIFO key (the `header` a receiver got), the event ids in the order
/// they arrived, a retry of the same event counted once.
pub fn order_by_key(received: &[Received], header: &str) -> HashMap<String, Vec<String>> {
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for r in received {
        let key = r.header(header).unwrap_or("").to_owned();
        let id = r.header("webhook-id").unwrap_or("").to_owned();
        let ids = seen.entry(key).or_default();
        if ids.last() != Some(&id) {
            ids.push(id);
        }
    }
    seen
}

/// The Python with the peer libraries (`SWITCHYARD_PYTHON`, set by
/// `scripts/test.sh`; falls back to the project's `.venv`).
pub fn python() -> PathBuf {
    let p = std::env::var_os("SWITCHYARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "no Python with the test peers at {}: run scripts/test.sh, or set SWITCHYARD_PYTHON",
        p.display()
    );
    p
}

/// Runs `tests/python/<script>` with JSON on stdin; returns (success, stdout).
pub fn run_python(script: &str, input: &serde_json::Value) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(python())
        .arg(workspace().join("tests/python").join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
