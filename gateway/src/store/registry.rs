//! The schema registry's persistence: subjects, versions, schema ids, config.
//! (Owned by the registry work; see `crate::registry`.)

use super::StoreError;

/// The registry's keyspaces.
#[derive(Clone)]
pub struct RegistryStore {
    schemas: fjall::Keyspace,
}

impl RegistryStore {
    pub(super) fn open(db: &fjall::Database) -> Result<Self, StoreError> {
        let schemas = db.keyspace("registry_schemas", fjall::KeyspaceCreateOptions::default)?;
        Ok(Self { schemas })
    }
}
