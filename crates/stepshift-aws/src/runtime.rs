//! The Lambda runtime glue the five task functions share: configuration from the
//! environment, and task errors as Lambda errors whose `errorType` is the stable name
//! the state machine matches.

use std::future::Future;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use stepshift_core::TaskError;
use stepshift_core::records::{DEFAULT_PREFIX, validate_prefix};
use stepshift_core::tasks::TaskConfig;

/// Environment variable naming the SSM parameter prefix.
pub const PREFIX_VAR: &str = "STEPSHIFT_PARAMETER_PREFIX";

/// Environment variable holding the stack's `HookFunctionPattern`.
pub const HOOK_PATTERN_VAR: &str = "STEPSHIFT_HOOK_FUNCTION_PATTERN";

/// The task configuration from the environment; a bad prefix stops the function at init.
pub fn task_config() -> Result<TaskConfig, lambda_runtime::Error> {
    let prefix = std::env::var(PREFIX_VAR).unwrap_or_else(|_| DEFAULT_PREFIX.to_owned());
    validate_prefix(&prefix).map_err(|e| format!("{PREFIX_VAR}: {e}"))?;
    Ok(TaskConfig { parameter_prefix: prefix, hook_function_pattern: std::env::var(HOOK_PATTERN_VAR).ok() })
}

/// A task error as the Lambda runtime reports it.
pub fn diagnostic(error: TaskError) -> Diagnostic {
    Diagnostic { error_type: error.name().to_owned(), error_message: error.to_string() }
}

/// Serves `handler` on the Lambda runtime until the process ends.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<Value, TaskError>>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let reply = handler(event.payload);
        async move {
            reply.await.map_err(|e| {
                tracing::error!(error_type = e.name(), error = %e, "task failed");
                diagnostic(e)
            })
        }
    }))
    .await
}
