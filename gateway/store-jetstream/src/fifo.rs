//! Per-key FIFO on JetStream: each key of an ordered destination has a
//! line, a subject per waiting entry (`Names::line`) in stream order, and a
//! record naming the line's head (`Names::line_key`). Only the head has a
//! message in a band, so the band consumers hand out one entry per key at
//! a time.
//!
//! Every change of a line goes through its head record by compare-and-set
//! (expected last subject sequence):
//! - joining writes the entry into the line and the record again; an entry
//!   that finds no head becomes it (and goes into its band in the same
//!   atomic batch);
//! - a head that finishes (delivered, cancelled, dead-lettered without
//!   `on_dead_letter = "block"`) names the next entry as head and puts it
//!   into its band, in the same atomic batch as its settlement.
//!
//! So a join and a finish at the same moment cannot both miss each other:
//! the one that writes second finds the record changed, reads again and
//! decides again. A head dead-lettered under `block` stays head, holding
//! the key, until its dead letter is replayed (it goes into its band again)
//! or purged (the next one moves up). Lines and records are read from the
//! stream's leader: a replica that trails it would only cost a retry, but a
//! retry on every write of a busy key is worth avoiding.

use serde::{Deserialize, Serialize};
use switchyard_core::{EventId, now_ms};
use switchyard_store::{QueueEntry, StoreError};

use crate::js::Out;
use crate::names::Names;
use crate::{JetStreamStore, from_json, to_json};

/// A line's head record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Head {
    head: Option<EventId>,
}

/// How many times a line write is decided again after losing its
/// compare-and-set before it gives up (with a conflict the caller sees).
const TRIES: usize = 50;

fn key_of(e: &QueueEntry) -> &str {
    e.ordering_key.as_deref().unwrap_or_default()
}

impl JetStreamStore {
    /// Whether `dest`'s queue keeps per-key order (it has lines).
    pub(crate) fn ordered(&self, dest: &str) -> bool {
        self.queue(dest, |q| q.policy.ordered).unwrap_or(false)
    }

    /// Whether `e` goes through a FIFO line: it has a key, at a
    /// destination whose queue keeps per-key order.
    pub(crate) fn in_line(&self, e: &QueueEntry) -> bool {
        e.ordering_key.is_some() && self.ordered(&e.destination)
    }

    /// Whether a dead-lettered head keeps its key held at `dest`.
    pub(crate) fn holds_dead_letters(&self, dest: &str) -> bool {
        self.queue(dest, |q| q.policy.ordered && q.policy.hold_dead_letters)
            .unwrap_or(false)
    }

    async fn leader(
        &self,
        body: serde_json::Value,
    ) -> Result<Option<crate::js::Stored>, StoreError> {
        self.0
            .js
            .leader_get(&self.names().queues(), &body)
            .await
            .map_err(|e| self.count(e))
    }

    /// The last message of `subject` (wildcards allowed), from the leader.
    pub(crate) async fn leader_last(
        &self,
        subject: String,
    ) -> Result<Option<crate::js::Stored>, StoreError> {
        self.leader(serde_json::json!({ "last_by_subj": subject }))
            .await
    }

    /// The head of `e`'s line and the record's sequence (0: none yet).
    async fn head_of(&self, e: &QueueEntry) -> Result<(Option<EventId>, u64), StoreError> {
        let subject = self.names().line_key(&e.destination, key_of(e));
        match self.leader_last(subject).await? {
            Some(m) => Ok((from_json::<Head>("line head", &m.payload)?.head, m.seq)),
            None => Ok((None, 0)),
        }
    }

    fn head_message(&self, e: &QueueEntry, head: Option<EventId>, seq: u64) -> Out {
        Out::new(
            self.names().line_key(&e.destination, key_of(e)),
            to_json(&Head { head }),
        )
        .rollup()
        .expect_last(seq)
    }

    /// Whether `e` is in its line.
    async fn line_holds(&self, e: &QueueEntry) -> Result<bool, StoreError> {
        let subject = self
            .names()
            .line(&e.destination, key_of(e), e.priority, e.event_id);
        Ok(self.leader_last(subject).await?.is_some())
    }

    /// The messages that put `e` at the end of its line, given its head
    /// record as read: with no head, `e` becomes it and goes into its band.
    fn join_messages(&self, e: &QueueEntry, head: Option<EventId>, seq: u64) -> Vec<Out> {
        let names = self.names();
        let entry = QueueEntry {
            lease: None,
            ..e.clone()
        };
        let mut msgs = vec![Out::new(
            names.line(&e.destination, key_of(e), e.priority, e.event_id),
            to_json(&entry),
        )];
        match head {
            Some(h) => msgs.push(self.head_message(e, Some(h), seq)),
            None => {
                msgs.push(self.entry_message(e, now_ms()));
                msgs.push(self.head_message(e, Some(e.event_id), seq));
            }
        }
        msgs
    }

    /// Writes entries that join their lines (routed or requeued), each
    /// with the messages that go with it (its delivery state): read the
    /// head record, join, and on a lost compare-and-set read again.
    pub(crate) async fn join_lines(
        &self,
        items: Vec<(QueueEntry, Vec<Out>)>,
    ) -> Result<(), StoreError> {
        for (e, with) in items {
            self.ensure_band(&e.destination, e.priority).await?;
            let mut tries = 0;
            loop {
                let (head, seq) = self.head_of(&e).await?;
                let mut msgs = self.join_messages(&e, head, seq);
                msgs.extend(with.iter().cloned());
                match self.0.js.batch(msgs).await {
                    Ok(_) => break,
                    Err(err) if err.is_conflict() && tries < TRIES => {
                        tries += 1;
                        // A commit whose answer was lost joined already.
                        if self.line_holds(&e).await? {
                            break;
                        }
                    }
                    Err(err) => return Err(self.count(err)),
                }
            }
            self.wake(&e.destination);
        }
        Ok(())
    }

    /// [`JetStreamStore::join_lines`] for one entry moved in by `switchyard
    /// migrate`, its delivery state guarded to be new: `Ok(false)` if the
    /// state exists (moved already).
    pub(crate) async fn join_line_once(
        &self,
        e: &QueueEntry,
        state: Out,
    ) -> Result<bool, StoreError> {
        self.ensure_band(&e.destination, e.priority).await?;
        for _ in 0..TRIES {
            if self.state_of(e.event_id, &e.destination).await?.is_some() {
                return Ok(false);
            }
            let (head, seq) = self.head_of(e).await?;
            let mut msgs = self.join_messages(e, head, seq);
            msgs.push(state.clone());
            match self.0.js.batch(msgs).await {
                Ok(_) => return Ok(true),
                Err(err) if err.is_conflict() => continue,
                Err(err) => return Err(self.count(err)),
            }
        }
        Err(self.lost_line(e))
    }

    fn lost_line(&self, e: &QueueEntry) -> StoreError {
        StoreError::Conflict(format!(
            "event {} kept losing its place in its FIFO line at {:?}; retry",
            e.event_id, e.destination
        ))
    }

    /// The first entry of `e`'s line after `e` that is still owed a
    /// delivery; entries a crash left behind finished are cleared away.
    async fn next_in_line(&self, e: &QueueEntry) -> Result<Option<QueueEntry>, StoreError> {
        let names = self.names().clone();
        let filter = names.line_of(&e.destination, key_of(e));
        let mut seq = 1;
        loop {
            let Some(m) = self
                .leader(serde_json::json!({ "seq": seq, "next_by_subj": filter }))
                .await?
            else {
                return Ok(None);
            };
            seq = m.seq + 1;
            let next: QueueEntry = from_json("line entry", &m.payload)?;
            if next.event_id == e.event_id {
                continue;
            }
            let finished = self
                .state_of(next.event_id, &next.destination)
                .await?
                .is_some_and(|s| s.status.is_finished());
            if !finished {
                return Ok(Some(next));
            }
            self.purge(&names.queues(), &m.subject).await?;
        }
    }

    /// The messages by which head `e` hands its line on (none if `e` is
    /// not its line's head): the record names the next entry, which goes
    /// into its band.
    pub(crate) async fn hand_on(&self, e: &QueueEntry) -> Result<Vec<Out>, StoreError> {
        let (head, seq) = self.head_of(e).await?;
        if head != Some(e.event_id) {
            return Ok(Vec::new());
        }
        let next = self.next_in_line(e).await?;
        let mut msgs = vec![self.head_message(e, next.as_ref().map(|n| n.event_id), seq)];
        if let Some(n) = next {
            self.ensure_band(&n.destination, n.priority).await?;
            msgs.push(self.entry_message(&n, now_ms()));
        }
        Ok(msgs)
    }

    /// Takes `e` out of its line and writes `with` (a settlement, or
    /// nothing) with, if `e` heads its line, the hand-on to the next
    /// entry, in one atomic batch.
    pub(crate) async fn leave_line(
        &self,
        e: &QueueEntry,
        with: Vec<Out>,
    ) -> Result<(), StoreError> {
        // Out of the line first: the record still names `e` as head until
        // the batch below lands, so a crash in between leaves `e`
        // unsettled and its next settlement hands on.
        let names = self.names().clone();
        let line = names.line(&e.destination, key_of(e), e.priority, e.event_id);
        self.purge(&names.queues(), &line).await?;
        for _ in 0..TRIES {
            let mut msgs = with.clone();
            msgs.extend(self.hand_on(e).await?);
            if !msgs.is_empty() {
                match self.0.js.batch(msgs).await {
                    Ok(_) => {}
                    Err(err) if err.is_conflict() => continue,
                    Err(err) => return Err(self.count(err)),
                }
            }
            self.wake(&e.destination);
            return Ok(());
        }
        Err(self.lost_line(e))
    }

    /// Whether `e` heads its line now.
    pub(crate) async fn heads_line(&self, e: &QueueEntry) -> Result<bool, StoreError> {
        Ok(self.head_of(e).await?.0 == Some(e.event_id))
    }

    /// Event `id`'s entry in a line of `dest`, if it is in one.
    pub(crate) async fn line_entry(
        &self,
        dest: &str,
        id: EventId,
    ) -> Result<Option<QueueEntry>, StoreError> {
        match self.leader_last(self.names().line_any(dest, id)).await? {
            Some(m) => from_json("line entry", &m.payload).map(Some),
            None => Ok(None),
        }
    }

    /// Entries waiting in `dest`'s lines behind their heads, by priority,
    /// and the keys with any waiting (they cannot move until their head
    /// settles).
    pub(crate) async fn line_levels(&self, dest: &str) -> Result<([u64; 10], u64), StoreError> {
        let names = self.names();
        let v = self
            .0
            .js
            .api(
                &format!("STREAM.INFO.{}", names.queues()),
                &serde_json::json!({ "subjects_filter": names.lines_of(dest) }),
            )
            .await
            .map_err(|e| self.count(e))?;
        let mut keys: std::collections::HashMap<String, Vec<u8>> = Default::default();
        if let Some(m) = v["state"]["subjects"].as_object() {
            for subject in m.keys() {
                if let Some((key, p)) = Names::parse_line(subject) {
                    keys.entry(key.to_string()).or_default().push(p);
                }
            }
        }
        let mut waiting = [0u64; 10];
        let mut blocked = 0;
        for (_, mut ps) in keys {
            // The head is counted where it is (its band, in flight, or
            // its dead letter); which one it is the subjects do not say,
            // so the most urgent is taken for it.
            ps.sort_unstable();
            ps.pop();
            if !ps.is_empty() {
                blocked += 1;
            }
            for p in ps {
                waiting[p.min(9) as usize] += 1;
            }
        }
        Ok((waiting, blocked))
    }
}
