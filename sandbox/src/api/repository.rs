//! `repository::*` and `sequence::next`: the host's storage, with JSON conversion.

use super::{bad_argument, host_error, ApiResult};
use crate::convert::{from_dynamic, to_dynamic};
use crate::host::Host;
use rhai::{Dynamic, Module};
use serde_json::Value;

fn json(value: &Dynamic) -> ApiResult<Value> {
    from_dynamic(value).map_err(|e| bad_argument(e.to_string()))
}

fn script(value: &Value) -> ApiResult<Dynamic> {
    to_dynamic(value).map_err(|e| bad_argument(e.to_string()))
}

/// `repository::find/get/put/update/delete/push_job`.
pub(crate) fn module(host: &Host) -> Module {
    let mut m = Module::new();
    let none = Dynamic::UNIT;

    let r = host.repository.clone();
    m.set_native_fn("find", move |t: &str, f: Dynamic, o: Dynamic| {
        script(&r.find(t, &json(&f)?, &json(&o)?).map_err(host_error)?)
    });
    let r = host.repository.clone();
    let n = none.clone();
    m.set_native_fn("find", move |t: &str, f: Dynamic| script(&r.find(t, &json(&f)?, &json(&n)?).map_err(host_error)?));

    let r = host.repository.clone();
    m.set_native_fn("get", move |t: &str, i: &str, k: Dynamic, o: Dynamic| {
        script(&r.get(t, i, &json(&k)?, &json(&o)?).map_err(host_error)?)
    });
    let r = host.repository.clone();
    m.set_native_fn("get", move |t: &str, i: &str, k: Dynamic| {
        script(&r.get(t, i, &json(&k)?, &Value::Null).map_err(host_error)?)
    });

    let r = host.repository.clone();
    m.set_native_fn("put", move |t: &str, obj: Dynamic, o: Dynamic| {
        script(&r.put(t, &json(&obj)?, &json(&o)?).map_err(host_error)?)
    });
    let r = host.repository.clone();
    m.set_native_fn("put", move |t: &str, obj: Dynamic| {
        script(&r.put(t, &json(&obj)?, &Value::Null).map_err(host_error)?)
    });

    let r = host.repository.clone();
    m.set_native_fn("update", move |t: &str, f: Dynamic, u: Dynamic, o: Dynamic| {
        script(&r.update(t, &json(&f)?, &json(&u)?, &json(&o)?).map_err(host_error)?)
    });
    let r = host.repository.clone();
    m.set_native_fn("update", move |t: &str, f: Dynamic, u: Dynamic| {
        script(&r.update(t, &json(&f)?, &json(&u)?, &Value::Null).map_err(host_error)?)
    });

    let r = host.repository.clone();
    m.set_native_fn("delete", move |t: &str, f: Dynamic, o: Dynamic| {
        script(&r.delete(t, &json(&f)?, &json(&o)?).map_err(host_error)?)
    });
    let r = host.repository.clone();
    m.set_native_fn("delete", move |t: &str, f: Dynamic| {
        script(&r.delete(t, &json(&f)?, &Value::Null).map_err(host_error)?)
    });

    let r = host.repository.clone();
    m.set_native_fn("push_job", move |name: &str, args: Dynamic| -> ApiResult<()> {
        r.push_job(name, &json(&args)?).map_err(host_error)
    });
    m
}

/// `sequence::next(name)`.
pub(crate) fn sequence_module(host: &Host) -> Module {
    let mut m = Module::new();
    let s = host.sequences.clone();
    m.set_native_fn("next", move |name: &str| s.next(name).map_err(host_error));
    m
}
