//! Access control against `samples/library`: application tokens (create with the secret shown
//! once, expire, block, unblock, delete, export and import without secrets), the built-in roles
//! and a custom role with a data action, over the HTTP API: the permission matrix (every
//! identity x a route of each kind -> 200/401/403, and refused writes change nothing), data
//! rights in `/data` and GraphQL (root fields, relation fields, mutations, services) and the
//! admin schema's read/write split.

use ferrogrid_tests::{workspace_root, Client, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Create a token as admin; answers its secret.
fn token(server: &Server, name: &str, role: &str, expires_in: u64) -> String {
    let r = server.client().send(
        "POST",
        "/admin/api/tokens",
        Some(&json!({"name": name, "role": role, "expires_in": expires_in})),
    );
    r.assert_status(201, &format!("create token {name}"));
    let body = r.json();
    assert_eq!(body["name"], name);
    assert_eq!(body["role"], role);
    body["token"].as_str().expect("the secret is in the answer").to_string()
}

/// The identities of the matrix, by label.
fn identities(server: &Server) -> BTreeMap<&'static str, Client> {
    // A data action and a custom role: read and write Book, read Subscription, nothing on User.
    let admin = server.client();
    admin
        .send(
            "POST",
            "/admin/api/data-actions",
            Some(&json!({"name": "books", "aggregates": {"Book": {"read": true, "write": true}, "Subscription": {"read": true}}})),
        )
        .assert_status(201, "create the data action");
    admin
        .send(
            "POST",
            "/admin/api/roles",
            Some(&json!({"name": "librarian", "description": "books only", "actions": ["input_post", "repair_read"], "data_actions": ["books"]})),
        )
        .assert_status(201, "create the role");
    let expired = token(server, "expired", "admin", 1);
    let blocked = token(server, "blocked", "admin", 0);
    admin
        .send("POST", "/admin/api/tokens/blocked/block", Some(&json!({"reason": "left the team"})))
        .assert_status(200, "block");
    let mut out = BTreeMap::new();
    out.insert("none", server.unauthorized());
    out.insert("wrong", server.with_token("fg_0000"));
    out.insert("expired", server.with_token(&expired));
    out.insert("blocked", server.with_token(&blocked));
    out.insert("admin", server.client());
    out.insert("supervisor", server.with_token(&token(server, "watcher", "supervisor", 0)));
    out.insert("user", server.with_token(&token(server, "poster", "user", 0)));
    out.insert("librarian", server.with_token(&token(server, "books-app", "librarian", 0)));
    // Let the expired one expire.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    out
}

#[test]
fn tokens_are_created_once_expire_block_and_export_without_secrets() {
    let server = Server::start("samples/library");
    let admin = server.client();
    let secret = token(&server, "etl", "user", 0);
    assert!(secret.starts_with("fg_") && secret.len() == 67, "{secret}");
    // The secret is shown once: never again in a read, a list or an export.
    for path in ["/admin/api/tokens/etl", "/admin/api/tokens", "/admin/api/tokens/export"] {
        let r = admin.get(path);
        r.assert_status(200, path);
        assert!(
            !r.body.contains(&secret) && !r.body.contains("\"hash\"") && !r.body.contains("\"token\""),
            "{path}: {}",
            r.body
        );
    }
    let etl = server.with_token(&secret);
    etl.post_json("/http", &json!({"id": 1, "username": "from etl"})).assert_status(200, "the user token posts");
    let whoami = etl.get("/admin/api/whoami").json();
    assert_eq!((whoami["subject"].as_str(), whoami["role"].as_str()), (Some("etl"), Some("user")));

    // Names are unique; roles must exist; bad bodies are 400 with the reason.
    admin
        .send("POST", "/admin/api/tokens", Some(&json!({"name": "etl", "role": "user"})))
        .assert_status(409, "duplicate name");
    let r = admin.send("POST", "/admin/api/tokens", Some(&json!({"name": "x", "role": "root"})));
    r.assert_status(400, "unknown role");
    assert!(r.error_text().contains("root"), "{}", r.body);
    admin
        .send("POST", "/admin/api/tokens", Some(&json!({"name": "a/b", "role": "user"})))
        .assert_status(400, "slash in a name");
    admin
        .send("POST", "/admin/api/tokens", Some(&json!({"name": "x", "role": "user", "colour": 1})))
        .assert_status(400, "unknown field");

    // Block with a reason: 401 token_blocked; unblock: works again.
    admin.send("POST", "/admin/api/tokens/etl/block", Some(&json!({"reason": "rotated"}))).assert_status(200, "block");
    let r = etl.post_json("/http", &json!({"id": 2, "username": "blocked"}));
    r.assert_status(401, "blocked token");
    assert_eq!(r.json()["reason"], "token_blocked");
    assert_eq!(admin.get("/admin/api/tokens/etl").json()["state_reason"], "rotated");
    admin.send("POST", "/admin/api/tokens/etl/unblock", None).assert_status(200, "unblock");
    etl.post_json("/http", &json!({"id": 3, "username": "unblocked"})).assert_status(200, "unblocked token");

    // Expiry: an edit to 1 s, then 401 token_expired.
    let edited = admin.send("PATCH", "/admin/api/tokens/etl", Some(&json!({"expires_in": 1})));
    edited.assert_status(200, "edit expiry");
    assert!(edited.json()["expires_at"].is_string());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = etl.get("/admin/api/whoami");
    r.assert_status(401, "expired token");
    assert_eq!(r.json()["reason"], "token_expired");
    assert_eq!(admin.get("/admin/api/tokens/etl").json()["expired"], true);

    // Export, delete, import: the same names and roles, new secrets.
    let export = admin.get("/admin/api/tokens/export").json();
    let mine: Vec<Value> = export.as_array().unwrap().iter().filter(|t| t["name"] == "etl").cloned().collect();
    admin.delete("/admin/api/tokens/etl").assert_status(204, "delete");
    let r = etl.get("/admin/api/whoami");
    r.assert_status(401, "deleted token");
    assert_eq!(r.json()["reason"], "invalid_token");
    admin.delete("/admin/api/tokens/etl").assert_status(404, "delete twice");
    let imported = admin.send("POST", "/admin/api/tokens/import", Some(&Value::Array(mine)));
    imported.assert_status(200, "import");
    let fresh = imported.json()[0]["token"].as_str().expect("a new secret").to_string();
    assert_ne!(fresh, secret);
    assert_eq!(server.with_token(&secret).get("/admin/api/whoami").status, 401, "the old secret stays dead");
    admin.send("PATCH", "/admin/api/tokens/etl", Some(&json!({"expires_in": 0}))).assert_status(200, "never expires");
    assert_eq!(server.with_token(&fresh).get("/admin/api/whoami").json()["role"], "user");
    admin
        .send("POST", "/admin/api/tokens/import", Some(&imported.json()))
        .assert_status(400, "an import answer has secrets: not an export");

    // The last active admin token that never expires cannot be deleted, blocked, demoted or
    // given an expiry (here by an admin token that expires); and no token changes itself.
    admin
        .send("PATCH", "/admin/api/tokens/admin", Some(&json!({"expires_in": 60})))
        .assert_status(403, "a token changes not itself");
    let temporary = server.with_token(&token(&server, "temporary-admin", "admin", 3600));
    for (method, path, body) in [
        ("DELETE", "/admin/api/tokens/admin", None),
        ("POST", "/admin/api/tokens/admin/block", None),
        ("PATCH", "/admin/api/tokens/admin", Some(json!({"role": "supervisor"}))),
        ("PATCH", "/admin/api/tokens/admin", Some(json!({"expires_in": 1}))),
    ] {
        let r = temporary.send(method, path, body.as_ref());
        r.assert_status(409, &format!("{method} {path}"));
        assert!(r.error_text().contains("last active admin token that never expires"), "{}", r.body);
    }
    assert_eq!(admin.get("/admin/api/whoami").json()["role"], "admin");

    // Tokens live in storage: they survive a restart.
    let mut server = server;
    server.restart();
    assert_eq!(server.with_token(&fresh).get("/admin/api/whoami").json()["subject"], "etl");
}

/// Expected statuses of one route for each identity, in the order of `ORDER`.
const ORDER: [&str; 8] = ["none", "wrong", "expired", "blocked", "admin", "supervisor", "user", "librarian"];

#[test]
fn the_permission_matrix() {
    let server = Server::start("samples/library");
    let who = identities(&server);
    // (method, path, body, statuses by ORDER). Writes whose refusal is checked below use
    // bodies that would change something.
    let rows: Vec<(&str, &str, Option<Value>, [u16; 8])> = vec![
        ("GET", "/health", None, [200; 8]),
        ("GET", "/admin/", None, [200; 8]),
        ("GET", "/metrics", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        ("POST", "/http", Some(json!({"id": 7, "username": "matrix"})), [401, 401, 401, 401, 200, 403, 200, 200]),
        ("GET", "/data", None, [401, 401, 401, 401, 200, 200, 200, 200]),
        ("GET", "/data/Book", None, [401, 401, 401, 401, 200, 200, 403, 200]),
        ("GET", "/data/User", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        ("GET", "/admin/api/model", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        // The data schema: for callers with data rights on some type (or model_read).
        ("GET", "/graphql/schema.graphql", None, [401, 401, 401, 401, 200, 200, 403, 200]),
        ("GET", "/admin/api/repair", None, [401, 401, 401, 401, 200, 200, 403, 200]),
        ("POST", "/admin/api/repair/retry-all", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        ("GET", "/admin/api/journal", None, [401, 401, 401, 401, 200, 200, 403, 200]),
        ("GET", "/admin/api/output-repair", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        ("GET", "/admin/api/jobs/failed", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        ("GET", "/admin/api/tasks", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        ("GET", "/admin/api/config", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        (
            "PUT",
            "/admin/api/expiration/Book",
            Some(json!({"lifetime_hours": 1})),
            [401, 401, 401, 401, 200, 403, 403, 403],
        ),
        ("GET", "/admin/api/tokens", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        (
            "POST",
            "/admin/api/tokens",
            Some(json!({"name": "ROW", "role": "user"})),
            [401, 401, 401, 401, 201, 403, 403, 403],
        ),
        ("GET", "/admin/api/roles", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        (
            "POST",
            "/admin/api/data-actions",
            Some(json!({"name": "ROW", "aggregates": {}})),
            [401, 401, 401, 401, 201, 403, 403, 403],
        ),
        ("GET", "/admin/api/whoami", None, [401, 401, 401, 401, 200, 200, 200, 200]),
        ("GET", "/admin/api/password-policy", None, [401, 401, 401, 401, 200, 200, 200, 200]),
        ("GET", "/admin/api/users", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        (
            "POST",
            "/admin/api/users",
            Some(json!({"login": "ROW-login", "role": "user", "password": "Row1password"})),
            [401, 401, 401, 401, 201, 403, 403, 403],
        ),
        ("GET", "/admin/api/nowhere", None, [401, 401, 401, 401, 404, 404, 404, 404]),
        // The router decodes percent-escapes; the check sees the same path.
        (
            "POST",
            "/admin/api/token%73",
            Some(json!({"name": "ROW-encoded", "role": "user"})),
            [401, 401, 401, 401, 201, 403, 403, 403],
        ),
        ("GET", "/metric%73", None, [401, 401, 401, 401, 200, 200, 403, 403]),
        ("GET", "/admin/api/%72epair", None, [401, 401, 401, 401, 200, 200, 403, 200]),
    ];
    let mut failures = Vec::new();
    for (method, path, body, want) in &rows {
        for (label, expected) in ORDER.iter().zip(want) {
            // Names in bodies made unique per identity, so that allowed creates do not collide.
            let body = body.as_ref().map(|b| {
                serde_json::from_str::<Value>(&b.to_string().replace("ROW", &format!("row-{label}"))).unwrap()
            });
            let r = who[label].send(method, path, body.as_ref());
            if r.status != *expected {
                failures.push(format!("{method} {path} as {label}: {} (expected {expected}) {}", r.status, r.body));
            }
            if r.status == 401 {
                assert!(r.json()["reason"].is_string(), "a 401 has a reason code: {}", r.body);
            }
        }
    }
    assert!(failures.is_empty(), "{} cells differ:\n{}", failures.len(), failures.join("\n"));

    // Introspection tells an input-only token nothing of the model, a reader all of it.
    let introspect = json!({"query": "{ __schema { types { name } } }"});
    let answer = who["user"].send("POST", "/graphql", Some(&introspect));
    answer.assert_status(200, "introspection as user");
    assert!(answer.json()["data"]["__schema"].is_null() && !answer.body.contains("Book"), "{}", answer.body);
    // Nor do the errors of a misspelt name ("Did you mean Book?").
    let misspelt = who["user"].send("POST", "/graphql", Some(&json!({"query": "{ Boo { id } }"})));
    assert!(!misspelt.body.contains("Book"), "{}", misspelt.body);
    let answer = who["librarian"].send("POST", "/graphql", Some(&introspect)).json();
    let names = answer["data"]["__schema"]["types"].to_string();
    assert!(names.contains("\"Book\""), "{answer}");

    // Refused writes changed nothing.
    let admin = &who["admin"];
    let names: Vec<String> = admin
        .get("/admin/api/tokens")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    for label in ["supervisor", "user", "librarian"] {
        assert!(!names.contains(&label.to_string()), "{label} created a token: {names:?}");
    }
    assert!(names.contains(&"admin".to_string()));
    let users = admin.get("/admin/api/users").body;
    for label in ["supervisor", "user", "librarian"] {
        assert!(!users.contains(&format!("row-{label}")), "{label} created a user: {users}");
    }
    let roles = admin.get("/admin/api/data-actions").body;
    for label in ["supervisor", "user", "librarian"] {
        assert!(!roles.contains(&format!("\"{label}\"")), "{label} created a data action: {roles}");
    }
}

/// The first error's (message, code) of a GraphQL answer.
fn error_of(answer: &Value) -> (String, String) {
    let e = &answer["errors"][0];
    (
        e["message"].as_str().unwrap_or_default().to_string(),
        e["extensions"]["code"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn data_rights_apply_to_graphql_fields_mutations_and_services() {
    let server = Server::start("samples/library");
    let who = identities(&server);
    let admin = &who["admin"];
    // Data to read: a user, a book and a subscription joining them.
    let seed = admin.graphql(
        "mutation { User(insert: {id: 1, username: \"Ann\"}) { id } Book(insert: {id: 10, book_name: \"Dune\", author: \"Herbert\", year: 1965}) { id } Subscription(insert: {id: 100, user_id: 1, book_id: 10}) { id } }",
        json!({}),
        false,
    );
    assert!(seed.get("errors").is_none(), "{seed}");

    let librarian = &who["librarian"];
    // The data explorer's menu: the types it may read, and which it may write.
    let menu = librarian.get("/data").json();
    let menu: Vec<(String, bool)> = menu["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["write"].as_bool().unwrap()))
        .collect();
    assert_eq!(menu, [("Book".to_string(), true), ("Subscription".to_string(), false)]);
    assert_eq!(who["user"].get("/data").json()["types"], json!([]), "a user reads no type");
    let books = librarian.graphql("{ Book(id: 10) { book_name } }", json!({}), false);
    assert_eq!(books["data"]["Book"][0]["book_name"], "Dune", "{books}");
    let users = librarian.graphql("{ User(id: 1) { username } }", json!({}), false);
    assert_eq!(error_of(&users).1, "FORBIDDEN", "{users}");
    assert!(error_of(&users).0.contains("may not read User"), "{users}");
    // A relation to a type it may not read: an error for that field, the rest answers.
    let joined = librarian.graphql(
        "{ Subscription(book_id: 10) { id book { book_name } user { username } } }",
        json!({}),
        false,
    );
    assert_eq!(joined["data"]["Subscription"][0]["book"]["book_name"], "Dune", "{joined}");
    assert!(joined["data"]["Subscription"][0]["user"].is_null(), "{joined}");
    assert_eq!(error_of(&joined).1, "FORBIDDEN", "{joined}");
    assert!(error_of(&joined).0.contains("may not read User"), "{joined}");
    // Writes: Book yes, User no (and nothing stored).
    let wrote = librarian.graphql(
        "mutation { Book(insert: {id: 11, book_name: \"Emma\", author: \"Austen\", year: 1815}) { id } }",
        json!({}),
        false,
    );
    assert!(wrote.get("errors").is_none(), "{wrote}");
    let refused = librarian.graphql("mutation { User(insert: {id: 2, username: \"Bob\"}) { id } }", json!({}), false);
    assert_eq!(error_of(&refused).1, "FORBIDDEN", "{refused}");
    assert!(admin.data("User", "id=2").is_empty(), "the refused insert stored nothing");
    // Write without read: an insert answers what it sent; `if_not_exists` (which answers the
    // object already stored) and a negative version are refused.
    admin
        .send(
            "POST",
            "/admin/api/data-actions",
            Some(&json!({"name": "drop", "aggregates": {"User": {"write": true}}})),
        )
        .assert_status(201, "a write-only data action");
    admin
        .send("POST", "/admin/api/roles", Some(&json!({"name": "dropbox", "actions": [], "data_actions": ["drop"]})))
        .assert_status(201, "a write-only role");
    let dropbox = server.with_token(&token(&server, "dropbox-app", "dropbox", 0));
    let sent = dropbox.graphql("mutation { User(insert: {id: 3, username: \"Cy\"}) { username } }", json!({}), false);
    assert_eq!(sent["data"]["User"][0]["username"], "Cy", "{sent}");
    let peek = dropbox.graphql(
        "mutation { User(insert: {id: 1, username: \"guess\"}, if_not_exists: true) { username } }",
        json!({}),
        false,
    );
    assert_eq!(error_of(&peek).1, "FORBIDDEN", "{peek}");
    assert!(!peek.to_string().contains("Ann"), "{peek}");
    let negative = admin.graphql("{ User(id: 1, version: -1) { id } }", json!({}), false);
    assert_eq!(error_of(&negative), ("version: a version is a number of 0 or more".into(), "BAD_REQUEST".into()));
    // A service runs on its caller's behalf: its repository calls (find Subscription, get
    // Book) are checked against the caller's data actions.
    let service = librarian.graphql("{ select_user_books(user_id: 1) }", json!({}), false);
    assert_eq!(service["data"]["select_user_books"], "Dune", "{service}");
    let service = admin.graphql("{ select_user_books(user_id: 1) }", json!({}), false);
    assert_eq!(service["data"]["select_user_books"], "Dune", "{service}");
    let service = who["supervisor"].graphql("{ select_user_books(user_id: 1) }", json!({}), false);
    assert_eq!(service["data"]["select_user_books"], "Dune", "{service}");
    let service = who["user"].graphql("{ select_user_books(user_id: 1) }", json!({}), false);
    assert_eq!(error_of(&service).1, "FORBIDDEN", "{service}");
    assert!(
        error_of(&service).0.contains("may not read Subscription (repository::find) in service select_user_books"),
        "{service}"
    );
    let recorded = audit(admin, "subject=poster&text=select_user_books");
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["outcome"], "refused FORBIDDEN", "{recorded:?}");

    // The supervisor reads everything and writes nothing.
    let supervisor = &who["supervisor"];
    let read = supervisor.graphql("{ User(id: 1) { username subscription { book { book_name } } } }", json!({}), false);
    assert!(read.get("errors").is_none(), "{read}");
    let write = supervisor.graphql(
        "mutation { Book(insert: {id: 12, book_name: \"X\", author: \"Y\", year: 1}) { id } }",
        json!({}),
        false,
    );
    assert_eq!(error_of(&write).1, "FORBIDDEN", "{write}");

    // The user role: no data at all.
    let none = who["user"].graphql("{ Book(id: 10) { id } }", json!({}), false);
    assert_eq!(error_of(&none).1, "FORBIDDEN", "{none}");

    // The admin schema: the supervisor may query, not mutate; the librarian neither.
    let query = "{ repair_list { id } }";
    let supervised = supervisor.send_graphql_admin(query);
    assert_eq!(supervised.status, 200, "{}", supervised.body);
    let mutation = "mutation { clear_repair_queue }";
    assert_eq!(supervisor.send_graphql_admin(mutation).status, 403);
    assert_eq!(librarian.send_graphql_admin(query).status, 403);
}

/// `POST /graphql` with `schema: admin` as a raw response (the status matters).
trait AdminGraphql {
    fn send_graphql_admin(&self, query: &str) -> ferrogrid_tests::Resp;
}

impl AdminGraphql for Client {
    fn send_graphql_admin(&self, query: &str) -> ferrogrid_tests::Resp {
        self.send_with_headers("POST", "/graphql", Some(&json!({"query": query})), &[("schema", "admin")])
    }
}

/// The audit entries matching `query` (as admin).
fn audit(admin: &Client, query: &str) -> Vec<Value> {
    let r = admin.get(&format!("/admin/api/audit?{query}"));
    r.assert_status(200, &format!("GET /admin/api/audit?{query}"));
    r.json().as_array().cloned().unwrap_or_default()
}

#[test]
fn the_audit_log_records_changes_and_refusals_and_only_admins_clear_it() {
    let server = Server::start("samples/library");
    let who = identities(&server);
    let admin = &who["admin"];
    let supervisor = &who["supervisor"];
    // A change, a refused token, a refused action, a refused data read, an operator action.
    token(&server, "audited", "user", 0);
    who["wrong"].get("/admin/api/tokens");
    supervisor
        .send("PUT", "/admin/api/expiration/Book", Some(&json!({"lifetime_hours": 1})))
        .assert_status(403, "refused");
    who["librarian"].graphql("{ User(id: 1) { id } }", json!({}), false);
    supervisor.post_empty("/admin/api/repair/retry-all").assert_status(200, "retry-all");

    let created = audit(admin, "text=POST%20/admin/api/tokens&subject=admin");
    let event = created.iter().find(|e| e["outcome"] == "ok 201").expect("the token creation is recorded");
    assert_eq!(event["severity"], "INFO");
    assert_eq!(event["action"], "tokens_admin");
    assert!(event["source"].as_str().unwrap().starts_with("127.0.0.1"), "{event}");
    assert!(event["time"].is_string() && event["id"].is_string());

    let refused = audit(admin, "severity=WARNING");
    let find = |f: &dyn Fn(&Value) -> bool| refused.iter().any(f);
    assert!(
        find(&|e| e["action"] == "authenticate" && e["message"] == "invalid_token" && e["subject"] == "-"),
        "{refused:?}"
    );
    assert!(
        find(&|e| e["subject"] == "watcher" && e["action"] == "config_apply" && e["outcome"] == "refused 403"),
        "{refused:?}"
    );
    assert!(
        find(&|e| e["subject"] == "books-app" && e["action"] == "graphql_data" && e["object"] == "read User"),
        "{refused:?}"
    );
    let operated = audit(admin, "subject=watcher&text=retry-all");
    assert_eq!(operated.len(), 1, "{operated:?}");
    assert_eq!(
        (operated[0]["severity"].as_str(), operated[0]["action"].as_str()),
        (Some("INFO"), Some("repair_operate"))
    );
    // Reads are VERBOSE: not recorded at the default INFO.
    assert!(audit(admin, "subject=watcher&text=GET").is_empty());

    // Who may read and clear it.
    supervisor.get("/admin/api/audit").assert_status(200, "the supervisor reads the audit log");
    supervisor.delete("/admin/api/audit").assert_status(403, "the supervisor may not clear it");
    who["user"].get("/admin/api/audit").assert_status(403, "a user may not read it");
    who["librarian"].get("/admin/api/audit").assert_status(403, "nor a custom role without audit_log_read");
    supervisor
        .send("PUT", "/admin/api/audit/settings", Some(&json!({"enabled": false})))
        .assert_status(403, "settings");

    // Settings: WARNING and above only; then back to the configuration's.
    let set = admin.send("PUT", "/admin/api/audit/settings", Some(&json!({"severity": "WARNING"})));
    set.assert_status(200, "override");
    assert_eq!(set.json()["overridden"], true);
    let before = audit(admin, "subject=admin&text=POST%20/admin/api/tokens").len();
    token(&server, "quiet", "user", 0);
    assert_eq!(audit(admin, "subject=admin&text=POST%20/admin/api/tokens").len(), before, "INFO is below WARNING now");
    let refusals = audit(admin, "text=invalid_token").len();
    who["wrong"].get("/admin/api/tokens");
    assert_eq!(audit(admin, "text=invalid_token").len(), refusals + 1, "WARNING is still recorded");
    admin.get("/admin/api/audit?colour=red").assert_status(400, "an unknown filter");
    admin
        .send("PUT", "/admin/api/audit/settings", Some(&json!({"severity": "LOUD"})))
        .assert_status(400, "unknown severity");
    let changed = audit(admin, "text=audit_settings_changed");
    assert_eq!(changed.len(), 1, "a settings change is recorded, as ALARM: {changed:?}");
    assert_eq!(changed[0]["severity"], "ALARM");

    // Turned off, the log still records that it was turned off, and a clear.
    admin.send("PUT", "/admin/api/audit/settings", Some(&json!({"enabled": false}))).assert_status(200, "disable");
    token(&server, "unseen", "user", 0);
    let cleared = admin.delete("/admin/api/audit");
    cleared.assert_status(200, "clear");
    assert!(cleared.json()["removed"].as_u64().unwrap() >= 5);
    let left = audit(admin, "");
    assert_eq!(left.len(), 1, "only the clear: {left:?}");
    assert_eq!((left[0]["action"].as_str(), left[0]["severity"].as_str()), (Some("audit_log_cleared"), Some("ALARM")));
    assert_eq!(left[0]["subject"], "admin");
    let reset = admin.delete("/admin/api/audit/settings");
    assert_eq!(reset.json()["settings"]["enabled"], true);
    assert_eq!(audit(admin, "text=audit_settings_changed").len(), 1, "going back is recorded too");
    admin.get("/admin/api/audit?from=yesterday").assert_status(400, "a bad time");
}

#[test]
fn nobody_grants_more_than_they_have() {
    let server = Server::start("samples/library");
    let admin = server.client();
    admin
        .send("POST", "/admin/api/roles", Some(&json!({"name": "keeper", "actions": ["tokens_read", "tokens_admin"]})))
        .assert_status(201, "a role that manages tokens");
    let keeper = server.with_token(&token(&server, "keeper", "keeper", 0));
    for role in ["admin", "supervisor", "user"] {
        let r =
            keeper.send("POST", "/admin/api/tokens", Some(&json!({"name": format!("by-keeper-{role}"), "role": role})));
        r.assert_status(403, &format!("the keeper creates a {role} token"));
        assert!(r.error_text().contains("may not grant"), "{}", r.body);
    }
    keeper
        .send("POST", "/admin/api/tokens", Some(&json!({"name": "another-keeper", "role": "keeper"})))
        .assert_status(201, "a token with its own role");
    keeper
        .send("PATCH", "/admin/api/tokens/keeper", Some(&json!({"role": "admin"})))
        .assert_status(403, "promote itself");
    keeper.post_empty("/admin/api/tokens/admin/block").assert_status(403, "block the admin token");
    keeper.delete("/admin/api/tokens/admin").assert_status(403, "delete the admin token");
    let import = json!([{"name": "imported-admin", "role": "admin"}]);
    keeper.send("POST", "/admin/api/tokens/import", Some(&import)).assert_status(403, "import an admin token");
    assert!(admin.get("/admin/api/tokens/imported-admin").status == 404);
    assert_eq!(server.client().get("/admin/api/whoami").json()["role"], "admin", "the admin token still works");

    // Write without read: inserts, but no update or delete by filter (they answer what they select).
    admin
        .send(
            "POST",
            "/admin/api/data-actions",
            Some(&json!({"name": "book-drop", "aggregates": {"Book": {"write": true}}})),
        )
        .assert_status(201, "a write-only data action");
    admin
        .send("POST", "/admin/api/roles", Some(&json!({"name": "dropper", "data_actions": ["book-drop"]})))
        .assert_status(201, "a role with it");
    let dropper = server.with_token(&token(&server, "dropper", "dropper", 0));
    let inserted = dropper.graphql(
        "mutation { Book(insert: {id: 5, book_name: \"Ulysses\", author: \"Joyce\", year: 1922}) { id } }",
        json!({}),
        false,
    );
    assert!(inserted.get("errors").is_none(), "{inserted}");
    let updated = dropper.graphql(
        "mutation { Book(id: 5, update: [[\"set\", \"year\", 1923]]) { book_name } }",
        json!({}),
        false,
    );
    assert_eq!(error_of(&updated).1, "FORBIDDEN", "{updated}");
    assert_eq!(admin.data("Book", "id=5")[0]["object"]["year"], 1922, "nothing changed");
    // Roles admins cannot widen their own rights either.
    admin
        .send(
            "POST",
            "/admin/api/roles",
            Some(&json!({"name": "role-keeper", "actions": ["roles_read", "roles_admin"]})),
        )
        .assert_status(201, "a role that manages roles");
    let role_keeper = server.with_token(&token(&server, "role-keeper", "role-keeper", 0));
    role_keeper
        .send(
            "PUT",
            "/admin/api/roles/role-keeper",
            Some(&json!({"name": "role-keeper", "actions": ["roles_read", "roles_admin", "config_apply"]})),
        )
        .assert_status(403, "widen its own role");
    role_keeper
        .send(
            "PUT",
            "/admin/api/data-actions/book-drop",
            Some(&json!({"name": "book-drop", "aggregates": {"Book": {"read": true, "write": true}}})),
        )
        .assert_status(403, "widen a data action beyond its own rights");
}

#[test]
fn metrics_may_be_left_open_for_scrapers() {
    let yaml =
        std::fs::read_to_string(format!("{}/../samples/quickstart/config.yml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let model =
        std::fs::read_to_string(format!("{}/../samples/quickstart/model.avsc", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let server =
        Server::start_with_config(&format!("{yaml}\nmetrics:\n  require_token: false\n"), &[("model.avsc", &model)]);
    let open = server.unauthorized().get("/metrics");
    open.assert_status(200, "metrics without a token");
    assert!(open.body.contains("ferrogrid_"), "{}", &open.body[..open.body.len().min(200)]);
    server.unauthorized().get("/admin/api/repair").assert_status(401, "the rest still needs a token");
}

/// What an answer must satisfy: (status, reason code) -> whether it does.
type Expectation = dyn Fn(u16, &str) -> bool;

/// The route table of docs/security.md (generated from the engine's table, and kept equal to it
/// by a unit test): (method, path, needs, cell per built-in role: admin, supervisor, user).
fn documented_routes() -> Vec<(String, String, String, [String; 3])> {
    let text = std::fs::read_to_string(workspace_root().join("docs/security.md")).expect("docs/security.md");
    let start = text.find("<!-- routes: generated").expect("the route table's start marker");
    let end = text.find("<!-- end of routes -->").expect("the route table's end marker");
    text[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| method") && !l.starts_with("| ---"))
        .map(|l| {
            let cells: Vec<String> =
                l.trim_matches('|').split(" | ").map(|c| c.trim().trim_matches('`').to_string()).collect();
            assert_eq!(cells.len(), 6, "a route row has six cells: {l}");
            (
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                [cells[3].clone(), cells[4].clone(), cells[5].clone()],
            )
        })
        .collect()
}

/// Every route of the table, with placeholders filled, for: no credentials, a wrong, an expired
/// and a blocked token (401 with a reason on every route that is not open), a supervisor and a
/// user token and a supervisor's session cookie (403 exactly where the table says so, never
/// 401/403 where it says yes), and the session without its anti-CSRF header (403 `csrf` on
/// every change). Data routes are covered cell by cell in `the_permission_matrix`.
#[test]
fn every_route_of_the_table_answers_as_documented() {
    let server = Server::start("samples/library");
    let admin = server.client();
    let routes = documented_routes();
    assert!(routes.len() > 80, "the table lists every route: {}", routes.len());
    let expired = token(&server, "expired", "admin", 1);
    let blocked = token(&server, "blocked", "admin", 0);
    admin.send("POST", "/admin/api/tokens/blocked/block", None).assert_status(200, "block");
    let supervisor = server.with_token(&token(&server, "watcher", "supervisor", 0));
    let user = server.with_token(&token(&server, "poster", "user", 0));
    admin
        .send(
            "POST",
            "/admin/api/users",
            Some(&json!({"login": "olga", "role": "supervisor", "password": "Watch1ful"})),
        )
        .assert_status(201, "create olga");
    let signed = server.unauthorized().send(
        "POST",
        "/admin/api/login",
        Some(&json!({"login": "olga", "password": "Watch1ful"})),
    );
    signed.assert_status(200, "olga signs in");
    let cookie = signed.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let csrf = signed.json()["csrf_token"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let mut failures = Vec::new();
    let mut check = |what: &str, method: &str, path: &str, r: ferrogrid_tests::Resp, ok: &dyn Fn(u16, &str) -> bool| {
        let reason = serde_json::from_str::<Value>(&r.body).ok().and_then(|v| v["reason"].as_str().map(String::from));
        let reason = reason.unwrap_or_default();
        if !ok(r.status, &reason) {
            failures.push(format!(
                "{method} {path} as {what}: {} {}",
                r.status,
                ferrogrid_tests::truncate(&r.body, 200)
            ));
        }
    };
    for (method, pattern, needs, cells) in &routes {
        let path = pattern
            .replace("{type}", "Book")
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{name}", "no-such-name")
            .replace("{version}", "999")
            .replace("{login}", "no-such-login");
        let path = path.as_str();
        let open = needs.starts_with("nothing");
        let data = needs.contains("data rights");
        for (label, client) in [
            ("no credentials", server.unauthorized()),
            ("a wrong token", server.with_token("fg_wrong")),
            ("an expired token", server.with_token(&expired)),
            ("a blocked token", server.with_token(&blocked)),
        ] {
            let r = client.send(method, path, None);
            if open {
                check(label, method, path, r, &|status, _| status != 401 && status != 403);
            } else {
                check(label, method, path, r, &|status, reason| status == 401 && !reason.is_empty());
            }
        }
        if open || data || path == "/admin/api/logout" {
            continue;
        }
        let expect = |cell: &str| -> Box<Expectation> {
            if cell == "403" {
                Box::new(|status, reason| status == 403 && reason == "forbidden")
            } else {
                Box::new(|status, _| status != 401 && status != 403)
            }
        };
        let (sup, usr) = (cells[1].as_str(), cells[2].as_str());
        check("a supervisor token", method, path, supervisor.send(method, path, None), &*expect(sup));
        check("a user token", method, path, user.send(method, path, None), &*expect(usr));
        let with_csrf = server.unauthorized().send_with_headers(
            method,
            path,
            None,
            &[("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())],
        );
        check("a supervisor session", method, path, with_csrf, &*expect(sup));
        if method != "GET" {
            let without = server.unauthorized().send_with_headers(method, path, None, &[("Cookie", cookie.as_str())]);
            check("a session without its anti-CSRF header", method, path, without, &|status, reason| {
                status == 403 && reason == "csrf"
            });
        }
    }
    assert!(failures.is_empty(), "{} answers differ from the table:\n{}", failures.len(), failures.join("\n"));
}

/// `data` of a GraphQL answer, panicking on errors.
fn gql_data(client: &Client, query: &str, variables: Value) -> Value {
    let answer = client.graphql(query, variables, true);
    assert!(answer.get("errors").is_none_or(Value::is_null), "{query}: {answer}");
    answer["data"].clone()
}

#[test]
fn the_admin_schema_manages_tokens_users_roles_and_the_audit_log_with_tdgs_names() {
    let server = Server::start("samples/library");
    let admin = server.client();
    // Tokens: add (the secret once), list, get, block.
    let added = gql_data(
        &admin,
        r#"mutation { token { add(name: "gql", role: "user", expires_in: 0) { name role token } } }"#,
        json!({}),
    );
    let secret = added["token"]["add"]["token"].as_str().expect("the secret").to_string();
    assert!(secret.starts_with("fg_"), "{added}");
    let listed =
        gql_data(&admin, "{ token { list { name role state token } get(name: \"gql\") { state } } }", json!({}));
    let names: Vec<&str> =
        listed["token"]["list"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"gql") && names.contains(&"admin"), "{listed}");
    assert!(listed["token"]["list"].as_array().unwrap().iter().all(|t| t["token"].is_null()), "no secrets in lists");
    server
        .with_token(&secret)
        .post_json("/http", &json!({"id": 5, "username": "via gql token"}))
        .assert_status(200, "post");
    gql_data(
        &admin,
        r#"mutation { token { set_state(name: "gql", state: "blocked", reason: "test") { state } } }"#,
        json!({}),
    );
    let r = server.with_token(&secret).post_json("/http", &json!({"id": 6, "username": "blocked"}));
    assert_eq!((r.status, r.json()["reason"].as_str()), (401, Some("token_blocked")));

    // Users: add without a password (a one-time one, once), list, modify, self for a token.
    let user = gql_data(
        &admin,
        r#"mutation { user { add(login: "gqluser", role: "supervisor", email: "g@example.com") { login one_time_password password } } }"#,
        json!({}),
    );
    assert_eq!(user["user"]["add"]["one_time_password"], true, "{user}");
    assert!(user["user"]["add"]["password"].as_str().is_some_and(|p| p.len() >= 16), "{user}");
    let users =
        gql_data(&admin, "{ user { list { login role password } self { login } is_anonymous_allowed } }", json!({}));
    assert!(users["user"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["login"] == "gqluser" && u["password"].is_null()));
    assert!(users["user"]["self"].is_null(), "a token is no user: {users}");
    assert_eq!(users["user"]["is_anonymous_allowed"], false);
    gql_data(&admin, r#"mutation { user { modify(login: "gqluser", role: "user") { role } } }"#, json!({}));
    assert_eq!(admin.get("/admin/api/users/gqluser").json()["role"], "user");
    let changes = audit(&admin, "text=modify%20gqluser&subject=admin");
    assert!(changes.iter().any(|e| e["action"] == "admin_graphql" && e["severity"] == "INFO"), "{changes:?}");
    // The store's own refusals (granting more than one has) are FORBIDDEN and recorded too.
    admin
        .send(
            "POST",
            "/admin/api/roles",
            Some(&json!({"name": "gql-helpdesk", "actions": ["admin_graphql_read", "admin_graphql_write", "users_read", "users_admin"]})),
        )
        .assert_status(201, "role");
    let helpdesk = server.with_token(&token(&server, "gql-helpdesk", "gql-helpdesk", 0));
    let escalate =
        helpdesk.graphql(r#"mutation { user { modify(login: "gqluser", role: "admin") { role } } }"#, json!({}), true);
    assert_eq!(escalate["errors"][0]["extensions"]["code"], "FORBIDDEN", "{escalate}");
    assert_eq!(admin.get("/admin/api/users/gqluser").json()["role"], "user");
    let refused = audit(&admin, "subject=gql-helpdesk&severity=WARNING");
    assert!(refused.iter().any(|e| e["object"] == "modify gqluser"), "{refused:?}");

    // Roles and data actions.
    gql_data(
        &admin,
        "mutation($a: JSON!) { data_access_action { create(name: \"books-gql\", aggregates: $a) { name aggregates } } }",
        json!({"a": {"Book": {"read": true}}}),
    );
    gql_data(
        &admin,
        r#"mutation { access_role { create(name: "reader", description: "reads", actions: ["repair_read"], data_actions: ["books-gql"]) { name } } }"#,
        json!({}),
    );
    gql_data(
        &admin,
        r#"mutation { access_role { update_access_role_actions(name: "reader", actions: [{id: "jobs_read", allowed: true}, {id: "repair_read", allowed: false}]) { actions } } }"#,
        json!({}),
    );
    let role = gql_data(
        &admin,
        r#"{ access_role { get_access_role_actions(name: "reader") get(name: "reader") { data_actions built_in } actions_list { name } } }"#,
        json!({}),
    );
    assert_eq!(role["access_role"]["get_access_role_actions"], json!(["jobs_read"]), "{role}");
    assert_eq!(role["access_role"]["get"]["data_actions"], json!(["books-gql"]));
    assert_eq!(role["access_role"]["get"]["built_in"], false);
    assert!(role["access_role"]["actions_list"].as_array().unwrap().len() >= 23);
    let data = gql_data(&admin, r#"{ data_access_action { get(name: "books-gql") { aggregates } } }"#, json!({}));
    assert_eq!(data["data_access_action"]["get"]["aggregates"]["Book"]["read"], true);

    // The password generator.
    let generated = gql_data(
        &admin,
        r#"{ password_generator { generate validate(password: "short") { valid error } config } }"#,
        json!({}),
    );
    let g = &generated["password_generator"];
    assert!(g["generate"].as_str().is_some_and(|p| p.len() >= 16), "{generated}");
    assert_eq!(g["validate"]["valid"], false);
    assert!(g["validate"]["error"].as_str().unwrap().contains("at least 8"));
    assert_eq!(g["config"]["min_length"], 8);

    // The audit log: read, change the severity, clear (recorded).
    let log = gql_data(
        &admin,
        r#"{ audit_log { get(subject: "admin", first: 50) { action outcome severity } enabled severity } }"#,
        json!({}),
    );
    assert_eq!(log["audit_log"]["enabled"], true);
    assert!(log["audit_log"]["get"].as_array().unwrap().iter().any(|e| e["action"] == "admin_graphql"), "{log}");
    let severity = gql_data(&admin, r#"mutation { audit_log { severity(level: "WARNING") } }"#, json!({}));
    assert_eq!(severity["audit_log"]["severity"], "WARNING");
    assert_eq!(admin.get("/admin/api/audit/settings").json()["settings"]["severity"], "WARNING");
    gql_data(&admin, "mutation { audit_log { clear } }", json!({}));
    let left = audit(&admin, "");
    assert_eq!(left[0]["action"], "audit_log_cleared", "{left:?}");

    // Each field needs its own action: a role with the admin schema but not tokens_admin may
    // not add a token through it; a supervisor reads but does not change.
    admin
        .send(
            "POST",
            "/admin/api/roles",
            Some(&json!({"name": "schema-only", "actions": ["admin_graphql_read", "admin_graphql_write"]})),
        )
        .assert_status(201, "role");
    let schema_only = server.with_token(&token(&server, "schema-only", "schema-only", 0));
    let refused =
        schema_only.graphql(r#"mutation { token { add(name: "sneaky", role: "user") { token } } }"#, json!({}), true);
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    let refused = schema_only.graphql("{ user { list { login } } }", json!({}), true);
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    // ... nor read or operate the queues, tasks, configuration or model it has no action for.
    for query in [
        "{ repair_list { id } }",
        "mutation { clear_repair_queue }",
        "{ tasks { get_list } }",
        "{ jobs { get_list } }",
        "mutation { output_processor { clear_list } }",
        "{ expiration { get_list } }",
        "mutation { config { hard_limits(returned: 5) { returned } } }",
        "{ model }",
    ] {
        let refused = schema_only.graphql(query, json!({}), true);
        assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{query}: {refused}");
    }
    assert!(admin.get("/admin/api/tokens/sneaky").status == 404);
    let recorded = audit(&admin, "subject=schema-only&severity=WARNING");
    assert!(recorded.iter().any(|e| e["action"] == "admin_graphql"), "{recorded:?}");
    let supervisor = server.with_token(&token(&server, "sup-gql", "supervisor", 0));
    let read =
        supervisor.graphql("{ token { list { name } } repair_list { id } tasks { get_list } model }", json!({}), true);
    assert!(read.get("errors").is_none_or(Value::is_null), "{read}");
    let r = supervisor.send_with_headers(
        "POST",
        "/graphql",
        Some(&json!({"query": "mutation { token { remove(name: \"admin\") } }"})),
        &[("schema", "admin")],
    );
    r.assert_status(403, "a supervisor changes nothing through the admin schema");
}

const AUDITED_MODEL: &str = r#"[{"type": "record", "name": "Item", "logicalType": "Aggregate", "indexes": ["id"],
  "fields": [{"name": "id", "type": "long"}, {"name": "n", "type": "long"}, {"name": "job", "type": "string"}]}]"#;

/// Pushes the job the item names.
const AUDITED_PROCESS: &str = r#"let obj = param.obj;
if obj.job != "" { repository::push_job(obj.job, #{id: obj.id}); }
#{obj: obj, routing_key: "Item"}"#;

fn audited_config(comment: &str) -> String {
    format!(
        r#"# {comment}
types: {{__file: model.avsc}}
functions:
  process_item: {{__file: process_item.rhai}}
  broken: {{__file: broken.rhai}}
  stamp: {{__file: stamp.rhai}}
  spin: {{__file: spin.rhai}}
connector:
  input:
    - {{name: http, type: http}}
  output:
    - {{name: hub, type: http, url: "http://127.0.0.1:9/nowhere", options: {{timeout: 1}}}}
input_processor:
  routing:
    - {{key: Item, pipeline: process_item}}
  storage:
    - {{key: Item, type: Item}}
output_processor:
  Item: {{pipeline: stamp, output: hub, retry: {{max_attempts: 1}}}}
tasks:
  spin: {{kind: single_shot, pipeline: spin}}
account_manager:
  block_after_n_failed_attempts: 2
"#
    )
}

const AUDITED_FILES: [(&str, &str); 5] = [
    ("model.avsc", AUDITED_MODEL),
    ("process_item.rhai", AUDITED_PROCESS),
    ("broken.rhai", r#"throw `job ${param.id} is broken`;"#),
    ("stamp.rhai", r#"if param.obj.n < 0 { throw "negative n"; } param.obj"#),
    ("spin.rhai", "let start = datetime::now_millis(); while datetime::now_millis() - start < 3000 { } 1"),
];

/// The audit entries (every severity) whose fields contain `text`.
fn entries(admin: &Client, text: &str) -> Vec<Value> {
    let query: String = text.chars().map(|c| if c == ' ' { "%20".to_string() } else { c.to_string() }).collect();
    audit(admin, &format!("text={query}&severity=VERBOSE"))
}

/// The one audit entry with `object` (and `subject`); its severity, action, outcome and message
/// are checked against `expect`.
fn once(admin: &Client, subject: &str, object: &str, expect: (&str, &str, &str, &str)) -> Value {
    let found: Vec<Value> =
        entries(admin, object).into_iter().filter(|e| e["subject"] == subject && e["object"] == object).collect();
    assert_eq!(found.len(), 1, "one entry for {subject} {object}: {found:?}");
    let e = found[0].clone();
    let (severity, action, outcome, message) = expect;
    assert_eq!(
        (e["severity"].as_str(), e["action"].as_str(), e["outcome"].as_str()),
        (Some(severity), Some(action), Some(outcome)),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap_or_default().contains(message), "{e}");
    assert!(
        e["time"].is_string()
            && e["id"].is_string()
            && e["source"].as_str().is_some_and(|s| s.starts_with("127.0.0.1")),
        "{e}"
    );
    e
}

#[test]
fn every_kind_of_audit_event_is_recorded_once_with_its_fields() {
    let server = Server::start_with_config(&audited_config("v1"), &AUDITED_FILES);
    let admin = server.client();
    // What there is to act on: a repair entry (unknown type), an output-repair entry (its
    // preprocessing throws), a failed job.
    server.post_json("/http?sync=true", &json!({"Nope": {"id": 1}})).assert_status(200, "accepted");
    server.post_json("/http?sync=true", &json!({"Item": {"id": 1, "n": -1, "job": "broken"}})).assert_status(200, "ok");
    let first_id = |path: &str| {
        for _ in 0..600 {
            let items = admin.get(path).json()["items"].as_array().cloned().unwrap_or_default();
            if let Some(id) = items.first().and_then(|e| e["id"].as_str()) {
                return id.to_string();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("nothing in {path}");
    };
    let (repair, parked, job) =
        (first_id("/admin/api/repair"), first_id("/admin/api/output-repair"), first_id("/admin/api/jobs/failed"));

    // Sign-in: success, failure, lock-out (the second failure in a row).
    admin
        .send(
            "POST",
            "/admin/api/users",
            Some(&json!({"login": "olga", "role": "supervisor", "password": "Olga-Pass-1"})),
        )
        .assert_status(201, "a user");
    let sign_in = |password: &str| {
        server.unauthorized().send("POST", "/admin/api/login", Some(&json!({"login": "olga", "password": password})))
    };
    sign_in("Olga-Pass-1").assert_status(200, "olga signs in");
    sign_in("wrong").assert_status(401, "a wrong password");
    sign_in("wrong again").assert_status(401, "locked out");
    let login = entries(&admin, "POST /admin/api/login");
    let kinds: Vec<(&str, &str)> = login
        .iter()
        .filter(|e| e["subject"] == "olga")
        .map(|e| (e["severity"].as_str().unwrap_or_default(), e["outcome"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(kinds, vec![("ALARM", "locked out"), ("WARNING", "refused 401"), ("INFO", "ok 200")], "{login:?}");

    // Tokens: created, blocked, used after expiry.
    let expiring = token(&server, "soon", "user", 1);
    token(&server, "doomed", "user", 0);
    admin.send("POST", "/admin/api/tokens/doomed/block", Some(&json!({"reason": "left"}))).assert_status(200, "block");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    server.with_token(&expiring).get("/admin/api/whoami").assert_status(401, "expired");
    let created: Vec<Value> = entries(&admin, "POST /admin/api/tokens")
        .into_iter()
        .filter(|e| e["object"] == "POST /admin/api/tokens" && e["outcome"] == "ok 201")
        .collect();
    assert_eq!(created.len(), 2, "soon and doomed: {created:?}");
    once(&admin, "admin", "POST /admin/api/tokens/doomed/block", ("INFO", "tokens_admin", "ok 200", ""));
    once(&admin, "soon", "GET /admin/api/whoami", ("WARNING", "authenticate", "refused 401", "token_expired"));

    // Users, roles, data actions.
    admin
        .send("PATCH", "/admin/api/users/olga", Some(&json!({"email": "olga@example.com"})))
        .assert_status(200, "edit");
    once(&admin, "admin", "PATCH /admin/api/users/olga", ("INFO", "users_admin", "ok 200", ""));
    admin
        .send(
            "POST",
            "/admin/api/data-actions",
            Some(&json!({"name": "items", "aggregates": {"Item": {"read": true}}})),
        )
        .assert_status(201, "a data action");
    once(&admin, "admin", "POST /admin/api/data-actions", ("INFO", "roles_admin", "ok 201", ""));
    admin
        .send("POST", "/admin/api/roles", Some(&json!({"name": "viewer", "actions": [], "data_actions": ["items"]})))
        .assert_status(201, "a role");
    once(&admin, "admin", "POST /admin/api/roles", ("INFO", "roles_admin", "ok 201", ""));

    // Repair, output repair and job actions, with their ids; an edited payload says so.
    let retried = format!("POST /admin/api/repair/{repair}/retry");
    admin.post_json(
        &format!("/admin/api/repair/{repair}/retry"),
        &json!({"payload": {"Nope": {"id": 2}}, "by": "Olga"}),
    );
    once(&admin, "admin", &retried, ("INFO", "repair_operate", "ok 200", "payload edited by admin (for Olga)"));
    admin.post_empty(&format!("/admin/api/output-repair/{parked}/retry"));
    once(
        &admin,
        "admin",
        &format!("POST /admin/api/output-repair/{parked}/retry"),
        ("INFO", "output_repair_operate", "ok 200", ""),
    );
    admin.post_empty(&format!("/admin/api/jobs/failed/{job}/retry"));
    once(&admin, "admin", &format!("POST /admin/api/jobs/failed/{job}/retry"), ("INFO", "jobs_operate", "ok 200", ""));

    // Tasks started and stopped.
    admin.post_empty("/admin/api/tasks/spin/start").assert_status(200, "start");
    admin.post_empty("/admin/api/tasks/spin/stop");
    once(&admin, "admin", "POST /admin/api/tasks/spin/start", ("INFO", "tasks_operate", "ok 200", ""));
    let stop = entries(&admin, "POST /admin/api/tasks/spin/stop");
    assert_eq!(stop.len(), 1, "{stop:?}");

    // Configuration applied, and refused.
    let apply = |config: &str| {
        let mut files: BTreeMap<String, Vec<u8>> =
            AUDITED_FILES.iter().map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())).collect();
        files.insert("config.yml".into(), config.as_bytes().to_vec());
        server.put_raw("/admin/api/config", "application/gzip", &ferrogrid_tests::tar_gz(&files, None))
    };
    apply(&audited_config("v2")).assert_status(200, "applied");
    apply("types: [unclosed").assert_status(422, "refused");
    let applies: Vec<(String, String)> = entries(&admin, "PUT /admin/api/config")
        .iter()
        .map(|e| (e["action"].as_str().unwrap_or_default().into(), e["outcome"].as_str().unwrap_or_default().into()))
        .collect();
    assert_eq!(
        applies,
        vec![
            ("config_apply".to_string(), "failed 422".to_string()),
            ("config_apply".to_string(), "ok 200".to_string())
        ]
    );

    // A permission refusal.
    let viewer = token(&server, "viewer-app", "viewer", 0);
    server.with_token(&viewer).get("/admin/api/tokens").assert_status(403, "no tokens_read");
    once(&admin, "viewer-app", "GET /admin/api/tokens", ("WARNING", "tokens_read", "refused 403", "role viewer"));
}

/// A flood of requests without a valid token does not fill the disk with its log: ten a minute
/// from a source are recorded one by one, the rest counted and told of in one entry (at the
/// minute's end, or at a stop).
#[test]
fn a_flood_of_refused_tokens_is_recorded_ten_a_minute_and_counted() {
    let mut server = Server::start("samples/library");
    let wrong = server.with_token("not-a-token-of-this-grid");
    for _ in 0..30 {
        wrong.get("/admin/api/tokens").assert_status(401, "refused");
    }
    let refused = audit(&server.client(), "text=invalid_token&first=1000");
    assert_eq!(refused.len(), 10, "{refused:?}");
    assert!(server.stop().success());
    server.restart();
    let told = audit(&server.client(), "text=more%20refusals");
    assert_eq!(told.len(), 1, "{told:?}");
    let message = told[0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("invalid_token: 20 more refusals from 127.0.0.1"), "{message}");
    assert_eq!((told[0]["severity"].as_str(), told[0]["action"].as_str()), (Some("WARNING"), Some("authenticate")));
}
