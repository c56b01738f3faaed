//! Dummy output: accepts every object and drops it (the engine counts what it sends).

mod config;
mod output;

pub use config::DummyOutputConfig;
pub use output::DummyOutput;
