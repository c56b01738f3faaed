//! GraphQL (`POST /graphql`): the data schema generated from the model — a query and a mutation
//! root field per aggregate, object types for every record, relations as fields — and the
//! services of the configuration; and the admin schema (`schema: admin` header). Built with async-graphql's dynamic schema when the engine
//! starts (and by `ferrogrid check`); resolvers reach the engine through the schema's data.

mod admin;
mod admin_security;
mod loader;
mod mutation;
mod names;
mod node;
mod query;
mod services;
mod timing;
mod types;

pub use admin::admin_schema;
pub use admin_security::RequestSession;
pub use loader::relation_loader;
pub use names::{gql_name, is_valid};
pub use timing::Timing;
pub use types::insert_type_name;

use crate::config::{Config, ServiceKind};
use crate::model::Model;
use crate::processor::Processor;
use crate::repository::RepoError;
use crate::storage::StorageError;
use async_graphql::dynamic::{Object, ResolverContext, Schema, SchemaBuilder};
use async_graphql::ErrorExtensions;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Deepest query nesting accepted (relations can loop: User.subscription.user...).
const MAX_DEPTH: usize = 32;
/// Most fields one data query selects, aliases counted (each field selected once costs 1): a
/// document of 100,000 aliased root fields is refused before it runs.
pub const MAX_COMPLEXITY: usize = 2_000;

/// The engine, from the schema's data.
fn engine_of<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Arc<Processor>> {
    ctx.data::<Arc<Processor>>()
}

/// The caller (request data set by the HTTP handler); a request without one may do nothing.
fn caller<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a crate::security::Principal> {
    ctx.data_opt::<crate::security::Principal>()
        .ok_or_else(|| coded("no authenticated caller".into(), "UNAUTHENTICATED"))
}

/// A FORBIDDEN error for `what`, recorded in the audit log (when the request carries it).
fn refused(ctx: &ResolverContext<'_>, who: &crate::security::Principal, what: String) -> async_graphql::Error {
    refused_as(ctx, who, "graphql_data", what)
}

/// [`refused`] with the audit log's `action`.
fn refused_as(
    ctx: &ResolverContext<'_>,
    who: &crate::security::Principal,
    action: &str,
    what: String,
) -> async_graphql::Error {
    let first = ctx.data_opt::<crate::security::audit::Refusals>().is_none_or(|seen| seen.first(&what));
    if let Some(audit) = ctx.data_opt::<Arc<crate::security::audit::AuditLog>>().filter(|_| first) {
        let source = ctx.data_opt::<crate::security::audit::RequestSource>().map_or("-".to_string(), |s| s.0.clone());
        audit.record(crate::security::audit::Event::now(
            crate::security::audit::Severity::Warning,
            &who.subject,
            source,
            action,
            what.clone(),
            "refused FORBIDDEN".into(),
            format!("role {}", who.role),
        ));
    }
    coded(format!("{} (role {}) may not {what}", who.subject, who.role), "FORBIDDEN")
}

/// Refuse (`extensions.code` FORBIDDEN) unless the caller may read objects of `type_name`.
fn require_read(ctx: &ResolverContext<'_>, type_name: &str) -> async_graphql::Result<()> {
    let who = caller(ctx)?;
    if who.data.can_read(type_name) {
        return Ok(());
    }
    Err(refused(ctx, who, format!("read {type_name}")))
}

/// Refuse (`extensions.code` FORBIDDEN) unless the caller may write objects of `type_name`.
fn require_write(ctx: &ResolverContext<'_>, type_name: &str) -> async_graphql::Result<()> {
    let who = caller(ctx)?;
    if who.data.can_write(type_name) {
        return Ok(());
    }
    Err(refused(ctx, who, format!("write {type_name}")))
}

/// A repository error as a GraphQL error with `extensions.code`.
fn repo_error(e: RepoError) -> async_graphql::Error {
    coded(e.to_string(), code_of(&e))
}

/// A GraphQL error with `extensions.code`.
fn coded(message: String, code: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code))
}

/// The `extensions.code` of a repository error.
fn code_of(e: &RepoError) -> &'static str {
    match e {
        RepoError::Storage(StorageError::Conflict { .. }) => "CONFLICT",
        RepoError::Storage(StorageError::HardLimit { .. }) => "HARD_LIMIT",
        RepoError::Storage(StorageError::IndexBuilding { .. }) => "INDEX_BUILDING",
        RepoError::Invalid(_) => "VALIDATION",
        RepoError::UnknownType(_) | RepoError::BadRequest(_) | RepoError::Storage(StorageError::UserData(_)) => {
            "BAD_REQUEST"
        }
        RepoError::Storage(_) => "INTERNAL",
    }
}

/// Arguments of an aggregate's fields that are not filters by an index.
const OWN_ARGUMENTS: [&str; 11] = [
    "first",
    "after",
    "version",
    "all_versions",
    "insert",
    "update",
    "delete",
    "permanent_delete",
    "only_if_version",
    "if_not_exists",
    "dont_skip_deleted",
];

/// Filter arguments of aggregate `t` that would take the name of one of its fields' own
/// arguments (an index named `first`) or of another filter (indexes `a.b` and `a_b`): GraphQL
/// would keep one of them silently.
fn argument_clashes(t: &crate::model::TypeDef) -> Vec<String> {
    let mut taken: HashMap<String, String> = OWN_ARGUMENTS.iter().map(|a| (a.to_string(), String::new())).collect();
    let mut errors = Vec::new();
    for arg in query::filter_args(t) {
        match taken.get(&arg.arg) {
            Some(other) if other.is_empty() => errors.push(format!(
                "types: {}: the index {} gives the GraphQL argument {}, which is an argument of its own: rename the index",
                t.name, arg.index, arg.arg
            )),
            Some(other) if *other != arg.index => errors.push(format!(
                "types: {}: the indexes {other} and {} both give the GraphQL argument {}: rename one",
                t.name, arg.index, arg.arg
            )),
            _ => {
                taken.insert(arg.arg.clone(), arg.index.clone());
            }
        }
    }
    errors
}

/// The data schema of `model` and the services of `config`, without the engine (add it with
/// `.data(engine)` before `finish`). Every problem, one per line.
pub fn data_schema(model: &Model, config: &Config) -> Result<SchemaBuilder, Vec<String>> {
    let mut errors = Vec::new();
    // Names the schema defines itself, then every record's object and insert input type.
    let mut seen: HashSet<String> =
        ["Query", "Mutation", "Int", "Float", "String", "Boolean", "ID", types::LONG, types::JSON]
            .into_iter()
            .map(String::from)
            .collect();
    for t in model.types() {
        for name in [gql_name(&t.name), types::insert_type_name(&t.name)] {
            if !seen.insert(name.clone()) {
                errors.push(format!("types: {}: its GraphQL name {name} is taken by another type", t.name));
            }
        }
    }
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let mut roots = HashSet::new();
    for t in model.aggregates() {
        errors.extend(argument_clashes(t));
        roots.insert(gql_name(&t.name));
        query = query.field(query::root_field(t));
        mutation = mutation.field(mutation::root_field(t));
    }
    for (name, service) in &config.services {
        if roots.contains(name) {
            errors.push(format!("services.{name}: the name is taken by an aggregate of the model"));
            continue;
        }
        match services::field(name, service, model) {
            Ok(field) => match service.kind {
                ServiceKind::Query => query = query.field(field),
                ServiceKind::Mutation => mutation = mutation.field(field),
            },
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let has_mutations =
        model.aggregates().next().is_some() || config.services.values().any(|s| s.kind == ServiceKind::Mutation);
    if model.aggregates().next().is_none() && !config.services.values().any(|s| s.kind == ServiceKind::Query) {
        // A schema needs a query field: an empty model answers `{ _empty }` with null.
        query = query.field(async_graphql::dynamic::Field::new(
            "_empty",
            async_graphql::dynamic::TypeRef::named(async_graphql::dynamic::TypeRef::BOOLEAN),
            |_| async_graphql::dynamic::FieldFuture::from_value(None),
        ));
    }
    let mut builder = Schema::build("Query", has_mutations.then_some("Mutation"), None)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        // "Did you mean Book?" would tell a caller who may not see the model its names.
        .disable_suggestions();
    let (objects, inputs) = types::model_types(model);
    for scalar in types::scalars() {
        builder = builder.register(scalar);
    }
    for object in objects {
        builder = builder.register(object);
    }
    for input in inputs {
        builder = builder.register(input);
    }
    builder = builder.register(query);
    if has_mutations {
        builder = builder.register(mutation);
    }
    Ok(builder)
}

/// Check that the data schema of `config` builds: every problem, one per line.
pub fn check(model: &Model, config: &Config) -> Vec<String> {
    match data_schema(model, config) {
        Ok(builder) => match builder.finish() {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("graphql: {e}")],
        },
        Err(errors) => errors,
    }
}

#[cfg(test)]
mod tests;
