//! Access control: identities (application tokens, users with passwords and sessions; LDAP
//! comes next), roles with their actions and data rights, and the admin token of first start.
//! Everything lives in storage (keyspace `Tokens`), so that instances sharing a store share it.

pub mod accounts;
pub mod audit;
pub mod bootstrap;
pub mod ldap;
pub mod mail;
pub mod roles;
pub mod scope;
pub mod sessions;
pub mod store;
pub mod users;

pub use bootstrap::{ensure_admin_token, TOKEN_FILE};
pub use roles::{Action, DataAction, DataRights, Rights, Role};
pub use store::{Principal, Refusal, Security, Token, TokenState};

/// Problems with tokens, roles and data actions.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// Reading or writing the token file failed (internal).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The system random source failed (internal).
    #[error("cannot generate a token: {0}")]
    Random(String),
    /// Storage failed (internal).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// A stored record does not parse (internal).
    #[error("a stored security record is damaged: {0}")]
    Corrupt(String),
    /// The request is wrong (user data: 400).
    #[error("{0}")]
    Invalid(String),
    /// No such token, role or data action (404).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not grant what it asks for (403).
    #[error("{0}")]
    Forbidden(String),
    /// The name is taken, or the thing is in use (409).
    #[error("{0}")]
    Conflict(String),
}

impl SecurityError {
    /// The HTTP status that reports it.
    pub fn status(&self) -> actix_web::http::StatusCode {
        use actix_web::http::StatusCode;
        match self {
            SecurityError::Invalid(_) => StatusCode::BAD_REQUEST,
            SecurityError::NotFound(_) => StatusCode::NOT_FOUND,
            SecurityError::Forbidden(_) => StatusCode::FORBIDDEN,
            SecurityError::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
