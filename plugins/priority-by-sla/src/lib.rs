//! `priority-by-sla`: sets an event's priority from its customer's tier.
//!
//! Config:
//! - `tiers` (required): `tier=0..9` pairs, e.g. `enterprise=9,pro=7,free=2`
//!   (tier names compare case-insensitively).
//! - `header` (optional, default `x-customer-tier`): the tier header. It
//!   wins over the field, because a sender sets it deliberately.
//! - `pointer` (optional): a JSON pointer to the tier in the payload, e.g.
//!   `/customer/tier`.
//! - `default` (optional): the priority for an unknown or missing tier;
//!   without it the priority is left as it is.

use std::borrow::Cow;
use std::collections::HashMap;

use switchyard_sdk::{Config, Event, Plugin, Verdict};

/// The tier table and where to find an event's tier.
pub struct PriorityBySla {
    header: String,
    pointer: Option<String>,
    tiers: HashMap<String, u8>,
    default: Option<u8>,
}

fn priority(raw: &str, key: &str) -> Result<u8, String> {
    match raw.trim().parse::<u8>() {
        Ok(p) if p <= 9 => Ok(p),
        _ => Err(format!("config key {key:?}: {raw:?} is not a priority 0-9")),
    }
}

impl Plugin for PriorityBySla {
    fn init(config: &Config) -> Result<Self, String> {
        config.deny_unknown(&["tiers", "header", "pointer", "default"])?;
        let mut tiers = HashMap::new();
        for pair in config.list("tiers") {
            let (tier, p) = pair
                .split_once('=')
                .ok_or_else(|| format!("config key \"tiers\": {pair:?} is not tier=priority"))?;
            tiers.insert(tier.trim().to_ascii_lowercase(), priority(p, "tiers")?);
        }
        if tiers.is_empty() {
            return Err("config key \"tiers\" is required, e.g. \"enterprise=9,free=2\"".into());
        }
        Ok(Self {
            header: config.get("header").unwrap_or("x-customer-tier").to_owned(),
            pointer: config.get("pointer").map(str::to_owned),
            tiers,
            default: config
                .get("default")
                .map(|d| priority(d, "default"))
                .transpose()?,
        })
    }

    fn handle(&self, event: &Event) -> Result<Verdict, String> {
        let tier = event
            .header(&self.header)
            .map(Cow::Borrowed)
            .or_else(|| self.pointer.as_deref().and_then(|p| event.json_str(p)));
        let found = tier.and_then(|t| self.tiers.get(&t.trim().to_ascii_lowercase()).copied());
        Ok(match found.or(self.default) {
            Some(p) => Verdict::keep().priority(p),
            None => Verdict::keep(),
        })
    }
}

switchyard_sdk::export!(PriorityBySla);

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin() -> PriorityBySla {
        PriorityBySla::init(&Config::from([
            ("tiers", "enterprise=9, pro=7, free=2"),
            ("pointer", "/customer/tier"),
            ("default", "4"),
        ]))
        .expect("valid config")
    }

    #[test]
    fn header_sets_priority() {
        let e = Event::new("t", "{}").with_header("X-Customer-Tier", "Enterprise");
        assert_eq!(plugin().handle(&e).expect("ok").get_priority(), Some(9));
    }

    #[test]
    fn header_wins_over_field() {
        let e = Event::new("t", r#"{"customer":{"tier":"free"}}"#)
            .with_header("x-customer-tier", "pro");
        assert_eq!(plugin().handle(&e).expect("ok").get_priority(), Some(7));
    }

    #[test]
    fn field_is_used_without_header() {
        let e = Event::new("t", r#"{"customer":{"tier":"free"}}"#);
        assert_eq!(plugin().handle(&e).expect("ok").get_priority(), Some(2));
    }

    #[test]
    fn unknown_tier_gets_default_and_routes_are_untouched() {
        let v = plugin()
            .handle(&Event::new("t", r#"{"customer":{"tier":"gold"}}"#))
            .expect("ok");
        assert_eq!(v.get_priority(), Some(4));
        assert_eq!(v.get_routes(), None);
    }

    #[test]
    fn bad_priorities_are_refused() {
        assert!(PriorityBySla::init(&Config::from([("tiers", "a=10")])).is_err());
        assert!(PriorityBySla::init(&Config::from([("tiers", "")])).is_err());
    }
}
