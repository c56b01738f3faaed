//! Relation lookups through a DataLoader: the relation fields of the objects of one list are
//! gathered into one batch, equal lookups (the same user of many subscriptions) run once, and
//! the whole batch runs in one go instead of one storage call per parent object.

use super::code_of;
use crate::metrics::metrics;
use crate::repository::Repository;
use crate::storage::Stored;
use async_graphql::dataloader::{DataLoader, Loader};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One relation lookup: a repository `find` (filter and options as JSON text, so keys hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelationKey {
    /// Target aggregate.
    pub type_name: Arc<str>,
    /// The filter, as JSON text.
    pub filter: String,
    /// The options, as JSON text.
    pub options: String,
}

/// What one lookup found, or why it failed (message, `extensions.code`).
pub type Found = Arc<Result<Vec<Stored>, (String, &'static str)>>;

/// Runs the batches.
pub struct RelationLoader {
    repository: Arc<Repository>,
}

impl Loader<RelationKey> for RelationLoader {
    type Value = Found;
    type Error = Arc<String>;

    async fn load(&self, keys: &[RelationKey]) -> Result<HashMap<RelationKey, Found>, Self::Error> {
        // Storage reads: on the blocking pool, never on the reactor.
        let (repository, keys) = (self.repository.clone(), keys.to_vec());
        crate::reads::read(move || {
            let mut out = HashMap::with_capacity(keys.len());
            if let Some(first) = keys.first() {
                metrics().relation_batches.with_label_values(&[&first.type_name]).inc();
            }
            for key in keys {
                metrics().relation_lookups.with_label_values(&[&key.type_name]).inc();
                let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
                let found = repository
                    .find(&key.type_name, &parse(&key.filter), &parse(&key.options))
                    .map(|page| page.items)
                    .map_err(|e| (e.to_string(), code_of(&e)));
                out.insert(key, Arc::new(found));
            }
            out
        })
        .await
        .map_err(|e| Arc::new(e.to_string()))
    }
}

/// The loader the data schema's relation fields use (add it as schema data).
pub fn relation_loader(repository: Arc<Repository>) -> DataLoader<RelationLoader> {
    DataLoader::new(RelationLoader { repository }, tokio::spawn).delay(std::time::Duration::ZERO)
}
