//! SMTP output: mails each routed object (lettre).

mod config;
mod output;
#[cfg(test)]
mod tests;

pub use config::{url_with_login, SmtpOutputConfig};
pub use output::SmtpOutput;
