//! The operator UI in real browsers (headless Chromium through chromedriver, headless Firefox
//! ESR through geckodriver), against `samples/library`, in both: sign in; an object that fails
//! appears on Repair with its error; the filter finds it; the details show its payload; editing the payload shows the diff and Retry edited
//! stores it (readable through /data); Delete asks for confirmation; the Test page shows the
//! stored version of a good object and the error of a bad one; Tasks, Failed jobs and Model
//! pages render; no console errors on any page. Against `samples/soap`, the Test page posts a
//! SOAP envelope and shows the stored version, or the Fault. The Configuration page checks
//! uploaded files and shows what applying them changes, applies them (Try again all then clears
//! the repair queue without a restart), compares two versions and rolls back. Screenshots go to
//! target/ui-screenshots/. The GraphQL console completes a type's fields and a field's arguments
//! from the schema, runs a query, switches to the admin schema and keeps a history.

use ferrogrid_tests::webdriver::{keys, Browser, Element, Kind};
use ferrogrid_tests::{wait_until, workspace_root, Server};
use serde_json::{json, Value};

fn shot(browser: &Browser, name: &str) {
    let name = match browser.kind() {
        Kind::Chromium => name.to_string(),
        Kind::Firefox => format!("firefox-{name}"),
    };
    let path = workspace_root().join("target/ui-screenshots").join(format!("{name}.png"));
    browser.screenshot(&path).unwrap_or_else(|e| panic!("screenshot {name}: {e:#}"));
}

/// The first cell of the first row (Firefox clicks cells, not table rows).
fn first_cell(browser: &Browser) -> Element {
    browser.find("#repair-rows tr.row td").expect("a row")
}

/// Opens the "Sign in with a token" part of the sign-in page (folded under the password form).
fn open_token_form(browser: &Browser) {
    let details = browser.find("#token-signin").unwrap();
    if browser.property(&details, "open").unwrap() != json!(true) {
        browser.click(&browser.find("#token-signin summary").unwrap()).unwrap();
    }
}

/// Signs in with `token` on the sign-in page.
fn token_sign_in(browser: &Browser, token: &str) {
    open_token_form(browser);
    browser.type_into(&browser.find("#token").unwrap(), token).unwrap();
    browser.click(&browser.find("#signin-button").unwrap()).unwrap();
}

/// Chromium on the UI of `server`, signed in with its token; and the UI's URL.
fn signed_in(server: &Server) -> (Browser, String) {
    let browser = Browser::start().expect("chromium and chromedriver (see scripts/test.sh)");
    let admin = format!("{}/admin/", server.base_url());
    browser.goto(&admin).unwrap();
    token_sign_in(&browser, server.token());
    (browser, admin)
}

fn rows(browser: &Browser) -> Vec<Element> {
    browser.find_all("#repair-rows tr.row").unwrap_or_default()
}

fn no_console_errors(browser: &Browser, page: &str) {
    let errors = browser.console_errors().expect("browser log");
    assert!(errors.is_empty(), "console errors on {page}: {errors:?}");
}

#[test]
fn an_operator_finds_fixes_and_retries_a_failed_object() {
    operator_flow(Kind::Chromium);
}

#[test]
fn an_operator_finds_fixes_and_retries_a_failed_object_in_firefox() {
    operator_flow(Kind::Firefox);
}

fn operator_flow(kind: Kind) {
    let server = Server::start("samples/library");
    let parked = server.post_sync(&json!({"id": 41, "title": "neither user nor book"}));
    assert_eq!(parked["status"], "repair");
    let doomed = server.post_sync(&json!({"id": 42, "note": "to be deleted"}));
    assert_eq!(doomed["status"], "repair");

    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    let admin = format!("{}/admin/", server.base_url());
    browser.goto(&admin).unwrap();

    // Sign in: a wrong token is refused, the right one opens the Repair page.
    open_token_form(&browser);
    let token = browser.find("#token").unwrap();
    browser.type_into(&token, "fg_wrong").unwrap();
    browser.click(&browser.find("#signin-button").unwrap()).unwrap();
    browser
        .wait("the refusal", || {
            browser.text(&browser.find("#signin-error").ok()?).ok().filter(|t| t.contains("not accepted"))
        })
        .unwrap();
    shot(&browser, "signin");
    // The refused request is logged by the browser as a failed resource (401): expected here.
    let refused = browser.console_errors().unwrap();
    assert!(refused.iter().all(|e| e.contains("401")), "{refused:?}");
    browser.type_into(&token, server.token()).unwrap();
    browser.type_into(&browser.find("#operator").unwrap(), "Ops Olga").unwrap();
    browser.click(&browser.find("#signin-button").unwrap()).unwrap();
    browser.wait("two rows", || (rows(&browser).len() == 2).then_some(())).unwrap();
    let table = browser.text(&browser.find("#repair-table").unwrap()).unwrap();
    assert!(table.contains("no storage or route for routing_key \"unknown_type\""), "{table}");
    browser
        .wait("the status header", || {
            browser.text(&browser.find("#status").ok()?).ok().filter(|t| t.contains("in repair 2"))
        })
        .unwrap();
    let header = browser.text(&browser.find("#status").unwrap()).unwrap();
    assert!(header.contains("output repair 0") && header.contains("last error"), "{header}");
    no_console_errors(&browser, "repair");

    // The filter finds one by text.
    browser.type_into(&browser.find("#repair-filter").unwrap(), "neither user").unwrap();
    browser.click(&browser.find("#repair-apply").unwrap()).unwrap();
    browser.wait("one row", || (rows(&browser).len() == 1).then_some(())).unwrap();
    browser.click(&first_cell(&browser)).unwrap();
    let editor = browser.find("#payload-editor").unwrap();
    let payload = browser.property(&editor, "value").unwrap();
    assert!(payload.as_str().is_some_and(|p| p.contains("\"title\": \"neither user nor book\"")), "{payload}");
    shot(&browser, "repair-details");

    // Edit the payload into a user: the diff shows the change; Retry edited stores it.
    let fixed = serde_json::to_string_pretty(&json!({"id": 41, "username": "Fixed by the operator"})).unwrap();
    browser.type_into(&editor, &fixed).unwrap();
    let diff = browser
        .wait("the diff", || browser.text(&browser.find("#payload-diff").ok()?).ok().filter(|d| d.contains("+ ")))
        .unwrap();
    assert!(diff.contains("- ") && diff.contains("username"), "{diff}");
    shot(&browser, "repair-edit-diff");
    browser.click(&browser.find("#retry-edited").unwrap()).unwrap();
    let note = browser
        .wait("the outcome", || browser.text(&browser.find("#repair-message").ok()?).ok().filter(|t| !t.is_empty()))
        .unwrap();
    assert!(note.contains("stored as User, version"), "{note}");
    browser.wait("the row is gone", || rows(&browser).is_empty().then_some(())).unwrap();
    let users = server.data("User", "id=41");
    assert_eq!(users[0]["object"]["username"], "Fixed by the operator");
    let history = server.get(&format!("/admin/api/repair/{}", parked["id"].as_str().unwrap_or_default()));
    history.assert_status(404, "the entry is gone once stored");

    // An edit that still fails stays, and its history says who edited it.
    browser.type_into(&browser.find("#repair-filter").unwrap(), "").unwrap();
    browser.click(&browser.find("#repair-apply").unwrap()).unwrap();
    browser.wait("the other row", || (rows(&browser).len() == 1).then_some(())).unwrap();
    browser.click(&first_cell(&browser)).unwrap();
    let editor = browser.find("#payload-editor").unwrap();
    browser.type_into(&editor, r#"{"id": 42, "note": "still not a library object"}"#).unwrap();
    browser.click(&browser.find("#retry-edited").unwrap()).unwrap();
    browser
        .wait("still failing", || {
            browser.text(&browser.find("#details-message").ok()?).ok().filter(|t| t.contains("Still failing"))
        })
        .unwrap();
    let entry = server.get(&format!("/admin/api/repair/{}", doomed["id"].as_str().unwrap_or_default())).json();
    let edits: Vec<&serde_json::Value> =
        entry["history"].as_array().map(|h| h.iter().filter(|a| a["event"] == "edited").collect()).unwrap_or_default();
    assert_eq!(edits.len(), 1, "{entry}");
    // Recorded under the signed-in identity (the admin token), with the name typed beside it.
    assert_eq!(edits[0]["by"], "admin (for Ops Olga)");
    assert_eq!(edits[0]["previous_payload"], json!({"id": 42, "note": "to be deleted"}));
    assert_eq!(entry["payload"], json!({"id": 42, "note": "still not a library object"}));

    // Delete asks first: Cancel keeps the entry, Confirm deletes it.
    browser.click(&browser.find("#delete-one").unwrap()).unwrap();
    browser
        .wait("the confirmation", || {
            browser.script("return document.getElementById('confirm').open", json!([])).ok().filter(|v| v == true)
        })
        .unwrap();
    shot(&browser, "repair-delete-confirm");
    browser.click(&browser.find("#confirm button[value=cancel]").unwrap()).unwrap();
    assert_eq!(server.repair_entries("").len(), 1, "cancel keeps it");
    browser.click(&browser.find("#delete-one").unwrap()).unwrap();
    browser.click(&browser.find("#confirm-ok").unwrap()).unwrap();
    browser.wait("the queue is empty", || server.repair_entries("").is_empty().then_some(())).unwrap();
    no_console_errors(&browser, "repair after actions");

    // The Test page: a good object is stored with its version, a bad one shows its error.
    browser.goto(&format!("{admin}#/test")).unwrap();
    let body = browser.find("#test-body").unwrap();
    browser.type_into(&body, r#"{"id": 77, "username": "Tested"}"#).unwrap();
    browser.click(&browser.find("#test-send").unwrap()).unwrap();
    let result = browser
        .wait("stored", || browser.text(&browser.find("#test-result").ok()?).ok().filter(|t| t.contains("Stored")))
        .unwrap();
    assert!(result.contains("Stored as User") && result.contains("version"), "{result}");
    browser.type_into(&body, r#"{"id": 78, "username": 5}"#).unwrap();
    browser.click(&browser.find("#test-send").unwrap()).unwrap();
    let result = browser
        .wait("the error", || browser.text(&browser.find("#test-result").ok()?).ok().filter(|t| t.contains("repair")))
        .unwrap();
    assert!(result.contains("User.username"), "{result}");
    shot(&browser, "test");
    no_console_errors(&browser, "test");

    // The other pages render from their APIs.
    for (page, marker, text) in [
        ("tasks", "#tasks-rows", "statistics"),
        ("jobs", "#jobs-rows", "No failed job"),
        ("model", "#model-summary", "Subscription"),
    ] {
        browser.goto(&format!("{admin}#/{page}")).unwrap();
        browser
            .wait(page, || browser.text(&browser.find(marker).ok()?).ok().filter(|t| t.contains(text)))
            .unwrap_or_else(|e| panic!("{page}: {e:#}"));
        shot(&browser, page);
        no_console_errors(&browser, page);
    }

    // A narrow window: the navigation and the table stay usable (no page-wide horizontal scroll).
    browser.set_window_size(420, 800).unwrap();
    browser.goto(&format!("{admin}#/repair")).unwrap();
    browser.find("#repair-table").unwrap();
    let overflow = browser
        .script("return document.documentElement.scrollWidth - document.documentElement.clientWidth", json!([]))
        .unwrap();
    assert!(overflow.as_i64().is_some_and(|px| px <= 0), "the page scrolls sideways by {overflow} px");
    shot(&browser, "repair-narrow");
    browser.set_window_size(1280, 800).unwrap();

    // Sign out: back to the sign-in form, and the token is gone from the session.
    browser.click(&browser.find("#signout").unwrap()).unwrap();
    browser.find("#signin-form").unwrap();
    let stored = browser.script("return sessionStorage.getItem('ferrogrid-token')", json!([])).unwrap();
    assert!(stored.is_null(), "{stored}");
}

const BROKEN_CONFIG: &str = r#"
types:
  __file: model.avsc
functions:
  check_item: {__file: check_item.rhai}
connector:
  input:
    - {name: http, type: http}
input_processor:
  routing:
    - {key: Item, pipeline: check_item}
  storage:
    - {key: Item, type: Item}
"#;

const ITEM_MODEL: &str = r#"[{"name": "Item", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
  "fields": [{"name": "id", "type": "long"}]}]"#;

/// The files of a test's configuration folder, as a file input takes them (paths, one a line).
fn folder_paths(server: &Server, names: &[&str]) -> String {
    let dir = server.config_dir().expect("test config").path().to_path_buf();
    names.iter().map(|n| dir.join(n).display().to_string()).collect::<Vec<_>>().join("\n")
}

/// Upload files on the Configuration page: the check's answer shows, then Apply applies it.
fn apply_on_config_page(browser: &Browser, admin: &str, paths: &str) -> String {
    browser.goto(&format!("{admin}#/config")).unwrap();
    let input = browser.wait("the configuration page", || browser.find("#config-files").ok()).unwrap();
    // A file input keeps what was chosen before (Firefox adds to it): start from none.
    browser.script("document.querySelector('#config-files').value = ''", json!([])).unwrap();
    browser.send_keys(&input, paths).unwrap();
    let apply = browser.wait("the check's plan", || browser.find("#config-apply").ok()).unwrap();
    let plan = browser.text(&browser.find("#config-plan").unwrap()).unwrap();
    browser.click(&apply).unwrap();
    browser
        .wait("the apply", || {
            browser.text(&browser.find("#config-result").ok()?).ok().filter(|t| t.starts_with("Applied"))
        })
        .unwrap();
    plan
}

#[test]
fn try_again_all_after_applying_the_fixed_script_clears_fifty_entries() {
    let server = Server::start_with_config(
        BROKEN_CONFIG,
        &[("model.avsc", ITEM_MODEL), ("check_item.rhai", r#"throw `item ${param.obj.id}: the script is broken`;"#)],
    );
    for id in 1..=50 {
        assert_eq!(server.post_sync(&json!({"Item": {"id": id}}))["status"], "repair");
    }
    let (browser, admin) = signed_in(&server);
    let texts = |browser: &Browser| rows(browser).iter().filter_map(|r| browser.text(r).ok()).collect::<Vec<_>>();
    let first = browser.wait("a first page of 20", || Some(texts(&browser)).filter(|t| t.len() == 20)).unwrap();
    browser.click(&browser.find("#repair-next-page").unwrap()).unwrap();
    browser
        .wait("the second page", || {
            let now = texts(&browser);
            (now.len() == 20 && now.iter().all(|row| !first.contains(row))).then_some(())
        })
        .unwrap();

    // The operator fixes the script and applies the folder's files on the Configuration page:
    // no restart.
    server
        .config_dir()
        .expect("test config")
        .write("check_item.rhai", "#{obj: param.obj, routing_key: \"Item\", priority: 1}");
    let plan = apply_on_config_page(
        &browser,
        &admin,
        &folder_paths(&server, &["config.yml", "model.avsc", "check_item.rhai"]),
    );
    assert!(plan.contains("check_item.rhai"), "{plan}");
    shot(&browser, "config-applied");
    browser.goto(&format!("{admin}#/repair")).unwrap();
    browser.wait("the entries are still there", || (rows(&browser).len() == 20).then_some(())).unwrap();
    browser.click(&browser.find("#repair-retry-all").unwrap()).unwrap();
    browser.click(&browser.find("#confirm-ok").unwrap()).unwrap();
    let note = browser
        .wait("the count", || browser.text(&browser.find("#repair-message").ok()?).ok().filter(|t| !t.is_empty()))
        .unwrap();
    assert!(note.contains("50 entries"), "{note}");
    ferrogrid_tests::wait_until(std::time::Duration::from_secs(20), "the queue is empty", || {
        server.repair_entries("").is_empty().then_some(())
    });
    browser.click(&browser.find("#repair-apply").unwrap()).unwrap();
    browser.wait("no rows", || rows(&browser).is_empty().then_some(())).unwrap();
    assert_eq!(server.data("Item", "id=50").len(), 1);
    assert_eq!(server.starts(), 1, "no restart");
    shot(&browser, "repair-empty");
    no_console_errors(&browser, "repair after try again all");
}

#[test]
fn the_configuration_page_checks_compares_and_rolls_back() {
    config_page_flow(Kind::Chromium);
}

#[test]
fn the_configuration_page_checks_compares_and_rolls_back_in_firefox() {
    config_page_flow(Kind::Firefox);
}

fn config_page_flow(kind: Kind) {
    let server = Server::start_with_config(
        BROKEN_CONFIG,
        &[("model.avsc", ITEM_MODEL), ("check_item.rhai", "#{obj: param.obj, routing_key: \"Item\", priority: 1}")],
    );
    assert_eq!(server.post_sync(&json!({"Item": {"id": 1}}))["status"], "stored");
    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    let admin = format!("{}/admin/", server.base_url());
    browser.goto(&admin).unwrap();
    token_sign_in(&browser, server.token());
    browser.wait("signed in", || browser.find("#repair-table").ok()).unwrap();
    let config = server.config_dir().expect("test config");

    // A script that does not compile: the problems are listed, nothing is applied.
    config.write("check_item.rhai", "let x = ;\n");
    browser.goto(&format!("{admin}#/config")).unwrap();
    let input = browser.wait("the configuration page", || browser.find("#config-files").ok()).unwrap();
    browser.send_keys(&input, &folder_paths(&server, &["config.yml", "model.avsc", "check_item.rhai"])).unwrap();
    let problems = browser.wait("the problems", || browser.text(&browser.find("#config-problems").ok()?).ok()).unwrap();
    assert!(problems.contains("functions.check_item"), "{problems}");
    shot(&browser, "config-problems");

    // A new index and a fixed script: the plan names the index to build; applied as version 2.
    config.write(
        "check_item.rhai",
        "let o = param.obj;\no.name = `item ${o.id}`;\n#{obj: o, routing_key: \"Item\", priority: 1}\n",
    );
    config.write(
        "model.avsc",
        &ITEM_MODEL.replace(r#""indexes": ["id"]"#, r#""indexes": ["id", "name"]"#).replace(
            r#"[{"name": "id", "type": "long"}]"#,
            r#"[{"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"]}]"#,
        ),
    );
    let plan = apply_on_config_page(
        &browser,
        &admin,
        &folder_paths(&server, &["config.yml", "model.avsc", "check_item.rhai"]),
    );
    assert!(plan.contains("Item.name"), "{plan}");
    browser
        .wait("two versions listed", || (browser.find_all("#config-versions tbody tr").ok()?.len() == 2).then_some(()))
        .unwrap();

    // The diff between the two versions shows the script's change.
    browser.click(&browser.find("#diff-show").unwrap()).unwrap();
    let diff = browser
        .wait("the diff", || browser.text(&browser.find("#config-diff [data-file='check_item.rhai']").ok()?).ok())
        .unwrap();
    assert!(diff.contains("o.name"), "{diff}");
    shot(&browser, "config-diff");

    // The Model page lists the indexes; then roll back to version 1.
    browser.goto(&format!("{admin}#/model")).unwrap();
    browser.wait("the new index", || browser.find("#index-table [data-index='Item.name']").ok()).unwrap();
    browser.goto(&format!("{admin}#/config")).unwrap();
    let back = browser.wait("the rollback button", || browser.find("[data-rollback='1']").ok()).unwrap();
    browser.click(&back).unwrap();
    browser.click(&browser.find("#confirm-ok").unwrap()).unwrap();
    let note = browser
        .wait("the rollback", || {
            browser.text(&browser.find("#config-result").ok()?).ok().filter(|t| t.starts_with("Rolled back"))
        })
        .unwrap();
    assert!(note.contains("version 3"), "{note}");
    assert_eq!(server.get("/admin/api/config").json()["active"], 3);
    // Chromium logs the check's 422 (the broken script, on purpose) as a failed load: only that.
    let errors = browser.console_errors().expect("browser log");
    assert!(errors.iter().all(|e| e.contains("dry_run=true") && e.contains("422")), "console errors: {errors:?}");
}

#[test]
fn the_test_page_posts_soap_envelopes() {
    let server = Server::start("samples/soap");
    let (browser, admin) = signed_in(&server);
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();
    browser.goto(&format!("{admin}#/test")).unwrap();
    browser.wait("the input choice", || browser.find("#test-kind").ok()).unwrap();
    let choose =
        "const k = document.querySelector('#test-kind'); k.value = 'soap'; k.dispatchEvent(new Event('change'));";
    browser.script(choose, json!([])).unwrap();
    let body = browser.find("#test-body").unwrap();
    let sample = browser.property(&body, "value").unwrap();
    assert!(sample.as_str().is_some_and(|s| s.contains("soap:Envelope")), "a SOAP sample: {sample}");
    let user = std::fs::read_to_string(workspace_root().join("samples/soap/tests/5_user_element/input.xml")).unwrap();
    let send = |text: &str, expect: &str| {
        browser.type_into(&body, text).unwrap();
        browser.click(&browser.find("#test-send").unwrap()).unwrap();
        browser
            .wait(expect, || browser.text(&browser.find("#test-result").ok()?).ok().filter(|t| t.contains(expect)))
            .unwrap()
    };
    let stored = send(&user, "Stored as User");
    assert!(stored.contains("version"), "{stored}");
    assert_eq!(server.data("User", "id=1").len(), 1);
    let refused = send("<soap:Envelope xmlns:soap=\"urn:wrong\"/>", "Refused");
    assert!(refused.to_lowercase().contains("envelope"), "the fault text: {refused}");
    shot(&browser, "test-soap");
    // The refused envelope is logged by the browser as a failed resource (400): expected here.
    let errors = browser.console_errors().unwrap();
    assert!(errors.iter().all(|e| e.contains("400") || e.contains("500")), "{errors:?}");
}

#[test]
fn the_output_repair_page_shows_the_peers_answer_and_tries_again() {
    let receiver = ferrogrid_tests::peers::HttpReceiver::start();
    receiver.fail_with(Some((422, "the hub refuses n=3")));
    let config = format!(
        "types: {{__file: model.avsc}}\nconnector:\n  input: [{{name: http, type: http}}]\n  output: [{{name: hub, type: http, url: \"{}\"}}]\ninput_processor:\n  storage: [{{key: Item, type: Item}}]\noutput_processor:\n  Item: {{output: hub}}\n",
        receiver.url("/in")
    );
    let server = Server::start_with_config(&config, &[("model.avsc", ITEM_MODEL)]);
    assert_eq!(server.post_sync(&json!({"Item": {"id": 3}}))["status"], "stored");
    let (browser, admin) = signed_in(&server);
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();
    browser.goto(&format!("{admin}#/output")).unwrap();
    let row = browser
        .wait("the parked delivery", || {
            let text = browser.text(&browser.find("#output-rows").ok()?).ok()?;
            text.contains("Sending error").then_some(text)
        })
        .unwrap();
    assert!(row.contains("hub") && row.contains("answered 422: the hub refuses n=3"), "{row}");
    // The output's queue: nothing waiting, one parked.
    let queue = browser.text(&browser.find("#output-queues tr[data-output='hub']").unwrap()).unwrap();
    assert_eq!(queue.split_whitespace().collect::<Vec<_>>(), ["hub", "async", "0", "1"], "{queue}");
    browser
        .wait("the header counts it", || {
            browser.text(&browser.find("#status").ok()?).ok().filter(|t| t.contains("output repair 1"))
        })
        .unwrap();
    // A time window that leaves it out, then one that takes it in.
    let set = "const [f, v] = arguments; const e = document.querySelector(f); e.value = v; e.dispatchEvent(new Event('input'));";
    browser.script(set, json!(["#output-from", "2999-01-01T00:00"])).unwrap();
    browser.click(&browser.find("#output-apply").unwrap()).unwrap();
    browser
        .wait("nothing in the window", || {
            browser.text(&browser.find("#output-rows").ok()?).ok().filter(|t| t.contains("No entry matches"))
        })
        .unwrap();
    browser.script(set, json!(["#output-from", "2000-01-01T00:00"])).unwrap();
    browser.click(&browser.find("#output-apply").unwrap()).unwrap();
    browser
        .wait("the row again", || {
            browser.text(&browser.find("#output-rows").ok()?).ok().filter(|t| t.contains("Sending error"))
        })
        .unwrap();
    // The toolbar is a form: Enter in the filter box applies it.
    let submit = "const e = document.querySelector('#output-filter'); e.value = arguments[0]; e.form.requestSubmit();";
    browser.script(submit, json!(["nothing like it"])).unwrap();
    browser
        .wait("the typed filter applied", || {
            browser.text(&browser.find("#output-rows").ok()?).ok().filter(|t| t.contains("No entry matches"))
        })
        .unwrap();
    browser.script(submit, json!([""])).unwrap();
    browser
        .wait("the row once more", || {
            browser.text(&browser.find("#output-rows").ok()?).ok().filter(|t| t.contains("Sending error"))
        })
        .unwrap();
    let buttons = browser.find_all("#output-rows button").unwrap();
    browser.click(&buttons[0]).unwrap();
    let details = browser.text(&browser.find("#output-details").unwrap()).unwrap();
    assert!(details.contains("\"object\"") && details.contains("\"id\": 3"), "{details}");
    shot(&browser, "output-repair");
    // The data explorer links the object to its parked delivery; the link filters this page to it.
    browser.goto(&format!("{admin}#/data?type=Item&key=3")).unwrap();
    let link = browser.wait("the delivery link", || browser.find("#object-deliveries a.output-link").ok()).unwrap();
    assert!(browser.text(&link).unwrap().contains("to hub"));
    let delivery =
        browser.script("return document.querySelector('#object-deliveries li').dataset.delivery;", json!([])).unwrap();
    browser.click(&link).unwrap();
    browser
        .wait("the delivery alone", || {
            let rows = browser.find_all("#output-rows tr.row").ok()?;
            let text = browser.text(&browser.find("#output-rows").ok()?).ok()?;
            (rows.len() == 1 && text.contains("Sending error")).then_some(())
        })
        .unwrap();
    let filter = browser.property(&browser.find("#output-filter").unwrap(), "value").unwrap();
    assert_eq!(filter, delivery, "the page is filtered to that delivery");
    // The hub is fixed: Try again delivers it and the row goes.
    receiver.fail_with(None);
    browser.click(&browser.find_all("#output-rows button").unwrap()[1]).unwrap();
    browser
        .wait("the row gone (the filter to it is still set)", || {
            browser.text(&browser.find("#output-rows").ok()?).ok().filter(|t| t.contains("No entry matches"))
        })
        .unwrap();
    assert_eq!(receiver.received().len(), 1);
    let queue = browser.text(&browser.find("#output-queues tr[data-output='hub']").unwrap()).unwrap();
    assert!(queue.ends_with('0'), "nothing parked any more: {queue}");
    let errors = browser.console_errors().unwrap();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn users_sign_in_with_a_password_and_see_only_what_their_role_allows() {
    password_flow(Kind::Chromium);
}

#[test]
fn users_sign_in_with_a_password_and_see_only_what_their_role_allows_in_firefox() {
    password_flow(Kind::Firefox);
}

/// Whether the element `css` is shown (present, and neither it nor a parent hidden).
fn shown(browser: &Browser, css: &str) -> bool {
    let visible = browser.script(
        "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
        json!([css]),
    );
    visible.ok() == Some(json!(true))
}

fn password_flow(kind: Kind) {
    let server = Server::start("samples/library");
    let admin = server.client();
    admin
        .send(
            "POST",
            "/admin/api/users",
            Some(&json!({"login": "olga", "role": "supervisor", "password": "Watch1ful"})),
        )
        .assert_status(201, "create olga");
    let poster = admin.send("POST", "/admin/api/users", Some(&json!({"login": "pete", "role": "user"})));
    poster.assert_status(201, "create pete");
    let one_time = poster.json()["password"].as_str().unwrap().to_string();

    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    let url = format!("{}/admin/", server.base_url());
    browser.goto(&url).unwrap();
    let sign_in = |login: &str, password: &str| {
        browser.type_into(&browser.find("#login").unwrap(), login).unwrap();
        browser.type_into(&browser.find("#password").unwrap(), password).unwrap();
        browser.click(&browser.find("#password-button").unwrap()).unwrap();
    };
    // A wrong password is refused on the page.
    sign_in("olga", "Wrong1password");
    browser
        .wait("the refusal", || {
            browser.text(&browser.find("#password-error").ok()?).ok().filter(|t| t.contains("wrong login or password"))
        })
        .unwrap();
    // A supervisor sees the pages it may read, and no buttons that change the configuration.
    sign_in("olga", "Watch1ful");
    browser
        .wait("olga's pages", || {
            browser.text(&browser.find("#whoami").ok()?).ok().filter(|t| t.contains("olga (supervisor)"))
        })
        .unwrap();
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();
    assert!(shown(&browser, "#repair-retry-all"), "a supervisor operates the repair queue");
    assert!(shown(&browser, "header nav a[data-page=config]"));
    browser.goto(&format!("{url}#/config")).unwrap();
    browser.wait("the configuration page", || browser.find("#config-versions").ok()).unwrap();
    assert!(!shown(&browser, "#config-upload"), "a supervisor uploads no configuration");
    shot(&browser, "password-supervisor");
    // The session survives a reload; sign-out ends it.
    browser.goto(&url).unwrap();
    browser.wait("still signed in", || browser.find("#repair-table").ok()).unwrap();
    browser.click(&browser.find("#signout").unwrap()).unwrap();
    browser.wait("the sign-in page", || shown(&browser, "#password-form").then_some(())).unwrap();

    // A user with a one-time password chooses its own first; then sees only the Test page.
    sign_in("pete", &one_time);
    browser.wait("the change form", || shown(&browser, "#change-form").then_some(())).unwrap();
    browser.type_into(&browser.find("#new-password").unwrap(), "weak").unwrap();
    browser.click(&browser.find("#change-button").unwrap()).unwrap();
    browser
        .wait("the policy refusal", || {
            browser.text(&browser.find("#change-error").ok()?).ok().filter(|t| t.contains("at least 8 characters"))
        })
        .unwrap();
    browser.type_into(&browser.find("#new-password").unwrap(), "Poster1pass").unwrap();
    browser.click(&browser.find("#change-button").unwrap()).unwrap();
    browser.wait("the test page", || browser.find("#test-send").ok()).unwrap();
    assert!(!shown(&browser, "header nav a[data-page=repair]"), "a user has no repair page");
    assert!(shown(&browser, "header nav a[data-page=test]"));
    let status = browser.text(&browser.find("#status").unwrap()).unwrap();
    assert!(!status.contains("in repair"), "a user reads no repair figures: {status}");
    shot(&browser, "password-user");
    // Nothing it may not use was even asked for: no refusals of pete in the audit log.
    let refused = admin.get("/admin/api/audit?subject=pete&severity=WARNING").json();
    assert_eq!(refused, json!([]), "the UI asked for what a user may not read");
    // The audit log has both sign-ins.
    let events = admin.get("/admin/api/audit?text=sign_in").json();
    for login in ["olga", "pete"] {
        assert!(
            events.as_array().unwrap().iter().any(|e| e["subject"] == login && e["outcome"] == "ok 200"),
            "{login}: {events}"
        );
    }
}

#[test]
fn the_settings_pages_create_a_token_shown_once_and_list_the_audit_log() {
    settings_flow(Kind::Chromium);
}

#[test]
fn the_settings_pages_create_a_token_shown_once_and_list_the_audit_log_in_firefox() {
    settings_flow(Kind::Firefox);
}

fn settings_flow(kind: Kind) {
    let server = Server::start("samples/library");
    let admin = server.client();
    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    let url = format!("{}/admin/", server.base_url());
    browser.goto(&url).unwrap();
    token_sign_in(&browser, server.token());
    browser.wait("signed in", || browser.find("#repair-table").ok()).unwrap();

    // Tokens: create one; its secret is shown once, and works.
    browser.goto(&format!("{url}#/settings/tokens")).unwrap();
    browser.wait("the tokens tab", || browser.find("#tokens-table").ok()).unwrap();
    browser.type_into(&browser.find("#token-name").unwrap(), "ui-token").unwrap();
    browser.click(&browser.find("#token-create").unwrap()).unwrap();
    let secret = browser
        .wait("the secret", || browser.text(&browser.find("#shown-secret").ok()?).ok().filter(|t| t.starts_with("fg_")))
        .unwrap();
    browser.wait("the new row", || browser.find("#tokens-table tr[data-token=ui-token]").ok()).unwrap();
    shot(&browser, "settings-token");
    server.with_token(&secret).get("/admin/api/whoami").assert_status(200, "the token shown works");
    assert_eq!(admin.get("/admin/api/tokens/ui-token").json()["role"], "user");
    browser.goto(&format!("{url}#/settings/users")).unwrap();
    browser.goto(&format!("{url}#/settings/tokens")).unwrap();
    browser.wait("the tokens tab again", || browser.find("#tokens-table tr[data-token=ui-token]").ok()).unwrap();
    assert!(browser.find("#shown-secret").is_err(), "the secret is shown once");
    assert!(!browser.text(&browser.find("#page").unwrap()).unwrap().contains(&secret));

    // Users: create one without a password; the one-time password is shown once.
    browser.goto(&format!("{url}#/settings/users")).unwrap();
    browser.wait("the users tab", || browser.find("#users-table").ok()).unwrap();
    browser.type_into(&browser.find("#user-login").unwrap(), "uiuser").unwrap();
    browser.click(&browser.find("#user-create").unwrap()).unwrap();
    let one_time = browser
        .wait("the one-time password", || {
            browser.text(&browser.find("#shown-secret").ok()?).ok().filter(|t| t.len() >= 16)
        })
        .unwrap();
    browser.wait("the new user", || browser.find("#users-table tr[data-login=uiuser]").ok()).unwrap();
    // The user signs in elsewhere (here through the API): a user role sees no settings.
    let signed =
        server.unauthorized().send("POST", "/admin/api/login", Some(&json!({"login": "uiuser", "password": one_time})));
    signed.assert_status(200, "uiuser signs in");

    // The audit log lists that sign-in, filtered by subject.
    browser.goto(&format!("{url}#/settings/audit")).unwrap();
    browser.wait("the audit tab", || browser.find("#audit-table").ok()).unwrap();
    browser.type_into(&browser.find("#audit-subject").unwrap(), "uiuser").unwrap();
    browser.click(&browser.find("#audit-apply").unwrap()).unwrap();
    browser
        .wait("uiuser's sign-in", || {
            browser
                .text(&browser.find("#audit-table").ok()?)
                .ok()
                .filter(|t| t.contains("sign_in") && t.contains("uiuser"))
        })
        .unwrap();
    shot(&browser, "settings-audit");

    // Password policy: the admin sets one over the configuration's, then goes back.
    browser.goto(&format!("{url}#/settings/password-policy")).unwrap();
    browser.wait("the policy tab", || browser.find("#password-policy-form").ok()).unwrap();
    browser.type_into(&browser.find("#policy-min-length").unwrap(), "24").unwrap();
    browser.click(&browser.find("#policy-symbols").unwrap()).unwrap();
    browser.click(&browser.find("#policy-save").unwrap()).unwrap();
    browser.wait("the reset button", || browser.find("#policy-reset").ok()).unwrap();
    let policy = admin.get("/admin/api/password-policy").json();
    assert_eq!(policy["overridden"], true, "{policy}");
    assert_eq!(
        policy["password_policy"],
        json!({"min_length": 24, "include": {"lower": true, "upper": true, "digits": true, "symbols": true}})
    );
    shot(&browser, "settings-password-policy");
    browser.click(&browser.find("#policy-reset").unwrap()).unwrap();
    browser
        .wait("back to the configuration's", || {
            (admin.get("/admin/api/password-policy").json()["overridden"] == false).then_some(())
        })
        .unwrap();
    // Notifications: the mail server and a subscriber, saved over the configuration's.
    browser.goto(&format!("{url}#/settings/notifications")).unwrap();
    browser.wait("the notifications tab", || browser.find("#notifier-form").ok()).unwrap();
    browser.type_into(&browser.find("#notifier-url").unwrap(), "smtp://127.0.0.1:2525").unwrap();
    browser.type_into(&browser.find("#notifier-from").unwrap(), "Grid <grid@example.com>").unwrap();
    browser.type_into(&browser.find("#subscriber-name").unwrap(), "Ops").unwrap();
    browser.type_into(&browser.find("#subscriber-addr").unwrap(), "ops@example.com").unwrap();
    browser.click(&browser.find("#subscriber-add").unwrap()).unwrap();
    browser
        .wait("the subscriber row", || browser.find("#subscribers-table tr[data-subscriber='ops@example.com']").ok())
        .unwrap();
    browser.click(&browser.find("#notifier-save").unwrap()).unwrap();
    let saved = browser
        .wait("saved", || {
            let n = admin.get("/admin/api/notifier").json();
            (n["source"] == "api").then_some(n)
        })
        .unwrap();
    assert_eq!(saved["users"][0]["addr"], "ops@example.com", "{saved}");
    assert_eq!(saved["mail_server"]["from"], "Grid <grid@example.com>", "{saved}");
    shot(&browser, "settings-notifications");
    no_console_errors(&browser, "settings");

    // A supervisor sees Settings without the buttons that change anything.
    browser.click(&browser.find("#signout").unwrap()).unwrap();
    let watcher = admin.send("POST", "/admin/api/tokens", Some(&json!({"name": "watcher", "role": "supervisor"})));
    token_sign_in(&browser, watcher.json()["token"].as_str().unwrap());
    browser
        .wait("signed in as supervisor", || {
            browser.text(&browser.find("#whoami").ok()?).ok().filter(|t| t.contains("watcher (supervisor)"))
        })
        .unwrap();
    browser.goto(&format!("{url}#/settings/tokens")).unwrap();
    browser.wait("the tokens tab", || browser.find("#tokens-table tr[data-token=ui-token]").ok()).unwrap();
    assert!(!shown(&browser, "#token-create"), "a supervisor creates no tokens");
    assert!(browser
        .find_all("#tokens-table button")
        .unwrap()
        .iter()
        .all(|b| browser.property(b, "hidden").unwrap() == json!(true)));
    browser.goto(&format!("{url}#/settings/audit")).unwrap();
    browser.wait("the audit tab", || browser.find("#audit-table").ok()).unwrap();
    assert!(!shown(&browser, "#audit-clear"), "a supervisor clears no audit log");
    browser.goto(&format!("{url}#/settings/password-policy")).unwrap();
    browser.wait("the policy tab", || browser.find("#password-policy").ok()).unwrap();
    assert!(!shown(&browser, "#password-policy-form"), "a supervisor sets no password policy");
}

#[test]
fn the_graphql_console_completes_fields_runs_queries_and_keeps_a_history() {
    graphql_console_flow(Kind::Chromium);
}

#[test]
fn the_graphql_console_completes_fields_runs_queries_and_keeps_a_history_in_firefox() {
    graphql_console_flow(Kind::Firefox);
}

fn graphql_console_flow(kind: Kind) {
    let server = Server::start("samples/library");
    server.post_sync(&json!({"id": 7, "username": "Olga"}));
    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    let admin = format!("{}/admin/", server.base_url());
    browser.goto(&admin).unwrap();
    token_sign_in(&browser, server.token());
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();
    browser.goto(&format!("{admin}#/graphql")).unwrap();
    let editor = browser.wait("the console", || browser.find("#gql-query").ok()).unwrap();
    let suggestions = |want: &str| {
        browser
            .wait(&format!("a suggestion {want}"), || {
                let names: Vec<String> = browser
                    .find_all("#gql-suggest li b")
                    .ok()?
                    .iter()
                    .filter_map(|b| browser.text(b).ok())
                    .collect();
                names.iter().any(|n| n == want).then_some(names)
            })
            .unwrap_or_else(|e| {
                let seen = browser.script(
                    "return [document.querySelector('#gql-query').value, document.querySelector('#gql-suggest').outerHTML, document.querySelector('#page').innerText];",
                    json!([]),
                );
                panic!("{e}: {seen:?}")
            })
    };
    // The query type's fields (the model's types and the services), then a type's fields.
    browser.type_into(&editor, "{ Us").unwrap();
    let top = suggestions("User");
    assert!(!top.iter().any(|n| n == "Book"), "only what starts with Us: {top:?}");
    browser.send_keys(&editor, "\u{E004}").unwrap(); // Tab takes it
    browser.send_keys(&editor, "(id: 7) { us").unwrap();
    let fields = suggestions("username");
    assert!(fields.iter().all(|n| n.starts_with("us")), "{fields:?}");
    browser.send_keys(&editor, "\u{E004} id }\n}").unwrap();
    let text = browser.property(&editor, "value").unwrap();
    assert_eq!(text.as_str(), Some("{ User(id: 7) { username id }\n}"));
    // Highlighted: names, punctuation, numbers.
    let shade = browser.find(".gql-shade").unwrap();
    let highlighted = browser.find_all(".gql-shade span.gql-name").unwrap();
    assert!(highlighted.len() >= 3 && browser.text(&shade).unwrap().contains("username"), "highlighted");

    browser.click(&browser.find("#gql-run").unwrap()).unwrap();
    let result = browser
        .wait("the answer", || browser.text(&browser.find("#gql-result").ok()?).ok().filter(|t| t.contains("Olga")))
        .unwrap();
    assert!(result.contains("\"username\": \"Olga\""), "{result}");
    let history = browser
        .wait("the history", || {
            browser.text(&browser.find("#gql-history").ok()?).ok().filter(|t| t.contains("User(id: 7)"))
        })
        .unwrap();
    assert!(history.contains("[default]"), "{history}");

    // Arguments of a field, with their types.
    browser.type_into(&editor, "{ Book(fir").unwrap();
    suggestions("first");

    // The admin schema: its fields, not the data's.
    let choose =
        "const s = document.querySelector('#gql-schema'); s.value = 'admin'; s.dispatchEvent(new Event('change'));";
    browser.script(choose, json!([])).unwrap();
    browser.type_into(&editor, "{ ta").unwrap();
    suggestions("tasks");
    browser.type_into(&editor, "{ tasks { get_list } }").unwrap();
    browser.click(&browser.find("#gql-run").unwrap()).unwrap();
    let tasks = browser
        .wait("the tasks", || {
            browser.text(&browser.find("#gql-result").ok()?).ok().filter(|t| t.contains("statistics"))
        })
        .unwrap();
    assert!(tasks.contains("periodical"), "{tasks}");

    // A history entry brings its query and schema back.
    browser.goto(&format!("{admin}#/repair")).unwrap();
    browser.goto(&format!("{admin}#/graphql")).unwrap();
    let entry = browser
        .wait("the default entry", || {
            browser
                .find_all("#gql-history a")
                .ok()?
                .into_iter()
                .find(|a| browser.text(a).is_ok_and(|t| t.contains("[default]")))
        })
        .unwrap();
    browser.click(&entry).unwrap();
    let editor = browser.find("#gql-query").unwrap();
    assert_eq!(browser.property(&editor, "value").unwrap().as_str(), Some("{ User(id: 7) { username id }\n}"));
    let schema = browser.find("#gql-schema").unwrap();
    assert_eq!(browser.property(&schema, "value").unwrap().as_str(), Some("default"));
    shot(&browser, if kind == Kind::Firefox { "firefox-graphql" } else { "graphql" });
    no_console_errors(&browser, "graphql");
}

/// The journal's timeline from the Repair details and the Test page's answer, and its search.
#[test]
fn the_journal_page_shows_each_objects_path_from_repair_and_test() {
    let server = Server::start("samples/library");
    let book = server.post_sync(&json!({"id": 9, "book_name": "Dune", "author": "Frank Herbert", "year": null}));
    assert_eq!(book["status"], "stored");
    let failed = server.post_sync(&json!({"id": 3, "username": 42}));
    assert_eq!(failed["status"], "repair");
    let (browser, admin) = signed_in(&server);
    browser.wait("one row", || (rows(&browser).len() == 1).then_some(())).unwrap();
    browser.click(&first_cell(&browser)).unwrap();
    let link = browser.wait("the journal link", || browser.find(".details a.journal-link").ok()).unwrap();
    browser.click(&link).unwrap();
    let timeline = browser
        .wait("the timeline", || {
            browser
                .text(&browser.find("#journal-results").ok()?)
                .ok()
                .filter(|t| t.contains("kept in the repair queue"))
        })
        .unwrap();
    assert!(timeline.contains("received from http") && timeline.contains("at validation"), "{timeline}");
    assert!(timeline.contains("routing key add_user") && timeline.contains("classifier"), "steps shown: {timeline}");

    // The Test page's answer links to the stored object's path.
    browser.goto(&format!("{admin}#/test")).unwrap();
    let body = browser.wait("the test form", || browser.find("#test-body").ok()).unwrap();
    browser.type_into(&body, r#"{"id": 5, "username": "Kim"}"#).unwrap();
    browser.click(&browser.find("#test-send").unwrap()).unwrap();
    let link = browser.wait("the answer's link", || browser.find("#test-result a.journal-link").ok()).unwrap();
    browser.click(&link).unwrap();
    let timeline = browser
        .wait("the stored path", || {
            browser.text(&browser.find("#journal-results").ok()?).ok().filter(|t| t.contains("stored as User 5"))
        })
        .unwrap();
    assert!(timeline.contains("version"), "{timeline}");
    // ... and from there to the object in the data explorer.
    browser.click(&browser.find("#journal-results a.object-link").unwrap()).unwrap();
    let object = browser.wait("the object", || browser.text(&browser.find("#object-json").ok()?).ok()).unwrap();
    assert!(object.contains("\"username\": \"Kim\""), "{object}");

    // Search by routing key: both objects, newest first.
    browser.goto(&format!("{admin}#/journal")).unwrap();
    let rk = browser.wait("the search form", || browser.find("#journal-routing_key").ok()).unwrap();
    browser.type_into(&rk, "add_user").unwrap();
    browser.click(&browser.find("#journal-search").unwrap()).unwrap();
    // The page first lists every object (the book too); the search's answer replaces the list.
    let texts = browser
        .wait("the two add_user objects, newest first", || {
            let objects = browser.find_all(".journal-object").ok()?;
            let texts: Vec<String> = objects.iter().map(|o| browser.text(o).unwrap_or_default()).collect();
            (texts.len() == 2 && texts.iter().all(|t| t.contains("routing key add_user"))).then_some(texts)
        })
        .unwrap();
    assert!(texts[0].contains("stored as User 5"), "newest first: {texts:?}");
    shot(&browser, "journal");
    // A long journal comes 50 objects at a time; "Show more" asks for 50 more.
    for i in 0..55 {
        assert_eq!(server.post_sync(&json!({"id": 1000 + i, "username": format!("u{i}")}))["status"], "stored");
    }
    browser.type_into(&browser.find("#journal-routing_key").unwrap(), "").unwrap();
    browser.click(&browser.find("#journal-search").unwrap()).unwrap();
    let count = || browser.find_all(".journal-object").map(|o| o.len()).unwrap_or(0);
    browser.wait("the first 50", || (count() == 50).then_some(())).unwrap();
    browser
        .click(&browser.wait("the more button", || browser.find("#journal-more:not([hidden])").ok()).unwrap())
        .unwrap();
    // 2 + 1 (the test page's) + 55 objects in all.
    browser.wait("all 58", || (count() == 58).then_some(())).unwrap();
    let ids: std::collections::HashSet<String> = browser
        .find_all(".journal-object")
        .unwrap()
        .iter()
        .map(|o| browser.property(o, "dataset").unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 58, "each object once");
    assert!(!shown(&browser, "#journal-more"), "nothing more to show");

    no_console_errors(&browser, "journal");
}

#[test]
fn the_model_page_draws_a_box_per_type_and_an_arrow_per_relation() {
    model_diagram_flow(Kind::Chromium);
}

#[test]
fn the_model_page_draws_a_box_per_type_and_an_arrow_per_relation_in_firefox() {
    model_diagram_flow(Kind::Firefox);
}

/// What the Model page's diagram drew: its boxes, its edges with their labels' boxes, its view box.
fn diagram(browser: &Browser) -> Value {
    browser
        .script(
            "const d = document.querySelector('#model-diagram');
             const box = (b) => ({x: b.x, y: b.y, w: b.width, h: b.height});
             const boxes = [...d.querySelectorAll('g.type-box')].map((g) =>
               ({type: g.dataset.type, text: g.textContent, ...box(g.querySelector('rect').getBBox())}));
             const edges = [...d.querySelectorAll('g.edge')].map((g) => {
               const label = d.querySelector(`[data-label-for=\"${CSS.escape(g.dataset.edge)}\"]`);
               return {edge: g.dataset.edge, kind: g.classList.contains('relation') ? 'relation' : 'contains',
                       from: g.dataset.from, to: g.dataset.to,
                       marker: g.querySelector('path').getAttribute('marker-end'),
                       label: label.textContent, ...box(label.getBBox())};
             });
             const v = d.viewBox.baseVal;
             return {boxes, edges, view: {x: v.x, y: v.y, w: v.width, h: v.height}};",
            json!([]),
        )
        .unwrap()
}

/// Nothing overlaps (no two boxes, no two labels, no label and box) and all is inside the picture.
fn assert_readable(drawn: &Value) {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
    let overlap = |a: &Value, b: &Value| {
        f(a, "x") < f(b, "x") + f(b, "w")
            && f(b, "x") < f(a, "x") + f(a, "w")
            && f(a, "y") < f(b, "y") + f(b, "h")
            && f(b, "y") < f(a, "y") + f(a, "h")
    };
    let items: Vec<&Value> =
        drawn["boxes"].as_array().unwrap().iter().chain(drawn["edges"].as_array().unwrap()).collect();
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            assert!(!overlap(a, b), "overlap: {a} and {b}");
        }
    }
    let view = &drawn["view"];
    for v in items {
        let inside = f(v, "x") >= f(view, "x")
            && f(v, "y") >= f(view, "y")
            && f(v, "x") + f(v, "w") <= f(view, "x") + f(view, "w")
            && f(v, "y") + f(v, "h") <= f(view, "y") + f(view, "h");
        assert!(inside, "{v} outside {view}");
    }
}

/// The (edge, label) pairs of one kind, sorted.
fn edges_of(drawn: &Value, kind: &str) -> Vec<(String, String)> {
    let mut edges: Vec<(String, String)> = drawn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| (e["edge"].as_str().unwrap().to_string(), e["label"].as_str().unwrap().to_string()))
        .collect();
    edges.sort();
    edges
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn model_diagram_flow(kind: Kind) {
    let server = Server::start("samples/library");
    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    let admin = format!("{}/admin/", server.base_url());
    browser.goto(&admin).unwrap();
    token_sign_in(&browser, server.token());
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();
    browser.goto(&format!("{admin}#/model")).unwrap();
    browser.wait("the diagram", || browser.find("#model-diagram").ok()).unwrap();

    // One box per type, one arrow per relation, each labelled with its cardinality.
    let drawn = diagram(&browser);
    let mut types: Vec<&str> = drawn["boxes"].as_array().unwrap().iter().map(|b| b["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["Book", "Statistics", "Subscription", "User"]);
    assert_eq!(
        edges_of(&drawn, "relation"),
        pairs(&[
            ("Book.subscription", "subscription (many)"),
            ("Subscription.book", "book (one)"),
            ("Subscription.user", "user (one)"),
            ("User.subscription", "subscription (many)"),
        ])
    );
    assert!(edges_of(&drawn, "contains").is_empty());
    for e in drawn["edges"].as_array().unwrap() {
        assert!(e["marker"].as_str().is_some_and(|m| m.contains("arrow-")), "an arrowhead: {e}");
    }
    let subscription = drawn["boxes"].as_array().unwrap().iter().find(|b| b["type"] == "Subscription").unwrap();
    let text = subscription["text"].as_str().unwrap();
    assert!(
        text.contains("«Aggregate»") && text.contains("user_id: long") && text.contains("key pkey(id, user_id)"),
        "{text}"
    );
    // The arrows both ways between two types bend apart, their labels too.
    assert_readable(&drawn);
    let summary = browser.text(&browser.find("#model-summary").unwrap()).unwrap();
    assert!(summary.contains("4 type(s)") && summary.contains("4 relation(s)"), "{summary}");
    browser.script("document.querySelector('#model-diagram').scrollIntoView()", json!([])).unwrap();
    shot(&browser, "model-diagram");

    // The text form is a click away, and stays chosen.
    assert!(!shown(&browser, "#model-text"));
    browser.click(&browser.find("#model-show").unwrap()).unwrap();
    assert!(shown(&browser, "#model-text") && !shown(&browser, "#model-diagram"));
    assert!(browser.text(&browser.find("#model-text").unwrap()).unwrap().contains("Aggregate Subscription"));
    browser.goto(&format!("{admin}#/repair")).unwrap();
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();
    browser.goto(&format!("{admin}#/model")).unwrap();
    browser.wait("the model page", || browser.find("#model-show").ok()).unwrap();
    assert!(shown(&browser, "#model-text"), "the text form is remembered");
    browser.click(&browser.find("#model-show").unwrap()).unwrap();
    assert!(shown(&browser, "#model-diagram"));
    no_console_errors(&browser, "model");

    // Relations of a type to itself loop, one beside the other; nested records (an entity, a
    // value object in an array) hang from the type holding them.
    let model = r#"[{"name": "Employee", "type": "record", "logicalType": "Aggregate", "fields": [
        {"name": "id", "type": "long"}, {"name": "manager_id", "type": ["null", "long"]},
        {"name": "home", "type": {"type": "record", "name": "Address", "logicalType": "Entity",
          "fields": [{"name": "street", "type": "string"}]}},
        {"name": "skills", "type": {"type": "array", "items": {"type": "record", "name": "Skill",
          "fields": [{"name": "name", "type": "string"}]}}}],
      "indexes": ["id", "manager_id"],
      "relations": [
        {"name": "manager", "to": "Employee", "count": "one", "from_fields": "manager_id", "to_fields": "id"},
        {"name": "reports", "to": "Employee", "count": "many", "from_fields": "id", "to_fields": "manager_id"}]}]"#;
    let staff = Server::start_with_config("types: {__file: model.avsc}\n", &[("model.avsc", model)]);
    let admin = format!("{}/admin/", staff.base_url());
    browser.goto(&admin).unwrap();
    token_sign_in(&browser, staff.token());
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();
    browser.goto(&format!("{admin}#/model")).unwrap();
    browser.wait("the diagram", || browser.find("#model-diagram").ok()).unwrap();
    let drawn = diagram(&browser);
    let mut types: Vec<&str> = drawn["boxes"].as_array().unwrap().iter().map(|b| b["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["Address", "Employee", "Skill"]);
    assert_eq!(
        edges_of(&drawn, "relation"),
        pairs(&[("Employee.manager", "manager (one)"), ("Employee.reports", "reports (many)")])
    );
    assert_eq!(edges_of(&drawn, "contains"), pairs(&[("Employee.home", "home"), ("Employee.skills", "skills")]));
    assert_readable(&drawn);
    browser.script("document.querySelector('#model-diagram').scrollIntoView()", json!([])).unwrap();
    shot(&browser, "model-diagram-nested");
    no_console_errors(&browser, "model (nested)");
}

#[test]
fn the_data_explorer_queries_by_an_index_diffs_versions_and_links_to_repair() {
    explorer_flow(Kind::Chromium);
}

#[test]
fn the_data_explorer_queries_by_an_index_diffs_versions_and_links_to_repair_in_firefox() {
    explorer_flow(Kind::Firefox);
}

/// The `data-key` of each row of the explorer's table (its objects' primary keys as JSON).
fn data_keys(browser: &Browser) -> Vec<String> {
    browser
        .find_all("#data-rows tr[data-key]")
        .unwrap_or_default()
        .iter()
        .filter_map(|r| browser.property(r, "dataset").ok()?["key"].as_str().map(str::to_string))
        .collect()
}

/// Picks `value` of the select `css` as a user does (clicks the option).
fn choose(browser: &Browser, css: &str, value: &str) {
    let option = browser.find(&format!("{css} option[value=\"{value}\"]")).unwrap();
    browser.click(&option).unwrap();
}

/// Queries the explorer: `type`, `index` (empty: all), `op`, `value`; waits for `keys`.
fn explore(browser: &Browser, type_name: &str, index: &str, op: &str, value: &str, keys: &[&str]) {
    choose(browser, "#data-type", type_name);
    choose(browser, "#data-index", index);
    if !index.is_empty() {
        choose(browser, "#data-op", op);
        browser.type_into(&browser.find("#data-value").unwrap(), value).unwrap();
    }
    browser.click(&browser.find("#data-query").unwrap()).unwrap();
    let want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    browser
        .wait(&format!("{type_name} {index} {op} {value}: {keys:?}"), || (data_keys(browser) == want).then_some(()))
        .unwrap_or_else(|e| {
            let note = browser.find("#data-message").and_then(|m| browser.text(&m)).unwrap_or_default();
            shot(browser, "data-explorer-failed");
            panic!("{e:#}; shown {:?}, message {note:?}", data_keys(browser))
        });
}

fn explorer_flow(kind: Kind) {
    let server = Server::start("samples/library");
    for (id, name, author, year) in
        [(1, "Dune", "Herbert", 1965), (2, "Emma", "Austen", 1815), (3, "Ulysses", "Joyce", 1922)]
    {
        let r = server.post_sync(&json!({"id": id, "book_name": name, "author": author, "year": year}));
        assert_eq!(r["status"], "stored", "{r}");
    }
    let r = server.post_sync(&json!({"id": 2, "book_name": "Emma, second edition", "author": "Austen", "year": 1816}));
    assert_eq!(r["status"], "stored", "{r}");
    // An update of book 2 that fails validation: kept in the repair queue, tied to Book 2.
    let failed = server.post_sync(&json!({"id": 2, "book_name": "Emma", "author": 5, "year": 1816}));
    assert_eq!(failed["status"], "repair", "{failed}");
    for i in 0..25 {
        let r = server.post_sync(&json!({"id": 100 + i, "username": format!("reader {i}")}));
        assert_eq!(r["status"], "stored", "{r}");
    }

    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    let admin = format!("{}/admin/", server.base_url());
    browser.goto(&admin).unwrap();
    token_sign_in(&browser, server.token());
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();
    browser.click(&browser.find("header nav a[data-page=data]").unwrap()).unwrap();
    browser.wait("the explorer", || browser.find("#data-type").ok()).unwrap();

    // Every User, paged by 20 with cursors.
    let first: Vec<String> = (100..120).map(|k| k.to_string()).collect();
    browser.wait("20 users", || (data_keys(&browser) == first).then_some(())).unwrap();
    browser.click(&browser.find("#data-next-page").unwrap()).unwrap();
    let second: Vec<String> = (120..125).map(|k| k.to_string()).collect();
    browser.wait("the next 5", || (data_keys(&browser) == second).then_some(())).unwrap();
    assert_eq!(browser.text(&browser.find("#data-page-number").unwrap()).unwrap(), "Page 2");
    browser.click(&browser.find("#data-prev-page").unwrap()).unwrap();
    browser.wait("back to the first 20", || (data_keys(&browser) == first).then_some(())).unwrap();

    // By the secondary index `year`, with its operators; a string index takes `like`.
    explore(&browser, "Book", "year", ">", "1900", &["3", "1"]);
    explore(&browser, "Book", "year", "<=", "1816", &["2"]);
    let first_keys: Vec<&str> = first.iter().map(String::as_str).collect();
    explore(&browser, "User", "id", ">=", "100", &first_keys);
    let ops: Vec<String> = browser
        .find_all("#data-op option")
        .unwrap()
        .iter()
        .map(|o| browser.property(o, "value").unwrap().as_str().unwrap().to_string())
        .collect();
    assert!(!ops.contains(&"like".to_string()), "no like on a long index: {ops:?}");
    choose(&browser, "#data-index", "phones");
    let ops = browser.text(&browser.find("#data-op").unwrap()).unwrap();
    assert!(ops.contains("like"), "like on a string index: {ops}");
    explore(&browser, "Book", "year", "==", "not a year", &[]);
    let refusal = browser.text(&browser.find("#data-message").unwrap()).unwrap();
    assert!(refusal.contains("year is an integer (int): \"not a year\" is not one"), "{refusal}");
    explore(&browser, "Book", "year", "==", "2001", &[]);
    browser
        .wait("the empty state", || {
            browser.text(&browser.find("#data-rows").ok()?).ok().filter(|t| t.contains("No object matches"))
        })
        .unwrap();
    explore(&browser, "Book", "year", "<", "1900", &["2"]);
    shot(&browser, "data-explorer");

    // Open book 2: its current state, two versions, and the diff between them.
    browser.click(&browser.find("#data-rows tr[data-key=\"2\"] a.object-link").unwrap()).unwrap();
    browser.wait("the object", || browser.find("#version-table").ok()).unwrap();
    assert_eq!(browser.text(&browser.find("#object-version-count").unwrap()).unwrap(), "2");
    let current = browser.text(&browser.find("#object-json").unwrap()).unwrap();
    assert!(current.contains("Emma, second edition"), "{current}");
    let changed =
        |field: &str| browser.text(&browser.find(&format!("#diff-table tr[data-field=\"{field}\"]")).ok()?).ok();
    let name = changed("book_name").expect("book_name changed");
    assert!(name.contains("\"Emma\"") && name.contains("\"Emma, second edition\""), "{name}");
    assert!(changed("year").is_some_and(|y| y.contains("1815") && y.contains("1816")));
    assert!(changed("author").is_none(), "the author did not change");
    // Any two versions: the same one on both sides has no change; reversed, the values swap.
    browser.click(&browser.find("#version-rows tr:nth-child(1) input[name=diff-a]").unwrap()).unwrap();
    browser
        .wait("no change", || browser.find("#version-diff p.empty").ok().and_then(|e| browser.text(&e).ok()))
        .unwrap();
    browser.click(&browser.find("#version-rows tr:nth-child(2) input[name=diff-b]").unwrap()).unwrap();
    let reversed = browser.wait("the reversed diff", || changed("book_name")).unwrap();
    assert!(reversed.find("second edition") < reversed.rfind("\"Emma\""), "from the newer to the older: {reversed}");
    shot(&browser, "data-object");

    // The failed update is linked; the link opens its repair entry.
    let link = browser.wait("the repair link", || browser.find("#object-repairs a.repair-link").ok()).unwrap();
    let related = browser.text(&browser.find("#object-related").unwrap()).unwrap();
    assert!(related.contains(failed["id"].as_str().unwrap()) && related.contains("Book.author"), "{related}");
    browser.click(&link).unwrap();
    let editor = browser.wait("the repair entry", || browser.find("#payload-editor").ok()).unwrap();
    let payload = browser.property(&editor, "value").unwrap();
    assert!(payload.as_str().is_some_and(|p| p.contains("\"author\": 5")), "{payload}");

    // An edit is a GraphQL mutation: refused with the path of what is wrong, then saved.
    browser.goto(&format!("{admin}#/data?type=Book&key=2")).unwrap();
    let edit = browser.wait("the edit button", || browser.find("#object-edit-open").ok()).unwrap();
    browser.click(&edit).unwrap();
    let editor = browser.find("#object-editor").unwrap();
    browser.type_into(&editor, r#"{"id": 2, "book_name": "Emma", "author": 7, "year": 1816}"#).unwrap();
    browser.click(&browser.find("#object-save").unwrap()).unwrap();
    let refused = browser
        .wait("the refusal", || {
            browser.text(&browser.find("#object-message").ok()?).ok().filter(|t| t.contains("Not saved"))
        })
        .unwrap();
    assert!(refused.contains("author"), "{refused}");
    browser
        .type_into(&editor, r#"{"id": 2, "book_name": "Emma, third edition", "author": "Austen", "year": 1817}"#)
        .unwrap();
    browser.click(&browser.find("#object-save").unwrap()).unwrap();
    browser
        .wait("three versions", || browser.text(&browser.find("#object-version-count").ok()?).ok().filter(|t| t == "3"))
        .unwrap();
    assert_eq!(server.data("Book", "id=2")[0]["object"]["book_name"], "Emma, third edition");
    // Delete writes a tombstone; the history stays.
    browser.click(&browser.find("#object-delete").unwrap()).unwrap();
    browser.click(&browser.wait("the confirmation", || browser.find("#confirm-ok").ok()).unwrap()).unwrap();
    browser
        .wait("the tombstone", || browser.text(&browser.find("#object-version-count").ok()?).ok().filter(|t| t == "4"))
        .unwrap();
    assert!(browser.find("#version-rows tr.deleted").is_ok());
    assert!(server.data("Book", "id=2").is_empty(), "deleted");
    no_console_errors(&browser, "data");

    // A link with part of a composite key is refused, not shown as a mix of objects.
    browser.goto(&format!("{admin}#/data?type=Subscription&key=%5B1%5D")).unwrap();
    let refused = browser.wait("the refusal", || browser.text(&browser.find("#page .message.bad").ok()?).ok()).unwrap();
    assert!(refused.contains("is not a primary key of Subscription") && refused.contains("2 values"), "{refused}");

    // A role without write rights reads, and is offered no edit.
    let viewer =
        server.client().send("POST", "/admin/api/tokens", Some(&json!({"name": "viewer", "role": "supervisor"})));
    viewer.assert_status(201, "create the viewer token");
    let viewer = viewer.json()["token"].as_str().unwrap().to_string();
    browser.click(&browser.find("#signout").unwrap()).unwrap();
    token_sign_in(&browser, &viewer);
    browser
        .wait("signed in as the viewer", || {
            browser.text(&browser.find("#whoami").ok()?).ok().filter(|t| t.contains("viewer (supervisor)"))
        })
        .unwrap();
    browser.goto(&format!("{admin}#/data?type=Book&key=1")).unwrap();
    browser.wait("read-only", || browser.find("#object-read-only").ok()).unwrap();
    assert!(browser.find("#object-edit-open").is_err() && browser.find("#object-delete").is_err());
}

#[test]
fn every_page_holds_its_layout_and_passes_the_accessibility_check() {
    every_page_flow(Kind::Chromium);
}

#[test]
fn every_page_holds_its_layout_and_passes_the_accessibility_check_in_firefox() {
    every_page_flow(Kind::Firefox);
}

/// axe-core's violations of serious or critical impact on the page as it is now (axe-core is
/// fetched from the npm registry by scripts/install-peers.sh; only the tests load it).
fn accessibility_violations(browser: &Browser) -> Vec<Value> {
    let loaded = browser.script("return typeof window.axe === 'object';", json!([])).unwrap();
    if loaded != json!(true) {
        let path = workspace_root().join("target/peers/axe/axe.min.js");
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/install-peers.sh fetches it)", path.display()));
        browser.script(&format!("{source}\n;return true;"), json!([])).unwrap();
    }
    browser
        .script(
            "window.__axe = null;
             axe.run(document).then((r) => {
               window.__axe = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
                 .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                               nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || ''))}));
             }, (e) => { window.__axe = [{id: 'axe failed', help: String(e)}]; });
             return true;",
            json!([]),
        )
        .unwrap();
    let found = browser
        .wait("axe's answer", || {
            let v = browser.script("return window.__axe;", json!([])).ok()?;
            v.as_array().cloned()
        })
        .unwrap();
    found
}

/// What is wrong with the layout at this width: the header's bar must be one row (its items on
/// one line) and the page must not scroll sideways (wide tables and pictures scroll in their own
/// boxes).
fn layout_problem(browser: &Browser, view: &str, width: u32) -> Option<String> {
    let m = browser
        .script(
            "const top = (s) => { const e = document.querySelector(s); return e ? e.getBoundingClientRect().top : null; };
             const bar = document.querySelector('header .bar').getBoundingClientRect();
             const wide = [...document.querySelectorAll('#page *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
               .slice(0, 3).map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className);
             return {brand: top('header .brand'), signout: top('#signout'), nav: top('header nav'),
                     bar: bar.height, page: document.documentElement.scrollWidth, viewport: window.innerWidth, wide};",
            json!([]),
        )
        .unwrap();
    let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    if f("page") > f("viewport") + 1.0 {
        return Some(format!("{view} at {width} px scrolls sideways: {m}"));
    }
    if (f("brand") - f("signout")).abs() >= 16.0 {
        return Some(format!("{view} at {width} px: Sign out is not beside the brand: {m}"));
    }
    if width >= 1000 && ((f("nav") - f("brand")).abs() >= 16.0 || f("bar") >= 60.0) {
        return Some(format!("{view} at {width} px: the bar wraps: {m}"));
    }
    None
}

fn every_page_flow(kind: Kind) {
    let server = Server::start("samples/library");
    let stored = server.post_sync(&json!({"id": 1, "book_name": "Dune", "author": "Herbert", "year": 1965}));
    assert_eq!(stored["status"], "stored");
    let stored = server.post_sync(&json!({"id": 1, "book_name": "Dune Messiah", "author": "Herbert", "year": 1969}));
    assert_eq!(stored["status"], "stored");
    let parked = server.post_sync(&json!({"id": 7, "title": "neither user nor book"}));
    assert_eq!(parked["status"], "repair");
    let parked = parked["id"].as_str().unwrap().to_string();

    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    let admin = format!("{}/admin/", server.base_url());
    browser.set_window_size(1280, 800).unwrap();
    browser.goto(&admin).unwrap();
    browser.wait("the sign-in page", || browser.find("#password-form").ok()).unwrap();
    let mut problems = Vec::new();
    let violations = accessibility_violations(&browser);
    if !violations.is_empty() {
        problems.push(format!("sign-in: {violations:#?}"));
    }
    shot(&browser, "page-signin-1280");
    browser.set_window_size(420, 800).unwrap();
    shot(&browser, "page-signin-420");
    browser.set_window_size(1280, 800).unwrap();
    token_sign_in(&browser, server.token());
    browser.wait("the repair page", || browser.find("#repair-table").ok()).unwrap();

    let views = [
        ("repair", "#/repair".to_string()),
        ("repair-entry", format!("#/repair?id={parked}")),
        ("data", "#/data".to_string()),
        ("data-object", "#/data?type=Book&key=1".to_string()),
        ("output", "#/output".to_string()),
        ("jobs", "#/jobs".to_string()),
        ("tasks", "#/tasks".to_string()),
        ("model", "#/model".to_string()),
        ("config", "#/config".to_string()),
        ("test", "#/test".to_string()),
        ("journal", "#/journal".to_string()),
        ("graphql", "#/graphql".to_string()),
        ("settings-users", "#/settings/users".to_string()),
        ("settings-tokens", "#/settings/tokens".to_string()),
        ("settings-roles", "#/settings/roles".to_string()),
        ("settings-data-actions", "#/settings/data-actions".to_string()),
        ("settings-password-policy", "#/settings/password-policy".to_string()),
        ("settings-notifications", "#/settings/notifications".to_string()),
        ("settings-audit", "#/settings/audit".to_string()),
    ];
    for (name, hash) in &views {
        browser.set_window_size(1280, 800).unwrap();
        browser.goto(&format!("{admin}{hash}")).unwrap();
        browser
            .wait(&format!("{name} drawn"), || {
                let drawn = browser.script("return document.querySelector('#page').dataset.rendered || '';", json!([]));
                (drawn.ok()? == json!(hash)).then_some(())
            })
            .unwrap();
        // The figures in the header arrive on their own; wait for them too.
        browser.wait("the figures", || browser.find("#status .badge").ok()).unwrap();
        problems.extend(layout_problem(&browser, name, 1280));
        shot(&browser, &format!("page-{name}-1280"));
        let violations = accessibility_violations(&browser);
        if !violations.is_empty() {
            problems.push(format!("{name}: {violations:#?}"));
        }
        browser.set_window_size(420, 800).unwrap();
        problems.extend(layout_problem(&browser, name, 420));
        shot(&browser, &format!("page-{name}-420"));
        let violations = accessibility_violations(&browser);
        if !violations.is_empty() {
            problems.push(format!("{name} at 420 px: {violations:#?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "layout problems and accessibility violations (serious or critical):\n{}",
        problems.join("\n")
    );
    no_console_errors(&browser, "every page");
}

#[test]
fn an_operator_retries_a_repair_entry_with_the_keyboard_alone() {
    keyboard_flow(Kind::Chromium);
}

#[test]
fn an_operator_retries_a_repair_entry_with_the_keyboard_alone_in_firefox() {
    keyboard_flow(Kind::Firefox);
}

/// Presses Tab until the focused element matches `css` (at most `max` times); the focus must be
/// visible there (an outline).
fn tab_to(browser: &Browser, css: &str, max: usize) {
    for _ in 0..max {
        browser.press(&[], keys::TAB).unwrap();
        let state = browser
            .script(
                "const e = document.activeElement; const s = getComputedStyle(e);
                 return {on: e.matches(arguments[0]), outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
                         what: e.outerHTML.slice(0, 80)};",
                json!([css]),
            )
            .unwrap();
        if state["on"] == json!(true) {
            assert_eq!(state["outline"], json!(true), "the focus on {css} is not visible: {state}");
            return;
        }
    }
    let at = browser.script("return document.activeElement.outerHTML.slice(0, 120);", json!([])).unwrap();
    panic!("{max} Tabs did not reach {css}; the focus is on {at}");
}

fn focused_inside(browser: &Browser, css: &str) -> bool {
    browser.script("return !!document.activeElement.closest(arguments[0]);", json!([css])).unwrap() == json!(true)
}

fn keyboard_flow(kind: Kind) {
    let server = Server::start("samples/library");
    let first = server.post_sync(&json!({"id": 8, "title": "neither user nor book"}));
    assert_eq!(first["status"], "repair");
    let browser = Browser::start_kind(kind).expect("the browser and its driver (see scripts/test.sh)");
    browser.set_window_size(1280, 800).unwrap();
    browser.goto(&format!("{}/admin/", server.base_url())).unwrap();
    browser.wait("the sign-in page", || browser.find("#password-form").ok()).unwrap();

    // Sign in: open "Sign in with a token", type the token, Enter.
    tab_to(&browser, "#token-signin summary", 10);
    browser.press(&[], keys::ENTER).unwrap();
    tab_to(&browser, "#token", 3);
    browser.press(&[], server.token()).unwrap();
    browser.press(&[], keys::ENTER).unwrap();
    browser.wait("the repair page", || browser.find("button.open-entry").ok()).unwrap();

    // Open the entry, fix its payload, Retry edited: all from the keyboard.
    tab_to(&browser, "button.open-entry", 40);
    browser.press(&[], keys::ENTER).unwrap();
    browser.wait("the details", || browser.find("#payload-editor").ok()).unwrap();
    browser.wait("the focus on the details", || focused_inside(&browser, "#repair-details").then_some(())).unwrap();
    tab_to(&browser, "#payload-editor", 10);
    browser.press(&[keys::CONTROL], "a").unwrap();
    browser.press(&[], r#"{"id": 8, "username": "Fixed from the keyboard"}"#).unwrap();
    tab_to(&browser, "#retry-edited", 10);
    browser.press(&[], keys::ENTER).unwrap();
    browser
        .wait("stored", || {
            browser.text(&browser.find("#repair-message").ok()?).ok().filter(|t| t.contains("stored as User"))
        })
        .unwrap();
    assert_eq!(server.data("User", "id=8")[0]["object"]["username"], "Fixed from the keyboard");

    // A confirmation opens on Cancel; Tab, Enter on Confirm deletes.
    let second = server.post_sync(&json!({"id": 9, "title": "another stray"}));
    assert_eq!(second["status"], "repair");
    let third = server.post_sync(&json!({"id": 10, "title": "a third stray"}));
    assert_eq!(third["status"], "repair");
    let is_open = || browser.script("return document.querySelector('#confirm').open;", json!([])).ok();
    let open_entry = |entry: &Value| {
        let id = entry["id"].as_str().unwrap().to_string();
        browser.goto(&format!("{}/admin/#/repair?id={id}", server.base_url())).unwrap();
        browser
            .wait("its details", || {
                browser.text(&browser.find("#repair-details h2").ok()?).ok().filter(|t| t.contains(&id))
            })
            .unwrap();
        tab_to(&browser, "#delete-one", 40);
        browser.press(&[], keys::ENTER).unwrap();
        browser.wait("the dialog", || (is_open()? == json!(true)).then_some(())).unwrap();
    };
    open_entry(&third);
    assert!(focused_inside(&browser, "#confirm button[value=cancel]"), "the dialog opens on Cancel");
    browser.press(&[], keys::TAB).unwrap();
    assert!(focused_inside(&browser, "#confirm-ok"));
    browser.press(&[], keys::ENTER).unwrap();
    wait_until(std::time::Duration::from_secs(10), "the third deleted", || {
        (server.repair_entries("").len() == 1).then_some(())
    });

    // The next keeps the focus inside and closes on Escape without deleting, though the
    // dialog's last answer was Confirm.
    open_entry(&second);
    let violations = accessibility_violations(&browser);
    assert!(violations.is_empty(), "the open dialog: {violations:#?}");
    for _ in 0..5 {
        assert!(focused_inside(&browser, "#confirm"), "the focus left the dialog");
        browser.press(&[], keys::TAB).unwrap();
    }
    browser.press(&[keys::SHIFT], keys::TAB).unwrap();
    assert!(focused_inside(&browser, "#confirm"), "Shift+Tab left the dialog");
    browser.press(&[], keys::ESCAPE).unwrap();
    browser.wait("the dialog closed", || (is_open()? == json!(false)).then_some(())).unwrap();
    assert!(focused_inside(&browser, "#delete-one"), "the focus went back to Delete");
    // A delete would have been sent at once: give it time to land, then look.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let left = server.repair_entries("");
    assert_eq!(left.len(), 1, "Escape deleted nothing");
    assert_eq!(left[0]["id"], second["id"]);
    no_console_errors(&browser, "keyboard");
}
