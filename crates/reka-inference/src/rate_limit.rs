//! What the service says of its rate limits, read from every answer.
//!
//! Reka documents `x-ratelimit-requests-limit`, `-remaining` and `-reset`
//! (seconds) and `Retry-After` on a 429. Services differ in how they spell
//! and count these, so every plausible variant is read: the names
//! `x-ratelimit-{limit,remaining,reset}` (GitHub), `x-ratelimit-{limit,
//! remaining,reset}-requests` (OpenAI) and `ratelimit-{limit,remaining,
//! reset}` or one `RateLimit: limit=…, remaining=…, reset=…` field (the
//! IETF draft); a reset given as seconds (whole or not), as a duration
//! (`1s`, `6m0s`, `250ms`), as a Unix time, or as an HTTP date. A value
//! that cannot be read is ignored, never an error. The
//! [`Submitter`](crate::Submitter) paces submits by what submits were
//! told; [`Client::rate_limit`](crate::Client::rate_limit) shows it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;

use crate::retry::parse_retry_after;

/// The longest reset believed: a window of the service is 24 hours.
const MAX_RESET: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the service last said about a rate limit.
///
/// ```
/// # async fn run(client: reka_inference::Client) {
/// if let Some(limit) = client.rate_limit() {
///     println!("{:?} submits left, window resets at {:?}", limit.remaining, limit.reset_at);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed per window, when the service says.
    pub limit: Option<u64>,
    /// Requests left in the window, when the service says (0 after a 429
    /// that did not say).
    pub remaining: Option<u64>,
    /// When the window resets (for a token bucket: when it is full again).
    pub reset_at: Option<Instant>,
    /// After a 429: no request of this kind before this instant
    /// (`Retry-After`).
    pub retry_at: Option<Instant>,
    /// When the answer that said this arrived.
    pub seen_at: Instant,
}

impl RateLimit {
    /// Reads one answer's headers; `None` when they say nothing of a limit
    /// and the answer is not a 429.
    pub(crate) fn from_answer(status: StatusCode, headers: &HeaderMap) -> Option<RateLimit> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let combined = headers
            .get("ratelimit")
            .and_then(|v| v.to_str().ok())
            .map(parse_combined)
            .unwrap_or_default();
        let number = |names: &[&str]| -> Option<u64> {
            names
                .iter()
                .find_map(|n| headers.get(*n)?.to_str().ok()?.trim().parse().ok())
        };
        let limit = number(&[
            "x-ratelimit-requests-limit",
            "x-ratelimit-limit-requests",
            "x-ratelimit-limit",
            "ratelimit-limit",
        ])
        .or(combined.limit);
        let mut remaining = number(&[
            "x-ratelimit-requests-remaining",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-remaining",
            "ratelimit-remaining",
        ])
        .or(combined.remaining);
        let reset = [
            "x-ratelimit-requests-reset",
            "x-ratelimit-reset-requests",
            "x-ratelimit-reset",
            "ratelimit-reset",
        ]
        .iter()
        .find_map(|n| parse_reset(headers.get(*n)?.to_str().ok()?, wall))
        .or_else(|| parse_reset(combined.reset.as_deref()?, wall));
        let limited = status == StatusCode::TOO_MANY_REQUESTS;
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| parse_retry_after(v, wall))
            .map(|d| d.min(MAX_RESET));
        if limited && remaining.is_none() {
            remaining = Some(0);
        }
        if limit.is_none() && remaining.is_none() && reset.is_none() && !limited {
            return None;
        }
        Some(RateLimit {
            limit,
            remaining,
            reset_at: reset.and_then(|d| now.checked_add(d)),
            retry_at: if limited {
                // A 429 that does not say when: the reset, if known.
                retry_after.or(reset).and_then(|d| now.checked_add(d))
            } else {
                None
            },
            seen_at: now,
        })
    }

    /// The earliest instant a request may be sent by what this says: a
    /// 429's `Retry-After` (the server's own word on when), else the reset
    /// when nothing is left.
    pub fn not_before(&self) -> Option<Instant> {
        self.retry_at.or_else(|| {
            (self.remaining == Some(0))
                .then_some(self.reset_at)
                .flatten()
        })
    }
}

impl RateLimit {
    /// Whether this answer was counted by the server before `other`,
    /// though it arrived after it (answers of concurrent requests cross on
    /// the way back). The absolute reset never moves back in server order:
    /// a window's end stays, a bucket's "full again" moves later with each
    /// request and stays while it refills. So more left with an earlier
    /// reset is an older answer; believing it would send into a 429.
    fn is_older_than(&self, other: &RateLimit) -> bool {
        let (Some(left), Some(other_left)) = (self.remaining, other.remaining) else {
            return false;
        };
        if self.retry_at.is_some() || left <= other_left {
            return false;
        }
        // Answers a few milliseconds apart crossed on the way back; a real
        // refill, or a new window, shows in a later answer too.
        let crossed = self.seen_at.saturating_duration_since(other.seen_at) < CROSSING;
        let earlier_reset = match (self.reset_at, other.reset_at) {
            (Some(reset), Some(other_reset)) => reset + Duration::from_millis(1) < other_reset,
            _ => false,
        };
        crossed || earlier_reset
    }

    /// Whether the reset is said in whole seconds (so it may be up to a
    /// second later than the truth).
    pub(crate) fn reset_is_whole_seconds(&self) -> bool {
        self.reset_at.is_some_and(|reset| {
            let wait = reset.saturating_duration_since(self.seen_at);
            wait.subsec_millis() == 0 && wait >= Duration::from_secs(1)
        })
    }
}

/// Answers of one operation this close together may have crossed.
const CROSSING: Duration = Duration::from_millis(50);

/// The last word of the service on each kind of request.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    by_operation: Mutex<HashMap<&'static str, RateLimit>>,
}

impl RateLimits {
    /// Notes what an answer to `operation` says (downloads, from other
    /// origins, say nothing of the API's limits).
    pub(crate) fn observe(&self, operation: &'static str, status: StatusCode, headers: &HeaderMap) {
        if operation == "download" {
            return;
        }
        if let Some(seen) = RateLimit::from_answer(status, headers) {
            let mut by_operation = self.lock();
            if by_operation
                .get(operation)
                .is_none_or(|last| !seen.is_older_than(last))
            {
                by_operation.insert(operation, seen);
            }
        }
    }

    /// The last word on `operation`.
    pub(crate) fn get(&self, operation: &str) -> Option<RateLimit> {
        self.lock().get(operation).copied()
    }

    /// The most recent word on any operation.
    pub(crate) fn latest(&self) -> Option<RateLimit> {
        self.lock().values().max_by_key(|r| r.seen_at).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, RateLimit>> {
        self.by_operation.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
struct Combined {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<String>,
}

/// The IETF draft's one field: `limit=100, remaining=50, reset=30`, or its
/// later form `"default";r=50;t=30` (r remaining, t reset).
fn parse_combined(value: &str) -> Combined {
    let mut out = Combined::default();
    for part in value.split([',', ';']) {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        let val = val.trim().trim_matches('"');
        match key.trim().to_ascii_lowercase().as_str() {
            "limit" | "l" | "q" => out.limit = val.parse().ok(),
            "remaining" | "r" => out.remaining = val.parse().ok(),
            "reset" | "t" => out.reset = Some(val.to_owned()),
            _ => {}
        }
    }
    out
}

/// A reset: seconds from now (whole or not), a Unix time, a duration such
/// as `1m30s` or `250ms`, or an HTTP date. Capped at a week.
pub(crate) fn parse_reset(text: &str, now: SystemTime) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() || seconds < 0.0 {
            return None;
        }
        // Past a billion seconds it can only be a Unix time (2001 on).
        let delta = if seconds >= 1e9 {
            let since_epoch = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
            (seconds - since_epoch).max(0.0)
        } else {
            seconds
        };
        return Duration::try_from_secs_f64(delta)
            .ok()
            .map(|d| d.min(MAX_RESET));
    }
    if let Some(d) = parse_go_duration(text) {
        return Some(d.min(MAX_RESET));
    }
    let value = reqwest::header::HeaderValue::from_str(text).ok()?;
    parse_retry_after(&value, now).map(|d| d.min(MAX_RESET))
}

/// `1h2m3.5s`, `6m0s`, `250ms`, `20us`: what Go's `Duration` prints.
fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn resets_in_every_plausible_form() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let s = Duration::from_secs;
        assert_eq!(parse_reset("30", now), Some(s(30)));
        assert_eq!(parse_reset("0.25", now), Some(Duration::from_millis(250)));
        assert_eq!(parse_reset("1800000042", now), Some(s(42)));
        assert_eq!(parse_reset("1799999000", now), Some(s(0)));
        assert_eq!(parse_reset("6m0s", now), Some(s(360)));
        assert_eq!(
            parse_reset("1h2m3.5s", now),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_reset("250ms", now), Some(Duration::from_millis(250)));
        assert_eq!(parse_reset("99999999", now), Some(MAX_RESET));
        for bad in ["", "-1", "NaN", "inf", "soon", "1x", "m", "1e400"] {
            assert_eq!(parse_reset(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn every_spelling_of_the_headers_is_read() {
        let spellings: [&[(&'static str, &str)]; 5] = [
            &[
                ("x-ratelimit-requests-limit", "100"),
                ("x-ratelimit-requests-remaining", "7"),
                ("x-ratelimit-requests-reset", "12"),
            ],
            &[
                ("x-ratelimit-limit-requests", "100"),
                ("x-ratelimit-remaining-requests", "7"),
                ("x-ratelimit-reset-requests", "12s"),
            ],
            &[
                ("x-ratelimit-limit", "100"),
                ("x-ratelimit-remaining", "7"),
                ("x-ratelimit-reset", "12"),
            ],
            &[
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "7"),
                ("ratelimit-reset", "12"),
            ],
            &[("ratelimit", "limit=100, remaining=7, reset=12")],
        ];
        for pairs in spellings {
            let seen = RateLimit::from_answer(StatusCode::OK, &headers(pairs)).unwrap();
            assert_eq!(seen.limit, Some(100), "{pairs:?}");
            assert_eq!(seen.remaining, Some(7), "{pairs:?}");
            let reset = seen.reset_at.unwrap() - seen.seen_at;
            assert_eq!(reset, Duration::from_secs(12), "{pairs:?}");
            assert_eq!(seen.retry_at, None);
            assert_eq!(seen.not_before(), None);
        }
        let draft = headers(&[("ratelimit", "\"default\";r=0;t=3")]);
        let seen = RateLimit::from_answer(StatusCode::OK, &draft).unwrap();
        assert_eq!(seen.remaining, Some(0));
        assert_eq!(seen.not_before(), seen.reset_at);
    }

    #[test]
    fn silence_is_nothing_and_a_bare_429_is_exhaustion() {
        assert_eq!(
            RateLimit::from_answer(StatusCode::OK, &HeaderMap::new()),
            None
        );
        let garbage = headers(&[
            ("x-ratelimit-remaining", "lots"),
            ("x-ratelimit-reset", "soon"),
        ]);
        assert_eq!(RateLimit::from_answer(StatusCode::OK, &garbage), None);
        let bare =
            RateLimit::from_answer(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new()).unwrap();
        assert_eq!(bare.remaining, Some(0));
        assert_eq!(bare.retry_at, None);
        let told = RateLimit::from_answer(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "5"), ("x-ratelimit-reset", "60")]),
        )
        .unwrap();
        assert_eq!(
            told.retry_at.unwrap() - told.seen_at,
            Duration::from_secs(5)
        );
        // The 429's own word on when wins over the window's reset.
        assert_eq!(told.not_before(), told.retry_at);
        let untold = RateLimit::from_answer(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("x-ratelimit-reset", "60")]),
        )
        .unwrap();
        assert_eq!(untold.not_before(), untold.reset_at);
    }

    #[test]
    fn an_answer_that_crossed_a_newer_one_is_not_believed_for_long() {
        let limits = RateLimits::default();
        let answer = |left: &str, reset: &str| {
            headers(&[
                ("x-ratelimit-remaining", left),
                ("x-ratelimit-reset", reset),
            ])
        };
        // The server counted "1 left, full in 0.2 s" before "0 left, full in
        // 0.25 s", but the second arrived first.
        limits.observe("submit", StatusCode::OK, &answer("0", "0.25"));
        limits.observe("submit", StatusCode::OK, &answer("1", "0.2"));
        assert_eq!(limits.get("submit").unwrap().remaining, Some(0));
        // More left at once, with whole-second resets that cannot tell the
        // order: not believed either.
        limits.observe("submit", StatusCode::OK, &answer("0", "1"));
        limits.observe("submit", StatusCode::OK, &answer("2", "1"));
        assert_eq!(limits.get("submit").unwrap().remaining, Some(0));
        // A refill, told later, is believed: more left, the same reset.
        std::thread::sleep(CROSSING);
        limits.observe("submit", StatusCode::OK, &answer("3", "1"));
        assert_eq!(limits.get("submit").unwrap().remaining, Some(3));
        // A new window is believed: more left, a later reset.
        std::thread::sleep(CROSSING);
        limits.observe("submit", StatusCode::OK, &answer("100", "60"));
        assert_eq!(limits.get("submit").unwrap().remaining, Some(100));
    }

    #[test]
    fn downloads_say_nothing_of_the_api() {
        let limits = RateLimits::default();
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "60")]);
        limits.observe("download", StatusCode::OK, &h);
        assert_eq!(limits.latest(), None);
        limits.observe("submit", StatusCode::OK, &h);
        assert_eq!(limits.get("submit").unwrap().remaining, Some(0));
        assert_eq!(limits.get("get_result"), None);
    }
}
