//! `shared_storage::set/get/remove(namespace, key[, value])`: a bounded key-value store shared by every
//! script engine of one sandbox (in memory, for caches and counters between calls).

use super::{bad_argument, ApiResult};
use crate::convert::{from_dynamic, to_dynamic};
use rhai::{Dynamic, Module};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Most keys held over all namespaces.
pub(crate) const MAX_KEYS: usize = 100_000;

/// The store.
#[derive(Default)]
pub(crate) struct SharedStore {
    entries: RwLock<HashMap<(String, String), Value>>,
}

impl SharedStore {
    fn set(&self, namespace: &str, key: &str, value: Value) -> ApiResult<()> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let k = (namespace.to_string(), key.to_string());
        if !entries.contains_key(&k) && entries.len() >= MAX_KEYS {
            return Err(bad_argument(format!("shared_storage::set: the shared store is full ({MAX_KEYS} keys)")));
        }
        entries.insert(k, value);
        Ok(())
    }

    fn get(&self, namespace: &str, key: &str) -> Option<Value> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(&(namespace.to_string(), key.to_string())).cloned()
    }

    fn remove(&self, namespace: &str, key: &str) -> Option<Value> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&(namespace.to_string(), key.to_string()))
    }
}

/// The `shared_storage` module.
pub(crate) fn module(store: &Arc<SharedStore>) -> Module {
    let mut m = Module::new();
    let s = store.clone();
    m.set_native_fn("set", move |ns: &str, key: &str, value: Dynamic| {
        s.set(ns, key, from_dynamic(&value).map_err(|e| bad_argument(e.to_string()))?)
    });
    let s = store.clone();
    m.set_native_fn("get", move |ns: &str, key: &str| -> ApiResult<Dynamic> {
        match s.get(ns, key) {
            Some(v) => to_dynamic(&v).map_err(|e| bad_argument(e.to_string())),
            None => Ok(Dynamic::UNIT),
        }
    });
    let s = store.clone();
    m.set_native_fn("remove", move |ns: &str, key: &str| -> ApiResult<Dynamic> {
        match s.remove(ns, key) {
            Some(v) => to_dynamic(&v).map_err(|e| bad_argument(e.to_string())),
            None => Ok(Dynamic::UNIT),
        }
    });
    m
}
