//! Status requests per job and detection lag of the default poll schedule,
//! next to a fixed 2 s poller (what Reka's own CLI does), in the same run.
//!
//! `cargo run --release -p reka-inference --example poll_compare`
//!
//! Jobs of 1 s, 30 s and 120 s (simulated) run on a simulator at 1/20 of
//! real time; both pollers are scaled to match. For each length, one job
//! runs alone first (the default schedule has learnt nothing yet), then
//! four more run together. Detection lag is the time from the simulator
//! marking a job done (`completed_at`) to `wait` returning, in simulated
//! seconds.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use reka_inference::{Client, Endpoint, ListFilter, PollPolicy};
use reka_inference_sim::{Catalog, DEV_API_KEY, SimConfig};
use serde_json::json;

const SCALE: f64 = 0.05;
const LENGTHS: [(&str, u32); 3] = [("short", 1), ("medium", 30), ("long", 120)];

#[derive(Default)]
struct Row {
    polls: f64,
    lags: Vec<f64>,
}

async fn measure(
    policy: PollPolicy,
) -> Result<Vec<(String, Row, Row)>, Box<dyn std::error::Error>> {
    let models: Vec<_> = LENGTHS
        .iter()
        .map(|(name, secs)| {
            json!({"model_id": name, "capability": "text-to-image", "workers": 16, "duration": {"fixed": secs}})
        })
        .collect();
    let catalog = Catalog::from_json(&json!({"chat_models": ["q"], "models": models}).to_string())?;
    let sim =
        reka_inference_sim::start(SimConfig::new().time_scale(SCALE).catalog(catalog)).await?;
    let client = Client::builder()
        .api_key(DEV_API_KEY)
        .base_url(sim.base_url())
        .poll_policy(policy)
        .build()?;
    let mut rows = Vec::new();
    for (name, _) in LENGTHS {
        let endpoint: Endpoint = format!("{name}/text-to-image").parse()?;
        let first = run_batch(&client, &sim, &endpoint, 1).await?;
        let learnt = run_batch(&client, &sim, &endpoint, 4).await?;
        rows.push((name.to_owned(), first, learnt));
    }
    sim.shutdown().await;
    Ok(rows)
}

async fn run_batch(
    client: &Client,
    sim: &reka_inference_sim::RunningSim,
    endpoint: &Endpoint,
    n: usize,
) -> Result<Row, Box<dyn std::error::Error>> {
    let polls =
        |s: &reka_inference_sim::Stats| s.count("get_status", "200") + s.count("get_result", "200");
    let before = polls(&sim.stats().await);
    let mut waits = Vec::new();
    for _ in 0..n {
        let job = client.submit(endpoint, json!({})).await?;
        waits.push(async move {
            let r = job.wait().await;
            (job.id().to_owned(), r.map(|_| Utc::now()))
        });
    }
    let done = futures::future::join_all(waits).await;
    let after = polls(&sim.stats().await);
    let completed: HashMap<String, DateTime<Utc>> = client
        .requests()
        .list(ListFilter::default().endpoint(endpoint))
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .filter_map(|i| Some((i.request_id, i.completed_at?)))
        .collect();
    let mut row = Row {
        polls: (after - before) as f64 / n as f64,
        lags: Vec::new(),
    };
    for (id, returned) in done {
        let returned = returned?;
        let finished = completed.get(&id).ok_or("no completed_at")?;
        let wall = (returned - *finished).to_std().unwrap_or(Duration::ZERO);
        row.lags.push(wall.as_secs_f64() / SCALE);
    }
    Ok(row)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ours = measure(PollPolicy::default().scaled(SCALE)).await?;
    let fixed = measure(PollPolicy::fixed(Duration::from_secs(2)).scaled(SCALE)).await?;
    println!(
        "| job | poller | requests/job (first) | requests/job (learnt) | mean lag s (first) | mean lag s (learnt) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut totals = [(0.0, 0.0), (0.0, 0.0)];
    for (i, ((name, of, ol), (_, ff, fl))) in ours.iter().zip(fixed.iter()).enumerate() {
        let _ = i;
        for (label, first, learnt, t) in [("default", of, ol, 0), ("fixed 2 s", ff, fl, 1)] {
            println!(
                "| {name} ({}s) | {label} | {:.1} | {:.1} | {:.2} | {:.2} |",
                LENGTHS.iter().find(|l| l.0 == name).map_or(0, |l| l.1),
                first.polls,
                learnt.polls,
                mean(&first.lags),
                mean(&learnt.lags)
            );
            totals[t].0 += learnt.polls;
            totals[t].1 += mean(&learnt.lags);
        }
    }
    println!(
        "\nlearnt, summed over the three lengths: requests ratio default/fixed-2s = {:.2}, mean-lag ratio = {:.2}",
        totals[0].0 / totals[1].0,
        totals[0].1 / totals[1].1
    );
    Ok(())
}
