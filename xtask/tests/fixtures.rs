//! Upstream-style OpenAPI 3.1 documents (FastAPI's output) in
//! `tests/fixtures/*.json`, one or more per normalisation rule.
//!
//! Each fixture is normalised (the rewrite checked through the report's
//! counts and the output JSON), generated with progenitor and parsed with
//! syn, all inside `catch_unwind`: the xtask must never panic, whatever an
//! upstream document holds. `refused.json` is the one the normaliser must
//! turn down, with every offending JSON pointer named.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use serde_json::{Value, json};
use xtask::generate::generate_normalized;
use xtask::normalize::{NormalizeError, Report, Rule, normalize};
use xtask::shape::shape;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    xtask::load_spec(&path).expect("fixture loads")
}

/// What one fixture gives: the normalised document, the report, and the
/// public shape of the generated code.
struct Run {
    normalized: Value,
    report: Report,
    shape: String,
}

/// Normalises, generates and parses `name`; panics (failing the test) if
/// any step fails, and says so if any step panicked.
fn run(name: &str) -> Run {
    let doc = fixture(name);
    let outcome = catch_unwind(AssertUnwindSafe(|| -> anyhow::Result<Run> {
        let (normalized, report) = normalize(&doc)?;
        let code = generate_normalized(&normalized)?;
        syn::parse_file(&code)?;
        let shape = shape(&code)?;
        Ok(Run {
            normalized,
            report,
            shape,
        })
    }));
    match outcome {
        Ok(Ok(run)) => {
            assert_converted(&run.normalized, "");
            run
        }
        Ok(Err(e)) => panic!("{name}: {e:#}"),
        Err(_) => panic!("{name}: the xtask panicked"),
    }
}

/// Rule counts as a map, for one equality assertion per fixture.
fn counts(report: &Report) -> BTreeMap<Rule, usize> {
    Rule::ALL
        .into_iter()
        .map(|r| (r, report.count(r)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Nothing of 3.1 is left anywhere in a normalised document.
fn assert_converted(v: &Value, ptr: &str) {
    match v {
        Value::Object(m) => {
            if ptr.is_empty() {
                assert_eq!(m["openapi"], "3.0.3");
                for key in ["webhooks", "jsonSchemaDialect"] {
                    assert!(!m.contains_key(key), "{key} left");
                }
                assert!(v.pointer("/info/license/identifier").is_none());
            }
            match m.get("type") {
                Some(Value::String(t)) => assert_ne!(t, "null", "null type at {ptr}"),
                Some(Value::Array(_)) => panic!("type array at {ptr}"),
                _ => {}
            }
            for key in [
                "const",
                "$schema",
                "contentMediaType",
                "contentEncoding",
                "prefixItems",
            ] {
                // `properties` may name a field `const`; a schema may not
                // hold the keyword.
                if !ptr.ends_with("/properties") {
                    assert!(!m.contains_key(key), "{key} at {ptr}");
                }
            }
            if !ptr.ends_with("/properties") {
                assert!(
                    !matches!(m.get("examples"), Some(Value::Array(_))),
                    "schema examples at {ptr}"
                );
            }
            for key in ["exclusiveMinimum", "exclusiveMaximum"] {
                if let Some(b) = m.get(key)
                    && !ptr.ends_with("/properties")
                {
                    assert!(b.is_boolean(), "numeric {key} at {ptr}");
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(members)) = m.get(key) {
                    assert!(
                        !members
                            .iter()
                            .any(|s| s.get("type") == Some(&json!("null"))),
                        "null member at {ptr}/{key}"
                    );
                }
            }
            for (k, child) in m {
                assert_converted(child, &format!("{ptr}/{k}"));
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                assert_converted(child, &format!("{ptr}/{i}"));
            }
        }
        _ => {}
    }
}

fn has_line(shape: &str, line: &str) -> bool {
    shape.lines().any(|l| l.trim() == line)
}

#[test]
fn nullable_values() {
    let Run {
        normalized: n,
        report,
        shape,
    } = run("nullable.json");
    assert_eq!(
        counts(&report),
        BTreeMap::from([
            (Rule::Version, 1),
            (Rule::NullableUnion, 14),
            (Rule::NullableTypeArray, 4),
            (Rule::OptionalParameter, 5),
            (Rule::SharedTitle, 5),
        ])
    );
    let pet = &n["components"]["schemas"]["Pet"]["properties"];
    // anyOf [$ref, null]: the reference moves into allOf, siblings stay.
    assert_eq!(
        pet["owner"],
        json!({"description": "Who adopted the pet, once someone has.",
               "allOf": [{"$ref": "#/components/schemas/Owner"}], "nullable": true})
    );
    // anyOf [inline, null]: the member is merged, FastAPI's default kept.
    assert_eq!(
        pet["nickname"],
        json!({"title": "Nickname", "default": null, "type": "string", "maxLength": 20, "nullable": true})
    );
    // oneOf with a null member, and type arrays in either order.
    assert_eq!(
        pet["kind"],
        json!({"allOf": [{"$ref": "#/components/schemas/Kind"}], "nullable": true})
    );
    assert_eq!(pet["weight"]["nullable"], true);
    assert_eq!(
        pet["age"],
        json!({"type": "integer", "title": "Age", "nullable": true})
    );
    assert_eq!(pet["tags"]["type"], "array");
    // A union of several non-null members keeps them, nullable.
    assert_eq!(
        pet["chip"]["anyOf"],
        json!([{"type": "string"}, {"type": "integer"}])
    );
    // Nested: under additionalProperties and items.
    assert_eq!(
        pet["labels"]["additionalProperties"],
        json!({"type": "string", "nullable": true})
    );
    // Optional parameters lose `nullable`: absent already means null.
    let params = &n["paths"]["/pets"]["get"]["parameters"];
    assert_eq!(
        params[0]["schema"],
        json!({"allOf": [{"$ref": "#/components/schemas/Kind"}]})
    );
    assert_eq!(
        params[3]["schema"],
        json!({"type": "string", "title": "X-Trace-Id"})
    );

    for line in [
        "pub owner: Option<Owner>,",
        "pub nickname: Option<Nickname>,",
        "pub kind: Option<Kind>,",
        "pub age: Option<i64>,",
        "pub weight: Option<f64>,",
        "pub tags: Option<Vec<String>>,",
        "#[serde(default)] pub previous_owners: Vec<Option<Owner>>,",
        "#[serde(default)] pub labels: HashMap<String, Option<String>>,",
        // One Option, not two: an optional parameter is not nullable too.
        "pub fn kind<V>(mut self, value: V) -> Self where V: TryInto<types::Kind>;",
        "pub fn x_trace_id<V>(mut self, value: V) -> Self where V: TryInto<String>;",
        "pub fn dry_run<V>(mut self, value: V) -> Self where V: TryInto<bool>;",
    ] {
        assert!(has_line(&shape, line), "missing `{line}` in\n{shape}");
    }
}

#[test]
fn json_schema_keywords() {
    let Run {
        normalized: n,
        report,
        shape,
    } = run("keywords.json");
    assert_eq!(
        counts(&report),
        BTreeMap::from([
            (Rule::Version, 1),
            (Rule::Const, 2),
            (Rule::Examples, 2),
            (Rule::ExclusiveBound, 5),
            // jsonSchemaDialect, webhooks, license identifier, $schema,
            // contentMediaType, contentEncoding.
            (Rule::DroppedKeyword, 6),
            // The two `kind` properties are both titled "Kind".
            (Rule::SharedTitle, 2),
        ])
    );
    let s = &n["components"]["schemas"];
    // `contentMediaType` with `contentEncoding: base64` is 3.0's `byte`.
    assert_eq!(
        s["Shape"]["properties"]["thumbnail"],
        json!({"type": "string", "format": "byte", "title": "Thumbnail"})
    );
    assert_eq!(
        s["Circle"]["properties"]["kind"],
        json!({"type": "string", "enum": ["circle"]})
    );
    assert_eq!(
        s["Circle"]["properties"]["radius"],
        json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "title": "Radius", "example": 1.5})
    );
    assert_eq!(
        s["Square"]["properties"]["side"],
        json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true,
               "maximum": 1000, "exclusiveMaximum": true, "title": "Side"})
    );
    // Where an inclusive bound is stricter, it wins over the exclusive one.
    assert_eq!(
        s["Shape"]["properties"]["priority"],
        json!({"type": "integer", "minimum": 5, "title": "Priority"})
    );
    assert_eq!(s["Shape"]["properties"]["name"]["example"], "unit circle");
    assert_eq!(n["info"]["license"], json!({"name": "MIT"}));

    // Each `kind` has its own type: before the shared titles were dropped,
    // the generator typed Square.kind as Circle's one-value enum.
    for line in [
        "pub kind: CircleKind,",
        "pub kind: SquareKind,",
        "#[serde(rename = \"square\")] Square,",
        "Circle(Circle),",
        "Square(Square),",
    ] {
        assert!(has_line(&shape, line), "missing `{line}` in\n{shape}");
    }
}

#[test]
fn several_response_shapes() {
    let Run {
        normalized: n,
        report,
        shape,
    } = run("responses.json");
    assert_eq!(
        counts(&report),
        BTreeMap::from([
            (Rule::Version, 1),
            (Rule::NullableUnion, 2),
            // read_item: ErrorResponse, HTTPValidationError and Problem;
            // upsert_item: a text/plain 500 beside the JSON 422.
            (Rule::ErrorSchemas, 2),
            // upsert_item: Item and ItemCreated; create_item: Item and an
            // inline object.
            (Rule::SuccessSchemas, 2),
            // read_item 200 (JSON + HTML), export 200 (CSV + JSON),
            // upsert_item's body (JSON + form), read_item 410 (problem+json).
            (Rule::MediaTypes, 4),
            (Rule::DefaultResponse, 1),
            (Rule::SharedTitle, 8),
            // read_job: 202 beside 2XX.
            (Rule::RangeResponse, 1),
        ])
    );
    let paths = &n["paths"];
    let read_job = paths["/jobs/{job_id}"]["get"]["responses"]
        .as_object()
        .expect("read_job's responses");
    assert!(read_job.contains_key("200") && read_job.contains_key("2XX"));
    assert!(!read_job.contains_key("202"));
    let schema = |op: &str, code: &str| {
        paths
            .pointer(&format!(
                "{op}/responses/{code}/content/application~1json/schema"
            ))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let errors =
        json!({"$ref": "#/components/schemas/ErrorResponseOrHTTPValidationErrorOrProblem"});
    for code in ["404", "410", "422"] {
        assert_eq!(schema("/~1items~1{item_id}/get", code), errors, "{code}");
    }
    assert_eq!(
        n["components"]["schemas"]["ErrorResponseOrHTTPValidationErrorOrProblem"]["oneOf"],
        json!([{"$ref": "#/components/schemas/ErrorResponse"},
               {"$ref": "#/components/schemas/HTTPValidationError"},
               {"$ref": "#/components/schemas/Problem"}])
    );
    let created = json!({"$ref": "#/components/schemas/ItemOrItemCreated"});
    assert_eq!(schema("/~1items~1{item_id}/put", "200"), created);
    assert_eq!(schema("/~1items~1{item_id}/put", "201"), created);
    // Bodiless 503 and text/plain 500 read as the JSON error.
    let validation = json!({"$ref": "#/components/schemas/HTTPValidationError"});
    for code in ["500", "503"] {
        assert_eq!(
            schema("/~1items~1{item_id}/put", code),
            validation,
            "{code}"
        );
    }
    assert!(
        paths
            .pointer(
                "/~1items~1{item_id}/put/requestBody/content/application~1x-www-form-urlencoded"
            )
            .is_none()
    );
    // Inline success members get a name from the operation.
    assert_eq!(
        schema("/~1items/post", "202"),
        json!({"$ref": "#/components/schemas/CreateItemItemsPostSuccess"})
    );
    assert!(paths.pointer("/~1items/post/responses/default").is_none());
    assert_eq!(schema("/~1health/get", "200"), json!({}));

    for line in [
        "pub async fn send(self) -> Result<ResponseValue<types::Item>, Error<types::ErrorResponseOrHttpValidationErrorOrProblem>>;",
        "pub async fn send(self) -> Result<ResponseValue<types::ItemOrItemCreated>, Error<types::HttpValidationError>>;",
        "pub async fn send(self) -> Result<ResponseValue<types::CreateItemItemsPostSuccess>, Error<types::HttpValidationError>>;",
        "pub async fn send(self) -> Result<ResponseValue<Vec<types::Item>>, Error<()>>;",
        "pub async fn send(self) -> Result<ResponseValue<serde_json::Value>, Error<()>>;",
    ] {
        assert!(has_line(&shape, line), "missing `{line}` in\n{shape}");
    }
}

/// Form bodies: a multipart upload with an encoding object, one beside a
/// JSON body (a second method), a urlencoded form with a file (sent as
/// multipart), a urlencoded form, and a file-or-reference field.
#[test]
fn form_bodies() {
    let Run {
        normalized: n,
        report,
        shape,
    } = run("forms.json");
    assert_eq!(
        counts(&report),
        BTreeMap::from([
            (Rule::Version, 1),
            // contentMediaType (read as `format: binary` first).
            (Rule::DroppedKeyword, 1),
            (Rule::FormOperation, 4),
            // /images, and /images/{image_id}/variations.
            (Rule::MultipartTwin, 2),
            (Rule::FormAsMultipart, 1),
            // `model`: any string, or a known one.
            (Rule::OpenEnum, 1),
        ]),
        "{report}"
    );
    assert_eq!(report.dropped_operations(), 0);
    assert_eq!(report.operations(), 6);
    let form = |path: &str| n["paths"][path]["post"][xtask::normalize::FORM_EXTENSION].clone();
    assert_eq!(
        form("/files"),
        json!({"mediaType": "multipart/form-data",
            "files": [{"name": "file", "field": "file", "multiple": false, "required": true,
                "contentType": "text/csv", "description": "The file to upload."}],
            "parts": [
                {"name": "metadata", "json": true, "delimiter": null, "contentType": "application/json"},
                {"name": "tags", "json": false, "delimiter": ",", "contentType": null}]})
    );
    // The JSON body stays the operation's; the form is a second method.
    assert!(form("/images").is_null());
    let twin = &n["paths"]["/images#multipart"]["post"];
    assert_eq!(twin["operationId"], "edit_image_multipart");
    assert_eq!(
        twin[xtask::normalize::FORM_EXTENSION]["files"],
        json!([{"name": "image", "field": "image", "multiple": true, "required": true},
               {"name": "mask", "field": "mask", "multiple": false, "required": false}])
    );
    assert_eq!(form("/audio")["mediaType"], "multipart/form-data");
    assert_eq!(
        form("/token"),
        json!({"mediaType": "application/x-www-form-urlencoded", "files": [], "parts": []})
    );
    assert_eq!(form("/videos")["files"][0]["field"], "video_file");
    assert_eq!(
        n["paths"]["/images/{image_id}/variations#multipart"]["post"]
            [xtask::normalize::FORM_EXTENSION]["twinOf"],
        "vary_image"
    );
    assert_eq!(
        n["components"]["schemas"]["Body_upload_file"]["properties"]["model"],
        json!({"type": "string", "description": "Any model, or a known one."})
    );

    for line in [
        "pub fn upload_file(&self) -> builder::UploadFile<'_>;",
        "pub fn edit_image(&self) -> builder::EditImage<'_>;",
        "pub fn edit_image_multipart(&self) -> builder::EditImageMultipart<'_>;",
        "pub fn vary_image_multipart(&self) -> builder::VaryImageMultipart<'_>;",
        "pub fn file<V>(mut self, value: V) -> Self where V: Into<super::forms::FilePart>;",
        "pub fn image<I>(mut self, files: I) -> Self where I: IntoIterator, I::Item: Into<super::forms::FilePart>;",
        "pub fn mask<V>(mut self, value: V) -> Self where V: Into<super::forms::FilePart>;",
        "pub fn video_file<V>(mut self, value: V) -> Self where V: Into<super::forms::FilePart>;",
        "pub struct FilePart {",
        "pub use super::forms::FilePart;",
    ] {
        assert!(has_line(&shape, line), "missing `{line}` in\n{shape}");
    }
}

#[test]
fn every_rule_is_covered_by_a_fixture() {
    let mut covered = BTreeMap::new();
    for name in [
        "nullable.json",
        "keywords.json",
        "responses.json",
        "upstream.json",
        "forms.json",
        "classes/dangling_ref.json",
        "classes/parameter_names.json",
    ] {
        for (rule, n) in counts(&run(name).report) {
            *covered.entry(rule).or_insert(0) += n;
        }
    }
    let missing: Vec<Rule> = Rule::ALL
        .into_iter()
        .filter(|r| !covered.contains_key(r))
        .collect();
    assert!(missing.is_empty(), "no fixture exercises {missing:?}");
}

#[test]
fn every_fixture_is_exercised() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "forms.json",
            "keywords.json",
            "nullable.json",
            "refused.json",
            "responses.json",
            "upstream.json"
        ],
        "a new fixture needs a test here"
    );
}

#[test]
fn unconvertible_document_is_refused_with_pointers() {
    let doc = fixture("refused.json");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        (normalize(&doc), xtask::generate::generate(&doc).err())
    }));
    let Ok((normalized, generated)) = outcome else {
        panic!("refusing a document must not panic");
    };
    let err: NormalizeError = normalized.expect_err("refused.json must be refused");
    let pointers: Vec<&str> = err.problems.iter().map(|p| p.pointer.as_str()).collect();
    // A reference that points at nothing degrades (see `classes.rs`); one
    // into another file is refused.
    assert_eq!(
        pointers,
        ["/components/schemas/Point/properties/owner/$ref"]
    );
    assert!(generated.is_some(), "generate must fail too");
    insta::assert_snapshot!("refused", err.to_string());
}

/// The constructs that made real published documents (FastAPI, Stainless,
/// utoipa, Fern) fail, one or two of each: converted where that is
/// faithful, dropped with a named warning where the generator cannot
/// express them.
#[test]
fn constructs_of_real_upstream_documents() {
    let Run {
        normalized: n,
        report,
        shape,
    } = run("upstream.json");
    assert_eq!(
        counts(&report),
        BTreeMap::from([
            (Rule::Version, 1),
            (Rule::NullableUnion, 4),
            // 404 (a `$ref` response, resolved) and 422 become one union.
            (Rule::ErrorSchemas, 1),
            // audio/mpeg + audio/wav; JSON + text/event-stream.
            (Rule::MediaTypes, 2),
            // propertyNames.
            (Rule::DroppedKeyword, 1),
            (Rule::OptionalParameter, 1),
            // The multipart upload, generated by the xtask.
            (Rule::FormOperation, 1),
            // A cookie, a deepObject, a `content` parameter, an optional model.
            (Rule::DroppedParameter, 4),
            // `since`: a date-time or a date.
            (Rule::ParameterAsString, 1),
            // `flag`'s "false".
            (Rule::DroppedDefault, 1),
            // `id` (a uuid or any string) and `mode` (any string or "auto").
            (Rule::OpenEnum, 2),
            (Rule::Tuple, 2),
            // `type: null` and `true`.
            (Rule::UntypedValue, 2),
            (Rule::TypeArrayUnion, 1),
            // /things had none; /items/ clashed with /items.
            (Rule::OperationId, 2),
            // One rewritten, one dropped.
            (Rule::Pattern, 2),
            (Rule::EnumAsString, 1),
            (Rule::UnionOrder, 1),
            (Rule::AnyOfAndOneOf, 1),
            (Rule::RenamedSchema, 1),
            // info.version, a response description, `required: "true"`,
            // a clashing property, a clashing undeclared required name.
            (Rule::Repaired, 5),
            (Rule::MixedSuccess, 1),
            // Stop (a union) and Location (an object).
            (Rule::NullableComponent, 2),
            (Rule::InlineNameClash, 1),
            (Rule::StreamingResponse, 2),
        ]),
        "{report}"
    );
    let warned: Vec<String> = report.warnings().iter().map(|w| w.place.clone()).collect();
    for place in [
        "GET /search (search) cookie parameter `session`",
        "GET /search (search) query parameter `filter`",
        "GET /search (search) query parameter `where`",
        "GET /search (search) query parameter `page`",
        "GET /search (search) response 204",
        "GET /things (get_things) response 200",
        "POST /chat (chat) response 200",
        "/components/schemas/Record/properties/flag/default",
        "/components/schemas/Record/properties/pair/prefixItems",
        "/components/schemas/Record/properties/loose/pattern",
        "/components/schemas/Record/properties/sep/enum",
        "/components/schemas/Credentials/properties/clientId",
    ] {
        assert!(
            warned.iter().any(|w| w == place),
            "no warning for {place}: {warned:?}"
        );
    }
    assert_eq!(report.dropped_operations(), 0);

    let paths = &n["paths"];
    // The upload: no JSON body (its one field is a file), the file described.
    let upload = &paths["/upload"]["post"];
    assert!(upload.get("requestBody").is_none(), "{upload}");
    assert_eq!(
        upload[xtask::normalize::FORM_EXTENSION]["files"],
        json!([{"name": "file", "field": "file", "multiple": false, "required": false}])
    );
    assert_eq!(n["info"]["version"], "");
    let search = &paths["/search"]["get"];
    assert_eq!(
        search["parameters"],
        json!([{"name": "since", "in": "query", "schema": {"type": "string"}},
               {"name": "id", "in": "query", "required": true, "schema": {"type": "string"}}])
    );
    assert!(search["responses"].get("204").is_none());
    assert_eq!(
        search["responses"]["404"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/InvalidOrMissing"})
    );
    assert_eq!(paths["/things"]["get"]["operationId"], "get_things");
    assert_eq!(
        paths["/things"]["get"]["responses"]["200"]["description"],
        ""
    );
    assert_eq!(
        paths["/items/"]["get"]["operationId"],
        "list_items_items__get_2"
    );
    assert_eq!(
        paths["/speech"]["post"]["responses"]["200"]["content"],
        json!({"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}})
    );

    let s = &n["components"]["schemas"];
    assert!(s.get("Default").is_none());
    let r = &s["Record"]["properties"];
    assert_eq!(s["Record"]["required"], json!(["id"]));
    assert!(r["flag"].get("default").is_none());
    // Any string, or "auto": a string, and its default renders.
    assert_eq!(r["mode"], json!({"type": "string", "default": "auto"}));
    assert_eq!(r["size"]["items"], json!({"type": "integer"}));
    assert_eq!(
        r["pair"]["items"],
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    );
    assert_eq!(r["gone"], json!({"nullable": true}));
    assert_eq!(r["anything"], json!({}));
    assert_eq!(
        r["files"],
        json!({"type": "array", "items": {"type": "string"}, "nullable": true})
    );
    assert_eq!(
        r["label"],
        json!({"nullable": true, "anyOf": [{"type": "string", "maxLength": 10}, {"type": "integer", "minimum": 0}]})
    );
    assert_eq!(r["code"]["pattern"], "^(?<prefix>[a-z]+)-[0-9]+$");
    assert_eq!(r["loose"], json!({"type": "string"}));
    assert_eq!(r["sep"], json!({"type": "string"}));
    assert_eq!(
        r["value"]["anyOf"],
        json!([{"type": "integer"}, {"description": "anything"}])
    );
    assert_eq!(
        r["both"],
        json!({"allOf": [{"anyOf": [{"type": "string"}, {"type": "integer"}]},
                         {"oneOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]}]})
    );
    assert!(r["scores"].get("propertyNames").is_none());
    assert_eq!(r["owner"]["title"], "RecordOwnerProperty");
    assert_eq!(
        s["Stop"],
        json!({"allOf": [{"$ref": "#/components/schemas/StopVariants"}], "nullable": true})
    );
    assert_eq!(
        s["Location"],
        json!({"allOf": [{"$ref": "#/components/schemas/LocationValue"}], "nullable": true})
    );
    assert_eq!(
        s["LocationValue"]["properties"]["city"],
        json!({"type": "string"})
    );
    assert_eq!(
        s["StopVariants"],
        json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
    );
    assert_eq!(
        s["Credentials"]["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["client_id".to_owned(), "client_secret".to_owned()])
    );

    for line in [
        "pub fn search(&self) -> builder::Search<'_>;",
        "pub fn get_things(&self) -> builder::GetThings<'_>;",
        "pub fn list_items_items_get(&self) -> builder::ListItemsItemsGet<'_>;",
        "pub fn list_items_items_get_2(&self) -> builder::ListItemsItemsGet2<'_>;",
        "pub struct DefaultSchema {",
        "pub struct Stop(pub Option<StopVariants>);",
        "pub struct Location(pub Option<LocationValue>);",
        "pub owner: Option<RecordOwnerProperty>,",
        "pub size: Option<[i64; 2usize]>,",
        "pub gone: Option<serde_json::Value>,",
        "pub fn upload_file(&self) -> builder::UploadFile<'_>;",
        "pub fn file<V>(mut self, value: V) -> Self where V: Into<super::forms::FilePart>;",
        "pub async fn send(self) -> Result<ResponseValue<types::DefaultSchema>, Error<()>>;",
    ] {
        assert!(has_line(&shape, line), "missing `{line}` in\n{shape}");
    }
}
