//! NATS JetStream for the tests: which backend the shared suite runs on,
//! the cluster `scripts/test.sh` starts for the run, and private 3-node
//! clusters for the fault tests (which kill servers, so they must not share
//! one with other tests).
//!
//! `SWITCHYARD_TEST_BACKEND=jetstream` runs the shared suite on the
//! JetStream backend: every [`crate::config::Config`] then gets a `[store]`
//! section naming `SWITCHYARD_NATS` (comma-separated URLs) and a prefix of
//! its own, so tests share the cluster without seeing each other.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

/// Whether this run's shared suite is on JetStream.
pub fn jetstream_run() -> bool {
    std::env::var("SWITCHYARD_TEST_BACKEND").is_ok_and(|b| b == "jetstream")
}

/// The run's cluster: `SWITCHYARD_NATS`, which `scripts/test.sh` exports
/// after `scripts/nats-cluster.sh start`.
pub fn servers() -> Vec<String> {
    let v = std::env::var("SWITCHYARD_NATS").unwrap_or_default();
    let s: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    assert!(
        !s.is_empty(),
        "SWITCHYARD_NATS is not set: run scripts/test.sh, or `bash scripts/nats-cluster.sh start` and export SWITCHYARD_NATS=nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224"
    );
    s
}

/// The prefix of the gateway whose data dir is `data_dir`: the same for
/// the same path, distinct between paths (temp dirs are unique).
pub fn prefix_for(data_dir: &std::path::Path) -> String {
    use std::hash::{Hash, Hasher};
    // `DefaultHasher::new()` has fixed keys: stable within and across runs.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut h);
    format!("d{:016x}", h.finish())
}

/// A prefix no other test uses.
pub fn fresh_prefix() -> String {
    format!("t{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

/// A 3-node cluster of this test's own, on free ports, removed on drop.
pub struct Cluster {
    dir: TempDir,
    client_base: u16,
    cluster_base: u16,
    http_base: u16,
}

fn free_run(n: u16) -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand_u16() % 20_000);
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} free consecutive ports found");
}

fn rand_u16() -> u16 {
    (ulid::Ulid::new().random() & 0xffff) as u16
}

impl Cluster {
    /// Starts three servers and waits for JetStream (about a second).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let c = Self {
            dir,
            client_base: free_run(3),
            cluster_base: free_run(3),
            http_base: free_run(3),
        };
        c.script(&["start"]);
        c
    }

    fn script(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(crate::workspace().join("scripts/nats-cluster.sh"))
            .args(args)
            .env("JS_PROBE_DIR", self.dir.path())
            .env("JS_CLIENT_BASE", self.client_base.to_string())
            .env("JS_CLUSTER_BASE", self.cluster_base.to_string())
            .env("JS_HTTP_BASE", self.http_base.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nats-cluster.sh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn servers(&self) -> Vec<String> {
        (0..3)
            .map(|i| format!("nats://127.0.0.1:{}", self.client_base + i))
            .collect()
    }

    /// SIGKILL of node `n` (1..3).
    pub fn kill(&self, n: u8) {
        self.script(&["kill", &n.to_string()]);
    }

    /// Starts node `n` again and waits until the cluster is ready.
    pub fn restart(&self, n: u8) {
        self.script(&["restart", &n.to_string()]);
    }

    /// The node (1..3) leading stream `stream`, from the monitoring port.
    pub fn stream_leader(&self, stream: &str) -> Option<u8> {
        for i in 0..3u16 {
            let url = format!(
                "http://127.0.0.1:{}/jsz?streams=true&raft=true",
                self.http_base + i
            );
            let Ok(out) = Command::new("curl").args(["-s", "-m", "2", &url]).output() else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
                continue;
            };
            for acc in v["account_details"].as_array().into_iter().flatten() {
                for s in acc["stream_detail"].as_array().into_iter().flatten() {
                    if s["name"] == stream
                        && let Some(l) = s["cluster"]["leader"].as_str()
                    {
                        return l.trim_start_matches('n').parse().ok();
                    }
                }
            }
        }
        None
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.script(&["clean"]);
    }
}

/// Waits `d` (for readability in fault tests).
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}
