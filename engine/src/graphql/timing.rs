//! GraphQL metrics (TDG 2.15.1.1): the time of each top-level field of a query or mutation —
//! the entity: a type, or a service — and whether it answered an error, by schema, entity and
//! operation name.

use crate::metrics::metrics;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo};
use async_graphql::{Response, ServerResult, Value};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The extension of one schema (`default` or `admin`).
pub struct Timing {
    schema: &'static str,
}

impl Timing {
    /// Time the fields of `schema`.
    pub fn new(schema: &'static str) -> Self {
        Self { schema }
    }
}

impl ExtensionFactory for Timing {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestTiming { schema: self.schema, operation: Mutex::new(String::new()) })
    }
}

/// One request's.
struct RequestTiming {
    schema: &'static str,
    operation: Mutex<String>,
}

#[async_trait::async_trait]
impl Extension for RequestTiming {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        *self.operation.lock().unwrap_or_else(PoisonError::into_inner) = operation_name.unwrap_or_default().to_string();
        next.run(ctx, operation_name).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() || info.is_for_introspection || info.name.starts_with("__") {
            return next.run(ctx, info).await;
        }
        let mutation = info.parent_type == "Mutation";
        let entity = info.name.to_string();
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        let operation = self.operation.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let labels = [self.schema, entity.as_str(), operation.as_str()];
        let m = metrics();
        let (time, fail) = if mutation {
            (&m.graphql_mutation_seconds, &m.graphql_mutation_fail)
        } else {
            (&m.graphql_query_seconds, &m.graphql_query_fail)
        };
        time.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            fail.with_label_values(&labels).inc();
        }
        result
    }
}
