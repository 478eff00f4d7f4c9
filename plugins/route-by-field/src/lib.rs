//! `route-by-field`: routes each event by the value at a JSON pointer.
//!
//! Config:
//! - `pointer` (required): where to look, e.g. `/type`.
//! - `routes` (required): `value=dest[|dest...]` pairs separated by commas,
//!   e.g. `refund=refunds|audit,order=billing`.
//! - `default` (optional): destinations (`|`-separated) for any other value
//!   or a missing field; without it such events keep their current routes.
//! - `priorities` (optional): `value=0..9` pairs, e.g. `refund=8`.

use std::collections::BTreeMap;

use switchyard_sdk::{Config, Event, Plugin, Verdict};

/// The parsed config: a lookup table built once in `init`, so `handle` is
/// one JSON pointer lookup (no document tree) and one table lookup per
/// event. A `BTreeMap`: with the handful of values a config names, a few
/// string comparisons cost less than hashing the value.
pub struct RouteByField {
    pointer: String,
    rules: BTreeMap<String, Rule>,
    default: Option<Vec<String>>,
}

/// What one value of the field decides.
#[derive(Default)]
struct Rule {
    destinations: Option<Vec<String>>,
    priority: Option<u8>,
}

fn destinations(raw: &str) -> Vec<String> {
    raw.split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn pairs(raw: &str, key: &str) -> Result<Vec<(String, String)>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("config key {key:?}: {pair:?} is not value=..."))
        })
        .collect()
}

impl Plugin for RouteByField {
    fn init(config: &Config) -> Result<Self, String> {
        config.deny_unknown(&["pointer", "routes", "default", "priorities"])?;
        let pointer = config.require("pointer")?.to_owned();
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(format!(
                "config key \"pointer\": {pointer:?} must start with '/'"
            ));
        }
        let mut rules: BTreeMap<String, Rule> = BTreeMap::new();
        for (k, v) in pairs(config.require("routes")?, "routes")? {
            rules.entry(k).or_default().destinations = Some(destinations(&v));
        }
        for (k, v) in pairs(config.get("priorities").unwrap_or(""), "priorities")? {
            let p = match v.parse::<u8>() {
                Ok(p) if p <= 9 => p,
                _ => return Err(format!("config key \"priorities\": {v:?} is not 0-9")),
            };
            rules.entry(k).or_default().priority = Some(p);
        }
        let default = config.get("default").map(destinations);
        Ok(Self {
            pointer,
            rules,
            default,
        })
    }

    fn handle(&self, event: &Event) -> Result<Verdict, String> {
        let value = event.json_str(&self.pointer);
        let rule = value.as_deref().and_then(|v| self.rules.get(v));
        let mut verdict = match rule
            .and_then(|r| r.destinations.as_ref())
            .or(self.default.as_ref())
        {
            Some(dest) => Verdict::route(dest.iter().cloned()),
            None => Verdict::keep(),
        };
        if let Some(p) = rule.and_then(|r| r.priority) {
            verdict = verdict.priority(p);
        }
        Ok(verdict)
    }
}

switchyard_sdk::export!(RouteByField);

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin() -> RouteByField {
        RouteByField::init(&Config::from([
            ("pointer", "/type"),
            ("routes", "refund=refunds|audit, order=billing"),
            ("default", "audit"),
            ("priorities", "refund=8"),
        ]))
        .expect("valid config")
    }

    fn routes(v: &Verdict) -> Vec<&str> {
        v.get_routes()
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn routes_by_value() {
        let v = plugin()
            .handle(&Event::new("orders", r#"{"type":"order"}"#))
            .expect("ok");
        assert_eq!(routes(&v), ["billing"]);
        assert_eq!(v.get_priority(), None);
    }

    #[test]
    fn several_destinations_and_a_priority() {
        let v = plugin()
            .handle(&Event::new("orders", r#"{"type":"refund"}"#))
            .expect("ok");
        assert_eq!(routes(&v), ["refunds", "audit"]);
        assert_eq!(v.get_priority(), Some(8));
    }

    #[test]
    fn unknown_value_missing_field_and_non_json_take_the_default() {
        for body in [r#"{"type":"other"}"#, r#"{"x":1}"#, "not json"] {
            let v = plugin().handle(&Event::new("orders", body)).expect("ok");
            assert_eq!(routes(&v), ["audit"], "{body}");
        }
    }

    #[test]
    fn a_priority_without_a_route_takes_the_default_route() {
        let p = RouteByField::init(&Config::from([
            ("pointer", "/t"),
            ("routes", "a=b"),
            ("default", "d"),
            ("priorities", "urgent=9, a=2"),
        ]))
        .expect("ok");
        let v = p.handle(&Event::new("t", r#"{"t":"urgent"}"#)).expect("ok");
        assert_eq!((routes(&v), v.get_priority()), (vec!["d"], Some(9)));
        let v = p.handle(&Event::new("t", r#"{"t":"a"}"#)).expect("ok");
        assert_eq!((routes(&v), v.get_priority()), (vec!["b"], Some(2)));
    }

    #[test]
    fn without_default_routes_are_kept() {
        let p =
            RouteByField::init(&Config::from([("pointer", "/t"), ("routes", "a=b")])).expect("ok");
        assert_eq!(
            p.handle(&Event::new("t", "{}")).expect("ok"),
            Verdict::keep()
        );
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(RouteByField::init(&Config::from([("routes", "a=b")])).is_err());
        assert!(RouteByField::init(&Config::from([("pointer", "/t"), ("routes", "a")])).is_err());
        assert!(
            RouteByField::init(&Config::from([
                ("pointer", "/t"),
                ("routes", "a=b"),
                ("tpyo", "")
            ]))
            .is_err()
        );
    }
}
