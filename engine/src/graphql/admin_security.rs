//! The admin schema's security namespaces, with TDG's names (3.2.1): `token`, `user`,
//! `access_role`, `data_access_action`, `audit_log` and `password_generator`, for reading
//! (`query`) and changing (`mutation`). Each field needs its action of the role model (the REST
//! API's: `tokens_read`, `users_admin`, ...), on top of the schema's `admin_graphql_read` /
//! `admin_graphql_write`; a refusal is a FORBIDDEN error, recorded in the audit log. Every
//! change goes through the same caller-checked operations as the REST API's.
//!
//! Differences from TDG: users are named by `login` (TDG: a generated `uid`), roles and data
//! actions by `name` (TDG: an id).

use super::admin::json_field;
use super::types::JSON;
use super::{caller, coded, engine_of, refused_as};
use crate::security::accounts::AccountSettings;
use crate::security::audit::{AuditLog, AuditQuery, AuditSettings, RequestSource, Severity};
use crate::security::mail::{hand_over, HandOver, PasswordMailer};
use crate::security::sessions::{hashing_turn, HashingTurn, SignInError};
use crate::security::store::ImportedToken;
use crate::security::users::{NewUser, User, UserPatch};
use crate::security::{Action, DataAction, Principal, Role, Security, SecurityError, TokenState};
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, TypeRef,
};
use async_graphql::Value as GqlValue;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The session a request was made with (set by the HTTP handler): `user { self_modify }` keeps it.
#[derive(Clone)]
pub struct RequestSession(pub Option<String>);

/// Everything a resolver works with, taken from the request before it goes off the reactor.
struct Call {
    security: Arc<Security>,
    caller: Principal,
    args: Map<String, Value>,
    turn: Option<HashingTurn>,
    settings: AccountSettings,
    /// The configuration's password policy (without an admin's).
    configured_policy: crate::security::accounts::PasswordPolicy,
    mailer: Option<PasswordMailer>,
    known_types: Vec<String>,
    /// The configuration's LDAP domains (a local user's login may not name one).
    ldap: Vec<crate::security::ldap::LdapDomain>,
    audit: Option<Arc<AuditLog>>,
    source: String,
    session: Option<String>,
}

impl Call {
    /// The user with its generated password: in `password`, or mailed (`password_sent_to`);
    /// MAIL_FAILED when the mail failed (`done` says what happened to the user all the same).
    /// Runs on a blocking thread of the async runtime.
    fn with_password(&self, user: &User, password: String, done: &str) -> async_graphql::Result<Value> {
        // The hashing is done: a slow mail server must not hold a turn other sign-ins wait for.
        if let Some(turn) = &self.turn {
            turn.end();
        }
        let handed = tokio::runtime::Handle::current().block_on(hand_over(
            self.mailer.as_ref(),
            user,
            password,
            self.audit.as_deref(),
            &self.caller.subject,
            self.source.clone(),
        ));
        match handed {
            HandOver::Shown(password) => Ok(user_value(user, Some(password))),
            HandOver::Mailed(to) => {
                let mut v = user_value(user, None);
                v["password_sent_to"] = to.into();
                Ok(v)
            }
            HandOver::Failed(e) => Err(coded(
                format!(
                    "user \"{}\" {done}, but mailing the one-time password failed: {e}; reset the password to mail another",
                    user.login
                ),
                "MAIL_FAILED",
            )),
        }
    }

    /// The arguments as `T` (their names are `T`'s fields).
    fn args<T: DeserializeOwned>(&self) -> async_graphql::Result<T> {
        serde_json::from_value(Value::Object(self.args.clone())).map_err(|e| coded(e.to_string(), "BAD_REQUEST"))
    }

    fn string(&self, name: &str) -> async_graphql::Result<String> {
        match self.args.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(coded(format!("{name} is needed"), "BAD_REQUEST")),
        }
    }

    fn optional_string(&self, name: &str) -> Option<String> {
        self.args.get(name).and_then(Value::as_str).map(str::to_string)
    }

    fn turn(&self) -> async_graphql::Result<&HashingTurn> {
        self.turn.as_ref().ok_or_else(|| coded("no hashing turn".into(), "INTERNAL"))
    }

    fn audit(&self) -> async_graphql::Result<&AuditLog> {
        self.audit.as_deref().ok_or_else(|| coded("no audit log".into(), "INTERNAL"))
    }
}

fn failed(e: SecurityError) -> async_graphql::Error {
    let code = match e {
        SecurityError::Invalid(_) => "BAD_REQUEST",
        SecurityError::NotFound(_) => "NOT_FOUND",
        SecurityError::Forbidden(_) => "FORBIDDEN",
        SecurityError::Conflict(_) => "CONFLICT",
        _ => "INTERNAL",
    };
    coded(e.to_string(), code)
}

/// How a field's JSON answer is handed to GraphQL.
#[derive(Clone, Copy)]
enum Shape {
    /// A scalar (String, Boolean, Int, JSON).
    Scalar,
    /// One object (or null).
    Object,
    /// A list of objects.
    List,
}

type Resolve = fn(&Call) -> async_graphql::Result<Value>;

/// A field that needs `action` (none: any caller), takes a hashing turn when `hashes`, and
/// runs `resolve` off the reactor. A refusal by the store's checks (granting more than one
/// has, changing oneself) is recorded like the route's refusal; a change (a field that needs
/// an `..._admin` action, or changes one's own password) is recorded with what it named.
fn op(name: &'static str, ty: TypeRef, shape: Shape, action: Option<Action>, hashes: bool, resolve: Resolve) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::new(async move {
            let call = prepare(&ctx, action, hashes).await?;
            let who = call.caller.clone();
            let named = ["name", "login"].iter().find_map(|k| call.optional_string(k)).unwrap_or_default();
            let changes = action.is_some_and(|a| !a.reads_only()) || name == "self_modify";
            let outcome = tokio::task::spawn_blocking(move || resolve(&call))
                .await
                .map_err(|e| coded(e.to_string(), "INTERNAL"))?;
            let what = format!("{name} {named}");
            let value = match outcome {
                Ok(value) => {
                    if changes {
                        record_change(&ctx, &who, &what);
                    }
                    value
                }
                Err(e) if code_of(&e) == Some("FORBIDDEN") => {
                    let recorded = refused_as(&ctx, &who, "admin_graphql", what);
                    return Err(async_graphql::Error { message: e.message, ..recorded });
                }
                Err(e) if code_of(&e) == Some("MAIL_FAILED") => {
                    // The change was made; only its mail failed (recorded on its own).
                    record_change(&ctx, &who, &what);
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            Ok(match (shape, value) {
                (_, Value::Null) => None,
                (Shape::Scalar, v) => Some(FieldValue::value(super::node::gql_value(&v))),
                (Shape::Object, v) => Some(FieldValue::owned_any(v)),
                (Shape::List, Value::Array(items)) => {
                    Some(FieldValue::list(items.into_iter().map(FieldValue::owned_any)))
                }
                (Shape::List, other) => Some(FieldValue::list([FieldValue::owned_any(other)])),
            })
        })
    })
}

/// The `extensions.code` of an error, if it has one.
fn code_of(e: &async_graphql::Error) -> Option<&str> {
    match e.extensions.as_ref().and_then(|x| x.get("code")) {
        Some(GqlValue::String(code)) => Some(code.as_str()),
        _ => None,
    }
}

/// Refuse (FORBIDDEN, recorded) unless the caller's role allows `action`.
pub(super) fn need(ctx: &ResolverContext<'_>, action: Action) -> async_graphql::Result<()> {
    let who = caller(ctx)?;
    if who.may(action) {
        return Ok(());
    }
    Err(refused_as(ctx, who, "admin_graphql", action.description().to_string()))
}

/// An INFO event for a change made through the admin schema.
fn record_change(ctx: &ResolverContext<'_>, who: &Principal, what: &str) {
    let Some(audit) = ctx.data_opt::<Arc<AuditLog>>() else { return };
    audit.record(crate::security::audit::Event::now(
        Severity::Info,
        &who.subject,
        ctx.data_opt::<RequestSource>().map_or("-".to_string(), |s| s.0.clone()),
        "admin_graphql",
        what.to_string(),
        "ok".into(),
        ctx.path_node.map(|p| p.to_string()).unwrap_or_default(),
    ));
}

async fn prepare(ctx: &ResolverContext<'_>, action: Option<Action>, hashes: bool) -> async_graphql::Result<Call> {
    if let Some(action) = action {
        need(ctx, action)?;
    }
    let who = caller(ctx)?;
    // Arguments given as null are left out, as if not given.
    let mut args = Map::new();
    for (name, value) in ctx.args.as_index_map() {
        let value = value.clone().into_json()?;
        if !value.is_null() {
            args.insert(name.to_string(), value);
        }
    }
    if args.get("expires_in").and_then(Value::as_i64).is_some_and(|s| s < 0) {
        return Err(coded("expires_in: seconds, 0 or more".into(), "BAD_REQUEST"));
    }
    let turn =
        if hashes { Some(hashing_turn().await.map_err(|busy| coded(busy.to_string(), "UNAVAILABLE"))?) } else { None };
    let rt = engine_of(ctx)?.runtime();
    let mailer = PasswordMailer::of(&rt.config.account_manager, &rt.outputs).map_err(|e| coded(e, "INTERNAL"))?;
    let security = ctx.data::<Arc<Security>>()?.clone();
    Ok(Call {
        settings: security.account_settings(&rt.config.account_manager),
        configured_policy: rt.config.account_manager.password_policy.clone(),
        security,
        caller: who.clone(),
        args,
        turn,
        mailer,
        known_types: rt.repository.model().aggregates().map(|t| t.name.clone()).collect(),
        ldap: rt.config.ldap.clone(),
        audit: ctx.data_opt::<Arc<AuditLog>>().cloned(),
        source: ctx.data_opt::<RequestSource>().map_or("-".to_string(), |s| s.0.clone()),
        session: ctx.data_opt::<RequestSession>().and_then(|s| s.0.clone()),
    })
}

fn string() -> TypeRef {
    TypeRef::named(TypeRef::STRING)
}

fn string_nn() -> TypeRef {
    TypeRef::named_nn(TypeRef::STRING)
}

fn arg(name: &'static str, ty: TypeRef) -> InputValue {
    InputValue::new(name, ty)
}

fn object_types() -> Vec<Object> {
    let fields = |object: Object, names: &[(&'static str, TypeRef)]| {
        names.iter().fold(object, |o, (name, ty)| o.field(json_field(name, ty.clone())))
    };
    let int = || TypeRef::named(TypeRef::INT);
    let boolean = || TypeRef::named(TypeRef::BOOLEAN);
    let strings = || TypeRef::named_nn_list_nn(TypeRef::STRING);
    vec![
        fields(
            Object::new("Token").description("An application token (its secret only in `token`, once)"),
            &[
                ("name", string_nn()),
                ("role", string_nn()),
                ("created_at", string_nn()),
                ("expires_at", string()),
                ("expires_in", int()),
                ("expired", boolean()),
                ("state", string_nn()),
                ("state_reason", string()),
                ("token", string()),
            ],
        ),
        fields(
            Object::new("User")
                .description("A user (a generated password only in `password`, once; or mailed: `password_sent_to`)"),
            &[
                ("login", string_nn()),
                ("username", string()),
                ("email", string()),
                ("role", string_nn()),
                ("created_at", string_nn()),
                ("expires_in", int()),
                ("password_expires_at", string()),
                ("password_expired", boolean()),
                ("state", string_nn()),
                ("state_reason", string()),
                ("failed_login_attempts", int()),
                ("last_login", string()),
                ("last_password_update_time", string()),
                ("one_time_password", boolean()),
                ("password", string()),
                ("password_sent_to", string()),
            ],
        ),
        fields(
            Object::new("AccessRole").description("A role: its actions and data actions"),
            &[
                ("name", string_nn()),
                ("description", string()),
                ("actions", strings()),
                ("data_actions", strings()),
                ("built_in", boolean()),
            ],
        ),
        fields(
            Object::new("AccessAction").description("An action of the role model"),
            &[("name", string_nn()), ("description", string_nn())],
        ),
        fields(
            Object::new("DataAccessAction").description("Read/write rights per aggregate type"),
            &[("name", string_nn()), ("aggregates", TypeRef::named_nn(JSON))],
        ),
        fields(
            Object::new("AuditEvent").description("An entry of the audit log"),
            &[
                ("id", string_nn()),
                ("time", string_nn()),
                ("severity", string_nn()),
                ("subject", string_nn()),
                ("source", string_nn()),
                ("action", string_nn()),
                ("object", string_nn()),
                ("outcome", string_nn()),
                ("message", string()),
            ],
        ),
        fields(
            Object::new("PasswordCheck").description("Whether a password meets the policy"),
            &[("valid", TypeRef::named_nn(TypeRef::BOOLEAN)), ("error", string())],
        ),
    ]
}

fn token_value(token: &crate::security::Token, secret: Option<String>) -> Value {
    let mut v = token.public(chrono::Utc::now());
    if let Some(secret) = secret {
        v["token"] = secret.into();
    }
    v
}

fn user_value(user: &crate::security::users::User, password: Option<String>) -> Value {
    let mut v = user.public(chrono::Utc::now());
    if let Some(password) = password {
        v["password"] = password.into();
    }
    v
}

fn role_value(role: &Role, built_in: bool) -> Value {
    let mut v = serde_json::to_value(role).unwrap_or_default();
    v["built_in"] = built_in.into();
    v
}

fn to_value(v: impl serde::Serialize) -> async_graphql::Result<Value> {
    serde_json::to_value(v).map_err(|e| coded(e.to_string(), "INTERNAL"))
}

fn state_arg(c: &Call) -> async_graphql::Result<TokenState> {
    match c.string("state")?.as_str() {
        "active" => Ok(TokenState::Active),
        "blocked" => Ok(TokenState::Blocked),
        other => Err(coded(format!("state \"{other}\": active or blocked"), "BAD_REQUEST")),
    }
}

fn expires_in(c: &Call) -> Option<u64> {
    c.args.get("expires_in").and_then(Value::as_u64)
}

/// The role as changed by `update` / `update_access_role_actions`.
fn changed_role(c: &Call, toggles: bool) -> async_graphql::Result<Role> {
    let name = c.string("name")?;
    let mut role =
        c.security.custom_role(&name).ok_or_else(|| coded(format!("no custom role \"{name}\""), "NOT_FOUND"))?;
    if toggles {
        let list: Vec<Toggle> = serde_json::from_value(c.args.get("actions").cloned().unwrap_or_default())
            .map_err(|e| coded(format!("actions: {e}"), "BAD_REQUEST"))?;
        for t in list {
            let action: Action = serde_json::from_value(Value::String(t.id.clone()))
                .map_err(|_| coded(format!("there is no action \"{}\"", t.id), "BAD_REQUEST"))?;
            if t.allowed {
                role.actions.insert(action);
            } else {
                role.actions.remove(&action);
            }
        }
        return Ok(role);
    }
    if let Some(description) = c.optional_string("description") {
        role.description = description;
    }
    if let Some(actions) = c.args.get("actions").filter(|v| !v.is_null()) {
        role.actions =
            serde_json::from_value(actions.clone()).map_err(|e| coded(format!("actions: {e}"), "BAD_REQUEST"))?;
    }
    if let Some(data) = c.args.get("data_actions").filter(|v| !v.is_null()) {
        role.data_actions =
            serde_json::from_value(data.clone()).map_err(|e| coded(format!("data_actions: {e}"), "BAD_REQUEST"))?;
    }
    Ok(role)
}

#[derive(serde::Deserialize)]
struct Toggle {
    id: String,
    allowed: bool,
}

/// The audit settings with `change` applied, made the override.
fn change_audit(c: &Call, change: impl FnOnce(&mut AuditSettings)) -> async_graphql::Result<AuditSettings> {
    let audit = c.audit()?;
    let mut settings = audit.settings();
    change(&mut settings);
    audit.set_override_by(Some(settings.clone()), &c.caller.subject, c.source.clone()).map_err(failed)?;
    Ok(settings)
}

fn queries() -> Vec<Object> {
    use Action as A;
    use Shape::{List, Object as One, Scalar};
    let token = || TypeRef::named("Token");
    let tokens = || TypeRef::named_nn_list_nn("Token");
    let user = || TypeRef::named("User");
    let users = || TypeRef::named_nn_list_nn("User");
    vec![
        Object::new("TokenQuery")
            .field(op("list", tokens(), List, Some(A::TokensRead), false, |c| {
                Ok(Value::Array(c.security.tokens().iter().map(|t| token_value(t, None)).collect()))
            }))
            .field(
                op("get", token(), One, Some(A::TokensRead), false, |c| {
                    Ok(c.security.token(&c.string("name")?).map_or(Value::Null, |t| token_value(&t, None)))
                })
                .argument(arg("name", string_nn())),
            ),
        Object::new("UserQuery")
            .field(op("self", user(), One, None, false, |c| {
                Ok(c.security.user(&c.caller.subject).map_err(failed)?.map_or(Value::Null, |u| user_value(&u, None)))
            }))
            .field(op("list", users(), List, Some(A::UsersRead), false, |c| {
                Ok(Value::Array(c.security.users().map_err(failed)?.iter().map(|u| user_value(u, None)).collect()))
            }))
            .field(
                op("get", user(), One, Some(A::UsersRead), false, |c| {
                    Ok(c.security
                        .user(&c.string("login")?)
                        .map_err(failed)?
                        .map_or(Value::Null, |u| user_value(&u, None)))
                })
                .argument(arg("login", string_nn())),
            )
            .field(op("is_anonymous_allowed", TypeRef::named_nn(TypeRef::BOOLEAN), Scalar, None, false, |_| {
                // Every endpoint but /health, the sign-in and the UI's files needs credentials.
                Ok(Value::Bool(false))
            })),
        Object::new("AccessRoleQuery")
            .field(op(
                "actions_list",
                TypeRef::named_nn_list_nn("AccessAction"),
                List,
                Some(A::RolesRead),
                false,
                |_| Ok(Action::ALL.iter().map(|a| json!({"name": a.name(), "description": a.description()})).collect()),
            ))
            .field(op("list", TypeRef::named_nn_list_nn("AccessRole"), List, Some(A::RolesRead), false, |c| {
                Ok(c.security.roles().iter().map(|(r, built_in)| role_value(r, *built_in)).collect())
            }))
            .field(
                op("get", TypeRef::named("AccessRole"), One, Some(A::RolesRead), false, |c| {
                    let name = c.string("name")?;
                    Ok(c.security
                        .roles()
                        .iter()
                        .find(|(r, _)| r.name == name)
                        .map_or(Value::Null, |(r, b)| role_value(r, *b)))
                })
                .argument(arg("name", string_nn())),
            )
            .field(
                op(
                    "get_access_role_actions",
                    TypeRef::named_list_nn(TypeRef::STRING),
                    Scalar,
                    Some(A::RolesRead),
                    false,
                    |c| {
                        let name = c.string("name")?;
                        Ok(c.security.roles().iter().find(|(r, _)| r.name == name).map_or(Value::Null, |(r, _)| {
                            r.actions.iter().map(|a| Value::String(a.name().into())).collect()
                        }))
                    },
                )
                .argument(arg("name", string_nn())),
            ),
        Object::new("DataAccessActionQuery")
            .field(op("list", TypeRef::named_nn_list_nn("DataAccessAction"), List, Some(A::RolesRead), false, |c| {
                to_value(c.security.data_actions())
            }))
            .field(
                op("get", TypeRef::named("DataAccessAction"), One, Some(A::RolesRead), false, |c| {
                    let name = c.string("name")?;
                    to_value(c.security.data_actions().into_iter().find(|d| d.name == name))
                })
                .argument(arg("name", string_nn())),
            ),
        Object::new("AuditLogQuery")
            .field(
                op("get", TypeRef::named_nn_list_nn("AuditEvent"), List, Some(A::AuditLogRead), false, |c| {
                    let query: AuditQuery = c.args()?;
                    to_value(c.audit()?.list(&query).map_err(failed)?)
                })
                .argument(arg("from", string()))
                .argument(arg("to", string()))
                .argument(arg("subject", string()))
                .argument(arg("severity", string()))
                .argument(arg("text", string()))
                .argument(arg("first", TypeRef::named(TypeRef::INT)))
                .argument(arg("after", string())),
            )
            .field(op("enabled", TypeRef::named_nn(TypeRef::BOOLEAN), Scalar, Some(A::AuditLogRead), false, |c| {
                Ok(Value::Bool(c.audit()?.settings().enabled))
            }))
            .field(op("severity", string_nn(), Scalar, Some(A::AuditLogRead), false, |c| {
                to_value(c.audit()?.settings().severity)
            })),
        Object::new("PasswordGenerator")
            .field(op("generate", string_nn(), Scalar, None, false, |c| {
                Ok(Value::String(c.settings.password_policy.generate().map_err(failed)?))
            }))
            .field(
                op("validate", TypeRef::named_nn("PasswordCheck"), One, None, false, |c| {
                    Ok(match c.settings.password_policy.check(&c.string("password")?) {
                        Ok(()) => json!({"valid": true}),
                        Err(e) => json!({"valid": false, "error": e}),
                    })
                })
                .argument(arg("password", string_nn())),
            )
            .field(op("config", TypeRef::named_nn(JSON), Scalar, None, false, |c| {
                to_value(&c.settings.password_policy)
            })),
    ]
}

fn mutations() -> Vec<Object> {
    use Action as A;
    use Shape::{Object as One, Scalar};
    let token = || TypeRef::named("Token");
    let user = || TypeRef::named("User");
    let role = || TypeRef::named("AccessRole");
    let data = || TypeRef::named("DataAccessAction");
    let boolean = || TypeRef::named_nn(TypeRef::BOOLEAN);
    let int = || TypeRef::named(TypeRef::INT);
    vec![
        Object::new("TokenMutation")
            .field(
                op("add", token(), One, Some(A::TokensAdmin), false, |c| {
                    let (t, secret) = c
                        .security
                        .create_token_by(&c.caller, &c.string("name")?, &c.string("role")?, expires_in(c))
                        .map_err(failed)?;
                    Ok(token_value(&t, Some(secret)))
                })
                .argument(arg("name", string_nn()))
                .argument(arg("role", string_nn()))
                .argument(arg("expires_in", int())),
            )
            .field(
                op("update", token(), One, Some(A::TokensAdmin), false, |c| {
                    let role = c.optional_string("role");
                    let t = c
                        .security
                        .edit_token_by(&c.caller, &c.string("name")?, role.as_deref(), expires_in(c))
                        .map_err(failed)?;
                    Ok(token_value(&t, None))
                })
                .argument(arg("name", string_nn()))
                .argument(arg("role", string()))
                .argument(arg("expires_in", int())),
            )
            .field(
                op("remove", boolean(), Scalar, Some(A::TokensAdmin), false, |c| {
                    c.security.delete_token_by(&c.caller, &c.string("name")?).map_err(failed)?;
                    Ok(Value::Bool(true))
                })
                .argument(arg("name", string_nn())),
            )
            .field(
                op("set_state", token(), One, Some(A::TokensAdmin), false, |c| {
                    let t = c
                        .security
                        .set_token_state_by(&c.caller, &c.string("name")?, state_arg(c)?, c.optional_string("reason"))
                        .map_err(failed)?;
                    Ok(token_value(&t, None))
                })
                .argument(arg("name", string_nn()))
                .argument(arg("state", string_nn()))
                .argument(arg("reason", string())),
            )
            .field(
                op("import", token(), One, Some(A::TokensAdmin), false, |c| {
                    let imported: ImportedToken = c.args()?;
                    let mut out = c.security.import_tokens_by(&c.caller, vec![imported]).map_err(failed)?;
                    Ok(out.pop().map_or(Value::Null, |(t, secret)| token_value(&t, Some(secret))))
                })
                .argument(arg("name", string_nn()))
                .argument(arg("role", string_nn()))
                .argument(arg("created_at", string()))
                .argument(arg("expires_at", string()))
                .argument(arg("state", string()))
                .argument(arg("state_reason", string())),
            ),
        Object::new("UserMutation")
            .field(
                op("add", user(), One, Some(A::UsersAdmin), true, |c| {
                    let new: NewUser = c.args()?;
                    crate::security::ldap::check_local_login(&c.ldap, &new.login).map_err(failed)?;
                    let (u, password) =
                        c.security.create_user(c.turn()?, new, &c.settings, &c.caller).map_err(failed)?;
                    match password {
                        Some(password) => c.with_password(&u, password, "was created"),
                        None => Ok(user_value(&u, None)),
                    }
                })
                .argument(arg("login", string_nn()))
                .argument(arg("role", string_nn()))
                .argument(arg("username", string()))
                .argument(arg("email", string()))
                .argument(arg("expires_in", int()))
                .argument(arg("password", string())),
            )
            .field(
                op("modify", user(), One, Some(A::UsersAdmin), false, |c| {
                    let login = c.string("login")?;
                    let mut args = c.args.clone();
                    args.remove("login");
                    let patch: UserPatch =
                        serde_json::from_value(Value::Object(args)).map_err(|e| coded(e.to_string(), "BAD_REQUEST"))?;
                    Ok(user_value(&c.security.edit_user(&login, patch, &c.caller).map_err(failed)?, None))
                })
                .argument(arg("login", string_nn()))
                .argument(arg("username", string()))
                .argument(arg("email", string()))
                .argument(arg("role", string()))
                .argument(arg("expires_in", int())),
            )
            .field(
                op("remove", boolean(), Scalar, Some(A::UsersAdmin), false, |c| {
                    c.security.delete_user(&c.string("login")?, &c.caller).map_err(failed)?;
                    Ok(Value::Bool(true))
                })
                .argument(arg("login", string_nn())),
            )
            .field(
                op("set_state", user(), One, Some(A::UsersAdmin), false, |c| {
                    let u = c
                        .security
                        .set_user_state(&c.string("login")?, state_arg(c)?, c.optional_string("reason"), &c.caller)
                        .map_err(failed)?;
                    Ok(user_value(&u, None))
                })
                .argument(arg("login", string_nn()))
                .argument(arg("state", string_nn()))
                .argument(arg("reason", string())),
            )
            .field(
                op("reset_password", user(), One, Some(A::UsersAdmin), true, |c| {
                    let (u, password) = c
                        .security
                        .reset_password(c.turn()?, &c.string("login")?, &c.settings, &c.caller)
                        .map_err(failed)?;
                    c.with_password(&u, password, "has a new password")
                })
                .argument(arg("login", string_nn())),
            )
            .field(
                op("self_modify", user(), One, None, true, |c| {
                    crate::security::ldap::check_own_password_change(&c.ldap, &c.caller.subject)
                        .map_err(|e| coded(e, "BAD_REQUEST"))?;
                    let changed = c.security.change_password(
                        c.turn()?,
                        &c.caller.subject,
                        &c.string("old_password")?,
                        &c.string("new_password")?,
                        &c.settings,
                        c.session.as_deref(),
                    );
                    match changed {
                        Ok(u) => Ok(user_value(&u, None)),
                        Err(SignInError::Internal(e)) => Err(failed(e)),
                        Err(e) => {
                            let alarm =
                                e.password_change_alarm(&c.caller.subject, c.source.clone(), "user.self_modify");
                            if let (Some(alarm), Some(audit)) = (alarm, c.audit.as_deref()) {
                                audit.record(alarm);
                            }
                            Err(coded(format!("the old password is not accepted: {e}"), "FORBIDDEN"))
                        }
                    }
                })
                .argument(arg("old_password", string_nn()))
                .argument(arg("new_password", string_nn())),
            ),
        Object::new("AccessRoleMutation")
            .field(
                op("create", role(), One, Some(A::RolesAdmin), false, |c| {
                    let new: Role = c.args()?;
                    Ok(role_value(&c.security.put_role_by(&c.caller, new, true).map_err(failed)?, false))
                })
                .argument(arg("name", string_nn()))
                .argument(arg("description", string()))
                .argument(arg("actions", TypeRef::named_list_nn(TypeRef::STRING)))
                .argument(arg("data_actions", TypeRef::named_list_nn(TypeRef::STRING))),
            )
            .field(
                op("update", role(), One, Some(A::RolesAdmin), false, |c| {
                    let changed = changed_role(c, false)?;
                    Ok(role_value(&c.security.put_role_by(&c.caller, changed, false).map_err(failed)?, false))
                })
                .argument(arg("name", string_nn()))
                .argument(arg("description", string()))
                .argument(arg("actions", TypeRef::named_list_nn(TypeRef::STRING)))
                .argument(arg("data_actions", TypeRef::named_list_nn(TypeRef::STRING))),
            )
            .field(
                op("update_access_role_actions", role(), One, Some(A::RolesAdmin), false, |c| {
                    let changed = changed_role(c, true)?;
                    Ok(role_value(&c.security.put_role_by(&c.caller, changed, false).map_err(failed)?, false))
                })
                .argument(arg("name", string_nn()))
                .argument(arg("actions", TypeRef::named_nn_list_nn("AccessRoleActionInput"))),
            )
            .field(
                op("delete", boolean(), Scalar, Some(A::RolesAdmin), false, |c| {
                    c.security.delete_role_by(&c.caller, &c.string("name")?).map_err(failed)?;
                    Ok(Value::Bool(true))
                })
                .argument(arg("name", string_nn())),
            ),
        Object::new("DataAccessActionMutation")
            .field(
                op("create", data(), One, Some(A::RolesAdmin), false, |c| {
                    let action: DataAction = c.args()?;
                    to_value(c.security.put_data_action_by(&c.caller, action, true, &c.known_types).map_err(failed)?)
                })
                .argument(arg("name", string_nn()))
                .argument(arg("aggregates", TypeRef::named_nn(JSON))),
            )
            .field(
                op("update", data(), One, Some(A::RolesAdmin), false, |c| {
                    let action: DataAction = c.args()?;
                    to_value(c.security.put_data_action_by(&c.caller, action, false, &c.known_types).map_err(failed)?)
                })
                .argument(arg("name", string_nn()))
                .argument(arg("aggregates", TypeRef::named_nn(JSON))),
            )
            .field(
                op("delete", boolean(), Scalar, Some(A::RolesAdmin), false, |c| {
                    c.security.delete_data_action_by(&c.caller, &c.string("name")?).map_err(failed)?;
                    Ok(Value::Bool(true))
                })
                .argument(arg("name", string_nn())),
            ),
        Object::new("AuditLogMutation")
            .field(
                op("enabled", boolean(), Scalar, Some(A::AuditLogAdmin), false, |c| {
                    let on = c.args.get("value").and_then(Value::as_bool).unwrap_or(true);
                    Ok(Value::Bool(change_audit(c, |s| s.enabled = on)?.enabled))
                })
                .argument(arg("value", TypeRef::named_nn(TypeRef::BOOLEAN))),
            )
            .field(
                op("severity", string_nn(), Scalar, Some(A::AuditLogAdmin), false, |c| {
                    let level: Severity = serde_json::from_value(Value::String(c.string("level")?))
                        .map_err(|_| coded("level: VERBOSE, INFO, WARNING or ALARM".into(), "BAD_REQUEST"))?;
                    to_value(change_audit(c, |s| s.severity = level)?.severity)
                })
                .argument(arg("level", string_nn())),
            )
            .field(op("clear", TypeRef::named_nn(TypeRef::INT), Scalar, Some(A::AuditLogAdmin), false, |c| {
                Ok(json!(c.audit()?.clear_by(&c.caller.subject, c.source.clone()).map_err(failed)?))
            })),
        Object::new("PasswordGeneratorMutation")
            .field(
                op("config", TypeRef::named_nn(JSON), Scalar, Some(A::UsersAdmin), false, |c| {
                    let policy: crate::security::accounts::PasswordPolicy = c.args()?;
                    c.security.set_password_policy(Some(policy.clone())).map_err(failed)?;
                    to_value(&policy)
                })
                .argument(arg("min_length", TypeRef::named(TypeRef::INT)))
                .argument(arg("include", TypeRef::named(JSON))),
            )
            .field(op("reset_config", TypeRef::named_nn(JSON), Scalar, Some(A::UsersAdmin), false, |c| {
                c.security.set_password_policy(None).map_err(failed)?;
                to_value(&c.configured_policy)
            })),
    ]
}

/// The namespace fields of the query root.
pub(super) fn query_fields() -> Vec<Field> {
    [
        ("token", "TokenQuery"),
        ("user", "UserQuery"),
        ("access_role", "AccessRoleQuery"),
        ("data_access_action", "DataAccessActionQuery"),
        ("audit_log", "AuditLogQuery"),
        ("password_generator", "PasswordGenerator"),
    ]
    .into_iter()
    .map(|(name, ty)| super::admin::namespace(name, ty))
    .collect()
}

/// The namespace fields of the mutation root.
pub(super) fn mutation_fields() -> Vec<Field> {
    [
        ("token", "TokenMutation"),
        ("user", "UserMutation"),
        ("access_role", "AccessRoleMutation"),
        ("data_access_action", "DataAccessActionMutation"),
        ("audit_log", "AuditLogMutation"),
        ("password_generator", "PasswordGeneratorMutation"),
    ]
    .into_iter()
    .map(|(name, ty)| super::admin::namespace(name, ty))
    .collect()
}

/// Register the types of the security namespaces.
pub(super) fn register(mut builder: async_graphql::dynamic::SchemaBuilder) -> async_graphql::dynamic::SchemaBuilder {
    for object in object_types().into_iter().chain(queries()).chain(mutations()) {
        builder = builder.register(object);
    }
    builder.register(
        InputObject::new("AccessRoleActionInput")
            .field(InputValue::new("id", string_nn()))
            .field(InputValue::new("allowed", TypeRef::named_nn(TypeRef::BOOLEAN))),
    )
}
