//! Exit codes by error class, and the one error type of the commands.
//!
//! Every failure becomes a [`Failure`]: its [`ExitClass`] decides the exit
//! code, and it carries what the server said (status, error type, field,
//! `X-Request-ID`) so that it can be shown as a line of text or as JSON.

use reka_inference::Error;
use serde_json::{Value, json};

/// What went wrong, as the exit code tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// Anything else (a file that cannot be written, an unexpected answer).
    Other,
    /// The command line is wrong: unknown flag, malformed endpoint, bad
    /// JSON, unreadable file, bad time or duration. Nothing was sent.
    Usage,
    /// No API key, or the key was refused (401).
    Authentication,
    /// The key may not do this (403).
    Permission,
    /// No such request, endpoint or route (404).
    NotFound,
    /// The server refused the input (400, 409, 413, 422): unknown model,
    /// missing field, idempotency key reused with another input.
    Validation,
    /// The key's quota is used up (429).
    RateLimit,
    /// The server failed (5xx) or sent something unreadable.
    Server,
    /// A wait reached its --timeout; the job keeps running.
    Timeout,
    /// The server could not be reached.
    Connection,
    /// The job finished with status FAILED.
    JobFailed,
    /// The job was cancelled.
    JobCancelled,
    /// `batch`: some lines did not succeed (failed, refused, invalid, over
    /// the budget, or left running for the next run).
    BatchIncomplete,
    /// Ctrl-C.
    Interrupted,
}

impl ExitClass {
    /// Every class, in the order of the table.
    #[cfg(test)]
    pub const ALL: [ExitClass; 14] = [
        ExitClass::Other,
        ExitClass::Usage,
        ExitClass::Authentication,
        ExitClass::Permission,
        ExitClass::NotFound,
        ExitClass::Validation,
        ExitClass::RateLimit,
        ExitClass::Server,
        ExitClass::Timeout,
        ExitClass::Connection,
        ExitClass::JobFailed,
        ExitClass::JobCancelled,
        ExitClass::BatchIncomplete,
        ExitClass::Interrupted,
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::Other => 1,
            ExitClass::Usage => 2,
            ExitClass::Authentication => 3,
            ExitClass::Permission => 4,
            ExitClass::NotFound => 5,
            ExitClass::Validation => 6,
            ExitClass::RateLimit => 7,
            ExitClass::Server => 8,
            ExitClass::Timeout => 9,
            ExitClass::Connection => 10,
            ExitClass::JobFailed => 11,
            ExitClass::JobCancelled => 12,
            ExitClass::BatchIncomplete => 13,
            ExitClass::Interrupted => 130,
        }
    }

    /// The `kind` of a JSON error.
    pub fn name(self) -> &'static str {
        match self {
            ExitClass::Other => "other",
            ExitClass::Usage => "usage",
            ExitClass::Authentication => "authentication",
            ExitClass::Permission => "permission",
            ExitClass::NotFound => "not_found",
            ExitClass::Validation => "validation",
            ExitClass::RateLimit => "rate_limit",
            ExitClass::Server => "server",
            ExitClass::Timeout => "timeout",
            ExitClass::Connection => "connection",
            ExitClass::JobFailed => "job_failed",
            ExitClass::JobCancelled => "job_cancelled",
            ExitClass::BatchIncomplete => "batch_incomplete",
            ExitClass::Interrupted => "interrupted",
        }
    }

    /// The class of an HTTP error status.
    pub fn of_status(status: u16) -> ExitClass {
        match status {
            401 => ExitClass::Authentication,
            403 => ExitClass::Permission,
            404 => ExitClass::NotFound,
            400 | 409 | 413 | 422 => ExitClass::Validation,
            408 => ExitClass::Timeout,
            429 => ExitClass::RateLimit,
            500..=599 => ExitClass::Server,
            _ => ExitClass::Other,
        }
    }
}

/// The exit-code table shown by `--help` (and in the README). A test checks
/// it against [`ExitClass::code`].
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
    0  success
    1  other error (a file that cannot be written, an unexpected answer)
    2  usage: bad flag, malformed endpoint, bad --input JSON, unreadable file,
       bad time or duration (nothing was sent)
    3  authentication: no API key, or the key was refused (401)
    4  permission: the key may not do this (403)
    5  not found: no such job or endpoint (404)
    6  validation: the server refused the input (400, 409, 413, 422)
    7  rate limit: the key's quota is used up (429)
    8  server: the server failed (5xx) or answered something unreadable
    9  timeout: --timeout reached (a wait leaves the job running), or no answer in time
   10  connection: the server could not be reached
   11  job failed: the job ended with status FAILED
   12  job cancelled: the job was cancelled
   13  batch incomplete: some lines failed, were refused or invalid, were over
       the budget, or are left for the next run (see DIR/results.jsonl)
  130  interrupted by Ctrl-C";

/// A command's failure: exit class, message, and what the server said.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Decides the exit code.
    pub class: ExitClass,
    /// One line saying what went wrong.
    pub message: String,
    /// The job involved, if any.
    pub request_id: Option<String>,
    /// What to do next, when there is something to say.
    pub hint: Option<String>,
    /// What the server answered, for errors that come from an answer.
    pub answer: Option<Box<Answer>>,
}

/// The parts of an error answer worth showing.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The HTTP status.
    pub status: Option<u16>,
    /// The server's error `type` (`not_found_error`, ...).
    pub api_type: Option<String>,
    /// The field the server complained about.
    pub param: Option<String>,
    /// The server's per-field details.
    pub details: Vec<Value>,
    /// The `X-Request-ID` of the answer (quote it to Reka support).
    pub x_request_id: Option<String>,
}

impl Failure {
    /// A failure of `class` with a message and nothing else.
    pub fn new(class: ExitClass, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
            request_id: None,
            hint: None,
            answer: None,
        }
    }

    /// A usage error: the command line is wrong, nothing was sent.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(ExitClass::Usage, message)
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Names the job involved, unless one is named already.
    pub fn about_job(mut self, id: &str) -> Failure {
        if self.request_id.is_none() {
            self.request_id = Some(id.to_owned());
        }
        self
    }

    /// The process exit code.
    pub fn code(&self) -> u8 {
        self.class.code()
    }

    /// The JSON form printed on stderr with `--json`.
    pub fn to_json(&self) -> Value {
        let answer = self.answer.as_deref().cloned().unwrap_or_default();
        json!({
            "error": {
                "kind": self.class.name(),
                "exit_code": self.class.code(),
                "message": self.message,
                "status": answer.status,
                "type": answer.api_type,
                "param": answer.param,
                "details": answer.details,
                "request_id": self.request_id,
                "x_request_id": answer.x_request_id,
                "hint": self.hint,
            }
        })
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let message = e.to_string();
        if let Error::SubmitOutcomeUnknown {
            idempotency_key,
            source,
        } = e
        {
            let mut f = Failure::from(*source);
            f.message = message;
            f.hint = Some(format!(
                "the job may have been created; submit again with --idempotency-key {idempotency_key} \
                 to get that job instead of a second one"
            ));
            return f;
        }
        let mut f = match &e {
            Error::Api(api) => {
                let mut f = Failure::new(ExitClass::of_status(api.status.as_u16()), message);
                // The status decides; the error type refines an unusual one.
                if f.class == ExitClass::Other {
                    f.class = match api.kind.as_str() {
                        "authentication_error" => ExitClass::Authentication,
                        "permission_error" => ExitClass::Permission,
                        "not_found_error" => ExitClass::NotFound,
                        "validation_error" => ExitClass::Validation,
                        _ => ExitClass::Other,
                    };
                }
                f
            }
            Error::RateLimited { .. } => Failure::new(ExitClass::RateLimit, message),
            Error::Timeout { request_id, .. } => Failure::new(ExitClass::Timeout, message)
                .with_hint(format!(
                    "the job keeps running; resume with: reka-inference wait {request_id}"
                )),
            Error::JobFailed { .. } => Failure::new(ExitClass::JobFailed, message),
            Error::JobCancelled { .. } => Failure::new(ExitClass::JobCancelled, message),
            Error::Transport(t) if t.is_timeout() => Failure::new(
                ExitClass::Timeout,
                format!("the server stopped answering: {}", transport_text(t)),
            ),
            Error::Transport(t) if t.is_connect() => Failure::new(
                ExitClass::Connection,
                format!("could not reach the server: {}", transport_text(t)),
            ),
            Error::Transport(t) => Failure::new(
                ExitClass::Connection,
                format!("the connection to the server failed: {}", transport_text(t)),
            ),
            Error::RequestTimeout { .. } => Failure::new(ExitClass::Timeout, message),
            Error::Decode { .. } | Error::BodyTooLarge { .. } => {
                Failure::new(ExitClass::Server, message)
            }
            Error::InvalidInput(_) | Error::Config(_) | Error::PriceUnknown { .. } => {
                Failure::new(ExitClass::Usage, message)
            }
            _ => Failure::new(ExitClass::Other, message),
        };
        if let Some(api) = e.api_error() {
            f.answer = Some(Box::new(Answer {
                status: Some(api.status.as_u16()),
                api_type: Some(api.kind.clone()),
                param: api.param.clone(),
                details: api.details.clone(),
                x_request_id: api.x_request_id.clone(),
            }));
        } else if let Some(status) = e.status() {
            f.answer = Some(Box::new(Answer {
                status: Some(status.as_u16()),
                ..Answer::default()
            }));
        }
        if let Some(id) = e.request_id() {
            f.request_id = Some(id.to_owned());
        }
        if f.class == ExitClass::Authentication {
            f.hint = Some("check --api-key or REKA_API_KEY".into());
        }
        f
    }
}

/// A transport error with its causes, which say what actually happened
/// (`connection refused`, `dns error`): reqwest's own text does not.
fn transport_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_table_matches_the_codes() {
        for class in ExitClass::ALL {
            let code = class.code();
            let line = EXIT_CODES_HELP
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{code} ")))
                .unwrap_or_else(|| panic!("no line for {code}"));
            let words = class.name().replace('_', " ");
            assert!(
                class == ExitClass::Other
                    || class == ExitClass::Interrupted
                    || line.contains(&words),
                "{line:?} does not say {words:?}"
            );
        }
        let codes: std::collections::HashSet<u8> =
            ExitClass::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes.len(), ExitClass::ALL.len(), "codes are distinct");
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(ExitClass::of_status(401), ExitClass::Authentication);
        assert_eq!(ExitClass::of_status(403), ExitClass::Permission);
        assert_eq!(ExitClass::of_status(404), ExitClass::NotFound);
        assert_eq!(ExitClass::of_status(400), ExitClass::Validation);
        assert_eq!(ExitClass::of_status(429), ExitClass::RateLimit);
        assert_eq!(ExitClass::of_status(503), ExitClass::Server);
        assert_eq!(ExitClass::of_status(418), ExitClass::Other);
    }

    #[test]
    fn json_errors_have_every_key() {
        let f = Failure::usage("bad").about_job("r1");
        let v = f.to_json();
        assert_eq!(v["error"]["kind"], "usage");
        assert_eq!(v["error"]["exit_code"], 2);
        assert_eq!(v["error"]["request_id"], "r1");
        assert!(v["error"].get("status").is_some());
    }
}
