//! Script errors: what failed, in which function, on which line.

use crate::host::{ErrorClass, HostError};
use rhai::{EvalAltResult, ParseError, Position};

/// What kind of failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// `throw "text"`: the text as thrown.
    Thrown(String),
    /// A limit was exceeded (which one).
    Limit(String),
    /// The wall-clock deadline passed.
    Timeout,
    /// Stopped on request (an admin stopped a task).
    Cancelled,
    /// The script does not compile.
    Syntax(String),
    /// Any other runtime error.
    Runtime(String),
    /// A host service failed.
    Host(ErrorClass, String),
    /// A value could not be converted between JSON and the script.
    Conversion(String),
}

/// A script failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct ScriptError {
    function: String,
    line: Option<usize>,
    kind: ErrorKind,
}

impl ScriptError {
    /// An error of `kind` in `function` at `line`.
    pub fn new(function: &str, line: Option<usize>, kind: ErrorKind) -> ScriptError {
        ScriptError { function: function.to_string(), line, kind }
    }

    /// The function that failed.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The line, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What failed.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// How the engine should treat it.
    pub fn class(&self) -> ErrorClass {
        match &self.kind {
            ErrorKind::Host(class, _) => *class,
            _ => ErrorClass::UserData,
        }
    }

    fn render(&self) -> String {
        let at = match self.line {
            Some(line) => format!("{}:{line}", self.function),
            None => self.function.clone(),
        };
        let message = match &self.kind {
            ErrorKind::Thrown(text) => text.clone(),
            ErrorKind::Limit(what) => format!("script limit exceeded: {what}"),
            ErrorKind::Timeout => "script timed out (sandbox.timeout_ms)".to_string(),
            ErrorKind::Cancelled => "script stopped on request".to_string(),
            ErrorKind::Syntax(m) => format!("syntax error: {m}"),
            ErrorKind::Runtime(m) | ErrorKind::Conversion(m) | ErrorKind::Host(_, m) => m.clone(),
        };
        format!("{at}: {message}")
    }

    /// From a compile error.
    pub(crate) fn parse(function: &str, e: &ParseError) -> ScriptError {
        let kind = match e.err_type() {
            rhai::ParseErrorType::ExprTooDeep => ErrorKind::Limit("expression nesting too deep".into()),
            other => ErrorKind::Syntax(other.to_string()),
        };
        ScriptError::new(function, e.position().line(), kind)
    }

    /// From a runtime error; host errors travel inside runtime errors as [`HostError`] values.
    pub(crate) fn eval(function: &str, e: &EvalAltResult) -> ScriptError {
        let inner = e.unwrap_inner();
        let line = |p: Position| p.line().or(e.position().line());
        match inner {
            EvalAltResult::ErrorRuntime(value, pos) => {
                if let Some(host) = value.clone().try_cast::<HostError>() {
                    return ScriptError::new(function, line(*pos), ErrorKind::Host(host.class, host.message));
                }
                let text = value.clone().into_string().unwrap_or_else(|_| value.to_string());
                ScriptError::new(function, line(*pos), ErrorKind::Thrown(text))
            }
            EvalAltResult::ErrorTerminated(token, pos) => {
                let kind = if token.clone().into_string().is_ok_and(|s| s == "cancelled") {
                    ErrorKind::Cancelled
                } else {
                    ErrorKind::Timeout
                };
                ScriptError::new(function, line(*pos), kind)
            }
            EvalAltResult::ErrorTooManyOperations(pos) => ScriptError::new(
                function,
                line(*pos),
                ErrorKind::Limit("too many operations (sandbox.max_operations)".into()),
            ),
            EvalAltResult::ErrorStackOverflow(pos) => ScriptError::new(
                function,
                line(*pos),
                ErrorKind::Limit("call nesting too deep (sandbox.max_call_levels)".into()),
            ),
            EvalAltResult::ErrorDataTooLarge(what, pos) => {
                ScriptError::new(function, line(*pos), ErrorKind::Limit(format!("{what} (sandbox limits)")))
            }
            EvalAltResult::ErrorTooManyModules(pos) => ScriptError::new(
                function,
                line(*pos),
                ErrorKind::Limit("too many modules (sandbox.max_modules)".into()),
            ),
            EvalAltResult::ErrorTooManyVariables(pos) => {
                ScriptError::new(function, line(*pos), ErrorKind::Limit("too many variables".into()))
            }
            EvalAltResult::ErrorParsing(p, pos) => {
                ScriptError::new(function, line(*pos), ErrorKind::Syntax(p.to_string()))
            }
            other => {
                let mut text = other.to_string();
                if let Some(i) = text.rfind(" (line ") {
                    text.truncate(i);
                }
                ScriptError::new(function, line(other.position()), ErrorKind::Runtime(text))
            }
        }
    }
}
