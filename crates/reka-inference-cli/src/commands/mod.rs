//! The commands, and the context they share: the client (built on first
//! use, after the command's own arguments have been checked) and the
//! in-process simulator of `--sim`.

pub(crate) mod batch;
pub(crate) mod chat;
pub(crate) mod follow;
pub(crate) mod job;
pub(crate) mod list;
pub(crate) mod mcp;
mod models;
pub(crate) mod submit;

use std::time::Duration;

use reka_inference::{Client, Endpoint};

use crate::cli::{Command, Global};
use crate::exit::{ExitClass, Failure};
use crate::output::Output;

/// Wall seconds per simulated second under `--sim`: a 6 s image takes
/// 0.3 s, a 60 s video 3 s, slow enough to see the progress display.
#[cfg(feature = "sim")]
pub const SIM_TIME_SCALE: f64 = 0.05;

/// What every command gets.
pub struct Ctx {
    /// How to print.
    pub out: Output,
    global: Global,
    client: Option<Client>,
    /// The in-process simulator of `--sim`, kept running while the command runs.
    #[cfg(feature = "sim")]
    sim: Option<reka_inference_sim::RunningSim>,
}

impl Ctx {
    /// A context for these global options; nothing is started yet.
    pub fn new(global: Global, out: Output) -> Ctx {
        Ctx {
            out,
            global,
            client: None,
            #[cfg(feature = "sim")]
            sim: None,
        }
    }

    /// The client; the first call checks the key and the base URL (or
    /// starts the simulator with `--sim`). Sends nothing.
    pub async fn client(&mut self) -> Result<Client, Failure> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = if self.global.sim {
            self.start_sim().await?
        } else {
            let key = self
                .global
                .api_key
                .clone()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| {
                    Failure::new(
                        ExitClass::Authentication,
                        "no API key: pass --api-key or set REKA_API_KEY",
                    )
                    .with_hint("to try the tool without a key, add --sim (a local simulator)")
                })?;
            let mut builder = Client::builder().api_key(key);
            if let Some(url) = self
                .global
                .base_url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
            {
                builder = builder.base_url(url);
            }
            builder.build()?
        };
        tracing::debug!(base_url = %client.base_url(), "client ready");
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Starts the in-process simulator and a client for it.
    #[cfg(feature = "sim")]
    async fn start_sim(&mut self) -> Result<Client, Failure> {
        use reka_inference_sim::SimConfig;
        let sim = reka_inference_sim::start(SimConfig::new().time_scale(SIM_TIME_SCALE))
            .await
            .map_err(|e| {
                Failure::new(
                    ExitClass::Other,
                    format!("could not start the simulator: {e}"),
                )
            })?;
        self.out.note(&format!(
            "reka-inference: --sim: using an in-process simulator at {} (no API key needed, \
             nothing leaves this machine, jobs run {:.0}x faster)",
            sim.base_url(),
            1.0 / SIM_TIME_SCALE
        ));
        let client = Client::builder_for_sim(&sim).build()?;
        self.sim = Some(sim);
        Ok(client)
    }

    /// Without the `sim` feature there is no simulator to start.
    #[cfg(not(feature = "sim"))]
    async fn start_sim(&mut self) -> Result<Client, Failure> {
        Err(Failure::usage(
            "--sim: this binary was built without the simulator (cargo feature `sim`)",
        ))
    }

    /// How to pick up a job after this command stopped waiting for it.
    pub fn resume_text(&self, request_id: &str) -> String {
        if self.global.sim {
            "The in-process simulator stops with this command, and its jobs with it.".to_owned()
        } else {
            format!("Resume with: reka-inference wait {request_id}")
        }
    }

    /// The checked `--timeout`.
    pub fn timeout(&self) -> Result<Option<Duration>, Failure> {
        self.global
            .timeout
            .as_deref()
            .map(|t| crate::time::parse_duration("--timeout", t))
            .transpose()
    }

    /// Whether `--sim` is on.
    pub fn is_sim(&self) -> bool {
        self.global.sim
    }
}

/// How long a command other than `run` and `wait` may take by default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one command. Every command but `run` and `wait` (whose `--timeout`
/// bounds the wait) and `batch` (unbounded unless `--timeout` is given) is
/// bounded as a whole by `--timeout`.
pub async fn run(command: Command, ctx: &mut Ctx) -> Result<(), Failure> {
    let timeout = ctx.timeout()?;
    let bound = timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT);
    match command {
        Command::Wait(args) => follow::wait(ctx, args, timeout).await,
        Command::Run(args) => follow::run(ctx, args, timeout).await,
        Command::Batch(args) => batch::run(ctx, args, timeout).await,
        Command::Mcp(args) => mcp::run(ctx, args).await,
        Command::Models => within(bound, models::run(ctx)).await,
        Command::Submit(args) => within(bound, submit::run(ctx, args)).await,
        Command::Status(args) => within(bound, job::status(ctx, &args.id, args.logs)).await,
        Command::Result(args) => within(bound, job::result(ctx, &args.id)).await,
        Command::Cancel(args) => within(bound, job::cancel(ctx, &args.id)).await,
        Command::List(args) => within(bound, list::run(ctx, args)).await,
        Command::Chat(args) => within(bound, chat::run(ctx, args)).await,
    }
}

/// Runs a command within `bound`.
async fn within(
    bound: Duration,
    command: impl Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    match tokio::time::timeout(bound, command).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::new(
            ExitClass::Timeout,
            format!(
                "the command did not finish within {} (--timeout): the server is not answering",
                crate::time::human(bound)
            ),
        )),
    }
}

/// Checks an endpoint id (`<model>/<capability>`). Unknown but well-formed
/// ids pass: the service may have models this version does not list.
pub fn parse_endpoint(flag: &str, text: &str) -> Result<Endpoint, Failure> {
    Endpoint::new(text.trim()).map_err(|_| {
        Failure::usage(format!(
            "{flag} {text:?}: not an endpoint; expected <model>/<capability> \
             (letters, digits, '-', '_', '.'), e.g. nano-banana/text-to-image; \
             `reka-inference models` lists them"
        ))
    })
}

/// Checks a request id given on the command line.
pub fn check_id(id: &str) -> Result<&str, Failure> {
    let id = id.trim();
    if id.is_empty()
        || id == "."
        || id == ".."
        || id.contains('/')
        || id.contains('\\')
        || id.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Failure::usage(format!(
            "{id:?} is not a job id (as `submit` or `list` prints it)"
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_for_shape_only() {
        assert_eq!(
            parse_endpoint("ENDPOINT", "brand-new/text-to-image")
                .unwrap()
                .model(),
            "brand-new"
        );
        for bad in ["nano-banana", "a/b/c", "a b/c", "/x", ""] {
            let e = parse_endpoint("ENDPOINT", bad).unwrap_err();
            assert_eq!(e.class, ExitClass::Usage);
            assert!(!e.message.contains('\n'));
        }
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("0193-abc").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("a/b").is_err());
        for bad in ["..", ".", "a\\..\\..\\admin", "a\u{1b}[2J"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
