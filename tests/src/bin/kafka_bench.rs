//! Kafka -> pipeline -> Kafka benchmark: how close `ferrogrid run` with a Kafka input, a Rhai
//! pipeline that bumps a field and a Kafka output comes to a bare consume-produce loop (rdkafka,
//! in this process, same broker, same producer settings: idempotent, `acks=all`) in the same run.
//!
//! `cargo build --release -p ferrogrid-engine -p ferrogrid-tests && target/release/kafka_bench [--messages N] [--workers N]`
//! (`--workers`: the Kafka input's `workers_count`, the messages it accepts at a time; 64 unless
//! given, as wrk's 64 connections)
//!
//! 1. Throughput: N messages wait in topic `in` (4 partitions); each loop consumes them all and
//!    produces each, bumped, to its own topic; messages/s = the messages between the first and
//!    the last read back from that topic ÷ the time between them: the loop running, not its
//!    start (ferrogrid's start — a process, its storage — and each loop's joining of its
//!    consumer group). `messages_per_s_from_start` counts from the start instead, as the
//!    benchmark did before 2026-12-05.
//! 2. Latency: messages are produced at half of ferrogrid's throughput for 10 s, each carrying
//!    its send time; p50/p99 from send to being read back from the output topic.
//! 3. CPU: ferrogrid's `cpu_us_per_message`, its process's user and system time (`/proc/PID/stat`)
//!    from its start to the end of the paced phase over the messages of both phases: the work a
//!    message costs, where the throughput also counts what else the machine runs. None for the
//!    bare loop, whose threads share this process with the load's.
//!
//! It prints one JSON document on stdout (`ratio_throughput` = ferrogrid / bare); progress on
//! stderr. Only loopback (the broker is the tansu that `scripts/install-peers.sh` installs).

use anyhow::{bail, Context};
use ferrogrid_tests::peers::Broker;
use ferrogrid_tests::{workspace_root, Server};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PARTITIONS: i32 = 4;

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or_default()
}

fn producer(broker: &Broker) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()?)
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &str, payload: &str) {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    while let Err((_, back)) = producer.send(record) {
        record = back;
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A consumer of every partition of `topic` from `offset`.
fn reader(broker: &Broker, topic: &str, offset: Offset) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("group.id", "bench-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, offset)?;
    }
    consumer.assign(&list)?;
    Ok(consumer)
}

/// Read `count` messages from `consumer` (at most `timeout`); the latencies in microseconds of
/// those carrying `sent_us`, how many came, and when the first and the last arrived.
fn read(consumer: &BaseConsumer, count: usize, timeout: Duration) -> (Vec<i64>, usize, Instant, Instant) {
    let started = Instant::now();
    let (mut got, mut latencies, mut first, mut last) = (0, Vec::new(), None, Instant::now());
    while got < count && started.elapsed() < timeout {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            got += 1;
            last = Instant::now();
            first.get_or_insert(last);
            let v: Value = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
            if let Some(sent) = v["sent_us"].as_i64() {
                latencies.push(now_micros() - sent);
            }
        }
    }
    (latencies, got, first.unwrap_or(last), last)
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i] as f64 / 1000.0 * 100.0).round() / 100.0
}

/// The bare loop: consume `from` (group `group`), bump `n`, produce to `to`, until `stop`.
fn bare_loop(
    broker: &Broker,
    from: &str,
    to: &str,
    group: &str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    consumer.subscribe(&[from])?;
    let producer = producer(broker)?;
    let to = to.to_string();
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let Ok(mut v) = serde_json::from_slice::<Value>(m.payload().unwrap_or_default()) else { continue };
                v["n"] = json!(v["n"].as_i64().unwrap_or(0) + 1);
                send(&producer, &to, &m.partition().to_string(), &v.to_string());
            }
        }
        let _ = producer.flush(Duration::from_secs(10));
    }))
}

/// A loop being measured: how to stop it, and the CPU seconds its process has used so far
/// (`None` for the bare loop, whose threads share this process with the load's).
struct Running {
    stop: Box<dyn FnOnce()>,
    cpu: Box<dyn Fn() -> Option<f64>>,
}

/// CPU seconds (user and system, all threads) process `pid` has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command in parentheses (which may hold spaces): field 3 on; utime and stime are
    // fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a constant of the system; no memory is handed over.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks / hz as f64)
}

/// Throughput and paced latency of one loop reading `in_topic` and writing `out_topic`, and the
/// CPU it used a message (over both phases, when its process can be measured).
fn measure(
    name: &str,
    broker: &Broker,
    in_topic: &str,
    out_topic: &str,
    messages: usize,
    start: &dyn Fn() -> anyhow::Result<Running>,
) -> anyhow::Result<Value> {
    let producer = producer(broker)?;
    for i in 0..messages {
        send(&producer, in_topic, &i.to_string(), &json!({"id": i, "n": i}).to_string());
    }
    producer.flush(Duration::from_secs(60))?;
    let out = reader(broker, out_topic, Offset::Beginning)?;
    eprintln!("[{name}] {messages} messages waiting in {in_topic}; starting the loop");
    let started = Instant::now();
    let running = start()?;
    let cpu_before = (running.cpu)();
    let (_, got, first, last) = read(&out, messages, Duration::from_secs(600));
    if got < messages {
        bail!("[{name}] only {got} of {messages} messages came out");
    }
    let rate = (messages - 1) as f64 / (last - first).as_secs_f64().max(1e-6);
    let from_start = messages as f64 / (last - started).as_secs_f64();
    eprintln!(
        "[{name}] {rate:.0} messages/s running ({from_start:.0}/s counting from the start, the first out after {:.2} s)",
        (first - started).as_secs_f64()
    );
    // Paced phase at half that rate for 10 s, with send times.
    let paced = (rate / 2.0).max(1.0);
    let total = (paced * 10.0) as usize;
    // Read while sending, so a message's latency ends when it comes out, not after the phase.
    let reading = std::thread::spawn(move || read(&out, total, Duration::from_secs(120)));
    let t0 = Instant::now();
    for i in 0..total {
        let due = t0 + Duration::from_secs_f64(i as f64 / paced);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        send(&producer, in_topic, &i.to_string(), &json!({"id": i, "n": 0, "sent_us": now_micros()}).to_string());
    }
    let (mut latencies, got, _, _) = reading.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
    let cpu = cpu_before.zip((running.cpu)()).map(|(before, after)| after - before);
    (running.stop)();
    latencies.sort_unstable();
    eprintln!("[{name}] paced {paced:.0}/s: {got} of {total} back");
    let cpu_us_per_message = cpu.map(|s| (s * 1e6 / (messages + got) as f64 * 10.0).round() / 10.0);
    if let (Some(s), Some(us)) = (cpu, cpu_us_per_message) {
        eprintln!("[{name}] {s:.2} s of CPU for {} messages: {us} µs a message", messages + got);
    }
    Ok(json!({
        "messages": messages,
        "messages_per_s": rate.round(),
        "messages_per_s_from_start": from_start.round(),
        "paced_per_s": paced.round(),
        "p50_ms": percentile(&latencies, 0.5),
        "p99_ms": percentile(&latencies, 0.99),
        "cpu_us_per_message": cpu_us_per_message,
    }))
}

const CONFIG: &str = r#"functions:
  bump: {__file: bump.rhai}
pipelines:
  bump: [bump]
connector:
  input:
    - name: kafka
      type: kafka
      brokers: ["BROKER"]
      topics: [fg_in]
      group_id: ferrogrid-bench
      pipeline: bump
      workers_count: WORKERS
      options: {session.timeout.ms: "6000", fetch.wait.max.ms: "10"}
  output:
    - name: out
      type: kafka
      brokers: ["BROKER"]
      topic: fg_out
      options: {linger.ms: "5"}
  routing:
    - key: Bumped
      output: out
"#;

fn main() -> anyhow::Result<()> {
    let mut messages = 50_000usize;
    let mut workers = 64usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--messages" => messages = args.next().context("--messages N")?.parse()?,
            "--workers" => workers = args.next().context("--workers N")?.parse()?,
            other => bail!("unknown argument {other} (use --messages N, --workers N)"),
        }
    }
    let bin = std::env::var_os("FERROGRID_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/ferrogrid"));
    if !bin.exists() {
        bail!("{} not found: `cargo build --release -p ferrogrid-engine` or set FERROGRID_BIN", bin.display());
    }
    let broker = Broker::start();
    for topic in ["bare_in", "bare_out", "fg_in", "fg_out"] {
        broker.create_topic(topic, PARTITIONS as u32);
    }
    let bare = measure("bare", &broker, "bare_in", "bare_out", messages, &|| {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = bare_loop(&broker, "bare_in", "bare_out", "bare-loop", stop.clone())?;
        Ok(Running {
            stop: Box::new(move || {
                stop.store(true, Ordering::Relaxed);
                let _ = thread.join();
            }),
            cpu: Box::new(|| None),
        })
    })?;
    let dir = ferrogrid_tests::ConfigDir::new(
        &CONFIG.replace("BROKER", &broker.address()).replace("WORKERS", &workers.to_string()),
        &[("bump.rhai", "let obj = param; obj.n += 1; #{obj: obj, routing_key: \"Bumped\"}")],
    )?;
    let ferrogrid = measure("ferrogrid", &broker, "fg_in", "fg_out", messages, &|| {
        let mut server = Server::try_start(&bin, dir.path(), None)?;
        let pid = server.pid();
        Ok(Running {
            stop: Box::new(move || {
                let status = server.stop();
                eprintln!("[ferrogrid] stopped: {status}");
            }),
            cpu: Box::new(move || pid.and_then(cpu_seconds)),
        })
    })?;
    let ratio = |key: &str| match (ferrogrid[key].as_f64(), bare[key].as_f64()) {
        (Some(f), Some(b)) if b > 0.0 => ((f / b) * 100.0).round() / 100.0,
        _ => 0.0,
    };
    let report = json!({"bare": bare, "ferrogrid": ferrogrid, "ratio_throughput": ratio("messages_per_s"),
                        "ratio_throughput_from_start": ratio("messages_per_s_from_start"), "partitions": PARTITIONS,
                        "workers_count": workers});
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
