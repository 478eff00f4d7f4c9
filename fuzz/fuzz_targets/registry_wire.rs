//! Confluent wire-format framing and Avro datum validation on arbitrary
//! bytes: no panic, no unbounded allocation.
#![no_main]
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchyard::registry::binary::{split_frame, validate_datum};

static SCHEMA: LazyLock<switchyard::registry::schema::Schema> = LazyLock::new(|| {
    switchyard::registry::schema::Schema::parse(
        &serde_json::from_str(
            r#"{"type":"record","name":"Order","fields":[
        {"name":"id","type":"string"},{"name":"amount","type":"long"},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"attrs","type":{"type":"map","values":"double"}},
        {"name":"note","type":["null","string"],"default":null}]}"#,
        )
        .expect("json"),
    )
    .expect("schema")
});

fuzz_target!(|data: &[u8]| {
    if let Ok((_id, datum)) = split_frame(data) {
        let _ = validate_datum(&SCHEMA, datum);
    }
    let _ = validate_datum(&SCHEMA, data);
});
