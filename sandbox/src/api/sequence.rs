//! `sequence::next(name)`: the next value of a named persistent counter (host `Sequences`).

use std::sync::Arc;

use rhai::{ImmutableString, Module, INT};

use crate::error::host_error;
use crate::host::Sequences;

/// Build the `sequence` module over `sequences`.
pub(crate) fn module(sequences: Arc<dyn Sequences>) -> Module {
    let mut m = Module::new();
    m.set_native_fn("next", move |name: ImmutableString| -> Result<INT, _> {
        sequences.next(&name).map_err(host_error)
    });
    m
}
