//! A job set follows its jobs through the list endpoint.

use crate::common;
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
