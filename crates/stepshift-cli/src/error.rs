//! The CLI's errors and their exit codes.

use std::process::ExitCode;

/// Exit codes pipelines can rely on.
pub mod code {
    /// The candidate was promoted (or the command succeeded).
    pub const OK: u8 = 0;
    /// Rolled back, failed, aborted, timed out, or refused.
    pub const FAILED: u8 = 1;
    /// The request or the arguments are invalid; nothing was started.
    pub const INVALID: u8 = 2;
    /// AWS could not be reached, or refused the call.
    pub const AWS: u8 = 3;
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or an invalid request (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The deployment or operation failed, or was refused (exit 1).
    #[error("{0}")]
    Failed(String),
    /// AWS was unreachable or said no (exit 3).
    #[error("{0}")]
    Aws(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Invalid(_) => code::INVALID,
            CliError::Failed(_) => code::FAILED,
            CliError::Aws(_) => code::AWS,
        })
    }
}

/// A port error from the AWS adapters, as a CLI error.
impl From<stepshift_core::PortError> for CliError {
    fn from(e: stepshift_core::PortError) -> Self {
        CliError::Aws(e.to_string())
    }
}
