//! Users and sign-in (TDG 2.7.2, `account_manager` 2.16.1.13): users with a login, e-mail, role
//! and expiry, passwords hashed with argon2id, the password policy, lock-out after failed
//! attempts and after inactivity, one-time passwords, and sessions (a cookie for the web UI).
//!
//! Keys in keyspace `Tokens`: `user/<login>` -> [`User`] (JSON with the password's PHC string),
//! `session/<hex SHA-256 of the secret>` -> [`Session`]. Sessions live in storage like every other
//! piece of security state, so instances sharing a store share them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest password accepted (characters); longer ones are refused before hashing.
pub const PASSWORD_MAX: usize = 1024;
/// `ban_inactive_more_seconds`' default and largest value: 45 days (TDG's).
pub const INACTIVE_MAX_SECONDS: u64 = 45 * 24 * 3600;
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ferrogrid_session";
/// The header that carries a session's anti-CSRF token on requests that change something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `account_manager` settings (TDG's names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AccountSettings {
    /// Passwords are never set by hand: creating a user or resetting a password generates a
    /// one-time password, which the user must change at the first sign-in (default false).
    #[serde(default)]
    pub only_one_time_passwords: bool,
    /// The least time between two changes of one's own password, seconds (default: none).
    #[serde(default)]
    pub password_change_timeout_seconds: Option<u64>,
    /// Block a user after this many failed sign-in attempts in a row (default: never).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub block_after_n_failed_attempts: Option<u32>,
    /// Block a user who has not signed in for this many seconds (default and most: 45 days).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub ban_inactive_more_seconds: Option<u64>,
    /// What a password must contain.
    #[serde(default)]
    pub password_policy: PasswordPolicy,
    /// How long a session (a sign-in of the web UI) lasts, seconds (default 8 hours).
    #[serde(default = "default_session_lifetime")]
    #[schemars(range(min = 1))]
    pub session_lifetime_seconds: u64,
    /// Mail generated one-time passwords to the user's e-mail through this SMTP output of
    /// `connector.output`, instead of answering them to whoever created the user or reset the
    /// password (users then need an e-mail).
    #[serde(default)]
    pub output: Option<PasswordMail>,
}

/// `account_manager.output`: the SMTP output one-time passwords are mailed through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PasswordMail {
    /// Name of an output of `type: smtp` in `connector.output`.
    pub name: String,
    /// Options of the mail.
    #[serde(default)]
    pub options: PasswordMailOptions,
}

/// `account_manager.output.options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PasswordMailOptions {
    /// Subject of the mail (default "Your one-time password").
    #[serde(default)]
    pub subject: Option<String>,
}

fn default_session_lifetime() -> u64 {
    8 * 3600
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            only_one_time_passwords: false,
            password_change_timeout_seconds: None,
            block_after_n_failed_attempts: None,
            ban_inactive_more_seconds: None,
            password_policy: PasswordPolicy::default(),
            session_lifetime_seconds: default_session_lifetime(),
            output: None,
        }
    }
}

impl AccountSettings {
    /// Inactivity after which a user is blocked, seconds.
    pub fn inactive_limit(&self) -> u64 {
        self.ban_inactive_more_seconds.filter(|s| *s <= INACTIVE_MAX_SECONDS).unwrap_or(INACTIVE_MAX_SECONDS)
    }
}

/// The password policy (TDG's `password_policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PasswordPolicy {
    /// The least length, characters (default 8).
    #[serde(default = "default_min_length")]
    #[schemars(range(min = 1, max = 1024))]
    pub min_length: usize,
    /// The classes of characters a password must include.
    #[serde(default)]
    pub include: CharacterClasses,
}

fn default_min_length() -> usize {
    8
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_length: default_min_length(), include: CharacterClasses::default() }
    }
}

/// Character classes a password must include (TDG's defaults: lower, upper and digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct CharacterClasses {
    /// Latin lower-case letters (default true).
    #[serde(default = "yes")]
    pub lower: bool,
    /// Latin upper-case letters (default true).
    #[serde(default = "yes")]
    pub upper: bool,
    /// Digits 0-9 (default true).
    #[serde(default = "yes")]
    pub digits: bool,
    /// One of ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~`` (default false).
    #[serde(default)]
    pub symbols: bool,
}

fn yes() -> bool {
    true
}

impl Default for CharacterClasses {
    fn default() -> Self {
        CharacterClasses { lower: true, upper: true, digits: true, symbols: false }
    }
}

const SYMBOLS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

impl PasswordPolicy {
    /// Whether the policy can be met: a least length of 1 to the longest password.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_length == 0 || self.min_length > PASSWORD_MAX {
            return Err(format!("min_length: from 1 to {PASSWORD_MAX}"));
        }
        Ok(())
    }

    /// Check `password`: every rule it breaks, in one message.
    pub fn check(&self, password: &str) -> Result<(), String> {
        let length = password.chars().count();
        let mut broken = Vec::new();
        if length < self.min_length {
            broken.push(format!("at least {} characters", self.min_length));
        }
        if length > PASSWORD_MAX {
            broken.push(format!("at most {PASSWORD_MAX} characters"));
        }
        let classes = [
            (self.include.lower, "a lower-case letter (a-z)", password.chars().any(|c| c.is_ascii_lowercase())),
            (self.include.upper, "an upper-case letter (A-Z)", password.chars().any(|c| c.is_ascii_uppercase())),
            (self.include.digits, "a digit (0-9)", password.chars().any(|c| c.is_ascii_digit())),
            (
                self.include.symbols,
                "a symbol (one of !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~)",
                password.chars().any(|c| SYMBOLS.contains(c)),
            ),
        ];
        broken.extend(classes.iter().filter(|(wanted, _, has)| *wanted && !has).map(|(_, what, _)| what.to_string()));
        if broken.is_empty() {
            Ok(())
        } else {
            Err(format!("the password policy needs {}", broken.join(", ")))
        }
    }

    /// A random password that meets the policy: at least 16 characters, one of each class the
    /// policy asks for.
    pub fn generate(&self) -> Result<String, super::SecurityError> {
        const LOWER: &str = "abcdefghijkmnopqrstuvwxyz";
        const UPPER: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ";
        const DIGITS: &str = "23456789";
        let length = self.min_length.clamp(16, PASSWORD_MAX);
        let mut alphabet = String::from(LOWER);
        alphabet.push_str(UPPER);
        alphabet.push_str(DIGITS);
        if self.include.symbols {
            alphabet.push_str(SYMBOLS);
        }
        let required: Vec<&str> = [
            (self.include.lower, LOWER),
            (self.include.upper, UPPER),
            (self.include.digits, DIGITS),
            (self.include.symbols, SYMBOLS),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, set)| *set)
        .collect();
        loop {
            let mut bytes = vec![0u8; length];
            getrandom::fill(&mut bytes).map_err(|e| super::SecurityError::Random(e.to_string()))?;
            let chars: Vec<char> = alphabet.chars().collect();
            // 256 is not a multiple of the alphabet's size; the bias is a fraction of a bit over
            // 16+ characters of 57+ symbols, far above any guessing budget.
            let password: String = bytes.iter().map(|b| chars[*b as usize % chars.len()]).collect();
            if required.iter().all(|set| password.chars().any(|c| set.contains(c))) && self.check(&password).is_ok() {
                return Ok(password);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_every_rule_a_password_breaks() {
        let policy = PasswordPolicy::default();
        assert!(policy.check("Abcdefg1").is_ok());
        let err = policy.check("abc").unwrap_err();
        assert!(err.contains("at least 8 characters"), "{err}");
        assert!(err.contains("upper-case"), "{err}");
        assert!(err.contains("digit"), "{err}");
        assert!(!err.contains("lower-case"), "{err}");
        let strict =
            PasswordPolicy { min_length: 4, include: CharacterClasses { symbols: true, ..Default::default() } };
        assert!(strict.check("Abc1").unwrap_err().contains("symbol"));
        assert!(strict.check("Abc1!").is_ok());
        assert!(policy.check(&"Aa1".repeat(400)).unwrap_err().contains("at most 1024"));
        // Non-Latin letters count as characters, not as a class.
        assert!(policy.check("Пароль12").unwrap_err().contains("lower-case"));
    }

    #[test]
    fn generated_passwords_meet_the_policy() {
        for include in [
            CharacterClasses::default(),
            CharacterClasses { symbols: true, ..Default::default() },
            CharacterClasses { lower: false, upper: false, digits: true, symbols: false },
        ] {
            let policy = PasswordPolicy { min_length: 20, include };
            let a = policy.generate().unwrap();
            let b = policy.generate().unwrap();
            assert!(policy.check(&a).is_ok(), "{a}");
            assert_eq!(a.chars().count(), 20);
            assert_ne!(a, b);
        }
    }
}
