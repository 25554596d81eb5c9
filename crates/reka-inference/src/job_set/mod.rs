//! Waiting for many jobs at once, with few requests, while more join.
//!
//! Polling each of N jobs costs N requests per round. A [`JobSet`] follows
//! each job with the same state machine as a lone [`Job::wait`] (its own
//! [`PollPolicy`] schedule, failure budget and consistency checks), but
//! answers its status looks through the list endpoint, where one request
//! shows up to 100 jobs. A job the list shows finished has its record
//! fetched on its own (the list is read without payloads, so pages stay
//! small however large the inputs and outputs are):
//!
//! 1. New jobs are placed by a sweep from the oldest unplaced submit (less
//!    a minute for clock skew, narrowed to one endpoint when every job
//!    shares it) that stops as soon as it has seen every one of them: it
//!    learns the server's `created_at` of each. Newly submitted jobs are
//!    the newest, so this is usually the first page or two.
//! 2. The placed jobs are cut into chunks of 100 by `created_at`, and each
//!    later sweep reads only the chunks that hold a job whose schedule is
//!    due (with `start`/`end` bounds, a page each, up to
//!    [`JobSetOptions::max_concurrency`] chunks at a time). Every job in a
//!    chunk read counts as looked at, and plans its next look from it (so
//!    the jobs of a chunk come due together, and share the next sweep).
//! 3. In the same round, the records of the jobs a sweep showed finished
//!    are fetched (with many jobs, some job is always due for the next
//!    sweep: those fetches never wait for a quiet moment).
//!
//! So a sweep costs about one request per hundred jobs due, and jobs that
//! finish together share their sweeps. A job the list does not show (a
//! list that lags) falls back to its own polling after a few sweeps, as
//! does every job when fewer than [`JobSetOptions::list_threshold`] remain,
//! since then per-job polls are cheaper. Jobs attached by id with no known
//! submit time are polled on their own from the start, so they never make
//! a sweep read the key's whole history ([`Job::with_submit_time`] gives
//! them one). A list that fails is backed off (after its `Retry-After`, on
//! 429) and, after a few failures in a row, given up for per-job polling.
//!
//! Jobs of one endpoint followed together also tell each other when they
//! start: a queued job takes the worker that the job ahead of it frees, so
//! when the set sees one of its jobs finish while another of the endpoint
//! waits in the queue, the waiting one plans its looks from that moment
//! rather than from anywhere between two of its own looks; and each job
//! plans with what the endpoint's finished jobs have taught so far, not
//! only with what was known when it joined (unless the set runs more than a
//! few of the endpoint's jobs at once: then the first to end are the short
//! ones, and teach nothing of the rest). (The set checks those starts
//! against the run times the jobs report, and stops planning so on an
//! endpoint it shares with jobs it does not see. A lone [`Job::wait`]
//! plans from its own looks.)
//!
//! The set can grow while it is read: [`JobOutcomes::push`], `extend` and
//! a [`JobSender`] (for other tasks) add jobs to a running set, which is
//! how a long batch keeps one set for all its jobs. Everything runs in the
//! one task that reads the set; per-job polls run at most
//! [`JobSetOptions::max_concurrency`] at a time. Nothing is spawned: 10,000
//! jobs are 10,000 small entries in a map.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::Notify;

use crate::endpoint::IntoEndpoint;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::job::Job;
use crate::poll::PollPolicy;
use crate::submit::SubmitOptions;
use crate::vocab::JobOutput;

mod driver;

use driver::Driver;

/// How a [`JobSet`] waits.
#[derive(Debug, Clone)]
pub struct JobSetOptions {
    timeout: Option<Duration>,
    job_timeout: Option<Duration>,
    list_threshold: usize,
    max_concurrency: usize,
    misses_before_fallback: u32,
    poll: Option<PollPolicy>,
}

impl Default for JobSetOptions {
    /// Each job waited for up to the client's wait timeout from when it
    /// joined; the list used while 4 or more jobs are pending; 8 per-job
    /// polls at most in flight; a job missing from 3 sweeps polled on its
    /// own.
    fn default() -> Self {
        JobSetOptions {
            timeout: None,
            job_timeout: None,
            list_threshold: 4,
            max_concurrency: 8,
            misses_before_fallback: 3,
            poll: None,
        }
    }
}

impl JobSetOptions {
    /// A deadline for the whole set, from [`JobSet::into_stream`]: every
    /// job still pending then ends with [`Error::Timeout`].
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// How long each job is waited for from when it joins the set. The
    /// default is the client's
    /// [`wait_timeout`](crate::ClientBuilder::wait_timeout) when the set has
    /// no [`timeout`](Self::timeout), and none when it has one. A set that
    /// grows for hours wants this: a job that joins late gets its full time.
    pub fn job_timeout(mut self, d: Duration) -> Self {
        self.job_timeout = Some(d);
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

    /// The outcomes in the order the jobs finish. More jobs can join while
    /// it is read ([`JobOutcomes::push`], [`JobOutcomes::sender`]).
    pub fn into_stream(self) -> JobOutcomes {
        let inbox = Arc::new(Inbox::default());
        let http = self.http.clone();
        let driver = Driver::new(self, inbox.clone());
        JobOutcomes {
            http,
            inbox,
            run: Run::Idle(Box::new(driver)),
        }
    }
}

impl Extend<Job> for JobSet {
    fn extend<I: IntoIterator<Item = Job>>(&mut self, jobs: I) {
        self.jobs.extend(jobs);
    }
}

/// Jobs added to a running set, and who waits for them.
#[derive(Default)]
struct Inbox {
    jobs: Mutex<Vec<Job>>,
    /// Wakes the driver while it sleeps between looks.
    arrived: Notify,
    /// Wakes the reader of an idle set (nothing pending, a sender open).
    reader: AtomicWaker,
    /// Open [`JobSender`]s: while any is, an empty set waits for more.
    senders: AtomicUsize,
    /// Where the pending jobs were last seen, for progress displays.
    pending: AtomicUsize,
    queued: AtomicUsize,
    running: AtomicUsize,
}

impl Inbox {
    fn push_all(&self, jobs: impl IntoIterator<Item = Job>) {
        self.lock().extend(jobs);
        self.arrived.notify_one();
        self.reader.wake();
    }

    fn take(&self) -> Vec<Job> {
        std::mem::take(&mut *self.lock())
    }

    fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        // A push never panics while holding the lock; a poisoned lock
        // still holds a good vector.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How many jobs of a set are still followed, and where they were last
/// seen: what a progress display shows. See [`JobOutcomes::counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct JobSetCounts {
    /// Jobs whose outcome has not been read yet (queued, running, not
    /// seen yet, or finished a moment ago).
    pub pending: usize,
    /// Jobs last seen queued.
    pub queued: usize,
    /// Jobs last seen running.
    pub running: usize,
}

/// The outcomes of a [`JobSet`], in the order the jobs finish: a named,
/// `Unpin` stream, so it can be kept in a struct and polled without pinning.
///
/// It ends when every job has finished and no [`JobSender`] is open. Jobs
/// can join while it is read: between two `next()`s with
/// [`push`](Self::push) or `extend`, or from another task through a
/// [`sender`](Self::sender). A set that ended goes on when a job joins
/// again. A read in progress is kept whole when its `next()` is dropped
/// (in a `select!`, say): nothing is lost, nothing is asked twice.
///
/// ```no_run
/// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
/// use futures::StreamExt;
/// use serde_json::json;
///
/// let mut outcomes = client.job_set().into_stream();
/// let sender = outcomes.sender();
/// tokio::spawn(async move {
///     for prompt in ["a fox", "a heron", "an owl"] {
///         // Each job joins the set as soon as it is submitted.
///         if let Err(e) = sender.submit("nano-banana/text-to-image", json!({"prompt": prompt})).await {
///             eprintln!("not submitted: {e}");
///         }
///     }
///     // Dropping the sender lets the stream end once its jobs have.
/// });
/// while let Some(outcome) = outcomes.next().await {
///     println!("{}: {}", outcome.job.id(), outcome.result.is_ok());
/// }
/// # Ok(()) }
/// ```
pub struct JobOutcomes {
    http: Http,
    inbox: Arc<Inbox>,
    run: Run,
}

/// A read in progress: it hands the driver back with what it read.
type Read = Pin<Box<dyn Future<Output = (Box<Driver>, Option<JobOutcome>)> + Send>>;

/// The driver between two reads, or a read in progress.
enum Run {
    Idle(Box<Driver>),
    Busy(Read),
    /// Only while `poll_next` switches between the two.
    Switching,
}

impl JobOutcomes {
    /// Adds a job to the running set.
    pub fn push(&mut self, job: Job) {
        self.inbox.push_all([job]);
    }

    /// A handle that adds jobs to this set from anywhere (another task).
    /// While one is open, the stream waits for more jobs rather than end.
    pub fn sender(&self) -> JobSender {
        self.inbox.senders.fetch_add(1, Ordering::SeqCst);
        JobSender {
            http: self.http.clone(),
            inbox: self.inbox.clone(),
        }
    }

    /// How many jobs are still followed (those added but not yet read
    /// included), and how many were last seen queued or running.
    pub fn counts(&self) -> JobSetCounts {
        let inbox = &self.inbox;
        JobSetCounts {
            pending: inbox.pending.load(Ordering::Relaxed) + inbox.waiting(),
            queued: inbox.queued.load(Ordering::Relaxed),
            running: inbox.running.load(Ordering::Relaxed),
        }
    }
}

impl Extend<Job> for JobOutcomes {
    fn extend<I: IntoIterator<Item = Job>>(&mut self, jobs: I) {
        self.inbox.push_all(jobs);
    }
}

impl Stream for JobOutcomes {
    type Item = JobOutcome;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<JobOutcome>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.run, Run::Switching) {
                Run::Idle(mut driver) => {
                    driver.take_inbox();
                    if driver.is_idle() {
                        this.run = Run::Idle(driver);
                        if this.inbox.senders.load(Ordering::SeqCst) == 0 {
                            return Poll::Ready(None);
                        }
                        // Registered before looking again, so that a push
                        // between the look and the return still wakes us.
                        this.inbox.reader.register(cx.waker());
                        if this.inbox.waiting() == 0
                            && this.inbox.senders.load(Ordering::SeqCst) > 0
                        {
                            return Poll::Pending;
                        }
                        continue;
                    }
                    this.run = Run::Busy(Box::pin(async move {
                        let outcome = driver.next().await;
                        (driver, outcome)
                    }));
                }
                Run::Busy(mut read) => match read.as_mut().poll(cx) {
                    Poll::Ready((driver, outcome)) => {
                        this.run = Run::Idle(driver);
                        if outcome.is_some() {
                            return Poll::Ready(outcome);
                        }
                    }
                    Poll::Pending => {
                        this.run = Run::Busy(read);
                        return Poll::Pending;
                    }
                },
                Run::Switching => return Poll::Ready(None),
            }
        }
    }
}

impl std::fmt::Debug for JobOutcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobOutcomes")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

/// Adds jobs to a running set from another task: made by
/// [`JobOutcomes::sender`]. While one is open, the set's stream waits for
/// more jobs rather than end; drop every sender to let it end.
pub struct JobSender {
    http: Http,
    inbox: Arc<Inbox>,
}

impl JobSender {
    /// Adds a job to the set.
    pub fn push(&self, job: Job) {
        self.inbox.push_all([job]);
    }

    /// Submits a job (as [`Client::submit`](crate::Client::submit)) and
    /// adds it to the set; the handle is returned too.
    pub async fn submit(&self, endpoint: impl IntoEndpoint, input: impl Serialize) -> Result<Job> {
        self.submit_with(endpoint, input, SubmitOptions::default())
            .await
    }

    /// Submits a job with options (as
    /// [`Client::submit_with`](crate::Client::submit_with)) and adds it to
    /// the set.
    pub async fn submit_with(
        &self,
        endpoint: impl IntoEndpoint,
        input: impl Serialize,
        options: SubmitOptions,
    ) -> Result<Job> {
        let job = crate::submit::submit(&self.http, endpoint, input, options).await?;
        self.push(job.clone());
        Ok(job)
    }
}

impl Clone for JobSender {
    fn clone(&self) -> Self {
        self.inbox.senders.fetch_add(1, Ordering::SeqCst);
        JobSender {
            http: self.http.clone(),
            inbox: self.inbox.clone(),
        }
    }
}

impl Drop for JobSender {
    fn drop(&mut self) {
        if self.inbox.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last one: an idle reader may now end its stream.
            self.inbox.reader.wake();
        }
    }
}

impl std::fmt::Debug for JobSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSender").finish_non_exhaustive()
    }
}
