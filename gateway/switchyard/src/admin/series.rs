//! The gateway's own short history for the console's overview charts:
//! every [`INTERVAL`] a sampler reads the counters and levels `/metrics`
//! shows into a ring of [`CAPACITY`] samples (the last 15 minutes), and
//! `GET /v1/stats/series` turns neighbouring samples into rates.
//!
//! It lives in the gateway so that the charts need no Prometheus; it is
//! memory only (a restart starts an empty history) and costs a few hundred
//! bytes a destination a sample.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use switchyard_core::event::rfc3339;
use switchyard_core::now_ms;
use tokio_util::sync::CancellationToken;

use crate::http::App;

/// How often the sampler reads the numbers.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Samples kept: 15 minutes at [`INTERVAL`].
pub const CAPACITY: usize = 450;

/// One destination at one moment: totals since start, and levels.
#[derive(Debug, Clone)]
struct DestSample {
    name: String,
    delivered: u64,
    /// Attempts that failed (retried or dead-lettered).
    failed: u64,
    dead_lettered: u64,
    depth: u64,
    in_flight: u64,
    /// Age of the oldest pending entry: how far behind the destination is.
    lag_seconds: f64,
    dlq_depth: u64,
}

#[derive(Debug, Clone)]
struct Sample {
    at_ms: u64,
    /// Events accepted on every topic since start.
    ingested: u64,
    store_disk_bytes: u64,
    free_disk_bytes: Option<u64>,
    destinations: Vec<DestSample>,
}

/// The ring of samples, shared by the sampler and the endpoint.
#[derive(Debug, Default)]
pub struct Series {
    samples: Mutex<VecDeque<Sample>>,
}

impl Series {
    fn push(&self, s: Sample) {
        // A poisoned lock only means a panic mid-push; the ring is still a
        // ring, so go on with it.
        let mut ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(s);
    }

    fn snapshot(&self) -> Vec<Sample> {
        let ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().cloned().collect()
    }
}

/// Reads one sample from the parts that own the numbers.
async fn read(app: &App) -> Option<Sample> {
    let m = &app.telemetry.metrics;
    let stats = match app.delivery.stats().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read destination stats for the time series.");
            return None;
        }
    };
    let destinations = stats
        .into_iter()
        .map(|s| {
            let acks = s.pull.as_ref().map_or(0, |p| p.acks);
            DestSample {
                delivered: m.attempts_total(&s.name, "delivered") + acks,
                failed: m.attempts_total(&s.name, "retry")
                    + m.attempts_total(&s.name, "dead_letter"),
                dead_lettered: m.attempts_total(&s.name, "dead_letter"),
                depth: s.queue_depth,
                in_flight: s.in_flight,
                lag_seconds: s.oldest_pending_age_seconds,
                dlq_depth: s.dlq_depth,
                name: s.name,
            }
        })
        .collect();
    Some(Sample {
        at_ms: now_ms(),
        ingested: app
            .config
            .topics
            .iter()
            .map(|t| m.ingest_accepted(&t.name))
            .sum(),
        store_disk_bytes: app.store.disk_space(),
        free_disk_bytes: fs4::available_space(&app.config.server.data_dir).ok(),
        destinations,
    })
}

/// Samples every [`INTERVAL`] until `stop`.
pub async fn sample(app: App, stop: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Some(s) = read(&app).await {
            app.series.push(s);
        }
    }
}

/// A per-second rate between two totals (counters only grow; a smaller
/// total reads as no change).
fn rate(before: u64, after: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    after.saturating_sub(before) as f64 / seconds
}

/// `GET /v1/stats/series`: each sample after the first, with rates over
/// the interval that ends at it.
pub async fn series(State(app): State<App>) -> Response {
    let samples = app.series.snapshot();
    let mut out = Vec::with_capacity(samples.len());
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let dt = b.at_ms.saturating_sub(a.at_ms) as f64 / 1000.0;
        let mut dests = Map::new();
        for d in &b.destinations {
            let prev = a.destinations.iter().find(|p| p.name == d.name);
            let r = |f: fn(&DestSample) -> u64| rate(prev.map_or(f(d), f), f(d), dt);
            dests.insert(
                d.name.clone(),
                json!({
                    "delivered_per_second": r(|s| s.delivered),
                    "failed_per_second": r(|s| s.failed),
                    "dead_lettered_per_second": r(|s| s.dead_lettered),
                    "queue_depth": d.depth,
                    "in_flight": d.in_flight,
                    "lag_seconds": d.lag_seconds,
                    "dlq_depth": d.dlq_depth,
                }),
            );
        }
        out.push(json!({
            "at": rfc3339(b.at_ms),
            "ingest_per_second": rate(a.ingested, b.ingested, dt),
            "store_disk_bytes": b.store_disk_bytes,
            "free_disk_bytes": b.free_disk_bytes,
            "destinations": Value::Object(dests),
        }));
    }
    axum::Json(json!({
        "interval_seconds": INTERVAL.as_secs(),
        "window_seconds": INTERVAL.as_secs() * CAPACITY as u64,
        "samples": out,
    }))
    .into_response()
}
