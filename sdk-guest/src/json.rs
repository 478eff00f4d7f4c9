//! Reading one value out of a JSON payload without building the document.
//!
//! [`lookup`] walks the payload with serde_json's streaming deserializer:
//! object keys are compared in place (no allocation), the subtrees off the
//! pointer's path are skipped with [`IgnoredAny`], only the value at the
//! pointer is deserialized, as whatever type the caller asks for (borrowing
//! from the payload where it can), and the walk stops there. So:
//! - the cost is the bytes up to the value, not the whole payload;
//! - the first occurrence of a duplicated key wins (`serde_json::Value`
//!   keeps the last);
//! - a payload that is broken *after* the value still gives the value; one
//!   broken before it, or at it, gives `None`. `Event::json` checks the
//!   whole payload.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// The value at an RFC 6901 `pointer` in `payload`, deserialized as `T`;
/// `None` if nothing is at the pointer, the value there is not a `T`, or
/// the payload is not JSON up to it.
pub fn lookup<'de, T: Deserialize<'de>>(payload: &'de [u8], pointer: &str) -> Option<T> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    if pointer.is_empty() {
        // The whole document: it must all be valid.
        let leaf = Leaf::deserialize(&mut de).ok()?;
        de.end().ok()?;
        return leaf.into_t();
    }
    if !pointer.starts_with('/') {
        return None;
    }
    let found = Cell::new(None);
    // Once the value is found the walk returns without reading the rest,
    // which serde_json reports as an error in the enclosing containers;
    // `found` tells that apart from a payload that is broken before it.
    let _ = Walk::<T> {
        pointer,
        found: &found,
    }
    .deserialize(&mut de);
    found.take().flatten()
}

/// The first reference token of a pointer that starts with `/`, unescaped
/// (`~1` is `/`, `~0` is `~`), and the rest of the pointer. Tokens are taken
/// one at a time as the walk descends, so a lookup allocates nothing unless
/// a token holds an escape.
fn first_token(pointer: &str) -> (Cow<'_, str>, &str) {
    let body = pointer.get(1..).unwrap_or("");
    let (raw, rest) = body.find('/').map_or((body, ""), |i| body.split_at(i));
    let token = if raw.contains('~') {
        Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(raw)
    };
    (token, rest)
}

/// An array index as serde_json's `Value::pointer` reads it: digits, no
/// sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Walks to the value at `pointer` from the current value, skipping the
/// rest. On reaching it (or finding it absent), stores it in `found`
/// (`Some(None)`: absent, or not a `T`) and returns at once, leaving the
/// rest of the payload unread; with `found` still empty the branch did not
/// hold the path and the walk goes on.
struct Walk<'t, T> {
    /// What is left of the pointer: `""` at the value, else `/token...`.
    pointer: &'t str,
    found: &'t Cell<Option<Option<T>>>,
}

impl<'de, T: Deserialize<'de>> Walk<'_, T> {
    /// True until the value (or its absence) is settled.
    fn found_nothing(&self) -> bool {
        // `Cell<Option<Option<T>>>` without `T: Copy`: take and put back.
        let v = self.found.take();
        let none = v.is_none();
        self.found.set(v);
        none
    }

    fn deeper<'a>(&'a self, rest: &'a str) -> Walk<'a, T> {
        Walk {
            pointer: rest,
            found: self.found,
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Walk<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.pointer.is_empty() {
            // The leaf. serde_json's deserializer stops at the first type
            // mismatch with the input half-read, so the leaf is read as a
            // `Leaf` first, then converted: a mismatch is `None`.
            let leaf = Leaf::deserialize(d)?;
            self.found.set(Some(leaf.into_t()));
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Walk<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (token, rest) = first_token(self.pointer);
        while let Some(hit) = map.next_key_seed(KeyIs(&token))? {
            if hit {
                // First match wins: whatever is under it is the answer.
                map.next_value_seed(self.deeper(rest))?;
                if self.found_nothing() {
                    self.found.set(Some(None));
                }
                // Leaving with entries unread makes serde_json fail the
                // object (a cheap syntax error, no message to format),
                // which ends the walk.
                return Ok(());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (token, rest) = first_token(self.pointer);
        let Some(want) = index(&token) else {
            self.found.set(Some(None));
            return Err(de::Error::custom("not an index"));
        };
        for _ in 0..want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                self.found.set(Some(None));
                return Err(de::Error::custom("out of bounds"));
            }
        }
        if seq.next_element_seed(self.deeper(rest))?.is_none() || self.found_nothing() {
            self.found.set(Some(None));
        }
        Ok(())
    }

    // A scalar where the path wants to go deeper: nothing is there.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Compares an object key with a token, without allocating.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The value at the pointer, as read from the payload: scalars borrowed
/// where possible, anything else as a `serde_json::Value`.
enum Leaf<'de> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'de, str>),
    Other(serde_json::Value),
}

impl<'de> Deserialize<'de> for Leaf<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LeafVisitor)
    }
}

struct LeafVisitor;

impl<'de> Visitor<'de> for LeafVisitor {
    type Value = Leaf<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Leaf<'de>, E> {
        Ok(Number::from_f64(v).map_or(Leaf::Null, Leaf::Number))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Leaf<'de>, E> {
        Ok(Leaf::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Leaf<'de>, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Leaf::Other(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Leaf<'de>, A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Leaf::Other(v))
    }
}

impl<'de> Leaf<'de> {
    /// Converts into the caller's type; `None` if it is not one.
    fn into_t<T: Deserialize<'de>>(self) -> Option<T> {
        use serde::de::IntoDeserializer;
        type E = de::value::Error;
        match self {
            Leaf::Null => T::deserialize(IntoDeserializer::<E>::into_deserializer(())).ok(),
            Leaf::Bool(b) => T::deserialize(IntoDeserializer::<E>::into_deserializer(b)).ok(),
            Leaf::Number(n) => T::deserialize(n).ok(),
            Leaf::Str(Cow::Borrowed(s)) => {
                T::deserialize(de::value::BorrowedStrDeserializer::<E>::new(s)).ok()
            }
            Leaf::Str(Cow::Owned(s)) => {
                T::deserialize(IntoDeserializer::<E>::into_deserializer(s)).ok()
            }
            Leaf::Other(v) => T::deserialize(v).ok(),
        }
    }
}

/// A scalar at a pointer, spelled as text: strings as they are (borrowed
/// from the payload unless they hold escapes), numbers and booleans in their
/// JSON spelling; `None` for null, objects and arrays.
pub(crate) struct Text<'de>(pub(crate) Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(match Leaf::deserialize(d)? {
            Leaf::Str(s) => Some(s),
            Leaf::Number(n) => Some(Cow::Owned(n.to_string())),
            Leaf::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            Leaf::Null | Leaf::Other(_) => None,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const DOC: &str = r#"{"a":{"b":[10,{"c":"deep"}],"x":1.5},"s":"plain","e":"tab\there",
        "t":true,"n":null,"a/b":"slash","m~n":"tilde","big":18446744073709551615}"#;

    #[test]
    fn agrees_with_value_pointer() {
        let full: Value = serde_json::from_str(DOC).unwrap();
        for p in [
            "",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/2",
            "/a/b/01",
            "/a/x",
            "/s",
            "/e",
            "/t",
            "/n",
            "/a~1b",
            "/m~0n",
            "/dup",
            "/big",
            "/missing",
            "/s/deeper",
            "/a/b/x",
            "/",
            "/a/",
            "/a//b",
            "nope",
        ] {
            let lazy: Option<Value> = lookup(DOC.as_bytes(), p);
            assert_eq!(lazy.as_ref(), full.pointer(p), "pointer {p:?}");
        }
    }

    #[test]
    fn borrows_plain_strings_and_types_the_leaf() {
        let got: Option<&str> = lookup(DOC.as_bytes(), "/a/b/1/c");
        assert_eq!(got, Some("deep"));
        let escaped: Option<Cow<str>> = lookup(DOC.as_bytes(), "/e");
        assert_eq!(escaped.as_deref(), Some("tab\there"));
        assert_eq!(lookup::<u64>(DOC.as_bytes(), "/a/b/0"), Some(10));
        assert_eq!(lookup::<u64>(DOC.as_bytes(), "/s"), None, "not a number");
        assert_eq!(lookup::<f64>(DOC.as_bytes(), "/a/x"), Some(1.5));
        assert_eq!(lookup::<bool>(DOC.as_bytes(), "/t"), Some(true));
        assert_eq!(lookup::<Option<u8>>(DOC.as_bytes(), "/n"), Some(None));
        assert_eq!(
            lookup::<Value>(DOC.as_bytes(), "/a/b/1"),
            Some(json!({"c": "deep"}))
        );
    }

    #[test]
    fn stops_at_the_value() {
        // The first of duplicated keys; what follows the value is not read.
        assert_eq!(lookup::<u8>(br#"{"d":1,"d":2}"#, "/d"), Some(1));
        assert_eq!(lookup::<&str>(br#"{"s":"x", garbage"#, "/s"), Some("x"));
        // Broken before or at the value, or no value: nothing.
        for bad in [
            r#"{garbage, "s":"x"}"#,
            r#"{"s":"x"#,
            r#"{"s":tru}"#,
            r#"{"t":[1,}, "s":"x"}"#,
            "not json",
            "",
        ] {
            assert!(lookup::<Value>(bad.as_bytes(), "/s").is_none(), "{bad}");
        }
        // The whole document is checked whole.
        assert!(lookup::<Value>(br#"{"s":1} trailing"#, "").is_none());
    }

    #[test]
    fn text_spells_scalars() {
        let text = |p| lookup::<Text>(DOC.as_bytes(), p).and_then(|t| t.0);
        assert_eq!(text("/s").as_deref(), Some("plain"));
        assert!(matches!(text("/s"), Some(Cow::Borrowed(_))));
        assert_eq!(text("/a/x").as_deref(), Some("1.5"));
        assert_eq!(text("/t").as_deref(), Some("true"));
        assert_eq!(text("/big").as_deref(), Some("18446744073709551615"));
        assert_eq!(text("/n"), None);
        assert_eq!(text("/a"), None);
    }
}
