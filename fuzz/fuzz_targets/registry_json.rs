//! The registry's validation of payloads (natural JSON and Confluent-framed
//! Avro) through a real `Registry` on a temporary store, and the promise
//! behind it: what validation accepts at ingest converts at delivery
//! (`format = "json" | "avro"` destinations), both ways, and the converted
//! payload validates again. No panic, whatever the body.
#![no_main]
use std::sync::LazyLock;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use switchyard::config::Durability;
use switchyard::registry::Registry;
use switchyard::store::Store;
use tower::ServiceExt;

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
    let store = Store::open(dir.path(), Durability::Buffered).expect("store");
    let registry = Registry::new(store).expect("registry");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ids = (0..schemas::SCHEMAS.len())
        .map(|i| {
            let body = serde_json::json!({ "schema": schemas::json(i).to_string() }).to_string();
            let req = Request::post(format!("/subjects/s{i}/versions"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request");
            rt.block_on(async {
                let resp = registry.router().oneshot(req).await.expect("answer");
                let bytes = resp.into_body().collect().await.expect("body").to_bytes();
                let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                v["id"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("schema {i}: {v}")) as u32
            })
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
