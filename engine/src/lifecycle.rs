//! The data lifecycle: expiration (TDG's `expiration`) and archiving (`archivation`) of stored
//! versions, in the background, in bounded batches.
//!
//! One actor on its own thread (`ferrogrid-expire`, under a [`Supervisor`]) looks at its rules
//! every second — those of the active configuration version, with the expiration settings an
//! operator set through the API in their place — and runs the passes that are due: an
//! expiration pass every `delay_sec`, an archive pass at each slot of its cron `schedule`. A
//! pass goes through the type's stored versions one batch of [`BATCH`] per commit and pauses as
//! long as the batch took, so ingest keeps the write lock at least half the time.
//!
//! - Expiration removes versions older than `lifetime_hours` (the newest one too: an object
//!   whose newest version is that old expires as a whole, as in TDG) and, per object, the
//!   versions beyond the newest `keep_version_count`. It never removes an object's newest live
//!   version for `keep_version_count`.
//! - Archiving writes the versions older than `lifetime_days` to `.jsonl` files in `dir` (one
//!   version a line, `{"Type": {...}, "version": N, "deleted": false}`, files named
//!   `YYYY-MM-DDTHH:MM:SS.jsonl` and rotated past `file_size_threshold`), syncs the file, and only
//!   then removes them, in the commit that read them. A crash between the two leaves them in the
//!   store, and the next pass writes them again: versions are archived at least once.

use crate::actors::{guarded, restart_delay, ActorName, NamedArbiter};
use crate::config::{ArchivationRule, ExpirationRule};
use crate::metrics::metrics;
use crate::processor::Processor;
use crate::storage::expire::{self, Cursor, Found};
use crate::storage::{Db, Keyspace, ReadView, StorageError};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stored versions read per commit.
pub const BATCH: usize = 500;
/// How often the rules and the clock are looked at.
const TICK: Duration = Duration::from_secs(1);
const NS_PER_HOUR: f64 = 3_600_000_000_000.0;

/// Meta key prefix of the expiration settings set through the API.
const OVERRIDE: &[u8] = b"expiration/";

/// An expiration rule in force and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveRule {
    /// The rule.
    #[serde(flatten)]
    pub rule: ExpirationRule,
    /// `config` (the active configuration) or `api` (set by an operator; it wins).
    pub source: &'static str,
}

/// The expiration rules in force: the configuration's, with those set through the API in their
/// place, by type.
pub fn expiration_rules(db: &Db, config: &[ExpirationRule]) -> Result<Vec<EffectiveRule>, StorageError> {
    let mut out: Vec<EffectiveRule> =
        config.iter().map(|r| EffectiveRule { rule: r.clone(), source: "config" }).collect();
    for item in db.scan_prefix(Keyspace::Meta, OVERRIDE) {
        let (_, value) = item?;
        let rule: ExpirationRule =
            serde_json::from_slice(&value).map_err(|e| StorageError::Corrupt(format!("an expiration setting: {e}")))?;
        out.retain(|r| r.rule.type_name != rule.type_name);
        out.push(EffectiveRule { rule, source: "api" });
    }
    out.sort_by(|a, b| a.rule.type_name.cmp(&b.rule.type_name));
    Ok(out)
}

/// Set the expiration of `rule.type_name` (until [`cleanup_expiration`]; it outlives restarts
/// and configuration applies).
pub fn set_expiration(db: &Db, rule: &ExpirationRule) -> Result<(), StorageError> {
    let bytes = serde_json::to_vec(rule).map_err(|e| StorageError::user(e.to_string()))?;
    db.write(|tx| {
        tx.insert(Keyspace::Meta, &[OVERRIDE, rule.type_name.as_bytes()].concat(), bytes);
        Ok::<_, StorageError>(())
    })
}

/// Forget the expiration set for `type_name` through the API (the configuration's rule, if
/// any, applies again); whether there was one.
pub fn cleanup_expiration(db: &Db, type_name: &str) -> Result<bool, StorageError> {
    let key = [OVERRIDE, type_name.as_bytes()].concat();
    db.write(|tx| {
        let had = tx.get(Keyspace::Meta, &key)?.is_some();
        tx.remove(Keyspace::Meta, &key);
        Ok::<_, StorageError>(had)
    })
}

/// The archive files of one pass: appended to, synced after each batch, rotated by size.
struct ArchiveWriter {
    dir: PathBuf,
    threshold: u64,
    file: Option<(std::fs::File, u64)>,
}

impl ArchiveWriter {
    fn new(rule: &ArchivationRule) -> ArchiveWriter {
        ArchiveWriter { dir: PathBuf::from(&rule.dir), threshold: rule.file_size_threshold, file: None }
    }

    /// A new file named after now (a suffix when that name is taken).
    fn open(&mut self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        for n in 0..1000 {
            let name = if n == 0 { format!("{stamp}.jsonl") } else { format!("{stamp}-{n}.jsonl") };
            match std::fs::OpenOptions::new().create_new(true).append(true).open(self.dir.join(&name)) {
                Ok(file) => {
                    // The new name is durable before anything in it counts.
                    std::fs::File::open(&self.dir)?.sync_all()?;
                    self.file = Some((file, 0));
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free archive file name"))
    }

    /// Append `found` (versions of `type_name`), a new file each time one passes the size
    /// threshold, and sync every file written to.
    fn write(&mut self, type_name: &str, found: &[Found]) -> std::io::Result<()> {
        for f in found {
            let mut line = serde_json::Map::new();
            line.insert(type_name.to_string(), f.object.clone());
            line.insert("version".into(), f.version.into());
            line.insert("deleted".into(), f.deleted.into());
            let mut bytes = serde_json::to_vec(&serde_json::Value::Object(line))?;
            bytes.push(b'\n');
            if self.file.as_ref().is_none_or(|(_, size)| *size >= self.threshold) {
                if let Some((full, _)) = self.file.take() {
                    full.sync_data()?;
                }
                self.open()?;
            }
            let Some((file, size)) = self.file.as_mut() else { return Err(std::io::Error::other("no archive file")) };
            file.write_all(&bytes)?;
            *size += bytes.len() as u64;
        }
        match &self.file {
            Some((file, _)) => file.sync_data(),
            None => Ok(()),
        }
    }
}

enum Kind {
    Expire(ExpirationRule),
    Archive(ArchiveWriter, ArchivationRule),
}

/// A pass over one type in progress.
struct Pass {
    type_name: String,
    kind: Kind,
    cursor: Cursor,
    /// Versions older than this (nanoseconds since the epoch) go; fixed when the pass began.
    before: Option<u64>,
    removed: u64,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

struct LifecycleActor {
    who: ActorName,
    engine: Arc<Processor>,
    /// When each type's next expiration pass is due.
    expire_due: HashMap<String, (ExpirationRule, Instant)>,
    /// When each type's next archive pass is due.
    archive_due: HashMap<String, (ArchivationRule, Option<DateTime<Utc>>)>,
    passes: Vec<Pass>,
    stopped: bool,
    restarts: u32,
}

impl Actor for LifecycleActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify_later(Tick, restart_delay(self.restarts));
    }
}

impl Supervised for LifecycleActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.restarts += 1;
        // A pass starts over (removing is idempotent; an archive may write some versions again).
        self.passes.clear();
        tracing::warn!(restarts = self.restarts, "data lifecycle actor restarting");
    }
}

fn now_ns() -> u64 {
    u64::try_from(Utc::now().timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0)
}

impl LifecycleActor {
    /// Take the rules in force; start the passes that are due.
    fn plan(&mut self) -> Result<(), StorageError> {
        let rt = self.engine.runtime();
        let rules = expiration_rules(&rt.db, &rt.config.expiration)?;
        let now = Instant::now();
        self.expire_due.retain(|t, _| rules.iter().any(|r| &r.rule.type_name == t));
        // A rule new to this actor (at a start, or changed) runs a first pass at once.
        for EffectiveRule { rule, .. } in rules {
            let entry = self.expire_due.entry(rule.type_name.clone()).or_insert_with(|| (rule.clone(), now));
            if entry.0 != rule {
                *entry = (rule.clone(), now);
            }
        }
        let utc = Utc::now();
        self.archive_due.retain(|t, _| rt.config.archivation.iter().any(|r| &r.type_name == t));
        for rule in &rt.config.archivation {
            let next = || crate::config::schedule::parse(&rule.schedule).ok().and_then(|s| s.after(&utc).next());
            let entry = self.archive_due.entry(rule.type_name.clone()).or_insert_with(|| (rule.clone(), next()));
            if &entry.0 != rule {
                *entry = (rule.clone(), next());
            }
        }
        // A pass under a rule that changed or went stops: the new rule (if any) starts its own.
        let (expire_due, archive_due) = (&self.expire_due, &self.archive_due);
        self.passes.retain(|p| {
            let current = match &p.kind {
                Kind::Expire(rule) => expire_due.get(&p.type_name).is_some_and(|(r, _)| r == rule),
                Kind::Archive(_, rule) => archive_due.get(&p.type_name).is_some_and(|(r, _)| r == rule),
            };
            if !current {
                tracing::info!(type_name = %p.type_name, removed = p.removed, "a data lifecycle pass stopped: its rule changed");
            }
            current
        });
        let busy = |passes: &[Pass], t: &str| passes.iter().any(|p| p.type_name == t);
        for (type_name, (rule, due)) in self.expire_due.iter_mut() {
            if *due <= now && !busy(&self.passes, type_name) {
                let delay = Duration::from_secs(rule.delay_sec);
                *due = now.checked_add(delay).unwrap_or(now + Duration::from_secs(315_360_000));
                let before = (rule.lifetime_hours > 0.0)
                    .then(|| expire::older_than(now_ns(), (rule.lifetime_hours * NS_PER_HOUR) as u64));
                self.passes.push(Pass {
                    type_name: type_name.clone(),
                    kind: Kind::Expire(rule.clone()),
                    cursor: Cursor::default(),
                    before,
                    removed: 0,
                });
            }
        }
        for (type_name, (rule, due)) in self.archive_due.iter_mut() {
            if due.is_some_and(|d| d <= utc) && !busy(&self.passes, type_name) {
                *due = crate::config::schedule::parse(&rule.schedule).ok().and_then(|s| s.after(&utc).next());
                let before = expire::older_than(now_ns(), (rule.lifetime_days * 24.0 * NS_PER_HOUR) as u64);
                self.passes.push(Pass {
                    type_name: type_name.clone(),
                    kind: Kind::Archive(ArchiveWriter::new(rule), rule.clone()),
                    cursor: Cursor::default(),
                    before: Some(before),
                    removed: 0,
                });
            }
        }
        Ok(())
    }

    /// One batch of the first pass; how long to wait before the next look.
    fn work(&mut self) -> Duration {
        if let Err(e) = self.plan() {
            tracing::error!(error = %e, "reading the expiration settings failed");
        }
        let Some(pass) = self.passes.first_mut() else { return TICK };
        let rt = self.engine.runtime();
        let started = Instant::now();
        let before = pass.before;
        let type_name = pass.type_name.clone();
        let repository = rt.repository.clone();
        let spec_of = move || repository.spec_of(&type_name);
        let type_name = pass.type_name.clone();
        let result = match &mut pass.kind {
            Kind::Expire(rule) => {
                let keep = rule.keep_version_count;
                let select =
                    move |f: &Found| before.is_some_and(|b| f.version < b) || keep.is_some_and(|n| f.rank >= n.max(1));
                let ranks = keep.map_or(1, |n| n.max(1));
                expire::step(&rt.db, &spec_of, &mut pass.cursor, BATCH, ranks, &select, &mut |_| Ok(()))
            }
            Kind::Archive(writer, _) => {
                let select = move |f: &Found| before.is_some_and(|b| f.version < b);
                expire::step(&rt.db, &spec_of, &mut pass.cursor, BATCH, 1, &select, &mut |found| {
                    writer.write(&type_name, found).map_err(|e| {
                        StorageError::Io(std::io::Error::new(e.kind(), format!("writing the archive: {e}")))
                    })
                })
            }
        };
        match result {
            Ok(step) => {
                self.restarts = 0;
                pass.removed += step.removed;
                let counter = match pass.kind {
                    Kind::Expire(_) => &metrics().expired_versions,
                    Kind::Archive(..) => &metrics().archived_versions,
                };
                counter.with_label_values(&[&pass.type_name]).inc_by(step.removed);
                if step.done {
                    let what = if matches!(pass.kind, Kind::Expire(_)) { "expired" } else { "archived" };
                    if pass.removed > 0 {
                        tracing::info!(r#type = %pass.type_name, versions = pass.removed, "{what} stored versions");
                    }
                    self.passes.remove(0);
                }
                started.elapsed()
            }
            Err(e) => {
                tracing::error!(r#type = %pass.type_name, error = %e, "an expiration or archive batch failed; the pass starts over at its next slot");
                self.passes.remove(0);
                TICK
            }
        }
    }
}

impl Handler<Tick> for LifecycleActor {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        if self.stopped {
            return;
        }
        let who = self.who.clone();
        guarded(&who, self, ctx, |act, ctx| {
            let wait = act.work();
            ctx.notify_later(Tick, wait);
        });
    }
}

impl Handler<Stop> for LifecycleActor {
    type Result = ();

    fn handle(&mut self, _: Stop, _: &mut Self::Context) {
        self.stopped = true;
    }
}

/// The data lifecycle actor's address and thread.
pub struct Lifecycle {
    addr: Addr<LifecycleActor>,
    arbiter: NamedArbiter,
}

impl Lifecycle {
    /// Start expiring and archiving by `engine`'s rules.
    pub fn start(engine: Arc<Processor>) -> std::io::Result<Lifecycle> {
        let arbiter = NamedArbiter::start("ferrogrid-expire")?;
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| LifecycleActor {
            who: ActorName { kind: "lifecycle", name: "expiration".into() },
            engine,
            expire_due: HashMap::new(),
            archive_due: HashMap::new(),
            passes: Vec::new(),
            stopped: false,
            restarts: 0,
        });
        Ok(Lifecycle { addr, arbiter })
    }

    /// Stop after the batch in progress and end the thread.
    pub async fn stop(&self) {
        if let Err(e) = self.addr.send(Stop).await {
            tracing::warn!(error = %e, "the data lifecycle actor was gone before it stopped");
        }
        self.arbiter.stop();
    }
}
