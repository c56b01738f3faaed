//! Every sample's cases pass `ferrogrid test` (no server, outputs recorded), which also reports
//! failures with a diff, as JUnit, and with its exit codes; and every sample with an HTTP or SOAP
//! input runs as a server whose golden cases pass over HTTP: for each
//! `samples/<name>/tests/<case>/`, in name order on one server per sample, `input.json` is posted to `/http?sync=true` (or `input.xml`, a SOAP
//! envelope, to `/soap?sync=true`) and the outcome must be `expected.json`: `status` and
//! `routing_key`; for stored objects the `type` and the `object` read back through
//! `/data/<type>?<query>`; for the repair queue, text the `error` must contain. (Cases whose
//! object is sent to an output, `routed`, are `ferrogrid test`'s: the Kafka samples' peers are
//! in tests/kafka.rs.)

use ferrogrid_tests::{binary_path, encode, soap_outcome, workspace_root, Server};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sorted_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn run_case(server: &Server, case: &Path) {
    let name = case.display();
    let expected = read_json(&case.join("expected.json"));
    let xml = case.join("input.xml");
    let (input, outcome) = if xml.is_file() {
        let text = std::fs::read_to_string(&xml).unwrap_or_else(|e| panic!("{}: {e}", xml.display()));
        let answer = server.post_soap("/soap?sync=true", &text);
        answer.assert_status(200, &format!("{name}: POST /soap?sync=true"));
        (None, soap_outcome(&answer.body))
    } else {
        let input = read_json(&case.join("input.json"));
        let outcome = server.post_sync(&input);
        (Some(input), outcome)
    };
    assert_eq!(outcome["status"], expected["status"], "{name}: {outcome}");
    assert_eq!(outcome["routing_key"], expected["routing_key"], "{name}: {outcome}");
    match expected["status"].as_str() {
        Some("stored") => {
            assert_eq!(outcome["type"], expected["type"], "{name}: {outcome}");
            let type_name = expected["type"].as_str().unwrap_or_default();
            let query = expected["query"].as_str().unwrap_or_else(|| panic!("{name}: expected.json needs a query"));
            let (index, value) = query.split_once('=').unwrap_or_else(|| panic!("{name}: query is index=value"));
            let found = server.data(type_name, &format!("{index}={}", encode(value)));
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert_eq!(found[0]["object"], expected["object"], "{name}");
            assert_eq!(found[0]["version"], outcome["version"], "{name}");
        }
        Some("repair") => {
            let error = outcome["error"].as_str().unwrap_or_default();
            let want = expected["error"].as_str().unwrap_or_default();
            assert!(!want.is_empty() && error.contains(want), "{name}: {error:?} should contain {want:?}");
            let entry = server.get(&format!("/admin/api/repair/{}", outcome["id"].as_str().unwrap_or_default()));
            let payload = &entry.json()["payload"];
            match &input {
                Some(input) => assert_eq!(payload, input, "{name}: the repair queue keeps the payload"),
                None => assert!(payload["tag"].is_string(), "{name}: the repair queue keeps the XML tree: {payload}"),
            }
        }
        other => panic!("{name}: unknown expected status {other:?}"),
    }
}

/// The flow cases of a sample (its `tests/` folders but `functions`).
fn flow_cases(sample: &Path) -> Vec<std::path::PathBuf> {
    sorted_dirs(&sample.join("tests")).into_iter().filter(|p| !p.ends_with("functions")).collect()
}

#[test]
fn every_sample_runs_and_passes_its_golden_cases() {
    let samples = sorted_dirs(&workspace_root().join("samples"));
    assert!(samples.len() >= 4, "{samples:?}");
    for sample in samples {
        let cases = flow_cases(&sample);
        assert!(!cases.is_empty(), "{}: every sample has golden cases in tests/", sample.display());
        // What a server can be sent: the sample's HTTP/SOAP inputs' cases that do not leave it.
        let text = std::fs::read_to_string(sample.join("config.yml")).expect("config.yml");
        let config: Value = serde_yaml_ng::from_str(&text).expect("config.yml is YAML");
        let inputs = config["connector"]["input"].as_array().cloned().unwrap_or_default();
        if !inputs.iter().any(|i| i["type"] == "http" || i["type"] == "soap") {
            continue;
        }
        let served: Vec<_> =
            cases.into_iter().filter(|c| read_json(&c.join("expected.json"))["status"] != "routed").collect();
        let server = Server::start(&sample);
        for case in served {
            run_case(&server, &case);
        }
    }
}

fn ferrogrid_test(folder: &Path, format: &str) -> Output {
    Command::new(binary_path())
        .args(["test", &folder.display().to_string(), "--format", format])
        .output()
        .expect("running ferrogrid test")
}

/// The `testcase` names and `failure` count of a JUnit report, read with an XML parser (so the
/// report is well-formed), and the text of its failures.
fn junit(xml: &str) -> (Vec<String>, usize, String) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut names, mut failures, mut text, mut in_failure) = (Vec::new(), 0, String::new(), false);
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{xml}")) {
            Event::Start(e) | Event::Empty(e) if e.name().into_inner() == "testcase" => {
                let name = e.try_get_attribute("name").unwrap().expect("a testcase has a name");
                names.push(name.value.to_string());
            }
            Event::Start(e) if e.name().into_inner() == "failure" => {
                failures += 1;
                in_failure = true;
            }
            Event::End(e) if e.name().into_inner() == "failure" => in_failure = false,
            Event::Text(t) if in_failure => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_failure => text.push(match &*r.xml10_content() {
                "quot" => '"',
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                _ => '\'',
            }),
            Event::Eof => break,
            _ => {}
        }
    }
    (names, failures, text)
}

#[test]
fn every_samples_cases_pass_ferrogrid_test() {
    for sample in sorted_dirs(&workspace_root().join("samples")) {
        let out = ferrogrid_test(&sample, "junit");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {stdout}\n{}", sample.display(), String::from_utf8_lossy(&out.stderr));
        let (names, failures, _) = junit(&stdout);
        assert_eq!(failures, 0, "{stdout}");
        let flows = flow_cases(&sample).len();
        assert_eq!(names.iter().filter(|n| n.starts_with("flows/")).count(), flows, "{stdout}");
    }
    // The samples have function cases too, and the tutorial's loop is checked as TDG shows it.
    let out = ferrogrid_test(&workspace_root().join("samples/library"), "text");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok    functions/select_user_books/two_books"), "{text}");
    let out = ferrogrid_test(&workspace_root().join("samples/kafka"), "text");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok    flows/1_tutorial_message"), "{text}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A folder whose cases fail: exit 1, each failure with a diff of what differs, a valid JUnit
/// report counting them; the passing cases still pass. A folder that cannot run: exit 2.
#[test]
fn ferrogrid_test_reports_failures_with_a_diff_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("library");
    copy_dir(&workspace_root().join("samples/library"), &folder);
    let edit = |path: &str, from: &str, to: &str| {
        let path = folder.join("tests").join(path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{}: {text}", path.display());
        std::fs::write(&path, text.replace(from, to)).unwrap();
    };
    edit("2_book/expected.json", "\"author\": \"Frank Herbert\"", "\"author\": \"Asimov\"");
    edit("functions/select_user_books/two_books.json", "\"Emma, Walden\"", "\"Walden, Emma\"");
    edit("4_unknown/expected.json", "\"status\": \"repair\"", "\"status\": \"stored\"");

    let out = ferrogrid_test(&folder, "text");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  flows/2_book"), "{text}");
    assert!(
        text.contains("-    \"author\": \"Asimov\",") && text.contains("+    \"author\": \"Frank Herbert\","),
        "{text}"
    );
    assert!(text.contains("FAIL  functions/select_user_books/two_books"), "{text}");
    assert!(text.contains("-\"Walden, Emma\"") && text.contains("+\"Emma, Walden\""), "{text}");
    assert!(text.contains("-  \"status\": \"stored\"") && text.contains("+  \"status\": \"repair\""), "{text}");
    assert!(text.contains("ok    flows/1_user") && text.contains("ok    flows/3_subscription"), "{text}");
    assert!(text.contains("library: 7 passed, 3 failed"), "{text}");

    let out = ferrogrid_test(&folder, "junit");
    assert_eq!(out.status.code(), Some(1));
    let (names, failures, failure_text) = junit(&String::from_utf8_lossy(&out.stdout));
    assert_eq!((names.len(), failures), (10, 3), "{names:?}");
    assert!(failure_text.contains("\"author\": \"Asimov\""), "{failure_text}");

    std::fs::write(folder.join("config.yml"), "bogus: 1\n").unwrap();
    let out = ferrogrid_test(&folder, "text");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ferrogrid_test(dir.path(), "text");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no tests/ folder"));
}
