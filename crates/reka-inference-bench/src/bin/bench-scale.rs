//! Scale benchmark: thousands of jobs in flight at once, waited for by
//! per-job polling and by the list-based job set, in the same run.
//!
//! `cargo make bench-scale` (or `bench-scale --jobs 1000,10000`). Each
//! measurement runs in a child process of its own, so that its peak memory
//! (RSS) and CPU time are those of one client doing one thing. Writes the
//! `bench-scale` section of `docs/PERFORMANCE.md`.
//!
//! The simulator (a separate process, `--scale` of real time) runs every job
//! at once on plentiful workers, durations lognormal around 30 s (p95 60 s).
//! Requests are the status, result and list requests the simulator answered
//! while the client waited (submits excluded); peak rate is the highest of
//! those per wall second; lag is from `completed_at` to the job set yielding
//! the job, in simulated seconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use reka_inference::{Client, Endpoint, JobSetOptions, ListFilter, PollPolicy};
use reka_inference_bench::{
    SimProcess, catalog_json, cpu_time, docs_dir, follow_requests, machine, mean, peak_rss_bytes,
    percentile, replace_section, write_catalog,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    mode: String,
    jobs: usize,
    failed: usize,
    requests: u64,
    peak_rps: u64,
    mean_lag: f64,
    p95_lag: f64,
    cpu_ms: u128,
    rss_mib: f64,
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = flag(&args, "--scale").map_or(Ok(0.2), |s| s.parse())?;
    if args.iter().any(|a| a == "--child") {
        let mode = flag(&args, "--mode").context("--mode")?;
        let jobs: usize = flag(&args, "--jobs").context("--jobs")?.parse()?;
        let base = flag(&args, "--base-url").context("--base-url")?;
        let outcome = child(&mode, jobs, &base, scale).await?;
        println!("{}", serde_json::to_string(&outcome)?);
        return Ok(());
    }
    let sizes: Vec<usize> = flag(&args, "--jobs")
        .unwrap_or_else(|| "1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let catalog = write_catalog("scale", &catalog_json(&[("scale", 30.0, 60.0, 1_000_000)]))?;
    let sim = SimProcess::start(&[
        "--time-scale".into(),
        scale.to_string(),
        "--catalog".into(),
        catalog.display().to_string(),
    ])?;
    let exe = std::env::current_exe()?;
    let mut outcomes = Vec::new();
    for &n in &sizes {
        for mode in ["per-job", "job-set"] {
            eprintln!("bench-scale: {n} jobs, {mode}");
            sim.reset().await?;
            // The orchestrator has nothing else to do meanwhile: block.
            let out = std::process::Command::new(&exe)
                .args(["--child", "--mode", mode, "--jobs", &n.to_string()])
                .args(["--base-url", sim.base_url(), "--scale", &scale.to_string()])
                .stderr(std::process::Stdio::inherit())
                .output()?;
            anyhow::ensure!(out.status.success(), "the {mode} run of {n} jobs failed");
            let line = String::from_utf8(out.stdout)?;
            outcomes.push(serde_json::from_str::<Outcome>(line.trim())?);
        }
    }
    let _ = std::fs::remove_file(&catalog);
    let report = render(&outcomes, scale);
    println!("{report}");
    if !args.iter().any(|a| a == "--no-docs") {
        let docs = docs_dir();
        std::fs::create_dir_all(&docs)?;
        replace_section(&docs.join("PERFORMANCE.md"), "bench-scale", &report)?;
    }
    Ok(())
}

async fn child(mode: &str, n: usize, base: &str, scale: f64) -> Result<Outcome> {
    let client = Client::builder()
        .api_key(reka_inference_sim::DEV_API_KEY)
        .base_url(base)
        .poll_policy(PollPolicy::default().scaled(scale))
        .wait_timeout(Duration::from_secs(600))
        .build()?;
    let endpoint: Endpoint = "scale/text-to-image".parse()?;
    let jobs: Vec<_> = futures::stream::iter(0..n)
        .map(|i| client.submit(&endpoint, json!({"prompt": format!("job {i}")})))
        .buffered(64)
        .try_collect()
        .await?;

    let stats_http = reqwest::Client::new();
    let stats_url = format!("{base}/_sim/stats");
    let fetch = |http: reqwest::Client, url: String| async move {
        let stats: reka_inference_sim::Stats = http.get(url).send().await?.json().await?;
        anyhow::Ok(follow_requests(&stats))
    };
    let before = fetch(stats_http.clone(), stats_url.clone()).await?;
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (peak, http, url) = (peak.clone(), stats_http.clone(), stats_url.clone());
        tokio::spawn(async move {
            let mut last = before;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Ok(now) = fetch(http.clone(), url.clone()).await {
                    peak.fetch_max(now.saturating_sub(last), Ordering::Relaxed);
                    last = now;
                }
            }
        })
    };

    let options = match mode {
        "per-job" => JobSetOptions::default()
            .list_threshold(usize::MAX)
            .max_concurrency(64),
        _ => JobSetOptions::default(),
    };
    let mut set = client.job_set().with_options(options);
    for job in jobs {
        set.push(job);
    }
    let cpu0 = cpu_time();
    let mut returned: HashMap<String, DateTime<Utc>> = HashMap::with_capacity(n);
    let mut failed = 0;
    let mut stream = std::pin::pin!(set.into_stream());
    while let Some(outcome) = stream.next().await {
        if outcome.result.is_err() {
            failed += 1;
        }
        returned.insert(outcome.job.id().to_owned(), Utc::now());
    }
    let cpu = cpu_time() - cpu0;
    sampler.abort();
    let after = fetch(stats_http, stats_url).await?;

    let completed: HashMap<String, DateTime<Utc>> = client
        .jobs()
        .list(ListFilter::default().endpoint(&endpoint))
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .filter_map(|i| Some((i.request_id, i.completed_at?)))
        .collect();
    let lags: Vec<f64> = returned
        .iter()
        .filter_map(|(id, at)| {
            let done = completed.get(id)?;
            Some(
                (*at - *done)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .as_secs_f64()
                    / scale,
            )
        })
        .collect();
    Ok(Outcome {
        mode: mode.to_owned(),
        jobs: n,
        failed,
        requests: after.saturating_sub(before),
        peak_rps: peak.load(Ordering::Relaxed),
        mean_lag: mean(&lags),
        p95_lag: percentile(&lags, 95.0),
        cpu_ms: cpu.as_millis(),
        rss_mib: peak_rss_bytes().unwrap_or(0) as f64 / 1024.0 / 1024.0,
    })
}

fn render(outcomes: &[Outcome], scale: f64) -> String {
    let mut out = format!(
        "Measured {} on {}; simulator at {scale} of real time, every job running at once, durations lognormal (median 30 s, p95 60 s).\n\n",
        Utc::now().format("%Y-%m-%d"),
        machine()
    );
    out.push_str("| jobs | waited by | requests | requests/job | peak requests/s | mean lag (s) | p95 lag (s) | client CPU (ms) | client peak RSS (MiB) | failed |\n");
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for o in outcomes {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} | {:.2} | {:.2} | {} | {:.1} | {} |\n",
            o.jobs,
            o.mode,
            o.requests,
            o.requests as f64 / o.jobs.max(1) as f64,
            o.peak_rps,
            o.mean_lag,
            o.p95_lag,
            o.cpu_ms,
            o.rss_mib,
            o.failed
        ));
    }
    out.push('\n');
    for pair in outcomes.chunks(2) {
        if let [per_job, set] = pair {
            out.push_str(&format!(
                "- {} jobs: the job set needs {:.3} of the requests of per-job polling ({} vs {}), mean lag {:.2} s vs {:.2} s.\n",
                set.jobs,
                set.requests as f64 / per_job.requests.max(1) as f64,
                set.requests,
                per_job.requests,
                set.mean_lag,
                per_job.mean_lag
            ));
        }
    }
    out
}
