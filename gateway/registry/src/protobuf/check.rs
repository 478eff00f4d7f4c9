//! A check of a payload against a message descriptor that builds nothing.
//!
//! Validation at ingest only needs a yes or a no, but decoding a payload
//! with prost-reflect builds a `DynamicMessage`: a B-tree of fields, a
//! boxed value per field, a string per string, looked up by name through a
//! hash map per key. For a 1 KB event that building is most of what
//! validation costs. This module compiles a schema's messages once into
//! flat tables ([`Plan`]) and walks a parsed JSON document (protobuf's JSON
//! mapping) or the wire bytes against them.
//!
//! It is a fast path, not a second implementation to trust: it answers
//! "certainly valid" only for what prost-reflect accepts too, and answers
//! "not sure" for everything else (an error, but also what it does not
//! model: `Any`, `Duration`, `FieldMask`, groups, extensions, integers
//! written as floats, nulls inside lists and maps, nesting beyond a
//! bound). On "not sure" the caller decodes with prost-reflect, whose
//! verdict and error message stand. So a payload the fast path refuses
//! costs what it did before, and one it accepts is one prost-reflect
//! accepts (the registry's fuzz property and the tests below check that
//! implication).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use sonic_rs::{JsonContainerTrait as _, JsonType, JsonValueTrait as _};

/// Nesting the fast path walks (JSON containers or wire messages) before it
/// hands over: under both serde_json's (128) and prost's (100) limits.
const MAX_DEPTH: usize = 64;

/// Objects with more keys than this are looked up through a hash map;
/// smaller ones are scanned (faster at the sizes messages have).
const SCAN_KEYS: usize = 24;

/// Wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// The base64 prost-reflect reads `bytes` with: the standard alphabet,
/// padding optional, trailing bits allowed (its URL-safe second try is left
/// to it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A field's type, as far as validity goes.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    /// `sint32`, `sint64`, like their plain forms in JSON; varints on the wire.
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    /// Index into [`Plan::enums`].
    Enum(usize),
    /// Index into [`Plan::messages`].
    Message(usize),
}

impl Ty {
    /// The wire type a single value of this type is written with.
    fn wire(self) -> u8 {
        match self {
            Ty::Double | Ty::Fixed64 | Ty::Sfixed64 => I64,
            Ty::Float | Ty::Fixed32 | Ty::Sfixed32 => I32,
            Ty::String | Ty::Bytes | Ty::Message(_) => LEN,
            _ => VARINT,
        }
    }

    fn packable(self) -> bool {
        !matches!(self, Ty::String | Ty::Bytes | Ty::Message(_))
    }
}

#[derive(Debug)]
enum Card {
    Single,
    List,
    Map { key: Ty, value: Ty },
}

#[derive(Debug)]
struct Field {
    number: u32,
    ty: Ty,
    card: Card,
    /// Index of its oneof among the message's (synthetic ones included).
    oneof: Option<u8>,
    group: bool,
}

/// How a well-known type is written in JSON.
#[derive(Clone, Copy, Debug)]
enum Wkt {
    Timestamp,
    /// `google.protobuf.*Value` wrappers: the wrapped scalar itself.
    Wrapper(Ty),
    Struct,
    ListValue,
    Value,
    Empty,
    /// `Any`, `Duration`, `FieldMask`: left to prost-reflect.
    Other,
}

#[derive(Debug)]
struct Message {
    fields: Vec<Field>,
    /// JSON keys (every field's JSON name, then its proto name where that
    /// differs and is not another field's JSON name) and the field each
    /// means, in the order prost-reflect looks them up.
    keys: Vec<(Box<str>, usize)>,
    by_key: Option<HashMap<Box<str>, usize>>,
    /// Field numbers, sorted, and the field each means.
    numbers: Vec<(u32, usize)>,
    wkt: Option<Wkt>,
    /// A field could not be planned (a oneof past the 64th, which the
    /// bitmask of set oneofs can't hold): not walked.
    opaque: bool,
}

impl Message {
    fn by_key(&self, key: &str) -> Option<&Field> {
        let i = match &self.by_key {
            Some(map) => *map.get(key)?,
            None => self.keys.iter().find(|(k, _)| &**k == key)?.1,
        };
        self.fields.get(i)
    }

    fn by_number(&self, number: u32) -> Option<&Field> {
        let at = self
            .numbers
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()?;
        self.fields.get(self.numbers[at].1)
    }
}

#[derive(Debug)]
struct Enum {
    names: Vec<Box<str>>,
    /// `google.protobuf.NullValue`: only `"NULL_VALUE"` (or `null`).
    null_value: bool,
}

/// A schema's messages compiled for checking, built once per schema.
#[derive(Debug, Default)]
pub struct Plan {
    messages: Vec<Message>,
    enums: Vec<Enum>,
    by_name: HashMap<String, usize>,
}

impl Plan {
    /// Compiles every message of `pool` (the schema's file and what it
    /// imports).
    pub fn new(pool: &DescriptorPool) -> Plan {
        let mut plan = Plan::default();
        let all: Vec<MessageDescriptor> = pool.all_messages().collect();
        for (i, m) in all.iter().enumerate() {
            plan.by_name.insert(m.full_name().to_string(), i);
        }
        let mut enums: HashMap<String, usize> = HashMap::new();
        for e in pool.all_enums() {
            enums.insert(e.full_name().to_string(), plan.enums.len());
            plan.enums.push(Enum {
                names: e.values().map(|v| v.name().into()).collect(),
                null_value: e.full_name() == "google.protobuf.NullValue",
            });
        }
        for m in &all {
            let message = plan.compile(m, &enums);
            plan.messages.push(message);
        }
        plan
    }

    fn ty(&self, kind: &Kind, enums: &HashMap<String, usize>) -> Option<Ty> {
        Some(match kind {
            Kind::Double => Ty::Double,
            Kind::Float => Ty::Float,
            Kind::Int32 => Ty::Int32,
            Kind::Int64 => Ty::Int64,
            Kind::Uint32 => Ty::Uint32,
            Kind::Uint64 => Ty::Uint64,
            Kind::Sint32 => Ty::Sint32,
            Kind::Sint64 => Ty::Sint64,
            Kind::Fixed32 => Ty::Fixed32,
            Kind::Fixed64 => Ty::Fixed64,
            Kind::Sfixed32 => Ty::Sfixed32,
            Kind::Sfixed64 => Ty::Sfixed64,
            Kind::Bool => Ty::Bool,
            Kind::String => Ty::String,
            Kind::Bytes => Ty::Bytes,
            Kind::Enum(e) => Ty::Enum(*enums.get(e.full_name())?),
            Kind::Message(m) => Ty::Message(*self.by_name.get(m.full_name())?),
        })
    }

    fn compile(&self, m: &MessageDescriptor, enums: &HashMap<String, usize>) -> Message {
        let oneofs: Vec<String> = m.oneofs().map(|o| o.full_name().to_string()).collect();
        // A field it can't plan makes the whole message opaque: left to
        // prost-reflect.
        let fields: Option<Vec<Field>> =
            m.fields().map(|f| self.field(&f, &oneofs, enums)).collect();
        let wkt = match m.full_name() {
            "google.protobuf.Timestamp" => Some(Wkt::Timestamp),
            "google.protobuf.Struct" => Some(Wkt::Struct),
            "google.protobuf.ListValue" => Some(Wkt::ListValue),
            "google.protobuf.Value" => Some(Wkt::Value),
            "google.protobuf.Empty" => Some(Wkt::Empty),
            "google.protobuf.Any" | "google.protobuf.Duration" | "google.protobuf.FieldMask" => {
                Some(Wkt::Other)
            }
            "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue" => match fields.as_deref() {
                Some([f, ..]) => Some(Wkt::Wrapper(f.ty)),
                _ => Some(Wkt::Other),
            },
            _ => None,
        };
        let Some(fields) = fields else {
            return Message {
                fields: Vec::new(),
                keys: Vec::new(),
                by_key: None,
                numbers: Vec::new(),
                wkt,
                opaque: true,
            };
        };
        let mut keys: Vec<(Box<str>, usize)> = m
            .fields()
            .enumerate()
            .map(|(i, f)| (f.json_name().into(), i))
            .collect();
        for (i, f) in m.fields().enumerate() {
            if !keys.iter().any(|(k, _)| &**k == f.name()) {
                keys.push((f.name().into(), i));
            }
        }
        let by_key = (keys.len() > SCAN_KEYS).then(|| keys.iter().cloned().collect());
        let mut numbers: Vec<(u32, usize)> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.number, i))
            .collect();
        numbers.sort_unstable();
        Message {
            fields,
            keys,
            by_key,
            numbers,
            wkt,
            opaque: false,
        }
    }

    fn field(
        &self,
        f: &FieldDescriptor,
        oneofs: &[String],
        enums: &HashMap<String, usize>,
    ) -> Option<Field> {
        let card = if f.is_map() {
            let Kind::Message(entry) = f.kind() else {
                return None;
            };
            Card::Map {
                key: self.ty(&entry.map_entry_key_field().kind(), enums)?,
                value: self.ty(&entry.map_entry_value_field().kind(), enums)?,
            }
        } else if f.is_list() {
            Card::List
        } else {
            Card::Single
        };
        let oneof = match f.containing_oneof() {
            Some(o) => {
                let i = oneofs.iter().position(|n| n == o.full_name())?;
                Some(u8::try_from(i).ok().filter(|&i| i < 64)?)
            }
            None => None,
        };
        Some(Field {
            number: f.number(),
            ty: self.ty(&f.kind(), enums)?,
            card,
            oneof,
            group: f.is_group(),
        })
    }

    /// True when `doc` is certainly the JSON form of `desc` (prost-reflect,
    /// unknown names refused, would accept it); false when not sure.
    pub fn json(&self, desc: &MessageDescriptor, doc: &sonic_rs::Value) -> bool {
        match self.by_name.get(desc.full_name()) {
            Some(&m) => self.json_message(m, doc, 0),
            None => false,
        }
    }

    fn json_message(&self, m: usize, v: &sonic_rs::Value, depth: usize) -> bool {
        let Some(msg) = self.messages.get(m) else {
            return false;
        };
        if depth > MAX_DEPTH {
            return false;
        }
        if let Some(wkt) = msg.wkt {
            return json_wkt(wkt, v, depth);
        }
        if msg.opaque {
            return false;
        }
        let Some(obj) = v.as_object() else {
            return false;
        };
        let mut oneofs_set: u64 = 0;
        for (key, value) in obj.iter() {
            let Some(f) = msg.by_key(key) else {
                return false;
            };
            if let Some(o) = f.oneof {
                // A second member of a oneof (or the same key twice) is
                // prost-reflect's to judge.
                let bit = 1u64 << o;
                if oneofs_set & bit != 0 {
                    return false;
                }
                oneofs_set |= bit;
            }
            // A null leaves a field unset, whatever its type.
            if value.is_null() {
                continue;
            }
            let ok = match &f.card {
                Card::Single => self.json_value(f.ty, value, depth),
                Card::List => match value.as_array() {
                    Some(items) => items
                        .iter()
                        .all(|item| !item.is_null() && self.json_value(f.ty, item, depth + 1)),
                    None => false,
                },
                Card::Map { key, value: vty } => match value.as_object() {
                    Some(entries) => entries.iter().all(|(k, item)| {
                        map_key(*key, k)
                            && !item.is_null()
                            && self.json_value(*vty, item, depth + 1)
                    }),
                    None => false,
                },
            };
            if !ok {
                return false;
            }
        }
        true
    }

    fn json_value(&self, ty: Ty, v: &sonic_rs::Value, depth: usize) -> bool {
        match ty {
            Ty::Message(m) => self.json_message(m, v, depth + 1),
            Ty::Enum(e) => match self.enums.get(e) {
                Some(en) if en.null_value => v.as_str() == Some("NULL_VALUE"),
                Some(en) => match v.get_type() {
                    JsonType::String => {
                        let s = v.as_str().unwrap_or_default();
                        en.names.iter().any(|n| &**n == s)
                    }
                    JsonType::Number => json_int::<i32>(v),
                    _ => false,
                },
                None => false,
            },
            scalar => json_scalar(scalar, v),
        }
    }

    /// True when `bytes` is certainly a `desc` message prost-reflect
    /// decodes with every field declared; false when not sure.
    pub fn wire(&self, desc: &MessageDescriptor, bytes: &[u8]) -> bool {
        match self.by_name.get(desc.full_name()) {
            Some(&m) => self.wire_message(m, bytes, 0),
            None => false,
        }
    }

    fn wire_message(&self, m: usize, mut buf: &[u8], depth: usize) -> bool {
        let Some(msg) = self.messages.get(m) else {
            return false;
        };
        if depth > MAX_DEPTH || msg.opaque {
            return false;
        }
        while !buf.is_empty() {
            let Some((number, wt)) = key(&mut buf) else {
                return false;
            };
            let Some(f) = msg.by_number(number) else {
                return false;
            };
            if f.group {
                return false;
            }
            let ok = match &f.card {
                Card::Map { key, value } => {
                    wt == LEN
                        && match take_len(&mut buf) {
                            Some(entry) => self.wire_entry(*key, *value, entry, depth + 1),
                            None => false,
                        }
                }
                Card::List if wt == LEN && f.ty.packable() => match take_len(&mut buf) {
                    Some(packed) => packed_ok(f.ty.wire(), packed),
                    None => false,
                },
                Card::List | Card::Single => self.wire_value(f.ty, wt, &mut buf, depth),
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// A map entry: fields 1 (key) and 2 (value), nothing else.
    fn wire_entry(&self, k: Ty, v: Ty, mut buf: &[u8], depth: usize) -> bool {
        while !buf.is_empty() {
            let ok = match key(&mut buf) {
                Some((1, wt)) => self.wire_value(k, wt, &mut buf, depth),
                Some((2, wt)) => self.wire_value(v, wt, &mut buf, depth),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        true
    }

    fn wire_value(&self, ty: Ty, wt: u8, buf: &mut &[u8], depth: usize) -> bool {
        if wt != ty.wire() {
            return false;
        }
        match wt {
            VARINT => varint(buf).is_some(),
            I64 => take(buf, 8).is_some(),
            I32 => take(buf, 4).is_some(),
            _ => match take_len(buf) {
                Some(bytes) => match ty {
                    Ty::String => std::str::from_utf8(bytes).is_ok(),
                    Ty::Message(m) => self.wire_message(m, bytes, depth + 1),
                    _ => true,
                },
                None => false,
            },
        }
    }
}

/// A scalar in protobuf's JSON mapping, read as prost-reflect does.
fn json_scalar(ty: Ty, v: &sonic_rs::Value) -> bool {
    match ty {
        Ty::Double => match v.get_type() {
            JsonType::Number => true,
            JsonType::String => float_str::<f64>(v.as_str().unwrap_or_default()),
            _ => false,
        },
        Ty::Float => match v.get_type() {
            // Integers are taken as they come; a float must be in range
            // (a margin below f32::MAX keeps a last-digit difference
            // between JSON parsers on prost-reflect's side).
            JsonType::Number if v.is_u64() || v.is_i64() => true,
            JsonType::Number => v.as_f64().is_some_and(|f| f.abs() < 3.4e38),
            JsonType::String => float_str::<f32>(v.as_str().unwrap_or_default()),
            _ => false,
        },
        Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => json_int::<i32>(v),
        Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => json_int::<i64>(v),
        Ty::Uint32 | Ty::Fixed32 => json_int::<u32>(v),
        Ty::Uint64 | Ty::Fixed64 => json_int::<u64>(v),
        Ty::Bool => v.is_boolean(),
        Ty::String => v.is_str(),
        Ty::Bytes => match v.as_str() {
            Some(s) => BASE64.decode(s).is_ok(),
            None => false,
        },
        Ty::Enum(_) | Ty::Message(_) => false,
    }
}

/// An integer: a JSON integer in range, or a decimal string. Integers
/// written as floats (`3.0`, `1e3`) are prost-reflect's to judge.
fn json_int<T>(v: &sonic_rs::Value) -> bool
where
    T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    if let Some(u) = v.as_u64() {
        return T::try_from(u).is_ok();
    }
    if let Some(i) = v.as_i64() {
        return T::try_from(i).is_ok();
    }
    match v.as_str() {
        Some(s) => s.parse::<T>().is_ok(),
        None => false,
    }
}

fn float_str<T: std::str::FromStr>(s: &str) -> bool {
    s.parse::<T>().is_ok() || matches!(s, "Infinity" | "-Infinity" | "NaN")
}

/// A map key (always a JSON string) for its key type.
fn map_key(ty: Ty, k: &str) -> bool {
    match ty {
        Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => k.parse::<i32>().is_ok(),
        Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => k.parse::<i64>().is_ok(),
        Ty::Uint32 | Ty::Fixed32 => k.parse::<u32>().is_ok(),
        Ty::Uint64 | Ty::Fixed64 => k.parse::<u64>().is_ok(),
        Ty::Bool => k.parse::<bool>().is_ok(),
        Ty::String => true,
        _ => false,
    }
}

fn json_wkt(wkt: Wkt, v: &sonic_rs::Value, depth: usize) -> bool {
    match wkt {
        Wkt::Timestamp => v.as_str().is_some_and(timestamp),
        Wkt::Wrapper(ty) => json_scalar(ty, v),
        Wkt::Struct => v.is_object() && shallow(v, depth),
        Wkt::ListValue => v.is_array() && shallow(v, depth),
        Wkt::Value => shallow(v, depth),
        Wkt::Empty => v.as_object().is_some_and(|o| o.is_empty()),
        Wkt::Other => false,
    }
}

/// Any JSON nested no deeper than [`MAX_DEPTH`] in all (a `Struct` or a
/// `Value` takes anything else).
fn shallow(v: &sonic_rs::Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match v.get_type() {
        JsonType::Array => v
            .as_array()
            .is_some_and(|a| a.iter().all(|x| shallow(x, depth + 1))),
        JsonType::Object => v
            .as_object()
            .is_some_and(|o| o.iter().all(|(_, x)| shallow(x, depth + 1))),
        _ => true,
    }
}

/// A `google.protobuf.Timestamp` in JSON: RFC 3339 with an upper-case `T`,
/// seconds, optional fraction and a `Z` or `±hh:mm` offset, within years
/// 1-9999.
fn timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let shape = digits(0, 4)
        && at(4, b'-')
        && digits(5, 2)
        && at(7, b'-')
        && digits(8, 2)
        && at(10, b'T')
        && digits(11, 2)
        && at(13, b':')
        && digits(14, 2)
        && at(16, b':')
        && digits(17, 2);
    if !shape {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let zone = match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len() && digits(i + 1, 2) && at(i + 3, b':') && digits(i + 4, 2)
        }
        _ => false,
    };
    zone && s
        .parse::<prost_types::Timestamp>()
        .is_ok_and(|t| (-62_135_596_800..=253_402_300_799).contains(&t.seconds))
}

/// A field key: number and wire type (wire types 0, 1, 2 and 5; groups are
/// prost-reflect's).
fn key(buf: &mut &[u8]) -> Option<(u32, u8)> {
    let k = u32::try_from(varint(buf)?).ok()?;
    let number = k >> 3;
    let wt = (k & 7) as u8;
    (number != 0 && matches!(wt, VARINT | I64 | LEN | I32)).then_some((number, wt))
}

/// A varint of at most ten bytes whose value fits 64 bits.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Some(head)
}

fn take_len<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = usize::try_from(varint(buf)?).ok()?;
    take(buf, n)
}

/// A packed run of values of wire type `wt`.
fn packed_ok(wt: u8, mut buf: &[u8]) -> bool {
    match wt {
        I64 => buf.len().is_multiple_of(8),
        I32 => buf.len().is_multiple_of(4),
        _ => {
            while !buf.is_empty() {
                if varint(&mut buf).is_none() {
                    return false;
                }
            }
            true
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use prost::Message as _;

    use super::super::{ProtoSchema, decode, from_json};

    /// Every kind of field the fast path models, and some it leaves to
    /// prost-reflect.
    const ALL: &str = r#"syntax = "proto3";
package t;
import "google/protobuf/timestamp.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
enum Color { COLOR_UNSPECIFIED = 0; RED = 1; GREEN = 2; }
message Inner { string name = 1; repeated int32 nums = 2; Inner child = 3; }
message All {
  double d = 1; float f = 2; int32 i32 = 3; int64 i64 = 4; uint32 u32 = 5;
  uint64 u64 = 6; sint32 s32 = 7; sint64 s64 = 8; fixed32 fx32 = 9;
  fixed64 fx64 = 10; sfixed32 sf32 = 11; sfixed64 sf64 = 12; bool b = 13;
  string s = 14; bytes by = 15; Color color = 16; Inner inner = 17;
  repeated Inner inners = 18; repeated string tags = 19; repeated double ds = 20;
  map<string, Inner> by_name = 21; map<int32, string> by_num = 22;
  map<bool, int64> by_flag = 23;
  oneof choice { string left = 24; int32 right = 25; }
  optional string maybe = 26;
  google.protobuf.Timestamp at = 27; google.protobuf.Struct meta = 28;
  google.protobuf.Value any_value = 29; google.protobuf.ListValue list = 30;
  google.protobuf.StringValue ws = 31; google.protobuf.Int64Value wi = 32;
  google.protobuf.Duration took = 33; google.protobuf.Empty nothing = 34;
  google.protobuf.NullValue null_value = 35; repeated Color colors = 36;
  string snake_case_name = 37; repeated fixed32 packed_fx = 38;
}
"#;

    const FULL: &str = r#"{"d":1.5,"f":2,"i32":-3,"i64":"-4","u32":5,"u64":"6","s32":7,"s64":8,
"fx32":9,"fx64":"10","sf32":-11,"sf64":12,"b":true,"s":"x","by":"AAEC","color":"RED",
"inner":{"name":"n","nums":[1,2],"child":{"name":"c"}},"inners":[{"name":"a"},{}],
"tags":["a","b"],"ds":[1,"NaN",-2.5],"byName":{"k":{"name":"v"}},"byNum":{"7":"seven"},
"byFlag":{"true":"1"},"left":"l","maybe":"m","at":"2026-12-04T10:00:00.123Z",
"meta":{"a":[1,{"b":null}]},"anyValue":3,"list":[1,"x"],"ws":"w","wi":"9",
"nothing":{},"nullValue":null,"colors":["GREEN",1],"snakeCaseName":"s","packedFx":[1,2]}"#;

    fn schema() -> ProtoSchema {
        ProtoSchema::parse(ALL, &[]).unwrap()
    }

    /// The fast path's "yes" implies prost-reflect's; returns the fast answer.
    fn agrees(p: &ProtoSchema, body: &str) -> bool {
        let desc = p.message(Some("t.All")).unwrap();
        let fast = match sonic_rs::from_str::<sonic_rs::Value>(body) {
            Ok(doc) => p.check.json(&desc, &doc),
            Err(_) => false,
        };
        let slow = from_json(&desc, body.as_bytes());
        assert!(
            !fast || slow.is_ok(),
            "the fast path accepts what prost-reflect refuses: {body}\n{:?}",
            slow.err().map(|e| e.message)
        );
        fast
    }

    #[test]
    fn a_full_message_is_accepted_by_the_fast_path_itself() {
        let p = schema();
        assert!(agrees(&p, FULL));
        assert!(agrees(&p, "{}"));
        // Proto names are accepted beside JSON names.
        assert!(agrees(&p, r#"{"snake_case_name":"s","by_num":{"1":"x"}}"#));
    }

    #[test]
    fn every_field_with_every_kind_of_value_agrees_with_prost_reflect() {
        let p = schema();
        let full: serde_json::Value = serde_json::from_str(FULL).unwrap();
        let candidates = [
            "null",
            "0",
            "-1",
            "1.5",
            "3.0",
            "1e3",
            "4294967296",
            "-2147483649",
            "18446744073709551615",
            "18446744073709551616",
            "3.5e38",
            "\"1\"",
            "\"-1\"",
            "\"+1\"",
            "\"1.5\"",
            "\"x\"",
            "\"\"",
            "\"NaN\"",
            "\"Infinity\"",
            "\"inf\"",
            "\"RED\"",
            "\"NULL_VALUE\"",
            "\"AAE=\"",
            "\"AAE\"",
            "\"-_8=\"",
            "\"2026-12-04T10:00:00Z\"",
            "\"2026-12-04T10:00:00+01:00\"",
            "\"2026-12-04t10:00:00Z\"",
            "\"0000-01-01T00:00:00Z\"",
            "\"1s\"",
            "true",
            "false",
            "[]",
            "[null]",
            "[1,2]",
            "[\"a\"]",
            "[{}]",
            "{}",
            "{\"name\":\"x\"}",
            "{\"nope\":1}",
            "{\"1\":\"a\"}",
            "{\"x\":{}}",
            "{\"true\":1}",
        ];
        let mut fast_yes = 0;
        let fields: Vec<String> = full.as_object().unwrap().keys().cloned().collect();
        for field in &fields {
            for c in candidates {
                let mut doc = full.clone();
                doc[field.as_str()] = serde_json::from_str(c).unwrap();
                if agrees(&p, &doc.to_string()) {
                    fast_yes += 1;
                }
                // The same value alone, without the rest of the message.
                agrees(&p, &format!("{{\"{field}\":{c}}}"));
            }
        }
        // The path is taken for most well-typed values, not just for none.
        assert!(fast_yes > 200, "fast path accepted only {fast_yes}");
        // A second member of a oneof, keys twice, unknown keys.
        assert!(!agrees(&p, r#"{"left":"a","right":1}"#));
        agrees(&p, r#"{"left":"a","left":"b"}"#);
        assert!(!agrees(&p, r#"{"nope":1}"#));
        assert!(!agrees(&p, r#"[]"#));
    }

    /// A fixed-seed xorshift: the same mutations every run.
    fn rng(seed: u64) -> impl FnMut(usize) -> usize {
        let mut x = seed;
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        }
    }

    #[test]
    fn random_edits_of_a_message_agree_with_prost_reflect() {
        let p = schema();
        let desc = p.message(Some("t.All")).unwrap();
        let mut next = rng(0x5eed_cafe);
        let pieces: [&[u8]; 12] = [
            b"0", b"-", b".", b"e", b"\"", b"[", b"]", b"{", b"}", b"null", b",", b"1",
        ];
        // JSON text: a piece inserted, a byte deleted or replaced, 1-3 times.
        for _ in 0..20_000 {
            let mut text = FULL.as_bytes().to_vec();
            for _ in 0..=next(3) {
                let at = next(text.len());
                match next(3) {
                    0 => {
                        let piece = pieces[next(pieces.len())];
                        text.splice(at..at, piece.iter().copied());
                    }
                    1 => {
                        text.remove(at);
                    }
                    _ => text[at] = pieces[next(pieces.len())][0],
                }
            }
            if let Ok(body) = std::str::from_utf8(&text) {
                agrees(&p, body);
            }
        }
        // Wire bytes: 1-4 random bytes replaced, inserted or removed.
        let bytes = from_json(&desc, FULL.as_bytes()).unwrap().encode_to_vec();
        for _ in 0..20_000 {
            let mut b = bytes.clone();
            for _ in 0..=next(4) {
                let at = next(b.len());
                match next(3) {
                    0 => b[at] = next(256) as u8,
                    1 => b.insert(at, next(256) as u8),
                    _ => {
                        b.remove(at);
                    }
                }
            }
            assert!(
                !p.check.wire(&desc, &b) || decode(&desc, &b).is_ok(),
                "the fast path accepts bytes prost-reflect refuses: {b:?}"
            );
        }
    }

    #[test]
    fn timestamps_are_strict_rfc3339_in_range() {
        for (s, ok) in [
            ("2026-12-04T10:00:00Z", true),
            ("2026-12-04T10:00:00.000000001Z", true),
            ("2026-12-04T10:00:00-05:30", true),
            ("2026-12-04T10:00:00.Z", false),
            ("2026-12-04 10:00:00Z", false),
            ("2026-12-04T10:00Z", false),
            ("2026-12-04T10:00:00+0530", false),
            ("2026-12-04T10:00:00z", false),
            ("2026-12-04T10:00:00Zx", false),
            ("10000-01-01T00:00:00Z", false),
        ] {
            assert_eq!(super::timestamp(s), ok, "{s}");
        }
    }

    #[test]
    fn nesting_deeper_than_the_bound_is_left_to_prost_reflect() {
        let p = schema();
        let mut deep = String::from("{}");
        for _ in 0..80 {
            deep = format!("{{\"child\":{deep}}}");
        }
        assert!(!agrees(&p, &format!("{{\"inner\":{deep}}}")));
        let mut shallow = String::from("{}");
        for _ in 0..10 {
            shallow = format!("{{\"child\":{shallow}}}");
        }
        assert!(agrees(&p, &format!("{{\"inner\":{shallow}}}")));
    }

    #[test]
    fn wire_bytes_agree_with_prost_reflect_whole_truncated_and_corrupted() {
        let p = schema();
        let desc = p.message(Some("t.All")).unwrap();
        // The full message minus what the fast path leaves to prost-reflect
        // on the wire as well as in JSON it does not: all of it is modelled.
        let bytes = from_json(&desc, FULL.as_bytes()).unwrap().encode_to_vec();
        assert!(p.check.wire(&desc, &bytes), "a whole message is accepted");
        let wire_agrees = |b: &[u8]| {
            let fast = p.check.wire(&desc, b);
            assert!(
                !fast || decode(&desc, b).is_ok(),
                "the fast path accepts bytes prost-reflect refuses: {b:?}"
            );
            fast
        };
        for n in 0..bytes.len() {
            wire_agrees(&bytes[..n]);
        }
        for i in 0..bytes.len() {
            for x in [0x01u8, 0x80, 0xff, 0x07, 0x10] {
                let mut b = bytes.clone();
                b[i] ^= x;
                wire_agrees(&b);
            }
        }
        // An undeclared field, a zero field number, a group, a bad varint.
        assert!(!wire_agrees(&[0xf8, 0x7f, 0x01])); // field 2047, varint
        assert!(!wire_agrees(&[0x00, 0x01]));
        assert!(!wire_agrees(&[0x0b, 0x0c]));
        assert!(!wire_agrees(&[
            0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
        ]));
        // Invalid UTF-8 in a string field (14).
        assert!(!wire_agrees(&[0x72, 0x01, 0xff]));
    }
}
