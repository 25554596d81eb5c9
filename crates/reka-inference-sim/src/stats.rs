//! Counters of what the simulator saw and did; the body of `GET /_sim/stats`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A snapshot of the simulator's counters since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Operation id -> HTTP status code (as a string) -> count. Operation ids
    /// are those of the API reference, with every submit route counted under
    /// `submit`; unmatched paths count under `other`. Connections closed by a
    /// `drop` or `lost` fault count under the pseudo status `dropped`.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Jobs created by submits (idempotent replays create none).
    pub jobs_created: u64,
    /// Submits answered by replaying an earlier 202 (duplicates prevented).
    pub idempotent_replays: u64,
    /// Submits refused with 409 because the key was reused with another body.
    pub idempotency_conflicts: u64,
    /// Current number of jobs in each status.
    pub jobs_by_status: BTreeMap<String, u64>,
    /// Webhooks delivered (a 2xx answer from the receiver).
    pub webhooks_delivered: u64,
    /// Webhook POST attempts, including retries.
    pub webhook_attempts: u64,
    /// Webhooks given up after the last retry.
    pub webhooks_failed: u64,
    /// Injected faults by kind. API faults: `500`, `502`, `503`, `429`,
    /// `drop`, `malformed`, `lost`, `latency`. Faults on downloads of output
    /// files (the `files` scope), one count per download: `files_latency`,
    /// `files_drip`, `files_500`, `files_502`, `files_503`, `files_drop`,
    /// `files_expired`. Webhook faults have their own counters below.
    pub faults_injected: BTreeMap<String, u64>,
    /// Requests refused by the per-key rate limit (not by fault injection).
    pub rate_limited: u64,
    /// Submits refused by the per-key submit token bucket
    /// ([`crate::SimConfig::submit_rate_limit`]); they ran no handler.
    #[serde(default)]
    pub submit_rate_limited: u64,
    /// Webhook deliveries never sent (`webhook:lost`): no attempt at all.
    #[serde(default)]
    pub webhooks_lost: u64,
    /// Webhook deliveries sent a second time (`webhook:duplicate`); each copy
    /// also counts in `webhook_attempts`, `webhooks_delivered` and
    /// `webhooks_failed` like any delivery.
    #[serde(default)]
    pub webhooks_duplicated: u64,
    /// Webhook deliveries held back by `webhook:delay` before their first attempt.
    #[serde(default)]
    pub webhooks_delayed: u64,
    /// Webhook deliveries given an extra random delay by `webhook:reorder`.
    #[serde(default)]
    pub webhooks_reordered: u64,
    /// Forged `COMPLETED` webhooks sent while their job was not finished
    /// (`webhook:spoof`); they count in no other webhook counter.
    #[serde(default)]
    pub webhooks_spoofed: u64,
}

impl Stats {
    /// Counts one answered request.
    pub(crate) fn record_request(&mut self, op: &str, status: &str) {
        *self
            .requests
            .entry(op.to_string())
            .or_default()
            .entry(status.to_string())
            .or_default() += 1;
    }

    /// Counts one injected fault.
    pub(crate) fn record_fault(&mut self, kind: &str) {
        *self.faults_injected.entry(kind.to_string()).or_default() += 1;
    }

    /// How many requests of `op` were answered with `status` (a convenience for tests).
    pub fn count(&self, op: &str, status: &str) -> u64 {
        self.requests
            .get(op)
            .and_then(|m| m.get(status))
            .copied()
            .unwrap_or(0)
    }

    /// How many faults of `kind` were injected (a convenience for tests).
    pub fn faults(&self, kind: &str) -> u64 {
        self.faults_injected.get(kind).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_without_the_newer_counters_still_read() {
        let old = serde_json::json!({
            "requests": {"submit": {"202": 2}},
            "jobs_created": 2,
            "idempotent_replays": 0,
            "idempotency_conflicts": 0,
            "jobs_by_status": {"COMPLETED": 2},
            "webhooks_delivered": 2,
            "webhook_attempts": 3,
            "webhooks_failed": 0,
            "faults_injected": {},
            "rate_limited": 1
        });
        let stats: Stats = serde_json::from_value(old).unwrap();
        assert_eq!(stats.count("submit", "202"), 2);
        assert_eq!(stats.rate_limited, 1);
        assert_eq!(
            (
                stats.submit_rate_limited,
                stats.webhooks_lost,
                stats.webhooks_duplicated,
                stats.webhooks_delayed,
                stats.webhooks_reordered,
                stats.webhooks_spoofed
            ),
            (0, 0, 0, 0, 0, 0)
        );
    }
}
