//! The session's money and jobs: what the service reported it charged for
//! the jobs this server submitted, which of them are still in flight, and
//! whether one more may be submitted within the budget and the bound on
//! jobs in flight.
//!
//! A submit first takes a [`Reservation`] (checked and counted at once,
//! under one lock, so that concurrent calls cannot both squeeze under the
//! budget), which the submit's outcome then confirms or drops.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::report::usd;

/// Why a submit is refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// It would pass the budget.
    Budget(String),
    /// Too many jobs are in flight.
    TooManyJobs(String),
}

impl Refusal {
    pub(crate) fn message(&self) -> &str {
        match self {
            Refusal::Budget(m) | Refusal::TooManyJobs(m) => m,
        }
    }
}

/// The spend of the session, as results show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spend {
    /// What the service reported for the finished jobs of this server.
    pub reported_usd: f64,
    /// The estimated price of its jobs in flight.
    pub in_flight_usd: f64,
    /// Its jobs in flight.
    pub in_flight: usize,
    /// The budget, when there is one.
    pub budget_usd: Option<f64>,
}

#[derive(Debug)]
struct State {
    budget: Option<f64>,
    fallback: Option<f64>,
    max_jobs: usize,
    /// The reported prices of this server's finished jobs, summed.
    spent: f64,
    /// Jobs submitted by this server, finished or not.
    ours: HashSet<String>,
    /// Finished jobs of this server, counted in `spent` (or known to carry
    /// no price).
    settled: HashSet<String>,
    /// Jobs in flight: request id -> endpoint.
    in_flight: HashMap<String, String>,
    /// Submits under way: reservation -> endpoint.
    reserved: HashMap<u64, String>,
    next_reservation: u64,
    /// The highest price reported per endpoint.
    prices: HashMap<String, f64>,
}

/// The ledger, shared by every session of a server.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    state: Arc<Mutex<State>>,
}

/// A place taken for one submit; dropped without [`Reservation::confirm`],
/// it is given back.
#[derive(Debug)]
pub(crate) struct Reservation {
    ledger: Ledger,
    id: Option<u64>,
}

impl Reservation {
    /// The submit created (or replayed) `request_id`: it is in flight now.
    pub(crate) fn confirm(mut self, request_id: &str) {
        if let Some(id) = self.id.take() {
            self.ledger.with(|s| {
                if let Some(endpoint) = s.reserved.remove(&id) {
                    s.ours.insert(request_id.to_owned());
                    // A replay of a job already seen finish stays settled.
                    if !s.settled.contains(request_id) {
                        s.in_flight.insert(request_id.to_owned(), endpoint);
                    }
                }
            });
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.ledger.with(|s| {
                s.reserved.remove(&id);
            });
        }
    }
}

impl Ledger {
    pub(crate) fn new(budget: Option<f64>, fallback: Option<f64>, max_jobs: usize) -> Ledger {
        Ledger {
            state: Arc::new(Mutex::new(State {
                budget,
                fallback,
                max_jobs,
                spent: 0.0,
                ours: HashSet::new(),
                settled: HashSet::new(),
                in_flight: HashMap::new(),
                reserved: HashMap::new(),
                next_reservation: 0,
                prices: HashMap::new(),
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic elsewhere while holding the lock leaves consistent
        // numbers (every update is one step): go on with them.
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Takes a place for a submit to `endpoint`, or says why not.
    pub(crate) fn reserve(&self, endpoint: &str) -> Result<Reservation, Refusal> {
        let id = self.with(|s| {
            let busy = s.in_flight.len() + s.reserved.len();
            if busy >= s.max_jobs {
                let mut ids: Vec<&String> = s.in_flight.keys().collect();
                ids.sort();
                let shown: Vec<String> = ids.iter().take(10).map(|i| i.to_string()).collect();
                return Err(Refusal::TooManyJobs(format!(
                    "{busy} jobs of this server are still in flight (the limit is {}): {}. Wait for \
                     one with wait_for_job, or cancel one with cancel_job, then submit again. \
                     Nothing was submitted.",
                    s.max_jobs,
                    if shown.is_empty() {
                        "submits under way".to_owned()
                    } else {
                        shown.join(", ")
                    }
                )));
            }
            if let Some(budget) = s.budget {
                let estimate = |e: &str| s.prices.get(e).copied().or(s.fallback);
                let in_flight_usd: f64 = s
                    .in_flight
                    .values()
                    .chain(s.reserved.values())
                    .filter_map(|e| estimate(e))
                    .sum();
                let committed = s.spent + in_flight_usd;
                let this = estimate(endpoint);
                let base = format!(
                    "{} spent so far (as the service reported it) plus {} estimated for {} job(s) \
                     in flight, of a session budget of {}",
                    usd(s.spent),
                    usd(in_flight_usd),
                    s.in_flight.len() + s.reserved.len(),
                    usd(budget)
                );
                match this {
                    Some(price) if committed + price > budget => {
                        return Err(Refusal::Budget(format!(
                            "budget: {base}; a job of {endpoint} (about {}) would pass it. \
                             Nothing was submitted.",
                            usd(price)
                        )));
                    }
                    None if committed >= budget => {
                        return Err(Refusal::Budget(format!(
                            "budget: {base}; no more jobs can be submitted. Nothing was submitted."
                        )));
                    }
                    None => {
                        // Learn an unknown price from one job at a time.
                        let learning = s
                            .in_flight
                            .values()
                            .chain(s.reserved.values())
                            .any(|e| e == endpoint);
                        if learning {
                            return Err(Refusal::Budget(format!(
                                "budget: the price of {endpoint} is not known yet and one of its \
                                 jobs is in flight; wait for it (wait_for_job) so that its price \
                                 is known, then submit again ({base}). Nothing was submitted."
                            )));
                        }
                    }
                    Some(_) => {}
                }
            }
            let id = s.next_reservation;
            s.next_reservation = s.next_reservation.wrapping_add(1);
            s.reserved.insert(id, endpoint.to_owned());
            Ok(id)
        })?;
        Ok(Reservation {
            ledger: self.clone(),
            id: Some(id),
        })
    }

    /// A job was seen finished, with the price its record carries. Counted
    /// once, and only for jobs this server submitted.
    pub(crate) fn finished(&self, request_id: &str, endpoint: Option<&str>, price: Option<f64>) {
        self.with(|s| {
            if !s.ours.contains(request_id) || s.settled.contains(request_id) {
                return;
            }
            let endpoint = s
                .in_flight
                .remove(request_id)
                .or_else(|| endpoint.map(str::to_owned));
            s.settled.insert(request_id.to_owned());
            let price = price.filter(|p| p.is_finite() && *p >= 0.0);
            match (price, &endpoint) {
                (Some(p), Some(e)) => {
                    s.spent += p;
                    let seen = s.prices.entry(e.clone()).or_insert(p);
                    *seen = seen.max(p);
                }
                (Some(p), None) => s.spent += p,
                // No price in the record: count the estimate, if any, so
                // that the budget still means something.
                (None, Some(e)) => {
                    if let Some(guess) = s.prices.get(e).copied().or(s.fallback) {
                        s.spent += guess;
                    }
                }
                (None, None) => {
                    if let Some(guess) = s.fallback {
                        s.spent += guess;
                    }
                }
            }
        });
    }

    /// The jobs in flight: request id and endpoint.
    pub(crate) fn in_flight(&self) -> Vec<(String, String)> {
        self.with(|s| {
            s.in_flight
                .iter()
                .map(|(i, e)| (i.clone(), e.clone()))
                .collect()
        })
    }

    /// Whether this server submitted `request_id`.
    pub(crate) fn is_ours(&self, request_id: &str) -> bool {
        self.with(|s| s.ours.contains(request_id))
    }

    /// The session's spend.
    pub(crate) fn spend(&self) -> Spend {
        self.with(|s| {
            let in_flight_usd = s
                .in_flight
                .values()
                .filter_map(|e| s.prices.get(e).copied().or(s.fallback))
                .sum();
            Spend {
                reported_usd: s.spent,
                in_flight_usd,
                in_flight: s.in_flight.len(),
                budget_usd: s.budget,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_budget_only_the_job_bound_counts() {
        let ledger = Ledger::new(None, None, 2);
        let a = ledger.reserve("m/text-to-image").unwrap();
        let b = ledger.reserve("m/text-to-image").unwrap();
        let refused = ledger.reserve("m/text-to-image").unwrap_err();
        assert!(matches!(refused, Refusal::TooManyJobs(_)));
        assert!(refused.message().contains("limit is 2"));
        a.confirm("r1");
        drop(b); // the submit failed: its place is given back
        let c = ledger.reserve("m/text-to-image").unwrap();
        c.confirm("r2");
        let err = ledger.reserve("x/edit").unwrap_err();
        assert!(err.message().contains("r1, r2"), "{}", err.message());
        ledger.finished("r1", None, Some(0.04));
        assert!(ledger.reserve("x/edit").is_ok());
        assert_eq!(ledger.spend().reported_usd, 0.04);
    }

    #[test]
    fn the_budget_counts_reported_prices_and_estimates_in_flight() {
        let ledger = Ledger::new(Some(1.0), None, 100);
        // Unknown price: one job runs alone to learn it.
        ledger.reserve("veo/text-to-video").unwrap().confirm("v1");
        let learning = ledger.reserve("veo/text-to-video").unwrap_err();
        assert!(learning.message().contains("not known yet"), "{learning:?}");
        ledger.finished("v1", Some("veo/text-to-video"), Some(0.45));
        // Known now: 0.45 spent + 0.45 in flight + 0.45 > 1.0.
        ledger.reserve("veo/text-to-video").unwrap().confirm("v2");
        let refused = ledger.reserve("veo/text-to-video").unwrap_err();
        let Refusal::Budget(message) = refused else {
            panic!("{refused:?}")
        };
        assert!(message.contains("$0.45 spent so far"), "{message}");
        assert!(
            message.contains("$0.45 estimated for 1 job(s)"),
            "{message}"
        );
        assert!(message.contains("budget of $1.00"), "{message}");
        assert!(message.contains("Nothing was submitted"), "{message}");
        let spend = ledger.spend();
        assert_eq!(
            (spend.reported_usd, spend.in_flight_usd, spend.in_flight),
            (0.45, 0.45, 1)
        );
    }

    #[test]
    fn a_price_is_counted_once_and_only_for_our_jobs() {
        let ledger = Ledger::new(Some(10.0), None, 10);
        ledger.reserve("a/b").unwrap().confirm("r1");
        ledger.finished("r1", Some("a/b"), Some(1.0));
        ledger.finished("r1", Some("a/b"), Some(1.0));
        ledger.finished("someone-else", Some("a/b"), Some(5.0));
        assert_eq!(ledger.spend().reported_usd, 1.0);
        // A replayed submit of a finished job stays finished.
        ledger.reserve("a/b").unwrap().confirm("r1");
        assert_eq!(ledger.spend().in_flight, 0);
        assert!(ledger.is_ours("r1") && !ledger.is_ours("someone-else"));
    }

    #[test]
    fn the_fallback_estimate_prices_unknown_endpoints() {
        let ledger = Ledger::new(Some(0.10), Some(0.04), 10);
        ledger.reserve("a/b").unwrap().confirm("r1");
        ledger.reserve("a/b").unwrap().confirm("r2");
        // 0.08 in flight + 0.04 > 0.10.
        assert!(matches!(ledger.reserve("a/b"), Err(Refusal::Budget(_))));
        // A record without a price counts the estimate.
        ledger.finished("r1", Some("a/b"), None);
        assert!((ledger.spend().reported_usd - 0.04).abs() < 1e-9);
    }

    #[test]
    fn concurrent_reservations_count_against_each_other() {
        let ledger = Ledger::new(Some(0.10), Some(0.04), 10);
        let a = ledger.reserve("a/b").unwrap();
        let b = ledger.reserve("a/b").unwrap();
        assert!(ledger.reserve("a/b").is_err());
        drop(a);
        drop(b);
        assert!(ledger.reserve("a/b").is_ok());
    }
}
