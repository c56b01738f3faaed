//! The stages of the input processor.

use crate::config::StoreStrategy;
use crate::metrics::metrics;
use crate::output::Content;
use crate::repair::{Entry, Failure, RepairError};
use crate::runtime::Runtime;
use crate::storage::PutOptions;
use crate::storage::{DoneBatch, WriteTx};
use ferrogrid_connectors::json::parse_object;
use ferrogrid_pipelines::steps::{default_input_step, parse_classified, parse_routed, to_param, UNCLASSIFIED};
use ferrogrid_pipelines::{PipelineError, Routed};
use ferrogrid_sandbox::{CallContext, JobSink, ScriptEngine};
use serde_json::Value;
use std::sync::PoisonError;
use std::time::Instant;

/// How processing ended well.
#[derive(Debug, Clone)]
pub enum Done {
    /// Stored as `type_name` with `version`.
    Stored {
        /// Routing key at storage.
        routing_key: String,
        /// Aggregate type.
        type_name: String,
        /// Version written.
        version: u64,
        /// Its primary key (one value, or an array for a composite key), for the journal.
        key: Option<Value>,
    },
    /// Sent to a connector output.
    Routed {
        /// Routing key.
        routing_key: String,
        /// Output name.
        output: String,
    },
}

fn script_failure(stage: &'static str, routing_key: Option<&str>, e: PipelineError) -> Failure {
    Failure {
        stage,
        function: e.function().map(str::to_string),
        routing_key: routing_key.map(str::to_string),
        error: e.to_string(),
        object: None,
    }
}

fn failure(stage: &'static str, routing_key: Option<&str>, error: String) -> Failure {
    Failure { stage, function: None, routing_key: routing_key.map(str::to_string), error, object: None }
}

/// Run one pipeline and time it.
fn run(
    rt: &Runtime,
    engine: &ScriptEngine,
    name: &str,
    param: Value,
    ctx: &CallContext,
) -> Result<Value, PipelineError> {
    let started = Instant::now();
    // Test builds: `pipeline-step/<name>` makes the step fail (panic) as a bug would.
    fail::fail_point!(&format!("pipeline-step/{name}"));
    let result = rt.pipelines.run(engine, name, param, ctx);
    let elapsed = started.elapsed();
    metrics().pipeline_seconds.with_label_values(&[name]).observe(elapsed.as_secs_f64());
    step_done(name, elapsed);
    result
}

/// An object that passed stages 1-6 and waits to be stored.
#[derive(Debug)]
pub struct ToStore {
    /// Routing key at storage.
    pub routing_key: String,
    /// Aggregate type.
    pub type_name: String,
    /// The validated object.
    pub obj: Value,
    /// Jobs its scripts pushed: committed with it.
    pub jobs: Vec<(String, Value)>,
}

/// An object routed to a connector output, to be sent.
#[derive(Debug)]
pub struct ToSend {
    /// The output's name.
    pub output: String,
    /// Routing key.
    pub routing_key: String,
    /// The object as the input pipeline left it.
    pub obj: Value,
    /// The message key the input pipeline set.
    pub key: Option<Value>,
    /// Jobs its scripts pushed: committed once it is sent.
    pub jobs: Vec<(String, Value)>,
}

thread_local! {
    /// The steps of the object being prepared on this thread, with their time.
    static STEPS: std::cell::RefCell<Vec<(String, f64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn step_done(name: &str, elapsed: std::time::Duration) {
    STEPS.with(|s| s.borrow_mut().push((name.to_string(), elapsed.as_secs_f64() * 1000.0)));
}

/// The steps [`prepare`] ran on this thread since the last call, with their milliseconds (for
/// the journal); forgets them.
pub fn take_steps() -> Vec<(String, f64)> {
    STEPS.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// Where an object is after the script and validation stages.
#[derive(Debug)]
pub enum Prepared {
    /// Routed to a connector output; to be sent, then finished with [`sent`].
    Send(ToSend),
    /// Validated; to be stored with [`store`].
    Store(ToStore),
}

/// The object of `entry`: inputs keep a message that is not a JSON object as its text, which
/// is parsed here (within its input's nesting limit, which may have been why it stayed text),
/// so an operator can correct the text in the repair queue and retry it.
fn payload_of(rt: &Runtime, entry: &Entry) -> Result<Value, Failure> {
    match &entry.payload {
        Value::String(text) => {
            let depth = rt.inputs.get(&entry.input).map_or(RAW_TEXT_MAX_DEPTH, |input| input.max_depth());
            parse_object(text.as_bytes(), depth)
                .map(Value::Object)
                .map_err(|e| failure("input", None, format!("{} (the message is kept as received)", e)))
        }
        other => Ok(other.clone()),
    }
}

/// Nesting limit of objects parsed from a text payload of an input no longer configured (as the
/// inputs' default).
const RAW_TEXT_MAX_DEPTH: usize = 128;

/// Stages 1-6 of `entry`: the input pipeline, connector routing (an object routed to an output
/// leaves here to be sent), classifiers, the routing pipeline and validation.
pub fn prepare(rt: &Runtime, engine: &ScriptEngine, entry: &Entry) -> Result<Prepared, Failure> {
    let sink = JobSink::default();
    let ctx = CallContext { request_id: entry.id.clone(), cancel: None, jobs: Some(sink.clone()), scope: None };
    let id = entry.id.as_str();
    let payload = payload_of(rt, entry)?;

    // 1. The input's pipeline, or TDG's default step.
    let pipeline = match rt.inputs.get(&entry.input) {
        Some(input) => {
            input.pipeline_for(&payload).map_err(|e| failure("input", None, e.to_string()))?.map(str::to_string)
        }
        None => None,
    };
    let routed = match &pipeline {
        Some(p) => {
            let result = run(rt, engine, p, payload, &ctx).map_err(|e| script_failure("input", None, e))?;
            parse_routed(p, result).map_err(|e| script_failure("input", None, e))?
        }
        None => default_input_step(payload),
    };
    tracing::debug!(id, routing_key = ?routed.routing_key, "input step done");

    // 2. Connector routing: a key routed to an output other than the input processor leaves here.
    if let Some(key) = routed.routing_key.as_deref() {
        if let Some(output) = rt.routes.get(key) {
            if let Some(Some(_)) = rt.outputs.get(output) {
                let jobs = pushed_jobs(rt, &sink, "input", Some(key))?;
                return Ok(Prepared::Send(ToSend {
                    output: output.clone(),
                    routing_key: key.to_string(),
                    obj: routed.obj,
                    key: routed.key,
                    jobs,
                }));
            }
        }
    }

    // 3. Classifiers.
    let mut routed = routed;
    if !rt.classifiers.is_empty() {
        routed.routing_key = None;
        for pipeline in &rt.classifiers {
            let result = run(rt, engine, pipeline, to_param(&routed), &ctx)
                .map_err(|e| script_failure("classifier", None, e))?;
            let classified =
                parse_classified(pipeline, &routed, result).map_err(|e| script_failure("classifier", None, e))?;
            let done = classified.routing_key.is_some();
            routed = classified;
            if done {
                break;
            }
        }
    }
    let key = routed.routing_key.clone().unwrap_or_else(|| UNCLASSIFIED.to_string());
    tracing::debug!(id, routing_key = %key, "classified");

    // 4. The routing pipeline of the key, if any; it may change the key.
    let mut key = key;
    let mut obj = routed.obj;
    if let Some(pipeline) = rt.processor_routes.get(&key) {
        let param = to_param(&Routed {
            obj,
            routing_key: Some(key.clone()),
            priority: routed.priority,
            key: routed.key.clone(),
        });
        let result = run(rt, engine, pipeline, param, &ctx).map_err(|e| script_failure("routing", Some(&key), e))?;
        let next = parse_routed(pipeline, result).map_err(|e| script_failure("routing", Some(&key), e))?;
        if let Some(k) = next.routing_key {
            key = k;
        }
        obj = next.obj;
        tracing::debug!(id, routing_key = %key, pipeline = %pipeline, "routing pipeline done");
    }

    // 5. Storage by key.
    let Some(type_name) = rt.storage_routes.get(&key) else {
        return Err(failure("routing", Some(&key), format!("no storage or route for routing_key \"{key}\"")));
    };

    // 6. Validation against the model (defaults, default_function, auto_increment).
    let validating = Instant::now();
    let validated = rt.repository.validate(type_name, &obj, Some(engine), &ctx);
    step_done("validation", validating.elapsed());
    let obj = validated
        .map_err(|e| Failure { object: object_of(rt, type_name, &obj), ..failure("validation", Some(&key), e) })?;
    tracing::debug!(id, routing_key = %key, r#type = %type_name, "validated");

    let jobs = pushed_jobs(rt, &sink, "validation", Some(&key))?;
    Ok(Prepared::Store(ToStore { routing_key: key, type_name: type_name.clone(), obj, jobs }))
}

/// The jobs the scripts of one object pushed, each naming a pipeline or function.
fn pushed_jobs(
    rt: &Runtime,
    sink: &JobSink,
    stage: &'static str,
    key: Option<&str>,
) -> Result<Vec<(String, Value)>, Failure> {
    let jobs = std::mem::take(&mut *sink.lock().unwrap_or_else(PoisonError::into_inner));
    match jobs.iter().find(|(name, _)| !rt.pipelines.contains(name)) {
        Some((name, _)) => {
            Err(failure(stage, key, format!("push_job(\"{name}\"): no pipeline or function of that name")))
        }
        None => Ok(jobs),
    }
}

/// A send that failed, as the failure kept in the repair queue.
pub fn send_failed(item: &ToSend, error: String) -> Failure {
    failure("output", Some(&item.routing_key), error)
}

/// Stage the pushed jobs of an object in the commit that finishes it.
fn stage_jobs(rt: &Runtime, tx: &mut WriteTx<'_>, jobs: &[(String, Value)]) -> Result<(), RepairError> {
    for (name, args) in jobs {
        rt.jobs.stage_in(tx, name, args.clone())?;
    }
    Ok(())
}

/// What finishes an object's repair-queue entry in a commit of the storage actor.
#[derive(Debug)]
pub enum Finish {
    /// A validated object to store.
    Store(ToStore),
    /// An object its output has taken.
    Sent(ToSend),
}

impl Finish {
    fn routing_key(&self) -> &str {
        match self {
            Finish::Store(item) => &item.routing_key,
            Finish::Sent(item) => &item.routing_key,
        }
    }

    fn jobs(&self) -> &[(String, Value)] {
        match self {
            Finish::Store(item) => &item.jobs,
            Finish::Sent(item) => &item.jobs,
        }
    }

    fn stage(&self) -> &'static str {
        match self {
            Finish::Store(_) => "storage",
            Finish::Sent(_) => "output",
        }
    }

    /// `error` as the failure of this object's final commit.
    pub fn failure(&self, rt: &Runtime, error: String) -> Failure {
        let object = match self {
            Finish::Store(item) => object_of(rt, &item.type_name, &item.obj),
            Finish::Sent(_) => None,
        };
        Failure { object, ..failure(self.stage(), Some(self.routing_key()), error) }
    }
}

/// Stage 7: store each object (or finish a sent one) and its repair-queue entry, all of them in
/// one atomic commit (one storage batch however many objects). When that commit fails, each
/// object is committed on its own, so a bad one fails alone. Results are in the order of `items`.
pub fn store(rt: &Runtime, items: &[(&Entry, &Finish)]) -> Vec<Result<Done, Failure>> {
    if items.len() > 1 {
        if let Ok(dones) = commit(rt, items) {
            committed(rt, items);
            return items.iter().zip(dones).map(|((entry, _), done)| Ok(finished(entry, done))).collect();
        }
    }
    items
        .iter()
        .map(|pair| {
            let (entry, item) = *pair;
            let done = commit(rt, std::slice::from_ref(pair)).map_err(|e| item.failure(rt, e.to_string()))?;
            committed(rt, std::slice::from_ref(pair));
            Ok(finished(
                entry,
                done.into_iter().next().ok_or_else(|| item.failure(rt, "nothing was committed".into()))?,
            ))
        })
        .collect()
}

/// Stage every item in one write transaction and commit it: all of them or none. A panic while
/// staging (a bug) commits nothing and fails them like an error, so each item's outcome is told
/// as it is. The failpoint `storage-commit` (test builds) makes the commit fail as a full disk
/// would.
fn commit(rt: &Runtime, items: &[(&Entry, &Finish)]) -> Result<Vec<Done>, RepairError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit_unguarded(rt, items))).unwrap_or_else(|panic| {
        let text = super::panic_text(&*panic);
        tracing::error!(panic = %text, "storing panicked (a bug); nothing of that commit was written");
        Err(RepairError::Storage(crate::storage::StorageError::Unavailable(format!(
            "internal error (a bug): storing panicked: {text}"
        ))))
    })
}

fn commit_unguarded(rt: &Runtime, items: &[(&Entry, &Finish)]) -> Result<Vec<Done>, RepairError> {
    rt.db.write(|tx| {
        let mut marked = DoneBatch::default();
        let done = items
            .iter()
            .map(|(entry, item)| stage_item(rt, tx, entry, item, &mut marked))
            .collect::<Result<Vec<_>, _>>()?;
        marked.stage(tx);
        // Everything is staged; failing here drops it all, as a commit that fails does.
        fail::fail_point!("storage-commit", |message: Option<String>| Err(RepairError::Storage(
            crate::storage::StorageError::Unavailable(message.unwrap_or_else(|| "storage-commit failpoint".into()))
        )));
        Ok(done)
    })
}

/// Stage one object in `tx`: its new version (when stored), the end of its repair-queue entry
/// (or its done marker in `marked`) and the jobs its scripts pushed.
fn stage_item(
    rt: &Runtime,
    tx: &mut WriteTx<'_>,
    entry: &Entry,
    item: &Finish,
    marked: &mut DoneBatch,
) -> Result<Done, RepairError> {
    let done = match item {
        Finish::Store(item) => {
            let options = PutOptions { version: entry.version, ..PutOptions::default() };
            let put = rt.repository.put_in(tx, &item.type_name, item.obj.clone(), &options)?;
            // Its deliveries commit with it: none for an object not stored, none missing.
            if let Some(route) = rt.config.output_processor.get(&item.routing_key) {
                let stored = (item.type_name.as_str(), put.version);
                let reference = (route.store_strategy == StoreStrategy::Reference)
                    .then(|| reference_of(rt, &item.type_name, &item.obj))
                    .flatten();
                let content = reference.map_or_else(|| Content::Copy(item.obj.clone()), Content::Reference);
                rt.output_queue.stage_in(tx, route, (&item.routing_key, Some(&entry.id)), Some(stored), content)?;
            }
            Done::Stored {
                routing_key: item.routing_key.clone(),
                type_name: item.type_name.clone(),
                version: put.version,
                // For the journal only.
                key: (rt.config.logger.max_msg_in_log > 0)
                    .then(|| primary_key_of(rt, &item.type_name, &item.obj))
                    .flatten(),
            }
        }
        Finish::Sent(item) => Done::Routed { routing_key: item.routing_key.clone(), output: item.output.clone() },
    };
    rt.repair.complete_in(tx, entry, marked)?;
    stage_jobs(rt, tx, item.jobs())?;
    Ok(done)
}

/// The primary key of a validated object (one value, or an array for a composite key).
fn primary_key_of(rt: &Runtime, type_name: &str, obj: &Value) -> Option<Value> {
    let model = rt.repository.model();
    model.get(type_name)?.primary_key_value(obj)
}

/// The type and primary key of an object that failed at validation or storage, for the journal
/// (`None` when the journal is off or the object has no usable key).
fn object_of(rt: &Runtime, type_name: &str, obj: &Value) -> Option<Box<(String, Value)>> {
    if rt.config.logger.max_msg_in_log == 0 {
        return None;
    }
    primary_key_of(rt, type_name, obj).map(|key| Box::new((type_name.to_string(), key)))
}

/// `{"index": primary index, "key": its value}` of a validated object (`store_strategy:
/// reference`); `None` when its type has no index (then a copy is queued).
fn reference_of(rt: &Runtime, type_name: &str, obj: &Value) -> Option<Value> {
    let model = rt.repository.model();
    let index = model.get(type_name)?.primary_index()?;
    Some(serde_json::json!({"index": index.name, "key": primary_key_of(rt, type_name, obj)?}))
}

/// After the commit of `items`: their intake-log records settled, the repair-queue depth, and the job runner told of new jobs.
fn committed(rt: &Runtime, items: &[(&Entry, &Finish)]) {
    rt.repair.removed(items.len());
    for (entry, _) in items {
        if let Some(unsettled) = &entry.unsettled {
            unsettled.settle();
        }
    }
    let replicated =
        |item: &Finish| matches!(item, Finish::Store(s) if rt.config.output_processor.contains_key(&s.routing_key));
    if items.iter().any(|(_, item)| replicated(item)) {
        rt.output_queue.ring();
    }
    if items.iter().any(|(_, item)| !item.jobs().is_empty()) {
        rt.jobs.ring();
    }
}

/// Count and log a finished object.
fn finished(entry: &Entry, done: Done) -> Done {
    match &done {
        Done::Stored { routing_key, type_name, version, .. } => {
            metrics().objects_stored.with_label_values(&[type_name]).inc();
            tracing::debug!(id = %entry.id, routing_key = %routing_key, r#type = %type_name, version, "stored");
        }
        Done::Routed { routing_key, output } => {
            metrics().objects_routed.with_label_values(&[output]).inc();
            tracing::debug!(id = %entry.id, routing_key = %routing_key, output = %output, "routed");
        }
    }
    done
}
