//! The embedded store: every trait of `switchyard-store` on fjall, one
//! machine, one data directory. No other crate names fjall.
//!
//! - `keys`: every key layout; `codec`: value encodings.
//! - `writer`: the group commit, one thread that owns every write.
//! - `log`: the event log, routing, history and housekeeping.
//! - `queues`: destination queues (the in-memory order over the `queue`
//!   keyspace) and the DLQs.
//! - `schemas`: the schema registry's tables.
//!
//! Keyspaces:
//! - `events`: id -> the event (header JSON + raw payload).
//! - `pending_route`: id -> topic, for every event not yet routed. Written in
//!   the same batch as the event; removed in the same batch as its queue
//!   entries. Recovery after a crash is a scan of this keyspace.
//! - `transformed`: id -> a plugin's rewritten body and headers.
//! - `queue`: destination/band/due/id -> `QueueEntry`. Read when a queue is
//!   opened to build its in-memory order; afterwards only written, never
//!   scanned, so millions of tombstones cost nothing on the hot path.
//! - `dstate`: id/destination -> `DeliveryState`; `attempts`: the history.
//! - `dlq`, `topic_dlq`: owner/id -> `DlqEntry`.
//! - `idem`, `idem_expiry`: idempotency keys, and the same ordered by age for
//!   expiry without a full scan.
//! - `meta`: paused flags and the store format version.
//! - `registry_*`: the schema registry (see `schemas`).

mod codec;
mod keys;
mod log;
mod queues;
mod schemas;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use switchyard_store::{RegistrySnapshot, RegistryWrite, SchemaStore, StoreError};
use tokio::sync::oneshot;

pub use writer::WriterStats;
use writer::{Ks, Op, Request};

/// The store format this build writes. Version 1 is the layout described
/// above (and every data directory written before versions were recorded).
/// A change of any key layout or value encoding bumps it, with an upgrade
/// of older directories in `open`.
pub const FORMAT_VERSION: u32 = 1;

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
}

impl Keyspaces {
    fn open(db: &fjall::Database) -> Result<Self, StoreError> {
        let open = |name: &str| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
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
}

impl FjallStore {
    /// Opens (or creates) the store under `dir`, checks (or records) its
    /// format version, and starts its writer thread.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        let db = fjall::Database::builder(dir).open().fj()?;
        let ks = Keyspaces::open(&db)?;
        check_format(dir, &db, &ks)?;
        let registry = schemas::RegistryTables::open(&db)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stats = Arc::new(WriterStats::default());
        let writer = writer::Writer {
            db: db.clone(),
            ks: ks.clone(),
            durability,
            rx,
            stats: stats.clone(),
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
        })
    }

    /// Group-commit statistics.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Writes `ops` in one atomic batch through the group commit; `sync`
    /// fsyncs before answering whatever the configured durability.
    async fn write(&self, ops: Vec<Op>, sync: bool) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.send(Request::Write { ops, sync, reply })?;
        rx.await.map_err(|_| StoreError::WriterGone)?
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

/// Reads the format version, recording it in a directory that has none
/// (new, or written before versions were recorded: both are version 1).
/// A newer version than this build knows is refused: reading it with the
/// old layout could corrupt it.
fn check_format(dir: &Path, db: &fjall::Database, ks: &Keyspaces) -> Result<(), StoreError> {
    let found = match ks.meta.get(keys::FORMAT).fj()? {
        Some(v) => {
            let bytes: [u8; 4] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                keyspace: "meta",
                message: format!("the format version is {} bytes, not 4", v.len()),
            })?;
            u32::from_be_bytes(bytes)
        }
        None => {
            ks.meta
                .insert(keys::FORMAT, FORMAT_VERSION.to_be_bytes())
                .fj()?;
            db.persist(fjall::PersistMode::SyncAll).fj()?;
            FORMAT_VERSION
        }
    };
    if found > FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            dir: PathBuf::from(dir).display().to_string(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

impl SchemaStore for FjallStore {
    fn load_schemas(&self) -> Result<RegistrySnapshot, StoreError> {
        self.registry.load()
    }

    fn write_schemas(&self, writes: &[RegistryWrite]) -> Result<(), StoreError> {
        self.registry.write(writes)
    }
}
