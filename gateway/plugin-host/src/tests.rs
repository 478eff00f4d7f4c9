//! Tests of the plugin host against the real example plugins and hostile
//! fixtures, built by `scripts/build-plugins.sh` into
//! `plugins/target/wasm32-wasip2/release` (or `$SWITCHYARD_PLUGIN_DIR`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

fn plugin_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/target/wasm32-wasip2/release")
        })
}

/// The built plugin; fails (never skips) when it has not been built.
fn wasm(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-plugins.sh first (or set SWITCHYARD_PLUGIN_DIR)",
        path.display()
    );
    path
}

/// One compile cache for the whole test run, so each plugin compiles once.
fn cache() -> PathBuf {
    std::env::temp_dir().join("switchyard-plugin-tests-cache")
}

fn plugin(name: &str, file: &str, config: &[(&str, &str)]) -> PluginConfig {
    let mut c = PluginConfig::new(name, wasm(file));
    c.config = config
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<BTreeMap<_, _>>();
    c
}

fn start(configs: &[PluginConfig]) -> Arc<PluginHost> {
    PluginHost::start(configs, &cache()).expect("plugins load")
}

fn event(id: &str, body: &str) -> PluginEvent {
    PluginEvent {
        id: id.to_owned(),
        topic: "orders".to_owned(),
        received_at_ms: 1,
        headers: Vec::new(),
        content_type: "application/json".to_owned(),
        payload: bytes::Bytes::copy_from_slice(body.as_bytes()),
        attributes: Vec::new(),
    }
}

fn dests(names: &[&str]) -> HashSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn chain(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn done(o: &ChainOutcome) -> &Verdict {
    match o {
        ChainOutcome::Done(v) => v,
        ChainOutcome::Failed { plugin, error, .. } => panic!("{plugin} failed: {error}"),
    }
}

fn failed(o: &ChainOutcome) -> &str {
    match o {
        ChainOutcome::Failed { error, .. } => error,
        ChainOutcome::Done(v) => panic!("expected a failure, got {v:?}"),
    }
}

fn routes(v: &Verdict) -> Vec<&str> {
    v.routes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect()
}

fn rbf() -> PluginConfig {
    plugin(
        "route-by-field",
        "route_by_field",
        &[
            ("pointer", "/type"),
            ("routes", "refund=refunds|audit,order=billing"),
            ("default", "audit"),
            ("priorities", "refund=8"),
        ],
    )
}

#[tokio::test]
async fn route_by_field_routes_each_event_of_a_batch() {
    let host = start(&[rbf()]);
    assert!(host.is_ready());
    let out = host
        .run_chain(
            &chain(&["route-by-field"]),
            &dests(&["refunds", "audit", "billing"]),
            vec![
                event("1", r#"{"type":"order"}"#),
                event("2", r#"{"type":"refund"}"#),
                event("3", "not json"),
            ],
        )
        .await;
    assert_eq!(out.len(), 3);
    assert_eq!(routes(done(&out[0])), ["billing"]);
    assert_eq!(routes(done(&out[1])), ["refunds", "audit"]);
    assert_eq!(done(&out[1]).priority, Some(8));
    assert_eq!(routes(done(&out[2])), ["audit"]);
    let status = &host.statuses()[0];
    assert_eq!(status.invocations, 3);
    assert_eq!(status.contract, super::CONTRACT_VERSION);
    assert_eq!(status.version.len(), 64);
}

#[tokio::test]
async fn an_unknown_route_fails_the_event_with_on_error() {
    let mut c = rbf();
    c.on_error = OnError::Skip;
    let host = start(&[c]);
    let out = host
        .run_chain(
            &chain(&["route-by-field"]),
            &dests(&["billing"]),
            vec![event("1", r#"{"type":"order"}"#), event("2", "{}")],
        )
        .await;
    assert_eq!(routes(done(&out[0])), ["billing"]);
    match &out[1] {
        ChainOutcome::Failed {
            plugin,
            error,
            on_error,
        } => {
            assert_eq!(plugin, "route-by-field");
            assert!(error.contains("unknown destination \"audit\""), "{error}");
            assert_eq!(*on_error, OnError::Skip);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(host.statuses()[0].errors, 1);
}

#[tokio::test]
async fn redact_masks_and_the_next_plugin_sees_the_masked_payload() {
    let host = start(&[
        plugin(
            "redact",
            "redact",
            &[("keys", "email"), ("mask", "/card"), ("keep_last", "4")],
        ),
        plugin(
            "tier",
            "priority_by_sla",
            &[
                ("tiers", "gold=9"),
                ("pointer", "/customer/email"),
                ("default", "1"),
            ],
        ),
    ]);
    let out = host
        .run_chain(
            &chain(&["redact", "tier"]),
            &dests(&[]),
            vec![event(
                "1",
                r#"{"card":"4242424242424242","customer":{"email":"gold@acme.io"}}"#,
            )],
        )
        .await;
    let v = done(&out[0]);
    let payload: serde_json::Value =
        serde_json::from_slice(v.payload.as_deref().expect("payload replaced")).expect("json");
    assert_eq!(payload["card"], "[redacted]4242");
    assert_eq!(payload["customer"]["email"], "[redacted]e.io");
    // "tier" read the masked email, not the gold one: the chain passes changes on.
    assert_eq!(v.priority, Some(1));
    assert_eq!(v.routes, None);
}

#[tokio::test]
async fn github_router_routes_by_header_and_sets_the_ordering_key() {
    let host = start(&[plugin("gh", "github_router", &[("default", "archive")])]);
    let mut push = event(
        "1",
        r#"{"ref":"refs/heads/main","repository":{"full_name":"acme/api"}}"#,
    );
    push.headers.push(("x-github-event".into(), "push".into()));
    let out = host
        .run_chain(&chain(&["gh"]), &dests(&["deploys", "archive"]), vec![push])
        .await;
    let v = done(&out[0]);
    assert_eq!(routes(v), ["deploys"]);
    assert_eq!(v.priority, Some(8));
    assert_eq!(v.ordering_key.as_deref(), Some("acme/api"));
}

/// Routes one order event with `route-by-field` (to `billing`); how long
/// the call took.
async fn route_one_order(host: &PluginHost) -> Duration {
    let started = Instant::now();
    let out = host
        .run_chain(
            &chain(&["route-by-field"]),
            &dests(&["billing"]),
            vec![event("2", r#"{"type":"order"}"#)],
        )
        .await;
    assert_eq!(routes(done(&out[0])), ["billing"]);
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_forever_is_cut_at_its_timeout_while_another_plugin_proceeds() {
    let mut looper = plugin("looper", "loop_forever", &[]);
    looper.timeout = Some(Duration::from_millis(100));
    let host = start(&[looper, rbf()]);
    let started = Instant::now();
    let h = host.clone();
    let slow = tokio::spawn(async move {
        let out = h
            .run_chain(&chain(&["looper"]), &dests(&[]), vec![event("1", "loop")])
            .await;
        (out, started.elapsed())
    });
    // Give the looping batch a worker first.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let fast = route_one_order(&host).await;
    let (out, slow_elapsed) = slow.await.expect("task");
    assert!(
        fast < Duration::from_millis(90),
        "the other plugin waited {fast:?} behind the looping one"
    );
    let error = failed(&out[0]);
    assert!(error.contains("time limit"), "{error}");
    assert!(
        slow_elapsed >= Duration::from_millis(100) && slow_elapsed < Duration::from_secs(2),
        "cut after {slow_elapsed:?}"
    );
    assert_eq!(
        host.statuses()
            .iter()
            .find(|s| s.name == "looper")
            .map(|s| s.traps),
        Some(1)
    );
}

/// Plugins run on the caller's task, so a looping one must give its tokio
/// worker back between slices: with a single worker, a 10 ms timer and
/// another plugin's call still make progress while it loops for a second.
/// (Without yielding the timer would not fire at all; with a bare wake-up
/// instead of tokio's `yield_now` it fires about every 120 ms, when the
/// scheduler next polls its driver.) The bounds leave room for a loaded CI
/// machine.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_plugin_yields_its_worker_to_other_tasks() {
    let mut looper = plugin("looper", "loop_forever", &[]);
    looper.timeout = Some(Duration::from_secs(1));
    let host = start(&[looper, rbf()]);
    let h = host.clone();
    let slow = tokio::spawn(async move {
        h.run_chain(&chain(&["looper"]), &dests(&[]), vec![event("1", "loop")])
            .await
    });
    let started = Instant::now();
    let mut ticks = 0;
    let mut fast = None;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !slow.is_finished() && started.elapsed() < Duration::from_secs(5) {
        tick.tick().await;
        ticks += 1;
        if ticks == 5 {
            let took = route_one_order(&host).await;
            fast = Some((took, slow.is_finished()));
        }
    }
    let looped = started.elapsed();
    let out = slow.await.expect("task");
    assert!(failed(&out[0]).contains("time limit"));
    assert!(
        ticks >= 25,
        "only {ticks} timer ticks in the {looped:?} the plugin looped"
    );
    let (took, slow_done) = fast.expect("the other plugin ran");
    assert!(
        !slow_done,
        "the other plugin ran only after the looping one"
    );
    assert!(
        took < Duration::from_millis(300),
        "the other plugin waited {took:?}"
    );
}

#[tokio::test]
async fn memory_bomb_hits_its_limit() {
    let mut bomb = plugin("bomb", "memory_bomb", &[]);
    bomb.max_memory = Some(bytesize::ByteSize::mib(8));
    bomb.timeout = Some(Duration::from_secs(5));
    let host = start(&[bomb]);
    let out = host
        .run_chain(&chain(&["bomb"]), &dests(&[]), vec![event("1", "bomb")])
        .await;
    let error = failed(&out[0]);
    assert!(error.contains("memory limit"), "{error}");
    // A fresh instance serves the next batch.
    let out = host
        .run_chain(&chain(&["bomb"]), &dests(&[]), vec![event("2", "calm")])
        .await;
    assert_eq!(done(&out[0]), &Verdict::default());
}

#[tokio::test]
async fn a_trap_fails_only_the_guilty_event() {
    let host = start(&[plugin("panic", "panic", &[("route", "a")])]);
    let out = host
        .run_chain(
            &chain(&["panic"]),
            &dests(&["a"]),
            vec![event("1", "fine"), event("2", "panic"), event("3", "fine")],
        )
        .await;
    assert_eq!(routes(done(&out[0])), ["a"]);
    let error = failed(&out[1]);
    assert!(error.contains("panic"), "{error}");
    assert_eq!(routes(done(&out[2])), ["a"]);
    let s = &host.statuses()[0];
    assert_eq!(s.traps, 2, "the batch and the guilty event's re-run");
    assert!(!s.quarantined);
}

#[tokio::test]
async fn a_plugin_that_keeps_failing_is_quarantined() {
    let mut looper = plugin("looper", "loop_forever", &[]);
    looper.timeout = Some(Duration::from_millis(10));
    let host = start(&[looper]);
    let events = (0..8).map(|i| event(&i.to_string(), "loop")).collect();
    let started = Instant::now();
    let out = host
        .run_chain(&chain(&["looper"]), &dests(&[]), events)
        .await;
    assert!(out.iter().all(|o| matches!(o, ChainOutcome::Failed { .. })));
    assert!(
        failed(&out[7]).contains("quarantined"),
        "{}",
        failed(&out[7])
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let s = &host.statuses()[0];
    assert!(s.quarantined, "{s:?}");
    assert_eq!(s.traps, u64::from(QUARANTINE_AFTER));
}

#[tokio::test]
async fn init_failure_is_reported_with_the_plugin_name() {
    let err = PluginHost::start(
        &[plugin("boom", "panic", &[("panic_on_init", "true")])],
        &cache(),
    )
    .err()
    .expect("init fails");
    let msg = err.to_string();
    assert!(
        msg.contains("plugin \"boom\" failed to initialise"),
        "{msg}"
    );
    let err = PluginHost::start(
        &[plugin("rbf", "route_by_field", &[("pointer", "/x")])],
        &cache(),
    )
    .err()
    .expect("config refused");
    assert!(err.to_string().contains("\"routes\" is required"), "{err}");
}

#[tokio::test]
async fn a_wrong_contract_version_is_refused_clearly() {
    let err = PluginHost::start(&[plugin("old", "wrong_contract", &[])], &cache())
        .err()
        .expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("plugin \"old\"")
            && msg.contains("9.0.0")
            && msg.contains(super::CONTRACT_VERSION),
        "{msg}"
    );
    let report = check_plugin(&wasm("wrong_contract"), None)
        .await
        .expect("report");
    assert!(!report.implements);
    assert!(report.to_string().contains("9.0.0"), "{report}");
    let report = check_plugin(&wasm("route_by_field"), None)
        .await
        .expect("report");
    assert!(report.implements, "{report}");
    assert!(
        report.to_string().contains("switchyard:plugin@0.3.0"),
        "{report}"
    );
}

/// Users' plugins built for contract 0.2.0 (the index as WIT records, a
/// list of results back) keep loading and routing, side by side with 0.3.0
/// ones in one chain.
#[tokio::test]
async fn a_plugin_built_for_contract_0_2_still_loads_and_routes() {
    let old = plugin("old", "contract_v0_2", &[("route", "billing")]);
    let host = start(&[old, rbf()]);
    let mut to_audit = event("2", r#"{"type":"order"}"#);
    to_audit.headers = vec![("x-dest".to_owned(), "audit".to_owned())];
    let out = host
        .run_chain(
            &chain(&["old"]),
            &dests(&["billing", "audit"]),
            vec![
                event("1", "{}"),
                to_audit,
                event("3", r#"{"please":"fail"}"#),
            ],
        )
        .await;
    assert_eq!(routes(done(&out[0])), ["billing"]);
    assert_eq!(done(&out[0]).priority, Some(4));
    assert_eq!(
        done(&out[0]).attributes.as_deref(),
        Some(&[("seen-by".to_owned(), "0.2.0".to_owned())][..])
    );
    assert_eq!(routes(done(&out[1])), ["audit"]);
    assert_eq!(failed(&out[2]), "asked to fail");

    // 0.2.0 then 0.3.0 in one chain: the second sees the first's attribute
    // and decides the routes.
    let out = host
        .run_chain(
            &chain(&["old", "route-by-field"]),
            &dests(&["billing", "audit", "refunds"]),
            vec![event("4", r#"{"type":"refund"}"#)],
        )
        .await;
    let v = done(&out[0]);
    assert_eq!(routes(v), ["refunds", "audit"]);
    assert_eq!(v.priority, Some(8));
    assert!(v.attributes.as_ref().is_some_and(|a| a.len() == 1));

    let statuses = host.statuses();
    let contract = |name: &str| {
        statuses
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.contract.clone())
    };
    assert_eq!(contract("old").as_deref(), Some("0.2.0"));
    assert_eq!(contract("route-by-field").as_deref(), Some("0.3.0"));
    let report = check_plugin(&wasm("contract_v0_2"), None)
        .await
        .expect("report");
    assert!(report.implements, "{report}");
    let text = report.to_string();
    assert!(
        text.contains("switchyard:plugin@0.2.0") && text.contains("an older contract"),
        "{text}"
    );
}

/// A 0.3.0 plugin answering with broken verdict buffers: one that cannot
/// be framed fails its call (the batch is re-run one event at a time, so
/// only the event that breaks it again fails), a field that frames but is
/// wrong fails its event only; nothing panics.
#[tokio::test]
async fn broken_verdict_buffers_fail_clearly() {
    let host = start(&[plugin("garbage", "garbage_verdicts", &[("route", "ok")])]);
    let known = dests(&["ok"]);
    let the_chain = chain(&["garbage"]);
    let run = |words: &[&str]| {
        let events = words
            .iter()
            .enumerate()
            .map(|(i, w)| event(&i.to_string(), w))
            .collect();
        host.run_chain(&the_chain, &known, events)
    };

    // Wrong fields, well framed: per event, no batch re-run.
    let out = run(&["not-utf8", "fine", "priority"]).await;
    assert!(failed(&out[0]).contains("not valid UTF-8"), "{out:?}");
    assert_eq!(routes(done(&out[1])), ["ok"]);
    assert!(failed(&out[2]).contains("priority 12"), "{out:?}");
    assert_eq!(host.statuses()[0].batch_retries, 0);

    for (word, says) in [
        ("wrong-count", "returned 2 verdicts for 1 events"),
        ("cut", "1 bytes wanted, 0 left"),
        ("bad-tag", "tag 7, not 0 (ok) or 1 (err)"),
        ("huge-count", "a count of 4294967295 cannot fit"),
        ("huge-len", "4294967295 bytes wanted"),
        ("left-over", "3 bytes left after the last result"),
    ] {
        let out = run(&[word, "fine"]).await;
        let error = failed(&out[0]);
        assert!(error.contains(says), "{word}: {error}");
        assert_eq!(routes(done(&out[1])), ["ok"], "{word}");
    }
    let status = &host.statuses()[0];
    assert_eq!(status.batch_retries, 6);
    assert_eq!(status.traps, 0, "a bad answer is not a trap");
    assert!(!status.quarantined);
}

#[tokio::test]
async fn a_non_component_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").expect("write");
    let err = PluginHost::start(&[PluginConfig::new("junk", &path)], &cache())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not a component"), "{err}");
}

/// Polls until `f` holds, for up to five seconds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Replaces `dst` the way deploy tools do: write a temp file, rename it over.
fn replace_by_rename(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("tmp");
    std::fs::copy(src, &tmp).expect("copy");
    std::fs::rename(&tmp, dst).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_swaps_and_a_broken_replacement_keeps_the_old_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.wasm");
    std::fs::copy(wasm("panic"), &path).expect("copy");
    // Config both plugins accept: `panic` ignores it, route-by-field uses it.
    let mut c = plugin(
        "live",
        "panic",
        &[("pointer", "/type"), ("routes", "x=a"), ("default", "b")],
    );
    c.path = path.clone();
    let host = start(&[c]);
    let known = dests(&["a", "b"]);
    let run = |host: Arc<PluginHost>, known: HashSet<String>| async move {
        host.run_chain(
            &chain(&["live"]),
            &known,
            vec![event("1", r#"{"type":"x"}"#)],
        )
        .await
    };
    let out = run(host.clone(), known.clone()).await;
    assert_eq!(done(&out[0]).routes, None, "panic keeps routes");
    let first = host.statuses()[0].version.clone();

    // Swap by rename (how editors and deploy tools replace files).
    replace_by_rename(&wasm("route_by_field"), &path);
    eventually("the new version", || host.statuses()[0].version != first).await;
    let out = run(host.clone(), known.clone()).await;
    assert_eq!(routes(done(&out[0])), ["a"]);
    let second = host.statuses()[0].clone();
    assert_eq!(second.reloads, 1);

    // A broken file, written in place like `cp` does, is refused.
    std::fs::write(&path, b"this is not wasm").expect("write");
    eventually("the refusal", || host.statuses()[0].reload_error.is_some()).await;
    let status = host.statuses()[0].clone();
    assert_eq!(status.version, second.version, "old version still live");
    assert!(status.refused_reloads >= 1, "{status:?}");
    assert!(
        status
            .reload_error
            .as_deref()
            .is_some_and(|e| e.contains("refused")),
        "{status:?}"
    );
    let out = run(host.clone(), known.clone()).await;
    assert_eq!(routes(done(&out[0])), ["a"], "old version still serves");

    // And a fixed file by `cp` goes live again.
    std::fs::copy(wasm("panic"), &path).expect("cp");
    eventually("the fixed version", || host.statuses()[0].version == first).await;
    assert_eq!(host.statuses()[0].reload_error, None);
}

#[tokio::test]
async fn compiled_plugins_are_cached_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("plugin-cache");
    let c = rbf();
    drop(PluginHost::start(std::slice::from_ref(&c), &cache).expect("first start"));
    let files: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(files.len(), 1);
    // The second start loads the artefact and still works.
    let host = PluginHost::start(&[c], &cache).expect("second start");
    route_one_order(&host).await;
}

#[tokio::test]
async fn plugin_test_splits_batches_as_the_gateway_and_reports_a_timed_out_batch() {
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = cache.path().join("cache");
    // 600 events: one router batch of 512 in calls of 100, then one of 88.
    let events: Vec<PluginEvent> = (0..600)
        .map(|i| PluginEvent {
            id: format!("e{i}"),
            topic: "t".to_owned(),
            payload: Bytes::from_static(b"{}"),
            ..PluginEvent::default()
        })
        .collect();
    let options = TestOptions {
        max_batch: Some(100),
        cache_dir: Some(dir.clone()),
        ..TestOptions::default()
    };
    // The fixture spins on any payload containing "loop".
    let spinning: Vec<PluginEvent> = events[..2]
        .iter()
        .map(|e| PluginEvent {
            payload: Bytes::from_static(br#"{"loop":true}"#),
            ..e.clone()
        })
        .collect();
    let report = test_plugin(
        &wasm("loop_forever"),
        TestOptions {
            timeout: Some(Duration::from_millis(20)),
            max_batch: Some(2),
            ..options.clone()
        },
        spinning,
    )
    .await
    .expect("runs");
    // The batch of two timed out and was re-run one by one; both fail.
    assert_eq!(report.status.batch_retries, 1, "{:?}", report.status);
    assert!(report.status.timeouts >= 1);
    let advice = report.status.last_timeout.clone().unwrap_or_default();
    assert!(advice.contains("raise `timeout`"), "{advice}");
    assert!(report.results.iter().all(|r| r.is_err()));
    assert_eq!(report.status.limits.timeout_ms.value, 20);
    let report = test_plugin(
        &wasm("route_by_field"),
        TestOptions {
            config: BTreeMap::from([
                ("pointer".to_owned(), "/type".to_owned()),
                ("routes".to_owned(), "a=b".to_owned()),
            ]),
            ..options
        },
        events,
    )
    .await
    .expect("runs");
    assert_eq!(
        report.batches.iter().map(|b| b.events).collect::<Vec<_>>(),
        [512, 88]
    );
    assert_eq!(report.status.calls, 7, "6 calls for 512, 1 for 88");
    assert_eq!(report.status.batch_retries, 0);
    // The compiled components were cached, in a dir only we may enter.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&dir)
        .expect("cache dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(std::fs::read_dir(&dir).expect("list").count() >= 2);
}

#[tokio::test]
async fn the_cli_helpers_run_a_plugin_on_an_event_file() {
    let events = events_from_json(
        r#"[{"topic":"orders","headers":{"X-Kind":"a"},"body":{"type":"refund"}},
            {"body_text":"plain"}]"#,
    )
    .expect("valid file");
    assert_eq!(
        events[0].headers,
        vec![("x-kind".to_owned(), "a".to_owned())]
    );
    assert_eq!(events[1].content_type, "text/plain");
    let config = BTreeMap::from([
        ("pointer".to_owned(), "/type".to_owned()),
        ("routes".to_owned(), "refund=refunds".to_owned()),
    ]);
    let options = TestOptions {
        config,
        ..TestOptions::default()
    };
    let report = test_plugin(&wasm("route_by_field"), options, events)
        .await
        .expect("runs");
    assert_eq!(report.status.language, crate::Language::Rust);
    assert_eq!(report.batches.len(), 1);
    // Each event was also timed alone, without counting as the run's calls.
    assert_eq!(report.per_event.len(), 2);
    assert!(report.per_event.iter().all(|t| !t.is_zero()));
    assert_eq!(report.status.calls, 1, "{:?}", report.status);
    let out = report.results;
    let v = out[0].as_ref().expect("verdict");
    assert_eq!(routes(v), ["refunds"]);
    assert_eq!(out[1], Ok(Verdict::default()));
    let printed = serde_json::to_string(v).expect("serialize");
    assert_eq!(printed, r#"{"routes":["refunds"]}"#);
    assert!(events_from_json(r#"{"body":1,"body_text":"x"}"#).is_err());
    assert!(events_from_json(r#"{"bdy":1}"#).is_err());
}
