//! Metrics of the connectors — librdkafka's statistics of every Kafka consumer and producer — in
//! a registry of their own, which the engine's `GET /metrics` renders with its own.
//!
//! librdkafka emits its statistics every `statistics.interval.ms` (5 s unless an input's or
//! output's `options` say otherwise; `0` turns them off); each emission sets the gauges of that
//! client, and a client that goes away (an input or output an apply removed) takes its series
//! with it. The error counters (`ferrogrid_kafka_errors_total`) stay, as counters do: a client of
//! the same name goes on counting in them.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use rdkafka::Statistics;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The gauges librdkafka's statistics set.
pub struct KafkaMetrics {
    registry: Registry,
    /// Messages between the committed offset and the end of the partition, per consumer input.
    consumer_lag: IntGaugeVec,
    /// The consumer group's committed offset per partition.
    committed_offset: IntGaugeVec,
    /// The end (high watermark) of each partition the consumer fetches.
    high_watermark: IntGaugeVec,
    /// Messages waiting in the client's queues (a producer's not yet delivered).
    queued_messages: IntGaugeVec,
    /// Operations waiting to be served by the client (librdkafka's `replyq`).
    replyq: IntGaugeVec,
    /// Messages sent to the brokers since the client started (librdkafka's `txmsgs`).
    tx_messages: IntGaugeVec,
    /// Messages received from the brokers since the client started (`rxmsgs`).
    rx_messages: IntGaugeVec,
    /// Average round-trip time to each broker over the last interval.
    broker_rtt_seconds: GaugeVec,
    /// Transmission and receive errors per broker since the client started.
    broker_errors: IntGaugeVec,
    /// Errors a client reported (brokers down, authentication, unknown topics, consume errors),
    /// by librdkafka's error code.
    errors: IntCounterVec,
}

fn gauges(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl KafkaMetrics {
    fn new() -> prometheus::Result<KafkaMetrics> {
        let r = Registry::new();
        let partition = ["input", "topic", "partition"];
        let client = ["client", "role"];
        let broker = ["client", "role", "broker"];
        let broker_rtt_seconds = GaugeVec::new(
            Opts::new("ferrogrid_kafka_broker_rtt_seconds", "Average round-trip time to a broker (last interval)"),
            &broker,
        )?;
        r.register(Box::new(broker_rtt_seconds.clone()))?;
        Ok(KafkaMetrics {
            consumer_lag: gauges(
                &r,
                "ferrogrid_kafka_consumer_lag",
                "Messages of a partition after the committed offset (librdkafka's consumer_lag)",
                &partition,
            )?,
            committed_offset: gauges(
                &r,
                "ferrogrid_kafka_committed_offset",
                "The consumer group's committed offset of a partition",
                &partition,
            )?,
            high_watermark: gauges(&r, "ferrogrid_kafka_high_watermark", "The end of a partition", &partition)?,
            queued_messages: gauges(
                &r,
                "ferrogrid_kafka_queued_messages",
                "Messages in the client's queues (a producer's: not yet delivered)",
                &client,
            )?,
            replyq: gauges(
                &r,
                "ferrogrid_kafka_replyq",
                "Operations waiting to be served (librdkafka's replyq)",
                &client,
            )?,
            tx_messages: gauges(&r, "ferrogrid_kafka_tx_messages", "Messages sent to brokers since start", &client)?,
            rx_messages: gauges(
                &r,
                "ferrogrid_kafka_rx_messages",
                "Messages received from brokers since start",
                &client,
            )?,
            broker_rtt_seconds,
            broker_errors: gauges(
                &r,
                "ferrogrid_kafka_broker_errors",
                "Transmission and receive errors with a broker since start",
                &broker,
            )?,
            errors: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "ferrogrid_kafka_errors_total",
                        "Errors a Kafka client reported (brokers down, authentication, unknown topic, consuming), by librdkafka's code",
                    ),
                    &["client", "role", "error"],
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            registry: r,
        })
    }
}

/// The registry the engine renders with its own.
pub fn registry() -> &'static Registry {
    &kafka().registry
}

fn kafka() -> &'static KafkaMetrics {
    static METRICS: OnceLock<KafkaMetrics> = OnceLock::new();
    METRICS.get_or_init(|| match KafkaMetrics::new() {
        Ok(m) => m,
        // Names are constants checked by the test below; failing here is a programming error.
        Err(e) => panic!("kafka metric definitions are invalid: {e}"),
    })
}

/// The series one client has set.
#[derive(Default)]
struct Seen {
    partitions: HashSet<(String, String)>,
    brokers: HashSet<String>,
}

/// What one emission of librdkafka's statistics says (the part the gauges show).
struct Figures {
    queued: u64,
    replyq: i64,
    tx_messages: i64,
    rx_messages: i64,
    brokers: Vec<BrokerFigures>,
    partitions: Vec<PartitionFigures>,
}

struct BrokerFigures {
    name: String,
    rtt_seconds: Option<f64>,
    errors: u64,
}

struct PartitionFigures {
    topic: String,
    id: i32,
    lag: i64,
    committed: i64,
    high_watermark: i64,
}

/// Sets the gauges of one client from its statistics; removes them when dropped (with the
/// client). Two clients of one name may live at once (a producer replaced after a fatal error,
/// the next configuration's client built before the switch, a dry run's): the first to report
/// owns the series until it goes, and the other reports only then.
pub(crate) struct StatsRecorder {
    name: String,
    role: &'static str,
    id: u64,
    seen: Mutex<Seen>,
}

/// Which recorder owns the series of each (client, role).
fn owners() -> std::sync::MutexGuard<'static, std::collections::HashMap<(String, &'static str), u64>> {
    static OWNERS: OnceLock<Mutex<std::collections::HashMap<(String, &'static str), u64>>> = OnceLock::new();
    OWNERS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner)
}

impl StatsRecorder {
    /// For the input or output `name`, a `consumer` or `producer`.
    pub(crate) fn new(name: &str, role: &'static str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self { name: name.to_string(), role, id, seen: Mutex::new(Seen::default()) }
    }

    /// Whether this recorder owns its series (taking them when nobody does).
    fn owns(&self) -> bool {
        *owners().entry((self.name.clone(), self.role)).or_insert(self.id) == self.id
    }

    /// Count and log an error the client reported (`reason`: librdkafka's words).
    pub(crate) fn error(&self, error: &rdkafka::error::KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().map_or_else(|| "Other".to_string(), |c| format!("{c:?}"));
        kafka().errors.with_label_values(&[self.name.as_str(), self.role, code.as_str()]).inc();
        tracing::warn!(client = %self.name, role = self.role, error = %error, reason, "kafka client error");
    }

    pub(crate) fn record(&self, stats: &Statistics) {
        let brokers = stats
            .brokers
            .values()
            .filter(|b| b.nodeid >= 0)
            .map(|b| BrokerFigures {
                name: b.name.clone(),
                rtt_seconds: b.rtt.as_ref().map(|rtt| rtt.avg as f64 / 1e6),
                errors: b.txerrs.saturating_add(b.rxerrs),
            })
            .collect();
        let mut partitions = Vec::new();
        for (topic, t) in &stats.topics {
            for (id, p) in &t.partitions {
                partitions.push(PartitionFigures {
                    topic: topic.clone(),
                    id: *id,
                    lag: p.consumer_lag,
                    committed: p.committed_offset,
                    high_watermark: p.hi_offset,
                });
            }
        }
        self.apply(&Figures {
            queued: stats.msg_cnt,
            replyq: stats.replyq,
            tx_messages: stats.txmsgs,
            rx_messages: stats.rxmsgs,
            brokers,
            partitions,
        });
    }

    fn apply(&self, figures: &Figures) {
        if !self.owns() {
            return;
        }
        let m = kafka();
        let client = [self.name.as_str(), self.role];
        m.queued_messages.with_label_values(&client).set(i64::try_from(figures.queued).unwrap_or(i64::MAX));
        m.replyq.with_label_values(&client).set(figures.replyq);
        m.tx_messages.with_label_values(&client).set(figures.tx_messages);
        m.rx_messages.with_label_values(&client).set(figures.rx_messages);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut brokers = HashSet::new();
        for broker in &figures.brokers {
            let labels = [self.name.as_str(), self.role, broker.name.as_str()];
            if let Some(rtt) = broker.rtt_seconds {
                m.broker_rtt_seconds.with_label_values(&labels).set(rtt);
            }
            m.broker_errors.with_label_values(&labels).set(i64::try_from(broker.errors).unwrap_or(i64::MAX));
            brokers.insert(broker.name.clone());
        }
        for gone in seen.brokers.difference(&brokers) {
            let labels = [self.name.as_str(), self.role, gone.as_str()];
            let _ = m.broker_rtt_seconds.remove_label_values(&labels);
            let _ = m.broker_errors.remove_label_values(&labels);
        }
        seen.brokers = brokers;
        if self.role != "consumer" {
            return;
        }
        // The partitions this consumer is assigned: librdkafka computes a lag for those only
        // (-1 otherwise), and -1 is its internal "unassigned" partition.
        let mut partitions = HashSet::new();
        for p in figures.partitions.iter().filter(|p| p.id >= 0 && p.lag >= 0) {
            let id = p.id.to_string();
            let labels = [self.name.as_str(), p.topic.as_str(), id.as_str()];
            m.consumer_lag.with_label_values(&labels).set(p.lag);
            m.committed_offset.with_label_values(&labels).set(p.committed);
            m.high_watermark.with_label_values(&labels).set(p.high_watermark);
            partitions.insert((p.topic.clone(), id));
        }
        for (topic, id) in seen.partitions.difference(&partitions) {
            self.remove_partition(topic, id);
        }
        seen.partitions = partitions;
    }

    fn remove_partition(&self, topic: &str, id: &str) {
        let m = kafka();
        let labels = [self.name.as_str(), topic, id];
        let _ = m.consumer_lag.remove_label_values(&labels);
        let _ = m.committed_offset.remove_label_values(&labels);
        let _ = m.high_watermark.remove_label_values(&labels);
    }
}

impl Drop for StatsRecorder {
    fn drop(&mut self) {
        // Owned until its series are gone: another client takes them only after.
        let mut owners = owners();
        let key = (self.name.clone(), self.role);
        if owners.get(&key) != Some(&self.id) {
            return;
        }
        owners.remove(&key);
        let m = kafka();
        let seen = std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner));
        for (topic, id) in &seen.partitions {
            self.remove_partition(topic, id);
        }
        for broker in &seen.brokers {
            let labels = [self.name.as_str(), self.role, broker.as_str()];
            let _ = m.broker_rtt_seconds.remove_label_values(&labels);
            let _ = m.broker_errors.remove_label_values(&labels);
        }
        let client = [self.name.as_str(), self.role];
        for gauge in [&m.queued_messages, &m.replyq, &m.tx_messages, &m.rx_messages] {
            let _ = gauge.remove_label_values(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> String {
        let mut buffer = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry().gather(), &mut buffer).unwrap();
        String::from_utf8(buffer).unwrap()
    }

    fn figures(partitions: &[(i32, i64)]) -> Figures {
        Figures {
            queued: 3,
            replyq: 2,
            tx_messages: 7,
            rx_messages: 9,
            brokers: vec![BrokerFigures { name: "localhost:9092/1".into(), rtt_seconds: Some(0.0015), errors: 3 }],
            partitions: partitions
                .iter()
                .map(|(id, lag)| PartitionFigures {
                    topic: "items".into(),
                    id: *id,
                    lag: *lag,
                    committed: 10,
                    high_watermark: 10 + lag,
                })
                .collect(),
        }
    }

    #[test]
    fn statistics_set_lag_per_partition_and_leave_with_their_client() {
        let recorder = StatsRecorder::new("lag-test", "consumer");
        recorder.apply(&figures(&[(0, 5), (1, 0), (-1, 0), (2, -1)]));
        let t = text();
        assert!(t.contains(r#"ferrogrid_kafka_consumer_lag{input="lag-test",partition="0",topic="items"} 5"#), "{t}");
        assert!(t.contains(r#"ferrogrid_kafka_consumer_lag{input="lag-test",partition="1",topic="items"} 0"#), "{t}");
        assert!(!t.contains(r#"input="lag-test",partition="-1""#), "the internal partition is left out: {t}");
        assert!(!t.contains(r#"input="lag-test",partition="2""#), "an unknown lag is left out: {t}");
        assert!(
            t.contains(r#"ferrogrid_kafka_high_watermark{input="lag-test",partition="0",topic="items"} 15"#),
            "{t}"
        );
        assert!(t.contains(r#"ferrogrid_kafka_queued_messages{client="lag-test",role="consumer"} 3"#), "{t}");
        assert!(t.contains(r#"ferrogrid_kafka_rx_messages{client="lag-test",role="consumer"} 9"#), "{t}");
        assert!(t.contains(r#"ferrogrid_kafka_broker_rtt_seconds{broker="localhost:9092/1",client="lag-test",role="consumer"} 0.0015"#), "{t}");
        assert!(
            t.contains(
                r#"ferrogrid_kafka_broker_errors{broker="localhost:9092/1",client="lag-test",role="consumer"} 3"#
            ),
            "{t}"
        );

        // Partition 1 revoked: its series goes.
        recorder.apply(&figures(&[(0, 4)]));
        let t = text();
        assert!(t.contains(r#"ferrogrid_kafka_consumer_lag{input="lag-test",partition="0",topic="items"} 4"#), "{t}");
        assert!(!t.contains(r#"input="lag-test",partition="1""#), "{t}");

        // A second client of the same name (a replaced producer, the next configuration's)
        // reports only once the first is gone, and the first's going does not take its series.
        let second = StatsRecorder::new("lag-test", "consumer");
        second.apply(&figures(&[(0, 99)]));
        assert!(text().contains(r#"ferrogrid_kafka_consumer_lag{input="lag-test",partition="0",topic="items"} 4"#));
        drop(recorder);
        assert!(!text().contains("lag-test"), "a client that goes takes its series");
        second.apply(&figures(&[(0, 3)]));
        assert!(text().contains(r#"ferrogrid_kafka_consumer_lag{input="lag-test",partition="0",topic="items"} 3"#));
        let third = StatsRecorder::new("lag-test", "consumer");
        drop(third);
        assert!(text().contains("lag-test"), "a client that never owned them leaves them");
        drop(second);
        assert!(!text().contains("lag-test"));
    }
}
