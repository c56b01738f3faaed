//! `{__file: name}` includes: a mapping with the single key `__file` is replaced by the named
//! file, read relative to the including file and never outside the configuration folder.
//! `.json`/`.avsc` files become JSON values, `.yml`/`.yaml` files YAML values (with their own
//! includes), anything else (scripts) a string.

use super::ConfigError;
use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// Include depth past which we assume a cycle.
const MAX_DEPTH: usize = 16;

/// Render a key path like `functions.router` or `connector.input[0]`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Parse YAML text into JSON values.
pub fn parse_yaml(text: &str, file: &Path) -> Result<Value, ConfigError> {
    serde_yaml_ng::from_str::<Value>(text)
        .map_err(|e| ConfigError::Syntax { file: file.display().to_string(), message: e.to_string() })
}

/// Resolve every include in `value`, found in the file `file` inside the folder `root`.
pub fn resolve(value: Value, file: &Path, root: &Path, path: &str, depth: usize) -> Result<Value, Vec<ConfigError>> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("__file") => {
            let target = map.get("__file").cloned().unwrap_or(Value::Null);
            let Value::String(name) = target else {
                return Err(vec![ConfigError::at(path, "__file must be a file name")]);
            };
            load_include(&name, file, root, path, depth).map_err(|e| vec![e])
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            let mut errors = Vec::new();
            for (k, v) in map {
                match resolve(v, file, root, &join(path, &k), depth) {
                    Ok(v) => {
                        out.insert(k, v);
                    }
                    Err(mut e) => errors.append(&mut e),
                }
            }
            if errors.is_empty() {
                Ok(Value::Object(out))
            } else {
                Err(errors)
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut errors = Vec::new();
            for (i, v) in items.into_iter().enumerate() {
                match resolve(v, file, root, &format!("{path}[{i}]"), depth) {
                    Ok(v) => out.push(v),
                    Err(mut e) => errors.append(&mut e),
                }
            }
            if errors.is_empty() {
                Ok(Value::Array(out))
            } else {
                Err(errors)
            }
        }
        other => Ok(other),
    }
}

/// The file `name` relative to the folder of `from`, refused when it leaves `root`.
fn locate(name: &str, from: &Path, root: &Path, path: &str) -> Result<PathBuf, ConfigError> {
    let relative = Path::new(name);
    if relative.is_absolute() || relative.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(ConfigError::at(
            path,
            format!("__file \"{name}\" must be a path inside the configuration folder (no absolute paths, no ..)"),
        ));
    }
    let base = from.parent().unwrap_or(root);
    let full = base.join(relative);
    let canonical = full
        .canonicalize()
        .map_err(|e| ConfigError::at(path, format!("__file \"{name}\": {e} ({})", full.display())))?;
    let root = root.canonicalize().map_err(|e| ConfigError::at(path, e.to_string()))?;
    if !canonical.starts_with(&root) {
        return Err(ConfigError::at(path, format!("__file \"{name}\" leaves the configuration folder")));
    }
    Ok(canonical)
}

fn load_include(name: &str, from: &Path, root: &Path, path: &str, depth: usize) -> Result<Value, ConfigError> {
    if depth >= MAX_DEPTH {
        return Err(ConfigError::at(path, format!("__file \"{name}\": includes nested deeper than {MAX_DEPTH}")));
    }
    let file = locate(name, from, root, path)?;
    let text = std::fs::read_to_string(&file).map_err(|e| ConfigError::at(path, format!("__file \"{name}\": {e}")))?;
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "json" | "avsc" => serde_json::from_str(&text)
            .map_err(|e| ConfigError::at(path, format!("__file \"{name}\": invalid JSON: {e}"))),
        "yml" | "yaml" => {
            let value = parse_yaml(&text, &file)?;
            resolve(value, &file, root, path, depth + 1).map_err(|mut e| e.remove(0))
        }
        _ => Ok(Value::String(text)),
    }
}
