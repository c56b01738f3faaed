//! TDG's string logical types: Date, Time, DateTime (ISO 8601, normalised to UTC with `Z`) and
//! Decimal (an exact decimal number kept as a string).
//!
//! Each `normalize_*` returns the canonical form or `None` when the text is not a valid value.
//! The storage can use `parse_*` to build order-preserving keys.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};

/// Parses `1980-01-01`, `1980-01-01Z`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let body = s.strip_suffix('Z').unwrap_or(s);
    if !has_date_shape(body) || body.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(body, "%Y-%m-%d").ok()
}

/// Canonical Date: `1980-01-01Z`.
pub fn normalize_date(s: &str) -> Option<String> {
    parse_date(s).map(|d| format!("{}Z", d.format("%Y-%m-%d")))
}

/// Parses `10:20:48`, `10:20:48Z`, `10:20:48.5+03:00` into a UTC time of day.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let (body, offset_secs) = split_offset(s)?;
    if !has_time_shape(body) {
        return None;
    }
    let t = NaiveTime::parse_from_str(body, "%H:%M:%S%.f").ok()?;
    let (utc, _) = t.overflowing_sub_signed(chrono::TimeDelta::seconds(i64::from(offset_secs)));
    Some(utc)
}

/// Canonical Time: `07:20:48Z` (UTC; fractional seconds with 3, 6 or 9 digits when present).
pub fn normalize_time(s: &str) -> Option<String> {
    parse_time(s).map(|t| format!("{}Z", t.format("%H:%M:%S%.f")))
}

/// Parses `2018-03-24T10:20:48Z`, `2018-03-24T10:20:48.123+03:00` or, without an offset,
/// `2018-03-24T10:20:48` (taken as UTC).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if s.len() < 19 || !has_date_shape(s.get(..10)?) {
        return None;
    }
    if let Ok(dt) = DateTime::<FixedOffset>::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(naive.and_utc())
}

/// Canonical DateTime: `2018-03-24T07:20:48Z` (UTC; fraction with 3, 6 or 9 digits when present).
pub fn normalize_datetime(s: &str) -> Option<String> {
    parse_datetime(s).map(|dt| dt.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Canonical Decimal: `[-]digits[.digits]` (a leading `+` is dropped).
pub fn normalize_decimal(s: &str) -> Option<String> {
    let (body, digits) = match s.strip_prefix('+') {
        // One sign at most: `+-5` is no number.
        Some(body) => (body, body),
        None => (s, s.strip_prefix('-').unwrap_or(s)),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    (all_digits(int) && frac.is_none_or(all_digits)).then(|| body.to_string())
}

fn has_date_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

fn has_time_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2] == b':'
        && b[3..5].iter().all(u8::is_ascii_digit)
        && b[5] == b':'
        && b[6..8].iter().all(u8::is_ascii_digit)
        && (b.len() == 8 || (b[8] == b'.' && b.len() > 9 && b[9..].iter().all(u8::is_ascii_digit)))
}

/// Splits a time text into its body and UTC offset in seconds (`Z` or `±HH:MM`; none = UTC).
fn split_offset(s: &str) -> Option<(&str, i32)> {
    if let Some(body) = s.strip_suffix('Z') {
        return Some((body, 0));
    }
    let split = s.len().saturating_sub(6);
    if let (Some(body), Some(off)) = (s.get(..split), s.get(split..)) {
        let ob = off.as_bytes();
        if ob.len() == 6 && (ob[0] == b'+' || ob[0] == b'-') && ob[3] == b':' {
            let hours: i32 = off.get(1..3)?.parse().ok()?;
            let minutes: i32 = off.get(4..6)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = hours * 3600 + minutes * 60;
            return Some((body, if ob[0] == b'-' { -secs } else { secs }));
        }
    }
    Some((s, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_takes_one_sign_at_most() {
        assert_eq!(normalize_decimal("+5.10").as_deref(), Some("5.10"));
        assert_eq!(normalize_decimal("-5").as_deref(), Some("-5"));
        assert_eq!(normalize_decimal("+-5"), None);
        assert_eq!(normalize_decimal("--5"), None);
        assert_eq!(normalize_decimal("-+5"), None);
        assert_eq!(normalize_decimal("5."), None);
    }

    #[test]
    fn datetime_is_normalised_to_utc_z() {
        assert_eq!(normalize_datetime("2018-03-24T10:20:48Z").as_deref(), Some("2018-03-24T10:20:48Z"));
        assert_eq!(normalize_datetime("2018-03-24T10:20:48+03:00").as_deref(), Some("2018-03-24T07:20:48Z"));
        assert_eq!(normalize_datetime("2018-03-24T10:20:48.5Z").as_deref(), Some("2018-03-24T10:20:48.500Z"));
        assert_eq!(normalize_datetime("2018-03-24T10:20:48").as_deref(), Some("2018-03-24T10:20:48Z"));
        assert_eq!(normalize_datetime("2018-13-45T10:20:48Z"), None);
        assert_eq!(normalize_datetime("2018-13-45"), None);
        assert_eq!(normalize_datetime("yesterday"), None);
    }

    #[test]
    fn date_accepts_tdg_z_suffix_and_plain_form() {
        assert_eq!(normalize_date("1980-01-01").as_deref(), Some("1980-01-01Z"));
        assert_eq!(normalize_date("1980-01-01Z").as_deref(), Some("1980-01-01Z"));
        assert_eq!(normalize_date("1980-02-30"), None);
        assert_eq!(normalize_date("1980-1-1"), None);
        assert_eq!(normalize_date("1980-01-01T00:00:00Z"), None);
    }

    #[test]
    fn time_is_normalised_to_utc() {
        assert_eq!(normalize_time("10:20:48Z").as_deref(), Some("10:20:48Z"));
        assert_eq!(normalize_time("10:20:48").as_deref(), Some("10:20:48Z"));
        assert_eq!(normalize_time("01:00:00+03:00").as_deref(), Some("22:00:00Z"));
        assert_eq!(normalize_time("10:20:48.25Z").as_deref(), Some("10:20:48.250Z"));
        assert_eq!(normalize_time("25:00:00Z"), None);
        assert_eq!(normalize_time("10:20"), None);
        assert_eq!(normalize_time("10:20:4€€"), None);
        assert_eq!(normalize_time("€"), None);
        assert_eq!(normalize_datetime("2018-03-24T10:20:48€€"), None);
    }

    #[test]
    fn decimal_accepts_plain_decimal_numbers_only() {
        assert_eq!(normalize_decimal("12.50").as_deref(), Some("12.50"));
        assert_eq!(normalize_decimal("+3").as_deref(), Some("3"));
        assert_eq!(normalize_decimal("-0.001").as_deref(), Some("-0.001"));
        assert_eq!(normalize_decimal("1e5"), None);
        assert_eq!(normalize_decimal("1."), None);
        assert_eq!(normalize_decimal(""), None);
        assert_eq!(normalize_decimal("--1"), None);
    }
}
