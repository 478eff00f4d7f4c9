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
//! - [`json`]: natural-JSON validation against Avro, with JSON Pointer paths.
//! - [`json_schema`]: JSON Schema: compiled validators, Confluent's
//!   compatibility rules.
//! - [`protobuf`]: Protobuf: `.proto` compiled with protox, dynamic
//!   messages and the JSON mapping with prost-reflect, Confluent's
//!   message-index framing and compatibility rules.
//! - [`kinds`]: schema types, references, the parsed form, the stored form.
//! - [`properties`]: the JSON Schema and Protobuf promises the fuzz targets
//!   check (and the unit tests replay on their seed corpora).
//! - [`schema`]: our parsed model of Avro schemas; schema identity.
//! - `convert`: JSON <-> Avro for destinations with a `format`.

#![forbid(unsafe_code)]

pub mod binary;
pub mod compat;
pub mod config;
mod convert;
pub mod error;
pub mod json;
pub mod json_schema;
pub mod kinds;
pub mod properties;
pub mod protobuf;
pub mod schema;
pub mod state;

use std::sync::Arc;

use prost_reflect::{DynamicMessage, MessageDescriptor};

pub use config::SchemaRef;
pub use convert::conversion_schema;
pub use error::ApiError;
pub use kinds::{Parsed, SchemaType};

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
    /// value ("" for the whole body), `expected` what was wanted there, and
    /// for JSON Schema, `keyword` the keyword that failed.
    #[error("payload does not match the schema at {path:?}: expected {expected}: {message}")]
    Mismatch {
        path: String,
        expected: String,
        message: String,
        keyword: Option<String>,
    },
    #[error(
        "content type {0:?} can't be validated against this schema: send application/json, or Confluent's wire format as application/octet-stream (or application/vnd.apache.avro+binary for an Avro schema, application/x-protobuf or application/vnd.google.protobuf for a Protobuf one)"
    )]
    UnsupportedMediaType(String),
    /// The wire-format header names an id the registry doesn't hold.
    #[error("schema id {0} in the wire-format header is not registered")]
    UnknownSchemaId(u32),
    /// Not JSON, or not a valid Avro datum.
    #[error("payload can't be decoded: {0}")]
    Undecodable(String),
    /// The topic names a Protobuf message its subject's schema lacks.
    #[error("subject {subject:?} has no message {message:?}; its schema declares: {available}")]
    NoMessage {
        subject: String,
        message: String,
        available: String,
    },
}

/// A payload that passed validation, and what it was validated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The topic's schema (the reader's).
    pub schema_id: u32,
    pub subject: String,
    pub version: u32,
    /// For payloads in Confluent's wire format, the id in its header (the
    /// writer's), which may differ from `schema_id` when the producer uses
    /// an older or newer compatible schema. `None` for JSON bodies.
    pub writer_schema_id: Option<u32>,
}

/// The schema registry. Cheap to clone: all clones share one state.
#[derive(Clone)]
pub struct Registry {
    core: Arc<state::Core>,
    avro: Arc<convert::Cache>,
}

/// How a payload's content type says it is encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    /// `application/vnd.apache.avro+binary`: Avro only.
    AvroBinary,
    /// `application/octet-stream`: Confluent's wire format, whatever the
    /// schema's type.
    Framed,
    /// `application/x-protobuf`, `application/vnd.google.protobuf`:
    /// Confluent's wire format of a Protobuf schema.
    Protobuf,
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
    } else if is("application/vnd.apache.avro+binary") {
        Some(Encoding::AvroBinary)
    } else if is("application/octet-stream") {
        Some(Encoding::Framed)
    } else if is("application/x-protobuf") || is("application/vnd.google.protobuf") {
        Some(Encoding::Protobuf)
    } else {
        None
    }
}

/// Whether a content type is Avro wire format (`Some(true)`), JSON
/// (`Some(false)`), or neither.
pub fn is_avro(content_type: &str) -> Option<bool> {
    encoding(content_type).map(|e| e != Encoding::Json)
}

/// A framed Protobuf message that is not its schema's.
fn protobuf_mismatch(
    desc: &MessageDescriptor,
    schema_id: u32,
    m: protobuf::ProtoMismatch,
) -> ValidationError {
    ValidationError::Mismatch {
        path: m.path,
        expected: format!("a {} message of schema {schema_id}", desc.full_name()),
        message: m.message,
        keyword: None,
    }
}

/// Splits Confluent's wire format, with an error that says what is wrong.
fn frame(body: &[u8]) -> Result<(u32, &[u8]), ValidationError> {
    binary::split_frame(body).map_err(|e| {
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
    })
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

    /// The type of schema `id`, if it is registered.
    pub fn schema_type(&self, id: u32) -> Option<SchemaType> {
        self.core.writer_schema(id).map(|s| s.schema_type())
    }

    /// A payload validated against schema `id` as JSON: `Ok(None)` when it
    /// is JSON already. Avro is decoded (to the natural JSON of `id`), JSON
    /// in Confluent's wire format loses its header.
    pub fn to_json(
        &self,
        id: u32,
        content_type: &str,
        body: &[u8],
    ) -> Result<Option<Vec<u8>>, String> {
        let enc = encoding(content_type).ok_or_else(|| {
            format!("content type {content_type:?} is neither JSON nor Confluent's wire format")
        })?;
        if enc == Encoding::Json {
            return Ok(None);
        }
        match self.schema_type(id) {
            None => Err(format!("schema {id} is no longer registered")),
            Some(SchemaType::Json) => {
                let (_, rest) = frame(body).map_err(|e| e.to_string())?;
                Ok(Some(rest.to_vec()))
            }
            Some(SchemaType::Protobuf) => {
                let msg = self.decode_protobuf(body).map_err(|e| e.to_string())?;
                protobuf::to_json(&msg).map(Some)
            }
            Some(_) => self.avro_to_json(id, body).map(Some),
        }
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

    /// Reads Confluent-framed Protobuf: the header's schema and the message
    /// its index array names, with the message's bytes.
    fn framed_protobuf<'b>(
        &self,
        body: &'b [u8],
    ) -> Result<(MessageDescriptor, &'b [u8], Arc<state::StoredSchema>), ValidationError> {
        let (id, rest) = frame(body)?;
        let writer = self
            .core
            .writer_schema(id)
            .ok_or(ValidationError::UnknownSchemaId(id))?;
        let Parsed::Protobuf(w) = &writer.parsed else {
            return Err(ValidationError::Undecodable(format!(
                "schema {id} in the wire-format header is a {} schema, not PROTOBUF",
                writer.schema_type().as_str()
            )));
        };
        let (idx, bytes) = protobuf::split_indexes(rest).map_err(ValidationError::Undecodable)?;
        let desc = w.message_at(&idx).map_err(ValidationError::Undecodable)?;
        Ok((desc, bytes, writer))
    }

    /// Decodes Confluent-framed Protobuf (every field declared).
    fn decode_protobuf(&self, body: &[u8]) -> Result<DynamicMessage, ValidationError> {
        let (desc, bytes, writer) = self.framed_protobuf(body)?;
        protobuf::decode(&desc, bytes).map_err(|m| protobuf_mismatch(&desc, writer.id, m))
    }

    /// Validates one payload against a topic's or a destination's
    /// `schema = { subject, version, message }`.
    pub fn validate_ref(
        &self,
        schema: &SchemaRef,
        content_type: &str,
        body: &[u8],
    ) -> Result<Validated, ValidationError> {
        self.validate_message(
            &schema.subject,
            schema.version,
            schema.message.as_deref(),
            content_type,
            body,
        )
    }

    /// The messages of `subject`'s Protobuf schema when `message` is not
    /// among them: a start-up check of a topic's `message`. `None` when the
    /// message is there, or the subject is not (yet) a Protobuf schema.
    pub fn missing_message(
        &self,
        subject: &str,
        version: Option<u32>,
        message: &str,
    ) -> Option<Vec<String>> {
        let (_, s) = self.core.resolve_reader(subject, version)?;
        let Parsed::Protobuf(p) = &s.parsed else {
            return None;
        };
        match p.message(Some(message)) {
            Ok(_) => None,
            Err(_) => Some(p.message_names()),
        }
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
        self.validate_message(subject, version, None, content_type, body)
    }

    /// [`Registry::validate`], with the Protobuf message the payload must be
    /// (`None`: the file's first message). Other types ignore `message`.
    pub fn validate_message(
        &self,
        subject: &str,
        version: Option<u32>,
        message: Option<&str>,
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
        let enc = encoding(content_type)
            .ok_or_else(|| ValidationError::UnsupportedMediaType(content_type.to_string()))?;
        match &reader.parsed {
            Parsed::Avro(_) | Parsed::Json(_) if enc == Encoding::Protobuf => {
                return Err(ValidationError::UnsupportedMediaType(
                    content_type.to_string(),
                ));
            }
            Parsed::Protobuf(p) => {
                let want = p.message(message).map_err(|_| ValidationError::NoMessage {
                    subject: subject.to_string(),
                    message: message.unwrap_or("").to_string(),
                    available: p.message_names().join(", "),
                })?;
                match enc {
                    Encoding::Json => {
                        protobuf::validate_json(p, &want, body).map_err(|m| {
                            ValidationError::Mismatch {
                                path: m.path,
                                expected: format!(
                                    "the JSON form of {} (protobuf's JSON mapping)",
                                    want.full_name()
                                ),
                                message: m.message,
                                keyword: None,
                            }
                        })?;
                    }
                    Encoding::AvroBinary => {
                        return Err(ValidationError::UnsupportedMediaType(
                            content_type.to_string(),
                        ));
                    }
                    Encoding::Framed | Encoding::Protobuf => {
                        let (got, bytes, writer) = self.framed_protobuf(body)?;
                        if let Parsed::Protobuf(w) = &writer.parsed {
                            protobuf::validate_wire(w, &got, bytes)
                                .map_err(|m| protobuf_mismatch(&got, writer.id, m))?;
                        }
                        if got.full_name() != want.full_name() {
                            return Err(ValidationError::Mismatch {
                                path: String::new(),
                                expected: format!("a {} message", want.full_name()),
                                message: format!(
                                    "the message-index array names {}",
                                    got.full_name()
                                ),
                                keyword: None,
                            });
                        }
                        self.core.resolvable(&writer, &reader).map_err(|inc| {
                            ValidationError::Mismatch {
                                path: inc.path,
                                expected: format!(
                                    "data readable as subject {subject:?} version \
                                     {reader_version} (schema {})",
                                    reader.id
                                ),
                                message: format!(
                                    "writer schema {} does not resolve: {}",
                                    writer.id, inc.message
                                ),
                                keyword: None,
                            }
                        })?;
                        ok.writer_schema_id = Some(writer.id);
                    }
                }
            }
            Parsed::Avro(schema) => {
                if enc == Encoding::Json {
                    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
                        ValidationError::Undecodable(format!("body is not JSON: {e}"))
                    })?;
                    json::validate(schema, &value).map_err(|m| ValidationError::Mismatch {
                        path: m.path,
                        expected: m.expected,
                        message: m.message,
                        keyword: None,
                    })?;
                } else {
                    let (id, datum) = frame(body)?;
                    let writer = self
                        .core
                        .writer_schema(id)
                        .ok_or(ValidationError::UnknownSchemaId(id))?;
                    let Some(writer_avro) = writer.parsed.avro() else {
                        return Err(ValidationError::Undecodable(format!(
                            "schema {id} in the wire-format header is a {} schema, not Avro",
                            writer.schema_type().as_str()
                        )));
                    };
                    binary::validate_datum(writer_avro, datum).map_err(|e| {
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
                            message: format!(
                                "writer schema {id} does not resolve: {}",
                                inc.message
                            ),
                            keyword: None,
                        }
                    })?;
                    ok.writer_schema_id = Some(id);
                }
            }
            Parsed::Json(schema) => {
                let json_body = match enc {
                    Encoding::Json => body,
                    Encoding::AvroBinary => {
                        return Err(ValidationError::UnsupportedMediaType(
                            content_type.to_string(),
                        ));
                    }
                    Encoding::Framed | Encoding::Protobuf => {
                        let (id, rest) = frame(body)?;
                        let writer = self
                            .core
                            .writer_schema(id)
                            .ok_or(ValidationError::UnknownSchemaId(id))?;
                        if writer.schema_type() != SchemaType::Json {
                            return Err(ValidationError::Undecodable(format!(
                                "schema {id} in the wire-format header is a {} schema, not JSON",
                                writer.schema_type().as_str()
                            )));
                        }
                        ok.writer_schema_id = Some(id);
                        rest
                    }
                };
                schema.validate_bytes(json_body).map_err(|e| match e {
                    json_schema::PayloadError::NotJson(e) => {
                        ValidationError::Undecodable(format!("body is not JSON: {e}"))
                    }
                    json_schema::PayloadError::Mismatch(m) => ValidationError::Mismatch {
                        path: m.path,
                        expected: m.expected,
                        message: m.message,
                        keyword: Some(m.keyword),
                    },
                })?;
            }
        }
        Ok(ok)
    }
}
