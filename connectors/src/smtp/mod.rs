//! SMTP output: mails each routed object (lettre).

mod config;
mod output;
#[cfg(test)]
mod tests;

pub use config::SmtpOutputConfig;
pub use output::SmtpOutput;
