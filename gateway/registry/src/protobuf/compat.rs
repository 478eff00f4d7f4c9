//! Whether a reader `.proto` reads what a writer `.proto` wrote: Confluent's
//! rules for Protobuf evolution, with its names for each kind of
//! difference. A backward check asks it of (old, new), a forward one of
//! (new, old).
//!
//! Protobuf data carries field numbers and wire types, not names, so the
//! rules are about those. Messages are matched by full name, fields by
//! number, and every message of the file is compared (nested ones too):
//! - `PACKAGE_CHANGED`: the package differs (every full name moves);
//! - `MESSAGE_REMOVED`: a writer message the reader lacks (adding one is fine);
//! - `FIELD_KIND_CHANGED`: scalar vs message vs enum; `FIELD_SCALAR_KIND_CHANGED`:
//!   a scalar type outside the writer's wire-compatible group ({int32,
//!   uint32, int64, uint64, bool}, {sint32, sint64}, {fixed32, sfixed32},
//!   {fixed64, sfixed64}, {string, bytes}); `FIELD_NAMED_TYPE_CHANGED`: a
//!   message or enum field now of another type;
//! - `FIELD_NUMERIC_LABEL_CHANGED`: singular to repeated (or back) for a
//!   numeric field, whose packed encoding the other side misreads (string,
//!   bytes and message fields may change, as Confluent allows);
//! - `REQUIRED_FIELD_ADDED` / `REQUIRED_FIELD_REMOVED` (proto2 `required`);
//! - `ONEOF_FIELD_REMOVED`: a member leaves a oneof the reader still has;
//!   `FIELD_MOVED_TO_EXISTING_ONEOF`: a field joins a oneof the writer
//!   already had; `MULTIPLE_FIELDS_MOVED_TO_ONEOF`: two or more fields of
//!   the writer become one new oneof (setting one now clears the others);
//! - `RESERVED_FIELD_REUSED` (ours, not Confluent's): the reader uses a
//!   number the writer reserved, which old data may still hold with
//!   another meaning.
//!
//! Fine, as in Confluent: fields added or removed, renamed fields, new
//! messages and enums, enum values added or removed, oneofs added or
//! removed as a whole, and a change of `syntax` (proto2 and proto3 write the
//! same bytes; what differs, `required`, is checked field by field).

use std::collections::HashMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::compat::Incompatibility;

use super::ProtoSchema;

/// Every way `reader` fails to read data written with `writer`.
pub fn can_read(writer: &ProtoSchema, reader: &ProtoSchema) -> Vec<Incompatibility> {
    let mut out = Vec::new();
    let (wp, rp) = (writer.file.package_name(), reader.file.package_name());
    if wp != rp {
        out.push(Incompatibility {
            kind: "PACKAGE_CHANGED",
            path: "#/".into(),
            message: format!("The package changed from {wp:?} to {rp:?}"),
        });
        return out;
    }
    let readers: HashMap<String, MessageDescriptor> = all_messages(reader)
        .into_iter()
        .map(|m| (m.full_name().to_string(), m))
        .collect();
    for w in all_messages(writer) {
        match readers.get(w.full_name()) {
            None => out.push(Incompatibility {
                kind: "MESSAGE_REMOVED",
                path: format!("#/{}", w.full_name()),
                message: format!("The message {} was removed", w.full_name()),
            }),
            Some(r) => message(&w, r, &mut out),
        }
    }
    out
}

fn all_messages(s: &ProtoSchema) -> Vec<MessageDescriptor> {
    fn walk(m: MessageDescriptor, out: &mut Vec<MessageDescriptor>) {
        if m.is_map_entry() {
            return;
        }
        for c in m.child_messages() {
            walk(c, out);
        }
        out.push(m);
    }
    let mut out = Vec::new();
    for m in s.file.messages() {
        walk(m, &mut out);
    }
    out
}

fn push(out: &mut Vec<Incompatibility>, kind: &'static str, path: String, message: String) {
    out.push(Incompatibility {
        kind,
        path,
        message,
    });
}

/// Wire-compatible groups of scalar types.
fn group(k: &Kind) -> Option<u8> {
    Some(match k {
        Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool => 0,
        Kind::Sint32 | Kind::Sint64 => 1,
        Kind::Fixed32 | Kind::Sfixed32 => 2,
        Kind::Fixed64 | Kind::Sfixed64 => 3,
        Kind::String | Kind::Bytes => 4,
        Kind::Float => 5,
        Kind::Double => 6,
        Kind::Message(_) | Kind::Enum(_) => return None,
    })
}

fn kind_name(k: &Kind) -> String {
    match k {
        Kind::Message(m) => format!("message {}", m.full_name()),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// Oneof membership of a field: the oneof's name, synthetic ones (proto3
/// `optional`) left out.
fn oneof_of(f: &FieldDescriptor) -> Option<String> {
    f.containing_oneof()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.name().to_string())
}

fn message(w: &MessageDescriptor, r: &MessageDescriptor, out: &mut Vec<Incompatibility>) {
    let at = |f: &FieldDescriptor| format!("#/{}/{}", w.full_name(), f.number());
    for wf in w.fields() {
        let Some(rf) = r.get_field(wf.number()) else {
            if wf.is_required() {
                push(
                    out,
                    "REQUIRED_FIELD_REMOVED",
                    at(&wf),
                    format!("The required field {} was removed", wf.full_name()),
                );
            }
            continue;
        };
        let (wk, rk) = (wf.kind(), rf.kind());
        match (group(&wk), group(&rk)) {
            (Some(a), Some(b)) if a != b => push(
                out,
                "FIELD_SCALAR_KIND_CHANGED",
                at(&wf),
                format!(
                    "The type of field {} changed from {} to {}, which is not wire-compatible",
                    wf.full_name(),
                    kind_name(&wk),
                    kind_name(&rk)
                ),
            ),
            (Some(_), Some(_)) => {}
            (None, None) => {
                let (wn, rn) = (kind_name(&wk), kind_name(&rk));
                let same_kind = matches!(
                    (&wk, &rk),
                    (Kind::Message(_), Kind::Message(_)) | (Kind::Enum(_), Kind::Enum(_))
                );
                if !same_kind {
                    push(
                        out,
                        "FIELD_KIND_CHANGED",
                        at(&wf),
                        format!("The field {} changed from {wn} to {rn}", wf.full_name()),
                    );
                } else if wn != rn {
                    push(
                        out,
                        "FIELD_NAMED_TYPE_CHANGED",
                        at(&wf),
                        format!("The field {} changed from {wn} to {rn}", wf.full_name()),
                    );
                }
            }
            _ => push(
                out,
                "FIELD_KIND_CHANGED",
                at(&wf),
                format!(
                    "The field {} changed from {} to {}",
                    wf.full_name(),
                    kind_name(&wk),
                    kind_name(&rk)
                ),
            ),
        }
        let length_delimited = matches!(wk, Kind::String | Kind::Bytes | Kind::Message(_));
        if (wf.is_list() != rf.is_list() && !length_delimited) || wf.is_map() != rf.is_map() {
            push(
                out,
                "FIELD_NUMERIC_LABEL_CHANGED",
                at(&wf),
                format!(
                    "The field {} changed between singular and repeated",
                    wf.full_name()
                ),
            );
        }
        if rf.is_required() && !wf.is_required() {
            push(
                out,
                "REQUIRED_FIELD_ADDED",
                at(&rf),
                format!("The field {} became required", rf.full_name()),
            );
        }
    }
    for rf in r.fields() {
        if w.get_field(rf.number()).is_none() {
            if rf.is_required() {
                push(
                    out,
                    "REQUIRED_FIELD_ADDED",
                    at(&rf),
                    format!("The required field {} was added", rf.full_name()),
                );
            }
            let n = rf.number();
            if w.reserved_ranges().any(|range| range.contains(&n)) {
                push(
                    out,
                    "RESERVED_FIELD_REUSED",
                    at(&rf),
                    format!(
                        "The field {} uses number {n}, which the writer reserved",
                        rf.full_name()
                    ),
                );
            }
        }
    }
    // Oneofs: by name, over the fields both sides have.
    let mut moved_to_new: HashMap<String, usize> = HashMap::new();
    for wf in w.fields() {
        let Some(rf) = r.get_field(wf.number()) else {
            continue;
        };
        match (oneof_of(&wf), oneof_of(&rf)) {
            (Some(wo), ro) if ro.as_deref() != Some(wo.as_str()) => {
                let reader_keeps = r.oneofs().any(|o| o.name() == wo);
                if reader_keeps {
                    push(
                        out,
                        "ONEOF_FIELD_REMOVED",
                        at(&wf),
                        format!("The field {} left the oneof {wo}", wf.full_name()),
                    );
                }
            }
            (None, Some(ro)) => {
                if w.oneofs().any(|o| o.name() == ro && !o.is_synthetic()) {
                    push(
                        out,
                        "FIELD_MOVED_TO_EXISTING_ONEOF",
                        at(&wf),
                        format!(
                            "The field {} moved into the existing oneof {ro}",
                            wf.full_name()
                        ),
                    );
                } else {
                    *moved_to_new.entry(ro).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    let mut moved: Vec<(String, usize)> =
        moved_to_new.into_iter().filter(|(_, n)| *n > 1).collect();
    moved.sort();
    for (o, n) in moved {
        push(
            out,
            "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
            format!("#/{}/{o}", w.full_name()),
            format!(
                "{n} fields of {} moved into the new oneof {o}",
                w.full_name()
            ),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(body: &str) -> ProtoSchema {
        ProtoSchema::parse(&format!("syntax = \"proto3\";\npackage shop;\n{body}"), &[]).unwrap()
    }

    fn p2(body: &str) -> ProtoSchema {
        ProtoSchema::parse(&format!("syntax = \"proto2\";\npackage shop;\n{body}"), &[]).unwrap()
    }

    fn kinds(w: &ProtoSchema, r: &ProtoSchema) -> Vec<&'static str> {
        can_read(w, r).into_iter().map(|i| i.kind).collect()
    }

    const BASE: &str = "message Order { string id = 1; int32 qty = 2; }";

    #[test]
    fn a_schema_reads_itself_and_added_removed_or_renamed_fields_are_fine() {
        let base = p(BASE);
        assert!(kinds(&base, &base).is_empty());
        let added = p("message Order { string id = 1; int32 qty = 2; string note = 3; }");
        assert!(kinds(&base, &added).is_empty());
        assert!(kinds(&added, &base).is_empty());
        let renamed = p("message Order { string ident = 1; int32 quantity = 2; }");
        assert!(kinds(&base, &renamed).is_empty());
        let more = p("message Order { string id = 1; int32 qty = 2; } message Refund {}");
        assert!(kinds(&base, &more).is_empty());
    }

    #[test]
    fn field_type_changes_follow_wire_compatibility() {
        let base = p(BASE);
        assert!(kinds(&base, &p("message Order { string id = 1; int64 qty = 2; }")).is_empty());
        assert!(kinds(&base, &p("message Order { bytes id = 1; uint32 qty = 2; }")).is_empty());
        assert_eq!(
            kinds(
                &base,
                &p("message Order { string id = 1; string qty = 2; }")
            ),
            ["FIELD_SCALAR_KIND_CHANGED"]
        );
        assert_eq!(
            kinds(
                &base,
                &p("message Order { string id = 1; sint32 qty = 2; }")
            ),
            ["FIELD_SCALAR_KIND_CHANGED"]
        );
        assert_eq!(
            kinds(
                &base,
                &p("message Order { Id id = 1; int32 qty = 2; } message Id { string v = 1; }")
            ),
            ["FIELD_KIND_CHANGED"]
        );
        let a = p("message Order { A x = 1; } message A {} message B {}");
        let b = p("message Order { B x = 1; } message A {} message B {}");
        assert_eq!(kinds(&a, &b), ["FIELD_NAMED_TYPE_CHANGED"]);
        assert_eq!(
            kinds(
                &base,
                &p("message Order { string id = 1; repeated int32 qty = 2; }")
            ),
            ["FIELD_NUMERIC_LABEL_CHANGED"]
        );
        assert!(
            kinds(
                &base,
                &p("message Order { repeated string id = 1; int32 qty = 2; }")
            )
            .is_empty()
        );
    }

    #[test]
    fn a_removed_message_or_a_changed_package_is_incompatible() {
        let two = p("message Order {} message Refund {}");
        assert_eq!(kinds(&two, &p("message Order {}")), ["MESSAGE_REMOVED"]);
        let other = ProtoSchema::parse(
            "syntax = \"proto3\";\npackage store;\nmessage Order {}",
            &[],
        )
        .unwrap();
        assert_eq!(kinds(&p("message Order {}"), &other), ["PACKAGE_CHANGED"]);
        let nested = p("message Order { message Line {} }");
        assert_eq!(kinds(&nested, &p("message Order {}")), ["MESSAGE_REMOVED"]);
    }

    #[test]
    fn required_fields_may_be_neither_added_nor_removed() {
        let base = p2("message Order { optional string id = 1; }");
        let req = p2("message Order { optional string id = 1; required int32 qty = 2; }");
        assert_eq!(kinds(&base, &req), ["REQUIRED_FIELD_ADDED"]);
        assert_eq!(kinds(&req, &base), ["REQUIRED_FIELD_REMOVED"]);
        let became = p2("message Order { required string id = 1; }");
        assert_eq!(kinds(&base, &became), ["REQUIRED_FIELD_ADDED"]);
    }

    #[test]
    fn oneof_changes_follow_confluents_rules() {
        let one = p("message Order { oneof pay { string card = 1; string iban = 2; } }");
        let left = p("message Order { oneof pay { string card = 1; } string iban = 2; }");
        assert_eq!(kinds(&one, &left), ["ONEOF_FIELD_REMOVED"]);
        let loose = p("message Order { string card = 1; string iban = 2; }");
        assert_eq!(kinds(&loose, &one), ["MULTIPLE_FIELDS_MOVED_TO_ONEOF"]);
        let existing = p("message Order { oneof pay { string card = 1; } string iban = 2; }");
        assert_eq!(kinds(&existing, &one), ["FIELD_MOVED_TO_EXISTING_ONEOF"]);
        let single = p("message Order { oneof pay { string card = 1; } }");
        assert!(kinds(&p("message Order { string card = 1; }"), &single).is_empty());
        // A oneof that goes as a whole is fine.
        assert!(kinds(&one, &loose).is_empty());
    }

    #[test]
    fn syntax_changes_alone_are_fine_and_reserved_numbers_are_not_reused() {
        let three = p("message Order { string id = 1; }");
        let two = p2("message Order { optional string id = 1; }");
        assert!(kinds(&three, &two).is_empty());
        assert!(kinds(&two, &three).is_empty());
        let reserved = p("message Order { string id = 1; reserved 2; }");
        let reused = p("message Order { string id = 1; int32 qty = 2; }");
        assert_eq!(kinds(&reserved, &reused), ["RESERVED_FIELD_REUSED"]);
    }
}
