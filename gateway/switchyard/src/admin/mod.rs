//! The admin API: events and their delivery history, destinations (depths,
//! pause/resume, cancelling one delivery or purging the queue), dead-letter queues (list, replay, purge), readiness, and
//! (`queues`) the pull-consumer endpoints, and (`series`) the in-gateway
//! time series the console's overview charts draw.
//!
//! Shapes are documented in `docs/http-api.md`; the CLI's `dlq` commands
//! are thin clients of these endpoints.

mod queues;
pub mod series;

use std::collections::HashSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use ulid::Ulid;

use crate::http::{ApiError, App};
use switchyard_core::Event;
use switchyard_core::event::{parse_rfc3339, rfc3339};
use switchyard_store::{DeliveryStatus, DlqEntry, DlqOwner, EventQuery, ListOrder};

/// Largest page any list endpoint returns.
const MAX_PAGE: usize = 1000;

/// Payload bytes `include=payload` returns by default: one event's page.
const EVENT_PAYLOAD_CAP: usize = 64 * 1024;
/// ... and per entry of a DLQ list (a preview; a page of 1000 stays small).
const LIST_PAYLOAD_CAP: usize = 4 * 1024;
/// The most `payload_limit` may ask for.
const MAX_PAYLOAD_CAP: usize = 1024 * 1024;

/// The admin routes, merged into the gateway's router. Everything but
/// `/readyz` is guarded by `auth`: the admin API needs an `admin` token, the
/// pull endpoints a `consume:NAME` one.
pub fn routes(auth: &std::sync::Arc<crate::auth::Auth>) -> axum::Router<App> {
    axum::Router::new()
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(get_event))
        .route("/v1/events/{id}/redeliver", post(redeliver))
        .route("/v1/topics", get(list_topics))
        .route("/v1/plugins", get(list_plugins))
        .route("/v1/destinations", get(list_destinations))
        .route("/v1/destinations/{name}", get(get_destination))
        .route("/v1/stats/series", get(series::series))
        .route("/v1/destinations/{name}/pause", post(pause))
        .route("/v1/destinations/{name}/resume", post(resume))
        .route(
            "/v1/destinations/{name}/dlq",
            get(dest_dlq_list).delete(dest_dlq_purge),
        )
        .route("/v1/destinations/{name}/dlq/replay", post(dest_dlq_replay))
        .route(
            "/v1/destinations/{name}/events/{id}",
            delete(cancel_delivery),
        )
        .route("/v1/destinations/{name}/queue", delete(purge_queue))
        .route(
            "/v1/destinations/{name}/dlq/{id}",
            get(dest_dlq_get_one).delete(dest_dlq_delete_one),
        )
        .route(
            "/v1/topics/{name}/dlq",
            get(topic_dlq_list).delete(topic_dlq_purge),
        )
        .route("/v1/topics/{name}/dlq/replay", post(topic_dlq_replay))
        .route(
            "/v1/topics/{name}/dlq/{id}",
            get(topic_dlq_get_one).delete(topic_dlq_delete_one),
        )
        .route("/v1/admin/reload", post(crate::reload::handler))
        .route("/v1/operator/events", get(operator_events))
        .route_layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            crate::auth::layer::require_admin,
        ))
        .merge(queues::routes(auth))
        .route("/readyz", get(readyz))
}

/// `GET /v1/plugins`: version (hash), load time, invocations, errors, traps,
/// time per event, quarantine, last error (a refused reload shows here).
async fn list_plugins(State(app): State<App>) -> Response {
    let plugins = app
        .plugins
        .as_ref()
        .map(|h| h.statuses())
        .unwrap_or_default();
    axum::Json(json!({ "plugins": plugins })).into_response()
}

async fn readyz(State(app): State<App>) -> Response {
    let plugins_ready = app.plugins.as_ref().is_none_or(|h| h.is_ready());
    if app.health.ready() && plugins_ready {
        (StatusCode::OK, axum::Json(json!({"ready": true}))).into_response()
    } else {
        ApiError::unavailable("the gateway is starting or stopping", 1).into_response()
    }
}

fn parse_id(raw: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(raw).map_err(|_| ApiError::malformed(format!("{raw:?} is not an event id")))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::malformed(format!("bad query string: {}", e.body_text())))
}

fn json_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("bad JSON body: {e}")))
}

/// The delivery states of an event ("in flight" from the live queues).
async fn deliveries(app: &App, e: &Event, with_attempts: bool) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for (dest, st) in app.store.deliveries(e.id).await? {
        let mut d = json!({
            "destination": dest,
            "state": st.status.name(),
            "attempt_count": st.attempts,
            "updated_at": rfc3339(st.updated_at_ms),
        });
        if let Some(err) = &st.last_error {
            d["last_error"] = json!(err);
        }
        // A retry (or a delayed first delivery) still to come: its due time.
        if let Some(next) = st.next_attempt_ms
            && matches!(st.status, DeliveryStatus::Pending)
            && next > switchyard_core::now_ms()
        {
            d["next_attempt_at"] = json!(rfc3339(next));
        }
        if with_attempts {
            let attempts: Vec<Value> = app
                .store
                .attempts(e.id, &dest)
                .await?
                .into_iter()
                .map(|a| {
                    json!({
                        "attempt": a.attempt,
                        "at": rfc3339(a.at_ms),
                        "status": a.status,
                        "error": a.error,
                        "latency_ms": a.latency_ms,
                        "delay_before_ms": a.delay_before_ms,
                        "response_excerpt": a.response_excerpt,
                    })
                })
                .collect();
            d["attempts"] = json!(attempts);
        }
        out.push(d);
    }
    Ok(out)
}

async fn event_json(app: &App, e: &Event, with_attempts: bool) -> Result<Value, ApiError> {
    let mut v = json!({
        "id": e.id.to_string(),
        "topic": e.topic,
        "received_at": rfc3339(e.received_at_ms),
        "content_type": e.meta.content_type,
        "size": e.payload.len(),
        "deliveries": deliveries(app, e, with_attempts).await?,
    });
    if let Some(dl) = app.store.dlq_entry(DlqOwner::Topic(&e.topic), e.id).await? {
        v["topic_dead_letter"] =
            json!({"error": dl.error, "dead_lettered_at": rfc3339(dl.dead_lettered_at_ms)});
    }
    if with_attempts {
        let verdicts = app.store.verdicts(e.id).await?;
        if !verdicts.is_empty() {
            v["plugins"] = json!(verdicts);
        }
        v["headers"] = json!(e.meta.headers);
        if !e.meta.attributes.is_empty() {
            v["attributes"] = json!(e.meta.attributes);
        }
    }
    Ok(v)
}

/// `include=payload` and its cap, shared by the event and the DLQ lists.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IncludeParams {
    include: Option<String>,
    payload_limit: Option<usize>,
}

/// Whether `include` asks for the payload (a comma-separated list, so more
/// parts can join later), and the cap to apply.
fn payload_cap(
    include: &Option<String>,
    limit: Option<usize>,
    default: usize,
) -> Result<Option<usize>, ApiError> {
    let Some(inc) = include else {
        return Ok(None);
    };
    let mut payload = false;
    for part in inc.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "payload" => payload = true,
            other => {
                return Err(ApiError::malformed(format!(
                    "include: {other:?} is not one of payload"
                )));
            }
        }
    }
    Ok(payload.then(|| limit.unwrap_or(default).clamp(1, MAX_PAYLOAD_CAP)))
}

/// Puts `payload` (UTF-8 text) or `payload_base64` (anything else) into
/// `v`, at most `cap` bytes, with `payload_truncated` saying whether bytes
/// were left out. A cut in the middle of a UTF-8 character still counts as
/// text: only the whole character is left out.
fn add_payload(v: &mut Value, payload: &[u8], cap: usize) {
    let truncated = payload.len() > cap;
    let head = &payload[..payload.len().min(cap)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(t) => v["payload"] = json!(t),
        None => {
            use base64::Engine as _;
            v["payload_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(head));
        }
    }
    v["payload_truncated"] = json!(truncated);
}

async fn get_event(
    State(app): State<App>,
    Path(id): Path<String>,
    q: Result<Query<IncludeParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(q)?;
    let cap = payload_cap(&p.include, p.payload_limit, EVENT_PAYLOAD_CAP)?;
    let id = parse_id(&id)?;
    let e = app
        .store
        .event(id)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_event", format!("no event {id}")))?;
    let mut v = event_json(&app, &e, true).await?;
    if let Some(cap) = cap {
        add_payload(&mut v, &e.payload, cap);
    }
    Ok(axum::Json(v).into_response())
}

fn order_param(v: &Option<String>) -> Result<ListOrder, ApiError> {
    match v.as_deref() {
        None | Some("asc") => Ok(ListOrder::Asc),
        Some("desc") => Ok(ListOrder::Desc),
        Some(other) => Err(ApiError::malformed(format!(
            "order: {other:?} is not one of asc, desc"
        ))),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListParams {
    topic: Option<String>,
    destination: Option<String>,
    state: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    include: Option<String>,
    payload_limit: Option<usize>,
    order: Option<String>,
}

/// `limit`: 1 to [`MAX_PAGE`] (larger is clamped), 100 when absent. Zero is
/// a mistake, not a request for one entry.
fn limit_param(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(100),
        Some(0) => Err(ApiError::malformed(format!(
            "limit: 0 is not a page size: use 1 to {MAX_PAGE}"
        ))),
        Some(n) => Ok(n.min(MAX_PAGE)),
    }
}

fn time_param(name: &str, v: &Option<String>) -> Result<Option<u64>, ApiError> {
    v.as_deref()
        .map(|s| {
            parse_rfc3339(s).ok_or_else(|| {
                ApiError::malformed(format!("{name}: {s:?} is not an RFC 3339 time"))
            })
        })
        .transpose()
}

async fn list_events(
    State(app): State<App>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(q)?;
    let limit = limit_param(p.limit)?;
    let cap = payload_cap(&p.include, p.payload_limit, LIST_PAYLOAD_CAP)?;
    // A filter naming nothing configured is a typo, not an empty answer.
    if let Some(t) = &p.topic {
        Owner::Topic.check(&app, t)?;
    }
    if let Some(d) = &p.destination {
        Owner::Destination.check(&app, d)?;
    }
    let since = time_param("since", &p.since)?.unwrap_or(0);
    let until = time_param("until", &p.until)?.unwrap_or(u64::MAX >> 16);
    let cursor = p.cursor.as_deref().map(parse_id).transpose()?;
    let state = match p.state.as_deref() {
        None => None,
        Some(name) => Some(DeliveryStatus::parse(name).ok_or_else(|| {
            ApiError::malformed(format!(
                "state: {name:?} is not one of pending, in_flight, delivered, dead_lettered"
            ))
        })?),
    };
    let query = EventQuery {
        topic: p.topic,
        destination: p.destination,
        state,
        since_ms: since,
        until_ms: until,
        cursor,
        order: order_param(&p.order)?,
        limit,
        max_scanned: 50_000,
    };
    let (events, next) = app.store.list_events(&query).await?;
    let mut out = Vec::with_capacity(events.len());
    for e in &events {
        let mut v = event_json(&app, e, false).await?;
        if let Some(cap) = cap {
            add_payload(&mut v, &e.payload, cap);
        }
        out.push(v);
    }
    Ok(axum::Json(json!({
        "events": out,
        "next_cursor": next.map(|c| c.to_string()),
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RedeliverBody {
    /// Limit redelivery to these destinations (default: every destination
    /// the event was routed to).
    #[serde(default)]
    destinations: Vec<String>,
}

async fn redeliver(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let req: RedeliverBody = json_body(&body)?;
    if app.store.event(id).await?.is_none() {
        return Err(ApiError::not_found(
            "unknown_event",
            format!("no event {id}"),
        ));
    }
    let states = app.store.deliveries(id).await?;
    let wanted: HashSet<&str> = req.destinations.iter().map(String::as_str).collect();
    for w in &wanted {
        if app.delivery.destination(w).is_none() {
            return Err(ApiError::not_found(
                "unknown_destination",
                format!("no destination named {w:?}"),
            ));
        }
    }
    let mut queued = Vec::new();
    for (dest, _) in states {
        if !wanted.is_empty() && !wanted.contains(dest.as_str()) {
            continue;
        }
        let dl = app
            .store
            .dlq_entry(DlqOwner::Destination(&dest), id)
            .await?;
        let (priority, key) = dl
            .as_ref()
            .map(|d| (d.priority, d.ordering_key.clone()))
            .unwrap_or((switchyard_core::DEFAULT_PRIORITY, None));
        let n = app
            .delivery
            .requeue(&dest, &[(id, priority, key)], dl.is_some())
            .await?;
        if n > 0 {
            queued.push(dest);
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id.to_string(), "requeued": queued})),
    )
        .into_response())
}

async fn list_topics(State(app): State<App>) -> Result<Response, ApiError> {
    let mut topics: Vec<Value> = Vec::with_capacity(app.config.topics.len());
    for t in &app.config.topics {
        topics.push(json!({
            "name": t.name,
            "routes": t.routes,
            "dlq_depth": app.store.dlq_depth(DlqOwner::Topic(&t.name)).await?,
        }));
    }
    Ok(axum::Json(json!({ "topics": topics })).into_response())
}

async fn list_destinations(State(app): State<App>) -> Result<Response, ApiError> {
    let stats = app.delivery.stats_now().await?;
    Ok(axum::Json(json!({ "destinations": stats })).into_response())
}

/// `GET /v1/destinations/{name}`: one destination's levels, as the list
/// shows them.
async fn get_destination(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if app.delivery.destination(&name).is_none() {
        return Err(ApiError::not_found(
            "unknown_destination",
            format!("no destination named {name:?}"),
        ));
    }
    let stats = app.delivery.stats_now().await?;
    let one = stats.into_iter().find(|s| s.name == name).ok_or_else(|| {
        ApiError::not_found(
            "unknown_destination",
            format!("no destination named {name:?}"),
        )
    })?;
    Ok(axum::Json(one).into_response())
}

/// `GET /v1/operator/events`: the last operator events (circuits, pauses,
/// DLQ thresholds, disk, plugins), newest first.
async fn operator_events(State(app): State<App>) -> Response {
    axum::Json(json!({ "events": app.delivery.recent_operator_events() })).into_response()
}

fn known_destination(app: &App, name: &str) -> Result<(), ApiError> {
    match app.delivery.destination(name) {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(
            "unknown_destination",
            format!("no destination named {name:?}"),
        )),
    }
}

/// `DELETE /v1/destinations/{name}/events/{id}`: cancels one pending
/// delivery. A push attempt in flight is cancelled when it ends (unless it
/// delivered): the answer says which.
async fn cancel_delivery(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    known_destination(&app, &name)?;
    let id = parse_id(&id)?;
    let outcome = app
        .store
        .cancel(
            &name,
            id,
            "by an operator (DELETE /v1/destinations/{name}/events/{id})",
        )
        .await?;
    let state = match outcome {
        switchyard_store::Cancelled::Removed => "cancelled",
        switchyard_store::Cancelled::AtAttemptEnd => "cancelled_at_attempt_end",
        switchyard_store::Cancelled::NotPending => {
            return Err(ApiError::not_found(
                "unknown_event",
                format!("event {id} has no pending delivery to {name:?}"),
            ));
        }
    };
    tracing::info!(destination = %name, event_id = %id, outcome = state, "Delivery cancelled.");
    Ok(
        axum::Json(json!({"id": id.to_string(), "destination": name, "state": state}))
            .into_response(),
    )
}

/// `DELETE /v1/destinations/{name}/queue`: cancels every queued delivery
/// of a destination (its dead letters stay: `DELETE .../dlq` purges those).
async fn purge_queue(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    known_destination(&app, &name)?;
    let purged = app
        .store
        .purge_queue(
            &name,
            "the queue was purged (DELETE /v1/destinations/{name}/queue)",
        )
        .await?;
    tracing::warn!(destination = %name, removed = purged.removed, in_flight = purged.in_flight,
        "Destination queue purged.");
    Ok(axum::Json(json!({
        "destination": name,
        "purged": purged.removed,
        "in_flight": purged.in_flight,
    }))
    .into_response())
}

async fn set_paused(app: &App, name: &str, paused: bool) -> Result<Response, ApiError> {
    if !app.delivery.set_paused(name, paused).await? {
        return Err(ApiError::not_found(
            "unknown_destination",
            format!("no destination named {name:?}"),
        ));
    }
    Ok(axum::Json(json!({"name": name, "paused": paused})).into_response())
}

async fn pause(State(app): State<App>, Path(name): Path<String>) -> Result<Response, ApiError> {
    set_paused(&app, &name, true).await
}

async fn resume(State(app): State<App>, Path(name): Path<String>) -> Result<Response, ApiError> {
    set_paused(&app, &name, false).await
}

/// Which DLQ a request is about.
#[derive(Clone, Copy)]
enum Owner {
    Destination,
    Topic,
}

impl Owner {
    /// The store's name for the DLQ of `name`.
    fn of(self, name: &str) -> DlqOwner<'_> {
        match self {
            Owner::Destination => DlqOwner::Destination(name),
            Owner::Topic => DlqOwner::Topic(name),
        }
    }

    fn check(self, app: &App, name: &str) -> Result<(), ApiError> {
        let known = match self {
            Owner::Destination => app.delivery.destination(name).is_some(),
            Owner::Topic => app.config.topic(name).is_some(),
        };
        if known {
            Ok(())
        } else {
            let (code, what) = match self {
                Owner::Destination => ("unknown_destination", "destination"),
                Owner::Topic => ("unknown_topic", "topic"),
            };
            Err(ApiError::not_found(
                code,
                format!("no {what} named {name:?}"),
            ))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PageParams {
    limit: Option<usize>,
    cursor: Option<String>,
    order: Option<String>,
    include: Option<String>,
    payload_limit: Option<usize>,
}

fn dlq_json(e: &DlqEntry) -> Value {
    json!({
        "id": e.event_id.to_string(),
        "error": e.error,
        "attempts": e.attempts,
        "dead_lettered_at": rfc3339(e.dead_lettered_at_ms),
    })
}

async fn dlq_list(
    app: App,
    owner: Owner,
    name: String,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    owner.check(&app, &name)?;
    let p = query(q)?;
    let limit = limit_param(p.limit)?;
    let cursor = p.cursor.as_deref().map(parse_id).transpose()?;
    let order = order_param(&p.order)?;
    let cap = payload_cap(&p.include, p.payload_limit, LIST_PAYLOAD_CAP)?;
    let (entries, next) = app
        .store
        .dlq_page(owner.of(&name), cursor, order, limit)
        .await?;
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        let mut v = dlq_json(e);
        if let Some(cap) = cap {
            // Retention may have removed the event under its dead letter.
            match app.store.event(e.event_id).await? {
                Some(ev) => {
                    v["topic"] = json!(ev.topic);
                    v["content_type"] = json!(ev.meta.content_type);
                    v["size"] = json!(ev.payload.len());
                    add_payload(&mut v, &ev.payload, cap);
                }
                None => v["payload_missing"] = json!(true),
            }
        }
        out.push(v);
    }
    let entries = out;
    Ok(axum::Json(json!({
        "entries": entries,
        "next_cursor": next.map(|c| c.to_string()),
        "depth": app.store.dlq_depth(owner.of(&name)).await?,
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default)]
    ids: Vec<String>,
    since: Option<String>,
    until: Option<String>,
}

/// The DLQ entries a replay or purge selects: the given ids, or all entries
/// dead-lettered within `[since, until]`.
async fn select(
    app: &App,
    owner: Owner,
    name: &str,
    body: &ReplayBody,
) -> Result<Vec<DlqEntry>, ApiError> {
    if !body.ids.is_empty() {
        let mut out = Vec::new();
        for raw in &body.ids {
            let id = parse_id(raw)?;
            if let Some(e) = app.store.dlq_entry(owner.of(name), id).await? {
                out.push(e);
            }
        }
        return Ok(out);
    }
    let since = time_param("since", &body.since)?.unwrap_or(0);
    let until = time_param("until", &body.until)?.unwrap_or(u64::MAX);
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = app
            .store
            .dlq_page(owner.of(name), cursor, ListOrder::Asc, MAX_PAGE)
            .await?;
        out.extend(
            page.into_iter()
                .filter(|e| e.dead_lettered_at_ms >= since && e.dead_lettered_at_ms <= until),
        );
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(out),
        }
    }
}

async fn dlq_replay(
    app: App,
    owner: Owner,
    name: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    owner.check(&app, &name)?;
    let req: ReplayBody = json_body(&body)?;
    let selected = select(&app, owner, &name, &req).await?;
    let mut replayed = 0;
    for chunk in selected.chunks(MAX_PAGE) {
        match owner {
            Owner::Destination => {
                let items: Vec<_> = chunk
                    .iter()
                    .map(|e| (e.event_id, e.priority, e.ordering_key.clone()))
                    .collect();
                replayed += app.delivery.requeue(&name, &items, true).await?;
            }
            Owner::Topic => {
                let ids: Vec<Ulid> = chunk.iter().map(|e| e.event_id).collect();
                app.store.replay_topic_dead_letters(&name, &ids).await?;
                // Behind the router's low-water mark: it looks again.
                app.handoff.replayed();
                replayed += ids.len();
            }
        }
    }
    tracing::info!(owner = %name, replayed, "Dead letters replayed.");
    Ok(axum::Json(json!({ "replayed": replayed })).into_response())
}

async fn dlq_purge(
    app: App,
    owner: Owner,
    name: String,
    ids: Option<Vec<Ulid>>,
) -> Result<Response, ApiError> {
    owner.check(&app, &name)?;
    let ids = match ids {
        Some(ids) => {
            for id in &ids {
                if app.store.dlq_entry(owner.of(&name), *id).await?.is_none() {
                    return Err(ApiError::not_found(
                        "unknown_event",
                        format!("{id} is not in the dead-letter queue of {name:?}"),
                    ));
                }
            }
            ids
        }
        None => select(&app, owner, &name, &ReplayBody::default())
            .await?
            .into_iter()
            .map(|e| e.event_id)
            .collect(),
    };
    for chunk in ids.chunks(MAX_PAGE) {
        // A FIFO key a purged dead letter held moves on.
        app.store.dlq_remove(owner.of(&name), chunk).await?;
    }
    tracing::info!(owner = %name, purged = ids.len(), "Dead letters purged.");
    Ok(axum::Json(json!({ "purged": ids.len() })).into_response())
}

async fn dest_dlq_list(
    State(app): State<App>,
    Path(name): Path<String>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    dlq_list(app, Owner::Destination, name, q).await
}
async fn topic_dlq_list(
    State(app): State<App>,
    Path(name): Path<String>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    dlq_list(app, Owner::Topic, name, q).await
}
async fn dest_dlq_replay(
    State(app): State<App>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    dlq_replay(app, Owner::Destination, name, body).await
}
async fn topic_dlq_replay(
    State(app): State<App>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    dlq_replay(app, Owner::Topic, name, body).await
}
async fn dest_dlq_purge(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    dlq_purge(app, Owner::Destination, name, None).await
}
async fn topic_dlq_purge(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    dlq_purge(app, Owner::Topic, name, None).await
}

/// One dead letter, with its event (headers, deliveries, attempts and, with
/// `include=payload`, the payload).
async fn dlq_get_one(
    app: App,
    owner: Owner,
    name: String,
    id: String,
    q: Result<Query<IncludeParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    owner.check(&app, &name)?;
    let p = query(q)?;
    let cap = payload_cap(&p.include, p.payload_limit, EVENT_PAYLOAD_CAP)?;
    let id = parse_id(&id)?;
    let entry = app
        .store
        .dlq_entry(owner.of(&name), id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_event",
                format!("{id} is not in the dead-letter queue of {name:?}"),
            )
        })?;
    let mut v = dlq_json(&entry);
    if let Some(e) = app.store.event(id).await? {
        let mut ev = event_json(&app, &e, true).await?;
        if let Some(cap) = cap {
            add_payload(&mut ev, &e.payload, cap);
        }
        v["event"] = ev;
    }
    Ok(axum::Json(v).into_response())
}

async fn dest_dlq_get_one(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    q: Result<Query<IncludeParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    dlq_get_one(app, Owner::Destination, name, id, q).await
}
async fn topic_dlq_get_one(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    q: Result<Query<IncludeParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    dlq_get_one(app, Owner::Topic, name, id, q).await
}
async fn dest_dlq_delete_one(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    dlq_purge(app, Owner::Destination, name, Some(vec![id])).await
}
async fn topic_dlq_delete_one(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    dlq_purge(app, Owner::Topic, name, Some(vec![id])).await
}
