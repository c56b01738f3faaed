//! One hostile script per limit: each is stopped with the right error kind, never hangs or
//! crashes. Plus: `eval`, files, the clock and `sleep` are not reachable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{fixture_with, run, run_limited};
use crate::{CallContext, ErrorClass, LimitKind, Limits, ScriptErrorKind};

fn limit_of(result: Result<serde_json::Value, crate::ScriptError>) -> LimitKind {
    match result {
        Err(e) => match e.kind {
            ScriptErrorKind::Limit(kind) => {
                assert_eq!(e.class(), ErrorClass::UserData);
                kind
            }
            other => panic!("expected a limit error, got {other:?}"),
        },
        Ok(v) => panic!("expected a limit error, got {v}"),
    }
}

#[test]
fn infinite_loop_hits_max_operations() {
    let limits = Limits { max_operations: 50_000, ..Limits::default() };
    assert_eq!(limit_of(run_limited(limits, "loop { }")), LimitKind::Operations);
}

#[test]
fn infinite_loop_with_unbounded_operations_times_out() {
    let limits = Limits { max_operations: u64::MAX, timeout_ms: 200, ..Limits::default() };
    let started = Instant::now();
    let err = run_limited(limits, "let x = 0; loop { x += 1; }").unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Timeout);
    assert_eq!(err.to_string(), "f:1: script timed out (sandbox.timeout_ms)");
    // Generous bound: proves the loop was stopped, not that it was fast.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn growing_array_hits_max_array_size() {
    let limits = Limits { max_array_size: 1_000, ..Limits::default() };
    let src = "let a = []; loop { a.push(1); }";
    assert_eq!(limit_of(run_limited(limits, src)), LimitKind::ArraySize);
}

#[test]
fn doubling_string_hits_max_string_size() {
    let src = r#"let s = "x"; loop { s += s; }"#;
    assert_eq!(limit_of(run_limited(Limits::default(), src)), LimitKind::StringSize);
}

#[test]
fn growing_map_hits_max_map_size() {
    let limits = Limits { max_map_size: 500, max_operations: 1_000_000, ..Limits::default() };
    let src = r#"let m = #{}; let i = 0; loop { m.set("k" + i, i); i += 1; }"#;
    assert_eq!(limit_of(run_limited(limits.clone(), src)), LimitKind::MapSize);
    // Rhai checks a map filled by index assignment only when it is next used as a value...
    let src = r#"let m = #{}; for i in 0..1000 { m["k" + i] = i; } m.len()"#;
    assert_eq!(limit_of(run_limited(limits.clone(), src)), LimitKind::MapSize);
    // ...so a loop that only assigns is stopped by the operation limit.
    let src = r#"let m = #{}; let i = 0; loop { m["k" + i] = i; i += 1; }"#;
    assert_eq!(limit_of(run_limited(limits, src)), LimitKind::Operations);
}

#[test]
fn deep_recursion_hits_max_call_levels() {
    let src = "fn down(n) { down(n + 1) } down(0)";
    assert_eq!(limit_of(run_limited(Limits::default(), src)), LimitKind::CallLevels);
}

#[test]
fn ten_thousand_nested_parentheses_fail_at_compile_time() {
    let f = fixture_with(Limits::default(), &[]);
    let src = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let err = f.sandbox.compile("nested", &src).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Limit(LimitKind::ExprDepth));
    assert_eq!(err.function, "nested");
    assert_eq!(err.line, Some(1));
}

#[test]
fn too_many_imports_hit_max_modules() {
    let limits = Limits { max_modules: 1, ..Limits::default() };
    let f = fixture_with(limits, &[("a", "fn x() { 1 }"), ("b", "fn y() { 2 }")]);
    let src = r#"import "a" as a; import "b" as b; a::x() + b::y()"#;
    assert_eq!(limit_of(f.run(src, json!(null))), LimitKind::Modules);
}

#[test]
fn shared_store_past_max_shared_keys_is_a_limit() {
    let limits = Limits { max_shared_keys: 10, ..Limits::default() };
    let src = r#"for i in 0..100 { shared::set("ns", "k" + i, i); }"#;
    let f = fixture_with(limits, &[]);
    assert_eq!(limit_of(f.run(src, json!(null))), LimitKind::SharedKeys);
    assert_eq!(f.sandbox.shared_keys(), 10);
}

#[test]
fn shared_store_past_max_shared_bytes_is_a_limit() {
    let limits = Limits { max_shared_bytes: 10_000, ..Limits::default() };
    let src = r#"let s = "x"; s.pad(3000, 'x'); for i in 0..100 { shared::set("ns", "k" + i, s); }"#;
    let f = fixture_with(limits, &[]);
    assert_eq!(limit_of(f.run(src, json!(null))), LimitKind::SharedBytes);
    assert_eq!(f.sandbox.shared_keys(), 3, "three values of ~3,000 bytes fit in 10,000");
}

#[test]
fn cancel_flag_stops_a_running_script() {
    let limits = Limits { max_operations: u64::MAX, timeout_ms: 60_000, ..Limits::default() };
    let f = fixture_with(limits, &[]);
    let script = f.sandbox.compile("task", "loop { }").unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let ctx = CallContext { request_id: "task-1".into(), cancel: Some(cancel.clone()), jobs: None, scope: None };
    let flag = cancel.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::Relaxed);
    });
    let err = f.sandbox.engine().run(&script, ().into(), &ctx).unwrap_err();
    stopper.join().unwrap();
    assert_eq!(err.kind, ScriptErrorKind::Cancelled);
    assert_eq!(err.function, "task");

    // A call whose flag is already set does not start.
    let quick = f.sandbox.compile("quick", "1").unwrap();
    let err = f.sandbox.engine().run(&quick, ().into(), &ctx).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Cancelled);
}

#[test]
fn deeply_nested_values_are_stopped_not_a_stack_overflow() {
    // Size limits count nested elements together, so thousands of levels are allowed. Printing
    // or comparing 5 000 of them through Rhai's own dispatch overflows an 8 MiB stack (the
    // process aborts); the guards keep this test alive on such a thread.
    let thread = std::thread::Builder::new().stack_size(8 << 20);
    let handle = thread
        .spawn(|| {
            let limits = Limits { timeout_ms: 120_000, max_value_depth: 128, ..Limits::default() };
            let f = fixture_with(limits, &[]);
            let build = "let a = []; for i in 0..5000 { a = [a]; }";
            let cases = [
                format!("{build} a == a"),
                format!("{build} a.contains(a)"),
                format!("{build} json::encode(a)"),
                format!("{build} let m = #{{x: a}}; m == m"),
            ];
            let kinds: Vec<_> = cases.iter().map(|src| f.run(src, json!(null))).collect();
            let printed = f.run(&format!("{build} `${{a}}`.len()"), json!(null));
            let returned = f.run(&format!("{build} a"), json!(null));
            (kinds, printed, returned)
        })
        .unwrap();
    let (kinds, printed, returned) = handle.join().unwrap();
    assert_eq!(limit_of(kinds[0].clone()), LimitKind::ValueDepth);
    assert_eq!(limit_of(kinds[1].clone()), LimitKind::ValueDepth);
    let encode = kinds[2].clone().unwrap_err();
    assert!(encode.to_string().contains("json::encode: value nested deeper than 128"), "{encode}");
    assert_eq!(limit_of(kinds[3].clone()), LimitKind::ValueDepth);
    // Printing truncates instead: 128 levels of "[" + "[...]" + 128 of "]".
    assert_eq!(printed.unwrap(), json!(128 * 2 + 5));
    let returned = returned.unwrap_err();
    assert!(matches!(returned.kind, ScriptErrorKind::Conversion(ref m) if m.starts_with("result:")));
}

#[test]
fn eval_is_not_available() {
    let err = run(r#"eval("1")"#, json!(null)).unwrap_err();
    assert!(matches!(err.kind, ScriptErrorKind::Compile(ref m) if m.contains("eval")), "{err}");
}

#[test]
fn no_clock_sleep_or_exit_functions() {
    for src in ["timestamp()", "sleep(1)", "exit()"] {
        let err = run(src, json!(null)).unwrap_err();
        assert!(
            matches!(err.kind, ScriptErrorKind::Runtime(ref m) if m.contains("Function not found")),
            "{src}: {err}"
        );
    }
}

#[test]
fn import_never_reads_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.rhai");
    std::fs::write(&path, "fn x() { 42 }").unwrap();
    let src = format!("import {:?} as evil; evil::x()", path.to_str().unwrap());
    // Refused when the script is compiled: only the configured libraries resolve.
    let err = run(&src, json!(null)).unwrap_err();
    assert!(matches!(err.kind, ScriptErrorKind::Compile(ref m) if m.contains("Module not found")), "{err}");
}
