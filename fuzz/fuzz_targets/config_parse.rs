//! The config file and its hand-written value parsers (rates `N/s|m|h`,
//! ordering keys `header:`/`pointer:`/`plugin`, token scopes, durations,
//! address ranges, secrets): arbitrary TOML either parses and validates or
//! is refused with a message, never a panic; and what parses is usable:
//! every rate gives the limiters a period they can run (the process would
//! otherwise panic at start, or a dispatcher would when it paces).
#![no_main]
use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use switchyard::auth::{Auth, Scope};
use switchyard::config::Config;
use switchyard::ingest::limits::TopicLimits;
use switchyard_core::RateLimit;
use switchyard_delivery::OrderingKey;
use switchyard_delivery::guard::AddressRange;

fn check_rate(r: &RateLimit) {
    assert!(r.per_second.is_finite() && r.per_second > 0.0, "{r:?}");
    let period = Duration::try_from_secs_f64(1.0 / r.per_second)
        .unwrap_or_else(|e| panic!("{r:?}: no period: {e}"));
    // tokio::time::interval panics on a zero period, governor on one over
    // u64::MAX nanoseconds.
    assert!(!period.is_zero(), "{r:?}: a zero period");
    assert!(
        u64::try_from(period.as_nanos()).is_ok(),
        "{r:?}: {period:?} is too long"
    );
}

fn value<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    T::deserialize(toml::Value::String(text.to_owned())).ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Each value parser on its own, on the whole input as a string.
    if let Some(r) = value::<RateLimit>(text) {
        check_rate(&r);
    }
    match value::<OrderingKey>(text) {
        Some(OrderingKey::Header(h)) => {
            assert!(http::HeaderName::try_from(h.as_str()).is_ok());
            assert_eq!(h, h.to_ascii_lowercase());
        }
        Some(OrderingKey::Pointer(p)) => assert!(p.starts_with('/')),
        Some(OrderingKey::Plugin) | None => {}
    }
    let _ = Scope::parse(text);
    if let Ok(range) = text.parse::<AddressRange>() {
        // The range as the gateway shows it reads back to itself, and
        // contains its own network address.
        assert_eq!(range.0.to_string().parse::<AddressRange>(), Ok(range));
        assert!(range.contains(range.0.network()), "{range:?}");
        assert_eq!(value::<AddressRange>(text), Some(range));
    }

    // The whole file. TLS settings read files; those are not fuzzed here.
    if text.contains("tls") {
        return;
    }
    let Ok(config) = Config::parse(text, Path::new("fuzz.toml"), Path::new("/nonexistent")) else {
        return;
    };
    for r in config
        .topics
        .iter()
        .filter_map(|t| t.rate_limit.as_ref())
        .chain(
            config
                .destinations
                .iter()
                .filter_map(|d| d.rate_limit.as_ref()),
        )
        .chain(
            config
                .auth
                .tokens
                .iter()
                .filter_map(|t| t.rate_limit.as_ref()),
        )
    {
        check_rate(r);
    }
    let _ = TopicLimits::new(&config);
    let _ = Auth::new(&config, Default::default());
});
