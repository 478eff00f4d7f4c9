//! The schema registry's tables ([`SchemaStore`] on fjall).
//!
//! Every write is one atomic fjall batch persisted with `SyncData` before the
//! registry answers: a client that got an id back must find it after a crash.
//!
//! Keyspaces and keys:
//! - `registry_schemas`: `s` + id (u32 BE) -> [`SchemaRecord`] JSON; and the
//!   single key `next_id` -> the next id to allocate (u32 BE). The id counter
//!   is written in the same batch as the schema that used it, so an id is
//!   never handed out twice, even after a crash.
//! - `registry_versions`: subject length (u16 BE) + subject + version (u32 BE)
//!   -> [`VersionRecord`] JSON. The length prefix keeps one subject's versions
//!   contiguous and in version order whatever bytes a subject name holds.
//! - `registry_config`: `g` -> the global level; `c` + subject -> that
//!   subject's level (plain UTF-8). (fjall refuses empty keys.)

use serde::{Deserialize, Serialize};
use switchyard_store::{RegistrySnapshot, RegistryWrite, StoreError};

use crate::Fj;
use crate::prefill::JournalLock;

const NEXT_ID_KEY: &[u8] = b"next_id";
const SCHEMA_PREFIX: u8 = b's';
const SUBJECT_CONFIG_PREFIX: u8 = b'c';
const GLOBAL_CONFIG_KEY: &[u8] = b"g";

/// The registry's keyspaces.
#[derive(Clone)]
pub(crate) struct RegistryTables {
    /// Needed for batches spanning the three keyspaces.
    db: fjall::Database,
    /// Held while committing: the registry writes the journal from outside
    /// the writer thread (see `prefill`).
    journal: JournalLock,
    schemas: fjall::Keyspace,
    versions: fjall::Keyspace,
    config: fjall::Keyspace,
}

impl RegistryTables {
    pub(crate) fn open(db: &fjall::Database, journal: JournalLock) -> Result<Self, StoreError> {
        let open = |name: &str| db.keyspace(name, fjall::KeyspaceCreateOptions::default);
        Ok(Self {
            db: db.clone(),
            journal,
            schemas: open("registry_schemas").fj()?,
            versions: open("registry_versions").fj()?,
            config: open("registry_config").fj()?,
        })
    }

    /// Reads the whole registry.
    pub(crate) fn load(&self) -> Result<RegistrySnapshot, StoreError> {
        let mut snap = RegistrySnapshot {
            next_id: 1,
            ..RegistrySnapshot::default()
        };
        for guard in self.schemas.iter() {
            let (k, v) = guard.into_inner().fj()?;
            if k.as_ref() == NEXT_ID_KEY {
                snap.next_id = decode_u32(&v, "registry_schemas")?;
            } else if k.first() == Some(&SCHEMA_PREFIX) {
                snap.schemas.push(decode_json(&v, "registry_schemas")?);
            }
        }
        for guard in self.versions.iter() {
            let (_, v) = guard.into_inner().fj()?;
            snap.versions.push(decode_json(&v, "registry_versions")?);
        }
        for guard in self.config.iter() {
            let (k, v) = guard.into_inner().fj()?;
            let level = String::from_utf8(v.to_vec()).map_err(|e| corrupt("registry_config", e))?;
            if k.as_ref() == GLOBAL_CONFIG_KEY {
                snap.global_level = Some(level);
                continue;
            }
            if let Some((&SUBJECT_CONFIG_PREFIX, subject)) = k.split_first() {
                let subject = String::from_utf8(subject.to_vec())
                    .map_err(|e| corrupt("registry_config", e))?;
                snap.subject_levels.push((subject, level));
            }
        }
        // A crash can't leave the counter behind a stored id (same batch), but
        // a hand-edited or older store might: never reuse an id.
        if let Some(max) = snap.schemas.iter().map(|s| s.id).max() {
            snap.next_id = snap.next_id.max(max.saturating_add(1));
        }
        Ok(snap)
    }

    /// Applies `writes` as one batch and fsyncs it before returning.
    pub(crate) fn write(&self, writes: &[RegistryWrite]) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        for w in writes {
            match w {
                RegistryWrite::PutSchema(rec) => {
                    batch.insert(&self.schemas, schema_key(rec.id), encode_json(rec)?);
                    batch.insert(
                        &self.schemas,
                        NEXT_ID_KEY,
                        rec.id.saturating_add(1).to_be_bytes().to_vec(),
                    );
                }
                RegistryWrite::PutVersion(rec) => {
                    batch.insert(
                        &self.versions,
                        version_key(&rec.subject, rec.version)?,
                        encode_json(rec)?,
                    );
                }
                RegistryWrite::DeleteVersion { subject, version } => {
                    batch.remove(&self.versions, version_key(subject, *version)?);
                }
                RegistryWrite::PutLevel { subject, level } => {
                    batch.insert(
                        &self.config,
                        config_key(subject.as_deref()),
                        level.as_bytes(),
                    );
                }
                RegistryWrite::DeleteLevel { subject } => {
                    batch.remove(&self.config, config_key(subject.as_deref()));
                }
            }
        }
        let _held = self.journal.hold();
        batch
            .durability(Some(fjall::PersistMode::SyncData))
            .commit()
            .fj()?;
        Ok(())
    }
}

fn schema_key(id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(5);
    k.push(SCHEMA_PREFIX);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn version_key(subject: &str, version: u32) -> Result<Vec<u8>, StoreError> {
    let len = u16::try_from(subject.len()).map_err(|_| {
        StoreError::WriteFailed(format!(
            "subject name of {} bytes is too long to store",
            subject.len()
        ))
    })?;
    let mut k = Vec::with_capacity(2 + subject.len() + 4);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(subject.as_bytes());
    k.extend_from_slice(&version.to_be_bytes());
    Ok(k)
}

fn config_key(subject: Option<&str>) -> Vec<u8> {
    match subject {
        None => GLOBAL_CONFIG_KEY.to_vec(),
        Some(s) => {
            let mut k = Vec::with_capacity(1 + s.len());
            k.push(SUBJECT_CONFIG_PREFIX);
            k.extend_from_slice(s.as_bytes());
            k
        }
    }
}

fn encode_json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::WriteFailed(format!("cannot encode: {e}")))
}

fn decode_json<T: for<'de> Deserialize<'de>>(
    v: &[u8],
    keyspace: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| corrupt(keyspace, e))
}

fn decode_u32(v: &[u8], keyspace: &'static str) -> Result<u32, StoreError> {
    let bytes: [u8; 4] = v
        .try_into()
        .map_err(|_| corrupt(keyspace, "next_id is not 4 bytes"))?;
    Ok(u32::from_be_bytes(bytes))
}

fn corrupt(keyspace: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        keyspace,
        message: e.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use switchyard_store::{SchemaRecord, VersionRecord};

    fn open(dir: &std::path::Path) -> RegistryTables {
        let db = fjall::Database::builder(dir).open().unwrap();
        RegistryTables::open(&db, JournalLock::default()).unwrap()
    }

    #[test]
    fn writes_survive_reopen_and_keep_version_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path());
            assert_eq!(s.load().unwrap().next_id, 1);
            s.write(&[
                RegistryWrite::PutSchema(SchemaRecord {
                    id: 1,
                    schema: "\"int\"".into(),
                }),
                RegistryWrite::PutVersion(VersionRecord {
                    subject: "b".into(),
                    version: 1,
                    schema_id: 1,
                    deleted: false,
                }),
                RegistryWrite::PutVersion(VersionRecord {
                    subject: "a".into(),
                    version: 300,
                    schema_id: 1,
                    deleted: false,
                }),
                RegistryWrite::PutVersion(VersionRecord {
                    subject: "a".into(),
                    version: 2,
                    schema_id: 1,
                    deleted: true,
                }),
                RegistryWrite::PutLevel {
                    subject: None,
                    level: "FULL".into(),
                },
                RegistryWrite::PutLevel {
                    subject: Some("a".into()),
                    level: "NONE".into(),
                },
            ])
            .unwrap();
            s.write(&[RegistryWrite::DeleteVersion {
                subject: "b".into(),
                version: 1,
            }])
            .unwrap();
        }
        let s = open(dir.path());
        let snap = s.load().unwrap();
        assert_eq!(snap.next_id, 2);
        assert_eq!(snap.schemas.len(), 1);
        let v: Vec<(String, u32)> = snap
            .versions
            .iter()
            .map(|v| (v.subject.clone(), v.version))
            .collect();
        assert_eq!(v, vec![("a".into(), 2), ("a".into(), 300)]);
        assert_eq!(snap.global_level.as_deref(), Some("FULL"));
        assert_eq!(snap.subject_levels, vec![("a".into(), "NONE".into())]);
    }
}
