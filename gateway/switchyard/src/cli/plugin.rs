//! `switchyard plugin check|test`: a Wasm plugin tried without a gateway.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum PluginAction {
    /// Runs the plugin over the events in a JSON file and prints each verdict.
    #[command(
        after_help = "Example:\n  switchyard plugin test route_by_field.wasm --event event.json --config pointer=/type"
    )]
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
    #[command(after_help = "Example:\n  switchyard plugin check route_by_field.wasm")]
    Check {
        /// The plugin component (.wasm).
        plugin: PathBuf,
        /// Where compiled components are kept between runs, shared with
        /// `plugin test` (default $XDG_CACHE_HOME/switchyard/plugin-cache).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

pub async fn run(action: PluginAction) -> anyhow::Result<()> {
    use switchyard_plugin_host as plugins;
    match action {
        PluginAction::Check { plugin, cache_dir } => {
            let report =
                plugins::check_plugin(&plugin, cache_dir.or_else(plugins::default_cache_dir))
                    .await?;
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
            print_per_event(&ids, &report.per_event);
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

/// `plugin test`'s per-event timing: each event run alone (a call of its
/// own, so the call's fixed cost is in every figure), one line per event
/// for a short file and the spread with the slowest event for any file.
fn print_per_event(ids: &[String], times: &[std::time::Duration]) {
    const EACH_UP_TO: usize = 20;
    if times.is_empty() {
        return;
    }
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    if times.len() <= EACH_UP_TO {
        for (id, t) in ids.iter().zip(times) {
            eprintln!("event {id}: {:.1} us alone", us(*t));
        }
    }
    let mut sorted: Vec<std::time::Duration> = times.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (slowest, max) = ids
        .iter()
        .zip(times)
        .max_by_key(|(_, t)| **t)
        .map(|(id, t)| (id.as_str(), *t))
        .unwrap_or(("?", std::time::Duration::ZERO));
    eprintln!(
        "per event ({} of {}, each alone in a call of its own): min {:.1} us, median {:.1} us, p99 {:.1} us, max {:.1} us ({slowest})",
        times.len(),
        ids.len(),
        us(sorted[0]),
        us(at(0.5)),
        us(at(0.99)),
        us(max),
    );
}

/// A size as in the config (`64MiB`, `512KiB`, bytes).
fn parse_size(s: &str) -> Result<u64, String> {
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("{s:?} is not a size like 64MiB: {e}"))
}
