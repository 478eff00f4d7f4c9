//! Queue order: which of a destination's entries goes next. Every backend
//! keeps its queues in this order; the fjall backend holds a [`MemQueue`]
//! per destination as the index of its queue keyspace.
//!
//! The store holds every entry durably; this index mirrors it so picking the
//! next entry is a B-tree lookup instead of a scan over the store's keys
//! (which, after millions of deletes, would wade through tombstones). It is
//! rebuilt from the store when the queue is opened.
//!
//! Two sets: `waiting` holds entries not yet due, by due time; `ready` holds
//! due entries in delivery order. Without aging the order is (band = 9 -
//! priority, due time, id): most urgent first. With aging, an entry's rank is
//! its due time minus `priority × aging`: a priority-9 entry goes as if it
//! had arrived 9 aging periods earlier, so urgent work goes first under a
//! backlog, yet a low-priority entry that has waited long enough overtakes
//! newer urgent ones and nothing starves.
//!
//! Ordering keys (FIFO per key): only the head of each key — its oldest
//! pending event, by id, which is ingest order — is ever scheduled, and only
//! while no other event of that key is in flight. A failing head therefore
//! blocks its own key and no other.

use std::collections::{BTreeSet, HashMap};

use ulid::Ulid;

use crate::QueueEntry;

/// (band, rank, id): the order of `ready`.
type Slot = (u8, u64, Ulid);

/// How a queue orders entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Milliseconds of waiting worth one priority level; `None`: strict priority.
    pub aging_ms: Option<u64>,
    /// Deliver events with the same ordering key one at a time, in order.
    pub ordered: bool,
    /// With `ordered`: a dead-lettered head holds its key until that dead
    /// letter is replayed or purged (`on_dead_letter = "block"`).
    pub hold_dead_letters: bool,
}

/// An entry handed out and not yet settled.
#[derive(Debug, Clone)]
pub struct Taken {
    pub entry: QueueEntry,
    /// For pull consumers: the lease's nonce and when it ends.
    pub lease: Option<Lease>,
}

/// A pull consumer's hold on an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub nonce: u64,
    pub until_ms: u64,
}

#[derive(Default)]
struct KeyState {
    /// Pending events of this key, oldest first.
    pending: BTreeSet<Ulid>,
    /// The id currently scheduled (in `waiting` or `ready`), if any.
    scheduled: Option<Ulid>,
    /// An event of this key is in flight.
    busy: bool,
    /// The key's head was dead-lettered and the destination holds the key
    /// until that event is replayed or purged.
    blocked_by: Option<Ulid>,
}

/// Pending and in-flight entries of one destination.
#[derive(Default)]
pub struct MemQueue {
    policy: Policy,
    waiting: BTreeSet<(u64, Ulid)>,
    ready: BTreeSet<Slot>,
    pending: HashMap<Ulid, QueueEntry>,
    in_flight: HashMap<Ulid, Taken>,
    keys: HashMap<String, KeyState>,
}

impl MemQueue {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            ..Default::default()
        }
    }

    fn slot(&self, e: &QueueEntry) -> Slot {
        let p = e.priority.min(9);
        match self.policy.aging_ms {
            // due + (9 - p) × aging: the same order as due - p × aging,
            // without going below zero.
            Some(aging) => (
                0,
                e.due_ms.saturating_add(u64::from(9 - p) * aging),
                e.event_id,
            ),
            None => (9 - p, e.due_ms, e.event_id),
        }
    }

    fn key_of(&self, e: &QueueEntry) -> Option<String> {
        if self.policy.ordered {
            e.ordering_key.clone()
        } else {
            None
        }
    }

    fn schedule(&mut self, id: Ulid) {
        if let Some(e) = self.pending.get(&id) {
            self.waiting.insert((e.due_ms, id));
        }
    }

    fn unschedule(&mut self, id: Ulid) {
        if let Some(e) = self.pending.get(&id) {
            let slot = self.slot(e);
            self.waiting.remove(&(e.due_ms, id));
            self.ready.remove(&slot);
        }
    }

    /// Schedules the head of `key` if the key is free and its head is not
    /// already scheduled.
    fn schedule_head(&mut self, key: &str) {
        let Some(ks) = self.keys.get(key) else {
            return;
        };
        if ks.busy || ks.blocked_by.is_some() {
            return;
        }
        let head = ks.pending.first().copied();
        let current = ks.scheduled;
        if head == current {
            return;
        }
        if let Some(c) = current {
            self.unschedule(c);
        }
        if let Some(h) = head {
            self.schedule(h);
        }
        if let Some(ks) = self.keys.get_mut(key) {
            ks.scheduled = head;
        }
        if self
            .keys
            .get(key)
            .is_some_and(|k| k.pending.is_empty() && !k.busy && k.blocked_by.is_none())
        {
            self.keys.remove(key);
        }
    }

    /// Adds an entry. An event already pending or in flight here is not added
    /// twice: at most one delivery of an event per destination is in play.
    pub fn push(&mut self, e: QueueEntry) -> bool {
        if self.pending.contains_key(&e.event_id) || self.in_flight.contains_key(&e.event_id) {
            return false;
        }
        let id = e.event_id;
        let key = self.key_of(&e);
        if let Some(k) = &key
            && let Some(ks) = self.keys.get_mut(k)
            && ks.blocked_by == Some(id)
        {
            // The dead letter that held the key is back: it is the head again.
            ks.blocked_by = None;
        }
        self.pending.insert(id, e);
        match key {
            Some(k) => {
                self.keys.entry(k.clone()).or_default().pending.insert(id);
                self.schedule_head(&k);
            }
            None => self.schedule(id),
        }
        true
    }

    /// Moves due entries from `waiting` to `ready`.
    fn promote(&mut self, now_ms: u64) {
        while let Some(&(due, id)) = self.waiting.first() {
            if due > now_ms {
                break;
            }
            self.waiting.pop_first();
            if let Some(e) = self.pending.get(&id) {
                let slot = self.slot(e);
                self.ready.insert(slot);
            }
        }
    }

    /// Takes the next entry due at `now_ms`, marking it in flight (with a
    /// lease for pull consumers).
    pub fn take_due(&mut self, now_ms: u64, lease: Option<Lease>) -> Option<QueueEntry> {
        self.promote(now_ms);
        let (_, _, id) = self.ready.pop_first()?;
        let e = self.pending.remove(&id)?;
        if let Some(k) = self.key_of(&e)
            && let Some(ks) = self.keys.get_mut(&k)
        {
            ks.pending.remove(&id);
            ks.scheduled = None;
            ks.busy = true;
        }
        self.in_flight.insert(
            id,
            Taken {
                entry: e.clone(),
                lease,
            },
        );
        Some(e)
    }

    /// Ends an in-flight entry (delivered, acknowledged, dead-lettered) and
    /// lets its key move on.
    pub fn finish(&mut self, id: Ulid) -> Option<Taken> {
        let t = self.in_flight.remove(&id)?;
        if let Some(k) = self.key_of(&t.entry) {
            if let Some(ks) = self.keys.get_mut(&k) {
                ks.busy = false;
            }
            self.schedule_head(&k);
        }
        Some(t)
    }

    /// Ends an in-flight entry that was dead-lettered, holding its key until
    /// [`MemQueue::unblock`] (replay or purge of that dead letter).
    pub fn finish_blocking(&mut self, id: Ulid) {
        let Some(t) = self.in_flight.remove(&id) else {
            return;
        };
        if let Some(k) = self.key_of(&t.entry) {
            let ks = self.keys.entry(k).or_default();
            ks.busy = false;
            ks.blocked_by = Some(id);
        }
    }

    /// Holds `key` for the dead letter `id` (restored at start).
    pub fn block(&mut self, key: &str, id: Ulid) {
        if !self.policy.ordered {
            return;
        }
        let ks = self.keys.entry(key.to_owned()).or_default();
        ks.blocked_by = Some(id);
        if let Some(c) = ks.scheduled.take() {
            self.unschedule(c);
        }
    }

    /// Releases a key held for the dead letter `id`, if any.
    pub fn unblock(&mut self, id: Ulid) {
        let key = self
            .keys
            .iter()
            .find(|(_, ks)| ks.blocked_by == Some(id))
            .map(|(k, _)| k.clone());
        if let Some(k) = key {
            if let Some(ks) = self.keys.get_mut(&k) {
                ks.blocked_by = None;
            }
            self.schedule_head(&k);
        }
    }

    /// Puts back an entry that was in flight (a retry, a nack, an expired
    /// lease) as `e`, typically with a new due time.
    pub fn requeue(&mut self, e: QueueEntry) {
        if let Some(t) = self.in_flight.remove(&e.event_id)
            && let Some(k) = self.key_of(&t.entry)
            && let Some(ks) = self.keys.get_mut(&k)
        {
            ks.busy = false;
        }
        self.push(e);
    }

    /// Restores an entry leased before a restart, still in flight.
    pub fn insert_leased(&mut self, e: QueueEntry, lease: Lease) {
        if self.contains(e.event_id) {
            return;
        }
        if let Some(k) = self.key_of(&e) {
            self.keys.entry(k).or_default().busy = true;
        }
        self.in_flight.insert(
            e.event_id,
            Taken {
                entry: e,
                lease: Some(lease),
            },
        );
    }

    /// The in-flight entry for `id`, if any.
    pub fn taken(&self, id: Ulid) -> Option<&Taken> {
        self.in_flight.get(&id)
    }

    /// Replaces the lease of an in-flight entry (extend), returning the entry.
    pub fn set_lease(&mut self, id: Ulid, lease: Lease, entry: QueueEntry) {
        if let Some(t) = self.in_flight.get_mut(&id) {
            t.lease = Some(lease);
            t.entry = entry;
        }
    }

    /// In-flight entries whose lease ended before `now_ms`.
    pub fn expired_leases(&self, now_ms: u64) -> Vec<QueueEntry> {
        self.in_flight
            .values()
            .filter(|t| t.lease.is_some_and(|l| l.until_ms <= now_ms))
            .map(|t| t.entry.clone())
            .collect()
    }

    /// When the earliest scheduled entry falls due (now, if one is ready).
    pub fn next_due(&self) -> Option<u64> {
        if !self.ready.is_empty() {
            return Some(0);
        }
        self.waiting.first().map(|&(due, _)| due)
    }

    /// Removes a pending entry.
    pub fn remove(&mut self, id: Ulid) -> Option<QueueEntry> {
        self.unschedule(id);
        let e = self.pending.remove(&id)?;
        if let Some(k) = self.key_of(&e) {
            if let Some(ks) = self.keys.get_mut(&k) {
                ks.pending.remove(&id);
                if ks.scheduled == Some(id) {
                    ks.scheduled = None;
                }
            }
            self.schedule_head(&k);
        }
        Some(e)
    }

    pub fn contains(&self, id: Ulid) -> bool {
        self.pending.contains_key(&id) || self.in_flight.contains_key(&id)
    }

    pub fn is_in_flight(&self, id: Ulid) -> bool {
        self.in_flight.contains_key(&id)
    }

    /// Pending entries (visible and delayed).
    pub fn depth(&self) -> usize {
        self.pending.len()
    }

    /// Pending entries not yet due at `now_ms` (delayed, or backing off).
    pub fn delayed(&self, now_ms: u64) -> usize {
        self.pending.values().filter(|e| e.due_ms > now_ms).count()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Ordering keys that have pending events but cannot move (their head
    /// is in flight or backing off).
    pub fn blocked_keys(&self, now_ms: u64) -> usize {
        self.keys
            .values()
            .filter(|k| {
                (!k.pending.is_empty() || k.blocked_by.is_some())
                    && (k.busy
                        || k.blocked_by.is_some()
                        || k.scheduled
                            .and_then(|id| self.pending.get(&id))
                            .is_some_and(|e| e.due_ms > now_ms))
            })
            .count()
    }

    /// Enqueue time of the longest-waiting pending entry.
    pub fn oldest_enqueued_ms(&self) -> Option<u64> {
        self.pending.values().map(|e| e.enqueued_at_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u128, priority: u8, due: u64) -> QueueEntry {
        QueueEntry {
            event_id: Ulid(id),
            destination: "d".into(),
            priority,
            due_ms: due,
            attempt: 0,
            history_base: 0,
            delay_ms: 0,
            enqueued_at_ms: due,
            ordering_key: None,
            lease: None,
        }
    }

    fn keyed(id: u128, key: &str, due: u64) -> QueueEntry {
        QueueEntry {
            ordering_key: Some(key.into()),
            ..entry(id, 5, due)
        }
    }

    fn take(q: &mut MemQueue, now: u64) -> Option<u128> {
        q.take_due(now, None).map(|e| e.event_id.0)
    }

    #[test]
    fn urgent_first_then_due_time() {
        let mut q = MemQueue::default();
        q.push(entry(1, 5, 10));
        q.push(entry(2, 9, 20));
        q.push(entry(3, 5, 5));
        assert_eq!(take(&mut q, 100), Some(2));
        assert_eq!(take(&mut q, 100), Some(3));
        assert_eq!(take(&mut q, 100), Some(1));
        assert!(take(&mut q, 100).is_none());
    }

    #[test]
    fn a_future_urgent_entry_does_not_block_a_due_one() {
        let mut q = MemQueue::default();
        q.push(entry(1, 9, 1000));
        q.push(entry(2, 0, 10));
        assert_eq!(take(&mut q, 100), Some(2));
        assert!(take(&mut q, 100).is_none());
        assert_eq!(q.next_due(), Some(1000));
    }

    #[test]
    fn no_duplicates_while_pending_or_in_flight() {
        let mut q = MemQueue::default();
        assert!(q.push(entry(1, 5, 0)));
        assert!(!q.push(entry(1, 5, 0)));
        let e = q.take_due(1, None).expect("due");
        assert!(!q.push(entry(1, 5, 0)));
        q.finish(e.event_id);
        assert!(q.push(entry(1, 5, 0)));
    }

    #[test]
    fn aging_lets_old_low_priority_entries_overtake() {
        let mut q = MemQueue::new(Policy {
            aging_ms: Some(1000),
            ..Policy::default()
        });
        // Priority 0 waiting since t=0; priority 9 arriving at t=5000 and t=20000.
        q.push(entry(1, 0, 0));
        q.push(entry(2, 9, 5_000));
        q.push(entry(3, 9, 20_000));
        // At t=20000: 2 ranks -4000, 1 ranks 0, 3 ranks 11000.
        assert_eq!(take(&mut q, 20_000), Some(2));
        assert_eq!(take(&mut q, 20_000), Some(1));
        assert_eq!(take(&mut q, 20_000), Some(3));
    }

    #[test]
    fn without_aging_priority_is_strict() {
        let mut q = MemQueue::default();
        q.push(entry(1, 0, 0));
        q.push(entry(2, 9, 1_000_000));
        assert_eq!(take(&mut q, 1_000_000), Some(2));
    }

    #[test]
    fn ordering_keys_go_one_at_a_time_in_id_order() {
        let mut q = MemQueue::new(Policy {
            aging_ms: None,
            ordered: true,
            ..Policy::default()
        });
        q.push(keyed(2, "a", 0));
        q.push(keyed(1, "a", 0));
        q.push(keyed(3, "b", 0));
        // Heads: a -> 1, b -> 3.
        let first = take(&mut q, 10);
        let second = take(&mut q, 10);
        let mut got = vec![first, second];
        got.sort();
        assert_eq!(got, vec![Some(1), Some(3)]);
        // Key a is busy with 1: 2 must wait.
        assert!(take(&mut q, 10).is_none());
        assert_eq!(q.blocked_keys(10), 1);
        // 1 fails and is retried later: it stays the head, key a stays blocked.
        let mut retry = keyed(1, "a", 500);
        retry.attempt = 1;
        q.requeue(retry);
        assert!(take(&mut q, 10).is_none());
        assert_eq!(take(&mut q, 500), Some(1));
        q.finish(Ulid(1));
        assert_eq!(take(&mut q, 500), Some(2));
    }

    #[test]
    fn a_blocking_dead_letter_holds_its_key_until_replayed_or_purged() {
        let mut q = MemQueue::new(Policy {
            aging_ms: None,
            ordered: true,
            ..Policy::default()
        });
        q.push(keyed(1, "a", 0));
        q.push(keyed(2, "a", 0));
        assert_eq!(take(&mut q, 10), Some(1));
        q.finish_blocking(Ulid(1));
        assert!(take(&mut q, 10).is_none(), "key a is held");
        assert_eq!(q.blocked_keys(10), 1);
        // Replay: 1 comes back as the head, then 2 follows.
        q.push(keyed(1, "a", 20));
        assert_eq!(take(&mut q, 20), Some(1));
        q.finish_blocking(Ulid(1));
        // Purge instead: the key moves on.
        q.unblock(Ulid(1));
        assert_eq!(take(&mut q, 20), Some(2));
    }

    #[test]
    fn leases_expire() {
        let mut q = MemQueue::default();
        q.push(entry(1, 5, 0));
        let lease = Lease {
            nonce: 7,
            until_ms: 100,
        };
        let e = q.take_due(1, Some(lease)).expect("due");
        assert!(q.expired_leases(99).is_empty());
        assert_eq!(q.expired_leases(100), vec![e]);
    }
}
