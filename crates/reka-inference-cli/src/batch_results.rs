//! `DIR/results.jsonl`: one line per finished input line.
//!
//! The journal is the truth; the results file is its readable view. A run
//! rewrites it from the journal when it starts and when it ends (one line
//! per finished entry and per invalid input line, in input order, into a
//! temporary file renamed over the old one; the journal is read a page at
//! a time, so its outputs are never all in memory), so a results file deleted,
//! cut short or edited is whole again, and a line run again replaces its
//! old result. In between, each result is appended as it comes, one whole
//! line per write, at most once per job: the lines already there are read
//! back when the file is opened (the journal may not know that a line was
//! written just before a crash), and a last line cut off by a crash is
//! removed.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use reka_inference::batch::{EntryState, Journal, JournalEntry};
use serde::Serialize;
use serde_json::Value;

use crate::batch_input::BadLine;
use crate::exit::{ExitClass, Failure};

/// One line of `results.jsonl`.
#[derive(Debug, Serialize)]
pub struct ResultLine<'a> {
    /// The input line it came from (1-based), when known.
    pub line: Option<u64>,
    /// The line's id (its files are in `DIR/<id>/`).
    pub id: &'a str,
    /// `COMPLETED`, `FAILED`, `CANCELLED`, `REJECTED` (the submit was
    /// refused), `LOST` (the service no longer knew the job) or `INVALID`
    /// (the line could not be read; nothing was sent).
    pub status: &'a str,
    /// Whether the line succeeded: completed, with every file saved.
    pub ok: bool,
    pub endpoint: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub files: &'a [String],
    /// The job's output as the service sent it (file URLs, boxes, ...).
    pub output: Option<&'a serde_json::Value>,
    pub error: Option<&'a str>,
    pub price_usd: Option<f64>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// From submit to the end of the job, in seconds.
    pub seconds: Option<f64>,
}

impl<'a> ResultLine<'a> {
    pub fn of_entry(entry: &'a JournalEntry, line: Option<u64>) -> ResultLine<'a> {
        let seconds = entry
            .submitted_at
            .zip(entry.finished_at)
            .map(|(a, b)| (b - a).num_milliseconds() as f64 / 1000.0);
        ResultLine {
            line,
            id: &entry.key,
            status: entry.status.as_deref().unwrap_or("UNKNOWN"),
            ok: entry.succeeded(),
            endpoint: Some(&entry.endpoint),
            request_id: entry.request_id.as_deref(),
            files: &entry.files,
            output: entry.output.as_ref(),
            error: entry.error.as_deref(),
            price_usd: entry.price_usd,
            submitted_at: entry.submitted_at,
            finished_at: entry.finished_at,
            seconds,
        }
    }

    pub fn of_bad_line(bad: &'a BadLine) -> ResultLine<'a> {
        ResultLine {
            line: Some(bad.line),
            id: &bad.key,
            status: "INVALID",
            ok: false,
            endpoint: None,
            request_id: None,
            files: &[],
            output: None,
            error: Some(&bad.reason),
            price_usd: None,
            submitted_at: None,
            finished_at: None,
            seconds: None,
        }
    }
}

/// The results file, open for appending.
#[derive(Debug)]
pub struct Results {
    path: PathBuf,
    file: File,
    /// The request id of each id's line (`None` for an invalid line).
    written: HashMap<String, Option<String>>,
}

impl Results {
    /// Opens `path` (created if missing), reads the ids already written,
    /// and cuts off a last line a crash left half-written.
    pub fn open(path: &Path) -> Result<Results, Failure> {
        let failed = |e| io_failure(path, e);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(failed)?;
        let mut written = HashMap::new();
        let mut whole = 0u64;
        {
            let mut reader = BufReader::new(&file);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n = reader.read_until(b'\n', &mut buf).map_err(failed)?;
                if n == 0 || buf.last() != Some(&b'\n') {
                    break;
                }
                whole += n as u64;
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf)
                    && let Some(id) = v.get("id").and_then(|i| i.as_str())
                {
                    let request_id = v.get("request_id").and_then(Value::as_str);
                    written.insert(id.to_owned(), request_id.map(str::to_owned));
                }
            }
        }
        let len = file.metadata().map_err(failed)?.len();
        if len > whole {
            // Killed in the middle of a line: that line is written again.
            file.set_len(whole).map_err(failed)?;
        }
        file.seek(SeekFrom::End(0)).map_err(failed)?;
        Ok(Results {
            path: path.to_owned(),
            file,
            written,
        })
    }

    /// Whether a line with this id is in the file.
    #[cfg(test)]
    pub fn has(&self, id: &str) -> bool {
        self.written.contains_key(id)
    }

    /// Appends a line, unless one with its id and request id is already
    /// there (a line run again has a new request id: its line is appended,
    /// and the rewrite at the end of the run keeps only the journal's).
    pub fn write(&mut self, line: &ResultLine<'_>) -> std::io::Result<bool> {
        if self
            .written
            .get(line.id)
            .is_some_and(|request_id| request_id.as_deref() == line.request_id)
        {
            return Ok(false);
        }
        let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        text.push(b'\n');
        // One write of the whole line: a crash leaves it whole or cut, and a
        // cut line is removed when the next run opens the file.
        self.file.write_all(&text)?;
        self.written
            .insert(line.id.to_owned(), line.request_id.map(str::to_owned));
        Ok(true)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Entries read from the journal at a time by [`rewrite_from`].
const PAGE: usize = 500;

/// Writes `path` anew from every entry of `journal`, read a page at a time,
/// and the invalid lines (see [`Rewrite`]); `each` sees every entry as it
/// passes, finished or not. Returns the number of lines written.
pub async fn rewrite_from(
    path: &Path,
    journal: &impl Journal,
    lines: &HashMap<String, u64>,
    bad: &[BadLine],
    mut each: impl FnMut(&JournalEntry),
) -> Result<usize, Failure> {
    let mut rewrite = Rewrite::new(path, lines)?;
    let mut after: Option<String> = None;
    loop {
        let page = journal.load_page(after.as_deref(), PAGE).await?;
        for entry in &page {
            rewrite.add(entry)?;
            each(entry);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.key.clone()),
            _ => break,
        }
    }
    rewrite.finish(bad)
}

/// Writes `path` anew from `entries` and the invalid lines (see
/// [`Rewrite`]). Returns the number of lines written.
pub fn rewrite(
    path: &Path,
    entries: &[JournalEntry],
    lines: &HashMap<String, u64>,
    bad: &[BadLine],
) -> Result<usize, Failure> {
    let mut rewrite = Rewrite::new(path, lines)?;
    for entry in entries {
        rewrite.add(entry)?;
    }
    rewrite.finish(bad)
}

/// `results.jsonl` written anew from the journal's finished entries and
/// the invalid lines, in input order (`lines`: the line of each id;
/// entries of ids no longer in the input come last), into a temporary file
/// renamed over the old one.
///
/// It holds an index (a line number and a place per row), never the rows:
/// each row is written as its entry comes to a scratch file beside the
/// results, then copied from there in line order. So the end of a run of a
/// million lines holds a page of entries, not the batch's outputs.
///
/// An entry whose journal holds no output (journals of earlier versions
/// dropped it once reported) keeps the output of its old line, when that
/// line is of the same job.
pub struct Rewrite<'a> {
    path: PathBuf,
    lines: &'a HashMap<String, u64>,
    scratch_path: PathBuf,
    scratch: BufWriter<File>,
    /// Each row's line (`u64::MAX`: none), place and length in the scratch.
    index: Vec<(u64, u64, usize)>,
    /// Finished entries with no output: written last, with their old
    /// lines' outputs.
    without_output: Vec<JournalEntry>,
}

impl<'a> Rewrite<'a> {
    pub fn new(path: &Path, lines: &'a HashMap<String, u64>) -> Result<Rewrite<'a>, Failure> {
        let scratch_path = path.with_extension("jsonl.rows");
        let scratch = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&scratch_path)
            .map_err(|e| io_failure(&scratch_path, e))?;
        Ok(Rewrite {
            path: path.to_owned(),
            lines,
            scratch_path,
            scratch: BufWriter::new(scratch),
            index: Vec::new(),
            without_output: Vec::new(),
        })
    }

    /// Takes one entry; those not finished have no line.
    pub fn add(&mut self, entry: &JournalEntry) -> Result<(), Failure> {
        if !matches!(entry.state, EntryState::Done | EntryState::Reported) {
            return Ok(());
        }
        if entry.output.is_none() {
            self.without_output.push(entry.clone());
            return Ok(());
        }
        let line = self.lines.get(&entry.key).copied();
        self.push(line, &ResultLine::of_entry(entry, line))
    }

    fn push(&mut self, line: Option<u64>, row: &ResultLine<'_>) -> Result<(), Failure> {
        let mut text =
            serde_json::to_vec(row).map_err(|e| io_failure(&self.scratch_path, e.into()))?;
        text.push(b'\n');
        self.scratch
            .write_all(&text)
            .map_err(|e| io_failure(&self.scratch_path, e))?;
        // Rows lie end to end: this one starts where the last ended.
        let at = self.index.last().map_or(0, |&(_, at, len)| at + len as u64);
        self.index.push((line.unwrap_or(u64::MAX), at, text.len()));
        Ok(())
    }

    /// Adds the invalid lines, writes the file and removes the scratch.
    /// Returns the number of lines written.
    pub fn finish(mut self, bad: &[BadLine]) -> Result<usize, Failure> {
        let added = self.add_last(bad);
        let Rewrite {
            path,
            scratch_path,
            scratch,
            mut index,
            ..
        } = self;
        let written = added.and_then(|()| {
            let scratch = scratch
                .into_inner()
                .map_err(|e| io_failure(&scratch_path, e.into_error()))?;
            // Stable: entries of ids no longer in the input stay in the
            // journal's order, after every line.
            index.sort_by_key(|(line, _, _)| *line);
            copy_in_order(scratch, &scratch_path, &index, &path)?;
            Ok(index.len())
        });
        let _ = std::fs::remove_file(&scratch_path);
        written
    }

    /// The finished entries with no output, then the invalid lines.
    fn add_last(&mut self, bad: &[BadLine]) -> Result<(), Failure> {
        let without_output = std::mem::take(&mut self.without_output);
        if !without_output.is_empty() {
            let wanted: HashSet<&str> = without_output.iter().map(|e| e.key.as_str()).collect();
            let old_outputs = old_outputs(&self.path, &wanted);
            for entry in &without_output {
                let line = self.lines.get(&entry.key).copied();
                let mut row = ResultLine::of_entry(entry, line);
                if let Some((request_id, output)) = old_outputs.get(&entry.key)
                    && request_id.as_deref() == entry.request_id.as_deref()
                {
                    row.output = Some(output);
                }
                self.push(line, &row)?;
            }
        }
        for b in bad {
            self.push(Some(b.line), &ResultLine::of_bad_line(b))?;
        }
        Ok(())
    }
}

/// Copies the rows of `scratch` into a temporary file in the order of
/// `index`, then renames it over `path`.
fn copy_in_order(
    mut scratch: File,
    scratch_path: &Path,
    index: &[(u64, u64, usize)],
    path: &Path,
) -> Result<(), Failure> {
    let tmp = path.with_extension("jsonl.tmp");
    let file = File::create(&tmp).map_err(|e| io_failure(&tmp, e))?;
    let mut out = BufWriter::new(file);
    let mut row = Vec::new();
    for &(_, at, len) in index {
        row.resize(len, 0);
        scratch
            .seek(SeekFrom::Start(at))
            .and_then(|_| scratch.read_exact(&mut row))
            .map_err(|e| io_failure(scratch_path, e))?;
        out.write_all(&row).map_err(|e| io_failure(&tmp, e))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| io_failure(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| io_failure(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_failure(path, e))
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(ExitClass::Other, format!("{}: {e}", path.display()))
}

/// The outputs of the old file's lines for `ids`, with their request ids.
fn old_outputs(path: &Path, ids: &HashSet<&str>) -> HashMap<String, (Option<String>, Value)> {
    let mut found = HashMap::new();
    let Ok(file) = File::open(path) else {
        return found;
    };
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        let Ok(mut v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(id) = v.get("id").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        if !ids.contains(id.as_str()) {
            continue;
        }
        let request_id = v
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(output) = v.get_mut("output").map(Value::take)
            && !output.is_null()
        {
            found.insert(id, (request_id, output));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(line: u64) -> BadLine {
        BadLine {
            line,
            key: format!("line-{line}"),
            reason: "not JSON".into(),
        }
    }

    #[test]
    fn ids_are_written_once_across_reopenings_and_a_cut_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let mut r = Results::open(&path).unwrap();
        assert!(r.write(&ResultLine::of_bad_line(&bad(1))).unwrap());
        assert!(!r.write(&ResultLine::of_bad_line(&bad(1))).unwrap());
        drop(r);
        // A crash in the middle of the next line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"line\":2,\"id\":\"line-2\",\"sta").unwrap();
        drop(f);
        let mut r = Results::open(&path).unwrap();
        assert!(r.has("line-1"));
        assert!(!r.has("line-2"));
        assert!(r.write(&ResultLine::of_bad_line(&bad(2))).unwrap());
        drop(r);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["id"], "line-2");
        assert_eq!(lines[1]["status"], "INVALID");
        assert_eq!(lines[1]["ok"], false);
    }

    /// A journal of several pages, in an order that is not the input's:
    /// the file comes out in input order, the invalid lines in their
    /// places, an entry of the earlier format with its old line's output,
    /// ids no longer in the input last, and no scratch left behind.
    #[tokio::test]
    async fn a_journal_of_many_pages_is_written_in_input_order() {
        use reka_inference::batch::MemoryJournal;
        use serde_json::json;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let n = 1200u64;
        let journal = MemoryJournal::default();
        let mut lines = HashMap::new();
        let mut finished = 0;
        for i in 0..n {
            let key = format!("k{i}");
            // 7 and 1200 are coprime: lines 1..=1200, each once.
            lines.insert(key.clone(), 1 + (i * 7) % n);
            let mut entry = JournalEntry::new(key.as_str(), "m/c", "fp", key.as_str());
            entry.request_id = Some(format!("job-{i}"));
            if i % 10 == 3 {
                entry.state = EntryState::Submitted;
            } else {
                entry.state = EntryState::Reported;
                entry.status = Some("COMPLETED".into());
                // Entries of the earlier format kept no output.
                if i % 100 != 0 {
                    entry.output = Some(json!({ "i": i }));
                }
                finished += 1;
            }
            journal.save(&entry).await.unwrap();
        }
        let mut gone = JournalEntry::new("gone", "m/c", "fp", "gone");
        gone.state = EntryState::Done;
        gone.output = Some(json!({ "gone": true }));
        journal.save(&gone).await.unwrap();
        // The old file: k0's line of the same job, k100's of another.
        std::fs::write(
            &path,
            concat!(
                r#"{"id":"k0","request_id":"job-0","output":{"old":0}}"#,
                "\n",
                r#"{"id":"k100","request_id":"an-earlier-job","output":{"old":100}}"#,
                "\n",
            ),
        )
        .unwrap();
        let bad: Vec<BadLine> = (n + 1..=n + 3).map(bad).collect();
        let mut seen = 0u64;
        let written = rewrite_from(&path, &journal, &lines, &bad, |_| seen += 1)
            .await
            .unwrap();
        assert_eq!(seen, n + 1);
        assert_eq!(written, finished + 1 + bad.len());
        let rows: Vec<Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), written);
        let numbered: Vec<u64> = rows.iter().filter_map(|r| r["line"].as_u64()).collect();
        assert!(numbered.windows(2).all(|w| w[0] < w[1]), "input order");
        assert_eq!(numbered.len(), written - 1);
        let last = rows.last().unwrap();
        assert_eq!((&last["id"], &last["line"]), (&json!("gone"), &Value::Null));
        let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap();
        assert_eq!(row("k1")["output"], json!({ "i": 1 }));
        assert_eq!(row("k0")["output"], json!({ "old": 0 }));
        assert_eq!(row("k100")["output"], Value::Null);
        assert!(
            rows.iter().all(|r| r["id"] != "k3"),
            "a running job has no line"
        );
        assert_eq!(row("line-1201")["status"], "INVALID");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["results.jsonl"]);
    }
}
