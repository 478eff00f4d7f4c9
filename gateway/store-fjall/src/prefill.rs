//! Journal prefill: the next stretch of fjall's active journal is written
//! as zeros before any group commit writes events there.
//!
//! Why: fjall makes each journal file 64 MiB long with `set_len`, which
//! leaves a hole. Every group commit then writes into blocks the file
//! system has not allocated yet, so each commit's `fdatasync` writes the
//! allocation (extent and bitmap blocks) as well as the data: two device
//! writes instead of one. Measured on the reference machine
//! (BENCHMARKS.md, "Journal prefill"): a 17 KB write and `fdatasync` into
//! a hole took 1.3 to 2.8 times the system CPU and time of the same write
//! over blocks already written. With the stretch ahead already written, a
//! commit's sync writes only its own data, and the allocation is paid once
//! per [`CHUNK`] instead of once per commit.
//!
//! Why it is safe: zeros are only ever written where fjall has not written
//! yet, so every byte fjall wrote stays as it was.
//!
//! - Only the store's own writes reach the journal. The group commit runs
//!   on the writer thread, which is also the thread that prefills, between
//!   commits; the registry's writes (the only others) hold the same
//!   [`JournalLock`] as a prefill. fjall's worker writes no journal bytes:
//!   it rotates (a new file) and syncs.
//! - fjall writes each journal from its start, in order. Before zeroing
//!   at `zeroed_to`, the prefill checks that the file has a hole there
//!   (`SEEK_HOLE`): a hole means fjall's bytes all lie before it. If fjall
//!   got there first (a group bigger than the stretch ahead), the prefill
//!   starts again after fjall's data.
//! - Zeros go only below the length the file had when the prefill opened
//!   it, never past it, so it never lengthens a journal. A journal reopened
//!   after a restart is appended to (`O_APPEND`) and ends at its data, so
//!   nothing of it is ever zeroed.
//! - Zeros read the same as the hole they replace, so a crash before, while
//!   or after they reach the disk leaves the journal fjall would have left:
//!   recovery ends each journal where its entries end.
//!
//! Only with `durability = "sync"`: without a sync per commit there is no
//! allocation to save. On file systems that report no holes, or off Linux,
//! nothing is prefilled and the journal is fjall's, as before.

use std::sync::{Arc, Mutex, MutexGuard};

/// How much of the journal is zeroed at a time. The next commit's sync
/// writes it out with its own data, so it is also what one commit in every
/// `CHUNK` of journal carries extra.
pub(crate) const CHUNK: u64 = 1024 * 1024;

/// Held by every journal write that is not the writer thread's group
/// commit, and by a prefill while it zeroes.
#[derive(Clone, Default)]
pub(crate) struct JournalLock(Arc<Mutex<()>>);

impl JournalLock {
    pub(crate) fn hold(&self) -> MutexGuard<'_, ()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::Prefill;

#[cfg(not(target_os = "linux"))]
pub(crate) use other::Prefill;

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};

    use super::{CHUNK, JournalLock};

    /// A static page of zeros, written as many times as a chunk needs.
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

    /// The active journal as the prefill sees it.
    struct Active {
        id: u64,
        file: File,
        /// Its length when opened: zeros never go at or past it.
        len: u64,
        /// Everything before this is fjall's data or zeros written here.
        zeroed_to: u64,
        /// An estimate of where fjall's data ends: the bytes committed
        /// since the file was opened, counted a little high.
        written_to: u64,
        /// When `written_to` passes this, look for a newer journal.
        next_look: u64,
    }

    pub(crate) struct Prefill {
        dir: PathBuf,
        lock: JournalLock,
        /// The data dir's modification time last seen: it changes when
        /// fjall creates a journal there (or removes one). Read with a
        /// `stat`, so the writer takes none of fjall's locks for it.
        dir_modified: Option<std::time::SystemTime>,
        active: Option<Active>,
        /// Set after an error: the journal is left to fjall from then on.
        off: bool,
    }

    impl Prefill {
        pub(crate) fn new(dir: &Path, lock: JournalLock) -> Self {
            Self {
                dir: dir.to_owned(),
                lock,
                dir_modified: None,
                active: None,
                off: false,
            }
        }

        /// After a group commit that wrote about `bytes` to the journal:
        /// zero the next [`CHUNK`] if fjall is within half a chunk of the
        /// zeros already there.
        pub(crate) fn after_commit(&mut self, bytes: u64) {
            if self.off {
                return;
            }
            if let Err(e) = self.step(bytes) {
                tracing::warn!(
                    error = %e,
                    dir = %self.dir.display(),
                    "Prefilling the journal failed; it is left to fjall from now on (commits are a little slower)."
                );
                self.off = true;
                self.active = None;
            }
        }

        fn step(&mut self, bytes: u64) -> std::io::Result<()> {
            if let Some(a) = &mut self.active {
                a.written_to = a.written_to.saturating_add(bytes);
            }
            let modified = std::fs::metadata(&self.dir)?.modified().ok();
            // Past the file's length fjall has rotated or is about to: look
            // again once per chunk, in case the dir's time did not change
            // (a file system with coarse timestamps).
            let overdue = self
                .active
                .as_ref()
                .is_none_or(|a| a.written_to >= a.next_look);
            if modified != self.dir_modified || overdue {
                self.dir_modified = modified;
                self.follow()?;
            }
            let Some(a) = &mut self.active else {
                return Ok(());
            };
            if a.written_to.saturating_add(CHUNK / 2) < a.zeroed_to || a.zeroed_to >= a.len {
                return Ok(());
            }
            let _held = self.lock.hold();
            a.extend()
        }

        /// Opens the newest journal, if it is not the one already open.
        fn follow(&mut self) -> std::io::Result<()> {
            let Some(id) = newest_journal(&self.dir)? else {
                self.active = None;
                return Ok(());
            };
            if let Some(a) = self.active.as_mut().filter(|a| a.id == id) {
                a.next_look = a.next_look.max(a.written_to.saturating_add(CHUNK));
                return Ok(());
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(self.dir.join(format!("{id}.jnl")))?;
            let len = file.metadata()?.len();
            // Where fjall's data ends, to the block: the first hole.
            let _held = self.lock.hold();
            let end = first_hole(&file, 0, len)?;
            self.active = Some(Active {
                id,
                file,
                len,
                zeroed_to: end,
                written_to: end,
                next_look: len.max(end.saturating_add(CHUNK)),
            });
            Ok(())
        }
    }

    impl Active {
        fn extend(&mut self) -> std::io::Result<()> {
            // fjall may have got past the zeros (a group bigger than what
            // was ahead, or an estimate too low): start after its data.
            let hole = first_hole(&self.file, self.zeroed_to, self.len)?;
            if hole > self.zeroed_to {
                self.zeroed_to = hole;
                self.written_to = self.written_to.max(hole);
            }
            let start = self.zeroed_to;
            let end = start.saturating_add(CHUNK).min(self.len);
            if end <= start {
                return Ok(());
            }
            let mut at = start;
            while at < end {
                let n = (end - at).min(ZEROS.len() as u64) as usize;
                self.file.write_all_at(&ZEROS[..n], at)?;
                at += n as u64;
            }
            self.zeroed_to = end;
            Ok(())
        }
    }

    /// The first hole at or after `from`, or `len` if there is none (the end
    /// of the file counts as one). A file system that reports no holes
    /// answers `len`, and then nothing is prefilled.
    pub(super) fn first_hole(file: &File, from: u64, len: u64) -> std::io::Result<u64> {
        if from >= len {
            return Ok(len);
        }
        let at = rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(from))?;
        Ok((at as u64).min(len))
    }

    /// The highest-numbered `<n>.jnl` in the data dir: fjall's active journal.
    pub(super) fn newest_journal(dir: &Path) -> std::io::Result<Option<u64>> {
        let mut newest = None;
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jnl"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(id) = id {
                newest = newest.max(Some(id));
            }
        }
        Ok(newest)
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use std::path::Path;

    use super::JournalLock;

    /// Off Linux the journal is left to fjall.
    pub(crate) struct Prefill;

    impl Prefill {
        pub(crate) fn new(_dir: &Path, _lock: JournalLock) -> Self {
            Self
        }

        pub(crate) fn after_commit(&mut self, _bytes: u64) {}
    }
}

/// On real fjall through the store's writer: the stretch after the last
/// commit is zeros, every acknowledged event reads back after a reopen
/// (the journal replayed), and nothing goes wrong across a group larger
/// than the stretch, a journal reopened for appending, the registry's
/// writes from another thread, or fjall rotating to a new journal.
#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use switchyard_core::{EventId, EventMeta, NewEvent};
    use switchyard_store::{Appended, EventLog, RegistryWrite, Routing, SchemaRecord, SchemaStore};

    use super::CHUNK;
    use crate::{Durability, FjallStore, WindowSize};

    fn open(dir: &Path) -> Arc<FjallStore> {
        Arc::new(FjallStore::open_with(dir, Durability::Sync, WindowSize::default()).unwrap())
    }

    /// A payload that is event `i`'s all the way through, so a zeroed
    /// stretch anywhere in it shows, and that does not compress (fjall
    /// compresses large values in its journal).
    fn payload(i: usize, len: usize) -> Bytes {
        let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out.into()
    }

    async fn append(store: &FjallStore, i: usize, len: usize) -> EventId {
        let events = vec![NewEvent {
            meta: EventMeta::default(),
            payload: payload(i, len),
        }];
        match store
            .append("t", None, Duration::ZERO, events, Routing::Nowhere)
            .await
            .unwrap()
        {
            Appended::New { ids, .. } => ids[0],
            Appended::Duplicate { .. } => panic!("no idempotency key, no duplicate"),
        }
    }

    /// `count` events of `len` bytes from 8 tasks at once (so the writer
    /// groups them), numbered from `first`.
    async fn fill(
        store: &Arc<FjallStore>,
        first: usize,
        count: usize,
        len: usize,
    ) -> Vec<(usize, EventId)> {
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in (first + t..first + count).step_by(8) {
                    out.push((i, append(&store, i, len).await));
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    }

    async fn check(store: &FjallStore, events: &[(usize, EventId, usize)]) {
        for (i, id, len) in events {
            let e = store
                .event(*id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("event {i} is gone"));
            assert!(
                e.payload == payload(*i, *len),
                "event {i} came back different"
            );
        }
    }

    /// The active journal: where its first hole is, and whether the
    /// `stretch` bytes before it are all zeros.
    fn zeros_before_hole(dir: &Path, stretch: u64) -> (u64, bool) {
        let id = super::linux::newest_journal(dir).unwrap().unwrap();
        let file = std::fs::File::open(dir.join(format!("{id}.jnl"))).unwrap();
        let len = file.metadata().unwrap().len();
        let hole = super::linux::first_hole(&file, 0, len).unwrap();
        let mut tail = vec![1u8; stretch as usize];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut tail, hole - stretch).unwrap();
        (hole, tail.iter().all(|b| *b == 0))
    }

    fn with_len(events: Vec<(usize, EventId)>, len: usize) -> Vec<(usize, EventId, usize)> {
        events.into_iter().map(|(i, id)| (i, id, len)).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_land_on_zeros_and_every_event_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        // About 6 MiB of journal: several chunks.
        let mut events = with_len(fill(&store, 0, 3000, 2000).await, 2000);
        // The stretch after the last commit was written as zeros ahead of
        // it: fjall alone leaves its data right up to the hole.
        let (hole, zeros) = zeros_before_hole(dir.path(), CHUNK / 4);
        assert!(
            hole > 5 * CHUNK,
            "the journal's data and zeros end at {hole}"
        );
        assert!(zeros, "no zeroed stretch ahead of the last commit");

        // One group far larger than the stretch ahead: fjall runs past the
        // zeros into the hole, and the prefill starts again after it.
        let big = 3 * CHUNK as usize;
        events.push((3000, append(&store, 3000, big).await, big));
        events.extend(with_len(fill(&store, 3001, 800, 2000).await, 2000));
        let (hole_after, zeros) = zeros_before_hole(dir.path(), CHUNK / 4);
        assert!(
            hole_after > hole + big as u64,
            "the prefill fell behind the big group"
        );
        assert!(zeros, "no zeroed stretch after the big group");
        check(&store, &events).await;
        drop(store);

        // Reopened, fjall appends to the journal it recovered, which ends
        // at its data: the prefill leaves it alone, and the registry's
        // writes from another thread go in among the writer's commits.
        let store = open(dir.path());
        check(&store, &events).await;
        let registry = {
            let store = store.clone();
            std::thread::spawn(move || {
                for id in 1..=50 {
                    store
                        .write_schemas(&[RegistryWrite::PutSchema(SchemaRecord {
                            id,
                            schema: format!("{{\"type\":\"string\",\"n\":{id}}}"),
                        })])
                        .unwrap();
                }
            })
        };
        events.extend(with_len(fill(&store, 4000, 2000, 2000).await, 2000));
        registry.join().unwrap();
        drop(store);

        let store = open(dir.path());
        check(&store, &events).await;
        let schemas = store.load_schemas().unwrap().schemas;
        assert_eq!(schemas.len(), 50, "every registry write survives");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_prefill_follows_fjall_to_its_next_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let journals = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".jnl")
                })
                .count()
        };
        // fjall rotates once the journal passes 64 MB and a memtable is
        // written out: 256 KiB events until it has.
        let len = 256 * 1024;
        let mut events = Vec::new();
        let mut n = 0;
        let first = super::linux::newest_journal(dir.path()).unwrap();
        while super::linux::newest_journal(dir.path()).unwrap() == first {
            assert!(
                n < 1200,
                "fjall never rotated its journal ({} files)",
                journals()
            );
            events.extend(with_len(fill(&store, n, 16, len).await, len));
            n += 16;
        }
        events.extend(with_len(fill(&store, n, 400, 2000).await, 2000));
        let (_, zeros) = zeros_before_hole(dir.path(), CHUNK / 4);
        assert!(zeros, "no zeroed stretch in the new journal");
        drop(store);
        let store = open(dir.path());
        check(&store, &events).await;
    }
}
