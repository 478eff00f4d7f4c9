//! Switchyard plugin SDK: write a routing plugin in plain Rust.
//!
//! A plugin is a type implementing [`Plugin`]: `init` turns the plugin's
//! `config` table from the gateway's TOML into the plugin's state, and
//! `handle` decides one [`Event`] at a time, returning a [`Verdict`].
//! [`export!`] turns that type into a WebAssembly component implementing the
//! `switchyard:plugin@0.2.0` contract (see `schemas/wit/plugin.wit`).
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
pub const CONTRACT_VERSION: &str = "0.2.0";

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

/// Name/value pairs: ranges of the host's batch, or owned (built in tests).
#[derive(Clone)]
enum Pairs<'a> {
    Wire {
        data: &'a [u8],
        fields: &'a [wire::Field],
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
        let (data, wire, owned): (&[u8], &[wire::Field], &[(String, String)]) = match self {
            Pairs::Wire { data, fields } => (data, fields, &[]),
            Pairs::Owned(v) => (&[], &[], v),
        };
        // A pair whose ranges are bad (never from Switchyard's host) is skipped.
        wire.iter()
            .filter_map(move |f| Some((wire::text(data, f.name)?, wire::text(data, f.value)?)))
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

/// The contract's batch layout (see `schemas/wit/plugin.wit`): texts and
/// payloads are ranges of one byte list, headers and attributes ranges of
/// one list of pairs. Inside the component these are the generated types;
/// natively, types of the same shape, so the decoding is tested natively.
#[doc(hidden)]
pub mod wire {
    use std::borrow::Cow;

    #[cfg(target_arch = "wasm32")]
    pub use crate::__private::bindings::switchyard::plugin::types::{Event, Field, Span};

    #[cfg(not(target_arch = "wasm32"))]
    mod native {
        #[derive(Debug, Clone, Copy)]
        pub struct Span {
            pub offset: u32,
            pub len: u32,
        }
        #[derive(Debug, Clone, Copy)]
        pub struct Field {
            pub name: Span,
            pub value: Span,
        }
        #[derive(Debug, Clone, Copy)]
        pub struct Event {
            pub id: Span,
            pub topic: Span,
            pub received_at_ms: u64,
            pub headers: Span,
            pub content_type: Span,
            pub payload: Span,
            pub attributes: Span,
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    pub use native::{Event, Field, Span};

    fn range<T>(items: &[T], s: Span) -> Option<&[T]> {
        let start = usize::try_from(s.offset).ok()?;
        let end = start.checked_add(usize::try_from(s.len).ok()?)?;
        items.get(start..end)
    }

    /// Text at a range of `data`; `None` if out of range or not UTF-8.
    pub fn text(data: &[u8], s: Span) -> Option<&str> {
        std::str::from_utf8(range(data, s)?).ok()
    }

    /// The SDK's view of one event of a batch, borrowing from it. A range
    /// out of bounds or text that is not UTF-8 fails this event only.
    pub fn event<'a>(
        data: &'a [u8],
        fields: &'a [Field],
        e: &Event,
    ) -> Result<crate::Event<'a>, String> {
        let bad = |what: &str| format!("the host sent a malformed {what} range");
        let text = |s: Span, what: &str| text(data, s).map(Cow::Borrowed).ok_or_else(|| bad(what));
        // Each pair's own ranges are checked when it is read: a pair that
        // is out of range or not UTF-8 is skipped then, so an event whose
        // headers are never looked at costs no pass over them.
        let pairs = |s: Span, what: &str| {
            let fields = range(fields, s).ok_or_else(|| bad(what))?;
            Ok::<_, String>(crate::Pairs::Wire { data, fields })
        };
        Ok(crate::Event {
            id: text(e.id, "id")?,
            topic: text(e.topic, "topic")?,
            received_at_ms: e.received_at_ms,
            content_type: text(e.content_type, "content-type")?,
            payload: Cow::Borrowed(range(data, e.payload).ok_or_else(|| bad("payload"))?),
            headers: pairs(e.headers, "headers")?,
            attributes: pairs(e.attributes, "attributes")?,
            json: Default::default(),
        })
    }
}

/// Glue used by [`export!`]; not part of the stable API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../schemas/wit",
            world: "switchyard:plugin/plugin@0.2.0",
            pub_export_macro: true,
            export_macro_name: "__switchyard_export_bindings",
            default_bindings_module: "switchyard_sdk::__private::bindings",
        });
    }

    #[cfg(target_arch = "wasm32")]
    use bindings::exports::switchyard::plugin::handler as wit;

    pub use crate::wire::event as event_from_wire;

    /// Converts the SDK's verdict into the host's.
    #[cfg(target_arch = "wasm32")]
    pub fn verdict_to_wit(v: crate::Verdict) -> wit::Verdict {
        wit::Verdict {
            routes: v.routes,
            priority: v.priority,
            payload: v.payload,
            headers: v.headers,
            content_type: v.content_type,
            delay_ms: v.delay_ms,
            ordering_key: v.ordering_key,
            attributes: v.attributes,
        }
    }

    /// Builds the config handed to `Plugin::init`.
    pub fn config_from_pairs(pairs: Vec<(String, String)>) -> crate::Config {
        pairs.into_iter().collect()
    }

    /// Turns a panic payload into a message (the host sees a trap anyway;
    /// this is for the log line before it).
    pub fn not_initialised() -> String {
        "plugin used before init".to_owned()
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

                fn handle(
                    batch: __wit::Batch,
                ) -> ::std::vec::Vec<::std::result::Result<__wit::Verdict, ::std::string::String>>
                {
                    __STATE.with(|s| {
                        let state = s.borrow();
                        batch
                            .events
                            .iter()
                            .map(|e| match state.as_ref() {
                                ::std::option::Option::Some(p) => {
                                    let event = $crate::__private::event_from_wire(
                                        &batch.data,
                                        &batch.fields,
                                        e,
                                    )?;
                                    <$plugin as $crate::Plugin>::handle(p, &event)
                                        .map($crate::__private::verdict_to_wit)
                                }
                                ::std::option::Option::None => {
                                    ::std::result::Result::Err($crate::__private::not_initialised())
                                }
                            })
                            .collect()
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

    /// A batch as the host lays it out, decoded into borrowing events.
    #[test]
    fn wire_events_borrow_from_the_batch_and_bad_ranges_fail_one_event() {
        use wire::{Field, Span};
        let sp = |offset, len| Span { offset, len };
        // "01Hordersapplication/json{"a":1}x-kindpushtierpro"
        let data = b"01Hordersapplication/json{\"a\":1}x-kindpushtierpro";
        let fields = [
            Field {
                name: sp(32, 6),
                value: sp(38, 4),
            },
            Field {
                name: sp(42, 4),
                value: sp(46, 3),
            },
        ];
        let good = wire::Event {
            id: sp(0, 3),
            topic: sp(3, 6),
            received_at_ms: 7,
            headers: sp(0, 1),
            content_type: sp(9, 16),
            payload: sp(25, 7),
            attributes: sp(1, 1),
        };
        let e = wire::event(data, &fields, &good).unwrap();
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

        let past_end = wire::Event {
            payload: sp(25, 700),
            ..good
        };
        assert!(
            wire::event(data, &fields, &past_end)
                .unwrap_err()
                .contains("payload")
        );
        let overflow = wire::Event {
            id: sp(u32::MAX, u32::MAX),
            ..good
        };
        assert!(wire::event(data, &fields, &overflow).is_err());
        let no_such_fields = wire::Event {
            headers: sp(1, 5),
            ..good
        };
        assert!(
            wire::event(data, &fields, &no_such_fields)
                .unwrap_err()
                .contains("headers")
        );
        let not_utf8 = [0xff, 0xfe];
        let bad_text = wire::Event {
            id: sp(0, 2),
            ..good
        };
        assert!(
            wire::event(
                &not_utf8,
                &[],
                &wire::Event {
                    headers: sp(0, 0),
                    attributes: sp(0, 0),
                    ..bad_text
                }
            )
            .is_err()
        );
        // A pair out of range is skipped when read; the event still works.
        let odd_fields = [
            Field {
                name: sp(32, 6),
                value: sp(500, 4),
            },
            fields[1],
        ];
        let e = wire::event(
            data,
            &odd_fields,
            &wire::Event {
                headers: sp(0, 2),
                ..good
            },
        )
        .unwrap();
        assert_eq!(e.header("x-kind"), None);
        assert_eq!(e.header("tier"), Some("pro"));
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
