//! Cron schedules as TDG writes them (tasks, archivation): six fields with seconds first
//! (`"0 */5 * * * *"`), or seven with a year, and days of the week numbered 0-6 from Sunday
//! (TDG 2.16.1.10; 7 is Sunday too, as most crons read it). The `cron` crate numbers days of the week 1-7 from Sunday, so the numbers of
//! that field are shifted before it parses; names (`MON-FRI`) pass as they are.

use std::str::FromStr;

/// Parse `text` (TDG's numbering of days of the week). The error says what is wrong.
pub fn parse(text: &str) -> Result<cron::Schedule, String> {
    let mut fields: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if let Some(days) = fields.get_mut(5) {
        *days = days_for_the_crate(days)?;
    }
    cron::Schedule::from_str(&fields.join(" ")).map_err(|e| e.to_string())
}

/// A day-of-week field with every number `n` (0-6, Sunday 0) written as `n + 1`; a step (`/2`)
/// stays as it is.
fn days_for_the_crate(field: &str) -> Result<String, String> {
    let item = |item: &str| -> Result<String, String> {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        let base = base
            .split('-')
            .map(|part| match part.parse::<u8>() {
                Ok(n @ 0..=6) => Ok((n + 1).to_string()),
                // Sunday again, as most crons read it.
                Ok(7) => Ok("1".to_string()),
                Ok(n) => Err(format!("day of the week {n}: days are 0-6, Sunday 0 (or names: SUN-SAT)")),
                Err(_) => Ok(part.to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join("-");
        Ok(match step {
            Some(step) => format!("{base}/{step}"),
            None => base,
        })
    };
    Ok(field.split(',').map(item).collect::<Result<Vec<_>, _>>()?.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Datelike, Utc, Weekday};

    /// The weekdays of the next `n` fires of `schedule` after Sunday 2026-01-04 00:00:01.
    fn days(schedule: &str, n: usize) -> Vec<Weekday> {
        let from: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-01-04T00:00:01Z").unwrap().with_timezone(&Utc);
        parse(schedule).unwrap().after(&from).take(n).map(|t| t.weekday()).collect()
    }

    #[test]
    fn days_of_the_week_count_from_sunday_0_as_in_tdg() {
        use Weekday::*;
        assert_eq!(days("0 0 3 * * 1-5", 5), [Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(days("0 0 3 * * 0", 2), [Sun, Sun]);
        assert_eq!(days("0 0 3 * * 6,0", 2), [Sun, Sat]);
        assert_eq!(days("0 0 3 * * */2", 4), [Sun, Tue, Thu, Sat]);
        assert_eq!(days("0 0 3 * * 1-5/2", 3), [Mon, Wed, Fri]);
        assert_eq!(days("0 0 3 * * MON-FRI", 2), [Mon, Tue]);
        assert_eq!(days("0 */5 * * * *", 1), [Sun]);
        assert_eq!(days("0 0 3 * * 7", 1), [Sun], "7 is Sunday too");
        assert!(parse("0 0 3 * * 8").unwrap_err().contains("days are 0-6"));
        assert!(parse("not cron").is_err());
    }
}
