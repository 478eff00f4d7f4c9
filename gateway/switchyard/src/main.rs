//! The `switchyard` command: the gateway (`serve`), config checking, and
//! thin clients of the admin API (`dlq ...`). Only this file parses flags
//! and handles signals; everything else is the library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use switchyard::config::Config;

/// glibc's allocator spent ~15% of the gateway's CPU under load (bodies of
/// 1 KB allocated and freed across threads); mimalloc handles that pattern well.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A WebAssembly-extensible event-routing gateway."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the gateway.
    Serve {
        /// The TOML config file. Without one: 127.0.0.1:8080, data in ./switchyard-data.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Overrides `server.listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Overrides `server.data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log as JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
    },
    /// Checks a config file and reports the first error, naming the key.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Dead-letter queues: list, replay, purge.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Try a Wasm plugin without a gateway.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
}

#[derive(Subcommand)]
enum PluginAction {
    /// Runs the plugin over the events in a JSON file and prints each verdict.
    Test {
        /// The plugin component (.wasm).
        plugin: PathBuf,
        /// One event as JSON, or an array of them (fields: topic, headers,
        /// content_type, body | body_text | body_base64, attributes).
        #[arg(long)]
        event: PathBuf,
        /// Plugin config entries, as in the TOML's `config` table.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Time per call, as `timeout` in `[[plugins]]` (default: the
        /// gateway's for the component's language).
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Memory per instance, as `max_memory` (e.g. 64MiB).
        #[arg(long, value_parser = parse_size)]
        max_memory: Option<u64>,
        /// Events per call at most, as `max_batch` (1-512).
        #[arg(long)]
        max_batch: Option<usize>,
        /// Succeed even when a batch failed and was re-run one event at a
        /// time (as the gateway would, slowly).
        #[arg(long)]
        allow_retries: bool,
        /// Where compiled components are kept between runs (default
        /// $XDG_CACHE_HOME/switchyard/plugin-cache).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Says whether the file implements the plugin contract, and which version.
    Check {
        /// The plugin component (.wasm).
        plugin: PathBuf,
    },
}

#[derive(Args, Clone)]
struct DlqTarget {
    /// The destination whose DLQ to act on.
    #[arg(long, conflicts_with = "topic", required_unless_present = "topic")]
    destination: Option<String>,
    /// The topic whose DLQ (plugin failures) to act on.
    #[arg(long)]
    topic: Option<String>,
    /// The gateway's base URL.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "SWITCHYARD_SERVER"
    )]
    server: String,
    /// An API token with the `admin` scope, sent as `Authorization: Bearer`.
    /// Needed when the gateway has `[auth]` tokens (or from another machine).
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl DlqTarget {
    fn base(&self) -> String {
        let server = self.server.trim_end_matches('/');
        match (&self.destination, &self.topic) {
            (Some(d), _) => format!("{server}/v1/destinations/{d}/dlq"),
            (None, Some(t)) => format!("{server}/v1/topics/{t}/dlq"),
            (None, None) => unreachable!("clap requires one of them"),
        }
    }
}

#[derive(Subcommand)]
enum DlqAction {
    /// Lists dead letters.
    List {
        #[command(flatten)]
        target: DlqTarget,
        /// How many entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-queues dead letters with a fresh attempt budget.
    Replay {
        #[command(flatten)]
        target: DlqTarget,
        /// Only these event ids (default: all).
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Only entries dead-lettered at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only entries dead-lettered at or before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Deletes dead letters for good.
    Purge {
        #[command(flatten)]
        target: DlqTarget,
        /// Only this event id (default: all).
        #[arg(long)]
        id: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            log_json,
        } => serve(config, listen, data_dir, log_json),
        Command::CheckConfig { config } => {
            let c = Config::load(&config)?;
            println!(
                "{}: ok ({} topics, {} destinations)",
                config.display(),
                c.topics.len(),
                c.destinations.len()
            );
            // What `serve` would warn about at start, said before it runs.
            if c.auth.tokens.is_empty() {
                eprintln!("warning: {}", switchyard::auth::NO_TOKENS_WARNING);
            }
            Ok(())
        }
        Command::Dlq { action } => runtime()?.block_on(dlq(action)),
        Command::Plugin { action } => runtime()?.block_on(plugin(action)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(
    config: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
    log_json: bool,
) -> anyhow::Result<()> {
    init_logs(log_json);
    let mut config = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(l) = listen {
        config.server.listen = l;
    }
    if let Some(d) = data_dir {
        config.server.data_dir = d;
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let reload = switchyard::Reload::new();
        // Registered before the gateway starts, so no SIGHUP falls to the
        // default action (which ends the process).
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hup) => {
                tokio::spawn(reload_on_sighup(hup, reload.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGHUP; reload with POST /v1/admin/reload.");
            }
        }
        switchyard::run_with_reload(config, listener, shutdown_signal(), reload).await?;
        Ok(())
    })
}

/// SIGHUP reloads the config file (the library logs what changed).
#[cfg(unix)]
async fn reload_on_sighup(mut hup: tokio::signal::unix::Signal, reload: switchyard::Reload) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading the config file.");
        let report = reload.request().await;
        if !report.reloaded {
            tracing::warn!(errors = ?report.errors, "SIGHUP reload refused.");
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await.context("cannot reach the gateway")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the gateway answered {status}: {msg} (pass --token or set SWITCHYARD_TOKEN)");
        }
        bail!("the gateway answered {status}: {msg}");
    }
    Ok(body)
}

async fn dlq(action: DlqAction) -> anyhow::Result<()> {
    let target = match &action {
        DlqAction::List { target, .. }
        | DlqAction::Replay { target, .. }
        | DlqAction::Purge { target, .. } => target,
    };
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &target.token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .context("--token: the token must be printable ASCII")?;
        // Keeps the token out of reqwest's Debug output.
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .default_headers(headers)
        .build()?;
    match action {
        DlqAction::List {
            target,
            limit,
            json,
        } => {
            let body = call(http.get(target.base()).query(&[("limit", limit)])).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let entries = body["entries"].as_array().cloned().unwrap_or_default();
            println!("{} dead letters (showing {})", body["depth"], entries.len());
            for e in entries {
                println!(
                    "{}  {}  attempts={}  {}",
                    e["id"].as_str().unwrap_or("?"),
                    e["dead_lettered_at"].as_str().unwrap_or("?"),
                    e["attempts"],
                    e["error"].as_str().unwrap_or("")
                );
            }
        }
        DlqAction::Replay {
            target,
            ids,
            since,
            until,
        } => {
            let base = target.base();
            // Explicit ids or a time range: one request. All: page through the
            // DLQ and replay a page at a time, so a long replay shows progress.
            if !ids.is_empty() || since.is_some() || until.is_some() {
                let body = call(http.post(format!("{base}/replay")).json(&json!({
                    "ids": ids, "since": since, "until": until,
                })))
                .await?;
                println!("replayed {}", body["replayed"]);
                return Ok(());
            }
            let first = call(http.get(&base).query(&[("limit", 1)])).await?;
            let total = first["depth"].as_u64().unwrap_or(0);
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} replayed ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let mut replayed = 0u64;
            loop {
                let page = call(http.get(&base).query(&[("limit", 500)])).await?;
                let ids: Vec<Value> = page["entries"]
                    .as_array()
                    .map(|es| es.iter().map(|e| e["id"].clone()).collect())
                    .unwrap_or_default();
                if ids.is_empty() {
                    break;
                }
                let body = call(
                    http.post(format!("{base}/replay"))
                        .json(&json!({ "ids": ids })),
                )
                .await?;
                let n = body["replayed"].as_u64().unwrap_or(0);
                if n == 0 {
                    break;
                }
                replayed += n;
                bar.inc(n);
            }
            bar.finish_and_clear();
            println!("replayed {replayed}");
        }
        DlqAction::Purge { target, id } => {
            let url = match &id {
                Some(id) => format!("{}/{id}", target.base()),
                None => target.base(),
            };
            let body = call(http.delete(url)).await?;
            println!("purged {}", body["purged"]);
        }
    }
    Ok(())
}

async fn plugin(action: PluginAction) -> anyhow::Result<()> {
    use switchyard_plugin_host as plugins;
    match action {
        PluginAction::Check { plugin } => {
            let report = plugins::check_plugin(&plugin).await?;
            println!("{report}");
            if !report.implements {
                std::process::exit(1);
            }
        }
        PluginAction::Test {
            plugin,
            event,
            config,
            timeout,
            max_memory,
            max_batch,
            allow_retries,
            cache_dir,
        } => {
            let mut cfg = std::collections::BTreeMap::new();
            for kv in config {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--config {kv:?}: expected KEY=VALUE"))?;
                cfg.insert(k.to_owned(), v.to_owned());
            }
            let text = std::fs::read_to_string(&event)
                .with_context(|| format!("cannot read {}", event.display()))?;
            let events = plugins::events_from_json(&text)?;
            let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
            let options = plugins::TestOptions {
                config: cfg,
                timeout,
                max_memory,
                max_batch,
                cache_dir: cache_dir.or_else(plugins::default_cache_dir),
            };
            let report = plugins::test_plugin(&plugin, options, events).await?;
            for line in &report.logs {
                eprintln!("plugin log: {line}");
            }
            let s = &report.status;
            eprintln!(
                "language {}, limits: max_memory {} ({}), timeout {}ms ({}), max_batch {} ({})",
                s.language,
                bytesize::ByteSize::b(s.limits.max_memory.value),
                serde_json::to_value(s.limits.max_memory.source)?
                    .as_str()
                    .unwrap_or("?"),
                s.limits.timeout_ms.value,
                serde_json::to_value(s.limits.timeout_ms.source)?
                    .as_str()
                    .unwrap_or("?"),
                s.limits.max_batch.value,
                serde_json::to_value(s.limits.max_batch.source)?
                    .as_str()
                    .unwrap_or("?"),
            );
            for (i, b) in report.batches.iter().enumerate() {
                let us = b.elapsed.as_secs_f64() * 1e6;
                eprintln!(
                    "batch {}: {} events in {:.1} ms, {:.1} us/event",
                    i + 1,
                    b.events,
                    us / 1000.0,
                    us / b.events.max(1) as f64
                );
            }
            let mut failed = false;
            for (id, r) in ids.iter().zip(report.results) {
                match r {
                    Ok(v) => println!("{id}: {}", serde_json::to_string(&v)?),
                    Err(e) => {
                        failed = true;
                        println!("{id}: error: {e}");
                    }
                }
            }
            if let Some(advice) = &s.last_timeout {
                eprintln!("timeout: {advice}");
            }
            if s.batch_retries > 0 {
                eprintln!(
                    "{} batch(es) failed and were re-run one event at a time, as the gateway would{}",
                    s.batch_retries,
                    if allow_retries {
                        ""
                    } else {
                        " (pass --allow-retries to accept that)"
                    }
                );
            }
            if failed {
                bail!("the plugin failed on some events");
            }
            if s.batch_retries > 0 && !allow_retries {
                bail!("a batch failed and was re-run one event at a time");
            }
        }
    }
    Ok(())
}

/// A size as in the config (`64MiB`, `512KiB`, bytes).
fn parse_size(s: &str) -> Result<u64, String> {
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("{s:?} is not a size like 64MiB: {e}"))
}
