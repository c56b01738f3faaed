//! Checks across sections: every name a section refers to exists, names are unique. The model
//! (storage types) and the scripts are checked when the engine builds them.

use super::{Config, ConfigError};
use ferrogrid_connectors::InputConfig;
use std::collections::HashSet;

fn pipeline_exists(config: &Config, name: &str) -> bool {
    config.pipelines.contains_key(name) || config.functions.contains_key(name)
}

fn check_pipeline(config: &Config, path: String, name: &str, errors: &mut Vec<ConfigError>) {
    if !pipeline_exists(config, name) {
        errors.push(ConfigError::at(&path, format!("pipeline or function \"{name}\" is not defined")));
    }
}

fn unique<'a>(names: impl Iterator<Item = (String, &'a str)>, what: &str, errors: &mut Vec<ConfigError>) {
    let mut seen = HashSet::new();
    for (path, name) in names {
        if !seen.insert(name) {
            errors.push(ConfigError::at(&path, format!("duplicate {what} \"{name}\"")));
        }
    }
}

/// Every dangling reference and duplicate, with its key path.
pub fn references(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (name, steps) in &config.pipelines {
        for (i, step) in steps.iter().enumerate() {
            if !config.functions.contains_key(step) {
                errors.push(ConfigError::at(
                    &format!("pipelines.{name}[{i}]"),
                    format!("function \"{step}\" is not defined"),
                ));
            }
        }
        if steps.is_empty() {
            errors.push(ConfigError::at(&format!("pipelines.{name}"), "a pipeline needs at least one function"));
        }
    }
    let connector = &config.connector;
    let mut http_inputs = 0;
    for (i, input) in connector.input.iter().enumerate() {
        let path = format!("connector.input[{i}]");
        if let Some(p) = input.pipeline() {
            check_pipeline(config, format!("{path}.pipeline"), p, &mut errors);
        }
        for message in input.validate(&path) {
            errors.push(ConfigError::at("", message));
        }
        if matches!(input, InputConfig::Http(_)) {
            http_inputs += 1;
            if http_inputs > 1 {
                errors.push(ConfigError::at(&path, "only one input of type http can serve POST /http"));
            }
        }
    }
    unique(
        connector.input.iter().enumerate().map(|(i, c)| (format!("connector.input[{i}].name"), c.name())),
        "input name",
        &mut errors,
    );
    unique(
        connector.output.iter().enumerate().map(|(i, c)| (format!("connector.output[{i}].name"), c.name())),
        "output name",
        &mut errors,
    );
    for (i, route) in connector.routing.iter().enumerate() {
        if !connector.output.iter().any(|o| o.name() == route.output) {
            errors.push(ConfigError::at(
                &format!("connector.routing[{i}].output"),
                format!("output \"{}\" is not defined in connector.output", route.output),
            ));
        }
    }
    unique(
        connector.routing.iter().enumerate().map(|(i, r)| (format!("connector.routing[{i}].key"), r.key.as_str())),
        "routing key",
        &mut errors,
    );
    let processor = &config.input_processor;
    for (i, c) in processor.classifiers.iter().enumerate() {
        check_pipeline(config, format!("input_processor.classifiers[{i}].pipeline"), &c.pipeline, &mut errors);
    }
    for (i, r) in processor.routing.iter().enumerate() {
        check_pipeline(config, format!("input_processor.routing[{i}].pipeline"), &r.pipeline, &mut errors);
    }
    unique(
        processor
            .routing
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("input_processor.routing[{i}].key"), r.key.as_str())),
        "routing key",
        &mut errors,
    );
    unique(
        processor
            .storage
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("input_processor.storage[{i}].key"), r.key.as_str())),
        "routing key",
        &mut errors,
    );
    if processor.workers == 0 {
        errors.push(ConfigError::at("input_processor.workers", "must be at least 1"));
    }
    if processor.max_in_flight == 0 {
        errors.push(ConfigError::at("input_processor.max_in_flight", "must be at least 1"));
    }
    if config.sequence_generator.range_width < 1 {
        errors.push(ConfigError::at("sequence_generator.range_width", "must be at least 1"));
    }
    errors
}
