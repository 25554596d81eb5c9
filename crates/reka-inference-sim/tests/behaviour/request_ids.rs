//! Request ids: unique to each run unless a seed is given, then the same
//! on every run.

use reka_inference_sim::SimConfig;
use serde_json::json;

use crate::common::Env;

/// The ids of three submits to a fresh simulator.
async fn three_ids(config: SimConfig) -> Vec<String> {
    let env = Env::new(config).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            env.submit(
                "nano-banana/text-to-image",
                json!({"prompt": format!("id {i}")}),
            )
            .await,
        );
    }
    env.sim.shutdown().await;
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_without_a_seed_never_share_a_request_id() {
    let first = three_ids(SimConfig::new().time_scale(0.0)).await;
    let second = three_ids(SimConfig::new().time_scale(0.0)).await;
    for id in &first {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert!(!second.contains(id), "{id} handed out by two runs");
    }
    // Within a run, ids differ too.
    let unique: std::collections::HashSet<&String> = first.iter().collect();
    assert_eq!(unique.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_with_the_same_seed_hand_out_the_same_ids() {
    let first = three_ids(SimConfig::new().time_scale(0.0).seed(7)).await;
    let second = three_ids(SimConfig::new().time_scale(0.0).seed(7)).await;
    assert_eq!(first, second);
    // Seed 0 given explicitly is a seed like any other.
    let zero = three_ids(SimConfig::new().time_scale(0.0).seed(0)).await;
    assert_eq!(
        zero,
        three_ids(SimConfig::new().time_scale(0.0).seed(0)).await
    );
    assert_ne!(zero, first);
}
