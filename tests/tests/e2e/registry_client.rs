//! The schema registry end to end: Confluent's own Python client
//! (`confluent-kafka[schemaregistry]`) registers, looks up, tests and
//! deletes schemas at `/registry`, its AvroSerializer's wire-format payloads
//! are accepted by a schema topic, fastavro-made bad ones are refused, and
//! everything survives a restart.

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic};
use switchyard_tests::{Gateway, client, python, workspace};

fn config() -> String {
    Config::new()
        .destination(Destination::log("audit"))
        .topic(
            Topic::new("reg-orders")
                .routes(["audit"])
                .schema("reg-orders-value"),
        )
        .build()
}

async fn run_client_script(gw: &Gateway) {
    let out = tokio::process::Command::new(python())
        .arg(workspace().join("tests/python/registry_client_test.py"))
        .env("SWITCHYARD_REGISTRY_URL", gw.url("/registry"))
        .env("SWITCHYARD_INGEST_URL", gw.url("/v1/topics"))
        .env("SWITCHYARD_REGISTRY_TOPIC", "reg-orders")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "the Confluent client test failed:\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_client_and_wire_format_payloads_work_through_the_gateway() {
    let gw = Gateway::start(&config()).await;

    // Before any schema exists the topic can't validate: refused, not stored.
    let early = client()
        .post(gw.url("/v1/topics/reg-orders/events"))
        .json(&json!({"id": 1, "amount": 2}))
        .send()
        .await
        .unwrap();
    assert!(early.status().is_client_error() || early.status().is_server_error());

    run_client_script(&gw).await;

    // The gateway's own error shape for a JSON mismatch: path and expected.
    let bad = client()
        .post(gw.url("/v1/topics/reg-orders/events"))
        .json(&json!({"id": 1, "amount": "two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "schema_mismatch");
    assert_eq!(body["error"]["path"], "/amount");
    assert_eq!(body["error"]["expected"], "int");

    // Registrations are durable: the subject and its ids survive a restart.
    let before: Value = client()
        .get(gw.url("/registry/subjects/reg-orders-value/versions/latest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = gw.stop().await;
    let gw = Gateway::start_in(&config(), dir).await;
    let after: Value = client()
        .get(gw.url("/registry/subjects/reg-orders-value/versions/latest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    let ok = client()
        .post(gw.url("/v1/topics/reg-orders/events"))
        .json(&json!({"id": 1, "amount": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    gw.stop().await;
}

/// Confluent's ProtobufSerializer against the real gateway: it registers
/// its file and the file it imports (as base64 descriptors), its framed
/// bytes are accepted by a Protobuf topic and delivered converted to
/// protobuf's JSON mapping, and its ProtobufDeserializer reads them back
/// with the schema fetched from the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_protobuf_serializer_bytes_are_accepted_and_delivered_as_json() {
    let sink = switchyard_tests::Sink::start().await;
    let cfg = Config::new()
        .destination(Destination::http("orders-json", &sink.url).format("json"))
        .topic(
            Topic::new("proto-orders")
                .routes(["orders-json"])
                .schema("proto-orders-value"),
        )
        .build();
    let gw = Gateway::start(&cfg).await;
    let out = tokio::process::Command::new(python())
        .arg(workspace().join("tests/python/registry_protobuf_client_test.py"))
        .env("SWITCHYARD_REGISTRY_URL", gw.url("/registry"))
        .env("SWITCHYARD_INGEST_URL", gw.url("/v1/topics"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "the Confluent Protobuf client test failed:\n{stdout}\n{stderr}"
    );
    let got = sink.wait_for(2, std::time::Duration::from_secs(10)).await;
    for r in &got {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"id": "p1", "qty": 5, "total": {"cents": "250"}, "at": "2023-11-14T22:13:20Z"}),
        );
    }
    gw.stop().await;
}
