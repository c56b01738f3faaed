//! `Sandbox` (built once from config: limits, host services, libraries), `CompiledScript`
//! (an AST compiled at config load, shared by all workers) and `ScriptEngine` (one per worker
//! thread; runs compiled scripts under the limits).

use std::collections::HashSet;
use std::sync::Arc;

use rhai::module_resolvers::StaticModuleResolver;
use rhai::{CallFnOptions, Dynamic, Engine, Module, Scope, AST};

use crate::api::{self, shared::SharedStore, SharedModule, MODULE_NAMES};
use crate::convert::{dynamic_to_json, json_to_dynamic};
use crate::engine::hardened_engine;
use crate::error::{ScriptError, ScriptErrorKind};
use crate::frame::{self, CallContext};
use crate::host::Host;
use crate::limits::Limits;

/// Stack size that worker threads running scripts should have (virtual memory: only the pages
/// a script really uses are committed). Rhai clones, drops and measures nested arrays and maps
/// recursively; at the default size limits a hostile script can nest values ~200 000 levels
/// deep, which needs tens of MiB of stack. Use `spawn_script_thread` or
/// `std::thread::Builder::stack_size(SCRIPT_STACK_SIZE)`.
pub const SCRIPT_STACK_SIZE: usize = 256 * 1024 * 1024;

/// Spawn a thread with `SCRIPT_STACK_SIZE` of stack, to run a `ScriptEngine` on.
pub fn spawn_script_thread<F, T>(name: impl Into<String>, f: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new().name(name.into()).stack_size(SCRIPT_STACK_SIZE).spawn(f)
}

/// The functions compiled by a sandbox, by name: `repository::map_reduce` runs the ones it is
/// given by name.
pub(crate) type Compiled = Arc<std::sync::RwLock<std::collections::HashMap<String, Arc<AST>>>>;

struct Inner {
    limits: Limits,
    compiled: Compiled,
    api: Vec<(&'static str, SharedModule)>,
    libraries: StaticModuleResolver,
    compiler: Engine,
    store: Arc<SharedStore>,
}

/// The script runtime of one configuration: limits, host services, compiled libraries and the
/// `shared` store. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("limits", &self.inner.limits).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Build the sandbox. `libraries` are `(import name, source)` pairs, compiled and run once
    /// (in order: a library may import the ones listed before it) and then available to every
    /// script as `import "name" as name;`.
    pub fn new(limits: Limits, host: Host, libraries: &[(String, String)]) -> Result<Sandbox, ScriptError> {
        limits.validate().map_err(|m| ScriptError::new("sandbox", ScriptErrorKind::Config(m)))?;
        let store = Arc::new(SharedStore::new(limits.max_shared_keys, limits.max_shared_bytes));
        let compiled: Compiled = Arc::default();
        let api = api::build(&host, &limits, store.clone(), compiled.clone());

        let mut resolver = StaticModuleResolver::new();
        let mut seen = HashSet::new();
        for (name, source) in libraries {
            let config_error =
                |msg: String| ScriptError::new(name, ScriptErrorKind::Config(format!("libraries.{name}: {msg}")));
            if MODULE_NAMES.contains(&name.as_str()) {
                return Err(config_error(format!("the name clashes with the script API module {name}")));
            }
            if !seen.insert(name.as_str()) {
                return Err(config_error("defined twice".to_string()));
            }
            let loader = hardened_engine(&limits, &api, resolver.clone());
            let mut ast = loader.compile(source).map_err(|e| ScriptError::from_parse(name, &e))?;
            ast.set_source(name.as_str());
            let library_fn: Arc<str> = Arc::from(name.as_str());
            let _frame = frame::enter(&library_fn, &CallContext::new("library-init"), limits.timeout_ms);
            let mut module =
                Module::eval_ast_as_new(Scope::new(), &ast, &loader).map_err(|e| ScriptError::from_eval(name, *e))?;
            module.set_id(name.as_str());
            resolver.insert(name.as_str(), module);
        }

        let compiler = hardened_engine(&limits, &api, resolver.clone());
        Ok(Sandbox { inner: Arc::new(Inner { limits, compiled, api, libraries: resolver, compiler, store }) })
    }

    /// Compile the script of `function_name` (at config load). Errors name the function, the
    /// line and the column; expressions nested past `max_expr_depth` fail here.
    pub fn compile(&self, function_name: &str, source: &str) -> Result<CompiledScript, ScriptError> {
        self.inner.compiler.compile(source).map_err(|e| ScriptError::from_parse(function_name, &e))?;
        // Compiled again with its `import "name"`s resolved now: a library that does not exist
        // is a load error, not a failure of the first object that runs the script.
        let mut ast = self.inner.compiler.compile_into_self_contained(&Scope::new(), source).map_err(|e| {
            let mut error = ScriptError::from_eval(function_name, *e);
            if let ScriptErrorKind::Runtime(message) = error.kind {
                error.kind = ScriptErrorKind::Compile(message);
            }
            error
        })?;
        ast.set_source(function_name);
        let ast = Arc::new(ast);
        self.inner
            .compiled
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(function_name.to_string(), ast.clone());
        Ok(CompiledScript { name: Arc::from(function_name), ast })
    }

    /// A new engine for one worker thread (run it on a thread with `SCRIPT_STACK_SIZE`).
    pub fn engine(&self) -> ScriptEngine {
        let inner = &self.inner;
        ScriptEngine {
            engine: hardened_engine(&inner.limits, &inner.api, inner.libraries.clone()),
            limits: inner.limits.clone(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Number of keys in the `shared` store (all namespaces).
    pub fn shared_keys(&self) -> usize {
        self.inner.store.len()
    }
}

/// A compiled function: its name and its AST. Cheap to clone, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct CompiledScript {
    name: Arc<str>,
    ast: Arc<AST>,
}

impl CompiledScript {
    /// The function name given at compile time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Does the script define a function `fn_name` taking `arity` arguments?
    pub fn has_fn(&self, fn_name: &str, arity: usize) -> bool {
        self.ast.iter_functions().any(|f| f.name == fn_name && f.params.len() == arity)
    }
}

/// Runs compiled scripts; owns one hardened `rhai::Engine`. One per worker thread.
pub struct ScriptEngine {
    engine: Engine,
    limits: Limits,
}

impl std::fmt::Debug for ScriptEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptEngine").finish_non_exhaustive()
    }
}

impl ScriptEngine {
    /// Run `script` with `param` bound to the variable `param`; the result is the value of the
    /// last expression (or of `return`).
    pub fn run(&self, script: &CompiledScript, param: Dynamic, ctx: &CallContext) -> Result<Dynamic, ScriptError> {
        if frame::is_cancelled(ctx) {
            return Err(ScriptError::new(&script.name, ScriptErrorKind::Cancelled));
        }
        let _frame = frame::enter(&script.name, ctx, self.limits.timeout_ms);
        let mut scope = Scope::new();
        scope.push("param", param);
        self.engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast)
            .map(Dynamic::flatten)
            .map_err(|e| ScriptError::from_eval(&script.name, *e))
    }

    /// `run` with JSON in and out (nesting bounded by `max_value_depth`).
    pub fn run_json(
        &self,
        script: &CompiledScript,
        param: serde_json::Value,
        ctx: &CallContext,
    ) -> Result<serde_json::Value, ScriptError> {
        let depth = self.limits.max_value_depth;
        let conversion = |what: &str, msg: String| {
            ScriptError::new(&script.name, ScriptErrorKind::Conversion(format!("{what}: {msg}")))
        };
        let param = json_to_dynamic(&param, depth).map_err(|m| conversion("param", m))?;
        let result = self.run(script, param, ctx)?;
        dynamic_to_json(&result, depth).map_err(|m| conversion("result", m))
    }

    /// Call the function `fn_name` defined in `script` with `args`. The top-level statements
    /// of the script are not run (an `import` needed by the function goes inside its body).
    pub fn call_fn(
        &self,
        script: &CompiledScript,
        fn_name: &str,
        args: Vec<Dynamic>,
        ctx: &CallContext,
    ) -> Result<Dynamic, ScriptError> {
        if frame::is_cancelled(ctx) {
            return Err(ScriptError::new(&script.name, ScriptErrorKind::Cancelled));
        }
        let _frame = frame::enter(&script.name, ctx, self.limits.timeout_ms);
        let mut scope = Scope::new();
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        self.engine
            .call_fn_with_options::<Dynamic>(options, &mut scope, &script.ast, fn_name, args)
            .map(Dynamic::flatten)
            .map_err(|e| ScriptError::from_eval(&script.name, *e))
    }
}
