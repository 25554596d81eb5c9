//! `GET /v2/inference/requests`: pagination, ordering, filters, bounds, expand.

use std::collections::HashSet;

use reka_inference_sim::SimConfig;
use serde_json::{Value, json};

use crate::common::{Env, input_for};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["request_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_walks_250_jobs_newest_first() {
    // Huge time scale: everything stays queued or running; order is by creation.
    let env = Env::new(SimConfig::new().time_scale(1000.0)).await;
    let endpoints = [
        "nano-banana/text-to-image",
        "sam3/image-to-bbox",
        "veo-3.1/image-to-video",
    ];
    let mut submitted = Vec::new();
    for i in 0..250 {
        let ep = endpoints[i % 3];
        submitted.push(env.submit(ep, input_for(ep, &format!("p{i}"))).await);
    }
    let mut seen = Vec::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        let page = env
            .get(&format!("/v2/inference/requests?limit=100&offset={offset}"))
            .await
            .json;
        pages += 1;
        seen.extend(ids(&page));
        match page["next_offset"].as_u64() {
            Some(next) => {
                assert_eq!(page["has_more"], true);
                offset = next as usize;
            }
            None => {
                assert_eq!(page["has_more"], false);
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 250, "every job seen once");
    submitted.reverse();
    assert_eq!(seen, submitted, "newest first, ties by submission order");

    let default_page = env.get("/v2/inference/requests").await.json;
    assert_eq!(default_page["items"].as_array().unwrap().len(), 25);
    assert_eq!(default_page["next_offset"], 25);
    let past_end = env.get("/v2/inference/requests?offset=1000").await.json;
    assert_eq!(
        (past_end["items"].clone(), past_end["has_more"].clone()),
        (json!([]), json!(false))
    );
    assert!(past_end["next_offset"].is_null());
    // An exactly full last page has no next page.
    let last = env
        .get("/v2/inference/requests?limit=50&offset=200")
        .await
        .json;
    assert_eq!(ids(&last).len(), 50);
    assert!(last["next_offset"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_and_bound() {
    let env = Env::new(SimConfig::new().time_scale(1000.0)).await;
    let mut by_endpoint: Vec<(String, String)> = Vec::new();
    for (i, ep) in [
        "nano-banana/text-to-image",
        "nano-banana/edit",
        "veo-3.1/text-to-video",
        "veo-3.1/image-to-video",
    ]
    .iter()
    .cycle()
    .take(24)
    .enumerate()
    {
        by_endpoint.push((
            ep.to_string(),
            env.submit(ep, input_for(ep, &format!("p{i}"))).await,
        ));
        if i % 6 == 5 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    let cancelled = by_endpoint[3].1.clone();
    env.post(
        &format!("/v2/inference/requests/{cancelled}/cancel"),
        json!({}),
    )
    .await;

    let list = async |q: &str| {
        env.get(&format!("/v2/inference/requests?limit=100&{q}"))
            .await
            .json
    };
    let all = list("").await;
    let items = all["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 24);
    for it in &items {
        for f in [
            "request_id",
            "endpoint_id",
            "model_id",
            "capability",
            "status",
            "created_at",
            "updated_at",
        ] {
            assert!(it[f].is_string(), "{f} in {it}");
        }
        assert!(it.get("completed_at").is_some());
        assert!(it.get("input").is_none(), "payloads only with expand");
    }
    let expect = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        items
            .iter()
            .filter(|i| pred(i))
            .map(|i| i["request_id"].as_str().unwrap().to_string())
            .collect()
    };

    let got = ids(&list("endpoint_id=veo-3.1/text-to-video").await);
    assert_eq!(got.len(), 6);
    assert_eq!(
        got,
        expect(&|i| i["endpoint_id"] == "veo-3.1/text-to-video")
    );
    let got = ids(&list("capability=edit").await);
    assert_eq!(got, expect(&|i| i["capability"] == "edit"));
    assert_eq!(got.len(), 6);
    let got = ids(&list("model_id=veo-3.1").await);
    assert_eq!(got, expect(&|i| i["model_id"] == "veo-3.1"));
    assert_eq!(got.len(), 12);
    assert_eq!(
        ids(&list("status=CANCELLED").await),
        vec![cancelled.clone()]
    );
    assert_eq!(
        ids(&list("status=CANCELED").await),
        vec![cancelled.clone()],
        "accepted spelling"
    );
    assert_eq!(
        ids(&list("model_id=veo-3.1&capability=image-to-video&status=CANCELLED").await),
        vec![cancelled]
    );
    assert!(
        ids(&list("endpoint_id=veo-3.1").await).is_empty(),
        "endpoint_id is exact"
    );

    // Bounds on created_at: start inclusive, end exclusive.
    let pivot = items[items.len() / 2]["created_at"]
        .as_str()
        .unwrap()
        .to_string();
    let enc = |s: &str| s.replace('+', "%2B");
    let newer = ids(&list(&format!("start={}", enc(&pivot))).await);
    assert_eq!(
        newer,
        expect(&|i| i["created_at"].as_str().unwrap() >= pivot.as_str())
    );
    assert!(
        newer.contains(
            &items[items.len() / 2]["request_id"]
                .as_str()
                .unwrap()
                .to_string()
        )
    );
    let older = ids(&list(&format!("end={}", enc(&pivot))).await);
    assert_eq!(
        older,
        expect(&|i| i["created_at"].as_str().unwrap() < pivot.as_str())
    );
    assert_eq!(newer.len() + older.len(), 24);
    let none = ids(&list(&format!("start={0}&end={0}", enc(&pivot))).await);
    assert!(none.is_empty());
    // Offsets as +00:00 are the same instant.
    let offset_form = pivot.replace('Z', "+00:00");
    assert_eq!(
        ids(&list(&format!("start={}", enc(&offset_form))).await),
        newer
    );
    assert_eq!(
        ids(&list("start=2000-01-01T00:00:00Z&end=2999-01-01T00:00:00Z").await).len(),
        24
    );
    assert!(ids(&list("end=2000-01-01T00:00:00Z").await).is_empty());

    // expand=payloads adds input, output, error, metrics.
    let expanded = list("expand=payloads&limit=3").await;
    for it in expanded["items"].as_array().unwrap() {
        for f in ["input", "output", "error", "metrics"] {
            assert!(it.get(f).is_some(), "{f} in {it}");
        }
        assert!(it["input"]["prompt"].is_string());
    }
}
