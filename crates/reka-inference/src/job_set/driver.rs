//! The engine of a [`JobSet`](super::JobSet): one task that follows every
//! job of the set with its own [`Tracker`], answers status looks by list
//! sweeps over `created_at` chunks while that is cheaper, falls back to
//! per-job polls, and hands finished jobs to the stream in the order they
//! finish. See the parent module for the strategy. Every finish it sees is
//! noted per endpoint ([`SeenFinishes`]): the queued jobs of that endpoint
//! plan their starts from it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reka_inference_api::RequestStatus as JobStatus;
use reka_inference_api::types::RequestItem;
use tokio::time::Instant;

use super::{Inbox, JobOutcome, JobSet, JobSetOptions};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::http::{Http, deadline_after};
use crate::job::Job;
use crate::jobs::{Jobs, ListFilter, MAX_PAGE_SIZE, next_offset};
use crate::poll::{PollPolicy, SeenFinishes};
use crate::tracker::{LookKind, Tracker, later};
use crate::vocab::outcome_of;
use crate::webhook::Deliveries;

mod sweep;

/// One job of the set being followed.
struct Pending {
    index: usize,
    job: Job,
    tracker: Tracker,
    /// When its submit was accepted, on this machine's clock.
    submitted: Option<DateTime<Utc>>,
    /// The server's `created_at`, once a sweep has shown the job.
    created: Option<DateTime<Utc>>,
    misses: u32,
    own_polling: bool,
    /// The count of webhook deliveries for the job, when it has a webhook.
    deliveries: Option<tokio::sync::watch::Receiver<u64>>,
    /// What the set sees of the job's endpoint, when it has one and the
    /// policy learns.
    finishes: Option<Arc<SeenFinishes>>,
    /// When the job was seen finished (its finish was before it), once it was.
    finished_by: Option<Instant>,
}

impl Pending {
    fn next_look(&self) -> Option<(Instant, LookKind)> {
        self.tracker.next_look()
    }

    /// Due for a status look that a sweep can answer.
    fn due_for_sweep(&self, horizon: Instant) -> bool {
        !self.own_polling
            && self
                .next_look()
                .is_some_and(|(at, kind)| kind == LookKind::Status && at <= horizon)
    }
}

/// A `created_at` range to list: inclusive start, exclusive end.
type CreatedRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A `created_at` range of the list holding about 100 of the set's jobs.
struct Chunk {
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    ids: Vec<String>,
}

/// List failures in a row after which the set polls jobs one by one.
const MAX_LIST_FAILURES: u32 = 5;

/// The longest pause between two tries of a failing list.
const MAX_LIST_BACKOFF: Duration = Duration::from_secs(30);

/// How far before a job's submit its `created_at` may be (clock skew).
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(60);

pub(super) struct Driver {
    http: Http,
    inbox: Arc<Inbox>,
    options: JobSetOptions,
    policy: PollPolicy,
    /// By the job's index in the set: the same id may be pushed twice.
    pending: HashMap<usize, Pending>,
    /// The indices of each id still pending.
    by_id: HashMap<String, Vec<usize>>,
    next_index: usize,
    ready: VecDeque<JobOutcome>,
    /// The deadline of the whole set, if it has one.
    deadline: Option<Instant>,
    /// How long each job is waited for from when it joins.
    job_timeout: Option<Duration>,
    list_usable: bool,
    /// The list is not read again before this instant (after failures).
    list_paused_until: Option<Instant>,
    list_failures: u32,
    /// The one endpoint every job shares: `None` before the first job,
    /// `Some(None)` once two differ.
    common_endpoint: Option<Option<Endpoint>>,
    chunks: Vec<Chunk>,
    /// "Some delivery arrived", one watch per distinct delivery source of
    /// the set (told apart by their URL).
    any_delivery: Vec<tokio::sync::watch::Receiver<u64>>,
    sources: Vec<Arc<dyn Deliveries>>,
    /// The finishes seen of each endpoint's jobs.
    finishes: HashMap<Endpoint, Arc<SeenFinishes>>,
}

impl Driver {
    pub(super) fn new(set: JobSet, inbox: Arc<Inbox>) -> Driver {
        let waits = set.http.waits();
        let policy = set
            .options
            .poll
            .clone()
            .unwrap_or_else(|| waits.poll.clone());
        let deadline = set
            .options
            .timeout
            .and_then(|t| deadline_after(Instant::now(), t));
        let job_timeout = match (set.options.job_timeout, set.options.timeout) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some(waits.timeout),
        };
        let mut driver = Driver {
            http: set.http,
            inbox,
            options: set.options,
            policy,
            pending: HashMap::with_capacity(set.jobs.len()),
            by_id: HashMap::with_capacity(set.jobs.len()),
            next_index: 0,
            ready: VecDeque::new(),
            deadline,
            job_timeout,
            list_usable: true,
            list_paused_until: None,
            list_failures: 0,
            common_endpoint: None,
            chunks: Vec::new(),
            any_delivery: Vec::new(),
            sources: Vec::new(),
            finishes: HashMap::new(),
        };
        for job in set.jobs {
            driver.add(job);
        }
        driver.publish_counts();
        driver
    }

    /// Moves the jobs pushed since the last look into the set.
    pub(super) fn take_inbox(&mut self) {
        let jobs = self.inbox.take();
        if jobs.is_empty() {
            return;
        }
        for job in jobs {
            self.add(job);
        }
        self.publish_counts();
    }

    /// Nothing to follow and nothing to hand out.
    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.ready.is_empty()
    }

    fn add(&mut self, job: Job) {
        let index = self.next_index;
        self.next_index += 1;
        let now = Instant::now();
        let endpoint = job.endpoint().cloned();
        self.common_endpoint = Some(match self.common_endpoint.take() {
            None => endpoint.clone(),
            Some(c) if c == endpoint => c,
            Some(_) => None,
        });
        let deadline = match (
            self.deadline,
            self.job_timeout.and_then(|t| deadline_after(now, t)),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let finishes = match &endpoint {
            Some(e) if self.policy.learns() => {
                Some(self.finishes.entry(e.clone()).or_default().clone())
            }
            _ => None,
        };
        let mut tracker = Tracker::new(
            self.http.clone(),
            job.id().to_owned(),
            endpoint,
            job.submitted_at(),
            self.policy.clone(),
            deadline,
            false,
        )
        .without_record_looks_while_running();
        if let Some(seen) = &finishes {
            tracker.schedule_mut().follow_finishes(seen.clone());
        }
        self.by_id
            .entry(job.id().to_owned())
            .or_default()
            .push(index);
        // A job with a webhook parks on its delivery and is looked at on
        // its own (confirming fetch, safety net), never through sweeps.
        let (tracker, deliveries) = match (job.deliveries(), job.delivery_count()) {
            (Some(source), Some(mut deliveries)) => {
                if !self.sources.iter().any(|known| known.url() == source.url()) {
                    self.sources.push(source.clone());
                    self.any_delivery.push(source.any());
                }
                let mut tracker = tracker.with_safety_net(source.clone());
                if *deliveries.borrow_and_update() > 0 {
                    tracker.delivery_hint(now);
                }
                (tracker, Some(deliveries))
            }
            _ => (tracker, None),
        };
        let webhook = deliveries.is_some();
        let submitted = job.submit_time();
        self.pending.insert(
            index,
            Pending {
                index,
                job,
                tracker,
                submitted,
                created: None,
                misses: 0,
                // A job whose age is unknown: a sweep for it would have no
                // lower bound and read the key's whole history.
                own_polling: submitted.is_none() || webhook,
                deliveries,
                finishes,
                finished_by: None,
            },
        );
    }

    /// Tells readers of [`JobOutcomes::counts`] where the jobs stand.
    fn publish_counts(&self) {
        let (mut queued, mut running) = (0, 0);
        for p in self.pending.values() {
            match p.tracker.last_status() {
                Some(JobStatus::InQueue) => queued += 1,
                Some(JobStatus::InProgress) => running += 1,
                _ => {}
            }
        }
        self.publish_pending();
        self.inbox.queued.store(queued, Ordering::Relaxed);
        self.inbox.running.store(running, Ordering::Relaxed);
    }

    /// Jobs whose outcome has not been read yet.
    fn publish_pending(&self) {
        self.inbox
            .pending
            .store(self.pending.len() + self.ready.len(), Ordering::Relaxed);
    }

    /// Sleeps until `at`, or until a job is pushed or a webhook delivery
    /// arrives for the set; then hints every job whose own delivery count
    /// moved.
    async fn sleep_until(&mut self, at: Instant) {
        let inbox = self.inbox.clone();
        let arrived = inbox.arrived.notified();
        if !self.any_delivery.is_empty() {
            let changed = futures::future::select_all(
                self.any_delivery.iter_mut().map(|w| Box::pin(w.changed())),
            );
            let gone = tokio::select! {
                () = tokio::time::sleep_until(at) => None,
                () = arrived => None,
                (result, index, _) = changed => result.is_err().then_some(index),
            };
            if let Some(index) = gone {
                // That receiver is gone: its jobs rely on the safety net.
                self.any_delivery.remove(index);
                self.sources.remove(index);
            }
            let now = Instant::now();
            for p in self.pending.values_mut() {
                if let Some(d) = &mut p.deliveries
                    && d.has_changed().unwrap_or(false)
                {
                    d.borrow_and_update();
                    p.tracker.delivery_hint(now);
                }
            }
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = arrived => {}
        }
    }

    fn listed(&self) -> impl Iterator<Item = &Pending> {
        self.pending.values().filter(|p| !p.own_polling)
    }

    fn use_list(&self, now: Instant) -> bool {
        self.list_usable
            && self.list_paused_until.is_none_or(|t| now >= t)
            && self.listed().count() >= self.options.list_threshold
    }

    /// Whether sweeps answer the status looks of listed jobs (even while
    /// the list is paused after a failure).
    fn sweeps_answer(&self) -> bool {
        self.list_usable && self.listed().count() >= self.options.list_threshold
    }

    pub(super) async fn next(&mut self) -> Option<JobOutcome> {
        loop {
            self.take_inbox();
            if let Some(outcome) = self.ready.pop_front() {
                self.publish_pending();
                return Some(outcome);
            }
            if self.pending.is_empty() {
                return None;
            }
            let now = Instant::now();
            self.collect_finished(now);
            self.publish_counts();
            if !self.ready.is_empty() {
                continue;
            }
            // Jobs due a little later join this round: fewer, fuller sweeps.
            let horizon = later(now, self.policy.first_interval() / 2);
            let swept = self.use_list(now) && self.listed().any(|p| p.due_for_sweep(now));
            if swept {
                self.sweep(horizon).await;
            }
            // The looks a sweep cannot answer (records of jobs it saw end,
            // jobs polled on their own) are made in the same round: while
            // thousands of jobs are followed, some job is always due for
            // the next sweep, and sweeping first each time would starve
            // them.
            let now = Instant::now();
            let sweeping = self.sweeps_answer();
            let due: Vec<(usize, LookKind)> = self
                .pending
                .values()
                .filter_map(|p| {
                    let (at, kind) = p.next_look()?;
                    let by_list = sweeping && !p.own_polling && kind == LookKind::Status;
                    (!by_list && at <= now).then_some((p.index, kind))
                })
                .collect();
            if !due.is_empty() {
                self.look_each(due).await;
                continue;
            }
            if swept {
                continue;
            }
            let list_pause = self.list_paused_until;
            let wake = self
                .pending
                .values()
                .filter_map(|p| {
                    let (at, kind) = p.next_look()?;
                    let by_list = sweeping && !p.own_polling && kind == LookKind::Status;
                    let look = match list_pause {
                        Some(t) if by_list => at.max(t),
                        _ => at,
                    };
                    Some(p.tracker.deadline().map_or(look, |d| look.min(d)))
                })
                .chain(self.deadline)
                .min();
            match wake {
                Some(at) => self.sleep_until(at).await,
                // Every job has finished and its outcome is collected next.
                None => continue,
            }
        }
    }

    /// Moves finished jobs (and jobs past their deadline) to `ready`.
    fn collect_finished(&mut self, now: Instant) {
        let mut done: Vec<usize> = Vec::new();
        for p in self.pending.values_mut() {
            if p.tracker.is_due_to_expire(now) {
                p.tracker.expire(false);
            }
            if p.tracker.is_finished() {
                done.push(p.index);
            }
        }
        done.sort_unstable();
        for index in done {
            let Some(mut p) = self.pending.remove(&index) else {
                continue;
            };
            if let Some(indices) = self.by_id.get_mut(p.tracker.id()) {
                indices.retain(|&i| i != index);
                if indices.is_empty() {
                    self.by_id.remove(p.tracker.id());
                }
            }
            let mut result = None;
            while let Some(event) = p.tracker.take_event() {
                if let Some(outcome) = outcome_of(p.tracker.id(), event) {
                    result = Some(outcome);
                }
            }
            let result = result.unwrap_or_else(|| Err(p.tracker.timeout_error(false)));
            self.ready.push_back(JobOutcome {
                index,
                job: p.job,
                result,
            });
        }
        // Events along the way (queued, started) are not reported by a set.
        for p in self.pending.values_mut() {
            while p.tracker.take_event().is_some() {}
        }
    }

    /// Makes each due look of a job on its own (a status look is made as a
    /// record look: status and output in one request), at most
    /// `max_concurrency` at a time.
    async fn look_each(&mut self, due: Vec<(usize, LookKind)>) {
        let jobs: Vec<(usize, Job, Option<Instant>)> = due
            .into_iter()
            .filter_map(|(i, _)| {
                let p = self.pending.get(&i)?;
                Some((i, p.job.clone(), p.tracker.deadline()))
            })
            .collect();
        let answers: Vec<(usize, Result<reka_inference_api::types::ResultResponse>)> =
            futures::stream::iter(jobs)
                .map(|(i, job, deadline)| async move { (i, job.result_until(deadline).await) })
                .buffer_unordered(self.options.max_concurrency)
                .collect()
                .await;
        let now = Instant::now();
        for (index, answer) in answers {
            let Some(p) = self.pending.get_mut(&index) else {
                continue;
            };
            match answer {
                Ok(record) => {
                    let run = record.metrics.as_ref().and_then(|m| m.inference_time);
                    p.tracker.observe_record(record, now);
                    let ended = p.tracker.is_finished()
                        && p.tracker.last_status().is_some_and(frees_a_worker);
                    if ended {
                        note_finish(p, None, now);
                        check_planned_start(&self.http, p, run);
                    }
                }
                Err(e) => p.tracker.observe_failure(e, now),
            }
        }
    }
}

/// Whether a job that ends so had a worker (a cancelled job may never
/// have left the queue).
fn frees_a_worker(status: &JobStatus) -> bool {
    matches!(status, JobStatus::Completed | JobStatus::Failed)
}

/// Notes, once, that `p` finished by `now`: between its last look and
/// `now`, or at the server's `completed_at` when the job's own submit and
/// `created_at` say how the server's clock stands to this one's (and only
/// inside that span: a clock that drifted cannot move it out).
fn note_finish(p: &mut Pending, completed_at: Option<DateTime<Utc>>, now: Instant) {
    if p.finished_by.is_some() {
        return;
    }
    p.finished_by = Some(now);
    let Some(seen) = &p.finishes else {
        return;
    };
    let after = p.tracker.schedule().last_look().min(now);
    // The job's own submit, on this clock, and its `created_at`, on the
    // server's, are the same moment (give or take half a round trip).
    let server_ahead = p.created.zip(p.submitted).map(|(c, s)| c - s);
    match completed_at.zip(server_ahead) {
        Some((at, ahead)) => {
            let at = on_this_clock(at, ahead, Utc::now(), (after, now));
            seen.record(at, at);
        }
        None => seen.record(after, now),
    }
}

/// The instant on this machine's clock of the server's time `server_at`,
/// for a server clock `server_ahead` of this one (`utc_now` is this clock's
/// date at `span.1`), kept inside `span`, where the moment is known to lie
/// whatever the clocks say.
fn on_this_clock(
    server_at: DateTime<Utc>,
    server_ahead: chrono::TimeDelta,
    utc_now: DateTime<Utc>,
    span: (Instant, Instant),
) -> Instant {
    let (after, now) = (span.0.min(span.1), span.1);
    let local = server_at
        .checked_sub_signed(server_ahead)
        .unwrap_or(utc_now);
    let ago = (utc_now - local).to_std().unwrap_or(Duration::ZERO);
    now.checked_sub(ago).unwrap_or(after).clamp(after, now)
}

/// Once `p` has ended: whether the start its schedule planned from a seen
/// finish held (by the run the server reports), and what the endpoint's
/// estimate has learnt from it, for the jobs still waiting.
fn check_planned_start(http: &Http, p: &Pending, run: Option<f64>) {
    let Some(seen) = &p.finishes else {
        return;
    };
    let scale = p.tracker.schedule().policy().time_scale();
    let run = run.and_then(|s| Duration::try_from_secs_f64(s * scale).ok());
    let ended_by = p.finished_by.unwrap_or_else(Instant::now);
    if let Some(refuted) = p.tracker.schedule().start_refuted(ended_by, run) {
        seen.checked(refuted);
    }
    if let Some(endpoint) = p.job.endpoint() {
        seen.learnt(http.waits().estimates.get(endpoint.as_str()));
    }
}

#[cfg(test)]
mod tests;
