//! Tests of configuration loading.

use super::*;
use std::fs;

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, text).unwrap();
    }
    dir
}

fn errors_of(files: &[(&str, &str)]) -> Vec<String> {
    let dir = folder(files);
    match load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(ConfigErrors(errors)) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn includes_are_resolved_by_extension() {
    let dir = folder(&[
        ("config.yml", "types: {__file: model.avsc}\nfunctions:\n  f: {__file: f.rhai}\npipelines:\n  p: [f]\n"),
        ("model.avsc", r#"[{"type": "record", "name": "User", "fields": []}]"#),
        ("f.rhai", "param\n"),
    ]);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.config.functions["f"], "param\n");
    assert!(loaded.config.types.unwrap().is_array());
    assert_eq!(loaded.config.pipelines["p"], vec!["f".to_string()]);
}

#[test]
fn an_empty_model_file_is_an_empty_model_as_in_tdgs_tutorials() {
    let dir = folder(&[("config.yml", "types: {__file: model.avsc}\n"), ("model.avsc", " \n")]);
    assert_eq!(load(dir.path()).unwrap().config.types, Some(serde_json::json!([])));
    let errors = errors_of(&[("config.yml", "types: {__file: model.json}\n"), ("model.json", "")]);
    assert!(errors.join("\n").contains("invalid JSON"), "{errors:?}: only .avsc is read so");
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    let errors =
        errors_of(&[("config.yml", "connector:\n  input:\n    - {name: http, type: http, colour: red}\nbogus: 1\n")]);
    let text = errors.join("\n");
    assert!(text.contains("connector.input[0]"), "{text}");
    assert!(text.contains("bogus"), "{text}");
}

#[test]
fn unsupported_connector_types_are_errors() {
    let errors = errors_of(&[("config.yml", "connector:\n  input:\n    - {name: k, type: kafka}\n")]);
    assert!(errors.iter().any(|e| e.starts_with("connector.input[0]")), "{errors:?}");
}

#[test]
fn the_security_sections_are_read() {
    let errors = errors_of(&[(
        "config.yml",
        "account_manager:\n  block_after_n_failed_attempts: 3\n  password_policy: {min_length: 12, include: {symbols: true}}\naudit_log: {severity: VERBOSE, remove_older_than_n_hours: 24}\n",
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    let errors = errors_of(&[("config.yml", "account_manager: {block_after_n_failed_attempts: 0, bogus: 1}\n")]);
    assert!(errors.iter().any(|e| e.starts_with("account_manager.block_after_n_failed_attempts")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("bogus")), "{errors:?}");
    // One-time passwords are mailed through an SMTP output of connector.output (TDG's form).
    let smtp = "connector:\n  output:\n    - {name: to_smtp, type: smtp, url: \"smtp://127.0.0.1:2525\", from: grid@example.com}\n    - {name: hook, type: http, url: \"http://127.0.0.1:1/x\"}\n";
    let mailed = format!("{smtp}account_manager:\n  only_one_time_passwords: true\n  output:\n    name: to_smtp\n    options:\n      subject: \"Registration\"\n");
    assert_eq!(errors_of(&[("config.yml", &mailed)]), Vec::<String>::new());
    for (name, why) in [("hook", "is not an output of type smtp"), ("nowhere", "is not an output of type smtp")] {
        let errors = errors_of(&[("config.yml", &format!("{smtp}account_manager: {{output: {{name: {name}}}}}\n"))]);
        assert!(errors.iter().any(|e| e.starts_with("account_manager.output.name") && e.contains(why)), "{errors:?}");
    }
}

#[test]
fn a_service_names_an_existing_function() {
    let errors = errors_of(&[("config.yml", "services:\n  s: {function: nope, return_type: string}\n")]);
    assert_eq!(errors, vec!["services.s.function: pipeline or function \"nope\" is not defined".to_string()]);
}

#[test]
fn dangling_references_are_listed_together() {
    let errors = errors_of(&[(
        "config.yml",
        "pipelines:\n  p: [missing]\nconnector:\n  input:\n    - {name: http, type: http, pipeline: nope}\n  routing:\n    - {key: k, output: nowhere}\ninput_processor:\n  classifiers:\n    - {name: c, pipeline: ghost}\n",
    )]);
    let text = errors.join("\n");
    for want in [
        "pipelines.p[0]: function \"missing\" is not defined",
        "connector.input[0].pipeline: pipeline or function \"nope\" is not defined",
        "connector.routing[0].output: output \"nowhere\" is not defined",
        "input_processor.classifiers[0].pipeline: pipeline or function \"ghost\" is not defined",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn schema_errors_and_dangling_references_are_reported_together() {
    let errors = errors_of(&[(
        "config.yml",
        "pipelines:\n  p: [nothere]\ninput_processor:\n  workers: 0\n  storage:\n    - {key: k, type: T, colour: blue}\n",
    )]);
    let text = errors.join("\n");
    assert!(text.contains("input_processor.storage[0]") && text.contains("colour"), "{text}");
    assert!(text.contains("input_processor.workers"), "{text}");
    assert!(text.contains("pipelines.p[0]: function \"nothere\" is not defined"), "{text}");
}

#[test]
fn includes_cannot_leave_the_folder() {
    let errors = errors_of(&[("config.yml", "functions:\n  f: {__file: ../etc/passwd}\n")]);
    assert!(errors[0].starts_with("functions.f: __file"), "{errors:?}");
    let errors = errors_of(&[("config.yml", "functions:\n  f: {__file: /etc/passwd}\n")]);
    assert!(errors[0].contains("inside the configuration folder"), "{errors:?}");
}

#[test]
fn missing_include_names_the_key() {
    let errors = errors_of(&[("config.yml", "functions:\n  f: {__file: nothere.rhai}\n")]);
    assert!(errors[0].starts_with("functions.f: __file \"nothere.rhai\""), "{errors:?}");
}

#[test]
fn yaml_syntax_errors_name_the_file() {
    let errors = errors_of(&[("config.yml", "functions: [\n")]);
    assert!(errors[0].contains("config.yml: invalid YAML"), "{errors:?}");
}

#[test]
fn the_checked_in_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.schema.json");
    let current = serde_json::to_string_pretty(schema()).unwrap() + "\n";
    let stored = fs::read_to_string(&path).unwrap_or_default();
    if std::env::var_os("FERROGRID_BLESS").is_some() {
        fs::write(&path, &current).unwrap();
        return;
    }
    assert!(
        stored == current,
        "docs/config.schema.json is stale: run `FERROGRID_BLESS=1 cargo test -p ferrogrid-engine the_checked_in_schema_is_current`"
    );
}

#[test]
fn connector_errors_name_the_key_inside_the_selected_type() {
    let errors = errors_of(&[(
        "config.yml",
        "connector:\n  input:\n    - {name: a, type: http, colour: blue}\n    - {name: b, type: http, max_body_size: 0}\n    - {name: c, type: file}\n    - {name: d, type: telepathy}\n    - {name: e}\n  output:\n    - {name: o, type: dummy, extra: 1}\n",
    )]);
    let text = errors.join("\n");
    for want in [
        "connector.input[0].colour: unknown key",
        "connector.input[1].max_body_size: 0 is less than the minimum of 1",
        "connector.input[2].type: type \"file\" is not supported by this build yet (supported here: http, kafka, soap)",
        "connector.input[3].type: unknown type \"telepathy\" (one of: http, kafka, soap)",
        "connector.input[4]: missing `type`",
        "connector.output[0].extra: unknown key",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("oneOf"), "{text}");
}

#[test]
fn soap_handlers_name_existing_pipelines_once_each() {
    let errors = errors_of(&[
        (
            "config.yml",
            "functions: {f: {__file: f.rhai}}\nconnector:\n  input:\n    - name: s\n      type: soap\n      wsdl: {__file: service.wsdl}\n      handlers:\n        - {function: Connect, pipeline: f}\n        - {function: Connect, pipeline: ghost}\n    - {name: t, type: soap, handlers: []}\n",
        ),
        ("f.rhai", "param"),
        ("service.wsdl", "<definitions/>"),
    ]);
    let text = errors.join("\n");
    for want in [
        "connector.input[0].handlers[1].pipeline: pipeline or function \"ghost\" is not defined",
        "connector.input[0].handlers[1].function: duplicate SOAP handler function \"Connect\"",
        "connector.input[1]: only one input of type soap can serve POST /soap",
        "connector.input[1].handlers",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let dir = folder(&[
        ("config.yml", "functions: {f: {__file: f.rhai}}\nconnector:\n  input:\n    - {name: s, type: soap, wsdl: {__file: service.wsdl}, handlers: [{function: Connect, pipeline: f}]}\n"),
        ("f.rhai", "param"),
        ("service.wsdl", "<definitions/>"),
    ]);
    let loaded = load(dir.path()).unwrap();
    let soap = loaded.config.connector.input[0].as_soap().unwrap();
    assert_eq!(soap.wsdl.as_deref(), Some("<definitions/>"));
}

#[test]
fn tasks_are_checked_with_their_names() {
    let errors = errors_of(&[(
        "config.yml",
        "functions:\n  f: \"1\"\ntasks:\n  nightly: {kind: periodical, pipeline: f, schedule: \"every night\"}\n  bare: {kind: periodical, pipeline: f}\n  loop: {kind: continuous, pipeline: ghost, schedule: \"* * * * * *\"}\n  once: {kind: single_shot, pipeline: f, pause_sec: 1}\n  ok: {kind: periodical, pipeline: f, schedule: \"*/1 * * * * *\"}\n",
    )]);
    let text = errors.join("\n");
    for want in [
        "tasks.nightly.schedule: \"every night\" is not a cron expression with seconds",
        "tasks.bare: a periodical task needs a schedule",
        "tasks.loop.pipeline: pipeline or function \"ghost\" is not defined",
        "tasks.loop.schedule: only periodical tasks have a schedule, not continuous",
        "tasks.once.pause_sec: only continuous tasks pause",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("tasks.ok"), "{text}");
}

#[test]
fn output_processor_keys_name_existing_pipelines_and_outputs() {
    let errors = errors_of(&[(
        "config.yml",
        "repair_queue:\n  on_object_added:\n    __unclassified__: {postprocess_with_routing_key: Lost}\nconnector:\n  output:\n    - {name: hub, type: dummy}\n    - {name: ip, type: input_processor}\noutput_processor:\n  A: {pipeline: nope, output: hub}\n  B: {handlers: [{outputs: [hub, ghost, ip]}]}\n  C: {pipeline: nope}\n  D: {output: hub, store_strategy: reference}\n  E: {output: hub, is_async: false}\n",
    )]);
    let text = errors.join("\n");
    for want in [
        "output_processor.A.pipeline: pipeline or function \"nope\" is not defined",
        "output_processor.B.handlers[0].outputs[1]: output \"ghost\" is not defined in connector.output",
        "output_processor.B.handlers[0].outputs[2]: output \"ip\" is the input processor",
        "output_processor.C.pipeline: a pipeline needs its `output`",
        "output_processor.C: names no output",
        "output_processor.E.is_async: output \"hub\" is also used by key \"D\" in the other mode",
        "repair_queue.on_object_added.__unclassified__.postprocess_with_routing_key: \"Lost\" is not a key of output_processor",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("output_processor.A.output"), "{text}");
}
