//! GraphQL metrics (TDG 2.15.1.1): the time of each top-level field of a query or mutation —
//! the entity: a type, or a service — and whether it answered an error, by schema, entity and
//! operation name.

use crate::metrics::metrics;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo};
use async_graphql::{Response, ServerResult, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

/// Distinct operation names the metrics label; later new ones are `other` (clients choose the
/// names, and each would add series for good).
const MAX_OPERATION_NAMES: usize = 100;
/// Longer operation names are `other` too.
const MAX_OPERATION_NAME_LEN: usize = 64;

/// The `operation_name` label of `name`.
fn operation_label(name: &str) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    if name.is_empty() {
        return String::new();
    }
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if seen.contains(name) {
        return name.to_string();
    }
    if seen.len() >= MAX_OPERATION_NAMES || name.len() > MAX_OPERATION_NAME_LEN {
        return "other".to_string();
    }
    seen.insert(name.to_string());
    name.to_string()
}

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
        *self.operation.lock().unwrap_or_else(PoisonError::into_inner) =
            operation_label(operation_name.unwrap_or_default());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded() {
        assert_eq!(operation_label(""), "");
        assert_eq!(operation_label(&"x".repeat(65)), "other", "too long");
        let mut i = 0;
        while operation_label(&format!("Op{i}")) != "other" {
            i += 1;
            assert!(i <= MAX_OPERATION_NAMES, "the set is capped");
        }
        assert_eq!(operation_label("Op0"), "Op0", "a name already labelled stays");
        assert_eq!(operation_label("BrandNew"), "other");
    }
}
