//! What `switchyard plugin check` and `switchyard plugin test` run: a plugin
//! tried on its own, without a gateway, a store or destinations.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use std::sync::Arc;

use super::config::MAX_BATCH_LIMIT;
use super::engine::{LogCapture, PluginEngine, PoolSize, check_contract};
use super::{
    ChainOutcome, PluginConfig, PluginError, PluginEvent, PluginHost, PluginStatus, Verdict,
};

/// What `plugin check` found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub path: PathBuf,
    /// sha256 of the file, hex: the version `GET /v1/plugins` will show.
    pub version: String,
    /// The contract version it exports, when it exports one we recognise.
    pub contract: Option<String>,
    /// True if this gateway can run it.
    pub implements: bool,
    /// Why not, when it can't.
    pub problem: Option<String>,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.implements {
            let contract = self.contract.as_deref().unwrap_or("?");
            write!(
                f,
                "{}: implements switchyard:plugin@{contract} (version {})",
                self.path.display(),
                super::host::short(&self.version)
            )?;
            if contract != super::CONTRACT_VERSION {
                write!(
                    f,
                    "; an older contract, still loaded: rebuilt with a current SDK it \
                     speaks @{} and costs less per event",
                    super::CONTRACT_VERSION
                )?;
            }
            Ok(())
        } else {
            write!(
                f,
                "{}: does NOT implement switchyard:plugin@{}: {}",
                self.path.display(),
                super::bindings::Contract::spoken("or"),
                self.problem.as_deref().unwrap_or("unknown problem")
            )
        }
    }
}

/// Compiles a component (through the cache in `cache_dir`, as `plugin
/// test` does, so checking then testing compiles once) and checks it against
/// the contract. `Err` only when the engine itself fails; a file that is not
/// a valid plugin is a report with `implements = false` and the reason.
pub async fn check_plugin(
    path: &Path,
    cache_dir: Option<PathBuf>,
) -> Result<CheckReport, PluginError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || check_blocking(&path, cache_dir))
        .await
        .map_err(|e| PluginError::Engine(format!("check task failed: {e}")))?
}

fn check_blocking(path: &Path, cache_dir: Option<PathBuf>) -> Result<CheckReport, PluginError> {
    let engine = PluginEngine::new(
        PoolSize {
            instances: 8,
            max_memory: super::limits::INTERPRETED_MAX_MEMORY,
        },
        cache_dir,
    )?;
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return Ok(CheckReport {
                path: path.to_owned(),
                version: String::new(),
                contract: None,
                implements: false,
                problem: Some(format!("cannot read the file: {e}")),
            });
        }
    };
    // Said in one line before wasmtime, whose error for a file that is not
    // Wasm at all is a multi-line dump of the bytes it expected.
    if let Some(problem) = not_a_component(&bytes) {
        return Ok(CheckReport {
            path: path.to_owned(),
            version: String::new(),
            contract: None,
            implements: false,
            problem: Some(problem.to_owned()),
        });
    }
    let version = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_owned());
    match engine.compile(&name, path) {
        Ok(c) => Ok(CheckReport {
            path: path.to_owned(),
            version,
            contract: Some(c.contract.version().to_owned()),
            implements: true,
            problem: None,
        }),
        Err(e) => {
            // Say which contract it speaks even when it is the wrong one.
            let contract = wasmtime::component::Component::from_binary(&engine.engine, &bytes)
                .ok()
                .and_then(|c| {
                    let found = check_contract(&engine.engine, &c);
                    found.ok().map(|c| c.version().to_owned())
                });
            Ok(CheckReport {
                path: path.to_owned(),
                version,
                contract,
                implements: false,
                problem: Some(e.to_string()),
            })
        }
    }
}

/// Why `bytes` cannot be a Wasm component, judged by its preamble (the
/// magic `\0asm` and the layer: 1 a core module, 0x0d a component).
fn not_a_component(bytes: &[u8]) -> Option<&'static str> {
    if !bytes.starts_with(b"\0asm") {
        return Some(
            "not a WebAssembly file (it does not start with \\0asm): give the .wasm component a \
             plugin build makes, e.g. cargo build --target wasm32-wasip2",
        );
    }
    if bytes.get(6..8) == Some(&[0, 0]) {
        return Some(
            "a core Wasm module, not a component: build for wasm32-wasip2, or wrap it with \
             wasm-tools component new",
        );
    }
    None
}

/// How `plugin test` runs a plugin: the limits a `[[plugins]]` entry would
/// set (unset: the gateway's defaults for the component's language), and
/// where compiled components are cached between runs.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    pub config: BTreeMap<String, String>,
    pub timeout: Option<std::time::Duration>,
    pub max_memory: Option<u64>,
    pub max_batch: Option<usize>,
    /// `None`: compile every time.
    pub cache_dir: Option<PathBuf>,
}

/// What `plugin test` saw.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// One per event, in order: its verdict, or the error that failed it.
    pub results: Vec<Result<Verdict, String>>,
    /// The plugin's log lines and stdout/stderr, in order.
    pub logs: Vec<String>,
    /// One per router batch: how many events and how long the chain took.
    pub batches: Vec<BatchTiming>,
    /// The first [`PER_EVENT_LIMIT`] events, each run again alone in a call
    /// of its own: how long each took. A batch's time says what the plugin
    /// costs on average; this says which event is slow. Each includes the
    /// fixed cost of one call, which a batch shares among its events.
    pub per_event: Vec<std::time::Duration>,
    /// The plugin's status afterwards: limits in force, calls, retries, timeouts.
    pub status: PluginStatus,
}

/// One router batch of `plugin test`.
#[derive(Debug, Clone, Copy)]
pub struct BatchTiming {
    pub events: usize,
    pub elapsed: std::time::Duration,
}

/// How many events `plugin test` also times one by one: enough for any
/// hand-written file, bounded for a file of 100,000 (which would otherwise
/// take a call per event a second time).
pub const PER_EVENT_LIMIT: usize = 1000;

/// The default `--cache-dir`: `$XDG_CACHE_HOME/switchyard/plugin-cache`,
/// else `~/.cache/switchyard/plugin-cache`; `None` without either.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("switchyard").join("plugin-cache"))
}

/// Runs one plugin over `events` as the gateway would: in router batches of
/// at most 512 events, each split into calls of the plugin's `max_batch`,
/// with the gateway's limits (or `options`'), the usual re-run of a failed
/// batch one event at a time, and no destination check.
pub async fn test_plugin(
    path: &Path,
    options: TestOptions,
    events: Vec<PluginEvent>,
) -> Result<TestReport, PluginError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_else(|| "plugin".to_owned());
    let mut pc = PluginConfig::new(name.clone(), path);
    pc.config = options.config;
    pc.timeout = options.timeout;
    pc.max_memory = options.max_memory.map(bytesize::ByteSize::b);
    pc.max_batch = options.max_batch;
    pc.validate()
        .map_err(|e| PluginError::Event(format!("--{}: {}", e.key, e.message)))?;
    let capture = Arc::new(LogCapture::default());
    let cache = options.cache_dir;
    let cap = capture.clone();
    let host =
        tokio::task::spawn_blocking(move || PluginHost::start_with(&[pc], cache, false, Some(cap)))
            .await
            .map_err(|e| PluginError::Engine(format!("load task failed: {e}")))??;
    let chain = [name];
    let mut results = Vec::with_capacity(events.len());
    let mut batches = Vec::new();
    let alone: Vec<PluginEvent> = events.iter().take(PER_EVENT_LIMIT).cloned().collect();
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let batch: Vec<PluginEvent> = events.by_ref().take(MAX_BATCH_LIMIT).collect();
        let n = batch.len();
        let started = std::time::Instant::now();
        let outcomes = host.run(&chain, None, batch).await;
        batches.push(BatchTiming {
            events: n,
            elapsed: started.elapsed(),
        });
        results.extend(outcomes.into_iter().map(|o| match o {
            ChainOutcome::Done(v) => Ok(v),
            ChainOutcome::Failed { error, .. } => Err(error),
        }));
    }
    // The report's status and logs are the gateway-like run's; the timing
    // pass below must not add to its calls, retries or log lines.
    let status = host
        .statuses()
        .pop()
        .ok_or_else(|| PluginError::Engine("the plugin vanished from its host".to_owned()))?;
    let logs = capture.take();
    let mut per_event = Vec::with_capacity(alone.len());
    for event in alone {
        let started = std::time::Instant::now();
        host.run(&chain, None, vec![event]).await;
        per_event.push(started.elapsed());
    }
    drop(capture.take());
    Ok(TestReport {
        results,
        logs,
        batches,
        per_event,
        status,
    })
}

/// One event in an event file. Everything is optional except a body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFile {
    id: Option<String>,
    topic: Option<String>,
    received_at_ms: Option<u64>,
    #[serde(default)]
    headers: Headers,
    content_type: Option<String>,
    /// The payload as JSON: serialised as it is.
    body: Option<serde_json::Value>,
    /// The payload as raw text.
    body_text: Option<String>,
    /// The payload as base64, for binary payloads.
    body_base64: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// Headers as an object (`{"x-a": "1"}`) or a list of pairs (repeats allowed).
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Headers {
    #[default]
    None,
    Map(BTreeMap<String, String>),
    Pairs(Vec<(String, String)>),
}

/// Parses an event file for `switchyard plugin test`: one JSON object or an
/// array of them. Fields: `id`, `topic` (default `test`), `received_at_ms`,
/// `headers` (object or list of pairs), `content_type`, `attributes`, and
/// the payload as one of `body` (any JSON value, sent serialised, content
/// type `application/json` by default), `body_text` or `body_base64`.
pub fn events_from_json(text: &str) -> Result<Vec<PluginEvent>, PluginError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| PluginError::Event(format!("not JSON: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let e: EventFile = serde_json::from_value(item)
                .map_err(|e| PluginError::Event(format!("event [{i}]: {e}")))?;
            let (payload, default_ct) = match (e.body, e.body_text, e.body_base64) {
                (Some(v), None, None) => (v.to_string().into_bytes(), "application/json"),
                (None, Some(t), None) => (t.into_bytes(), "text/plain"),
                (None, None, Some(b)) => (
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .map_err(|e| {
                            PluginError::Event(format!("event [{i}]: body_base64: {e}"))
                        })?,
                    "application/octet-stream",
                ),
                (None, None, None) => (Vec::new(), "application/octet-stream"),
                _ => {
                    return Err(PluginError::Event(format!(
                        "event [{i}]: give only one of body, body_text, body_base64"
                    )));
                }
            };
            let headers = match e.headers {
                Headers::None => Vec::new(),
                Headers::Map(m) => m.into_iter().collect(),
                Headers::Pairs(p) => p,
            }
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
            Ok(PluginEvent {
                id: e.id.unwrap_or_else(|| ulid::Ulid::new().to_string()),
                topic: e.topic.unwrap_or_else(|| "test".to_owned()),
                received_at_ms: e.received_at_ms.unwrap_or_else(now_ms),
                headers,
                content_type: e.content_type.unwrap_or_else(|| default_ct.to_owned()),
                payload: payload.into(),
                attributes: e.attributes.into_iter().collect(),
            })
        })
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
