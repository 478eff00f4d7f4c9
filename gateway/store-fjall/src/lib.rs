//! The embedded store: every trait of `switchyard-store` on fjall, one
//! machine, one data directory. No other crate names fjall.
//!
//! - `keys`: every key layout; `codec`: value encodings.
//! - `writer`: the group commit, one thread that owns every write (and the
//!   queue counters); `prefill`: the journal zeroed ahead of its commits.
//! - `log`: the event log, routing, history and housekeeping.
//! - `window`: one destination's queue order with a bounded window in
//!   memory over its backlog on disk.
//! - `queues`: destination queues over the windows, and the DLQs.
//! - `upgrade`: bringing data dirs of older store formats up to date.
//! - `schemas`: the schema registry's tables.
//! - `export`: the whole store read out for another backend (`switchyard
//!   migrate`).
//!
//! Keyspaces:
//! - `events`: id -> the event (header JSON + raw payload).
//! - `pending_route`: id -> topic, for every event not yet routed. Written in
//!   the same batch as the event; removed in the same batch as its queue
//!   entries. Recovery after a crash is a scan of this keyspace.
//! - `transformed`: id -> a plugin's rewritten body and headers.
//! - `queue`: destination/band/due/id -> `QueueEntry`: every pending entry,
//!   each destination's in delivery order within a band. The window reads
//!   it on from where it last stopped, never from the front, so the
//!   tombstones deletes leave there cost nothing.
//! - `qkeys`, `qage`, `leases`, `qstat`: the queue's indexes and counters
//!   (see `queues`).
//! - `dstate`: id/destination -> `DeliveryState`; `attempts`: the history.
//! - `dlq`, `topic_dlq`: owner/id -> `DlqEntry`.
//! - `idem`, `idem_expiry`: idempotency keys, and the same ordered by age for
//!   expiry without a full scan.
//! - `meta`: paused flags and the store format version.
//! - `registry_*`: the schema registry (see `schemas`).

mod codec;
mod export;
mod keys;
mod log;
mod prefill;
mod queues;
mod schemas;
mod upgrade;
mod window;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use fjall::config::PinningPolicy;
use serde::Deserialize;
use switchyard_store::{RegistrySnapshot, RegistryWrite, SchemaStore, StoreError};
use tokio::sync::oneshot;

pub use window::WindowSize;
pub use writer::WriterStats;
use writer::{Counters, Delta, Ks, Op, Request};

/// The store format this build writes. A change of any key layout or
/// value encoding bumps it, with an upgrade of older directories in `open`
/// (`upgrade.rs`):
/// - 1: the first layout (and every data directory written before versions
///   were recorded);
/// - 2: adds the queue's indexes and counters (`qkeys`, `qage`, `leases`,
///   `qstat`), so a queue need not be read whole at open;
/// - 3: adds the stored entries of each priority band to `qstat`
///   (`keys::band_counter`), for the depth by priority.
pub const FORMAT_VERSION: u32 = 3;

/// How hard a write is pushed to disk before it is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync through the group commit (survives power loss).
    #[default]
    Sync,
    /// Written to the OS before answering (survives a process crash).
    Buffered,
}

/// fjall's errors as the store's, at every call site (`.fj()?`): the
/// store's error type may not name fjall, and a `From` would have to live
/// in the trait crate.
pub(crate) trait Fj<T> {
    fn fj(self) -> Result<T, StoreError>;
}

impl<T> Fj<T> for Result<T, fjall::Error> {
    fn fj(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend(Box::new(e)))
    }
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
    qkeys: fjall::Keyspace,
    qage: fjall::Keyspace,
    leases: fjall::Keyspace,
    qstat: fjall::Keyspace,
}

/// Largest memtable of a keyspace (fjall's default is 64 MiB). Every
/// keyspace that takes writes at ingest rate holds one active memtable and
/// up to a few sealed ones being flushed: at 64 MiB, five busy keyspaces
/// alone took over 400 MiB. fjall records the size when it creates a
/// keyspace, so data dirs created before this setting keep the default.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

/// Most journal the store keeps before it flushes memtables (fjall's
/// default is 512 MiB, its minimum 64 MiB). Opening after a crash replays
/// the journal into memtables, at about 30 MiB/s on the reference machine:
/// this bounds that time.
const JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Block cache for reads (fjall's default). Filter and index blocks go
/// through it too, rather than being pinned in memory for the first levels
/// (fjall's default): after a fill faster than compaction, level 0 holds
/// many tables, and their pinned blocks grew the RSS with the backlog.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// fjall's background threads (flushes and compactions). One, not one per
/// core: with two, fjall 3.1's worker 0 hands every compaction message back
/// to the queue for worker 1, and while worker 1 is busy it does so in a
/// loop, spinning a core (12% of the gateway's CPU under load in a profile,
/// `fjall::worker_pool::worker_tick` and `flume::Shared::send`). One worker
/// costs 7-9% less CPU per event and no group commit went over 25 ms in a
/// 60 s run at 5,000 events/s (BENCHMARKS.md, "The write path's tail").
const WORKERS: usize = 1;

impl Keyspaces {
    fn open(db: &fjall::Database) -> Result<Self, StoreError> {
        let open = |name: &str| {
            db.keyspace(name, || {
                fjall::KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .filter_block_pinning_policy(PinningPolicy::disabled())
                    .index_block_pinning_policy(PinningPolicy::disabled())
            })
            .fj()
        };
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
            qkeys: open("qkeys")?,
            qage: open("qage")?,
            leases: open("leases")?,
            qstat: open("qstat")?,
        })
    }

    /// Every keyspace, for flushing them all.
    fn all(&self) -> [&fjall::Keyspace; 15] {
        [
            &self.events,
            &self.pending_route,
            &self.transformed,
            &self.queue,
            &self.dstate,
            &self.attempts,
            &self.dlq,
            &self.topic_dlq,
            &self.idem,
            &self.idem_expiry,
            &self.meta,
            &self.qkeys,
            &self.qage,
            &self.leases,
            &self.qstat,
        ]
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
            Ks::QKeys => &self.qkeys,
            Ks::QAge => &self.qage,
            Ks::Leases => &self.leases,
            Ks::QStat => &self.qstat,
        }
    }
}

/// The open store. Share it as `Arc<FjallStore>` (or as the traits).
pub struct FjallStore {
    db: fjall::Database,
    ks: Keyspaces,
    /// The writer's channel; `None` only while the store is being dropped.
    tx: Option<std::sync::mpsc::Sender<Request>>,
    /// Joined on drop, so the data dir's lock is released when `drop` returns.
    writer: Option<std::thread::JoinHandle<()>>,
    stats: Arc<WriterStats>,
    registry: schemas::RegistryTables,
    /// The open queues, by destination.
    queues: RwLock<HashMap<String, Arc<queues::Queue>>>,
    /// Stored entries per destination, by due second (the writer's).
    counters: Counters,
    /// Per destination, an enqueue time at or before the oldest stored
    /// entry's: where the look for the oldest starts, past the tombstones.
    age_low_water: std::sync::Mutex<HashMap<String, u64>>,
    /// How much of each queue is kept in memory.
    window_size: WindowSize,
    /// `switchyard.lock`, locked while the store is open: a second process
    /// on the same dir is told which pid holds it (fjall's own lock only
    /// says "Locked"). Dropped last, after the writer has stopped.
    _lock: std::fs::File,
}

/// The lock file in the data dir, and the pid written in it.
const LOCK_FILE: &str = "switchyard.lock";

/// Locks `dir` for this process, writing its pid into the lock file; says
/// which process holds it if another one does.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    use std::io::{Read, Seek, Write};
    let io = |e: std::io::Error| {
        StoreError::Backend(format!("cannot lock {}: {e}", dir.join(LOCK_FILE).display()).into())
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::Locked {
                dir: dir.display().to_string(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

impl FjallStore {
    /// Opens (or creates) the store under `dir`, checks its format version
    /// (upgrading an older directory in place), and starts its writer thread.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        Self::open_with(dir, durability, WindowSize::default())
    }

    /// [`FjallStore::open`] with queue windows of `window_size` (tests use
    /// tiny ones, so a small backlog is larger than the window).
    pub fn open_with(
        dir: &Path,
        durability: Durability,
        window_size: WindowSize,
    ) -> Result<Self, StoreError> {
        let lock = lock_dir(dir)?;
        let db = fjall::Database::builder(dir)
            .worker_threads(WORKERS)
            .max_journaling_size(JOURNAL_BYTES)
            .cache_size(CACHE_BYTES)
            .open()
            .fj()?;
        let ks = Keyspaces::open(&db)?;
        let found = read_format(dir, &ks)?;
        if found < FORMAT_VERSION {
            upgrade::run(&db, &ks, found)?;
        }
        let counters = Counters::default();
        *counters.lock().unwrap_or_else(|p| p.into_inner()) = upgrade::load_counters(&ks)?;
        let journal_lock = prefill::JournalLock::default();
        let registry = schemas::RegistryTables::open(&db, journal_lock.clone())?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stats = Arc::new(WriterStats::default());
        let writer = writer::Writer {
            db: db.clone(),
            ks: ks.clone(),
            durability,
            rx,
            stats: stats.clone(),
            counters: counters.clone(),
            prefill: (durability == Durability::Sync)
                .then(|| prefill::Prefill::new(dir, journal_lock)),
        };
        let writer = std::thread::Builder::new()
            .name("switchyard-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::WriteFailed(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            db,
            ks,
            tx: Some(tx),
            writer: Some(writer),
            stats,
            registry,
            queues: RwLock::default(),
            counters,
            age_low_water: std::sync::Mutex::default(),
            window_size,
            _lock: lock,
        })
    }

    /// Group-commit statistics.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Writes `ops` in one atomic batch through the group commit; `sync`
    /// fsyncs before answering whatever the configured durability.
    async fn write(&self, ops: Vec<Op>, sync: bool) -> Result<(), StoreError> {
        self.write_counted(ops, Vec::new(), sync).await
    }

    /// [`FjallStore::write`], with the queue counter changes the ops make.
    async fn write_counted(
        &self,
        ops: Vec<Op>,
        deltas: Vec<Delta>,
        sync: bool,
    ) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.send(Request::Write {
            ops,
            deltas,
            sync,
            reply,
        })?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Stored entries of `dest` (pending and in flight).
    fn stored(&self, dest: &str) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(dest)
            .map_or(0, |c| c.count)
    }

    /// Stored entries of `dest` (pending and in flight) by band
    /// (9 - priority), from the counters the writer keeps.
    fn stored_by_band(&self, dest: &str) -> [u64; 10] {
        let all = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = [0u64; 10];
        for (band, n) in out.iter_mut().enumerate() {
            *n = all
                .get(&keys::band_counter(dest, band as u8))
                .map_or(0, |c| c.count);
        }
        out
    }

    /// Stored entries of `dest`, and how many of them fall due after
    /// `now`: the counters give whole seconds after this one, and this
    /// second's entries are read (at most one second's worth).
    fn counted(&self, dest: &str, now: u64) -> Result<(u64, u64), StoreError> {
        let this_second = now / 1000;
        let (stored, later, in_this_second) = {
            let all = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            let Some(c) = all.get(dest) else {
                return Ok((0, 0));
            };
            let later: u64 = c.due.range(this_second + 1..).map(|(_, n)| n).sum();
            (
                c.count,
                later,
                c.due.get(&this_second).copied().unwrap_or(0),
            )
        };
        let mut after_now = 0u64;
        if in_this_second > 0 {
            let end = (this_second + 1) * 1000;
            for band in 0..10u8 {
                let from = keys::queue_at(dest, band, now + 1, ulid::Ulid::nil());
                let to = keys::queue_at(dest, band, end, ulid::Ulid::nil());
                for guard in self.ks.queue.range(from..to) {
                    guard.key().fj()?;
                    after_now += 1;
                }
            }
        }
        Ok((stored, later + after_now))
    }

    fn age_low_water(&self, dest: &str) -> u64 {
        self.age_low_water
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(dest)
            .copied()
            .unwrap_or(0)
    }

    fn set_age_low_water(&self, dest: &str, ms: u64) {
        self.age_low_water
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dest.to_owned(), ms);
    }

    /// Queues a request for the writer.
    fn send(&self, req: Request) -> Result<(), StoreError> {
        self.tx
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(req)
            .map_err(|_| StoreError::WriterGone)
    }
}

impl Drop for FjallStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer after a last sync; waiting for
        // it means the data dir's lock is free once `drop` returns, so the
        // directory can be opened again at once (a restart in one process).
        self.tx = None;
        if let Some(w) = self.writer.take()
            && w.join().is_err()
        {
            tracing::error!("The store's writer thread panicked.");
        }
    }
}

/// Reads the format version. A directory without one is format 1: new, or
/// written before versions were recorded (upgrading an empty directory is
/// instant). A newer version than this build knows is refused: reading it
/// with the old layout could corrupt it.
fn read_format(dir: &Path, ks: &Keyspaces) -> Result<u32, StoreError> {
    let found = match ks.meta.get(keys::FORMAT).fj()? {
        Some(v) => {
            let bytes: [u8; 4] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                keyspace: "meta",
                message: format!("the format version is {} bytes, not 4", v.len()),
            })?;
            u32::from_be_bytes(bytes)
        }
        None => 1,
    };
    if found > FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            dir: PathBuf::from(dir).display().to_string(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(found)
}

impl SchemaStore for FjallStore {
    fn load_schemas(&self) -> Result<RegistrySnapshot, StoreError> {
        self.registry.load()
    }

    fn write_schemas(&self, writes: &[RegistryWrite]) -> Result<(), StoreError> {
        self.registry.write(writes)
    }
}
