//! `redact`: masks or removes sensitive JSON fields before delivery.
//!
//! Config:
//! - `mask` (optional): JSON pointers whose values are replaced by the mask,
//!   comma-separated, e.g. `/card/number,/customer/email`.
//! - `remove` (optional): JSON pointers removed from the payload.
//! - `keys` (optional): object keys masked wherever they appear, at any
//!   depth, e.g. `email,card_number,password`.
//! - `replacement` (optional, default `[redacted]`): the mask text.
//! - `keep_last` (optional, default 0): characters kept at the end of a masked
//!   string, e.g. 4 to keep a card's last four digits.
//!
//! A payload that is not JSON passes unchanged: redaction cannot know what to
//! mask in it, and dropping it would lose the event.

use switchyard_sdk::{Config, Event, Plugin, Value, Verdict, serde_json};

/// What to mask and how.
pub struct Redact {
    mask: Vec<String>,
    remove: Vec<String>,
    keys: Vec<String>,
    replacement: String,
    keep_last: usize,
}

impl Redact {
    fn masked(&self, value: &Value) -> Value {
        match value {
            Value::String(s) if self.keep_last > 0 => {
                let chars: Vec<char> = s.chars().collect();
                let keep = chars.len().min(self.keep_last);
                let tail: String = chars[chars.len() - keep..].iter().collect();
                Value::String(format!("{}{tail}", self.replacement))
            }
            _ => Value::String(self.replacement.clone()),
        }
    }

    fn mask_keys(&self, value: &mut Value) -> bool {
        let mut changed = false;
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if self.keys.iter().any(|key| key == k) {
                        *v = self.masked(v);
                        changed = true;
                    } else {
                        changed |= self.mask_keys(v);
                    }
                }
            }
            Value::Array(items) => {
                for v in items {
                    changed |= self.mask_keys(v);
                }
            }
            _ => {}
        }
        changed
    }
}

/// Removes the value at `pointer`; true if there was one.
fn remove_at(root: &mut Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match root.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&last).is_some(),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

impl Plugin for Redact {
    fn init(config: &Config) -> Result<Self, String> {
        config.deny_unknown(&["mask", "remove", "keys", "replacement", "keep_last"])?;
        let redact = Self {
            mask: config.list("mask"),
            remove: config.list("remove"),
            keys: config.list("keys"),
            replacement: config.get("replacement").unwrap_or("[redacted]").to_owned(),
            keep_last: config.parse_or("keep_last", 0)?,
        };
        if let Some(p) = redact
            .mask
            .iter()
            .chain(&redact.remove)
            .find(|p| !p.starts_with('/'))
        {
            return Err(format!(
                "{p:?} is not a JSON pointer: it must start with '/'"
            ));
        }
        if redact.mask.is_empty() && redact.remove.is_empty() && redact.keys.is_empty() {
            return Err("nothing to redact: set \"mask\", \"remove\" or \"keys\"".into());
        }
        Ok(redact)
    }

    fn handle(&self, event: &Event) -> Result<Verdict, String> {
        // Parsed straight into the tree that gets edited: no copy of it.
        let Ok(mut doc) = serde_json::from_slice::<Value>(&event.payload) else {
            return Ok(Verdict::keep());
        };
        let mut changed = self.mask_keys(&mut doc);
        for p in &self.mask {
            if let Some(v) = doc.pointer_mut(p) {
                *v = self.masked(v);
                changed = true;
            }
        }
        for p in &self.remove {
            changed |= remove_at(&mut doc, p);
        }
        // Unchanged events keep their exact bytes: re-serialising would
        // reorder nothing but could still change whitespace and number forms.
        Ok(if changed {
            Verdict::keep().json_payload(&doc)
        } else {
            Verdict::keep()
        })
    }
}

switchyard_sdk::export!(Redact);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::serde_json::json;

    fn plugin(pairs: &[(&str, &str)]) -> Redact {
        Redact::init(&pairs.iter().copied().collect()).expect("valid config")
    }

    fn run(p: &Redact, body: Value) -> Value {
        let v = p.handle(&Event::new("t", body.to_string())).expect("ok");
        v.get_json_payload().unwrap_or(body)
    }

    #[test]
    fn masks_pointers_keeping_the_last_digits() {
        let p = plugin(&[("mask", "/card/number"), ("keep_last", "4")]);
        let out = run(
            &p,
            json!({"card": {"number": "4242424242424242"}, "amount": 5}),
        );
        assert_eq!(
            out,
            json!({"card": {"number": "[redacted]4242"}, "amount": 5})
        );
    }

    #[test]
    fn masks_keys_at_any_depth_and_removes_fields() {
        let p = plugin(&[("keys", "email"), ("remove", "/ssn")]);
        let out = run(
            &p,
            json!({"ssn": "1", "customer": {"email": "a@b.c"}, "items": [{"email": "x"}]}),
        );
        assert_eq!(
            out,
            json!({"customer": {"email": "[redacted]"}, "items": [{"email": "[redacted]"}]})
        );
    }

    #[test]
    fn non_json_and_untouched_payloads_are_kept() {
        let p = plugin(&[("keys", "email")]);
        assert_eq!(
            p.handle(&Event::new("t", "plain text")).expect("ok"),
            Verdict::keep()
        );
        assert_eq!(
            p.handle(&Event::new("t", r#"{"a":1}"#)).expect("ok"),
            Verdict::keep()
        );
    }

    #[test]
    fn empty_or_bad_config_is_refused() {
        assert!(Redact::init(&Config::default()).is_err());
        assert!(Redact::init(&Config::from([("mask", "card")])).is_err());
    }
}
