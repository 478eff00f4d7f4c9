//! The group commit: one thread owns every write to the store.
//!
//! fjall has no group commit of its own: `persist(SyncData)` takes the journal
//! lock, so one fsync per request would cap ingest near 4k events/s. Instead,
//! requests queue on a channel; the writer takes everything that is waiting,
//! applies it as one atomic write batch, persists once, and only then answers
//! every request in the group. While one fsync runs, the next group gathers.
//!
//! Deduplication on idempotency keys happens here too: the writer sees every
//! append in order, so two concurrent duplicates can never both be accepted.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_core::{NewEvent, now_ms};
use switchyard_store::{Appended, Routing, StoreError};
use tokio::sync::oneshot;
use ulid::{Generator, Ulid};

use crate::prefill::Prefill;
use crate::{Durability, Fj, Keyspaces, codec, keys};

/// Most requests folded into one group: bounds the latency of the first one.
const MAX_GROUP: usize = 4096;

/// A commit slower than this is logged: it shows directly in ingest latency.
const SLOW_COMMIT: Duration = Duration::from_millis(20);

/// Most memtable bytes (all keyspaces, active and sealed) the store holds
/// before the writer waits for fjall's flush to catch up. Without a bound,
/// a burst faster than the flush (a backlog filled at 200k events/s) leaves
/// every busy keyspace with an active memtable and four sealed ones, over
/// 300 MiB in all; fjall's own write buffer limit is not implemented in
/// 3.1.
const MAX_WRITE_BUFFER: u64 = 64 * 1024 * 1024;

/// Longest the writer holds one group for the write buffer to shrink: the
/// bound slows a burst down, it must never stop the store.
const MAX_WRITE_BUFFER_WAIT: Duration = Duration::from_secs(1);

/// Idle time after which the writer writes out memtables holding more than
/// [`IDLE_WRITE_BUFFER`]: after a burst, the memory goes back instead of
/// waiting in half-full memtables for the next one.
const IDLE_FLUSH_AFTER: Duration = Duration::from_secs(2);
const IDLE_WRITE_BUFFER: u64 = 16 * 1024 * 1024;

/// Which keyspace an [`Op`] targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ks {
    Events,
    PendingRoute,
    Transformed,
    Queue,
    DState,
    Attempts,
    Dlq,
    TopicDlq,
    Idem,
    IdemExpiry,
    Meta,
    QKeys,
    QAge,
    Leases,
    QStat,
}

/// One key write.
#[derive(Debug, Clone)]
pub enum Op {
    Put(Ks, Vec<u8>, Vec<u8>),
    Del(Ks, Vec<u8>),
}

pub(crate) struct AppendRequest {
    pub topic: String,
    pub idempotency_key: Option<String>,
    pub window: Duration,
    pub events: Vec<NewEvent>,
    pub routing: Routing,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

pub(crate) enum Request {
    Append(AppendRequest),
    Write {
        ops: Vec<Op>,
        /// Changes to the queue counters that `ops` make.
        deltas: Vec<Delta>,
        /// fsync before answering, whatever the configured durability.
        sync: bool,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// A change to a destination's queue counters (`qstat`), written by the
/// writer in the same batch as the entries that cause it: the writer sees
/// every write in order, so its totals never race.
#[derive(Debug, Clone)]
pub(crate) enum Delta {
    /// Stored entries of the destination.
    Count { dest: String, by: i64 },
    /// Stored entries due in `second`.
    Due { dest: String, second: u64, by: i64 },
}

impl Delta {
    pub fn count(dest: &str, by: i64) -> Self {
        Delta::Count {
            dest: dest.to_owned(),
            by,
        }
    }

    pub fn due(dest: &str, second: u64, by: i64) -> Self {
        Delta::Due {
            dest: dest.to_owned(),
            second,
            by,
        }
    }
}

/// One destination's queue counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    /// Stored entries (pending and in flight).
    pub count: u64,
    /// Stored entries by the second they fall due.
    pub due: BTreeMap<u64, u64>,
}

/// Every destination's counters, as last committed.
pub(crate) type Counters = Arc<Mutex<HashMap<String, Counts>>>;

/// Counter values a group changes, published once it is committed.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    count: HashMap<String, u64>,
    due: HashMap<(String, u64), u64>,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.count.is_empty() && self.due.is_empty()
    }

    fn publish(self, all: &mut HashMap<String, Counts>) {
        for (dest, n) in self.count {
            all.entry(dest).or_default().count = n;
        }
        for ((dest, second), n) in self.due {
            let c = all.entry(dest).or_default();
            if n == 0 {
                c.due.remove(&second);
            } else {
                c.due.insert(second, n);
            }
        }
    }
}

fn add(v: u64, by: i64) -> u64 {
    (i128::from(v) + i128::from(by)).clamp(0, i128::from(u64::MAX)) as u64
}

/// Numbers the writer reports, for metrics.
#[derive(Debug)]
pub struct WriterStats {
    pub groups: std::sync::atomic::AtomicU64,
    pub group_requests: std::sync::atomic::AtomicU64,
    pub persist_micros: std::sync::atomic::AtomicU64,
    /// Seconds groups were held for the memtables to be written out: a
    /// store whose disk can't keep up with ingest shows here first.
    pub write_buffer_wait:
        prometheus_client::metrics::counter::Counter<f64, std::sync::atomic::AtomicU64>,
    /// Memtable bytes not yet written out, after the last group commit.
    pub write_buffer_bytes: prometheus_client::metrics::gauge::Gauge,
    /// Requests per group: shows whether group commit is amortising the
    /// fsync (telemetry registers it; a clone shares the buckets).
    pub batch_size: prometheus_client::metrics::histogram::Histogram,
    /// Seconds per group commit, fsync included.
    pub commit_seconds: prometheus_client::metrics::histogram::Histogram,
    /// Group commits written (the same count as `groups`, for `/metrics`).
    pub commits: prometheus_client::metrics::counter::Counter,
}

impl Default for WriterStats {
    fn default() -> Self {
        use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
        Self {
            groups: Default::default(),
            group_requests: Default::default(),
            persist_micros: Default::default(),
            write_buffer_wait: Default::default(),
            write_buffer_bytes: Default::default(),
            // 1 to 4096 requests (MAX_GROUP).
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            // 50 µs to ~1.6 s.
            commit_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            commits: Default::default(),
        }
    }
}

pub(crate) struct Writer {
    pub db: fjall::Database,
    pub ks: Keyspaces,
    pub durability: Durability,
    pub rx: mpsc::Receiver<Request>,
    pub stats: Arc<WriterStats>,
    pub counters: Counters,
    /// Zeroes the journal ahead of the commits (`durability = "sync"` only).
    pub prefill: Option<Prefill>,
}

/// fjall's journal bytes per key written, besides the key and value (its
/// entry header, counted a little high).
const ENTRY_OVERHEAD: u64 = 24;
/// And per batch (its start and end markers).
const BATCH_OVERHEAD: u64 = 64;

/// A write batch that counts the journal bytes it will write, for the
/// prefill's estimate of where the journal ends.
struct Batch {
    inner: fjall::OwnedWriteBatch,
    bytes: u64,
}

impl Batch {
    fn insert<K, V>(&mut self, ks: &fjall::Keyspace, key: K, value: V)
    where
        K: AsRef<[u8]> + Into<fjall::UserKey>,
        V: AsRef<[u8]> + Into<fjall::UserValue>,
    {
        self.bytes += (key.as_ref().len() + value.as_ref().len()) as u64 + ENTRY_OVERHEAD;
        self.inner.insert(ks, key, value);
    }

    fn remove<K>(&mut self, ks: &fjall::Keyspace, key: K)
    where
        K: AsRef<[u8]> + Into<fjall::UserKey>,
    {
        self.bytes += key.as_ref().len() as u64 + ENTRY_OVERHEAD;
        self.inner.remove(ks, key);
    }
}

impl Writer {
    pub fn run(mut self) {
        let mut ids = Generator::new();
        loop {
            let first = match self.rx.recv_timeout(IDLE_FLUSH_AFTER) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.db.write_buffer_size() > IDLE_WRITE_BUFFER {
                        self.seal_memtables();
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            self.bound_write_buffer();
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match self.rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            self.commit_group(group, &mut ids);
        }
        // Channel closed: the store is being dropped. One last sync so that
        // buffered writes reach the disk before the process exits.
        if let Err(e) = self.db.persist(fjall::PersistMode::SyncAll) {
            tracing::error!(error = %e, "Final persist of the store failed.");
        }
    }

    /// Seals every keyspace's active memtable, so fjall's flush worker
    /// writes them out (an empty one is left as it is).
    fn seal_memtables(&self) {
        for ks in self.ks.all() {
            if let Err(e) = ks.rotate_memtable() {
                tracing::warn!(error = %e, "Sealing a memtable failed; it is written out later.");
            }
        }
    }

    /// Holds the next group while the memtables are over
    /// [`MAX_WRITE_BUFFER`], sealing them first if nothing is waiting to be
    /// flushed (active memtables are only written out once sealed).
    fn bound_write_buffer(&self) {
        if self.db.write_buffer_size() <= MAX_WRITE_BUFFER {
            return;
        }
        if self
            .ks
            .all()
            .iter()
            .all(|ks| ks.sealed_memtable_count() == 0)
        {
            self.seal_memtables();
        }
        let started = Instant::now();
        while self.db.write_buffer_size() > MAX_WRITE_BUFFER
            && started.elapsed() < MAX_WRITE_BUFFER_WAIT
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.stats
            .write_buffer_wait
            .inc_by(started.elapsed().as_secs_f64());
    }

    fn commit_group(&mut self, group: Vec<Request>, ids: &mut Generator) {
        let mut batch = Batch {
            inner: self.db.batch(),
            bytes: BATCH_OVERHEAD,
        };
        let mut sync = self.durability == Durability::Sync;
        let now = now_ms();
        // Keys appended in this group, so duplicates within one group are caught.
        let mut fresh: HashMap<Vec<u8>, Vec<Ulid>> = HashMap::new();
        let mut answers: Vec<(Request, Result<Appended, StoreError>)> =
            Vec::with_capacity(group.len());
        let mut group_deltas: Vec<Delta> = Vec::new();

        for req in group {
            match &req {
                Request::Append(a) => {
                    let outcome = self.stage_append(&mut batch, a, now, ids, &mut fresh);
                    answers.push((req, outcome));
                }
                Request::Write {
                    ops,
                    deltas,
                    sync: s,
                    ..
                } => {
                    sync |= *s;
                    for op in ops {
                        match op {
                            Op::Put(k, key, value) => {
                                batch.insert(self.ks.get(*k), key.as_slice(), value.as_slice())
                            }
                            Op::Del(k, key) => batch.remove(self.ks.get(*k), key.as_slice()),
                        }
                    }
                    group_deltas.extend(deltas.iter().cloned());
                    answers.push((req, Ok(Appended::Duplicate { ids: Vec::new() })));
                }
            }
        }

        let counted = self.stage_counters(&mut batch, &group_deltas);
        let mode = if sync {
            fjall::PersistMode::SyncData
        } else {
            // "buffered" still hands the bytes to the OS before answering, so a
            // process crash (kill -9) loses nothing that was acknowledged.
            fjall::PersistMode::Buffer
        };
        let started = Instant::now();
        let journal_bytes = batch.bytes;
        let result = batch.inner.durability(Some(mode)).commit();
        let elapsed = started.elapsed();
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.groups.fetch_add(1, Relaxed);
        self.stats.commits.inc();
        self.stats
            .group_requests
            .fetch_add(answers.len() as u64, Relaxed);
        self.stats
            .persist_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
        self.stats.batch_size.observe(answers.len() as f64);
        self.stats.commit_seconds.observe(elapsed.as_secs_f64());
        self.stats
            .write_buffer_bytes
            .set(i64::try_from(self.db.write_buffer_size()).unwrap_or(i64::MAX));

        if elapsed > SLOW_COMMIT {
            tracing::warn!(
                elapsed_ms = elapsed.as_millis() as u64,
                requests = answers.len(),
                "Slow group commit: the disk or fjall stalled."
            );
        }
        let failed = result.err().map(|e| e.to_string());
        if failed.is_none() && !counted.is_empty() {
            counted.publish(&mut self.counters.lock().unwrap_or_else(|p| p.into_inner()));
        }
        if let Some(e) = &failed {
            tracing::error!(error = %e, "A group commit failed; its requests are answered with an error.");
        }
        for (req, outcome) in answers {
            let outcome = match &failed {
                Some(e) => Err(StoreError::WriteFailed(e.clone())),
                None => outcome,
            };
            match req {
                Request::Append(a) => {
                    let _ = a.reply.send(outcome);
                }
                Request::Write { reply, .. } => {
                    let _ = reply.send(outcome.map(|_| ()));
                }
            }
        }
        // After the answers: zeroing the journal ahead is for the next
        // commits, none of this group's requests waits for it.
        if failed.is_none()
            && let Some(prefill) = &mut self.prefill
        {
            prefill.after_commit(journal_bytes);
        }
    }

    /// Adds the counter keys that `deltas` change to the batch; the new
    /// values, to publish once the batch is committed.
    fn stage_counters(&self, batch: &mut Batch, deltas: &[Delta]) -> Staged {
        let mut staged = Staged::default();
        if deltas.is_empty() {
            return staged;
        }
        let all = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for d in deltas {
            match d {
                Delta::Count { dest, by } => {
                    let base = staged
                        .count
                        .get(dest)
                        .copied()
                        .unwrap_or_else(|| all.get(dest).map_or(0, |c| c.count));
                    staged.count.insert(dest.clone(), add(base, *by));
                }
                Delta::Due { dest, second, by } => {
                    let key = (dest.clone(), *second);
                    let base = staged.due.get(&key).copied().unwrap_or_else(|| {
                        all.get(dest)
                            .and_then(|c| c.due.get(second).copied())
                            .unwrap_or(0)
                    });
                    staged.due.insert(key, add(base, *by));
                }
            }
        }
        drop(all);
        let qstat = self.ks.get(Ks::QStat);
        for (dest, n) in &staged.count {
            batch.insert(qstat, keys::stat_count(dest), n.to_be_bytes());
        }
        for ((dest, second), n) in &staged.due {
            if *n == 0 {
                batch.remove(qstat, keys::stat_due(dest, *second));
            } else {
                batch.insert(qstat, keys::stat_due(dest, *second), n.to_be_bytes());
            }
        }
        staged
    }

    fn stage_append(
        &self,
        batch: &mut Batch,
        a: &AppendRequest,
        now: u64,
        ids: &mut Generator,
        fresh: &mut HashMap<Vec<u8>, Vec<Ulid>>,
    ) -> Result<Appended, StoreError> {
        let idem_key = a.idempotency_key.as_ref().map(|k| keys::idem(&a.topic, k));
        if let Some(ik) = &idem_key {
            if let Some(prev) = fresh.get(ik) {
                return Ok(Appended::Duplicate { ids: prev.clone() });
            }
            if let Some(v) = self.ks.idem.get(ik).fj()?
                && let Some((created, prev)) = decode_idem(&v)
            {
                let window = a.window.as_millis() as u64;
                if now.saturating_sub(created) < window {
                    return Ok(Appended::Duplicate { ids: prev });
                }
            }
        }
        let mut new_ids = Vec::with_capacity(a.events.len());
        for ev in &a.events {
            // The generator is monotonic within the process, so ids (and the
            // pending-route keys) follow acceptance order.
            let id = ids.generate().unwrap_or_else(|_| Ulid::new());
            let value = codec::encode_event(&a.topic, now, &ev.meta, &ev.payload);
            batch.insert(&self.ks.events, keys::event(id), value);
            if a.routing == Routing::Pending {
                batch.insert(&self.ks.pending_route, keys::event(id), a.topic.as_bytes());
            }
            new_ids.push(id);
        }
        if let (Some(ik), Some(k)) = (idem_key, &a.idempotency_key) {
            batch.insert(&self.ks.idem, ik.as_slice(), encode_idem(now, &new_ids));
            batch.insert(
                &self.ks.idem_expiry,
                keys::idem_expiry(now, &a.topic, k),
                Vec::<u8>::new(),
            );
            fresh.insert(ik, new_ids.clone());
        }
        Ok(Appended::New {
            ids: new_ids,
            received_at_ms: now,
        })
    }
}

/// `idem` values: creation time, then the ids the key was first accepted as.
fn encode_idem(created_ms: u64, ids: &[Ulid]) -> Vec<u8> {
    let mut v = created_ms.to_be_bytes().to_vec();
    for id in ids {
        v.extend_from_slice(&id.to_bytes());
    }
    v
}

pub(crate) fn decode_idem(v: &[u8]) -> Option<(u64, Vec<Ulid>)> {
    let created = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let ids = v[8..]
        .chunks_exact(16)
        .filter_map(keys::decode_event)
        .collect();
    Some((created, ids))
}
