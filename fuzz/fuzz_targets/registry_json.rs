//! The registry's validation of payloads (natural JSON and Confluent-framed
//! Avro) through a real `Registry` on a temporary store, and the promise
//! behind it: what validation accepts at ingest converts at delivery
//! (`format = "json" | "avro"` destinations), both ways, and the converted
//! payload validates again. No panic, whatever the body.
#![no_main]
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchyard_registry::Registry;
use switchyard_registry::state::parse_submission;
use switchyard_store_fjall::{Durability, FjallStore};

#[path = "../common/schemas.rs"]
mod schemas;

const AVRO: &str = "application/vnd.apache.avro+binary";

struct Fixture {
    registry: Registry,
    /// Schema id of subject `s{i}`.
    ids: Vec<u32>,
    _dir: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FjallStore::open(dir.path(), Durability::Buffered).expect("store");
    let registry = Registry::open(std::sync::Arc::new(store)).expect("registry");
    let ids = (0..schemas::SCHEMAS.len())
        .map(|i| {
            let sub = parse_submission(&schemas::json(i).to_string(), None, false)
                .unwrap_or_else(|e| panic!("schema {i}: {e:?}"));
            registry
                .core()
                .register(&format!("s{i}"), sub)
                .unwrap_or_else(|e| panic!("schema {i}: {e:?}"))
        })
        .collect();
    Fixture {
        registry,
        ids,
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    // Layout: [subject][body]; the body is tried as JSON, and as a datum
    // framed with the subject's schema id.
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let i = pick as usize % schemas::SCHEMAS.len();
    let subject = format!("s{i}");
    let id = f.ids[i];
    let r = &f.registry;

    if r.validate(&subject, None, "application/json", body).is_ok() {
        let wire = r
            .json_to_avro(id, body)
            .unwrap_or_else(|e| panic!("schema {i}: validated JSON does not convert: {e}"));
        if let Err(e) = r.validate(&subject, None, AVRO, &wire) {
            panic!("schema {i}: converted JSON is not valid Avro: {e:?}");
        }
        let json = r
            .avro_to_json(id, &wire)
            .unwrap_or_else(|e| panic!("schema {i}: converted JSON does not come back: {e}"));
        if let Err(e) = r.validate(&subject, None, "application/json", &json) {
            panic!("schema {i}: JSON -> Avro -> JSON is refused: {e:?}");
        }
    }

    let mut framed = vec![0u8];
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(body);
    if r.validate(&subject, None, AVRO, &framed).is_ok() {
        let json = r
            .avro_to_json(id, &framed)
            .unwrap_or_else(|e| panic!("schema {i}: validated Avro does not convert: {e}"));
        if let Err(e) = r.validate(&subject, None, "application/json", &json) {
            panic!("schema {i}: Avro converted to JSON is refused: {e:?}");
        }
        r.json_to_avro(id, &json)
            .unwrap_or_else(|e| panic!("schema {i}: Avro -> JSON -> Avro fails: {e}"));
    }
    // Any content type, framed or not: only no panic.
    let _ = r.validate(
        &subject,
        Some(1),
        "application/vnd.schemaregistry.v1+json",
        body,
    );
    let _ = r.validate(&subject, None, "application/octet-stream", body);
});
