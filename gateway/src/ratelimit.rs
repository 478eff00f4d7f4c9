//! Token buckets for `rate_limit` settings, shared by topics
//! (`ingest/limits.rs`) and API tokens (`auth/`): one second's worth may
//! come at once (at least one), and the bucket refills at the sustained rate.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::RateLimit;

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
