//! Schema validation cost per event: what `Registry::validate` adds to ingest
//! for a ~1 KB JSON event and for the same event as Confluent-framed Avro
//! (writer = reader, and an older writer resolved to the latest reader);
//! then `bench/schemas/order.json` against `order.schema.json` (JSON
//! Schema, with the jsonschema walk alone beside it) and against
//! `order.proto`'s `bench.Order` as JSON and as Confluent-framed bytes,
//! the fixtures `scripts/bench.sh schema` runs end to end.
//!
//! Run with `cargo bench -p switchyard-registry --bench registry_validation`.
//! Results are recorded in BENCHMARKS.md under "Schema validation".

use std::hint::black_box;

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchyard_registry::Registry;
use switchyard_registry::state::parse_submission;
use switchyard_store_fjall::{Durability, FjallStore};

fn schema(with_channel: bool) -> Value {
    let mut fields = vec![
        json!({"name": "id", "type": "string"}),
        json!({"name": "created_at", "type": "long"}),
        json!({"name": "status", "type": {"type": "enum", "name": "Status",
            "symbols": ["NEW", "PAID", "SHIPPED", "CANCELLED"]}}),
        json!({"name": "total", "type": "double"}),
        json!({"name": "currency", "type": "string"}),
        json!({"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
            {"name": "id", "type": "long"},
            {"name": "email", "type": "string"},
            {"name": "name", "type": ["null", "string"], "default": null},
            {"name": "vip", "type": "boolean", "default": false}
        ]}}),
        json!({"name": "items", "type": {"type": "array", "items": {"type": "record",
        "name": "Item", "fields": [
            {"name": "sku", "type": "string"},
            {"name": "qty", "type": "int"},
            {"name": "price", "type": "double"},
            {"name": "title", "type": "string"}
        ]}}}),
        json!({"name": "attributes", "type": {"type": "map", "values": "string"}, "default": {}}),
        json!({"name": "note", "type": ["null", "string"], "default": null}),
    ];
    if with_channel {
        fields.push(json!({"name": "channel", "type": ["null", "string"], "default": null}));
    }
    json!({"type": "record", "name": "Order", "namespace": "shop", "fields": fields})
}

fn event() -> Value {
    let items: Vec<Value> = (0..6)
        .map(|i| {
            json!({"sku": format!("SKU-{i:05}"), "qty": i + 1, "price": 19.99 + f64::from(i),
                   "title": format!("A reasonably descriptive product title number {i}")})
        })
        .collect();
    json!({
        "id": "ord_01HZX3K9Q8W7E6R5T4Y3U2I1O0", "created_at": 1_717_171_717_000_i64,
        "status": "PAID", "total": 187.45, "currency": "EUR",
        "customer": {"id": 4242, "email": "someone@example.com", "name": "Some One", "vip": true},
        "items": items,
        "attributes": {"source": "web", "campaign": "spring-sale", "ab_bucket": "B",
                       "referrer": "https://example.com/landing/page"},
        "note": "Leave at the door, please."
    })
}

/// Converts natural JSON into apache-avro's value for `schema`.
fn to_avro(schema: &apache_avro::Schema, v: &Value) -> Vec<u8> {
    let value = apache_avro::types::Value::try_from(v.clone())
        .expect("converts")
        .resolve(schema)
        .expect("the event matches the schema");
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .expect("writer")
        .write_value_to_vec(value)
        .expect("encodes")
}

fn framed(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(datum);
    v
}

fn register(registry: &Registry, s: &Value) -> u32 {
    let sub = parse_submission(&s.to_string(), None, false).expect("a valid schema");
    registry
        .core()
        .register("orders-value", sub)
        .expect("registers")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FjallStore::open(dir.path(), Durability::Sync).expect("store");
    let registry = Registry::open(Arc::new(store)).expect("registry");
    let old_id = register(&registry, &schema(false));
    let new_id = register(&registry, &schema(true));

    let json_body = serde_json::to_vec(&event()).expect("json");
    let old = apache_avro::Schema::parse(&schema(false)).expect("schema");
    let mut with_channel = event();
    with_channel["channel"] = Value::Null;
    let new = apache_avro::Schema::parse(&schema(true)).expect("schema");
    let avro_new = framed(new_id, &to_avro(&new, &with_channel));
    let avro_old = framed(old_id, &to_avro(&old, &event()));
    eprintln!(
        "event sizes: JSON {} bytes, Avro {} bytes",
        json_body.len(),
        avro_new.len()
    );

    let mut g = c.benchmark_group("schema_validation");
    g.throughput(Throughput::Elements(1));
    g.bench_function("json_1kb_parse_only", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&json_body)).expect("parses"))
    });
    g.bench_function("json_1kb", |b| {
        b.iter(|| {
            registry
                .validate(
                    "orders-value",
                    None,
                    "application/json",
                    black_box(&json_body),
                )
                .expect("valid")
        })
    });
    g.bench_function("avro_same_schema", |b| {
        b.iter(|| {
            registry
                .validate(
                    "orders-value",
                    None,
                    "application/vnd.apache.avro+binary",
                    black_box(&avro_new),
                )
                .expect("valid")
        })
    });
    g.bench_function("avro_older_writer_resolved", |b| {
        b.iter(|| {
            registry
                .validate(
                    "orders-value",
                    None,
                    "application/vnd.apache.avro+binary",
                    black_box(&avro_old),
                )
                .expect("valid")
        })
    });
    // What decoding with apache-avro would cost instead (schemas parsed
    // once, a `Value` built per event): the approach we didn't take.
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&new)
        .build()
        .expect("reader");
    g.bench_function("avro_apache_decode_for_comparison", |b| {
        b.iter(|| {
            let mut datum = black_box(&avro_new[5..]);
            reader.read_value(&mut datum).expect("decodes")
        })
    });
    typed(&registry, &mut g);
    g.finish();
}

/// The JSON Schema and Protobuf cases, on the end-to-end bench's fixtures.
fn typed(
    registry: &Registry,
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/schemas");
    let read = |name: &str| std::fs::read_to_string(fixtures.join(name)).expect("fixture");
    let order = read("order.json").into_bytes();
    let json_schema = read("order.schema.json");
    let sub = parse_submission(&json_schema, Some("JSON"), false).expect("JSON schema");
    registry
        .core()
        .register("bench-json", sub)
        .expect("registers");
    let sub = parse_submission(&read("order.proto"), Some("PROTOBUF"), false).expect("proto");
    let proto_id = registry
        .core()
        .register("bench-proto", sub)
        .expect("registers");
    let Some((_, stored)) = registry.core().resolve_reader("bench-proto", None) else {
        panic!("bench-proto is registered");
    };
    let switchyard_registry::Parsed::Protobuf(p) = &stored.parsed else {
        panic!("bench-proto is Protobuf");
    };
    let desc = p.message(Some("bench.Order")).expect("bench.Order");
    let msg = switchyard_registry::protobuf::from_json(&desc, &order).expect("order.json fits");
    let mut rest = vec![0u8];
    rest.extend_from_slice(&prost::Message::encode_to_vec(&msg));
    let proto_framed = framed(proto_id, &rest);
    eprintln!(
        "typed event sizes: JSON {} bytes, framed Protobuf {} bytes",
        order.len(),
        proto_framed.len()
    );
    let compiled = switchyard_registry::json_schema::JsonSchema::parse(
        &json_schema,
        std::collections::HashMap::new(),
    )
    .expect("compiles");
    let doc: sonic_rs::Value = sonic_rs::from_slice(&order).expect("parses");
    g.bench_function("jsonschema_walk_only", |b| {
        b.iter(|| compiled.validate_parsed(black_box(&doc)).expect("valid"))
    });
    // What `validate_parsed` walked before it asked `is_valid` first.
    g.bench_function("jsonschema_walk_with_error_tracking", |b| {
        b.iter(|| compiled.validate_tracking(black_box(&doc)).expect("valid"))
    });
    g.bench_function("json_schema_1kb", |b| {
        b.iter(|| {
            registry
                .validate("bench-json", None, "application/json", black_box(&order))
                .expect("valid")
        })
    });
    g.bench_function("protobuf_json_1kb", |b| {
        b.iter(|| {
            registry
                .validate_message(
                    "bench-proto",
                    None,
                    Some("bench.Order"),
                    "application/json",
                    black_box(&order),
                )
                .expect("valid")
        })
    });
    // The fixtures take the fast path (a bench of the fallback would
    // measure the wrong thing), and the dynamic decode it replaces is
    // measured beside it.
    let message_bytes = prost::Message::encode_to_vec(&msg);
    assert!(p.check.json(&desc, &doc), "order.json takes the fast path");
    assert!(
        p.check.wire(&desc, &message_bytes),
        "the framed order takes the fast path"
    );
    g.bench_function("protobuf_json_1kb_dynamic_message", |b| {
        b.iter(|| {
            switchyard_registry::protobuf::from_json(&desc, black_box(&order)).expect("valid")
        })
    });
    g.bench_function("protobuf_wire_dynamic_message", |b| {
        b.iter(|| {
            switchyard_registry::protobuf::decode(&desc, black_box(&message_bytes)).expect("valid")
        })
    });
    g.bench_function("protobuf_framed", |b| {
        b.iter(|| {
            registry
                .validate_message(
                    "bench-proto",
                    None,
                    Some("bench.Order"),
                    "application/x-protobuf",
                    black_box(&proto_framed),
                )
                .expect("valid")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
