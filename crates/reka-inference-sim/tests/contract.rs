//! Contract test: a scripted scenario calls all 16 operations of the vendored
//! OpenAPI document (success and error paths) and validates every response
//! body against the schema the document declares for that operation and
//! status code. A status the operation does not declare fails the test.
//! The scenario runs once per dialect (`reka`, `infer`, `fal`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use jsonschema::Validator;
use reka_inference_sim::{Dialect, FaultConfig, RunningSim, SimConfig, samples, start};
use serde_json::{Value, json};

const KEY: &str = "contract-key";

/// The vendored document and compiled validators.
struct Spec {
    doc: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<Validator>>>,
}

impl Spec {
    fn load() -> Spec {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../openapi/reka-inference.json"
        );
        let text = std::fs::read_to_string(path).expect("vendored OpenAPI document");
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
            Some(true)
        );
        Spec {
            doc,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// `(path template, method, operation)` of an operation id.
    fn operation(&self, op_id: &str) -> (String, String, Value) {
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op.get("operationId").and_then(Value::as_str) == Some(op_id) {
                    return (path.clone(), method.to_uppercase(), op.clone());
                }
            }
        }
        panic!("operation {op_id} not in the spec")
    }

    fn operation_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for item in self.doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    ids.insert(id.to_string());
                }
            }
        }
        ids
    }

    /// A validator for `schema`, resolved against the whole document, so
    /// `#/components/schemas/...` references work (OpenAPI 3.1 schemas are
    /// JSON Schema 2020-12).
    fn validator(&self, schema: &Value) -> std::sync::Arc<Validator> {
        let key = schema.to_string();
        let mut cache = self.validators.lock().unwrap();
        cache
            .entry(key)
            .or_insert_with(|| {
                let mut root = self.doc.clone();
                root["allOf"] = json!([schema]);
                let v = jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(&root)
                    .unwrap();
                std::sync::Arc::new(v)
            })
            .clone()
    }

    fn component(&self, name: &str) -> std::sync::Arc<Validator> {
        assert!(
            self.doc["components"]["schemas"].get(name).is_some(),
            "no schema {name}"
        );
        self.validator(&json!({"$ref": format!("#/components/schemas/{name}")}))
    }

    /// Validates `body` as the `status` answer of `op_id`; panics when the
    /// spec does not allow it.
    fn check(&self, op_id: &str, status: u16, body: &Value) {
        let (_, _, op) = self.operation(op_id);
        let responses = &op["responses"];
        let class = format!("{}XX", status / 100);
        let resp = responses
            .get(status.to_string())
            .or_else(|| responses.get(&class))
            .or_else(|| responses.get("default"))
            .unwrap_or_else(|| {
                panic!("{op_id}: the spec declares no {status} response; body {body}")
            });
        let schema = &resp["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{op_id} {status}: no JSON schema declared"
        );
        let errors: Vec<String> = self
            .validator(schema)
            .iter_errors(body)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{op_id} {status}: body {body} violates the spec: {errors:#?}"
        );
    }
}

/// Calls operations by id and validates every answer.
struct Harness<'a> {
    spec: &'a Spec,
    sim: &'a RunningSim,
    http: reqwest::Client,
    /// op id -> statuses seen
    seen: BTreeMap<String, BTreeSet<u16>>,
}

struct Call<'a> {
    op: &'a str,
    params: Vec<(&'a str, String)>,
    query: Vec<(&'a str, &'a str)>,
    body: Option<Value>,
    raw_body: Option<Vec<u8>>,
    key: Option<&'a str>,
    headers: Vec<(&'a str, String)>,
}

impl<'a> Call<'a> {
    fn new(op: &'a str) -> Call<'a> {
        Call {
            op,
            params: vec![],
            query: vec![],
            body: None,
            raw_body: None,
            key: Some(KEY),
            headers: vec![],
        }
    }
    fn param(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }
    fn query(mut self, name: &'a str, value: &'a str) -> Self {
        self.query.push((name, value));
        self
    }
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn raw(mut self, body: Vec<u8>) -> Self {
        self.raw_body = Some(body);
        self
    }
    fn key(mut self, key: Option<&'a str>) -> Self {
        self.key = key;
        self
    }
    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl Harness<'_> {
    async fn send(&mut self, call: Call<'_>) -> (u16, Value, String) {
        let (template, method, op) = self.spec.operation(call.op);
        let mut path = template.clone();
        for (name, value) in &call.params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        // A path parameter not given explicitly gets its first known value.
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or_default();
            let slot = format!("{{{name}}}");
            if p["in"] == "path" && path.contains(&slot) {
                let known = p["x-known-values"][0].as_str().unwrap().to_string();
                path = path.replace(&slot, &known);
            }
        }
        assert!(!path.contains('{'), "unfilled parameter in {path}");
        let url = format!("{}{}", self.sim.base_url(), path);
        let mut req = self
            .http
            .request(method.parse().unwrap(), &url)
            .query(&call.query);
        if let Some(k) = call.key {
            req = req.header("X-Api-Key", k);
        }
        for (name, value) in &call.headers {
            req = req.header(*name, value);
        }
        if let Some(b) = &call.body {
            req = req.json(b);
        }
        if let Some(raw) = call.raw_body {
            req = req.header("content-type", "application/json").body(raw);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        assert!(
            resp.headers().contains_key("x-request-id"),
            "{} {status}: no X-Request-ID",
            call.op
        );
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let text = resp.text().await.unwrap();
        let body = if ct.starts_with("text/event-stream") {
            let (_, _, op) = self.spec.operation(call.op);
            assert!(
                op["responses"][status.to_string()]["content"]["text/event-stream"]["schema"]
                    .is_object(),
                "{} {status}: the spec declares no text/event-stream answer",
                call.op
            );
            Value::Null
        } else {
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", call.op));
            self.spec.check(call.op, status, &body);
            body
        };
        self.seen
            .entry(call.op.to_string())
            .or_default()
            .insert(status);
        (status, body, text)
    }

    async fn expect(&mut self, call: Call<'_>, want: u16) -> Value {
        let op = call.op.to_string();
        let (status, body, _) = self.send(call).await;
        assert_eq!(status, want, "{op}: {body}");
        body
    }
}

const SUBMITS: [&str; 11] = [
    "submit",
    "submit_kling_v3_pro_image_to_video",
    "submit_veo_3_1_image_to_video",
    "submit_sora_2_pro_image_to_video",
    "submit_image_to_video",
    "submit_nano_banana_text_to_image",
    "submit_text_to_image",
    "submit_edit",
    "submit_text_to_video",
    "submit_text_to_speech",
    "submit_image_to_bbox",
];

/// A valid input of a submit operation, by the capability it names.
fn input_of(op: &str, prompt: &str) -> Value {
    if op.ends_with("image_to_video") || op.ends_with("image_to_bbox") || op == "submit_edit" {
        json!({"prompt": prompt, "image_url": samples::png_data_uri(2, 2)})
    } else if op.ends_with("text_to_speech") {
        json!({"text": prompt})
    } else {
        json!({"prompt": prompt})
    }
}

#[test]
fn the_harness_rejects_what_the_spec_forbids() {
    let spec = Spec::load();
    assert!(
        !spec
            .component("SubmitResponse")
            .is_valid(&json!({"request_id": 1}))
    );
    assert!(
        !spec
            .component("StatusResponse")
            .is_valid(&json!({"request_id": "x", "status": "DONE"}))
    );
    assert!(
        !spec
            .component("ErrorResponse")
            .is_valid(&json!({"detail": "nope"}))
    );
    assert!(
        !spec
            .component("RequestItem")
            .is_valid(&json!({"request_id": "x", "status": "IN_QUEUE", "created_at": "yesterday"}))
    );
    assert!(
        spec.component("ErrorResponse")
            .is_valid(&json!({"error": {"type": "t", "message": "m"}}))
    );
    // Chat: a streamed tool call part needs its index, a tool call's
    // arguments are text, a content part names a known type; a finish
    // reason OpenAI does not list is accepted.
    let chunk = |tool_call: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"tool_calls": [tool_call]}}]})
    };
    let chunks = spec.component("ChatCompletionChunk");
    assert!(chunks.is_valid(&chunk(json!({"index": 0, "function": {"arguments": "{"}}))));
    assert!(!chunks.is_valid(&chunk(json!({"function": {"arguments": "{"}}))));
    let answer = |message: Value, finish: &str| {
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
               "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
    };
    let call = |arguments: Value| {
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}]})
    };
    let responses = spec.component("ChatCompletionResponse");
    assert!(responses.is_valid(&answer(call(json!("{}")), "tool_calls")));
    assert!(responses.is_valid(&answer(call(json!("{}")), "eos_token")));
    assert!(!responses.is_valid(&answer(call(json!({})), "tool_calls")));
    let requests = spec.component("ChatCompletionRequest");
    let parts =
        |part: Value| json!({"model": "m", "messages": [{"role": "user", "content": [part]}]});
    assert!(requests.is_valid(&parts(json!({"type": "text", "text": "hi"}))));
    assert!(!requests.is_valid(&parts(json!({"type": "text"}))));
    // A part type the document does not list passes through as given.
    assert!(requests.is_valid(&parts(
        json!({"type": "video_url", "video_url": {"url": "https://v"}})
    )));
    assert!(!requests.is_valid(&parts(json!({"type": "image_url"}))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_spec_says_reka() {
    every_operation_answers_as_the_spec_says(Dialect::Reka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_spec_says_infer() {
    every_operation_answers_as_the_spec_says(Dialect::Infer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_spec_says_fal() {
    every_operation_answers_as_the_spec_says(Dialect::Fal).await;
}

/// Checks the documented parts of a free-form `output` (`usage`, `images`)
/// against `OutputUsage` and `OutputImage`.
fn check_output(spec: &Spec, output: &Value) {
    let mut errors: Vec<String> = Vec::new();
    if let Some(usage) = output.get("usage") {
        errors.extend(
            spec.component("OutputUsage")
                .iter_errors(usage)
                .map(|e| e.to_string()),
        );
    }
    for image in output["images"].as_array().into_iter().flatten() {
        errors.extend(
            spec.component("OutputImage")
                .iter_errors(image)
                .map(|e| e.to_string()),
        );
    }
    assert!(
        errors.is_empty(),
        "output {output} violates the spec: {errors:#?}"
    );
}

async fn every_operation_answers_as_the_spec_says(dialect: Dialect) {
    let spec = Spec::load();
    assert_eq!(spec.operation_ids().len(), 17);
    let sim = start(
        SimConfig::new()
            .api_key(KEY)
            .time_scale(0.001)
            .seed(1)
            .max_body_bytes(1024 * 1024)
            .dialect(dialect),
    )
    .await
    .unwrap();
    // Infer answers a bad submit 422 (FastAPI); the others 400.
    let bad = if dialect == Dialect::Infer { 422 } else { 400 };
    // fal answers status and result 202 until the request is done.
    let polled = if dialect == Dialect::Fal { 202 } else { 200 };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut h = Harness {
        spec: &spec,
        sim: &sim,
        http,
        seen: BTreeMap::new(),
    };

    // Models.
    let models = h.expect(Call::new("list_models"), 200).await;
    let wrapper = if dialect == Dialect::Infer {
        "models"
    } else {
        "items"
    };
    assert!(!models[wrapper].as_array().unwrap().is_empty());
    // `ModelInfo` takes any extra field; every one the simulator sends is
    // declared nonetheless, so the document says what a model entry holds.
    let declared = &spec.doc["components"]["schemas"]["ModelInfo"]["properties"];
    for entry in models[wrapper].as_array().unwrap() {
        for field in entry.as_object().unwrap().keys() {
            assert!(
                declared.get(field).is_some(),
                "ModelInfo does not declare {field:?}, sent in {entry}"
            );
        }
    }
    h.expect(Call::new("list_models").key(None), 401).await;

    // Every submit operation: success, an input its schema refuses (422 in
    // every dialect), unknown model where the route takes one, missing
    // input, bad webhook, no key.
    let mut ids = Vec::new();
    for op in SUBMITS {
        let body = h
            .expect(
                Call::new(op).json(json!({"input": input_of(op, &format!("contract {op}"))})),
                202,
            )
            .await;
        ids.push(body["request_id"].as_str().unwrap().to_string());
        let refused = h
            .expect(Call::new(op).json(json!({"input": {}})), 422)
            .await;
        assert_eq!(refused["detail"][0]["type"], "missing", "{op}: {refused}");
        let mut bad_image = input_of(op, "x");
        if bad_image.get("image_url").is_some() {
            bad_image["image_url"] = json!("@photo.png");
            let refused = h
                .expect(Call::new(op).json(json!({"input": bad_image})), 422)
                .await;
            assert_eq!(
                refused["detail"][0]["loc"],
                json!(["body", "input", "image_url"])
            );
        }
        h.expect(Call::new(op).json(json!({"webhook_url": null})), bad)
            .await;
        h.expect(
            Call::new(op).json(json!({"input": {}, "webhook_url": "not a url"})),
            bad,
        )
        .await;
        h.expect(
            Call::new(op).json(json!({"input": {}})).key(Some("wrong")),
            401,
        )
        .await;
        if spec.operation(op).0.contains("{model}") {
            h.expect(
                Call::new(op)
                    .param("model", "no-such-model")
                    .json(json!({"input": {}})),
                bad,
            )
            .await;
        }
    }
    // Idempotency: replay and conflict.
    let first = h
        .expect(
            Call::new("submit_edit")
                .header("Idempotency-Key", "k-1")
                .json(json!({"input": input_of("submit_edit", "a")})),
            202,
        )
        .await;
    let again = h
        .expect(
            Call::new("submit_edit")
                .header("Idempotency-Key", "k-1")
                .json(json!({"input": input_of("submit_edit", "a")})),
            202,
        )
        .await;
    assert_eq!(first, again);
    h.expect(
        Call::new("submit_edit")
            .header("Idempotency-Key", "k-1")
            .json(json!({"input": input_of("submit_edit", "b")})),
        409,
    )
    .await;
    // Too large (over the 1 MiB configured above), on every submit.
    let big = format!(r#"{{"input": {{"prompt": "{}"}}}}"#, "x".repeat(1_100_000));
    for op in SUBMITS {
        let e = h
            .expect(Call::new(op).raw(big.clone().into_bytes()), 413)
            .await;
        assert_eq!(e["error"]["type"], "request_too_large");
    }

    // Status, result and cancel on a queued job (sora-2-pro has 2 workers).
    let mut queued = Vec::new();
    for _ in 0..4 {
        let body = h
            .expect(
                Call::new("submit_sora_2_pro_image_to_video")
                    .json(json!({"input": input_of("submit_sora_2_pro_image_to_video", "q")})),
                202,
            )
            .await;
        queued.push(body["request_id"].as_str().unwrap().to_string());
    }
    let last = queued.last().unwrap().clone();
    let status = h
        .expect(Call::new("get_status").param("request_id", &last), polled)
        .await;
    assert!(status["logs"].is_null());
    h.expect(
        Call::new("get_status")
            .param("request_id", &last)
            .query("with_logs", "true"),
        polled,
    )
    .await;
    let result = h
        .expect(Call::new("get_result").param("request_id", &last), polled)
        .await;
    assert!(result["output"].is_null());
    h.expect(Call::new("cancel_request").param("request_id", &last), 200)
        .await;
    for op in ["get_status", "get_result", "cancel_request"] {
        h.expect(
            Call::new(op).param("request_id", "00000000-0000-0000-0000-000000000000"),
            404,
        )
        .await;
        h.expect(Call::new(op).param("request_id", &last).key(None), 401)
            .await;
    }

    // Wait for everything else to finish; then results carry outputs.
    for id in &ids {
        let mut done = false;
        for _ in 0..400 {
            let (code, s, _) = h
                .send(
                    Call::new("get_status")
                        .param("request_id", id)
                        .query("with_logs", "true"),
                )
                .await;
            assert!(code == 200 || code == polled, "get_status {code}: {s}");
            if s["status"] == "COMPLETED" {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(done, "{id} never completed");
        let r = h
            .expect(Call::new("get_result").param("request_id", id), 200)
            .await;
        assert!(r["output"].is_object());
        check_output(&spec, &r["output"]);
        // Every dialect reports a price (the default catalog prices every endpoint).
        assert!(r["output"]["usage"]["price_usd"].is_number(), "{r}");
        // Cancelling a finished request returns it unchanged.
        let c = h
            .expect(Call::new("cancel_request").param("request_id", id), 200)
            .await;
        assert_eq!(c["status"], "COMPLETED");
    }

    // List.
    h.expect(Call::new("list_requests"), 200).await;
    h.expect(
        Call::new("list_requests")
            .query("expand", "payloads")
            .query("limit", "5"),
        200,
    )
    .await;
    h.expect(
        Call::new("list_requests")
            .query("status", "CANCELLED")
            .query("capability", "image-to-video"),
        200,
    )
    .await;
    h.expect(Call::new("list_requests").query("limit", "101"), 400)
        .await;
    h.expect(Call::new("list_requests").query("offset", "-1"), 400)
        .await;
    h.expect(Call::new("list_requests").query("start", "yesterday"), 400)
        .await;
    h.expect(Call::new("list_requests").key(None), 401).await;

    // Chat.
    let chat = json!({"model": "qwen3-vl-32b", "messages": [{"role": "user", "content": "hello"}]});
    h.expect(Call::new("create_chat_completion").json(chat.clone()), 200)
        .await;
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let (status, _, text) = h
        .send(Call::new("create_chat_completion").json(streamed))
        .await;
    assert_eq!(status, 200);
    chunks_of(&spec, &text);
    openai_chat_fields(&mut h, &spec).await;
    h.expect(
        Call::new("create_chat_completion").json(json!({"model": "gpt-4", "messages": []})),
        400,
    )
    .await;
    h.expect(
        Call::new("create_chat_completion")
            .json(chat.clone())
            .key(None),
        401,
    )
    .await;
    h.expect(
        Call::new("create_chat_completion").raw(big.into_bytes()),
        413,
    )
    .await;

    // Server errors, as fault injection produces them, on every operation.
    sim.set_faults("*:500=1".parse::<FaultConfig>().unwrap());
    let any_id = ids[0].clone();
    for op in spec.operation_ids() {
        let call = Call::new(&op)
            .param("request_id", any_id.clone())
            .json(json!({"input": {}}));
        h.expect(call, 500).await;
    }
    sim.set_faults(FaultConfig::none());

    // Every operation was exercised, with a success and an error each.
    let ops = spec.operation_ids();
    assert_eq!(h.seen.keys().cloned().collect::<BTreeSet<_>>(), ops);
    for (op, statuses) in &h.seen {
        assert!(statuses.iter().any(|s| *s < 300), "{op}: no success path");
        assert!(statuses.iter().any(|s| *s >= 400), "{op}: no error path");
    }
    sim.shutdown().await;
}

/// The `data:` events of a streamed chat answer, each checked against
/// `ChatCompletionChunk`; the stream must end with `data: [DONE]`.
fn chunks_of(spec: &Spec, text: &str) -> Vec<Value> {
    let chunk = spec.component("ChatCompletionChunk");
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let mut chunks = Vec::new();
    for e in &events[..events.len() - 1] {
        let data: Value = serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap();
        let errors: Vec<String> = chunk.iter_errors(&data).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "chunk {data} violates the spec: {errors:?}"
        );
        chunks.push(data);
    }
    chunks
}

/// OpenAI's request fields, each request checked against
/// `ChatCompletionRequest` and each answer (plain and streamed, with
/// `include_usage`) against the response and chunk schemas: tool calls
/// (asked for, `required`, a named function, then the tool's result), `n`,
/// `max_tokens`/`max_completion_tokens`, `json_object`/`json_schema`, content
/// parts.
async fn openai_chat_fields(h: &mut Harness<'_>, spec: &Spec) {
    let model = "qwen3-vl-32b";
    let weather = json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}
        }, "required": ["city"]},
        "strict": false
    }}]);
    let ask = |text: &str| json!([{"role": "user", "content": text}]);
    let cases = [
        // (body, tool call expected, choices, finish reason)
        (
            json!({"model": model, "messages": ask("Weather in Paris? Use the tool."), "tools": weather}),
            true,
            1,
            "tool_calls",
        ),
        (
            json!({"model": model, "messages": ask("Hello there"), "tools": weather,
                   "tool_choice": "required", "n": 2}),
            true,
            2,
            "tool_calls",
        ),
        (
            json!({"model": model, "messages": ask("Hello there"), "tools": weather,
                   "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
            true,
            1,
            "tool_calls",
        ),
        (
            json!({"model": model, "tools": weather, "tool_choice": "auto", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris? Use the tool."},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"celsius\":21}"}
            ]}),
            false,
            1,
            "stop",
        ),
        (
            json!({"model": model, "messages": ask("Tell me a long story please"), "n": 3, "max_tokens": 2}),
            false,
            3,
            "length",
        ),
        (
            json!({"model": model, "messages": ask("Tell me a long story please"),
                   "max_completion_tokens": 1, "temperature": 0.5, "top_p": 0.9, "stop": ["\n"],
                   "seed": 1, "user": "u-1", "logprobs": false}),
            false,
            1,
            "length",
        ),
        (
            json!({"model": model, "messages": ask("Answer in JSON"), "response_format": {"type": "json_object"}}),
            false,
            1,
            "stop",
        ),
        (
            json!({"model": model, "messages": ask("Answer in JSON"), "response_format": {
                "type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}
            }}),
            false,
            1,
            "stop",
        ),
        (
            json!({"model": model, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://images.example.com/fox.png", "detail": "low"}}
            ]}]}),
            false,
            1,
            "stop",
        ),
    ];
    let request = spec.component("ChatCompletionRequest");
    for (body, tool_call, n, finish) in cases {
        let errors: Vec<String> = request.iter_errors(&body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "request {body} violates the spec: {errors:?}"
        );
        let answer = h
            .expect(Call::new("create_chat_completion").json(body.clone()), 200)
            .await;
        let choices = answer["choices"].as_array().unwrap();
        assert_eq!(choices.len(), n, "{body}: {answer}");
        for c in choices {
            assert_eq!(c["finish_reason"], finish, "{body}: {answer}");
            assert_eq!(c["message"]["tool_calls"].is_array(), tool_call, "{answer}");
        }
        assert!(answer["usage"]["total_tokens"].is_u64(), "{answer}");

        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        streamed["stream_options"] = json!({"include_usage": true});
        let (status, _, text) = h
            .send(Call::new("create_chat_completion").json(streamed))
            .await;
        assert_eq!(status, 200);
        let chunks = chunks_of(spec, &text);
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]), "{text}");
        assert!(last["usage"]["total_tokens"].is_u64(), "{text}");
        let streamed_calls = chunks
            .iter()
            .flat_map(|c| c["choices"].as_array().unwrap())
            .any(|c| c["delta"]["tool_calls"].is_array());
        assert_eq!(streamed_calls, tool_call, "{text}");
    }
}

/// Failed jobs, as each dialect shows them (fal: some as `COMPLETED` with an
/// `error`), in status, result, cancel and list answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_records_match_the_spec_in_every_dialect() {
    let spec = Spec::load();
    for dialect in Dialect::ALL {
        let sim = start(
            SimConfig::new()
                .api_key(KEY)
                .time_scale(0.0)
                .failure_rate(1.0)
                .seed(3)
                .dialect(dialect),
        )
        .await
        .unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut h = Harness {
            spec: &spec,
            sim: &sim,
            http,
            seen: BTreeMap::new(),
        };
        for i in 0..6 {
            let body = h
                .expect(
                    Call::new("submit_text_to_image")
                        .json(json!({"input": {"prompt": format!("f{i}")}})),
                    202,
                )
                .await;
            let id = body["request_id"].as_str().unwrap().to_string();
            h.expect(Call::new("get_status").param("request_id", &id), 200)
                .await;
            let r = h
                .expect(Call::new("get_result").param("request_id", &id), 200)
                .await;
            assert!(r["error"]["message"].is_string(), "{dialect}: {r}");
            assert!(r["output"].is_null(), "{dialect}: {r}");
            h.expect(Call::new("cancel_request").param("request_id", &id), 200)
                .await;
        }
        h.expect(Call::new("list_requests").query("expand", "payloads"), 200)
            .await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_answers_match_the_spec() {
    let spec = Spec::load();
    let sim = start(
        SimConfig::new()
            .api_key(KEY)
            .time_scale(0.001)
            .rate_limit(1),
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut h = Harness {
        spec: &spec,
        sim: &sim,
        http,
        seen: BTreeMap::new(),
    };
    h.expect(Call::new("list_models"), 200).await;
    for op in spec.operation_ids() {
        let call = Call::new(&op)
            .param("request_id", "x")
            .json(json!({"input": {}}));
        let body = h.expect(call, 429).await;
        assert_eq!(body["error"]["type"], "rate_limit_error");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_rate_limited_answers_match_the_spec() {
    let spec = Spec::load();
    for dialect in [Dialect::Reka, Dialect::Infer, Dialect::Fal] {
        // One token, then one per 1,000 s: every further submit is refused.
        let sim = start(
            SimConfig::new()
                .api_key(KEY)
                .dialect(dialect)
                .time_scale(0.001)
                .submit_rate_limit(0.001, 1),
        )
        .await
        .unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut h = Harness {
            spec: &spec,
            sim: &sim,
            http,
            seen: BTreeMap::new(),
        };
        let mut first = true;
        for op in SUBMITS {
            let want = if first { 202 } else { 429 };
            first = false;
            let body = h
                .expect(
                    Call::new(op).json(json!({"input": input_of(op, "r")})),
                    want,
                )
                .await;
            if want == 429 {
                assert_eq!(body["error"]["type"], "rate_limit_error", "{dialect}");
            }
        }
        // Other operations are not limited by the bucket.
        h.expect(Call::new("list_models"), 200).await;
        let refused = SUBMITS.len() as u64 - 1;
        assert_eq!(sim.stats().await.submit_rate_limited, refused, "{dialect}");
        sim.shutdown().await;
    }
}
