//! LDAP / Active Directory sign-in (TDG 2.7.6; the `ldap` section, 2.16.1.17).
//!
//! A login `name@domain` whose domain is configured signs in against that domain's servers:
//! a bind as the user (no service account; an empty password is refused before anything is
//! sent, as an LDAP server takes it for an anonymous bind), then the user's groups (its
//! `memberOf` values and the groups naming it as `member`, `uniqueMember` or `memberUid`),
//! mapped to the first role whose `domain_groups` includes one. The bind DN is the user
//! principal name itself with `use_active_directory`, else `uid=name` (then `cn=name`) under
//! each organizational unit of the domain's base (`dc=example,dc=com` for `example.com`). Hosts
//! are tried in order; each operation waits at most `search_timeout` seconds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// One domain of the `ldap` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapDomain {
    /// The domain of the logins (`name@domain`); its components are the base DN.
    #[schemars(length(min = 1))]
    pub domain: String,
    /// Organizational units the users are in (`ou=...` under the base).
    #[serde(default)]
    pub organizational_units: Vec<String>,
    /// Servers, `host:port`, tried in order.
    #[schemars(length(min = 1))]
    pub hosts: Vec<String>,
    /// Active Directory: bind with the user principal name (the login) and find the user by
    /// `userPrincipalName`.
    #[serde(default)]
    pub use_active_directory: bool,
    /// `ldaps://` instead of `ldap://` (default false).
    #[serde(default)]
    pub use_tls: bool,
    /// How long one connection or operation may take, seconds (default 2).
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 0.001))]
    pub search_timeout: f64,
    /// Roles by group: the first whose `domain_groups` holds one of the user's groups.
    #[serde(default)]
    pub roles: Vec<LdapRole>,
}

fn default_timeout() -> f64 {
    2.0
}

/// A role given to the members of LDAP groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapRole {
    /// The role (built-in or custom).
    pub role: String,
    /// Group DNs (`cn=admins,ou=groups,dc=example,dc=com`).
    pub domain_groups: Vec<String>,
}

/// The roles `domains` map groups to, by where (`ldap[0].roles[1].role`).
pub fn mapped_roles(domains: &[LdapDomain]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (d, domain) in domains.iter().enumerate() {
        for (r, mapping) in domain.roles.iter().enumerate() {
            out.push((format!("ldap[{d}].roles[{r}].role"), mapping.role.clone()));
        }
    }
    out
}

/// Who signed in through LDAP.
#[derive(Debug, Clone)]
pub struct LdapIdentity {
    /// The login as the directory spells it (`uid@domain`, or the principal name in lower case).
    pub login: String,
    /// The role its groups map to.
    pub role: String,
    /// The DN it was bound as.
    pub dn: String,
}

/// Why an LDAP sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// Wrong name or password (or an empty password).
    #[error("wrong login or password")]
    InvalidCredentials,
    /// Bound, but in no group that maps to a role.
    #[error("{0} is in no LDAP group that has a role here")]
    NoRole(String),
    /// No server of the domain answered (external). The text names the domain only; `reason`
    /// (each host's error) is for the log.
    #[error("the LDAP servers of {domain} cannot be reached")]
    Unavailable {
        /// The domain.
        domain: String,
        /// What each host said.
        reason: String,
    },
}

/// The configured domain of `login`, if it is `name@domain` for one.
pub fn domain_of<'a>(domains: &'a [LdapDomain], login: &str) -> Option<(&'a LdapDomain, String)> {
    let (name, domain) = login.rsplit_once('@')?;
    let config = domains.iter().find(|d| d.domain.eq_ignore_ascii_case(domain))?;
    Some((config, name.to_string()))
}

/// Refuses a local user's `login` that names a configured LDAP domain (`name@domain`): sign-ins
/// with such a login go to the directory, so that user could never sign in.
pub fn check_local_login(domains: &[LdapDomain], login: &str) -> Result<(), super::SecurityError> {
    match domain_of(domains, login) {
        Some((domain, _)) => Err(super::SecurityError::Invalid(format!(
            "login \"{login}\": sign-ins as name@{} go to that LDAP directory; a local user needs another login",
            domain.domain
        ))),
        None => Ok(()),
    }
}

/// Refuses a password change of `login` when it signs in through a configured LDAP domain: its
/// password is the directory's.
pub fn check_own_password_change(domains: &[LdapDomain], login: &str) -> Result<(), String> {
    match domain_of(domains, login) {
        Some(_) => Err(format!("{login} signs in through LDAP: its password is changed in the directory")),
        None => Ok(()),
    }
}

/// The base DN of `domain`: `dc=` per component.
fn base_dn(domain: &str) -> String {
    domain
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| format!("dc={}", ldap3::dn_escape(p)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A DN as compared: lower case, no spaces around separators.
fn normalized(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// The DNs to bind as, in order.
fn bind_dns(config: &LdapDomain, login: &str, name: &str) -> Vec<String> {
    if config.use_active_directory {
        return vec![login.to_string()];
    }
    let base = base_dn(&config.domain);
    let name = ldap3::dn_escape(name);
    let parents: Vec<String> = if config.organizational_units.is_empty() {
        vec![base]
    } else {
        config.organizational_units.iter().map(|ou| format!("ou={},{base}", ldap3::dn_escape(ou.as_str()))).collect()
    };
    parents.iter().flat_map(|p| [format!("uid={name},{p}"), format!("cn={name},{p}")]).collect()
}

/// Sign `login` (`name@domain` of `config`) in with `password`.
pub async fn sign_in(config: &LdapDomain, login: &str, name: &str, password: &str) -> Result<LdapIdentity, LdapError> {
    // The local sign-in's limits apply here too; an empty password would be an anonymous bind.
    let bad = |s: &str| s.chars().any(char::is_control);
    if password.is_empty()
        || name.is_empty()
        || bad(password)
        || bad(login)
        || password.chars().count() > super::accounts::PASSWORD_MAX
        || login.chars().count() > super::store::NAME_MAX
    {
        return Err(LdapError::InvalidCredentials);
    }
    let timeout = Duration::from_secs_f64(config.search_timeout.clamp(0.001, 600.0));
    // One host gets at most this long in all (connect, binds, searches, unbind).
    let per_host = timeout.saturating_mul(4);
    let mut reasons = Vec::new();
    for host in &config.hosts {
        let url = format!("{}://{host}", if config.use_tls { "ldaps" } else { "ldap" });
        let settings = ldap3::LdapConnSettings::new().set_conn_timeout(timeout);
        let (conn, mut ldap) = match ldap3::LdapConnAsync::with_settings(settings, &url).await {
            Ok(pair) => pair,
            Err(e) => {
                reasons.push(format!("{host}: {e}"));
                continue;
            }
        };
        ldap3::drive!(conn);
        let outcome =
            tokio::time::timeout(per_host, bound_identity(&mut ldap, config, login, name, password, timeout)).await;
        let _ = tokio::time::timeout(timeout, ldap.unbind()).await;
        match outcome {
            Ok(Ok(found)) => return found,
            Ok(Err(e)) => reasons.push(format!("{host}: {e}")),
            Err(_) => reasons.push(format!("{host}: no answer within {per_host:?}")),
        }
    }
    Err(LdapError::Unavailable { domain: config.domain.clone(), reason: reasons.join("; ") })
}

/// On one connection: bind, then find the groups and the role. `Err`: the server failed (try
/// the next host); `Ok(Err)`: its answer.
async fn bound_identity(
    ldap: &mut ldap3::Ldap,
    config: &LdapDomain,
    login: &str,
    name: &str,
    password: &str,
    timeout: Duration,
) -> Result<Result<LdapIdentity, LdapError>, ldap3::LdapError> {
    const INVALID_CREDENTIALS: u32 = 49;
    let mut bound = None;
    for dn in bind_dns(config, login, name) {
        let result = ldap.with_timeout(timeout).simple_bind(&dn, password).await?;
        match result.rc {
            0 => {
                bound = Some(dn);
                break;
            }
            INVALID_CREDENTIALS => continue,
            // Anything else (busy, unwilling to perform) is the server's failure: the next
            // host is tried.
            _ => {
                result.success()?;
            }
        }
    }
    let Some(dn) = bound else { return Ok(Err(LdapError::InvalidCredentials)) };
    let domain = config.domain.to_lowercase();
    let base = base_dn(&config.domain);
    let mut groups = BTreeSet::new();
    // The user's own entry: its DN (Active Directory: found by userPrincipalName) and memberOf.
    let (entry_base, scope, filter) = if config.use_active_directory {
        (base.clone(), ldap3::Scope::Subtree, format!("(userPrincipalName={})", ldap3::ldap_escape(login)))
    } else {
        (dn.clone(), ldap3::Scope::Base, "(objectClass=*)".to_string())
    };
    let (entries, _) = ldap
        .with_timeout(timeout)
        .search(&entry_base, scope, &filter, vec!["memberOf", "uid", "userPrincipalName"])
        .await?
        .success()?;
    // Exactly one entry is the user (two entries with one principal name give no one a role).
    let mut entries = entries.into_iter();
    let (Some(entry), None) = (entries.next(), entries.next()) else {
        return Ok(Err(LdapError::NoRole(login.to_string())));
    };
    let entry = ldap3::SearchEntry::construct(entry);
    let user_dn = entry.dn.clone();
    for group in entry.attrs.get("memberOf").into_iter().flatten() {
        groups.insert(normalized(group));
    }
    // The identity as the directory spells it (one session index and audit subject however
    // the login was typed): the principal name, or the entry's uid at the domain.
    let first = |attr: &str| entry.attrs.get(attr).and_then(|v| v.first()).cloned();
    let uid = first("uid").unwrap_or_else(|| name.to_string());
    let canonical = if config.use_active_directory {
        first("userPrincipalName").unwrap_or_else(|| login.to_string()).to_lowercase()
    } else {
        format!("{uid}@{domain}")
    };
    // Groups that name the user.
    let filter = format!(
        "(|(member={dn})(uniqueMember={dn})(memberUid={uid}))",
        dn = ldap3::ldap_escape(user_dn.as_str()),
        uid = ldap3::ldap_escape(uid.as_str())
    );
    let (entries, _) =
        ldap.with_timeout(timeout).search(&base, ldap3::Scope::Subtree, &filter, vec!["1.1"]).await?.success()?;
    for entry in entries {
        groups.insert(normalized(&ldap3::SearchEntry::construct(entry).dn));
    }
    let role = config
        .roles
        .iter()
        .find(|r| r.domain_groups.iter().any(|g| groups.contains(&normalized(g))))
        .map(|r| r.role.clone());
    Ok(match role {
        Some(role) => Ok(LdapIdentity { login: canonical, role, dn: user_dn }),
        None => Err(LdapError::NoRole(canonical)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(ad: bool, ous: &[&str]) -> LdapDomain {
        LdapDomain {
            domain: "example.com".into(),
            organizational_units: ous.iter().map(|s| s.to_string()).collect(),
            hosts: vec!["127.0.0.1:1".into()],
            use_active_directory: ad,
            use_tls: false,
            search_timeout: 2.0,
            roles: Vec::new(),
        }
    }

    #[test]
    fn bind_dns_escape_the_name_and_follow_the_units() {
        assert_eq!(base_dn("example.com"), "dc=example,dc=com");
        assert_eq!(
            bind_dns(&domain(false, &["people"]), "ada@example.com", "ada"),
            vec!["uid=ada,ou=people,dc=example,dc=com", "cn=ada,ou=people,dc=example,dc=com"]
        );
        let dns = bind_dns(&domain(false, &[]), "x@example.com", "a,b=c");
        assert_eq!(dns[0], "uid=a\\2cb\\3dc,dc=example,dc=com");
        assert_eq!(bind_dns(&domain(true, &["people"]), "ada@example.com", "ada"), vec!["ada@example.com"]);
        assert_eq!(normalized("CN=Admins, OU=Groups,dc=Example,dc=com"), "cn=admins,ou=groups,dc=example,dc=com");
        let domains = vec![domain(false, &[])];
        assert_eq!(domain_of(&domains, "ada@EXAMPLE.com").map(|(_, n)| n), Some("ada".to_string()));
        assert!(domain_of(&domains, "ada@other.org").is_none());
        assert!(domain_of(&domains, "ada").is_none());
    }

    #[test]
    fn an_empty_password_is_refused_before_any_server_is_asked() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // The host does not exist: an attempt to reach it would answer Unavailable.
        let outcome = rt.block_on(sign_in(&domain(false, &[]), "ada@example.com", "ada", ""));
        assert!(matches!(outcome, Err(LdapError::InvalidCredentials)), "{outcome:?}");
    }
}
