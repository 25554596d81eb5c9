//! Query-string parsing with the API's own 400s instead of framework rejections.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::http::error::ApiError;

/// The decoded `name=value` pairs of a raw query string, in order.
pub(crate) fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of `name`, if present.
pub(crate) fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A boolean in FastAPI's spellings (`true/false`, `1/0`, `yes/no`, `on/off`).
pub(crate) fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ApiError::invalid(
            name,
            &["query", name],
            "bool_parsing",
            format!("{name} must be true or false"),
        )),
    }
}

/// An integer in `min..=max`.
pub(crate) fn integer(name: &str, value: &str, min: u64, max: u64) -> Result<u64, ApiError> {
    let n: u64 = value.trim().parse().map_err(|_| {
        ApiError::invalid(
            name,
            &["query", name],
            "int_parsing",
            format!("{name} must be an integer between {min} and {max}"),
        )
    })?;
    if n < min || n > max {
        return Err(ApiError::invalid(
            name,
            &["query", name],
            "range",
            format!("{name} must be between {min} and {max}, got {n}"),
        ));
    }
    Ok(n)
}

/// A non-negative integer with no upper bound (the spec sets none): digits
/// beyond `u64` saturate, which for an offset means "past the end".
pub(crate) fn unbounded(name: &str, value: &str) -> Result<u64, ApiError> {
    let v = value.trim();
    let v = v.strip_prefix('+').unwrap_or(v);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            name,
            &["query", name],
            "int_parsing",
            format!("{name} must be a non-negative integer"),
        ));
    }
    Ok(v.parse().unwrap_or(u64::MAX))
}

/// A date-time: RFC 3339 (a `+` turned into a space by form decoding is
/// restored), a naive date-time taken as UTC, or a date at midnight UTC.
pub(crate) fn datetime(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    let v = value.trim();
    let parsed = DateTime::parse_from_rfc3339(v)
        .or_else(|_| DateTime::parse_from_rfc3339(&v.replace(' ', "+")))
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|n| n.and_utc())
        });
    parsed.ok_or_else(|| {
        ApiError::invalid(
            name,
            &["query", name],
            "datetime_parsing",
            format!(
                "{name} must be an RFC 3339 date-time such as 2025-01-31T12:00:00Z, got {value:?}"
            ),
        )
    })
}
