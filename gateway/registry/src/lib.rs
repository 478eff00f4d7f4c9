//! The schema registry: subjects, versions and ids as Confluent's registry
//! keeps them, compatibility checks, validation of payloads at ingest, and
//! conversion between JSON and Avro at delivery. No HTTP: the `switchyard`
//! crate serves Confluent's REST API over [`state::Core`] under `/registry`.
//! It keeps its state through the store's [`SchemaStore`] trait only.
//!
//! Module map:
//! - [`binary`]: Confluent wire format and Avro binary datum checks.
//! - [`compat`]: schema resolution per the Avro spec; the seven levels.
//! - [`config`]: [`SchemaRef`], a topic's `schema = { subject, version }`.
//! - [`state`]: subjects, versions and ids in memory, written through to the store.
//! - [`error`]: Confluent's error codes, built in one place.
//! - [`json`]: natural-JSON validation with JSON Pointer paths.
//! - [`schema`]: our parsed model of Avro schemas; schema identity.
//! - `convert`: JSON <-> Avro for destinations with a `format`.

#![forbid(unsafe_code)]

pub mod binary;
pub mod compat;
pub mod config;
mod convert;
pub mod error;
pub mod json;
pub mod schema;
pub mod state;

use std::sync::Arc;

pub use config::SchemaRef;
pub use convert::conversion_schema;
pub use error::ApiError;

use switchyard_store::{SchemaStore, StoreError};

/// Failures to open the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("schema registry storage: {0}")]
    Store(#[from] StoreError),
    #[error("stored schema {id} no longer parses: {message}")]
    CorruptSchema { id: u32, message: String },
}

/// Why a payload was refused at ingest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The subject has no live version, or not the pinned one: the topic
    /// can't accept anything until the schema is registered.
    #[error("subject {subject:?} has no {}", match version { Some(v) => format!("version {v}"), None => "registered schema".to_string() })]
    NoSchema {
        subject: String,
        version: Option<u32>,
    },
    /// The payload doesn't match: `path` is a JSON Pointer to the first bad
    /// value ("" for the whole body), `expected` the type wanted there.
    #[error("payload does not match the schema at {path:?}: expected {expected}: {message}")]
    Mismatch {
        path: String,
        expected: String,
        message: String,
    },
    #[error(
        "content type {0:?} can't be validated: send application/json, or Avro in Confluent's wire format as application/vnd.apache.avro+binary or application/octet-stream"
    )]
    UnsupportedMediaType(String),
    /// The wire-format header names an id the registry doesn't hold.
    #[error("schema id {0} in the Avro payload is not registered")]
    UnknownSchemaId(u32),
    /// Not JSON, or not a valid Avro datum.
    #[error("payload can't be decoded: {0}")]
    Undecodable(String),
}

/// A payload that passed validation, and what it was validated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The topic's schema (the reader's).
    pub schema_id: u32,
    pub subject: String,
    pub version: u32,
    /// For Avro payloads, the id in the wire-format header (the writer's),
    /// which may differ from `schema_id` when the producer uses an older or
    /// newer compatible schema. `None` for JSON.
    pub writer_schema_id: Option<u32>,
}

/// The schema registry. Cheap to clone: all clones share one state.
#[derive(Clone)]
pub struct Registry {
    core: Arc<state::Core>,
    avro: Arc<convert::Cache>,
}

/// How a payload's content type says it is encoded.
enum Encoding {
    Json,
    AvroFramed,
}

fn encoding(content_type: &str) -> Option<Encoding> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let is = |t: &str| essence.eq_ignore_ascii_case(t);
    if is("application/json")
        || essence
            .len()
            .checked_sub(5)
            .and_then(|i| essence.get(i..))
            .is_some_and(|s| s.eq_ignore_ascii_case("+json"))
    {
        Some(Encoding::Json)
    } else if is("application/vnd.apache.avro+binary") || is("application/octet-stream") {
        Some(Encoding::AvroFramed)
    } else {
        None
    }
}

/// Whether a content type is Avro wire format (`Some(true)`), JSON
/// (`Some(false)`), or neither.
pub fn is_avro(content_type: &str) -> Option<bool> {
    encoding(content_type).map(|e| matches!(e, Encoding::AvroFramed))
}

impl Registry {
    /// Loads the registry from the store (every schema is parsed once here).
    /// Blocking: call it off the async workers.
    pub fn open(store: Arc<dyn SchemaStore>) -> Result<Registry, RegistryError> {
        let core = state::Core::load(store)?;
        Ok(Registry {
            core: Arc::new(core),
            avro: Arc::default(),
        })
    }

    /// The registry's state and operations, for its REST API.
    pub fn core(&self) -> &Arc<state::Core> {
        &self.core
    }

    /// Converts an Avro wire-format payload to the natural JSON of schema
    /// `reader_id` (writer/reader resolution applies defaults).
    pub fn avro_to_json(&self, reader_id: u32, body: &[u8]) -> Result<Vec<u8>, String> {
        convert::avro_to_json(&self.core, &self.avro, reader_id, body)
    }

    /// Converts a natural-JSON payload to Confluent's wire format with
    /// schema `id` (magic 0, 4-byte big-endian id, Avro binary datum).
    pub fn json_to_avro(&self, id: u32, body: &[u8]) -> Result<Vec<u8>, String> {
        convert::json_to_avro(&self.core, id, body)
    }

    /// Validates one payload against `subject` (at `version`, or the latest
    /// live version). Parsed schemas and writer/reader resolutions are
    /// cached, so this does no schema work per call.
    pub fn validate(
        &self,
        subject: &str,
        version: Option<u32>,
        content_type: &str,
        body: &[u8],
    ) -> Result<Validated, ValidationError> {
        let (reader_version, reader) =
            self.core.resolve_reader(subject, version).ok_or_else(|| {
                ValidationError::NoSchema {
                    subject: subject.to_string(),
                    version,
                }
            })?;
        let mut ok = Validated {
            schema_id: reader.id,
            subject: subject.to_string(),
            version: reader_version,
            writer_schema_id: None,
        };
        match encoding(content_type) {
            Some(Encoding::Json) => {
                let value: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| ValidationError::Undecodable(format!("body is not JSON: {e}")))?;
                json::validate(&reader.parsed, &value).map_err(|m| ValidationError::Mismatch {
                    path: m.path,
                    expected: m.expected,
                    message: m.message,
                })?;
            }
            Some(Encoding::AvroFramed) => {
                let (id, datum) = binary::split_frame(body).map_err(|e| {
                    ValidationError::Undecodable(match e {
                        binary::WireError::Truncated => format!(
                            "{} bytes is too short for Confluent's wire format (magic byte 0 \
                             and a 4-byte schema id come first)",
                            body.len()
                        ),
                        binary::WireError::BadMagic(m) => {
                            format!("magic byte is {m}, not 0: not Confluent's wire format")
                        }
                    })
                })?;
                let writer = self
                    .core
                    .writer_schema(id)
                    .ok_or(ValidationError::UnknownSchemaId(id))?;
                binary::validate_datum(&writer.parsed, datum).map_err(|e| {
                    ValidationError::Undecodable(format!(
                        "not a valid Avro datum of schema {id}: {e}"
                    ))
                })?;
                self.core.resolvable(&writer, &reader).map_err(|inc| {
                    ValidationError::Mismatch {
                        path: inc.path,
                        expected: format!(
                            "data readable as subject {subject:?} version {reader_version} \
                             (schema {})",
                            reader.id
                        ),
                        message: format!("writer schema {id} does not resolve: {}", inc.message),
                    }
                })?;
                ok.writer_schema_id = Some(id);
            }
            None => {
                return Err(ValidationError::UnsupportedMediaType(
                    content_type.to_string(),
                ));
            }
        }
        Ok(ok)
    }
}
