//! TDG's routing rules as a user meets them: an input pipeline sets the routing key, connector
//! routing sends a key straight to an output, classifiers decide the rest (`__unclassified__` when
//! none does), a routing pipeline name that is not a pipeline runs the function of that name.

use ferrogrid_tests::{metric_value, Server};
use serde_json::json;

const CONFIG: &str = r#"
types:
  __file: model.avsc

functions:
  router: {__file: router.rhai}
  by_kind: {__file: by_kind.rhai}
  stamp: {__file: stamp.rhai}

connector:
  input:
    - name: http
      type: http
      pipeline: router
  output:
    - name: sink
      type: dummy
  routing:
    - key: audit
      output: sink

input_processor:
  classifiers:
    - name: kind
      pipeline: by_kind
  routing:
    - key: note
      pipeline: stamp
  storage:
    - key: note
      type: Note
"#;

const MODEL: &str = r#"[
  {"name": "Note", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
   "fields": [{"name": "id", "type": "long"}, {"name": "text", "type": "string"},
              {"name": "stamped", "type": "boolean"}]}
]"#;

/// Audit records leave through connector routing; everything else goes to the input processor.
const ROUTER: &str = r#"
let key = if param.audit == true { "audit" } else { "incoming" };
#{obj: param, routing_key: key, priority: 1}
"#;

/// Classifies only objects with `kind: "note"`.
const BY_KIND: &str = r#"
if param.obj.kind == "note" { param.routing_key = "note"; }
param
"#;

/// Named in input_processor.routing, defined only as a function (no pipeline `stamp`).
const STAMP: &str = r#"
let obj = param.obj;
obj.stamped = true;
#{obj: obj, routing_key: param.routing_key, priority: 1}
"#;

fn start() -> Server {
    Server::start_with_config(
        CONFIG,
        &[("model.avsc", MODEL), ("router.rhai", ROUTER), ("by_kind.rhai", BY_KIND), ("stamp.rhai", STAMP)],
    )
}

#[test]
fn connector_routing_classifiers_unclassified_and_function_fallback() {
    let server = start();

    let routed = server.post_sync(&json!({"audit": true, "who": "ops"}));
    assert_eq!(routed["status"], "routed", "{routed}");
    assert_eq!(routed["routing_key"], "audit", "{routed}");
    let metrics = server.get("/metrics").body;
    assert_eq!(metric_value(&metrics, "ferrogrid_objects_routed_total", &[("output", "sink")]), Some(1.0), "{metrics}");

    let stored = server.post_sync(&json!({"kind": "note", "id": 1, "text": "hello"}));
    assert_eq!(stored["status"], "stored", "{stored}");
    assert_eq!(stored["type"], "Note", "{stored}");
    let notes = server.data("Note", "id=1");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["object"], json!({"id": 1, "text": "hello", "stamped": true}), "the fallback function ran");

    let other = server.post_sync(&json!({"kind": "memo", "id": 2}));
    assert_eq!(other["status"], "repair", "{other}");
    assert_eq!(other["routing_key"], "__unclassified__", "{other}");
    let error = other["error"].as_str().unwrap_or_default();
    assert!(error.contains("no storage or route for routing_key \"__unclassified__\""), "{other}");
    let entry = server.get(&format!("/admin/api/repair/{}", other["id"].as_str().unwrap_or_default())).json();
    assert_eq!(entry["payload"], json!({"kind": "memo", "id": 2}), "{entry}");

    // Only the unclassified object waits; the routed one left no entry behind.
    assert_eq!(server.repair_entries("").len(), 1);
}
