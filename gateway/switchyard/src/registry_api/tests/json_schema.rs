//! JSON Schema through the registry's API: registration, references,
//! compatibility with Confluent's rule names, and validation.

use serde_json::{Value, json};

use super::{ValidationError, call, fixture};

fn json_body(schema: &Value) -> Value {
    json!({ "schema": schema.to_string(), "schemaType": "JSON" })
}

fn order() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"enum": ["new", "paid"]},
            "email": {"type": "string", "format": "email"}
        },
        "required": ["id"]
    })
}

#[tokio::test]
async fn json_schemas_register_and_read_back_with_their_type() {
    let f = fixture();
    let a = call(
        &f.app,
        "POST",
        "/subjects/orders-value/versions",
        Some(json_body(&order())),
    )
    .await;
    assert_eq!(a.body, json!({"id": 1}), "{}", a.body);
    let again = call(
        &f.app,
        "POST",
        "/subjects/orders-value/versions",
        Some(json_body(&order())),
    )
    .await;
    assert_eq!(again.body, json!({"id": 1}));
    let v = call(
        &f.app,
        "GET",
        "/subjects/orders-value/versions/latest",
        None,
    )
    .await;
    assert_eq!(v.body["schemaType"], json!("JSON"));
    assert_eq!(v.body["version"], json!(1));
    let by_id = call(&f.app, "GET", "/schemas/ids/1", None).await;
    assert_eq!(by_id.body["schemaType"], json!("JSON"));
    let raw = call(&f.app, "GET", "/schemas/ids/1/schema", None).await;
    assert_eq!(raw.body, order());
    // The same text as Avro is another schema: it doesn't parse as one.
    call(
        &f.app,
        "POST",
        "/subjects/other/versions",
        Some(json!({"schema": order().to_string()})),
    )
    .await
    .error(422, 42201);
    // Lookup needs the type too.
    let found = call(
        &f.app,
        "POST",
        "/subjects/orders-value",
        Some(json_body(&order())),
    )
    .await;
    assert_eq!(found.body["id"], json!(1));
    // An invalid JSON schema is a 42201 that says why.
    let bad = call(
        &f.app,
        "POST",
        "/subjects/bad/versions",
        Some(json_body(&json!({"type": "objekt"}))),
    )
    .await;
    bad.error(422, 42201);
    assert!(
        bad.body["message"]
            .as_str()
            .unwrap()
            .contains("Invalid JSON schema")
    );
}

#[tokio::test]
async fn references_resolve_to_other_subjects_and_protect_them() {
    let f = fixture();
    let address =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    call(
        &f.app,
        "POST",
        "/subjects/address/versions",
        Some(json_body(&address)),
    )
    .await;
    let customer = json!({"type": "object", "properties": {"ship_to": {"$ref": "address.json"}}});
    let mut body = json_body(&customer);
    body["references"] = json!([{"name": "address.json", "subject": "address", "version": 1}]);
    let a = call(&f.app, "POST", "/subjects/customer/versions", Some(body)).await;
    assert_eq!(a.body, json!({"id": 2}), "{}", a.body);
    let v = call(&f.app, "GET", "/subjects/customer/versions/1", None).await;
    assert_eq!(
        v.body["references"],
        json!([{"name": "address.json", "subject": "address", "version": 1}])
    );
    let by = call(
        &f.app,
        "GET",
        "/subjects/address/versions/1/referencedby",
        None,
    )
    .await;
    assert_eq!(by.body, json!([2]));
    call(&f.app, "DELETE", "/subjects/address/versions/1", None)
        .await
        .error(422, 42206);
    call(&f.app, "DELETE", "/subjects/address", None)
        .await
        .error(422, 42206);

    let ok = f
        .registry
        .validate(
            "customer",
            None,
            "application/json",
            br#"{"ship_to": {"city": "Oslo"}}"#,
        )
        .unwrap();
    assert_eq!(ok.schema_id, 2);
    let err = f
        .registry
        .validate("customer", None, "application/json", br#"{"ship_to": {}}"#)
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::Mismatch { ref path, .. } if path == "/ship_to"),
        "{err:?}"
    );

    // A reference to nothing is refused at registration.
    let mut dangling = json_body(&customer);
    dangling["references"] = json!([{"name": "address.json", "subject": "nobody", "version": 1}]);
    call(&f.app, "POST", "/subjects/c2/versions", Some(dangling))
        .await
        .error(422, 42201);
}

#[tokio::test]
async fn compatibility_follows_the_content_model_and_names_the_rule() {
    let f = fixture();
    call(
        &f.app,
        "POST",
        "/subjects/s/versions",
        Some(json_body(&order())),
    )
    .await;
    // Adding a typed property to an open content model breaks BACKWARD.
    let mut added = order();
    added["properties"]["note"] = json!({"type": "string"});
    let t = call(
        &f.app,
        "POST",
        "/compatibility/subjects/s/versions/latest?verbose=true",
        Some(json_body(&added)),
    )
    .await;
    assert_eq!(t.body["is_compatible"], json!(false), "{}", t.body);
    let messages = t.body["messages"].to_string();
    assert!(
        messages.contains("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"),
        "{messages}"
    );
    assert!(messages.contains("#/properties/note"), "{messages}");
    call(
        &f.app,
        "POST",
        "/subjects/s/versions",
        Some(json_body(&added)),
    )
    .await
    .error(409, 409);
    // Widening integer to number and growing the enum is fine.
    let mut widened = order();
    widened["properties"]["id"] = json!({"type": "number"});
    widened["properties"]["status"] = json!({"enum": ["new", "paid", "refunded"]});
    let a = call(
        &f.app,
        "POST",
        "/subjects/s/versions",
        Some(json_body(&widened)),
    )
    .await;
    assert_eq!(a.body, json!({"id": 2}), "{}", a.body);
    // FORWARD: the old schema must read the new one's data; narrowing the
    // enum back is fine, widening again is not.
    call(
        &f.app,
        "PUT",
        "/config/s",
        Some(json!({"compatibility": "FORWARD"})),
    )
    .await;
    let mut wider = widened.clone();
    wider["properties"]["status"] = json!({"enum": ["new", "paid", "refunded", "lost"]});
    let t = call(
        &f.app,
        "POST",
        "/compatibility/subjects/s/versions/latest?verbose=true",
        Some(json_body(&wider)),
    )
    .await;
    assert!(
        t.body["messages"]
            .to_string()
            .contains("ENUM_ARRAY_NARROWED"),
        "{}",
        t.body
    );
    // A type change is never compatible with another type's schema.
    call(
        &f.app,
        "PUT",
        "/config/s",
        Some(json!({"compatibility": "BACKWARD"})),
    )
    .await;
    let avro = json!({"schema": "\"string\""});
    let t = call(
        &f.app,
        "POST",
        "/compatibility/subjects/s/versions/latest?verbose=true",
        Some(avro),
    )
    .await;
    assert!(
        t.body["messages"]
            .to_string()
            .contains("SCHEMA_TYPE_CHANGED"),
        "{}",
        t.body
    );
}

#[tokio::test]
async fn validation_reports_path_expected_and_keyword_and_reads_the_wire_format() {
    let f = fixture();
    call(
        &f.app,
        "POST",
        "/subjects/orders-value/versions",
        Some(json_body(&order())),
    )
    .await;
    let r = &f.registry;
    r.validate(
        "orders-value",
        None,
        "application/json",
        br#"{"id": 1, "status": "new"}"#,
    )
    .unwrap();
    let err = r
        .validate(
            "orders-value",
            None,
            "application/json",
            br#"{"id": 1, "status": "lost"}"#,
        )
        .unwrap_err();
    let ValidationError::Mismatch {
        path,
        expected,
        keyword,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(path, "/status");
    assert_eq!(keyword.as_deref(), Some("enum"));
    assert!(expected.contains("\"paid\""), "{expected}");
    let err = r
        .validate(
            "orders-value",
            None,
            "application/json",
            br#"{"id": 1, "email": "nope"}"#,
        )
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::Mismatch { ref keyword, .. } if keyword.as_deref() == Some("format"))
    );

    // Confluent's JSON wire format: magic 0, the id, then the JSON.
    let mut framed = vec![0, 0, 0, 0, 1];
    framed.extend_from_slice(br#"{"id": 7}"#);
    let ok = r
        .validate("orders-value", None, "application/octet-stream", &framed)
        .unwrap();
    assert_eq!(ok.writer_schema_id, Some(1));
    assert_eq!(
        r.to_json(1, "application/octet-stream", &framed)
            .unwrap()
            .unwrap(),
        br#"{"id": 7}"#.to_vec()
    );
    let mut unknown = vec![0, 0, 0, 0, 9];
    unknown.extend_from_slice(b"{}");
    assert_eq!(
        r.validate("orders-value", None, "application/octet-stream", &unknown),
        Err(ValidationError::UnknownSchemaId(9))
    );
    assert!(matches!(
        r.validate(
            "orders-value",
            None,
            "application/vnd.apache.avro+binary",
            &framed
        ),
        Err(ValidationError::UnsupportedMediaType(_))
    ));
}

#[tokio::test]
async fn json_schemas_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let r = super::open(dir.path());
        let app = super::api(&r);
        call(
            &app,
            "POST",
            "/subjects/address/versions",
            Some(json_body(&json!({"type": "object"}))),
        )
        .await;
        let mut body = json_body(&json!({"properties": {"a": {"$ref": "a.json"}}}));
        body["references"] = json!([{"name": "a.json", "subject": "address", "version": -1}]);
        let a = call(&app, "POST", "/subjects/c/versions", Some(body)).await;
        assert_eq!(a.body, json!({"id": 2}), "{}", a.body);
    }
    let r = super::open(dir.path());
    let app = super::api(&r);
    let v = call(&app, "GET", "/subjects/c/versions/1", None).await;
    assert_eq!(v.body["schemaType"], json!("JSON"));
    assert_eq!(v.body["references"][0]["version"], json!(1));
    assert!(
        r.validate("c", None, "application/json", br#"{"a": 1}"#)
            .is_err()
    );
    assert!(
        r.validate("c", None, "application/json", br#"{"a": {}}"#)
            .is_ok()
    );
}
