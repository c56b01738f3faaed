//! Configuration of the Kafka input and output.

use crate::registry::{ConfigProblem, Outgoing, SendError};
use rdkafka::ClientConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

fn default_workers_count() -> usize {
    10
}

fn default_max_depth() -> usize {
    128
}

fn default_true() -> bool {
    true
}

/// How often librdkafka reports its statistics (the Kafka metrics), unless `options` say.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// librdkafka properties the connector sets itself.
const OWNED_CONSUMER_OPTIONS: [&str; 4] =
    ["bootstrap.servers", "group.id", "enable.auto.offset.store", "enable.auto.commit"];

/// `connector.input[]` of `type: kafka`: JSON objects consumed from Kafka topics. A message's
/// offset is committed only after the object is durably accepted (at-least-once); a message
/// that is not a JSON object is kept in the repair queue as text with the parse error.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaInputConfig {
    /// Name of the input (shown in metrics and the repair queue).
    pub name: String,
    /// Bootstrap brokers, `host:port`.
    #[schemars(length(min = 1))]
    pub brokers: Vec<String>,
    /// Topics to consume.
    #[schemars(length(min = 1))]
    pub topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// Name of the application token the input acts with (TDG): each message is accepted only
    /// while that token is active, not expired and its role allows `input_post`; otherwise the
    /// message is not committed and is tried again (every few seconds) until it may.
    #[serde(default)]
    pub token_name: Option<String>,
    /// Pipeline run on each object before connector routing; without it TDG's default step.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Extra librdkafka consumer properties, e.g. `session.timeout.ms`, `auto.offset.reset`,
    /// `security.protocol`. `bootstrap.servers`, `group.id` and the offset-store settings are
    /// the connector's own.
    #[serde(default, deserialize_with = "librdkafka_options")]
    #[schemars(with = "BTreeMap<String, OptionValue>")]
    pub options: BTreeMap<String, String>,
    /// Messages accepted at the same time; `1` accepts them one by one and waits for the end of
    /// processing of each, which keeps the order of a partition.
    #[serde(default = "default_workers_count")]
    #[schemars(range(min = 1, max = 1000))]
    pub workers_count: usize,
    /// Deepest accepted nesting of a message's arrays/objects.
    #[serde(default = "default_max_depth")]
    #[schemars(range(min = 1, max = 200))]
    pub max_depth: usize,
}

impl KafkaInputConfig {
    /// The librdkafka configuration of the consumer.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
            .set("client.id", format!("ferrogrid-{}", self.name));
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", self.brokers.join(","))
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false");
        config
    }

    /// Problems the schema cannot express.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = check_brokers(&self.brokers);
        if self.topics.is_empty() {
            problems.push(ConfigProblem::new("topics", "at least one topic is needed"));
        }
        for key in self.options.keys().filter(|k| OWNED_CONSUMER_OPTIONS.contains(&k.as_str())) {
            problems.push(ConfigProblem::new(format!("options.{key}"), "is set by the connector itself"));
        }
        // The accepted messages' offsets are committed every interval: 0 commits only at a
        // rebalance or a stop, and a crash then consumes everything since again.
        if self.options.get("auto.commit.interval.ms").is_some_and(|v| v.trim() == "0") {
            problems.push(ConfigProblem::new(
                "options.auto.commit.interval.ms",
                "0 would commit only at rebalances and stops (a crash would consume everything since again); at least 1",
            ));
        }
        problems.extend(check_options(&self.client_config()));
        problems
    }
}

/// The body format of the `kafka` output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KafkaFormat {
    /// The object as a JSON document.
    #[default]
    Json,
    /// A string object as its text, anything else as JSON.
    Plain,
}

/// `connector.output[]` of `type: kafka`: each object routed here is produced to `topic` by an
/// idempotent producer (`acks=all` unless `options` say otherwise).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaOutputConfig {
    /// Name of the output, referenced by `connector.routing[].output`.
    pub name: String,
    /// Bootstrap brokers, `host:port`.
    #[schemars(length(min = 1))]
    pub brokers: Vec<String>,
    /// Topic to produce to.
    pub topic: String,
    /// Message format.
    #[serde(default)]
    pub format: KafkaFormat,
    /// Extra librdkafka producer properties, e.g. `linger.ms`, `compression.type`,
    /// `message.timeout.ms` (default 30000 here).
    #[serde(default, deserialize_with = "librdkafka_options")]
    #[schemars(with = "BTreeMap<String, OptionValue>")]
    pub options: BTreeMap<String, String>,
    /// `true`: a send succeeds only once the broker's delivery report confirms the message (it
    /// stays in the repair queue until then). `false`: a send succeeds once the message is in the
    /// producer's buffer; a delivery that fails later is only logged.
    #[serde(default = "default_true")]
    pub is_async: bool,
    /// The message key (TDG 1.7.18's `set_key`): the field of the object whose value is the key,
    /// dotted for a nested one (`customer.id`); a string as its text, a number or boolean as
    /// written. An object without it is refused (kept in the repair queue, or the output repair
    /// queue when replicated). A key in the script's result (`key`) wins; without either,
    /// messages have no key.
    #[serde(default)]
    pub set_key: Option<String>,
}

impl KafkaOutputConfig {
    /// The librdkafka configuration of the producer.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
            .set("client.id", format!("ferrogrid-{}", self.name));
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config.set("bootstrap.servers", self.brokers.join(","));
        config
    }

    /// Problems the schema cannot express.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = check_brokers(&self.brokers);
        if self.topic.is_empty() {
            problems.push(ConfigProblem::new("topic", "must not be empty"));
        }
        if self.options.contains_key("bootstrap.servers") {
            problems.push(ConfigProblem::new("options.bootstrap.servers", "is set from `brokers`"));
        }
        if let Some(field) = &self.set_key {
            if field.split('.').any(str::is_empty) {
                problems.push(ConfigProblem::new(
                    "set_key",
                    format!("\"{field}\" is not a field path (names joined by dots, e.g. `id` or `customer.id`)"),
                ));
            }
        }
        problems.extend(check_options(&self.client_config()));
        problems
    }

    /// The key of `message`: the script's, else the value of the `set_key` field of the object
    /// (an object without it is refused: it cannot be sent as configured).
    pub fn message_key(&self, message: &Outgoing) -> Result<Option<Vec<u8>>, SendError> {
        match &message.key {
            Some(Value::String(text)) => return Ok(Some(text.as_bytes().to_vec())),
            Some(key @ (Value::Number(_) | Value::Bool(_))) => return Ok(Some(key.to_string().into_bytes())),
            Some(other) => {
                let kind = if other.is_array() { "a list" } else { "a map" };
                return Err(SendError::Rejected(format!(
                    "the key the script gave is {kind}: a message key is a string, number or boolean"
                )));
            }
            None => {}
        }
        let Some(path) = self.set_key.as_deref() else { return Ok(None) };
        let mut value = &message.object;
        for name in path.split('.') {
            value = match value {
                Value::Object(map) => map.get(name).unwrap_or(&Value::Null),
                _ => &Value::Null,
            };
        }
        match value {
            Value::String(text) => Ok(Some(text.as_bytes().to_vec())),
            Value::Number(_) | Value::Bool(_) => Ok(Some(value.to_string().into_bytes())),
            Value::Null => Err(SendError::Rejected(format!(
                "set_key: the object has no field `{path}` (or it is null) for the message key"
            ))),
            Value::Array(_) | Value::Object(_) => Err(SendError::Rejected(format!(
                "set_key: the field `{path}` is not a string, number or boolean and cannot be the message key"
            ))),
        }
    }
}

fn check_brokers(brokers: &[String]) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    if brokers.is_empty() {
        problems.push(ConfigProblem::new("brokers", "at least one broker is needed"));
    }
    for (i, broker) in brokers.iter().enumerate() {
        let port = broker.rsplit_once(':').map(|(_, port)| port);
        if broker.contains("://") || port.is_none_or(|p| p.parse::<u16>().is_err()) {
            problems.push(ConfigProblem::new(format!("brokers[{i}]"), format!("\"{broker}\" is not host:port")));
        }
    }
    problems
}

/// librdkafka checks every property name and value without creating a client.
/// A librdkafka property's value as YAML gives it: TDG's examples write numbers and booleans
/// bare (`queue.buffering.max.ms: 1`); librdkafka takes their text.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum OptionValue {
    /// Text.
    Text(String),
    /// A number, as written.
    Number(serde_json::Number),
    /// `true` / `false`.
    Flag(bool),
}

fn librdkafka_options<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let options: BTreeMap<String, OptionValue> = serde::Deserialize::deserialize(d)?;
    Ok(options
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                OptionValue::Text(t) => t,
                OptionValue::Number(n) => n.to_string(),
                OptionValue::Flag(b) => b.to_string(),
            };
            (key, text)
        })
        .collect())
}

fn check_options(config: &ClientConfig) -> Vec<ConfigProblem> {
    match config.create_native_config() {
        Ok(_) => Vec::new(),
        Err(e) => vec![ConfigProblem::new("options", e.to_string())],
    }
}
