//! Arbitrary JSON Schema and `.proto` text (the first byte picks the type):
//! parsing never panics, a schema that parses is compatible with itself at
//! every level, a Protobuf file printed back to `.proto` is the same
//! schema, and checking one schema against another terminates without a
//! panic. The properties live in `switchyard_registry::properties`, whose
//! unit tests replay this target's seed corpus.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard_registry::properties::typed_schema;

fuzz_target!(|data: &[u8]| {
    typed_schema(data);
});
