//! Building the engine from a loaded configuration: the model, the storage specs, the sandbox
//! with the repository as its host, the compiled pipelines and the routing tables. `ferrogrid
//! check` runs the same steps without opening storage.

use crate::config::{Config, Loaded};
use crate::model::Model;
use crate::repair::RepairQueue;
use crate::repository::Repository;
use crate::storage::Db;
use ferrogrid_connectors::{InputConfig, Output, OutputConfig};
use ferrogrid_pipelines::Pipelines;
use ferrogrid_sandbox::{ErrorClass, Host, HostError, Sandbox};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Everything processing needs for one configuration version, immutable once built. Storage,
/// the repository, the repair queue and the job and output queues are shared by every version.
pub struct Runtime {
    /// The configuration version (0 until recorded).
    pub version: u64,
    /// The checksum of its files ([`crate::config::checksum`]).
    pub checksum: String,
    /// Its files: config.yml and what it includes.
    pub files: crate::config::Files,
    /// Its top-level sections with includes resolved.
    pub sections: Value,
    /// The configuration.
    pub config: Config,
    /// The database.
    pub db: Db,
    /// The repair queue.
    pub repair: RepairQueue,
    /// The repository (model + storage).
    pub repository: Arc<Repository>,
    /// The job queue.
    pub jobs: Arc<crate::jobs::Jobs>,
    /// The output processor's queue.
    pub output_queue: Arc<crate::output::OutputQueue>,
    /// The sandbox scripts run in.
    pub sandbox: Arc<Sandbox>,
    /// Compiled functions and pipelines.
    pub pipelines: Pipelines,
    /// Inputs by name.
    pub inputs: HashMap<String, InputConfig>,
    /// Connector routing: key -> output name.
    pub routes: HashMap<String, String>,
    /// Outputs by name; `None` is the input processor. An output whose settings a new version
    /// keeps is shared with it (its connection, too).
    pub outputs: HashMap<String, Option<Arc<dyn Output>>>,
    /// The object journal (one for the data directory, shared by every configuration version).
    pub journal: Arc<crate::journal::Journal>,
    /// Classifier pipelines, in order.
    pub classifiers: Vec<String>,
    /// Input-processor routing: key -> pipeline.
    pub processor_routes: HashMap<String, String>,
    /// Storage: key -> aggregate type.
    pub storage_routes: HashMap<String, String>,
}

/// Parse the model and check the storage section against it.
fn build_model(config: &Config) -> Result<Model, Vec<String>> {
    let model = match &config.types {
        None => Model::empty(),
        Some(types) => {
            let types = match types {
                Value::String(text) => {
                    serde_json::from_str(text).map_err(|e| vec![format!("types: invalid JSON: {e}")])?
                }
                other => other.clone(),
            };
            Model::parse(&types, &|name| config.functions.contains_key(name))
                .map_err(|errors| errors.to_string().lines().map(|l| format!("types: {l}")).collect::<Vec<_>>())?
        }
    };
    let mut errors = Vec::new();
    for (i, route) in config.input_processor.storage.iter().enumerate() {
        match model.get(&route.type_name) {
            None => errors.push(format!(
                "input_processor.storage[{i}].type: type \"{}\" is not defined in the model",
                route.type_name
            )),
            Some(t) if t.kind != crate::model::TypeKind::Aggregate => errors.push(format!(
                "input_processor.storage[{i}].type: \"{}\" is a {}, only Aggregates can be stored",
                route.type_name,
                t.kind.as_str()
            )),
            Some(_) => {}
        }
    }
    let aggregate = |path: String, name: &str, errors: &mut Vec<String>| match model.get(name) {
        Some(t) if t.kind == crate::model::TypeKind::Aggregate => {}
        _ => errors.push(format!("{path}.type: \"{name}\" is not an aggregate of the model")),
    };
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in config.expiration.iter().enumerate() {
        aggregate(format!("expiration[{i}]"), &rule.type_name, &mut errors);
        if let Err(e) = rule.validate() {
            errors.push(format!("expiration[{i}].{e}"));
        }
        if !seen.insert(&rule.type_name) {
            errors.push(format!("expiration[{i}].type: \"{}\" has a rule already", rule.type_name));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in config.archivation.iter().enumerate() {
        aggregate(format!("archivation[{i}]"), &rule.type_name, &mut errors);
        if !seen.insert(&rule.type_name) {
            errors.push(format!("archivation[{i}].type: \"{}\" has a rule already", rule.type_name));
        }
        if let Err(e) = crate::config::schedule::parse(&rule.schedule) {
            errors.push(format!("archivation[{i}].schedule: \"{}\" is not a cron expression: {e}", rule.schedule));
        }
    }
    if errors.is_empty() {
        Ok(model)
    } else {
        Err(errors)
    }
}

/// Build the sandbox (with `host`) and compile every function and pipeline.
fn build_scripts(config: &Config, host: Host) -> Result<(Arc<Sandbox>, Pipelines), Vec<String>> {
    let libraries: Vec<(String, String)> = config.libraries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let sandbox = Sandbox::new(config.sandbox.clone(), host, &libraries).map_err(|e| {
        vec![match &e.kind {
            // Configuration errors name their key already (`sandbox.timeout_ms`, `libraries.x`).
            ferrogrid_sandbox::ScriptErrorKind::Config(message) => message.clone(),
            _ => format!("libraries.{}: {e}", e.function),
        }]
    })?;
    let functions: Vec<(String, String)> = config.functions.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let pipelines: Vec<(String, Vec<String>)> = config.pipelines.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let compiled = Pipelines::compile(&sandbox, &functions, &pipelines)?;
    Ok((Arc::new(sandbox), compiled))
}

/// A host for `ferrogrid check`: scripts are compiled, never run, so storage is never reached.
struct Unopened;

impl Unopened {
    fn error<T>() -> Result<T, HostError> {
        Err(HostError::new(ErrorClass::Internal, "storage is not open (ferrogrid check)"))
    }
}

impl ferrogrid_sandbox::DataAccess for Unopened {
    fn find(&self, _: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        Self::error()
    }
    fn get(&self, _: &str, _: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        Self::error()
    }
    fn put(&self, _: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        Self::error()
    }
    fn update(&self, _: &str, _: &Value, _: &Value, _: &Value) -> Result<Value, HostError> {
        Self::error()
    }
    fn delete(&self, _: &str, _: &Value, _: &Value) -> Result<Value, HostError> {
        Self::error()
    }
    fn scan_page(&self, _: &str, _: &Value, _: &Value) -> Result<(Vec<Value>, Option<String>), HostError> {
        Self::error()
    }
    fn push_job(&self, _: &str, _: &Value) -> Result<(), HostError> {
        Self::error()
    }
}

impl ferrogrid_sandbox::Sequences for Unopened {
    fn next(&self, _: &str) -> Result<i64, HostError> {
        Self::error()
    }
}

/// Check everything `run` would build, without opening storage: every problem, one per line.
pub fn check(config: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(problem) = version_problem(config) {
        errors.push(problem);
    }
    for (i, section) in config.locked_sections.iter().enumerate() {
        let known = crate::config::schema().get("properties").and_then(|p| p.get(section)).is_some();
        if !known || section == "locked_sections" {
            errors.push(format!("locked_sections[{i}]: \"{section}\" is not a section of config.yml"));
        }
    }
    match build_model(config) {
        Ok(model) => errors.append(&mut crate::graphql::check(&model, config)),
        Err(mut e) => errors.append(&mut e),
    }
    if let Err(e) = crate::notifier::check(&config.notifier) {
        errors.push(format!("notifier.{e}"));
    }
    let unopened = Arc::new(Unopened);
    let host = Host { repository: unopened.clone(), sequences: unopened };
    if let Err(mut e) = build_scripts(config, host) {
        errors.append(&mut e);
    }
    errors
}

/// A runtime built for a new configuration version, not yet active: what the switch needs.
pub struct Next {
    /// The new runtime (sharing storage, repository and queues with the active one).
    pub runtime: Arc<Runtime>,
    /// What the model change means for the stored data.
    pub plan: crate::storage::catalog::Plan,
    model: Arc<Model>,
    specs: HashMap<String, crate::storage::TypeSpec>,
}

impl Next {
    /// The storage specs of the new model.
    pub fn specs(&self) -> &HashMap<String, crate::storage::TypeSpec> {
        &self.specs
    }

    /// Move the stored indexes' catalog to the new model, and the repository with it (model,
    /// specs, scripts, limits) in the same moment: call with no object in flight
    /// ([`crate::processor::Processor::switch`]). The entries of removed indexes are deleted
    /// later ([`crate::storage::catalog::drop_removed`]); new indexes are built by the index
    /// builder.
    /// `with` stages more in the same commit (the version's record): all of it commits, or
    /// nothing changes.
    pub fn migrate(
        &self,
        with: impl FnOnce(&mut crate::storage::WriteTx<'_>) -> Result<(), crate::storage::StorageError>,
    ) -> Result<crate::storage::catalog::Migration, crate::storage::StorageError> {
        let rt = &self.runtime;
        let repository = rt.repository.clone();
        let model = self.model.clone();
        let migration = crate::storage::catalog::switch(&rt.db, self.specs.clone(), with, move |specs| {
            repository.reconfigure(model, specs);
        })?;
        rt.repository.bind_scripts(rt.sandbox.clone(), rt.pipelines.clone());
        rt.repository.set_hard_limits(rt.config.hard_limits);
        let sequences = rt.config.sequence_generator;
        rt.db.set_sequences(sequences.starts_with, sequences.range_width);
        Ok(migration)
    }
}

/// The storage specs of `model`'s aggregates, for objects written under configuration `version`.
fn versioned_specs(model: &Model, version: u64) -> HashMap<String, crate::storage::TypeSpec> {
    let mut specs = crate::repository::type_specs(model);
    for spec in specs.values_mut() {
        spec.config_version = version;
    }
    specs
}

/// Which parts of a configuration version differ from another's.
fn same<T: serde::Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

impl Runtime {
    /// Build the runtime of configuration version `version` over an open database.
    pub fn build(loaded: &Loaded, db: Db, version: u64) -> Result<Runtime, Vec<String>> {
        Self::build_with(loaded, db, version, |output| {
            output.build().map(|built| built.map(Arc::<dyn Output>::from)).map_err(|e| e.to_string())
        })
    }

    /// [`Runtime::build`] with the connector outputs made by `make_output` (`None`: the input
    /// processor). `ferrogrid test` makes recorders.
    pub fn build_with(
        loaded: &Loaded,
        db: Db,
        version: u64,
        make_output: impl Fn(&OutputConfig) -> Result<Option<Arc<dyn Output>>, String>,
    ) -> Result<Runtime, Vec<String>> {
        let config = loaded.config.clone();
        // Every check an upload gets, before the store changes: a configuration that cannot run
        // leaves the stored indexes as they were.
        let mut problems = check(&config);
        if !problems.is_empty() {
            problems.dedup();
            return Err(problems);
        }
        let model = Arc::new(build_model(&config)?);
        let plan = crate::storage::catalog::plan_change(&db, &versioned_specs(&model, version))
            .map_err(|e| vec![format!("planning the migration of the stored data: {e}")])?;
        if !plan.problems.is_empty() {
            return Err(plan.problems);
        }
        let stored = stored_data_problems_since_active(&db, loaded, &model)?;
        if !stored.is_empty() {
            return Err(stored);
        }
        let mut outputs = HashMap::new();
        for output in &config.connector.output {
            outputs.insert(output.name().to_string(), make_output(output).map_err(|e| vec![e])?);
        }
        // The stored indexes follow the model before anything reads or writes objects.
        let (specs, migration) = crate::storage::catalog::migrate(&db, versioned_specs(&model, version))
            .map_err(|e| vec![format!("migrating the stored indexes to the model: {e}")])?;
        for (type_name, index) in &migration.building {
            tracing::info!(r#type = %type_name, index = %index, "an index the model added or changed is built in the background; queries naming it answer INDEX_BUILDING until then");
        }
        for (type_name, entries) in &migration.dropped {
            tracing::info!(r#type = %type_name, entries, "deleted the entries of indexes the model no longer has");
        }
        let repository =
            Arc::new(Repository::new(db.clone(), model, specs, config.hard_limits, config.sequence_generator));
        let host = Host { repository: repository.clone(), sequences: repository.clone() };
        let (sandbox, pipelines) = build_scripts(&config, host)?;
        repository.bind_scripts(sandbox.clone(), pipelines.clone());
        let jobs = Arc::new(crate::jobs::Jobs::new(db.clone()));
        let output_queue = Arc::new(crate::output::OutputQueue::open(db.clone()).map_err(|e| vec![e.to_string()])?);
        repository.bind_jobs(jobs.clone());
        let repair =
            RepairQueue::open(db.clone(), config.repair_queue.history_size).map_err(|e| vec![e.to_string()])?;
        let journal = Arc::new(
            crate::journal::Journal::open(db.clone()).map_err(|e| vec![format!("starting the object journal: {e}")])?,
        );
        let mut runtime = Runtime::assemble(
            loaded,
            db,
            (repair, repository, jobs, output_queue, journal),
            sandbox,
            pipelines,
            outputs,
        );
        runtime.version = version;
        Ok(runtime)
    }

    /// Build the runtime of the configuration `loaded` to follow this one while the engine runs:
    /// every check `ferrogrid check` makes, the model's migration plan over the stored data,
    /// the scripts compiled, the changed outputs built (unchanged ones are shared). Nothing
    /// changes until [`Next::migrate`] and the switch.
    pub fn prepare_next(&self, loaded: &Loaded, version: u64) -> Result<Next, Vec<String>> {
        let config = loaded.config.clone();
        let mut problems = check(&config);
        if !problems.is_empty() {
            problems.dedup();
            return Err(problems);
        }
        let model = Arc::new(build_model(&config)?);
        let specs = versioned_specs(&model, version);
        let plan = crate::storage::catalog::plan_change(&self.db, &specs)
            .map_err(|e| vec![format!("planning the migration of the stored data: {e}")])?;
        if !plan.problems.is_empty() {
            return Err(plan.problems.clone());
        }
        let stored = stored_data_problems(&self.db, &self.repository.model(), &model)
            .map_err(|e| vec![format!("checking the stored data against the new model: {e}")])?;
        if !stored.is_empty() {
            return Err(stored);
        }
        let host = Host { repository: self.repository.clone(), sequences: self.repository.clone() };
        let (sandbox, pipelines) = build_scripts(&config, host)?;
        let mut outputs = HashMap::new();
        for output in &config.connector.output {
            let name = output.name();
            let kept = self.config.connector.output.iter().find(|o| o.name() == name).filter(|o| same(*o, output));
            let built = match (kept, self.outputs.get(name)) {
                (Some(_), Some(existing)) => existing.clone(),
                _ => output
                    .build()
                    .map_err(|e| vec![format!("connector.output: {name}: {e}")])?
                    .map(Arc::<dyn Output>::from),
            };
            outputs.insert(name.to_string(), built);
        }
        let mut runtime = Runtime::assemble(
            loaded,
            self.db.clone(),
            (
                self.repair.clone(),
                self.repository.clone(),
                self.jobs.clone(),
                self.output_queue.clone(),
                self.journal.clone(),
            ),
            sandbox,
            pipelines,
            outputs,
        );
        runtime.version = version;
        Ok(Next { runtime: Arc::new(runtime), plan, model, specs })
    }

    /// Whether `section` (a top-level key of config.yml) differs between this runtime and `other`.
    pub fn section_changed(&self, other: &Runtime, section: &str) -> bool {
        self.sections.get(section) != other.sections.get(section)
    }

    /// A runtime of `loaded` over the data directory's parts (`stores`: repair queue,
    /// repository, jobs, output queue, journal).
    fn assemble(
        loaded: &Loaded,
        db: Db,
        stores: Stores,
        sandbox: Arc<Sandbox>,
        pipelines: Pipelines,
        outputs: HashMap<String, Option<Arc<dyn Output>>>,
    ) -> Runtime {
        let (repair, repository, jobs, output_queue, journal) = stores;
        let config = loaded.config.clone();
        let connector = &config.connector;
        Runtime {
            version: 0,
            checksum: crate::config::checksum(&loaded.files),
            files: loaded.files.clone(),
            sections: loaded.sections.clone(),
            inputs: connector.input.iter().map(|i| (i.name().to_string(), i.clone())).collect(),
            routes: connector.routing.iter().map(|r| (r.key.clone(), r.output.clone())).collect(),
            outputs,
            classifiers: config.input_processor.classifiers.iter().map(|c| c.pipeline.clone()).collect(),
            processor_routes: config
                .input_processor
                .routing
                .iter()
                .map(|r| (r.key.clone(), r.pipeline.clone()))
                .collect(),
            storage_routes: config
                .input_processor
                .storage
                .iter()
                .map(|r| (r.key.clone(), r.type_name.clone()))
                .collect(),
            config,
            db,
            repair,
            repository,
            jobs,
            output_queue,
            journal,
            sandbox,
            pipelines,
        }
    }
}

/// The parts of a runtime that stay across configuration versions.
type Stores = (
    RepairQueue,
    Arc<Repository>,
    Arc<crate::jobs::Jobs>,
    Arc<crate::output::OutputQueue>,
    Arc<crate::journal::Journal>,
);

/// Stored objects of each type at most this many are named in a problem.
const SAMPLE_KEYS: usize = 5;

/// The stored objects that the `new` model would not accept (TDG's DDL checks): a required
/// field added without a default, a type change that stored values do not satisfy (a field
/// the model removes is simply not read any more; an index using it is a model error). Every
/// current object of each aggregate whose definition changed (all of them when a value type
/// changed) is validated against the new model; the problems name type, field, how many
/// objects and a sample of their primary keys. Defaults computed by functions are taken as
/// satisfiable.
/// [`stored_data_problems`] of a start with a configuration folder (`loaded`) that differs from
/// the data directory's active version: the objects stored under that version against `new`.
fn stored_data_problems_since_active(db: &Db, loaded: &Loaded, new: &Model) -> Result<Vec<String>, Vec<String>> {
    let failed = |e: crate::storage::StorageError| vec![format!("checking the stored data against the model: {e}")];
    let Some(active) = crate::storage::config_versions::active(db).map_err(failed)? else { return Ok(Vec::new()) };
    let Some(files) = crate::storage::config_versions::files(db, active).map_err(failed)? else {
        return Ok(Vec::new());
    };
    if crate::config::checksum(&files) == crate::config::checksum(&loaded.files) {
        return Ok(Vec::new());
    }
    let old = match crate::config::load_files(files)
        .map_err(|e| e.to_string())
        .and_then(|old| build_model(&old.config).map_err(|e| e.join("; ")))
    {
        Ok(old) => old,
        Err(e) => {
            tracing::warn!(version = active, error = %e, "the active configuration's model does not build: the stored data is not checked against the new one");
            return Ok(Vec::new());
        }
    };
    stored_data_problems(db, &old, new).map_err(failed)
}

fn stored_data_problems(db: &Db, old: &Model, new: &Model) -> Result<Vec<String>, crate::storage::StorageError> {
    // What validation reads: the fields of the types (indexes and relations do not matter).
    let fields_changed = |name: &str| match (old.get(name), new.get(name)) {
        (Some(a), Some(b)) => a.fields != b.fields || a.kind != b.kind,
        _ => true,
    };
    let shared_changed =
        new.types().chain(old.types()).any(|t| t.kind != crate::model::TypeKind::Aggregate && fields_changed(&t.name));
    let mut problems = Vec::new();
    for ty in new.aggregates() {
        // A type new to the model is checked too: its name may have stored objects, kept
        // unlinked since a model removed it (a new type's empty range costs nothing).
        if !fields_changed(&ty.name) && !shared_changed {
            continue;
        }
        let key_fields: Vec<String> =
            ty.primary_index().map(|i| i.parts.iter().map(|p| p.dotted()).collect()).unwrap_or_default();
        // "Type.field: message" -> (objects, sample keys)
        let mut found: indexmap::IndexMap<String, (u64, Vec<Value>)> = indexmap::IndexMap::new();
        crate::storage::catalog::for_each_current(db, &ty.name, |obj| {
            if let Err(violations) = new.validate(&ty.name, obj, &mut crate::model::NoHooks) {
                let key: serde_json::Map<String, Value> =
                    key_fields.iter().map(|f| (f.clone(), dotted(obj, f).cloned().unwrap_or(Value::Null))).collect();
                for v in violations.0.iter().filter(|v| v.kind != crate::model::ViolationKind::Hook) {
                    let entry = found.entry(format!("{}: {}", v.path, v.message)).or_default();
                    entry.0 += 1;
                    if entry.1.len() < SAMPLE_KEYS {
                        entry.1.push(Value::Object(key.clone()));
                    }
                }
            }
            true
        })?;
        for (problem, (count, keys)) in found {
            let keys: Vec<String> = keys.iter().map(Value::to_string).collect();
            problems.push(format!(
                "types: {problem} (the new model refuses {count} stored object(s), e.g. {})",
                keys.join(", ")
            ));
        }
    }
    Ok(problems)
}

/// The value at a dotted path (`a.b`) of an object.
fn dotted<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, part| v.get(part))
}

/// A configuration written for other engine versions (`ferrogrid-version`) is refused.
fn version_problem(config: &Config) -> Option<String> {
    let wanted = config.ferrogrid_version.as_deref()?;
    let requirement = match semver::VersionReq::parse(wanted) {
        Ok(r) => r,
        Err(e) => return Some(format!("ferrogrid-version: \"{wanted}\" is not a semver requirement: {e}")),
    };
    let running = env!("CARGO_PKG_VERSION");
    match semver::Version::parse(running) {
        Ok(version) if requirement.matches(&version) => None,
        Ok(_) => Some(format!(
            "ferrogrid-version: this configuration is written for ferrogrid {wanted}; this is ferrogrid {running}"
        )),
        Err(e) => Some(format!("ferrogrid-version: the engine's own version {running} does not parse: {e}")),
    }
}
