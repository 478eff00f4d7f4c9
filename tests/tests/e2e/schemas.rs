//! Schema validation at ingest, through the gateway's own registry under
//! `/registry`: a schema registered with Confluent's API stops bad payloads
//! at the door with the path of the first bad field.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Plugin, Topic};
use switchyard_tests::{Gateway, Sink, client, eventually};

const SCHEMA: &str = r#"{"type":"record","name":"Order","fields":[
  {"name":"id","type":"long"},
  {"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"email","type":"string"}]}},
  {"name":"note","type":["null","string"],"default":null}]}"#;

fn config(sink: &str) -> String {
    Config::new()
        .destination(Destination::http("billing", sink))
        .topic(
            Topic::new("orders")
                .routes(["billing"])
                .schema("orders-value"),
        )
        .build()
}

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

#[tokio::test]
async fn payloads_are_validated_against_the_registered_schema() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;

    // Before a schema exists, the topic refuses rather than guessing.
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("schema_mismatch")),
        "{v}"
    );

    let (s, v) = post(
        &gw,
        "/registry/subjects/orders-value/versions",
        "application/vnd.schemaregistry.v1+json",
        json!({ "schema": SCHEMA }).to_string().into_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let schema_id = v["id"].as_u64().unwrap();

    let good = br#"{"id": 7, "customer": {"email": "a@b.c"}}"#.to_vec();
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        good.clone(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();

    let bad = br#"{"id": 7, "customer": {"email": 42}}"#.to_vec();
    let (s, v) = post(&gw, "/v1/topics/orders/events", "application/json", bad).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "schema_mismatch");
    assert_eq!(v["error"]["path"], "/customer/email");
    assert!(
        v["error"]["expected"].as_str().unwrap().contains("string"),
        "{v}"
    );

    let (s, v) = post(&gw, "/v1/topics/orders/events", "text/plain", good.clone()).await;
    assert_eq!(s, 415, "{v}");

    // Confluent wire format: magic 0, schema id, then the Avro datum
    // (long 7 zig-zag = 14, string "a@b.c", union branch 0 = null).
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(schema_id as u32).to_be_bytes());
    framed.extend_from_slice(&[14, 10]);
    framed.extend_from_slice(b"a@b.c");
    framed.push(0);
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/vnd.apache.avro+binary",
        framed.clone(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let mut unknown = framed.clone();
    unknown[1..5].copy_from_slice(&999u32.to_be_bytes());
    let (s, _) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/octet-stream",
        unknown,
    )
    .await;
    assert_eq!(s, 422);
    let (s, _) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/octet-stream",
        framed[..7].to_vec(),
    )
    .await;
    assert_eq!(s, 422);

    // A batch names the bad element.
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events/batch",
        "application/json",
        br#"[{"id":1,"customer":{"email":"x"}},{"id":"two","customer":{"email":"y"}}]"#.to_vec(),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["index"], 1);
    assert_eq!(v["error"]["path"], "/id");

    // Only the two valid events were kept and delivered; the event records
    // the schema it was validated against.
    sink.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.received().len(), 2);
    let e: Value = eventually(Duration::from_secs(10), "the event", || async {
        let r = client()
            .get(gw.url(&format!("/v1/events/{id}")))
            .send()
            .await
            .unwrap();
        (r.status() == 200).then_some(())?;
        r.json().await.ok()
    })
    .await;
    let attrs = e["attributes"].to_string();
    assert!(
        attrs.contains("schema.id") && attrs.contains(&schema_id.to_string()),
        "{e}"
    );
    gw.stop().await;
}

/// A JSON Schema topic: a bad payload is a 422 naming the path, what was
/// expected and the keyword that failed; good ones, as JSON or in
/// Confluent's JSON wire format, are kept and delivered; `format = "json"`
/// delivers the framed one without its header.
#[tokio::test]
async fn json_schema_topics_refuse_with_path_expected_and_keyword() {
    let sink = Sink::start().await;
    let cfg = Config::new()
        .destination(Destination::http("billing", &sink.url).format("json"))
        .topic(
            Topic::new("orders")
                .routes(["billing"])
                .schema("orders-value"),
        )
        .build();
    let gw = Gateway::start(&cfg).await;
    let schema = json!({
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"enum": ["new", "paid"]},
            "ship_to": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}
        },
        "required": ["id"]
    });
    let (s, v) = post(
        &gw,
        "/registry/subjects/orders-value/versions",
        "application/vnd.schemaregistry.v1+json",
        json!({ "schema": schema.to_string(), "schemaType": "JSON" })
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let schema_id = v["id"].as_u64().unwrap() as u32;

    let bad = br#"{"id": 1, "ship_to": {"zip": "ABC"}}"#.to_vec();
    let (s, v) = post(&gw, "/v1/topics/orders/events", "application/json", bad).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "schema_mismatch");
    assert_eq!(v["error"]["path"], "/ship_to/zip");
    assert_eq!(v["error"]["keyword"], "pattern");
    assert!(
        v["error"]["expected"]
            .as_str()
            .unwrap()
            .contains("^[0-9]{5}$"),
        "{v}"
    );

    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"id": 1, "status": "new"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let mut framed = vec![0u8];
    framed.extend_from_slice(&schema_id.to_be_bytes());
    framed.extend_from_slice(br#"{"id":2}"#);
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/octet-stream",
        framed,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    let bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(bodies.contains(&json!({"id": 2})), "{bodies:?}");
    assert!(
        bodies.contains(&json!({"id": 1, "status": "new"})),
        "{bodies:?}"
    );
    gw.stop().await;
}

/// A destination's own contract: what breaks it is never sent, it is
/// dead-lettered at once with the path and keyword; what keeps it is
/// delivered. The topic itself validates nothing here.
#[tokio::test]
async fn a_destination_schema_dead_letters_what_breaks_it_at_once() {
    let sink = Sink::start().await;
    let cfg = Config::new()
        .destination(
            Destination::http("billing", &sink.url).set("schema", "{ subject = \"billing-v2\" }"),
        )
        .topic(Topic::new("orders").routes(["billing"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    let schema = json!({"type": "object", "properties": {"amount": {"type": "integer"}},
        "required": ["amount"]});
    let (s, v) = post(
        &gw,
        "/registry/subjects/billing-v2/versions",
        "application/vnd.schemaregistry.v1+json",
        json!({ "schema": schema.to_string(), "schemaType": "JSON" })
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"amount": "12"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let bad_id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"amount": 12}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].body.as_ref(), br#"{"amount": 12}"#);
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
    assert_eq!(entry["attempts"], 1, "{entry}");
    let text = entry.to_string();
    assert!(
        text.contains("billing-v2") && text.contains("/amount") && text.contains("type"),
        "{text}"
    );
    // Only the good one reached the sink.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1);
    gw.stop().await;
}

/// A pull destination's contract, checked at receive after plugins: the
/// payload the `redact` plugin turned into a string where the schema wants
/// an integer is dead-lettered with the path, the keyword and the plugin's
/// name, and counted; the consumer only ever sees the payload that keeps
/// the contract.
#[tokio::test]
async fn a_pull_destination_schema_dead_letters_what_a_plugin_broke_and_names_the_plugin() {
    let redact =
        switchyard_tests::workspace().join("plugins/target/wasm32-wasip2/release/redact.wasm");
    assert!(
        redact.exists(),
        "{} is missing: run scripts/build-plugins.sh",
        redact.display()
    );
    let cfg = Config::new()
        .plugin(Plugin::new("redact", &redact).config([("mask", "/amount")]))
        .destination(Destination::pull("jobs").set("schema", "{ subject = \"billing-v2\" }"))
        .topic(Topic::new("orders").routes(["jobs"]).plugins(["redact"]))
        .build();
    let gw = Gateway::start(&cfg).await;
    let schema = json!({"type": "object", "properties": {"amount": {"type": "integer"}}});
    let (s, v) = post(
        &gw,
        "/registry/subjects/billing-v2/versions",
        "application/vnd.schemaregistry.v1+json",
        json!({ "schema": schema.to_string(), "schemaType": "JSON" })
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"amount": 12}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let bad_id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = post(
        &gw,
        "/v1/topics/orders/events",
        "application/json",
        br#"{"note": "no amount"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let good_id = v["id"].as_str().unwrap().to_owned();

    // Receive until the good one arrives; the bad one must never be handed out.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(&good_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "the conforming message never came: {seen:?}"
        );
        let (s, v) = post(
            &gw,
            "/v1/queues/jobs/receive",
            "application/json",
            json!({"max_messages": 10, "wait_seconds": 1})
                .to_string()
                .into_bytes(),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        for m in v["messages"].as_array().unwrap() {
            seen.push(m["id"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        !seen.contains(&bad_id),
        "the consumer was handed the broken payload: {seen:?}"
    );
    let dlq: Value = client()
        .get(gw.url("/v1/destinations/jobs/dlq"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = dlq["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{dlq}");
    assert_eq!(entries[0]["id"], bad_id.as_str());
    let text = entries[0].to_string();
    for s in ["billing-v2", "/amount", "type", "plugin \\\"redact\\\""] {
        assert!(text.contains(s), "{s:?} missing from {text}");
    }
    // The event's attempt record says the same.
    let event: Value = client()
        .get(gw.url(&format!("/v1/events/{bad_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = event.to_string();
    assert!(
        text.contains("plugin \\\"redact\\\"") && text.contains("billing-v2"),
        "{text}"
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(
            "switchyard_egress_schema_rejections_total{destination=\"jobs\",subject=\"billing-v2\"} 1"
        ),
        "{}",
        metrics.lines().filter(|l| l.contains("egress")).collect::<Vec<_>>().join("\n")
    );
    gw.stop().await;
}
