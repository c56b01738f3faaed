//! `datetime::*`: the only clock scripts have, as ISO-8601 UTC strings (`2018-03-24T10:20:48.123Z`).

use super::{bad_argument, ApiResult};
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use rhai::{Module, INT};

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse(text: &str) -> ApiResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| bad_argument(format!("datetime: \"{text}\" is not an ISO-8601 date or time")))
}

fn from_millis(ms: INT) -> ApiResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| bad_argument(format!("datetime: {ms} ms is out of range")))
}

/// The `datetime` module.
pub(crate) fn module() -> Module {
    let mut m = Module::new();
    m.set_native_fn("now", || Ok(iso(Utc::now())));
    m.set_native_fn("now_millis", || Ok(Utc::now().timestamp_millis()));
    m.set_native_fn("to_millis", |text: &str| Ok(parse(text)?.timestamp_millis()));
    m.set_native_fn("from_millis", |ms: INT| Ok(iso(from_millis(ms)?)));
    m.set_native_fn("add_seconds", |text: &str, seconds: INT| -> ApiResult<String> {
        let t = parse(text)?;
        let shifted = chrono::Duration::try_seconds(seconds)
            .and_then(|d| t.checked_add_signed(d))
            .ok_or_else(|| bad_argument(format!("datetime::add_seconds: {text} + {seconds} s is out of range")))?;
        Ok(iso(shifted))
    });
    m.set_native_fn("date", |text: &str| Ok(format!("{}Z", parse(text)?.format("%Y-%m-%d"))));
    m
}
