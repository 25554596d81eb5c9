//! `reka-inference`: the command line tool of the Reka Vision Agent
//! inference API. See `reka-inference --help`, and the modules:
//! [`cli`] (flags), [`commands`], [`input`] (the job's input),
//! [`batch_input`], [`batch_results`] and [`batch_dir`] (the files of
//! `batch`),
//! [`time`] (durations and times), [`output`], [`progress`],
//! [`interrupt`] (Ctrl-C) and [`exit`] (exit codes).

mod batch_dir;
mod batch_input;
mod batch_results;
mod cli;
mod commands;
mod exit;
mod input;
mod interrupt;
mod output;
mod progress;
mod time;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::commands::Ctx;
use crate::exit::{ExitClass, Failure};
use crate::output::Output;

fn main() -> ExitCode {
    // clap prints help and usage errors itself (exit 0 and 2).
    let cli = Cli::parse();
    let out = Output::new(cli.global.json, cli.global.quiet);
    if cli.global.verbose {
        init_tracing();
    }
    let outcome = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let mut ctx = Ctx::new(cli.global, out);
            runtime.block_on(commands::run(cli.command, &mut ctx))
        }
        Err(e) => Err(Failure::new(
            ExitClass::Other,
            format!("could not start the async runtime: {e}"),
        )),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            out.failure(&failure);
            ExitCode::from(failure.code())
        }
    }
}

/// `--verbose`: the SDK's and this tool's debug events and HTTP exchanges
/// on stderr. The SDK never puts the key in an event or span;
/// `RUST_LOG` overrides the filter.
fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("reka_inference=debug,reka_inference_cli=debug,reka_inference_sim=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // Each HTTP exchange is a span: log it when it closes, with its
        // status, X-Request-ID, attempts and duration.
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .try_init();
}
