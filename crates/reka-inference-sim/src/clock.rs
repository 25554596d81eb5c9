//! Time: the service's clock, offsets from its start, and their dates.
//!
//! Every instant the simulator stores is a [`Duration`] since the clock's
//! origin, so the queue model can compute states lazily and exactly.
//! `time_scale` converts simulated seconds (catalog durations) into clock
//! time.
//!
//! The clock is one of two kinds:
//!
//! - **Tokio's** (the default): [`tokio::time::Instant`], so it is the wall
//!   clock in a normal runtime, and a test's clock under
//!   `tokio::time::pause()`: `tokio::time::advance` (or the runtime's
//!   auto-advance) moves jobs, queues, webhooks and rate limits along.
//! - **Manual** ([`crate::SimConfig::manual_clock`]): it stands still until
//!   [`crate::RunningSim::advance`] moves it. Network-side timers (fault
//!   latencies, drips, connection timeouts) stay on Tokio's clock.
//!
//! Everything the service does later waits on this clock with
//! [`SimClock::sleep_until`]: job ends (the scheduler), webhook delays and
//! retry backoffs, cancels that take effect later; the quota windows and the
//! submit token bucket read it.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

/// The longest wall duration the clock hands out (ten years), so offsets never overflow.
const MAX_WALL: Duration = Duration::from_secs(10 * 365 * 86_400);

/// The simulator's clock.
#[derive(Debug)]
pub(crate) struct SimClock {
    origin: Instant,
    origin_utc: DateTime<Utc>,
    scale: f64,
    /// The time since the origin, when the clock is manual.
    manual: Option<watch::Sender<Duration>>,
}

impl SimClock {
    /// A clock starting now; `scale` = clock seconds per simulated second.
    /// Clock seconds per simulated second.
    pub(crate) fn scale(&self) -> f64 {
        self.scale
    }

    pub(crate) fn new(scale: f64, manual: bool) -> SimClock {
        SimClock {
            origin: Instant::now(),
            origin_utc: Utc::now(),
            scale,
            manual: manual.then(|| watch::Sender::new(Duration::ZERO)),
        }
    }

    /// Time since the origin.
    pub(crate) fn now(&self) -> Duration {
        match &self.manual {
            Some(now) => *now.borrow(),
            None => self.origin.elapsed(),
        }
    }

    /// Whether the clock moves only when told to.
    pub(crate) fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Moves a manual clock forward by `by`; false (nothing moves) for
    /// Tokio's clock.
    pub(crate) fn advance(&self, by: Duration) -> bool {
        match &self.manual {
            Some(now) => {
                now.send_modify(|t| *t = t.saturating_add(by).min(MAX_WALL));
                true
            }
            None => false,
        }
    }

    /// Waits until the clock reads `at` (at once if it already does).
    pub(crate) async fn sleep_until(&self, at: Duration) {
        match &self.manual {
            Some(now) => {
                // The sender lives as long as the clock, so this only ends
                // when the time comes.
                let _ = now.subscribe().wait_for(|t| *t >= at).await;
            }
            None => {
                let deadline = self
                    .origin
                    .checked_add(at.min(MAX_WALL))
                    .unwrap_or_else(|| Instant::now() + MAX_WALL);
                tokio::time::sleep_until(deadline).await;
            }
        }
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

    /// Clock time of `sim_secs` simulated seconds.
    pub(crate) fn wall(&self, sim_secs: f64) -> Duration {
        let secs = sim_secs * self.scale;
        if secs.is_nan() || secs <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_WALL)
            .min(MAX_WALL)
    }

    /// Simulated seconds of a clock duration.
    pub(crate) fn simulated(&self, wall: Duration) -> f64 {
        if self.scale > 0.0 {
            wall.as_secs_f64() / self.scale
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced_and_wakes_its_sleepers() {
        let clock = std::sync::Arc::new(SimClock::new(1.0, true));
        assert!(clock.is_manual());
        assert_eq!(clock.now(), Duration::ZERO);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(Duration::from_secs(5)).await })
        };
        assert!(clock.advance(Duration::from_secs(4)));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        assert!(clock.advance(Duration::from_secs(1)));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), Duration::from_secs(5));
        // Past times and huge advances are fine.
        clock.sleep_until(Duration::from_secs(1)).await;
        assert!(clock.advance(Duration::MAX));
        assert_eq!(clock.now(), MAX_WALL);
    }

    #[tokio::test(start_paused = true)]
    async fn tokios_clock_follows_paused_time() {
        let clock = SimClock::new(1.0, false);
        assert!(!clock.advance(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), Duration::from_secs(90));
        clock.sleep_until(Duration::from_secs(120)).await;
        assert_eq!(clock.now(), Duration::from_secs(120));
        assert_eq!(
            clock.utc(clock.now()) - clock.utc(Duration::ZERO),
            chrono::Duration::seconds(120)
        );
    }
}
