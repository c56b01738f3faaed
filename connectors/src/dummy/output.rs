//! The dummy output.

use super::config::DummyOutputConfig;
use crate::intake::BoxFuture;
use crate::registry::{Outgoing, Output, SendError};

/// Drops objects; useful to discard a routing key on purpose and in benchmarks. The engine
/// counts what it sends (`ferrogrid_objects_routed_total{output=...}`).
pub struct DummyOutput {
    config: DummyOutputConfig,
}

impl DummyOutput {
    /// Build from configuration.
    pub fn new(config: DummyOutputConfig) -> Self {
        Self { config }
    }
}

impl Output for DummyOutput {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn send(&self, _message: Outgoing) -> BoxFuture<Result<(), SendError>> {
        Box::pin(async { Ok(()) })
    }
}
