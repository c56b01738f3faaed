//! The data scope of a call made on a caller's behalf: a GraphQL service runs its function for
//! the caller, and the sandbox checks every `repository` call of that function here.

use super::{DataRights, Principal};
use ferrogrid_sandbox::{DataNeed, DataScope, HostError};
use std::sync::{Arc, Mutex, PoisonError};

/// The caller's data rights, and what of them the call was refused.
#[derive(Debug)]
pub struct CallerScope {
    subject: String,
    role: String,
    data: Arc<DataRights>,
    refusals: Mutex<Vec<String>>,
}

impl CallerScope {
    /// The scope of `who`; `None` when `who` may read and write everything (nothing to check).
    pub fn of(who: &Principal) -> Option<Arc<CallerScope>> {
        if *who.data == DataRights::All {
            return None;
        }
        Some(Arc::new(CallerScope {
            subject: who.subject.clone(),
            role: who.role.clone(),
            data: who.data.clone(),
            refusals: Mutex::new(Vec::new()),
        }))
    }

    /// What was refused so far (`read Book (repository::find)`), each once, in order.
    pub fn refusals(&self) -> Vec<String> {
        self.refusals.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl DataScope for CallerScope {
    fn check(&self, function: &str, need: DataNeed<'_>) -> Result<(), HostError> {
        let (allowed, what) = match need {
            DataNeed::Read(t) => (self.data.can_read(t), format!("read {t}")),
            DataNeed::Write(t) => (self.data.can_write(t), format!("write {t}")),
            DataNeed::ReadWrite(t) => (self.data.can_read(t) && self.data.can_write(t), format!("read and write {t}")),
            DataNeed::Jobs => {
                (*self.data == DataRights::All, "push a job (jobs run with read and write on every type)".to_string())
            }
        };
        if allowed {
            return Ok(());
        }
        let what = format!("{what} ({function})");
        let message = format!("{} (role {}) may not {what}", self.subject, self.role);
        let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        if !refusals.contains(&what) {
            refusals.push(what);
        }
        Err(HostError::UserData(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Rights;
    use std::collections::{BTreeMap, BTreeSet};

    fn principal(data: DataRights) -> Principal {
        Principal {
            subject: "ann".into(),
            role: "reader".into(),
            actions: Arc::new(BTreeSet::new()),
            data: Arc::new(data),
        }
    }

    #[test]
    fn checks_each_need_against_the_callers_rights_and_keeps_the_refusals() {
        assert!(CallerScope::of(&principal(DataRights::All)).is_none(), "admin: nothing to check");
        let rights = BTreeMap::from([
            ("Book".to_string(), Rights { read: true, write: false }),
            ("Author".to_string(), Rights { read: true, write: true }),
        ]);
        let scope = CallerScope::of(&principal(DataRights::PerType(rights))).expect("a scope");
        assert!(scope.check("repository::find", DataNeed::Read("Book")).is_ok());
        assert!(scope.check("repository::update", DataNeed::ReadWrite("Author")).is_ok());
        let e = scope.check("repository::put", DataNeed::Write("Book")).unwrap_err();
        assert_eq!(e.message(), "ann (role reader) may not write Book (repository::put)");
        assert!(scope.check("repository::get", DataNeed::Read("Secret")).is_err());
        assert!(scope.check("repository::put", DataNeed::Write("Book")).is_err());
        assert!(scope.check("repository::push_job", DataNeed::Jobs).is_err());
        assert_eq!(
            scope.refusals(),
            vec![
                "write Book (repository::put)".to_string(),
                "read Secret (repository::get)".to_string(),
                "push a job (jobs run with read and write on every type) (repository::push_job)".to_string(),
            ]
        );
        let read_all = CallerScope::of(&principal(DataRights::ReadAll)).expect("a scope");
        assert!(read_all.check("repository::find", DataNeed::Read("Anything")).is_ok());
        assert!(read_all.check("repository::delete", DataNeed::ReadWrite("Anything")).is_err());
    }
}
