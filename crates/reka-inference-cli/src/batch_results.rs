//! `DIR/results.jsonl`: one line per finished input line.
//!
//! The journal is the truth; the results file is its readable view. A run
//! rewrites it from the journal when it starts and when it ends (one line
//! per finished entry and per invalid input line, in input order, into a
//! temporary file renamed over the old one), so a results file deleted,
//! cut short or edited is whole again, and a line run again replaces its
//! old result. In between, each result is appended as it comes, one whole
//! line per write, at most once per job: the lines already there are read
//! back when the file is opened (the journal may not know that a line was
//! written just before a crash), and a last line cut off by a crash is
//! removed.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use reka_inference::batch::{EntryState, JournalEntry};
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
        let failed =
            |e: std::io::Error| Failure::new(ExitClass::Other, format!("{}: {e}", path.display()));
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

/// Writes `path` anew from the journal's finished entries and the invalid
/// lines, in input order (`lines`: the line of each id; entries of ids no
/// longer in the input come last). An entry whose journal holds no output
/// (journals of earlier versions dropped it once reported) keeps the
/// output of its old line, when that line is of the same job. Returns the
/// number of lines written.
pub fn rewrite(
    path: &Path,
    entries: &[JournalEntry],
    lines: &HashMap<String, u64>,
    bad: &[BadLine],
) -> Result<usize, Failure> {
    let failed =
        |e: std::io::Error| Failure::new(ExitClass::Other, format!("{}: {e}", path.display()));
    let finished: Vec<&JournalEntry> = entries
        .iter()
        .filter(|e| matches!(e.state, EntryState::Done | EntryState::Reported))
        .collect();
    let wanted: HashSet<&str> = finished
        .iter()
        .filter(|e| e.output.is_none())
        .map(|e| e.key.as_str())
        .collect();
    let old_outputs = if wanted.is_empty() {
        HashMap::new()
    } else {
        old_outputs(path, &wanted)
    };
    let mut rows: Vec<(u64, ResultLine<'_>)> = Vec::with_capacity(finished.len() + bad.len());
    for entry in &finished {
        let line = lines.get(&entry.key).copied();
        let mut row = ResultLine::of_entry(entry, line);
        if row.output.is_none()
            && let Some((request_id, output)) = old_outputs.get(&entry.key)
            && request_id.as_deref() == entry.request_id.as_deref()
        {
            row.output = Some(output);
        }
        rows.push((line.unwrap_or(u64::MAX), row));
    }
    for b in bad {
        rows.push((b.line, ResultLine::of_bad_line(b)));
    }
    rows.sort_by_key(|(line, _)| *line);
    let tmp = path.with_extension("jsonl.tmp");
    {
        let file = File::create(&tmp).map_err(failed)?;
        let mut out = BufWriter::new(file);
        for (_, row) in &rows {
            serde_json::to_writer(&mut out, row).map_err(|e| failed(e.into()))?;
            out.write_all(b"\n").map_err(failed)?;
        }
        let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
        file.sync_all().map_err(failed)?;
    }
    std::fs::rename(&tmp, path).map_err(failed)?;
    Ok(rows.len())
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
}
