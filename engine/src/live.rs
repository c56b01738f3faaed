//! Live configuration: applying a new configuration version while the engine runs.
//!
//! An apply (an upload, a rollback, or `ferrogrid run FOLDER` over a data directory that ran
//! another configuration) goes: the files are loaded and checked as `ferrogrid check` does, with
//! the model's migration plan over the stored data; the new version's runtime is built next to
//! the active one (scripts compiled, changed outputs connected); then the engine switches while
//! no object is in flight ([`Processor::switch`]: objects in flight finish on their version, the
//! next ones take the new one), the stored indexes' catalog moves to the new model in the same
//! moment and the version is recorded; then the parts that run by themselves take the new
//! version: HTTP/SOAP inputs answer with its settings, Kafka inputs whose settings changed
//! reconnect (unchanged ones keep their group membership), tasks are rescheduled, the output
//! processor restarts if its settings changed, new indexes are built, the GraphQL schema is
//! rebuilt. One apply at a time; a refused apply changes nothing.

use crate::config::{self, Files, Loaded};
use crate::http::GraphqlSchemas;
use crate::index_builder::IndexBuilder;
use crate::output::OutputProcessor;
use crate::processor::{Processor, ProcessorIntake, SwitchError};
use crate::runtime::Runtime;
use crate::scheduler::Scheduler;
use crate::storage::catalog::{Plan, Unlinked};
use crate::storage::config_versions::{self, Changes, VersionInfo};
use actix_web::{web, HttpRequest, HttpResponse};
use arc_swap::{ArcSwap, ArcSwapOption};
use ferrogrid_connectors::http::HttpInput;
use ferrogrid_connectors::intake::{Accepted, BoxFuture, IntakeError, Received, Wait};
use ferrogrid_connectors::soap::SoapInput;
use ferrogrid_connectors::{InputConfig, Intake, Running};
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a switch waits for the objects in flight.
const SWITCH_WAIT: Duration = Duration::from_secs(30);

/// Settings that a running engine keeps until its next start.
const AT_NEXT_START: [(&str, &str); 4] = [
    ("input_processor", "workers"),
    ("input_processor", "max_in_flight"),
    ("repair_queue", "history_size"),
    ("jobs", "max_jobs_in_parallel"),
];

/// Why an apply changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The configuration has problems (each names its key path): 422.
    #[error("the configuration has problems:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// No such version (rollback): 404.
    #[error("no configuration version {0}")]
    NoVersion(u64),
    /// No unlinked type of that name: 404.
    #[error("no unlinked type \"{0}\"")]
    NoType(String),
    /// The type is in the active model: 409.
    #[error("type \"{0}\" is in the active model; only unlinked types are truncated or dropped here")]
    Linked(String),
    /// The engine could not switch now (objects in flight did not finish; shutting down): 503.
    #[error("{0}")]
    Busy(String),
    /// Storage failed: 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::storage::StorageError> for ApplyError {
    fn from(e: crate::storage::StorageError) -> Self {
        ApplyError::Internal(e.to_string())
    }
}

/// How a configuration came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// `ferrogrid run FOLDER` at a start.
    Start,
    /// An upload (`PUT /admin/api/config`, `ferrogrid apply`).
    Upload,
    /// A rollback to an older version.
    Rollback(u64),
}

impl How {
    fn text(self) -> String {
        match self {
            How::Start => "start".into(),
            How::Upload => "upload".into(),
            How::Rollback(v) => format!("rollback to {v}"),
        }
    }
}

/// The answer of an apply.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The active version now.
    pub version: u64,
    /// The configuration was the active one already: nothing was done.
    pub unchanged: bool,
    /// Files added, removed, changed.
    pub changed: Changes,
    /// Top-level sections whose values changed.
    pub sections_changed: Vec<String>,
    /// What the model change does to the stored data.
    pub migration: Plan,
    /// Settings that changed but take effect at the next start.
    pub at_next_start: Vec<String>,
    /// Milliseconds the apply took, and how long the engine was paused for the switch.
    pub took_ms: u64,
    /// Milliseconds no new object was taken while the switch waited and happened.
    pub paused_ms: u64,
    /// Only checked (`?dry_run=true`): nothing was applied.
    pub dry_run: bool,
    /// Files given that config.yml does not include (not part of the configuration).
    pub ignored: Vec<String>,
    /// What failed after the switch (the version is applied): an input that did not start, ...
    pub warnings: Vec<String>,
}

/// The intake of a Kafka input with `token_name`: each message is accepted only while that
/// token may post (`Security::may_post_as`); otherwise `Refused`, and the input tries again.
struct TokenChecked {
    inner: Arc<dyn Intake>,
    security: Arc<crate::security::Security>,
    token: String,
}

impl Intake for TokenChecked {
    fn accept(&self, received: Received, wait: Wait) -> BoxFuture<Result<Accepted, IntakeError>> {
        if let Err(reason) = self.security.may_post_as(&self.token, chrono::Utc::now()) {
            return Box::pin(async move { Err(IntakeError::Refused(reason)) });
        }
        self.inner.accept(received, wait)
    }
}

/// The HTTP and SOAP inputs of the active version (their routes are the server's for its whole
/// life; each request is answered by the input of the version active then) and the Kafka inputs
/// that fetch by themselves.
pub struct Inputs {
    intake: Arc<dyn Intake>,
    security: Arc<crate::security::Security>,
    http: ArcSwapOption<web::Data<HttpInput>>,
    soap: ArcSwapOption<web::Data<SoapInput>>,
    fetching: tokio::sync::Mutex<Vec<(InputConfig, Box<dyn Running>)>>,
}

impl Inputs {
    fn new(engine: &Arc<Processor>, security: Arc<crate::security::Security>) -> Inputs {
        Inputs {
            intake: Arc::new(ProcessorIntake(engine.clone())),
            security,
            http: ArcSwapOption::empty(),
            soap: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Answer requests with the inputs of `inputs` (the first of each kind; the configuration
    /// check allows one).
    fn answer_with(&self, inputs: &[InputConfig]) {
        let http = inputs.iter().find_map(|i| match i {
            InputConfig::Http(c) => Some(Arc::new(web::Data::new(HttpInput::new(c.clone(), self.intake.clone())))),
            _ => None,
        });
        let soap = inputs.iter().find_map(|i| match i {
            InputConfig::Soap(c) => Some(Arc::new(web::Data::new(SoapInput::new(c.clone(), self.intake.clone())))),
            _ => None,
        });
        self.http.store(http);
        self.soap.store(soap);
    }

    /// Fetch with the Kafka inputs of `inputs`: one whose settings did not change goes on (its
    /// group membership too); a changed or removed one stops (its acceptances and offset commits
    /// finish first); a new or changed one starts.
    async fn fetch_with(&self, inputs: &[InputConfig]) -> Result<(), String> {
        let mut fetching = self.fetching.lock().await;
        let same = |a: &InputConfig, b: &InputConfig| serde_json::to_value(a).ok() == serde_json::to_value(b).ok();
        let mut kept = Vec::new();
        for (config, running) in fetching.drain(..) {
            if inputs.iter().any(|i| same(i, &config)) {
                kept.push((config, running));
            } else {
                tracing::info!(input = config.name(), "stopping an input the new configuration changed or removed");
                running.stop().await;
            }
        }
        let mut failed = Vec::new();
        for config in inputs {
            if kept.iter().any(|(c, _)| same(c, config)) || !matches!(config, InputConfig::Kafka(_)) {
                continue;
            }
            let intake = match config {
                InputConfig::Kafka(kafka) => match &kafka.token_name {
                    Some(token) => {
                        if let Err(reason) = self.security.may_post_as(token, chrono::Utc::now()) {
                            tracing::warn!(
                                input = config.name(),
                                reason = %reason,
                                "the input's token_name may not post: its messages wait until it may (create or unblock the token)"
                            );
                        }
                        Arc::new(TokenChecked {
                            inner: self.intake.clone(),
                            security: self.security.clone(),
                            token: token.clone(),
                        }) as Arc<dyn Intake>
                    }
                    None => self.intake.clone(),
                },
                _ => self.intake.clone(),
            };
            let input = config.build(intake);
            // One input that does not start does not keep the others from starting.
            match input.start() {
                Ok(Some(running)) => kept.push((config.clone(), running)),
                Ok(None) => {}
                Err(e) => failed.push(format!("connector.input: {}: {e}", config.name())),
            }
        }
        *fetching = kept;
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("\n"))
        }
    }

    /// Stop the inputs that fetch by themselves (a shutdown).
    pub async fn stop(&self) {
        for (_, running) in self.fetching.lock().await.drain(..) {
            running.stop().await;
        }
    }

    /// The routes of the inputs that answer requests: `POST /http`, `POST /soap`, `GET /soap`.
    pub fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/http", web::post().to(post_http))
            .route("/soap", web::post().to(post_soap))
            .route("/soap", web::get().to(get_soap));
    }
}

fn no_input() -> HttpResponse {
    crate::http::error(actix_web::http::StatusCode::NOT_FOUND, "no such endpoint")
}

async fn post_http(req: HttpRequest, payload: web::Payload, live: web::Data<Arc<Live>>) -> HttpResponse {
    match live.inputs.http.load_full() {
        Some(input) => ferrogrid_connectors::http::post_http(req, payload, (*input).clone()).await,
        None => no_input(),
    }
}

async fn post_soap(req: HttpRequest, payload: web::Payload, live: web::Data<Arc<Live>>) -> HttpResponse {
    match live.inputs.soap.load_full() {
        Some(input) => ferrogrid_connectors::soap::post_soap(req, payload, (*input).clone()).await,
        None => no_input(),
    }
}

async fn get_soap(req: HttpRequest, live: web::Data<Arc<Live>>) -> HttpResponse {
    match live.inputs.soap.load_full() {
        Some(input) => ferrogrid_connectors::soap::get_wsdl(req, (*input).clone()).await,
        None => no_input(),
    }
}

/// The engine's parts that a new configuration version changes, and the apply itself.
pub struct Live {
    /// Tokens, users, roles and sessions.
    security: Arc<crate::security::Security>,
    /// The arbiter applies run on (the system's, which lives as long as the engine): the Kafka
    /// consumers and output actors an apply starts belong there, not to an HTTP worker.
    home: actix_rt::ArbiterHandle,
    engine: Arc<Processor>,
    scheduler: Arc<Scheduler>,
    /// The GraphQL schemas of the active version.
    pub graphql: ArcSwap<GraphqlSchemas>,
    /// The inputs.
    pub inputs: Inputs,
    outputs: tokio::sync::Mutex<Option<OutputProcessor>>,
    index_builder: tokio::sync::Mutex<Option<IndexBuilder>>,
    lifecycle: tokio::sync::Mutex<Option<crate::lifecycle::Lifecycle>>,
    notifier: tokio::sync::Mutex<Option<crate::notifier::Notifier>>,
    /// One apply at a time.
    applying: tokio::sync::Mutex<()>,
    /// The background deletion of removed indexes' entries: `(running, asked again)`. An apply
    /// that asks while one runs makes it go round once more before it ends.
    dropping: Arc<Mutex<(bool, bool)>>,
}

impl Live {
    /// The live parts of `engine`, answering with the active version's inputs; nothing fetches
    /// or builds until [`Live::start`]. Call on the system's arbiter.
    pub fn new(
        engine: Arc<Processor>,
        scheduler: Arc<Scheduler>,
        security: Arc<crate::security::Security>,
    ) -> Result<Arc<Live>, String> {
        let rt = engine.runtime();
        let graphql = crate::http::graphql_schemas(&engine, &scheduler)?;
        let mapped = crate::security::ldap::mapped_roles(&rt.config.ldap);
        for problem in security.missing_roles(&mapped) {
            tracing::warn!(problem = %problem, "an LDAP group maps to a role that does not exist: its users sign in with no rights until it does");
        }
        security.set_config_roles(mapped);
        let inputs = Inputs::new(&engine, security.clone());
        inputs.answer_with(&rt.config.connector.input);
        Ok(Arc::new(Live {
            security,
            home: actix_rt::Arbiter::current(),
            engine,
            scheduler,
            graphql: ArcSwap::from_pointee(graphql),
            inputs,
            outputs: tokio::sync::Mutex::new(None),
            index_builder: tokio::sync::Mutex::new(None),
            lifecycle: tokio::sync::Mutex::new(None),
            notifier: tokio::sync::Mutex::new(None),
            applying: tokio::sync::Mutex::new(()),
            dropping: Arc::new(Mutex::new((false, false))),
        }))
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Processor> {
        &self.engine
    }

    /// Start what runs by itself: the index builder, the output processor, the Kafka inputs (on
    /// the current arbiter, which must live as long as the engine: the system's).
    pub async fn start(&self) -> anyhow::Result<()> {
        // An apply that came in meanwhile waits: it must not start parts twice.
        let _one = self.applying.lock().await;
        let rt = self.engine.runtime();
        *self.index_builder.lock().await = Some(IndexBuilder::start(rt.repository.clone())?);
        // Expiration and archiving follow the active version's rules by themselves.
        *self.lifecycle.lock().await = Some(crate::lifecycle::Lifecycle::start(self.engine.clone())?);
        // Repair-queue notices (the noting was switched on before the engine was ready).
        *self.notifier.lock().await = Some(crate::notifier::Notifier::start(self.engine.clone()));
        *self.outputs.lock().await = Some(OutputProcessor::start(self.engine.clone()));
        self.inputs.fetch_with(&rt.config.connector.input).await.map_err(|e| anyhow::anyhow!(e))?;
        self.drop_removed_indexes();
        Ok(())
    }

    /// Stop what runs by itself (the first steps of a shutdown): index builder, Kafka inputs,
    /// output processor.
    pub async fn stop(&self) {
        let _one = self.applying.lock().await;
        if let Some(builder) = self.index_builder.lock().await.take() {
            builder.stop().await;
        }
        if let Some(lifecycle) = self.lifecycle.lock().await.take() {
            lifecycle.stop().await;
        }
        if let Some(notifier) = self.notifier.lock().await.take() {
            notifier.stop().await;
        }
        self.inputs.stop().await;
        if let Some(outputs) = self.outputs.lock().await.take() {
            outputs.stop().await;
        }
    }

    /// Delete the entries of indexes the model removed, on a thread of its own.
    fn drop_removed_indexes(&self) {
        let db = self.engine.runtime().db.clone();
        let state = self.dropping.clone();
        {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            if s.0 {
                s.1 = true;
                return;
            }
            *s = (true, false);
        }
        let shared = state.clone();
        let spawned = std::thread::Builder::new().name("ferrogrid-drop".into()).spawn(move || loop {
            match crate::storage::catalog::drop_removed(&db) {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "deleted the entries of indexes the model no longer has"),
                Err(e) => {
                    tracing::error!(error = %e, "deleting removed indexes' entries failed; it goes on at the next start or apply");
                }
            }
            let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if !s.1 {
                s.0 = false;
                return;
            }
            s.1 = false;
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "starting the deletion of removed indexes failed");
            *state.lock().unwrap_or_else(PoisonError::into_inner) = (false, false);
        }
    }

    /// Types with stored data that the active model does not have.
    pub fn unlinked(&self) -> Result<Vec<Unlinked>, ApplyError> {
        let rt = self.engine.runtime();
        let model = rt.repository.model();
        Ok(crate::storage::catalog::unlinked(&rt.db, |name| model.get(name).is_some())?)
    }

    /// Truncate (`drop == false`) or drop an unlinked type: how many keys went. Refused for a
    /// type of the active model; no apply runs meanwhile.
    pub async fn clear_unlinked(&self, type_name: &str, drop: bool) -> Result<u64, ApplyError> {
        let _one = self.applying.lock().await;
        let rt = self.engine.runtime();
        if rt.repository.model().get(type_name).is_some() {
            return Err(ApplyError::Linked(type_name.to_string()));
        }
        let db = rt.db.clone();
        let name = type_name.to_string();
        let (check_db, check_name) = (db.clone(), name.clone());
        let known = tokio::task::spawn_blocking(move || crate::storage::catalog::is_cataloged(&check_db, &check_name))
            .await
            .map_err(|e| ApplyError::Internal(e.to_string()))??;
        if !known {
            return Err(ApplyError::NoType(name));
        }
        let deleted = tokio::task::spawn_blocking(move || crate::storage::catalog::truncate(&db, &name, drop))
            .await
            .map_err(|e| ApplyError::Internal(e.to_string()))??;
        rt.db.sync_async().await?;
        tracing::info!(r#type = type_name, drop, deleted, "cleared an unlinked type");
        Ok(deleted)
    }

    /// The versions recorded, oldest first, and the active one.
    pub fn versions(&self) -> Result<(Option<u64>, Vec<VersionInfo>), ApplyError> {
        let db = &self.engine.runtime().db;
        Ok((config_versions::active(db)?, config_versions::list(db)?))
    }

    /// The files and record of `version`.
    pub fn version(&self, version: u64) -> Result<(VersionInfo, Files), ApplyError> {
        let db = &self.engine.runtime().db;
        match (config_versions::info(db, version)?, config_versions::files(db, version)?) {
            (Some(info), Some(files)) => Ok((info, files)),
            _ => Err(ApplyError::NoVersion(version)),
        }
    }

    /// Apply the files of an older version again (with every check of an upload).
    pub async fn rollback(self: &Arc<Self>, version: u64, by: &str, dry_run: bool) -> Result<Applied, ApplyError> {
        let (_, files) = self.version(version)?;
        self.apply(files, How::Rollback(version), by, dry_run).await
    }

    /// Apply `files` as the next configuration version (see the module docs); `dry_run` checks
    /// and plans only. It runs on the engine's home arbiter, whoever asks.
    pub async fn apply(
        self: &Arc<Self>,
        files: Files,
        how: How,
        by: &str,
        dry_run: bool,
    ) -> Result<Applied, ApplyError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let (me, by) = (self.clone(), by.to_string());
        let spawned = self.home.spawn(async move {
            let applied = me.apply_here(files, how, &by, dry_run).await;
            // Whatever happened, the roles held are the active configuration's.
            me.security.set_config_roles(crate::security::ldap::mapped_roles(&me.engine.runtime().config.ldap));
            let _ = reply.send(applied);
        });
        if !spawned {
            return Err(ApplyError::Busy("the engine is shutting down".into()));
        }
        answer.await.map_err(|_| ApplyError::Busy("the engine is shutting down".into()))?
    }

    async fn apply_here(&self, files: Files, how: How, by: &str, dry_run: bool) -> Result<Applied, ApplyError> {
        let began = Instant::now();
        let _one = self.applying.lock().await;
        let current = self.engine.runtime();
        let offered: Vec<String> = files.keys().cloned().collect();
        let loaded = config::load_files(files)
            .map_err(|errors| ApplyError::Invalid(errors.0.iter().map(|e| e.to_string()).collect()))?;
        for warning in &loaded.warnings {
            tracing::warn!(by, "{warning}");
        }
        let changed = Changes::between(&current.files, &loaded.files);
        let ignored: Vec<String> = offered.into_iter().filter(|name| !loaded.files.contains_key(name)).collect();
        let sections_changed = sections_changed(&current.sections, &loaded.sections);
        if config::checksum(&loaded.files) == current.checksum {
            return Ok(Applied {
                version: current.version,
                unchanged: true,
                changed,
                sections_changed,
                migration: Plan::default(),
                at_next_start: Vec::new(),
                took_ms: began.elapsed().as_millis() as u64,
                paused_ms: 0,
                dry_run,
                ignored,
                warnings: Vec::new(),
            });
        }
        if how != How::Start {
            let mut problems = locked_problems(&current, &loaded);
            // LDAP groups map to roles that exist (at start they may not yet: created after).
            // The new mapping's roles are held from now (with the old one's) so that none is
            // deleted between this check and the switch; `apply` narrows it again.
            let mapped = crate::security::ldap::mapped_roles(&loaded.config.ldap);
            let mut held = crate::security::ldap::mapped_roles(&current.config.ldap);
            held.extend(mapped.iter().cloned());
            self.security.set_config_roles(held);
            problems.extend(self.security.missing_roles(&mapped));
            if !problems.is_empty() {
                return Err(ApplyError::Invalid(problems));
            }
        }
        let version = config_versions::next_number(&current.db)?;
        let base = current.clone();
        let next = tokio::task::spawn_blocking(move || base.prepare_next(&loaded, version))
            .await
            .map_err(|e| ApplyError::Internal(e.to_string()))?
            .map_err(ApplyError::Invalid)?;
        let at_next_start = at_next_start(&current.sections, &next.runtime.sections);
        let migration = next.plan.clone();
        let mut applied = Applied {
            version,
            unchanged: false,
            changed,
            sections_changed,
            migration,
            at_next_start,
            took_ms: 0,
            paused_ms: 0,
            dry_run,
            ignored,
            warnings: Vec::new(),
        };
        if dry_run {
            applied.version = current.version;
            applied.took_ms = began.elapsed().as_millis() as u64;
            return Ok(applied);
        }
        let info = VersionInfo {
            version,
            checksum: next.runtime.checksum.clone(),
            applied_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            applied_by: by.to_string(),
            how: how.text(),
            changed: applied.changed.clone(),
            sections_changed: applied.sections_changed.clone(),
        };
        // A type stored before the catalog existed that the model brings back: its old entries go
        // now (nothing uses them), so the switch only has to build.
        let db = current.db.clone();
        let specs = next.specs().clone();
        let cleared = tokio::task::spawn_blocking(move || crate::storage::catalog::clear_uncataloged(&db, &specs))
            .await
            .map_err(|e| ApplyError::Internal(e.to_string()))??;
        if !cleared.is_empty() {
            tracing::info!(types = ?cleared, "deleted the index entries of types stored before the index catalog");
        }
        // The index builder must not record progress under the old catalog after the switch.
        let builder = self.index_builder.lock().await.take();
        if let Some(builder) = &builder {
            builder.stop().await;
        }
        let paused = Instant::now();
        let rt = next.runtime.clone();
        // The catalog, the repository and the version's record move together, or not at all.
        let switched = self
            .engine
            .switch(rt.clone(), SWITCH_WAIT, || {
                next.migrate(|tx| config_versions::record_in(tx, &info, &rt.files)).map(|_| ())
            })
            .await;
        applied.paused_ms = paused.elapsed().as_millis() as u64;
        match IndexBuilder::start(self.engine.runtime().repository.clone()) {
            Ok(b) => *self.index_builder.lock().await = Some(b),
            Err(e) => tracing::error!(error = %e, "restarting the index builder failed"),
        }
        match switched {
            Ok(()) => {}
            Err(SwitchError::Busy(wait)) => {
                return Err(ApplyError::Busy(format!(
                    "the objects in flight did not finish within {} s; nothing changed, try again",
                    wait.as_secs()
                )))
            }
            Err(SwitchError::Draining) => return Err(ApplyError::Busy("the engine is shutting down".into())),
            Err(SwitchError::During(e)) => return Err(ApplyError::Internal(format!("nothing changed: {e}"))),
        }
        // Switched: from here on everything follows the new version, whatever fails.
        tracing::info!(version, how = %how.text(), by, files_changed = ?applied.changed, "applied a new configuration version");
        applied.warnings = self.follow(&current, &rt).await;
        if let Err(e) = rt.db.sync_async().await {
            applied.warnings.push(format!("flushing the version's record failed (it is applied): {e}"));
        }
        for warning in &applied.warnings {
            tracing::error!(version, warning = %warning, "the new configuration is applied with a problem");
        }
        applied.took_ms = began.elapsed().as_millis() as u64;
        Ok(applied)
    }

    /// After a switch from `old` to `new`: the parts that run by themselves take the new
    /// version, those that answer requests first. What failed, for the answer.
    async fn follow(&self, old: &Runtime, new: &Runtime) -> Vec<String> {
        let mut warnings = Vec::new();
        // The new version's repair queue notes new entries when someone is subscribed.
        if let Err(e) = crate::notifier::refresh(&self.engine) {
            warnings.push(format!("reading the notifier settings failed: {e}"));
        }
        // First: sessions opened under the old mapping must not outlive it.
        self.security.set_config_roles(crate::security::ldap::mapped_roles(&new.config.ldap));
        if new.section_changed(old, "ldap") {
            // Its groups may map to other roles now: LDAP users sign in again.
            match self.security.end_ldap_sessions() {
                Ok(ended) => tracing::info!(ended, "the ldap section changed: LDAP users' sessions ended"),
                Err(e) => warnings.push(format!("ending the LDAP users' sessions failed: {e}")),
            }
        }
        self.inputs.answer_with(&new.config.connector.input);
        match crate::http::graphql_schemas(&self.engine, &self.scheduler) {
            Ok(schemas) => self.graphql.store(Arc::new(schemas)),
            Err(e) => warnings.push(format!("the GraphQL schema of the new configuration: {e}")),
        }
        if let Err(e) = self.inputs.fetch_with(&new.config.connector.input).await {
            warnings.push(format!("starting an input of the new configuration failed: {e}"));
        }
        if new.section_changed(old, "tasks") || new.section_changed(old, "task_runner") {
            let threshold = new.config.task_runner.running_count_threshold;
            if let Err(e) = self.scheduler.reconfigure(new.config.tasks.clone(), threshold).await {
                warnings.push(format!("rescheduling the tasks of the new configuration failed: {e}"));
            }
        }
        if new.section_changed(old, "output_processor") || new.section_changed(old, "connector") {
            let mut outputs = self.outputs.lock().await;
            if let Some(running) = outputs.take() {
                running.stop().await;
            }
            *outputs = Some(OutputProcessor::start(self.engine.clone()));
        }
        self.drop_removed_indexes();
        warnings
    }
}

/// Top-level sections whose values differ.
fn sections_changed(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let keys = |v: &serde_json::Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let mut all = keys(old);
    all.extend(keys(new));
    all.sort();
    all.dedup();
    all.into_iter().filter(|k| old.get(k) != new.get(k)).collect()
}

/// Settings that changed but wait for the next start.
fn at_next_start(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    AT_NEXT_START
        .iter()
        .filter(|(section, key)| {
            let pick = |v: &serde_json::Value| {
                let s = v.get(section).cloned();
                if key.is_empty() {
                    s
                } else {
                    s.and_then(|s| s.get(key).cloned())
                }
            };
            pick(old) != pick(new)
        })
        .map(|(section, key)| if key.is_empty() { section.to_string() } else { format!("{section}.{key}") })
        .collect()
}

/// Sections the active configuration locks that `next` changes (an upload may not).
fn locked_problems(current: &Runtime, next: &Loaded) -> Vec<String> {
    let mut problems = Vec::new();
    let locked = &current.config.locked_sections;
    for section in locked {
        if current.sections.get(section) != next.sections.get(section) {
            problems.push(format!(
                "{section}: the section is locked (locked_sections); an upload cannot change it, a start with `ferrogrid run FOLDER` can"
            ));
        }
    }
    if !locked.is_empty() && current.sections.get("locked_sections") != next.sections.get("locked_sections") {
        problems.push(
            "locked_sections: the list of locked sections is locked itself; a start with `ferrogrid run FOLDER` can change it"
                .to_string(),
        );
    }
    problems
}
