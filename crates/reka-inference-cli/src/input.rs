//! The job's input object, from `--input` (inline JSON, `@file`, `-`) and
//! `--set` flags: `key=value`, `key=@file` (a local file sent inline as a
//! `data:` URI), `key:=json` and `key:=@file.json` (JSON, inline or from a
//! file), `key=\@text` (a literal leading `@`).
//!
//! Every problem is a one-line usage error that names the flag and what is
//! wrong with it; nothing is sent before the input is whole. Files are
//! checked before they are read (a regular file, within its limit), so a
//! FIFO, a device or a huge file neither blocks nor fills the memory.

use std::io::Read;

use clap::Args;
use reka_inference::InputFile;
use reka_inference::input::{DEFAULT_MAX_INLINE_BYTES, InputFileError};
use serde_json::{Map, Value};

use crate::exit::Failure;

pub(crate) const INPUT_HELP: &str = "\
Input:
  The job's input is a JSON object; its fields depend on the endpoint.
  --input '{\"prompt\": \"a red fox\"}'   inline JSON (literal: an @ in it is just text)
  --input @input.json                 the whole input object, read from a file
  --input -                           the whole input object, read from stdin
  --set prompt=\"a red fox\"            one field (repeatable; applied over --input in order)
  --set size.width=512                dotted keys make nested objects
  --set image_url=@photo.png          a local file, sent inline as a data: URI whose media
                                      type is read from the file's bytes (at most
                                      --max-inline-bytes, default 20 MiB)
  --set 'options:=@options.json'      the JSON in a file, as the field's value
  --set 'seed:=7'                     the value must be JSON (an error if it is not)
  --set 'prompt=\\@home'               a literal leading @ (\"@home\")
  A --set KEY=VALUE value is read as JSON when it is valid JSON (numbers, true, [1,2],
  {\"a\":1}), else as a string: --set seed=7 gives a number, --set 'seed=\"7\"' a string.
  A file that is missing, unreadable, not a regular file (a directory, a FIFO,
  /dev/zero) or over the limit is a usage error (exit 2): nothing is sent.";

/// The largest `--input @FILE` or `--input -` read: an input object, not a
/// file store (use `--set KEY=@FILE` for files).
const MAX_INPUT_BYTES: u64 = 64 << 20;

/// How the job's input is given.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// The input object: inline JSON, @FILE to read a file, or - for stdin.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub input: Option<String>,

    /// Set one input field (repeatable): KEY=VALUE (JSON if it parses, else
    /// a string), KEY=@FILE (a local file as a data: URI), KEY:=JSON,
    /// KEY:=@FILE.json, KEY=\@TEXT (a literal @). Dotted keys make nested
    /// objects.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// The largest file --set KEY=@FILE sends inline, in bytes (a data: URI
    /// is a third larger).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INLINE_BYTES)]
    pub max_inline_bytes: u64,
}

impl Default for InputArgs {
    fn default() -> Self {
        InputArgs {
            input: None,
            set: Vec::new(),
            max_inline_bytes: DEFAULT_MAX_INLINE_BYTES,
        }
    }
}

/// Builds the input object: `--input` (or `{}`), then each `--set` over it
/// in order. `stdin` is read only for `--input -`.
pub fn build(args: &InputArgs, stdin: impl Read) -> Result<Map<String, Value>, Failure> {
    let mut input = match &args.input {
        None => Map::new(),
        Some(source) => parse_object(&read_source(source, stdin)?, source)?,
    };
    for assignment in &args.set {
        apply_set(&mut input, assignment, args.max_inline_bytes)?;
    }
    Ok(input)
}

/// The text `--input` names: itself, a file's content, or stdin.
fn read_source(source: &str, stdin: impl Read) -> Result<String, Failure> {
    if source == "-" {
        return read_capped(stdin, "--input - (stdin)");
    }
    if let Some(path) = source.strip_prefix('@') {
        if path.is_empty() {
            return Err(Failure::usage("--input @: a file name must follow the @"));
        }
        let what = format!("--input @{path}");
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::usage(format!("{what}: cannot read the file: {e}")))?;
        return read_capped(file, &what);
    }
    Ok(source.to_owned())
}

/// Reads text of at most [`MAX_INPUT_BYTES`].
fn read_capped(reader: impl Read, what: &str) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::usage(format!("{what}: cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Failure::usage(format!(
            "{what}: larger than {} MiB; an input object is small (send files with --set KEY=@FILE)",
            MAX_INPUT_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| Failure::usage(format!("{what}: not UTF-8 text")))
}

fn parse_object(text: &str, source: &str) -> Result<Map<String, Value>, Failure> {
    let what = match source {
        "-" => "--input - (stdin)".to_owned(),
        s if s.starts_with('@') => format!("--input {s}"),
        _ => "--input".to_owned(),
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Failure::usage(format!(
            "{what}: the input must be a JSON object ({{...}}), not {}",
            kind(&other)
        ))),
        Err(e) => Err(Failure::usage(format!("{what}: not valid JSON: {e}"))),
    }
}

/// Applies one `--set`. `key=value`: the value is JSON when it parses,
/// else a string; `key=@path` a file as a data: URI; `key=\@text` the
/// string `@text`; `key:=json` JSON only, `key:=@path` the JSON of a file.
/// `a.b.c` sets a nested field, creating objects on the way.
fn apply_set(
    input: &mut Map<String, Value>,
    assignment: &str,
    max_inline_bytes: u64,
) -> Result<(), Failure> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(Failure::usage(format!(
            "--set {assignment}: expected KEY=VALUE, e.g. --set prompt=\"a red fox\""
        )));
    };
    let flag = format!("--set {assignment}");
    let (key, value) = match key.strip_suffix(':') {
        Some(key) => (key, json_value(&flag, raw, max_inline_bytes)?),
        None => (key, plain_value(&flag, raw, max_inline_bytes)?),
    };
    let path: Vec<&str> = key.split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(Failure::usage(format!(
            "{flag}: the key {key:?} has an empty part"
        )));
    }
    let (last, parents) = match path.split_last() {
        Some(split) => split,
        None => return Err(Failure::usage(format!("{flag}: empty key"))),
    };
    let mut target = input;
    for (depth, part) in parents.iter().enumerate() {
        let slot = target
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        target = match slot {
            Value::Object(map) => map,
            other => {
                return Err(Failure::usage(format!(
                    "{flag}: {:?} is already {}, not an object",
                    path[..=depth].join("."),
                    kind(other)
                )));
            }
        };
    }
    target.insert((*last).to_owned(), value);
    Ok(())
}

/// The value of `key=raw`.
fn plain_value(flag: &str, raw: &str, max_inline_bytes: u64) -> Result<Value, Failure> {
    if let Some(path) = raw.strip_prefix('@') {
        let file = read_file(flag, path, max_inline_bytes)?;
        return Ok(Value::String(file.to_data_uri()));
    }
    if let Some(text) = raw.strip_prefix("\\@") {
        return Ok(Value::String(format!("@{text}")));
    }
    Ok(serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.into())))
}

/// The value of `key:=raw`: JSON, inline or from a file.
fn json_value(flag: &str, raw: &str, max_inline_bytes: u64) -> Result<Value, Failure> {
    if let Some(path) = raw.strip_prefix('@') {
        let file = read_file(flag, path, max_inline_bytes)?;
        return serde_json::from_slice(file.bytes())
            .map_err(|e| Failure::usage(format!("{flag}: {path} is not valid JSON: {e}")));
    }
    serde_json::from_str(raw).map_err(|e| {
        Failure::usage(format!(
            "{flag}: not valid JSON ({e}); KEY:=VALUE takes JSON (use KEY=VALUE for text)"
        ))
    })
}

/// Reads a local file named by `@path`, within the inline limit.
fn read_file(flag: &str, path: &str, max_inline_bytes: u64) -> Result<InputFile, Failure> {
    if path.is_empty() {
        return Err(Failure::usage(format!(
            "{flag}: a file name must follow the @ (for a literal @, write \\@)"
        )));
    }
    InputFile::from_path_blocking(path, max_inline_bytes).map_err(|e| {
        let hint = match e {
            InputFileError::TooLarge { .. } => " (--max-inline-bytes)",
            _ => "",
        };
        Failure::usage(format!("{flag}: {e}{hint}; nothing was sent"))
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(input: Option<&str>, set: &[&str]) -> InputArgs {
        InputArgs {
            input: input.map(str::to_owned),
            set: set.iter().map(|s| (*s).to_owned()).collect(),
            ..InputArgs::default()
        }
    }

    fn build_ok(input: Option<&str>, set: &[&str]) -> Value {
        Value::Object(build(&args(input, set), std::io::empty()).unwrap())
    }

    fn build_err(input: Option<&str>, set: &[&str]) -> String {
        build(&args(input, set), std::io::empty())
            .unwrap_err()
            .message
    }

    #[test]
    fn set_values_are_json_when_they_parse() {
        let v = build_ok(
            None,
            &[
                "prompt=a lighthouse at dusk",
                "seed=7",
                "hd=true",
                "tags=[\"a\",1]",
                "quoted=\"7\"",
                "empty=",
                "eq=a=b",
            ],
        );
        assert_eq!(
            v,
            json!({"prompt": "a lighthouse at dusk", "seed": 7, "hd": true, "tags": ["a", 1],
                   "quoted": "7", "empty": "", "eq": "a=b"})
        );
    }

    #[test]
    fn dotted_keys_nest_and_merge_over_input() {
        let v = build_ok(
            Some(r#"{"prompt": "old", "size": {"width": 1, "height": 2}}"#),
            &["prompt=new", "size.width=512", "style.colour.primary=red"],
        );
        assert_eq!(
            v,
            json!({"prompt": "new", "size": {"width": 512, "height": 2},
                   "style": {"colour": {"primary": "red"}}})
        );
    }

    #[test]
    fn stdin_and_files_are_read() {
        let a = args(Some("-"), &["b=2"]);
        let v = build(&a, &b"{\"a\": 1}"[..]).unwrap();
        assert_eq!(Value::Object(v), json!({"a": 1, "b": 2}));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        std::fs::write(&path, r#"{"prompt": "from a file"}"#).unwrap();
        let v = build_ok(Some(&format!("@{}", path.display())), &[]);
        assert_eq!(v, json!({"prompt": "from a file"}));
    }

    #[test]
    fn problems_name_the_flag() {
        assert!(build_err(Some("{nope"), &[]).starts_with("--input: not valid JSON"));
        assert!(build_err(Some("[1]"), &[]).contains("not an array"));
        assert!(
            build_err(Some("@/no/such/file.json"), &[])
                .starts_with("--input @/no/such/file.json: cannot read")
        );
        assert!(build_err(None, &["novalue"]).starts_with("--set novalue: expected KEY=VALUE"));
        assert!(build_err(None, &["a..b=1"]).contains("empty part"));
        assert!(build_err(None, &["a=1", "a.b=2"]).contains("\"a\" is already a number"));
        assert!(!build_err(Some("{nope"), &[]).contains('\n'));
    }

    #[test]
    fn at_reads_a_file_as_a_data_uri_sniffed_from_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // A PNG named .jpg: the bytes decide.
        let path = dir.path().join("photo.jpg");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        let v = build_ok(None, &[&format!("image_url=@{}", path.display())]);
        assert_eq!(
            v["image_url"],
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
        );
    }

    #[test]
    fn colon_equals_takes_json_only_inline_or_from_a_file_and_backslash_escapes_the_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("options.json");
        std::fs::write(&path, r#"{"steps": 30, "styles": ["a", "b"]}"#).unwrap();
        let v = build_ok(
            None,
            &[
                &format!("options:=@{}", path.display()),
                "seed:=7",
                "prompt=\\@home, a poster",
                "plain=a@b",
            ],
        );
        assert_eq!(
            v,
            json!({"options": {"steps": 30, "styles": ["a", "b"]}, "seed": 7,
                   "prompt": "@home, a poster", "plain": "a@b"})
        );
        assert!(build_err(None, &["seed:=seven"]).contains("not valid JSON"));
        std::fs::write(&path, "not json").unwrap();
        let e = build_err(None, &[&format!("o:=@{}", path.display())]);
        assert!(e.contains("is not valid JSON"), "{e}");
    }

    #[test]
    fn a_missing_a_directory_a_device_or_an_oversized_file_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.png");
        let e = build(
            &args(None, &[&format!("image_url=@{}", missing.display())]),
            std::io::empty(),
        )
        .unwrap_err();
        assert_eq!(e.class, crate::exit::ExitClass::Usage);
        assert!(e.message.contains("nope.png"), "{}", e.message);
        let e = build_err(None, &[&format!("image_url=@{}", dir.path().display())]);
        assert!(e.contains("a directory"), "{e}");
        #[cfg(unix)]
        {
            let e = build_err(None, &["image_url=@/dev/zero"]);
            assert!(e.contains("a character device, not a regular file"), "{e}");
        }
        let big = dir.path().join("big.png");
        std::fs::File::create(&big).unwrap().set_len(2048).unwrap();
        let mut a = args(None, &[&format!("image_url=@{}", big.display())]);
        a.max_inline_bytes = 1024;
        let e = build(&a, std::io::empty()).unwrap_err().message;
        assert!(
            e.contains("2.0 KiB (2048 bytes), over the limit of 1.0 KiB (1024 bytes)"),
            "{e}"
        );
        assert!(e.contains("--max-inline-bytes"), "{e}");
        assert!(build_err(None, &["image_url=@"]).contains("\\@"));
    }

    #[test]
    fn an_endless_input_is_cut_at_its_limit() {
        let e = build(&args(Some("-"), &[]), std::io::repeat(b' ')).unwrap_err();
        assert!(e.message.contains("larger than 64 MiB"), "{}", e.message);
    }
}
