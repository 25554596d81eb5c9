//! Batches on the simulator: every item once, reported once, across stops
//! and restarts; refused, failed and changed items; budgets; files.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reka_inference::batch::{
    BatchEvent, BatchItem, BatchOptions, BatchSummary, EntryState, Journal, JournalEntry,
    MemoryJournal, StopReason, SubmitterOptions,
};
use reka_inference::{Client, SubmitOptions};
use reka_inference_sim::{Dialect, SimConfig};
use serde_json::json;

const IMAGE: &str = "nano-banana/text-to-image";

fn items(n: usize) -> Vec<BatchItem> {
    (0..n)
        .map(|i| {
            BatchItem::new(
                format!("item-{i}"),
                IMAGE,
                json!({"prompt": format!("p{i}")}),
            )
            .unwrap()
        })
        .collect()
}

/// What one run reported, by key.
#[derive(Default, Clone)]
struct Reports(Arc<Mutex<HashMap<String, Vec<JournalEntry>>>>);

impl Reports {
    fn count(&self) -> usize {
        self.0.lock().unwrap().values().map(Vec::len).sum()
    }

    fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.0.lock().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn get(&self, key: &str) -> Vec<JournalEntry> {
        self.0.lock().unwrap().get(key).cloned().unwrap_or_default()
    }
}

async fn run(
    client: &Client,
    journal: &Arc<MemoryJournal>,
    options: BatchOptions,
    items: Vec<BatchItem>,
    reports: &Reports,
) -> BatchSummary {
    let reports = reports.clone();
    client
        .batch(journal.clone())
        .options(options)
        .run(futures::stream::iter(items), move |event| {
            if let BatchEvent::Done(entry) = event {
                reports
                    .0
                    .lock()
                    .unwrap()
                    .entry(entry.key.clone())
                    .or_default()
                    .push(entry.clone());
            }
            Ok(())
        })
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_item_is_submitted_once_saved_and_reported_once() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let out = tempfile::tempdir().unwrap();
    let journal = Arc::new(MemoryJournal::default());
    let reports = Reports::default();
    let summary = run(
        &client,
        &journal,
        BatchOptions::default()
            .submitter(SubmitterOptions::default().concurrency(6))
            .download_dir(out.path()),
        items(30),
        &reports,
    )
    .await;
    assert_eq!(summary.succeeded, 30, "{summary:?}");
    assert!(summary.all_succeeded(), "{summary:?}");
    assert_eq!(reports.count(), 30);
    for key in reports.keys() {
        let entry = &reports.get(&key)[0];
        assert_eq!(entry.status.as_deref(), Some("COMPLETED"));
        assert!(!entry.files.is_empty(), "{key}: no files");
        for f in &entry.files {
            let path = std::path::Path::new(f);
            assert!(path.starts_with(out.path().join(&key)), "{f}");
            assert!(std::fs::metadata(path).unwrap().len() > 0);
        }
    }
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, 30);
    assert!(
        journal
            .load()
            .await
            .unwrap()
            .iter()
            .all(|e| e.state == EntryState::Reported && e.output.is_none())
    );
    // The report carried the output; the journal keeps no copy of it.
    assert!(reports.get("item-0")[0].output.is_some());

    // The same batch again: nothing is sent, nothing reported twice.
    let again = Reports::default();
    let summary = run(
        &client,
        &journal,
        BatchOptions::default(),
        items(30),
        &again,
    )
    .await;
    assert_eq!(summary.succeeded, 30);
    assert_eq!(summary.reported, 0);
    assert_eq!(again.count(), 0);
    let after = sim.stats().await;
    assert_eq!(after.count("submit", "202"), stats.count("submit", "202"));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_run_is_resumed_by_the_next_without_a_second_job() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let journal = Arc::new(MemoryJournal::default());
    let reports = Reports::default();
    let batch = client
        .batch(journal.clone())
        .options(BatchOptions::default().submitter(SubmitterOptions::default().concurrency(4)));
    let stopper = batch.stopper();
    let mut submitted = 0;
    let first = {
        let reports = reports.clone();
        batch
            .run(futures::stream::iter(items(40)), move |event| {
                match event {
                    BatchEvent::Submitted(_) => {
                        submitted += 1;
                        if submitted == 12 {
                            stopper.stop();
                        }
                    }
                    BatchEvent::Done(entry) => {
                        reports
                            .0
                            .lock()
                            .unwrap()
                            .entry(entry.key.clone())
                            .or_default()
                            .push(entry.clone());
                    }
                    _ => {}
                }
                Ok(())
            })
            .await
            .unwrap()
    };
    assert_eq!(first.stopped, Some(StopReason::Stopped));
    assert!(first.succeeded < 40, "{first:?}");
    let second = run(
        &client,
        &journal,
        BatchOptions::default().submitter(SubmitterOptions::default().concurrency(4)),
        items(40),
        &reports,
    )
    .await;
    assert!(second.all_succeeded(), "{second:?}");
    assert_eq!(second.succeeded, 40);
    // Each item reported once over both runs, each with its own job.
    assert_eq!(reports.count(), 40);
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, 40, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_submit_whose_answer_was_lost_is_replayed_into_its_job() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    // A run that saved its key and sent the submit, then died before the
    // answer was saved: the job exists, the journal only knows the key.
    let item = items(1).remove(0);
    let entry = JournalEntry::new("item-0", IMAGE, item.fingerprint(), "key-of-item-0");
    let journal = Arc::new(MemoryJournal::default());
    journal.save(&entry).await.unwrap();
    let made = client
        .submit_with(
            IMAGE,
            json!({"prompt": "p0"}),
            SubmitOptions::default().idempotency_key("key-of-item-0"),
        )
        .await
        .unwrap();
    let reports = Reports::default();
    let summary = run(
        &client,
        &journal,
        BatchOptions::default(),
        vec![item],
        &reports,
    )
    .await;
    assert_eq!(summary.succeeded, 1, "{summary:?}");
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, 1);
    assert_eq!(stats.idempotent_replays, 1);
    assert_eq!(
        reports.get("item-0")[0].request_id.as_deref(),
        Some(made.id())
    );
}

#[tokio::test(start_paused = true)]
async fn refused_failed_and_changed_items_are_reported_or_skipped_never_sent_twice() {
    let sim = common::sim_with(SimConfig::new().failure_rate(1.0)).await;
    let client = common::client(&sim);
    let journal = Arc::new(MemoryJournal::default());
    // An item an earlier run may have sent with another input.
    let earlier = BatchItem::new("changed", IMAGE, json!({"prompt": "before"})).unwrap();
    let mut entry = JournalEntry::new("changed", IMAGE, earlier.fingerprint(), "k-changed");
    entry.state = EntryState::Submitting;
    journal.save(&entry).await.unwrap();
    let batch_items = vec![
        BatchItem::new(
            "unknown-model",
            "no-such-model/text-to-image",
            json!({"prompt": "x"}),
        )
        .unwrap(),
        BatchItem::new("fails", IMAGE, json!({"prompt": "x"})).unwrap(),
        BatchItem::new("changed", IMAGE, json!({"prompt": "after"})).unwrap(),
    ];
    let reports = Reports::default();
    let summary = run(
        &client,
        &journal,
        BatchOptions::default(),
        batch_items,
        &reports,
    )
    .await;
    assert_eq!(summary.failed, 2, "{summary:?}");
    assert_eq!(summary.changed, 1);
    assert!(!summary.all_succeeded());
    assert_eq!(
        reports.get("unknown-model")[0].status.as_deref(),
        Some("REJECTED")
    );
    let failed = &reports.get("fails")[0];
    assert_eq!(failed.status.as_deref(), Some("FAILED"));
    assert!(failed.error.is_some());
    assert!(reports.get("changed").is_empty());
    // Only "fails" made a job; the changed item was not sent.
    assert_eq!(sim.stats().await.jobs_created, 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_submits_at_what_it_allows() {
    let sim = common::sim_with(SimConfig::new().dialect(Dialect::Infer)).await;
    let client = common::client(&sim);
    // Learn the endpoint's price from one job.
    let probe = client.run(IMAGE, json!({"prompt": "probe"})).await.unwrap();
    let price = probe.price_usd().expect("infer reports prices");
    let journal = Arc::new(MemoryJournal::default());
    let reports = Reports::default();
    let mut seen_budget = false;
    let summary = client
        .batch(journal.clone())
        .options(
            BatchOptions::default()
                .submitter(SubmitterOptions::default().concurrency(4))
                .budget_usd(price * 5.5),
        )
        .run(futures::stream::iter(items(20)), |event| {
            match event {
                BatchEvent::BudgetReached {
                    spent_usd,
                    committed_usd,
                } => {
                    seen_budget = true;
                    assert!(spent_usd + committed_usd <= price * 5.5 + 1e-9);
                }
                BatchEvent::Done(entry) => {
                    reports
                        .0
                        .lock()
                        .unwrap()
                        .entry(entry.key.clone())
                        .or_default()
                        .push(entry.clone());
                }
                _ => {}
            }
            Ok(())
        })
        .await
        .unwrap();
    assert!(seen_budget);
    assert_eq!(summary.stopped, Some(StopReason::Budget));
    assert_eq!(summary.succeeded, 5, "{summary:?}");
    assert!(summary.spent_usd <= price * 5.5);
    assert_eq!(sim.stats().await.jobs_created, 1 + 5);
}

#[tokio::test(start_paused = true)]
async fn jobs_past_their_time_are_left_for_the_next_run() {
    // Jobs of 10 simulated minutes (6 s here) against a job timeout of 1 s.
    let sim =
        common::sim_with(SimConfig::new().catalog(common::fixed_catalog("slow", 8, 600))).await;
    let client = common::client(&sim);
    let journal = Arc::new(MemoryJournal::default());
    let slow: Vec<BatchItem> = (0..3)
        .map(|i| {
            BatchItem::new(format!("s{i}"), "slow/text-to-image", json!({"prompt": i})).unwrap()
        })
        .collect();
    let reports = Reports::default();
    let first = run(
        &client,
        &journal,
        BatchOptions::default().job_timeout(Duration::from_secs(1)),
        slow.clone(),
        &reports,
    )
    .await;
    assert_eq!(first.unfinished, 3, "{first:?}");
    assert_eq!(reports.count(), 0);
    let second = run(&client, &journal, BatchOptions::default(), slow, &reports).await;
    assert!(second.all_succeeded(), "{second:?}");
    assert_eq!(reports.count(), 3);
    assert_eq!(sim.stats().await.jobs_created, 3);
}

/// Counts submits in flight, from the client's side.
#[derive(Default)]
struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
}

struct InFlightHook(Arc<InFlight>);

impl reka_inference::HttpHook for InFlightHook {
    fn on_request(&self, _: &mut reqwest::Request, operation: &str) {
        use std::sync::atomic::Ordering::SeqCst;
        if operation == "submit" {
            let n = self.0.now.fetch_add(1, SeqCst) + 1;
            self.0.max.fetch_max(n, SeqCst);
        }
    }

    fn on_response(&self, _: reqwest::StatusCode, _: &reqwest::header::HeaderMap, operation: &str) {
        if operation == "submit" {
            self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn submits_fill_the_concurrency_when_answers_are_slow() {
    // Each submit answered after 300 ms: a runner that pulls one item per
    // answer would never have more than one or two in flight.
    let sim =
        common::sim_with(SimConfig::new().faults("submit:latency=300ms".parse().unwrap())).await;
    let counter = Arc::new(InFlight::default());
    let client = common::builder(&sim)
        .hook(InFlightHook(counter.clone()))
        .build()
        .unwrap();
    let journal = Arc::new(MemoryJournal::default());
    let reports = Reports::default();
    let summary = run(
        &client,
        &journal,
        BatchOptions::default().submitter(SubmitterOptions::default().concurrency(4)),
        items(12),
        &reports,
    )
    .await;
    assert_eq!(summary.succeeded, 12, "{summary:?}");
    let max = counter.max.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(max, 4, "at most {max} submits were in flight at once");
}

#[tokio::test(start_paused = true)]
async fn overlapping_runs_with_derived_keys_share_their_jobs() {
    // Two machines, each with its own journal, both given the same items
    // with keys derived from them: one job per item at the service.
    let sim = common::sim().await;
    let client = common::client(&sim);
    let keyed = || -> Vec<BatchItem> {
        items(10)
            .into_iter()
            .map(|i| {
                let key = format!("catalog-7:{}", i.key());
                i.with_idempotency_key(key).unwrap()
            })
            .collect()
    };
    let (a, b) = (Reports::default(), Reports::default());
    let (ja, jb) = (
        Arc::new(MemoryJournal::default()),
        Arc::new(MemoryJournal::default()),
    );
    let (first, second) = tokio::join!(
        run(&client, &ja, BatchOptions::default(), keyed(), &a),
        run(&client, &jb, BatchOptions::default(), keyed(), &b),
    );
    assert_eq!((first.succeeded, second.succeeded), (10, 10));
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, 10);
    assert_eq!(stats.idempotent_replays, 10);
    for key in a.keys() {
        assert_eq!(
            a.get(&key)[0].request_id,
            b.get(&key)[0].request_id,
            "{key}"
        );
    }
}
