//! TDG's spellings of `config.yml` (TDG 1.x, 2.16.1), read before validation: a TDG
//! configuration loads once its scripts are ported. Aliases become Ferrogrid's names
//! (`hard-limits` -> `hard_limits`); sections that mean nothing to one Ferrogrid process are
//! taken out, each with a warning naming it and why (`ferrogrid check` prints them, start and
//! apply log them).

use serde_json::Value;

/// Top-level sections TDG reads and Ferrogrid does not, with why.
const NOT_APPLICABLE: [(&str, &str); 11] = [
    ("vshard-timeout", "there is no vshard router: one process answers every call itself"),
    ("gc", "there is no Lua garbage collector to drive (Rust frees memory as it goes)"),
    (
        "force_yield_limits",
        "scans are not cooperative: they are bounded by hard_limits and the script's sandbox.timeout_ms instead",
    ),
    ("graphql_query_chache_size", "GraphQL queries are parsed per request; there is no query cache to size"),
    ("graphql_query_cache_size", "GraphQL queries are parsed per request; there is no query cache to size"),
    ("tracing", "spans are not sent to a tracing system; logs can be JSON lines (--log-format json)"),
    ("maintenance", "clock_delta_threshold_sec compares the clocks of cluster members; one process has one clock"),
    ("tdg-version", "Ferrogrid checks `ferrogrid-version` instead (a semver requirement on Ferrogrid's version)"),
    ("welcome-message", "the web UI shows no welcome message"),
    ("test-soap-data", "the Test page starts from a sample of the input kind chosen"),
    ("pepper", "passwords are argon2id hashes, each with its own salt; a shared pepper is not used"),
];

/// Rewrite TDG's spellings in `config` (the resolved `config.yml`) in place; answers the
/// warnings, and errors for spellings that contradict each other.
pub fn normalize(config: &mut Value) -> (Vec<String>, Vec<super::ConfigError>) {
    let (mut warnings, mut errors) = (Vec::new(), Vec::new());
    let Some(top) = config.as_object_mut() else { return (warnings, errors) };
    if let Some(limits) = top.remove("hard-limits") {
        if top.contains_key("hard_limits") {
            errors.push(super::ConfigError::at("hard-limits", "give hard_limits or TDG's hard-limits, not both"));
        } else {
            top.insert("hard_limits".into(), limits);
        }
    }
    if let Some(metrics) = top.get_mut("metrics").and_then(Value::as_object_mut) {
        if metrics.remove("export").is_some() {
            warnings.push(
                "metrics.export: ignored: GET /metrics answers Prometheus text and GET /health the health; other paths and formats are not served"
                    .into(),
            );
        }
        if metrics.is_empty() {
            top.remove("metrics");
        }
    }
    if top.contains_key("auth_external") {
        // Refused rather than ignored: a deployment relying on it for extra checks must not
        // lose them without knowing.
        errors.push(super::ConfigError::at(
            "auth_external",
            "Lua authorization code cannot run in Ferrogrid: requests are authorized by tokens, users and roles (docs/security.md); port the checks to roles and data actions and remove the section",
        ));
    }
    for (section, why) in NOT_APPLICABLE.iter() {
        if top.remove(*section).is_some() {
            warnings.push(format!("{section}: ignored: {why}"));
        }
    }
    (warnings, errors)
}

/// TDG repository options that only route a call inside a replica set (`mode`,
/// `prefer_replica`, `balance`): notes for the functions that pass them, which are accepted
/// and change nothing on one node.
pub fn routing_option_notes(functions: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, source) in functions {
        let used: Vec<&str> =
            ["prefer_replica", "balance", "mode"].into_iter().filter(|o| mentions_option(source, o)).collect();
        if !used.is_empty() {
            notes.push(format!(
                "functions.{name}: repository option(s) {} are accepted and change nothing: one node holds every object (TDG routes them inside a replica set)",
                used.join(", ")
            ));
        }
    }
    notes
}

/// Whether `source` passes `option` in a map literal (`#{mode: "write"}` or `"mode":`).
fn mentions_option(source: &str, option: &str) -> bool {
    let patterns = [format!("{option}:"), format!("\"{option}\":"), format!("{option} :")];
    // The code of each line, without a `//` comment.
    source.lines().map(|l| l.split("//").next().unwrap_or_default()).any(|line| {
        patterns.iter().any(|p| {
            line.match_indices(p.as_str()).any(|(at, _)| {
                // A whole word: not `timezone_mode:`.
                line[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tdg_spellings_are_read_and_foreign_sections_are_warned_about() {
        let mut config =
            json!({"hard-limits": {"returned": 5}, "gc": {"forced": true}, "vshard-timeout": 2, "types": []});
        let (warnings, errors) = normalize(&mut config);
        assert!(errors.is_empty());
        assert_eq!(config, json!({"hard_limits": {"returned": 5}, "types": []}));
        assert!(
            warnings.iter().any(|w| w.starts_with("vshard-timeout: ignored: there is no vshard router")),
            "{warnings:?}"
        );
        assert!(warnings.iter().any(|w| w.starts_with("gc: ignored")), "{warnings:?}");
        let mut both = json!({"hard-limits": {}, "hard_limits": {}});
        assert_eq!(normalize(&mut both).1.len(), 1);
    }

    #[test]
    fn routing_options_in_scripts_are_noted() {
        let functions = std::collections::BTreeMap::from([
            ("a".to_string(), "repository::find(\"User\", [], #{prefer_replica: true, mode: \"read\"})".to_string()),
            ("b".to_string(), "let timezone_mode: 1; // balance: not code\nlet x = 1;".to_string()),
        ]);
        let notes = routing_option_notes(&functions);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("functions.a: repository option(s) prefer_replica, mode"), "{notes:?}");
    }
}
