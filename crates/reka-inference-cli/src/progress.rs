//! What a person sees while waiting: a spinner with the job's status, its
//! place in the queue, the time spent and its log lines, then a bar per
//! downloaded file.
//!
//! Everything is drawn on stderr and only when [`Output::progress`] is set
//! (a terminal, no `--quiet`); otherwise the bars are hidden and every call
//! is a no-op, so callers never need to check.

use std::time::Duration;

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reka_inference::Progress;

use crate::output::Output;

/// The spinner of one job.
#[derive(Debug)]
pub struct JobSpinner {
    bar: ProgressBar,
}

impl JobSpinner {
    /// A spinner for `request_id`, drawn when `out.progress` is set.
    pub fn new(out: &Output, label: &str) -> JobSpinner {
        let bar = if out.progress {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} {elapsed:.dim}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        JobSpinner { bar }
    }

    /// Changes the status text (`queued, 3 ahead`, `running`).
    pub fn status(&self, text: impl Into<String>) {
        self.bar.set_message(text.into());
    }

    /// Changes the label (the request id once it is known).
    pub fn prefix(&self, label: &str) {
        self.bar.set_prefix(label.to_owned());
    }

    /// Prints a line above the spinner (a new log line).
    pub fn println(&self, line: impl AsRef<str>) {
        self.bar.println(line);
    }

    /// Removes the spinner.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }

    /// Removes the spinner after Ctrl-C.
    ///
    /// indicatif pads the spinner's line to the terminal's width, leaving
    /// the cursor in the last column, so the `^C` the terminal echoes wraps
    /// onto a line of its own; a plain clear would clear that line and leave
    /// the spinner on screen. This clears the `^C` line and steps back up
    /// first. (After a SIGINT sent with `kill` to a process drawing on a
    /// terminal, nothing was echoed and the line above the spinner goes too:
    /// a cosmetic loss in a rare case.)
    pub fn clear_after_ctrl_c(&self) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar.suspend(|| {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b"\r\x1b[2K\x1b[1A");
            let _ = err.flush();
        });
        self.bar.finish_and_clear();
    }
}

/// Bars for the files of a download, one at a time.
#[derive(Debug)]
pub struct DownloadBars {
    enabled: bool,
    current: Option<(usize, ProgressBar)>,
    count: usize,
}

impl DownloadBars {
    /// Bars for `count` files, drawn when `out.progress` is set.
    pub fn new(out: &Output, count: usize) -> DownloadBars {
        DownloadBars {
            enabled: out.progress,
            current: None,
            count,
        }
    }

    /// Reports progress of file `index`.
    pub fn update(&mut self, index: usize, p: Progress) {
        if !self.enabled {
            return;
        }
        let same = matches!(&self.current, Some((i, _)) if *i == index);
        if !same {
            if let Some((_, done)) = self.current.take() {
                done.finish_and_clear();
            }
            let bar = ProgressBar::with_draw_target(p.total, ProgressDrawTarget::stderr());
            let template = if p.total.is_some() {
                "  {prefix} [{bar:30.cyan/blue}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}"
            } else {
                "  {prefix} {spinner} {decimal_bytes} {decimal_bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("downloading {}/{}", index + 1, self.count));
            self.current = Some((index, bar));
        }
        if let Some((_, bar)) = &self.current {
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.received);
        }
    }

    /// Removes the bars.
    pub fn clear(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish_and_clear();
        }
    }
}

/// What `batch` shows while it runs: a bar of lines done, with where the
/// rest stand, on a terminal; a plain line every ten seconds otherwise;
/// nothing with `--quiet` or `--json` (which prints progress events).
#[derive(Debug)]
pub struct BatchBar {
    bar: ProgressBar,
    plain: bool,
    quiet: bool,
    began: std::time::Instant,
    last_plain: std::time::Instant,
    total: u64,
}

/// How often the plain line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

impl BatchBar {
    /// A display for `total` lines, `done` of them finished already.
    pub fn new(out: &Output, total: u64, done: u64) -> BatchBar {
        let bar = if out.progress && !out.json {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{bar:30.cyan/blue} {pos}/{len} {msg} [{elapsed_precise}, ETA {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_position(done);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        } else {
            ProgressBar::hidden()
        };
        let now = std::time::Instant::now();
        BatchBar {
            bar,
            plain: !out.progress && !out.quiet && !out.json,
            quiet: out.quiet,
            began: now,
            last_plain: now,
            total,
        }
    }

    /// The latest figures: lines done (of every kind), and the rest.
    pub fn update(
        &mut self,
        done: u64,
        failed: u64,
        p: &reka_inference::batch::BatchProgress,
        started_with: u64,
    ) {
        let elapsed = self.began.elapsed().as_secs_f64();
        let rate = done.saturating_sub(started_with) as f64 / elapsed.max(0.001);
        let mut msg = format!(
            "submitting {} · queued {} · running {} · failed {} · {} · {:.1} lines/s",
            p.submitting,
            p.queued,
            p.running,
            failed,
            crate::output::price_text(p.spent_usd),
            rate
        );
        if let Some(secs) = p.paused_for_secs {
            msg.push_str(&format!(" · submits paused {secs:.0}s"));
        }
        self.bar.set_position(done);
        self.bar.set_message(msg.clone());
        if self.plain && self.last_plain.elapsed() >= PLAIN_EVERY {
            self.last_plain = std::time::Instant::now();
            let left = self.total.saturating_sub(done);
            let eta = if rate > 0.0 && left > 0 {
                format!(
                    ", ETA {}",
                    crate::time::human(Duration::from_secs_f64((left as f64 / rate).min(1e7)))
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                std::io::stderr().lock(),
                "batch: {done}/{} lines done; {msg}{eta}",
                self.total
            );
        }
    }

    /// Prints a line above the bar (a line that failed, a pause).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            let _ = writeln!(std::io::stderr().lock(), "{}", line.as_ref());
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}
