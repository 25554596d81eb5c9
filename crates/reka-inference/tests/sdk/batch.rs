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
    // The journal keeps each output, so a report can be made again (a
    // results file rebuilt, files that went missing saved again).
    assert!(
        journal
            .load()
            .await
            .unwrap()
            .iter()
            .all(|e| e.state == EntryState::Reported && e.output.is_some())
    );
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
    // Items not pulled are counted from the stream's size hint: the
    // counts add up to the 40 items.
    assert_eq!(first.total(), 40, "{first:?}");
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
                    assumed_usd,
                    committed_usd,
                } => {
                    seen_budget = true;
                    assert_eq!(assumed_usd, 0.0, "every job was priced");
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
    // The 15 items the budget left were never pulled, and are counted.
    assert_eq!(summary.unsubmitted, 15, "{summary:?}");
    assert_eq!(summary.total(), 20);
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

/// The README's bulk example, against a service that reports no price at
/// all (issue 21): refused before any submit, then with an estimate every
/// item runs and the summary adds up.
#[tokio::test]
async fn a_budget_without_any_price_is_refused_before_the_first_submit() {
    let sim = common::sim_with(SimConfig::new().prices(false)).await;
    let client = common::client(&sim);
    let options = || {
        BatchOptions::default()
            .submitter(SubmitterOptions::default().concurrency(8))
            .budget_usd(20.0)
    };
    let journal = Arc::new(MemoryJournal::default());
    let refused = client
        .batch(journal.clone())
        .options(options())
        .run(futures::stream::iter(items(100)), |_| Ok(()))
        .await
        .unwrap_err();
    // Before: Ok with 1 succeeded, unsubmitted 0 and stopped Budget.
    match &refused {
        reka_inference::Error::PriceUnknown { endpoint, .. } => assert_eq!(endpoint, IMAGE),
        other => panic!("{other:?}"),
    }
    let text = refused.to_string();
    assert!(text.contains("estimated_price_usd"), "{text}");
    assert!(text.contains("--estimate-usd"), "{text}");
    assert_eq!(sim.stats().await.count("submit", "202"), 0);
    assert!(journal.load().await.unwrap().is_empty());

    // With an estimate, all 100 run: 100 x $0.04 = $4 of a $20 budget.
    let reports = Reports::default();
    let summary = run(
        &client,
        &journal,
        options().estimated_price_usd(0.04),
        items(100),
        &reports,
    )
    .await;
    assert!(summary.all_succeeded(), "{summary:?}");
    assert_eq!(summary.succeeded, 100);
    assert_eq!(summary.total(), 100);
    assert!(!summary.priced);
    assert_eq!(summary.spent_usd, 0.0);
    assert!((summary.assumed_usd - 4.0).abs() < 1e-6, "{summary:?}");
    assert_eq!(reports.count(), 100);

    // A budget for 12 of them at that estimate: 12 run (the unpriced ones
    // count their estimate as spent), the other 8 are counted unsubmitted.
    let journal = Arc::new(MemoryJournal::default());
    let summary = run(
        &client,
        &journal,
        options().budget_usd(0.5).estimated_price_usd(0.04),
        items(20),
        &Reports::default(),
    )
    .await;
    assert_eq!(summary.stopped, Some(StopReason::Budget), "{summary:?}");
    assert_eq!(summary.succeeded, 12, "{summary:?}");
    assert_eq!(summary.unsubmitted, 8, "{summary:?}");
    assert_eq!(summary.total(), 20);
    assert!(summary.assumed_usd <= 0.5 + 1e-9);
}

/// Issue 27 case 6: an item edited after its job ran was silently reported
/// as succeeded with its old job.
#[tokio::test]
async fn an_item_that_changed_after_its_job_ran_is_reported_and_rerun_only_when_asked() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let journal = Arc::new(MemoryJournal::default());
    let first = run(
        &client,
        &journal,
        BatchOptions::default(),
        items(3),
        &Reports::default(),
    )
    .await;
    assert_eq!(first.succeeded, 3);
    let old_job = journal
        .load()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.key == "item-1")
        .unwrap()
        .request_id;
    let mut edited = items(3);
    edited[1] = BatchItem::new("item-1", IMAGE, json!({"prompt": "p1, edited"})).unwrap();

    let changed = Arc::new(Mutex::new(Vec::new()));
    let seen = changed.clone();
    let summary = client
        .batch(journal.clone())
        .run(futures::stream::iter(edited.clone()), move |event| {
            if let BatchEvent::Changed { key, reason, rerun } = event {
                seen.lock().unwrap().push((key.to_owned(), reason, rerun));
            }
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(summary.succeeded, 2, "{summary:?}");
    assert_eq!(summary.changed, 1, "{summary:?}");
    assert!(!summary.all_succeeded());
    assert_eq!(summary.total(), 3);
    let changed = changed.lock().unwrap().clone();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, "item-1");
    assert!(
        changed[0].1.contains("changed since its job ran"),
        "{changed:?}"
    );
    assert!(!changed[0].2);
    assert_eq!(sim.stats().await.jobs_created, 3);

    // Under the flag it runs again, as a new job, reported once.
    let reports = Reports::default();
    let summary = run(
        &client,
        &journal,
        BatchOptions::default().rerun_changed(true),
        edited.clone(),
        &reports,
    )
    .await;
    assert!(summary.all_succeeded(), "{summary:?}");
    assert_eq!(reports.keys(), ["item-1"]);
    let new = &reports.get("item-1")[0];
    assert_ne!(new.request_id, old_job);
    assert_eq!(sim.stats().await.jobs_created, 4);
    // And from then on the edited input is the item: nothing more runs.
    let summary = run(
        &client,
        &journal,
        BatchOptions::default(),
        edited,
        &Reports::default(),
    )
    .await;
    assert!(summary.all_succeeded(), "{summary:?}");
    assert_eq!(sim.stats().await.jobs_created, 4);
}

/// Issue 27 case 8: files deleted after a run were not saved again.
#[tokio::test]
async fn files_gone_from_the_download_directory_are_saved_again_and_reported_again() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let out = tempfile::tempdir().unwrap();
    let journal = Arc::new(MemoryJournal::default());
    let options = || BatchOptions::default().download_dir(out.path());
    run(&client, &journal, options(), items(4), &Reports::default()).await;
    std::fs::remove_dir_all(out.path().join("item-2")).unwrap();
    let missing = Arc::new(Mutex::new(Vec::new()));
    let reports = Reports::default();
    let (seen, done) = (missing.clone(), reports.clone());
    let summary = client
        .batch(journal.clone())
        .options(options())
        .run(futures::stream::iter(items(4)), move |event| {
            match event {
                BatchEvent::FilesMissing { key, missing } => {
                    seen.lock().unwrap().push((key.to_owned(), missing));
                }
                BatchEvent::Done(entry) => {
                    done.0
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
    assert!(summary.all_succeeded(), "{summary:?}");
    let missing = missing.lock().unwrap().clone();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].0, "item-2");
    assert_eq!(reports.keys(), ["item-2"]);
    for f in &reports.get("item-2")[0].files {
        assert!(std::fs::metadata(f).unwrap().len() > 0, "{f}");
    }
    assert_eq!(sim.stats().await.jobs_created, 4, "no job made again");
}

/// A PNG of `n` bytes the simulator takes as an image: a real one, padded.
fn png_file(dir: &std::path::Path, name: &str, n: usize, seed: u8) -> std::path::PathBuf {
    let mut bytes = reka_inference_sim::samples::png(3, 2);
    bytes.extend((0..n.saturating_sub(bytes.len())).map(|i| (i as u8) ^ seed));
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    path
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Issue 22: an item's local file is sent from its path; the journal keeps
/// its path and hash, never its bytes; a file changed before the resume of
/// an unsent submit is reported by name.
#[tokio::test]
async fn local_files_are_read_when_sent_and_journalled_by_hash() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let photo = png_file(dir.path(), "photo.png", 50_000, 1);
    let digest = reka_inference::batch::FileDigest::of_path(&photo, 1 << 20)
        .await
        .unwrap();
    assert_eq!(digest.sha256(), sha256_hex(&std::fs::read(&photo).unwrap()));
    let item = |key: &str, d: &reka_inference::batch::FileDigest| {
        BatchItem::new(
            key,
            "kling-v3-pro/image-to-video",
            json!({"prompt": "slow zoom", "image_url": "@photo.png"}),
        )
        .unwrap()
        .with_file("/image_url", d)
        .unwrap()
    };
    let journal = Arc::new(MemoryJournal::default());
    let reports = Reports::default();
    let summary = run(
        &client,
        &journal,
        BatchOptions::default(),
        vec![item("clip", &digest)],
        &reports,
    )
    .await;
    assert!(summary.all_succeeded(), "{summary:?}");
    let done = &reports.get("clip")[0];
    let arrived = &done.output.as_ref().unwrap()["input_image"];
    assert_eq!(arrived["sha256"], digest.sha256(), "{arrived}");
    assert_eq!(arrived["bytes"], 50_000);
    assert_eq!(arrived["media_type"], "image/png");
    let entry = journal.load().await.unwrap().remove(0);
    assert_eq!(entry.input_files.len(), 1);
    assert_eq!(entry.input_files[0].sha256, digest.sha256());
    assert_eq!(entry.input_files[0].path, photo);
    let journalled = serde_json::to_string(&entry).unwrap();
    assert!(!journalled.contains("base64"), "{journalled}");
    assert!(journalled.len() < 2_000, "{} bytes", journalled.len());

    // An earlier run journalled a submit of "retake" with the photo's
    // hash, then died; the photo changed before this run.
    let earlier = item("retake", &digest);
    let mut pending = JournalEntry::new(
        "retake",
        earlier.endpoint().as_str(),
        earlier.fingerprint(),
        "k-retake",
    );
    pending.input_files = earlier.files().to_vec();
    journal.save(&pending).await.unwrap();
    png_file(dir.path(), "photo.png", 50_000, 2);
    let now = reka_inference::batch::FileDigest::of_path(&photo, 1 << 20)
        .await
        .unwrap();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let created = sim.stats().await.jobs_created;
    let summary = client
        .batch(journal.clone())
        .run(
            futures::stream::iter(vec![item("clip", &digest), item("retake", &now)]),
            move |e| {
                if let BatchEvent::Changed { key, reason, .. } = e {
                    seen.lock().unwrap().push(format!("{key}: {reason}"));
                }
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(summary.changed, 1, "{summary:?}");
    let reasons = reasons.lock().unwrap().clone();
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].starts_with("retake: its file"), "{reasons:?}");
    assert!(reasons[0].contains("photo.png"), "{reasons:?}");
    assert_eq!(sim.stats().await.jobs_created, created);
}
