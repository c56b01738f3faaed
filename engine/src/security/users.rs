//! Users, passwords and sessions: the part of [`Security`] behind `/admin/api/users`,
//! `/admin/api/login`, `/admin/api/logout` and `/admin/api/password`.
//!
//! A sign-in checks the password (argon2id, at most [`HASHING_AT_ONCE`] at a time), counts
//! failures and blocks the user after `block_after_n_failed_attempts` in a row, blocks a user
//! inactive for longer than `ban_inactive_more_seconds`, and opens a session: 256 random bits
//! in a cookie, stored as their SHA-256 with the user's login, expiry and an anti-CSRF token.
//! Every request made with the session checks the user as it is now (blocked, expired, deleted
//! or given another role since: it takes effect at once).

use super::accounts::{AccountSettings, PASSWORD_MAX};
use super::store::{check_name, expiry, hash, to_json, Principal, Refusal, Security, TokenState};
use super::SecurityError;
use crate::storage::{Keyspace, ReadView};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

/// Key prefix of users.
pub(super) const USER_PREFIX: &[u8] = b"user/";
const SESSION_PREFIX: &[u8] = b"session/";
/// Password hashes computed at once (each takes ~19 MiB and tens of milliseconds): sign-in
/// floods queue here instead of exhausting memory and every core.
pub const HASHING_AT_ONCE: usize = 2;
/// Longest e-mail address or display name.
const TEXT_MAX: usize = 256;

/// A user (without the password's hash in the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Unique sign-in name.
    pub login: String,
    /// Display name.
    #[serde(default)]
    pub username: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// The role it acts with.
    pub role: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its account stops working; `None`: never.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Active or blocked.
    pub state: TokenState,
    /// Why the state was last changed.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// When the state was last changed (an unblock restarts the inactivity clock).
    #[serde(default)]
    pub state_changed_at: Option<DateTime<Utc>>,
    /// Failed sign-in attempts since the last success.
    #[serde(default)]
    pub failed_login_attempts: u32,
    /// The last successful sign-in.
    #[serde(default)]
    pub last_login: Option<DateTime<Utc>>,
    /// The last change of the password.
    #[serde(default)]
    pub last_password_update_time: Option<DateTime<Utc>>,
    /// The password was generated (one-time): it must be changed before anything else.
    #[serde(default)]
    pub one_time_password: bool,
    /// The password's argon2id PHC string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_hash: String,
}

impl User {
    /// The user as the API shows it: no hash, the expiry also as seconds left.
    pub fn public(&self, now: DateTime<Utc>) -> serde_json::Value {
        serde_json::json!({
            "login": self.login,
            "username": self.username,
            "email": self.email,
            "role": self.role,
            "created_at": self.created_at.to_rfc3339(),
            "expires_at": self.expires_at.map(|t| t.to_rfc3339()),
            "expires_in": self.expires_at.map(|t| (t - now).num_seconds().max(0)),
            "expired": self.expires_at.is_some_and(|t| t <= now),
            "state": self.state,
            "state_reason": self.state_reason,
            "failed_login_attempts": self.failed_login_attempts,
            "last_login": self.last_login.map(|t| t.to_rfc3339()),
            "last_password_update_time": self.last_password_update_time.map(|t| t.to_rfc3339()),
            "one_time_password": self.one_time_password,
        })
    }

    /// When the inactivity clock started: the last sign-in, unblock or creation.
    fn active_since(&self) -> DateTime<Utc> {
        [self.last_login, self.state_changed_at].into_iter().flatten().fold(self.created_at, DateTime::max)
    }
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Whose.
    pub login: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
    /// The anti-CSRF token requests that change something must send in `X-CSRF-Token`.
    pub csrf: String,
}

/// A new user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Sign-in name.
    pub login: String,
    /// Display name.
    #[serde(default)]
    pub username: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Role.
    pub role: String,
    /// Seconds until the account expires (0 or none: never).
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The password; none: a one-time password is generated and answered once.
    #[serde(default)]
    pub password: Option<String>,
}

/// A change of a user (fields left out stay).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Display name.
    #[serde(default)]
    pub username: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Role.
    #[serde(default)]
    pub role: Option<String>,
    /// Seconds until the account expires (0: never).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown login or wrong password (the answer does not say which).
    #[error("wrong login or password")]
    InvalidCredentials,
    /// Wrong password, and that blocked the user.
    #[error("wrong login or password; the user is now blocked after {0} failed attempts")]
    LockedOut(u32),
    /// The user is blocked.
    #[error("the user is blocked")]
    Blocked,
    /// The user's account has expired.
    #[error("the user's account has expired")]
    Expired,
    /// Storage or hashing failed.
    #[error(transparent)]
    Internal(#[from] SecurityError),
}

impl SignInError {
    /// The `reason` code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::InvalidCredentials | SignInError::LockedOut(_) => "invalid_credentials",
            SignInError::Blocked => "user_blocked",
            SignInError::Expired => "user_expired",
            SignInError::Internal(_) => "internal",
        }
    }
}

/// A session opened by a sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user as signed in.
    pub user: User,
    /// The cookie's secret (shown to the client once, kept as a hash).
    pub secret: String,
    /// The session.
    pub session: Session,
}

fn user_key(login: &str) -> Vec<u8> {
    [USER_PREFIX, login.as_bytes()].concat()
}

fn session_key(secret: &str) -> Vec<u8> {
    [SESSION_PREFIX, hex::encode(hash(secret)).as_bytes()].concat()
}

/// The argon2id hasher: the `argon2` crate's defaults (19 MiB, 2 passes, 1 lane; OWASP's).
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// A slot of the password hasher: at most [`HASHING_AT_ONCE`] hashes run at once.
struct HashSlots {
    busy: Mutex<usize>,
    freed: Condvar,
}

fn slots() -> &'static HashSlots {
    static SLOTS: OnceLock<HashSlots> = OnceLock::new();
    SLOTS.get_or_init(|| HashSlots { busy: Mutex::new(0), freed: Condvar::new() })
}

/// Run `f` when a hashing slot is free.
fn with_slot<T>(f: impl FnOnce() -> T) -> T {
    let slots = slots();
    {
        let mut busy = slots.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy >= HASHING_AT_ONCE {
            busy = slots.freed.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        *busy += 1;
    }
    let out = f();
    *slots.busy.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
    slots.freed.notify_one();
    out
}

/// Hash `password` with a new random salt; its PHC string.
pub fn hash_password(password: &str) -> Result<String, SecurityError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| SecurityError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| SecurityError::Random(e.to_string()))?;
    with_slot(|| argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()))
        .map_err(|e| SecurityError::Corrupt(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `stored` (a damaged hash matches nothing).
fn verify_password(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::warn!("a stored password hash is damaged; its user cannot sign in with a password");
        return false;
    };
    with_slot(|| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of no one's password, verified against when the login is unknown so that an unknown
/// login takes as long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 16];
        let _ = getrandom::fill(&mut secret);
        hash_password(&hex::encode(secret)).unwrap_or_default()
    })
}

fn check_text(what: &str, value: Option<&str>) -> Result<(), SecurityError> {
    match value {
        Some(v) if v.chars().count() > TEXT_MAX || v.chars().any(char::is_control) => {
            Err(SecurityError::Invalid(format!("{what}: at most {TEXT_MAX} characters and no control characters")))
        }
        _ => Ok(()),
    }
}

fn check_email(email: Option<&str>) -> Result<(), SecurityError> {
    check_text("email", email)?;
    let looks_right =
        |e: &str| e.is_empty() || e.split_once('@').is_some_and(|(user, host)| !user.is_empty() && !host.is_empty());
    match email {
        Some(e) if !looks_right(e) => Err(SecurityError::Invalid(format!("email \"{e}\" is not an e-mail address"))),
        _ => Ok(()),
    }
}

/// Whether `a` and `b` are equal, in a time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Security {
    /// Every user, by login.
    pub fn users(&self) -> Vec<User> {
        self.snapshot.load().users.values().cloned().collect()
    }

    /// One user.
    pub fn user(&self, login: &str) -> Option<User> {
        self.snapshot.load().users.get(login).cloned()
    }

    /// Create a user; answers it and, when its password was generated, that one-time password
    /// (the only time it is shown).
    pub fn create_user(
        &self,
        new: NewUser,
        settings: &AccountSettings,
        caller: &Principal,
    ) -> Result<(User, Option<String>), SecurityError> {
        check_name("user", &new.login)?;
        check_text("username", new.username.as_deref())?;
        check_email(new.email.as_deref())?;
        if !self.role_exists(&new.role) {
            return Err(SecurityError::Invalid(format!("user \"{}\": there is no role \"{}\"", new.login, new.role)));
        }
        self.grantable(&new.role, caller)?;
        let (password, generated) = match new.password {
            Some(_) if settings.only_one_time_passwords => {
                return Err(SecurityError::Invalid(
                    "account_manager.only_one_time_passwords is on: leave the password out and a one-time password is generated".into(),
                ))
            }
            Some(p) => {
                settings.password_policy.check(&p).map_err(SecurityError::Invalid)?;
                (p, false)
            }
            None => (settings.password_policy.generate()?, true),
        };
        let now = Utc::now();
        let user = User {
            login: new.login,
            username: new.username,
            email: new.email,
            role: new.role,
            created_at: now,
            expires_at: expiry(now, new.expires_in)?,
            state: TokenState::Active,
            state_reason: None,
            state_changed_at: None,
            failed_login_attempts: 0,
            last_login: None,
            last_password_update_time: Some(now),
            one_time_password: generated,
            password_hash: hash_password(&password)?,
        };
        self.db.write(|tx| {
            if tx.get(Keyspace::Tokens, &user_key(&user.login))?.is_some() {
                return Err(SecurityError::Conflict(format!("a user with login \"{}\" exists", user.login)));
            }
            tx.insert(Keyspace::Tokens, &user_key(&user.login), to_json(&user)?);
            Ok(())
        })?;
        self.changed()?;
        Ok((user, generated.then_some(password)))
    }

    /// Change user `login`'s name, e-mail, role or expiry.
    pub fn edit_user(&self, login: &str, patch: UserPatch, caller: &Principal) -> Result<User, SecurityError> {
        check_text("username", patch.username.as_deref())?;
        check_email(patch.email.as_deref())?;
        if let Some(role) = &patch.role {
            if !self.role_exists(role) {
                return Err(SecurityError::Invalid(format!("user \"{login}\": there is no role \"{role}\"")));
            }
            self.grantable(role, caller)?;
        }
        self.update_user(login, caller, |user| {
            if let Some(name) = patch.username {
                user.username = Some(name).filter(|n| !n.is_empty());
            }
            if let Some(email) = patch.email {
                user.email = Some(email).filter(|e| !e.is_empty());
            }
            if let Some(role) = patch.role {
                user.role = role;
            }
            if patch.expires_in.is_some() {
                user.expires_at = expiry(Utc::now(), patch.expires_in)?;
            }
            Ok(())
        })
    }

    /// Block or unblock user `login`, with a reason (an unblock also forgets failed attempts
    /// and restarts the inactivity clock).
    pub fn set_user_state(
        &self,
        login: &str,
        state: TokenState,
        reason: Option<String>,
        caller: &Principal,
    ) -> Result<User, SecurityError> {
        check_text("reason", reason.as_deref())?;
        self.update_user(login, caller, |user| {
            user.state = state;
            user.state_reason = reason;
            user.state_changed_at = Some(Utc::now());
            if state == TokenState::Active {
                user.failed_login_attempts = 0;
            }
            Ok(())
        })
    }

    /// Give user `login` a new generated one-time password; answers it (shown once).
    pub fn reset_password(
        &self,
        login: &str,
        settings: &AccountSettings,
        caller: &Principal,
    ) -> Result<(User, String), SecurityError> {
        let password = settings.password_policy.generate()?;
        let hashed = hash_password(&password)?;
        let user = self.update_user(login, caller, |user| {
            user.password_hash = hashed;
            user.one_time_password = true;
            user.last_password_update_time = Some(Utc::now());
            Ok(())
        })?;
        self.end_sessions_of(login)?;
        Ok((user, password))
    }

    /// Delete user `login` (its sessions end with it).
    pub fn delete_user(&self, login: &str, caller: &Principal) -> Result<(), SecurityError> {
        self.may_manage_user(login, caller)?;
        self.db.write(|tx| {
            if tx.get(Keyspace::Tokens, &user_key(login))?.is_none() {
                return Err(SecurityError::NotFound(format!("no user with login \"{login}\"")));
            }
            tx.remove(Keyspace::Tokens, &user_key(login));
            Ok(())
        })?;
        self.changed()?;
        self.end_sessions_of(login)
    }

    /// Refuse to touch user `login` unless its current role is one the caller could grant.
    fn may_manage_user(&self, login: &str, caller: &Principal) -> Result<(), SecurityError> {
        match self.user(login) {
            Some(user) => self.grantable(&user.role, caller).or_else(|e| match e {
                // A role deleted since: nothing to exceed.
                SecurityError::Invalid(_) => Ok(()),
                other => Err(other),
            }),
            None => Ok(()),
        }
    }

    fn update_user(
        &self,
        login: &str,
        caller: &Principal,
        change: impl FnOnce(&mut User) -> Result<(), SecurityError>,
    ) -> Result<User, SecurityError> {
        self.may_manage_user(login, caller)?;
        let user = self.write_user(login, change)?;
        self.changed()?;
        Ok(user)
    }

    /// Read, change and store user `login` in one commit (not yet synced or visible).
    fn write_user(
        &self,
        login: &str,
        change: impl FnOnce(&mut User) -> Result<(), SecurityError>,
    ) -> Result<User, SecurityError> {
        self.db.write(|tx| {
            let Some(bytes) = tx.get(Keyspace::Tokens, &user_key(login))? else {
                return Err(SecurityError::NotFound(format!("no user with login \"{login}\"")));
            };
            let mut user: User = serde_json::from_slice(&bytes).map_err(|e| SecurityError::Corrupt(e.to_string()))?;
            change(&mut user)?;
            tx.insert(Keyspace::Tokens, &user_key(login), to_json(&user)?);
            Ok(user)
        })
    }

    /// Check `login` and `password` and open a session. A blocked or expired user is refused
    /// without hashing (a locked-out account costs an attacker nothing to ask about, and the
    /// server nothing to answer); an unknown login costs as much as a wrong password.
    pub fn sign_in(
        &self,
        login: &str,
        password: &str,
        settings: &AccountSettings,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, SignInError> {
        if password.chars().count() > PASSWORD_MAX || login.chars().count() > super::store::NAME_MAX {
            return Err(SignInError::InvalidCredentials);
        }
        let Some(user) = self.user(login) else {
            verify_password(password, decoy_hash());
            return Err(SignInError::InvalidCredentials);
        };
        if user.state == TokenState::Blocked {
            return Err(SignInError::Blocked);
        }
        if user.expires_at.is_some_and(|t| t <= now) {
            return Err(SignInError::Expired);
        }
        let limit = settings.inactive_limit();
        if (now - user.active_since()).num_seconds() > i64::try_from(limit).unwrap_or(i64::MAX) {
            self.write_user(login, |u| {
                u.state = TokenState::Blocked;
                u.state_reason = Some(format!("inactive for more than {limit} s (ban_inactive_more_seconds)"));
                u.state_changed_at = Some(now);
                Ok(())
            })?;
            self.changed()?;
            return Err(SignInError::Blocked);
        }
        if !verify_password(password, &user.password_hash) {
            let mut locked = None;
            self.write_user(login, |u| {
                u.failed_login_attempts = u.failed_login_attempts.saturating_add(1);
                if let Some(n) = settings.block_after_n_failed_attempts.filter(|n| u.failed_login_attempts >= *n) {
                    u.state = TokenState::Blocked;
                    u.state_reason = Some(format!("{n} failed sign-in attempts in a row"));
                    u.state_changed_at = Some(now);
                    locked = Some(n);
                }
                Ok(())
            })?;
            self.changed()?;
            return Err(locked.map_or(SignInError::InvalidCredentials, SignInError::LockedOut));
        }
        let secret = super::store::new_secret()?;
        let csrf = super::store::new_secret()?;
        let lifetime =
            chrono::TimeDelta::try_seconds(i64::try_from(settings.session_lifetime_seconds).unwrap_or(i64::MAX))
                .unwrap_or(chrono::TimeDelta::MAX);
        let session = Session {
            login: login.to_string(),
            created_at: now,
            expires_at: now.checked_add_signed(lifetime).unwrap_or(DateTime::<Utc>::MAX_UTC),
            csrf,
        };
        let user = self.db.write(|tx| {
            let Some(bytes) = tx.get(Keyspace::Tokens, &user_key(login))? else {
                return Err(SecurityError::NotFound(format!("no user with login \"{login}\"")));
            };
            let mut user: User = serde_json::from_slice(&bytes).map_err(|e| SecurityError::Corrupt(e.to_string()))?;
            user.failed_login_attempts = 0;
            user.last_login = Some(now);
            tx.insert(Keyspace::Tokens, &user_key(login), to_json(&user)?);
            tx.insert(Keyspace::Tokens, &session_key(&secret), to_json(&session)?);
            // Sessions that have ended go with each sign-in: the store never holds more than
            // the sessions opened within one lifetime.
            let mut ended = Vec::new();
            for item in tx.scan_prefix(Keyspace::Tokens, SESSION_PREFIX) {
                let (key, value) = item?;
                if serde_json::from_slice::<Session>(&value).map_or(true, |s| s.expires_at <= now) {
                    ended.push(key);
                }
            }
            for key in ended {
                tx.remove(Keyspace::Tokens, &key);
            }
            Ok(user)
        })?;
        self.changed()?;
        Ok(SignedIn { user, secret, session })
    }

    /// The session of cookie `secret` and who acts with it, if it is open and its user may
    /// still sign in. A user whose password is one-time acts with no rights until it changes it.
    pub fn session(&self, secret: &str, now: DateTime<Utc>) -> Result<(Principal, Session, User), Refusal> {
        let stored = self.db.get(Keyspace::Tokens, &session_key(secret)).map_err(|e| {
            tracing::error!(error = %e, "reading a session failed");
            Refusal::InvalidSession
        })?;
        let session: Session =
            stored.and_then(|bytes| serde_json::from_slice(&bytes).ok()).ok_or(Refusal::InvalidSession)?;
        if session.expires_at <= now {
            return Err(Refusal::SessionExpired);
        }
        let snapshot = self.snapshot.load();
        let user = snapshot.users.get(&session.login).ok_or(Refusal::InvalidSession)?;
        if user.state == TokenState::Blocked {
            return Err(Refusal::UserBlocked);
        }
        if user.expires_at.is_some_and(|t| t <= now) {
            return Err(Refusal::UserExpired);
        }
        let mut principal = snapshot.principal(&user.login, &user.role);
        if user.one_time_password {
            principal.actions = Default::default();
            principal.data = std::sync::Arc::new(super::DataRights::PerType(Default::default()));
        }
        Ok((principal, session, user.clone()))
    }

    /// Whether `presented` is session `session`'s anti-CSRF token.
    pub fn csrf_matches(session: &Session, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| same(p.as_bytes(), session.csrf.as_bytes()))
    }

    /// End the session of cookie `secret` (nothing if there is none).
    pub fn sign_out(&self, secret: &str) -> Result<(), SecurityError> {
        self.db.write(|tx| {
            tx.remove(Keyspace::Tokens, &session_key(secret));
            Ok::<_, SecurityError>(())
        })?;
        self.db.sync()?;
        Ok(())
    }

    /// End every session of user `login`.
    fn end_sessions_of(&self, login: &str) -> Result<(), SecurityError> {
        self.db.write(|tx| {
            let mut ended = Vec::new();
            for item in tx.scan_prefix(Keyspace::Tokens, SESSION_PREFIX) {
                let (key, value) = item?;
                if serde_json::from_slice::<Session>(&value).map_or(true, |s| s.login == login) {
                    ended.push(key);
                }
            }
            for key in ended {
                tx.remove(Keyspace::Tokens, &key);
            }
            Ok::<_, SecurityError>(())
        })?;
        self.db.sync()?;
        Ok(())
    }

    /// Change user `login`'s own password: the old one must match, the new one meet the policy
    /// and differ, and `password_change_timeout_seconds` must have passed since the last change
    /// (not for a one-time password). Other sessions of the user end.
    pub fn change_password(
        &self,
        login: &str,
        old: &str,
        new: &str,
        settings: &AccountSettings,
        keep_session: Option<&str>,
    ) -> Result<User, SecurityError> {
        let Some(user) = self.user(login) else {
            return Err(SecurityError::NotFound(format!("no user with login \"{login}\"")));
        };
        let now = Utc::now();
        if !user.one_time_password {
            if let (Some(timeout), Some(last)) =
                (settings.password_change_timeout_seconds, user.last_password_update_time)
            {
                let wait = i64::try_from(timeout).unwrap_or(i64::MAX).saturating_sub((now - last).num_seconds());
                if wait > 0 {
                    return Err(SecurityError::Forbidden(format!(
                        "the password was changed less than {timeout} s ago (password_change_timeout_seconds): try again in {wait} s"
                    )));
                }
            }
        }
        if old.chars().count() > PASSWORD_MAX || !verify_password(old, &user.password_hash) {
            return Err(SecurityError::Forbidden("the old password is wrong".into()));
        }
        settings.password_policy.check(new).map_err(SecurityError::Invalid)?;
        if new == old {
            return Err(SecurityError::Invalid("the new password is the old one".into()));
        }
        let hashed = hash_password(new)?;
        let kept = keep_session.map(session_key);
        let user = self.db.write(|tx| {
            let Some(bytes) = tx.get(Keyspace::Tokens, &user_key(login))? else {
                return Err(SecurityError::NotFound(format!("no user with login \"{login}\"")));
            };
            let mut user: User = serde_json::from_slice(&bytes).map_err(|e| SecurityError::Corrupt(e.to_string()))?;
            user.password_hash = hashed;
            user.one_time_password = false;
            user.last_password_update_time = Some(now);
            tx.insert(Keyspace::Tokens, &user_key(login), to_json(&user)?);
            let mut ended = Vec::new();
            for item in tx.scan_prefix(Keyspace::Tokens, SESSION_PREFIX) {
                let (key, value) = item?;
                let theirs = serde_json::from_slice::<Session>(&value).map_or(true, |s| s.login == login);
                if theirs && kept.as_deref() != Some(key.as_ref()) {
                    ended.push(key);
                }
            }
            for key in ended {
                tx.remove(Keyspace::Tokens, &key);
            }
            Ok(user)
        })?;
        self.changed()?;
        Ok(user)
    }
}
