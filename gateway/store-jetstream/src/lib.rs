//! Switchyard's clustered store: the storage traits on a NATS JetStream
//! cluster, so several gateways share one state and a dead machine loses
//! nothing. Replication is JetStream's (Raft over `replicas` servers); this
//! crate maps Switchyard's model onto it:
//!
//! - `<P>_EV`: the events (one message each, `<p>.ev.<topic>.<id>`, Msg-Id =
//!   the event id) and topic-DLQ replays. Its durable `route` consumer hands
//!   each event to one gateway's router until that router acknowledges it
//!   with the routing written.
//! - `<P>_Q` (work-queue retention): each destination's queue, a subject per
//!   priority band (`<p>.q.<dest>.p<N>`) with a durable consumer each, and
//!   not-yet-due entries as scheduled messages the server moves into their
//!   band at the due time; beside them, never consumed, the delivery
//!   states, attempts, leases, dead letters and plugin rewrites, so that
//!   each routing and each settlement is one atomic batch.
//! - `<P>_ST`: idempotency keys (with the window as their TTL) and paused
//!   flags. `<P>_REG`: the schema registry.
//!
//! docs/scale-out.md describes the layout, what a 202 means here, and the
//! differences from the embedded store.

mod fifo;
mod import;
mod js;
mod log;
mod names;
mod queues;
mod registry;
mod setup;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use switchyard_core::EventId;
use switchyard_core::secret::Secret;
use switchyard_store::{QueuePolicy, QueueStats, StoreError};
use tokio::sync::Notify;

use crate::js::{Delivered, Js};
use crate::names::Names;

/// `[store]` for `backend = "jetstream"`.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub servers: Vec<String>,
    /// Replicas of every stream (1, 3 or 5).
    pub replicas: usize,
    /// Names of streams and subjects start with it.
    pub prefix: String,
    pub token: Option<Secret>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub creds_file: Option<PathBuf>,
    pub tls: Option<TlsFiles>,
    /// How long a JetStream call may take before it counts as failed (an
    /// ingest request then answers 503 and the sender retries).
    pub request_timeout: Duration,
    /// How long start-up waits for the first server to answer.
    pub connect_timeout: Duration,
    /// How long work held by a gateway that stopped answering (a push
    /// attempt, a routing claim) waits before another gateway takes it.
    /// A live gateway renews its holds every third of it.
    pub ack_wait: Duration,
    /// Whether one gateway at a time routes (`store.pinned_routing`):
    /// events of one ordering key are then routed in the order they were
    /// accepted, whichever gateway accepted them, at the cost of spreading
    /// routing over the gateways. `None`: when a destination is ordered.
    pub pinned_routing: Option<bool>,
    /// Whether the config at start has an ordered destination (for
    /// `pinned_routing = None`; a reload that adds one pins routing then).
    pub ordered_destinations: bool,
}

/// TLS to the NATS servers: the same names as a destination's `tls`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

impl JetStreamConfig {
    pub fn new(servers: Vec<String>) -> Self {
        Self {
            servers,
            replicas: 3,
            prefix: "switchyard".into(),
            token: None,
            user: None,
            password: None,
            creds_file: None,
            tls: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            ack_wait: Duration::from_secs(30),
            pinned_routing: None,
            ordered_destinations: false,
        }
    }

    /// Whether routing is pinned to one gateway at start.
    pub fn pins_routing(&self) -> bool {
        self.pinned_routing.unwrap_or(self.ordered_destinations)
    }

    /// What is wrong with this config, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err(
                "store.servers is empty: name the NATS servers, e.g. [\"nats://127.0.0.1:4222\"]"
                    .into(),
            );
        }
        if !matches!(self.replicas, 1 | 3 | 5) {
            return Err(format!(
                "store.replicas = {}: JetStream replicates to 1, 3 or 5 servers",
                self.replicas
            ));
        }
        let ok = !self.prefix.is_empty()
            && self.prefix.len() <= 32
            && self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(format!(
                "store.prefix {:?}: use 1 to 32 letters, digits, '_' or '-' (it names streams and subjects)",
                self.prefix
            ));
        }
        if self.token.is_some() && (self.user.is_some() || self.creds_file.is_some()) {
            return Err("store: give one of token, user + password, or creds_file".into());
        }
        if self.ack_wait < Duration::from_secs(1) {
            return Err(format!(
                "store.ack_wait = {:?}: at least 1s, e.g. \"30s\"",
                self.ack_wait
            ));
        }
        if self.password.is_some() && self.user.is_none() {
            return Err("store.password needs store.user".into());
        }
        Ok(())
    }
}

/// Why the store could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    #[error("{0}")]
    Server(String),
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// What this gateway knows of one destination's queue.
struct QueueState {
    policy: QueuePolicy,
    /// Bands whose consumer exists (found or created by this gateway).
    bands: BTreeSet<u8>,
    /// When `bands` was last read from the server.
    bands_read: Option<tokio::time::Instant>,
    wake: Arc<Notify>,
    stats: QueueStats,
}

/// An entry taken by a push attempt in this process, until settled.
struct HeldEntry {
    reply: String,
    /// An operator cancelled the delivery while this attempt ran: unless
    /// it delivers, the settle cancels instead of retrying (the reason).
    cancel: Option<String>,
}

/// An event handed to this gateway's router, until routed.
struct Claim {
    reply: String,
    /// Redelivered or a replay: destinations with a delivery state already
    /// are skipped.
    recheck: bool,
    replay: Option<u64>,
}

pub(crate) struct Inner {
    js: Js,
    names: Names,
    queues: Mutex<HashMap<String, QueueState>>,
    held: Mutex<HashMap<(String, EventId), HeldEntry>>,
    claims: Mutex<HashMap<EventId, Claim>>,
    ids: Mutex<ulid::Generator>,
    /// Bytes of the streams (one replica's), refreshed with the levels.
    bytes: std::sync::atomic::AtomicU64,
    /// The registry's `next_id` sequence as last read or written (0: never
    /// stored): the expectation of the next id allocation.
    reg_seq: std::sync::atomic::AtomicU64,
    /// The registry's next id as last loaded or written: every change
    /// writes it again (expecting `reg_seq`), which makes the whole
    /// registry one compare-and-set domain.
    reg_next: std::sync::atomic::AtomicU32,
    runtime: tokio::runtime::Handle,
    /// Rung when a queue changed here: its levels are read again soon
    /// rather than at the next second.
    levels_dirty: Notify,
    ack_wait: Duration,
    /// This gateway's place in the route consumer's priority group.
    route_pin: js::Pin,
    /// Whether the route consumer is pinned, as this gateway last set it.
    routing_pinned: std::sync::atomic::AtomicBool,
    /// `store.pinned_routing` unset: opening an ordered queue pins routing.
    pin_when_ordered: bool,
    stop: tokio_util_free::Stop,
    metrics: Metrics,
}

/// The store. Cloning shares it.
#[derive(Clone)]
pub struct JetStreamStore(Arc<Inner>);

#[derive(Default)]
struct Metrics {
    batches: prometheus_client::metrics::counter::Counter,
    conflicts: prometheus_client::metrics::counter::Counter,
    unavailable: prometheus_client::metrics::counter::Counter,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stop signal for the backend's own tasks (no tokio-util dependency).
mod tokio_util_free {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default, Clone)]
    pub struct Stop(Arc<(AtomicBool, tokio::sync::Notify)>);

    impl Stop {
        pub fn stop(&self) {
            self.0.0.store(true, Ordering::Release);
            self.0.1.notify_waiters();
        }

        pub fn stopped(&self) -> bool {
            self.0.0.load(Ordering::Acquire)
        }

        /// Sleeps `d`, or less if stopped meanwhile; false once stopped.
        pub async fn sleep(&self, d: std::time::Duration) -> bool {
            if self.stopped() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(d) => !self.stopped(),
                _ = self.0.1.notified() => false,
            }
        }
    }
}

impl JetStreamStore {
    /// Connects, checks the server's version, and creates or verifies every
    /// stream and the route consumer. Must run inside a tokio runtime.
    pub async fn open(cfg: &JetStreamConfig) -> Result<Self, Error> {
        cfg.check().map_err(Error::Config)?;
        let client = setup::connect(cfg).await?;
        let js = Js {
            client,
            timeout: cfg.request_timeout,
        };
        let version = setup::check_server(&js).await?;
        let names = Names::new(&cfg.prefix);
        setup::objects(&js, &names, cfg).await?;
        tracing::info!(server = %version, prefix = %cfg.prefix, replicas = cfg.replicas,
            "JetStream store ready.");
        let store = JetStreamStore(Arc::new(Inner {
            js,
            names,
            queues: Mutex::default(),
            held: Mutex::default(),
            claims: Mutex::default(),
            ids: Mutex::new(ulid::Generator::new()),
            bytes: Default::default(),
            reg_seq: Default::default(),
            reg_next: std::sync::atomic::AtomicU32::new(1),
            runtime: tokio::runtime::Handle::current(),
            levels_dirty: Notify::new(),
            ack_wait: cfg.ack_wait,
            route_pin: js::Pin::new(setup::ROUTE_GROUP),
            routing_pinned: cfg.pins_routing().into(),
            pin_when_ordered: cfg.pinned_routing.is_none(),
            stop: Default::default(),
            metrics: Metrics::default(),
        }));
        tokio::spawn(store.clone().keep_alive());
        tokio::spawn(store.clone().refresh_levels());
        Ok(store)
    }

    /// Stops the backend's own tasks (keep-alives, level refresh).
    pub fn close(&self) {
        self.0.stop.stop();
    }

    /// Keeps every push attempt's hold: `+WPI` on each held entry every
    /// third of the ack wait, so a long attempt is not handed to another
    /// gateway meanwhile.
    async fn keep_alive(self) {
        while self.0.stop.sleep(self.0.ack_wait / 3).await {
            let replies: Vec<String> = lock(&self.0.held)
                .values()
                .map(|h| h.reply.clone())
                .collect();
            for r in replies {
                if let Err(e) = self.0.js.ack(&r, "+WPI").await {
                    tracing::warn!(error = %e, "Cannot extend a delivery's hold.");
                }
            }
        }
    }

    /// Reads every open queue's levels about once a second, and soon
    /// after a change made here (at most twice a second):
    /// `queue_stats` and `backlog` answer from here without a round trip.
    async fn refresh_levels(self) {
        loop {
            tokio::select! {
                _ = self.0.levels_dirty.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if !self.0.stop.sleep(Duration::from_millis(500)).await {
                break;
            }
            let dests: Vec<String> = lock(&self.0.queues).keys().cloned().collect();
            for d in dests {
                match self.read_levels(&d).await {
                    Ok(stats) => {
                        if let Some(q) = lock(&self.0.queues).get_mut(&d) {
                            q.stats = stats;
                        }
                    }
                    Err(e) => tracing::debug!(destination = %d, error = %e,
                        "Cannot read a queue's levels."),
                }
            }
            let mut bytes = 0;
            for s in [
                self.0.names.events(),
                self.0.names.queues(),
                self.0.names.state(),
                self.0.names.registry(),
            ] {
                if let Ok(v) = self
                    .0
                    .js
                    .api(&format!("STREAM.INFO.{s}"), &serde_json::Value::Null)
                    .await
                {
                    bytes += v["state"]["bytes"].as_u64().unwrap_or(0);
                }
            }
            self.0
                .bytes
                .store(bytes, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn queue<R>(&self, dest: &str, f: impl FnOnce(&mut QueueState) -> R) -> Result<R, StoreError> {
        let mut qs = lock(&self.0.queues);
        let q = qs
            .get_mut(dest)
            .ok_or_else(|| StoreError::UnknownQueue(dest.to_string()))?;
        Ok(f(q))
    }

    /// Pins routing to one gateway at a time, if this gateway has not:
    /// an ordered destination opened (at start, or by a reload) keeps its
    /// keys' routing order across gateways.
    pub(crate) async fn pin_routing(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.0.routing_pinned.load(Ordering::Acquire) {
            return Ok(());
        }
        setup::route_consumer(&self.0.js, &self.0.names, self.0.ack_wait, true).await?;
        self.0.routing_pinned.store(true, Ordering::Release);
        tracing::info!(
            "An ordered destination opened: one gateway at a time routes now, so each ordering key keeps its order across gateways."
        );
        Ok(())
    }

    /// Hands the events claimed for routing and not routed back to the
    /// server at once. The server hands redeliveries out before anything
    /// newer, so whoever routes next routes them first, in order.
    pub(crate) async fn hand_back_claims(&self) {
        let claims: Vec<String> = lock(&self.0.claims).drain().map(|(_, c)| c.reply).collect();
        for reply in claims {
            if let Err(e) = self.0.js.nak(&reply, Duration::ZERO).await {
                tracing::warn!(error = %e, "Cannot hand back an event claimed for routing; it is routed again after store.ack_wait.");
            }
        }
    }

    /// At a clean stop, after the router's last batch: the events claimed
    /// and not routed are handed back at once, and the pin, if this gateway
    /// holds it, is released, so another gateway routes now rather than
    /// after the pin's timeout, in the same order.
    async fn release_routing(&self) {
        self.hand_back_claims().await;
        if self.0.route_pin.id().is_some() {
            let subject = format!(
                "CONSUMER.UNPIN.{}.{}",
                self.0.names.events(),
                self.0.names.route_consumer()
            );
            let body = serde_json::json!({ "group": setup::ROUTE_GROUP });
            if let Err(e) = self.0.js.api(&subject, &body).await {
                tracing::warn!(error = %e, "Cannot release the routing pin; another gateway takes it after its timeout (store.ack_wait + 5s).");
            }
        }
    }

    /// Runs `f` on the backend's runtime from a blocking thread (the
    /// registry's calls).
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.0.runtime.block_on(f)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

// The records' encoding.

/// An event's message body: a version byte, whether it waits for the
/// router, the metadata as JSON (length-prefixed), then the payload as sent.
fn encode_event(
    received_at_ms: u64,
    meta: &switchyard_core::EventMeta,
    route: bool,
    payload: &[u8],
) -> Bytes {
    #[derive(serde::Serialize)]
    struct Head<'a> {
        at: u64,
        meta: &'a switchyard_core::EventMeta,
    }
    let head = serde_json::to_vec(&Head {
        at: received_at_ms,
        meta,
    })
    .expect("JSON");
    let mut b = BytesMut::with_capacity(6 + head.len() + payload.len());
    b.put_u8(1);
    b.put_u8(u8::from(route));
    b.put_u32(head.len() as u32);
    b.put_slice(&head);
    b.put_slice(payload);
    b.freeze()
}

/// `(event, waits for the router)`.
fn decode_event(
    topic: String,
    id: EventId,
    body: &Bytes,
) -> Result<(switchyard_core::Event, bool), StoreError> {
    #[derive(Deserialize)]
    struct Head {
        at: u64,
        meta: switchyard_core::EventMeta,
    }
    let corrupt = |m: &str| StoreError::Corrupt {
        keyspace: "events",
        message: format!("event {id}: {m}"),
    };
    if body.len() < 6 || body[0] != 1 {
        return Err(corrupt("unknown encoding"));
    }
    let route = body[1] == 1;
    let n = u32::from_be_bytes([body[2], body[3], body[4], body[5]]) as usize;
    if body.len() < 6 + n {
        return Err(corrupt("truncated"));
    }
    let head: Head =
        serde_json::from_slice(&body[6..6 + n]).map_err(|e| corrupt(&e.to_string()))?;
    Ok((
        switchyard_core::Event {
            id,
            topic,
            received_at_ms: head.at,
            meta: head.meta,
            payload: body.slice(6 + n..),
        },
        route,
    ))
}

fn to_json<T: serde::Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("records serialise"))
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    b: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt {
        keyspace: what,
        message: e.to_string(),
    })
}

/// A delivery the server handed out, with its queue entry.
struct Got {
    entry: switchyard_store::QueueEntry,
    d: Delivered,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_encoding() {
        let meta = switchyard_core::EventMeta {
            content_type: "application/json".into(),
            headers: vec![("x-a".into(), "1".into())],
            ..Default::default()
        };
        let id = ulid::Ulid::new();
        let b = encode_event(42, &meta, true, b"{\"a\":1}");
        let (e, route) = decode_event("t".into(), id, &b).expect("decodes");
        assert!(route);
        assert_eq!(e.received_at_ms, 42);
        assert_eq!(e.meta, meta);
        assert_eq!(&e.payload[..], b"{\"a\":1}");
        assert!(decode_event("t".into(), id, &Bytes::from_static(b"\x02\x00")).is_err());
    }

    #[test]
    fn configs_are_checked() {
        let mut c = JetStreamConfig::new(vec![]);
        assert!(c.check().expect_err("refused").contains("store.servers"));
        c.servers = vec!["nats://127.0.0.1:4222".into()];
        c.replicas = 2;
        assert!(c.check().expect_err("refused").contains("1, 3 or 5"));
        c.replicas = 3;
        c.prefix = "a.b".into();
        assert!(c.check().expect_err("refused").contains("store.prefix"));
        c.prefix = "sy".into();
        assert!(c.check().is_ok());
    }
}
