//! `.proto` source text from a `FileDescriptorProto`.
//!
//! Python's `ProtobufSerializer` registers its schema as a base64 descriptor;
//! Confluent's registry keeps it and answers `.proto` text on every read
//! except `format=serialized`, so clients, the console and people reading
//! `GET /schemas/ids/N` see the same thing whichever way a schema came in.
//! No maintained crate prints descriptors back to source (protox and
//! prost-reflect go the other way), so this is a small printer over what a
//! descriptor holds: syntax, package, imports, the file options people set,
//! messages (nested), enums, oneofs, maps, labels, defaults, reserved and
//! extension ranges, extensions and services. Type names are printed fully
//! qualified with their leading dot, so the text resolves to exactly the
//! descriptor's types whatever else is in scope. The printer's contract is
//! tested by compiling its output again and comparing descriptors. Options
//! set through extensions (`[(confluent.field_meta) = {...}]`) are not
//! printed: prost's descriptor types drop them as unknown fields.

use std::fmt::Write as _;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    ServiceDescriptorProto,
};

/// The highest field number, printed `max` in ranges.
const MAX_FIELD: i32 = 536_870_911;

/// `fd` as `.proto` source.
pub fn render(fd: &FileDescriptorProto) -> String {
    let mut out = String::new();
    let syntax = fd
        .syntax
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("proto2");
    let proto3 = syntax == "proto3";
    let _ = writeln!(out, "syntax = {};", quote(syntax));
    if let Some(p) = fd.package.as_deref().filter(|p| !p.is_empty()) {
        let _ = writeln!(out, "package {p};");
    }
    if !fd.dependency.is_empty() {
        out.push('\n');
    }
    for (i, dep) in fd.dependency.iter().enumerate() {
        let i = i32::try_from(i).unwrap_or(i32::MAX);
        let kind = if fd.public_dependency.contains(&i) {
            "public "
        } else if fd.weak_dependency.contains(&i) {
            "weak "
        } else {
            ""
        };
        let _ = writeln!(out, "import {kind}{};", quote(dep));
    }
    let options = file_options(fd);
    if !options.is_empty() {
        out.push('\n');
    }
    for o in options {
        let _ = writeln!(out, "option {o};");
    }
    for m in &fd.message_type {
        out.push('\n');
        message(&mut out, m, proto3, 0);
    }
    for e in &fd.enum_type {
        out.push('\n');
        enumeration(&mut out, e, 0);
    }
    extensions(&mut out, &fd.extension, proto3, 0);
    for s in &fd.service {
        out.push('\n');
        service(&mut out, s);
    }
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// A string literal: printable ASCII as is, everything else escaped.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for b in s.bytes() {
        push_escaped(&mut q, b);
    }
    q.push('"');
    q
}

fn push_escaped(q: &mut String, b: u8) {
    match b {
        b'"' => q.push_str("\\\""),
        b'\\' => q.push_str("\\\\"),
        b'\n' => q.push_str("\\n"),
        b'\r' => q.push_str("\\r"),
        b'\t' => q.push_str("\\t"),
        0x20..=0x7e => q.push(b as char),
        _ => {
            let _ = write!(q, "\\{b:03o}");
        }
    }
}

/// The file options that are plain values; options set by extension
/// (uninterpreted ones) are not kept in a compiled descriptor's fields and
/// are left out.
fn file_options(fd: &FileDescriptorProto) -> Vec<String> {
    let Some(o) = &fd.options else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let strings = [
        ("java_package", &o.java_package),
        ("java_outer_classname", &o.java_outer_classname),
        ("go_package", &o.go_package),
        ("objc_class_prefix", &o.objc_class_prefix),
        ("csharp_namespace", &o.csharp_namespace),
        ("swift_prefix", &o.swift_prefix),
        ("php_class_prefix", &o.php_class_prefix),
        ("php_namespace", &o.php_namespace),
        ("php_metadata_namespace", &o.php_metadata_namespace),
        ("ruby_package", &o.ruby_package),
    ];
    for (name, v) in strings {
        if let Some(v) = v {
            out.push(format!("{name} = {}", quote(v)));
        }
    }
    let bools = [
        ("java_multiple_files", o.java_multiple_files),
        ("java_string_check_utf8", o.java_string_check_utf8),
        ("cc_generic_services", o.cc_generic_services),
        ("java_generic_services", o.java_generic_services),
        ("py_generic_services", o.py_generic_services),
        ("deprecated", o.deprecated),
        ("cc_enable_arenas", o.cc_enable_arenas),
    ];
    for (name, v) in bools {
        if let Some(v) = v {
            out.push(format!("{name} = {v}"));
        }
    }
    if let Some(v) = o.optimize_for {
        let mode = match v {
            2 => "CODE_SIZE",
            3 => "LITE_RUNTIME",
            _ => "SPEED",
        };
        out.push(format!("optimize_for = {mode}"));
    }
    out
}

fn scalar_name(t: Type) -> &'static str {
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
        // Named types print their `type_name`; these never reach here.
        Type::Group | Type::Message | Type::Enum => "bytes",
    }
}

/// A field's type as source: a scalar keyword or the type's full name.
fn type_of(f: &FieldDescriptorProto) -> String {
    match f.type_name.as_deref() {
        Some(n) if !n.is_empty() => qualified(n),
        _ => scalar_name(f.r#type()).to_string(),
    }
}

/// A full type name with its leading dot (descriptors from some tools
/// leave it off, but names in a descriptor are always fully qualified).
fn qualified(n: &str) -> String {
    if n.starts_with('.') {
        n.to_string()
    } else {
        format!(".{n}")
    }
}

/// The JSON name protoc gives a field: lowerCamelCase of its name.
pub(crate) fn default_json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The `[...]` options of a field, in source form.
fn field_options(f: &FieldDescriptorProto) -> String {
    let mut opts = Vec::new();
    if let Some(d) = &f.default_value {
        let v = match f.r#type() {
            Type::String => quote(d),
            // Already C-escaped in the descriptor.
            Type::Bytes => format!("\"{d}\""),
            // Numbers, `inf`/`nan`, booleans and enum value names as they are.
            _ => d.clone(),
        };
        opts.push(format!("default = {v}"));
    }
    let name = f.name.as_deref().unwrap_or("");
    if let Some(j) = &f.json_name
        && *j != default_json_name(name)
    {
        opts.push(format!("json_name = {}", quote(j)));
    }
    if let Some(o) = &f.options {
        if let Some(p) = o.packed {
            opts.push(format!("packed = {p}"));
        }
        if let Some(d) = o.deprecated {
            opts.push(format!("deprecated = {d}"));
        }
        if let Some(l) = o.lazy {
            opts.push(format!("lazy = {l}"));
        }
        if let Some(j) = o.jstype {
            let v = match j {
                1 => "JS_STRING",
                2 => "JS_NUMBER",
                _ => "JS_NORMAL",
            };
            opts.push(format!("jstype = {v}"));
        }
        if let Some(c) = o.ctype {
            let v = match c {
                1 => "CORD",
                2 => "STRING_PIECE",
                _ => "STRING",
            };
            opts.push(format!("ctype = {v}"));
        }
    }
    if opts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", opts.join(", "))
    }
}

/// The map entry type a field points at, when it is a map.
fn map_entry<'a>(m: &'a DescriptorProto, f: &FieldDescriptorProto) -> Option<&'a DescriptorProto> {
    if f.label() != Label::Repeated || f.r#type() != Type::Message {
        return None;
    }
    let simple = f.type_name.as_deref()?.rsplit('.').next()?;
    m.nested_type.iter().find(|n| {
        n.name.as_deref() == Some(simple)
            && n.options.as_ref().and_then(|o| o.map_entry) == Some(true)
    })
}

/// One field line (or a group with its body). `in_oneof` fields take no label.
fn field(
    out: &mut String,
    parent: Option<&DescriptorProto>,
    f: &FieldDescriptorProto,
    proto3: bool,
    in_oneof: bool,
    depth: usize,
) {
    let name = f.name.as_deref().unwrap_or("");
    let number = f.number.unwrap_or(0);
    indent(out, depth);
    if let Some(entry) = parent.and_then(|m| map_entry(m, f)) {
        let key = entry.field.iter().find(|x| x.number == Some(1));
        let value = entry.field.iter().find(|x| x.number == Some(2));
        let (k, v) = (
            key.map(type_of).unwrap_or_default(),
            value.map(type_of).unwrap_or_default(),
        );
        let _ = writeln!(out, "map<{k}, {v}> {name} = {number}{};", field_options(f));
        return;
    }
    let label = if in_oneof {
        ""
    } else {
        match f.label() {
            Label::Repeated => "repeated ",
            Label::Required => "required ",
            Label::Optional if !proto3 || f.proto3_optional == Some(true) => "optional ",
            Label::Optional => "",
        }
    };
    if f.r#type() == Type::Group {
        // A group is a field and a nested type of the same name at once.
        let ty = f.type_name.as_deref().unwrap_or("");
        let simple = ty.rsplit('.').next().unwrap_or(ty);
        let _ = writeln!(
            out,
            "{label}group {simple} = {number}{} {{",
            field_options(f)
        );
        if let Some(g) = parent.and_then(|m| {
            m.nested_type
                .iter()
                .find(|n| n.name.as_deref() == Some(simple))
        }) {
            message_body(out, g, proto3, depth + 1);
        }
        indent(out, depth);
        out.push_str("}\n");
        return;
    }
    let _ = writeln!(
        out,
        "{label}{} {name} = {number}{};",
        type_of(f),
        field_options(f)
    );
}

fn range_end(end_inclusive: i32) -> String {
    if end_inclusive >= MAX_FIELD {
        "max".to_string()
    } else {
        end_inclusive.to_string()
    }
}

fn ranges(pairs: impl Iterator<Item = (i32, i32)>) -> String {
    pairs
        .map(|(s, e)| {
            if s == e {
                s.to_string()
            } else {
                format!("{s} to {}", range_end(e))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn message(out: &mut String, m: &DescriptorProto, proto3: bool, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "message {} {{", m.name.as_deref().unwrap_or(""));
    message_body(out, m, proto3, depth + 1);
    indent(out, depth);
    out.push_str("}\n");
}

fn message_body(out: &mut String, m: &DescriptorProto, proto3: bool, depth: usize) {
    if let Some(o) = &m.options {
        for (name, v) in [
            ("message_set_wire_format", o.message_set_wire_format),
            (
                "no_standard_descriptor_accessor",
                o.no_standard_descriptor_accessor,
            ),
            ("deprecated", o.deprecated),
        ] {
            if let Some(v) = v {
                indent(out, depth);
                let _ = writeln!(out, "option {name} = {v};");
            }
        }
    }
    // A oneof is printed where its first field stands; a proto3 `optional`
    // field's synthetic oneof is not printed at all (the label says it).
    let synthetic = |i: i32| {
        m.field
            .iter()
            .any(|f| f.oneof_index == Some(i) && f.proto3_optional == Some(true))
    };
    let mut printed_oneofs = Vec::new();
    for f in &m.field {
        match f.oneof_index {
            Some(i) if !synthetic(i) => {
                if printed_oneofs.contains(&i) {
                    continue;
                }
                printed_oneofs.push(i);
                let name = usize::try_from(i)
                    .ok()
                    .and_then(|i| m.oneof_decl.get(i))
                    .and_then(|o| o.name.as_deref())
                    .unwrap_or("");
                indent(out, depth);
                let _ = writeln!(out, "oneof {name} {{");
                for g in m.field.iter().filter(|g| g.oneof_index == Some(i)) {
                    field(out, Some(m), g, proto3, true, depth + 1);
                }
                indent(out, depth);
                out.push_str("}\n");
            }
            _ => field(out, Some(m), f, proto3, false, depth),
        }
    }
    // Oneofs with no field (possible in a hand-built descriptor) are
    // dropped: source can't spell them.
    let groups: Vec<&str> = m
        .field
        .iter()
        .filter(|f| f.r#type() == Type::Group)
        .filter_map(|f| f.type_name.as_deref())
        .filter_map(|t| t.rsplit('.').next())
        .collect();
    for n in &m.nested_type {
        let is_map = n.options.as_ref().and_then(|o| o.map_entry) == Some(true);
        let is_group = n.name.as_deref().is_some_and(|x| groups.contains(&x));
        if !is_map && !is_group {
            message(out, n, proto3, depth);
        }
    }
    for e in &m.enum_type {
        enumeration(out, e, depth);
    }
    extensions(out, &m.extension, proto3, depth);
    if !m.extension_range.is_empty() {
        indent(out, depth);
        let r = ranges(
            m.extension_range
                .iter()
                .map(|r| (r.start.unwrap_or(0), r.end.unwrap_or(0) - 1)),
        );
        let _ = writeln!(out, "extensions {r};");
    }
    if !m.reserved_range.is_empty() {
        indent(out, depth);
        let r = ranges(
            m.reserved_range
                .iter()
                .map(|r| (r.start.unwrap_or(0), r.end.unwrap_or(0) - 1)),
        );
        let _ = writeln!(out, "reserved {r};");
    }
    if !m.reserved_name.is_empty() {
        indent(out, depth);
        let names: Vec<String> = m.reserved_name.iter().map(|n| quote(n)).collect();
        let _ = writeln!(out, "reserved {};", names.join(", "));
    }
}

/// `extend` blocks, one per extended type, in first-seen order.
fn extensions(out: &mut String, exts: &[FieldDescriptorProto], proto3: bool, depth: usize) {
    let mut extendees: Vec<&str> = Vec::new();
    for e in exts {
        let x = e.extendee.as_deref().unwrap_or("");
        if !extendees.contains(&x) {
            extendees.push(x);
        }
    }
    for x in extendees {
        if depth == 0 {
            out.push('\n');
        }
        indent(out, depth);
        let _ = writeln!(out, "extend {} {{", qualified(x));
        for e in exts
            .iter()
            .filter(|e| e.extendee.as_deref().unwrap_or("") == x)
        {
            field(out, None, e, proto3, false, depth + 1);
        }
        indent(out, depth);
        out.push_str("}\n");
    }
}

fn enumeration(out: &mut String, e: &EnumDescriptorProto, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "enum {} {{", e.name.as_deref().unwrap_or(""));
    if let Some(o) = &e.options {
        for (name, v) in [("allow_alias", o.allow_alias), ("deprecated", o.deprecated)] {
            if let Some(v) = v {
                indent(out, depth + 1);
                let _ = writeln!(out, "option {name} = {v};");
            }
        }
    }
    for v in &e.value {
        indent(out, depth + 1);
        let deprecated = v
            .options
            .as_ref()
            .and_then(|o| o.deprecated)
            .map(|d| format!(" [deprecated = {d}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} = {}{deprecated};",
            v.name.as_deref().unwrap_or(""),
            v.number.unwrap_or(0)
        );
    }
    if !e.reserved_range.is_empty() {
        indent(out, depth + 1);
        // Enum ranges are inclusive at both ends.
        let r = ranges(
            e.reserved_range
                .iter()
                .map(|r| (r.start.unwrap_or(0), r.end.unwrap_or(0))),
        );
        let _ = writeln!(out, "reserved {r};");
    }
    if !e.reserved_name.is_empty() {
        indent(out, depth + 1);
        let names: Vec<String> = e.reserved_name.iter().map(|n| quote(n)).collect();
        let _ = writeln!(out, "reserved {};", names.join(", "));
    }
    indent(out, depth);
    out.push_str("}\n");
}

fn service(out: &mut String, s: &ServiceDescriptorProto) {
    let _ = writeln!(out, "service {} {{", s.name.as_deref().unwrap_or(""));
    for m in &s.method {
        let stream = |b: Option<bool>| if b == Some(true) { "stream " } else { "" };
        let _ = writeln!(
            out,
            "  rpc {}({}{}) returns ({}{});",
            m.name.as_deref().unwrap_or(""),
            stream(m.client_streaming),
            qualified(m.input_type.as_deref().unwrap_or("")),
            stream(m.server_streaming),
            qualified(m.output_type.as_deref().unwrap_or("")),
        );
    }
    out.push_str("}\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::ProtoSchema;
    use super::*;

    /// Compiles `text`, prints its descriptor, compiles the print, and
    /// checks both compile to one descriptor.
    fn round_trip(text: &str) -> String {
        let a = ProtoSchema::parse(text, &[]).unwrap();
        let printed = render(a.file.file_descriptor_proto());
        let b = ProtoSchema::parse(&printed, &[])
            .unwrap_or_else(|e| panic!("the printed source does not compile: {e}\n{printed}"));
        assert_eq!(a.canonical, b.canonical, "descriptors differ:\n{printed}");
        printed
    }

    #[test]
    fn proto3_with_everything_a_message_holds_prints_and_recompiles_to_itself() {
        let printed = round_trip(
            r#"syntax = "proto3";
package shop.v1;
import "google/protobuf/timestamp.proto";
option go_package = "example.com/shop";
option java_multiple_files = true;
message Order {
  string id = 1;
  optional int32 qty = 2 [deprecated = true];
  repeated Item items = 3;
  map<string, int64> totals = 4;
  oneof payment { string card = 5; bytes token = 6; }
  google.protobuf.Timestamp at = 7;
  Status status = 8;
  string odd_name = 9 [json_name = "weird"];
  repeated int32 packed_off = 10 [packed = false];
  message Item { string sku = 1; map<int32, Item> children = 2; }
  enum Status { option allow_alias = true; NEW = 0; OPEN = 1; STARTED = 1; reserved 5 to 9, 20; reserved "OLD"; }
  reserved 15, 100 to max;
  reserved "gone", "also_gone";
}
enum Top { TOP_UNKNOWN = 0; }
service Shop { rpc Place(Order) returns (stream Order); }
"#,
        );
        assert!(
            printed.contains("map<string, int64> totals = 4;"),
            "{printed}"
        );
        assert!(printed.contains("optional int32 qty = 2"), "{printed}");
        assert!(printed.contains("oneof payment {"), "{printed}");
        assert!(
            printed.contains("import \"google/protobuf/timestamp.proto\";"),
            "{printed}"
        );
    }

    #[test]
    fn proto2_labels_defaults_groups_and_extensions_print_and_recompile() {
        round_trip(
            r#"syntax = "proto2";
package legacy;
message Old {
  required string id = 1;
  optional string note = 2 [default = "a \"quoted\"\n value"];
  optional bytes raw = 3 [default = "\001\377"];
  optional Kind kind = 4 [default = B];
  optional double ratio = 5 [default = -1.5];
  repeated group Line = 6 { required int32 n = 7; }
  extensions 100 to 199, 1000 to max;
  enum Kind { A = 1; B = 2; }
}
extend Old { optional int32 extra = 100; }
message Holder { extend Old { optional string more = 101; } }
"#,
        );
    }

    #[test]
    fn a_descriptor_without_syntax_or_json_names_prints_as_proto2() {
        let fd = FileDescriptorProto {
            name: Some("x.proto".into()),
            message_type: vec![DescriptorProto {
                name: Some("X".into()),
                field: vec![FieldDescriptorProto {
                    name: Some("a_b".into()),
                    number: Some(1),
                    label: Some(Label::Optional as i32),
                    r#type: Some(Type::Int32 as i32),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            render(&fd),
            "syntax = \"proto2\";\n\nmessage X {\n  optional int32 a_b = 1;\n}\n"
        );
    }
}
