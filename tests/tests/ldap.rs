//! LDAP sign-in against a real OpenLDAP server (Debian's slapd, started on a free loopback port
//! with a throwaway directory): a user in the admin group signs in as admin, one in the readers
//! group as supervisor, one in no mapped group is refused, wrong and empty passwords and filter
//! injections are refused, and with the server down the sign-in answers a clear 503 while local
//! users still sign in. A mapping names an existing role, holds it against deletion, and a
//! changed mapping ends the LDAP sessions.

use ferrogrid_tests::peers::LdapServer;
use ferrogrid_tests::{sample, Resp, Server};
use serde_json::{json, Value};

const DIRECTORY: &str = "\
dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=ada,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ada
cn: Ada Lovelace
sn: Lovelace
userPassword: Ada-Pass-1

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Reader
sn: Reader
userPassword: Bob-Pass-1

dn: uid=carl,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carl
cn: Carl Nobody
sn: Nobody
userPassword: Carl-Pass-1

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: admins
member: uid=ada,ou=people,dc=example,dc=com

dn: cn=readers,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: readers
member: uid=bob,ou=people,dc=example,dc=com
";

fn start(ldap: &LdapServer) -> Server {
    let dir = sample("quickstart");
    let config = std::fs::read_to_string(dir.join("config.yml")).expect("quickstart config.yml");
    let model = std::fs::read_to_string(dir.join("model.avsc")).expect("quickstart model.avsc");
    let section = format!(
        "ldap:\n  - domain: example.com\n    organizational_units: [people]\n    hosts: ['{}']\n    search_timeout: 2\n    roles:\n      - role: admin\n        domain_groups: ['cn=admins,ou=groups,dc=example,dc=com']\n      - role: supervisor\n        domain_groups: ['CN=Readers, OU=groups,dc=example,dc=com']\n",
        ldap.host()
    );
    Server::start_with_config(&format!("{config}\n{section}"), &[("model.avsc", &model)])
}

fn sign_in(server: &Server, login: &str, password: &str) -> Resp {
    server.unauthorized().send("POST", "/admin/api/login", Some(&json!({"login": login, "password": password})))
}

fn reason(r: &Resp) -> String {
    r.json()["reason"].as_str().unwrap_or_default().to_string()
}

/// The cookie of a sign-in answer.
fn cookie(r: &Resp) -> String {
    r.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string()
}

#[test]
fn ldap_groups_map_to_roles_and_a_server_outage_leaves_local_users_working() {
    let mut ldap = LdapServer::start(DIRECTORY);
    let server = start(&ldap);
    let admin = server.client();

    // Ada, in the admins group: an admin session.
    let ada = sign_in(&server, "ada@example.com", "Ada-Pass-1");
    ada.assert_status(200, "ada signs in through LDAP");
    assert_eq!(ada.json()["role"], "admin");
    let ada_cookie = cookie(&ada);
    let change = server.unauthorized().send_with_headers(
        "PUT",
        "/admin/api/password",
        Some(&json!({"old_password": "Ada-Pass-1", "new_password": "Ada-Pass-2"})),
        &[("Cookie", &ada_cookie), ("X-CSRF-Token", ada.json()["csrf_token"].as_str().unwrap_or_default())],
    );
    change.assert_status(400, "an LDAP user's password change");
    assert!(change.error_text().contains("changed in the directory"), "{}", change.body);
    let me = server.unauthorized().send_with_headers("GET", "/admin/api/whoami", None, &[("Cookie", &ada_cookie)]);
    assert_eq!((me.json()["subject"].as_str(), me.json()["role"].as_str()), (Some("ada@example.com"), Some("admin")));
    server
        .unauthorized()
        .send_with_headers("GET", "/admin/api/tokens", None, &[("Cookie", &ada_cookie)])
        .assert_status(200, "an admin reads tokens");

    // Bob, in the readers group (matched whatever the case and spacing of the DN): supervisor.
    let bob = sign_in(&server, "bob@example.com", "Bob-Pass-1");
    bob.assert_status(200, "bob signs in");
    assert_eq!(bob.json()["role"], "supervisor");
    let (bob_cookie, bob_csrf) = (cookie(&bob), bob.json()["csrf_token"].as_str().unwrap().to_string());
    server
        .unauthorized()
        .send_with_headers(
            "POST",
            "/admin/api/tokens",
            Some(&json!({"name": "x", "role": "user"})),
            &[("Cookie", &bob_cookie), ("X-CSRF-Token", &bob_csrf)],
        )
        .assert_status(403, "a supervisor creates no tokens");

    // Carl is in no mapped group: refused like a wrong password (a guesser learns nothing),
    // recorded as no_role. Wrong and empty passwords, unknown people, injections: refused.
    let carl = sign_in(&server, "carl@example.com", "Carl-Pass-1");
    carl.assert_status(401, "no role for carl");
    assert_eq!(carl.body, sign_in(&server, "carl@example.com", "wrong").body);
    // The login as the directory spells it: one subject however it is typed.
    let shouting = sign_in(&server, "ADA@Example.COM", "Ada-Pass-1");
    shouting.assert_status(200, "ada, typed in capitals");
    assert_eq!(shouting.json()["login"], "ada@example.com");
    for (login, password) in [
        ("ada@example.com", "wrong"),
        ("ada@example.com", ""),
        ("nobody@example.com", "Ada-Pass-1"),
        ("*@example.com", "Ada-Pass-1"),
        ("*)(uid=*@example.com", "Ada-Pass-1"),
        ("ada,ou=people@example.com", "Ada-Pass-1"),
    ] {
        let r = sign_in(&server, login, password);
        assert_eq!(
            (r.status, reason(&r)),
            (401, "invalid_credentials".to_string()),
            "{login:?} / {password:?}: {}",
            r.body
        );
    }

    // A local user, and the audit log of the LDAP sign-ins.
    admin
        .send(
            "POST",
            "/admin/api/users",
            Some(&json!({"login": "local", "role": "supervisor", "password": "Local-Pass-1"})),
        )
        .assert_status(201, "a local user");
    // A local login in the directory's domain could never sign in (those go to LDAP): refused,
    // over REST and the admin schema.
    for login in ["ada@example.com", "bob@EXAMPLE.com"] {
        let r = admin.send(
            "POST",
            "/admin/api/users",
            Some(&json!({"login": login, "role": "supervisor", "password": "Local-Pass-1"})),
        );
        r.assert_status(400, &format!("a local user {login}"));
        assert!(r.error_text().contains("LDAP directory"), "{}", r.body);
    }
    let answer = admin
        .send_with_headers(
            "POST",
            "/graphql",
            Some(&json!({"query": "mutation { user { add(login: \"cy@example.com\", role: \"supervisor\") { login } } }"})),
            &[("schema", "admin")],
        )
        .json();
    assert!(answer["errors"][0]["message"].as_str().is_some_and(|m| m.contains("LDAP directory")), "{answer}");
    let events: Vec<Value> = admin.get("/admin/api/audit?text=sign_in").json().as_array().cloned().unwrap();
    assert!(
        events.iter().any(|e| e["subject"] == "ada@example.com"
            && e["outcome"] == "ok 200"
            && e["message"].as_str().unwrap().contains("ldap uid=ada")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["outcome"] == "refused 401" && e["message"].as_str().unwrap().contains("no_role")),
        "{events:?}"
    );

    // The LDAP server goes down: a clear 503 naming the domain and host; local users go on.
    ldap.stop();
    let down = sign_in(&server, "ada@example.com", "Ada-Pass-1");
    down.assert_status(503, "LDAP down");
    assert_eq!(reason(&down), "ldap_unavailable");
    let text = down.error_text();
    assert!(text.contains("example.com") && !text.contains(&ldap.host()), "the domain, not its hosts: {text}");
    let failed: Vec<Value> = admin.get("/admin/api/audit?text=failed%20503").json().as_array().cloned().unwrap();
    assert!(
        failed.iter().any(|e| e["message"].as_str().unwrap().contains(&ldap.host())),
        "the audit log has the hosts: {failed:?}"
    );
    sign_in(&server, "local", "Local-Pass-1").assert_status(200, "a local user with LDAP down");
    // Ada's open session lasts its lifetime.
    server
        .unauthorized()
        .send_with_headers("GET", "/admin/api/whoami", None, &[("Cookie", &ada_cookie)])
        .assert_status(200, "an LDAP session with the server down");
    // Back up: LDAP sign-in works again.
    ldap.start_again();
    sign_in(&server, "ada@example.com", "Ada-Pass-1").assert_status(200, "LDAP back");
}

/// `config.yml` of the quickstart sample with an `ldap` section mapping `roles` (role, group
/// cn) for the server.
fn config_with(ldap: &LdapServer, roles: &[(&str, &str)]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let dir = sample("quickstart");
    let config = std::fs::read_to_string(dir.join("config.yml")).expect("quickstart config.yml");
    let mut section = format!(
        "ldap:\n  - domain: example.com\n    organizational_units: [people]\n    hosts: ['{}']\n    roles:\n",
        ldap.host()
    );
    for (role, group) in roles {
        section.push_str(&format!(
            "      - role: {role}\n        domain_groups: ['cn={group},ou=groups,dc=example,dc=com']\n"
        ));
    }
    let mut files = ferrogrid_tests::folder_files(&dir);
    files.insert("config.yml".into(), format!("{config}\n{section}").into_bytes());
    files
}

#[test]
fn ldap_mappings_name_existing_roles_hold_them_and_a_changed_mapping_ends_ldap_sessions() {
    let ldap = LdapServer::start(DIRECTORY);
    let server = start(&ldap);
    let admin = server.client();
    let apply = |files| server.put_raw("/admin/api/config", "application/gzip", &ferrogrid_tests::tar_gz(&files, None));

    // A mapping to a role that does not exist is refused, naming where.
    let ghost = apply(config_with(&ldap, &[("admin", "admins"), ("ghost", "readers")]));
    ghost.assert_status(422, "a mapping to no role");
    assert!(ghost.body.contains("ldap[0].roles[1].role: there is no role \\\"ghost\\\""), "{}", ghost.body);

    // A custom role, mapped from the readers group.
    admin
        .send("POST", "/admin/api/roles", Some(&json!({"name": "auditor", "actions": ["audit_log_read"]})))
        .assert_status(201, "a custom role");
    let ada = sign_in(&server, "ada@example.com", "Ada-Pass-1");
    ada.assert_status(200, "ada signs in");
    let ada_cookie = cookie(&ada);
    admin
        .send(
            "POST",
            "/admin/api/users",
            Some(&json!({"login": "local", "role": "supervisor", "password": "Local-Pass-1"})),
        )
        .assert_status(201, "a local user");
    let local = sign_in(&server, "local", "Local-Pass-1");
    local.assert_status(200, "the local user signs in");
    let local_cookie = cookie(&local);
    let whoami =
        |cookie: &str| server.unauthorized().send_with_headers("GET", "/admin/api/whoami", None, &[("Cookie", cookie)]);
    apply(config_with(&ldap, &[("admin", "admins"), ("auditor", "readers")]))
        .assert_status(200, "map readers to auditor");
    whoami(&local_cookie).assert_status(200, "a local session outlives the ldap change");

    // The mapping changed: LDAP sessions end (Ada signs in again); Bob is an auditor now.
    let me = server.unauthorized().send_with_headers("GET", "/admin/api/whoami", None, &[("Cookie", &ada_cookie)]);
    me.assert_status(401, "ada's session ended with the ldap change");
    sign_in(&server, "ada@example.com", "Ada-Pass-1").assert_status(200, "ada again");
    let bob = sign_in(&server, "bob@example.com", "Bob-Pass-1");
    bob.assert_status(200, "bob");
    assert_eq!(bob.json()["role"], "auditor");
    let bob_cookie = cookie(&bob);
    server
        .unauthorized()
        .send_with_headers("GET", "/admin/api/audit", None, &[("Cookie", &bob_cookie)])
        .assert_status(200, "an auditor reads the audit log");

    // A version that leaves the ldap section as it was keeps the LDAP sessions.
    let mut same = config_with(&ldap, &[("admin", "admins"), ("auditor", "readers")]);
    if let Some(config) = same.get_mut("config.yml") {
        config.extend_from_slice(b"\n# the same ldap section\n");
    }
    apply(same).assert_status(200, "another version, the same ldap");
    whoami(&bob_cookie).assert_status(200, "bob's session outlives a version that leaves ldap alone");

    // The configuration holds the role: deleting it is refused until the mapping goes.
    let held = admin.send("DELETE", "/admin/api/roles/auditor", None);
    held.assert_status(409, "a mapped role");
    assert!(held.body.contains("ldap[0].roles[1].role"), "{}", held.body);
    apply(config_with(&ldap, &[("admin", "admins")])).assert_status(200, "unmap auditor");
    admin.send("DELETE", "/admin/api/roles/auditor", None).assert_status(204, "an unmapped role");
    server
        .unauthorized()
        .send_with_headers("GET", "/admin/api/whoami", None, &[("Cookie", &bob_cookie)])
        .assert_status(401, "bob's session ended with the second change");
    sign_in(&server, "bob@example.com", "Bob-Pass-1").assert_status(401, "readers map to nothing now");
}
