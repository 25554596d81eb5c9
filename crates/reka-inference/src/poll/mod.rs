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
    /// Counts the job among its set's running jobs, once seen running.
    running: Option<Running>,
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
            running: None,
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
            self.running = self.finishes.as_ref().map(|f| f.begin_run());
            self.started = Some((self.previous_poll, now));
            self.queued_before_start = matches!(self.last_phase, Some(Phase::Queued { .. }));
        }
        if phase == Phase::Running {
            self.place_start();
        }
        // In a set, the estimate as of its latest finish, unless the set
        // runs many of the endpoint's jobs at once (see `FEW_RUNNING`).
        if self.policy.learn
            && let Some(finishes) = self.finishes.as_ref().filter(|f| f.few_running())
            && let Some(newer) = finishes.estimate()
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
pub(crate) use finishes::{Running, SeenFinishes};

#[cfg(test)]
mod tests;
