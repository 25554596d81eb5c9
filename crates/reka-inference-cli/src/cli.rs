//! The command line: every command, flag and help text (clap derive).
//!
//! Values that need checking (endpoints, JSON input, times, durations) are
//! kept as strings here and checked by the commands, so that a bad value
//! gets the same one-line message (or JSON error) as every other error,
//! before any request is sent.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::EXIT_CODES_HELP;

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
    /// same command resumes). For every other command: the whole command,
    /// retries included (default 2m).
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
    Submit(SubmitArgs),

    /// Show where a job is: queued (and its place in the queue), running,
    /// or finished.
    Status {
        /// The request id, as `submit` or `list` printed it.
        id: String,
        /// Also show the job's log lines.
        #[arg(long)]
        logs: bool,
    },

    /// Show a job's record: its output once completed, its error once
    /// failed.
    ///
    /// Exits 0 whenever the record is shown, whatever the job's status; use
    /// `wait` to get a job's outcome as an exit code.
    Result {
        /// The request id.
        id: String,
    },

    /// Cancel a queued or running job. A finished job is left as it is.
    Cancel {
        /// The request id.
        id: String,
    },

    /// Wait for a job submitted earlier, then show its output (and
    /// optionally download it).
    ///
    /// Ctrl-C stops waiting and leaves the job running (run `wait` again to
    /// resume), unless --cancel-on-interrupt is given.
    Wait(WaitArgs),

    /// List past and current requests, newest first.
    List(ListArgs),

    /// Submit a job, wait for it, show its output and optionally save its
    /// files: the whole job in one command.
    ///
    /// On a terminal a spinner shows the status, the place in the queue,
    /// the time spent and the job's log lines as they arrive. Ctrl-C stops
    /// waiting and prints how to resume, or cancels the job with
    /// --cancel-on-interrupt.
    #[command(after_help = INPUT_HELP)]
    Run(RunArgs),

    /// Ask a chat model (OpenAI-compatible) one question and print its answer.
    Chat(ChatArgs),

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
    Batch(BatchArgs),

    /// Serve the API's jobs as tools for AI agents over MCP: stdio (what
    /// Claude Desktop, Claude Code and Cursor launch), or Streamable HTTP.
    Mcp(crate::commands::mcp::McpArgs),
}

const BATCH_HELP: &str = "\
Lines:
  {\"prompt\": \"a red fox\"}                                   the input of --endpoint
  {\"endpoint\": \"veo-3.1/text-to-video\", \"input\": {...}, \"id\": \"clip-7\"}
  The id names the line's files and result (default line-<N>): letters,
  digits, '.', '_', '-'. A line that cannot be run is reported with its
  number (status INVALID) and skipped; nothing is sent for it.

DIR:
  journal.sqlite   the journal (keep it to resume)
  results.jsonl    one line per finished input line: line, id, status, ok,
                   request_id, files, error, price_usd, timings
  <id>/            the files of each completed line

Exit code 0 when every line succeeded, 13 when some did not (the rest is
done), 130 after Ctrl-C, 9 at --timeout: run the same command to go on.";

const INPUT_HELP: &str = "\
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

/// `submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The endpoint, MODEL/CAPABILITY, e.g. nano-banana/text-to-image
    /// (`reka-inference models` lists them).
    pub endpoint: String,

    #[command(flatten)]
    pub input: InputArgs,

    /// A URL the service calls with the job's record when it finishes.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,

    /// Your own idempotency key: submitting again with the same key and
    /// input returns the first job instead of creating a second one.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

/// What `wait` and `run` share.
#[derive(Debug, Args, Clone, Default)]
pub struct FollowArgs {
    /// Save the job's output files into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub download: Option<PathBuf>,

    /// On Ctrl-C, cancel the job instead of leaving it running.
    #[arg(long)]
    pub cancel_on_interrupt: bool,
}

/// `wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The request id.
    pub id: String,

    #[command(flatten)]
    pub follow: FollowArgs,

    /// Receive the job's webhook on this address (the job was submitted
    /// with `submit --webhook URL`, URL reaching this address): look once
    /// now, then end the wait when the delivery arrives, confirmed by one
    /// fetch of the record; polls only as a rare safety net.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "ADDR")]
    pub webhook_listen: Option<String>,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The endpoint, MODEL/CAPABILITY, e.g. nano-banana/text-to-image.
    pub endpoint: String,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub follow: FollowArgs,

    /// A URL the service calls with the job's record when it finishes.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,

    /// Your own idempotency key: running again with the same key and input
    /// follows the first job instead of creating a second one (printed
    /// when a submit's outcome is unknown).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,

    /// Receive the job's webhook on this address (e.g. 0.0.0.0:8080) and end
    /// the wait when it arrives, confirmed by one fetch of the record;
    /// polls only as a rare safety net.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "ADDR", conflicts_with = "webhook")]
    pub webhook_listen: Option<String>,

    /// The public URL the service should call for --webhook-listen (a
    /// tunnel, a load balancer), when it is not http://ADDR/.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "URL", requires = "webhook_listen")]
    pub webhook_url: Option<String>,
}

/// `list`.
#[derive(Debug, Args)]
#[command(after_help = "\
Times (--since, --until): RFC 3339 (2025-01-31T12:00:00Z), a date (2025-01-31, UTC),
or an age: 30m, 1h, 2d means that long ago.")]
pub struct ListArgs {
    /// Only this endpoint, MODEL/CAPABILITY.
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: Option<String>,

    /// Only this model, e.g. veo-3.1.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,

    /// Only this capability, e.g. text-to-image.
    #[arg(long, value_name = "CAPABILITY")]
    pub capability: Option<String>,

    /// Only this status: IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED or
    /// CANCELLED (any case).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,

    /// Only requests created at or after this time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only requests created before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Include each request's input, output and error.
    #[arg(long)]
    pub payloads: bool,

    /// Show at most this many requests.
    #[arg(long, value_name = "N", default_value_t = 20, conflicts_with = "all")]
    pub limit: u64,

    /// Show every matching request (pages are fetched as needed).
    #[arg(long)]
    pub all: bool,
}

/// `batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The input: one JSON object per line.
    #[arg(value_name = "INPUT.jsonl")]
    pub input: PathBuf,

    /// Where the journal, results.jsonl and each line's files go (created
    /// if missing). Run again with the same DIR to resume.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The endpoint of lines that are bare input objects, MODEL/CAPABILITY.
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: Option<String>,

    /// Submits in flight at most (fewer while the service pushes back).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// Stop submitting when the spend the service reported plus the
    /// estimated price of the jobs in flight would pass this many US
    /// dollars. Until a price is known, one job of an endpoint runs alone
    /// to learn it.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,

    /// The price of a job to assume until the service reports one (and for
    /// an endpoint whose records carry none).
    #[arg(long, value_name = "USD", requires = "budget_usd")]
    pub estimate_usd: Option<f64>,

    /// How long each job is waited for, e.g. 30m, 2h (default 1h). A job
    /// still running then is left running and followed by the next run.
    #[arg(long, value_name = "DURATION")]
    pub job_timeout: Option<String>,

    /// Submit each line with the idempotency key PREFIX<id> rather than a
    /// random one: batches on several machines that share a prefix (and
    /// the API key) get one job per line even where their inputs overlap,
    /// for as long as the service keeps idempotency keys.
    #[arg(long, value_name = "PREFIX")]
    pub idempotency_prefix: Option<String>,

    /// Check every line and print what would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not save the jobs' files (results.jsonl still lists each job).
    #[arg(long)]
    pub no_download: bool,

    /// Receive the jobs' webhooks on this address (e.g. 0.0.0.0:8080):
    /// each wait ends at its delivery, confirmed by one fetch of the
    /// record, instead of list sweeps.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "ADDR")]
    pub webhook_listen: Option<String>,

    /// The public URL the service should call for --webhook-listen (a
    /// tunnel, a load balancer), when it is not http://ADDR/.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "URL", requires = "webhook_listen")]
    pub webhook_url: Option<String>,
}

/// `chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The chat model.
    #[arg(long, short, value_name = "MODEL", default_value = "qwen3-vl-32b")]
    pub model: String,

    /// A system message sent before yours.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,

    /// Print the answer as it is written, piece by piece (with --json: one
    /// JSON chunk per line, as the server sent it, the final usage chunk
    /// included).
    #[arg(long)]
    pub stream: bool,

    /// An image sent with your message: a file (PNG, JPEG, GIF or WebP,
    /// sent as a data: URI), an http(s) URL or a data: URI. Repeatable.
    #[arg(long, value_name = "FILE|URL")]
    pub image: Vec<String>,

    /// A tool the model may call: a JSON object, `{"name": ..., "description":
    /// ..., "parameters": <JSON schema>}` or OpenAI's `{"type": "function",
    /// "function": {...}}`. Repeatable. Tool calls are printed.
    #[arg(long, value_name = "JSON")]
    pub tool: Vec<String>,

    /// Ask for a JSON object as the answer (`response_format: json_object`).
    #[arg(long)]
    pub json_object: bool,

    /// The most tokens to generate.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,

    /// The sampling temperature.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,

    /// Chat with any OpenAI-compatible server: the base URL of its
    /// OpenAI-style API (`http://localhost:4000/v1`), used as is; requests go
    /// to `<URL>/chat/completions`. Its key is --chat-api-key: the Reka key
    /// is sent there only when the URL is on the Reka base URL's origin.
    #[arg(long, env = "REKA_CHAT_BASE_URL", value_name = "URL")]
    pub chat_base_url: Option<String>,

    /// The key of the --chat-base-url server. Never printed.
    #[arg(
        long,
        env = "REKA_CHAT_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        requires = "chat_base_url"
    )]
    pub chat_api_key: Option<String>,

    /// How the key is sent: `x-api-key` (`X-Api-Key: <key>`, Reka's
    /// default) or `bearer` (`Authorization: Bearer <key>`, what most
    /// OpenAI-compatible servers want; the default with --chat-base-url).
    #[arg(long, value_name = "x-api-key|bearer")]
    pub auth: Option<String>,

    /// Your message.
    pub message: String,
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
