//! Loading `config.yml`: includes, JSON-Schema validation against the schema generated from the
//! config structs, deserialisation, and the checks that need the whole picture (references
//! between sections). Every problem names the key path where it is.

mod check;
mod include;
mod types;

pub use types::*;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A problem with the configuration.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {message}")]
    Io {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// The file is not valid YAML.
    #[error("{file}: invalid YAML: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A value is wrong; `path` is the key path (`connector.input[0].type`).
    #[error("{path}: {message}")]
    At {
        /// Key path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// An error at a key path.
    pub fn at(path: &str, message: impl Into<String>) -> ConfigError {
        let path = if path.is_empty() { "(top level)".to_string() } else { path.to_string() };
        ConfigError::At { path, message: message.into() }
    }
}

/// All problems found, each on its own line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// A configuration as loaded, with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The parsed configuration.
    pub config: Config,
    /// The folder holding config.yml.
    pub root: PathBuf,
}

/// The JSON Schema of config.yml, generated from [`Config`].
pub fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::to_value(schemars::schema_for!(Config)).unwrap_or(Value::Null))
}

/// `/connector/input/0/type` -> `connector.input[0].type`.
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

/// Validate a resolved config value against [`schema`]; every violation with its path.
fn validate_schema(value: &Value) -> Vec<ConfigError> {
    let validator = match jsonschema::validator_for(schema()) {
        Ok(v) => v,
        Err(e) => return vec![ConfigError::at("", format!("internal: the config schema does not compile: {e}"))],
    };
    let mut errors: Vec<ConfigError> = validator
        .iter_errors(value)
        .map(|e| ConfigError::at(&pointer_to_path(e.instance_path().as_str()), e.to_string()))
        .collect();
    errors.sort_by_key(|e| e.to_string());
    errors.dedup_by_key(|e| e.to_string());
    errors
}

/// TDG sections that this build does not implement yet: named clearly rather than reported as
/// unknown keys (and taken out so the schema check does not report them twice).
const NOT_YET: [&str; 8] =
    ["output_processor", "tasks", "task_runner", "jobs", "services", "expiration", "account_manager", "audit_log"];

fn unimplemented_sections(value: &mut Value) -> Vec<ConfigError> {
    let Value::Object(map) = value else { return Vec::new() };
    NOT_YET
        .iter()
        .filter(|key| map.shift_remove(**key).is_some())
        .map(|key| ConfigError::at(key, "this TDG section is not supported by this build yet"))
        .collect()
}

/// Find config.yml: `target` is the file itself or a folder holding it.
pub fn locate(target: &Path) -> Result<PathBuf, ConfigError> {
    let file = if target.is_dir() { target.join("config.yml") } else { target.to_path_buf() };
    if !file.is_file() {
        let alt = target.join("config.yaml");
        if target.is_dir() && alt.is_file() {
            return Ok(alt);
        }
        return Err(ConfigError::Io { file: file.display().to_string(), message: "no such file".into() });
    }
    Ok(file)
}

/// Read config.yml with its includes resolved (not validated yet), and its folder.
pub fn read(target: &Path) -> Result<(Value, PathBuf), ConfigErrors> {
    let one = |e| ConfigErrors(vec![e]);
    let file = locate(target).map_err(one)?;
    let root = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let text = std::fs::read_to_string(&file)
        .map_err(|e| one(ConfigError::Io { file: file.display().to_string(), message: e.to_string() }))?;
    let raw = include::parse_yaml(&text, &file).map_err(one)?;
    let raw = if raw.is_null() { Value::Object(Default::default()) } else { raw };
    let resolved = include::resolve(raw, &file, &root, "", 0).map_err(ConfigErrors)?;
    Ok((resolved, root))
}

/// The sections of a configuration that can be read on their own, for checking the model and
/// the scripts of a file that has errors elsewhere (each unreadable section stays empty).
pub fn lenient(value: &Value) -> Config {
    fn section<T: serde::de::DeserializeOwned + Default>(value: &Value, path: &[&str]) -> T {
        let mut v = value;
        for p in path {
            match v.get(p) {
                Some(next) => v = next,
                None => return T::default(),
            }
        }
        serde_json::from_value(v.clone()).unwrap_or_default()
    }
    let mut config = Config {
        types: value.get("types").cloned(),
        functions: section(value, &["functions"]),
        pipelines: section(value, &["pipelines"]),
        libraries: section(value, &["libraries"]),
        sandbox: section(value, &["sandbox"]),
        ..Config::default()
    };
    config.input_processor.storage = section(value, &["input_processor", "storage"]);
    config
}

/// Load, validate and check a configuration. The domain model and the scripts are checked by the
/// engine when it builds them (see `crate::app`), which `ferrogrid check` also does.
pub fn load(target: &Path) -> Result<Loaded, ConfigErrors> {
    let one = |e| ConfigErrors(vec![e]);
    let (mut resolved, root) = read(target)?;
    let mut errors = unimplemented_sections(&mut resolved);
    errors.extend(validate_schema(&resolved));
    errors.extend(check::references(&resolved));
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let config: Config = serde_json::from_value(resolved).map_err(|e| one(ConfigError::at("", e.to_string())))?;
    Ok(Loaded { config, root })
}

#[cfg(test)]
mod tests;
