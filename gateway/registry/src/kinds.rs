//! What a schema is besides its text: its type (Avro, JSON Schema or
//! Protobuf), its references to other subjects' schemas, its parsed form,
//! and the form it takes in the store.
//!
//! The store keeps one string per schema id (`SchemaRecord::schema`). Avro
//! without references is stored as its text, as it always was, so a data
//! directory written before JSON Schema and Protobuf existed loads as it
//! is. Anything else is stored as an envelope: [`ENVELOPE`] (never the start
//! of a JSON document, so it can't be mistaken for an Avro schema) followed
//! by a JSON object with the type, the references and the text.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::json_schema::JsonSchema;
use super::protobuf::ProtoSchema;
use super::schema::Schema;

/// A schema's type, as Confluent names it in `schemaType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaType {
    Avro,
    Json,
    Protobuf,
}

impl SchemaType {
    /// `schemaType` from a request: absent means Avro, as in Confluent.
    pub fn parse(raw: Option<&str>) -> Result<SchemaType, ApiError> {
        match raw.map(str::to_ascii_uppercase).as_deref() {
            None | Some("AVRO") => Ok(SchemaType::Avro),
            Some("JSON") => Ok(SchemaType::Json),
            Some("PROTOBUF") => Ok(SchemaType::Protobuf),
            Some(_) => Err(ApiError::invalid_schema(format!(
                "Invalid schema type {:?}: use AVRO, JSON or PROTOBUF",
                raw.unwrap_or("")
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

/// A reference from one schema to a schema registered under another
/// subject: `name` is how the referring schema spells it (a JSON Schema
/// `$ref` URL, a `.proto` import path).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: u32,
}

/// A schema parsed for its type: what validation, conversion and the
/// compatibility checks work on.
#[derive(Debug)]
#[non_exhaustive]
pub enum Parsed {
    Avro(Schema),
    Json(JsonSchema),
    Protobuf(ProtoSchema),
}

impl Parsed {
    pub fn schema_type(&self) -> SchemaType {
        match self {
            Parsed::Avro(_) => SchemaType::Avro,
            Parsed::Json(_) => SchemaType::Json,
            Parsed::Protobuf(_) => SchemaType::Protobuf,
        }
    }

    pub fn avro(&self) -> Option<&Schema> {
        match self {
            Parsed::Avro(s) => Some(s),
            _ => None,
        }
    }
}

/// Starts every stored schema that is not reference-free Avro.
pub const ENVELOPE: &str = "switchyard-schema/1\n";

#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(rename = "schemaType")]
    schema_type: String,
    #[serde(default)]
    references: Vec<Reference>,
    schema: String,
}

/// The string the store keeps for a schema.
pub fn encode_stored(ty: SchemaType, references: &[Reference], text: &str) -> String {
    if ty == SchemaType::Avro && references.is_empty() {
        return text.to_string();
    }
    let body = json!({ "schemaType": ty.as_str(), "references": references, "schema": text });
    format!("{ENVELOPE}{body}")
}

/// Reads what [`encode_stored`] wrote: type, references, text.
pub fn decode_stored(stored: &str) -> Result<(SchemaType, Vec<Reference>, String), String> {
    let Some(body) = stored.strip_prefix(ENVELOPE) else {
        return Ok((SchemaType::Avro, Vec::new(), stored.to_string()));
    };
    let e: Envelope =
        serde_json::from_str(body).map_err(|e| format!("schema envelope is not readable: {e}"))?;
    let ty = SchemaType::parse(Some(&e.schema_type)).map_err(|e| e.message)?;
    Ok((ty, e.references, e.schema))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_avro_is_stored_as_its_text_and_others_round_trip() {
        assert_eq!(encode_stored(SchemaType::Avro, &[], "\"int\""), "\"int\"");
        let refs = vec![Reference {
            name: "a.json".into(),
            subject: "a".into(),
            version: 2,
        }];
        let s = encode_stored(SchemaType::Json, &refs, "{\"type\":\"object\"}");
        assert!(s.starts_with(ENVELOPE));
        let (ty, r, text) = decode_stored(&s).unwrap();
        assert_eq!(
            (ty, r, text.as_str()),
            (SchemaType::Json, refs, "{\"type\":\"object\"}")
        );
        let (ty, r, _) = decode_stored("\"int\"").unwrap();
        assert_eq!((ty, r.len()), (SchemaType::Avro, 0));
    }

    #[test]
    fn unknown_schema_types_are_refused_with_the_valid_ones_named() {
        let e = SchemaType::parse(Some("XML")).unwrap_err();
        assert_eq!(e.code, 42201);
        assert!(
            e.message.contains("AVRO, JSON or PROTOBUF"),
            "{}",
            e.message
        );
        assert_eq!(SchemaType::parse(Some("json")).unwrap(), SchemaType::Json);
    }
}
