//! What a batch remembers between runs: one [`JournalEntry`] per item,
//! saved at each step before the next is taken, behind the small
//! [`Journal`] trait so that a service can keep it where it keeps its data.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

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
/// in a database server takes an upsert by `key` and a select of every row.
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
}

impl<J: Journal> Journal for std::sync::Arc<J> {
    fn load(&self) -> impl Future<Output = Result<Vec<JournalEntry>>> + Send {
        (**self).load()
    }

    fn save(&self, entry: &JournalEntry) -> impl Future<Output = Result<()>> + Send {
        (**self).save(entry)
    }
}
