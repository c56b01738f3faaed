//! HTTP JSON input: `POST /http` takes one JSON object and answers once it is durably accepted.

mod config;
mod input;
#[cfg(test)]
mod tests;

pub use config::HttpInputConfig;
pub use input::{configure, HttpInput};
