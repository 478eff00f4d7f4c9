//! JSON Schema and Protobuf payloads through a real `Registry` on a
//! temporary store: what validates converts and validates again (JSON
//! Schema payloads in Confluent's JSON wire format; Protobuf from its JSON
//! mapping to framed bytes and back), and nothing panics, whatever the
//! body. The properties live in `switchyard_registry::properties`, whose
//! unit tests replay this target's seed corpus.
#![no_main]
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchyard_registry::Registry;
use switchyard_registry::properties::{fixture_registry, typed_payload};
use switchyard_store_fjall::{Durability, FjallStore};

struct Fixture {
    registry: Registry,
    _dir: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FjallStore::open(dir.path(), Durability::Buffered).expect("store");
    Fixture {
        registry: fixture_registry(std::sync::Arc::new(store)),
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    typed_payload(&FIXTURE.registry, data);
});
