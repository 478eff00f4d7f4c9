//! Switchyard plugin SDK: write a routing plugin in plain Rust.
//!
//! A plugin is a type implementing [`Plugin`]: `init` turns the plugin's
//! `config` table from the gateway's TOML into the plugin's state, and
//! `handle` decides one [`Event`] at a time, returning a [`Verdict`].
//! [`export!`] turns that type into a WebAssembly component implementing the
//! `switchyard:plugin@0.3.0` contract (see `schemas/wit/plugin.wit`).
//!
//! ```
//! use switchyard_sdk::{Config, Event, Plugin, Verdict};
//!
//! struct ByType;
//!
//! impl Plugin for ByType {
//!     fn init(_config: &Config) -> Result<Self, String> {
//!         Ok(ByType)
//!     }
//!     fn handle(&self, event: &Event) -> Result<Verdict, String> {
//!         Ok(match event.json_str("/type").as_deref() {
//!             Some("refund") => Verdict::route(["refunds"]).priority(7),
//!             _ => Verdict::keep(),
//!         })
//!     }
//! }
//! switchyard_sdk::export!(ByType);
//!
//! let event = Event::new("orders", br#"{"type":"refund"}"#.to_vec());
//! let verdict = ByType.handle(&event).unwrap();
//! assert_eq!(verdict.get_routes(), Some(&["refunds".to_string()][..]));
//! ```
//!
//! Everything here is plain Rust and compiles natively, so a plugin's logic
//! is unit-tested with `cargo test`; only the [`export!`] glue is Wasm-only.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::Duration;

mod json;

pub use serde;
pub use serde_json;
pub use serde_json::Value;

/// The contract version this SDK builds plugins for.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// A routing plugin. One instance serves many batches, one event at a time.
pub trait Plugin: Sized + 'static {
    /// Builds the plugin's state from its config. An error refuses the
    /// plugin: the gateway does not start, or a hot reload is refused.
    fn init(config: &Config) -> Result<Self, String>;

    /// Decides one event. An error fails this event only; the gateway applies
    /// the plugin's `on_error` policy to it.
    fn handle(&self, event: &Event<'_>) -> Result<Verdict, String>;
}

/// One event, as the previous plugins in the chain left it.
///
/// Inside the component, an event borrows its texts and payload from the
/// batch the host sent (nothing is copied per event); in native tests,
/// [`Event::new`] and the builders make one that owns them.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    /// The event's id (a ULID).
    pub id: Cow<'a, str>,
    /// The topic it was published to.
    pub topic: Cow<'a, str>,
    /// When the gateway accepted it, in ms since the Unix epoch.
    pub received_at_ms: u64,
    /// The payload's media type.
    pub content_type: Cow<'a, str>,
    /// The payload bytes.
    pub payload: Cow<'a, [u8]>,
    /// The sender's headers (names in lower case): see [`Event::header`].
    headers: Pairs<'a>,
    /// Notes set by earlier plugins in the chain: see [`Event::attribute`].
    attributes: Pairs<'a>,
    /// The payload parsed as JSON, on first use: most plugins read several
    /// fields and should not parse the payload once per field.
    json: OnceCell<Option<Value>>,
}

/// Name/value pairs: entries of the host's batch, or owned (built in tests).
#[derive(Clone)]
enum Pairs<'a> {
    Wire {
        data: &'a [u8],
        /// The event's entries of the batch's `fields`, 16 bytes each.
        fields: &'a [u8],
    },
    Owned(Vec<(String, String)>),
}

impl Default for Pairs<'_> {
    fn default() -> Self {
        Pairs::Owned(Vec::new())
    }
}

impl<'a> Pairs<'a> {
    fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + '_ {
        // One of the two slices is empty, so this is one iterator type
        // whichever variant holds the pairs.
        let (data, wire, owned): (&[u8], &[u8], &[(String, String)]) = match self {
            Pairs::Wire { data, fields } => (data, fields, &[]),
            Pairs::Owned(v) => (&[], &[], v),
        };
        // A pair whose ranges are bad (never from Switchyard's host) is skipped.
        wire.chunks_exact(wire::FIELD_RECORD)
            .filter_map(move |f| {
                let at = |i: usize| wire::u32_at(f, 4 * i);
                Some((
                    wire::text(data, at(0), at(1))?,
                    wire::text(data, at(2), at(3))?,
                ))
            })
            .chain(owned.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    fn owned(&mut self) -> &mut Vec<(String, String)> {
        if let Pairs::Wire { .. } = self {
            let copy = self
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            *self = Pairs::Owned(copy);
        }
        match self {
            Pairs::Owned(v) => v,
            Pairs::Wire { .. } => unreachable!("converted above"),
        }
    }
}

impl std::fmt::Debug for Pairs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Event<'static> {
    /// An event with a payload and a JSON content type: handy in tests.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            topic: Cow::Owned(topic.into()),
            payload: Cow::Owned(payload.into()),
            content_type: Cow::Borrowed("application/json"),
            ..Self::default()
        }
    }
}

impl<'a> Event<'a> {
    /// Builder: sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Cow::Owned(id.into());
        self
    }

    /// Builder: adds a header (the name is lower-cased).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers
            .owned()
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Builder: adds an attribute.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.owned().push((key.into(), value.into()));
        self
    }

    /// Builder: sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Cow::Owned(content_type.into());
        self
    }

    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header, in the order the sender sent them.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter()
    }

    /// The attribute set under `key` by an earlier plugin, if any.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Every attribute earlier plugins set.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter()
    }

    /// The payload as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// The payload parsed as JSON into a whole `serde_json::Value` tree
    /// (once, then cached); `None` if it is not JSON. To read a few fields,
    /// [`Event::json_str`] and [`Event::json_at`] are much cheaper.
    pub fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(&self.payload).ok())
            .as_ref()
    }

    /// The JSON value at an RFC 6901 pointer such as `/customer/tier`, from
    /// the whole parsed tree (see [`Event::json`]).
    pub fn json_pointer(&self, pointer: &str) -> Option<&Value> {
        self.json()?.pointer(pointer)
    }

    /// The value at a pointer, deserialized as `T` (`&str`, `u64`, `bool`,
    /// a `#[derive(Deserialize)]` struct, a `Value`...), without building
    /// the document: the payload is read up to the value and no further,
    /// with no allocation except what `T` needs (strings borrow from the
    /// payload). `None` if nothing is there, it is not a `T`, or the payload
    /// is not JSON up to it. Because the read stops at the value, the first
    /// of duplicated keys wins and damage after the value goes unnoticed;
    /// [`Event::json`] parses and checks the whole payload.
    ///
    /// ```
    /// # use switchyard_sdk::Event;
    /// let e = Event::new("t", br#"{"order":{"amount":1250,"currency":"EUR"}}"#.to_vec());
    /// assert_eq!(e.json_at::<u64>("/order/amount"), Some(1250));
    /// assert_eq!(e.json_at::<&str>("/order/currency"), Some("EUR"));
    /// ```
    pub fn json_at<'b, T: serde::Deserialize<'b>>(&'b self, pointer: &str) -> Option<T> {
        match self.json.get() {
            // Already parsed whole (the plugin called `json()`): use it.
            Some(tree) => T::deserialize(tree.as_ref()?.pointer(pointer)?).ok(),
            None => json::lookup(&self.payload, pointer),
        }
    }

    /// The value at a pointer as text: strings as they are (borrowed from
    /// the payload when they hold no escapes), numbers and booleans in their
    /// JSON spelling. `None` for objects, arrays, null and non-JSON
    /// payloads. Cheap: see [`Event::json_at`].
    pub fn json_str(&self, pointer: &str) -> Option<Cow<'_, str>> {
        match self.json.get() {
            Some(tree) => match tree.as_ref()?.pointer(pointer)? {
                Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
                _ => None,
            },
            None => json::lookup::<json::Text>(&self.payload, pointer)?.0,
        }
    }
}

/// What a plugin decides for one event. Unset fields keep their value, so
/// plugins compose in a chain: [`Verdict::keep`] changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    routes: Option<Vec<String>>,
    priority: Option<u8>,
    payload: Option<Vec<u8>>,
    headers: Option<Vec<(String, String)>>,
    content_type: Option<String>,
    delay_ms: Option<u64>,
    ordering_key: Option<String>,
    attributes: Option<Vec<(String, String)>>,
}

impl Verdict {
    /// Changes nothing.
    pub fn keep() -> Self {
        Self::default()
    }

    /// Sends the event to these destinations (replacing earlier routes).
    pub fn route<I, S>(destinations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::default().routes(destinations)
    }

    /// Drops the event: no destination gets it.
    pub fn drop_event() -> Self {
        Self {
            routes: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// Builder: sets the routes.
    pub fn routes<I, S>(mut self, destinations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.routes = Some(destinations.into_iter().map(Into::into).collect());
        self
    }

    /// Builder: sets the priority, 0-9, 9 most urgent (clamped to 9).
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority.min(9));
        self
    }

    /// Builder: replaces the payload.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = Some(payload.into());
        self
    }

    /// Builder: replaces the payload with this JSON value, serialised.
    pub fn json_payload(self, value: &Value) -> Self {
        self.payload(value.to_string())
    }

    /// Builder: replaces the whole header list.
    pub fn headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Builder: replaces the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Builder: delays the first delivery.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Builder: sets the ordering key (FIFO per key where asked for).
    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// Builder: sets an attribute for the plugins later in the chain.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes
            .get_or_insert_with(Vec::new)
            .push((key.into(), value.into()));
        self
    }

    /// The routes, if set.
    pub fn get_routes(&self) -> Option<&[String]> {
        self.routes.as_deref()
    }

    /// The priority, if set.
    pub fn get_priority(&self) -> Option<u8> {
        self.priority
    }

    /// The new payload, if set.
    pub fn get_payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    /// The new payload parsed as JSON, if set and JSON.
    pub fn get_json_payload(&self) -> Option<Value> {
        serde_json::from_slice(self.payload.as_deref()?).ok()
    }

    /// The new headers, if set.
    pub fn get_headers(&self) -> Option<&[(String, String)]> {
        self.headers.as_deref()
    }

    /// The new content type, if set.
    pub fn get_content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The delay in ms, if set.
    pub fn get_delay_ms(&self) -> Option<u64> {
        self.delay_ms
    }

    /// The ordering key, if set.
    pub fn get_ordering_key(&self) -> Option<&str> {
        self.ordering_key.as_deref()
    }

    /// The attributes set, if any.
    pub fn get_attributes(&self) -> Option<&[(String, String)]> {
        self.attributes.as_deref()
    }
}

/// The plugin's `config` table from the gateway's TOML; every value is a
/// string (numbers and booleans arrive in their TOML spelling).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    values: BTreeMap<String, String>,
}

impl Config {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `key`, or an error naming it.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("config key {key:?} is required"))
    }

    /// The value of `key` parsed as `T`, or `default` when unset.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| format!("config key {key:?}: {raw:?}: {e}")),
        }
    }

    /// A comma-separated list (`"a, b,c"`), empty items dropped.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Refuses keys outside `known`, so a typo in the TOML is an error at
    /// start rather than a setting silently ignored.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), String> {
        match self.values.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!(
                "unknown config key {k:?} (expected one of: {})",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for Config {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Logging into the gateway's log. Lines are tagged with the plugin's name
/// and rate-limited by the host. Natively (in tests) they go to stderr.
pub mod log {
    /// How loud a line is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Level {
        Trace,
        Debug,
        Info,
        Warn,
        Error,
    }

    /// Writes one line with key/value fields.
    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        #[cfg(target_arch = "wasm32")]
        {
            use crate::__private::bindings::switchyard::plugin::log as host;
            let level = match level {
                Level::Trace => host::Level::Trace,
                Level::Debug => host::Level::Debug,
                Level::Info => host::Level::Info,
                Level::Warn => host::Level::Warn,
                Level::Error => host::Level::Error,
            };
            let fields: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            host::log(level, message, &fields);
        }
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!("[{level:?}] {message} {fields:?}");
    }

    /// Writes one info line.
    pub fn info(message: &str) {
        log(Level::Info, message, &[]);
    }

    /// Writes one warning line.
    pub fn warn(message: &str) {
        log(Level::Warn, message, &[]);
    }
}

/// The contract's byte layouts (see `schemas/wit/plugin.wit`): the batch's
/// per-event index read in place, and the verdicts written into one buffer.
/// Plain Rust over byte slices, so both are tested natively.
#[doc(hidden)]
pub mod wire {
    use std::borrow::Cow;

    /// One event's record in the batch's `events`.
    pub const EVENT_RECORD: usize = 56;
    /// One header or attribute entry in the batch's `fields`.
    pub const FIELD_RECORD: usize = 16;

    /// The flags of an `ok` verdict, in the order its fields follow.
    pub const ROUTES: u8 = 1;
    pub const PRIORITY: u8 = 2;
    pub const PAYLOAD: u8 = 4;
    pub const HEADERS: u8 = 8;
    pub const CONTENT_TYPE: u8 = 16;
    pub const DELAY_MS: u8 = 32;
    pub const ORDERING_KEY: u8 = 64;
    pub const ATTRIBUTES: u8 = 128;

    /// The little-endian u32 at `at`; `at + 4` must be within `b` (records
    /// are cut to their full size before they are read).
    pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
        let mut x = [0; 4];
        x.copy_from_slice(&b[at..at + 4]);
        u32::from_le_bytes(x)
    }

    fn range(len: usize, offset: u32, count: u32) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(count).ok()?)?;
        (end <= len).then_some(start..end)
    }

    /// Text at a range of `data`; `None` if out of range or not UTF-8.
    pub fn text(data: &[u8], offset: u32, len: u32) -> Option<&str> {
        std::str::from_utf8(&data[range(data.len(), offset, len)?]).ok()
    }

    /// A batch as the host sends it: three byte lists, borrowed.
    #[derive(Debug, Clone, Copy)]
    pub struct Batch<'a> {
        pub data: &'a [u8],
        pub events: &'a [u8],
        pub fields: &'a [u8],
    }

    impl<'a> Batch<'a> {
        /// Events in the batch: one per record, a cut-off last record
        /// included (it fails, so the count of results still matches).
        pub fn len(&self) -> usize {
            self.events.len().div_ceil(EVENT_RECORD)
        }

        pub fn is_empty(&self) -> bool {
            self.events.is_empty()
        }

        /// The SDK's view of event `i`, borrowing from the batch. A range
        /// out of bounds or text that is not UTF-8 fails this event only.
        pub fn event(&self, i: usize) -> Result<crate::Event<'a>, String> {
            let bad = |what: &str| format!("the host sent a malformed {what} range");
            let rec = i
                .checked_mul(EVENT_RECORD)
                .and_then(|at| self.events.get(at..at.checked_add(EVENT_RECORD)?))
                .ok_or_else(|| format!("the host sent a cut-off record for event {i}"))?;
            let at = |word: usize| u32_at(rec, 8 + 4 * word);
            let data = self.data;
            let text = |w: usize, what: &str| {
                text(data, at(w), at(w + 1))
                    .map(Cow::Borrowed)
                    .ok_or_else(|| bad(what))
            };
            // Each pair's own ranges are checked when it is read: a pair
            // that is out of range or not UTF-8 is skipped then, so an event
            // whose headers are never looked at costs no pass over them.
            let fields = self.fields;
            let pairs = |w: usize, what: &str| {
                let entries = range(fields.len() / FIELD_RECORD, at(w), at(w + 1))
                    .ok_or_else(|| bad(what))?;
                let bytes = &fields[entries.start * FIELD_RECORD..entries.end * FIELD_RECORD];
                Ok::<_, String>(crate::Pairs::Wire {
                    data,
                    fields: bytes,
                })
            };
            let mut ms = [0; 8];
            ms.copy_from_slice(&rec[..8]);
            let payload = range(data.len(), at(6), at(7)).ok_or_else(|| bad("payload"))?;
            Ok(crate::Event {
                id: text(0, "id")?,
                topic: text(2, "topic")?,
                received_at_ms: u64::from_le_bytes(ms),
                content_type: text(4, "content-type")?,
                payload: Cow::Borrowed(&data[payload]),
                headers: pairs(8, "headers")?,
                attributes: pairs(10, "attributes")?,
                json: Default::default(),
            })
        }
    }

    /// Writes the verdict buffer for `results`, one per event in order.
    pub fn encode_verdicts<I>(results: I) -> Vec<u8>
    where
        I: ExactSizeIterator<Item = Result<crate::Verdict, String>>,
    {
        let mut out = Vec::with_capacity(4 + 2 * results.len());
        put_len(&mut out, results.len());
        for r in results {
            match r {
                Ok(v) => put_verdict(&mut out, &v),
                Err(message) => {
                    out.push(1);
                    put_bytes(&mut out, message.as_bytes());
                }
            }
        }
        out
    }

    fn put_len(out: &mut Vec<u8>, n: usize) {
        // Nothing in a wasm32 guest's memory is 4 GiB long; were it, the
        // host would refuse the buffer rather than misread it.
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }

    fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        put_len(out, b.len());
        out.extend_from_slice(b);
    }

    fn put_pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
        put_len(out, pairs.len());
        for (k, v) in pairs {
            put_bytes(out, k.as_bytes());
            put_bytes(out, v.as_bytes());
        }
    }

    fn put_verdict(out: &mut Vec<u8>, v: &crate::Verdict) {
        let flag = |set: bool, f: u8| if set { f } else { 0 };
        out.push(0);
        out.push(
            flag(v.routes.is_some(), ROUTES)
                | flag(v.priority.is_some(), PRIORITY)
                | flag(v.payload.is_some(), PAYLOAD)
                | flag(v.headers.is_some(), HEADERS)
                | flag(v.content_type.is_some(), CONTENT_TYPE)
                | flag(v.delay_ms.is_some(), DELAY_MS)
                | flag(v.ordering_key.is_some(), ORDERING_KEY)
                | flag(v.attributes.is_some(), ATTRIBUTES),
        );
        if let Some(routes) = &v.routes {
            put_len(out, routes.len());
            for r in routes {
                put_bytes(out, r.as_bytes());
            }
        }
        if let Some(p) = v.priority {
            out.push(p);
        }
        if let Some(p) = &v.payload {
            put_bytes(out, p);
        }
        if let Some(h) = &v.headers {
            put_pairs(out, h);
        }
        if let Some(c) = &v.content_type {
            put_bytes(out, c.as_bytes());
        }
        if let Some(d) = v.delay_ms {
            out.extend_from_slice(&d.to_le_bytes());
        }
        if let Some(k) = &v.ordering_key {
            put_bytes(out, k.as_bytes());
        }
        if let Some(a) = &v.attributes {
            put_pairs(out, a);
        }
    }

    /// The SDK's loop over one batch: each event through `handle`, an
    /// error failing that event only, the results into one buffer.
    pub fn handle_batch<P: crate::Plugin>(plugin: Option<&P>, batch: Batch<'_>) -> Vec<u8> {
        encode_verdicts((0..batch.len()).map(|i| {
            let p = plugin.ok_or_else(|| "plugin used before init".to_owned())?;
            p.handle(&batch.event(i)?)
        }))
    }
}

/// Glue used by [`export!`]; not part of the stable API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../schemas/wit",
            world: "switchyard:plugin/plugin@0.3.0",
            pub_export_macro: true,
            export_macro_name: "__switchyard_export_bindings",
            default_bindings_module: "switchyard_sdk::__private::bindings",
        });
    }

    pub use crate::wire::{Batch as WireBatch, handle_batch};

    /// Builds the config handed to `Plugin::init`.
    pub fn config_from_pairs(pairs: Vec<(String, String)>) -> crate::Config {
        pairs.into_iter().collect()
    }
}

/// Exports a [`Plugin`] type as the component's `handler`.
///
/// Natively this expands to nothing, so the same crate builds for
/// `cargo test`. For `wasm32-wasip2` it keeps one instance of the plugin per
/// component instance (a component is single-threaded).
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::bindings::exports::switchyard::plugin::handler as __wit;

            ::std::thread_local! {
                static __STATE: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct __SwitchyardExport;

            impl __wit::Guest for __SwitchyardExport {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let config = $crate::__private::config_from_pairs(config);
                    let plugin = <$plugin as $crate::Plugin>::init(&config)?;
                    __STATE.with(|s| *s.borrow_mut() = ::std::option::Option::Some(plugin));
                    ::std::result::Result::Ok(())
                }

                fn handle(batch: __wit::Batch) -> ::std::vec::Vec<u8> {
                    __STATE.with(|s| {
                        $crate::__private::handle_batch(
                            s.borrow().as_ref(),
                            $crate::__private::WireBatch {
                                data: &batch.data,
                                events: &batch.events,
                                fields: &batch.fields,
                            },
                        )
                    })
                }
            }

            $crate::__private::bindings::__switchyard_export_bindings!(
                __SwitchyardExport with_types_in $crate::__private::bindings
            );
        };
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn json_pointer_and_headers() {
        let e = Event::new("t", br#"{"a":{"b":3},"s":"x"}"#.to_vec()).with_header("X-Kind", "push");
        assert_eq!(e.json_str("/a/b").as_deref(), Some("3"));
        assert_eq!(e.json_str("/s").as_deref(), Some("x"));
        assert_eq!(e.header("x-kind"), Some("push"));
        assert!(e.json_pointer("/missing").is_none());
    }

    /// A 56-byte event record: received-at-ms, then six (offset, length)
    /// pairs: id, topic, content-type, payload, headers, attributes.
    fn record(ms: u64, words: [u32; 12]) -> Vec<u8> {
        let mut r = ms.to_le_bytes().to_vec();
        for w in words {
            r.extend_from_slice(&w.to_le_bytes());
        }
        r
    }

    fn entries(fields: &[[u32; 4]]) -> Vec<u8> {
        fields
            .iter()
            .flatten()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    // "01Hordersapplication/json{"a":1}x-kindpushtierpro"
    const DATA: &[u8] = b"01Hordersapplication/json{\"a\":1}x-kindpushtierpro";
    const GOOD: [u32; 12] = [0, 3, 3, 6, 9, 16, 25, 7, 0, 1, 1, 1];

    /// A batch as the host lays it out, read in place into borrowing events.
    #[test]
    fn wire_events_borrow_from_the_batch_and_bad_ranges_fail_one_event() {
        let fields = entries(&[[32, 6, 38, 4], [42, 4, 46, 3]]);
        let mut events = record(7, GOOD);
        // Event 1: its payload runs past the end of `data`.
        let mut past_end = GOOD;
        past_end[7] = 700;
        events.extend(record(0, past_end));
        // Event 2: an offset and length that overflow.
        let mut overflow = GOOD;
        overflow[0..2].copy_from_slice(&[u32::MAX, u32::MAX]);
        events.extend(record(0, overflow));
        // Event 3: headers past the end of `fields`.
        let mut no_such_fields = GOOD;
        no_such_fields[8..10].copy_from_slice(&[1, 5]);
        events.extend(record(0, no_such_fields));
        // Event 4: a record cut off after 20 bytes.
        events.extend(&record(0, GOOD)[..20]);
        let batch = wire::Batch {
            data: DATA,
            events: &events,
            fields: &fields,
        };
        assert_eq!(batch.len(), 5);
        let e = batch.event(0).unwrap();
        assert!(matches!(e.payload, Cow::Borrowed(_)));
        assert_eq!(
            (&*e.id, &*e.topic, &*e.content_type),
            ("01H", "orders", "application/json")
        );
        assert_eq!(e.received_at_ms, 7);
        assert_eq!(e.json_at::<u64>("/a"), Some(1));
        assert_eq!(e.header("X-Kind"), Some("push"));
        assert_eq!(e.headers().collect::<Vec<_>>(), [("x-kind", "push")]);
        assert_eq!(e.attribute("tier"), Some("pro"));
        // Builders on a borrowed event copy its pairs first.
        let e = e.with_header("x-more", "1");
        assert_eq!(e.headers().count(), 2);

        assert!(batch.event(1).unwrap_err().contains("payload"));
        assert!(batch.event(2).unwrap_err().contains("id"));
        assert!(batch.event(3).unwrap_err().contains("headers"));
        assert!(batch.event(4).unwrap_err().contains("cut-off"));
        assert!(batch.event(5).is_err());

        // Text that is not UTF-8 fails its event.
        let not_utf8 = wire::Batch {
            data: &[0xff, 0xfe],
            events: &record(0, [0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            fields: &[],
        };
        assert!(not_utf8.event(0).unwrap_err().contains("id"));

        // A pair out of range is skipped when read; the event still works.
        let odd_fields = entries(&[[32, 6, 500, 4], [42, 4, 46, 3]]);
        let mut two_headers = GOOD;
        two_headers[8..10].copy_from_slice(&[0, 2]);
        let events = record(0, two_headers);
        let e = wire::Batch {
            data: DATA,
            events: &events,
            fields: &odd_fields,
        }
        .event(0)
        .unwrap();
        assert_eq!(e.header("x-kind"), None);
        assert_eq!(e.header("tier"), Some("pro"));
    }

    /// The verdict buffer, byte for byte: the same vector is checked by the
    /// Python and TypeScript SDKs' tests, and the host's decoder reads it
    /// back (`plugin-host/src/tests.rs`).
    #[test]
    fn verdicts_encode_to_the_documented_bytes() {
        let buf = wire::encode_verdicts(
            vec![
                Ok(Verdict::route(["a", "bc"]).priority(7)),
                Err("boom".to_owned()),
                Ok(Verdict::keep()),
                Ok(Verdict::keep()
                    .payload(b"{}".to_vec())
                    .headers(vec![("h".into(), "v".into())])
                    .content_type("t")
                    .delay(Duration::from_millis(5))
                    .ordering_key("k")
                    .attribute("x", "y")),
            ]
            .into_iter(),
        );
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_VERDICTS);
    }

    pub(crate) const GOLDEN_VERDICTS: &str = "040000000003020000000100000061020000006263070104000000626f6f6d000000fc020000007b7d010000000100000068010000007601000000740500000000000000010000006b0100000001000000780100000079";

    struct Picky;

    impl Plugin for Picky {
        fn init(_: &Config) -> Result<Self, String> {
            Ok(Picky)
        }
        fn handle(&self, e: &Event) -> Result<Verdict, String> {
            match e.header("x-kind") {
                Some("push") => Ok(Verdict::route([e.topic.as_ref()])),
                _ => Err("no kind".to_owned()),
            }
        }
    }

    /// The loop: one result per event, in order; an error (the plugin's, or
    /// a bad range) fails its event only; before `init`, every event fails.
    #[test]
    fn the_loop_gives_each_event_its_own_result() {
        let fields = entries(&[[32, 6, 38, 4], [42, 4, 46, 3]]);
        let mut events = record(0, GOOD);
        let mut no_headers = GOOD;
        no_headers[8..10].copy_from_slice(&[0, 0]);
        events.extend(record(0, no_headers));
        let mut bad = GOOD;
        bad[7] = 700;
        events.extend(record(0, bad));
        let batch = wire::Batch {
            data: DATA,
            events: &events,
            fields: &fields,
        };
        let mut expected = vec![3, 0, 0, 0];
        expected.extend([0, wire::ROUTES, 1, 0, 0, 0, 6, 0, 0, 0]);
        expected.extend(b"orders");
        expected.extend([1, 7, 0, 0, 0]);
        expected.extend(b"no kind");
        let message = b"the host sent a malformed payload range";
        expected.extend([1, message.len() as u8, 0, 0, 0]);
        expected.extend(message);
        assert_eq!(wire::handle_batch(Some(&Picky), batch), expected);

        let before_init = wire::handle_batch::<Picky>(None, batch);
        assert_eq!(before_init[..5], [3, 0, 0, 0, 1]);
        assert!(String::from_utf8_lossy(&before_init).contains("plugin used before init"));
    }

    #[test]
    fn verdict_builder_sets_only_what_it_is_told() {
        let v = Verdict::route(["a"]).priority(12);
        assert_eq!(v.get_routes(), Some(&["a".to_string()][..]));
        assert_eq!(v.get_priority(), Some(9));
        assert_eq!(v.get_payload(), None);
        assert_eq!(Verdict::keep(), Verdict::default());
        assert_eq!(Verdict::drop_event().get_routes(), Some(&[][..]));
    }

    #[test]
    fn config_helpers() {
        let c = Config::from([("n", "3"), ("l", "a, b,,c")]);
        assert_eq!(c.parse_or("n", 0u8), Ok(3));
        assert_eq!(c.parse_or("m", 7u8), Ok(7));
        assert_eq!(c.list("l"), vec!["a", "b", "c"]);
        assert!(c.deny_unknown(&["n"]).is_err());
        assert!(c.require("zz").is_err());
    }
}
