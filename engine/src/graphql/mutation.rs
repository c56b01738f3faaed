//! Mutations, one root field per aggregate as in TDG: `User(insert: {...})` inserts or replaces
//! by primary key (`only_if_version`, `if_not_exists`); `User(id: 1, update: [["set", "username",
//! "x"]])`; `User(id: 1, delete: true)` (a tombstone) or `permanent_delete: true` (every
//! version). `version` writes with an explicit version (older than the current one: into
//! history; equal to a stored one: replacing it); `dont_skip_deleted` makes update and delete
//! match deleted objects too. Each returns the objects it wrote.

use super::names::gql_name;
use super::node::list;
use super::query::{filter_args, filter_of, page_options};
use super::types::{insert_type_name, with_filter_args, JSON, LONG};
use super::{engine_of, repo_error, require_read, require_write};
use crate::model::TypeDef;
use crate::repository::RepoError;
use crate::storage::PutOptions;
use async_graphql::dynamic::{Field, FieldFuture, InputValue, ObjectAccessor, TypeRef};
use async_graphql::ErrorExtensions;
use ferrogrid_sandbox::{CallContext, JobSink};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::sync::PoisonError;

fn flag(args: &ObjectAccessor<'_>, name: &str) -> async_graphql::Result<bool> {
    Ok(match args.get(name).filter(|v| !v.is_null()) {
        Some(v) => v.boolean()?,
        None => false,
    })
}

fn bad_request(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", "BAD_REQUEST"))
}

/// A version argument: a number of 0 or more, or none.
pub(crate) fn version_arg(args: &ObjectAccessor<'_>, name: &str) -> async_graphql::Result<Option<u64>> {
    match args.get(name).filter(|v| !v.is_null()) {
        Some(v) => match v.i64() {
            Ok(n) if n >= 0 => Ok(Some(n.unsigned_abs())),
            _ => Err(bad_request(format!("{name}: a version is a number of 0 or more"))),
        },
        None => Ok(None),
    }
}

/// A mutation does one thing, with the arguments of that thing: arguments it would leave
/// unused are refused, not ignored (`User(id: 2, insert: {id: 1})` inserting 1, or `update`
/// with `delete: true` only updating).
fn check_arguments(t: &TypeDef, args: &ObjectAccessor<'_>) -> async_graphql::Result<()> {
    // A flag given as false is as good as not given (clients that send every variable).
    let given = |name: &str| args.get(name).is_some_and(|v| !v.is_null() && v.boolean().ok() != Some(false));
    let mut actions: Vec<&str> = ["insert", "update"].into_iter().filter(|a| given(a)).collect();
    if flag(args, "delete")? || flag(args, "permanent_delete")? {
        actions.push("delete");
    }
    if actions.len() > 1 {
        return Err(bad_request(format!(
            "{}: one of insert, update and delete at a time, not {}",
            gql_name(&t.name),
            actions.join(" and ")
        )));
    }
    let unused: Vec<String> = match actions.first() {
        Some(&"insert") => filter_args(t)
            .into_iter()
            .map(|f| f.arg)
            .chain(["first", "after", "dont_skip_deleted"].map(String::from))
            .filter(|a| given(a))
            .collect(),
        _ => ["if_not_exists"].into_iter().filter(|a| given(a)).map(String::from).collect(),
    };
    match unused.first() {
        Some(arg) => Err(bad_request(format!(
            "{}: {arg} does nothing with {} (insert takes the whole object; if_not_exists is an insert's)",
            gql_name(&t.name),
            actions.first().copied().unwrap_or("no insert")
        ))),
        None => Ok(()),
    }
}

/// The root mutation field of aggregate `t`.
pub fn root_field(t: &TypeDef) -> Field {
    let type_def = Arc::new(t.clone());
    let field = Field::new(gql_name(&t.name), TypeRef::named_nn_list(gql_name(&t.name)), move |ctx| {
        let t = type_def.clone();
        FieldFuture::new(async move {
            require_write(&ctx, &t.name)?;
            let engine = engine_of(&ctx)?;
            let args = &ctx.args;
            // An update or delete selects stored objects by a filter and answers them: it reads
            // as well. An insert answers what the caller sent, except with `if_not_exists`,
            // which answers the object already stored.
            if args.get("insert").filter(|v| !v.is_null()).is_none() || flag(args, "if_not_exists")? {
                require_read(&ctx, &t.name)?;
            }
            check_arguments(&t, args)?;
            let only_if_version = version_arg(args, "only_if_version")?;
            let version = version_arg(args, "version")?;
            if let Some(insert) = args.get("insert").filter(|v| !v.is_null()) {
                let object = insert.as_value().clone().into_json()?;
                let options = PutOptions { only_if_version, if_not_exists: flag(args, "if_not_exists")?, version };
                if options.if_not_exists && options.only_if_version.is_some() {
                    return Err(bad_request("if_not_exists and only_if_version exclude each other"));
                }
                let repository = engine.runtime().repository.clone();
                let jobs = engine.runtime().jobs.clone();
                let type_name = t.name.clone();
                // Validation may run default_function scripts: on a script worker. Jobs they
                // push are committed with the object, or not at all.
                let stored = engine
                    .on_worker(move |_, script_engine| {
                        let sink = JobSink::default();
                        let ctx = CallContext {
                            request_id: "graphql".into(),
                            cancel: None,
                            jobs: Some(sink.clone()),
                            scope: None,
                        };
                        let object = repository
                            .validate(&type_name, &object, Some(script_engine), &ctx)
                            .map_err(RepoError::Invalid)?;
                        let pushed = std::mem::take(&mut *sink.lock().unwrap_or_else(PoisonError::into_inner));
                        if let Some((name, _)) = pushed.iter().find(|(name, _)| !repository.is_job(name)) {
                            return Err(RepoError::BadRequest(format!(
                                "push_job(\"{name}\"): no pipeline or function of that name"
                            )));
                        }
                        let stored = repository.put_with(&type_name, object, &options, |tx| {
                            for (name, args) in &pushed {
                                jobs.stage_in(tx, name, args.clone())?;
                            }
                            Ok::<_, RepoError>(())
                        })?;
                        if !pushed.is_empty() {
                            jobs.ring();
                        }
                        Ok(stored)
                    })
                    .await
                    .map_err(|e| super::coded(e.to_string(), "INTERNAL"))?
                    .map_err(repo_error)?;
                return Ok(Some(list(vec![stored])));
            }
            let filter = Value::Array(filter_of(&filter_args(&t), args)?);
            let mut options = Map::new();
            page_options(args, &mut options)?;
            if let Some(v) = only_if_version {
                options.insert("only_if_version".into(), json!(v));
            }
            if let Some(v) = version {
                options.insert("version".into(), json!(v));
            }
            if flag(args, "dont_skip_deleted")? {
                options.insert("dont_skip_deleted".into(), json!(true));
            }
            let repository = &engine.runtime().repository;
            if let Some(update) = args.get("update").filter(|v| !v.is_null()) {
                let updaters = update.as_value().clone().into_json()?;
                let updated =
                    repository.update(&t.name, &filter, &updaters, &Value::Object(options)).map_err(repo_error)?;
                return Ok(Some(list(updated)));
            }
            let permanent = flag(args, "permanent_delete")?;
            if flag(args, "delete")? || permanent {
                if permanent {
                    options.insert("all_versions".into(), json!(true));
                    options.insert("permanent_delete".into(), json!(true));
                }
                let deleted = repository.delete(&t.name, &filter, &Value::Object(options)).map_err(repo_error)?;
                return Ok(Some(list(deleted)));
            }
            Err(bad_request(format!(
                "{}: say what to do: insert, update, delete or permanent_delete",
                gql_name(&t.name)
            )))
        })
    });
    with_filter_args(field, t)
        .argument(InputValue::new("insert", TypeRef::named(insert_type_name(&t.name))))
        .argument(InputValue::new("update", TypeRef::List(Box::new(TypeRef::named_list(JSON)))))
        .argument(InputValue::new("delete", TypeRef::named(TypeRef::BOOLEAN)))
        .argument(InputValue::new("permanent_delete", TypeRef::named(TypeRef::BOOLEAN)))
        .argument(InputValue::new("only_if_version", TypeRef::named(LONG)))
        .argument(InputValue::new("if_not_exists", TypeRef::named(TypeRef::BOOLEAN)))
        .argument(InputValue::new("version", TypeRef::named(LONG)))
        .argument(InputValue::new("dont_skip_deleted", TypeRef::named(TypeRef::BOOLEAN)))
        .description(format!("Insert, update or delete {} objects", t.name))
}
