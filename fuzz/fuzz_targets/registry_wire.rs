//! Confluent wire-format framing and Avro datum validation on arbitrary
//! bytes: no panic, no unbounded allocation or time. And what the gateway
//! accepts at ingest must be deliverable: a datum `validate_datum` accepts
//! is read whole by apache-avro (which converts it at delivery), and
//! re-encoded it validates again and reads back to the same value.
#![no_main]
use std::sync::LazyLock;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use libfuzzer_sys::fuzz_target;
use switchyard_registry::binary::{split_frame, validate_datum};
use switchyard_registry::schema::Schema;

#[path = "../common/schemas.rs"]
mod schemas;

static OURS: LazyLock<Vec<Schema>> =
    LazyLock::new(|| (0..schemas::SCHEMAS.len()).map(schemas::ours).collect());
static AVRO: LazyLock<Vec<apache_avro::Schema>> =
    LazyLock::new(|| (0..schemas::SCHEMAS.len()).map(schemas::avro).collect());

/// One datum read with apache-avro, as delivery converts it.
fn read(schema: &apache_avro::Schema, bytes: &mut &[u8]) -> apache_avro::AvroResult<Value> {
    GenericDatumReader::builder(schema)
        .build()?
        .read_value(bytes)
}

fn write(schema: &apache_avro::Schema, value: Value) -> apache_avro::AvroResult<Vec<u8>> {
    GenericDatumWriter::builder(schema)
        .build()?
        .write_value_to_vec(value)
}

fuzz_target!(|data: &[u8]| {
    if let Ok((id, datum)) = split_frame(data) {
        assert_eq!(id.to_be_bytes(), data[1..5]);
        assert_eq!(datum, &data[5..]);
        let _ = validate_datum(&OURS[0], datum);
    }
    let Some((&pick, datum)) = data.split_first() else {
        return;
    };
    let i = pick as usize % schemas::SCHEMAS.len();
    if validate_datum(&OURS[i], datum).is_err() {
        return;
    }
    let mut rest = datum;
    let value = read(&AVRO[i], &mut rest)
        .unwrap_or_else(|e| panic!("schema {i}: validated, but apache-avro can't read it: {e}"));
    assert!(
        rest.is_empty(),
        "schema {i}: validated, but apache-avro leaves {} bytes",
        rest.len()
    );
    let again = write(&AVRO[i], value.clone())
        .unwrap_or_else(|e| panic!("schema {i}: apache-avro can't re-encode its value: {e}"));
    if let Err(e) = validate_datum(&OURS[i], &again) {
        panic!("schema {i}: apache-avro's encoding of a valid datum is refused: {e}");
    }
    // Read back, it is the same value. (Not the same bytes: map entries
    // come out of a HashMap in any order. And NaN is not equal to itself.)
    let mut rest = &again[..];
    let back = read(&AVRO[i], &mut rest).expect("reads back");
    assert!(rest.is_empty());
    if value == value {
        assert_eq!(
            back, value,
            "schema {i}: the value changed through re-encoding"
        );
    }
    assert_eq!(
        write(&AVRO[i], back).expect("re-encodes").len(),
        again.len()
    );
});
