//! What a job set sees of one endpoint's queue: when its jobs finished,
//! which is when a worker came free and the job queued behind took it, and
//! what they taught of the endpoint's run times.
//!
//! A lone job learns its start only from its own looks: somewhere between
//! the last look that saw it queued and the first that saw it running, a
//! window as wide as the gap between queue looks (a third of a run). A set
//! following several jobs of one endpoint sees more: each of its jobs that
//! finishes frees a worker at a known moment (the list's `completed_at`, or
//! between the two looks either side of the finish), and a queued job of the
//! same endpoint starts at such a moment. A job seen queued and then running
//! with a seen finish inside that window is planned as having started then
//! (see [`Schedule`](super::Schedule)).
//!
//! That holds when the set's jobs are the ones ahead in the queue, as when
//! one program is the endpoint's main user; on a queue shared with others a
//! job may have started at a finish the set never saw. The set checks each
//! such plan once the job ends (from the run time the server reports, or
//! from the job ending while the schedule slept), and stops planning from
//! finishes on an endpoint where the checks say it was wrong more than now
//! and then.
//!
//! A job's schedule is planned with what was learnt of the endpoint when
//! the job began; in a set, each job plans with what was learnt as of the
//! set's latest finish instead, so that jobs submitted together, before any
//! had finished, do not all plan as if nothing were known; except while
//! the set runs more than a few of the endpoint's jobs at once, when the
//! finishes come shortest first and teach nothing of the spread
//! ([`FEW_RUNNING`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::DurationEstimate;
use super::estimate::WEIGHT_FLOOR;

/// The finishes one job set saw of one endpoint's jobs, newest last.
#[derive(Debug, Default)]
pub(crate) struct SeenFinishes {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each finish as the span it lies in: `(after, by)`.
    finishes: VecDeque<(Instant, Instant)>,
    /// The latest `by` of any finish dropped from the log: before it, the
    /// log is not complete.
    forgotten_until: Option<Instant>,
    /// Plans from finishes checked against how the jobs really ran, and
    /// how many of them the check refuted.
    checked: u32,
    refuted: u32,
    /// The endpoint's estimate as of the latest finish.
    estimate: Option<DurationEstimate>,
    /// The set's jobs of the endpoint seen running and not ended yet.
    running: usize,
}

/// While more of the set's jobs of one endpoint run at once than this, the
/// endpoint's estimate, as it changes, is not taken up by the set's jobs.
/// The estimate weighs about the latest this many finishes
/// (1 / `WEIGHT_FLOOR`); when more jobs than that started together, the
/// first of them to end are the short ones, and the estimate would teach,
/// finish after finish, that every run ends about now, with no spread at
/// all (each job then looked at at the shortest gap: 46 looks a job in
/// bench-scale, against 19). A queue served by a few workers ends its jobs
/// about in the order they started, and is learnt from.
pub(crate) const FEW_RUNNING: usize = (1.0 / WEIGHT_FLOOR) as usize;

/// How many finishes are kept: enough for the few queue looks of a job,
/// however many jobs finish meanwhile on a busy endpoint (a window with more
/// finishes than this in it says nothing useful anyway).
const KEPT: usize = 64;

/// More finishes than this inside one start window: the start is as
/// uncertain as the window, and planned so.
const MAX_CANDIDATES: usize = 4;

impl SeenFinishes {
    /// A job of the endpoint finished somewhere in `(after, by]`.
    pub(crate) fn record(&self, after: Instant, by: Instant) {
        let mut inner = self.lock();
        let after = after.min(by);
        if inner.finishes.len() >= KEPT
            && let Some((_, dropped_by)) = inner.finishes.pop_front()
        {
            inner.forgotten_until = Some(
                inner
                    .forgotten_until
                    .map_or(dropped_by, |t| t.max(dropped_by)),
            );
        }
        inner.finishes.push_back((after, by));
    }

    /// The finishes that may have started a job seen queued at `window.0`
    /// and running at `window.1`, each clipped to the window; empty when
    /// none was seen there, when the log no longer reaches back that far,
    /// when too many were seen to tell, or when such plans proved wrong on
    /// this endpoint.
    pub(crate) fn within(&self, window: (Instant, Instant)) -> Vec<(Instant, Instant)> {
        let inner = self.lock();
        let (queued, running) = window;
        if !inner.trusted() || inner.forgotten_until.is_some_and(|t| t > queued) {
            return Vec::new();
        }
        let found: Vec<(Instant, Instant)> = inner
            .finishes
            .iter()
            .filter(|(after, by)| *after < running && *by > queued)
            .map(|&(after, by)| (after.max(queued), by.min(running)))
            .collect();
        if found.len() > MAX_CANDIDATES {
            return Vec::new();
        }
        found
    }

    /// Counts a job of the set as running for as long as the guard lives.
    pub(crate) fn begin_run(self: &Arc<Self>) -> Running {
        self.lock().running += 1;
        Running(self.clone())
    }

    /// Whether few enough of the set's jobs run at once for its jobs to
    /// take up the estimate as it changes ([`FEW_RUNNING`]).
    pub(crate) fn few_running(&self) -> bool {
        self.lock().running <= FEW_RUNNING
    }

    /// What was learnt of the endpoint's run times, as of the latest finish.
    pub(crate) fn learnt(&self, estimate: Option<DurationEstimate>) {
        if estimate.is_some() {
            self.lock().estimate = estimate;
        }
    }

    /// The endpoint's estimate as of the latest finish.
    pub(crate) fn estimate(&self) -> Option<DurationEstimate> {
        self.lock().estimate
    }

    /// Whether a plan from finishes is still made on this endpoint.
    #[cfg(test)]
    pub(crate) fn trusted(&self) -> bool {
        self.lock().trusted()
    }

    /// A job planned from a finish ended; `refuted` when how it ran says it
    /// did not start there.
    pub(crate) fn checked(&self, refuted: bool) {
        let mut inner = self.lock();
        inner.checked = inner.checked.saturating_add(1);
        if refuted {
            inner.refuted = inner.refuted.saturating_add(1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; a poisoned log is still a log.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A job of the set seen running: counted by [`SeenFinishes::few_running`]
/// until it is dropped (with the job's schedule, when the set hands the job
/// out or stops following it).
#[derive(Debug)]
pub(crate) struct Running(Arc<SeenFinishes>);

impl Drop for Running {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.running = inner.running.saturating_sub(1);
    }
}

impl Inner {
    /// One refuted plan is forgiven, then one in eight.
    fn trusted(&self) -> bool {
        u64::from(self.refuted) * 8 <= u64::from(self.checked) + 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn finishes_inside_the_window_are_the_candidate_starts() {
        let t0 = Instant::now();
        let seen = SeenFinishes::default();
        seen.record(at(t0, 1.0), at(t0, 1.5));
        seen.record(at(t0, 9.0), at(t0, 12.0));
        seen.record(at(t0, 30.0), at(t0, 30.0));
        // Queued at 5 s, running at 11 s: only the second, clipped.
        assert_eq!(
            seen.within((at(t0, 5.0), at(t0, 11.0))),
            vec![(at(t0, 9.0), at(t0, 11.0))]
        );
        assert!(seen.within((at(t0, 13.0), at(t0, 20.0))).is_empty());
    }

    #[test]
    fn a_log_that_forgot_the_window_or_holds_too_many_tells_nothing() {
        let t0 = Instant::now();
        let seen = SeenFinishes::default();
        for i in 0..(KEPT + 10) {
            seen.record(at(t0, i as f64), at(t0, i as f64));
        }
        // Finishes at 0 to 9 s were dropped: a window from 4 s cannot be told.
        assert!(seen.within((at(t0, 4.0), at(t0, 12.5))).is_empty());
        // From 70 s on, the log is whole: 71 and 72 are in (70.5, 72.5].
        assert_eq!(seen.within((at(t0, 70.5), at(t0, 72.5))).len(), 2);
        // Five candidates: no better than the window.
        assert!(seen.within((at(t0, 60.5), at(t0, 65.5))).is_empty());
    }

    #[test]
    fn jobs_running_are_counted_while_their_guards_live() {
        let seen = Arc::new(SeenFinishes::default());
        let guards: Vec<Running> = (0..FEW_RUNNING).map(|_| seen.begin_run()).collect();
        assert!(seen.few_running());
        let one_more = seen.begin_run();
        assert!(!seen.few_running());
        drop(one_more);
        assert!(seen.few_running());
        drop(guards);
        assert_eq!(seen.lock().running, 0);
    }

    #[test]
    fn refuted_plans_stop_the_planning() {
        let t0 = Instant::now();
        let seen = SeenFinishes::default();
        seen.record(at(t0, 2.0), at(t0, 2.0));
        let window = (at(t0, 1.0), at(t0, 3.0));
        seen.checked(true);
        assert!(seen.trusted(), "one refutation is forgiven");
        for _ in 0..8 {
            seen.checked(false);
        }
        seen.checked(true);
        assert!(seen.trusted(), "two in ten");
        seen.checked(true);
        assert!(!seen.trusted(), "three in eleven");
        assert!(seen.within(window).is_empty());
    }
}
