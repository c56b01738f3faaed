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
    let never: KafkaInputConfig = serde_json::from_value(json!({
        "name": "k", "brokers": ["127.0.0.1:9092"], "topics": ["t"], "group_id": "g",
        "options": {"auto.commit.interval.ms": 0}
    }))
    .unwrap();
    let problems = fields(never.validate());
    assert!(
        problems.iter().any(|p| p.starts_with("options.auto.commit.interval.ms: 0 would commit only")),
        "{problems:?}"
    );
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

#[test]
fn set_key_must_be_a_field_path() {
    for (set_key, ok) in [("id", true), ("customer.id", true), ("", false), ("a..b", false), (".id", false)] {
        let output: KafkaOutputConfig = serde_json::from_value(
            json!({"name": "o", "brokers": ["127.0.0.1:9092"], "topic": "out", "set_key": set_key}),
        )
        .unwrap();
        let problems = fields(output.validate());
        assert_eq!(problems.is_empty(), ok, "{set_key:?}: {problems:?}");
        if !ok {
            assert!(problems[0].starts_with("set_key: "), "{problems:?}");
        }
    }
}

#[test]
fn the_message_key_is_the_scripts_else_the_set_key_field() {
    use crate::Outgoing;
    let object = json!({"id": 7, "name": "x", "flag": true, "customer": {"id": "c-1"}, "tags": ["a"]});
    let key = |set_key: Option<&str>, script: Option<&str>| {
        let mut message = Outgoing::new(object.clone(), "Item");
        message.key = script.map(|k| serde_json::Value::String(k.to_string()));
        let config: KafkaOutputConfig = serde_json::from_value(
            json!({"name": "o", "brokers": ["127.0.0.1:9092"], "topic": "out", "set_key": set_key}),
        )
        .unwrap();
        config.message_key(&message).map(|key| key.map(|k| String::from_utf8(k).unwrap())).map_err(|e| e.to_string())
    };
    assert_eq!(key(None, None), Ok(None), "no key by default");
    assert_eq!(key(Some("id"), None), Ok(Some("7".into())));
    assert_eq!(key(Some("name"), None), Ok(Some("x".into())), "a string is its text, unquoted");
    assert_eq!(key(Some("flag"), None), Ok(Some("true".into())));
    assert_eq!(key(Some("customer.id"), None), Ok(Some("c-1".into())));
    assert_eq!(key(Some("id"), Some("from-script")), Ok(Some("from-script".into())), "the script's key wins");
    assert_eq!(key(None, Some("from-script")), Ok(Some("from-script".into())));
    let missing = key(Some("customer.name"), None).unwrap_err();
    assert!(missing.contains("set_key: the object has no field `customer.name`"), "{missing}");
    let list = key(Some("tags"), None).unwrap_err();
    assert!(list.contains("the field `tags` is not a string, number or boolean"), "{list}");
    let through_scalar = key(Some("id.x"), None).unwrap_err();
    assert!(through_scalar.contains("no field `id.x`"), "{through_scalar}");
    let config: KafkaOutputConfig =
        serde_json::from_value(json!({"name": "o", "brokers": ["127.0.0.1:9092"], "topic": "out", "set_key": "id"}))
            .unwrap();
    for (given, want) in [
        (json!(7), Ok(Some("7"))),
        (json!(false), Ok(Some("false"))),
        (json!({"a": 1}), Err("is a map")),
        (json!([1]), Err("is a list")),
    ] {
        let mut message = Outgoing::new(object.clone(), "Item");
        message.key = Some(given.clone());
        let got = config.message_key(&message).map(|k| k.map(|k| String::from_utf8(k).unwrap()));
        match (got, want) {
            (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want, "{given}"),
            (Err(e), Err(want)) => assert!(
                e.to_string().contains(want) && e.to_string().contains("a message key is a string, number or boolean"),
                "{given}: {e}"
            ),
            (got, want) => panic!("{given}: {got:?} vs {want:?}"),
        }
    }
}

/// With no broker, a send handed on by `send_then` is reported failed from the producer's
/// polling thread; the timed-out producer is replaced there, and the output dropped while a
/// report is still due closes its producer when that report comes — neither on its own polling
/// thread (which would join itself).
#[test]
fn send_then_reports_a_failed_delivery_and_the_producer_is_replaced_and_closed_off_its_thread() {
    use crate::registry::{Output, SendError};
    use std::sync::mpsc;
    use std::time::Duration;
    let io = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config: KafkaOutputConfig = serde_json::from_value(json!({
        "name": "o", "brokers": ["127.0.0.1:1"], "topic": "out",
        "options": {"message.timeout.ms": "300", "socket.connection.setup.timeout.ms": "1000"}
    }))
    .unwrap();
    let message = || crate::Outgoing { object: json!({"n": 1}), routing_key: "K".into(), key: None };
    let (tx, rx) = mpsc::channel::<(Result<(), SendError>, Option<String>)>();
    let told = |tx: mpsc::Sender<(Result<(), SendError>, Option<String>)>| -> crate::Sent {
        Box::new(move |result| {
            let _ = tx.send((result, std::thread::current().name().map(str::to_string)));
        })
    };
    let output = std::sync::Arc::new(KafkaOutput::new(config).unwrap());
    for _ in 0..2 {
        output.clone().send_then(message(), io.handle(), told(tx.clone()));
        let (result, thread) = rx.recv_timeout(Duration::from_secs(20)).expect("the failure is reported");
        assert!(
            matches!(&result, Err(SendError::Unavailable(m)) if m.starts_with("producing to out failed")),
            "{result:?}"
        );
        assert_ne!(thread.as_deref(), Some("main"), "reported by the producer's thread, not the caller's");
    }
    // Dropped with a report due: the report's callback holds the last handle.
    output.clone().send_then(message(), io.handle(), told(tx));
    drop(output);
    let (result, _) = rx.recv_timeout(Duration::from_secs(20)).expect("the last failure is reported");
    assert!(result.is_err());
}

/// TDG's examples write librdkafka numbers and booleans bare (`queue.buffering.max.ms: 1`).
#[test]
fn options_take_bare_numbers_and_booleans() {
    let output: KafkaOutputConfig = serde_json::from_value(json!({"name": "o", "brokers": ["127.0.0.1:9092"],
      "topic": "out", "options": {"queue.buffering.max.ms": 1, "enable.idempotence": false, "compression.type": "lz4"}}))
    .unwrap();
    let producer = output.client_config();
    assert_eq!(producer.get("queue.buffering.max.ms"), Some("1"));
    assert_eq!(producer.get("enable.idempotence"), Some("false"));
    assert!(output.validate().is_empty(), "{:?}", fields(output.validate()));
    let refused = serde_json::from_value::<KafkaOutputConfig>(
        json!({"name": "o", "brokers": ["127.0.0.1:9092"], "topic": "out", "options": {"linger.ms": [1]}}),
    );
    assert!(refused.is_err(), "a list is no property value");
    // Not built in: refused at load, not at the first send.
    let zstd: KafkaOutputConfig = serde_json::from_value(json!({"name": "o", "brokers": ["127.0.0.1:9092"],
      "topic": "out", "options": {"compression.type": "zstd"}}))
    .unwrap();
    assert!(fields(zstd.validate()).iter().any(|p| p.contains("zstd")), "{:?}", fields(zstd.validate()));
}
