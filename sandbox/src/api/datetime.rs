//! `datetime::*`: the only clock scripts can read, and conversions of ISO-8601 UTC text.
//!
//! Date-times are strings like `2018-03-24T10:20:48.123Z` (always UTC, milliseconds);
//! dates like `2018-03-24Z` (TDG's Date format). Input accepts RFC 3339 with any offset,
//! a date-time without offset (taken as UTC) and a date (midnight UTC).

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use rhai::{EvalAltResult, ImmutableString, Module, FLOAT, INT};
use std::fmt::Write;

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

/// What a pattern is turned into chrono's strftime for: reading text (an offset is read in any
/// of its forms) or writing an instant (always UTC: an offset is written as ICU writes zero).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Use {
    Parse,
    Format,
}

/// A date-time pattern as chrono's strftime: TDG's (ICU, as its icu-date module takes:
/// `dd.MM.yyyy HH:mm:ss.SSS`, text in single quotes) unless it holds a `%`, when it is strftime
/// already.
fn strftime_of(function: &str, pattern: &str, usage: Use) -> Res<String> {
    let fail = |what: String| api_error(format!("datetime::{function}: {what} in the format {pattern:?}"));
    let out = if pattern.contains('%') {
        pattern.to_string()
    } else {
        let chars: Vec<char> = pattern.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // 'text' is literal; '' is a quote.
                let mut j = i + 1;
                if chars.get(j) == Some(&'\'') {
                    out.push('\'');
                    i += 2;
                    continue;
                }
                while j < chars.len() {
                    match (chars[j], chars.get(j + 1)) {
                        ('\'', Some('\'')) => {
                            out.push('\'');
                            j += 2;
                        }
                        ('\'', _) => break,
                        (other, _) => {
                            out.push(other);
                            j += 1;
                        }
                    }
                }
                if j == chars.len() {
                    return Err(fail("an unclosed quote".into()));
                }
                i = j + 1;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                out.push(c);
                i += 1;
                continue;
            }
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            let item = match (c, run) {
                ('y', 2) => "%y",
                ('y', _) => "%Y",
                ('M', 1) => "%-m",
                ('M', 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', 1) => "%-d",
                ('d', _) => "%d",
                ('H', 1) => "%-H",
                ('H', _) => "%H",
                ('h', 1) => "%-I",
                ('h', _) => "%I",
                ('m', 1) => "%-M",
                ('m', _) => "%M",
                ('s', 1) => "%-S",
                ('s', _) => "%S",
                ('S', 3) => "%3f",
                ('S', 6) => "%6f",
                ('S', 9) => "%9f",
                ('a', _) => "%p",
                ('E', 4) => "%A",
                ('E', _) => "%a",
                ('D', _) => "%j",
                // Offsets: read in any form (`Z`, `+03`, `+0300`, `+03:00`); written for UTC as
                // ICU writes a zero offset in each form.
                ('Z', 1..=3 | 5) | ('X' | 'x', 1..=5) if usage == Use::Parse => "%#z",
                ('X', 1..=5) | ('Z', 5) => "Z",
                ('x', 1) => "+00",
                ('Z', 1..=3) | ('x', 2 | 4) => "+0000",
                ('x', 3 | 5) => "+00:00",
                _ => return Err(fail(format!("the pattern letter {:?} x{run} is not supported", c))),
            };
            out.push_str(item);
            i += run;
        }
        out
    };
    if StrftimeItems::new(&out).any(|item| matches!(item, Item::Error)) {
        return Err(fail("an unknown % directive".into()));
    }
    Ok(out)
}

/// `text` read with `pattern` (a date, a date-time, with or without an offset: without one,
/// UTC), as nanoseconds since the epoch.
fn parse_with(function: &str, text: &str, pattern: &str) -> Res<INT> {
    let format = strftime_of(function, pattern, Use::Parse)?;
    let utc = DateTime::parse_from_str(text, &format)
        .map(|dt| dt.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, &format).map(|naive| naive.and_utc()))
        .or_else(|e| {
            NaiveDate::parse_from_str(text, &format)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|naive| naive.and_utc())
                .ok_or(e)
        })
        .map_err(|e| api_error(format!("datetime::{function}: {text:?} does not match the format {pattern:?}: {e}")))?;
    utc.timestamp_nanos_opt()
        .ok_or_else(|| api_error(format!("datetime::{function}: {text:?} is out of the nanosecond range (1677-2262)")))
}

/// The instant `nanos` after the epoch written with `pattern` (in UTC).
fn format_with(function: &str, nanos: i64, pattern: &str) -> Res<ImmutableString> {
    let format = strftime_of(function, pattern, Use::Format)?;
    let dt = DateTime::<Utc>::from_timestamp_nanos(nanos);
    let mut out = String::new();
    write!(out, "{}", dt.format(&format))
        .map_err(|_| api_error(format!("datetime::{function}: the format {pattern:?} cannot write a date-time")))?;
    Ok(out.into())
}

fn millis_to_nanos(function: &str, millis: INT) -> Res<i64> {
    millis.checked_mul(1_000_000).ok_or_else(|| {
        api_error(format!("datetime::{function}: {millis} ms is out of the nanosecond range (1677-2262)"))
    })
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
    m.set_native_fn("now_nsec", || -> Res<INT> {
        Utc::now().timestamp_nanos_opt().ok_or_else(|| api_error("datetime::now_nsec: the clock is out of range"))
    });
    m.set_native_fn("to_nsec", |iso: ImmutableString| -> Res<INT> {
        parse_arg("to_nsec", &iso)?
            .timestamp_nanos_opt()
            .ok_or_else(|| api_error(format!("datetime::to_nsec: {iso:?} is out of the nanosecond range (1677-2262)")))
    });
    m.set_native_fn("from_nsec", |nanos: INT| -> Res<ImmutableString> {
        Ok(DateTime::<Utc>::from_timestamp_nanos(nanos).format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string().into())
    });
    for name in ["parse", "custom_datetime_str_to_nsec"] {
        m.set_native_fn(name, move |text: ImmutableString, pattern: ImmutableString| parse_with(name, &text, &pattern));
    }
    for name in ["format", "millisec_to_formatted_datetime"] {
        m.set_native_fn(name, move |millis: INT, pattern: ImmutableString| {
            format_with(name, millis_to_nanos(name, millis)?, &pattern)
        });
    }
    m.set_native_fn("format_nsec", |nanos: INT, pattern: ImmutableString| format_with("format_nsec", nanos, &pattern));
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

    #[test]
    fn tdg_patterns_become_strftime() {
        let f = |p: &str| strftime_of("t", p, Use::Parse).map_err(|e| e.to_string());
        let w = |p: &str| strftime_of("t", p, Use::Format).map_err(|e| e.to_string());
        assert_eq!(f("dd.MM.yyyy HH:mm:ss.SSS").unwrap(), "%d.%m.%Y %H:%M:%S.%3f");
        assert_eq!(f("yyyy-MM-dd'T'HH:mm:ssXXX").unwrap(), "%Y-%m-%dT%H:%M:%S%#z");
        assert_eq!(w("yyyy-MM-dd'T'HH:mm:ssXXX").unwrap(), "%Y-%m-%dT%H:%M:%SZ", "UTC written as ICU writes zero");
        assert_eq!(w("HH:mm Z|xx|xxx|x|ZZZZZ").unwrap(), "%H:%M +0000|+0000|+00:00|+00|Z");
        assert_eq!(f("d MMM yy, h:mm a").unwrap(), "%-d %b %y, %-I:%M %p");
        assert_eq!(f("EEEE, MMMM d 'at' H 'o''clock'").unwrap(), "%A, %B %-d at %-H o'clock");
        assert_eq!(f("yyyyMMdd'T'HHmm").unwrap(), "%Y%m%dT%H%M");
        assert_eq!(f("%Y-%m-%d").unwrap(), "%Y-%m-%d", "strftime as it is");
        assert!(f("yyyy-qq").unwrap_err().contains("the pattern letter 'q' x2 is not supported"));
        assert!(f("SS").unwrap_err().contains("'S' x2"));
        assert!(f("'open").unwrap_err().contains("an unclosed quote"));
        assert!(f("%Y %Q").unwrap_err().contains("an unknown % directive"));
    }
}
