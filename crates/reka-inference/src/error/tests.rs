use super::*;

#[test]
fn a_proxy_answers_the_callers_fault_as_4xx_and_the_upstreams_as_5xx() {
    let api = |status: u16| {
        Error::Api(Box::new(ApiError::from_parts(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            Bytes::new(),
        )))
    };
    for (error, want) in [
        (api(422), 422),
        (api(400), 400),
        (api(404), 404),
        (api(401), 502),
        (api(403), 502),
        (api(500), 502),
        (api(503), 502),
        (Error::InvalidInput("x".into()), 400),
        (Error::Config("x".into()), 500),
        (
            Error::PriceUnknown {
                endpoint: "m/c".into(),
                why: "unpriced".into(),
            },
            500,
        ),
        (
            Error::RequestTimeout {
                operation: "get_status".into(),
                waited: Duration::from_secs(1),
                by_deadline: true,
            },
            504,
        ),
        (
            Error::SubmitOutcomeUnknown {
                idempotency_key: "k".into(),
                source: Box::new(api(503)),
            },
            502,
        ),
        (
            Error::JobCancelled {
                request_id: "r".into(),
            },
            409,
        ),
    ] {
        assert_eq!(error.http_status().as_u16(), want, "{error:?}");
    }
}

fn parse(status: u16, body: &str) -> ApiError {
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", "rid-1".parse().unwrap());
    ApiError::from_parts(
        StatusCode::from_u16(status).unwrap(),
        &headers,
        Bytes::from(body.to_owned()),
    )
}

#[test]
fn reads_the_documented_envelope() {
    let e = parse(
        400,
        r#"{"error":{"type":"validation_error","message":"bad model","param":"model","details":[{"field":"model"}]}}"#,
    );
    assert_eq!(e.kind, "validation_error");
    assert_eq!(e.message, "bad model");
    assert_eq!(e.param.as_deref(), Some("model"));
    assert_eq!(e.details.len(), 1);
    assert_eq!(e.x_request_id.as_deref(), Some("rid-1"));
}

#[test]
fn reads_fastapi_422_into_the_same_shape() {
    let e = parse(
        422,
        r#"{"detail":[{"loc":["body","input"],"msg":"Field required","type":"missing"}]}"#,
    );
    assert_eq!(e.kind, "validation_error");
    assert_eq!(e.param.as_deref(), Some("input"));
    assert_eq!(e.message, "input: Field required");
    assert_eq!(e.details.len(), 1);
    assert!(e.raw_body.starts_with(b"{\"detail\""));
}

#[test]
fn keeps_a_non_json_body_as_the_message() {
    let e = parse(502, "<html>Bad Gateway</html>");
    assert_eq!(e.kind, "server_error");
    assert_eq!(e.message, "<html>Bad Gateway</html>");
    assert!(Error::Api(Box::new(e)).is_retryable());
}

#[test]
fn reads_code_where_type_is_missing() {
    let e = parse(
        429,
        r#"{"error":{"code":"rate_limit_exceeded","message":"slow down"}}"#,
    );
    assert_eq!(e.kind, "rate_limit_exceeded");
    assert_eq!(e.message, "slow down");
}

/// Found by the property tests: an empty `type` left the kind empty.
#[test]
fn an_empty_type_falls_back_to_the_status() {
    let e = parse(400, r#"{"error":{"type":"","message":null}}"#);
    assert_eq!(e.kind, "validation_error");
    assert_eq!(e.message, "Bad Request");
}

#[test]
fn a_huge_message_is_cut_for_display_but_kept_whole() {
    let body = format!(
        r#"{{"error":{{"type":"x","message":"{}"}}}}"#,
        "m".repeat(100_000)
    );
    let e = parse(400, &body);
    assert_eq!(e.message.len(), 100_000);
    assert!(e.to_string().len() < 2100, "{}", e.to_string().len());
    assert!(format!("{e:?}").len() < 4500);
    assert_eq!(e.raw_body.len(), body.len());
}

#[test]
fn retryable_statuses_match_the_policy() {
    for (status, retryable) in [(400, false), (404, false), (500, false), (503, true)] {
        let e = Error::Api(Box::new(parse(status, "{}")));
        assert_eq!(e.is_retryable(), retryable, "{status}");
    }
}
