//! Natural JSON against an Avro schema, as webhook senders write it:
//! records are objects, unions are the bare value (or Avro's JSON wrapping
//! `{"string": "x"}`), enums are their symbol, ints and longs are integers in
//! range, floats and doubles any number or `"NaN"`, `"Infinity"`,
//! `"-Infinity"`. Bytes and fixed are a string whose code points are the
//! byte values (Avro's JSON encoding, ISO-8859-1) or an array of byte values
//! 0-255 (what the gateway writes when it delivers Avro as JSON); a fixed
//! has exactly its size of them.
//!
//! [`validate`] checks a body; [`encode`] writes a valid body as an Avro
//! datum. Both follow the same rules (the encoder picks a union's branch by
//! asking the validator), so what validation accepts at ingest always
//! converts at delivery.
//!
//! Fields the schema doesn't know are a mismatch: the schema is the contract,
//! a typo in an optional field's name would otherwise pass silently, and the
//! field would be lost the moment the event is delivered as Avro. Missing
//! fields are fine when the schema gives them a default that fits.
//!
//! The first mismatch is reported with a JSON Pointer to the offending value
//! and the type expected there; apache-avro's errors carry no path, which is
//! why this is a walk of our own.

use serde_json::Value;

use super::compat::escape_pointer;
use super::schema::{Kind, NamedDef, Schema};

/// Where a JSON body first departs from its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonMismatch {
    /// A JSON Pointer ("" is the whole body).
    pub path: String,
    pub expected: String,
    pub message: String,
}

/// serde_json stops at 128 levels while parsing; recursive schemas could
/// otherwise take the walk deeper than the value goes, which they can't, but
/// a bound keeps the stack safe whatever the input.
const MAX_DEPTH: usize = 256;

/// Checks `value` against `schema`.
pub fn validate(schema: &Schema, value: &Value) -> Result<(), JsonMismatch> {
    let mut path = String::new();
    walk(schema, &schema.root, value, &mut path, 0)
}

fn mismatch(schema: &Schema, kind: &Kind, path: &str, message: String) -> JsonMismatch {
    JsonMismatch {
        path: path.to_string(),
        expected: schema.describe(kind),
        message,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The floats JSON numbers lack, and how they are spelt instead, as Avro's
/// JSON encoding writes them.
const SPECIAL_FLOATS: [(&str, f64); 3] = [
    ("NaN", f64::NAN),
    ("Infinity", f64::INFINITY),
    ("-Infinity", f64::NEG_INFINITY),
];

/// A float or double spelt as a string (see [`SPECIAL_FLOATS`]).
fn special_float(s: &str) -> Option<f64> {
    SPECIAL_FLOATS
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, f)| *f)
}

/// A float or double as JSON: a number, or its spelling in
/// [`SPECIAL_FLOATS`] when it is not finite.
pub(super) fn float_to_json(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(
        || {
            let name = SPECIAL_FLOATS
                .iter()
                .find(|(_, s)| *s == f || (s.is_nan() && f.is_nan()))
                .map_or("NaN", |(n, _)| *n);
            Value::String(name.to_owned())
        },
        Value::Number,
    )
}

/// The bytes a JSON value spells, for `bytes` and `fixed`: a string's code
/// points (each at most 255) or an array's byte values. `Err` holds the
/// pointer suffix of the first bad item and what is wrong with it.
fn byte_values(value: &Value) -> Result<Vec<u8>, (String, String)> {
    match value {
        Value::String(s) => s
            .chars()
            .enumerate()
            .map(|(i, c)| {
                u8::try_from(u32::from(c)).map_err(|_| {
                    (
                        String::new(),
                        format!(
                            "character {i} ({c:?}) is not a byte value: bytes in a JSON string are \
                             code points 0-255, or send an array of byte values"
                        ),
                    )
                })
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_u64()
                    .and_then(|b| u8::try_from(b).ok())
                    .ok_or_else(|| {
                        (
                            format!("/{i}"),
                            format!("found {}, not a byte value 0-255", type_name(v)),
                        )
                    })
            })
            .collect(),
        _ => Err((String::new(), format!("found {}", type_name(value)))),
    }
}

/// Bytes or fixed of `size` (when given).
fn check_bytes(
    schema: &Schema,
    kind: &Kind,
    path: &str,
    value: &Value,
    size: Option<usize>,
) -> Result<(), JsonMismatch> {
    match byte_values(value) {
        Ok(b) if size.is_none_or(|n| n == b.len()) => Ok(()),
        Ok(b) => Err(mismatch(
            schema,
            kind,
            path,
            format!("{} bytes, not {}", b.len(), size.unwrap_or_default()),
        )),
        Err((at, message)) => Err(mismatch(schema, kind, &format!("{path}{at}"), message)),
    }
}

fn walk(
    schema: &Schema,
    kind: &Kind,
    value: &Value,
    path: &mut String,
    depth: usize,
) -> Result<(), JsonMismatch> {
    if depth > MAX_DEPTH {
        return Err(mismatch(
            schema,
            kind,
            path,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let wrong = |path: &str| {
        Err(mismatch(
            schema,
            kind,
            path,
            format!("found {}", type_name(value)),
        ))
    };
    match kind {
        Kind::Null => match value {
            Value::Null => Ok(()),
            _ => wrong(path),
        },
        Kind::Boolean => match value {
            Value::Bool(_) => Ok(()),
            _ => wrong(path),
        },
        Kind::Int => match value {
            Value::Number(n) => match n.as_i64() {
                Some(i) if i32::try_from(i).is_ok() => Ok(()),
                Some(_) | None if n.is_f64() => wrong(path),
                _ => Err(mismatch(
                    schema,
                    kind,
                    path,
                    format!("{n} is outside the 32-bit range"),
                )),
            },
            _ => wrong(path),
        },
        Kind::Long => match value {
            Value::Number(n) if n.as_i64().is_some() => Ok(()),
            Value::Number(n) if !n.is_f64() => Err(mismatch(
                schema,
                kind,
                path,
                format!("{n} is outside the 64-bit range"),
            )),
            _ => wrong(path),
        },
        Kind::Float | Kind::Double => match value {
            Value::Number(_) => Ok(()),
            Value::String(s) if special_float(s).is_some() => Ok(()),
            _ => wrong(path),
        },
        Kind::String => match value {
            Value::String(_) => Ok(()),
            _ => wrong(path),
        },
        Kind::Bytes => check_bytes(schema, kind, path, value, None),
        Kind::Array(items) => match value {
            Value::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    walk(schema, items, item, path, depth + 1)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => wrong(path),
        },
        Kind::Map(values) => match value {
            Value::Object(o) => {
                for (k, v) in o {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&escape_pointer(k));
                    walk(schema, values, v, path, depth + 1)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => wrong(path),
        },
        Kind::Union(branches) => union(schema, kind, branches, value, path, depth),
        Kind::Named(i) => {
            let named = &schema.named[*i];
            match &named.def {
                NamedDef::Enum { symbols, .. } => match value {
                    Value::String(s) if symbols.contains(s) => Ok(()),
                    Value::String(s) => Err(mismatch(
                        schema,
                        kind,
                        path,
                        format!("{s:?} is not a symbol of enum {}", named.fullname),
                    )),
                    _ => wrong(path),
                },
                NamedDef::Fixed { size } => check_bytes(schema, kind, path, value, Some(*size)),
                NamedDef::Record { fields } => {
                    let Value::Object(o) = value else {
                        return wrong(path);
                    };
                    for f in fields {
                        let len = path.len();
                        path.push('/');
                        path.push_str(&escape_pointer(&f.name));
                        match (o.get(&f.name), &f.default) {
                            (Some(v), _) => walk(schema, &f.kind, v, path, depth + 1)?,
                            // The default stands in for the value, so it
                            // must fit as a value would: the registry, like
                            // Confluent's, checks only a default's JSON type
                            // (not, say, a fixed's size) when it registers one.
                            (None, Some(d)) => {
                                walk(schema, &f.kind, d, path, depth + 1).map_err(|e| {
                                    JsonMismatch {
                                        message: format!(
                                            "field {:?} is missing and its default in record {} \
                                             does not fit ({}), so it can't be left out",
                                            f.name, named.fullname, e.message
                                        ),
                                        ..e
                                    }
                                })?;
                            }
                            (None, None) => {
                                return Err(mismatch(
                                    schema,
                                    &f.kind,
                                    path,
                                    format!(
                                        "required field {:?} of record {} is missing",
                                        f.name, named.fullname
                                    ),
                                ));
                            }
                        }
                        path.truncate(len);
                    }
                    if o.len() > fields.len() || fields.iter().any(|f| !o.contains_key(&f.name)) {
                        for k in o.keys() {
                            if !fields.iter().any(|f| &f.name == k) {
                                let len = path.len();
                                path.push('/');
                                path.push_str(&escape_pointer(k));
                                let names: Vec<&str> =
                                    fields.iter().map(|f| f.name.as_str()).collect();
                                let err = JsonMismatch {
                                    path: path.clone(),
                                    expected: format!(
                                        "no such field (record {} has: {})",
                                        named.fullname,
                                        names.join(", ")
                                    ),
                                    message: format!(
                                        "field {k:?} is not in record {}",
                                        named.fullname
                                    ),
                                };
                                path.truncate(len);
                                return Err(err);
                            }
                        }
                    }
                    Ok(())
                }
            }
        }
    }
}

/// Avro's JSON encoding of a union value, `{"<branch name>": value}`: the
/// branch's index, its name and the value inside.
fn wrapped<'v>(
    schema: &Schema,
    branches: &[Kind],
    value: &'v Value,
) -> Option<(usize, &'v str, &'v Value)> {
    let o = value.as_object().filter(|o| o.len() == 1)?;
    let (name, inner) = o.iter().next()?;
    let i = branches
        .iter()
        .position(|b| &schema.branch_name(b) == name)?;
    Some((i, name, inner))
}

fn union(
    schema: &Schema,
    kind: &Kind,
    branches: &[Kind],
    value: &Value,
    path: &mut String,
    depth: usize,
) -> Result<(), JsonMismatch> {
    // The bare value, as senders write it: any branch that takes it.
    let mut only_error = None;
    let non_null: Vec<&Kind> = branches.iter().filter(|b| **b != Kind::Null).collect();
    for b in branches {
        match walk(schema, b, value, path, depth + 1) {
            Ok(()) => return Ok(()),
            Err(e) if non_null.len() == 1 && *b != Kind::Null => only_error = Some(e),
            Err(_) => {}
        }
    }
    if let Some((i, name, inner)) = wrapped(schema, branches, value) {
        let len = path.len();
        path.push('/');
        path.push_str(&escape_pointer(name));
        let res = walk(schema, &branches[i], inner, path, depth + 1);
        path.truncate(len);
        return res;
    }
    // A nullable field (["null", T]) reports T's own error: it points deeper
    // and says what was actually wrong.
    if let Some(e) = only_error
        && !value.is_null()
    {
        return Err(e);
    }
    Err(mismatch(
        schema,
        kind,
        path,
        format!("found {}, which matches no branch", type_name(value)),
    ))
}

/// Writes `value`, which [`validate`] accepted against `schema`, as an Avro
/// binary datum. A union takes the branch validation took: the first whose
/// rules the bare value meets, else the one its wrapping names.
pub fn encode(schema: &Schema, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    Encoder { schema, out }.value(&schema.root, value, 0)
}

struct Encoder<'a> {
    schema: &'a Schema,
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn long(&mut self, n: i64) {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        while z >= 0x80 {
            self.out.push((z as u8) | 0x80);
            z >>= 7;
        }
        self.out.push(z as u8);
    }

    fn len(&mut self, n: usize) {
        self.long(i64::try_from(n).unwrap_or(i64::MAX));
    }

    fn text(&mut self, s: &str) {
        self.len(s.len());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn value(&mut self, kind: &Kind, value: &Value, depth: usize) -> Result<(), String> {
        let schema = self.schema;
        let unfit = || {
            format!(
                "{} does not fit {} (validate before encoding)",
                type_name(value),
                schema.describe(kind)
            )
        };
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let number = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => special_float(s),
            _ => None,
        };
        match kind {
            Kind::Null => value.is_null().then_some(()).ok_or_else(unfit),
            Kind::Boolean => {
                let b = value.as_bool().ok_or_else(unfit)?;
                self.out.push(u8::from(b));
                Ok(())
            }
            Kind::Int | Kind::Long => {
                let n = value.as_i64().ok_or_else(unfit)?;
                self.long(n);
                Ok(())
            }
            Kind::Float => {
                let f = number(value).ok_or_else(unfit)?;
                self.out.extend_from_slice(&(f as f32).to_le_bytes());
                Ok(())
            }
            Kind::Double => {
                let f = number(value).ok_or_else(unfit)?;
                self.out.extend_from_slice(&f.to_le_bytes());
                Ok(())
            }
            Kind::String => {
                self.text(value.as_str().ok_or_else(unfit)?);
                Ok(())
            }
            Kind::Bytes => {
                let b = byte_values(value).map_err(|(_, e)| e)?;
                self.len(b.len());
                self.out.extend_from_slice(&b);
                Ok(())
            }
            Kind::Array(items) => {
                let a = value.as_array().ok_or_else(unfit)?;
                if !a.is_empty() {
                    self.len(a.len());
                    for v in a {
                        self.value(items, v, depth + 1)?;
                    }
                }
                self.out.push(0);
                Ok(())
            }
            Kind::Map(values) => {
                let o = value.as_object().ok_or_else(unfit)?;
                if !o.is_empty() {
                    self.len(o.len());
                    for (k, v) in o {
                        self.text(k);
                        self.value(values, v, depth + 1)?;
                    }
                }
                self.out.push(0);
                Ok(())
            }
            Kind::Union(branches) => {
                let bare = branches
                    .iter()
                    .position(|b| walk(schema, b, value, &mut String::new(), depth + 1).is_ok());
                let (i, inner) = match bare {
                    Some(i) => (i, value),
                    None => wrapped(schema, branches, value)
                        .map(|(i, _, inner)| (i, inner))
                        .ok_or_else(unfit)?,
                };
                self.len(i);
                self.value(&branches[i], inner, depth + 1)
            }
            Kind::Named(n) => match &schema.named[*n].def {
                NamedDef::Enum { symbols, .. } => {
                    let i = value
                        .as_str()
                        .and_then(|s| symbols.iter().position(|x| x == s))
                        .ok_or_else(unfit)?;
                    self.len(i);
                    Ok(())
                }
                NamedDef::Fixed { size } => {
                    let b = byte_values(value).map_err(|(_, e)| e)?;
                    if b.len() != *size {
                        return Err(unfit());
                    }
                    self.out.extend_from_slice(&b);
                    Ok(())
                }
                NamedDef::Record { fields } => {
                    let o = value.as_object().ok_or_else(unfit)?;
                    for f in fields {
                        let v = o.get(&f.name).or(f.default.as_ref()).ok_or_else(|| {
                            format!("field {:?} is missing and has no default", f.name)
                        })?;
                        self.value(&f.kind, v, depth + 1)
                            .map_err(|e| format!("field {}: {e}", f.name))?;
                    }
                    Ok(())
                }
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Schema {
        Schema::parse(&json!({
            "type": "record", "name": "Order", "namespace": "shop",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "qty", "type": "int"},
                {"name": "price", "type": "double"},
                {"name": "status", "type": {"type": "enum", "name": "Status",
                    "symbols": ["NEW", "PAID"]}},
                {"name": "note", "type": ["null", "string"], "default": null},
                {"name": "customer", "type": {"type": "record", "name": "Customer",
                    "fields": [{"name": "email", "type": "string"},
                               {"name": "tags", "type": {"type": "array", "items": "string"},
                                "default": []}]}},
                {"name": "attrs", "type": {"type": "map", "values": "long"}, "default": {}},
                {"name": "digest", "type": {"type": "fixed", "name": "D", "size": 4},
                 "default": "abcd"},
                {"name": "raw", "type": "bytes", "default": ""}
            ]
        }))
        .unwrap()
    }

    fn good() -> Value {
        json!({"id": 9007199254740993_i64, "qty": 2, "price": 3, "status": "PAID",
               "customer": {"email": "a@b.c", "tags": ["x"]}, "attrs": {"a/b": 1}})
    }

    fn err(v: Value) -> JsonMismatch {
        validate(&order(), &v).unwrap_err()
    }

    #[test]
    fn natural_json_passes() {
        validate(&order(), &good()).unwrap();
        let mut v = good();
        v["note"] = json!("hello");
        validate(&order(), &v).unwrap();
        v["note"] = json!({"string": "wrapped, as Avro's JSON encoding does"});
        validate(&order(), &v).unwrap();
        v["note"] = Value::Null;
        validate(&order(), &v).unwrap();
    }

    /// Bytes as a string, or as the array of byte values the gateway writes
    /// when it delivers Avro as JSON (found by the `registry_json` fuzzer:
    /// converted payloads did not validate again).
    #[test]
    fn bytes_may_be_a_string_or_an_array_of_byte_values() {
        let mut v = good();
        v["raw"] = json!("text");
        validate(&order(), &v).unwrap();
        v["raw"] = json!([0, 255, 7]);
        validate(&order(), &v).unwrap();
        v["raw"] = json!([]);
        validate(&order(), &v).unwrap();
        for (bad, at) in [
            (json!([1, 256]), "/raw/1"),
            (json!(["a"]), "/raw/0"),
            (json!([-1]), "/raw/0"),
            (json!([1.5]), "/raw/0"),
        ] {
            v["raw"] = bad;
            let e = err(v.clone());
            assert_eq!(e.path, at, "{e:?}");
            assert!(e.message.contains("0-255"), "{e:?}");
        }
        // A string remains a string: no array spelling for it.
        v["raw"] = json!("");
        v["customer"]["email"] = json!([97]);
        assert_eq!(err(v).path, "/customer/email");
    }

    #[test]
    fn mismatches_point_at_the_first_bad_value() {
        let mut v = good();
        v["customer"]["tags"][0] = json!(5);
        let e = err(v);
        assert_eq!(e.path, "/customer/tags/0");
        assert_eq!(e.expected, "string");

        let mut v = good();
        v["attrs"]["a/b"] = json!("x");
        assert_eq!(err(v).path, "/attrs/a~1b");

        let mut v = good();
        v["qty"] = json!(1.5);
        assert_eq!(err(v).expected, "int");

        let mut v = good();
        v["qty"] = json!(3_000_000_000_i64);
        assert!(err(v).message.contains("32-bit"));

        let mut v = good();
        v["status"] = json!("SHIPPED");
        let e = err(v);
        assert_eq!(e.path, "/status");
        assert!(e.expected.starts_with("enum shop.Status"));

        let mut v = good();
        v["note"] = json!(7);
        let e = err(v);
        assert_eq!((e.path.as_str(), e.expected.as_str()), ("/note", "string"));
    }

    #[test]
    fn missing_required_and_unknown_fields_are_mismatches() {
        let mut v = good();
        v["customer"].as_object_mut().unwrap().remove("email");
        let e = err(v);
        assert_eq!(e.path, "/customer/email");
        assert!(e.message.contains("missing"));

        let mut v = good();
        v["colour"] = json!("red");
        let e = err(v);
        assert_eq!(e.path, "/colour");
        assert!(e.expected.starts_with("no such field"));

        assert_eq!(err(json!([1])).path, "");
    }

    #[test]
    fn unions_of_several_types_say_so() {
        let s = Schema::parse(&json!(["null", "int", "string"])).unwrap();
        validate(&s, &json!(1)).unwrap();
        validate(&s, &json!("x")).unwrap();
        validate(&s, &json!({"int": 1})).unwrap();
        let e = validate(&s, &json!(true)).unwrap_err();
        assert_eq!(e.expected, "one of [null, int, string]");
        let e = validate(&s, &json!({"int": "x"})).unwrap_err();
        assert_eq!(e.path, "/int");
    }
}
