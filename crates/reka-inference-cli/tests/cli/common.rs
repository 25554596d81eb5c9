//! The simulator the tests run the binary against, and helpers to run it.

use std::process::Output;

use reka_inference_sim::{Catalog, DEV_API_KEY, RunningSim, SimConfig, Stats};
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_reka-inference");

/// An `image_url` the simulator takes (an https URL; it is never fetched).
pub const TEST_IMAGE_URL: &str = "https://images.example.com/test.png";

/// Simulated seconds per wall second in the tests: a 6 s image takes 60 ms.
pub const SCALE: f64 = 0.01;

/// A simulator on its own runtime, so that tests stay synchronous and run
/// the binary like a person would.
pub struct Sim {
    rt: tokio::runtime::Runtime,
    sim: Option<RunningSim>,
    pub url: String,
}

impl Sim {
    /// The default catalog at [`SCALE`].
    pub fn start() -> Sim {
        Sim::with(SimConfig::new())
    }

    /// `config` at [`SCALE`], seed 7.
    pub fn with(config: SimConfig) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt
            .block_on(reka_inference_sim::start(config.time_scale(SCALE).seed(7)))
            .expect("simulator starts");
        let url = sim.base_url().to_owned();
        Sim {
            rt,
            sim: Some(sim),
            url,
        }
    }

    /// A catalog with `fast/text-to-image` (1 s) and `slow/text-to-video`
    /// (100,000 s: still running whenever a test looks).
    pub fn with_slow_jobs() -> Sim {
        let catalog = Catalog::from_json(
            r#"{"chat_models": ["qwen3-vl-32b"], "models": [
                {"model_id": "fast", "capability": "text-to-image", "workers": 4, "duration": {"fixed": 1}},
                {"model_id": "slow", "capability": "text-to-video", "workers": 4, "duration": {"fixed": 100000}}
            ]}"#,
        )
        .expect("catalog");
        Sim::with(SimConfig::new().catalog(catalog))
    }

    fn running(&self) -> &RunningSim {
        self.sim.as_ref().expect("running")
    }

    /// The binary pointed at this simulator with the dev key; the
    /// environment's REKA_* variables are removed.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = bare();
        cmd.args(["--base-url", &self.url, "--api-key", DEV_API_KEY]);
        cmd
    }

    /// The same as a `std::process::Command`, for tests that signal it.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_remove("REKA_API_KEY")
            .env_remove("REKA_BASE_URL")
            .env_remove("RUST_LOG")
            .args(["--base-url", &self.url, "--api-key", DEV_API_KEY]);
        cmd
    }

    pub fn stats(&self) -> Stats {
        self.rt.block_on(self.running().stats())
    }

    /// Every API request the simulator answered (any operation, any status).
    pub fn total_requests(&self) -> u64 {
        self.stats()
            .requests
            .values()
            .flat_map(|m| m.values())
            .sum()
    }

    pub fn set_faults(&self, spec: &str) {
        self.running().set_faults(spec.parse().expect("fault spec"));
    }

    /// Fetches `url` directly, as any HTTP client would.
    pub fn fetch(&self, url: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let resp = reqwest::get(url).await.expect("GET");
            assert!(resp.status().is_success(), "{url}: {}", resp.status());
            resp.bytes().await.expect("body").to_vec()
        })
    }

    /// Runs `fut` on the simulator's runtime.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// Submits through the binary and returns the request id; an endpoint
    /// that takes an image (image-to-video, edit, image-to-bbox) gets an
    /// https `image_url` too.
    pub fn submit(&self, endpoint: &str, prompt: &str) -> String {
        let mut cmd = self.cmd();
        cmd.args(["--json", "submit", endpoint, "--set"])
            .arg(format!("prompt={prompt}"));
        if ["image-to-video", "edit", "image-to-bbox"]
            .iter()
            .any(|c| endpoint.ends_with(&format!("/{c}")))
        {
            cmd.args(["--set", &format!("image_url={TEST_IMAGE_URL}")]);
        }
        let out = run(&mut cmd);
        assert_eq!(out.code, 0, "{out:?}");
        out.json()["request_id"]
            .as_str()
            .expect("request_id")
            .to_owned()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

/// The binary with no REKA_* environment and no simulator flags.
pub fn bare() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(BIN);
    cmd.env_remove("REKA_API_KEY")
        .env_remove("REKA_BASE_URL")
        .env_remove("RUST_LOG")
        .timeout(std::time::Duration::from_secs(120));
    cmd
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The last line of stderr as JSON (`--json` errors).
    pub fn error_json(&self) -> Value {
        let last = self.stderr.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("stderr's last line is not JSON ({e}): {self:?}"))
    }
}

pub fn run(cmd: &mut assert_cmd::Command) -> Ran {
    let out: Output = cmd.output().expect("the binary runs");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs and checks the exit code.
pub fn run_ok(cmd: &mut assert_cmd::Command) -> Ran {
    let out = run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    out
}

/// Runs and checks the exit code is `code`, returning the output.
pub fn run_code(cmd: &mut assert_cmd::Command, code: i32) -> Ran {
    let out = run(cmd);
    assert_eq!(out.code, code, "expected exit {code}: {out:?}");
    out
}

/// Waits for `child` to exit, sampling its peak RSS (the kernel's
/// high-water mark, VmHWM) until it does; returns its exit code and the
/// last mark seen, in KiB. Not the `ru_maxrss` of `wait4`: a child's
/// counts the memory of the process it was forked from (this test binary,
/// whose simulator keeps every job's input) before its `exec`.
pub fn wait_for_peak_rss(mut child: std::process::Child) -> (i32, u64) {
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(exit) = child.try_wait().unwrap() {
            return (exit.code().unwrap_or(-1), peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
