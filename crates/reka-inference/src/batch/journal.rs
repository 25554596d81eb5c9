//! What a batch remembers between runs: one [`JournalEntry`] per item,
//! saved at each step before the next is taken, behind the small
//! [`Journal`] trait so that a service can keep it where it keeps its data.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;

/// Where a batch keeps its [`JournalEntry`]s.
///
/// A batch saves an item's entry before each step it takes for it (the
/// idempotency key before the submit, the request id after it, the
/// record when the job ends, the files when they are saved, the report),
/// and reads them all back when it starts, so that a run killed at any
/// point and started again resubmits nothing, follows what was in flight,
/// and redoes only the steps that had not been saved.
///
/// `save` must be durable (for the crash the caller cares about) when its
/// future completes. [`MemoryJournal`] keeps entries in memory (tests,
/// one-shot runs); `SqliteJournal` (feature `sqlite`) in a file. A journal
/// in a database server takes an upsert by `key`, a select of every row and
/// one of a page of rows by key ([`load_page`](Journal::load_page)).
///
/// A journal one run owns implements `load` and `save` (and `load_page`
/// when it can read a page faster than the whole). A journal
/// *shared* by runs on several machines (`PostgresJournal`, feature
/// `postgres`) also overrides the methods from
/// [`is_shared`](Journal::is_shared) on: it holds the batch's items
/// ([`add_items`](Journal::add_items)), hands them out to the runs in
/// groups ([`claim`](Journal::claim)), fences every write (a `save` of a
/// line that passed to another run fails with
/// [`Error::LeaseLost`](crate::Error::LeaseLost), and the run drops the
/// line), and keeps the budget in one place
/// ([`save_reserving`](Journal::save_reserving)). Their defaults describe
/// a journal one run owns, and the run then works as it always has.
///
/// ```
/// use reka_inference::batch::{Journal, JournalEntry, MemoryJournal};
///
/// # async fn demo() -> reka_inference::Result<()> {
/// let journal = MemoryJournal::default();
/// let entry = JournalEntry::new("line-1", "nano-banana/text-to-image", "fp", "key-1");
/// journal.save(&entry).await?;
/// assert_eq!(journal.load().await?, vec![entry]);
/// # Ok(()) }
/// ```
pub trait Journal: Send + Sync + 'static {
    /// Every entry saved so far (none for a new journal), in any order.
    fn load(&self) -> impl Future<Output = Result<Vec<JournalEntry>>> + Send;

    /// Saves `entry`, replacing the entry of the same `key`.
    fn save(&self, entry: &JournalEntry) -> impl Future<Output = Result<()>> + Send;

    /// Up to `limit` entries, the first page (`after` = `None`) or the one
    /// following the page whose last key was `after`: so that a caller
    /// reading a journal of a million items holds one page, not the
    /// batch. Pages come in an order of keys the journal chooses and keeps
    /// between calls (byte order here, the database's collation in a
    /// server); a page shorter than `limit` is the last.
    ///
    /// Default: [`load`](Journal::load), sorted and cut. It is right for
    /// any journal but reads the whole journal for every page; a journal
    /// in a database overrides it with a query by key (as `SqliteJournal`
    /// and `PostgresJournal` do).
    ///
    /// ```
    /// use reka_inference::batch::{Journal, JournalEntry, MemoryJournal};
    ///
    /// # async fn demo() -> reka_inference::Result<()> {
    /// let journal = MemoryJournal::default();
    /// for key in ["c", "a", "b"] {
    ///     journal.save(&JournalEntry::new(key, "m/c", "fp", key)).await?;
    /// }
    /// let mut keys = Vec::new();
    /// let mut after: Option<String> = None;
    /// loop {
    ///     let page = journal.load_page(after.as_deref(), 2).await?;
    ///     keys.extend(page.iter().map(|e| e.key.clone()));
    ///     match page.last() {
    ///         Some(last) if page.len() == 2 => after = Some(last.key.clone()),
    ///         _ => break,
    ///     }
    /// }
    /// assert_eq!(keys, ["a", "b", "c"]);
    /// # Ok(()) }
    /// ```
    fn load_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<JournalEntry>>> + Send {
        async move {
            let mut entries = self.load().await?;
            entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            let start = after.map_or(0, |after| {
                entries.partition_point(|e| e.key.as_str() <= after)
            });
            Ok(entries.into_iter().skip(start).take(limit).collect())
        }
    }

    /// Whether runs on other machines share this journal. A run of a
    /// shared journal puts its items in the journal, then takes the lines
    /// it [claims](Journal::claim) rather than those of its stream, and
    /// never [`load`](Journal::load)s it whole. Default: `false`.
    fn is_shared(&self) -> bool {
        false
    }

    /// Shared journals: adds items to the batch, `first_seq` being the
    /// position of the first in the input (lines are claimed in that
    /// order). An item already in the batch is kept as it is; the keys of
    /// those whose fingerprint differs from this item's are returned (the
    /// batch runs the one it holds). Default: nothing, none.
    fn add_items(
        &self,
        items: &[super::BatchItem],
        first_seq: u64,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        let _ = (items, first_seq);
        async { Ok(Vec::new()) }
    }

    /// Shared journals: takes up to `max` lines that no run holds (or
    /// whose holder's lease lapsed) for this run. Default:
    /// [`Claim::Finished`].
    fn claim(&self, max: usize) -> impl Future<Output = Result<Claim>> + Send {
        let _ = max;
        async { Ok(Claim::Finished) }
    }

    /// Saves a new entry (its idempotency key, before its submit) and
    /// reserves `estimate_usd` of the batch's money for its job, as one
    /// step: `false` (nothing saved) when the spend plus the reservations
    /// of every run plus this one would pass `budget_usd`. The reservation
    /// is settled to the job's price when its entry is saved finished.
    /// Default: [`save`](Journal::save), then `true` (a run that owns its
    /// journal keeps its budget itself).
    fn save_reserving(
        &self,
        entry: &JournalEntry,
        estimate_usd: f64,
        budget_usd: Option<f64>,
    ) -> impl Future<Output = Result<bool>> + Send {
        let _ = (estimate_usd, budget_usd);
        async move {
            self.save(entry).await?;
            Ok(true)
        }
    }

    /// Shared journals: gives back every line this run holds (at the end
    /// of a run), so that other runs take them at once rather than when
    /// the lease lapses. Default: nothing.
    fn release(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// What [`Journal::claim`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Claim {
    /// Lines for this run, now held under its lease.
    Lines(Vec<ClaimedLine>),
    /// Nothing to take now, but other runs hold unfinished lines: ask
    /// again after this long (one of their leases may lapse).
    Wait(Duration),
    /// Every line of the batch is done, or held by this run.
    Finished,
}

/// A line [`Journal::claim`] gave this run: its item, and its entry when
/// an earlier holder got as far as saving one.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClaimedLine {
    /// The item, as the batch holds it.
    pub item: super::BatchItem,
    /// Its entry, if any: the run takes it up where it was left.
    pub entry: Option<JournalEntry>,
}

impl ClaimedLine {
    /// A claimed line.
    pub fn new(item: super::BatchItem, entry: Option<JournalEntry>) -> ClaimedLine {
        ClaimedLine { item, entry }
    }
}

/// How far an item has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryState {
    /// Its idempotency key is chosen; the submit may or may not have
    /// reached the service. Submitting again with the key is safe.
    Submitting,
    /// The service accepted it: `request_id` is known; the job runs.
    Submitted,
    /// The job ended (or the submit was refused): `status` says how; its
    /// files are not saved yet.
    Finished,
    /// Everything is done for it (files saved, or none to save); it is not
    /// reported yet.
    Done,
    /// Reported: nothing more will happen to it.
    Reported,
}

/// One item of a batch, as its journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JournalEntry {
    /// The item's key: unique in the batch, chosen by the caller.
    pub key: String,
    /// The endpoint it is submitted to.
    pub endpoint: String,
    /// A fingerprint of the endpoint and input, to tell an item that
    /// changed since it was submitted.
    pub fingerprint: String,
    /// The key every submit of it carries.
    pub idempotency_key: String,
    /// The local files of its input: where each goes, its path, size and
    /// SHA-256 when it was sent (never its bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_files: Vec<super::ItemFile>,
    /// How far it has come.
    pub state: EntryState,
    /// The service's id of its job, once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When its submit was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    /// When the job was seen to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended: `COMPLETED`, `FAILED`, `CANCELLED` (the service's
    /// words), `REJECTED` (the submit was refused) or `LOST` (the service
    /// no longer knows the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The job's output. The journal keeps it (so a report can be made
    /// again, and files that went missing downloaded again); a running
    /// batch drops it from memory once the item is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why it did not succeed, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the service charged, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_usd: Option<f64>,
    /// The files saved, as paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

impl JournalEntry {
    /// A new entry, about to be submitted.
    pub fn new(
        key: impl Into<String>,
        endpoint: impl Into<String>,
        fingerprint: impl Into<String>,
        idempotency_key: impl Into<String>,
    ) -> JournalEntry {
        JournalEntry {
            key: key.into(),
            endpoint: endpoint.into(),
            fingerprint: fingerprint.into(),
            idempotency_key: idempotency_key.into(),
            input_files: Vec::new(),
            state: EntryState::Submitting,
            request_id: None,
            submitted_at: None,
            finished_at: None,
            status: None,
            output: None,
            error: None,
            price_usd: None,
            files: Vec::new(),
        }
    }

    /// Whether the item succeeded: completed, with every file saved.
    pub fn succeeded(&self) -> bool {
        self.status.as_deref() == Some("COMPLETED") && self.error.is_none()
    }
}

/// A journal in memory: nothing survives the process. For tests, and for
/// runs that need no resumption.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    entries: Mutex<HashMap<String, JournalEntry>>,
}

impl Journal for MemoryJournal {
    async fn load(&self) -> Result<Vec<JournalEntry>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Ok(entries.values().cloned().collect())
    }

    async fn save(&self, entry: &JournalEntry) -> Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(entry.key.clone(), entry.clone());
        Ok(())
    }

    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<JournalEntry>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<&String> = entries
            .keys()
            .filter(|key| after.is_none_or(|after| key.as_str() > after))
            .collect();
        keys.sort_unstable();
        Ok(keys
            .into_iter()
            .take(limit)
            .filter_map(|key| entries.get(key).cloned())
            .collect())
    }
}

impl<J: Journal> Journal for std::sync::Arc<J> {
    fn load(&self) -> impl Future<Output = Result<Vec<JournalEntry>>> + Send {
        (**self).load()
    }

    fn save(&self, entry: &JournalEntry) -> impl Future<Output = Result<()>> + Send {
        (**self).save(entry)
    }

    fn load_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<JournalEntry>>> + Send {
        (**self).load_page(after, limit)
    }

    fn is_shared(&self) -> bool {
        (**self).is_shared()
    }

    fn add_items(
        &self,
        items: &[super::BatchItem],
        first_seq: u64,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        (**self).add_items(items, first_seq)
    }

    fn claim(&self, max: usize) -> impl Future<Output = Result<Claim>> + Send {
        (**self).claim(max)
    }

    fn save_reserving(
        &self,
        entry: &JournalEntry,
        estimate_usd: f64,
        budget_usd: Option<f64>,
    ) -> impl Future<Output = Result<bool>> + Send {
        (**self).save_reserving(entry, estimate_usd, budget_usd)
    }

    fn release(&self) -> impl Future<Output = Result<()>> + Send {
        (**self).release()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Keys whose byte order is not their order as numbers, as words or
    /// in any case: a page boundary must fall between any two of them.
    const KEYS: [&str; 9] = [
        "line-10", "line-2", "a", "a-b", "ab", "B", "é", "line-1", "Z",
    ];

    /// Saves [`KEYS`] into `journal`, then reads it by pages of every size
    /// from 1 to past its length: each reading is `load`'s entries, each
    /// once, in byte order of keys, and only its last page is short.
    pub(crate) async fn pages_cover_the_journal_once_in_key_order(journal: &impl Journal) {
        for (i, key) in KEYS.iter().enumerate() {
            let mut entry = JournalEntry::new(*key, "m/c", format!("fp-{i}"), *key);
            entry.output = Some(serde_json::json!({ "n": i }));
            journal.save(&entry).await.unwrap();
        }
        let mut whole = journal.load().await.unwrap();
        whole.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(whole.len(), KEYS.len());
        for limit in 1..=KEYS.len() + 1 {
            let mut read = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = journal.load_page(after.as_deref(), limit).await.unwrap();
                assert!(page.len() <= limit, "a page of {limit} held {}", page.len());
                let last_page = page.len() < limit;
                read.extend(page);
                if last_page {
                    break;
                }
                after = read.last().map(|e| e.key.clone());
            }
            assert_eq!(read, whole, "read by pages of {limit}");
        }
        assert!(journal.load_page(Some("é"), 5).await.unwrap().is_empty());
        assert!(journal.load_page(None, 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_memory_journal_reads_by_pages() {
        pages_cover_the_journal_once_in_key_order(&MemoryJournal::default()).await;
    }

    /// A journal that implements only `load` and `save` gets pages from
    /// the trait's default.
    #[tokio::test]
    async fn a_journal_of_load_and_save_alone_reads_by_pages() {
        #[derive(Default)]
        struct Minimal(MemoryJournal);
        impl Journal for Minimal {
            async fn load(&self) -> Result<Vec<JournalEntry>> {
                self.0.load().await
            }
            async fn save(&self, entry: &JournalEntry) -> Result<()> {
                self.0.save(entry).await
            }
        }
        pages_cover_the_journal_once_in_key_order(&Minimal::default()).await;
    }
}
