//! Building the engine from a loaded configuration: the model, the storage specs, the sandbox
//! with the repository as its host, the compiled pipelines and the routing tables. `ferrogrid
//! check` runs the same steps without opening storage.

use crate::config::{Config, Loaded};
use crate::model::Model;
use crate::repair::RepairQueue;
use crate::repository::Repository;
use crate::storage::Db;
use ferrogrid_connectors::{InputConfig, Output};
use ferrogrid_pipelines::Pipelines;
use ferrogrid_sandbox::{ErrorClass, Host, HostError, Sandbox};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Everything processing needs, immutable once built.
pub struct Runtime {
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
    /// Outputs by name; `None` is the input processor.
    pub outputs: HashMap<String, Option<Box<dyn Output>>>,
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
    match build_model(config) {
        Ok(model) => errors.append(&mut crate::graphql::check(&model, config)),
        Err(mut e) => errors.append(&mut e),
    }
    let unopened = Arc::new(Unopened);
    let host = Host { repository: unopened.clone(), sequences: unopened };
    if let Err(mut e) = build_scripts(config, host) {
        errors.append(&mut e);
    }
    errors
}

impl Runtime {
    /// Build the runtime over an open database.
    pub fn build(loaded: &Loaded, db: Db) -> Result<Runtime, Vec<String>> {
        let config = loaded.config.clone();
        let model = Arc::new(build_model(&config)?);
        let schema_errors = crate::graphql::check(&model, &config);
        if !schema_errors.is_empty() {
            return Err(schema_errors);
        }
        // The stored indexes follow the model before anything reads or writes objects.
        let (specs, migration) = crate::storage::catalog::migrate(&db, crate::repository::type_specs(&model))
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
        let connector = &config.connector;
        let mut outputs = HashMap::new();
        for output in &connector.output {
            outputs.insert(output.name().to_string(), output.build().map_err(|e| vec![e.to_string()])?);
        }
        Ok(Runtime {
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
            sandbox,
            pipelines,
        })
    }
}
