//! Protobuf through the router: a schema registered as a base64
//! descriptor (as Python's serializer sends it) reads back as `.proto`
//! text, as Confluent answers, and as the descriptor with
//! `format=serialized`; looking it up by its text finds the same id.

use super::*;

use switchyard_registry::protobuf::ProtoSchema;

const ORDER: &str = "syntax = \"proto3\";\npackage shop;\nimport \"google/protobuf/timestamp.proto\";\nmessage Order {\n  string id = 1;\n  map<string, int64> totals = 2;\n  google.protobuf.Timestamp at = 3;\n}\n";

#[tokio::test]
async fn a_descriptor_registration_reads_back_as_proto_text_and_looks_up_by_either_form() {
    let f = fixture();
    let descriptor = ProtoSchema::parse(ORDER, &[]).unwrap().serialized;
    let a = call(
        &f.app,
        "POST",
        "/subjects/orders-proto/versions",
        Some(json!({"schemaType": "PROTOBUF", "schema": descriptor})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let id = a.body["id"].as_u64().unwrap();

    for uri in [
        format!("/schemas/ids/{id}"),
        "/subjects/orders-proto/versions/1".to_string(),
        "/subjects/orders-proto/versions/latest".to_string(),
    ] {
        let a = call(&f.app, "GET", &uri, None).await;
        assert_eq!(a.body["schemaType"], "PROTOBUF", "{uri}: {}", a.body);
        let text = a.body["schema"].as_str().unwrap();
        assert!(
            text.starts_with("syntax = \"proto3\";\npackage shop;\n")
                && text.contains("import \"google/protobuf/timestamp.proto\";")
                && text.contains("map<string, int64> totals = 2;")
                && text.contains(".google.protobuf.Timestamp at = 3;"),
            "{uri}: {text}"
        );
        let a = call(&f.app, "GET", &format!("{uri}?format=serialized"), None).await;
        assert_eq!(a.body["schema"], descriptor.as_str(), "{uri}");
    }
    let text = call(&f.app, "GET", &format!("/schemas/ids/{id}"), None)
        .await
        .body["schema"]
        .as_str()
        .unwrap()
        .to_string();
    for form in [text.as_str(), ORDER, descriptor.as_str()] {
        let a = call(
            &f.app,
            "POST",
            "/subjects/orders-proto",
            Some(json!({"schemaType": "PROTOBUF", "schema": form})),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{form}: {}", a.body);
        assert_eq!(a.body["id"], json!(id), "{form}");
    }
    // Registering the text again is the same schema: no new version.
    let a = call(
        &f.app,
        "POST",
        "/subjects/orders-proto/versions",
        Some(json!({"schemaType": "PROTOBUF", "schema": text})),
    )
    .await;
    assert_eq!(a.body["id"], json!(id));
    let a = call(&f.app, "GET", "/subjects/orders-proto/versions", None).await;
    assert_eq!(a.body, json!([1]));
}
