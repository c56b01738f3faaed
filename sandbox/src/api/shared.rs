//! `shared::set/get/remove(namespace, key[, value])`: an in-process key-value store shared by
//! all script engines of one `Sandbox` (not persisted, not replicated). Values are stored as
//! JSON, so what comes back is a copy. The total number of keys is bounded by
//! `sandbox.max_shared_keys`, their size (namespace, key and value as JSON) by
//! `sandbox.max_shared_bytes`; a `set` past either is an error.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rhai::{Dynamic, EvalAltResult, ImmutableString, Module};
use serde_json::Value;

use crate::convert::{dynamic_to_json, json_to_dynamic};
use crate::error::{api_error, tagged_runtime, TAG_SHARED_BYTES, TAG_SHARED_FULL};

#[derive(Default)]
struct State {
    /// Each value with the bytes its entry counts.
    namespaces: HashMap<String, HashMap<String, (Value, usize)>>,
    keys: usize,
    bytes: usize,
}

/// Why a `set` was refused.
#[derive(Debug, PartialEq, Eq)]
enum Full {
    Keys,
    Bytes,
}

/// The store behind the `shared` module.
pub(crate) struct SharedStore {
    max_keys: usize,
    max_bytes: usize,
    state: RwLock<State>,
}

impl SharedStore {
    pub(crate) fn new(max_keys: usize, max_bytes: usize) -> SharedStore {
        SharedStore { max_keys, max_bytes, state: RwLock::new(State::default()) }
    }

    /// Store `value`; refused when the key is new and the store holds its most keys, or when
    /// the store would grow past its most bytes.
    fn set(&self, namespace: &str, key: &str, value: Value) -> Result<(), Full> {
        let size = namespace.len() + key.len() + serde_json::to_vec(&value).map_or(0, |v| v.len());
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        let old = state.namespaces.get(namespace).and_then(|ns| ns.get(key)).map(|(_, size)| *size);
        if old.is_none() && state.keys >= self.max_keys {
            return Err(Full::Keys);
        }
        let bytes = state.bytes - old.unwrap_or(0) + size;
        if bytes > self.max_bytes && size > old.unwrap_or(0) {
            return Err(Full::Bytes);
        }
        state.namespaces.entry(namespace.to_string()).or_default().insert(key.to_string(), (value, size));
        state.bytes = bytes;
        if old.is_none() {
            state.keys += 1;
        }
        Ok(())
    }

    fn get(&self, namespace: &str, key: &str) -> Option<Value> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.namespaces.get(namespace)?.get(key).map(|(value, _)| value.clone())
    }

    fn remove(&self, namespace: &str, key: &str) -> Option<Value> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let ns = state.namespaces.get_mut(namespace)?;
        let (removed, size) = ns.remove(key)?;
        if ns.is_empty() {
            state.namespaces.remove(namespace);
        }
        state.keys -= 1;
        state.bytes -= size;
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
        s.set(&ns, &key, json).map_err(|full| match full {
            Full::Keys => tagged_runtime(
                TAG_SHARED_FULL,
                format!("shared::set: the store is full ({} keys, sandbox.max_shared_keys)", s.max_keys),
            ),
            Full::Bytes => tagged_runtime(
                TAG_SHARED_BYTES,
                format!("shared::set: the store is full ({} bytes, sandbox.max_shared_bytes)", s.max_bytes),
            ),
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
        let store = SharedStore::new(2, 1 << 20);
        store.set("a", "x", json!(1)).unwrap();
        store.set("b", "y", json!(2)).unwrap();
        store.set("a", "x", json!(3)).unwrap();
        assert_eq!(store.set("c", "z", json!(4)), Err(Full::Keys));
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("a", "x"), Some(json!(3)));
        assert_eq!(store.remove("b", "y"), Some(json!(2)));
        store.set("c", "z", json!(4)).unwrap();
        assert_eq!(store.get("c", "z"), Some(json!(4)));
        assert_eq!(store.get("nope", "z"), None);
    }

    #[test]
    fn bounded_by_total_bytes_and_shrinking_is_always_allowed() {
        // "a" + "x" + "\"12345678\"" = 12 bytes an entry.
        let store = SharedStore::new(100, 30);
        store.set("a", "x", json!("12345678")).unwrap();
        store.set("a", "y", json!("12345678")).unwrap();
        assert_eq!(store.set("a", "z", json!("12345678")), Err(Full::Bytes));
        assert_eq!(store.set("a", "x", json!("12345678901234567")), Err(Full::Bytes), "growing an entry past it");
        store.set("a", "x", json!(1)).unwrap();
        store.set("a", "z", json!("1234")).unwrap();
        assert_eq!(store.remove("a", "y"), Some(json!("12345678")));
        store.set("a", "y", json!("12345678")).unwrap();
        assert_eq!(store.len(), 3);
    }
}
