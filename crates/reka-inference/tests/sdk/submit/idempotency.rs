//! A submit: the caller's idempotency key, and input refused with typed errors.

use crate::common;
use reka_inference::{Endpoint, Error, SubmitOptions};
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn idempotency_key_of_the_caller_returns_the_same_job() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let opts = SubmitOptions::default().idempotency_key("order-42");
    let a = client
        .submit_with(
            Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
            json!({"prompt": "a"}),
            opts.clone(),
        )
        .await
        .unwrap();
    let b = client
        .submit_with(
            Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
            json!({"prompt": "a"}),
            opts.clone(),
        )
        .await
        .unwrap();
    assert_eq!(a.id(), b.id());
    // The same key with another body is a conflict, not a new job.
    let err = client
        .submit_with(
            Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
            json!({"prompt": "b"}),
            opts,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409));
    assert_eq!(sim.stats().await.jobs_created, 1);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_before_or_by_the_server_with_typed_errors() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let not_object = client
        .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!([1, 2]))
        .await;
    assert!(matches!(not_object, Err(Error::InvalidInput(_))));
    let unknown_model = client
        .submit(
            "no-such-model/text-to-image".parse::<Endpoint>().unwrap(),
            json!({}),
        )
        .await
        .unwrap_err();
    let api = unknown_model.api_error().expect("an API error");
    assert_eq!(api.kind, "validation_error");
    assert_eq!(api.param.as_deref(), Some("model"));
    assert!(api.x_request_id.is_some());
    assert!(!api.raw_body.is_empty());
    assert_eq!(sim.stats().await.jobs_created, 0);
}
