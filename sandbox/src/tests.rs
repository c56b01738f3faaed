//! Tests of the sandbox: one per limit with a hostile script, and each API module.

use crate::*;
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// An in-memory host: objects by type, keyed by `id`.
#[derive(Default)]
struct Memory {
    objects: Mutex<Vec<(String, Value)>>,
    jobs: Mutex<Vec<(String, Value)>>,
    counter: Mutex<i64>,
}

impl Repository for Memory {
    fn find(&self, type_name: &str, filter: &Value, _: &Value) -> Result<Value, HostError> {
        let objects = self.objects.lock().unwrap();
        let wanted = filter.get(0).and_then(|c| c.get(2)).cloned();
        Ok(Value::Array(
            objects
                .iter()
                .filter(|(t, o)| t == type_name && wanted.as_ref().is_none_or(|w| o.get("id") == Some(w)))
                .map(|(_, o)| o.clone())
                .collect(),
        ))
    }
    fn get(&self, type_name: &str, index: &str, key: &Value, _: &Value) -> Result<Value, HostError> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .iter()
            .find(|(t, o)| t == type_name && o.get(index) == Some(key))
            .map_or(Value::Null, |(_, o)| o.clone()))
    }
    fn put(&self, type_name: &str, object: &Value, _: &Value) -> Result<Value, HostError> {
        if object.get("id").is_none() {
            return Err(HostError::new(ErrorClass::UserData, format!("{type_name}.id: missing required field")));
        }
        self.objects.lock().unwrap().push((type_name.to_string(), object.clone()));
        Ok(object.clone())
    }
    fn update(&self, _: &str, _: &Value, updaters: &Value, _: &Value) -> Result<Value, HostError> {
        Ok(json!([{"updated_with": updaters}]))
    }
    fn delete(&self, type_name: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        let mut objects = self.objects.lock().unwrap();
        let (gone, kept): (Vec<_>, Vec<_>) = objects.drain(..).partition(|(t, _)| t == type_name);
        *objects = kept;
        Ok(Value::Array(gone.into_iter().map(|(_, o)| o).collect()))
    }
    fn push_job(&self, name: &str, args: &Value) -> Result<(), HostError> {
        self.jobs.lock().unwrap().push((name.to_string(), args.clone()));
        Ok(())
    }
}

impl Sequences for Memory {
    fn next(&self, _: &str) -> Result<i64, HostError> {
        let mut c = self.counter.lock().unwrap();
        *c += 1;
        Ok(*c)
    }
}

fn sandbox_with(limits: Limits, libraries: &[(&str, &str)]) -> (Arc<Memory>, Sandbox) {
    let memory = Arc::new(Memory::default());
    let host = Host { repository: memory.clone(), sequences: memory.clone() };
    let libraries: Vec<(String, String)> = libraries.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect();
    (memory, Sandbox::new(limits, host, &libraries).unwrap())
}

fn run_with(limits: Limits, source: &str, param: Value) -> Result<Value, ScriptError> {
    let (_, sandbox) = sandbox_with(limits, &[]);
    let script = sandbox.compile("f", source)?;
    sandbox.engine().run_json(&script, param, &CallContext::default())
}

fn run(source: &str, param: Value) -> Result<Value, ScriptError> {
    run_with(Limits::default(), source, param)
}

fn limit_of(result: Result<Value, ScriptError>) -> String {
    match result {
        Err(e) => match e.kind() {
            ErrorKind::Limit(what) => what.clone(),
            other => panic!("expected a limit error, got {other:?}: {e}"),
        },
        Ok(v) => panic!("expected a limit error, got {v}"),
    }
}

#[test]
fn param_in_last_expression_out() {
    let out = run(
        "let obj = param.obj; obj.username = \"x\"; #{obj: obj, routing_key: \"User\", priority: 1}",
        json!({"obj": {"id": 1}}),
    )
    .unwrap();
    assert_eq!(out, json!({"obj": {"id": 1, "username": "x"}, "priority": 1, "routing_key": "User"}));
}

#[test]
fn large_integers_keep_their_precision() {
    let big = 1i64 << 62;
    let out = run("param.n + 1", json!({"n": big})).unwrap();
    assert_eq!(out, json!(big + 1));
    assert!(out.is_i64());
    assert_eq!(run("param", json!({"f": 1.5, "n": null})).unwrap(), json!({"f": 1.5, "n": null}));
}

#[test]
fn infinite_loop_is_stopped_by_the_operation_limit() {
    let what = limit_of(run_with(Limits { max_operations: 100_000, ..Limits::default() }, "loop { }", json!({})));
    assert!(what.contains("max_operations"), "{what}");
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline() {
    let limits = Limits { max_operations: 0, timeout_ms: 200, ..Limits::default() };
    let started = std::time::Instant::now();
    let err = run_with(limits, "let x = 0; loop { x += 1; }", json!({})).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Timeout);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn cancel_flag_stops_a_script() {
    let (_, sandbox) = sandbox_with(Limits { max_operations: 0, ..Limits::default() }, &[]);
    let script = sandbox.compile("task", "loop { }").unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let ctx = CallContext { request_id: "r".into(), cancel: Some(cancel) };
    let err = sandbox.engine().run_json(&script, json!({}), &ctx).unwrap_err();
    stopper.join().unwrap();
    assert_eq!(err.kind(), &ErrorKind::Cancelled);
}

#[test]
fn growing_array_is_stopped() {
    let limits = Limits { max_array_size: 1000, ..Limits::default() };
    let what = limit_of(run_with(limits, "let a = []; loop { a.push(1); }", json!({})));
    assert!(what.to_lowercase().contains("array"), "{what}");
}

#[test]
fn doubling_string_is_stopped() {
    let what = limit_of(run("let s = \"ab\"; loop { s += s; }", json!({})));
    assert!(what.to_lowercase().contains("string"), "{what}");
}

#[test]
fn growing_map_is_stopped() {
    // Rhai checks the map size on merges; keys added one by one are stopped by the operation
    // limit (whichever comes first, the script ends with a limit error).
    let limits = Limits { max_map_size: 1000, max_operations: 1_000_000, ..Limits::default() };
    let what = limit_of(run_with(
        limits.clone(),
        "let m = #{}; let i = 0; loop { let one = #{}; one[`k${i}`] = i; m += one; i += 1; }",
        json!({}),
    ));
    assert!(what.to_lowercase().contains("map") || what.contains("max_operations"), "{what}");
    let what = limit_of(run_with(limits, "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }", json!({})));
    assert!(what.to_lowercase().contains("map") || what.contains("max_operations"), "{what}");
}

#[test]
fn deep_recursion_is_stopped() {
    let what = limit_of(run("fn down(n) { down(n + 1) } down(0)", json!({})));
    assert!(what.contains("max_call_levels"), "{what}");
}

#[test]
fn ten_thousand_nested_parentheses_are_refused_at_compile_time() {
    let source = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let (_, sandbox) = sandbox_with(Limits::default(), &[]);
    let err = sandbox.compile("nested", &source).err().expect("must not compile");
    assert!(matches!(err.kind(), ErrorKind::Limit(_)), "{err}");
    assert!(err.to_string().starts_with("nested:"), "{err}");
}

#[test]
fn eval_and_timestamps_and_sleep_are_not_available() {
    assert!(run("eval(\"1\")", json!({})).is_err());
    assert!(run("timestamp()", json!({})).is_err());
    let started = std::time::Instant::now();
    assert!(run("sleep(10)", json!({})).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn thrown_text_is_kept_with_function_and_line() {
    let err = run("let a = 1;\nthrow \"bad object\";", json!({})).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Thrown("bad object".into()));
    assert_eq!(err.to_string(), "f:2: bad object");
}

#[test]
fn runtime_errors_name_the_line() {
    let err = run("let a = 1;\nlet b = 2;\nlet c = a + \"x\" * 3;", json!({})).unwrap_err();
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(matches!(err.kind(), ErrorKind::Runtime(_)), "{err:?}");
}

#[test]
fn syntax_errors_name_the_line() {
    let (_, sandbox) = sandbox_with(Limits::default(), &[]);
    let err = sandbox.compile("broken", "let a = 1;\nlet = ;").err().unwrap();
    assert_eq!(err.line(), Some(2));
    assert!(err.to_string().starts_with("broken:2: syntax error"), "{err}");
}

#[test]
fn repository_functions_reach_the_host() {
    let (memory, sandbox) = sandbox_with(Limits::default(), &[]);
    let source = r#"
        repository::put("User", #{id: 1, username: "a"});
        repository::put("User", #{id: 2, username: "b"}, #{});
        let one = repository::get("User", "id", 2);
        let all = repository::find("User", []);
        let some = repository::find("User", [["id", "==", 1]], #{first: 1});
        let upd = repository::update("User", [["id", "==", 1]], [["set", "username", "z"]]);
        repository::push_job("recount", #{type: "User"});
        let gone = repository::delete("User", [["id", ">", 0]]);
        #{one: one, all: all.len(), some: some, upd: upd, gone: gone.len()}
    "#;
    let script = sandbox.compile("repo", source).unwrap();
    let out = sandbox.engine().run_json(&script, json!({}), &CallContext::default()).unwrap();
    assert_eq!(out["one"], json!({"id": 2, "username": "b"}));
    assert_eq!(out["all"], json!(2));
    assert_eq!(out["some"], json!([{"id": 1, "username": "a"}]));
    assert_eq!(out["upd"], json!([{"updated_with": [["set", "username", "z"]]}]));
    assert_eq!(out["gone"], json!(2));
    assert_eq!(memory.jobs.lock().unwrap()[0], ("recount".to_string(), json!({"type": "User"})));
}

#[test]
fn host_errors_keep_their_class_and_can_be_caught() {
    let err = run("repository::put(\"User\", #{name: 1})", json!({})).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Host(ErrorClass::UserData, "User.id: missing required field".into()));
    let caught =
        run("let m = (); try { repository::put(\"User\", #{}); } catch (e) { m = e.message; } m", json!({})).unwrap();
    assert_eq!(caught, json!("User.id: missing required field"));
}

#[test]
fn utility_modules_work() {
    let source = r#"
        let id = uuid::v4();
        let text = json::encode(#{a: [1, 2]});
        let back = json::decode("{\"b\": 3}");
        let n1 = sequence::next("s");
        let n2 = sequence::next("s");
        shared_storage::set("ns", "k", #{v: 1});
        let got = shared_storage::get("ns", "k");
        let missing = shared_storage::get("ns", "nope");
        shared_storage::remove("ns", "k");
        log::info("hello"); log::warn(#{x: 1}); log::error("e"); debug("dbg"); print("p");
        #{id_len: id.len(), text: text, back: back, n: [n1, n2], got: got, missing: missing, after: shared_storage::get("ns", "k")}
    "#;
    let out = run(source, json!({})).unwrap();
    assert_eq!(out["id_len"], json!(36));
    assert_eq!(out["text"], json!("{\"a\":[1,2]}"));
    assert_eq!(out["back"], json!({"b": 3}));
    assert_eq!(out["n"], json!([1, 2]));
    assert_eq!(out["got"], json!({"v": 1}));
    assert_eq!(out["missing"], Value::Null);
    assert_eq!(out["after"], Value::Null);
    let err = run("json::decode(\"{oops\")", json!({})).unwrap_err();
    assert!(err.to_string().contains("line 1 column 2"), "{err}");
}

#[test]
fn datetime_functions_use_iso_utc() {
    let out = run(
        r#"#{ms: datetime::to_millis("2018-03-24T10:20:48Z"), back: datetime::from_millis(1521886848000),
             later: datetime::add_seconds("2018-03-24T10:20:48Z", 72), day: datetime::date("2018-03-24T10:20:48+03:00"),
             now: datetime::now()}"#,
        json!({}),
    )
    .unwrap();
    assert_eq!(out["ms"], json!(1521886848000i64));
    assert_eq!(out["back"], json!("2018-03-24T10:20:48.000Z"));
    assert_eq!(out["later"], json!("2018-03-24T10:22:00.000Z"));
    assert_eq!(out["day"], json!("2018-03-24Z"));
    assert!(out["now"].as_str().unwrap().ends_with('Z'));
    let err = run("datetime::to_millis(\"2018-13-45\")", json!({})).unwrap_err();
    assert!(err.to_string().contains("\"2018-13-45\" is not an ISO-8601"), "{err}");
}

#[test]
fn libraries_are_imported_by_name_only() {
    let (_, sandbox) = sandbox_with(Limits::default(), &[("util", "fn inc(x) { x + 1 }")]);
    let script = sandbox.compile("f", "import \"util\" as util; util::inc(param)").unwrap();
    assert_eq!(sandbox.engine().run_json(&script, json!(41), &CallContext::default()).unwrap(), json!(42));
    let script = sandbox.compile("g", "import \"/etc/passwd\" as p; 1").unwrap();
    assert!(sandbox.engine().run_json(&script, json!(0), &CallContext::default()).is_err());
}

#[test]
fn call_fn_calls_a_named_function() {
    let (_, sandbox) = sandbox_with(Limits::default(), &[]);
    let script = sandbox.compile("svc", "fn double(x) { x * 2 }").unwrap();
    let out =
        sandbox.engine().call_fn(&script, "double", vec![Dynamic::from(21_i64)], &CallContext::default()).unwrap();
    assert_eq!(out.as_int().unwrap(), 42);
}
