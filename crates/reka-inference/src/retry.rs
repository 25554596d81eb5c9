//! When and how long to wait before sending a request again.
//!
//! GETs and cancel are retried on transport errors, 408, 502, 503 and 504
//! with jittered exponential backoff; a submit only when it carries an
//! `Idempotency-Key` (so a retry can never create a second paid job). A 429
//! is retried once its `Retry-After` has passed, but only when that wait
//! fits both the caller's deadline and [`RetryPolicy::max_retry_after`]:
//! the service's rate-limit windows are 24 hours long, and sleeping through
//! one silently would look like a hang.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::HeaderValue;

/// How failed requests are retried.
///
/// ```
/// use std::time::Duration;
/// use reka_inference::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .max_attempts(3)
///     .max_retry_after(Duration::from_secs(10));
/// assert_eq!(policy.attempts(), 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts in all, backoff from 200 ms doubling up to 5 s, and
    /// `Retry-After` honoured up to 60 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Total attempts per request, the first included (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The backoff before the first retry; later ones grow by `multiplier`.
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// The longest backoff between two attempts.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// How much each backoff grows over the previous one (at least 1).
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = if m.is_finite() { m.max(1.0) } else { 2.0 };
        self
    }

    /// The longest `Retry-After` the client waits through; a longer one is
    /// returned at once as [`Error::RateLimited`](crate::Error::RateLimited).
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// Total attempts per request.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest `Retry-After` honoured.
    pub fn retry_after_limit(&self) -> Duration {
        self.max_retry_after
    }

    /// The wait before retry number `retry` (1 for the first retry):
    /// exponential, capped, with "equal jitter" (half fixed, half random)
    /// so that many clients failing together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.multiplier.powi(retry.saturating_sub(1).min(30) as i32);
        // Saturating: a policy of `Duration::MAX` must not panic here.
        let full = Duration::try_from_secs_f64(self.initial_backoff.as_secs_f64() * exp)
            .unwrap_or(Duration::MAX)
            .min(self.max_backoff)
            .as_secs_f64();
        let half = full / 2.0;
        let jitter = if half > 0.0 && half.is_finite() {
            rand::rng().random_range(0.0..=half)
        } else {
            0.0
        };
        Duration::try_from_secs_f64(half + jitter).unwrap_or(self.max_backoff)
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP date.
///
/// A date in the past means "now" (zero). Anything unreadable is `None`.
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().ok().map(Duration::from_secs);
    }
    // Not in RFC 9110, but seen in the wild: fractional seconds.
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && (0.0..1e12).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        let read = |text: &'static str| parse_retry_after(&HeaderValue::from_static(text), now);
        assert_eq!(read("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            read("Sun, 06 Nov 1994 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(read("soon"), None);
    }

    proptest! {
        #[test]
        fn retry_after_reads_whole_seconds_exactly_and_never_panics(
            secs in 0u64..10_000_000,
            text in ".{0,40}",
        ) {
            let now = SystemTime::now();
            let v = HeaderValue::from_str(&secs.to_string()).unwrap();
            prop_assert_eq!(parse_retry_after(&v, now), Some(Duration::from_secs(secs)));
            if let Ok(v) = HeaderValue::from_str(&text) {
                let _ = parse_retry_after(&v, now);
            }
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for retry in 1..=10 {
            let full = Duration::from_millis(200)
                .mul_f64(2f64.powi(retry as i32 - 1))
                .min(Duration::from_secs(5));
            let d = p.backoff(retry);
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn extreme_policies_do_not_panic() {
        let p = RetryPolicy::default()
            .initial_backoff(Duration::MAX)
            .max_backoff(Duration::MAX)
            .multiplier(f64::MAX);
        for retry in [1, 2, 30, u32::MAX] {
            let _ = p.backoff(retry);
        }
    }

    #[test]
    fn retry_after_rejects_garbage() {
        let now = SystemTime::now();
        for bad in ["-1", "1e400", "NaN", "tomorrow", ""] {
            let v = HeaderValue::from_str(bad).unwrap();
            assert_eq!(parse_retry_after(&v, now), None, "{bad}");
        }
        let v = HeaderValue::from_static("1.5");
        assert_eq!(
            parse_retry_after(&v, now),
            Some(Duration::from_millis(1500))
        );
    }
}
