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
//! A budget ([`BatchOptions::budget_usd`]) stops new submits when what
//! was spent plus the estimated price of the jobs in flight plus the next
//! job's would pass it, so the spend stays within it as far as the
//! estimates hold. Spent is what the service reported (`usage.price_usd`),
//! and for a job whose record carried no price, its estimate. An
//! endpoint's estimate is the highest price its jobs have reported; before
//! one has, the price the model list gives for it, or
//! [`BatchOptions::estimated_price_usd`] (the higher of the two when both
//! are known). An endpoint with none of these is refused before anything
//! is submitted for it: [`Error::PriceUnknown`](crate::Error::PriceUnknown) says to give an estimate.
//! While an endpoint's price rests on the caller's estimate alone, its
//! first job runs as a probe, one probe at a time across the batch, so a
//! wrong estimate costs at most one job more than the budget.
//!
//! An item is known by its key and a fingerprint of its endpoint and
//! input (and of the content of its [local files](BatchItem::with_file)).
//! An item whose fingerprint differs from the one its journal entry
//! recorded changed since its job ran: it is reported
//! ([`BatchEvent::Changed`], counted in [`BatchSummary::changed`]) and not
//! run, and its earlier result stands, unless
//! [`BatchOptions::rerun_changed`] makes it run again as a new job.
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
//!   anywhere with the same API key: [`Client::job_for`](crate::Client::job_for) with
//!   [`Job::with_submit_time`](crate::Job::with_submit_time) from a journal
//!   entry follows it as if this process had submitted it.
//! - **Share one journal on a database server.** With
//!   `PostgresJournal` (feature `postgres`) one named batch runs on
//!   many machines: every worker adds the same items (the batch keeps each
//!   once), then claims lines in small groups (`FOR UPDATE SKIP LOCKED`),
//!   holds them under a lease its heartbeat renews, and writes under a
//!   fencing token; a worker that stops renewing loses its lines when the
//!   lease lapses, another takes them over from their entries (replaying
//!   a submit with its saved key), and the first one's late writes are
//!   refused ([`Error::LeaseLost`](crate::Error::LeaseLost); [`BatchEvent::LeaseLost`]). The budget
//!   is one row every submit reserves its estimate from. The seam is in
//!   the [`Journal`] trait: the methods from [`Journal::is_shared`] on,
//!   whose defaults describe a journal one run owns.
//!
//! ```no_run
//! # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
//! use reka_inference::batch::{BatchEvent, BatchItem, BatchOptions, MemoryJournal, SubmitterOptions};
//! use serde_json::json;
//!
//! let items = (0..1000).map(|i| {
//!     BatchItem::new(format!("shot-{i}"), "nano-banana/text-to-image", json!({"prompt": format!("product shot {i}")}))
//! });
//! let items: Vec<BatchItem> = items.collect::<reka_inference::Result<_>>()?;
//! let summary = client
//!     .batch(MemoryJournal::default())
//!     .options(
//!         BatchOptions::default()
//!             .submitter(SubmitterOptions::default().concurrency(16))
//!             .download_dir("out")
//!             .budget_usd(25.0)
//!             // What to assume where the service says no price.
//!             .estimated_price_usd(0.04),
//!     )
//!     .run(futures::stream::iter(items), |event| {
//!         if let BatchEvent::Done(entry) = event {
//!             println!("{}: {:?} {:?}", entry.key, entry.status, entry.files);
//!         }
//!         Ok(())
//!     })
//!     .await?;
//! println!(
//!     "{} succeeded, {} failed, {} not submitted, ${:.2}",
//!     summary.succeeded, summary.failed, summary.unsubmitted, summary.spent_usd
//! );
//! # Ok(()) }
//! ```

mod files;
mod item;
mod journal;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

mod ledger;
mod run;

pub use crate::submitter::{PauseReason, SubmitItem, SubmitOutcome, Submitter, SubmitterOptions};
pub use files::{FileDigest, ItemFile};
pub use item::BatchItem;
pub use journal::{Claim, ClaimedLine, EntryState, Journal, JournalEntry, MemoryJournal};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{
    BatchStatus, JournalStats, PostgresJournal, PostgresOptions, redact_database_url,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteJournal;

use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::Result;
use crate::http::Http;
use crate::input::{DEFAULT_MAX_INLINE_BYTES, DataUri, InputEncoder};
use crate::webhook::Deliveries;

/// How a [`Batch`] runs.
#[derive(Clone)]
pub struct BatchOptions {
    submitter: SubmitterOptions,
    job_timeout: Option<Duration>,
    download_dir: Option<PathBuf>,
    download_concurrency: usize,
    budget_usd: Option<f64>,
    estimated_price_usd: Option<f64>,
    deadline: Option<Instant>,
    progress_every: Duration,
    webhook: Option<Arc<dyn Deliveries>>,
    rerun_changed: bool,
    input_encoder: Arc<dyn InputEncoder>,
    max_file_bytes: u64,
}

impl std::fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("submitter", &self.submitter)
            .field("job_timeout", &self.job_timeout)
            .field("download_dir", &self.download_dir)
            .field("download_concurrency", &self.download_concurrency)
            .field("budget_usd", &self.budget_usd)
            .field("estimated_price_usd", &self.estimated_price_usd)
            .field("deadline", &self.deadline)
            .field("progress_every", &self.progress_every)
            .field("webhook", &self.webhook.is_some())
            .field("rerun_changed", &self.rerun_changed)
            .field("max_file_bytes", &self.max_file_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for BatchOptions {
    /// 8 submits in flight, 20 tries per submit (minutes of an outage),
    /// each job waited for up to the client's wait timeout, files not
    /// saved, no budget, progress every second, changed items reported
    /// and not run, local files sent inline as `data:` URIs of at most
    /// [`DEFAULT_MAX_INLINE_BYTES`].
    fn default() -> Self {
        BatchOptions {
            submitter: SubmitterOptions::default(),
            job_timeout: None,
            download_dir: None,
            download_concurrency: 4,
            budget_usd: None,
            estimated_price_usd: None,
            deadline: None,
            progress_every: Duration::from_secs(1),
            webhook: None,
            rerun_changed: false,
            input_encoder: Arc::new(DataUri::default()),
            max_file_bytes: DEFAULT_MAX_INLINE_BYTES,
        }
    }
}

impl BatchOptions {
    /// How items are submitted (default [`SubmitterOptions::default`]):
    /// submits in flight ([`SubmitterOptions::concurrency`]) and tries of
    /// one submit before its item is left for the next run
    /// ([`SubmitterOptions::max_attempts`]; raise it to sit through
    /// minutes of an outage).
    ///
    /// ```
    /// use reka_inference::batch::{BatchOptions, SubmitterOptions};
    ///
    /// let options = BatchOptions::default()
    ///     .submitter(SubmitterOptions::default().concurrency(16).max_attempts(5));
    /// # let _ = options;
    /// ```
    pub fn submitter(mut self, options: SubmitterOptions) -> Self {
        self.submitter = options;
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

    /// Stops submitting when the spend so far plus the estimated price of
    /// the jobs in flight and of the next job would pass `usd` (see the
    /// [module](crate::batch) for how prices are estimated). Every
    /// endpoint needs a price to start from: the model list's, one its
    /// jobs reported in an earlier run, or
    /// [`estimated_price_usd`](Self::estimated_price_usd); without any, the
    /// run ends with [`Error::PriceUnknown`](crate::Error::PriceUnknown) before submitting for it.
    pub fn budget_usd(mut self, usd: f64) -> Self {
        self.budget_usd = Some(usd);
        self
    }

    /// The price of a job to assume until the service has reported one for
    /// its endpoint, and for jobs whose records carry no price (counted as
    /// spent at this price). Needed for a budget against a service that
    /// says no price (neither in its model list nor in its records).
    pub fn estimated_price_usd(mut self, usd: f64) -> Self {
        self.estimated_price_usd = Some(usd);
        self
    }

    /// Runs again, as a new job, an item whose input changed since its job
    /// ran (its fingerprint differs from its journal entry's). Off by
    /// default: a changed item is reported ([`BatchEvent::Changed`]) and
    /// its earlier result stands. A job of its earlier input still running
    /// is left running and no longer followed.
    pub fn rerun_changed(mut self, rerun: bool) -> Self {
        self.rerun_changed = rerun;
        self
    }

    /// How local files ([`BatchItem::with_file`]) become input values
    /// (default: [`DataUri`], inline `data:` URIs).
    pub fn input_encoder(mut self, encoder: impl InputEncoder + 'static) -> Self {
        self.input_encoder = Arc::new(encoder);
        self
    }

    /// The largest local file read for an item (default
    /// [`DEFAULT_MAX_INLINE_BYTES`]); a larger one leaves its item
    /// unsubmitted, with the reason.
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
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

    /// Submits with the URL of `deliveries` (a
    /// [`WebhookReceiver`](crate::webhook::WebhookReceiver)) and ends each
    /// wait at its delivery (confirmed by one fetch of the record). Jobs
    /// resumed from the journal are followed by polling, since their
    /// deliveries may have gone to an earlier run.
    pub fn webhook<D: Deliveries + Clone>(mut self, deliveries: &D) -> Self {
        self.webhook = Some(Arc::new(deliveries.clone()));
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
    /// or one of its local files could not be read or changed after it was
    /// hashed. The journal keeps it for the next run when it may have
    /// reached the service.
    NotSubmitted {
        /// The item's key.
        key: &'a str,
        /// Why.
        reason: String,
    },
    /// An item changed since its job ran (or since its submit was sent):
    /// its fingerprint differs from its journal entry's. It is not run
    /// again, and its earlier result stands, unless
    /// [`BatchOptions::rerun_changed`] is on (then this is followed by its
    /// new submit).
    Changed {
        /// The item's key.
        key: &'a str,
        /// What changed, in words (a local file's hash, or its input).
        reason: String,
        /// Whether it runs again as a new job.
        rerun: bool,
    },
    /// Files an earlier run saved for an item are gone from the download
    /// directory: they are downloaded again, and the item reported again
    /// (failed, if they can no longer be had).
    FilesMissing {
        /// The item's key.
        key: &'a str,
        /// The files that are gone.
        missing: Vec<String>,
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
        /// Estimated price of the ended jobs whose records carried no price.
        assumed_usd: f64,
        /// Estimated price of the jobs in flight.
        committed_usd: f64,
    },
    /// Periodic progress.
    Progress(&'a BatchProgress),
    /// A line of a shared journal passed to another run (this run's lease
    /// on it lapsed and another claimed it): this run dropped it, and the
    /// other takes it from where its journal entry was (replaying its
    /// submit with the same idempotency key if need be).
    LeaseLost {
        /// The line's key.
        key: &'a str,
    },
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
///
/// Every item of the run's stream and every entry of its journal is
/// counted once, in one of `succeeded`, `failed`, `unfinished`, `unsaved`,
/// `unsubmitted` and `changed`: their sum is the number of items (keys)
/// the batch knows. Items a run stopped by the budget did not pull are
/// read (not submitted) to be counted; a run stopped by
/// [`BatchStop::stop`] or its deadline counts them from the stream's
/// `size_hint` (its lower bound), not reading them.
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
    /// Jobs that ended but whose files are not saved yet (the download
    /// failed in a way that may pass): the next run saves them.
    pub unsaved: usize,
    /// Items not submitted: never pulled from the stream (the budget or a
    /// stop came first), pulled but not sent, or whose submit is still to
    /// be made or replayed by the next run.
    pub unsubmitted: usize,
    /// Items that changed since their job ran and were not run again
    /// ([`BatchOptions::rerun_changed`]).
    pub changed: usize,
    /// Spend the service reported, in US dollars.
    pub spent_usd: f64,
    /// The estimated price of jobs whose records carried no price, counted
    /// against the budget as if spent.
    pub assumed_usd: f64,
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
            && self.unsaved == 0
            && self.unsubmitted == 0
            && self.changed == 0
            && self.stopped.is_none()
    }

    /// The number of items counted: `succeeded + failed + unfinished +
    /// unsaved + unsubmitted + changed`.
    pub fn total(&self) -> usize {
        self.succeeded
            + self.failed
            + self.unfinished
            + self.unsaved
            + self.unsubmitted
            + self.changed
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
    http: Http,
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

impl<J: Journal> Batch<J> {
    /// A batch of the jobs of `http`'s client; from
    /// [`Client::batch`](crate::Client::batch).
    pub(crate) fn new(http: Http, journal: J) -> Batch<J> {
        let (stop, _) = watch::channel(false);
        Batch {
            http,
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
    /// `on_event`, a refused key (401, 403), or a budget with no price for
    /// an item's endpoint ([`Error::PriceUnknown`](crate::Error::PriceUnknown), before that item is
    /// submitted) ends it at once, with everything saved so far kept.
    pub async fn run<S, F>(self, items: S, on_event: F) -> Result<BatchSummary>
    where
        S: Stream<Item = BatchItem> + Send,
        F: FnMut(BatchEvent<'_>) -> Result<()> + Send,
    {
        let mut stop = self.stop.subscribe();
        let mut items = pin!(items);
        let mut run = run::Run::new(self.http, self.journal, self.options, on_event);
        run.resume().await?;
        if run.is_shared() {
            let ran = async {
                run.add_items(items.as_mut()).await?;
                let claims_only = pin!(futures::stream::pending::<BatchItem>());
                run.main_loop(claims_only, &mut stop).await
            }
            .await;
            // Given back whatever happened, so others need not wait for
            // the lease to lapse; a failure here leaves that to the lease.
            let released = run.release().await;
            ran?;
            released?;
            return Ok(run.summary());
        }
        run.main_loop(items.as_mut(), &mut stop).await?;
        run.count_unpulled(items).await;
        Ok(run.summary())
    }
}
