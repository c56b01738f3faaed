//! Services (TDG's `services` section): root fields that call a function with their arguments
//! as a map and return its result as the declared type.

use super::names::{gql_name, is_valid};
use super::node::{gql_value, Node};
use super::types::{JSON, LONG};
use super::{caller, coded, engine_of, refused};
use crate::config::ServiceConfig;
use crate::model::Model;
use crate::security::scope::CallerScope;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, TypeRef};
use ferrogrid_sandbox::CallContext;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A declared service type: a scalar, a model record, or a list of either.
#[derive(Debug, Clone, PartialEq)]
enum ServiceType {
    Scalar(&'static str),
    Record(String),
    List(Box<ServiceType>),
}

impl ServiceType {
    fn parse(text: &str, model: &Model, records_allowed: bool) -> Result<ServiceType, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return Ok(ServiceType::List(Box::new(ServiceType::parse(inner, model, records_allowed)?)));
        }
        let scalar = match text {
            "string" | "String" => TypeRef::STRING,
            "int" | "Int" => TypeRef::INT,
            "long" | "Long" => LONG,
            "double" | "float" | "Float" => TypeRef::FLOAT,
            "boolean" | "Boolean" => TypeRef::BOOLEAN,
            "any" | "JSON" => JSON,
            name => {
                return match model.get(name) {
                    Some(t) if records_allowed && !t.fields.is_empty() => Ok(ServiceType::Record(name.to_string())),
                    Some(_) => Err(format!("\"{name}\" is a model type; arguments take scalars (string, int, long, double, boolean, any) or lists of them")),
                    None => Err(format!(
                        "unknown type \"{name}\" (string, int, long, double, boolean, any, a model type, or [T])"
                    )),
                };
            }
        };
        Ok(ServiceType::Scalar(scalar))
    }

    fn type_ref(&self) -> TypeRef {
        match self {
            ServiceType::Scalar(name) => TypeRef::named(*name),
            ServiceType::Record(name) => TypeRef::named(gql_name(name)),
            ServiceType::List(inner) => TypeRef::List(Box::new(inner.type_ref())),
        }
    }

    /// The function's result as a value of this type.
    fn resolve(&self, v: Value) -> Option<FieldValue<'static>> {
        if v.is_null() {
            return None;
        }
        match self {
            ServiceType::Scalar(_) => Some(FieldValue::value(gql_value(&v))),
            ServiceType::Record(_) => Some(FieldValue::owned_any(Node::nested(v))),
            ServiceType::List(inner) => match v {
                Value::Array(items) => {
                    Some(FieldValue::list(items.into_iter().map(|x| inner.resolve(x).unwrap_or(FieldValue::NULL))))
                }
                other => inner.resolve(other).map(|one| FieldValue::list([one])),
            },
        }
    }
}

/// The field of service `name`; every problem of its declaration, with its key path.
pub fn field(name: &str, service: &ServiceConfig, model: &Model) -> Result<Field, Vec<String>> {
    let mut errors = Vec::new();
    if !is_valid(name) {
        errors.push(format!("services.{name}: not a valid GraphQL name"));
    }
    let returns = ServiceType::parse(&service.return_type, model, true)
        .map_err(|e| errors.push(format!("services.{name}.return_type: {e}")))
        .ok();
    let mut args = Vec::new();
    for (arg, ty) in &service.args {
        if !is_valid(arg) {
            errors.push(format!("services.{name}.args.{arg}: not a valid GraphQL name"));
        }
        match ServiceType::parse(ty, model, false) {
            Ok(t) => args.push((arg.clone(), t)),
            Err(e) => errors.push(format!("services.{name}.args.{arg}: {e}")),
        }
    }
    let Some(returns) = returns.filter(|_| errors.is_empty()) else { return Err(errors) };
    let function = Arc::new(service.function.clone());
    let returns = Arc::new(returns);
    let arg_names: Arc<Vec<String>> = Arc::new(args.iter().map(|(n, _)| n.clone()).collect());
    let service_name = Arc::new(name.to_string());
    let mut field = Field::new(name, returns.type_ref(), move |ctx| {
        let (function, returns, arg_names) = (function.clone(), returns.clone(), arg_names.clone());
        let service_name = service_name.clone();
        FieldFuture::new(async move {
            let who = caller(&ctx)?;
            // The function runs on the caller's behalf: its repository calls are checked
            // against the caller's data actions.
            let scope = CallerScope::of(who);
            let engine = engine_of(&ctx)?;
            let mut param = Map::new();
            for arg in arg_names.iter() {
                let value = match ctx.args.get(arg) {
                    Some(v) => v.as_value().clone().into_json()?,
                    None => Value::Null,
                };
                param.insert(arg.clone(), value);
            }
            let call = CallContext {
                scope: scope.clone().map(|s| s as Arc<dyn ferrogrid_sandbox::DataScope>),
                ..CallContext::new("graphql")
            };
            let ran = engine
                .on_worker(move |rt, script_engine| {
                    rt.pipelines.run(script_engine, &function, Value::Object(param), &call)
                })
                .await;
            // Every refusal is recorded, also one the function caught, and whatever became of
            // the call; a function that failed after one answers FORBIDDEN.
            let mut forbidden = None;
            for what in scope.map(|s| s.refusals()).unwrap_or_default() {
                let e = refused(&ctx, who, format!("{what} in service {service_name}"));
                forbidden.get_or_insert(e);
            }
            let result = match (ran, forbidden) {
                (Ok(Ok(v)), _) => v,
                (Ok(Err(_)), Some(e)) => return Err(e),
                (Ok(Err(e)), None) => return Err(coded(e.to_string(), "SCRIPT_ERROR")),
                (Err(e), _) => return Err(coded(e.to_string(), "INTERNAL")),
            };
            Ok(returns.resolve(result))
        })
    });
    for (arg, ty) in args {
        field = field.argument(InputValue::new(arg, ty.type_ref()));
    }
    if let Some(doc) = &service.doc {
        field = field.description(doc.clone());
    }
    Ok(field)
}
