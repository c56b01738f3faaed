//! The `input_processor` output: hands an object to the engine's input processor (classifiers,
//! routing, validation, storage). It has no I/O of its own; the engine recognises it by type.

mod config;

pub use config::InputProcessorOutputConfig;
