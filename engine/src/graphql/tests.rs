//! Schema generation from the model: every Avro type has its GraphQL type, names are valid,
//! aggregates get their filter arguments, cursor, version and relations.

use super::{check, data_schema};
use crate::config::Config;
use crate::model::Model;
use serde_json::json;

fn model() -> Model {
    let schema = json!([
        {"name": "Kind", "type": "enum", "symbols": ["A", "B"]},
        {"name": "geo.Address", "type": "record", "fields": [
            {"name": "city", "type": "string"}, {"name": "building", "type": "int"}]},
        {"name": "Everything", "type": "record", "logicalType": "Aggregate", "doc": "All the types",
         "fields": [
            {"name": "id", "type": "long"},
            {"name": "flag", "type": "boolean"},
            {"name": "small", "type": "int"},
            {"name": "ratio", "type": "float"},
            {"name": "precise", "type": "double"},
            {"name": "name", "type": "string"},
            {"name": "raw", "type": "bytes"},
            {"name": "born", "type": {"type": "string", "logicalType": "Date"}},
            {"name": "at", "type": {"type": "string", "logicalType": "DateTime"}},
            {"name": "alarm", "type": {"type": "string", "logicalType": "Time"}},
            {"name": "amount", "type": {"type": "string", "logicalType": "Decimal"}},
            {"name": "kind", "type": "Kind"},
            {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 2}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "extra", "type": {"type": "map", "values": "long"}},
            {"name": "address", "type": "geo.Address"},
            {"name": "old_addresses", "type": {"type": "array", "items": "geo.Address"}},
            {"name": "nickname", "type": ["null", "string"]},
            {"name": "either", "type": ["string", "long"]}
         ],
         "indexes": ["id", {"name": "by_name", "parts": ["name", "small"]}, "tags", "address.city"]}
    ]);
    Model::parse(&schema, &|_| false).unwrap()
}

fn sdl() -> String {
    data_schema(&model(), &Config::default()).unwrap().finish().unwrap().sdl()
}

fn type_block(sdl: &str, name: &str) -> String {
    let start = sdl.find(&format!("type {name} {{")).unwrap_or_else(|| panic!("no type {name} in\n{sdl}"));
    sdl[start..].split("\n}").next().unwrap_or_default().to_string()
}

#[test]
fn every_avro_type_has_a_graphql_type() {
    let sdl = sdl();
    let everything = type_block(&sdl, "Everything");
    for field in [
        "id: Long!",
        "flag: Boolean!",
        "small: Int!",
        "ratio: Float!",
        "precise: Float!",
        "name: String!",
        "raw: String!",
        "born: String!",
        "at: String!",
        "alarm: String!",
        "amount: String!",
        "kind: String!",
        "code: String!",
        "tags: [String!]!",
        "extra: JSON!",
        "address: geo_Address!",
        "old_addresses: [geo_Address!]!",
        "nickname: String",
        "either: JSON!",
        "cursor: String",
        "version: Long",
    ] {
        assert!(everything.contains(field), "missing {field:?} in\n{everything}");
    }
    let address = type_block(&sdl, "geo_Address");
    assert!(address.contains("city: String!") && address.contains("building: Int!"), "{address}");
    assert!(!address.contains("cursor"), "only aggregates have a cursor");
    assert!(sdl.contains("scalar Long") && sdl.contains("scalar JSON"), "{sdl}");
    assert!(sdl.contains("input geo_Address_insert"), "{sdl}");
}

#[test]
fn root_fields_take_every_index_with_its_suffixes() {
    let sdl = sdl();
    let query = type_block(&sdl, "Query");
    for arg in [
        "id: Long",
        "id_gt: Long",
        "id_le: Long",
        "by_name: [JSON]",
        "by_name_ge: [JSON]",
        "by_name_like: String",
        "tags: String",
        "tags_like: String",
        "address_city: String",
        "address_city_lt: String",
        "first: Int",
        "after: String",
        "version: Long",
        "all_versions: Boolean",
    ] {
        assert!(query.contains(arg), "missing {arg:?} in\n{query}");
    }
    assert!(!query.contains("id_like"), "no like on a long index: {query}");
    let mutation = type_block(&sdl, "Mutation");
    for arg in [
        "insert: Everything_insert",
        "update: [[JSON]]",
        "delete: Boolean",
        "permanent_delete: Boolean",
        "only_if_version: Long",
        "if_not_exists: Boolean",
    ] {
        assert!(mutation.contains(arg), "missing {arg:?} in\n{mutation}");
    }
}

#[test]
fn names_are_valid_graphql_names() {
    let sdl = sdl();
    for line in sdl.lines() {
        let line = line.trim();
        for keyword in ["type ", "input ", "scalar "] {
            if let Some(rest) = line.strip_prefix(keyword) {
                let name = rest.split([' ', '{']).next().unwrap_or_default();
                assert!(super::is_valid(name), "{name} in {line}");
            }
        }
    }
}

#[test]
fn service_declarations_are_checked() {
    let mut config = Config::default();
    let service = |ret: &str, args: &[(&str, &str)]| {
        serde_json::from_value(json!({"function": "f", "return_type": ret,
            "args": args.iter().map(|(a, t)| (a.to_string(), json!(t))).collect::<serde_json::Map<_, _>>()}))
        .unwrap()
    };
    config.services.insert("ok".into(), service("[Everything]", &[("id", "long"), ("names", "[string]")]));
    assert_eq!(check(&model(), &config), Vec::<String>::new());
    config.services.insert("bad".into(), service("Nothing", &[("x", "geo.Address"), ("bad-name", "int")]));
    config.services.insert("Everything".into(), service("string", &[]));
    let errors = check(&model(), &config).join("\n");
    assert!(errors.contains("services.bad.return_type: unknown type \"Nothing\""), "{errors}");
    assert!(errors.contains("services.bad.args.x: \"geo.Address\" is a model type"), "{errors}");
    assert!(errors.contains("services.bad.args.bad-name: not a valid GraphQL name"), "{errors}");
    assert!(errors.contains("services.Everything: the name is taken by an aggregate"), "{errors}");
}

#[test]
fn the_admin_schema_builds_with_tdg_names() {
    let sdl = super::admin_schema().finish().unwrap().sdl();
    for name in [
        "repair_list(",
        "repair(id: String!)",
        "repair_all(",
        "delete_from_repair_queue(id: String!)",
        "clear_repair_queue(",
        "model: String!",
        "hard_limits",
        "get_aggregates: [String!]!",
    ] {
        assert!(sdl.contains(name), "missing {name} in\n{sdl}");
    }
}

#[test]
fn index_names_that_clash_with_arguments_are_reported() {
    let schema = json!([
        {"name": "Person", "type": "record", "logicalType": "Aggregate", "fields": [
            {"name": "id", "type": "long"},
            {"name": "first", "type": "string"},
            {"name": "year", "type": "long"},
            {"name": "year_gt", "type": "long"}
        ], "indexes": ["id", "first", "year", "year_gt"]}
    ]);
    let model = Model::parse(&schema, &|_| false).unwrap();
    let errors = check(&model, &Config::default()).join("\n");
    assert!(
        errors.contains(
            "types: Person: the index first gives the GraphQL argument first, which is an argument of its own"
        ),
        "{errors}"
    );
    assert!(
        errors.contains("types: Person: the indexes year and year_gt both give the GraphQL argument year_gt"),
        "{errors}"
    );
}

#[test]
fn type_names_that_clash_in_graphql_are_reported() {
    let schema = json!([
        {"name": "a.B", "type": "record", "logicalType": "Aggregate", "fields": [{"name": "id", "type": "long"}], "indexes": ["id"]},
        {"name": "a_B", "type": "record", "fields": [{"name": "x", "type": "long"}]},
        {"name": "Query", "type": "record", "fields": [{"name": "x", "type": "long"}]}
    ]);
    let model = Model::parse(&schema, &|_| false).unwrap();
    let errors = check(&model, &Config::default()).join("\n");
    assert!(errors.contains("types: a_B: its GraphQL name a_B is taken by another type"), "{errors}");
    assert!(errors.contains("types: Query: its GraphQL name Query is taken"), "{errors}");
}
