//! Where things are printed: results on stdout (text or JSON), errors and
//! hints on stderr (text, or JSON with `--json`).
//!
//! Writes to a closed pipe (`reka-inference list | head -1`) are ignored
//! rather than turned into a panic.

use std::io::{IsTerminal, Write};

use reka_inference::MediaRef;
use reka_inference::types::{JobError, LogEntry, Metrics};
use serde::Serialize;
use serde_json::Value;

use crate::exit::Failure;

/// How this invocation prints.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Results as JSON.
    pub json: bool,
    /// No progress, no hints.
    pub quiet: bool,
    /// Progress displays are drawn: stdout and stderr are terminals and
    /// `--quiet` is off.
    pub progress: bool,
}

impl Output {
    /// Decides from the flags and the terminals.
    pub fn new(json: bool, quiet: bool) -> Output {
        let terminals = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        Output {
            json,
            quiet,
            progress: terminals && !quiet,
        }
    }

    /// A line of the result on stdout.
    /// Control characters other than line breaks and tabs are escaped.
    pub fn line(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let text: String = text
            .as_ref()
            .split('\n')
            .map(printable_keeping_tabs)
            .collect::<Vec<_>>()
            .join("\n");
        let _ = writeln!(out, "{text}");
    }

    /// Text on stdout without a newline, flushed (streamed chat).
    pub fn partial(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// A value as pretty JSON on stdout.
    pub fn json_value(&self, value: &impl Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => self.line(text),
            Err(e) => self.note(&format!("could not encode the result as JSON: {e}")),
        }
    }

    /// A value as one line of JSON on stdout (streams).
    pub fn json_line(&self, value: &impl Serialize) {
        if let Ok(text) = serde_json::to_string(value) {
            self.line(text);
        }
    }

    /// A note for the person at the terminal, on stderr; none with `--quiet`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{}", printable(text));
        }
    }

    /// Reports a failure on stderr: `error: ...` (and a hint), or the JSON
    /// error object with `--json`.
    pub fn failure(&self, f: &Failure) {
        let mut err = std::io::stderr().lock();
        if self.json {
            let _ = writeln!(err, "{}", f.to_json());
            return;
        }
        let _ = writeln!(err, "error: {}", printable(&f.message));
        if let Some(hint) = &f.hint
            && !self.quiet
        {
            let _ = writeln!(err, "hint: {}", printable(hint));
        }
    }
}

/// `  image/png  https://...` lines for media found in an output.
pub fn media_lines(media: &[MediaRef]) -> Vec<String> {
    media
        .iter()
        .map(|m| {
            let kind = printable(m.content_type.as_deref().unwrap_or("file"));
            format!("  {kind:<11} {}", printable(&m.url))
        })
        .collect()
}

/// An output object as indented JSON, for outputs without files.
pub fn indented_json(value: &Value) -> Vec<String> {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|_| value.to_string())
        .lines()
        .map(|l| format!("  {l}"))
        .collect()
}

/// `inference 6.1s` from the server's metrics.
pub fn metrics_text(metrics: Option<&Metrics>) -> Option<String> {
    let secs = metrics?.inference_time?;
    Some(format!("{secs:.1}s of inference"))
}

/// `$0.039` (or `$0.00012`: small prices keep their digits). Never
/// negative: `-0.0` (an empty sum of prices) and anything below zero or
/// not a number print as `$0.000`.
pub fn price_text(usd: f64) -> String {
    if usd.is_nan() || usd <= 0.0 {
        return "$0.000".to_owned();
    }
    if usd >= 0.01 {
        format!("${usd:.3}")
    } else {
        format!("${usd:.6}")
    }
}

/// `inference_error: the model failed` from a job's error.
pub fn job_error_text(error: Option<&JobError>) -> String {
    match error {
        Some(e) => match (&e.type_, &e.message) {
            (Some(t), Some(m)) => format!("{t}: {m}"),
            (None, Some(m)) => m.clone(),
            (Some(t), None) => t.clone(),
            (None, None) => "no details given".into(),
        },
        None => "no details given".into(),
    }
}

/// One log line: `12:00:01 info  message`.
pub fn log_line(entry: &LogEntry) -> String {
    let time = entry
        .timestamp
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_else(|| "--:--:--".into());
    let level = printable(entry.level.as_deref().unwrap_or("info"));
    format!("{time} {level:<5} {}", printable(&entry.message))
}

fn printable_keeping_tabs(text: &str) -> String {
    text.split('\t')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\t")
}

/// `text` with every control character shown as an escape (`\u{1b}`), so
/// that what a server says can neither move the cursor, clear the screen,
/// nor start a line of its own (a forged `hint:`).
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Bytes as `12.3 KB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Rows padded into columns; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn no_price_is_ever_printed_negative() {
        // An empty sum of f64 is -0.0: "$-0.000 in flight" before.
        let empty: f64 = std::iter::empty::<f64>().sum();
        assert_eq!(price_text(empty), "$0.000");
        assert_eq!(price_text(-0.0), "$0.000");
        assert_eq!(price_text(-1e-12), "$0.000");
        assert_eq!(price_text(f64::NAN), "$0.000");
        assert_eq!(price_text(0.039), "$0.039");
        assert_eq!(price_text(0.00012), "$0.000120");
    }

    use super::*;

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["long".into(), "x".into(), "last".into()],
        ];
        assert_eq!(table(&rows), ["A     BB  C", "long  x   last"]);
    }

    #[test]
    fn server_text_cannot_drive_the_terminal() {
        assert_eq!(printable("plain"), "plain");
        let shown = printable("boom\u{1b}[2J\nhint: run rm -rf /\r");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(
            shown.contains("\\u{1b}[2J") && shown.contains("\\n"),
            "{shown:?}"
        );
    }

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(12_345), "12.3 KB");
        assert_eq!(human_bytes(5_000_000), "5.0 MB");
    }
}
