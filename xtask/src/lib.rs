//! Workspace automation for reka-inference.
//!
//! `cargo xtask generate` turns the vendored OpenAPI document into the
//! low-level client crate; `cargo xtask diff` summarises what changed
//! between two versions of the document. The pieces are a library so that
//! the tests can drive them without a subprocess:
//!
//! - [`normalize`]: upstream OpenAPI 3.1 (FastAPI's form) to the 3.0.3 subset
//!   progenitor accepts, refusing what cannot be converted.
//! - [`generate`]: progenitor, the status-type replacement, formatting.
//! - [`diff`]: a reviewer's summary of two spec versions, breaking changes marked.
//! - [`shape`]: the public shape of generated code, for snapshots.

#![deny(missing_docs)]

pub mod diff;
pub mod generate;
pub mod normalize;
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

/// Reads and parses a JSON OpenAPI document.
pub fn load_spec(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}
