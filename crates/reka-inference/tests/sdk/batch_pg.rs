//! The shared batch journal on a throwaway PostgreSQL server
//! (`common::pg`): migrations that race, claims that never overlap, a
//! lapsed lease taken over with the same idempotency key, a late write
//! fenced off, and one budget across workers. On the wall clock: the
//! leases are the database's time.

use crate::common;
use crate::common::pg::TestPostgres;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reka_inference::Error;
use reka_inference::batch::{
    BatchEvent, BatchItem, BatchOptions, Claim, EntryState, Journal, JournalEntry, PostgresJournal,
    PostgresOptions, SubmitterOptions,
};
use reka_inference_sim::SimConfig;
use serde_json::json;

const IMAGE: &str = "nano-banana/text-to-image";

fn items(n: usize) -> Vec<BatchItem> {
    (0..n)
        .map(|i| {
            BatchItem::new(
                format!("line-{i}"),
                IMAGE,
                json!({"prompt": format!("p{i}")}),
            )
            .unwrap()
        })
        .collect()
}

fn options(lease_ms: u64) -> PostgresOptions {
    PostgresOptions::default()
        .lease(Duration::from_millis(lease_ms))
        .retry_for(Duration::from_secs(10))
}

async fn journal(url: &str, batch: &str, lease_ms: u64) -> PostgresJournal {
    PostgresJournal::connect(url, batch, options(lease_ms))
        .await
        .expect("the journal connects")
}

/// Claims until the journal has nothing more for this worker; the keys.
async fn claim_all(journal: &PostgresJournal) -> Vec<String> {
    let mut keys = Vec::new();
    loop {
        match journal.claim(7).await.unwrap() {
            Claim::Lines(lines) => keys.extend(lines.into_iter().map(|l| l.item.key().to_owned())),
            _ => return keys,
        }
        // Let the other worker in between claims.
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_workers_starting_at_once_do_not_race() {
    let pg = TestPostgres::start();
    let url = pg.url();
    // Eight workers start at once on an empty database.
    let starts = (0..8).map(|_| PostgresJournal::connect(&url, "b", options(5_000)));
    for started in futures::future::join_all(starts).await {
        started.expect("every worker sets up or finds the tables");
    }
    // And again, on a migrated one.
    journal(&url, "b", 5_000).await;
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT string_agg(version::text, ',') FROM reka_batch_schema"
        ),
        "1"
    );
    // A database of a newer layout is refused, not written.
    pg.psql(
        "postgres",
        "INSERT INTO reka_batch_schema (version) VALUES (99)",
    );
    let e = PostgresJournal::connect(&url, "b", options(5_000))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("layout 99"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_claim_disjoint_lines_that_cover_the_batch() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let a = journal(&url, "b", 30_000).await;
    let b = journal(&url, "b", 30_000).await;
    // Both add the same items: the batch holds each once.
    let all = items(200);
    assert!(a.add_items(&all, 0).await.unwrap().is_empty());
    assert!(b.add_items(&all, 0).await.unwrap().is_empty());
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM reka_batch_lines"),
        "200"
    );
    // Two claims at once: each gets a full group, none of the other's.
    let (first_a, first_b) = tokio::join!(a.claim(7), b.claim(7));
    let keys = |claim: Claim| match claim {
        Claim::Lines(lines) => lines
            .into_iter()
            .map(|l| l.item.key().to_owned())
            .collect::<Vec<_>>(),
        other => panic!("a first claim found nothing: {other:?}"),
    };
    let (mut from_a, mut from_b) = (keys(first_a.unwrap()), keys(first_b.unwrap()));
    assert_eq!((from_a.len(), from_b.len()), (7, 7));
    // Then both claim until nothing is left.
    let (rest_a, rest_b) = tokio::join!(claim_all(&a), claim_all(&b));
    from_a.extend(rest_a);
    from_b.extend(rest_b);
    let set_a: HashSet<_> = from_a.iter().cloned().collect();
    let set_b: HashSet<_> = from_b.iter().cloned().collect();
    assert_eq!(set_a.len(), from_a.len(), "a claimed a line twice");
    assert_eq!(set_b.len(), from_b.len(), "b claimed a line twice");
    assert!(set_a.is_disjoint(&set_b), "a line was claimed by both");
    assert_eq!(set_a.len() + set_b.len(), 200);
    // Everything is held by a live worker: nothing more to take, but not
    // finished either.
    assert!(
        matches!(a.claim(5).await.unwrap(), Claim::Wait(_)),
        "b holds lines"
    );
    let c = journal(&url, "b", 30_000).await;
    assert!(matches!(c.claim(5).await.unwrap(), Claim::Wait(_)));
    // An item that differs from the batch's is reported, not taken.
    let changed = BatchItem::new("line-3", IMAGE, json!({"prompt": "other"})).unwrap();
    assert_eq!(
        c.add_items(&[changed], 3).await.unwrap(),
        vec!["line-3".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_after_a_takeover_is_refused_and_changes_nothing() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let a = journal(&url, "b", 30_000).await;
    a.add_items(&items(1), 0).await.unwrap();
    let Claim::Lines(lines) = a.claim(1).await.unwrap() else {
        panic!("a claims the line");
    };
    assert_eq!(lines.len(), 1);
    let entry = JournalEntry::new("line-0", IMAGE, lines[0].item.fingerprint(), "key-of-a");
    assert!(a.save_reserving(&entry, 0.0, None).await.unwrap());
    // a is cut off: its lease lapses (as the database sees it).
    pg.psql(
        "postgres",
        "UPDATE reka_batch_lines SET lease_until = now() - interval '1 second'",
    );
    let b = journal(&url, "b", 30_000).await;
    let Claim::Lines(taken) = b.claim(1).await.unwrap() else {
        panic!("b takes the lapsed line");
    };
    let mut resumed = taken[0].entry.clone().expect("b finds a's entry");
    assert_eq!(resumed.idempotency_key, "key-of-a");
    resumed.state = EntryState::Submitted;
    resumed.request_id = Some("job-of-b".into());
    b.save(&resumed).await.unwrap();
    // a comes back and writes: refused, typed, and b's state stands.
    let mut late = entry.clone();
    late.state = EntryState::Submitted;
    late.request_id = Some("job-of-a".into());
    match a.save(&late).await {
        Err(Error::LeaseLost { key }) => assert_eq!(key, "line-0"),
        other => panic!("a's late write: {other:?}"),
    }
    let entries = b.load().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].request_id.as_deref(), Some("job-of-b"));
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT attempt || ' ' || owner FROM reka_batch_lines"
        ),
        format!("2 {}", b.worker_id())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_passes_the_line_to_a_worker_that_replays_its_submit() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let sim = common::sim().await;
    let client = common::client(&sim);
    let all = items(12);
    // Worker a claims every line, saves the keys, submits three of them
    // and dies before recording any answer (its heartbeat stops with it).
    let a = journal(&url, "b", 600).await;
    a.add_items(&all, 0).await.unwrap();
    let Claim::Lines(lines) = a.claim(12).await.unwrap() else {
        panic!("a claims");
    };
    assert_eq!(lines.len(), 12);
    let mut submitted_by_a = Vec::new();
    for line in lines.iter().take(3) {
        let item = &line.item;
        submitted_by_a.push(item.key().to_owned());
        let key = format!("a-key-{}", item.key());
        let entry = JournalEntry::new(item.key(), IMAGE, item.fingerprint(), key.clone());
        assert!(a.save_reserving(&entry, 0.0, None).await.unwrap());
        client
            .submit_with(
                IMAGE,
                item.input().clone(),
                reka_inference::SubmitOptions::default().idempotency_key(key),
            )
            .await
            .unwrap();
    }
    drop(a);
    assert_eq!(sim.stats().await.jobs_created, 3);
    // Worker b runs the batch: it waits for a's lease to lapse, takes the
    // lines over, replays the three submits with a's keys and runs the
    // others.
    let b = Arc::new(journal(&url, "b", 600).await);
    let mut lost = 0;
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        client
            .batch(b.clone())
            .options(BatchOptions::default().submitter(SubmitterOptions::default().concurrency(4)))
            .run(futures::stream::iter(all), |event| {
                if let BatchEvent::LeaseLost { .. } = event {
                    lost += 1;
                }
                Ok(())
            }),
    )
    .await
    .expect("the run ends")
    .unwrap();
    assert_eq!(summary.succeeded, 12, "{summary:?}");
    assert_eq!(lost, 0);
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, 12, "one job per line: {stats:?}");
    assert_eq!(stats.idempotent_replays, 3);
    let entries = b.load().await.unwrap();
    assert_eq!(entries.len(), 12);
    assert!(
        entries
            .iter()
            .all(|e| e.state == EntryState::Reported && e.succeeded())
    );
    for key in &submitted_by_a {
        let e = entries.iter().find(|e| &e.key == key).unwrap();
        assert_eq!(e.idempotency_key, format!("a-key-{key}"));
    }
    // Every line given back at the end.
    assert_eq!(
        pg.psql("postgres", "SELECT count(owner) FROM reka_batch_lines"),
        "0"
    );
}

/// Claims lines until none is left for `j` and reserves `usd` for each
/// (all of a group at once) against `budget`: how many were granted.
async fn reserve_all(j: &PostgresJournal, usd: f64, budget: f64) -> usize {
    let mut granted = 0;
    while let Claim::Lines(lines) = j.claim(4).await.unwrap() {
        let saves = lines.iter().map(|l| {
            let e = JournalEntry::new(
                l.item.key(),
                IMAGE,
                l.item.fingerprint(),
                format!("k-{}", l.item.key()),
            );
            async move { j.save_reserving(&e, usd, Some(budget)).await.unwrap() }
        });
        granted += futures::future::join_all(saves)
            .await
            .into_iter()
            .filter(|g| *g)
            .count();
    }
    granted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_from_many_workers_at_once_never_pass_the_budget() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let workers = [
        journal(&url, "b", 30_000).await,
        journal(&url, "b", 30_000).await,
        journal(&url, "b", 30_000).await,
    ];
    let all = items(60);
    workers[0].add_items(&all, 0).await.unwrap();
    // Each worker claims its share and reserves $1 for each line at
    // once, against a $10.50 budget.
    let (x, y, z) = tokio::join!(
        reserve_all(&workers[0], 1.0, 10.5),
        reserve_all(&workers[1], 1.0, 10.5),
        reserve_all(&workers[2], 1.0, 10.5)
    );
    assert_eq!(x + y + z, 10, "{x} + {y} + {z}");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT reserved_usd || ' ' || spent_usd FROM reka_batches"
        ),
        "10 0"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM reka_batch_lines WHERE state = 'submitting'"
        ),
        "10"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_runs_share_one_budget() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let sim = common::sim_with(SimConfig::new().dialect(reka_inference_sim::Dialect::Infer)).await;
    let client = common::client(&sim);
    let price = client
        .run(IMAGE, json!({"prompt": "probe"}))
        .await
        .unwrap()
        .price_usd()
        .expect("infer reports prices");
    let budget = price * 7.5;
    let run = |journal: PostgresJournal| {
        let client = client.clone();
        async move {
            client
                .batch(journal)
                .options(
                    BatchOptions::default()
                        .submitter(SubmitterOptions::default().concurrency(3))
                        .budget_usd(budget),
                )
                .run(futures::stream::iter(items(30)), |_| Ok(()))
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(
        run(journal(&url, "b", 30_000).await),
        run(journal(&url, "b", 30_000).await)
    );
    assert_eq!(a.succeeded + b.succeeded, 7, "{a:?} {b:?}");
    // One probe job above, then the batch's seven.
    assert_eq!(sim.stats().await.jobs_created, 8);
    let spent: f64 = pg
        .psql("postgres", "SELECT spent_usd FROM reka_batches")
        .parse()
        .unwrap();
    assert!((spent - price * 7.0).abs() < 1e-9, "{spent}");
    assert!(spent <= budget);
    assert_eq!(
        pg.psql("postgres", "SELECT reserved_usd FROM reka_batches"),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_of_the_server_is_not_retried_as_a_connection_failure() {
    let pg = TestPostgres::start();
    // Tries for ten minutes when the connection fails; a database that
    // does not exist is the server's answer, given at once.
    let options = PostgresOptions::default().retry_for(Duration::from_secs(600));
    let url = pg.url_of("no_such_db");
    let connect = PostgresJournal::connect(&url, "b", options);
    let e = tokio::time::timeout(Duration::from_secs(120), connect)
        .await
        .expect("refused without retrying")
        .unwrap_err();
    assert!(matches!(e, Error::Journal(_)), "{e:?}");
    assert!(e.to_string().contains("no_such_db"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_reads_by_pages_each_entry_once() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let j = journal(&url, "b", 30_000).await;
    let other = journal(&url, "other", 30_000).await;
    j.add_items(&items(23), 0).await.unwrap();
    other.add_items(&items(5), 0).await.unwrap();
    let claimed = claim_all(&j).await;
    assert_eq!(claimed.len(), 23);
    // Lines no worker started have no entry, and are not read.
    let mut saved = HashSet::new();
    for key in claimed.iter().filter(|k| !k.ends_with('7')) {
        j.save(&JournalEntry::new(key.as_str(), IMAGE, "fp", key.as_str()))
            .await
            .unwrap();
        saved.insert(key.clone());
    }
    for key in claim_all(&other).await {
        other
            .save(&JournalEntry::new(key.as_str(), IMAGE, "fp", "of-other"))
            .await
            .unwrap();
    }
    for limit in [1, 4, 20, 21, 100] {
        let mut read = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = j.load_page(after.as_deref(), limit).await.unwrap();
            assert!(page.len() <= limit);
            let last_page = page.len() < limit;
            read.extend(page.into_iter().map(|e| e.key));
            if last_page {
                break;
            }
            after = read.last().cloned();
        }
        let once: HashSet<String> = read.iter().cloned().collect();
        assert_eq!(once.len(), read.len(), "pages of {limit}: a key twice");
        assert_eq!(once, saved, "pages of {limit}");
    }
}
