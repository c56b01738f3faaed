//! The TDG contract of a function file (param in, last expression out), conversions, error
//! reporting, libraries, `call_fn` and `print`/`debug` routing.

use rhai::Dynamic;
use serde_json::json;

use super::{capture_logs, fixture_with, run, try_fixture};
use crate::{CallContext, CompiledScript, ErrorClass, HostError, Limits, Sandbox, ScriptEngine, ScriptErrorKind};

#[test]
fn param_in_last_expression_out() {
    assert_eq!(run("param * 2", json!(21)).unwrap(), json!(42));
    assert_eq!(run("if param > 1 { return \"big\"; } \"small\"", json!(5)).unwrap(), json!("big"));
    assert_eq!(run("let x = 1;", json!(null)).unwrap(), json!(null));
}

#[test]
fn tdg_style_routing_script() {
    let src = r#"let obj = param.obj; obj.username = "x"; #{obj: obj, routing_key: "User", priority: 1}"#;
    let out = run(src, json!({"obj": {"id": 7, "username": "old"}})).unwrap();
    assert_eq!(out, json!({"obj": {"id": 7, "username": "x"}, "priority": 1, "routing_key": "User"}));
}

#[test]
fn classifier_sets_routing_key_on_param() {
    let src = r#"if param.obj.type == "user" { param.routing_key = "User"; } else { param.routing_key = "__unclassified__"; } param"#;
    let out = run(src, json!({"obj": {"type": "user"}})).unwrap();
    assert_eq!(out["routing_key"], "User");
}

#[test]
fn big_integers_survive_the_round_trip() {
    let big = 1i64 << 62;
    let out = run("#{same: param.n, next: param.n + 1, f: param.f}", json!({"n": big, "f": 0.5})).unwrap();
    assert_eq!(out, json!({"f": 0.5, "next": big + 1, "same": big}));
    assert!(out["same"].is_i64());
}

#[test]
fn run_with_dynamic_values() {
    let f = fixture_with(Limits::default(), &[]);
    let script = f.sandbox.compile("dyn", "param + 1").unwrap();
    let engine = f.sandbox.engine();
    let out = engine.run(&script, Dynamic::from_int(41), &CallContext::new("r")).unwrap();
    assert_eq!(out.as_int().unwrap(), 42);
}

#[test]
fn throw_text_is_preserved_exactly() {
    let err = run("let a = 1;\nthrow \"Bad user: no email\";", json!(null)).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Thrown("Bad user: no email".into()));
    assert_eq!(err.to_string(), "f:2: Bad user: no email");
    assert_eq!(err.class(), ErrorClass::UserData);
    let err = run(r#"throw #{code: 42}"#, json!(null)).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Thrown(r#"{"code":42}"#.into()));
}

#[test]
fn runtime_errors_name_function_and_line() {
    let f = fixture_with(Limits::default(), &[]);
    let script = f.sandbox.compile("process_user", "let a = 1;\nlet b = 2;\nlet c = a + missing;\nc").unwrap();
    let err = f.sandbox.engine().run(&script, Dynamic::UNIT, &CallContext::new("r")).unwrap_err();
    assert_eq!(err.function, "process_user");
    assert_eq!(err.line, Some(3));
    assert!(err.to_string().starts_with("process_user:3: "), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");

    // Inside a function of the same script: the line of the failing statement.
    let src = "fn check(x) {\n  if x < 0 {\n    throw \"negative\";\n  }\n  x\n}\ncheck(param)";
    let err = run(src, json!(-1)).unwrap_err();
    assert_eq!((err.line, err.kind), (Some(3), ScriptErrorKind::Thrown("negative".into())));
}

#[test]
fn compile_errors_name_function_line_and_column() {
    let f = fixture_with(Limits::default(), &[]);
    let err = f.sandbox.compile("broken", "let a = 1;\nlet = 2;").unwrap_err();
    assert_eq!(err.function, "broken");
    assert_eq!(err.line, Some(2));
    assert!(err.column.is_some());
    assert!(matches!(err.kind, ScriptErrorKind::Compile(_)));
    assert!(err.to_string().starts_with("broken:2:"), "{err}");
}

#[test]
fn library_import_and_chained_libraries() {
    let libs =
        [("util", "fn inc(x) { x + 1 }"), ("more", "import \"util\" as util;\nfn inc2(x) { util::inc(util::inc(x)) }")];
    let f = fixture_with(Limits::default(), &libs);
    assert_eq!(f.run(r#"import "util" as util; util::inc(param)"#, json!(1)).unwrap(), json!(2));
    assert_eq!(f.run(r#"import "more" as more; more::inc2(param)"#, json!(1)).unwrap(), json!(3));
}

#[test]
fn error_inside_a_library_says_where() {
    let f = fixture_with(Limits::default(), &[("util", "fn half(x) {\n  x / 0\n}")]);
    let err = f.run("import \"util\" as util;\nutil::half(4)", json!(null)).unwrap_err();
    assert_eq!(err.line, Some(2));
    let msg = err.to_string();
    assert!(msg.contains("util") && msg.contains("line 2"), "{msg}");
}

#[test]
fn library_problems_are_reported_at_build() {
    let err = try_fixture(Limits::default(), &[("log", "fn x() { 1 }")]).err().unwrap();
    assert!(matches!(err.kind, ScriptErrorKind::Config(ref m) if m.contains("libraries.log")));
    let err = try_fixture(Limits::default(), &[("util", "fn x( { 1 }")]).err().unwrap();
    assert_eq!(err.function, "util");
    assert!(matches!(err.kind, ScriptErrorKind::Compile(_)));
    let zero = Limits { max_operations: 0, ..Limits::default() };
    let err = try_fixture(zero, &[]).err().unwrap();
    assert!(err.to_string().contains("sandbox.max_operations"), "{err}");
}

#[test]
fn call_fn_calls_a_named_function() {
    let f = fixture_with(Limits::default(), &[("util", "fn inc(x) { x + 1 }")]);
    let src = "fn double(x) { x * 2 }\nfn via_lib(x) { import \"util\" as util; util::inc(x) }\nthrow \"top level must not run\";";
    let script = f.sandbox.compile("svc", src).unwrap();
    assert!(script.has_fn("double", 1));
    assert!(!script.has_fn("double", 2));
    let engine = f.sandbox.engine();
    let ctx = CallContext::new("r");
    let out = engine.call_fn(&script, "double", vec![Dynamic::from_int(21)], &ctx).unwrap();
    assert_eq!(out.as_int().unwrap(), 42);
    let out = engine.call_fn(&script, "via_lib", vec![Dynamic::from_int(1)], &ctx).unwrap();
    assert_eq!(out.as_int().unwrap(), 2);
    let err = engine.call_fn(&script, "nope", vec![], &ctx).unwrap_err();
    assert!(matches!(err.kind, ScriptErrorKind::Runtime(ref m) if m.contains("nope")), "{err}");
}

#[test]
fn host_errors_are_catchable_and_keep_their_class_when_not_caught() {
    let err = run(r#"repository::find("Broken", [])"#, json!(null)).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Host(HostError::External("storage unavailable".into())));
    assert_eq!(err.class(), ErrorClass::External);
    let src = r#"let r = (); try { repository::find("Broken", []) } catch (e) { r = "caught: " + e; } r"#;
    assert_eq!(run(src, json!(null)).unwrap(), json!("caught: storage unavailable"));
    let src = r#"try { repository::find("Broken", []) } catch (e) { throw e; }"#;
    assert_eq!(run(src, json!(null)).unwrap_err().class(), ErrorClass::External);
}

#[test]
fn print_and_debug_go_to_tracing_with_function_and_request_id() {
    let f = fixture_with(Limits::default(), &[]);
    let script = f.sandbox.compile("noisy", "print(\"hello \" + param);\ndebug(#{a: 1});").unwrap();
    let engine = f.sandbox.engine();
    let logs = capture_logs(|| {
        let _ = engine.run(&script, Dynamic::from("you"), &CallContext::new("obj-42")).unwrap();
    });
    let script_logs: Vec<_> = logs.iter().filter(|e| e.target == "ferrogrid::script").collect();
    assert_eq!(script_logs.len(), 2, "{logs:?}");
    assert_eq!(script_logs[0].level, tracing::Level::INFO);
    assert_eq!(script_logs[0].fields["message"], "hello you");
    assert_eq!(script_logs[0].fields["function"], "noisy");
    assert_eq!(script_logs[0].fields["request_id"], "obj-42");
    assert_eq!(script_logs[1].level, tracing::Level::DEBUG);
    assert_eq!(script_logs[1].fields["message"], "line 2: #{\"a\": 1}");
}

#[test]
fn printing_and_comparing_nested_values_still_works() {
    let out = run(r#"let a = [1, [2, #{x: "y"}]]; #{s: `${a}`, eq: a == [1, [2, #{x: "y"}]], ne: a != [1], has: a.contains([2, #{x: "y"}])}"#, json!(null)).unwrap();
    assert_eq!(out, json!({"eq": true, "has": true, "ne": true, "s": "[1, [2, #{\"x\": \"y\"}]]"}));
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Sandbox>();
    check::<CompiledScript>();
    check::<ScriptEngine>();
    check::<crate::ScriptError>();
}

#[test]
fn engines_move_to_named_script_threads() {
    let f = fixture_with(Limits::default(), &[]);
    let script = f.sandbox.compile("worker_fn", "param + 1").unwrap();
    let engine = f.sandbox.engine();
    let handle = crate::spawn_script_thread("script-worker-0", move || {
        let name = std::thread::current().name().map(str::to_string);
        let out = engine.run_json(&script, json!(1), &CallContext::new("r"));
        (name, out)
    })
    .unwrap();
    let (name, out) = handle.join().unwrap();
    assert_eq!(name.as_deref(), Some("script-worker-0"));
    assert_eq!(out.unwrap(), json!(2));
}

#[test]
fn importing_a_library_that_does_not_exist_fails_at_compile_time() {
    let f = fixture_with(Limits::default(), &[("util", "fn one() { 1 }")]);
    let e = f.sandbox.compile("uses_missing", "import \"nolib\" as n;\nn::x()").unwrap_err();
    assert_eq!(e.function, "uses_missing");
    assert!(e.to_string().contains("nolib"), "{e}");
    assert!(matches!(e.kind, ScriptErrorKind::Compile(_)), "{e:?}");
    let ok = f.sandbox.compile("uses_util", "import \"util\" as u;\nu::one()");
    assert!(ok.is_ok(), "{:?}", ok.err());
}
