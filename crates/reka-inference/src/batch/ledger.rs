//! A batch's money: what the service reported spent, the mean price of
//! each endpoint's jobs so far, and the jobs in flight whose price is
//! still to come, from which the budget check estimates a run's spend.

use std::collections::{HashMap, HashSet};

use super::JournalEntry;

/// Money: what was spent, what each endpoint costs, what is in flight.
#[derive(Default)]
pub(super) struct Ledger {
    pub(super) spent: f64,
    /// Sum and count of the reported prices, by endpoint.
    pub(super) prices: HashMap<String, (f64, usize)>,
    /// Endpoints with a completed job whose record carried no price.
    pub(super) unpriced: HashSet<String>,
    /// Items submitting or running, by endpoint.
    pub(super) in_flight: HashMap<String, usize>,
}

impl Ledger {
    pub(super) fn started(&mut self, endpoint: &str) {
        *self.in_flight.entry(endpoint.to_owned()).or_default() += 1;
    }

    pub(super) fn stopped(&mut self, endpoint: &str) {
        if let Some(n) = self.in_flight.get_mut(endpoint) {
            *n = n.saturating_sub(1);
        }
    }

    /// An item whose job ended (or was never made).
    pub(super) fn ended(&mut self, entry: &JournalEntry) {
        self.stopped(&entry.endpoint);
        self.priced(entry);
    }

    pub(super) fn priced(&mut self, entry: &JournalEntry) {
        match entry.price_usd {
            Some(p) => {
                self.spent += p;
                let (sum, n) = self.prices.entry(entry.endpoint.clone()).or_default();
                *sum += p;
                *n += 1;
            }
            None if entry.status.as_deref() == Some("COMPLETED") => {
                self.unpriced.insert(entry.endpoint.clone());
            }
            None => {}
        }
    }

    /// The mean reported price of an endpoint's jobs, else `fallback`.
    pub(super) fn estimate(&self, endpoint: &str, fallback: Option<f64>) -> Option<f64> {
        match self.prices.get(endpoint) {
            Some((sum, n)) if *n > 0 => Some(sum / *n as f64),
            _ => fallback,
        }
    }

    /// The estimated price of the jobs in flight (unknown ones count 0).
    pub(super) fn committed(&self, fallback: Option<f64>) -> f64 {
        self.in_flight
            .iter()
            .filter_map(|(e, n)| Some(self.estimate(e, fallback)? * *n as f64))
            .sum()
    }
}
