//! Actions, roles and data actions.
//!
//! Every route of the HTTP API needs one [`Action`] (the table is `http::access`); a role is a
//! set of actions plus data rights: read and/or write per aggregate type. The built-in roles
//! `admin`, `supervisor` and `user` are fixed (TDG 2.7.1); custom roles list their actions and
//! the data actions (named read/write profiles over aggregate types, TDG 2.7.4) they include.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a route lets its caller do. The names are part of the API (roles store them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Post objects to the inputs (`/http`, `/soap`, Kafka inputs with `token_name`).
    InputPost,
    /// Read the repair queue.
    RepairRead,
    /// Retry, edit and delete repair-queue entries.
    RepairOperate,
    /// Read the output processor's repair queue and queues.
    OutputRepairRead,
    /// Retry and delete output deliveries.
    OutputRepairOperate,
    /// Read jobs and failed jobs.
    JobsRead,
    /// Retry and delete failed jobs.
    JobsOperate,
    /// Read tasks and their runs.
    TasksRead,
    /// Start and stop tasks, forget runs.
    TasksOperate,
    /// Read the configuration, its versions, expiration rules and unlinked types.
    ConfigRead,
    /// Apply a configuration, roll back, change expiration, drop or truncate unlinked types.
    ConfigApply,
    /// Read the model and its indexes.
    ModelRead,
    /// The admin GraphQL schema's queries.
    AdminGraphqlRead,
    /// The admin GraphQL schema's mutations.
    AdminGraphqlWrite,
    /// Read application tokens.
    TokensRead,
    /// Create, edit, block, delete and import application tokens.
    TokensAdmin,
    /// Read roles and data actions.
    RolesRead,
    /// Create, edit and delete custom roles and data actions.
    RolesAdmin,
    /// Read users.
    UsersRead,
    /// Create, edit, block, delete users and reset their passwords.
    UsersAdmin,
    /// Read `/metrics`.
    MetricsRead,
    /// Read the audit log and its settings.
    AuditLogRead,
    /// Clear the audit log, change its settings.
    AuditLogAdmin,
}

impl Action {
    /// Every action, in order.
    pub const ALL: [Action; 23] = [
        Action::InputPost,
        Action::RepairRead,
        Action::RepairOperate,
        Action::OutputRepairRead,
        Action::OutputRepairOperate,
        Action::JobsRead,
        Action::JobsOperate,
        Action::TasksRead,
        Action::TasksOperate,
        Action::ConfigRead,
        Action::ConfigApply,
        Action::ModelRead,
        Action::AdminGraphqlRead,
        Action::AdminGraphqlWrite,
        Action::TokensRead,
        Action::TokensAdmin,
        Action::RolesRead,
        Action::RolesAdmin,
        Action::UsersRead,
        Action::UsersAdmin,
        Action::MetricsRead,
        Action::AuditLogRead,
        Action::AuditLogAdmin,
    ];

    /// The action's name in the API (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            Action::InputPost => "input_post",
            Action::RepairRead => "repair_read",
            Action::RepairOperate => "repair_operate",
            Action::OutputRepairRead => "output_repair_read",
            Action::OutputRepairOperate => "output_repair_operate",
            Action::JobsRead => "jobs_read",
            Action::JobsOperate => "jobs_operate",
            Action::TasksRead => "tasks_read",
            Action::TasksOperate => "tasks_operate",
            Action::ConfigRead => "config_read",
            Action::ConfigApply => "config_apply",
            Action::ModelRead => "model_read",
            Action::AdminGraphqlRead => "admin_graphql_read",
            Action::AdminGraphqlWrite => "admin_graphql_write",
            Action::TokensRead => "tokens_read",
            Action::TokensAdmin => "tokens_admin",
            Action::RolesRead => "roles_read",
            Action::RolesAdmin => "roles_admin",
            Action::UsersRead => "users_read",
            Action::UsersAdmin => "users_admin",
            Action::MetricsRead => "metrics_read",
            Action::AuditLogRead => "audit_log_read",
            Action::AuditLogAdmin => "audit_log_admin",
        }
    }

    /// What the action allows, for the API's list and the docs.
    pub fn description(self) -> &'static str {
        match self {
            Action::InputPost => "post objects to the inputs (/http, /soap, Kafka token_name)",
            Action::RepairRead => "read the repair queue",
            Action::RepairOperate => "retry, edit and delete repair-queue entries",
            Action::OutputRepairRead => "read the output processor's repair queue and queues",
            Action::OutputRepairOperate => "retry and delete output deliveries",
            Action::JobsRead => "read jobs and failed jobs",
            Action::JobsOperate => "retry and delete failed jobs",
            Action::TasksRead => "read tasks and their runs",
            Action::TasksOperate => "start and stop tasks, forget runs",
            Action::ConfigRead => "read the configuration, its versions, expiration and unlinked types",
            Action::ConfigApply => "apply or roll back a configuration, change expiration, drop unlinked types",
            Action::ModelRead => "read the model and its indexes",
            Action::AdminGraphqlRead => "queries of the admin GraphQL schema",
            Action::AdminGraphqlWrite => "mutations of the admin GraphQL schema",
            Action::TokensRead => "list and read application tokens",
            Action::TokensAdmin => "create, edit, block, delete, import application tokens",
            Action::RolesRead => "list and read roles and data actions",
            Action::RolesAdmin => "create, edit and delete custom roles and data actions",
            Action::UsersRead => "list and read users",
            Action::UsersAdmin => "create, edit, block, delete users and reset their passwords",
            Action::MetricsRead => "read /metrics",
            Action::AuditLogRead => "read the audit log and its settings",
            Action::AuditLogAdmin => "clear the audit log, change its settings",
        }
    }

    /// Whether the action only reads.
    pub fn reads_only(self) -> bool {
        matches!(
            self,
            Action::RepairRead
                | Action::OutputRepairRead
                | Action::JobsRead
                | Action::TasksRead
                | Action::ConfigRead
                | Action::ModelRead
                | Action::AdminGraphqlRead
                | Action::TokensRead
                | Action::RolesRead
                | Action::UsersRead
                | Action::MetricsRead
                | Action::AuditLogRead
        )
    }
}

/// Read and write rights on one aggregate type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rights {
    /// May read objects of the type.
    #[serde(default)]
    pub read: bool,
    /// May write objects of the type.
    #[serde(default)]
    pub write: bool,
}

/// A data action: named read/write rights per aggregate type (TDG's "data access action").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataAction {
    /// Its name.
    pub name: String,
    /// Rights by aggregate type name.
    #[serde(default)]
    pub aggregates: BTreeMap<String, Rights>,
}

/// A custom role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The actions it allows.
    #[serde(default)]
    pub actions: BTreeSet<Action>,
    /// The data actions it includes (by name).
    #[serde(default)]
    pub data_actions: BTreeSet<String>,
}

/// The built-in roles' names.
pub const BUILT_IN: [&str; 3] = ["admin", "supervisor", "user"];

/// A built-in role, or `None`.
pub fn built_in(name: &str) -> Option<Role> {
    let (description, actions): (&str, Vec<Action>) = match name {
        "admin" => ("everything", Action::ALL.to_vec()),
        "supervisor" => (
            "reads everything, operates the repair queues, tasks and jobs; no security or configuration changes",
            Action::ALL
                .into_iter()
                .filter(|a| {
                    a.reads_only()
                        || matches!(
                            a,
                            Action::RepairOperate
                                | Action::OutputRepairOperate
                                | Action::JobsOperate
                                | Action::TasksOperate
                        )
                })
                .collect(),
        ),
        "user" => ("posts to the inputs; data only through a custom role's data actions", vec![Action::InputPost]),
        _ => return None,
    };
    Some(Role {
        name: name.to_string(),
        description: description.to_string(),
        actions: actions.into_iter().collect(),
        data_actions: BTreeSet::new(),
    })
}

/// What a caller may do with data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataRights {
    /// Read and write every aggregate type (admin).
    All,
    /// Read every aggregate type (supervisor).
    ReadAll,
    /// Rights per type; a type not listed: nothing.
    PerType(BTreeMap<String, Rights>),
}

impl DataRights {
    /// The rights of role `role` given the data actions by name (unknown names give nothing).
    pub fn of(role: &Role, data_actions: &BTreeMap<String, DataAction>) -> DataRights {
        match role.name.as_str() {
            "admin" => return DataRights::All,
            "supervisor" => return DataRights::ReadAll,
            _ => {}
        }
        let mut out: BTreeMap<String, Rights> = BTreeMap::new();
        for name in &role.data_actions {
            for (type_name, rights) in data_actions.get(name).map(|d| &d.aggregates).into_iter().flatten() {
                let entry = out.entry(type_name.clone()).or_default();
                entry.read |= rights.read;
                entry.write |= rights.write;
            }
        }
        DataRights::PerType(out)
    }

    /// Whether these rights are no more than `other`'s.
    pub fn within(&self, other: &DataRights) -> bool {
        match (self, other) {
            (_, DataRights::All) => true,
            (DataRights::All, _) => false,
            (DataRights::ReadAll, DataRights::ReadAll) => true,
            (DataRights::ReadAll, DataRights::PerType(_)) => false,
            (DataRights::PerType(mine), DataRights::ReadAll) => mine.values().all(|r| !r.write),
            (DataRights::PerType(mine), DataRights::PerType(theirs)) => mine.iter().all(|(t, r)| {
                let limit = theirs.get(t).copied().unwrap_or_default();
                (!r.read || limit.read) && (!r.write || limit.write)
            }),
        }
    }

    /// May read or write objects of some type: whether the data schema (its SDL, introspection)
    /// is any of the caller's business.
    pub fn any(&self) -> bool {
        match self {
            DataRights::All | DataRights::ReadAll => true,
            DataRights::PerType(map) => map.values().any(|r| r.read || r.write),
        }
    }

    /// May read objects of `type_name`.
    pub fn can_read(&self, type_name: &str) -> bool {
        match self {
            DataRights::All | DataRights::ReadAll => true,
            DataRights::PerType(map) => map.get(type_name).is_some_and(|r| r.read),
        }
    }

    /// May write objects of `type_name`.
    pub fn can_write(&self, type_name: &str) -> bool {
        match self {
            DataRights::All => true,
            DataRights::ReadAll => false,
            DataRights::PerType(map) => map.get(type_name).is_some_and(|r| r.write),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_roles_have_the_documented_rights() {
        let admin = built_in("admin").unwrap();
        assert_eq!(admin.actions.len(), Action::ALL.len());
        let supervisor = built_in("supervisor").unwrap();
        assert!(supervisor.actions.contains(&Action::RepairOperate));
        assert!(supervisor.actions.contains(&Action::TokensRead));
        for forbidden in [Action::ConfigApply, Action::TokensAdmin, Action::RolesAdmin, Action::InputPost] {
            assert!(!supervisor.actions.contains(&forbidden), "{forbidden:?}");
        }
        let user = built_in("user").unwrap();
        assert_eq!(user.actions.iter().copied().collect::<Vec<_>>(), vec![Action::InputPost]);
        assert!(built_in("root").is_none());
        let none = BTreeMap::new();
        assert!(DataRights::of(&supervisor, &none).can_read("User"));
        assert!(!DataRights::of(&supervisor, &none).can_write("User"));
        assert!(!DataRights::of(&user, &none).can_read("User"));
        assert!(DataRights::of(&admin, &none).can_write("User"));
    }

    #[test]
    fn a_custom_role_has_the_union_of_its_data_actions() {
        let mut data = BTreeMap::new();
        for (name, type_name, rights) in [
            ("books", "Book", Rights { read: true, write: false }),
            ("books-write", "Book", Rights { read: false, write: true }),
            ("users", "User", Rights { read: true, write: false }),
        ] {
            data.insert(
                name.to_string(),
                DataAction { name: name.into(), aggregates: [(type_name.to_string(), rights)].into() },
            );
        }
        let role = Role {
            name: "librarian".into(),
            description: String::new(),
            actions: BTreeSet::new(),
            data_actions: ["books".to_string(), "books-write".to_string(), "gone".to_string()].into(),
        };
        let rights = DataRights::of(&role, &data);
        assert!(rights.can_read("Book") && rights.can_write("Book"));
        assert!(!rights.can_read("User") && !rights.can_write("Subscription"));
    }

    #[test]
    fn rights_compare() {
        let per = |read: bool, write: bool| {
            DataRights::PerType([("Book".to_string(), Rights { read, write })].into_iter().collect())
        };
        assert!(per(true, true).within(&DataRights::All));
        assert!(per(true, false).within(&DataRights::ReadAll));
        assert!(!per(false, true).within(&DataRights::ReadAll));
        assert!(per(true, false).within(&per(true, true)));
        assert!(!per(true, true).within(&per(true, false)));
        assert!(!DataRights::ReadAll.within(&per(true, true)));
        assert!(!DataRights::All.within(&DataRights::ReadAll));
        assert!(DataRights::PerType(BTreeMap::new()).within(&DataRights::PerType(BTreeMap::new())));
    }

    #[test]
    fn action_names_round_trip() {
        for action in Action::ALL {
            let name = action.name();
            assert!(!name.is_empty());
            assert_eq!(serde_json::from_value::<Action>(serde_json::json!(name)).unwrap(), action);
        }
        assert_eq!(Action::InputPost.name(), "input_post");
    }
}
