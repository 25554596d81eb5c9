//! Bulk work: thousands of items submitted, followed, saved and reported,
//! crash-safe and exactly once, within a budget.
//!
//! A [`Batch`] reads items from a stream (lazily: a file of any size),
//! submits each once through a [`Submitter`] (bounded,
//! paced by the service's rate limits), follows every job in one growing
//! [`JobSet`](crate::JobSet) (or by webhook), saves each job's files as it
//! finishes, and hands each finished item to the caller to report. A
//! [`Journal`] records every step before the next is taken:
//!
//! | saved | then | after a crash |
//! |---|---|---|
//! | the item's idempotency key (`Submitting`) | the submit | submitted again with the same key: the service returns the job it may already have made |
//! | the request id (`Submitted`) | the job is followed | followed again, through list sweeps from its submit time |
//! | the record (`Finished`) | the files are saved | saved again (the output is in the journal) |
//! | `Done` | the caller reports it | reported again: the caller's report must drop a duplicate (the CLI checks its results file) |
//! | `Reported` | nothing | nothing |
//!
//! So however often a run is killed and started again with the same
//! items, each item has one job, its files and one report. What is not
//! exactly-once: a service that forgets idempotency keys (Reka documents
//! none's lifetime; 24 hours is common) would make a second job for a
//! submit replayed after that.
//!
//! A budget ([`BatchOptions::budget_usd`]) stops new submits when the
//! spend the service reported (`usage.price_usd`) plus the estimated price
//! of the jobs in flight would pass it; the estimate of an endpoint is the
//! mean price of its jobs so far, and while none is known, one job of it
//! runs alone to learn it (or [`BatchOptions::estimated_price_usd`] is
//! used).
//!
//! # Sharing the work between processes and machines
//!
//! One process follows tens of thousands of jobs (the service's rate
//! limit is the bound, not the machine), so more processes help only with
//! more keys or more bandwidth. With what exists:
//!
//! - **Split the items, one journal each.** Give each process its own
//!   items (by a hash of the key, say) and its own journal; the reports
//!   are merged by key. Two runs of one SQLite journal at once are not
//!   supported (the CLI locks its directory).
//! - **Make overlap harmless.** With
//!   [`BatchItem::with_idempotency_key`] derived from the item (a batch
//!   name and the key), an item that two processes both submit is one job
//!   at the service: the second submit replays the first's answer. Both
//!   follow it and both report it; the merge keeps one report per key.
//!   This holds as long as the service keeps idempotency keys (not
//!   published for Reka; 24 hours is common).
//! - **Pick up another's jobs.** A job is reachable by its request id from
//!   anywhere with the same API key: [`Client::job_for`] with
//!   [`Job::with_submit_time`](crate::Job::with_submit_time) from a journal
//!   entry follows it as if this process had submitted it.
//!
//! A journal shared on a database server would make one batch run on
//! many machines: the [`Journal`] trait's upsert by key and read of every
//! row, plus a claim per item (a row lease: `owner` and `lease_until`,
//! taken with a conditional update before the submit and renewed while
//! the job runs) so that each item has one owner, and a crashed owner's
//! items pass to another when the lease lapses; reports then come from
//! the rows rather than from each process. Only the embedded journal is
//! built.
//!
//! ```no_run
//! # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
//! use reka_inference::batch::{Batch, BatchEvent, BatchItem, BatchOptions, MemoryJournal};
//! use serde_json::json;
//!
//! let items = (0..1000).map(|i| {
//!     BatchItem::new(format!("shot-{i}"), "nano-banana/text-to-image", json!({"prompt": format!("product shot {i}")}))
//! });
//! let items: Vec<BatchItem> = items.collect::<reka_inference::Result<_>>()?;
//! let summary = Batch::new(&client, MemoryJournal::default())
//!     .options(BatchOptions::default().concurrency(16).download_dir("out").budget_usd(25.0))
//!     .run(futures::stream::iter(items), |event| {
//!         if let BatchEvent::Done(entry) = event {
//!             println!("{}: {:?} {:?}", entry.key, entry.status, entry.files);
//!         }
//!         Ok(())
//!     })
//!     .await?;
//! println!("{} succeeded, {} failed, ${:.2}", summary.succeeded, summary.failed, summary.spent_usd);
//! # Ok(()) }
//! ```

mod journal;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use journal::{EntryState, Journal, JournalEntry, MemoryJournal};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteJournal;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::time::Duration;

use chrono::Utc;
use futures::stream::FuturesUnordered;
use futures::{Future, Stream, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::Client;
use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::error::{Error, Result};
use crate::job::JobOutput;
use crate::job_set::{JobOutcome, JobOutcomes, JobSetOptions};
use crate::submit::SubmitOptions;
use crate::submitter::{PauseReason, SubmitItem, SubmitOutcome, Submitter, SubmitterOptions};

/// One item of a batch: a key of yours that names it (and its files), an
/// endpoint and an input.
#[derive(Debug, Clone)]
pub struct BatchItem {
    key: String,
    endpoint: Endpoint,
    input: Map<String, Value>,
    fingerprint: String,
    idempotency_key: Option<String>,
}

impl BatchItem {
    /// An item, checked now: the key must be usable as a file name (1 to
    /// 128 of `A-Z a-z 0-9 . _ -`, not `.` or `..`), the endpoint well
    /// formed, the input a JSON object.
    ///
    /// ```
    /// use reka_inference::batch::BatchItem;
    /// use serde_json::json;
    ///
    /// assert!(BatchItem::new("row-17", "nano-banana/text-to-image", json!({"prompt": "a fox"})).is_ok());
    /// assert!(BatchItem::new("../etc", "nano-banana/text-to-image", json!({})).is_err());
    /// assert!(BatchItem::new("row-18", "nano-banana/text-to-image", json!("a fox")).is_err());
    /// ```
    pub fn new(
        key: impl Into<String>,
        endpoint: impl IntoEndpoint,
        input: impl Serialize,
    ) -> Result<BatchItem> {
        let key = key.into();
        check_key(&key)?;
        let endpoint = endpoint.into_endpoint()?;
        let input = match serde_json::to_value(input) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::InvalidInput(
                    "the input must be a JSON object".into(),
                ));
            }
            Err(e) => {
                return Err(Error::InvalidInput(format!(
                    "the input does not serialise: {e}"
                )));
            }
        };
        let fingerprint = fingerprint(&endpoint, &input);
        Ok(BatchItem {
            key,
            endpoint,
            input,
            fingerprint,
            idempotency_key: None,
        })
    }

    /// Submits the item with this idempotency key rather than a fresh
    /// random one. Keys derived from the item (`"catalog-2026-12:" + key`)
    /// make runs that overlap harmless: two processes, or two journals,
    /// submitting the same item get the same job from the service (within
    /// the time the service keeps keys). Visible ASCII, at most 255 bytes.
    ///
    /// ```
    /// use reka_inference::batch::BatchItem;
    /// use serde_json::json;
    ///
    /// let item = BatchItem::new("row-17", "nano-banana/text-to-image", json!({"prompt": "a fox"}))?
    ///     .with_idempotency_key("catalog-2026-12:row-17")?;
    /// assert_eq!(item.idempotency_key(), Some("catalog-2026-12:row-17"));
    /// assert!(BatchItem::new("r", "m/c", json!({}))?.with_idempotency_key("two words").is_err());
    /// # Ok::<(), reka_inference::Error>(())
    /// ```
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Result<BatchItem> {
        let key = key.into();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidInput(format!(
                "idempotency key {:?}: 1 to 255 visible ASCII characters",
                crate::error::truncate(&key, 80)
            )));
        }
        self.idempotency_key = Some(key);
        Ok(self)
    }

    /// The idempotency key given with [`with_idempotency_key`](Self::with_idempotency_key).
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// The item's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The input.
    pub fn input(&self) -> &Map<String, Value> {
        &self.input
    }

    /// What tells this item from a changed one with its key: a hash of the
    /// endpoint and the input (16 hex digits), as the journal keeps it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "item key {:?}: 1 to 128 of A-Z a-z 0-9 . _ - (it names the item's files), not . or ..",
            crate::error::truncate(key, 80)
        )))
    }
}

/// A stable fingerprint of what is submitted: FNV-1a over the endpoint and
/// the input's JSON text (key order as given), as 16 hex digits. Not a
/// security measure: it tells an item that changed between runs.
fn fingerprint(endpoint: &Endpoint, input: &Map<String, Value>) -> String {
    let text = serde_json::to_string(input).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in endpoint.as_str().bytes().chain([0]).chain(text.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// How a [`Batch`] runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    concurrency: usize,
    submit_attempts: u32,
    job_timeout: Option<Duration>,
    download_dir: Option<PathBuf>,
    download_concurrency: usize,
    budget_usd: Option<f64>,
    estimated_price_usd: Option<f64>,
    deadline: Option<Instant>,
    progress_every: Duration,
    #[cfg(feature = "webhooks")]
    receiver: Option<crate::receiver::WebhookReceiver>,
}

impl Default for BatchOptions {
    /// 8 submits in flight, 20 tries per submit (minutes of an outage),
    /// each job waited for up to the client's wait timeout, files not
    /// saved, no budget, progress every second.
    fn default() -> Self {
        BatchOptions {
            concurrency: 8,
            submit_attempts: 20,
            job_timeout: None,
            download_dir: None,
            download_concurrency: 4,
            budget_usd: None,
            estimated_price_usd: None,
            deadline: None,
            progress_every: Duration::from_secs(1),
            #[cfg(feature = "webhooks")]
            receiver: None,
        }
    }
}

impl BatchOptions {
    /// At most `n` submits in flight (the submitter's concurrency).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Tries of one submit before its item is left for the next run.
    pub fn submit_attempts(mut self, n: u32) -> Self {
        self.submit_attempts = n.max(1);
        self
    }

    /// How long each job is waited for from its submit (default: the
    /// client's wait timeout). A job still running then is left running
    /// and followed again by the next run.
    pub fn job_timeout(mut self, d: Duration) -> Self {
        self.job_timeout = Some(d);
        self
    }

    /// Saves each completed job's files into `<dir>/<key>/`.
    pub fn download_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.download_dir = Some(dir.into());
        self
    }

    /// Items whose files are saved at once, at most.
    pub fn download_concurrency(mut self, n: usize) -> Self {
        self.download_concurrency = n.max(1);
        self
    }

    /// Stops submitting when the reported spend plus the estimated price
    /// of the jobs in flight would pass `usd`.
    pub fn budget_usd(mut self, usd: f64) -> Self {
        self.budget_usd = Some(usd);
        self
    }

    /// The price of a job to assume until the service has reported one for
    /// its endpoint (and for endpoints whose records carry no price).
    pub fn estimated_price_usd(mut self, usd: f64) -> Self {
        self.estimated_price_usd = Some(usd);
        self
    }

    /// Ends the run at this instant as [`BatchStop::stop`] would.
    pub fn deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(at);
        self
    }

    /// How often [`BatchEvent::Progress`] is sent.
    pub fn progress_every(mut self, every: Duration) -> Self {
        self.progress_every = every.max(Duration::from_millis(10));
        self
    }

    /// Submits with `receiver`'s URL and ends each wait at its delivery
    /// (confirmed by one fetch of the record). Jobs resumed from the
    /// journal are followed by polling, since their deliveries may have
    /// gone to an earlier run.
    #[cfg(feature = "webhooks")]
    pub fn webhook(mut self, receiver: &crate::receiver::WebhookReceiver) -> Self {
        self.receiver = Some(receiver.clone());
        self
    }
}

/// Where a run stands, sent every [`BatchOptions::progress_every`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BatchProgress {
    /// Items accepted by the service, in this run and earlier ones.
    pub submitted: usize,
    /// Submits waiting for room or in flight.
    pub submitting: usize,
    /// Jobs last seen queued.
    pub queued: usize,
    /// Jobs last seen running.
    pub running: usize,
    /// Jobs being followed (queued, running, or not seen yet).
    pub in_flight: usize,
    /// Items done that succeeded (this run and earlier ones).
    pub succeeded: usize,
    /// Items done that did not.
    pub failed: usize,
    /// What the service reported it charged, in US dollars.
    pub spent_usd: f64,
    /// Seconds until submits resume, when they are paused.
    pub paused_for_secs: Option<f64>,
}

/// Something that happened in a run, for the caller to show or record.
#[derive(Debug)]
#[non_exhaustive]
pub enum BatchEvent<'a> {
    /// The journal was read: what this run picks up.
    Resumed {
        /// Entries in the journal.
        entries: usize,
        /// Jobs still running, followed again.
        in_flight: usize,
        /// Items reported by earlier runs.
        reported: usize,
        /// Of those, the ones that did not succeed.
        reported_failed: usize,
    },
    /// The service accepted an item's submit.
    Submitted(&'a JournalEntry),
    /// An item's submit could not be made now: the service kept failing,
    /// or the item changed since an earlier run submitted it. The journal
    /// keeps it for the next run when it may have reached the service.
    NotSubmitted {
        /// The item's key.
        key: &'a str,
        /// Why.
        reason: String,
    },
    /// A job ended (its files are saved next).
    Finished(&'a JournalEntry),
    /// Everything is done for an item: report it now. When the callback
    /// returns `Ok`, the item is marked reported, and never sent again.
    Done(&'a JournalEntry),
    /// A job could not be followed to its end in this run (its deadline,
    /// or the service kept failing); the next run follows it again.
    Unfinished {
        /// The item's key.
        key: &'a str,
        /// Why.
        reason: String,
    },
    /// Submits are paused until `until`.
    Paused {
        /// When they resume.
        until: Instant,
        /// Why.
        reason: PauseReason,
    },
    /// The budget allows no more submits; the jobs in flight go on.
    BudgetReached {
        /// Spend reported so far.
        spent_usd: f64,
        /// Estimated price of the jobs in flight.
        committed_usd: f64,
    },
    /// Periodic progress.
    Progress(&'a BatchProgress),
}

/// Why a run ended before every item was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// [`BatchStop::stop`] was called.
    Stopped,
    /// [`BatchOptions::deadline`] passed.
    Deadline,
    /// [`BatchOptions::budget_usd`] was reached: items were left unsubmitted.
    Budget,
}

/// What a run did, and what is left for another.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BatchSummary {
    /// Items in the journal that succeeded (this run and earlier ones).
    pub succeeded: usize,
    /// Items that ended without success: failed, cancelled, refused, lost,
    /// or their files could not be saved.
    pub failed: usize,
    /// Items reported in this run.
    pub reported: usize,
    /// Jobs left running (stopped, or past their deadline): the next run
    /// follows them.
    pub unfinished: usize,
    /// Items whose submit is still to be made or replayed by the next run.
    pub unsubmitted: usize,
    /// Items skipped because they changed since an earlier run submitted
    /// them.
    pub changed: usize,
    /// Spend the service reported, in US dollars.
    pub spent_usd: f64,
    /// Whether the service reported any price at all (a spend of 0 then
    /// means nothing was charged, not that nothing was said).
    pub priced: bool,
    /// Why the run ended early, if it did.
    pub stopped: Option<StopReason>,
}

impl BatchSummary {
    /// Whether every item the run saw succeeded and nothing is left.
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0
            && self.unfinished == 0
            && self.unsubmitted == 0
            && self.changed == 0
            && self.stopped.is_none()
    }
}

/// Stops a running batch: no more submits; submits in flight are let
/// finish (a few seconds at most) so their jobs are journalled; jobs and
/// downloads in flight are left to the next run.
#[derive(Debug, Clone)]
pub struct BatchStop(std::sync::Arc<watch::Sender<bool>>);

impl BatchStop {
    /// Asks the run to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// Runs a batch: see the [module](crate::batch).
pub struct Batch<J> {
    client: Client,
    journal: J,
    options: BatchOptions,
    stop: std::sync::Arc<watch::Sender<bool>>,
}

impl<J> std::fmt::Debug for Batch<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How long a stopping run waits for submits in flight.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl<J: Journal> Batch<J> {
    /// A batch of `client`'s jobs, journalled in `journal`.
    pub fn new(client: &Client, journal: J) -> Batch<J> {
        let (stop, _) = watch::channel(false);
        Batch {
            client: client.clone(),
            journal,
            options: BatchOptions::default(),
            stop: std::sync::Arc::new(stop),
        }
    }

    /// Sets the options.
    pub fn options(mut self, options: BatchOptions) -> Self {
        self.options = options;
        self
    }

    /// A handle that stops the run (from a Ctrl-C handler, say).
    pub fn stopper(&self) -> BatchStop {
        BatchStop(self.stop.clone())
    }

    /// Runs the batch to its end: resumes what the journal holds, submits
    /// the items of `items` not submitted before, follows every job, saves
    /// files, and calls `on_event` with what happens ([`BatchEvent::Done`]
    /// for each item to report). Ends when every item is done, or at a
    /// stop, the deadline or the budget; an error from the journal, from
    /// `on_event`, or a refused key (401, 403) ends it at once, with
    /// everything saved so far kept.
    pub async fn run<S, F>(self, items: S, on_event: F) -> Result<BatchSummary>
    where
        S: Stream<Item = BatchItem> + Send,
        F: FnMut(BatchEvent<'_>) -> Result<()> + Send,
    {
        let mut stop = self.stop.subscribe();
        let items = pin!(items);
        let mut run = Run::new(self.client, self.journal, self.options, on_event);
        run.resume().await?;
        run.main_loop(items, &mut stop).await?;
        Ok(run.summary())
    }
}

type Download = Pin<Box<dyn Future<Output = (String, Result<Vec<PathBuf>>)> + Send>>;

/// Money: what was spent, what each endpoint costs, what is in flight.
#[derive(Default)]
struct Ledger {
    spent: f64,
    /// Sum and count of the reported prices, by endpoint.
    prices: HashMap<String, (f64, usize)>,
    /// Endpoints with a completed job whose record carried no price.
    unpriced: HashSet<String>,
    /// Items submitting or running, by endpoint.
    in_flight: HashMap<String, usize>,
}

impl Ledger {
    fn started(&mut self, endpoint: &str) {
        *self.in_flight.entry(endpoint.to_owned()).or_default() += 1;
    }

    fn stopped(&mut self, endpoint: &str) {
        if let Some(n) = self.in_flight.get_mut(endpoint) {
            *n = n.saturating_sub(1);
        }
    }

    /// An item whose job ended (or was never made).
    fn ended(&mut self, entry: &JournalEntry) {
        self.stopped(&entry.endpoint);
        self.priced(entry);
    }

    fn priced(&mut self, entry: &JournalEntry) {
        match entry.price_usd {
            Some(p) => {
                self.spent += p;
                let (sum, n) = self.prices.entry(entry.endpoint.clone()).or_default();
                *sum += p;
                *n += 1;
            }
            None if entry.status.as_deref() == Some("COMPLETED") => {
                self.unpriced.insert(entry.endpoint.clone());
            }
            None => {}
        }
    }

    /// The mean reported price of an endpoint's jobs, else `fallback`.
    fn estimate(&self, endpoint: &str, fallback: Option<f64>) -> Option<f64> {
        match self.prices.get(endpoint) {
            Some((sum, n)) if *n > 0 => Some(sum / *n as f64),
            _ => fallback,
        }
    }

    /// The estimated price of the jobs in flight (unknown ones count 0).
    fn committed(&self, fallback: Option<f64>) -> f64 {
        self.in_flight
            .iter()
            .filter_map(|(e, n)| Some(self.estimate(e, fallback)? * *n as f64))
            .sum()
    }
}

/// One run's state.
struct Run<J, F> {
    client: Client,
    journal: J,
    options: BatchOptions,
    on_event: F,
    entries: HashMap<String, JournalEntry>,
    /// Keys whose submit must be made or replayed, waiting for their item.
    awaiting_items: HashSet<String>,
    submitter: Submitter<String>,
    outcomes: JobOutcomes,
    /// The key of each job of the set, by its index there.
    set_keys: HashMap<usize, String>,
    set_pushed: usize,
    set_pending: usize,
    downloads: FuturesUnordered<Download>,
    /// An item pulled but not submitted yet (its endpoint's price unknown).
    held: Option<BatchItem>,
    ledger: Ledger,
    items_exhausted: bool,
    budget_reached: bool,
    /// Stopped or past the deadline: jobs and downloads are left as they
    /// are, submits in flight get until `stop_by`.
    stopped: Option<StopReason>,
    stop_by: Option<Instant>,
    reported: usize,
    changed: usize,
    last_pause: Option<Instant>,
}

impl<J: Journal, F: FnMut(BatchEvent<'_>) -> Result<()> + Send> Run<J, F> {
    fn new(client: Client, journal: J, options: BatchOptions, on_event: F) -> Self {
        let submitter = client.submitter(
            SubmitterOptions::default()
                .concurrency(options.concurrency)
                .max_attempts(options.submit_attempts),
        );
        let mut set_options = JobSetOptions::default();
        if let Some(t) = options.job_timeout {
            set_options = set_options.job_timeout(t);
        }
        let outcomes = client.job_set().with_options(set_options).into_stream();
        Run {
            client,
            journal,
            options,
            on_event,
            entries: HashMap::new(),
            awaiting_items: HashSet::new(),
            submitter,
            outcomes,
            set_keys: HashMap::new(),
            set_pushed: 0,
            set_pending: 0,
            downloads: FuturesUnordered::new(),
            held: None,
            ledger: Ledger::default(),
            items_exhausted: false,
            budget_reached: false,
            stopped: None,
            stop_by: None,
            reported: 0,
            changed: 0,
            last_pause: None,
        }
    }

    /// Reads the journal and takes up every entry where it was left.
    async fn resume(&mut self) -> Result<()> {
        let entries = self.journal.load().await?;
        let count = entries.len();
        let (mut in_flight, mut reported, mut reported_failed) = (0, 0, 0);
        let mut done = Vec::new();
        for mut entry in entries {
            match entry.state {
                EntryState::Submitting | EntryState::Submitted => {
                    self.ledger.started(&entry.endpoint)
                }
                _ => self.ledger.priced(&entry),
            }
            match entry.state {
                EntryState::Submitting => {
                    self.awaiting_items.insert(entry.key.clone());
                }
                EntryState::Submitted => {
                    in_flight += 1;
                    self.follow(&entry)?;
                }
                EntryState::Finished => self.start_download(&entry),
                EntryState::Done => done.push(entry.key.clone()),
                EntryState::Reported => {
                    reported += 1;
                    reported_failed += usize::from(!entry.succeeded());
                    // Only what the counts need stays in memory.
                    entry.output = None;
                }
            }
            self.entries.insert(entry.key.clone(), entry);
        }
        (self.on_event)(BatchEvent::Resumed {
            entries: count,
            in_flight,
            reported,
            reported_failed,
        })?;
        for key in done {
            self.report(&key).await?;
        }
        Ok(())
    }

    /// Follows a job the journal says is running.
    fn follow(&mut self, entry: &JournalEntry) -> Result<()> {
        let Some(id) = &entry.request_id else {
            return Ok(());
        };
        let mut job = self.client.job_for(entry.endpoint.as_str(), id)?;
        if let Some(at) = entry.submitted_at {
            job = job.with_submit_time(at);
        }
        self.push_job(entry.key.clone(), job);
        Ok(())
    }

    fn push_job(&mut self, key: String, job: crate::Job) {
        self.set_keys.insert(self.set_pushed, key);
        self.set_pushed += 1;
        self.set_pending += 1;
        self.outcomes.push(job);
    }

    fn finished_everything(&self) -> bool {
        let nothing_to_submit =
            self.items_exhausted || self.budget_reached || self.stopped.is_some();
        nothing_to_submit
            && self.held.is_none()
            && self.submitter.is_idle()
            && self.set_pending == 0
            && self.downloads.is_empty()
    }

    fn wants_items(&self) -> bool {
        !self.items_exhausted
            && !self.budget_reached
            && self.stopped.is_none()
            && self.held.is_none()
            && self.submitter.has_room()
    }

    async fn main_loop(
        &mut self,
        mut items: Pin<&mut (impl Stream<Item = BatchItem> + Send)>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(self.options.progress_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = self.options.deadline;
        let mut stop_open = true;
        loop {
            if self.finished_everything() {
                return Ok(());
            }
            if self.stopped.is_some() && self.submitter.in_flight() == 0 {
                return Ok(());
            }
            if self.stopped.is_some() && self.stop_by.is_some_and(|t| Instant::now() >= t) {
                // Submits still in flight are left for the next run to replay.
                return Ok(());
            }
            let pause = self.submitter.paused_until();
            self.note_pause(pause);
            let wants = self.wants_items();
            tokio::select! {
                changed = stop.changed(), if stop_open && self.stopped.is_none() => {
                    match changed {
                        Ok(()) if *stop.borrow() => self.begin_stop(StopReason::Stopped),
                        Ok(()) => {}
                        Err(_) => stop_open = false,
                    }
                }
                () = sleep_until_or_never(deadline), if self.stopped.is_none() => {
                    self.begin_stop(StopReason::Deadline);
                }
                () = sleep_until_or_never(self.stop_by), if self.stop_by.is_some() => {}
                item = items.next(), if wants => match item {
                    Some(item) => self.take_item(item).await?,
                    None => self.items_exhausted = true,
                },
                Some(outcome) = self.submitter.next(), if !self.submitter.is_idle() => {
                    self.submitted(outcome).await?;
                }
                outcome = self.outcomes.next(), if self.set_pending > 0 && self.stopped.is_none() => {
                    match outcome {
                        Some(outcome) => self.job_ended(outcome).await?,
                        // Cannot be while jobs are pending; never spin on it.
                        None => self.set_pending = 0,
                    }
                }
                Some((key, saved)) = self.downloads.next(), if !self.downloads.is_empty() && self.stopped.is_none() => {
                    self.downloaded(&key, saved).await?;
                }
                // Paused with nothing queued: wake at the end to pull items.
                () = sleep_until_or_never(pause.map(|(until, _)| until)), if pause.is_some() && self.submitter.queued() == 0 => {}
                _ = tick.tick() => {
                    let progress = self.progress();
                    (self.on_event)(BatchEvent::Progress(&progress))?;
                }
            }
        }
    }

    fn begin_stop(&mut self, reason: StopReason) {
        self.stopped = Some(reason);
        self.stop_by = Instant::now().checked_add(STOP_GRACE);
        // Never sent: their entries (with their keys) are there for the
        // next run, which submits them again with the same keys.
        self.submitter.take_queued();
        self.held = None;
    }

    fn note_pause(&mut self, pause: Option<(Instant, PauseReason)>) {
        let Some((until, reason)) = pause else {
            self.last_pause = None;
            return;
        };
        if self.last_pause != Some(until) {
            self.last_pause = Some(until);
            // Best effort: a progress display shows it; nothing depends on it.
            let _ = (self.on_event)(BatchEvent::Paused { until, reason });
        }
    }

    /// An item from the caller: submitted when new (or when its earlier
    /// submit's outcome is unknown), skipped when already taken care of.
    async fn take_item(&mut self, item: BatchItem) -> Result<()> {
        if let Some(entry) = self.entries.get(&item.key) {
            if entry.fingerprint != item.fingerprint {
                if entry.state == EntryState::Submitting {
                    self.changed += 1;
                    self.awaiting_items.remove(&item.key);
                    self.ledger.stopped(&entry.endpoint);
                    let reason = "it changed since an earlier run sent it (that submit may have \
                                  made a job): not sent again; give it a new key to run it"
                        .to_owned();
                    (self.on_event)(BatchEvent::NotSubmitted {
                        key: &item.key,
                        reason,
                    })?;
                }
                // Otherwise its job ran with the earlier input; that stands.
                return Ok(());
            }
            if entry.state == EntryState::Submitting && self.awaiting_items.remove(&item.key) {
                let key = entry.idempotency_key.clone();
                self.send(item, key);
            }
            return Ok(());
        }
        if self.options.budget_usd.is_some() {
            match self.affordable(&item) {
                Affordable::Yes => {}
                Affordable::AfterAProbe => {
                    self.held = Some(item);
                    return Ok(());
                }
                Affordable::No => {
                    self.reach_budget()?;
                    return Ok(());
                }
            }
        }
        self.submit_new(item).await
    }

    async fn submit_new(&mut self, item: BatchItem) -> Result<()> {
        let idempotency_key = item
            .idempotency_key
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let entry = JournalEntry::new(
            item.key.clone(),
            item.endpoint.as_str(),
            item.fingerprint.clone(),
            idempotency_key.clone(),
        );
        // The key is saved before the submit: a crash after it replays the
        // submit with the same key rather than make a second job.
        self.journal.save(&entry).await?;
        self.ledger.started(&entry.endpoint);
        self.entries.insert(entry.key.clone(), entry);
        self.send(item, idempotency_key);
        Ok(())
    }

    fn send(&mut self, item: BatchItem, idempotency_key: String) {
        let mut options = SubmitOptions::default().idempotency_key(idempotency_key);
        #[cfg(feature = "webhooks")]
        if let Some(r) = &self.options.receiver {
            options = options.webhook(r);
        }
        if let Some(d) = self.options.deadline {
            options = options.deadline(d);
        }
        // Endpoint and input were checked when the item was made.
        if let Ok(submit) = SubmitItem::new(item.key, item.endpoint, item.input) {
            self.submitter.push(submit.options(options));
        }
    }

    /// A submit ended.
    async fn submitted(&mut self, outcome: SubmitOutcome<String>) -> Result<()> {
        let key = outcome.tag;
        match outcome.result {
            Ok(job) => {
                let Some(entry) = self.entries.get_mut(&key) else {
                    return Ok(());
                };
                entry.state = EntryState::Submitted;
                entry.request_id = Some(job.id().to_owned());
                entry.submitted_at = job.submit_time().or_else(|| Some(Utc::now()));
                let entry = entry.clone();
                self.journal.save(&entry).await?;
                (self.on_event)(BatchEvent::Submitted(&entry))?;
                self.push_job(key, job);
            }
            Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) => {
                // The key is refused: every other item would be too.
                return Err(e);
            }
            Err(e @ Error::SubmitOutcomeUnknown { .. }) => {
                (self.on_event)(BatchEvent::NotSubmitted {
                    key: &key,
                    reason: format!("{e}; the next run replays it with the same key"),
                })?;
            }
            Err(e) => {
                // Refused (400, 404, 409, 413, 422): no job was made.
                let Some(entry) = self.entries.get_mut(&key) else {
                    return Ok(());
                };
                entry.state = EntryState::Finished;
                entry.status = Some("REJECTED".into());
                entry.error = Some(e.to_string());
                entry.finished_at = Some(Utc::now());
                self.ledger.ended(entry);
                self.finish(&key).await?;
            }
        }
        self.release_held().await
    }

    /// A job of the set ended, one way or another.
    async fn job_ended(&mut self, outcome: JobOutcome) -> Result<()> {
        self.set_pending = self.set_pending.saturating_sub(1);
        let Some(key) = self.set_keys.remove(&outcome.index) else {
            return Ok(());
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return Ok(());
        };
        match outcome.result {
            Ok(output) => {
                entry.status = Some("COMPLETED".into());
                entry.price_usd = output.price_usd();
                entry.output = Some(output.output);
            }
            Err(Error::JobFailed { error, record, .. }) => {
                entry.status = Some("FAILED".into());
                entry.error = Some(
                    error
                        .and_then(|e| e.message.clone())
                        .unwrap_or_else(|| "the job failed without saying why".into()),
                );
                entry.price_usd = JobOutput::from_record(*record).price_usd();
            }
            Err(Error::JobCancelled { .. }) => {
                entry.status = Some("CANCELLED".into());
                entry.error = Some("the job was cancelled".into());
            }
            Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(404 | 410)) => {
                entry.status = Some("LOST".into());
                entry.error = Some(format!("the service no longer knows the job: {e}"));
            }
            Err(e) => {
                let reason = e.to_string();
                (self.on_event)(BatchEvent::Unfinished { key: &key, reason })?;
                return self.release_held().await;
            }
        }
        entry.state = EntryState::Finished;
        entry.finished_at = Some(Utc::now());
        self.ledger.ended(entry);
        self.finish(&key).await?;
        self.release_held().await
    }

    /// Saves a finished entry, then its files (or reports it when it has
    /// none to save).
    async fn finish(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get(key).cloned() else {
            return Ok(());
        };
        self.journal.save(&entry).await?;
        (self.on_event)(BatchEvent::Finished(&entry))?;
        let has_files = entry.status.as_deref() == Some("COMPLETED")
            && self.options.download_dir.is_some()
            && entry
                .output
                .as_ref()
                .is_some_and(|o| !crate::output::find_media(o).is_empty());
        if has_files {
            self.start_download(&entry);
            return Ok(());
        }
        self.mark_done(key).await
    }

    fn start_download(&mut self, entry: &JournalEntry) {
        let Some(dir) = &self.options.download_dir else {
            // Nothing to save into: done as it is.
            let key = entry.key.clone();
            self.downloads
                .push(Box::pin(async move { (key, Ok(Vec::new())) }));
            return;
        };
        let dir = dir.join(&entry.key);
        let key = entry.key.clone();
        let client = self.client.clone();
        let output = JobOutput {
            request_id: entry.request_id.clone().unwrap_or_default(),
            output: entry.output.clone().unwrap_or(Value::Null),
            metrics: None,
        };
        self.downloads.push(Box::pin(async move {
            let saved = client.download_outputs(&output, &dir).await;
            (key, saved)
        }));
    }

    /// An item's files were saved (or not).
    async fn downloaded(&mut self, key: &str, saved: Result<Vec<PathBuf>>) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        match saved {
            Ok(paths) => {
                entry.files = paths.iter().map(|p| p.display().to_string()).collect();
            }
            // The file is gone (results expire): nothing will bring it back.
            Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(403 | 404 | 410)) => {
                entry.error = Some(format!("its files could not be saved (expired?): {e}"));
            }
            Err(e) => {
                // Perhaps passing: the next run tries again.
                let reason = format!("its files could not be saved: {e}");
                return (self.on_event)(BatchEvent::Unfinished { key, reason });
            }
        }
        self.mark_done(key).await
    }

    async fn mark_done(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        entry.state = EntryState::Done;
        let entry = entry.clone();
        self.journal.save(&entry).await?;
        self.report(key).await
    }

    /// Hands a done item to the caller, then marks it reported.
    async fn report(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        (self.on_event)(BatchEvent::Done(entry))?;
        entry.state = EntryState::Reported;
        // The report carried the output: the journal and the memory keep
        // only what resuming and the counts need, so that neither grows
        // with what the jobs made.
        entry.output = None;
        self.reported += 1;
        let saved = entry.clone();
        self.journal.save(&saved).await
    }

    /// Submits a held item once its price can be judged.
    async fn release_held(&mut self) -> Result<()> {
        let Some(item) = self.held.take() else {
            return Ok(());
        };
        match self.affordable(&item) {
            Affordable::Yes => self.submit_new(item).await,
            Affordable::AfterAProbe => {
                self.held = Some(item);
                Ok(())
            }
            Affordable::No => self.reach_budget(),
        }
    }

    fn reach_budget(&mut self) -> Result<()> {
        if self.budget_reached {
            return Ok(());
        }
        self.budget_reached = true;
        self.held = None;
        // Submits and jobs in flight go on; nothing more is pulled.
        let spent_usd = self.ledger.spent;
        let committed_usd = self.ledger.committed(self.options.estimated_price_usd);
        (self.on_event)(BatchEvent::BudgetReached {
            spent_usd,
            committed_usd,
        })
    }

    fn affordable(&self, item: &BatchItem) -> Affordable {
        let Some(budget) = self.options.budget_usd else {
            return Affordable::Yes;
        };
        let fallback = self.options.estimated_price_usd;
        let endpoint = item.endpoint.as_str();
        let base = self.ledger.spent + self.ledger.committed(fallback);
        match self.ledger.estimate(endpoint, fallback) {
            Some(price) if base + price <= budget => Affordable::Yes,
            Some(_) => Affordable::No,
            None if base >= budget => Affordable::No,
            // The service does not say what it charges for it: the budget
            // cannot be kept, so nothing more is spent on it.
            None if self.ledger.unpriced.contains(endpoint) => Affordable::No,
            None if self.ledger.in_flight.get(endpoint).is_some_and(|n| *n > 0) => {
                Affordable::AfterAProbe
            }
            // One job alone, to learn the price.
            None => Affordable::Yes,
        }
    }

    fn progress(&self) -> BatchProgress {
        let counts = self.outcomes.counts();
        let mut p = BatchProgress {
            submitting: self.submitter.queued() + self.submitter.in_flight(),
            queued: counts.queued,
            running: counts.running,
            in_flight: self.set_pending,
            spent_usd: self.ledger.spent,
            paused_for_secs: self.submitter.paused_until().map(|(until, _)| {
                until
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64()
            }),
            ..BatchProgress::default()
        };
        for e in self.entries.values() {
            if e.request_id.is_some() {
                p.submitted += 1;
            }
            if matches!(e.state, EntryState::Done | EntryState::Reported) {
                if e.succeeded() {
                    p.succeeded += 1;
                } else {
                    p.failed += 1;
                }
            }
        }
        p
    }

    fn summary(&self) -> BatchSummary {
        let mut s = BatchSummary {
            spent_usd: self.ledger.spent,
            priced: !self.ledger.prices.is_empty(),
            reported: self.reported,
            changed: self.changed,
            stopped: self
                .stopped
                .or(self.budget_reached.then_some(StopReason::Budget)),
            ..BatchSummary::default()
        };
        for e in self.entries.values() {
            match e.state {
                EntryState::Done | EntryState::Reported if e.succeeded() => s.succeeded += 1,
                EntryState::Done | EntryState::Reported => s.failed += 1,
                EntryState::Submitting => s.unsubmitted += 1,
                EntryState::Submitted | EntryState::Finished => s.unfinished += 1,
            }
        }
        // Items whose change was reported are not waiting for a submit.
        s.unsubmitted = s.unsubmitted.saturating_sub(self.changed);
        s
    }
}

enum Affordable {
    Yes,
    /// Not before a job of its endpoint in flight tells its price.
    AfterAProbe,
    No,
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
