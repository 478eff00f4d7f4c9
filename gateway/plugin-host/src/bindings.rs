//! The one module with `bindgen!`: host-side types and calls for both
//! contract versions the host speaks, `switchyard:plugin@0.3.0`
//! (`schemas/wit/plugin.wit`) and `@0.2.0` (`schemas/wit/v0.2.0/`, so
//! plugins built for it keep loading).
//!
//! Everything else in the gateway uses the plain types of `lib.rs`
//! ([`PluginEvent`] in, [`Verdict`] out): which version a component speaks
//! is found once at load ([`Contract`]), and from then on [`Pre`] and
//! [`Bindings`] lay the batch out and read the verdicts back in that
//! version's form. Generated names stay in this module so a contract change
//! touches one place.

use bytes::Bytes;
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::engine::HostState;
use super::{PluginEvent, Verdict};

/// Contract 0.2.0: the index as WIT records, verdicts as a list of results.
mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../schemas/wit/v0.2.0",
        world: "switchyard:plugin/plugin@0.2.0",
        // `init` and `handle` are called async, on the caller's task,
        // yielding at epoch ticks (see `engine::Instance`); the log import
        // stays sync.
        exports: { default: async },
    });
}

/// Contract 0.3.0: the index as packed bytes, verdicts in one buffer.
mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../../schemas/wit",
        world: "switchyard:plugin/plugin@0.3.0",
        exports: { default: async },
    });
}

use v0_2::exports::switchyard::plugin::handler::{Batch as Batch2, Verdict as Verdict2};
use v0_2::switchyard::plugin::types::{Event as Event2, Field as Field2, Span as Span2};
use v0_3::switchyard::plugin::types::Batch as Batch3;

/// The newest contract version this host speaks (what the SDKs build).
pub const CONTRACT_VERSION: &str = "0.3.0";

/// The interface name without its version, to recognise other versions.
pub const HANDLER_INTERFACE: &str = "switchyard:plugin/handler";

/// A contract version the host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    V0_2,
    V0_3,
}

impl Contract {
    /// Newest first: a component that exported both would get the newest.
    pub const ALL: [Contract; 2] = [Contract::V0_3, Contract::V0_2];

    /// The package version, e.g. `0.3.0`.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_2 => "0.2.0",
            Contract::V0_3 => "0.3.0",
        }
    }

    /// The export a plugin of this version has, name and version.
    pub fn export(self) -> &'static str {
        match self {
            Contract::V0_2 => "switchyard:plugin/handler@0.2.0",
            Contract::V0_3 => "switchyard:plugin/handler@0.3.0",
        }
    }

    /// The versions spoken, for messages: `0.3.0 and 0.2.0` (`joiner` "and").
    pub fn spoken(joiner: &str) -> String {
        Contract::ALL
            .map(Contract::version)
            .join(&format!(" {joiner} "))
    }
}

/// A log level, whichever version's `log` import the line came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Links both versions' imports (`log`; `types` has no functions), so a
/// component of either version instantiates from one linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    v0_3::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl v0_2::switchyard::plugin::types::Host for HostState {}
impl v0_3::switchyard::plugin::types::Host for HostState {}

impl v0_2::switchyard::plugin::log::Host for HostState {
    fn log(
        &mut self,
        level: v0_2::switchyard::plugin::log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) {
        use v0_2::switchyard::plugin::log::Level as L;
        let level = match level {
            L::Trace => Level::Trace,
            L::Debug => Level::Debug,
            L::Info => Level::Info,
            L::Warn => Level::Warn,
            L::Error => Level::Error,
        };
        self.log_line(level, &message, &fields);
    }
}

impl v0_3::switchyard::plugin::log::Host for HostState {
    fn log(
        &mut self,
        level: v0_3::switchyard::plugin::log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) {
        use v0_3::switchyard::plugin::log::Level as L;
        let level = match level {
            L::Trace => Level::Trace,
            L::Debug => Level::Debug,
            L::Info => Level::Info,
            L::Warn => Level::Warn,
            L::Error => Level::Error,
        };
        self.log_line(level, &message, &fields);
    }
}

/// A linked component, ready to instantiate, of the version it exports.
pub enum Pre {
    V0_2(v0_2::PluginPre<HostState>),
    V0_3(v0_3::PluginPre<HostState>),
}

impl Pre {
    /// Checks that the component's export has the shape of `contract`.
    pub fn new(contract: Contract, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::V0_2 => Pre::V0_2(v0_2::PluginPre::new(pre)?),
            Contract::V0_3 => Pre::V0_3(v0_3::PluginPre::new(pre)?),
        })
    }

    pub async fn instantiate_async(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V0_2(p) => Bindings::V0_2(p.instantiate_async(store).await?),
            Pre::V0_3(p) => Bindings::V0_3(p.instantiate_async(store).await?),
        })
    }
}

/// An instantiated component's exports.
pub enum Bindings {
    V0_2(v0_2::Plugin),
    V0_3(v0_3::Plugin),
}

/// What one `handle` call gave: `Err` on the outside is a trap (the store
/// must be dropped), `Err` inside an answer that breaks the contract as a
/// whole (wrong count, a buffer that cannot be read): every event fails.
pub type HandleResult = wasmtime::Result<Result<Vec<Result<Verdict, String>>, String>>;

impl Bindings {
    pub async fn call_init(
        &self,
        store: &mut Store<HostState>,
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Bindings::V0_2(p) => p.switchyard_plugin_handler().call_init(store, config).await,
            Bindings::V0_3(p) => p.switchyard_plugin_handler().call_init(store, config).await,
        }
    }

    /// Lays `events` out in this version's form, calls `handle`, and reads
    /// back one result per event.
    pub async fn call_handle(
        &self,
        store: &mut Store<HostState>,
        events: &[&PluginEvent],
    ) -> HandleResult {
        let n = events.len();
        match self {
            Bindings::V0_2(p) => {
                let batch = encode_batch_v0_2(events);
                let out = p
                    .switchyard_plugin_handler()
                    .call_handle(store, &batch)
                    .await?;
                if out.len() != n {
                    return Ok(Err(wrong_count(out.len(), n)));
                }
                Ok(Ok(out
                    .into_iter()
                    .map(|r| r.map(verdict_from_v0_2))
                    .collect()))
            }
            Bindings::V0_3(p) => {
                let batch = encode_batch(events);
                let out = p
                    .switchyard_plugin_handler()
                    .call_handle(store, &batch)
                    .await?;
                Ok(decode_verdicts(&out, n))
            }
        }
    }
}

fn wrong_count(got: usize, n: usize) -> String {
    format!("returned {got} verdicts for {n} events (the contract is one per event)")
}

fn verdict_from_v0_2(v: Verdict2) -> Verdict {
    Verdict {
        routes: v.routes,
        priority: v.priority,
        payload: v.payload.map(Bytes::from),
        headers: v.headers,
        content_type: v.content_type,
        delay_ms: v.delay_ms,
        ordering_key: v.ordering_key,
        attributes: v.attributes,
        rewritten_by: None,
    }
}

/// The size of one event's record in a 0.3.0 batch's `events`.
pub const EVENT_RECORD: usize = 56;
/// The size of one header or attribute entry in a 0.3.0 batch's `fields`.
pub const FIELD_RECORD: usize = 16;

/// How big a batch's `data` and `fields` will be, to allocate them once.
fn sizes(events: &[&PluginEvent]) -> (usize, usize) {
    let (mut bytes, mut pairs) = (0, 0);
    for e in events {
        bytes += e.id.len() + e.topic.len() + e.content_type.len() + e.payload.len();
        for (k, v) in e.headers.iter().chain(&e.attributes) {
            bytes += k.len() + v.len();
        }
        pairs += e.headers.len() + e.attributes.len();
    }
    (bytes, pairs)
}

/// Ranges are `u32`: a batch is bounded by the router's batch size times
/// the topic's body limit, far below 4 GiB.
fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Appends `bytes` to `data`, returning its offset and length.
fn put(data: &mut Vec<u8>, bytes: &[u8]) -> (u32, u32) {
    let at = u32_of(data.len());
    data.extend_from_slice(bytes);
    (at, u32_of(bytes.len()))
}

/// A text equal to the previous event's (topics, content types) is shared.
fn put_shared<'a>(
    data: &mut Vec<u8>,
    last: &mut Option<(&'a str, (u32, u32))>,
    text: &'a str,
) -> (u32, u32) {
    match *last {
        Some((t, range)) if t == text => range,
        _ => {
            let range = put(data, text.as_bytes());
            *last = Some((text, range));
            range
        }
    }
}

/// Lays events out as a 0.3.0 batch (the layout is in
/// `schemas/wit/plugin.wit`): every text and payload back to back in
/// `data`, a 56-byte record per event in `events`, a 16-byte entry per
/// header and attribute in `fields`. Four allocations whatever the count.
pub fn encode_batch(events: &[&PluginEvent]) -> Batch3 {
    let (bytes, pairs) = sizes(events);
    let mut data = Vec::with_capacity(bytes);
    let mut fields = Vec::with_capacity(pairs * FIELD_RECORD);
    let mut index = Vec::with_capacity(events.len() * EVENT_RECORD);
    let (mut last_topic, mut last_type) = (None, None);
    let mut put_pairs = |data: &mut Vec<u8>, pairs: &[(String, String)]| {
        let first = u32_of(fields.len() / FIELD_RECORD);
        for (k, v) in pairs {
            let (ko, kl) = put(data, k.as_bytes());
            let (vo, vl) = put(data, v.as_bytes());
            for x in [ko, kl, vo, vl] {
                fields.extend_from_slice(&x.to_le_bytes());
            }
        }
        (first, u32_of(pairs.len()))
    };
    for e in events {
        let id = put(&mut data, e.id.as_bytes());
        let topic = put_shared(&mut data, &mut last_topic, &e.topic);
        let content_type = put_shared(&mut data, &mut last_type, &e.content_type);
        let payload = put(&mut data, &e.payload);
        let headers = put_pairs(&mut data, &e.headers);
        let attributes = put_pairs(&mut data, &e.attributes);
        index.extend_from_slice(&e.received_at_ms.to_le_bytes());
        for (a, b) in [id, topic, content_type, payload, headers, attributes] {
            index.extend_from_slice(&a.to_le_bytes());
            index.extend_from_slice(&b.to_le_bytes());
        }
    }
    Batch3 {
        data,
        events: index,
        fields,
    }
}

/// Lays events out as a 0.2.0 batch: the same `data`, and the index as
/// WIT records (`event`, `span`, `field`).
fn encode_batch_v0_2(events: &[&PluginEvent]) -> Batch2 {
    let (bytes, pairs) = sizes(events);
    let mut data = Vec::with_capacity(bytes);
    let mut fields = Vec::with_capacity(pairs);
    let mut out = Vec::with_capacity(events.len());
    let (mut last_topic, mut last_type) = (None, None);
    let span = |(offset, len): (u32, u32)| Span2 { offset, len };
    let mut put_pairs = |data: &mut Vec<u8>, pairs: &[(String, String)]| {
        let first = u32_of(fields.len());
        for (k, v) in pairs {
            let name = span(put(data, k.as_bytes()));
            let value = span(put(data, v.as_bytes()));
            fields.push(Field2 { name, value });
        }
        Span2 {
            offset: first,
            len: u32_of(pairs.len()),
        }
    };
    for e in events {
        let id = span(put(&mut data, e.id.as_bytes()));
        let topic = span(put_shared(&mut data, &mut last_topic, &e.topic));
        let content_type = span(put_shared(&mut data, &mut last_type, &e.content_type));
        let payload = span(put(&mut data, &e.payload));
        let headers = put_pairs(&mut data, &e.headers);
        let attributes = put_pairs(&mut data, &e.attributes);
        out.push(Event2 {
            id,
            topic,
            received_at_ms: e.received_at_ms,
            headers,
            content_type,
            payload,
            attributes,
        });
    }
    Batch2 {
        data,
        fields,
        events: out,
    }
}

/// The flags of an `ok` verdict, in the order its fields follow.
const ROUTES: u8 = 1;
const PRIORITY: u8 = 2;
const PAYLOAD: u8 = 4;
const HEADERS: u8 = 8;
const CONTENT_TYPE: u8 = 16;
const DELAY_MS: u8 = 32;
const ORDERING_KEY: u8 = 64;
const ATTRIBUTES: u8 = 128;

/// Reads a 0.3.0 verdict buffer (its encoding is in
/// `schemas/wit/plugin.wit`) for a batch of `n` events. The plugin is not
/// trusted: a buffer that cannot be framed is `Err` (every event of the
/// call fails with it), a field that frames but is wrong fails its event
/// only, and nothing is allocated beyond what the buffer's own bytes hold.
pub fn decode_verdicts(buf: &[u8], n: usize) -> Result<Vec<Result<Verdict, String>>, String> {
    let mut r = Reader { buf, at: 0 };
    let malformed = |r: &Reader<'_>, why: String| {
        format!(
            "returned a malformed verdict buffer of {} bytes (at byte {}: {why})",
            buf.len(),
            r.at
        )
    };
    let count = r.u32().map_err(|why| malformed(&r, why))?;
    if usize::try_from(count).ok() != Some(n) {
        return Err(wrong_count(count as usize, n));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let one = match r.u8() {
            Ok(0) => r.verdict(),
            Ok(1) => r
                .bytes()
                .map(|m| Err(String::from_utf8_lossy(m).into_owned())),
            Ok(tag) => Err(format!("result {i} has tag {tag}, not 0 (ok) or 1 (err)")),
            Err(why) => Err(why),
        };
        out.push(one.map_err(|why| malformed(&r, format!("result {i}: {why}")))?);
    }
    if r.at != buf.len() {
        let left = buf.len() - r.at;
        return Err(malformed(
            &r,
            format!("{left} bytes left after the last result"),
        ));
    }
    Ok(out)
}

/// A cursor over a verdict buffer. Every read checks what is left first.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let left = self.buf.len() - self.at;
        if len > left {
            return Err(format!("{len} bytes wanted, {left} left"));
        }
        let s = &self.buf[self.at..self.at + len];
        self.at += len;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A u32 length, then that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()?;
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// A u32 count of items at least `min` bytes each: a count the buffer
    /// cannot hold is refused before anything is allocated for it.
    fn count(&mut self, min: usize) -> Result<usize, String> {
        let n = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        let left = self.buf.len() - self.at;
        if n > left / min {
            return Err(format!(
                "a count of {n} cannot fit in the {left} bytes left"
            ));
        }
        Ok(n)
    }

    /// One `ok` verdict. `Ok(Err(..))`: it frames, but a text is not UTF-8.
    fn verdict(&mut self) -> Result<Result<Verdict, String>, String> {
        let flags = self.u8()?;
        let mut bad: Option<&'static str> = None;
        let mut text = |b: &[u8], what: &'static str| match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                bad.get_or_insert(what);
                String::new()
            }
        };
        let mut v = Verdict::default();
        if flags & ROUTES != 0 {
            let n = self.count(4)?;
            let mut routes = Vec::with_capacity(n);
            for _ in 0..n {
                routes.push(text(self.bytes()?, "a route"));
            }
            v.routes = Some(routes);
        }
        if flags & PRIORITY != 0 {
            // Above 9 frames fine; `host::apply` fails the event for it.
            v.priority = Some(self.u8()?);
        }
        if flags & PAYLOAD != 0 {
            v.payload = Some(Bytes::copy_from_slice(self.bytes()?));
        }
        if flags & HEADERS != 0 {
            v.headers = Some(self.pairs(&mut text, "a header")?);
        }
        if flags & CONTENT_TYPE != 0 {
            v.content_type = Some(text(self.bytes()?, "the content type"));
        }
        if flags & DELAY_MS != 0 {
            v.delay_ms = Some(self.u64()?);
        }
        if flags & ORDERING_KEY != 0 {
            v.ordering_key = Some(text(self.bytes()?, "the ordering key"));
        }
        if flags & ATTRIBUTES != 0 {
            v.attributes = Some(self.pairs(&mut text, "an attribute")?);
        }
        Ok(match bad {
            Some(what) => Err(format!("its verdict's {what} is not valid UTF-8")),
            None => Ok(v),
        })
    }

    fn pairs(
        &mut self,
        text: &mut impl FnMut(&[u8], &'static str) -> String,
        what: &'static str,
    ) -> Result<Vec<(String, String)>, String> {
        let n = self.count(8)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let k = text(self.bytes()?, what);
            let v = text(self.bytes()?, what);
            out.push((k, v));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The vector the three SDKs' tests encode, byte for byte.
    const GOLDEN: &str = "040000000003020000000100000061020000006263070104000000626f6f6d000000fc020000007b7d010000000100000068010000007601000000740500000000000000010000006b0100000001000000780100000079";

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_documented_verdict_buffer_decodes() {
        let out = decode_verdicts(&hex(GOLDEN), 4).unwrap();
        assert_eq!(
            out[0],
            Ok(Verdict {
                routes: Some(vec!["a".into(), "bc".into()]),
                priority: Some(7),
                ..Verdict::default()
            })
        );
        assert_eq!(out[1], Err("boom".to_owned()));
        assert_eq!(out[2], Ok(Verdict::default()));
        assert_eq!(
            out[3],
            Ok(Verdict {
                payload: Some(Bytes::from_static(b"{}")),
                headers: Some(pairs(&[("h", "v")])),
                content_type: Some("t".into()),
                delay_ms: Some(5),
                ordering_key: Some("k".into()),
                attributes: Some(pairs(&[("x", "y")])),
                ..Verdict::default()
            })
        );
        assert!(
            decode_verdicts(&hex(GOLDEN), 3)
                .unwrap_err()
                .contains("returned 4 verdicts for 3 events")
        );
    }

    /// Every cut of a valid buffer, and every one-byte change of it, is an
    /// error or a decoded answer, never a panic; a cut is always an error.
    #[test]
    fn hostile_buffers_are_errors_not_panics() {
        let good = hex(GOLDEN);
        for len in 0..good.len() {
            assert!(decode_verdicts(&good[..len], 4).is_err(), "cut at {len}");
        }
        for at in 0..good.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff] {
                let mut bad = good.clone();
                bad[at] = b;
                let _ = decode_verdicts(&bad, 4);
            }
        }
        // Pseudo-random buffers (a fixed LCG, so a failure reproduces).
        let mut x: u64 = 0x5eed;
        for _ in 0..2000 {
            let len = (x % 64) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    // Mostly small bytes, so counts and tags are sometimes valid.
                    ((x >> 33) % 5) as u8
                })
                .collect();
            let _ = decode_verdicts(&buf, (x % 3) as usize);
        }
    }

    #[test]
    fn counts_the_buffer_cannot_hold_are_refused_before_allocating() {
        // One ok result whose routes claim 2^32 - 1 entries, then headers
        // claiming as many pairs.
        let mut buf = vec![1, 0, 0, 0, 0, ROUTES];
        buf.extend(u32::MAX.to_le_bytes());
        assert!(
            decode_verdicts(&buf, 1)
                .unwrap_err()
                .contains("a count of 4294967295 cannot fit in the 0 bytes left")
        );
        let mut buf = vec![1, 0, 0, 0, 0, HEADERS];
        buf.extend(100_000u32.to_le_bytes());
        buf.extend([0; 16]);
        assert!(decode_verdicts(&buf, 1).unwrap_err().contains("cannot fit"));
    }

    #[test]
    fn wrong_texts_fail_their_event_and_the_next_still_decodes() {
        let mut buf = vec![2, 0, 0, 0, 0, ORDERING_KEY, 2, 0, 0, 0, 0xc3, 0x28];
        buf.extend([1, 2, 0, 0, 0, 0xff, b'!']);
        let out = decode_verdicts(&buf, 2).unwrap();
        assert_eq!(
            out[0],
            Err("its verdict's the ordering key is not valid UTF-8".to_owned())
        );
        // An error message that is not UTF-8 is shown as best it can be.
        assert_eq!(out[1], Err("\u{fffd}!".to_owned()));
    }

    fn sample(i: u32) -> PluginEvent {
        PluginEvent {
            id: format!("01J{i:023}"),
            topic: "orders".to_owned(),
            received_at_ms: 1_700_000_000_000 + u64::from(i),
            headers: vec![
                ("x-kind".to_owned(), format!("k{i}")),
                ("x-two".to_owned(), "2".to_owned()),
            ],
            content_type: "application/json".to_owned(),
            payload: Bytes::from(format!(r#"{{"n":{i}}}"#)),
            attributes: if i.is_multiple_of(2) {
                vec![("tier".to_owned(), "pro".to_owned())]
            } else {
                Vec::new()
            },
        }
    }

    struct Echo;

    impl switchyard_sdk::Plugin for Echo {
        fn init(_: &switchyard_sdk::Config) -> Result<Self, String> {
            Ok(Echo)
        }
        fn handle(&self, e: &switchyard_sdk::Event) -> Result<switchyard_sdk::Verdict, String> {
            if e.json_at::<u64>("/n") == Some(3) {
                return Err("three".to_owned());
            }
            let mut v = switchyard_sdk::Verdict::route([e.topic.as_ref(), e.id.as_ref()])
                .priority(u8::try_from(e.received_at_ms % 10).unwrap())
                .ordering_key(e.header("x-kind").unwrap_or("none"))
                .headers(e.headers().map(|(k, v)| (k.into(), v.into())).collect())
                .payload(e.payload.to_vec());
            if let Some(t) = e.attribute("tier") {
                v = v.attribute("tier-seen", t);
            }
            Ok(v)
        }
    }

    /// The host's 0.3.0 layout read by the Rust SDK, and the SDK's verdict
    /// buffer read by the host: every field of every event survives.
    #[test]
    fn host_and_rust_sdk_agree_on_both_layouts() {
        let events: Vec<PluginEvent> = (0..6).map(sample).collect();
        let refs: Vec<&PluginEvent> = events.iter().collect();
        let batch = encode_batch(&refs);
        assert_eq!(batch.events.len(), 6 * EVENT_RECORD);
        assert_eq!(batch.fields.len(), (6 * 2 + 3) * FIELD_RECORD);
        let wire = switchyard_sdk::wire::Batch {
            data: &batch.data,
            events: &batch.events,
            fields: &batch.fields,
        };
        let buf = switchyard_sdk::wire::handle_batch(Some(&Echo), wire);
        let out = decode_verdicts(&buf, events.len()).unwrap();
        for (e, v) in events.iter().zip(out) {
            if e.payload.as_ref() == br#"{"n":3}"# {
                assert_eq!(v, Err("three".to_owned()));
                continue;
            }
            let v = v.unwrap();
            assert_eq!(v.routes, Some(vec![e.topic.clone(), e.id.clone()]));
            assert_eq!(v.priority, Some((e.received_at_ms % 10) as u8));
            assert_eq!(v.ordering_key.as_deref(), Some(e.headers[0].1.as_str()));
            assert_eq!(v.headers.as_ref(), Some(&e.headers));
            assert_eq!(v.payload.as_ref(), Some(&e.payload));
            let tier = e
                .attributes
                .first()
                .map(|(_, t)| vec![("tier-seen".to_owned(), t.clone())]);
            assert_eq!(v.attributes, tier);
        }
    }
}
