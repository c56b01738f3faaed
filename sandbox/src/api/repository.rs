//! `repository::*`: data access through the host `DataAccess` (find, get, put, update, delete,
//! push_job). Arguments are converted to JSON, results back to Rhai values. Host errors are
//! raised as catchable script errors that keep the host's class when not caught. A call made on
//! a caller's behalf (a GraphQL service) is checked against the caller's data scope first.

use std::sync::Arc;

use rhai::{Dynamic, EvalAltResult, ImmutableString, Module};
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

/// Build the `repository` module over `repo`.
pub(crate) fn module(repo: Arc<dyn DataAccess>, max_depth: usize) -> Module {
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
        check_data("repository::put", DataNeed::Write(t)).map_err(host_error)?;
        let (obj, opts) = (c.arg("object", obj)?, c.options(o)?);
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
