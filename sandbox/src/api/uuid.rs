//! `uuid::new()`: a random (version 4) UUID as a lowercase hyphenated string.

use rhai::{ImmutableString, Module};

/// Build the `uuid` module.
pub(crate) fn module() -> Module {
    let mut m = Module::new();
    m.set_native_fn("new", || Ok(ImmutableString::from(uuid::Uuid::new_v4().to_string())));
    m
}
