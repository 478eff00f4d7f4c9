//! Confluent Schema Registry's REST API over `switchyard-registry`, as an
//! axum router.
//!
//! Paths are relative (`/subjects/...`): the gateway nests the router at
//! `/registry`. Request bodies may be `application/vnd.schemaregistry.v1+json`,
//! `application/vnd.schemaregistry+json`, `application/json` (or carry no
//! content type, as curl users do); responses take the first of these the
//! client's `Accept` names. Boolean query flags are read whatever their case,
//! because the Python client sends `normalize=False`.
//!
//! Changes fsync before answering, so they run on the blocking pool rather
//! than stall an async worker.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use switchyard_registry::ApiError;
use switchyard_registry::compat::Level;
use switchyard_registry::state::{
    Core, RawReference, StoredSchema, Submission, VersionSpec, VersionView,
};
use switchyard_registry::{Parsed, SchemaType};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

type Api = State<Arc<Core>>;
type Flags = Query<HashMap<String, String>>;
type ApiResult = Result<Response, Refusal>;

/// A registry error as an HTTP answer, in Confluent's shape:
/// `{"error_code": 40401, "message": "..."}`.
pub struct Refusal(pub ApiError);

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = axum::http::StatusCode::from_u16(self.0.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(json!({"error_code": self.0.code, "message": self.0.message})),
        )
            .into_response()
    }
}

const V1: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPTED_BODIES: [&str; 4] = [
    V1,
    "application/vnd.schemaregistry+json",
    "application/json",
    // Confluent accepts it too, and some HTTP tools default to it.
    "application/octet-stream",
];

/// Builds the router over a loaded registry.
pub fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/", get(|| async { Json(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route(
            "/schemas/types",
            get(|| async { Json(json!(["JSON", "PROTOBUF", "AVRO"])) }),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compat_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compat_version),
        )
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route("/mode", get(get_mode).put(put_mode))
        .route("/mode/{subject}", get(get_mode))
        .fallback(|uri: Uri| async move { Refusal(ApiError::not_found_route(uri.path())) })
        .method_not_allowed_fallback(|| async { Refusal(ApiError::method_not_allowed()) })
        .layer(middleware::from_fn_with_state(core.clone(), follow_on_miss))
        .layer(middleware::from_fn(negotiate))
        .with_state(core)
}

/// A read that found nothing, on a store other gateways share, looks again
/// after loading what they may have registered since this gateway last
/// did: a client that registered through one gateway finds its schema on
/// any other at once, not a second later. On fjall `sync` is a no-op.
async fn follow_on_miss(State(core): Api, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let (method, uri, headers) = (
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
    );
    let answer = next.clone().run(req).await;
    if answer.status() != axum::http::StatusCode::NOT_FOUND {
        return answer;
    }
    let c = core.clone();
    match tokio::task::spawn_blocking(move || c.sync()).await {
        Ok(Ok(true)) => {
            let mut again = Request::new(axum::body::Body::empty());
            *again.method_mut() = method;
            *again.uri_mut() = uri;
            *again.headers_mut() = headers;
            next.run(again).await
        }
        _ => answer,
    }
}

/// Refuses bodies in content types Confluent wouldn't take, and labels JSON
/// answers with the type the client asked for.
async fn negotiate(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::POST | Method::PUT)
        && let Some(ct) = req.headers().get(header::CONTENT_TYPE)
    {
        let ct = ct.to_str().unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !ACCEPTED_BODIES
            .iter()
            .any(|a| essence.eq_ignore_ascii_case(a))
        {
            return Refusal(ApiError::unsupported_media_type(ct)).into_response();
        }
    }
    let answer_as = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .map(pick_response_type)
        .unwrap_or(V1);
    // axum's own refusals (a path that is not UTF-8...) come as plain
    // text: give them Confluent's shape, its code being the status.
    let seen = crate::http::listener::BodyTimeoutSeen::of(&req);
    let resp = next.run(req).await;
    let mut resp = crate::http::rewrite_plain_errors(resp, seen.get(), |status, message| {
        Refusal(ApiError {
            status: status.as_u16(),
            code: u32::from(status.as_u16()),
            message,
        })
        .into_response()
    })
    .await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
    if is_json {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(answer_as));
    }
    resp
}

/// The first registry type the `Accept` header lists (order, not q-values:
/// every client we know lists its preference first).
pub fn pick_response_type(accept: &str) -> &'static str {
    for part in accept.split(',') {
        let t = part.split(';').next().unwrap_or("").trim();
        for known in [
            V1,
            "application/vnd.schemaregistry+json",
            "application/json",
        ] {
            if t.eq_ignore_ascii_case(known) {
                return known;
            }
        }
    }
    V1
}

/// A boolean query flag: `true` in any case is true, anything else false
/// (what Confluent's Jersey does with `normalize=False`).
fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.iter()
        .any(|(k, v)| k.eq_ignore_ascii_case(name) && v.trim().eq_ignore_ascii_case("true"))
}

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::unprocessable(format!("Unrecognizable request body: {e}"))
        } else {
            ApiError::malformed(format!("Malformed JSON request body: {e}"))
        }
    })
}

fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

/// Runs a change on the blocking pool: it fsyncs.
async fn blocking<T: Send + 'static>(
    core: Arc<Core>,
    f: impl FnOnce(&Core) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(&core))
        .await
        .map_err(|e| ApiError::internal(format!("registry task failed: {e}")))?
}

/// The body of register, lookup and compatibility requests. Other fields
/// that newer clients send (`metadata`, `ruleSet`) are accepted and ignored.
#[derive(Deserialize)]
struct SchemaBody {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<RawReference>>,
}

fn submission(core: &Core, body: &[u8]) -> Result<Submission, ApiError> {
    let b: SchemaBody = parse_body(body)?;
    core.submission(
        b.schema.as_deref().unwrap_or(""),
        b.schema_type.as_deref(),
        b.references.unwrap_or_default(),
    )
}

/// `schemaType` and `references` as Confluent answers them: left out for
/// Avro and for none.
fn describe_schema(s: &StoredSchema, out: &mut serde_json::Map<String, Value>) {
    if s.schema_type() != SchemaType::Avro {
        out.insert("schemaType".into(), json!(s.schema_type().as_str()));
    }
    if !s.references.is_empty() {
        out.insert("references".into(), json!(s.references));
    }
}

/// The schema's text as a client asked for it: `format=serialized` is a
/// Protobuf schema as a base64 `FileDescriptorProto` (what Python's
/// `ProtobufDeserializer` asks for and parses); otherwise a Protobuf schema
/// is `.proto` text even when it was registered as a descriptor (as
/// Confluent answers), and the others are the text as registered.
fn schema_text<'a>(s: &'a StoredSchema, q: &HashMap<String, String>) -> &'a str {
    match (&s.parsed, param(q, "format")) {
        (Parsed::Protobuf(p), Some(f)) if f.eq_ignore_ascii_case("serialized") => &p.serialized,
        (Parsed::Protobuf(p), _) => &p.text,
        _ => &s.text,
    }
}

fn version_json(v: &VersionView, q: &HashMap<String, String>) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("subject".into(), json!(v.subject));
    out.insert("version".into(), json!(v.version));
    out.insert("id".into(), json!(v.schema.id));
    describe_schema(&v.schema, &mut out);
    out.insert("schema".into(), json!(schema_text(&v.schema, q)));
    Value::Object(out)
}

async fn list_subjects(State(core): Api, Query(q): Flags) -> ApiResult {
    let prefix = param(&q, "subjectPrefix").unwrap_or("");
    ok(json!(core.subjects(flag(&q, "deleted"), prefix)))
}

async fn list_versions(
    State(core): Api,
    Path(subject): Path<String>,
    Query(q): Flags,
) -> ApiResult {
    ok(json!(core.versions(&subject, flag(&q, "deleted"))?))
}

async fn register(State(core): Api, Path(subject): Path<String>, body: Bytes) -> ApiResult {
    let sub = submission(&core, &body)?;
    let id = blocking(core, move |c| c.register(&subject, sub)).await?;
    ok(json!({ "id": id }))
}

async fn lookup(
    State(core): Api,
    Path(subject): Path<String>,
    Query(q): Flags,
    body: Bytes,
) -> ApiResult {
    let sub = submission(&core, &body)?;
    let v = core.lookup(&subject, &sub, flag(&q, "deleted"))?;
    ok(version_json(&v, &q))
}

async fn delete_subject(
    State(core): Api,
    Path(subject): Path<String>,
    Query(q): Flags,
) -> ApiResult {
    let permanent = flag(&q, "permanent");
    let versions = blocking(core, move |c| c.delete_subject(&subject, permanent)).await?;
    ok(json!(versions))
}

async fn get_version(
    State(core): Api,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Flags,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    ok(version_json(
        &core.version(&subject, spec, flag(&q, "deleted"))?,
        &q,
    ))
}

/// The schema alone, as JSON (not a string holding JSON).
async fn get_version_schema(
    State(core): Api,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Flags,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let v = core.version(&subject, spec, flag(&q, "deleted"))?;
    raw_schema(schema_text(&v.schema, &q))
}

/// Avro and JSON schemas are JSON and are answered as such; a `.proto` is
/// text, answered as Confluent does, as a plain body.
fn raw_schema(text: &str) -> ApiResult {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => ok(v),
        Err(_) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text.to_string(),
        )
            .into_response()),
    }
}

async fn referenced_by(
    State(core): Api,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let v = core.version(&subject, spec, false)?;
    ok(json!(core.referenced_by(&subject, v.version)))
}

async fn delete_version(
    State(core): Api,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Flags,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    let permanent = flag(&q, "permanent");
    let v = blocking(core, move |c| c.delete_version(&subject, spec, permanent)).await?;
    ok(json!(v))
}

fn schema_id(raw: &str) -> Result<u32, ApiError> {
    raw.parse::<u32>()
        .map_err(|_| ApiError::schema_id_not_found(raw))
}

async fn schema_by_id(State(core): Api, Path(id): Path<String>, Query(q): Flags) -> ApiResult {
    let s = core.schema_by_id(schema_id(&id)?)?;
    let mut out = serde_json::Map::new();
    describe_schema(&s, &mut out);
    out.insert("schema".into(), json!(schema_text(&s, &q)));
    ok(Value::Object(out))
}

async fn raw_schema_by_id(State(core): Api, Path(id): Path<String>, Query(q): Flags) -> ApiResult {
    let s = core.schema_by_id(schema_id(&id)?)?;
    raw_schema(schema_text(&s, &q))
}

async fn subjects_by_id(State(core): Api, Path(id): Path<String>, Query(q): Flags) -> ApiResult {
    let mut subjects: Vec<String> = core
        .id_usages(schema_id(&id)?, flag(&q, "deleted"))?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    subjects.dedup();
    ok(json!(subjects))
}

async fn versions_by_id(State(core): Api, Path(id): Path<String>, Query(q): Flags) -> ApiResult {
    let usages = core.id_usages(schema_id(&id)?, flag(&q, "deleted"))?;
    let v: Vec<Value> = usages
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    ok(json!(v))
}

async fn compat_all(
    State(core): Api,
    Path(subject): Path<String>,
    Query(q): Flags,
    body: Bytes,
) -> ApiResult {
    compat(&core, &subject, None, &q, &body)
}

async fn compat_version(
    State(core): Api,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Flags,
    body: Bytes,
) -> ApiResult {
    let spec = VersionSpec::parse(&version)?;
    compat(&core, &subject, Some(spec), &q, &body)
}

fn compat(
    core: &Core,
    subject: &str,
    spec: Option<VersionSpec>,
    q: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult {
    let sub = submission(core, body)?;
    let report = core.test_compatibility(subject, spec, &sub)?;
    if flag(q, "verbose") {
        ok(json!({ "is_compatible": report.is_compatible, "messages": report.messages }))
    } else {
        ok(json!({ "is_compatible": report.is_compatible }))
    }
}

/// `PUT /config` bodies. Other config fields newer clients send (`normalize`,
/// `alias`...) are accepted and ignored; a body without `compatibility` is a
/// 42203, since the level is the only setting we keep.
#[derive(Deserialize)]
struct ConfigBody {
    #[serde(default)]
    compatibility: Option<String>,
    #[serde(default, rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

fn level_from(body: &[u8]) -> Result<Level, ApiError> {
    let b: ConfigBody = parse_body(body)?;
    let raw = b
        .compatibility
        .or(b.compatibility_level)
        .unwrap_or_default();
    Level::parse(&raw).ok_or_else(|| ApiError::invalid_compatibility_level(&raw))
}

async fn get_global_config(State(core): Api) -> ApiResult {
    ok(json!({ "compatibilityLevel": core.level(None, true)?.as_str() }))
}

async fn put_global_config(State(core): Api, body: Bytes) -> ApiResult {
    let level = level_from(&body)?;
    blocking(core, move |c| c.set_level(None, level)).await?;
    ok(json!({ "compatibility": level.as_str() }))
}

async fn delete_global_config(State(core): Api) -> ApiResult {
    let previous = blocking(core, |c| c.delete_level(None)).await?;
    ok(json!({ "compatibilityLevel": previous.as_str() }))
}

async fn get_subject_config(
    State(core): Api,
    Path(subject): Path<String>,
    Query(q): Flags,
) -> ApiResult {
    let level = core.level(Some(&subject), flag(&q, "defaultToGlobal"))?;
    ok(json!({ "compatibilityLevel": level.as_str() }))
}

async fn put_subject_config(
    State(core): Api,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let level = level_from(&body)?;
    blocking(core, move |c| c.set_level(Some(&subject), level)).await?;
    ok(json!({ "compatibility": level.as_str() }))
}

async fn delete_subject_config(State(core): Api, Path(subject): Path<String>) -> ApiResult {
    let previous = blocking(core, move |c| c.delete_level(Some(&subject))).await?;
    ok(json!({ "compatibilityLevel": previous.as_str() }))
}

/// The registry is always writable; modes exist so clients that ask get an
/// answer.
async fn get_mode() -> ApiResult {
    ok(json!({ "mode": "READWRITE" }))
}

#[derive(Deserialize)]
struct ModeBody {
    #[serde(default)]
    mode: String,
}

async fn put_mode(body: Bytes) -> ApiResult {
    let b: ModeBody = parse_body(&body)?;
    if b.mode.eq_ignore_ascii_case("READWRITE") {
        ok(json!({ "mode": "READWRITE" }))
    } else {
        Err(ApiError::invalid_mode(&b.mode).into())
    }
}
