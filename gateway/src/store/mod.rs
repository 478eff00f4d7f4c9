//! Everything fjall: keyspaces, key encodings, the group-commit writer,
//! recovery and retention. No other module names fjall.
//!
//! The rest of the gateway speaks of events, queue entries, attempts and DLQ
//! entries. The operations are shaped so that a JetStream backend could
//! offer them too (see DESIGN.md): `append` is durable-or-error and dedupes on
//! an idempotency key; routing enqueues entries and acknowledges the event's
//! pending-route marker in one atomic write, so no accepted event is ever
//! stranded between "stored" and "queued"; `settle` moves one queue entry to
//! delivered, a later retry, or the DLQ.
//!
//! Keyspaces:
//! - `events`: id -> the event (header JSON + raw payload).
//! - `pending_route`: id -> topic, for every event not yet routed. Written in
//!   the same batch as the event; removed in the same batch as its queue
//!   entries. Recovery after a crash is a scan of this keyspace.
//! - `transformed`: id -> a plugin's rewritten body and headers.
//! - `queue`: destination/band/due/id -> [`QueueEntry`]. Read once at start to
//!   rebuild the in-memory queues; afterwards only written, never scanned, so
//!   millions of tombstones cost nothing on the hot path.
//! - `dstate`: id/destination -> [`DeliveryState`]; `attempts`: the history.
//! - `dlq`, `topic_dlq`: owner/id -> [`DlqEntry`].
//! - `idem`, `idem_expiry`: idempotency keys, and the same ordered by age for
//!   expiry without a full scan.
//! - `meta`: paused flags.

pub mod keys;
pub mod records;
pub mod registry;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use ulid::Ulid;

use crate::config::Durability;
use crate::event::{Event, NewEvent, now_ms};
pub use records::{
    AttemptRecord, DeliveryState, DeliveryStatus, DlqEntry, QueueEntry, Transformed,
};
pub use writer::{Appended, WriterStats};
use writer::{Ks, Op, Request};

/// Failures of the store. fjall's own errors are wrapped, never re-exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage error: {0}")]
    Fjall(#[from] fjall::Error),
    #[error("write failed: {0}")]
    WriteFailed(String),
    #[error("corrupt record in {keyspace}: {message}")]
    Corrupt {
        keyspace: &'static str,
        message: String,
    },
    #[error("the store's writer has stopped")]
    WriterGone,
}

/// Handles to every keyspace.
#[derive(Clone)]
pub(crate) struct Keyspaces {
    events: fjall::Keyspace,
    pending_route: fjall::Keyspace,
    transformed: fjall::Keyspace,
    queue: fjall::Keyspace,
    dstate: fjall::Keyspace,
    attempts: fjall::Keyspace,
    dlq: fjall::Keyspace,
    topic_dlq: fjall::Keyspace,
    idem: fjall::Keyspace,
    idem_expiry: fjall::Keyspace,
    meta: fjall::Keyspace,
}

impl Keyspaces {
    fn open(db: &fjall::Database) -> Result<Self, StoreError> {
        let open = |name: &str| db.keyspace(name, fjall::KeyspaceCreateOptions::default);
        Ok(Self {
            events: open("events")?,
            pending_route: open("pending_route")?,
            transformed: open("transformed")?,
            queue: open("queue")?,
            dstate: open("dstate")?,
            attempts: open("attempts")?,
            dlq: open("dlq")?,
            topic_dlq: open("topic_dlq")?,
            idem: open("idem")?,
            idem_expiry: open("idem_expiry")?,
            meta: open("meta")?,
        })
    }

    fn get(&self, ks: Ks) -> &fjall::Keyspace {
        match ks {
            Ks::Events => &self.events,
            Ks::PendingRoute => &self.pending_route,
            Ks::Transformed => &self.transformed,
            Ks::Queue => &self.queue,
            Ks::DState => &self.dstate,
            Ks::Attempts => &self.attempts,
            Ks::Dlq => &self.dlq,
            Ks::TopicDlq => &self.topic_dlq,
            Ks::Idem => &self.idem,
            Ks::IdemExpiry => &self.idem_expiry,
            Ks::Meta => &self.meta,
        }
    }
}

/// The open store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: fjall::Database,
    ks: Keyspaces,
    tx: std::sync::mpsc::Sender<Request>,
    appended: Arc<Notify>,
    stats: Arc<WriterStats>,
    /// Set when pending-route marks were added behind the router's low-water
    /// mark (a topic DLQ replay), so it scans from the front once.
    rescan: Arc<std::sync::atomic::AtomicBool>,
    registry: registry::RegistryStore,
}

/// How an event's routing came out, to be written in one atomic batch.
#[derive(Debug, Clone)]
pub struct Routed {
    pub event_id: Ulid,
    /// One entry per chosen destination. Destinations that already have a
    /// delivery state for this event are skipped: routing is idempotent, so a
    /// crash between this write and the next cannot double-queue.
    pub entries: Vec<QueueEntry>,
    /// The body and headers to deliver instead of the original.
    pub transformed: Option<Transformed>,
    /// The plugin chain failed and its policy says dead-letter: the event goes
    /// to the topic's DLQ with this error instead of being queued.
    pub topic_dead_letter: Option<(String, DlqEntry)>,
}

/// The result of a delivery attempt, as the store records it.
#[derive(Debug, Clone)]
pub enum Settle {
    Delivered,
    /// Back in the queue as `next` (a new due time, attempt count bumped).
    Retry {
        next: QueueEntry,
    },
    DeadLetter {
        error: String,
    },
}

impl Store {
    /// Opens (or creates) the store under `dir`, recovering after a crash, and
    /// starts its writer thread.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        let db = fjall::Database::builder(dir).open()?;
        let ks = Keyspaces::open(&db)?;
        let registry = registry::RegistryStore::open(&db)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let appended = Arc::new(Notify::new());
        let stats = Arc::new(WriterStats::default());
        let writer = writer::Writer {
            db: db.clone(),
            ks: ks.clone(),
            durability,
            rx,
            appended: appended.clone(),
            stats: stats.clone(),
        };
        std::thread::Builder::new()
            .name("switchyard-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::WriteFailed(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            db,
            ks,
            tx,
            appended,
            stats,
            rescan: Arc::default(),
            registry,
        })
    }

    /// The schema registry's tables.
    pub fn registry(&self) -> &registry::RegistryStore {
        &self.registry
    }

    /// Group-commit statistics.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Rung after every group that appended events.
    pub fn appended_signal(&self) -> Arc<Notify> {
        self.appended.clone()
    }

    /// Whether the router must scan pending routes from the front (and resets it).
    pub fn take_rescan_request(&self) -> bool {
        self.rescan.swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    /// Persists everything written so far with a full fsync (at shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        Ok(self.db.persist(fjall::PersistMode::SyncAll)?)
    }

    /// Bytes on disk.
    pub fn disk_space(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// Makes events durable, all or none. `Ok` means on disk (per the
    /// configured durability). A key seen within `window` returns the ids it
    /// was first accepted as, and nothing is written.
    pub async fn append(
        &self,
        topic: &str,
        idempotency_key: Option<String>,
        window: Duration,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        let (reply, rx) = oneshot::channel();
        let req = Request::Append(writer::AppendRequest {
            topic: topic.to_owned(),
            idempotency_key,
            window,
            events,
            reply,
        });
        self.tx.send(req).map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn write(&self, ops: Vec<Op>, sync: bool) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Write { ops, sync, reply })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Reads one event.
    pub fn event(&self, id: Ulid) -> Result<Option<Event>, StoreError> {
        match self.ks.events.get(keys::event(id))? {
            Some(v) => Ok(Some(records::decode_event(id, &v)?)),
            None => Ok(None),
        }
    }

    /// A plugin's rewrite of an event, if one was stored.
    pub fn transformed(&self, id: Ulid) -> Result<Option<Transformed>, StoreError> {
        match self.ks.transformed.get(keys::event(id))? {
            Some(v) => Ok(Some(records::decode_transformed(&v)?)),
            None => Ok(None),
        }
    }

    /// Up to `max` events waiting to be routed, oldest first, strictly after
    /// `after` (the caller's low-water mark: starting there skips the
    /// tombstones that routing leaves at the front of the keyspace).
    pub fn pending_routes(
        &self,
        after: Option<Ulid>,
        max: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let start = after.map(|a| keys::event(Ulid(a.0.wrapping_add(1))));
        let iter = match start {
            Some(s) => self.ks.pending_route.range(s..),
            None => self.ks.pending_route.iter(),
        };
        let mut out = Vec::new();
        for guard in iter.take(max) {
            let key = guard.key()?;
            let Some(id) = keys::decode_event(&key) else {
                continue;
            };
            match self.event(id)? {
                Some(e) => out.push(e),
                None => tracing::warn!(event_id = %id, "Pending route without its event; skipped."),
            }
        }
        Ok(out)
    }

    /// Writes the routing of a batch of events in one atomic write.
    pub async fn route(&self, routed: Vec<Routed>) -> Result<Vec<QueueEntry>, StoreError> {
        let now = now_ms();
        let mut ops = Vec::new();
        let mut queued = Vec::new();
        for r in routed {
            for e in r.entries {
                if self
                    .ks
                    .dstate
                    .contains_key(keys::dstate(r.event_id, &e.destination))?
                {
                    continue;
                }
                ops.push(Op::Put(
                    Ks::DState,
                    keys::dstate(r.event_id, &e.destination),
                    records::to_json(&DeliveryState {
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        updated_at_ms: now,
                        last_error: None,
                    }),
                ));
                ops.push(Op::Put(Ks::Queue, e.key(), records::to_json(&e)));
                queued.push(e);
            }
            if let Some(t) = &r.transformed {
                ops.push(Op::Put(
                    Ks::Transformed,
                    keys::event(r.event_id).to_vec(),
                    records::encode_transformed(t),
                ));
            }
            if let Some((topic, entry)) = &r.topic_dead_letter {
                ops.push(Op::Put(
                    Ks::TopicDlq,
                    keys::dlq(topic, r.event_id),
                    records::to_json(entry),
                ));
            }
            ops.push(Op::Del(Ks::PendingRoute, keys::event(r.event_id).to_vec()));
        }
        self.write(ops, false).await?;
        Ok(queued)
    }

    /// Every queue entry, for rebuilding the in-memory queues at start.
    pub fn load_queue(&self) -> Result<Vec<QueueEntry>, StoreError> {
        let mut out = Vec::new();
        for guard in self.ks.queue.iter() {
            let (_, v) = guard.into_inner()?;
            out.push(records::from_json::<QueueEntry>("queue", &v)?);
        }
        Ok(out)
    }

    /// Records one attempt and its consequence for the queue, atomically.
    pub async fn settle(
        &self,
        entry: &QueueEntry,
        attempt: &AttemptRecord,
        outcome: &Settle,
    ) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(4);
        Self::settle_ops(&mut ops, entry, attempt, outcome);
        self.write(ops, false).await
    }

    /// Settles several entries in one atomic write (a pull consumer's ack
    /// of a batch): one trip through the group commit instead of one each.
    pub async fn settle_many(
        &self,
        settled: &[(QueueEntry, AttemptRecord, Settle)],
    ) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(settled.len() * 4);
        for (entry, attempt, outcome) in settled {
            Self::settle_ops(&mut ops, entry, attempt, outcome);
        }
        self.write(ops, false).await
    }

    fn settle_ops(
        ops: &mut Vec<Op>,
        entry: &QueueEntry,
        attempt: &AttemptRecord,
        outcome: &Settle,
    ) {
        let id = entry.event_id;
        let dest = &entry.destination;
        let now = now_ms();
        ops.push(Op::Del(Ks::Queue, entry.key()));
        ops.push(Op::Put(
            Ks::Attempts,
            keys::attempt(id, dest, attempt.attempt),
            records::to_json(attempt),
        ));
        let last_error = attempt
            .error
            .clone()
            .or_else(|| attempt.status.map(|s| format!("HTTP {s}")));
        let (status, last_error) = match outcome {
            Settle::Delivered => (DeliveryStatus::Delivered, None),
            Settle::Retry { next } => {
                ops.push(Op::Put(Ks::Queue, next.key(), records::to_json(next)));
                (DeliveryStatus::Pending, last_error)
            }
            Settle::DeadLetter { error } => {
                ops.push(Op::Put(
                    Ks::Dlq,
                    keys::dlq(dest, id),
                    records::to_json(&DlqEntry {
                        event_id: id,
                        error: error.clone(),
                        attempts: attempt.attempt,
                        dead_lettered_at_ms: now,
                        priority: entry.priority,
                        ordering_key: entry.ordering_key.clone(),
                    }),
                ));
                (DeliveryStatus::DeadLettered, Some(error.clone()))
            }
        };
        ops.push(Op::Put(
            Ks::DState,
            keys::dstate(id, dest),
            records::to_json(&DeliveryState {
                status,
                attempts: attempt.attempt,
                updated_at_ms: now,
                last_error,
            }),
        ));
    }

    /// Puts entries (back) in queues: redelivery and DLQ replay. Removes the
    /// given DLQ keys in the same write.
    pub async fn requeue(
        &self,
        entries: &[QueueEntry],
        from_dlq: &[(String, Ulid)],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut ops = Vec::new();
        for e in entries {
            ops.push(Op::Put(Ks::Queue, e.key(), records::to_json(e)));
            ops.push(Op::Put(
                Ks::DState,
                keys::dstate(e.event_id, &e.destination),
                records::to_json(&DeliveryState {
                    status: DeliveryStatus::Pending,
                    attempts: e.history_base,
                    updated_at_ms: now,
                    last_error: None,
                }),
            ));
        }
        for (dest, id) in from_dlq {
            ops.push(Op::Del(Ks::Dlq, keys::dlq(dest, *id)));
        }
        self.write(ops, true).await
    }

    /// Rewrites queue entries in place (a lease taken, extended or returned):
    /// each old key removed and its new version written, atomically.
    pub async fn move_entries(&self, moves: &[(QueueEntry, QueueEntry)]) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(moves.len() * 2);
        for (old, new) in moves {
            ops.push(Op::Del(Ks::Queue, old.key()));
            ops.push(Op::Put(Ks::Queue, new.key(), records::to_json(new)));
        }
        self.write(ops, false).await
    }

    /// Delivery states of one event, by destination.
    pub fn delivery_states(&self, id: Ulid) -> Result<Vec<(String, DeliveryState)>, StoreError> {
        let mut out = Vec::new();
        for guard in self.ks.dstate.prefix(keys::event(id)) {
            let (k, v) = guard.into_inner()?;
            let dest = String::from_utf8_lossy(&k[16..]).into_owned();
            out.push((dest, records::from_json("dstate", &v)?));
        }
        Ok(out)
    }

    /// One delivery state.
    pub fn delivery_state(
        &self,
        id: Ulid,
        dest: &str,
    ) -> Result<Option<DeliveryState>, StoreError> {
        match self.ks.dstate.get(keys::dstate(id, dest))? {
            Some(v) => Ok(Some(records::from_json("dstate", &v)?)),
            None => Ok(None),
        }
    }

    /// The attempt history of one event at one destination, oldest first.
    pub fn attempts(&self, id: Ulid, dest: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut out = Vec::new();
        for guard in self.ks.attempts.prefix(keys::attempts_prefix(id, dest)) {
            let (_, v) = guard.into_inner()?;
            out.push(records::from_json("attempts", &v)?);
        }
        Ok(out)
    }

    /// Events in id (time) order within `[from, to]`, after `cursor`.
    pub fn scan_events(
        &self,
        from: Ulid,
        to: Ulid,
        cursor: Option<Ulid>,
        mut keep: impl FnMut(&Event) -> Result<bool, StoreError>,
        limit: usize,
        max_scanned: usize,
    ) -> Result<(Vec<Event>, Option<Ulid>), StoreError> {
        let start = match cursor {
            Some(c) => Ulid(c.0.wrapping_add(1)).max(from),
            None => from,
        };
        let mut out = Vec::new();
        for (scanned, guard) in self
            .ks
            .events
            .range(keys::event(start)..=keys::event(to))
            .enumerate()
        {
            let (k, v) = guard.into_inner()?;
            let Some(id) = keys::decode_event(&k) else {
                continue;
            };
            let e = records::decode_event(id, &v)?;
            if keep(&e)? {
                out.push(e);
                if out.len() >= limit {
                    return Ok((out, Some(id)));
                }
            }
            if scanned + 1 >= max_scanned {
                return Ok((out, Some(id)));
            }
        }
        Ok((out, None))
    }

    fn dlq_ks(&self, topic: bool) -> (&fjall::Keyspace, Ks) {
        if topic {
            (&self.ks.topic_dlq, Ks::TopicDlq)
        } else {
            (&self.ks.dlq, Ks::Dlq)
        }
    }

    /// A page of a DLQ (a destination's, or a topic's when `topic`), oldest
    /// event first, after `cursor`.
    pub fn dlq_page(
        &self,
        owner: &str,
        topic: bool,
        cursor: Option<Ulid>,
        limit: usize,
    ) -> Result<(Vec<DlqEntry>, Option<Ulid>), StoreError> {
        let (ks, _) = self.dlq_ks(topic);
        let prefix = keys::name_prefix(owner);
        let start = match cursor {
            Some(c) => keys::dlq(owner, Ulid(c.0.wrapping_add(1))),
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for guard in ks.range(start..) {
            let (k, v) = guard.into_inner()?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(records::from_json::<DlqEntry>("dlq", &v)?);
            if out.len() > limit {
                break;
            }
        }
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|e| e.event_id)
        } else {
            None
        };
        Ok((out, next))
    }

    /// One DLQ entry.
    pub fn dlq_entry(
        &self,
        owner: &str,
        topic: bool,
        id: Ulid,
    ) -> Result<Option<DlqEntry>, StoreError> {
        let (ks, _) = self.dlq_ks(topic);
        match ks.get(keys::dlq(owner, id))? {
            Some(v) => Ok(Some(records::from_json("dlq", &v)?)),
            None => Ok(None),
        }
    }

    /// Number of entries in a DLQ (an exact count; DLQs are small by nature,
    /// and this runs on admin requests and metrics scrapes only).
    pub fn dlq_depth(&self, owner: &str, topic: bool) -> Result<u64, StoreError> {
        let (ks, _) = self.dlq_ks(topic);
        let mut n = 0;
        for guard in ks.prefix(keys::name_prefix(owner)) {
            guard.key()?;
            n += 1;
        }
        Ok(n)
    }

    /// Removes DLQ entries.
    pub async fn dlq_remove(
        &self,
        owner: &str,
        topic: bool,
        ids: &[Ulid],
    ) -> Result<(), StoreError> {
        let (_, k) = self.dlq_ks(topic);
        let ops = ids
            .iter()
            .map(|id| Op::Del(k, keys::dlq(owner, *id)))
            .collect();
        self.write(ops, true).await
    }

    /// Moves events from a topic's DLQ back to routing: the plugin chain runs again.
    pub async fn topic_dlq_replay(&self, topic: &str, ids: &[Ulid]) -> Result<(), StoreError> {
        let mut ops = Vec::new();
        for id in ids {
            ops.push(Op::Del(Ks::TopicDlq, keys::dlq(topic, *id)));
            ops.push(Op::Put(
                Ks::PendingRoute,
                keys::event(*id).to_vec(),
                topic.as_bytes().to_vec(),
            ));
        }
        self.write(ops, true).await?;
        self.rescan
            .store(true, std::sync::atomic::Ordering::Release);
        self.appended.notify_one();
        Ok(())
    }

    /// The persisted paused flag of a destination.
    pub fn is_paused(&self, dest: &str) -> Result<bool, StoreError> {
        Ok(self.ks.meta.contains_key(keys::paused(dest))?)
    }

    /// Persists a destination's paused flag, so a pause survives a restart.
    pub async fn set_paused(&self, dest: &str, paused: bool) -> Result<(), StoreError> {
        let op = if paused {
            Op::Put(Ks::Meta, keys::paused(dest), Vec::new())
        } else {
            Op::Del(Ks::Meta, keys::paused(dest))
        };
        self.write(vec![op], true).await
    }

    /// Removes expired idempotency keys, at most `max` per call.
    pub async fn expire_idempotency(
        &self,
        older_than_ms: u64,
        max: usize,
    ) -> Result<usize, StoreError> {
        let mut ops = Vec::new();
        for guard in self
            .ks
            .idem_expiry
            .range(..older_than_ms.to_be_bytes().to_vec())
            .take(max)
        {
            let k = guard.key()?;
            let idem_key = k[8..].to_vec();
            // The key may have been re-used after an earlier expiry: only drop
            // the `idem` record if it is the one this expiry entry describes.
            if let Some(v) = self.ks.idem.get(&idem_key)?
                && let Some((created, _)) = writer::decode_idem(&v)
                && created.to_be_bytes() == k[..8]
            {
                ops.push(Op::Del(Ks::Idem, idem_key));
            }
            ops.push(Op::Del(Ks::IdemExpiry, k.to_vec()));
        }
        let n = ops.len();
        self.write(ops, false).await?;
        Ok(n)
    }

    /// Removes events accepted before `cutoff_ms` whose every delivery is
    /// finished (delivered or dead-lettered), with their history and dead
    /// letters. Scans at most `max` events after `after`, and returns the new
    /// low-water mark: the first event it had to keep, so the next sweep
    /// starts there instead of wading through tombstones.
    pub async fn sweep_retention(
        &self,
        cutoff_ms: u64,
        after: Option<Ulid>,
        max: usize,
    ) -> Result<(usize, Option<Ulid>), StoreError> {
        let start = after.unwrap_or(Ulid::nil());
        let end = Ulid::from_parts(cutoff_ms, 0);
        let mut ops = Vec::new();
        let mut removed = 0;
        let mut low_water = after;
        let mut blocked = false;
        for guard in self
            .ks
            .events
            .range(keys::event(start)..keys::event(end))
            .take(max)
        {
            let (k, v) = guard.into_inner()?;
            let Some(id) = keys::decode_event(&k) else {
                continue;
            };
            let finished = !self.ks.pending_route.contains_key(keys::event(id))?
                && self.delivery_states(id)?.iter().all(|(_, s)| {
                    matches!(
                        s.status,
                        DeliveryStatus::Delivered | DeliveryStatus::DeadLettered
                    )
                });
            if !finished {
                blocked = true;
                continue;
            }
            if !blocked {
                low_water = Some(id);
            }
            let topic = records::decode_event(id, &v)
                .map(|e| e.topic)
                .unwrap_or_default();
            for (dest, _) in self.delivery_states(id)? {
                ops.push(Op::Del(Ks::DState, keys::dstate(id, &dest)));
                ops.push(Op::Del(Ks::Dlq, keys::dlq(&dest, id)));
                for g in self.ks.attempts.prefix(keys::attempts_prefix(id, &dest)) {
                    ops.push(Op::Del(Ks::Attempts, g.key()?.to_vec()));
                }
            }
            ops.push(Op::Del(Ks::TopicDlq, keys::dlq(&topic, id)));
            ops.push(Op::Del(Ks::Transformed, keys::event(id).to_vec()));
            ops.push(Op::Del(Ks::Events, keys::event(id).to_vec()));
            removed += 1;
        }
        self.write(ops, false).await?;
        Ok((removed, low_water))
    }
}
