//! The client against every plausible shape of the service (issue 10): the
//! simulator's `reka`, `infer` and `fal` dialects. Lifecycle, downloads,
//! price, cancel, attach, job sets and failures, each in every dialect, so
//! that a shape change in any one of them breaks a test.

use crate::common;

use std::time::Duration;

use reka_inference::{Error, JobOutput, JobStatus, ListFilter, WaitOptions};
use reka_inference_sim::{Dialect, SimConfig};
use serde_json::json;

const DIALECTS: [Dialect; 3] = [Dialect::Reka, Dialect::Infer, Dialect::Fal];

#[tokio::test(start_paused = true)]
async fn a_job_runs_and_downloads_in_every_dialect() {
    for dialect in DIALECTS {
        let sim = common::sim_with(SimConfig::new().dialect(dialect)).await;
        let client = common::client(&sim);
        let models = client.models().await.unwrap();
        assert!(
            models
                .iter()
                .any(|m| m.model_id == "nano-banana" && m.capability == "text-to-image"),
            "{dialect:?}: {models:?}"
        );
        assert!(
            models.iter().any(|m| m.capability == "chat"),
            "{dialect:?}: chat models listed"
        );
        let done = client
            .run(
                "nano-banana/text-to-image",
                json!({"prompt": "a lighthouse"}),
            )
            .await
            .unwrap_or_else(|e| panic!("{dialect:?}: {e}"));
        assert!(!done.media().is_empty(), "{dialect:?}: {}", done.output);
        let dir = tempfile::tempdir().unwrap();
        let files = client.download_outputs(&done, dir.path()).await.unwrap();
        assert!(!files.is_empty());
        for f in &files {
            // Extensionless presigned URLs still save as .png.
            assert!(
                f.to_string_lossy().ends_with(".png"),
                "{dialect:?}: {files:?}"
            );
            let bytes = std::fs::read(f).unwrap();
            assert_eq!(&bytes[..4], b"\x89PNG", "{dialect:?}");
        }
        match dialect {
            Dialect::Reka => {}
            _ => assert!(
                done.price_usd().is_some_and(|p| p > 0.0),
                "{dialect:?}: {}",
                done.output
            ),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn many_jobs_and_attached_ones_end_right_in_every_dialect() {
    for dialect in DIALECTS {
        let sim = common::sim_with(SimConfig::new().dialect(dialect)).await;
        let client = common::client(&sim);
        let mut set = client.job_set();
        let mut ids = Vec::new();
        for i in 0..12 {
            let job = client
                .submit(
                    "nano-banana/text-to-image",
                    json!({"prompt": format!("p{i}")}),
                )
                .await
                .unwrap();
            ids.push(job.id().to_owned());
            set.push(job);
        }
        let results = set.wait_all().await;
        let outputs: Vec<&JobOutput> = results
            .iter()
            .map(|r| r.as_ref().unwrap_or_else(|e| panic!("{dialect:?}: {e}")))
            .collect();
        if dialect != Dialect::Reka {
            let total = JobOutput::total_price_usd(outputs.iter().copied()).unwrap();
            assert!(total > 0.0, "{dialect:?}");
        }
        // Attached by id, from another client: already finished.
        let other = common::client(&sim);
        let again = other.job(&ids[0]).wait().await.unwrap();
        assert_eq!(again.request_id, ids[0]);
        // And listed.
        let listed = client
            .jobs()
            .page(&ListFilter::default().limit(5), 0)
            .await
            .unwrap();
        assert!(!listed.items.is_empty(), "{dialect:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_ends_a_running_job_in_every_dialect() {
    for dialect in DIALECTS {
        let sim = common::sim_with(
            SimConfig::new()
                .dialect(dialect)
                .catalog(common::fixed_catalog("slow", 4, 100_000)),
        )
        .await;
        let client = common::client(&sim);
        let job = client
            .submit("slow/text-to-image", json!({"prompt": "x"}))
            .await
            .unwrap();
        // Let it start running.
        let mut events = job.events_with(WaitOptions::default().timeout(Duration::from_secs(30)));
        use futures::StreamExt;
        while let Some(e) = events.next().await {
            if matches!(e.unwrap(), reka_inference::JobEvent::Started) {
                break;
            }
        }
        job.cancel().await.unwrap();
        // fal cancels a running job a moment later: the wait follows it.
        let err = job.wait().await.unwrap_err();
        assert!(
            matches!(err, Error::JobCancelled { .. }),
            "{dialect:?}: {err:?}"
        );
        assert_eq!(job.result().await.unwrap().status, JobStatus::Cancelled);
    }
}

#[tokio::test(start_paused = true)]
async fn failures_are_failures_in_every_dialect() {
    for dialect in DIALECTS {
        let sim = common::sim_with(SimConfig::new().dialect(dialect).failure_rate(1.0)).await;
        let client = common::client(&sim);
        for i in 0..4 {
            // fal reports about half its failures as COMPLETED + error.
            let err = client
                .run(
                    "nano-banana/text-to-image",
                    json!({"prompt": format!("p{i}")}),
                )
                .await
                .unwrap_err();
            match err {
                Error::JobFailed { error, .. } => {
                    assert!(
                        error.and_then(|e| e.message).is_some_and(|m| !m.is_empty()),
                        "{dialect:?}"
                    )
                }
                other => panic!("{dialect:?}: {other:?}"),
            }
        }
        // A bad input is a validation error in every shape (400 or 422).
        let err = client.submit("nano-banana/text-to-image", json!({})).await;
        if let Err(e) = err {
            assert!(
                matches!(e.status().map(|s| s.as_u16()), Some(400 | 422)),
                "{dialect:?}: {e:?}"
            );
        }
    }
}
