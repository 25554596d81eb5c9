//! Polling benchmark: status requests per job and detection lag of the
//! default `wait` and of webhook-driven waits (with every delivery made, and
//! with the simulator losing 20% of them), next to fixed-interval pollers
//! (2 s: Reka's own CLI; 0.5 s: Replicate; 0.1 s: fal), in one run against
//! one simulator.
//!
//! `cargo make bench-poll` (or build the simulator and this crate in release
//! mode and run `bench-poll`). Writes `docs/bench-poll.svg` and the
//! `bench-poll` section of `docs/PERFORMANCE.md`.
//!
//! Jobs of about 1 s, 30 s and 120 s (simulated), their durations spread so
//! that p95 = `spread` x median for each spread of `--spreads` (1 = fixed),
//! on endpoints with two workers for `--concurrency` jobs, so that most jobs
//! wait in a queue before they start, as on a busy service. For each poller
//! (a fresh client: nothing learnt), spread and length, one job runs alone
//! first, then `--rounds` rounds of `--concurrency` jobs. Requests are the
//! status, result and list requests per job after its submit (the webhook
//! row's confirming fetch included); detection lag is the time from the
//! simulator marking a job done (`completed_at`) to `wait` returning, in
//! simulated seconds.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use plotters::prelude::*;
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

struct Args {
    scale: f64,
    /// p95 / median of the job durations, one run each (1 = fixed).
    spreads: Vec<f64>,
    rounds: usize,
    concurrency: usize,
    write_docs: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        scale: 0.05,
        spreads: vec![1.0, 1.1, 1.5, 2.0],
        rounds: 2,
        concurrency: 4,
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
            "--rounds" => a.rounds = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--no-docs" => a.write_docs = false,
            other => anyhow::bail!(
                "unknown flag {other} (--scale F --spreads F,F,.. --rounds N --concurrency N --no-docs)"
            ),
        }
    }
    Ok(a)
}

#[derive(Default, Clone)]
struct Measure {
    first_requests: f64,
    first_lag: f64,
    requests: Vec<f64>,
    lags: Vec<f64>,
}

struct PollerResult {
    name: &'static str,
    spread: f64,
    by_length: Vec<Measure>,
    cpu: Duration,
}

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
    // (name, policy, submit with the webhook, simulator faults)
    let pollers: [(&'static str, PollPolicy, bool, Option<&str>); 6] = [
        ("webhook", PollPolicy::default(), true, None),
        (
            "webhook, 20% lost",
            PollPolicy::default(),
            true,
            Some("webhook:lost=0.2"),
        ),
        ("default", PollPolicy::default(), false, None),
        (
            "fixed 2 s",
            PollPolicy::fixed(Duration::from_secs(2)),
            false,
            None,
        ),
        (
            "fixed 0.5 s",
            PollPolicy::fixed(Duration::from_millis(500)),
            false,
            None,
        ),
        (
            "fixed 0.1 s",
            PollPolicy::fixed(Duration::from_millis(100)),
            false,
            None,
        ),
    ];
    let mut results = Vec::new();
    let started = std::time::Instant::now();
    for (si, &spread) in args.spreads.iter().enumerate() {
        for (name, policy, webhook, faults) in &pollers {
            eprintln!(
                "bench-poll: spread {spread}, {name} ({} s in)",
                started.elapsed().as_secs()
            );
            sim.reset().await?;
            if let Some(spec) = faults {
                sim.set_faults(spec).await?;
            }
            let client = Client::builder()
                .api_key(reka_inference_sim::DEV_API_KEY)
                .base_url(sim.base_url())
                .poll_policy(policy.clone().scaled(args.scale))
                .build()?;
            let hook = webhook.then_some(&receiver);
            let cpu0 = cpu_time();
            let mut by_length = Vec::new();
            for (id, _) in LENGTHS {
                let endpoint: Endpoint = format!("{}/text-to-image", model_id(id, si)).parse()?;
                let (first_requests, first_lags) =
                    batch(&client, &sim, &endpoint, 1, args.scale, hook).await?;
                let mut m = Measure {
                    first_requests,
                    first_lag: first_lags[0],
                    ..Measure::default()
                };
                for _ in 0..args.rounds {
                    let (requests, lags) =
                        batch(&client, &sim, &endpoint, args.concurrency, args.scale, hook).await?;
                    m.requests.push(requests);
                    m.lags.extend(lags);
                }
                by_length.push(m);
            }
            results.push(PollerResult {
                name,
                spread,
                by_length,
                cpu: cpu_time() - cpu0,
            });
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

/// Runs `n` jobs at once; returns follow-up requests per job and each lag.
async fn batch(
    client: &Client,
    sim: &SimProcess,
    endpoint: &Endpoint,
    n: usize,
    scale: f64,
    webhook: Option<&WebhookReceiver>,
) -> Result<(f64, Vec<f64>)> {
    let before = follow_requests(&sim.stats().await?);
    let mut waits = Vec::new();
    for i in 0..n {
        let mut options = SubmitOptions::default();
        if let Some(r) = webhook {
            options = options.webhook(r);
        }
        let job = client
            .submit_with(endpoint, json!({"prompt": format!("bench {i}")}), options)
            .await?;
        waits.push(async move {
            let done = job.wait().await;
            (job.id().to_owned(), done.map(|_| Utc::now()))
        });
    }
    let finished = futures::future::join_all(waits).await;
    let after = follow_requests(&sim.stats().await?);
    let completed: HashMap<String, DateTime<Utc>> = client
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
        let returned = returned?;
        let done = completed.get(&id).context("a job without completed_at")?;
        let wall = (returned - *done).to_std().unwrap_or(Duration::ZERO);
        lags.push(wall.as_secs_f64() / scale);
    }
    Ok(((after - before) as f64 / n as f64, lags))
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
        "Measured {} on {}; simulator at {} of real time; {} workers per endpoint for {} concurrent jobs (most jobs queue first); {} rounds per length after one job alone; spreads are p95 / median of the job durations (1 = fixed).\n\n",
        Utc::now().format("%Y-%m-%d"),
        machine(),
        args.scale,
        WORKERS,
        args.concurrency,
        args.rounds,
    ));
    out.push_str("| spread | poller | requests/job | mean lag (s) | p95 lag (s) | first jobs: requests | first jobs: mean lag (s) | requests vs fixed 2 s | mean lag vs fixed 2 s | p95 lag vs fixed 2 s |\n");
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for &spread in &args.spreads {
        let here: Vec<&PollerResult> = results.iter().filter(|r| r.spread == spread).collect();
        let base = here
            .iter()
            .find(|r| r.name == "fixed 2 s")
            .map(|r| totals(r));
        for r in &here {
            let t = totals(r);
            let first_req: f64 = r.by_length.iter().map(|m| m.first_requests).sum::<f64>()
                / r.by_length.len() as f64;
            let first_lags: Vec<f64> = r.by_length.iter().map(|m| m.first_lag).collect();
            let (rr, lr, pr) = base.map_or((f64::NAN, f64::NAN, f64::NAN), |b| {
                (t.0 / b.0, t.1 / b.1, t.2 / b.2)
            });
            out.push_str(&format!(
                "| {spread} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
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
        }
    }
    out.push_str("\nPer length (requests/job; mean lag s; p95 lag s):\n\n| spread | poller | short (1 s) | medium (30 s) | long (120 s) | client CPU (ms) |\n|---:|---|---|---|---|---:|\n");
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
            "| {} | {} | {} | {} |\n",
            r.spread,
            r.name,
            cells.join(" | "),
            r.cpu.as_millis()
        ));
    }
    out.push_str("\n![requests per job and mean lag by poller, spread 1.5](bench-poll.svg)\n");
    out
}

/// A poller's name short enough to sit under its group of bars.
fn chart_label(name: &str) -> String {
    match name {
        "webhook, 20% lost" => "20% lost".to_owned(),
        other => other.to_owned(),
    }
}

fn chart(all: &[PollerResult], path: &std::path::Path) -> Result<()> {
    let shown = all
        .iter()
        .map(|r| r.spread)
        .find(|s| (*s - 1.5).abs() < 1e-9)
        .or_else(|| all.first().map(|r| r.spread))
        .unwrap_or(1.0);
    let results: Vec<&PollerResult> = all.iter().filter(|r| r.spread == shown).collect();
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let panels = [
        (left, "requests per job (after learning)", 0usize),
        (right, "mean detection lag (simulated s)", 1usize),
    ];
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
            .caption(title, ("sans-serif", 16))
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
    root.present()?;
    Ok(())
}
