//! The storage interface: everything the gateway keeps, as traits that a
//! backend implements. The embedded fjall backend is `switchyard-store-fjall`;
//! a clustered backend implements the same traits, and nothing above the
//! store (router, delivery, HTTP) changes.
//!
//! - [`EventLog`]: appending events (durable or error, deduplicated on an
//!   idempotency key), reading them back, and routing: enqueueing an event's
//!   entries and acknowledging its pending-route mark in one atomic write,
//!   so no accepted event is ever stranded between "stored" and "queued".
//! - [`Queues`]: each destination's queue in its order ([`order`]: priority
//!   bands, aging, due times, per-key FIFO), taking entries in flight or
//!   under a lease, and settling each attempt with its consequence
//!   (delivered, a later retry, the DLQ) atomically.
//! - [`DeadLetters`], [`History`]: the DLQs, delivery states and attempts.
//! - [`Maintenance`]: retention, idempotency expiry, flushing, sizes, metrics.
//! - [`SchemaStore`]: the schema registry's tables.
//! - [`transfer`]: reading a store out and writing it into another
//!   backend (`switchyard migrate`).
//!
//! [`Store`] is all of them; each part of the gateway holds only the traits
//! it uses (the registry, for one, sees a `dyn SchemaStore`).
//!
//! What the traits do not promise, because a cluster cannot give it:
//! transactions across operations, a global sequence (ids are ULIDs minted
//! by the backend), editing an entry in place. A backend may do more
//! internally (the fjall one keeps exact depths and ordered scans).

pub mod order;
mod records;
mod schemas;
pub mod transfer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchyard_core::{Event, EventId, NewEvent};
use tokio::sync::Notify;

pub use order::{Lease, Policy as QueuePolicy};
pub use records::{
    AttemptRecord, DeliveryState, DeliveryStatus, DlqEntry, MAX_VERDICTS, PluginVerdict,
    QueueEntry, Transformed, VerdictKind,
};
pub use schemas::{RegistrySnapshot, RegistryWrite, SchemaRecord, SchemaStore, VersionRecord};

/// Failures of the store. Backend errors are carried as their message and
/// source, never as the backend's own types.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("write failed: {0}")]
    WriteFailed(String),
    #[error("corrupt record in {keyspace}: {message}")]
    Corrupt {
        keyspace: &'static str,
        message: String,
    },
    #[error("the store's writer has stopped")]
    WriterGone,
    /// The data was written by a newer store format than this build reads.
    #[error(
        "{dir}: the data was written in store format {found}, and this build of switchyard reads formats up to {supported}; run a switchyard at least as new as the one that wrote it"
    )]
    UnsupportedFormat {
        dir: String,
        found: u32,
        supported: u32,
    },
    /// Another process holds the data dir.
    #[error(
        "another switchyard process{} is using {dir}: stop it, or give this one another data dir (--data-dir or server.data_dir)",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { dir: String, pid: Option<u32> },
    /// An operation named a queue that was never opened.
    #[error("no queue is open for destination {0:?}")]
    UnknownQueue(String),
    /// A conditional write lost to another writer (a clustered backend's
    /// compare-and-set): re-read and decide again.
    #[error("conflicting write: {0}")]
    Conflict(String),
    /// The store cannot take writes or answer now (a clustered backend
    /// without a quorum or a leader); the caller may retry later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// Whether appended events wait for the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The topic has routes or plugins: the events are marked pending
    /// routing, and the router decides where they go.
    Pending,
    /// The topic routes nowhere: the events are stored, and no routing
    /// (a mark written, read back, decided and removed) is spent on them.
    Nowhere,
}

/// What `append` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Written (durably, per the configured durability) under these ids.
    New {
        ids: Vec<EventId>,
        received_at_ms: u64,
    },
    /// The idempotency key was seen within its window: nothing was written,
    /// and these are the ids it was first accepted as.
    Duplicate { ids: Vec<EventId> },
}

/// How an event's routing came out, to be written in one atomic batch.
#[derive(Debug, Clone)]
pub struct Routed {
    pub event_id: EventId,
    /// One entry per chosen destination. Destinations that already have a
    /// delivery state for this event are skipped: routing is idempotent, so a
    /// crash between this write and the next cannot double-queue.
    pub entries: Vec<QueueEntry>,
    /// The body and headers to deliver instead of the original.
    pub transformed: Option<Transformed>,
    /// What each plugin of the chain decided (empty without plugins):
    /// stored beside the rewrite, replacing an earlier routing's.
    pub verdicts: Vec<PluginVerdict>,
    /// The plugin chain failed and its policy says dead-letter: the event goes
    /// to the topic's DLQ with this error instead of being queued.
    pub topic_dead_letter: Option<(String, DlqEntry)>,
}

/// What follows an attempt.
#[derive(Debug, Clone)]
pub enum Settle {
    Delivered,
    /// Back in the queue as `next` (a new due time, attempt count bumped).
    Retry {
        next: QueueEntry,
    },
    /// Into the destination's DLQ. With a FIFO queue whose policy holds dead
    /// letters, its key stays held until the dead letter is replayed or purged.
    DeadLetter {
        error: String,
    },
}

/// One taken entry's attempt and its consequence.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// The entry as [`Queues::take`] (or [`Queues::extend`]) handed it out.
    pub entry: QueueEntry,
    pub attempt: AttemptRecord,
    pub outcome: Settle,
}

/// How [`Queues::take`] holds what it hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// In flight in this process (a push attempt): nothing is written, and
    /// after a crash the entry is simply due again.
    InFlight,
    /// A pull consumer's lease until `until_ms`, written durably before
    /// `take` returns: the entry stays invisible across a restart and comes
    /// back when the lease ends. Entries come back leased: `attempt` bumped,
    /// `due_ms` the lease's end, `lease` its nonce.
    Lease { until_ms: u64 },
}

/// What a pull receipt resolves to now.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseCheck {
    /// The lease is live: here is the entry as leased.
    Current(QueueEntry),
    /// The lease expired and the message was received again since.
    Superseded,
    /// The lease expired and the message is visible again.
    Visible,
    /// Not leased here: acknowledged already, or never leased.
    Unknown,
}

/// A queue's levels, as the admin API and `/metrics` show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending entries (visible and delayed; in flight not included).
    pub depth: u64,
    pub in_flight: u64,
    /// Pending entries not yet due (backing off, delayed).
    pub delayed: u64,
    /// Enqueue time of the longest-waiting pending entry.
    pub oldest_enqueued_ms: Option<u64>,
    /// FIFO keys that cannot move: their head is in flight, backing off, or
    /// held by a dead letter.
    pub blocked_keys: u64,
    /// `depth` split by priority (index 0 to 9), so an operator sees whether
    /// urgent work or bulk is backing up. Sums to `depth`.
    pub depth_by_priority: [u64; 10],
}

/// Which dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqOwner<'a> {
    /// A destination's: deliveries that failed for good.
    Destination(&'a str),
    /// A topic's: events whose plugin chain failed (`on_error = "dead-letter"`).
    Topic(&'a str),
}

impl DlqOwner<'_> {
    pub fn name(&self) -> &str {
        match self {
            DlqOwner::Destination(n) | DlqOwner::Topic(n) => n,
        }
    }
}

/// Which way a list runs through ids (acceptance order). A backend walks
/// its index backwards for `Desc`, so "newest first" costs what "oldest
/// first" does: no scan to the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// Oldest first: the cursor continues after the last id.
    #[default]
    Asc,
    /// Newest first: the cursor continues before the last id.
    Desc,
}

/// Which events `list_events` returns.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub topic: Option<String>,
    /// Events with a delivery state at this destination.
    pub destination: Option<String>,
    /// Events with a delivery (at `destination`, if given) in this state;
    /// `InFlight` is what the live queues say.
    pub state: Option<DeliveryStatus>,
    /// Accepted at or after (epoch ms).
    pub since_ms: u64,
    /// Accepted at or before (epoch ms).
    pub until_ms: u64,
    /// Continue past this id (after it for `Asc`, before it for `Desc`).
    pub cursor: Option<EventId>,
    pub order: ListOrder,
    pub limit: usize,
    /// Give up after looking at this many events (the answer then carries a
    /// cursor to go on from), so one request cannot scan a whole store.
    pub max_scanned: usize,
}

/// Events, the topic log and routing.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Makes events durable, all or none. `Ok` means on disk (per the
    /// configured durability). A key seen within `window` returns the ids it
    /// was first accepted as, and nothing is written.
    async fn append(
        &self,
        topic: &str,
        idempotency_key: Option<String>,
        window: Duration,
        events: Vec<NewEvent>,
        routing: Routing,
    ) -> Result<Appended, StoreError>;

    /// Reads one event.
    async fn event(&self, id: EventId) -> Result<Option<Event>, StoreError>;

    /// A plugin's rewrite of an event, if one was stored.
    async fn transformed(&self, id: EventId) -> Result<Option<Transformed>, StoreError>;

    /// What each plugin decided for an event at its last routing, in chain
    /// order (empty when no plugin ran or nothing was recorded).
    async fn verdicts(&self, id: EventId) -> Result<Vec<PluginVerdict>, StoreError>;

    /// Whether [`EventLog::pending_routes`] waits for new events itself (a
    /// cluster backend's long poll, which also sees other gateways'
    /// events): the router then calls it again at once instead of waiting
    /// for its hand-off to ring.
    fn pending_routes_wait(&self) -> bool {
        false
    }

    /// Up to `max` events waiting to be routed, oldest first, strictly after
    /// `after` (the router's low-water mark). A clustered backend hands each
    /// event to one caller (its claim ends with [`EventLog::route`]) and
    /// may ignore `after`.
    async fn pending_routes(
        &self,
        after: Option<EventId>,
        max: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Writes the routing of a batch in one atomic write: queue entries (and
    /// their delivery states), rewrites, topic dead letters, and the removal
    /// of the pending-route marks. The entries go into their queues, whose
    /// wakers ring.
    async fn route(&self, routed: Vec<Routed>) -> Result<(), StoreError>;

    /// Events within the query's time range in id (acceptance) order after
    /// its cursor, and the cursor to continue from.
    async fn list_events(
        &self,
        query: &EventQuery,
    ) -> Result<(Vec<Event>, Option<EventId>), StoreError>;

    /// Moves events from a topic's DLQ back to routing: the plugin chain runs
    /// again. They are behind the router's low-water mark: the caller tells
    /// the router to look from the front (`Handoff::replayed`).
    async fn replay_topic_dead_letters(
        &self,
        topic: &str,
        ids: &[EventId],
    ) -> Result<(), StoreError>;
}

/// Destination queues.
#[async_trait]
pub trait Queues: Send + Sync {
    /// Opens a destination's queue with its order, restoring its entries,
    /// the leases that still hold, and the FIFO keys its dead letters hold.
    /// Called once per configured destination at start.
    async fn open_queue(&self, destination: &str, policy: QueuePolicy) -> Result<(), StoreError>;

    /// Destinations that have entries in the store but no open queue (they
    /// were removed from the config): kept untouched until they return.
    async fn orphaned_queues(&self) -> Result<Vec<String>, StoreError>;

    /// Rung when an entry of `destination` may have become takeable: new
    /// entries, a FIFO key freed, a lease returned, a dead letter purged.
    fn waker(&self, destination: &str) -> Result<Arc<Notify>, StoreError>;

    /// Takes up to `max` entries due now, in queue order, held as `hold`
    /// says until settled, released or (leases) expired.
    async fn take(
        &self,
        destination: &str,
        max: usize,
        hold: Hold,
    ) -> Result<Vec<QueueEntry>, StoreError>;

    /// When the earliest entry falls due (epoch ms; 0 if one is due now),
    /// or `None` with nothing scheduled: how long a dispatcher may sleep.
    fn next_due(&self, destination: &str) -> Option<u64>;

    /// Settles taken entries, all in one atomic write: each attempt's
    /// record, delivery state and consequence. Then the queues move on.
    async fn settle(&self, settled: Vec<Settlement>) -> Result<(), StoreError>;

    /// Gives taken entries back without an attempt (a pull consumer's nack,
    /// or a push the dispatcher cannot make), due again at `due_ms` after a
    /// delay of `delay_ms`.
    async fn release(
        &self,
        entries: &[QueueEntry],
        due_ms: u64,
        delay_ms: u64,
    ) -> Result<(), StoreError>;

    /// Moves a lease's end to `until_ms`; the entry as now leased.
    async fn extend(&self, entry: &QueueEntry, until_ms: u64) -> Result<QueueEntry, StoreError>;

    /// What the lease of event `id` with `nonce` is now (on a cluster, as
    /// every gateway sees it).
    async fn check_lease(&self, destination: &str, id: EventId, nonce: u64) -> LeaseCheck;

    /// Returns leases that ended by `now_ms` to the queue; how many.
    fn expire_leases(&self, destination: &str, now_ms: u64) -> usize;

    /// Puts entries (back) in their queues with a fresh budget: redelivery
    /// and DLQ replay (`from_dlq` removes their dead letters in the same
    /// write). Events already pending or in flight at a destination are
    /// skipped; returns how many were queued.
    async fn requeue(&self, entries: Vec<QueueEntry>, from_dlq: bool) -> Result<usize, StoreError>;

    /// Whether event `id` is pending or in flight at `destination`.
    async fn contains(&self, destination: &str, id: EventId) -> bool;

    /// The levels of one queue at `now_ms`, as known without a round trip
    /// (a clustered backend's may trail by a moment).
    fn queue_stats(&self, destination: &str, now_ms: u64) -> Result<QueueStats, StoreError>;

    /// The levels of one queue read now: what the admin API shows. A
    /// backend whose `queue_stats` trails (a cluster's) reads them again.
    async fn queue_stats_now(
        &self,
        destination: &str,
        now_ms: u64,
    ) -> Result<QueueStats, StoreError> {
        self.queue_stats(destination, now_ms)
    }

    /// Pending entries across every open queue.
    fn backlog(&self) -> u64;

    /// The persisted paused flag of a destination.
    async fn is_paused(&self, destination: &str) -> Result<bool, StoreError>;

    /// Persists a destination's paused flag, so a pause survives a restart
    /// (and, on a cluster, holds on every gateway).
    async fn set_paused(&self, destination: &str, paused: bool) -> Result<(), StoreError>;

    // Operator cancellation (kept together: `cancel` and `purge_queue`).

    /// Cancels event `id`'s delivery to `destination`: a pending entry (or
    /// a pull lease) leaves the queue now, with its delivery state
    /// `cancelled` and a record in its attempt history saying `reason`; a
    /// push attempt in flight is cancelled when it ends, unless it
    /// delivered. Counters stay exact.
    async fn cancel(
        &self,
        destination: &str,
        id: EventId,
        reason: &str,
    ) -> Result<Cancelled, StoreError>;

    /// Cancels every delivery queued for `destination`, as [`Queues::cancel`]
    /// does one: what was removed now, and how many push attempts in flight
    /// are cancelled when they end.
    async fn purge_queue(&self, destination: &str, reason: &str) -> Result<Purged, StoreError>;
}

/// How [`Queues::cancel`] came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// Out of the queue, its state `cancelled`.
    Removed,
    /// A push attempt is running: cancelled when it ends (unless it
    /// delivered).
    AtAttemptEnd,
    /// Nothing pending there: never routed there, delivered, dead-lettered
    /// or cancelled already.
    NotPending,
}

/// What [`Queues::purge_queue`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Entries removed from the queue now.
    pub removed: u64,
    /// Push attempts in flight, cancelled when they end.
    pub in_flight: u64,
}

/// Dead-letter queues.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// A page of a DLQ in event-id order (`Asc`: oldest event first, after
    /// `cursor`; `Desc`: newest first, before it), and the cursor to continue
    /// from.
    async fn dlq_page(
        &self,
        owner: DlqOwner<'_>,
        cursor: Option<EventId>,
        order: ListOrder,
        limit: usize,
    ) -> Result<(Vec<DlqEntry>, Option<EventId>), StoreError>;

    async fn dlq_entry(
        &self,
        owner: DlqOwner<'_>,
        id: EventId,
    ) -> Result<Option<DlqEntry>, StoreError>;

    /// Entries in a DLQ.
    async fn dlq_depth(&self, owner: DlqOwner<'_>) -> Result<u64, StoreError>;

    /// Removes dead letters (a purge). A FIFO key a removed dead letter held
    /// moves on.
    async fn dlq_remove(&self, owner: DlqOwner<'_>, ids: &[EventId]) -> Result<(), StoreError>;
}

/// Delivery states and attempt history.
#[async_trait]
pub trait History: Send + Sync {
    /// Delivery states of one event, by destination; `InFlight` where a
    /// live queue holds it in flight.
    async fn deliveries(&self, id: EventId) -> Result<Vec<(String, DeliveryState)>, StoreError>;

    /// One delivery state, as stored.
    async fn delivery_state(
        &self,
        id: EventId,
        destination: &str,
    ) -> Result<Option<DeliveryState>, StoreError>;

    /// The attempts at one destination, oldest first.
    async fn attempts(
        &self,
        id: EventId,
        destination: &str,
    ) -> Result<Vec<AttemptRecord>, StoreError>;
}

/// Housekeeping.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Removes idempotency keys created before `older_than_ms`, at most
    /// `max` per call; how many.
    async fn expire_idempotency(&self, older_than_ms: u64, max: usize)
    -> Result<usize, StoreError>;

    /// Removes events accepted before `cutoff_ms` whose every delivery is
    /// finished, with their history and dead letters. Looks at most `max`
    /// events after `after`; returns how many it removed and the new
    /// low-water mark (the first event it had to keep).
    async fn sweep_retention(
        &self,
        cutoff_ms: u64,
        after: Option<EventId>,
        max: usize,
    ) -> Result<(usize, Option<EventId>), StoreError>;

    /// Makes everything written so far durable (at shutdown). Blocks.
    fn flush(&self) -> Result<(), StoreError>;

    /// Bytes the store takes on disk (this node's share).
    fn disk_space(&self) -> u64;

    /// Registers the backend's own metrics (group commits, say) in the
    /// gateway's registry.
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}

    /// Whether other gateways write this store too (a cluster): state this
    /// gateway caches, such as paused flags, is then read again now and
    /// then, since a change made elsewhere rings no bell here.
    fn shared(&self) -> bool {
        false
    }
}

/// The whole store: what a backend implements.
pub trait Store: EventLog + Queues + DeadLetters + History + Maintenance + SchemaStore {}

impl<T: EventLog + Queues + DeadLetters + History + Maintenance + SchemaStore> Store for T {}

/// A store shared by the parts of a running gateway.
pub type SharedStore = Arc<dyn Store>;
