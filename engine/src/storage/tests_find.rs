//! Tests of `find`/`get`: index choice and range scans, composite and multikey indexes, every
//! comparison operator, like, pagination with cursors, hard limits.

use super::filter::{Condition, Op};
use super::objects::{find, get};
use super::test_util::{ids, store_users, temp_db, user, user_spec};
use super::{ErrorClass, FindOptions, HardLimits, PutOptions};
use serde_json::{json, Value};
use std::ops::Bound;

fn opts(first: i64) -> FindOptions {
    FindOptions { first: Some(first), ..Default::default() }
}

fn cond(f: &str, op: Op, v: Value) -> Condition {
    Condition::new(f, op, v)
}

#[test]
fn put_then_get_by_primary_and_secondary_index() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    let s = db.put_object(&spec, user(5), &PutOptions::default()).unwrap();
    assert!(s.version > 0 && !s.deleted);
    let got = get(&db, &spec, "id", &[json!(5)], &FindOptions::default()).unwrap().unwrap();
    assert_eq!(got.object, user(5));
    assert_eq!(got.version, s.version);
    assert_eq!(get(&db, &spec, "id", &[json!(6)], &FindOptions::default()).unwrap(), None);
    // secondary index, case-insensitive collation
    let by_name = get(&db, &spec, "username", &[json!("USER005")], &FindOptions::default()).unwrap();
    assert_eq!(by_name.unwrap().object["id"], 5);
    let e = get(&db, &spec, "nope", &[json!(1)], &FindOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "User has no index \"nope\"");
    let e = get(&db, &spec, "id", &[json!("5")], &FindOptions::default()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::UserData);
}

#[test]
fn composite_index_exact_partial_and_range() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    store_users(&db, 40);
    let exact = find(&db, &spec, &[cond("$full_name", Op::Eq, json!(["L1", "F005"]))], &opts(100)).unwrap();
    assert_eq!(ids(&exact), [5]);
    assert_eq!(exact.scanned, 1, "exact composite key is a point range");
    let partial = find(&db, &spec, &[cond("full_name", Op::Eq, json!(["L2"]))], &opts(100)).unwrap();
    assert_eq!(ids(&partial), (1..=40).filter(|i| i % 4 == 2).collect::<Vec<_>>());
    assert_eq!(partial.scanned, 10);
    // range over the composite key: last > L1, and (L3, F010) <= key
    let gt = find(&db, &spec, &[cond("full_name", Op::Gt, json!(["L2"]))], &opts(100)).unwrap();
    assert_eq!(ids(&gt), (1..=40).filter(|i| i % 4 == 3).collect::<Vec<_>>());
    let ge = find(&db, &spec, &[cond("full_name", Op::Ge, json!(["L3", "F031"]))], &opts(100)).unwrap();
    assert_eq!(ids(&ge), [31, 35, 39]);
    assert_eq!(ge.scanned, 3);
    // a field that is the first part of the composite index uses it too
    let by_field = find(&db, &spec, &[cond("last", Op::Eq, json!("L0"))], &opts(100)).unwrap();
    assert_eq!(by_field.items.len(), 10);
    assert_eq!(by_field.scanned, 10);
}

#[test]
fn multikey_index_finds_by_any_element_once() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    let mut u = user(1);
    u["phones"] = json!(["111", "222"]);
    db.put_object(&spec, u, &PutOptions::default()).unwrap();
    let mut other = user(2);
    other["phones"] = json!(["333"]);
    db.put_object(&spec, other, &PutOptions::default()).unwrap();
    for phone in ["111", "222"] {
        let p = find(&db, &spec, &[cond("phones", Op::Eq, json!(phone))], &opts(10)).unwrap();
        assert_eq!(ids(&p), [1], "found by {phone}");
    }
    let all = find(&db, &spec, &[cond("$phones", Op::Gt, json!("0"))], &opts(10)).unwrap();
    assert_eq!(ids(&all), [1, 2], "two matching entries, one result");
    // across pages too: page size 1, forward and backward
    let p1 = find(&db, &spec, &[cond("phones", Op::Lt, json!("9"))], &opts(1)).unwrap();
    let p2 = find(
        &db,
        &spec,
        &[cond("phones", Op::Lt, json!("9"))],
        &FindOptions { after: Some(p1.items[0].cursor.clone()), ..opts(1) },
    )
    .unwrap();
    let p3 = find(
        &db,
        &spec,
        &[cond("phones", Op::Lt, json!("9"))],
        &FindOptions { after: Some(p2.items[0].cursor.clone()), ..opts(1) },
    )
    .unwrap();
    assert_eq!((ids(&p1), ids(&p2), ids(&p3)), (vec![1], vec![2], vec![]));
    let back = find(&db, &spec, &[cond("phones", Op::Lt, json!("9"))], &opts(-10)).unwrap();
    assert_eq!(ids(&back), [1, 2]);
}

/// A multikey object has one place among the pages, its smallest key: paging back from a later
/// page finds it where paging forward showed it.
#[test]
fn multikey_pages_back_find_what_pages_forward_showed() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    for (id, phones) in [(1, json!(["1", "5"])), (2, json!(["2"])), (3, json!(["3"]))] {
        let mut u = user(id);
        u["phones"] = phones;
        db.put_object(&spec, u, &PutOptions::default()).unwrap();
    }
    let all = [cond("phones", Op::Lt, json!("9"))];
    let first = find(&db, &spec, &all, &opts(2)).unwrap();
    assert_eq!(ids(&first), [1, 2]);
    let after = |page: &super::Page, n: i64| FindOptions { after: Some(page.items[0].cursor.clone()), ..opts(n) };
    let second =
        find(&db, &spec, &all, &FindOptions { after: Some(first.items[1].cursor.clone()), ..opts(2) }).unwrap();
    assert_eq!(ids(&second), [3]);
    let back = find(&db, &spec, &all, &after(&second, -2)).unwrap();
    assert_eq!(ids(&back), [1, 2], "back from 3: both before it");
    let whole_back = find(&db, &spec, &all, &opts(-10)).unwrap();
    assert_eq!(ids(&whole_back), [1, 2, 3]);
}

type Pred = Box<dyn Fn(&Value) -> bool>;

fn brute(n: i64, pred: impl Fn(&Value) -> bool) -> Vec<i64> {
    (1..=n).filter(|i| pred(&user(*i))).collect()
}

#[test]
fn every_operator_as_range_scan_on_an_index() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    store_users(&db, 60);
    let age = |u: &Value| u["age"].as_i64();
    let cases: Vec<(Op, Pred)> = vec![
        (Op::Eq, Box::new(move |u| age(u) == Some(4))),
        (Op::Ne, Box::new(move |u| age(u) != Some(4))),
        (Op::Gt, Box::new(move |u| age(u).is_some_and(|a| a > 4))),
        (Op::Ge, Box::new(move |u| age(u).is_some_and(|a| a >= 4))),
        (Op::Lt, Box::new(move |u| age(u).is_some_and(|a| a < 4))),
        (Op::Le, Box::new(move |u| age(u).is_some_and(|a| a <= 4))),
    ];
    for (op, pred) in cases {
        let page = find(&db, &spec, &[cond("age", op, json!(4))], &opts(100)).unwrap();
        let mut got = ids(&page);
        got.sort_unstable();
        assert_eq!(got, brute(60, pred), "{op:?}");
        if op != Op::Ne {
            assert_eq!(page.scanned as usize, got.len(), "{op:?} reads only its range");
        }
    }
    // results are in index order (age, then id)
    let page = find(&db, &spec, &[cond("age", Op::Ge, json!(8))], &opts(100)).unwrap();
    let keys: Vec<(i64, i64)> =
        page.items.iter().map(|s| (s.object["age"].as_i64().unwrap(), s.object["id"].as_i64().unwrap())).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    // null sorts first and matches == null
    let nulls = find(&db, &spec, &[cond("age", Op::Eq, Value::Null)], &opts(100)).unwrap();
    assert_eq!(ids(&nulls), [7, 14, 21, 28, 35, 42, 49, 56]);
    // two bounds on one index make one range
    let between =
        find(&db, &spec, &[cond("age", Op::Gt, json!(2)), cond("age", Op::Lt, json!(5))], &opts(100)).unwrap();
    assert_eq!(between.scanned as usize, between.items.len());
    assert!(between.items.iter().all(|s| (3..=4).contains(&s.object["age"].as_i64().unwrap())));
}

#[test]
fn every_operator_as_filter_on_a_plain_field() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    store_users(&db, 30);
    let score = |u: &Value| u["score"].as_i64().unwrap();
    let cases: Vec<(Op, Pred)> = vec![
        (Op::Eq, Box::new(move |u| score(u) == 45)),
        (Op::Ne, Box::new(move |u| score(u) != 45)),
        (Op::Gt, Box::new(move |u| score(u) > 45)),
        (Op::Ge, Box::new(move |u| score(u) >= 45)),
        (Op::Lt, Box::new(move |u| score(u) < 45)),
        (Op::Le, Box::new(move |u| score(u) <= 45)),
    ];
    for (op, pred) in cases {
        let page = find(&db, &spec, &[cond("$score", op, json!(45))], &opts(100)).unwrap();
        assert_eq!(ids(&page), brute(30, pred), "{op:?}");
        assert_eq!(page.scanned, 30, "a plain field is filtered during a full scan");
    }
    let like = find(&db, &spec, &[cond("first", Op::Like, json!("F01_"))], &opts(100)).unwrap();
    assert_eq!(ids(&like), (10..=19).collect::<Vec<_>>());
}

#[test]
fn like_with_a_literal_prefix_is_a_range_scan() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    store_users(&db, 120);
    let page = find(&db, &spec, &[cond("username", Op::Like, json!("USER01%"))], &opts(100)).unwrap();
    assert_eq!(ids(&page), (10..=19).collect::<Vec<_>>(), "case-insensitive index");
    assert_eq!(page.scanned, 10);
    let mid = find(&db, &spec, &[cond("username", Op::Like, json!("user1_5"))], &opts(100)).unwrap();
    assert_eq!(ids(&mid), [105, 115]);
    assert_eq!(mid.scanned, 21, "range user1* (user100..user120), then filtered");
}

#[test]
fn pagination_forward_and_backward_visits_each_object_once_despite_inserts() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    store_users(&db, 50);
    let filter = [cond("age", Op::Ge, json!(0))];
    // forward, inserting between pages (ids 1000+, age 0..9, some before and some after the cursor)
    let (mut seen, mut after, mut extra) = (Vec::new(), None, 1000);
    loop {
        let page = find(&db, &spec, &filter, &FindOptions { after: after.clone(), ..opts(7) }).unwrap();
        if page.items.is_empty() {
            break;
        }
        seen.extend(ids(&page));
        after = Some(page.items.last().unwrap().cursor.clone());
        extra += 1;
        let mut u = user(extra);
        u["age"] = json!(extra % 10);
        db.put_object(&spec, u, &PutOptions::default()).unwrap();
    }
    let mut uniq = seen.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), seen.len(), "no object twice");
    for id in (1..=50).filter(|i| i % 7 != 0) {
        assert!(seen.contains(&id), "object {id} present before the scan was visited");
    }
    // backward from the end: pages in index order, together the same set
    let all = find(&db, &spec, &filter, &opts(1000)).unwrap();
    let (mut back, mut before) = (Vec::new(), None);
    loop {
        let page = find(&db, &spec, &filter, &FindOptions { after: before.clone(), ..opts(-9) }).unwrap();
        if page.items.is_empty() {
            break;
        }
        let mut chunk = ids(&page);
        before = Some(page.items[0].cursor.clone());
        chunk.extend(back);
        back = chunk;
    }
    assert_eq!(back, ids(&all), "backward pages concatenate to the forward order");
    // a cursor of another query shape is rejected
    let e = find(&db, &spec, &[], &FindOptions { after: before, ..opts(5) }).unwrap_err();
    assert!(e.to_string().contains("invalid cursor"), "{e}");
}

#[test]
fn hard_limits_scanned_and_returned() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    store_users(&db, 30);
    let limits = HardLimits { scanned: 20, returned: 5 };
    let o = FindOptions { hard_limits: limits, ..opts(3) };
    let e = find(&db, &spec, &[cond("score", Op::Gt, json!(80))], &o).unwrap_err();
    assert_eq!(e.to_string(), "hard limit \"scanned\" (20) exceeded in find User");
    assert_eq!(e.class(), ErrorClass::UserData);
    let ok = find(&db, &spec, &[cond("score", Op::Lt, json!(20))], &o).unwrap();
    assert_eq!(ids(&ok), [1, 2, 3], "stops at first before reaching the limit");
    let big = FindOptions { hard_limits: limits, ..opts(50) };
    let e = find(&db, &spec, &[cond("id", Op::Le, json!(10))], &big).unwrap_err();
    assert_eq!(e.to_string(), "hard limit \"returned\" (5) exceeded in find User");
    let few = find(&db, &spec, &[cond("id", Op::Le, json!(4))], &big).unwrap();
    assert_eq!(few.items.len(), 4, "a large first is fine when few objects match");
}

#[test]
fn datetime_date_and_decimal_indexes_order_by_value_and_accept_any_spelling() {
    use super::spec::{IndexSpec, KeyKind, PartSpec, TypeSpec};
    let (_d, db) = temp_db();
    let spec = TypeSpec {
        name: "Event".into(),
        indexes: vec![
            IndexSpec::new("id", vec![PartSpec::new("id", KeyKind::Long)]),
            IndexSpec::new("at", vec![PartSpec::new("at", KeyKind::DateTime)]),
            IndexSpec::new("day", vec![PartSpec::new("day", KeyKind::Date)]),
            IndexSpec::new("amount", vec![PartSpec::new("amount", KeyKind::Decimal)]),
        ],
        ids: Vec::new(),
        building: Vec::new(),
        config_version: 0,
    };
    // Stored as the model normalises them: UTC, `Z`, fraction only when present.
    let events = [
        (1, "2018-03-24T10:20:48Z", "1980-01-01Z", "10"),
        (2, "2018-03-24T10:20:48.250Z", "1980-01-02Z", "9.5"),
        (3, "2018-03-24T10:20:48.5Z", "1979-12-31Z", "-2"),
        (4, "2018-03-24T10:20:49Z", "1980-01-01Z", "100.01"),
    ];
    for (id, at, day, amount) in events {
        db.put_object(&spec, json!({"id": id, "at": at, "day": day, "amount": amount}), &PutOptions::default())
            .unwrap();
    }
    let all = find(&db, &spec, &[cond("at", Op::Ge, json!("2000-01-01T00:00:00Z"))], &opts(100)).unwrap();
    assert_eq!(ids(&all), [1, 2, 3, 4], "instants in time order, whatever their fraction digits");
    // Another offset and precision for the same instant.
    let at = find(&db, &spec, &[cond("at", Op::Eq, json!("2018-03-24T13:20:48.250000+03:00"))], &opts(100)).unwrap();
    assert_eq!(ids(&at), [2]);
    let after = find(&db, &spec, &[cond("at", Op::Gt, json!("2018-03-24T10:20:48.3Z"))], &opts(100)).unwrap();
    assert_eq!(ids(&after), [3, 4]);
    let day = find(&db, &spec, &[cond("day", Op::Eq, json!("1980-01-01"))], &opts(100)).unwrap();
    assert_eq!(ids(&day), [1, 4], "a Date matches with or without the Z");
    let like = find(&db, &spec, &[cond("at", Op::Like, json!("2018-03-24T10:20:48.%"))], &opts(100)).unwrap();
    assert_eq!(ids(&like), [2, 3]);
    let big = find(&db, &spec, &[cond("amount", Op::Gt, json!("9.75"))], &opts(100)).unwrap();
    assert_eq!(ids(&big), [1, 4], "decimals compare as numbers, not as text");
    let by_number = find(&db, &spec, &[cond("amount", Op::Eq, json!(10))], &opts(100)).unwrap();
    assert_eq!(ids(&by_number), [1]);
    let bad = find(&db, &spec, &[cond("at", Op::Eq, json!("yesterday"))], &opts(100)).unwrap_err();
    assert!(bad.to_string().contains("expected datetime"), "{bad}");
}

/// Reads `db`, refusing to walk the current primary index of `spec`: a query that must be
/// answered by a point read fails the test if it walks instead.
struct PointOnly<'a> {
    db: &'a super::Db,
    primary: Vec<u8>,
}

impl<'a> PointOnly<'a> {
    fn new(db: &'a super::Db, spec: &super::TypeSpec) -> PointOnly<'a> {
        PointOnly { db, primary: super::keys::index_prefix(&super::keys::type_prefix(spec), 0) }
    }
}

impl super::ReadView for PointOnly<'_> {
    fn get(&self, ks: super::Keyspace, key: &[u8]) -> Result<Option<super::IVec>, super::StorageError> {
        self.db.get(ks, key)
    }

    fn range<'b>(
        &'b self,
        ks: super::Keyspace,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> super::KvIter<'b> {
        let primary = ks == super::Keyspace::CurrentIndex
            && matches!(lower, Bound::Included(l) | Bound::Excluded(l) if l.starts_with(&self.primary));
        assert!(!primary, "a whole primary key was walked, not read");
        self.db.range(ks, lower, upper, reverse)
    }
}

/// A whole primary key is read at its key (no walk), and answers what the walk of its range
/// did: other conditions still filter, a narrower range or a tombstone leaves it out, a write
/// transaction sees its own pending object, the cursor is the walk's; a composite key with a
/// case-insensitive part is found in any case.
#[test]
fn a_whole_primary_key_is_read_at_its_key_with_the_answers_of_a_walk() {
    let (_d, db) = temp_db();
    let spec = user_spec();
    store_users(&db, 10);
    let point = PointOnly::new(&db, &spec);
    let by_id = |id: i64| cond("id", Op::Eq, json!(id));
    let found = find(&point, &spec, &[by_id(5)], &opts(10)).unwrap();
    assert_eq!((ids(&found), found.scanned), (vec![5], 1));
    let walked = find(&db, &spec, &[cond("id", Op::Ge, json!(5)), cond("id", Op::Le, json!(5))], &opts(10)).unwrap();
    assert_eq!(found.items[0].cursor, walked.items[0].cursor, "the cursor of the walk");
    assert_eq!(ids(&find(&point, &spec, &[by_id(5)], &opts(-1)).unwrap()), [5], "backward");
    assert!(find(&point, &spec, &[by_id(11)], &opts(10)).unwrap().items.is_empty(), "no such key");
    let other = [by_id(5), cond("username", Op::Eq, json!("nobody"))];
    assert!(find(&point, &spec, &other, &opts(10)).unwrap().items.is_empty(), "other conditions filter");
    let narrowed = [by_id(5), cond("id", Op::Gt, json!(5))];
    assert!(find(&point, &spec, &narrowed, &opts(10)).unwrap().items.is_empty(), "a narrower range");
    let after = FindOptions { after: Some(found.items[0].cursor.clone()), ..opts(10) };
    assert!(find(&db, &spec, &[by_id(5)], &after).unwrap().items.is_empty(), "after itself (walked)");
    db.delete_objects(&spec, &[by_id(3)], &super::DeleteOptions::default()).unwrap();
    assert!(find(&point, &spec, &[by_id(3)], &opts(10)).unwrap().items.is_empty(), "a tombstone is skipped");
    db.write(|tx| {
        super::objects::put(tx, &spec, user(20), &PutOptions::default())?;
        assert_eq!(ids(&find(tx, &spec, &[by_id(20)], &opts(10))?), [20], "the transaction's own write");
        Ok::<_, super::StorageError>(())
    })
    .unwrap();
    let walk = || find(&point, &spec, &[cond("id", Op::Ge, json!(5))], &opts(1));
    let walked_anyway = std::panic::catch_unwind(std::panic::AssertUnwindSafe(walk));
    assert!(walked_anyway.is_err(), "PointOnly refuses a walk of the primary index");

    use super::spec::{Collation, IndexSpec, KeyKind, PartSpec, TypeSpec};
    let pair = TypeSpec::new(
        "Pair",
        vec![IndexSpec::new(
            "pk",
            vec![
                PartSpec::new("name", KeyKind::String).collation(Collation::CaseInsensitive),
                PartSpec::new("n", KeyKind::Long),
            ],
        )],
    );
    for (name, n) in [("Ab", 1), ("Ab", 2), ("b", 1)] {
        db.put_object(&pair, json!({"name": name, "n": n}), &PutOptions::default()).unwrap();
    }
    let point = PointOnly::new(&db, &pair);
    let got = find(&point, &pair, &[cond("pk", Op::Eq, json!(["aB", 2]))], &opts(10)).unwrap();
    assert_eq!(got.items.iter().map(|s| s.object.clone()).collect::<Vec<_>>(), [json!({"name": "Ab", "n": 2})]);
    let part = find(&db, &pair, &[cond("pk", Op::Eq, json!(["ab"]))], &opts(10)).unwrap();
    assert_eq!(part.items.len(), 2, "a part of the key is walked");
}
