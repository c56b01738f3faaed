//! `shared::set/get/remove(namespace, key[, value])`: an in-process key-value store shared by
//! all script engines of one `Sandbox` (not persisted, not replicated). Values are stored as
//! JSON, so what comes back is a copy. The total number of keys is bounded by
//! `sandbox.max_shared_keys`; a `set` of a new key past that is an error.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rhai::{Dynamic, EvalAltResult, ImmutableString, Module};
use serde_json::Value;

use crate::convert::{dynamic_to_json, json_to_dynamic};
use crate::error::{api_error, tagged_runtime, TAG_SHARED_FULL};

#[derive(Default)]
struct State {
    namespaces: HashMap<String, HashMap<String, Value>>,
    keys: usize,
}

/// The store behind the `shared` module.
pub(crate) struct SharedStore {
    max_keys: usize,
    state: RwLock<State>,
}

impl SharedStore {
    pub(crate) fn new(max_keys: usize) -> SharedStore {
        SharedStore { max_keys, state: RwLock::new(State::default()) }
    }

    /// Store `value`; `Err(())` when the key is new and the store is full.
    fn set(&self, namespace: &str, key: &str, value: Value) -> Result<(), ()> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let full = state.keys >= self.max_keys;
        let state = &mut *state;
        let ns = state.namespaces.entry(namespace.to_string()).or_default();
        if let Some(slot) = ns.get_mut(key) {
            *slot = value;
            return Ok(());
        }
        if full {
            if ns.is_empty() {
                state.namespaces.remove(namespace);
            }
            return Err(());
        }
        ns.insert(key.to_string(), value);
        state.keys += 1;
        Ok(())
    }

    fn get(&self, namespace: &str, key: &str) -> Option<Value> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.namespaces.get(namespace)?.get(key).cloned()
    }

    fn remove(&self, namespace: &str, key: &str) -> Option<Value> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let ns = state.namespaces.get_mut(namespace)?;
        let removed = ns.remove(key)?;
        if ns.is_empty() {
            state.namespaces.remove(namespace);
        }
        state.keys -= 1;
        Some(removed)
    }

    /// Number of keys stored, all namespaces together.
    pub(crate) fn len(&self) -> usize {
        self.state.read().unwrap_or_else(|e| e.into_inner()).keys
    }
}

fn back(value: Option<Value>, max_depth: usize) -> Result<Dynamic, Box<EvalAltResult>> {
    match value {
        None => Ok(Dynamic::UNIT),
        Some(v) => json_to_dynamic(&v, max_depth).map_err(|m| api_error(format!("shared: {m}"))),
    }
}

/// Build the `shared` module over `store`.
pub(crate) fn module(store: Arc<SharedStore>, max_depth: usize) -> Module {
    let mut m = Module::new();
    let s = store.clone();
    m.set_native_fn("set", move |ns: ImmutableString, key: ImmutableString, value: Dynamic| {
        let json = dynamic_to_json(&value, max_depth).map_err(|msg| api_error(format!("shared::set: {msg}")))?;
        s.set(&ns, &key, json).map_err(|()| {
            tagged_runtime(
                TAG_SHARED_FULL,
                format!("shared::set: the store is full ({} keys, sandbox.max_shared_keys)", s.max_keys),
            )
        })
    });
    let s = store.clone();
    m.set_native_fn("get", move |ns: ImmutableString, key: ImmutableString| back(s.get(&ns, &key), max_depth));
    let s = store;
    m.set_native_fn("remove", move |ns: ImmutableString, key: ImmutableString| back(s.remove(&ns, &key), max_depth));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bounded_by_total_keys_and_overwrites_do_not_count() {
        let store = SharedStore::new(2);
        store.set("a", "x", json!(1)).unwrap();
        store.set("b", "y", json!(2)).unwrap();
        store.set("a", "x", json!(3)).unwrap();
        assert_eq!(store.set("c", "z", json!(4)), Err(()));
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("a", "x"), Some(json!(3)));
        assert_eq!(store.remove("b", "y"), Some(json!(2)));
        store.set("c", "z", json!(4)).unwrap();
        assert_eq!(store.get("c", "z"), Some(json!(4)));
        assert_eq!(store.get("nope", "z"), None);
    }
}
