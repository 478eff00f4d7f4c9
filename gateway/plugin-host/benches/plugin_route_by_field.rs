//! Time per event of `route-by-field` through the Wasm host, in batches of
//! 64 events of 1 KB JSON, against the same plugin code called natively.
//!
//! Run with `scripts/build-plugins.sh && cargo bench -p switchyard-plugin-host --bench
//! plugin_route_by_field`. The Wasm side is the whole `run_chain` path the
//! router uses, on the calling task: laying the events out as a batch,
//! copying it into the component, the guest's JSON lookup, the verdicts
//! back, the route check and merge.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use switchyard_plugin_host::{PluginConfig, PluginEvent, PluginHost};
use switchyard_sdk::Plugin as _;

/// The plugin's own source, compiled natively: the same logic, no Wasm.
#[path = "../../../plugins/route-by-field/src/lib.rs"]
#[allow(dead_code)]
mod route_by_field;

const BATCH: usize = 64;

/// The allocator the gateway binary uses (`gateway/switchyard/src/main.rs`), so the
/// host side's allocations cost here what they cost in the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn config() -> BTreeMap<String, String> {
    [
        ("pointer", "/type"),
        (
            "routes",
            "refund=refunds|audit,order=billing,invoice=billing",
        ),
        ("default", "audit"),
        ("priorities", "refund=8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A 1 KB JSON event; `type` varies so lookups are not all the same.
fn body(i: usize) -> String {
    let kind = ["order", "refund", "invoice", "other"][i % 4];
    let mut s = format!(
        r#"{{"type":"{kind}","id":"evt_{i:08}","customer":{{"id":"cus_{i}","tier":"pro"}},"amount":{},"padding":""#,
        i * 100
    );
    while s.len() < 1022 {
        s.push('x');
    }
    s.push_str(r#""}"#);
    s
}

/// `n` events as the router hands them over.
fn make_events(n: usize) -> Vec<PluginEvent> {
    (0..n)
        .map(|i| PluginEvent {
            id: format!("{i}"),
            topic: "orders".into(),
            received_at_ms: 1,
            headers: vec![("content-type".into(), "application/json".into())],
            content_type: "application/json".into(),
            payload: body(i).into(),
            attributes: Vec::new(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = std::env::var_os("SWITCHYARD_PLUGIN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/target/wasm32-wasip2/release")
        });
    let wasm = dir.join("route_by_field.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run scripts/build-plugins.sh first",
        wasm.display()
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let mut pc = PluginConfig::new("route-by-field", &wasm);
    pc.config = config();
    let host = PluginHost::start(&[pc], cache.path()).expect("plugin loads");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let events = make_events(BATCH);
    assert!(events.iter().all(|e| e.payload.len() == 1024));
    let chain = vec!["route-by-field".to_owned()];
    let known: HashSet<String> = ["refunds", "audit", "billing"]
        .into_iter()
        .map(str::to_owned)
        .collect();

    let mut group = c.benchmark_group("route_by_field_1kb_batch64");
    group.throughput(Throughput::Elements(BATCH as u64));
    // The router builds its `PluginEvent`s from stored events with or
    // without a plugin in the chain; here they are cloned outside the
    // timing, as the native side borrows them.
    group.bench_function("wasm", |b| {
        b.iter_batched(
            || events.clone(),
            |events| {
                let out = rt.block_on(host.run_chain(&chain, &known, events));
                assert_eq!(out.len(), BATCH);
                out
            },
            BatchSize::SmallInput,
        )
    });
    let native =
        route_by_field::RouteByField::init(&config().into_iter().collect()).expect("native init");
    group.bench_function("native", |b| {
        b.iter(|| {
            // The guest borrows each event from the batch; natively, the
            // SDK's event borrows the same way.
            events
                .iter()
                .map(|e| {
                    let mut ev = switchyard_sdk::Event::default();
                    ev.id = e.id.as_str().into();
                    ev.topic = e.topic.as_str().into();
                    ev.received_at_ms = e.received_at_ms;
                    ev.content_type = e.content_type.as_str().into();
                    ev.payload = e.payload.as_ref().into();
                    let ev = e
                        .headers
                        .iter()
                        .fold(ev, |ev, (k, v)| ev.with_header(k, v.as_str()));
                    native.handle(&ev)
                })
                .collect::<Vec<_>>()
        })
    });
    group.finish();
    // The same thing in the router's largest batches, where the fixed cost
    // of a call is spread over 512 events.
    let big = make_events(512);
    let mut group = c.benchmark_group("route_by_field_1kb_batch512");
    group.throughput(Throughput::Elements(big.len() as u64));
    group.bench_function("wasm", |b| {
        b.iter_batched(
            || big.clone(),
            |events| rt.block_on(host.run_chain(&chain, &known, events)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
    // Time inside the component call alone (lowering the events, the
    // guest's work, lifting the verdicts), as the host measures it for
    // `GET /v1/plugins`; the rest of `run_chain` is the host's side: the
    // batch layout, the route check and merge.
    if let Some(s) = host.statuses().first() {
        println!(
            "{}: {:.2} µs per event inside the component call (avg_us_per_event, both groups)",
            s.name, s.avg_us_per_event
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
