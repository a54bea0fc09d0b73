//! What each task Lambda does, generic over the ports. The function crates decode their
//! input into these types, call these functions, and map [`TaskError`](crate::TaskError)
//! to the Lambda runtime's error.

pub mod begin;
pub mod check;
pub mod fast;
pub mod record;
pub mod traffic;

use serde::{Deserialize, Serialize};

/// Settings of the task Lambdas that come from their environment, not from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskConfig {
    /// Prefix of the SSM parameters holding the version records.
    pub parameter_prefix: String,
    /// The stack's `HookFunctionPattern`: the test functions hooks may run, as an IAM
    /// name pattern (`*` and `?`); `Some("")` allows none. `None` (no stack: the local
    /// runner, the tests) allows any.
    pub hook_function_pattern: Option<String>,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self { parameter_prefix: crate::records::DEFAULT_PREFIX.to_owned(), hook_function_pattern: None }
    }
}

/// An error as Step Functions hands it to a Catch: `{"Error": ..., "Cause": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    /// The error name, e.g. `AliasDrift` or `States.Timeout`.
    #[serde(rename = "Error")]
    pub error: String,
    /// The cause. For a Lambda error, a JSON text with `errorMessage`.
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl CaughtError {
    /// The error's name, if it is one stepshift knows.
    pub fn name(&self) -> Option<crate::ErrorName> {
        crate::ErrorName::from_name(&self.error)
    }

    /// The human part of the cause: a Lambda error's `errorMessage`, or the text itself.
    pub fn message(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.cause)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| self.cause.clone())
    }
}

/// Decodes a task's input, naming the task in the error.
pub fn decode<T: serde::de::DeserializeOwned>(task: &str, input: serde_json::Value) -> Result<T, crate::TaskError> {
    serde_path_to_error::deserialize(input)
        .map_err(|e| crate::TaskError::InvalidTaskInput(format!("{task}: {}: {}", e.path(), e.inner())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_causes_are_unwrapped() {
        let caught = CaughtError {
            error: "AliasDrift".into(),
            cause: r#"{"errorType":"AliasDrift","errorMessage":"orders:live was changed"}"#.into(),
        };
        assert_eq!(caught.message(), "orders:live was changed");
        let plain = CaughtError { error: "States.Timeout".into(), cause: "timed out".into() };
        assert_eq!(plain.message(), "timed out");
    }

    #[test]
    fn decode_names_the_task_and_the_field() {
        let e = decode::<CaughtError>("rollback", serde_json::json!({"Error": 3})).unwrap_err();
        assert_eq!(e.name(), "InvalidTaskInput");
        assert!(e.to_string().contains("rollback: Error:"), "{e}");
    }
}
