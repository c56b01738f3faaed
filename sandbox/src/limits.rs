//! Resource limits of the sandbox: the `sandbox` section of the configuration.
//!
//! Every limit turns a hostile or buggy script into an error (`ScriptErrorKind::Limit`,
//! `Timeout`), never into a hang or a crash. All fields are optional; the defaults are safe.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Limits applied to every script call (the `sandbox` section of `config.yml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Limits {
    /// Maximum number of Rhai operations one call may run (loops, calls, expressions each count).
    #[serde(default = "default_max_operations")]
    pub max_operations: u64,
    /// Maximum depth of nested function calls (recursion); 0 forbids calling script functions.
    #[serde(default = "default_max_call_levels")]
    pub max_call_levels: usize,
    /// Maximum nesting of expressions at the top level of a script, checked when it is compiled.
    #[serde(default = "default_max_expr_depth")]
    pub max_expr_depth: usize,
    /// Maximum nesting of expressions inside function bodies, checked when it is compiled.
    #[serde(default = "default_max_function_expr_depth")]
    pub max_function_expr_depth: usize,
    /// Maximum length of a string in bytes (all strings inside one value count together).
    #[serde(default = "default_max_string_size")]
    pub max_string_size: usize,
    /// Maximum number of elements in an array or bytes in a BLOB (nested arrays count together).
    #[serde(default = "default_max_array_size")]
    pub max_array_size: usize,
    /// Maximum number of properties in an object map (nested maps count together).
    #[serde(default = "default_max_map_size")]
    pub max_map_size: usize,
    /// Maximum number of modules (`import`) one call may load; 0 forbids `import`.
    #[serde(default = "default_max_modules")]
    pub max_modules: usize,
    /// Maximum nesting of arrays and maps for printing, comparing and JSON conversions.
    #[serde(default = "default_max_value_depth")]
    #[schemars(range(min = 1, max = 500))]
    pub max_value_depth: usize,
    /// Maximum number of keys in the `shared` store, all namespaces together.
    #[serde(default = "default_max_shared_keys")]
    pub max_shared_keys: usize,
    /// Maximum size of the `shared` store's contents in bytes (namespaces, keys and values as
    /// JSON), all namespaces together.
    #[serde(default = "default_max_shared_bytes")]
    #[schemars(range(min = 1))]
    pub max_shared_bytes: usize,
    /// Wall-clock time one call may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_max_operations() -> u64 {
    10_000_000
}
fn default_max_call_levels() -> usize {
    64
}
fn default_max_expr_depth() -> usize {
    128
}
fn default_max_function_expr_depth() -> usize {
    64
}
fn default_max_string_size() -> usize {
    4 * 1024 * 1024
}
fn default_max_array_size() -> usize {
    100_000
}
fn default_max_map_size() -> usize {
    100_000
}
fn default_max_modules() -> usize {
    64
}
// Above the HTTP input's 128 levels, so a pipeline may wrap an accepted object
// (`#{obj: param}`) a few times.
/// The deepest `max_value_depth` allowed: the engine reads back the records that hold such values
/// (`ferrogrid_engine::storage::from_stored`) recursively.
pub const MAX_VALUE_DEPTH: usize = 500;
fn default_max_value_depth() -> usize {
    256
}
fn default_max_shared_keys() -> usize {
    100_000
}
fn default_max_shared_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_timeout_ms() -> u64 {
    5_000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: default_max_operations(),
            max_call_levels: default_max_call_levels(),
            max_expr_depth: default_max_expr_depth(),
            max_function_expr_depth: default_max_function_expr_depth(),
            max_string_size: default_max_string_size(),
            max_array_size: default_max_array_size(),
            max_map_size: default_max_map_size(),
            max_modules: default_max_modules(),
            max_value_depth: default_max_value_depth(),
            max_shared_keys: default_max_shared_keys(),
            max_shared_bytes: default_max_shared_bytes(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

impl Limits {
    /// Check the values. In Rhai a zero means "no limit" for most of these, so zero is refused
    /// where it would switch a protection off. The error names the key: `sandbox.timeout_ms: ...`.
    pub fn validate(&self) -> Result<(), String> {
        let must_be_positive = [
            ("max_operations", self.max_operations == 0),
            ("max_expr_depth", self.max_expr_depth == 0),
            ("max_function_expr_depth", self.max_function_expr_depth == 0),
            ("max_string_size", self.max_string_size == 0),
            ("max_array_size", self.max_array_size == 0),
            ("max_map_size", self.max_map_size == 0),
            ("max_value_depth", self.max_value_depth == 0),
            ("max_shared_bytes", self.max_shared_bytes == 0),
            ("timeout_ms", self.timeout_ms == 0),
        ];
        if let Some((key, _)) = must_be_positive.iter().find(|(_, is_zero)| *is_zero) {
            return Err(format!("sandbox.{key}: must be greater than 0 (zero would remove the limit)"));
        }
        if self.max_value_depth > MAX_VALUE_DEPTH {
            // Values are converted and stored recursively; this keeps that well inside a stack.
            return Err(format!("sandbox.max_value_depth: at most {MAX_VALUE_DEPTH}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_the_documented_defaults() {
        let limits: Limits = serde_json::from_str("{}").unwrap();
        assert_eq!(limits, Limits::default());
        assert_eq!(limits.max_operations, 10_000_000);
        assert_eq!(limits.max_string_size, 4 * 1024 * 1024);
        assert_eq!(limits.timeout_ms, 5_000);
        assert!(limits.validate().is_ok());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<Limits>(r#"{"max_operation": 5}"#).unwrap_err();
        assert!(err.to_string().contains("max_operation"), "{err}");
    }

    #[test]
    fn zero_that_would_disable_a_limit_is_rejected_with_its_key() {
        let limits: Limits = serde_json::from_str(r#"{"timeout_ms": 0}"#).unwrap();
        let err = limits.validate().unwrap_err();
        assert!(err.starts_with("sandbox.timeout_ms:"), "{err}");
    }

    #[test]
    fn value_depth_has_a_ceiling() {
        let limits: Limits = serde_json::from_str(r#"{"max_value_depth": 501}"#).unwrap();
        assert_eq!(limits.validate().unwrap_err(), "sandbox.max_value_depth: at most 500");
        let limits: Limits = serde_json::from_str(r#"{"max_value_depth": 500}"#).unwrap();
        assert!(limits.validate().is_ok());
    }

    #[test]
    fn schema_documents_every_field() {
        let schema = serde_json::to_value(schemars::schema_for!(Limits)).unwrap();
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 12);
        for (name, prop) in props {
            assert!(prop.get("description").is_some(), "{name} has no doc");
        }
    }
}
