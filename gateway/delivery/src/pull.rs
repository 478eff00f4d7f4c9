//! Pull consumers: a destination of kind `pull` is a durable queue that
//! consumers drain over HTTP, SQS-style.
//!
//! `receive` leases up to N due entries: each gets a receipt
//! (`<event id>.<nonce>`) and becomes invisible until the visibility timeout.
//! The lease is written to the store before the messages are handed out —
//! the entry's key moves to the lease's end with the nonce in its value — so
//! after a crash a leased message stays invisible until its timeout and then
//! comes back: never lost, never given to two consumers within one lease.
//! `ack` settles (delivered), `nack` makes visible again (optionally later),
//! `extend` lengthens the lease. A receipt whose lease has been superseded
//! (expired and re-received by someone else) is refused, per receipt. After
//! `max_receives` receives without an ack the message is dead-lettered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use switchyard_core::{Event, EventId, now_ms};
use switchyard_store::{
    AttemptRecord, Hold, LeaseCheck, QueueEntry, Settle, Settlement, StoreError,
};

use super::{Delivery, Destination};

/// One leased message.
#[derive(Debug, Clone)]
pub struct Received {
    pub receipt: String,
    /// How many times this message has been received, this one included.
    pub attempt: u32,
    pub event: Event,
    /// The body and headers to hand out (a plugin's rewrite, if any).
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
    /// The `receive` span's W3C context (or the event's stored one when
    /// tracing is off), so the consumer's work joins the event's trace.
    pub trace: Option<(String, Option<String>)>,
}

/// The answer for one receipt of an ack, nack or extend.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptResult {
    pub receipt: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The receipt of a lease: `<event id>.<nonce as 16 hex digits>`.
pub fn receipt(id: EventId, nonce: u64) -> String {
    format!("{id}.{nonce:016x}")
}

/// Reads a receipt back; `None` for anything [`receipt`] did not write.
/// Only the exact spelling counts: the ULID and hex parsers alone would also
/// take lowercase ids, short or signed nonces (`+1`), so one lease would
/// have many receipts.
pub fn parse_receipt(r: &str) -> Option<(EventId, u64)> {
    let (id, nonce) = r.split_once('.')?;
    let parsed = (
        EventId::from_string(id).ok()?,
        u64::from_str_radix(nonce, 16).ok()?,
    );
    (receipt(parsed.0, parsed.1) == r).then_some(parsed)
}

/// What a receipt resolves to right now.
enum Held {
    Current(QueueEntry),
    Stale(&'static str),
}

impl Delivery {
    /// Leases up to `max` due messages, waiting up to `wait` for the first.
    pub async fn receive(
        &self,
        d: &Destination,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a push between the look
            // and the wait still wakes us.
            let notified = d.wake.notified();
            let got = self.receive_now(d, max, visibility).await?;
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            let until = match self.store.next_due(d.name()) {
                Some(due) if due > 0 => {
                    let dt = Duration::from_millis(due.saturating_sub(now_ms()));
                    (tokio::time::Instant::now() + dt).min(deadline)
                }
                _ => deadline,
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn receive_now(
        &self,
        d: &Destination,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Received>, StoreError> {
        if d.is_paused() {
            return Ok(Vec::new());
        }
        let started = std::time::SystemTime::now();
        let now = now_ms();
        let until_ms = now + visibility.as_millis() as u64;
        // The leases are written before `take` returns.
        let taken = self
            .store
            .take(d.name(), max, Hold::Lease { until_ms })
            .await?;
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        // Over the receive budget (counting this receive): dead-letter
        // instead of handing out.
        let max_receives = d.config.max_receives;
        let (spent, fresh): (Vec<_>, Vec<_>) =
            taken.into_iter().partition(|e| e.attempt > max_receives);
        for e in spent {
            let receives = e.attempt - 1;
            let id = e.event_id;
            let error = format!("received {receives} times without an ack (max_receives)");
            let record = AttemptRecord {
                attempt: e.history_base + receives,
                at_ms: now,
                status: None,
                error: Some(format!("received {receives} times without an ack")),
                latency_ms: 0,
                response_excerpt: None,
                delay_before_ms: 0,
            };
            self.store
                .settle(vec![Settlement {
                    entry: e,
                    attempt: record,
                    outcome: Settle::DeadLetter {
                        error: error.clone(),
                    },
                }])
                .await?;
            if self.telemetry.tracing()
                && let Some(event) = self.store.event(id).await?
            {
                self.telemetry
                    .dead_letter_span(&event, d.name(), &error, receives);
            }
            tracing::warn!(event_id = %id, destination = %d.config.name,
                "Message dead-lettered after max_receives receives without an ack.");
        }
        let mut out = Vec::with_capacity(fresh.len());
        for leased in fresh {
            let id = leased.event_id;
            let Some(nonce) = leased.lease else {
                continue;
            };
            let Some(event) = self.store.event(id).await? else {
                // Gone (the data dir was edited): settle it away.
                self.dead_letter_unsent(leased, now, "event no longer stored".into())
                    .await?;
                continue;
            };
            let transformed = self.store.transformed(id).await?;
            let rewritten = transformed.as_ref().map(|t| t.plugin.clone());
            let (content_type, headers, body) = match transformed {
                Some(t) => (t.content_type, t.headers, t.payload),
                None => (
                    event.meta.content_type.clone(),
                    event.meta.headers.clone(),
                    event.payload.clone(),
                ),
            };
            // `format = "json" | "avro"`: convert as push does. A payload
            // that can't be converted is handed over as it is, with a warning.
            let (content_type, body) = match super::format::convert(
                &self.registry,
                d.config.format,
                &event.meta.attributes,
                &content_type,
                &body,
            ) {
                Ok(Some((ct, b))) => (ct, b),
                Ok(None) => (content_type, body),
                Err(reason) => {
                    tracing::warn!(event_id = %id, destination = %d.config.name, reason = %reason,
                        "Pull delivery: payload handed over unconverted.");
                    (content_type, body)
                }
            };
            if let Err(reason) = super::egress_check(
                &self.registry,
                &self.telemetry,
                d,
                &event.topic,
                rewritten.as_ref().map(Option::as_deref),
                &content_type,
                &body,
            ) {
                // Never handed over: dead-lettered as a push would be.
                tracing::warn!(event_id = %id, destination = %d.config.name, reason = %reason,
                    "Pull delivery dead-lettered: the payload breaks the destination's schema.");
                self.dead_letter_unsent(leased, now, reason).await?;
                continue;
            }
            let span = self
                .telemetry
                .receive_span(&event, d.name(), leased.attempt, started);
            let trace = span.carried(&event);
            span.end();
            out.push(Received {
                trace,
                receipt: receipt(id, nonce),
                attempt: leased.attempt,
                event,
                content_type,
                headers,
                body,
            });
        }
        d.counters
            .receives
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    /// The `ack`/`nack` span of a settled message, in its event's trace.
    /// Reads the event for its trace context, so only when tracing is on.
    /// Dead-letters a leased entry that was never handed out, with `error`
    /// as both its attempt's error and its reason.
    async fn dead_letter_unsent(
        &self,
        entry: QueueEntry,
        at_ms: u64,
        error: String,
    ) -> Result<(), StoreError> {
        let record = AttemptRecord {
            attempt: entry.history_base + entry.attempt,
            at_ms,
            status: None,
            error: Some(error.clone()),
            latency_ms: 0,
            response_excerpt: None,
            delay_before_ms: 0,
        };
        self.store
            .settle(vec![Settlement {
                entry,
                attempt: record,
                outcome: Settle::DeadLetter { error },
            }])
            .await
    }

    async fn settled_span(&self, d: &Destination, id: EventId, operation: &'static str) {
        if !self.telemetry.tracing() {
            return;
        }
        match self.store.event(id).await {
            Ok(Some(event)) => self.telemetry.settle_span(&event, d.name(), operation),
            Ok(None) => {}
            Err(e) => tracing::warn!(event_id = %id, error = %e,
                "Cannot read the event for its {operation} span."),
        }
    }

    /// Resolves a receipt against the live leases.
    async fn hold(&self, d: &Destination, receipt_text: &str) -> Held {
        let Some((id, nonce)) = parse_receipt(receipt_text) else {
            return Held::Stale("not a receipt");
        };
        match self.store.check_lease(d.name(), id, nonce).await {
            LeaseCheck::Current(e) => Held::Current(e),
            LeaseCheck::Superseded => {
                Held::Stale("stale receipt: the lease expired and the message was received again")
            }
            LeaseCheck::Visible => {
                Held::Stale("stale receipt: the lease expired and the message is visible again")
            }
            LeaseCheck::Unknown => Held::Stale(
                "unknown receipt: the message was already acknowledged, or never leased",
            ),
        }
    }

    /// Acknowledges messages: each is delivered and leaves the queue. The
    /// whole batch is settled in one write.
    pub async fn ack(
        &self,
        d: &Destination,
        receipts: &[String],
    ) -> Result<Vec<ReceiptResult>, StoreError> {
        let mut out = Vec::with_capacity(receipts.len());
        let mut settled: Vec<Settlement> = Vec::with_capacity(receipts.len());
        let now = now_ms();
        for r in receipts {
            let entry = match self.hold(d, r).await {
                Held::Current(e) if !settled.iter().any(|s| s.entry.event_id == e.event_id) => e,
                Held::Current(_) => {
                    out.push(refused(r, "the same receipt twice in one request"));
                    continue;
                }
                Held::Stale(why) => {
                    out.push(refused(r, why));
                    continue;
                }
            };
            let attempt = AttemptRecord {
                attempt: entry.history_base + entry.attempt,
                at_ms: now,
                status: None,
                error: None,
                latency_ms: 0,
                response_excerpt: Some("acknowledged by a pull consumer".to_owned()),
                delay_before_ms: 0,
            };
            settled.push(Settlement {
                entry,
                attempt,
                outcome: Settle::Delivered,
            });
            out.push(accepted(r));
        }
        if settled.is_empty() {
            return Ok(out);
        }
        let ids: Vec<EventId> = settled.iter().map(|s| s.entry.event_id).collect();
        self.store.settle(settled).await?;
        for id in &ids {
            self.settled_span(d, *id, "ack").await;
        }
        d.counters
            .acks
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    /// Makes leased messages visible again after `delay`.
    pub async fn nack(
        &self,
        d: &Destination,
        receipts: &[String],
        delay: Duration,
    ) -> Result<Vec<ReceiptResult>, StoreError> {
        let mut out = Vec::with_capacity(receipts.len());
        for r in receipts {
            let entry = match self.hold(d, r).await {
                Held::Current(e) => e,
                Held::Stale(why) => {
                    out.push(refused(r, why));
                    continue;
                }
            };
            let id = entry.event_id;
            let delay_ms = delay.as_millis() as u64;
            self.store
                .release(&[entry], now_ms() + delay_ms, delay_ms)
                .await?;
            d.counters.nacks.fetch_add(1, Ordering::Relaxed);
            self.settled_span(d, id, "nack").await;
            out.push(accepted(r));
        }
        Ok(out)
    }

    /// Lengthens leases: the messages stay invisible for `visibility` from now.
    pub async fn extend(
        &self,
        d: &Destination,
        receipts: &[String],
        visibility: Duration,
    ) -> Result<Vec<ReceiptResult>, StoreError> {
        let mut out = Vec::with_capacity(receipts.len());
        for r in receipts {
            let entry = match self.hold(d, r).await {
                Held::Current(e) => e,
                Held::Stale(why) => {
                    out.push(refused(r, why));
                    continue;
                }
            };
            let until = now_ms() + visibility.as_millis() as u64;
            self.store.extend(&entry, until).await?;
            out.push(accepted(r));
        }
        Ok(out)
    }

    /// Returns expired leases to the queue (the store already has them due
    /// at the lease's end) and counts them.
    pub(super) async fn expire_leases(self: Arc<Self>, d: Arc<Destination>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = d.stop.cancelled() => return,
            }
            let n = self.store.expire_leases(d.name(), now_ms());
            d.counters
                .lease_expiries
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

fn accepted(r: &str) -> ReceiptResult {
    ReceiptResult {
        receipt: r.to_owned(),
        ok: true,
        error: None,
    }
}

fn refused(r: &str, why: &str) -> ReceiptResult {
    ReceiptResult {
        receipt: r.to_owned(),
        ok: false,
        error: Some(why.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_roundtrip_and_reject_garbage() {
        let id = EventId::new();
        let r = receipt(id, 0xdead_beef);
        assert_eq!(parse_receipt(&r), Some((id, 0xdead_beef)));
        assert_eq!(parse_receipt("nope"), None);
        assert_eq!(parse_receipt(&format!("{id}.zz")), None);
    }

    #[test]
    fn receipts_are_read_only_as_written() {
        let id = EventId::new();
        let r = receipt(id, 1);
        assert_eq!(parse_receipt(&r), Some((id, 1)));
        // Other spellings of the same id and nonce are not receipts.
        assert_eq!(parse_receipt(&format!("{id}.1")), None);
        assert_eq!(parse_receipt(&format!("{id}.+000000000000001")), None);
        assert_eq!(parse_receipt(&format!("{id}.000000000000000A")), None);
        assert_eq!(parse_receipt(&r.to_ascii_lowercase()), None);
        assert_eq!(parse_receipt(&format!("{r}.")), None);
    }
}
