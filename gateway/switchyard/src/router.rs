//! The router: topic log -> plugin chain -> destination queues.
//!
//! Routing happens after the durable ack, so a failing plugin never loses an
//! event. The router reads events that are still marked pending-route, in
//! batches, decides their destinations, and writes the queue entries and the
//! removal of the pending marks in one atomic write. A crash anywhere in
//! between leaves the marks in place, and the next start routes those events
//! again (idempotently: a destination that already has a delivery state for
//! the event is skipped).
//!
//! Ingest hands over to the router through a [`Handoff`]: it rings after
//! every append that stored events, and the router reads what is pending.
//! The store puts routed entries in their queues itself, and the queues
//! wake their dispatchers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchyard_core::{DEFAULT_PRIORITY, Event, now_ms};
use switchyard_delivery::OrderingKey;
use switchyard_plugin_host::{ChainOutcome, OnError, PluginEvent, PluginHost, Step};
use switchyard_store::{
    DlqEntry, PluginVerdict, QueueEntry, Routed, SharedStore, Transformed, VerdictKind,
};
use switchyard_telemetry::Telemetry;
use switchyard_telemetry::spans::Routing;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

use crate::config::Config;

/// The hand-off from ingest (and DLQ replay) to the router.
#[derive(Clone, Default)]
pub struct Handoff(Arc<HandoffState>);

#[derive(Default)]
struct HandoffState {
    /// Rung when events are waiting to be routed.
    pending: Notify,
    /// Events were put back behind the router's low-water mark: it must
    /// look from the front once.
    rescan: AtomicBool,
}

impl Handoff {
    /// New events were appended: ingest calls this once the store has them.
    pub fn appended(&self) {
        self.0.pending.notify_one();
    }

    /// Events went back to routing from a topic's DLQ (they are older than
    /// what the router has routed since).
    pub fn replayed(&self) {
        self.0.rescan.store(true, Ordering::Release);
        self.0.pending.notify_one();
    }

    fn take_rescan(&self) -> bool {
        self.0.rescan.swap(false, Ordering::AcqRel)
    }
}

/// Events routed per batch: big enough to amortise one write and one plugin
/// call over many events, small enough to keep latency low under load.
const BATCH: usize = 512;

/// What the router knows of a topic.
#[derive(Debug, Clone)]
struct TopicRoutes {
    routes: Vec<String>,
    /// A sender header allowed to set the priority.
    priority_header: Option<String>,
    /// Plugin names, run in order over each batch of this topic's events.
    chain: Vec<String>,
}

/// What the router decides with: built from one config, and swapped whole
/// at a reload ([`Routes::swap`]). A batch loads it once, so every event
/// of a batch is routed under the same config.
pub struct RouteTable {
    topics: HashMap<String, TopicRoutes>,
    destinations: HashSet<String>,
    /// Where each FIFO destination takes its ordering key from.
    ordering: HashMap<String, OrderingKey>,
    plugins: Option<Arc<PluginHost>>,
}

/// The router's current [`RouteTable`], shared with the reload.
#[derive(Clone)]
pub struct Routes(Arc<std::sync::RwLock<Arc<RouteTable>>>);

impl Routes {
    pub fn new(table: RouteTable) -> Self {
        Self(Arc::new(std::sync::RwLock::new(Arc::new(table))))
    }

    /// The table in force now.
    pub fn load(&self) -> Arc<RouteTable> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `table` in force for the next batch; a batch being routed keeps
    /// the table it loaded.
    pub fn swap(&self, table: RouteTable) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
    }
}

/// Reads pending events and queues them for their destinations.
pub struct Router {
    store: SharedStore,
    telemetry: Arc<Telemetry>,
    handoff: Handoff,
    routes: Routes,
}

impl Router {
    pub fn new(
        config: &Config,
        store: SharedStore,
        telemetry: Arc<Telemetry>,
        handoff: Handoff,
        plugins: Option<Arc<PluginHost>>,
    ) -> Self {
        Self {
            store,
            telemetry,
            handoff,
            routes: Routes::new(RouteTable::new(config, plugins)),
        }
    }

    /// The handle a reload swaps the route table through.
    pub fn routes(&self) -> Routes {
        self.routes.clone()
    }
}

impl RouteTable {
    /// The table for `config`, running chains on `plugins`.
    pub fn new(config: &Config, plugins: Option<Arc<PluginHost>>) -> Self {
        let mut topics: HashMap<String, TopicRoutes> = config
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    TopicRoutes {
                        routes: t.routes.clone(),
                        priority_header: t.priority_header.as_ref().map(|h| h.to_ascii_lowercase()),
                        chain: t.plugins.clone(),
                    },
                )
            })
            .collect();
        // Operator events reach only the `[operator]` destination.
        if let Some(dest) = config
            .operator
            .as_ref()
            .and_then(|o| o.destination.as_ref())
        {
            topics.insert(
                crate::config::OPERATOR_TOPIC.to_owned(),
                TopicRoutes {
                    routes: vec![dest.clone()],
                    priority_header: None,
                    chain: Vec::new(),
                },
            );
        }
        let destinations = config.destinations.iter().map(|d| d.name.clone()).collect();
        let ordering = config
            .destinations
            .iter()
            .filter_map(|d| d.ordering.as_ref().map(|o| (d.name.clone(), o.key.clone())))
            .collect();
        Self {
            topics,
            destinations,
            ordering,
            plugins,
        }
    }
}

impl Router {
    /// Routes until `shutdown`, waking whenever the hand-off rings.
    ///
    /// At `shutdown` (given once the listener has stopped, so no event
    /// arrives after it) the router goes on until every event accepted
    /// before it is routed, for at most `grace`: a clean stop leaves none
    /// waiting for the router, so the stopped node's queues hold every
    /// event it accepted. Whatever `grace` leaves is routed at the next
    /// start. A store that long-polls (JetStream) is left at once: another
    /// gateway routes what this one was handed, after its ack wait.
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) {
        // The last id routed: scans start after it, skipping the tombstones
        // that routing leaves at the front of the pending keyspace.
        let mut low_water: Option<Ulid> = None;
        let mut drain_until: Option<tokio::time::Instant> = None;
        loop {
            let waits = self.store.pending_routes_wait();
            if shutdown.is_cancelled() {
                if waits {
                    return;
                }
                let until = *drain_until.get_or_insert_with(|| tokio::time::Instant::now() + grace);
                if tokio::time::Instant::now() >= until {
                    tracing::warn!(
                        ?grace,
                        "Stopped with events not yet routed (shutdown_grace passed); they are routed at the next start."
                    );
                    return;
                }
            }
            if self.handoff.take_rescan() {
                low_water = None;
            }
            let read = self.store.pending_routes(low_water, BATCH);
            // A store that long-polls is left at shutdown (what it handed
            // over unrouted goes to another gateway after its ack wait).
            let read = if waits {
                tokio::select! {
                    r = read => r,
                    _ = shutdown.cancelled() => return,
                }
            } else {
                read.await
            };
            let batch = match read {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "Cannot read events pending routing; retrying in 1s.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() && waits {
                continue;
            }
            if batch.is_empty() {
                if shutdown.is_cancelled() {
                    // Drained: every event accepted is routed.
                    return;
                }
                tokio::select! {
                    _ = self.handoff.0.pending.notified() => {}
                    // Once more round the loop: what is pending still goes.
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            let last = batch.last().map(|e| e.id);
            // Spans of this batch (see telemetry::spans::Routing); plugin
            // runs hang under it via `trace.plugin_run(..)`.
            let telemetry = &self.telemetry;
            let trace = telemetry.start_routing(&batch);
            let table = self.routes.load();
            let routed = self.route_batch(&table, batch, &trace).await;
            trace.record(&routed);
            match self.store.route(routed).await {
                Ok(()) => {
                    trace.end(telemetry, None);
                    low_water = last;
                }
                Err(e) => {
                    trace.end(telemetry, Some(&e.to_string()));
                    tracing::error!(error = %e, "Cannot write routing; retrying in 1s.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Decides where each event of a batch goes: each topic's plugin chain
    /// runs once over that topic's events in the batch (plugin calls cost
    /// microseconds each, so batching is what makes them cheap).
    async fn route_batch(
        &self,
        table: &RouteTable,
        batch: Vec<Event>,
        trace: &Routing,
    ) -> Vec<Routed> {
        let now = now_ms();
        let mut outcomes: HashMap<Ulid, (ChainOutcome, Vec<Step>)> = HashMap::new();
        if let Some(host) = &table.plugins {
            let mut by_topic: HashMap<&str, Vec<&Event>> = HashMap::new();
            for e in &batch {
                if table
                    .topics
                    .get(&e.topic)
                    .is_some_and(|t| !t.chain.is_empty())
                {
                    by_topic.entry(e.topic.as_str()).or_default().push(e);
                }
            }
            for (topic, events) in by_topic {
                let Some(t) = table.topics.get(topic) else {
                    continue;
                };
                let inputs = events.iter().map(|e| plugin_event(e)).collect();
                let span = trace.plugin_run(&self.telemetry, &t.chain.join(","), events.len());
                let results = host
                    .run_chain_traced(&t.chain, &table.destinations, inputs)
                    .await;
                let failed = results
                    .iter()
                    .filter(|(r, _)| matches!(r, ChainOutcome::Failed { .. }))
                    .count();
                if failed > 0 {
                    span.error(format!(
                        "{failed} of {} events failed the chain",
                        events.len()
                    ));
                }
                span.end();
                for (e, r) in events.iter().zip(results) {
                    outcomes.insert(e.id, r);
                }
            }
        }
        batch
            .into_iter()
            .map(|e| {
                let (outcome, steps) = match outcomes.remove(&e.id) {
                    Some((o, steps)) => (Some(o), steps),
                    None => (None, Vec::new()),
                };
                let mut routed = table.decide(e, outcome, now);
                routed.verdicts = steps.into_iter().map(verdict_record).collect();
                routed
            })
            .collect()
    }
}

impl RouteTable {
    /// Applies a chain's outcome (or the topic's static routes) to one event.
    fn decide(&self, e: Event, outcome: Option<ChainOutcome>, now: u64) -> Routed {
        let (mut routes, mut priority) = match self.topics.get(&e.topic) {
            Some(t) => (t.routes.clone(), header_priority(&e, t)),
            None => {
                tracing::warn!(event_id = %e.id, topic = %e.topic,
                    "Event of a topic no longer configured; it is not routed anywhere.");
                (Vec::new(), None)
            }
        };
        let mut delay_ms = 0;
        let mut plugin_key = None;
        let mut transformed = None;
        let mut topic_dead_letter = None;
        match outcome {
            None => {}
            Some(ChainOutcome::Done(v)) => {
                if let Some(r) = v.routes {
                    routes = r;
                }
                if let Some(p) = v.priority {
                    priority = Some(p.min(9));
                }
                delay_ms = v.delay_ms.unwrap_or(0);
                plugin_key = v.ordering_key;
                if v.payload.is_some() || v.headers.is_some() || v.content_type.is_some() {
                    transformed = Some(Transformed {
                        content_type: v
                            .content_type
                            .unwrap_or_else(|| e.meta.content_type.clone()),
                        headers: v.headers.unwrap_or_else(|| e.meta.headers.clone()),
                        payload: v.payload.unwrap_or_else(|| e.payload.clone()),
                        plugin: v.rewritten_by,
                    });
                }
            }
            Some(ChainOutcome::Failed {
                plugin,
                error,
                on_error,
            }) => match on_error {
                OnError::DeadLetter => {
                    tracing::warn!(event_id = %e.id, topic = %e.topic, plugin = %plugin, error = %error,
                        "Plugin failed; the event goes to the topic's dead-letter queue.");
                    routes = Vec::new();
                    topic_dead_letter = Some((
                        e.topic.clone(),
                        DlqEntry {
                            event_id: e.id,
                            error: format!("plugin {plugin:?}: {error}"),
                            attempts: 0,
                            dead_lettered_at_ms: now,
                            priority: priority.unwrap_or(DEFAULT_PRIORITY),
                            ordering_key: None,
                        },
                    ));
                }
                OnError::Skip => {
                    tracing::warn!(event_id = %e.id, topic = %e.topic, plugin = %plugin, error = %error,
                        "Plugin failed; the event is skipped (on_error = \"skip\").");
                    routes = Vec::new();
                }
                OnError::DefaultRoutes => {
                    tracing::warn!(event_id = %e.id, topic = %e.topic, plugin = %plugin, error = %error,
                        "Plugin failed; the event takes the topic's static routes.");
                }
            },
        }
        let priority = priority.unwrap_or(DEFAULT_PRIORITY);
        let mut seen = HashSet::new();
        let entries = routes
            .into_iter()
            .filter(|r| self.destinations.contains(r) && seen.insert(r.clone()))
            .map(|destination| QueueEntry {
                event_id: e.id,
                ordering_key: self.ordering_key(&destination, &e, plugin_key.as_deref()),
                destination,
                priority,
                due_ms: now + delay_ms,
                attempt: 0,
                history_base: 0,
                delay_ms,
                enqueued_at_ms: now,
                lease: None,
            })
            .collect();
        Routed {
            event_id: e.id,
            entries,
            transformed,
            verdicts: Vec::new(),
            topic_dead_letter,
        }
    }

    /// The ordering key of `e` at a FIFO destination, from the configured
    /// source; `None` at other destinations or when the source is absent
    /// (such events are not ordered).
    fn ordering_key(&self, dest: &str, e: &Event, from_plugin: Option<&str>) -> Option<String> {
        match self.ordering.get(dest)? {
            OrderingKey::Header(h) => e
                .meta
                .headers
                .iter()
                .find(|(k, _)| k == h)
                .map(|(_, v)| v.clone()),
            OrderingKey::Pointer(p) => {
                let v: serde_json::Value = serde_json::from_slice(&e.payload).ok()?;
                match v.pointer(p)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                }
            }
            OrderingKey::Plugin => from_plugin.map(str::to_owned),
        }
    }
}

/// A plugin's step as the store records it (cut to its bounds).
fn verdict_record(s: Step) -> PluginVerdict {
    let verdict = match (&s.error, &s.routes) {
        (Some(_), _) => VerdictKind::Error,
        (None, None) => VerdictKind::Keep,
        (None, Some(r)) if r.is_empty() => VerdictKind::Drop,
        (None, Some(_)) => VerdictKind::Route,
    };
    PluginVerdict {
        plugin: s.plugin,
        verdict,
        routes: s.routes.unwrap_or_default(),
        priority: s.priority,
        duration_us: s.micros,
        error: s.error,
    }
    .bounded()
}

/// The priority a sender asked for in the topic's `priority_header`, if the
/// topic allows one and the value is a digit 0-9.
fn header_priority(e: &Event, t: &TopicRoutes) -> Option<u8> {
    let h = t.priority_header.as_deref()?;
    let (_, v) = e.meta.headers.iter().find(|(k, _)| k == h)?;
    v.trim().parse::<u8>().ok().filter(|p| *p <= 9)
}

/// The event as the plugin contract describes it.
fn plugin_event(e: &Event) -> PluginEvent {
    PluginEvent {
        id: e.id.to_string(),
        topic: e.topic.clone(),
        received_at_ms: e.received_at_ms,
        headers: e.meta.headers.clone(),
        content_type: e.meta.content_type.clone(),
        payload: e.payload.clone(),
        attributes: e.meta.attributes.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn step(routes: Option<&[&str]>, error: Option<&str>) -> Step {
        Step {
            plugin: "p".into(),
            routes: routes.map(|r| r.iter().map(|s| s.to_string()).collect()),
            priority: Some(7),
            micros: 12,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn a_plugins_step_is_recorded_as_route_drop_keep_or_error() {
        let v = verdict_record(step(Some(&["a", "b"]), None));
        assert_eq!(v.verdict, VerdictKind::Route);
        assert_eq!(v.routes, ["a", "b"]);
        assert_eq!((v.priority, v.duration_us), (Some(7), 12));
        assert_eq!(
            verdict_record(step(Some(&[]), None)).verdict,
            VerdictKind::Drop
        );
        assert_eq!(verdict_record(step(None, None)).verdict, VerdictKind::Keep);
        let e = verdict_record(step(Some(&["a"]), Some("boom")));
        assert_eq!(e.verdict, VerdictKind::Error);
        assert_eq!(e.error.as_deref(), Some("boom"));
    }

    #[test]
    fn a_verdict_is_cut_to_its_bounds() {
        let many: Vec<String> = (0..100).map(|i| format!("d{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let long = "é".repeat(1000);
        let v = verdict_record(step(Some(&refs), Some(&long)));
        assert_eq!(v.routes.len(), 32);
        let err = v.error.unwrap();
        assert!(err.len() <= 512 + '…'.len_utf8(), "{}", err.len());
        assert!(err.ends_with('…'));
    }
}
