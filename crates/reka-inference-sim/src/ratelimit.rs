//! Optional per-key limits: a quota of N API requests per window of 24
//! simulated hours ([`RateLimiter`]), and a token bucket on submits
//! ([`SubmitLimiter`]).
//!
//! A key's window opens with its first request and lasts `24 h * time_scale`
//! of wall time (at least one second). Every authenticated API request the
//! quota lets through counts; refused ones do not.
//!
//! The submit bucket runs on clock time, not simulated time (the time scale
//! does not touch it): it stands for the admission limit of a real
//! generation API, which a benchmark measures in wall throughput (submits per
//! second) whatever the time scale of the jobs. Its clock is the
//! simulator's (`clock`): Tokio's, so paused time controls it, or the manual
//! clock when there is one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::state::lock;

/// Slack for float rounding in token counts (a billionth of a token).
const EPS: f64 = 1e-9;

/// One key's standing after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    /// Whole seconds until the window resets (also `retry-after` on a 429).
    pub(crate) reset_secs: u64,
    /// The same to the millisecond, sent instead of `reset_secs` when set
    /// (a token bucket's refill is shorter than a second).
    pub(crate) reset_millis: Option<u64>,
}

/// The quota book of every key.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: Option<u64>,
    window: Duration,
    windows: Mutex<HashMap<Arc<str>, (Duration, u64)>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` requests per `window` (no limit when `None`).
    pub(crate) fn new(limit: Option<u64>, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window: window.max(Duration::from_secs(1)),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `key` at `now` only if `inner` (a further limit)
    /// lets it through too: a request the quota refuses never reaches
    /// `inner`, and one `inner` refuses is not counted against the quota.
    /// Both decisions happen under this limiter's lock, so concurrent
    /// requests cannot slip between them.
    pub(crate) fn admit<T, E>(
        &self,
        key: &Arc<str>,
        now: Duration,
        inner: impl FnOnce() -> Result<T, E>,
    ) -> Admission<T, E> {
        let Some(limit) = self.limit else {
            return match inner() {
                Ok(t) => Admission::Allowed(None, t),
                Err(e) => Admission::Refused(e),
            };
        };
        let mut windows = lock(&self.windows);
        let entry = windows.entry(key.clone()).or_insert((now, 0));
        let end = entry.0.saturating_add(self.window);
        if now >= end {
            *entry = (now, 0);
        }
        let left = entry.0.saturating_add(self.window).saturating_sub(now);
        let reset_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        if entry.1 >= limit {
            return Admission::QuotaSpent(Quota {
                reset_millis: None,
                limit,
                remaining: 0,
                reset_secs: reset_secs.max(1),
            });
        }
        match inner() {
            Err(e) => Admission::Refused(e),
            Ok(t) => {
                entry.1 += 1;
                let quota = Quota {
                    reset_millis: None,
                    limit,
                    remaining: limit.saturating_sub(entry.1),
                    reset_secs,
                };
                Admission::Allowed(Some(quota), t)
            }
        }
    }

    /// Forgets every window.
    pub(crate) fn reset(&self) {
        lock(&self.windows).clear();
    }
}

/// What [`RateLimiter::admit`] decided.
#[derive(Debug, PartialEq)]
pub(crate) enum Admission<T, E> {
    /// Let through: the quota's standing (none when unlimited) and `inner`'s answer.
    Allowed(Option<Quota>, T),
    /// The quota is spent; `inner` was not asked.
    QuotaSpent(Quota),
    /// `inner` refused; the quota did not count the request.
    Refused(E),
}

/// A submit the token bucket refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Throttled {
    /// The bucket's standing (`remaining` is 0).
    pub(crate) quota: Quota,
    /// Whole seconds, rounded up, until one token is available (at least 1).
    pub(crate) retry_after: u64,
}

/// A per-key token bucket on submits: `burst` tokens, refilled at
/// `per_second` tokens per second of wall time; a submit takes one token or
/// is refused. A key's bucket starts full.
#[derive(Debug)]
pub(crate) struct SubmitLimiter {
    per_second: f64,
    burst: u64,
    /// Resets in whole seconds, rounded up, rather than to the millisecond.
    whole_seconds: bool,
    /// Key -> (tokens, clock time they were counted at).
    buckets: Mutex<HashMap<Arc<str>, (f64, Duration)>>,
}

impl SubmitLimiter {
    /// A bucket per key of `burst` tokens refilled at `per_second`; the
    /// caller has validated both (finite rate > 0, burst >= 1).
    pub(crate) fn new(per_second: f64, burst: u64, whole_seconds: bool) -> SubmitLimiter {
        SubmitLimiter {
            per_second,
            burst: burst.max(1),
            whole_seconds,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `key`'s bucket at `now`.
    pub(crate) fn take(&self, key: &Arc<str>, now: Duration) -> Result<Quota, Throttled> {
        let burst = self.burst as f64;
        let mut buckets = lock(&self.buckets);
        let (tokens, counted) = buckets.entry(key.clone()).or_insert((burst, now));
        let elapsed = now.saturating_sub(*counted).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(burst);
        *counted = (*counted).max(now);
        if *tokens + EPS >= 1.0 {
            *tokens = (*tokens - 1.0).max(0.0);
            Ok(self.quota(*tokens))
        } else {
            Err(Throttled {
                quota: self.quota(*tokens),
                retry_after: ceil_secs((1.0 - *tokens) / self.per_second).max(1),
            })
        }
    }

    /// The headers' figures for a bucket holding `tokens`.
    fn quota(&self, tokens: f64) -> Quota {
        let to_full = (self.burst as f64 - tokens) / self.per_second;
        Quota {
            limit: self.burst,
            remaining: (tokens + EPS).floor() as u64,
            reset_secs: ceil_secs(to_full),
            reset_millis: (!self.whole_seconds).then(|| ceil_secs(to_full * 1000.0)),
        }
    }

    /// Forgets every bucket (they start full again).
    pub(crate) fn reset(&self) {
        lock(&self.buckets).clear();
    }
}

/// Whole seconds, rounded up, of a non-negative number of seconds (a
/// billionth of slack absorbs float rounding); saturates at `u64::MAX`.
fn ceil_secs(secs: f64) -> u64 {
    let s = (secs - EPS).ceil();
    if s.is_nan() || s <= 0.0 {
        0
    } else {
        // `as` saturates: an enormous wait reads as u64::MAX seconds.
        s as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Arc<str> {
        Arc::from(k)
    }

    #[test]
    fn a_full_bucket_gives_its_burst_then_refuses() {
        let b = SubmitLimiter::new(0.5, 3, true);
        let t0 = Duration::from_secs(1000);
        let k = key("a");
        let got: Vec<_> = (0..3).map(|_| b.take(&k, t0).unwrap()).collect();
        let remaining: Vec<u64> = got.iter().map(|q| q.remaining).collect();
        let reset: Vec<u64> = got.iter().map(|q| q.reset_secs).collect();
        assert_eq!(remaining, [2, 1, 0]);
        // 1, 2 and 3 missing tokens at 0.5 per second.
        assert_eq!(reset, [2, 4, 6]);
        assert!(got.iter().all(|q| q.limit == 3));
        let refused = b.take(&k, t0).unwrap_err();
        assert_eq!(refused.retry_after, 2);
        assert_eq!(
            refused.quota,
            Quota {
                limit: 3,
                remaining: 0,
                reset_secs: 6,
                reset_millis: None,
            }
        );
    }

    #[test]
    fn resets_to_the_millisecond_unless_whole_seconds_are_asked_for() {
        let t0 = Duration::from_secs(1000);
        let k = key("a");
        // 20 a second, 5 at most: from empty, full again in 250 ms.
        let precise = SubmitLimiter::new(20.0, 5, false);
        let last = (0..5)
            .map(|_| precise.take(&k, t0).unwrap())
            .last()
            .unwrap();
        assert_eq!(
            (last.remaining, last.reset_millis, last.reset_secs),
            (0, Some(250), 1)
        );
        let whole = SubmitLimiter::new(20.0, 5, true);
        let last = (0..5).map(|_| whole.take(&k, t0).unwrap()).last().unwrap();
        assert_eq!((last.reset_millis, last.reset_secs), (None, 1));
    }

    #[test]
    fn tokens_refill_at_the_rate_up_to_the_burst() {
        let b = SubmitLimiter::new(2.0, 2, true);
        let t0 = Duration::from_secs(1000);
        let k = key("a");
        b.take(&k, t0).unwrap();
        b.take(&k, t0).unwrap();
        // Half a token after 250 ms: still refused, one more second to wait
        // (rounded up from 0.25 s).
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let r = b.take(&k, at(250)).unwrap_err();
        assert_eq!((r.retry_after, r.quota.reset_secs), (1, 1));
        // One token after 500 ms.
        assert_eq!(b.take(&k, at(500)).unwrap().remaining, 0);
        assert!(b.take(&k, at(500)).is_err());
        // A long pause refills only up to the burst.
        assert_eq!(b.take(&k, at(60_500)).unwrap().remaining, 1);
        assert_eq!(b.take(&k, at(60_500)).unwrap().remaining, 0);
        assert!(b.take(&k, at(60_500)).is_err());
        // A refusal takes nothing: exactly one token 500 ms later.
        assert!(b.take(&k, at(61_000)).is_ok());
        assert!(b.take(&k, at(61_000)).is_err());
    }

    #[test]
    fn slow_rates_ask_for_long_waits_and_keys_are_independent() {
        let b = SubmitLimiter::new(0.01, 1, true);
        let t0 = Duration::from_secs(1000);
        b.take(&key("a"), t0).unwrap();
        let r = b.take(&key("a"), t0 + Duration::from_secs(1)).unwrap_err();
        assert_eq!(r.retry_after, 99);
        assert!(b.take(&key("b"), t0).is_ok());
        // An instant earlier than the last one (never from a monotonic
        // clock) refills nothing and breaks nothing.
        assert!(b.take(&key("b"), t0 - Duration::from_millis(1)).is_err());
        b.reset();
        assert!(b.take(&key("a"), t0).is_ok());
    }

    #[test]
    fn the_quota_does_not_count_what_the_inner_limit_refuses() {
        let q = RateLimiter::new(Some(2), Duration::from_secs(60));
        let k = key("a");
        let now = Duration::from_secs(1);
        assert!(matches!(
            q.admit(&k, now, || Err::<(), _>("no")),
            Admission::Refused("no")
        ));
        let Admission::Allowed(Some(quota), ()) = q.admit(&k, now, || Ok::<_, ()>(())) else {
            panic!("allowed")
        };
        assert_eq!(quota.remaining, 1);
        assert!(matches!(
            q.admit(&k, now, || Ok::<_, ()>(())),
            Admission::Allowed(Some(Quota { remaining: 0, .. }), ())
        ));
        let mut asked = false;
        let spent = q.admit(&k, now, || {
            asked = true;
            Ok::<_, ()>(())
        });
        assert!(matches!(
            spent,
            Admission::QuotaSpent(Quota { remaining: 0, .. })
        ));
        assert!(!asked, "a spent quota does not reach the inner limit");
        // Without a quota only the inner limit decides.
        let none = RateLimiter::new(None, Duration::from_secs(60));
        assert!(matches!(
            none.admit(&k, now, || Ok::<_, ()>(7)),
            Admission::Allowed(None, 7)
        ));
    }
}
