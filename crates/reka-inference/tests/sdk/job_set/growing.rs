//! Job sets that take new jobs while they are read: pushes between reads,
//! senders from other tasks, jobs attached with their submit time, and the
//! list requests a set that grows costs.

use crate::common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use reka_inference::{HttpHook, Job, JobSetOptions};
use serde_json::json;

const IMAGE: &str = "nano-banana/text-to-image";

#[tokio::test(start_paused = true)]
async fn jobs_pushed_between_reads_join_and_an_ended_set_goes_on() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let mut outcomes = client.job_set().into_stream();
    // Nothing in it and no sender: it ends at once.
    assert!(outcomes.next().await.is_none());
    let first = client.submit(IMAGE, json!({"prompt": "a"})).await.unwrap();
    outcomes.push(first.clone());
    let done = outcomes.next().await.expect("the pushed job finishes");
    assert_eq!(done.index, 0);
    assert_eq!(done.job.id(), first.id());
    assert!(done.result.is_ok(), "{:?}", done.result);
    assert!(outcomes.next().await.is_none());
    // It goes on when more join, with the next indices.
    let more: Vec<Job> = futures::future::try_join_all(
        ["b", "c"].map(|p| client.submit(IMAGE, json!({"prompt": p}))),
    )
    .await
    .unwrap();
    outcomes.extend(more.clone());
    let mut seen = Vec::new();
    while let Some(o) = outcomes.next().await {
        assert!(o.result.is_ok(), "{:?}", o.result);
        seen.push((o.index, o.job.id().to_owned()));
    }
    seen.sort();
    let expected: Vec<(usize, String)> = more
        .iter()
        .enumerate()
        .map(|(i, j)| (i + 1, j.id().to_owned()))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test(start_paused = true)]
async fn a_sender_keeps_the_set_open_until_it_is_dropped() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let mut outcomes = client.job_set().into_stream();
    let sender = outcomes.sender();
    let producer = tokio::spawn(async move {
        let mut ids = Vec::new();
        for i in 0..6 {
            // Spaced out, so that the set is empty (and must wait) between
            // some of them.
            tokio::time::sleep(Duration::from_millis(40 * (i % 3))).await;
            let job = sender
                .submit(IMAGE, json!({"prompt": format!("p{i}")}))
                .await
                .unwrap();
            ids.push(job.id().to_owned());
        }
        ids
    });
    let mut finished = HashSet::new();
    while let Some(o) = outcomes.next().await {
        assert!(o.result.is_ok(), "{:?}", o.result);
        assert!(
            finished.insert(o.job.id().to_owned()),
            "twice: {}",
            o.job.id()
        );
    }
    let submitted: HashSet<String> = producer.await.unwrap().into_iter().collect();
    assert_eq!(finished, submitted);
    assert_eq!(outcomes.counts().pending, 0);
}

#[tokio::test(start_paused = true)]
async fn a_growing_set_places_new_jobs_without_reading_the_history() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    // A history of 250 finished jobs, all within the last minute.
    let mut old = client.job_set();
    for i in 0..250 {
        old.push(
            client
                .submit(IMAGE, json!({"prompt": format!("old {i}")}))
                .await
                .unwrap(),
        );
    }
    assert!(old.wait_all().await.iter().all(|r| r.is_ok()));

    let lists = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = common::builder(&sim)
        .hook(ListRecorder(lists.clone()))
        .build()
        .unwrap();
    let mut outcomes = client.job_set().into_stream();
    let sender = outcomes.sender();
    let producer = tokio::spawn(async move {
        for i in 0..40 {
            sender
                .submit(IMAGE, json!({"prompt": format!("new {i}")}))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut n = 0;
    while let Some(o) = outcomes.next().await {
        assert!(o.result.is_ok(), "{:?}", o.result);
        n += 1;
    }
    producer.await.unwrap();
    assert_eq!(n, 40);
    let lists = lists.lock().unwrap().clone();
    assert!(!lists.is_empty(), "the set never used the list");
    // Placing stops at the page that shows every new job: the newest
    // page. No read went on into the 250 older jobs.
    let deep: Vec<&String> = lists
        .iter()
        .filter(|q| q.contains("offset=") && !q.contains("offset=0"))
        .collect();
    assert!(deep.is_empty(), "list pages past the first: {deep:?}");
}

#[tokio::test(start_paused = true)]
async fn jobs_attached_with_their_submit_time_are_followed_by_sweeps() {
    let sim = common::sim().await;
    let submitter = common::client(&sim);
    let mut ids = Vec::new();
    for i in 0..12 {
        let job = submitter
            .submit(IMAGE, json!({"prompt": format!("p{i}")}))
            .await
            .unwrap();
        ids.push((job.id().to_owned(), job.submit_time().unwrap()));
    }
    // Another process (a restart) attaches them with what its journal kept.
    let client = common::client(&sim);
    let before = sim.stats().await;
    // Sweeps to the last job (by default the last few are polled alone).
    let mut set = client
        .job_set()
        .with_options(JobSetOptions::default().list_threshold(1));
    for (id, at) in &ids {
        set.push(client.job_for(IMAGE, id).unwrap().with_submit_time(*at));
    }
    let results = set.wait_all().await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let after = sim.stats().await;
    let delta = |op: &str| after.count(op, "200") - before.count(op, "200");
    assert!(delta("list_requests") >= 1);
    assert_eq!(delta("get_status"), 0);
    // One record fetch per job: the sweeps answered every status look.
    assert_eq!(delta("get_result"), ids.len() as u64);
}

#[tokio::test(start_paused = true)]
async fn a_job_that_joins_late_gets_its_whole_time() {
    // Each job is waited for up to the client's wait timeout (3 s) from
    // when it joins: a deadline counted from the set's start would have
    // passed before the late job even joined.
    let sim = common::sim().await;
    let client = common::builder(&sim)
        .wait_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let mut outcomes = client.job_set().into_stream();
    outcomes.push(
        client
            .submit(IMAGE, json!({"prompt": "early"}))
            .await
            .unwrap(),
    );
    let sender = outcomes.sender();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        sender
            .submit(IMAGE, json!({"prompt": "late"}))
            .await
            .unwrap()
    });
    let mut results = Vec::new();
    while let Some(o) = outcomes.next().await {
        results.push((o.index, o.result));
    }
    late.await.unwrap();
    assert_eq!(results.len(), 2);
    for (index, result) in results {
        assert!(result.is_ok(), "job {index}: {result:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn counts_show_pending_jobs() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let mut set = client.job_set();
    for i in 0..5 {
        set.push(
            client
                .submit(IMAGE, json!({"prompt": format!("p{i}")}))
                .await
                .unwrap(),
        );
    }
    let mut outcomes = set.into_stream();
    assert_eq!(outcomes.counts().pending, 5);
    let mut left = 5;
    while let Some(o) = outcomes.next().await {
        assert!(o.result.is_ok());
        left -= 1;
        let c = outcomes.counts();
        assert!(c.pending >= left, "{c:?} with {left} not read");
        assert!(c.queued + c.running <= c.pending, "{c:?}");
    }
    assert_eq!(outcomes.counts().pending, 0);
}

struct ListRecorder(Arc<Mutex<Vec<String>>>);

impl HttpHook for ListRecorder {
    fn on_request(&self, request: &mut reqwest::Request, operation: &str) {
        if operation == "list_requests" {
            let query = request.url().query().unwrap_or("").to_owned();
            self.0.lock().unwrap().push(query);
        }
    }
}
