//! The structure of `config.yml` (TDG's layout). These structs are the reference: their doc
//! comments become the JSON Schema (`ferrogrid schema`) that user files are validated against.

use ferrogrid_connectors::{InputConfig, OutputConfig};
use ferrogrid_sandbox::Limits;

/// `hard_limits`: a query that scans or returns more objects is aborted with an error.
pub use crate::storage::HardLimits;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A whole Ferrogrid configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Config {
    /// The domain model: an Avro schema (a JSON array of record schemas) with TDG's extensions,
    /// usually `{__file: model.avsc}`.
    #[serde(default)]
    pub types: Option<Value>,
    /// Functions: name -> Rhai source, usually `{__file: name.rhai}`.
    #[serde(default)]
    pub functions: BTreeMap<String, String>,
    /// Pipelines: name -> the functions run one after another.
    #[serde(default)]
    pub pipelines: BTreeMap<String, Vec<String>>,
    /// Libraries: name -> Rhai source, imported by scripts with `import "name" as name;`. They
    /// load in the order written, so a library may import the ones above it.
    #[serde(default)]
    pub libraries: IndexMap<String, String>,
    /// Inputs, outputs and routing between them.
    #[serde(default)]
    pub connector: ConnectorSection,
    /// Classification, routing and storage of objects.
    #[serde(default)]
    pub input_processor: InputProcessorSection,
    /// The repair queue.
    #[serde(default)]
    pub repair_queue: RepairQueueSection,
    /// Limits that abort repository queries.
    #[serde(default)]
    pub hard_limits: HardLimits,
    /// Sequences (`sequence::next`, `auto_increment`).
    #[serde(default)]
    pub sequence_generator: SequenceGenerator,
    /// Script sandbox limits.
    #[serde(default)]
    pub sandbox: Limits,
    /// GraphQL services: root fields that call a function with their arguments as a map.
    #[serde(default)]
    pub services: IndexMap<String, ServiceConfig>,
    /// Tasks: pipelines run on a schedule, continuously, or when an operator starts them.
    #[serde(default)]
    pub tasks: IndexMap<String, TaskConfig>,
    /// Settings of the task runner.
    #[serde(default)]
    pub task_runner: TaskRunnerConfig,
    /// Settings of the job runner.
    #[serde(default)]
    pub jobs: JobsConfig,
    /// Users, passwords, sign-in and lock-out (TDG's `account_manager`).
    #[serde(default)]
    pub account_manager: crate::security::accounts::AccountSettings,
    /// LDAP / Active Directory domains whose users sign in with `name@domain` (TDG's `ldap`).
    #[serde(default)]
    pub ldap: Vec<crate::security::ldap::LdapDomain>,
    /// The audit log of security events (TDG's `audit_log`).
    #[serde(default)]
    pub audit_log: crate::security::audit::AuditSettings,
    /// `GET /metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The object journal's retention (TDG's `logger`).
    #[serde(default)]
    pub logger: crate::journal::LoggerConfig,
    /// Mails to subscribers when objects enter the repair queue (TDG's `notifier`).
    #[serde(default)]
    pub notifier: NotifierSection,
    /// Replication of stored objects to connector outputs, by routing key: each stored object
    /// whose key is listed is queued (in the commit that stores it) for every output named, and
    /// delivered with retries; what cannot be delivered waits in the output repair queue.
    #[serde(default)]
    pub output_processor: IndexMap<String, OutputProcessorRoute>,
    /// Expiration of stored versions, by aggregate type (TDG's `expiration`).
    #[serde(default)]
    pub expiration: Vec<ExpirationRule>,
    /// Archiving of old versions to `.jsonl` files, by aggregate type (TDG's `archivation`).
    #[serde(default)]
    pub archivation: Vec<ArchivationRule>,
    /// Top-level sections that an upload (`PUT /admin/api/config`, `ferrogrid apply`) may not
    /// change: such an upload is refused naming the section. Only `ferrogrid run FOLDER` at a
    /// start changes them (and this list).
    #[serde(default)]
    pub locked_sections: Vec<String>,
    /// The engine versions this configuration is written for, as a semver requirement
    /// (`">=0.2"`); another engine refuses it.
    #[serde(default, rename = "ferrogrid-version")]
    pub ferrogrid_version: Option<String>,
}

/// One handler of an output-processor key: a preprocessing pipeline and the outputs it sends to.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct OutputHandler {
    /// Pipeline run on `param` = `#{obj, routing_key}` before sending; it returns the object to
    /// send, or `#{obj: ..., key: ...}` (`key`: the message key, for Kafka outputs). Without it
    /// the stored object is sent as is.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Names of outputs in `connector.output`.
    #[schemars(length(min = 1))]
    pub outputs: Vec<String>,
}

/// How a queued object is kept until it is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreStrategy {
    /// A copy of the object as stored.
    #[default]
    Copy,
    /// Only its key; the current version is read at send time (not sent when it is gone).
    Reference,
}

fn default_true() -> bool {
    true
}

fn default_sync_retry_timeout() -> f64 {
    60.0
}

fn default_max_queue_size() -> usize {
    1_000_000
}

/// What becomes of a delivery whose output already has `max_queue_size` waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueFull {
    /// Parked in the output repair queue at once (`Sending error`), to be tried again by an
    /// operator: nothing is lost, and the output's queue stays bounded.
    #[default]
    Park,
    /// Dropped with a log line: the disk used by the output is bounded too.
    Drop,
}

/// Retries of failed sends in async mode: exponential backoff with jitter.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RetryPolicy {
    /// Sends tried before the object is parked in the output repair queue.
    #[serde(default = "RetryPolicy::default_max_attempts")]
    #[schemars(range(min = 1))]
    pub max_attempts: u32,
    /// Wait before the second attempt, in milliseconds; it doubles after each failure.
    #[serde(default = "RetryPolicy::default_initial_backoff_ms")]
    #[schemars(range(min = 1))]
    pub initial_backoff_ms: u64,
    /// Longest wait between two attempts, in milliseconds.
    #[serde(default = "RetryPolicy::default_max_backoff_ms")]
    #[schemars(range(min = 1))]
    pub max_backoff_ms: u64,
}

impl RetryPolicy {
    fn default_max_attempts() -> u32 {
        5
    }
    fn default_initial_backoff_ms() -> u64 {
        1_000
    }
    fn default_max_backoff_ms() -> u64 {
        60_000
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: Self::default_max_attempts(),
            initial_backoff_ms: Self::default_initial_backoff_ms(),
            max_backoff_ms: Self::default_max_backoff_ms(),
        }
    }
}

/// `output_processor.<routing_key>`: TDG's `pipeline` + `output`, or `handlers`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct OutputProcessorRoute {
    /// Preprocessing pipeline of the one-handler form (with `output`).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// The output of the one-handler form.
    #[serde(default)]
    pub output: Option<String>,
    /// Several handlers, each with its pipeline and outputs.
    #[serde(default)]
    pub handlers: Vec<OutputHandler>,
    /// Seconds after which an object not yet sent is dropped from the queue (logged and counted
    /// in `ferrogrid_output_expired_total`); none: kept until sent or deleted.
    #[serde(default)]
    #[schemars(range(min = 0.001))]
    pub expiration_timeout: Option<f64>,
    /// What the queue keeps of the object.
    #[serde(default)]
    pub store_strategy: StoreStrategy,
    /// `true`: each (object, output) is delivered on its own with retries (`retry`). `false`
    /// (TDG's sync mode): each output sends its objects one at a time in the order stored; a
    /// failing send stops that output (others go on) and is tried again every
    /// `sync_retry_timeout` seconds. An output is used in one mode only.
    #[serde(default = "default_true")]
    pub is_async: bool,
    /// Sync mode: seconds between retries of a failed output.
    #[serde(default = "default_sync_retry_timeout")]
    pub sync_retry_timeout: f64,
    /// Sync mode: failed attempts after which an object is parked and its output moves on;
    /// none: tried until it is sent.
    #[serde(default)]
    pub sync_failed_attempt_count_threshold: Option<u32>,
    /// Async mode: retries with backoff before an object is parked.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Most deliveries that may wait for one output of this key (on disk, the output repair
    /// queue not counted). A delivery that finds that many waiting is handled by `on_queue_full`
    /// and counted in `ferrogrid_output_queue_full_total`.
    #[serde(default = "default_max_queue_size")]
    #[schemars(range(min = 1))]
    pub max_queue_size: usize,
    /// What becomes of a delivery whose output's queue is full.
    #[serde(default)]
    pub on_queue_full: QueueFull,
}

impl Config {
    /// Every output some `output_processor` key delivers to, sorted, each once.
    pub fn replicated_outputs(&self) -> Vec<String> {
        let mut outputs: Vec<String> = self
            .output_processor
            .values()
            .flat_map(|route| route.targets().into_iter().map(|(_, output)| output.to_string()))
            .collect();
        outputs.sort();
        outputs.dedup();
        outputs
    }

    /// The key that makes `output` deliver in sync mode (`is_async: false`), if one does (the
    /// config check makes every key of an output use the same mode).
    pub fn sync_route_of(&self, output: &str) -> Option<&OutputProcessorRoute> {
        self.output_processor
            .values()
            .find(|route| !route.is_async && route.targets().iter().any(|(_, o)| *o == output))
    }
}

impl OutputProcessorRoute {
    /// Every (pipeline, output) this key sends to.
    pub fn targets(&self) -> Vec<(Option<&str>, &str)> {
        let mut targets = Vec::new();
        if let Some(output) = &self.output {
            targets.push((self.pipeline.as_deref(), output.as_str()));
        }
        for handler in &self.handlers {
            for output in &handler.outputs {
                targets.push((handler.pipeline.as_deref(), output.as_str()));
            }
        }
        targets
    }
}

fn default_max_jobs_in_parallel() -> usize {
    50
}

/// `metrics`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MetricsConfig {
    /// Whether `GET /metrics` needs a token whose role has `metrics_read` (default true);
    /// `false` leaves it open for scrapers.
    #[serde(default = "default_true")]
    pub require_token: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { require_token: true }
    }
}

/// `notifier` (TDG 2.16.1.16): when objects enter the repair queue, the subscribers get one mail
/// per `interval_seconds` at most, telling how many and the first errors.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NotifierSection {
    /// The SMTP server the mails go through.
    #[serde(default)]
    pub mail_server: Option<MailServer>,
    /// Who gets the mails (TDG calls them users; the web UI, subscribers).
    #[serde(default)]
    pub users: Vec<Subscriber>,
    /// Seconds between two mails, at least (default 60).
    #[serde(default = "default_notify_interval")]
    #[schemars(range(min = 1))]
    pub interval_seconds: u64,
    /// The web UI's address as subscribers reach it (`https://grid.example.com`), for the link
    /// to the repair queue in the mail; without it the mail gives the path only.
    #[serde(default)]
    pub link: Option<String>,
}

fn default_notify_interval() -> u64 {
    60
}

impl Default for NotifierSection {
    fn default() -> Self {
        NotifierSection {
            mail_server: None,
            users: Vec::new(),
            interval_seconds: default_notify_interval(),
            link: None,
        }
    }
}

/// `notifier.mail_server` (TDG's keys).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MailServer {
    /// `host:port`, `smtp://host:port` (plain; `?tls=required` for STARTTLS) or
    /// `smtps://host:port`.
    pub url: String,
    /// The sender, e.g. `Ferrogrid <grid@example.com>` (TDG's example `TDG_repair_queue` is not
    /// an address: `@localhost` is added to a bare name).
    pub from: String,
    /// Login at the SMTP server.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password.
    #[serde(default)]
    pub password: Option<String>,
    /// Seconds one mail may take (default 5).
    #[serde(default = "default_mail_timeout")]
    #[schemars(range(min = 0.001))]
    pub timeout: f64,
    /// Accept a TLS certificate that does not name the host.
    #[serde(default)]
    pub skip_verify_host: bool,
}

fn default_mail_timeout() -> f64 {
    5.0
}

/// A subscriber of `notifier.users`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Subscriber {
    /// Its id (TDG writes a number or a string).
    pub id: SubscriberId,
    /// Its name.
    pub name: String,
    /// Its e-mail address.
    pub addr: String,
}

/// A subscriber's id as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SubscriberId {
    /// `id: 1`.
    Number(u64),
    /// `id: "ops"`.
    Text(String),
}

impl std::fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscriberId::Number(n) => write!(f, "{n}"),
            SubscriberId::Text(t) => f.write_str(t),
        }
    }
}

/// `jobs`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct JobsConfig {
    /// Jobs run at once, at most (default 50).
    #[serde(default = "default_max_jobs_in_parallel")]
    #[schemars(range(min = 1))]
    pub max_jobs_in_parallel: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { max_jobs_in_parallel: default_max_jobs_in_parallel() }
    }
}

/// How a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// When an operator starts it.
    SingleShot,
    /// Again `pause_sec` after each run ends.
    Continuous,
    /// On its cron `schedule`.
    Periodical,
}

impl TaskKind {
    /// The name used in the configuration and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::SingleShot => "single_shot",
            TaskKind::Continuous => "continuous",
            TaskKind::Periodical => "periodical",
        }
    }
}

fn default_keep() -> usize {
    10
}

/// One task (TDG's `tasks` section).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TaskConfig {
    /// `single_shot`, `continuous` or `periodical`.
    pub kind: TaskKind,
    /// The pipeline (or function) a run calls; its `param` is `#{task, run_id, kind}`.
    pub pipeline: String,
    /// Finished runs kept in the history (default 10).
    #[serde(default = "default_keep")]
    #[schemars(range(min = 1))]
    pub keep: usize,
    /// Continuous tasks: seconds between the end of a run and the start of the next (default 0,
    /// at most a year).
    #[serde(default)]
    #[schemars(range(min = 0, max = 31536000))]
    pub pause_sec: Option<f64>,
    /// Periodical tasks: a cron expression with seconds (`"0 */5 * * * *"`: every five minutes);
    /// days of the week 0-6 from Sunday 0, as TDG.
    #[serde(default)]
    pub schedule: Option<String>,
}

fn default_lifetime_hours() -> f64 {
    24.0
}

fn default_delay_sec() -> u64 {
    36_000
}

/// One `expiration` entry: how long versions of a type live and how many are kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ExpirationRule {
    /// The aggregate type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Versions older than this many hours are removed — the newest one too, so an object whose
    /// newest version is that old expires as a whole (TDG's semantics). Default 24; 0: no
    /// lifetime (only `keep_version_count` applies).
    #[serde(default = "default_lifetime_hours")]
    #[schemars(range(min = 0))]
    pub lifetime_hours: f64,
    /// At most this many versions of each object are kept (the newest ones); none by default.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub keep_version_count: Option<usize>,
    /// Seconds between two passes (default 36000, as in TDG).
    #[serde(default = "default_delay_sec")]
    #[schemars(range(min = 1))]
    pub delay_sec: u64,
}

impl ExpirationRule {
    /// The limits the schema states, for a rule set through the API.
    pub fn validate(&self) -> Result<(), String> {
        if !self.lifetime_hours.is_finite() || !(0.0..=876_000.0).contains(&self.lifetime_hours) {
            return Err("lifetime_hours: between 0 and 876000 (100 years)".into());
        }
        if self.keep_version_count == Some(0) {
            return Err("keep_version_count: at least 1".into());
        }
        if !(1..=315_360_000).contains(&self.delay_sec) {
            return Err("delay_sec: between 1 and 315360000 (10 years)".into());
        }
        Ok(())
    }
}

fn default_file_size_threshold() -> u64 {
    104_857_600
}

/// One `archivation` entry: versions older than `lifetime_days` are written to `.jsonl` files in
/// `dir` on the cron `schedule`, then removed from the store.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ArchivationRule {
    /// The aggregate type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Versions older than this many days are archived (the newest one too: the object leaves
    /// the store).
    #[schemars(range(min = 0))]
    pub lifetime_days: f64,
    /// When to archive: a cron expression with seconds (`"0 0 0 * * *"`: daily at midnight UTC);
    /// days of the week 0-6 from Sunday 0, as TDG.
    pub schedule: String,
    /// The folder of the archive files (created when missing; relative to the working directory).
    pub dir: String,
    /// A file is closed and a new one begun past this many bytes (default 100 MiB).
    #[serde(default = "default_file_size_threshold")]
    #[schemars(range(min = 1))]
    pub file_size_threshold: u64,
}

fn default_running_count_threshold() -> usize {
    100
}

/// `task_runner`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TaskRunnerConfig {
    /// Past this many task runs at once the runner logs TDG's warning
    /// `Too many running pipelines. Now running N pipelines` (default 100).
    #[serde(default = "default_running_count_threshold")]
    #[schemars(range(min = 1))]
    pub running_count_threshold: usize,
}

impl Default for TaskRunnerConfig {
    fn default() -> Self {
        Self { running_count_threshold: default_running_count_threshold() }
    }
}

/// Whether a service is a GraphQL query or mutation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// A field of the `Query` root (the default).
    #[default]
    Query,
    /// A field of the `Mutation` root.
    Mutation,
}

/// One service (TDG's `services` section).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ServiceConfig {
    /// `query` (default) or `mutation`.
    #[serde(default, rename = "type")]
    pub kind: ServiceKind,
    /// Description shown in the GraphQL schema.
    #[serde(default)]
    pub doc: Option<String>,
    /// The pipeline or function called with the arguments as a map (`param.user_id`).
    pub function: String,
    /// What the function returns: `string`, `int`, `long`, `double`, `boolean`, `any` (any JSON),
    /// the name of a model type, or `[T]` for a list of T.
    pub return_type: String,
    /// Arguments: name -> type (the same forms as `return_type`, model types excluded).
    #[serde(default)]
    pub args: IndexMap<String, String>,
}

/// `connector`: inputs, outputs and the routing from routing keys to outputs.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ConnectorSection {
    /// Inputs receiving objects.
    #[serde(default)]
    pub input: Vec<InputConfig>,
    /// Outputs objects can be routed to.
    #[serde(default)]
    pub output: Vec<OutputConfig>,
    /// Routing key -> output. Keys without a route go to the input processor.
    #[serde(default)]
    pub routing: Vec<ConnectorRoute>,
}

/// One connector route.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ConnectorRoute {
    /// The routing key set by the input pipeline.
    pub key: String,
    /// Name of an output in `connector.output`.
    pub output: String,
}

fn default_max_in_flight() -> usize {
    10_000
}

/// `input_processor`: classifiers, routing pipelines and storage by routing key.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct InputProcessorSection {
    /// Classifiers, tried in order until one sets a routing key; objects none of them classifies
    /// get `__unclassified__`. Without classifiers the routing key of the input pipeline is kept.
    #[serde(default)]
    pub classifiers: Vec<Classifier>,
    /// Routing key -> pipeline that prepares the object for storage.
    #[serde(default)]
    pub routing: Vec<ProcessorRoute>,
    /// Routing key -> aggregate type the object is stored as.
    #[serde(default)]
    pub storage: Vec<StorageRoute>,
    /// Script worker threads (default: the number of cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub workers: Option<usize>,
    /// Objects accepted but not yet processed, at most; past it inputs answer 503 / pause.
    #[serde(default = "default_max_in_flight")]
    #[schemars(range(min = 1))]
    pub max_in_flight: usize,
}

impl Default for InputProcessorSection {
    fn default() -> Self {
        Self {
            classifiers: Vec::new(),
            routing: Vec::new(),
            storage: Vec::new(),
            workers: None,
            max_in_flight: default_max_in_flight(),
        }
    }
}

impl InputProcessorSection {
    /// Script worker threads: as configured, else the number of cores.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

/// One classifier.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Classifier {
    /// Name, for logs.
    pub name: String,
    /// Pipeline that sets `param.routing_key` and returns `param`.
    pub pipeline: String,
}

/// One routing entry of the input processor.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ProcessorRoute {
    /// Routing key.
    pub key: String,
    /// Pipeline returning `#{obj: ..., routing_key: "..."}`.
    pub pipeline: String,
}

/// One storage entry of the input processor.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StorageRoute {
    /// Routing key.
    pub key: String,
    /// Aggregate type in the model.
    #[serde(rename = "type")]
    pub type_name: String,
}

fn default_max_attempts_shown() -> usize {
    20
}

/// `repair_queue`: how failed objects are kept.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RepairQueueSection {
    /// How many past attempts an entry keeps in its history (older ones are dropped).
    #[serde(default = "default_max_attempts_shown")]
    #[schemars(range(min = 1))]
    pub history_size: usize,
    /// What happens when an object lands in the repair queue, by the routing key it failed with
    /// (`__unclassified__` included).
    #[serde(default)]
    pub on_object_added: IndexMap<String, OnObjectAdded>,
}

/// `repair_queue.on_object_added.<routing_key>`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct OnObjectAdded {
    /// Hand the object (as received) to the output processor under this key too, in the commit
    /// that records its first failure.
    pub postprocess_with_routing_key: String,
}

impl Default for RepairQueueSection {
    fn default() -> Self {
        Self { history_size: default_max_attempts_shown(), on_object_added: IndexMap::new() }
    }
}

fn default_starts_with() -> i64 {
    1
}

fn default_range_width() -> i64 {
    100
}

/// `sequence_generator`: numbers handed out by `sequence::next` and `auto_increment`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SequenceGenerator {
    /// First number of a new sequence.
    #[serde(default = "default_starts_with")]
    pub starts_with: i64,
    /// Numbers reserved on disk at a time; after a crash up to this many may be skipped, never repeated.
    #[serde(default = "default_range_width")]
    #[schemars(range(min = 1))]
    pub range_width: i64,
}

impl Default for SequenceGenerator {
    fn default() -> Self {
        Self { starts_with: default_starts_with(), range_width: default_range_width() }
    }
}
