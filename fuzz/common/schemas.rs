//! Schemas shared by the registry targets (included with `#[path]`; not a
//! target of its own): every Avro type, a recursive record, unions at the
//! root and nested, logical types on each type that carries one.
// Each target uses some of these helpers.
#![allow(dead_code)]

use serde_json::Value;

pub const SCHEMAS: &[&str] = &[
    r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"string"},{"name":"amount","type":"long"},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"attrs","type":{"type":"map","values":"double"}},
        {"name":"note","type":["null","string"],"default":null}]}"#,
    r#"{"type":"record","name":"Node","fields":[
        {"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}"#,
    r#"{"type":"record","name":"All","fields":[
        {"name":"b","type":"boolean"},{"name":"f","type":"float"},{"name":"d","type":"double"},
        {"name":"raw","type":"bytes"},
        {"name":"fx","type":{"type":"fixed","name":"Four","size":4}},
        {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}},
        {"name":"m","type":{"type":"map","values":{"type":"array","items":["null","int","Color"]}}},
        {"name":"n","type":"null"},
        {"name":"o","type":"int","default":7}]}"#,
    r#"["null","long","string",{"type":"array","items":"bytes"},
        {"type":"record","name":"Empty","fields":[]}]"#,
    r#"{"type":"array","items":{"type":"record","name":"Pair","fields":[
        {"name":"k","type":"string"},{"name":"v","type":["null","double","boolean"]}]}}"#,
    r#"{"type":"record","name":"Logical","fields":[
        {"name":"sid","type":{"type":"string","logicalType":"uuid"}},
        {"name":"uid","type":{"type":"fixed","name":"U16","size":16,"logicalType":"uuid"}},
        {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
        {"name":"amount","type":{"type":"fixed","name":"Dec3","size":3,
            "logicalType":"decimal","precision":6,"scale":1}},
        {"name":"wait","type":["null",{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}]},
        {"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"day","type":{"type":"int","logicalType":"date"}},
        {"name":"pad","type":{"type":"fixed","name":"Two","size":2},"default":"\u00ffa"}]}"#,
];

pub fn json(i: usize) -> Value {
    serde_json::from_str(SCHEMAS[i]).expect("schema json")
}

pub fn ours(i: usize) -> switchyard_registry::schema::Schema {
    switchyard_registry::schema::Schema::parse(&json(i)).expect("our parser")
}

/// apache-avro's parse of schema `i` as the gateway reads Avro with it
/// (`registry::conversion_schema`: without logical types, which validation
/// ignores too).
pub fn avro(i: usize) -> apache_avro::Schema {
    switchyard_registry::conversion_schema(SCHEMAS[i]).expect("apache-avro")
}
