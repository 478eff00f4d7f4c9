//! Traces and metrics as an observability stack sees them: a real OTLP
//! receiver (OTLP/HTTP with axum, OTLP/gRPC with tonic) decodes what the
//! gateway exports with the opentelemetry-proto types, and `/metrics` is
//! scraped as Prometheus would.
//!
//! In-process gateways are configured with `[telemetry]`; the `OTEL_*`
//! variables are process-global, so they are tested on the real binary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use switchyard_tests::config::{Config, Destination, Topic, quoted};
use switchyard_tests::{Gateway, Process, Reply, Sink, client, eventually};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// One exported span, with its resource's `service.name`.
#[derive(Clone, Debug)]
struct Got {
    service: String,
    span: Span,
}

/// An OTLP receiver on 127.0.0.1:0.
#[derive(Clone, Default)]
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Got>>>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    fn keep(&self, req: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().unwrap();
        for rs in req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    spans.push(Got {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
    }

    fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }

    /// OTLP/HTTP: any path is accepted and recorded, so a test can check
    /// which one the exporter used.
    async fn http() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = Collector {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let me = c.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: Bytes| {
            let me = me.clone();
            async move {
                me.paths.lock().unwrap().push(uri.path().to_owned());
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                me.keep(req);
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        c
    }

    /// OTLP/gRPC: the TraceService, served by tonic.
    async fn grpc() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = Collector {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let svc = TraceServiceServer::new(c.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        c
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.paths.lock().unwrap().push("grpc".into());
        self.keep(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(s: &Span, key: &str) -> Option<Value> {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.clone())
}

fn attr_str(s: &Span, key: &str) -> Option<String> {
    match attr(s, key)? {
        Value::StringValue(v) => Some(v),
        _ => None,
    }
}

fn attr_int(s: &Span, key: &str) -> Option<i64> {
    match attr(s, key)? {
        Value::IntValue(v) => Some(v),
        _ => None,
    }
}

/// The trace id in a `traceparent` header.
fn trace_of(traceparent: &str) -> String {
    traceparent.split('-').nth(1).unwrap_or("").to_owned()
}

/// Exports to `collector` (if any) every 100 ms; topic `orders` routed to
/// `hooks` and `refuses`, and a signed topic routed nowhere.
fn config(collector: Option<&str>, hooks: &Sink, refuses: &Sink) -> Config {
    let mut c = Config::new().server("min_free_disk", quoted("1MiB"));
    if let Some(url) = collector {
        c = c
            .telemetry("otlp_endpoint", quoted(url))
            .telemetry("protocol", quoted("http/protobuf"))
            .telemetry("service_name", quoted("switchyard-test"))
            .telemetry("export_delay", quoted("100ms"));
    }
    let dest = |name: &str, sink: &Sink| {
        Destination::http(name, &sink.url)
            .set("timeout", quoted("2s"))
            .retry("{ initial = \"100ms\", multiplier = 1.0, max_attempts = 5 }")
    };
    c.destination(dest("hooks", hooks))
        .destination(dest("refuses", refuses))
        .topic(Topic::new("orders").routes(["hooks", "refuses"]))
        .topic(
            Topic::new("signed")
                .set("routes", "[]")
                .verify("github", ["It's a Secret to Everybody"]),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_tells_an_events_story_through_retries_and_dead_letters() {
    let collector = Collector::http().await;
    let hooks = Sink::start().await;
    // Fails twice, then succeeds.
    hooks.script([Reply::status(500), Reply::status(503)]);
    let refuses = Sink::start().await;
    // A 4xx other than 408/429 is dead-lettered at once.
    refuses.set_default(Reply::status(400));
    let gw = Gateway::start(&config(Some(&collector.url), &hooks, &refuses).build()).await;

    let resp = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .header("tracestate", "vendor=yes")
        .json(&serde_json::json!({"order": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let got = hooks.wait_for(3, Duration::from_secs(20)).await;
    refuses.wait_for(1, Duration::from_secs(20)).await;
    // Every outbound request continues the sender's trace.
    for r in &got {
        let tp = r.header("traceparent").expect("a traceparent on delivery");
        assert_eq!(trace_of(tp), TRACE, "{tp}");
        assert_eq!(r.header("tracestate"), Some("vendor=yes"));
    }

    // 1 ingest + 1 process + 3 + 1 attempts + 1 dead-letter in the trace.
    let spans = eventually(Duration::from_secs(20), "all spans exported", || {
        let c = collector.clone();
        async move {
            let all = c.spans();
            let n = all
                .iter()
                .filter(|g| hex(&g.span.trace_id) == TRACE)
                .count();
            (n >= 7).then_some(all)
        }
    })
    .await;
    assert!(
        collector
            .paths
            .lock()
            .unwrap()
            .iter()
            .all(|p| p == "/v1/traces"),
        "the signal path is appended to the base endpoint"
    );
    assert!(spans.iter().all(|g| g.service == "switchyard-test"));
    let in_trace: Vec<&Span> = spans
        .iter()
        .map(|g| &g.span)
        .filter(|s| hex(&s.trace_id) == TRACE)
        .collect();

    // The ingest SERVER span: child of the sender's span.
    let ingest = in_trace
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("an ingest span");
    assert_eq!(ingest.name, "POST /v1/topics/{topic}/events");
    assert_eq!(hex(&ingest.parent_span_id), PARENT);
    assert_eq!(
        attr_str(ingest, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attr_str(ingest, "http.route").as_deref(),
        Some("/v1/topics/{topic}/events")
    );
    assert_eq!(attr_int(ingest, "http.response.status_code"), Some(202));
    assert_eq!(
        attr_str(ingest, "messaging.system").as_deref(),
        Some("switchyard")
    );
    assert_eq!(
        attr_str(ingest, "messaging.operation.type").as_deref(),
        Some("send")
    );
    assert_eq!(
        attr_str(ingest, "messaging.destination.name").as_deref(),
        Some("orders")
    );
    assert_eq!(
        attr_str(ingest, "messaging.message.id").as_deref(),
        Some(id.as_str())
    );
    let ingest_id = hex(&ingest.span_id);

    // The router's per-event span, in the event's trace, linked to the
    // batch span (a root of its own that links back to the event).
    let process = in_trace
        .iter()
        .find(|s| s.name == "process orders")
        .expect("a process span");
    assert_eq!(process.kind, SpanKind::Consumer as i32);
    assert_eq!(hex(&process.parent_span_id), ingest_id);
    assert_eq!(
        attr_str(process, "messaging.message.id").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        attr_str(process, "messaging.operation.type").as_deref(),
        Some("process")
    );
    assert_eq!(process.links.len(), 1);
    let batch_id = hex(&process.links[0].span_id);
    let batch = spans
        .iter()
        .map(|g| &g.span)
        .find(|s| hex(&s.span_id) == batch_id)
        .expect("the batch span");
    assert_eq!(batch.name, "process");
    assert!(batch.parent_span_id.is_empty());
    assert!(
        batch
            .links
            .iter()
            .any(|l| hex(&l.trace_id) == TRACE && hex(&l.span_id) == ingest_id),
        "the batch span links to the event's context"
    );

    // Three CLIENT attempts to `hooks`: 500, 503, 200, numbered, with the
    // backoff that preceded each.
    let mut attempts: Vec<&&Span> = in_trace
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32 && s.name == "send hooks")
        .collect();
    attempts.sort_by_key(|s| attr_int(s, "switchyard.delivery.attempt"));
    assert_eq!(attempts.len(), 3);
    for (i, (a, status)) in attempts.iter().zip([500, 503, 200]).enumerate() {
        assert_eq!(hex(&a.parent_span_id), ingest_id);
        assert_eq!(
            attr_int(a, "switchyard.delivery.attempt"),
            Some(i as i64 + 1)
        );
        assert_eq!(attr_int(a, "http.response.status_code"), Some(status));
        assert_eq!(attr_str(a, "http.request.method").as_deref(), Some("POST"));
        assert_eq!(
            attr_str(a, "messaging.destination.name").as_deref(),
            Some("hooks")
        );
        assert_eq!(
            attr_str(a, "messaging.message.id").as_deref(),
            Some(id.as_str())
        );
        let delay = attr_int(a, "switchyard.delivery.delay_ms").unwrap();
        if i == 0 {
            assert_eq!(delay, 0);
        } else {
            assert!(delay > 0, "attempt {} followed a backoff", i + 1);
        }
        let failed = a.status.as_ref().map(|s| s.code) == Some(2);
        assert_eq!(failed, status != 200, "span status of attempt {}", i + 1);
        if status != 200 {
            assert_eq!(attr_str(a, "error.type"), Some(status.to_string()));
        }
    }
    // Each request carried the traceparent of its own attempt span.
    let attempt_ids: Vec<String> = attempts.iter().map(|a| hex(&a.span_id)).collect();
    for r in &got {
        let parent = r.header("traceparent").unwrap().split('-').nth(2).unwrap();
        assert!(attempt_ids.iter().any(|a| a == parent), "{parent}");
    }

    // `refuses` answered 400: one attempt, then a dead-letter span.
    let refused = in_trace
        .iter()
        .find(|s| s.name == "send refuses")
        .expect("the refused attempt");
    assert_eq!(attr_int(refused, "http.response.status_code"), Some(400));
    let dead = in_trace
        .iter()
        .find(|s| s.name == "dead-letter refuses")
        .expect("a dead-letter span");
    assert_eq!(hex(&dead.parent_span_id), ingest_id);
    assert_eq!(
        attr_str(dead, "messaging.operation.type").as_deref(),
        Some("settle")
    );

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_out_traces_export_nothing_but_still_propagate() {
    let collector = Collector::http().await;
    let hooks = Sink::start().await;
    let refuses = Sink::start().await;
    let text = config(Some(&collector.url), &hooks, &refuses)
        .telemetry("sample_ratio", "0.0")
        .build();
    let gw = Gateway::start(&text).await;
    let resp = client()
        .post(gw.url("/v1/topics/orders/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let got = hooks.wait_for(1, Duration::from_secs(20)).await;
    let tp = got[0].header("traceparent").expect("a traceparent");
    assert!(tp.ends_with("-00"), "not sampled: {tp}");
    gw.stop().await;
    assert!(collector.spans().is_empty(), "{:?}", collector.spans());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_receive_and_ack_join_the_events_trace() {
    let collector = Collector::http().await;
    let text = Config::new()
        .server("min_free_disk", quoted("1MiB"))
        .telemetry("otlp_endpoint", quoted(&collector.url))
        .telemetry("protocol", quoted("http/protobuf"))
        .telemetry("export_delay", quoted("100ms"))
        .destination(Destination::pull("jobs"))
        .topic(Topic::new("work").routes(["jobs"]))
        .build();
    let gw = Gateway::start(&text).await;
    let publish = |n: u32| {
        client()
            .post(gw.url("/v1/topics/work/events"))
            .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
            .json(&serde_json::json!({ "job": n }))
            .send()
    };
    let first = publish(1).await.unwrap();
    assert_eq!(first.status(), 202);
    let id = first.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(publish(2).await.unwrap().status(), 202);

    let receive = |wait: u64| {
        client()
            .post(gw.url("/v1/queues/jobs/receive"))
            .json(&serde_json::json!({ "max_messages": 1, "wait_seconds": wait }))
            .send()
    };
    let got: serde_json::Value = receive(10).await.unwrap().json().await.unwrap();
    let msg = &got["messages"][0];
    assert_eq!(msg["id"], id.as_str(), "{got}");
    // The consumer continues the event's trace from the receive span.
    let tp = msg["traceparent"]
        .as_str()
        .expect("a traceparent")
        .to_owned();
    assert_eq!(trace_of(&tp), TRACE, "{tp}");
    let acked: serde_json::Value = client()
        .post(gw.url("/v1/queues/jobs/ack"))
        .json(&serde_json::json!({ "receipts": [msg["receipt"]] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acked["results"][0]["ok"], true, "{acked}");
    // The second message is received and handed back.
    let got: serde_json::Value = receive(10).await.unwrap().json().await.unwrap();
    let second = &got["messages"][0];
    let nacked: serde_json::Value = client()
        .post(gw.url("/v1/queues/jobs/nack"))
        .json(&serde_json::json!({ "receipts": [second["receipt"]] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nacked["results"][0]["ok"], true, "{nacked}");

    let spans = eventually(Duration::from_secs(20), "pull spans exported", || {
        let c = collector.clone();
        async move {
            let all: Vec<Span> = c
                .spans()
                .into_iter()
                .map(|g| g.span)
                .filter(|s| hex(&s.trace_id) == TRACE)
                .collect();
            let named = |n: &str| all.iter().filter(|s| s.name == n).count();
            (named("receive jobs") >= 2 && named("ack jobs") >= 1 && named("nack jobs") >= 1)
                .then_some(all)
        }
    })
    .await;
    let by_id = |name: &str, id: &str| {
        spans
            .iter()
            .find(|s| s.name == name && attr_str(s, "messaging.message.id").as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no {name} span for {id}: {spans:?}"))
            .clone()
    };
    let received = by_id("receive jobs", &id);
    assert_eq!(received.kind, SpanKind::Client as i32);
    // Stored with the event: the ingest span's context (itself a child of
    // the sender's span), so the receive hangs under the ingest.
    let ingest = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32 && hex(&s.parent_span_id) == PARENT)
        .expect("the ingest span");
    assert!(
        spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server as i32)
            .any(|s| s.span_id == received.parent_span_id),
        "the receive is a child of its event's ingest span"
    );
    assert_eq!(hex(&ingest.trace_id), TRACE);
    assert_eq!(
        attr_str(&received, "messaging.operation.type").as_deref(),
        Some("receive")
    );
    assert_eq!(
        attr_str(&received, "messaging.destination.name").as_deref(),
        Some("jobs")
    );
    assert_eq!(attr_int(&received, "switchyard.delivery.attempt"), Some(1));
    // What the consumer got is the receive span's own context.
    assert_eq!(tp.split('-').nth(2), Some(hex(&received.span_id).as_str()));
    let ack = by_id("ack jobs", &id);
    assert_eq!(
        attr_str(&ack, "messaging.operation.type").as_deref(),
        Some("settle")
    );
    assert_eq!(
        attr_str(&ack, "messaging.operation.name").as_deref(),
        Some("ack")
    );
    let nack = spans.iter().find(|s| s.name == "nack jobs").unwrap();
    assert_ne!(
        attr_str(nack, "messaging.message.id").as_deref(),
        Some(id.as_str())
    );
    gw.stop().await;
}

/// Reads one sample from the Prometheus text format.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_events_flow() {
    let hooks = Sink::start().await;
    let refuses = Sink::start().await;
    refuses.set_default(Reply::status(400));
    let gw = Gateway::start(&config(None, &hooks, &refuses).build()).await;

    let before = gw.metrics().await;
    assert_eq!(
        sample(
            &before,
            "switchyard_ingest_events_total",
            "topic=\"orders\",outcome=\"accepted\""
        ),
        None
    );
    assert!(before.contains("# TYPE switchyard_store_commit_batch_size histogram"));

    let http = client();
    for i in 0..3 {
        let r = http
            .post(gw.url("/v1/topics/orders/events"))
            .json(&serde_json::json!({ "n": i }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let r = http
        .post(gw.url("/v1/topics/nope/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(gw.url("/v1/topics/signed/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    hooks.wait_for(3, Duration::from_secs(20)).await;

    let text = eventually(Duration::from_secs(20), "delivery metrics", || {
        let gw = &gw;
        async move {
            let t = gw.metrics().await;
            let done = sample(
                &t,
                "switchyard_delivery_attempts_total",
                "destination=\"refuses\",outcome=\"dead_letter\"",
            ) == Some(3.0)
                && sample(
                    &t,
                    "switchyard_delivery_attempts_total",
                    "destination=\"hooks\",outcome=\"delivered\"",
                ) == Some(3.0)
                // The attempt is counted when the answer arrives; the queue
                // entry goes when its removal is committed, a moment later.
                && sample(&t, "switchyard_queue_depth", "destination=\"hooks\"") == Some(0.0)
                && sample(&t, "switchyard_in_flight", "destination=\"hooks\"") == Some(0.0)
                && sample(&t, "switchyard_dlq_depth", "destination=\"refuses\"") == Some(3.0);
            done.then_some(t)
        }
    })
    .await;
    let get = |name: &str, labels: &str| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
    };
    assert_eq!(
        get(
            "switchyard_ingest_events_total",
            "topic=\"orders\",outcome=\"accepted\""
        ),
        3.0
    );
    // An unknown topic is counted without becoming a label value.
    assert_eq!(
        get(
            "switchyard_ingest_events_total",
            "topic=\"\",outcome=\"unknown_topic\""
        ),
        1.0
    );
    assert_eq!(
        get(
            "switchyard_ingest_events_total",
            "topic=\"signed\",outcome=\"unauthorized\""
        ),
        1.0
    );
    assert!(text.contains("switchyard_signature_failures_total{topic=\"signed\",reason="));
    assert_eq!(
        get(
            "switchyard_ingest_duration_seconds_count",
            "topic=\"orders\""
        ),
        3.0
    );
    assert!(get("switchyard_store_commit_batch_size_count", "") >= 3.0);
    assert!(get("switchyard_store_commit_duration_seconds_count", "") >= 3.0);
    assert!(get("switchyard_store_commits_total", "") >= 3.0);
    assert!(get("switchyard_store_disk_bytes", "") > 0.0);
    assert_eq!(
        get("switchyard_routed_events_total", "topic=\"orders\""),
        3.0
    );
    assert_eq!(
        get(
            "switchyard_delivery_duration_seconds_count",
            "destination=\"hooks\""
        ),
        3.0
    );
    assert_eq!(
        get("switchyard_dead_letters_total", "destination=\"refuses\""),
        3.0
    );
    assert_eq!(get("switchyard_dlq_depth", "destination=\"refuses\""), 3.0);
    assert_eq!(get("switchyard_queue_depth", "destination=\"hooks\""), 0.0);
    assert_eq!(get("switchyard_in_flight", "destination=\"hooks\""), 0.0);
    assert_eq!(
        get(
            "switchyard_oldest_pending_age_seconds",
            "destination=\"hooks\""
        ),
        0.0
    );

    // A destination that stops answering: its depth and lag grow.
    hooks.set_default(Reply::status(503));
    http.post(gw.url("/v1/topics/orders/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "lag on a failing destination",
        || {
            let gw = &gw;
            async move {
                let t = gw.metrics().await;
                let depth = sample(&t, "switchyard_queue_depth", "destination=\"hooks\"")?;
                let lag = sample(
                    &t,
                    "switchyard_oldest_pending_age_seconds",
                    "destination=\"hooks\"",
                )?;
                let retries = sample(
                    &t,
                    "switchyard_delivery_attempts_total",
                    "destination=\"hooks\",outcome=\"retry\"",
                )?;
                (depth == 1.0 && lag > 0.0 && retries >= 1.0).then_some(())
            }
        },
    )
    .await;
    gw.stop().await;
}

fn binary_config(dir: &std::path::Path, hooks: &Sink) -> std::path::PathBuf {
    let path = dir.join("switchyard.toml");
    std::fs::write(
        &path,
        Config::new()
            .for_process(&dir.join("data"))
            .server("min_free_disk", quoted("1MiB"))
            .destination(Destination::http("hooks", &hooks.url))
            .topic(Topic::new("orders").routes(["hooks"]))
            .build(),
    )
    .unwrap();
    path
}

/// Posts one traced event to the binary, waits for its delivery, stops the
/// binary with SIGTERM and returns what the collector got. The export delay
/// is a minute, so spans arrive only because shutdown flushes them.
async fn traced_run(collector: &Collector, env: &[(&str, &str)]) -> Vec<Got> {
    let hooks = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = binary_config(dir.path(), &hooks);
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "60000".into()));
    let gw = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::start_with_env(&config, &env)
    })
    .await
    .unwrap();
    let resp = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    hooks.wait_for(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(collector.spans().is_empty(), "nothing before the flush");
    let status = tokio::task::spawn_blocking(move || gw.sigterm())
        .await
        .unwrap();
    assert!(status.success());
    // The binary flushed before exiting; the receiver may still be
    // finishing the request.
    eventually(Duration::from_secs(5), "flushed spans", || {
        let c = collector.clone();
        async move { (c.spans().len() >= 3).then(|| c.spans()) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_env_vars_pick_grpc_on_the_real_binary() {
    let collector = Collector::grpc().await;
    let spans = traced_run(
        &collector,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "from-env"),
        ],
    )
    .await;
    assert!(spans.iter().all(|g| g.service == "from-env"));
    assert!(
        spans
            .iter()
            .all(|g| hex(&g.span.trace_id) == TRACE || g.span.name == "process")
    );
    assert!(spans.iter().any(|g| g.span.name == "send hooks"));
    assert!(collector.paths.lock().unwrap().iter().all(|p| p == "grpc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_env_vars_over_http_append_the_signal_path() {
    let collector = Collector::http().await;
    let base = format!("{}/otlp", collector.url);
    let spans = traced_run(
        &collector,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &base),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ],
    )
    .await;
    assert!(spans.iter().all(|g| g.service == "switchyard"));
    assert!(
        spans
            .iter()
            .any(|g| g.span.kind == SpanKind::Server as i32 && hex(&g.span.trace_id) == TRACE)
    );
    assert!(
        collector
            .paths
            .lock()
            .unwrap()
            .iter()
            .all(|p| p == "/otlp/v1/traces")
    );
}

/// The JSON log lines of a real binary: every line about an event names
/// it, so `grep <id>` over the logs tells that event's story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_about_an_event_names_its_id() {
    let hooks = Sink::start().await;
    // Fails once (a retry), then refuses for good (a dead letter).
    hooks.script([Reply::status(500)]);
    hooks.set_default(Reply::status(400));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    std::fs::write(
        &path,
        Config::new()
            .for_process(&dir.path().join("data"))
            .server("min_free_disk", quoted("1MiB"))
            .destination(
                Destination::http("hooks", &hooks.url)
                    .retry("{ initial = \"50ms\", multiplier = 1.0, max_attempts = 3 }"),
            )
            .destination(Destination::log("console"))
            .topic(Topic::new("orders").routes(["hooks", "console"]))
            .build(),
    )
    .unwrap();
    let gw = tokio::task::spawn_blocking(move || Process::start(&path))
        .await
        .unwrap();
    let resp = client()
        .post(gw.url("/v1/topics/orders/events"))
        .body(r#"{"order": 7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines = eventually(Duration::from_secs(20), "the dead letter logged", || {
        let logs = gw.logs.clone();
        async move {
            let lines: Vec<serde_json::Value> = logs
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            lines
                .iter()
                .any(|l| l["fields"]["message"] == "Delivery dead-lettered.")
                .then_some(lines)
        }
    })
    .await;
    for message in [
        "Event delivered to the log.",
        "Delivery attempt failed; retrying.",
        "Delivery dead-lettered.",
    ] {
        let line = lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line"));
        assert_eq!(line["fields"]["event_id"], id.as_str(), "{line}");
    }
    // No line that speaks of one delivery (it has a destination and an
    // attempt, or a topic) leaves the event unnamed.
    for l in &lines {
        let f = &l["fields"];
        let about_one = (f.get("destination").is_some() && f.get("attempt").is_some())
            || (f.get("topic").is_some() && f.get("plugin").is_some());
        assert!(!about_one || f.get("event_id").is_some(), "{l}");
    }
    gw.kill9();
}

/// A reload turns tracing on, then renames the service: each reload's new
/// spans go to the exporter it built, and the answer names no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_turns_tracing_on_and_changes_it_without_a_restart() {
    let collector = Collector::http().await;
    let (hooks, refuses) = (Sink::start().await, Sink::start().await);
    let gw = Gateway::start(&config(None, &hooks, &refuses).build()).await;
    let file = gw.dir.path().join("switchyard.toml");
    let data = gw.dir.path().join("data").display().to_string();
    let reload_with = |c: Config| {
        std::fs::write(&file, switchyard_tests::fill(&c.build(), &data)).unwrap();
        let url = gw.url("/v1/admin/reload");
        async move {
            let r = client().post(url).send().await.unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["restart_needed"], serde_json::json!([]), "{v}");
        }
    };
    let post = || async {
        let r = client()
            .post(gw.url("/v1/topics/orders/events"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    };
    // Tracing off: an event makes no span.
    post().await;

    reload_with(config(Some(&collector.url), &hooks, &refuses)).await;
    post().await;
    eventually(
        Duration::from_secs(20),
        "spans after the first reload",
        || {
            let c = collector.clone();
            async move {
                c.spans()
                    .iter()
                    .any(|g| g.service == "switchyard-test")
                    .then_some(())
            }
        },
    )
    .await;

    reload_with(
        config(Some(&collector.url), &hooks, &refuses).telemetry("service_name", quoted("renamed")),
    )
    .await;
    post().await;
    eventually(Duration::from_secs(20), "spans under the new name", || {
        let c = collector.clone();
        async move {
            c.spans()
                .iter()
                .any(|g| g.service == "renamed")
                .then_some(())
        }
    })
    .await;
    gw.stop().await;
}
