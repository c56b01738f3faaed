//! Tests that run whole scripts: a fake in-memory host, a log capture and helpers.
//!
//! | file | covers |
//! | --- | --- |
//! | hostile.rs | one hostile script per limit, `eval`/file/clock functions unavailable |
//! | language.rs | param in / result out, JSON, errors and lines, libraries, call_fn, print |
//! | api.rs | every script API function |
//! | xml.rs | the `xml` module on SOAP-shaped trees |

mod api;
mod hostile;
mod language;
mod xml;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::{CallContext, DataAccess, Host, HostError, Limits, Sandbox, ScriptError, Sequences};

/// An in-memory repository: objects per type; filters `[[field, "==", value], ...]`;
/// the type `Broken` fails with an external error, `Invalid` with a user-data error.
#[derive(Default)]
pub(crate) struct FakeRepository {
    pub objects: Mutex<Vec<(String, Value)>>,
    pub jobs: Mutex<Vec<(String, Value)>>,
    pub last_options: Mutex<Value>,
}

impl FakeRepository {
    fn check_type(&self, type_name: &str, options: &Value) -> Result<(), HostError> {
        *self.last_options.lock().unwrap() = options.clone();
        match type_name {
            "Broken" => Err(HostError::External("storage unavailable".into())),
            "Invalid" => Err(HostError::UserData("type Invalid is not in the model".into())),
            _ => Ok(()),
        }
    }

    fn matches(obj: &Value, filter: &Value) -> bool {
        filter.as_array().into_iter().flatten().all(|cond| {
            let field = cond[0].as_str().unwrap_or("").trim_start_matches('$');
            cond[1] == "==" && obj[field] == cond[2]
        })
    }
}

impl DataAccess for FakeRepository {
    fn find(&self, t: &str, filter: &Value, options: &Value) -> Result<Value, HostError> {
        self.check_type(t, options)?;
        let objects = self.objects.lock().unwrap();
        let found = objects.iter().filter(|(ty, o)| ty == t && Self::matches(o, filter)).map(|(_, o)| o.clone());
        Ok(Value::Array(found.collect()))
    }

    fn get(&self, t: &str, index: &str, key: &Value, options: &Value) -> Result<Value, HostError> {
        self.check_type(t, options)?;
        let objects = self.objects.lock().unwrap();
        let found = objects.iter().find(|(ty, o)| ty == t && &o[index] == key);
        Ok(found.map(|(_, o)| o.clone()).unwrap_or(Value::Null))
    }

    fn put(&self, t: &str, object: &Value, options: &Value) -> Result<Value, HostError> {
        self.check_type(t, options)?;
        self.objects.lock().unwrap().push((t.to_string(), object.clone()));
        Ok(object.clone())
    }

    fn update(&self, t: &str, filter: &Value, updaters: &Value, options: &Value) -> Result<Value, HostError> {
        self.check_type(t, options)?;
        let mut objects = self.objects.lock().unwrap();
        let mut updated = Vec::new();
        for (ty, o) in objects.iter_mut() {
            if ty == t && Self::matches(o, filter) {
                for upd in updaters.as_array().into_iter().flatten() {
                    let field = upd[0].as_str().unwrap_or("").trim_start_matches('$');
                    o[field] = upd[2].clone();
                }
                updated.push(o.clone());
            }
        }
        Ok(Value::Array(updated))
    }

    fn delete(&self, t: &str, filter: &Value, options: &Value) -> Result<Value, HostError> {
        self.check_type(t, options)?;
        let mut objects = self.objects.lock().unwrap();
        let (gone, kept): (Vec<_>, Vec<_>) = objects.drain(..).partition(|(ty, o)| ty == t && Self::matches(o, filter));
        *objects = kept;
        Ok(Value::Array(gone.into_iter().map(|(_, o)| o).collect()))
    }

    /// Pages of two objects, the cursor being the index of the next one.
    fn scan_page(&self, t: &str, filter: &Value, options: &Value) -> Result<(Vec<Value>, Option<String>), HostError> {
        let start: usize = options["after"].as_str().map_or(0, |a| a.parse().unwrap_or(0));
        let objects = self.objects.lock().unwrap();
        let all: Vec<Value> =
            objects.iter().filter(|(ty, o)| ty == t && Self::matches(o, filter)).map(|(_, o)| o.clone()).collect();
        let page: Vec<Value> = all.iter().skip(start).take(2).cloned().collect();
        let next = (start + 2 < all.len()).then(|| (start + 2).to_string());
        Ok((page, next))
    }

    fn push_job(&self, name: &str, args: &Value) -> Result<(), HostError> {
        self.jobs.lock().unwrap().push((name.to_string(), args.clone()));
        Ok(())
    }
}

/// Counters starting at 1 per name; the name `broken` fails.
#[derive(Default)]
pub(crate) struct FakeSequences(Mutex<HashMap<String, i64>>);

impl Sequences for FakeSequences {
    fn next(&self, name: &str) -> Result<i64, HostError> {
        if name == "broken" {
            return Err(HostError::Internal("sequence space corrupted".into()));
        }
        let mut counters = self.0.lock().unwrap();
        let n = counters.entry(name.to_string()).or_insert(0);
        *n += 1;
        Ok(*n)
    }
}

pub(crate) struct Fixture {
    pub sandbox: Sandbox,
    pub repo: Arc<FakeRepository>,
}

pub(crate) fn fixture_with(limits: Limits, libraries: &[(&str, &str)]) -> Fixture {
    try_fixture(limits, libraries).unwrap()
}

pub(crate) fn try_fixture(limits: Limits, libraries: &[(&str, &str)]) -> Result<Fixture, ScriptError> {
    let repo = Arc::new(FakeRepository::default());
    let host = Host { repository: repo.clone(), sequences: Arc::new(FakeSequences::default()) };
    let libs: Vec<(String, String)> = libraries.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect();
    let sandbox = Sandbox::new(limits, host, &libs)?;
    Ok(Fixture { sandbox, repo })
}

impl Fixture {
    /// Compile and run `source` as the function `f` with `param`.
    pub fn run(&self, source: &str, param: Value) -> Result<Value, ScriptError> {
        let script = self.sandbox.compile("f", source)?;
        self.sandbox.engine().run_json(&script, param, &CallContext::new("req-1"))
    }
}

/// Run `source` with default limits and no libraries.
pub(crate) fn run(source: &str, param: Value) -> Result<Value, ScriptError> {
    fixture_with(Limits::default(), &[]).run(source, param)
}

/// Run `source` with the given limits.
pub(crate) fn run_limited(limits: Limits, source: &str) -> Result<Value, ScriptError> {
    fixture_with(limits, &[]).run(source, json!(null))
}

/// One captured log event.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub level: tracing::Level,
    pub target: String,
    pub fields: BTreeMap<String, String>,
}

/// A minimal subscriber that records every event.
#[derive(Clone, Default)]
pub(crate) struct Capture(pub Arc<Mutex<Vec<Captured>>>);

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Run `f` with a capturing subscriber on this thread; return what it logged.
pub(crate) fn capture_logs(f: impl FnOnce()) -> Vec<Captured> {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), f);
    let events = capture.0.lock().unwrap().clone();
    events
}
