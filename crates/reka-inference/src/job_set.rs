//! Waiting for many jobs at once, with few requests.
//!
//! Polling each of N jobs costs N requests per round. A [`JobSet`] keeps
//! each job's own [`PollPolicy`] schedule (so each job is looked at exactly
//! when a lone `wait` would look at it) but answers those looks through the
//! list endpoint, where one request shows up to 100 jobs, with
//! `expand=payloads` so that a finished job's output comes in the same page:
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
//! finish together share their sweeps. A job the list does not show (an
//! attached job older than the window, a list that lags) falls back to its
//! own polling after a few sweeps, as does every job when fewer than
//! [`JobSetOptions::list_threshold`] remain, since then per-job polls are
//! cheaper. Everything runs in the one task that reads the set; per-job
//! polls run at most [`JobSetOptions::max_concurrency`] at a time. Nothing
//! is spawned: 10,000 jobs are 10,000 small entries in a map.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use reka_inference_api::RequestStatus;
use reka_inference_api::types::{RequestItem, ResultResponse};
use tokio::time::Instant;

use crate::client::Client;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::job::{Completion, Job};
use crate::poll::{Phase, PollPolicy, Schedule};
use crate::requests::{ListFilter, MAX_PAGE_SIZE};

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
pub struct JobOutcome {
    /// The job's position in the set, in the order it was added.
    pub index: usize,
    /// The job.
    pub job: Job,
    /// Its output, or why there is none.
    pub result: Result<Completion>,
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
/// let mut done = std::pin::pin!(set.into_stream());
/// while let Some(outcome) = done.next().await {
///     println!("job {} finished: {:?}", outcome.index, outcome.result.map(|c| c.output));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct JobSet {
    client: Client,
    jobs: Vec<Job>,
    options: JobSetOptions,
}

impl Client {
    /// An empty set of jobs to wait for together.
    pub fn job_set(&self) -> JobSet {
        JobSet {
            client: self.clone(),
            jobs: Vec::new(),
            options: JobSetOptions::default(),
        }
    }
}

impl JobSet {
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
    pub async fn wait_all(self) -> Vec<Result<Completion>> {
        let n = self.jobs.len();
        let mut slots: Vec<Option<Result<Completion>>> = (0..n).map(|_| None).collect();
        let mut stream = std::pin::pin!(self.into_stream());
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
    pub fn into_stream(self) -> impl Stream<Item = JobOutcome> + Send + 'static {
        let driver = Driver::new(self);
        futures::stream::unfold(driver, |mut d| async move {
            let outcome = d.next().await?;
            Some((outcome, d))
        })
    }
}

struct Pending {
    index: usize,
    job: Job,
    submitted: Option<DateTime<Utc>>,
    /// The server's `created_at`, once a sweep has shown the job.
    created: Option<DateTime<Utc>>,
    schedule: Schedule,
    next_at: Instant,
    last_status: Option<RequestStatus>,
    misses: u32,
    own_polling: bool,
}

/// A `created_at` range to list: inclusive start, exclusive end.
type CreatedRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A `created_at` range of the list holding about 100 of the set's jobs.
struct Chunk {
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    ids: Vec<String>,
}

struct Driver {
    client: Client,
    options: JobSetOptions,
    policy: PollPolicy,
    pending: HashMap<String, Pending>,
    ready: VecDeque<JobOutcome>,
    began: Instant,
    deadline: Instant,
    list_usable: bool,
    /// The one endpoint every job shares, if they do.
    common_endpoint: Option<Endpoint>,
    /// Every job of the set whose `created_at` is known, in list order.
    placed: Vec<(DateTime<Utc>, String)>,
    chunks: Vec<Chunk>,
}

impl Driver {
    fn new(set: JobSet) -> Driver {
        let inner = &set.client.inner;
        let policy = set
            .options
            .poll
            .clone()
            .unwrap_or_else(|| inner.poll.clone());
        let now = Instant::now();
        let wall_now = Utc::now();
        let deadline = now + set.options.timeout.unwrap_or(inner.wait_timeout);
        let mut common: Option<Option<Endpoint>> = None;
        let mut pending = HashMap::with_capacity(set.jobs.len());
        for (index, job) in set.jobs.into_iter().enumerate() {
            let endpoint = job.endpoint().cloned();
            common = Some(match common {
                None => endpoint.clone(),
                Some(c) if c == endpoint => c,
                Some(_) => None,
            });
            let submitted_at = job.submitted_at();
            let submitted = submitted_at.map(|at| {
                let ago = now.saturating_duration_since(at);
                wall_now - chrono::Duration::from_std(ago).unwrap_or_default()
            });
            let estimate = endpoint
                .as_ref()
                .filter(|_| policy.learns())
                .and_then(|e| inner.estimates.get(e.as_str()));
            let schedule = Schedule::new(policy.clone(), estimate, submitted_at.unwrap_or(now));
            let next_at = submitted_at.map_or(now, |at| at + schedule.first_delay());
            let id = job.id().to_owned();
            pending.insert(
                id,
                Pending {
                    index,
                    job,
                    submitted,
                    created: None,
                    schedule,
                    next_at,
                    last_status: None,
                    misses: 0,
                    own_polling: false,
                },
            );
        }
        Driver {
            client: set.client,
            options: set.options,
            policy,
            pending,
            ready: VecDeque::new(),
            began: now,
            deadline,
            list_usable: true,
            common_endpoint: common.flatten(),
            placed: Vec::new(),
            chunks: Vec::new(),
        }
    }

    fn listed(&self) -> impl Iterator<Item = &Pending> {
        self.pending.values().filter(|p| !p.own_polling)
    }

    fn use_list(&self) -> bool {
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
            if now >= self.deadline {
                self.expire();
                continue;
            }
            let sweeping = self.use_list();
            let by_list = |p: &Pending| sweeping && !p.own_polling;
            // Jobs due a little later join this round: fewer, fuller sweeps.
            let horizon = now + self.policy.initial_interval() / 2;
            if sweeping && self.listed().any(|p| p.next_at <= now) {
                self.sweep(horizon).await;
                continue;
            }
            let due: Vec<String> = self
                .pending
                .iter()
                .filter(|(_, p)| !by_list(p) && p.next_at <= now)
                .map(|(id, _)| id.clone())
                .collect();
            if !due.is_empty() {
                self.poll_each(due).await;
                continue;
            }
            let wake = self
                .pending
                .values()
                .map(|p| p.next_at)
                .fold(self.deadline, Instant::min);
            tokio::time::sleep_until(wake).await;
        }
    }

    fn expire(&mut self) {
        let mut left: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        left.sort_by_key(|p| p.index);
        let elapsed = self.began.elapsed();
        for p in left {
            let result = Err(Error::Timeout {
                request_id: p.job.id().to_owned(),
                last_status: p.last_status,
                elapsed,
                cancel_sent: false,
            });
            self.ready.push_back(JobOutcome {
                index: p.index,
                job: p.job,
                result,
            });
        }
    }

    fn base_filter(&self) -> ListFilter {
        let mut filter = ListFilter::default()
            .payloads(true)
            .page_size(MAX_PAGE_SIZE);
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
            // No lower bound when an attached job's submit time is unknown.
            let oldest = self
                .listed()
                .map(|p| p.submitted)
                .try_fold(None::<DateTime<Utc>>, |acc, s| {
                    let s = s?;
                    Some(Some(acc.map_or(s, |a| a.min(s))))
                })
                .flatten();
            vec![(oldest.map(|t| t - chrono::Duration::seconds(60)), None)]
        } else {
            self.chunks
                .iter()
                .filter(|c| {
                    c.ids.iter().any(|id| {
                        self.pending
                            .get(id)
                            .is_some_and(|p| !p.own_polling && p.next_at <= horizon)
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
            if !self.read_range(&filter, &mut looked).await {
                complete = false;
                break;
            }
        }
        if complete {
            self.count_misses(&looked, unplaced);
        }
        if unplaced {
            self.rebuild_chunks();
        }
    }

    /// Reads every page of one range; false when a page failed.
    async fn read_range(&mut self, filter: &ListFilter, looked: &mut HashSet<String>) -> bool {
        let requests = self.client.requests();
        let mut offset = 0u64;
        loop {
            let page = match requests
                .page_until(filter, offset, Some(self.deadline))
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    // A list the server will not serve (permissions, an
                    // older API): poll jobs one by one from now on.
                    if matches!(e.status().map(|s| s.as_u16()), Some(400..=499))
                        && !e.is_retryable()
                    {
                        tracing::warn!(error = %e, "list endpoint unusable; polling jobs one by one");
                        self.list_usable = false;
                    }
                    return false;
                }
            };
            let n = page.items.len() as u64;
            let now = Instant::now();
            for item in page.items {
                self.observe_item(item, now, looked);
            }
            match page.next_offset {
                Some(next) if n > 0 && page.has_more => offset = next,
                None if page.has_more && n > 0 => offset += n,
                _ => return true,
            }
        }
    }

    fn observe_item(&mut self, item: RequestItem, now: Instant, looked: &mut HashSet<String>) {
        let Some(p) = self.pending.get_mut(&item.request_id) else {
            return;
        };
        if p.own_polling {
            return;
        }
        looked.insert(item.request_id.clone());
        p.misses = 0;
        if p.created.is_none() {
            p.created = item.created_at;
            if let Some(c) = item.created_at {
                self.placed.push((c, item.request_id.clone()));
            }
        }
        if item.status.is_terminal() == Some(true) {
            self.resolve_from_item(item);
            return;
        }
        let phase = Phase::of(&item.status);
        p.next_at = now + p.schedule.observe(phase, now);
        p.last_status = Some(item.status);
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
        let now = Instant::now();
        for (id, p) in self.pending.iter_mut() {
            if p.own_polling || looked.contains(id) || !(full || in_range.contains(id)) {
                continue;
            }
            p.misses += 1;
            if p.misses > limit {
                tracing::debug!(request_id = %id, "not in the list; polling it on its own");
                p.own_polling = true;
                p.next_at = now;
            } else if full {
                // Look again soon rather than at its own next poll.
                p.next_at = p.next_at.min(now + self.policy.initial_interval());
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

    fn resolve_from_item(&mut self, item: RequestItem) {
        let Some(p) = self.pending.remove(&item.request_id) else {
            return;
        };
        let record = ResultResponse {
            request_id: item.request_id,
            status: item.status,
            output: item.output,
            error: item.error,
            metrics: item.metrics,
        };
        self.resolve(p, record);
    }

    fn resolve(&mut self, p: Pending, record: ResultResponse) {
        if let (Some(endpoint), Some(t)) = (
            p.job.endpoint(),
            record.metrics.as_ref().and_then(|m| m.inference_time),
        ) && self.policy.learns()
        {
            let seconds = t * self.policy.time_scale();
            self.client
                .inner
                .estimates
                .record(endpoint.as_str(), seconds);
        }
        let result = match record.status {
            RequestStatus::Completed => Ok(Completion::from_record(record)),
            RequestStatus::Cancelled => Err(Error::JobCancelled {
                request_id: record.request_id,
            }),
            _ => Err(Error::JobFailed {
                request_id: record.request_id.clone(),
                error: record.error.clone(),
                record: Box::new(record),
            }),
        };
        self.ready.push_back(JobOutcome {
            index: p.index,
            job: p.job,
            result,
        });
    }

    /// Polls each due job once (its record: status and output together),
    /// at most `max_concurrency` at a time.
    async fn poll_each(&mut self, due: Vec<String>) {
        let client = self.client.clone();
        let deadline = self.deadline;
        let answers: Vec<(String, Result<ResultResponse>)> = futures::stream::iter(due)
            .map(|id| {
                let client = client.clone();
                async move {
                    let r = client
                        .call(
                            Some(deadline),
                            client.api().get_result().request_id(&id).send(),
                        )
                        .await;
                    (id, r)
                }
            })
            .buffer_unordered(self.options.max_concurrency)
            .collect()
            .await;
        for (id, answer) in answers {
            let Some(mut p) = self.pending.remove(&id) else {
                continue;
            };
            match answer {
                Ok(record) if record.status.is_terminal() == Some(true) => self.resolve(p, record),
                Ok(record) => {
                    let phase = Phase::of(&record.status);
                    let now = Instant::now();
                    p.next_at = now + p.schedule.observe(phase, now);
                    p.last_status = Some(record.status);
                    self.pending.insert(id, p);
                }
                Err(e) => self.ready.push_back(JobOutcome {
                    index: p.index,
                    job: p.job,
                    result: Err(e),
                }),
            }
        }
    }
}
