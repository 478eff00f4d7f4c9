//! Destination queues and dead-letter queues on fjall.
//!
//! Each open queue is a [`MemQueue`] (the order: bands, aging, due times,
//! FIFO keys, leases) over the entries of its destination in the `queue`
//! keyspace. Every change is written first, then applied to the order, so
//! what the store says is what a restart resumes from. "In flight" is never
//! written: after a crash such an entry is simply due again. Leases are
//! written (the entry's key moves to the lease's end, its nonce in the
//! value), so they survive a restart.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use switchyard_core::{EventId, now_ms};
use switchyard_store::order::MemQueue;
use switchyard_store::{
    DeadLetters, DeliveryState, DeliveryStatus, DlqEntry, DlqOwner, Hold, Lease, LeaseCheck,
    QueueEntry, QueuePolicy, QueueStats, Queues, Settle, Settlement, StoreError,
};
use tokio::sync::Notify;
use ulid::Ulid;

use crate::writer::{Ks, Op};
use crate::{Fj, FjallStore, codec, keys};

/// One open queue.
pub(crate) struct Queue {
    policy: QueuePolicy,
    order: Mutex<MemQueue>,
    /// Rung when an entry may have become takeable.
    wake: Arc<Notify>,
}

impl Queue {
    fn order(&self) -> MutexGuard<'_, MemQueue> {
        // A panic while holding this lock would be a bug in MemQueue; the
        // data is still consistent enough to keep delivering, so don't
        // cascade it.
        self.order.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Hands entries just written to their queues (those that are open).
    pub(crate) fn push_all(&self, entries: Vec<QueueEntry>) {
        for e in entries {
            if let Ok(q) = self.queue(&e.destination)
                && q.order().push(e)
            {
                q.wake.notify_one();
            }
        }
    }

    pub(crate) fn is_in_flight(&self, dest: &str, id: Ulid) -> bool {
        self.queue(dest).is_ok_and(|q| q.order().is_in_flight(id))
    }

    fn dlq_ks(owner: DlqOwner<'_>) -> Ks {
        match owner {
            DlqOwner::Destination(_) => Ks::Dlq,
            DlqOwner::Topic(_) => Ks::TopicDlq,
        }
    }

    /// The ops that record one attempt and its consequence.
    fn settle_ops(ops: &mut Vec<Op>, s: &Settlement) {
        let (entry, attempt) = (&s.entry, &s.attempt);
        let id = entry.event_id;
        let dest = &entry.destination;
        let now = now_ms();
        let old_key = keys::queue_entry(entry);
        // A retry due at the same instant keeps its key: overwrite it
        // rather than delete and insert one key in one batch.
        if !matches!(&s.outcome, Settle::Retry { next } if keys::queue_entry(next) == old_key) {
            ops.push(Op::Del(Ks::Queue, old_key));
        }
        ops.push(Op::Put(
            Ks::Attempts,
            keys::attempt(id, dest, attempt.attempt),
            codec::to_json(attempt),
        ));
        let last_error = attempt
            .error
            .clone()
            .or_else(|| attempt.status.map(|s| format!("HTTP {s}")));
        let (status, last_error) = match &s.outcome {
            Settle::Delivered => (DeliveryStatus::Delivered, None),
            Settle::Retry { next } => {
                ops.push(Op::Put(
                    Ks::Queue,
                    keys::queue_entry(next),
                    codec::to_json(next),
                ));
                (DeliveryStatus::Pending, last_error)
            }
            Settle::DeadLetter { error } => {
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
            }),
        ));
    }

    /// Entries rewritten in place (a lease taken, extended or given back):
    /// each old key removed and the new version written, atomically.
    async fn move_entries(&self, moves: &[(QueueEntry, QueueEntry)]) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(moves.len() * 2);
        for (old, new) in moves {
            let (old_key, new_key) = (keys::queue_entry(old), keys::queue_entry(new));
            // Same key (same band, due time and id): one write overwrites it.
            if old_key != new_key {
                ops.push(Op::Del(Ks::Queue, old_key));
            }
            ops.push(Op::Put(Ks::Queue, new_key, codec::to_json(new)));
        }
        self.write(ops, false).await
    }
}

#[async_trait]
impl Queues for FjallStore {
    async fn open_queue(&self, dest: &str, policy: QueuePolicy) -> Result<(), StoreError> {
        let mut order = MemQueue::new(policy);
        let now = now_ms();
        for guard in self.ks.queue.prefix(keys::name_prefix(dest)) {
            let (_, v) = guard.into_inner().fj()?;
            let e: QueueEntry = codec::from_json("queue", &v)?;
            match e.lease {
                // A lease from before the restart still holds until it ends.
                Some(nonce) if e.due_ms > now => {
                    let lease = Lease {
                        nonce,
                        until_ms: e.due_ms,
                    };
                    order.insert_leased(e, lease);
                }
                _ => {
                    order.push(e);
                }
            }
        }
        // Keys held by dead letters survive a restart: hold them again.
        if policy.ordered && policy.hold_dead_letters {
            for guard in self.ks.dlq.prefix(keys::name_prefix(dest)) {
                let (_, v) = guard.into_inner().fj()?;
                let e: DlqEntry = codec::from_json("dlq", &v)?;
                if let Some(k) = &e.ordering_key {
                    order.block(k, e.event_id);
                }
            }
        }
        let queue = Arc::new(Queue {
            policy,
            order: Mutex::new(order),
            wake: Arc::new(Notify::new()),
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
        let now = now_ms();
        let mut taken = Vec::new();
        {
            let mut order = q.order();
            while taken.len() < max {
                let lease = match hold {
                    Hold::InFlight => None,
                    Hold::Lease { until_ms } => Some(Lease {
                        nonce: rand::random(),
                        until_ms,
                    }),
                };
                match order.take_due(now, lease) {
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
            let mut order = q.order();
            for (old, _) in moves {
                order.requeue(old);
            }
            q.wake.notify_one();
            return Err(err);
        }
        let mut order = q.order();
        Ok(moves
            .into_iter()
            .map(|(_, leased)| {
                let lease = Lease {
                    nonce: leased.lease.unwrap_or_default(),
                    until_ms: leased.due_ms,
                };
                order.set_lease(leased.event_id, lease, leased.clone());
                leased
            })
            .collect())
    }

    fn next_due(&self, dest: &str) -> Option<u64> {
        self.queue(dest).ok()?.order().next_due()
    }

    async fn settle(&self, settled: Vec<Settlement>) -> Result<(), StoreError> {
        if settled.is_empty() {
            return Ok(());
        }
        let mut ops = Vec::with_capacity(settled.len() * 4);
        for s in &settled {
            Self::settle_ops(&mut ops, s);
        }
        self.write(ops, false).await?;
        for s in settled {
            let Ok(q) = self.queue(&s.entry.destination) else {
                continue;
            };
            {
                let mut order = q.order();
                let id = s.entry.event_id;
                match s.outcome {
                    Settle::Delivered => {
                        order.finish(id);
                    }
                    Settle::Retry { next } => order.requeue(next),
                    Settle::DeadLetter { .. } if q.policy.hold_dead_letters => {
                        order.finish_blocking(id)
                    }
                    Settle::DeadLetter { .. } => {
                        order.finish(id);
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
        let moves: Vec<(QueueEntry, QueueEntry)> = entries
            .iter()
            .map(|e| {
                let back = QueueEntry {
                    due_ms,
                    delay_ms,
                    lease: None,
                    ..e.clone()
                };
                (e.clone(), back)
            })
            .collect();
        self.move_entries(&moves).await?;
        for (_, back) in moves {
            if let Ok(q) = self.queue(&back.destination) {
                q.order().requeue(back);
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
            .order()
            .set_lease(longer.event_id, lease, longer.clone());
        Ok(longer)
    }

    fn check_lease(&self, dest: &str, id: EventId, nonce: u64) -> LeaseCheck {
        let Ok(q) = self.queue(dest) else {
            return LeaseCheck::Unknown;
        };
        let order = q.order();
        match order.taken(id) {
            Some(t) if t.lease.is_some_and(|l| l.nonce == nonce) => {
                LeaseCheck::Current(t.entry.clone())
            }
            Some(_) => LeaseCheck::Superseded,
            None if order.contains(id) => LeaseCheck::Visible,
            None => LeaseCheck::Unknown,
        }
    }

    fn expire_leases(&self, dest: &str, now: u64) -> usize {
        let Ok(q) = self.queue(dest) else {
            return 0;
        };
        let n = {
            let mut order = q.order();
            let expired = order.expired_leases(now);
            let n = expired.len();
            // The store already has them due at the lease's end: a
            // memory-only move.
            for e in expired {
                order.requeue(QueueEntry { lease: None, ..e });
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
        let fresh: Vec<QueueEntry> = entries
            .into_iter()
            .filter(|e| !self.contains(&e.destination, e.event_id))
            .collect();
        let mut ops = Vec::new();
        for e in &fresh {
            ops.push(Op::Put(Ks::Queue, keys::queue_entry(e), codec::to_json(e)));
            ops.push(Op::Put(
                Ks::DState,
                keys::dstate(e.event_id, &e.destination),
                codec::to_json(&DeliveryState {
                    status: DeliveryStatus::Pending,
                    attempts: e.history_base,
                    updated_at_ms: now,
                    last_error: None,
                }),
            ));
            if from_dlq {
                ops.push(Op::Del(Ks::Dlq, keys::dlq(&e.destination, e.event_id)));
            }
        }
        self.write(ops, true).await?;
        let n = fresh.len();
        self.push_all(fresh);
        Ok(n)
    }

    fn contains(&self, dest: &str, id: EventId) -> bool {
        self.queue(dest).is_ok_and(|q| q.order().contains(id))
    }

    fn queue_stats(&self, dest: &str, now: u64) -> Result<QueueStats, StoreError> {
        let q = self.queue(dest)?;
        let order = q.order();
        Ok(QueueStats {
            depth: order.depth() as u64,
            in_flight: order.in_flight() as u64,
            delayed: order.delayed(now) as u64,
            oldest_enqueued_ms: order.oldest_enqueued_ms(),
            blocked_keys: order.blocked_keys(now) as u64,
        })
    }

    fn backlog(&self) -> u64 {
        self.queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|q| q.order().depth() as u64)
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
}

#[async_trait]
impl DeadLetters for FjallStore {
    async fn dlq_page(
        &self,
        owner: DlqOwner<'_>,
        cursor: Option<EventId>,
        limit: usize,
    ) -> Result<(Vec<DlqEntry>, Option<EventId>), StoreError> {
        let ks = self.ks.get(Self::dlq_ks(owner));
        let name = owner.name();
        let prefix = keys::name_prefix(name);
        let start = match cursor {
            Some(c) => keys::dlq(name, Ulid(c.0.wrapping_add(1))),
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for guard in ks.range(start..) {
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
            let mut order = q.order();
            for id in ids {
                order.unblock(*id);
            }
            drop(order);
            q.wake.notify_one();
        }
        Ok(())
    }
}
