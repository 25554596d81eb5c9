//! Polling benchmark: status requests per job and detection lag of the
//! default `wait` and of webhook-driven waits (with every delivery made, and
//! with the simulator losing 20% of them), next to fixed-interval pollers
//! (2 s: Reka's own CLI; 0.5 s: Replicate; 0.1 s: fal), and of the default
//! and fixed 2 s schedules following the jobs together in one `JobSet`, in
//! one run against one simulator.
//!
//! `cargo make bench-poll` (or build the simulator and this crate in release
//! mode and run `bench-poll`). Writes `docs/bench-poll.svg` and the
//! `bench-poll` section of `docs/PERFORMANCE.md`.
//!
//! Jobs of about 1 s, 30 s and 120 s (simulated), their durations spread so
//! that p95 = `spread` x median for each spread of `--spreads` (1 = fixed),
//! on endpoints with two workers, so that most jobs wait in a queue before
//! they start, as on a busy service. For each arrival pattern, poller (a
//! fresh client: nothing learnt), spread and length, one job runs alone
//! first, then the pattern's jobs arrive:
//!
//! - `rounds`: `--rounds` rounds of `--concurrency` jobs submitted at once,
//!   each round after the last has ended;
//! - `poisson`: `--jobs` jobs submitted at exponentially distributed gaps,
//!   at a rate that keeps the two workers busy `--load` of the time (0.7:
//!   most jobs still queue), as jobs arrive from users and services; the
//!   gaps are drawn from `--seed`, the same for every poller.
//!
//! Requests are the status, result and list requests per job after its
//! submit (the webhook row's confirming fetch included); detection lag is
//! the time from the simulator marking a job done (`completed_at`) to the
//! wait returning it, in simulated seconds.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reka_inference::webhook::WebhookReceiver;
use reka_inference::{Client, Endpoint, ListFilter, PollPolicy, SubmitOptions};
use reka_inference_bench::{
    SimProcess, catalog_json, cpu_time, docs_dir, follow_requests, machine, mean, percentile,
    replace_section, write_catalog,
};
use serde_json::json;

/// `(endpoint model, median s)`.
const LENGTHS: [(&str, f64); 3] = [("short", 1.0), ("medium", 30.0), ("long", 120.0)];

/// Workers per endpoint: fewer than the concurrent jobs, so jobs queue.
const WORKERS: u32 = 2;

/// How jobs arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    /// Rounds of jobs submitted at once.
    Rounds,
    /// Jobs submitted at exponentially distributed gaps.
    Poisson,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::Rounds => "rounds",
            Pattern::Poisson => "poisson",
        }
    }

    fn parse(s: &str) -> Result<Pattern> {
        match s.trim() {
            "rounds" => Ok(Pattern::Rounds),
            "poisson" => Ok(Pattern::Poisson),
            other => anyhow::bail!("unknown arrival pattern {other:?} (rounds, poisson)"),
        }
    }
}

struct Args {
    scale: f64,
    /// p95 / median of the job durations, one run each (1 = fixed).
    spreads: Vec<f64>,
    patterns: Vec<Pattern>,
    rounds: usize,
    concurrency: usize,
    /// Jobs per length under `poisson`.
    jobs: usize,
    /// The share of time the workers are busy under `poisson`.
    load: f64,
    seed: u64,
    write_docs: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        scale: 0.05,
        spreads: vec![1.0, 1.1, 1.5, 2.0],
        patterns: vec![Pattern::Rounds, Pattern::Poisson],
        rounds: 2,
        concurrency: 4,
        jobs: 12,
        load: 0.7,
        seed: 26,
        write_docs: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().context("a flag needs a value");
        match flag.as_str() {
            "--scale" => a.scale = value()?.parse()?,
            "--spreads" => {
                a.spreads = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<f64>())
                    .collect::<Result<_, _>>()?
            }
            "--patterns" => {
                a.patterns = value()?
                    .split(',')
                    .map(Pattern::parse)
                    .collect::<Result<_>>()?
            }
            "--rounds" => a.rounds = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--jobs" => a.jobs = value()?.parse()?,
            "--load" => a.load = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--no-docs" => a.write_docs = false,
            other => anyhow::bail!(
                "unknown flag {other} (--scale F --spreads F,F,.. --patterns rounds,poisson --rounds N --concurrency N --jobs N --load F --seed N --no-docs)"
            ),
        }
    }
    anyhow::ensure!(
        a.load > 0.0 && a.load < 1.0,
        "--load must be between 0 and 1 (the workers' busy share)"
    );
    anyhow::ensure!(
        a.jobs > 0 && a.rounds > 0 && a.concurrency > 0,
        "nothing to run"
    );
    Ok(a)
}

/// When each job of a pattern is submitted, in simulated seconds from the
/// first: all at once for a round, exponential gaps for `poisson`, at a
/// rate of `load` x workers / mean run (a lognormal's mean is
/// median x e^(sigma^2 / 2)).
fn arrivals(pattern: Pattern, args: &Args, median: f64, spread: f64, rng: &mut StdRng) -> Vec<f64> {
    match pattern {
        Pattern::Rounds => vec![0.0; args.concurrency],
        Pattern::Poisson => {
            let sigma = spread.ln() / 1.644_853_6;
            let mean_run = median * (sigma * sigma / 2.0).exp();
            let mean_gap = mean_run / (args.load * f64::from(WORKERS));
            let mut at = 0.0;
            (0..args.jobs)
                .map(|i| {
                    if i > 0 {
                        // 1 - u is in (0, 1]: its log is finite.
                        at += -mean_gap * (1.0 - rng.random::<f64>()).ln();
                    }
                    at
                })
                .collect()
        }
    }
}

#[derive(Default, Clone)]
struct Measure {
    first_requests: f64,
    first_lag: f64,
    requests: Vec<f64>,
    lags: Vec<f64>,
}

struct PollerResult {
    pattern: Pattern,
    name: &'static str,
    spread: f64,
    by_length: Vec<Measure>,
    cpu: Duration,
}

/// One way of waiting.
struct Poller {
    name: &'static str,
    policy: PollPolicy,
    /// Submit with the webhook and wait on deliveries.
    webhook: bool,
    /// Simulator faults while it runs.
    faults: Option<&'static str>,
    /// Follow the jobs together in one `JobSet` rather than each on its own.
    set: bool,
}

/// The poller every ratio is taken against: Reka's own CLI.
const BASELINE: &str = "fixed 2 s";

/// The endpoint id of one length at one spread.
fn model_id(length: &str, spread_index: usize) -> String {
    format!("{length}-s{spread_index}")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let mut models = Vec::new();
    for (si, spread) in args.spreads.iter().enumerate() {
        for (id, median) in LENGTHS {
            models.push((model_id(id, si), median, median * spread, WORKERS));
        }
    }
    let models: Vec<(&str, f64, f64, u32)> = models
        .iter()
        .map(|(id, m, p, w)| (id.as_str(), *m, *p, *w))
        .collect();
    let catalog = write_catalog("poll", &catalog_json(&models))?;
    let sim = SimProcess::start(&[
        "--time-scale".into(),
        args.scale.to_string(),
        "--catalog".into(),
        catalog.display().to_string(),
    ])?;
    let receiver = WebhookReceiver::listen("127.0.0.1:0".parse()?, None).await?;
    let poller = |name, policy, webhook, faults, set| Poller {
        name,
        policy,
        webhook,
        faults,
        set,
    };
    let fixed = |ms| PollPolicy::fixed(Duration::from_millis(ms));
    let pollers = [
        poller("webhook", PollPolicy::default(), true, None, false),
        poller(
            "webhook, 20% lost",
            PollPolicy::default(),
            true,
            Some("webhook:lost=0.2"),
            false,
        ),
        poller("default", PollPolicy::default(), false, None, false),
        poller("default, job set", PollPolicy::default(), false, None, true),
        poller(BASELINE, fixed(2000), false, None, false),
        poller("fixed 2 s, job set", fixed(2000), false, None, true),
        poller("fixed 0.5 s", fixed(500), false, None, false),
        poller("fixed 0.1 s", fixed(100), false, None, false),
    ];
    let mut results = Vec::new();
    let started = std::time::Instant::now();
    for &pattern in &args.patterns {
        for (si, &spread) in args.spreads.iter().enumerate() {
            // The same arrivals for every poller of a spread.
            let schedule: Vec<Vec<f64>> = LENGTHS
                .iter()
                .enumerate()
                .map(|(l, (_, median))| {
                    let seed = args.seed ^ ((si as u64) << 8) ^ ((l as u64) << 16);
                    let mut rng = StdRng::seed_from_u64(seed);
                    arrivals(pattern, &args, *median, spread, &mut rng)
                })
                .collect();
            for p in &pollers {
                eprintln!(
                    "bench-poll: {}, spread {spread}, {} ({} s in)",
                    pattern.name(),
                    p.name,
                    started.elapsed().as_secs()
                );
                sim.reset().await?;
                if let Some(spec) = p.faults {
                    sim.set_faults(spec).await?;
                }
                let client = Client::builder()
                    .api_key(reka_inference_sim::DEV_API_KEY)
                    .base_url(sim.base_url())
                    .poll_policy(p.policy.clone().scaled(args.scale))
                    .build()?;
                let run = Run {
                    client: &client,
                    sim: &sim,
                    scale: args.scale,
                    webhook: p.webhook.then_some(&receiver),
                    set: p.set,
                };
                let cpu0 = cpu_time();
                let mut by_length = Vec::new();
                for (l, (id, _)) in LENGTHS.iter().enumerate() {
                    let endpoint: Endpoint =
                        format!("{}/text-to-image", model_id(id, si)).parse()?;
                    let (first_requests, first_lags) = run.jobs(&endpoint, &[0.0]).await?;
                    let mut m = Measure {
                        first_requests,
                        first_lag: first_lags[0],
                        ..Measure::default()
                    };
                    let repeats = match pattern {
                        Pattern::Rounds => args.rounds,
                        Pattern::Poisson => 1,
                    };
                    for _ in 0..repeats {
                        let (requests, lags) = run.jobs(&endpoint, &schedule[l]).await?;
                        m.requests.push(requests);
                        m.lags.extend(lags);
                    }
                    by_length.push(m);
                }
                results.push(PollerResult {
                    pattern,
                    name: p.name,
                    spread,
                    by_length,
                    cpu: cpu_time() - cpu0,
                });
            }
        }
    }
    let _ = std::fs::remove_file(&catalog);

    let report = render(&results, &args);
    println!("{report}");
    if args.write_docs {
        let docs = docs_dir();
        std::fs::create_dir_all(&docs)?;
        chart(&results, &docs.join("bench-poll.svg"))?;
        replace_section(&docs.join("PERFORMANCE.md"), "bench-poll", &report)?;
        eprintln!(
            "wrote {}/bench-poll.svg and the bench-poll section of PERFORMANCE.md",
            docs.display()
        );
    }
    Ok(())
}

/// What one poller's jobs are run with.
struct Run<'a> {
    client: &'a Client,
    sim: &'a SimProcess,
    scale: f64,
    webhook: Option<&'a WebhookReceiver>,
    set: bool,
}

impl Run<'_> {
    /// Submits one job at each of `arrivals` (simulated seconds from now)
    /// and waits for them all, each on its own or together in one set;
    /// returns the follow-up requests per job and each job's lag.
    async fn jobs(&self, endpoint: &Endpoint, arrivals: &[f64]) -> Result<(f64, Vec<f64>)> {
        let before = follow_requests(&self.sim.stats().await?);
        let finished = if self.set {
            self.in_a_set(endpoint, arrivals).await?
        } else {
            self.each_alone(endpoint, arrivals).await?
        };
        let after = follow_requests(&self.sim.stats().await?);
        let n = arrivals.len();
        let completed: HashMap<String, DateTime<Utc>> = self
            .client
            .jobs()
            .list(ListFilter::default().endpoint(endpoint).limit(n as u64 * 2))
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .filter_map(|i| Some((i.request_id, i.completed_at?)))
            .collect();
        // (The listing above is the benchmark's own: `after` was read before it.)
        let mut lags = Vec::new();
        for (id, returned) in finished {
            let done = completed.get(&id).context("a job without completed_at")?;
            let wall = (returned - *done).to_std().unwrap_or(Duration::ZERO);
            lags.push(wall.as_secs_f64() / self.scale);
        }
        anyhow::ensure!(lags.len() == n, "{} of {n} jobs came back", lags.len());
        Ok(((after - before) as f64 / n as f64, lags))
    }

    /// When arrival `i` is due, on this clock.
    fn due(&self, start: tokio::time::Instant, at: f64) -> tokio::time::Instant {
        start + Duration::try_from_secs_f64(at * self.scale).unwrap_or_default()
    }

    fn options(&self) -> SubmitOptions {
        match self.webhook {
            Some(r) => SubmitOptions::default().webhook(r),
            None => SubmitOptions::default(),
        }
    }

    /// Each job waited for with `Job::wait`, as a program waiting for one
    /// job does.
    async fn each_alone(
        &self,
        endpoint: &Endpoint,
        arrivals: &[f64],
    ) -> Result<Vec<(String, DateTime<Utc>)>> {
        let start = tokio::time::Instant::now();
        let mut waits = Vec::new();
        for (i, &at) in arrivals.iter().enumerate() {
            tokio::time::sleep_until(self.due(start, at)).await;
            let job = self
                .client
                .submit_with(
                    endpoint,
                    json!({"prompt": format!("bench {i}")}),
                    self.options(),
                )
                .await?;
            waits.push(tokio::spawn(async move {
                let done = job.wait().await;
                (job.id().to_owned(), done.map(|_| Utc::now()))
            }));
        }
        let mut finished = Vec::new();
        for wait in waits {
            let (id, returned) = wait.await?;
            finished.push((id, returned?));
        }
        Ok(finished)
    }

    /// Every job pushed into one `JobSet` as it is submitted, and its
    /// outcomes read as they come, as a service or a batch does.
    async fn in_a_set(
        &self,
        endpoint: &Endpoint,
        arrivals: &[f64],
    ) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut outcomes = self.client.job_set().into_stream();
        let sender = outcomes.sender();
        let submit = async move {
            let start = tokio::time::Instant::now();
            for (i, &at) in arrivals.iter().enumerate() {
                tokio::time::sleep_until(self.due(start, at)).await;
                sender
                    .submit_with(
                        endpoint,
                        json!({"prompt": format!("bench {i}")}),
                        self.options(),
                    )
                    .await?;
            }
            // Dropping the sender lets the stream end once its jobs have.
            drop(sender);
            Ok::<_, anyhow::Error>(())
        };
        let read = async {
            let mut finished = Vec::new();
            while let Some(outcome) = outcomes.next().await {
                let returned = Utc::now();
                outcome.result?;
                finished.push((outcome.job.id().to_owned(), returned));
            }
            Ok::<_, anyhow::Error>(finished)
        };
        let (submitted, finished) = tokio::join!(submit, read);
        submitted?;
        finished
    }
}

/// Requests per job, mean lag and p95 lag over every length.
fn totals(r: &PollerResult) -> (f64, f64, f64) {
    let req: f64 =
        r.by_length.iter().map(|m| mean(&m.requests)).sum::<f64>() / r.by_length.len() as f64;
    let lags: Vec<f64> = r
        .by_length
        .iter()
        .flat_map(|m| m.lags.iter().copied())
        .collect();
    (req, mean(&lags), percentile(&lags, 95.0))
}

fn render(results: &[PollerResult], args: &Args) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Measured {} on {}; simulator at {} of real time; {} workers per endpoint; spreads are p95 / median of the job durations (1 = fixed). Arrivals, after one job alone per length: `rounds`, {} rounds of {} jobs submitted at once; `poisson`, {} jobs at exponential gaps keeping the workers {:.0}% busy (seed {}). Ratios are to `{BASELINE}` (each job waited for on its own) in the same pattern and spread.\n\n",
        Utc::now().format("%Y-%m-%d"),
        machine(),
        args.scale,
        WORKERS,
        args.rounds,
        args.concurrency,
        args.jobs,
        args.load * 100.0,
        args.seed,
    ));
    out.push_str("| pattern | spread | poller | requests/job | mean lag (s) | p95 lag (s) | first jobs: requests | first jobs: mean lag (s) | requests vs fixed 2 s | mean lag vs fixed 2 s | p95 lag vs fixed 2 s |\n");
    out.push_str("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut verdicts = Vec::new();
    for &pattern in &args.patterns {
        for &spread in &args.spreads {
            let here: Vec<&PollerResult> = results
                .iter()
                .filter(|r| r.pattern == pattern && r.spread == spread)
                .collect();
            let base = here.iter().find(|r| r.name == BASELINE).map(|r| totals(r));
            for r in &here {
                let t = totals(r);
                let first_req: f64 = r.by_length.iter().map(|m| m.first_requests).sum::<f64>()
                    / r.by_length.len() as f64;
                let first_lags: Vec<f64> = r.by_length.iter().map(|m| m.first_lag).collect();
                let (rr, lr, pr) = base.map_or((f64::NAN, f64::NAN, f64::NAN), |b| {
                    (t.0 / b.0, t.1 / b.1, t.2 / b.2)
                });
                out.push_str(&format!(
                    "| {} | {spread} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                    pattern.name(),
                    r.name,
                    t.0,
                    t.1,
                    t.2,
                    first_req,
                    mean(&first_lags),
                    rr,
                    lr,
                    pr
                ));
                if r.name.starts_with("default") {
                    let requests_bar = if spread <= 1.1 { 0.5 } else { 1.0 };
                    let met = rr <= requests_bar && lr <= 1.0 && pr <= 1.0;
                    verdicts.push(format!(
                        "- {}, spread {spread}, {}: {rr:.2}x the requests (bar {requests_bar}), {lr:.2}x the mean lag, {pr:.2}x the p95 lag: **{}**",
                        pattern.name(),
                        r.name,
                        if met { "met" } else { "missed" }
                    ));
                }
            }
        }
    }
    out.push_str("\nThe default schedule against the bar (no worse mean and p95 lag than fixed 2 s; at most half its requests at spreads up to 1.1, no more at 1.5 and 2.0):\n\n");
    for v in verdicts {
        out.push_str(&v);
        out.push('\n');
    }
    out.push_str("\nPer length (requests/job; mean lag s; p95 lag s):\n\n| pattern | spread | poller | short (1 s) | medium (30 s) | long (120 s) | client CPU (ms) |\n|---|---:|---|---|---|---|---:|\n");
    for r in results {
        let cells: Vec<String> = r
            .by_length
            .iter()
            .map(|m| {
                format!(
                    "{:.1}; {:.2}; {:.2}",
                    mean(&m.requests),
                    mean(&m.lags),
                    percentile(&m.lags, 95.0)
                )
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.pattern.name(),
            r.spread,
            r.name,
            cells.join(" | "),
            r.cpu.as_millis()
        ));
    }
    out.push_str(&format!(
        "\n![requests per job and mean lag by poller, spread {}, rounds above and poisson below](bench-poll.svg)\n",
        chart_spread(results)
    ));
    out
}

/// A poller's name short enough to sit under its group of bars.
fn chart_label(name: &str) -> String {
    match name {
        "webhook, 20% lost" => "20% lost".to_owned(),
        "default, job set" => "default set".to_owned(),
        "fixed 2 s, job set" => "2 s set".to_owned(),
        other => other.trim_start_matches("fixed ").to_owned(),
    }
}

/// The spread the chart shows: 1, where waiting differs most between the
/// patterns, or the first measured.
fn chart_spread(all: &[PollerResult]) -> f64 {
    all.iter()
        .map(|r| r.spread)
        .find(|s| (*s - 1.0).abs() < 1e-9)
        .or_else(|| all.first().map(|r| r.spread))
        .unwrap_or(1.0)
}

fn chart(all: &[PollerResult], path: &std::path::Path) -> Result<()> {
    let shown = chart_spread(all);
    let mut patterns: Vec<Pattern> = Vec::new();
    for r in all {
        if !patterns.contains(&r.pattern) {
            patterns.push(r.pattern);
        }
    }
    let row_height = 420;
    let root = SVGBackend::new(path, (1200, row_height * patterns.len().max(1) as u32))
        .into_drawing_area();
    root.fill(&WHITE)?;
    let rows = root.split_evenly((patterns.len().max(1), 1));
    for (row, &pattern) in rows.into_iter().zip(&patterns) {
        let results: Vec<&PollerResult> = all
            .iter()
            .filter(|r| r.spread == shown && r.pattern == pattern)
            .collect();
        chart_row(&row, &results, pattern, shown)?;
    }
    root.present()?;
    Ok(())
}

fn chart_row(
    row: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    results: &[&PollerResult],
    pattern: Pattern,
    spread: f64,
) -> Result<()> {
    let (left, right) = row.split_horizontally(600);
    let requests_title = format!("{}, spread {spread}: requests per job", pattern.name());
    let lag_title = format!(
        "{}, spread {spread}: mean lag (simulated s)",
        pattern.name()
    );
    let panels = [(left, requests_title, 0usize), (right, lag_title, 1usize)];
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
    ];
    for (area, title, metric) in panels {
        let values: Vec<Vec<f64>> = results
            .iter()
            .map(|r| {
                r.by_length
                    .iter()
                    .map(|m| {
                        if metric == 0 {
                            mean(&m.requests)
                        } else {
                            mean(&m.lags)
                        }
                    })
                    .collect()
            })
            .collect();
        let top = values
            .iter()
            .flatten()
            .copied()
            .fold(0.0_f64, f64::max)
            .max(0.1);
        // A log scale keeps 2 requests and 1200 requests both readable.
        let mut chart = ChartBuilder::on(&area)
            .caption(&title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..(results.len() as f64), (0.003..top * 2.0).log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|y| {
                if *y < 0.01 {
                    String::new()
                } else {
                    format!("{y}")
                }
            })
            .draw()?;
        // Poller names under their groups of bars, below the bars' base.
        for (p, r) in results.iter().enumerate() {
            chart.draw_series(std::iter::once(Text::new(
                chart_label(r.name),
                (p as f64 + 0.05, 0.0065),
                ("sans-serif", 12).into_font(),
            )))?;
        }
        for (p, per_length) in values.iter().enumerate() {
            for (l, v) in per_length.iter().enumerate() {
                let x0 = p as f64 + 0.1 + l as f64 * 0.27;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.01), (x0 + 0.25, v.max(0.011))],
                    colours[l].filled(),
                )))?;
            }
        }
        for (l, (id, median)) in LENGTHS.iter().enumerate() {
            let c = colours[l];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, 0.01), (0.0, 0.01)],
                    c.filled(),
                )))?
                .label(format!("{id} ({median} s)"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}
