//! The registry's own Avro schema parser, normaliser and compatibility
//! checker on arbitrary schema text (what `POST /registry/subjects/.../
//! versions` takes). No panic and no runaway recursion; for a schema both
//! apache-avro and our parser accept (the registry requires both): it can
//! read its own data, its normalized text is a fixed point that both
//! parsers still accept, and checking it against another schema at every
//! compatibility level terminates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchyard_registry::compat::{Level, can_read, check};
use switchyard_registry::schema::{Schema, normalized_text};

#[path = "../common/schemas.rs"]
mod schemas;

fn both(json: &Value) -> Option<Schema> {
    apache_avro::Schema::parse(json).ok()?;
    Schema::parse(json).ok()
}

fuzz_target!(|data: &[u8]| {
    // Layout: schema text, optionally a NUL and a second schema text.
    let (a, b) = match data.iter().position(|&c| c == 0) {
        Some(n) => (&data[..n], Some(&data[n + 1..])),
        None => (data, None),
    };
    let Ok(json) = serde_json::from_slice::<Value>(a) else {
        return;
    };
    let ours = Schema::parse(&json);
    if let Ok(s) = &ours {
        let _ = s.describe(&s.root);
    }
    let Some(schema) = both(&json) else {
        return;
    };
    if let Err(e) = can_read(&schema, &schema) {
        panic!("a schema can't read its own data: {e:?}");
    }
    let normalized = normalized_text(&json);
    let njson: Value = serde_json::from_str(&normalized).expect("normalized text is JSON");
    let renormalized = normalized_text(&njson);
    assert_eq!(normalized, renormalized, "normalization is not idempotent");
    if let Err(e) = apache_avro::Schema::parse(&njson) {
        panic!("apache-avro refuses the normalized text {normalized}: {e}");
    }
    let Ok(nschema) = Schema::parse(&njson) else {
        panic!("our parser refuses the normalized text {normalized}");
    };
    if let Err(e) = can_read(&schema, &nschema) {
        panic!("a schema and its normalized form don't resolve: {e:?}");
    }

    let other = match b.map(serde_json::from_slice::<Value>) {
        Some(Ok(j)) => both(&j),
        Some(Err(_)) => None,
        None => Some(schemas::ours(data.len() % schemas::SCHEMAS.len())),
    };
    if let Some(other) = other {
        let _ = can_read(&schema, &other);
        let _ = can_read(&other, &schema);
        for level in [
            "BACKWARD",
            "BACKWARD_TRANSITIVE",
            "FORWARD",
            "FORWARD_TRANSITIVE",
            "FULL",
            "FULL_TRANSITIVE",
            "NONE",
        ] {
            let level = Level::parse(level).expect("level");
            let _ = check(level, &schema, &[(1, &other), (2, &schema)]);
        }
    }
});
