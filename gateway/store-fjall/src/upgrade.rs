//! Bringing a data directory of an older store format up to this build's,
//! in place, at open, before the writer starts.
//!
//! A step only adds keys derived from what is stored, and records the new
//! version in its last batch: a crash part-way leaves the old version
//! recorded, and the next open runs the step again from the start
//! (re-adding the same keys changes nothing).

use std::collections::HashMap;

use switchyard_store::{QueueEntry, StoreError};

use crate::writer::Counts;
use crate::{FORMAT_VERSION, Fj, Keyspaces, codec, keys};

/// Entries per batch while deriving indexes: bounds the memory an upgrade
/// of a large queue takes.
const BATCH: usize = 10_000;

/// Runs every step from format `from` to [`FORMAT_VERSION`].
pub(crate) fn run(db: &fjall::Database, ks: &Keyspaces, from: u32) -> Result<(), StoreError> {
    if from < 2 {
        to_2(db, ks)?;
    }
    if from < 3 {
        to_3(db, ks)?;
    }
    debug_assert_eq!(FORMAT_VERSION, 3, "a new format needs its step here");
    Ok(())
}

/// Format 2: the queue's indexes (`qkeys`, `qage`, `leases`) and counters
/// (`qstat`), derived from the `queue` keyspace.
fn to_2(db: &fjall::Database, ks: &Keyspaces) -> Result<(), StoreError> {
    let mut counts: HashMap<String, Counts> = HashMap::new();
    let mut batch = db.batch();
    let mut n = 0usize;
    for guard in ks.queue.iter() {
        let (_, v) = guard.into_inner().fj()?;
        let e: QueueEntry = codec::from_json("queue", &v)?;
        batch.insert(
            &ks.qage,
            keys::age(&e.destination, e.enqueued_at_ms, e.event_id),
            Vec::<u8>::new(),
        );
        if let Some(k) = &e.ordering_key {
            batch.insert(
                &ks.qkeys,
                keys::fifo(&e.destination, k, e.event_id),
                keys::fifo_value(9 - e.priority.min(9), e.due_ms),
            );
        }
        if e.lease.is_some() {
            batch.insert(
                &ks.leases,
                keys::lease(&e.destination, e.event_id),
                codec::to_json(&e),
            );
        }
        let c = counts.entry(e.destination.clone()).or_default();
        c.count += 1;
        *c.due.entry(e.due_ms / 1000).or_default() += 1;
        n += 1;
        if n.is_multiple_of(BATCH) {
            batch.commit().fj()?;
            batch = db.batch();
        }
    }
    // The counters whole, with the version, in the last batch.
    for (dest, c) in &counts {
        batch.insert(&ks.qstat, keys::stat_count(dest), c.count.to_be_bytes());
        for (second, k) in &c.due {
            batch.insert(&ks.qstat, keys::stat_due(dest, *second), k.to_be_bytes());
        }
    }
    batch.insert(&ks.meta, keys::FORMAT, 2u32.to_be_bytes());
    batch.commit().fj()?;
    db.persist(fjall::PersistMode::SyncAll).fj()?;
    if n > 0 {
        tracing::info!(
            entries = n,
            "Upgraded the store to format 2: the queue's indexes and counters are built."
        );
    }
    Ok(())
}

/// Format 3: the stored entries of each priority band (`qstat` under
/// `keys::band_counter`), counted once from the `queue` keyspace. The
/// counters are written whole, with the version, in one batch: a crash
/// before it leaves format 2, and the count runs again.
fn to_3(db: &fjall::Database, ks: &Keyspaces) -> Result<(), StoreError> {
    let mut bands: HashMap<String, u64> = HashMap::new();
    let mut n = 0usize;
    for guard in ks.queue.iter() {
        let (_, v) = guard.into_inner().fj()?;
        let e: QueueEntry = codec::from_json("queue", &v)?;
        *bands
            .entry(keys::band_counter(&e.destination, 9 - e.priority.min(9)))
            .or_default() += 1;
        n += 1;
    }
    let mut batch = db.batch();
    for (name, c) in &bands {
        batch.insert(&ks.qstat, keys::stat_count(name), c.to_be_bytes());
    }
    batch.insert(&ks.meta, keys::FORMAT, 3u32.to_be_bytes());
    batch.commit().fj()?;
    db.persist(fjall::PersistMode::SyncAll).fj()?;
    if n > 0 {
        tracing::info!(
            entries = n,
            "Upgraded the store to format 3: the queue counters by priority band are built."
        );
    }
    Ok(())
}

/// Every destination's queue counters, as stored (a band's counter is
/// under its `keys::band_counter` name).
pub(crate) fn load_counters(ks: &Keyspaces) -> Result<HashMap<String, Counts>, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        keyspace: "qstat",
        message,
    };
    let mut out: HashMap<String, Counts> = HashMap::new();
    for guard in ks.qstat.iter() {
        let (k, v) = guard.into_inner().fj()?;
        let value = u64::from_be_bytes(
            v.as_ref()
                .try_into()
                .map_err(|_| corrupt(format!("a value of {} bytes, not 8", v.len())))?,
        );
        let sep = k
            .iter()
            .position(|b| *b == keys::SEP)
            .ok_or_else(|| corrupt("a key without a destination".into()))?;
        let dest = String::from_utf8_lossy(&k[..sep]).into_owned();
        let rest = &k[sep + 1..];
        let c = out.entry(dest).or_default();
        match rest.split_first() {
            Some((b'c', [])) => c.count = value,
            Some((b'h', second)) if second.len() == 8 => {
                let s = u64::from_be_bytes(second.try_into().unwrap_or_default());
                c.due.insert(s, value);
            }
            _ => return Err(corrupt(format!("an unknown key {k:?}"))),
        }
    }
    Ok(out)
}
