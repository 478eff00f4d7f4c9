//! Reading the whole store out for another backend (`switchyard migrate`):
//! [`Export`] straight from the keyspaces, each call continuing after a
//! cursor. It only reads; the store's lock (held while it is open) keeps a
//! gateway from writing meanwhile.

use switchyard_core::EventId;
use switchyard_store::transfer::{DeliveryExport, EventExport, Export, KeyExport, QueuedExport};
use switchyard_store::{DeliveryState, DeliveryStatus, DlqEntry, QueueEntry, StoreError};
use ulid::Ulid;

use crate::{Fj, FjallStore, codec, keys};

/// The first key after `key` itself (and before anything `key` is a
/// prefix of but longer): `key` followed by a zero byte.
fn just_after(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

impl FjallStore {
    fn dead_letter(
        &self,
        ks: &fjall::Keyspace,
        owner: &str,
        id: Ulid,
    ) -> Result<Option<DlqEntry>, StoreError> {
        match ks.get(keys::dlq(owner, id)).fj()? {
            Some(v) => codec::from_json("dlq", &v).map(Some),
            None => Ok(None),
        }
    }

    fn export_event(&self, id: Ulid, value: &[u8]) -> Result<EventExport, StoreError> {
        let event = codec::decode_event(id, value)?;
        let pending_route = self.ks.pending_route.contains_key(keys::event(id)).fj()?;
        let transformed = match self.ks.transformed.get(keys::event(id)).fj()? {
            Some(v) => Some(codec::decode_transformed(&v)?),
            None => None,
        };
        let verdicts = match self.ks.transformed.get(keys::verdicts(id)).fj()? {
            Some(v) => codec::from_json("transformed", &v)?,
            None => Vec::new(),
        };
        let mut deliveries = Vec::new();
        for (destination, state) in self.stored_deliveries(id)? {
            let mut attempts = Vec::new();
            for g in self
                .ks
                .attempts
                .prefix(keys::attempts_prefix(id, &destination))
            {
                let (_, v) = g.into_inner().fj()?;
                attempts.push(codec::from_json("attempts", &v)?);
            }
            let dead_letter = self.dead_letter(&self.ks.dlq, &destination, id)?;
            deliveries.push(DeliveryExport {
                destination,
                state,
                attempts,
                dead_letter,
            });
        }
        let topic_dead_letter = self.dead_letter(&self.ks.topic_dlq, &event.topic, id)?;
        Ok(EventExport {
            event,
            pending_route,
            transformed,
            verdicts,
            deliveries,
            topic_dead_letter,
        })
    }
}

impl FjallStore {
    fn queued_export(&self, dest: &str, entry: QueueEntry) -> Result<QueuedExport, StoreError> {
        let state = match self
            .ks
            .dstate
            .get(keys::dstate(entry.event_id, dest))
            .fj()?
        {
            Some(v) => codec::from_json("dstate", &v)?,
            None => DeliveryState {
                status: DeliveryStatus::Pending,
                attempts: entry.history_base + entry.attempt,
                updated_at_ms: entry.enqueued_at_ms,
                last_error: None,
                next_attempt_ms: None,
            },
        };
        Ok(QueuedExport { entry, state })
    }
}

impl Export for FjallStore {
    fn export_events(
        &self,
        after: Option<EventId>,
        max: usize,
    ) -> Result<Vec<EventExport>, StoreError> {
        let from = match after {
            Some(id) => just_after(&keys::event(id)),
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for g in self.ks.events.range(from..).take(max) {
            let (k, v) = g.into_inner().fj()?;
            let Some(id) = keys::decode_event(&k) else {
                continue;
            };
            out.push(self.export_event(id, &v)?);
        }
        Ok(out)
    }

    fn export_queue_names(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut from = Vec::new();
        // One key per destination: each found skips to the next.
        while let Some(g) = self.ks.queue.range(from.clone()..).next() {
            let k = g.key().fj()?;
            let Some(dest) = keys::queue_destination(&k) else {
                break;
            };
            from = keys::after_queue(dest);
            out.push(dest.to_owned());
        }
        Ok(out)
    }

    /// Entries without a FIFO key in queue order, then those with one
    /// key by key, each key's in id order (its `qkeys` index): the order a
    /// FIFO line must be rebuilt in, whatever band or due time each entry
    /// has now.
    fn export_queue(
        &self,
        destination: &str,
        after: Option<&QueueEntry>,
        max: usize,
    ) -> Result<Vec<QueuedExport>, StoreError> {
        let mut out = Vec::new();
        if after.is_none_or(|e| e.ordering_key.is_none()) {
            let from = match after {
                Some(e) => just_after(&keys::queue_entry(e)),
                None => keys::name_prefix(destination),
            };
            let to = keys::after_queue(destination);
            for g in self.ks.queue.range(from..to) {
                if out.len() >= max {
                    return Ok(out);
                }
                let (_, v) = g.into_inner().fj()?;
                let entry: QueueEntry = codec::from_json("queue", &v)?;
                if entry.ordering_key.is_some() {
                    continue;
                }
                out.push(self.queued_export(destination, entry)?);
            }
        }
        let from = match after.and_then(|e| e.ordering_key.as_deref().map(|k| (k, e.event_id))) {
            Some((key, id)) => just_after(&keys::fifo(destination, key, id)),
            None => keys::name_prefix(destination),
        };
        let to = keys::successor(&keys::name_prefix(destination));
        for g in self.ks.qkeys.range(from..to) {
            if out.len() >= max {
                break;
            }
            let (k, v) = g.into_inner().fj()?;
            let corrupt = || StoreError::Corrupt {
                keyspace: "qkeys",
                message: format!("a key of {destination:?} that does not decode"),
            };
            let (_, id) = keys::decode_fifo(destination, &k).ok_or_else(corrupt)?;
            let (band, due_ms) = keys::decode_fifo_value(&v).ok_or_else(corrupt)?;
            let Some(v) = self
                .ks
                .queue
                .get(keys::queue_at(destination, band, due_ms, id))
                .fj()?
            else {
                continue;
            };
            let entry: QueueEntry = codec::from_json("queue", &v)?;
            out.push(self.queued_export(destination, entry)?);
        }
        Ok(out)
    }

    fn export_paused(&self) -> Result<Vec<String>, StoreError> {
        let prefix = keys::paused("");
        let mut out = Vec::new();
        for g in self.ks.meta.prefix(&prefix) {
            let k = g.key().fj()?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    fn export_keys(
        &self,
        after: Option<(&str, &str)>,
        max: usize,
    ) -> Result<Vec<KeyExport>, StoreError> {
        let from = match after {
            Some((topic, key)) => just_after(&keys::idem(topic, key)),
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for g in self.ks.idem.range(from..).take(max) {
            let (k, v) = g.into_inner().fj()?;
            let Some(sep) = k.iter().position(|b| *b == keys::SEP) else {
                continue;
            };
            let Some((received_at_ms, ids)) = crate::writer::decode_idem(&v) else {
                continue;
            };
            out.push(KeyExport {
                topic: String::from_utf8_lossy(&k[..sep]).into_owned(),
                key: String::from_utf8_lossy(&k[sep + 1..]).into_owned(),
                ids,
                received_at_ms,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_core::{EventMeta, NewEvent};
    use switchyard_store::{
        AttemptRecord, EventLog, Hold, Queues, Routed, Routing, Settle, Settlement,
    };

    use super::*;
    use crate::Durability;

    fn event(n: u32) -> NewEvent {
        NewEvent {
            meta: EventMeta {
                content_type: "application/json".into(),
                ..Default::default()
            },
            payload: bytes::Bytes::from(format!("{{\"n\":{n}}}")),
        }
    }

    fn entry(id: EventId, dest: &str, priority: u8) -> QueueEntry {
        QueueEntry {
            event_id: id,
            destination: dest.into(),
            priority,
            due_ms: 0,
            attempt: 0,
            history_base: 0,
            delay_ms: 0,
            enqueued_at_ms: 1,
            ordering_key: None,
            lease: None,
        }
    }

    #[tokio::test]
    async fn the_whole_state_reads_out_in_order_and_continues_after_a_cursor() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FjallStore::open(dir.path(), Durability::Buffered).expect("opens");
        let window = Duration::from_secs(60);
        let mut ids = Vec::new();
        for n in 0..5 {
            let key = (n == 0).then(|| "k-0".to_string());
            match store
                .append("orders", key, window, vec![event(n)], Routing::Pending)
                .await
                .expect("appends")
            {
                switchyard_store::Appended::New { ids: new, .. } => ids.extend(new),
                other => panic!("{other:?}"),
            }
        }
        store
            .open_queue("hook", Default::default())
            .await
            .expect("opens the queue");
        // Events 0-2 routed to hook (2 urgent); 3 and 4 wait for the router.
        let routed = ids[..3]
            .iter()
            .enumerate()
            .map(|(i, id)| Routed {
                event_id: *id,
                entries: vec![entry(*id, "hook", if i == 2 { 9 } else { 5 })],
                transformed: None,
                verdicts: Vec::new(),
                topic_dead_letter: None,
            })
            .collect();
        store.route(routed).await.expect("routes");
        // Event 0 is attempted and dead-lettered.
        let taken = store.take("hook", 10, Hold::InFlight).await.expect("takes");
        let first = taken
            .iter()
            .find(|e| e.event_id == ids[0])
            .expect("event 0 taken")
            .clone();
        let others: Vec<QueueEntry> = taken
            .iter()
            .filter(|e| e.event_id != ids[0])
            .cloned()
            .collect();
        store
            .settle(vec![Settlement {
                entry: first,
                attempt: AttemptRecord {
                    attempt: 1,
                    at_ms: 5,
                    status: Some(500),
                    error: None,
                    latency_ms: 3,
                    response_excerpt: None,
                    delay_before_ms: 0,
                },
                outcome: Settle::DeadLetter {
                    error: "HTTP 500".into(),
                },
            }])
            .await
            .expect("settles");
        store.release(&others, 0, 0).await.expect("released");
        store.set_paused("hook", true).await.expect("pauses");

        let page = store.export_events(None, 2).expect("exports");
        assert_eq!(
            page.iter().map(|e| e.event.id).collect::<Vec<_>>(),
            ids[..2]
        );
        let rest = store.export_events(Some(ids[1]), 10).expect("exports");
        assert_eq!(
            rest.iter().map(|e| e.event.id).collect::<Vec<_>>(),
            ids[2..]
        );
        let dead = &page[0];
        assert!(!dead.pending_route);
        assert_eq!(dead.deliveries.len(), 1);
        assert_eq!(
            dead.deliveries[0].state.status,
            DeliveryStatus::DeadLettered
        );
        assert_eq!(dead.deliveries[0].attempts.len(), 1);
        assert!(dead.deliveries[0].dead_letter.is_some());
        assert!(rest[1].pending_route && rest[2].pending_route);

        assert_eq!(
            store.export_queue_names().expect("names"),
            vec!["hook".to_string()]
        );
        let q = store.export_queue("hook", None, 1).expect("queue");
        assert_eq!(q[0].entry.event_id, ids[2], "the urgent one first");
        let q2 = store
            .export_queue("hook", Some(&q[0].entry), 10)
            .expect("queue");
        assert_eq!(
            q2.iter().map(|e| e.entry.event_id).collect::<Vec<_>>(),
            vec![ids[1]]
        );
        assert_eq!(q2[0].state.status, DeliveryStatus::Pending);
        assert!(
            store
                .export_queue("nothing", None, 10)
                .expect("queue")
                .is_empty()
        );

        assert_eq!(store.export_paused().expect("paused"), vec!["hook"]);
        let keys = store.export_keys(None, 10).expect("keys");
        assert_eq!(keys.len(), 1);
        assert_eq!(
            (keys[0].topic.as_str(), keys[0].key.as_str()),
            ("orders", "k-0")
        );
        assert_eq!(keys[0].ids, vec![ids[0]]);
        assert!(
            store
                .export_keys(Some(("orders", "k-0")), 10)
                .expect("keys")
                .is_empty()
        );
    }
}
