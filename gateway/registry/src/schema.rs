//! Avro schemas as the registry works with them: parsed once into a small
//! model that the compatibility checker and both validators walk, plus the
//! normalized text that decides schema identity.
//!
//! Why a model of our own next to apache-avro: the checker and the JSON
//! validator need field paths, aliases, defaults and enum defaults at hand,
//! and the binary validator needs to walk a datum without building a `Value`.
//! apache-avro stays the gate for what counts as a valid schema, so the
//! registry refuses exactly what the reference implementation refuses.
//!
//! Named types live in an arena (`Schema::named`) and are referred to by
//! index, which makes recursive types (a linked list) plain data.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// A parse failure: the message is shown to the client as a 42201.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One type in a schema. Logical types are represented by their underlying
/// type: that is what resolution and encoding depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    /// Index into [`Schema::named`]; the entry is a record, enum or fixed.
    Named(usize),
    Array(Box<Kind>),
    Map(Box<Kind>),
    Union(Vec<Kind>),
}

/// A record, enum or fixed, with its full name and aliases.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub fullname: String,
    /// Fully qualified, as the spec resolves them against the namespace.
    pub aliases: Vec<String>,
    pub def: NamedDef,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NamedDef {
    Record {
        fields: Vec<Field>,
    },
    Enum {
        symbols: Vec<String>,
        default: Option<String>,
    },
    Fixed {
        size: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub aliases: Vec<String>,
    pub kind: Kind,
    /// The default in Avro's JSON encoding; a reader uses it when the writer
    /// has no such field.
    pub default: Option<Value>,
}

/// A parsed schema: the root type and the arena of named types it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub root: Kind,
    pub named: Vec<Named>,
}

impl Named {
    /// The name without its namespace: records and enums match on it during
    /// resolution (Avro spec, "Schema Resolution").
    pub fn short_name(&self) -> &str {
        short(&self.fullname)
    }
}

pub fn short(fullname: &str) -> &str {
    fullname.rsplit('.').next().unwrap_or(fullname)
}

impl Schema {
    /// Parses a schema's JSON text. The text must already be valid JSON.
    pub fn parse(json: &Value) -> Result<Schema, SchemaError> {
        let mut p = Parser {
            named: Vec::new(),
            by_name: HashMap::new(),
        };
        let root = p.kind(json, "")?;
        Ok(Schema {
            root,
            named: p.named,
        })
    }

    /// A readable name of a type, for error messages and `expected`.
    pub fn describe(&self, kind: &Kind) -> String {
        match kind {
            Kind::Null => "null".into(),
            Kind::Boolean => "boolean".into(),
            Kind::Int => "int".into(),
            Kind::Long => "long".into(),
            Kind::Float => "float".into(),
            Kind::Double => "double".into(),
            Kind::Bytes => "bytes".into(),
            Kind::String => "string".into(),
            Kind::Array(items) => format!("array of {}", self.describe(items)),
            Kind::Map(values) => format!("map of {}", self.describe(values)),
            Kind::Union(branches) => {
                let names: Vec<String> = branches.iter().map(|b| self.describe(b)).collect();
                format!("one of [{}]", names.join(", "))
            }
            Kind::Named(i) => {
                let n = &self.named[*i];
                match &n.def {
                    NamedDef::Record { .. } => format!("record {}", n.fullname),
                    NamedDef::Enum { symbols, .. } => {
                        format!("enum {} (one of {})", n.fullname, symbols.join(", "))
                    }
                    NamedDef::Fixed { size } => format!("fixed {} ({size} bytes)", n.fullname),
                }
            }
        }
    }

    /// The name a union branch goes by in Avro's JSON encoding
    /// (`{"string": "x"}`, `{"com.acme.Order": {...}}`).
    pub fn branch_name(&self, kind: &Kind) -> String {
        match kind {
            Kind::Named(i) => self.named[*i].fullname.clone(),
            Kind::Array(_) => "array".into(),
            Kind::Map(_) => "map".into(),
            Kind::Union(_) => "union".into(),
            other => self.describe(other),
        }
    }
}

struct Parser {
    named: Vec<Named>,
    by_name: HashMap<String, usize>,
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

fn primitive(name: &str) -> Option<Kind> {
    Some(match name {
        "null" => Kind::Null,
        "boolean" => Kind::Boolean,
        "int" => Kind::Int,
        "long" => Kind::Long,
        "float" => Kind::Float,
        "double" => Kind::Double,
        "bytes" => Kind::Bytes,
        "string" => Kind::String,
        _ => return None,
    })
}

/// Resolves `name` against `namespace` as the spec says: a dotted name is
/// already full; otherwise the enclosing namespace applies.
fn qualify(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

/// The namespace part of a full name ("" when there is none).
fn namespace_of(fullname: &str) -> &str {
    fullname.rsplit_once('.').map(|(ns, _)| ns).unwrap_or("")
}

/// The full name of a named type definition, from `name` and `namespace`.
fn definition_name(obj: &Map<String, Value>, enclosing: &str) -> Result<String, SchemaError> {
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| SchemaError("a named type needs a \"name\" string".into()))?;
    if name.contains('.') {
        return Ok(name.to_string());
    }
    let ns = match obj.get("namespace") {
        Some(Value::String(ns)) => ns.as_str(),
        Some(Value::Null) | None => enclosing,
        Some(_) => return Err(SchemaError("\"namespace\" must be a string".into())),
    };
    Ok(qualify(name, ns))
}

fn aliases(obj: &Map<String, Value>, namespace: &str) -> Result<Vec<String>, SchemaError> {
    match obj.get("aliases") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| qualify(s, namespace))
                    .ok_or_else(|| SchemaError("aliases must be strings".into()))
            })
            .collect(),
        Some(_) => Err(SchemaError("\"aliases\" must be an array".into())),
    }
}

impl Parser {
    fn kind(&mut self, json: &Value, ns: &str) -> Result<Kind, SchemaError> {
        match json {
            Value::String(name) => self.reference(name, ns),
            Value::Array(branches) => {
                let mut out = Vec::with_capacity(branches.len());
                for b in branches {
                    let k = self.kind(b, ns)?;
                    if matches!(k, Kind::Union(_)) {
                        return Err(SchemaError(
                            "unions may not immediately contain unions".into(),
                        ));
                    }
                    out.push(k);
                }
                Ok(Kind::Union(out))
            }
            Value::Object(obj) => self.complex(obj, ns),
            other => Err(SchemaError(format!("not a schema: {other}"))),
        }
    }

    fn reference(&self, name: &str, ns: &str) -> Result<Kind, SchemaError> {
        if let Some(k) = primitive(name) {
            return Ok(k);
        }
        // A name is looked up in the enclosing namespace first, then as is.
        let full = qualify(name, ns);
        self.by_name
            .get(&full)
            .or_else(|| self.by_name.get(name))
            .map(|i| Kind::Named(*i))
            .ok_or_else(|| SchemaError(format!("unknown type {name:?}")))
    }

    fn complex(&mut self, obj: &Map<String, Value>, ns: &str) -> Result<Kind, SchemaError> {
        let ty = obj
            .get("type")
            .ok_or_else(|| SchemaError("a schema object needs a \"type\"".into()))?;
        let ty = match ty {
            Value::String(t) => t.as_str(),
            // {"type": {...}} or {"type": [...]}: the object only wraps a type.
            nested => return self.kind(nested, ns),
        };
        match ty {
            "record" | "error" => {
                let fullname = definition_name(obj, ns)?;
                let inner_ns = namespace_of(&fullname).to_string();
                let index = self.define(&fullname, obj, &inner_ns)?;
                let fields_json = obj.get("fields").and_then(Value::as_array).ok_or_else(|| {
                    SchemaError(format!("record {fullname} needs a \"fields\" array"))
                })?;
                let mut fields = Vec::with_capacity(fields_json.len());
                for f in fields_json {
                    let f = f.as_object().ok_or_else(|| {
                        SchemaError(format!("record {fullname}: a field must be an object"))
                    })?;
                    let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                        SchemaError(format!("record {fullname}: a field needs a \"name\""))
                    })?;
                    let fty = f.get("type").ok_or_else(|| {
                        SchemaError(format!("field {fullname}.{name} needs a \"type\""))
                    })?;
                    let kind = self.kind(fty, &inner_ns)?;
                    let field_aliases = match f.get("aliases") {
                        Some(Value::Array(a)) => a
                            .iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect(),
                        _ => Vec::new(),
                    };
                    fields.push(Field {
                        name: name.to_string(),
                        aliases: field_aliases,
                        kind,
                        default: f.get("default").cloned(),
                    });
                }
                self.named[index].def = NamedDef::Record { fields };
                // Defaults are checked once every type they may name exists.
                if let NamedDef::Record { fields } = &self.named[index].def {
                    for f in fields {
                        if let Some(d) = &f.default {
                            let tmp = Schema {
                                root: Kind::Null,
                                named: self.named.clone(),
                            };
                            if !default_matches(&tmp, &f.kind, d) {
                                return Err(SchemaError(format!(
                                    "field {fullname}.{}: default {d} is not a {}",
                                    f.name,
                                    tmp.describe(first_branch(&f.kind))
                                )));
                            }
                        }
                    }
                }
                Ok(Kind::Named(index))
            }
            "enum" => {
                let fullname = definition_name(obj, ns)?;
                let inner_ns = namespace_of(&fullname).to_string();
                let symbols: Vec<String> = obj
                    .get("symbols")
                    .and_then(Value::as_array)
                    .ok_or_else(|| SchemaError(format!("enum {fullname} needs \"symbols\"")))?
                    .iter()
                    .map(|s| {
                        s.as_str().map(String::from).ok_or_else(|| {
                            SchemaError(format!("enum {fullname}: symbols must be strings"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let default = match obj.get("default") {
                    Some(Value::String(d)) if symbols.contains(d) => Some(d.clone()),
                    None | Some(Value::Null) => None,
                    Some(d) => {
                        return Err(SchemaError(format!(
                            "enum {fullname}: default {d} is not one of its symbols"
                        )));
                    }
                };
                let index = self.define(&fullname, obj, &inner_ns)?;
                self.named[index].def = NamedDef::Enum { symbols, default };
                Ok(Kind::Named(index))
            }
            "fixed" => {
                let fullname = definition_name(obj, ns)?;
                let inner_ns = namespace_of(&fullname).to_string();
                let size = obj
                    .get("size")
                    .and_then(Value::as_u64)
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| SchemaError(format!("fixed {fullname} needs a \"size\"")))?;
                let index = self.define(&fullname, obj, &inner_ns)?;
                self.named[index].def = NamedDef::Fixed { size };
                Ok(Kind::Named(index))
            }
            "array" => {
                let items = obj
                    .get("items")
                    .ok_or_else(|| SchemaError("an array needs \"items\"".into()))?;
                Ok(Kind::Array(Box::new(self.kind(items, ns)?)))
            }
            "map" => {
                let values = obj
                    .get("values")
                    .ok_or_else(|| SchemaError("a map needs \"values\"".into()))?;
                Ok(Kind::Map(Box::new(self.kind(values, ns)?)))
            }
            other => self.reference(other, ns),
        }
    }

    /// Registers a named type before its body is parsed, so the body may
    /// refer to it (recursive records).
    fn define(
        &mut self,
        fullname: &str,
        obj: &Map<String, Value>,
        ns: &str,
    ) -> Result<usize, SchemaError> {
        if PRIMITIVES.contains(&short(fullname)) {
            return Err(SchemaError(format!(
                "{fullname:?} may not be used as a type name"
            )));
        }
        if self.by_name.contains_key(fullname) {
            return Err(SchemaError(format!("type {fullname} is defined twice")));
        }
        let index = self.named.len();
        self.named.push(Named {
            fullname: fullname.to_string(),
            aliases: aliases(obj, ns)?,
            def: NamedDef::Fixed { size: 0 },
        });
        self.by_name.insert(fullname.to_string(), index);
        Ok(index)
    }
}

fn first_branch(kind: &Kind) -> &Kind {
    match kind {
        Kind::Union(b) => b.first().unwrap_or(kind),
        k => k,
    }
}

/// Whether `value` is a valid default for `kind` in Avro's JSON encoding.
/// For a union the spec says the default belongs to the first branch;
/// like Avro Java we check only that.
pub fn default_matches(schema: &Schema, kind: &Kind, value: &Value) -> bool {
    default_matches_depth(schema, kind, value, 0)
}

fn default_matches_depth(schema: &Schema, kind: &Kind, value: &Value, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    match (kind, value) {
        (Kind::Null, Value::Null) => true,
        (Kind::Boolean, Value::Bool(_)) => true,
        (Kind::Int, Value::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        (Kind::Long, Value::Number(n)) => n.as_i64().is_some(),
        (Kind::Float | Kind::Double, Value::Number(_)) => true,
        (Kind::Bytes | Kind::String, Value::String(_)) => true,
        (Kind::Array(items), Value::Array(a)) => a
            .iter()
            .all(|v| default_matches_depth(schema, items, v, depth + 1)),
        (Kind::Map(values), Value::Object(o)) => o
            .values()
            .all(|v| default_matches_depth(schema, values, v, depth + 1)),
        (Kind::Union(branches), v) => branches
            .first()
            .is_some_and(|b| default_matches_depth(schema, b, v, depth + 1)),
        (Kind::Named(i), v) => match (&schema.named[*i].def, v) {
            (NamedDef::Enum { symbols, .. }, Value::String(s)) => symbols.contains(s),
            (NamedDef::Fixed { .. }, Value::String(_)) => true,
            (NamedDef::Record { fields }, Value::Object(o)) => {
                fields.iter().all(|f| match o.get(&f.name) {
                    Some(v) => default_matches_depth(schema, &f.kind, v, depth + 1),
                    None => f.default.is_some(),
                })
            }
            _ => false,
        },
        _ => false,
    }
}

/// The normalized text of a schema: what decides whether two submissions are
/// the same schema. Whitespace and key order don't matter, `{"type": "int"}`
/// equals `"int"`, and names are fully qualified; but docs, defaults, aliases
/// and custom properties all count, because a schema that differs in a
/// default is a different contract (canonical form would drop it).
pub fn normalized_text(json: &Value) -> String {
    let mut out = String::new();
    write_sorted(&normalize(json, ""), &mut out);
    out
}

fn normalize(json: &Value, ns: &str) -> Value {
    match json {
        Value::String(name) => {
            if primitive(name).is_some() {
                json.clone()
            } else {
                Value::String(qualify(name, ns))
            }
        }
        Value::Array(branches) => Value::Array(branches.iter().map(|b| normalize(b, ns)).collect()),
        Value::Object(obj) => {
            let ty = obj.get("type");
            let ty_str = ty.and_then(Value::as_str).unwrap_or("");
            if primitive(ty_str).is_some() && obj.len() == 1 {
                return Value::String(ty_str.to_string());
            }
            let mut out = obj.clone();
            match ty_str {
                "record" | "error" | "enum" | "fixed" => {
                    let Ok(full) = definition_name(obj, ns) else {
                        return json.clone();
                    };
                    let inner = namespace_of(&full).to_string();
                    out.remove("namespace");
                    if let Ok(a) = aliases(obj, &inner)
                        && !a.is_empty()
                    {
                        out.insert(
                            "aliases".into(),
                            Value::Array(a.into_iter().map(Value::String).collect()),
                        );
                    }
                    out.insert("name".into(), Value::String(full));
                    if let Some(Value::Array(fields)) = obj.get("fields") {
                        let fields = fields
                            .iter()
                            .map(|f| match f {
                                Value::Object(fo) => {
                                    let mut fo = fo.clone();
                                    if let Some(t) = fo.get("type") {
                                        let t = normalize(t, &inner);
                                        fo.insert("type".into(), t);
                                    }
                                    Value::Object(fo)
                                }
                                other => other.clone(),
                            })
                            .collect();
                        out.insert("fields".into(), Value::Array(fields));
                    }
                }
                "array" => {
                    if let Some(items) = obj.get("items") {
                        out.insert("items".into(), normalize(items, ns));
                    }
                }
                "map" => {
                    if let Some(values) = obj.get("values") {
                        out.insert("values".into(), normalize(values, ns));
                    }
                }
                _ => {
                    if let Some(t) = ty {
                        let t = normalize(t, ns);
                        if obj.len() == 1 {
                            return t;
                        }
                        out.insert("type".into(), t);
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Compact JSON with object keys sorted, whatever map order serde_json was
/// built with (another crate may turn on `preserve_order`).
fn write_sorted(v: &Value, out: &mut String) {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(val) = o.get(*k) {
                    write_sorted(val, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_recursive_and_namespaced_types() {
        let s = Schema::parse(&json!({
            "type": "record", "name": "Node", "namespace": "a.b",
            "fields": [
                {"name": "value", "type": "long"},
                {"name": "next", "type": ["null", "Node"], "default": null},
                {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["X", "Y"]}},
                {"name": "other", "type": "a.b.K"}
            ]
        }))
        .unwrap();
        assert_eq!(s.named[0].fullname, "a.b.Node");
        assert_eq!(s.named[1].fullname, "a.b.K");
        let NamedDef::Record { fields } = &s.named[0].def else {
            panic!()
        };
        assert_eq!(
            fields[1].kind,
            Kind::Union(vec![Kind::Null, Kind::Named(0)])
        );
        assert_eq!(fields[3].kind, Kind::Named(1));
    }

    #[test]
    fn rejects_bad_defaults_and_unknown_names() {
        let bad = json!({"type": "record", "name": "R",
            "fields": [{"name": "a", "type": "int", "default": "x"}]});
        assert!(Schema::parse(&bad).is_err());
        let union_second = json!({"type": "record", "name": "R",
            "fields": [{"name": "a", "type": ["null", "int"], "default": 1}]});
        assert!(Schema::parse(&union_second).is_err());
        assert!(Schema::parse(&json!("Missing")).is_err());
    }

    #[test]
    fn normalized_text_ignores_layout_but_not_defaults() {
        let a = json!({"type": "record", "name": "R", "namespace": "n",
            "fields": [{"name": "a", "type": {"type": "int"}, "default": 1}]});
        let b = json!({"fields": [{"default": 1, "type": "int", "name": "a"}],
            "name": "n.R", "type": "record"});
        let c = json!({"type": "record", "name": "R", "namespace": "n",
            "fields": [{"name": "a", "type": "int", "default": 2}]});
        assert_eq!(normalized_text(&a), normalized_text(&b));
        assert_ne!(normalized_text(&a), normalized_text(&c));
    }
}
