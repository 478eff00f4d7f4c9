//! Hostile input on every endpoint family: each gets a 4xx with a JSON
//! error body (never a 5xx, never a hang), nothing hostile is stored, and
//! the gateway keeps serving afterwards.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64_free::encode;
use serde_json::Value;
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::{Gateway, client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MARK: &str = "hostile-marker";

fn config() -> String {
    Config::new()
        .destination(Destination::pull("jobs").set("visibility_timeout", quoted("30s")))
        .topic(Topic::new("orders").routes(["jobs"]))
        .topic(
            Topic::new("signed")
                .routes(["jobs"])
                .verify("standard-webhooks", [SECRET]),
        )
        .build()
}

/// Sends raw bytes on a fresh connection and reads the reply (bounded in
/// time), returning the status code and the body text after the headers.
async fn raw(gw: &Gateway, request: &[u8]) -> (u16, String) {
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("the gateway hung on a raw request");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

async fn send(req: reqwest::RequestBuilder) -> (u16, String) {
    let r = tokio::time::timeout(Duration::from_secs(10), req.send())
        .await
        .expect("the gateway hung")
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// A 4xx whose body is a JSON error object.
fn assert_json_4xx(what: &str, (status, body): &(u16, String)) {
    assert!(
        (400..500).contains(status),
        "{what}: expected a 4xx, got {status}: {}",
        &body[..body.len().min(300)]
    );
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {body}"));
    // The gateway's own errors are `{"error": ...}`; the Confluent-compatible
    // registry answers in Confluent's shape, `{"error_code", "message"}`.
    assert!(
        v.get("error").is_some() || v.get("error_code").is_some(),
        "{what}: no error key: {body}"
    );
}

/// A 4xx (routing-level refusals such as 404/405 may carry no JSON body).
fn assert_4xx(what: &str, (status, body): &(u16, String)) {
    assert!(
        (400..500).contains(status),
        "{what}: expected a 4xx, got {status}: {}",
        &body[..body.len().min(300)]
    );
}

mod base64_free {
    /// Standard base64 (with padding), enough for a signature header.
    pub fn encode(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            out.push(T[(n >> 18) as usize & 63] as char);
            out.push(T[(n >> 12) as usize & 63] as char);
            out.push(if c.len() > 1 {
                T[(n >> 6) as usize & 63] as char
            } else {
                '='
            });
            out.push(if c.len() > 2 {
                T[n as usize & 63] as char
            } else {
                '='
            });
        }
        out
    }
}

fn whsec_key() -> Vec<u8> {
    let b64 = SECRET.trim_start_matches("whsec_");
    // Decode with the gateway's parser of secrets is what we test against, so
    // decode independently here.
    let t = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for ch in b64.bytes().filter(|&c| c != b'=') {
        let v = t.iter().position(|&x| x == ch).unwrap() as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

async fn post_signed(gw: &Gateway, id: &str, offset_secs: i64, body: &str) -> (u16, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts = now + offset_secs;
    let sig = switchyard_signatures::verify::standard_webhooks::signature(
        &whsec_key(),
        id,
        ts,
        body.as_bytes(),
    );
    send(
        client()
            .post(gw.url("/v1/topics/signed/events"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", format!("v1,{}", encode(&sig)))
            .body(body.to_owned()),
    )
    .await
}

#[tokio::test]
async fn hostile_ingest_bodies_headers_and_paths_are_refused_and_nothing_is_stored() {
    let gw = Gateway::start(&config()).await;
    let batch = gw.url("/v1/topics/orders/events/batch");

    // Invalid UTF-8 and NUL bytes inside JSON.
    let mut bad_utf8 = format!("{{\"m\":\"{MARK}").into_bytes();
    bad_utf8.extend_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
    bad_utf8.extend_from_slice(b"\"}");
    let nul = format!("{{\"m\":\"{MARK}\0\"}}").into_bytes();
    for (what, body) in [
        ("invalid utf-8", bad_utf8.clone()),
        ("raw NUL", nul.clone()),
    ] {
        // A single event's body is opaque bytes by design (webhooks), so
        // JSON validity is checked where the gateway parses: the batch.
        for url in [&batch] {
            let body = [b"[".as_slice(), &body, b"]"].concat();
            let r = send(
                client()
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
            assert_json_4xx(&format!("{what} to {url}"), &r);
        }
    }
    // NDJSON with a bad line.
    let r = send(
        client()
            .post(&batch)
            .header("content-type", "application/x-ndjson")
            .body([b"{\"a\":1}\n".as_slice(), &bad_utf8, b"\n"].concat()),
    )
    .await;
    assert_json_4xx("ndjson with invalid utf-8", &r);

    // Deeply nested JSON: 100k `[`.
    let deep = "[".repeat(100_000);
    for url in [&batch] {
        let r = send(
            client()
                .post(url)
                .header("content-type", "application/json")
                .body(deep.clone()),
        )
        .await;
        assert_json_4xx(&format!("100k [ to {url}"), &r);
    }

    // Wrong content types.
    for ct in [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "application/jsonx",
    ] {
        let r = send(
            client()
                .post(&batch)
                .header("content-type", ct)
                .body(format!("[{{\"m\":\"{MARK}\"}}]")),
        )
        .await;
        assert_json_4xx(&format!("batch as {ct}"), &r);
    }

    // Header values with invalid UTF-8 bytes and a huge header.
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let body = format!("{{\"m\":\"{MARK}\"}}");
    let mut req = format!(
        "POST /v1/topics/signed/events HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nwebhook-id: ",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&[0xff, 0xfe, 0x80]);
    req.extend_from_slice(
        b"\r\nwebhook-timestamp: \xff\xff\r\nwebhook-signature: v1,\xc0\xc1\r\n\r\n",
    );
    req.extend_from_slice(body.as_bytes());
    let r = raw(&gw, &req).await;
    assert_json_4xx("invalid utf-8 header values on a signed topic", &r);

    let huge = format!(
        "POST /v1/topics/orders/events HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-huge: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        "a".repeat(1_000_000),
        body.len()
    );
    let r = raw(&gw, huge.as_bytes()).await;
    assert!(
        (400..500).contains(&r.0) || r.0 == 0,
        "a 1 MB header: expected a 4xx or a closed connection, got {}",
        r.0
    );

    // Truncated body: Content-Length 1000, 10 bytes, then the client closes.
    for path in ["/v1/topics/orders/events", "/v1/topics/orders/events/batch"] {
        truncated_body_is_refused(&addr, path, &addr, 1000, r#"{"m":"hos"#).await;
    }

    // Very long topic names, and path segments with %00 and `..`.
    let long = "t".repeat(60_000);
    let r = send(
        client()
            .post(gw.url(&format!("/v1/topics/{long}/events")))
            .header("content-type", "application/json")
            .body(body.clone()),
    )
    .await;
    assert_4xx("a 60k-char topic name", &r);
    for path in [
        "/v1/topics/orders%00/events",
        "/v1/topics/%00/events",
        "/v1/topics/..%2Forders/events",
        "/v1/topics/%2E%2E/events",
        "/v1/topics/orders%2F..%2F..%2Fadmin/events",
    ] {
        let r = send(
            client()
                .post(gw.url(path))
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
        assert_4xx(path, &r);
    }
    let r = raw(
        &gw,
        format!(
            "POST /v1/topics/../topics/orders/events HTTP/1.1\r\nhost: {addr}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert!(r.0 != 0 && r.0 < 500, "a raw `..` path: {}", r.0);

    // Still serving, and nothing hostile was stored.
    let (s, _) = send(client().get(gw.url("/healthz"))).await;
    assert_eq!(s, 200);
    let (s, listing) = send(client().get(gw.url("/v1/events?limit=1000"))).await;
    assert_eq!(s, 200, "{listing}");
    // The raw `..` request may legitimately normalise to orders; all others not.
    let v: Value = serde_json::from_str(&listing).unwrap();
    let events = v["events"].as_array().cloned().unwrap_or_default();
    assert!(events.len() <= 1, "hostile payloads were stored: {listing}");
    assert!(!listing.contains("hos\""), "the truncated body was stored");
}

#[tokio::test]
async fn standard_webhooks_signatures_ten_minutes_old_or_ahead_are_401() {
    let gw = Gateway::start(&config()).await;
    let body = format!("{{\"m\":\"{MARK}\"}}");
    for offset in [-600, 600] {
        let r = post_signed(&gw, &format!("msg_{offset}"), offset, &body).await;
        assert_eq!(r.0, 401, "offset {offset}: {}", r.1);
        assert_json_4xx(&format!("offset {offset}"), &r);
    }
    let (s, listing) = send(client().get(gw.url("/v1/events"))).await;
    assert_eq!(s, 200);
    assert!(!listing.contains(MARK), "a replayed request was stored");
    // Control: the same signer with the current time is accepted, so the
    // refusals above were about the timestamp alone.
    let r = post_signed(&gw, "msg_now", 0, &body).await;
    assert_eq!(r.0, 202, "{}", r.1);
}

#[tokio::test]
async fn hostile_admin_pull_and_registry_requests_get_json_4xx() {
    let gw = Gateway::start(&config()).await;
    let json = |url: String, body: Vec<u8>| {
        client()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
    };
    let checks: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("events bad limit", client().get(gw.url("/v1/events?limit=-5"))),
        ("events huge limit", client().get(gw.url("/v1/events?limit=99999999999999999999"))),
        ("events bad cursor", client().get(gw.url("/v1/events?after=%ff%fe&before=zzz"))),
        ("events bad id", client().get(gw.url("/v1/events/not-a-ulid"))),
        ("events %00 id", client().get(gw.url("/v1/events/%00"))),
        ("events long id", client().get(gw.url(&format!("/v1/events/{}", "Z".repeat(10_000))))),
        ("redeliver bad id", client().post(gw.url("/v1/events/xyz/redeliver"))),
        ("dlq replay malformed", json(gw.url("/v1/destinations/jobs/dlq/replay"), b"{\"ids\":[".to_vec())),
        ("dlq replay wrong types", json(gw.url("/v1/destinations/jobs/dlq/replay"), b"{\"ids\":42}".to_vec())),
        ("topic dlq replay malformed", json(gw.url("/v1/topics/orders/dlq/replay"), vec![0xff, 0x00])),
        ("ack garbage receipts", json(gw.url("/v1/queues/jobs/ack"), br#"{"receipts":["garbage","!!"]}"#.to_vec())),
        ("ack long receipt", json(gw.url("/v1/queues/jobs/ack"), format!("{{\"receipts\":[\"{}\"]}}", "r".repeat(10_000)).into_bytes())),
        ("ack wrong types", json(gw.url("/v1/queues/jobs/ack"), br#"{"receipts":[1,null,{}]}"#.to_vec())),
        ("ack not json", json(gw.url("/v1/queues/jobs/ack"), b"receipts=1".to_vec())),
        ("nack garbage", json(gw.url("/v1/queues/jobs/nack"), br#"{"receipts":["\u0000"]}"#.to_vec())),
        ("extend garbage", json(gw.url("/v1/queues/jobs/extend"), br#"{"receipts":["x"],"seconds":-1}"#.to_vec())),
        ("receive wrong types", json(gw.url("/v1/queues/jobs/receive"), br#"{"max_messages":"ten"}"#.to_vec())),
        ("registry non-json", client().post(gw.url("/registry/subjects/s/versions")).header("content-type", "application/vnd.schemaregistry.v1+json").body("not json at all")),
        ("registry bad avro", json(gw.url("/registry/subjects/s/versions"), br#"{"schema":"{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"nope\"}]}"}"#.to_vec())),
        ("registry schema not a string", json(gw.url("/registry/subjects/s/versions"), br#"{"schema":{"type":"int"}}"#.to_vec())),
        ("registry protobuf that does not compile", json(gw.url("/registry/subjects/s/versions"), br#"{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; message A { int32 = 1; }"}"#.to_vec())),
    ];
    for (what, req) in checks {
        let r = send(req).await;
        if what.starts_with("ack") || what.starts_with("nack") || what.starts_with("extend") {
            // Receipts are answered one by one: a 200 listing each as refused, or a 4xx.
            if r.0 == 200 {
                let v: Value = serde_json::from_str(&r.1).unwrap();
                let results = v["results"].as_array().unwrap();
                assert!(!results.is_empty(), "{what}: {}", r.1);
                assert!(results.iter().all(|x| x["ok"] == false), "{what}: {}", r.1);
                continue;
            }
            assert_json_4xx(what, &r);
        } else if what.contains("huge subject") || what.contains("long id") || what.contains("%00")
        {
            assert_4xx(what, &r);
        } else {
            assert_json_4xx(what, &r);
        }
    }
    // A 1 MB subject name, sent raw (HTTP clients refuse such a URI).
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let body = r#"{"schema":"\"int\""}"#;
    let r = raw(
        &gw,
        format!(
            "POST /registry/subjects/{}/versions HTTP/1.1\r\nhost: {addr}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            "s".repeat(1_000_000),
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert!(
        (400..500).contains(&r.0) || r.0 == 0,
        "a 1 MB subject: expected a 4xx or a closed connection, got {}",
        r.0
    );
    let (s, _) = send(client().get(gw.url("/healthz"))).await;
    assert_eq!(s, 200);
    let (s, subjects) = send(client().get(gw.url("/registry/subjects"))).await;
    assert_eq!(s, 200);
    assert_eq!(subjects.trim(), "[]", "a hostile schema was registered");
}

/// Whether a raw request was refused: a 4xx, or the connection closed
/// without an answer (hyper does that for bytes that are not HTTP).
fn refused((status, _): &(u16, String)) -> bool {
    *status == 0 || (400..500).contains(status)
}

#[tokio::test]
async fn hostile_requests_to_every_other_endpoint_get_4xx_and_change_nothing() {
    let gw = Gateway::start(&config()).await;
    // One real event, so "nothing changed" is checked against something.
    let (s, _) = send(
        client()
            .post(gw.url("/v1/topics/orders/events"))
            .header("content-type", "application/json")
            .body(r#"{"legit":true}"#),
    )
    .await;
    assert_eq!(s, 202);
    let deep = "[".repeat(100_000);
    let huge_number = format!("1{}", "0".repeat(400));
    let unknown_ulid = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let json = |method: reqwest::Method, path: &str, body: String| {
        client()
            .request(method, gw.url(path))
            .header("content-type", "application/json")
            .body(body)
    };
    use reqwest::Method as M;
    let json_checks: Vec<(&str, reqwest::RequestBuilder)> = vec![
        // Admin: destinations, DLQs, events.
        ("pause unknown", client().post(gw.url("/v1/destinations/%ff%fe/pause"))),
        ("resume unknown", client().post(gw.url("/v1/destinations/..%2F..%2Fetc/resume"))),
        ("dlq of unknown destination", client().get(gw.url("/v1/destinations/nope/dlq"))),
        ("purge unknown destination", client().delete(gw.url("/v1/destinations/nope/dlq"))),
        ("dlq delete garbage id", client().delete(gw.url("/v1/destinations/jobs/dlq/not-an-id"))),
        ("dlq delete unknown id", client().delete(gw.url(&format!("/v1/destinations/jobs/dlq/{unknown_ulid}")))),
        ("topic dlq unknown", client().get(gw.url("/v1/topics/nope/dlq"))),
        ("topic dlq delete traversal", client().delete(gw.url("/v1/topics/orders/dlq/..%2F..%2Fetc%2Fpasswd"))),
        ("topic dlq replay deep json", json(M::POST, "/v1/topics/orders/dlq/replay", deep.clone())),
        ("dest dlq replay huge number", json(M::POST, "/v1/destinations/jobs/dlq/replay", format!("{{\"limit\":{huge_number}}}"))),
        ("redeliver unknown", client().post(gw.url(&format!("/v1/events/{unknown_ulid}/redeliver")))),
        ("events huge-number limit", client().get(gw.url(&format!("/v1/events?limit={huge_number}")))),
        ("events limit 1e400", client().get(gw.url("/v1/events?limit=1e400"))),
        // Pull consumers.
        ("receive huge number", json(M::POST, "/v1/queues/jobs/receive", format!("{{\"max_messages\":{huge_number}}}"))),
        ("receive 1e400", json(M::POST, "/v1/queues/jobs/receive", r#"{"max_messages":1e400}"#.into())),
        ("receive negative wait", json(M::POST, "/v1/queues/jobs/receive", r#"{"wait_seconds":-1}"#.into())),
        ("receive u64 max visibility", json(M::POST, "/v1/queues/jobs/receive", format!("{{\"visibility_timeout_seconds\":{}}}", u64::MAX))),
        ("receive deep json", json(M::POST, "/v1/queues/jobs/receive", deep.clone())),
        ("receive unknown queue", json(M::POST, "/v1/queues/%00/receive", "{}".into())),
        ("receive on a topic name", json(M::POST, "/v1/queues/orders/receive", "{}".into())),
        ("ack deep json", json(M::POST, "/v1/queues/jobs/ack", deep.clone())),
        ("ack text/plain", client().post(gw.url("/v1/queues/jobs/ack")).header("content-type", "text/plain").body(vec![0xff, 0xfe, 0x00])),
        ("extend huge seconds", json(M::POST, "/v1/queues/jobs/extend", format!("{{\"receipts\":[\"{unknown_ulid}.0000000000000001\"],\"seconds\":{huge_number}}}"))),
        // Registry.
        ("version not a number", client().get(gw.url("/registry/subjects/s/versions/abc"))),
        ("version 0", client().get(gw.url("/registry/subjects/s/versions/0"))),
        ("version huge", client().get(gw.url(&format!("/registry/subjects/s/versions/{huge_number}")))),
        ("version -2", client().get(gw.url("/registry/subjects/s/versions/-2"))),
        ("schema id -1", client().get(gw.url("/registry/schemas/ids/-1"))),
        ("schema id huge", client().get(gw.url(&format!("/registry/schemas/ids/{huge_number}")))),
        ("schema id %00", client().get(gw.url("/registry/schemas/ids/%00/schema"))),
        ("schema id versions garbage", client().get(gw.url("/registry/schemas/ids/x/versions"))),
        ("compat garbage", json(M::POST, "/registry/compatibility/subjects/s/versions/latest", "{\"schema\":".into())),
        ("compat deep", json(M::POST, "/registry/compatibility/subjects/s/versions", deep.clone())),
        ("config unknown level", json(M::PUT, "/registry/config", r#"{"compatibility":"SIDEWAYS"}"#.into())),
        ("config deep", json(M::PUT, "/registry/config/s", deep.clone())),
        ("config wrong type", json(M::PUT, "/registry/config", r#"{"compatibility":42}"#.into())),
        ("mode garbage", json(M::PUT, "/registry/mode", "{\"mode\":\"\\u0000\"}".into())),
        ("lookup not json", json(M::POST, "/registry/subjects/s", "schema=int".into())),
        ("register deep", json(M::POST, "/registry/subjects/s/versions", deep.clone())),
        ("register nested schema text", json(M::POST, "/registry/subjects/s/versions", serde_json::json!({"schema": deep}).to_string())),
        ("register huge number in schema", json(M::POST, "/registry/subjects/s/versions", serde_json::json!({"schema": format!("{{\"type\":\"fixed\",\"name\":\"F\",\"size\":{huge_number}}}")}).to_string())),
        ("register xml", client().post(gw.url("/registry/subjects/s/versions")).header("content-type", "application/xml").body("<schema/>")),
        ("delete unknown subject", client().delete(gw.url("/registry/subjects/%ff%fe"))),
        ("unknown registry route", client().get(gw.url("/registry/..%2F..%2Fv1%2Fevents"))),
    ];
    for (what, req) in json_checks {
        let r = send(req).await;
        assert_json_4xx(what, &r);
    }
    // Routing-level refusals (wrong method, unknown path).
    for (what, req) in [
        ("POST /metrics", client().post(gw.url("/metrics"))),
        ("DELETE /healthz", client().delete(gw.url("/healthz"))),
        (
            "unknown path",
            client().get(gw.url("/v1/%2e%2e/%2e%2e/etc/passwd")),
        ),
    ] {
        assert_4xx(what, &send(req).await);
    }
    // Read-only endpoints ignore a hostile query string: still a clean 200.
    for path in ["/metrics?%ff%fe=%00&x", "/healthz?\u{0}", "/readyz?a=%ff"] {
        let (s, body) = send(client().get(gw.url(path))).await;
        assert_eq!(s, 200, "{path}: {body}");
    }

    // Malformed HTTP, raw.
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let body = r#"{"m":"hostile-raw"}"#;
    let post = |path: &[u8], extra: &[u8]| {
        [
            b"POST ".as_slice(),
            path,
            b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\n",
            extra,
            format!("content-length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        ]
        .concat()
    };
    let many_headers: Vec<u8> = (0..10_000)
        .flat_map(|i| format!("x-h{i}: v\r\n").into_bytes())
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "10k headers",
            post(b"/v1/topics/orders/events", &many_headers),
        ),
        (
            "invalid utf-8 path",
            post(b"/v1/topics/\xff\xfe/events", b""),
        ),
        (
            "invalid utf-8 query",
            b"GET /v1/events?limit=\xff\xfe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
                .to_vec(),
        ),
        ("NUL in path", post(b"/v1/topics/ord\0ers/events", b"")),
        (
            "header without colon",
            post(b"/v1/topics/orders/events", b"not a header\r\n"),
        ),
        (
            "header name with invalid bytes",
            post(b"/v1/topics/orders/events", b"x-\xff: 1\r\n"),
        ),
        (
            "two content-lengths",
            post(b"/v1/topics/orders/events", b"content-length: 3\r\n"),
        ),
        ("content-length not a number", {
            b"POST /v1/topics/orders/events HTTP/1.1\r\nhost: x\r\ncontent-length: 1e3\r\nconnection: close\r\n\r\n{}".to_vec()
        }),
        ("bad chunk size", {
            b"POST /v1/topics/orders/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec()
        }),
        (
            "garbage request line",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
        ),
        (
            "HTTP/9",
            b"GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n".to_vec(),
        ),
    ];
    for (what, req) in cases {
        let r = raw(&gw, &req).await;
        assert!(
            refused(&r),
            "{what}: expected a 4xx or a closed connection, got {}: {}",
            r.0,
            r.1
        );
    }

    // Truncated bodies to the other writers: the client sends part, closes.
    for path in [
        "/v1/queues/jobs/ack",
        "/registry/subjects/s/versions",
        "/v1/topics/orders/events/batch",
        "/v1/topics/orders/dlq/replay",
    ] {
        truncated_body_is_refused(&addr, path, "x", 5000, r#"{"schema":"\"int"#).await;
    }

    // Still serving, and nothing changed.
    let (s, _) = send(client().get(gw.url("/healthz"))).await;
    assert_eq!(s, 200);
    let (_, listing) = send(client().get(gw.url("/v1/events?limit=1000"))).await;
    let v: Value = serde_json::from_str(&listing).unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "hostile requests stored events: {listing}");
    let (_, subjects) = send(client().get(gw.url("/registry/subjects"))).await;
    assert_eq!(subjects.trim(), "[]");
    let (_, cfg) = send(client().get(gw.url("/registry/config"))).await;
    let cfg: Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["compatibilityLevel"], "BACKWARD", "{cfg}");
    let (_, dests) = send(client().get(gw.url("/v1/destinations"))).await;
    assert!(!dests.contains("\"paused\":true"), "{dests}");
}

/// Sends part of a JSON body that declares `declared` bytes, then closes
/// the sending side: the gateway must answer promptly, and not with a 2xx
/// (nothing taken) or a 5xx (nothing broken).
async fn truncated_body_is_refused(
    addr: &str,
    path: &str,
    host: &str,
    declared: usize,
    part: &str,
) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n\
             content-length: {declared}\r\n\r\n{part}"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s.shutdown().await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("the gateway hung on a truncated body");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        !text.starts_with("HTTP/1.1 2") && !text.starts_with("HTTP/1.1 5"),
        "a truncated body to {path} got: {text}"
    );
}
