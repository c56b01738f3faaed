//! Configuration checks of the SMTP output (delivery is tested against a real SMTP server in
//! `tests/`).

use super::*;
use serde_json::json;

#[test]
fn problems_name_their_field() {
    let config: SmtpOutputConfig = serde_json::from_value(json!({
        "name": "mail", "url": "http://mail.example.com", "from": "not an address", "to": ["ok@example.com", "@"],
        "ssl_cert": "/no/such/cert.pem"
    }))
    .unwrap();
    let problems: Vec<String> = config.validate().into_iter().map(|p| p.field).collect();
    assert_eq!(problems, ["url", "from", "to[1]", "ssl_cert", "ssl_cert"]);
}

#[test]
fn a_good_config_has_no_problems() {
    let config: SmtpOutputConfig = serde_json::from_value(json!({
        "name": "mail", "url": "smtp://127.0.0.1:2525", "from": "Grid <grid@example.com>"
    }))
    .unwrap();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    assert_eq!(config.subject, "Ferrogrid");
}
