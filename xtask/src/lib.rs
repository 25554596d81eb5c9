//! Workspace automation for reka-inference.
//!
//! `cargo xtask generate` turns the vendored OpenAPI document into the
//! low-level client crate; `cargo xtask diff` summarises what changed
//! between two versions of the document. The pieces are a library so that
//! the tests can drive them without a subprocess:
//!
//! - [`normalize`]: upstream OpenAPI 3.1 (FastAPI's form) to the 3.0.3 subset
//!   progenitor accepts, leaving out (named) what it cannot express.
//! - [`generate`]: progenitor, the status-type replacement, formatting.
//! - [`operations`]: the table of operations written beside the client.
//! - [`form_methods`]: the form (multipart and urlencoded) operations and
//!   renamed parameters, on progenitor's output.
//! - [`diff`]: a reviewer's summary of two spec versions, breaking changes marked.
//! - [`shape`]: the public shape of generated code, for snapshots.
//! - [`guard`]: turns a generator panic into an error.
//! - [`corpus`]: generates (and compiles) every document of a directory.

#![deny(missing_docs)]

pub mod corpus;
pub mod diff;
pub mod form_methods;
pub mod generate;
pub mod guard;
pub mod normalize;
pub mod operations;
pub mod shape;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The vendored document, relative to the workspace root.
pub const SPEC_PATH: &str = "openapi/reka-inference.json";

/// The generated client, relative to the workspace root.
pub const GENERATED_PATH: &str = "crates/reka-inference-api/src/generated.rs";

/// Reads and parses an OpenAPI document, JSON or YAML.
///
/// A `.json` file, or any file whose text starts with `{`, is read as
/// JSON; anything else as YAML 1.2 (core schema, so `OFF`, `no` and `y`
/// stay strings, as the document's author wrote them).
pub fn load_spec(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{');
    if is_json {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    } else {
        parse_yaml(&text).with_context(|| format!("{} is not valid YAML", path.display()))
    }
}

/// Parses one YAML 1.2 document into JSON.
pub fn parse_yaml(text: &str) -> Result<Value> {
    use yaml_rust2::YamlLoader;
    // The loader's internals have `unwrap`s: a malformed file is an error,
    // never a crash.
    let docs = guard::guarded(|| YamlLoader::load_from_str(text))
        .map_err(|panic| anyhow::anyhow!("the YAML parser panicked: {panic}"))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match docs.as_slice() {
        [doc] => yaml_to_json(doc, ""),
        [] => anyhow::bail!("the file holds no YAML document"),
        _ => anyhow::bail!("the file holds {} YAML documents, not one", docs.len()),
    }
}

fn yaml_to_json(yaml: &yaml_rust2::Yaml, at: &str) -> Result<Value> {
    use yaml_rust2::Yaml;
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(text) => {
            // `1e-08` and `.5` are floats in YAML 1.2; a value JSON cannot
            // hold (`.nan`, `.inf`) is kept as the text the author wrote.
            match yaml.as_f64().and_then(serde_json::Number::from_f64) {
                Some(n) => Value::Number(n),
                None => Value::String(text.clone()),
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{at}/{i}")))
                .collect::<Result<_>>()?,
        ),
        Yaml::Hash(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                // OpenAPI keys are strings; YAML reads `200:` as a number.
                let key = match key {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".to_owned(),
                    _ => anyhow::bail!("{at}: a mapping key that is not a scalar"),
                };
                let child = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                let value = yaml_to_json(value, &child)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            anyhow::bail!(
                "{}: an unresolved alias or invalid value",
                if at.is_empty() { "/" } else { at }
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_is_read_with_the_core_schema() {
        let doc = parse_yaml(
            "openapi: 3.1.0\nresponses:\n  200: {description: ok}\nenum: [OFF, no, y, true]\nmin: 1e-08\nn: 3\nanchor: &a {x: 1}\ncopy: *a\n",
        )
        .unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["responses"]["200"]["description"], "ok");
        assert_eq!(doc["enum"], serde_json::json!(["OFF", "no", "y", true]));
        assert_eq!(doc["min"].as_f64(), Some(1e-08));
        assert_eq!(doc["n"], 3);
        assert_eq!(doc["copy"], doc["anchor"]);
    }

    #[test]
    fn malformed_yaml_is_an_error() {
        assert!(parse_yaml("a: [1, 2").is_err());
        assert!(parse_yaml("a: 1\n---\nb: 2\n").is_err());
    }
}
