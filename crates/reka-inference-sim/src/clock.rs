//! Time: one monotonic origin, offsets from it, and their wall-clock dates.
//!
//! Every instant the simulator stores is a [`Duration`] since the origin, so
//! the queue model can compute states lazily and exactly. `time_scale`
//! converts simulated seconds (catalog durations) into wall time.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

/// The longest wall duration the clock hands out (ten years), so offsets never overflow.
const MAX_WALL: Duration = Duration::from_secs(10 * 365 * 86_400);

/// The simulator's clock.
#[derive(Debug, Clone)]
pub(crate) struct SimClock {
    origin: Instant,
    origin_utc: DateTime<Utc>,
    scale: f64,
}

impl SimClock {
    /// A clock starting now; `scale` = wall seconds per simulated second.
    pub(crate) fn new(scale: f64) -> SimClock {
        SimClock {
            origin: Instant::now(),
            origin_utc: Utc::now(),
            scale,
        }
    }

    /// Time since the origin.
    pub(crate) fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The monotonic instant of an offset.
    pub(crate) fn instant(&self, at: Duration) -> Instant {
        self.origin + at
    }

    /// The wall-clock date of an offset.
    pub(crate) fn utc(&self, at: Duration) -> DateTime<Utc> {
        let delta = chrono::Duration::from_std(at).unwrap_or(chrono::Duration::zero());
        self.origin_utc + delta
    }

    /// The wall-clock date of an offset, truncated to whole milliseconds (the
    /// precision the API reports and filters on).
    pub(crate) fn utc_millis(&self, at: Duration) -> DateTime<Utc> {
        let t = self.utc(at);
        DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
    }

    /// RFC 3339 with millisecond precision, e.g. `2025-01-01T00:00:00.123Z`.
    pub(crate) fn rfc3339(&self, at: Duration) -> String {
        self.utc(at).to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Wall time of `sim_secs` simulated seconds.
    pub(crate) fn wall(&self, sim_secs: f64) -> Duration {
        let secs = sim_secs * self.scale;
        if secs.is_nan() || secs <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_WALL)
            .min(MAX_WALL)
    }

    /// Simulated seconds of a wall duration.
    pub(crate) fn simulated(&self, wall: Duration) -> f64 {
        if self.scale > 0.0 {
            wall.as_secs_f64() / self.scale
        } else {
            0.0
        }
    }
}
