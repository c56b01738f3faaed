//! Tests of compiled pipelines and the worker pool with a real sandbox (its host answers every
//! repository call with an error: these scripts never store anything).

use crate::{OnPanic, PipelineError, Pipelines, WorkerPool};
use ferrogrid_sandbox::{CallContext, DataAccess, ErrorClass, Host, HostError, Limits, Sandbox, Sequences};
use serde_json::{json, Value};
use std::sync::Arc;

struct NoStorage;

fn no() -> HostError {
    HostError::new(ErrorClass::Internal, "no storage in this test")
}

impl DataAccess for NoStorage {
    fn find(&self, _: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        Err(no())
    }
    fn get(&self, _: &str, _: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        Err(no())
    }
    fn put(&self, _: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        Err(no())
    }
    fn update(&self, _: &str, _: &Value, _: &Value, _: &Value) -> Result<Value, HostError> {
        Err(no())
    }
    fn delete(&self, _: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        Err(no())
    }
    fn push_job(&self, _: &str, _: &Value) -> Result<(), HostError> {
        Err(no())
    }
    fn scan_page(&self, _: &str, _: &Value, _: &Value) -> Result<(Vec<Value>, Option<String>), HostError> {
        Err(no())
    }
}

impl Sequences for NoStorage {
    fn next(&self, _: &str) -> Result<i64, HostError> {
        Err(no())
    }
}

fn sandbox() -> Arc<Sandbox> {
    let host = Host { repository: Arc::new(NoStorage), sequences: Arc::new(NoStorage) };
    Arc::new(Sandbox::new(Limits::default(), host, &[]).unwrap())
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn compile(functions: &[(&str, &str)], pipelines: &[(&str, &[&str])]) -> Result<Pipelines, Vec<String>> {
    let pipelines: Vec<(String, Vec<String>)> =
        pipelines.iter().map(|(n, steps)| (n.to_string(), steps.iter().map(|s| s.to_string()).collect())).collect();
    Pipelines::compile(&sandbox(), &owned(functions), &pipelines)
}

fn run(p: &Pipelines, name: &str, param: Value) -> Result<Value, PipelineError> {
    let sandbox = sandbox();
    let engine = sandbox.engine();
    p.run(&engine, name, param, &CallContext::new("test"))
}

#[test]
fn steps_run_in_order_and_a_function_name_is_a_pipeline() {
    let p = compile(
        &[("add_one", "param.n += 1; param"), ("double", "param.n *= 2; param")],
        &[("both", &["add_one", "double"])],
    )
    .unwrap();
    assert_eq!(run(&p, "both", json!({"n": 3})).unwrap(), json!({"n": 8}));
    assert_eq!(run(&p, "double", json!({"n": 3})).unwrap(), json!({"n": 6}), "TDG's fallback");
    assert!(matches!(run(&p, "nothing", json!({})), Err(PipelineError::Unknown(_))));
}

#[test]
fn every_compile_problem_is_listed_with_its_key() {
    let errors = compile(&[("ok", "param"), ("broken", "let = ;")], &[("p", &["ok", "ghost"]), ("empty", &[])])
        .err()
        .unwrap()
        .join("\n");
    assert!(errors.contains("functions.broken: broken:1"), "{errors}");
    assert!(errors.contains("pipelines.p[1]: function \"ghost\" is not defined"), "{errors}");
    assert!(errors.contains("pipelines.empty: a pipeline needs at least one function"), "{errors}");
}

#[test]
fn a_value_that_cannot_leave_the_script_names_the_function() {
    let p = compile(&[("keep", "param"), ("fnptr", "Fn(\"keep\")")], &[("p", &["keep", "fnptr"])]).unwrap();
    let e = run(&p, "p", json!({})).unwrap_err();
    assert_eq!(e.function(), Some("fnptr"), "{e}");
    assert!(e.to_string().starts_with("fnptr"), "{e}");
}

#[test]
fn a_panicking_job_does_not_take_its_worker_down() {
    let heard: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    let told = heard.clone();
    let on_panic: OnPanic = Arc::new(move |worker: &str, text: &str| {
        told.lock().unwrap().push((worker.to_string(), text.to_string()));
    });
    let sb = sandbox();
    let pool = WorkerPool::start(1, sb.clone(), on_panic).unwrap();
    let panicked = pool.run_blocking(sb.clone(), |_| -> u32 { panic!("a bug") });
    assert!(panicked.is_err());
    assert_eq!(pool.run_blocking(sb.clone(), |_| 7).unwrap(), 7, "the only worker is still there");
    assert_eq!(*heard.lock().unwrap(), [("script-0".to_string(), "a bug".to_string())], "the restart is told");
    pool.shutdown();
    assert!(pool.run_blocking(sb, |_| 1).is_err(), "a shut-down pool refuses jobs");
}

#[test]
fn abandoning_drops_queued_jobs_and_lets_the_running_one_finish() {
    let sb = sandbox();
    let pool = WorkerPool::start(1, sb.clone(), Arc::new(|_: &str, _: &str| {})).unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let running = pool.run(sb.clone(), move |_| {
        let _ = started_tx.send(());
        std::thread::sleep(std::time::Duration::from_millis(200));
        "done"
    });
    let queued = pool.run(sb, |_| "never");
    started_rx.recv().unwrap();
    pool.abandon();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(running).unwrap(), "done");
    assert!(rt.block_on(queued).is_err(), "the queued job was dropped, not run");
}

#[test]
fn a_job_runs_on_an_engine_of_the_sandbox_it_names() {
    let generous = sandbox();
    let host = Host { repository: Arc::new(NoStorage), sequences: Arc::new(NoStorage) };
    let strict = Arc::new(Sandbox::new(Limits { max_operations: 50, ..Limits::default() }, host, &[]).unwrap());
    let pool = WorkerPool::start(1, generous.clone(), Arc::new(|_: &str, _: &str| {})).unwrap();
    let script = generous.compile("count", "let n = 0; for i in 0..100 { n += i; } n").unwrap();
    let run = |sb: &Arc<Sandbox>| {
        let script = script.clone();
        pool.run_blocking(sb.clone(), move |engine| engine.run_json(&script, Value::Null, &CallContext::new("test")))
            .unwrap()
    };
    assert_eq!(run(&generous).unwrap(), json!(4950));
    assert!(run(&strict).is_err(), "the strict sandbox's operation limit applies");
    assert_eq!(run(&generous).unwrap(), json!(4950), "and the first one's engine comes back");
}
