//! The `reka-inference-sim` binary: runs the simulator until Ctrl-C.
//!
//! Prints its base URL as the first line of stdout once it is listening.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use reka_inference_sim::{Catalog, Dialect, FaultConfig, SimConfig, start};

/// A faithful local simulator of the Reka Vision Agent inference API.
#[derive(Debug, Parser)]
#[command(name = "reka-inference-sim", version)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8787")]
    addr: SocketAddr,
    /// Accepted API key; repeat for several. Without it, `sim-dev-key` is accepted.
    #[arg(long = "api-key", value_name = "KEY")]
    api_keys: Vec<String>,
    /// Wall seconds per simulated second (0.01 makes a 30 s job take 0.3 s).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Seed of every random choice, request ids included. Without it, ids
    /// are unique to the run and every other choice is drawn from seed 0.
    #[arg(long)]
    seed: Option<u64>,
    /// Faults to inject, e.g. `submit:lost=0.2,*:503=0.1,*:latency=20ms`.
    #[arg(long, value_name = "SPEC")]
    faults: Option<FaultConfig>,
    /// Catalog JSON file replacing the built-in catalog.
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Fraction of jobs that end FAILED, overriding the catalog's rates.
    #[arg(long, value_name = "F")]
    failure_rate: Option<f64>,
    /// Per-key quota of API requests per 24 simulated hours.
    #[arg(long, value_name = "N")]
    rate_limit: Option<u64>,
    /// Per-key token bucket on submits: tokens refilled per second of wall
    /// time; a submit without a token is refused with 429.
    #[arg(long, value_name = "PER_SECOND")]
    submit_rate: Option<f64>,
    /// Size of the submit token bucket (default: the rate rounded up, at least 1).
    #[arg(long, value_name = "N", requires = "submit_rate")]
    submit_burst: Option<u64>,
    /// Send the submit bucket's reset in whole seconds, rounded up, rather
    /// than to the millisecond.
    #[arg(long, requires = "submit_rate")]
    submit_reset_whole_seconds: bool,
    /// Variant of the service to play: reka (the reconstruction), infer
    /// (Infer's shapes: lean submit, `models`, 422, presigned URLs, `error.code`)
    /// or fal (202 while running, COMPLETED+error, async cancel, fal webhooks).
    #[arg(long, value_name = "DIALECT", default_value_t = Dialect::Reka)]
    dialect: Dialect,
    /// Play a service that reports no prices: no `output.usage.price_usd`
    /// in records, no `price_usd` in the model list.
    #[arg(long)]
    no_prices: bool,
    /// Largest request body accepted, in bytes; larger ones are answered
    /// 413 (default 32 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = reka_inference_sim::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// A manual clock: the simulator's time stands still until
    /// `POST /_sim/advance` with `{"seconds": S}` moves it.
    #[arg(long)]
    manual_clock: bool,
    /// Time a connection has to send a request's headers after it opens or
    /// after its previous answer; idle and slow connections are closed.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "30s")]
    header_read_timeout: Duration,
    /// Time a request has to send its whole body (then 408).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "60s")]
    body_read_timeout: Duration,
    /// Most connections open at once; at the cap the longest-idle one is
    /// closed to make room.
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_connections: usize,
    /// Time a webhook delivery has to connect.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "5s")]
    webhook_connect_timeout: Duration,
    /// Time one webhook attempt has in all (connect, send, status line).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10s")]
    webhook_timeout: Duration,
    /// Most webhook attempts in flight at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    webhook_concurrency: usize,
}

/// `500ms`, `1.5s`, `2m`: a positive duration with its unit.
fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(format!(
            "{text:?} needs a unit: ms, s or m (e.g. 500ms, 30s)"
        ));
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|n| Duration::try_from_secs_f64(n * unit).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration longer than zero (e.g. 500ms, 30s)"))
}

fn config(args: Args) -> Result<SimConfig, String> {
    let mut config = SimConfig::new()
        .addr(args.addr)
        .time_scale(args.time_scale)
        .dialect(args.dialect)
        .prices(!args.no_prices)
        .max_body_bytes(args.max_body_bytes);
    if args.manual_clock {
        config = config.manual_clock();
    }
    config = config
        .header_read_timeout(args.header_read_timeout)
        .body_read_timeout(args.body_read_timeout)
        .max_connections(args.max_connections)
        .webhook_timeouts(args.webhook_connect_timeout, args.webhook_timeout)
        .webhook_concurrency(args.webhook_concurrency);
    if let Some(seed) = args.seed {
        config = config.seed(seed);
    }
    for key in args.api_keys {
        config = config.api_key(key);
    }
    if let Some(faults) = args.faults {
        config = config.faults(faults);
    }
    if let Some(path) = args.catalog {
        config = config.catalog(Catalog::load(&path).map_err(|e| e.to_string())?);
    }
    if let Some(rate) = args.failure_rate {
        config = config.failure_rate(rate);
    }
    if let Some(n) = args.rate_limit {
        config = config.rate_limit(n);
    }
    if let Some(rate) = args.submit_rate {
        let burst = args.submit_burst.unwrap_or_else(|| default_burst(rate));
        config = config
            .submit_rate_limit(rate, burst)
            .submit_reset_whole_seconds(args.submit_reset_whole_seconds);
    }
    Ok(config)
}

/// The submit burst when `--submit-burst` is absent: the rate rounded up, at
/// least 1 (a rate that is not a positive finite number is refused later).
fn default_burst(rate: f64) -> u64 {
    if rate.is_finite() && rate > 1.0 {
        // `as` saturates for rates beyond u64.
        rate.ceil() as u64
    } else {
        1
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let config = match config(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reka-inference-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let sim = match start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("reka-inference-sim: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", sim.base_url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("reka-inference-sim: cannot write to stdout");
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("reka-inference-sim: cannot wait for Ctrl-C: {e}");
    }
    sim.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("reka-inference-sim").chain(args.iter().copied()))
    }

    #[test]
    fn submit_burst_defaults_to_the_rate_rounded_up() {
        assert_eq!(default_burst(2.5), 3);
        assert_eq!(default_burst(4.0), 4);
        assert_eq!(default_burst(0.2), 1);
        assert_eq!(default_burst(f64::NAN), 1);
        let c = config(parse(&["--submit-rate", "2.5"]).unwrap()).unwrap();
        assert_eq!(c.submit_rate_settings(), Some((2.5, 3)));
        let c = config(parse(&["--submit-rate", "0.5", "--submit-burst", "10"]).unwrap()).unwrap();
        assert_eq!(c.submit_rate_settings(), Some((0.5, 10)));
        assert_eq!(
            config(parse(&[]).unwrap()).unwrap().submit_rate_settings(),
            None
        );
    }

    #[tokio::test]
    async fn the_body_limit_is_a_flag_and_zero_is_refused() {
        let c =
            config(parse(&["--addr", "127.0.0.1:0", "--max-body-bytes", "0"]).unwrap()).unwrap();
        let err = start(c).await.unwrap_err();
        assert!(err.to_string().contains("body size limit"), "{err}");
        assert!(parse(&["--max-body-bytes", "-1"]).is_err());
    }

    #[test]
    fn limits_are_flags_with_the_library_defaults() {
        let c = config(parse(&[]).unwrap()).unwrap();
        assert_eq!(
            c.connection_limits(),
            reka_inference_sim::ConnectionLimits::default()
        );
        let c = config(
            parse(&[
                "--header-read-timeout",
                "250ms",
                "--body-read-timeout",
                "1.5s",
                "--max-connections",
                "16",
                "--webhook-connect-timeout",
                "1s",
                "--webhook-timeout",
                "2m",
                "--webhook-concurrency",
                "3",
            ])
            .unwrap(),
        )
        .unwrap();
        let l = c.connection_limits();
        assert_eq!(l.header_read_timeout, Duration::from_millis(250));
        assert_eq!(l.body_read_timeout, Duration::from_millis(1500));
        assert_eq!((l.max_connections, l.webhook_concurrency), (16, 3));
        assert_eq!(l.webhook_connect_timeout, Duration::from_secs(1));
        assert_eq!(l.webhook_attempt_timeout, Duration::from_secs(120));
        for bad in ["30", "0s", "-1s", "soon", "inf s"] {
            assert!(parse(&["--header-read-timeout", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_readme_describes_every_flag() {
        use clap::CommandFactory;
        let readme = include_str!("../README.md");
        let from = &readme[readme.find("| flag | meaning |").unwrap()..];
        let flags_table = &from[..from.find("\n\n").unwrap_or(from.len())];
        for arg in Args::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            assert!(
                flags_table.contains(&format!("`--{long}`")),
                "--{long} is not in the README's flags table"
            );
        }
    }

    #[test]
    fn the_seed_is_explicit_only_when_given() {
        assert_eq!(config(parse(&[]).unwrap()).unwrap().seed_value(), None);
        let c = config(parse(&["--seed", "0"]).unwrap()).unwrap();
        assert_eq!(c.seed_value(), Some(0));
    }

    #[tokio::test]
    async fn submit_burst_needs_a_rate_and_bad_values_are_refused() {
        assert!(parse(&["--submit-burst", "3"]).is_err());
        assert!(parse(&["--submit-rate", "fast"]).is_err());
        for (rate, burst) in [
            ("0", "1"),
            ("-1", "1"),
            ("inf", "1"),
            ("NaN", "1"),
            ("1", "0"),
        ] {
            let (rate_arg, burst_arg) = (
                format!("--submit-rate={rate}"),
                format!("--submit-burst={burst}"),
            );
            let args = ["--addr", "127.0.0.1:0", &rate_arg, &burst_arg];
            let c = config(parse(&args).unwrap()).unwrap();
            let err = start(c).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("submit"), "{rate} {burst}: {err}");
        }
    }
}
