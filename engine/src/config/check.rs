//! Checks across sections: every name a section refers to exists, names are unique. They run on
//! the resolved YAML value, so they are reported together with schema errors (one run of
//! `ferrogrid check` lists every problem). The model (storage types) and the scripts are
//! checked when the engine builds them.

use super::ConfigError;
use ferrogrid_connectors::{ConfigProblem, InputConfig, OutputConfig};
use serde_json::Value;
use std::collections::HashSet;

/// `value.a.b` as an object's keys, or nothing.
fn keys<'a>(value: &'a Value, path: &[&str]) -> Vec<&'a str> {
    let mut v = value;
    for p in path {
        match v.get(p) {
            Some(next) => v = next,
            None => return Vec::new(),
        }
    }
    v.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default()
}

/// `value.a.b` as a list of objects, with their index.
fn items<'a>(value: &'a Value, path: &[&str]) -> Vec<(usize, &'a Value)> {
    let mut v = value;
    for p in path {
        match v.get(p) {
            Some(next) => v = next,
            None => return Vec::new(),
        }
    }
    v.as_array().map(|a| a.iter().enumerate().collect()).unwrap_or_default()
}

fn text<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get(key).and_then(Value::as_str)
}

/// What each connector's own `validate` finds (URLs, addresses, client options), for the
/// connectors that match their schema (the schema check reports the others).
fn connector_problems<T: serde::de::DeserializeOwned>(
    errors: &mut Vec<ConfigError>,
    section: &str,
    items: &[(usize, &Value)],
    validate: fn(&T) -> Vec<ConfigProblem>,
) {
    for (i, item) in items {
        if let Ok(connector) = serde_json::from_value::<T>((*item).clone()) {
            for problem in validate(&connector) {
                errors.push(ConfigError::at(&format!("{section}[{i}].{}", problem.field), problem.message));
            }
        }
    }
}

struct Checker<'a> {
    functions: HashSet<&'a str>,
    pipelines: HashSet<&'a str>,
    errors: Vec<ConfigError>,
}

impl<'a> Checker<'a> {
    fn pipeline(&mut self, path: String, name: Option<&str>) {
        if let Some(name) = name {
            if !self.pipelines.contains(name) && !self.functions.contains(name) {
                self.errors.push(ConfigError::at(&path, format!("pipeline or function \"{name}\" is not defined")));
            }
        }
    }

    fn unique(&mut self, list: &[(usize, &'a Value)], section: &str, key: &str, what: &str) {
        let mut seen = HashSet::new();
        for (i, item) in list {
            if let Some(name) = text(item, key) {
                if !seen.insert(name) {
                    self.errors.push(ConfigError::at(
                        &format!("{section}[{i}].{key}"),
                        format!("duplicate {what} \"{name}\""),
                    ));
                }
            }
        }
    }
}

/// Every dangling reference and duplicate, with its key path.
pub fn references(config: &Value) -> Vec<ConfigError> {
    let mut c = Checker {
        functions: keys(config, &["functions"]).into_iter().collect(),
        pipelines: keys(config, &["pipelines"]).into_iter().collect(),
        errors: Vec::new(),
    };
    if let Some(pipelines) = config.get("pipelines").and_then(Value::as_object) {
        for (name, steps) in pipelines {
            let steps = steps.as_array().map(Vec::as_slice).unwrap_or_default();
            for (i, step) in steps.iter().enumerate() {
                if let Some(step) = step.as_str().filter(|s| !c.functions.contains(s)) {
                    c.errors.push(ConfigError::at(
                        &format!("pipelines.{name}[{i}]"),
                        format!("function \"{step}\" is not defined"),
                    ));
                }
            }
        }
    }
    let inputs = items(config, &["connector", "input"]);
    let (mut http_inputs, mut soap_inputs) = (0, 0);
    for (i, input) in &inputs {
        c.pipeline(format!("connector.input[{i}].pipeline"), text(input, "pipeline"));
        let (count, path) = match text(input, "type") {
            Some("http") => (&mut http_inputs, "/http"),
            Some("soap") => (&mut soap_inputs, "/soap"),
            _ => continue,
        };
        *count += 1;
        if *count > 1 {
            let kind = text(input, "type").unwrap_or_default();
            c.errors.push(ConfigError::at(
                &format!("connector.input[{i}]"),
                format!("only one input of type {kind} can serve POST {path}"),
            ));
        }
        let handlers = items(input, &["handlers"]);
        for (h, handler) in &handlers {
            c.pipeline(format!("connector.input[{i}].handlers[{h}].pipeline"), text(handler, "pipeline"));
        }
        c.unique(&handlers, &format!("connector.input[{i}].handlers"), "function", "SOAP handler function");
    }
    c.unique(&inputs, "connector.input", "name", "input name");
    connector_problems::<InputConfig>(&mut c.errors, "connector.input", &inputs, InputConfig::validate);
    let outputs = items(config, &["connector", "output"]);
    c.unique(&outputs, "connector.output", "name", "output name");
    connector_problems::<OutputConfig>(&mut c.errors, "connector.output", &outputs, OutputConfig::validate);
    let output_names: HashSet<&str> = outputs.iter().filter_map(|(_, o)| text(o, "name")).collect();
    let routes = items(config, &["connector", "routing"]);
    for (i, route) in &routes {
        if let Some(output) = text(route, "output").filter(|o| !output_names.contains(o)) {
            c.errors.push(ConfigError::at(
                &format!("connector.routing[{i}].output"),
                format!("output \"{output}\" is not defined in connector.output"),
            ));
        }
    }
    c.unique(&routes, "connector.routing", "key", "routing key");
    let mail_output = config.get("account_manager").and_then(|a| a.get("output")).and_then(|o| text(o, "name"));
    if let Some(name) = mail_output {
        let smtp = outputs.iter().any(|(_, o)| text(o, "name") == Some(name) && text(o, "type") == Some("smtp"));
        if !smtp {
            c.errors.push(ConfigError::at(
                "account_manager.output.name",
                format!("\"{name}\" is not an output of type smtp in connector.output (one-time passwords are mailed through it)"),
            ));
        }
    }
    for (i, classifier) in items(config, &["input_processor", "classifiers"]) {
        c.pipeline(format!("input_processor.classifiers[{i}].pipeline"), text(classifier, "pipeline"));
    }
    let processor_routes = items(config, &["input_processor", "routing"]);
    for (i, route) in &processor_routes {
        c.pipeline(format!("input_processor.routing[{i}].pipeline"), text(route, "pipeline"));
    }
    c.unique(&processor_routes, "input_processor.routing", "key", "routing key");
    let storage = items(config, &["input_processor", "storage"]);
    c.unique(&storage, "input_processor.storage", "key", "routing key");
    if let Some(tasks) = config.get("tasks").and_then(Value::as_object) {
        for (name, task) in tasks {
            let path = format!("tasks.{name}");
            c.pipeline(format!("{path}.pipeline"), text(task, "pipeline"));
            let schedule = text(task, "schedule");
            match (text(task, "kind"), schedule) {
                (Some("periodical"), None) => {
                    c.errors.push(ConfigError::at(&path, "a periodical task needs a schedule (cron with seconds)"))
                }
                (Some("periodical"), Some(cron)) => {
                    if let Err(e) = super::schedule::parse(cron) {
                        c.errors.push(ConfigError::at(
                            &format!("{path}.schedule"),
                            format!("\"{cron}\" is not a cron expression with seconds (\"0 */5 * * * *\"): {e}"),
                        ));
                    }
                }
                (Some(kind), Some(_)) => c.errors.push(ConfigError::at(
                    &format!("{path}.schedule"),
                    format!("only periodical tasks have a schedule, not {kind}"),
                )),
                _ => {}
            }
            if task.get("pause_sec").is_some_and(|p| !p.is_null()) && text(task, "kind") != Some("continuous") {
                c.errors.push(ConfigError::at(&format!("{path}.pause_sec"), "only continuous tasks pause"));
            }
        }
    }
    if let Some(routes) = config.get("output_processor").and_then(Value::as_object) {
        let output_types: std::collections::HashMap<&str, &str> =
            outputs.iter().filter_map(|(_, o)| Some((text(o, "name")?, text(o, "type")?))).collect();
        for (key, route) in routes {
            let path = format!("output_processor.{key}");
            c.pipeline(format!("{path}.pipeline"), text(route, "pipeline"));
            let mut named = Vec::new();
            if let Some(output) = text(route, "output") {
                named.push((format!("{path}.output"), output));
            } else if text(route, "pipeline").is_some() {
                c.errors.push(ConfigError::at(&format!("{path}.pipeline"), "a pipeline needs its `output`"));
            }
            for (i, handler) in items(route, &["handlers"]) {
                c.pipeline(format!("{path}.handlers[{i}].pipeline"), text(handler, "pipeline"));
                for (j, output) in items(handler, &["outputs"]) {
                    if let Some(output) = output.as_str() {
                        named.push((format!("{path}.handlers[{i}].outputs[{j}]"), output));
                    }
                }
            }
            if named.is_empty() {
                c.errors.push(ConfigError::at(&path, "names no output: give `output` or `handlers`"));
            }
            for (at, output) in named {
                match output_types.get(output) {
                    None => c
                        .errors
                        .push(ConfigError::at(&at, format!("output \"{output}\" is not defined in connector.output"))),
                    Some(&"input_processor") => c.errors.push(ConfigError::at(
                        &at,
                        format!("output \"{output}\" is the input processor, which takes no replicated objects"),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    if let Some(routes) = config.get("output_processor").and_then(Value::as_object) {
        // An output delivers in one mode: in order (sync) or each object on its own (async).
        let mut modes: std::collections::HashMap<&str, (bool, &str)> = std::collections::HashMap::new();
        for (key, route) in routes {
            let sync = route.get("is_async").and_then(Value::as_bool) == Some(false);
            let mut outputs: Vec<&str> = text(route, "output").into_iter().collect();
            for (_, handler) in items(route, &["handlers"]) {
                outputs.extend(items(handler, &["outputs"]).into_iter().filter_map(|(_, o)| o.as_str()));
            }
            for output in outputs {
                match modes.get(output) {
                    Some((other, other_key)) if *other != sync => c.errors.push(ConfigError::at(
                        &format!("output_processor.{key}.is_async"),
                        format!("output \"{output}\" is also used by key \"{other_key}\" in the other mode; an output is either sync or async"),
                    )),
                    _ => {
                        modes.insert(output, (sync, key.as_str()));
                    }
                }
            }
        }
    }
    if let Some(added) = config.get("repair_queue").and_then(|r| r.get("on_object_added")).and_then(Value::as_object) {
        let keys: HashSet<&str> = keys(config, &["output_processor"]).into_iter().collect();
        for (key, then) in added {
            if let Some(other) = text(then, "postprocess_with_routing_key").filter(|k| !keys.contains(k)) {
                c.errors.push(ConfigError::at(
                    &format!("repair_queue.on_object_added.{key}.postprocess_with_routing_key"),
                    format!("\"{other}\" is not a key of output_processor"),
                ));
            }
        }
    }
    if let Some(services) = config.get("services").and_then(Value::as_object) {
        for (name, service) in services {
            c.pipeline(format!("services.{name}.function"), text(service, "function"));
        }
    }
    c.errors
}
