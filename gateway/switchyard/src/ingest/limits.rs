//! Ingest limits that depend on the topic: its `rate_limit` (a token bucket
//! per topic) and reading a body that may be gzip-compressed, with the
//! topic's `max_body` applied to both the compressed and the decompressed
//! bytes.

use std::collections::HashMap;
use std::io::Read;
use std::num::NonZeroU32;

use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use governor::DefaultDirectRateLimiter;
use governor::clock::Clock;

use switchyard_core::RateLimit;
use switchyard_core::rate as ratelimit;

use crate::config::Config;
use crate::http::ApiError;

/// One token bucket per topic with a `rate_limit`.
#[derive(Debug, Default)]
pub struct TopicLimits {
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    limiter: DefaultDirectRateLimiter,
    rate: RateLimit,
    /// Events the bucket holds when full: one second's worth.
    burst: NonZeroU32,
}

impl TopicLimits {
    pub fn new(config: &Config) -> Self {
        let mut buckets = HashMap::new();
        for t in &config.topics {
            let Some(rate) = t.rate_limit else { continue };
            if let Some((limiter, burst)) = ratelimit::bucket(rate) {
                buckets.insert(
                    t.name.clone(),
                    Bucket {
                        limiter,
                        rate,
                        burst,
                    },
                );
            }
        }
        Self { buckets }
    }

    /// Takes `events` tokens from the topic's bucket, or refuses with 429
    /// and the seconds until they would be there. A batch larger than the
    /// whole bucket could never pass: that is a 413 telling the sender to
    /// split it.
    pub fn check(&self, topic: &str, events: usize) -> Result<(), ApiError> {
        let Some(b) = self.buckets.get(topic) else {
            return Ok(());
        };
        let n = u32::try_from(events)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(NonZeroU32::MIN);
        let rate = ratelimit::describe(b.rate);
        match b.limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait =
                    ratelimit::retry_after_secs(not_until.wait_time_from(b.limiter.clock().now()));
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("topic {topic:?} is over its rate limit of {rate}; retry in {wait}s"),
                )
                .with("rate", rate)
                .retry_after(wait))
            }
            Err(_) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "a batch of {events} events is larger than topic {topic:?} accepts at once \
                     ({} at its rate limit of {rate}); split it",
                    b.burst
                ),
            )
            .with("limit_events", b.burst.get())),
        }
    }
}

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
}

/// Reads `Content-Encoding`: absent or `identity` is the body as sent,
/// `gzip` (or `x-gzip`) is decompressed; anything else is 415, decided
/// before any of the body is read.
pub fn coding(headers: &HeaderMap) -> Result<Coding, ApiError> {
    let mut coding = Coding::Identity;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().unwrap_or("\u{fffd}");
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let next = if token.eq_ignore_ascii_case("identity") {
                continue;
            } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
                Coding::Gzip
            } else {
                return Err(unsupported(&format!("content-encoding {token:?}")));
            };
            if coding == Coding::Gzip {
                return Err(unsupported("more than one content-encoding"));
            }
            coding = next;
        }
    }
    Ok(coding)
}

fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("{what} is not supported: send the body as is, or with content-encoding: gzip"),
    )
}

/// Decompresses a gzip body (several members allowed, as `gzip` writes
/// them when concatenated), stopping as soon as the output passes `limit`:
/// a zip bomb costs at most `limit` bytes of memory and is a 413.
pub fn gunzip(compressed: &[u8], limit: u64) -> Result<Bytes, ApiError> {
    bounded_gunzip(compressed, limit).map(Bytes::from)
}

fn bounded_gunzip(compressed: &[u8], limit: u64) -> Result<Vec<u8>, ApiError> {
    let limit_bytes = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    // Chunked reads into a buffer grown by hand: `read_to_end` doubles its
    // buffer and could hold twice the limit; this one never passes it.
    let mut out: Vec<u8> = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit_bytes));
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ApiError::malformed(format!(
                    "the body is not valid gzip (content-encoding: gzip): {e}"
                )));
            }
        };
        let needed = out.len() + n;
        if needed > limit_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the body decompresses to more than the limit of {limit} bytes \
                     (the limit applies after content-encoding: gzip is undone)"
                ),
            )
            .with("limit", limit)
            .with("decompressed", true));
        }
        if needed > out.capacity() {
            let target = out
                .capacity()
                .saturating_mul(2)
                .max(needed)
                .min(limit_bytes);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn headers(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, encoding.parse().unwrap());
        h
    }

    #[test]
    fn encodings_are_read_from_the_header() {
        assert_eq!(coding(&HeaderMap::new()).unwrap(), Coding::Identity);
        assert_eq!(coding(&headers("identity")).unwrap(), Coding::Identity);
        assert_eq!(coding(&headers("GZIP")).unwrap(), Coding::Gzip);
        assert_eq!(coding(&headers("x-gzip")).unwrap(), Coding::Gzip);
        assert_eq!(coding(&headers("br")).unwrap_err().status, 415);
        assert_eq!(coding(&headers("gzip, gzip")).unwrap_err().status, 415);
        assert_eq!(coding(&headers("deflate")).unwrap_err().status, 415);
    }

    #[test]
    fn gzip_is_decompressed_up_to_the_limit_and_not_past_it() {
        let body = b"{\"hello\":\"world\"}".repeat(100);
        assert_eq!(&gunzip(&gz(&body), 1700).unwrap()[..], &body[..]);
        assert_eq!(gunzip(&gz(&body), 1699).unwrap_err().status, 413);
        // Two members, as `cat a.gz b.gz` makes.
        let mut two = gz(b"ab");
        two.extend(gz(b"cd"));
        assert_eq!(&gunzip(&two, 10).unwrap()[..], b"abcd");
    }

    #[test]
    fn the_buffer_never_grows_past_the_limit() {
        // 1 MB of zeros compresses to about 1 KB: the buffer starts small
        // and grows, and must stop at the limit, not at the next doubling.
        let limit = 1_000_000;
        let out = bounded_gunzip(&gz(&vec![0u8; limit]), limit as u64).unwrap();
        assert_eq!(out.len(), limit);
        assert!(out.capacity() <= limit, "capacity {}", out.capacity());
        let e = gunzip(&gz(&vec![0u8; limit + 1]), limit as u64).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(e.message.contains("decompresses"), "{}", e.message);
    }

    #[test]
    fn broken_gzip_is_malformed() {
        assert_eq!(gunzip(b"not gzip at all", 100).unwrap_err().status, 400);
        let mut cut = gz(&[7u8; 1000]);
        cut.truncate(cut.len() / 2);
        assert_eq!(gunzip(&cut, 10_000).unwrap_err().status, 400);
    }

    #[test]
    fn a_batch_larger_than_the_burst_is_413_and_a_full_bucket_is_429() {
        let config = Config::parse(
            "[[topics]]\nname = \"t\"\nrate_limit = \"5/s\"\n",
            std::path::Path::new("t.toml"),
            std::path::Path::new("/"),
        )
        .unwrap();
        let limits = TopicLimits::new(&config);
        assert_eq!(limits.check("t", 6).unwrap_err().status, 413);
        limits.check("t", 5).unwrap();
        let e = limits.check("t", 1).unwrap_err();
        assert_eq!(e.status, 429);
        assert_eq!(e.retry_after, Some(1));
        limits.check("other", 1000).unwrap();
    }
}
