//! `batch --journal postgres://…`: workers that run the same command join
//! one batch on a throwaway PostgreSQL server (`pg`, shared with the SDK's
//! tests); `batch export` and `batch status` read it. The crash test: 3
//! workers, 1,000 lines, a faulty simulator, one worker SIGKILLed twice
//! and one cut off from the database (through a TCP proxy the test
//! controls) until its lease lapses; one job per line, one result per
//! line, every file, the budget kept. Leases are 2 s (`--lease`), so that
//! lapses take seconds; the simulator runs at 1/100 of real time.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use reka_inference_sim::{Catalog, SimConfig};
use serde_json::Value;

use crate::batch::{input, prompts};
use crate::common::{Sim, run, run_ok};
use crate::pg::TestPostgres;

const ENDPOINT: &str = "crash/text-to-image";
const PRICE: f64 = 0.01;

fn catalog() -> Catalog {
    Catalog::from_json(&format!(
        r#"{{"chat_models": ["qwen3-vl-32b"], "models": [{{"model_id": "crash",
            "capability": "text-to-image", "workers": 256, "price_usd": {PRICE},
            "duration": {{"lognormal": {{"median": 20, "p95": 60}}}}, "failure_rate": 0}}]}}"#
    ))
    .expect("catalog")
}

/// A worker: `batch FILE --out OUT --journal URL` with `--json` events.
fn spawn(sim: &Sim, file: &Path, out: &Path, url: &str, extra: &[&str]) -> Child {
    sim.std_cmd()
        .args(["--json", "batch"])
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(["--journal", url, "--lease", "2s", "--endpoint", ENDPOINT])
        .args(["--concurrency", "8"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// A worker's events as they come, and everything it printed.
struct Events {
    rx: mpsc::Receiver<Value>,
    printed: Arc<Mutex<String>>,
}

fn events(child: &mut Child) -> Events {
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let printed = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let into = printed.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push_str(&line);
            into.lock().unwrap().push('\n');
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let into = printed.clone();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        into.lock().unwrap().push_str(&text);
    });
    Events { rx, printed }
}

impl Events {
    /// Waits (at most `limit`) for an event `pred` accepts; whether it came.
    fn wait_for(&self, limit: Duration, mut pred: impl FnMut(&Value) -> bool) -> Option<Value> {
        let began = Instant::now();
        while began.elapsed() < limit {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(v) if pred(&v) => return Some(v),
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    fn printed(&self) -> String {
        self.printed.lock().unwrap().clone()
    }
}

fn export(sim: &Sim, url: &str, name: &str) -> Vec<Value> {
    let out = run_ok(
        sim.cmd()
            .args(["batch", "export", "--journal", url, "--name", name]),
    );
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The default name of the batch of `file`: a hash of its content.
fn batch_name(sim: &Sim, file: &Path) -> String {
    let digest = sim
        .block_on(reka_inference::batch::FileDigest::of_path(file, u64::MAX))
        .unwrap();
    format!("input-{}", &digest.sha256()[..16])
}

#[test]
fn workers_running_the_same_command_share_one_batch() {
    let pg = TestPostgres::start();
    // A password that must never be shown (trust auth ignores it).
    let url = format!(
        "postgres://postgres:hunter2secret@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port()
    );
    let sim = Sim::with(SimConfig::new().catalog(catalog()));
    let dir = tempfile::tempdir().unwrap();
    let file = input(dir.path(), &prompts(60));
    let outs = [dir.path().join("a"), dir.path().join("b")];
    // One worker takes the URL from the flag, the other from the
    // environment.
    let mut a = spawn(&sim, &file, &outs[0], &url, &[]);
    let mut b = sim
        .std_cmd()
        .env("REKA_BATCH_DATABASE_URL", &url)
        .args(["--json", "batch"])
        .arg(&file)
        .arg("--out")
        .arg(&outs[1])
        .args(["--endpoint", ENDPOINT, "--lease", "2s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ea, eb) = (events(&mut a), events(&mut b));
    let (sa, sb) = (a.wait().unwrap(), b.wait().unwrap());
    let printed = format!("{}\n{}", ea.printed(), eb.printed());
    assert!(sa.success() && sb.success(), "{printed}");
    assert!(!printed.contains("hunter2secret"), "{printed}");
    assert!(printed.contains("\"event\":\"joined\""), "{printed}");
    assert_eq!(sim.stats().jobs_created, 60);

    let name = batch_name(&sim, &file);
    let results = export(&sim, &url, &name);
    assert_eq!(results.len(), 60);
    let ids: HashSet<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 60);
    let mut by_dir = [0, 0];
    for r in &results {
        assert_eq!(r["status"], "COMPLETED", "{r}");
        for f in r["files"].as_array().unwrap() {
            let f = PathBuf::from(f.as_str().unwrap());
            assert!(f.is_file(), "{}", f.display());
            let i = outs
                .iter()
                .position(|o| f.starts_with(o))
                .expect("in a worker's DIR");
            by_dir[i] += 1;
        }
    }
    assert!(by_dir[0] + by_dir[1] >= 60, "{by_dir:?}");
    // Each worker's results.jsonl holds the whole batch.
    for out in &outs {
        assert_eq!(crate::batch::results(out).len(), 60);
    }

    let status = run_ok(sim.cmd().args([
        "--json",
        "batch",
        "status",
        "--journal",
        &url,
        "--name",
        &name,
    ]));
    assert!(!status.stdout.contains("hunter2secret"));
    let status: Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(
        status["lines"]["reported"].as_u64().unwrap_or(0)
            + status["lines"]["done"].as_u64().unwrap_or(0),
        60,
        "{status}"
    );
    assert!(
        (status["spent_usd"].as_f64().unwrap() - 60.0 * PRICE).abs() < 1e-9,
        "{status}"
    );
    let text = run_ok(
        sim.cmd()
            .args(["batch", "status", "--journal", &url, "--name", &name]),
    );
    assert!(text.stdout.contains("60 lines"), "{}", text.stdout);
    assert!(text.stdout.contains("postgres:***@"), "{}", text.stdout);

    // An unknown batch, and a URL that asks for TLS: clear errors, no
    // password.
    let unknown = run(sim
        .cmd()
        .args(["batch", "status", "--journal", &url, "--name", "nope"]));
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("no batch named"), "{unknown:?}");
    let tls = url.replace("sslmode=disable", "sslmode=require");
    let refused = run(sim
        .cmd()
        .args(["batch", "status", "--journal", &tls, "--name", &name]));
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("sslmode=require"), "{refused:?}");
    assert!(!refused.stderr.contains("hunter2secret"), "{refused:?}");
}

/// A TCP proxy the test can cut: while cut, every connection through it
/// is closed and new ones are closed as they come.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut2, open2) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                {
                    let mut open = open2.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, cut, open }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Polls `f` (every 100 ms, at most `limit`) until it is true.
fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let began = Instant::now();
    while !f() {
        assert!(began.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_workers_one_killed_twice_one_cut_off_every_line_once() {
    const LINES: usize = 1000;
    let pg = TestPostgres::start();
    let url = pg.url();
    let proxy = Proxy::start(pg.port());
    let cut_url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        proxy.port
    );
    let faults = "submit:lost=0.05,submit:503=0.05,*:drop=0.01,get_result:500=0.05,\
                  list_requests:503=0.05";
    let sim = Sim::with(
        SimConfig::new()
            .catalog(catalog())
            .faults(faults.parse().expect("faults")),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = input(dir.path(), &prompts(LINES));
    let budget = format!("{}", PRICE * LINES as f64 + 0.5);
    let extra = ["--budget-usd", budget.as_str()];
    let out = |n: &str| dir.path().join(n);

    let mut steady = spawn(&sim, &file, &out("steady"), &url, &extra);
    let steady_events = events(&mut steady);
    let mut cut_off = spawn(&sim, &file, &out("cut-off"), &cut_url, &extra);
    let cut_events = events(&mut cut_off);
    let joined = cut_events
        .wait_for(Duration::from_secs(60), |v| v["event"] == "joined")
        .expect("the cut-off worker joins");
    let cut_worker = joined["worker"].as_str().unwrap().to_owned();

    // Cut the third worker off the database until its lines pass to
    // the others, then let it back.
    cut_events
        .wait_for(Duration::from_secs(120), |v| v["event"] == "submitted")
        .expect("the cut-off worker submits");
    proxy.set_cut(true);
    let held_when_cut = pg.psql(
        "postgres",
        &format!(
            "SELECT string_agg(quote_literal(key), ',') FROM reka_batch_lines \
             WHERE owner = '{cut_worker}' AND state NOT IN ('done', 'reported')"
        ),
    );
    assert!(!held_when_cut.is_empty(), "the cut-off worker held lines");
    // The worker killed twice: SIGKILL after some submits, again after
    // some finished lines, then run to its end.
    let mut killed_points = 0;
    for kill_after in ["submitted", "finished"] {
        let mut doomed = spawn(&sim, &file, &out("killed"), &url, &extra);
        let doomed_events = events(&mut doomed);
        let mut seen = 0;
        if doomed_events
            .wait_for(Duration::from_secs(120), |v| {
                seen += usize::from(v["event"] == kill_after);
                seen >= 25
            })
            .is_some()
        {
            killed_points += 1;
        }
        let _ = doomed.kill();
        let _ = doomed.wait();
    }
    assert_eq!(killed_points, 2, "both kills came mid-run");
    let mut restarted = spawn(&sim, &file, &out("killed"), &url, &extra);
    let restarted_events = events(&mut restarted);

    let held_by_cut = |pg: &TestPostgres| {
        pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM reka_batch_lines WHERE owner = '{cut_worker}' \
                 AND lease_until > now()"
            ),
        )
    };
    eventually(
        Duration::from_secs(60),
        "the cut-off worker's leases to lapse",
        || held_by_cut(&pg) == "0",
    );
    // Lines it held when cut passed to others.
    eventually(Duration::from_secs(60), "a takeover", || {
        pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM reka_batch_lines WHERE key IN ({held_when_cut}) \
                 AND owner IS DISTINCT FROM '{cut_worker}'"
            ),
        ) != "0"
    });
    proxy.set_cut(false);

    let mut codes = Vec::new();
    for (child, ev) in [
        (&mut steady, &steady_events),
        (&mut cut_off, &cut_events),
        (&mut restarted, &restarted_events),
    ] {
        let status = child.wait().unwrap();
        codes.push((status.code(), ev.printed()));
    }
    // The cut-off worker came back to lines taken over: its writes were
    // refused and it dropped them.
    assert!(
        codes[1].1.contains("\"event\":\"lease_lost\""),
        "{}",
        codes[1].1
    );
    for (code, printed) in &codes {
        let tail: String = printed
            .chars()
            .rev()
            .take(3000)
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        assert_eq!(*code, Some(0), "{tail}");
    }

    // Exactly one job per line on the simulator.
    let stats = sim.stats();
    assert_eq!(stats.jobs_created, LINES as u64, "{stats:?}");
    assert!(stats.faults("lost") > 0, "{stats:?}");
    // One result per line, each completed with its files.
    let name = batch_name(&sim, &file);
    let results = export(&sim, &url, &name);
    assert_eq!(results.len(), LINES);
    let mut ids = HashSet::new();
    let mut requests = HashSet::new();
    for r in &results {
        assert!(ids.insert(r["id"].as_str().unwrap().to_owned()), "{r}");
        assert!(
            requests.insert(r["request_id"].as_str().unwrap().to_owned()),
            "{r}"
        );
        assert_eq!(r["status"], "COMPLETED", "{r}");
        let files = r["files"].as_array().unwrap();
        assert!(!files.is_empty(), "{r}");
        for f in files {
            let size = std::fs::metadata(f.as_str().unwrap())
                .map(|m| m.len())
                .unwrap_or(0);
            assert!(size > 0, "{f} missing or empty");
        }
    }
    // The spend, as the simulator priced the jobs, within the budget; and
    // the database's account agrees.
    let spent = stats.jobs_created as f64 * PRICE;
    let budget: f64 = budget.parse().unwrap();
    assert!(spent <= budget, "{spent} > {budget}");
    let recorded: f64 = pg
        .psql("postgres", "SELECT spent_usd FROM reka_batches")
        .parse()
        .unwrap();
    assert!((recorded - spent).abs() < 1e-6, "{recorded} vs {spent}");
    let per_worker: HashMap<String, usize> = results.iter().fold(HashMap::new(), |mut m, r| {
        let f = r["files"][0].as_str().unwrap();
        let w = ["steady", "cut-off", "killed"]
            .iter()
            .find(|w| f.contains(&format!("/{w}/")))
            .copied()
            .unwrap_or("?");
        *m.entry(w.to_owned()).or_default() += 1;
        m
    });
    eprintln!("lines finished by each worker's DIR: {per_worker:?}");
}
