//! The lifecycle status of a request, readable whatever the server sends.
//!
//! The spec's `RequestStatus` enum lists the five states known today. A
//! server that adds one (say `EXPIRED`) must not break any call, and a
//! client must never mistake it for a state it knows: so the generated enum
//! is replaced by this type, which keeps an unknown value as its string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a request is in its lifecycle.
///
/// `IN_QUEUE -> IN_PROGRESS -> COMPLETED | FAILED`, and
/// `IN_QUEUE | IN_PROGRESS -> CANCELLED`; terminal states never change.
///
/// ```
/// use reka_inference_api::RequestStatus;
///
/// let s: RequestStatus = serde_json::from_str("\"EXPIRED\"").unwrap();
/// assert_eq!(s, RequestStatus::Unknown("EXPIRED".into()));
/// assert_eq!(s.is_terminal(), None);
///
/// // The American spelling is read as the same state.
/// let c: RequestStatus = serde_json::from_str("\"CANCELED\"").unwrap();
/// assert_eq!(c, RequestStatus::Cancelled);
/// assert_eq!(serde_json::to_string(&c).unwrap(), "\"CANCELLED\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestStatus {
    /// Waiting for a worker (`IN_QUEUE`).
    InQueue,
    /// Running (`IN_PROGRESS`).
    InProgress,
    /// Finished with an output (`COMPLETED`).
    Completed,
    /// Finished with an error (`FAILED`).
    Failed,
    /// Stopped by a cancel request (`CANCELLED`, also read from `CANCELED`).
    Cancelled,
    /// A value this version does not know, kept as sent.
    Unknown(String),
}

impl RequestStatus {
    /// The wire form of the status.
    pub fn as_str(&self) -> &str {
        match self {
            RequestStatus::InQueue => "IN_QUEUE",
            RequestStatus::InProgress => "IN_PROGRESS",
            RequestStatus::Completed => "COMPLETED",
            RequestStatus::Failed => "FAILED",
            RequestStatus::Cancelled => "CANCELLED",
            RequestStatus::Unknown(s) => s,
        }
    }

    /// Whether the request has finished: `Some(true)` for `COMPLETED`,
    /// `FAILED` and `CANCELLED`, `Some(false)` for the queued and running
    /// states, and `None` for a status this version does not know.
    pub fn is_terminal(&self) -> Option<bool> {
        match self {
            RequestStatus::Completed | RequestStatus::Failed | RequestStatus::Cancelled => {
                Some(true)
            }
            RequestStatus::InQueue | RequestStatus::InProgress => Some(false),
            RequestStatus::Unknown(_) => None,
        }
    }

    /// Whether this is one of the statuses this version knows.
    pub fn is_known(&self) -> bool {
        !matches!(self, RequestStatus::Unknown(_))
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestStatus {
    type Err = std::convert::Infallible;

    /// Never fails: a value this version does not know becomes
    /// [`RequestStatus::Unknown`], kept as sent. Case and surrounding
    /// white space do not matter (`completed` is `COMPLETED`): a service,
    /// a proxy or a user may write either.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = [
            ("IN_QUEUE", RequestStatus::InQueue),
            ("IN_PROGRESS", RequestStatus::InProgress),
            ("COMPLETED", RequestStatus::Completed),
            ("FAILED", RequestStatus::Failed),
            ("CANCELLED", RequestStatus::Cancelled),
            ("CANCELED", RequestStatus::Cancelled),
        ];
        let word = s.trim();
        Ok(known
            .into_iter()
            .find(|(wire, _)| wire.eq_ignore_ascii_case(word))
            .map_or_else(
                || RequestStatus::Unknown(s.to_owned()),
                |(_, status)| status,
            ))
    }
}

impl From<&str> for RequestStatus {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(status) => status,
            Err(never) => match never {},
        }
    }
}

impl Serialize for RequestStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RequestStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(RequestStatus::from(s.as_ref()))
    }
}
