//! `ferrogrid test FOLDER`: a configuration folder's own test cases, run without a server or a
//! network, on a temporary store that is deleted afterwards.
//!
//! - **Function cases**, `tests/functions/<function>/<case>.json`: `{"param": ..., "result": ...}`
//!   (the function's result must equal `result`) or `{"param": ..., "error": "..."}` (it must fail
//!   with an error containing the text); `fixtures` (as below) are stored first. They run before
//!   the flow cases, on the same store.
//! - **Flow cases**, `tests/<case>/`, in name order on one store (a case sees what earlier cases
//!   stored): `fixtures.json` (`{"Type": [object, ...]}`, stored first through the repository),
//!   `input.json` (an object received by the configuration's first HTTP input, else its first
//!   Kafka input) or `input.xml` (a SOAP envelope, to its SOAP input), `case.json`
//!   (`{"input": "name"}` to name the input), and `expected.json`: `status` (`stored`, `routed`,
//!   `repair`), `routing_key`, `error` (text the repair error contains), `type` + `query`
//!   (`index=value`) + `object` (the stored object read back) + `versions` (how many it has),
//!   `stored` (several such reads: `[{type, query, object, versions}]`), `deliveries` (what the
//!   outputs were given: `[{output, object, key}]`, in any order; without `object` in any of
//!   them, objects are not compared), `output_repair` (`[{output,
//!   error}]`, deliveries parked) and `jobs` (`[{name, args}]` pushed). Only the keys written are
//!   checked.
//!
//! Connector outputs are replaced by recorders: nothing leaves the process, and what would have
//! been sent is what `deliveries` is compared with. Tasks and jobs do not run.

use crate::config;
use crate::output::OutputProcessor;
use crate::processor::{Processor, ProcessorIntake};
use crate::runtime::Runtime;
use crate::storage::{Db, IntakeLog, Keyspace, StorageConfig};
use anyhow::Context;
use ferrogrid_connectors::kafka::KafkaOutputConfig;
use ferrogrid_connectors::{BoxFuture, InputConfig, Intake, Outgoing, Output, OutputConfig, Received, SendError, Wait};
use ferrogrid_sandbox::CallContext;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a case may wait for the output processor to finish its deliveries.
const DELIVERY_WAIT: Duration = Duration::from_secs(10);

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseResult {
    /// `functions/<function>/<case>` or `flows/<case>`.
    pub name: String,
    /// Why it failed (a diff of expected and actual), `None` when it passed.
    pub failure: Option<String>,
    /// How long it took.
    pub seconds: f64,
}

/// Every case of a folder.
#[derive(Debug, Default)]
pub struct Report {
    /// The folder's name (the junit suite name).
    pub suite: String,
    /// The cases, in the order run.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|c| c.failure.is_some()).count()
    }

    /// Human-readable lines: each case, each failure's diff, a summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for case in &self.cases {
            match &case.failure {
                None => out.push_str(&format!("ok    {}\n", case.name)),
                Some(failure) => {
                    out.push_str(&format!("FAIL  {}\n", case.name));
                    for line in failure.lines() {
                        out.push_str(&format!("      {line}\n"));
                    }
                }
            }
        }
        out.push_str(&format!(
            "{}: {} passed, {} failed\n",
            self.suite,
            self.cases.len() - self.failed(),
            self.failed()
        ));
        out
    }

    /// A JUnit XML report (one `testsuite`; a failure's diff is its `failure` text).
    pub fn junit(&self) -> anyhow::Result<String> {
        use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
        let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
        let total: f64 = self.cases.iter().map(|c| c.seconds).sum();
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let tests = self.cases.len().to_string();
        let failures = self.failed().to_string();
        let time = format!("{total:.3}");
        let suite_attrs = [
            ("name", self.suite.as_str()),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", "0"),
            ("time", time.as_str()),
        ];
        writer.write_event(Event::Start(BytesStart::new("testsuites")))?;
        writer.write_event(Event::Start(BytesStart::new("testsuite").with_attributes(suite_attrs)))?;
        for case in &self.cases {
            let time = format!("{:.3}", case.seconds);
            let attrs = [("name", case.name.as_str()), ("classname", self.suite.as_str()), ("time", time.as_str())];
            let start = BytesStart::new("testcase").with_attributes(attrs);
            match &case.failure {
                None => writer.write_event(Event::Empty(start))?,
                Some(failure) => {
                    writer.write_event(Event::Start(start))?;
                    // XML 1.0 cannot hold most control characters, which a script's error may.
                    let failure: String = failure
                        .chars()
                        .map(|c| if c.is_control() && !matches!(c, '\t' | '\n' | '\r') { '\u{fffd}' } else { c })
                        .collect();
                    let failure = failure.as_str();
                    let first = failure.lines().next().unwrap_or("failed").trim_end_matches(':');
                    let failed = BytesStart::new("failure").with_attributes([("message", first)]);
                    writer.write_event(Event::Start(failed))?;
                    writer.write_event(Event::Text(BytesText::new(failure)))?;
                    writer.write_event(Event::End(BytesEnd::new("failure")))?;
                    writer.write_event(Event::End(BytesEnd::new("testcase")))?;
                }
            }
        }
        writer.write_event(Event::End(BytesEnd::new("testsuite")))?;
        writer.write_event(Event::End(BytesEnd::new("testsuites")))?;
        let mut text = String::from_utf8(writer.into_inner())?;
        text.push('\n');
        Ok(text)
    }
}

/// What an output was given.
#[derive(Debug, Clone)]
struct Given {
    output: String,
    object: Value,
    /// The Kafka message key it would have.
    key: Option<String>,
}

/// What a recorder checks before it records, as its output would before sending.
enum Check {
    /// A Kafka output's encoding and message key (building the real one would connect).
    Kafka(KafkaOutputConfig),
    /// The output itself, built from the configuration (building connects nowhere).
    Built(Arc<dyn Output>),
}

/// An output that keeps what it is given (a Kafka output's with the key it would send), after
/// the checks its output makes before sending.
struct Recorder {
    name: String,
    check: Check,
    given: Arc<Mutex<Vec<Given>>>,
}

impl Output for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    fn send(&self, message: Outgoing) -> BoxFuture<Result<(), SendError>> {
        let key = match &self.check {
            Check::Kafka(config) => match config.message_key(&message) {
                Ok(key) => key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                Err(e) => return Box::pin(async move { Err(e) }),
            },
            Check::Built(output) => match output.check(&message) {
                Ok(()) => None,
                Err(e) => return Box::pin(async move { Err(e) }),
            },
        };
        let given = Given { output: self.name.clone(), object: message.object, key };
        self.given.lock().unwrap_or_else(PoisonError::into_inner).push(given);
        Box::pin(async { Ok(()) })
    }
}

/// The engine the cases run against.
struct Bench {
    engine: Arc<Processor>,
    outputs: Option<OutputProcessor>,
    given: Arc<Mutex<Vec<Given>>>,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn start(folder: &Path) -> anyhow::Result<Bench> {
        let loaded = config::load(folder).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
        let dir = tempfile::Builder::new().prefix("ferrogrid-test-").tempdir().context("creating a temporary store")?;
        let db = Db::open_with(dir.path().join("db"), &StorageConfig::default()).context("opening the store")?;
        let sequences = loaded.config.sequence_generator;
        db.set_sequences(sequences.starts_with, sequences.range_width);
        let given = Arc::new(Mutex::new(Vec::new()));
        let recorder = |output: &OutputConfig| -> Result<Option<Arc<dyn Output>>, String> {
            let check = match output {
                OutputConfig::InputProcessor(_) => return Ok(None),
                OutputConfig::Kafka(config) => Check::Kafka(config.clone()),
                other => match other.build().map_err(|e| e.to_string())? {
                    Some(built) => Check::Built(Arc::from(built)),
                    None => return Ok(None),
                },
            };
            Ok(Some(Arc::new(Recorder { name: output.name().to_string(), check, given: given.clone() })))
        };
        let runtime = Runtime::build_with(&loaded, db, 1, recorder)
            .map_err(|errors| anyhow::anyhow!("invalid configuration:\n{}", errors.join("\n")))?;
        let (intake_log, _) = IntakeLog::open(
            &dir.path().join("intake-log"),
            &runtime.db,
            Keyspace::RepairQueue,
            |_, _: &crate::repair::Entry| {},
        )
        .context("opening the intake log")?;
        let engine = Processor::start(runtime, intake_log)?;
        engine.set_ready();
        let outputs = Some(OutputProcessor::start(engine.clone()));
        Ok(Bench { engine, outputs, given, _dir: dir })
    }

    async fn stop(mut self) {
        if let Some(outputs) = self.outputs.take() {
            outputs.stop().await;
        }
        self.engine.stop_accepting();
        self.engine.drain(Duration::from_secs(5)).await;
    }

    fn rt(&self) -> Arc<Runtime> {
        self.engine.runtime()
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn sorted_entries(dir: &Path, want_dirs: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() == want_dirs {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A unified diff of the two values, pretty-printed (keys in the order written; the actual
/// value's keys in the expected one's order, so that only what differs shows).
fn diff(expected: &Value, actual: &Value) -> String {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()) + "\n";
    let (expected, actual) = (pretty(expected), pretty(&aligned(actual, expected)));
    similar::TextDiff::from_lines(&expected, &actual).unified_diff().header("expected", "actual").to_string()
}

/// `actual` with its maps' keys in `like`'s order (the keys `like` lacks last).
fn aligned(actual: &Value, like: &Value) -> Value {
    match (actual, like) {
        (Value::Object(map), Value::Object(order)) => {
            let mut out = Map::new();
            for (key, want) in order {
                if let Some(value) = map.get(key) {
                    out.insert(key.clone(), aligned(value, want));
                }
            }
            for (key, value) in map {
                if !out.contains_key(key) {
                    out.insert(key.clone(), value.clone());
                }
            }
            Value::Object(out)
        }
        (Value::Array(items), Value::Array(order)) => Value::Array(
            items.iter().enumerate().map(|(i, v)| order.get(i).map_or_else(|| v.clone(), |w| aligned(v, w))).collect(),
        ),
        _ => actual.clone(),
    }
}

/// Run the cases of `folder`'s `tests/`. An error is a folder that cannot be run (an invalid
/// configuration, no tests); a failing case is in the report.
pub async fn run(folder: &Path) -> anyhow::Result<Report> {
    let tests = folder.join("tests");
    if !tests.is_dir() {
        anyhow::bail!("{} has no tests/ folder (see `ferrogrid test --help`)", folder.display());
    }
    let suite =
        std::fs::canonicalize(folder).ok().as_deref().map(file_name).unwrap_or_else(|| folder.display().to_string());
    let bench = Bench::start(folder)?;
    let mut report = Report { suite, cases: Vec::new() };
    let functions = tests.join("functions");
    if functions.is_dir() {
        for function in sorted_entries(&functions, true)? {
            for case in
                sorted_entries(&function, false)?.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json"))
            {
                let started = Instant::now();
                let name = format!(
                    "functions/{}/{}",
                    file_name(&function),
                    case.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
                );
                let mut failure = function_case(&bench, &file_name(&function), &case).await.err();
                // A job it pushed is not the next case's.
                if let Err(e) = clear_jobs(&bench.rt()) {
                    failure.get_or_insert(e);
                }
                report.cases.push(CaseResult { name, failure, seconds: started.elapsed().as_secs_f64() });
            }
        }
    }
    for case in sorted_entries(&tests, true)?.into_iter().filter(|p| p != &functions) {
        let started = Instant::now();
        let failure = flow_case(&bench, &case).await.err();
        report.cases.push(CaseResult {
            name: format!("flows/{}", file_name(&case)),
            failure,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    bench.stop().await;
    if report.cases.is_empty() {
        anyhow::bail!("{} has no cases", tests.display());
    }
    Ok(report)
}

async fn function_case(bench: &Bench, function: &str, path: &Path) -> Result<(), String> {
    let case = read_json(path)?;
    let param = case.get("param").cloned().ok_or("the case has no `param`")?;
    let (want_result, want_error) = (case.get("result"), case.get("error").and_then(Value::as_str));
    if want_result.is_some() == want_error.is_some() {
        return Err("the case needs either `result` or `error` (a text the error contains)".into());
    }
    if bench.rt().pipelines.function(function).is_none() {
        return Err(format!("the configuration has no function \"{function}\" (a folder of tests/functions/)"));
    }
    if let Some(fixtures) = case.get("fixtures") {
        store_fixtures(&bench.rt(), fixtures).map_err(|e| e.replace("fixtures.json", "fixtures"))?;
    }
    let name = function.to_string();
    let ran = bench
        .engine
        .on_worker_unleased(move |rt, se| {
            let ctx = CallContext::new(format!("test {name}"));
            match rt.pipelines.function(&name) {
                Some(script) => se.run_json(script, param, &ctx).map_err(|e| e.to_string()),
                None => Err(format!("no function \"{name}\"")),
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    match (ran, want_result, want_error) {
        (Ok(result), Some(want), _) if &result == want => Ok(()),
        (Ok(result), Some(want), _) => Err(format!("the result differs:\n{}", diff(want, &result))),
        (Ok(result), _, want) => {
            Err(format!("expected an error containing {:?}, got the result {result}", want.unwrap_or_default()))
        }
        (Err(error), Some(_), _) => Err(format!("the function failed: {error}")),
        (Err(error), None, Some(want)) if error.contains(want) => Ok(()),
        (Err(error), _, want) => Err(format!("the error {error:?} does not contain {:?}", want.unwrap_or_default())),
    }
}

/// The input a flow case's message arrives at: `case.json`'s, else the first of its kind.
fn input_of<'a>(rt: &'a Runtime, named: Option<&str>, xml: bool) -> Result<Option<&'a InputConfig>, String> {
    let inputs = &rt.config.connector.input;
    if let Some(name) = named {
        return inputs
            .iter()
            .find(|i| i.name() == name)
            .map(Some)
            .ok_or(format!("case.json: no input named \"{name}\""));
    }
    let first = |f: fn(&InputConfig) -> bool| inputs.iter().find(|i| f(i));
    Ok(if xml {
        first(|i| matches!(i, InputConfig::Soap(_)))
    } else {
        first(|i| matches!(i, InputConfig::Http(_))).or_else(|| first(|i| matches!(i, InputConfig::Kafka(_))))
    })
}

async fn flow_case(bench: &Bench, case: &Path) -> Result<(), String> {
    let expected = read_json(&case.join("expected.json"))?;
    let rt = bench.rt();
    let settings = if case.join("case.json").is_file() { read_json(&case.join("case.json"))? } else { json!({}) };
    let fixtures = case.join("fixtures.json");
    if fixtures.is_file() {
        store_fixtures(&rt, &read_json(&fixtures)?)?;
    }
    let xml = case.join("input.xml");
    let is_xml = xml.is_file();
    let input = input_of(&rt, settings.get("input").and_then(Value::as_str), is_xml)?;
    let (name, source) = match input {
        Some(InputConfig::Soap(c)) => (c.name.clone(), "soap"),
        Some(InputConfig::Kafka(c)) => (c.name.clone(), "kafka"),
        Some(InputConfig::Http(c)) => (c.name.clone(), "http"),
        None if is_xml => return Err("input.xml needs a SOAP input in the configuration".into()),
        None => ("http".to_string(), "http"),
    };
    let payload = if is_xml {
        let bytes = std::fs::read(&xml).map_err(|e| format!("{}: {e}", xml.display()))?;
        let (depth, elements) =
            input.and_then(InputConfig::as_soap).map_or((128, 100_000), |c| (c.max_depth, c.max_elements));
        ferrogrid_connectors::soap::xml::parse_envelope(&bytes, depth, elements)
            .map_err(|e| format!("input.xml: {e}"))?
            .body
    } else {
        read_json(&case.join("input.json"))?
    };
    if let Some(input) = input {
        input.pipeline_for(&payload).map_err(|e| format!("the input refuses the message: {e}"))?;
    }
    bench.given.lock().unwrap_or_else(PoisonError::into_inner).clear();
    clear_jobs(&rt)?;
    let received = Received { input: name, source, payload, version: None };
    let accepted = ProcessorIntake(bench.engine.clone())
        .accept(received, Wait::Outcome)
        .await
        .map_err(|e| format!("not accepted: {e}"))?;
    let outcome = serde_json::to_value(accepted.outcome.ok_or("no outcome")?).map_err(|e| e.to_string())?;
    let parked = settle_deliveries(&rt).await?;
    let actual = actual_for(bench, &rt, &expected, &outcome, parked)?;
    let compared = checked_part(&expected);
    if compared == actual {
        Ok(())
    } else {
        Err(format!("the outcome differs:\n{}", diff(&compared, &actual)))
    }
}

fn store_fixtures(rt: &Runtime, fixtures: &Value) -> Result<(), String> {
    let Value::Object(types) = fixtures else {
        return Err("fixtures.json must be {\"Type\": [object, ...]}".into());
    };
    for (type_name, objects) in types {
        let Value::Array(objects) = objects else {
            return Err(format!("fixtures.json: {type_name} must be a list of objects"));
        };
        for (i, object) in objects.iter().enumerate() {
            rt.repository
                .put(type_name, object, &json!({}), &CallContext::new("fixtures"))
                .map_err(|e| format!("fixtures.json: {type_name}[{i}]: {e}"))?;
        }
    }
    Ok(())
}

/// Wait until the output processor delivered or parked what the case made it queue; the parked
/// ones, oldest first.
async fn settle_deliveries(rt: &Runtime) -> Result<Vec<Value>, String> {
    let outputs = rt.config.replicated_outputs();
    let started = Instant::now();
    while outputs.iter().any(|o| rt.output_queue.depth(o) > 0) {
        if started.elapsed() > DELIVERY_WAIT {
            // Dropped, so that the next case does not get them.
            for output in &outputs {
                let waiting =
                    rt.output_queue.pending(output, &Default::default(), usize::MAX).map_err(|e| e.to_string())?;
                rt.output_queue.done_all(&waiting).map_err(|e| e.to_string())?;
            }
            return Err(format!(
                "deliveries still waiting after {} s (a sync-mode output retrying?); dropped",
                DELIVERY_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let parked = rt.output_queue.parked(None).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for delivery in parked {
        out.push(json!({"output": delivery.output, "error": delivery.error.clone().unwrap_or_default()}));
        rt.output_queue.delete(&delivery.id).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The keys of `expected` that are compared (not the ones that only say how to read).
fn checked_part(expected: &Value) -> Value {
    let mut out = expected.clone();
    if let Value::Object(map) = &mut out {
        map.shift_remove("query");
        if let Some(Value::Array(stored)) = map.get_mut("stored") {
            for item in stored.iter_mut().filter_map(Value::as_object_mut) {
                item.shift_remove("query");
            }
        }
        for key in ["deliveries", "jobs", "output_repair"] {
            if let Some(Value::Array(items)) = map.get_mut(key) {
                sort_values(items);
            }
        }
    }
    out
}

/// Sort by content, whatever order each item's keys are written in.
fn sort_values(items: &mut [Value]) {
    items.sort_by_cached_key(crate::journal::canonical);
}

/// Forget the jobs waiting (they do not run here): each case sees only the ones it pushed.
fn clear_jobs(rt: &Runtime) -> Result<(), String> {
    let pending = rt.jobs.pending(&Default::default(), usize::MAX).map_err(|e| e.to_string())?;
    for (key, _) in pending {
        rt.jobs.done(&key).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What happened, in the shape of `expected` (only its keys).
fn actual_for(
    bench: &Bench,
    rt: &Runtime,
    expected: &Value,
    outcome: &Value,
    parked: Vec<Value>,
) -> Result<Value, String> {
    let Value::Object(want) = expected else { return Err("expected.json must be an object".into()) };
    let mut actual = Map::new();
    for (key, wanted) in want {
        let value = match key.as_str() {
            "status" | "routing_key" | "type" => outcome.get(key).cloned().unwrap_or(Value::Null),
            "error" => {
                let error = outcome.get("error").and_then(Value::as_str).unwrap_or_default();
                match wanted.as_str() {
                    Some(text) if !text.is_empty() && error.contains(text) => wanted.clone(),
                    _ => Value::String(error.to_string()),
                }
            }
            "query" => continue,
            "object" | "versions" => {
                let type_name = want.get("type").and_then(Value::as_str).unwrap_or_default();
                let query =
                    want.get("query").and_then(Value::as_str).ok_or("`object` and `versions` need a `query`")?;
                let read = read_back(rt, type_name, query)?;
                read.get(key).cloned().unwrap_or(Value::Null)
            }
            "stored" => {
                let Value::Array(items) = wanted else { return Err("`stored` must be a list".into()) };
                let mut out = Vec::new();
                for item in items {
                    let type_name =
                        item.get("type").and_then(Value::as_str).ok_or("each of `stored` needs a `type`")?;
                    let query = item.get("query").and_then(Value::as_str).ok_or("each of `stored` needs a `query`")?;
                    let read = read_back(rt, type_name, query)?;
                    let mut got = Map::new();
                    got.insert("type".into(), json!(type_name));
                    for field in ["object", "versions"].into_iter().filter(|f| item.get(*f).is_some()) {
                        got.insert(field.into(), read.get(field).cloned().unwrap_or(Value::Null));
                    }
                    out.push(Value::Object(got));
                }
                Value::Array(out)
            }
            "deliveries" => {
                // Objects are compared when the case writes them (one made at run time, with a
                // timestamp, cannot be); keys always.
                let with_objects = wanted.as_array().into_iter().flatten().any(|w| w.get("object").is_some());
                let given = bench.given.lock().unwrap_or_else(PoisonError::into_inner);
                let mut items: Vec<Value> = given
                    .iter()
                    .map(|g| {
                        let mut item = Map::new();
                        item.insert("output".into(), json!(g.output));
                        if with_objects {
                            item.insert("object".into(), g.object.clone());
                        }
                        if let Some(key) = &g.key {
                            item.insert("key".into(), json!(key));
                        }
                        Value::Object(item)
                    })
                    .collect();
                sort_values(&mut items);
                Value::Array(items)
            }
            "output_repair" => {
                // A parked delivery matches a written one of its output whose error it contains.
                let written = wanted.as_array().cloned().unwrap_or_default();
                let mut items: Vec<Value> = parked
                    .iter()
                    .map(|got| {
                        let error = got["error"].as_str().unwrap_or_default();
                        let matches = |w: &&Value| {
                            w.get("output") == got.get("output")
                                && w.get("error").and_then(Value::as_str).is_some_and(|text| error.contains(text))
                        };
                        written.iter().find(matches).cloned().unwrap_or_else(|| got.clone())
                    })
                    .collect();
                sort_values(&mut items);
                Value::Array(items)
            }
            "jobs" => {
                let pending = rt.jobs.pending(&Default::default(), usize::MAX).map_err(|e| e.to_string())?;
                let mut items = Vec::new();
                for (job_key, job) in pending {
                    items.push(json!({"name": job.name, "args": job.args}));
                    rt.jobs.done(&job_key).map_err(|e| e.to_string())?;
                }
                sort_values(&mut items);
                Value::Array(items)
            }
            other => return Err(format!("expected.json: unknown key `{other}`")),
        };
        actual.insert(key.clone(), value);
    }
    // An object that failed where the case did not expect it: the diff says why.
    if !want.contains_key("error") && want.get("status") != outcome.get("status") {
        if let Some(error) = outcome.get("error").filter(|e| !e.is_null()) {
            actual.insert("error".into(), error.clone());
        }
    }
    Ok(Value::Object(actual))
}

/// The object `query` (`index=value`) finds in `type_name` and how many versions it has:
/// `{object, versions}`; `object` is null when none is found. A query that finds more than one
/// object is an error (name a unique index).
fn read_back(rt: &Runtime, type_name: &str, query: &str) -> Result<Value, String> {
    const PAGE: usize = 1000;
    let (index, raw) = query.split_once('=').ok_or(format!("query \"{query}\" is not index=value"))?;
    let value = crate::http::data::key_value(&rt.repository, type_name, index, raw);
    let filter = json!([[index, "==", value]]);
    let read = |options: Value| {
        rt.repository.find(type_name, &filter, &options).map_err(|e| format!("reading {type_name}: {e}"))
    };
    let latest = read(json!({"first": 2}))?;
    if latest.items.len() > 1 {
        return Err(format!("query \"{query}\" finds more than one {type_name}: use a unique index"));
    }
    let mut versions = 0;
    let mut after: Option<String> = None;
    loop {
        let mut options = json!({"all_versions": true, "first": PAGE});
        if let Some(cursor) = &after {
            options["after"] = json!(cursor);
        }
        let page = read(options)?;
        versions += page.items.len();
        // Until a page comes back empty: the hard limits may cut a page short.
        match page.items.last() {
            Some(last) => after = Some(last.cursor.clone()),
            None => break,
        }
    }
    Ok(json!({
        "object": latest.items.first().map(|s| s.object.clone()),
        "versions": versions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    const CONFIG: &str = r#"
types: {__file: model.avsc}
functions:
  note: {__file: note.rhai}
  noted: {__file: noted.rhai}
  prepare: {__file: prepare.rhai}
  broken: {__file: broken.rhai}
pipelines:
  note: [note]
  prepare: [prepare]
  broken: [broken]
connector:
  input: [{name: http, type: http}]
  output:
    - {name: keyed, type: kafka, brokers: ["127.0.0.1:9"], topic: t, set_key: id}
    - {name: scripted, type: kafka, brokers: ["127.0.0.1:9"], topic: t, set_key: id}
    - {name: hook, type: http, url: "http://127.0.0.1:9/x"}
input_processor:
  storage: [{key: Item, type: Item}]
  routing: [{key: Item, pipeline: note}]
output_processor:
  Item:
    handlers:
      - {outputs: [keyed]}
      - {pipeline: prepare, outputs: [scripted]}
      - {pipeline: broken, outputs: [hook]}
"#;

    const MODEL: &str = r#"[{"name": "Item", "type": "record", "logicalType": "Aggregate",
        "fields": [{"name": "id", "type": "long"}, {"name": "n", "type": "long"}], "indexes": ["id"]}]"#;

    /// A flow through every part a case can check: fixtures, versions, deliveries with the key
    /// from `set_key` and from a script, a parked delivery, a pushed job; then a case that fails.
    #[test]
    fn a_flow_case_checks_stores_deliveries_keys_parked_deliveries_and_jobs() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("config.yml", CONFIG),
                ("model.avsc", MODEL),
                ("note.rhai", "repository::push_job(\"noted\", #{id: param.obj.id}); param"),
                ("noted.rhai", "param"),
                ("prepare.rhai", "#{obj: param.obj, key: `k${param.obj.id}`}"),
                ("broken.rhai", "throw \"no hook today\""),
                ("tests/1_item/fixtures.json", r#"{"Item": [{"id": 1, "n": 0}]}"#),
                ("tests/1_item/input.json", r#"{"Item": {"id": 1, "n": 5}}"#),
                (
                    "tests/1_item/expected.json",
                    r#"{"status": "stored", "routing_key": "Item", "type": "Item", "query": "id=1",
                        "object": {"id": 1, "n": 5}, "versions": 2,
                        "deliveries": [{"output": "scripted", "object": {"id": 1, "n": 5}, "key": "k1"},
                                       {"output": "keyed", "object": {"id": 1, "n": 5}, "key": "1"}],
                        "output_repair": [{"output": "hook", "error": "no hook today"}],
                        "jobs": [{"name": "noted", "args": {"id": 1}}]}"#,
                ),
                ("tests/2_wrong/input.json", r#"{"Item": {"id": 2, "n": 1}}"#),
                (
                    "tests/3_many_versions/fixtures.json",
                    r#"{"Item": [{"id": 3, "n": 1}, {"id": 3, "n": 2}, {"id": 3, "n": 3}, {"id": 3, "n": 4},
                        {"id": 3, "n": 5}, {"id": 3, "n": 6}, {"id": 3, "n": 7}, {"id": 3, "n": 8},
                        {"id": 3, "n": 9}, {"id": 3, "n": 10}, {"id": 3, "n": 11}]}"#,
                ),
                ("tests/3_many_versions/input.json", r#"{"Item": {"id": 3, "n": 12}}"#),
                (
                    "tests/3_many_versions/expected.json",
                    r#"{"status": "stored", "type": "Item", "query": "id=3", "versions": 12,
                        "deliveries": [{"key": "3", "object": {"n": 12, "id": 3}, "output": "keyed"},
                                       {"object": {"n": 12, "id": 3}, "output": "scripted", "key": "k3"}],
                        "jobs": [{"args": {"id": 3}, "name": "noted"}]}"#,
                ),
                (
                    "tests/2_wrong/expected.json",
                    r#"{"status": "stored", "stored": [{"type": "Item", "query": "id=2", "object": {"id": 2, "n": 2}}],
                        "jobs": []}"#,
                ),
            ],
        );
        let report = actix_rt::System::new().block_on(run(dir.path())).unwrap();
        let text = report.text();
        assert_eq!(report.cases.len(), 3, "{text}");
        assert!(report.cases[0].failure.is_none(), "{text}");
        assert!(report.cases[2].failure.is_none(), "more than ten versions, keys in any order, no earlier job: {text}");
        let failure = report.cases[1].failure.as_deref().unwrap_or_default();
        assert!(failure.contains("-        \"n\": 2") && failure.contains("+        \"n\": 1"), "{text}");
        assert!(failure.contains("-  \"jobs\": []"), "the second case's job is listed: {text}");
        assert!(text.ends_with(": 2 passed, 1 failed\n"), "{text}");
    }

    #[test]
    fn function_cases_need_a_result_or_an_error_and_a_known_function() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("config.yml", "functions:\n  twice: {__file: twice.rhai}\n"),
                ("twice.rhai", "param * 2"),
                ("tests/functions/twice/ok.json", r#"{"param": 21, "result": 42}"#),
                ("tests/functions/twice/fails.json", r#"{"param": "x", "error": "twice"}"#),
                ("tests/functions/twice/neither.json", r#"{"param": 1}"#),
                ("tests/functions/twice/wrong_error.json", r#"{"param": 1, "error": "boom"}"#),
                ("tests/functions/thrice/any.json", r#"{"param": 1, "result": 3}"#),
            ],
        );
        let report = actix_rt::System::new().block_on(run(dir.path())).unwrap();
        let outcome: Vec<(String, Option<String>)> =
            report.cases.iter().map(|c| (c.name.clone(), c.failure.clone())).collect();
        let failure_of = |name: &str| outcome.iter().find(|(n, _)| n == name).and_then(|(_, f)| f.clone());
        assert_eq!(failure_of("functions/twice/ok"), None, "{outcome:?}");
        assert_eq!(failure_of("functions/twice/fails"), None, "{outcome:?}");
        assert!(failure_of("functions/twice/neither").unwrap().contains("either `result` or `error`"));
        assert!(failure_of("functions/twice/wrong_error").unwrap().contains("got the result 2"));
        assert!(failure_of("functions/thrice/any").unwrap().contains("no function \"thrice\""));
    }
}
