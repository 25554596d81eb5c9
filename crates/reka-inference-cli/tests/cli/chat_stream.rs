//! `chat --stream` against answers that take long or are huge (issue 27,
//! defect 12): at `--timeout` with tokens still arriving, what was printed
//! is kept and the error says the answer did not finish (not that the
//! server is not answering); a long streamed answer is printed without
//! being kept in memory.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::BIN;

/// How the stand-in chat server streams its answer.
#[derive(Clone, Copy)]
enum Answer {
    /// One token every 50 ms, forever.
    Endless,
    /// `n` chunks of 64 KiB of text each, as fast as they are read, then `[DONE]`.
    Huge(usize),
    /// Reads the request and never answers.
    Silent,
}

fn event(text: &str) -> String {
    let c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
    format!("data: {c}\n\n")
}

fn serve(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}/v1",
        listener.local_addr().expect("addr").port()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || respond(stream, answer));
        }
    });
    url
}

fn respond(stream: TcpStream, answer: Answer) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = std::io::Read::read_exact(&mut reader, &mut body);
    let mut out = stream;
    if matches!(answer, Answer::Silent) {
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _ = out.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
    );
    match answer {
        Answer::Endless => {
            let mut i = 0u64;
            while out.write_all(event(&format!("w{i} ")).as_bytes()).is_ok() {
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Answer::Huge(n) => {
            let piece = event(&"x".repeat(64 << 10));
            for _ in 0..n {
                if out.write_all(piece.as_bytes()).is_err() {
                    return;
                }
            }
            let _ = out.write_all(b"data: [DONE]\n\n");
        }
        Answer::Silent => {}
    }
}

/// No message carries a run of blanks (a line continuation lost inside a
/// string literal).
fn assert_tidy(stderr: &str) {
    for line in stderr.lines() {
        assert!(!line.trim_start().contains("   "), "{line:?}");
    }
}

fn chat(url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("REKA_API_KEY")
        .env_remove("REKA_BASE_URL")
        .env_remove("REKA_CHAT_BASE_URL")
        .env_remove("REKA_CHAT_API_KEY")
        .args(["--api-key", "sk-test", "chat", "--chat-base-url", url]);
    cmd
}

/// Runs `cmd` to its end; its exit code, stdout, stderr and peak RSS in
/// KiB (this child's own, from `wait4`).
// The child is reaped by `wait4`, which `Child::wait` cannot replace: it
// gives no resource usage.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command, keep_stdout: bool) -> (i32, String, String, i64) {
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    cmd.stdout(if keep_stdout {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read_out = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stdout {
            let _ = std::io::Read::read_to_string(&mut s, &mut text);
        }
        text
    });
    let read_err = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let _ = std::io::Read::read_to_string(&mut s, &mut text);
        }
        text
    });
    // Not wait4's ru_maxrss: it counts this test binary's memory from
    // before the child's exec (see common::wait_for_peak_rss).
    let (code, max_rss_kib) = crate::common::wait_for_peak_rss(child);
    let max_rss_kib = i64::try_from(max_rss_kib).unwrap_or(i64::MAX);
    (
        code,
        read_out.join().expect("stdout"),
        read_err.join().expect("stderr"),
        max_rss_kib,
    )
}

#[test]
fn a_stream_still_coming_at_the_timeout_keeps_what_was_printed() {
    let url = serve(Answer::Endless);
    let mut cmd = chat(&url);
    // Long enough for the first tokens to come on a busy machine; the
    // answer never ends, so the timeout is always what ends the command.
    cmd.args(["--stream", "hello", "--timeout", "5s"]);
    let (code, stdout, stderr, _) = run_measured(cmd, true);
    assert_eq!(code, 9, "{stderr}");
    // The tokens that came were printed, and kept.
    assert!(stdout.starts_with("w0 w1 "), "{stdout:?}");
    assert!(stderr.contains("did not finish"), "{stderr}");
    assert!(stderr.contains("printed above are kept"), "{stderr}");
    assert!(!stderr.contains("not answering"), "{stderr}");
    assert_tidy(&stderr);
}

#[test]
fn a_stream_that_never_starts_says_no_answer_came() {
    let url = serve(Answer::Silent);
    let mut cmd = chat(&url);
    cmd.args(["--stream", "hello", "--timeout", "1s"]);
    let (code, stdout, stderr, _) = run_measured(cmd, true);
    assert_eq!(code, 9, "{stderr}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert!(stderr.contains("no answer within"), "{stderr}");
    assert!(
        stderr.contains("or the server is not answering"),
        "{stderr}"
    );
    assert_tidy(&stderr);
}

#[test]
fn a_huge_streamed_answer_is_printed_without_being_kept() {
    // 96 MiB of text in 64 KiB chunks.
    let url = serve(Answer::Huge(1536));
    let mut cmd = chat(&url);
    cmd.args(["--stream", "hello", "--timeout", "10m"]);
    let (code, _, stderr, max_rss_kib) = run_measured(cmd, false);
    assert_eq!(code, 0, "{stderr}");
    // Before: the whole text was kept (and grown by doubling): over 200 MiB.
    assert!(max_rss_kib < 80 * 1024, "peak RSS {max_rss_kib} KiB");
}
