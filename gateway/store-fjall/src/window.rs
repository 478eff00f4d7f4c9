//! One destination's queue with a bounded window in memory: the order of
//! `switchyard_store::order` (bands, aging, due times, FIFO keys, leases)
//! over a backlog that lives on disk.
//!
//! The `queue` keyspace holds every pending entry of a destination sorted
//! by (band = 9 - priority, due time, id): ten streams, one per band, each
//! in due order. What goes next is always the head of one of them: without
//! aging, the first band whose head is due; with aging, the due head of
//! least rank (due + band × aging), which within a band is again its head.
//! So the window only needs the front of each band: per band, the
//! schedulable entries up to a *frontier* key are in memory, everything
//! after it is on disk only, and the window reads on from the frontier
//! (never from the front, where deletes leave tombstones) as it drains.
//!
//! Invariants, per band:
//! - every schedulable stored entry whose key is at or before the frontier
//!   is in `loaded` (or the band is `complete`: nothing is left on disk);
//! - `loaded` is empty only when the band is complete;
//! - `loaded` holds at most `high` entries: past that, the tail is dropped
//!   from memory and the frontier moves back (it is still on disk).
//!
//! Entries in flight (a push attempt, a pull lease) are in `in_flight`, not
//! in a band; they are still stored, so a read from disk skips them.
//!
//! FIFO keys: only a key's head (its smallest pending id) may be scheduled,
//! and only while no event of the key is in flight and no dead letter holds
//! the key. The window keeps, for every key with a pending entry, one in
//! flight or a dead letter holding it, its head and those two facts; the
//! key's other entries are on disk only (the `qkeys` index finds the next
//! head), and a read from disk skips entries that are not a free key's head.
//!
//! Every disk read runs under the queue's lock, and every change is applied
//! here only after it was written: a read can therefore see an entry whose
//! change is written but not yet applied, which is why applying is
//! idempotent (a push of an entry already loaded or in flight changes
//! nothing).

use std::collections::{BTreeMap, HashMap};

use switchyard_store::order::{Lease, Policy, Taken};
use switchyard_store::{QueueEntry, StoreError};
use ulid::Ulid;

/// Where an entry sorts in its band: (due time, id).
type Pos = (u64, Ulid);

/// How many entries a band keeps in memory.
#[derive(Debug, Clone, Copy)]
pub struct WindowSize {
    /// Past this many loaded entries, the band drops its tail to `low`.
    pub high: usize,
    /// Under this many, the band reads on from disk; also what it keeps
    /// after dropping its tail.
    pub low: usize,
    /// Entries read from disk at a time.
    pub chunk: usize,
}

impl Default for WindowSize {
    fn default() -> Self {
        Self {
            high: 2048,
            low: 512,
            chunk: 512,
        }
    }
}

/// A FIFO key's head, as the `qkeys` index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub id: Ulid,
    pub band: u8,
    pub due_ms: u64,
}

/// What the window reads from the store, under its lock.
pub trait Source {
    /// Up to `limit` stored entries of `band` strictly after `after`, in
    /// key order.
    fn band_after(
        &self,
        band: u8,
        after: Option<Pos>,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, StoreError>;

    /// The stored entry of FIFO key `key` with the smallest id above
    /// `after`, if any.
    fn key_after(&self, key: &str, after: Ulid) -> Result<Option<Head>, StoreError>;

    /// The stored entry at (band, due, id).
    fn entry(&self, band: u8, due_ms: u64, id: Ulid) -> Result<Option<QueueEntry>, StoreError>;
}

#[derive(Debug, Default)]
struct Band {
    loaded: BTreeMap<Pos, QueueEntry>,
    /// The last position read from disk, or kept after dropping the tail.
    frontier: Option<Pos>,
    /// Nothing stored after `frontier` (as of the last read).
    complete: bool,
}

impl Band {
    /// Whether a stored entry at `pos` belongs in memory.
    fn covers(&self, pos: Pos) -> bool {
        self.complete || self.frontier.is_some_and(|f| pos <= f)
    }
}

#[derive(Debug, Default)]
struct KeyState {
    /// The smallest pending (stored, not in flight) id of the key.
    head: Option<Head>,
    /// The event of this key in flight.
    busy: Option<Ulid>,
    /// The dead letter that holds the key (`on_dead_letter = "block"`).
    held: Option<Ulid>,
}

impl KeyState {
    fn free(&self) -> bool {
        self.busy.is_none() && self.held.is_none()
    }

    fn idle(&self) -> bool {
        self.head.is_none() && self.busy.is_none() && self.held.is_none()
    }
}

/// One destination's queue: see the module's documentation.
pub struct Window {
    policy: Policy,
    size: WindowSize,
    bands: [Band; 10],
    in_flight: HashMap<Ulid, Taken>,
    keys: HashMap<String, KeyState>,
}

fn band_of(e: &QueueEntry) -> u8 {
    9 - e.priority.min(9)
}

fn pos_of(e: &QueueEntry) -> Pos {
    (e.due_ms, e.event_id)
}

impl Window {
    /// An empty window; `open` fills it.
    pub fn new(policy: Policy, size: WindowSize) -> Self {
        Self {
            policy,
            size,
            bands: Default::default(),
            in_flight: HashMap::new(),
            keys: HashMap::new(),
        }
    }

    fn key_of<'a>(&self, e: &'a QueueEntry) -> Option<&'a str> {
        if self.policy.ordered {
            e.ordering_key.as_deref()
        } else {
            None
        }
    }

    /// Whether a stored, pending entry may be scheduled now.
    fn schedulable(&self, e: &QueueEntry) -> bool {
        if self.in_flight.contains_key(&e.event_id) {
            return false;
        }
        match self.key_of(e) {
            None => true,
            Some(k) => self
                .keys
                .get(k)
                .is_some_and(|ks| ks.free() && ks.head.is_some_and(|h| h.id == e.event_id)),
        }
    }

    /// Puts a schedulable entry in its band if the band covers it.
    fn band_insert(&mut self, e: QueueEntry) {
        let b = band_of(&e) as usize;
        let pos = pos_of(&e);
        let band = &mut self.bands[b];
        if !band.covers(pos) {
            return;
        }
        band.loaded.insert(pos, e);
        if band.loaded.len() > self.size.high {
            while band.loaded.len() > self.size.low {
                band.loaded.pop_last();
            }
            band.frontier = band.loaded.last_key_value().map(|(p, _)| *p);
            band.complete = false;
        }
    }

    fn band_remove(&mut self, band: u8, pos: Pos) {
        self.bands[band as usize].loaded.remove(&pos);
    }

    /// Reads on from disk into band `b` while it is short and not complete.
    /// Keeps reading past entries that are not schedulable (FIFO entries
    /// behind their key's head) until the band has something or is done.
    fn refill(&mut self, b: usize, src: &dyn Source) -> Result<(), StoreError> {
        let mut rounds = 0;
        while !self.bands[b].complete && self.bands[b].loaded.len() < self.size.low {
            let after = self.bands[b].frontier;
            let chunk = src.band_after(b as u8, after, self.size.chunk)?;
            if chunk.len() < self.size.chunk {
                self.bands[b].complete = true;
            }
            if let Some(last) = chunk.last() {
                self.bands[b].frontier = Some(pos_of(last));
            }
            for e in chunk {
                if self.schedulable(&e) {
                    self.bands[b].loaded.insert(pos_of(&e), e);
                }
            }
            rounds += 1;
            // A long run of FIFO entries behind busy heads: stop once the
            // band has something, and read on at the next take.
            if rounds >= 8 && !self.bands[b].loaded.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Fills every short band (at open, and before choosing).
    fn refill_all(&mut self, src: &dyn Source) -> Result<(), StoreError> {
        for b in 0..10 {
            self.refill(b, src)?;
        }
        Ok(())
    }

    /// Sets a FIFO key's head, as found on disk at open.
    pub fn set_head(&mut self, key: &str, head: Head) {
        self.keys.entry(key.to_owned()).or_default().head = Some(head);
    }

    /// Reads the first entries of every band; call after `set_head`,
    /// `insert_leased` and `block` have restored the keys.
    pub fn open(&mut self, src: &dyn Source) -> Result<(), StoreError> {
        self.refill_all(src)
    }

    /// A newly stored pending entry (routed, requeued), or an entry back
    /// from flight with its new due time (`requeue`). Idempotent.
    pub fn push(&mut self, e: QueueEntry, src: &dyn Source) -> Result<(), StoreError> {
        if self.in_flight.contains_key(&e.event_id) {
            return Ok(());
        }
        if let Some(k) = self.key_of(&e).map(str::to_owned) {
            let head = Head {
                id: e.event_id,
                band: band_of(&e),
                due_ms: e.due_ms,
            };
            let ks = self.keys.entry(k).or_default();
            if ks.held == Some(e.event_id) {
                // The dead letter that held the key is back: it is the head again.
                ks.held = None;
            }
            let displaced = match ks.head {
                None => {
                    ks.head = Some(head);
                    None
                }
                Some(h) if e.event_id < h.id => {
                    ks.head = Some(head);
                    Some(h)
                }
                Some(h) if e.event_id == h.id => {
                    ks.head = Some(head);
                    (h != head).then_some(h)
                }
                Some(_) => None,
            };
            if let Some(h) = displaced {
                self.band_remove(h.band, (h.due_ms, h.id));
            }
        }
        let band = band_of(&e) as usize;
        if self.schedulable(&e) {
            self.band_insert(e);
        }
        self.refill(band, src)
    }

    /// Makes a FIFO key's head schedulable again (its key was freed).
    fn release_head(&mut self, key: &str, src: &dyn Source) -> Result<(), StoreError> {
        let Some(ks) = self.keys.get(key) else {
            return Ok(());
        };
        if !ks.free() {
            return Ok(());
        }
        let Some(h) = ks.head else {
            if ks.idle() {
                self.keys.remove(key);
            }
            return Ok(());
        };
        if self.bands[h.band as usize].covers((h.due_ms, h.id))
            && let Some(e) = src.entry(h.band, h.due_ms, h.id)?
        {
            self.band_insert(e);
        }
        Ok(())
    }

    /// Takes the next entry due at `now_ms`, marking it in flight (with a
    /// lease for pull consumers).
    pub fn take_due(
        &mut self,
        now_ms: u64,
        lease: Option<Lease>,
        src: &dyn Source,
    ) -> Result<Option<QueueEntry>, StoreError> {
        self.refill_all(src)?;
        let mut best: Option<(u64, Ulid, usize)> = None;
        for (b, band) in self.bands.iter().enumerate() {
            let Some((&(due, id), _)) = band.loaded.first_key_value() else {
                continue;
            };
            if due > now_ms {
                continue;
            }
            let rank = match self.policy.aging_ms {
                Some(aging) => due.saturating_add(b as u64 * aging),
                // Strict priority: the first due band wins.
                None => {
                    best = Some((0, id, b));
                    break;
                }
            };
            if best.is_none_or(|(r, i, _)| (rank, id) < (r, i)) {
                best = Some((rank, id, b));
            }
        }
        let Some((_, _, b)) = best else {
            return Ok(None);
        };
        let Some((_, e)) = self.bands[b].loaded.pop_first() else {
            return Ok(None);
        };
        if let Some(k) = self.key_of(&e).map(str::to_owned) {
            let next = src.key_after(&k, e.event_id)?;
            let ks = self.keys.entry(k).or_default();
            ks.busy = Some(e.event_id);
            ks.head = next;
        }
        self.in_flight.insert(
            e.event_id,
            Taken {
                entry: e.clone(),
                lease,
            },
        );
        self.refill(b, src)?;
        Ok(Some(e))
    }

    /// Ends an in-flight entry (delivered, acknowledged, dead-lettered) and
    /// lets its key move on.
    pub fn finish(&mut self, id: Ulid, src: &dyn Source) -> Result<Option<Taken>, StoreError> {
        let Some(t) = self.in_flight.remove(&id) else {
            return Ok(None);
        };
        if let Some(k) = self.key_of(&t.entry).map(str::to_owned) {
            if let Some(ks) = self.keys.get_mut(&k)
                && ks.busy == Some(id)
            {
                ks.busy = None;
            }
            self.release_head(&k, src)?;
        }
        Ok(Some(t))
    }

    /// Ends an in-flight entry that was dead-lettered, holding its key until
    /// [`Window::unblock`] (replay or purge of that dead letter).
    pub fn finish_blocking(&mut self, id: Ulid) {
        let Some(t) = self.in_flight.remove(&id) else {
            return;
        };
        if let Some(k) = self.key_of(&t.entry).map(str::to_owned) {
            let ks = self.keys.entry(k).or_default();
            if ks.busy == Some(id) {
                ks.busy = None;
            }
            ks.held = Some(id);
        }
    }

    /// Holds `key` for the dead letter `id` (restored at open).
    pub fn block(&mut self, key: &str, id: Ulid) {
        if !self.policy.ordered {
            return;
        }
        let ks = self.keys.entry(key.to_owned()).or_default();
        ks.held = Some(id);
        if let Some(h) = ks.head {
            self.band_remove(h.band, (h.due_ms, h.id));
        }
    }

    /// Releases a key held for the dead letter `id`, if any.
    pub fn unblock(&mut self, id: Ulid, src: &dyn Source) -> Result<(), StoreError> {
        let key = self
            .keys
            .iter()
            .find(|(_, ks)| ks.held == Some(id))
            .map(|(k, _)| k.clone());
        if let Some(k) = key {
            if let Some(ks) = self.keys.get_mut(&k) {
                ks.held = None;
            }
            self.release_head(&k, src)?;
        }
        Ok(())
    }

    /// Puts back an entry that was in flight (a retry, a nack, an expired
    /// lease) as `e`, typically with a new due time; `e` is stored already.
    pub fn requeue(&mut self, e: QueueEntry, src: &dyn Source) -> Result<(), StoreError> {
        if let Some(t) = self.in_flight.remove(&e.event_id)
            && let Some(k) = self.key_of(&t.entry)
            && let Some(ks) = self.keys.get_mut(k)
            && ks.busy == Some(e.event_id)
        {
            ks.busy = None;
        }
        self.push(e, src)
    }

    /// Takes a stored, pending entry out of the queue for cancellation,
    /// wherever it is (loaded in its band, its key's head, or on disk
    /// only): it becomes in flight, so nothing else takes it while its
    /// removal is written; [`Window::drop_taken`] then ends it (or
    /// [`Window::requeue`] gives it back if the write failed). A key whose
    /// head it was moves on to its next entry at once.
    pub fn take_out(&mut self, e: QueueEntry, src: &dyn Source) -> Result<(), StoreError> {
        if self.in_flight.contains_key(&e.event_id) {
            return Ok(());
        }
        let band = band_of(&e);
        self.band_remove(band, pos_of(&e));
        let key = self.key_of(&e).map(str::to_owned);
        if let Some(k) = &key {
            let next = src.key_after(k, e.event_id)?;
            let ks = self.keys.entry(k.clone()).or_default();
            if ks.head.is_some_and(|h| h.id == e.event_id) {
                ks.head = next;
            }
        }
        self.in_flight.insert(
            e.event_id,
            Taken {
                entry: e,
                lease: None,
            },
        );
        if let Some(k) = key {
            self.release_head(&k, src)?;
        }
        self.refill(band as usize, src)
    }

    /// Ends an in-flight entry whose stored entry was removed (cancelled):
    /// like [`Window::finish`], and if its key's head still names it (the
    /// entry was pushed back meanwhile), the head moves on.
    pub fn drop_taken(&mut self, id: Ulid, src: &dyn Source) -> Result<(), StoreError> {
        let Some(t) = self.in_flight.remove(&id) else {
            return Ok(());
        };
        if let Some(k) = self.key_of(&t.entry).map(str::to_owned) {
            let stale_head = self
                .keys
                .get(&k)
                .is_some_and(|ks| ks.head.is_some_and(|h| h.id == id));
            let next = if stale_head {
                src.key_after(&k, id)?
            } else {
                None
            };
            if let Some(ks) = self.keys.get_mut(&k) {
                if ks.busy == Some(id) {
                    ks.busy = None;
                }
                if stale_head {
                    ks.head = next;
                }
            }
            self.release_head(&k, src)?;
        }
        Ok(())
    }

    /// Restores an entry leased before a restart, still in flight.
    pub fn insert_leased(&mut self, e: QueueEntry, lease: Lease) {
        if let Some(k) = self.key_of(&e).map(str::to_owned) {
            self.keys.entry(k).or_default().busy = Some(e.event_id);
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

    /// Replaces the lease of an in-flight entry (extend).
    pub fn set_lease(&mut self, id: Ulid, lease: Lease, entry: QueueEntry) {
        if let Some(t) = self.in_flight.get_mut(&id) {
            t.lease = Some(lease);
            t.entry = entry;
        }
    }

    /// In-flight entries whose lease ended by `now_ms`.
    pub fn expired_leases(&self, now_ms: u64) -> Vec<QueueEntry> {
        self.in_flight
            .values()
            .filter(|t| t.lease.is_some_and(|l| l.until_ms <= now_ms))
            .map(|t| t.entry.clone())
            .collect()
    }

    /// When the earliest entry falls due (0 if one is due now), or `None`
    /// with nothing pending.
    pub fn next_due(&self, now_ms: u64) -> Option<u64> {
        let due = self
            .bands
            .iter()
            .filter_map(|b| b.loaded.first_key_value().map(|((due, _), _)| *due))
            .min()?;
        Some(if due <= now_ms { 0 } else { due })
    }

    pub fn is_in_flight(&self, id: Ulid) -> bool {
        self.in_flight.contains_key(&id)
    }

    /// Entries in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Entries in flight now, by band (9 - priority): what the stored count
    /// of each band holds beyond its pending entries.
    pub fn in_flight_by_band(&self) -> [u64; 10] {
        let mut out = [0u64; 10];
        for t in self.in_flight.values() {
            out[band_of(&t.entry) as usize] += 1;
        }
        out
    }

    /// In-flight entries whose stored due time is after `now_ms` (leases:
    /// they are stored at the lease's end).
    pub fn in_flight_due_after(&self, now_ms: u64) -> u64 {
        self.in_flight
            .values()
            .filter(|t| t.entry.due_ms > now_ms)
            .count() as u64
    }

    /// FIFO keys with pending events or a holding dead letter that cannot
    /// move: their head is in flight, backing off, or held.
    pub fn blocked_keys(&self, now_ms: u64) -> u64 {
        self.keys
            .values()
            .filter(|k| {
                (k.head.is_some() || k.held.is_some())
                    && (k.busy.is_some()
                        || k.held.is_some()
                        || k.head.is_some_and(|h| h.due_ms > now_ms))
            })
            .count() as u64
    }

    /// Entries loaded in memory.
    #[cfg(test)]
    pub fn loaded(&self) -> usize {
        self.bands.iter().map(|b| b.loaded.len()).sum()
    }

    /// Keys the window tracks.
    #[cfg(test)]
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The window must decide exactly what `MemQueue` (the whole queue in
    //! memory) decides, whatever it holds in memory: the same random
    //! operations go to both, over a tiny window, and every answer must
    //! match.

    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use switchyard_store::order::MemQueue;

    use super::*;

    /// What the store would hold: the queue keyspace and the FIFO index.
    #[derive(Default)]
    struct FakeDisk {
        queue: RefCell<BTreeMap<(u8, u64, Ulid), QueueEntry>>,
        keyed: RefCell<BTreeMap<(String, Ulid), (u8, u64)>>,
    }

    impl FakeDisk {
        fn put(&self, e: &QueueEntry) {
            self.queue
                .borrow_mut()
                .insert((band_of(e), e.due_ms, e.event_id), e.clone());
            if let Some(k) = &e.ordering_key {
                self.keyed
                    .borrow_mut()
                    .insert((k.clone(), e.event_id), (band_of(e), e.due_ms));
            }
        }

        fn del(&self, e: &QueueEntry) {
            self.queue
                .borrow_mut()
                .remove(&(band_of(e), e.due_ms, e.event_id));
            if let Some(k) = &e.ordering_key {
                self.keyed.borrow_mut().remove(&(k.clone(), e.event_id));
            }
        }

        fn len(&self) -> usize {
            self.queue.borrow().len()
        }
    }

    impl Source for FakeDisk {
        fn band_after(
            &self,
            band: u8,
            after: Option<Pos>,
            limit: usize,
        ) -> Result<Vec<QueueEntry>, StoreError> {
            let q = self.queue.borrow();
            Ok(
                q.range((band, 0, Ulid::nil())..=(band, u64::MAX, Ulid(u128::MAX)))
                    .filter(|((_, due, id), _)| after.is_none_or(|a| (*due, *id) > a))
                    .take(limit)
                    .map(|(_, e)| e.clone())
                    .collect(),
            )
        }

        fn key_after(&self, key: &str, after: Ulid) -> Result<Option<Head>, StoreError> {
            let k = self.keyed.borrow();
            Ok(k.range((key.to_owned(), Ulid(after.0.wrapping_add(1)))..)
                .next()
                .filter(|((name, _), _)| name == key)
                .map(|((_, id), (band, due))| Head {
                    id: *id,
                    band: *band,
                    due_ms: *due,
                }))
        }

        fn entry(&self, band: u8, due_ms: u64, id: Ulid) -> Result<Option<QueueEntry>, StoreError> {
            Ok(self.queue.borrow().get(&(band, due_ms, id)).cloned())
        }
    }

    fn entry(id: u128, priority: u8, due: u64, key: Option<&str>) -> QueueEntry {
        QueueEntry {
            event_id: Ulid(id),
            destination: "d".into(),
            priority,
            due_ms: due,
            attempt: 0,
            history_base: 0,
            delay_ms: 0,
            enqueued_at_ms: due,
            ordering_key: key.map(str::to_owned),
            lease: None,
        }
    }

    const TINY: WindowSize = WindowSize {
        high: 4,
        low: 2,
        chunk: 2,
    };

    /// Runs `steps` random operations on both queues under `policy`.
    fn same_decisions(policy: Policy, seed: u64, steps: usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let disk = FakeDisk::default();
        let mut mem = MemQueue::new(policy);
        let mut win = Window::new(policy, TINY);
        win.open(&disk).unwrap();
        let keys = ["a", "b", "c"];
        let mut now = 1_000u64;
        let mut next_id = 1u128;
        let mut in_flight: Vec<QueueEntry> = Vec::new();
        let mut held: Vec<Ulid> = Vec::new();
        // The point is a queue larger than its window: check it was.
        let mut paged = false;
        for step in 0..steps {
            let ctx = format!("seed {seed}, step {step}");
            match rng.random_range(0..100) {
                // A new entry, due now or a little later.
                0..=39 => {
                    let due = now
                        + if rng.random_bool(0.3) {
                            rng.random_range(1..50)
                        } else {
                            0
                        };
                    let key = if policy.ordered && rng.random_bool(0.7) {
                        Some(keys[rng.random_range(0..keys.len())])
                    } else {
                        None
                    };
                    let e = entry(next_id, rng.random_range(0..10), due, key);
                    next_id += 1;
                    disk.put(&e);
                    mem.push(e.clone());
                    win.push(e, &disk).unwrap();
                }
                // Take what is due.
                40..=64 => {
                    let a = mem.take_due(now, None).map(|e| e.event_id);
                    let b = win.take_due(now, None, &disk).unwrap().map(|e| e.event_id);
                    assert_eq!(a, b, "take at {now}: {ctx}");
                    if let Some(id) = a {
                        let e = win.taken(id).unwrap().entry.clone();
                        in_flight.push(e);
                    }
                }
                // Settle one in flight: delivered, retried later, or (FIFO
                // with holds) dead-lettered holding its key.
                65..=84 if !in_flight.is_empty() => {
                    let e = in_flight.swap_remove(rng.random_range(0..in_flight.len()));
                    match rng.random_range(0..3) {
                        0 => {
                            disk.del(&e);
                            mem.finish(e.event_id);
                            win.finish(e.event_id, &disk).unwrap();
                        }
                        1 => {
                            let next = QueueEntry {
                                due_ms: now + rng.random_range(1..40),
                                attempt: e.attempt + 1,
                                ..e.clone()
                            };
                            disk.del(&e);
                            disk.put(&next);
                            mem.requeue(next.clone());
                            win.requeue(next, &disk).unwrap();
                        }
                        _ if policy.hold_dead_letters => {
                            disk.del(&e);
                            mem.finish_blocking(e.event_id);
                            win.finish_blocking(e.event_id);
                            held.push(e.event_id);
                        }
                        _ => {
                            disk.del(&e);
                            mem.finish(e.event_id);
                            win.finish(e.event_id, &disk).unwrap();
                        }
                    }
                }
                // A held dead letter is purged.
                85..=89 if !held.is_empty() => {
                    let id = held.swap_remove(rng.random_range(0..held.len()));
                    mem.unblock(id);
                    win.unblock(id, &disk).unwrap();
                }
                // Time passes.
                _ => now += rng.random_range(1..20),
            }
            assert_eq!(
                mem.next_due().map(|d| if d <= now { 0 } else { d }),
                win.next_due(now).map(|d| if d <= now { 0 } else { d }),
                "next due: {ctx}"
            );
            assert_eq!(
                mem.blocked_keys(now) as u64,
                win.blocked_keys(now),
                "blocked keys: {ctx}"
            );
            assert_eq!(mem.depth(), disk.len() - win.in_flight(), "depth: {ctx}");
            assert!(win.loaded() <= 10 * TINY.high, "window bounded: {ctx}");
            paged |= mem.depth() > win.loaded() + 10;
        }
        assert!(paged, "seed {seed}: the queue never outgrew the window");
        // Drain: the rest comes out in the same order.
        now += 1_000_000;
        loop {
            let a = mem.take_due(now, None).map(|e| e.event_id);
            let b = win.take_due(now, None, &disk).unwrap().map(|e| e.event_id);
            assert_eq!(a, b, "drain, seed {seed}");
            let Some(id) = a else { break };
            let e = win.taken(id).unwrap().entry.clone();
            disk.del(&e);
            mem.finish(id);
            win.finish(id, &disk).unwrap();
        }
    }

    #[test]
    fn strict_priority_decides_as_the_whole_queue_does() {
        for seed in 0..30 {
            same_decisions(Policy::default(), seed, 600);
        }
    }

    #[test]
    fn priority_aging_decides_as_the_whole_queue_does() {
        let policy = Policy {
            aging_ms: Some(7),
            ..Policy::default()
        };
        for seed in 0..30 {
            same_decisions(policy, seed, 600);
        }
    }

    #[test]
    fn fifo_keys_decide_as_the_whole_queue_does() {
        let policy = Policy {
            ordered: true,
            ..Policy::default()
        };
        for seed in 0..30 {
            same_decisions(policy, seed, 600);
        }
    }

    #[test]
    fn fifo_keys_held_by_dead_letters_decide_as_the_whole_queue_does() {
        let policy = Policy {
            ordered: true,
            hold_dead_letters: true,
            aging_ms: Some(5),
        };
        for seed in 0..30 {
            same_decisions(policy, seed, 600);
        }
    }

    #[test]
    fn a_backlog_larger_than_the_window_drains_in_order_from_disk() {
        // 200 entries on disk before the window opens (a restart), in a
        // window of 4 per band: every one comes out, most urgent first,
        // then by due time and id.
        let disk = FakeDisk::default();
        let mut all: Vec<QueueEntry> = (1..=200u128)
            .map(|i| entry(i, (i % 10) as u8, 1_000 + (i as u64 * 7) % 13, None))
            .collect();
        for e in &all {
            disk.put(e);
        }
        let mut win = Window::new(Policy::default(), TINY);
        win.open(&disk).unwrap();
        assert!(win.loaded() <= 10 * TINY.high);
        all.sort_by_key(|e| (9 - e.priority, e.due_ms, e.event_id));
        for want in &all {
            let got = win.take_due(10_000, None, &disk).unwrap().unwrap();
            assert_eq!(got.event_id, want.event_id);
            disk.del(&got);
            win.finish(got.event_id, &disk).unwrap();
            assert!(win.loaded() <= 10 * TINY.high);
        }
        assert!(win.take_due(10_000, None, &disk).unwrap().is_none());
    }

    #[test]
    fn fifo_heads_on_disk_come_back_in_key_order() {
        // Key "a" has 50 entries, all on disk; the window holds at most a
        // few. Each is delivered only after the one before it finished.
        let policy = Policy {
            ordered: true,
            ..Policy::default()
        };
        let disk = FakeDisk::default();
        for i in 1..=50u128 {
            disk.put(&entry(i, (i % 3) as u8 + 4, 1_000, Some("a")));
        }
        let mut win = Window::new(policy, TINY);
        // As open does: the key's head from the index.
        win.set_head("a", disk.key_after("a", Ulid::nil()).unwrap().unwrap());
        win.open(&disk).unwrap();
        for i in 1..=50u128 {
            let got = win.take_due(2_000, None, &disk).unwrap().unwrap();
            assert_eq!(got.event_id, Ulid(i));
            assert!(
                win.take_due(2_000, None, &disk).unwrap().is_none(),
                "one at a time"
            );
            disk.del(&got);
            win.finish(got.event_id, &disk).unwrap();
        }
        assert_eq!(
            win.tracked_keys(),
            0,
            "a key with nothing left is forgotten"
        );
    }

    #[test]
    fn cancelled_entries_leave_the_window_and_their_keys_move_on() {
        // Key "a": 1 (head), 2, 3; key "b": 4; unkeyed 5 and 6, in a tiny
        // window. Cancel the head of "a", an entry behind a head (2 is
        // never loaded) and an unkeyed one: the rest drain in order, and
        // nothing cancelled comes out.
        let policy = Policy {
            ordered: true,
            ..Policy::default()
        };
        let disk = FakeDisk::default();
        let all = [
            entry(1, 5, 1_000, Some("a")),
            entry(2, 5, 1_000, Some("a")),
            entry(3, 5, 1_000, Some("a")),
            entry(4, 5, 1_000, Some("b")),
            entry(5, 5, 1_000, None),
            entry(6, 5, 1_000, None),
        ];
        for e in &all {
            disk.put(e);
        }
        let mut win = Window::new(policy, TINY);
        win.set_head("a", disk.key_after("a", Ulid::nil()).unwrap().unwrap());
        win.set_head("b", disk.key_after("b", Ulid::nil()).unwrap().unwrap());
        win.open(&disk).unwrap();
        // As the store does it: taken out, deleted from disk, dropped.
        for i in [1usize, 2, 5] {
            let e = all[i - 1].clone();
            win.take_out(e.clone(), &disk).unwrap();
            assert!(win.is_in_flight(e.event_id));
            disk.del(&e);
            win.drop_taken(e.event_id, &disk).unwrap();
            assert!(!win.is_in_flight(e.event_id));
        }
        let mut got = Vec::new();
        while let Some(e) = win.take_due(2_000, None, &disk).unwrap() {
            got.push(e.event_id.0);
            disk.del(&e);
            win.finish(e.event_id, &disk).unwrap();
        }
        assert_eq!(got, vec![3, 4, 6]);
        assert_eq!(disk.len(), 0);
        assert_eq!(win.tracked_keys(), 0);
    }
}
