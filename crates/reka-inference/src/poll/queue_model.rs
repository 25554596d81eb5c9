//! A model of one endpoint's queue for the schedule's tests: jobs arrive
//! (in rounds, or at random gaps), wait in order for one of a few workers,
//! run for a lognormal time, and are each followed by a [`Schedule`], alone
//! or as a set that sees the others finish; in simulated time, with no I/O,
//! so that a test can hold the schedule to the benchmark's bar on thousands
//! of jobs in a second.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Estimates, Phase, PollPolicy, Schedule, SeenFinishes};

/// A seeded xorshift64* generator: the same workloads on every run and
/// with every version of `rand` (whose `StdRng` stream may change between
/// releases, which would move the figures the tests hold to a bar).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform on (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.uniform().ln()
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// How jobs arrive.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arrivals {
    /// `per_round` jobs at once, the next round once all have finished.
    Rounds { rounds: usize, per_round: usize },
    /// `jobs` jobs at exponentially distributed gaps, at a rate that keeps
    /// the workers busy `load` of the time.
    Poisson { jobs: usize, load: f64 },
}

/// One endpoint: its workers and its jobs' lognormal run times.
#[derive(Debug, Clone, Copy)]
pub(super) struct Endpoint {
    pub(super) workers: usize,
    pub(super) median: f64,
    /// p95 / median of the run times (1: fixed).
    pub(super) spread: f64,
}

/// One job of the model, in simulated seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct ModelJob {
    arrive: f64,
    start: f64,
    finish: f64,
    /// Followed by the schedules under test (others only hold the queue).
    ours: bool,
}

impl ModelJob {
    fn run(&self) -> f64 {
        self.finish - self.start
    }
}

/// One job alone (to learn from), then the arrivals; started in order of
/// arrival as workers come free.
pub(super) fn workload(endpoint: Endpoint, arrivals: Arrivals, rng: &mut Rng) -> Vec<ModelJob> {
    let log_std_dev = endpoint.spread.ln() / 1.645;
    let mut gaps = Rng::new(rng.next_u64());
    let mut draw = || endpoint.median * (log_std_dev * rng.normal()).exp();
    let mut free = vec![0.0_f64; endpoint.workers.max(1)];
    let mut jobs: Vec<ModelJob> = Vec::new();
    let mut enqueue = |arrive: f64, run: f64, jobs: &mut Vec<ModelJob>| {
        let (worker, at) = free
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let start = arrive.max(at);
        free[worker] = start + run;
        jobs.push(ModelJob {
            arrive,
            start,
            finish: start + run,
            ours: true,
        });
    };
    let first = draw();
    enqueue(0.0, first, &mut jobs);
    // The next arrivals come once the first job is over, as in the benchmark.
    let mut clock = first + 1.0;
    match arrivals {
        Arrivals::Rounds { rounds, per_round } => {
            for _ in 0..rounds {
                for _ in 0..per_round {
                    let run = draw();
                    enqueue(clock, run, &mut jobs);
                }
                let last = jobs.iter().map(|j| j.finish).fold(clock, f64::max);
                clock = last + 1.0;
            }
        }
        Arrivals::Poisson { jobs: n, load } => {
            let mean_run = endpoint.median * (log_std_dev * log_std_dev / 2.0).exp();
            let gap = mean_run / (load * endpoint.workers.max(1) as f64);
            for _ in 0..n {
                let run = draw();
                enqueue(clock, run, &mut jobs);
                clock += gaps.exponential(gap);
            }
        }
    }
    jobs
}

/// Makes about `1 - ours` of the jobs after the first somebody else's: they
/// hold the queue, but nobody here follows them or sees them finish.
pub(super) fn share_queue(jobs: &mut [ModelJob], ours: f64, rng: &mut Rng) {
    for job in jobs.iter_mut().skip(1) {
        job.ours = rng.uniform() < ours;
    }
}

/// Who follows the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Follower {
    /// Each job on its own: status looks show the queue position.
    Alone,
    /// One set for all: looks show no position, and every finish the set
    /// sees (between the look before and the look that saw it) is a worker
    /// come free.
    Set,
}

/// Looks per job and lags (seconds from finish to the look that saw it),
/// of the jobs followed, in order of arrival.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) looks: Vec<f64>,
    pub(super) lags: Vec<f64>,
}

impl Outcome {
    pub(super) fn looks_per_job(&self) -> f64 {
        self.looks.iter().sum::<f64>() / self.looks.len().max(1) as f64
    }

    pub(super) fn mean_lag(&self) -> f64 {
        self.lags.iter().sum::<f64>() / self.lags.len().max(1) as f64
    }

    /// Nearest rank, as the benchmark reports it.
    pub(super) fn p95_lag(&self) -> f64 {
        let mut sorted = self.lags.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = (0.95 * sorted.len() as f64).ceil() as usize;
        sorted
            .get(rank.clamp(1, sorted.len().max(1)) - 1)
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// Everything but the first job (the one that learns, alone).
    pub(super) fn after_first(mut self) -> Outcome {
        if !self.looks.is_empty() {
            self.looks.remove(0);
            self.lags.remove(0);
        }
        self
    }

    pub(super) fn extend(&mut self, other: Outcome) {
        self.looks.extend(other.looks);
        self.lags.extend(other.lags);
    }
}

/// Follows every job of `jobs` with `policy`, learning durations as the
/// client does (each job plans with what was learnt when it arrived).
pub(super) fn follow(jobs: &[ModelJob], policy: &PollPolicy, follower: Follower) -> Outcome {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Event {
        Arrive(usize),
        Look(usize),
    }
    let t0 = Instant::now();
    let instant = |s: f64| t0 + Duration::from_secs_f64(s.max(0.0));
    let nanos = |s: f64| (s.max(0.0) * 1e9) as u64;
    let estimates = Estimates::default();
    let finishes = Arc::new(SeenFinishes::default());
    let mut schedules: Vec<Option<Schedule>> = jobs.iter().map(|_| None).collect();
    let mut last_look = vec![0.0_f64; jobs.len()];
    let mut looks = vec![0.0; jobs.len()];
    let mut lags = vec![0.0; jobs.len()];
    let mut events: BinaryHeap<Reverse<(u64, Event)>> = jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| j.ours)
        .map(|(i, j)| Reverse((nanos(j.arrive), Event::Arrive(i))))
        .collect();
    while let Some(Reverse((at, event))) = events.pop() {
        let now = at as f64 / 1e9;
        match event {
            Event::Arrive(i) => {
                let estimate = policy.learns().then(|| estimates.get("m")).flatten();
                let mut schedule = Schedule::new(policy.clone(), estimate, instant(now));
                if follower == Follower::Set {
                    schedule.follow_finishes(finishes.clone());
                }
                let first = now + schedule.first_delay().as_secs_f64();
                schedules[i] = Some(schedule);
                last_look[i] = now;
                events.push(Reverse((nanos(first), Event::Look(i))));
            }
            Event::Look(i) => {
                let job = jobs[i];
                let Some(schedule) = schedules[i].as_mut() else {
                    continue;
                };
                looks[i] += 1.0;
                if now >= job.finish {
                    lags[i] = now - job.finish;
                    if policy.learns() {
                        estimates.record("m", job.run());
                    }
                    if follower == Follower::Set {
                        let run = Duration::from_secs_f64(job.run());
                        if let Some(refuted) = schedule.start_refuted(instant(now), Some(run)) {
                            finishes.checked(refuted);
                        }
                        finishes.record(instant(last_look[i]), instant(now));
                        finishes.learnt(estimates.get("m"));
                    }
                    // Handed out: the set stops following it.
                    schedules[i] = None;
                    continue;
                }
                let phase = if now < job.start {
                    let position = match follower {
                        Follower::Alone => {
                            Some(jobs[..i].iter().filter(|j| j.start > now).count() as u64)
                        }
                        Follower::Set => None,
                    };
                    Phase::Queued { position }
                } else {
                    Phase::Running
                };
                let gap = schedule.observe(phase, instant(now));
                last_look[i] = now;
                events.push(Reverse((at + gap.as_nanos() as u64, Event::Look(i))));
            }
        }
    }
    let ours = |v: Vec<f64>| -> Vec<f64> {
        v.into_iter()
            .zip(jobs)
            .filter(|(_, j)| j.ours)
            .map(|(x, _)| x)
            .collect()
    };
    Outcome {
        looks: ours(looks),
        lags: ours(lags),
    }
}
