//! Filtering repair-queue listings by text and time.

use super::Entry;
use chrono::{DateTime, NaiveDate, Utc};

/// What to list.
#[derive(Debug, Clone)]
pub struct ListFilter {
    /// Case-insensitive text found in the id, status, source, routing key, error, stage,
    /// function or payload.
    pub text: Option<String>,
    /// Entries created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries created at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// Page size.
    pub first: usize,
    /// Continue after this entry id (newest-first order).
    pub after: Option<String>,
}

impl Default for ListFilter {
    fn default() -> Self {
        ListFilter { text: None, from: None, to: None, first: 100, after: None }
    }
}

/// Parse a time bound: RFC 3339 (`2026-11-21T10:00:00Z`) or a date (`2026-11-21`, midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = text.trim_end_matches('Z');
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("\"{text}\" is not an ISO-8601 time (e.g. 2026-11-21T10:00:00Z)"))
}

impl ListFilter {
    /// Whether `entry` passes the filter (the cursor and page size aside).
    pub fn matches(&self, entry: &Entry) -> bool {
        if self.from.is_some() || self.to.is_some() {
            let Ok(created) = DateTime::parse_from_rfc3339(&entry.created_at) else {
                return false;
            };
            let created = created.with_timezone(&Utc);
            if self.from.is_some_and(|from| created < from) || self.to.is_some_and(|to| created > to) {
                return false;
            }
        }
        let Some(text) = self.text.as_deref().filter(|t| !t.is_empty()) else {
            return true;
        };
        let needle = text.to_lowercase();
        let found = |s: &str| s.to_lowercase().contains(&needle);
        found(&entry.id)
            || found(match entry.status {
                super::Status::New => "New",
                super::Status::InProgress => "In Progress",
                super::Status::Reworked => "Reworked",
            })
            || found(&entry.source)
            || found(&entry.input)
            || [&entry.routing_key, &entry.error, &entry.stage, &entry.function]
                .iter()
                .any(|f| f.as_deref().is_some_and(found))
            || found(&entry.payload.to_string())
    }
}
