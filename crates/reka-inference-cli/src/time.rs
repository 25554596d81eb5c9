//! Durations (`90s`, `5m`, `1h`) and points in time (RFC 3339, a date, or
//! an age such as `2d`) as the command line writes them.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::exit::Failure;

/// Reads a duration: a number and a unit (`ms`, `s`, `m`, `h`, `d`); a bare
/// number is seconds. Fractions are allowed (`1.5s`).
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration, Failure> {
    duration(text).ok_or_else(|| {
        Failure::usage(format!(
            "{flag} {text:?}: not a duration; use a number and a unit, like 500ms, 90s, 5m, 1h or 2d"
        ))
    })
}

fn duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let unit_secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(n * unit_secs).ok()
}

/// Reads a point in time: RFC 3339, a date (midnight UTC), or an age
/// (`30m` = 30 minutes before `now`).
pub fn parse_time(flag: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Failure> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(midnight) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc());
    }
    if let Some(age) = duration(t).and_then(|d| chrono::Duration::from_std(d).ok())
        && let Some(at) = now.checked_sub_signed(age)
    {
        return Ok(at);
    }
    Err(Failure::usage(format!(
        "{flag} {text:?}: not a time; use RFC 3339 (2025-01-31T12:00:00Z), a date (2025-01-31) \
         or an age like 30m, 1h, 2d"
    )))
}

/// A short human form of a duration: `850ms`, `4.2s`, `3m 05s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{}ms", d.as_millis())
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("--timeout", "90s").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_duration("--timeout", "5m").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_duration("--timeout", "1h").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_duration("--timeout", "1ms").unwrap(),
            Duration::from_millis(1)
        );
        assert_eq!(
            parse_duration("--timeout", "1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_duration("--timeout", "30").unwrap(),
            Duration::from_secs(30)
        );
        for bad in ["", "abc", "5 parsecs", "-1s", "1.2.3s", "s"] {
            let e = parse_duration("--timeout", bad).unwrap_err();
            assert!(e.message.starts_with("--timeout"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn times() {
        let now = DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = |s| parse_time("--since", s, now).unwrap().to_rfc3339();
        assert_eq!(t("2025-01-31T12:00:00+01:00"), "2025-01-31T11:00:00+00:00");
        assert_eq!(t("2025-01-31"), "2025-01-31T00:00:00+00:00");
        assert_eq!(t("1h"), "2025-06-01T11:00:00+00:00");
        assert_eq!(t("30m"), "2025-06-01T11:30:00+00:00");
        assert_eq!(t("2d"), "2025-05-30T12:00:00+00:00");
        let e = parse_time("--until", "yesterday", now).unwrap_err();
        assert!(e.message.starts_with("--until \"yesterday\": not a time"));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(4200)), "4.2s");
        assert_eq!(human(Duration::from_secs(185)), "3m 05s");
    }
}
