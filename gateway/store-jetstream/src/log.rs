//! Events, routing and housekeeping on JetStream.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use switchyard_core::{Event, EventId, NewEvent, now_ms};
use switchyard_store::{
    Appended, DeliveryState, DeliveryStatus, DlqOwner, EventLog, EventQuery, ListOrder,
    Maintenance, PluginVerdict, Routed, Routing, StoreError, Transformed,
};

use crate::js::{JsError, MAX_BATCH, Out, code};
use crate::names::{Names, untoken};
use crate::{Claim, JetStreamStore, decode_event, encode_event, from_json, lock, to_json};

/// An idempotency key's record, shared by every gateway.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub ids: Vec<EventId>,
    pub received_at_ms: u64,
    /// The events are stored (false: a gateway is writing them, or died
    /// while it did).
    pub done: bool,
}

/// A plugin's rewrite and the chain's verdicts, stored together.
#[derive(Serialize, Deserialize)]
struct Rewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plugin: Option<String>,
    /// Base64 would cost a third more: the payload is stored as a JSON
    /// byte string only when there is one (rewrites are small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(default)]
    binary: Option<Vec<u8>>,
    #[serde(default)]
    verdicts: Vec<PluginVerdict>,
}

/// How long a resend waits for another gateway's write of the same key
/// before finishing it itself.
const KEY_WAIT: Duration = Duration::from_secs(1);

/// The record of a plugin's rewrite of event `id` and the chain's
/// verdicts (replacing an earlier routing's).
pub(crate) fn rewrite_message(
    names: &Names,
    id: EventId,
    t: Option<&Transformed>,
    verdicts: &[PluginVerdict],
) -> Out {
    let (payload, binary) = match t.map(|t| std::str::from_utf8(&t.payload)) {
        Some(Ok(s)) => (Some(s.to_string()), None),
        Some(Err(_)) => (None, t.map(|t| t.payload.to_vec())),
        None => (None, None),
    };
    let rw = Rewrite {
        content_type: t.map(|t| t.content_type.clone()),
        headers: t.map(|t| t.headers.clone()).unwrap_or_default(),
        plugin: t.and_then(|t| t.plugin.clone()),
        payload,
        binary,
        verdicts: verdicts.to_vec(),
    };
    Out::new(names.transformed(id), to_json(&rw)).rollup()
}

/// A routing's batch is cut into atomic batches of whole events.
fn chunks(per_event: Vec<Vec<Out>>) -> Vec<Vec<Out>> {
    let mut out: Vec<Vec<Out>> = Vec::new();
    let mut cur: Vec<Out> = Vec::new();
    for msgs in per_event {
        if !cur.is_empty() && cur.len() + msgs.len() > MAX_BATCH {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(msgs);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl JetStreamStore {
    pub(crate) fn names(&self) -> &Names {
        &self.0.names
    }

    /// Writes `batches` (each one atomic); a batch refused because a Msg-Id
    /// in it was already stored is retried one event at a time, and an
    /// event whose every message is a duplicate counts as written (an
    /// earlier try committed it, atomically).
    pub(crate) async fn write_events_of(&self, per_event: Vec<Vec<Out>>) -> Result<(), StoreError> {
        let singles: Vec<Vec<Out>> = per_event.clone();
        let mut retry_singly = false;
        for b in chunks(per_event) {
            if b.is_empty() {
                continue;
            }
            match self.0.js.batch(b).await {
                Ok(_) => {
                    self.0.metrics.batches.inc();
                }
                Err(e) if e.is(code::BATCH_DUPLICATE) => retry_singly = true,
                Err(e) => return Err(self.count(e)),
            };
        }
        if retry_singly {
            for msgs in singles {
                if msgs.is_empty() {
                    continue;
                }
                match self.0.js.batch(msgs).await {
                    Ok(_) => {}
                    Err(e) if e.is(code::BATCH_DUPLICATE) => {}
                    Err(e) => return Err(self.count(e)),
                }
            }
        }
        Ok(())
    }

    pub(crate) fn count(&self, e: JsError) -> StoreError {
        match &e {
            JsError::Unavailable(_) | JsError::NoResponders(_) => self.0.metrics.unavailable.inc(),
            e if e.is_conflict() => self.0.metrics.conflicts.inc(),
            _ => 0,
        };
        e.into()
    }

    async fn load_event(&self, id: EventId) -> Result<Option<(Event, bool)>, StoreError> {
        let names = self.names();
        let Some(m) = self
            .0
            .js
            .last(&names.events(), &names.event_any_topic(id))
            .await
            .map_err(|e| self.count(e))?
        else {
            return Ok(None);
        };
        let Some((_, topic, _)) = names.parse_event(&m.subject) else {
            return Ok(None);
        };
        decode_event(topic, id, &m.payload).map(Some)
    }

    async fn rewrite(&self, id: EventId) -> Result<Option<Rewrite>, StoreError> {
        let names = self.names();
        match self
            .0
            .js
            .last(&names.queues(), &names.transformed(id))
            .await
            .map_err(|e| self.count(e))?
        {
            Some(m) => from_json("transformed", &m.payload).map(Some),
            None => Ok(None),
        }
    }

    /// The delivery states of an event, by destination.
    pub(crate) async fn states(
        &self,
        id: EventId,
    ) -> Result<Vec<(String, DeliveryState)>, StoreError> {
        let names = self.names();
        let got = self
            .0
            .js
            .multi_last(&names.queues(), &[names.dstates_of(id)], 1024)
            .await
            .map_err(|e| self.count(e))?;
        let mut out = Vec::with_capacity(got.len());
        for m in got {
            let dest = untoken(Names::last_token(&m.subject));
            out.push((dest, from_json("dstate", &m.payload)?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The stream sequence of event `id`, if stored.
    async fn event_seq(&self, id: EventId) -> Result<Option<u64>, StoreError> {
        let names = self.names();
        Ok(self
            .0
            .js
            .last(&names.events(), &names.event_any_topic(id))
            .await
            .map_err(|e| self.count(e))?
            .map(|m| m.seq))
    }

    async fn publish_events(
        &self,
        topic: &str,
        ids: &[EventId],
        received_at_ms: u64,
        events: &[NewEvent],
        route: bool,
    ) -> Result<(), StoreError> {
        let names = self.names();
        let msgs: Vec<Vec<Out>> = ids
            .iter()
            .zip(events)
            .map(|(id, e)| {
                vec![
                    Out::new(
                        names.event(topic, *id),
                        encode_event(received_at_ms, &e.meta, route, &e.payload),
                    )
                    .msg_id(id),
                ]
            })
            .collect();
        self.write_events_of(msgs).await
    }

    /// Finishes an idempotency key another gateway began and did not mark
    /// done within [`KEY_WAIT`]: its sender got no 202, so this resend
    /// writes the events under the ids the record names (the same Msg-Ids,
    /// so an earlier write that did land is not stored twice).
    async fn resume_key(
        &self,
        subject: &str,
        topic: &str,
        events: &[NewEvent],
        routing: Routing,
        window: Duration,
    ) -> Result<Appended, StoreError> {
        let names = self.names();
        let deadline = tokio::time::Instant::now() + KEY_WAIT;
        loop {
            let Some(m) = self
                .0
                .js
                .last(&names.state(), subject)
                .await
                .map_err(|e| self.count(e))?
            else {
                // Expired meanwhile: the window has passed.
                return Err(StoreError::Conflict(
                    "the idempotency key expired while it was being written; retry".into(),
                ));
            };
            let rec: KeyRecord = from_json("idempotency", &m.payload)?;
            if rec.done {
                return Ok(Appended::Duplicate { ids: rec.ids });
            }
            if tokio::time::Instant::now() >= deadline {
                if rec.ids.len() != events.len() {
                    // Not the same request: keep the first one's answer.
                    return Ok(Appended::Duplicate { ids: rec.ids });
                }
                self.publish_events(
                    topic,
                    &rec.ids,
                    rec.received_at_ms,
                    events,
                    routing == Routing::Pending,
                )
                .await?;
                let done = KeyRecord { done: true, ..rec };
                self.0
                    .js
                    .publish(Out::new(subject, to_json(&done)).rollup().ttl(window))
                    .await
                    .map_err(|e| self.count(e))?;
                return Ok(Appended::Duplicate { ids: done.ids });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[async_trait]
impl EventLog for JetStreamStore {
    async fn append(
        &self,
        topic: &str,
        idempotency_key: Option<String>,
        window: Duration,
        events: Vec<NewEvent>,
        routing: Routing,
    ) -> Result<Appended, StoreError> {
        let received_at_ms = now_ms();
        let ids: Vec<EventId> = {
            let mut g = lock(&self.0.ids);
            events
                .iter()
                .map(|_| g.generate().unwrap_or_else(|_| ulid::Ulid::new()))
                .collect()
        };
        let names = self.names();
        let key_subject = idempotency_key
            .as_deref()
            .map(|k| names.idempotency(topic, k));
        if let Some(subject) = &key_subject {
            let rec = KeyRecord {
                ids: ids.clone(),
                received_at_ms,
                done: false,
            };
            // Created only if absent: the first gateway to write the key
            // decides its ids.
            match self
                .0
                .js
                .publish(Out::new(subject, to_json(&rec)).expect_last(0).ttl(window))
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {
                    return self
                        .resume_key(subject, topic, &events, routing, window)
                        .await;
                }
                Err(e) => return Err(self.count(e)),
            }
        }
        self.publish_events(
            topic,
            &ids,
            received_at_ms,
            &events,
            routing == Routing::Pending,
        )
        .await?;
        if let Some(subject) = &key_subject {
            let rec = KeyRecord {
                ids: ids.clone(),
                received_at_ms,
                done: true,
            };
            self.0
                .js
                .publish(Out::new(subject, to_json(&rec)).rollup().ttl(window))
                .await
                .map_err(|e| self.count(e))?;
        }
        Ok(Appended::New {
            ids,
            received_at_ms,
        })
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        Ok(self.load_event(id).await?.map(|(e, _)| e))
    }

    async fn transformed(&self, id: EventId) -> Result<Option<Transformed>, StoreError> {
        let Some(r) = self.rewrite(id).await? else {
            return Ok(None);
        };
        let Some(content_type) = r.content_type else {
            return Ok(None);
        };
        let payload = match (r.payload, r.binary) {
            (Some(s), _) => bytes::Bytes::from(s),
            (None, Some(b)) => bytes::Bytes::from(b),
            (None, None) => bytes::Bytes::new(),
        };
        Ok(Some(Transformed {
            content_type,
            headers: r.headers,
            payload,
            plugin: r.plugin,
        }))
    }

    async fn verdicts(&self, id: EventId) -> Result<Vec<PluginVerdict>, StoreError> {
        Ok(self
            .rewrite(id)
            .await?
            .map(|r| r.verdicts)
            .unwrap_or_default())
    }

    fn pending_routes_wait(&self) -> bool {
        true
    }

    async fn pending_routes(
        &self,
        _after: Option<EventId>,
        max: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let names = self.names();
        let (stream, consumer) = (names.events(), names.route_consumer());
        // What is there now; with nothing, a long poll for the first event
        // (the server hands it over the moment any gateway stores one),
        // then whatever came with it.
        // Claims still held here are a batch whose routing failed: back to
        // the server first, so the retry routes them before newer events.
        self.hand_back_claims().await;
        // Every pull names the route consumer's priority group: when it is
        // pinned, only the gateway holding the pin gets events.
        let pin = &self.0.route_pin;
        let js = &self.0.js;
        let mut got = js
            .fetch_pinned(&stream, consumer, max, Duration::ZERO, pin)
            .await
            .map_err(|e| self.count(e))?;
        if got.is_empty() {
            got = js
                .fetch_pinned(&stream, consumer, 1, Duration::from_secs(1), pin)
                .await
                .map_err(|e| self.count(e))?;
            if !got.is_empty() && max > 1 {
                let more = js
                    .fetch_pinned(&stream, consumer, max - 1, Duration::ZERO, pin)
                    .await
                    .map_err(|e| self.count(e))?;
                got.extend(more);
            }
        }
        // Redeliveries (a router that died, a pin that moved) come first
        // but not always in order among themselves: route in the order the
        // events were stored.
        got.sort_by_key(|d| d.stream_seq);
        let mut out = Vec::with_capacity(got.len());
        for d in got {
            let Some((kind, topic, id)) = names.parse_event(&d.subject) else {
                tracing::warn!(subject = %d.subject, "A message in the events stream that is not an event; acknowledged and skipped.");
                let _ = self.0.js.ack_written(&d.reply).await;
                continue;
            };
            let (event, route, replay) = if kind == "rp" {
                match self.load_event(id).await? {
                    Some((e, _)) => (e, true, Some(d.stream_seq)),
                    None => {
                        let _ = self.0.js.ack_written(&d.reply).await;
                        continue;
                    }
                }
            } else {
                let (e, route) = decode_event(topic, id, &d.payload)?;
                (e, route, None)
            };
            if !route {
                // A topic that routes nowhere: stored, and nothing to do.
                let _ = self.0.js.ack_written(&d.reply).await;
                continue;
            }
            lock(&self.0.claims).insert(
                id,
                Claim {
                    reply: d.reply,
                    recheck: d.delivered > 1 || replay.is_some(),
                    replay,
                },
            );
            out.push(event);
        }
        Ok(out)
    }

    async fn route(&self, routed: Vec<Routed>) -> Result<(), StoreError> {
        let names = self.names().clone();
        let now = now_ms();
        let mut per_event: Vec<Vec<Out>> = Vec::with_capacity(routed.len());
        let mut rung: HashSet<String> = HashSet::new();
        let mut lines = Vec::new();
        for r in &routed {
            let id = r.event_id;
            let (recheck, replay) = lock(&self.0.claims)
                .get(&id)
                .map(|c| (c.recheck, c.replay))
                .unwrap_or((true, None));
            let existing: HashSet<String> = if recheck {
                self.states(id).await?.into_iter().map(|(d, _)| d).collect()
            } else {
                HashSet::new()
            };
            let generation = match replay {
                Some(seq) => format!("rp{seq}"),
                None => "r".to_string(),
            };
            let mut msgs = Vec::new();
            if r.transformed.is_some() || !r.verdicts.is_empty() {
                msgs.push(rewrite_message(
                    &names,
                    id,
                    r.transformed.as_ref(),
                    &r.verdicts,
                ));
            }
            for e in &r.entries {
                if existing.contains(&e.destination) {
                    continue;
                }
                self.ensure_band(&e.destination, e.priority).await?;
                let state = self.pending_state(e, now);
                if self.in_line(e) {
                    // Joins its key's line after this batch (with its
                    // state, so a crash in between routes it again).
                    lines.push((e.clone(), vec![state]));
                    continue;
                }
                msgs.push(
                    self.entry_message(e, now)
                        .msg_id(format!("{id}:{}:{generation}", e.destination)),
                );
                msgs.push(state);
                rung.insert(e.destination.clone());
            }
            if let Some((topic, dl)) = &r.topic_dead_letter {
                msgs.push(
                    Out::new(names.dlq(DlqOwner::Topic(topic), id), to_json(dl))
                        .rollup()
                        .msg_id(format!("{id}:t:{generation}")),
                );
            }
            per_event.push(msgs);
        }
        self.write_events_of(per_event).await?;
        self.join_lines(lines).await?;
        // Written: the claims end. An ack lost here only redelivers the
        // event, whose entries are then found (Msg-Ids, delivery states).
        for r in &routed {
            let claim = lock(&self.0.claims).remove(&r.event_id);
            if let Some(c) = claim
                && let Err(e) = self.0.js.ack_written(&c.reply).await
            {
                tracing::warn!(event_id = %r.event_id, error = %e,
                    "Cannot acknowledge a routed event; it will be routed again (idempotently).");
            }
        }
        for d in rung {
            self.wake(&d);
        }
        Ok(())
    }

    async fn list_events(
        &self,
        query: &EventQuery,
    ) -> Result<(Vec<Event>, Option<EventId>), StoreError> {
        let names = self.names();
        let stream = names.events();
        let filter = names.events_of(query.topic.as_deref());
        let until = if query.until_ms == 0 {
            u64::MAX
        } else {
            query.until_ms
        };
        let limit = query.limit.max(1);
        let page = (limit * 2).clamp(16, 256);
        let mut out = Vec::new();
        let mut scanned = 0usize;
        let mut last_id = None;
        let cursor_seq = match query.cursor {
            Some(c) => self.event_seq(c).await?,
            None => None,
        };
        let keep = |m: crate::js::Stored| -> Result<Option<Event>, StoreError> {
            let Some(("ev", topic, id)) = names.parse_event(&m.subject) else {
                return Ok(None);
            };
            Ok(Some(decode_event(topic, id, &m.payload)?.0))
        };
        match query.order {
            ListOrder::Asc => {
                let mut seq = cursor_seq.map_or(1, |s| s + 1);
                'outer: loop {
                    let got = self
                        .0
                        .js
                        .range(&stream, &filter, seq, page)
                        .await
                        .map_err(|e| self.count(e))?;
                    if got.is_empty() {
                        last_id = None;
                        break;
                    }
                    for m in got {
                        seq = m.seq + 1;
                        scanned += 1;
                        let Some(e) = keep(m)? else { continue };
                        last_id = Some(e.id);
                        if e.received_at_ms >= query.since_ms
                            && e.received_at_ms <= until
                            && self.matches(query, e.id).await?
                        {
                            out.push(e);
                        }
                        if out.len() >= limit || scanned >= query.max_scanned.max(limit) {
                            break 'outer;
                        }
                    }
                }
            }
            ListOrder::Desc => {
                let last_seq = match cursor_seq {
                    Some(s) => s.saturating_sub(1),
                    None => self
                        .0
                        .js
                        .api(&format!("STREAM.INFO.{stream}"), &serde_json::Value::Null)
                        .await
                        .map_err(|e| self.count(e))?["state"]["last_seq"]
                        .as_u64()
                        .unwrap_or(0),
                };
                let mut end = last_seq;
                'down: while end > 0 {
                    let start = end.saturating_sub(page as u64 - 1).max(1);
                    let got = self
                        .0
                        .js
                        .range(&stream, &filter, start, page)
                        .await
                        .map_err(|e| self.count(e))?;
                    let mut window: Vec<_> = got.into_iter().filter(|m| m.seq <= end).collect();
                    window.reverse();
                    for m in window {
                        scanned += 1;
                        let Some(e) = keep(m)? else { continue };
                        last_id = Some(e.id);
                        if e.received_at_ms >= query.since_ms
                            && e.received_at_ms <= until
                            && self.matches(query, e.id).await?
                        {
                            out.push(e);
                        }
                        if out.len() >= limit || scanned >= query.max_scanned.max(limit) {
                            break 'down;
                        }
                    }
                    if start == 1 {
                        last_id = None;
                        break;
                    }
                    end = start - 1;
                }
            }
        }
        Ok((out, last_id))
    }

    async fn replay_topic_dead_letters(
        &self,
        topic: &str,
        ids: &[EventId],
    ) -> Result<(), StoreError> {
        let names = self.names();
        for id in ids {
            // The replay first: a crash between the two leaves a dead
            // letter that may be replayed again, which routing skips.
            self.0
                .js
                .publish(Out::new(names.replay(topic, *id), bytes::Bytes::new()))
                .await
                .map_err(|e| self.count(e))?;
            self.purge(&names.queues(), &names.dlq(DlqOwner::Topic(topic), *id))
                .await?;
        }
        Ok(())
    }
}

impl JetStreamStore {
    /// Whether event `id` passes the query's destination and state filters.
    async fn matches(&self, q: &EventQuery, id: EventId) -> Result<bool, StoreError> {
        if q.destination.is_none() && q.state.is_none() {
            return Ok(true);
        }
        let states = self.states(id).await?;
        Ok(states.iter().any(|(d, s)| {
            q.destination.as_deref().is_none_or(|w| w == d)
                && q.state.is_none_or(|w| {
                    // In flight is not told apart from pending here.
                    w == s.status
                        || (w == DeliveryStatus::InFlight && s.status == DeliveryStatus::Pending)
                })
        }))
    }

    /// Removes every message of `subject` (a filter) from `stream`.
    pub(crate) async fn purge(&self, stream: &str, subject: &str) -> Result<u64, StoreError> {
        let v = self
            .0
            .js
            .api(
                &format!("STREAM.PURGE.{stream}"),
                &serde_json::json!({ "filter": subject }),
            )
            .await
            .map_err(|e| self.count(e))?;
        Ok(v["purged"].as_u64().unwrap_or(0))
    }
}

#[async_trait]
impl Maintenance for JetStreamStore {
    /// Idempotency keys carry the window as their TTL: the server removes
    /// them.
    async fn expire_idempotency(
        &self,
        _older_than_ms: u64,
        _max: usize,
    ) -> Result<usize, StoreError> {
        Ok(0)
    }

    async fn sweep_retention(
        &self,
        cutoff_ms: u64,
        after: Option<EventId>,
        max: usize,
    ) -> Result<(usize, Option<EventId>), StoreError> {
        let names = self.names().clone();
        let stream = names.events();
        let mut seq = match after {
            Some(a) => self.event_seq(a).await?.unwrap_or(1),
            None => 1,
        };
        let mut removed = 0;
        let mut looked = 0;
        while looked < max {
            let got = self
                .0
                .js
                .range(
                    &stream,
                    &names.events_of(None),
                    seq,
                    256.min(max - looked).max(1),
                )
                .await
                .map_err(|e| self.count(e))?;
            if got.is_empty() {
                return Ok((removed, None));
            }
            for m in got {
                looked += 1;
                seq = m.seq + 1;
                let Some((_, topic, id)) = names.parse_event(&m.subject) else {
                    continue;
                };
                if id.timestamp_ms() >= cutoff_ms {
                    return Ok((removed, Some(id)));
                }
                let states = self.states(id).await?;
                if states.iter().any(|(_, s)| !s.status.is_finished()) {
                    return Ok((removed, Some(id)));
                }
                let q = names.queues();
                for (dest, _) in &states {
                    self.purge(&q, &names.attempts_of(id, dest)).await?;
                    self.purge(&q, &names.lease(dest, id)).await?;
                    self.purge(&q, &names.dlq(DlqOwner::Destination(dest), id))
                        .await?;
                }
                self.purge(&q, &names.dlq(DlqOwner::Topic(&topic), id))
                    .await?;
                self.purge(&q, &names.transformed(id)).await?;
                self.purge(&q, &names.dstates_of(id)).await?;
                self.0
                    .js
                    .api(
                        &format!("STREAM.MSG.DELETE.{stream}"),
                        &serde_json::json!({ "seq": m.seq, "no_erase": true }),
                    )
                    .await
                    .map_err(|e| self.count(e))?;
                removed += 1;
            }
        }
        Ok((removed, None))
    }

    /// A PubAck already means stored by a quorum: nothing is buffered here.
    /// What this gateway held for routing is handed back (at shutdown the
    /// router has stopped).
    fn flush(&self) -> Result<(), StoreError> {
        self.block_on(self.release_routing());
        self.close();
        Ok(())
    }

    fn disk_space(&self) -> u64 {
        self.0.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn shared(&self) -> bool {
        true
    }

    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        let m = &self.0.metrics;
        registry.register(
            "switchyard_jetstream_batches",
            "Atomic batches committed to JetStream",
            m.batches.clone(),
        );
        registry.register(
            "switchyard_jetstream_conflicts",
            "Conditional writes that lost to another gateway's (a stale receipt, a raced key)",
            m.conflicts.clone(),
        );
        registry.register(
            "switchyard_jetstream_unavailable",
            "JetStream calls that got no answer (no leader, no quorum, no connection)",
            m.unavailable.clone(),
        );
    }
}
