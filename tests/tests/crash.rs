//! Crash test: clients post Users to the library sample while the server is SIGKILLed at random
//! moments and restarted, at least 20 times. Afterwards every acknowledged (HTTP 200) object is
//! stored or waiting in the repair queue (nothing lost), no object is stored twice, and every
//! restart reopened the database.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrogrid_tests::{Client, Server};
use rand::Rng;
use serde_json::{json, Value};

/// Objects posted in all.
const TOTAL: i64 = 5_000;
/// Client threads (each with its own keep-alive connection pool).
const CLIENTS: usize = 8;
/// Kills the run must include.
const MIN_KILLS: u64 = 20;
/// Ids a client may take per completed kill: id `n` waits until `(kills + 1) * IDS_PER_KILL >= n`,
/// so the posting cannot finish before `MIN_KILLS` kills happened.
const IDS_PER_KILL: i64 = 240;

#[derive(Default)]
struct Shared {
    next_id: AtomicI64,
    kills: AtomicU64,
    clients_done: AtomicUsize,
    abort: AtomicBool,
}

#[derive(Default)]
struct Outcome {
    acked: Vec<i64>,
    /// Transport errors (server killed mid-request, connection refused while down).
    unacked: Vec<i64>,
    /// Answers other than 200: (id, status, body).
    refused: Vec<(i64, u16, String)>,
}

fn user(id: i64) -> Value {
    json!({"id": id, "username": format!("user-{id}")})
}

/// `user(id)` as stored: the model's optional `phones` is null.
fn stored_user(id: i64) -> Value {
    json!({"id": id, "username": format!("user-{id}"), "phones": null})
}

/// Waits until `/health` answers 200 again (the killer restarts the server).
fn wait_healthy(health: &Client, shared: &Shared) {
    let started = Instant::now();
    while !shared.abort.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
        if matches!(health.try_get("/health"), Ok(r) if r.status == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run_client(client: Client, health: Client, shared: &Shared, out: &Mutex<Outcome>) {
    let mut local = Outcome::default();
    loop {
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        if id > TOTAL || shared.abort.load(Ordering::SeqCst) {
            break;
        }
        while id > (shared.kills.load(Ordering::SeqCst) as i64 + 1) * IDS_PER_KILL {
            if shared.abort.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // One attempt per object: a failure is recorded and the client moves on, so a stored
        // duplicate can never come from a client retry.
        match client.try_post_json("/http", &user(id)) {
            Ok(r) if r.status == 200 => local.acked.push(id),
            Ok(r) => {
                local.refused.push((id, r.status, r.body));
                if r.status == 503 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Err(_) => {
                local.unacked.push(id);
                wait_healthy(&health, shared);
            }
        }
    }
    shared.clients_done.fetch_add(1, Ordering::SeqCst);
    let mut out = out.lock().expect("outcome lock");
    out.acked.extend(local.acked);
    out.unacked.extend(local.unacked);
    out.refused.extend(local.refused);
}

#[test]
fn sigkill_during_load_loses_nothing_and_stores_nothing_twice() {
    let mut server = Server::start("samples/library");
    let shared = Shared::default();
    let outcome = Mutex::new(Outcome::default());
    let mut restart_failure: Option<String> = None;
    let started = Instant::now();

    let clients: Vec<(Client, Client)> = (0..CLIENTS)
        .map(|_| (server.client(), Client::with_timeout(&server.base_url(), None, Duration::from_secs(2))))
        .collect();

    std::thread::scope(|scope| {
        for (client, health) in clients {
            let (shared, outcome) = (&shared, &outcome);
            scope.spawn(move || run_client(client, health, shared, outcome));
        }
        // The killer: SIGKILL 50-400 ms after each successful start, then start again.
        let mut rng = rand::rng();
        while shared.clients_done.load(Ordering::SeqCst) < CLIENTS {
            std::thread::sleep(Duration::from_millis(rng.random_range(50..=400)));
            if shared.clients_done.load(Ordering::SeqCst) == CLIENTS {
                break;
            }
            server.kill();
            if let Err(e) = server.try_restart() {
                restart_failure = Some(format!("{e:#}"));
                shared.abort.store(true, Ordering::SeqCst);
                break;
            }
            shared.kills.fetch_add(1, Ordering::SeqCst);
        }
    });
    let posting_time = started.elapsed();
    if let Some(e) = restart_failure {
        panic!("the database did not reopen after kill #{}: {e}", shared.kills.load(Ordering::SeqCst) + 1);
    }

    // Final crash and restart: unfinished entries (In Progress, or New without an error) are
    // processed at start; entries that failed (New with an error) wait for an operator.
    server.kill();
    server.restart();
    let restarts = server.starts() - 1;
    let settle_started = Instant::now();
    let entries = loop {
        let entries = server.repair_entries("");
        let pending: Vec<&Value> = entries
            .iter()
            .filter(|e| e["status"] == "In Progress" || (e["status"] == "New" && e["error"].is_null()))
            .collect();
        if pending.is_empty() {
            break entries;
        }
        if settle_started.elapsed() > Duration::from_secs(90) {
            panic!(
                "after 90 s, {} repair-queue entries are still unprocessed, first: {:?}",
                pending.len(),
                &pending[..pending.len().min(5)]
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let in_repair: BTreeMap<i64, String> = entries
        .iter()
        .filter_map(|e| {
            let id = e["payload"]["id"].as_i64()?;
            Some((id, format!("{} {}", e["status"], e["error"])))
        })
        .collect();

    let check = server.client();
    let mut stored = BTreeSet::new();
    let mut twice = Vec::new();
    let mut wrong = Vec::new();
    for id in 1..=TOTAL {
        let items = check.data("User", &format!("id={id}&all_versions=true"));
        if items.is_empty() {
            continue;
        }
        stored.insert(id);
        if items.len() != 1 {
            twice.push((id, items.len()));
        }
        if items[0]["object"] != stored_user(id) {
            wrong.push((id, items[0]["object"].clone()));
        }
    }

    let out = outcome.into_inner().expect("outcome");
    let lost: Vec<i64> =
        out.acked.iter().copied().filter(|id| !stored.contains(id) && !in_repair.contains_key(id)).collect();
    let acked_in_repair = out.acked.iter().filter(|id| in_repair.contains_key(id)).count();
    println!(
        "crash test: posted {TOTAL} in {posting_time:?}: acked {}, unacked (transport error) {}, \
         refused (non-200) {}, stored {}, acked but in repair {acked_in_repair}, \
         repair entries {}, restarts {restarts} (kills during load {})",
        out.acked.len(),
        out.unacked.len(),
        out.refused.len(),
        stored.len(),
        entries.len(),
        shared.kills.load(Ordering::SeqCst)
    );

    assert!(
        shared.kills.load(Ordering::SeqCst) >= MIN_KILLS,
        "only {} kills during the load",
        shared.kills.load(Ordering::SeqCst)
    );
    assert_eq!(out.acked.len() + out.unacked.len() + out.refused.len(), TOTAL as usize, "every object was posted once");
    assert!(!out.acked.is_empty(), "no object was acknowledged at all");
    let odd: Vec<_> = out.refused.iter().filter(|(_, s, _)| *s != 503).take(10).collect();
    assert!(odd.is_empty(), "answers other than 200 / 503: {odd:?}");
    assert!(
        lost.is_empty(),
        "{} acknowledged objects lost (neither stored nor in the repair queue), first: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert!(twice.is_empty(), "objects stored more than once: {twice:?}");
    assert!(wrong.is_empty(), "objects stored with other content: {wrong:?}");
    // Valid Users: an acknowledged one kept in the repair queue (with the error a kill made)
    // is not lost, but not processed either.
    let parked: Vec<_> = out.acked.iter().filter_map(|id| in_repair.get_key_value(id)).take(10).collect();
    assert_eq!(acked_in_repair, 0, "acknowledged Users kept in the repair queue, first: {parked:?}");
}
