//! The event log, routing, history and housekeeping on fjall.

use std::time::Duration;

use async_trait::async_trait;
use switchyard_core::{Event, EventId, NewEvent, now_ms};
use switchyard_store::{
    Appended, AttemptRecord, DeliveryState, DeliveryStatus, EventLog, EventQuery, History,
    ListOrder, MAX_VERDICTS, Maintenance, PluginVerdict, Routed, Routing, StoreError, Transformed,
};
use tokio::sync::oneshot;
use ulid::Ulid;

use crate::writer::{self, AppendRequest, Ks, Op, Request};
use crate::{Fj, FjallStore, codec, keys};

/// How long `flush` waits at stop for memtables to be written out.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

impl FjallStore {
    fn read_event(&self, id: Ulid) -> Result<Option<Event>, StoreError> {
        match self.ks.events.get(keys::event(id)).fj()? {
            Some(v) => Ok(Some(codec::decode_event(id, &v)?)),
            None => Ok(None),
        }
    }

    /// Delivery states of one event as stored (no in-flight overlay).
    pub(crate) fn stored_deliveries(
        &self,
        id: Ulid,
    ) -> Result<Vec<(String, DeliveryState)>, StoreError> {
        let mut out = Vec::new();
        for guard in self.ks.dstate.prefix(keys::event(id)) {
            let (k, v) = guard.into_inner().fj()?;
            let dest = String::from_utf8_lossy(&k[16..]).into_owned();
            out.push((dest, codec::from_json("dstate", &v)?));
        }
        Ok(out)
    }

    /// `stored_deliveries`, with "in flight" from the live queues.
    fn live_deliveries(&self, id: Ulid) -> Result<Vec<(String, DeliveryState)>, StoreError> {
        let mut states = self.stored_deliveries(id)?;
        for (dest, st) in &mut states {
            if self.is_in_flight(dest, id) {
                st.status = DeliveryStatus::InFlight;
            }
        }
        Ok(states)
    }

    fn matches(&self, q: &EventQuery, e: &Event) -> Result<bool, StoreError> {
        if q.topic.as_deref().is_some_and(|t| t != e.topic) {
            return Ok(false);
        }
        if q.destination.is_none() && q.state.is_none() {
            return Ok(true);
        }
        Ok(self.live_deliveries(e.id)?.iter().any(|(dest, st)| {
            q.destination.as_deref().is_none_or(|d| d == dest)
                && q.state.is_none_or(|s| s == st.status)
        }))
    }
}

#[async_trait]
impl EventLog for FjallStore {
    async fn append(
        &self,
        topic: &str,
        idempotency_key: Option<String>,
        window: Duration,
        events: Vec<NewEvent>,
        routing: Routing,
    ) -> Result<Appended, StoreError> {
        let (reply, rx) = oneshot::channel();
        let req = Request::Append(AppendRequest {
            topic: topic.to_owned(),
            idempotency_key,
            window,
            events,
            routing,
            reply,
        });
        self.send(req)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        self.read_event(id)
    }

    async fn transformed(&self, id: EventId) -> Result<Option<Transformed>, StoreError> {
        match self.ks.transformed.get(keys::event(id)).fj()? {
            Some(v) => Ok(Some(codec::decode_transformed(&v)?)),
            None => Ok(None),
        }
    }

    async fn verdicts(&self, id: EventId) -> Result<Vec<PluginVerdict>, StoreError> {
        match self.ks.transformed.get(keys::verdicts(id)).fj()? {
            Some(v) => codec::from_json("transformed", &v),
            None => Ok(Vec::new()),
        }
    }

    async fn pending_routes(
        &self,
        after: Option<EventId>,
        max: usize,
    ) -> Result<Vec<Event>, StoreError> {
        // Starting after the low-water mark skips the tombstones that
        // routing leaves at the front of the keyspace.
        let start = after.map(|a| keys::event(Ulid(a.0.wrapping_add(1))));
        let iter = match start {
            Some(s) => self.ks.pending_route.range(s..),
            None => self.ks.pending_route.iter(),
        };
        let mut out = Vec::new();
        for guard in iter.take(max) {
            let key = guard.key().fj()?;
            let Some(id) = keys::decode_event(&key) else {
                continue;
            };
            match self.read_event(id)? {
                Some(e) => out.push(e),
                None => tracing::warn!(event_id = %id, "Pending route without its event; skipped."),
            }
        }
        Ok(out)
    }

    async fn route(&self, routed: Vec<Routed>) -> Result<(), StoreError> {
        let now = now_ms();
        let mut ops = Vec::new();
        let mut deltas = Vec::new();
        let mut queued = Vec::new();
        for r in routed {
            for e in r.entries {
                if self
                    .ks
                    .dstate
                    .contains_key(keys::dstate(r.event_id, &e.destination))
                    .fj()?
                {
                    continue;
                }
                ops.push(Op::Put(
                    Ks::DState,
                    keys::dstate(r.event_id, &e.destination),
                    codec::to_json(&DeliveryState {
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        updated_at_ms: now,
                        last_error: None,
                        next_attempt_ms: (e.due_ms > now).then_some(e.due_ms),
                    }),
                ));
                crate::queues::add_entry(&mut ops, &mut deltas, &e);
                queued.push(e);
            }
            if let Some(t) = &r.transformed {
                ops.push(Op::Put(
                    Ks::Transformed,
                    keys::event(r.event_id).to_vec(),
                    codec::encode_transformed(t),
                ));
            }
            // A routing without plugins leaves an earlier routing's verdicts
            // (a topic-DLQ replay after the chain was removed) as they were:
            // they say what happened then.
            if !r.verdicts.is_empty() {
                let kept = &r.verdicts[..r.verdicts.len().min(MAX_VERDICTS)];
                ops.push(Op::Put(
                    Ks::Transformed,
                    keys::verdicts(r.event_id),
                    codec::to_json(&kept),
                ));
            }
            if let Some((topic, entry)) = &r.topic_dead_letter {
                ops.push(Op::Put(
                    Ks::TopicDlq,
                    keys::dlq(topic, r.event_id),
                    codec::to_json(entry),
                ));
            }
            ops.push(Op::Del(Ks::PendingRoute, keys::event(r.event_id).to_vec()));
        }
        self.write_counted(ops, deltas, false).await?;
        self.push_all(queued)
    }

    async fn list_events(
        &self,
        q: &EventQuery,
    ) -> Result<(Vec<Event>, Option<EventId>), StoreError> {
        let from = Ulid::from_parts(q.since_ms, 0);
        let to = Ulid::from_parts(q.until_ms.min((1 << 48) - 1), u128::MAX);
        let (lo, hi) = match (q.order, q.cursor) {
            (_, None) => (from, to),
            (ListOrder::Asc, Some(c)) => match c.0.checked_add(1) {
                Some(n) => (Ulid(n).max(from), to),
                None => return Ok((Vec::new(), None)),
            },
            (ListOrder::Desc, Some(c)) => match c.0.checked_sub(1) {
                Some(n) => (from, Ulid(n).min(to)),
                None => return Ok((Vec::new(), None)),
            },
        };
        if lo > hi {
            return Ok((Vec::new(), None));
        }
        let limit = q.limit.max(1);
        let mut out = Vec::new();
        let range = self.ks.events.range(keys::event(lo)..=keys::event(hi));
        // The keys are ids, so walking the range backwards is newest first
        // at the cost of the same seek.
        let iter: Box<dyn Iterator<Item = _>> = match q.order {
            ListOrder::Asc => Box::new(range),
            ListOrder::Desc => Box::new(range.rev()),
        };
        for (scanned, guard) in iter.enumerate() {
            let (k, v) = guard.into_inner().fj()?;
            let Some(id) = keys::decode_event(&k) else {
                continue;
            };
            let e = codec::decode_event(id, &v)?;
            if self.matches(q, &e)? {
                out.push(e);
                if out.len() >= limit {
                    return Ok((out, Some(id)));
                }
            }
            if scanned + 1 >= q.max_scanned.max(1) {
                return Ok((out, Some(id)));
            }
        }
        Ok((out, None))
    }

    async fn replay_topic_dead_letters(
        &self,
        topic: &str,
        ids: &[EventId],
    ) -> Result<(), StoreError> {
        let mut ops = Vec::new();
        for id in ids {
            ops.push(Op::Del(Ks::TopicDlq, keys::dlq(topic, *id)));
            ops.push(Op::Put(
                Ks::PendingRoute,
                keys::event(*id).to_vec(),
                topic.as_bytes().to_vec(),
            ));
        }
        self.write(ops, true).await
    }
}

#[async_trait]
impl History for FjallStore {
    async fn deliveries(&self, id: EventId) -> Result<Vec<(String, DeliveryState)>, StoreError> {
        self.live_deliveries(id)
    }

    async fn delivery_state(
        &self,
        id: EventId,
        dest: &str,
    ) -> Result<Option<DeliveryState>, StoreError> {
        match self.ks.dstate.get(keys::dstate(id, dest)).fj()? {
            Some(v) => Ok(Some(codec::from_json("dstate", &v)?)),
            None => Ok(None),
        }
    }

    async fn attempts(&self, id: EventId, dest: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut out = Vec::new();
        for guard in self.ks.attempts.prefix(keys::attempts_prefix(id, dest)) {
            let (_, v) = guard.into_inner().fj()?;
            out.push(codec::from_json("attempts", &v)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl Maintenance for FjallStore {
    async fn expire_idempotency(
        &self,
        older_than_ms: u64,
        max: usize,
    ) -> Result<usize, StoreError> {
        let mut ops = Vec::new();
        for guard in self
            .ks
            .idem_expiry
            .range(..older_than_ms.to_be_bytes().to_vec())
            .take(max)
        {
            let k = guard.key().fj()?;
            let idem_key = k[8..].to_vec();
            // The key may have been re-used after an earlier expiry: only drop
            // the `idem` record if it is the one this expiry entry describes.
            if let Some(v) = self.ks.idem.get(&idem_key).fj()?
                && let Some((created, _)) = writer::decode_idem(&v)
                && created.to_be_bytes() == k[..8]
            {
                ops.push(Op::Del(Ks::Idem, idem_key));
            }
            ops.push(Op::Del(Ks::IdemExpiry, k.to_vec()));
        }
        let n = ops.len();
        self.write(ops, false).await?;
        Ok(n)
    }

    async fn sweep_retention(
        &self,
        cutoff_ms: u64,
        after: Option<EventId>,
        max: usize,
    ) -> Result<(usize, Option<EventId>), StoreError> {
        let start = after.unwrap_or(Ulid::nil());
        let end = Ulid::from_parts(cutoff_ms, 0);
        let mut ops = Vec::new();
        let mut removed = 0;
        let mut low_water = after;
        let mut blocked = false;
        for guard in self
            .ks
            .events
            .range(keys::event(start)..keys::event(end))
            .take(max)
        {
            let (k, v) = guard.into_inner().fj()?;
            let Some(id) = keys::decode_event(&k) else {
                continue;
            };
            let states = self.stored_deliveries(id)?;
            let finished = !self.ks.pending_route.contains_key(keys::event(id)).fj()?
                && states.iter().all(|(_, s)| s.status.is_finished());
            if !finished {
                blocked = true;
                continue;
            }
            if !blocked {
                low_water = Some(id);
            }
            let topic = codec::decode_event(id, &v)
                .map(|e| e.topic)
                .unwrap_or_default();
            for (dest, _) in states {
                ops.push(Op::Del(Ks::DState, keys::dstate(id, &dest)));
                ops.push(Op::Del(Ks::Dlq, keys::dlq(&dest, id)));
                for g in self.ks.attempts.prefix(keys::attempts_prefix(id, &dest)) {
                    ops.push(Op::Del(Ks::Attempts, g.key().fj()?.to_vec()));
                }
            }
            ops.push(Op::Del(Ks::TopicDlq, keys::dlq(&topic, id)));
            ops.push(Op::Del(Ks::Transformed, keys::event(id).to_vec()));
            ops.push(Op::Del(Ks::Transformed, keys::verdicts(id)));
            ops.push(Op::Del(Ks::Events, keys::event(id).to_vec()));
            removed += 1;
        }
        self.write(ops, false).await?;
        Ok((removed, low_water))
    }

    fn flush(&self) -> Result<(), StoreError> {
        // The journal is made durable first: whatever happens below, what
        // was acknowledged is on disk.
        self.db.persist(fjall::PersistMode::SyncAll).fj()?;
        // Memtables written out to tables make the next open quick: it
        // replays only the journal written after them, none after a clean
        // stop. Waited for with a bound, never forever: a flush that cannot
        // finish (its directory removed under it, a full disk) leaves the
        // journal to replay, which is slower to open but loses nothing.
        // (`rotate_memtable` is hidden in fjall's docs; its own tests use it
        // to force a flush.)
        for ks in self.ks.all() {
            ks.rotate_memtable().fj()?;
        }
        let deadline = std::time::Instant::now() + FLUSH_WAIT;
        while self
            .ks
            .all()
            .iter()
            .any(|ks| ks.sealed_memtable_count() > 0)
        {
            if !self.ks.events.path().exists() {
                // The directory is gone (a test's temp dir, removed as it
                // ends): there is nothing left to flush into.
                break;
            }
            if std::time::Instant::now() >= deadline {
                tracing::warn!(
                    waited = ?FLUSH_WAIT,
                    "Memtables were not all written out at stop; the next start replays the journal."
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn disk_space(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    fn register_metrics(&self, r: &mut prometheus_client::registry::Registry) {
        use prometheus_client::registry::Unit;
        r.register(
            "store_commit_batch_size",
            "Requests folded into one group commit.",
            self.stats.batch_size.clone(),
        );
        r.register_with_unit(
            "store_commit_duration",
            "Time to apply and persist (fsync in sync mode) one group commit.",
            Unit::Seconds,
            self.stats.commit_seconds.clone(),
        );
        r.register(
            "store_commits",
            "Group commits written.",
            self.stats.commits.clone(),
        );
        r.register_with_unit(
            "store_write_buffer",
            "Memtable bytes not yet written out to tables (all keyspaces).",
            Unit::Bytes,
            self.stats.write_buffer_bytes.clone(),
        );
        r.register_with_unit(
            "store_write_buffer_wait",
            "Time group commits were held for memtables to be written out (the write buffer was full).",
            Unit::Seconds,
            self.stats.write_buffer_wait.clone(),
        );
    }
}
