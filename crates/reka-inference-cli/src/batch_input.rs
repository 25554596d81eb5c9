//! The input file of `batch`: one JSON object per line, checked line by
//! line, read twice (once to check and index it, once to feed the batch)
//! so that a file of any size never sits in memory.
//!
//! A line is either the input object of `--endpoint`, or an envelope
//! `{"endpoint": ..., "input": {...}, "id": ...}`: an object whose `input`
//! is an object and whose other keys are only `endpoint` and `id`. The id
//! names the line's files and results (default `line-<N>`). Blank lines
//! are skipped; a line that cannot be run is reported with its number and
//! skipped, never fatal to the others.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use reka_inference::Endpoint;
use reka_inference::batch::BatchItem;
use serde_json::{Map, Value};

use crate::exit::{ExitClass, Failure};

/// The longest line read (a data: URI image fits; a file without line
/// breaks does not fill the memory).
const MAX_LINE_BYTES: u64 = 64 << 20;

/// A line that cannot be run, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// 1-based.
    pub line: u64,
    /// The key its result is reported under (its id, when it had a usable
    /// one, else `line-<N>`).
    pub key: String,
    pub reason: String,
}

/// What the first reading found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The line of each good item's key.
    pub lines: HashMap<String, u64>,
    /// Good items, in file order (keys only: inputs are read again later).
    pub good: usize,
    pub bad: Vec<BadLine>,
}

/// Reads the whole file once: checks every line and indexes the keys.
pub fn scan(path: &Path, endpoint: Option<&Endpoint>) -> Result<Scan, Failure> {
    let mut scan = Scan::default();
    let mut reader = LineReader::open(path)?;
    while let Some((line, text)) = reader.next_line().map_err(|e| read_failure(path, e))? {
        let parsed = text
            .map_err(|reason| BadLine {
                line,
                key: format!("line-{line}"),
                reason,
            })
            .and_then(|text| parse(line, &text, endpoint));
        match parsed {
            Ok(None) => {}
            Ok(Some(item)) => {
                if let Some(first) = scan.lines.get(item.key()) {
                    scan.bad.push(BadLine {
                        line,
                        key: format!("line-{line}"),
                        reason: format!("id {:?} is also the id of line {first}", item.key()),
                    });
                } else {
                    scan.lines.insert(item.key().to_owned(), line);
                    scan.good += 1;
                }
            }
            Err(bad) => scan.bad.push(bad),
        }
    }
    // The default key of a bad line could be a good line's id.
    for bad in &mut scan.bad {
        if scan.lines.contains_key(&bad.key) {
            bad.key = format!("line-{}-invalid", bad.line);
        }
    }
    Ok(scan)
}

/// The good items of the file, read again lazily; `scan` says which lines
/// are good (a line that is a duplicate id is left out here too).
pub fn items(
    path: PathBuf,
    endpoint: Option<Endpoint>,
    lines: HashMap<String, u64>,
) -> Result<impl Iterator<Item = BatchItem> + Send, Failure> {
    let mut reader = LineReader::open(&path)?;
    Ok(std::iter::from_fn(move || {
        loop {
            let (line, text) = match reader.next_line() {
                Ok(Some(x)) => x,
                // The file changed or broke since it was scanned: stop here;
                // what was not read is not run (the summary says so).
                Ok(None) | Err(_) => return None,
            };
            let Ok(text) = text else { continue };
            if let Ok(Some(item)) = parse(line, &text, endpoint.as_ref())
                && lines.get(item.key()) == Some(&line)
            {
                return Some(item);
            }
        }
    }))
}

/// One line: `Ok(None)` when blank.
fn parse(line: u64, text: &str, endpoint: Option<&Endpoint>) -> Result<Option<BatchItem>, BadLine> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |key: &str, reason: String| BadLine {
        line,
        key: key.to_owned(),
        reason,
    };
    let default_key = format!("line-{line}");
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(&default_key, format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(bad(&default_key, "not a JSON object".into()));
    };
    let (key, endpoint_text, input) = match envelope(&object) {
        Some(env) => {
            let key = match object.get("id") {
                None | Some(Value::Null) => default_key.clone(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(_) => return Err(bad(&default_key, "\"id\" must be a string".into())),
            };
            let endpoint_text = match object.get("endpoint") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    return Err(bad(
                        &key_or(&key, &default_key),
                        "\"endpoint\" must be a string".into(),
                    ));
                }
            };
            (key, endpoint_text, Value::Object(env.clone()))
        }
        None => (default_key.clone(), None, Value::Object(object)),
    };
    let key_for_errors = key_or(&key, &default_key);
    let endpoint = match (endpoint_text, endpoint) {
        (Some(text), _) => Endpoint::new(text.trim())
            .map_err(|e| bad(&key_for_errors, format!("endpoint {text:?}: {e}")))?,
        (None, Some(e)) => e.clone(),
        (None, None) => {
            return Err(bad(
                &key_for_errors,
                "no endpoint: give --endpoint, or an \"endpoint\" field beside \"input\"".into(),
            ));
        }
    };
    BatchItem::new(key, endpoint, input)
        .map(Some)
        .map_err(|e| bad(&key_for_errors, e.to_string()))
}

/// The key a bad line is reported under: its id when usable as one.
fn key_or(key: &str, default: &str) -> String {
    let usable = BatchItem::new(key, "m/c", Value::Object(Map::new())).is_ok();
    if usable {
        key.to_owned()
    } else {
        default.to_owned()
    }
}

/// The `input` of an envelope line.
fn envelope(object: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let input = object.get("input")?.as_object()?;
    object
        .keys()
        .all(|k| matches!(k.as_str(), "input" | "endpoint" | "id"))
        .then_some(input)
}

/// Lines with their numbers, each capped in length.
struct LineReader {
    reader: BufReader<File>,
    line: u64,
    buf: Vec<u8>,
}

impl LineReader {
    fn open(path: &Path) -> Result<LineReader, Failure> {
        let file = File::open(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        Ok(LineReader {
            reader: BufReader::new(file),
            line: 0,
            buf: Vec::new(),
        })
    }

    /// The next line: its number and its text, or why it is unusable.
    fn next_line(&mut self) -> std::io::Result<Option<(u64, Result<String, String>)>> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() != Some(&b'\n') && n as u64 > MAX_LINE_BYTES {
            // Skip the rest of the overlong line.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let m = (&mut self.reader)
                    .take(1 << 20)
                    .read_until(b'\n', &mut sink)?;
                if m == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
            return Ok(Some((
                self.line,
                Err(format!("longer than {} MiB", MAX_LINE_BYTES >> 20)),
            )));
        }
        let text = String::from_utf8(std::mem::take(&mut self.buf))
            .map_err(|_| "not UTF-8 text".to_owned());
        Ok(Some((self.line, text)))
    }
}

fn read_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(
        ExitClass::Usage,
        format!("cannot read {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text).unwrap();
        f
    }

    fn image() -> Endpoint {
        Endpoint::new("nano-banana/text-to-image").unwrap()
    }

    #[test]
    fn both_forms_are_read_and_bad_lines_are_named() {
        let f = file(
            b"{\"prompt\": \"a fox\"}\n\
              \n\
              {\"endpoint\": \"veo-3.1/text-to-video\", \"input\": {\"prompt\": \"waves\"}, \"id\": \"w1\"}\n\
              not json\n\
              [1, 2]\n\
              {\"input\": {\"prompt\": \"x\"}, \"id\": \"../escape\"}\n\
              {\"input\": {\"prompt\": \"y\"}, \"id\": \"w1\"}\n\
              {\"input\": \"not an object\", \"extra\": 1}\n\
              {\"endpoint\": \"no slash\", \"input\": {}}\n",
        );
        let scan = scan(f.path(), Some(&image())).unwrap();
        assert_eq!(scan.good, 3, "{scan:?}");
        assert_eq!(scan.lines["line-1"], 1);
        assert_eq!(scan.lines["w1"], 3);
        // A bare object with an "input" key that is not an envelope is an input.
        assert_eq!(scan.lines["line-8"], 8);
        let bad: Vec<(u64, &str)> = scan.bad.iter().map(|b| (b.line, b.key.as_str())).collect();
        assert_eq!(
            bad,
            [
                (4, "line-4"),
                (5, "line-5"),
                (6, "line-6"),
                (7, "line-7"),
                (9, "line-9")
            ]
        );
        assert!(scan.bad[3].reason.contains("line 3"), "{:?}", scan.bad[3]);
        let items: Vec<BatchItem> = items(f.path().to_owned(), Some(image()), scan.lines)
            .unwrap()
            .collect();
        let keys: Vec<&str> = items.iter().map(|i| i.key()).collect();
        assert_eq!(keys, ["line-1", "w1", "line-8"]);
        assert_eq!(items[1].endpoint().as_str(), "veo-3.1/text-to-video");
        assert_eq!(items[0].endpoint().as_str(), "nano-banana/text-to-image");
    }

    #[test]
    fn without_an_endpoint_bare_lines_are_bad_not_fatal() {
        let f = file(
            b"{\"prompt\": \"a\"}\n{\"endpoint\": \"m/text-to-image\", \"input\": {\"p\": 1}}\n",
        );
        let scan = scan(f.path(), None).unwrap();
        assert_eq!(scan.good, 1);
        assert_eq!(scan.bad.len(), 1);
        assert!(
            scan.bad[0].reason.contains("--endpoint"),
            "{:?}",
            scan.bad[0]
        );
    }

    #[test]
    fn broken_bytes_and_huge_lines_are_bad_lines() {
        let mut text = b"{\"prompt\": \"\xff\xfe\"}\n".to_vec();
        text.extend(b"{\"prompt\": \"ok\"}");
        let f = file(&text);
        let scan = scan(f.path(), Some(&image())).unwrap();
        assert_eq!(scan.good, 1, "{scan:?}");
        assert_eq!(scan.bad[0].line, 1);
        assert!(scan.bad[0].reason.contains("UTF-8"), "{:?}", scan.bad[0]);
    }

    #[test]
    fn a_missing_file_is_a_usage_error() {
        let e = scan(Path::new("/no/such/file.jsonl"), None).unwrap_err();
        assert_eq!(e.class, ExitClass::Usage);
    }
}
