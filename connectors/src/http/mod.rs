//! HTTP connectors: the JSON input (`POST /http` takes one JSON object and answers once it is
//! durably accepted) and the JSON output (POST each routed object to a URL).

pub(crate) mod client;
mod config;
pub(crate) mod input;
mod output;
#[cfg(test)]
mod tests;

pub use config::{HttpClientOptions, HttpFormat, HttpInputConfig, HttpOutputConfig};
pub use input::{post_http, HttpInput};
pub use output::HttpOutput;
