//! Errors of pipeline execution.

use ferrogrid_sandbox::ScriptError;

/// Why a pipeline did not produce a usable result.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A script failed (thrown, limit, runtime or host error).
    #[error("{0}")]
    Script(#[from] ScriptError),
    /// A step returned something that breaks TDG's step contract.
    #[error("function {function}: {message}")]
    Contract {
        /// The function whose result was wrong.
        function: String,
        /// What was wrong.
        message: String,
    },
    /// A referenced pipeline does not exist (checked at load time; kept for completeness).
    #[error("pipeline or function \"{0}\" is not defined")]
    Unknown(String),
}

impl PipelineError {
    /// The function that failed, when known.
    pub fn function(&self) -> Option<&str> {
        match self {
            PipelineError::Script(e) => Some(&e.function),
            PipelineError::Contract { function, .. } => Some(function),
            PipelineError::Unknown(_) => None,
        }
    }
}
