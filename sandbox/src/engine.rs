//! The one hardened Rhai engine constructor. Every engine of the sandbox (the compiler, the
//! library loader and each worker's `ScriptEngine`) is built here and nowhere else.
//!
//! - `Engine::new_raw()`: no file module resolver, no print to stdout, no packages.
//! - Packages: arithmetic, logic, bit fields, math, strings, arrays, BLOBs, maps, iterators and
//!   function pointers. Not registered: the core package (`sleep` blocks past any deadline;
//!   `exit`, `take`, tags, `parse_json` and function metadata are not needed) and time
//!   (`timestamp()`; the `no_time` feature removes it from Rhai entirely).
//! - `eval` is disabled as a symbol (a compile error).
//! - The reserved words `shared`, `new`, `debug` are read as identifiers (API names).
//! - Every limit of `Limits` is set; the wall-clock deadline, the cancel flag and the call's
//!   whole operation count (configuration functions it runs included) are checked from
//!   `on_progress` every `CHECK_INTERVAL` operations.
//! - `print` / `debug` go to `tracing` (target `ferrogrid::script`).
//! - `import` resolves only the configured libraries (a static resolver; never files).
//! - Printing and comparing nested values is depth-guarded (see `guard.rs`).

use rhai::module_resolvers::StaticModuleResolver;
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicBlobPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{Engine, OptimizationLevel, Token};

use crate::api::SharedModule;

use crate::api::log::{emit, Level};
use crate::frame;
use crate::guard;
use crate::limits::Limits;

/// Reserved words of Rhai used as names in the script API.
const API_RESERVED_WORDS: [&str; 3] = ["shared", "new", "debug"];

/// Build a hardened engine with the API modules and the library resolver.
pub(crate) fn hardened_engine(
    limits: &Limits,
    api: &[(&'static str, SharedModule)],
    libraries: StaticModuleResolver,
) -> Engine {
    let mut engine = Engine::new_raw();

    // Later registrations are searched first; the order only matters for overlapping names.
    let packages = [
        ArithmeticPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BitFieldPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicBlobPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
    ];
    for package in packages {
        engine.register_global_module(package);
    }
    guard::register(&mut engine, limits.max_value_depth);

    engine.disable_symbol("eval");
    // `shared`, `new` and `debug` are reserved words in Rhai, which would make `shared::get`,
    // `uuid::new` and `log::debug` syntax errors. As identifiers they parse as namespaced
    // calls; `debug(x)` still parses to the same call as before.
    #[allow(deprecated)] // "volatile", not deprecated
    engine.on_parse_token(|token, _, _| match token {
        Token::Reserved(word) if API_RESERVED_WORDS.contains(&word.as_str()) => Token::Identifier(word),
        other => other,
    });

    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_modules(limits.max_modules)
        .set_optimization_level(OptimizationLevel::Simple);

    let max_operations = limits.max_operations;
    engine.on_progress(move |ops| frame::progress(ops, max_operations));
    engine.on_print(|text| emit(Level::Info, text));
    engine.on_debug(|text, _source, pos| match pos.line() {
        Some(line) => emit(Level::Debug, &format!("line {line}: {text}")),
        None => emit(Level::Debug, text),
    });

    for (name, module) in api {
        engine.register_static_module(*name, module.clone());
    }
    engine.set_module_resolver(libraries);
    engine
}
