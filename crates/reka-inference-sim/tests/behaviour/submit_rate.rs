//! The per-key submit token bucket (`SimConfig::submit_rate_limit`): its
//! headers, refill, keys, idempotent replays, what it never limits, and how
//! it combines with the daily quota. It runs on wall time; these tests
//! assert counts and headers, never durations.

use reka_inference_sim::{SimConfig, start};
use serde_json::json;

use crate::common::{Answer, Env, KEY, eventually, image};

const SUBMIT: &str = "/v2/inference/sam3/image-to-bbox";

fn header_u64(a: &Answer, name: &str) -> u64 {
    a.header(name)
        .unwrap_or_else(|| panic!("no {name}: {}", a.text))
        .parse()
        .unwrap()
}

fn header_f64(a: &Answer, name: &str) -> f64 {
    a.header(name)
        .unwrap_or_else(|| panic!("no {name}: {}", a.text))
        .parse()
        .unwrap()
}

async fn submit_as(env: &Env, key: &str, idem: Option<&str>) -> Answer {
    let mut req = env
        .http
        .post(env.url(SUBMIT))
        .header("X-Api-Key", key)
        .json(&json!({"input": {"prompt": "bucket", "image_url": image()}}));
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    Env::answer(req.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_then_a_refusal_with_the_buckets_headers() {
    // One token per 100 s: nothing refills during the test.
    let env = Env::new(
        SimConfig::new()
            .api_key("other")
            .time_scale(0.01)
            .submit_rate_limit(0.01, 3),
    )
    .await;
    for (n, remaining) in [(1, 2), (2, 1), (3, 0)] {
        let a = submit_as(&env, KEY, None).await;
        assert_eq!(a.status, 202, "{}", a.text);
        assert_eq!(header_u64(&a, "x-ratelimit-requests-limit"), 3);
        assert_eq!(header_u64(&a, "x-ratelimit-requests-remaining"), remaining);
        // n missing tokens take n * 100 s to come back (less what refilled).
        let reset = header_f64(&a, "x-ratelimit-requests-reset");
        let full = (n * 100) as f64;
        assert!((full - 5.0..=full).contains(&reset), "{reset}");
        assert!(a.header("retry-after").is_none());
    }
    let refused = submit_as(&env, KEY, None).await;
    refused.error(429, "rate_limit_error");
    let retry_after = header_u64(&refused, "retry-after");
    assert!((95..=100).contains(&retry_after), "{retry_after}");
    assert_eq!(header_u64(&refused, "x-ratelimit-requests-limit"), 3);
    assert_eq!(header_u64(&refused, "x-ratelimit-requests-remaining"), 0);
    let reset = header_f64(&refused, "x-ratelimit-requests-reset");
    assert!((295.0..=300.0).contains(&reset), "{reset}");
    // The refused submit ran no handler: no job.
    let listed = env.get("/v2/inference/requests").await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 3);
    let stats = env.sim.stats().await;
    assert_eq!(stats.jobs_created, 3);
    assert_eq!(stats.submit_rate_limited, 1);
    assert_eq!(stats.rate_limited, 0);
    assert_eq!(stats.count("submit", "429"), 1);
    // Another key has its own full bucket.
    let other = submit_as(&env, "other", None).await;
    assert_eq!(other.status, 202, "{}", other.text);
    assert_eq!(header_u64(&other, "x-ratelimit-requests-remaining"), 2);
    // An invalid submit is a submit request too: it takes a token.
    let bad = Env::answer(
        env.http
            .post(env.url("/v2/inference/nope/image-to-bbox"))
            .header("X-Api-Key", "other")
            .json(&json!({"input": {}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    bad.error(400, "validation_error");
    assert_eq!(header_u64(&bad, "x-ratelimit-requests-remaining"), 1);
    assert_eq!(
        header_u64(
            &submit_as(&env, "other", None).await,
            "x-ratelimit-requests-remaining"
        ),
        0
    );
    assert_eq!(env.sim.stats().await.submit_rate_limited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_operations_are_never_limited_by_the_bucket() {
    let env = Env::new(SimConfig::new().time_scale(0.01).submit_rate_limit(0.01, 1)).await;
    let id = env
        .submit("sam3/image-to-bbox", json!({"image_url": image()}))
        .await;
    submit_as(&env, KEY, None)
        .await
        .error(429, "rate_limit_error");
    let chat = json!({"model": "qwen3-vl-32b", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..3 {
        let answers = [
            env.get("/v2/inference/models").await,
            env.get("/v2/inference/requests").await,
            env.get(&format!("/v2/inference/requests/{id}/status"))
                .await,
            env.get(&format!("/v2/inference/requests/{id}")).await,
            env.post(&format!("/v2/inference/requests/{id}/cancel"), json!({}))
                .await,
            env.post("/v2/inference/chat/completions", chat.clone())
                .await,
        ];
        for a in answers {
            assert_eq!(a.status, 200, "{}", a.text);
            // Without a daily quota, only submits carry rate-limit headers.
            assert!(a.header("x-ratelimit-requests-limit").is_none());
        }
    }
    // A GET on a submit route is not a submit: 405, not 429.
    let get = env.get(SUBMIT).await;
    assert_eq!(get.status, 405, "{}", get.text);
    assert_eq!(env.sim.stats().await.submit_rate_limited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_replays_take_a_token() {
    let env = Env::new(SimConfig::new().time_scale(0.01).submit_rate_limit(0.01, 2)).await;
    let first = submit_as(&env, KEY, Some("k1")).await;
    assert_eq!(first.status, 202);
    assert_eq!(header_u64(&first, "x-ratelimit-requests-remaining"), 1);
    let replay = submit_as(&env, KEY, Some("k1")).await;
    assert_eq!(replay.status, 202);
    assert_eq!(replay.text, first.text, "a replay");
    assert_eq!(header_u64(&replay, "x-ratelimit-requests-remaining"), 0);
    // The bucket is empty: even a replay is refused, and is no replay.
    submit_as(&env, KEY, Some("k1"))
        .await
        .error(429, "rate_limit_error");
    let stats = env.sim.stats().await;
    assert_eq!(
        (
            stats.jobs_created,
            stats.idempotent_replays,
            stats.submit_rate_limited
        ),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_come_back_over_wall_time() {
    // Two tokens a second, a bucket of one: after the first submit, every
    // further one waits for a refill. Only counts are asserted.
    let env = Env::new(SimConfig::new().time_scale(0.01).submit_rate_limit(2.0, 1)).await;
    let mut accepted = 0;
    let mut refused = 0;
    eventually("four refills", async || {
        let a = submit_as(&env, KEY, None).await;
        match a.status {
            202 => accepted += 1,
            429 => {
                refused += 1;
                // Less than half a second to the next token: retry-after
                // rounded up, the reset to the millisecond.
                assert_eq!(a.header("retry-after"), Some("1"));
                let reset = header_f64(&a, "x-ratelimit-requests-reset");
                assert!(reset > 0.0 && reset <= 0.5, "{reset}");
            }
            other => panic!("{other}: {}", a.text),
        }
        accepted == 5
    })
    .await;
    assert!(refused >= 1, "a bucket of one refused nothing");
    let stats = env.sim.stats().await;
    assert_eq!(stats.jobs_created, 5);
    assert_eq!(stats.submit_rate_limited, refused);
    assert_eq!(stats.count("submit", "429"), refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_limiters_the_quota_decides_first_and_neither_counts_the_others_refusals() {
    // A quota of 5 requests a day and a bucket of 2 submits (one per 100 s).
    let env = Env::new(SimConfig::new().rate_limit(5).submit_rate_limit(0.01, 2)).await;
    for remaining in [1, 0] {
        let a = submit_as(&env, KEY, None).await;
        assert_eq!(a.status, 202, "{}", a.text);
        // A submit shows the bucket's figures.
        assert_eq!(header_u64(&a, "x-ratelimit-requests-limit"), 2);
        assert_eq!(header_u64(&a, "x-ratelimit-requests-remaining"), remaining);
    }
    let by_bucket = submit_as(&env, KEY, None).await;
    by_bucket.error(429, "rate_limit_error");
    assert_eq!(header_u64(&by_bucket, "x-ratelimit-requests-limit"), 2);
    assert!(header_u64(&by_bucket, "retry-after") <= 100);
    // The quota counted the two submits it let through, not the refused one.
    for remaining in [2, 1, 0] {
        let a = env.get("/v2/inference/models").await;
        assert_eq!(a.status, 200);
        assert_eq!(header_u64(&a, "x-ratelimit-requests-limit"), 5);
        assert_eq!(header_u64(&a, "x-ratelimit-requests-remaining"), remaining);
    }
    // The quota is spent: it refuses the submit with its own figures, and
    // the bucket is not asked.
    let by_quota = submit_as(&env, KEY, None).await;
    let e = by_quota.error(429, "rate_limit_error");
    assert!(e["message"].as_str().unwrap().contains("per window"), "{e}");
    assert_eq!(header_u64(&by_quota, "x-ratelimit-requests-limit"), 5);
    assert!(header_u64(&by_quota, "retry-after") > 86_000);
    let stats = env.sim.stats().await;
    assert_eq!((stats.rate_limited, stats.submit_rate_limited), (1, 1));
    // A reset refills the bucket (and the quota).
    env.sim.reset();
    assert_eq!(submit_as(&env, KEY, None).await.status, 202);
}

#[tokio::test]
async fn bad_submit_rate_settings_are_refused() {
    for (rate, burst) in [
        (0.0, 1),
        (-2.0, 1),
        (f64::NAN, 1),
        (f64::INFINITY, 1),
        (1.0, 0),
    ] {
        let err = start(SimConfig::new().submit_rate_limit(rate, burst))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let why = err.to_string();
        let expected = if burst == 0 {
            "submit burst must be at least 1"
        } else {
            "submit rate must be a finite number"
        };
        assert!(why.contains(expected), "{rate} {burst}: {why}");
    }
    let ok = start(SimConfig::new().submit_rate_limit(0.5, 1))
        .await
        .unwrap();
    ok.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_can_be_whole_seconds_as_a_rounding_service_sends_them() {
    let env = Env::new(
        SimConfig::new()
            .time_scale(0.01)
            .submit_rate_limit(20.0, 5)
            .submit_reset_whole_seconds(true),
    )
    .await;
    let a = submit_as(&env, KEY, None).await;
    assert_eq!(a.status, 202, "{}", a.text);
    // 50 ms from full, rounded up to a second.
    assert_eq!(a.header("x-ratelimit-requests-reset"), Some("1"));
    let precise = Env::new(SimConfig::new().time_scale(0.01).submit_rate_limit(20.0, 5)).await;
    let a = submit_as(&precise, KEY, None).await;
    let reset = header_f64(&a, "x-ratelimit-requests-reset");
    assert!(reset > 0.0 && reset <= 0.05, "{reset}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_gets_its_own_full_rate() {
    // 2 submits a second with a burst of 4, three keys, and a manual clock
    // moved half a second at a time: every key gets its burst plus one token
    // per step, whatever the other keys take (issue 25: several workers with
    // several keys measured against one simulator).
    let env = Env::new(
        SimConfig::new()
            .api_key("worker-b")
            .api_key("worker-c")
            .manual_clock()
            .submit_rate_limit(2.0, 4),
    )
    .await;
    let keys = [KEY, "worker-b", "worker-c"];
    let mut accepted = [0u32; 3];
    let steps = 20;
    for step in 0..=steps {
        // Keys take turns, one submit each, until every bucket is empty.
        let mut open = [true; 3];
        while open.iter().any(|o| *o) {
            for (k, key) in keys.iter().enumerate() {
                if !open[k] {
                    continue;
                }
                let a = submit_as(&env, key, None).await;
                match a.status {
                    202 => accepted[k] += 1,
                    429 => open[k] = false,
                    other => panic!("{other}: {}", a.text),
                }
            }
        }
        if step < steps {
            env.sim
                .advance(std::time::Duration::from_millis(500))
                .unwrap();
        }
    }
    // 4 at first, then one per half second for 10 s: 24 each.
    assert_eq!(accepted, [24, 24, 24]);
    let stats = env.sim.stats().await;
    assert_eq!(stats.jobs_created, 72);
    assert_eq!(stats.submit_rate_limited, 3 * (steps as u64 + 1));
}
