//! The MCP server end to end: rmcp's own client over stdio (an in-memory
//! pipe) and over Streamable HTTP, against the in-process simulator.
//! Nothing here asserts on wall time: jobs are kept short by the
//! simulator's time scale, and "a job outlasts the wait" holds because
//! the simulated job takes several times the wait, in wall time.

mod common;

use std::time::Duration;

use common::*;
use reka_inference_mcp::{HttpOptions, Server, ServerOptions, serve_http};
use reka_inference_sim::{Dialect, RunningSim};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, GetTaskParams, TaskPayload,
    TaskStatus,
};
use serde_json::{Value, json};

/// Every tool, through `session`, against `sim` (dialect infer: prices).
async fn every_tool(session: &Session, sim: &RunningSim, dirs: &Dirs) {
    let c = &session.client;

    // The tools, with schemas and money warnings.
    let tools = c.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cancel_job",
            "generate",
            "job_result",
            "job_status",
            "list_jobs",
            "list_models",
            "submit_job",
            "wait_for_job"
        ]
    );
    for tool in &tools {
        assert_eq!(
            tool.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            tool.name
        );
        let description = tool.description.as_deref().unwrap_or_default();
        let paid = matches!(tool.name.as_ref(), "generate" | "submit_job");
        assert_eq!(
            description.contains("COSTS MONEY"),
            paid,
            "{}: {description}",
            tool.name
        );
    }
    let generate = tools.iter().find(|t| t.name == "generate").unwrap();
    let required = generate
        .input_schema
        .get("required")
        .cloned()
        .unwrap_or_default();
    assert_eq!(required, json!(["endpoint", "input"]));
    assert!(
        generate.input_schema["properties"]
            .get("wait_seconds")
            .is_some()
    );

    // list_models: endpoints with their input fields; no chat model.
    let models = ok(call(c, "list_models", json!({})).await);
    let endpoints = structured(&models)["endpoints"].as_array().unwrap().clone();
    assert_eq!(endpoints.len(), 7);
    let image = endpoints
        .iter()
        .find(|e| e["endpoint"] == "nano-banana/text-to-image")
        .expect("listed");
    // An entry without an input schema lists the fields known for its
    // capability; one with a schema (the edit) lists the schema's.
    assert_eq!(image["input_fields_source"], "inferred");
    let prompt = image["input_fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "prompt")
        .expect("the prompt field");
    assert_eq!(prompt["required"], true);
    assert!(
        image["price_usd"].as_f64().is_some_and(|p| p > 0.0),
        "{image}"
    );
    let edit = endpoints
        .iter()
        .find(|e| e["capability"] == "edit")
        .expect("an edit endpoint");
    assert_eq!(edit["input_fields_source"], "service");
    let image_url = edit["input_fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "image_url")
        .expect("the image field");
    assert_eq!(image_url["required"], true);
    assert!(
        image_url["description"]
            .as_str()
            .unwrap()
            .contains("data:image"),
        "{image_url}"
    );
    assert!(!endpoints.iter().any(|e| e["capability"] == "chat"));
    let speech = ok(call(c, "list_models", json!({"capability": "text-to-speech"})).await);
    assert_eq!(
        structured(&speech)["endpoints"].as_array().unwrap().len(),
        1
    );

    // generate: an image, saved, shown inline, linked, priced.
    let generated = ok(call(
        c,
        "generate",
        json!({"endpoint": "nano-banana/text-to-image", "input": {"prompt": "a lighthouse at dusk"}}),
    )
    .await);
    let s = structured(&generated).clone();
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["done"], true);
    let path = s["outputs"][0]["path"].as_str().unwrap();
    assert!(is_saved_file(path), "{path}");
    assert!(std::path::Path::new(path).starts_with(dirs.out()), "{path}");
    assert_eq!(s["outputs"][0]["media_type"], "image/png");
    let image_block = generated
        .content
        .iter()
        .find_map(|c| c.as_image())
        .expect("an image block");
    assert_eq!(image_block.mime_type, "image/png");
    let link = generated
        .content
        .iter()
        .find_map(|c| c.as_resource_link())
        .expect("a resource link");
    assert!(link.uri.starts_with("http"), "{}", link.uri);
    assert_eq!(link.mime_type.as_deref(), Some("image/png"));
    let price = s["price_usd"].as_f64().expect("infer reports prices");
    assert!(price > 0.0);
    assert!(s["session_spend_usd"].as_f64().unwrap() >= price);
    assert!(
        text(&generated).starts_with("Done:"),
        "{}",
        text(&generated)
    );

    // submit_job, then wait_for_job: speech, as audio content.
    let submitted = ok(call(
        c,
        "submit_job",
        json!({"endpoint": "reka-tts-1/text-to-speech", "input": {"text": "hello there"}}),
    )
    .await);
    let speech_id = structured(&submitted)["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text(&submitted).contains("wait_for_job"));
    let waited = ok(call(
        c,
        "wait_for_job",
        json!({"request_id": speech_id, "wait_seconds": 60}),
    )
    .await);
    assert_eq!(structured(&waited)["status"], "COMPLETED");
    let audio = waited
        .content
        .iter()
        .find_map(|c| c.as_audio())
        .expect("audio content");
    assert_eq!(audio.mime_type, "audio/wav");
    let saved = structured(&waited)["outputs"][0]["path"]
        .as_str()
        .unwrap()
        .to_owned();

    // job_status and job_result of the finished job; no second download.
    let status = ok(call(
        c,
        "job_status",
        json!({"request_id": speech_id, "logs": true}),
    )
    .await);
    assert_eq!(structured(&status)["status"], "COMPLETED");
    assert!(!structured(&status)["logs"].as_array().unwrap().is_empty());
    let result = ok(call(c, "job_result", json!({"request_id": speech_id})).await);
    assert_eq!(structured(&result)["outputs"][0]["path"], saved.as_str());

    // cancel_job on a running video.
    let video = ok(call(
        c,
        "submit_job",
        json!({"endpoint": "kling-v3-pro/text-to-video", "input": {"prompt": "waves"}}),
    )
    .await);
    let video_id = structured(&video)["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancelled = ok(call(c, "cancel_job", json!({"request_id": video_id})).await);
    assert_eq!(
        structured(&cancelled)["status"],
        "CANCELLED",
        "{}",
        text(&cancelled)
    );
    let gone = call(c, "job_result", json!({"request_id": video_id})).await;
    assert!(is_error(&gone), "a cancelled job has no result");
    assert!(text(&gone).contains("CANCELLED"));

    // list_jobs, all and by status.
    let listed = ok(call(c, "list_jobs", json!({"limit": 10})).await);
    let ids: Vec<&str> = structured(&listed)["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["request_id"].as_str())
        .collect();
    assert!(
        ids.contains(&speech_id.as_str()) && ids.contains(&video_id.as_str()),
        "{ids:?}"
    );
    let cancelled_only = ok(call(c, "list_jobs", json!({"status": "cancelled"})).await);
    let jobs = structured(&cancelled_only)["jobs"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!jobs.is_empty() && jobs.iter().all(|j| j["status"] == "CANCELLED"));
    let bad_status = call(c, "list_jobs", json!({"status": "DONE"})).await;
    assert!(is_error(&bad_status));

    // A local file under --allow-dir goes in as a data: URI.
    let photo = dirs.allowed().join("photo.png");
    let boxes = ok(call(
        c,
        "generate",
        json!({"endpoint": "sam3/image-to-bbox",
               "input": {"image_url": photo.display().to_string(), "prompt": "the dot"}}),
    )
    .await);
    let s = structured(&boxes);
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert!(s["output"]["boxes"].is_array(), "{s}");
    assert_eq!(
        s["input_files"][0]["path"],
        photo.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(s["input_files"][0]["media_type"], "image/png");

    // Failures are tool results with isError, never protocol errors.
    let unknown = call(
        c,
        "generate",
        json!({"endpoint": "nano-banan/text-to-image", "input": {"prompt": "x"}}),
    )
    .await;
    assert!(is_error(&unknown));
    assert!(
        text(&unknown).contains("The closest: nano-banana/text-to-image"),
        "{}",
        text(&unknown)
    );
    let failed = call(
        c,
        "generate",
        json!({"endpoint": "flaky/text-to-image", "input": {"prompt": "x"}}),
    )
    .await;
    assert!(is_error(&failed), "{}", text(&failed));
    assert_eq!(structured(&failed)["status"], "FAILED");
    assert!(text(&failed).contains("FAILED: "), "{}", text(&failed));
    let outside = call(
        c,
        "generate",
        json!({"endpoint": "nano-banana/edit",
               "input": {"prompt": "x", "image_url": dirs.outside().join("secret.png").display().to_string()}}),
    )
    .await;
    assert!(is_error(&outside));
    assert!(
        text(&outside).contains("outside the allowed directories"),
        "{}",
        text(&outside)
    );
    let bad_args = call(c, "generate", json!({"endpoint": 7})).await;
    assert!(is_error(&bad_args), "bad arguments are a tool error");

    // image, speech, video, boxes, flaky: nothing for the refused calls.
    assert_eq!(sim.stats().await.jobs_created, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_over_stdio() {
    let sim = sim(Dialect::Infer).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let session = stdio_session(server, false).await;
    every_tool(&session, &sim, &dirs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_over_http_with_a_token() {
    let sim = sim(Dialect::Infer).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let token = "a-test-token-long-enough";
    let http = http_server(server, Some(token)).await;
    let session = http_session(&http, Some(token), false).await;
    every_tool(&session, &sim, &dirs).await;
    drop(session);
    http.shutdown().await.unwrap();
}

/// A long job with a progress token: notifications while it runs, with
/// increasing progress and the job's status and log lines.
async fn progress_seen(mut session: Session) {
    let handle = start_call(
        &session.client,
        "generate",
        json!({"endpoint": "veo-3.1/text-to-video", "input": {"prompt": "a slow sunrise"}, "wait_seconds": 120}),
    )
    .await;
    let token = handle.progress_token.clone();
    let result = ok(finish_call(handle).await);
    assert_eq!(structured(&result)["status"], "COMPLETED");
    let mut notes = Vec::new();
    while let Ok(note) = session.progress.try_recv() {
        notes.push(note);
    }
    assert!(notes.len() >= 3, "{notes:?}");
    assert!(notes.iter().all(|n| n.progress_token == token));
    // rmcp's client hands each notification to a task of its own, so they
    // may reach this handler out of the order they were sent in: order them
    // by their progress, which must then rise with no value twice.
    notes.sort_by(|a, b| a.progress.total_cmp(&b.progress));
    assert!(
        notes.windows(2).all(|w| w[1].progress > w[0].progress),
        "{notes:?}"
    );
    let messages: Vec<&str> = notes.iter().filter_map(|n| n.message.as_deref()).collect();
    assert!(messages[0].starts_with("waiting for job "), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("IN_PROGRESS")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("Progress ")),
        "a log line: {messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_notifications_during_a_long_job_over_stdio() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    progress_seen(stdio_session(server, false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_notifications_during_a_long_job_over_http() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let http = http_server(server, None).await;
    progress_seen(http_session(&http, None, false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_that_outlasts_the_wait_is_finished_with_wait_for_job() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let session = stdio_session(server, false).await;
    let c = &session.client;
    // The video takes 3 s of wall time; the call waits 0.5 s.
    let first = ok(call(
        c,
        "generate",
        json!({"endpoint": "veo-3.1/text-to-video", "input": {"prompt": "surf"}, "wait_seconds": 0.5}),
    )
    .await);
    let s = structured(&first).clone();
    assert_eq!(s["done"], false, "{s}");
    assert!(
        matches!(s["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS")),
        "{s}"
    );
    let id = s["request_id"].as_str().unwrap().to_owned();
    let words = text(&first);
    assert!(words.starts_with("Not done yet"), "{words}");
    assert!(
        words.contains(&format!("wait_for_job with request_id \"{id}\"")),
        "{words}"
    );
    assert!(s["next_step"].as_str().unwrap().contains("wait_for_job"));

    let done = ok(call(
        c,
        "wait_for_job",
        json!({"request_id": id, "wait_seconds": 120}),
    )
    .await);
    let s = structured(&done);
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["endpoint"], "veo-3.1/text-to-video");
    assert!(is_saved_file(s["outputs"][0]["path"].as_str().unwrap()));
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, 1, "waiting again made no new job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_refuses_a_job_that_would_pass_it() {
    let sim = sim(Dialect::Infer).await;
    let dirs = Dirs::new();
    // An image costs 0.03 to 0.05 in the simulator: the first is allowed
    // (its price is learnt), a second would pass 0.05.
    let options = dirs.options().budget_usd(0.05);
    let server = Server::with_options(client(&sim), options).unwrap();
    let session = stdio_session(server, false).await;
    let c = &session.client;
    let input = json!({"endpoint": "nano-banana/text-to-image", "input": {"prompt": "one"}});
    let first = ok(call(c, "generate", input.clone()).await);
    let price = structured(&first)["price_usd"].as_f64().unwrap();
    let second = call(
        c,
        "submit_job",
        json!({"endpoint": "nano-banana/text-to-image", "input": {"prompt": "two"}}),
    )
    .await;
    assert!(is_error(&second), "{}", text(&second));
    let words = text(&second);
    assert!(words.starts_with("budget: "), "{words}");
    assert!(
        words.contains(&format!("${price:.2} spent so far")),
        "{words}"
    );
    assert!(words.contains("budget of $0.05"), "{words}");
    assert!(words.contains("Nothing was submitted"), "{words}");
    assert_eq!(sim.stats().await.jobs_created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_with_the_same_request_id_makes_no_second_job() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let mut raw = RawStdio::start(server).await;
    let arguments = json!({"endpoint": "nano-banana/text-to-image", "input": {"prompt": "a kite"}});
    let first = raw.call(5, "generate", arguments.clone()).await;
    let again = raw.call(5, "generate", arguments.clone()).await;
    assert_eq!(first["structuredContent"]["status"], "COMPLETED", "{first}");
    assert_eq!(
        first["structuredContent"]["request_id"],
        again["structuredContent"]["request_id"]
    );
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, 1);
    assert_eq!(stats.idempotent_replays, 1);
    // Another request id is another call: a new job.
    let other = raw.call(6, "generate", arguments).await;
    assert_ne!(
        other["structuredContent"]["request_id"],
        first["structuredContent"]["request_id"]
    );
    assert_eq!(sim.stats().await.jobs_created, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_outside_the_allowed_directories_are_refused_even_through_links() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        dirs.outside().join("secret.png"),
        dirs.allowed().join("link.png"),
    )
    .unwrap();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let session = stdio_session(server, false).await;
    let c = &session.client;
    let secret = dirs.outside().join("secret.png");
    let uri = format!("file://{}", secret.display());
    for reference in [secret.display().to_string(), uri] {
        let refused = call(
            c,
            "generate",
            json!({"endpoint": "nano-banana/edit", "input": {"prompt": "x", "image_url": reference}}),
        )
        .await;
        assert!(is_error(&refused));
        assert!(
            text(&refused).contains("outside the allowed directories"),
            "{}",
            text(&refused)
        );
    }
    #[cfg(unix)]
    {
        let link = call(
            c,
            "generate",
            json!({"endpoint": "nano-banana/edit",
                   "input": {"prompt": "x", "image_url": dirs.allowed().join("link.png").display().to_string()}}),
        )
        .await;
        assert!(is_error(&link));
        assert!(text(&link).contains("symbolic link"), "{}", text(&link));
    }
    // Inside, by a relative name: sent.
    let inside = ok(call(
        c,
        "generate",
        json!({"endpoint": "nano-banana/edit", "input": {"prompt": "x", "image_url": "photo.png"}}),
    )
    .await);
    assert_eq!(structured(&inside)["status"], "COMPLETED");
    assert_eq!(
        sim.stats().await.jobs_created,
        1,
        "nothing was sent for the refused ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allowed_directories_local_files_are_refused() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let options = ServerOptions::default().output_dir(dirs.out());
    let server = Server::with_options(client(&sim), options).unwrap();
    let session = stdio_session(server, false).await;
    let refused = call(
        &session.client,
        "generate",
        json!({"endpoint": "nano-banana/edit",
               "input": {"prompt": "x", "image_url": dirs.allowed().join("photo.png").display().to_string()}}),
    )
    .await;
    assert!(is_error(&refused));
    assert!(text(&refused).contains("--allow-dir"), "{}", text(&refused));
    assert_eq!(sim.stats().await.jobs_created, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_a_missing_token_a_wrong_one_and_a_foreign_origin() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let token = "the-right-token-0123456789";
    let http = http_server(server, Some(token)).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    let post = |auth: Option<&str>, origin: Option<&str>| {
        let mut request = reqwest::Client::new()
            .post(http.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize.to_string());
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        request.send()
    };
    let missing = post(None, None).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
    let wrong = post(Some("Bearer the-wrong-token-0123456789"), None)
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let bearer = format!("Bearer {token}");
    let foreign = post(Some(&bearer), Some("http://evil.example"))
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let own_port = format!("http://localhost:{}", http.local_addr().port());
    let own = post(Some(&bearer), Some(&own_port)).await.unwrap();
    assert_eq!(own.status(), 200, "the server's own origin passes");
    let plain = post(Some(&bearer), None).await.unwrap();
    assert_eq!(plain.status(), 200, "no Origin: not a browser, passes");
    // The rmcp client without the token cannot connect either.
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(http.url());
    let (handler_tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let refused = rmcp::ServiceExt::serve(
        TestClient {
            progress: handler_tx,
            tasks: false,
        },
        transport,
    )
    .await;
    assert!(refused.is_err());
    http.shutdown().await.unwrap();
    assert_eq!(sim.stats().await.jobs_created, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_address_needs_a_token() {
    let sim = sim(Dialect::Reka).await;
    let server = Server::new(client(&sim)).unwrap();
    let refused = serve_http(
        server.clone(),
        HttpOptions::new("0.0.0.0:0".parse().unwrap()),
    )
    .await;
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("auth token"), "{message}");
    let short = serve_http(
        server,
        HttpOptions::new("127.0.0.1:0".parse().unwrap()).auth_token("short"),
    )
    .await;
    assert!(short.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_get_json_rpc_errors_and_the_server_goes_on() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    // stdio
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let mut raw = RawStdio::start(server.clone()).await;
    raw.send_text("{\"jsonrpc\": \"2.0\", \"id\": 3, \"method\": ")
        .await;
    let answer = raw.next_answer().await;
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    raw.send_text("{\"jsonrpc\": \"2.0\", \"id\": 4}").await;
    let answer = raw.next_answer().await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert_eq!(answer["id"], 4);
    let listed = raw.call(5, "list_models", json!({})).await;
    assert!(
        listed["structuredContent"]["endpoints"].is_array(),
        "still serving: {listed}"
    );

    // HTTP
    let http = http_server(server, None).await;
    let post = |body: String| {
        reqwest::Client::new()
            .post(http.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    let broken = post("{not json".into()).await.unwrap();
    assert_eq!(broken.status(), 400);
    let body: Value = broken.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    let shapeless = post(json!({"jsonrpc": "2.0", "id": 9, "params": {}}).to_string())
        .await
        .unwrap();
    assert_eq!(shapeless.status(), 400);
    let body: Value = shapeless.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].clone(), body["id"].clone()),
        (json!(-32600), json!(9))
    );
    let huge = post(format!("{{\"x\": \"{}\"}}", "a".repeat(5 << 20)))
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let session = http_session(&http, None, false).await;
    let listed = ok(call(&session.client, "list_models", json!({})).await);
    assert!(structured(&listed)["endpoints"].is_array(), "still serving");
}

/// A `notifications/cancelled` stops the wait; with `cancel_on_abort`
/// the job is cancelled too, without it the job goes on.
async fn cancelled_call(endpoint: &str, cancel_on_abort: bool) -> (String, RunningSim, Session) {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let options = dirs.options().cancel_on_abort(cancel_on_abort);
    let server = Server::with_options(client(&sim), options).unwrap();
    let mut session = stdio_session(server, false).await;
    let handle = start_call(
        &session.client,
        "generate",
        json!({"endpoint": endpoint, "input": {"prompt": "rain"}, "wait_seconds": 120}),
    )
    .await;
    // The first notification names the job.
    let first = tokio::time::timeout(Duration::from_secs(60), session.progress.recv())
        .await
        .expect("a progress notification")
        .expect("the client is there");
    let message = first.message.unwrap();
    let id = message
        .strip_prefix("waiting for job ")
        .and_then(|rest| rest.split(' ').next())
        .expect("the job's id")
        .to_owned();
    handle
        .cancel(Some("the user gave up".into()))
        .await
        .unwrap();
    (id, sim, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_cancels_the_job_with_cancel_on_abort() {
    // A job that runs for days: only the cancel can end it.
    let (id, _sim, session) = cancelled_call("kling-v3-pro/text-to-video", true).await;
    let c = &session.client;
    let cancelled = eventually(Duration::from_secs(30), || async {
        let status = call(c, "job_status", json!({"request_id": id})).await;
        structured(&status)["status"] == "CANCELLED"
    })
    .await;
    assert!(cancelled, "the job was cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_leaves_the_job_running_by_default() {
    let (id, sim, session) = cancelled_call("veo-3.1/text-to-video", false).await;
    let c = &session.client;
    // The job runs to its end: a cancel would have made it CANCELLED.
    let done = ok(call(
        c,
        "wait_for_job",
        json!({"request_id": id, "wait_seconds": 120}),
    )
    .await);
    assert_eq!(structured(&done)["status"], "COMPLETED");
    assert_eq!(sim.stats().await.jobs_created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_bound_are_refused_while_one_waits() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let options = dirs.options().max_concurrent_calls(1);
    let server = Server::with_options(client(&sim), options).unwrap();
    let mut session = stdio_session(server, false).await;
    // A job that runs for days: the call waits until it is cancelled.
    let handle = start_call(
        &session.client,
        "generate",
        json!({"endpoint": "kling-v3-pro/text-to-video", "input": {"prompt": "tide"}, "wait_seconds": 600}),
    )
    .await;
    // Waiting now (it has said so): a second call is refused, not queued.
    tokio::time::timeout(Duration::from_secs(60), session.progress.recv())
        .await
        .expect("a progress notification");
    let refused = call(&session.client, "list_models", json!({})).await;
    assert!(is_error(&refused));
    assert!(
        text(&refused).contains("already serving 1 tool calls"),
        "{}",
        text(&refused)
    );
    // Served again once the first call has ended.
    handle.cancel(Some("enough".into())).await.unwrap();
    let c = &session.client;
    let served = eventually(Duration::from_secs(30), || async {
        !is_error(&call(c, "list_models", json!({})).await)
    })
    .await;
    assert!(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_flight_are_bounded() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let options = dirs.options().max_jobs_in_flight(1);
    let server = Server::with_options(client(&sim), options).unwrap();
    let session = stdio_session(server, false).await;
    let c = &session.client;
    // Jobs that run for days: in flight whenever the test looks.
    let video = |prompt: &str| json!({"endpoint": "kling-v3-pro/text-to-video", "input": {"prompt": prompt}});
    let first = ok(call(c, "submit_job", video("one")).await);
    let id = structured(&first)["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = call(c, "submit_job", video("two")).await;
    assert!(is_error(&second));
    assert!(
        text(&second).contains(&id),
        "names the job in flight: {}",
        text(&second)
    );
    assert!(text(&second).contains("limit is 1"), "{}", text(&second));
    // A job that ends (here, cancelled) frees its place.
    ok(call(c, "cancel_job", json!({"request_id": id})).await);
    ok(call(c, "submit_job", video("three")).await);
    assert_eq!(sim.stats().await.jobs_created, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_tasks_extension_generate_answers_with_a_task() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let session = stdio_session(server, true).await;
    let c = &session.client;
    let call_task = |endpoint: &str| {
        CallToolRequestParams::new("generate").with_arguments(args(json!({
            "endpoint": endpoint, "input": {"prompt": "dawn"}})))
    };
    let CallToolResponse::Task(created) = c
        .call_tool_once(call_task("veo-3.1/text-to-video"))
        .await
        .unwrap()
    else {
        panic!("not a task");
    };
    let task_id = created.task.task_id.clone();
    // Polling is how tasks are followed (tasks/get), within a bound.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let last = loop {
        let got = c
            .get_task(GetTaskParams::new(task_id.clone()))
            .await
            .unwrap();
        if got.task.task.status != TaskStatus::Working {
            break got.task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let TaskPayload::Completed { result } = last.payload else {
        panic!("{last:?}");
    };
    assert_eq!(
        result["structuredContent"]["status"], "COMPLETED",
        "{result:?}"
    );
    assert_eq!(result["isError"], false);

    // tasks/cancel cancels the job (one that would run for days).
    let CallToolResponse::Task(created) = c
        .call_tool_once(call_task("kling-v3-pro/text-to-video"))
        .await
        .unwrap()
    else {
        panic!("not a task");
    };
    let task_id = created.task.task_id.clone();
    c.cancel_task(CancelTaskParams::new(task_id.clone()))
        .await
        .unwrap();
    let cancelled = eventually(Duration::from_secs(60), || {
        let task_id = task_id.clone();
        async move {
            let got = c.get_task(GetTaskParams::new(task_id)).await.unwrap();
            got.task.task.status == TaskStatus::Cancelled
        }
    })
    .await;
    assert!(cancelled);
    let jobs = sim.stats().await.jobs_by_status;
    assert_eq!(jobs.get("CANCELLED"), Some(&1), "{jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_outputs_are_resources() {
    let sim = sim(Dialect::Reka).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let session = stdio_session(server, false).await;
    let c = &session.client;
    let done = ok(call(
        c,
        "generate",
        json!({"endpoint": "nano-banana/text-to-image", "input": {"prompt": "a fox"}}),
    )
    .await);
    let uri = structured(&done)["outputs"][0]["file_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let resources = c.list_all_resources().await.unwrap();
    assert!(resources.iter().any(|r| r.uri == uri), "{resources:?}");
    let read = c
        .read_resource(rmcp::model::ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let json = serde_json::to_value(&read.contents[0]).unwrap();
    assert_eq!(json["mimeType"], "image/png");
    assert!(json["blob"].as_str().unwrap().starts_with("iVBORw0KGgo"));
    // Nothing outside the output directory is served.
    let secret = format!("file://{}", dirs.outside().join("secret.png").display());
    assert!(
        c.read_resource(rmcp::model::ReadResourceRequestParams::new(secret))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_waits_on_one_job_share_one_intact_download() {
    let sim = sim(Dialect::Infer).await;
    let dirs = Dirs::new();
    let server = Server::with_options(client(&sim), dirs.options()).unwrap();
    let session = stdio_session(server, false).await;
    let c = &session.client;
    let submitted = ok(call(
        c,
        "submit_job",
        json!({"endpoint": "nano-banana/text-to-image", "input": {"prompt": "twins"}}),
    )
    .await);
    let id = structured(&submitted)["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wait = json!({"request_id": id, "wait_seconds": 60});
    let (a, b) = tokio::join!(
        call(c, "wait_for_job", wait.clone()),
        call(c, "wait_for_job", wait)
    );
    let (a, b) = (ok(a), ok(b));
    let path_a = structured(&a)["outputs"][0]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let path_b = structured(&b)["outputs"][0]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(path_a, path_b);
    let bytes = std::fs::read(&path_a).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(bytes.ends_with(b"IEND\xaeB`\x82"), "the file is whole");
    // The price is counted once.
    let spend = structured(&b)["session_spend_usd"].as_f64().unwrap();
    let price = structured(&a)["price_usd"].as_f64().unwrap();
    assert!((spend - price).abs() < 1e-4, "{spend} vs {price}");
}
