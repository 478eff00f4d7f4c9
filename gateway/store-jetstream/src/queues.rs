//! Destination queues, dead letters and delivery history on JetStream.
//!
//! Each priority band of a destination is a subject with a durable pull
//! consumer: the consumer hands an entry to one gateway at a time (a push
//! attempt holds it with `+WPI`; a pull lease with a delayed `-NAK`, so the
//! server's timer ends it even if the gateway dies). Entries not yet due
//! are scheduled messages the server moves into their band at the due
//! time. A lease is also a record (`<p>.ls.<dest>.<id>`), changed only by
//! compare-and-set: that is what makes a receipt taken on one gateway
//! settle on another, and a stale or forged one settle nothing.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use switchyard_core::{EventId, now_ms};
use switchyard_store::{
    AttemptRecord, Cancelled, DeadLetters, DeliveryState, DeliveryStatus, DlqEntry, DlqOwner,
    History, Hold, LeaseCheck, ListOrder, Purged, QueueEntry, QueuePolicy, QueueStats, Queues,
    Settle, Settlement, StoreError,
};
use tokio::sync::Notify;

use crate::js::{Delivered, Out, code};
use crate::names::Names;
use crate::{Got, HeldEntry, JetStreamStore, QueueState, from_json, lock, setup, to_json};

/// How often a dispatcher with nothing to take looks again: entries routed
/// by other gateways and scheduled entries falling due ring no bell here.
const POLL: Duration = Duration::from_millis(200);

/// Queued messages a cancellation reads at most to find its entry.
const CANCEL_SCAN: usize = 100_000;

/// How long the set of band consumers is trusted before it is read again.
const BANDS_TTL: Duration = Duration::from_secs(2);

/// Longest a resume waits for every band's consumer leader to apply it.
const RESUME_APPLIED: Duration = Duration::from_secs(5);

/// Whether entry `e` is still owed an attempt, given its delivery state:
/// not if the delivery finished, or if an attempt after this one was
/// recorded already.
fn owed(e: &QueueEntry, state: Option<&DeliveryState>) -> bool {
    match state {
        Some(s) => !s.status.is_finished() && s.attempts <= e.history_base + e.attempt,
        None => true,
    }
}

/// A pull lease, as every gateway sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    state: LeaseState,
    nonce: u64,
    until_ms: u64,
    /// The server's ack subject for this delivery: never leaves the
    /// gateways.
    reply: String,
    /// Receives so far (what `max_receives` counts), across expiries.
    receives: u32,
    /// The entry as leased.
    entry: QueueEntry,
}

impl LeaseRecord {
    /// Whether this record is lease `nonce`, still held.
    fn holds(&self, nonce: u64) -> bool {
        self.nonce == nonce && self.state == LeaseState::Leased
    }
}

/// The write that ends a lease: only if it is still the one at `seq` (the
/// one the receipt or the take named), so a stale receipt settles nothing.
fn lease_settled(names: &Names, rec: LeaseRecord, seq: u64) -> Out {
    let subject = names.lease(&rec.entry.destination, rec.entry.event_id);
    let done = LeaseRecord {
        state: LeaseState::Settled,
        ..rec
    };
    Out::new(subject, to_json(&done)).rollup().expect_last(seq)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LeaseState {
    Leased,
    /// Given back (a nack): visible again at its delay's end.
    Released,
    /// Acknowledged, dead-lettered or cancelled.
    Settled,
}

impl JetStreamStore {
    /// The delivery state of `e` as newly queued (routed or requeued).
    pub(crate) fn pending_state(&self, e: &QueueEntry, now: u64) -> Out {
        Out::new(
            self.names().dstate(e.event_id, &e.destination),
            to_json(&DeliveryState {
                status: DeliveryStatus::Pending,
                attempts: e.history_base,
                updated_at_ms: now,
                last_error: None,
                next_attempt_ms: (e.due_ms > now).then_some(e.due_ms),
            }),
        )
        .rollup()
    }

    /// The message that puts `e` in its queue: its band now, or a schedule
    /// that moves it there at its due time.
    pub(crate) fn entry_message(&self, e: &QueueEntry, now: u64) -> Out {
        let names = self.names();
        let entry = QueueEntry {
            lease: None,
            ..e.clone()
        };
        let band = names.band_subject(&e.destination, e.priority.min(9));
        if e.due_ms > now + 5 {
            Out::new(
                names.schedule(&e.destination, e.priority.min(9), e.event_id),
                to_json(&entry),
            )
            .schedule(e.due_ms, &band)
        } else {
            Out::new(band, to_json(&entry))
        }
    }

    /// Makes sure band `p` of `dest` has its consumer.
    pub(crate) async fn ensure_band(&self, dest: &str, p: u8) -> Result<(), StoreError> {
        let p = p.min(9);
        let known = lock(&self.0.queues)
            .get(dest)
            .is_some_and(|q| q.bands.contains(&p));
        if known {
            return Ok(());
        }
        let names = self.names();
        setup::consumer(
            &self.0.js,
            &names.queues(),
            setup::band_consumer(names, dest, p, self.0.ack_wait),
        )
        .await
        .map_err(|e| self.count(e))?;
        if let Some(q) = lock(&self.0.queues).get_mut(dest) {
            q.bands.insert(p);
        }
        Ok(())
    }

    /// The bands of `dest` with a consumer, read from the server at most
    /// every [`BANDS_TTL`] (another gateway may have added one).
    async fn bands(&self, dest: &str) -> Result<Vec<u8>, StoreError> {
        let (fresh, bands) = self.queue(dest, |q| {
            (
                q.bands_read.is_some_and(|t| t.elapsed() < BANDS_TTL),
                q.bands.iter().copied().collect::<Vec<u8>>(),
            )
        })?;
        if fresh {
            return Ok(bands);
        }
        let names = self.names();
        let mut found = Vec::new();
        let mut offset = 0;
        loop {
            let v = self
                .0
                .js
                .api(
                    &format!("CONSUMER.NAMES.{}", names.queues()),
                    &serde_json::json!({ "offset": offset }),
                )
                .await
                .map_err(|e| self.count(e))?;
            let page: Vec<String> = v["consumers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let n = page.len();
            for c in page {
                for p in 0..=9u8 {
                    if c == names.band_consumer(dest, p) {
                        found.push(p);
                    }
                }
            }
            offset += n;
            let total = v["total"].as_u64().unwrap_or(0) as usize;
            if n == 0 || offset >= total {
                break;
            }
        }
        found.sort_unstable();
        self.queue(dest, |q| {
            q.bands.extend(found.iter().copied());
            q.bands_read = Some(tokio::time::Instant::now());
            q.bands.iter().copied().collect()
        })
    }

    /// The last message of `subject` in the queues stream, read as JSON
    /// (`what` names the record in an error), with its sequence.
    pub(crate) async fn last_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        subject: &str,
    ) -> Result<Option<(T, u64)>, StoreError> {
        match self
            .0
            .js
            .last(&self.names().queues(), subject)
            .await
            .map_err(|e| self.count(e))?
        {
            Some(m) => Ok(Some((from_json(what, &m.payload)?, m.seq))),
            None => Ok(None),
        }
    }

    /// The lease record of `id` at `dest` and its sequence.
    async fn lease_record(
        &self,
        dest: &str,
        id: EventId,
    ) -> Result<Option<(LeaseRecord, u64)>, StoreError> {
        self.last_json("lease", &self.names().lease(dest, id)).await
    }

    /// The lease record of `id` at `dest` as a holder of lease `nonce`
    /// should judge it: the direct get's if it shows that lease held, else
    /// the leader's. A direct get may be answered by a replica that trails
    /// the stream's leader, and the lease may have been written a moment
    /// ago (an ack, extend or dead-letter right after the receive), so
    /// "not held" is the leader's to say.
    async fn lease_record_for(
        &self,
        dest: &str,
        id: EventId,
        nonce: u64,
    ) -> Result<Option<(LeaseRecord, u64)>, StoreError> {
        let rec = self.lease_record(dest, id).await?;
        if rec.as_ref().is_some_and(|(r, _)| r.holds(nonce)) {
            return Ok(rec);
        }
        self.lease_record_from_leader(dest, id).await
    }

    /// [`Self::lease_record`] as the stream's leader has it, never from a
    /// replica that may trail it.
    async fn lease_record_from_leader(
        &self,
        dest: &str,
        id: EventId,
    ) -> Result<Option<(LeaseRecord, u64)>, StoreError> {
        match self.leader_last(self.names().lease(dest, id)).await? {
            Some(m) => Ok(Some((from_json("lease", &m.payload)?, m.seq))),
            None => Ok(None),
        }
    }

    pub(crate) async fn state_of(
        &self,
        id: EventId,
        dest: &str,
    ) -> Result<Option<DeliveryState>, StoreError> {
        Ok(self
            .last_json("dstate", &self.names().dstate(id, dest))
            .await?
            .map(|(s, _)| s))
    }

    /// Fetches what is due now from `dest`'s bands, in queue order: most
    /// urgent band first; with aging, the heads of every band are compared
    /// by their waiting-adjusted rank and the others go back at once.
    async fn fetch_due(
        &self,
        dest: &str,
        max: usize,
        policy: &QueuePolicy,
    ) -> Result<Vec<Got>, StoreError> {
        let names = self.names();
        let stream = names.queues();
        let bands = self.bands(dest).await?;
        let mut out = Vec::new();
        let decode = |d: Delivered| -> Result<Got, StoreError> {
            Ok(Got {
                entry: from_json("queue entry", &d.payload)?,
                d,
            })
        };
        match policy.aging_ms {
            // Strict priority: 9 is the most urgent band.
            None => {
                for p in bands.into_iter().rev() {
                    if out.len() >= max {
                        break;
                    }
                    let got = self
                        .0
                        .js
                        .fetch(
                            &stream,
                            &names.band_consumer(dest, p),
                            max - out.len(),
                            Duration::ZERO,
                        )
                        .await
                        .map_err(|e| self.count(e))?;
                    for d in got {
                        out.push(decode(d)?);
                    }
                }
            }
            Some(aging) => {
                let now = now_ms();
                while out.len() < max {
                    let mut heads = Vec::new();
                    for &p in &bands {
                        let got = self
                            .0
                            .js
                            .fetch(&stream, &names.band_consumer(dest, p), 1, Duration::ZERO)
                            .await
                            .map_err(|e| self.count(e))?;
                        for d in got {
                            heads.push(decode(d)?);
                        }
                    }
                    if heads.is_empty() {
                        break;
                    }
                    // Rank as on fjall: the due time, later by `aging` for
                    // each level below 9 (the most urgent), then the id.
                    let rank = |g: &Got| {
                        let below = u64::from(9u8.saturating_sub(g.entry.priority.min(9)));
                        (
                            g.entry.due_ms.min(now).saturating_add(below * aging),
                            g.entry.event_id,
                        )
                    };
                    heads.sort_by_key(rank);
                    let mut heads = heads.into_iter();
                    out.push(heads.next().expect("a head"));
                    for other in heads {
                        // Back to the front of its band, at once.
                        let _ = self.0.js.nak(&other.d.reply, Duration::ZERO).await;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether each fetched entry of `dest` is still owed an attempt (see
    /// [`owed`]), from one batched read of their delivery states: not if
    /// its delivery finished, or if an attempt after this one was already
    /// recorded (a settle whose ack was lost, so the server handed the
    /// entry out again).
    async fn owed_of(&self, dest: &str, entries: &[&QueueEntry]) -> Result<Vec<bool>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let names = self.names();
        let subjects: Vec<String> = entries
            .iter()
            .map(|e| names.dstate(e.event_id, dest))
            .collect();
        let got = self
            .0
            .js
            .multi_last(&names.queues(), &subjects, subjects.len())
            .await
            .map_err(|e| self.count(e))?;
        let mut states = std::collections::HashMap::new();
        for m in got {
            states.insert(m.subject, from_json::<DeliveryState>("dstate", &m.payload)?);
        }
        Ok(entries
            .iter()
            .zip(&subjects)
            .map(|(e, s)| owed(e, states.get(s)))
            .collect())
    }

    /// Where the ack subject of a taken entry is: this process's hold, or
    /// the lease record (any gateway's).
    async fn reply_of(
        &self,
        e: &QueueEntry,
    ) -> Result<Option<(String, Option<(LeaseRecord, u64)>)>, StoreError> {
        let key = (e.destination.clone(), e.event_id);
        if let Some(nonce) = e.lease {
            return Ok(self
                .lease_record_for(&e.destination, e.event_id, nonce)
                .await?
                .filter(|(r, _)| r.holds(nonce))
                .map(|(r, seq)| (r.reply.clone(), Some((r, seq)))));
        }
        Ok(lock(&self.0.held)
            .get(&key)
            .map(|h| (h.reply.clone(), None)))
    }

    /// Reads a queue's levels from the server.
    pub(crate) async fn read_levels(&self, dest: &str) -> Result<QueueStats, StoreError> {
        let names = self.names();
        let stream = names.queues();
        let bands = self.bands(dest).await?;
        let mut s = QueueStats::default();
        for p in bands {
            let v = match self
                .0
                .js
                .api_settling(&names.band_api("INFO", dest, p), &serde_json::Value::Null)
                .await
            {
                Ok(v) => v,
                Err(e) if e.is(code::CONSUMER_NOT_FOUND) => continue,
                Err(e) => return Err(self.count(e)),
            };
            let pending = v["num_pending"].as_u64().unwrap_or(0);
            let ack_pending = v["num_ack_pending"].as_u64().unwrap_or(0);
            s.depth += pending;
            s.depth_by_priority[p as usize] += pending;
            s.in_flight += ack_pending;
        }
        let v = self
            .0
            .js
            .api(
                &format!("STREAM.INFO.{stream}"),
                &serde_json::json!({ "subjects_filter": names.schedules_of(dest) }),
            )
            .await
            .map_err(|e| self.count(e))?;
        if let Some(m) = v["state"]["subjects"].as_object() {
            for subject in m.keys() {
                // <p>.q.<dest>.s<N>.<id>
                let band = subject
                    .rsplit('.')
                    .nth(1)
                    .and_then(|t| t.strip_prefix('s'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n <= 9);
                if let Some(b) = band {
                    s.delayed += 1;
                    s.depth += 1;
                    s.depth_by_priority[b] += 1;
                }
            }
        }
        if self.ordered(dest) {
            let (waiting, blocked) = self.line_levels(dest).await?;
            for (p, n) in waiting.iter().enumerate() {
                s.depth += n;
                s.depth_by_priority[p] += n;
            }
            s.blocked_keys = blocked;
        }
        s.oldest_enqueued_ms = match self
            .0
            .js
            .next(&stream, &names.bands_of(dest), 1)
            .await
            .map_err(|e| self.count(e))?
        {
            Some(m) => from_json::<QueueEntry>("queue entry", &m.payload)
                .ok()
                .map(|e| e.enqueued_at_ms),
            None => None,
        };
        Ok(s)
    }

    /// Ends holds in this process after a settle or release.
    fn unhold(&self, e: &QueueEntry) {
        lock(&self.0.held).remove(&(e.destination.clone(), e.event_id));
    }

    pub(crate) fn wake(&self, dest: &str) {
        self.0.levels_dirty.notify_one();
        let _ = self.queue(dest, |q| q.wake.notify_one());
    }

    /// Ids of everything queued for `dest` (bands, schedules and FIFO
    /// lines), oldest first; a FIFO head, in its band and its line, once.
    async fn queued_ids(&self, dest: &str) -> Result<Vec<(EventId, QueueEntry)>, StoreError> {
        let names = self.names();
        let stream = names.queues();
        let mut seq = 1;
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let got = self
                .0
                .js
                .range(&stream, &names.queued_of(dest), seq, 1000)
                .await
                .map_err(|e| self.count(e))?;
            if got.is_empty() {
                return Ok(out);
            }
            for m in got {
                seq = m.seq + 1;
                if let Ok(e) = from_json::<QueueEntry>("queue entry", &m.payload)
                    && seen.insert(e.event_id)
                {
                    out.push((e.event_id, e));
                }
            }
        }
    }

    fn cancel_messages(&self, e: &QueueEntry, attempts: u32, reason: &str) -> Vec<Out> {
        let names = self.names();
        let (id, dest) = (e.event_id, &e.destination);
        let now = now_ms();
        let n = attempts + 1;
        let error = format!("cancelled: {reason}");
        vec![
            Out::new(
                names.attempt(id, dest, n),
                to_json(&AttemptRecord {
                    attempt: n,
                    at_ms: now,
                    status: None,
                    error: Some(error.clone()),
                    latency_ms: 0,
                    response_excerpt: None,
                    delay_before_ms: 0,
                }),
            ),
            Out::new(
                names.dstate(id, dest),
                to_json(&DeliveryState {
                    status: DeliveryStatus::Cancelled,
                    attempts: n,
                    updated_at_ms: now,
                    last_error: Some(error),
                    next_attempt_ms: None,
                }),
            )
            .rollup(),
        ]
    }
}

#[async_trait]
impl Queues for JetStreamStore {
    async fn open_queue(&self, dest: &str, policy: QueuePolicy) -> Result<(), StoreError> {
        if policy.ordered && self.0.pin_when_ordered {
            self.pin_routing().await?;
        }
        lock(&self.0.queues)
            .entry(dest.to_string())
            .or_insert_with(|| QueueState {
                policy,
                bands: Default::default(),
                bands_read: None,
                wake: std::sync::Arc::new(Notify::new()),
                stats: QueueStats::default(),
            });
        // The default band exists from the start; others when first used.
        self.ensure_band(dest, switchyard_core::DEFAULT_PRIORITY)
            .await?;
        self.bands(dest).await?;
        if self.is_paused(dest).await? {
            self.pause_consumers(dest, true).await?;
        }
        let stats = self.read_levels(dest).await?;
        self.queue(dest, |q| q.stats = stats)?;
        Ok(())
    }

    async fn orphaned_queues(&self) -> Result<Vec<String>, StoreError> {
        // Queues live in the cluster, shared by gateways whose configs may
        // differ: none is this gateway's to call orphaned.
        Ok(Vec::new())
    }

    fn waker(&self, dest: &str) -> Result<std::sync::Arc<Notify>, StoreError> {
        self.queue(dest, |q| q.wake.clone())
    }

    async fn take(
        &self,
        dest: &str,
        max: usize,
        hold: Hold,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let policy = self.queue(dest, |q| q.policy)?;
        let got = self.fetch_due(dest, max, &policy).await?;
        let now = now_ms();
        let owed = self
            .owed_of(dest, &got.iter().map(|g| &g.entry).collect::<Vec<_>>())
            .await?;
        let mut out = Vec::with_capacity(got.len());
        for (g, owed) in got.into_iter().zip(owed) {
            if !owed {
                let _ = self.0.js.ack_written(&g.d.reply).await;
                // A FIFO head that finished without handing its line on
                // (cancelled while queued elsewhere): the next moves up.
                if self.in_line(&g.entry) {
                    self.leave_line(&g.entry, Vec::new()).await?;
                }
                continue;
            }
            match hold {
                Hold::InFlight => {
                    lock(&self.0.held).insert(
                        (dest.to_string(), g.entry.event_id),
                        HeldEntry {
                            reply: g.d.reply.clone(),
                            cancel: None,
                        },
                    );
                    out.push(g.entry);
                }
                Hold::Lease { until_ms } => {
                    let names = self.names();
                    // The server's timer is the lease: hidden until it ends.
                    self.0
                        .js
                        .nak(
                            &g.d.reply,
                            Duration::from_millis(until_ms.saturating_sub(now)),
                        )
                        .await
                        .map_err(|e| self.count(e))?;
                    let id = g.entry.event_id;
                    let mut prev = self.lease_record(dest, id).await?;
                    let mut from_leader = false;
                    let leased = loop {
                        let receives = match &prev {
                            Some((r, _)) if r.state != LeaseState::Settled => r.receives + 1,
                            _ => g.entry.attempt + 1,
                        };
                        let nonce: u64 = rand::random();
                        let leased = QueueEntry {
                            due_ms: until_ms,
                            attempt: receives,
                            lease: Some(nonce),
                            ..g.entry.clone()
                        };
                        let rec = LeaseRecord {
                            state: LeaseState::Leased,
                            nonce,
                            until_ms,
                            reply: g.d.reply.clone(),
                            receives,
                            entry: leased.clone(),
                        };
                        let written = self
                            .0
                            .js
                            .publish(
                                Out::new(names.lease(dest, id), to_json(&rec))
                                    .rollup()
                                    .expect_last(prev.as_ref().map_or(0, |(_, s)| *s)),
                            )
                            .await;
                        match written {
                            Ok(_) => break leased,
                            // The record read may have come from a replica
                            // that trails the leader (a nack or a lease's
                            // end written a moment ago): once more, with
                            // the leader's.
                            Err(e) if e.is_conflict() && !from_leader => {
                                from_leader = true;
                                prev = self.lease_record_from_leader(dest, id).await?;
                            }
                            Err(e) => return Err(self.count(e)),
                        }
                    };
                    out.push(leased);
                }
            }
        }
        Ok(out)
    }

    fn next_due(&self, _dest: &str) -> Option<u64> {
        Some(now_ms() + POLL.as_millis() as u64)
    }

    async fn settle(&self, settled: Vec<Settlement>) -> Result<(), StoreError> {
        let names = self.names().clone();
        let now = now_ms();
        let mut per_entry = Vec::with_capacity(settled.len());
        // Heads of FIFO lines that finish: each settles with its line's
        // hand-on to the next entry.
        let mut in_lines = Vec::new();
        let mut replies = Vec::with_capacity(settled.len());
        for s in &settled {
            let (entry, attempt) = (&s.entry, &s.attempt);
            let (id, dest) = (entry.event_id, &entry.destination);
            let Some((reply, lease)) = self.reply_of(entry).await? else {
                return Err(StoreError::Conflict(format!(
                    "event {id} at {dest:?} is no longer held here (its lease ended or another gateway took it)"
                )));
            };
            // Cancelled while the attempt ran: here (marked on the hold), or
            // through another gateway (the state says so). A delivery that
            // succeeded stands; anything else ends as cancelled, its record
            // after this attempt's.
            let marked = lock(&self.0.held)
                .get(&(dest.clone(), id))
                .and_then(|h| h.cancel.clone());
            let cancelled = match marked {
                Some(reason) => Some(reason),
                None => match self.state_of(id, dest).await? {
                    Some(st) if st.status == DeliveryStatus::Cancelled => Some(
                        st.last_error
                            .unwrap_or_default()
                            .trim_start_matches("cancelled: ")
                            .to_string(),
                    ),
                    _ => None,
                },
            };
            if let Some(reason) = cancelled
                && !matches!(s.outcome, Settle::Delivered)
            {
                let mut msgs = vec![Out::new(
                    names.attempt(id, dest, attempt.attempt),
                    to_json(attempt),
                )];
                msgs.extend(self.cancel_messages(entry, attempt.attempt, &reason));
                if let Some((rec, seq)) = lease {
                    msgs.push(lease_settled(&names, rec, seq));
                }
                if self.in_line(entry) {
                    in_lines.push((entry.clone(), msgs));
                } else {
                    per_entry.push(msgs);
                }
                replies.push(reply);
                continue;
            }
            let mut msgs = vec![Out::new(
                names.attempt(id, dest, attempt.attempt),
                to_json(attempt),
            )];
            let last_error = attempt
                .error
                .clone()
                .or_else(|| attempt.status.map(|s| format!("HTTP {s}")));
            let mut next_attempt_ms = None;
            let (status, last_error) = match &s.outcome {
                Settle::Delivered => (DeliveryStatus::Delivered, None),
                Settle::Retry { next } => {
                    self.ensure_band(dest, next.priority).await?;
                    next_attempt_ms = Some(next.due_ms);
                    msgs.push(self.entry_message(next, now).msg_id(format!(
                        "{id}:{dest}:a{}:{}",
                        next.attempt, next.history_base
                    )));
                    (DeliveryStatus::Pending, last_error)
                }
                Settle::DeadLetter { error } => {
                    msgs.push(
                        Out::new(
                            names.dlq(DlqOwner::Destination(dest), id),
                            to_json(&DlqEntry {
                                event_id: id,
                                error: error.clone(),
                                attempts: attempt.attempt,
                                dead_lettered_at_ms: now,
                                priority: entry.priority,
                                ordering_key: entry.ordering_key.clone(),
                            }),
                        )
                        .rollup(),
                    );
                    (DeliveryStatus::DeadLettered, Some(error.clone()))
                }
            };
            msgs.push(
                Out::new(
                    names.dstate(id, dest),
                    to_json(&DeliveryState {
                        status,
                        attempts: attempt.attempt,
                        updated_at_ms: now,
                        last_error,
                        next_attempt_ms,
                    }),
                )
                .rollup(),
            );
            if let Some((rec, seq)) = lease {
                msgs.push(lease_settled(&names, rec, seq));
            }
            // A head that finished leaves its line, and the next one goes
            // into its band in this same batch; a retry stays the head, and
            // so does a dead letter that holds its key.
            let finished = match &s.outcome {
                Settle::Delivered => true,
                Settle::Retry { .. } => false,
                Settle::DeadLetter { .. } => !self.holds_dead_letters(dest),
            };
            if finished && self.in_line(entry) {
                in_lines.push((entry.clone(), msgs));
            } else {
                per_entry.push(msgs);
            }
            replies.push(reply);
        }
        self.write_events_of(per_entry).await?;
        for (entry, msgs) in in_lines {
            self.leave_line(&entry, msgs).await?;
        }
        for (s, reply) in settled.iter().zip(replies) {
            self.unhold(&s.entry);
            if let Err(e) = self.0.js.ack_written(&reply).await {
                tracing::warn!(event_id = %s.entry.event_id, error = %e,
                    "Cannot acknowledge a settled entry; the server will hand it out again, and it is then skipped.");
            }
            self.wake(&s.entry.destination);
        }
        Ok(())
    }

    async fn release(
        &self,
        entries: &[QueueEntry],
        due_ms: u64,
        _delay_ms: u64,
    ) -> Result<(), StoreError> {
        let names = self.names().clone();
        let now = now_ms();
        for e in entries {
            let Some((reply, lease)) = self.reply_of(e).await? else {
                continue;
            };
            if let Some((rec, seq)) = lease {
                let back = LeaseRecord {
                    state: LeaseState::Released,
                    ..rec
                };
                self.0
                    .js
                    .publish(
                        Out::new(names.lease(&e.destination, e.event_id), to_json(&back))
                            .rollup()
                            .expect_last(seq),
                    )
                    .await
                    .map_err(|e| self.count(e))?;
            }
            self.0
                .js
                .nak(&reply, Duration::from_millis(due_ms.saturating_sub(now)))
                .await
                .map_err(|e| self.count(e))?;
            self.unhold(e);
            self.wake(&e.destination);
        }
        Ok(())
    }

    async fn extend(&self, entry: &QueueEntry, until_ms: u64) -> Result<QueueEntry, StoreError> {
        let (dest, id) = (&entry.destination, entry.event_id);
        let rec = match entry.lease {
            Some(nonce) => self.lease_record_for(dest, id, nonce).await?,
            None => self.lease_record(dest, id).await?,
        };
        let Some((rec, seq)) = rec else {
            return Err(StoreError::Conflict(format!("event {id} is not leased")));
        };
        if Some(rec.nonce) != entry.lease || rec.state != LeaseState::Leased {
            return Err(StoreError::Conflict(format!(
                "the lease of event {id} was superseded"
            )));
        }
        let longer = QueueEntry {
            due_ms: until_ms,
            ..rec.entry.clone()
        };
        let names = self.names();
        let next = LeaseRecord {
            until_ms,
            entry: longer.clone(),
            ..rec.clone()
        };
        self.0
            .js
            .publish(
                Out::new(names.lease(dest, id), to_json(&next))
                    .rollup()
                    .expect_last(seq),
            )
            .await
            .map_err(|e| self.count(e))?;
        self.0
            .js
            .nak(
                &rec.reply,
                Duration::from_millis(until_ms.saturating_sub(now_ms())),
            )
            .await
            .map_err(|e| self.count(e))?;
        Ok(longer)
    }

    async fn check_lease(&self, dest: &str, id: EventId, nonce: u64) -> LeaseCheck {
        let rec = match self.lease_record_for(dest, id, nonce).await {
            Ok(Some((r, _))) => r,
            Ok(None) => return LeaseCheck::Unknown,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read a lease.");
                return LeaseCheck::Unknown;
            }
        };
        match rec.state {
            LeaseState::Settled => LeaseCheck::Unknown,
            _ if rec.nonce != nonce => LeaseCheck::Superseded,
            LeaseState::Released => LeaseCheck::Visible,
            LeaseState::Leased if rec.until_ms > now_ms() => LeaseCheck::Current(rec.entry),
            LeaseState::Leased => LeaseCheck::Visible,
        }
    }

    /// The server ends leases (their delayed `-NAK`): nothing to do here.
    fn expire_leases(&self, _dest: &str, _now_ms: u64) -> usize {
        0
    }

    async fn requeue(&self, entries: Vec<QueueEntry>, from_dlq: bool) -> Result<usize, StoreError> {
        let names = self.names().clone();
        let now = now_ms();
        let mut per_entry = Vec::new();
        let mut fresh = Vec::new();
        let mut lines = Vec::new();
        for e in entries {
            if self.contains(&e.destination, e.event_id).await {
                continue;
            }
            self.ensure_band(&e.destination, e.priority).await?;
            let generation = self
                .state_of(e.event_id, &e.destination)
                .await?
                .map_or(0, |s| s.updated_at_ms);
            let state = self.pending_state(&e, now);
            // A FIFO entry joins its line again, unless it is still in it
            // (a dead letter that held its key: it is the head).
            if self.in_line(&e) && !self.heads_line(&e).await? {
                lines.push((e.clone(), vec![state]));
                fresh.push(e);
                continue;
            }
            per_entry.push(vec![
                self.entry_message(&e, now)
                    .msg_id(format!("{}:{}:g{generation}", e.event_id, e.destination)),
                state,
            ]);
            fresh.push(e);
        }
        self.write_events_of(per_entry).await?;
        self.join_lines(lines).await?;
        for e in &fresh {
            if from_dlq {
                self.purge(
                    &names.queues(),
                    &names.dlq(DlqOwner::Destination(&e.destination), e.event_id),
                )
                .await?;
            }
            self.wake(&e.destination);
        }
        Ok(fresh.len())
    }

    async fn contains(&self, dest: &str, id: EventId) -> bool {
        matches!(
            self.state_of(id, dest).await,
            Ok(Some(DeliveryState {
                status: DeliveryStatus::Pending | DeliveryStatus::InFlight,
                ..
            }))
        )
    }

    fn queue_stats(&self, dest: &str, _now_ms: u64) -> Result<QueueStats, StoreError> {
        self.queue(dest, |q| q.stats)
    }

    async fn queue_stats_now(&self, dest: &str, _now_ms: u64) -> Result<QueueStats, StoreError> {
        let stats = self.read_levels(dest).await?;
        self.queue(dest, |q| q.stats = stats)?;
        Ok(stats)
    }

    fn backlog(&self) -> u64 {
        lock(&self.0.queues).values().map(|q| q.stats.depth).sum()
    }

    async fn is_paused(&self, dest: &str) -> Result<bool, StoreError> {
        let names = self.names();
        Ok(
            match self
                .0
                .js
                .last(&names.state(), &names.paused(dest))
                .await
                .map_err(|e| self.count(e))?
            {
                Some(m) => from_json::<bool>("paused", &m.payload)?,
                None => false,
            },
        )
    }

    async fn set_paused(&self, dest: &str, paused: bool) -> Result<(), StoreError> {
        let names = self.names();
        let flag = Out::new(names.paused(dest), to_json(&paused)).rollup();
        if paused {
            // The flag first: gateways stop asking, then the consumers
            // stop answering those that have not seen it yet.
            self.0.js.publish(flag).await.map_err(|e| self.count(e))?;
            self.pause_consumers(dest, true).await
        } else {
            // The consumers first, every band open, and only then the flag
            // that lets the other gateways' dispatchers in: one that came
            // in while a higher band was still paused would take a lower
            // band's entries first.
            self.pause_consumers(dest, false).await?;
            self.0
                .js
                .publish(flag)
                .await
                .map_err(|e| self.count(e))
                .map(|_| ())
        }
    }

    async fn cancel(&self, dest: &str, id: EventId, reason: &str) -> Result<Cancelled, StoreError> {
        let Some(state) = self.state_of(id, dest).await? else {
            return Ok(Cancelled::NotPending);
        };
        if state.status.is_finished() {
            return Ok(Cancelled::NotPending);
        }
        // An attempt running here: it ends first, and its settle cancels
        // (unless it delivered).
        if let Some(h) = lock(&self.0.held).get_mut(&(dest.to_string(), id)) {
            h.cancel = Some(reason.to_string());
            return Ok(Cancelled::AtAttemptEnd);
        }
        let entry = QueueEntry {
            event_id: id,
            destination: dest.to_string(),
            priority: switchyard_core::DEFAULT_PRIORITY,
            due_ms: 0,
            attempt: 0,
            history_base: 0,
            delay_ms: 0,
            enqueued_at_ms: 0,
            ordering_key: None,
            lease: None,
        };
        let mut msgs = self.cancel_messages(&entry, state.attempts, reason);
        // A pull lease ends with it: its receipt settles nothing.
        if let Some((rec, seq)) = self.lease_record(dest, id).await?
            && rec.state != LeaseState::Settled
        {
            msgs.push(lease_settled(self.names(), rec, seq));
        }
        self.write_events_of(vec![msgs]).await?;
        // Out of its band too, so the queue's depth drops now; if another
        // gateway holds it, its settle finds the delivery cancelled.
        self.remove_queued(dest, id).await?;
        // And out of its line: the next entry of its key moves up if it
        // was the head.
        if self.ordered(dest)
            && let Some(e) = self.line_entry(dest, id).await?
        {
            self.leave_line(&e, Vec::new()).await?;
        }
        Ok(Cancelled::Removed)
    }

    async fn purge_queue(&self, dest: &str, reason: &str) -> Result<Purged, StoreError> {
        let names = self.names().clone();
        let queued = self.queued_ids(dest).await?;
        let mut per_entry = Vec::new();
        let mut removed = 0;
        for (id, e) in &queued {
            let state = self.state_of(*id, dest).await?;
            // A dead letter holding its FIFO key is in the line, not the
            // queue: it stays a dead letter (the purge frees the key).
            if state.as_ref().is_some_and(|s| s.status.is_finished()) {
                continue;
            }
            let attempts = state.map_or(e.history_base, |s| s.attempts);
            per_entry.push(self.cancel_messages(e, attempts, reason));
            removed += 1;
        }
        self.write_events_of(per_entry).await?;
        self.purge(&names.queues(), &names.queued_of(dest)).await?;
        let in_flight = lock(&self.0.held).keys().filter(|(d, _)| d == dest).count() as u64;
        Ok(Purged { removed, in_flight })
    }
}

impl JetStreamStore {
    /// Removes `id`'s queued message at `dest`: its schedule subject, or
    /// its message in a band, found by reading the band (a work queue
    /// holds only what is not yet acknowledged). A band message another
    /// gateway holds is removed too; its settle finds the state cancelled.
    /// Past [`CANCEL_SCAN`] messages it is left for the next take to skip.
    async fn remove_queued(&self, dest: &str, id: EventId) -> Result<(), StoreError> {
        let names = self.names().clone();
        let stream = names.queues();
        let mut seq = 1;
        let mut seen = 0;
        while seen < CANCEL_SCAN {
            let got = self
                .0
                .js
                .range(&stream, &names.queued_of(dest), seq, 256)
                .await
                .map_err(|e| self.count(e))?;
            if got.is_empty() {
                break;
            }
            for m in got {
                seq = m.seq + 1;
                seen += 1;
                if Names::is_line(&m.subject) {
                    continue;
                }
                let Ok(e) = from_json::<QueueEntry>("queue entry", &m.payload) else {
                    continue;
                };
                if e.event_id == id {
                    self.0
                        .js
                        .api(
                            &format!("STREAM.MSG.DELETE.{stream}"),
                            &serde_json::json!({ "seq": m.seq, "no_erase": true }),
                        )
                        .await
                        .map_err(|e| self.count(e))?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Pauses (or resumes) every band consumer of `dest`: the hard stop for
    /// gateways that have not seen the flag yet.
    ///
    /// The server answers `CONSUMER.PAUSE` once the change is proposed, and
    /// each consumer's leader applies it a few milliseconds later, on its
    /// own; meanwhile a paused consumer answers a pull with "no messages",
    /// as an empty one does. So a resume returns only once every band's
    /// leader reports it open: a dispatcher let in earlier could find the
    /// most urgent band still shut and take a lower band's entries first.
    async fn pause_consumers(&self, dest: &str, paused: bool) -> Result<(), StoreError> {
        let names = self.names();
        let mut bands = self.bands(dest).await?;
        bands.sort_unstable_by(|a, b| b.cmp(a));
        for &p in &bands {
            let body = if paused {
                serde_json::json!({ "pause_until": "2999-01-01T00:00:00Z" })
            } else {
                serde_json::json!({})
            };
            self.0
                .js
                .api(&names.band_api("PAUSE", dest, p), &body)
                .await
                .map_err(|e| self.count(e))?;
        }
        if !paused {
            self.wait_resumed(dest, &bands).await;
        }
        Ok(())
    }

    /// Waits (at most [`RESUME_APPLIED`]) until each band's leader reports
    /// the resume applied. Never an error: every band has been resumed by
    /// now, so a leader that is slow to apply it, or a `CONSUMER.INFO` that
    /// fails, only means its entries may go out a little out of priority
    /// order; failing the resume would leave the destination flagged paused
    /// with its consumers open.
    async fn wait_resumed(&self, dest: &str, bands: &[u8]) {
        let names = self.names();
        let deadline = tokio::time::Instant::now() + RESUME_APPLIED;
        for &p in bands {
            loop {
                let v = match self
                    .0
                    .js
                    .api(&names.band_api("INFO", dest, p), &serde_json::Value::Null)
                    .await
                {
                    Ok(v) => v,
                    Err(e) => {
                        let e = self.count(e);
                        tracing::warn!(destination = %dest, priority = p, error = %e,
                            "Cannot tell whether a resumed band is open yet; the destination is resumed without waiting for it.");
                        return;
                    }
                };
                if v["paused"] != true {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    // The server applies it later. Until then this band's
                    // entries wait; none is lost.
                    tracing::warn!(destination = %dest, priority = p,
                        "A resumed band is still paused on its consumer's leader; its entries go out once it applies the resume.");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }

    /// The ids of an owner's dead letters, in id order.
    async fn dlq_ids(&self, owner: DlqOwner<'_>) -> Result<Vec<EventId>, StoreError> {
        let names = self.names();
        let mut ids = Vec::new();
        let mut offset = 0u64;
        loop {
            let v = self
                .0
                .js
                .api(
                    &format!("STREAM.INFO.{}", names.queues()),
                    &serde_json::json!({ "subjects_filter": names.dlq_of(owner), "offset": offset }),
                )
                .await
                .map_err(|e| self.count(e))?;
            let subjects = v["state"]["subjects"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let n = subjects.len() as u64;
            ids.extend(
                subjects
                    .keys()
                    .filter_map(|s| Names::last_token(s).parse::<EventId>().ok()),
            );
            offset += n;
            let total = v["total"].as_u64().unwrap_or(0);
            if n == 0 || offset >= total {
                break;
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }
}

#[async_trait]
impl DeadLetters for JetStreamStore {
    async fn dlq_page(
        &self,
        owner: DlqOwner<'_>,
        cursor: Option<EventId>,
        order: ListOrder,
        limit: usize,
    ) -> Result<(Vec<DlqEntry>, Option<EventId>), StoreError> {
        let mut ids = self.dlq_ids(owner).await?;
        if order == ListOrder::Desc {
            ids.reverse();
        }
        let after: Vec<EventId> = ids
            .into_iter()
            .filter(|id| match (cursor, order) {
                (None, _) => true,
                (Some(c), ListOrder::Asc) => *id > c,
                (Some(c), ListOrder::Desc) => *id < c,
            })
            .collect();
        let more = after.len() > limit;
        let mut out = Vec::with_capacity(limit.min(after.len()));
        for id in after.into_iter().take(limit) {
            if let Some(e) = self.dlq_entry(owner, id).await? {
                out.push(e);
            }
        }
        let next = if more {
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
        Ok(self
            .last_json("dlq", &self.names().dlq(owner, id))
            .await?
            .map(|(e, _)| e))
    }

    async fn dlq_depth(&self, owner: DlqOwner<'_>) -> Result<u64, StoreError> {
        Ok(self.dlq_ids(owner).await?.len() as u64)
    }

    async fn dlq_remove(&self, owner: DlqOwner<'_>, ids: &[EventId]) -> Result<(), StoreError> {
        let names = self.names().clone();
        for id in ids {
            self.purge(&names.queues(), &names.dlq(owner, *id)).await?;
            // A dead letter that held its FIFO key lets the next one go.
            if let DlqOwner::Destination(dest) = owner
                && self.holds_dead_letters(dest)
                && let Some(e) = self.line_entry(dest, *id).await?
            {
                self.leave_line(&e, Vec::new()).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl History for JetStreamStore {
    async fn deliveries(&self, id: EventId) -> Result<Vec<(String, DeliveryState)>, StoreError> {
        self.states(id).await
    }

    async fn delivery_state(
        &self,
        id: EventId,
        dest: &str,
    ) -> Result<Option<DeliveryState>, StoreError> {
        self.state_of(id, dest).await
    }

    async fn attempts(&self, id: EventId, dest: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let names = self.names();
        // One record per attempt number: an attempt written again (a settle
        // retried after its answer was lost) keeps its later copy.
        let mut out: std::collections::BTreeMap<u32, AttemptRecord> = Default::default();
        let mut seq = 1;
        loop {
            let got = self
                .0
                .js
                .range(&names.queues(), &names.attempts_of(id, dest), seq, 256)
                .await
                .map_err(|e| self.count(e))?;
            if got.is_empty() {
                break;
            }
            for m in got {
                seq = m.seq + 1;
                let a: AttemptRecord = from_json("attempt", &m.payload)?;
                out.insert(a.attempt, a);
            }
        }
        Ok(out.into_values().collect())
    }
}
