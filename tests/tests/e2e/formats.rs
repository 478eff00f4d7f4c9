//! Delivery formats end to end: a destination with `format = "avro"` gets
//! Confluent wire format that Python's fastavro decodes, `format = "json"`
//! gets natural JSON from Avro payloads (with schema evolution applied),
//! and `as-received` is byte-identical.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::{Gateway, Sink, client, python};

const PY: &str = r#"
import io, json, struct, sys, fastavro
req = json.load(sys.stdin)
schema = fastavro.parse_schema(json.loads(req["schema"]))
if req["op"] == "encode":
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", req["id"]))
    fastavro.schemaless_writer(buf, schema, req["record"])
    print(buf.getvalue().hex())
else:
    raw = bytes.fromhex(req["hex"])
    assert raw[0] == 0, "magic byte"
    rec = fastavro.schemaless_reader(io.BytesIO(raw[5:]), schema)
    print(json.dumps({"id": struct.unpack(">I", raw[1:5])[0], "record": rec}))
"#;

fn py(req: Value) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(python())
        .args(["-c", PY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "fastavro helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"int"},{"name":"amount","type":"double"},{"name":"note","type":["null","string"],"default":null}]}"#;
const V2: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"int"},{"name":"amount","type":"double"},{"name":"note","type":["null","string"],"default":null},{"name":"currency","type":"string","default":"EUR"}]}"#;

struct Setup {
    gw: Gateway,
    as_json: Sink,
    as_avro: Sink,
    raw: Sink,
}

async fn setup(pinned: Option<u32>) -> Setup {
    let (as_json, as_avro, raw) = (
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
    );
    let topic = Topic::new("fmt-orders").routes(["as-json", "as-avro", "raw"]);
    let topic = match pinned {
        Some(v) => topic.set(
            "schema",
            format!(
                "{{ subject = {}, version = {v} }}",
                quoted("fmt-orders-value")
            ),
        ),
        None => topic.schema("fmt-orders-value"),
    };
    let config = Config::new()
        .destination(Destination::http("as-json", &as_json.url).format("json"))
        .destination(Destination::http("as-avro", &as_avro.url).format("avro"))
        .destination(Destination::http("raw", &raw.url))
        .topic(topic)
        .build();
    Setup {
        gw: Gateway::start(&config).await,
        as_json,
        as_avro,
        raw,
    }
}

async fn register(gw: &Gateway, schema: &str) -> u32 {
    let r: Value = client()
        .post(gw.url("/registry/subjects/fmt-orders-value/versions"))
        .json(&json!({ "schema": schema }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("register failed: {r}")) as u32
}

async fn post(gw: &Gateway, content_type: &str, body: Vec<u8>) {
    let r = client()
        .post(gw.url("/v1/topics/fmt-orders/events"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 202, "{}", r.text().await.unwrap());
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_event_is_delivered_as_confluent_avro_that_fastavro_decodes() {
    let s = setup(None).await;
    let id = register(&s.gw, V1).await;
    let record = json!({"id": 7, "amount": 12.5, "note": "rush"});
    let body = serde_json::to_vec(&record).unwrap();
    post(&s.gw, "application/json", body.clone()).await;

    let got = s.as_avro.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].header("content-type"),
        Some("application/vnd.apache.avro+binary")
    );
    let decoded: Value = serde_json::from_str(&py(json!({
        "op": "decode", "schema": V1, "hex": hex(&got[0].body)
    })))
    .unwrap();
    assert_eq!(decoded, json!({"id": id, "record": record}));

    // JSON to a json destination, and as-received: unchanged bytes.
    let j = s.as_json.wait_for(1, WAIT).await;
    assert_eq!(serde_json::from_slice::<Value>(&j[0].body).unwrap(), record);
    let raw = s.raw.wait_for(1, WAIT).await;
    assert_eq!(raw[0].body.as_ref(), body.as_slice());
    assert_eq!(raw[0].header("content-type"), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_wire_event_is_delivered_as_natural_json_and_raw_bytes_unchanged() {
    let s = setup(None).await;
    let id = register(&s.gw, V1).await;
    let record = json!({"id": 3, "amount": 1.25, "note": null});
    let wire = unhex(&py(
        json!({"op": "encode", "schema": V1, "id": id, "record": record}),
    ));
    post(&s.gw, "application/vnd.apache.avro+binary", wire.clone()).await;

    let j = s.as_json.wait_for(1, WAIT).await;
    assert_eq!(j[0].header("content-type"), Some("application/json"));
    assert_eq!(serde_json::from_slice::<Value>(&j[0].body).unwrap(), record);
    let raw = s.raw.wait_for(1, WAIT).await;
    assert_eq!(raw[0].body.as_ref(), wire.as_slice());
    let a = s.as_avro.wait_for(1, WAIT).await;
    assert_eq!(a[0].body.as_ref(), wire.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_written_with_v1_is_delivered_as_json_of_the_pinned_v2_with_defaults() {
    let s = setup(Some(2)).await;
    let v1 = register(&s.gw, V1).await;
    register(&s.gw, V2).await;
    let record = json!({"id": 9, "amount": 4.0, "note": "old"});
    let wire = unhex(&py(
        json!({"op": "encode", "schema": V1, "id": v1, "record": record}),
    ));
    post(&s.gw, "application/octet-stream", wire).await;

    let j = s.as_json.wait_for(1, WAIT).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&j[0].body).unwrap(),
        json!({"id": 9, "amount": 4.0, "note": "old", "currency": "EUR"})
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_converting_destination_on_a_topic_without_schema_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fmt.toml");
    std::fs::write(
        &path,
        "[[destinations]]\nname = \"as-avro\"\nkind = \"log\"\nformat = \"avro\"\n\
         [[topics]]\nname = \"plain\"\nroutes = [\"as-avro\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(switchyard_tests::bin())
        .args(["check-config", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("topics[0].routes[0]") && err.contains("needs a schema"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_destination_with_json_format_receives_avro_events_as_json() {
    let config = Config::new()
        .destination(Destination::pull("fmt-jobs").format("json"))
        .topic(
            Topic::new("fmt-orders")
                .routes(["fmt-jobs"])
                .schema("fmt-orders-value"),
        )
        .build();
    let gw = Gateway::start(&config).await;
    let id = register(&gw, V1).await;
    let record = json!({"id": 9, "amount": 2.5, "note": "pulled"});
    let wire = unhex(&py(
        json!({"op": "encode", "schema": V1, "id": id, "record": record}),
    ));
    post(&gw, "application/vnd.apache.avro+binary", wire).await;
    let v: Value = client()
        .post(gw.url("/v1/queues/fmt-jobs/receive"))
        .json(&json!({"max_messages": 1, "wait_seconds": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &v["messages"][0];
    assert_eq!(m["content_type"], "application/json", "{v}");
    let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, record);
}
