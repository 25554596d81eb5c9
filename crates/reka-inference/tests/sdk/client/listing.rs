//! Listing jobs page by page, and the model list.

use crate::common;
use futures::TryStreamExt;
use reka_inference::{Endpoint, ListFilter};
use serde_json::json;
use std::collections::HashSet;

#[tokio::test(start_paused = true)]
async fn list_walks_every_page_newest_first_and_filters() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let mut submitted = Vec::new();
    for i in 0..130 {
        let endpoint = if i % 2 == 0 {
            Endpoint::SAM3_IMAGE_TO_BBOX
        } else {
            Endpoint::NANO_BANANA_EDIT
        };
        submitted.push(
            client
                .submit(
                    endpoint,
                    json!({"n": i, "prompt": format!("p{i}"), "image_url": reka_inference_sim::samples::png_data_uri(2, 2)}),
                )
                .await
                .unwrap()
                .id()
                .to_owned(),
        );
    }
    let all: Vec<_> = client
        .jobs()
        .list(ListFilter::default().page_size(25))
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|i| i.request_id.clone()).collect();
    assert_eq!(ids.len(), 130);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        130,
        "no duplicates"
    );
    let newest_first: Vec<_> = submitted.iter().rev().cloned().collect();
    assert_eq!(ids, newest_first);

    let bbox: Vec<_> = client
        .jobs()
        .list(
            ListFilter::default()
                .endpoint(Endpoint::SAM3_IMAGE_TO_BBOX)
                .limit(10),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(bbox.len(), 10);
    assert!(
        bbox.iter()
            .all(|i| i.endpoint_id.as_deref() == Some("sam3/image-to-bbox"))
    );
}

#[tokio::test(start_paused = true)]
async fn models_come_from_the_catalog() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let models = client.models().await.unwrap();
    let ids: HashSet<_> = models
        .iter()
        .filter_map(|m| m.endpoint_id.as_deref())
        .collect();
    for e in Endpoint::KNOWN {
        assert!(ids.contains(e.as_str()), "{e} missing from {ids:?}");
    }
}
