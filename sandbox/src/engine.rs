//! The one hardened engine constructor, compiled scripts and their execution.

use crate::api;
use crate::convert::{from_dynamic, to_dynamic};
use crate::error::ScriptError;
use crate::host::Host;
use crate::limits::Limits;
use rhai::module_resolvers::StaticModuleResolver;
use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine, Module, Scope, AST};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Who is running and until when; read by the progress callback and the log functions.
#[derive(Default)]
pub(crate) struct CallInfo {
    pub(crate) function: String,
    pub(crate) request_id: String,
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
}

pub(crate) type CallState = Arc<Mutex<CallInfo>>;

/// Read the current call's function and request id (for log lines).
pub(crate) fn current(state: &CallState) -> (String, String) {
    let info = state.lock().unwrap_or_else(PoisonError::into_inner);
    (info.function.clone(), info.request_id.clone())
}

/// Context of one call.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The object's id, carried by every log line of the call.
    pub request_id: String,
    /// Set to true to stop the script at its next check.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// A compiled function file.
#[derive(Clone)]
pub struct CompiledScript {
    name: Arc<str>,
    ast: Arc<AST>,
}

impl CompiledScript {
    /// The function's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Operations between two checks of the clock and the cancel flag.
const CHECK_EVERY: u64 = 1024;

/// Shared sandbox state: limits, host services, compiled libraries.
pub struct Sandbox {
    limits: Limits,
    host: Host,
    shared: Arc<api::SharedStore>,
    libraries: Vec<(String, Module)>,
    compiler: Engine,
}

impl Sandbox {
    /// Build the sandbox and compile `libraries` (import name, source) into modules.
    pub fn new(limits: Limits, host: Host, libraries: &[(String, String)]) -> Result<Sandbox, ScriptError> {
        let mut sandbox = Sandbox {
            limits,
            host,
            shared: Arc::new(api::SharedStore::default()),
            libraries: Vec::new(),
            compiler: Engine::new_raw(),
        };
        sandbox.compiler = sandbox.build(Arc::default());
        for (name, source) in libraries {
            let ast = sandbox.compiler.compile(source).map_err(|e| ScriptError::parse(name, &e))?;
            let module = Module::eval_ast_as_new(Scope::new(), &ast, &sandbox.compiler)
                .map_err(|e| ScriptError::eval(name, &e))?;
            sandbox.libraries.push((name.clone(), module));
        }
        sandbox.compiler = sandbox.build(Arc::default());
        Ok(sandbox)
    }

    /// Compile a function file once; errors name the function and the line.
    pub fn compile(&self, function_name: &str, source: &str) -> Result<CompiledScript, ScriptError> {
        let ast = self.compiler.compile(source).map_err(|e| ScriptError::parse(function_name, &e))?;
        Ok(CompiledScript { name: function_name.into(), ast: Arc::new(ast) })
    }

    /// An engine for one worker thread.
    pub fn engine(&self) -> ScriptEngine {
        let state: CallState = Arc::default();
        ScriptEngine {
            engine: self.build(state.clone()),
            state,
            timeout: Duration::from_millis(self.limits.timeout_ms),
        }
    }

    /// The one hardened constructor: only our packages and functions, every limit set.
    fn build(&self, state: CallState) -> Engine {
        let limits = &self.limits;
        let mut engine = Engine::new_raw();
        engine.register_global_module(StandardPackage::new().as_shared_module());
        engine.disable_symbol("eval");
        // `sleep` would block a worker past every limit: replace it with an error.
        engine.register_fn("sleep", |_: rhai::INT| -> Result<(), Box<rhai::EvalAltResult>> {
            Err("sleep is not available in Ferrogrid scripts".into())
        });
        engine.register_fn("sleep", |_: rhai::FLOAT| -> Result<(), Box<rhai::EvalAltResult>> {
            Err("sleep is not available in Ferrogrid scripts".into())
        });
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_modules(limits.max_modules);
        let progress = state.clone();
        engine.on_progress(move |ops| {
            if ops % CHECK_EVERY != 0 {
                return None;
            }
            let info = progress.lock().unwrap_or_else(PoisonError::into_inner);
            if info.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Some(Dynamic::from("cancelled"));
            }
            if info.deadline.is_some_and(|d| Instant::now() >= d) {
                return Some(Dynamic::from("timeout"));
            }
            None
        });
        let printer = state.clone();
        engine.on_print(move |text| {
            let (function, request_id) = current(&printer);
            tracing::info!(target: "ferrogrid::script", function, request_id, "{text}");
        });
        let debugger = state.clone();
        engine.on_debug(move |text, _, pos| {
            let (function, request_id) = current(&debugger);
            tracing::debug!(target: "ferrogrid::script", function, request_id, line = pos.line(), "{text}");
        });
        api::register(&mut engine, &self.host, &self.shared, &state);
        let mut resolver = StaticModuleResolver::new();
        for (name, module) in &self.libraries {
            resolver.insert(name.as_str(), module.clone());
        }
        engine.set_module_resolver(resolver);
        engine
    }
}

/// A script engine owned by one worker thread.
pub struct ScriptEngine {
    engine: Engine,
    state: CallState,
    timeout: Duration,
}

impl ScriptEngine {
    fn begin(&self, function: &str, ctx: &CallContext) {
        let mut info = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        info.function = function.to_string();
        info.request_id = ctx.request_id.clone();
        info.deadline = Some(Instant::now() + self.timeout);
        info.cancel = ctx.cancel.clone();
    }

    fn end(&self) {
        let mut info = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        info.deadline = None;
        info.cancel = None;
    }

    /// Run a function file with `param`; its last expression is the result.
    pub fn run(&self, script: &CompiledScript, param: Dynamic, ctx: &CallContext) -> Result<Dynamic, ScriptError> {
        self.begin(script.name(), ctx);
        let mut scope = Scope::new();
        scope.push("param", param);
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast);
        self.end();
        result.map_err(|e| ScriptError::eval(script.name(), &e))
    }

    /// [`ScriptEngine::run`] with JSON in and out.
    pub fn run_json(&self, script: &CompiledScript, param: Value, ctx: &CallContext) -> Result<Value, ScriptError> {
        let result = self.run(script, to_dynamic(&param)?, ctx)?;
        from_dynamic(&result).map_err(|e| ScriptError::new(script.name(), None, e.kind().clone()))
    }

    /// Call the function `fn_name` defined in a script file.
    pub fn call_fn(
        &self,
        script: &CompiledScript,
        fn_name: &str,
        args: Vec<Dynamic>,
        ctx: &CallContext,
    ) -> Result<Dynamic, ScriptError> {
        self.begin(script.name(), ctx);
        let result = self.engine.call_fn::<Dynamic>(&mut Scope::new(), &script.ast, fn_name, args);
        self.end();
        result.map_err(|e| ScriptError::eval(script.name(), &e))
    }
}
