//! The job's input object, from `--input` (inline JSON, `@file`, `-`) and
//! `--set key=value` flags.
//!
//! Every problem is a one-line usage error that names the flag and what is
//! wrong with it; nothing is sent before the input is whole.

use std::io::Read;

use clap::Args;
use serde_json::{Map, Value};

use crate::exit::Failure;

pub(crate) const INPUT_HELP: &str = "\
Input:
  The job's input is a JSON object; its fields depend on the endpoint.
  --input '{\"prompt\": \"a red fox\"}'   inline JSON
  --input @input.json                 read from a file
  --input -                           read from stdin
  --set prompt=\"a red fox\"            one field (repeatable; applied over --input)
  --set size.width=512                dotted keys make nested objects
  A --set value is read as JSON when it is valid JSON (numbers, true, [1,2],
  {\"a\":1}), else as a string: --set seed=7 gives a number, --set 'seed=\"7\"' a string.";

/// How the job's input is given.
#[derive(Debug, Args, Clone, Default)]
pub struct InputArgs {
    /// The input object: inline JSON, @FILE to read a file, or - for stdin.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub input: Option<String>,

    /// Set one input field, KEY=VALUE (repeatable). Dotted keys make nested
    /// objects; VALUE is JSON if it parses, else a string.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Builds the input object: `--input` (or `{}`), then each `--set` over it
/// in order. `stdin` is read only for `--input -`.
pub fn build(args: &InputArgs, stdin: impl Read) -> Result<Map<String, Value>, Failure> {
    let mut input = match &args.input {
        None => Map::new(),
        Some(source) => parse_object(&read_source(source, stdin)?, source)?,
    };
    for assignment in &args.set {
        apply_set(&mut input, assignment)?;
    }
    Ok(input)
}

/// The text `--input` names: itself, a file's content, or stdin.
fn read_source(source: &str, mut stdin: impl Read) -> Result<String, Failure> {
    if source == "-" {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("--input -: cannot read stdin: {e}")))?;
        return Ok(text);
    }
    if let Some(path) = source.strip_prefix('@') {
        if path.is_empty() {
            return Err(Failure::usage("--input @: a file name must follow the @"));
        }
        return std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("--input @{path}: cannot read the file: {e}")));
    }
    Ok(source.to_owned())
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

/// Applies one `key=value`: the value is JSON when it parses, else a
/// string; `a.b.c` sets a nested field, creating objects on the way.
fn apply_set(input: &mut Map<String, Value>, assignment: &str) -> Result<(), Failure> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(Failure::usage(format!(
            "--set {assignment}: expected KEY=VALUE, e.g. --set prompt=\"a red fox\""
        )));
    };
    let path: Vec<&str> = key.split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(Failure::usage(format!(
            "--set {assignment}: the key {key:?} has an empty part"
        )));
    }
    let value = serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.into()));
    let (last, parents) = match path.split_last() {
        Some(split) => split,
        None => return Err(Failure::usage(format!("--set {assignment}: empty key"))),
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
                    "--set {assignment}: {:?} is already {}, not an object",
                    path[..=depth].join("."),
                    kind(other)
                )));
            }
        };
    }
    target.insert((*last).to_owned(), value);
    Ok(())
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
}
