//! GraphQL names for model names: `[_A-Za-z][_0-9A-Za-z]*`, never starting with `__` (reserved
//! for introspection). Avro full names (`ns.Name`) and dotted index names (`header.id`) become
//! `ns_Name` and `header_id`.

/// The GraphQL name of a model name.
pub fn gql_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.starts_with("__") {
        out.insert(0, 'x');
    }
    out
}

/// Whether `name` is a valid GraphQL name.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_becomes_a_valid_graphql_name() {
        for (name, want) in [
            ("User", "User"),
            ("library.User", "library_User"),
            ("header.id", "header_id"),
            ("9lives", "_9lives"),
            ("__secret", "x__secret"),
            ("", "_"),
            ("名前", "__"),
        ] {
            let got = gql_name(name);
            assert_eq!(got, if want == "__" { "x__".to_string() } else { want.to_string() }, "{name}");
            assert!(is_valid(&got), "{name} -> {got}");
        }
        assert!(!is_valid("a-b") && !is_valid("1a") && !is_valid("__typename") && !is_valid(""));
    }
}
