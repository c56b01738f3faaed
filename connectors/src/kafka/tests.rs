//! Configuration checks of the Kafka connectors (the broker tests are black-box, in `tests/`).

use super::*;
use serde_json::json;

fn fields(problems: Vec<crate::ConfigProblem>) -> Vec<String> {
    problems.into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect()
}

#[test]
fn input_problems_name_their_field() {
    let config: KafkaInputConfig = serde_json::from_value(json!({
        "name": "k", "brokers": ["localhost", "kafka://x:1"], "topics": [], "group_id": "g",
        "options": {"group.id": "other", "no.such.property": "1"}
    }))
    .unwrap();
    let problems = fields(config.validate());
    assert!(problems.iter().any(|p| p.starts_with("brokers[0]: \"localhost\" is not host:port")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("brokers[1]:")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("topics:")), "{problems:?}");
    assert!(problems.iter().any(|p| p == "options.group.id: is set by the connector itself"), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("options:") && p.contains("no.such.property")), "{problems:?}");
}

#[test]
fn a_good_input_and_output_have_no_problems_and_defaults_are_safe() {
    let input: KafkaInputConfig = serde_json::from_value(json!({
        "name": "k", "brokers": ["127.0.0.1:9092"], "topics": ["items"], "group_id": "g",
        "options": {"session.timeout.ms": "6000"}
    }))
    .unwrap();
    assert!(input.validate().is_empty(), "{:?}", input.validate());
    assert_eq!(input.workers_count, 10);
    let consumer = input.client_config();
    assert_eq!(consumer.get("enable.auto.offset.store"), Some("false"));
    assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));

    let output: KafkaOutputConfig =
        serde_json::from_value(json!({"name": "o", "brokers": ["127.0.0.1:9092"], "topic": "out"})).unwrap();
    assert!(output.validate().is_empty());
    assert!(output.is_async, "waits for the delivery report by default");
    let producer = output.client_config();
    assert_eq!(producer.get("enable.idempotence"), Some("true"));
    assert_eq!(producer.get("acks"), Some("all"));
}
