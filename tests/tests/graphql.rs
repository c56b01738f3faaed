//! The GraphQL data API against `samples/library`, written from TDG's documented examples
//! (TDG 1.x 3.1.3): queries by index, composite index, multikey `_like`, comparison suffixes;
//! relations both ways with pagination; forward and backward pagination; the version history;
//! insert, update, soft and permanent delete; optimistic-lock conflicts; the service; hard limits;
//! the admin schema; authorization.

use ferrogrid_tests::{encode, Server};
use serde_json::{json, Value};

fn start() -> Server {
    Server::start("samples/library")
}

/// `data` of a GraphQL answer that must have no errors.
fn data(answer: Value) -> Value {
    assert!(answer.get("errors").is_none(), "unexpected errors: {answer}");
    answer["data"].clone()
}

/// The first error of an answer that must have one: (message, extensions.code).
fn first_error(answer: &Value) -> (String, String) {
    let e = &answer["errors"][0];
    assert!(e.is_object(), "expected an error: {answer}");
    (
        e["message"].as_str().unwrap_or_default().to_string(),
        e["extensions"]["code"].as_str().unwrap_or_default().to_string(),
    )
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array().map(|a| a.iter().filter_map(|o| o["id"].as_i64()).collect()).unwrap_or_default()
}

fn insert_user(server: &Server, id: i64, username: &str, phones: Value) -> Value {
    let d = data(server.graphql(
        "mutation($u: User_insert) { User(insert: $u) { id username version } }",
        json!({"u": {"id": id, "username": username, "phones": phones}}),
    ));
    d["User"][0].clone()
}

fn seed_library(server: &Server) {
    insert_user(server, 1, "John Smith", json!(["+1-555-0100", "+7-916-0000"]));
    insert_user(server, 2, "Kim", json!(["+7-495-1111"]));
    insert_user(server, 3, "Ann", Value::Null);
    for (id, name, year) in
        [(1, "Dune", 1965), (2, "Solaris", 1961), (3, "Neuromancer", 1984), (4, "Roadside Picnic", 1972)]
    {
        data(server.graphql(
            "mutation($b: Book_insert) { Book(insert: $b) { id } }",
            json!({"b": {"id": id, "book_name": name, "author": "someone", "year": year}}),
        ));
    }
    // Subscriptions over /http, through the classifier, as TDG's request.py posts them.
    for (id, user, book) in [(1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 3)] {
        let outcome = server.post_sync(&json!({"id": id, "user_id": user, "book_id": book}));
        assert_eq!(outcome["status"], "stored", "{outcome}");
    }
}

#[test]
fn queries_by_index_composite_multikey_like_and_comparisons() {
    let server = start();
    seed_library(&server);
    let d = data(server.graphql("{ User { id username } }", json!({})));
    assert_eq!(ids(&d["User"]), [1, 2, 3], "all users in primary-key order");
    let d = data(server.graphql("{ User(id: 2) { username phones } }", json!({})));
    assert_eq!(d["User"], json!([{"username": "Kim", "phones": ["+7-495-1111"]}]));
    let d = data(server.graphql("{ Subscription(pkey: [2, 1]) { id user_id book_id } }", json!({})));
    assert_eq!(d["Subscription"], json!([{"id": 2, "user_id": 1, "book_id": 2}]));
    let d = data(server.graphql("{ Subscription(pkey: [4]) { id } }", json!({})));
    assert_eq!(ids(&d["Subscription"]), [4], "a prefix of a composite key");
    let d = data(server.graphql(r#"{ User(phones_like: "+7%") { id } }"#, json!({})));
    // In index order: Kim's +7-495 before John's +7-916; each once per matching phone.
    assert_eq!(ids(&d["User"]), [2, 1], "multikey like");
    let d = data(server.graphql(r#"{ User(phones: "+1-555-0100") { id } }"#, json!({})));
    assert_eq!(ids(&d["User"]), [1]);
    let d = data(server.graphql("{ Book(year_gt: 1965) { id year } }", json!({})));
    assert_eq!(d["Book"], json!([{"id": 4, "year": 1972}, {"id": 3, "year": 1984}]), "in year order");
    let d = data(server.graphql("{ Book(year_ge: 1961, year_lt: 1972) { id } }", json!({})));
    assert_eq!(ids(&d["Book"]), [2, 1]);
    let d = data(server.graphql("{ Book(year_le: 1961) { book_name } }", json!({})));
    assert_eq!(d["Book"], json!([{"book_name": "Solaris"}]));
    let d = data(server.graphql("{ Subscription(user_id: 1, book_id_ge: 2) { id } }", json!({})));
    assert_eq!(ids(&d["Subscription"]), [2, 3], "several arguments are ANDed");
    let d = data(server.graphql("{ User(id: 99) { id } }", json!({})));
    assert_eq!(d["User"], json!([]));
}

/// A document that selects more fields than the limit (2,000, aliases counted) is refused before
/// it runs; one under it answers.
#[test]
fn a_query_selecting_too_many_fields_is_refused() {
    let server = start();
    insert_user(&server, 1, "one", Value::Null);
    let aliases = |n: usize| (0..n).map(|i| format!("a{i}: User(id: 1) {{ id }}")).collect::<Vec<_>>().join(" ");
    let answer = server.graphql(&format!("{{ {} }}", aliases(1_001)), json!({}));
    assert!(first_error(&answer).0.contains("too complex"), "{answer}");
    let answer = server.graphql(&format!("{{ {} }}", aliases(999)), json!({}));
    assert_eq!(data(answer)["a998"][0]["id"], 1);
}

#[test]
fn longs_keep_every_digit() {
    let server = start();
    let big = 9_007_199_254_740_993_i64; // 2^53 + 1: a double would round it
    insert_user(&server, big, "big", Value::Null);
    let raw = server.post_json("/graphql", &json!({"query": format!("{{ User(id: {big}) {{ id version }} }}")}));
    assert!(raw.body.contains(&format!("\"id\":{big}")), "{}", raw.body);
    let version = raw.json()["data"]["User"][0]["version"].as_u64().unwrap_or_default();
    assert!(version > 1u64 << 60, "versions are nanosecond-based and exact: {}", raw.body);
}

#[test]
fn relations_both_ways_with_pagination() {
    let server = start();
    seed_library(&server);
    let d = data(server.graphql("{ User(id: 1) { subscription(first: 2) { id cursor } } }", json!({})));
    let page = &d["User"][0]["subscription"];
    assert_eq!(ids(page), [1, 2]);
    let after = page[1]["cursor"].as_str().unwrap_or_default().to_string();
    let d = data(server.graphql(
        "query($a: String) { User(id: 1) { subscription(first: 2, after: $a) { id } } }",
        json!({"a": after}),
    ));
    assert_eq!(ids(&d["User"][0]["subscription"]), [3], "the second page of the relation");
    let d = data(server.graphql("{ User(id: 1) { subscription(book_id_ge: 3) { id } } }", json!({})));
    assert_eq!(ids(&d["User"][0]["subscription"]), [3], "relation fields take the target's filters");
    let d = data(server.graphql("{ Subscription(pkey: [4, 2]) { user { username } book { book_name } } }", json!({})));
    assert_eq!(d["Subscription"], json!([{"user": {"username": "Kim"}, "book": {"book_name": "Neuromancer"}}]));
    let d = data(server.graphql("{ User(id: 3) { subscription { id } } }", json!({})));
    assert_eq!(d["User"][0]["subscription"], json!([]));
    let d = data(server.graphql("{ Book(id: 3) { subscription { user { id } } } }", json!({})));
    let readers: Vec<i64> =
        d["Book"][0]["subscription"].as_array().unwrap().iter().filter_map(|s| s["user"]["id"].as_i64()).collect();
    assert_eq!(readers, [1, 2]);
}

#[test]
fn relation_fields_of_a_list_are_looked_up_in_one_batch() {
    let server = start();
    seed_library(&server);
    let counts = |name: &str| {
        let text = server.get("/metrics").body;
        ferrogrid_tests::metric_value(&text, name, &[("type", "User")]).unwrap_or(0.0)
    };
    let (lookups, batches) =
        (counts("ferrogrid_graphql_relation_lookups_total"), counts("ferrogrid_graphql_relation_batches_total"));
    let d = data(server.graphql("{ Subscription { id user { username } } }", json!({})));
    let names: Vec<&str> =
        d["Subscription"].as_array().unwrap().iter().filter_map(|s| s["user"]["username"].as_str()).collect();
    assert_eq!(names, ["John Smith", "John Smith", "John Smith", "Kim"]);
    assert_eq!(counts("ferrogrid_graphql_relation_batches_total") - batches, 1.0, "4 parents, one batch");
    assert_eq!(counts("ferrogrid_graphql_relation_lookups_total") - lookups, 2.0, "2 distinct users, 2 lookups");
}

#[test]
fn pages_forward_and_backward_visit_every_object_once() {
    let server = start();
    for id in 1..=25 {
        insert_user(&server, id, &format!("user{id}"), Value::Null);
    }
    let page = |first: i64, after: Option<&str>| -> Vec<Value> {
        let d = data(server.graphql(
            "query($f: Int, $a: String) { User(first: $f, after: $a) { id cursor } }",
            json!({"f": first, "a": after}),
        ));
        d["User"].as_array().cloned().unwrap_or_default()
    };
    let (mut seen, mut after) = (Vec::new(), None::<String>);
    loop {
        let items = page(7, after.as_deref());
        if items.is_empty() {
            break;
        }
        seen.extend(items.iter().filter_map(|o| o["id"].as_i64()));
        after = items.last().and_then(|o| o["cursor"].as_str()).map(str::to_string);
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>(), "forward");
    let (mut seen, mut before) = (Vec::new(), None::<String>);
    loop {
        let items = page(-7, before.as_deref());
        if items.is_empty() {
            break;
        }
        let mut ids: Vec<i64> = items.iter().filter_map(|o| o["id"].as_i64()).collect();
        ids.extend(seen);
        seen = ids;
        before = items.first().and_then(|o| o["cursor"].as_str()).map(str::to_string);
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>(), "backward pages, each in index order");
}

#[test]
fn the_version_history_can_be_walked() {
    let server = start();
    let v1 = insert_user(&server, 7, "first name", Value::Null)["version"].as_u64().unwrap_or_default();
    let d = data(server.graphql(
        r#"mutation { User(id: 7, update: [["set", "username", "second name"]]) { username version } }"#,
        json!({}),
    ));
    let v2 = d["User"][0]["version"].as_u64().unwrap_or_default();
    assert!(v2 > v1, "{v1} {v2}");
    let at = |version: u64| {
        let d =
            data(server.graphql("query($v: Long) { User(id: 7, version: $v) { username } }", json!({"v": version})));
        d["User"].clone()
    };
    assert_eq!(at(v2 - 1), json!([{"username": "first name"}]), "version: v-1 gives the previous state");
    assert_eq!(at(v2), json!([{"username": "second name"}]));
    assert_eq!(at(v1 - 1), json!([]), "nothing before the first version");
    let d = data(server.graphql("{ User(id: 7, all_versions: true) { username version } }", json!({})));
    assert_eq!(
        d["User"],
        json!([{"username": "second name", "version": v2}, {"username": "first name", "version": v1}]),
        "every version, newest first"
    );
}

#[test]
fn insert_update_soft_and_permanent_delete() {
    let server = start();
    insert_user(&server, 1, "Ann", json!(["1"]));
    let d = data(server.graphql(
        r#"mutation { User(id: 1, update: [["set", "username", "Anna"], ["set", "phones", ["2", "3"]]]) { id username phones } }"#,
        json!({}),
    ));
    assert_eq!(d["User"], json!([{"id": 1, "username": "Anna", "phones": ["2", "3"]}]));
    assert_eq!(server.data("User", "id=1")[0]["object"]["username"], "Anna", "the same data over /data");
    insert_user(&server, 1, "Anne", Value::Null);
    let d = data(server.graphql("{ User(id: 1) { username phones } }", json!({})));
    assert_eq!(d["User"], json!([{"username": "Anne", "phones": null}]), "insert replaces by primary key");

    let d = data(server.graphql("mutation { User(id: 1, delete: true) { id } }", json!({})));
    assert_eq!(ids(&d["User"]), [1], "delete answers what it deleted");
    assert_eq!(data(server.graphql("{ User(id: 1) { id } }", json!({})))["User"], json!([]));
    let history = data(server.graphql("{ User(id: 1, all_versions: true) { username } }", json!({})));
    assert!(history["User"].as_array().is_some_and(|h| h.len() >= 3), "a soft delete keeps the history: {history}");

    insert_user(&server, 2, "Kim", Value::Null);
    data(server.graphql("mutation { User(id: 2, permanent_delete: true) { id } }", json!({})));
    let history = data(server.graphql("{ User(id: 2, all_versions: true) { username } }", json!({})));
    assert_eq!(history["User"], json!([]), "a permanent delete removes every version");

    let (message, code) = first_error(&server.graphql(r#"mutation { User(insert: {id: 3}) { id } }"#, json!({})));
    assert_eq!(code, "VALIDATION");
    assert!(message.contains("User.username"), "{message}");
    let (_, code) = first_error(&server.graphql("mutation { User(id: 3) { id } }", json!({})));
    assert_eq!(code, "BAD_REQUEST", "a mutation must say what to do");
    // An update the model refuses is a VALIDATION error with the path, as an insert's.
    let (message, code) = first_error(&server.graphql(
        r#"mutation { User(id: 1, update: [["set", "username", 5]], dont_skip_deleted: true) { id } }"#,
        json!({}),
    ));
    assert_eq!(code, "VALIDATION", "{message}");
    assert!(message.contains("User.username"), "{message}");
    // Arguments it would leave unused are refused, not ignored.
    for (mutation, why) in [
        (r#"mutation { User(id: 2, insert: {id: 4, username: "x"}) { id } }"#, "id does nothing with insert"),
        (
            r#"mutation { User(id: 1, update: [["set", "username", "y"]], delete: true) { id } }"#,
            "not update and delete",
        ),
        (
            r#"mutation { User(id: 1, delete: true, if_not_exists: true) { id } }"#,
            "if_not_exists does nothing with delete",
        ),
    ] {
        let (message, code) = first_error(&server.graphql(mutation, json!({})));
        assert_eq!(code, "BAD_REQUEST", "{mutation}");
        assert!(message.contains(why), "{message}");
    }
    assert_eq!(data(server.graphql("{ User(id: 4) { id } }", json!({})))["User"], json!([]), "nothing inserted");
    // A flag sent as false is no argument (clients that send every variable).
    let d = data(server.graphql(
        r#"mutation { User(insert: {id: 5, username: "flags"}, if_not_exists: false, dont_skip_deleted: false, delete: false) { id } }"#,
        json!({}),
    ));
    assert_eq!(ids(&d["User"]), [5]);

    // TDG: `delete: true` alone deletes every object of the type (within the hard limits).
    for id in 10..25 {
        insert_user(&server, id, "Many", Value::Null);
    }
    let d = data(server.graphql("mutation { User(delete: true) { id } }", json!({})));
    assert_eq!(ids(&d["User"]).len(), 16, "the 15 and the one with flags: {d}");
    assert_eq!(data(server.graphql("{ User { id } }", json!({})))["User"], json!([]));
}

#[test]
fn only_if_version_conflicts_and_if_not_exists() {
    let server = start();
    let v1 = insert_user(&server, 1, "Ann", Value::Null)["version"].as_u64().unwrap_or_default();
    let stale = server.graphql(
        r#"mutation($v: Long) { User(insert: {id: 1, username: "late"}, only_if_version: $v) { id } }"#,
        json!({"v": v1 - 1}),
    );
    let (message, code) = first_error(&stale);
    assert_eq!(code, "CONFLICT", "{stale}");
    assert!(message.contains("only_if_version"), "{message}");
    let ok = data(server.graphql(
        r#"mutation($v: Long) { User(insert: {id: 1, username: "on time"}, only_if_version: $v) { username } }"#,
        json!({"v": v1}),
    ));
    assert_eq!(ok["User"], json!([{"username": "on time"}]));
    let (_, code) = first_error(&server.graphql(
        r#"mutation($v: Long) { User(id: 1, update: [["set", "username", "x"]], only_if_version: $v) { id } }"#,
        json!({"v": v1}),
    ));
    assert_eq!(code, "CONFLICT", "update with a stale version");
    let kept = data(server.graphql(
        r#"mutation { User(insert: {id: 1, username: "ignored"}, if_not_exists: true) { username } }"#,
        json!({}),
    ));
    assert_eq!(kept["User"], json!([{"username": "on time"}]), "if_not_exists keeps the existing object");
}

#[test]
fn the_service_and_hard_limits() {
    let server = start();
    seed_library(&server);
    let d = data(server.graphql("{ select_user_books(user_id: 1) }", json!({})));
    assert_eq!(d["select_user_books"], "Dune, Neuromancer, Solaris");
    let d = data(server.graphql("{ select_user_books(user_id: 3) }", json!({})));
    assert_eq!(d["select_user_books"], "");

    let d =
        data(server.graphql_admin("mutation { config { hard_limits(returned: 2) { scanned returned } } }", json!({})));
    assert_eq!(d["config"]["hard_limits"]["returned"], 2);
    let d = data(server.graphql_admin("{ config { hard_limits { returned } } }", json!({})));
    assert_eq!(d["config"]["hard_limits"]["returned"], 2);
    let (message, code) = first_error(&server.graphql("{ User(first: 10) { id } }", json!({})));
    assert_eq!(code, "HARD_LIMIT");
    assert!(message.contains("returned"), "{message}");
    let (_, code) = first_error(&server.graphql("{ User(id: 1) { subscription(first: 10) { id } } }", json!({})));
    assert_eq!(code, "HARD_LIMIT", "relation lookups run under the same limits");
    assert_eq!(ids(&data(server.graphql("{ User(first: 2) { id } }", json!({})))["User"]), [1, 2]);
}

#[test]
fn admin_schema_repair_queue_model_and_aggregates() {
    let server = start();
    let parked = server.post_sync(&json!({"id": 1, "title": "not a library object"}));
    assert_eq!(parked["status"], "repair");
    let id = parked["id"].as_str().unwrap_or_default().to_string();
    let d = data(server.graphql_admin(
        r#"{ repair_list(filter: "not a library") { id status routing_key error attempts payload } }"#,
        json!({}),
    ));
    let list = d["repair_list"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{d}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["routing_key"], "unknown_type");
    assert_eq!(list[0]["payload"], json!({"id": 1, "title": "not a library object"}));
    let d = data(server.graphql_admin("mutation($id: String!) { repair(id: $id) }", json!({"id": id})));
    assert_eq!(d["repair"]["status"], "repair", "still unknown: it stays");
    let d = data(server.graphql_admin("{ repair_list { attempts status } }", json!({})));
    assert_eq!(d["repair_list"], json!([{"attempts": 2, "status": "Reworked"}]));
    let d =
        data(server.graphql_admin("mutation($id: String!) { delete_from_repair_queue(id: $id) }", json!({"id": id})));
    assert_eq!(d["delete_from_repair_queue"], true);
    for n in 0..3 {
        server.post_sync(&json!({"id": n, "junk": true}));
    }
    let d = data(server.graphql_admin("mutation { clear_repair_queue }", json!({})));
    assert_eq!(d["clear_repair_queue"], 3);
    assert!(server.repair_entries("").is_empty());

    let d = data(server.graphql_admin("{ maintenance { get_aggregates } model }", json!({})));
    assert_eq!(d["maintenance"]["get_aggregates"], json!(["User", "Book", "Subscription", "Statistics"]));
    assert!(d["model"].as_str().is_some_and(|m| m.contains("\"Subscription\"")), "{d}");
    // The data schema has none of these.
    let (_, _) = first_error(&server.graphql("{ repair_list { id } }", json!({})));
}

#[test]
fn get_queries_sdl_and_authorization() {
    let server = start();
    insert_user(&server, 1, "Ann", Value::Null);
    let r = server.get(&format!("/graphql?query={}", encode("{ User(id: 1) { username } }")));
    r.assert_status(200, "GET /graphql");
    assert_eq!(r.json()["data"]["User"], json!([{"username": "Ann"}]));
    let r = server.get(&format!("/graphql?query={}", encode("mutation { User(id: 1, delete: true) { id } }")));
    r.assert_status(405, "a mutation over GET");
    let sdl = server.get("/graphql/schema.graphql");
    sdl.assert_status(200, "SDL");
    assert!(
        sdl.body.contains("type User {") && sdl.body.contains("select_user_books(user_id: Long): String"),
        "{}",
        sdl.body
    );
    let d = data(server.graphql("{ __schema { queryType { name } mutationType { name } } }", json!({})));
    assert_eq!(d["__schema"], json!({"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}}));

    let anonymous = server.unauthorized();
    assert_eq!(anonymous.post_json("/graphql", &json!({"query": "{ User { id } }"})).status, 401);
    assert_eq!(anonymous.get("/graphql/schema.graphql").status, 401);
    assert_eq!(server.with_token("fg_wrong").post_json("/graphql", &json!({"query": "{ User { id } }"})).status, 401);
    let bad = server.post_raw("/graphql", "application/json", b"{not json");
    bad.assert_status(400, "a body that is not a GraphQL request");
}
