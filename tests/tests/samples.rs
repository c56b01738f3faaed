//! Every sample runs, and its golden cases pass: for each `samples/<name>/tests/<case>/`, in
//! name order on one server per sample, `input.json` is posted to `/http?sync=true` (or
//! `input.xml`, a SOAP envelope, to `/soap?sync=true`) and the outcome must be `expected.json`:
//! `status` and `routing_key`; for stored objects the `type` and the `object` read back through
//! `/data/<type>?<query>`; for the repair queue, text the `error` must contain.

use ferrogrid_tests::{encode, soap_outcome, workspace_root, Server};
use serde_json::Value;
use std::path::Path;

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

#[test]
fn every_sample_runs_and_passes_its_golden_cases() {
    let samples = sorted_dirs(&workspace_root().join("samples"));
    assert!(samples.len() >= 2, "{samples:?}");
    for sample in samples {
        let cases = sample.join("tests");
        assert!(cases.is_dir(), "{}: every sample has golden cases in tests/", sample.display());
        let server = Server::start(&sample);
        let cases = sorted_dirs(&cases);
        assert!(!cases.is_empty(), "{}", sample.display());
        for case in cases {
            run_case(&server, &case);
        }
    }
}
