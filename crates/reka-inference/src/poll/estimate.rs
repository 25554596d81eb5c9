//! How long an endpoint's jobs run, as the schedule plans with it: a
//! per-endpoint lognormal learnt from every finished job (recent jobs
//! weigh more), and the planning distribution built on it while few jobs
//! are learnt (a prior spread, and a vague share that shrinks).

use std::collections::HashMap;
use std::sync::Mutex;

/// A running estimate of how long an endpoint's jobs run.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DurationEstimate {
    /// Mean running time, seconds.
    pub mean: f64,
    /// Standard deviation of the running time, seconds.
    pub std_dev: f64,
    /// Mean of the natural log of the running time (generation times are
    /// closer to lognormal than to normal: a long tail, never negative).
    pub log_mean: f64,
    /// Standard deviation of the natural log of the running time.
    pub log_std_dev: f64,
    /// How many finished jobs it is built from.
    pub samples: u64,
}

impl DurationEstimate {
    /// The chance that a run lasts at most `seconds`, under the
    /// distribution the schedule plans with: the learnt lognormal, its
    /// spread blended with a prior spread while few jobs are learnt (one job
    /// says nothing of the spread), mixed with a vague lognormal of the same
    /// median whose share shrinks with every job learnt (one job may be far
    /// from the median).
    pub(super) fn planning_cdf(&self, seconds: f64) -> f64 {
        1.0 - self.planning_survival(seconds)
    }

    /// The chance that a run lasts longer than `seconds` (computed as such,
    /// not as one minus the CDF: the tail is where precision matters).
    pub(super) fn planning_survival(&self, seconds: f64) -> f64 {
        if seconds.is_nan() || seconds <= 0.0 {
            return 1.0;
        }
        let sd = self.planning_log_std_dev();
        let vague_share = VAGUE_WEIGHT / (self.samples as f64 + VAGUE_WEIGHT);
        (1.0 - vague_share) * lognormal_survival(seconds, self.log_mean, sd)
            + vague_share * lognormal_survival(seconds, self.log_mean, sd.max(VAGUE_LOG_STD_DEV))
    }

    /// The planning distribution's `p`-quantile, seconds (by bisection:
    /// the mixture has no closed form).
    pub(crate) fn planning_quantile(&self, p: f64) -> f64 {
        let (mut low, mut high) = (0.0, self.log_mean.exp().clamp(0.0, MAX_LEARNT_SECONDS));
        if !high.is_finite() {
            return 0.0;
        }
        while self.planning_cdf(high) < p && high < MAX_LEARNT_SECONDS {
            high = (high * 2.0).min(MAX_LEARNT_SECONDS);
        }
        for _ in 0..40 {
            let mid = (low + high) / 2.0;
            if self.planning_cdf(mid) < p {
                low = mid;
            } else {
                high = mid;
            }
        }
        low
    }

    /// The learnt spread blended with [`PRIOR_LOG_STD_DEV`], counted as
    /// [`PRIOR_WEIGHT`] jobs.
    fn planning_log_std_dev(&self) -> f64 {
        let n = self.samples as f64;
        let learnt = if self.log_std_dev.is_finite() {
            self.log_std_dev
        } else {
            0.0
        };
        ((n * learnt * learnt + PRIOR_WEIGHT * PRIOR_LOG_STD_DEV * PRIOR_LOG_STD_DEV)
            / (n + PRIOR_WEIGHT))
            .sqrt()
    }
}

/// P(X > x) for ln X normal with mean `mu` and standard deviation `sd`.
fn lognormal_survival(x: f64, mu: f64, sd: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let z = (x.ln() - mu) / sd.max(1e-9);
    if z.is_nan() {
        return 1.0;
    }
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Per-endpoint estimates, shared by every job of a client.
#[derive(Debug, Default)]
pub(crate) struct Estimates {
    by_endpoint: Mutex<HashMap<String, Welford>>,
}

/// Exponentially weighted mean and variance: recent jobs count more, so the
/// estimate follows a service that speeds up or slows down.
#[derive(Debug, Clone, Copy, Default)]
struct Welford {
    n: u64,
    mean: f64,
    var: f64,
    log_mean: f64,
    log_var: f64,
}

/// The least weight of a new job in the estimate: about the latest ten
/// jobs make it, once more are learnt.
pub(super) const WEIGHT_FLOOR: f64 = 0.1;

/// The small-sample correction of a variance, n / (n - 1), at most 2.
fn bessel(n: u64) -> f64 {
    if n < 2 {
        1.0
    } else {
        n as f64 / (n - 1) as f64
    }
}

/// The longest job duration learnt: a day. Longer reports are clamped.
pub(crate) const MAX_LEARNT_SECONDS: f64 = 24.0 * 3600.0;

impl Estimates {
    pub(crate) fn get(&self, endpoint: &str) -> Option<DurationEstimate> {
        let map = self.by_endpoint.lock().ok()?;
        let w = map.get(endpoint)?;
        Some(DurationEstimate {
            mean: w.mean,
            std_dev: w.var.max(0.0).sqrt(),
            log_mean: w.log_mean,
            // Corrected for few samples (the weighted variance of two jobs
            // is half their squared difference).
            log_std_dev: (w.log_var.max(0.0) * bessel(w.n)).sqrt(),
            samples: w.n,
        })
    }

    /// Learns one job's duration. Durations past [`MAX_LEARNT_SECONDS`]
    /// (a server's nonsense `inference_time`) are clamped, so no estimate
    /// can make a later schedule overflow.
    pub(crate) fn record(&self, endpoint: &str, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let seconds = seconds.min(MAX_LEARNT_SECONDS);
        let Ok(mut map) = self.by_endpoint.lock() else {
            return;
        };
        let w = map.entry(endpoint.to_owned()).or_default();
        w.n += 1;
        // Plain averaging for the first samples, then a floor on the weight.
        let alpha = (1.0 / w.n as f64).max(WEIGHT_FLOOR);
        let delta = seconds - w.mean;
        w.mean += alpha * delta;
        w.var = (1.0 - alpha) * (w.var + alpha * delta * delta);
        // A millisecond floor keeps ln finite for instant jobs.
        let log = seconds.max(1e-3).ln();
        let log_delta = log - w.log_mean;
        w.log_mean += alpha * log_delta;
        w.log_var = (1.0 - alpha) * (w.log_var + alpha * log_delta * log_delta);
    }
}

/// The spread assumed before jobs are learnt: ln(1.8) / 1.645, a p95 of
/// 1.8 times the median, as generation jobs commonly show.
const PRIOR_LOG_STD_DEV: f64 = 0.357;

/// How many jobs the prior spread counts for.
const PRIOR_WEIGHT: f64 = 0.5;

/// The vague distribution's spread (a p95 of 2.7 times the median) and
/// how many jobs its share counts for: one learnt job leaves it a third of
/// the planning distribution, nine a nineteenth.
const VAGUE_LOG_STD_DEV: f64 = 0.6;
const VAGUE_WEIGHT: f64 = 0.5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_follow_recent_jobs() {
        let e = Estimates::default();
        for _ in 0..3 {
            e.record("m/c", 10.0);
        }
        let est = e.get("m/c").unwrap();
        assert!((est.mean - 10.0).abs() < 1e-9 && est.std_dev < 1e-9 && est.samples == 3);
        for _ in 0..40 {
            e.record("m/c", 20.0);
        }
        assert!((e.get("m/c").unwrap().mean - 20.0).abs() < 0.2);
        assert!(e.get("other/c").is_none());
        e.record("m/c", f64::NAN);
        assert_eq!(e.get("m/c").unwrap().samples, 43);
    }
}
