//! Optional per-key quotas: N API requests per window of 24 simulated hours.
//!
//! A key's window opens with its first request and lasts `24 h * time_scale`
//! of wall time (at least one second). Every authenticated API request the
//! quota lets through counts; refused ones do not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::state::lock;

/// One key's standing after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    /// Whole seconds until the window resets (also `retry-after` on a 429).
    pub(crate) reset_secs: u64,
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

    /// Counts a request of `key` at `now`: `None` when unlimited, `Ok` when
    /// allowed, `Err` when the quota is spent.
    pub(crate) fn check(&self, key: &Arc<str>, now: Duration) -> Option<Result<Quota, Quota>> {
        let limit = self.limit?;
        let mut windows = lock(&self.windows);
        let entry = windows.entry(key.clone()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        let left = (entry.0 + self.window).saturating_sub(now);
        let reset_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        if entry.1 >= limit {
            return Some(Err(Quota {
                limit,
                remaining: 0,
                reset_secs: reset_secs.max(1),
            }));
        }
        entry.1 += 1;
        Some(Ok(Quota {
            limit,
            remaining: limit - entry.1,
            reset_secs,
        }))
    }

    /// Forgets every window.
    pub(crate) fn reset(&self) {
        lock(&self.windows).clear();
    }
}
