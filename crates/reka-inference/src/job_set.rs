//! Waiting for many jobs at once, with few requests.
//!
//! Polling each of N jobs costs N requests per round. While several jobs
//! are in flight, a [`JobSet`] instead reads the list endpoint, which
//! answers for up to 100 requests per call, with `expand=payloads` so that
//! a finished job's output comes in the same page: one sweep of
//! `ceil(N / 100)` requests learns the state of every job. The sweep is
//! bounded below by the oldest pending submit (`start`, less a minute for
//! clock skew) and narrowed to one endpoint when every job shares it.
//!
//! A job the list does not show (an attached job older than the window, a
//! server whose list lags) falls back to its own status polling after a few
//! sweeps, as does every job when only a few remain, since then per-job
//! polls are cheaper. Everything runs in the one task that reads the set;
//! per-job polls run at most [`JobSetOptions::max_concurrency`] at a time.
//! Nothing is spawned, so 10,000 jobs are 10,000 small entries in a map,
//! not 10,000 tasks.

use std::collections::{HashMap, VecDeque};
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
use crate::requests::ListFilter;

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
    schedule: Schedule,
    next_at: Instant,
    last_status: Option<RequestStatus>,
    misses: u32,
    own_polling: bool,
}

struct Driver {
    client: Client,
    options: JobSetOptions,
    policy: PollPolicy,
    pending: HashMap<String, Pending>,
    ready: VecDeque<JobOutcome>,
    deadline: Instant,
    /// When to sweep the list next.
    next_sweep: Instant,
    sweep_gap: Duration,
    list_usable: bool,
    /// The one endpoint every job shares, if they do.
    common_endpoint: Option<Endpoint>,
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
                    schedule,
                    next_at,
                    last_status: None,
                    misses: 0,
                    own_polling: false,
                },
            );
        }
        let first_gap = policy.initial_interval();
        Driver {
            client: set.client,
            options: set.options,
            policy,
            pending,
            ready: VecDeque::new(),
            deadline,
            next_sweep: now + first_gap,
            sweep_gap: first_gap,
            list_usable: true,
            common_endpoint: common.flatten(),
        }
    }

    fn use_list(&self) -> bool {
        self.list_usable
            && self.pending.values().filter(|p| !p.own_polling).count()
                >= self.options.list_threshold
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
            if sweeping && now >= self.next_sweep {
                self.sweep().await;
                continue;
            }
            let due: Vec<String> = self
                .pending
                .iter()
                .filter(|(_, p)| (p.own_polling || !sweeping) && p.next_at <= now)
                .map(|(id, _)| id.clone())
                .collect();
            if !due.is_empty() {
                self.poll_each(due).await;
                continue;
            }
            let mut wake = self.deadline;
            if sweeping {
                wake = wake.min(self.next_sweep);
            }
            for p in self.pending.values() {
                if p.own_polling || !sweeping {
                    wake = wake.min(p.next_at);
                }
            }
            tokio::time::sleep_until(wake).await;
        }
    }

    fn expire(&mut self) {
        let mut left: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        left.sort_by_key(|p| p.index);
        for p in left {
            let result = Err(Error::Timeout {
                request_id: p.job.id().to_owned(),
                last_status: p.last_status,
                elapsed: self.policy_elapsed(),
                cancel_sent: false,
            });
            self.ready.push_back(JobOutcome {
                index: p.index,
                job: p.job,
                result,
            });
        }
    }

    fn policy_elapsed(&self) -> Duration {
        let total = self
            .options
            .timeout
            .unwrap_or(self.client.inner.wait_timeout);
        total.saturating_sub(self.deadline.saturating_duration_since(Instant::now()))
    }

    /// One pass over the list, newest first, until every pending job has
    /// been seen or the pages run out.
    async fn sweep(&mut self) {
        let oldest = self
            .pending
            .values()
            .map(|p| p.submitted)
            .try_fold(None::<DateTime<Utc>>, |acc, s| {
                let s = s?; // an attached job: no lower bound
                Some(Some(acc.map_or(s, |a| a.min(s))))
            })
            .flatten();
        let mut filter = ListFilter::default().payloads(true).page_size(100);
        if let Some(t) = oldest {
            filter = filter.start(t - chrono::Duration::seconds(60));
        }
        if let Some(e) = &self.common_endpoint {
            filter = filter.endpoint(e.clone());
        }
        let requests = self.client.requests();
        let mut unseen: usize = self.pending.values().filter(|p| !p.own_polling).count();
        let mut offset = 0u64;
        let mut finished_any = false;
        let mut seen = std::collections::HashSet::new();
        let mut complete = true;
        while unseen > 0 {
            let page = match requests
                .page_until(&filter, offset, Some(self.deadline))
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
                    complete = false;
                    break;
                }
            };
            let n = page.items.len() as u64;
            for item in page.items {
                let Some(p) = self.pending.get_mut(&item.request_id) else {
                    continue;
                };
                if p.own_polling {
                    continue;
                }
                unseen = unseen.saturating_sub(1);
                p.misses = 0;
                seen.insert(item.request_id.clone());
                p.last_status = Some(item.status.clone());
                if item.status.is_terminal() == Some(true) {
                    finished_any = true;
                    self.resolve_from_item(item);
                }
            }
            match page.next_offset {
                Some(next) if n > 0 && page.has_more => offset = next,
                None if page.has_more && n > 0 => offset += n,
                _ => break,
            }
        }
        // Jobs the sweep did not show fall back to their own polling after
        // a few misses.
        let limit = self.options.misses_before_fallback;
        let now = Instant::now();
        for (id, p) in self.pending.iter_mut() {
            if complete && !p.own_polling && !seen.contains(id) {
                p.misses += 1;
                if p.misses > limit {
                    p.own_polling = true;
                    p.next_at = now;
                }
            }
        }
        // Reset the gap when something finished (others are likely close),
        // else back off.
        self.sweep_gap = if finished_any {
            self.policy.initial_interval()
        } else {
            self.sweep_gap
                .mul_f64(2.0)
                .min(self.policy.initial_interval() * 16)
        };
        self.next_sweep = Instant::now() + self.sweep_gap;
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
            RequestStatus::Completed => Ok(Completion {
                request_id: record.request_id,
                output: record
                    .output
                    .map(serde_json::Value::Object)
                    .unwrap_or(serde_json::Value::Null),
                metrics: record.metrics,
            }),
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
                    let phase = match &record.status {
                        RequestStatus::InQueue => Phase::Queued { position: None },
                        RequestStatus::Unknown(_) => Phase::Unknown,
                        _ => Phase::Running,
                    };
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
