//! Every script API function at least once, through real scripts and the fake host.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{capture_logs, fixture_with, run};
use crate::{CallContext, HostError, LimitKind, Limits, ScriptErrorKind};

#[test]
fn repository_functions_delegate_to_the_host() {
    let f = fixture_with(Limits::default(), &[]);
    let src = r#"
        let a = repository::put("User", #{id: 1, name: "ann"});
        repository::put("User", #{id: 2, name: "bob"}, #{if_not_exists: true});
        let found = repository::find("User", [["$name", "==", "bob"]]);
        let found_opts = repository::find("User", [], #{first: 10});
        let got = repository::get("User", "id", 1);
        let got_none = repository::get("User", "id", 99, #{version: 3});
        let upd = repository::update("User", [["$id", "==", 2]], [["$name", "set", "rob"]]);
        let upd2 = repository::update("User", [["$id", "==", 1]], [["$name", "set", "anne"]], #{});
        let del = repository::delete("User", [["$id", "==", 2]]);
        let del2 = repository::delete("User", [["$id", "==", 7]], #{permanent_delete: true});
        repository::push_job("reindex", #{type: "User"});
        #{a: a, found: found, n: found_opts.len(), got: got, got_none: got_none,
          upd: upd, upd2: upd2, del: del, del2: del2}
    "#;
    let out = f.run(src, json!(null)).unwrap();
    assert_eq!(out["a"], json!({"id": 1, "name": "ann"}));
    assert_eq!(out["found"], json!([{"id": 2, "name": "bob"}]));
    assert_eq!(out["n"], json!(2));
    assert_eq!(out["got"], json!({"id": 1, "name": "ann"}));
    assert_eq!(out["got_none"], json!(null));
    assert_eq!(out["upd"], json!([{"id": 2, "name": "rob"}]));
    assert_eq!(out["upd2"], json!([{"id": 1, "name": "anne"}]));
    assert_eq!(out["del"], json!([{"id": 2, "name": "rob"}]));
    assert_eq!(out["del2"], json!([]));
    // The last call with options passed them through; the store holds what is left.
    assert_eq!(*f.repo.last_options.lock().unwrap(), json!({"permanent_delete": true}));
    assert_eq!(f.repo.objects.lock().unwrap().len(), 1);
    assert_eq!(*f.repo.jobs.lock().unwrap(), vec![("reindex".to_string(), json!({"type": "User"}))]);
}

#[test]
fn repository_without_options_passes_an_empty_object() {
    let f = fixture_with(Limits::default(), &[]);
    f.run(r#"repository::find("User", [])"#, json!(null)).unwrap();
    assert_eq!(*f.repo.last_options.lock().unwrap(), json!({}));
}

#[test]
fn repository_user_data_error_and_bad_argument() {
    let err = run(r#"repository::get("Invalid", "id", 1)"#, json!(null)).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Host(HostError::UserData("type Invalid is not in the model".into())));
    let err = run(r#"repository::put("User", #{f: || 1})"#, json!(null)).unwrap_err();
    assert!(matches!(err.kind, ScriptErrorKind::Runtime(ref m) if m.starts_with("repository::put: object:")), "{err}");
}

#[test]
fn log_functions_log_with_levels_and_json_for_maps() {
    let f = fixture_with(Limits::default(), &[]);
    let src = r#"log::debug("d"); log::info(#{b: 2, a: [1]}); log::warn(42); log::error("e")"#;
    let script = f.sandbox.compile("logger", src).unwrap();
    let engine = f.sandbox.engine();
    let logs = capture_logs(|| {
        let _ = engine.run(&script, ().into(), &CallContext::new("req-7")).unwrap();
    });
    let got: Vec<_> = logs
        .iter()
        .filter(|e| e.target == crate::LOG_TARGET)
        .map(|e| (e.level, e.fields["message"].clone(), e.fields["request_id"].clone()))
        .collect();
    use tracing::Level;
    assert_eq!(
        got,
        vec![
            (Level::DEBUG, "d".to_string(), "req-7".to_string()),
            (Level::INFO, r#"{"a":[1],"b":2}"#.to_string(), "req-7".to_string()),
            (Level::WARN, "42".to_string(), "req-7".to_string()),
            (Level::ERROR, "e".to_string(), "req-7".to_string()),
        ]
    );
    assert!(logs.iter().all(|e| e.target != crate::LOG_TARGET || e.fields["function"] == "logger"));
}

#[test]
fn datetime_functions() {
    let src = r#"
        let t = "2018-03-24T10:20:48.123Z";
        #{now: datetime::now(), now_ms: datetime::now_millis(),
          ms: datetime::to_millis(t), back: datetime::from_millis(1521886848123),
          later: datetime::add_seconds(t, 3600), earlier: datetime::add_seconds(t, -0.5),
          date: datetime::date(t), from_offset: datetime::to_millis("2018-03-24T13:20:48.123+03:00")}
    "#;
    let before = Utc::now().timestamp_millis();
    let out = run(src, json!(null)).unwrap();
    let after = Utc::now().timestamp_millis();
    let now = out["now"].as_str().unwrap();
    assert!(now.ends_with('Z') && now.len() == 24, "{now}");
    let now_ms = DateTime::parse_from_rfc3339(now).unwrap().timestamp_millis();
    assert!((before..=after).contains(&now_ms));
    assert!((before..=after).contains(&out["now_ms"].as_i64().unwrap()));
    assert_eq!(out["ms"], json!(1521886848123i64));
    assert_eq!(out["from_offset"], json!(1521886848123i64));
    assert_eq!(out["back"], json!("2018-03-24T10:20:48.123Z"));
    assert_eq!(out["later"], json!("2018-03-24T11:20:48.123Z"));
    assert_eq!(out["earlier"], json!("2018-03-24T10:20:47.623Z"));
    assert_eq!(out["date"], json!("2018-03-24Z"));
}

#[test]
fn datetime_bad_input_names_the_input() {
    let err = run(r#"datetime::to_millis("yesterday")"#, json!(null)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("datetime::to_millis") && msg.contains("\"yesterday\""), "{msg}");
    let err = run("datetime::from_millis(9223372036854775807)", json!(null)).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let src = r#"let r = (); try { datetime::date("x") } catch (e) { r = e; } r"#;
    let err = run(src, json!(null)).unwrap();
    assert!(err.as_str().unwrap().contains("\"x\""));
}

#[test]
fn datetime_formats_and_nanoseconds() {
    let src = r#"
        #{
          parsed: datetime::parse("24.03.2018 10:20:48.123", "dd.MM.yyyy HH:mm:ss.SSS"),
          tdg_name: datetime::custom_datetime_str_to_nsec("24.03.2018 10:20:48.123", "dd.MM.yyyy HH:mm:ss.SSS"),
          offset: datetime::parse("2018-03-24T13:20:48+03:00", "yyyy-MM-dd'T'HH:mm:ssXXX"),
          zulu: datetime::parse("2018-03-24T10:20:48Z", "yyyy-MM-dd'T'HH:mm:ssXXX"),
          no_colon: datetime::parse("2018-03-24T13:20:48+0300", "yyyy-MM-dd'T'HH:mm:ssZ"),
          utc_written: datetime::format(1521886848123, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
          date_only: datetime::parse("24/03/2018", "dd/MM/yyyy"),
          strftime: datetime::parse("2018-03-24 10:20:48", "%Y-%m-%d %H:%M:%S"),
          formatted: datetime::format(1521886848123, "dd.MM.yyyy HH:mm:ss.SSS"),
          tdg_format: datetime::millisec_to_formatted_datetime(1521886848123, "yyyy-MM-dd'T'HH:mm:ss"),
          words: datetime::format(1521886848123, "EEEE, d MMMM yyyy, h:mm a"),
          nanos: datetime::format_nsec(1521886848123456789, "HH:mm:ss.SSSSSSSSS"),
          to_nsec: datetime::to_nsec("2018-03-24T10:20:48.123456789Z"),
          from_nsec: datetime::from_nsec(1521886848123456789),
          now_nsec: datetime::now_nsec(),
        }
    "#;
    let before = Utc::now().timestamp_nanos_opt().unwrap();
    let out = run(src, json!(null)).unwrap();
    assert_eq!(out["parsed"], json!(1521886848123000000i64));
    assert_eq!(out["tdg_name"], out["parsed"]);
    assert_eq!(out["offset"], json!(1521886848000000000i64), "the offset is applied");
    assert_eq!(out["zulu"], out["offset"], "Z is zero, as ICU's X reads it");
    assert_eq!(out["no_colon"], out["offset"]);
    assert_eq!(out["utc_written"], "2018-03-24T10:20:48.123Z");
    assert_eq!(out["date_only"], json!(1521849600000000000i64), "midnight UTC");
    assert_eq!(out["strftime"], json!(1521886848000000000i64));
    assert_eq!(out["formatted"], "24.03.2018 10:20:48.123");
    assert_eq!(out["tdg_format"], "2018-03-24T10:20:48");
    assert_eq!(out["words"], "Saturday, 24 March 2018, 10:20 AM");
    assert_eq!(out["nanos"], "10:20:48.123456789");
    assert_eq!(out["to_nsec"], json!(1521886848123456789i64));
    assert_eq!(out["from_nsec"], "2018-03-24T10:20:48.123456789Z");
    assert!(out["now_nsec"].as_i64().unwrap() >= before);

    for (src, want) in [
        (
            r#"datetime::parse("2018-03-24", "dd.MM.yyyy")"#,
            r#"datetime::parse: "2018-03-24" does not match the format "dd.MM.yyyy""#,
        ),
        (r#"datetime::parse("2018", "yyyy-qq")"#, "datetime::parse: the pattern letter 'q' x2 is not supported"),
        (r#"datetime::format(0, "%Q")"#, "datetime::format: an unknown % directive"),
        (
            r#"datetime::format(9223372036854775807, "yyyy")"#,
            "datetime::format: 9223372036854775807 ms is out of the nanosecond range",
        ),
        (r#"datetime::parse("01.01.2300", "dd.MM.yyyy")"#, "out of the nanosecond range"),
        (r#"datetime::to_nsec("soon")"#, "datetime::to_nsec: \"soon\" is not an ISO-8601 date-time"),
        (r#"datetime::parse(5, "yyyy")"#, "datetime::parse"),
    ] {
        let err = run(src, json!(null)).unwrap_err().to_string();
        assert!(err.contains(want), "{src}: {err}");
    }
}

#[test]
fn decimal_arithmetic_is_exact_on_strings() {
    let src = r#"
        #{
          add: decimal::add("0.1", "0.2"), scale: decimal::add("1.10", "2.2"), int: decimal::add("12.50", 3),
          sub: decimal::sub("1", "0.01"), mul: decimal::mul("12.50", "3"), div: decimal::div("1", "3"),
          div_scale: decimal::div("2", "3", 2), div_exact: decimal::div("10.00", "4"), rem: decimal::rem("10", "3"),
          div_padded: decimal::div("10", "4", 2), zero: decimal::neg("0"), small: decimal::round("-0.001", 2),
          round: decimal::round("2.345", 2), round_neg: decimal::round("-2.345", 2), round_up: decimal::round("2.5", 2),
          cmp: [decimal::cmp("1.0", "1"), decimal::cmp("0.99", "1"), decimal::cmp("2", 1)],
          abs: decimal::abs("-3.20"), neg: decimal::neg("3.20"),
          valid: [decimal::is_decimal("1.5"), decimal::is_decimal("x"), decimal::is_decimal(3), decimal::is_decimal(1.5)],
        }
    "#;
    let out = run(src, json!(null)).unwrap();
    assert_eq!(out["add"], "0.3");
    assert_eq!(out["scale"], "3.30");
    assert_eq!(out["int"], "15.50");
    assert_eq!(out["sub"], "0.99");
    assert_eq!(out["mul"], "37.50");
    assert_eq!(out["div"], "0.3333333333333333333333333333");
    assert_eq!(out["div_scale"], "0.67");
    assert_eq!(out["div_exact"], "2.5");
    assert_eq!(out["rem"], "1");
    assert_eq!(out["div_padded"], "2.50", "the scale asked");
    assert_eq!((out["zero"].as_str(), out["small"].as_str()), (Some("0"), Some("0.00")), "no negative zero");
    assert_eq!(out["round"], "2.35", "half away from zero");
    assert_eq!(out["round_neg"], "-2.35");
    assert_eq!(out["round_up"], "2.50", "written with the scale asked");
    assert_eq!(out["cmp"], json!([0, -1, 1]));
    assert_eq!(out["abs"], "3.20");
    assert_eq!(out["neg"], "-3.20");
    assert_eq!(out["valid"], json!([true, false, true, false]));

    for (src, want) in [
        (r#"decimal::add("1,5", "1")"#, r#"decimal::add: "1,5" is not a decimal number"#),
        (
            r#"decimal::add(0.1, "1")"#,
            "decimal::add: 0.1 is a float, which is not exact: pass the decimal as a string (\"0.1\")",
        ),
        (r#"decimal::mul([1], "1")"#, "decimal::mul: expected a decimal string or an integer, got array"),
        (r#"decimal::div("1", "0")"#, "decimal::div: division by zero"),
        (r#"decimal::div("1", 0, 2)"#, "decimal::div: division by zero"),
        (r#"decimal::rem("1", "0.0")"#, "decimal::rem: division by zero"),
        (r#"decimal::round("1.5", 29)"#, "decimal::round: the scale must be 0 to 28, got 29"),
        (r#"decimal::round("1.5", -1)"#, "the scale must be 0 to 28, got -1"),
        (r#"decimal::mul("79228162514264337593543950335", "10")"#, "decimal::mul: the result is out of range"),
        (r#"decimal::add("0.12345678901234567890123456789", "0")"#, "is not a decimal number"),
        (r#"decimal::add("1_000", "0")"#, "digit separators are not allowed"),
    ] {
        let err = run(src, json!(null)).unwrap_err().to_string();
        assert!(err.contains(want), "{src}: {err}");
    }
}

#[test]
fn uuid_new_is_a_fresh_v4() {
    let out = run("[uuid::new(), uuid::new()]", json!(null)).unwrap();
    let a = uuid::Uuid::parse_str(out[0].as_str().unwrap()).unwrap();
    let b = uuid::Uuid::parse_str(out[1].as_str().unwrap()).unwrap();
    assert_eq!(a.get_version_num(), 4);
    assert_ne!(a, b);
}

#[test]
fn json_encode_and_decode() {
    let src = r#"
        let text = json::encode(#{n: 4611686018427387904, f: 1.5, s: "x", u: (), a: [true]});
        let back = json::decode(text);
        #{text: text, back: back, big: back.n + 1}
    "#;
    let out = run(src, json!(null)).unwrap();
    assert_eq!(out["text"], json!(r#"{"a":[true],"f":1.5,"n":4611686018427387904,"s":"x","u":null}"#));
    assert_eq!(out["back"]["n"], json!(1i64 << 62));
    assert_eq!(out["big"], json!((1i64 << 62) + 1));
}

#[test]
fn json_decode_errors_give_line_and_column() {
    let err = run("json::decode(\"{\\n  \\\"a\\\": ]\")", json!(null)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("json::decode") && msg.contains("line 2 column"), "{msg}");
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let err = run("json::decode(param)", json!(deep)).unwrap_err();
    assert!(err.to_string().contains("json::decode"), "{err}");
}

#[test]
fn json_decode_result_is_bounded_by_size_limits() {
    let limits = Limits { max_array_size: 10, ..Limits::default() };
    let f = fixture_with(limits, &[]);
    let err = f.run("json::decode(param)", json!("[1,2,3,4,5,6,7,8,9,10,11,12]")).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Limit(crate::LimitKind::ArraySize));
}

#[test]
fn sequence_next_counts_per_name_and_host_errors_keep_class() {
    let out = run(r#"[sequence::next("a"), sequence::next("a"), sequence::next("b")]"#, json!(null)).unwrap();
    assert_eq!(out, json!([1, 2, 1]));
    let err = run(r#"sequence::next("broken")"#, json!(null)).unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Internal);
}

#[test]
fn shared_store_is_shared_between_engines_of_one_sandbox() {
    let f = fixture_with(Limits::default(), &[]);
    let set = f.sandbox.compile("set", r#"shared::set("cache", "k", #{v: param}); shared::get("cache", "k")"#).unwrap();
    let get = f
        .sandbox
        .compile("get", r#"[shared::get("cache", "k"), shared::get("cache", "absent"), shared::remove("cache", "k"), shared::get("cache", "k")]"#)
        .unwrap();
    let ctx = CallContext::new("r");
    let one = f.sandbox.engine();
    let two = f.sandbox.engine();
    assert_eq!(one.run_json(&set, json!(5), &ctx).unwrap(), json!({"v": 5}));
    assert_eq!(f.sandbox.shared_keys(), 1);
    let out = two.run_json(&get, json!(null), &ctx).unwrap();
    assert_eq!(out, json!([{"v": 5}, null, {"v": 5}, null]));
    assert_eq!(f.sandbox.shared_keys(), 0);
}

/// A data scope that allows reading `User` only, and counts its checks.
#[derive(Debug, Default)]
struct ReadUsers(std::sync::Mutex<Vec<String>>);

impl crate::DataScope for ReadUsers {
    fn check(&self, function: &str, need: crate::DataNeed<'_>) -> Result<(), HostError> {
        self.0.lock().unwrap().push(format!("{function} {need:?}"));
        match need {
            crate::DataNeed::Read("User") => Ok(()),
            other => Err(HostError::UserData(format!("may not {other:?}"))),
        }
    }
}

#[test]
fn a_call_on_a_callers_behalf_checks_every_repository_call_before_the_host_sees_it() {
    let f = fixture_with(Limits::default(), &[]);
    f.run(r#"repository::put("User", #{id: 1, name: "ann"})"#, json!(null)).unwrap();
    let scope = std::sync::Arc::new(ReadUsers::default());
    let ctx = CallContext { scope: Some(scope.clone()), ..CallContext::new("req-2") };
    let run = |src: &str| {
        let script = f.sandbox.compile("service", src).unwrap();
        f.sandbox.engine().run_json(&script, json!(null), &ctx)
    };
    assert_eq!(run(r#"repository::find("User", []).len()"#).unwrap(), json!(1));
    assert_eq!(run(r#"repository::get("User", "id", 1).name"#).unwrap(), json!("ann"));
    for (src, refused) in [
        (r#"repository::put("User", #{id: 2, name: "bob"})"#, r#"Write("User")"#),
        // `if_not_exists` answers the stored object: it reads, too.
        (r#"repository::put("User", #{id: 1, name: "x"}, #{if_not_exists: true})"#, r#"ReadWrite("User")"#),
        (r#"repository::update("User", [], [["$name", "set", "x"]])"#, r#"ReadWrite("User")"#),
        (r#"repository::delete("User", [])"#, r#"ReadWrite("User")"#),
        (r#"repository::find("Secret", [])"#, r#"Read("Secret")"#),
        (r#"repository::push_job("reindex", #{})"#, "Jobs"),
    ] {
        let e = run(src).unwrap_err();
        assert!(matches!(&e.kind, ScriptErrorKind::Host(HostError::UserData(m)) if m.contains(refused)), "{src}: {e}");
    }
    // The script may catch a refusal; the host still saw nothing of the refused calls.
    assert_eq!(
        run(r#"let r = "deleted"; try { repository::delete("User", []); } catch (e) { r = "refused"; } r"#).unwrap(),
        json!("refused")
    );
    assert_eq!(f.repo.objects.lock().unwrap().len(), 1);
    assert!(f.repo.jobs.lock().unwrap().is_empty());
    assert_eq!(scope.0.lock().unwrap().len(), 9);
    // A call without a scope (a pipeline) is not checked.
    f.run(r#"repository::put("Secret", #{id: 1})"#, json!(null)).unwrap();
    assert_eq!(scope.0.lock().unwrap().len(), 9);
}

#[test]
fn digest_hashes_and_encodings_match_known_values_and_bad_input_is_a_clear_error() {
    let out = run(
        r#"#{
            sha256: digest::sha256_hex("abc"),
            sha1: digest::sha1_hex("abc"),
            md5: digest::md5_hex("abc"),
            crc32: digest::crc32("123456789"),
            b64: digest::base64_encode("Джон Смит"),
            back: digest::base64_decode(digest::base64_encode("Джон Смит")),
            url_safe: digest::base64_decode("Pz8-"),
            unpadded: digest::base64_decode("aGk"),
            wrapped: digest::base64_decode("aGVs\nbG8="),
            hex: digest::hex_encode("hi"),
            unhex: digest::hex_decode("6869"),
        }"#,
        json!(null),
    );
    let out = out.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((out["url_safe"].as_str(), out["unpadded"].as_str()), (Some("??>"), Some("hi")));
    assert_eq!(out["wrapped"], "hello");
    assert_eq!(out["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(out["sha1"], "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(out["md5"], "900150983cd24fb0d6963f7d28e17f72");
    // CRC-32C of "123456789" is 0xE3069283; Tarantool's has no final XOR: its complement.
    assert_eq!(out["crc32"], 0x1CF9_6D7C);
    assert_eq!(out["back"], "Джон Смит");
    assert_eq!(out["hex"], "6869");
    assert_eq!(out["unhex"], "hi");
    for (src, says) in [
        (r#"digest::base64_decode("!!!")"#, "digest::base64_decode: not base64"),
        (r#"digest::hex_decode("zz")"#, "digest::hex_decode: not hex"),
        (r#"digest::hex_decode("ff")"#, "not UTF-8 text"),
        (r#"digest::sha256_hex(42)"#, "sha256_hex"),
    ] {
        let e = run(src, json!(null)).unwrap_err().to_string();
        assert!(e.contains(says), "{src}: {e}");
    }
}

#[test]
fn map_reduce_streams_every_page_through_closures_or_named_functions() {
    let f = fixture_with(Limits::default(), &[]);
    for (id, city, amount) in [(1, "Oslo", 10), (2, "Rome", 5), (3, "Oslo", 7), (4, "Lima", 1), (5, "Rome", 2)] {
        f.run(&format!(r#"repository::put("Sale", #{{id: {id}, city: "{city}", amount: {amount}}})"#), json!(null))
            .unwrap();
    }
    // Closures: totals per city over five objects in three pages of two.
    let by_city = f
        .run(
            r#"repository::map_reduce("Sale", [], (),
                |sale, args| if sale.amount >= args.least { sale } else { () },
                |state, sale, args| { let t = state[sale.city] ?? 0; state[sale.city] = t + sale.amount; state },
                |state, totals, args| { state.cities = totals; state.note = args; state },
                #{map_args: #{least: 2}, reduce_args: "done", reduce_initial_state: #{cities: ()}})"#,
            json!(null),
        )
        .unwrap();
    assert_eq!(by_city, json!({"cities": {"Oslo": 17, "Rome": 7}, "note": "done"}));

    // Named functions of the configuration get param = #{object, args} / #{state, value, args}.
    f.sandbox.compile("sale_amount", "param.object.amount * param.args").unwrap();
    f.sandbox.compile("sum", "param.state + param.value").unwrap();
    f.sandbox.compile("finish", "#{total: param.value, initial: param.state}").unwrap();
    f.sandbox.compile("boom", r#"throw "boom""#).unwrap();
    let total = f
        .run(
            r#"repository::map_reduce("Sale", [], (), "sale_amount", "sum", "finish",
                #{map_args: 10, combine_initial_state: 0, reduce_initial_state: "none"})"#,
            json!(null),
        )
        .unwrap();
    assert_eq!(total, json!({"total": 250, "initial": "none"}));
    // Without combine and reduce: the map results, in order.
    let ids = f.run(r#"repository::map_reduce("Sale", [], (), |s, a| s.id, (), ())"#, json!(null)).unwrap();
    assert_eq!(ids, json!([1, 2, 3, 4, 5]));

    for (src, says) in [
        (r#"repository::map_reduce("Sale", [], (), (), (), ())"#, "map_fn is needed"),
        (r#"repository::map_reduce("Sale", [], (), "nope", (), ())"#, "no function \"nope\""),
        (r#"repository::map_reduce("Sale", [], (), 42, (), ())"#, "a closure"),
        (r#"repository::map_reduce("Sale", [], "v1", |s, a| 1, (), ())"#, "version: an integer"),
        (r#"repository::map_reduce("Sale", [], (), |s, a| 1, (), (), #{colour: 1})"#, "unknown option \"colour\""),
        (r#"repository::map_reduce("Sale", [], (), |s, a| s.missing.deeper, (), ())"#, "Unknown property 'deeper'"),
        (r#"repository::map_reduce("Sale", [], (), "boom", (), ())"#, "boom"),
    ] {
        let e = f.run(src, json!(null)).unwrap_err().to_string();
        assert!(e.contains(says), "{src}: {e}");
    }
    let named = f.run(r#"repository::map_reduce("Sale", [], (), "boom", (), ())"#, json!(null)).unwrap_err();
    assert!(named.to_string().contains("boom"), "{named}");

    // One map_reduce inside the step of another is refused (its steps run on fresh states).
    f.sandbox.compile("nested", r#"repository::map_reduce("Sale", [], (), "nested", (), ())"#).unwrap();
    for step in [r#""nested""#, r#"|s, a| repository::map_reduce("Sale", [], (), |x, y| 1, (), ())"#] {
        let e = f.run(&format!(r#"repository::map_reduce("Sale", [], (), {step}, (), ())"#), json!(null)).unwrap_err();
        assert!(e.to_string().contains("cannot run inside a step"), "{step}: {e}");
    }
    // Many cheap steps: the deadline is looked at before each object, not only inside a step.
    let many = fixture_with(Limits { timeout_ms: 30, ..Limits::default() }, &[]);
    for id in 0..3000 {
        many.repo.objects.lock().unwrap().push(("Sale".to_string(), json!({"id": id})));
    }
    let e = many.run(r#"repository::map_reduce("Sale", [], (), |s, a| 1, |t, v, a| t, ())"#, json!(null)).unwrap_err();
    assert!(matches!(e.kind, ScriptErrorKind::Timeout), "{e}");
    // The script's budgets (operations, deadline) hold inside the map function, and stay limits.
    let slow = fixture_with(Limits { timeout_ms: 200, ..Limits::default() }, &[]);
    slow.run(r#"repository::put("Sale", #{id: 1})"#, json!(null)).unwrap();
    slow.sandbox.compile("spin", "loop { }").unwrap();
    for map in ["|s, a| { loop { } }", r#""spin""#] {
        let e =
            slow.run(&format!(r#"repository::map_reduce("Sale", [], (), {map}, (), ())"#), json!(null)).unwrap_err();
        assert!(matches!(e.kind, ScriptErrorKind::Timeout | ScriptErrorKind::Limit(_)), "{map}: {e}");
    }
}

/// Rhai counts each evaluation's operations from 0; the configuration functions a script runs
/// spend the script's budget all the same.
#[test]
fn configuration_functions_a_script_calls_spend_its_operation_budget() {
    let f = fixture_with(Limits { max_operations: 200_000, ..Limits::default() }, &[]);
    f.run(r#"repository::put("Sale", #{id: 1})"#, json!(null)).unwrap();
    // Some 40,000-60,000 operations a run: one fits in the budget, ten do not.
    f.sandbox.compile("spin", "let n = 0; for i in 0..20000 { n += i; } n").unwrap();
    let once = r#"repository::call_on_storage("Sale", "id", 1, "spin", ())"#;
    assert_eq!(f.run(once, json!(null)).unwrap(), json!(199_990_000));
    for src in [
        r#"for i in 0..10 { repository::call_on_storage("Sale", "id", 1, "spin", ()); }"#,
        r#"for i in 0..10 { repository::map_reduce("Sale", [], (), "spin", (), ()); }"#,
    ] {
        let e = f.run(src, json!(null)).unwrap_err();
        assert_eq!(e.kind, ScriptErrorKind::Limit(LimitKind::Operations), "{src}: {e}");
    }
    // The next call has its whole budget again.
    assert_eq!(f.run(once, json!(null)).unwrap(), json!(199_990_000));
}

#[test]
fn call_on_storage_checks_the_key_and_runs_a_configuration_function() {
    let f = fixture_with(Limits::default(), &[]);
    f.run(r#"repository::put("Sale", #{id: 1, amount: 10})"#, json!(null)).unwrap();
    f.sandbox.compile("total", r#"let s = repository::get("Sale", "id", param.id); s.amount * param.times"#).unwrap();
    f.sandbox.compile("again", r#"repository::call_on_storage("Sale", "id", 1, "again", param)"#).unwrap();
    f.sandbox.compile("boom", r#"throw "boom on storage""#).unwrap();
    let out = f
        .run(
            r#"[repository::call_on_storage("Sale", "id", 1, "total", #{id: 1, times: 3}),
                repository::call_on_storage("Sale", "id", 99, "total", #{id: 1, times: 2}, #{timeout: 5, mode: "read", prefer_replica: true, balance: true})]"#,
            json!(null),
        )
        .unwrap();
    assert_eq!(out, json!([30, 20]), "the key need not be stored; options are accepted");
    for (src, says) in [
        (
            r#"repository::call_on_storage("Sale", "id", 1, "nope", ())"#,
            "no function \"nope\" in the configuration's functions",
        ),
        (r#"repository::call_on_storage("Sale", "id", 1, "total", (), #{colour: 1})"#, "unknown option \"colour\""),
        (r#"repository::call_on_storage("Sale", "id", 1, "total", (), "fast")"#, "options must be a map"),
        (r#"repository::call_on_storage("Invalid", "id", 1, "total", ())"#, "type Invalid is not in the model"),
        (r#"repository::call_on_storage("Sale", "id", 1, "boom", ())"#, "boom on storage"),
        (r#"repository::call_on_storage("Sale", "id", 1, "again", ())"#, "calls nested deeper than 8"),
        (r#"repository::call_on_storage("Sale", "id", 1, 42, ())"#, "call_on_storage"),
    ] {
        let e = f.run(src, json!(null)).unwrap_err().to_string();
        assert!(e.contains(says), "{src}: {e}");
    }
    // The depth is given back: a call after the refused recursion works.
    assert_eq!(
        f.run(r#"repository::call_on_storage("Sale", "id", 1, "total", #{id: 1, times: 1})"#, json!(null)).unwrap(),
        json!(10)
    );
}
