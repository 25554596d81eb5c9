//! Starvation (issue 27, defect 11): idle or half-open connections, slow
//! requests and webhook receivers that never answer cannot use up the
//! simulator's file descriptors or tasks; its API keeps answering.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reka_inference_sim::{Catalog, DEV_API_KEY, SimConfig};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::common::{Env, client};

/// The simulator binary with at most `fds` file descriptors, and its URL.
struct LimitedSim {
    child: Child,
    url: String,
}

impl LimitedSim {
    fn start(fds: u64) -> LimitedSim {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reka-inference-sim"));
        cmd.args(["--addr", "127.0.0.1:0", "--time-scale", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between
        // fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: fds,
                    rlim_max: fds,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("the simulator binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        LimitedSim {
            child,
            url: line.trim().to_string(),
        }
    }
}

impl Drop for LimitedSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_fd_limit_do_not_silence_the_api() {
    // 64 file descriptors, and 200 connections that never send a byte
    // opened first: the real request behind them is still answered.
    let sim = LimitedSim::start(64);
    let addr: std::net::SocketAddr = sim.url.trim_start_matches("http://").parse().unwrap();
    // Before the fix the simulator stopped accepting at its fd limit: these
    // connects timed out once the listen queue filled, and no request was
    // answered.
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap())
        .collect();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for i in 0..3 {
        let a = Env::answer(
            http.post(format!(
                "{}/v2/inference/nano-banana/text-to-image",
                sim.url
            ))
            .header("X-Api-Key", DEV_API_KEY)
            .json(&json!({"input": {"prompt": format!("still here {i}")}}))
            .send()
            .await
            .expect("answered despite 200 idle connections and 64 fds"),
        )
        .await;
        assert_eq!(a.status, 202, "{}", a.text);
    }
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_longest_idle_connection_makes_room() {
    let env = Env::new(SimConfig::new().max_connections(8)).await;
    let addr = env.sim.addr();
    let mut idle: Vec<tokio::net::TcpStream> = Vec::new();
    for _ in 0..8 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // A fresh client (its own connection) is answered: the oldest idle
    // connection was closed to make room.
    let a = Env::answer(
        client()
            .get(env.url("/v2/inference/models"))
            .header("X-Api-Key", crate::common::KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 200);
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(30), idle[0].read(&mut byte))
        .await
        .expect("the longest-idle connection is closed");
    assert_eq!(closed.unwrap(), 0, "closed without a byte");
}

#[test]
fn a_connection_that_never_finishes_its_headers_is_closed() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(reka_inference_sim::start(
            SimConfig::new().header_read_timeout(Duration::from_millis(300)),
        ))
        .unwrap();
    let mut slow = TcpStream::connect(sim.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    slow.write_all(b"GET /v2/inference/models HTTP/1.1\r\nhost: sim\r\n")
        .unwrap();
    let mut rest = Vec::new();
    // The server closes it (hyper may say 408 first); a read timeout here
    // would be an error.
    slow.read_to_end(&mut rest).expect("closed by the server");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // A connection idle after an answer is closed the same way.
    let mut kept = TcpStream::connect(sim.addr()).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(kept, "GET /_sim/stats HTTP/1.1\r\nhost: sim\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    kept.read_to_end(&mut answer)
        .expect("answered, then closed when idle");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    rt.block_on(sim.shutdown());
}

#[test]
fn a_body_that_never_arrives_is_answered_408() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(reka_inference_sim::start(
            SimConfig::new().body_read_timeout(Duration::from_millis(300)),
        ))
        .unwrap();
    let mut slow = TcpStream::connect(sim.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        slow,
        "POST /v2/inference/nano-banana/text-to-image HTTP/1.1\r\nhost: sim\r\nx-api-key: {DEV_API_KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"input\":"
    )
    .unwrap();
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer).expect("answered and closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    rt.block_on(sim.shutdown());
}

/// Whether a connection the receiver holds is still open, reading (and
/// discarding) what arrived.
fn still_open(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// How long a close already sent may take to reach the receiver. The
/// simulator closes an attempt's connection before its slot goes to the
/// next attempt, but on loopback that close and the next connect travel
/// through per-CPU queues that a busy machine can drain out of order: the
/// next connection may be accepted before the last one's close is read
/// (seen once in five suites under two busy loops). Much shorter than an
/// attempt's hold, so a connection held past its slot is still seen.
const CLOSE_IN_FLIGHT: Duration = Duration::from_millis(250);

/// How long an attempt holds its connection when the receiver never
/// answers.
const ATTEMPT_HOLD: Duration = Duration::from_millis(1000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_that_never_answers_holds_few_connections_and_none_for_long() {
    // The receiver accepts, reads, and never answers; at each new
    // connection it counts how many are open, once the closes already on
    // their way have come (at most CLOSE_IN_FLIGHT), and how many of the
    // earlier ones it saw closed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, mut at_accept) = mpsc::unbounded_channel::<(usize, usize)>();
    tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        let mut closed = 0;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            held.push(stream.into_std().unwrap());
            let settle = tokio::time::Instant::now() + CLOSE_IN_FLIGHT;
            loop {
                let before = held.len();
                held.retain_mut(still_open);
                closed += before - held.len();
                if held.len() <= 3 || tokio::time::Instant::now() >= settle {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if tx.send((held.len(), closed)).is_err() {
                return;
            }
        }
    });
    let catalog = Catalog::from_json(
        r#"{"models":[{"model_id":"m","capability":"text-to-image","workers":16,"duration":{"fixed":0}}]}"#,
    )
    .unwrap();
    let env = Env::new(
        SimConfig::new()
            .catalog(catalog)
            .webhook_concurrency(3)
            .webhook_timeouts(Duration::from_millis(200), ATTEMPT_HOLD),
    )
    .await;
    for i in 0..10 {
        let a = env
            .post(
                "/v2/inference/m/text-to-image",
                json!({"input": {"prompt": format!("hook {i}")}, "webhook_url": hook}),
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.text);
    }
    // 13 attempts come: never more than 3 connections open at once, and at
    // least 10 were closed by the simulator when their hold was up (the
    // receiver closes none).
    let (mut most, mut closed) = (0, 0);
    for _ in 0..13 {
        let (open, closed_so_far) = tokio::time::timeout(Duration::from_secs(30), at_accept.recv())
            .await
            .expect("attempts keep coming")
            .unwrap();
        most = most.max(open);
        closed = closed_so_far;
    }
    assert!(most <= 3, "{most} webhook connections open at once");
    assert!(closed >= 10, "only {closed} of 13 connections closed");
    // The API answers all along.
    let a = env.get("/v2/inference/models").await;
    assert_eq!(a.status, 200);
    let stats = env.sim.stats().await;
    assert!(stats.webhook_attempts >= 13, "{stats:?}");
    assert_eq!(stats.webhooks_delivered, 0);
}
