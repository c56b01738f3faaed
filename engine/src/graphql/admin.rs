//! The admin schema (`POST /graphql` with the header `schema: admin`), with TDG's names:
//! `repair_list`, `repair(id)`, `repair_all`, `delete_from_repair_queue(id)`,
//! `clear_repair_queue`, `model`, `config { hard_limits }` (read and update) and
//! `maintenance { get_aggregates }`, `tasks { get_list, start, stop, forget }`,
//! `jobs { get_list, try_again, try_again_all, delete_job, delete_all_jobs }`,
//! `output_processor { ... }`. Every action on parked work goes to the repair-queue actor, as
//! the REST admin API's do. Each field needs the action of the REST route that does the same
//! (`repair_list`: `repair_read`, `tasks { start }`: `tasks_operate`, ...), on top of the
//! schema's `admin_graphql_read` / `admin_graphql_write`.

use super::admin_security::need;
use super::engine_of;
use super::node::gql_value;
use super::types::{JSON, LONG};
use crate::journal::Target;
use crate::parked::{parse_time, ParkedFilter};
use crate::processor::{Processor, Queue, RetryError, Which};
use crate::scheduler::{Scheduler, TaskError};
use crate::security::Action as A;
use crate::storage::HardLimits;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, ObjectAccessor, Schema, TypeRef};
use async_graphql::{ErrorExtensions, Value as GqlValue};
use serde_json::Value;
use std::sync::Arc;

fn error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

fn retry_error(e: RetryError) -> async_graphql::Error {
    let code = match &e {
        RetryError::NotFound(_) => "NOT_FOUND",
        RetryError::Busy(_) | RetryError::Refused(_) => "CONFLICT",
        RetryError::Draining => "UNAVAILABLE",
        RetryError::Repair(_) | RetryError::Internal(_) => "INTERNAL",
    };
    error(code, e.to_string())
}

/// The repair-queue filter of `args` (`filter` text, `from`/`to` times, `first`, `after`).
fn list_filter(args: &ObjectAccessor<'_>) -> async_graphql::Result<ParkedFilter> {
    let text = |name: &str| -> async_graphql::Result<Option<String>> {
        Ok(match args.get(name).filter(|v| !v.is_null()) {
            Some(v) => Some(v.string()?.to_string()).filter(|s| !s.is_empty()),
            None => None,
        })
    };
    let time = |name: &str| -> async_graphql::Result<_> {
        text(name)?.map(|t| parse_time(&t).map_err(|e| error("BAD_REQUEST", format!("{name}: {e}")))).transpose()
    };
    let first = match args.get("first").filter(|v| !v.is_null()) {
        Some(v) => usize::try_from(v.i64()?.clamp(1, 1000)).unwrap_or(100),
        None => 100,
    };
    Ok(ParkedFilter { text: text("filter")?, from: time("from")?, to: time("to")?, first, after: text("after")? })
}

fn with_filter(field: Field, paged: bool) -> Field {
    let field = field
        .argument(InputValue::new("filter", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("from", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("to", TypeRef::named(TypeRef::STRING)));
    if paged {
        field
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
    } else {
        field
    }
}

/// A field of a JSON object passed down as the parent value.
pub(super) fn json_field(name: &'static str, ty: TypeRef) -> Field {
    Field::new(name, ty, move |ctx| {
        let value = ctx.parent_value.downcast_ref::<Value>().and_then(|v| v.get(name)).filter(|v| !v.is_null());
        FieldFuture::from_value(value.map(gql_value))
    })
}

fn repair_entry_type() -> Object {
    let string = || TypeRef::named(TypeRef::STRING);
    let string_nn = || TypeRef::named_nn(TypeRef::STRING);
    Object::new("RepairEntry")
        .description("An object in the repair queue (TDG 2.8)")
        .field(json_field("id", string_nn()))
        .field(json_field("status", string_nn()))
        .field(json_field("input", string_nn()))
        .field(json_field("source", string_nn()))
        .field(json_field("routing_key", string()))
        .field(json_field("error", string()))
        .field(json_field("stage", string()))
        .field(json_field("function", string()))
        .field(json_field("attempts", TypeRef::named_nn(TypeRef::INT)))
        .field(json_field("created_at", string_nn()))
        .field(json_field("updated_at", string_nn()))
        .field(json_field("payload", TypeRef::named(JSON)))
        .field(json_field("history", TypeRef::named(JSON)))
}

fn limits_value(limits: HardLimits) -> FieldValue<'static> {
    FieldValue::owned_any(serde_json::json!({"scanned": limits.scanned, "returned": limits.returned}))
}

fn hard_limits_type() -> Object {
    Object::new("HardLimits")
        .description("Limits every repository request runs under")
        .field(json_field("scanned", TypeRef::named_nn(LONG)))
        .field(json_field("returned", TypeRef::named_nn(LONG)))
}

/// A namespace field (`config`, `maintenance`): an object whose fields do the work.
pub(super) fn namespace(name: &'static str, ty: &'static str) -> Field {
    Field::new(name, TypeRef::named_nn(ty), |_| FieldFuture::Value(Some(FieldValue::owned_any(()))))
}

fn query() -> Object {
    let repair_list = with_filter(
        Field::new("repair_list", TypeRef::named_nn_list_nn("RepairEntry"), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::RepairRead)?;
                let engine = engine_of(&ctx)?;
                let filter = list_filter(&ctx.args)?;
                let (items, _) =
                    engine.repairs().page(Queue::Repair, filter).await.map_err(|e| error("INTERNAL", e.to_string()))?;
                let values =
                    items.into_iter().map(|e| FieldValue::owned_any(serde_json::to_value(e).unwrap_or_default()));
                Ok(Some(FieldValue::list(values)))
            })
        })
        .description("Entries of the repair queue, newest first"),
        true,
    );
    let root = super::admin_security::query_fields().into_iter().fold(Object::new("Query"), Object::field);
    root.field(repair_list)
        .field(
            Field::new("model", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    need(&ctx, A::ModelRead)?;
                    let engine = engine_of(&ctx)?;
                    let model = engine.runtime().repository.model();
                    Ok(Some(GqlValue::from(serde_json::to_string_pretty(model.source()).unwrap_or_default())))
                })
            })
            .description("The domain model (Avro schema with TDG's extensions) as loaded"),
        )
        .field(namespace("config", "AdminConfig"))
        .field(namespace("maintenance", "Maintenance"))
        .field(namespace("tasks", "Tasks"))
        .field(namespace("jobs", "Jobs"))
        .field(namespace("output_processor", "OutputProcessor"))
        .field(namespace("expiration", "Expiration"))
}

fn mutation() -> Object {
    let id_arg = || InputValue::new("id", TypeRef::named_nn(TypeRef::STRING));
    let root = super::admin_security::mutation_fields().into_iter().fold(Object::new("Mutation"), Object::field);
    root.field(
        Field::new("repair", TypeRef::named_nn(JSON), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::RepairOperate)?;
                let engine = engine_of(&ctx)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                let by = operator_name(&ctx);
                let target = Target::of(engine.repairs(), Queue::Repair, &id).await;
                // Before the retry, so that the timeline shows it before what the retry did.
                if let Some(t) = &target {
                    t.record(&engine.runtime(), "retried", &by, None);
                }
                let outcome = engine.repairs().retry_now(&id, None).await.map_err(|e| {
                    if let Some(t) = &target {
                        t.record(&engine.runtime(), "the retry was refused", &by, Some(&e.to_string()));
                    }
                    retry_error(e)
                })?;
                Ok(Some(gql_value(&serde_json::to_value(outcome).unwrap_or_default())))
            })
        })
        .argument(id_arg())
        .description("Try an entry again with the current configuration; answers how it ended"),
    )
    .field(with_filter(
        Field::new("repair_all", TypeRef::named_nn(TypeRef::INT), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::RepairOperate)?;
                let engine = engine_of(&ctx)?;
                let filter = list_filter(&ctx.args)?;
                let n = engine.repairs().retry(Queue::Repair, Which::Matching(filter)).await.map_err(retry_error)?;
                Ok(Some(GqlValue::from(n as u64)))
            })
        })
        .description("Try again every failed entry matching the filter (in the background); answers how many"),
        false,
    ))
    .field(
        Field::new("delete_from_repair_queue", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::RepairOperate)?;
                let engine = engine_of(&ctx)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                let target = Target::of(engine.repairs(), Queue::Repair, &id).await;
                let deleted =
                    engine.repairs().delete(Queue::Repair, Which::One(id.clone())).await.map_err(retry_error)?;
                if let (Some(t), true) = (target, deleted > 0) {
                    t.record(&engine.runtime(), "deleted from the repair queue", &operator_name(&ctx), None);
                }
                Ok(Some(GqlValue::from(deleted > 0)))
            })
        })
        .argument(id_arg())
        .description("Delete one entry; false when there is none"),
    )
    .field(with_filter(
        Field::new("clear_repair_queue", TypeRef::named_nn(TypeRef::INT), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::RepairOperate)?;
                let engine = engine_of(&ctx)?;
                let filter = list_filter(&ctx.args)?;
                let n = engine.repairs().delete(Queue::Repair, Which::Matching(filter)).await.map_err(retry_error)?;
                Ok(Some(GqlValue::from(n as u64)))
            })
        })
        .description("Delete every entry matching the filter (entries being processed stay); answers how many"),
        false,
    ))
    .field(namespace("config", "AdminConfigMutation"))
    .field(namespace("tasks", "TasksMutation"))
    .field(namespace("jobs", "JobsMutation"))
    .field(namespace("output_processor", "OutputProcessorMutation"))
    .field(namespace("expiration", "ExpirationMutation"))
}

fn storage_error(e: crate::storage::StorageError) -> async_graphql::Error {
    error("INTERNAL", e.to_string())
}

/// TDG's `expiration { get_list }` and `expiration { set, cleanup }`.
fn expiration_types() -> [Object; 2] {
    let type_arg = || InputValue::new("type", TypeRef::named_nn(TypeRef::STRING));
    let read = Object::new("Expiration").field(
        Field::new("get_list", TypeRef::named_nn(JSON), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::ConfigRead)?;
                let rt = super::engine_of(&ctx)?.runtime();
                let rules = blocking(move || {
                    crate::lifecycle::expiration_rules(&rt.db, &rt.config.expiration).map_err(storage_error)
                })
                .await?;
                Ok(json_result(rules))
            })
        })
        .description("The expiration rules in force (type, lifetime_hours, keep_version_count, delay_sec, source)"),
    );
    let write = Object::new("ExpirationMutation")
        .field(
            Field::new("set", TypeRef::named_nn(JSON), |ctx| {
                FieldFuture::new(async move {
                    need(&ctx, A::ConfigApply)?;
                    let rt = super::engine_of(&ctx)?.runtime();
                    let type_name = string_arg(&ctx, "type")?;
                    let mut rule = serde_json::json!({"type": type_name});
                    for name in ["lifetime_hours", "keep_version_count", "delay_sec"] {
                        if let Some(v) = ctx.args.get(name).filter(|v| !v.is_null()) {
                            rule[name] = v.as_value().clone().into_json()?;
                        }
                    }
                    let rule: crate::config::ExpirationRule =
                        serde_json::from_value(rule).map_err(|e| error("BAD_REQUEST", e.to_string()))?;
                    rule.validate().map_err(|e| error("BAD_REQUEST", e))?;
                    if rt.repository.spec_of(&rule.type_name).is_none() {
                        return Err(error(
                            "BAD_REQUEST",
                            format!("\"{}\" is not an aggregate of the model", rule.type_name),
                        ));
                    }
                    let set = rule.clone();
                    blocking(move || crate::lifecycle::set_expiration(&rt.db, &set).map_err(storage_error)).await?;
                    Ok(json_result(rule))
                })
            })
            .argument(type_arg())
            .argument(InputValue::new("lifetime_hours", TypeRef::named(TypeRef::FLOAT)))
            .argument(InputValue::new("keep_version_count", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("delay_sec", TypeRef::named(LONG)))
            .description("Set the expiration of a type (it outlives restarts and applies until cleanup)"),
        )
        .field(
            Field::new("cleanup", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| {
                FieldFuture::new(async move {
                    need(&ctx, A::ConfigApply)?;
                    let rt = super::engine_of(&ctx)?.runtime();
                    let type_name = string_arg(&ctx, "type")?;
                    let had = blocking(move || {
                        crate::lifecycle::cleanup_expiration(&rt.db, &type_name).map_err(storage_error)
                    })
                    .await?;
                    Ok(Some(GqlValue::from(had)))
                })
            })
            .argument(type_arg())
            .description("Forget the expiration set for a type (the configuration's rule applies again)"),
        );
    [read, write]
}

fn scheduler_of<'a>(ctx: &async_graphql::dynamic::ResolverContext<'a>) -> async_graphql::Result<Arc<Scheduler>> {
    Ok(ctx.data::<Arc<Scheduler>>()?.clone())
}

fn task_error(e: TaskError) -> async_graphql::Error {
    let code = match &e {
        TaskError::NotFound(_) => "NOT_FOUND",
        TaskError::Running(_) | TaskError::NotEnded(_) => "CONFLICT",
        TaskError::Stopped => "UNAVAILABLE",
        TaskError::Storage(_) | TaskError::Thread(_) => "INTERNAL",
    };
    error(code, e.to_string())
}

/// Run a blocking call (scheduler, job queue) off the reactor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> async_graphql::Result<T> + Send + 'static,
) -> async_graphql::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| error("INTERNAL", e.to_string()))?
}

fn json_result(value: impl serde::Serialize) -> Option<GqlValue> {
    Some(gql_value(&serde_json::to_value(value).unwrap_or_default()))
}

fn string_arg(ctx: &async_graphql::dynamic::ResolverContext<'_>, name: &str) -> async_graphql::Result<String> {
    Ok(ctx.args.try_get(name)?.string()?.to_string())
}

fn filter_arg(ctx: &async_graphql::dynamic::ResolverContext<'_>) -> async_graphql::Result<Option<String>> {
    Ok(match ctx.args.get("filter").filter(|v| !v.is_null()) {
        Some(v) => Some(v.string()?.to_string()).filter(|s| !s.is_empty()),
        None => None,
    })
}

/// TDG's `tasks { ... }` and `jobs { ... }` namespaces, read and write.
fn task_and_job_types() -> [Object; 4] {
    let name_arg = || InputValue::new("name", TypeRef::named_nn(TypeRef::STRING));
    let tasks = Object::new("Tasks").field(
        Field::new("get_list", TypeRef::named_nn(JSON), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::TasksRead)?;
                let scheduler = scheduler_of(&ctx)?;
                let list = blocking(move || scheduler.list().map_err(task_error)).await?;
                Ok(json_result(list))
            })
        })
        .description("Every task with its kind, schedule, state, next run and recorded runs"),
    );
    let tasks_mutation = Object::new("TasksMutation")
        .field(
            Field::new("start", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    need(&ctx, A::TasksOperate)?;
                    let (scheduler, name) = (scheduler_of(&ctx)?, string_arg(&ctx, "name")?);
                    let run = blocking(move || scheduler.start_task(&name).map_err(task_error)).await?;
                    Ok(Some(GqlValue::from(run)))
                })
            })
            .argument(name_arg())
            .description("Run a task now (clears a stop); answers the run id"),
        )
        .field(
            Field::new("stop", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| {
                FieldFuture::new(async move {
                    need(&ctx, A::TasksOperate)?;
                    let (scheduler, name) = (scheduler_of(&ctx)?, string_arg(&ctx, "name")?);
                    blocking(move || scheduler.stop_task(&name).map_err(task_error)).await?;
                    Ok(Some(GqlValue::from(true)))
                })
            })
            .argument(name_arg())
            .description("Stop a task: its run is cancelled and it is not scheduled until started"),
        )
        .field(
            Field::new("forget", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| {
                FieldFuture::new(async move {
                    need(&ctx, A::TasksOperate)?;
                    let (scheduler, id) = (scheduler_of(&ctx)?, string_arg(&ctx, "id")?);
                    let forgotten = blocking(move || scheduler.forget(&id).map_err(task_error)).await?;
                    Ok(Some(GqlValue::from(forgotten)))
                })
            })
            .argument(id_arg())
            .description("Forget a finished run; false when there is none"),
        );
    let jobs = Object::new("Jobs")
        .field(list_field(Queue::FailedJobs, "The failed jobs (error, args, attempts), oldest first"));
    let jobs_mutation = Object::new("JobsMutation")
        .field(by_id(
            "try_again",
            Queue::FailedJobs,
            Action::Retry,
            "Queue a failed job again; false when there is none",
        ))
        .field(by_filter(
            "try_again_all",
            Queue::FailedJobs,
            Action::Retry,
            "Queue every failed job matching the filter again; how many",
        ))
        .field(by_id("delete_job", Queue::FailedJobs, Action::Delete, "Delete a failed job; false when there is none"))
        .field(by_filter(
            "delete_all_jobs",
            Queue::FailedJobs,
            Action::Delete,
            "Delete every failed job matching the filter; how many",
        ));
    [tasks, tasks_mutation, jobs, jobs_mutation]
}

/// The role-model action reading (`operate` false) or operating a queue of parked work needs.
fn queue_action(queue: Queue, operate: bool) -> A {
    match (queue, operate) {
        (Queue::Repair, false) => A::RepairRead,
        (Queue::Repair, true) => A::RepairOperate,
        (Queue::OutputRepair, false) => A::OutputRepairRead,
        (Queue::OutputRepair, true) => A::OutputRepairOperate,
        (Queue::FailedJobs, false) => A::JobsRead,
        (Queue::FailedJobs, true) => A::JobsOperate,
    }
}

fn id_arg() -> InputValue {
    InputValue::new("id", TypeRef::named_nn(TypeRef::STRING))
}

fn filter_input() -> InputValue {
    InputValue::new("filter", TypeRef::named(TypeRef::STRING))
}

/// What an operator does to parked items.
#[derive(Clone, Copy)]
enum Action {
    Retry,
    Delete,
}

async fn act(engine: &Processor, queue: Queue, action: Action, which: Which) -> async_graphql::Result<usize> {
    let done = match action {
        Action::Retry => engine.repairs().retry(queue, which).await,
        Action::Delete => engine.repairs().delete(queue, which).await,
    };
    done.map_err(retry_error)
}

/// `get_list(filter)` of a queue of parked work, oldest first.
fn list_field(queue: Queue, description: &'static str) -> Field {
    Field::new("get_list", TypeRef::named_nn(JSON), move |ctx| {
        FieldFuture::new(async move {
            need(&ctx, queue_action(queue, false))?;
            let engine = engine_of(&ctx)?;
            let filter = ParkedFilter::text(filter_arg(&ctx)?.as_deref());
            let list = engine.repairs().all(queue, filter).await.map_err(retry_error)?;
            Ok(json_result(list))
        })
    })
    .argument(filter_input())
    .description(description)
}

/// Who an operator's action is recorded for in the object journal.
fn operator_name(ctx: &async_graphql::dynamic::ResolverContext<'_>) -> String {
    super::caller(ctx).map_or_else(|_| "-".to_string(), |p| p.subject.clone())
}

/// An action on one entry of a queue of parked work, by id; false when there is none.
fn by_id(name: &'static str, queue: Queue, action: Action, description: &'static str) -> Field {
    Field::new(name, TypeRef::named_nn(TypeRef::BOOLEAN), move |ctx| {
        FieldFuture::new(async move {
            need(&ctx, queue_action(queue, true))?;
            let engine = engine_of(&ctx)?;
            let id = string_arg(&ctx, "id")?;
            // An action on a parked delivery goes in its object's journal, as from the REST API.
            let target = match queue {
                Queue::OutputRepair => Target::of(engine.repairs(), queue, &id).await,
                Queue::Repair | Queue::FailedJobs => None,
            };
            let (by, rt) = (operator_name(&ctx), engine.runtime());
            let what = match action {
                Action::Retry => "retried the delivery",
                Action::Delete => "deleted the delivery",
            };
            if let (Some(t), Action::Retry) = (&target, action) {
                t.record(&rt, what, &by, None);
            }
            let done = act(engine, queue, action, Which::One(id)).await;
            match (&target, action, &done) {
                (Some(t), Action::Retry, Err(e)) => {
                    t.record(&rt, "the delivery's retry was refused", &by, Some(&e.message))
                }
                (Some(t), Action::Delete, Ok(n)) if *n > 0 => t.record(&rt, what, &by, None),
                _ => {}
            }
            Ok(Some(GqlValue::from(done? > 0)))
        })
    })
    .argument(id_arg())
    .description(description)
}

/// An action on every entry of a queue of parked work matching the filter; how many.
fn by_filter(name: &'static str, queue: Queue, action: Action, description: &'static str) -> Field {
    Field::new(name, TypeRef::named_nn(TypeRef::INT), move |ctx| {
        FieldFuture::new(async move {
            need(&ctx, queue_action(queue, true))?;
            let engine = engine_of(&ctx)?;
            let filter = ParkedFilter::text(filter_arg(&ctx)?.as_deref());
            let n = act(engine, queue, action, Which::Matching(filter)).await?;
            Ok(Some(GqlValue::from(n as u64)))
        })
    })
    .argument(filter_input())
    .description(description)
}

/// TDG's `output_processor { ... }` namespace: the output repair queue.
fn output_processor_types() -> [Object; 2] {
    let queue = Queue::OutputRepair;
    let read = Object::new("OutputProcessor").field(list_field(
        queue,
        "The output repair queue (output, status, error with the peer's answer, attempts), oldest first",
    ));
    let write = Object::new("OutputProcessorMutation")
        .field(by_id("try_again", queue, Action::Retry, "Send a parked object again; false when there is none"))
        .field(by_filter(
            "try_again_all",
            queue,
            Action::Retry,
            "Send every parked object matching the filter again; how many",
        ))
        .field(by_id("delete_from_list", queue, Action::Delete, "Delete a parked object; false when there is none"))
        .field(by_filter(
            "clear_list",
            queue,
            Action::Delete,
            "Delete every parked object matching the filter; how many",
        ));
    [read, write]
}

fn config_types() -> [Object; 3] {
    let read = Object::new("AdminConfig").field(Field::new("hard_limits", TypeRef::named_nn("HardLimits"), |ctx| {
        FieldFuture::new(async move {
            need(&ctx, A::ConfigRead)?;
            Ok(Some(limits_value(engine_of(&ctx)?.runtime().repository.hard_limits())))
        })
    }));
    let write = Object::new("AdminConfigMutation").field(
        Field::new("hard_limits", TypeRef::named_nn("HardLimits"), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::ConfigApply)?;
                let repository = &engine_of(&ctx)?.runtime().repository;
                let mut limits = repository.hard_limits();
                for (name, slot) in [("scanned", &mut limits.scanned), ("returned", &mut limits.returned)] {
                    if let Some(v) = ctx.args.get(name).filter(|v| !v.is_null()) {
                        *slot =
                            v.u64().ok().filter(|n| *n > 0).ok_or_else(|| {
                                error("BAD_REQUEST", format!("hard_limits.{name}: a positive integer"))
                            })?;
                    }
                }
                repository.set_hard_limits(limits);
                tracing::info!(
                    scanned = limits.scanned,
                    returned = limits.returned,
                    "hard limits changed (until restart)"
                );
                Ok(Some(limits_value(limits)))
            })
        })
        .argument(InputValue::new("scanned", TypeRef::named(LONG)))
        .argument(InputValue::new("returned", TypeRef::named(LONG)))
        .description("Change the limits until the engine restarts (config.yml keeps its own)"),
    );
    let maintenance = Object::new("Maintenance").field(
        Field::new("get_aggregates", TypeRef::named_nn_list_nn(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move {
                need(&ctx, A::ModelRead)?;
                let model = engine_of(&ctx)?.runtime().repository.model();
                let names: Vec<GqlValue> = model.aggregates().map(|t| GqlValue::from(t.name.clone())).collect();
                Ok(Some(GqlValue::List(names)))
            })
        })
        .description("The names of the aggregate types"),
    );
    [read, write, maintenance]
}

/// The admin schema, without the engine (add it with `.data(engine)`).
pub fn admin_schema() -> async_graphql::dynamic::SchemaBuilder {
    let mut builder = Schema::build("Query", Some("Mutation"), None);
    for scalar in super::types::scalars() {
        builder = builder.register(scalar);
    }
    for object in
        config_types().into_iter().chain(task_and_job_types()).chain(output_processor_types()).chain(expiration_types())
    {
        builder = builder.register(object);
    }
    builder = super::admin_security::register(builder);
    builder.register(repair_entry_type()).register(hard_limits_type()).register(query()).register(mutation())
}
