//! One-time passwords by mail (TDG's `account_manager.output`): a generated password goes to
//! the user's e-mail through an SMTP output, and whoever created the user or reset the
//! password never sees it.

use super::accounts::AccountSettings;
use super::users::User;
use ferrogrid_connectors::{Outgoing, Output};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Subject of the mail when `account_manager.output.options.subject` is not given.
pub const DEFAULT_SUBJECT: &str = "Your one-time password";

/// Mails one-time passwords through the configured output.
#[derive(Clone)]
pub struct PasswordMailer {
    output: Arc<dyn Output>,
    subject: String,
}

impl std::fmt::Debug for PasswordMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordMailer").field("output", &self.output.name()).finish_non_exhaustive()
    }
}

impl PasswordMailer {
    /// The mailer of `settings` over the runtime's `outputs`: `Ok(None)` when passwords are
    /// not mailed; an error when the named output is not there (the configuration check
    /// refuses such a configuration, so this is a broken invariant).
    pub fn of(
        settings: &AccountSettings,
        outputs: &HashMap<String, Option<Arc<dyn Output>>>,
    ) -> Result<Option<PasswordMailer>, String> {
        let Some(mail) = &settings.output else { return Ok(None) };
        match outputs.get(&mail.name) {
            Some(Some(output)) => Ok(Some(PasswordMailer {
                output: output.clone(),
                subject: mail.options.subject.clone().unwrap_or_else(|| DEFAULT_SUBJECT.to_string()),
            })),
            _ => Err(format!("account_manager.output: there is no output \"{}\"", mail.name)),
        }
    }

    /// Mail `password` to `user`; answers the address it went to.
    pub async fn send(&self, user: &User, password: &str) -> Result<String, String> {
        let Some(to) = user.email.clone() else {
            return Err(format!("user \"{}\" has no e-mail", user.login));
        };
        let body = format!(
            "A one-time password was set for your login \"{}\":\n\n    {password}\n\n\
             Sign in with it and choose your own password; until then it opens nothing else.\n",
            user.login
        );
        let mail = json!({"to": to, "subject": self.subject, "body": body});
        self.output.send(Outgoing::new(mail, "account_manager")).await.map_err(|e| e.to_string())?;
        Ok(to)
    }
}

/// What became of a generated password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOver {
    /// No mailer: the password goes in the answer (shown once).
    Shown(String),
    /// Mailed to this address.
    Mailed(String),
    /// Mailing failed (the user has the password, nobody knows it: reset to mail another).
    Failed(String),
}

/// Hand `password` of `user` over: in the answer without a mailer, else by mail (recorded in
/// the audit log, `by` from `source`).
pub async fn hand_over(
    mailer: Option<&PasswordMailer>,
    user: &User,
    password: String,
    audit: Option<&super::audit::AuditLog>,
    by: &str,
    source: String,
) -> HandOver {
    let Some(mailer) = mailer else { return HandOver::Shown(password) };
    let outcome = mailer.send(user, &password).await;
    if let Some(audit) = audit {
        let (severity, result, message) = match &outcome {
            Ok(to) => (super::audit::Severity::Info, "sent", format!("to {to}")),
            Err(e) => (super::audit::Severity::Warning, "failed", e.clone()),
        };
        audit.record(super::audit::Event::now(
            severity,
            by,
            source,
            "password_mail",
            user.login.clone(),
            result.into(),
            message,
        ));
    }
    match outcome {
        Ok(to) => HandOver::Mailed(to),
        Err(e) => HandOver::Failed(e),
    }
}
