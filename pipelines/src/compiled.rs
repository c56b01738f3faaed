//! Functions and pipelines compiled once, when the configuration is loaded.

use crate::error::PipelineError;
use ferrogrid_sandbox::{from_dynamic, to_dynamic, CallContext, CompiledScript, Sandbox, ScriptEngine};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A pipeline: functions run one after another, each receiving the previous one's result.
#[derive(Clone)]
pub struct Pipeline {
    name: String,
    steps: Arc<[CompiledScript]>,
}

impl Pipeline {
    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run every step on `param`, converting to and from script values once. A value that cannot
    /// be converted is blamed on the step that receives it (the first) or returned it (the last).
    pub fn run(&self, engine: &ScriptEngine, param: Value, ctx: &CallContext) -> Result<Value, PipelineError> {
        let blame = |step: Option<&CompiledScript>| {
            let name = step.map_or(self.name.as_str(), CompiledScript::name).to_string();
            move |mut e: ferrogrid_sandbox::ScriptError| {
                e.function = name;
                e
            }
        };
        let mut value = to_dynamic(&param).map_err(blame(self.steps.first()))?;
        for step in self.steps.iter() {
            value = engine.run(step, value, ctx)?;
        }
        Ok(from_dynamic(&value).map_err(blame(self.steps.last()))?)
    }
}

/// Every function and pipeline of a configuration.
#[derive(Clone, Default)]
pub struct Pipelines {
    functions: HashMap<String, CompiledScript>,
    pipelines: HashMap<String, Pipeline>,
}

impl Pipelines {
    /// Compile `functions` (name -> source) and assemble `pipelines` (name -> function names).
    /// Every problem is returned, each naming its config key.
    pub fn compile(
        sandbox: &Sandbox,
        functions: &[(String, String)],
        pipelines: &[(String, Vec<String>)],
    ) -> Result<Pipelines, Vec<String>> {
        let mut errors = Vec::new();
        let mut compiled = HashMap::new();
        for (name, source) in functions {
            match sandbox.compile(name, source) {
                Ok(script) => {
                    compiled.insert(name.clone(), script);
                }
                Err(e) => errors.push(format!("functions.{name}: {e}")),
            }
        }
        let mut assembled = HashMap::new();
        for (name, steps) in pipelines {
            let mut scripts = Vec::with_capacity(steps.len());
            for (i, step) in steps.iter().enumerate() {
                match compiled.get(step) {
                    Some(script) => scripts.push(script.clone()),
                    None if functions.iter().any(|(f, _)| f == step) => {} // failed to compile, reported above
                    None => errors.push(format!("pipelines.{name}[{i}]: function \"{step}\" is not defined")),
                }
            }
            if scripts.is_empty() && steps.is_empty() {
                errors.push(format!("pipelines.{name}: a pipeline needs at least one function"));
            }
            assembled.insert(name.clone(), Pipeline { name: name.clone(), steps: scripts.into() });
        }
        if errors.is_empty() {
            Ok(Pipelines { functions: compiled, pipelines: assembled })
        } else {
            Err(errors)
        }
    }

    /// The pipeline called `name`; an undefined pipeline name falls back to the function of the
    /// same name (TDG's rule).
    pub fn get(&self, name: &str) -> Option<Pipeline> {
        if let Some(p) = self.pipelines.get(name) {
            return Some(p.clone());
        }
        self.functions.get(name).map(|f| Pipeline { name: name.to_string(), steps: Arc::from(vec![f.clone()]) })
    }

    /// Whether `name` resolves to a pipeline (directly or through the function fallback).
    pub fn contains(&self, name: &str) -> bool {
        self.pipelines.contains_key(name) || self.functions.contains_key(name)
    }

    /// The compiled function called `name`.
    pub fn function(&self, name: &str) -> Option<&CompiledScript> {
        self.functions.get(name)
    }

    /// Run the pipeline `name` (see [`Pipelines::get`]).
    pub fn run(
        &self,
        engine: &ScriptEngine,
        name: &str,
        param: Value,
        ctx: &CallContext,
    ) -> Result<Value, PipelineError> {
        let pipeline = self.get(name).ok_or_else(|| PipelineError::Unknown(name.to_string()))?;
        pipeline.run(engine, param, ctx)
    }
}
