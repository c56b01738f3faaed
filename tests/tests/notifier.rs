//! Repair-queue notifications (TDG 2.8.1, `notifier`) against the real SMTP sink: a flood of
//! 10,000 failing objects brings at most one mail per interval to every subscriber, the counts
//! add up to exactly 10,000; with the SMTP server down nothing is lost; the settings can be
//! changed through the API (the password never shown) and go back to the configuration's.

use ferrogrid_tests::peers::SmtpSink;
use ferrogrid_tests::Server;
use serde_json::json;
use std::time::{Duration, Instant};

const MODEL: &str = r#"[{"name": "User", "type": "record", "logicalType": "Aggregate", "indexes": ["id"],
  "fields": [{"name": "id", "type": "long"}, {"name": "username", "type": "string"}]}]"#;

fn config(sink: &SmtpSink, interval: u64) -> String {
    // TDG's own spelling: `url` without a scheme, `from` a bare name, numeric ids.
    let host = sink.url().trim_start_matches("smtp://").to_string();
    format!(
        r#"types: {{__file: model.avsc}}
connector:
  input: [{{name: http, type: http}}]
input_processor:
  storage: [{{key: User, type: User}}]
notifier:
  mail_server: {{url: "{host}", from: TDG_repair_queue, timeout: 5}}
  users:
    - {{id: 1, name: Petrov, addr: petrov@example.com}}
    - {{id: ops, name: Ops, addr: ops@example.com}}
  interval_seconds: {interval}
  link: "https://grid.example.com"
"#
    )
}

/// The count in a notice's subject (`Ferrogrid: 37 new objects in the repair queue`).
fn counted(mail: &str) -> usize {
    let subject = mail.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default();
    subject.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn total(sink: &SmtpSink) -> usize {
    sink.mails().iter().map(|m| counted(m)).sum()
}

/// Wait until the mails count `n` objects in all.
fn wait_for_total(sink: &SmtpSink, n: usize, within: Duration) {
    let started = Instant::now();
    while total(sink) < n {
        assert!(started.elapsed() < within, "mails count {} of {n}: {:?}", total(sink), sink.mails());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// When each mail was written (its `Date:`, whole seconds), in order.
fn dates(mails: &[String]) -> Vec<i64> {
    let mut dates: Vec<i64> = mails
        .iter()
        .map(|m| {
            let date = m.lines().find_map(|l| l.strip_prefix("Date: ")).unwrap_or_else(|| panic!("no Date: {m}"));
            chrono::DateTime::parse_from_rfc2822(date).unwrap_or_else(|e| panic!("{date}: {e}")).timestamp()
        })
        .collect();
    dates.sort_unstable();
    dates
}

#[test]
fn a_flood_of_failures_brings_one_mail_per_interval_and_nothing_is_lost() {
    let mut sink = SmtpSink::start();
    let interval = 2;
    let server = Server::start_with_config(&config(&sink, interval), &[("model.avsc", MODEL)]);

    // 10,000 objects of a type nobody stores: each goes to the repair queue.
    let flood = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4 {
            let server = &server;
            s.spawn(move || {
                for i in 0..2500 {
                    let r = server.post_json("/http", &json!({"Parcel": {"id": t * 2500 + i}}));
                    r.assert_status(200, "accepted");
                }
            });
        }
    });
    wait_for_total(&sink, 10_000, Duration::from_secs(120));
    assert_eq!(total(&sink), 10_000, "every failure told once");
    let mails = sink.mails();
    let allowed = 1 + (flood.elapsed().as_secs() / interval) as usize;
    assert!(mails.len() <= allowed, "{} mails in {:?} (interval {interval} s)", mails.len(), flood.elapsed());
    // A mail is written at least an interval after the last one was sent: its Date (whole
    // seconds, the sender's clock, not when this test happened to look) is `interval` later.
    let dates = dates(&mails);
    for pair in dates.windows(2) {
        assert!(pair[1] - pair[0] >= interval as i64, "two mails within an interval: {dates:?}");
    }
    let first = &mails[0];
    for part in ["petrov@example.com", "ops@example.com", "TDG_repair_queue", "https://grid.example.com/admin/#/repair"]
    {
        assert!(first.contains(part), "{part}: {first}");
    }
    assert!(first.contains("The first ones:") && first.contains("Parcel"), "quotes the first errors: {first}");
    // Nothing comes twice: an interval later the count is still exactly 10,000.
    std::thread::sleep(Duration::from_secs(interval + 1));
    assert_eq!(total(&sink), 10_000);

    // The SMTP server down: the notes wait, and the next mail tells of them.
    sink.stop();
    for i in 0..5 {
        server.post_json("/http", &json!({"Parcel": {"id": 100_000 + i}})).assert_status(200, "accepted");
    }
    std::thread::sleep(Duration::from_secs(interval * 2));
    sink.start_again();
    wait_for_total(&sink, 10_005, Duration::from_secs(60));

    // Through the API: the password is never shown; a new list of subscribers takes effect.
    let shown = server.get("/admin/api/notifier").json();
    assert_eq!(shown["source"], "config", "{shown}");
    assert_eq!(shown["mail_server"]["password_set"], false, "{shown}");
    let mut changed = shown.clone();
    changed.as_object_mut().map(|m| m.remove("source"));
    changed["mail_server"].as_object_mut().map(|m| m.remove("password_set"));
    changed["mail_server"]["username"] = json!(null);
    changed["mail_server"]["password"] = json!("s3cret-not-shown");
    changed["users"] = json!([{"id": 7, "name": "Night shift", "addr": "night@example.com"}]);
    let put = server.client().send("PUT", "/admin/api/notifier", Some(&changed));
    put.assert_status(200, "set");
    assert!(!put.body.contains("s3cret"), "{}", put.body);
    assert_eq!(
        (put.json()["source"].as_str(), put.json()["mail_server"]["password_set"].as_bool()),
        (Some("api"), Some(true))
    );
    let bad = server.client().send(
        "PUT",
        "/admin/api/notifier",
        Some(&json!({"users": [{"id": 1, "name": "x", "addr": "nowhere"}]})),
    );
    bad.assert_status(400, "not a mail address");
    server.post_json("/http", &json!({"Parcel": {"id": 200_000}})).assert_status(200, "accepted");
    wait_for_total(&sink, 10_006, Duration::from_secs(30));
    let last = sink.mails().into_iter().find(|m| m.contains("night@example.com")).expect("a mail to the night shift");
    assert!(!last.contains("petrov@example.com"), "{last}");
    let back = server.client().send("DELETE", "/admin/api/notifier", None);
    assert_eq!(back.json()["source"], "config", "{}", back.body);
}
