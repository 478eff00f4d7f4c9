//! Moving a store's whole state into another backend (`switchyard
//! migrate`): what one backend reads out ([`Export`]) in an order it can
//! continue from, and what another writes in ([`Import`]) so that running
//! it again, after an interruption or to be sure, changes nothing.
//!
//! The state travels in three parts, written in this order:
//!
//! 1. Events ([`EventExport`]), in id order, each with everything kept
//!    about it: whether it still waits for the router, a plugin's rewrite
//!    and verdicts, and at each destination its finished delivery state,
//!    attempts and dead letter. An event is written whole or not at all.
//! 2. Queue entries ([`QueuedExport`]), destination by destination in
//!    queue order, each with its pending delivery state: an entry and its
//!    state are written together, only where the target has no state for
//!    that delivery yet (so one is never queued twice).
//! 3. Idempotency keys ([`KeyExport`]) that are still inside their window.
//!
//! Paused flags go through [`crate::Queues::set_paused`] and the registry
//! through [`crate::SchemaStore`], which carry schema ids as they are.

use async_trait::async_trait;
use switchyard_core::{Event, EventId};

use crate::{
    AttemptRecord, DeliveryState, DlqEntry, PluginVerdict, QueueEntry, StoreError, Transformed,
};

/// One event and what is kept about it, as it travels.
#[derive(Debug, Clone)]
pub struct EventExport {
    pub event: Event,
    /// Not routed yet: the target's routers route it.
    pub pending_route: bool,
    pub transformed: Option<Transformed>,
    pub verdicts: Vec<PluginVerdict>,
    /// Every destination with a delivery state for it, by name.
    pub deliveries: Vec<DeliveryExport>,
    /// In its topic's DLQ (its plugin chain failed).
    pub topic_dead_letter: Option<DlqEntry>,
}

/// One event's delivery to one destination.
#[derive(Debug, Clone)]
pub struct DeliveryExport {
    pub destination: String,
    /// As stored. A pending one travels again with its queue entry
    /// ([`QueuedExport`]), and is written then.
    pub state: DeliveryState,
    /// Oldest first.
    pub attempts: Vec<AttemptRecord>,
    pub dead_letter: Option<DlqEntry>,
}

/// A queued entry (pending, backing off, or under a pull lease) with its
/// delivery state.
#[derive(Debug, Clone)]
pub struct QueuedExport {
    /// A leased entry travels without its lease: the receipt belongs to
    /// the old store, and the entry is visible again when the lease would
    /// have ended (`due_ms`).
    pub entry: QueueEntry,
    pub state: DeliveryState,
}

/// An idempotency key and the events it was accepted as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExport {
    pub topic: String,
    pub key: String,
    pub ids: Vec<EventId>,
    pub received_at_ms: u64,
}

/// What one [`Import`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Written now.
    pub written: u64,
    /// Found in the target already (an earlier run wrote it, or a gateway
    /// there moved it on since): left as it is.
    pub present: u64,
}

impl std::ops::AddAssign for Imported {
    fn add_assign(&mut self, o: Self) {
        self.written += o.written;
        self.present += o.present;
    }
}

/// A store read out whole. Each call continues after a cursor the caller
/// keeps, so a long export can stop and resume.
pub trait Export: Send + Sync {
    /// Up to `max` events after `after`, in id order.
    fn export_events(
        &self,
        after: Option<EventId>,
        max: usize,
    ) -> Result<Vec<EventExport>, StoreError>;

    /// Destinations with entries queued, by name.
    fn export_queue_names(&self) -> Result<Vec<String>, StoreError>;

    /// Up to `max` of `destination`'s queued entries after `after` (an
    /// entry this call returned before), in queue order.
    fn export_queue(
        &self,
        destination: &str,
        after: Option<&QueueEntry>,
        max: usize,
    ) -> Result<Vec<QueuedExport>, StoreError>;

    /// Destinations paused, by name.
    fn export_paused(&self) -> Result<Vec<String>, StoreError>;

    /// Up to `max` idempotency keys after `after` (topic, key), in that
    /// order.
    fn export_keys(
        &self,
        after: Option<(&str, &str)>,
        max: usize,
    ) -> Result<Vec<KeyExport>, StoreError>;
}

/// A store written into from an [`Export`]. Every call is idempotent: what
/// the target holds already is counted [`Imported::present`] and kept.
#[async_trait]
pub trait Import: Send + Sync {
    /// Writes events, each whole or not at all, only where the target does
    /// not hold it. Pending delivery states are left to
    /// [`Import::import_queued`].
    async fn import_events(&self, events: Vec<EventExport>) -> Result<Imported, StoreError>;

    /// Queues entries with their delivery states, only where the target
    /// holds no state for that delivery. Their queues must be open.
    async fn import_queued(&self, entries: Vec<QueuedExport>) -> Result<Imported, StoreError>;

    /// Writes idempotency keys, each kept for `ttl` (what is left of its
    /// window); a key the target holds already keeps its events.
    async fn import_keys(
        &self,
        keys: Vec<(KeyExport, std::time::Duration)>,
    ) -> Result<Imported, StoreError>;
}
