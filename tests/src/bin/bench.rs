//! HTTP ingest and GraphQL read benchmark: how close `POST /http` of `ferrogrid run
//! samples/library` comes to a bare actix-web JSON endpoint on the same machine, and how fast
//! the GraphQL read mix (get by primary key, a relation lookup, a paged scan) runs over the data
//! it stored.
//!
//! `cargo run --release -p ferrogrid-tests --bin bench -- [--seconds N] [--clients C]`
//!
//! For each target it measures (1) the maximum throughput with C closed-loop keep-alive clients
//! posting library User objects for N seconds, with p50/p99 latency, and (2) p99 latency at half
//! that rate with an open-loop paced load (latency counted from the scheduled send time, so a
//! stalled server cannot hide its queueing). It prints one JSON document on stdout; progress
//! goes to stderr. Between the two phases the bench waits until ferrogrid has processed the backlog
//! the closed loop left (`ferrogrid_repair_queue_depth` back to 0; reported as `backlog_drain_s`,
//! and `processed_per_s` = objects of the closed loop / (its duration + the drain time)).
//! Then, on the stored users (plus 100 books and a subscription for each of the first 5,000
//! users), each GraphQL query runs closed-loop for N seconds: `graphql.<query>` has queries/s,
//! p50 and p99, and `ratio_graphql_get_by_pk` = get-by-primary-key queries/s ÷ bare objects/s.
//! Last, `ferrogrid run samples/soap` takes the same users as SOAP 1.1 envelopes on `POST /soap`
//! (same clients, same phases): `ferrogrid_soap`, and `ratio_soap_to_json` = SOAP objects/s ÷
//! JSON objects/s of `ferrogrid_http`.
//! Then `samples/library` again with an output processor replicating every stored user to an
//! HTTP receiver in this process (`POST /hub`): `ferrogrid_replicated` (same phases; ingest
//! objects/s with the deliveries going on), then plain ingest once more
//! (`ferrogrid_http_after_objects_per_s`); `ratio_replicated_to_plain` = replicated objects/s ÷
//! the mean of the plain rates before and after it (target >= 0.7), and `delivery` = p50/p99
//! from the POST of a user to its arrival at the receiver, at half the plain rate.
//! `--quick` leaves out the GraphQL and SOAP phases (for work on the replication path).
//! `--paced N` also measures the p99 at N objects/s, the same load for every build compared.
//! `--wrk` (alias `--ingest-only`) measures with load generators outside this process:
//! `wrk -t1 -c64` against the `bare` binary, then `samples/quickstart` (`{"User": {...}}`, the
//! default step, no scripts), `samples/library` (classifier and routing scripts) and
//! `samples/soap`: throughput, p50/p99, the sustained rate, p50/p99 at half of it (the `openloop`
//! binary), RSS, the ratio to bare; then GraphQL get-by-primary-key and a relation lookup on the
//! library data; and a Markdown table on stderr (compare two builds with `FERROGRID_BIN`). The bare
//! endpoint is the `bare` binary in every mode; the other modes load it with this process's
//! clients.
//! Only loopback; every phase is bounded in time and request count.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::{bail, Context};
use ferrogrid_tests::{metric_value, workspace_root, Client, Server};
use serde_json::{json, Value};

/// Most requests one phase may send, whatever the rate.
const MAX_REQUESTS_PER_PHASE: u64 = 5_000_000;

struct Args {
    seconds: u64,
    clients: usize,
    /// Leave out the GraphQL and SOAP phases (`--quick`).
    quick: bool,
    /// Only the bare endpoint and plain ingest of quickstart and library (`--ingest-only`).
    ingest_only: bool,
    /// Also the p99 at this fixed rate (`--paced N`), so two builds compare at the same load.
    paced: Option<u64>,
    /// Only the model-change phase, over this many stored books (`--model-change N`).
    model_change: Option<u64>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { seconds: 5, clients: 16, quick: false, ingest_only: false, paced: None, model_change: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<u64> {
            let v = it.next().with_context(|| format!("{name} needs a value"))?;
            v.parse::<u64>().with_context(|| format!("{name}: {v:?} is not a number"))
        };
        match a.as_str() {
            "--seconds" => args.seconds = value("--seconds")?.clamp(1, 300),
            "--clients" => args.clients = value("--clients")?.clamp(1, 256) as usize,
            "--quick" => args.quick = true,
            "--wrk" | "--ingest-only" => args.ingest_only = true,
            "--paced" => args.paced = Some(value("--paced")?.clamp(1, 1_000_000)),
            "--model-change" => args.model_change = Some(value("--model-change")?.clamp(1_000, 10_000_000)),
            "-h" | "--help" => {
                eprintln!(
                    "usage: bench [--seconds N (1..300, default 5)] [--clients C (1..256, default 16)] [--quick (no GraphQL and SOAP phases)] [--wrk (every target driven by wrk from outside: bare, quickstart, library, SOAP ingest, GraphQL reads; alias --ingest-only)] [--paced N (also p99 at N objects/s)] [--model-change N (index build over N books, ingest during it, apply times)]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(args)
}

/// Result of one load phase.
#[derive(Default)]
struct Phase {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

impl Phase {
    fn merge(&mut self, other: Phase) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
    }

    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let idx = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[idx] as f64 / 1000.0
    }
}

fn user(id: i64) -> Value {
    json!({"id": id, "username": format!("bench user {id}")})
}

/// Library User `id` as the SOAP 1.1 envelope samples/soap takes.
fn soap_user(id: i64) -> String {
    format!(
        "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>\
         <Connect xmlns=\"urn:ferrogrid:library\"><User><id>{id}</id><username>bench user {id}</username></User>\
         </Connect></soap:Body></soap:Envelope>"
    )
}

/// One request of a load phase: `n` is its sequence number; true when it succeeded.
type Op = dyn Fn(&Client, i64) -> bool + Sync;

/// `POST /http` of library User `n`.
fn ingest_op(client: &Client, n: i64) -> bool {
    matches!(client.try_post_json("/http", &user(n)), Ok(r) if r.status == 200)
}

/// `POST /soap` of library User `n`.
fn soap_ingest_op(client: &Client, n: i64) -> bool {
    matches!(client.try_post_raw("/soap", Some("text/xml; charset=utf-8"), soap_user(n).as_bytes()), Ok(r) if r.status == 200)
}

fn run_one(op: &Op, client: &Client, n: i64, phase: &mut Phase, latency_from: Instant) {
    if op(client, n) {
        phase.ok += 1;
        phase.latencies_us.push(latency_from.elapsed().as_micros() as u64);
    } else {
        phase.errors += 1;
    }
}

/// C clients, each sending the next request as soon as the previous answer is in.
fn closed_loop(target: &Target, op: &Op, clients: usize, dur: Duration, ids: &AtomicI64) -> Phase {
    let sent = AtomicU64::new(0);
    let start = Instant::now();
    let mut total = Phase::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let client = target.client();
                let sent = &sent;
                s.spawn(move || {
                    let mut phase = Phase::default();
                    while start.elapsed() < dur && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS_PER_PHASE {
                        let id = ids.fetch_add(1, Ordering::Relaxed);
                        run_one(op, &client, id, &mut phase, Instant::now());
                    }
                    phase
                })
            })
            .collect();
        for h in handles {
            if let Ok(p) = h.join() {
                total.merge(p);
            }
        }
    });
    total.elapsed = start.elapsed();
    total
}

/// `rate` requests per second in all, spread over C clients on a fixed schedule.
fn open_loop(target: &Target, op: &Op, clients: usize, rate: f64, dur: Duration, ids: &AtomicI64) -> Phase {
    let rate = rate.max(1.0);
    let interval = Duration::from_secs_f64(clients as f64 / rate);
    let hard_stop = dur * 2;
    let start = Instant::now();
    let mut total = Phase::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let client = target.client();
                s.spawn(move || {
                    let mut phase = Phase::default();
                    let offset = interval.mul_f64(i as f64 / clients as f64);
                    let mut k: u32 = 0;
                    loop {
                        let due = start + offset + interval * k;
                        if due.duration_since(start) >= dur || start.elapsed() >= hard_stop {
                            break;
                        }
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        let id = ids.fetch_add(1, Ordering::Relaxed);
                        run_one(op, &client, id, &mut phase, due);
                        k += 1;
                    }
                    phase
                })
            })
            .collect();
        for h in handles {
            if let Ok(p) = h.join() {
                total.merge(p);
            }
        }
    });
    total.elapsed = start.elapsed();
    total
}

/// Where the load goes.
struct Target {
    base: String,
    token: Option<String>,
}

impl Target {
    fn client(&self) -> Client {
        Client::with_timeout(&self.base, self.token.as_deref(), Duration::from_secs(30))
    }

    /// For ferrogrid (the target with a token): waits until `ferrogrid_repair_queue_depth` is 0,
    /// i.e. everything accepted in the closed loop has been processed, so the half-rate phase
    /// does not compete with that backlog. Returns how long it took (`None` for the bare target,
    /// or when the metric is missing or the wait times out).
    fn wait_backlog_drained(&self, limit: Duration) -> Option<Duration> {
        self.token.as_ref()?;
        let client = self.client();
        let start = Instant::now();
        while start.elapsed() < limit {
            let r = client.try_get("/metrics").ok()?;
            let depth = metric_value(&r.body, "ferrogrid_repair_queue_depth", &[])?;
            if depth <= 0.0 {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("backlog not processed within {limit:?}");
        None
    }
}

/// The maximum rate: a warm-up second, then the closed loop for `args.seconds`.
fn max_rate(name: &str, target: &Target, args: &Args, op: &Op, ids: &AtomicI64) -> Phase {
    let dur = Duration::from_secs(args.seconds);
    eprintln!("[{name}] warm-up 1 s");
    closed_loop(target, op, args.clients, Duration::from_secs(1), ids);
    eprintln!("[{name}] closed loop, {} clients, {dur:?}", args.clients);
    let max = closed_loop(target, op, args.clients, dur, ids);
    eprintln!("[{name}] {:.0} objects/s ({} ok, {} errors)", max.rate(), max.ok, max.errors);
    max
}

fn measure(name: &str, target: &Target, args: &Args, op: &Op) -> (Value, i64) {
    let ids = AtomicI64::new(1);
    let dur = Duration::from_secs(args.seconds);
    let mut max = max_rate(name, target, args, op, &ids);
    let rate = max.rate();
    let drain = target.wait_backlog_drained(Duration::from_secs(120));
    if let Some(d) = drain {
        eprintln!("[{name}] backlog processed {d:?} after the closed loop");
    }
    eprintln!("[{name}] open loop at {:.0} objects/s, {dur:?}", rate / 2.0);
    let mut half = open_loop(target, op, args.clients, rate / 2.0, dur, &ids);
    let mut report = json!({
        "objects_per_s": round2(rate),
        "p50_ms": round2(max.percentile_ms(50.0)),
        "p99_ms": round2(max.percentile_ms(99.0)),
        "p99_ms_at_half_rate": round2(half.percentile_ms(99.0)),
        "errors": max.errors + half.errors,
        "objects_at_half_rate_per_s": round2(half.rate()),
    });
    if let Some(d) = drain {
        report["backlog_drain_s"] = round2(d.as_secs_f64());
        report["processed_per_s"] = round2(max.ok as f64 / (max.elapsed + d).as_secs_f64());
    }
    if let Some(paced) = args.paced {
        eprintln!("[{name}] open loop at {paced} objects/s, {dur:?}");
        let mut at = open_loop(target, op, args.clients, paced as f64, dur, &ids);
        report["paced_per_s"] = json!(paced);
        report["p99_ms_at_paced_rate"] = round2(at.percentile_ms(99.0));
        report["errors"] = json!(max.errors + half.errors + at.errors);
    }
    (report, ids.load(Ordering::Relaxed))
}

/// The GraphQL read mix over the library data the ingest phases stored.
const GET_BY_PK: &str = "query($id: Long) { User(id: $id) { id username } }";
const RELATION: &str = "query($id: Long) { User(id: $id) { username subscription { id book { book_name } } } }";
const PAGED_SCAN: &str = "query($from: Long) { User(id_gt: $from, first: 50) { id username } }";

/// A GraphQL query op: 200 with `data` and no `errors`; `vars` gives the variables of request n.
fn graphql_op(query: &'static str, vars: impl Fn(i64) -> Value + Sync) -> impl Fn(&Client, i64) -> bool + Sync {
    move |client, n| match client.try_post_json("/graphql", &json!({"query": query, "variables": vars(n)})) {
        Ok(r) if r.status == 200 => !r.body.contains("\"errors\"") && r.body.contains("\"data\""),
        _ => false,
    }
}

/// Subscriptions for the first `users` users (one each, to one of 100 books), so relation
/// lookups have something to find. Posted by 8 clients, then processed.
fn seed_relations(target: &Target, users: i64) -> anyhow::Result<()> {
    let client = target.client();
    for id in 1..=100 {
        let book = json!({"id": id, "book_name": format!("book {id}"), "author": "bench", "year": 1900 + id});
        client.try_post_json("/http", &book).map_err(|e| anyhow::anyhow!("seeding books: {e}"))?;
    }
    let stored = AtomicU64::new(0);
    std::thread::scope(|s| {
        for k in 0..8 {
            let (client, stored) = (target.client(), &stored);
            s.spawn(move || {
                for n in (1 + k..=users).step_by(8) {
                    let sub = json!({"id": n, "user_id": n, "book_id": 1 + n % 100});
                    if matches!(client.try_post_json("/http", &sub), Ok(r) if r.status == 200) {
                        stored.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    eprintln!("[graphql] seeded 100 books and {} subscriptions", stored.load(Ordering::Relaxed));
    target.wait_backlog_drained(Duration::from_secs(120));
    Ok(())
}

/// Closed-loop queries/s, p50 and p99 of each query of the read mix.
fn measure_graphql(target: &Target, args: &Args, users: i64) -> Value {
    let users = users.max(2);
    let spread = move |n: i64| 1 + (n.wrapping_mul(7919)).rem_euclid(users);
    let get = graphql_op(GET_BY_PK, move |n| json!({"id": spread(n)}));
    let relation = graphql_op(RELATION, move |n| json!({"id": spread(n)}));
    let scan = graphql_op(PAGED_SCAN, move |n| json!({"from": (n * 50).rem_euclid(users)}));
    let mut report = serde_json::Map::new();
    let dur = Duration::from_secs(args.seconds);
    for (name, op) in [("get_by_pk", &get as &Op), ("relation_lookup", &relation), ("paged_scan_50", &scan)] {
        closed_loop(target, op, args.clients, Duration::from_secs(1), &AtomicI64::new(0));
        let mut phase = closed_loop(target, op, args.clients, dur, &AtomicI64::new(0));
        eprintln!("[graphql] {name}: {:.0} queries/s ({} errors)", phase.rate(), phase.errors);
        report.insert(
            name.into(),
            json!({
                "queries_per_s": round2(phase.rate()),
                "p50_ms": round2(phase.percentile_ms(50.0)),
                "p99_ms": round2(phase.percentile_ms(99.0)),
                "errors": phase.errors,
            }),
        );
    }
    Value::Object(report)
}

fn round2(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 100.0).round() / 100.0)
    } else {
        Value::Null
    }
}

/// When each user id reached `POST /hub` (the replication receiver).
fn arrivals() -> &'static Mutex<HashMap<i64, Instant>> {
    static ARRIVALS: OnceLock<Mutex<HashMap<i64, Instant>>> = OnceLock::new();
    ARRIVALS.get_or_init(Mutex::default)
}

/// What the receiver reads of a replicated user.
#[derive(serde::Deserialize)]
struct Delivered {
    id: i64,
}

async fn hub(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<Delivered>(&body).map(|d| d.id) {
        Ok(id) => {
            arrivals().lock().unwrap_or_else(|e| e.into_inner()).entry(id).or_insert_with(Instant::now);
            HttpResponse::Ok().finish()
        }
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

/// `samples/library` with its users replicated to `POST {bare}/hub`: ingest throughput, and the
/// delivery latency (POST to arrival) at half of `plain_rate`.
fn measure_replicated(bin: &std::path::Path, hub: &str, args: &Args, plain_rate: f64) -> anyhow::Result<Value> {
    let sample = ferrogrid_tests::sample("library");
    let dir = tempfile::tempdir()?;
    for entry in std::fs::read_dir(&sample)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().context("a file name")?))?;
        }
    }
    let config = std::fs::read_to_string(sample.join("config.yml"))?;
    let anchor = "  output:\n    - name: to_input_processor\n";
    let hub =
        format!("  output:\n    - {{name: hub, type: http, url: \"{hub}/hub\"}}\n    - name: to_input_processor\n");
    let config = config.replacen(anchor, &hub, 1) + "\noutput_processor:\n  add_user: {output: hub}\n";
    if !config.contains("name: hub") {
        bail!("samples/library/config.yml changed shape: cannot add the hub output");
    }
    std::fs::write(dir.path().join("config.yml"), config)?;
    let mut server = Server::try_start(bin, dir.path(), None)?;
    let target = Target { base: server.base_url(), token: Some(server.token().to_string()) };
    let (mut report, last_id) = measure("ferrogrid_replicated", &target, args, &ingest_op);
    // The deliveries of the load phases first: the latency phase starts on an empty queue.
    let mut seen = (0, Instant::now());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let n = arrivals().lock().unwrap_or_else(|e| e.into_inner()).len();
        if n != seen.0 {
            seen = (n, Instant::now());
        } else if seen.1.elapsed() > Duration::from_millis(500) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("[ferrogrid_replicated] {} delivered after the load phases ({:?})", seen.0, started.elapsed());
    report["delivery_backlog_s"] = round2(started.elapsed().as_secs_f64());
    // Delivery latency: ids from last_id on, sent at half the plain rate.
    let sent: std::sync::Arc<Mutex<HashMap<i64, Instant>>> = std::sync::Arc::default();
    let ids = AtomicI64::new(last_id + 1_000_000);
    let record = sent.clone();
    let timed = move |client: &Client, n: i64| {
        record.lock().unwrap_or_else(|e| e.into_inner()).insert(n, Instant::now());
        ingest_op(client, n)
    };
    let dur = Duration::from_secs(args.seconds);
    open_loop(&target, &timed, args.clients, plain_rate / 2.0, dur, &ids);
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut latencies: Vec<u64> = loop {
        let got = arrivals().lock().unwrap_or_else(|e| e.into_inner());
        let lat: Vec<u64> =
            sent.iter().filter_map(|(id, t)| got.get(id).map(|a| a.duration_since(*t).as_micros() as u64)).collect();
        if lat.len() == sent.len() || Instant::now() > deadline {
            break lat;
        }
        drop(got);
        std::thread::sleep(Duration::from_millis(50));
    };
    latencies.sort_unstable();
    let pct = |p: f64| -> Value {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p / 100.0).round() as usize)
            .map_or(Value::Null, |us| round2(*us as f64 / 1000.0))
    };
    report["delivery"] = json!({
        "sent": sent.len(), "delivered": latencies.len(),
        "rate_per_s": round2(plain_rate / 2.0), "p50_ms": pct(50.0), "p99_ms": pct(99.0),
    });
    let status = server.stop();
    eprintln!("[ferrogrid_replicated] stopped: {status}");
    Ok(report)
}

/// Plain ingest of `samples/library` on a fresh server: objects/s of the closed loop.
fn plain_throughput(bin: &std::path::Path, args: &Args) -> anyhow::Result<f64> {
    let mut server = Server::try_start(bin, &ferrogrid_tests::sample("library"), None)?;
    let target = Target { base: server.base_url(), token: Some(server.token().to_string()) };
    let phase = max_rate("ferrogrid_http_after", &target, args, &ingest_op, &AtomicI64::new(1));
    let status = server.stop();
    eprintln!("[ferrogrid_http_after] stopped: {status}");
    Ok(phase.rate())
}

/// The bare endpoint: the `bare` binary built next to this one, as a process of its own (so the
/// load generator measures it as it measures ferrogrid). Killed when dropped.
struct Bare {
    child: std::process::Child,
    base: String,
}

impl Bare {
    fn start() -> anyhow::Result<Bare> {
        use std::io::BufRead;
        let exe = std::env::current_exe().context("the bench binary's path")?;
        let bin = exe.with_file_name("bare");
        let mut child =
            std::process::Command::new(&bin).stdout(std::process::Stdio::piped()).spawn().with_context(|| {
                format!("starting {} (build it: cargo build --release -p ferrogrid-tests)", bin.display())
            })?;
        let stdout = child.stdout.take().context("bare: no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).context("bare: reading its address")?;
        let addr = line.trim().strip_prefix("listening on ").context("bare did not say where it listens")?.to_string();
        Ok(Bare { child, base: format!("http://{addr}") })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` in MB (`VmRSS`), when it can be read.
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

/// What wrk posts: a Lua body template where `ID` is replaced by a number unique in the run.
struct WrkLoad {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const QUICKSTART_LOAD: WrkLoad = WrkLoad {
    path: "/http",
    content_type: "application/json",
    body: r#"{"User": {"id": ID, "username": "bench user ID"}}"#,
};
const LIBRARY_LOAD: WrkLoad =
    WrkLoad { path: "/http", content_type: "application/json", body: r#"{"id": ID, "username": "bench user ID"}"# };

/// Makes sure wrk is there: installs the Debian package when it is missing (as root, or with
/// sudo), as `scripts/test.sh` installs the browsers.
fn ensure_wrk() -> anyhow::Result<()> {
    let present = || std::process::Command::new("wrk").arg("-v").output().is_ok();
    if present() {
        return Ok(());
    }
    eprintln!("== installing wrk (Debian package) for the out-of-process load");
    let script = r#"SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q wrk"#;
    let status = std::process::Command::new("sh").arg("-c").arg(script).status().context("running apt-get")?;
    if !status.success() || !present() {
        bail!("wrk is missing and installing the Debian package `wrk` failed ({status})");
    }
    Ok(())
}

/// Runs the `openloop` binary (built next to this one) at `rate` requests/s for `dur`; its JSON.
fn openloop(
    target: &Target,
    token: &str,
    load: &WrkLoad,
    connections: usize,
    rate: f64,
    dur: Duration,
    first_id: u64,
) -> anyhow::Result<Value> {
    let bin = std::env::current_exe().context("the bench binary's path")?.with_file_name("openloop");
    let addr = target.base.trim_start_matches("http://").to_string();
    let out = std::process::Command::new(&bin)
        .args([
            "--addr",
            &addr,
            "--path",
            load.path,
            "--content-type",
            load.content_type,
            "--body",
            load.body,
            "--token",
            token,
        ])
        .args(["--rate", &format!("{rate:.0}"), "--seconds", &dur.as_secs().to_string()])
        .args(["--connections", &connections.to_string(), "--first-id", &first_id.to_string()])
        .output()
        .with_context(|| format!("running {} (build it: cargo build --release -p ferrogrid-tests)", bin.display()))?;
    if !out.status.success() {
        bail!("openloop failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("openloop's report")
}

/// Which ids a wrk run's requests carry.
#[derive(Clone, Copy)]
enum Ids {
    /// New ones, after this.
    From(u64),
    /// Random ones in 1..=this (reads of stored objects).
    RandomUpTo(u64),
}

const SOAP_LOAD: WrkLoad = WrkLoad {
    path: "/soap",
    content_type: "text/xml; charset=utf-8",
    body: "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><Connect xmlns=\"urn:ferrogrid:library\"><User><id>ID</id><username>bench user ID</username></User></Connect></soap:Body></soap:Envelope>",
};
const GET_BY_PK_LOAD: WrkLoad = WrkLoad {
    path: "/graphql",
    content_type: "application/json",
    body: r#"{"query": "query($id: Long) { User(id: $id) { id username } }", "variables": {"id": ID}}"#,
};
const RELATION_LOAD: WrkLoad = WrkLoad {
    path: "/graphql",
    content_type: "application/json",
    body: r#"{"query": "query($id: Long) { User(id: $id) { username subscription { id book { book_name } } } }", "variables": {"id": ID}}"#,
};

/// One wrk run's figures.
struct WrkRun {
    ok: u64,
    non_2xx: u64,
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    elapsed: Duration,
}

/// Runs wrk (one thread, `connections` keep-alive connections) for `dur` against `base`, with
/// ids from `first_id` on; figures from wrk's own report.
fn wrk(
    base: &str,
    token: Option<&str>,
    load: &WrkLoad,
    connections: usize,
    dur: Duration,
    ids: Ids,
) -> anyhow::Result<WrkRun> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("load.lua");
    if load.body.contains(['\'', '\\']) {
        bail!("a wrk body template cannot hold quotes or backslashes");
    }
    // `ID` in the template becomes the request's id: the next of a counter, or (reads) a random
    // one of the stored ids.
    let body = load.body.split("ID").collect::<Vec<_>>().join("' .. id .. '");
    let next_id = match ids {
        Ids::From(_) => "counter = counter + 1\n  local id = counter",
        Ids::RandomUpTo(_) => "local id = math.random(1, counter)",
    };
    let counter = match ids {
        Ids::From(n) | Ids::RandomUpTo(n) => n,
    };
    let lua = format!(
        r#"counter = {counter}
local headers = {{["Content-Type"] = "{ct}", ["Authorization"] = "Bearer {token}"}}
request = function()
  {next_id}
  return wrk.format("POST", "{path}", headers, '{body}')
end
"#,
        ct = load.content_type,
        token = token.unwrap_or("none"),
        path = load.path,
    );
    std::fs::write(&script, lua)?;
    let started = Instant::now();
    let out = std::process::Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{}s", dur.as_secs()), "--latency", "-s"])
        .arg(&script)
        .arg(base)
        .output()
        .context("running wrk (Debian package `wrk`)")?;
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let field =
        |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(str::trim).map(str::to_string));
    let ms = |v: Option<String>| -> f64 {
        let Some(v) = v else { return f64::NAN };
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => f64::NAN,
        }
    };
    let total: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("wrk: no request count")?;
    let non_2xx: u64 = field("Non-2xx or 3xx responses:").and_then(|n| n.parse().ok()).unwrap_or(0);
    Ok(WrkRun {
        ok: total.saturating_sub(non_2xx),
        non_2xx,
        per_s: total.saturating_sub(non_2xx) as f64 / dur.as_secs_f64(),
        p50_ms: ms(field("50%")),
        p99_ms: ms(field("99%")),
        elapsed,
    })
}

/// Starts the replication receiver (`POST /hub`) on a thread of this process; returns its base URL.
fn start_hub() -> anyhow::Result<String> {
    let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<std::net::SocketAddr>>();
    std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let server = HttpServer::new(move || {
                App::new().app_data(web::PayloadConfig::new(16 * 1024 * 1024)).route("/hub", web::post().to(hub))
            })
            .bind(("127.0.0.1", 0));
            let server = match server {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            };
            let addr = server.addrs()[0];
            let running = server.run();
            let _ = tx.send(Ok(addr));
            let _ = running.await;
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).context("the receiver did not start")??;
    Ok(format!("http://{addr}"))
}

fn release_binary() -> PathBuf {
    match std::env::var_os("FERROGRID_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target/release/ferrogrid"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;

    let bare_server = Bare::start()?;
    if args.ingest_only {
        return ingest_only(&release_binary(), &args, &bare_server);
    }
    let (bare, _) = measure("bare", &Target { base: bare_server.base.clone(), token: None }, &args, &ingest_op);
    drop(bare_server);
    let hub_url = start_hub()?;

    let bin = release_binary();
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p ferrogrid-engine` or set FERROGRID_BIN",
            bin.display()
        );
    }
    if let Some(books) = args.model_change {
        return model_change(&bin, &args, books, bare);
    }
    let mut server = Server::start_with_binary(&bin, "samples/library");
    let target = Target { base: server.base_url(), token: Some(server.token().to_string()) };
    let (ferrogrid, last_id) = measure("ferrogrid_http", &target, &args, &ingest_op);
    // Users 1..last_id were posted; the few refused ones just miss.
    let users = (last_id - 1).min(20_000);
    let graphql = if args.quick {
        Value::Null
    } else {
        seed_relations(&target, users.min(5_000))?;
        measure_graphql(&target, &args, users)
    };
    let status = server.stop();
    eprintln!("[ferrogrid_http] stopped: {status}");

    let soap = if args.quick {
        Value::Null
    } else {
        let mut soap_server = Server::start_with_binary(&bin, "samples/soap");
        let soap_target = Target { base: soap_server.base_url(), token: Some(soap_server.token().to_string()) };
        let (soap, _) = measure("ferrogrid_soap", &soap_target, &args, &soap_ingest_op);
        let status = soap_server.stop();
        eprintln!("[ferrogrid_soap] stopped: {status}");
        soap
    };
    let ratio_soap = match (soap["objects_per_s"].as_f64(), ferrogrid["objects_per_s"].as_f64()) {
        (Some(s), Some(j)) if j > 0.0 => round2(s / j),
        _ => Value::Null,
    };

    let plain_rate = ferrogrid["objects_per_s"].as_f64().unwrap_or(1.0);
    let replicated = measure_replicated(&bin, &hub_url, &args, plain_rate)?;
    // Plain ingest once more right after: the replicated phase is compared with the mean of the
    // plain rates measured before and after it, so a machine that got busier or quieter in
    // between does not skew the ratio.
    let plain_after = plain_throughput(&bin, &args)?;
    let plain_mean = (plain_rate + plain_after) / 2.0;
    let ratio_replicated = match replicated["objects_per_s"].as_f64() {
        Some(r) if plain_mean > 0.0 => round2(r / plain_mean),
        _ => Value::Null,
    };

    let ratio = match (ferrogrid["objects_per_s"].as_f64(), bare["objects_per_s"].as_f64()) {
        (Some(f), Some(b)) if b > 0.0 => round2(f / b),
        _ => Value::Null,
    };
    let ratio_get = match (graphql["get_by_pk"]["queries_per_s"].as_f64(), bare["objects_per_s"].as_f64()) {
        (Some(g), Some(b)) if b > 0.0 => round2(g / b),
        _ => Value::Null,
    };
    let report = json!({
        "bare": bare,
        "ferrogrid_http": ferrogrid,
        "ratio_throughput": ratio,
        "graphql": graphql,
        "ratio_graphql_get_by_pk": ratio_get,
        "ferrogrid_soap": soap,
        "ratio_soap_to_json": ratio_soap,
        "ferrogrid_replicated": replicated,
        "ferrogrid_http_after_objects_per_s": round2(plain_after),
        "ratio_replicated_to_plain": ratio_replicated,
        "clients": args.clients,
        "seconds": args.seconds,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// GraphQL reads over the library users stored by the ingest phases (the first `users` ids),
/// with 100 books and a subscription for each of the first 5,000 users seeded first: get by
/// primary key and a relation lookup, each driven by wrk for `dur` with random stored ids.
fn reads(target: &Target, token: &str, users: u64, connections: usize, dur: Duration) -> anyhow::Result<Value> {
    let users = users.max(2);
    let related = users.min(5_000);
    seed_relations(target, related as i64)?;
    // wrk counts only statuses: make sure each query answers data, not errors.
    for (query, load) in [(GET_BY_PK, &GET_BY_PK_LOAD), (RELATION, &RELATION_LOAD)] {
        let r = target.client().try_post_json("/graphql", &json!({"query": query, "variables": {"id": 1}}));
        match r {
            Ok(r) if r.status == 200 && !r.body.contains("\"errors\"") => {}
            Ok(r) => bail!("{}: {} {}", load.path, r.status, r.body),
            Err(e) => bail!("{}: {e}", load.path),
        }
    }
    let mut report = serde_json::Map::new();
    for (name, load, ids) in [("get_by_pk", &GET_BY_PK_LOAD, users), ("relation_lookup", &RELATION_LOAD, related)] {
        wrk(&target.base, Some(token), load, connections, Duration::from_secs(1), Ids::RandomUpTo(ids))?;
        let run = wrk(&target.base, Some(token), load, connections, dur, Ids::RandomUpTo(ids))?;
        eprintln!("[graphql] {name}: {:.0} queries/s, p99 {:.2} ms ({} errors)", run.per_s, run.p99_ms, run.non_2xx);
        report.insert(
            name.into(),
            json!({
                "queries_per_s": round2(run.per_s), "p50_ms": round2(run.p50_ms), "p99_ms": round2(run.p99_ms),
                "errors": run.non_2xx, "ids": ids,
            }),
        );
    }
    Ok(Value::Object(report))
}

/// `--ingest-only`: durable ingest of samples/quickstart, samples/library and samples/soap against
/// the bare endpoint, then GraphQL reads on the library server ([`reads`]); every target driven
/// by wrk (64 connections) from outside: saturation throughput,
/// p50/p99 (wrk's), the sustained rate (acknowledged objects over the wrk run plus the time
/// until everything is processed), then p50/p99 at half the sustained rate (open loop: the
/// `openloop` binary, latency from each request's scheduled time), and the server's RSS idle and
/// under load.
fn ingest_only(bin: &std::path::Path, args: &Args, bare: &Bare) -> anyhow::Result<()> {
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p ferrogrid-engine` or set FERROGRID_BIN",
            bin.display()
        );
    }
    ensure_wrk()?;
    let dur = Duration::from_secs(args.seconds);
    let connections = 64;
    eprintln!("[bare] wrk -t1 -c{connections}, warm-up 2 s, then {dur:?}");
    wrk(&bare.base, None, &QUICKSTART_LOAD, connections, Duration::from_secs(2), Ids::From(0))?;
    let bare_run = wrk(&bare.base, None, &QUICKSTART_LOAD, connections, dur, Ids::From(0))?;
    let bare_rss = rss_mb(bare.pid());
    eprintln!("[bare] {:.0} objects/s, p99 {:.2} ms", bare_run.per_s, bare_run.p99_ms);
    let mut report = json!({
        "load_generator": format!("wrk -t1 -c{connections}; open loop at half rate: the openloop binary, {connections} connections (both out of process)"),
        "seconds": args.seconds,
        "binary": bin.display().to_string(),
        "bare": {
            "objects_per_s": round2(bare_run.per_s), "p50_ms": round2(bare_run.p50_ms), "p99_ms": round2(bare_run.p99_ms),
            "errors": bare_run.non_2xx, "rss_mb": bare_rss.map_or(Value::Null, round2),
        },
    });
    let mut table = vec![format!(
        "| bare | {:.0} | — | 1.00 | {:.1} ms | {:.1} ms | — | {:.0} MB |",
        bare_run.per_s,
        bare_run.p50_ms,
        bare_run.p99_ms,
        bare_rss.unwrap_or(f64::NAN)
    )];
    for (sample, load) in [("quickstart", &QUICKSTART_LOAD), ("library", &LIBRARY_LOAD), ("soap", &SOAP_LOAD)] {
        let name = format!("ferrogrid_{sample}");
        let mut server = Server::start_with_binary(bin, format!("samples/{sample}"));
        let pid = server.pid().context("the server's pid")?;
        let target = Target { base: server.base_url(), token: Some(server.token().to_string()) };
        let idle_rss = rss_mb(pid);
        eprintln!("[{name}] warm-up 2 s, then wrk for {dur:?}");
        let warm = wrk(&target.base, Some(server.token()), load, connections, Duration::from_secs(2), Ids::From(0))?;
        target.wait_backlog_drained(Duration::from_secs(120));
        let first = warm.ok + warm.non_2xx + 10;
        let run = wrk(&target.base, Some(server.token()), load, connections, dur, Ids::From(first))?;
        let load_rss = rss_mb(pid);
        let drain = target.wait_backlog_drained(Duration::from_secs(120));
        let sustained = drain.map(|d| run.ok as f64 / (run.elapsed + d).as_secs_f64());
        eprintln!(
            "[{name}] {:.0} acknowledged/s, sustained {:.0}/s, p99 {:.2} ms, {} refused (503)",
            run.per_s,
            sustained.unwrap_or(f64::NAN),
            run.p99_ms,
            run.non_2xx
        );
        let half_rate = sustained.unwrap_or(run.per_s) / 2.0;
        eprintln!("[{name}] open loop at {half_rate:.0} objects/s, {dur:?}");
        let half =
            openloop(&target, server.token(), load, connections, half_rate, dur, first + run.ok + run.non_2xx + 10)?;
        if sample == "library" {
            let graphql = reads(&target, server.token(), warm.ok, connections, dur)?;
            for (query, label) in
                [("get_by_pk", "GraphQL get by primary key"), ("relation_lookup", "GraphQL relation lookup")]
            {
                let q = &graphql[query];
                let per_s = q["queries_per_s"].as_f64().unwrap_or(f64::NAN);
                let ratio = round2(per_s / bare_run.per_s.max(1e-9));
                table.push(format!(
                    "| {label} | {per_s:.0} queries/s | — | {ratio} | {:.1} ms | {:.1} ms | — | — |",
                    q["p50_ms"].as_f64().unwrap_or(f64::NAN),
                    q["p99_ms"].as_f64().unwrap_or(f64::NAN)
                ));
                report[format!("ratio_graphql_{query}")] = ratio;
            }
            report["graphql"] = graphql;
        }
        let status = server.stop();
        eprintln!("[{name}] stopped: {status}");
        let ratio = sustained.map_or(Value::Null, |s| round2(s / bare_run.per_s.max(1e-9)));
        table.push(format!(
            "| {sample} | {:.0} | {:.0} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} MB idle, {:.0} MB loaded |",
            run.per_s,
            sustained.unwrap_or(f64::NAN),
            ratio,
            run.p50_ms,
            run.p99_ms,
            half["p99_ms"].as_f64().unwrap_or(f64::NAN),
            idle_rss.unwrap_or(f64::NAN),
            load_rss.unwrap_or(f64::NAN),
        ));
        report[name] = json!({
            "acknowledged_per_s": round2(run.per_s),
            "refused_503": run.non_2xx,
            "backlog_drain_s": drain.map_or(Value::Null, |d| round2(d.as_secs_f64())),
            "sustained_per_s": sustained.map_or(Value::Null, round2),
            "p50_ms": round2(run.p50_ms),
            "p99_ms": round2(run.p99_ms),
            "half_rate_per_s": round2(half_rate),
            "at_half_rate": half,
            "rss_mb_idle": idle_rss.map_or(Value::Null, round2),
            "rss_mb_loaded": load_rss.map_or(Value::Null, round2),
        });
        report[format!("ratio_{sample}")] = ratio;
    }
    let soap_to_json = match (
        report["ferrogrid_soap"]["sustained_per_s"].as_f64(),
        report["ferrogrid_library"]["sustained_per_s"].as_f64(),
    ) {
        (Some(soap), Some(json)) if json > 0.0 => round2(soap / json),
        _ => Value::Null,
    };
    report["ratio_soap_to_json"] = soap_to_json;
    eprintln!("\n| target | acknowledged/s | sustained/s | ratio to bare | p50 | p99 | p99 at half rate | RSS |");
    eprintln!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in table {
        eprintln!("{row}");
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `POST /http` of library Book `n` (author one of 1,000).
fn book_op(client: &Client, n: i64) -> bool {
    let book =
        json!({"id": n, "book_name": format!("book {n}"), "author": format!("A{}", n % 1000), "year": 1900 + n % 120});
    matches!(client.try_post_json("/http", &book), Ok(r) if r.status == 200)
}

/// The files of samples/library, `model.avsc` and `process_book.rhai` changed by `edit`, as the
/// tar.gz `PUT /admin/api/config` takes.
fn library_archive(edit: impl Fn(&str, String) -> String) -> anyhow::Result<Vec<u8>> {
    let dir = workspace_root().join("samples/library");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for entry in std::fs::read_dir(&dir)?.flatten() {
        if !entry.path().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = edit(&name, std::fs::read_to_string(entry.path())?);
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, &name, text.as_bytes())?;
    }
    Ok(builder.into_inner()?.finish()?)
}

/// `PUT /admin/api/config`: the answer (panics on anything but 200).
fn apply(target: &Target, archive: &[u8]) -> anyhow::Result<Value> {
    let r = target.client().try_put_raw("/admin/api/config", "application/gzip", archive)?;
    if r.status != 200 {
        bail!("apply answered {}: {}", r.status, r.body);
    }
    Ok(r.json())
}

/// `--model-change N`: N books stored in samples/library; then (1) ingest of users for the
/// phase's seconds without a build; (2) an apply adding the index `author` to Book (its time,
/// with the migration plan), ingest of users while the index is built (its ratio to (1)), and
/// the build's rate over the stored versions; (3) an apply changing a script only (no
/// migration) and an identical one.
fn model_change(bin: &std::path::Path, args: &Args, books: u64, bare: Value) -> anyhow::Result<()> {
    let server = Server::start_with_binary(bin, "samples/library");
    let target = Target { base: server.base_url(), token: Some(server.token().to_string()) };
    let ids = AtomicI64::new(1);
    eprintln!("[model-change] storing {books} books");
    let loading = Instant::now();
    let mut stored = 0;
    while stored < books && loading.elapsed() < Duration::from_secs(1800) {
        let op = move |c: &Client, n: i64| {
            if n as u64 > books {
                // All posted: the rest of this chunk idles.
                std::thread::sleep(Duration::from_millis(5));
                return true;
            }
            book_op(c, n)
        };
        let chunk = closed_loop(&target, &op, args.clients, Duration::from_secs(5), &ids);
        stored = (ids.load(Ordering::Relaxed) - 1).max(0) as u64;
        eprintln!("[model-change] {stored} posted ({:.0}/s)", chunk.rate());
    }
    target.wait_backlog_drained(Duration::from_secs(600));
    let load_s = loading.elapsed().as_secs_f64();
    let user_ids = AtomicI64::new(10_000_000);
    let user_op: &Op = &ingest_op;
    let before = max_rate("model-change/plain", &target, args, user_op, &user_ids);
    target.wait_backlog_drained(Duration::from_secs(120));

    let with_index = library_archive(|name, text| {
        if name == "model.avsc" {
            text.replace(r#""indexes": ["id", "year"]"#, r#""indexes": ["id", "author", "year"]"#)
        } else {
            text
        }
    })?;
    let started = Instant::now();
    let applied = apply(&target, &with_index)?;
    eprintln!("[model-change] applied with a migration: {applied}");
    let dur = Duration::from_secs(args.seconds);
    let during = closed_loop(&target, user_op, args.clients, dur, &user_ids);
    eprintln!("[model-change] during the build: {:.0} objects/s", during.rate());
    let client = target.client();
    let (built_after, versions) = loop {
        let states = client.try_get("/admin/api/indexes")?.json();
        let author = states["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["type"] == "Book" && i["index"] == "author").cloned());
        if author.as_ref().is_some_and(|a| a["state"] == "ready") {
            let metrics = client.try_get("/metrics")?.body;
            let done =
                metric_value(&metrics, "ferrogrid_index_build_versions", &[("type", "Book"), ("index", "author")]);
            break (started.elapsed(), done.unwrap_or(0.0));
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the index was not built within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let build_still_running_at_end = during.elapsed < built_after;
    target.wait_backlog_drained(Duration::from_secs(120));
    let script_only = library_archive(|name, text| match name {
        "model.avsc" => text.replace(r#""indexes": ["id", "year"]"#, r#""indexes": ["id", "author", "year"]"#),
        "process_book.rhai" => format!("// changed by the benchmark\n{text}"),
        _ => text,
    })?;
    let script_applied = apply(&target, &script_only)?;
    let identical = apply(&target, &script_only)?;
    let report = json!({
        "bare": bare,
        "books": stored,
        "load_s": round2(load_s),
        "ingest_without_build_per_s": round2(before.rate()),
        "ingest_during_build_per_s": round2(during.rate()),
        "ratio_ingest_during_build": round2(during.rate() / before.rate().max(1e-9)),
        "build_lasted_the_whole_phase": build_still_running_at_end,
        "index_build_s": round2(built_after.as_secs_f64()),
        "index_build_versions": versions,
        "index_build_versions_per_s": round2(versions / built_after.as_secs_f64().max(1e-9)),
        "apply_with_migration_ms": applied["took_ms"],
        "apply_with_migration_paused_ms": applied["paused_ms"],
        "apply_script_only_ms": script_applied["took_ms"],
        "apply_script_only_paused_ms": script_applied["paused_ms"],
        "apply_identical_ms": identical["took_ms"],
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
