//! Ferrogrid pipelines: envelopes, functions and pipelines compiled once from the configuration,
//! TDG's step contracts, and the pool of worker threads that runs scripts.

pub mod compiled;
pub mod envelope;
pub mod error;
pub mod pool;
pub mod steps;

pub use compiled::{Pipeline, Pipelines};
pub use envelope::{Envelope, Routed};
pub use error::PipelineError;
pub use pool::{panic_text, OnPanic, PoolError, WorkerPool};

#[cfg(test)]
mod tests;
