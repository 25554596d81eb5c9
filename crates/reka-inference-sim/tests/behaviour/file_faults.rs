//! The `files` fault scope: downloads of a finished job's output files
//! (`/_sim/files/...`, `/_sim/blobs/...`) fetched with a real HTTP client.

use std::time::{Duration, Instant};

use reka_inference_sim::faults::{DRIP_CHUNK_BYTES, FILES};
use reka_inference_sim::{Dialect, FaultConfig, SimConfig};
use serde_json::{Value, json};

use crate::common::{Env, fixed_catalog};

fn faults(spec: &str) -> FaultConfig {
    spec.parse().unwrap()
}

/// A simulator whose one endpoint (`m/edit`, an image) finishes jobs at once.
async fn env(dialect: Dialect) -> Env {
    Env::new(
        SimConfig::new()
            .time_scale(0.0)
            .seed(11)
            .dialect(dialect)
            .catalog(fixed_catalog(1, 5.0)),
    )
    .await
}

/// Runs one job to the end and returns the URL of its output file and the
/// file's bytes, downloaded before any `files` fault is set.
async fn finished_file(env: &Env, prompt: &str) -> (String, Vec<u8>) {
    let id = env.submit("m/edit", json!({ "prompt": prompt })).await;
    env.wait_for(&id, "COMPLETED").await;
    let record = env.result(&id).await;
    let url = record["output"]
        .pointer("/images/0/url")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap().to_vec();
    assert!(bytes.starts_with(b"\x89PNG"));
    (url, bytes)
}

fn files_faults(stats: &reka_inference_sim::Stats) -> Vec<(String, u64)> {
    stats
        .faults_injected
        .iter()
        .filter(|(k, _)| k.starts_with("files_"))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_latency_delays_a_download() {
    let env = env(Dialect::Reka).await;
    let (url, bytes) = finished_file(&env, "slow cdn").await;
    env.sim.set_faults(faults("files:latency=300ms"));
    let t = Instant::now();
    let resp = env.http.get(&url).send().await.unwrap();
    // The wait comes before the headers.
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
    let stats = env.sim.stats().await;
    assert_eq!(stats.faults("files_latency"), 1);
    // Not an API latency fault.
    assert_eq!(stats.faults("latency"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_drip_sends_the_whole_file_in_pieces_and_slowly() {
    let env = env(Dialect::Reka).await;
    let (url, bytes) = finished_file(&env, "a dripping tap").await;
    let pieces = bytes.len().div_ceil(DRIP_CHUNK_BYTES);
    assert!(pieces > 3, "{} bytes", bytes.len());
    let pause = Duration::from_millis(20);
    env.sim.set_faults(faults("files:drip=20ms"));
    let t = Instant::now();
    let mut resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    // The whole length is announced up front.
    assert_eq!(resp.content_length(), Some(bytes.len() as u64));
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        assert!(chunk.len() <= DRIP_CHUNK_BYTES, "{}", chunk.len());
        body.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(chunks > 1, "{chunks} chunk(s)");
    assert_eq!(body, bytes);
    // One pause between each two pieces.
    let least = pause * u32::try_from(pieces - 1).unwrap();
    assert!(t.elapsed() >= least, "{:?} < {least:?}", t.elapsed());
    assert_eq!(env.sim.stats().await.faults("files_drip"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_mid_download_leaves_the_simulator_serving() {
    let env = env(Dialect::Reka).await;
    let (url, bytes) = finished_file(&env, "cut short").await;
    env.sim.set_faults(faults("files:drip=200ms"));
    let mut resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert_eq!(first.len(), DRIP_CHUNK_BYTES);
    assert!(first.len() < bytes.len());
    // The client goes away in the middle of the body.
    drop(resp);
    env.sim.set_faults(FaultConfig::none());
    let again = env.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap(), bytes);
    assert_eq!(env.get("/v2/inference/models").await.status, 200);
    assert_eq!(env.sim.stats().await.faults("files_drip"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_errors_drops_and_expiry_at_rate_one() {
    let env = env(Dialect::Reka).await;
    let (url, bytes) = finished_file(&env, "flaky storage").await;
    for (spec, status, kind) in [
        ("files:500=1", 500, "server_error"),
        ("files:502=1", 502, "server_error"),
        ("files:503=1", 503, "server_error"),
        ("files:expired=1", 410, "not_found_error"),
    ] {
        env.sim.set_faults(faults(spec));
        let a = Env::answer(env.http.get(&url).send().await.unwrap()).await;
        a.error(status, kind);
    }
    env.sim.set_faults(faults("files:drop=1"));
    let err = env.http.get(&url).send().await.unwrap_err();
    assert!(!err.is_status() && !err.is_decode(), "{err:?}");
    // A download of a file that does not exist meets the faults too (they
    // act before the handler, as a CDN in front of the store would).
    env.sim.set_faults(faults("files:expired=1"));
    let missing = env.url("/_sim/files/no-such-job/image.png");
    Env::answer(env.http.get(&missing).send().await.unwrap())
        .await
        .error(410, "not_found_error");
    // Without faults: the file, and a plain 404 for a missing one.
    env.sim.set_faults(FaultConfig::none());
    assert_eq!(
        env.http
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        bytes
    );
    Env::answer(env.http.get(&missing).send().await.unwrap())
        .await
        .error(404, "not_found_error");
    let stats = env.sim.stats().await;
    assert_eq!(
        files_faults(&stats),
        [
            ("files_500".to_string(), 1),
            ("files_502".to_string(), 1),
            ("files_503".to_string(), 1),
            ("files_drop".to_string(), 1),
            ("files_expired".to_string(), 2),
        ]
    );
    // Downloads are not API requests: no API fault and no request counted.
    for kind in ["500", "502", "503", "drop"] {
        assert_eq!(stats.faults(kind), 0, "{kind}");
    }
    assert!(
        !stats.requests.contains_key("other"),
        "{:?}",
        stats.requests
    );
    assert_eq!(env.admin_stats().await["faults_injected"]["files_drop"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_blob_downloads_share_the_files_scope() {
    let env = env(Dialect::Infer).await;
    let (url, bytes) = finished_file(&env, "presigned").await;
    assert!(url.contains("/_sim/blobs/"), "{url}");
    env.sim.set_faults(faults("files:expired=1"));
    Env::answer(env.http.get(&url).send().await.unwrap())
        .await
        .error(410, "not_found_error");
    env.sim.set_faults(faults("files:drip=1ms"));
    let mut resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    assert_eq!(body, bytes);
    let stats = env.sim.stats().await;
    assert_eq!(
        (stats.faults("files_expired"), stats.faults("files_drip")),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_and_webhook_faults_leave_downloads_alone() {
    let env = env(Dialect::Reka).await;
    let (url, bytes) = finished_file(&env, "untouched").await;
    env.sim.set_faults(faults(
        "*:drop=0.5,*:500=0.5,*:latency=1ms,webhook:lost=1,webhook:delay=1s",
    ));
    for _ in 0..10 {
        let resp = env.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap(), bytes);
    }
    // The same spec does hit the API.
    let api = env.http.get(env.url("/v2/inference/models")).send().await;
    assert!(api.is_err() || api.is_ok_and(|r| r.status() == 500));
    let stats = env.sim.stats().await;
    assert!(files_faults(&stats).is_empty(), "{stats:?}");
    assert_eq!(stats.faults("latency"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_fault_decisions_are_deterministic_under_a_seed() {
    let statuses = async || {
        let env = env(Dialect::Reka).await;
        let (url, _) = finished_file(&env, "same every time").await;
        env.sim
            .set_faults(faults("files:503=0.3,files:expired=0.3"));
        let mut seen = Vec::new();
        for _ in 0..30 {
            seen.push(env.http.get(&url).send().await.unwrap().status().as_u16());
        }
        seen
    };
    let first = statuses().await;
    assert_eq!(first, statuses().await);
    for status in [200, 410, 503] {
        assert!(first.contains(&status), "{status} missing from {first:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_faults_through_the_admin_api() {
    let env = env(Dialect::Reka).await;
    let put = |body: Value| env.http.put(env.url("/_sim/faults")).json(&body).send();
    let r = Env::answer(
        put(json!("files:drip=5ms,files:expired=0.5"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["scopes"][FILES],
        json!({"expired": 0.5, "drip_ms": 5})
    );
    assert_eq!(r.json["spec"], "files:expired=0.5,files:drip=5ms");
    let r = Env::answer(
        put(json!({"files": {"503": 1.0, "latency_ms": 10}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["spec"], "files:503=1,files:latency=10ms");
    for (bad, why) in [
        (json!("files:429=1"), "not a files fault"),
        (json!("files:malformed=1"), "not a files fault"),
        (json!("files:lost=1"), "not a files fault"),
        (json!("files:503=1@retry_after=3"), "not a files fault"),
        (json!("files:duplicate=1"), "not a files fault"),
        (json!("files:delay=1s"), "not a files fault"),
        (json!("*:drip=5ms"), "only the files scope"),
        (json!("get_result:expired=1"), "only the files scope"),
        (json!({"submit": {"expired": 1}}), "only the files scope"),
        (json!("webhook:drip=5ms"), "not a webhook fault"),
    ] {
        let r = Env::answer(put(bad.clone()).await.unwrap()).await;
        let e = r.error(400, "validation_error");
        assert_eq!(e["param"], "faults", "{bad}");
        assert!(
            e["message"].as_str().unwrap().contains(why),
            "{bad}: {}",
            r.text
        );
    }
    // A refused spec leaves the previous one in place.
    let got = Env::answer(env.http.get(env.url("/_sim/faults")).send().await.unwrap()).await;
    assert_eq!(got.json["spec"], "files:503=1,files:latency=10ms");
}
