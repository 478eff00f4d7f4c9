//! Old data directories keep working: `fixtures/format-1/` was written by
//! the last build before the crate split (store format 1, see
//! `fixtures/make_format_1.py`), and this build opens it with every event,
//! queue entry, lease, dead letter, idempotency key and schema in place. A
//! directory of a format newer than this build is refused, not read.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_core::{EventId, EventMeta, NewEvent, now_ms};
use switchyard_store::{
    Appended, DeliveryStatus, DlqOwner, Hold, ListOrder, QueuePolicy, Routing, SharedStore,
    StoreError,
};
use switchyard_store_fjall::{Durability, FORMAT_VERSION, FjallStore};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the fixture's data dir (opening writes to it), and what the
/// script that wrote it recorded.
fn open_copy() -> (tempfile::TempDir, SharedStore, Value) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture().join("data"), &dir.path().join("data"));
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture().join("expected.json")).unwrap()).unwrap();
    let store = FjallStore::open(&dir.path().join("data"), Durability::Sync).unwrap();
    (dir, Arc::new(store), expected)
}

fn id(v: &Value) -> EventId {
    EventId::from_string(v.as_str().unwrap()).unwrap()
}

/// The queues as the config that wrote the fixture declared them.
async fn open_queues(store: &SharedStore) {
    let held = QueuePolicy {
        aging_ms: Some(3_600_000),
        ..QueuePolicy::default()
    };
    let fifo = QueuePolicy {
        ordered: true,
        hold_dead_letters: true,
        ..QueuePolicy::default()
    };
    store.open_queue("held", held).await.unwrap();
    store.open_queue("fifo", fifo).await.unwrap();
    store
        .open_queue("rejected", QueuePolicy::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_format_1_data_dir_opens_with_its_events_queues_dlqs_and_schemas() {
    let (_dir, store, expected) = open_copy();
    assert_eq!(expected["format"], 1);
    open_queues(&store).await;

    // Events, with their payloads and headers.
    let orders = expected["orders"].as_array().unwrap();
    for o in orders {
        let e = store.event(id(&o["id"])).await.unwrap().expect("stored");
        assert_eq!(e.topic, "orders");
        let body: Value = serde_json::from_slice(&e.payload).unwrap();
        assert_eq!(body["n"], o["n"]);
        assert!(
            e.meta
                .headers
                .iter()
                .any(|(k, v)| k == "x-account" && Some(v.as_str()) == o["account"].as_str()),
            "{:?}",
            e.meta.headers
        );
    }
    // Nothing is waiting to be routed: every event was routed before the stop.
    assert!(store.pending_routes(None, 10).await.unwrap().is_empty());

    // Queues: the paused one holds all eight of its entries.
    let now = now_ms();
    let held = store.queue_stats("held", now).unwrap();
    assert_eq!((held.depth, held.in_flight), (8, 0));
    // The upgrade counted each priority band (format 3).
    assert_eq!(held.depth_by_priority.iter().sum::<u64>(), 8, "{held:?}");
    assert!(store.is_paused("held").await.unwrap());
    assert!(!store.is_paused("fifo").await.unwrap());
    // FIFO: five of six left (one acknowledged); the leased one is in
    // flight until its hour-long lease ends, visible again after.
    let fifo = store.queue_stats("fifo", now).unwrap();
    assert_eq!(fifo.depth + fifo.in_flight, 5, "{fifo:?}");
    assert_eq!(fifo.depth_by_priority.iter().sum::<u64>(), fifo.depth);
    let acked = id(&expected["fifo"]["acked"]);
    let states = store.deliveries(acked).await.unwrap();
    let at_fifo = states.iter().find(|(d, _)| d == "fifo").unwrap();
    assert_eq!(at_fifo.1.status, DeliveryStatus::Delivered);
    assert_eq!(store.attempts(acked, "fifo").await.unwrap().len(), 1);

    // Dead letters: all six at the rejecting destination, one at the topic.
    assert_eq!(store.queue_stats("rejected", now).unwrap().depth, 0);
    let (dead, next) = store
        .dlq_page(DlqOwner::Destination("rejected"), None, ListOrder::Asc, 100)
        .await
        .unwrap();
    assert_eq!(dead.len(), 6);
    assert!(next.is_none());
    for (d, o) in dead.iter().zip(orders) {
        assert_eq!(d.event_id, id(&o["id"]));
        assert_eq!(u64::from(d.priority), o["priority"].as_u64().unwrap());
        assert!(d.error.contains("404"), "{}", d.error);
    }
    let (topic_dead, _) = store
        .dlq_page(DlqOwner::Topic("plugged"), None, ListOrder::Asc, 10)
        .await
        .unwrap();
    assert_eq!(topic_dead.len(), 1);
    assert_eq!(
        topic_dead[0].event_id,
        id(&expected["plugged"]["dead_lettered"])
    );

    // The idempotency key still answers with the id it was accepted as.
    let again = store
        .append(
            "orders",
            Some("fixture-key-1".into()),
            Duration::from_secs(100 * 365 * 86400),
            vec![NewEvent {
                meta: EventMeta::default(),
                payload: "{}".into(),
            }],
            Routing::Pending,
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        Appended::Duplicate {
            ids: vec![id(&orders[2]["id"])]
        }
    );

    // The registry: both versions, their ids, the subject's level.
    let reg = &expected["registry"];
    let snap = store.load_schemas().unwrap();
    let versions: Vec<(u32, u32)> = snap
        .versions
        .iter()
        .filter(|v| v.subject == reg["subject"] && !v.deleted)
        .map(|v| (v.version, v.schema_id))
        .collect();
    let ids: Vec<u32> = reg["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(versions, vec![(1, ids[0]), (2, ids[1])]);
    for (i, text) in ids.iter().zip(reg["schemas"].as_array().unwrap()) {
        let s = snap.schemas.iter().find(|s| s.id == *i).unwrap();
        assert_eq!(Some(s.schema.as_str()), text.as_str());
    }
    assert!(
        snap.subject_levels
            .iter()
            .any(|(s, l)| s == "orders-value" && l == "FULL"),
        "{:?}",
        snap.subject_levels
    );
}

#[tokio::test]
async fn the_paused_queue_of_the_fixture_drains_in_priority_order() {
    let (_dir, store, expected) = open_copy();
    open_queues(&store).await;
    // The held queue: the six orders, the plugin-routed event and the
    // validated one. Aging is an hour and they arrived within a second:
    // most urgent first, then acceptance order.
    let mut wanted: Vec<(u8, EventId)> = expected["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["priority"].as_u64().unwrap() as u8, id(&o["id"])))
        .collect();
    wanted.push((5, id(&expected["plugged"]["routed"])));
    wanted.push((5, id(&expected["validated"])));
    wanted.sort_by_key(|(p, i)| (std::cmp::Reverse(*p), *i));
    let taken = store.take("held", 100, Hold::InFlight).await.unwrap();
    let got: Vec<(u8, EventId)> = taken.iter().map(|e| (e.priority, e.event_id)).collect();
    assert_eq!(got, wanted);
}

#[tokio::test]
async fn a_format_1_data_dir_is_upgraded_in_place_once() {
    let (dir, store, _) = open_copy();
    open_queues(&store).await;
    let now = now_ms();
    let before: Vec<_> = ["held", "fifo", "rejected"]
        .iter()
        .map(|d| store.queue_stats(d, now).unwrap())
        .collect();
    drop(store);
    // The new version is recorded, so the next open reads the indexes and
    // counters the upgrade built instead of building them again.
    {
        let db = fjall::Database::builder(dir.path().join("data"))
            .open()
            .unwrap();
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let v = meta.get("format").unwrap().expect("recorded");
        assert_eq!(v.as_ref(), FORMAT_VERSION.to_be_bytes());
    }
    let store: SharedStore =
        Arc::new(FjallStore::open(&dir.path().join("data"), Durability::Sync).unwrap());
    open_queues(&store).await;
    let after: Vec<_> = ["held", "fifo", "rejected"]
        .iter()
        .map(|d| store.queue_stats(d, now).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(after[0].depth, 8);
}

#[tokio::test]
async fn a_data_dir_of_a_newer_store_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        meta.insert("format", (FORMAT_VERSION + 1).to_be_bytes())
            .unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let err = FjallStore::open(dir.path(), Durability::Sync)
        .err()
        .expect("refused");
    assert!(
        matches!(err, StoreError::UnsupportedFormat { found, supported, .. }
            if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("store format {}", FORMAT_VERSION + 1))
            && text.contains("at least as new"),
        "{text}"
    );
}

#[tokio::test]
async fn a_new_data_dir_records_the_current_format() {
    let dir = tempfile::tempdir().unwrap();
    drop(FjallStore::open(dir.path(), Durability::Sync).unwrap());
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let meta = db
        .keyspace("meta", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    let v = meta.get("format").unwrap().expect("recorded");
    assert_eq!(v.as_ref(), FORMAT_VERSION.to_be_bytes());
}
