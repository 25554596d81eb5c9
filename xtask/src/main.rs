//! `cargo xtask`: see the library documentation of this crate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use xtask::{GENERATED_PATH, SPEC_PATH, diff, generate, load_spec, workspace_root};

#[derive(Parser)]
#[command(about = "Workspace automation for reka-inference")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Normalise the OpenAPI document, run progenitor, format, and write the
    /// generated client.
    Generate {
        /// Regenerate in memory and fail, with a diff, if the file on disk
        /// differs. Writes nothing.
        #[arg(long)]
        check: bool,
        /// The OpenAPI document to read (default: the vendored one).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Where to write (default: the generated crate's `generated.rs`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the normalised 3.0.3 document here.
        #[arg(long)]
        normalized: Option<PathBuf>,
    },
    /// Generate a client for every `*.json`/`*.yaml` OpenAPI document of a
    /// directory; one line per document, then a summary. Fails when any
    /// document does not generate (or compile).
    Corpus {
        /// The directory of documents.
        dir: PathBuf,
        /// Also type-check each client in a scratch crate (under
        /// `target/xtask-corpus`, its build reused between documents).
        #[arg(long)]
        compile: bool,
    },
    /// Summarise what changed between two versions of the OpenAPI document,
    /// breaking changes marked.
    Diff {
        /// The older document.
        old: PathBuf,
        /// The newer document.
        new: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = workspace_root();
    match cli.command {
        Cmd::Generate {
            check,
            spec,
            out,
            normalized,
        } => {
            let spec_path = spec.unwrap_or_else(|| root.join(SPEC_PATH));
            let out_path = out.unwrap_or_else(|| root.join(GENERATED_PATH));
            let started = Instant::now();
            let spec = load_spec(&spec_path)?;
            let generated = generate::generate(&spec)
                .with_context(|| format!("generating from {}", spec_path.display()))?;
            eprint!("{}", generated.report);
            let report = &generated.report;
            eprintln!(
                "operations: {} in the document, {} generated ({} with a form body, {} upload methods beside a JSON one), {} dropped",
                report.operations(),
                report.generated_operations(),
                report.form_operations(),
                report.count(xtask::normalize::Rule::MultipartTwin),
                report.dropped_operations(),
            );
            if let Some(path) = normalized {
                let text = serde_json::to_string_pretty(&generated.normalized)? + "\n";
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if check {
                let current = std::fs::read_to_string(&out_path).unwrap_or_default();
                if xtask::generate::same_code(&current, &generated.code) {
                    let note = if current == generated.code {
                        ""
                    } else {
                        " (the layout differs, the code does not: a rustfmt change?)"
                    };
                    eprintln!(
                        "{} is up to date{note} ({:.2?})",
                        out_path.display(),
                        started.elapsed()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                let diff = similar::TextDiff::from_lines(&current, &generated.code);
                print!(
                    "{}",
                    diff.unified_diff()
                        .context_radius(3)
                        .header(&out_path.display().to_string(), "regenerated")
                );
                eprintln!(
                    "{} is out of date: run `cargo xtask generate`",
                    out_path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            std::fs::write(&out_path, &generated.code)
                .with_context(|| format!("writing {}", out_path.display()))?;
            eprintln!(
                "wrote {} ({} lines, {:.2?})",
                out_path.display(),
                generated.code.lines().count(),
                started.elapsed()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Corpus { dir, compile } => {
            let scratch = if compile {
                Some(xtask::corpus::Scratch::create(
                    &root.join("target/xtask-corpus"),
                    &root.join("Cargo.lock"),
                )?)
            } else {
                None
            };
            let all_good = xtask::corpus::run(&dir, scratch.as_ref())?;
            Ok(if all_good {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Diff { old, new } => {
            let report = diff::diff(&load_spec(&old)?, &load_spec(&new)?);
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
