//! Parked work: what waits for an operator in one of three places — the repair queue (objects
//! that failed), the output repair queue (deliveries that could not be sent) and the failed jobs.
//! One implementation of how such items are kept, found, filtered and taken out again: a
//! [`Shelf`] (a keyspace and a key prefix; each item under its UUIDv7 id, as JSON) and one
//! [`ParkedFilter`] (text, time, page). What retrying means stays with each queue: it is what the
//! queue stages when it takes an item off its shelf ([`Shelf::take`]).

use crate::storage::codec::prefix_successor;
use crate::storage::{Db, Keyspace, ReadView, StorageError, WriteTx};
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::ops::Bound;

/// An item of parked work.
pub trait Parked: Serialize + DeserializeOwned {
    /// Its id (a UUID: its key on the shelf).
    fn id(&self) -> &str;
    /// When it was created (RFC 3339), for `from` / `to`.
    fn created_at(&self) -> &str;
    /// Whether `needle` (lower case) is in one of its fields an operator searches.
    fn contains(&self, needle: &str) -> bool;
}

/// Whether lower-cased `text` contains `needle` (lower case).
pub fn found(text: &str, needle: &str) -> bool {
    text.to_lowercase().contains(needle)
}

/// Which parked items an operator means.
#[derive(Debug, Clone)]
pub struct ParkedFilter {
    /// Case-insensitive text in the item's searched fields.
    pub text: Option<String>,
    /// Created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Created at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// Page size (listings by page).
    pub first: usize,
    /// Continue after this id (newest-first pages).
    pub after: Option<String>,
}

impl Default for ParkedFilter {
    fn default() -> Self {
        ParkedFilter { text: None, from: None, to: None, first: 100, after: None }
    }
}

impl ParkedFilter {
    /// Every item whose fields contain `text` (all of them when `None`).
    pub fn text(text: Option<&str>) -> ParkedFilter {
        ParkedFilter { text: text.map(str::to_string), ..ParkedFilter::default() }
    }

    /// Whether `item` passes the filter (the cursor and page size aside).
    pub fn matches<T: Parked>(&self, item: &T) -> bool {
        if self.from.is_some() || self.to.is_some() {
            let Ok(created) = DateTime::parse_from_rfc3339(item.created_at()) else {
                return false;
            };
            let created = created.with_timezone(&Utc);
            if self.from.is_some_and(|from| created < from) || self.to.is_some_and(|to| created > to) {
                return false;
            }
        }
        match self.text.as_deref().filter(|t| !t.is_empty()) {
            Some(text) => item.contains(&text.to_lowercase()),
            None => true,
        }
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

/// A queue of parked work as operators act on it (through the repair-queue actor): where its
/// items are, and what deleting some of them means, in one commit. Retrying is each queue's
/// own: it puts an item back to work.
pub trait ParkedQueue {
    /// Its items.
    type Item: Parked;
    /// The database and the shelf its items are on.
    fn shelf(&self) -> (&Db, Shelf);
    /// Delete the items `ids` in one commit; an item being worked on (its claim is its stored
    /// status) is left.
    fn delete_ids(&self, ids: &[&str]) -> Result<Taken, crate::repair::RepairError>;
}

/// Where one queue keeps its parked items: `keyspace`, keys `prefix ++ uuid`.
#[derive(Debug, Clone, Copy)]
pub struct Shelf {
    keyspace: Keyspace,
    prefix: &'static [u8],
    /// What the items are called in errors (`repair-queue entry`).
    what: &'static str,
}

impl Shelf {
    /// The shelf at `prefix` in `keyspace`.
    pub const fn new(keyspace: Keyspace, prefix: &'static [u8], what: &'static str) -> Shelf {
        Shelf { keyspace, prefix, what }
    }

    /// The key of item `id`; `None` when `id` is not a UUID.
    pub fn key(&self, id: &str) -> Option<Vec<u8>> {
        let uuid = uuid::Uuid::parse_str(id).ok()?;
        let mut key = self.prefix.to_vec();
        key.extend_from_slice(uuid.as_bytes());
        Some(key)
    }

    fn decode<T: Parked>(&self, bytes: &[u8]) -> Result<T, StorageError> {
        crate::storage::from_stored(bytes).map_err(|e| StorageError::Corrupt(format!("{}: {e}", self.what)))
    }

    /// Put `item` on the shelf (in `tx`).
    pub fn put_in<T: Parked>(&self, tx: &mut WriteTx<'_>, item: &T) -> Result<(), StorageError> {
        let key =
            self.key(item.id()).ok_or_else(|| StorageError::Corrupt(format!("{} id {}", self.what, item.id())))?;
        let bytes = serde_json::to_vec(item).map_err(|e| StorageError::Corrupt(format!("{}: {e}", self.what)))?;
        tx.insert(self.keyspace, &key, bytes);
        Ok(())
    }

    /// Item `id`, if it is on the shelf (read through `view`: the database or a transaction).
    pub fn get<T: Parked, V: ReadView + ?Sized>(&self, view: &V, id: &str) -> Result<Option<T>, StorageError> {
        let Some(key) = self.key(id) else { return Ok(None) };
        view.get(self.keyspace, &key)?.map(|bytes| self.decode(&bytes)).transpose()
    }

    /// One page of the items matching `filter`, newest first, and the cursor of the next page
    /// (the id to continue after) when there may be more. A cursor that is not an id is refused.
    pub fn page<T: Parked>(&self, db: &Db, filter: &ParkedFilter) -> Result<(Vec<T>, Option<String>), String> {
        let cursor = match &filter.after {
            Some(cursor) => Some(self.key(cursor).ok_or_else(|| format!("bad cursor \"{cursor}\""))?),
            None => None,
        };
        let end = prefix_successor(self.prefix);
        let upper = match (&cursor, &end) {
            (Some(cursor), _) => Bound::Excluded(&cursor[..]),
            (None, Some(end)) => Bound::Excluded(&end[..]),
            (None, None) => Bound::Unbounded,
        };
        let lower = if self.prefix.is_empty() { Bound::Unbounded } else { Bound::Included(self.prefix) };
        let mut items = Vec::new();
        for item in db.range(self.keyspace, lower, upper, true) {
            let (key, bytes) = item.map_err(|e| e.to_string())?;
            if !key.starts_with(self.prefix) {
                continue;
            }
            let item: T = self.decode(&bytes).map_err(|e| e.to_string())?;
            if filter.matches(&item) {
                items.push(item);
                if items.len() >= filter.first {
                    break;
                }
            }
        }
        let cursor = if items.len() >= filter.first { items.last().map(|i| i.id().to_string()) } else { None };
        Ok((items, cursor))
    }

    /// Every item matching `filter` (all pages), oldest first.
    pub fn all<T: Parked>(&self, db: &Db, filter: &ParkedFilter) -> Result<Vec<T>, StorageError> {
        let mut out = Vec::new();
        for item in db.scan_prefix(self.keyspace, self.prefix) {
            let (_, bytes) = item?;
            let item: T = self.decode(&bytes)?;
            if filter.matches(&item) {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Take the items `ids` off the shelf in one commit, each with what `then` stages for it
    /// (moving it elsewhere, a done marker); how many were there. The check inside the write
    /// makes two concurrent takes take an item once.
    pub fn take<T: Parked, E: From<StorageError>>(
        &self,
        db: &Db,
        ids: &[&str],
        then: impl FnMut(&mut WriteTx<'_>, T) -> Result<(), E>,
    ) -> Result<usize, E> {
        Ok(self.take_if(db, ids, |_: &T| true, then)?.taken)
    }

    /// As [`Shelf::take`], but an item for which `free` is false (being worked on: its claim is
    /// its stored status) stays where it is, and is counted in [`Taken::left`].
    pub fn take_if<T: Parked, E: From<StorageError>>(
        &self,
        db: &Db,
        ids: &[&str],
        free: impl Fn(&T) -> bool,
        mut then: impl FnMut(&mut WriteTx<'_>, T) -> Result<(), E>,
    ) -> Result<Taken, E> {
        db.write(|tx| {
            let mut out = Taken::default();
            for id in ids {
                let Some(key) = self.key(id) else { continue };
                let Some(bytes) = tx.get(self.keyspace, &key)? else { continue };
                let item: T = self.decode(&bytes)?;
                if !free(&item) {
                    out.left += 1;
                    continue;
                }
                tx.remove(self.keyspace, &key);
                then(tx, item)?;
                out.taken += 1;
            }
            Ok(out)
        })
    }
}

/// What [`Shelf::take_if`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Items taken off the shelf.
    pub taken: usize,
    /// Items left on it: being worked on.
    pub left: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Note {
        id: String,
        created_at: String,
        text: String,
    }

    impl Parked for Note {
        fn id(&self) -> &str {
            &self.id
        }
        fn created_at(&self) -> &str {
            &self.created_at
        }
        fn contains(&self, needle: &str) -> bool {
            found(&self.text, needle)
        }
    }

    const SHELF: Shelf = Shelf::new(Keyspace::Jobs, b"f", "note");
    /// Another shelf in the same keyspace, right after it: never seen through `SHELF`.
    const NEIGHBOUR: Shelf = Shelf::new(Keyspace::Jobs, b"g", "note");

    fn note(n: u32, text: &str) -> Note {
        Note {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: format!("2026-01-{:02}T00:00:00Z", n + 1),
            text: text.to_string(),
        }
    }

    #[test]
    fn a_shelf_pages_newest_first_filters_and_takes_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let notes: Vec<Note> = (0..5).map(|n| note(n, if n % 2 == 0 { "Even" } else { "odd" })).collect();
        db.write(|tx| {
            for n in &notes {
                SHELF.put_in(tx, n)?;
            }
            NEIGHBOUR.put_in(tx, &note(9, "elsewhere"))
        })
        .unwrap();
        let ids = |items: &[Note]| items.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
        let newest: Vec<String> = notes.iter().rev().map(|n| n.id.clone()).collect();

        let (page, cursor) = SHELF.page::<Note>(&db, &ParkedFilter { first: 2, ..Default::default() }).unwrap();
        assert_eq!(ids(&page), newest[..2]);
        let (rest, end) =
            SHELF.page::<Note>(&db, &ParkedFilter { first: 10, after: cursor, ..Default::default() }).unwrap();
        assert_eq!(ids(&rest), newest[2..], "the neighbouring shelf is not listed");
        assert_eq!(end, None);
        assert!(SHELF.page::<Note>(&db, &ParkedFilter { after: Some("x".into()), ..Default::default() }).is_err());

        let even = SHELF.all::<Note>(&db, &ParkedFilter::text(Some("EVEN"))).unwrap();
        assert_eq!(even.len(), 3, "text, case-insensitive, oldest first");
        assert_eq!(even[0], notes[0]);
        let from = ParkedFilter { from: parse_time("2026-01-04").ok(), ..Default::default() };
        assert_eq!(ids(&SHELF.all::<Note>(&db, &from).unwrap()), ids(&notes[3..]));
        assert_eq!(SHELF.get::<Note, _>(&db, &notes[1].id).unwrap().as_ref(), Some(&notes[1]));
        assert_eq!(SHELF.get::<Note, _>(&db, "not an id").unwrap(), None);

        // Taken once, with what `then` stages in the same commit.
        let wanted = [notes[0].id.as_str(), notes[1].id.as_str()];
        let taken = SHELF.take(&db, &wanted, |tx, n: Note| NEIGHBOUR.put_in(tx, &n)).unwrap();
        assert_eq!(taken, 2);
        assert_eq!(SHELF.take(&db, &wanted, |_, _: Note| Ok::<_, StorageError>(())).unwrap(), 0);
        assert_eq!(SHELF.all::<Note>(&db, &ParkedFilter::default()).unwrap().len(), 3);
        assert_eq!(NEIGHBOUR.all::<Note>(&db, &ParkedFilter::default()).unwrap().len(), 3);
    }
}
