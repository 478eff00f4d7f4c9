//! The schema registry's tables in one stream (`<P>_REG`), one message a
//! key: `schema.<id>`, `ver.<subject hex>.<n>`, `level.<subject hex>` or
//! `level._global`, and `next_id`. A change is one atomic batch ending with
//! `next_id` written again, expected at the sequence this gateway last
//! saw: two gateways changing the registry at once cannot both succeed
//! (one id handed out twice, one version number taken twice); the loser
//! gets a conflict, reloads and decides again. The sequence of `next_id`
//! is also the registry's generation: a gateway whose copy is older
//! reloads.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use switchyard_store::{
    RegistrySnapshot, RegistryWrite, SchemaRecord, SchemaStore, StoreError, VersionRecord,
};

use crate::js::Out;
use crate::{JetStreamStore, from_json, to_json};

#[derive(Serialize, Deserialize)]
struct Level {
    level: String,
}

/// A removed key: registry reads skip it.
const TOMBSTONE: &[u8] = b"null";

fn subject_key(subject: Option<&str>) -> String {
    match subject {
        Some(s) => hex::encode(s.as_bytes()),
        None => "_global".into(),
    }
}

impl SchemaStore for JetStreamStore {
    fn load_schemas(&self) -> Result<RegistrySnapshot, StoreError> {
        self.block_on(async {
            let names = self.names();
            let stream = names.registry();
            let mut snap = RegistrySnapshot {
                next_id: 1,
                ..RegistrySnapshot::default()
            };
            let mut seq = 1;
            self.0.reg_seq.store(0, Ordering::Release);
            self.0.reg_next.store(1, Ordering::Release);
            loop {
                let got = self
                    .0
                    .js
                    .range(&stream, &names.registry_subjects(), seq, 1000)
                    .await
                    .map_err(|e| self.count(e))?;
                if got.is_empty() {
                    break;
                }
                for m in got {
                    seq = m.seq + 1;
                    if &m.payload[..] == TOMBSTONE {
                        continue;
                    }
                    let Some(key) = names.reg_key(&m.subject) else {
                        continue;
                    };
                    let mut t = key.split('.');
                    match (t.next(), t.next(), t.next()) {
                        (Some("schema"), Some(_), None) => {
                            snap.schemas.push(from_json("registry schema", &m.payload)?)
                        }
                        (Some("ver"), Some(_), Some(_)) => snap
                            .versions
                            .push(from_json("registry version", &m.payload)?),
                        (Some("level"), Some("_global"), None) => {
                            snap.global_level =
                                Some(from_json::<Level>("registry level", &m.payload)?.level)
                        }
                        (Some("level"), Some(h), None) => {
                            let subject = hex::decode(h)
                                .ok()
                                .and_then(|b| String::from_utf8(b).ok())
                                .ok_or_else(|| StoreError::Corrupt {
                                    keyspace: "registry",
                                    message: format!("level key {key}"),
                                })?;
                            snap.subject_levels.push((
                                subject,
                                from_json::<Level>("registry level", &m.payload)?.level,
                            ));
                        }
                        (Some("next_id"), None, None) => {
                            snap.next_id = from_json("registry next id", &m.payload)?;
                            self.0.reg_seq.store(m.seq, Ordering::Release);
                            self.0.reg_next.store(snap.next_id, Ordering::Release);
                        }
                        _ => {}
                    }
                }
            }
            snap.versions.sort_by(|a, b| {
                (a.subject.as_bytes(), a.version).cmp(&(b.subject.as_bytes(), b.version))
            });
            Ok(snap)
        })
    }

    fn write_schemas(&self, writes: &[RegistryWrite]) -> Result<(), StoreError> {
        self.block_on(async {
            let names = self.names();
            let mut msgs = Vec::with_capacity(writes.len() + 1);
            let mut next_id = None;
            for w in writes {
                let m = match w {
                    RegistryWrite::PutSchema(r) => {
                        next_id = Some(next_id.unwrap_or(0).max(r.id + 1));
                        Out::new(
                            names.reg(&format!("schema.{}", r.id)),
                            to_json::<SchemaRecord>(r),
                        )
                    }
                    RegistryWrite::PutVersion(v) => Out::new(
                        names.reg(&format!(
                            "ver.{}.{}",
                            subject_key(Some(&v.subject)),
                            v.version
                        )),
                        to_json::<VersionRecord>(v),
                    ),
                    RegistryWrite::DeleteVersion { subject, version } => Out::new(
                        names.reg(&format!("ver.{}.{version}", subject_key(Some(subject)))),
                        TOMBSTONE,
                    ),
                    RegistryWrite::PutLevel { subject, level } => Out::new(
                        names.reg(&format!("level.{}", subject_key(subject.as_deref()))),
                        to_json(&Level {
                            level: level.clone(),
                        }),
                    ),
                    RegistryWrite::DeleteLevel { subject } => Out::new(
                        names.reg(&format!("level.{}", subject_key(subject.as_deref()))),
                        TOMBSTONE,
                    ),
                };
                msgs.push(m);
            }
            if msgs.is_empty() {
                return Ok(());
            }
            let n = next_id
                .unwrap_or(0)
                .max(self.0.reg_next.load(Ordering::Acquire));
            // Last, so the batch's ack carries its sequence.
            msgs.push(
                Out::new(names.reg("next_id"), to_json(&n))
                    .expect_last(self.0.reg_seq.load(Ordering::Acquire)),
            );
            let ack = self.0.js.batch(msgs).await.map_err(|e| self.count(e))?;
            self.0.reg_seq.store(ack.seq, Ordering::Release);
            self.0.reg_next.store(n, Ordering::Release);
            Ok(())
        })
    }

    fn registry_generation(&self) -> Result<Option<u64>, StoreError> {
        self.block_on(async {
            let names = self.names();
            let last = self
                .0
                .js
                .last(&names.registry(), &names.reg("next_id"))
                .await
                .map_err(|e| self.count(e))?;
            Ok(Some(last.map_or(0, |m| m.seq)))
        })
    }
}
