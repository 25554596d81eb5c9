//! Waiting for many jobs at once, with few requests.
//!
//! Polling each of N jobs costs N requests per round. A [`JobSet`] follows
//! each job with the same state machine as a lone [`Job::wait`] (its own
//! [`PollPolicy`] schedule, failure budget and consistency checks), but
//! answers its status looks through the list endpoint, where one request
//! shows up to 100 jobs. A job the list shows finished has its record
//! fetched on its own (the list is read without payloads, so pages stay
//! small however large the inputs and outputs are):
//!
//! 1. A first full sweep (bounded below by the oldest submit, less a minute
//!    for clock skew, and narrowed to one endpoint when every job shares it)
//!    learns the server's `created_at` of every job.
//! 2. The jobs are then cut into chunks of 100 by `created_at`, and each
//!    later sweep reads only the chunks that hold a job whose schedule is
//!    due (with `start`/`end` bounds, one page each). Every job in a chunk
//!    read counts as looked at.
//!
//! So a sweep costs at most one request per hundred jobs, and jobs that
//! finish together share their sweeps. A job the list does not show (a
//! list that lags) falls back to its own polling after a few sweeps, as
//! does every job when fewer than [`JobSetOptions::list_threshold`] remain,
//! since then per-job polls are cheaper. Jobs attached by id (no submit
//! time is known) are polled on their own from the start, so they never
//! make a sweep read the key's whole history. A list that fails is backed
//! off (after its `Retry-After`, on 429) and, after a few failures in a
//! row, given up for per-job polling. Everything runs in the one task that
//! reads the set; per-job polls run at most
//! [`JobSetOptions::max_concurrency`] at a time. Nothing is spawned:
//! 10,000 jobs are 10,000 small entries in a map.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use reka_inference_api::types::RequestItem;
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::http::{Http, deadline_after};
use crate::job::{Job, JobOutput, outcome_of};
use crate::jobs::{Jobs, ListFilter, MAX_PAGE_SIZE, next_offset};
use crate::poll::PollPolicy;
use crate::tracker::{LookKind, Tracker, later};

/// How a [`JobSet`] waits.
#[derive(Debug, Clone)]
pub struct JobSetOptions {
    timeout: Option<Duration>,
    list_threshold: usize,
    max_concurrency: usize,
    misses_before_fallback: u32,
    poll: Option<PollPolicy>,
}

impl Default for JobSetOptions {
    /// The list is used while 4 or more jobs are pending; 8 per-job polls
    /// at most in flight; a job missing from 3 sweeps is polled on its own.
    fn default() -> Self {
        JobSetOptions {
            timeout: None,
            list_threshold: 4,
            max_concurrency: 8,
            misses_before_fallback: 3,
            poll: None,
        }
    }
}

impl JobSetOptions {
    /// The deadline of the whole set (default: the client's wait timeout).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Use the list endpoint while at least `n` jobs are pending
    /// (`usize::MAX` never uses it: per-job polling).
    pub fn list_threshold(mut self, n: usize) -> Self {
        self.list_threshold = n.max(1);
        self
    }

    /// At most `n` requests in flight at once (at least 1).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// A poll policy for this set only.
    pub fn poll_policy(mut self, p: PollPolicy) -> Self {
        self.poll = Some(p);
        self
    }
}

/// What became of one job of a set.
#[derive(Debug)]
#[non_exhaustive]
pub struct JobOutcome {
    /// The job's position in the set, in the order it was added.
    pub index: usize,
    /// The job.
    pub job: Job,
    /// Its output, or why there is none.
    pub result: Result<JobOutput>,
}

/// Many jobs, waited for together.
///
/// ```no_run
/// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
/// use futures::StreamExt;
/// use reka_inference::Endpoint;
///
/// let mut set = client.job_set();
/// for prompt in ["a fox", "a heron", "an owl"] {
///     set.push(client.submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, serde_json::json!({"prompt": prompt})).await?);
/// }
/// let mut done = set.into_stream();
/// while let Some(outcome) = done.next().await {
///     println!("job {} finished: {:?}", outcome.index, outcome.result.map(|c| c.output));
/// }
/// # Ok(()) }
/// ```
pub struct JobSet {
    http: Http,
    jobs: Vec<Job>,
    options: JobSetOptions,
}

impl std::fmt::Debug for JobSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSet")
            .field("jobs", &self.jobs)
            .field("options", &self.options)
            .finish()
    }
}

impl JobSet {
    pub(crate) fn new(http: Http) -> JobSet {
        JobSet {
            http,
            jobs: Vec::new(),
            options: JobSetOptions::default(),
        }
    }

    /// Adds a job.
    pub fn push(&mut self, job: Job) {
        self.jobs.push(job);
    }

    /// Sets the options.
    pub fn with_options(mut self, options: JobSetOptions) -> Self {
        self.options = options;
        self
    }

    /// How many jobs the set holds.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Waits for every job; results in the order the jobs were added.
    pub async fn wait_all(self) -> Vec<Result<JobOutput>> {
        let n = self.jobs.len();
        let mut slots: Vec<Option<Result<JobOutput>>> = (0..n).map(|_| None).collect();
        let mut stream = self.into_stream();
        while let Some(outcome) = stream.next().await {
            if let Some(slot) = slots.get_mut(outcome.index) {
                *slot = Some(outcome.result);
            }
        }
        slots
            .into_iter()
            .map(|s| s.unwrap_or_else(|| Err(Error::InvalidInput("the job set lost a job".into()))))
            .collect()
    }

    /// The outcomes in the order the jobs finish.
    pub fn into_stream(self) -> JobOutcomes {
        let driver = Driver::new(self);
        JobOutcomes {
            inner: Box::pin(futures::stream::unfold(driver, |mut d| async move {
                let outcome = d.next().await?;
                Some((outcome, d))
            })),
        }
    }
}

/// The outcomes of a [`JobSet`], in the order the jobs finish: a named,
/// `Unpin` stream, so it can be kept in a struct and polled without pinning.
pub struct JobOutcomes {
    inner: std::pin::Pin<Box<dyn Stream<Item = JobOutcome> + Send>>,
}

impl Stream for JobOutcomes {
    type Item = JobOutcome;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<JobOutcome>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for JobOutcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobOutcomes").finish_non_exhaustive()
    }
}

/// One job of the set being followed.
struct Pending {
    index: usize,
    job: Job,
    tracker: Tracker,
    /// When its submit was accepted, on the server's clock (roughly).
    submitted: Option<DateTime<Utc>>,
    /// The server's `created_at`, once a sweep has shown the job.
    created: Option<DateTime<Utc>>,
    misses: u32,
    own_polling: bool,
    /// The count of webhook deliveries for the job, when it has a receiver.
    #[cfg(feature = "webhooks")]
    deliveries: Option<tokio::sync::watch::Receiver<u64>>,
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

struct Driver {
    http: Http,
    options: JobSetOptions,
    policy: PollPolicy,
    /// By the job's index in the set: the same id may be pushed twice.
    pending: HashMap<usize, Pending>,
    /// The indices of each id still pending.
    by_id: HashMap<String, Vec<usize>>,
    ready: VecDeque<JobOutcome>,
    deadline: Option<Instant>,
    list_usable: bool,
    /// The list is not read again before this instant (after failures).
    list_paused_until: Option<Instant>,
    list_failures: u32,
    /// The one endpoint every job shares, if they do.
    common_endpoint: Option<Endpoint>,
    /// Every job of the set whose `created_at` is known, in list order.
    placed: Vec<(DateTime<Utc>, String)>,
    chunks: Vec<Chunk>,
    /// "Some delivery arrived", one watch per distinct receiver of the set.
    #[cfg(feature = "webhooks")]
    any_delivery: Vec<tokio::sync::watch::Receiver<u64>>,
}

impl Driver {
    fn new(set: JobSet) -> Driver {
        let waits = set.http.waits();
        let policy = set
            .options
            .poll
            .clone()
            .unwrap_or_else(|| waits.poll.clone());
        let now = Instant::now();
        let wall_now = Utc::now();
        let deadline = deadline_after(now, set.options.timeout.unwrap_or(waits.timeout));
        let mut common: Option<Option<Endpoint>> = None;
        let mut pending = HashMap::with_capacity(set.jobs.len());
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::with_capacity(set.jobs.len());
        #[cfg(feature = "webhooks")]
        let mut receivers: Vec<crate::receiver::WebhookReceiver> = Vec::new();
        for (index, job) in set.jobs.into_iter().enumerate() {
            let endpoint = job.endpoint().cloned();
            common = Some(match common {
                None => endpoint.clone(),
                Some(c) if c == endpoint => c,
                Some(_) => None,
            });
            let submitted_at = job.submitted_at();
            let submitted = submitted_at.and_then(|at| {
                let ago = now.saturating_duration_since(at);
                wall_now.checked_sub_signed(chrono::Duration::from_std(ago).ok()?)
            });
            let tracker = Tracker::new(
                set.http.clone(),
                job.id().to_owned(),
                endpoint,
                submitted_at,
                policy.clone(),
                deadline,
                false,
            )
            .without_record_looks_while_running();
            by_id.entry(job.id().to_owned()).or_default().push(index);
            // A job with a webhook parks on its delivery and is looked at on
            // its own (confirming fetch, safety net), never through sweeps.
            #[cfg(feature = "webhooks")]
            let (tracker, deliveries) = match job.receiver() {
                Some(r) => {
                    if !receivers
                        .iter()
                        .any(|known: &crate::receiver::WebhookReceiver| known.same_as(r))
                    {
                        receivers.push(r.clone());
                    }
                    let mut deliveries = r.deliveries(job.id());
                    let mut tracker = tracker.with_safety_net();
                    if *deliveries.borrow_and_update() > 0 {
                        tracker.delivery_hint(now);
                    }
                    (tracker, Some(deliveries))
                }
                None => (tracker, None),
            };
            #[cfg(feature = "webhooks")]
            let webhook = deliveries.is_some();
            #[cfg(not(feature = "webhooks"))]
            let webhook = false;
            pending.insert(
                index,
                Pending {
                    index,
                    job,
                    tracker,
                    submitted,
                    created: None,
                    misses: 0,
                    // An attached job's age is unknown: a sweep for it would
                    // have no lower bound and read the key's whole history.
                    own_polling: submitted.is_none() || webhook,
                    #[cfg(feature = "webhooks")]
                    deliveries,
                },
            );
        }
        Driver {
            http: set.http,
            options: set.options,
            policy,
            pending,
            by_id,
            ready: VecDeque::new(),
            deadline,
            list_usable: true,
            list_paused_until: None,
            list_failures: 0,
            common_endpoint: common.flatten(),
            placed: Vec::new(),
            chunks: Vec::new(),
            #[cfg(feature = "webhooks")]
            any_delivery: receivers.iter().map(|r| r.any_deliveries()).collect(),
        }
    }

    /// Sleeps until `at`, or until a webhook delivery arrives for the set;
    /// then hints every job whose own delivery count moved.
    async fn sleep_until(&mut self, at: Instant) {
        #[cfg(feature = "webhooks")]
        if !self.any_delivery.is_empty() {
            let changed = futures::future::select_all(
                self.any_delivery.iter_mut().map(|w| Box::pin(w.changed())),
            );
            let gone = tokio::select! {
                () = tokio::time::sleep_until(at) => None,
                (result, index, _) = changed => result.is_err().then_some(index),
            };
            if let Some(index) = gone {
                // That receiver is gone: its jobs rely on the safety net.
                self.any_delivery.remove(index);
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
        tokio::time::sleep_until(at).await;
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

    async fn next(&mut self) -> Option<JobOutcome> {
        loop {
            if let Some(outcome) = self.ready.pop_front() {
                return Some(outcome);
            }
            if self.pending.is_empty() {
                return None;
            }
            let now = Instant::now();
            self.collect_finished(now);
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
                    Some(match list_pause {
                        Some(t) if by_list => at.max(t),
                        _ => at,
                    })
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

    /// Moves finished jobs (and, at the deadline, every job) to `ready`.
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
        if let Some(e) = &self.common_endpoint {
            filter = filter.endpoint(e.clone());
        }
        filter
    }

    /// Looks at every listed job due before `horizon`: a full sweep while
    /// some job's `created_at` is unknown, else the chunks holding due jobs.
    async fn sweep(&mut self, horizon: Instant) {
        let unplaced = self.listed().any(|p| p.created.is_none());
        let ranges: Vec<CreatedRange> = if unplaced {
            let oldest = self.listed().filter_map(|p| p.submitted).min();
            vec![(oldest.map(|t| t - chrono::Duration::seconds(60)), None)]
        } else {
            self.chunks
                .iter()
                .filter(|c| {
                    c.ids.iter().any(|id| {
                        self.by_id.get(id).is_some_and(|indices| {
                            indices.iter().any(|i| {
                                self.pending
                                    .get(i)
                                    .is_some_and(|p| p.due_for_sweep(horizon))
                            })
                        })
                    })
                })
                .map(|c| (Some(c.start), c.end))
                .collect()
        };
        let mut looked: HashSet<String> = HashSet::new();
        let mut complete = true;
        for (start, end) in ranges {
            let mut filter = self.base_filter();
            filter.start = start;
            filter.end = end;
            if let Err(e) = self.read_range(&filter, &mut looked).await {
                self.list_failed(e);
                complete = false;
                break;
            }
        }
        if complete {
            self.list_failures = 0;
            self.list_paused_until = None;
            self.count_misses(&looked, unplaced);
        }
        if unplaced {
            self.rebuild_chunks();
        }
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

    /// Reads every page of one range.
    async fn read_range(
        &mut self,
        filter: &ListFilter,
        looked: &mut HashSet<String>,
    ) -> Result<()> {
        let requests = Jobs::new(self.http.clone());
        let mut offset = 0u64;
        loop {
            let page = requests.page_until(filter, offset, self.deadline).await?;
            let next = next_offset(offset, &page)?;
            let now = Instant::now();
            for item in page.items {
                self.observe_item(item, now, looked);
            }
            match next {
                Some(n) => offset = n,
                None => return Ok(()),
            }
        }
    }

    fn observe_item(&mut self, item: RequestItem, now: Instant, looked: &mut HashSet<String>) {
        let Some(indices) = self.by_id.get(&item.request_id) else {
            return;
        };
        let mut placed = false;
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
                placed |= item.created_at.is_some();
            }
            // A job whose record is wanted is looked at on its own.
            if p.next_look().is_some_and(|(_, k)| k == LookKind::Status) {
                p.tracker.observe_item(item.clone(), now);
            }
        }
        if placed && let Some(c) = item.created_at {
            self.placed.push((c, item.request_id));
        }
    }

    /// Jobs a sweep should have shown but did not: after a few misses they
    /// are polled on their own.
    fn count_misses(&mut self, looked: &HashSet<String>, full: bool) {
        let in_range: HashSet<String> = if full {
            HashSet::new()
        } else {
            self.chunks
                .iter()
                .filter(|c| c.ids.iter().any(|id| looked.contains(id)))
                .flat_map(|c| c.ids.iter().cloned())
                .collect()
        };
        let limit = self.options.misses_before_fallback;
        let again = later(Instant::now(), self.policy.first_interval());
        for p in self.pending.values_mut() {
            let id = p.tracker.id();
            if p.own_polling || looked.contains(id) || !(full || in_range.contains(id)) {
                continue;
            }
            p.misses += 1;
            if p.misses > limit {
                tracing::debug!(request_id = %id, "not in the list; polling it on its own");
                p.own_polling = true;
            } else {
                // Not shown yet (a list that lags): the next sweep, not this one.
                p.tracker.postpone(again);
            }
        }
    }

    /// Cuts the jobs into `created_at` ranges of about 100, on boundaries
    /// where the time strictly increases (`start` is inclusive, `end`
    /// exclusive, so a boundary inside equal times would split them).
    fn rebuild_chunks(&mut self) {
        self.placed.sort();
        self.placed.dedup();
        let size = MAX_PAGE_SIZE as usize;
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut last_created = None;
        for (created, id) in &self.placed {
            match chunks.last_mut() {
                Some(last) if last.ids.len() < size || last_created == Some(*created) => {
                    last.ids.push(id.clone());
                }
                _ => chunks.push(Chunk {
                    start: *created,
                    end: None,
                    ids: vec![id.clone()],
                }),
            }
            last_created = Some(*created);
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
        let deadline = self.deadline;
        let jobs: Vec<(usize, Job)> = due
            .into_iter()
            .filter_map(|(i, _)| Some((i, self.pending.get(&i)?.job.clone())))
            .collect();
        let answers: Vec<(usize, Result<reka_inference_api::types::ResultResponse>)> =
            futures::stream::iter(jobs)
                .map(|(i, job)| async move { (i, job.result_until(deadline).await) })
                .buffer_unordered(self.options.max_concurrency)
                .collect()
                .await;
        let now = Instant::now();
        for (index, answer) in answers {
            let Some(p) = self.pending.get_mut(&index) else {
                continue;
            };
            match answer {
                Ok(record) => p.tracker.observe_record(record, now),
                Err(e) => p.tracker.observe_failure(e, now),
            }
        }
    }
}
