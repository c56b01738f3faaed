//! Users and sign-in against `samples/quickstart` with an `account_manager` section: password
//! sign-in with a session cookie (its flags, the anti-CSRF header, sign-out, expiry), a blocked,
//! re-roled or deleted user's session ending at once, the password policy, one-time passwords
//! and their change, `password_change_timeout_seconds`, lock-out after failed attempts and
//! unblocking, and bad input: huge passwords, unicode and injection logins, and 10,000 failed
//! sign-ins in a loop with memory flat.

use ferrogrid_tests::peers::SmtpSink;
use ferrogrid_tests::{sample, Client, Resp, Server};
use serde_json::{json, Value};

/// The quickstart sample with `account` appended to its configuration.
fn start(account: &str) -> Server {
    let dir = sample("quickstart");
    let config = std::fs::read_to_string(dir.join("config.yml")).expect("quickstart config.yml");
    let model = std::fs::read_to_string(dir.join("model.avsc")).expect("quickstart model.avsc");
    Server::start_with_config(&format!("{config}\n{account}\n"), &[("model.avsc", &model)])
}

/// A signed-in session: its cookie header and anti-CSRF token.
struct Session {
    cookie: String,
    csrf: String,
    answer: Value,
}

fn sign_in_raw(server: &Server, login: &str, password: &str) -> Resp {
    server.unauthorized().send("POST", "/admin/api/login", Some(&json!({"login": login, "password": password})))
}

fn sign_in(server: &Server, login: &str, password: &str) -> Session {
    let r = sign_in_raw(server, login, password);
    r.assert_status(200, &format!("sign in as {login}"));
    let set_cookie = r.header("set-cookie").expect("a sign-in sets the session cookie").to_string();
    let cookie = set_cookie.split(';').next().expect("name=value").trim().to_string();
    let answer = r.json();
    let csrf = answer["csrf_token"].as_str().expect("the answer has the anti-CSRF token").to_string();
    Session { cookie, csrf, answer }
}

impl Session {
    /// A request with the cookie (and the anti-CSRF header unless `csrf` is false).
    fn send(&self, server: &Server, method: &str, path: &str, body: Option<&Value>, csrf: bool) -> Resp {
        let mut headers = vec![("Cookie", self.cookie.as_str())];
        if csrf {
            headers.push(("X-CSRF-Token", self.csrf.as_str()));
        }
        server.unauthorized().send_with_headers(method, path, body, &headers)
    }

    fn get(&self, server: &Server, path: &str) -> Resp {
        self.send(server, "GET", path, None, false)
    }
}

fn create_user(admin: &Client, body: Value) -> Value {
    let r = admin.send("POST", "/admin/api/users", Some(&body));
    r.assert_status(201, &format!("create user {body}"));
    r.json()
}

fn reason(r: &Resp) -> String {
    r.json()["reason"].as_str().unwrap_or_default().to_string()
}

fn audit(admin: &Client, query: &str) -> Vec<Value> {
    let r = admin.get(&format!("/admin/api/audit?{query}"));
    r.assert_status(200, "read the audit log");
    r.json().as_array().cloned().unwrap_or_default()
}

#[test]
fn password_sign_in_opens_a_session_with_safe_cookie_flags_and_csrf() {
    let server = start("");
    let admin = server.client();
    // The policy is checked, and names what is missing.
    let weak = admin.send(
        "POST",
        "/admin/api/users",
        Some(&json!({"login": "alice", "role": "supervisor", "password": "short"})),
    );
    weak.assert_status(400, "a weak password");
    assert!(weak.error_text().contains("at least 8 characters"), "{}", weak.body);
    let created = create_user(
        &admin,
        json!({"login": "alice", "email": "alice@example.com", "role": "supervisor", "password": "Correct1Horse"}),
    );
    assert!(!created.to_string().contains("Correct1Horse") && created.get("password_hash").is_none(), "{created}");
    assert_eq!(created["one_time_password"], false);
    assert!(!admin.get("/admin/api/users").body.contains("argon2"), "no hashes in lists");

    // Wrong password and unknown login answer alike.
    let wrong = sign_in_raw(&server, "alice", "Wrong1Horse");
    let unknown = sign_in_raw(&server, "nobody", "Correct1Horse");
    wrong.assert_status(401, "wrong password");
    unknown.assert_status(401, "unknown login");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(reason(&wrong), "invalid_credentials");
    assert!(wrong.header("set-cookie").is_none());

    // The cookie: HttpOnly, SameSite=Strict, whole site; Secure when the client came over TLS.
    let r = sign_in_raw(&server, "alice", "Correct1Horse");
    r.assert_status(200, "sign in");
    let flags = r.header("set-cookie").unwrap().to_string();
    for flag in ["ferrogrid_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(flags.contains(flag), "{flag} missing: {flags}");
    }
    assert!(!flags.contains("Secure"), "plain HTTP: {flags}");
    let over_tls = server.unauthorized().send_with_headers(
        "POST",
        "/admin/api/login",
        Some(&json!({"login": "alice", "password": "Correct1Horse"})),
        &[("X-Forwarded-Proto", "https")],
    );
    over_tls.assert_status(200, "sign in behind a TLS proxy");
    assert!(over_tls.header("set-cookie").unwrap().contains("Secure"), "{:?}", over_tls.header("set-cookie"));

    let alice = sign_in(&server, "alice", "Correct1Horse");
    assert_eq!(alice.answer["role"], "supervisor");
    let me = alice.get(&server, "/admin/api/whoami");
    me.assert_status(200, "whoami with the cookie");
    assert_eq!(me.json()["subject"], "alice");
    assert_eq!(me.json()["csrf_token"], alice.csrf.as_str());
    // The role's rights apply: a supervisor reads and operates the repair queue, not tokens.
    alice.get(&server, "/admin/api/repair").assert_status(200, "supervisor reads the repair queue");
    alice
        .send(&server, "POST", "/admin/api/tokens", Some(&json!({"name": "x", "role": "user"})), true)
        .assert_status(403, "supervisor may not create tokens");
    // A change without the anti-CSRF header is refused; with a wrong one too; with it, done.
    let no_csrf = alice.send(&server, "POST", "/admin/api/repair/retry-all", None, false);
    no_csrf.assert_status(403, "no anti-CSRF header");
    assert_eq!(reason(&no_csrf), "csrf");
    let forged = server.unauthorized().send_with_headers(
        "POST",
        "/admin/api/repair/retry-all",
        None,
        &[("Cookie", &alice.cookie), ("X-CSRF-Token", "fg_forged")],
    );
    forged.assert_status(403, "a wrong anti-CSRF token");
    alice.send(&server, "POST", "/admin/api/repair/retry-all", None, true).assert_status(200, "with the header");
    // A bearer token needs no anti-CSRF header (it is not sent by browsers on their own).
    admin.send("POST", "/admin/api/repair/retry-all", None).assert_status(200, "a token");

    // The admin changes alice's role: her session acts with the new one at once.
    admin.send("PATCH", "/admin/api/users/alice", Some(&json!({"role": "user"}))).assert_status(200, "re-role alice");
    alice.get(&server, "/admin/api/repair").assert_status(403, "now a user");
    admin
        .send("PATCH", "/admin/api/users/alice", Some(&json!({"role": "supervisor"})))
        .assert_status(200, "back to supervisor");
    // Blocked: her sessions end at once (and do not come back with an unblock).
    admin
        .send("POST", "/admin/api/users/alice/block", Some(&json!({"reason": "on leave"})))
        .assert_status(200, "block alice");
    let blocked = alice.get(&server, "/admin/api/repair");
    blocked.assert_status(401, "blocked user's session");
    assert_eq!(reason(&blocked), "invalid_session");
    assert_eq!(reason(&sign_in_raw(&server, "alice", "Correct1Horse")), "user_blocked");
    admin.send("POST", "/admin/api/users/alice/unblock", None).assert_status(200, "unblock alice");
    alice.get(&server, "/admin/api/repair").assert_status(401, "the old session stays ended");
    let alice = sign_in(&server, "alice", "Correct1Horse");
    alice.get(&server, "/admin/api/repair").assert_status(200, "unblocked, signed in again");

    // Sign-out ends the session and clears the cookie.
    let out = alice.send(&server, "POST", "/admin/api/logout", None, true);
    out.assert_status(200, "sign out");
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"), "{:?}", out.header("set-cookie"));
    let after = alice.get(&server, "/admin/api/whoami");
    after.assert_status(401, "a signed-out session");
    assert_eq!(reason(&after), "invalid_session");

    // A proxy's Basic credentials do not hide the cookie.
    let behind_proxy = sign_in(&server, "alice", "Correct1Horse");
    let r = server.unauthorized().send_with_headers(
        "GET",
        "/admin/api/whoami",
        None,
        &[("Cookie", behind_proxy.cookie.as_str()), ("Authorization", "Basic cHJveHk6cHc=")],
    );
    r.assert_status(200, "a cookie with a Basic Authorization header");
    assert_eq!(r.json()["subject"], "alice");
    // Changing one's password ends one's other sessions, not this one.
    let other = sign_in(&server, "alice", "Correct1Horse");
    behind_proxy
        .send(
            &server,
            "PUT",
            "/admin/api/password",
            Some(&json!({"old_password": "Correct1Horse", "new_password": "Battery2Staple"})),
            true,
        )
        .assert_status(200, "alice changes her password");
    behind_proxy.get(&server, "/admin/api/whoami").assert_status(200, "the session that changed it");
    assert_eq!(reason(&other.get(&server, "/admin/api/whoami")), "invalid_session");
    assert_eq!(reason(&sign_in_raw(&server, "alice", "Correct1Horse")), "invalid_credentials");
    sign_in(&server, "alice", "Battery2Staple");

    // Deleting the user ends its sessions, and a new user of the same login inherits none.
    let last = sign_in(&server, "alice", "Battery2Staple");
    admin.send("DELETE", "/admin/api/users/alice", None).assert_status(204, "delete alice");
    assert_eq!(reason(&last.get(&server, "/admin/api/whoami")), "invalid_session");
    create_user(&admin, json!({"login": "alice", "role": "admin", "password": "Correct1Horse"}));
    assert_eq!(reason(&last.get(&server, "/admin/api/whoami")), "invalid_session");
    // A login is never a token's name, nor the reverse: a subject names one identity.
    admin
        .send("POST", "/admin/api/users", Some(&json!({"login": "admin", "role": "user", "password": "Correct1Horse"})))
        .assert_status(409, "a login that is a token's name");
    admin
        .send("POST", "/admin/api/tokens", Some(&json!({"name": "alice", "role": "user"})))
        .assert_status(409, "a token named like a user");
    // Sign-in takes JSON only (a cross-site form cannot post it).
    let form = server.unauthorized().send_with_headers(
        "POST",
        "/admin/api/login",
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    form.assert_status(415, "a form post to the sign-in");

    // The audit log has the sign-ins, the refusals and the CSRF refusal, with the subject.
    let events = audit(&admin, "text=sign_in&first=100");
    let kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| (e["subject"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect();
    assert!(kinds.contains(&("alice".into(), "ok 200".into())), "{kinds:?}");
    assert!(kinds.contains(&("alice".into(), "refused 401".into())), "{kinds:?}");
    assert!(kinds.contains(&("nobody".into(), "refused 401".into())), "{kinds:?}");
    let csrf = audit(&admin, "text=csrf&first=10");
    assert!(csrf.iter().any(|e| e["subject"] == "alice" && e["outcome"] == "refused 403"), "{csrf:?}");
}

/// The configuration history names a signed-in user as a user, not as a token.
#[test]
fn a_configuration_applied_by_a_user_says_so() {
    let server = start("");
    let admin = server.client();
    create_user(&admin, json!({"login": "olga", "role": "admin", "password": "Given!Password1"}));
    let olga = sign_in(&server, "olga", "Given!Password1");
    let changed = ferrogrid_tests::ConfigDir::sample_copy("quickstart");
    changed.write("config.yml", &format!("{}\n# changed\n", changed.read("config.yml")));
    server.apply_folder(changed.path()).assert_status(200, "version 2, by the admin token");
    olga.send(&server, "POST", "/admin/api/config/rollback/1", None, true).assert_status(200, "version 3, by olga");
    let listed = admin.get("/admin/api/config").json();
    let by = listed["versions"][0]["applied_by"].as_str().unwrap_or_default().to_string();
    assert!(by.starts_with("user olga from "), "{listed}");
}

/// Wrong old passwords in password changes count as failed sign-ins; the block they bring is an
/// ALARM in the audit log, as a sign-in's is.
#[test]
fn a_lock_out_by_password_changes_is_an_alarm() {
    let server = start("account_manager:\n  block_after_n_failed_attempts: 2\n");
    let admin = server.client();
    create_user(&admin, json!({"login": "dave", "role": "supervisor", "password": "Given!Password1"}));
    let dave = sign_in(&server, "dave", "Given!Password1");
    for attempt in 1..=2 {
        dave.send(
            &server,
            "PUT",
            "/admin/api/password",
            Some(&json!({"old_password": "Wrong!Password1", "new_password": "Better!Password1"})),
            true,
        )
        .assert_status(403, &format!("wrong old password {attempt}"));
    }
    assert_eq!(admin.get("/admin/api/users/dave").json()["state"], "blocked");
    let alarms = audit(&admin, "severity=ALARM&first=10");
    assert!(alarms.iter().any(|e| e["subject"] == "dave" && e["outcome"] == "locked out"), "{alarms:?}");
}

/// A user blocked because its password expired is not unblocked as it is (its next sign-in
/// would block it again): the answer says to reset the password, after which unblocking works.
#[test]
fn a_user_whose_password_expired_is_reset_before_it_is_unblocked() {
    let server = start("");
    let admin = server.client();
    create_user(&admin, json!({"login": "erin", "role": "supervisor", "password": "Given!Password1", "expires_in": 1}));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(reason(&sign_in_raw(&server, "erin", "Given!Password1")), "user_blocked");
    let refused = admin.send("POST", "/admin/api/users/erin/unblock", None);
    refused.assert_status(409, "unblock with the password expired");
    assert!(refused.error_text().contains("reset-password"), "{}", refused.body);
    assert_eq!(admin.get("/admin/api/users/erin").json()["state"], "blocked");
    let reset = admin.send("POST", "/admin/api/users/erin/reset-password", None);
    reset.assert_status(200, "reset erin's password");
    let one_time = reset.json()["password"].as_str().expect("the new password").to_string();
    admin.send("POST", "/admin/api/users/erin/unblock", None).assert_status(200, "unblock after the reset");
    assert_eq!(sign_in(&server, "erin", &one_time).answer["one_time_password"], true);
}

#[test]
fn one_time_passwords_change_timeouts_and_lock_out() {
    let server = start(
        "account_manager:\n  block_after_n_failed_attempts: 3\n  password_change_timeout_seconds: 3600\n  password_policy: {min_length: 10, include: {symbols: true}}\n",
    );
    let admin = server.client();
    let policy = admin.get("/admin/api/password-policy");
    policy.assert_status(200, "the policy");
    assert_eq!(policy.json()["password_policy"]["min_length"], 10);
    assert_eq!(policy.json()["block_after_n_failed_attempts"], 3);

    // No password given: a one-time password is generated, shown once, meets the policy.
    let bob = create_user(&admin, json!({"login": "bob", "role": "supervisor"}));
    let one_time = bob["password"].as_str().expect("the generated password").to_string();
    assert!(one_time.chars().count() >= 16 && one_time.chars().any(|c| c.is_ascii_punctuation()), "{one_time}");
    assert_eq!(bob["one_time_password"], true);
    assert!(admin.get("/admin/api/users/bob").json().get("password").is_none(), "shown once");

    // With a one-time password bob may do nothing but change it.
    let session = sign_in(&server, "bob", &one_time);
    assert_eq!(session.answer["one_time_password"], true);
    session.get(&server, "/admin/api/repair").assert_status(403, "one-time password: no rights yet");
    let weak = session.send(
        &server,
        "PUT",
        "/admin/api/password",
        Some(&json!({"old_password": one_time, "new_password": "Weak1Password"})),
        true,
    );
    weak.assert_status(400, "the policy applies to a change");
    assert!(weak.error_text().contains("symbol"), "{}", weak.body);
    session
        .send(
            &server,
            "PUT",
            "/admin/api/password",
            Some(&json!({"old_password": "Wrong!Password1", "new_password": "Better!Password1"})),
            true,
        )
        .assert_status(403, "the old password must match");
    session
        .send(
            &server,
            "PUT",
            "/admin/api/password",
            Some(&json!({"old_password": one_time, "new_password": "Better!Password1"})),
            true,
        )
        .assert_status(200, "change the one-time password");
    session.get(&server, "/admin/api/repair").assert_status(200, "rights once the password is changed");
    // password_change_timeout_seconds: not again within the hour.
    let again = session.send(
        &server,
        "PUT",
        "/admin/api/password",
        Some(&json!({"old_password": "Better!Password1", "new_password": "Another!Password2"})),
        true,
    );
    again.assert_status(403, "too soon");
    assert!(again.error_text().contains("password_change_timeout_seconds"), "{}", again.body);
    // A token has no password to change.
    admin
        .send("PUT", "/admin/api/password", Some(&json!({"old_password": "x", "new_password": "Better!Password1"})))
        .assert_status(400, "a token changes no password");

    // Lock-out: three failures in a row block bob; then even the right password is refused.
    for attempt in 1..=3 {
        let r = sign_in_raw(&server, "bob", "Wrong!Password1");
        r.assert_status(401, &format!("failure {attempt}"));
        assert_eq!(reason(&r), "invalid_credentials");
    }
    let state = admin.get("/admin/api/users/bob").json();
    assert_eq!(state["state"], "blocked", "{state}");
    assert!(state["state_reason"].as_str().unwrap().contains("3 failed sign-in attempts"), "{state}");
    assert_eq!(reason(&sign_in_raw(&server, "bob", "Better!Password1")), "user_blocked");
    session.get(&server, "/admin/api/repair").assert_status(401, "the blocked user's session");
    let alarms = audit(&admin, "severity=ALARM&first=10");
    assert!(alarms.iter().any(|e| e["subject"] == "bob" && e["outcome"] == "locked out"), "{alarms:?}");

    // Unblocked by an admin: the count starts over and bob signs in.
    admin.send("POST", "/admin/api/users/bob/unblock", None).assert_status(200, "unblock bob");
    assert_eq!(admin.get("/admin/api/users/bob").json()["failed_login_attempts"], 0);
    let bob_again = sign_in(&server, "bob", "Better!Password1");
    // A reset gives a new one-time password and ends bob's sessions.
    let reset = admin.send("POST", "/admin/api/users/bob/reset-password", None);
    reset.assert_status(200, "reset bob's password");
    let new_one = reset.json()["password"].as_str().unwrap().to_string();
    assert_eq!(reason(&bob_again.get(&server, "/admin/api/whoami")), "invalid_session");
    assert_eq!(reason(&sign_in_raw(&server, "bob", "Better!Password1")), "invalid_credentials");
    assert_eq!(sign_in(&server, "bob", &new_one).answer["one_time_password"], true);

    // password_change_timeout_seconds counts from one's own last change, not from the password
    // an administrator gave.
    create_user(&admin, json!({"login": "carol", "role": "supervisor", "password": "Given!Password1"}));
    let carol = sign_in(&server, "carol", "Given!Password1");
    carol
        .send(
            &server,
            "PUT",
            "/admin/api/password",
            Some(&json!({"old_password": "Given!Password1", "new_password": "Own!Password1x"})),
            true,
        )
        .assert_status(200, "the first own change");

    // A user manager grants nothing it does not have, and does not change its own account.
    admin
        .send("POST", "/admin/api/roles", Some(&json!({"name": "helpdesk", "actions": ["users_read", "users_admin"]})))
        .assert_status(201, "the helpdesk role");
    create_user(&admin, json!({"login": "hd", "role": "helpdesk", "password": "Help!desk12", "expires_in": 3600}));
    let hd = sign_in(&server, "hd", "Help!desk12");
    let send = |method: &str, path: &str, body: Option<Value>| hd.send(&server, method, path, body.as_ref(), true);
    send("POST", "/admin/api/users", Some(json!({"login": "mallory", "role": "admin", "password": "Mal!Password1"})))
        .assert_status(403, "helpdesk creates no admin");
    send("POST", "/admin/api/users/carol/reset-password", None)
        .assert_status(403, "nor resets a supervisor's password");
    send("PATCH", "/admin/api/users/hd", Some(json!({"expires_in": 0}))).assert_status(403, "its own lifetime");
    send("POST", "/admin/api/users/hd/block", None).assert_status(403, "its own state");
    send("POST", "/admin/api/users/hd/reset-password", None).assert_status(403, "its own password reset");
    send("DELETE", "/admin/api/users/hd", None).assert_status(403, "its own deletion");
    send("PATCH", "/admin/api/users/hd", Some(json!({"username": "Help Desk"}))).assert_status(200, "its own name");
    send("POST", "/admin/api/users", Some(json!({"login": "hd2", "role": "helpdesk", "password": "Help!desk34"})))
        .assert_status(201, "a user of a role within its own");
    assert_eq!(admin.get("/admin/api/users/mallory").status, 404);
    assert_eq!(admin.get("/admin/api/users/hd").json()["expires_in"], 3600);
}

#[test]
fn bad_sign_in_input_is_refused_and_lock_out_holds_under_a_flood() {
    let server = start("account_manager:\n  block_after_n_failed_attempts: 5\n");
    let admin = server.client();
    // A 1 MiB password is refused before anything reads it as a password.
    let huge = json!({"login": "x", "password": "A".repeat(1024 * 1024)});
    server.unauthorized().send("POST", "/admin/api/login", Some(&huge)).assert_status(413, "1 MiB password");
    // Over the longest password but under the body limit: a plain refusal, not counted.
    create_user(&admin, json!({"login": "alice", "role": "supervisor", "password": "Pass1word"}));
    assert_eq!(reason(&sign_in_raw(&server, "alice", &"Aa1".repeat(1000))), "invalid_credentials");
    assert_eq!(admin.get("/admin/api/users/alice").json()["failed_login_attempts"], 0);
    // Malformed bodies name what is wrong.
    let r = server.unauthorized().send("POST", "/admin/api/login", Some(&json!({"user": "x"})));
    r.assert_status(400, "wrong fields");
    assert!(r.error_text().contains("unknown field `user`"), "{}", r.body);

    // Unicode logins work; injection strings are only names.
    for login in ["Иван Петров", "山田太郎", "*)(uid=*", "admin' OR '1'='1"] {
        create_user(&admin, json!({"login": login, "role": "supervisor", "password": "Pass1word"}));
        sign_in(&server, login, "Pass1word");
    }
    // ... which match nothing else: alice's password opens no account through them.
    for login in ["*", "*)(uid=*))(|(uid=*", "alice*", "alice' --", "\u{0}alice", "ALICE", "alice\u{200B}"] {
        assert_eq!(reason(&sign_in_raw(&server, login, "Pass1word")), "invalid_credentials", "{login:?}");
    }
    admin
        .send("POST", "/admin/api/users", Some(&json!({"login": "bad/login", "role": "user", "password": "Pass1word"})))
        .assert_status(400, "a '/' in a login");
    admin
        .send(
            "POST",
            "/admin/api/users",
            Some(&json!({"login": "x".repeat(129), "role": "user", "password": "Pass1word"})),
        )
        .assert_status(400, "a 129-character login");

    // 10,000 failed sign-ins in a loop: the user is locked out after 5, stays locked, and the
    // server's memory stays flat.
    create_user(&admin, json!({"login": "target", "role": "admin", "password": "Target1pass"}));
    let pid = server.pid().expect("the server's pid");
    let rss = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let client = server.unauthorized();
    let body = json!({"login": "target", "password": "Wrong1pass"});
    let mut before = 0;
    let mut reasons = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..10_000 {
        if i == 1_000 {
            before = rss();
        }
        let r = client.send("POST", "/admin/api/login", Some(&body));
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
        *reasons.entry(reason(&r)).or_default() += 1;
    }
    let after = rss();
    assert_eq!(reasons.get("invalid_credentials"), Some(&5), "{reasons:?}");
    assert_eq!(reasons.get("user_blocked"), Some(&9_995), "{reasons:?}");
    assert_eq!(reason(&sign_in_raw(&server, "target", "Target1pass")), "user_blocked");
    assert!(after < before + 20 * 1024, "RSS grew from {before} kB to {after} kB over 9,000 failed sign-ins");
    let user = admin.get("/admin/api/users/target").json();
    assert_eq!(user["state"], "blocked");
    assert_eq!(user["failed_login_attempts"], 5, "attempts after the lock-out are not counted: {user}");
}

#[test]
fn one_time_passwords_only_sessions_and_passwords_expire_and_idle_users_are_blocked() {
    let server = start(
        "account_manager:\n  only_one_time_passwords: true\n  ban_inactive_more_seconds: 2\n  session_lifetime_seconds: 8\n",
    );
    let admin = server.client();
    admin
        .send(
            "POST",
            "/admin/api/users",
            Some(&json!({"login": "ann", "role": "supervisor", "password": "Chosen1pass"})),
        )
        .assert_status(400, "only one-time passwords");
    let ann = create_user(&admin, json!({"login": "ann", "role": "supervisor"}));
    let first = ann["password"].as_str().unwrap().to_string();
    let short = create_user(&admin, json!({"login": "brief", "role": "supervisor", "expires_in": 2}));
    let brief = short["password"].as_str().unwrap().to_string();
    let session = sign_in(&server, "ann", &first);
    session
        .send(
            &server,
            "PUT",
            "/admin/api/password",
            Some(&json!({"old_password": first, "new_password": "Chosen1pass"})),
            true,
        )
        .assert_status(200, "ann chooses her password");
    session.get(&server, "/admin/api/repair").assert_status(200, "ann works");
    // (8 s: room for two password hashes of a debug build on a busy machine before it ends.)
    std::thread::sleep(std::time::Duration::from_millis(8300));
    // The session lasted its 8 s.
    let expired = session.get(&server, "/admin/api/repair");
    expired.assert_status(401, "an expired session");
    assert_eq!(reason(&expired), "session_expired");
    // Unused for more than 2 s: blocked at the next sign-in, recorded as an alarm.
    assert_eq!(reason(&sign_in_raw(&server, "ann", "Chosen1pass")), "user_blocked");
    let state = admin.get("/admin/api/users/ann").json();
    assert_eq!(state["state"], "blocked");
    assert!(state["state_reason"].as_str().unwrap().contains("ban_inactive_more_seconds"), "{state}");
    // A password older than its expires_in: blocked too.
    assert_eq!(reason(&sign_in_raw(&server, "brief", &brief)), "user_blocked");
    let state = admin.get("/admin/api/users/brief").json();
    assert!(state["state_reason"].as_str().unwrap().contains("expired"), "{state}");
    assert_eq!(state["password_expired"], true);
    let alarms = audit(&admin, "severity=ALARM&text=blocked");
    for login in ["ann", "brief"] {
        assert!(alarms.iter().any(|e| e["subject"] == login), "{login}: {alarms:?}");
    }
    // Unblocked: the inactivity clock starts again.
    admin.send("POST", "/admin/api/users/ann/unblock", None).assert_status(200, "unblock ann");
    sign_in(&server, "ann", "Chosen1pass");
}

/// The one-time password of the mail to `to` not seen before (waiting for it to arrive); it
/// joins `seen`.
fn mailed_password(sink: &SmtpSink, to: &str, seen: &mut Vec<String>) -> String {
    for _ in 0..600 {
        for mail in sink.mails().into_iter().filter(|m| m.contains(&format!("To: {to}"))) {
            assert!(mail.contains("Subject: Registration"), "{mail}");
            // The password is the indented line (the default policy: letters and digits, which
            // quoted-printable leaves as they are).
            let password = mail.lines().find(|l| l.starts_with("    ")).expect("the password line").trim().to_string();
            if !seen.contains(&password) {
                seen.push(password.clone());
                return password;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no new mail to {to}: {:?}", sink.mails());
}

#[test]
fn one_time_passwords_are_mailed_through_the_smtp_output_and_never_answered() {
    let mut sink = SmtpSink::start();
    let dir = sample("quickstart");
    let model = std::fs::read_to_string(dir.join("model.avsc")).expect("quickstart model.avsc");
    let config = format!(
        "types: {{__file: model.avsc}}\nconnector:\n  input:\n    - {{name: http, type: http}}\n  output:\n    - {{name: to_smtp, type: smtp, url: \"{}\", from: \"Grid <grid@example.com>\", timeout: 5}}\ninput_processor:\n  storage:\n    - {{key: User, type: User}}\naccount_manager:\n  only_one_time_passwords: true\n  output:\n    name: to_smtp\n    options:\n      subject: Registration\n",
        sink.url()
    );
    let server = Server::start_with_config(&config, &[("model.avsc", &model)]);
    let admin = server.client();

    // A user needs an e-mail to get the password; nothing is created without one.
    let r = admin.send("POST", "/admin/api/users", Some(&json!({"login": "ann", "role": "supervisor"})));
    r.assert_status(400, "no e-mail");
    assert!(r.body.contains("needs an email"), "{}", r.body);
    admin.get("/admin/api/users/ann").assert_status(404, "not created");

    // Created: the answer says where the password went and does not hold it; the mail does.
    let ann = create_user(&admin, json!({"login": "ann", "role": "supervisor", "email": "ann@example.com"}));
    assert!(ann.get("password").is_none(), "{ann}");
    assert_eq!(ann["password_sent_to"], "ann@example.com", "{ann}");
    let mut seen = Vec::new();
    let first = mailed_password(&sink, "ann@example.com", &mut seen);
    let session = sign_in(&server, "ann", &first);
    assert_eq!(session.answer["one_time_password"], true, "the mailed password is a one-time password");

    // A reset mails a new one; the old one no longer opens anything.
    let reset = admin.send("POST", "/admin/api/users/ann/reset-password", None);
    reset.assert_status(200, "reset");
    assert!(reset.json().get("password").is_none() && reset.json()["password_sent_to"] == "ann@example.com");
    sign_in_raw(&server, "ann", &first).assert_status(401, "the first password after the reset");
    let second = mailed_password(&sink, "ann@example.com", &mut seen);
    sign_in(&server, "ann", &second);
    assert_eq!(sink.mails().len(), 2);

    // The admin GraphQL schema mails too.
    let added = admin.graphql(
        "mutation { user { add(login: \"bob\", role: \"supervisor\", email: \"bob@example.com\") { login password password_sent_to } } }",
        json!({}),
        true,
    );
    assert!(added.get("errors").is_none(), "{added}");
    assert_eq!(added["data"]["user"]["add"]["password"], Value::Null, "{added}");
    assert_eq!(added["data"]["user"]["add"]["password_sent_to"], "bob@example.com", "{added}");
    let bobs = mailed_password(&sink, "bob@example.com", &mut seen);
    sign_in(&server, "bob", &bobs);

    let nameless =
        admin.graphql("mutation { user { add(login: \"cy\", role: \"supervisor\") { login } } }", json!({}), true);
    assert!(nameless["errors"][0]["message"].as_str().unwrap_or_default().contains("needs an email"), "{nameless}");

    // The SMTP server down: 502 naming the failure, the user kept (reset to mail another), and
    // the audit log has both outcomes.
    sink.stop();
    let by_graphql = admin.graphql("mutation { user { reset_password(login: \"bob\") { login } } }", json!({}), true);
    assert_eq!(by_graphql["errors"][0]["extensions"]["code"], "MAIL_FAILED", "{by_graphql}");
    let failed = admin.send("POST", "/admin/api/users/ann/reset-password", None);
    failed.assert_status(502, "the mail failed");
    assert!(failed.body.contains("mailing the one-time password failed"), "{}", failed.body);
    assert!(failed.json().get("user").is_some() && failed.json()["user"].get("password").is_none(), "{}", failed.body);
    let audit = admin.get("/admin/api/audit?text=password_mail").json();
    let outcomes: Vec<&str> = audit.as_array().into_iter().flatten().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "sent").count(), 3, "{audit}");
    assert_eq!(outcomes.iter().filter(|o| **o == "failed").count(), 2, "{audit}");
    // The reset itself is recorded too, though its mail failed.
    let resets = admin.get("/admin/api/audit?text=reset_password%20bob").json();
    assert_eq!(resets.as_array().map(Vec::len), Some(1), "{resets}");
    sink.start_again();
    admin.send("POST", "/admin/api/users/ann/reset-password", None).assert_status(200, "mailed again");
    let again = mailed_password(&sink, "ann@example.com", &mut seen);
    sign_in(&server, "ann", &again);
}

#[test]
fn an_admin_sets_the_password_policy_over_the_configurations_and_goes_back() {
    let mut server = start("account_manager:\n  password_policy: {min_length: 10}\n");
    let admin = server.client();
    let stricter =
        json!({"min_length": 20, "include": {"lower": true, "upper": true, "digits": true, "symbols": true}});
    let set = admin.send("PUT", "/admin/api/password-policy", Some(&stricter));
    set.assert_status(200, "set the policy");
    assert_eq!(set.json()["overridden"], true);
    assert_eq!(set.json()["password_policy"]["min_length"], 20);
    assert_eq!(set.json()["configured"]["min_length"], 10);

    // Passwords set from now on meet it; generated ones too.
    let short = admin.send(
        "POST",
        "/admin/api/users",
        Some(&json!({"login": "ann", "role": "supervisor", "password": "Fifteen-Chars-1"})),
    );
    short.assert_status(400, "shorter than the admin's policy");
    assert!(short.body.contains("at least 20 characters"), "{}", short.body);
    let bob = create_user(&admin, json!({"login": "bob", "role": "supervisor"}));
    let generated = bob["password"].as_str().unwrap_or_default();
    assert!(generated.chars().count() >= 20 && generated.chars().any(|c| c.is_ascii_punctuation()), "{generated}");

    // Only users_admin sets it; an impossible policy is refused; it survives a restart.
    let created = admin.send("POST", "/admin/api/tokens", Some(&json!({"name": "watcher", "role": "supervisor"})));
    created.assert_status(201, "a supervisor token");
    let supervisor = server.with_token(created.json()["token"].as_str().unwrap_or_default());
    supervisor.send("PUT", "/admin/api/password-policy", Some(&stricter)).assert_status(403, "a supervisor");
    supervisor.get("/admin/api/password-policy").assert_status(200, "anyone signed in reads it");
    admin.send("PUT", "/admin/api/password-policy", Some(&json!({"min_length": 0}))).assert_status(400, "min_length 0");
    admin
        .send("PUT", "/admin/api/password-policy", Some(&json!({"min_length": 12, "colour": "red"})))
        .assert_status(400, "an unknown field");
    server.restart();
    let admin = server.client();
    assert_eq!(admin.get("/admin/api/password-policy").json()["password_policy"]["min_length"], 20);

    // Back to the configuration's.
    let back = admin.send("DELETE", "/admin/api/password-policy", None);
    back.assert_status(200, "back");
    assert_eq!(
        (back.json()["overridden"].as_bool(), back.json()["password_policy"]["min_length"].as_u64()),
        (Some(false), Some(10))
    );
    create_user(&admin, json!({"login": "ann", "role": "supervisor", "password": "Fifteen-Chars-1"}));

    // The same through the admin GraphQL schema (TDG's password_generator).
    let set = admin.graphql(
        "mutation { password_generator { config(min_length: 14, include: {symbols: true}) } }",
        json!({}),
        true,
    );
    assert_eq!(set["data"]["password_generator"]["config"]["min_length"], 14, "{set}");
    let read = admin.graphql(
        "{ password_generator { config validate(password: \"Fifteen-Chars-1\") { valid } } }",
        json!({}),
        true,
    );
    assert_eq!(read["data"]["password_generator"]["config"]["include"]["symbols"], true, "{read}");
    assert_eq!(read["data"]["password_generator"]["validate"]["valid"], true, "{read}");
    let reset = admin.graphql("mutation { password_generator { reset_config } }", json!({}), true);
    assert_eq!(reset["data"]["password_generator"]["reset_config"]["min_length"], 10, "{reset}");
    assert_eq!(admin.get("/admin/api/password-policy").json()["overridden"], false);
}
