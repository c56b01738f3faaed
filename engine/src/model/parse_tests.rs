//! Tests of model parsing: TDG's library example and every kind of model error, as the user
//! sees them (`Type.field: message`).

use super::{Collation, FieldType, Model, ModelErrors, ScalarKind, TypeKind};
use serde_json::{json, Value};

fn parse(schema: Value) -> Result<Model, ModelErrors> {
    Model::parse(&schema, &|f| f == "new_id" || f == "now")
}

/// The error messages of a schema that must fail.
fn errors(schema: Value) -> Vec<String> {
    match parse(schema) {
        Ok(m) => panic!("schema parsed but should not:\n{}", m.to_text()),
        Err(e) => e.messages(),
    }
}

fn library() -> Value {
    json!([
        {
            "name": "User", "type": "record", "logicalType": "Aggregate", "doc": "reader",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "username", "type": "string"}
            ],
            "indexes": ["id"],
            "relations": [
                {"name": "subscription", "to": "Subscription", "count": "many", "from_fields": "id", "to_fields": "user_id"}
            ]
        },
        {
            "name": "Book", "type": "record", "logicalType": "Aggregate",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "book_name", "type": "string"},
                {"name": "author", "type": "string"}
            ],
            "indexes": ["id"]
        },
        {
            "name": "Subscription", "type": "record", "logicalType": "Aggregate",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "user_id", "type": "long"},
                {"name": "book_id", "type": "long"}
            ],
            "indexes": [{"name": "pkey", "parts": ["id", "user_id"]}, "user_id", "book_id"],
            "affinity": "user_id",
            "relations": [
                {"name": "user", "to": "User", "count": "one", "from_fields": "user_id", "to_fields": "id"}
            ]
        }
    ])
}

/// A one-type schema: an Aggregate `T` with `fields`, `indexes` and extra record keys.
fn one(fields: Value, indexes: Value) -> Value {
    json!([{"name": "T", "type": "record", "logicalType": "Aggregate", "fields": fields, "indexes": indexes}])
}

#[test]
fn tdg_library_example_parses() {
    let m = parse(library()).unwrap();
    let names: Vec<&str> = m.types().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["User", "Book", "Subscription"]);
    assert_eq!(m.aggregates().count(), 3);
    let user = m.get("User").unwrap();
    assert_eq!(user.kind, TypeKind::Aggregate);
    assert_eq!(user.doc.as_deref(), Some("reader"));
    assert_eq!(user.fields[0].ty, FieldType::Long);
    assert_eq!(user.fields[1].ty, FieldType::String);
    assert_eq!(user.primary_index().unwrap().name, "id");

    let sub = m.get("Subscription").unwrap();
    let pkey = &sub.indexes[0];
    assert_eq!(pkey.name, "pkey");
    assert!(pkey.primary && !pkey.multikey);
    let parts: Vec<String> = pkey.parts.iter().map(|p| p.dotted()).collect();
    assert_eq!(parts, ["id", "user_id"]);
    assert_eq!(pkey.parts[1].kind, ScalarKind::Long);
    let key = sub.primary_key_value(&json!({"id": 7, "user_id": 3, "book_id": 1}));
    assert_eq!(key, Some(json!([7, 3])), "a composite key is an array of its parts");
    assert!(!sub.indexes[1].primary);
    assert_eq!(sub.affinity, ["user_id"]);

    let to_subs = user.relation("subscription").unwrap();
    assert_eq!(to_subs.to, "Subscription");
    assert!(to_subs.many);
    assert_eq!(to_subs.from_fields, ["id"]);
    assert_eq!(to_subs.to_fields, ["user_id"]);
    assert_eq!(to_subs.to_index.as_deref(), Some("user_id"));
    let back = sub.relation("user").unwrap();
    assert!(!back.many);
    assert_eq!(back.to_index.as_deref(), Some("id"));
    assert_eq!(m.source(), &library());

    let text = m.to_text();
    assert!(text.contains("Aggregate User -- reader\n  id: long\n  username: string\n"), "{text}");
    assert!(text.contains("    pkey (primary): id long, user_id long\n"), "{text}");
    assert!(text.contains("    subscription -> Subscription (many): id = user_id [index user_id]\n"), "{text}");
    assert!(text.contains("  affinity: user_id\n"), "{text}");
    let outline = m.outline();
    assert_eq!(
        outline[0]["relations"],
        json!([{"name": "subscription", "to": "Subscription", "many": true, "from_fields": ["id"], "to_fields": ["user_id"]}])
    );
    assert_eq!(outline[2]["indexes"][0], json!({"name": "pkey", "primary": true, "parts": ["id", "user_id"]}));
}

#[test]
fn optional_array_gives_multikey_index_and_nullable_int_index() {
    let mut schema = library();
    let user = &mut schema[0];
    user["fields"].as_array_mut().unwrap().extend([
        json!({"name": "phones", "type": ["null", {"type": "array", "items": "string"}]}),
        json!({"name": "year", "type": ["null", "int"]}),
    ]);
    user["indexes"] =
        json!(["id", "phones", {"name": "by_year", "parts": ["year"], "collation": "case_insensitivity"}]);
    let m = parse(schema).unwrap();
    let user = m.get("User").unwrap();
    let phones = user.field("phones").unwrap();
    assert!(phones.optional);
    assert_eq!(phones.ty, FieldType::Array(Box::new(FieldType::String)));
    let ix = user.index("phones").unwrap();
    assert!(ix.multikey && !ix.primary);
    assert!(ix.parts[0].through_array && ix.parts[0].nullable);
    assert_eq!(ix.parts[0].kind, ScalarKind::String);
    let year = user.index("by_year").unwrap();
    assert_eq!(year.collation, Collation::CaseInsensitive);
    assert!(year.parts[0].nullable && !year.multikey);
    assert_eq!(year.parts[0].kind, ScalarKind::Int);
    assert!(m.to_text().contains("    phones (multikey): phones[*] string?\n"), "{}", m.to_text());

    let obj = json!({"id": 1, "username": "a", "phones": ["1", "2", "1"], "year": null});
    assert_eq!(ix.keys(&obj), vec![vec![json!("1")], vec![json!("2")]]);
    assert_eq!(year.keys(&obj), vec![vec![Value::Null]]);
    assert_eq!(user.primary_key(&obj), Some(vec![json!(1)]));
    assert_eq!(user.primary_key_value(&obj), Some(json!(1)), "a one-part key is its value");
    assert!(ix.keys(&json!({"id": 1, "phones": []})).is_empty());
}

#[test]
fn nested_value_object_paths_namespaces_and_forward_references() {
    let schema = json!([
        {
            "name": "Order", "namespace": "shop", "type": "record", "logicalType": "Aggregate",
            "fields": [
                {"name": "header", "type": {"type": "record", "name": "Header", "fields": [
                    {"name": "id", "type": "string"},
                    {"name": "created", "type": {"type": "string", "logicalType": "DateTime"}}
                ]}},
                {"name": "status", "type": "Status"},
                {"name": "lines", "type": {"type": "array", "items": "Line"}}
            ],
            "indexes": ["header.id", {"name": "by_sku", "parts": ["lines.sku", "status"]}]
        },
        {"name": "Line", "namespace": "shop", "type": "record", "fields": [
            {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}
        ]},
        {"name": "Status", "namespace": "shop", "type": "enum", "symbols": ["NEW", "PAID"]}
    ]);
    let m = parse(schema).unwrap();
    let names: Vec<&str> = m.types().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["shop.Order", "shop.Header", "shop.Line"]);
    let order = m.get("shop.Order").unwrap();
    assert_eq!(m.get("shop.Header").unwrap().kind, TypeKind::ValueObject);
    assert_eq!(order.indexes[0].parts[0].path, ["header", "id"]);
    let status = &order.field("status").unwrap().ty;
    assert_eq!(status.to_string(), "enum shop.Status");
    let by_sku = order.index("by_sku").unwrap();
    assert!(by_sku.multikey);
    assert_eq!(by_sku.parts[1].kind, ScalarKind::String);
    assert_eq!(m.get("shop.Header").unwrap().fields[1].ty, FieldType::DateTime);
    let obj = json!({"header": {"id": "h"}, "status": "NEW", "lines": [{"sku": "a"}, {"sku": "b"}]});
    assert_eq!(by_sku.keys(&obj), vec![vec![json!("a"), json!("NEW")], vec![json!("b"), json!("NEW")]]);

    // The outline the UI draws: the record types each field holds, through arrays too.
    let outline = m.outline();
    assert_eq!(outline[0]["name"], "shop.Order");
    assert_eq!(outline[0]["kind"], "Aggregate");
    assert_eq!(
        outline[0]["contains"],
        json!([{"field": "header", "type": "shop.Header"}, {"field": "lines", "type": "shop.Line"}])
    );
    assert_eq!(outline[0]["fields"][2], json!({"name": "lines", "type": "array<record shop.Line>", "optional": false}));
    assert_eq!(outline[0]["indexes"][1], json!({"name": "by_sku", "primary": false, "parts": ["lines.sku", "status"]}));
    assert_eq!(outline[1]["kind"], "ValueObject");
}

#[test]
fn unknown_type_reference_names_type_and_field() {
    let e = errors(one(json!([{"name": "id", "type": "long"}, {"name": "home", "type": "Adress"}]), json!(["id"])));
    assert_eq!(e, ["T.home: unknown type \"Adress\""]);
}

#[test]
fn aggregate_without_primary_index_is_rejected() {
    let e = errors(
        json!([{"name": "T", "type": "record", "logicalType": "Aggregate", "fields": [{"name": "id", "type": "long"}]}]),
    );
    assert_eq!(e, ["T: an Aggregate needs at least one index (the first one is the primary key)"]);
}

#[test]
fn index_on_unknown_field_is_rejected() {
    let e = errors(one(json!([{"name": "id", "type": "long"}]), json!(["id", "nmae"])));
    assert_eq!(e, ["T.nmae: unknown field (type T has no field nmae) (index \"nmae\")"]);
}

#[test]
fn multikey_primary_index_is_rejected() {
    let e = errors(one(json!([{"name": "tags", "type": {"type": "array", "items": "string"}}]), json!(["tags"])));
    assert_eq!(e, ["T.tags: the primary index cannot be multikey: it goes through an array (index \"tags\")"]);
}

#[test]
fn multikey_index_on_datetime_is_rejected() {
    let fields = json!([
        {"name": "id", "type": "long"},
        {"name": "visits", "type": {"type": "array", "items": {"type": "string", "logicalType": "DateTime"}}}
    ]);
    let e = errors(one(fields, json!(["id", {"name": "by_visit", "parts": ["visits"]}])));
    assert_eq!(e, ["T.visits: a multikey index part cannot be DateTime (index \"by_visit\")"]);
}

#[test]
fn index_path_into_entity_is_rejected_but_value_object_is_fine() {
    let schema = |kind: &str| {
        json!([
            {"name": "Customer", "type": "record", "logicalType": kind, "fields": [{"name": "id", "type": "long"}]},
            {"name": "Order", "type": "record", "logicalType": "Aggregate",
             "fields": [{"name": "id", "type": "long"}, {"name": "customer", "type": "Customer"}],
             "indexes": ["id", "customer.id"]}
        ])
    };
    let e = errors(schema("Entity"));
    assert_eq!(e, ["Order.customer: an index path cannot go into Entity record Customer (only into ValueObjects) (index \"customer.id\")"]);
    assert!(parse(schema("ValueObject")).is_ok());
}

#[test]
fn index_part_must_be_scalar() {
    let schema = json!([
        {"name": "Address", "type": "record", "fields": [{"name": "street", "type": "string"}]},
        {"name": "User", "type": "record", "logicalType": "Aggregate",
         "fields": [{"name": "id", "type": "long"}, {"name": "address", "type": "Address"}, {"name": "year", "type": ["null", "int"]}],
         "indexes": ["id", {"name": "by_addr", "parts": ["address"]}]},
        {"name": "Bad", "type": "record", "logicalType": "Aggregate",
         "fields": [{"name": "year", "type": ["null", "int"]}], "indexes": ["year"]}
    ]);
    let e = errors(schema);
    assert_eq!(
        e,
        [
            "User.address: index part must be a scalar, got record Address (index \"by_addr\")",
            "Bad.year: a primary index part cannot be nullable (index \"year\")"
        ]
    );
}

#[test]
fn relation_to_missing_type_is_rejected() {
    let mut schema = library();
    schema[0]["relations"][0]["to"] = json!("Subscripton");
    let e = errors(schema);
    assert_eq!(e, ["User.relations.subscription: target type \"Subscripton\" is not defined"]);
}

#[test]
fn relation_to_value_object_is_rejected() {
    let mut schema = library();
    schema[2]["logicalType"] = json!("ValueObject");
    schema[2].as_object_mut().unwrap().remove("relations");
    let e = errors(schema);
    assert_eq!(e, ["User.relations.subscription: target type Subscription is ValueObject, not an Aggregate"]);
}

#[test]
fn relation_field_mismatch_is_rejected() {
    let mut schema = library();
    schema[0]["fields"][0]["type"] = json!("string");
    schema[0]["relations"][0]["to_fields"] = json!("pkey");
    schema[2]["relations"][0]["to_fields"] = json!("username");
    let e = errors(schema);
    assert_eq!(
        e,
        [
            "User.id: from_fields has 1 part(s) but to_fields has 2 (relation \"subscription\")",
            "User.id: string is not compatible with Subscription.id of type long (relation \"subscription\")",
            "Subscription.user_id: long is not compatible with User.username of type string (relation \"user\")"
        ]
    );
}

#[test]
fn relation_to_unknown_field_is_rejected() {
    let mut schema = library();
    schema[0]["relations"][0]["to_fields"] = json!(["userid"]);
    let e = errors(schema);
    assert_eq!(
        e,
        ["Subscription.userid: unknown field (type Subscription has no field userid) (relation \"subscription\")"]
    );
}

#[test]
fn affinity_outside_primary_key_is_rejected() {
    let mut schema = library();
    schema[2]["affinity"] = json!(["user_id", "book_id"]);
    let e = errors(schema);
    assert_eq!(e, ["Subscription.book_id: affinity field is not part of the primary key (id, user_id)"]);
}

#[test]
fn auto_increment_rules() {
    let fields = json!([
        {"name": "id", "type": "long", "auto_increment": true},
        {"name": "code", "type": "string", "auto_increment": true},
        {"name": "n", "type": "long", "auto_increment": true, "default": 1},
        {"name": "k", "type": "long", "auto_increment": true, "default_function": "new_id"}
    ]);
    let e = errors(one(fields, json!(["id"])));
    assert_eq!(
        e,
        [
            "T.code: auto_increment needs type long, got string",
            "T.n: auto_increment cannot be combined with default",
            "T.k: auto_increment cannot be combined with default_function"
        ]
    );
    let ok = parse(one(json!([{"name": "id", "type": "long", "auto_increment": true}]), json!(["id"]))).unwrap();
    assert!(ok.get("T").unwrap().fields[0].auto_increment);
}

#[test]
fn default_function_must_exist() {
    let fields = json!([
        {"name": "id", "type": "long", "default_function": "new_id"},
        {"name": "at", "type": "string", "default_function": "nwo"}
    ]);
    let e = errors(one(fields.clone(), json!(["id"])));
    assert_eq!(e, ["T.at: default_function \"nwo\" is not a defined function"]);
    let m = Model::parse(&one(fields, json!(["id"])), &|_| true).unwrap();
    assert_eq!(m.get("T").unwrap().fields[1].default_function.as_deref(), Some("nwo"));
}

#[test]
fn defaults_are_checked_and_normalised() {
    let fields = json!([
        {"name": "id", "type": "long"},
        {"name": "since", "type": {"type": "string", "logicalType": "DateTime"}, "default": "2020-01-01T03:00:00+03:00"},
        {"name": "n", "type": "int", "default": "abc"},
        {"name": "s", "type": ["null", "string"], "default": null}
    ]);
    let e = errors(one(fields.clone(), json!(["id"])));
    assert_eq!(e, ["T.n: invalid default: expected int, got string \"abc\""]);
    let mut fields = fields;
    fields[2]["default"] = json!(7);
    let m = parse(one(fields, json!(["id"]))).unwrap();
    let t = m.get("T").unwrap();
    assert_eq!(t.fields[1].default, Some(json!("2020-01-01T00:00:00Z")));
    assert_eq!(t.fields[2].default, Some(json!(7)));
    assert_eq!(t.fields[3].default, Some(Value::Null));
    assert!(t.fields[3].optional);
}

#[test]
fn all_errors_are_reported_together() {
    let schema = json!([
        {"name": "A", "type": "record", "logicalType": "Aggregate", "fields": [{"name": "x", "type": "strin"}]},
        {"name": "B", "type": "record", "logicalType": "Agregate", "fields": [{"name": "y", "type": "long"}], "indexes": ["z"]},
        {"name": "A", "type": "record", "fields": []}
    ]);
    let e = errors(schema);
    assert_eq!(
        e,
        [
            "A: type is defined more than once",
            "A.x: unknown type \"strin\"",
            "B: unknown logicalType \"Agregate\" (expected Aggregate, Entity or ValueObject)",
            "A: an Aggregate needs at least one index (the first one is the primary key)",
            "B.z: unknown field (type B has no field z) (index \"z\")"
        ]
    );
}

#[test]
fn malformed_avro_is_reported_with_location() {
    let schema = json!([
        {"name": "1Bad", "type": "record", "fields": []},
        {"name": "E", "type": "enum", "symbols": ["A", "A", "b-c"]},
        {"name": "R", "type": "record", "fields": [
            {"name": "u", "type": ["int", "int"]},
            {"name": "d", "type": "long", "logicalType": "Date"},
            {"name": "a", "type": {"type": "array"}},
            {"name": "u", "type": "int"}
        ]},
        "string"
    ]);
    let e = errors(schema);
    assert_eq!(
        e,
        [
            "1Bad: invalid type name \"1Bad\"",
            "E: enum symbol A is listed twice",
            "E: invalid enum symbol \"b-c\"",
            "types[3]: expected a named type definition (record, enum or fixed)",
            "R.u: union lists int more than once",
            "R.d: logicalType Date needs \"type\": \"string\"",
            "R.a: an array needs \"items\"",
            "R.u: field is defined more than once"
        ]
    );
    assert_eq!(errors(json!("User")), ["types: expected a JSON array of record types"]);
}

#[test]
fn empty_model_and_single_record_schema() {
    let m = Model::empty();
    assert_eq!(m.types().count(), 0);
    assert_eq!(m.to_text(), "");
    let single = json!({"name": "P", "type": "record", "logicalType": "Aggregate", "fields": [{"name": "id", "type": "string"}], "indexes": ["id"]});
    let m = parse(single).unwrap();
    assert_eq!(m.get("P").unwrap().kind, TypeKind::Aggregate);
    assert!(parse(json!([])).unwrap().get("P").is_none());
}

#[test]
fn problems_only_apache_avro_sees_are_reported_too() {
    let schema = json!([
        {"name": "S", "type": "enum", "symbols": ["A"], "default": "B"},
        {"name": "T", "type": "record", "logicalType": "Aggregate", "fields": [{"name": "id", "type": "S"}], "indexes": ["id"]}
    ]);
    let e = errors(schema);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("types: Avro: "), "{e:?}");
    assert!(e[0].contains("B"), "{e:?}");
}

#[test]
fn index_definition_errors_are_reported() {
    let fields = json!([
        {"name": "id", "type": "long"},
        {"name": "a", "type": {"type": "array", "items": "string"}},
        {"name": "b", "type": {"type": "array", "items": "string"}},
        {"name": "m", "type": {"type": "array", "items": {"type": "array", "items": "long"}}}
    ]);
    let indexes = json!([
        "id",
        {"name": "x", "parts": ["a"], "collation": "unicode"},
        {"parts": ["a"]},
        {"name": "y", "part": ["a"]},
        {"name": "ab", "parts": ["a", "b"]},
        {"name": "mm", "parts": ["m"]},
        {"name": "a", "parts": ["a"]},
        {"name": "a", "parts": ["b"]},
        42
    ]);
    let e = errors(one(fields, indexes));
    assert_eq!(
        e,
        [
            "T.indexes.x: collation must be binary, case_sensitivity or case_insensitivity",
            "T.indexes[2]: an index needs a \"name\"",
            "T.indexes[3]: unknown key \"part\" (expected name, parts, collation)",
            "T.indexes.ab: all multikey parts of an index must go through the same array",
            "T.m: an index path can go through only one array (index \"mm\")",
            "T.indexes.a: index name is used more than once",
            "T.indexes[8]: an index is a field name or {\"name\": ..., \"parts\": [...]}"
        ]
    );
}

#[test]
fn field_level_logical_type_and_recursive_records() {
    let schema = json!([{
        "name": "Node", "type": "record", "logicalType": "Aggregate",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "at", "type": "string", "logicalType": "DateTime"},
            {"name": "next", "type": ["null", "Node"]}
        ],
        "indexes": ["id", "at"]
    }]);
    let m = parse(schema).unwrap();
    let node = m.get("Node").unwrap();
    assert_eq!(node.field("at").unwrap().ty, FieldType::DateTime);
    assert_eq!(node.index("at").unwrap().parts[0].kind, ScalarKind::DateTime);
    assert_eq!(node.field("next").unwrap().ty, FieldType::Record("Node".into()));
    let obj = json!({"id": "a", "at": "2020-01-01T00:00:00Z", "next": {"id": "b", "at": "bad"}});
    let err = m.validate("Node", &obj, &mut super::NoHooks).unwrap_err();
    assert_eq!(
        err.messages(),
        ["Node.next.at: expected DateTime (ISO 8601, e.g. 2018-03-24T10:20:48Z), got string \"bad\""]
    );
}
