//! The registry's promises for JSON Schema and Protobuf, as functions that
//! panic when one is broken: the fuzz targets (`fuzz/fuzz_targets/
//! registry_typed_*.rs`) call them on arbitrary bytes, and the unit tests
//! below replay the targets' committed seed corpora through them, so CI
//! checks the same properties without a fuzzer.
//!
//! - [`typed_payload`]: what validates converts and validates again (a JSON
//!   Schema payload framed in Confluent's wire format; a Protobuf payload
//!   from its JSON mapping to framed bytes and back).
//! - [`typed_schema`]: parsing arbitrary schema text never panics, and the
//!   compatibility checker never panics and is reflexive (a schema is
//!   compatible with itself at every level).

use std::sync::Arc;

use prost::Message as _;

use crate::compat::{Level, check_parsed};
use crate::kinds::Parsed;
use crate::state::parse_submission;
use crate::{Registry, protobuf};

/// JSON Schemas the payload properties run against: realistic shapes
/// (nested objects, enums, formats, patterns, arrays, open and closed).
pub const JSON_SCHEMAS: [&str; 2] = [
    r##"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
  "properties":{"id":{"type":"string","pattern":"^ord_[0-9a-f]{8}$"},
    "status":{"enum":["new","paid","shipped"]},
    "placed_at":{"type":"string","format":"date-time"},
    "email":{"type":"string","format":"email"},
    "total":{"type":"number","minimum":0},
    "lines":{"type":"array","maxItems":50,"items":{"type":"object",
      "properties":{"sku":{"type":"string","minLength":1},"qty":{"type":"integer","minimum":1}},
      "required":["sku","qty"],"additionalProperties":false}},
    "customer":{"type":"object","properties":{"name":{"type":"string"},
      "address":{"type":"object","properties":{"country":{"type":"string","pattern":"^[A-Z]{2}$"}}}}}},
  "required":["id","status"]}"##,
    r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
  "properties":{"kind":{"const":"refund"},"amount":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"},"uniqueItems":true}},
  "additionalProperties":false}"#,
];

/// The Protobuf file the payload properties run against: scalars of every
/// kind, a nested message, an enum, a oneof, a map, repeated fields, a
/// well-known type and a recursive message.
pub const PROTO: &str = r#"syntax = "proto3";
package fuzz;
import "google/protobuf/timestamp.proto";
message Order {
  string id = 1;
  int64 cents = 2;
  uint32 qty = 3;
  double ratio = 4;
  bool paid = 5;
  bytes raw = 6;
  Status status = 7;
  repeated Line lines = 8;
  map<string, int32> counts = 9;
  oneof payment { string card = 10; Line voucher = 11; }
  google.protobuf.Timestamp at = 12;
  optional sint64 delta = 13;
  fixed32 code = 14;
  float weight = 15;
  message Line { string sku = 1; int32 qty = 2; repeated Line parts = 3; }
  enum Status { NEW = 0; PAID = 1; }
}
message Refund { string order_id = 1; }
"#;

/// The Protobuf messages payloads are tried as.
pub const PROTO_MESSAGES: [&str; 3] = ["fuzz.Order", "fuzz.Order.Line", "fuzz.Refund"];

/// Registers [`JSON_SCHEMAS`] as subjects `json-0`, `json-1` and [`PROTO`]
/// as `proto` in `registry`.
pub fn register_fixtures(registry: &Registry) -> Result<(), String> {
    for (i, s) in JSON_SCHEMAS.iter().enumerate() {
        let sub = parse_submission(s, Some("JSON"), false).map_err(|e| e.message)?;
        registry
            .core()
            .register(&format!("json-{i}"), sub)
            .map_err(|e| e.message)?;
    }
    let sub = parse_submission(PROTO, Some("PROTOBUF"), false).map_err(|e| e.message)?;
    registry
        .core()
        .register("proto", sub)
        .map_err(|e| e.message)?;
    Ok(())
}

fn framed(id: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + rest.len());
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(rest);
    out
}

/// `data` is one selector byte, then a payload. The selector picks a JSON
/// Schema subject or a Protobuf message; the payload is tried as JSON and
/// (Protobuf) as framed message bytes. Panics when something that
/// validates fails to convert or the conversion fails to validate.
pub fn typed_payload(registry: &Registry, data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let choices = JSON_SCHEMAS.len() + PROTO_MESSAGES.len();
    let pick = usize::from(pick) % choices;
    if pick < JSON_SCHEMAS.len() {
        json_payload(registry, &format!("json-{pick}"), body);
    } else {
        proto_payload(registry, PROTO_MESSAGES[pick - JSON_SCHEMAS.len()], body);
    }
}

fn json_payload(r: &Registry, subject: &str, body: &[u8]) {
    let Ok(v) = r.validate(subject, None, "application/json", body) else {
        // Not valid: only no panic on the framed path either.
        let _ = r.validate(subject, None, "application/octet-stream", body);
        return;
    };
    let wire = framed(v.schema_id, body);
    if let Err(e) = r.validate(subject, None, "application/octet-stream", &wire) {
        panic!("{subject}: valid JSON refused in Confluent's JSON wire format: {e:?}");
    }
    match r.to_json(v.schema_id, "application/octet-stream", &wire) {
        Ok(Some(back)) if back == body => {}
        other => panic!("{subject}: the framed JSON does not unframe to itself: {other:?}"),
    }
}

fn proto_payload(r: &Registry, message: &str, body: &[u8]) {
    let Some((_, stored)) = r.core().resolve_reader("proto", None) else {
        panic!("the proto fixture is not registered");
    };
    let Parsed::Protobuf(p) = &stored.parsed else {
        panic!("the proto fixture is not Protobuf");
    };
    let desc = match p.message(Some(message)) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let id = stored.id;
    let index = protobuf::encode_indexes(&p.index_of(&desc));
    let check_framed = |wire: &[u8], from: &str| {
        if let Err(e) =
            r.validate_message("proto", None, Some(message), "application/x-protobuf", wire)
        {
            panic!("{message}: {from} refused as framed bytes: {e:?}");
        }
        let json = match r.to_json(id, "application/x-protobuf", wire) {
            Ok(Some(j)) => j,
            other => panic!("{message}: {from} does not convert to JSON: {other:?}"),
        };
        if let Err(e) = r.validate_message("proto", None, Some(message), "application/json", &json)
        {
            panic!(
                "{message}: {from}, converted to JSON, is refused: {e:?}\n{}",
                String::from_utf8_lossy(&json)
            );
        }
    };
    // JSON -> message bytes -> JSON.
    if r.validate_message("proto", None, Some(message), "application/json", body)
        .is_ok()
    {
        let msg = match protobuf::from_json(&desc, body) {
            Ok(m) => m,
            Err(e) => panic!("{message}: validated JSON does not parse: {e:?}"),
        };
        let mut rest = index.clone();
        rest.extend_from_slice(&msg.encode_to_vec());
        check_framed(&framed(id, &rest), "validated JSON");
    }
    // Message bytes (framed here) -> JSON.
    let mut rest = index;
    rest.extend_from_slice(body);
    let wire = framed(id, &rest);
    if r.validate_message(
        "proto",
        None,
        Some(message),
        "application/x-protobuf",
        &wire,
    )
    .is_ok()
    {
        check_framed(&wire, "validated bytes");
    }
    // Whatever the bytes, with a header of their own: only no panic.
    let _ = r.validate_message("proto", None, Some(message), "application/x-protobuf", body);
}

/// Every compatibility level.
const LEVELS: [Level; 7] = [
    Level::None,
    Level::Backward,
    Level::BackwardTransitive,
    Level::Forward,
    Level::ForwardTransitive,
    Level::Full,
    Level::FullTransitive,
];

/// `data` is a type byte, then one schema's text, optionally a NUL and a
/// second one's. Each that parses is compatible with itself at every
/// level; checking one against the other terminates without a panic.
pub fn typed_schema(data: &[u8]) {
    let Some((&ty, rest)) = data.split_first() else {
        return;
    };
    let ty = if ty % 2 == 0 { "JSON" } else { "PROTOBUF" };
    let (a, b) = match rest.iter().position(|&c| c == 0) {
        Some(n) => (&rest[..n], Some(&rest[n + 1..])),
        None => (rest, None),
    };
    let parse = |bytes: &[u8]| {
        let text = std::str::from_utf8(bytes).ok()?;
        parse_submission(text, Some(ty), false)
            .ok()
            .map(|s| s.parsed)
    };
    let Some(first) = parse(a) else {
        return;
    };
    reflexive(&first, ty, a);
    let Some(second) = b.and_then(parse) else {
        return;
    };
    reflexive(&second, ty, b.unwrap_or_default());
    for level in LEVELS {
        let _ = check_parsed(level, &first, &[(1, &second)]);
        let _ = check_parsed(level, &second, &[(1, &first), (2, &second)]);
    }
}

fn reflexive(s: &Parsed, ty: &str, text: &[u8]) {
    for level in LEVELS {
        let problems = check_parsed(level, s, &[(1, s)]);
        if !problems.is_empty() {
            panic!(
                "a {ty} schema is not compatible with itself at {}: {problems:?}\n{}",
                level.as_str(),
                String::from_utf8_lossy(text)
            );
        }
    }
    if let Parsed::Protobuf(p) = s {
        // The printed form of a Protobuf schema is the same schema. Files
        // with imports are left out: they need their references to compile
        // again, and options set through an imported extension
        // (`[(confluent.field_meta) = ...]`) are not printed.
        if !p.file.file_descriptor_proto().dependency.is_empty() {
            return;
        }
        let printed = protobuf::print::render(p.file.file_descriptor_proto());
        match protobuf::ProtoSchema::parse(&printed, &[]) {
            Ok(again) if again.canonical == p.canonical => {}
            Ok(_) => panic!("the printed schema is another schema:\n{printed}"),
            Err(e) => panic!("the printed schema does not compile: {e}\n{printed}"),
        }
    }
}

/// A registry on a fresh store with the fixtures registered, for the
/// fuzz target and the tests.
pub fn fixture_registry(store: Arc<dyn switchyard_store::SchemaStore>) -> Registry {
    let registry = match Registry::open(store) {
        Ok(r) => r,
        Err(e) => panic!("the registry does not open: {e}"),
    };
    if let Err(e) = register_fixtures(&registry) {
        panic!("the fixtures do not register: {e}");
    }
    registry
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use std::path::PathBuf;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        assert!(out.len() >= 5, "{} holds too few seeds", dir.display());
        out
    }

    #[test]
    fn the_typed_payload_seed_corpus_keeps_the_conversion_properties() {
        let dir = tempfile::tempdir().unwrap();
        let store = switchyard_store_fjall::FjallStore::open(
            dir.path(),
            switchyard_store_fjall::Durability::Buffered,
        )
        .unwrap();
        let registry = fixture_registry(Arc::new(store));
        let seeds = corpus("registry_typed_payload");
        let mut validated = 0;
        for seed in &seeds {
            typed_payload(&registry, seed);
            let pick = usize::from(seed[0]) % (JSON_SCHEMAS.len() + PROTO_MESSAGES.len());
            let ok = if pick < JSON_SCHEMAS.len() {
                registry
                    .validate(
                        &format!("json-{pick}"),
                        None,
                        "application/json",
                        &seed[1..],
                    )
                    .is_ok()
            } else {
                registry
                    .validate_message(
                        "proto",
                        None,
                        Some(PROTO_MESSAGES[pick - JSON_SCHEMAS.len()]),
                        "application/json",
                        &seed[1..],
                    )
                    .is_ok()
            };
            validated += usize::from(ok);
        }
        // The seeds reach the conversions, not only the refusals.
        assert!(validated >= 4, "only {validated} seeds validate");
    }

    #[test]
    fn the_typed_schema_seed_corpus_is_reflexive_and_never_panics() {
        for seed in corpus("registry_typed_schema") {
            typed_schema(&seed);
        }
    }
}
