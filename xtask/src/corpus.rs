//! `cargo xtask corpus DIR [--compile]`: generates a client for every
//! OpenAPI document of a directory and, with `--compile`, type-checks each
//! in a scratch crate.
//!
//! The corpus is other people's published documents: it checks that the
//! normaliser and generator handle what they were not written against.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::generate::{generate_with, standalone_settings};
use crate::normalize::Report;

/// What happened to one document.
pub struct Outcome {
    /// The file name.
    pub name: String,
    /// The normaliser's report, when the document generated.
    pub report: Option<Report>,
    /// The generated code, when the document generated.
    pub code: Option<String>,
    /// Why the document did not generate (or did not compile).
    pub failure: Option<String>,
    /// `Some(true)` when it compiled, `Some(false)` when not, `None` when
    /// not tried.
    pub compiled: Option<bool>,
}

impl Outcome {
    /// One line: generated / compiled / dropped operations / reason.
    pub fn line(&self) -> String {
        let mut line = format!("{}: ", self.name);
        match &self.report {
            None => line.push_str("NOT generated"),
            Some(report) => {
                line.push_str("generated");
                match self.compiled {
                    Some(true) => line.push_str(", compiled"),
                    Some(false) => line.push_str(", NOT compiled"),
                    None => {}
                }
                let _ = write!(
                    line,
                    ", {} operation{} dropped, {} warning{}",
                    report.dropped_operations(),
                    if report.dropped_operations() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    report.warnings().len(),
                    if report.warnings().len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                );
            }
        }
        if let Some(reason) = &self.failure {
            let _ = write!(line, ": {reason}");
        }
        line
    }
}

/// The `*.json`, `*.yaml` and `*.yml` files of `dir`, sorted by name.
pub fn documents(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "json" | "yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Normalises and generates one document with the standalone settings.
pub fn generate_one(path: &Path) -> Outcome {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let generated =
        crate::load_spec(path).and_then(|spec| generate_with(&spec, &standalone_settings()));
    match generated {
        Ok(g) => Outcome {
            name,
            report: Some(g.report),
            code: Some(g.code),
            failure: None,
            compiled: None,
        },
        Err(e) => Outcome {
            name,
            report: None,
            code: None,
            failure: Some(format!("{e:#}").replace('\n', "\n    ")),
            compiled: None,
        },
    }
}

/// A crate outside the source tree into which each generated client is
/// swapped in turn; its target dir stays between documents (and runs), so
/// only the client itself is rebuilt.
pub struct Scratch {
    dir: PathBuf,
}

/// The scratch crate's manifest: `reka-inference-api`'s dependencies, and
/// every crate progenitor's generated code can name (typify's `uses_chrono`,
/// `uses_uuid`, `uses_regress`, progenitor's `uses_futures`), so that one
/// manifest serves every document.
const SCRATCH_MANIFEST: &str = r#"[package]
name = "corpus-client"
version = "0.0.0"
edition = "2024"
publish = false

# Not a member of the workspace this directory happens to sit in.
[workspace]

[lib]
path = "src/lib.rs"

[dependencies]
# progenitor's websocket upgrade (dropshot channels) names base64 and rand.
base64 = "0.22"
bytes = "1"
chrono = { version = "0.4.41", default-features = false, features = ["serde", "std", "clock"] }
futures = "0.3.31"
progenitor-client = "=0.15.1"
rand = "0.9"
regress = "0.12"
reqwest = { version = "0.13.4", default-features = false, features = ["rustls", "http2", "json", "query", "stream"] }
serde = { version = "1.0.226", features = ["derive"] }
serde_json = "1.0.140"
serde_urlencoded = "0.7"
uuid = { version = "1.18", features = ["v4", "serde"] }

[profile.dev]
debug = false
"#;

impl Scratch {
    /// Sets up the scratch crate in `dir`, pinned to the workspace's
    /// `Cargo.lock` so its dependencies are the versions the SDK builds with.
    pub fn create(dir: &Path, workspace_lock: &Path) -> Result<Scratch> {
        std::fs::create_dir_all(dir.join("src"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("Cargo.toml"), SCRATCH_MANIFEST)
            .with_context(|| format!("writing {}", dir.join("Cargo.toml").display()))?;
        let lock = dir.join("Cargo.lock");
        if !lock.exists() && workspace_lock.exists() {
            std::fs::copy(workspace_lock, &lock)
                .with_context(|| format!("copying {}", workspace_lock.display()))?;
        }
        Ok(Scratch {
            dir: dir.to_path_buf(),
        })
    }

    /// Type-checks `code` as the crate's `lib.rs`: `Ok(())`, or the first
    /// compiler errors.
    pub fn check(&self, code: &str) -> Result<Result<(), String>> {
        let lib = self.dir.join("src/lib.rs");
        let code = code.replacen(
            "from openapi/reka-inference.json",
            "by `cargo xtask corpus`",
            1,
        );
        std::fs::write(&lib, format!("#![allow(warnings)]\n{code}"))
            .with_context(|| format!("writing {}", lib.display()))?;
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "check",
                "--quiet",
                "--message-format",
                "short",
                "--manifest-path",
            ])
            .arg(self.dir.join("Cargo.toml"))
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .context("running cargo check on the scratch crate")?;
        if out.status.success() {
            return Ok(Ok(()));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        let shown: Vec<&str> = errors.iter().take(4).copied().collect();
        Ok(Err(format!(
            "{} compiler error line{}:\n    {}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            shown.join("\n    ")
        )))
    }
}

/// Runs the whole corpus and prints one line per document, then the
/// summary. Returns whether every document generated (and compiled, when
/// asked).
pub fn run(dir: &Path, scratch: Option<&Scratch>) -> Result<bool> {
    let files = documents(dir)?;
    let started = Instant::now();
    let (mut generated, mut compiled) = (0, 0);
    for path in &files {
        let mut outcome = generate_one(path);
        if let (Some(scratch), Some(code)) = (scratch, outcome.code.as_deref()) {
            match scratch.check(code)? {
                Ok(()) => outcome.compiled = Some(true),
                Err(reason) => {
                    outcome.compiled = Some(false);
                    outcome.failure = Some(reason);
                }
            }
        }
        generated += usize::from(outcome.report.is_some());
        compiled += usize::from(outcome.compiled == Some(true));
        println!("{}", outcome.line());
        if let Some(report) = &outcome.report {
            for warning in report.warnings() {
                println!("    {warning}");
            }
        }
    }
    let n = files.len();
    let mut summary = format!("corpus: {generated}/{n} generate");
    if scratch.is_some() {
        let _ = write!(summary, ", {compiled}/{n} compile");
    }
    println!("{summary} ({:.0?})", started.elapsed());
    Ok(generated == n && (scratch.is_none() || compiled == n))
}
