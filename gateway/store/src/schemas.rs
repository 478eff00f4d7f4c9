//! The schema registry's persistence: schemas by id, subject versions and
//! compatibility levels.
//!
//! The registry is low-volume and read-mostly: it keeps everything in
//! memory, reads the whole of it once at start ([`SchemaStore::load_schemas`])
//! and writes through ([`SchemaStore::write_schemas`]). A write is one atomic
//! change, durable before the call returns: a client that got an id back
//! must find it after a crash.

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// One schema, identified by id, shared by every subject that registers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SchemaRecord {
    pub id: u32,
    /// The schema text as first registered, returned verbatim to clients.
    pub schema: String,
}

/// One version of one subject.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionRecord {
    pub subject: String,
    pub version: u32,
    pub schema_id: u32,
    /// Soft-deleted: hidden from reads and compatibility checks, but kept so
    /// that a permanent delete has something to remove, as in Confluent.
    #[serde(default)]
    pub deleted: bool,
}

/// Everything the registry holds, read once at start.
#[derive(Debug, Default)]
pub struct RegistrySnapshot {
    pub schemas: Vec<SchemaRecord>,
    /// Ordered by subject bytes, then version.
    pub versions: Vec<VersionRecord>,
    pub global_level: Option<String>,
    pub subject_levels: Vec<(String, String)>,
    /// The next schema id to allocate (1 on an empty store).
    pub next_id: u32,
}

/// One change, applied with others in a single atomic write.
#[derive(Debug, Clone)]
pub enum RegistryWrite {
    /// Also advances the persisted id counter past `id`.
    PutSchema(SchemaRecord),
    PutVersion(VersionRecord),
    DeleteVersion {
        subject: String,
        version: u32,
    },
    /// `subject = None` is the global level.
    PutLevel {
        subject: Option<String>,
        level: String,
    },
    DeleteLevel {
        subject: Option<String>,
    },
}

/// Where the registry keeps its state. Calls block (they may wait for a
/// disk or a cluster): the registry makes them off the async workers.
pub trait SchemaStore: Send + Sync {
    /// Reads the whole registry.
    fn load_schemas(&self) -> Result<RegistrySnapshot, StoreError>;

    /// Applies `writes` as one atomic change, durable before returning. On
    /// a store other gateways write too, a change made elsewhere since this
    /// gateway last loaded is a [`StoreError::Conflict`]: load again and
    /// decide again.
    fn write_schemas(&self, writes: &[RegistryWrite]) -> Result<(), StoreError>;

    /// A marker that changes whenever anyone changes the registry, for
    /// stores other gateways write too: when it differs from the one seen
    /// at the last load, load again. `None` (the default): only this
    /// process writes, and what it holds in memory is always current.
    fn registry_generation(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
}
