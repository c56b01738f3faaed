//! `repository::*`: data access through the host `DataAccess` (find, get, put, update, delete,
//! push_job). Arguments are converted to JSON, results back to Rhai values. Host errors are
//! raised as catchable script errors that keep the host's class when not caught. A call made on
//! a caller's behalf (a GraphQL service) is checked against the caller's data scope first.

use std::sync::Arc;

use rhai::{Dynamic, EvalAltResult, FnPtr, ImmutableString, Map, Module, NativeCallContext, Scope};
use serde_json::Value;

use crate::convert::{dynamic_to_json, json_to_dynamic};
use crate::error::{api_error, host_error, HostError};
use crate::frame::check_data;
use crate::host::{DataAccess, DataNeed};

type Res = Result<Dynamic, Box<EvalAltResult>>;

/// Converts arguments and results for one repository function.
#[derive(Clone, Copy)]
struct Conv {
    function: &'static str,
    max_depth: usize,
}

impl Conv {
    fn arg(&self, what: &str, v: &Dynamic) -> Result<Value, Box<EvalAltResult>> {
        dynamic_to_json(v, self.max_depth).map_err(|m| api_error(format!("repository::{}: {what}: {m}", self.function)))
    }

    fn options(&self, v: Option<&Dynamic>) -> Result<Value, Box<EvalAltResult>> {
        match v {
            Some(v) if !v.is_unit() => self.arg("options", v),
            _ => Ok(Value::Object(serde_json::Map::new())),
        }
    }

    fn result(&self, r: Result<Value, HostError>) -> Res {
        let value = r.map_err(host_error)?;
        json_to_dynamic(&value, self.max_depth)
            .map_err(|m| api_error(format!("repository::{}: result: {m}", self.function)))
    }
}

/// The budgets `map_reduce` keeps itself (see there).
#[derive(Clone, Copy)]
struct Budget {
    max_operations: u64,
    max_array_size: usize,
}

thread_local! {
    static MAP_REDUCE_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    static CALL_ON_STORAGE_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Calls of `call_on_storage` inside one another (a function calling it again) at most.
const MAX_CALL_ON_STORAGE_DEPTH: u32 = 8;

/// A `call_on_storage` under way on this thread.
struct CallDepth;

impl CallDepth {
    fn enter() -> Result<CallDepth, Box<EvalAltResult>> {
        CALL_ON_STORAGE_DEPTH.with(|d| {
            if d.get() >= MAX_CALL_ON_STORAGE_DEPTH {
                return Err(api_error(format!(
                    "repository::call_on_storage: calls nested deeper than {MAX_CALL_ON_STORAGE_DEPTH}"
                )));
            }
            d.set(d.get() + 1);
            Ok(CallDepth)
        })
    }
}

impl Drop for CallDepth {
    fn drop(&mut self) {
        CALL_ON_STORAGE_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// `repository::call_on_storage(type, index, value, func_name, func_args[, options])` (TDG
/// 1.3.5.6): TDG runs the function on the storage that holds `value`'s key; one node holds every
/// key, so the type, index and key are checked (as `get` checks them, with the caller's right
/// to read the type) and the function of the configuration's `functions` runs here, in this
/// script's call, with `param` = `func_args`; its result is the answer. TDG's `options`
/// (`timeout`, `mode`, `prefer_replica`, `balance`) are accepted: the script's own deadline
/// bounds the call.
#[allow(clippy::too_many_arguments)]
fn call_on_storage(
    ctx: &NativeCallContext,
    r: &dyn DataAccess,
    compiled: &crate::sandbox::Compiled,
    max_depth: usize,
    (t, index, key): (&str, &str, &Dynamic),
    name: &str,
    args: Dynamic,
    options: Option<&Dynamic>,
) -> Res {
    let c = Conv { function: "call_on_storage", max_depth };
    check_data("repository::call_on_storage", DataNeed::Read(t)).map_err(host_error)?;
    match c.options(options)? {
        Value::Object(map) => {
            let known = |k: &String| matches!(k.as_str(), "timeout" | "mode" | "prefer_replica" | "balance");
            if let Some(bad) = map.keys().find(|k| !known(k)) {
                return Err(api_error(format!(
                    "repository::call_on_storage: unknown option \"{bad}\" (timeout, mode, prefer_replica, balance)"
                )));
            }
        }
        Value::Null => {}
        _ => return Err(api_error("repository::call_on_storage: options must be a map (or ())")),
    }
    // The key must name an object's place as `get` reads it; whether one is there does not matter.
    r.get(t, index, &c.arg("value", key)?, &Value::Object(Default::default())).map_err(host_error)?;
    let found = compiled.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned();
    let Some(ast) = found else {
        return Err(api_error(format!(
            "repository::call_on_storage: there is no function \"{name}\" in the configuration's functions"
        )));
    };
    let _depth = CallDepth::enter()?;
    let mut scope = Scope::new();
    scope.push("param", args);
    // Errors pass as they are (a timeout, a cancel, a host error keep their kind).
    crate::frame::nested(|| ctx.engine().eval_ast_with_scope::<Dynamic>(&mut scope, &ast))
}

/// A `map_reduce` under way on this thread; one inside another is refused.
struct Nesting;

impl Nesting {
    fn enter() -> Result<Nesting, Box<EvalAltResult>> {
        MAP_REDUCE_DEPTH.with(|d| {
            if d.get() > 0 {
                return Err(api_error("repository::map_reduce cannot run inside a step of another map_reduce"));
            }
            d.set(d.get() + 1);
            Ok(Nesting)
        })
    }
}

impl Drop for Nesting {
    fn drop(&mut self) {
        MAP_REDUCE_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// A function of `map_reduce`: a Rhai function pointer or closure, or the name of a function
/// of the configuration (run with `param` = a map of its arguments by name).
enum Step {
    Closure(FnPtr),
    Named(Arc<rhai::AST>),
}

impl Step {
    fn of(what: &str, v: Dynamic, compiled: &crate::sandbox::Compiled) -> Result<Option<Step>, Box<EvalAltResult>> {
        if v.is_unit() {
            return Ok(None);
        }
        if v.is_fnptr() {
            return Ok(v.try_cast::<FnPtr>().map(Step::Closure));
        }
        if let Some(name) = v.clone().try_cast::<ImmutableString>() {
            let found = compiled.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name.as_str()).cloned();
            return match found {
                Some(ast) => Ok(Some(Step::Named(ast))),
                None => Err(api_error(format!(
                    "repository::map_reduce: {what}: there is no function \"{name}\" in the configuration's functions"
                ))),
            };
        }
        Err(api_error(format!(
            "repository::map_reduce: {what}: a closure (|x| ...), Fn(\"name\"), a function name or (), not {}",
            v.type_name()
        )))
    }

    /// Call with the arguments by name (a closure gets them in this order).
    fn call(&self, ctx: &NativeCallContext, args: Vec<(&str, Dynamic)>) -> Res {
        match self {
            Step::Closure(f) => {
                let values: Vec<Dynamic> = args.into_iter().map(|(_, v)| v).collect();
                f.call_raw(ctx, None, values)
            }
            Step::Named(ast) => {
                let mut param = Map::new();
                for (k, v) in args {
                    param.insert(k.into(), v);
                }
                let mut scope = Scope::new();
                scope.push("param", param);
                // Errors pass as they are: a timeout, a cancel or a host error keeps its kind (the
                // function's name is the AST's source, in the error's position).
                crate::frame::nested(|| ctx.engine().eval_ast_with_scope::<Dynamic>(&mut scope, ast))
            }
        }
    }
}

/// `repository::map_reduce(type, filter, version, map_fn, combine_fn, reduce_fn[, opts])`
/// (TDG 1.4) over every matching object, page by page: `map_fn(object, map_args)` (a `()`
/// result is skipped), `combine_fn(state, value, combine_args)` from `combine_initial_state`
/// (default `#{}`; without a combine_fn the state is the array of the map results), then
/// `reduce_fn(state, value, reduce_args)` once, with `reduce_initial_state` (default `#{}`) and
/// the combined state; its result (without a reduce_fn: the combined state) is the answer.
#[allow(clippy::too_many_arguments)]
fn map_reduce(
    ctx: &NativeCallContext,
    repo: &dyn DataAccess,
    compiled: &crate::sandbox::Compiled,
    (max_depth, budget): (usize, Budget),
    t: &str,
    filter: &Dynamic,
    version: &Dynamic,
    steps: [Dynamic; 3],
    opts: Option<&Dynamic>,
) -> Res {
    let c = Conv { function: "map_reduce", max_depth };
    // A step runs on a fresh evaluation state (a named function) or a copy of the caller's (a
    // closure): Rhai's call depth and operation count do not carry over, so nesting is refused
    // here and the budgets are kept by this loop.
    let _nested = Nesting::enter()?;
    check_data("repository::map_reduce", DataNeed::Read(t)).map_err(host_error)?;
    let filter = c.arg("filter", filter)?;
    let version = if version.is_unit() {
        Value::Null
    } else {
        Value::from(version.as_int().map_err(|_| api_error("repository::map_reduce: version: an integer or ()"))?)
    };
    let [map_fn, combine_fn, reduce_fn] = steps;
    let map_fn =
        Step::of("map_fn", map_fn, compiled)?.ok_or_else(|| api_error("repository::map_reduce: map_fn is needed"))?;
    let combine_fn = Step::of("combine_fn", combine_fn, compiled)?;
    let reduce_fn = Step::of("reduce_fn", reduce_fn, compiled)?;
    let opts: Map = match opts {
        Some(o) if !o.is_unit() => o
            .clone()
            .try_cast::<Map>()
            .ok_or_else(|| api_error("repository::map_reduce: opts: a map (map_args, combine_args, ...)"))?,
        _ => Map::new(),
    };
    // TDG's routing options (`mode`, `prefer_replica`, `balance`) are accepted: one node.
    let known = [
        "map_args",
        "combine_args",
        "combine_initial_state",
        "reduce_args",
        "reduce_initial_state",
        "mode",
        "prefer_replica",
        "balance",
    ];
    if let Some(unknown) = opts.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(api_error(format!(
            "repository::map_reduce: opts: unknown option \"{unknown}\" (known: {})",
            known.join(", ")
        )));
    }
    let opt = |name: &str, default: Dynamic| opts.get(name).cloned().unwrap_or(default);
    let (map_args, combine_args, reduce_args) =
        (opt("map_args", Dynamic::UNIT), opt("combine_args", Dynamic::UNIT), opt("reduce_args", Dynamic::UNIT));
    let mut state = match &combine_fn {
        Some(_) => opt("combine_initial_state", Map::new().into()),
        None => rhai::Array::new().into(),
    };
    let mut after: Option<String> = None;
    let mut operations: u64 = 0;
    let mut step = || -> Result<(), Box<EvalAltResult>> {
        // Each object costs at least one operation; the deadline and a cancel are looked at
        // before each.
        operations += 1;
        if operations > budget.max_operations {
            return Err(EvalAltResult::ErrorTooManyOperations(rhai::Position::NONE).into());
        }
        match crate::frame::check_stop() {
            Some(token) => Err(EvalAltResult::ErrorTerminated(token, rhai::Position::NONE).into()),
            None => Ok(()),
        }
    };
    loop {
        step()?;
        let mut options = serde_json::Map::new();
        options.insert("version".into(), version.clone());
        if let Some(cursor) = &after {
            options.insert("after".into(), Value::String(cursor.clone()));
        }
        let (objects, next) = repo.scan_page(t, &filter, &Value::Object(options)).map_err(host_error)?;
        for object in objects {
            step()?;
            let object = json_to_dynamic(&object, max_depth)
                .map_err(|m| api_error(format!("repository::map_reduce: an object: {m}")))?;
            let value = map_fn.call(ctx, vec![("object", object), ("args", map_args.clone())])?;
            if value.is_unit() {
                continue;
            }
            state = match &combine_fn {
                Some(f) => f.call(ctx, vec![("state", state), ("value", value), ("args", combine_args.clone())])?,
                None => {
                    let mut list = state.try_cast::<rhai::Array>().unwrap_or_default();
                    if list.len() >= budget.max_array_size {
                        return Err(
                            EvalAltResult::ErrorDataTooLarge("Size of array".into(), rhai::Position::NONE).into()
                        );
                    }
                    list.push(value);
                    list.into()
                }
            };
        }
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    match &reduce_fn {
        Some(f) => f.call(
            ctx,
            vec![("state", opt("reduce_initial_state", Map::new().into())), ("value", state), ("args", reduce_args)],
        ),
        None => Ok(state),
    }
}

/// Build the `repository` module over `repo`.
pub(crate) fn module(repo: Arc<dyn DataAccess>, limits: &crate::Limits, compiled: crate::sandbox::Compiled) -> Module {
    let max_depth = limits.max_value_depth;
    let budget = Budget { max_operations: limits.max_operations, max_array_size: limits.max_array_size };
    let mut m = Module::new();
    let conv = move |function| Conv { function, max_depth };

    let find = move |r: &dyn DataAccess, t: &str, filter: &Dynamic, opts: Option<&Dynamic>| {
        let c = conv("find");
        check_data("repository::find", DataNeed::Read(t)).map_err(host_error)?;
        let (filter, opts) = (c.arg("filter", filter)?, c.options(opts)?);
        c.result(r.find(t, &filter, &opts))
    };
    let r = repo.clone();
    m.set_native_fn("find", move |t: ImmutableString, f: Dynamic| find(&*r, &t, &f, None));
    let r = repo.clone();
    m.set_native_fn("find", move |t: ImmutableString, f: Dynamic, o: Dynamic| find(&*r, &t, &f, Some(&o)));

    let get = move |r: &dyn DataAccess, t: &str, index: &str, key: &Dynamic, o: Option<&Dynamic>| {
        let c = conv("get");
        check_data("repository::get", DataNeed::Read(t)).map_err(host_error)?;
        let (key, opts) = (c.arg("key", key)?, c.options(o)?);
        c.result(r.get(t, index, &key, &opts))
    };
    let r = repo.clone();
    m.set_native_fn("get", move |t: ImmutableString, i: ImmutableString, k: Dynamic| get(&*r, &t, &i, &k, None));
    let r = repo.clone();
    m.set_native_fn("get", move |t: ImmutableString, i: ImmutableString, k: Dynamic, o: Dynamic| {
        get(&*r, &t, &i, &k, Some(&o))
    });

    let put = move |r: &dyn DataAccess, t: &str, obj: &Dynamic, o: Option<&Dynamic>| {
        let c = conv("put");
        let (obj, opts) = (c.arg("object", obj)?, c.options(o)?);
        // `if_not_exists` answers the object already stored: a read as well.
        let reads = opts.get("if_not_exists").and_then(serde_json::Value::as_bool) == Some(true);
        let need = if reads { DataNeed::ReadWrite(t) } else { DataNeed::Write(t) };
        check_data("repository::put", need).map_err(host_error)?;
        c.result(r.put(t, &obj, &opts))
    };
    let r = repo.clone();
    m.set_native_fn("put", move |t: ImmutableString, obj: Dynamic| put(&*r, &t, &obj, None));
    let r = repo.clone();
    m.set_native_fn("put", move |t: ImmutableString, obj: Dynamic, o: Dynamic| put(&*r, &t, &obj, Some(&o)));

    let update = move |r: &dyn DataAccess, t: &str, filter: &Dynamic, updaters: &Dynamic, o: Option<&Dynamic>| {
        let c = conv("update");
        check_data("repository::update", DataNeed::ReadWrite(t)).map_err(host_error)?;
        let filter = c.arg("filter", filter)?;
        let (updaters, opts) = (c.arg("updaters", updaters)?, c.options(o)?);
        c.result(r.update(t, &filter, &updaters, &opts))
    };
    let r = repo.clone();
    m.set_native_fn("update", move |t: ImmutableString, f: Dynamic, u: Dynamic| update(&*r, &t, &f, &u, None));
    let r = repo.clone();
    m.set_native_fn("update", move |t: ImmutableString, f: Dynamic, u: Dynamic, o: Dynamic| {
        update(&*r, &t, &f, &u, Some(&o))
    });

    let delete = move |r: &dyn DataAccess, t: &str, filter: &Dynamic, o: Option<&Dynamic>| {
        let c = conv("delete");
        check_data("repository::delete", DataNeed::ReadWrite(t)).map_err(host_error)?;
        let (filter, opts) = (c.arg("filter", filter)?, c.options(o)?);
        c.result(r.delete(t, &filter, &opts))
    };
    let r = repo.clone();
    m.set_native_fn("delete", move |t: ImmutableString, f: Dynamic| delete(&*r, &t, &f, None));
    let r = repo.clone();
    m.set_native_fn("delete", move |t: ImmutableString, f: Dynamic, o: Dynamic| delete(&*r, &t, &f, Some(&o)));

    let (r, fns) = (repo.clone(), compiled.clone());
    m.set_native_fn(
        "map_reduce",
        move |ctx: NativeCallContext,
              t: ImmutableString,
              f: Dynamic,
              v: Dynamic,
              a: Dynamic,
              b: Dynamic,
              c: Dynamic| { map_reduce(&ctx, &*r, &fns, (max_depth, budget), &t, &f, &v, [a, b, c], None) },
    );
    let (r, fns) = (repo.clone(), compiled.clone());
    m.set_native_fn(
        "map_reduce",
        move |ctx: NativeCallContext,
              t: ImmutableString,
              f: Dynamic,
              v: Dynamic,
              a: Dynamic,
              b: Dynamic,
              c: Dynamic,
              o: Dynamic| { map_reduce(&ctx, &*r, &fns, (max_depth, budget), &t, &f, &v, [a, b, c], Some(&o)) },
    );

    let (r, fns) = (repo.clone(), compiled.clone());
    m.set_native_fn(
        "call_on_storage",
        move |ctx: NativeCallContext,
              t: ImmutableString,
              i: ImmutableString,
              k: Dynamic,
              name: ImmutableString,
              args: Dynamic| { call_on_storage(&ctx, &*r, &fns, max_depth, (&t, &i, &k), &name, args, None) },
    );
    let (r, fns) = (repo.clone(), compiled);
    m.set_native_fn(
        "call_on_storage",
        move |ctx: NativeCallContext,
              t: ImmutableString,
              i: ImmutableString,
              k: Dynamic,
              name: ImmutableString,
              args: Dynamic,
              o: Dynamic| { call_on_storage(&ctx, &*r, &fns, max_depth, (&t, &i, &k), &name, args, Some(&o)) },
    );

    let r = repo;
    m.set_native_fn("push_job", move |name: ImmutableString, args: Dynamic| {
        check_data("repository::push_job", DataNeed::Jobs).map_err(host_error)?;
        let args = conv("push_job").arg("args", &args)?;
        // Inside an object's processing the job waits for the object's commit.
        match crate::frame::sink_job(name.to_string(), args) {
            Some((name, args)) => r.push_job(&name, &args).map_err(host_error),
            None => Ok(()),
        }
    });
    m
}
