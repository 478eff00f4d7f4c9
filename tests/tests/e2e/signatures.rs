//! Signatures at the edges, with the real Python `standardwebhooks` library
//! on the other side: it signs what senders post, and it verifies what the
//! gateway delivers.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Topic};
use switchyard_tests::{Gateway, Sink, client, run_python};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OUT_SECRET: &str = "whsec_c2VjcmV0LWZvci10aGUtZGVzdGluYXRpb24tMTIz";
const OUT_SECRET_OLD: &str = "whsec_b2xkLXNlY3JldC1iZWluZy1yb3RhdGVkLW91dC0x";

fn config(sink: &str) -> String {
    Config::new()
        .destination(
            Destination::http("billing", sink)
                .signing("standard-webhooks", [OUT_SECRET, OUT_SECRET_OLD])
                .set("headers", "{ \"x-api-key\" = \"key-123\" }")
                .retry("{ initial = \"100ms\", max_attempts = 2 }"),
        )
        .topic(Topic::new("orders").routes(["billing"]).verify(
            "standard-webhooks",
            ["whsec_b3RoZXItc2VjcmV0LXRoYXQtZG9lcy1ub3QtbWF0Y2g=", SECRET],
        ))
        .topic(
            Topic::new("github")
                .routes(["billing"])
                .verify("github", ["It's a Secret to Everybody"]),
        )
        .build()
}

fn sign(id: &str, body: &str, age_seconds: i64) -> Value {
    let (ok, out) = run_python(
        "sign_standardwebhooks.py",
        &json!({"secret": SECRET, "id": id, "body": body, "age_seconds": age_seconds}),
    );
    assert!(ok, "the signer failed");
    serde_json::from_str(&out).unwrap()
}

async fn post(gw: &Gateway, topic: &str, headers: &Value, body: &str) -> reqwest::Response {
    let mut req = client()
        .post(gw.url(&format!("/v1/topics/{topic}/events")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers.as_object().unwrap() {
        req = req.header(k.as_str(), v.as_str().unwrap());
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn standard_webhooks_senders_are_verified_and_forgeries_refused() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    let body = r#"{"type":"order.paid","amount":1200}"#;

    let good = sign("msg_1", body, 0);
    let r = post(&gw, "orders", &good, body).await;
    assert_eq!(r.status(), 202);

    // The same signed request again is an idempotent duplicate (webhook-id).
    let r = post(&gw, "orders", &good, body).await;
    assert_eq!(r.status(), 200);

    // A tampered body: 401, with a reason and no secret in it.
    let r = post(&gw, "orders", &good, r#"{"type":"order.paid","amount":1}"#).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    assert_eq!(v["error"]["reason"], "no_match");
    assert!(!v.to_string().contains("MfKQ9r8"));

    // A replay from 10 minutes ago is outside the tolerance.
    let old = sign("msg_2", body, 600);
    let r = post(&gw, "orders", &old, body).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["reason"], "timestamp_out_of_tolerance");

    // No signature at all names the missing header.
    let r = post(&gw, "orders", &json!({}), body).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("webhook-"),
        "{v}"
    );

    // Only the verified event was stored and delivered.
    sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn github_signatures_are_verified() {
    let sink = Sink::start().await;
    let gw = Gateway::start(&config(&sink.url)).await;
    // The example from GitHub's documentation.
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let r = post(
        &gw,
        "github",
        &json!({"x-hub-signature-256": sig}),
        "Hello, World!",
    )
    .await;
    assert_eq!(r.status(), 202);
    let r = post(
        &gw,
        "github",
        &json!({"x-hub-signature-256": sig}),
        "Hello, World?",
    )
    .await;
    assert_eq!(r.status(), 401);
    gw.stop().await;
}

#[tokio::test]
async fn every_delivery_verifies_with_the_reference_library() {
    let sink = Sink::start().await;
    sink.script([switchyard_tests::Reply::status(503)]);
    let gw = Gateway::start(&config(&sink.url)).await;
    let body = r#"{"type":"order.created"}"#;
    let r = post(&gw, "orders", &sign("msg_out", body, 0), body).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A failed attempt and its retry: both signed, same webhook-id.
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    for req in &got {
        assert_eq!(req.header("webhook-id"), Some(id.as_str()));
        assert_eq!(req.header("x-api-key"), Some("key-123"));
        let signature = req.header("webhook-signature").unwrap();
        assert_eq!(
            signature.split(' ').count(),
            2,
            "one signature per secret while rotating"
        );
        for secret in [OUT_SECRET, OUT_SECRET_OLD] {
            let (ok, _) = run_python(
                "verify_standardwebhooks.py",
                &json!({
                    "secret": secret,
                    "id": req.header("webhook-id").unwrap(),
                    "timestamp": req.header("webhook-timestamp").unwrap(),
                    "signature": signature,
                    "body": String::from_utf8(req.body.to_vec()).unwrap(),
                }),
            );
            assert!(
                ok,
                "standardwebhooks rejected a delivery signed for {secret}"
            );
        }
        // And a receiver with some other secret rejects it.
        let (ok, _) = run_python(
            "verify_standardwebhooks.py",
            &json!({
                "secret": SECRET,
                "id": req.header("webhook-id").unwrap(),
                "timestamp": req.header("webhook-timestamp").unwrap(),
                "signature": signature,
                "body": String::from_utf8(req.body.to_vec()).unwrap(),
            }),
        );
        assert!(!ok);
    }
    gw.stop().await;
}
