//! Conversion of validated payloads between natural JSON and Confluent's
//! Avro wire format, for destinations with `format = "json" | "avro"`.
//!
//! Each schema is turned into an `apache_avro::Schema` once and cached by
//! id, so a conversion does no schema parsing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::types::Value as AvroValue;

use super::binary;
use super::core::{Core, StoredSchema};

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
        let parsed = Arc::new(
            apache_avro::Schema::parse_str(&s.text)
                .map_err(|e| format!("schema {} can't be used for conversion: {e}", s.id))?,
        );
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
    let json = serde_json::Value::try_from(value)
        .map_err(|e| format!("Avro value has no JSON form: {e}"))?;
    serde_json::to_vec(&json).map_err(|e| e.to_string())
}

/// Natural JSON to Confluent's wire format with schema `id`.
pub(super) fn json_to_avro(
    core: &Core,
    cache: &Cache,
    id: u32,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let schema = cache.get(&*schema(core, id)?)?;
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("payload is not JSON: {e}"))?;
    let value = AvroValue::try_from(json)
        .and_then(|v| v.resolve(&schema))
        .map_err(|e| format!("JSON payload does not fit schema {id}: {e}"))?;
    let mut out = Vec::with_capacity(body.len() / 2 + 5);
    out.push(0u8);
    out.extend_from_slice(&id.to_be_bytes());
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|e| format!("can't encode as schema {id}: {e}"))?;
    out.extend_from_slice(&datum);
    Ok(out)
}
