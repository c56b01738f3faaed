//! The stages of the input processor.

use crate::metrics::metrics;
use crate::repair::{Entry, Failure};
use crate::runtime::Runtime;
use crate::storage::PutOptions;
use ferrogrid_pipelines::steps::{default_input_step, parse_classified, parse_routed, to_param, UNCLASSIFIED};
use ferrogrid_pipelines::{PipelineError, Routed};
use ferrogrid_sandbox::{CallContext, ScriptEngine};
use serde_json::Value;
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
    }
}

fn failure(stage: &'static str, routing_key: Option<&str>, error: String) -> Failure {
    Failure { stage, function: None, routing_key: routing_key.map(str::to_string), error }
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
    let result = rt.pipelines.run(engine, name, param, ctx);
    metrics().pipeline_seconds.with_label_values(&[name]).observe(started.elapsed().as_secs_f64());
    result
}

/// Process `entry` to its end. On success the repair-queue entry is gone (same commit as the
/// store); on failure the caller records the [`Failure`] in the entry.
pub fn process(rt: &Runtime, engine: &ScriptEngine, entry: &Entry) -> Result<Done, Failure> {
    let ctx = CallContext { request_id: entry.id.clone(), cancel: None };
    let id = entry.id.as_str();

    // 1. The input's pipeline, or TDG's default step.
    let pipeline = rt.inputs.get(&entry.input).and_then(|i| i.pipeline().map(str::to_string));
    let routed = match &pipeline {
        Some(p) => {
            let result =
                run(rt, engine, p, entry.payload.clone(), &ctx).map_err(|e| script_failure("input", None, e))?;
            parse_routed(p, result).map_err(|e| script_failure("input", None, e))?
        }
        None => default_input_step(entry.payload.clone()),
    };
    tracing::debug!(id, routing_key = ?routed.routing_key, "input step done");

    // 2. Connector routing: a key routed to an output other than the input processor leaves here.
    if let Some(key) = routed.routing_key.as_deref() {
        if let Some(output_name) = rt.routes.get(key) {
            if let Some(Some(output)) = rt.outputs.get(output_name) {
                output.send(&routed.obj, key).map_err(|e| failure("output", Some(key), e.to_string()))?;
                rt.db
                    .write(|tx| rt.repair.complete_in(tx, entry))
                    .map_err(|e| failure("output", Some(key), e.to_string()))?;
                rt.repair.removed(1);
                metrics().objects_routed.with_label_values(&[output_name]).inc();
                tracing::debug!(id, routing_key = key, output = %output_name, "routed");
                return Ok(Done::Routed { routing_key: key.to_string(), output: output_name.clone() });
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
        let param = to_param(&Routed { obj, routing_key: Some(key.clone()), priority: routed.priority });
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
    let obj = rt
        .repository
        .validate(type_name, &obj, Some(engine), &ctx)
        .map_err(|e| failure("validation", Some(&key), e))?;
    tracing::debug!(id, routing_key = %key, r#type = %type_name, "validated");

    // 7. Store + remove the repair-queue entry, atomically.
    let stored = rt
        .repository
        .put_with(type_name, obj, &PutOptions::default(), |tx| rt.repair.complete_in(tx, entry))
        .map_err(|e| failure("storage", Some(&key), e.to_string()))?;
    rt.repair.removed(1);
    metrics().objects_stored.with_label_values(&[type_name]).inc();
    tracing::debug!(id, routing_key = %key, r#type = %type_name, version = stored.version, "stored");
    Ok(Done::Stored { routing_key: key, type_name: type_name.clone(), version: stored.version })
}
