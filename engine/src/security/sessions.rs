//! Sign-in and sessions: the part of [`Security`] behind `/admin/api/login`, `/logout` and
//! `/password`, and the session check of every request made with the cookie.
//!
//! **Attempts.** A password check first *reserves* an attempt (under the store's write lock:
//! the user is read, refused at once when blocked, blocked when lapsed, and refused while its
//! settled failures plus the checks under way — counted in memory, given back when a check
//! ends however it ends — reach `block_after_n_failed_attempts`), then hashes, then *settles*
//! (a commit on the user as it is then: a success needs it still active, of the same
//! incarnation, with the password that was checked; a failure is counted and blocks it at the
//! limit). Concurrent guesses can therefore never check more passwords than the limit allows,
//! and a correct password found among them opens nothing once the user is blocked.
//!
//! **Hashing** (argon2id: 19 MiB, tens of milliseconds) needs a [`HashingTurn`]: at most
//! [`hashing_at_once`] run at once, at most [`HASHING_QUEUE`] requests wait for a turn, and the
//! rest are answered `503` at once, so a flood of sign-ins queues neither memory nor the
//! blocking threads everything else uses.
//!
//! **Sessions**: 256 random bits in the cookie, stored as `session/<hex SHA-256>` with the
//! user's login and incarnation (`created_at`), expiry and anti-CSRF token, indexed by
//! `session-of/<login>/<hex SHA-256>`; at most [`SESSIONS_PER_USER`] per user (a sign-in ends
//! the oldest and the expired ones). They are checked from the in-memory snapshot, against the
//! user as it is now.

use super::accounts::{AccountSettings, PASSWORD_MAX};
use super::store::{hash, new_secret, to_json, Principal, Refusal, Security, TokenState, NAME_MAX};
use super::users::{read_user, write_user, User};
use super::SecurityError;
use crate::storage::{Keyspace, ReadView, WriteTx};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// Password hashes computed at once: half the cores (at least one), so that a flood of
/// sign-ins leaves the rest to the pipeline.
pub fn hashing_at_once() -> usize {
    static AT_ONCE: OnceLock<usize> = OnceLock::new();
    *AT_ONCE.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
}
/// Requests that may wait for a hashing turn; more are refused (`503`).
pub const HASHING_QUEUE: usize = 64;
/// Open sessions per user, at most.
pub const SESSIONS_PER_USER: usize = 16;
pub(super) const SESSION_PREFIX: &[u8] = b"session/";
const SESSION_INDEX: &[u8] = b"session-of/";
/// The index of LDAP users' sessions: apart from a local user's of the same login.
const LDAP_SESSION_INDEX: &[u8] = b"session-of-ldap/";

/// The right to hash one or two passwords now (see the module's docs).
pub struct HashingTurn {
    /// The queue ticket and the hashing slot, until the turn ends (dropped or [`HashingTurn::end`]).
    permits: std::sync::Mutex<Option<(tokio::sync::OwnedSemaphorePermit, tokio::sync::OwnedSemaphorePermit)>>,
}

impl HashingTurn {
    /// Give the turn back now (before slow work that needs no hashing, such as a mail).
    pub fn end(&self) {
        self.permits.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

/// No hashing turn is free and the queue for one is full.
#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins at once: try again in a moment")]
pub struct HashingBusy;

/// Wait for a hashing turn, or refuse at once when [`HASHING_QUEUE`] requests already wait.
/// A request dropped while it waits (its client went away) gives its place back.
pub async fn hashing_turn() -> Result<HashingTurn, HashingBusy> {
    static TICKETS: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    static SLOTS: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    let tickets = TICKETS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(hashing_at_once() + HASHING_QUEUE)));
    let slots = SLOTS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(hashing_at_once())));
    let ticket = tickets.clone().try_acquire_owned().map_err(|_| HashingBusy)?;
    let slot = slots.clone().acquire_owned().await.map_err(|_| HashingBusy)?;
    Ok(HashingTurn { permits: std::sync::Mutex::new(Some((ticket, slot))) })
}

/// Hash `password` with a new random salt (argon2id, the crate's defaults: 19 MiB, 2 passes);
/// its PHC string.
pub fn hash_password(_turn: &HashingTurn, password: &str) -> Result<String, SecurityError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| SecurityError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| SecurityError::Random(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecurityError::Corrupt(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `stored` (a damaged hash matches nothing).
fn verify_password(_turn: &HashingTurn, password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::warn!("a stored password hash is damaged; its user cannot sign in with a password");
        return false;
    };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// A hash of no one's password, checked when the login is unknown, so that an unknown login
/// costs as much to refuse as a wrong password.
fn decoy_hash(turn: &HashingTurn) -> Result<&'static str, SecurityError> {
    static DECOY: OnceLock<String> = OnceLock::new();
    if let Some(decoy) = DECOY.get() {
        return Ok(decoy);
    }
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| SecurityError::Random(e.to_string()))?;
    let decoy = hash_password(turn, &hex::encode(secret))?;
    Ok(DECOY.get_or_init(|| decoy))
}

/// A password check under way for a login: counted in [`Security`]'s `in_flight` until
/// dropped.
struct InFlight<'a> {
    map: &'a std::sync::Mutex<std::collections::HashMap<String, u32>>,
    login: String,
}

impl InFlight<'_> {
    /// Count one more check of `login`.
    fn start<'a>(map: &'a std::sync::Mutex<std::collections::HashMap<String, u32>>, login: &str) -> InFlight<'a> {
        *map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(login.to_string()).or_default() += 1;
        InFlight { map, login: login.to_string() }
    }

    /// Checks of `login` under way.
    fn of(map: &std::sync::Mutex<std::collections::HashMap<String, u32>>, login: &str) -> u32 {
        map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(login).copied().unwrap_or(0)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.login) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.login);
            }
        }
    }
}

/// A signed-in session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Whose.
    pub login: String,
    /// The `created_at` of the user it was opened for: a user deleted and created again under
    /// the same login does not inherit it.
    pub user_created_at: DateTime<Utc>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
    /// The anti-CSRF token requests that change something must send in `X-CSRF-Token`.
    pub csrf: String,
    /// For a user of an LDAP domain (no local user): the role its groups mapped to at sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_role: Option<String>,
}

/// Why a password check failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown login or wrong password (the answer does not say which).
    #[error("wrong login or password")]
    InvalidCredentials,
    /// Wrong password, and that blocked the user (clients see [`SignInError::InvalidCredentials`]).
    #[error("wrong login or password")]
    LockedOut(u32),
    /// The user is blocked, or has no attempts left.
    #[error("the user is blocked")]
    Blocked,
    /// The user was blocked by this attempt: its password expired or it was unused too long.
    #[error("the user is blocked")]
    Lapsed(String),
    /// Storage failed.
    #[error(transparent)]
    Internal(#[from] SecurityError),
}

impl From<crate::storage::StorageError> for SignInError {
    fn from(e: crate::storage::StorageError) -> Self {
        SignInError::Internal(SecurityError::Storage(e))
    }
}

impl SignInError {
    /// The ALARM to record when this refusal of a password change's old password blocked the
    /// user (as a sign-in's lock-out is recorded): `None` for other refusals. `object` is the
    /// request (`PUT /admin/api/password`, `user.self_modify`).
    pub fn password_change_alarm(&self, subject: &str, source: String, object: &str) -> Option<super::audit::Event> {
        let (outcome, message) = match self {
            SignInError::LockedOut(n) => {
                ("locked out", format!("blocked after {n} failed attempts (old passwords of a change)"))
            }
            SignInError::Lapsed(why) => ("blocked", why.clone()),
            _ => return None,
        };
        Some(super::audit::Event::now(
            super::audit::Severity::Alarm,
            subject,
            source,
            "account",
            object.into(),
            outcome.into(),
            message,
        ))
    }

    /// The `reason` code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::InvalidCredentials | SignInError::LockedOut(_) => "invalid_credentials",
            SignInError::Blocked | SignInError::Lapsed(_) => "user_blocked",
            SignInError::Internal(_) => "internal",
        }
    }
}

/// A session opened by a sign-in.
pub struct SignedIn {
    /// The user as signed in.
    pub user: User,
    /// The cookie's secret (shown to the client once, kept as a hash).
    pub secret: String,
    /// The session.
    pub session: Session,
}

/// What a reservation found.
enum Reserved<'a> {
    /// No such user.
    Unknown,
    /// Blocked by this reservation: why (an alarm).
    JustBlocked(String),
    /// May try: the hash to check against, the user's incarnation, and the check's place
    /// among those under way.
    Try { password_hash: String, created_at: DateTime<Utc>, in_flight: InFlight<'a> },
}

fn session_key(secret_hash: &str) -> Vec<u8> {
    [SESSION_PREFIX, secret_hash.as_bytes()].concat()
}

fn index_prefix(login: &str) -> Vec<u8> {
    [SESSION_INDEX, login.as_bytes(), b"/"].concat()
}

/// The index prefix of `login`'s sessions: a local user's, or (`ldap`) an LDAP user's.
fn index_of(login: &str, ldap: bool) -> Vec<u8> {
    if ldap {
        [LDAP_SESSION_INDEX, login.as_bytes(), b"/"].concat()
    } else {
        index_prefix(login)
    }
}

/// End every session of `login` in `tx`, but the one whose secret hashes to `keep`.
pub(super) fn end_sessions_of(tx: &mut WriteTx<'_>, login: &str, keep: Option<&str>) -> Result<(), SecurityError> {
    let prefix = index_prefix(login);
    let mut ended = Vec::new();
    for item in tx.scan_prefix(Keyspace::Tokens, &prefix) {
        let (key, _) = item?;
        let hashed = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        if keep != Some(hashed.as_str()) {
            ended.push((key.to_vec(), hashed));
        }
    }
    for (index, hashed) in ended {
        tx.remove(Keyspace::Tokens, &index);
        tx.remove(Keyspace::Tokens, &session_key(&hashed));
    }
    Ok(())
}

impl Security {
    /// The generation of the LDAP sessions (see [`Security::open_ldap_session`]).
    pub fn ldap_generation(&self) -> u64 {
        self.ldap_generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// End every LDAP user's session (the `ldap` section changed: its roles may map other
    /// groups now). Answers how many ended.
    pub fn end_ldap_sessions(&self) -> Result<usize, SecurityError> {
        let ended = self.db.write(|tx| {
            // In the write: a sign-in's session is opened in a write too, either before this
            // one (and ended here) or after (and refused: see `open_ldap_session`).
            self.ldap_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut found = Vec::new();
            for item in tx.scan_prefix(Keyspace::Tokens, LDAP_SESSION_INDEX) {
                let (key, _) = item?;
                let hashed = key.rsplit(|b| *b == b'/').next().map(|h| String::from_utf8_lossy(h).into_owned());
                found.push((key.to_vec(), hashed));
            }
            for (index, hashed) in &found {
                tx.remove(Keyspace::Tokens, index);
                if let Some(hashed) = hashed {
                    tx.remove(Keyspace::Tokens, &session_key(hashed));
                }
            }
            Ok::<_, SecurityError>(found.len())
        })?;
        if ended > 0 {
            self.changed()?;
        }
        Ok(ended)
    }
}

/// Open a session for `user` in `tx`: ends its expired sessions and the oldest beyond
/// [`SESSIONS_PER_USER`]. Answers the secret and the session.
fn open_session(
    tx: &mut WriteTx<'_>,
    user: &User,
    settings: &AccountSettings,
    now: DateTime<Utc>,
) -> Result<(String, Session), SecurityError> {
    open_session_for(tx, &user.login, user.created_at, None, settings, now)
}

/// [`open_session`] for `login` (of incarnation `created_at`; an LDAP user: now, with its
/// `external_role`).
fn open_session_for(
    tx: &mut WriteTx<'_>,
    login: &str,
    created_at: DateTime<Utc>,
    external_role: Option<String>,
    settings: &AccountSettings,
    now: DateTime<Utc>,
) -> Result<(String, Session), SecurityError> {
    let prefix = index_of(login, external_role.is_some());
    let mut open: Vec<(DateTime<Utc>, String)> = Vec::new();
    let mut ended = Vec::new();
    for item in tx.scan_prefix(Keyspace::Tokens, &prefix) {
        let (key, _) = item?;
        let hashed = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        let session = tx
            .get(Keyspace::Tokens, &session_key(&hashed))?
            .and_then(|bytes| serde_json::from_slice::<Session>(&bytes).ok());
        match session {
            Some(s) if s.expires_at > now && (s.user_created_at == created_at || external_role.is_some()) => {
                open.push((s.created_at, hashed))
            }
            _ => ended.push(hashed),
        }
    }
    open.sort();
    let excess = open.len().saturating_sub(SESSIONS_PER_USER - 1);
    ended.extend(open.into_iter().take(excess).map(|(_, h)| h));
    for hashed in ended {
        tx.remove(Keyspace::Tokens, &[prefix.as_slice(), hashed.as_bytes()].concat());
        tx.remove(Keyspace::Tokens, &session_key(&hashed));
    }
    let secret = new_secret()?;
    let lifetime = i64::try_from(settings.session_lifetime_seconds)
        .ok()
        .and_then(chrono::TimeDelta::try_seconds)
        .unwrap_or(chrono::TimeDelta::MAX);
    let session = Session {
        login: login.to_string(),
        user_created_at: created_at,
        created_at: now,
        expires_at: now.checked_add_signed(lifetime).unwrap_or(DateTime::<Utc>::MAX_UTC),
        csrf: new_secret()?,
        external_role,
    };
    let hashed = hex::encode(hash(&secret));
    tx.insert(Keyspace::Tokens, &session_key(&hashed), to_json(&session)?);
    tx.insert(Keyspace::Tokens, &[prefix.as_slice(), hashed.as_bytes()].concat(), Vec::new());
    Ok((secret, session))
}

impl Security {
    /// Whether `login` is blocked as of the snapshot (a sign-in for it is refused before it
    /// waits for a hashing turn).
    pub fn blocked_now(&self, login: &str) -> bool {
        self.snapshot.load().users.get(login).is_some_and(|u| u.state == TokenState::Blocked)
    }

    /// Check `password` for `login` as the module's docs say; on success run `then` in the
    /// settling commit (the user already reset to no failures; `then` may change it further)
    /// and answer its result.
    fn attempt<T>(
        &self,
        turn: &HashingTurn,
        login: &str,
        password: &str,
        settings: &AccountSettings,
        now: DateTime<Utc>,
        then: impl FnOnce(&mut WriteTx<'_>, &mut User) -> Result<T, SecurityError>,
    ) -> Result<T, SignInError> {
        if password.chars().count() > PASSWORD_MAX || login.chars().count() > NAME_MAX {
            return Err(SignInError::InvalidCredentials);
        }
        let limit = settings.block_after_n_failed_attempts;
        // Reserved under the store's write lock, so reservations of one login are serialized:
        // its settled failures plus the checks under way never pass the limit.
        let reserved = self.db.write(|tx| {
            let Some(mut user) = read_user(&*tx, login)? else { return Ok(Reserved::Unknown) };
            if user.state == TokenState::Blocked {
                return Err(SignInError::Blocked);
            }
            let under_way = InFlight::of(&self.in_flight, login);
            let why = match user.lapsed(settings, now) {
                Some(why) => Some(why),
                // Over the limit with nothing under way (the limit was lowered, or turned on
                // over old failures): blocked now, visibly, rather than refused for ever.
                None => limit
                    .filter(|n| user.failed_login_attempts >= *n && under_way == 0)
                    .map(|n| format!("{n} failed sign-in attempts in a row")),
            };
            if let Some(why) = why {
                user.state = TokenState::Blocked;
                user.state_reason = Some(why.clone());
                user.state_changed_at = Some(now);
                end_sessions_of(tx, login, None)?;
                write_user(tx, &user)?;
                return Ok(Reserved::JustBlocked(why));
            }
            if limit.is_some_and(|n| user.failed_login_attempts.saturating_add(under_way) >= n) {
                // The limit's checks are under way: no more until they settle.
                return Err(SignInError::Blocked);
            }
            let in_flight = InFlight::start(&self.in_flight, login);
            Ok(Reserved::Try { password_hash: user.password_hash, created_at: user.created_at, in_flight })
        })?;
        let (password_hash, created_at, in_flight) = match reserved {
            Reserved::Unknown => {
                verify_password(turn, password, decoy_hash(turn)?);
                return Err(SignInError::InvalidCredentials);
            }
            Reserved::JustBlocked(why) => {
                self.changed()?;
                return Err(SignInError::Lapsed(why));
            }
            Reserved::Try { password_hash, created_at, in_flight } => (password_hash, created_at, in_flight),
        };
        let matched = verify_password(turn, password, &password_hash);
        let mut blocked = false;
        // The closure answers Ok(outcome) whenever its writes must be committed (a block too).
        let settled = self.db.write(|tx| {
            // Settled under the write lock: the check leaves the ones under way as its outcome
            // is counted, so a reservation never sees it twice or not at all.
            drop(in_flight);
            let Some(mut user) = read_user(&*tx, login)?.filter(|u| u.created_at == created_at) else {
                return Ok(Err(SignInError::InvalidCredentials));
            };
            if matched && user.password_hash == password_hash && user.state == TokenState::Active {
                user.failed_login_attempts = 0;
                let out = then(tx, &mut user)?;
                write_user(tx, &user)?;
                return Ok(Ok(out));
            }
            if matched {
                // Blocked, or given another password, while this attempt was checked: the
                // password checked is no longer the one (nothing counted).
                return Ok(Err(if user.state == TokenState::Blocked {
                    SignInError::Blocked
                } else {
                    SignInError::InvalidCredentials
                }));
            }
            if user.state == TokenState::Active {
                user.failed_login_attempts = user.failed_login_attempts.saturating_add(1);
            }
            match limit.filter(|n| user.state == TokenState::Active && user.failed_login_attempts >= *n) {
                Some(n) => {
                    user.state = TokenState::Blocked;
                    user.state_reason = Some(format!("{n} failed sign-in attempts in a row"));
                    user.state_changed_at = Some(now);
                    end_sessions_of(tx, login, None)?;
                    write_user(tx, &user)?;
                    blocked = true;
                    Ok(Err(SignInError::LockedOut(n)))
                }
                None => {
                    if user.state == TokenState::Active {
                        write_user(tx, &user)?;
                    }
                    Ok(Err(SignInError::InvalidCredentials))
                }
            }
        });
        let settled = settled.and_then(|outcome: Result<T, SignInError>| outcome);
        // A success or a block is made durable and visible; a counted failure alone is
        // neither synced nor published (it is in storage, which the next attempt reads).
        if settled.is_ok() || blocked {
            self.changed()?;
        }
        settled
    }

    /// Check `login` and `password` (a caller holding a hashing turn) and open a session.
    pub fn sign_in(
        &self,
        turn: &HashingTurn,
        login: &str,
        password: &str,
        settings: &AccountSettings,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, SignInError> {
        self.attempt(turn, login, password, settings, now, |tx, user| {
            user.last_login = Some(now);
            let (secret, session) = open_session(tx, user, settings, now)?;
            Ok((user.clone(), secret, session))
        })
        .map(|(user, secret, session)| SignedIn { user, secret, session })
    }

    /// Open a session for `identity`, signed in through LDAP (no local user); answers the
    /// secret and the session.
    /// `generation`: [`Security::ldap_generation`] when the sign-in began, before it read the
    /// `ldap` section; if the LDAP sessions were ended since, its role may come from a mapping
    /// that is gone, and it is refused (sign in again).
    pub fn open_ldap_session(
        &self,
        identity: &super::ldap::LdapIdentity,
        settings: &AccountSettings,
        now: DateTime<Utc>,
        generation: u64,
    ) -> Result<(String, Session), SecurityError> {
        let opened = self.db.write(|tx| {
            if self.ldap_generation() != generation {
                return Err(SecurityError::Conflict(
                    "the ldap configuration changed during the sign-in: sign in again".into(),
                ));
            }
            open_session_for(tx, &identity.login, now, Some(identity.role.clone()), settings, now)
        })?;
        self.changed()?;
        Ok(opened)
    }

    /// The session of cookie `secret` and who acts with it, if it is open and its user may act
    /// now (from the snapshot: no storage read). A user whose password is one-time acts with no
    /// rights until it has changed it. On a refusal, the login when it is known.
    pub fn session(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<(Principal, Session, bool), (Refusal, Option<String>)> {
        let snapshot = self.snapshot.load();
        let Some(session) = snapshot.sessions.get(&hash(secret)) else { return Err((Refusal::InvalidSession, None)) };
        let login = Some(session.login.clone());
        if session.expires_at <= now {
            return Err((Refusal::SessionExpired, login));
        }
        if let Some(role) = &session.external_role {
            // An LDAP user: the role its groups mapped to when it signed in (for the session's
            // lifetime; a local user of the same login has nothing to do with it).
            return Ok((snapshot.principal(&session.login, role), session.clone(), false));
        }
        let Some(user) = snapshot.users.get(&session.login).filter(|u| u.created_at == session.user_created_at) else {
            return Err((Refusal::InvalidSession, login));
        };
        if user.state == TokenState::Blocked {
            return Err((Refusal::UserBlocked, login));
        }
        if user.password_expires_at().is_some_and(|t| t <= now) {
            return Err((Refusal::PasswordExpired, login));
        }
        let mut principal = snapshot.principal(&user.login, &user.role);
        if user.one_time_password {
            principal.actions = Default::default();
            principal.data = Arc::new(super::DataRights::PerType(Default::default()));
        }
        Ok((principal, session.clone(), user.one_time_password))
    }

    /// Whether `presented` is session `session`'s anti-CSRF token (compared in a time that
    /// depends only on the lengths).
    pub fn csrf_matches(session: &Session, presented: Option<&str>) -> bool {
        let (a, b) = (presented.unwrap_or_default().as_bytes(), session.csrf.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// End the session of cookie `secret` (nothing if there is none).
    pub fn sign_out(&self, secret: &str) -> Result<(), SecurityError> {
        let hashed = hex::encode(hash(secret));
        let removed = self.db.write(|tx| {
            let Some(bytes) = tx.get(Keyspace::Tokens, &session_key(&hashed))? else { return Ok(false) };
            if let Ok(session) = serde_json::from_slice::<Session>(&bytes) {
                let index = index_of(&session.login, session.external_role.is_some());
                tx.remove(Keyspace::Tokens, &[index, hashed.clone().into_bytes()].concat());
            }
            tx.remove(Keyspace::Tokens, &session_key(&hashed));
            Ok::<_, SecurityError>(true)
        })?;
        // Signing out of a session already ended changes nothing (and reloads nothing).
        if removed {
            self.changed()?;
        }
        Ok(())
    }

    /// Change user `login`'s own password (a caller holding a hashing turn): the old one is
    /// checked like a sign-in (a wrong one counts towards the lock-out), the new one must meet
    /// the policy and differ, and `password_change_timeout_seconds` must have passed since the
    /// user's last own change (not for a one-time password). Its other sessions end.
    pub fn change_password(
        &self,
        turn: &HashingTurn,
        login: &str,
        old: &str,
        new: &str,
        settings: &AccountSettings,
        keep_session: Option<&str>,
    ) -> Result<User, SignInError> {
        let now = Utc::now();
        let Some(user) = self.user(login)? else {
            return Err(SecurityError::NotFound(format!("no user with login \"{login}\"")).into());
        };
        if !user.one_time_password {
            if let (Some(timeout), Some(last)) =
                (settings.password_change_timeout_seconds, user.last_own_password_change)
            {
                let wait = i64::try_from(timeout).unwrap_or(i64::MAX).saturating_sub((now - last).num_seconds());
                if wait > 0 {
                    return Err(SecurityError::Forbidden(format!(
                        "the password was changed less than {timeout} s ago (password_change_timeout_seconds): try again in {wait} s"
                    ))
                    .into());
                }
            }
        }
        settings.password_policy.check(new).map_err(SecurityError::Invalid)?;
        if new == old {
            return Err(SecurityError::Invalid("the new password is the old one".into()).into());
        }
        let hashed = hash_password(turn, new)?;
        let keep = keep_session.map(|s| hex::encode(hash(s)));
        self.attempt(turn, login, old, settings, now, |tx, user| {
            user.password_hash = hashed;
            user.one_time_password = false;
            user.last_password_update_time = Some(now);
            user.last_own_password_change = Some(now);
            end_sessions_of(tx, login, keep.as_deref())?;
            Ok(user.clone())
        })
    }
}

/// Every open session in `view`, by the hash of its secret (for the snapshot).
pub(super) fn load_sessions(
    view: &dyn ReadView,
    now: DateTime<Utc>,
) -> Result<std::collections::HashMap<[u8; 32], Session>, SecurityError> {
    let mut out = std::collections::HashMap::new();
    for item in view.scan_prefix(Keyspace::Tokens, SESSION_PREFIX) {
        let (key, value) = item?;
        let Ok(session) = serde_json::from_slice::<Session>(&value) else { continue };
        let hashed = hex::decode(&key[SESSION_PREFIX.len()..]).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
        if let Some(hashed) = hashed.filter(|_| session.expires_at > now) {
            out.insert(hashed, session);
        }
    }
    Ok(out)
}
