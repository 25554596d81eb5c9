//! When to ask the server about a job again.
//!
//! Fixed-interval polling is either wasteful (fal's 0.1 s: ~300 status calls
//! for a 30 s job) or slow to notice completion (Reka's own CLI's 2 s: one
//! second late on average). The schedule here uses what the client knows:
//!
//! - **Unknown duration** (the first job of an endpoint): start fast and back
//!   off geometrically, so short jobs are caught early and long jobs cost
//!   few requests; the backoff restarts whenever the status changes.
//! - **Queued**: the gap grows with `queue_position` (a job 40th in line will
//!   not start in the next second) and shrinks as the position counts down.
//! - **Running, duration learnt**: every finished job updates a running
//!   estimate (mean and spread) per endpoint, preferring the server's own
//!   `metrics.inference_time`. The poller then sleeps until just before the
//!   expected finish and polls densely in a window around it, sized by the
//!   spread; past the window it backs off gently (x1.25 a look), since a
//!   job that outlasted its estimate is likely to end soon.
//!
//! There is no jitter: each job's schedule is already offset by its own
//! submit time, and a deterministic schedule is testable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How jobs are polled. The defaults suit the real service; most programs
/// never set one.
///
/// ```
/// use std::time::Duration;
/// use reka_inference::PollPolicy;
///
/// let eager = PollPolicy::default()
///     .initial_interval(Duration::from_millis(250))
///     .max_interval(Duration::from_secs(4));
/// let naive = PollPolicy::fixed(Duration::from_secs(2));
/// # let _ = (eager, naive);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    initial: Duration,
    factor: f64,
    max: Duration,
    per_queue_position: Duration,
    min: Duration,
    min_margin: Duration,
    margin_fraction: f64,
    max_sleep: Duration,
    max_dense: Duration,
    learn: bool,
    scale: f64,
}

impl Default for PollPolicy {
    /// While the duration is unknown: first look 0.5 s after submit, then
    /// gaps doubling to 2 s, never more (a naive poller's 2 s is the lag
    /// not to lose to). In the queue: 0.5 s per position ahead. Once
    /// durations are learnt: sleep to the 1st percentile of the learnt
    /// (lognormal) distribution, then spread about six looks over its 1st
    /// to 99th percentile, each gap between 50 ms and 1.8 s, and past the
    /// 99th percentile grow the gap by 1.25 a look, up to 1.8 s.
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(500),
            factor: 2.0,
            max: Duration::from_secs(2),
            per_queue_position: Duration::from_millis(500),
            min: Duration::from_millis(50),
            min_margin: Duration::from_millis(200),
            margin_fraction: 0.01,
            max_sleep: Duration::from_secs(60),
            max_dense: Duration::from_millis(1800),
            learn: true,
            scale: 1.0,
        }
    }
}

impl PollPolicy {
    /// A fixed interval, as simple pollers use: no backoff, no learning.
    /// Useful as a baseline.
    pub fn fixed(interval: Duration) -> Self {
        PollPolicy {
            initial: interval,
            factor: 1.0,
            max: interval,
            per_queue_position: Duration::ZERO,
            min: interval,
            min_margin: Duration::ZERO,
            margin_fraction: 0.0,
            max_sleep: interval,
            max_dense: interval,
            learn: false,
            scale: 1.0,
        }
    }

    /// Sets the first gap after a submit or a status change.
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    /// Sets the longest gap while the duration is unknown.
    pub fn max_interval(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }

    /// Sets how much each gap grows over the last while backing off.
    pub fn backoff_factor(mut self, f: f64) -> Self {
        self.factor = if f.is_finite() { f.max(1.0) } else { 2.0 };
        self
    }

    /// Sets the extra gap per queue position ahead of the job.
    pub fn per_queue_position(mut self, d: Duration) -> Self {
        self.per_queue_position = d;
        self
    }

    /// Sets the longest gap between polls around an expected finish.
    pub fn max_dense_interval(mut self, d: Duration) -> Self {
        self.max_dense = d;
        self
    }

    /// Turns learning of per-endpoint durations on or off.
    pub fn learning(mut self, learn: bool) -> Self {
        self.learn = learn;
        self
    }

    /// Whether durations are learnt.
    pub fn learns(&self) -> bool {
        self.learn
    }
}

/// Knobs for simulators and tests: a server whose clock runs faster than
/// real time.
impl PollPolicy {
    /// **For simulators and tests.** Every duration of the policy
    /// multiplied by `factor`, for a server whose clock runs `1 / factor`
    /// times as fast (the simulator's `--time-scale`): durations the server
    /// reports, such as `metrics.inference_time`, are multiplied by `factor`
    /// too. Against the real service, leave it alone.
    ///
    /// ```
    /// use reka_inference::PollPolicy;
    ///
    /// // A simulator running 100 times faster than real time.
    /// let policy = PollPolicy::default().scaled(0.01);
    /// assert_eq!(policy.time_scale(), 0.01);
    /// ```
    pub fn scaled(mut self, factor: f64) -> Self {
        let f = if factor.is_finite() && factor > 0.0 {
            factor.clamp(1e-6, 1e6)
        } else {
            1.0
        };
        self.scale = (self.scale * f).clamp(1e-12, 1e12);
        for d in [
            &mut self.initial,
            &mut self.max,
            &mut self.per_queue_position,
            &mut self.min,
            &mut self.min_margin,
            &mut self.max_sleep,
            &mut self.max_dense,
        ] {
            *d = scale_duration(*d, f);
        }
        self
    }

    /// The first gap after a submit or a status change.
    pub(crate) fn first_interval(&self) -> Duration {
        self.initial
    }

    /// The factor given to [`PollPolicy::scaled`] (1 when never scaled).
    pub fn time_scale(&self) -> f64 {
        self.scale
    }
}

/// `d * f`, saturating instead of panicking.
fn scale_duration(d: Duration, f: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * f).unwrap_or(if f > 1.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

/// A running estimate of how long an endpoint's jobs run.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DurationEstimate {
    /// Mean running time, seconds.
    pub mean: f64,
    /// Standard deviation of the running time, seconds.
    pub std_dev: f64,
    /// Mean of the natural log of the running time (generation times are
    /// closer to lognormal than to normal: a long tail, never negative).
    pub log_mean: f64,
    /// Standard deviation of the natural log of the running time.
    pub log_std_dev: f64,
    /// How many finished jobs it is built from.
    pub samples: u64,
}

impl DurationEstimate {
    /// The `p`-quantile (0 to 1, z-score `z`) of the learnt distribution,
    /// seconds.
    fn quantile_at_z(&self, z: f64) -> f64 {
        (self.log_mean + z * self.planning_log_std_dev()).exp()
    }

    /// The spread the schedule plans with: the learnt one, blended with a
    /// prior spread while few jobs are learnt (one job says nothing of the
    /// spread, and a window planned on none is late for every job shorter
    /// than the first).
    fn planning_log_std_dev(&self) -> f64 {
        let n = self.samples as f64;
        let learnt = if self.log_std_dev.is_finite() {
            self.log_std_dev
        } else {
            0.0
        };
        ((n * learnt * learnt + PRIOR_WEIGHT * PRIOR_LOG_STD_DEV * PRIOR_LOG_STD_DEV)
            / (n + PRIOR_WEIGHT))
            .sqrt()
    }
}

/// How fast the gap grows once a job has outlasted its expected window.
const OVERDUE_GROWTH: f64 = 1.25;

/// Per-endpoint estimates, shared by every job of a client.
#[derive(Debug, Default)]
pub(crate) struct Estimates {
    by_endpoint: Mutex<HashMap<String, Welford>>,
}

/// Exponentially weighted mean and variance: recent jobs count more, so the
/// estimate follows a service that speeds up or slows down.
#[derive(Debug, Clone, Copy, Default)]
struct Welford {
    n: u64,
    mean: f64,
    var: f64,
    log_mean: f64,
    log_var: f64,
}

const WEIGHT_FLOOR: f64 = 0.1;

/// The small-sample correction of a variance, n / (n - 1), at most 2.
fn bessel(n: u64) -> f64 {
    if n < 2 {
        1.0
    } else {
        n as f64 / (n - 1) as f64
    }
}

/// The longest job duration learnt: a day. Longer reports are clamped.
pub(crate) const MAX_LEARNT_SECONDS: f64 = 24.0 * 3600.0;

impl Estimates {
    pub(crate) fn get(&self, endpoint: &str) -> Option<DurationEstimate> {
        let map = self.by_endpoint.lock().ok()?;
        let w = map.get(endpoint)?;
        Some(DurationEstimate {
            mean: w.mean,
            std_dev: w.var.max(0.0).sqrt(),
            log_mean: w.log_mean,
            // Corrected for few samples (the weighted variance of two jobs
            // is half their squared difference).
            log_std_dev: (w.log_var.max(0.0) * bessel(w.n)).sqrt(),
            samples: w.n,
        })
    }

    /// Learns one job's duration. Durations past [`MAX_LEARNT_SECONDS`]
    /// (a server's nonsense `inference_time`) are clamped, so no estimate
    /// can make a later schedule overflow.
    pub(crate) fn record(&self, endpoint: &str, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let seconds = seconds.min(MAX_LEARNT_SECONDS);
        let Ok(mut map) = self.by_endpoint.lock() else {
            return;
        };
        let w = map.entry(endpoint.to_owned()).or_default();
        w.n += 1;
        // Plain averaging for the first samples, then a floor on the weight.
        let alpha = (1.0 / w.n as f64).max(WEIGHT_FLOOR);
        let delta = seconds - w.mean;
        w.mean += alpha * delta;
        w.var = (1.0 - alpha) * (w.var + alpha * delta * delta);
        // A millisecond floor keeps ln finite for instant jobs.
        let log = seconds.max(1e-3).ln();
        let log_delta = log - w.log_mean;
        w.log_mean += alpha * log_delta;
        w.log_var = (1.0 - alpha) * (w.log_var + alpha * log_delta * log_delta);
    }
}

/// What one poll saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Queued {
        position: Option<u64>,
    },
    Running,
    /// A status this version does not know.
    Unknown,
}

/// The schedule of one job.
#[derive(Debug)]
pub(crate) struct Schedule {
    policy: PollPolicy,
    estimate: Option<DurationEstimate>,
    backoff: Duration,
    last_phase: Option<Phase>,
    /// The poll before the current one: a job first seen running started
    /// after it.
    previous_poll: Instant,
    /// Earliest and latest possible start of the running phase.
    started: Option<(Instant, Instant)>,
    /// Past the window of the expected finish.
    overdue: bool,
}

impl Schedule {
    pub(crate) fn new(
        policy: PollPolicy,
        estimate: Option<DurationEstimate>,
        origin: Instant,
    ) -> Self {
        let backoff = policy.initial;
        Schedule {
            policy,
            estimate,
            backoff,
            last_phase: None,
            previous_poll: origin,
            started: None,
            overdue: false,
        }
    }

    /// The delay before the first poll of a job submitted at `origin`.
    pub(crate) fn first_delay(&self) -> Duration {
        self.policy.initial
    }

    /// What was learnt of the endpoint when the schedule began.
    #[cfg(feature = "webhooks")]
    pub(crate) fn estimate(&self) -> Option<DurationEstimate> {
        self.estimate
    }

    /// The policy this schedule follows.
    pub(crate) fn policy(&self) -> &PollPolicy {
        &self.policy
    }

    /// When the job was first seen running, as (earliest, latest) start.
    pub(crate) fn started(&self) -> Option<(Instant, Instant)> {
        self.started
    }

    /// Records a poll made at `now` that saw `phase`; returns how long to
    /// wait before the next one.
    pub(crate) fn observe(&mut self, phase: Phase, now: Instant) -> Duration {
        // A new queue position counts as a change too: a line that moves
        // is worth watching closely again.
        if self.last_phase != Some(phase) {
            self.backoff = self.policy.initial;
            self.overdue = false;
        }
        if phase == Phase::Running && self.started.is_none() {
            self.started = Some((self.previous_poll, now));
        }
        self.last_phase = Some(phase);
        self.previous_poll = now;

        let delay = match phase {
            Phase::Queued { position } => {
                let ahead = position.unwrap_or(0).min(10_000) as u32;
                let by_position = self
                    .policy
                    .per_queue_position
                    .checked_mul(ahead)
                    .unwrap_or(self.policy.max_sleep);
                // A queued job cannot finish sooner than the shortest
                // plausible run after it starts: once durations are
                // learnt, looks at a queue need be no closer than that.
                let shortest_run = match self.estimate {
                    Some(est) if self.policy.learn => Duration::try_from_secs_f64(
                        est.quantile_at_z(-window_z(est.samples))
                            .clamp(0.0, MAX_LEARNT_SECONDS),
                    )
                    .unwrap_or_default(),
                    _ => Duration::ZERO,
                };
                by_position.max(self.next_backoff()).max(shortest_run)
            }
            Phase::Running => match (self.estimate, self.started) {
                (Some(est), Some(started)) if self.policy.learn => {
                    self.learnt_delay(est, started, now)
                }
                _ => self.next_backoff(),
            },
            Phase::Unknown => self.next_backoff(),
        };
        delay.clamp(self.policy.min, self.policy.max_sleep.max(self.policy.min))
    }

    fn next_backoff(&mut self) -> Duration {
        let current = self.backoff.min(self.policy.max);
        self.backoff = scale_duration(self.backoff, self.policy.factor).min(self.policy.max);
        current
    }

    /// Sleep to the window where the learnt distribution puts the finish
    /// (its 1st to 99th percentile, widened to at least the minimum
    /// margin), spread about [`LOOKS_PER_WINDOW`] looks over it, then back
    /// off gently, never past the dense cap.
    fn learnt_delay(
        &mut self,
        est: DurationEstimate,
        (earliest, latest): (Instant, Instant),
        now: Instant,
    ) -> Duration {
        let secs = |s: f64| {
            Duration::try_from_secs_f64(s.clamp(0.0, MAX_LEARNT_SECONDS)).unwrap_or_default()
        };
        let median = secs(est.quantile_at_z(0.0));
        let margin = secs(est.mean * self.policy.margin_fraction).max(self.policy.min_margin);
        // Few samples say little about the spread: widen the window while
        // they are few (an estimate too narrow means a late look).
        let z = window_z(est.samples);
        let low = secs(est.quantile_at_z(-z)).min(median.saturating_sub(margin));
        let high = secs(est.quantile_at_z(z)).max(median + margin);
        let far = |t: Instant, d: Duration| t.checked_add(d).unwrap_or(t);
        let window_start = far(earliest, low);
        let window_end = far(latest, high);
        if far(now, self.policy.min) < window_start {
            return window_start - now;
        }
        // Looks spread over the window where the finish is likely: a narrow
        // window is watched closely, a wide one at up to the dense cap.
        let width = window_end.saturating_duration_since(window_start);
        let dense = (width / LOOKS_PER_WINDOW).clamp(self.policy.min, self.policy.max_dense);
        if now < window_end {
            return dense;
        }
        // Past the 99th percentile: back off gently from the dense gap,
        // never past the dense cap (a naive 2 s poller must not win here).
        if !self.overdue {
            self.overdue = true;
            self.backoff = dense;
        }
        let cap = self.policy.max_dense.max(self.policy.min);
        let current = self.backoff.min(cap);
        self.backoff =
            scale_duration(self.backoff, self.policy.factor.min(OVERDUE_GROWTH)).min(cap);
        current
    }
}

/// The z-score of the 99th percentile.
const Z_99: f64 = 2.326;

/// The spread assumed before jobs are learnt: ln(1.8) / 1.645, a p95 of
/// 1.8 times the median, as generation jobs commonly show.
const PRIOR_LOG_STD_DEV: f64 = 0.357;

/// How many jobs the prior spread counts for.
const PRIOR_WEIGHT: f64 = 1.0;

/// The z-score of the window's edges: the 99th percentile's. The
/// uncertainty of few samples is carried by the prior spread
/// ([`DurationEstimate::planning_log_std_dev`]), not by a wider z.
fn window_z(_samples: u64) -> f64 {
    Z_99
}

/// About how many looks a window of likely finishes gets.
const LOOKS_PER_WINDOW: u32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// An estimate of lognormal durations with this median and
    /// p95 / median ratio.
    fn lognormal(median: f64, spread: f64) -> DurationEstimate {
        let log_std_dev = spread.ln() / 1.645;
        DurationEstimate {
            mean: median * (log_std_dev * log_std_dev / 2.0).exp(),
            std_dev: 0.0,
            log_mean: median.ln(),
            log_std_dev,
            samples: 5,
        }
    }

    #[test]
    fn unknown_duration_backs_off_to_a_naive_pollers_gap_and_resets_on_change() {
        let t0 = Instant::now();
        let mut s = Schedule::new(PollPolicy::default(), None, t0);
        let d: Vec<_> = (0..6)
            .map(|i| s.observe(Phase::Running, t0 + secs(i as f64)))
            .collect();
        assert_eq!(
            d,
            [
                secs(0.5),
                secs(1.0),
                secs(2.0),
                secs(2.0),
                secs(2.0),
                secs(2.0)
            ]
        );
        // A status change starts over.
        let mut s = Schedule::new(PollPolicy::default(), None, t0);
        s.observe(Phase::Queued { position: Some(0) }, t0);
        s.observe(Phase::Queued { position: Some(0) }, t0);
        assert_eq!(s.observe(Phase::Running, t0 + secs(2.0)), secs(0.5));
    }

    #[test]
    fn queue_position_stretches_the_gap() {
        let t0 = Instant::now();
        let mut s = Schedule::new(PollPolicy::default(), None, t0);
        assert_eq!(
            s.observe(Phase::Queued { position: Some(20) }, t0),
            secs(10.0)
        );
        // The line moved: watch closely again.
        assert_eq!(
            s.observe(Phase::Queued { position: Some(1) }, t0),
            secs(0.5)
        );
        assert_eq!(
            s.observe(Phase::Queued { position: Some(1) }, t0),
            secs(1.0)
        );
    }

    #[test]
    fn fixed_durations_get_a_narrow_window_watched_closely() {
        let t0 = Instant::now();
        // Many jobs learnt: the prior spread no longer counts.
        let est = DurationEstimate {
            samples: 100_000,
            ..lognormal(30.0, 1.0)
        };
        let mut s = Schedule::new(PollPolicy::default(), Some(est), t0);
        // First seen running at 0.5 s: it started in (0, 0.5]. The window
        // is 30 s -+ 0.3 s (1% of the mean), from 29.7 s to 30.8 s.
        assert_eq!(s.observe(Phase::Running, t0 + secs(0.5)), secs(29.2));
        let dense = s.observe(Phase::Running, t0 + secs(29.7));
        assert!(dense <= secs(0.2) && dense >= secs(0.05), "{dense:?}");
        // Past the window: gently longer gaps.
        let late = s.observe(Phase::Running, t0 + secs(31.0));
        assert_eq!(late, dense);
        assert!(s.observe(Phase::Running, t0 + secs(31.2)) > dense);
    }

    #[test]
    fn spread_durations_sleep_to_the_first_percentile_and_never_gap_past_the_cap() {
        let t0 = Instant::now();
        for spread in [1.1, 1.5, 2.0, 4.0] {
            let est = lognormal(30.0, spread);
            let p1 = est.quantile_at_z(-window_z(est.samples));
            let mut s = Schedule::new(PollPolicy::default(), Some(est), t0);
            let first = s.observe(Phase::Running, t0);
            assert!(
                (first.as_secs_f64() - p1).abs() < 0.01,
                "{spread}: {first:?} vs {p1}"
            );
            // From there on, no gap is longer than 1.8 s, however late.
            let mut at = t0 + first;
            for _ in 0..200 {
                let gap = s.observe(Phase::Running, at);
                assert!(gap <= secs(1.8), "{spread}: {gap:?}");
                at += gap;
            }
        }
    }

    #[test]
    fn a_queue_is_looked_at_no_closer_than_the_shortest_plausible_run() {
        let t0 = Instant::now();
        let est = lognormal(60.0, 1.1);
        let shortest = est.quantile_at_z(-window_z(est.samples));
        assert!(shortest < 60.0, "under the 60 s cap on one sleep");
        let mut s = Schedule::new(PollPolicy::default(), Some(est), t0);
        let gap = s.observe(Phase::Queued { position: Some(0) }, t0);
        assert!(
            (gap.as_secs_f64() - shortest).abs() < 0.01,
            "{gap:?} vs {shortest}"
        );
        // Nothing learnt: the backoff of an unknown duration.
        let mut s = Schedule::new(PollPolicy::default(), None, t0);
        assert_eq!(
            s.observe(Phase::Queued { position: Some(0) }, t0),
            secs(0.5)
        );
    }

    #[test]
    fn one_learnt_job_does_not_mean_no_spread() {
        // One job of 30 s learnt: the next one may well take 20 s.
        let one = DurationEstimate {
            samples: 1,
            ..lognormal(30.0, 1.0)
        };
        assert!(one.quantile_at_z(-window_z(1)) < 20.0);
        let many = DurationEstimate {
            samples: 100_000,
            ..lognormal(30.0, 1.0)
        };
        assert!(many.quantile_at_z(-window_z(many.samples)) > 29.0);
    }

    #[test]
    fn long_sleeps_are_capped() {
        let t0 = Instant::now();
        let mut s = Schedule::new(PollPolicy::default(), Some(lognormal(600.0, 1.0)), t0);
        assert_eq!(s.observe(Phase::Running, t0), secs(60.0));
    }

    #[test]
    fn estimates_follow_recent_jobs() {
        let e = Estimates::default();
        for _ in 0..3 {
            e.record("m/c", 10.0);
        }
        let est = e.get("m/c").unwrap();
        assert!((est.mean - 10.0).abs() < 1e-9 && est.std_dev < 1e-9 && est.samples == 3);
        for _ in 0..40 {
            e.record("m/c", 20.0);
        }
        assert!((e.get("m/c").unwrap().mean - 20.0).abs() < 0.2);
        assert!(e.get("other/c").is_none());
        e.record("m/c", f64::NAN);
        assert_eq!(e.get("m/c").unwrap().samples, 43);
    }

    /// A server reporting `inference_time: 1e30` once must not make any
    /// later schedule of the endpoint panic.
    #[test]
    fn absurd_durations_are_clamped_and_schedules_never_overflow() {
        let e = Estimates::default();
        e.record("m/c", 1e30);
        e.record("m/c", 9.3e18);
        let est = e.get("m/c").unwrap();
        assert!(est.mean <= MAX_LEARNT_SECONDS);
        let t0 = Instant::now();
        for policy in [
            PollPolicy::default(),
            PollPolicy::default().scaled(1e300),
            PollPolicy::default().scaled(f64::MIN_POSITIVE),
            PollPolicy::default().per_queue_position(Duration::MAX),
            PollPolicy::default()
                .max_interval(Duration::MAX)
                .backoff_factor(1e300),
        ] {
            let mut s = Schedule::new(policy, Some(est), t0);
            for (i, phase) in [
                Phase::Queued {
                    position: Some(u64::MAX),
                },
                Phase::Running,
                Phase::Running,
                Phase::Unknown,
                Phase::Running,
            ]
            .into_iter()
            .enumerate()
            {
                let _ = s.observe(phase, t0 + secs(i as f64));
            }
        }
        let huge = DurationEstimate {
            mean: f64::MAX,
            std_dev: f64::INFINITY,
            log_mean: f64::MAX,
            log_std_dev: f64::NAN,
            samples: 1,
        };
        let mut s = Schedule::new(PollPolicy::default(), Some(huge), t0);
        let _ = s.observe(Phase::Running, t0);
        let _ = s.observe(Phase::Running, t0 + secs(1.0));
    }
}
