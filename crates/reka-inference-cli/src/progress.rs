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
