//! Rates: the `"N/s"`, `"N/m"`, `"N/h"` config value, and the token buckets
//! that enforce one (topics' and tokens' `rate_limit`): one second's worth
//! may come at once (at least one), and the bucket refills at the rate.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// A rate, parsed from `"N/s"`, `"N/m"` or `"N/h"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained rate in events per second.
    pub per_second: f64,
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        parse_rate(&raw).map_err(serde::de::Error::custom)
    }
}

/// The slowest rate: one event a year.
const MAX_RATE_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

/// Reads `"N/s"`, `"N/m"` or `"N/h"`.
pub fn parse_rate(raw: &str) -> Result<RateLimit, String> {
    let bad = || format!("invalid rate {raw:?}: expected N/s, N/m or N/h, e.g. \"200/s\"");
    let (n, unit) = raw.split_once('/').ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(bad()),
    };
    if !(n.is_finite() && n > 0.0) {
        return Err(bad());
    }
    let per_second = n / secs;
    // The limiters and pacers run one permit every 1/per_second seconds: a
    // period that rounds to zero (tokio's interval), or that governor can't
    // hold (over 584 years), would panic them at start.
    match Duration::try_from_secs_f64(1.0 / per_second) {
        Ok(period) if !period.is_zero() && period <= MAX_RATE_PERIOD => {
            Ok(RateLimit { per_second })
        }
        _ => Err(format!(
            "invalid rate {raw:?}: out of range (from one event a year up to 1000000000/s)"
        )),
    }
}

/// The bucket for `rate` and its size (the burst). `None` only for a rate
/// whose period governor cannot represent, which config loading refuses.
pub fn bucket(rate: RateLimit) -> Option<(DefaultDirectRateLimiter, NonZeroU32)> {
    let burst = NonZeroU32::new(rate.per_second.ceil().clamp(1.0, u32::MAX as f64) as u32)?;
    let period = Duration::from_secs_f64(1.0 / rate.per_second);
    let quota = Quota::with_period(period)?.allow_burst(burst);
    Some((RateLimiter::direct(quota), burst))
}

/// `Retry-After` is whole seconds: round up, so a client that waits that
/// long is sure to get through.
pub fn retry_after_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 || s == 0 {
        s + 1
    } else {
        s
    }
}

/// The rate as the config spells it, for error messages: `N/s`, or `N/m`
/// under one a second.
pub fn describe(r: RateLimit) -> String {
    if r.per_second >= 1.0 {
        format!("{}/s", r.per_second)
    } else {
        format!("{}/m", r.per_second * 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("200/s").map(|r| r.per_second), Ok(200.0));
        assert_eq!(parse_rate("60/m").map(|r| r.per_second), Ok(1.0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0/s").is_err());
    }

    #[test]
    fn rates_whose_period_cannot_be_scheduled_are_refused() {
        // 1/per_second must be a non-zero Duration that governor can hold:
        // the limiters and the destination pacer would panic at start.
        for raw in [
            "1e10/s", "1e300/m", "1e-300/h", "5e-324/s", "1e-11/s", "0.0001/h",
        ] {
            let err = parse_rate(raw).expect_err(raw);
            assert!(err.contains("out of range"), "{raw}: {err}");
        }
        assert_eq!(parse_rate("1000000000/s").map(|r| r.per_second), Ok(1e9));
        assert!(parse_rate("0.001/h").is_ok(), "about nine a year");
    }
}
