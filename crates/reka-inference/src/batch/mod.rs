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
//! is submitted for it: [`Error::PriceUnknown`] says to give an estimate.
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
mod journal;
#[cfg(feature = "sqlite")]
mod sqlite;

mod ledger;
mod run;

pub use crate::submitter::{PauseReason, SubmitItem, SubmitOutcome, Submitter, SubmitterOptions};
pub use files::{FileDigest, ItemFile};
pub use journal::{EntryState, Journal, JournalEntry, MemoryJournal};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteJournal;

use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::error::{Error, Result};
use crate::http::Http;
use crate::input::{DEFAULT_MAX_INLINE_BYTES, DataUri, InputEncoder};
use crate::webhook::Deliveries;

/// One item of a batch: a key of yours that names it (and its files), an
/// endpoint and an input.
#[derive(Debug, Clone)]
pub struct BatchItem {
    key: String,
    endpoint: Endpoint,
    input: Map<String, Value>,
    files: Vec<ItemFile>,
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
        let fingerprint = fingerprint(&endpoint, &input, &[]);
        Ok(BatchItem {
            key,
            endpoint,
            input,
            files: Vec::new(),
            fingerprint,
            idempotency_key: None,
        })
    }

    /// Puts a local file into the input at `pointer` (a JSON pointer:
    /// `/image_url`, `/images/0`): an existing member or element, or a new
    /// member of an existing object. The item keeps the file's path and
    /// hash, not its bytes: the file is read, checked against its hash and
    /// encoded (a `data:` URI by default, [`BatchOptions::input_encoder`])
    /// only when the item is sent, so items waiting their turn hold no file
    /// in memory and the journal stores the path and hash. The item's
    /// fingerprint covers the file's content (not its path): an item whose
    /// file changed since its job ran is a changed item.
    ///
    /// ```
    /// use reka_inference::batch::{BatchItem, FileDigest};
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("a.png"), b"\x89PNG\r\n\x1a\n....")?;
    /// let photo = FileDigest::of_path(dir.path().join("a.png"), 1 << 20).await?;
    /// let item = BatchItem::new("clip-1", "kling-v3-pro/image-to-video", json!({"prompt": "zoom"}))?
    ///     .with_file("/image_url", &photo)?;
    /// assert_eq!(item.files()[0].pointer, "/image_url");
    /// assert!(item.input()["image_url"].is_null()); // filled in when it is sent
    /// assert!(BatchItem::new("x", "m/c", json!({}))?.with_file("/no/parent", &photo).is_err());
    /// # Ok(()) }
    /// ```
    pub fn with_file(mut self, pointer: &str, file: &FileDigest) -> Result<BatchItem> {
        files::reserve(&mut self.input, pointer)?;
        self.files.retain(|f| f.pointer != pointer);
        self.files.push(ItemFile::new(pointer, file));
        self.fingerprint = fingerprint(&self.endpoint, &self.input, &self.files);
        Ok(self)
    }

    /// The local files that go into its input ([`BatchItem::with_file`]).
    pub fn files(&self) -> &[ItemFile] {
        &self.files
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

/// A stable fingerprint of what is submitted: FNV-1a over the endpoint,
/// the input's JSON text (key order as given) and, for each local file,
/// where it goes and its SHA-256, as 16 hex digits. Not a security
/// measure: it tells an item that changed between runs. An item without
/// files has the fingerprint earlier versions gave it.
fn fingerprint(endpoint: &Endpoint, input: &Map<String, Value>, files: &[ItemFile]) -> String {
    let text = serde_json::to_string(input).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let files = files.iter().flat_map(|f| {
        [0u8]
            .into_iter()
            .chain(f.pointer.bytes())
            .chain([0])
            .chain(f.sha256.bytes())
    });
    for byte in endpoint
        .as_str()
        .bytes()
        .chain([0])
        .chain(text.bytes())
        .chain(files)
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

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
    /// run ends with [`Error::PriceUnknown`] before submitting for it.
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
    /// an item's endpoint ([`Error::PriceUnknown`], before that item is
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
        run.main_loop(items.as_mut(), &mut stop).await?;
        run.count_unpulled(items).await;
        Ok(run.summary())
    }
}
