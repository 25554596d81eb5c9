//! Every command a user runs, against each shape the service may answer in
//! (issue 10): the simulator's `reka`, `infer` and `fal` dialects.

use reka_inference_sim::{Catalog, Dialect, SimConfig};

use crate::common::{Sim, run_ok};

const DIALECTS: [Dialect; 3] = [Dialect::Reka, Dialect::Infer, Dialect::Fal];

/// A catalog with a quick image model and a job that never ends.
fn catalog() -> Catalog {
    Catalog::from_json(
        r#"{"chat_models": ["qwen3-vl-32b"], "models": [
            {"model_id": "fast", "capability": "text-to-image", "workers": 4, "duration": {"fixed": 1}},
            {"model_id": "slow", "capability": "text-to-video", "workers": 4, "duration": {"fixed": 100000}}
        ]}"#,
    )
    .expect("catalog")
}

#[test]
fn every_command_works_in_every_dialect() {
    for dialect in DIALECTS {
        let sim = Sim::with(SimConfig::new().dialect(dialect).catalog(catalog()));
        let d = format!("{dialect:?}");

        // models: read whichever wrapper the dialect uses.
        let models = run_ok(sim.cmd().args(["--json", "models"])).json();
        let ids: Vec<String> = models
            .as_array()
            .expect("an array")
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m["model_id"].as_str().unwrap_or(""),
                    m["capability"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert!(
            ids.contains(&"fast/text-to-image".to_owned()),
            "{d}: {ids:?}"
        );
        assert!(
            ids.contains(&"qwen3-vl-32b/chat".to_owned()),
            "{d}: {ids:?}"
        );

        // run --download: files named by their served type; price in --json.
        let dir = tempfile::tempdir().expect("tempdir");
        let done = run_ok(
            sim.cmd()
                .args([
                    "--json",
                    "run",
                    "fast/text-to-image",
                    "--set",
                    "prompt=x",
                    "--download",
                ])
                .arg(dir.path()),
        )
        .json();
        assert_eq!(done["status"], "COMPLETED", "{d}: {done}");
        let files = done["files"].as_array().expect("files");
        assert!(!files.is_empty(), "{d}: {done}");
        for f in files {
            let path = f["path"].as_str().expect("path");
            assert!(path.ends_with(".png"), "{d}: {path}");
        }
        if dialect != Dialect::Reka {
            assert!(
                done["price_usd"].as_f64().is_some_and(|p| p > 0.0),
                "{d}: {done}"
            );
        }

        // wait on a finished job, from its id.
        let id = done["request_id"].as_str().expect("id").to_owned();
        let waited = run_ok(sim.cmd().args(["--json", "wait", &id])).json();
        assert_eq!(waited["request_id"], id.as_str(), "{d}");

        // cancel a running job (fal's cancel is asynchronous: the job is
        // still running right after), then wait for its end.
        let slow = sim.submit("slow/text-to-video", "waves");
        let cancelled = run_ok(sim.cmd().args(["--json", "cancel", &slow])).json();
        let status = cancelled["status"].as_str().unwrap_or_default().to_owned();
        assert!(
            ["CANCELLED", "IN_PROGRESS", "IN_QUEUE"].contains(&status.as_str()),
            "{d}: {cancelled}"
        );
        let out = crate::common::run_code(sim.cmd().args(["wait", &slow, "--timeout", "60s"]), 12);
        assert!(out.stderr.contains("cancelled"), "{d}: {out:?}");

        // list: both jobs are there.
        let listed = run_ok(sim.cmd().args(["--json", "list", "--limit", "10"])).json();
        let listed_ids: Vec<&str> = listed
            .as_array()
            .expect("an array")
            .iter()
            .filter_map(|i| i["request_id"].as_str())
            .collect();
        assert!(
            listed_ids.contains(&id.as_str()) && listed_ids.contains(&slow.as_str()),
            "{d}: {listed}"
        );

        // chat, whole and streamed.
        let chat = run_ok(sim.cmd().args(["chat", "--model", "qwen3-vl-32b", "Hello"]));
        assert!(!chat.stdout.trim().is_empty(), "{d}: {chat:?}");
        let streamed =
            run_ok(
                sim.cmd()
                    .args(["chat", "--model", "qwen3-vl-32b", "--stream", "Hello"]),
            );
        assert!(!streamed.stdout.trim().is_empty(), "{d}: {streamed:?}");
    }
}
