//! The out directory of `batch` (`DIR`): one run at a time (a lock), and
//! the check that keeps a run from paying again for work an earlier run
//! did but whose journal is gone.
//!
//! A directory that holds the results of an earlier run (result lines of
//! jobs, or the folders of their files) but no usable journal (none, an
//! empty file, or one without entries) is refused: running would submit
//! every line again, and each would be paid twice. `--start-over` runs
//! anyway, after moving the old `results.jsonl` aside.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::exit::{ExitClass, Failure};

/// The journal's file in DIR.
pub const JOURNAL: &str = "journal.sqlite";
/// The results file in DIR.
pub const RESULTS: &str = "results.jsonl";

/// One run per DIR at a time: an advisory lock the system drops when the
/// process ends, however it ends.
pub fn lock(dir: &Path) -> Result<File, Failure> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            Failure::new(
                ExitClass::Other,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::usage(format!(
            "another batch is running on {}: one run per directory at a time",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Failure::new(
            ExitClass::Other,
            format!("cannot lock {}: {e}", path.display()),
        )),
    }
}

/// What an earlier run left in DIR.
#[derive(Debug, Default, PartialEq)]
pub struct EarlierWork {
    /// Lines of results.jsonl that name a job (a request id).
    pub result_lines: usize,
    /// Folders of line files.
    pub line_folders: usize,
}

impl EarlierWork {
    /// What `dir` holds of an earlier run's paid work.
    pub fn find(dir: &Path) -> EarlierWork {
        let mut work = EarlierWork::default();
        if let Ok(file) = File::open(dir.join(RESULTS)) {
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                let paid = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .is_some_and(|v| v.get("request_id").is_some_and(|r| r.is_string()));
                work.result_lines += usize::from(paid);
            }
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            work.line_folders = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .count();
        }
        work
    }

    fn is_empty(&self) -> bool {
        self.result_lines == 0 && self.line_folders == 0
    }
}

/// Refuses a run on a DIR whose journal is missing or empty (`journalled`:
/// the entries it holds) while it holds an earlier run's results; with
/// `start_over`, moves the old results file aside instead and says where.
pub fn check_earlier_run(
    dir: &Path,
    journalled: usize,
    journal_existed: bool,
    start_over: bool,
) -> Result<Option<PathBuf>, Failure> {
    if journalled > 0 {
        return Ok(None);
    }
    let work = EarlierWork::find(dir);
    if work.is_empty() {
        return Ok(None);
    }
    if !start_over {
        let journal = if journal_existed {
            "is empty"
        } else {
            "is missing"
        };
        return Err(Failure::usage(format!(
            "{} holds the results of an earlier run ({} result lines with a job, {} line folders) \
             but its journal ({JOURNAL}) {journal}: running would submit every line again, and \
             each would be paid twice",
            dir.display(),
            work.result_lines,
            work.line_folders,
        ))
        .with_hint(
            "restore the journal to go on where that run stopped, use another --out, or pass \
             --start-over to run every line again (results.jsonl is moved aside first)",
        ));
    }
    let results = dir.join(RESULTS);
    if !results.exists() {
        return Ok(None);
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = dir.join(format!("{RESULTS}.{stamp}.old"));
    std::fs::rename(&results, &aside).map_err(|e| {
        Failure::new(
            ExitClass::Other,
            format!("cannot move {} aside: {e}", results.display()),
        )
    })?;
    Ok(Some(aside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_with_results_but_no_journal_is_refused_unless_starting_over() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing there: a first run.
        assert_eq!(
            check_earlier_run(dir.path(), 0, false, false).unwrap(),
            None
        );
        // Invalid lines only: nothing was paid for.
        std::fs::write(
            dir.path().join(RESULTS),
            "{\"id\":\"line-1\",\"status\":\"INVALID\",\"request_id\":null}\n",
        )
        .unwrap();
        assert_eq!(
            check_earlier_run(dir.path(), 0, false, false).unwrap(),
            None
        );
        std::fs::write(
            dir.path().join(RESULTS),
            "{\"id\":\"line-1\",\"status\":\"COMPLETED\",\"request_id\":\"r1\"}\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("line-1")).unwrap();
        let e = check_earlier_run(dir.path(), 0, true, false).unwrap_err();
        assert_eq!(e.class, ExitClass::Usage);
        assert!(
            e.message
                .contains("1 result lines with a job, 1 line folders"),
            "{}",
            e.message
        );
        assert!(e.message.contains("is empty"), "{}", e.message);
        assert!(e.hint.as_deref().unwrap().contains("--start-over"));
        // A journal with entries: a resume, nothing to refuse.
        assert_eq!(check_earlier_run(dir.path(), 3, true, false).unwrap(), None);
        let aside = check_earlier_run(dir.path(), 0, false, true)
            .unwrap()
            .unwrap();
        assert!(
            aside
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("results.jsonl.")
        );
        assert!(!dir.path().join(RESULTS).exists());
        assert!(aside.exists());
    }
}
