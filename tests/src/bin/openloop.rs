//! An open-loop HTTP load generator for the benchmark: `rate` POSTs per second in all, on a fixed
//! schedule spread over `connections` keep-alive connections, each request's latency counted from
//! its *scheduled* send time (a server that stalls cannot hide its queueing, and a connection that
//! falls behind sends at once and is charged the wait). Runs as its own process, on one thread.
//!
//! `openloop --addr HOST:PORT --path /http --rate R --seconds S [--connections C] [--token T]
//!  [--content-type CT] [--body TEMPLATE] [--first-id N] [--dump FILE]`; `ID` in the body template is replaced
//! by a number unique in the run. Prints one JSON line: sent, ok, errors, p50_ms, p99_ms,
//! max_ms, achieved_per_s, started_unix_ms and started_monotonic_ms (the schedule's
//! start; the latter for `perf record -k mono`) and slow_windows: the (up to 10) 100 ms windows of the schedule whose
//! worst latency passed 10 ms, worst first — when a stall happened. `--dump FILE` writes every
//! answered request as a line `scheduled_ms latency_us` (ms from the start), in schedule order.

use anyhow::{bail, Context};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    addr: String,
    path: String,
    rate: f64,
    seconds: f64,
    connections: usize,
    token: Option<String>,
    content_type: String,
    body: String,
    first_id: u64,
    dump: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        addr: String::new(),
        path: "/http".into(),
        rate: 0.0,
        seconds: 5.0,
        connections: 64,
        token: None,
        content_type: "application/json".into(),
        body: r#"{"User": {"id": ID, "username": "bench user ID"}}"#.into(),
        first_id: 1,
        dump: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = value()?,
            "--path" => a.path = value()?,
            "--rate" => a.rate = value()?.parse().context("--rate")?,
            "--seconds" => a.seconds = value()?.parse().context("--seconds")?,
            "--connections" => a.connections = value()?.parse().context("--connections")?,
            "--token" => a.token = Some(value()?),
            "--content-type" => a.content_type = value()?,
            "--body" => a.body = value()?,
            "--first-id" => a.first_id = value()?.parse().context("--first-id")?,
            "--dump" => a.dump = Some(value()?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.addr.is_empty() || a.rate <= 0.0 || a.connections == 0 {
        bail!("usage: openloop --addr HOST:PORT --rate R [--seconds S] [--connections C] [--path P] [--token T] [--content-type CT] [--body TEMPLATE] [--first-id N] [--dump FILE]");
    }
    Ok(a)
}

/// Reads one response; its status code.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end]).context("response head")?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("status line")?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .context("no content-length")?;
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed in the body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// Connection `i` of `c`: sends requests i, i+c, i+2c, ... each at its slot; latencies in µs.
async fn connection(args: std::rc::Rc<Args>, i: usize, start: Instant) -> (Vec<(u64, u64)>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let Ok(mut stream) = TcpStream::connect(&args.addr).await else { return (latencies, 1) };
    let _ = stream.set_nodelay(true);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let end = Duration::from_secs_f64(args.seconds);
    let (before, after) = args.body.split_once("ID").unwrap_or((&args.body, ""));
    let (middle, rest) = after.split_once("ID").map_or((after, None), |(m, r)| (m, Some(r)));
    let auth = args.token.as_deref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let mut buf = Vec::with_capacity(4096);
    let mut j = i as u64;
    loop {
        let due = start + interval.mul_f64(j as f64);
        if due.duration_since(start) >= end || start.elapsed() >= end * 3 {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let id = args.first_id + j;
        let body = match rest {
            Some(rest) => format!("{before}{id}{middle}{id}{rest}"),
            None => format!("{before}{id}{middle}"),
        };
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            args.path,
            args.addr,
            args.content_type,
            body.len()
        );
        let sent = stream.write_all(request.as_bytes()).await;
        match (sent, read_response(&mut stream, &mut buf).await) {
            (Ok(()), Ok(200)) => {
                latencies.push((due.duration_since(start).as_millis() as u64, due.elapsed().as_micros() as u64))
            }
            (Ok(()), Ok(_)) => errors += 1,
            _ => {
                errors += 1;
                match TcpStream::connect(&args.addr).await {
                    Ok(s) => stream = s,
                    Err(_) => return (latencies, errors),
                }
            }
        }
        j += args.connections as u64;
    }
    (latencies, errors)
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// CLOCK_MONOTONIC in ms: the clock `perf record -k mono` stamps its samples with, so that a slow
/// window can be found in a profile of the server.
fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

fn main() -> anyhow::Result<()> {
    let args = std::rc::Rc::new(parse_args()?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let started_unix_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64 + 50);
    let started_monotonic_ms = monotonic_ms() + 50;
    let (latencies, errors, elapsed) = local.block_on(&runtime, async {
        let start = Instant::now() + Duration::from_millis(50);
        let tasks: Vec<_> =
            (0..args.connections).map(|i| tokio::task::spawn_local(connection(args.clone(), i, start))).collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            if let Ok((l, e)) = t.await {
                all.extend(l);
                errors += e;
            }
        }
        (all, errors, start.elapsed())
    });
    if let Some(path) = &args.dump {
        let mut lines: Vec<&(u64, u64)> = latencies.iter().collect();
        lines.sort_unstable();
        let text: String = lines.iter().map(|(at, us)| format!("{at} {us}\n")).collect();
        std::fs::write(path, text).with_context(|| format!("writing {path}"))?;
    }
    // The slowest 100 ms windows of the schedule (by their worst latency): when a stall happened.
    let mut windows: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for &(at_ms, us) in &latencies {
        let worst = windows.entry(at_ms / 100 * 100).or_default();
        *worst = (*worst).max(us);
    }
    let mut slow: Vec<(u64, u64)> = windows.into_iter().filter(|&(_, us)| us > 10_000).collect();
    slow.sort_unstable_by_key(|&(_, us)| std::cmp::Reverse(us));
    slow.truncate(10);
    let slow: Vec<String> =
        slow.iter().map(|(at, us)| format!("{{\"at_ms\": {at}, \"max_ms\": {:.1}}}", *us as f64 / 1000.0)).collect();
    let mut latencies: Vec<u64> = latencies.into_iter().map(|(_, us)| us).collect();
    latencies.sort_unstable();
    let ok = latencies.len() as u64;
    println!(
        "{{\"sent\": {}, \"ok\": {ok}, \"errors\": {errors}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"max_ms\": {:.3}, \"achieved_per_s\": {:.1}, \"started_unix_ms\": {started_unix_ms}, \"started_monotonic_ms\": {started_monotonic_ms}, \"slow_windows\": [{}]}}",
        ok + errors,
        percentile_ms(&latencies, 50.0),
        percentile_ms(&latencies, 99.0),
        latencies.last().map_or(f64::NAN, |&us| us as f64 / 1000.0),
        ok as f64 / elapsed.as_secs_f64().max(1e-9),
        slow.join(", ")
    );
    Ok(())
}
