//! A destination's queue in memory: the order of what to deliver next.
//!
//! The store holds every entry durably; this index mirrors it so picking the
//! next entry is a B-tree lookup instead of a scan over the store's keys
//! (which, after millions of deletes, would wade through tombstones). It is
//! rebuilt from the store at start.
//!
//! Order: band (most urgent priority first), then due time, then id. An entry
//! is taken only once due; a not-yet-due urgent entry does not block a due
//! entry of a lower band.

use std::collections::{BTreeSet, HashMap, HashSet};

use ulid::Ulid;

use crate::store::QueueEntry;

type Slot = (u8, u64, Ulid);

fn slot(e: &QueueEntry) -> Slot {
    (9u8.saturating_sub(e.priority.min(9)), e.due_ms, e.event_id)
}

/// Pending and in-flight entries of one destination.
#[derive(Default)]
pub struct MemQueue {
    order: BTreeSet<Slot>,
    pending: HashMap<Ulid, QueueEntry>,
    in_flight: HashSet<Ulid>,
}

impl MemQueue {
    /// Adds an entry. An event already pending or in flight here is not added
    /// twice: at most one delivery of an event per destination is in play.
    pub fn push(&mut self, e: QueueEntry) -> bool {
        if self.pending.contains_key(&e.event_id) || self.in_flight.contains(&e.event_id) {
            return false;
        }
        self.order.insert(slot(&e));
        self.pending.insert(e.event_id, e);
        true
    }

    /// Puts back an entry that was in flight (a retry, or a pause).
    pub fn requeue(&mut self, e: QueueEntry) {
        self.in_flight.remove(&e.event_id);
        self.push(e);
    }

    /// Ends an in-flight entry.
    pub fn finish(&mut self, id: Ulid) {
        self.in_flight.remove(&id);
    }

    /// Takes the most urgent entry due at `now_ms`, marking it in flight.
    pub fn take_due(&mut self, now_ms: u64) -> Option<QueueEntry> {
        let mut found = None;
        for band in 0..=9u8 {
            if let Some(s) = self.order.range((band, 0, Ulid::nil())..).next()
                && s.0 == band && s.1 <= now_ms {
                    found = Some(*s);
                    break;
                }
        }
        let s = found?;
        self.order.remove(&s);
        let e = self.pending.remove(&s.2)?;
        self.in_flight.insert(e.event_id);
        Some(e)
    }

    /// When the earliest pending entry falls due.
    pub fn next_due(&self) -> Option<u64> {
        (0..=9u8)
            .filter_map(|band| {
                self.order
                    .range((band, 0, Ulid::nil())..)
                    .next()
                    .filter(|s| s.0 == band)
                    .map(|s| s.1)
            })
            .min()
    }

    /// Removes a pending entry (purge, or a redelivery that replaces it).
    pub fn remove(&mut self, id: Ulid) -> Option<QueueEntry> {
        let e = self.pending.remove(&id)?;
        self.order.remove(&slot(&e));
        Some(e)
    }

    pub fn contains(&self, id: Ulid) -> bool {
        self.pending.contains_key(&id) || self.in_flight.contains(&id)
    }

    pub fn is_in_flight(&self, id: Ulid) -> bool {
        self.in_flight.contains(&id)
    }

    pub fn depth(&self) -> usize {
        self.pending.len()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
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
        }
    }

    #[test]
    fn urgent_first_then_due_time() {
        let mut q = MemQueue::default();
        q.push(entry(1, 5, 10));
        q.push(entry(2, 9, 20));
        q.push(entry(3, 5, 5));
        assert_eq!(q.take_due(100).map(|e| e.event_id.0), Some(2));
        assert_eq!(q.take_due(100).map(|e| e.event_id.0), Some(3));
        assert_eq!(q.take_due(100).map(|e| e.event_id.0), Some(1));
        assert!(q.take_due(100).is_none());
    }

    #[test]
    fn a_future_urgent_entry_does_not_block_a_due_one() {
        let mut q = MemQueue::default();
        q.push(entry(1, 9, 1000));
        q.push(entry(2, 0, 10));
        assert_eq!(q.take_due(100).map(|e| e.event_id.0), Some(2));
        assert!(q.take_due(100).is_none());
        assert_eq!(q.next_due(), Some(1000));
    }

    #[test]
    fn no_duplicates_while_pending_or_in_flight() {
        let mut q = MemQueue::default();
        assert!(q.push(entry(1, 5, 0)));
        assert!(!q.push(entry(1, 5, 0)));
        let e = q.take_due(1).expect("due");
        assert!(!q.push(entry(1, 5, 0)));
        q.finish(e.event_id);
        assert!(q.push(entry(1, 5, 0)));
    }
}
