//! The repository: the storage seen through the domain model. Scripts reach it through the
//! sandbox's `repository::*` functions ([`ferrogrid_sandbox::DataAccess`]), the input processor
//! stores objects with it, and `/data` reads through it.

mod specs;

pub use specs::type_specs;

use crate::config::SequenceGenerator;
use crate::model::{Model, ValidationHooks};
use crate::storage::{
    self, Condition, DeleteOptions, FindOptions, HardLimits, Page, PutOptions, Stored, TypeSpec, UpdateOptions,
    Updater, WriteTx,
};
use ferrogrid_pipelines::Pipelines;
use ferrogrid_sandbox::{CallContext, ErrorClass as HostClass, HostError, Sandbox, ScriptEngine};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

/// Problems of repository calls.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The type is not an aggregate of the model.
    #[error("type \"{0}\" is not an aggregate of the model")]
    UnknownType(String),
    /// The object does not fit the model.
    #[error("{0}")]
    Invalid(String),
    /// Bad filter, options or updaters.
    #[error("{0}")]
    BadRequest(String),
    /// The storage refused or failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

impl RepoError {
    /// Classification for the sandbox (user data / external / internal).
    pub fn class(&self) -> HostClass {
        match self {
            RepoError::Storage(e) if e.class() == storage::ErrorClass::Internal => HostClass::Internal,
            // An index being built: the same call succeeds later.
            RepoError::Storage(e) if e.class() == storage::ErrorClass::NotReady => HostClass::External,
            _ => HostClass::UserData,
        }
    }
}

/// What scripts late-bind: the compiled functions of the active configuration, for
/// `default_function`.
type Scripts = RwLock<Option<(Arc<Sandbox>, Pipelines)>>;

/// The storage seen through the model.
pub struct Repository {
    db: storage::Db,
    /// The model of the active configuration; replaced by an apply.
    model: RwLock<Arc<Model>>,
    /// The storage spec of every aggregate; replaced (not changed) when an index build moves on.
    specs: RwLock<HashMap<String, Arc<TypeSpec>>>,
    limits: RwLock<HardLimits>,
    sequences: SequenceGenerator,
    scripts: Scripts,
    jobs: OnceLock<Arc<crate::jobs::Jobs>>,
}

struct Hooks<'a> {
    repo: &'a Repository,
    engine: Option<&'a ScriptEngine>,
    ctx: &'a CallContext,
}

impl ValidationHooks for Hooks<'_> {
    fn default_function(&mut self, function: &str, type_name: &str, field: &str) -> Result<Value, String> {
        let (sandbox, pipelines) = self.repo.scripts().ok_or("functions are not loaded")?;
        let script =
            pipelines.function(function).ok_or_else(|| format!("default_function \"{function}\" is not defined"))?;
        let param = json!({"type": type_name, "field": field});
        let run = |engine: &ScriptEngine| engine.run_json(script, param.clone(), self.ctx).map_err(|e| e.to_string());
        match self.engine {
            Some(engine) => run(engine),
            None => run(&sandbox.engine()),
        }
    }

    fn auto_increment(&mut self, type_name: &str, field: &str) -> Result<i64, String> {
        self.repo.next_sequence(&format!("{type_name}.{field}")).map_err(|e| e.to_string())
    }
}

fn parse<T: serde::de::DeserializeOwned + Default>(what: &str, v: &Value) -> Result<T, RepoError> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(v.clone()).map_err(|e| RepoError::BadRequest(format!("bad {what}: {e}")))
}

impl Repository {
    /// A repository over `db` for `model`.
    /// The repository over `db` for `model`, whose storage specs (with their index key ids) are
    /// `specs` ([`storage::catalog::migrate`] of [`type_specs`]).
    pub fn new(
        db: storage::Db,
        model: Arc<Model>,
        specs: HashMap<String, TypeSpec>,
        limits: HardLimits,
        sequences: SequenceGenerator,
    ) -> Repository {
        Repository {
            db,
            model: RwLock::new(model),
            specs: RwLock::new(specs.into_iter().map(|(name, spec)| (name, Arc::new(spec))).collect()),
            limits: RwLock::new(limits),
            sequences,
            scripts: RwLock::new(None),
            jobs: OnceLock::new(),
        }
    }

    /// Late-bind the compiled scripts (they need the repository as their host first); an apply
    /// binds those of the new configuration.
    pub fn bind_scripts(&self, sandbox: Arc<Sandbox>, pipelines: Pipelines) {
        *self.scripts.write().unwrap_or_else(PoisonError::into_inner) = Some((sandbox, pipelines));
    }

    fn scripts(&self) -> Option<(Arc<Sandbox>, Pipelines)> {
        self.scripts.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Take the model of a new configuration and the storage specs the catalog gave it (called
    /// by [`storage::catalog::switch`] under the write lock, right after the catalog's commit).
    pub fn reconfigure(&self, model: Arc<Model>, specs: HashMap<String, TypeSpec>) {
        *self.specs.write().unwrap_or_else(PoisonError::into_inner) =
            specs.into_iter().map(|(name, spec)| (name, Arc::new(spec))).collect();
        *self.model.write().unwrap_or_else(PoisonError::into_inner) = model;
    }

    /// Give `repository::push_job` its queue.
    pub fn bind_jobs(&self, jobs: Arc<crate::jobs::Jobs>) {
        let _ = self.jobs.set(jobs);
    }

    /// Whether `name` can be pushed as a job (a pipeline or a function).
    pub fn is_job(&self, name: &str) -> bool {
        self.scripts.read().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|(_, p)| p.contains(name))
    }

    /// The model.
    pub fn model(&self) -> Arc<Model> {
        self.model.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The storage spec of `type_name` in force, if it is an aggregate of the model.
    pub fn spec_of(&self, type_name: &str) -> Option<Arc<TypeSpec>> {
        self.specs.read().unwrap_or_else(PoisonError::into_inner).get(type_name).cloned()
    }

    fn spec(&self, type_name: &str) -> Result<Arc<TypeSpec>, RepoError> {
        let specs = self.specs.read().unwrap_or_else(PoisonError::into_inner);
        specs.get(type_name).cloned().ok_or_else(|| RepoError::UnknownType(type_name.to_string()))
    }

    /// The indexes still to build, as `(type, position)`, in a stable order.
    pub fn indexes_to_build(&self) -> Vec<(String, usize)> {
        let specs = self.specs.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(String, usize)> =
            specs.values().flat_map(|s| s.building.iter().map(|(at, _)| (s.name.clone(), *at))).collect();
        out.sort();
        out
    }

    /// Index the next `batch` stored versions for index `at` of `type_name` (one commit); once
    /// it is complete, queries use it. `None` when there is nothing to build there.
    pub fn build_index_step(
        &self,
        type_name: &str,
        at: usize,
        batch: usize,
    ) -> Result<Option<storage::catalog::Step>, RepoError> {
        let spec = self.spec(type_name)?;
        if spec.building(at).is_none() {
            return Ok(None);
        }
        let step = storage::catalog::build_step(&self.db, &spec, at, batch)?;
        let mut next = (*spec).clone();
        if step.finished {
            next.building.retain(|(i, _)| *i != at);
        } else if let Some(entry) = next.building.iter_mut().find(|(i, _)| *i == at) {
            entry.1 = step.done;
        }
        let mut specs = self.specs.write().unwrap_or_else(PoisonError::into_inner);
        // An apply may have replaced the spec meanwhile: its own catalog record counts then.
        if specs.get(type_name).is_some_and(|current| Arc::ptr_eq(current, &spec)) {
            specs.insert(type_name.to_string(), Arc::new(next));
        }
        Ok(Some(step))
    }

    /// The name of index `at` of `type_name`.
    pub fn index_name(&self, type_name: &str, at: usize) -> Option<String> {
        self.spec(type_name).ok()?.indexes.get(at).map(|i| i.name.clone())
    }

    /// Every index of every aggregate: `{type, index, key_id, state: ready|building, versions_done}`.
    pub fn index_states(&self) -> Vec<Value> {
        let specs = self.specs.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&String> = specs.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let spec = &specs[name];
            for (at, index) in spec.indexes.iter().enumerate() {
                let building = spec.building(at);
                out.push(json!({
                    "type": name,
                    "index": index.name,
                    "key_id": spec.key_id(at),
                    "state": if building.is_some() { "building" } else { "ready" },
                    "versions_done": building,
                }));
            }
        }
        out
    }

    /// The next number of sequence `name`.
    pub fn next_sequence(&self, name: &str) -> Result<i64, RepoError> {
        Ok(self.db.sequence_next(name)?)
    }

    /// Validate and normalise `obj` as `type_name`; the message lists every violation.
    pub fn validate(
        &self,
        type_name: &str,
        obj: &Value,
        engine: Option<&ScriptEngine>,
        ctx: &CallContext,
    ) -> Result<Value, String> {
        let mut hooks = Hooks { repo: self, engine, ctx };
        self.model().validate(type_name, obj, &mut hooks).map_err(|v| v.to_string())
    }

    /// Stage a new version of an already validated object in `tx`.
    pub fn put_in(
        &self,
        tx: &mut WriteTx<'_>,
        type_name: &str,
        obj: Value,
        options: &PutOptions,
    ) -> Result<Stored, storage::StorageError> {
        let spec = self.spec(type_name).map_err(|_| {
            storage::StorageError::user(format!("type \"{type_name}\" is not an aggregate of the model"))
        })?;
        storage::objects::put(tx, &spec, obj, options)
    }

    /// Store an already validated object and, in the same atomic commit, whatever `extra` stages.
    pub fn put_with<E, F>(&self, type_name: &str, obj: Value, options: &PutOptions, extra: F) -> Result<Stored, E>
    where
        E: From<storage::StorageError>,
        F: FnOnce(&mut WriteTx<'_>) -> Result<(), E>,
    {
        self.db.write(|tx| {
            let stored = self.put_in(tx, type_name, obj, options)?;
            extra(tx)?;
            Ok(stored)
        })
    }

    /// `find(type, filter, options)`.
    pub fn find(&self, type_name: &str, filter: &Value, options: &Value) -> Result<Page, RepoError> {
        let spec = self.spec(type_name)?;
        let conditions = Condition::parse_filter(filter)?;
        let mut options: FindOptions = parse("find options", options)?;
        options.hard_limits = self.hard_limits();
        Ok(storage::objects::find(&self.db, &spec, &conditions, &options)?)
    }

    /// `get(type, index, key, options)`: the first object whose `index` equals `key`.
    pub fn get(&self, type_name: &str, index: &str, key: &Value, options: &Value) -> Result<Option<Stored>, RepoError> {
        let filter = json!([[index, "==", key]]);
        let mut options: FindOptions = parse("get options", options)?;
        options.first = Some(1);
        let spec = self.spec(type_name)?;
        let conditions = Condition::parse_filter(&filter)?;
        options.hard_limits = self.hard_limits();
        Ok(storage::objects::find(&self.db, &spec, &conditions, &options)?.items.into_iter().next())
    }

    /// `put(type, object, options)`: validate, then store a new version.
    pub fn put(&self, type_name: &str, obj: &Value, options: &Value, ctx: &CallContext) -> Result<Stored, RepoError> {
        let options: PutOptions = parse("put options", options)?;
        let obj = self.validate(type_name, obj, None, ctx).map_err(RepoError::Invalid)?;
        self.put_with(type_name, obj, &options, |_| Ok::<_, RepoError>(()))
    }

    /// `update(type, filter, updaters, options)`.
    pub fn update(
        &self,
        type_name: &str,
        filter: &Value,
        updaters: &Value,
        options: &Value,
    ) -> Result<Vec<Stored>, RepoError> {
        self.spec(type_name)?;
        let conditions = Condition::parse_filter(filter)?;
        let updaters = Updater::parse_list(updaters)?;
        let mut options: UpdateOptions = parse("update options", options)?;
        options.hard_limits = self.hard_limits();
        // An updated object the model refuses is the caller's `Invalid` (GraphQL `VALIDATION`, as
        // for an insert), not a bad request.
        let mut refused = None;
        let updated = self.db.write(|tx| {
            // Taken under the write lock: an apply changes specs and model under it too.
            let spec = self.spec(type_name)?;
            let model = self.model();
            Ok(storage::objects::update_validated(tx, &spec, &conditions, &updaters, &options, &mut |obj: Value| {
                model.validate(type_name, &obj, &mut UpdateHooks).map_err(|v| {
                    let error = storage::StorageError::user(v.to_string());
                    refused = Some(v);
                    error
                })
            })?)
        });
        match (updated, refused) {
            (Err(_), Some(violations)) => Err(RepoError::Invalid(violations.to_string())),
            (updated, _) => updated,
        }
    }

    /// `delete(type, filter, options)`.
    pub fn delete(&self, type_name: &str, filter: &Value, options: &Value) -> Result<Vec<Stored>, RepoError> {
        self.spec(type_name)?;
        let conditions = Condition::parse_filter(filter)?;
        let mut options: DeleteOptions = parse("delete options", options)?;
        options.hard_limits = self.hard_limits();
        self.db.write(|tx| {
            let spec = self.spec(type_name)?;
            Ok(storage::objects::delete(tx, &spec, &conditions, &options)?)
        })
    }

    /// The limits every request runs under.
    pub fn hard_limits(&self) -> HardLimits {
        *self.limits.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Change the limits for the requests that start from now on (until restart; the
    /// configuration file keeps its own).
    pub fn set_hard_limits(&self, limits: HardLimits) {
        *self.limits.write().unwrap_or_else(PoisonError::into_inner) = limits;
    }

    /// The sequence settings (first number, range width).
    pub fn sequence_settings(&self) -> SequenceGenerator {
        self.sequences
    }
}

/// Validation after an update keeps existing values; defaults of absent fields are plain ones.
struct UpdateHooks;

impl ValidationHooks for UpdateHooks {
    fn default_function(&mut self, function: &str, _: &str, field: &str) -> Result<Value, String> {
        Err(format!("{field}: default_function \"{function}\" cannot run during update; set the field"))
    }

    fn auto_increment(&mut self, _: &str, field: &str) -> Result<i64, String> {
        Err(format!("{field}: auto_increment cannot run during update; set the field"))
    }
}

fn host_error(e: RepoError) -> HostError {
    HostError::new(e.class(), e.to_string())
}

fn objects(items: Vec<Stored>) -> Value {
    Value::Array(items.into_iter().map(|s| s.object).collect())
}

impl ferrogrid_sandbox::DataAccess for Repository {
    fn find(&self, type_name: &str, filter: &Value, options: &Value) -> Result<Value, HostError> {
        self.find(type_name, filter, options).map(|p| objects(p.items)).map_err(host_error)
    }

    fn get(&self, type_name: &str, index: &str, key: &Value, options: &Value) -> Result<Value, HostError> {
        Ok(self.get(type_name, index, key, options).map_err(host_error)?.map_or(Value::Null, |s| s.object))
    }

    fn put(&self, type_name: &str, object: &Value, options: &Value) -> Result<Value, HostError> {
        let ctx = CallContext::default();
        self.put(type_name, object, options, &ctx).map(|s| s.object).map_err(host_error)
    }

    fn update(&self, type_name: &str, filter: &Value, updaters: &Value, options: &Value) -> Result<Value, HostError> {
        self.update(type_name, filter, updaters, options).map(objects).map_err(host_error)
    }

    fn delete(&self, type_name: &str, filter: &Value, options: &Value) -> Result<Value, HostError> {
        self.delete(type_name, filter, options).map(objects).map_err(host_error)
    }

    fn scan_page(
        &self,
        type_name: &str,
        filter: &Value,
        options: &Value,
    ) -> Result<(Vec<Value>, Option<String>), HostError> {
        self.scan_page_of(type_name, filter, options).map_err(host_error)
    }

    fn push_job(&self, name: &str, args: &Value) -> Result<(), HostError> {
        if !self.is_job(name) {
            return Err(HostError::new(
                HostClass::UserData,
                format!("push_job(\"{name}\"): no pipeline or function of that name"),
            ));
        }
        let jobs = self.jobs.get().ok_or_else(|| HostError::new(HostClass::Internal, "the job queue is not open"))?;
        jobs.push(name, args.clone()).map_err(|e| HostError::new(HostClass::Internal, e.to_string()))
    }
}

/// Objects per page of a `map_reduce` scan (fewer when `hard_limits.returned` is lower).
const SCAN_PAGE: i64 = 500;

impl Repository {
    /// One page of a scan (`map_reduce`): at most [`SCAN_PAGE`] objects (no more than
    /// `hard_limits.returned`), and the cursor to go on after the last when there may be more.
    /// `hard_limits.scanned` does not apply (TDG's map_reduce ignores the hard limits on the
    /// storages): a page may read far for a selective filter; the script's deadline and budgets
    /// are checked between objects. Pages read what is stored when each is read (as TDG's
    /// storages do), or as of `version` when given.
    fn scan_page_of(
        &self,
        type_name: &str,
        filter: &Value,
        options: &Value,
    ) -> Result<(Vec<Value>, Option<String>), RepoError> {
        let spec = self.spec(type_name)?;
        let conditions = Condition::parse_filter(filter)?;
        let mut options: FindOptions = parse("map_reduce options", options)?;
        let page = SCAN_PAGE.min(i64::try_from(self.hard_limits().returned).unwrap_or(SCAN_PAGE)).max(1);
        options.hard_limits = HardLimits { scanned: u64::MAX, returned: u64::try_from(page).unwrap_or(1) };
        options.first = Some(page);
        let found = storage::objects::find(&self.db, &spec, &conditions, &options)?;
        let full = i64::try_from(found.items.len()).unwrap_or(i64::MAX) >= page;
        let next = if full { found.items.last().map(|s| s.cursor.clone()) } else { None };
        Ok((found.items.into_iter().map(|s| s.object).collect(), next))
    }
}

impl ferrogrid_sandbox::Sequences for Repository {
    fn next(&self, name: &str) -> Result<i64, HostError> {
        self.next_sequence(name).map_err(host_error)
    }
}
