//! `{__file: name}` includes: a mapping with the single key `__file` is replaced by the named
//! file, read relative to the including file and never outside the configuration folder.
//! `.json`/`.avsc` files become JSON values, `.yml`/`.yaml` files YAML values (with their own
//! includes), anything else (scripts) a string.
//!
//! Files come from a [`Source`]: a folder on disk (`ferrogrid run FOLDER`, `ferrogrid check`) or
//! files in memory (an uploaded archive, a stored configuration version). Every file read is
//! recorded: together they are the configuration's files ([`super::Loaded::files`]).

use super::ConfigError;
use serde_json::Value;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// Include depth past which we assume a cycle.
const MAX_DEPTH: usize = 16;

/// The files of a configuration by relative path (`/`-separated), as text.
pub use crate::storage::config_versions::Files;

/// Where a configuration's files are read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A folder on disk.
    Disk(PathBuf),
    /// Files in memory.
    Memory(Files),
}

/// Reads files from a [`Source`], remembering each one read.
pub struct Reader {
    source: Source,
    read: RefCell<Files>,
}

impl Reader {
    /// A reader of `source`.
    pub fn new(source: Source) -> Reader {
        Reader { source, read: RefCell::new(Files::new()) }
    }

    /// The files read so far.
    pub fn into_files(self) -> Files {
        self.read.into_inner()
    }

    /// How `rel` is shown in messages: the path on disk, or the name in the archive.
    pub fn display(&self, rel: &str) -> String {
        match &self.source {
            Source::Disk(root) => root.join(rel).display().to_string(),
            Source::Memory(_) => rel.to_string(),
        }
    }

    /// The text of `rel` (already normalised), recorded as read.
    pub fn read(&self, rel: &str) -> Result<String, String> {
        if let Some(text) = self.read.borrow().get(rel) {
            return Ok(text.clone());
        }
        let text = match &self.source {
            Source::Memory(files) => files.get(rel).cloned().ok_or_else(|| "no such file".to_string())?,
            Source::Disk(root) => {
                let full = root.join(rel);
                let canonical = full.canonicalize().map_err(|e| format!("{e} ({})", full.display()))?;
                let root = root.canonicalize().map_err(|e| e.to_string())?;
                if !canonical.starts_with(&root) {
                    return Err("leaves the configuration folder".to_string());
                }
                let bytes = std::fs::read(&canonical).map_err(|e| e.to_string())?;
                String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())?
            }
        };
        self.read.borrow_mut().insert(rel.to_string(), text.clone());
        Ok(text)
    }
}

/// `name` relative to the folder of the file `from` (both `/`-separated, relative to the
/// configuration folder), normalised; `None` when it is absolute or climbs out with `..`.
pub fn relative(from: &str, name: &str) -> Option<String> {
    if name.is_empty() || name.starts_with('/') || name.contains('\\') || name.contains('\0') || name.contains(':') {
        return None;
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    let out = parts.join("/");
    (!out.is_empty()).then_some(out)
}

/// Render a key path like `functions.router` or `connector.input[0]`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Parse YAML text into JSON values; `file` names it in the error.
pub fn parse_yaml(text: &str, file: &str) -> Result<Value, ConfigError> {
    serde_yaml_ng::from_str::<Value>(text)
        .map_err(|e| ConfigError::Syntax { file: file.to_string(), message: e.to_string() })
}

/// Resolve every include in `value`, found in the file `file` (relative to the folder).
pub fn resolve(reader: &Reader, value: Value, file: &str, path: &str, depth: usize) -> Result<Value, Vec<ConfigError>> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("__file") => {
            let target = map.get("__file").cloned().unwrap_or(Value::Null);
            let Value::String(name) = target else {
                return Err(vec![ConfigError::at(path, "__file must be a file name")]);
            };
            load_include(reader, &name, file, path, depth).map_err(|e| vec![e])
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            let mut errors = Vec::new();
            for (k, v) in map {
                match resolve(reader, v, file, &join(path, &k), depth) {
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
                match resolve(reader, v, file, &format!("{path}[{i}]"), depth) {
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

fn load_include(reader: &Reader, name: &str, from: &str, path: &str, depth: usize) -> Result<Value, ConfigError> {
    if depth >= MAX_DEPTH {
        return Err(ConfigError::at(path, format!("__file \"{name}\": includes nested deeper than {MAX_DEPTH}")));
    }
    let Some(rel) = relative(from, name) else {
        return Err(ConfigError::at(
            path,
            format!("__file \"{name}\" must be a path inside the configuration folder (no absolute paths, no ..)"),
        ));
    };
    let text = reader.read(&rel).map_err(|e| ConfigError::at(path, format!("__file \"{name}\": {e}")))?;
    let extension = Path::new(&rel).extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        // TDG's tutorials start from an empty model.avsc: no types.
        "avsc" if text.trim().is_empty() => Ok(Value::Array(Vec::new())),
        "json" | "avsc" => serde_json::from_str(&text)
            .map_err(|e| ConfigError::at(path, format!("__file \"{name}\": invalid JSON: {e}"))),
        "yml" | "yaml" => {
            let value = parse_yaml(&text, &reader.display(&rel))?;
            resolve(reader, value, &rel, path, depth + 1).map_err(|mut e| e.remove(0))
        }
        _ => Ok(Value::String(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn include_paths_stay_inside_the_folder() {
        assert_eq!(relative("config.yml", "model.avsc").as_deref(), Some("model.avsc"));
        assert_eq!(relative("sub/types.yml", "./m.avsc").as_deref(), Some("sub/m.avsc"));
        assert_eq!(relative("config.yml", "a/b/c.rhai").as_deref(), Some("a/b/c.rhai"));
        for bad in ["../x", "/etc/passwd", "a/../../x", "a/../b", "C:x", "a\\b", ""] {
            assert_eq!(relative("config.yml", bad), None, "{bad}");
        }
    }
}
