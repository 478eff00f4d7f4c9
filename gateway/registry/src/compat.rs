//! Schema resolution (can a reader schema read what a writer schema wrote?)
//! and the seven compatibility levels built on it.
//!
//! This is our own implementation of the Avro spec's "Schema Resolution"
//! rather than apache-avro's `SchemaCompatibility`: we need a reason and a
//! location for every failure (Confluent's `verbose=true` answer), and an
//! answer that is never "partial". The rules, writer `w` against reader `r`:
//! - a writer union: every branch must resolve against the reader;
//! - a reader union: the writer must resolve against one of its branches;
//! - promotions: int -> long, float, double; long -> float, double;
//!   float -> double; string <-> bytes;
//! - records: same unqualified name (or the writer's name among the reader's
//!   aliases); each reader field found in the writer by name or alias must
//!   resolve, and one missing from the writer needs a default; writer fields
//!   the reader lacks are skipped;
//! - enums: same name; every writer symbol must be a reader symbol, unless
//!   the reader has a default symbol;
//! - fixed: same name and size; arrays and maps: their items/values resolve.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::kinds::Parsed;
use super::schema::{Kind, NamedDef, Schema};

/// A compatibility level, as Confluent spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    /// Confluent's default.
    pub const DEFAULT: Level = Level::Backward;

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Parses a level whatever its case (clients send `backward` too).
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_uppercase().as_str() {
            "NONE" => Level::None,
            "BACKWARD" => Level::Backward,
            "BACKWARD_TRANSITIVE" => Level::BackwardTransitive,
            "FORWARD" => Level::Forward,
            "FORWARD_TRANSITIVE" => Level::ForwardTransitive,
            "FULL" => Level::Full,
            "FULL_TRANSITIVE" => Level::FullTransitive,
            _ => return None,
        })
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

/// Why a reader can't read a writer's data: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// Confluent's error type names (`READER_FIELD_MISSING_DEFAULT_VALUE`...).
    pub kind: &'static str,
    /// A JSON Pointer into the reader schema's data (`/customer/id`).
    pub path: String,
    pub message: String,
}

/// Checks `new` against `previous` (oldest first, live versions only) at
/// `level`. Returns every problem found, each with the version it clashes
/// with; empty means compatible.
pub fn check(
    level: Level,
    new: &Schema,
    previous: &[(u32, &Schema)],
) -> Vec<(u32, Incompatibility)> {
    check_by(level, new, previous, |w, r| {
        can_read(w, r).err().into_iter().collect()
    })
}

/// [`check`] for schemas of any type: JSON Schema and Protobuf by their own
/// rules, and a change of type is always a problem.
pub fn check_parsed(
    level: Level,
    new: &Parsed,
    previous: &[(u32, &Parsed)],
) -> Vec<(u32, Incompatibility)> {
    check_by(level, new, previous, read_problems)
}

/// Every way `reader` fails to read what `writer` wrote.
pub fn read_problems(writer: &Parsed, reader: &Parsed) -> Vec<Incompatibility> {
    match (writer, reader) {
        (Parsed::Avro(w), Parsed::Avro(r)) => can_read(w, r).err().into_iter().collect(),
        (Parsed::Json(w), Parsed::Json(r)) => crate::json_schema::compat::can_read(w, r),
        (Parsed::Protobuf(w), Parsed::Protobuf(r)) => crate::protobuf::compat::can_read(w, r),
        (w, r) => vec![Incompatibility {
            kind: "SCHEMA_TYPE_CHANGED",
            path: "/".into(),
            message: format!(
                "a {} schema can't read data written with a {} schema",
                r.schema_type().as_str(),
                w.schema_type().as_str()
            ),
        }],
    }
}

fn check_by<T: ?Sized>(
    level: Level,
    new: &T,
    previous: &[(u32, &T)],
    problems_of: impl Fn(&T, &T) -> Vec<Incompatibility>,
) -> Vec<(u32, Incompatibility)> {
    let against: &[(u32, &T)] = if level.transitive() {
        previous
    } else {
        match previous.last() {
            Some(_) => &previous[previous.len() - 1..],
            None => &[],
        }
    };
    let mut problems = Vec::new();
    for (version, old) in against {
        if level.backward() {
            problems.extend(problems_of(old, new).into_iter().map(|e| (*version, e)));
        }
        if level.forward() {
            problems.extend(problems_of(new, old).into_iter().map(|e| (*version, e)));
        }
    }
    problems
}

/// Whether data written with `writer` can be read with `reader`.
pub fn can_read(writer: &Schema, reader: &Schema) -> Result<(), Incompatibility> {
    let mut cx = Resolver {
        writer,
        reader,
        seen: HashSet::new(),
    };
    cx.resolve(&writer.root, &reader.root, &mut String::new())
}

struct Resolver<'a> {
    writer: &'a Schema,
    reader: &'a Schema,
    /// Record pairs already being checked: a recursive record resolves if its
    /// fields do, so meeting the pair again means "assume yes".
    seen: HashSet<(usize, usize)>,
}

fn fail(kind: &'static str, path: &str, message: String) -> Result<(), Incompatibility> {
    Err(Incompatibility {
        kind,
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
        message,
    })
}

fn promotable(w: &Kind, r: &Kind) -> bool {
    matches!(
        (w, r),
        (Kind::Int, Kind::Long | Kind::Float | Kind::Double)
            | (Kind::Long, Kind::Float | Kind::Double)
            | (Kind::Float, Kind::Double)
            | (Kind::String, Kind::Bytes)
            | (Kind::Bytes, Kind::String)
    )
}

impl Resolver<'_> {
    fn resolve(&mut self, w: &Kind, r: &Kind, path: &mut String) -> Result<(), Incompatibility> {
        if let Kind::Union(branches) = w {
            for b in branches {
                if let Err(e) = self.resolve(b, r, path) {
                    return fail(
                        "MISSING_UNION_BRANCH",
                        path,
                        format!(
                            "the {} written by the old schema cannot be read as {}: {}",
                            self.writer.describe(b),
                            self.reader.describe(r),
                            e.message
                        ),
                    );
                }
            }
            return Ok(());
        }
        if let Kind::Union(branches) = r {
            // The spec picks the first matching branch; any match will do
            // for a yes/no answer.
            for b in branches {
                if self.resolve(w, b, path).is_ok() {
                    return Ok(());
                }
            }
            return fail(
                "MISSING_UNION_BRANCH",
                path,
                format!(
                    "the reader's {} has no branch for the writer's {}",
                    self.reader.describe(r),
                    self.writer.describe(w)
                ),
            );
        }
        if w == r && !matches!(w, Kind::Named(_) | Kind::Array(_) | Kind::Map(_)) {
            return Ok(());
        }
        if promotable(w, r) {
            return Ok(());
        }
        match (w, r) {
            (Kind::Array(wi), Kind::Array(ri)) => {
                let len = path.len();
                path.push_str("/items");
                let res = self.resolve(wi, ri, path);
                path.truncate(len);
                res
            }
            (Kind::Map(wv), Kind::Map(rv)) => {
                let len = path.len();
                path.push_str("/values");
                let res = self.resolve(wv, rv, path);
                path.truncate(len);
                res
            }
            (Kind::Named(wi), Kind::Named(ri)) => self.named(*wi, *ri, path),
            _ => fail(
                "TYPE_MISMATCH",
                path,
                format!(
                    "the writer's {} cannot be read as {}",
                    self.writer.describe(w),
                    self.reader.describe(r)
                ),
            ),
        }
    }

    fn named(&mut self, wi: usize, ri: usize, path: &mut String) -> Result<(), Incompatibility> {
        let wn = &self.writer.named[wi];
        let rn = &self.reader.named[ri];
        let name_ok = wn.short_name() == rn.short_name()
            || rn
                .aliases
                .iter()
                .any(|a| a == &wn.fullname || a.as_str() == wn.short_name());
        match (&wn.def, &rn.def) {
            (NamedDef::Record { fields: wf }, NamedDef::Record { fields: rf }) => {
                if !name_ok {
                    return fail(
                        "NAME_MISMATCH",
                        path,
                        format!(
                            "record {} cannot be read as record {}: names differ",
                            wn.fullname, rn.fullname
                        ),
                    );
                }
                if !self.seen.insert((wi, ri)) {
                    return Ok(());
                }
                for field in rf {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&escape_pointer(&field.name));
                    let found = wf.iter().find(|x| {
                        x.name == field.name || field.aliases.iter().any(|a| a == &x.name)
                    });
                    let res = match found {
                        Some(wfield) => self.resolve(&wfield.kind, &field.kind, path),
                        None if field.default.is_some() => Ok(()),
                        None => fail(
                            "READER_FIELD_MISSING_DEFAULT_VALUE",
                            path,
                            format!(
                                "field '{}' of record {} has no default value and is missing \
                                 from the writer's record",
                                field.name, rn.fullname
                            ),
                        ),
                    };
                    path.truncate(len);
                    res?;
                }
                Ok(())
            }
            (
                NamedDef::Enum { symbols: ws, .. },
                NamedDef::Enum {
                    symbols: rs,
                    default,
                },
            ) => {
                if !name_ok {
                    return fail(
                        "NAME_MISMATCH",
                        path,
                        format!(
                            "enum {} cannot be read as enum {}: names differ",
                            wn.fullname, rn.fullname
                        ),
                    );
                }
                if default.is_some() {
                    return Ok(());
                }
                let missing: Vec<&str> = ws
                    .iter()
                    .filter(|s| !rs.contains(s))
                    .map(String::as_str)
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    fail(
                        "MISSING_ENUM_SYMBOLS",
                        path,
                        format!(
                            "enum {} lacks the writer's symbols [{}] and has no default",
                            rn.fullname,
                            missing.join(", ")
                        ),
                    )
                }
            }
            (NamedDef::Fixed { size: wsz }, NamedDef::Fixed { size: rsz }) => {
                if !name_ok {
                    return fail(
                        "NAME_MISMATCH",
                        path,
                        format!(
                            "fixed {} cannot be read as fixed {}: names differ",
                            wn.fullname, rn.fullname
                        ),
                    );
                }
                if wsz != rsz {
                    return fail(
                        "FIXED_SIZE_MISMATCH",
                        path,
                        format!(
                            "fixed {} is {wsz} bytes in the writer and {rsz} in the reader",
                            rn.fullname
                        ),
                    );
                }
                Ok(())
            }
            _ => fail(
                "TYPE_MISMATCH",
                path,
                format!(
                    "the writer's {} cannot be read as {}",
                    self.writer.describe(&Kind::Named(wi)),
                    self.reader.describe(&Kind::Named(ri))
                ),
            ),
        }
    }
}

/// Escapes a key for a JSON Pointer (RFC 6901).
pub fn escape_pointer(key: &str) -> String {
    if key.contains(['~', '/']) {
        key.replace('~', "~0").replace('/', "~1")
    } else {
        key.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: serde_json::Value) -> Schema {
        // Every test schema must also be valid for the reference
        // implementation, or the test would prove nothing.
        apache_avro::Schema::parse(&v).unwrap();
        Schema::parse(&v).unwrap()
    }

    fn rec(fields: serde_json::Value) -> Schema {
        s(json!({"type": "record", "name": "R", "namespace": "t", "fields": fields}))
    }

    fn reads(w: &Schema, r: &Schema) -> bool {
        can_read(w, r).is_ok()
    }

    #[test]
    fn primitive_promotions_follow_the_spec() {
        let p = |t: &str| s(json!(t));
        let ok = [
            ("int", "long"),
            ("int", "float"),
            ("int", "double"),
            ("long", "float"),
            ("long", "double"),
            ("float", "double"),
            ("string", "bytes"),
            ("bytes", "string"),
            ("null", "null"),
        ];
        for (w, r) in ok {
            assert!(reads(&p(w), &p(r)), "{w} -> {r}");
        }
        let bad = [
            ("long", "int"),
            ("double", "float"),
            ("float", "long"),
            ("int", "string"),
            ("boolean", "int"),
            ("null", "string"),
        ];
        for (w, r) in bad {
            assert!(!reads(&p(w), &p(r)), "{w} -> {r}");
        }
    }

    #[test]
    fn records_need_defaults_for_added_fields() {
        let v1 = rec(json!([{"name": "a", "type": "int"}]));
        let v2_default = rec(json!([{"name": "a", "type": "int"},
            {"name": "b", "type": "string", "default": "x"}]));
        let v2_required = rec(json!([{"name": "a", "type": "int"},
            {"name": "b", "type": "string"}]));
        assert!(reads(&v1, &v2_default));
        assert!(reads(&v2_default, &v1), "removed fields are skipped");
        let e = can_read(&v1, &v2_required).unwrap_err();
        assert_eq!(e.kind, "READER_FIELD_MISSING_DEFAULT_VALUE");
        assert_eq!(e.path, "/b");
    }

    #[test]
    fn field_and_record_aliases_resolve() {
        let w = s(json!({"type": "record", "name": "Old", "namespace": "t",
            "fields": [{"name": "n", "type": "int"}]}));
        let r = s(
            json!({"type": "record", "name": "New", "namespace": "t", "aliases": ["Old"],
            "fields": [{"name": "count", "type": "long", "aliases": ["n"]}]}),
        );
        assert!(reads(&w, &r));
        let r_no_alias = s(json!({"type": "record", "name": "New", "namespace": "t",
            "fields": [{"name": "count", "type": "long", "aliases": ["n"]}]}));
        assert_eq!(can_read(&w, &r_no_alias).unwrap_err().kind, "NAME_MISMATCH");
    }

    #[test]
    fn enums_missing_a_writer_symbol_need_a_reader_default() {
        let e = |symbols: serde_json::Value, default: Option<&str>| {
            let mut v = json!({"type": "enum", "name": "E", "symbols": symbols});
            if let Some(d) = default {
                v["default"] = json!(d);
            }
            s(v)
        };
        let abc = e(json!(["A", "B", "C"]), None);
        let ab = e(json!(["A", "B"]), None);
        let ab_default = e(json!(["A", "B"]), Some("A"));
        assert!(reads(&ab, &abc));
        assert_eq!(
            can_read(&abc, &ab).unwrap_err().kind,
            "MISSING_ENUM_SYMBOLS"
        );
        assert!(reads(&abc, &ab_default));
    }

    #[test]
    fn unions_resolve_branch_by_branch() {
        let int = s(json!("int"));
        let null_long = s(json!(["null", "long"]));
        let null_string = s(json!(["null", "string"]));
        let null_int_string = s(json!(["null", "int", "string"]));
        assert!(
            reads(&int, &null_long),
            "non-union writer into a union reader"
        );
        assert!(
            !reads(&null_long, &int),
            "writer's null has no reader branch"
        );
        assert!(reads(&null_string, &null_int_string));
        assert!(!reads(&null_int_string, &null_string));
        assert!(reads(&s(json!(["int"])), &s(json!("long"))));
    }

    #[test]
    fn nested_collections_and_fixed() {
        let arr = |t: &str| s(json!({"type": "array", "items": t}));
        let map = |t: &str| s(json!({"type": "map", "values": t}));
        assert!(reads(&arr("int"), &arr("long")));
        assert_eq!(
            can_read(&arr("long"), &arr("int")).unwrap_err().path,
            "/items"
        );
        assert!(reads(&map("float"), &map("double")));
        assert!(!reads(&map("string"), &arr("string")));
        let fixed = |n: &str, size: u32| s(json!({"type": "fixed", "name": n, "size": size}));
        assert!(reads(&fixed("F", 4), &fixed("F", 4)));
        assert_eq!(
            can_read(&fixed("F", 4), &fixed("F", 8)).unwrap_err().kind,
            "FIXED_SIZE_MISMATCH"
        );
        assert_eq!(
            can_read(&fixed("F", 4), &fixed("G", 4)).unwrap_err().kind,
            "NAME_MISMATCH"
        );
        let nested_w = rec(
            json!([{"name": "inner", "type": {"type": "record", "name": "I",
            "fields": [{"name": "x", "type": "int"}]}}]),
        );
        let nested_r = rec(
            json!([{"name": "inner", "type": {"type": "record", "name": "I",
            "fields": [{"name": "x", "type": "int"}, {"name": "y", "type": "int"}]}}]),
        );
        assert_eq!(can_read(&nested_w, &nested_r).unwrap_err().path, "/inner/y");
    }

    #[test]
    fn recursive_records_terminate() {
        let list = |extra: serde_json::Value| {
            let mut fields = vec![
                json!({"name": "v", "type": "int"}),
                json!({"name": "next", "type": ["null", "L"], "default": null}),
            ];
            if !extra.is_null() {
                fields.push(extra);
            }
            s(json!({"type": "record", "name": "L", "fields": fields}))
        };
        let a = list(serde_json::Value::Null);
        let b = list(json!({"name": "w", "type": "int", "default": 0}));
        assert!(reads(&a, &b));
        assert!(reads(&b, &a));
    }

    /// The seven levels on one evolution story: v1 {a}, v2 adds optional b,
    /// v3 drops a (a had no default, so v3 can't be read by readers of v1).
    #[test]
    fn each_level_checks_the_right_direction_and_range() {
        let v1 = rec(json!([{"name": "a", "type": "int"}]));
        let v2 = rec(json!([{"name": "a", "type": "int"},
            {"name": "b", "type": "int", "default": 0}]));
        // Adds a required field: backward-incompatible, forward-compatible.
        let add_required = rec(json!([{"name": "a", "type": "int"},
            {"name": "b", "type": "int", "default": 0}, {"name": "c", "type": "int"}]));
        // Drops a field without default: forward-incompatible with v1 and v2.
        let drop_a = rec(json!([{"name": "b", "type": "int", "default": 0}]));
        let hist = [(1, &v1), (2, &v2)];
        let ok = |l: Level, new: &Schema| check(l, new, &hist).is_empty();

        assert!(ok(Level::None, &add_required));
        assert!(ok(Level::None, &drop_a));

        assert!(!ok(Level::Backward, &add_required));
        assert!(ok(Level::Backward, &drop_a));
        assert!(ok(Level::Forward, &add_required));
        assert!(!ok(Level::Forward, &drop_a));
        assert!(!ok(Level::Full, &add_required));
        assert!(!ok(Level::Full, &drop_a));

        // Transitive levels look past the latest version: v3 = {b default}
        // is backward-compatible with v2, and with v1 too; but {b required}
        // reads v2 (which has b) and not v1.
        let b_required = rec(json!([{"name": "b", "type": "int"}]));
        assert!(ok(Level::Backward, &b_required));
        assert!(!ok(Level::BackwardTransitive, &b_required));
        let problems = check(Level::BackwardTransitive, &b_required, &hist);
        assert_eq!(problems[0].0, 1, "the clash is with version 1");

        // Forward: old readers must read new data. v1's reader needs `a`.
        let a_long_b = rec(json!([{"name": "a", "type": "int"},
            {"name": "b", "type": "long", "default": 0}]));
        // v2 reads b as int; a long can't be read as int: forward fails vs v2
        // but v1 ignores b: only the transitive check sees both.
        assert!(!ok(Level::Forward, &a_long_b));
        let hist_v1_only = [(1, &v1)];
        assert!(check(Level::Forward, &a_long_b, &hist_v1_only).is_empty());
        assert!(!ok(Level::ForwardTransitive, &a_long_b));

        // Full transitive: both directions against every version.
        let v3 = rec(json!([{"name": "a", "type": "int"},
            {"name": "b", "type": "int", "default": 0},
            {"name": "c", "type": ["null", "string"], "default": null}]));
        assert!(ok(Level::FullTransitive, &v3));
        assert!(!ok(Level::FullTransitive, &a_long_b));
        assert!(
            check(Level::Full, &v1, &[]).is_empty(),
            "no history: compatible"
        );
    }

    #[test]
    fn levels_parse_in_any_case() {
        assert_eq!(Level::parse("full_transitive"), Some(Level::FullTransitive));
        assert_eq!(Level::parse("Backward"), Some(Level::Backward));
        assert_eq!(Level::parse("SIDEWAYS"), None);
    }
}

/// Why we don't lean on apache-avro's `SchemaCompatibility` (0.22): on the
/// spec's cases it agrees with us except where it is wrong. If a version
/// bump fixes these, this test says so and the question can be reopened.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod apache_avro_checker {
    use serde_json::{Value, json};

    fn both(w: &Value, r: &Value) -> (bool, bool) {
        let theirs = apache_avro::schema_compatibility::SchemaCompatibility::can_read(
            &apache_avro::Schema::parse(w).unwrap(),
            &apache_avro::Schema::parse(r).unwrap(),
        );
        let ours = super::can_read(
            &super::Schema::parse(w).unwrap(),
            &super::Schema::parse(r).unwrap(),
        );
        (theirs.is_ok(), ours.is_ok())
    }

    #[test]
    fn agrees_on_the_plain_cases() {
        let cases = [
            (
                json!({"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}),
                json!({"type": "enum", "name": "E", "symbols": ["A", "B"], "default": "A"}),
            ),
            (
                json!({"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]}),
                json!({"type": "record", "name": "R",
                    "fields": [{"name": "m", "aliases": ["n"], "type": "int"}]}),
            ),
            (json!("string"), json!("bytes")),
            (json!("bytes"), json!("string")),
            (json!("int"), json!(["null", "long"])),
        ];
        for (w, r) in &cases {
            assert_eq!(both(w, r), (true, true), "{w} -> {r}");
        }
        let missing = (
            json!({"type": "record", "name": "R", "fields": []}),
            json!({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}),
        );
        assert_eq!(both(&missing.0, &missing.1), (false, false));
    }

    #[test]
    fn differs_where_the_spec_and_avro_java_side_with_us() {
        // A writer union with a branch the reader can't take: data written
        // with that branch fails to resolve, so Avro Java and Confluent call
        // it incompatible. apache-avro says compatible.
        assert_eq!(
            both(
                &json!(["null", "int", "string"]),
                &json!(["null", "string"])
            ),
            (true, false)
        );
        // A record renamed with the old name among its aliases resolves per
        // the spec; apache-avro ignores record aliases.
        let w = json!({"type": "record", "name": "Old", "fields": [{"name": "n", "type": "int"}]});
        let r = json!({"type": "record", "name": "New", "aliases": ["Old"],
            "fields": [{"name": "n", "type": "int"}]});
        assert_eq!(both(&w, &r), (false, true));
    }
}
