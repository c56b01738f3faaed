//! Application tokens, custom roles and data actions, kept in storage (keyspace `Tokens`) and
//! read through an in-memory snapshot that every change replaces.
//!
//! Keys: `token/<name>` -> [`Token`] (JSON, with the SHA-256 of the secret), `role/<name>` ->
//! [`Role`], `data/<name>` -> [`DataAction`]. A token's secret is shown once, when it is created;
//! only its hash is kept. Secrets are 256 random bits, so a plain SHA-256 is the right hash (a
//! slow password hash protects guessable secrets; these are not guessable).

use super::roles::{built_in, Action, DataAction, DataRights, Role, BUILT_IN};
use super::users::{User, USER_PREFIX};
use super::SecurityError;
use crate::storage::{Db, Keyspace, ReadView};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Longest token, role or data-action name.
pub const NAME_MAX: usize = 128;

/// Whether a token may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// Usable.
    Active,
    /// Refused (401 `token_blocked`) until unblocked.
    Blocked,
}

/// An application token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Its unique name.
    pub name: String,
    /// The role it acts with.
    pub role: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working; `None`: never.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Active or blocked.
    pub state: TokenState,
    /// Why the state was last changed.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// Hex SHA-256 of the secret (never exported).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Token {
    /// The token as the API shows it: no hash, the expiry also as seconds left.
    pub fn public(&self, now: DateTime<Utc>) -> serde_json::Value {
        let mut out = serde_json::json!({
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at.to_rfc3339(),
            "expires_at": self.expires_at.map(|t| t.to_rfc3339()),
            "expires_in": self.expires_at.map(|t| (t - now).num_seconds().max(0)),
            "state": self.state,
            "state_reason": self.state_reason,
        });
        if self.expires_at.is_some_and(|t| t <= now) {
            out["expired"] = true.into();
        }
        out
    }
}

/// Who is calling, once their credentials checked out.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's (later: the user's) name.
    pub subject: String,
    /// Its role's name.
    pub role: String,
    /// The actions its role allows.
    pub actions: Arc<BTreeSet<Action>>,
    /// Its data rights.
    pub data: Arc<DataRights>,
}

impl Principal {
    /// Whether the role allows `action`.
    pub fn may(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }
}

/// Why credentials were refused (the `reason` code of a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a token we know.
    Invalid,
    /// The token has expired.
    Expired,
    /// The token is blocked.
    Blocked,
    /// The session cookie names no open session.
    InvalidSession,
    /// The session has ended.
    SessionExpired,
    /// The session's user is blocked.
    UserBlocked,
    /// The session's user's password has expired.
    PasswordExpired,
    /// A change made with a session cookie lacks the session's anti-CSRF token (403).
    Csrf,
}

impl Refusal {
    /// The code clients see.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Missing => "missing_token",
            Refusal::Invalid => "invalid_token",
            Refusal::Expired => "token_expired",
            Refusal::Blocked => "token_blocked",
            Refusal::InvalidSession => "invalid_session",
            Refusal::SessionExpired => "session_expired",
            Refusal::UserBlocked => "user_blocked",
            Refusal::PasswordExpired => "password_expired",
            Refusal::Csrf => "csrf",
        }
    }

    /// The HTTP status that reports it.
    pub fn status(self) -> u16 {
        if self == Refusal::Csrf {
            403
        } else {
            401
        }
    }

    /// What clients read.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "missing credentials (Authorization: Bearer <token>, or sign in)",
            Refusal::Invalid => "invalid bearer token",
            Refusal::Expired => "the token has expired",
            Refusal::Blocked => "the token is blocked",
            Refusal::InvalidSession => "the session is not open: sign in again",
            Refusal::SessionExpired => "the session has expired: sign in again",
            Refusal::UserBlocked => "the user is blocked",
            Refusal::PasswordExpired => "the user's password has expired",
            Refusal::Csrf => "a change made with a session cookie needs the session's X-CSRF-Token header",
        }
    }
}

/// Everything needed to check a request, as of the last change.
#[derive(Default)]
pub(super) struct Snapshot {
    by_hash: HashMap<[u8; 32], Token>,
    /// Token name -> the key of `by_hash` (a Kafka input checks its token per message).
    by_name: HashMap<String, [u8; 32]>,
    roles: BTreeMap<String, Role>,
    data_actions: BTreeMap<String, DataAction>,
    /// Users by login.
    pub(super) users: BTreeMap<String, User>,
    /// Open sessions by the SHA-256 of their secret.
    pub(super) sessions: HashMap<[u8; 32], super::sessions::Session>,
    /// Resolved actions and data rights by role name.
    resolved: HashMap<String, (Arc<BTreeSet<Action>>, Arc<DataRights>)>,
    /// The password policy an admin set, over the configuration's.
    password_policy: Option<super::accounts::PasswordPolicy>,
}

impl Snapshot {
    /// The principal acting as `subject` with role `role` (a deleted role: no rights at all).
    pub(super) fn principal(&self, subject: &str, role: &str) -> Principal {
        let (actions, data) = self
            .resolved
            .get(role)
            .cloned()
            .unwrap_or_else(|| (Arc::default(), Arc::new(DataRights::PerType(BTreeMap::new()))));
        Principal { subject: subject.to_string(), role: role.to_string(), actions, data }
    }
}

/// The security store: tokens, users, sessions, roles and data actions.
pub struct Security {
    pub(super) db: Db,
    pub(super) snapshot: ArcSwap<Snapshot>,
    /// Held from reading storage to publishing the snapshot, so that a snapshot read before a
    /// change can never replace one read after it.
    reloading: std::sync::Mutex<()>,
    /// Password checks under way, by login (see `sessions`).
    pub(super) in_flight: std::sync::Mutex<HashMap<String, u32>>,
    /// Roles the active configuration refers to (`ldap[0].roles[1].role` -> role): they cannot
    /// be deleted while it does.
    config_roles: ArcSwap<Vec<(String, String)>>,
    /// Bumped when the LDAP sessions are ended (the `ldap` section changed): a sign-in that
    /// began before opens no session after.
    pub(super) ldap_generation: std::sync::atomic::AtomicU64,
}

pub(super) fn token_key(name: &str) -> Vec<u8> {
    [b"token/".as_slice(), name.as_bytes()].concat()
}

/// The password policy an admin set (`PUT /admin/api/password-policy`).
const PASSWORD_POLICY_KEY: &[u8] = b"password-policy";

fn role_key(name: &str) -> Vec<u8> {
    [b"role/".as_slice(), name.as_bytes()].concat()
}

fn data_key(name: &str) -> Vec<u8> {
    [b"data/".as_slice(), name.as_bytes()].concat()
}

/// SHA-256 of a secret.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new secret: `fg_` and 64 hex digits (256 random bits).
pub fn new_secret() -> Result<String, SecurityError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| SecurityError::Random(e.to_string()))?;
    Ok(format!("fg_{}", hex::encode(secret)))
}

/// Check a name: 1..=NAME_MAX characters, no control characters, no `/`.
pub fn check_name(what: &str, name: &str) -> Result<(), SecurityError> {
    if name.trim().is_empty() || name.chars().count() > NAME_MAX {
        return Err(SecurityError::Invalid(format!("{what}: a name of 1 to {NAME_MAX} characters is needed")));
    }
    // Invisible format characters (bidirectional overrides, zero-width ones) would let one
    // name pass for another in the audit log and the UI.
    let invisible = |c: char| matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}');
    if name.chars().any(|c| c.is_control() || c == '/' || invisible(c)) || name.trim() != name {
        return Err(SecurityError::Invalid(format!(
            "{what} {name:?}: no control or invisible characters, '/' or surrounding spaces in a name"
        )));
    }
    Ok(())
}

pub(super) fn load_all<T: serde::de::DeserializeOwned>(
    view: &dyn ReadView,
    prefix: &[u8],
) -> Result<Vec<T>, SecurityError> {
    let mut out = Vec::new();
    for item in view.scan_prefix(Keyspace::Tokens, prefix) {
        let (key, value) = item?;
        let parsed = serde_json::from_slice(&value).map_err(|e| {
            SecurityError::Corrupt(format!("{}: {e}", String::from_utf8_lossy(&key[prefix.len().min(key.len())..])))
        })?;
        out.push(parsed);
    }
    Ok(out)
}

impl Security {
    /// Open the store over `db` and read it.
    pub fn open(db: Db) -> Result<Security, SecurityError> {
        let security = Security {
            db,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            reloading: std::sync::Mutex::new(()),
            in_flight: std::sync::Mutex::new(HashMap::new()),
            config_roles: ArcSwap::from_pointee(Vec::new()),
            ldap_generation: std::sync::atomic::AtomicU64::new(0),
        };
        security.reload()?;
        Ok(security)
    }

    /// Read everything from storage into a new snapshot.
    pub fn reload(&self) -> Result<(), SecurityError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tokens: Vec<Token> = load_all(&self.db, b"token/")?;
        let roles: Vec<Role> = load_all(&self.db, b"role/")?;
        let data: Vec<DataAction> = load_all(&self.db, b"data/")?;
        let users: Vec<User> = load_all(&self.db, USER_PREFIX)?;
        let mut snapshot = Snapshot {
            by_hash: HashMap::new(),
            by_name: HashMap::new(),
            roles: roles.into_iter().map(|r| (r.name.clone(), r)).collect(),
            data_actions: data.into_iter().map(|d| (d.name.clone(), d)).collect(),
            users: users.into_iter().map(|u| (u.login.clone(), u)).collect(),
            sessions: super::sessions::load_sessions(&self.db, Utc::now())?,
            resolved: HashMap::new(),
            password_policy: match self.db.get(Keyspace::Tokens, PASSWORD_POLICY_KEY)? {
                Some(bytes) => Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| SecurityError::Corrupt(format!("the stored password policy: {e}")))?,
                ),
                None => None,
            },
        };
        for token in tokens {
            let Some(bytes) = hex::decode(&token.hash).ok().and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            else {
                tracing::warn!(token = %token.name, "a stored token has no valid hash; it cannot be used");
                continue;
            };
            snapshot.by_name.insert(token.name.clone(), bytes);
            snapshot.by_hash.insert(bytes, token);
        }
        let names: Vec<String> = BUILT_IN.iter().map(|s| s.to_string()).chain(snapshot.roles.keys().cloned()).collect();
        for name in names {
            if let Some(role) = built_in(&name).or_else(|| snapshot.roles.get(&name).cloned()) {
                let rights = DataRights::of(&role, &snapshot.data_actions);
                snapshot.resolved.insert(name, (Arc::new(role.actions), Arc::new(rights)));
            }
        }
        self.snapshot.store(Arc::new(snapshot));
        Ok(())
    }

    /// Whether any token exists.
    pub fn has_tokens(&self) -> bool {
        !self.snapshot.load().by_hash.is_empty()
    }

    /// Check an `Authorization` header value.
    pub fn authenticate(
        &self,
        header: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Principal, (Refusal, Option<String>)> {
        let Some(value) = header else { return Err((Refusal::Missing, None)) };
        let mut parts = value.splitn(2, ' ');
        let secret = match (parts.next(), parts.next()) {
            (Some(scheme), Some(token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err((Refusal::Missing, None)),
        };
        let snapshot = self.snapshot.load();
        // A HashMap lookup by the hash of the presented secret: its timing tells nothing about
        // any stored secret (finding the hash would need the secret).
        let Some(token) = snapshot.by_hash.get(&hash(secret)) else { return Err((Refusal::Invalid, None)) };
        if token.state == TokenState::Blocked {
            return Err((Refusal::Blocked, Some(token.name.clone())));
        }
        if token.expires_at.is_some_and(|t| t <= now) {
            return Err((Refusal::Expired, Some(token.name.clone())));
        }
        // A deleted role: it may do nothing (but it is who it says it is).
        Ok(snapshot.principal(&token.name, &token.role))
    }

    /// Refuse unless role `role` allows no more than `caller` may do (actions and data rights):
    /// a caller cannot hand out, or take, more than it has.
    pub fn grantable(&self, role: &str, caller: &Principal) -> Result<(), SecurityError> {
        let snapshot = self.snapshot.load();
        let Some((actions, data)) = snapshot.resolved.get(role) else {
            return Err(SecurityError::Invalid(format!("there is no role \"{role}\"")));
        };
        within(role, actions, data, caller)
    }

    /// [`Security::grantable`] for a role being created or changed.
    pub fn grantable_role(&self, role: &Role, caller: &Principal) -> Result<(), SecurityError> {
        let data = DataRights::of(role, &self.snapshot.load().data_actions);
        within(&role.name, &role.actions, &data, caller)
    }

    /// Refuse unless data action `action` gives no more than `caller`'s data rights.
    pub fn grantable_data_action(&self, action: &DataAction, caller: &Principal) -> Result<(), SecurityError> {
        let rights = DataRights::PerType(action.aggregates.clone());
        if rights.within(&caller.data) {
            return Ok(());
        }
        Err(SecurityError::Forbidden(format!(
            "{} (role {}) may not grant data action \"{}\": it gives more than the caller's data rights",
            caller.subject, caller.role, action.name
        )))
    }

    pub(super) fn role_exists(&self, name: &str) -> bool {
        built_in(name).is_some() || self.snapshot.load().roles.contains_key(name)
    }

    /// `configured` (the configuration's `account_manager`) with the password policy an admin
    /// set, if any.
    pub fn account_settings(&self, configured: &super::accounts::AccountSettings) -> super::accounts::AccountSettings {
        let mut settings = configured.clone();
        if let Some(policy) = &self.snapshot.load().password_policy {
            settings.password_policy = policy.clone();
        }
        settings
    }

    /// Whether the password policy in force is one an admin set.
    pub fn password_policy_overridden(&self) -> bool {
        self.snapshot.load().password_policy.is_some()
    }

    /// Set the password policy over the configuration's (`None`: back to the configuration's).
    /// It applies to passwords set from now on.
    pub fn set_password_policy(&self, policy: Option<super::accounts::PasswordPolicy>) -> Result<(), SecurityError> {
        if let Some(p) = &policy {
            p.validate().map_err(SecurityError::Invalid)?;
        }
        self.db.write(|tx| {
            match &policy {
                Some(p) => tx.insert(Keyspace::Tokens, PASSWORD_POLICY_KEY, to_json(p)?),
                None => tx.remove(Keyspace::Tokens, PASSWORD_POLICY_KEY),
            }
            Ok::<_, SecurityError>(())
        })?;
        self.changed()
    }

    /// The roles the active configuration refers to, by where (`ldap[0].roles[1].role`).
    pub fn set_config_roles(&self, roles: Vec<(String, String)>) {
        self.config_roles.store(Arc::new(roles));
    }

    /// Problems of the roles `roles` refers to (`where: there is no role "x"`).
    pub fn missing_roles(&self, roles: &[(String, String)]) -> Vec<String> {
        roles
            .iter()
            .filter(|(_, role)| !self.role_exists(role))
            .map(|(at, role)| format!("{at}: there is no role \"{role}\" (create it first)"))
            .collect()
    }

    /// Whether token `name` may post to the inputs now (a Kafka input's `token_name`): it
    /// exists, is active, has not expired and its role allows `input_post`.
    pub fn may_post_as(&self, name: &str, now: DateTime<Utc>) -> Result<(), String> {
        let snapshot = self.snapshot.load();
        let Some(token) = snapshot.by_name.get(name).and_then(|h| snapshot.by_hash.get(h)) else {
            return Err(format!("there is no token \"{name}\""));
        };
        if token.state == TokenState::Blocked {
            return Err(format!("token \"{name}\" is blocked"));
        }
        if token.expires_at.is_some_and(|t| t <= now) {
            return Err(format!("token \"{name}\" has expired"));
        }
        match snapshot.resolved.get(&token.role) {
            Some((actions, _)) if actions.contains(&Action::InputPost) => Ok(()),
            _ => Err(format!("the role \"{}\" of token \"{name}\" may not post to the inputs", token.role)),
        }
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Vec<Token> {
        let mut out: Vec<Token> = self.snapshot.load().by_hash.values().cloned().collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// One token.
    pub fn token(&self, name: &str) -> Option<Token> {
        let snapshot = self.snapshot.load();
        snapshot.by_name.get(name).and_then(|h| snapshot.by_hash.get(h)).cloned()
    }

    /// Create token `name` with `role`, expiring after `expires_in` seconds (0 or `None`:
    /// never); answers the token and its secret (the only time it is shown).
    pub fn create_token(
        &self,
        name: &str,
        role: &str,
        expires_in: Option<u64>,
    ) -> Result<(Token, String), SecurityError> {
        let secret = new_secret()?;
        let token = self.create_token_with(name, role, expires_in, hash(&secret))?;
        Ok((token, secret))
    }

    /// [`Security::create_token`] for a secret known only by its hash (the bootstrap token).
    pub(crate) fn create_token_with(
        &self,
        name: &str,
        role: &str,
        expires_in: Option<u64>,
        secret_hash: [u8; 32],
    ) -> Result<Token, SecurityError> {
        let mut created = self.create_tokens_with(&[(name.to_string(), secret_hash)], role, expires_in)?;
        created.pop().ok_or_else(|| SecurityError::Corrupt("no token was created".into()))
    }

    /// Create tokens `(name, hash of the secret)` with `role`, all in one commit (or none).
    pub(crate) fn create_tokens_with(
        &self,
        tokens: &[(String, [u8; 32])],
        role: &str,
        expires_in: Option<u64>,
    ) -> Result<Vec<Token>, SecurityError> {
        if !self.role_exists(role) {
            return Err(SecurityError::Invalid(format!("there is no role \"{role}\"")));
        }
        let now = Utc::now();
        let mut out = Vec::with_capacity(tokens.len());
        for (name, secret_hash) in tokens {
            check_name("token", name)?;
            out.push(Token {
                name: name.clone(),
                role: role.to_string(),
                created_at: now,
                expires_at: expiry(now, expires_in)?,
                state: TokenState::Active,
                state_reason: None,
                hash: hex::encode(secret_hash),
            });
        }
        self.insert_new_tokens(out.iter())?;
        Ok(out)
    }

    /// Change token `name`: its role and/or expiry (`Some(0)`: never).
    pub fn edit_token(&self, name: &str, role: Option<&str>, expires_in: Option<u64>) -> Result<Token, SecurityError> {
        if let Some(role) = role.filter(|r| !self.role_exists(r)) {
            return Err(SecurityError::Invalid(format!("token \"{name}\": there is no role \"{role}\"")));
        }
        self.update_token(name, |token| {
            if let Some(role) = role {
                token.role = role.to_string();
            }
            if expires_in.is_some() {
                token.expires_at = expiry(Utc::now(), expires_in)?;
            }
            Ok(())
        })
    }

    /// Block or unblock token `name`, with a reason.
    pub fn set_token_state(
        &self,
        name: &str,
        state: TokenState,
        reason: Option<String>,
    ) -> Result<Token, SecurityError> {
        self.update_token(name, |token| {
            token.state = state;
            token.state_reason = reason;
            Ok(())
        })
    }

    fn update_token(
        &self,
        name: &str,
        change: impl FnOnce(&mut Token) -> Result<(), SecurityError>,
    ) -> Result<Token, SecurityError> {
        let token = self.db.write(|tx| {
            let Some(bytes) = tx.get(Keyspace::Tokens, &token_key(name))? else {
                return Err(SecurityError::NotFound(format!("no token named \"{name}\"")));
            };
            let mut token: Token = serde_json::from_slice(&bytes).map_err(|e| SecurityError::Corrupt(e.to_string()))?;
            change(&mut token)?;
            keeps_an_admin(&*tx, name, Some(&token))?;
            tx.insert(Keyspace::Tokens, &token_key(name), to_json(&token)?);
            Ok(token)
        })?;
        self.changed()?;
        Ok(token)
    }

    /// Delete token `name`.
    pub fn delete_token(&self, name: &str) -> Result<(), SecurityError> {
        self.db.write(|tx| {
            if tx.get(Keyspace::Tokens, &token_key(name))?.is_none() {
                return Err(SecurityError::NotFound(format!("no token named \"{name}\"")));
            }
            keeps_an_admin(&*tx, name, None)?;
            tx.remove(Keyspace::Tokens, &token_key(name));
            Ok(())
        })?;
        self.changed()
    }

    /// Import exported tokens (no secrets in an export): each gets a new secret, answered with
    /// it. Existing names are refused (nothing is imported then).
    pub fn import_tokens(&self, tokens: Vec<ImportedToken>) -> Result<Vec<(Token, String)>, SecurityError> {
        let now = Utc::now();
        let mut out = Vec::with_capacity(tokens.len());
        for t in tokens {
            check_name("token", &t.name)?;
            if !self.role_exists(&t.role) {
                return Err(SecurityError::Invalid(format!("token \"{}\": there is no role \"{}\"", t.name, t.role)));
            }
            let secret = new_secret()?;
            let token = Token {
                name: t.name,
                role: t.role,
                created_at: t.created_at.unwrap_or(now),
                expires_at: t.expires_at,
                state: t.state.unwrap_or(TokenState::Active),
                state_reason: t.state_reason,
                hash: hex::encode(hash(&secret)),
            };
            out.push((token, secret));
        }
        self.insert_new_tokens(out.iter().map(|(token, _)| token))?;
        Ok(out)
    }

    /// Store `tokens`, all in one commit or none: a name that exists, or comes twice, is a
    /// conflict.
    fn insert_new_tokens<'a>(&self, tokens: impl Iterator<Item = &'a Token>) -> Result<(), SecurityError> {
        self.db.write(|tx| {
            let mut seen = BTreeSet::new();
            for token in tokens {
                if !seen.insert(token.name.clone()) || tx.get(Keyspace::Tokens, &token_key(&token.name))?.is_some() {
                    return Err(SecurityError::Conflict(format!("a token named \"{}\" exists", token.name)));
                }
                if super::users::read_user(&*tx, &token.name)?.is_some() {
                    return Err(SecurityError::Conflict(format!(
                        "\"{}\" is a user's login: a name names one identity in the audit log",
                        token.name
                    )));
                }
                tx.insert(Keyspace::Tokens, &token_key(&token.name), to_json(token)?);
            }
            Ok(())
        })?;
        self.changed()
    }

    /// Every role: the built-in ones first, then the custom ones by name.
    pub fn roles(&self) -> Vec<(Role, bool)> {
        let snapshot = self.snapshot.load();
        BUILT_IN
            .iter()
            .filter_map(|n| built_in(n))
            .map(|r| (r, true))
            .chain(snapshot.roles.values().cloned().map(|r| (r, false)))
            .collect()
    }

    /// Create or replace custom role `role` (built-in roles cannot be changed).
    pub fn put_role(&self, role: Role, create: bool) -> Result<(), SecurityError> {
        check_name("role", &role.name)?;
        if built_in(&role.name).is_some() {
            return Err(SecurityError::Invalid(format!("role \"{}\" is built in and cannot be changed", role.name)));
        }
        let snapshot = self.snapshot.load();
        if let Some(missing) = role.data_actions.iter().find(|d| !snapshot.data_actions.contains_key(*d)) {
            return Err(SecurityError::Invalid(format!(
                "role \"{}\": there is no data action \"{missing}\"",
                role.name
            )));
        }
        self.put_record(&role_key(&role.name), "custom role", &role.name, create, to_json(&role)?)
    }

    /// Delete custom role `name`; refused while a token uses it.
    pub fn delete_role(&self, name: &str) -> Result<(), SecurityError> {
        if built_in(name).is_some() {
            return Err(SecurityError::Invalid(format!("role \"{name}\" is built in and cannot be deleted")));
        }
        if let Some(token) = self.tokens().into_iter().find(|t| t.role == name) {
            return Err(SecurityError::Conflict(format!("role \"{name}\" is used by token \"{}\"", token.name)));
        }
        if let Some(user) = self.snapshot.load().users.values().find(|u| u.role == name) {
            return Err(SecurityError::Conflict(format!("role \"{name}\" is used by user \"{}\"", user.login)));
        }
        if let Some((at, _)) = self.config_roles.load().iter().find(|(_, role)| role == name) {
            return Err(SecurityError::Conflict(format!(
                "role \"{name}\" is used by the configuration ({at}): change the configuration first"
            )));
        }
        self.delete_record(&role_key(name), "custom role", name)
    }

    /// Every data action, by name.
    pub fn data_actions(&self) -> Vec<DataAction> {
        self.snapshot.load().data_actions.values().cloned().collect()
    }

    /// Create or replace data action `action`; `known_types`: the model's aggregate types.
    pub fn put_data_action(
        &self,
        action: DataAction,
        create: bool,
        known_types: &[String],
    ) -> Result<(), SecurityError> {
        check_name("data action", &action.name)?;
        if let Some(unknown) = action.aggregates.keys().find(|t| !known_types.contains(t)) {
            return Err(SecurityError::Invalid(format!(
                "data action \"{}\": \"{unknown}\" is not an aggregate type of the model",
                action.name
            )));
        }
        self.put_record(&data_key(&action.name), "data action", &action.name, create, to_json(&action)?)
    }

    /// Delete data action `name`; refused while a role includes it.
    pub fn delete_data_action(&self, name: &str) -> Result<(), SecurityError> {
        if let Some(role) = self.snapshot.load().roles.values().find(|r| r.data_actions.contains(name)) {
            return Err(SecurityError::Conflict(format!("data action \"{name}\" is used by role \"{}\"", role.name)));
        }
        self.delete_record(&data_key(name), "data action", name)
    }

    /// Store record `key` (a `what` named `name`): a new one when `create` (409 if it exists),
    /// else a replacement (404 if it does not).
    fn put_record(
        &self,
        key: &[u8],
        what: &str,
        name: &str,
        create: bool,
        bytes: Vec<u8>,
    ) -> Result<(), SecurityError> {
        self.db.write(|tx| {
            let exists = tx.get(Keyspace::Tokens, key)?.is_some();
            if create && exists {
                return Err(SecurityError::Conflict(format!("a {what} named \"{name}\" exists")));
            }
            if !create && !exists {
                return Err(SecurityError::NotFound(format!("no {what} named \"{name}\"")));
            }
            tx.insert(Keyspace::Tokens, key, bytes);
            Ok(())
        })?;
        self.changed()
    }

    /// Remove record `key` (a `what` named `name`; 404 if there is none).
    fn delete_record(&self, key: &[u8], what: &str, name: &str) -> Result<(), SecurityError> {
        self.db.write(|tx| {
            if tx.get(Keyspace::Tokens, key)?.is_none() {
                return Err(SecurityError::NotFound(format!("no {what} named \"{name}\"")));
            }
            tx.remove(Keyspace::Tokens, key);
            Ok(())
        })?;
        self.changed()
    }

    /// After a change: visible (even when it could not be made durable: a revocation must
    /// take effect), then durable.
    pub(super) fn changed(&self) -> Result<(), SecurityError> {
        let synced = self.db.sync();
        self.reload()?;
        synced.map_err(SecurityError::from)
    }
}

/// A token in an import (an export's entry).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedToken {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: String,
    /// When it was created (now when left out).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// When it expires.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Left out of an import; an export shows it.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Active (default) or blocked.
    #[serde(default)]
    pub state: Option<TokenState>,
    /// Why.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// An export marks expired tokens.
    #[serde(default)]
    pub expired: Option<bool>,
}

fn within(name: &str, actions: &BTreeSet<Action>, data: &DataRights, caller: &Principal) -> Result<(), SecurityError> {
    if let Some(extra) = actions.iter().find(|a| !caller.may(**a)) {
        return Err(SecurityError::Forbidden(format!(
            "{} (role {}) may not grant role \"{name}\": it allows {}, which the caller may not",
            caller.subject,
            caller.role,
            extra.name()
        )));
    }
    if !data.within(&caller.data) {
        return Err(SecurityError::Forbidden(format!(
            "{} (role {}) may not grant role \"{name}\": its data rights exceed the caller's",
            caller.subject, caller.role
        )));
    }
    Ok(())
}

/// Refuse a change that leaves no active admin token that never expires (nobody could
/// administer any more, now or once the others expire): `after` is token `name` as the change
/// leaves it (`None`: deleted).
fn keeps_an_admin(view: &dyn ReadView, name: &str, after: Option<&Token>) -> Result<(), SecurityError> {
    let usable = |t: &Token| t.role == "admin" && t.state == TokenState::Active && t.expires_at.is_none();
    if after.is_some_and(usable) {
        return Ok(());
    }
    let tokens: Vec<Token> = load_all(view, b"token/")?;
    if tokens.iter().any(|t| t.name != name && usable(t)) {
        return Ok(());
    }
    Err(SecurityError::Conflict(format!(
        "token \"{name}\" is the last active admin token that never expires: create another first"
    )))
}

pub(super) fn expiry(now: DateTime<Utc>, expires_in: Option<u64>) -> Result<Option<DateTime<Utc>>, SecurityError> {
    match expires_in.filter(|s| *s > 0) {
        None => Ok(None),
        Some(seconds) => {
            let delta = i64::try_from(seconds)
                .ok()
                .and_then(chrono::TimeDelta::try_seconds)
                .ok_or_else(|| SecurityError::Invalid(format!("expires_in {seconds} is too large")))?;
            now.checked_add_signed(delta)
                .map(Some)
                .ok_or_else(|| SecurityError::Invalid(format!("expires_in {seconds} is too large")))
        }
    }
}

pub(super) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, SecurityError> {
    serde_json::to_vec(value).map_err(|e| SecurityError::Corrupt(e.to_string()))
}

/// The operations of the admin APIs (REST and GraphQL), each checked against the caller: a
/// caller never grants, changes or removes more than it has itself.
impl Security {
    /// Refuse to touch token `name` unless its current role is one `caller` could grant.
    fn may_manage_token(&self, name: &str, caller: &Principal) -> Result<(), SecurityError> {
        match self.token(name) {
            Some(token) => self.grantable(&token.role, caller).or_else(|e| match e {
                // A role deleted since: nothing to exceed.
                SecurityError::Invalid(_) => Ok(()),
                other => Err(other),
            }),
            None => Ok(()),
        }
    }

    /// [`Security::create_token`] by `caller`.
    pub fn create_token_by(
        &self,
        caller: &Principal,
        name: &str,
        role: &str,
        expires_in: Option<u64>,
    ) -> Result<(Token, String), SecurityError> {
        self.grantable(role, caller)?;
        self.create_token(name, role, expires_in)
    }

    /// Refuse a change of token `name` by itself (a leaked short-lived token must not make
    /// itself permanent or unblockable).
    fn not_itself(name: &str, caller: &Principal) -> Result<(), SecurityError> {
        if caller.subject == name {
            return Err(SecurityError::Forbidden(format!("{name} may not change itself: another administrator does")));
        }
        Ok(())
    }

    /// [`Security::edit_token`] by `caller`.
    pub fn edit_token_by(
        &self,
        caller: &Principal,
        name: &str,
        role: Option<&str>,
        expires_in: Option<u64>,
    ) -> Result<Token, SecurityError> {
        Self::not_itself(name, caller)?;
        self.may_manage_token(name, caller)?;
        if let Some(role) = role {
            self.grantable(role, caller)?;
        }
        self.edit_token(name, role, expires_in)
    }

    /// [`Security::set_token_state`] by `caller`.
    pub fn set_token_state_by(
        &self,
        caller: &Principal,
        name: &str,
        state: TokenState,
        reason: Option<String>,
    ) -> Result<Token, SecurityError> {
        Self::not_itself(name, caller)?;
        self.may_manage_token(name, caller)?;
        self.set_token_state(name, state, reason)
    }

    /// [`Security::delete_token`] by `caller`.
    pub fn delete_token_by(&self, caller: &Principal, name: &str) -> Result<(), SecurityError> {
        self.may_manage_token(name, caller)?;
        self.delete_token(name)
    }

    /// [`Security::import_tokens`] by `caller`.
    pub fn import_tokens_by(
        &self,
        caller: &Principal,
        tokens: Vec<ImportedToken>,
    ) -> Result<Vec<(Token, String)>, SecurityError> {
        for t in &tokens {
            self.grantable(&t.role, caller)?;
        }
        self.import_tokens(tokens)
    }

    /// Create (`create`) or replace custom role `role` by `caller`: neither what the role gives
    /// now nor what it will give may exceed the caller's.
    pub fn put_role_by(&self, caller: &Principal, role: Role, create: bool) -> Result<Role, SecurityError> {
        if !create {
            match self.grantable(&role.name, caller) {
                Err(SecurityError::Invalid(_)) => {
                    return Err(SecurityError::NotFound(format!("no custom role named \"{}\"", role.name)))
                }
                other => other?,
            }
        }
        self.grantable_role(&role, caller)?;
        self.put_role(role.clone(), create)?;
        Ok(role)
    }

    /// Custom role `name` as stored (not a built-in one).
    pub fn custom_role(&self, name: &str) -> Option<Role> {
        self.snapshot.load().roles.get(name).cloned()
    }

    /// [`Security::delete_role`] by `caller`: a role that gives more than the caller has is not
    /// the caller's to delete.
    pub fn delete_role_by(&self, caller: &Principal, name: &str) -> Result<(), SecurityError> {
        if let Err(e @ SecurityError::Forbidden(_)) = self.grantable(name, caller) {
            return Err(e);
        }
        self.delete_role(name)
    }

    /// Create or replace data action `action` by `caller` (neither its old nor its new rights
    /// may exceed the caller's); `known_types`: the model's aggregate types.
    pub fn put_data_action_by(
        &self,
        caller: &Principal,
        action: DataAction,
        create: bool,
        known_types: &[String],
    ) -> Result<DataAction, SecurityError> {
        if let Some(old) = self.snapshot.load().data_actions.get(&action.name) {
            self.grantable_data_action(old, caller)?;
        }
        self.grantable_data_action(&action, caller)?;
        self.put_data_action(action.clone(), create, known_types)?;
        Ok(action)
    }

    /// [`Security::delete_data_action`] by `caller`.
    pub fn delete_data_action_by(&self, caller: &Principal, name: &str) -> Result<(), SecurityError> {
        if let Some(old) = self.snapshot.load().data_actions.get(name) {
            self.grantable_data_action(old, caller)?;
        }
        self.delete_data_action(name)
    }
}
