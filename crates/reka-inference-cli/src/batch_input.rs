//! The input file of `batch`: one JSON object per line, checked line by
//! line, read twice (once to check and index it, once to feed the batch)
//! so that a file of any size never sits in memory.
//!
//! A line is either the input object of `--endpoint`, or an envelope
//! `{"endpoint": ..., "input": {...}, "id": ...}`: an object whose `input`
//! is an object and whose other keys are only `endpoint` and `id`. The id
//! names the line's files and results (default `line-<N>`); it may not
//! name one of the files the batch keeps in its directory. Blank lines
//! are skipped, and a UTF-8 byte order mark before the first line; a line
//! that cannot be run is reported with its number and skipped, never fatal
//! to the others.
//!
//! A string value of a line's input that starts with `@` names a local
//! file (`"image_url": "@photos/0001.png"`), relative to the input file's
//! directory: checked (a regular file within the inline limit) when the
//! file is scanned, hashed when its item is made (once per file per run),
//! read and sent as a `data:` URI only when the item is submitted. `\@`
//! at the start of a value is a literal `@`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use reka_inference::Endpoint;
use reka_inference::batch::{BatchItem, FileDigest};
use serde_json::{Map, Value};

use crate::exit::{ExitClass, Failure};

/// The names the batch keeps in its directory (`DIR`), and the prefixes
/// of the files SQLite and the results rewrite put beside them
/// (`journal.sqlite-wal`, `results.jsonl.tmp`,
/// `results.jsonl.rows`): no line id may be one, in
/// any case (a case-insensitive file system makes `Journal.SQLite` the
/// journal), and no id may start with a dot (`.lock`, `.input.jsonl.part`).
pub const RESERVED_NAMES: [&str; 3] = ["journal.sqlite", "results.jsonl", "input.jsonl"];

/// Local files one line's input may name, at most.
const MAX_FILES_PER_LINE: usize = 16;

/// How deep a line's input is searched for `@` values.
const MAX_DEPTH: usize = 32;

/// Where the `@` files of the lines are, and how large they may be.
#[derive(Debug, Clone)]
pub struct FileRules {
    /// Relative paths are taken from here (the input file's directory).
    pub base: PathBuf,
    /// The largest file sent inline.
    pub max_bytes: u64,
}

/// The longest line read (a data: URI image fits; a file without line
/// breaks does not fill the memory).
const MAX_LINE_BYTES: u64 = 64 << 20;

/// The UTF-8 byte order mark.
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

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
    /// The endpoints of the good items.
    pub endpoints: std::collections::BTreeSet<String>,
}

/// Where the lines of the input are read from: the file itself when it is
/// a regular file (read twice, never held in memory), else a copy of it.
///
/// A pipe (`batch <(...)`, `cat in.jsonl | batch -`) or a FIFO can be read
/// only once, so it is first copied, as it comes, into `DIR/input.jsonl`
/// (or a temporary file for `--dry-run`), and the copy is read. Anything
/// else that is not a regular file (a directory, a device such as
/// `/dev/zero`, a socket) is refused at once.
#[derive(Debug)]
pub struct Source {
    /// The file whose lines are read.
    pub path: PathBuf,
    /// The directory `@file` values are relative to: the input file's, or
    /// the current directory for a pipe.
    pub base: PathBuf,
    /// Whether the lines were copied from a pipe, FIFO or stdin.
    pub copied: bool,
    /// A copy to remove when done (`--dry-run`).
    temporary: bool,
}

impl Drop for Source {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What the input argument names.
#[derive(Debug, PartialEq)]
pub enum InputKind {
    /// A regular file: read where it is.
    File,
    /// A pipe or FIFO (or `-`, stdin): copied first.
    Pipe,
}

impl Source {
    /// What `input` is: `-` is stdin; a path must be a regular file, a
    /// pipe or a FIFO.
    pub fn kind(input: &Path) -> Result<InputKind, Failure> {
        if input.as_os_str() == "-" {
            return Ok(InputKind::Pipe);
        }
        let meta = std::fs::metadata(input)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", input.display())))?;
        if meta.is_file() {
            return Ok(InputKind::File);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_fifo() {
                return Ok(InputKind::Pipe);
            }
        }
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file, a pipe or a FIFO"
        };
        Err(Failure::usage(format!(
            "{} is {what}: give a file of JSON lines (or - for stdin)",
            input.display()
        )))
    }

    /// A regular file, read where it is.
    pub fn file(input: &Path) -> Source {
        let base = match input.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Source {
            path: input.to_owned(),
            base,
            copied: false,
            temporary: false,
        }
    }

    /// Copies a pipe, FIFO or stdin into `copy` (through a `.part` file
    /// renamed when whole), once; `temporary` copies are removed when the
    /// source is dropped.
    pub fn copy(input: &Path, copy: PathBuf, temporary: bool) -> Result<Source, Failure> {
        let part = copy.with_file_name(format!(
            ".{}.part",
            copy.file_name()
                .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned())
        ));
        let write_failed = |e: std::io::Error| {
            Failure::new(
                ExitClass::Other,
                format!("cannot copy the input into {}: {e}", part.display()),
            )
        };
        let mut out = File::create(&part).map_err(write_failed)?;
        let copied = if input.as_os_str() == "-" {
            std::io::copy(&mut std::io::stdin().lock(), &mut out)
        } else {
            // A FIFO's open waits for its writer, as any reader's does.
            let mut from = File::open(input)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", input.display())))?;
            std::io::copy(&mut from, &mut out)
        };
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&part);
            return Err(read_failure(input, e));
        }
        out.sync_all().map_err(write_failed)?;
        drop(out);
        std::fs::rename(&part, &copy).map_err(write_failed)?;
        Ok(Source {
            path: copy,
            base: PathBuf::from("."),
            copied: true,
            temporary,
        })
    }
}

/// Reads the whole file once: checks every line (and the local files it
/// names) and indexes the keys.
pub fn scan(path: &Path, endpoint: Option<&Endpoint>, files: &FileRules) -> Result<Scan, Failure> {
    let mut scan = Scan::default();
    let mut reader = LineReader::open(path)?;
    while let Some((line, text)) = reader.next_line().map_err(|e| read_failure(path, e))? {
        let parsed = text
            .map_err(|reason| BadLine {
                line,
                key: format!("line-{line}"),
                reason,
            })
            .and_then(|text| parse(line, &text, endpoint, files))
            .and_then(|parsed| match parsed {
                Some(p) => check_files(line, &p, files).map(|()| Some(p)),
                None => Ok(None),
            });
        match parsed {
            Ok(None) => {}
            Ok(Some(Parsed { item, .. })) => {
                if let Some(first) = scan.lines.get(item.key()) {
                    scan.bad.push(BadLine {
                        line,
                        key: format!("line-{line}"),
                        reason: format!("id {:?} is also the id of line {first}", item.key()),
                    });
                } else {
                    scan.lines.insert(item.key().to_owned(), line);
                    scan.endpoints.insert(item.endpoint().as_str().to_owned());
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
/// are good (a line that is a duplicate id is left out here too). Their
/// local files are not attached: see [`with_files`].
pub fn items(
    path: PathBuf,
    endpoint: Option<Endpoint>,
    lines: HashMap<String, u64>,
    files: FileRules,
) -> Result<Items, Failure> {
    let reader = LineReader::open(&path)?;
    Ok(Items {
        reader,
        endpoint,
        remaining: lines.len(),
        lines,
        files,
    })
}

/// The good lines of the input, in file order, each with the local files
/// its input names.
pub struct Items {
    reader: LineReader,
    endpoint: Option<Endpoint>,
    lines: HashMap<String, u64>,
    /// Good lines not yielded yet: the size hint, so that a batch stopped
    /// early can count what it never pulled.
    remaining: usize,
    files: FileRules,
}

/// An item, and the local files to put into its input (JSON pointer,
/// path).
pub struct Parsed {
    pub item: BatchItem,
    pub files: Vec<(String, PathBuf)>,
}

impl Iterator for Items {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        loop {
            let (line, text) = match self.reader.next_line() {
                Ok(Some(x)) => x,
                // The file changed or broke since it was scanned: stop here;
                // what was not read is not run (the summary says so).
                Ok(None) | Err(_) => return None,
            };
            let Ok(text) = text else { continue };
            if let Ok(Some(parsed)) = parse(line, &text, self.endpoint.as_ref(), &self.files)
                && self.lines.get(parsed.item.key()) == Some(&line)
            {
                self.remaining = self.remaining.saturating_sub(1);
                return Some(parsed);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// Lines whose files could not be hashed when their items were made
/// (removed or grown since the scan): reported as invalid lines.
pub type LateBadLines = Arc<Mutex<Vec<BadLine>>>;

/// The batch's items with their local files hashed and attached, each
/// file hashed once however many lines name it. A line whose file cannot
/// be hashed now is left out and recorded in `late`.
pub fn with_files(
    items: Items,
    lines: HashMap<String, u64>,
    late: LateBadLines,
) -> impl futures::Stream<Item = BatchItem> + Send {
    use futures::StreamExt;
    let max_bytes = items.files.max_bytes;
    let digests: Arc<tokio::sync::Mutex<HashMap<PathBuf, FileDigest>>> = Arc::default();
    futures::stream::iter(items)
        .then(move |parsed| {
            let digests = digests.clone();
            let line = lines.get(parsed.item.key()).copied().unwrap_or(0);
            async move {
                let Parsed { mut item, files } = parsed;
                for (pointer, path) in files {
                    let mut cache = digests.lock().await;
                    let digest = match cache.get(&path) {
                        Some(d) => d.clone(),
                        None => match FileDigest::of_path(&path, max_bytes).await {
                            Ok(d) => {
                                cache.insert(path.clone(), d.clone());
                                d
                            }
                            Err(e) => {
                                return Err(BadLine {
                                    line,
                                    key: item.key().to_owned(),
                                    reason: format!("{}: {e}", field_name(&pointer)),
                                });
                            }
                        },
                    };
                    let key = item.key().to_owned();
                    item = item.with_file(&pointer, &digest).map_err(|e| BadLine {
                        line,
                        key,
                        reason: e.to_string(),
                    })?;
                }
                Ok(item)
            }
        })
        .filter_map(move |made| {
            let late = late.clone();
            async move {
                match made {
                    Ok(item) => Some(item),
                    Err(bad) => {
                        late.lock().unwrap_or_else(|e| e.into_inner()).push(bad);
                        None
                    }
                }
            }
        })
}

/// Checks the files a line names, from their metadata only: each a
/// regular file within the limit.
fn check_files(line: u64, parsed: &Parsed, rules: &FileRules) -> Result<(), BadLine> {
    for (pointer, path) in &parsed.files {
        let problem = match std::fs::metadata(path) {
            Err(e) => Some(format!("cannot read {}: {e}", path.display())),
            Ok(m) if !m.is_file() => Some(format!("{} is not a regular file", path.display())),
            Ok(m) if m.len() > rules.max_bytes => Some(format!(
                "{} is {} bytes, over the limit of {} bytes (--max-inline-bytes)",
                path.display(),
                m.len(),
                rules.max_bytes
            )),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            return Err(BadLine {
                line,
                key: parsed.item.key().to_owned(),
                reason: format!("{}: {problem}", field_name(pointer)),
            });
        }
    }
    Ok(())
}

/// `image_url` for `/image_url`, `images.0` for `/images/0`.
fn field_name(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// Finds the `@path` values of an input (files, with their JSON pointers)
/// and turns `\@text` into `@text`.
fn find_files(
    value: &mut Value,
    pointer: &mut String,
    depth: usize,
    base: &Path,
    found: &mut Vec<(String, PathBuf)>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    match value {
        Value::String(s) => {
            if let Some(path) = s.strip_prefix('@') {
                if path.is_empty() {
                    return Err(format!(
                        "{}: a file name must follow the @ (for a literal @, write \\@)",
                        field_name(pointer)
                    ));
                }
                if found.len() == MAX_FILES_PER_LINE {
                    return Err(format!("more than {MAX_FILES_PER_LINE} @files in one line"));
                }
                found.push((pointer.clone(), base.join(path)));
            } else if let Some(text) = s.strip_prefix("\\@") {
                *s = format!("@{text}");
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                find_files(item, pointer, depth + 1, base, found)?;
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                find_files(item, pointer, depth + 1, base, found)?;
                pointer.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether an id names one of the files the batch keeps in its directory.
pub fn is_reserved_id(id: &str) -> bool {
    let lower = id.to_ascii_lowercase();
    lower.starts_with('.') || RESERVED_NAMES.iter().any(|name| lower.starts_with(name))
}

/// One line: `Ok(None)` when blank.
fn parse(
    line: u64,
    text: &str,
    endpoint: Option<&Endpoint>,
    files: &FileRules,
) -> Result<Option<Parsed>, BadLine> {
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
    let (key, endpoint_text, mut input) = match envelope(&object) {
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
    if is_reserved_id(&key) {
        return Err(bad(
            &default_key,
            format!(
                "id {key:?} names a file the batch keeps in its directory (.lock, journal.sqlite*, \
                 results.jsonl*, input.jsonl): choose another"
            ),
        ));
    }
    let mut found = Vec::new();
    find_files(&mut input, &mut String::new(), 0, &files.base, &mut found)
        .map_err(|reason| bad(&key_for_errors, reason))?;
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
    let item =
        BatchItem::new(key, endpoint, input).map_err(|e| bad(&key_for_errors, e.to_string()))?;
    Ok(Some(Parsed { item, files: found }))
}

/// The key a bad line is reported under: its id when usable as one.
fn key_or(key: &str, default: &str) -> String {
    let usable =
        !is_reserved_id(key) && BatchItem::new(key, "m/c", Value::Object(Map::new())).is_ok();
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
        let mut bytes = std::mem::take(&mut self.buf);
        if self.line == 1 && bytes.starts_with(UTF8_BOM) {
            // Editors on Windows start UTF-8 files with a byte order mark.
            bytes.drain(..UTF8_BOM.len());
        }
        let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned());
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

    fn rules() -> FileRules {
        FileRules {
            base: PathBuf::from("."),
            max_bytes: 1 << 20,
        }
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
        let scan = scan(f.path(), Some(&image()), &rules()).unwrap();
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
        let items: Vec<BatchItem> = items(f.path().to_owned(), Some(image()), scan.lines, rules())
            .unwrap()
            .map(|p| p.item)
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
        let scan = scan(f.path(), None, &rules()).unwrap();
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
        let scan = scan(f.path(), Some(&image()), &rules()).unwrap();
        assert_eq!(scan.good, 1, "{scan:?}");
        assert_eq!(scan.bad[0].line, 1);
        assert!(scan.bad[0].reason.contains("UTF-8"), "{:?}", scan.bad[0]);
    }

    #[test]
    fn a_missing_file_is_a_usage_error() {
        let e = scan(Path::new("/no/such/file.jsonl"), None, &rules()).unwrap_err();
        assert_eq!(e.class, ExitClass::Usage);
    }

    #[test]
    fn a_byte_order_mark_before_the_first_line_is_skipped() {
        let f = file(b"\xef\xbb\xbf{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n");
        let found = scan(f.path(), Some(&image()), &rules()).unwrap();
        assert_eq!(found.good, 2, "{found:?}");
        assert!(found.bad.is_empty());
        // Only before the first line: elsewhere it is not JSON.
        let f = file(b"{\"prompt\": \"a\"}\n\xef\xbb\xbf{\"prompt\": \"b\"}\n");
        assert_eq!(
            scan(f.path(), Some(&image()), &rules()).unwrap().bad.len(),
            1
        );
    }

    #[test]
    fn ids_naming_the_batch_own_files_are_refused_in_any_case() {
        let ids = [
            "journal.sqlite",
            "journal.sqlite-wal",
            "journal.sqlite-shm",
            "Journal.SQLite",
            "results.jsonl",
            "RESULTS.JSONL.tmp",
            ".lock",
            ".hidden",
            "input.jsonl",
        ];
        let mut text = String::new();
        for id in ids {
            text.push_str(&format!(
                "{{\"input\": {{\"prompt\": \"x\"}}, \"id\": \"{id}\"}}\n"
            ));
        }
        text.push_str("{\"input\": {\"prompt\": \"x\"}, \"id\": \"journal\"}\n");
        let f = file(text.as_bytes());
        let scan = scan(f.path(), Some(&image()), &rules()).unwrap();
        assert_eq!(scan.good, 1, "{scan:?}");
        assert!(scan.lines.contains_key("journal"));
        assert_eq!(scan.bad.len(), ids.len());
        for (bad, id) in scan.bad.iter().zip(ids) {
            assert_eq!(bad.key, format!("line-{}", bad.line), "{bad:?}");
            assert!(bad.reason.contains(id), "{bad:?}");
            assert!(bad.reason.contains("choose another"), "{bad:?}");
        }
    }

    #[test]
    fn at_values_name_files_relative_to_the_input_and_are_checked_when_scanned() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("photos")).unwrap();
        std::fs::write(dir.path().join("photos/a.png"), b"\x89PNG\r\n\x1a\n").unwrap();
        std::fs::write(dir.path().join("big.png"), vec![0u8; 2048]).unwrap();
        let input = dir.path().join("in.jsonl");
        std::fs::write(
            &input,
            concat!(
                "{\"prompt\": \"\\\\@home\", \"image_url\": \"@photos/a.png\", \"more\": [\"@photos/a.png\"]}\n",
                "{\"image_url\": \"@photos/none.png\"}\n",
                "{\"image_url\": \"@photos\"}\n",
                "{\"image_url\": \"@big.png\"}\n",
                "{\"image_url\": \"@\"}\n",
            ),
        )
        .unwrap();
        let rules = FileRules {
            base: dir.path().to_owned(),
            max_bytes: 1024,
        };
        let scan = scan(&input, Some(&image()), &rules).unwrap();
        assert_eq!(scan.good, 1, "{scan:?}");
        let reasons: Vec<&str> = scan.bad.iter().map(|b| b.reason.as_str()).collect();
        assert!(
            reasons[0].starts_with("image_url: cannot read") && reasons[0].contains("none.png"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("not a regular file"), "{reasons:?}");
        assert!(
            reasons[2].contains("over the limit of 1024 bytes"),
            "{reasons:?}"
        );
        assert!(
            reasons[3].contains("a file name must follow the @"),
            "{reasons:?}"
        );
        let parsed: Vec<Parsed> = items(input.clone(), Some(image()), scan.lines, rules)
            .unwrap()
            .collect();
        assert_eq!(parsed.len(), 1);
        let files: Vec<(&str, PathBuf)> = parsed[0]
            .files
            .iter()
            .map(|(p, f)| (p.as_str(), f.clone()))
            .collect();
        assert_eq!(
            files,
            [
                ("/image_url", dir.path().join("photos/a.png")),
                ("/more/0", dir.path().join("photos/a.png"))
            ]
        );
        assert_eq!(parsed[0].item.input()["prompt"], "@home");
    }
}
