//! Errors of the domain model: problems in the schema (`ModelErrors`, all of them at once) and
//! problems in an object being validated (`Violations`, all of them at once), wrapped in the
//! component's one error enum `ModelError` with its classification.

use std::fmt;

/// How the engine should treat an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The object is wrong: repair queue, no retry until someone fixes it.
    UserData,
    /// The configuration (model) is wrong: refuse to load it.
    Config,
    /// A service the validation called failed (a default function, a sequence): retry later.
    External,
}

/// The component's error enum.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The schema is not a valid model.
    #[error(transparent)]
    Schema(#[from] ModelErrors),
    /// An object does not match the model.
    #[error(transparent)]
    Invalid(#[from] Violations),
}

impl ModelError {
    /// How to treat this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            ModelError::Schema(_) => ErrorClass::Config,
            ModelError::Invalid(v) => v.class(),
        }
    }
}

/// One problem in the schema, at a location such as `User.address.building`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// Where: `Type`, `Type.field.path`, `Type.indexes.name`, `Type.relations.name` or `types`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a schema, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_lines(.0))]
pub struct ModelErrors(pub Vec<SchemaError>);

impl ModelErrors {
    /// The problems.
    pub fn errors(&self) -> &[SchemaError] {
        &self.0
    }

    /// The errors rendered one per string (`location: message`).
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// What kind of problem a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// The value does not match the model.
    Data,
    /// A default function or the auto-increment counter failed.
    Hook,
    /// The type asked for is not a stored type of the model.
    Type,
}

/// One problem in an object, at a path such as `Order.items[2].qty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where: the type name followed by the field path.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Data, hook failure or unknown type.
    pub kind: ViolationKind,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_lines(.0))]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// The problems.
    pub fn violations(&self) -> &[Violation] {
        &self.0
    }

    /// The violations rendered one per string (`path: message`).
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// How to treat the failure: a hook failure is external (retry), a wrong type name is a
    /// configuration problem, anything else is bad user data.
    pub fn class(&self) -> ErrorClass {
        if self.0.iter().any(|v| v.kind == ViolationKind::Hook) {
            ErrorClass::External
        } else if self.0.iter().any(|v| v.kind == ViolationKind::Type) {
            ErrorClass::Config
        } else {
            ErrorClass::UserData
        }
    }
}

fn join_lines<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_render_one_per_line_and_classify() {
        let v = Violations(vec![
            Violation { path: "User.id".into(), message: "missing required field".into(), kind: ViolationKind::Data },
            Violation {
                path: "User.n".into(),
                message: "auto_increment failed: disk full".into(),
                kind: ViolationKind::Hook,
            },
        ]);
        assert_eq!(v.to_string(), "User.id: missing required field\nUser.n: auto_increment failed: disk full");
        assert_eq!(v.class(), ErrorClass::External);
        let e = ModelError::from(v);
        assert_eq!(e.class(), ErrorClass::External);
        let m = ModelError::from(ModelErrors(vec![SchemaError { location: "User".into(), message: "bad".into() }]));
        assert_eq!(m.to_string(), "User: bad");
        assert_eq!(m.class(), ErrorClass::Config);
    }
}
