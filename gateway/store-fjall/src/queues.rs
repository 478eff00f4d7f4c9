//! Destination queues and dead-letter queues on fjall.
//!
//! Each open queue is a [`Window`] (the order: bands, aging, due times, FIFO
//! keys, leases) over the entries of its destination in the `queue`
//! keyspace, with at most a bounded number of them in memory; the indexes
//! beside it answer what the window does not hold:
//!
//! - `qkeys`: every pending entry with a FIFO key, by destination, key and
//!   id, so a key's next head is found when its head moves on;
//! - `qage`: every pending entry by the time it was queued, for the age of
//!   the oldest;
//! - `leases`: the live pull leases, read at open;
//! - `qstat`: per destination, the number of stored entries and how many
//!   fall due in each second (the writer keeps them, in the same batch as
//!   the entries), so depth and "delayed" are exact without a count; and
//!   stored entries per priority band, under `keys::band_counter` names,
//!   for the depth by priority.
//!
//! Every change is written first, then applied to the window, so what the
//! store says is what a restart resumes from. "In flight" is never written:
//! after a crash such an entry is simply due again. Leases are written (the
//! entry's key moves to the lease's end, its nonce in the value), so they
//! survive a restart.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use switchyard_core::{EventId, now_ms};
use switchyard_store::{
    AttemptRecord, Cancelled, DeadLetters, DeliveryState, DeliveryStatus, DlqEntry, DlqOwner, Hold,
    Lease, LeaseCheck, ListOrder, Purged, QueueEntry, QueuePolicy, QueueStats, Queues, Settle,
    Settlement, StoreError,
};
use tokio::sync::Notify;
use ulid::Ulid;

use crate::window::{Head, Source, Window};
use crate::writer::{Delta, Ks, Op};
use crate::{Fj, FjallStore, Keyspaces, codec, keys};

/// One open queue.
pub(crate) struct Queue {
    policy: QueuePolicy,
    window: Mutex<Window>,
    /// Rung when an entry may have become takeable.
    wake: Arc<Notify>,
    /// Push attempts in flight that an operator cancelled: their
    /// settlement removes the entry instead of retrying or dead-lettering
    /// it. Memory only, like "in flight" itself: after a crash the entry
    /// is pending again, and a cancel must be repeated.
    cancelled: Mutex<HashSet<Ulid>>,
}

/// The window's view of one destination's keys in the store.
struct Disk<'a> {
    ks: &'a Keyspaces,
    dest: &'a str,
}

impl Source for Disk<'_> {
    fn band_after(
        &self,
        band: u8,
        after: Option<(u64, Ulid)>,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let start = match after {
            Some((due, id)) => Bound::Excluded(keys::queue_at(self.dest, band, due, id)),
            None => Bound::Included(keys::queue_at(self.dest, band, 0, Ulid::nil())),
        };
        let end = Bound::Excluded(keys::after_band(self.dest, band));
        let mut out = Vec::with_capacity(limit.min(1024));
        for guard in self.ks.queue.range((start, end)).take(limit) {
            let (_, v) = guard.into_inner().fj()?;
            out.push(codec::from_json("queue", &v)?);
        }
        Ok(out)
    }

    fn key_after(&self, key: &str, after: Ulid) -> Result<Option<Head>, StoreError> {
        let prefix = keys::fifo_prefix(self.dest, key);
        let start = Bound::Excluded(keys::fifo(self.dest, key, after));
        let end = Bound::Excluded(keys::successor(&prefix));
        let Some(guard) = self.ks.qkeys.range((start, end)).next() else {
            return Ok(None);
        };
        let (k, v) = guard.into_inner().fj()?;
        fifo_head(self.dest, &k, &v).map(Some)
    }

    fn entry(&self, band: u8, due_ms: u64, id: Ulid) -> Result<Option<QueueEntry>, StoreError> {
        match self
            .ks
            .queue
            .get(keys::queue_at(self.dest, band, due_ms, id))
            .fj()?
        {
            Some(v) => Ok(Some(codec::from_json("queue", &v)?)),
            None => Ok(None),
        }
    }
}

fn fifo_head(dest: &str, k: &[u8], v: &[u8]) -> Result<Head, StoreError> {
    let corrupt = || StoreError::Corrupt {
        keyspace: "qkeys",
        message: format!("a key of destination {dest:?} does not read back"),
    };
    let (_, id) = keys::decode_fifo(dest, k).ok_or_else(corrupt)?;
    let (band, due_ms) = keys::decode_fifo_value(v).ok_or_else(corrupt)?;
    Ok(Head { id, band, due_ms })
}

fn band_of(e: &QueueEntry) -> u8 {
    9 - e.priority.min(9)
}

fn second(ms: u64) -> u64 {
    ms / 1000
}

/// The ops and counter changes that store a new pending entry.
pub(crate) fn add_entry(ops: &mut Vec<Op>, deltas: &mut Vec<Delta>, e: &QueueEntry) {
    ops.push(Op::Put(Ks::Queue, keys::queue_entry(e), codec::to_json(e)));
    ops.push(Op::Put(
        Ks::QAge,
        keys::age(&e.destination, e.enqueued_at_ms, e.event_id),
        Vec::new(),
    ));
    if let Some(k) = &e.ordering_key {
        ops.push(Op::Put(
            Ks::QKeys,
            keys::fifo(&e.destination, k, e.event_id),
            keys::fifo_value(band_of(e), e.due_ms),
        ));
    }
    deltas.push(Delta::count(&e.destination, 1));
    deltas.push(Delta::count(
        &keys::band_counter(&e.destination, band_of(e)),
        1,
    ));
    deltas.push(Delta::due(&e.destination, second(e.due_ms), 1));
}

/// The ops and counter changes that remove a stored entry for good.
fn remove_entry(ops: &mut Vec<Op>, deltas: &mut Vec<Delta>, e: &QueueEntry) {
    ops.push(Op::Del(Ks::Queue, keys::queue_entry(e)));
    ops.push(Op::Del(
        Ks::QAge,
        keys::age(&e.destination, e.enqueued_at_ms, e.event_id),
    ));
    if let Some(k) = &e.ordering_key {
        ops.push(Op::Del(
            Ks::QKeys,
            keys::fifo(&e.destination, k, e.event_id),
        ));
    }
    if e.lease.is_some() {
        ops.push(Op::Del(Ks::Leases, keys::lease(&e.destination, e.event_id)));
    }
    deltas.push(Delta::count(&e.destination, -1));
    deltas.push(Delta::count(
        &keys::band_counter(&e.destination, band_of(e)),
        -1,
    ));
    deltas.push(Delta::due(&e.destination, second(e.due_ms), -1));
}

/// The ops and counter changes that rewrite a stored entry as `new` (a
/// lease taken, extended or given back, a retry): same event, new key.
fn move_entry(ops: &mut Vec<Op>, deltas: &mut Vec<Delta>, old: &QueueEntry, new: &QueueEntry) {
    let (old_key, new_key) = (keys::queue_entry(old), keys::queue_entry(new));
    // Same key (same band, due time and id): one write overwrites it
    // rather than delete and insert one key in one batch.
    if old_key != new_key {
        ops.push(Op::Del(Ks::Queue, old_key));
    }
    ops.push(Op::Put(Ks::Queue, new_key, codec::to_json(new)));
    if let Some(k) = &new.ordering_key {
        ops.push(Op::Put(
            Ks::QKeys,
            keys::fifo(&new.destination, k, new.event_id),
            keys::fifo_value(band_of(new), new.due_ms),
        ));
    }
    match new.lease {
        Some(_) => ops.push(Op::Put(
            Ks::Leases,
            keys::lease(&new.destination, new.event_id),
            codec::to_json(new),
        )),
        None if old.lease.is_some() => {
            ops.push(Op::Del(
                Ks::Leases,
                keys::lease(&new.destination, new.event_id),
            ));
        }
        None => {}
    }
    if second(old.due_ms) != second(new.due_ms) {
        deltas.push(Delta::due(&new.destination, second(old.due_ms), -1));
        deltas.push(Delta::due(&new.destination, second(new.due_ms), 1));
    }
    if band_of(old) != band_of(new) {
        deltas.push(Delta::count(
            &keys::band_counter(&old.destination, band_of(old)),
            -1,
        ));
        deltas.push(Delta::count(
            &keys::band_counter(&new.destination, band_of(new)),
            1,
        ));
    }
}

impl Queue {
    fn window(&self) -> MutexGuard<'_, Window> {
        // A panic while holding this lock would be a bug in the window; the
        // data is on disk, and what memory holds is consistent enough to
        // keep delivering, so don't cascade it.
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cancelled(&self) -> MutexGuard<'_, HashSet<Ulid>> {
        self.cancelled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a cancel was asked for this in-flight entry (and forgets it).
    fn take_cancel(&self, id: Ulid) -> bool {
        self.cancelled().remove(&id)
    }
}

impl FjallStore {
    fn queue(&self, dest: &str) -> Result<Arc<Queue>, StoreError> {
        self.queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(dest)
            .cloned()
            .ok_or_else(|| StoreError::UnknownQueue(dest.to_owned()))
    }

    fn disk<'a>(&'a self, dest: &'a str) -> Disk<'a> {
        Disk { ks: &self.ks, dest }
    }

    /// Hands entries just written to their queues (those that are open).
    pub(crate) fn push_all(&self, entries: Vec<QueueEntry>) -> Result<(), StoreError> {
        for e in entries {
            let Ok(q) = self.queue(&e.destination) else {
                continue;
            };
            let dest = e.destination.clone();
            q.window().push(e, &self.disk(&dest))?;
            q.wake.notify_one();
        }
        Ok(())
    }

    pub(crate) fn is_in_flight(&self, dest: &str, id: Ulid) -> bool {
        self.queue(dest).is_ok_and(|q| q.window().is_in_flight(id))
    }

    fn dlq_ks(owner: DlqOwner<'_>) -> Ks {
        match owner {
            DlqOwner::Destination(_) => Ks::Dlq,
            DlqOwner::Topic(_) => Ks::TopicDlq,
        }
    }

    /// The ops that record one attempt and its consequence.
    fn settle_ops(ops: &mut Vec<Op>, deltas: &mut Vec<Delta>, s: &Settlement) {
        let (entry, attempt) = (&s.entry, &s.attempt);
        let id = entry.event_id;
        let dest = &entry.destination;
        let now = now_ms();
        ops.push(Op::Put(
            Ks::Attempts,
            keys::attempt(id, dest, attempt.attempt),
            codec::to_json(attempt),
        ));
        let last_error = attempt
            .error
            .clone()
            .or_else(|| attempt.status.map(|s| format!("HTTP {s}")));
        let mut next_attempt_ms = None;
        let (status, last_error) = match &s.outcome {
            Settle::Delivered => {
                remove_entry(ops, deltas, entry);
                (DeliveryStatus::Delivered, None)
            }
            Settle::Retry { next } => {
                move_entry(ops, deltas, entry, next);
                next_attempt_ms = Some(next.due_ms);
                (DeliveryStatus::Pending, last_error)
            }
            Settle::DeadLetter { error } => {
                remove_entry(ops, deltas, entry);
                ops.push(Op::Put(
                    Ks::Dlq,
                    keys::dlq(dest, id),
                    codec::to_json(&DlqEntry {
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
            codec::to_json(&DeliveryState {
                status,
                attempts: attempt.attempt,
                updated_at_ms: now,
                last_error,
                next_attempt_ms,
            }),
        ));
    }

    /// The ops that cancel a stored entry whose history holds `attempts`
    /// attempts: the entry leaves the queue, a record numbered after them
    /// says why, and the delivery state is `cancelled`.
    fn cancel_ops(
        ops: &mut Vec<Op>,
        deltas: &mut Vec<Delta>,
        entry: &QueueEntry,
        attempts: u32,
        reason: &str,
    ) {
        let (id, dest) = (entry.event_id, &entry.destination);
        let now = now_ms();
        let n = attempts + 1;
        let error = format!("cancelled: {reason}");
        remove_entry(ops, deltas, entry);
        ops.push(Op::Put(
            Ks::Attempts,
            keys::attempt(id, dest, n),
            codec::to_json(&AttemptRecord {
                attempt: n,
                at_ms: now,
                status: None,
                error: Some(error.clone()),
                latency_ms: 0,
                response_excerpt: None,
                delay_before_ms: 0,
            }),
        ));
        ops.push(Op::Put(
            Ks::DState,
            keys::dstate(id, dest),
            codec::to_json(&DeliveryState {
                status: DeliveryStatus::Cancelled,
                attempts: n,
                updated_at_ms: now,
                last_error: Some(error),
                next_attempt_ms: None,
            }),
        ));
    }

    /// Attempts recorded for `id` at `dest` so far (its delivery state's).
    fn attempts_so_far(&self, dest: &str, id: Ulid) -> Result<u32, StoreError> {
        Ok(match self.ks.dstate.get(keys::dstate(id, dest)).fj()? {
            Some(v) => codec::from_json::<DeliveryState>("dstate", &v)?.attempts,
            None => 0,
        })
    }

    /// Writes the cancellation of entries the window holds as taken (taken
    /// out for the purpose, or leases), then ends them in the window. If
    /// the write fails they go back to the queue as they were.
    async fn remove_cancelled(
        &self,
        entries: &[QueueEntry],
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(entries.len() * 6);
        let mut deltas = Vec::new();
        for e in entries {
            let n = self.attempts_so_far(&e.destination, e.event_id)?;
            Self::cancel_ops(&mut ops, &mut deltas, e, n, reason);
        }
        let written = self.write_counted(ops, deltas, false).await;
        for e in entries {
            let Ok(q) = self.queue(&e.destination) else {
                continue;
            };
            let disk = self.disk(&e.destination);
            let mut window = q.window();
            match &written {
                Ok(()) => window.drop_taken(e.event_id, &disk)?,
                Err(_) => window.requeue(e.clone(), &disk)?,
            }
            drop(window);
            q.wake.notify_one();
        }
        written
    }

    /// Up to `limit` stored entries of `dest` after the key `after`, in key
    /// order, with their keys.
    fn stored_after(
        &self,
        dest: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, QueueEntry)>, StoreError> {
        let prefix = keys::name_prefix(dest);
        let start = match after {
            Some(k) => Bound::Excluded(k.to_vec()),
            None => Bound::Included(prefix.clone()),
        };
        let end = Bound::Excluded(keys::successor(&prefix));
        let mut out = Vec::new();
        for guard in self.ks.queue.range((start, end)).take(limit) {
            let (k, v) = guard.into_inner().fj()?;
            out.push((k.to_vec(), codec::from_json("queue", &v)?));
        }
        Ok(out)
    }

    /// Takes out of the window, under its lock, what a cancel removes now:
    /// stored pending entries (made in flight for the write) and leases
    /// (already in flight, their entry as leased). Push attempts in flight
    /// are marked instead, and counted in the second number.
    fn take_out_for_cancel(
        &self,
        q: &Queue,
        dest: &str,
        candidates: Vec<QueueEntry>,
    ) -> Result<(Vec<QueueEntry>, u64), StoreError> {
        let disk = self.disk(dest);
        let mut window = q.window();
        let mut now = Vec::new();
        let mut later = 0;
        for e in candidates {
            match window.taken(e.event_id) {
                // A lease whose entry is written as leased: remove it now
                // (the consumer's ack then finds no lease).
                Some(t) if t.lease.is_some() && t.entry.lease.is_some() => {
                    now.push(t.entry.clone())
                }
                Some(_) => {
                    if q.cancelled().insert(e.event_id) {
                        later += 1;
                    }
                }
                None => {
                    window.take_out(e.clone(), &disk)?;
                    now.push(e);
                }
            }
        }
        Ok((now, later))
    }

    /// Entries rewritten in place: see [`move_entry`].
    async fn move_entries(&self, moves: &[(QueueEntry, QueueEntry)]) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(moves.len() * 3);
        let mut deltas = Vec::new();
        for (old, new) in moves {
            move_entry(&mut ops, &mut deltas, old, new);
        }
        self.write_counted(ops, deltas, false).await
    }

    /// Whether event `id` has a stored entry at `dest`: its delivery state
    /// is pending exactly while it has one (in flight or not).
    fn stored_pending(&self, dest: &str, id: Ulid) -> Result<bool, StoreError> {
        match self.ks.dstate.get(keys::dstate(id, dest)).fj()? {
            Some(v) => {
                let st: DeliveryState = codec::from_json("dstate", &v)?;
                Ok(st.status == DeliveryStatus::Pending)
            }
            None => Ok(false),
        }
    }

    /// The oldest pending (not in flight) entry's enqueue time: the first
    /// `qage` key that is not in flight, read on from where the last look
    /// stopped (every key before it was removed).
    fn oldest_pending(&self, dest: &str, q: &Queue) -> Result<Option<u64>, StoreError> {
        let prefix = keys::name_prefix(dest);
        let from = self.age_low_water(dest);
        let start = keys::age(dest, from, Ulid::nil());
        let window = q.window();
        for guard in self.ks.qage.range(start..keys::successor(&prefix)) {
            let k = guard.key().fj()?;
            let Some((ms, id)) = keys::decode_age(dest, &k) else {
                continue;
            };
            if window.is_in_flight(id) {
                continue;
            }
            self.set_age_low_water(dest, ms);
            return Ok(Some(ms));
        }
        Ok(None)
    }
}

#[async_trait]
impl Queues for FjallStore {
    async fn open_queue(&self, dest: &str, policy: QueuePolicy) -> Result<(), StoreError> {
        let mut window = Window::new(policy, self.window_size);
        let disk = self.disk(dest);
        let now = now_ms();
        // Live leases first: their entries are in flight, not heads.
        for guard in self.ks.leases.prefix(keys::name_prefix(dest)) {
            let (_, v) = guard.into_inner().fj()?;
            let e: QueueEntry = codec::from_json("leases", &v)?;
            if let Some(nonce) = e.lease
                && e.due_ms > now
            {
                let lease = Lease {
                    nonce,
                    until_ms: e.due_ms,
                };
                window.insert_leased(e, lease);
            }
        }
        if policy.ordered {
            // Each key's head: its first entry not in flight. One seek per
            // key: skip over the rest of each key's entries.
            let prefix = keys::name_prefix(dest);
            let end = keys::successor(&prefix);
            let mut from = prefix.clone();
            loop {
                let Some(guard) = self.ks.qkeys.range(from.clone()..end.clone()).next() else {
                    break;
                };
                let (k, v) = guard.into_inner().fj()?;
                let Some((key, _)) = keys::decode_fifo(dest, &k) else {
                    break;
                };
                let first = fifo_head(dest, &k, &v)?;
                let head = if window.is_in_flight(first.id) {
                    disk.key_after(&key, first.id)?
                } else {
                    Some(first)
                };
                if let Some(h) = head {
                    window.set_head(&key, h);
                }
                from = keys::successor(&keys::fifo_prefix(dest, &key));
            }
            // Keys held by dead letters survive a restart: hold them again.
            if policy.hold_dead_letters {
                for guard in self.ks.dlq.prefix(keys::name_prefix(dest)) {
                    let (_, v) = guard.into_inner().fj()?;
                    let e: DlqEntry = codec::from_json("dlq", &v)?;
                    if let Some(k) = &e.ordering_key {
                        window.block(k, e.event_id);
                    }
                }
            }
        }
        window.open(&disk)?;
        let queue = Arc::new(Queue {
            policy,
            window: Mutex::new(window),
            wake: Arc::new(Notify::new()),
            cancelled: Mutex::new(HashSet::new()),
        });
        self.queues
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dest.to_owned(), queue);
        Ok(())
    }

    async fn orphaned_queues(&self) -> Result<Vec<String>, StoreError> {
        // One seek per destination: skip over each destination's entries
        // instead of reading them.
        let open = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        loop {
            let Some(guard) = self.ks.queue.range(from.clone()..).next() else {
                break;
            };
            let key = guard.key().fj()?;
            let Some(dest) = keys::queue_destination(&key) else {
                break;
            };
            if !open.contains_key(dest) {
                out.push(dest.to_owned());
            }
            from = keys::after_queue(dest);
        }
        Ok(out)
    }

    fn waker(&self, dest: &str) -> Result<Arc<Notify>, StoreError> {
        Ok(self.queue(dest)?.wake.clone())
    }

    async fn take(
        &self,
        dest: &str,
        max: usize,
        hold: Hold,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let q = self.queue(dest)?;
        let disk = self.disk(dest);
        let now = now_ms();
        let mut taken = Vec::new();
        {
            let mut window = q.window();
            while taken.len() < max {
                let lease = match hold {
                    Hold::InFlight => None,
                    Hold::Lease { until_ms } => Some(Lease {
                        nonce: rand::random(),
                        until_ms,
                    }),
                };
                match window.take_due(now, lease, &disk)? {
                    Some(e) => taken.push((e, lease)),
                    None => break,
                }
            }
        }
        if !matches!(hold, Hold::Lease { .. }) || taken.is_empty() {
            return Ok(taken.into_iter().map(|(e, _)| e).collect());
        }
        let moves: Vec<(QueueEntry, QueueEntry)> = taken
            .iter()
            .map(|(e, lease)| {
                let lease = lease.unwrap_or(Lease {
                    nonce: 0,
                    until_ms: now,
                });
                let leased = QueueEntry {
                    due_ms: lease.until_ms,
                    attempt: e.attempt + 1,
                    lease: Some(lease.nonce),
                    ..e.clone()
                };
                (e.clone(), leased)
            })
            .collect();
        if let Err(err) = self.move_entries(&moves).await {
            // Not leased after all: put them back as they were.
            let mut window = q.window();
            for (old, _) in moves {
                window.requeue(old, &disk)?;
            }
            q.wake.notify_one();
            return Err(err);
        }
        let mut window = q.window();
        Ok(moves
            .into_iter()
            .map(|(_, leased)| {
                let lease = Lease {
                    nonce: leased.lease.unwrap_or_default(),
                    until_ms: leased.due_ms,
                };
                window.set_lease(leased.event_id, lease, leased.clone());
                leased
            })
            .collect())
    }

    fn next_due(&self, dest: &str) -> Option<u64> {
        self.queue(dest).ok()?.window().next_due(now_ms())
    }

    async fn settle(&self, settled: Vec<Settlement>) -> Result<(), StoreError> {
        if settled.is_empty() {
            return Ok(());
        }
        let mut ops = Vec::with_capacity(settled.len() * 6);
        let mut deltas = Vec::new();
        // Attempts an operator cancelled while they ran: unless they
        // delivered, the entry leaves the queue instead.
        let mut cancelled = Vec::new();
        for s in &settled {
            let cancel = !matches!(s.outcome, Settle::Delivered)
                && self
                    .queue(&s.entry.destination)
                    .is_ok_and(|q| q.take_cancel(s.entry.event_id));
            if cancel {
                ops.push(Op::Put(
                    Ks::Attempts,
                    keys::attempt(s.entry.event_id, &s.entry.destination, s.attempt.attempt),
                    codec::to_json(&s.attempt),
                ));
                Self::cancel_ops(
                    &mut ops,
                    &mut deltas,
                    &s.entry,
                    s.attempt.attempt,
                    "cancelled while its attempt ran",
                );
            } else {
                Self::settle_ops(&mut ops, &mut deltas, s);
            }
            cancelled.push(cancel);
        }
        self.write_counted(ops, deltas, false).await?;
        for (s, cancel) in settled.into_iter().zip(cancelled) {
            let dest = s.entry.destination.clone();
            let Ok(q) = self.queue(&dest) else {
                continue;
            };
            let disk = self.disk(&dest);
            {
                let mut window = q.window();
                let id = s.entry.event_id;
                if cancel {
                    window.drop_taken(id, &disk)?;
                    drop(window);
                    q.wake.notify_one();
                    continue;
                }
                match s.outcome {
                    Settle::Delivered => {
                        window.finish(id, &disk)?;
                    }
                    Settle::Retry { next } => window.requeue(next, &disk)?,
                    Settle::DeadLetter { .. } if q.policy.hold_dead_letters => {
                        window.finish_blocking(id)
                    }
                    Settle::DeadLetter { .. } => {
                        window.finish(id, &disk)?;
                    }
                }
            }
            // Finishing a FIFO key's head makes the key's next event
            // eligible: the dispatcher may be asleep waiting for it.
            q.wake.notify_one();
        }
        Ok(())
    }

    async fn release(
        &self,
        entries: &[QueueEntry],
        due_ms: u64,
        delay_ms: u64,
    ) -> Result<(), StoreError> {
        // A cancelled attempt that gives its entry back ends it instead.
        let (cancelled, entries): (Vec<&QueueEntry>, Vec<&QueueEntry>) =
            entries.iter().partition(|e| {
                self.queue(&e.destination)
                    .is_ok_and(|q| q.take_cancel(e.event_id))
            });
        if !cancelled.is_empty() {
            let owned: Vec<QueueEntry> = cancelled.into_iter().cloned().collect();
            self.remove_cancelled(&owned, "cancelled while its attempt ran")
                .await?;
        }
        let moves: Vec<(QueueEntry, QueueEntry)> = entries
            .iter()
            .map(|e| {
                let back = QueueEntry {
                    due_ms,
                    delay_ms,
                    lease: None,
                    ..(*e).clone()
                };
                ((*e).clone(), back)
            })
            .collect();
        self.move_entries(&moves).await?;
        for (_, back) in moves {
            let dest = back.destination.clone();
            if let Ok(q) = self.queue(&dest) {
                q.window().requeue(back, &self.disk(&dest))?;
                q.wake.notify_one();
            }
        }
        Ok(())
    }

    async fn extend(&self, entry: &QueueEntry, until_ms: u64) -> Result<QueueEntry, StoreError> {
        let longer = QueueEntry {
            due_ms: until_ms,
            ..entry.clone()
        };
        self.move_entries(&[(entry.clone(), longer.clone())])
            .await?;
        let lease = Lease {
            nonce: longer.lease.unwrap_or_default(),
            until_ms,
        };
        self.queue(&entry.destination)?
            .window()
            .set_lease(longer.event_id, lease, longer.clone());
        Ok(longer)
    }

    async fn check_lease(&self, dest: &str, id: EventId, nonce: u64) -> LeaseCheck {
        let Ok(q) = self.queue(dest) else {
            return LeaseCheck::Unknown;
        };
        let window = q.window();
        match window.taken(id) {
            Some(t) if t.lease.is_some_and(|l| l.nonce == nonce) => {
                LeaseCheck::Current(t.entry.clone())
            }
            Some(_) => LeaseCheck::Superseded,
            None => {
                drop(window);
                // Visible again (pending) exactly while its delivery state
                // is pending.
                if self.stored_pending(dest, id).unwrap_or(false) {
                    LeaseCheck::Visible
                } else {
                    LeaseCheck::Unknown
                }
            }
        }
    }

    fn expire_leases(&self, dest: &str, now: u64) -> usize {
        let Ok(q) = self.queue(dest) else {
            return 0;
        };
        let disk = self.disk(dest);
        let n = {
            let mut window = q.window();
            let expired = window.expired_leases(now);
            let n = expired.len();
            // The store already has them due at the lease's end: a
            // memory-only move.
            for e in expired {
                if let Err(err) = window.requeue(QueueEntry { lease: None, ..e }, &disk) {
                    tracing::error!(destination = %dest, error = %err,
                        "Cannot return an expired lease to its queue.");
                }
            }
            n
        };
        for _ in 0..n {
            q.wake.notify_one();
        }
        n
    }

    async fn requeue(&self, entries: Vec<QueueEntry>, from_dlq: bool) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut fresh = Vec::with_capacity(entries.len());
        for e in entries {
            if !self.contains(&e.destination, e.event_id).await {
                fresh.push(e);
            }
        }
        let mut ops = Vec::new();
        let mut deltas = Vec::new();
        for e in &fresh {
            add_entry(&mut ops, &mut deltas, e);
            ops.push(Op::Put(
                Ks::DState,
                keys::dstate(e.event_id, &e.destination),
                codec::to_json(&DeliveryState {
                    status: DeliveryStatus::Pending,
                    attempts: e.history_base,
                    updated_at_ms: now,
                    last_error: None,
                    next_attempt_ms: (e.due_ms > now).then_some(e.due_ms),
                }),
            ));
            if from_dlq {
                ops.push(Op::Del(Ks::Dlq, keys::dlq(&e.destination, e.event_id)));
            }
        }
        self.write_counted(ops, deltas, true).await?;
        let n = fresh.len();
        self.push_all(fresh)?;
        Ok(n)
    }

    async fn contains(&self, dest: &str, id: EventId) -> bool {
        self.is_in_flight(dest, id) || self.stored_pending(dest, id).unwrap_or(false)
    }

    fn queue_stats(&self, dest: &str, now: u64) -> Result<QueueStats, StoreError> {
        let q = self.queue(dest)?;
        let (stored, due_later) = self.counted(dest, now)?;
        let stored_by_band = self.stored_by_band(dest);
        let (in_flight, leased_later, blocked_keys, in_flight_by_band) = {
            let w = q.window();
            (
                w.in_flight() as u64,
                w.in_flight_due_after(now),
                w.blocked_keys(now),
                w.in_flight_by_band(),
            )
        };
        let mut depth_by_priority = [0u64; 10];
        for band in 0..10 {
            depth_by_priority[9 - band] =
                stored_by_band[band].saturating_sub(in_flight_by_band[band]);
        }
        Ok(QueueStats {
            depth_by_priority,
            depth: stored.saturating_sub(in_flight),
            in_flight,
            delayed: due_later.saturating_sub(leased_later),
            oldest_enqueued_ms: self.oldest_pending(dest, &q)?,
            blocked_keys,
        })
    }

    fn backlog(&self) -> u64 {
        let open: Vec<(String, Arc<Queue>)> = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        open.iter()
            .map(|(dest, q)| {
                self.stored(dest)
                    .saturating_sub(q.window().in_flight() as u64)
            })
            .sum()
    }

    async fn is_paused(&self, dest: &str) -> Result<bool, StoreError> {
        self.ks.meta.contains_key(keys::paused(dest)).fj()
    }

    async fn set_paused(&self, dest: &str, paused: bool) -> Result<(), StoreError> {
        let op = if paused {
            Op::Put(Ks::Meta, keys::paused(dest), Vec::new())
        } else {
            Op::Del(Ks::Meta, keys::paused(dest))
        };
        self.write(vec![op], true).await
    }

    async fn cancel(&self, dest: &str, id: EventId, reason: &str) -> Result<Cancelled, StoreError> {
        let q = self.queue(dest)?;
        let taken = q.window().taken(id).map(|t| t.entry.clone());
        let candidate = match taken {
            Some(e) => Some(e),
            None if self.stored_pending(dest, id)? => {
                // Its key holds band and due time, which the id alone does
                // not give: look it up among the destination's entries.
                let mut after: Option<Vec<u8>> = None;
                let mut found = None;
                loop {
                    let chunk = self.stored_after(dest, after.as_deref(), 1024)?;
                    let Some((last, _)) = chunk.last() else {
                        break;
                    };
                    after = Some(last.clone());
                    if let Some((_, e)) = chunk.into_iter().find(|(_, e)| e.event_id == id) {
                        found = Some(e);
                        break;
                    }
                }
                found
            }
            None => None,
        };
        let Some(e) = candidate else {
            return Ok(Cancelled::NotPending);
        };
        let (now, later) = self.take_out_for_cancel(&q, dest, vec![e])?;
        if later > 0 {
            return Ok(Cancelled::AtAttemptEnd);
        }
        if now.is_empty() {
            // Marked before: its attempt is still running.
            return Ok(Cancelled::AtAttemptEnd);
        }
        self.remove_cancelled(&now, reason).await?;
        Ok(Cancelled::Removed)
    }

    async fn purge_queue(&self, dest: &str, reason: &str) -> Result<Purged, StoreError> {
        let q = self.queue(dest)?;
        let mut purged = Purged::default();
        let mut after: Option<Vec<u8>> = None;
        // A chunk at a time, so a purge of millions holds neither the
        // window's lock nor one write batch for long.
        loop {
            let chunk = self.stored_after(dest, after.as_deref(), 512)?;
            let Some((last, _)) = chunk.last() else {
                break;
            };
            after = Some(last.clone());
            let entries = chunk.into_iter().map(|(_, e)| e).collect();
            let (now, later) = self.take_out_for_cancel(&q, dest, entries)?;
            purged.in_flight += later;
            purged.removed += now.len() as u64;
            self.remove_cancelled(&now, reason).await?;
        }
        Ok(purged)
    }
}

#[async_trait]
impl DeadLetters for FjallStore {
    async fn dlq_page(
        &self,
        owner: DlqOwner<'_>,
        cursor: Option<EventId>,
        order: ListOrder,
        limit: usize,
    ) -> Result<(Vec<DlqEntry>, Option<EventId>), StoreError> {
        let ks = self.ks.get(Self::dlq_ks(owner));
        let name = owner.name();
        let prefix = keys::name_prefix(name);
        // Every key of this owner lies in [prefix, prefix + 16 x 0xff].
        let lo = match (order, cursor) {
            (ListOrder::Asc, Some(c)) => match c.0.checked_add(1) {
                Some(n) => keys::dlq(name, Ulid(n)),
                None => return Ok((Vec::new(), None)),
            },
            _ => prefix.clone(),
        };
        let hi = match (order, cursor) {
            (ListOrder::Desc, Some(c)) => match c.0.checked_sub(1) {
                Some(n) => keys::dlq(name, Ulid(n)),
                None => return Ok((Vec::new(), None)),
            },
            _ => keys::dlq(name, Ulid(u128::MAX)),
        };
        let range = ks.range(lo..=hi);
        let iter: Box<dyn Iterator<Item = _>> = match order {
            ListOrder::Asc => Box::new(range),
            ListOrder::Desc => Box::new(range.rev()),
        };
        let mut out = Vec::new();
        for guard in iter {
            let (k, v) = guard.into_inner().fj()?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(codec::from_json::<DlqEntry>("dlq", &v)?);
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

    async fn dlq_entry(
        &self,
        owner: DlqOwner<'_>,
        id: EventId,
    ) -> Result<Option<DlqEntry>, StoreError> {
        let ks = self.ks.get(Self::dlq_ks(owner));
        match ks.get(keys::dlq(owner.name(), id)).fj()? {
            Some(v) => Ok(Some(codec::from_json("dlq", &v)?)),
            None => Ok(None),
        }
    }

    async fn dlq_depth(&self, owner: DlqOwner<'_>) -> Result<u64, StoreError> {
        // An exact count: DLQs are small by nature, and this runs on admin
        // requests and metrics scrapes only.
        let ks = self.ks.get(Self::dlq_ks(owner));
        let mut n = 0;
        for guard in ks.prefix(keys::name_prefix(owner.name())) {
            guard.key().fj()?;
            n += 1;
        }
        Ok(n)
    }

    async fn dlq_remove(&self, owner: DlqOwner<'_>, ids: &[EventId]) -> Result<(), StoreError> {
        let k = Self::dlq_ks(owner);
        let ops = ids
            .iter()
            .map(|id| Op::Del(k, keys::dlq(owner.name(), *id)))
            .collect();
        self.write(ops, true).await?;
        if let DlqOwner::Destination(dest) = owner
            && let Ok(q) = self.queue(dest)
        {
            let disk = self.disk(dest);
            {
                let mut window = q.window();
                for id in ids {
                    window.unblock(*id, &disk)?;
                }
            }
            q.wake.notify_one();
        }
        Ok(())
    }
}
