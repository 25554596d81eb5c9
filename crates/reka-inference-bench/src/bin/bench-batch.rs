//! Batch benchmark (issue 14): `reka-inference batch` on 10,000 lines
//! against a submit rate limit, the release CLI binary as a child process.
//!
//! `cargo make bench-batch` (or `bench-batch [--lines N] [--rate R]
//! [--burst B] [--scale S] [--concurrency N] [--no-docs] [--keep]`;
//! `BENCH_BATCH_LINES=1000` is the quick configuration). Writes the
//! `bench-batch` section of `docs/PERFORMANCE.md`, but only for the full
//! configuration (10,000 lines at 100/s, burst 100, real time): a quick
//! run prints its figures and leaves the docs alone.
//!
//! The simulator (a separate process) refuses submits beyond a per-key
//! token bucket (`--submit-rate`, `--submit-burst`), so no client can
//! submit N lines faster than (N - burst) / rate seconds: that is the bound
//! the wall time is held against. Jobs last 3 s (median; p95 6 s,
//! lognormal) of wall time, on 2,000 workers: at 100 submits a second about
//! 330 jobs run at once (Little's law, mean 3.3 s), so no job waits in a
//! queue and the rate limit alone sets the pace.
//!
//! The simulator runs at real time (`--time-scale 1`, durations in the
//! catalog as they are meant) rather than faster: it reports each job's
//! `metrics.inference_time` in simulated seconds, and the CLI, which cannot
//! know the scale, learns its polling schedule from it. At 0.1 of real time
//! (30 s simulated jobs lasting 3 s) it learnt 30 s jobs and looked at each
//! about 8 s after it had ended; `--scale 0.1` shows it again.
//!
//! Measured: the wall time of the whole CLI process (spawn to exit), its
//! CPU time and peak RSS (`wait4`), the API requests the simulator
//! answered by operation and status (downloads of output files are not
//! API requests and the simulator does not count them: the files saved in
//! DIR are counted instead), `jobs_created`, `submit_rate_limited`, and
//! `results.jsonl`. The CLI runs with `--json`, and its events (submits,
//! pauses, progress, results) are read from its stdout as they come, to
//! tell where the time goes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use reka_inference::{Client, Endpoint, ListFilter};
use reka_inference_bench::{
    ChildUsage, SimProcess, catalog_json, docs_dir, machine, mean, percentile, replace_section,
    wait_with_usage, write_catalog,
};
use reka_inference_sim::Stats;
use serde_json::{Value, json};

/// The full configuration: the one whose figures go into the docs.
const FULL_LINES: usize = 10_000;
const RATE: f64 = 100.0;
const BURST: u64 = 100;
/// Real time: see the module's documentation for why not faster.
const SCALE: f64 = 1.0;
/// Wall seconds: median and p95 of the lognormal job duration (the catalog
/// holds them divided by the scale).
const MEDIAN_S: f64 = 3.0;
const P95_S: f64 = 6.0;
const WORKERS: u32 = 2_000;
const MODEL: &str = "batch";
const ENDPOINT: &str = "batch/text-to-image";

/// The targets.
const TARGET_RATIO: f64 = 1.10;
const TARGET_REQUESTS_PER_LINE: f64 = 3.0;
const TARGET_RSS_MIB: f64 = 100.0;

struct Config {
    lines: usize,
    rate: f64,
    burst: u64,
    scale: f64,
    concurrency: Option<usize>,
    docs: bool,
    keep: bool,
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn config() -> Result<Config> {
    let args: Vec<String> = std::env::args().collect();
    let lines = match flag(&args, "--lines").or_else(|| std::env::var("BENCH_BATCH_LINES").ok()) {
        Some(n) => n.trim().parse().context("--lines / BENCH_BATCH_LINES")?,
        None => FULL_LINES,
    };
    let rate: f64 = flag(&args, "--rate").map_or(Ok(RATE), |s| s.parse())?;
    let burst: u64 = flag(&args, "--burst").map_or(Ok(BURST), |s| s.parse())?;
    let scale: f64 = flag(&args, "--scale").map_or(Ok(SCALE), |s| s.parse())?;
    let concurrency = flag(&args, "--concurrency")
        .map(|s| s.parse())
        .transpose()?;
    ensure!(lines > 0, "--lines: at least 1");
    ensure!(rate > 0.0 && rate.is_finite(), "--rate: a positive number");
    ensure!(
        scale > 0.0 && scale.is_finite(),
        "--scale: a positive number"
    );
    let full = lines == FULL_LINES
        && rate == RATE
        && burst == BURST
        && scale == SCALE
        && concurrency.is_none();
    Ok(Config {
        lines,
        rate,
        burst,
        scale,
        concurrency,
        docs: full && !args.iter().any(|a| a == "--no-docs"),
        keep: args.iter().any(|a| a == "--keep"),
    })
}

/// The CLI binary: `REKA_CLI_BIN`, else the one beside this program.
fn cli_binary() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("REKA_CLI_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .context("no directory for this program")?
        .join("reka-inference");
    ensure!(
        bin.exists(),
        "{} not found: build it with `cargo build --release -p reka-inference-cli`, or set REKA_CLI_BIN",
        bin.display()
    );
    Ok(bin)
}

/// What the CLI's `--json` events said, with when each was read (seconds
/// since the CLI was started).
#[derive(Default)]
struct Events {
    counts: BTreeMap<String, u64>,
    unreadable: u64,
    first_submitted: Option<f64>,
    last_submitted: Option<f64>,
    last_finished: Option<f64>,
    last_result: Option<f64>,
    /// `finished` -> `result` of each line (its download), seconds.
    finished_at: HashMap<String, f64>,
    download_secs: Vec<f64>,
    /// Accepted submits in each whole second since the start.
    submitted_per_second: BTreeMap<u64, u64>,
    /// When each accepted submit was reported, in order.
    submit_times: Vec<f64>,
    /// Pause events by reason.
    paused: BTreeMap<String, u64>,
    /// Each announced pause, as (from, until) seconds since the start.
    pauses: Vec<(f64, f64)>,
    max_queued: u64,
    max_running: u64,
    max_in_flight: u64,
    max_submitting: u64,
    results_not_ok: u64,
    summary: Option<Value>,
}

impl Events {
    fn read(&mut self, t: f64, line: &str) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            self.unreadable += 1;
            return;
        };
        let kind = v["event"].as_str().unwrap_or("?").to_owned();
        *self.counts.entry(kind.clone()).or_default() += 1;
        let id = v["id"].as_str().unwrap_or_default();
        match kind.as_str() {
            "submitted" => {
                self.first_submitted.get_or_insert(t);
                self.last_submitted = Some(t);
                *self.submitted_per_second.entry(t as u64).or_default() += 1;
                self.submit_times.push(t);
            }
            "finished" => {
                self.last_finished = Some(t);
                self.finished_at.insert(id.to_owned(), t);
            }
            "result" => {
                self.last_result = Some(t);
                let result = &v["result"];
                if result["ok"].as_bool() != Some(true) {
                    self.results_not_ok += 1;
                }
                if let Some(at) = result["id"]
                    .as_str()
                    .and_then(|i| self.finished_at.remove(i))
                {
                    self.download_secs.push(t - at);
                }
            }
            "paused" => {
                let reason = v["reason"].as_str().unwrap_or("?").to_owned();
                *self.paused.entry(reason).or_default() += 1;
                let secs = v["seconds"].as_f64().unwrap_or(0.0).max(0.0);
                self.pauses.push((t, t + secs));
            }
            "progress" => {
                let p = &v["progress"];
                let get = |k: &str| p[k].as_u64().unwrap_or(0);
                self.max_queued = self.max_queued.max(get("queued"));
                self.max_running = self.max_running.max(get("running"));
                self.max_in_flight = self.max_in_flight.max(get("in_flight"));
                self.max_submitting = self.max_submitting.max(get("submitting"));
            }
            "summary" => self.summary = Some(v),
            _ => {}
        }
    }
}

/// What `results.jsonl` and DIR hold after the run.
#[derive(Default)]
struct Saved {
    result_lines: usize,
    distinct_ids: usize,
    ok: usize,
    /// Files `results.jsonl` lists, and files found in `DIR/<id>/`.
    files_listed: usize,
    files_on_disk: usize,
    bytes_on_disk: u64,
    /// The CLI's `finished_at` of each request id (when it saw the job end).
    seen_finished: HashMap<String, DateTime<Utc>>,
}

fn read_saved(dir: &Path) -> Result<Saved> {
    let mut saved = Saved::default();
    let results = std::fs::read_to_string(dir.join("results.jsonl"))
        .with_context(|| format!("reading {}/results.jsonl", dir.display()))?;
    let mut ids = HashSet::new();
    for line in results.lines().filter(|l| !l.trim().is_empty()) {
        saved.result_lines += 1;
        let v: Value = serde_json::from_str(line).context("a line of results.jsonl")?;
        if let Some(id) = v["id"].as_str() {
            ids.insert(id.to_owned());
        }
        if v["ok"].as_bool() == Some(true) {
            saved.ok += 1;
        }
        saved.files_listed += v["files"].as_array().map_or(0, Vec::len);
        let finished = v["finished_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        if let (Some(rid), Some(at)) = (v["request_id"].as_str(), finished) {
            saved
                .seen_finished
                .insert(rid.to_owned(), at.with_timezone(&Utc));
        }
    }
    saved.distinct_ids = ids.len();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(entry.path())? {
            let meta = file?.metadata()?;
            if meta.is_file() {
                saved.files_on_disk += 1;
                saved.bytes_on_disk += meta.len();
            }
        }
    }
    Ok(saved)
}

/// Requests of `op` answered with `status` (`None`: any status).
fn count(stats: &Stats, op: &str, status: Option<&str>) -> u64 {
    stats.requests.get(op).map_or(0, |by| match status {
        Some(s) => by.get(s).copied().unwrap_or(0),
        None => by.values().sum(),
    })
}

struct Report {
    lines: usize,
    wall: f64,
    usage: ChildUsage,
    stats: Stats,
    events: Events,
    saved: Saved,
    /// Wall seconds from the CLI's start to the sim's last job completion.
    last_completion: Option<f64>,
    /// Detection lag (sim `completed_at` -> the CLI's `finished_at`), wall s.
    lags: Vec<f64>,
    /// The CLI's resident memory (seconds since its start, bytes).
    rss: Vec<(f64, u64)>,
}

/// `VmRSS` of process `pid`, in bytes; `None` once it is gone.
fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cfg = config()?;
    let cli = cli_binary()?;
    let catalog = write_catalog(
        "batch",
        &catalog_json(&[(MODEL, MEDIAN_S / cfg.scale, P95_S / cfg.scale, WORKERS)]),
    )?;
    let sim = SimProcess::start(&[
        "--time-scale".into(),
        cfg.scale.to_string(),
        "--catalog".into(),
        catalog.display().to_string(),
        "--submit-rate".into(),
        cfg.rate.to_string(),
        "--submit-burst".into(),
        cfg.burst.to_string(),
    ])?;
    let _ = std::fs::remove_file(&catalog);

    let work = std::env::temp_dir().join(format!("reka-bench-batch-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let input = work.join("input.jsonl");
    let out = work.join("out");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..cfg.lines {
            let line = json!({"prompt": format!("product shot {i}: a ceramic mug on a wooden table, soft light")});
            writeln!(w, "{line}")?;
        }
        w.flush()?;
    }

    eprintln!(
        "bench-batch: {} lines, submits limited to {}/s (burst {}), jobs of {MEDIAN_S} s (p95 {P95_S} s) of wall time, simulator at {} of real time; {}",
        cfg.lines,
        cfg.rate,
        cfg.burst,
        cfg.scale,
        work.display()
    );
    let report = run(&cfg, &cli, &sim, &input, &out).await;
    if cfg.keep {
        eprintln!("bench-batch: kept {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    let report = report?;

    let text = render(&cfg, &report);
    println!("{text}");
    let created = report.stats.jobs_created;
    ensure!(
        created == cfg.lines as u64,
        "the simulator created {created} jobs for {} lines",
        cfg.lines
    );
    ensure!(
        report.saved.result_lines == cfg.lines && report.saved.distinct_ids == cfg.lines,
        "results.jsonl has {} lines ({} distinct ids) for {} input lines",
        report.saved.result_lines,
        report.saved.distinct_ids,
        cfg.lines
    );
    ensure!(
        report.usage.exit_code == Some(0),
        "the CLI exited with {:?}",
        report.usage.exit_code
    );
    if cfg.docs {
        let docs = docs_dir();
        std::fs::create_dir_all(&docs)?;
        replace_section(&docs.join("PERFORMANCE.md"), "bench-batch", &text)?;
    } else {
        eprintln!("bench-batch: not the full configuration (or --no-docs): docs left alone");
    }
    Ok(())
}

async fn run(
    cfg: &Config,
    cli: &Path,
    sim: &SimProcess,
    input: &Path,
    out: &Path,
) -> Result<Report> {
    let mut cmd = Command::new(cli);
    cmd.arg("batch")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--endpoint", ENDPOINT, "--base-url", sim.base_url()])
        .args(["--api-key", reka_inference_sim::DEV_API_KEY, "--json"])
        .env_remove("REKA_API_KEY")
        .env_remove("REKA_BASE_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = cfg.concurrency {
        cmd.args(["--concurrency", &n.to_string()]);
    }
    let start_utc = Utc::now();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", cli.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().context("the CLI's stdout")?;
    let stderr = child.stderr.take().context("the CLI's stderr")?;
    let reader = std::thread::spawn(move || {
        let mut events = Events::default();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            events.read(start.elapsed().as_secs_f64(), &line);
        }
        events
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if text.len() < 64 * 1024 {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    });
    // While it runs: its resident memory every 0.1 s, to tell memory that
    // grows with the lines done from memory held by the jobs in flight.
    let mut waiting = tokio::task::spawn_blocking(move || wait_with_usage(pid));
    let mut rss = Vec::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let usage = loop {
        tokio::select! {
            done = &mut waiting => break done??,
            _ = tick.tick() => {
                if let Some(bytes) = vm_rss(pid) {
                    rss.push((start.elapsed().as_secs_f64(), bytes));
                }
            }
        }
    };
    let wall = start.elapsed().as_secs_f64();
    // `child` was reaped by `wait_with_usage`: never waited for again.
    drop(child);
    let events = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the event reader panicked"))?;
    let stderr = errors.join().unwrap_or_default();
    if usage.exit_code != Some(0) {
        eprintln!(
            "bench-batch: the CLI exited with {:?}; its stderr:\n{stderr}",
            usage.exit_code
        );
    }
    let stats = sim.stats().await?;
    let saved = read_saved(out)?;

    // When the simulator says each job ended, for the detection lag and the
    // tail after the last submit (listed after the stats were read).
    let client = Client::builder()
        .api_key(reka_inference_sim::DEV_API_KEY)
        .base_url(sim.base_url())
        .build()?;
    let endpoint: Endpoint = ENDPOINT.parse()?;
    let listed: Vec<_> = client
        .jobs()
        .list(ListFilter::default().endpoint(&endpoint))
        .try_collect()
        .await?;
    let mut lags = Vec::with_capacity(listed.len());
    let mut last_completion: Option<f64> = None;
    for item in &listed {
        let Some(done) = item.completed_at else {
            continue;
        };
        let since_start = secs(done - start_utc);
        last_completion = Some(last_completion.map_or(since_start, |l| l.max(since_start)));
        if let Some(seen) = saved.seen_finished.get(&item.request_id) {
            lags.push(secs(*seen - done));
        }
    }
    Ok(Report {
        lines: cfg.lines,
        wall,
        rss,
        usage,
        stats,
        events,
        saved,
        last_completion,
        lags,
    })
}

/// Replays the simulator's token bucket (full at the first accepted submit)
/// over the accepted submits' times: the tokens that arrived while the
/// bucket was full, unused, and the tokens left in it at the last submit.
/// Together, divided by the rate, they are the seconds by which the submit
/// phase outlasted (submits - burst) / rate (the times are when the CLI
/// reported each submit, a little after the simulator took its token).
fn unused_tokens(times: &[f64], rate: f64, burst: f64) -> (f64, f64) {
    let Some(&first) = times.first() else {
        return (0.0, 0.0);
    };
    let (mut tokens, mut last, mut wasted) = (burst, first, 0.0);
    for &t in times {
        tokens += rate * (t - last).max(0.0);
        last = t;
        if tokens > burst {
            wasted += tokens - burst;
            tokens = burst;
        }
        tokens -= 1.0;
    }
    (wasted, tokens.max(0.0))
}

/// The length of the union of `intervals`.
fn union_length(intervals: &[(f64, f64)]) -> f64 {
    let mut sorted = intervals.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut total, mut end) = (0.0, f64::NEG_INFINITY);
    for (a, b) in sorted {
        if b > end {
            total += b - a.max(end);
            end = b;
        }
    }
    total
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_microseconds().map_or(f64::NAN, |us| us as f64 / 1e6)
}

fn yes(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

fn render(cfg: &Config, r: &Report) -> String {
    let n = r.lines as f64;
    let bound = (cfg.lines as f64 - cfg.burst as f64).max(0.0) / cfg.rate;
    let ratio = r.wall / bound;
    let s = &r.stats;
    let submit_ok = count(s, "submit", Some("202"));
    let submit_429 = count(s, "submit", Some("429"));
    let submit_all = count(s, "submit", None);
    let get_result = count(s, "get_result", None);
    let list = count(s, "list_requests", None);
    let get_status = count(s, "get_status", None);
    let api_total: u64 = s.requests.values().flat_map(|by| by.values()).sum();
    let others = api_total.saturating_sub(submit_all + get_result + list + get_status);
    let per_line = api_total as f64 / n;
    let rss_mib = r.usage.peak_rss_bytes as f64 / 1024.0 / 1024.0;
    let cpu = r.usage.user + r.usage.system;

    let mut o = format!(
        "Measured {} on {}; simulator at {} of real time with submits limited to {}/s per key (burst {}), \
         jobs lognormal (median {MEDIAN_S} s, p95 {P95_S} s of wall time) on {WORKERS} workers; \
         {} lines of `{{\"prompt\": ...}}`, `reka-inference batch --json` at {}, downloads on.\n\n",
        Utc::now().format("%Y-%m-%d"),
        machine(),
        cfg.scale,
        cfg.rate,
        cfg.burst,
        r.lines,
        cfg.concurrency
            .map_or("its default --concurrency (8)".to_owned(), |c| format!(
                "--concurrency {c}"
            )),
    );
    o.push_str("| figure | this run | target | |\n|---|---:|---:|---|\n");
    o.push_str(&format!(
        "| wall time / bound ((lines - burst) / rate) | {ratio:.3} ({:.1} s / {bound:.1} s) | at most {TARGET_RATIO:.2} | {} |\n",
        r.wall,
        yes(ratio <= TARGET_RATIO)
    ));
    o.push_str(&format!(
        "| API requests per line, downloads apart (429s included) | {per_line:.2} | at most {TARGET_REQUESTS_PER_LINE} | {} |\n",
        yes(per_line <= TARGET_REQUESTS_PER_LINE)
    ));
    o.push_str(&format!(
        "| CLI peak RSS | {rss_mib:.1} MiB | under {TARGET_RSS_MIB} MiB | {} |\n",
        yes(rss_mib < TARGET_RSS_MIB)
    ));
    o.push_str(&format!(
        "| results.jsonl lines (distinct ids; ok) | {} ({}; {}) | {} | {} |\n",
        r.saved.result_lines,
        r.saved.distinct_ids,
        r.saved.ok,
        r.lines,
        yes(r.saved.result_lines == r.lines && r.saved.distinct_ids == r.lines)
    ));
    o.push_str(&format!(
        "| jobs created (idempotent replays) | {} ({}) | {} | {} |\n",
        s.jobs_created,
        s.idempotent_replays,
        r.lines,
        yes(s.jobs_created == r.lines as u64)
    ));
    o.push_str(&format!(
        "| CLI CPU time (user + system) | {:.1} s ({:.1} + {:.1}) | | |\n",
        cpu.as_secs_f64(),
        r.usage.user.as_secs_f64(),
        r.usage.system.as_secs_f64()
    ));
    o.push_str(&format!(
        "| CLI exit code | {} | 0 | |\n\n",
        r.usage
            .exit_code
            .map_or("signal".to_owned(), |c| c.to_string())
    ));

    o.push_str("| requests | count | per line |\n|---|---:|---:|\n");
    let mut row = |what: &str, c: u64| {
        o.push_str(&format!("| {what} | {c} | {:.3} |\n", c as f64 / n));
    };
    row("submit, accepted (202)", submit_ok);
    row("submit, refused (429)", submit_429);
    row(
        "submit, other statuses",
        submit_all - submit_ok - submit_429,
    );
    row("get_result", get_result);
    row("list_requests", list);
    row("get_status", get_status);
    row("other API operations", others);
    row("**all API requests**", api_total);
    row(
        "files saved (downloads, not counted by the simulator)",
        r.saved.files_on_disk as u64,
    );
    o.push_str(&format!(
        "\n`submit_rate_limited` {}; files listed in results.jsonl {}, found in DIR {} ({:.1} MiB).\n\n",
        s.submit_rate_limited,
        r.saved.files_listed,
        r.saved.files_on_disk,
        r.saved.bytes_on_disk as f64 / 1024.0 / 1024.0
    ));

    let e = &r.events;
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    let steady = match (e.first_submitted, e.last_submitted) {
        (Some(a), Some(b)) if b > a => {
            format!(
                "{:.1}",
                (submit_ok as f64 - cfg.burst as f64).max(0.0) / (b - a)
            )
        }
        _ => "-".to_owned(),
    };
    o.push_str("| when (seconds since the CLI started) | |\n|---|---:|\n");
    o.push_str(&format!(
        "| first submit accepted | {} |\n",
        opt(e.first_submitted)
    ));
    o.push_str(&format!(
        "| last submit accepted | {} |\n",
        opt(e.last_submitted)
    ));
    o.push_str(&format!(
        "| last job completed (simulator) | {} |\n",
        opt(r.last_completion)
    ));
    o.push_str(&format!(
        "| last job seen finished | {} |\n",
        opt(e.last_finished)
    ));
    o.push_str(&format!(
        "| last result written | {} |\n",
        opt(e.last_result)
    ));
    o.push_str(&format!("| CLI exited | {:.1} |\n\n", r.wall));
    let pauses = e
        .paused
        .iter()
        .map(|(k, c)| format!("{c} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (wasted, left) = unused_tokens(&e.submit_times, cfg.rate, cfg.burst as f64);
    o.push_str(&format!(
        "- Submit pace after the burst: {steady} accepted/s (the limit: {}/s). The bucket replayed over the submits' times: \
         {wasted:.0} tokens went unused while it was full, {left:.0} were left in it at the last submit ({:.1} s of the limit unused). \
         Pause events: {}; submits were paused {:.1} s in all (the union of the announced pauses).\n",
        cfg.rate,
        (wasted + left) / cfg.rate,
        if pauses.is_empty() { "none".to_owned() } else { pauses },
        union_length(&e.pauses)
    ));
    o.push_str(&format!(
        "- Detection lag (simulator `completed_at` to the CLI's `finished_at`): mean {:.2} s, p95 {:.2} s, max {:.2} s; \
         download and report (`finished` to `result` event): mean {:.3} s, p95 {:.3} s.\n",
        mean(&r.lags),
        percentile(&r.lags, 95.0),
        r.lags.iter().copied().fold(f64::NAN, f64::max),
        mean(&e.download_secs),
        percentile(&e.download_secs, 95.0)
    ));
    let peak_second = e.submitted_per_second.values().copied().max().unwrap_or(0);
    let events = e
        .counts
        .iter()
        .map(|(k, c)| format!("{k} {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let summary = e.summary.as_ref().map_or("none".to_owned(), |v| {
        format!(
            "succeeded {}, failed {}, left {}",
            v["succeeded"], v["failed"], v["left"]
        )
    });
    o.push_str(&format!(
        "- Most submits accepted in one second: {peak_second}. CLI events: {events} (unreadable lines: {}); its summary: {summary}.\n",
        e.unreadable
    ));
    // Resident memory when a quarter, half, ... of the lines were submitted,
    // and at the end.
    let mib = |b: u64| b as f64 / 1024.0 / 1024.0;
    let marks: Vec<String> = [0.25, 0.5, 0.75, 1.0]
        .iter()
        .filter_map(|q| {
            let i = ((q * e.submit_times.len() as f64).ceil() as usize).checked_sub(1)?;
            let at = *e.submit_times.get(i)?;
            let (_, b) = r.rss.iter().rev().find(|(t, _)| *t <= at)?;
            Some(format!("{} submitted: {:.1} MiB", i + 1, mib(*b)))
        })
        .chain(
            r.rss
                .last()
                .map(|(_, b)| format!("last sample: {:.1} MiB", mib(*b))),
        )
        .collect();
    o.push_str(&format!(
        "- CLI resident memory (VmRSS, sampled every 0.1 s) at {}.\n",
        marks.join(", ")
    ));
    o.push_str(&format!(
        "- Most at once (progress events): {} jobs followed, {} running, {} queued, {} submits waiting or in flight.\n",
        e.max_in_flight, e.max_running, e.max_queued, e.max_submitting
    ));
    o
}
