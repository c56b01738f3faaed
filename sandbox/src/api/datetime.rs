//! `datetime::*`: the only clock scripts can read, and conversions of ISO-8601 UTC text.
//!
//! Date-times are strings like `2018-03-24T10:20:48.123Z` (always UTC, milliseconds);
//! dates like `2018-03-24Z` (TDG's Date format). Input accepts RFC 3339 with any offset,
//! a date-time without offset (taken as UTC) and a date (midnight UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use rhai::{EvalAltResult, ImmutableString, Module, FLOAT, INT};

use crate::error::api_error;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Format as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn format(dt: &DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parse an ISO-8601 date-time or date; `None` if it is neither.
pub(crate) fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    let date = text.strip_suffix('Z').unwrap_or(text);
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|naive| naive.and_utc())
}

fn parse_arg(function: &str, text: &str) -> Res<DateTime<Utc>> {
    parse(text).ok_or_else(|| {
        api_error(format!(
            "datetime::{function}: {text:?} is not an ISO-8601 date-time \
             (expected e.g. 2018-03-24T10:20:48.123Z)"
        ))
    })
}

fn add(function: &str, iso: &str, millis: Option<i64>) -> Res<ImmutableString> {
    let dt = parse_arg(function, iso)?;
    millis
        .and_then(TimeDelta::try_milliseconds)
        .and_then(|delta| dt.checked_add_signed(delta))
        .map(|t| format(&t).into())
        .ok_or_else(|| api_error(format!("datetime::{function}: result out of range for {iso:?}")))
}

/// Build the `datetime` module.
pub(crate) fn module() -> Module {
    let mut m = Module::new();
    m.set_native_fn("now", || Ok(ImmutableString::from(format(&Utc::now()))));
    m.set_native_fn("now_millis", || Ok(Utc::now().timestamp_millis() as INT));
    m.set_native_fn("to_millis", |iso: ImmutableString| -> Res<INT> {
        Ok(parse_arg("to_millis", &iso)?.timestamp_millis())
    });
    m.set_native_fn("from_millis", |millis: INT| -> Res<ImmutableString> {
        DateTime::<Utc>::from_timestamp_millis(millis)
            .map(|dt| format(&dt).into())
            .ok_or_else(|| api_error(format!("datetime::from_millis: {millis} is out of range")))
    });
    m.set_native_fn("add_seconds", |iso: ImmutableString, seconds: INT| {
        add("add_seconds", &iso, seconds.checked_mul(1000))
    });
    m.set_native_fn("add_seconds", |iso: ImmutableString, seconds: FLOAT| {
        let millis = (seconds * 1000.0).round();
        let millis = (millis.is_finite() && millis.abs() < 9.0e15).then_some(millis as i64);
        add("add_seconds", &iso, millis)
    });
    m.set_native_fn("date", |iso: ImmutableString| -> Res<ImmutableString> {
        Ok(parse_arg("date", &iso)?.format("%Y-%m-%dZ").to_string().into())
    });
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms_to_the_same_instant() {
        let expected = parse("2018-03-24T10:20:48.123Z").unwrap();
        assert_eq!(format(&expected), "2018-03-24T10:20:48.123Z");
        assert_eq!(parse("2018-03-24T13:20:48.123+03:00"), Some(expected));
        assert_eq!(parse("2018-03-24T10:20:48.123"), Some(expected));
        assert_eq!(format(&parse("2018-03-24Z").unwrap()), "2018-03-24T00:00:00.000Z");
        assert_eq!(format(&parse("2018-03-24").unwrap()), "2018-03-24T00:00:00.000Z");
        assert_eq!(parse("24.03.2018"), None);
        assert_eq!(parse(""), None);
    }
}
