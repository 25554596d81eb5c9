//! When to ask the server about a job again.
//!
//! Fixed-interval polling is either wasteful (fal's 0.1 s: ~300 status calls
//! for a 30 s job) or slow to notice completion (Reka's own CLI's 2 s: one
//! second late on average). The schedule here uses what the client knows:
//!
//! - **Unknown duration** (the first job of an endpoint): first look 0.5 s
//!   after submit, gaps doubling to 2 s and no further, so short jobs are
//!   caught early and a naive 2 s poller never sees a job sooner; the
//!   backoff restarts whenever the status changes.
//! - **Queued**: the gap grows with `queue_position`, and once durations are
//!   learnt a queued job is looked at no closer than a fraction of a run
//!   (it cannot finish sooner than its shortest plausible run after it
//!   starts).
//! - **Running, duration learnt**: every finished job teaches a per-endpoint
//!   lognormal estimate (preferring the server's own
//!   `metrics.inference_time`). The finish is then a distribution: the
//!   start, somewhere between the last look that saw the job queued and the
//!   first that saw it running, plus a run drawn from the estimate. A job
//!   set that saw another of its jobs of the endpoint finish inside that
//!   window knows better: the queued job took the worker that finish freed,
//!   so its start is planned there ([`finishes`]). Looks
//!   go where that distribution puts the finish: the poller sleeps through
//!   stretches where the job finishes with under 1% chance, and elsewhere
//!   each gap is as long as it can be while the lag it risks (the expected
//!   time between the finish and the next look, given the job is still
//!   running) stays under a fixed budget, and never longer than 1.6 s. While
//!   few jobs are learnt the estimate is widened (a prior spread, and a
//!   share of a vague distribution that shrinks with every job learnt), so
//!   an unusual first job does not make later ones late.
//!
//! There is no jitter: each job's schedule is already offset by its own
//! submit time, and a deterministic schedule is testable.

use std::sync::Arc;
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
    lag_per_look: Duration,
    queue_fraction: f64,
    max_sleep: Duration,
    max_dense: Duration,
    learn: bool,
    scale: f64,
}

impl Default for PollPolicy {
    /// While the duration is unknown: first look 0.5 s after submit, then
    /// gaps doubling to 2 s, never more (a naive poller's 2 s is the lag
    /// not to lose to). In the queue: 0.5 s per position ahead, and once
    /// durations are learnt no closer than 0.35 of a median run (or the
    /// shortest plausible run, if shorter). Running, once durations are
    /// learnt: sleep while the job finishes with under 1% chance, then gaps
    /// between 50 ms and 1.6 s, each as long as it can be while the lag it
    /// risks stays under 0.2 s (sleeps risk at most 5% in all, and end once
    /// half the likely finishes are past); no single sleep longer than 60 s.
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(500),
            factor: 2.0,
            max: Duration::from_secs(2),
            per_queue_position: Duration::from_millis(500),
            min: Duration::from_millis(50),
            lag_per_look: Duration::from_millis(200),
            queue_fraction: 0.35,
            max_sleep: Duration::from_secs(60),
            max_dense: Duration::from_millis(1600),
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
            lag_per_look: Duration::ZERO,
            queue_fraction: 0.0,
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
            &mut self.lag_per_look,
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
    /// The finishes of the endpoint's jobs that the job's set sees, when a
    /// set follows it.
    finishes: Option<Arc<SeenFinishes>>,
    /// Whether the look before the first that saw the job running saw it
    /// queued: only then did it start when a worker came free.
    queued_before_start: bool,
    /// The seen finishes inside the start window, where the job is planned
    /// to have started (each span equally likely); empty: anywhere in the
    /// window.
    starts: Vec<(Instant, Instant)>,
    /// Whether the last gap was longer than the dense cap (a sleep).
    slept: bool,
    /// How much chance of finishing mid-sleep this job may still spend
    /// (each long sleep risks a late look).
    sleep_risk_left: f64,
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
            finishes: None,
            queued_before_start: false,
            starts: Vec::new(),
            slept: false,
            sleep_risk_left: SLEEP_RISK,
        }
    }

    /// Plans the job's start from the finishes its set sees of the
    /// endpoint's other jobs.
    pub(crate) fn follow_finishes(&mut self, finishes: Arc<SeenFinishes>) {
        self.finishes = Some(finishes);
    }

    /// The delay before the first poll of a job submitted at `origin`.
    pub(crate) fn first_delay(&self) -> Duration {
        self.policy.initial
    }

    /// What was learnt of the endpoint when the schedule began.
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

    /// Where the start was planned from seen finishes (empty: nowhere).
    #[cfg(test)]
    pub(crate) fn planned_starts(&self) -> &[(Instant, Instant)] {
        &self.starts
    }

    /// When the last look before `now` was made.
    pub(crate) fn last_look(&self) -> Instant {
        self.previous_poll
    }

    /// Once the job has ended, by `ended_by`, after running for `run` (as
    /// the server reports it, in this clock's seconds): whether that
    /// refutes the start planned from a seen finish, that is, whether the
    /// job must have started before it. Without a reported run, a job that
    /// ended while the schedule slept refutes it. `None` when no start was
    /// planned from a finish.
    pub(crate) fn start_refuted(&self, ended_by: Instant, run: Option<Duration>) -> Option<bool> {
        let earliest = self.starts.iter().map(|s| s.0).min()?;
        Some(match run {
            Some(run) => {
                // The server's run may leave out its own overheads: a
                // little slack, and a short run only ever excuses a start.
                let slack = run.mul_f64(REFUTE_SLACK).saturating_add(self.policy.min);
                ended_by
                    .checked_sub(run)
                    .is_some_and(|latest_start| earliest > later_by(latest_start, slack))
            }
            None => self.slept,
        })
    }

    /// The finishes inside the start window, when the job was queued just
    /// before it: where it started. Read again at every look, since a
    /// finish may be seen after the job was.
    fn place_start(&mut self) {
        let (Some(window), Some(finishes), true) =
            (self.started, &self.finishes, self.queued_before_start)
        else {
            return;
        };
        self.starts = finishes.within(window);
    }

    /// Records a poll made at `now` that saw `phase`; returns how long to
    /// wait before the next one.
    pub(crate) fn observe(&mut self, phase: Phase, now: Instant) -> Duration {
        // A new queue position counts as a change too: a line that moves
        // is worth watching closely again.
        if self.last_phase != Some(phase) {
            self.backoff = self.policy.initial;
        }
        if phase == Phase::Running && self.started.is_none() {
            self.started = Some((self.previous_poll, now));
            self.queued_before_start = matches!(self.last_phase, Some(Phase::Queued { .. }));
        }
        if phase == Phase::Running {
            self.place_start();
        }
        if self.policy.learn
            && let Some(newer) = self.finishes.as_ref().and_then(|f| f.estimate())
            && self.estimate.is_none_or(|old| newer.samples > old.samples)
        {
            self.estimate = Some(newer);
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
                // plausible run after it starts. The gap is also the
                // uncertainty of the start, which the looks around the
                // finish pay for, so it is kept to a fraction of a run.
                let in_queue = match self.estimate {
                    Some(est) if self.policy.learn => {
                        let fraction = est.log_mean.exp() * self.policy.queue_fraction;
                        let shortest = est.planning_quantile(UNLIKELY);
                        Duration::try_from_secs_f64(
                            fraction.min(shortest).clamp(0.0, MAX_LEARNT_SECONDS),
                        )
                        .unwrap_or_default()
                    }
                    _ => Duration::ZERO,
                };
                by_position.max(self.next_backoff()).max(in_queue)
            }
            Phase::Running => match (self.estimate, self.started) {
                (Some(est), Some(window)) if self.policy.learn => {
                    let starts = if self.starts.is_empty() {
                        vec![window]
                    } else {
                        self.starts.clone()
                    };
                    self.learnt_delay(est, &starts, now)
                }
                _ => self.next_backoff(),
            },
            Phase::Unknown => self.next_backoff(),
        };
        let delay = delay.clamp(self.policy.min, self.policy.max_sleep.max(self.policy.min));
        self.slept = delay > self.policy.max_dense;
        delay
    }

    fn next_backoff(&mut self) -> Duration {
        let current = self.backoff.min(self.policy.max);
        self.backoff = scale_duration(self.backoff, self.policy.factor).min(self.policy.max);
        current
    }

    /// The gap the learnt distribution allows: sleep while the job is
    /// unlikely to finish, otherwise the longest gap (up to the dense cap)
    /// whose expected lag stays under the policy's budget.
    fn learnt_delay(
        &mut self,
        est: DurationEstimate,
        starts: &[(Instant, Instant)],
        now: Instant,
    ) -> Duration {
        let finish = FinishTime { est, starts, now };
        let alive = finish.survival(0.0);
        if alive < 1e-12 {
            // Past everything the estimate allows: the closest a naive
            // poller would look, or closer.
            return self.policy.max_dense;
        }
        // The chance of finishing within `g` seconds, given not finished now.
        let within = |g: f64| (1.0 - finish.survival(g) / alive).clamp(0.0, 1.0);
        let cap = self.policy.max_dense.max(self.policy.min).as_secs_f64();
        // Sleeping is for the stretch before the likely finish; once the
        // job has outlasted half its finishes, no gap is longer than the
        // cap (a naive 2 s poller must not win on a slow job).
        let risk = self.sleep_risk_left.min(UNLIKELY);
        if alive > 0.5 && within(cap) <= risk {
            let longest = self.policy.max_sleep.max(self.policy.min).as_secs_f64();
            let sleep = largest_below(cap, longest, risk, within);
            self.sleep_risk_left -= within(sleep);
            return Duration::try_from_secs_f64(sleep).unwrap_or(self.policy.max_sleep);
        }
        // The expected lag of a gap `g`: the integral of `within` over it
        // (trapezoids; `within(0)` is 0).
        let lag = |g: f64| {
            let steps = 8;
            let h = g / steps as f64;
            let inner: f64 = (1..steps).map(|i| within(h * i as f64)).sum();
            h * (inner + within(g) / 2.0)
        };
        let budget = self.policy.lag_per_look.as_secs_f64();
        let floor = self.policy.min.as_secs_f64();
        let gap = largest_below(floor, cap, budget, lag);
        Duration::try_from_secs_f64(gap).unwrap_or(self.policy.min)
    }
}

/// When a running job may finish: its start, uniform over a span (between
/// the last look that saw it queued and the first that saw it running, or
/// around a finish its set saw there; several such spans equally likely),
/// plus a run drawn from the planning distribution.
struct FinishTime<'a> {
    est: DurationEstimate,
    starts: &'a [(Instant, Instant)],
    now: Instant,
}

impl FinishTime<'_> {
    /// How many start points a span of starts is integrated over.
    const START_POINTS: u32 = 6;

    /// The chance the job has not finished `after` seconds from now.
    fn survival(&self, after: f64) -> f64 {
        let since = |t: Instant| self.now.saturating_duration_since(t).as_secs_f64() + after;
        let span = |&(earliest, latest): &(Instant, Instant)| {
            let width = latest.saturating_duration_since(earliest).as_secs_f64();
            let points = if width > 0.0 { Self::START_POINTS } else { 1 };
            (0..points)
                .map(|i| {
                    let offset = width * (i as f64 + 0.5) / points as f64;
                    self.est.planning_survival(since(earliest) - offset)
                })
                .sum::<f64>()
                / points as f64
        };
        self.starts.iter().map(span).sum::<f64>() / self.starts.len().max(1) as f64
    }
}

/// `at + d`, saturating rather than overflowing.
fn later_by(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or(at)
}

/// The largest `x` in `[low, high]` with `f(x) <= limit`, for `f`
/// increasing; `low` when even `f(low)` is over.
fn largest_below(low: f64, high: f64, limit: f64, f: impl Fn(f64) -> f64) -> f64 {
    if f(high) <= limit {
        return high;
    }
    let (mut lo, mut hi) = (low, high);
    for _ in 0..16 {
        let mid = (lo + hi) / 2.0;
        if f(mid) <= limit {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A chance of finishing small enough to sleep through.
const UNLIKELY: f64 = 0.01;

/// The chance of finishing mid-sleep one job may spend over all its sleeps.
const SLEEP_RISK: f64 = 0.05;

/// The share of a reported run by which a planned start may be late before
/// the run refutes it (a server's run time may leave out its overheads).
const REFUTE_SLACK: f64 = 0.02;

mod estimate;
mod finishes;
#[cfg(test)]
mod queue_model;

pub use estimate::DurationEstimate;
pub(crate) use estimate::{Estimates, MAX_LEARNT_SECONDS};
pub(crate) use finishes::SeenFinishes;

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
        // Many jobs learnt: the prior and the vague share no longer count.
        let est = DurationEstimate {
            samples: 100_000,
            ..lognormal(30.0, 1.0)
        };
        let mut s = Schedule::new(PollPolicy::default(), Some(est), t0);
        // First seen running at 0.5 s: it started in (0, 0.5], so it ends
        // in about (30, 30.5]. Sleep to just before that.
        let sleep = s.observe(Phase::Running, t0 + secs(0.5));
        assert!(sleep > secs(29.0) && sleep <= secs(29.6), "{sleep:?}");
        // Inside the half-second window: short gaps.
        let mut at = t0 + secs(0.5) + sleep;
        let mut looks = 0;
        while at < t0 + secs(30.6) {
            let gap = s.observe(Phase::Running, at);
            assert!(gap <= secs(0.5), "{gap:?} at {:?}", at - t0);
            at += gap;
            looks += 1;
        }
        assert!(looks <= 6, "{looks} looks over half a second");
        // Past everything the estimate allows: never a gap past 1.6 s.
        for _ in 0..50 {
            let gap = s.observe(Phase::Running, at);
            assert!(gap <= secs(1.6), "{gap:?}");
            at += gap;
        }
    }

    #[test]
    fn spread_durations_sleep_through_the_unlikely_and_never_gap_past_the_cap() {
        let t0 = Instant::now();
        for spread in [1.1, 1.5, 2.0, 4.0] {
            let est = lognormal(30.0, spread);
            let p1 = est.planning_quantile(UNLIKELY);
            let mut s = Schedule::new(PollPolicy::default(), Some(est), t0);
            let first = s.observe(Phase::Running, t0);
            assert!(
                first.as_secs_f64() <= p1 + 0.01 && first.as_secs_f64() > p1 * 0.8,
                "{spread}: {first:?} vs {p1}"
            );
            // Further sleeps spend what is left of the risk (each at most
            // 1%), then no gap is longer than 1.6 s, however late.
            let mut at = t0 + first;
            let mut sleeps = 0;
            for _ in 0..200 {
                let gap = s.observe(Phase::Running, at);
                if gap > secs(1.6) {
                    sleeps += 1;
                    assert!(at - t0 < secs(30.0), "{spread}: slept past the median");
                }
                at += gap;
            }
            assert!(sleeps <= 4, "{spread}: {sleeps} more sleeps");
            assert!(s.sleep_risk_left >= -1e-9);
        }
    }

    /// Looks and lags of one schedule over durations spread as the learnt
    /// distribution says.
    fn outcomes(policy: &PollPolicy, est: DurationEstimate, durations: &[f64]) -> (f64, f64, f64) {
        let t0 = Instant::now();
        let (mut looks, mut lags) = (0usize, Vec::new());
        for (i, &d) in durations.iter().enumerate() {
            let mut s = Schedule::new(policy.clone(), Some(est), t0);
            // Jobs start at every phase of a poller's clock: the first look
            // that sees this one running comes 0.05 to 1.95 s after its
            // start (golden-ratio steps cover the range evenly).
            let seen = 0.05 + 1.9 * (i as f64 * 0.618_034).fract();
            let mut at = t0 + secs(seen);
            loop {
                looks += 1;
                if at >= t0 + secs(d) {
                    lags.push((at - (t0 + secs(d))).as_secs_f64());
                    break;
                }
                at += s.observe(Phase::Running, at);
            }
        }
        lags.sort_by(f64::total_cmp);
        let mean = lags.iter().sum::<f64>() / lags.len() as f64;
        let p95 = lags[lags.len() * 95 / 100];
        (looks as f64 / durations.len() as f64, mean, p95)
    }

    /// The issue's bar, on the schedule alone: on durations drawn as the
    /// estimate says, at every spread, no worse mean or p95 lag than a
    /// fixed 2 s poller, with fewer looks.
    #[test]
    fn on_the_learnt_distribution_the_schedule_beats_fixed_two_seconds() {
        let fixed = PollPolicy::fixed(secs(2.0));
        for spread in [1.0, 1.1, 1.5, 2.0] {
            for median in [1.0, 30.0, 120.0] {
                let est = DurationEstimate {
                    samples: 5,
                    ..lognormal(median, spread)
                };
                let sd = spread.ln() / 1.645;
                // Durations at evenly spaced quantiles, from the 1st to the
                // 99th percentile: deterministic, no sampling noise.
                let durations: Vec<f64> = (0..99)
                    .map(|i| {
                        let z = approximate_normal_quantile((i as f64 + 1.0) / 100.0);
                        median * (sd * z).exp()
                    })
                    .collect();
                let ours = outcomes(&PollPolicy::default(), est, &durations);
                let naive = outcomes(&fixed, est, &durations);
                let at = format!("spread {spread}, median {median}: {ours:?} vs {naive:?}");
                assert!(ours.1 <= naive.1, "mean lag, {at}");
                assert!(ours.2 <= naive.2 + 1e-9, "p95 lag, {at}");
                if median > 1.0 {
                    assert!(ours.0 < naive.0, "looks, {at}");
                }
            }
        }
    }

    /// Looks and lags, pooled over jobs of about 1 s, 30 s and 120 s as the
    /// benchmark runs them (one job alone, then `arrivals`), over `seeds`
    /// workloads, for a fixed 2 s poller, the default schedule alone and
    /// the default schedule in a set. `ours`: the share of the queue's jobs
    /// that are followed (the rest are somebody else's).
    fn pooled(
        spread: f64,
        arrivals: queue_model::Arrivals,
        ours: f64,
        seeds: u64,
    ) -> [queue_model::Outcome; 3] {
        use queue_model::*;
        let fixed = PollPolicy::fixed(secs(2.0));
        let default = PollPolicy::default();
        let mut pooled: [Outcome; 3] = Default::default();
        for (l, median) in [1.0, 30.0, 120.0].into_iter().enumerate() {
            for seed in 0..seeds {
                let mut rng = Rng::new(seed * 31 + l as u64);
                let endpoint = Endpoint {
                    workers: 2,
                    median,
                    spread,
                };
                let mut jobs = workload(endpoint, arrivals, &mut rng);
                if ours < 1.0 {
                    share_queue(&mut jobs, ours, &mut rng);
                }
                let followers = [
                    (&fixed, Follower::Alone),
                    (&default, Follower::Alone),
                    (&default, Follower::Set),
                ];
                for (k, (policy, follower)) in followers.into_iter().enumerate() {
                    pooled[k].extend(follow(&jobs, policy, follower).after_first());
                }
            }
        }
        pooled
    }

    /// The bar of the benchmark (issue 26) on jobs arriving at random (a
    /// Poisson stream keeping two workers 70% busy, so most jobs queue):
    /// at every spread the default schedule, alone or in a set, has no
    /// worse mean or p95 lag than fixed 2 s, at most half its looks at
    /// spreads up to 1.1 and no more at 1.5 and 2.0; and a set, which sees
    /// when the job ahead finished, needs no more looks than a lone job.
    #[test]
    fn on_random_arrivals_the_schedule_beats_fixed_two_seconds() {
        let arrivals = queue_model::Arrivals::Poisson {
            jobs: 12,
            load: 0.7,
        };
        for spread in [1.0, 1.1, 1.5, 2.0] {
            let [fixed, alone, set] = pooled(spread, arrivals, 1.0, 12);
            let looks_bar = if spread <= 1.1 { 0.5 } else { 1.0 };
            for (who, ours) in [("alone", &alone), ("set", &set)] {
                let at = format!(
                    "spread {spread}, {who}: looks {:.1} vs {:.1}, mean lag {:.2} vs {:.2}, p95 {:.2} vs {:.2}",
                    ours.looks_per_job(),
                    fixed.looks_per_job(),
                    ours.mean_lag(),
                    fixed.mean_lag(),
                    ours.p95_lag(),
                    fixed.p95_lag()
                );
                assert!(ours.mean_lag() <= fixed.mean_lag(), "{at}");
                assert!(ours.p95_lag() <= fixed.p95_lag(), "{at}");
                assert!(
                    ours.looks_per_job() <= looks_bar * fixed.looks_per_job(),
                    "{at}"
                );
            }
            assert!(
                set.looks_per_job() <= alone.looks_per_job(),
                "spread {spread}: the set looks {:.1} times a job, alone {:.1}",
                set.looks_per_job(),
                alone.looks_per_job()
            );
        }
    }

    /// Rounds of four jobs at once, as the benchmark's other pattern: a
    /// set plans the queued half of each round from the finishes of the
    /// half ahead, and meets the bar at spreads 1.1 to 2.0, with fewer looks
    /// than lone jobs. (At spread 1, every job of a round runs exactly as
    /// long, and a fixed poller's looks land at the same phase after each
    /// finish: the model's fixed 2 s then sees the longer jobs end at once,
    /// which no schedule that does not know that phase can match.)
    #[test]
    fn in_rounds_a_set_plans_queued_jobs_from_the_finishes_ahead() {
        let arrivals = queue_model::Arrivals::Rounds {
            rounds: 2,
            per_round: 4,
        };
        for spread in [1.0, 1.1, 1.5, 2.0] {
            let [fixed, alone, set] = pooled(spread, arrivals, 1.0, 12);
            let at = format!(
                "spread {spread}: looks {:.1} / {:.1} / {:.1}, mean lag {:.2} / {:.2} / {:.2}, p95 {:.2} / {:.2} / {:.2} (fixed 2 s / alone / set)",
                fixed.looks_per_job(),
                alone.looks_per_job(),
                set.looks_per_job(),
                fixed.mean_lag(),
                alone.mean_lag(),
                set.mean_lag(),
                fixed.p95_lag(),
                alone.p95_lag(),
                set.p95_lag()
            );
            assert!(set.looks_per_job() < alone.looks_per_job(), "{at}");
            if spread > 1.0 {
                let looks_bar = if spread <= 1.1 { 0.5 } else { 1.0 };
                assert!(set.mean_lag() <= fixed.mean_lag(), "{at}");
                assert!(set.p95_lag() <= fixed.p95_lag(), "{at}");
                assert!(
                    set.looks_per_job() <= looks_bar * fixed.looks_per_job(),
                    "{at}"
                );
            }
        }
    }

    /// On a queue shared with somebody else's jobs, a finish the set saw
    /// may not be what started its job; the plans it makes from them are
    /// checked and given up where wrong, and the set's lag stays within
    /// the bar and no worse than a lone job's.
    #[test]
    fn on_a_shared_queue_planning_from_finishes_costs_no_lag() {
        let arrivals = queue_model::Arrivals::Poisson {
            jobs: 12,
            load: 0.7,
        };
        for spread in [1.0, 1.1, 1.5, 2.0] {
            let [fixed, alone, set] = pooled(spread, arrivals, 0.5, 12);
            let at = format!(
                "spread {spread}: mean lag {:.2} / {:.2} / {:.2}, p95 {:.2} / {:.2} / {:.2} (fixed 2 s / alone / set)",
                fixed.mean_lag(),
                alone.mean_lag(),
                set.mean_lag(),
                fixed.p95_lag(),
                alone.p95_lag(),
                set.p95_lag()
            );
            assert!(set.mean_lag() <= fixed.mean_lag(), "{at}");
            assert!(set.p95_lag() <= fixed.p95_lag(), "{at}");
            assert!(set.mean_lag() <= alone.mean_lag() * 1.05, "{at}");
            assert!(set.p95_lag() <= alone.p95_lag() * 1.05, "{at}");
        }
    }

    /// A schedule following `finishes`, with a 30 s run learnt from many
    /// jobs.
    fn in_a_set(finishes: &Arc<SeenFinishes>, t0: Instant) -> Schedule {
        let est = DurationEstimate {
            samples: 100_000,
            ..lognormal(30.0, 1.0)
        };
        let mut s = Schedule::new(PollPolicy::default(), Some(est), t0);
        s.follow_finishes(finishes.clone());
        s
    }

    #[test]
    fn a_queued_job_is_planned_from_the_finish_that_freed_its_worker() {
        let t0 = Instant::now();
        let finishes = Arc::new(SeenFinishes::default());
        let mut s = in_a_set(&finishes, t0);
        s.observe(Phase::Queued { position: None }, t0);
        // The job ahead ended at 7 s; this one is seen running at 10 s.
        finishes.record(t0 + secs(7.0), t0 + secs(7.0));
        let sleep = s.observe(Phase::Running, t0 + secs(10.0));
        // It ends at about 37 s, not anywhere from 30 to 40 s: the sleep
        // runs to just before 37 s.
        let woke = 10.0 + sleep.as_secs_f64();
        assert!(woke > 36.0 && woke <= 37.0, "{woke}");
        // Alone, the same looks plan for a start anywhere in (0, 10].
        let mut alone = Schedule::new(PollPolicy::default(), s.estimate(), t0);
        alone.observe(Phase::Queued { position: None }, t0);
        let woke_alone = 10.0 + alone.observe(Phase::Running, t0 + secs(10.0)).as_secs_f64();
        assert!(woke_alone < 31.0, "{woke_alone}");
        // Dense looks around 37 s: a job ending then is seen within the
        // lag budget of a look.
        let mut at = woke;
        let mut looks = 0;
        while at < 37.0 {
            at += s.observe(Phase::Running, t0 + secs(at)).as_secs_f64();
            looks += 1;
        }
        assert!(
            looks <= 8 && at - 37.0 <= 0.25,
            "{looks} looks, seen at {at}"
        );
        // It did start at 7 s: a 30 s run seen ended by 37.2 s says so.
        assert_eq!(
            s.start_refuted(t0 + secs(37.2), Some(secs(30.0))),
            Some(false)
        );
        // A 30 s run seen ended by 36 s started by 6 s, before that finish.
        assert_eq!(
            s.start_refuted(t0 + secs(36.0), Some(secs(30.0))),
            Some(true)
        );
    }

    #[test]
    fn only_a_job_seen_queued_is_planned_from_finishes() {
        let t0 = Instant::now();
        let finishes = Arc::new(SeenFinishes::default());
        finishes.record(t0 + secs(0.2), t0 + secs(0.2));
        // First seen running: it may have taken a worker that was idle.
        let mut s = in_a_set(&finishes, t0);
        s.observe(Phase::Running, t0 + secs(0.5));
        assert!(s.starts.is_empty());
        assert_eq!(s.start_refuted(t0 + secs(31.0), Some(secs(30.0))), None);
    }

    #[test]
    fn a_finish_seen_after_the_job_still_places_its_start() {
        let t0 = Instant::now();
        let finishes = Arc::new(SeenFinishes::default());
        let mut s = in_a_set(&finishes, t0);
        s.observe(Phase::Queued { position: None }, t0);
        s.observe(Phase::Running, t0 + secs(10.0));
        assert!(s.starts.is_empty());
        // The job ahead is seen done only now, having ended between 6 and
        // 6.5 s.
        finishes.record(t0 + secs(6.0), t0 + secs(6.5));
        s.observe(Phase::Running, t0 + secs(20.0));
        assert_eq!(s.starts, vec![(t0 + secs(6.0), t0 + secs(6.5))]);
    }

    #[test]
    fn a_set_plans_with_what_was_learnt_as_of_its_latest_finish() {
        let t0 = Instant::now();
        let finishes = Arc::new(SeenFinishes::default());
        let one = DurationEstimate {
            samples: 1,
            ..lognormal(30.0, 1.1)
        };
        let mut s = Schedule::new(PollPolicy::default(), Some(one), t0);
        s.follow_finishes(finishes.clone());
        let five = DurationEstimate {
            samples: 5,
            ..lognormal(40.0, 1.1)
        };
        finishes.learnt(Some(five));
        s.observe(Phase::Queued { position: None }, t0);
        assert_eq!(s.estimate(), Some(five));
        // An older estimate never replaces a newer one.
        finishes.learnt(Some(one));
        s.observe(Phase::Queued { position: None }, t0 + secs(1.0));
        assert_eq!(s.estimate(), Some(five));
        // A fixed poller learns nothing, from a set or otherwise.
        let mut fixed = Schedule::new(PollPolicy::fixed(secs(2.0)), None, t0);
        fixed.follow_finishes(finishes.clone());
        fixed.observe(Phase::Running, t0);
        assert_eq!(fixed.estimate(), None);
    }

    /// The standard normal's `p`-quantile, by bisection on the CDF.
    fn approximate_normal_quantile(p: f64) -> f64 {
        largest_below(-10.0, 10.0, p, |z| {
            0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
        })
    }

    #[test]
    fn a_queue_is_looked_at_no_closer_than_a_fraction_of_a_run() {
        let t0 = Instant::now();
        let est = lognormal(60.0, 1.1);
        let mut s = Schedule::new(PollPolicy::default(), Some(est), t0);
        let gap = s.observe(Phase::Queued { position: Some(0) }, t0);
        let expected = (60.0 * 0.35_f64).min(est.planning_quantile(UNLIKELY));
        assert!(
            (gap.as_secs_f64() - expected).abs() < 0.01,
            "{gap:?} vs {expected}"
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
        // One job of 30 s learnt: the next one may well take 20 s, or 45.
        let one = DurationEstimate {
            samples: 1,
            ..lognormal(30.0, 1.0)
        };
        assert!(one.planning_cdf(20.0) > UNLIKELY);
        assert!(one.planning_cdf(45.0) < 1.0 - UNLIKELY);
        let many = DurationEstimate {
            samples: 100_000,
            ..lognormal(30.0, 1.0)
        };
        assert!(many.planning_quantile(UNLIKELY) > 29.0);
    }

    #[test]
    fn long_sleeps_are_capped() {
        let t0 = Instant::now();
        let mut s = Schedule::new(PollPolicy::default(), Some(lognormal(600.0, 1.0)), t0);
        assert_eq!(s.observe(Phase::Running, t0), secs(60.0));
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
