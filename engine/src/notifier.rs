//! Repair-queue notifications (TDG 2.8.1, the `notifier` section): when objects enter the
//! repair queue, the subscribers get one mail per `interval_seconds` at most, telling how many
//! came and the first errors, with a link to the repair queue — never one mail per object.
//!
//! While someone is subscribed, the commit that puts a new entry into the repair queue also
//! writes a short note of it (`Keyspace::Notify`). Every `interval_seconds` the notifier reads
//! the notes, mails one summary to every subscriber, and only once the SMTP server took the mail
//! removes the notes it told of: a mail server that is down delays the mail, and the next one
//! counts what the failed one would have. The notes are in storage, so a restart (or another
//! instance sharing it) mails what was not mailed yet.
//!
//! The settings are the configuration's, or those an operator set through
//! `PUT /admin/api/notifier` (kept in storage, in their place until `DELETE`).

use crate::config::{MailServer, NotifierSection};
use crate::processor::Processor;
use crate::storage::{Db, Keyspace, ReadView, StorageError};
use ferrogrid_connectors::smtp::{url_with_login, SmtpOutput, SmtpOutputConfig};
use ferrogrid_connectors::{Outgoing, Output};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Meta key of the settings set through the API.
const OVERRIDE: &[u8] = b"notifier/settings";
/// Errors quoted in one mail.
const QUOTED: usize = 5;
/// Notes removed per commit after a mail.
const REMOVE_BATCH: usize = 1000;
/// How often the notifier looks at the clock and the settings.
const TICK: Duration = Duration::from_secs(1);

/// The settings in force and where they come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effective {
    /// The settings.
    #[serde(flatten)]
    pub settings: NotifierSection,
    /// `config` (the active configuration) or `api` (set by an operator; it wins).
    pub source: &'static str,
}

/// The settings in force: an operator's, else the configuration's.
pub fn settings(db: &Db, configured: &NotifierSection) -> Result<Effective, StorageError> {
    match db.get(Keyspace::Meta, OVERRIDE)? {
        Some(bytes) => {
            let settings = serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::Corrupt(format!("the stored notifier settings: {e}")))?;
            Ok(Effective { settings, source: "api" })
        }
        None => Ok(Effective { settings: configured.clone(), source: "config" }),
    }
}

/// Set the settings over the configuration's (`None`: back to the configuration's).
pub fn set_override(db: &Db, settings: Option<&NotifierSection>) -> Result<(), StorageError> {
    db.write(|tx| {
        match settings {
            Some(s) => tx.insert(Keyspace::Meta, OVERRIDE, serde_json::to_vec(s).unwrap_or_default()),
            None => tx.remove(Keyspace::Meta, OVERRIDE),
        }
        Ok::<_, StorageError>(())
    })?;
    db.sync()
}

/// Problems of settings an operator sends (the configuration's are checked at load).
pub fn check(settings: &NotifierSection) -> Result<(), String> {
    if settings.interval_seconds == 0 {
        return Err("interval_seconds: at least 1".into());
    }
    for (i, user) in settings.users.iter().enumerate() {
        // The address alone: the name goes in `name` (the mail says `"name" <addr>`).
        if user.addr.contains(['<', '>', '"', ',']) || user.addr.chars().any(char::is_whitespace) {
            return Err(format!(
                "users[{i}].addr: \"{}\": the address only (name@host); the name goes in name",
                user.addr
            ));
        }
    }
    if let Some(server) = &settings.mail_server {
        if !(0.001..=3600.0).contains(&server.timeout) {
            return Err("mail_server.timeout: from 0.001 to 3600 seconds".into());
        }
        let host = server.url.split_once("://").map_or(server.url.as_str(), |(_, rest)| rest);
        if host.trim_start_matches('/').is_empty() || host.starts_with(':') {
            return Err(format!("mail_server.url: \"{}\" names no host", server.url));
        }
    }
    let addrs: Vec<String> = settings.users.iter().map(|u| u.addr.clone()).collect();
    let server = settings.mail_server.clone().unwrap_or(MailServer {
        url: "smtp://localhost".into(),
        from: "ferrogrid@localhost".into(),
        username: None,
        password: None,
        timeout: 5.0,
        skip_verify_host: false,
    });
    // Checked without the login: problems are printed and answered, the password never.
    let config = smtp_config(&MailServer { username: None, password: None, ..server }, &addrs);
    match config.validate().first() {
        Some(problem) if problem.field.starts_with("to[") => {
            let i = problem.field.trim_start_matches("to[").trim_end_matches(']');
            Err(format!("users[{i}].addr: {}", problem.message))
        }
        Some(problem) => Err(format!("mail_server.{}: {}", problem.field, problem.message)),
        None => Ok(()),
    }
}

/// Whether mails go out with `settings`: a mail server and someone to tell.
fn active(settings: &NotifierSection) -> bool {
    settings.mail_server.is_some() && !settings.users.is_empty()
}

/// Take the settings in force: new repair-queue entries are noted while someone is
/// subscribed. Answers them.
pub fn refresh(engine: &Processor) -> Result<Effective, StorageError> {
    let rt = engine.runtime();
    let effective = settings(&rt.db, &rt.config.notifier)?;
    rt.repair.set_notifying(active(&effective.settings));
    Ok(effective)
}

/// TDG writes `url: 127.0.0.1:2525` and a `from` that is not always an address: the SMTP
/// output's configuration for `server`, mailing `to`.
fn smtp_config(server: &MailServer, to: &[String]) -> SmtpOutputConfig {
    let mut url = if server.url.contains("://") { server.url.clone() } else { format!("smtp://{}", server.url) };
    if let Some(user) = server.username.as_deref().filter(|u| !u.is_empty()) {
        // A URL that cannot carry a login stays as it is: the check names what is wrong with it.
        if let Ok(with_login) = url_with_login(&url, user, server.password.as_deref()) {
            url = with_login;
        }
    }
    let from =
        if server.from.contains('@') { server.from.clone() } else { format!("{} <ferrogrid@localhost>", server.from) };
    SmtpOutputConfig {
        name: "notifier".into(),
        url,
        from,
        to: to.to_vec(),
        subject: "Ferrogrid: new objects in the repair queue".into(),
        timeout: server.timeout,
        ssl_cert: None,
        ssl_key: None,
        skip_verify_host: server.skip_verify_host,
    }
}

/// The notes of entries not told of yet: how many, the first ones (quoted in the mail) and the
/// last one's key (the notes told of are those up to it; a note committed meanwhile comes after
/// it, notes being keyed in the order of their commits). Held in memory whatever their number (a
/// mail server down for a day while failures pour in).
struct Notes {
    count: usize,
    first: Vec<Value>,
    last: Option<Vec<u8>>,
}

fn notes(db: &Db) -> Result<Notes, StorageError> {
    let (mut count, mut first, mut last) = (0, Vec::new(), None);
    for item in db.scan_prefix(Keyspace::Notify, &[]) {
        let (key, value) = item?;
        if first.len() < QUOTED {
            first.push(crate::storage::from_stored(&value).unwrap_or(Value::Null));
        }
        count += 1;
        last = Some(key.to_vec());
    }
    Ok(Notes { count, first, last })
}

/// Remove the notes up to `last`, a batch a commit.
fn remove(db: &Db, last: Option<&[u8]>) -> Result<(), StorageError> {
    let Some(last) = last else { return Ok(()) };
    loop {
        let mut batch = Vec::with_capacity(REMOVE_BATCH);
        for item in db.scan_prefix(Keyspace::Notify, &[]) {
            let (key, _) = item?;
            if key.as_ref() > last || batch.len() >= REMOVE_BATCH {
                break;
            }
            batch.push(key.to_vec());
        }
        if batch.is_empty() {
            break;
        }
        db.write(|tx| {
            for key in &batch {
                tx.remove(Keyspace::Notify, key);
            }
            Ok::<_, StorageError>(())
        })?;
    }
    // Durable now: a crash after this does not mail them again.
    db.sync()
}

/// The mail telling of `count` new entries, quoting `first`.
fn mail(count: usize, first: &[Value], link: Option<&str>, to: Vec<String>) -> Value {
    let mut body = format!(
        "{count} object{} entered the repair queue since the last notice.\n\n",
        if count == 1 { "" } else { "s" }
    );
    if !first.is_empty() {
        body.push_str(if count > first.len() { "The first ones:\n" } else { "They are:\n" });
        for note in first {
            let text = |k: &str| note[k].as_str().unwrap_or("-").to_string();
            body.push_str(&format!(
                "- {} (input {}, routing key {}, stage {}) at {}: {}\n",
                text("id"),
                text("input"),
                text("routing_key"),
                text("stage"),
                text("at"),
                text("error")
            ));
        }
        body.push('\n');
    }
    let path = "/admin/#/repair";
    match link {
        Some(base) => body.push_str(&format!("The repair queue: {}{path}\n", base.trim_end_matches('/'))),
        None => body.push_str(&format!("The repair queue is on the web UI's page {path}\n")),
    }
    let subject = format!("Ferrogrid: {count} new object{} in the repair queue", if count == 1 { "" } else { "s" });
    json!({"to": to, "subject": subject, "body": body})
}

/// One pass: mail what the notes tell, then remove them. Answers how many were told of.
async fn pass(engine: Arc<Processor>, settings: NotifierSection) -> Result<usize, String> {
    let db = engine.runtime().db.clone();
    let read = db.clone();
    let Notes { count, first, last } = tokio::task::spawn_blocking(move || notes(&read))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if count == 0 {
        return Ok(0);
    }
    let Some(server) = settings.mail_server.as_ref().filter(|_| active(&settings)) else {
        // Nobody to tell any more: the notes go.
        tokio::task::spawn_blocking(move || remove(&db, last.as_deref()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        return Ok(0);
    };
    let to: Vec<String> = settings
        .users
        .iter()
        .map(|u| {
            let name: String =
                u.name.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '<' | '>')).collect();
            format!("\"{name}\" <{}>", u.addr)
        })
        .collect();
    let output = SmtpOutput::new(smtp_config(server, &to)).map_err(|e| e.to_string())?;
    output
        .send(Outgoing::new(mail(count, &first, settings.link.as_deref(), to), "notifier"))
        .await
        .map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || remove(&db, last.as_deref()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(count)
}

/// The notifier's task.
pub struct Notifier {
    stop: Arc<tokio::sync::Notify>,
    handle: tokio::task::JoinHandle<()>,
}

impl Notifier {
    /// Start mailing by `engine`'s settings (on the current arbiter).
    pub fn start(engine: Arc<Processor>) -> Notifier {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let handle = actix_rt::spawn(async move {
            let mut last: Option<Instant> = None;
            loop {
                tokio::select! {
                    _ = stopped.notified() => break,
                    _ = tokio::time::sleep(TICK) => {}
                }
                let settings = match refresh(&engine) {
                    Ok(e) => e.settings,
                    Err(e) => {
                        tracing::error!(error = %e, "reading the notifier settings failed");
                        continue;
                    }
                };
                let interval = Duration::from_secs(settings.interval_seconds.max(1));
                if last.is_some_and(|at| at.elapsed() < interval) {
                    continue;
                }
                let passed = tokio::select! {
                    // A mail under way is given up at a stop: its notes stay for the next start.
                    _ = stopped.notified() => break,
                    passed = pass(engine.clone(), settings) => passed,
                };
                match passed {
                    Ok(0) => {}
                    Ok(told) => {
                        last = Some(Instant::now());
                        tracing::info!(entries = told, "mailed a repair-queue notice to the subscribers");
                    }
                    Err(e) => {
                        // Tried again after the interval; the notes stay.
                        last = Some(Instant::now());
                        tracing::error!(error = %e, "mailing the repair-queue notice failed; it is tried again after the interval");
                    }
                }
            }
        });
        Notifier { stop, handle }
    }

    /// Stop (after a mail being sent).
    pub async fn stop(self) {
        self.stop.notify_one();
        if let Err(e) = self.handle.await {
            tracing::warn!(error = %e, "the notifier ended badly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repair::{Entry, Failure, RepairQueue};
    use crate::storage::IntakeLog;

    fn failure() -> Failure {
        Failure {
            stage: "routing",
            function: None,
            routing_key: Some("Parcel".into()),
            error: "boom".into(),
            object: None,
        }
    }

    /// An object just received: in the intake log, not in the queue yet.
    fn fresh(log: &IntakeLog, n: u64) -> Entry {
        let mut entry = RepairQueue::new_entry("http", "http", json!({"Parcel": {"id": n}}));
        let (_, unsettled) = log.append(&mut entry).unwrap();
        entry.unsettled = Some(Arc::new(unsettled));
        entry
    }

    #[test]
    fn a_note_committed_after_the_notes_were_read_is_kept_whatever_its_entrys_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db")).unwrap();
        let queue = RepairQueue::open(db.clone(), 3).unwrap();
        let (log, _) =
            IntakeLog::open(&dir.path().join("wal"), &db, Keyspace::RepairQueue, |tx, e| queue.put_in(tx, e).unwrap())
                .unwrap();
        queue.set_notifying(true);
        // Two objects arrive (ids in that order); the later one fails first.
        let (early, late) = (fresh(&log, 1), fresh(&log, 2));
        assert!(early.id < late.id);
        queue.fail(&late, &failure(), |_, _| Ok(())).unwrap();
        let read = notes(&db).unwrap();
        assert_eq!(read.count, 1);
        // The earlier one fails while the mail telling of the first is under way.
        queue.fail(&early, &failure(), |_, _| Ok(())).unwrap();
        remove(&db, read.last.as_deref()).unwrap();
        let left = notes(&db).unwrap();
        assert_eq!(left.count, 1, "the note written after the read waits for the next mail");
        assert_eq!(left.first[0]["id"], json!(early.id));
        // Across a reopen the notes go on in commit order.
        log.close();
        drop((log, queue, db));
        let db = Db::open(dir.path().join("db")).unwrap();
        let queue = RepairQueue::open(db.clone(), 3).unwrap();
        let (log, _) =
            IntakeLog::open(&dir.path().join("wal2"), &db, Keyspace::RepairQueue, |tx, e| queue.put_in(tx, e).unwrap())
                .unwrap();
        let third = fresh(&log, 3);
        queue.fail(&third, &failure(), |_, _| Ok(())).unwrap();
        let all = notes(&db).unwrap();
        assert_eq!(all.count, 2);
        assert_eq!(
            all.first.iter().map(|n| n["id"].clone()).collect::<Vec<_>>(),
            vec![json!(early.id), json!(third.id)]
        );
        log.close();
    }
}
