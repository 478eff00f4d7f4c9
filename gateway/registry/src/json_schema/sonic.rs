//! Payloads as `sonic_rs` documents for the JSON Schema validator.
//!
//! `serde_json::Value` costs an allocation per string, per key and per
//! container node; for a 1 KB event that building (and freeing) is most of
//! what validation costs. A `sonic_rs` document is parsed with SIMD into a
//! few arena allocations, and strings are read in place. jsonschema walks
//! any representation that implements its `json` traits; this is that
//! glue, nothing more: `to_value` (a `serde_json::Value`, for error reports
//! and the cold paths) is the only conversion.

use std::borrow::Cow;
use std::cell::Cell;

use jsonschema::json::{Array, Json, Node, NodeIdentity, Object};
use jsonschema::types::JsonType;
use serde_json::{Number, Value};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

/// A payload parsed by `sonic_rs`.
pub struct Sonic;

impl Json for Sonic {
    type Node<'a> = &'a sonic_rs::Value;
    type PreparedKey = String;
    type StringBuffer = ();

    // An object's lookup is a scan of its members: a members pass beats
    // per-key lookups on objects of the sizes events have.
    const KEYS_PER_LOOKUP: usize = 16;
    // A parsed document is a tree.
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(&sonic_rs::Value) -> T) -> T {
        thread_local! {
            // Reused, so property names allocate only while it grows.
            static NAME: Cell<String> = const { Cell::new(String::new()) };
        }
        let mut name = NAME.take();
        name.clear();
        name.push_str(string);
        let node = sonic_rs::Value::from(name.as_str());
        let out = f(&node);
        NAME.set(name);
        out
    }
}

impl<'a> Node<'a, Sonic> for &'a sonic_rs::Value {
    type Object = &'a sonic_rs::Object;
    type Array = &'a sonic_rs::Array;
    type Number = Number;

    fn as_object(&self) -> Option<&'a sonic_rs::Object> {
        <sonic_rs::Value as JsonContainerTrait>::as_object(self)
    }

    fn as_array(&self) -> Option<&'a sonic_rs::Array> {
        <sonic_rs::Value as JsonContainerTrait>::as_array(self)
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        JsonValueTrait::as_str(*self).map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<Number> {
        if let Some(u) = JsonValueTrait::as_u64(*self) {
            Some(u.into())
        } else if let Some(i) = JsonValueTrait::as_i64(*self) {
            Some(i.into())
        } else {
            JsonValueTrait::as_f64(*self).and_then(Number::from_f64)
        }
    }

    fn is_number(&self) -> bool {
        JsonValueTrait::is_number(*self)
    }

    fn as_boolean(&self) -> Option<bool> {
        JsonValueTrait::as_bool(*self)
    }

    fn is_null(&self) -> bool {
        JsonValueTrait::is_null(*self)
    }

    fn json_type(&self) -> JsonType {
        match JsonValueTrait::get_type(*self) {
            sonic_rs::JsonType::Null => JsonType::Null,
            sonic_rs::JsonType::Boolean => JsonType::Boolean,
            sonic_rs::JsonType::Number => JsonType::Number,
            sonic_rs::JsonType::String => JsonType::String,
            sonic_rs::JsonType::Object => JsonType::Object,
            sonic_rs::JsonType::Array => JsonType::Array,
        }
    }

    fn string_length(&self) -> Option<u64> {
        JsonValueTrait::as_str(*self).map(|s| s.chars().count() as u64)
    }

    /// `enum` and `const` of strings compare without building a value.
    fn equals_value(&self, expected: &Value) -> bool {
        match (JsonValueTrait::as_str(*self), expected) {
            (Some(s), Value::String(e)) => s == e,
            (Some(_), _) => false,
            (None, Value::String(_)) => false,
            _ => jsonschema::json::cmp::equal(&self.to_value(), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        // Cold: error reports, annotations, `uniqueItems`.
        Cow::Owned(serde_json::to_value(*self).unwrap_or(Value::Null))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(std::ptr::from_ref(*self) as usize))
    }
}

/// An object's members in document order.
pub struct Members<'a>(sonic_rs::value::object::Iter<'a>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a sonic_rs::Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl<'a> Object<'a, Sonic> for &'a sonic_rs::Object {
    type Node = &'a sonic_rs::Value;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        sonic_rs::Object::len(self)
    }

    fn get(&self, key: &String) -> Option<&'a sonic_rs::Value> {
        sonic_rs::Object::get(self, key)
    }

    fn members(&self) -> Members<'a> {
        Members(sonic_rs::Object::iter(self))
    }
}

impl<'a> Array<'a, Sonic> for &'a sonic_rs::Array {
    type Node = &'a sonic_rs::Value;
    type ElementsIter = std::slice::Iter<'a, sonic_rs::Value>;

    fn len(&self) -> usize {
        sonic_rs::Array::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, sonic_rs::Value> {
        self.as_slice().iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meets_the_validators_contract() {
        let doc: sonic_rs::Value =
            sonic_rs::from_str(&jsonschema::json::conformance::document().to_string())
                .expect("the conformance document parses");
        jsonschema::json::conformance::assert_conformance::<Sonic>(&&doc);
    }
}
