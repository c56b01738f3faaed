//! Every metric Ferrogrid exports, named once (Prometheus style, prefix `ferrogrid_`).

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::OnceLock;

/// The metrics of one process.
pub struct Metrics {
    registry: Registry,
    /// Objects accepted per input.
    pub objects_received: IntCounterVec,
    /// Objects stored per aggregate type.
    pub objects_stored: IntCounterVec,
    /// Objects sent to a connector output per output.
    pub objects_routed: IntCounterVec,
    /// Objects that failed, per stage.
    pub repair_added: IntCounterVec,
    /// Objects accepted and not finished yet, plus the entries in the repair queue (failed or
    /// being retried): 0 when nothing is waiting.
    pub repair_depth: IntGauge,
    /// Objects accepted and not yet processed.
    pub in_flight: IntGauge,
    /// Duration of each pipeline run.
    pub pipeline_seconds: HistogramVec,
    /// From acceptance to the end of processing.
    pub processing_seconds: HistogramVec,
    /// HTTP requests by route and status.
    pub http_requests: IntCounterVec,
    /// Group commits (fdatasync) of the intake log.
    pub intake_log_flushes: IntCounter,
    /// GraphQL relation lookups, by target type (after batching removed duplicates).
    pub relation_lookups: IntCounterVec,
    /// Batches those lookups ran in.
    pub relation_batches: IntCounterVec,
    /// Task runs started, by task name and kind (TDG's `tasks_started`).
    pub tasks_started: IntCounterVec,
    /// Task runs that failed.
    pub tasks_failed: IntCounterVec,
    /// Task runs that completed.
    pub tasks_succeeded: IntCounterVec,
    /// Task runs an operator stopped.
    pub tasks_stopped: IntCounterVec,
    /// Task runs in progress.
    pub tasks_running: IntGaugeVec,
    /// Run time of task runs (TDG's buckets, 0.0001 to 5 s).
    pub tasks_execution_seconds: HistogramVec,
    /// Job runs started, by job name.
    pub jobs_started: IntCounterVec,
    /// Job runs that failed.
    pub jobs_failed: IntCounterVec,
    /// Job runs that completed.
    pub jobs_succeeded: IntCounterVec,
    /// Job runs in progress.
    pub jobs_running: IntGaugeVec,
    /// Run time of job runs.
    pub jobs_execution_seconds: HistogramVec,
    /// Deliveries of the output processor that reached their output.
    pub output_sent: IntCounterVec,
    /// Deliveries that failed (each attempt).
    pub output_failures: IntCounterVec,
    /// Failed deliveries scheduled to be tried again.
    pub output_retries: IntCounterVec,
    /// Deliveries parked in the output repair queue.
    pub output_parked: IntCounterVec,
    /// Deliveries dropped after their `expiration_timeout`.
    pub output_expired: IntCounterVec,
    /// Deliveries that found their output's queue full (`max_queue_size`).
    pub output_queue_full: IntCounterVec,
    /// Deliveries waiting per output (not parked); set when metrics are read.
    pub output_queue_depth: IntGaugeVec,
    /// Age of the oldest delivery waiting per output; set when metrics are read.
    pub output_queue_oldest_seconds: GaugeVec,
    /// Restarts of a supervised actor after a panic, by actor kind and name.
    pub actor_restarts: IntCounterVec,
    /// Objects per commit of the storage actor.
    pub storage_batch_objects: Histogram,
    /// Stored versions indexed so far by an index build, by type and index.
    pub index_build_versions: IntGaugeVec,
    /// Versions removed by expiration, by type.
    pub expired_versions: IntCounterVec,
    /// Versions written to archive files and removed, by type.
    pub archived_versions: IntCounterVec,
    /// Duration of each group commit of the intake log (write + `fdatasync`): the disk wait of
    /// every acknowledgement.
    pub intake_log_flush_seconds: Histogram,
    /// Duration of each flush of the store to disk (sled's flush: write, `fdatasync`).
    pub store_flush_seconds: Histogram,
    /// GraphQL queries: time per top-level field (TDG 2.15.1.1's `graphql_query_time`), by
    /// schema (`default`/`admin`), entity (the field: a type or a service) and operation name.
    pub graphql_query_seconds: HistogramVec,
    /// GraphQL mutations: time per top-level field.
    pub graphql_mutation_seconds: HistogramVec,
    /// Top-level query fields that answered an error.
    pub graphql_query_fail: IntCounterVec,
    /// Top-level mutation fields that answered an error.
    pub graphql_mutation_fail: IntCounterVec,
    /// Seconds since the process started; set when metrics are read.
    pub uptime_seconds: prometheus::Gauge,
    /// Events the object journal holds.
    pub journal_events: IntGauge,
    /// Journal events not recorded (its queue full, or the journal full without rotation).
    pub journal_dropped: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<HistogramVec> {
    let buckets = vec![0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

/// Disk waits: 100 µs to 2.5 s.
fn latency(registry: &Registry, name: &str, help: &str) -> prometheus::Result<Histogram> {
    let buckets = vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    fn new() -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let intake_log_flushes = IntCounter::new(
            "ferrogrid_intake_log_flushes_total",
            "Group commits of the intake log (one fdatasync each, acknowledging every object in it)",
        )?;
        r.register(Box::new(intake_log_flushes.clone()))?;
        let storage_batch_objects = Histogram::with_opts(
            HistogramOpts::new("ferrogrid_storage_batch_objects", "Objects per commit of the storage actor")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )?;
        r.register(Box::new(storage_batch_objects.clone()))?;
        // Process metrics (Linux): process_cpu_seconds_total, process_resident_memory_bytes,
        // process_virtual_memory_bytes, process_open_fds, process_max_fds, process_threads,
        // process_start_time_seconds.
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        let uptime_seconds = prometheus::Gauge::new("ferrogrid_uptime_seconds", "Seconds since the process started")?;
        r.register(Box::new(uptime_seconds.clone()))?;
        let graphql = ["schema", "entity", "operation_name"];
        let journal_dropped = IntCounter::new(
            "ferrogrid_journal_dropped_total",
            "Object journal events not recorded (its queue full, or the journal full without rotate_log)",
        )?;
        r.register(Box::new(journal_dropped.clone()))?;
        Ok(Metrics {
            journal_events: gauge(&r, "ferrogrid_journal_events", "Events the object journal holds")?,
            journal_dropped,
            intake_log_flush_seconds: latency(
                &r,
                "ferrogrid_intake_log_flush_seconds",
                "Group commits of the intake log: write and fdatasync, the disk wait of each acknowledgement",
            )?,
            store_flush_seconds: latency(&r, "ferrogrid_store_flush_seconds", "Flushes of the store to disk")?,
            graphql_query_seconds: histogram(
                &r,
                "ferrogrid_graphql_query_time_seconds",
                "GraphQL query time per top-level field (TDG's graphql_query_time)",
                &graphql,
            )?,
            graphql_mutation_seconds: histogram(
                &r,
                "ferrogrid_graphql_mutation_time_seconds",
                "GraphQL mutation time per top-level field (TDG's graphql_mutation_time)",
                &graphql,
            )?,
            graphql_query_fail: counter(
                &r,
                "ferrogrid_graphql_query_fail_total",
                "GraphQL query fields answered with an error (TDG's graphql_query_fail)",
                &graphql,
            )?,
            graphql_mutation_fail: counter(
                &r,
                "ferrogrid_graphql_mutation_fail_total",
                "GraphQL mutation fields answered with an error (TDG's graphql_mutation_fail)",
                &graphql,
            )?,
            uptime_seconds,
            objects_received: counter(&r, "ferrogrid_objects_received_total", "Objects accepted", &["input"])?,
            objects_stored: counter(&r, "ferrogrid_objects_stored_total", "Objects stored", &["type"])?,
            objects_routed: counter(&r, "ferrogrid_objects_routed_total", "Objects sent to outputs", &["output"])?,
            repair_added: counter(
                &r,
                "ferrogrid_repair_queue_added_total",
                "Objects that failed, by stage",
                &["stage"],
            )?,
            repair_depth: gauge(
                &r,
                "ferrogrid_repair_queue_depth",
                "Objects accepted and not finished, plus repair-queue entries",
            )?,
            in_flight: gauge(&r, "ferrogrid_objects_in_flight", "Objects accepted and not yet processed")?,
            pipeline_seconds: histogram(&r, "ferrogrid_pipeline_duration_seconds", "Pipeline run time", &["pipeline"])?,
            processing_seconds: histogram(
                &r,
                "ferrogrid_processing_duration_seconds",
                "From acceptance to the end of processing",
                &["status"],
            )?,
            http_requests: counter(&r, "ferrogrid_http_requests_total", "HTTP requests", &["route", "status"])?,
            intake_log_flushes,
            relation_lookups: counter(
                &r,
                "ferrogrid_graphql_relation_lookups_total",
                "Distinct GraphQL relation lookups (equal ones in a batch run once)",
                &["type"],
            )?,
            tasks_started: counter(&r, "ferrogrid_tasks_started_total", "Task runs started", &["name", "kind"])?,
            tasks_failed: counter(&r, "ferrogrid_tasks_failed_total", "Task runs that failed", &["name", "kind"])?,
            tasks_succeeded: counter(
                &r,
                "ferrogrid_tasks_succeeded_total",
                "Task runs that completed",
                &["name", "kind"],
            )?,
            tasks_stopped: counter(
                &r,
                "ferrogrid_tasks_stopped_total",
                "Task runs stopped by an operator",
                &["name", "kind"],
            )?,
            tasks_running: {
                let g =
                    IntGaugeVec::new(Opts::new("ferrogrid_tasks_running", "Task runs in progress"), &["name", "kind"])?;
                r.register(Box::new(g.clone()))?;
                g
            },
            tasks_execution_seconds: histogram(
                &r,
                "ferrogrid_tasks_execution_time_seconds",
                "Run time of task runs",
                &["name", "kind"],
            )?,
            jobs_started: counter(&r, "ferrogrid_jobs_started_total", "Job runs started", &["name"])?,
            jobs_failed: counter(&r, "ferrogrid_jobs_failed_total", "Job runs that failed", &["name"])?,
            jobs_succeeded: counter(&r, "ferrogrid_jobs_succeeded_total", "Job runs that completed", &["name"])?,
            jobs_running: {
                let g = IntGaugeVec::new(Opts::new("ferrogrid_jobs_running", "Job runs in progress"), &["name"])?;
                r.register(Box::new(g.clone()))?;
                g
            },
            jobs_execution_seconds: histogram(
                &r,
                "ferrogrid_jobs_execution_time_seconds",
                "Run time of job runs",
                &["name"],
            )?,
            output_sent: counter(
                &r,
                "ferrogrid_output_sent_total",
                "Deliveries that reached their output",
                &["output"],
            )?,
            output_failures: counter(
                &r,
                "ferrogrid_output_failures_total",
                "Delivery attempts that failed",
                &["output"],
            )?,
            output_retries: counter(
                &r,
                "ferrogrid_output_retries_total",
                "Failed deliveries to be tried again",
                &["output"],
            )?,
            output_parked: counter(
                &r,
                "ferrogrid_output_parked_total",
                "Deliveries parked in the output repair queue",
                &["output"],
            )?,
            output_expired: counter(
                &r,
                "ferrogrid_output_expired_total",
                "Deliveries dropped after their expiration_timeout",
                &["output"],
            )?,
            actor_restarts: counter(
                &r,
                "ferrogrid_actor_restarts_total",
                "Restarts of a supervised actor after a panic (its state reloaded from storage)",
                &["actor", "name"],
            )?,
            storage_batch_objects,
            expired_versions: counter(
                &r,
                "ferrogrid_expired_versions_total",
                "Stored versions removed by expiration (lifetime_hours, keep_version_count)",
                &["type"],
            )?,
            archived_versions: counter(
                &r,
                "ferrogrid_archived_versions_total",
                "Stored versions written to archive files and then removed from the store",
                &["type"],
            )?,
            index_build_versions: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "ferrogrid_index_build_versions",
                        "Stored versions indexed so far by the build of an index a model change added",
                    ),
                    &["type", "index"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            output_queue_full: counter(
                &r,
                "ferrogrid_output_queue_full_total",
                "Deliveries that found their output's queue full (parked or dropped, per on_queue_full)",
                &["output"],
            )?,
            output_queue_depth: {
                let g = IntGaugeVec::new(
                    Opts::new("ferrogrid_output_queue_depth", "Deliveries waiting for their output (not parked)"),
                    &["output"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            output_queue_oldest_seconds: {
                let g = GaugeVec::new(
                    Opts::new(
                        "ferrogrid_output_queue_oldest_seconds",
                        "Age of the oldest delivery waiting for its output (0 when none waits)",
                    ),
                    &["output"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            relation_batches: counter(
                &r,
                "ferrogrid_graphql_relation_batches_total",
                "Batches of GraphQL relation lookups (the relation fields of one list share one)",
                &["type"],
            )?,
            registry: r,
        })
    }

    /// The Prometheus text exposition of every metric, the connectors' (Kafka) included.
    pub fn render(&self) -> String {
        self.uptime_seconds.set(started().elapsed().as_secs_f64());
        let mut families = self.registry.gather();
        families.extend(ferrogrid_connectors::metrics::registry().gather());
        let mut buffer = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// When the process started (when this was first asked: `main` asks it first).
pub fn started() -> std::time::Instant {
    static STARTED: OnceLock<std::time::Instant> = OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| match Metrics::new() {
        Ok(m) => m,
        // Names are constants checked by the test below; failing here is a programming error.
        Err(e) => panic!("metric definitions are invalid: {e}"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_metric_renders_with_its_name() {
        let m = super::metrics();
        m.objects_received.with_label_values(&["http"]).inc();
        m.repair_depth.set(3);
        let text = m.render();
        assert!(text.contains("ferrogrid_objects_received_total{input=\"http\"}"), "{text}");
        assert!(text.contains("ferrogrid_repair_queue_depth 3"), "{text}");
        if cfg!(target_os = "linux") {
            assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
            assert!(text.contains("\nprocess_open_fds "), "{text}");
            assert!(text.contains("\nprocess_threads "), "{text}");
        }
        assert!(text.contains("\nferrogrid_uptime_seconds "), "{text}");
    }
}
