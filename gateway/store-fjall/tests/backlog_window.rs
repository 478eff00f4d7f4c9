//! A queue larger than its window, on real fjall: what is in memory is a
//! few entries per band, the rest is read from disk as the window drains,
//! and nothing about the order or the numbers changes, across restarts.
//! (Windows of 4 entries a band, so a few hundred entries are a backlog.)
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::{EventId, EventMeta, NewEvent, now_ms};
use switchyard_store::{
    Appended, AttemptRecord, DlqOwner, Hold, QueueEntry, QueuePolicy, Routed, Routing, Settle,
    Settlement, SharedStore,
};
use switchyard_store_fjall::{Durability, FjallStore, WindowSize};

const TINY: WindowSize = WindowSize {
    high: 4,
    low: 2,
    chunk: 2,
};

fn open(dir: &Path) -> SharedStore {
    Arc::new(FjallStore::open_with(dir, Durability::Buffered, TINY).unwrap())
}

/// Appends `n` events and routes each to `dest` with the priority, due
/// offset and FIFO key that `shape(i)` gives; returns the ids in order.
async fn fill(
    store: &SharedStore,
    dest: &str,
    n: usize,
    shape: impl Fn(usize) -> (u8, u64, Option<String>),
) -> Vec<EventId> {
    let events = (0..n)
        .map(|i| NewEvent {
            meta: EventMeta::default(),
            payload: format!("{{\"i\":{i}}}").into(),
        })
        .collect();
    let Appended::New { ids, .. } = store
        .append("t", None, Duration::ZERO, events, Routing::Pending)
        .await
        .unwrap()
    else {
        panic!("appended")
    };
    let now = now_ms();
    let routed = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (priority, delay, key) = shape(i);
            Routed {
                event_id: *id,
                entries: vec![QueueEntry {
                    event_id: *id,
                    destination: dest.into(),
                    priority,
                    due_ms: now + delay,
                    attempt: 0,
                    history_base: 0,
                    delay_ms: delay,
                    enqueued_at_ms: now,
                    ordering_key: key,
                    lease: None,
                }],
                transformed: None,
                verdicts: Vec::new(),
                topic_dead_letter: None,
            }
        })
        .collect();
    store.route(routed).await.unwrap();
    ids
}

fn attempt(n: u32) -> AttemptRecord {
    AttemptRecord {
        attempt: n,
        at_ms: now_ms(),
        status: Some(200),
        error: None,
        latency_ms: 1,
        response_excerpt: None,
        delay_before_ms: 0,
    }
}

async fn deliver(store: &SharedStore, e: QueueEntry) {
    store
        .settle(vec![Settlement {
            entry: e,
            attempt: attempt(1),
            outcome: Settle::Delivered,
        }])
        .await
        .unwrap();
}

/// Takes and delivers everything due, one at a time; the order taken.
async fn drain(store: &SharedStore, dest: &str) -> Vec<(u8, EventId)> {
    let mut out = Vec::new();
    while let Some(e) = store.take(dest, 1, Hold::InFlight).await.unwrap().pop() {
        out.push((e.priority, e.event_id));
        deliver(store, e).await;
    }
    out
}

#[tokio::test]
async fn a_backlog_larger_than_the_window_drains_in_priority_order_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let store = open(dir.path());
        store.open_queue("d", QueuePolicy::default()).await.unwrap();
        let ids = fill(&store, "d", 300, |i| (((i * 7) % 10) as u8, 0, None)).await;
        let s = store.queue_stats("d", now_ms()).unwrap();
        assert_eq!((s.depth, s.in_flight, s.delayed), (300, 0, 0));
        ids
    };
    // Restart: the queue is opened from disk, a few entries per band.
    let store = open(dir.path());
    store.open_queue("d", QueuePolicy::default()).await.unwrap();
    let s = store.queue_stats("d", now_ms()).unwrap();
    assert_eq!(s.depth, 300, "exact depth with most of the queue on disk");
    assert!(s.oldest_enqueued_ms.is_some());
    let mut want: Vec<(u8, EventId)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (((i * 7) % 10) as u8, *id))
        .collect();
    // Most urgent first; within a priority, due time then id.
    want.sort_by_key(|(p, id)| (std::cmp::Reverse(*p), *id));
    assert_eq!(drain(&store, "d").await, want);
    let s = store.queue_stats("d", now_ms()).unwrap();
    assert_eq!((s.depth, s.oldest_enqueued_ms), (0, None));
}

#[tokio::test]
async fn an_urgent_entry_behind_the_window_boundary_still_goes_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.open_queue("d", QueuePolicy::default()).await.unwrap();
    // 100 normal entries: far more than the window holds.
    fill(&store, "d", 100, |_| (5, 0, None)).await;
    // One urgent entry arrives after them.
    let urgent = fill(&store, "d", 1, |_| (9, 0, None)).await[0];
    let first = store.take("d", 1, Hold::InFlight).await.unwrap();
    assert_eq!(first[0].event_id, urgent);
    // Aging: an old low-priority backlog overtakes fresh urgent entries.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let aged = QueuePolicy {
        aging_ms: Some(1),
        ..QueuePolicy::default()
    };
    store.open_queue("a", aged).await.unwrap();
    let old = fill(&store, "a", 50, |_| (0, 0, None)).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    // 30 ms later, priority 9 ranks 9 ms earlier: still behind the old ones.
    fill(&store, "a", 50, |_| (9, 0, None)).await;
    let taken = store.take("a", 50, Hold::InFlight).await.unwrap();
    let got: Vec<EventId> = taken.iter().map(|e| e.event_id).collect();
    assert_eq!(got, old);
}

#[tokio::test]
async fn delayed_entries_and_retries_are_counted_exactly_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.open_queue("d", QueuePolicy::default()).await.unwrap();
    // 40 due now, 60 due in ten minutes (beyond the window and the second).
    fill(&store, "d", 100, |i| {
        (5, if i < 40 { 0 } else { 600_000 }, None)
    })
    .await;
    let s = store.queue_stats("d", now_ms()).unwrap();
    assert_eq!((s.depth, s.delayed), (100, 60));
    // A retry moves one due entry to later: one more delayed.
    let e = store.take("d", 1, Hold::InFlight).await.unwrap().remove(0);
    let s = store.queue_stats("d", now_ms()).unwrap();
    assert_eq!((s.depth, s.in_flight, s.delayed), (99, 1, 60));
    let next = QueueEntry {
        due_ms: now_ms() + 300_000,
        attempt: 1,
        ..e.clone()
    };
    store
        .settle(vec![Settlement {
            entry: e,
            attempt: attempt(1),
            outcome: Settle::Retry { next },
        }])
        .await
        .unwrap();
    let s = store.queue_stats("d", now_ms()).unwrap();
    assert_eq!((s.depth, s.in_flight, s.delayed), (100, 0, 61));
    // The same after a restart.
    drop(store);
    let store = open(dir.path());
    store.open_queue("d", QueuePolicy::default()).await.unwrap();
    let s = store.queue_stats("d", now_ms()).unwrap();
    assert_eq!((s.depth, s.delayed), (100, 61));
    assert_eq!(drain(&store, "d").await.len(), 39);
}

#[tokio::test]
async fn fifo_keys_whose_heads_are_on_disk_keep_their_order_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = QueuePolicy {
        ordered: true,
        ..QueuePolicy::default()
    };
    let key = |i: usize| Some(["a", "b", "c"][i % 3].to_owned());
    let ids = {
        let store = open(dir.path());
        store.open_queue("f", fifo).await.unwrap();
        let ids = fill(&store, "f", 90, |i| (((i * 3) % 10) as u8, 0, key(i))).await;
        // One key's head goes in flight and is retried later: its key is
        // blocked, the others move.
        let e = store.take("f", 1, Hold::InFlight).await.unwrap().remove(0);
        let next = QueueEntry {
            due_ms: now_ms() + 600_000,
            attempt: 1,
            ..e.clone()
        };
        store
            .settle(vec![Settlement {
                entry: e,
                attempt: attempt(1),
                outcome: Settle::Retry { next },
            }])
            .await
            .unwrap();
        let s = store.queue_stats("f", now_ms()).unwrap();
        assert_eq!(s.blocked_keys, 1, "the retried head's key waits");
        ids
    };
    let store = open(dir.path());
    store.open_queue("f", fifo).await.unwrap();
    let s = store.queue_stats("f", now_ms()).unwrap();
    assert_eq!((s.depth, s.delayed, s.blocked_keys), (90, 1, 1));
    // The two free keys drain, each in id order; the retried key's events
    // stay behind its head.
    let mut taken: Vec<EventId> = Vec::new();
    loop {
        let got = store.take("f", 3, Hold::InFlight).await.unwrap();
        if got.is_empty() {
            break;
        }
        for e in got {
            taken.push(e.event_id);
            deliver(&store, e).await;
        }
    }
    assert_eq!(taken.len(), 60);
    let blocked = ids
        .iter()
        .enumerate()
        .find(|(_, id)| !taken.contains(id))
        .map(|(i, _)| i % 3)
        .unwrap();
    for k in 0..3 {
        let of_key: Vec<EventId> = taken
            .iter()
            .copied()
            .filter(|id| ids.iter().position(|x| x == id).unwrap() % 3 == k)
            .collect();
        let mut sorted = of_key.clone();
        sorted.sort();
        assert_eq!(of_key, sorted, "key {k} in id order");
        assert_eq!(of_key.is_empty(), k == blocked);
    }
    let s = store.queue_stats("f", now_ms()).unwrap();
    assert_eq!((s.depth, s.blocked_keys), (30, 1));
}

#[tokio::test]
async fn leases_and_dead_letters_survive_a_restart_with_the_queue_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (leased, dead) = {
        let store = open(dir.path());
        store.open_queue("p", QueuePolicy::default()).await.unwrap();
        fill(&store, "p", 50, |_| (5, 0, None)).await;
        let until = now_ms() + 600_000;
        let leased = store
            .take("p", 3, Hold::Lease { until_ms: until })
            .await
            .unwrap();
        let dead = store.take("p", 1, Hold::InFlight).await.unwrap().remove(0);
        store
            .settle(vec![Settlement {
                entry: dead.clone(),
                attempt: attempt(1),
                outcome: Settle::DeadLetter { error: "no".into() },
            }])
            .await
            .unwrap();
        (leased, dead)
    };
    let store = open(dir.path());
    store.open_queue("p", QueuePolicy::default()).await.unwrap();
    let s = store.queue_stats("p", now_ms()).unwrap();
    assert_eq!((s.depth, s.in_flight, s.delayed), (46, 3, 0));
    for l in &leased {
        assert_eq!(
            store.check_lease("p", l.event_id, l.lease.unwrap()).await,
            switchyard_store::LeaseCheck::Current(l.clone())
        );
    }
    assert_eq!(
        store.dlq_depth(DlqOwner::Destination("p")).await.unwrap(),
        1
    );
    assert!(!store.contains("p", dead.event_id).await);
    let rest = drain(&store, "p").await;
    assert_eq!(rest.len(), 46);
    assert!(
        rest.iter()
            .all(|(_, id)| leased.iter().all(|l| l.event_id != *id))
    );
}

/// The depth of each priority, as `queue_stats` gives it.
fn by_priority(store: &SharedStore, dest: &str) -> [u64; 10] {
    let s = store.queue_stats(dest, now_ms()).unwrap();
    assert_eq!(
        s.depth_by_priority.iter().sum::<u64>(),
        s.depth,
        "the bands add up to the depth"
    );
    s.depth_by_priority
}

#[tokio::test]
async fn depth_by_priority_stays_exact_across_take_settle_retry_lease_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.open_queue("d", QueuePolicy::default()).await.unwrap();
    // 30 at priority 9, 50 at 5, 20 at 0: far more than the window holds.
    fill(&store, "d", 100, |i| match i {
        0..30 => (9, 0, None),
        30..80 => (5, 0, None),
        _ => (0, 0, None),
    })
    .await;
    let mut want = [0u64; 10];
    (want[9], want[5], want[0]) = (30, 50, 20);
    assert_eq!(by_priority(&store, "d"), want);

    // In flight leaves its band's depth; a delivery takes it out for good.
    let taken = store.take("d", 3, Hold::InFlight).await.unwrap();
    assert!(taken.iter().all(|e| e.priority == 9));
    want[9] = 27;
    assert_eq!(by_priority(&store, "d"), want);
    let mut taken = taken.into_iter();
    deliver(&store, taken.next().unwrap()).await;
    assert_eq!(by_priority(&store, "d"), want);

    // A retry puts it back in its band (later, so it counts as delayed too).
    let e = taken.next().unwrap();
    let next = QueueEntry {
        due_ms: now_ms() + 600_000,
        attempt: 1,
        ..e.clone()
    };
    store
        .settle(vec![Settlement {
            entry: e,
            attempt: attempt(1),
            outcome: Settle::Retry { next },
        }])
        .await
        .unwrap();
    want[9] = 28;
    assert_eq!(by_priority(&store, "d"), want);

    // A dead letter leaves the queue.
    let e = taken.next().unwrap();
    store
        .settle(vec![Settlement {
            entry: e,
            attempt: attempt(1),
            outcome: Settle::DeadLetter {
                error: "test".into(),
            },
        }])
        .await
        .unwrap();
    assert_eq!(by_priority(&store, "d"), want);

    // A lease (written) holds its entry out of the depth across a restart;
    // an entry in flight for a push is simply pending again.
    let leased = store
        .take(
            "d",
            2,
            Hold::Lease {
                until_ms: now_ms() + 600_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(leased.len(), 2);
    store.take("d", 1, Hold::InFlight).await.unwrap();
    want[9] = 25;
    assert_eq!(by_priority(&store, "d"), want);
    drop(store);
    let store = open(dir.path());
    store.open_queue("d", QueuePolicy::default()).await.unwrap();
    want[9] = 26;
    assert_eq!(by_priority(&store, "d"), want, "after a restart");

    // Released back, the leases count again; then everything drains.
    store.release(&leased, now_ms(), 0).await.unwrap();
    want[9] = 28;
    assert_eq!(by_priority(&store, "d"), want);
    let drained = drain(&store, "d").await;
    assert_eq!(drained.len(), 98 - 1, "all but the retry, due later");
    want = [0; 10];
    want[9] = 1;
    assert_eq!(by_priority(&store, "d"), want);
}
