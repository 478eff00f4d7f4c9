//! Whether a reader JSON schema accepts everything a writer JSON schema
//! accepts: Confluent's rules for JSON Schema evolution, with its names for
//! each kind of difference (`PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL`...).
//!
//! A backward check asks it of (old, new), a forward one of (new, old). The
//! rules, writer `w` against reader `r`:
//! - types: every type `w` allows must be one `r` allows (`integer` widens
//!   to `number`); fewer is `TYPE_NARROWED`, none in common `TYPE_CHANGED`;
//! - enums and constants: `r` may grow an enum, not shrink or add one;
//! - bounds (`maximum`, `minLength`, `maxItems`, `minProperties`...):
//!   `r` may relax or drop them, not add or tighten them; `multipleOf` and
//!   `pattern` likewise;
//! - objects, by content model (open: `additionalProperties` absent or
//!   true; closed: false; partially open: a schema). A property `r` adds is
//!   fine if `w` was closed (old data never has it), wrong if `w` was open
//!   (old data may hold anything there), and checked against `w`'s
//!   additional-properties schema if partially open; a property `r` drops
//!   is fine if `r` is open, wrong if closed. A property newly `required`
//!   needs a `default`. Closing or narrowing `additionalProperties` is
//!   wrong;
//! - arrays: items resolve; `uniqueItems` may not be added;
//! - `anyOf`/`oneOf`: every writer branch must be accepted by a reader
//!   branch; `allOf`: the writer must satisfy every reader branch; `not`:
//!   the writer's negated schema must cover the reader's.
//!
//! `$ref`s resolve inside each schema (`#/definitions/x`, `#/$defs/x`) and
//! through its references. The walk is bounded (depth and steps), so a
//! hostile schema ends it early rather than exhaust the stack; comparing a
//! schema with itself is always compatible.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::compat::Incompatibility;

use super::JsonSchema;

const MAX_DEPTH: usize = 64;
const MAX_STEPS: usize = 20_000;

/// Every way `reader` fails to accept data valid under `writer`.
pub fn can_read(writer: &JsonSchema, reader: &JsonSchema) -> Vec<Incompatibility> {
    let mut cx = Cx {
        w: Side {
            root: &writer.root,
            refs: &writer.refs,
        },
        r: Side {
            root: &reader.root,
            refs: &reader.refs,
        },
        steps: 0,
        out: Vec::new(),
    };
    cx.check(&writer.root, &reader.root, "#", 0);
    cx.out
}

#[derive(Clone, Copy)]
struct Side<'a> {
    root: &'a Value,
    refs: &'a HashMap<String, Value>,
}

impl<'a> Side<'a> {
    /// Follows `$ref`s from `v` (a few hops at most).
    fn deref(&self, mut v: &'a Value) -> &'a Value {
        for _ in 0..8 {
            let Some(target) = v.get("$ref").and_then(Value::as_str) else {
                return v;
            };
            let (doc, pointer) = target.split_once('#').unwrap_or((target, ""));
            let base = if doc.is_empty() {
                Some(self.root)
            } else {
                self.refs
                    .iter()
                    .find(|(name, _)| doc == name.as_str() || doc.ends_with(&format!("/{name}")))
                    .map(|(_, v)| v)
            };
            match base.and_then(|b| b.pointer(pointer)) {
                Some(next) => v = next,
                None => return v,
            }
        }
        v
    }
}

struct Cx<'a> {
    w: Side<'a>,
    r: Side<'a>,
    steps: usize,
    out: Vec<Incompatibility>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// Keywords that constrain nothing.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "definitions",
    "$defs",
    "readOnly",
    "writeOnly",
    "deprecated",
];

fn accepts_everything(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Object(o) => o.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

fn types(o: &Map<String, Value>) -> Option<Vec<&str>> {
    match o.get("type")? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

const ALL_TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "string", "integer",
];

enum Model<'a> {
    Open,
    Closed,
    Partial(&'a Value),
}

fn model(o: &Map<String, Value>) -> Model<'_> {
    match o.get("additionalProperties") {
        None | Some(Value::Bool(true)) => Model::Open,
        Some(Value::Bool(false)) => Model::Closed,
        Some(v) if accepts_everything(v) => Model::Open,
        Some(v) => Model::Partial(v),
    }
}

fn number(o: &Map<String, Value>, k: &str) -> Option<f64> {
    o.get(k).and_then(Value::as_f64)
}

impl<'a> Cx<'a> {
    fn push(&mut self, kind: &'static str, path: &str, message: String) {
        self.out.push(Incompatibility {
            kind,
            path: path.to_string(),
            message,
        });
    }

    /// Whether `r` accepts everything `w` does, without reporting.
    fn accepts(&mut self, w: &'a Value, r: &'a Value, path: &str, depth: usize) -> bool {
        let before = self.out.len();
        self.check(w, r, path, depth);
        let ok = self.out.len() == before;
        self.out.truncate(before);
        ok
    }

    fn check(&mut self, w: &'a Value, r: &'a Value, path: &str, depth: usize) {
        self.steps += 1;
        if depth > MAX_DEPTH || self.steps > MAX_STEPS {
            return;
        }
        let (w, r) = (self.w.deref(w), self.r.deref(r));
        if w == r || accepts_everything(r) || w == &Value::Bool(false) {
            return;
        }
        if r == &Value::Bool(false) {
            self.push(
                "SCHEMA_REMOVED",
                path,
                "the reader accepts nothing here (false schema)".into(),
            );
            return;
        }
        let wo = w.as_object().unwrap_or(&EMPTY);
        let ro = r.as_object().unwrap_or(&EMPTY);
        self.types(wo, ro, path);
        self.values(wo, ro, path);
        self.bounds(wo, ro, path);
        self.objects(wo, ro, path, depth);
        self.arrays(wo, ro, path, depth);
        self.combined(w, wo, ro, path, depth);
    }

    fn types(&mut self, wo: &Map<String, Value>, ro: &Map<String, Value>, path: &str) {
        let Some(rt) = types(ro) else { return };
        let wt = types(wo).unwrap_or_else(|| ALL_TYPES.to_vec());
        let accepted = |t: &str| rt.contains(&t) || (t == "integer" && rt.contains(&"number"));
        let missing: Vec<&str> = wt.iter().copied().filter(|t| !accepted(t)).collect();
        if missing.is_empty() {
            return;
        }
        // number -> integer keeps the integers: narrowed, not changed.
        let common = wt
            .iter()
            .any(|t| accepted(t) || (*t == "number" && rt.contains(&"integer")));
        let (kind, how) = if common {
            ("TYPE_NARROWED", "narrowed")
        } else {
            ("TYPE_CHANGED", "changed")
        };
        self.push(
            kind,
            path,
            format!(
                "type {how} from {wt:?} to {rt:?}: data of type {} is no longer accepted",
                missing.join(", ")
            ),
        );
    }

    fn values(&mut self, wo: &Map<String, Value>, ro: &Map<String, Value>, path: &str) {
        if let Some(Value::Array(re)) = ro.get("enum") {
            match (wo.get("enum"), wo.get("const")) {
                (Some(Value::Array(we)), _) => {
                    let lost: Vec<&Value> = we.iter().filter(|v| !re.contains(v)).collect();
                    if !lost.is_empty() {
                        self.push(
                            "ENUM_ARRAY_NARROWED",
                            path,
                            format!("enum values {lost:?} are no longer accepted"),
                        );
                    }
                }
                (_, Some(c)) if re.contains(c) => {}
                _ => self.push(
                    "ENUM_ARRAY_ADDED",
                    path,
                    "an enum is added where any value was accepted".into(),
                ),
            }
        }
        if let Some(rc) = ro.get("const") {
            let same = wo.get("const") == Some(rc)
                || matches!(wo.get("enum"), Some(Value::Array(we)) if we.iter().all(|v| v == rc));
            if !same {
                self.push(
                    "CONST_CHANGED",
                    path,
                    format!("only the constant {rc} is accepted"),
                );
            }
        }
    }

    fn bounds(&mut self, wo: &Map<String, Value>, ro: &Map<String, Value>, path: &str) {
        // (keyword, true when the bound is an upper one, added, tightened)
        const BOUNDS: &[(&str, bool, &str, &str)] = &[
            ("maximum", true, "MAXIMUM_ADDED", "MAXIMUM_DECREASED"),
            ("minimum", false, "MINIMUM_ADDED", "MINIMUM_INCREASED"),
            (
                "exclusiveMaximum",
                true,
                "EXCLUSIVE_MAXIMUM_ADDED",
                "EXCLUSIVE_MAXIMUM_DECREASED",
            ),
            (
                "exclusiveMinimum",
                false,
                "EXCLUSIVE_MINIMUM_ADDED",
                "EXCLUSIVE_MINIMUM_INCREASED",
            ),
            (
                "maxLength",
                true,
                "MAX_LENGTH_ADDED",
                "MAX_LENGTH_DECREASED",
            ),
            (
                "minLength",
                false,
                "MIN_LENGTH_ADDED",
                "MIN_LENGTH_INCREASED",
            ),
            ("maxItems", true, "MAX_ITEMS_ADDED", "MAX_ITEMS_DECREASED"),
            ("minItems", false, "MIN_ITEMS_ADDED", "MIN_ITEMS_INCREASED"),
            (
                "maxProperties",
                true,
                "MAX_PROPERTIES_ADDED",
                "MAX_PROPERTIES_DECREASED",
            ),
            (
                "minProperties",
                false,
                "MIN_PROPERTIES_ADDED",
                "MIN_PROPERTIES_INCREASED",
            ),
        ];
        for &(kw, upper, added, tightened) in BOUNDS {
            let Some(rb) = number(ro, kw) else { continue };
            match number(wo, kw) {
                None => self.push(added, path, format!("{kw} {rb} is added")),
                Some(wb) if (upper && wb > rb) || (!upper && wb < rb) => {
                    self.push(tightened, path, format!("{kw} changed from {wb} to {rb}"));
                }
                Some(_) => {}
            }
        }
        if let Some(rm) = number(ro, "multipleOf") {
            match number(wo, "multipleOf") {
                None => self.push(
                    "MULTIPLE_OF_ADDED",
                    path,
                    format!("multipleOf {rm} is added"),
                ),
                Some(wm) if rm != 0.0 && (wm / rm).fract() != 0.0 => self.push(
                    "MULTIPLE_OF_EXPANDED",
                    path,
                    format!("multipleOf changed from {wm} to {rm}, which does not divide it"),
                ),
                Some(_) => {}
            }
        }
        if let Some(rp) = ro.get("pattern") {
            match wo.get("pattern") {
                None => self.push("PATTERN_ADDED", path, format!("pattern {rp} is added")),
                Some(wp) if wp != rp => self.push(
                    "PATTERN_CHANGED",
                    path,
                    format!("pattern changed from {wp} to {rp}"),
                ),
                Some(_) => {}
            }
        }
        if ro.get("uniqueItems") == Some(&Value::Bool(true))
            && wo.get("uniqueItems") != Some(&Value::Bool(true))
        {
            self.push("UNIQUE_ITEMS_ADDED", path, "uniqueItems is added".into());
        }
    }

    fn objects(
        &mut self,
        wo: &'a Map<String, Value>,
        ro: &'a Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        let wp = wo
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY);
        let rp = ro
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY);
        for (name, rs) in rp {
            let at = format!("{path}/properties/{}", crate::compat::escape_pointer(name));
            match wp.get(name) {
                Some(ws) => self.check(ws, rs, &at, depth + 1),
                None => match model(wo) {
                    Model::Closed => {}
                    Model::Open => {
                        if !accepts_everything(self.r.deref(rs)) {
                            self.push(
                                "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                                &at,
                                format!(
                                    "property {name:?} is added while the writer's content \
                                     model is open: its data may already hold any value there"
                                ),
                            );
                        }
                    }
                    Model::Partial(extra) => {
                        if !self.accepts(extra, rs, &at, depth + 1) {
                            self.push(
                                "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                                &at,
                                format!(
                                    "property {name:?} is added, and the writer's \
                                     additionalProperties allows values it refuses"
                                ),
                            );
                        }
                    }
                },
            }
        }
        for (name, ws) in wp {
            if rp.contains_key(name) {
                continue;
            }
            let at = format!("{path}/properties/{}", crate::compat::escape_pointer(name));
            match model(ro) {
                Model::Open => {}
                Model::Closed => {
                    if ws != &Value::Bool(false) {
                        self.push(
                            "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                            &at,
                            format!(
                                "property {name:?} is removed while the reader's content \
                                 model is closed: data holding it is refused"
                            ),
                        );
                    }
                }
                Model::Partial(extra) => {
                    if !self.accepts(ws, extra, &at, depth + 1) {
                        self.push(
                            "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                            &at,
                            format!(
                                "property {name:?} is removed, and the reader's \
                                 additionalProperties refuses its values"
                            ),
                        );
                    }
                }
            }
        }
        let required = |o: &'a Map<String, Value>| -> Vec<&'a str> {
            o.get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        let wr = required(wo);
        for name in required(ro) {
            if wr.contains(&name) {
                continue;
            }
            let has_default = rp
                .get(name)
                .is_some_and(|s| self.r.deref(s).get("default").is_some());
            if has_default {
                continue;
            }
            let at = format!("{path}/required");
            if !wp.contains_key(name) && matches!(model(wo), Model::Closed) {
                self.push(
                    "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
                    &at,
                    format!("property {name:?} is added as required, without a default"),
                );
            } else {
                self.push(
                    "REQUIRED_ATTRIBUTE_ADDED",
                    &at,
                    format!("property {name:?} becomes required, without a default"),
                );
            }
        }
        let at = format!("{path}/additionalProperties");
        match (model(wo), model(ro)) {
            (Model::Open | Model::Partial(_), Model::Closed) => self.push(
                "ADDITIONAL_PROPERTIES_REMOVED",
                &at,
                "additionalProperties is false: undeclared properties are refused".into(),
            ),
            (Model::Open, Model::Partial(_)) => self.push(
                "ADDITIONAL_PROPERTIES_NARROWED",
                &at,
                "additionalProperties now restricts undeclared properties".into(),
            ),
            (Model::Partial(a), Model::Partial(b)) => self.check(a, b, &at, depth + 1),
            _ => {}
        }
    }

    fn arrays(
        &mut self,
        wo: &'a Map<String, Value>,
        ro: &'a Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        static TRUE: Value = Value::Bool(true);
        match (wo.get("items"), ro.get("items")) {
            (Some(Value::Array(wi)), Some(Value::Array(ri))) => {
                for (i, (w, r)) in wi.iter().zip(ri).enumerate() {
                    self.check(w, r, &format!("{path}/items/{i}"), depth + 1);
                }
            }
            (w, Some(r)) if !r.is_array() => {
                let w = match w {
                    Some(w) if !w.is_array() => w,
                    _ => &TRUE,
                };
                self.check(w, r, &format!("{path}/items"), depth + 1);
            }
            _ => {}
        }
        if let (Some(Value::Array(wi)), Some(Value::Array(ri))) =
            (wo.get("prefixItems"), ro.get("prefixItems"))
        {
            for (i, (w, r)) in wi.iter().zip(ri).enumerate() {
                self.check(w, r, &format!("{path}/prefixItems/{i}"), depth + 1);
            }
        }
    }

    fn combined(
        &mut self,
        w: &'a Value,
        wo: &'a Map<String, Value>,
        ro: &'a Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        for kw in ["anyOf", "oneOf"] {
            let Some(Value::Array(rb)) = ro.get(kw) else {
                continue;
            };
            let at = format!("{path}/{kw}");
            let writer_branches: Vec<&'a Value> = match wo.get(kw) {
                Some(Value::Array(wb)) => wb.iter().collect(),
                _ => vec![w],
            };
            for (i, wb) in writer_branches.into_iter().enumerate() {
                let covered = rb.iter().any(|r| self.accepts(wb, r, &at, depth + 1));
                if !covered {
                    self.push(
                        "SUM_TYPE_NARROWED",
                        &at,
                        format!(
                            "writer branch {i} is accepted by none of the reader's {kw} branches"
                        ),
                    );
                }
            }
        }
        if let Some(Value::Array(rb)) = ro.get("allOf") {
            for (i, r) in rb.iter().enumerate() {
                let at = format!("{path}/allOf/{i}");
                let ok = match wo.get("allOf") {
                    Some(Value::Array(wb)) => {
                        wb.iter().any(|w| self.accepts(w, r, &at, depth + 1))
                            || self.accepts(w, r, &at, depth + 1)
                    }
                    _ => self.accepts(w, r, &at, depth + 1),
                };
                if !ok {
                    self.push(
                        "PRODUCT_TYPE_EXTENDED",
                        &at,
                        format!("the writer's data need not satisfy the reader's allOf branch {i}"),
                    );
                }
            }
        }
        if let Some(rn) = ro.get("not") {
            let at = format!("{path}/not");
            match wo.get("not") {
                // not(A) accepts all that not(B) does when B covers A.
                Some(wn) => {
                    if !self.accepts_reversed(rn, wn, &at, depth + 1) {
                        self.push(
                            "NOT_TYPE_EXTENDED",
                            &at,
                            "the reader's not excludes data the writer allows".into(),
                        );
                    }
                }
                None => self.push("NOT_TYPE_ADDED", &at, "a not is added".into()),
            }
        }
    }

    /// `accepts` with the sides swapped (for `not`): the writer's schema is
    /// read as a reader's and the other way round.
    fn accepts_reversed(&mut self, w: &'a Value, r: &'a Value, path: &str, depth: usize) -> bool {
        std::mem::swap(&mut self.w, &mut self.r);
        let ok = self.accepts(w, r, path, depth);
        std::mem::swap(&mut self.w, &mut self.r);
        ok
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: Value) -> JsonSchema {
        JsonSchema::parse(&v.to_string(), HashMap::new()).unwrap()
    }

    fn kinds(w: Value, r: Value) -> Vec<&'static str> {
        can_read(&s(w), &s(r)).into_iter().map(|i| i.kind).collect()
    }

    #[test]
    fn adding_a_property_is_wrong_for_an_open_model_and_fine_for_a_closed_one() {
        let open = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let open2 = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
        assert_eq!(
            kinds(open, open2),
            vec!["PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"]
        );
        let closed = json!({"type": "object", "additionalProperties": false,
            "properties": {"a": {"type": "string"}}});
        let closed2 = json!({"type": "object", "additionalProperties": false,
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
        assert!(kinds(closed.clone(), closed2.clone()).is_empty());
        // Removing one is the mirror image.
        assert_eq!(
            kinds(closed2, closed),
            vec!["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"]
        );
    }

    #[test]
    fn required_needs_a_default_and_types_may_only_widen() {
        let v1 = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        let v2 =
            json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]});
        assert_eq!(kinds(v1.clone(), v2), vec!["REQUIRED_ATTRIBUTE_ADDED"]);
        let v3 = json!({"type": "object", "properties": {"a": {"type": "integer", "default": 0}}, "required": ["a"]});
        assert!(kinds(v1, v3).is_empty());
        assert!(kinds(json!({"type": "integer"}), json!({"type": "number"})).is_empty());
        assert_eq!(
            kinds(json!({"type": "number"}), json!({"type": "integer"})),
            vec!["TYPE_NARROWED"]
        );
        assert_eq!(
            kinds(json!({"type": "string"}), json!({"type": "integer"})),
            vec!["TYPE_CHANGED"]
        );
    }

    #[test]
    fn enums_may_grow_and_bounds_may_relax() {
        assert!(
            kinds(
                json!({"enum": ["a", "b"]}),
                json!({"enum": ["a", "b", "c"]})
            )
            .is_empty()
        );
        assert_eq!(
            kinds(json!({"enum": ["a", "b"]}), json!({"enum": ["a"]})),
            vec!["ENUM_ARRAY_NARROWED"]
        );
        assert!(kinds(json!({"maxLength": 5}), json!({"maxLength": 9})).is_empty());
        assert_eq!(
            kinds(json!({"maxLength": 9}), json!({"maxLength": 5})),
            vec!["MAX_LENGTH_DECREASED"]
        );
        assert_eq!(
            kinds(
                json!({"type": "string"}),
                json!({"type": "string", "pattern": "^a"})
            ),
            vec!["PATTERN_ADDED"]
        );
        assert_eq!(
            kinds(
                json!({"type": "object"}),
                json!({"type": "object", "additionalProperties": false})
            ),
            vec!["ADDITIONAL_PROPERTIES_REMOVED"]
        );
    }

    #[test]
    fn refs_are_followed_and_a_schema_reads_itself() {
        let v = json!({"definitions": {"q": {"type": "integer"}},
            "type": "object", "properties": {"q": {"$ref": "#/definitions/q"}},
            "anyOf": [{"required": ["q"]}, {"required": ["r"]}]});
        assert!(kinds(v.clone(), v).is_empty());
        let w = json!({"definitions": {"q": {"type": "string"}},
            "type": "object", "properties": {"q": {"$ref": "#/definitions/q"}}});
        let r = json!({"definitions": {"q": {"type": "integer"}},
            "type": "object", "properties": {"q": {"$ref": "#/definitions/q"}}});
        let found = can_read(&s(w), &s(r));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "#/properties/q");
    }
}
