//! Polling benchmark: status requests per job, detection lag and client CPU
//! of the default `wait` next to fixed-interval pollers (2 s: Reka's own
//! CLI; 0.5 s: Replicate; 0.1 s: fal), in one run against one simulator.
//!
//! `cargo make bench-poll` (or build the simulator and this crate in release
//! mode and run `bench-poll`). Writes `docs/bench-poll.svg` and the
//! `bench-poll` section of `docs/PERFORMANCE.md`.
//!
//! Jobs of about 1 s, 30 s and 120 s (simulated; three endpoints with tight
//! lognormal durations) run on a simulator at `--scale` of real time, every
//! poller scaled alike. For each poller (a fresh client: nothing learnt)
//! and endpoint, one job runs alone first, then `--rounds` rounds of
//! `--concurrency` jobs. Detection lag is the time from the simulator
//! marking a job done (`completed_at`) to `wait` returning, in simulated
//! seconds.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use plotters::prelude::*;
use reka_inference::{Client, Endpoint, ListFilter, PollPolicy};
use reka_inference_bench::{
    SimProcess, catalog_json, cpu_time, docs_dir, follow_requests, machine, mean, percentile,
    replace_section, write_catalog,
};
use serde_json::json;

/// `(endpoint model, median s, p95 s)`; `--spread` widens the p95.
const LENGTHS: [(&str, f64); 3] = [("short", 1.0), ("medium", 30.0), ("long", 120.0)];

struct Args {
    scale: f64,
    /// p95 / median of the job durations (1 = fixed durations).
    spread: f64,
    rounds: usize,
    concurrency: usize,
    write_docs: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        scale: 0.05,
        spread: 1.0,
        rounds: 3,
        concurrency: 4,
        write_docs: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().context("a flag needs a value");
        match flag.as_str() {
            "--scale" => a.scale = value()?.parse()?,
            "--spread" => a.spread = value()?.parse()?,
            "--rounds" => a.rounds = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--no-docs" => a.write_docs = false,
            other => anyhow::bail!(
                "unknown flag {other} (--scale F --spread F --rounds N --concurrency N --no-docs)"
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
    by_length: Vec<Measure>,
    cpu: Duration,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let catalog = write_catalog(
        "poll",
        &catalog_json(&LENGTHS.map(|(id, median)| (id, median, median * args.spread, 64))),
    )?;
    let sim = SimProcess::start(&[
        "--time-scale".into(),
        args.scale.to_string(),
        "--catalog".into(),
        catalog.display().to_string(),
    ])?;
    let pollers: [(&'static str, PollPolicy); 4] = [
        ("default", PollPolicy::default()),
        ("fixed 2 s", PollPolicy::fixed(Duration::from_secs(2))),
        ("fixed 0.5 s", PollPolicy::fixed(Duration::from_millis(500))),
        ("fixed 0.1 s", PollPolicy::fixed(Duration::from_millis(100))),
    ];
    let mut results = Vec::new();
    for (name, policy) in pollers {
        eprintln!("bench-poll: {name}");
        sim.reset().await?;
        let client = Client::builder()
            .api_key(reka_inference_sim::DEV_API_KEY)
            .base_url(sim.base_url())
            .poll_policy(policy.scaled(args.scale))
            .build()?;
        let cpu0 = cpu_time();
        let mut by_length = Vec::new();
        for (id, _) in LENGTHS {
            let endpoint: Endpoint = format!("{id}/text-to-image").parse()?;
            let (first_requests, first_lags) =
                batch(&client, &sim, &endpoint, 1, args.scale).await?;
            let mut m = Measure {
                first_requests,
                first_lag: first_lags[0],
                ..Measure::default()
            };
            for _ in 0..args.rounds {
                let (requests, lags) =
                    batch(&client, &sim, &endpoint, args.concurrency, args.scale).await?;
                m.requests.push(requests);
                m.lags.extend(lags);
            }
            by_length.push(m);
        }
        results.push(PollerResult {
            name,
            by_length,
            cpu: cpu_time() - cpu0,
        });
    }
    let _ = std::fs::remove_file(&catalog);

    let report = render(&results, &args);
    println!("{report}");
    if args.write_docs {
        let docs = docs_dir();
        std::fs::create_dir_all(&docs)?;
        if args.spread <= 1.0 {
            chart(&results, &docs.join("bench-poll.svg"))?;
        }
        let section = if args.spread > 1.0 {
            "bench-poll-spread"
        } else {
            "bench-poll"
        };
        replace_section(&docs.join("PERFORMANCE.md"), section, &report)?;
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
) -> Result<(f64, Vec<f64>)> {
    let before = follow_requests(&sim.stats().await?);
    let mut waits = Vec::new();
    for i in 0..n {
        let job = client
            .submit(endpoint, json!({"prompt": format!("bench {i}")}))
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
    let mut lags = Vec::new();
    for (id, returned) in finished {
        let returned = returned?;
        let done = completed.get(&id).context("a job without completed_at")?;
        let wall = (returned - *done).to_std().unwrap_or(Duration::ZERO);
        lags.push(wall.as_secs_f64() / scale);
    }
    Ok(((after - before) as f64 / n as f64, lags))
}

fn render(results: &[PollerResult], args: &Args) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Measured {} on {}; simulator at {} of real time; job durations {}; {} rounds of {} concurrent jobs per length after one job alone.\n\n",
        Utc::now().format("%Y-%m-%d"),
        machine(),
        args.scale,
        if args.spread > 1.0 { format!("lognormal with p95 = {} x median", args.spread) } else { "fixed".to_owned() },
        args.rounds,
        args.concurrency
    ));
    out.push_str("| job | poller | requests/job, first job | requests/job | mean lag (s) | p95 lag (s) | first-job lag (s) |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for (i, (id, median)) in LENGTHS.iter().enumerate() {
        for r in results {
            let m = &r.by_length[i];
            out.push_str(&format!(
                "| {id} ({median} s) | {} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} |\n",
                r.name,
                m.first_requests,
                mean(&m.requests),
                mean(&m.lags),
                percentile(&m.lags, 95.0),
                m.first_lag
            ));
        }
    }
    out.push_str("\n| poller | requests/job (all lengths) | mean lag (s) | p95 lag (s) | client CPU (ms) | requests vs fixed 2 s | mean lag vs fixed 2 s |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    let totals: Vec<(f64, f64, f64)> = results
        .iter()
        .map(|r| {
            let req: f64 = r.by_length.iter().map(|m| mean(&m.requests)).sum::<f64>()
                / r.by_length.len() as f64;
            let lags: Vec<f64> = r
                .by_length
                .iter()
                .flat_map(|m| m.lags.iter().copied())
                .collect();
            (req, mean(&lags), percentile(&lags, 95.0))
        })
        .collect();
    let base = results
        .iter()
        .position(|r| r.name == "fixed 2 s")
        .map(|i| totals[i]);
    for (r, t) in results.iter().zip(&totals) {
        let (rr, lr) = base.map_or((f64::NAN, f64::NAN), |b| (t.0 / b.0, t.1 / b.1));
        out.push_str(&format!(
            "| {} | {:.1} | {:.2} | {:.2} | {} | {:.2} | {:.2} |\n",
            r.name,
            t.0,
            t.1,
            t.2,
            r.cpu.as_millis(),
            rr,
            lr
        ));
    }
    let first_ok = results
        .iter()
        .find(|r| r.name == "default")
        .zip(results.iter().find(|r| r.name == "fixed 2 s"));
    if let Some((ours, fixed)) = first_ok {
        let ours_first: f64 = ours.by_length.iter().map(|m| m.first_requests).sum();
        let fixed_first: f64 = fixed.by_length.iter().map(|m| m.first_requests).sum();
        out.push_str(&format!(
            "\nFirst jobs (nothing learnt): {ours_first:.0} requests for the three lengths with the default schedule, {fixed_first:.0} with fixed 2 s.\n"
        ));
    }
    out.push_str("\n![requests per job and mean lag by poller](bench-poll.svg)\n");
    out
}

fn chart(results: &[PollerResult], path: &std::path::Path) -> Result<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(450);
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
                r.name.to_owned(),
                (p as f64 + 0.12, 0.0065),
                ("sans-serif", 13).into_font(),
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
