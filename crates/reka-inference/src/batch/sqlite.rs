//! A [`Journal`] in one SQLite file (embedded: no server to start).
//!
//! One row per item, `key` and the entry as JSON, in a write-ahead log
//! with `synchronous = NORMAL`: a saved entry survives the process being
//! killed at any point (it is in the log before `save` returns), though
//! not a power cut in the last moments. Each save is one short
//! transaction on the calling thread.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::journal::{Journal, JournalEntry};
use crate::error::{Error, Result};

/// The layout this version writes.
const SCHEMA_VERSION: i64 = 1;

/// A [`Journal`] in a SQLite file.
///
/// ```no_run
/// use reka_inference::batch::{Journal, SqliteJournal};
///
/// # async fn demo() -> reka_inference::Result<()> {
/// let journal = SqliteJournal::open("out/journal.sqlite")?;
/// println!("{} entries", journal.load().await?.len());
/// # Ok(()) }
/// ```
pub struct SqliteJournal {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteJournal").finish_non_exhaustive()
    }
}

impl SqliteJournal {
    /// Opens (or creates) the journal at `path`. A file that is not a
    /// journal of this layout is refused, never overwritten.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteJournal> {
        let path = path.as_ref();
        let failed = |what: &str, e: rusqlite::Error| {
            Error::Journal(format!("{what} {}: {e}", path.display()))
        };
        let connection = Connection::open(path).map_err(|e| failed("cannot open", e))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, entry TEXT NOT NULL);",
            )
            .map_err(|e| failed("cannot set up", e))?;
        let version: Option<String> = connection
            .query_row("SELECT value FROM meta WHERE name = 'schema'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| failed("cannot read", e))?;
        match version {
            None => {
                connection
                    .execute(
                        "INSERT INTO meta (name, value) VALUES ('schema', ?1)",
                        params![SCHEMA_VERSION.to_string()],
                    )
                    .map_err(|e| failed("cannot write", e))?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(Error::Journal(format!(
                    "{} is a journal of layout {v}; this version reads layout {SCHEMA_VERSION}",
                    path.display()
                )));
            }
        }
        Ok(SqliteJournal {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // No code panics while holding it; a poisoned lock still holds a
        // usable connection.
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SqliteJournal {
    /// The entries a query of `key, entry` rows selects.
    fn read(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<JournalEntry>> {
        let connection = self.lock();
        let failed = |e: rusqlite::Error| Error::Journal(format!("cannot read the journal: {e}"));
        let mut statement = connection.prepare(sql).map_err(failed)?;
        let rows = statement
            .query_map(params, |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(failed)?;
        let mut entries = Vec::new();
        for row in rows {
            let (key, text) = row.map_err(failed)?;
            let entry: JournalEntry = serde_json::from_str(&text).map_err(|e| {
                Error::Journal(format!(
                    "the journal's entry for {key:?} is unreadable: {e}"
                ))
            })?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl Journal for SqliteJournal {
    async fn load(&self) -> Result<Vec<JournalEntry>> {
        self.read("SELECT key, entry FROM entries", [])
    }

    /// By the primary key, in byte order (SQLite's `BINARY` collation).
    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<JournalEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match after {
            None => self.read(
                "SELECT key, entry FROM entries ORDER BY key LIMIT ?1",
                [limit],
            ),
            Some(after) => self.read(
                "SELECT key, entry FROM entries WHERE key > ?1 ORDER BY key LIMIT ?2",
                rusqlite::params![after, limit],
            ),
        }
    }

    async fn save(&self, entry: &JournalEntry) -> Result<()> {
        let text = serde_json::to_string(entry)
            .map_err(|e| Error::Journal(format!("cannot encode an entry: {e}")))?;
        self.lock()
            .execute(
                "INSERT INTO entries (key, entry) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET entry = excluded.entry",
                params![entry.key, text],
            )
            .map_err(|e| Error::Journal(format!("cannot write the journal: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::EntryState;

    #[tokio::test]
    async fn entries_survive_reopening_and_replace_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let journal = SqliteJournal::open(&path).unwrap();
        let mut a = JournalEntry::new("a", "m/text-to-image", "fp-a", "key-a");
        journal.save(&a).await.unwrap();
        journal
            .save(&JournalEntry::new("b", "m/text-to-image", "fp-b", "key-b"))
            .await
            .unwrap();
        a.state = EntryState::Submitted;
        a.request_id = Some("req-1".into());
        journal.save(&a).await.unwrap();
        drop(journal);
        let mut entries = SqliteJournal::open(&path).unwrap().load().await.unwrap();
        entries.sort_by(|x, y| x.key.cmp(&y.key));
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], a);
        assert_eq!(entries[1].state, EntryState::Submitting);
    }

    #[tokio::test]
    async fn it_reads_by_pages_of_its_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let journal = SqliteJournal::open(dir.path().join("journal.sqlite")).unwrap();
        crate::batch::journal::tests::pages_cover_the_journal_once_in_key_order(&journal).await;
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "not a database, and it matters to someone").unwrap();
        let e = SqliteJournal::open(&path).unwrap_err();
        assert!(matches!(e, Error::Journal(_)), "{e:?}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "not a database, and it matters to someone"
        );
    }

    #[test]
    fn a_journal_of_another_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        drop(SqliteJournal::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute("UPDATE meta SET value = '99' WHERE name = 'schema'", [])
            .unwrap();
        drop(c);
        let e = SqliteJournal::open(&path).unwrap_err().to_string();
        assert!(e.contains("layout 99"), "{e}");
    }
}
