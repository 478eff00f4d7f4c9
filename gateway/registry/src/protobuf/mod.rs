//! Protobuf (`schemaType: "PROTOBUF"`): parsing, the message-index part of
//! Confluent's wire format, validation and the JSON mapping.
//!
//! A schema is one `.proto` file. Clients send it as source text (curl, the
//! Java client) or, as Python's `ProtobufSerializer` does, as a base64
//! `FileDescriptorProto`; Confluent's registry takes both, so we do. Source
//! is compiled with `protox` (a `.proto` compiler in Rust; we write no
//! parser); imports resolve only through the schema's `references` (the
//! reference's `name` is the import path, as Confluent does), the
//! well-known `google/protobuf/*.proto` files and Confluent's bundled
//! `confluent/meta.proto` and `confluent/type/decimal.proto` (the last two
//! need no reference in Confluent's registry either), never the disk. The result
//! is a `prost-reflect` pool, built once per schema: validation decodes
//! payloads as dynamic messages with it, and conversion to JSON uses
//! prost-reflect's implementation of protobuf's JSON mapping.
//!
//! Identity: two submissions are the same schema when their descriptors
//! are (source locations, the file name and JSON names protoc would give
//! anyway left out), so the same file as text and as a descriptor gets one
//! id. A schema registered as a descriptor is read back as `.proto` text,
//! as Confluent answers it.
//!
//! - [`compat`]: Confluent's rules for Protobuf evolution.
//! - [`print`]: `.proto` text from a descriptor.

pub mod check;
pub mod compat;
pub mod print;

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use miette::Diagnostic as _;
use prost::Message as _;
use prost_reflect::{
    DynamicMessage, FileDescriptor, MessageDescriptor, ReflectMessage as _, Value,
};
use prost_types::FileDescriptorProto;
use protox::file::{File, FileResolver, GoogleFileResolver};

/// The name a schema sent as text is compiled under (a client's
/// descriptor keeps its own name).
pub const MAIN_FILE: &str = "schema.proto";

/// How deep validation walks nested messages before giving up: a payload
/// is bounded by the body limit, but recursion is bounded here too.
const MAX_DEPTH: usize = 100;

/// A Protobuf schema, compiled.
pub struct ProtoSchema {
    /// The schema's file, in a pool holding every file it imports.
    pub file: FileDescriptor,
    /// The schema as `.proto` text: as registered when it came as text,
    /// printed from the descriptor when it came as one (what every read
    /// but `format=serialized` answers, as in Confluent).
    pub text: String,
    /// Its `FileDescriptorProto`, base64: what `format=serialized` answers
    /// and what Python's deserializer parses.
    pub serialized: String,
    /// The descriptor without source info or name, base64: identity.
    pub canonical: String,
    /// Its messages compiled for validation's fast path.
    pub check: check::Plan,
}

impl std::fmt::Debug for ProtoSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtoSchema")
            .field("file", &self.file.name())
            .field("messages", &self.message_names())
            .finish_non_exhaustive()
    }
}

/// Confluent's own files, which its registry resolves without references
/// (its serializers import them for `confluent.field_meta` and decimals).
const BUNDLED: [(&str, &str); 2] = [
    (
        "confluent/meta.proto",
        include_str!("bundled/confluent/meta.proto"),
    ),
    (
        "confluent/type/decimal.proto",
        include_str!("bundled/confluent/type/decimal.proto"),
    ),
];

/// Files a schema may import: its references' files, by import path, then
/// the bundled and the well-known ones.
struct References(HashMap<String, FileDescriptorProto>);

impl FileResolver for References {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if let Some(fd) = self.0.get(name) {
            return Ok(File::from_file_descriptor_proto(fd.clone()));
        }
        match BUNDLED.iter().find(|(n, _)| *n == name) {
            Some((n, src)) => File::from_source(n, src),
            None => GoogleFileResolver::new().open_file(name),
        }
    }
}

/// Clears JSON names that are the default for their field, everywhere in
/// the file: protox fills them in, Python's descriptors leave them out, and
/// the two mean the same.
fn drop_default_json_names(fd: &mut FileDescriptorProto) {
    fn fields(f: &mut [prost_types::FieldDescriptorProto]) {
        for f in f {
            let name = f.name.as_deref().unwrap_or("");
            if f.json_name.as_deref() == Some(print::default_json_name(name).as_str()) {
                f.json_name = None;
            }
        }
    }
    fn message(m: &mut prost_types::DescriptorProto) {
        fields(&mut m.field);
        fields(&mut m.extension);
        for n in &mut m.nested_type {
            message(n);
        }
    }
    fields(&mut fd.extension);
    for m in &mut fd.message_type {
        message(m);
    }
}

/// 1-based line and column of a byte offset in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A compile error in words, with the line and column when it points into
/// the schema's own text.
fn describe(e: &protox::Error, text: Option<&str>) -> String {
    let mut out = e.to_string();
    let file = e.file().unwrap_or(MAIN_FILE).to_string();
    if let (Some(text), Some(mut labels)) = (text, e.labels())
        && let Some(label) = labels.next()
        && file == MAIN_FILE
    {
        let (line, col) = line_col(text, label.offset());
        out = format!("{out} (line {line}, column {col})");
    } else if file != MAIN_FILE {
        out = format!("{out} (in {file})");
    }
    out
}

impl ProtoSchema {
    /// Parses `text` (`.proto` source, or a base64 `FileDescriptorProto`)
    /// with `refs`, the referenced schemas by import path.
    pub fn parse(text: &str, refs: &[(String, &ProtoSchema)]) -> Result<ProtoSchema, String> {
        let source = File::from_source(MAIN_FILE, text);
        let (main, name, source_text) = match source {
            Ok(f) => (f, MAIN_FILE.to_string(), Some(text)),
            // A descriptor in base64 is a parse error as source; anything
            // else that fails is reported as the source error it is.
            Err(parse_err) => match descriptor_from_base64(text) {
                Some(mut fd) => {
                    let name = fd
                        .name
                        .clone()
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| MAIN_FILE.to_string());
                    fd.name = Some(name.clone());
                    (File::from_file_descriptor_proto(fd), name, None)
                }
                None => return Err(describe(&parse_err, Some(text))),
            },
        };
        let mut files = HashMap::new();
        for (import, schema) in refs {
            for dep in schema.file.dependencies() {
                files
                    .entry(dep.name().to_string())
                    .or_insert_with(|| dep.file_descriptor_proto().clone());
            }
            let mut fd = schema.file.file_descriptor_proto().clone();
            fd.name = Some(import.clone());
            files.insert(import.clone(), fd);
        }
        files.insert(name.clone(), main.file_descriptor_proto().clone());
        let mut compiler = protox::Compiler::with_file_resolver(References(files));
        compiler.include_imports(true).include_source_info(false);
        compiler
            .open_file(&name)
            .map_err(|e| describe(&e, source_text))?;
        let pool = compiler.descriptor_pool();
        let file = pool
            .get_file_by_name(&name)
            .ok_or_else(|| format!("{name} is missing after compiling it"))?;
        let mut proto = file.file_descriptor_proto().clone();
        proto.source_code_info = None;
        let serialized = BASE64.encode(proto.encode_to_vec());
        let text = match source_text {
            Some(t) => t.to_string(),
            None => print::render(&proto),
        };
        proto.name = None;
        drop_default_json_names(&mut proto);
        let canonical = BASE64.encode(proto.encode_to_vec());
        Ok(ProtoSchema {
            check: check::Plan::new(&pool),
            file,
            text,
            serialized,
            canonical,
        })
    }

    /// Every message of the file, nested ones too, by full name, in
    /// declaration order (the first is the file's first top-level message).
    pub fn message_names(&self) -> Vec<String> {
        fn walk(m: MessageDescriptor, out: &mut Vec<String>) {
            if m.is_map_entry() {
                return;
            }
            out.push(m.full_name().to_string());
            for c in m.child_messages() {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        for m in self.file.messages() {
            walk(m, &mut out);
        }
        out
    }

    /// The message a topic means: `name` (a full name, or one relative to
    /// the file's package), or the file's first message.
    pub fn message(&self, name: Option<&str>) -> Result<MessageDescriptor, String> {
        let available = || self.message_names().join(", ");
        match name {
            None => self
                .file
                .messages()
                .next()
                .ok_or_else(|| "the schema declares no message".to_string()),
            Some(n) => {
                let n = n.trim_start_matches('.');
                let pkg = self.file.package_name();
                // Looked up in the pool, not by listing the file's names:
                // this runs for every event, and the list allocates.
                let pool = self.file.parent_pool();
                let in_file = |full: &str| {
                    pool.get_message_by_name(full)
                        .filter(|m| m.parent_file() == self.file && !m.is_map_entry())
                };
                let found = in_file(n).or_else(|| {
                    if pkg.is_empty() {
                        None
                    } else {
                        in_file(&format!("{pkg}.{n}"))
                    }
                });
                found.ok_or_else(|| {
                    format!("no message {n:?} in the schema; it has: {}", available())
                })
            }
        }
    }

    /// The message a wire-format index array names: top-level message
    /// `idx[0]`, then nested message `idx[1]` inside it, and so on.
    pub fn message_at(&self, idx: &[u64]) -> Result<MessageDescriptor, String> {
        let mut found: Option<MessageDescriptor> = None;
        for (depth, &i) in idx.iter().enumerate() {
            let i = usize::try_from(i).unwrap_or(usize::MAX);
            let next = match &found {
                None => self.file.messages().nth(i),
                Some(m) => m.child_messages().filter(|c| !c.is_map_entry()).nth(i),
            };
            found = Some(next.ok_or_else(|| {
                format!(
                    "message index {i} at depth {depth} of the index array {idx:?} names no \
                     message (the schema has: {})",
                    self.message_names().join(", ")
                )
            })?);
        }
        found.ok_or_else(|| "the message-index array is empty".to_string())
    }

    /// The index array of `m` in this file.
    pub fn index_of(&self, m: &MessageDescriptor) -> Vec<u64> {
        let mut path = Vec::new();
        let mut cur = m.clone();
        loop {
            match cur.parent_message() {
                Some(p) => {
                    let i = p
                        .child_messages()
                        .filter(|c| !c.is_map_entry())
                        .position(|c| c == cur)
                        .unwrap_or(0);
                    path.push(i as u64);
                    cur = p;
                }
                None => {
                    let i = self.file.messages().position(|c| c == cur).unwrap_or(0);
                    path.push(i as u64);
                    break;
                }
            }
        }
        path.reverse();
        path
    }
}

fn descriptor_from_base64(text: &str) -> Option<FileDescriptorProto> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// Why bytes are not a message of their schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoMismatch {
    /// A path into the message (`/items/0/sku`), "" for the whole.
    pub path: String,
    pub message: String,
}

/// Reads the message-index array after the 5-byte header: a zigzag-varint
/// count, then that many zigzag-varint indexes; a single 0 byte is the
/// shortcut for `[0]`. Returns the array and the message bytes.
pub fn split_indexes(rest: &[u8]) -> Result<(Vec<u64>, &[u8]), String> {
    let mut at = 0usize;
    let count = zigzag(rest, &mut at)?;
    if count == 0 {
        return Ok((vec![0], &rest[at..]));
    }
    if count < 0 {
        return Err(format!(
            "the message-index array's length is negative ({count})"
        ));
    }
    // Each index takes at least a byte, so a count past the bytes left is
    // a lie: refuse it before allocating for it.
    let left = rest.len().saturating_sub(at);
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count > left || count > MAX_DEPTH {
        return Err(format!(
            "the message-index array claims {count} entries, more than the {left} bytes left \
             (or the {MAX_DEPTH} nesting levels allowed)"
        ));
    }
    let mut idx = Vec::with_capacity(count);
    for _ in 0..count {
        let i = zigzag(rest, &mut at)?;
        if i < 0 {
            return Err(format!(
                "the message-index array holds a negative index ({i})"
            ));
        }
        idx.push(i as u64);
    }
    Ok((idx, &rest[at..]))
}

fn zigzag(buf: &[u8], at: &mut usize) -> Result<i64, String> {
    let mut v: u64 = 0;
    for shift in 0..10 {
        let Some(&b) = buf.get(*at) else {
            return Err(
                "the message-index array is cut short (a varint runs past the end)".to_string(),
            );
        };
        *at += 1;
        v |= u64::from(b & 0x7f) << (shift * 7);
        if b & 0x80 == 0 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err("a varint in the message-index array is longer than 10 bytes".to_string())
}

/// The wire-format index array of `idx`, as Confluent's serializers write it.
pub fn encode_indexes(idx: &[u64]) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    let mut out = Vec::new();
    if idx == [0] {
        out.push(0);
        return out;
    }
    put(&mut out, idx.len() as i64);
    for &i in idx {
        put(&mut out, i as i64);
    }
    out
}

/// Decodes `bytes` as message `desc`, refusing fields the schema does not
/// declare (anywhere in the message): data that claims a schema must be
/// that schema's.
pub fn decode(desc: &MessageDescriptor, bytes: &[u8]) -> Result<DynamicMessage, ProtoMismatch> {
    let msg = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| ProtoMismatch {
        path: String::new(),
        message: format!("not a valid {} message: {e}", desc.full_name()),
    })?;
    known(&msg, 0).map_err(Unknown::into_mismatch)?;
    Ok(msg)
}

/// Why a message is not its schema's, with the path from the failing
/// value up; segments are pushed on the way out so the path is built only
/// for a failure (this walk runs for every event).
struct Unknown {
    /// Path segments, innermost first.
    segments: Vec<String>,
    message: String,
}

impl Unknown {
    fn at(mut self, segment: impl Into<String>) -> Unknown {
        self.segments.push(segment.into());
        self
    }

    fn into_mismatch(self) -> ProtoMismatch {
        let mut path = String::new();
        for s in self.segments.iter().rev() {
            path.push('/');
            path.push_str(s);
        }
        ProtoMismatch {
            path,
            message: self.message,
        }
    }
}

fn known(msg: &DynamicMessage, depth: usize) -> Result<(), Unknown> {
    if depth > MAX_DEPTH {
        return Err(Unknown {
            segments: Vec::new(),
            message: format!("messages nest deeper than {MAX_DEPTH} levels"),
        });
    }
    if let Some(u) = msg.unknown_fields().next() {
        return Err(Unknown {
            segments: Vec::new(),
            message: format!(
                "field number {} is not declared in {}",
                u.number(),
                msg.descriptor().full_name()
            ),
        });
    }
    for (f, v) in msg.fields() {
        known_value(v, depth).map_err(|e| e.at(f.name()))?;
    }
    Ok(())
}

fn known_value(v: &Value, depth: usize) -> Result<(), Unknown> {
    match v {
        Value::Message(m) => known(m, depth + 1),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                known_value(item, depth).map_err(|e| e.at(i.to_string()))?;
            }
            Ok(())
        }
        Value::Map(entries) => {
            for (k, item) in entries {
                known_value(item, depth).map_err(|e| {
                    e.at(match k {
                        prost_reflect::MapKey::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    })
                })?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Parses protobuf's JSON mapping of message `desc` (unknown names refused).
pub fn from_json(desc: &MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, ProtoMismatch> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let msg = DynamicMessage::deserialize(desc.clone(), &mut de).map_err(|e| ProtoMismatch {
        path: String::new(),
        message: format!("not the JSON form of {}: {e}", desc.full_name()),
    })?;
    de.end().map_err(|e| ProtoMismatch {
        path: String::new(),
        message: format!("trailing data after the JSON message: {e}"),
    })?;
    Ok(msg)
}

/// Validates protobuf's JSON mapping of `desc`, a message of `schema`:
/// [`check`]'s walk of the parsed document when that is sure, otherwise
/// (and for every refusal, so its message is prost-reflect's) [`from_json`].
pub fn validate_json(
    schema: &ProtoSchema,
    desc: &MessageDescriptor,
    body: &[u8],
) -> Result<(), ProtoMismatch> {
    if let Ok(doc) = sonic_rs::from_slice::<sonic_rs::Value>(body)
        && schema.check.json(desc, &doc)
    {
        return Ok(());
    }
    from_json(desc, body).map(drop)
}

/// Validates the wire bytes of `desc`, a message of `schema`, every field
/// declared: [`check`]'s walk when that is sure, otherwise [`decode`].
pub fn validate_wire(
    schema: &ProtoSchema,
    desc: &MessageDescriptor,
    bytes: &[u8],
) -> Result<(), ProtoMismatch> {
    if schema.check.wire(desc, bytes) {
        return Ok(());
    }
    decode(desc, bytes).map(drop)
}

/// A message in protobuf's JSON mapping.
pub fn to_json(msg: &DynamicMessage) -> Result<Vec<u8>, String> {
    serde_json::to_vec(msg).map_err(|e| format!("can't write the message as JSON: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ORDER: &str = r#"syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int32 qty = 2;
  repeated Item items = 3;
  message Item { string sku = 1; }
}
message Refund { string order_id = 1; }
"#;

    fn schema(text: &str) -> ProtoSchema {
        ProtoSchema::parse(text, &[]).unwrap()
    }

    #[test]
    fn messages_are_found_by_name_by_index_and_by_default() {
        let s = schema(ORDER);
        assert_eq!(
            s.message_names(),
            ["shop.Order", "shop.Order.Item", "shop.Refund"]
        );
        assert_eq!(s.message(None).unwrap().full_name(), "shop.Order");
        assert_eq!(
            s.message(Some("Refund")).unwrap().full_name(),
            "shop.Refund"
        );
        assert_eq!(
            s.message(Some("shop.Order.Item")).unwrap().full_name(),
            "shop.Order.Item"
        );
        let e = s.message(Some("shop.Nope")).unwrap_err();
        assert!(
            e.contains("shop.Order, shop.Order.Item, shop.Refund"),
            "{e}"
        );
        assert_eq!(
            s.message_at(&[0, 0]).unwrap().full_name(),
            "shop.Order.Item"
        );
        assert_eq!(s.message_at(&[1]).unwrap().full_name(), "shop.Refund");
        assert!(s.message_at(&[2]).is_err());
        let item = s.message(Some("Order.Item")).unwrap();
        assert_eq!(s.index_of(&item), vec![0, 0]);
    }

    #[test]
    fn a_parse_error_names_line_and_column() {
        let e = ProtoSchema::parse("syntax = \"proto3\";\nmessage A {\n  int32 = 1;\n}\n", &[])
            .unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("column"), "{e}");
        let e = ProtoSchema::parse(
            "syntax = \"proto3\";\nimport \"other.proto\";\nmessage A { Other o = 1; }\n",
            &[],
        )
        .unwrap_err();
        assert!(e.contains("other.proto"), "{e}");
    }

    #[test]
    fn text_and_descriptor_forms_are_one_schema_and_imports_resolve_by_reference() {
        let a = schema(ORDER);
        let b = ProtoSchema::parse(&a.serialized, &[]).unwrap();
        assert_eq!(a.canonical, b.canonical);
        let money =
            schema("syntax = \"proto3\";\npackage m;\nmessage Money { int64 cents = 1; }\n");
        let refs = vec![("money.proto".to_string(), &money)];
        let c = ProtoSchema::parse(
            "syntax = \"proto3\";\nimport \"money.proto\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Pay { m.Money amount = 1; google.protobuf.Timestamp at = 2; }\n",
            &refs,
        )
        .unwrap();
        assert_eq!(c.message(None).unwrap().full_name(), "Pay");
    }

    #[test]
    fn a_descriptor_reads_back_as_proto_text_and_is_the_same_schema_as_that_text() {
        // As Python's serializer sends it: no JSON names, its own file name.
        let mut fd = schema(ORDER).file.file_descriptor_proto().clone();
        fd.name = Some("shop/order.proto".into());
        fn strip(m: &mut prost_types::DescriptorProto) {
            m.field.iter_mut().for_each(|f| f.json_name = None);
            m.nested_type.iter_mut().for_each(strip);
        }
        fd.message_type.iter_mut().for_each(strip);
        let b64 = BASE64.encode(fd.encode_to_vec());
        let from_descriptor = ProtoSchema::parse(&b64, &[]).unwrap();
        assert!(
            from_descriptor
                .text
                .starts_with("syntax = \"proto3\";\npackage shop;"),
            "{}",
            from_descriptor.text
        );
        assert!(
            from_descriptor
                .text
                .contains("repeated .shop.Order.Item items = 3;")
        );
        let from_text = ProtoSchema::parse(&from_descriptor.text, &[]).unwrap();
        assert_eq!(from_descriptor.canonical, from_text.canonical);
        assert_eq!(from_text.canonical, schema(ORDER).canonical);
        assert_eq!(schema(ORDER).text, ORDER);
    }

    #[test]
    fn confluents_bundled_files_and_well_known_types_need_no_reference() {
        let s = schema(
            "syntax = \"proto3\";\nimport \"confluent/meta.proto\";\nimport \"confluent/type/decimal.proto\";\nimport \"google/protobuf/any.proto\";\nmessage Price {\n  confluent.type.Decimal amount = 1 [(confluent.field_meta) = { doc: \"in euros\" }];\n  google.protobuf.Any extra = 2;\n}\n",
        );
        let price = s.message(None).unwrap();
        assert_eq!(
            price
                .get_field_by_name("amount")
                .unwrap()
                .kind()
                .as_message()
                .unwrap()
                .full_name(),
            "confluent.type.Decimal"
        );
    }

    #[test]
    fn index_arrays_read_the_shortcut_and_refuse_lies() {
        assert_eq!(split_indexes(&[0, 9]).unwrap(), (vec![0], &[9u8][..]));
        let enc = encode_indexes(&[1, 0]);
        assert_eq!(split_indexes(&enc).unwrap().0, vec![1, 0]);
        assert!(split_indexes(&[]).is_err());
        // A count of 1,000,000 with two bytes behind it.
        assert!(split_indexes(&[0x80, 0x89, 0x7a, 0, 0]).is_err());
        // A varint that never ends.
        assert!(split_indexes(&[0xff; 12]).is_err());
        // A negative count (zigzag 1 is -1).
        assert!(split_indexes(&[1]).is_err());
    }

    #[test]
    fn decoding_refuses_undeclared_fields_and_json_maps_both_ways() {
        let s = schema(ORDER);
        let order = s.message(None).unwrap();
        let msg = from_json(&order, br#"{"id":"o1","qty":3,"items":[{"sku":"a"}]}"#).unwrap();
        let bytes = msg.encode_to_vec();
        let back = decode(&order, &bytes).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&to_json(&back).unwrap()).unwrap();
        assert_eq!(json["items"][0]["sku"], "a");
        // Field 9, varint 1: not in Order.
        let mut extra = bytes.clone();
        extra.extend_from_slice(&[0x48, 0x01]);
        let e = decode(&order, &extra).unwrap_err();
        assert!(e.message.contains("field number 9"), "{}", e.message);
        assert!(decode(&order, &[0x0a, 0x05, b'x']).is_err());
        // The same inside items[1]: the path leads to it.
        let nested = [
            0x1a, 0x03, 0x0a, 0x01, b'a', 0x1a, 0x05, 0x0a, 0x01, b'b', 0x48, 0x01,
        ];
        let e = decode(&order, &nested).unwrap_err();
        assert_eq!(e.path, "/items/1", "{}", e.message);
        assert!(e.message.contains("shop.Order.Item"), "{}", e.message);
        assert!(from_json(&order, br#"{"nope":1}"#).is_err());
        assert!(from_json(&order, br#"{"qty":"many"}"#).is_err());
    }
}
