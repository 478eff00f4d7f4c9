//! Protobuf at both doors, through the gateway's own registry: a `.proto`
//! registered with Confluent's API (importing another subject's file
//! through `references`), a topic naming its message, Confluent-framed bytes
//! and protobuf's JSON mapping accepted, hostile frames refused with what is
//! wrong, conversion to JSON at delivery, and a destination's Protobuf
//! contract checked at egress. Message bytes are written by hand here, so
//! the test depends on the wire format, not on a library's view of it.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic};
use switchyard_tests::{Gateway, Sink, client, eventually};

const MONEY: &str = "syntax = \"proto3\";\npackage money;\nmessage Money { int64 cents = 1; }\n";

const ORDERS: &str = r#"syntax = "proto3";
package shop;
import "money.proto";
message Refund { string order_id = 1; }
message Order {
  string id = 1;
  int32 qty = 2;
  money.Money total = 3;
}
"#;

/// `Order { id: "o1", qty: 3 }` in protobuf's binary encoding.
const ORDER_BYTES: [u8; 6] = [0x0a, 0x02, b'o', b'1', 0x10, 0x03];

async fn post(gw: &Gateway, path: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .post(gw.url(path))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn register(gw: &Gateway, subject: &str, body: Value) -> (u16, Value) {
    post(
        gw,
        &format!("/registry/subjects/{subject}/versions"),
        "application/vnd.schemaregistry.v1+json",
        body.to_string().into_bytes(),
    )
    .await
}

/// Registers money.proto and the orders file that imports it; the orders
/// schema's id.
async fn register_orders(gw: &Gateway) -> u32 {
    let (s, v) = register(
        gw,
        "money.proto",
        json!({"schema": MONEY, "schemaType": "PROTOBUF"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = register(
        gw,
        "orders-proto",
        json!({"schema": ORDERS, "schemaType": "PROTOBUF",
               "references": [{"name": "money.proto", "subject": "money.proto", "version": 1}]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["id"].as_u64().unwrap() as u32
}

fn framed(id: u32, indexes: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(indexes);
    out.extend_from_slice(message);
    out
}

#[tokio::test]
async fn protobuf_topics_take_framed_bytes_and_json_and_deliver_json() {
    let sink = Sink::start().await;
    let cfg = Config::new()
        .destination(Destination::http("billing", &sink.url).format("json"))
        .topic(Topic::new("orders").routes(["billing"]).set(
            "schema",
            "{ subject = \"orders-proto\", message = \"shop.Order\" }",
        ))
        .build();
    let gw = Gateway::start(&cfg).await;
    let id = register_orders(&gw).await;

    // Registered once, found again by lookup, and served both as text and
    // as the descriptor Python's deserializer asks for.
    let (s, v) = post(
        &gw,
        "/registry/subjects/orders-proto",
        "application/vnd.schemaregistry.v1+json",
        json!({"schema": ORDERS, "schemaType": "PROTOBUF",
               "references": [{"name": "money.proto", "subject": "money.proto", "version": 1}]})
        .to_string()
        .into_bytes(),
    )
    .await;
    assert_eq!((s, v["id"].as_u64()), (200, Some(u64::from(id))), "{v}");
    let got: Value = client()
        .get(gw.url(&format!("/registry/schemas/ids/{id}?format=serialized")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["schemaType"], "PROTOBUF");
    assert_ne!(got["schema"], ORDERS, "{got}");
    // The descriptor form registers as the same schema.
    let (s, v) = register(
        &gw,
        "orders-proto",
        json!({"schema": got["schema"], "schemaType": "PROTOBUF",
               "references": [{"name": "money.proto", "subject": "money.proto", "version": 1}]}),
    )
    .await;
    assert_eq!((s, v["id"].as_u64()), (200, Some(u64::from(id))), "{v}");

    // A change of a field to a wire-incompatible type is refused, the rule named.
    let changed = ORDERS.replace("int32 qty = 2", "string qty = 2");
    let (s, v) = post(
        &gw,
        "/registry/compatibility/subjects/orders-proto/versions/latest?verbose=true",
        "application/vnd.schemaregistry.v1+json",
        json!({"schema": changed, "schemaType": "PROTOBUF",
               "references": [{"name": "money.proto", "subject": "money.proto", "version": 1}]})
        .to_string()
        .into_bytes(),
    )
    .await;
    assert_eq!((s, &v["is_compatible"]), (200, &json!(false)), "{v}");
    assert!(
        v["messages"]
            .to_string()
            .contains("FIELD_SCALAR_KIND_CHANGED"),
        "{v}"
    );

    // Order is message 1 of the file: index array [1] is count 1, index 1,
    // zigzag-encoded as 2 and 2.
    let ok = framed(id, &[0x02, 0x02], &ORDER_BYTES);
    for ct in [
        "application/x-protobuf",
        "application/vnd.google.protobuf",
        "application/octet-stream",
    ] {
        let (s, v) = post(&gw, "/v1/topics/orders/events", ct, ok.clone()).await;
        assert_eq!(s, 202, "{ct}: {v}");
    }
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"id": "o2", "total": {"cents": "250"}}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 202, "{v}");

    // Hostile or wrong input: each refused with what is wrong.
    let mut unknown_field = ORDER_BYTES.to_vec();
    unknown_field.extend_from_slice(&[0x48, 0x01]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated frame", vec![0, 0, 0], "too short"),
        (
            "wrong magic",
            {
                let mut b = ok.clone();
                b[0] = 7;
                b
            },
            "magic byte",
        ),
        (
            "index past the messages",
            framed(id, &[0x02, 0x0a], &ORDER_BYTES),
            "names no message",
        ),
        (
            "huge varint",
            framed(id, &[0xff; 11], &[]),
            "longer than 10 bytes",
        ),
        (
            "count beyond the bytes",
            framed(id, &[0xfe, 0xff, 0x7f], &[]),
            "claims",
        ),
        (
            "the other message",
            framed(id, &[0x00], &[0x0a, 0x01, b'x']),
            "shop.Refund",
        ),
        (
            "undeclared field",
            framed(id, &[0x02, 0x02], &unknown_field),
            "field number 9",
        ),
        (
            "bad bytes",
            framed(id, &[0x02, 0x02], &[0x0a, 0x09, b'x']),
            "not a valid shop.Order",
        ),
        (
            "unknown id",
            framed(id + 100, &[0x00], &[]),
            "not registered",
        ),
    ];
    for (what, body, says) in cases {
        let (s, v) = post(
            &gw,
            "/v1/topics/orders/events",
            "application/x-protobuf",
            body,
        )
        .await;
        assert_eq!(s, 422, "{what}: {v}");
        assert_eq!(v["error"]["code"], "schema_mismatch", "{what}: {v}");
        let m = v["error"]["message"].as_str().unwrap_or("");
        assert!(m.contains(says), "{what}: {m}");
    }
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"id": "o3", "qty": "many"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("schema_mismatch")),
        "{v}"
    );

    // Delivered as protobuf's JSON mapping.
    let got = sink.wait_for(4, Duration::from_secs(10)).await;
    let bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        bodies
            .iter()
            .filter(|b| **b == json!({"id": "o1", "qty": 3}))
            .count(),
        3,
        "{bodies:?}"
    );
    assert!(
        bodies.contains(&json!({"id": "o2", "total": {"cents": "250"}})),
        "{bodies:?}"
    );
    gw.stop().await;
}

/// A message the subject's schema lacks would refuse every payload, a
/// `message` on a JSON Schema subject has nothing to choose from, and
/// `format = "avro"` behind a Protobuf or JSON Schema subject could encode
/// nothing: the gateway refuses to start instead, naming the subject, the
/// destination and what it has; a reload to such a config is refused the
/// same way and the running config stays.
#[tokio::test]
async fn config_that_cannot_fit_the_registered_subject_stops_start_up_and_reload() {
    let plain = Config::new().build();
    let gw = Gateway::start(&plain).await;
    register_orders(&gw).await;
    let (s, v) = register(
        &gw,
        "orders-json",
        json!({"schema": r#"{"type":"object"}"#, "schemaType": "JSON"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let dir = gw.stop().await;

    let unknown_message = Config::new()
        .topic(Topic::new("orders").set(
            "schema",
            "{ subject = \"orders-proto\", message = \"shop.Nope\" }",
        ))
        .build();
    let message_on_json = Config::new()
        .topic(Topic::new("orders").set(
            "schema",
            "{ subject = \"orders-json\", message = \"shop.Order\" }",
        ))
        .build();
    let avro_behind = |subject: &str| {
        Config::new()
            .destination(Destination::log("lake").format("avro"))
            .topic(Topic::new("orders").routes(["lake"]).schema(subject))
            .build()
    };
    let cases = [
        (
            unknown_message,
            vec!["orders-proto", "shop.Nope", "shop.Refund, shop.Order"],
        ),
        (
            message_on_json,
            vec![
                "orders-json",
                "shop.Order",
                "JSON schema",
                "remove `message`",
            ],
        ),
        (
            avro_behind("orders-proto"),
            vec!["orders-proto", "PROTOBUF", "\"lake\"", "topic \"orders\""],
        ),
        (
            avro_behind("orders-json"),
            vec!["orders-json", "JSON", "\"lake\"", "format = \"json\""],
        ),
    ];
    let data = dir.path().join("data").display().to_string();
    for (cfg, says) in &cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, switchyard_tests::fill(cfg, &data)).unwrap();
        let config = switchyard::config::Config::load(&path).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = switchyard::run(config, listener, std::future::pending())
            .await
            .unwrap_err()
            .to_string();
        for s in says {
            assert!(err.contains(s), "{s:?} missing from: {err}");
        }
    }

    // The same configs by reload, onto a gateway running on `plain`.
    let gw = Gateway::start_in(&plain, dir).await;
    for (cfg, says) in &cases {
        let path = gw.dir.path().join("switchyard.toml");
        std::fs::write(&path, switchyard_tests::fill(cfg, &data)).unwrap();
        let r = client()
            .post(gw.url("/v1/admin/reload"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_config", "{v}");
        let errors: Vec<&str> = v["error"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let errors = errors.join("\n");
        for s in says {
            assert!(errors.contains(s), "{s:?} missing from: {errors}");
        }
    }
    // Still running on the old config: no topic "orders".
    let (s, _) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(s, 404);
    gw.stop().await;
}

/// A destination's Protobuf contract, checked after plugins: a JSON
/// payload that is not the message's JSON form is dead-lettered, never sent.
#[tokio::test]
async fn a_protobuf_destination_schema_dead_letters_what_breaks_it() {
    let sink = Sink::start().await;
    let cfg = Config::new()
        .destination(Destination::http("billing", &sink.url).set(
            "schema",
            "{ subject = \"orders-proto\", message = \"shop.Order\" }",
        ))
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    register_orders(&gw).await;
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"id": "o1", "colour": "red"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let bad_id = v["id"].as_str().unwrap().to_owned();
    let (s, _) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"id": "o1", "qty": 2}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 202);
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].body.as_ref(), br#"{"id": "o1", "qty": 2}"#);
    let dlq = eventually(Duration::from_secs(10), "dead-lettered", || async {
        let dlq: Value = client()
            .get(gw.url("/v1/destinations/billing/dlq"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (dlq["entries"].as_array().is_some_and(|e| !e.is_empty())).then_some(dlq)
    })
    .await;
    let entry = &dlq["entries"][0];
    assert_eq!(entry["id"], bad_id.as_str());
    let text = entry.to_string();
    assert!(
        text.contains("orders-proto") && text.contains("colour"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1);
    gw.stop().await;
}
