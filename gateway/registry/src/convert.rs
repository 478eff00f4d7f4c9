//! Conversion of validated payloads between natural JSON and Confluent's
//! Avro wire format, for destinations with `format = "json" | "avro"`.
//!
//! JSON to Avro is the registry's own walk (`json::encode`), by the rules
//! JSON validation applies, so whatever validates at ingest converts.
//! Avro to JSON reads with apache-avro, which also resolves a writer schema
//! to a reader schema; each schema is turned into an `apache_avro::Schema`
//! once and cached by id. It is read without its logical types: they do not
//! change the encoding, and validation (which ignores them too) does not
//! refuse, say, a `uuid` string that is not a UUID, which apache-avro would
//! then fail to read. Values come out in the spelling JSON validation
//! accepts: bytes and fixed as arrays of byte values, non-finite floats as
//! `"NaN"`, `"Infinity"`, `"-Infinity"`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::types::Value as AvroValue;
use serde_json::Value as Json;

use super::state::{Core, StoredSchema};
use super::{binary, json};

/// Parsed `apache_avro` schemas by registry id.
#[derive(Default)]
pub(super) struct Cache {
    schemas: RwLock<HashMap<u32, Arc<apache_avro::Schema>>>,
}

impl Cache {
    fn get(&self, s: &StoredSchema) -> Result<Arc<apache_avro::Schema>, String> {
        if let Some(p) = self
            .schemas
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&s.id)
        {
            return Ok(p.clone());
        }
        let parsed = conversion_schema(&s.text)
            .map(Arc::new)
            .map_err(|e| format!("schema {} can't be used for conversion: {e}", s.id))?;
        self.schemas
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(s.id, parsed.clone());
        Ok(parsed)
    }
}

fn schema(core: &Core, id: u32) -> Result<Arc<StoredSchema>, String> {
    core.writer_schema(id)
        .ok_or_else(|| format!("schema {id} is no longer registered"))
}

/// Avro in Confluent's wire format (written with the schema its header
/// names) to the natural JSON of the reader schema `reader_id`: writer
/// fields the reader lacks are dropped, reader fields the writer lacks take
/// their defaults, unions are unwrapped.
pub(super) fn avro_to_json(
    core: &Core,
    cache: &Cache,
    reader_id: u32,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let (writer_id, mut datum) = binary::split_frame(body)
        .map_err(|_| "payload is not in Confluent's Avro wire format".to_string())?;
    let writer = cache.get(&*schema(core, writer_id)?)?;
    let reader = if reader_id == writer_id {
        None
    } else {
        Some(cache.get(&*schema(core, reader_id)?)?)
    };
    let value = apache_avro::reader::datum::GenericDatumReader::builder(&writer)
        .maybe_reader_schema(reader.as_deref())
        .build()
        .and_then(|r| r.read_value(&mut datum))
        .map_err(|e| format!("Avro datum of schema {writer_id} can't be read: {e}"))?;
    serde_json::to_vec(&to_json(value)?).map_err(|e| e.to_string())
}

/// Natural JSON to Confluent's wire format with schema `id`.
pub(super) fn json_to_avro(core: &Core, id: u32, body: &[u8]) -> Result<Vec<u8>, String> {
    let stored = schema(core, id)?;
    let schema = stored.parsed.avro().ok_or_else(|| {
        format!(
            "schema {id} is a {} schema: only an Avro schema encodes to Avro",
            stored.schema_type().as_str()
        )
    })?;
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("payload is not JSON: {e}"))?;
    json::validate(schema, &json).map_err(|m| {
        format!(
            "JSON payload does not fit schema {id} at {:?}: {}",
            m.path, m.message
        )
    })?;
    let mut out = Vec::with_capacity(body.len() / 2 + 5);
    out.push(0u8);
    out.extend_from_slice(&id.to_be_bytes());
    json::encode(schema, &json, &mut out)
        .map_err(|e| format!("can't encode as schema {id}: {e}"))?;
    Ok(out)
}

/// The `apache_avro::Schema` conversion reads Avro with: the schema text
/// without its logical types (see the module docs).
pub fn conversion_schema(text: &str) -> Result<apache_avro::Schema, String> {
    let json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    apache_avro::Schema::parse(&without_logical_types(json)).map_err(|e| e.to_string())
}

/// A schema's JSON with every `logicalType` taken off its types (and only
/// its types: a default or a custom property keeps whatever it holds).
fn without_logical_types(json: Json) -> Json {
    match json {
        Json::Array(branches) => {
            Json::Array(branches.into_iter().map(without_logical_types).collect())
        }
        Json::Object(mut o) => {
            o.remove("logicalType");
            for key in ["type", "items", "values"] {
                if let Some(t) = o.remove(key) {
                    o.insert(key.to_string(), without_logical_types(t));
                }
            }
            if let Some(Json::Array(fields)) = o.get_mut("fields") {
                for f in fields {
                    if let Json::Object(f) = f
                        && let Some(t) = f.remove("type")
                    {
                        f.insert("type".to_string(), without_logical_types(t));
                    }
                }
            }
            Json::Object(o)
        }
        other => other,
    }
}

/// A value apache-avro read (with no logical types) as natural JSON.
fn to_json(value: AvroValue) -> Result<Json, String> {
    let bytes = |b: Vec<u8>| Json::Array(b.into_iter().map(Json::from).collect());
    Ok(match value {
        AvroValue::Null => Json::Null,
        AvroValue::Boolean(b) => Json::Bool(b),
        AvroValue::Int(i) => Json::from(i),
        AvroValue::Long(l) => Json::from(l),
        AvroValue::Float(f) => json::float_to_json(f64::from(f)),
        AvroValue::Double(d) => json::float_to_json(d),
        AvroValue::Bytes(b) | AvroValue::Fixed(_, b) => bytes(b),
        AvroValue::String(s) | AvroValue::Enum(_, s) => Json::String(s),
        AvroValue::Union(_, v) => to_json(*v)?,
        AvroValue::Array(items) => {
            Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        AvroValue::Map(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        AvroValue::Record(fields) => Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("unexpected Avro value {other:?}")),
    })
}
