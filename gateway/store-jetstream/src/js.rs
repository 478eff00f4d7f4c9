//! The JetStream API as the backend uses it: JSON requests on `$JS.API.>`,
//! publishes with their PubAck read raw (so an error's `err_code` reaches
//! us: async-nats folds most of them into "other"), atomic batches (which
//! async-nats has no helper for), batched direct gets and pull fetches.
//!
//! Everything here is a request with a reply: nothing is fire-and-forget
//! except the intermediate messages of an atomic batch, whose commit fails
//! as a whole if one of them went missing.

use std::future::Future;
use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::{Client, Message, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use switchyard_store::StoreError;

/// Error codes of the JetStream API this backend reacts to.
pub(crate) mod code {
    /// `Nats-Expected-Last-Subject-Sequence` did not hold: a lost CAS.
    pub const WRONG_LAST_SEQUENCE: u32 = 10071;
    /// The same, inside an atomic batch (the server's constant-text form).
    pub const WRONG_LAST_SEQUENCE_IN_BATCH: u32 = 10164;
    /// A stream of that name exists with another config.
    pub const STREAM_NAME_IN_USE: u32 = 10058;
    /// A consumer of that name exists with another config.
    pub const CONSUMER_EXISTS: u32 = 10148;
    /// The consumer does not exist.
    pub const CONSUMER_NOT_FOUND: u32 = 10014;
    /// An atomic batch held a Msg-Id the stream has seen: it was committed.
    pub const BATCH_DUPLICATE: u32 = 10201;
    /// A message get found nothing.
    pub const NO_MESSAGE_FOUND: u32 = 10037;
}

/// A failure of one JetStream call.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum JsError {
    /// The server answered with an API error.
    #[error("{description} (JetStream error {err_code}, status {code})")]
    Api {
        code: u16,
        err_code: u32,
        description: String,
    },
    /// No answer: no leader, no quorum, a lost connection, a timeout.
    #[error("{0}")]
    Unavailable(String),
    /// An answer we cannot read.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// Nobody listens on the subject yet: a stream or consumer just created,
    /// or one whose leader is being elected. Retried inside [`Js`] until the
    /// request timeout, then reported as `Unavailable`; never seen outside.
    #[error("{0}")]
    NoResponders(String),
}

impl JsError {
    pub fn err_code(&self) -> Option<u32> {
        match self {
            JsError::Api { err_code, .. } => Some(*err_code),
            _ => None,
        }
    }

    pub fn is(&self, code: u32) -> bool {
        self.err_code() == Some(code)
    }

    /// A lost compare-and-set: another writer got there first.
    pub fn is_conflict(&self) -> bool {
        self.is(code::WRONG_LAST_SEQUENCE) || self.is(code::WRONG_LAST_SEQUENCE_IN_BATCH)
    }
}

impl From<JsError> for StoreError {
    fn from(e: JsError) -> Self {
        match e {
            e if e.is_conflict() => StoreError::Conflict(e.to_string()),
            JsError::Unavailable(m) | JsError::NoResponders(m) => StoreError::Unavailable(m),
            other => StoreError::Backend(Box::new(other)),
        }
    }
}

#[derive(Deserialize)]
struct ApiErrorBody {
    code: u16,
    #[serde(default)]
    err_code: u32,
    #[serde(default)]
    description: String,
}

/// A stream's answer to a publish (or a batch's commit).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PubAck {
    pub seq: u64,
    /// The Msg-Id was seen within the duplicate window: nothing stored.
    #[serde(default)]
    pub duplicate: bool,
}

/// A message to publish.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

impl Out {
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            subject: subject.into(),
            headers: HeaderMap::new(),
            payload: payload.into(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.insert(name, value.to_string().as_str());
        self
    }

    /// Deduplicated by the stream on this id within its window.
    pub fn msg_id(self, id: impl ToString) -> Self {
        self.header("Nats-Msg-Id", id)
    }

    /// Replaces every earlier message of its subject.
    pub fn rollup(self) -> Self {
        self.header("Nats-Rollup", "sub")
    }

    /// Stored only if the subject's last message is `seq` (0: none yet).
    pub fn expect_last(self, seq: u64) -> Self {
        self.header("Nats-Expected-Last-Subject-Sequence", seq)
    }

    /// Delivered to `target` at `at_ms` by the server's scheduler.
    pub fn schedule(self, at_ms: u64, target: &str) -> Self {
        let at =
            humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(at_ms));
        self.header("Nats-Schedule", format!("@at {at}"))
            .header("Nats-Schedule-Target", target)
    }

    /// Removed by the server after `ttl`.
    pub fn ttl(self, ttl: Duration) -> Self {
        self.header("Nats-TTL", format!("{}s", ttl.as_secs().max(1)))
    }
}

/// A stored message as a direct get returns it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub subject: String,
    pub seq: u64,
    pub payload: Bytes,
}

/// A message a pull consumer handed out.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub subject: String,
    /// The ack subject: settles this delivery from any connection. Never
    /// leaves the gateways (it is no capability: see the design notes).
    pub reply: String,
    pub stream_seq: u64,
    /// How many times the server has delivered it (redeliveries included).
    pub delivered: u64,
    pub payload: Bytes,
}

/// This gateway's place in a consumer's priority group (`pinned_client`
/// policy: the server hands messages to one puller of the group at a time,
/// the pinned one, and moves the pin when that puller stops pulling for
/// the consumer's `priority_timeout`).
pub(crate) struct Pin {
    pub group: &'static str,
    /// The id the server gave this connection when it pinned it; sent with
    /// each pull so the server goes on serving it.
    id: std::sync::Mutex<Option<String>>,
}

impl Pin {
    pub fn new(group: &'static str) -> Self {
        Self {
            group,
            id: Default::default(),
        }
    }

    /// The pin id held now, if this gateway is the pinned one.
    pub fn id(&self) -> Option<String> {
        self.id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, id: Option<&str>) {
        let mut held = self
            .id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.as_deref() != id {
            match id {
                Some(_) => tracing::info!(
                    group = self.group,
                    "This gateway is now the pinned puller of its priority group."
                ),
                None if held.is_some() => tracing::info!(
                    group = self.group,
                    "The server moved this gateway's pin to another puller."
                ),
                None => {}
            }
            *held = id.map(str::to_owned);
        }
    }
}

/// How long a repeatable call about a new stream or consumer goes on
/// asking while nobody answers for it (see [`Js::api_settling`]): twice
/// nats-server's longest election timeout, and some.
pub(crate) const SETTLING: Duration = Duration::from_secs(30);

/// The API of one cluster account.
#[derive(Clone)]
pub(crate) struct Js {
    pub client: Client,
    pub timeout: Duration,
}

fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.headers.as_ref()?.get(name).map(|v| v.as_str())
}

impl Js {
    fn unavailable(what: &str, e: impl std::fmt::Display) -> JsError {
        JsError::Unavailable(format!("{what}: {e}"))
    }

    async fn request(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> Result<Message, JsError> {
        let req = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(self.timeout));
        let req = match headers {
            Some(h) => req.headers(h),
            None => req,
        };
        self.client
            .send_request(subject.clone(), req)
            .await
            .map_err(|e| match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    JsError::NoResponders(format!("no server answers on {subject}"))
                }
                _ => Self::unavailable(&format!("request to {subject}"), e),
            })
    }

    /// Runs `call` again while no server answers (a stream or consumer
    /// created a moment ago, or a leader being elected, has no responder for
    /// a short while), for up to the request timeout.
    async fn patiently<T, F, Fut>(&self, mut call: F) -> Result<T, JsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, JsError>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            match call().await {
                Err(JsError::NoResponders(m)) => {
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Err(JsError::Unavailable(m));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(400));
                }
                other => return other,
            }
        }
    }

    /// A JSON API call: `$JS.API.<what>`.
    pub async fn api(&self, what: &str, body: &Value) -> Result<Value, JsError> {
        self.patiently(|| self.api_once(what, body)).await
    }

    /// [`Js::api`] for a call that is safe to repeat (creating a stream or
    /// consumer with a given config, reading one back) about an object that
    /// may have been created a moment ago, by this gateway or another one
    /// starting beside it. Until its raft group has elected a leader nobody
    /// answers for it, and a first election that fails waits for the
    /// server's election timeout (4-9 s on nats-server): longer than one
    /// request timeout. So a call that gets no answer is made again, up to
    /// [`SETTLING`]; answers, errors included, are returned as they come.
    pub async fn api_settling(&self, what: &str, body: &Value) -> Result<Value, JsError> {
        let deadline = tokio::time::Instant::now() + SETTLING.max(self.timeout);
        let mut pause = Duration::from_millis(50);
        loop {
            match self.api(what, body).await {
                Err(JsError::Unavailable(m)) => {
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Err(JsError::Unavailable(m));
                    }
                    tracing::debug!(call = what, error = %m, "No answer yet; asking again.");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    async fn api_once(&self, what: &str, body: &Value) -> Result<Value, JsError> {
        let payload = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(serde_json::to_vec(body).expect("JSON"))
        };
        let m = self
            .request(format!("$JS.API.{what}"), None, payload)
            .await?;
        Self::answer(what, &m.payload)
    }

    /// A JSON answer of the server, its `error` (if any) as
    /// [`JsError::Api`]; `what` names the call in a protocol error.
    fn answer(what: &str, payload: &[u8]) -> Result<Value, JsError> {
        let v: Value = serde_json::from_slice(payload)
            .map_err(|e| JsError::Protocol(format!("{what}: {e}")))?;
        if let Some(err) = v.get("error") {
            let e: ApiErrorBody = serde_json::from_value(err.clone())
                .map_err(|e| JsError::Protocol(format!("{what}: {e}")))?;
            return Err(JsError::Api {
                code: e.code,
                err_code: e.err_code,
                description: e.description,
            });
        }
        Ok(v)
    }

    fn pub_ack(subject: &str, m: &Message) -> Result<PubAck, JsError> {
        if m.status == Some(StatusCode::NO_RESPONDERS) {
            return Err(JsError::NoResponders(format!(
                "no stream answered for {subject}"
            )));
        }
        let v = Self::answer(&format!("publish to {subject}"), &m.payload)?;
        serde_json::from_value(v)
            .map_err(|e| JsError::Protocol(format!("publish to {subject}: {e}")))
    }

    /// One acknowledged publish: `Ok` once the stream's quorum has it.
    pub async fn publish(&self, out: Out) -> Result<PubAck, JsError> {
        self.patiently(|| self.publish_once(out.clone())).await
    }

    async fn publish_once(&self, out: Out) -> Result<PubAck, JsError> {
        let m = self
            .request(out.subject.clone(), Some(out.headers), out.payload)
            .await?;
        Self::pub_ack(&out.subject, &m)
    }

    /// Publishes `msgs` (at most 1000, one stream) as one atomic batch: all
    /// are stored or none. One message is a plain publish.
    pub async fn batch(&self, mut msgs: Vec<Out>) -> Result<PubAck, JsError> {
        assert!(!msgs.is_empty() && msgs.len() <= MAX_BATCH);
        if msgs.len() == 1 {
            return self.publish(msgs.pop().expect("one")).await;
        }
        // A commit nobody answered stored nothing: the whole batch is sent
        // again under a new id.
        self.patiently(|| self.batch_once(msgs.clone())).await
    }

    async fn batch_once(&self, msgs: Vec<Out>) -> Result<PubAck, JsError> {
        let id = ulid::Ulid::new().to_string();
        let n = msgs.len();
        let mut last = None;
        for (i, mut m) in msgs.into_iter().enumerate() {
            m.headers.insert("Nats-Batch-Id", id.as_str());
            m.headers
                .insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            if i + 1 == n {
                m.headers.insert("Nats-Batch-Commit", "1");
                last = Some(m);
            } else {
                self.client
                    .publish_with_headers(m.subject, m.headers, m.payload)
                    .await
                    .map_err(|e| Self::unavailable("batch publish", e))?;
            }
        }
        let m = last.expect("a last message");
        let subject = m.subject.clone();
        let reply = self.request(m.subject, Some(m.headers), m.payload).await?;
        Self::pub_ack(&subject, &reply)
    }

    /// The last message of `subject` (wildcards allowed: the last of all
    /// matching), or `None`.
    pub async fn last(&self, stream: &str, subject: &str) -> Result<Option<Stored>, JsError> {
        let body = serde_json::json!({ "last_by_subj": subject });
        self.direct_one(stream, &body).await
    }

    /// The first message at or after `seq` matching `filter`.
    pub async fn next(
        &self,
        stream: &str,
        filter: &str,
        seq: u64,
    ) -> Result<Option<Stored>, JsError> {
        let body = serde_json::json!({ "seq": seq, "next_by_subj": filter });
        self.direct_one(stream, &body).await
    }

    /// A get answered by the stream's leader (`STREAM.MSG.GET`), never by
    /// a replica that may trail it: for reads a decision rests on without
    /// a compare-and-set to catch a stale answer (`body` as for a direct
    /// get: `last_by_subj`, or `seq` with `next_by_subj`).
    pub async fn leader_get(&self, stream: &str, body: &Value) -> Result<Option<Stored>, JsError> {
        use base64::Engine;
        let v = match self.api(&format!("STREAM.MSG.GET.{stream}"), body).await {
            Ok(v) => v,
            Err(e) if e.is(code::NO_MESSAGE_FOUND) => return Ok(None),
            Err(e) => return Err(e),
        };
        let m = &v["message"];
        let subject = m["subject"]
            .as_str()
            .ok_or_else(|| {
                JsError::Protocol(format!("a message get on {stream} without a subject"))
            })?
            .to_string();
        let seq = m["seq"]
            .as_u64()
            .ok_or_else(|| JsError::Protocol(format!("a message get on {stream} without a seq")))?;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(m["data"].as_str().unwrap_or_default())
            .map_err(|e| JsError::Protocol(format!("a message get on {stream}: {e}")))?;
        Ok(Some(Stored {
            subject,
            seq,
            payload: Bytes::from(payload),
        }))
    }

    async fn direct_one(&self, stream: &str, body: &Value) -> Result<Option<Stored>, JsError> {
        self.patiently(|| self.direct_one_once(stream, body)).await
    }

    async fn direct_one_once(&self, stream: &str, body: &Value) -> Result<Option<Stored>, JsError> {
        let m = self
            .request(
                format!("$JS.API.DIRECT.GET.{stream}"),
                None,
                Bytes::from(body.to_string()),
            )
            .await?;
        match m.status {
            Some(StatusCode::NOT_FOUND) => Ok(None),
            Some(StatusCode::NO_RESPONDERS) => Err(JsError::NoResponders(format!(
                "no server answers direct gets on {stream}"
            ))),
            Some(s) if s != StatusCode::OK => Err(JsError::Protocol(format!(
                "direct get on {stream}: status {s} {}",
                m.description.clone().unwrap_or_default()
            ))),
            _ => Self::stored(&m).map(Some),
        }
    }

    fn stored(m: &Message) -> Result<Stored, JsError> {
        let subject = header(m, "Nats-Subject")
            .ok_or_else(|| JsError::Protocol("direct get without Nats-Subject".into()))?
            .to_string();
        let seq = header(m, "Nats-Sequence")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| JsError::Protocol("direct get without Nats-Sequence".into()))?;
        Ok(Stored {
            subject,
            seq,
            payload: m.payload.clone(),
        })
    }

    /// A batched direct get (`batch`, with `multi_last` or `next_by_subj`):
    /// the messages until the server's end-of-batch.
    pub async fn direct_batch(&self, stream: &str, body: &Value) -> Result<Vec<Stored>, JsError> {
        self.patiently(|| self.direct_batch_once(stream, body))
            .await
    }

    async fn direct_batch_once(&self, stream: &str, body: &Value) -> Result<Vec<Stored>, JsError> {
        let inbox = self.client.new_inbox();
        let mut sub = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| Self::unavailable("subscribe", e))?;
        self.client
            .publish_with_reply(
                format!("$JS.API.DIRECT.GET.{stream}"),
                inbox,
                Bytes::from(body.to_string()),
            )
            .await
            .map_err(|e| Self::unavailable("direct get", e))?;
        let mut out = Vec::new();
        loop {
            let m = match tokio::time::timeout(self.timeout, sub.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(JsError::Unavailable("connection closed".into())),
                Err(_) => {
                    return Err(JsError::Unavailable(format!(
                        "direct get on {stream} timed out"
                    )));
                }
            };
            match m.status {
                // 204: end of batch; 404: nothing matched.
                Some(s) if s.as_u16() == 204 || s == StatusCode::NOT_FOUND => break,
                Some(StatusCode::NO_RESPONDERS) => {
                    return Err(JsError::NoResponders(format!(
                        "no server answers direct gets on {stream}"
                    )));
                }
                Some(s) if s != StatusCode::OK => {
                    return Err(JsError::Protocol(format!(
                        "direct get on {stream}: status {s} {}",
                        m.description.clone().unwrap_or_default()
                    )));
                }
                _ => out.push(Self::stored(&m)?),
            }
        }
        let _ = sub.unsubscribe().await;
        Ok(out)
    }

    /// The last message of each subject matching `filters`, up to `max`.
    pub async fn multi_last(
        &self,
        stream: &str,
        filters: &[String],
        max: usize,
    ) -> Result<Vec<Stored>, JsError> {
        let body = serde_json::json!({ "multi_last": filters, "batch": max });
        self.direct_batch(stream, &body).await
    }

    /// Up to `max` messages matching `filter` from sequence `seq` on.
    pub async fn range(
        &self,
        stream: &str,
        filter: &str,
        seq: u64,
        max: usize,
    ) -> Result<Vec<Stored>, JsError> {
        let body = serde_json::json!({ "seq": seq.max(1), "next_by_subj": filter, "batch": max });
        self.direct_batch(stream, &body).await
    }

    /// Up to `max` messages from a pull consumer, waiting up to `wait` for
    /// the first (zero: what is there now).
    pub async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivered>, JsError> {
        self.patiently(|| self.fetch_once(stream, consumer, max, wait, None))
            .await
    }

    /// [`Js::fetch`] as a member of `pin`'s priority group: with the pin
    /// id when this gateway holds it. A pull the server refuses because the
    /// pin moved (or the consumer is no longer pinned) clears the id and
    /// ends the batch; the next pull asks again without it.
    pub async fn fetch_pinned(
        &self,
        stream: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
        pin: &Pin,
    ) -> Result<Vec<Delivered>, JsError> {
        self.patiently(|| self.fetch_once(stream, consumer, max, wait, Some(pin)))
            .await
    }

    async fn fetch_once(
        &self,
        stream: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
        pin: Option<&Pin>,
    ) -> Result<Vec<Delivered>, JsError> {
        let inbox = self.client.new_inbox();
        let mut sub = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| Self::unavailable("subscribe", e))?;
        let mut body = if wait.is_zero() {
            serde_json::json!({ "batch": max, "no_wait": true })
        } else {
            serde_json::json!({ "batch": max, "expires": wait.as_nanos() as u64 })
        };
        if let Some(pin) = pin {
            // A group on a consumer without priority groups is ignored, so
            // every pull names it; the id only once the server gave one.
            body["group"] = pin.group.into();
            if let Some(id) = pin.id() {
                body["id"] = id.into();
            }
        }
        self.client
            .publish_with_reply(
                format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
                inbox,
                Bytes::from(body.to_string()),
            )
            .await
            .map_err(|e| Self::unavailable("fetch", e))?;
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait + self.timeout;
        while out.len() < max {
            let m = match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(JsError::Unavailable("connection closed".into())),
                Err(_) if !out.is_empty() => break,
                Err(_) => {
                    return Err(JsError::Unavailable(format!(
                        "fetch from {stream}/{consumer} timed out"
                    )));
                }
            };
            match m.status {
                // 404 no messages, 408 request expired, 409 leadership
                // change or consumer deleted: the batch ends here.
                Some(StatusCode::NOT_FOUND) | Some(StatusCode::TIMEOUT) => break,
                Some(StatusCode::REQUEST_TERMINATED) => {
                    if out.is_empty() {
                        let why = m.description.clone().unwrap_or_default();
                        if why.to_ascii_lowercase().contains("deleted") {
                            return Err(JsError::Api {
                                code: 409,
                                err_code: code::CONSUMER_NOT_FOUND,
                                description: why,
                            });
                        }
                    }
                    break;
                }
                Some(StatusCode::NO_RESPONDERS) if out.is_empty() => {
                    return Err(JsError::NoResponders(format!(
                        "no server answers for consumer {stream}/{consumer}"
                    )));
                }
                Some(StatusCode::NO_RESPONDERS) => break,
                Some(s) if s == StatusCode::IDLE_HEARTBEAT => continue,
                // The pin moved to another puller, or the consumer is no
                // longer pinned (a config changed it): ask again without.
                Some(s)
                    if pin.is_some()
                        && (s == StatusCode::PIN_ID_MISMATCH
                            || (s == 400
                                && m.description
                                    .as_deref()
                                    .is_some_and(|d| d.contains("Not a Pinned")))) =>
                {
                    if let Some(pin) = pin {
                        pin.set(None);
                    }
                    break;
                }
                Some(s) if s != StatusCode::OK => {
                    return Err(JsError::Protocol(format!(
                        "fetch from {stream}/{consumer}: status {s} {}",
                        m.description.clone().unwrap_or_default()
                    )));
                }
                _ => {
                    let reply = m.reply.as_ref().map(|r| r.to_string()).ok_or_else(|| {
                        JsError::Protocol("a consumer message without an ack subject".into())
                    })?;
                    let (delivered, stream_seq) = parse_ack_subject(&reply).ok_or_else(|| {
                        JsError::Protocol(format!("cannot read ack subject {reply}"))
                    })?;
                    if let (Some(pin), Some(id)) = (pin, header(&m, "Nats-Pin-Id")) {
                        pin.set(Some(id));
                    }
                    out.push(Delivered {
                        subject: m.subject.to_string(),
                        reply,
                        stream_seq,
                        delivered,
                        payload: m.payload.clone(),
                    });
                }
            }
        }
        let _ = sub.unsubscribe().await;
        Ok(out)
    }

    /// Sends an ack (`+ACK`, `-NAK {...}`, `+WPI`, `+TERM`) and waits for the
    /// server to confirm it.
    pub async fn ack(&self, reply: &str, body: impl Into<Bytes>) -> Result<(), JsError> {
        let body = body.into();
        self.patiently(|| async {
            let m = self.request(reply.to_string(), None, body.clone()).await?;
            if m.status == Some(StatusCode::NO_RESPONDERS) {
                return Err(JsError::NoResponders(
                    "no server answers acks for this consumer".into(),
                ));
            }
            Ok(())
        })
        .await
    }

    /// `+ACK` without waiting for the server's confirmation, for work
    /// whose outcome is already written: an ack that is lost only has the
    /// server hand the message out again, and that delivery finds the
    /// outcome and is skipped.
    pub async fn ack_written(&self, reply: &str) -> Result<(), JsError> {
        self.client
            .publish(reply.to_string(), Bytes::from_static(b"+ACK"))
            .await
            .map_err(|e| Self::unavailable("ack", e))
    }

    /// `-NAK` with a delay: the message is redelivered after it.
    pub async fn nak(&self, reply: &str, delay: Duration) -> Result<(), JsError> {
        let body = if delay.is_zero() {
            "-NAK".to_string()
        } else {
            format!("-NAK {{\"delay\": {}}}", delay.as_nanos() as u64)
        };
        self.ack(reply, body).await
    }
}

/// Messages per atomic batch (the server's limit).
pub(crate) const MAX_BATCH: usize = 1000;

/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
/// (or the 12-token form with domain and account hash): the delivered count
/// and the stream sequence.
fn parse_ack_subject(reply: &str) -> Option<(u64, u64)> {
    let t: Vec<&str> = reply.split('.').collect();
    let (delivered, sseq) = match t.len() {
        9 => (t[4], t[5]),
        n if n >= 12 => (t[6], t[7]),
        _ => return None,
    };
    Some((delivered.parse().ok()?, sseq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_subjects_of_both_forms_are_read() {
        assert_eq!(
            parse_ack_subject("$JS.ACK.S.c.3.17.9.1700000000000000000.0"),
            Some((3, 17))
        );
        assert_eq!(
            parse_ack_subject("$JS.ACK.dom.acchash.S.c.2.41.5.1700000000000000000.4.rnd"),
            Some((2, 41))
        );
        assert_eq!(parse_ack_subject("$JS.ACK.S.c"), None);
    }
}
