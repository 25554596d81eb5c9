//! Fault injection: what can go wrong on purpose, and the `--faults` grammar.
//!
//! A [`FaultConfig`] maps a scope (an operation id, `*` for every API
//! operation, `webhook` for webhook deliveries, or `files` for downloads of
//! output files) to a [`FaultSet`]. For
//! each API request the simulator adds the configured latency, then draws one
//! deterministic number (a hash of the seed, the operation and that
//! operation's request counter) and picks at most one fault from the
//! cumulative rates in this order: `drop`, `lost`, `500`, `502`, `503`,
//! `429`, `malformed`.
//!
//! The `webhook` scope is not an API operation and `*` does not reach it.
//! Its faults are drawn per job (a hash of the seed, the reset count, the
//! job's submission number and the fault kind), each independently; the
//! constants below give their timings.
//!
//! The `files` scope is not an API operation either, and `*` does not reach
//! it. For each download (`GET /_sim/files/...` or `/_sim/blobs/...`) the
//! simulator adds the configured latency, then draws one number (a hash of
//! the seed and the download counter) and picks at most one fault in the
//! order `drop`, `500`, `502`, `503`, `expired`; an answer without a fault
//! is sent in pieces of [`DRIP_CHUNK_BYTES`] with the `drip` pause between
//! them.
//!
//! SPEC grammar (also the README's):
//!
//! ```text
//! SPEC  := RULE ("," RULE)*
//! RULE  := API_SCOPE ":" API_KIND "=" VALUE ("@" "retry_after" "=" SECONDS)?
//!        | "webhook" ":" HOOK_KIND "=" VALUE
//!        | "files" ":" FILE_KIND "=" VALUE
//! API_SCOPE := "*" | list_models | list_requests | get_result | get_status
//!        | cancel_request | create_chat_completion | submit
//! API_KIND  := 500 | 502 | 503 | 429 | drop | malformed | lost   (VALUE = rate in [0, 1])
//!        | latency                                           (VALUE = 20ms | 1.5s | 20)
//!        | retry_after                                       (VALUE = whole seconds)
//! HOOK_KIND := lost | duplicate | reorder | spoof            (VALUE = rate in [0, 1])
//!        | delay                                             (VALUE = simulated 20ms | 1.5s | 20)
//! FILE_KIND := 500 | 502 | 503 | drop | expired              (VALUE = rate in [0, 1])
//!        | latency | drip                                    (VALUE = 20ms | 1.5s | 20)
//! ```
//!
//! Example: `submit:lost=0.2,get_status:503=0.1,*:latency=20ms,*:429=0.1@retry_after=2,webhook:duplicate=0.1,files:drip=20ms`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::rng;

/// Operation ids usable as fault scopes (all submit routes share `submit`).
pub const OPERATIONS: [&str; 7] = [
    "list_models",
    "list_requests",
    "get_result",
    "get_status",
    "cancel_request",
    "create_chat_completion",
    "submit",
];

/// The scope of webhook-delivery faults (not an API operation; `*` does not apply to it).
pub const WEBHOOK: &str = "webhook";

/// The fault kinds the `webhook` scope accepts.
pub const WEBHOOK_KINDS: [&str; 5] = ["lost", "duplicate", "delay", "reorder", "spoof"];

/// The scope of faults on downloads of output files (`GET /_sim/files/...`
/// and `GET /_sim/blobs/...`; not an API operation; `*` does not apply to it).
pub const FILES: &str = "files";

/// The fault kinds the `files` scope accepts.
pub const FILES_KINDS: [&str; 7] = ["latency", "drip", "500", "502", "503", "drop", "expired"];

/// Size in bytes of the pieces a `files:drip` download is sent in (the last
/// one may be shorter).
pub const DRIP_CHUNK_BYTES: usize = 1024;

/// HTTP status of a `files:expired` answer: `410 Gone`, as a presigned URL
/// past its expiry (the file was there and no longer is; a plain `404`
/// stays the answer for a file that does not exist, or not yet).
pub const EXPIRED_STATUS: u16 = 410;

/// Simulated seconds between the two copies of a duplicated webhook.
pub const DUPLICATE_GAP_SECS: f64 = 0.5;

/// Range of the extra delay, in simulated seconds, of a reordered webhook:
/// uniform in `[min, max)`.
pub const REORDER_EXTRA_SECS: (f64, f64) = (0.5, 2.5);

/// Longest wait, in simulated seconds, before a spoofed webhook is sent
/// (it is sent after half the job's run time when that is shorter).
pub const SPOOF_AFTER_SECS: f64 = 1.0;

/// The faults of one scope. In an API operation's scope, absent fields
/// inherit from the `*` scope; the `webhook` and `files` scopes inherit
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSet {
    /// Rate of `500 server_error` answers (handler not run).
    #[serde(rename = "500", default, skip_serializing_if = "Option::is_none")]
    pub error_500: Option<f64>,
    /// Rate of `502 server_error` answers (handler not run).
    #[serde(rename = "502", default, skip_serializing_if = "Option::is_none")]
    pub error_502: Option<f64>,
    /// Rate of `503 server_error` answers (handler not run).
    #[serde(rename = "503", default, skip_serializing_if = "Option::is_none")]
    pub error_503: Option<f64>,
    /// Rate of `429 rate_limit_error` answers with `Retry-After` (handler not run).
    #[serde(rename = "429", default, skip_serializing_if = "Option::is_none")]
    pub rate_limited: Option<f64>,
    /// `Retry-After` seconds of injected 429s (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Milliseconds added before every request of the scope (in `files`:
    /// before the headers of every download).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Rate of connections closed without any response (handler not run;
    /// in `files`, the download is closed before its headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<f64>,
    /// Rate of answers whose body is truncated to invalid JSON (handler runs,
    /// status code kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<f64>,
    /// For `submit`: rate of submits whose job is created but whose
    /// connection is then closed without a response. For `webhook`: rate of
    /// deliveries never sent (no attempt at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<f64>,
    /// `webhook` only: rate of deliveries sent twice, the second copy
    /// [`DUPLICATE_GAP_SECS`] simulated seconds after the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// `webhook` only: simulated milliseconds every delivery waits before its
    /// first attempt (scaled by the time scale, like job durations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `webhook` only: rate of deliveries held back by an extra random delay
    /// (uniform in [`REORDER_EXTRA_SECS`], simulated), so that they arrive
    /// after later ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// `webhook` only: rate of jobs with a `webhook_url` for which a forged
    /// `COMPLETED` delivery is sent while the job is still queued or running;
    /// the genuine delivery still follows at the real end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoof: Option<f64>,
    /// `files` only: rate of downloads answered [`EXPIRED_STATUS`] (`410`)
    /// instead of the file, as an expired presigned URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<f64>,
    /// `files` only: wall milliseconds of the pause between the
    /// [`DRIP_CHUNK_BYTES`]-byte pieces a download's body is sent in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drip_ms: Option<u64>,
}

/// What happens to the genuine webhook delivery of one job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WebhookPlan {
    /// Never sent.
    pub(crate) lost: bool,
    /// Sent twice.
    pub(crate) duplicate: bool,
    /// Simulated seconds to wait before the first attempt (`delay`).
    pub(crate) delay_secs: f64,
    /// Extra simulated seconds of a reordered delivery.
    pub(crate) reorder_secs: Option<f64>,
}

impl FaultSet {
    fn overlay(&self, over: &FaultSet) -> FaultSet {
        FaultSet {
            error_500: over.error_500.or(self.error_500),
            error_502: over.error_502.or(self.error_502),
            error_503: over.error_503.or(self.error_503),
            rate_limited: over.rate_limited.or(self.rate_limited),
            retry_after: over.retry_after.or(self.retry_after),
            latency_ms: over.latency_ms.or(self.latency_ms),
            drop: over.drop.or(self.drop),
            malformed: over.malformed.or(self.malformed),
            lost: over.lost.or(self.lost),
            duplicate: over.duplicate.or(self.duplicate),
            delay_ms: over.delay_ms.or(self.delay_ms),
            reorder: over.reorder.or(self.reorder),
            spoof: over.spoof.or(self.spoof),
            expired: over.expired.or(self.expired),
            drip_ms: over.drip_ms.or(self.drip_ms),
        }
    }

    /// The rates of the webhook-only kinds.
    fn webhook_rates(&self) -> [(&'static str, Option<f64>); 3] {
        [
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("spoof", self.spoof),
        ]
    }

    /// The rates of the files-only kinds.
    fn file_rates(&self) -> [(&'static str, Option<f64>); 1] {
        [("expired", self.expired)]
    }

    /// The kinds set in this scope, by their SPEC names.
    fn kinds_set(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self
            .rates()
            .into_iter()
            .chain(self.webhook_rates())
            .chain(self.file_rates())
            .filter(|(_, r)| r.is_some())
            .map(|(k, _)| k)
            .collect();
        if self.latency_ms.is_some() {
            kinds.push("latency");
        }
        if self.retry_after.is_some() {
            kinds.push("retry_after");
        }
        if self.delay_ms.is_some() {
            kinds.push("delay");
        }
        if self.drip_ms.is_some() {
            kinds.push("drip");
        }
        kinds
    }

    fn rates(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("drop", self.drop),
            ("lost", self.lost),
            ("500", self.error_500),
            ("502", self.error_502),
            ("503", self.error_503),
            ("429", self.rate_limited),
            ("malformed", self.malformed),
        ]
    }

    fn set(&mut self, kind: &str, value: &str) -> Result<(), String> {
        if kind == "latency" {
            self.latency_ms = Some(parse_millis(kind, value)?);
            return Ok(());
        }
        if kind == "delay" {
            self.delay_ms = Some(parse_millis(kind, value)?);
            return Ok(());
        }
        if kind == "drip" {
            self.drip_ms = Some(parse_millis(kind, value)?);
            return Ok(());
        }
        if kind == "retry_after" {
            self.retry_after = Some(
                value
                    .parse()
                    .map_err(|_| format!("retry_after: not whole seconds: {value:?}"))?,
            );
            return Ok(());
        }
        let rate: f64 = value
            .parse()
            .map_err(|_| format!("{kind}: not a rate: {value:?}"))?;
        let slot = match kind {
            "500" => &mut self.error_500,
            "502" => &mut self.error_502,
            "503" => &mut self.error_503,
            "429" => &mut self.rate_limited,
            "drop" => &mut self.drop,
            "malformed" => &mut self.malformed,
            "lost" => &mut self.lost,
            "duplicate" => &mut self.duplicate,
            "reorder" => &mut self.reorder,
            "spoof" => &mut self.spoof,
            "expired" => &mut self.expired,
            _ => {
                return Err(format!(
                    "unknown fault kind {kind:?} (known: 500, 502, 503, 429, drop, malformed, lost, latency, retry_after; for webhook: {}; for files: {})",
                    WEBHOOK_KINDS.join(", "),
                    FILES_KINDS.join(", ")
                ));
            }
        };
        *slot = Some(rate);
        Ok(())
    }

    fn validate(&self, scope: &str) -> Result<(), String> {
        for (kind, rate) in self
            .rates()
            .into_iter()
            .chain(self.webhook_rates())
            .chain(self.file_rates())
        {
            if let Some(r) = rate
                && !(0.0..=1.0).contains(&r)
            {
                return Err(format!("{scope}:{kind}: rate {r} is not between 0 and 1"));
            }
        }
        if scope == WEBHOOK {
            if let Some(kind) = self
                .kinds_set()
                .into_iter()
                .find(|k| !WEBHOOK_KINDS.contains(k))
            {
                return Err(format!(
                    "{scope}:{kind}: not a webhook fault (webhook deliveries are not API requests; the webhook scope takes {})",
                    WEBHOOK_KINDS.join(", ")
                ));
            }
            return Ok(());
        }
        if scope == FILES {
            if let Some(kind) = self
                .kinds_set()
                .into_iter()
                .find(|k| !FILES_KINDS.contains(k))
            {
                return Err(format!(
                    "{scope}:{kind}: not a files fault (downloads of output files are not API requests; the files scope takes {})",
                    FILES_KINDS.join(", ")
                ));
            }
            return Ok(());
        }
        if let Some(kind) = self
            .kinds_set()
            .into_iter()
            .find(|k| *k == "drip" || *k == "expired")
        {
            return Err(format!(
                "{scope}:{kind}: only the files scope takes {kind} (write files:{kind}=...)"
            ));
        }
        if let Some(kind) = self
            .kinds_set()
            .into_iter()
            .find(|k| WEBHOOK_KINDS.contains(k) && *k != "lost")
        {
            return Err(format!(
                "{scope}:{kind}: only the webhook scope takes {kind} (write webhook:{kind}=...)"
            ));
        }
        if self.lost.is_some() && scope != "submit" && scope != "*" {
            return Err(format!(
                "{scope}:lost: only the submit operation can lose a response"
            ));
        }
        Ok(())
    }
}

fn parse_millis(kind: &str, value: &str) -> Result<u64, String> {
    let bad = || {
        format!("{kind}: not a duration between 0 and 1 hour: {value:?} (use e.g. 20ms or 1.5s)")
    };
    let (num, factor) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (value, 1.0)
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let ms = n * factor;
    if !ms.is_finite() || !(0.0..=3_600_000.0).contains(&ms) {
        return Err(bad());
    }
    Ok(ms.round() as u64)
}

/// Every configured fault, by scope. Parse it from a SPEC string
/// ([`FromStr`]) or from JSON (a SPEC string, or an object mapping scopes to
/// [`FaultSet`]s); it serialises as the object form.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct FaultConfig {
    scopes: BTreeMap<String, FaultSet>,
}

/// Why a fault SPEC or JSON document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault spec: {0}")]
pub struct FaultSpecError(pub String);

impl FaultConfig {
    /// No faults at all.
    pub fn none() -> FaultConfig {
        FaultConfig::default()
    }

    /// Builds a config from scopes, validating names and rates.
    pub fn from_scopes(scopes: BTreeMap<String, FaultSet>) -> Result<FaultConfig, FaultSpecError> {
        for (scope, set) in &scopes {
            if scope != "*"
                && scope != WEBHOOK
                && scope != FILES
                && !OPERATIONS.contains(&scope.as_str())
            {
                return Err(FaultSpecError(format!(
                    "unknown scope {scope:?} (known: *, {}, {WEBHOOK}, {FILES})",
                    OPERATIONS.join(", ")
                )));
            }
            set.validate(scope).map_err(FaultSpecError)?;
        }
        Ok(FaultConfig { scopes })
    }

    /// The scopes and their faults.
    pub fn scopes(&self) -> &BTreeMap<String, FaultSet> {
        &self.scopes
    }

    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.scopes.values().all(|s| *s == FaultSet::default())
    }

    /// The effective faults of one operation: `*` overlaid by the operation's
    /// own. For [`WEBHOOK`] and [`FILES`], only that scope's own (`*` never
    /// applies).
    pub fn effective(&self, op: &str) -> FaultSet {
        if op == WEBHOOK || op == FILES {
            return self.scopes.get(op).cloned().unwrap_or_default();
        }
        let base = self.scopes.get("*").cloned().unwrap_or_default();
        match self.scopes.get(op) {
            Some(own) => base.overlay(own),
            None => base,
        }
    }

    /// Decides what happens to the `counter`-th request of `op` under `seed`.
    pub(crate) fn decide(&self, op: &str, seed: u64, counter: u64) -> Decision {
        let set = self.effective(op);
        let latency = Duration::from_millis(set.latency_ms.unwrap_or(0));
        let u = rng::unit(rng::hash(&[seed, rng::str_hash(op), counter, 0xFA17]));
        let mut acc = 0.0;
        let mut fault = None;
        for (kind, rate) in set.rates() {
            let Some(rate) = rate else { continue };
            if kind == "lost" && op != "submit" {
                continue;
            }
            acc += rate;
            if u < acc {
                fault = Some(match kind {
                    "drop" => Fault::Drop,
                    "lost" => Fault::Lost,
                    "500" => Fault::Status(500),
                    "502" => Fault::Status(502),
                    "503" => Fault::Status(503),
                    "429" => Fault::RateLimited {
                        retry_after: set.retry_after.unwrap_or(1),
                    },
                    _ => Fault::Malformed,
                });
                break;
            }
        }
        Decision { latency, fault }
    }

    /// Decides what happens to the `counter`-th download of an output file
    /// under `seed`.
    pub(crate) fn decide_file(&self, seed: u64, counter: u64) -> FileDecision {
        let set = self.effective(FILES);
        let u = rng::unit(rng::hash(&[seed, rng::str_hash(FILES), counter, 0xF11E]));
        let mut acc = 0.0;
        let mut fault = None;
        for (kind, rate) in set.rates().into_iter().chain(set.file_rates()) {
            let Some(rate) = rate else { continue };
            acc += rate;
            if u < acc {
                fault = match kind {
                    "drop" => Some(FileFault::Drop),
                    "500" => Some(FileFault::Status(500)),
                    "502" => Some(FileFault::Status(502)),
                    "503" => Some(FileFault::Status(503)),
                    "expired" => Some(FileFault::Expired),
                    // Refused by validation in this scope.
                    _ => None,
                };
                break;
            }
        }
        FileDecision {
            latency: Duration::from_millis(set.latency_ms.unwrap_or(0)),
            drip: Duration::from_millis(set.drip_ms.unwrap_or(0)),
            fault,
        }
    }

    /// What happens to the genuine webhook delivery of the job submitted
    /// `job`-th (0-based) after `epoch` resets, under `seed`. Each kind draws
    /// its own number, so they combine (a lost delivery is neither delayed
    /// nor duplicated).
    pub(crate) fn webhook_plan(&self, seed: u64, epoch: u64, job: u64) -> WebhookPlan {
        let set = self.effective(WEBHOOK);
        let draw = |salt: u64| rng::unit(rng::hash(&[seed, epoch, job, 0x00EB_400C, salt]));
        let hit = |rate: Option<f64>, salt: u64| rate.is_some_and(|r| draw(salt) < r);
        let (lo, hi) = REORDER_EXTRA_SECS;
        WebhookPlan {
            lost: hit(set.lost, 1),
            duplicate: hit(set.duplicate, 2),
            delay_secs: set.delay_ms.unwrap_or(0) as f64 / 1000.0,
            reorder_secs: hit(set.reorder, 3).then(|| lo + (hi - lo) * draw(4)),
        }
    }

    /// Whether the job submitted `job`-th after `epoch` resets gets a spoofed
    /// `COMPLETED` webhook while it is still queued or running.
    pub(crate) fn spoofs(&self, seed: u64, epoch: u64, job: u64) -> bool {
        let set = self.effective(WEBHOOK);
        set.spoof
            .is_some_and(|r| rng::unit(rng::hash(&[seed, epoch, job, 0x00EB_400C, 5])) < r)
    }
}

/// The fault decision for one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    pub(crate) latency: Duration,
    pub(crate) fault: Option<Fault>,
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fault {
    Drop,
    Lost,
    Status(u16),
    RateLimited { retry_after: u64 },
    Malformed,
}

/// The fault decision for one download of an output file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileDecision {
    /// Wall time to wait before answering.
    pub(crate) latency: Duration,
    /// Wall pause between the pieces of the body (zero: sent whole).
    pub(crate) drip: Duration,
    /// The answer instead of the file, if any.
    pub(crate) fault: Option<FileFault>,
}

/// A fault answering a download instead of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FileFault {
    /// The connection closes without an answer.
    Drop,
    /// `500`, `502` or `503`.
    Status(u16),
    /// [`EXPIRED_STATUS`], as an expired presigned URL.
    Expired,
}

impl FileFault {
    /// The key under which `faults_injected` counts this fault.
    pub(crate) fn stats_key(&self) -> &'static str {
        match self {
            FileFault::Drop => "files_drop",
            FileFault::Status(500) => "files_500",
            FileFault::Status(502) => "files_502",
            FileFault::Status(_) => "files_503",
            FileFault::Expired => "files_expired",
        }
    }
}

impl Fault {
    /// The key under which `faults_injected` counts this fault.
    pub(crate) fn stats_key(&self) -> &'static str {
        match self {
            Fault::Drop => "drop",
            Fault::Lost => "lost",
            Fault::Status(500) => "500",
            Fault::Status(502) => "502",
            Fault::Status(_) => "503",
            Fault::RateLimited { .. } => "429",
            Fault::Malformed => "malformed",
        }
    }
}

impl FromStr for FaultConfig {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<FaultConfig, FaultSpecError> {
        let mut scopes: BTreeMap<String, FaultSet> = BTreeMap::new();
        for rule in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let err = |why: String| FaultSpecError(format!("{rule:?}: {why}"));
            let (scope, rest) = rule
                .split_once(':')
                .ok_or_else(|| err("expected SCOPE:KIND=VALUE".into()))?;
            let mut parts = rest.split('@');
            let main = parts.next().unwrap_or_default();
            let (kind, value) = main
                .split_once('=')
                .ok_or_else(|| err("expected KIND=VALUE".into()))?;
            let set = scopes.entry(scope.trim().to_string()).or_default();
            set.set(kind.trim(), value.trim()).map_err(err)?;
            for param in parts {
                let (name, value) = param
                    .split_once('=')
                    .ok_or_else(|| err("expected @NAME=VALUE".into()))?;
                if name.trim() != "retry_after" {
                    return Err(err(format!(
                        "unknown parameter {:?} (known: retry_after)",
                        name.trim()
                    )));
                }
                set.set("retry_after", value.trim()).map_err(err)?;
            }
        }
        FaultConfig::from_scopes(scopes)
    }
}

impl fmt::Display for FaultConfig {
    /// Writes the config back as a SPEC string that parses to the same config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rules = Vec::new();
        for (scope, set) in &self.scopes {
            for (kind, rate) in set.rates() {
                if let Some(r) = rate {
                    rules.push(format!("{scope}:{kind}={r}"));
                }
            }
            if let Some(ms) = set.latency_ms {
                rules.push(format!("{scope}:latency={ms}ms"));
            }
            if let Some(s) = set.retry_after {
                rules.push(format!("{scope}:retry_after={s}"));
            }
            for (kind, rate) in set.webhook_rates() {
                if let Some(r) = rate {
                    rules.push(format!("{scope}:{kind}={r}"));
                }
            }
            if let Some(ms) = set.delay_ms {
                rules.push(format!("{scope}:delay={ms}ms"));
            }
            for (kind, rate) in set.file_rates() {
                if let Some(r) = rate {
                    rules.push(format!("{scope}:{kind}={r}"));
                }
            }
            if let Some(ms) = set.drip_ms {
                rules.push(format!("{scope}:drip={ms}ms"));
            }
        }
        f.write_str(&rules.join(","))
    }
}

impl<'de> Deserialize<'de> for FaultConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FaultConfig, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(spec) => spec.parse().map_err(D::Error::custom),
            serde_json::Value::Null => Ok(FaultConfig::none()),
            other => {
                let scopes: BTreeMap<String, FaultSet> =
                    serde_json::from_value(other).map_err(D::Error::custom)?;
                FaultConfig::from_scopes(scopes).map_err(D::Error::custom)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_display_and_json() {
        let spec =
            "submit:lost=0.2,get_status:503=0.1,*:latency=20ms,*:drop=0.05,*:429=0.1@retry_after=2";
        let c: FaultConfig = spec.parse().unwrap();
        assert_eq!(c.effective("submit").lost, Some(0.2));
        assert_eq!(c.effective("get_status").error_503, Some(0.1));
        assert_eq!(c.effective("get_status").latency_ms, Some(20));
        assert_eq!(c.effective("list_models").retry_after, Some(2));
        let again: FaultConfig = c.to_string().parse().unwrap();
        assert_eq!(again, c);
        let json = serde_json::to_value(&c).unwrap();
        let back: FaultConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        let from_string: FaultConfig = serde_json::from_value(serde_json::json!(spec)).unwrap();
        assert_eq!(from_string, c);
    }

    #[test]
    fn bad_specs_are_rejected() {
        for bad in [
            "nope:500=0.1",
            "*:500=2",
            "*:teapot=0.1",
            "get_status:lost=0.5",
            "*:latency=soon",
            "x",
        ] {
            assert!(bad.parse::<FaultConfig>().is_err(), "{bad}");
        }
        assert!("".parse::<FaultConfig>().unwrap().is_empty());
    }

    #[test]
    fn decisions_are_deterministic_and_follow_rates() {
        let c: FaultConfig = "*:503=0.5".parse().unwrap();
        let a: Vec<_> = (0..1000).map(|i| c.decide("get_status", 7, i)).collect();
        let b: Vec<_> = (0..1000).map(|i| c.decide("get_status", 7, i)).collect();
        assert_eq!(a, b);
        let hits = a.iter().filter(|d| d.fault.is_some()).count();
        assert!((400..600).contains(&hits), "{hits}");
        let all: FaultConfig = "submit:lost=1".parse().unwrap();
        assert_eq!(all.decide("submit", 0, 0).fault, Some(Fault::Lost));
        assert_eq!(all.decide("get_status", 0, 0).fault, None);
    }

    #[test]
    fn webhook_faults_parse_and_round_trip() {
        let spec = "webhook:lost=0.1,webhook:duplicate=0.2,webhook:delay=2s,webhook:reorder=0.3,webhook:spoof=0.4";
        let c: FaultConfig = spec.parse().unwrap();
        let w = c.effective(WEBHOOK);
        assert_eq!(
            (w.lost, w.duplicate, w.delay_ms, w.reorder, w.spoof),
            (Some(0.1), Some(0.2), Some(2000), Some(0.3), Some(0.4))
        );
        let again: FaultConfig = c.to_string().parse().unwrap();
        assert_eq!(again, c);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["webhook"]["delay_ms"], 2000);
        assert_eq!(json["webhook"]["spoof"], 0.4);
        let back: FaultConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        // Webhook faults leave every API operation alone.
        assert_eq!(c.effective("submit"), FaultSet::default());
        assert_eq!(c.decide("submit", 0, 0).fault, None);
    }

    #[test]
    fn the_star_scope_never_reaches_webhooks() {
        let c: FaultConfig = "*:lost=1,*:500=1,*:latency=5ms".parse().unwrap();
        assert_eq!(c.effective(WEBHOOK), FaultSet::default());
        for job in 0..100 {
            let plan = c.webhook_plan(3, 0, job);
            assert!(!plan.lost && !plan.duplicate && plan.reorder_secs.is_none());
            assert_eq!(plan.delay_secs, 0.0);
            assert!(!c.spoofs(3, 0, job));
        }
    }

    #[test]
    fn bad_webhook_specs_are_refused_with_a_reason() {
        let why = |spec: &str| spec.parse::<FaultConfig>().unwrap_err().0;
        for api_kind in [
            "500=0.1",
            "502=0.1",
            "503=1",
            "429=0.5",
            "drop=0.5",
            "malformed=0.1",
            "latency=20ms",
            "retry_after=2",
            "lost=0.5@retry_after=2",
        ] {
            let e = why(&format!("webhook:{api_kind}"));
            assert!(e.contains("not a webhook fault"), "{api_kind}: {e}");
        }
        assert!(why("webhook:500=0.1").contains("webhook:500"));
        for scope in ["*", "submit", "get_status"] {
            for kind in ["duplicate=0.5", "reorder=0.5", "spoof=0.5", "delay=1s"] {
                let e = why(&format!("{scope}:{kind}"));
                assert!(e.contains("only the webhook scope"), "{scope}:{kind}: {e}");
            }
        }
        for bad_rate in [
            "webhook:lost=1.5",
            "webhook:duplicate=-0.1",
            "webhook:reorder=NaN",
            "webhook:spoof=2",
        ] {
            assert!(why(bad_rate).contains("not between 0 and 1"), "{bad_rate}");
        }
        assert!(why("webhook:delay=soon").contains("delay: not a duration"));
        assert!(why("webhook:delay=2h").contains("delay"));
        assert!(why("webhook:teapot=1").contains("unknown fault kind"));
        let json: Result<FaultConfig, _> =
            serde_json::from_value(serde_json::json!({"webhook": {"500": 0.1}}));
        assert!(json.is_err());
    }

    #[test]
    fn files_faults_parse_and_round_trip() {
        let spec = "files:latency=1.5s,files:drip=20,files:500=0.1,files:502=0.05,files:503=0.2,files:drop=0.3,files:expired=0.25";
        let c: FaultConfig = spec.parse().unwrap();
        let f = c.effective(FILES);
        assert_eq!(
            (
                f.latency_ms,
                f.drip_ms,
                f.error_500,
                f.error_502,
                f.error_503,
                f.drop,
                f.expired
            ),
            (
                Some(1500),
                Some(20),
                Some(0.1),
                Some(0.05),
                Some(0.2),
                Some(0.3),
                Some(0.25)
            )
        );
        let again: FaultConfig = c.to_string().parse().unwrap();
        assert_eq!(again, c);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["files"]["drip_ms"], 20);
        assert_eq!(json["files"]["expired"], 0.25);
        assert_eq!(json["files"]["latency_ms"], 1500);
        let back: FaultConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        // Files faults leave every API operation and webhooks alone.
        for op in OPERATIONS.into_iter().chain([WEBHOOK]) {
            assert_eq!(c.effective(op), FaultSet::default(), "{op}");
        }
        assert_eq!(c.decide("get_status", 0, 0), c.decide("get_status", 0, 0));
        assert!((0..100).all(|n| c.decide("submit", 0, n).fault.is_none()));
    }

    #[test]
    fn the_star_scope_never_reaches_files() {
        let c: FaultConfig = "*:drop=1,*:500=1,*:503=1,*:latency=5ms".parse().unwrap();
        assert_eq!(c.effective(FILES), FaultSet::default());
        for n in 0..100 {
            let d = c.decide_file(3, n);
            assert_eq!(
                d,
                FileDecision {
                    latency: Duration::ZERO,
                    drip: Duration::ZERO,
                    fault: None
                }
            );
        }
        // And `files` is not reached by an operation's own scope either.
        let c: FaultConfig = "get_status:500=1,submit:lost=1".parse().unwrap();
        assert!((0..100).all(|n| c.decide_file(3, n).fault.is_none()));
    }

    #[test]
    fn bad_files_specs_are_refused_with_a_reason() {
        let why = |spec: &str| spec.parse::<FaultConfig>().unwrap_err().0;
        for other_kind in [
            // API only
            "429=0.1",
            "malformed=0.1",
            "lost=0.5",
            "retry_after=2",
            "500=0.1@retry_after=2",
            // webhook only
            "duplicate=0.5",
            "reorder=0.5",
            "spoof=0.5",
            "delay=1s",
        ] {
            let e = why(&format!("files:{other_kind}"));
            assert!(e.contains("not a files fault"), "{other_kind}: {e}");
            assert!(
                e.contains("latency, drip, 500, 502, 503, drop, expired"),
                "{e}"
            );
        }
        assert!(why("files:429=0.1").contains("files:429"));
        for scope in ["*", "submit", "get_status", "list_models"] {
            for kind in ["drip=20ms", "expired=0.5"] {
                let e = why(&format!("{scope}:{kind}"));
                assert!(e.contains("only the files scope"), "{scope}:{kind}: {e}");
            }
        }
        for kind in ["drip=20ms", "expired=0.5"] {
            let e = why(&format!("webhook:{kind}"));
            assert!(e.contains("not a webhook fault"), "{kind}: {e}");
        }
        for bad_rate in [
            "files:expired=1.5",
            "files:500=-0.1",
            "files:drop=NaN",
            "files:503=2",
        ] {
            assert!(why(bad_rate).contains("not between 0 and 1"), "{bad_rate}");
        }
        assert!(why("files:drip=soon").contains("drip: not a duration"));
        assert!(why("files:drip=2h").contains("drip"));
        assert!(why("files:latency=-5ms").contains("latency: not a duration"));
        let json: Result<FaultConfig, _> =
            serde_json::from_value(serde_json::json!({"files": {"429": 0.1}}));
        assert!(json.unwrap_err().to_string().contains("not a files fault"));
        let json: Result<FaultConfig, _> =
            serde_json::from_value(serde_json::json!({"*": {"drip_ms": 5}}));
        assert!(
            json.unwrap_err()
                .to_string()
                .contains("only the files scope")
        );
    }

    #[test]
    fn file_decisions_are_deterministic_and_follow_rates() {
        let c: FaultConfig = "files:drop=0.1,files:500=0.1,files:503=0.2,files:expired=0.1,files:drip=5ms,files:latency=2ms"
            .parse()
            .unwrap();
        let a: Vec<_> = (0..2000).map(|n| c.decide_file(7, n)).collect();
        let b: Vec<_> = (0..2000).map(|n| c.decide_file(7, n)).collect();
        assert_eq!(a, b);
        assert_ne!(
            a,
            (0..2000).map(|n| c.decide_file(8, n)).collect::<Vec<_>>()
        );
        let count = |f: FileFault| a.iter().filter(|d| d.fault == Some(f)).count();
        assert!((120..280).contains(&count(FileFault::Drop)));
        assert!((120..280).contains(&count(FileFault::Status(500))));
        assert!((300..500).contains(&count(FileFault::Status(503))));
        assert!((120..280).contains(&count(FileFault::Expired)));
        assert_eq!(count(FileFault::Status(502)), 0);
        assert!(
            a.iter().all(
                |d| d.drip == Duration::from_millis(5) && d.latency == Duration::from_millis(2)
            )
        );
        for (spec, fault) in [
            ("files:drop=1", FileFault::Drop),
            ("files:500=1", FileFault::Status(500)),
            ("files:502=1", FileFault::Status(502)),
            ("files:503=1", FileFault::Status(503)),
            ("files:expired=1", FileFault::Expired),
        ] {
            let all: FaultConfig = spec.parse().unwrap();
            assert!(
                (0..50).all(|n| all.decide_file(0, n).fault == Some(fault)),
                "{spec}"
            );
        }
        assert_eq!(FileFault::Expired.stats_key(), "files_expired");
        assert_eq!(FileFault::Status(502).stats_key(), "files_502");
    }

    #[test]
    fn webhook_decisions_are_deterministic_per_job_and_follow_rates() {
        let c: FaultConfig = "webhook:duplicate=0.5,webhook:reorder=0.25,webhook:spoof=0.1"
            .parse()
            .unwrap();
        let plans: Vec<_> = (0..1000).map(|j| c.webhook_plan(7, 0, j)).collect();
        let again: Vec<_> = (0..1000).map(|j| c.webhook_plan(7, 0, j)).collect();
        assert_eq!(plans, again);
        assert_ne!(
            plans,
            (0..1000)
                .map(|j| c.webhook_plan(8, 0, j))
                .collect::<Vec<_>>()
        );
        let dup = plans.iter().filter(|p| p.duplicate).count();
        let reordered: Vec<f64> = plans.iter().filter_map(|p| p.reorder_secs).collect();
        let spoofed = (0..1000).filter(|&j| c.spoofs(7, 0, j)).count();
        assert!((400..600).contains(&dup), "{dup}");
        assert!((180..320).contains(&reordered.len()), "{}", reordered.len());
        assert!((50..150).contains(&spoofed), "{spoofed}");
        let (lo, hi) = REORDER_EXTRA_SECS;
        assert!(reordered.iter().all(|s| (lo..hi).contains(s)));
        assert!(plans.iter().all(|p| !p.lost && p.delay_secs == 0.0));
        let all: FaultConfig = "webhook:lost=1,webhook:delay=1500ms".parse().unwrap();
        let p = all.webhook_plan(0, 0, 0);
        assert!(p.lost);
        assert_eq!(p.delay_secs, 1.5);
        let none: FaultConfig = "webhook:lost=0".parse().unwrap();
        assert!((0..100).all(|j| !none.webhook_plan(0, 0, j).lost));
    }
}
