//! Loading `config.yml`: includes, JSON-Schema validation against the schema generated from the
//! config structs, deserialisation, and the checks that need the whole picture (references
//! between sections). Every problem names the key path where it is.

pub mod archive;
mod check;
mod include;
pub mod schedule;
pub mod tdg;
mod types;

pub use include::Files;
use include::{Reader, Source};
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

/// A configuration as loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The parsed configuration.
    pub config: Config,
    /// Its files: config.yml and every file it includes, by relative path.
    pub files: Files,
    /// The top-level sections with includes resolved, as read (for comparing two versions
    /// section by section).
    pub sections: Value,
    /// What of TDG's configuration this one has that Ferrogrid reads differently or not at all
    /// (see [`tdg`]).
    pub warnings: Vec<String>,
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
    let mut errors = Vec::new();
    for e in validator.iter_errors(value) {
        explain(&e, &mut errors);
    }
    errors.sort_by_key(|e| e.to_string());
    errors.dedup_by_key(|e| e.to_string());
    errors
}

/// TDG connector types this build does not implement yet.
const CONNECTOR_TYPES_NOT_YET: [&str; 2] = ["file", "tarantool_protocol"];

/// Turn one schema violation into errors that name the offending key. A `oneOf` over tagged
/// variants (`connector.input[]`, `connector.output[]`) is explained by the variant its `type`
/// selects, instead of jsonschema's "not valid under any of the schemas".
fn explain(e: &jsonschema::ValidationError<'_>, out: &mut Vec<ConfigError>) {
    let here = e.instance_path().as_str().to_string();
    if let jsonschema::error::ValidationErrorKind::OneOfNotValid { context } = e.kind() {
        if let Some(tag) = e.instance().get("type") {
            let tag_path = format!("{here}/type");
            let mut selected = context.iter().filter(|branch| {
                !branch.iter().any(|b| {
                    b.instance_path().as_str() == tag_path
                        && matches!(b.kind(), jsonschema::error::ValidationErrorKind::Constant { .. })
                })
            });
            match (selected.next(), selected.next()) {
                (Some(branch), None) => {
                    for sub in branch {
                        explain(sub, out);
                    }
                    return;
                }
                (None, _) => {
                    let name = tag.as_str().map_or_else(|| tag.to_string(), str::to_string);
                    let known: Vec<&str> = context
                        .iter()
                        .flatten()
                        .filter(|b| b.instance_path().as_str() == tag_path)
                        .filter_map(|b| match b.kind() {
                            jsonschema::error::ValidationErrorKind::Constant { expected_value } => {
                                expected_value.as_str()
                            }
                            _ => None,
                        })
                        .collect();
                    let message = if CONNECTOR_TYPES_NOT_YET.contains(&name.as_str()) {
                        format!(
                            "type \"{name}\" is not supported by this build yet (supported here: {})",
                            known.join(", ")
                        )
                    } else {
                        format!("unknown type \"{name}\" (one of: {})", known.join(", "))
                    };
                    out.push(ConfigError::at(&pointer_to_path(&tag_path), message));
                    return;
                }
                _ => {}
            }
        } else if e.instance().is_object() {
            out.push(ConfigError::at(&pointer_to_path(&here), "missing `type`"));
            return;
        }
    }
    let message = match e.kind() {
        jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
            for key in unexpected {
                let path = pointer_to_path(&format!("{here}/{}", key.replace('~', "~0").replace('/', "~1")));
                out.push(ConfigError::at(&path, "unknown key"));
            }
            return;
        }
        _ => e.to_string(),
    };
    out.push(ConfigError::at(&pointer_to_path(&here), message));
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

/// The main file of configuration files in memory: `config.yml` (or `config.yaml`).
fn entry_of(files: &Files) -> Result<&'static str, ConfigError> {
    ["config.yml", "config.yaml"].into_iter().find(|name| files.contains_key(*name)).ok_or_else(|| ConfigError::Io {
        file: "config.yml".into(),
        message: "no config.yml at the root of the configuration (or in its one top folder)".into(),
    })
}

/// Read the main file `entry` of `source` with its includes resolved (not validated yet), and
/// the files read.
fn read_source(source: Source, entry: &str) -> Result<(Value, Files), ConfigErrors> {
    let one = |e| ConfigErrors(vec![e]);
    let reader = Reader::new(source);
    let text = reader.read(entry).map_err(|message| one(ConfigError::Io { file: reader.display(entry), message }))?;
    let raw = include::parse_yaml(&text, &reader.display(entry)).map_err(one)?;
    let raw = if raw.is_null() { Value::Object(Default::default()) } else { raw };
    let resolved = include::resolve(&reader, raw, entry, "", 0).map_err(ConfigErrors)?;
    Ok((resolved, reader.into_files()))
}

/// The folder and the main file name of `target` (a folder or its config.yml).
fn on_disk(target: &Path) -> Result<(Source, String), ConfigErrors> {
    let file = locate(target).map_err(|e| ConfigErrors(vec![e]))?;
    let root = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("config.yml").to_string();
    Ok((Source::Disk(root), name))
}

/// Read config.yml with its includes resolved (not validated yet).
pub fn read(target: &Path) -> Result<Value, ConfigErrors> {
    let (source, entry) = on_disk(target)?;
    let (mut value, _) = read_source(source, &entry)?;
    tdg::normalize(&mut value);
    Ok(value)
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

fn load_source(source: Source, entry: &str) -> Result<Loaded, ConfigErrors> {
    let one = |e| ConfigErrors(vec![e]);
    let (mut resolved, read) = read_source(source, entry)?;
    let (mut warnings, mut errors) = tdg::normalize(&mut resolved);
    errors.extend(validate_schema(&resolved));
    errors.extend(check::references(&resolved));
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let mut files = read;
    // A configuration's main file is config.yml, wherever it was read from.
    if entry != "config.yml" {
        if let Some(text) = files.remove(entry) {
            files.insert("config.yml".to_string(), text);
        }
    }
    let sections = resolved.clone();
    let config: Config = serde_json::from_value(resolved).map_err(|e| one(ConfigError::at("", e.to_string())))?;
    warnings.extend(tdg::routing_option_notes(&config.functions));
    Ok(Loaded { config, files, sections, warnings })
}

/// Load, validate and check a configuration folder (or its config.yml). The domain model and the
/// scripts are checked by the engine when it builds them (see `crate::app`), which `ferrogrid
/// check` also does.
pub fn load(target: &Path) -> Result<Loaded, ConfigErrors> {
    let (source, entry) = on_disk(target)?;
    load_source(source, &entry)
}

/// Load, validate and check a configuration from its files in memory (an uploaded archive, a
/// stored version): `config.yml` at the root, the files it includes beside it.
pub fn load_files(files: Files) -> Result<Loaded, ConfigErrors> {
    let entry = entry_of(&files).map_err(|e| ConfigErrors(vec![e]))?;
    load_source(Source::Memory(files), entry)
}

/// The checksum of a configuration's files (SHA-256 over names and contents, hex).
pub fn checksum(files: &Files) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (name, text) in files {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests;
