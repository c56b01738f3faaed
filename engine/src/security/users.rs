//! Users: the part of [`Security`] behind `/admin/api/users` (sign-in and sessions are in
//! `sessions`).
//!
//! A user has a login (unique among users *and* tokens, so that a subject in the audit log names
//! one identity), a role, and a password hashed with argon2id whose lifetime is `expires_in`
//! (TDG's: past it, the user is blocked at its next sign-in). Nobody changes their own account
//! here (role, lifetime, state, a reset, a deletion): that is another administrator's job, and
//! one's own password is changed with the old one (`PUT /admin/api/password`).

use super::accounts::AccountSettings;
use super::sessions::{end_sessions_of, hash_password, HashingTurn};
use super::store::{check_name, to_json, Principal, Security, TokenState};
use super::SecurityError;
use crate::storage::{Keyspace, ReadView, WriteTx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Key prefix of users.
pub(super) const USER_PREFIX: &[u8] = b"user/";
/// Longest e-mail address or display name.
const TEXT_MAX: usize = 256;

/// A user (the API never shows the password's hash).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// When it was created (sessions belong to this incarnation of the login).
    pub created_at: DateTime<Utc>,
    /// How long a password lasts, seconds, from its last update (`None`: for ever). Past it
    /// the user is blocked at its next sign-in (TDG's `expires_in`).
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Active or blocked.
    pub state: TokenState,
    /// Why the state was last changed.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// When the state was last changed (an unblock restarts the inactivity clock).
    #[serde(default)]
    pub state_changed_at: Option<DateTime<Utc>>,
    /// Failed sign-in attempts since the last success or unblock.
    #[serde(default)]
    pub failed_login_attempts: u32,
    /// The last successful sign-in.
    #[serde(default)]
    pub last_login: Option<DateTime<Utc>>,
    /// The last time the password was set (creation, reset or one's own change).
    #[serde(default)]
    pub last_password_update_time: Option<DateTime<Utc>>,
    /// The last time the user changed its own password (`password_change_timeout_seconds`
    /// counts from it).
    #[serde(default)]
    pub last_own_password_change: Option<DateTime<Utc>>,
    /// The password was generated (one-time): the user must change it before anything else.
    #[serde(default)]
    pub one_time_password: bool,
    /// The password's argon2id PHC string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_hash: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("login", &self.login)
            .field("role", &self.role)
            .field("state", &self.state)
            .finish()
    }
}

impl User {
    /// The user as the API shows it: no hash; when its password expires.
    pub fn public(&self, now: DateTime<Utc>) -> serde_json::Value {
        let expires_at = self.password_expires_at();
        serde_json::json!({
            "login": self.login,
            "username": self.username,
            "email": self.email,
            "role": self.role,
            "created_at": self.created_at.to_rfc3339(),
            "expires_in": self.expires_in,
            "password_expires_at": expires_at.map(|t| t.to_rfc3339()),
            "password_expired": expires_at.is_some_and(|t| t <= now),
            "state": self.state,
            "state_reason": self.state_reason,
            "failed_login_attempts": self.failed_login_attempts,
            "last_login": self.last_login.map(|t| t.to_rfc3339()),
            "last_password_update_time": self.last_password_update_time.map(|t| t.to_rfc3339()),
            "one_time_password": self.one_time_password,
        })
    }

    /// When the password stops working (`expires_in` after its last update).
    pub fn password_expires_at(&self) -> Option<DateTime<Utc>> {
        let lifetime = chrono::TimeDelta::try_seconds(i64::try_from(self.expires_in?).ok()?)?;
        self.last_password_update_time.unwrap_or(self.created_at).checked_add_signed(lifetime)
    }

    /// When the inactivity clock started: the last sign-in, unblock, password update or
    /// creation.
    pub(super) fn active_since(&self) -> DateTime<Utc> {
        [self.last_login, self.state_changed_at, self.last_password_update_time]
            .into_iter()
            .flatten()
            .fold(self.created_at, DateTime::max)
    }

    /// Why the user may not sign in now although it is active: its password expired, or it was
    /// unused for longer than `ban_inactive_more_seconds` (it is blocked for that reason).
    pub(super) fn lapsed(&self, settings: &AccountSettings, now: DateTime<Utc>) -> Option<String> {
        if self.password_expires_at().is_some_and(|t| t <= now) {
            return Some("the password expired (expires_in)".into());
        }
        let limit = settings.inactive_limit();
        let idle = (now - self.active_since()).num_seconds();
        (idle > i64::try_from(limit).unwrap_or(i64::MAX))
            .then(|| format!("inactive for more than {limit} s (ban_inactive_more_seconds)"))
    }
}

/// A new user.
#[derive(Clone, Deserialize)]
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
    /// How long a password lasts, seconds (0 or none: for ever).
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The password; none or empty: a one-time password is generated and answered once.
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
    /// Password lifetime, seconds (0: for ever).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

pub(super) fn user_key(login: &str) -> Vec<u8> {
    [USER_PREFIX, login.as_bytes()].concat()
}

/// User `login` as stored, read in `view`.
pub(super) fn read_user(view: &dyn ReadView, login: &str) -> Result<Option<User>, SecurityError> {
    let Some(bytes) = view.get(Keyspace::Tokens, &user_key(login))? else { return Ok(None) };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| SecurityError::Corrupt(format!("user {login}: {e}")))
}

pub(super) fn write_user(tx: &mut WriteTx<'_>, user: &User) -> Result<(), SecurityError> {
    tx.insert(Keyspace::Tokens, &user_key(&user.login), to_json(user)?);
    Ok(())
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

fn lifetime(expires_in: Option<u64>) -> Result<Option<u64>, SecurityError> {
    match expires_in.filter(|s| *s > 0) {
        Some(s) if i64::try_from(s).is_err() => Err(SecurityError::Invalid(format!("expires_in {s} is too large"))),
        other => Ok(other),
    }
}

/// Refuse a change of `login`'s own account by itself.
fn not_oneself(login: &str, caller: &Principal, what: &str) -> Result<(), SecurityError> {
    if caller.subject == login {
        return Err(SecurityError::Forbidden(format!(
            "{login} may not {what} its own account: another administrator does (one's own password: PUT /admin/api/password)"
        )));
    }
    Ok(())
}

impl Security {
    /// Every user, by login, as stored now (counters included).
    pub fn users(&self) -> Result<Vec<User>, SecurityError> {
        super::store::load_all(&self.db, USER_PREFIX)
    }

    /// One user as stored now.
    pub fn user(&self, login: &str) -> Result<Option<User>, SecurityError> {
        read_user(&self.db, login)
    }

    /// Create a user (a caller holding a hashing turn); answers it and, when its password was
    /// generated, that one-time password (the only time it is shown).
    pub fn create_user(
        &self,
        turn: &HashingTurn,
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
        let given = new.password.filter(|p| !p.is_empty());
        let (password, generated) = match given {
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
        if generated && settings.output.is_some() && new.email.as_deref().is_none_or(str::is_empty) {
            return Err(SecurityError::Invalid(format!(
                "user \"{}\" needs an email: account_manager.output mails one-time passwords",
                new.login
            )));
        }
        let now = Utc::now();
        let user = User {
            login: new.login,
            username: new.username.filter(|n| !n.is_empty()),
            email: new.email.filter(|e| !e.is_empty()),
            role: new.role,
            created_at: now,
            expires_in: lifetime(new.expires_in)?,
            state: TokenState::Active,
            state_reason: None,
            state_changed_at: None,
            failed_login_attempts: 0,
            last_login: None,
            last_password_update_time: Some(now),
            last_own_password_change: None,
            one_time_password: generated,
            password_hash: hash_password(turn, &password)?,
        };
        self.db.write(|tx| {
            if read_user(&*tx, &user.login)?.is_some() {
                return Err(SecurityError::Conflict(format!("a user with login \"{}\" exists", user.login)));
            }
            if tx.get(Keyspace::Tokens, &super::store::token_key(&user.login))?.is_some() {
                return Err(SecurityError::Conflict(format!(
                    "\"{}\" is a token's name: a login names one identity in the audit log",
                    user.login
                )));
            }
            write_user(tx, &user)
        })?;
        self.changed()?;
        Ok((user, generated.then_some(password)))
    }

    /// Change user `login`'s name, e-mail, role or password lifetime.
    pub fn edit_user(&self, login: &str, patch: UserPatch, caller: &Principal) -> Result<User, SecurityError> {
        check_text("username", patch.username.as_deref())?;
        check_email(patch.email.as_deref())?;
        if patch.role.is_some() || patch.expires_in.is_some() {
            not_oneself(login, caller, "change the role or password lifetime of")?;
        }
        if let Some(role) = &patch.role {
            if !self.role_exists(role) {
                return Err(SecurityError::Invalid(format!("user \"{login}\": there is no role \"{role}\"")));
            }
            self.grantable(role, caller)?;
        }
        let expires_in = patch.expires_in.map(|s| lifetime(Some(s))).transpose()?;
        self.update_user(login, caller, |_, user| {
            if let Some(name) = patch.username {
                user.username = Some(name).filter(|n| !n.is_empty());
            }
            if let Some(email) = patch.email {
                user.email = Some(email).filter(|e| !e.is_empty());
            }
            if let Some(role) = patch.role {
                user.role = role;
            }
            if let Some(lifetime) = expires_in {
                user.expires_in = lifetime;
            }
            Ok(())
        })
    }

    /// Block or unblock user `login`, with a reason. A block ends its sessions; an unblock
    /// forgets failed attempts and restarts the inactivity clock. A user whose password expired
    /// is not unblocked (the next sign-in would block it again): its password is reset first.
    pub fn set_user_state(
        &self,
        login: &str,
        state: TokenState,
        reason: Option<String>,
        caller: &Principal,
    ) -> Result<User, SecurityError> {
        check_text("reason", reason.as_deref())?;
        not_oneself(login, caller, "block or unblock")?;
        self.update_user(login, caller, |tx, user| {
            if state == TokenState::Active && user.password_expires_at().is_some_and(|t| t <= Utc::now()) {
                return Err(SecurityError::Conflict(format!(
                    "the password of \"{login}\" expired (expires_in): give it a new one first \
                     (POST /admin/api/users/{login}/reset-password), then unblock it"
                )));
            }
            user.state = state;
            user.state_reason = reason;
            user.state_changed_at = Some(Utc::now());
            if state == TokenState::Active {
                user.failed_login_attempts = 0;
            } else {
                end_sessions_of(tx, login, None)?;
            }
            Ok(())
        })
    }

    /// Give user `login` a new generated one-time password (a caller holding a hashing turn);
    /// answers it (shown once). The user's sessions end.
    pub fn reset_password(
        &self,
        turn: &HashingTurn,
        login: &str,
        settings: &AccountSettings,
        caller: &Principal,
    ) -> Result<(User, String), SecurityError> {
        not_oneself(login, caller, "reset the password of")?;
        let password = settings.password_policy.generate()?;
        let hashed = hash_password(turn, &password)?;
        let user = self.update_user(login, caller, |tx, user| {
            if settings.output.is_some() && user.email.is_none() {
                return Err(SecurityError::Invalid(format!(
                    "user \"{login}\" has no email: account_manager.output mails one-time passwords"
                )));
            }
            user.password_hash = hashed;
            user.one_time_password = true;
            user.failed_login_attempts = 0;
            user.last_password_update_time = Some(Utc::now());
            end_sessions_of(tx, login, None)
        })?;
        Ok((user, password))
    }

    /// Delete user `login` and end its sessions.
    pub fn delete_user(&self, login: &str, caller: &Principal) -> Result<(), SecurityError> {
        not_oneself(login, caller, "delete")?;
        self.may_manage_user(login, caller)?;
        self.db.write(|tx| {
            if read_user(&*tx, login)?.is_none() {
                return Err(SecurityError::NotFound(format!("no user with login \"{login}\"")));
            }
            tx.remove(Keyspace::Tokens, &user_key(login));
            end_sessions_of(tx, login, None)
        })?;
        self.changed()
    }

    /// Refuse to touch user `login` unless its current role is one the caller could grant.
    fn may_manage_user(&self, login: &str, caller: &Principal) -> Result<(), SecurityError> {
        match self.user(login)? {
            Some(user) => self.grantable(&user.role, caller).or_else(|e| match e {
                // A role deleted since: nothing to exceed.
                SecurityError::Invalid(_) => Ok(()),
                other => Err(other),
            }),
            None => Ok(()),
        }
    }

    /// Read, change and store user `login` in one commit, then sync and publish.
    fn update_user(
        &self,
        login: &str,
        caller: &Principal,
        change: impl FnOnce(&mut WriteTx<'_>, &mut User) -> Result<(), SecurityError>,
    ) -> Result<User, SecurityError> {
        self.may_manage_user(login, caller)?;
        let user = self.db.write(|tx| {
            let Some(mut user) = read_user(&*tx, login)? else {
                return Err(SecurityError::NotFound(format!("no user with login \"{login}\"")));
            };
            change(tx, &mut user)?;
            write_user(tx, &user)?;
            Ok(user)
        })?;
        self.changed()?;
        Ok(user)
    }
}
