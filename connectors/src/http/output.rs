//! The `http` output: POST each object as JSON.

use super::client::Poster;
use super::config::{HttpFormat, HttpOutputConfig};
use crate::intake::BoxFuture;
use crate::registry::{BuildError, Outgoing, Output, SendError};

/// Posts objects to a URL.
pub struct HttpOutput {
    name: String,
    format: HttpFormat,
    poster: Poster,
}

impl HttpOutput {
    /// Build from a validated configuration.
    pub fn new(config: HttpOutputConfig) -> Result<Self, BuildError> {
        let poster = Poster::new(&config.name, &config.url, &config.headers, &config.options)?;
        Ok(Self { name: config.name, format: config.format, poster })
    }
}

impl Output for HttpOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn send(&self, message: Outgoing) -> BoxFuture<Result<(), SendError>> {
        let object = message.object;
        let HttpFormat::Json = self.format;
        let body = match serde_json::to_vec(&object) {
            Ok(body) => body,
            Err(e) => return Box::pin(async move { Err(SendError::Rejected(format!("encoding JSON: {e}"))) }),
        };
        let poster = self.poster.clone();
        Box::pin(async move {
            let answer = poster.post(body, "application/json").await?;
            match answer.status {
                200..=299 => Ok(()),
                _ if answer.retryable() => Err(SendError::Unavailable(answer.describe(poster.url()))),
                _ => Err(SendError::Rejected(answer.describe(poster.url()))),
            }
        })
    }
}
