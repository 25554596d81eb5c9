//! A job set follows its jobs through the list endpoint.

use crate::common;
use futures::StreamExt;
use reka_inference::Endpoint;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn a_job_set_waits_through_the_list_endpoint() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let mut set = client.job_set();
    let mut ids = Vec::new();
    for i in 0..60 {
        let job = client
            .submit(
                Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
                json!({"prompt": format!("p{i}")}),
            )
            .await
            .unwrap();
        ids.push(job.id().to_owned());
        set.push(job);
    }
    let results = set.wait_all().await;
    assert_eq!(results.len(), 60);
    for (i, r) in results.iter().enumerate() {
        let done = r.as_ref().unwrap_or_else(|e| panic!("job {i}: {e}"));
        assert_eq!(done.request_id, ids[i], "results in push order");
        assert!(!done.media().is_empty());
    }
    let stats = sim.stats().await;
    let statuses = stats.count("get_status", "200");
    let records = stats.count("get_result", "200");
    let lists = stats.count("list_requests", "200");
    assert!(lists > 0, "the list endpoint was used: {stats:?}");
    // Status looks are answered by list pages; each job's record is
    // fetched when a page shows it finished (the last few jobs, under the
    // list threshold, are looked at on their own).
    assert_eq!(statuses, 0, "{stats:?}");
    assert!((60..75).contains(&records), "{stats:?}");
    assert!(lists + records < 2 * 60, "{stats:?}");
}

/// A list page that takes longer than the gaps between the other jobs'
/// looks (10,000 jobs, a busy server): while the last chunk of a sweep is
/// read, the jobs of the first are due again. The record of a job a sweep
/// saw finish is fetched in the same round all the same, not after the
/// last job ends (before 2026-12-06 sweeps came first and read their
/// chunks one after another, and at 10,000 jobs the first outcomes waited
/// for nearly the whole set).
#[tokio::test(start_paused = true)]
async fn slow_sweeps_do_not_hold_back_the_records_of_finished_jobs() {
    use chrono::Utc;
    use common::hostile::{Hostile, Reply, record};
    use reka_inference::JobSetOptions;
    use std::time::Duration;

    // 150 jobs: two chunks of the list. Each created a millisecond after
    // the one before; the first has finished, the others run on.
    let created = Utc::now();
    let jobs = jobs_created_from(created, 150);
    let listed = jobs.clone();
    let server = Hostile::start(move |_, path, query, _| {
        if !path.ends_with("/requests") {
            return if path.ends_with("/req_0") {
                Reply::Json(200, record("req_0", "COMPLETED", Some(json!({"ok": 1}))))
            } else {
                Reply::Json(404, json!({"detail": "not fetched in this test"}))
            };
        }
        let page = list_page(&listed, query, |id| {
            if id == "req_0" {
                "COMPLETED"
            } else {
                "IN_PROGRESS"
            }
        });
        Reply::Delayed(Duration::from_secs(3), Box::new(Reply::Json(200, page)))
    })
    .await;
    let set = set_of(&server.url, &jobs, JobSetOptions::default());
    let mut outcomes = std::pin::pin!(set.into_stream());
    let first = tokio::time::timeout(Duration::from_secs(120), outcomes.next())
        .await
        .expect("the finished job's outcome came while sweeps went on")
        .expect("an outcome");
    assert_eq!(first.job.id(), "req_0");
    assert!(first.result.is_ok(), "{:?}", first.result);
    assert_eq!(server.count("/req_0"), 1, "one record fetch");
    // Placing (two pages) and one sweep of the two chunks, give or take one.
    let lists = server.count("/requests");
    assert!(lists <= 6, "{lists} list reads before the first outcome");
}

/// Jobs `req_0`, `req_1`, ... created a millisecond apart from `created`.
fn jobs_created_from(
    created: chrono::DateTime<chrono::Utc>,
    n: i64,
) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    (0..n)
        .map(|i| {
            (
                format!("req_{i}"),
                created + chrono::TimeDelta::milliseconds(i),
            )
        })
        .collect()
}

/// A job set following `jobs` (attached with their submit times) through
/// the stand-in at `url`.
fn set_of(
    url: &str,
    jobs: &[(String, chrono::DateTime<chrono::Utc>)],
    options: reka_inference::JobSetOptions,
) -> reka_inference::JobSet {
    let client = reka_inference::Client::builder()
        .api_key("sk-hostile-test")
        .base_url(url)
        .poll_policy(reka_inference::PollPolicy::default())
        .build()
        .unwrap();
    let mut set = client.job_set().with_options(options);
    for (id, at) in jobs {
        set.push(
            client
                .job_for("m/text-to-image", id)
                .unwrap()
                .with_submit_time(*at),
        );
    }
    set
}

/// The value of `name` in a URL's query string, decoded.
fn query_arg(query: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(&format!("http://list/?{query}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// One page of `GET /v2/inference/requests` over `jobs` as a server
/// answers it: newest first, `start`/`end` on `created_at`, `offset` and
/// `limit`, each job in the status `status_of` gives it.
fn list_page(
    jobs: &[(String, chrono::DateTime<chrono::Utc>)],
    query: &str,
    status_of: impl Fn(&str) -> &'static str,
) -> serde_json::Value {
    use chrono::{DateTime, SecondsFormat};
    let arg = |name: &str| query_arg(query, name);
    let time = |name: &str| arg(name).map(|v| DateTime::parse_from_rfc3339(&v).unwrap());
    let (start, end) = (time("start"), time("end"));
    let offset: usize = arg("offset").map_or(0, |v| v.parse().unwrap());
    let limit: usize = arg("limit").map_or(100, |v| v.parse().unwrap());
    let matching: Vec<serde_json::Value> = jobs
        .iter()
        .rev()
        .filter(|(_, at)| start.is_none_or(|s| *at >= s) && end.is_none_or(|e| *at < e))
        .map(|(id, at)| {
            let at = at.to_rfc3339_opts(SecondsFormat::Millis, true);
            let status = status_of(id);
            json!({
                "request_id": id,
                "status": status,
                "created_at": at,
                "completed_at": (status == "COMPLETED").then(|| at.clone()),
            })
        })
        .collect();
    let more = matching.len() > offset + limit;
    let items: Vec<_> = matching.into_iter().skip(offset).take(limit).collect();
    json!({
        "items": items,
        "next_offset": more.then_some(offset + limit),
        "has_more": more,
    })
}

/// Chunks are read several at a time, but a list that starts failing is
/// not read further in that sweep: 2,000 jobs are 20 chunks, and a 429
/// must not be answered by 19 more reads. At most `max_concurrency` reads
/// a failing sweep, and five failing sweeps before the set polls jobs on
/// their own.
#[tokio::test(start_paused = true)]
async fn a_sweep_stops_reading_chunks_once_the_list_fails() {
    use common::hostile::{Hostile, Reply, record};
    use reka_inference::JobSetOptions;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    let created = chrono::Utc::now();
    let jobs = jobs_created_from(created, 2000);
    let listed = jobs.clone();
    let chunk_reads = Arc::new(AtomicUsize::new(0));
    let counted = chunk_reads.clone();
    let server = Hostile::start(move |_, path, query, _| {
        if !path.ends_with("/requests") {
            let id = path.rsplit('/').next().unwrap_or("");
            return Reply::Json(200, record(id, "IN_PROGRESS", None));
        }
        // The placing read starts a minute before the first submit; a
        // chunk's read starts at one of the jobs' own times.
        if query_arg(query, "start")
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok())
            .is_some_and(|s| s >= created)
        {
            counted.fetch_add(1, Ordering::SeqCst);
            return Reply::Raw(429, vec![("retry-after", "1".into())], "{}".into());
        }
        Reply::Json(200, list_page(&listed, query, |_| "IN_PROGRESS"))
    })
    .await;
    let concurrency = 2;
    let set = set_of(
        &server.url,
        &jobs,
        JobSetOptions::default()
            .max_concurrency(concurrency)
            .timeout(Duration::from_secs(4)),
    );
    let results = set.wait_all().await;
    assert_eq!(results.len(), 2000);
    let reads = chunk_reads.load(Ordering::SeqCst);
    assert!(reads >= 1, "the chunks were read");
    assert!(
        reads <= concurrency * 5,
        "{reads} chunk reads answered 429 (20 chunks a sweep)"
    );
}
