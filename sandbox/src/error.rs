//! Errors of the sandbox: `ScriptError` (what a call or a compilation reports), `HostError`
//! (what the engine's host services report) and their classification.
//!
//! Rhai errors are turned into `ScriptError` here, and only here: the chain of nested calls is
//! walked to find the real cause and the line in the calling script.

use std::fmt;

use rhai::{Dynamic, EvalAltResult, ParseError, ParseErrorType, Position};

use crate::convert;

/// How the engine should react to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Caused by the object or the script: goes to the repair queue, no automatic retry.
    UserData,
    /// Caused by something outside (a peer, the network, a full disk): retry with backoff.
    External,
    /// A bug or broken invariant: log and alert.
    Internal,
}

/// An error raised by a host service (the engine's implementation of `DataAccess`, `Sequences`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The request is wrong (unknown type, bad filter, validation failure).
    #[error("{0}")]
    UserData(String),
    /// A resource outside the process failed; trying again later may succeed.
    #[error("{0}")]
    External(String),
    /// A bug or broken invariant in the host.
    #[error("{0}")]
    Internal(String),
}

impl HostError {
    /// The class of the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            HostError::UserData(_) => ErrorClass::UserData,
            HostError::External(_) => ErrorClass::External,
            HostError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// The message without the class.
    pub fn message(&self) -> &str {
        match self {
            HostError::UserData(m) | HostError::External(m) | HostError::Internal(m) => m,
        }
    }

    /// An error of the given class.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> HostError {
        let message = message.into();
        match class {
            ErrorClass::UserData => HostError::UserData(message),
            ErrorClass::External => HostError::External(message),
            ErrorClass::Internal => HostError::Internal(message),
        }
    }
}

/// Which limit of the `sandbox` section stopped a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// `max_operations`
    Operations,
    /// `max_call_levels`
    CallLevels,
    /// `max_expr_depth` / `max_function_expr_depth` (at compile time)
    ExprDepth,
    /// `max_string_size`
    StringSize,
    /// `max_array_size`
    ArraySize,
    /// `max_map_size`
    MapSize,
    /// `max_modules`
    Modules,
    /// `max_value_depth`
    ValueDepth,
    /// `max_shared_keys`
    SharedKeys,
    /// `max_shared_bytes`
    SharedBytes,
}

impl LimitKind {
    /// The configuration key of the limit.
    pub fn config_key(self) -> &'static str {
        match self {
            LimitKind::Operations => "max_operations",
            LimitKind::CallLevels => "max_call_levels",
            LimitKind::ExprDepth => "max_expr_depth",
            LimitKind::StringSize => "max_string_size",
            LimitKind::ArraySize => "max_array_size",
            LimitKind::MapSize => "max_map_size",
            LimitKind::Modules => "max_modules",
            LimitKind::ValueDepth => "max_value_depth",
            LimitKind::SharedKeys => "max_shared_keys",
            LimitKind::SharedBytes => "max_shared_bytes",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitKind::ExprDepth => {
                f.write_str("expression nested too deeply (sandbox.max_expr_depth / max_function_expr_depth)")
            }
            other => write!(f, "limit exceeded: sandbox.{}", other.config_key()),
        }
    }
}

/// What went wrong in a script.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptErrorKind {
    /// The script said `throw value`; the text is the thrown string (other values: their JSON).
    #[error("{0}")]
    Thrown(String),
    /// A limit of the `sandbox` section was exceeded.
    #[error("{0}")]
    Limit(LimitKind),
    /// The call ran longer than `sandbox.timeout_ms`.
    #[error("script timed out (sandbox.timeout_ms)")]
    Timeout,
    /// The call was stopped through its cancel flag.
    #[error("script cancelled")]
    Cancelled,
    /// Any other error while running: type mismatch, unknown function, bad API argument...
    #[error("{0}")]
    Runtime(String),
    /// A host service failed; keeps the host's class.
    #[error("{0}")]
    Host(HostError),
    /// A value cannot cross between JSON and Rhai (NaN, function pointer, too deep...).
    #[error("{0}")]
    Conversion(String),
    /// The script does not compile.
    #[error("{0}")]
    Compile(String),
    /// The `sandbox` configuration or the library list is invalid.
    #[error("{0}")]
    Config(String),
}

/// An error of one script (or library), with where it happened.
///
/// Displays as `function:line: message` (`function:line:column: message` for compile errors).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ScriptError {
    /// The function (script) or library name.
    pub function: String,
    /// Line in that script, when known.
    pub line: Option<usize>,
    /// Column in that line; set for compile errors.
    pub column: Option<usize>,
    /// What went wrong.
    pub kind: ScriptErrorKind,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.function.is_empty() || self.line.is_some() {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.kind)
    }
}

// Tags of Dynamic values carried by `ErrorRuntime` / `ErrorTerminated` raised by our own code.
// Scripts cannot read or set tags (the core package that has `tag` is not registered).
pub(crate) const TAG_API: i32 = 0x0F6_0001;
pub(crate) const TAG_HOST_USER: i32 = 0x0F6_0002;
pub(crate) const TAG_HOST_EXTERNAL: i32 = 0x0F6_0003;
pub(crate) const TAG_HOST_INTERNAL: i32 = 0x0F6_0004;
pub(crate) const TAG_TIMEOUT: i32 = 0x0F6_0005;
pub(crate) const TAG_CANCELLED: i32 = 0x0F6_0006;
pub(crate) const TAG_SHARED_FULL: i32 = 0x0F6_0007;
pub(crate) const TAG_SHARED_BYTES: i32 = 0x0F6_0008;
pub(crate) const TAG_OPERATIONS: i32 = 0x0F6_0009;

/// Message of `ErrorDataTooLarge` raised by the value-depth guards.
pub(crate) const VALUE_DEPTH_MESSAGE: &str = "Nesting of arrays/object maps";

/// A catchable error raised by an API function (bad argument and the like).
pub(crate) fn api_error(message: impl Into<String>) -> Box<EvalAltResult> {
    tagged_runtime(TAG_API, message.into())
}

/// A catchable error carrying a host error and its class.
pub(crate) fn host_error(err: HostError) -> Box<EvalAltResult> {
    let tag = match err.class() {
        ErrorClass::UserData => TAG_HOST_USER,
        ErrorClass::External => TAG_HOST_EXTERNAL,
        ErrorClass::Internal => TAG_HOST_INTERNAL,
    };
    tagged_runtime(tag, err.message().to_string())
}

pub(crate) fn tagged_runtime(tag: i32, message: String) -> Box<EvalAltResult> {
    let mut value = Dynamic::from(message);
    value.set_tag(tag);
    EvalAltResult::ErrorRuntime(value, Position::NONE).into()
}

pub(crate) fn tagged(tag: i32, text: &str) -> Dynamic {
    let mut value = Dynamic::from(text.to_string());
    value.set_tag(tag);
    value
}

impl ScriptError {
    /// The class of the error: host errors keep theirs, everything else is user data
    /// (the script or the object is at fault and retrying would give the same result).
    pub fn class(&self) -> ErrorClass {
        match &self.kind {
            ScriptErrorKind::Host(e) => e.class(),
            ScriptErrorKind::Config(_) => ErrorClass::Internal,
            _ => ErrorClass::UserData,
        }
    }

    pub(crate) fn new(function: &str, kind: ScriptErrorKind) -> ScriptError {
        ScriptError { function: function.to_string(), line: None, column: None, kind }
    }

    /// Turn a compile error of `function` into a `ScriptError`.
    pub(crate) fn from_parse(function: &str, err: &ParseError) -> ScriptError {
        let kind = match err.0.as_ref() {
            ParseErrorType::ExprTooDeep => ScriptErrorKind::Limit(LimitKind::ExprDepth),
            ParseErrorType::LiteralTooLarge(what, _) if what.starts_with("Length of string") => {
                ScriptErrorKind::Limit(LimitKind::StringSize)
            }
            other => ScriptErrorKind::Compile(other.to_string()),
        };
        ScriptError { function: function.to_string(), line: err.1.line(), column: err.1.position(), kind }
    }

    /// Turn a runtime error of `function` into a `ScriptError`.
    ///
    /// The line is the last one known to be in `function` itself; when the cause lies in a
    /// library, the message says where (`in util::inc line 2: ...`).
    pub(crate) fn from_eval(function: &str, err: EvalAltResult) -> ScriptError {
        let mut line = err.position().line();
        let mut context = String::new();
        let mut in_own_script = true;
        let mut cur = err;
        loop {
            match cur {
                EvalAltResult::ErrorInFunctionCall(name, source, inner, _) => {
                    if !source.is_empty() && source != function {
                        in_own_script = false;
                        context = format!("in {source}::{name}: ");
                    }
                    if in_own_script {
                        line = inner.position().line().or(line);
                    }
                    cur = *inner;
                }
                EvalAltResult::ErrorInModule(name, inner, _) => {
                    in_own_script = false;
                    context = format!("in module {name}: ");
                    cur = *inner;
                }
                other => {
                    cur = other;
                    break;
                }
            }
        }
        if !in_own_script {
            if let Some(l) = cur.position().line() {
                context = format!("{context}line {l}: ");
            }
        }
        let kind = match classify(cur) {
            ScriptErrorKind::Runtime(msg) if !context.is_empty() => ScriptErrorKind::Runtime(format!("{context}{msg}")),
            other => other,
        };
        ScriptError { function: function.to_string(), line, column: None, kind }
    }
}

/// The kind of the innermost Rhai error.
fn classify(mut err: EvalAltResult) -> ScriptErrorKind {
    match err {
        EvalAltResult::ErrorRuntime(ref value, _) => match value.tag() {
            TAG_API => ScriptErrorKind::Runtime(text_of(value)),
            TAG_HOST_USER => ScriptErrorKind::Host(HostError::UserData(text_of(value))),
            TAG_HOST_EXTERNAL => ScriptErrorKind::Host(HostError::External(text_of(value))),
            TAG_HOST_INTERNAL => ScriptErrorKind::Host(HostError::Internal(text_of(value))),
            TAG_SHARED_FULL => ScriptErrorKind::Limit(LimitKind::SharedKeys),
            TAG_SHARED_BYTES => ScriptErrorKind::Limit(LimitKind::SharedBytes),
            _ => ScriptErrorKind::Thrown(text_of(value)),
        },
        EvalAltResult::ErrorTerminated(ref value, _) => match value.tag() {
            TAG_CANCELLED => ScriptErrorKind::Cancelled,
            TAG_TIMEOUT => ScriptErrorKind::Timeout,
            TAG_OPERATIONS => ScriptErrorKind::Limit(LimitKind::Operations),
            _ => ScriptErrorKind::Runtime(format!("script terminated: {}", text_of(value))),
        },
        EvalAltResult::ErrorTooManyOperations(_) => ScriptErrorKind::Limit(LimitKind::Operations),
        EvalAltResult::ErrorStackOverflow(_) => ScriptErrorKind::Limit(LimitKind::CallLevels),
        EvalAltResult::ErrorTooManyModules(_) => ScriptErrorKind::Limit(LimitKind::Modules),
        EvalAltResult::ErrorDataTooLarge(ref what, _) => {
            ScriptErrorKind::Limit(if what.starts_with("Length of string") {
                LimitKind::StringSize
            } else if what.starts_with("Size of array") {
                LimitKind::ArraySize
            } else if what.starts_with("Size of object map") {
                LimitKind::MapSize
            } else if what == VALUE_DEPTH_MESSAGE {
                LimitKind::ValueDepth
            } else {
                return ScriptErrorKind::Runtime(format!("{what} exceeds a sandbox limit"));
            })
        }
        EvalAltResult::ErrorParsing(ParseErrorType::ExprTooDeep, _) => ScriptErrorKind::Limit(LimitKind::ExprDepth),
        // Messages of the remaining errors name variables, functions and types, never values
        // (ErrorIndexNotFound prints its index, which is a key, not a nested structure).
        ref mut other => {
            other.clear_position();
            ScriptErrorKind::Runtime(other.to_string())
        }
    }
}

/// Text of a thrown value: strings as they are, anything else as JSON (depth-limited, so that a
/// hostile value cannot exhaust the stack), `()` as a fixed text.
fn text_of(value: &Dynamic) -> String {
    if value.is_unit() {
        return "exception thrown without a value".to_string();
    }
    convert::display_text(value, convert::DEFAULT_MAX_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_function_line_and_message() {
        let err = ScriptError {
            function: "process_user".into(),
            line: Some(3),
            column: None,
            kind: ScriptErrorKind::Thrown("bad input".into()),
        };
        assert_eq!(err.to_string(), "process_user:3: bad input");
        let err = ScriptError::new("lib", ScriptErrorKind::Timeout);
        assert_eq!(err.to_string(), "lib: script timed out (sandbox.timeout_ms)");
    }

    #[test]
    fn host_errors_keep_their_class_and_others_are_user_data() {
        let ext = ScriptError::new("f", ScriptErrorKind::Host(HostError::External("down".into())));
        assert_eq!(ext.class(), ErrorClass::External);
        assert_eq!(ext.to_string(), "f: down");
        let lim = ScriptError::new("f", ScriptErrorKind::Limit(LimitKind::Operations));
        assert_eq!(lim.class(), ErrorClass::UserData);
        assert_eq!(lim.to_string(), "f: limit exceeded: sandbox.max_operations");
    }

    #[test]
    fn tagged_host_error_round_trips_through_rhai_error() {
        let err = host_error(HostError::Internal("index broken".into()));
        let script_err = ScriptError::from_eval("f", *err);
        assert_eq!(script_err.kind, ScriptErrorKind::Host(HostError::Internal("index broken".into())));
    }
}
