//! Writing another store's state in (`switchyard migrate`): [`Import`].
//!
//! Every write is guarded so that running a migration again changes
//! nothing: an event is stored only if its subject is empty (expected last
//! sequence 0), and after the records about it, so an event seen in the
//! cluster has everything with it; a queue entry is stored in one atomic
//! batch with its delivery state, only if that state does not exist yet
//! (a gateway that delivered the entry since has written one); an
//! idempotency key only if the cluster has none of that name.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use switchyard_core::{EventId, now_ms};
use switchyard_store::transfer::{EventExport, Import, Imported, KeyExport, QueuedExport};
use switchyard_store::{DeliveryStatus, DlqOwner, StoreError};

use crate::js::{JsError, MAX_BATCH, Out, code};
use crate::log::{KeyRecord, rewrite_message};
use crate::{JetStreamStore, encode_event, to_json};

/// Bytes of payload one atomic batch carries at most.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// A guard refused the write: it was made before.
fn already_there(e: &JsError) -> bool {
    e.is_conflict() || e.is(code::BATCH_DUPLICATE)
}

/// Items (each one's messages in one stream) grouped into atomic batches
/// of whole items, bounded in messages and bytes. An item larger than a
/// batch is a group of its own, written in pieces.
fn groups(items: Vec<Vec<Out>>) -> Vec<Vec<Vec<Out>>> {
    let mut out = Vec::new();
    let mut cur: Vec<Vec<Out>> = Vec::new();
    let (mut n, mut bytes) = (0, 0);
    for item in items {
        let (m, b) = (
            item.len(),
            item.iter().map(|o| o.payload.len()).sum::<usize>(),
        );
        if !cur.is_empty() && (n + m > MAX_BATCH || bytes + b > BATCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            (n, bytes) = (0, 0);
        }
        cur.push(item);
        (n, bytes) = (n + m, bytes + b);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl JetStreamStore {
    /// Writes guarded items: a batch of whole items at a time, and when a
    /// guard refuses the batch, item by item; an item refused counts as
    /// present.
    async fn write_guarded(&self, items: Vec<Vec<Out>>) -> Result<Imported, StoreError> {
        let mut done = Imported::default();
        for group in groups(items) {
            let total: usize = group.iter().map(Vec::len).sum();
            if total <= MAX_BATCH && group.len() > 1 {
                let batch: Vec<Out> = group.iter().flatten().cloned().collect();
                match self.0.js.batch(batch).await {
                    Ok(_) => {
                        done.written += group.len() as u64;
                        continue;
                    }
                    Err(e) if already_there(&e) => {}
                    Err(e) => return Err(self.count(e)),
                }
            }
            for item in group {
                done += self.write_item(item).await?;
            }
        }
        Ok(done)
    }

    /// One guarded item: in one batch, or (past a batch's size) its
    /// messages in pieces, the last piece holding its guard.
    async fn write_item(&self, mut item: Vec<Out>) -> Result<Imported, StoreError> {
        let present = Imported {
            written: 0,
            present: 1,
        };
        while item.len() > MAX_BATCH {
            let rest = item.split_off(MAX_BATCH - 1);
            let piece = std::mem::replace(&mut item, rest);
            self.0.js.batch(piece).await.map_err(|e| self.count(e))?;
        }
        if item.is_empty() {
            return Ok(Imported::default());
        }
        match self.0.js.batch(item).await {
            Ok(ack) if ack.duplicate => Ok(present),
            Ok(_) => Ok(Imported {
                written: 1,
                present: 0,
            }),
            Err(e) if already_there(&e) => Ok(present),
            Err(e) => Err(self.count(e)),
        }
    }

    /// Which of `ids` the events stream holds.
    async fn events_present(&self, ids: &[EventId]) -> Result<HashSet<EventId>, StoreError> {
        let names = self.names();
        let mut found = HashSet::new();
        for chunk in ids.chunks(256) {
            let filters: Vec<String> = chunk.iter().map(|id| names.event_any_topic(*id)).collect();
            let got = self
                .0
                .js
                .multi_last(&names.events(), &filters, chunk.len())
                .await
                .map_err(|e| self.count(e))?;
            for m in got {
                if let Some((_, _, id)) = names.parse_event(&m.subject) {
                    found.insert(id);
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl Import for JetStreamStore {
    async fn import_events(&self, events: Vec<EventExport>) -> Result<Imported, StoreError> {
        let names = self.names().clone();
        let ids: Vec<EventId> = events.iter().map(|e| e.event.id).collect();
        let present = self.events_present(&ids).await?;
        let mut done = Imported {
            written: 0,
            present: present.len() as u64,
        };
        let mut records: Vec<Vec<Out>> = Vec::new();
        let mut stored: Vec<Vec<Out>> = Vec::new();
        for ev in events
            .into_iter()
            .filter(|e| !present.contains(&e.event.id))
        {
            let (id, topic) = (ev.event.id, ev.event.topic.as_str());
            // What is kept about it (the queues stream), written first.
            let mut msgs = Vec::new();
            if ev.transformed.is_some() || !ev.verdicts.is_empty() {
                msgs.push(rewrite_message(
                    &names,
                    id,
                    ev.transformed.as_ref(),
                    &ev.verdicts,
                ));
            }
            for d in &ev.deliveries {
                let dest = d.destination.as_str();
                for a in &d.attempts {
                    msgs.push(Out::new(names.attempt(id, dest, a.attempt), to_json(a)).rollup());
                }
                if let Some(dl) = &d.dead_letter {
                    msgs.push(
                        Out::new(names.dlq(DlqOwner::Destination(dest), id), to_json(dl)).rollup(),
                    );
                }
                // A pending delivery's state comes with its queue entry.
                if !matches!(
                    d.state.status,
                    DeliveryStatus::Pending | DeliveryStatus::InFlight
                ) {
                    msgs.push(Out::new(names.dstate(id, dest), to_json(&d.state)).rollup());
                }
            }
            if let Some(dl) = &ev.topic_dead_letter {
                msgs.push(Out::new(names.dlq(DlqOwner::Topic(topic), id), to_json(dl)).rollup());
            }
            if !msgs.is_empty() {
                records.push(msgs);
            }
            // Then the event itself, only if absent. One that waits for the
            // router but has deliveries already (a topic dead letter
            // replayed) goes as a replay, which routing rechecks.
            let replay = ev.pending_route && !ev.deliveries.is_empty();
            let mut item = vec![
                Out::new(
                    names.event(topic, id),
                    encode_event(
                        ev.event.received_at_ms,
                        &ev.event.meta,
                        ev.pending_route && !replay,
                        &ev.event.payload,
                    ),
                )
                .msg_id(id)
                .expect_last(0),
            ];
            if replay {
                item.push(Out::new(names.replay(topic, id), bytes::Bytes::new()));
            }
            stored.push(item);
        }
        // The records carry no guard: written in the same batches (a
        // record set past a batch's size in pieces), their count unused.
        self.write_guarded(records).await?;
        done += self.write_guarded(stored).await?;
        Ok(done)
    }

    async fn import_queued(&self, entries: Vec<QueuedExport>) -> Result<Imported, StoreError> {
        let names = self.names().clone();
        let now = now_ms();
        let mut items = Vec::with_capacity(entries.len());
        let mut done = Imported::default();
        for q in entries {
            let e = &q.entry;
            self.ensure_band(&e.destination, e.priority).await?;
            let mut state = q.state.clone();
            state.status = DeliveryStatus::Pending;
            state.next_attempt_ms = (e.due_ms > now).then_some(e.due_ms);
            let state =
                Out::new(names.dstate(e.event_id, &e.destination), to_json(&state)).expect_last(0);
            if self.in_line(e) {
                // Joins its key's line, in the order exported (each key's
                // entries in id order), one at a time.
                done += if self.join_line_once(e, state).await? {
                    Imported {
                        written: 1,
                        present: 0,
                    }
                } else {
                    Imported {
                        written: 0,
                        present: 1,
                    }
                };
                continue;
            }
            items.push(vec![
                self.entry_message(e, now)
                    .msg_id(format!("{}:{}:mg", e.event_id, e.destination)),
                state,
            ]);
        }
        done += self.write_guarded(items).await?;
        Ok(done)
    }

    async fn import_keys(&self, keys: Vec<(KeyExport, Duration)>) -> Result<Imported, StoreError> {
        let names = self.names().clone();
        let items = keys
            .into_iter()
            .map(|(k, ttl)| {
                let rec = KeyRecord {
                    ids: k.ids,
                    received_at_ms: k.received_at_ms,
                    done: true,
                };
                vec![
                    Out::new(names.idempotency(&k.topic, &k.key), to_json(&rec))
                        .expect_last(0)
                        .ttl(ttl),
                ]
            })
            .collect();
        self.write_guarded(items).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_whole_items_within_their_bounds() {
        let item = |n: usize, bytes: usize| -> Vec<Out> {
            (0..n)
                .map(|i| Out::new(format!("s.{i}"), vec![0u8; bytes]))
                .collect()
        };
        let g = groups(vec![item(600, 1), item(600, 1), item(10, 1)]);
        assert_eq!(g.len(), 2, "600 + 600 is over a batch");
        assert_eq!(g[1].len(), 2);
        let g = groups(vec![item(1, 3 << 20), item(1, 3 << 20)]);
        assert_eq!(g.len(), 2, "bounded in bytes too");
        let g = groups(vec![item(2500, 1)]);
        assert_eq!(g.len(), 1, "an item past a batch is a group of its own");
    }
}
