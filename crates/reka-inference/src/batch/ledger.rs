//! A batch's money: what the service reported spent, what is assumed spent
//! on jobs it did not price, each endpoint's price estimate, and the jobs
//! in flight whose price is still to come, from which the budget check
//! judges whether one more job fits.
//!
//! An endpoint's estimate is the highest price its jobs reported (a job
//! can cost more than the mean, and a budget is a bound); before any did,
//! the model list's price or the caller's estimate, the higher of the two.
//! A price that rests on the caller's estimate alone is unconfirmed: a
//! job of such an endpoint is a probe, and probes run one at a time, so
//! that an estimate that is too low costs at most one job past the budget.

use std::collections::{HashMap, HashSet};

use super::JournalEntry;

/// Money: spent, assumed, estimated, in flight.
#[derive(Default)]
pub(super) struct Ledger {
    /// What the service reported charging.
    pub(super) spent: f64,
    /// The estimates of ended jobs whose records carried no price.
    pub(super) assumed: f64,
    /// Whether any job reported a price.
    pub(super) priced_any: bool,
    /// The highest reported price, by endpoint.
    reported: HashMap<String, f64>,
    /// The model list's prices, by endpoint.
    listed: HashMap<String, f64>,
    /// Endpoints with an ended job whose record carried no price.
    unpriced: HashSet<String>,
    /// The caller's estimate.
    fallback: Option<f64>,
    /// Items submitting or running, by endpoint.
    in_flight: HashMap<String, usize>,
    /// Keys of the items in flight that are price probes.
    probes: HashSet<String>,
}

/// Whether one more job fits the budget.
#[derive(Debug, PartialEq)]
pub(super) enum Fits {
    /// Yes; `probe` when its price is not confirmed yet.
    Yes { probe: bool },
    /// Not before the probe in flight tells its price.
    AfterProbe,
    /// No: the budget is reached.
    No,
    /// No price is known for the endpoint at all.
    Unknown,
}

impl Ledger {
    pub(super) fn new(fallback: Option<f64>) -> Ledger {
        Ledger {
            fallback: fallback.filter(|p| p.is_finite() && *p >= 0.0),
            ..Ledger::default()
        }
    }

    /// The model list's prices (endpoint id, price).
    pub(super) fn listed(&mut self, prices: impl IntoIterator<Item = (String, f64)>) {
        self.listed.extend(
            prices
                .into_iter()
                .filter(|(_, p)| p.is_finite() && *p >= 0.0),
        );
    }

    /// An item of `endpoint` is submitting (or, resumed, running).
    pub(super) fn started(&mut self, key: &str, endpoint: &str) {
        *self.in_flight.entry(endpoint.to_owned()).or_default() += 1;
        if !self.confirmed(endpoint) {
            self.probes.insert(key.to_owned());
        }
    }

    /// An item counted in flight since the journal was read, now sent:
    /// a probe if its endpoint's price is not confirmed.
    pub(super) fn mark_probe(&mut self, key: &str, endpoint: &str) {
        if !self.confirmed(endpoint) {
            self.probes.insert(key.to_owned());
        }
    }

    /// An item no longer in flight, whatever became of it.
    pub(super) fn stopped(&mut self, key: &str, endpoint: &str) {
        if let Some(n) = self.in_flight.get_mut(endpoint) {
            *n = n.saturating_sub(1);
        }
        self.probes.remove(key);
    }

    /// An item whose submit's outcome is unknown: it may be in flight at
    /// the service, so its price stays committed, but it tells nothing
    /// more in this run and no longer holds back other probes.
    pub(super) fn lost_track(&mut self, key: &str) {
        self.probes.remove(key);
    }

    /// An item whose job ended (or was never made).
    pub(super) fn ended(&mut self, entry: &JournalEntry) {
        self.stopped(&entry.key, &entry.endpoint);
        self.priced(entry);
    }

    /// Counts what an ended item cost.
    pub(super) fn priced(&mut self, entry: &JournalEntry) {
        match entry.price_usd.filter(|p| p.is_finite() && *p >= 0.0) {
            Some(p) => {
                self.spent += p;
                self.priced_any = true;
                let max = self.reported.entry(entry.endpoint.clone()).or_insert(p);
                *max = max.max(p);
            }
            // A job was made and said nothing of its price: assume it
            // cost what it was estimated at.
            None if entry.request_id.is_some() => {
                self.unpriced.insert(entry.endpoint.clone());
                self.assumed += self.estimate(&entry.endpoint).unwrap_or(0.0);
            }
            None => {}
        }
    }

    /// Whether the endpoint's price rests on more than the caller's
    /// estimate: a reported price, a listed one, or jobs that say none.
    fn confirmed(&self, endpoint: &str) -> bool {
        self.reported.contains_key(endpoint)
            || self.listed.contains_key(endpoint)
            || self.unpriced.contains(endpoint)
    }

    /// The price one job of `endpoint` is assumed to cost.
    pub(super) fn estimate(&self, endpoint: &str) -> Option<f64> {
        if let Some(p) = self.reported.get(endpoint) {
            return Some(*p);
        }
        match (self.listed.get(endpoint).copied(), self.fallback) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The estimated price of the jobs in flight (an endpoint without an
    /// estimate counts 0: only jobs resumed from an earlier run can be so).
    pub(super) fn committed(&self) -> f64 {
        self.in_flight
            .iter()
            .filter_map(|(e, n)| Some(self.estimate(e)? * *n as f64))
            .fold(0.0, |a, b| a + b)
    }

    /// Whether one more job of `endpoint` fits `budget`.
    pub(super) fn fits(&self, endpoint: &str, budget: f64) -> Fits {
        let Some(price) = self.estimate(endpoint) else {
            return Fits::Unknown;
        };
        let probe = !self.confirmed(endpoint);
        if probe && !self.probes.is_empty() {
            return Fits::AfterProbe;
        }
        if self.spent + self.assumed + self.committed() + price <= budget + 1e-9 {
            Fits::Yes { probe }
        } else {
            Fits::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(key: &str, endpoint: &str, price: Option<f64>) -> JournalEntry {
        let mut e = JournalEntry::new(key, endpoint, "fp", "k");
        e.request_id = Some(format!("req-{key}"));
        e.status = Some("COMPLETED".into());
        e.price_usd = price;
        e
    }

    #[test]
    fn unpriced_jobs_count_their_estimate_as_spent() {
        // Before: a completed job with no price added nothing, so with an
        // estimate the budget only ever bounded the jobs in flight.
        let mut l = Ledger::new(Some(0.04));
        for i in 0..10 {
            let key = format!("k{i}");
            assert!(matches!(l.fits("m/c", 0.5), Fits::Yes { .. }), "{i}");
            l.started(&key, "m/c");
            l.ended(&ended(&key, "m/c", None));
        }
        assert!((l.assumed - 0.4).abs() < 1e-9, "{}", l.assumed);
        assert_eq!(l.spent, 0.0);
        l.started("k10", "m/c");
        l.ended(&ended("k10", "m/c", None));
        assert!(matches!(l.fits("m/c", 0.5), Fits::Yes { .. }));
        l.started("k11", "m/c");
        l.ended(&ended("k11", "m/c", None));
        // 12 x 0.04 = 0.48: a 13th would pass 0.5.
        assert_eq!(l.fits("m/c", 0.5), Fits::No);
    }

    #[test]
    fn probes_of_unconfirmed_prices_run_one_at_a_time() {
        let mut l = Ledger::new(Some(0.1));
        assert_eq!(l.fits("a/c", 10.0), Fits::Yes { probe: true });
        l.started("a1", "a/c");
        // Another endpoint known only by the estimate waits for the probe.
        assert_eq!(l.fits("b/c", 10.0), Fits::AfterProbe);
        assert_eq!(l.fits("a/c", 10.0), Fits::AfterProbe);
        // A listed endpoint does not.
        l.listed([("c/c".to_owned(), 0.2)]);
        assert_eq!(l.fits("c/c", 10.0), Fits::Yes { probe: false });
        // The probe reports 1.5: the endpoint's estimate from then on.
        l.ended(&ended("a1", "a/c", Some(1.5)));
        assert_eq!(l.estimate("a/c"), Some(1.5));
        assert_eq!(l.fits("a/c", 10.0), Fits::Yes { probe: false });
        assert_eq!(l.fits("b/c", 10.0), Fits::Yes { probe: true });
    }

    #[test]
    fn no_price_at_all_is_unknown_and_nothing_is_ever_negative() {
        let l = Ledger::new(None);
        assert_eq!(l.fits("m/c", 1.0), Fits::Unknown);
        // An empty sum of f64 is -0.0, which prints as "-0.000".
        assert!(l.committed().is_sign_positive());
        let mut l = Ledger::new(Some(-1.0));
        assert_eq!(l.estimate("m/c"), None, "a negative estimate is ignored");
        l.listed([("m/c".to_owned(), f64::NAN)]);
        assert_eq!(l.estimate("m/c"), None);
    }

    #[test]
    fn the_highest_reported_price_and_the_higher_of_list_and_estimate_are_used() {
        let mut l = Ledger::new(Some(0.3));
        l.listed([("m/c".to_owned(), 0.2)]);
        assert_eq!(l.estimate("m/c"), Some(0.3));
        l.started("a", "m/c");
        l.ended(&ended("a", "m/c", Some(0.1)));
        l.started("b", "m/c");
        l.ended(&ended("b", "m/c", Some(0.25)));
        assert_eq!(l.estimate("m/c"), Some(0.25));
        assert!((l.spent - 0.35).abs() < 1e-9);
    }
}
