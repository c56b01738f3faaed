//! Jobs as scripts and operators meet them (TDG 2.13): `repository::push_job` from an object's
//! pipeline commits with the object (a failed object leaves no job), from a task at once; the
//! runner keeps to `max_jobs_in_parallel`; a failing job waits in the failed-jobs queue and runs
//! after the function is fixed; pending jobs survive SIGKILL.

use std::time::Duration;

use ferrogrid_tests::{metric_value, wait_until, Server};
use serde_json::{json, Value};

const CONFIG: &str = r#"
types:
  __file: model.avsc

functions:
  process_item: {__file: process_item.rhai}
  record: {__file: record.rhai}
  flaky: {__file: flaky.rhai}
  push_many: {__file: push_many.rhai}
  record_slow: {__file: record_slow.rhai}
  push_slow: {__file: push_slow.rhai}

connector:
  input:
    - {name: http, type: http}

input_processor:
  routing:
    - {key: Item, pipeline: process_item}
  storage:
    - {key: Item, type: Item}
    - {key: Done, type: Done}

tasks:
  push_many: {kind: single_shot, pipeline: push_many}
  push_slow: {kind: single_shot, pipeline: push_slow}

jobs:
  max_jobs_in_parallel: 10
"#;

const MODEL: &str = r#"[
  {"name": "Item", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
   "fields": [{"name": "id", "type": "long"}, {"name": "bad", "type": "boolean"}, {"name": "job", "type": "string"}]},
  {"name": "Done", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
   "fields": [{"name": "id", "type": "long"}]}
]"#;

/// Pushes the job the item names, then throws for bad items (after the push).
const PROCESS_ITEM: &str = r#"
let obj = param.obj;
repository::push_job(obj.job, #{id: obj.id});
if obj.bad { throw `item ${obj.id} is bad`; }
#{obj: obj, routing_key: "Item", priority: 1}
"#;

const RECORD: &str = r#"repository::put("Done", #{id: param.id}); "recorded""#;
const FLAKY_BROKEN: &str = r#"throw `flaky job ${param.id} is broken`;"#;
const FLAKY_FIXED: &str = r#"repository::put("Done", #{id: param.id}); "fixed""#;
const PUSH_MANY: &str = r#"
let n = 0;
for i in 0..1000 { repository::push_job("record", #{id: 100000 + i}); n += 1; }
n
"#;
/// 10 ms of work per job (busy: scripts cannot sleep), so jobs are still pending when killed.
const RECORD_SLOW: &str = r#"
let start = datetime::now_millis();
while datetime::now_millis() - start < 10 { }
repository::put("Done", #{id: param.id});
"#;
const PUSH_SLOW: &str = r#"for i in 0..1000 { repository::push_job("record_slow", #{id: 200000 + i}); } 1000"#;

fn start() -> Server {
    Server::start_with_config(
        CONFIG,
        &[
            ("model.avsc", MODEL),
            ("process_item.rhai", PROCESS_ITEM),
            ("record.rhai", RECORD),
            ("flaky.rhai", FLAKY_BROKEN),
            ("push_many.rhai", PUSH_MANY),
            ("record_slow.rhai", RECORD_SLOW),
            ("push_slow.rhai", PUSH_SLOW),
        ],
    )
}

fn item(id: i64, bad: bool, job: &str) -> Value {
    json!({"Item": {"id": id, "bad": bad, "job": job}})
}

fn done(server: &Server, id: i64) -> bool {
    !server.data("Done", &format!("id={id}")).is_empty()
}

fn summary(server: &Server) -> Value {
    let r = server.get("/admin/api/jobs");
    r.assert_status(200, "GET /admin/api/jobs");
    r.json()
}

fn failed(server: &Server) -> Vec<Value> {
    server.get("/admin/api/jobs/failed").json()["items"].as_array().cloned().unwrap_or_default()
}

/// Objects of type Done whose id is >= `from`, counted page by page.
fn count_done_from(server: &Server, from: i64) -> usize {
    let (mut count, mut after) = (0, None::<String>);
    loop {
        let mut query = "first=100".to_string();
        if let Some(a) = &after {
            query.push_str(&format!("&after={}", ferrogrid_tests::encode(a)));
        }
        let page = server.data("Done", &query);
        if page.is_empty() {
            return count;
        }
        count += page.iter().filter(|o| o["object"]["id"].as_i64().is_some_and(|id| id >= from)).count();
        after = page.last().and_then(|o| o["cursor"].as_str()).map(str::to_string);
    }
}

#[test]
fn a_job_commits_with_its_object_and_a_failed_object_leaves_none() {
    let server = start();
    let bad = server.post_sync(&item(1, true, "record"));
    assert_eq!(bad["status"], "repair", "{bad}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(summary(&server), json!({"pending": 0, "failed": 0}), "no job for an object in the repair queue");
    assert!(!done(&server, 1));

    let good = server.post_sync(&item(2, false, "record"));
    assert_eq!(good["status"], "stored", "{good}");
    wait_until(Duration::from_secs(60), "the job of item 2 ran", || done(&server, 2).then_some(()));

    let unknown = server.post_sync(&item(3, false, "no_such_job"));
    assert_eq!(unknown["status"], "repair");
    assert!(unknown["error"].as_str().is_some_and(|e| e.contains("push_job(\"no_such_job\")")), "{unknown}");
}

#[test]
fn a_failing_job_waits_in_the_failed_queue_and_runs_after_the_fix() {
    let mut server = start();
    assert_eq!(server.post_sync(&item(5, false, "flaky"))["status"], "stored");
    let parked = wait_until(Duration::from_secs(60), "the job fails", || failed(&server).into_iter().next());
    assert_eq!(parked["name"], "flaky");
    assert_eq!(parked["args"], json!({"id": 5}));
    assert_eq!(parked["attempts"], 1);
    assert!(parked["error"].as_str().is_some_and(|e| e.contains("flaky job 5 is broken")), "{parked}");
    let id = parked["id"].as_str().unwrap_or_default().to_string();

    // Still broken: retried, failed again, attempts 2.
    server.post_empty(&format!("/admin/api/jobs/failed/{id}/retry")).assert_status(200, "retry");
    wait_until(Duration::from_secs(60), "the second attempt fails", || {
        failed(&server).into_iter().find(|j| j["attempts"] == 2)
    });

    server.stop();
    server.config_dir().expect("test config").write("flaky.rhai", FLAKY_FIXED);
    server.restart();
    assert_eq!(failed(&server).len(), 1, "failed jobs survive the restart");
    // The filter every parked queue takes: text, and when the job was pushed.
    let listed = |query: &str| server.get(&format!("/admin/api/jobs/failed?{query}")).json()["items"].clone();
    assert_eq!(listed("filter=FLAKY").as_array().map(Vec::len), Some(1));
    assert_eq!(listed("filter=nothing%20like%20it").as_array().map(Vec::len), Some(0));
    assert_eq!(listed("from=2000-01-01&to=2999-01-01").as_array().map(Vec::len), Some(1));
    assert_eq!(listed("from=2999-01-01").as_array().map(Vec::len), Some(0));
    server.get("/admin/api/jobs/failed?to=yesterday").assert_status(400, "a bad time");
    assert_eq!(server.post_empty("/admin/api/jobs/failed/retry-all?from=2999-01-01").json()["retried"], 0);
    let r = server.post_empty("/admin/api/jobs/failed/retry-all");
    r.assert_status(200, "retry-all");
    assert_eq!(r.json()["retried"], 1);
    wait_until(Duration::from_secs(60), "the fixed job ran", || done(&server, 5).then_some(()));
    assert!(failed(&server).is_empty());
    server.post_empty(&format!("/admin/api/jobs/failed/{id}/retry")).assert_status(404, "retry a job that is gone");
}

#[test]
fn failed_jobs_are_listed_in_pages_newest_first_with_a_cursor() {
    let server = start();
    for id in [5, 6, 7] {
        assert_eq!(server.post_sync(&item(id, false, "flaky"))["status"], "stored");
    }
    let every = wait_until(Duration::from_secs(60), "three failed jobs", || {
        let all = failed(&server);
        (all.len() == 3).then_some(all)
    });
    let page = |query: &str| server.get(&format!("/admin/api/jobs/failed?{query}")).json();
    let first = page("first=2");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2), "{first}");
    let cursor = first["cursor"].as_str().expect("a cursor to the next page").to_string();
    let second = page(&format!("first=2&after={cursor}"));
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1), "{second}");
    assert_eq!(second["cursor"], Value::Null, "the last page");
    let paged: Vec<Value> =
        first["items"].as_array().unwrap().iter().chain(second["items"].as_array().unwrap()).cloned().collect();
    let created =
        |items: &[Value]| items.iter().map(|j| j["created_at"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let mut newest_first = created(&every);
    newest_first.sort();
    newest_first.reverse();
    assert_eq!(created(&paged), newest_first, "newest first");
    let mut ids: Vec<&str> = paged.iter().map(|j| j["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut all_ids: Vec<&str> = every.iter().map(|j| j["id"].as_str().unwrap()).collect();
    all_ids.sort();
    assert_eq!(ids, all_ids, "every job once");
    server.get("/admin/api/jobs/failed?first=2&after=not-an-id").assert_status(400, "a bad cursor");
    // Unpaged: the same order, with the total; one job by its id.
    let unpaged = server.get("/admin/api/jobs/failed").json();
    assert_eq!(unpaged["total"], 3, "{unpaged}");
    assert_eq!(created(unpaged["items"].as_array().unwrap()), newest_first, "unpaged newest first too");
    let one = server.get(&format!("/admin/api/jobs/failed/{}", all_ids[0]));
    one.assert_status(200, "one failed job");
    assert_eq!(one.json()["id"], all_ids[0]);
    server.get("/admin/api/jobs/failed/01234567-89ab-7def-8123-456789abcdef").assert_status(404, "no such job");
}

#[test]
fn a_thousand_jobs_run_ten_at_a_time_and_pending_jobs_survive_sigkill() {
    let mut server = start();
    let started = std::time::Instant::now();
    server.post_empty("/admin/api/tasks/push_many/start").assert_status(200, "start the task");
    let mut most_running = 0.0_f64;
    wait_until(Duration::from_secs(120), "1000 jobs ran", || {
        let metrics = server.get("/metrics").body;
        let running = metric_value(&metrics, "ferrogrid_jobs_running", &[("name", "record")]).unwrap_or(0.0);
        most_running = most_running.max(running);
        let succeeded = metric_value(&metrics, "ferrogrid_jobs_succeeded_total", &[("name", "record")]).unwrap_or(0.0);
        (succeeded >= 1000.0).then_some(())
    });
    let elapsed = started.elapsed();
    eprintln!("jobs: 1000 pushed and run in {elapsed:?}: {:.0} jobs/s", 1000.0 / elapsed.as_secs_f64());
    assert!(most_running <= 10.0, "never more than max_jobs_in_parallel: {most_running}");
    assert_eq!(count_done_from(&server, 100_000), 1000);
    assert_eq!(summary(&server), json!({"pending": 0, "failed": 0}));

    // Killed right after a task queued 1,000 slow jobs: after the restart every one of them runs.
    server.post_empty("/admin/api/tasks/push_slow/start").assert_status(200, "start push_slow");
    wait_until(Duration::from_secs(30), "the task run completed", || {
        let tasks = server.get("/admin/api/tasks").json();
        let runs = tasks["tasks"].as_array().and_then(|t| t.iter().find(|t| t["name"] == "push_slow").cloned());
        runs.filter(|t| t["runs"][0]["status"] == "completed").map(|_| ())
    });
    let pending = summary(&server)["pending"].as_u64().unwrap_or(0);
    server.kill();
    assert!(pending >= 500, "at least 500 jobs pending at the kill: {pending}");
    server.restart();
    wait_until(Duration::from_secs(120), "the pending jobs ran after the restart", || {
        (summary(&server)["pending"] == 0).then_some(())
    });
    assert_eq!(count_done_from(&server, 200_000), 1000, "none lost ({pending} were pending at the kill)");
    assert!(failed(&server).is_empty());
}

#[test]
fn tasks_and_jobs_through_the_admin_graphql_schema() {
    let server = start();
    let d = server.graphql_admin(r#"mutation { tasks { start(name: "push_many") } }"#, json!({}));
    let run_id = d["data"]["tasks"]["start"].as_str().unwrap_or_else(|| panic!("{d}")).to_string();
    let list = wait_until(Duration::from_secs(60), "the run is listed as completed", || {
        let d = server.graphql_admin("{ tasks { get_list } }", json!({}));
        let tasks = d["data"]["tasks"]["get_list"].as_array().cloned().unwrap_or_default();
        let push = tasks.into_iter().find(|t| t["name"] == "push_many")?;
        (push["runs"][0]["id"] == run_id.as_str() && push["runs"][0]["status"] == "completed").then_some(push)
    });
    assert_eq!(list["kind"], "single_shot");
    let d = server.graphql_admin(r#"mutation { tasks { stop(name: "nothing") } }"#, json!({}));
    assert_eq!(d["errors"][0]["extensions"]["code"], "NOT_FOUND", "{d}");

    assert_eq!(server.post_sync(&item(7, false, "flaky"))["status"], "stored");
    let failed_job = wait_until(Duration::from_secs(60), "the flaky job failed", || {
        let d = server.graphql_admin(r#"{ jobs { get_list(filter: "flaky") } }"#, json!({}));
        d["data"]["jobs"]["get_list"].as_array().and_then(|l| l.first().cloned())
    });
    let id = failed_job["id"].as_str().unwrap_or_default().to_string();
    let d = server.graphql_admin("mutation($id: String!) { jobs { delete_job(id: $id) } }", json!({"id": id}));
    assert_eq!(d["data"]["jobs"]["delete_job"], true, "{d}");
    let d = server.graphql_admin("mutation { jobs { try_again_all } }", json!({}));
    assert_eq!(d["data"]["jobs"]["try_again_all"], 0, "{d}");
    assert!(failed(&server).is_empty());
}
