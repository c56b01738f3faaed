//! Tasks as an operator meets them (TDG 2.13): periodical tasks fire on their cron schedule and
//! never overlap themselves, continuous ones pause between runs, single-shot ones run when
//! started and keep only `keep` runs; stop and start; a stop survives a restart; failures are
//! recorded with their error.

use std::time::Duration;

use chrono::DateTime;
use ferrogrid_tests::{metric_value, wait_until, Server};
use serde_json::Value;

const CONFIG: &str = r#"
functions:
  tick: {__file: tick.rhai}
  slow: {__file: slow.rhai}
  broken: {__file: broken.rhai}

tasks:
  every_second: {kind: periodical, pipeline: tick, schedule: "*/1 * * * * *"}
  slow_every_second: {kind: periodical, pipeline: slow, schedule: "*/1 * * * * *", keep: 20}
  loop: {kind: continuous, pipeline: tick, pause_sec: 1}
  once: {kind: single_shot, pipeline: tick, keep: 3}
  failing: {kind: single_shot, pipeline: broken}

sandbox:
  max_operations: 4000000000
  timeout_ms: 10000
"#;

const TICK: &str = r#"`tick of ${param.task}`"#;

/// Takes 1.5 s (busy: scripts cannot sleep).
const SLOW: &str = r#"
let start = datetime::now_millis();
while datetime::now_millis() - start < 1500 { }
"slow done"
"#;

const BROKEN: &str = r#"throw "the task is broken";"#;

fn start() -> Server {
    Server::start_with_config(CONFIG, &[("tick.rhai", TICK), ("slow.rhai", SLOW), ("broken.rhai", BROKEN)])
}

fn task(server: &Server, name: &str) -> Value {
    let list = server.get("/admin/api/tasks");
    list.assert_status(200, "GET /admin/api/tasks");
    let tasks = list.json()["tasks"].as_array().cloned().unwrap_or_default();
    tasks.into_iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no task {name}"))
}

fn runs(server: &Server, name: &str) -> Vec<Value> {
    task(server, name)["runs"].as_array().cloned().unwrap_or_default()
}

fn completed(server: &Server, name: &str) -> Vec<Value> {
    runs(server, name).into_iter().filter(|r| r["status"] == "completed").collect()
}

fn time(run: &Value, field: &str) -> DateTime<chrono::FixedOffset> {
    let text = run[field].as_str().unwrap_or_else(|| panic!("{field} missing in {run}"));
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn periodical_and_continuous_tasks_run_on_time_without_overlapping() {
    let server = start();
    // Waited for, not timed: a busy 2-core machine may run them late.
    let ticks = wait_until(Duration::from_secs(30), "two runs of the */1 task", || {
        let ticks = completed(&server, "every_second");
        (ticks.len() >= 2).then_some(ticks)
    });
    assert_eq!(ticks[0]["result"], "tick of every_second");
    let info = task(&server, "every_second");
    assert_eq!(info["state"], "scheduled");
    assert!(info["next_run_at"].is_string(), "{info}");

    // 1.5 s runs on a 1 s schedule: the next slot waits for the run to end.
    // Two runs at least, so that the overlap check compares something.
    let mut slow = wait_until(Duration::from_secs(30), "two runs of the slow task, one finished", || {
        let slow = runs(&server, "slow_every_second");
        (slow.len() >= 2 && slow.iter().any(|r| r["finished_at"].is_string())).then_some(slow)
    });
    slow.reverse();
    for pair in slow.windows(2) {
        assert!(time(&pair[1], "started_at") >= time(&pair[0], "finished_at"), "overlapping runs: {pair:?}");
    }

    let mut loops = wait_until(Duration::from_secs(30), "two runs of the continuous task", || {
        let loops = completed(&server, "loop");
        (loops.len() >= 2).then_some(loops)
    });
    loops.reverse();
    for pair in loops.windows(2) {
        let pause = time(&pair[1], "started_at") - time(&pair[0], "finished_at");
        assert!(pause.num_milliseconds() >= 900, "pause_sec 1 between runs: {pair:?}");
    }

    assert!(runs(&server, "once").is_empty(), "a single-shot task waits to be started");
    let metrics = server.get("/metrics").body;
    let started = metric_value(&metrics, "ferrogrid_tasks_started_total", &[("name", "every_second")]);
    assert!(started.is_some_and(|n| n >= 2.0), "{started:?}");
}

#[test]
fn single_shot_runs_when_started_keeps_its_history_short_and_failures_are_recorded() {
    let server = start();
    for _ in 0..5 {
        let r = server.post_empty("/admin/api/tasks/once/start");
        r.assert_status(200, "start once");
        let run_id = r.json()["started"].as_str().unwrap_or_default().to_string();
        wait_until(Duration::from_secs(60), "the run completes", || {
            runs(&server, "once").iter().any(|r| r["id"] == run_id.as_str() && r["status"] == "completed").then_some(())
        });
    }
    let history = runs(&server, "once");
    assert_eq!(history.len(), 3, "keep: 3 -> {history:?}");
    assert!(history.iter().all(|r| r["result"] == "tick of once"));
    let forget = server.delete(&format!("/admin/api/tasks/runs/{}", history[2]["id"].as_str().unwrap_or_default()));
    forget.assert_status(200, "forget a run");
    assert_eq!(runs(&server, "once").len(), 2);
    server.delete("/admin/api/tasks/runs/no-such-run").assert_status(404, "forget an unknown run");

    server.post_empty("/admin/api/tasks/failing/start").assert_status(200, "start failing");
    let failed = wait_until(Duration::from_secs(60), "the failing run ends", || {
        runs(&server, "failing").into_iter().find(|r| r["status"] == "failed")
    });
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("the task is broken")), "{failed}");
    server.post_empty("/admin/api/tasks/nothing/start").assert_status(404, "an unknown task");
}

#[test]
fn stop_and_start_and_a_stop_survives_a_restart() {
    let mut server = start();
    wait_until(Duration::from_secs(30), "the slow task runs", || {
        (task(&server, "slow_every_second")["state"] == "running").then_some(())
    });
    server.post_empty("/admin/api/tasks/slow_every_second/stop").assert_status(200, "stop a running task");
    let stopped = wait_until(Duration::from_secs(30), "the run is stopped", || {
        runs(&server, "slow_every_second").into_iter().find(|r| r["status"] == "stopped")
    });
    assert_eq!(stopped["error"], "stopped by an operator");

    server.post_empty("/admin/api/tasks/every_second/stop").assert_status(200, "stop");
    std::thread::sleep(Duration::from_millis(300));
    // The runs listed are the last `keep`: compared by id, not counted.
    let ids = |server: &Server| runs(server, "every_second").iter().map(|r| r["id"].to_string()).collect::<Vec<_>>();
    let before = ids(&server);
    let info = task(&server, "every_second");
    assert_eq!(info["state"], "stopped");
    assert!(info["next_run_at"].is_null(), "{info}");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(ids(&server), before, "a stopped task is not scheduled");

    server.restart();
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(task(&server, "every_second")["state"], "stopped", "the stop survives a restart");
    assert_eq!(ids(&server), before);

    server.post_empty("/admin/api/tasks/every_second/start").assert_status(200, "start again");
    wait_until(Duration::from_secs(30), "it is scheduled again", || {
        (ids(&server).iter().filter(|id| !before.contains(id)).count() >= 2).then_some(())
    });
    assert_ne!(task(&server, "every_second")["state"], "stopped");
}

#[test]
fn the_library_statistics_task_stores_a_summary() {
    let server = Server::start("samples/library");
    for id in 1..=150 {
        server.post_sync(&serde_json::json!({"id": id, "username": format!("user {id}")}));
    }
    for (id, user) in [(1, 1), (2, 1), (3, 2)] {
        server.post_sync(&serde_json::json!({"id": id, "user_id": user, "book_id": 1}));
    }
    server.post_sync(&serde_json::json!({"id": 1, "book_name": "Dune", "author": "Herbert"}));
    assert_eq!(task(&server, "statistics")["kind"], "periodical");
    let started = server.post_empty("/admin/api/tasks/statistics/start");
    started.assert_status(200, "start statistics");
    // This run, not one the schedule fired (every minute) while the data was being posted.
    let id = started.json()["started"].as_str().expect("run id").to_string();
    let run = wait_until(Duration::from_secs(60), "the statistics run completes", || {
        runs(&server, "statistics").into_iter().find(|r| r["id"] == id.as_str() && r["status"] == "completed")
    });
    let stored = server.data("Statistics", "id=library");
    assert_eq!(stored.len(), 1, "{run}");
    let summary = &stored[0]["object"];
    assert_eq!(
        (summary["users"].as_i64(), summary["books"].as_i64(), summary["subscriptions"].as_i64()),
        (Some(150), Some(1), Some(3)),
        "{summary}"
    );
    assert!(run["result"].as_str().is_some_and(|r| r.contains("\"users\":150")), "{run}");
}
