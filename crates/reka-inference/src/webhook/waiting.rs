//! The delivery counts of a receiver, by request id: the ids this process
//! waits for, kept as long as something waits, and a small bounded cache of
//! deliveries for ids nothing waits for yet, kept apart so that a flood of
//! deliveries for unknown ids (forged, or another program's) can neither
//! push out an id a wait follows nor grow memory without bound.
//!
//! An id is waited for from the moment a job handle subscribes to it
//! ([`Deliveries::for_job`](super::Deliveries::for_job): a submit with the
//! receiver, an attach, a wait) until the last subscriber is gone; its entry
//! then goes at the next sweep, which runs whenever the table has doubled
//! since the last one (amortised constant time per subscription). A
//! delivery that comes before anything waits (a job that ends before its
//! wait begins) is kept in the early cache, the oldest forgotten first, and
//! handed to the wait that subscribes later.

use std::collections::{HashMap, VecDeque};

use tokio::sync::watch;

/// Deliveries for ids nothing waits for, remembered for a wait that may
/// start later: the most recent this many.
pub(crate) const EARLY_CAPACITY: usize = 1024;

/// What one delivery was, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// The id had a delivery before.
    pub(crate) duplicate: bool,
    /// Nothing in this process waits for the id.
    pub(crate) unknown: bool,
}

/// The delivery counts of one receiver.
#[derive(Debug)]
pub(crate) struct Waiting {
    /// Ids something waits for: the count of their deliveries, watched.
    waited: HashMap<String, watch::Sender<u64>>,
    /// `waited` is swept once it holds more than this.
    sweep_above: usize,
    /// Deliveries for ids nothing waits for, oldest first.
    early: HashMap<String, u64>,
    early_order: VecDeque<String>,
    /// Deliveries for any id waited for, for sets of jobs.
    any: watch::Sender<u64>,
}

/// The smallest table that is ever swept.
const MIN_SWEEP: usize = 64;

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            waited: HashMap::new(),
            sweep_above: MIN_SWEEP,
            early: HashMap::new(),
            early_order: VecDeque::new(),
            any: watch::channel(0).0,
        }
    }
}

impl Waiting {
    /// Counts a delivery for `id`.
    pub(crate) fn record(&mut self, id: &str) -> Recorded {
        let mut before = 0;
        if let Some(tx) = self.waited.get(id) {
            if tx.receiver_count() > 0 {
                let duplicate = *tx.borrow() > 0;
                tx.send_modify(|n| *n = n.saturating_add(1));
                self.any.send_modify(|n| *n = n.saturating_add(1));
                return Recorded {
                    duplicate,
                    unknown: false,
                };
            }
            // Nothing waits any more: an unknown id from now on.
            before = *tx.borrow();
            self.waited.remove(id);
        }
        let count = match self.early.get_mut(id) {
            Some(n) => n,
            None => {
                while self.early_order.len() >= EARLY_CAPACITY {
                    if let Some(old) = self.early_order.pop_front() {
                        self.early.remove(&old);
                    }
                }
                self.early_order.push_back(id.to_owned());
                self.early.entry(id.to_owned()).or_insert(before)
            }
        };
        let duplicate = *count > 0;
        *count = count.saturating_add(1);
        Recorded {
            duplicate,
            unknown: true,
        }
    }

    /// A watch of the deliveries for `id`; from now on, and while the
    /// watch (or a clone) lives, `id` is waited for.
    pub(crate) fn subscribe(&mut self, id: &str) -> watch::Receiver<u64> {
        if let Some(tx) = self.waited.get(id) {
            return tx.subscribe();
        }
        let delivered = match self.early.remove(id) {
            Some(n) => {
                self.early_order.retain(|e| e != id);
                n
            }
            None => 0,
        };
        let (tx, rx) = watch::channel(delivered);
        self.waited.insert(id.to_owned(), tx);
        if self.waited.len() > self.sweep_above {
            self.waited.retain(|_, tx| tx.receiver_count() > 0);
            self.sweep_above = (self.waited.len() * 2).max(MIN_SWEEP);
        }
        rx
    }

    /// A watch of the deliveries for every id waited for.
    pub(crate) fn any(&self) -> watch::Receiver<u64> {
        self.any.subscribe()
    }

    /// Ids in the table (waited for, or swept later) and in the early cache.
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.waited.len(), self.early.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_for_unknown_ids_keeps_the_waited_for_id_and_stays_bounded() {
        let mut w = Waiting::default();
        let mine = w.subscribe("mine");
        for i in 0..110_000 {
            let r = w.record(&format!("forged-{i}"));
            assert!(r.unknown && !r.duplicate);
        }
        assert_eq!(w.sizes(), (1, EARLY_CAPACITY));
        let r = w.record("mine");
        assert_eq!(
            r,
            Recorded {
                duplicate: false,
                unknown: false
            }
        );
        assert_eq!(*mine.borrow(), 1);
        assert_eq!(*w.any().borrow(), 1, "only waited-for ids move `any`");
    }

    #[test]
    fn an_early_delivery_is_handed_to_the_wait_that_comes_later() {
        let mut w = Waiting::default();
        assert!(w.record("r1").unknown);
        assert!(w.record("r1").duplicate);
        let watch = w.subscribe("r1");
        assert_eq!(*watch.borrow(), 2);
        assert_eq!(w.sizes(), (1, 0));
        let again = w.record("r1");
        assert!(again.duplicate && !again.unknown);
    }

    #[test]
    fn ids_nothing_waits_for_any_more_are_swept() {
        let mut w = Waiting::default();
        let kept = w.subscribe("kept");
        for i in 0..10_000 {
            drop(w.subscribe(&format!("done-{i}")));
        }
        let (waited, _) = w.sizes();
        assert!(waited <= 2 * MIN_SWEEP + 1, "{waited}");
        // A delivery for a finished wait's id is an unknown id's.
        assert!(w.record("done-9999").unknown);
        assert!(!w.record("kept").unknown);
        assert_eq!(*kept.borrow(), 1);
    }
}
