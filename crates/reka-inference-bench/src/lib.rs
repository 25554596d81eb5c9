//! The measuring kit of the benchmarks: the simulator binary run as its
//! own process (so the client's CPU time and memory are the client's
//! alone), the clocks and counters of the client process, and the
//! rewriting of `docs/PERFORMANCE.md` sections.
//!
//! The benchmarks are binaries of this crate (`bench-poll`, `bench-scale`,
//! `bench-batch`) and a criterion bench (`overhead`); `cargo make bench`
//! runs them all.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reka_inference_sim::Stats;
use serde_json::{Value, json};

/// The simulator binary, running as a child process; killed on drop.
pub struct SimProcess {
    child: Child,
    base_url: String,
    http: reqwest::Client,
}

impl SimProcess {
    /// Starts `reka-inference-sim` on a free loopback port with `args`.
    ///
    /// The binary is `REKA_SIM_BIN` if set, else the one beside this
    /// program (`cargo build --release -p reka-inference-sim` puts it there).
    pub fn start(args: &[String]) -> Result<SimProcess> {
        let bin = sim_binary()?;
        let mut child = Command::new(&bin)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("simulator stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the simulator's base URL")?;
        let base_url = line.trim().to_owned();
        if !base_url.starts_with("http://") {
            let _ = child.kill();
            bail!("the simulator printed {base_url:?} instead of its base URL");
        }
        Ok(SimProcess {
            child,
            base_url,
            http: reqwest::Client::new(),
        })
    }

    /// The simulator's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET /_sim/stats`.
    pub async fn stats(&self) -> Result<Stats> {
        let url = format!("{}/_sim/stats", self.base_url);
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// `PUT /_sim/faults`: replaces the simulator's faults with `spec`
    /// (the `--faults` syntax, e.g. `webhook:lost=0.2`).
    pub async fn set_faults(&self, spec: &str) -> Result<()> {
        let url = format!("{}/_sim/faults", self.base_url);
        self.http
            .put(url)
            .json(&spec)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// `POST /_sim/reset`: no jobs, zeroed counters.
    pub async fn reset(&self) -> Result<()> {
        let url = format!("{}/_sim/reset", self.base_url);
        self.http.post(url).send().await?.error_for_status()?;
        Ok(())
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sim_binary() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("REKA_SIM_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no directory for this program")?;
    let bin = dir.join("reka-inference-sim");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(anyhow!(
            "{} not found: build it with `cargo build --release -p reka-inference-sim`, or set REKA_SIM_BIN",
            bin.display()
        ))
    }
}

/// Requests answered for the operations that follow jobs (status, result,
/// list), whatever their status code.
pub fn follow_requests(stats: &Stats) -> u64 {
    ["get_status", "get_result", "list_requests"]
        .iter()
        .filter_map(|op| stats.requests.get(*op))
        .flat_map(|by_status| by_status.values())
        .sum()
}

/// CPU time (user + system) of this process so far.
pub fn cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes the struct we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The peak resident memory of this process, in bytes (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What a child process used, read when it was reaped (`wait4`).
#[derive(Debug, Clone, Copy)]
pub struct ChildUsage {
    /// Its exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// User CPU time.
    pub user: Duration,
    /// System CPU time.
    pub system: Duration,
    /// Its peak resident memory, in bytes (`ru_maxrss`).
    pub peak_rss_bytes: u64,
}

/// Waits for the child `pid` to end and reaps it with `wait4`, which hands
/// back that one child's own CPU time and peak RSS (`RUSAGE_CHILDREN` covers
/// every child reaped so far: their CPU summed, the largest one's peak).
/// Blocks: call it from a thread of its own. The `std::process::Child` of
/// `pid` must not be waited for after.
pub fn wait_with_usage(pid: u32) -> Result<ChildUsage> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: `wait4` only writes the status and the struct we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status: libc::c_int = 0;
    loop {
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    Ok(ChildUsage {
        exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
        // Linux reports kilobytes.
        peak_rss_bytes: (usage.ru_maxrss.max(0) as u64) * 1024,
    })
}

/// The `p`-th percentile (0..=100) of `values`, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The arithmetic mean of `values`.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// A catalog of text-to-image models `(model_id, median s, p95 s, workers)`;
/// a p95 equal to the median makes the duration fixed.
pub fn catalog_json(models: &[(&str, f64, f64, u32)]) -> Value {
    let models: Vec<Value> = models
        .iter()
        .map(|(id, median, p95, workers)| {
            // A p95 no larger than the median means a fixed duration.
            let duration = if p95 > median {
                json!({"lognormal": {"median": median, "p95": p95}})
            } else {
                json!({"fixed": median})
            };
            json!({"model_id": id, "capability": "text-to-image", "workers": workers, "duration": duration})
        })
        .collect();
    json!({"chat_models": ["qwen3-vl-32b"], "models": models})
}

/// Writes `catalog` to a temporary file for `--catalog`.
pub fn write_catalog(name: &str, catalog: &Value) -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("reka-bench-{name}-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec_pretty(catalog)?)?;
    Ok(path)
}

/// Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`
/// in `file` (the markers stay), appending the section if it is missing.
pub fn replace_section(file: &Path, name: &str, body: &str) -> Result<()> {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let block = format!("{start}\n{body}\n{end}");
    let new = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &text[..a], &text[b + end.len()..]),
        _ => format!("{text}\n{block}\n"),
    };
    std::fs::write(file, new).with_context(|| format!("writing {}", file.display()))
}

/// Where the benchmarks write: `docs/` of the workspace.
pub fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .components()
        .collect()
}

/// One line about the machine: cores, model, kernel.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb: u64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 95.0), 5.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn sections_are_replaced_in_place() {
        let dir = std::env::temp_dir().join(format!("reka-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("P.md");
        std::fs::write(&f, "# T\n<!-- a:start -->\nold\n<!-- a:end -->\ntail\n").unwrap();
        replace_section(&f, "a", "new").unwrap();
        replace_section(&f, "b", "added").unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(
            text,
            "# T\n<!-- a:start -->\nnew\n<!-- a:end -->\ntail\n\n<!-- b:start -->\nadded\n<!-- b:end -->\n"
        );
    }
}
