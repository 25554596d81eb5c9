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
            if self.use_list(now) && self.listed().any(|p| p.due_for_sweep(now)) {
                self.sweep(horizon).await;
                continue;
            }
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

    fn base_filter(&self) -> ListFilter {
        let mut filter = ListFilter::default().page_size(MAX_PAGE_SIZE);
        if let Some(Some(e)) = &self.common_endpoint {
            filter = filter.endpoint(e.clone());
        }
        filter
    }

    /// Looks at every listed job due before `horizon`: first the jobs not
    /// placed yet (from the oldest of their submits, until all are seen),
    /// then the chunks holding due jobs that placing did not show.
    async fn sweep(&mut self, horizon: Instant) {
        let mut looked: HashSet<String> = HashSet::new();
        let unplaced: HashSet<String> = self
            .listed()
            .filter(|p| p.created.is_none())
            .map(|p| p.tracker.id().to_owned())
            .collect();
        let mut placing_read_whole = false;
        if !unplaced.is_empty() {
            let oldest = self
                .listed()
                .filter(|p| p.created.is_none())
                .filter_map(|p| p.submitted)
                .min();
            let mut filter = self.base_filter();
            filter.start = oldest.and_then(|t| t.checked_sub_signed(CLOCK_SKEW));
            match self.read_range(&filter, &mut looked, Some(&unplaced)).await {
                Ok(whole) => placing_read_whole = whole,
                Err(e) => {
                    self.list_failed(e);
                    return;
                }
            }
            self.rebuild_chunks();
        }
        let ranges: Vec<CreatedRange> = self
            .chunks
            .iter()
            .filter(|c| {
                c.ids.iter().any(|id| {
                    !looked.contains(id)
                        && self.by_id.get(id).is_some_and(|indices| {
                            indices.iter().any(|i| {
                                self.pending
                                    .get(i)
                                    .is_some_and(|p| p.due_for_sweep(horizon))
                            })
                        })
                })
            })
            .map(|c| (Some(c.start), c.end))
            .collect();
        let mut read: Vec<CreatedRange> = Vec::new();
        for (start, end) in ranges {
            let mut filter = self.base_filter();
            filter.start = start;
            filter.end = end;
            if let Err(e) = self.read_range(&filter, &mut looked, None).await {
                self.list_failed(e);
                return;
            }
            read.push((start, end));
        }
        self.list_failures = 0;
        self.list_paused_until = None;
        self.count_misses(&looked, &unplaced, placing_read_whole, &read);
    }

    /// A list read failed: pause the list (longer each time, or for the
    /// server's `Retry-After`), and after a few failures, or at once when
    /// the server will not serve the list at all, poll jobs one by one.
    fn list_failed(&mut self, e: Error) {
        self.list_failures += 1;
        let refused =
            matches!(e.status().map(|s| s.as_u16()), Some(400..=499)) && !e.is_retryable();
        if refused || self.list_failures >= MAX_LIST_FAILURES {
            tracing::warn!(error = %e, "list endpoint unusable; polling jobs one by one");
            self.list_usable = false;
            return;
        }
        let backoff = self
            .policy
            .first_interval()
            .checked_mul(1u32 << self.list_failures.min(16))
            .unwrap_or(MAX_LIST_BACKOFF)
            .min(MAX_LIST_BACKOFF);
        let pause = match &e {
            Error::RateLimited {
                retry_after: Some(r),
                ..
            } => (*r).max(backoff),
            _ => backoff,
        };
        if pause > MAX_LIST_BACKOFF {
            // "Come back tomorrow": the jobs will not wait that long.
            tracing::warn!(error = %e, "list rate-limited for long; polling jobs one by one");
            self.list_usable = false;
            return;
        }
        tracing::debug!(error = %e, pause_ms = pause.as_millis() as u64, "list failed; pausing it");
        self.list_paused_until = Some(later(Instant::now(), pause));
    }

    /// Reads the pages of one range; with `until_seen`, stops at the first
    /// page after which every one of those ids has been seen. Whether the
    /// range was read to its end.
    async fn read_range(
        &mut self,
        filter: &ListFilter,
        looked: &mut HashSet<String>,
        until_seen: Option<&HashSet<String>>,
    ) -> Result<bool> {
        let requests = Jobs::new(self.http.clone());
        let mut offset = 0u64;
        loop {
            let page = requests.page_until(filter, offset, self.deadline).await?;
            let next = next_offset(offset, &page)?;
            let now = Instant::now();
            for item in page.items {
                self.observe_item(item, now, looked);
            }
            if until_seen.is_some_and(|ids| ids.iter().all(|id| looked.contains(id))) {
                return Ok(next.is_none());
            }
            match next {
                Some(n) => offset = n,
                None => return Ok(true),
            }
        }
    }

    fn observe_item(&mut self, item: RequestItem, now: Instant, looked: &mut HashSet<String>) {
        let Some(indices) = self.by_id.get(&item.request_id) else {
            return;
        };
        for index in indices {
            let Some(p) = self.pending.get_mut(index) else {
                continue;
            };
            if p.own_polling {
                continue;
            }
            looked.insert(item.request_id.clone());
            p.misses = 0;
            if p.created.is_none() {
                p.created = item.created_at;
            }
            // A job whose record is wanted is looked at on its own.
            if p.next_look().is_some_and(|(_, k)| k == LookKind::Status) {
                if frees_a_worker(&item.status) {
                    note_finish(p, item.completed_at, now);
                }
                p.tracker.observe_item(item.clone(), now);
            }
        }
    }

    /// Jobs a sweep should have shown but did not: after a few misses they
    /// are polled on their own. A job should have been shown when it was
    /// being placed and the placing read went to its end, or when its
    /// chunk was read.
    fn count_misses(
        &mut self,
        looked: &HashSet<String>,
        unplaced: &HashSet<String>,
        placing_read_whole: bool,
        chunks_read: &[CreatedRange],
    ) {
        let in_chunks_read: HashSet<&str> = self
            .chunks
            .iter()
            .filter(|c| chunks_read.contains(&(Some(c.start), c.end)))
            .flat_map(|c| c.ids.iter().map(String::as_str))
            .collect();
        let limit = self.options.misses_before_fallback;
        let again = later(Instant::now(), self.policy.first_interval());
        let mut missed: Vec<usize> = Vec::new();
        for p in self.pending.values() {
            let id = p.tracker.id();
            if p.own_polling || looked.contains(id) {
                continue;
            }
            let expected =
                (placing_read_whole && unplaced.contains(id)) || in_chunks_read.contains(id);
            if expected {
                missed.push(p.index);
            }
        }
        for index in missed {
            let Some(p) = self.pending.get_mut(&index) else {
                continue;
            };
            p.misses += 1;
            if p.misses > limit {
                tracing::debug!(request_id = %p.tracker.id(), "not in the list; polling it on its own");
                p.own_polling = true;
            } else {
                // Not shown yet (a list that lags): the next sweep, not this one.
                p.tracker.postpone(again);
            }
        }
    }

    /// Cuts the placed pending jobs into `created_at` ranges of about 100,
    /// on boundaries where the time strictly increases (`start` is
    /// inclusive, `end` exclusive, so a boundary inside equal times would
    /// split them).
    fn rebuild_chunks(&mut self) {
        let mut placed: Vec<(DateTime<Utc>, &str)> = self
            .listed()
            .filter_map(|p| Some((p.created?, p.tracker.id())))
            .collect();
        placed.sort_unstable();
        placed.dedup();
        let size = MAX_PAGE_SIZE as usize;
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut last_created = None;
        for (created, id) in placed {
            match chunks.last_mut() {
                Some(last) if last.ids.len() < size || last_created == Some(created) => {
                    last.ids.push(id.to_owned());
                }
                _ => chunks.push(Chunk {
                    start: created,
                    end: None,
                    ids: vec![id.to_owned()],
                }),
            }
            last_created = Some(created);
        }
        for i in 1..chunks.len() {
            let next_start = chunks[i].start;
            chunks[i - 1].end = Some(next_start);
        }
        self.chunks = chunks;
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
mod tests {
    use super::*;

    fn item(id: &str, status: JobStatus, created: DateTime<Utc>) -> RequestItem {
        RequestItem {
            capability: None,
            completed_at: None,
            created_at: Some(created),
            endpoint_id: None,
            error: None,
            input: None,
            metrics: None,
            model_id: None,
            output: None,
            request_id: id.to_owned(),
            status,
            updated_at: None,
        }
    }

    /// Two jobs of one endpoint in a set: the one ahead is seen finished
    /// by a sweep while the other is queued, so the other's start is
    /// planned there; what the end of that job says of the plan is kept.
    #[test]
    fn a_finish_a_sweep_shows_places_the_start_of_the_job_queued_behind() {
        let client = crate::Client::builder()
            .api_key("k")
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        let mut set = client.job_set();
        let http = set.http.clone();
        let endpoint: Endpoint = "m/text-to-image".parse().unwrap();
        for _ in 0..3 {
            http.waits().estimates.record(endpoint.as_str(), 30.0);
        }
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let ids = [
            "0193f6a2-7c1e-7d2b-9f3a-1b2c3d4e5f60",
            "0193f6a2-7c1e-7d2b-9f3a-1b2c3d4e5f61",
        ];
        for id in ids {
            set.push(Job::new(
                http.clone(),
                id.to_owned(),
                Some(endpoint.clone()),
                Some(t0),
            ));
        }
        let mut driver = Driver::new(set, Arc::new(Inbox::default()));
        let created = Utc::now();
        let mut looked = HashSet::new();
        let (ahead, behind) = (ids[0], ids[1]);
        driver.observe_item(
            item(ahead, JobStatus::InProgress, created),
            t0 + secs(1),
            &mut looked,
        );
        driver.observe_item(
            item(behind, JobStatus::InQueue, created),
            t0 + secs(1),
            &mut looked,
        );
        // The job ahead ended 2 s in (by the server's clock, which runs
        // with this one: `created_at` is the submit).
        let mut done = item(ahead, JobStatus::Completed, created);
        done.completed_at = Some(created + chrono::TimeDelta::seconds(2));
        driver.observe_item(done, t0 + secs(2), &mut looked);
        driver.observe_item(
            item(behind, JobStatus::InProgress, created),
            t0 + secs(3),
            &mut looked,
        );
        let p = driver.pending.get(&1).unwrap();
        let starts = p.tracker.schedule().planned_starts();
        assert_eq!(starts.len(), 1, "{starts:?}");
        // At the server's `completed_at`, kept inside the span between the
        // two sweeps that saw the job ahead running and done.
        let at = starts[0].0;
        assert!(at > t0 + secs(1) && at <= t0 + secs(2), "{:?}", at - t0);
        // Its record says it ran 30 s and was done by 33 s: started at 3 s
        // at the latest, after that finish. Two runs of 32.9 s said it had
        // started before it: plans from finishes stop on this endpoint.
        let seen = driver.finishes.get(&endpoint).unwrap().clone();
        let p = driver.pending.get_mut(&1).unwrap();
        note_finish(p, None, t0 + secs(33));
        check_planned_start(&http, p, Some(30.0));
        assert!(!seen.within((t0 + secs(1), t0 + secs(3))).is_empty());
        assert_eq!(
            seen.estimate(),
            http.waits().estimates.get(endpoint.as_str())
        );
        check_planned_start(&http, p, Some(32.9));
        check_planned_start(&http, p, Some(32.9));
        assert!(seen.within((t0 + secs(1), t0 + secs(3))).is_empty());
    }

    /// A driver following `n` jobs of one endpoint (`job-00000`, ...),
    /// submitted by this process and none placed yet.
    fn driver_with(n: usize) -> Driver {
        let client = crate::Client::builder()
            .api_key("k")
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        let mut set = client.job_set();
        let http = set.http.clone();
        let endpoint: Endpoint = "m/text-to-image".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..n {
            set.push(Job::new(
                http.clone(),
                format!("job-{i:05}"),
                Some(endpoint.clone()),
                Some(t0),
            ));
        }
        Driver::new(set, Arc::new(Inbox::default()))
    }

    /// Places the driver's jobs at `created_at` = `base` + the given
    /// seconds (`None`: not seen by a sweep yet) and cuts its chunks.
    fn place(driver: &mut Driver, base: DateTime<Utc>, created: &[Option<i64>]) {
        for (index, at) in created.iter().enumerate() {
            driver.pending.get_mut(&index).unwrap().created =
                at.map(|s| base + chrono::TimeDelta::seconds(s));
        }
        driver.rebuild_chunks();
    }

    #[test]
    fn placed_jobs_are_cut_into_chunks_of_about_a_page_on_strict_time_boundaries() {
        let base = Utc::now();
        let distinct = |n: i64| (0..n).map(Some).collect::<Vec<_>>();
        // Jobs 95 to 110 share one time: the page's end falls among them.
        let mut straddling = distinct(95);
        straddling.extend(std::iter::repeat_n(Some(95), 16));
        straddling.extend((111..150).map(Some));
        let mut some_unplaced = distinct(10);
        some_unplaced.extend([None, None, None]);
        // (case, each job's created_at in seconds, the jobs in each chunk)
        type Case = (&'static str, Vec<Option<i64>>, Vec<usize>);
        let cases: Vec<Case> = vec![
            ("no job placed", vec![None; 5], vec![]),
            ("less than a page", distinct(5), vec![5]),
            ("exactly a page", distinct(100), vec![100]),
            ("a page and one", distinct(101), vec![100, 1]),
            ("two and a half pages", distinct(250), vec![100, 100, 50]),
            ("equal times across a page's end", straddling, vec![111, 39]),
            ("every job at one time", vec![Some(7); 230], vec![230]),
            ("jobs not placed are left out", some_unplaced, vec![10]),
        ];
        for (case, created, sizes) in cases {
            let mut driver = driver_with(created.len());
            place(&mut driver, base, &created);
            let got: Vec<usize> = driver.chunks.iter().map(|c| c.ids.len()).collect();
            assert_eq!(got, sizes, "{case}");
            // Each chunk ends where the next starts; the last is open.
            for pair in driver.chunks.windows(2) {
                assert!(pair[0].start < pair[1].start, "{case}");
                assert_eq!(pair[0].end, Some(pair[1].start), "{case}");
            }
            if let Some(last) = driver.chunks.last() {
                assert_eq!(last.end, None, "{case}");
            }
            // Every placed job is in exactly one chunk, inside its range.
            let mut seen = HashSet::new();
            for chunk in &driver.chunks {
                for id in &chunk.ids {
                    assert!(seen.insert(id.clone()), "{case}: {id} twice");
                    let index: usize = id["job-".len()..].parse().unwrap();
                    let at = driver.pending[&index].created.unwrap();
                    assert!(at >= chunk.start, "{case}: {id}");
                    assert!(chunk.end.is_none_or(|end| at < end), "{case}: {id}");
                }
            }
            assert_eq!(
                seen.len(),
                created.iter().filter(|c| c.is_some()).count(),
                "{case}"
            );
        }
    }

    #[test]
    fn a_job_a_sweep_should_have_shown_is_counted_missed_then_polled_on_its_own() {
        let base = Utc::now();
        let chunk = (Some(base), None);
        let elsewhere = (Some(base - chrono::TimeDelta::hours(1)), Some(base));
        // (case, placed, shown by the sweep, the placing read went to its
        // end, the ranges read, misses before, already polled on its own)
        // -> (misses after, polled on its own after)
        type Case = (&'static str, bool, bool, bool, Vec<CreatedRange>, u32, bool);
        let cases: Vec<(Case, (u32, bool))> = vec![
            (
                ("shown", true, true, true, vec![chunk], 2, false),
                (2, false),
            ),
            (
                (
                    "its chunk read without it",
                    true,
                    false,
                    false,
                    vec![chunk],
                    0,
                    false,
                ),
                (1, false),
            ),
            (
                (
                    "another chunk read",
                    true,
                    false,
                    false,
                    vec![elsewhere],
                    0,
                    false,
                ),
                (0, false),
            ),
            (
                ("no chunk read", true, false, true, vec![], 1, false),
                (1, false),
            ),
            (
                (
                    "unplaced, the placing read whole",
                    false,
                    false,
                    true,
                    vec![],
                    0,
                    false,
                ),
                (1, false),
            ),
            (
                (
                    "unplaced, the placing cut short",
                    false,
                    false,
                    false,
                    vec![],
                    0,
                    false,
                ),
                (0, false),
            ),
            (
                (
                    "missed once too often",
                    true,
                    false,
                    false,
                    vec![chunk],
                    3,
                    false,
                ),
                (4, true),
            ),
            (
                (
                    "already on its own",
                    true,
                    false,
                    true,
                    vec![chunk],
                    0,
                    true,
                ),
                (0, true),
            ),
        ];
        for ((case, placed, shown, placing_whole, read, before, own), (after, own_after)) in cases {
            let mut driver = driver_with(1);
            place(&mut driver, base, &[placed.then_some(0)]);
            let p = driver.pending.get_mut(&0).unwrap();
            p.misses = before;
            p.own_polling = own;
            let id = p.tracker.id().to_owned();
            let looked: HashSet<String> = shown.then(|| id.clone()).into_iter().collect();
            let unplaced: HashSet<String> = (!placed).then(|| id.clone()).into_iter().collect();
            driver.count_misses(&looked, &unplaced, placing_whole, &read);
            let p = &driver.pending[&0];
            assert_eq!((p.misses, p.own_polling), (after, own_after), "{case}");
        }
    }

    #[test]
    fn a_server_time_lands_on_this_clock_inside_the_span_it_is_known_in() {
        let now = Instant::now();
        let utc_now = Utc::now();
        let span = (now - Duration::from_secs(10), now);
        let secs = chrono::TimeDelta::seconds;
        // The server's clock is 2 s ahead: its "1 s ago" was 3 s ago here.
        let at = on_this_clock(utc_now - secs(1), secs(2), utc_now, span);
        assert_eq!(now - at, Duration::from_secs(3));
        // Times the span rules out are brought back into it.
        assert_eq!(
            on_this_clock(utc_now - secs(60), secs(0), utc_now, span),
            span.0
        );
        assert_eq!(
            on_this_clock(utc_now + secs(60), secs(0), utc_now, span),
            now
        );
        // A hostile server's dates and clock never panic.
        for server_at in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            for ahead in [chrono::TimeDelta::MIN, chrono::TimeDelta::MAX, secs(0)] {
                let at = on_this_clock(server_at, ahead, utc_now, span);
                assert!(at >= span.0 && at <= now);
            }
        }
    }
}
