//! The retry policy: every "should we try again, and when" decision goes
//! through [`RetryPolicy::decide`], so the rules live in one place.
//!
//! delay(n) = min(max_delay, initial × multiplier^(n-1)), with equal jitter:
//! the wait is drawn from [delay/2, delay]. A destination's `Retry-After`
//! replaces the wait when it is larger (capped at max_delay). Retried:
//! connection errors, timeouts, 408, 429, 5xx and any `retry_on` codes.
//! 410 Gone pauses the destination. Every other answer outside 2xx
//! (including redirects, which are never followed) is dead-lettered at once,
//! and so is a connection the address guard refused.

use std::time::Duration;

use rand::Rng;

use crate::config::RetryConfig;

/// What a destination did with one attempt.
#[derive(Debug, Clone, Default)]
pub struct AttemptResult {
    /// The HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// Transport failure (refused, reset, timeout), if no response arrived.
    pub error: Option<String>,
    /// The destination's `Retry-After`, parsed.
    pub retry_after: Option<Duration>,
    /// The address guard refused the peer (`delivery/guard.rs`): the next
    /// attempt would be refused too.
    pub refused: bool,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Delivered,
    Retry {
        after: Duration,
    },
    DeadLetter {
        reason: String,
    },
    /// 410 Gone: hold the destination; the entry stays queued for when an
    /// operator resumes it.
    Pause {
        reason: String,
    },
}

/// A destination's retry rules.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    config: RetryConfig,
}

impl RetryPolicy {
    pub fn new(config: RetryConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// The un-jittered delay after the `n`th failed attempt (1-based).
    pub fn base_delay(&self, n: u32) -> Duration {
        let c = &self.config;
        let exp = c.multiplier.powi(n.saturating_sub(1).min(1000) as i32);
        let secs = c.initial.as_secs_f64() * exp;
        if !secs.is_finite() || secs >= c.max_delay.as_secs_f64() {
            c.max_delay
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The delay after the `n`th failed attempt, with equal jitter.
    pub fn jittered_delay(&self, n: u32, rng: &mut impl Rng) -> Duration {
        let d = self.base_delay(n);
        let half = d / 2;
        half + Duration::from_secs_f64(rng.random_range(0.0..=1.0) * (d - half).as_secs_f64())
    }

    /// Decides after attempt number `n` of the current budget (1-based),
    /// for an event that is `age` old.
    pub fn decide(
        &self,
        n: u32,
        result: &AttemptResult,
        age: Duration,
        rng: &mut impl Rng,
    ) -> Decision {
        let what = describe(result);
        if result.refused {
            return Decision::DeadLetter {
                reason: format!("{what}: not retried"),
            };
        }
        match result.status {
            Some(s) if (200..300).contains(&s) => return Decision::Delivered,
            Some(410) => {
                return Decision::Pause {
                    reason: "destination answered 410 Gone".to_owned(),
                };
            }
            Some(s) if !self.retryable(s) => {
                return Decision::DeadLetter {
                    reason: format!("{what}: not retried"),
                };
            }
            _ => {}
        }
        if n >= self.config.max_attempts {
            return Decision::DeadLetter {
                reason: format!("{what}: gave up after {n} attempts"),
            };
        }
        let mut after = self.jittered_delay(n, rng);
        if let Some(ra) = result.retry_after {
            after = after.max(ra.min(self.config.max_delay));
        }
        if age + after > self.config.max_age {
            return Decision::DeadLetter {
                reason: format!(
                    "{what}: the next attempt would pass max_age ({})",
                    humantime::format_duration(self.config.max_age)
                ),
            };
        }
        Decision::Retry { after }
    }

    fn retryable(&self, status: u16) -> bool {
        status == 408 || status == 429 || status >= 500 || self.config.retry_on.contains(&status)
    }
}

/// `HTTP 503` or the transport error, for messages.
pub fn describe(result: &AttemptResult) -> String {
    match (&result.status, &result.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no response".to_owned(),
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(RetryConfig::default())
    }

    fn status(s: u16) -> AttemptResult {
        AttemptResult {
            status: Some(s),
            ..Default::default()
        }
    }

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_cap() {
        let p = policy();
        assert_eq!(p.base_delay(1), Duration::from_secs(5));
        assert_eq!(p.base_delay(2), Duration::from_secs(25));
        assert_eq!(p.base_delay(3), Duration::from_secs(125));
        assert_eq!(p.base_delay(8), Duration::from_secs(36000));
        assert_eq!(p.base_delay(500), Duration::from_secs(36000));
    }

    #[test]
    fn equal_jitter_stays_in_the_upper_half() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let d = p.jittered_delay(2, &mut rng);
            assert!(
                d >= Duration::from_millis(12_500) && d <= Duration::from_secs(25),
                "{d:?}"
            );
        }
    }

    #[test]
    fn what_is_retried() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let age = Duration::ZERO;
        for s in [500, 502, 503, 408, 429] {
            assert!(
                matches!(
                    p.decide(1, &status(s), age, &mut rng),
                    Decision::Retry { .. }
                ),
                "{s}"
            );
        }
        for s in [400, 401, 404, 301, 302] {
            assert!(
                matches!(
                    p.decide(1, &status(s), age, &mut rng),
                    Decision::DeadLetter { .. }
                ),
                "{s}"
            );
        }
        assert_eq!(
            p.decide(1, &status(204), age, &mut rng),
            Decision::Delivered
        );
        assert!(matches!(
            p.decide(1, &status(410), age, &mut rng),
            Decision::Pause { .. }
        ));
        let refused = AttemptResult {
            error: Some("connection refused".into()),
            ..Default::default()
        };
        assert!(matches!(
            p.decide(1, &refused, age, &mut rng),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn a_refused_connection_is_dead_lettered_at_once() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let refused = AttemptResult {
            error: Some("refused: 169.254.169.254 is a cloud metadata address".into()),
            refused: true,
            ..Default::default()
        };
        match p.decide(1, &refused, Duration::ZERO, &mut rng) {
            Decision::DeadLetter { reason } => {
                assert!(reason.starts_with("refused: 169.254.169.254"), "{reason}")
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn retry_on_extends_the_set() {
        let p = RetryPolicy::new(RetryConfig {
            retry_on: vec![409],
            ..Default::default()
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!(matches!(
            p.decide(1, &status(409), Duration::ZERO, &mut rng),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn last_attempt_and_max_age_dead_letter() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        match p.decide(8, &status(503), Duration::ZERO, &mut rng) {
            Decision::DeadLetter { reason } => assert!(reason.contains("8 attempts"), "{reason}"),
            d => panic!("{d:?}"),
        }
        let old = Duration::from_secs(3 * 86400 - 1);
        assert!(matches!(
            p.decide(2, &status(503), old, &mut rng),
            Decision::DeadLetter { .. }
        ));
    }

    #[test]
    fn retry_after_wins_when_larger_but_is_capped() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let r = AttemptResult {
            status: Some(429),
            retry_after: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        assert_eq!(
            p.decide(1, &r, Duration::ZERO, &mut rng),
            Decision::Retry {
                after: Duration::from_secs(60)
            }
        );
        let huge = AttemptResult {
            retry_after: Some(Duration::from_secs(10 * 86400)),
            ..r
        };
        assert!(matches!(
            p.decide(1, &huge, Duration::ZERO, &mut rng),
            Decision::Retry { after } if after == Duration::from_secs(36000)
        ));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
