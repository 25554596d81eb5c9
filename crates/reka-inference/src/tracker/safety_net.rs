//! The webhook safety net: when a job whose wait listens for its webhook
//! delivery is looked at anyway, because a delivery can be lost, late, or
//! never sent (a wrong URL).
//!
//! A webhook is a shortcut, not the only way to learn that a job ended. The
//! safety net looks at the job around its likely finish and, once that has
//! passed, at a backoff capped well below a minute, so a lost delivery
//! costs seconds, never minutes:
//!
//! - **Duration learnt**: the likely finish is the 75th percentile of the
//!   endpoint's learnt running time after the job's latest possible start
//!   (the submit before anything is seen; the look that first saw it
//!   running; for a queued job, the look that saw it queued), plus
//!   [`GRACE`] for the delivery to arrive. Looks before it would only cost
//!   requests when the delivery comes, so there are none (bar the gaps of
//!   a queue that does not move); from it on, gaps double from [`MIN_GAP`]
//!   to [`MAX_GAP`].
//! - **Nothing learnt**: gaps double from [`MIN_GAP`] after the submit to
//!   [`MAX_GAP`], restarting when the job's status changes.
//!
//! Every duration but the learnt running time (measured on this process's
//! clock) is scaled like the poll policy ([`PollPolicy::scaled`]).
//!
//! [`PollPolicy::scaled`]: crate::PollPolicy::scaled

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::later;
use crate::poll::{DurationEstimate, Phase};
use crate::webhook::Deliveries;

/// The first gap after a submit or a change of status, and the shortest
/// gap: a naive poller's 2 s.
pub(crate) const MIN_GAP: Duration = Duration::from_secs(2);
/// The longest gap once the likely finish has passed, or when nothing
/// tells when it is.
pub(crate) const MAX_GAP: Duration = Duration::from_secs(30);
/// The time a delivery is given after the likely finish.
pub(crate) const GRACE: Duration = Duration::from_secs(2);
/// The longest sleep to a likely finish (an estimate of hours is not
/// trusted that far).
const MAX_SLEEP: Duration = Duration::from_secs(600);
/// The quantile of the learnt running time taken as the likely finish: a
/// compromise between looks made while the delivery is still coming (a
/// later quantile makes fewer) and the lag of a lost one (an earlier
/// quantile makes less).
const LIKELY: f64 = 0.75;

/// The safety net of one job.
pub(super) struct SafetyNet {
    /// Where the job's deliveries arrive: told of each safety-net look and
    /// of each delivery the safety net found missing.
    deliveries: Arc<dyn Deliveries>,
    scale: f64,
    /// The next gap of the backoff.
    backoff: Duration,
    /// The status the last look saw (the backoff restarts on a change).
    last_phase: Option<Phase>,
    /// A delivery for the job arrived.
    pub(super) delivered: bool,
}

impl SafetyNet {
    pub(super) fn new(deliveries: Arc<dyn Deliveries>, scale: f64) -> SafetyNet {
        SafetyNet {
            deliveries,
            scale,
            backoff: scaled(MIN_GAP, scale),
            last_phase: None,
            delivered: false,
        }
    }

    pub(super) fn deliveries(&self) -> &Arc<dyn Deliveries> {
        &self.deliveries
    }

    /// The first look at a job submitted at `submitted`, before anything
    /// has been seen of it.
    pub(super) fn first_look(
        &mut self,
        submitted: Instant,
        estimate: Option<DurationEstimate>,
    ) -> Instant {
        self.plan(submitted, estimate.map(|e| (submitted, e)))
    }

    /// The next look after a look at `now` saw `phase`; `started` is the
    /// latest the job can have started, once it was seen running.
    pub(super) fn after_look(
        &mut self,
        phase: Phase,
        now: Instant,
        started: Option<Instant>,
        estimate: Option<DurationEstimate>,
    ) -> Instant {
        // A change of status starts the backoff again (the first status
        // seen is no change: nothing was known before it).
        if self.last_phase.is_some_and(|last| last != phase) {
            self.backoff = scaled(MIN_GAP, self.scale);
        }
        self.last_phase = Some(phase);
        let run_from = match phase {
            // If it started right after this look.
            Phase::Queued { .. } => Some(now),
            Phase::Running => started,
            Phase::Unknown => None,
        };
        self.plan(now, run_from.zip(estimate))
    }

    /// The later of the backoff's next look and the likely finish of a run
    /// from `run_from` under `estimate`, given the delivery's grace.
    fn plan(&mut self, now: Instant, run: Option<(Instant, DurationEstimate)>) -> Instant {
        let gap = self.backoff;
        self.backoff = gap.saturating_mul(2).min(scaled(MAX_GAP, self.scale));
        let by_backoff = later(now, gap);
        let Some((from, estimate)) = run else {
            return by_backoff;
        };
        let run = Duration::try_from_secs_f64(estimate.planning_quantile(LIKELY))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        let likely = later(later(from, run), scaled(GRACE, self.scale));
        let likely = likely.min(later(now, MAX_SLEEP));
        by_backoff.max(likely)
    }
}

/// `d` times the policy's time scale, saturating.
pub(super) fn scaled(d: Duration, scale: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * scale).unwrap_or(if scale > 1.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    struct Nowhere(Url);

    impl Deliveries for Nowhere {
        fn url(&self) -> &Url {
            &self.0
        }
        fn for_job(&self, _: &str) -> tokio::sync::watch::Receiver<u64> {
            tokio::sync::watch::channel(0).1
        }
        fn any(&self) -> tokio::sync::watch::Receiver<u64> {
            tokio::sync::watch::channel(0).1
        }
    }

    fn net() -> SafetyNet {
        SafetyNet::new(
            Arc::new(Nowhere("http://127.0.0.1:9/".parse().unwrap())),
            1.0,
        )
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn learnt(median: f64) -> DurationEstimate {
        DurationEstimate {
            mean: median,
            std_dev: 0.0,
            log_mean: median.ln(),
            log_std_dev: 0.05,
            samples: 1000,
        }
    }

    #[test]
    fn with_nothing_learnt_looks_back_off_from_two_seconds_to_thirty() {
        let t0 = Instant::now();
        let mut n = net();
        let mut at = n.first_look(t0, None);
        let mut gaps = vec![at - t0];
        for _ in 0..6 {
            let next = n.after_look(Phase::Running, at, Some(at), None);
            gaps.push(next - at);
            at = next;
        }
        assert_eq!(
            gaps,
            [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0].map(secs),
            "{gaps:?}"
        );
        // A change of status starts again from 2 s.
        let next = n.after_look(Phase::Queued { position: Some(0) }, at, None, None);
        assert_eq!(next - at, secs(2.0));
    }

    #[test]
    fn a_learnt_duration_puts_the_first_look_past_the_likely_finish() {
        let t0 = Instant::now();
        let mut n = net();
        let first = n.first_look(t0, Some(learnt(120.0)));
        let wait = first - t0;
        // About the 75th percentile of 120 s, plus the grace: no look while
        // the delivery is still expected.
        assert!(wait > secs(122.0) && wait < secs(135.0), "{wait:?}");
        // Seen running (it queued first): the next look is its own likely
        // finish, counted from the look that saw it running.
        let next = n.after_look(Phase::Running, first, Some(first), Some(learnt(120.0)));
        assert!(next - first > secs(122.0), "{:?}", next - first);
        // Past it: the backoff, never above 30 s.
        let mut at = next;
        for _ in 0..8 {
            let after = n.after_look(Phase::Running, at, Some(first), Some(learnt(120.0)));
            assert!(after - at <= secs(30.0), "{:?}", after - at);
            at = after;
        }
    }

    #[test]
    fn a_queue_that_does_not_move_is_looked_at_less_and_less_often() {
        let t0 = Instant::now();
        let mut n = net();
        let mut at = n.first_look(t0, Some(learnt(1.0)));
        // A run of about 1 s plus the grace.
        assert!(at - t0 >= secs(3.0) && at - t0 < secs(3.5), "{:?}", at - t0);
        let mut gaps = Vec::new();
        for _ in 0..6 {
            let next = n.after_look(
                Phase::Queued { position: Some(9) },
                at,
                None,
                Some(learnt(1.0)),
            );
            gaps.push(next - at);
            at = next;
        }
        // Then the backoff takes over.
        assert_eq!(
            gaps,
            [4.0, 8.0, 16.0, 30.0, 30.0, 30.0].map(secs),
            "{gaps:?}"
        );
    }

    #[test]
    fn the_policy_scale_applies_to_everything_but_the_learnt_run() {
        let t0 = Instant::now();
        let mut n = SafetyNet::new(
            Arc::new(Nowhere("http://127.0.0.1:9/".parse().unwrap())),
            0.01,
        );
        assert_eq!(n.first_look(t0, None) - t0, secs(0.02));
    }
}
