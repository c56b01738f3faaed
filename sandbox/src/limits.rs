//! Limits every script runs under (config section `sandbox`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_max_operations() -> u64 {
    10_000_000
}
fn default_max_call_levels() -> usize {
    64
}
fn default_max_expr_depth() -> usize {
    64
}
fn default_max_function_expr_depth() -> usize {
    32
}
fn default_max_string_size() -> usize {
    4 * 1024 * 1024
}
// Rhai re-measures a container after each change, so growing one to n items costs O(n^2)
// operations: 10k keeps a runaway loop short while fitting real objects.
fn default_max_array_size() -> usize {
    10_000
}
fn default_max_map_size() -> usize {
    10_000
}
fn default_max_modules() -> usize {
    64
}
fn default_timeout_ms() -> u64 {
    5_000
}

/// `sandbox`: limits of one script call. A script past any of them stops with an error and its
/// object goes to the repair queue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Limits {
    /// Most operations (roughly: expressions evaluated) in one call.
    #[serde(default = "default_max_operations")]
    pub max_operations: u64,
    /// Deepest function-call nesting (recursion).
    #[serde(default = "default_max_call_levels")]
    pub max_call_levels: usize,
    /// Deepest expression nesting at the top level of a script (checked when compiling).
    #[serde(default = "default_max_expr_depth")]
    pub max_expr_depth: usize,
    /// Deepest expression nesting inside functions (checked when compiling).
    #[serde(default = "default_max_function_expr_depth")]
    pub max_function_expr_depth: usize,
    /// Longest string in bytes.
    #[serde(default = "default_max_string_size")]
    pub max_string_size: usize,
    /// Largest array.
    #[serde(default = "default_max_array_size")]
    pub max_array_size: usize,
    /// Largest map.
    #[serde(default = "default_max_map_size")]
    pub max_map_size: usize,
    /// Most modules one call may import.
    #[serde(default = "default_max_modules")]
    pub max_modules: usize,
    /// Wall-clock time of one call in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
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
            timeout_ms: default_timeout_ms(),
        }
    }
}
