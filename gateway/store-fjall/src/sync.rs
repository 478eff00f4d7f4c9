//! The second half of the group commit: making committed groups durable.
//!
//! The writer applies each group with `PersistMode::Buffer`, so its bytes
//! are in the OS (kill -9 loses nothing) and in the memtables, then hands
//! the group to this thread and goes on gathering the next one. This
//! thread takes every group waiting, makes them durable with one
//! `fdatasync` of fjall's active journal, and only then answers their
//! requests, in commit order. The journal write of group N+1 so overlaps
//! the fsync of group N, where the writer used to hold fjall's journal
//! lock across both.
//!
//! The fsync is done on a handle of our own to the journal file, so it
//! never takes the journal lock: fjall (3.1) names journals `<n>.jnl` in
//! the database directory, and a rotation fsyncs the old file (`SyncAll`)
//! before it creates `<n+1>.jnl`. Before each fsync the syncer moves on to
//! `<n+1>.jnl` for as long as it exists, so it always syncs the file the
//! last group was written to, and every older file was synced by its
//! rotation.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchyard_store::{Appended, StoreError};

use crate::writer::{Request, WriterStats};

/// A commit (write to durable) slower than this is logged: it shows
/// directly in ingest latency.
pub(crate) const SLOW_COMMIT: Duration = Duration::from_millis(20);

/// A group the writer has applied (`PersistMode::Buffer`), waiting to be
/// made durable and answered.
pub(crate) struct Committed {
    /// Every request of the group with the outcome it gets once durable.
    pub answers: Vec<(Request, Result<Appended, StoreError>)>,
    /// The commit's own error: every request is answered with it.
    pub failed: Option<String>,
    /// Whether the group needs an fsync before it is answered.
    pub sync: bool,
    /// When the writer began committing it.
    pub started: Instant,
}

/// fjall's active journal file, followed across rotations.
pub(crate) struct Journal {
    dir: PathBuf,
    id: u64,
    file: File,
}

impl Journal {
    /// Opens the newest `<n>.jnl` in fjall's database directory.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let newest = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| journal_id(&e.file_name().to_string_lossy()))
            .max()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no fjall journal (<n>.jnl) in {}", dir.display()),
                )
            })?;
        let file = File::open(dir.join(format!("{newest}.jnl")))?;
        Ok(Self {
            dir: dir.to_owned(),
            id: newest,
            file,
        })
    }

    /// The path of the journal the next [`Journal::sync`] syncs.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.jnl", self.id))
    }

    /// Makes everything written to the journal so far durable.
    pub fn sync(&mut self) -> std::io::Result<()> {
        loop {
            let next = self.dir.join(format!("{}.jnl", self.id + 1));
            match File::open(&next) {
                Ok(f) => {
                    self.file = f;
                    self.id += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(e),
            }
        }
        self.file.sync_data()
    }
}

fn journal_id(name: &str) -> Option<u64> {
    name.strip_suffix(".jnl")?.parse().ok()
}

pub(crate) struct Syncer {
    pub db: fjall::Database,
    /// `None` when fjall's journal could not be found: then the syncer
    /// falls back to `persist`, which takes the journal lock.
    pub journal: Option<Journal>,
    pub stats: Arc<WriterStats>,
    /// The first fsync failure. After a failed fsync the kernel may have
    /// dropped the dirty pages, so a later fsync that succeeds proves
    /// nothing: every later group that needs one is refused.
    pub broken: Option<String>,
}

impl Syncer {
    pub fn new(db: fjall::Database, dir: &Path, stats: Arc<WriterStats>) -> Self {
        let journal = match Journal::open(dir) {
            Ok(j) => Some(j),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "The store's journal file was not found; group commits fsync through fjall instead, which is slower."
                );
                None
            }
        };
        Self {
            db,
            journal,
            stats,
            broken: None,
        }
    }

    pub fn run(mut self, rx: mpsc::Receiver<Committed>) {
        while let Ok(first) = rx.recv() {
            let mut groups = vec![first];
            while let Ok(g) = rx.try_recv() {
                groups.push(g);
            }
            let needed = groups.iter().any(|g| g.sync && g.failed.is_none());
            let refused = if needed { self.sync() } else { None };
            let durable = Instant::now();
            for g in groups {
                let refused = if g.sync { refused.clone() } else { None };
                self.answer(g, durable, refused);
            }
        }
    }

    /// fsyncs the journal; the reason to refuse the groups if it failed.
    fn sync(&mut self) -> Option<String> {
        if let Some(broken) = &self.broken {
            return Some(broken.clone());
        }
        let (result, path) = match &mut self.journal {
            Some(j) => {
                let r = j.sync();
                (r.map_err(|e| e.to_string()), j.path())
            }
            None => (
                self.db
                    .persist(fjall::PersistMode::SyncData)
                    .map_err(|e| e.to_string()),
                PathBuf::from("the store's journal"),
            ),
        };
        let e = result.err()?;
        let reason = format!(
            "fsync of {} failed ({e}): writes since the last good fsync may not be on disk; \
             check the disk and restart the gateway, which recovers from what is on disk",
            path.display()
        );
        tracing::error!(error = %reason, "The store cannot make writes durable; every later write that needs an fsync is refused.");
        self.broken = Some(reason.clone());
        Some(reason)
    }

    fn answer(&self, g: Committed, durable: Instant, refused: Option<String>) {
        let elapsed = durable.duration_since(g.started);
        use std::sync::atomic::Ordering::Relaxed;
        self.stats
            .persist_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
        self.stats.commit_seconds.observe(elapsed.as_secs_f64());
        if elapsed > SLOW_COMMIT {
            tracing::warn!(
                elapsed_ms = elapsed.as_millis() as u64,
                requests = g.answers.len(),
                "Slow group commit: the disk or fjall stalled."
            );
        }
        let failed = g.failed.or(refused);
        for (req, outcome) in g.answers {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_journal_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("notes.txt"), b"x").expect("write a file");
        let Err(e) = Journal::open(dir.path()) else {
            panic!("found a journal in a directory with none");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains(".jnl"), "{e}");
    }

    #[test]
    fn journal_ids_are_parsed_from_names() {
        assert_eq!(journal_id("0.jnl"), Some(0));
        assert_eq!(journal_id("17.jnl"), Some(17));
        assert_eq!(journal_id("17.jnl.tmp"), None);
        assert_eq!(journal_id("x.jnl"), None);
        assert_eq!(journal_id("lock"), None);
    }

    /// The syncer's handle follows fjall's rotations: after a journal
    /// rotation, the file it syncs is the one the newest write went to.
    #[test]
    fn syncs_the_file_fjall_writes_to_across_rotations() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = fjall::Database::builder(dir.path())
            .max_journaling_size(512 * 1024 * 1024)
            .open()
            .expect("open fjall");
        let ks = db
            .keyspace("t", fjall::KeyspaceCreateOptions::default)
            .expect("open a keyspace");
        let mut journal = Journal::open(dir.path()).expect("find the journal");
        let first = journal.id;
        ks.insert("before", "1").expect("insert");
        db.persist(fjall::PersistMode::Buffer)
            .expect("flush to the OS");
        journal.sync().expect("fsync");
        assert_eq!(journal.id, first);

        // fjall rotates a journal past 64 MB when it next flushes a memtable.
        // Values that do not compress, in case the journal is compressed.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..70u32 {
            let value: Vec<u8> = (0..1024 * 1024)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            ks.insert(i.to_be_bytes(), value).expect("insert");
        }
        ks.rotate_memtable_and_wait().expect("flush the memtable");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.path().join(format!("{}.jnl", first + 1)).exists() {
            assert!(
                Instant::now() < deadline,
                "fjall did not rotate its journal"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        ks.insert("after-rotation", "2").expect("insert");
        db.persist(fjall::PersistMode::Buffer)
            .expect("flush to the OS");
        journal.sync().expect("fsync");
        assert!(journal.id > first, "still syncing {}.jnl", journal.id);
        let bytes = std::fs::read(journal.path()).expect("read the journal");
        assert!(
            bytes.windows(14).any(|w| w == b"after-rotation"),
            "the synced file {} does not hold the newest write",
            journal.path().display()
        );
    }
}
