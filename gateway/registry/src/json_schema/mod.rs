//! JSON Schema (`schemaType: "JSON"`): parsing, validation and
//! compatibility.
//!
//! A schema is compiled once, when it is registered or loaded, into a
//! `jsonschema::Validator`; validation at ingest and egress only runs it.
//! The draft is the one `$schema` names (draft 4, 6, 7, 2019-09 or
//! 2020-12); without `$schema` it is draft 7, Confluent's default. Formats
//! (`date-time`, `email`, `uuid`...) are asserted, as Confluent's validator
//! does, whatever the draft says about them: a contract that names a format
//! means it.
//!
//! References (`references` on registration) are other subjects' JSON
//! schemas, reachable from `$ref` by the reference's `name`: the validator
//! is given them through a retriever of our own, and never fetches
//! anything from the network or the disk.
//!
//! - [`compat`]: Confluent's rules for JSON Schema evolution.

pub mod compat;
mod sonic;

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Retrieve, Uri, ValidationError};
use serde_json::Value;

/// A JSON schema, compiled.
pub struct JsonSchema {
    /// The schema as JSON, for compatibility checks.
    pub root: Value,
    /// Every schema reachable through references (transitively), by the
    /// name the referring schema uses.
    pub refs: Arc<HashMap<String, Value>>,
    pub draft: Draft,
    /// Walks payloads parsed by `sonic_rs` (see [`sonic`]).
    validator: jsonschema::Validator<sonic::Sonic>,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchema")
            .field("root", &self.root)
            .field("draft", &self.draft)
            .finish_non_exhaustive()
    }
}

/// Where a payload first departs from its JSON schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSchemaMismatch {
    /// A JSON Pointer into the payload ("" is the whole body).
    pub path: String,
    pub expected: String,
    /// The JSON Schema keyword that failed (`type`, `required`, `pattern`...).
    pub keyword: String,
    pub message: String,
}

/// The parser's message without the copy of the body it appends after a
/// blank line: where the error is, on one line.
fn parse_error(e: &sonic_rs::Error) -> String {
    let text = e.to_string();
    text.split("\n\n")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Why a payload failed its JSON schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// Not JSON at all: the parser's message.
    NotJson(String),
    Mismatch(JsonSchemaMismatch),
}

/// Hands the validator the referenced schemas, and nothing else.
struct References(Arc<HashMap<String, Value>>);

impl Retrieve for References {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let wanted = uri.as_str();
        // A relative `$ref` ("address.json") arrives resolved against the
        // default base ("json-schema:///address.json").
        let found = self.0.iter().find(|(name, _)| {
            let name = name.trim_start_matches("./");
            wanted == name
                || wanted
                    .strip_suffix(name)
                    .is_some_and(|head| head.ends_with('/'))
        });
        match found {
            Some((_, v)) => Ok(v.clone()),
            None => Err(format!(
                "{wanted} is not among the schema's references (register it under a subject \
                 and name it in `references`)"
            )
            .into()),
        }
    }
}

/// The draft a schema's `$schema` names (draft 7 without one).
pub fn draft_of(root: &Value) -> Result<Draft, String> {
    match Draft::Draft7.detect(root) {
        Draft::Unknown => Err(format!(
            "unsupported $schema {}: use draft 4, 6, 7, 2019-09 or 2020-12",
            root.get("$schema").unwrap_or(&Value::Null)
        )),
        d => Ok(d),
    }
}

impl JsonSchema {
    /// Parses and compiles `text`; `refs` are the referenced schemas by
    /// name, already resolved (transitively).
    pub fn parse(text: &str, refs: HashMap<String, Value>) -> Result<JsonSchema, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if !root.is_object() && !root.is_boolean() {
            return Err("a JSON schema is an object or a boolean".into());
        }
        let draft = draft_of(&root)?;
        let refs = Arc::new(refs);
        let validator = jsonschema::options_for::<sonic::Sonic>()
            .with_draft(draft)
            .should_validate_formats(true)
            .with_retriever(References(refs.clone()))
            .build(&root)
            .map_err(|e| e.to_string())?;
        Ok(JsonSchema {
            root,
            refs,
            draft,
            validator,
        })
    }

    /// Checks one JSON payload; on failure, why it is not JSON or the
    /// first error.
    pub fn validate_bytes(&self, body: &[u8]) -> Result<(), PayloadError> {
        let doc: sonic_rs::Value =
            sonic_rs::from_slice(body).map_err(|e| PayloadError::NotJson(parse_error(&e)))?;
        self.validate_parsed(&doc).map_err(PayloadError::Mismatch)
    }

    /// Checks a payload already parsed.
    pub fn validate_parsed(&self, doc: &sonic_rs::Value) -> Result<(), JsonSchemaMismatch> {
        // `is_valid` walks without tracking where it is; only a payload it
        // refuses is walked again for the error's path and keyword.
        if self.validator.is_valid(doc) {
            return Ok(());
        }
        self.validator.validate(doc).map_err(|e| mismatch(&e))
    }

    /// The walk that tracks where it is, alone: what [`JsonSchema::validate_parsed`]
    /// runs only for a payload it refuses (the benchmark compares the two).
    #[doc(hidden)]
    pub fn validate_tracking(&self, doc: &sonic_rs::Value) -> Result<(), JsonSchemaMismatch> {
        self.validator.validate(doc).map_err(|e| mismatch(&e))
    }

    /// [`JsonSchema::validate_bytes`] for a value at hand (tests: it
    /// serialises the value to parse it again).
    #[cfg(test)]
    fn validate(&self, value: &Value) -> Result<(), JsonSchemaMismatch> {
        match self.validate_bytes(value.to_string().as_bytes()) {
            Ok(()) => Ok(()),
            Err(PayloadError::Mismatch(m)) => Err(m),
            Err(PayloadError::NotJson(e)) => unreachable!("a serialised value is JSON: {e}"),
        }
    }
}

fn mismatch(e: &ValidationError<'_>) -> JsonSchemaMismatch {
    let kind = e.kind();
    JsonSchemaMismatch {
        path: e.instance_path().as_str().to_string(),
        expected: expected(kind, e.schema_path().as_str()),
        keyword: kind.keyword().to_string(),
        message: e.to_string(),
    }
}

/// What the failing keyword wanted, in words.
fn expected(kind: &ValidationErrorKind, schema_path: &str) -> String {
    use ValidationErrorKind as K;
    match kind {
        K::Type { kind } => match kind {
            jsonschema::error::TypeKind::Single(t) => format!("type {t}"),
            jsonschema::error::TypeKind::Multiple(ts) => {
                let names: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
                format!("type {}", names.join(" or "))
            }
        },
        K::Required { property } => format!("required property {property}"),
        K::Enum { options } => format!("one of {options}"),
        K::Constant { expected_value } => format!("the constant {expected_value}"),
        K::Pattern { pattern } => format!("a string matching the pattern {pattern:?}"),
        K::Format { format } => format!("a string in the format {format:?}"),
        K::Minimum { limit } => format!("a number >= {limit}"),
        K::Maximum { limit } => format!("a number <= {limit}"),
        K::ExclusiveMinimum { limit } => format!("a number > {limit}"),
        K::ExclusiveMaximum { limit } => format!("a number < {limit}"),
        K::MinLength { limit } => format!("a string of at least {limit} characters"),
        K::MaxLength { limit } => format!("a string of at most {limit} characters"),
        K::MinItems { limit } => format!("an array of at least {limit} items"),
        K::MaxItems { limit } => format!("an array of at most {limit} items"),
        K::MinProperties { limit } => format!("an object of at least {limit} properties"),
        K::MaxProperties { limit } => format!("an object of at most {limit} properties"),
        K::AdditionalProperties { .. } | K::UnevaluatedProperties { .. } => {
            "no properties besides the declared ones".into()
        }
        K::MultipleOf { multiple_of } => format!("a multiple of {multiple_of}"),
        K::UniqueItems => "an array of unique items".into(),
        K::FalseSchema => "nothing (the schema here is false)".into(),
        _ => format!("a value satisfying {} at {schema_path}", kind.keyword()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> JsonSchema {
        JsonSchema::parse(&v.to_string(), HashMap::new()).unwrap()
    }

    #[test]
    fn a_mismatch_names_the_path_the_expected_type_and_the_keyword() {
        let s = schema(json!({
            "type": "object",
            "properties": {"order": {"type": "object", "properties": {"qty": {"type": "integer"}}}}
        }));
        assert!(s.validate(&json!({"order": {"qty": 3}})).is_ok());
        let m = s.validate(&json!({"order": {"qty": "three"}})).unwrap_err();
        assert_eq!(m.path, "/order/qty");
        assert_eq!(m.keyword, "type");
        assert_eq!(m.expected, "type integer");
    }

    #[test]
    fn a_body_that_is_not_json_says_where_on_one_line_and_deep_nesting_is_refused() {
        let s = schema(json!({"type": "object"}));
        let Err(PayloadError::NotJson(m)) = s.validate_bytes(b"{\"a\": tru}") else {
            panic!("not JSON");
        };
        assert!(m.contains("line 1 column"), "{m}");
        assert!(
            !m.contains('\n'),
            "one line, without a copy of the body: {m:?}"
        );
        // Hostile nesting ends in an error, not in a blown stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let Err(PayloadError::NotJson(m)) = s.validate_bytes(deep.as_bytes()) else {
            panic!("too deep");
        };
        assert!(m.contains("layers deep"), "{m}");
        assert!(matches!(
            s.validate_bytes(b"[]"),
            Err(PayloadError::Mismatch(JsonSchemaMismatch { ref keyword, .. })) if keyword == "type"
        ));
    }

    #[test]
    fn formats_are_asserted_and_draft_seven_is_the_default() {
        let s = schema(json!({"type": "string", "format": "date-time"}));
        assert_eq!(s.draft, Draft::Draft7);
        assert!(s.validate(&json!("2026-12-02T08:00:00Z")).is_ok());
        let m = s.validate(&json!("yesterday")).unwrap_err();
        assert_eq!(m.keyword, "format");
        let s = schema(
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "string", "format": "email"}),
        );
        assert_eq!(s.draft, Draft::Draft202012);
        assert!(s.validate(&json!("not an address")).is_err());
    }

    #[test]
    fn a_required_property_and_an_unknown_draft_are_reported() {
        let s = schema(json!({"type": "object", "required": ["id"]}));
        let m = s.validate(&json!({})).unwrap_err();
        assert_eq!((m.keyword.as_str(), m.path.as_str()), ("required", ""));
        assert!(m.expected.contains("\"id\""), "{}", m.expected);
        let e = JsonSchema::parse(r#"{"$schema": "http://example.com/mine"}"#, HashMap::new())
            .unwrap_err();
        assert!(e.contains("unsupported $schema"), "{e}");
        assert!(JsonSchema::parse(r#"{"type": 12}"#, HashMap::new()).is_err());
    }

    #[test]
    fn references_resolve_by_name_and_nothing_else_is_fetched() {
        let mut refs = HashMap::new();
        refs.insert(
            "address.json".to_string(),
            json!({"type": "object", "required": ["city"]}),
        );
        let s = JsonSchema::parse(
            r#"{"type":"object","properties":{"ship_to":{"$ref":"address.json"}}}"#,
            refs,
        )
        .unwrap();
        assert!(s.validate(&json!({"ship_to": {"city": "Oslo"}})).is_ok());
        let m = s.validate(&json!({"ship_to": {}})).unwrap_err();
        assert_eq!(m.path, "/ship_to");
        let e = JsonSchema::parse(
            r#"{"properties":{"a":{"$ref":"https://example.com/x.json"}}}"#,
            HashMap::new(),
        )
        .unwrap_err();
        assert!(e.contains("references"), "{e}");
    }
}
