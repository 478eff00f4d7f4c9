//! Names of what the backend keeps in JetStream: streams, consumers and
//! subjects, all under one prefix so several deployments (or tests) share a
//! cluster without seeing each other.
//!
//! Topic and destination names may contain `.`, which splits subject tokens
//! and is not allowed in stream or consumer names: they are written with
//! `.` -> `~` (`~` is outside Switchyard's name rule, so it reverses).

use switchyard_core::EventId;

/// Names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// Subject prefix (lower case as configured).
    p: String,
    /// Stream-name prefix (upper case).
    upper: String,
}

pub(crate) fn token(name: &str) -> String {
    name.replace('.', "~")
}

pub(crate) fn untoken(token: &str) -> String {
    token.replace('~', ".")
}

/// A FIFO key as a subject token: its hash (keys may hold any bytes).
pub(crate) fn fifo_key(key: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(key.as_bytes())[..12])
}

/// The band subject's last token for priority `p`.
pub(crate) fn band(p: u8) -> String {
    format!("p{p}")
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Self {
            p: prefix.to_ascii_lowercase(),
            upper: prefix.to_ascii_uppercase(),
        }
    }

    // Streams.

    /// Events (limits retention): `<p>.ev.<topic>.<id>`, and topic-DLQ
    /// replays `<p>.rp.<topic>.<id>`.
    pub fn events(&self) -> String {
        format!("{}_EV", self.upper)
    }

    /// Queues and everything written with them (work-queue retention: only
    /// band subjects are consumed, the records are kept).
    pub fn queues(&self) -> String {
        format!("{}_Q", self.upper)
    }

    /// Shared state: idempotency keys, paused flags (one message a subject).
    pub fn state(&self) -> String {
        format!("{}_ST", self.upper)
    }

    /// The schema registry (one message a subject).
    pub fn registry(&self) -> String {
        format!("{}_REG", self.upper)
    }

    // Consumers.

    pub fn route_consumer(&self) -> &'static str {
        "route"
    }

    pub fn band_consumer(&self, dest: &str, p: u8) -> String {
        format!("q_{}_p{p}", token(dest))
    }

    /// The JetStream API subject (after `$JS.API.`) of `verb` (`INFO`,
    /// `PAUSE`, ...) on a band's consumer.
    pub fn band_api(&self, verb: &str, dest: &str, p: u8) -> String {
        format!(
            "CONSUMER.{verb}.{}.{}",
            self.queues(),
            self.band_consumer(dest, p)
        )
    }

    // Subjects.

    pub fn events_filter(&self) -> [String; 2] {
        [format!("{}.ev.>", self.p), format!("{}.rp.>", self.p)]
    }

    pub fn event(&self, topic: &str, id: EventId) -> String {
        format!("{}.ev.{}.{id}", self.p, token(topic))
    }

    pub fn event_any_topic(&self, id: EventId) -> String {
        format!("{}.ev.*.{id}", self.p)
    }

    pub fn events_of(&self, topic: Option<&str>) -> String {
        match topic {
            Some(t) => format!("{}.ev.{}.*", self.p, token(t)),
            None => format!("{}.ev.*.*", self.p),
        }
    }

    pub fn replay(&self, topic: &str, id: EventId) -> String {
        format!("{}.rp.{}.{id}", self.p, token(topic))
    }

    /// `(kind, topic, id)` of an event stream subject: kind `ev` or `rp`.
    pub fn parse_event<'a>(&self, subject: &'a str) -> Option<(&'a str, String, EventId)> {
        let rest = subject.strip_prefix(self.p.as_str())?.strip_prefix('.')?;
        let mut t = rest.split('.');
        let (kind, topic, id) = (t.next()?, t.next()?, t.next()?);
        Some((kind, untoken(topic), id.parse().ok()?))
    }

    pub fn queues_subjects(&self) -> Vec<String> {
        ["q", "ds", "att", "ls", "dlq", "xf"]
            .iter()
            .map(|k| format!("{}.{k}.>", self.p))
            .collect()
    }

    pub fn band_subject(&self, dest: &str, p: u8) -> String {
        format!("{}.q.{}.{}", self.p, token(dest), band(p))
    }

    /// Every band subject of `dest` (four tokens; schedules have five).
    pub fn bands_of(&self, dest: &str) -> String {
        format!("{}.q.{}.*", self.p, token(dest))
    }

    /// Everything queued for `dest`: bands and schedules.
    pub fn queued_of(&self, dest: &str) -> String {
        format!("{}.q.{}.>", self.p, token(dest))
    }

    /// A not-yet-due entry of band `p`: `<p>.q.<dest>.s<N>.<id>`.
    pub fn schedule(&self, dest: &str, p: u8, id: EventId) -> String {
        format!("{}.q.{}.s{p}.{id}", self.p, token(dest))
    }

    /// Every schedule of `dest` (five tokens; bands have four).
    pub fn schedules_of(&self, dest: &str) -> String {
        format!("{}.q.{}.*.*", self.p, token(dest))
    }

    /// A FIFO key's line at `dest`: every entry of that key waiting, in
    /// order, one subject each (`<p>.q.<dest>.f.<key>.p<N>.<id>`, seven
    /// tokens: no band consumer takes it). Only the line's first entry has
    /// a message in a band.
    pub fn line(&self, dest: &str, key: &str, priority: u8, id: EventId) -> String {
        format!(
            "{}.q.{}.f.{}.{}.{id}",
            self.p,
            token(dest),
            fifo_key(key),
            band(priority.min(9))
        )
    }

    pub fn line_of(&self, dest: &str, key: &str) -> String {
        format!("{}.q.{}.f.{}.*.*", self.p, token(dest), fifo_key(key))
    }

    /// The record of which entry heads the line of `key` at `dest`
    /// (six tokens: neither a line entry nor a schedule).
    pub fn line_key(&self, dest: &str, key: &str) -> String {
        format!("{}.q.{}.f.{}.k", self.p, token(dest), fifo_key(key))
    }

    /// Event `id`'s entry in whichever line of `dest` holds it.
    pub fn line_any(&self, dest: &str, id: EventId) -> String {
        format!("{}.q.{}.f.*.*.{id}", self.p, token(dest))
    }

    /// Every line of `dest`.
    pub fn lines_of(&self, dest: &str) -> String {
        format!("{}.q.{}.f.>", self.p, token(dest))
    }

    /// Whether `subject` is a line entry (not a band or a schedule).
    pub fn is_line(subject: &str) -> bool {
        subject.split('.').nth(3) == Some("f")
    }

    /// The key token and priority of a line subject.
    pub fn parse_line(subject: &str) -> Option<(&str, u8)> {
        let mut t = subject.split('.').skip(4);
        let key = t.next()?;
        let p = t.next()?.strip_prefix('p')?.parse().ok()?;
        Some((key, p))
    }

    pub fn dstate(&self, id: EventId, dest: &str) -> String {
        format!("{}.ds.{id}.{}", self.p, token(dest))
    }

    pub fn dstates_of(&self, id: EventId) -> String {
        format!("{}.ds.{id}.*", self.p)
    }

    pub fn attempt(&self, id: EventId, dest: &str, n: u32) -> String {
        format!("{}.att.{id}.{}.{n}", self.p, token(dest))
    }

    pub fn attempts_of(&self, id: EventId, dest: &str) -> String {
        format!("{}.att.{id}.{}.*", self.p, token(dest))
    }

    pub fn lease(&self, dest: &str, id: EventId) -> String {
        format!("{}.ls.{}.{id}", self.p, token(dest))
    }

    pub fn dlq(&self, owner: switchyard_store::DlqOwner<'_>, id: EventId) -> String {
        format!("{}.{id}", self.dlq_prefix(owner))
    }

    pub fn dlq_of(&self, owner: switchyard_store::DlqOwner<'_>) -> String {
        format!("{}.*", self.dlq_prefix(owner))
    }

    fn dlq_prefix(&self, owner: switchyard_store::DlqOwner<'_>) -> String {
        use switchyard_store::DlqOwner;
        match owner {
            DlqOwner::Destination(d) => format!("{}.dlq.d.{}", self.p, token(d)),
            DlqOwner::Topic(t) => format!("{}.dlq.t.{}", self.p, token(t)),
        }
    }

    pub fn transformed(&self, id: EventId) -> String {
        format!("{}.xf.{id}", self.p)
    }

    pub fn state_subjects(&self) -> String {
        format!("{}.st.>", self.p)
    }

    pub fn idempotency(&self, topic: &str, key: &str) -> String {
        use sha2::Digest;
        let h = sha2::Sha256::digest(key.as_bytes());
        format!(
            "{}.st.idem.{}.{}",
            self.p,
            token(topic),
            hex::encode(&h[..16])
        )
    }

    pub fn paused(&self, dest: &str) -> String {
        format!("{}.st.paused.{}", self.p, token(dest))
    }

    pub fn registry_subjects(&self) -> String {
        format!("{}.reg.>", self.p)
    }

    pub fn reg(&self, rest: &str) -> String {
        format!("{}.reg.{rest}", self.p)
    }

    /// The part of a registry subject after `<p>.reg.`.
    pub fn reg_key<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.strip_prefix(self.p.as_str())?.strip_prefix(".reg.")
    }

    /// The last token of a subject.
    pub fn last_token(subject: &str) -> &str {
        subject.rsplit('.').next().unwrap_or(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_round_trip_through_subjects() {
        let n = Names::new("sy");
        let id: EventId = ulid::Ulid::new();
        let s = n.event("billing.eu", id);
        assert_eq!(s, format!("sy.ev.billing~eu.{id}"));
        assert_eq!(n.parse_event(&s), Some(("ev", "billing.eu".into(), id)));
        assert_eq!(n.band_consumer("a.b", 3), "q_a~b_p3");
        assert_eq!(
            n.band_api("INFO", "a.b", 3),
            format!("CONSUMER.INFO.{}.q_a~b_p3", n.queues())
        );
        assert_eq!(n.events(), "SY_EV");
    }
}
