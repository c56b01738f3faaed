//! Running the engine: open storage, build the runtime, resume unfinished work, serve HTTP,
//! and drain cleanly on SIGTERM/SIGINT.

use crate::config::{self, Loaded};
use crate::jobs::JobRunner;
use crate::live::Live;
use crate::processor::Processor;
use crate::runtime::{self, Runtime};
use crate::scheduler::Scheduler;
use crate::security::Security;
use crate::storage::config_versions;
use crate::storage::{Db, IntakeLog, Keyspace, StorageConfig};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Options of `ferrogrid run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Config folder or file; `None` runs the data directory's active configuration.
    pub config: Option<PathBuf>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Create a new data directory with compressed storage.
    pub compress_storage: bool,
    /// How long a drain (SIGTERM/SIGINT) may take in all.
    pub drain_timeout: Duration,
}

/// Load and check a configuration: every problem, one per line (empty when valid). When the
/// file has errors, the model and the scripts are still checked from the sections that can be
/// read, so one run lists everything.
pub fn check(target: &Path) -> Checked {
    match config::load(target) {
        Ok(loaded) => Checked { problems: runtime::check(&loaded.config), warnings: loaded.warnings },
        Err(errors) => {
            let mut problems: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
            if let Ok(value) = config::read(target) {
                for problem in runtime::check(&config::lenient(&value)) {
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
            }
            Checked { problems, warnings: Vec::new() }
        }
    }
}

/// What `ferrogrid check` found.
#[derive(Debug, Default)]
pub struct Checked {
    /// What keeps the configuration from loading.
    pub problems: Vec<String>,
    /// What loads but is read differently from TDG, or not at all (see `config::tdg`).
    pub warnings: Vec<String>,
}

fn load(target: &Path) -> anyhow::Result<Loaded> {
    let loaded =
        config::load(target).map_err(|e| anyhow::anyhow!("invalid configuration {}:\n{e}", target.display()))?;
    for warning in &loaded.warnings {
        tracing::warn!(config = %target.display(), "{warning}");
    }
    Ok(loaded)
}

/// SIGTERM and SIGINT, listened for from the very start so that a signal during start-up is
/// not fatal: it is answered by a drain as soon as the engine is up.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn wait(&mut self) -> anyhow::Result<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => Ok("SIGTERM"),
                _ = self.int.recv() => Ok("SIGINT"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await?;
            Ok("Ctrl-C")
        }
    }
}

/// The configuration to run and how it relates to the data directory's versions: the folder
/// given (recorded as a new version when it differs from the active one), or the active one.
struct Chosen {
    loaded: Loaded,
    /// The active version, when `loaded` is it.
    active: Option<u64>,
    /// Where it came from, for the log.
    source: String,
}

fn choose(options: &RunOptions, db: &Db) -> anyhow::Result<Chosen> {
    let active = config_versions::active(db).context("reading the active configuration version")?;
    match &options.config {
        Some(path) => {
            let loaded = load(path)?;
            let same = match active {
                Some(version) => config_versions::info(db, version)?
                    .is_some_and(|info| info.checksum == config::checksum(&loaded.files)),
                None => false,
            };
            Ok(Chosen { loaded, active: active.filter(|_| same), source: path.display().to_string() })
        }
        None => {
            let Some(version) = active else {
                anyhow::bail!(
                    "the data directory {} has no configuration yet: run a configuration folder (ferrogrid run FOLDER)",
                    options.data_dir.display()
                );
            };
            let files = config_versions::files(db, version)?
                .with_context(|| format!("configuration version {version} has no files in the store"))?;
            let loaded = config::load_files(files)
                .map_err(|e| anyhow::anyhow!("the active configuration (version {version}) is invalid:\n{e}"))?;
            Ok(Chosen { loaded, active: Some(version), source: format!("version {version} from the data directory") })
        }
    }
}

/// Record `rt`'s configuration as its version (it differs from the active one, `before`).
fn record_start(rt: &Runtime, before: Option<u64>) -> anyhow::Result<()> {
    let db = rt.db.clone();
    let previous = match before {
        Some(v) => config_versions::files(&db, v)?.unwrap_or_default(),
        None => config::Files::new(),
    };
    let previous_sections = match config::load_files(previous.clone()) {
        Ok(loaded) => loaded.sections,
        Err(_) => serde_json::Value::Null,
    };
    let version = rt.version;
    let keys = |v: &serde_json::Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let mut sections = keys(&previous_sections);
    sections.extend(keys(&rt.sections));
    sections.sort();
    sections.dedup();
    let info = config_versions::VersionInfo {
        version,
        checksum: rt.checksum.clone(),
        applied_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        applied_by: "ferrogrid run".into(),
        how: "start".into(),
        changed: config_versions::Changes::between(&previous, &rt.files),
        sections_changed: sections.into_iter().filter(|k| previous_sections.get(k) != rt.sections.get(k)).collect(),
    };
    db.write(|tx| config_versions::record_in(tx, &info, &rt.files))?;
    db.sync()?;
    tracing::info!(version, files_changed = ?info.changed, "recorded the configuration as a new version");
    Ok(())
}

/// Every minute, remove the audit entries `audit_log.remove_older_than_n_hours` no longer keeps.
fn spawn_audit_retention(audit: Arc<crate::security::audit::AuditLog>) {
    actix_rt::spawn(async move {
        loop {
            actix_rt::time::sleep(Duration::from_secs(60)).await;
            audit.flush_refusals(Some(chrono::Utc::now()));
            let log = audit.clone();
            match actix_web::web::block(move || log.expire(chrono::Utc::now())).await {
                Ok(Ok(0)) => {}
                Ok(Ok(removed)) => tracing::info!(removed, "removed old audit-log entries"),
                Ok(Err(e)) => tracing::error!(error = %e, "removing old audit-log entries failed"),
                Err(e) => tracing::error!(error = %e, "the audit-log retention pass did not run"),
            }
        }
    });
}

/// Run until SIGTERM/SIGINT; returns after a clean drain.
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    let mut signals = Signals::listen()?;
    if let Some(path) = &options.config {
        // A configuration folder that does not load is reported before the store is opened.
        load(path)?;
    }
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("creating the data directory {}", options.data_dir.display()))?;
    let storage = StorageConfig { compression: options.compress_storage, ..StorageConfig::default() };
    let db = Db::open_with(options.data_dir.join("db"), &storage).context("opening the storage")?;
    let security = Arc::new(Security::open(db.clone()).context("reading tokens and roles")?);
    if let Some(path) = crate::security::ensure_admin_token(&security, &options.data_dir)? {
        tracing::info!(path = %path.display(), "created the admin token (use it as: Authorization: Bearer <token>)");
    }
    let chosen = choose(&options, &db)?;
    let sequences = chosen.loaded.config.sequence_generator;
    db.set_sequences(sequences.starts_with, sequences.range_width);
    // The version it runs as: the active one, or the next (recorded once it is built).
    let before = config_versions::active(&db)?;
    let version = match chosen.active {
        Some(version) => version,
        None => config_versions::next_number(&db)?,
    };
    let runtime = Runtime::build(&chosen.loaded, db, version)
        .map_err(|errors| anyhow::anyhow!("invalid configuration {}:\n{}", chosen.source, errors.join("\n")))?;
    if chosen.active.is_none() {
        record_start(&runtime, before)?;
    }
    let repair = runtime.repair.clone();
    let intake_log_dir = options.data_dir.join("intake-log");
    let (intake_log, recovered) = IntakeLog::open(&intake_log_dir, &runtime.db, Keyspace::RepairQueue, |tx, entry| {
        if let Err(e) = repair.put_in(tx, entry) {
            tracing::error!(id = %entry.id, error = %e, "recovering an intake-log record failed");
        }
    })
    .context("opening the intake log")?;
    if recovered > 0 {
        tracing::info!(recovered, "recovered acknowledged objects from the intake log");
        repair.refresh_depth()?;
    }
    let version = runtime.version;
    let engine = Processor::start(runtime, intake_log)?;
    let scheduler = Scheduler::start(engine.clone()).context("starting the task scheduler")?;
    let job_runner = JobRunner::start(engine.clone());
    let live = Live::new(engine.clone(), scheduler.clone(), security.clone()).map_err(|e| anyhow::anyhow!(e))?;
    let audit_engine = engine.clone();
    let audit = Arc::new(
        crate::security::audit::AuditLog::open(
            engine.runtime().db.clone(),
            Box::new(move || audit_engine.runtime().config.audit_log.clone()),
        )
        .context("opening the audit log")?,
    );
    spawn_audit_retention(audit.clone());
    let (handle, server) = crate::http::serve(live.clone(), scheduler.clone(), security, audit.clone(), options.listen)
        .with_context(|| format!("listening on {}", options.listen))?;
    let server_task = actix_rt::spawn(server);
    // Before the first object: failures are noted for the notifier from the start.
    if let Err(e) = crate::notifier::refresh(&engine) {
        tracing::error!(error = %e, "reading the notifier settings failed: no repair-queue notices until they are set again");
    }
    engine.resume()?;
    // Indexes a model change added are built now, in the background; outputs and the inputs
    // that fetch by themselves (Kafka) start. Ready (accepting, /health 200) only once they did:
    // a start that fails here has acknowledged nothing (a Kafka input's messages wait while the
    // engine starts).
    live.start().await?;
    engine.set_ready();
    tracing::info!(listen = %options.listen, config = %chosen.source, version, data_dir = %options.data_dir.display(), "ferrogrid is ready");

    let signal = signals.wait().await?;
    tracing::info!(signal, "draining: refusing new objects, finishing the ones in flight");
    // One deadline for the whole drain: an orchestrator's grace period ends in a SIGKILL, and
    // each step's own wait would add up past it. What the deadline cuts short is durable
    // already and resumes at the next start (objects from the intake log, deliveries and jobs
    // from their queues): sent twice at worst, never lost.
    let deadline = tokio::time::Instant::now() + options.drain_timeout;
    let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
    let wind_down = async {
        engine.stop_accepting();
        live.stop().await;
        scheduler.shutdown().await;
        job_runner.shutdown().await;
        // A second of the budget for closing the workers and the storage after the wait.
        engine.drain(left().saturating_sub(Duration::from_secs(1))).await;
    };
    let in_time = tokio::time::timeout_at(deadline, wind_down).await.is_ok();
    if !in_time {
        tracing::warn!(
            drain_timeout = options.drain_timeout.as_secs(),
            "the drain did not end within --drain-timeout; what is unfinished resumes at the next start"
        );
    }
    for output in engine.runtime().outputs.values().flatten() {
        output.flush(left().min(Duration::from_secs(10)));
    }
    // The server waits for the requests in flight (they end fast now: new objects are refused)
    // within what is left; then it stops without waiting.
    let graceful = in_time && left() > Duration::from_secs(1);
    if !graceful || tokio::time::timeout(left(), handle.stop(true)).await.is_err() {
        handle.stop(false).await;
    }
    let _ = server_task.await;
    // The refusals counted and not told yet, the audit events still queued, then the writes
    // that requests made while the server wound down (admin and GraphQL mutations); the object
    // journal's last events too (the drained objects', the wind-down's actions). A moment each
    // past the deadline: they are what an operator reads about this stop.
    let moment = Duration::from_millis(500);
    audit.flush_refusals(None);
    audit.written_within(left().max(moment));
    engine.runtime().journal.written_within(left().max(moment));
    if let Err(e) = engine.runtime().db.sync() {
        tracing::error!(error = %e, "final flush after the server stopped failed");
    }
    if in_time {
        tracing::info!("stopped cleanly");
    } else {
        tracing::info!("stopped at the drain deadline");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_lists_schema_model_and_script_problems_in_one_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yml"),
            "bogus: 1\ntypes:\n  __file: model.avsc\nfunctions:\n  broken: {__file: broken.rhai}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("model.avsc"),
            r#"[{"name": "User", "type": "record", "logicalType": "Aggregate", "fields": [{"name": "id", "type": "long"}]}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.rhai"), "let a = 1;\nlet = ;\n").unwrap();
        let problems = super::check(dir.path()).problems.join("\n");
        assert!(problems.contains("bogus"), "{problems}");
        assert!(problems.contains("types: User"), "{problems}");
        assert!(problems.contains("functions.broken: broken:2"), "{problems}");
    }

    #[test]
    fn libraries_load_in_the_order_written_and_their_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "config.yml",
            "libraries:\n  zutil: {__file: zutil.rhai}\n  a_helpers: {__file: a.rhai}\nfunctions:\n  f: {__file: f.rhai}\n",
        );
        write("zutil.rhai", "fn twice(x) { x * 2 }\n");
        write("a.rhai", "import \"zutil\" as zutil;\nfn quad(x) { zutil::twice(zutil::twice(x)) }\n");
        write("f.rhai", "import \"a_helpers\" as h;\nh::quad(param)\n");
        assert_eq!(super::check(dir.path()).problems, Vec::<String>::new());

        write("f.rhai", "import \"nolib\" as h;\nh::quad(param)\n");
        let problems = super::check(dir.path()).problems.join("\n");
        assert!(problems.contains("functions.f: f: Module not found: nolib"), "{problems}");
        write("f.rhai", "import \"a_helpers\" as h;\nh::quad(param)\n");

        write("a.rhai", "fn quad(x) { x *\n");
        let problems = super::check(dir.path()).problems.join("\n");
        assert!(problems.starts_with("libraries.a_helpers: a_helpers:"), "{problems}");
        write("config.yml", "sandbox:\n  timeout_ms: 0\n");
        let problems = super::check(dir.path()).problems.join("\n");
        assert!(problems.contains("sandbox.timeout_ms"), "{problems}");
        assert!(!problems.contains("libraries"), "{problems}");
    }
}
