//! The command line: the global options and the table of commands (clap
//! derive). Each command's own flags live beside its code, in
//! `commands/<command>.rs`.
//!
//! Values that need checking (endpoints, JSON input, times, durations) are
//! kept as strings here and checked by the commands, so that a bad value
//! gets the same one-line message (or JSON error) as every other error,
//! before any request is sent.

use clap::{Args, Parser, Subcommand};

use crate::commands::batch::{self, BATCH_HELP};
use crate::commands::{chat, follow, job, list, mcp, submit};
use crate::exit::EXIT_CODES_HELP;
use crate::input::INPUT_HELP;

/// Submit, follow, list and download jobs of the Reka Vision Agent
/// inference API, and chat with its models.
#[derive(Debug, Parser)]
#[command(
    name = "reka-inference",
    version,
    about = "Submit, follow, list and download jobs of the Reka Vision Agent inference API, and chat with its models.",
    long_about = "Submit, follow, list and download jobs of the Reka Vision Agent inference API \
(image, video, speech and bounding-box generation), and chat with its models.\n\n\
Try it without an account: `reka-inference --sim run nano-banana/text-to-image --set prompt=\"a lighthouse at dusk\" --download out/` \
runs the job on a simulator inside this process.\n\n\
With a real key: `export REKA_API_KEY=...` and the same commands without --sim.",
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Global options, accepted before or after the command.
    #[command(flatten)]
    pub global: Global,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The API key. Never printed, not even with --verbose.
    #[arg(
        long,
        env = "REKA_API_KEY",
        hide_env_values = true,
        global = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// The service's base URL (default: the real service,
    /// `https://vision-agent.api.reka.ai`).
    #[arg(long, env = "REKA_BASE_URL", global = true, value_name = "URL")]
    pub base_url: Option<String>,

    /// Print results on stdout as JSON, and errors on stderr as JSON
    /// (`{"error": {"kind", "exit_code", "message", ...}}`).
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress display, no hints: only results and errors.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log every HTTP exchange and poll to stderr (the API key is never
    /// logged). RUST_LOG overrides the filter.
    #[arg(long, short, global = true)]
    pub verbose: bool,

    /// How long the command may take, e.g. 90s, 5m, 1h. For `run` and
    /// `wait`: how long to wait for the job (default 30m; the job keeps
    /// running after). For `batch`: the whole run (default: no limit; the
    /// same command resumes). For `mcp`: not used (it serves until its
    /// input closes or Ctrl-C; each tool call has its own wait). For every
    /// other command: the whole command, retries included (default 2m).
    #[arg(long, global = true, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Start a simulator of the API inside this process and send
    /// everything to it: no key needed, nothing leaves the machine, jobs
    /// run 20 times faster. The simulator ends with the command, so its
    /// jobs cannot be looked at by a later command.
    #[arg(long, global = true)]
    pub sim: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the endpoints (MODEL/CAPABILITY) this key can submit to.
    Models,

    /// Submit a job and print its request id, without waiting for it.
    ///
    /// Follow it later with `reka-inference wait <ID>`, or use `run` to
    /// submit and wait in one go.
    #[command(after_help = INPUT_HELP)]
    Submit(submit::SubmitArgs),

    /// Show where a job is: queued (and its place in the queue), running,
    /// or finished.
    Status(job::StatusArgs),

    /// Show a job's record: its output once completed, its error once
    /// failed.
    ///
    /// Exits 0 whenever the record is shown, whatever the job's status; use
    /// `wait` to get a job's outcome as an exit code.
    Result(job::JobId),

    /// Cancel a queued or running job. A finished job is left as it is.
    Cancel(job::JobId),

    /// Wait for a job submitted earlier, then show its output (and
    /// optionally download it).
    ///
    /// Ctrl-C stops waiting and leaves the job running (run `wait` again to
    /// resume), unless --cancel-on-interrupt is given.
    Wait(follow::WaitArgs),

    /// List past and current jobs, newest first.
    List(list::ListArgs),

    /// Submit a job, wait for it, show its output and optionally save its
    /// files: the whole job in one command.
    ///
    /// On a terminal a spinner shows the status, the place in the queue,
    /// the time spent and the job's log lines as they arrive. Ctrl-C stops
    /// waiting and prints how to resume, or cancels the job with
    /// --cancel-on-interrupt.
    #[command(after_help = INPUT_HELP)]
    Run(follow::RunArgs),

    /// Ask a chat model (OpenAI-compatible) one question and print its answer.
    Chat(chat::ChatArgs),

    /// Run every line of a file of JSON lines as a job: submitted a few at
    /// a time, paced by the service's rate limits, followed together, each
    /// job's files saved into DIR/<id>/ as it finishes and its result
    /// appended to DIR/results.jsonl.
    ///
    /// Crash-safe: a journal in DIR records each step before the next is
    /// taken. Killed at any point, or stopped with Ctrl-C, the same command
    /// resumes: nothing submitted is submitted again, jobs in flight are
    /// followed again, finished lines are skipped.
    #[command(after_help = BATCH_HELP)]
    Batch(batch::BatchArgs),

    /// Serve the API's jobs as tools for AI agents over MCP: stdio (what
    /// Claude Desktop, Claude Code and Cursor launch), or Streamable HTTP.
    Mcp(mcp::McpArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "reka-inference",
            "run",
            "nano-banana/text-to-image",
            "--set",
            "prompt=x",
            "--sim",
            "--json",
        ])
        .unwrap();
        assert!(cli.global.sim && cli.global.json);
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.input.set, ["prompt=x"]);
    }

    #[test]
    fn limit_and_all_conflict() {
        assert!(Cli::try_parse_from(["reka-inference", "list", "--limit", "3", "--all"]).is_err());
    }
}
