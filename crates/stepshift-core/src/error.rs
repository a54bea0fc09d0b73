//! The errors of stepshift's tasks and of the ports they drive.
//!
//! [`TaskError::name`] is a stable contract: the state machine's `Retry` and `Catch`
//! clauses match these names in `ErrorEquals`, and the README documents them. The names
//! themselves are [`ErrorName`]s.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::contract::ErrorName;

/// One problem with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field, as a path into the request: `targets[0].version`, `strategy[2].weight_percent`.
    pub field: String,
    /// Why the value is not acceptable, in words a person can act on.
    pub reason: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Every problem found in a request; never empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// The fields named, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }

    /// Whether `field` is among the problems.
    pub fn names(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<FieldError> for FieldErrors {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

/// Which AWS service a port call went to; used in messages only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// AWS Lambda's control plane.
    Lambda,
    /// Amazon CloudWatch.
    CloudWatch,
    /// AWS Systems Manager Parameter Store.
    Ssm,
    /// AWS Step Functions.
    StepFunctions,
    /// Amazon Route 53.
    Route53,
    /// Lambda Web Functions (the `lambda-web` API).
    LambdaWeb,
    /// Amazon CloudWatch Logs.
    CloudWatchLogs,
    /// Amazon EventBridge (the lifecycle events).
    EventBridge,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Lambda => "Lambda",
            Service::CloudWatch => "CloudWatch",
            Service::Ssm => "SSM",
            Service::StepFunctions => "Step Functions",
            Service::Route53 => "Route 53",
            Service::LambdaWeb => "Lambda Web",
            Service::CloudWatchLogs => "CloudWatch Logs",
            Service::EventBridge => "EventBridge",
        })
    }
}

/// A failed call through a port, classified so that callers can decide what to retry.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PortError {
    /// The thing asked for does not exist.
    #[error("{service}: not found: {message}")]
    NotFound {
        /// The service that answered.
        service: Service,
        /// The service's message.
        message: String,
    },
    /// An optimistic-concurrency check failed: someone else changed the resource (RevisionId).
    #[error("{service}: precondition failed: {message}")]
    PreconditionFailed {
        /// The service that answered.
        service: Service,
        /// The service's message.
        message: String,
    },
    /// A create-if-absent found the resource already there.
    #[error("{service}: already exists: {message}")]
    AlreadyExists {
        /// The service that answered.
        service: Service,
        /// The service's message.
        message: String,
    },
    /// The service refused the request rate; retry with backoff.
    #[error("{service}: throttled: {message}")]
    Throttled {
        /// The service that answered.
        service: Service,
        /// The service's message.
        message: String,
    },
    /// The resource is busy or in a conflicting state (ResourceConflictException); retry later.
    #[error("{service}: conflict: {message}")]
    Conflict {
        /// The service that answered.
        service: Service,
        /// The service's message.
        message: String,
    },
    /// The service rejected the request as invalid.
    #[error("{service}: invalid request: {message}")]
    Invalid {
        /// The service that answered.
        service: Service,
        /// The service's message.
        message: String,
    },
    /// No answer: a timeout, a connection failure or a 5xx. Retryable.
    #[error("{service}: unavailable: {message}")]
    Unavailable {
        /// The service that was called.
        service: Service,
        /// What went wrong.
        message: String,
    },
    /// Anything else, such as access denied.
    #[error("{service}: {message}")]
    Other {
        /// The service that answered.
        service: Service,
        /// The service's message.
        message: String,
    },
}

impl PortError {
    /// Whether waiting and trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Conflict { .. } | Self::Unavailable { .. })
    }
}

/// The error a task returns to the state machine. Its [`name`](Self::name) is the
/// `Error` the state machine sees.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// The deployment request is invalid; nothing was changed.
    #[error("invalid deployment request: {0}")]
    InvalidRequest(FieldErrors),
    /// Another deployment holds the lock on a target; nothing was changed.
    #[error(
        "{target} is already being deployed by {holder} (candidate {candidate}, since {since}); wait for it to finish, or release a stale lock with `stepshift unlock`"
    )]
    DeploymentInProgress {
        /// The locked target: `orders:live`, `www.example.com. A`.
        target: String,
        /// The execution that holds the lock.
        holder: String,
        /// The version that execution is deploying.
        candidate: String,
        /// When it took the lock.
        since: String,
    },
    /// Someone else changed the alias during the deployment; stepshift did not overwrite it.
    #[error("{function}:{alias} was changed outside this deployment: {detail}")]
    AliasDrift {
        /// The function whose alias changed.
        function: String,
        /// The alias that changed.
        alias: String,
        /// What the alias looks like now, and what stepshift expected.
        detail: String,
    },
    /// Someone else changed a Route53 record during the release; stepshift did not
    /// overwrite it.
    #[error("{detail}")]
    RecordDrift {
        /// The record, `www.example.com. A`.
        record: String,
        /// What the record looks like now, and what stepshift expected.
        detail: String,
    },
    /// Someone else changed a Lambda Web Function endpoint's weights or deployment mode
    /// during the release; stepshift did not overwrite them.
    #[error("{endpoint} was changed outside this deployment: {detail}")]
    EndpointDrift {
        /// The endpoint, `orders-web/live`.
        endpoint: String,
        /// What the endpoint routes now, and what stepshift expected.
        detail: String,
    },
    /// A Lambda Web Function endpoint update ended in `Failed`.
    #[error("the update of {endpoint} failed: {reason}")]
    EndpointUpdateFailed {
        /// The endpoint, `orders-web/live`.
        endpoint: String,
        /// The endpoint's `updateStatusReason`.
        reason: String,
    },
    /// A router's change was not in effect in time (a Route53 change still PENDING, an
    /// endpoint update still InProgress).
    #[error("{0}")]
    NotInSync(String),
    /// This execution no longer holds the lock it took at the start.
    #[error("{target}: the deployment lock is held by {holder}, not by this execution")]
    LockLost {
        /// The target whose lock was lost.
        target: String,
        /// Who holds the lock now, or "nobody".
        holder: String,
    },
    /// An AWS API throttled the call; retryable.
    #[error("{0}")]
    Throttled(PortError),
    /// An AWS resource was busy (ResourceConflictException); retryable.
    #[error("{0}")]
    Conflict(PortError),
    /// An AWS API did not answer in time or answered 5xx; retryable.
    #[error("{0}")]
    AwsUnavailable(PortError),
    /// An AWS API refused the call for another reason (for example access denied).
    #[error("{0}")]
    AwsError(PortError),
    /// The task's input does not have the shape this task expects: the state machine
    /// definition and the task code disagree.
    #[error("task input is malformed: {0}")]
    InvalidTaskInput(String),
    /// A validation hook failed: the report's sentence ([`crate::hooks::HookReport`]).
    #[error("{0}")]
    HookFailed(String),
    /// A person aborted the deployment while its tests before traffic ran
    /// ([`crate::control`]); the message says who and why.
    #[error("{0}")]
    Aborted(String),
}

impl TaskError {
    /// Every name [`TaskError::name`] can return, in the order of the variants.
    pub const NAMES: [ErrorName; 15] = [
        ErrorName::InvalidRequest,
        ErrorName::DeploymentInProgress,
        ErrorName::AliasDrift,
        ErrorName::RecordDrift,
        ErrorName::EndpointDrift,
        ErrorName::EndpointUpdateFailed,
        ErrorName::NotInSync,
        ErrorName::LockLost,
        ErrorName::Throttled,
        ErrorName::Conflict,
        ErrorName::AwsUnavailable,
        ErrorName::AwsError,
        ErrorName::InvalidTaskInput,
        ErrorName::HookFailed,
        ErrorName::Aborted,
    ];

    /// The stable error name the state machine matches on.
    pub fn error_name(&self) -> ErrorName {
        match self {
            Self::InvalidRequest(_) => ErrorName::InvalidRequest,
            Self::DeploymentInProgress { .. } => ErrorName::DeploymentInProgress,
            Self::AliasDrift { .. } => ErrorName::AliasDrift,
            Self::RecordDrift { .. } => ErrorName::RecordDrift,
            Self::EndpointDrift { .. } => ErrorName::EndpointDrift,
            Self::EndpointUpdateFailed { .. } => ErrorName::EndpointUpdateFailed,
            Self::NotInSync(_) => ErrorName::NotInSync,
            Self::LockLost { .. } => ErrorName::LockLost,
            Self::Throttled(_) => ErrorName::Throttled,
            Self::Conflict(_) => ErrorName::Conflict,
            Self::AwsUnavailable(_) => ErrorName::AwsUnavailable,
            Self::AwsError(_) => ErrorName::AwsError,
            Self::InvalidTaskInput(_) => ErrorName::InvalidTaskInput,
            Self::HookFailed(_) => ErrorName::HookFailed,
            Self::Aborted(_) => ErrorName::Aborted,
        }
    }

    /// [`error_name`](Self::error_name) as text: the `errorType` Lambda reports.
    pub fn name(&self) -> &'static str {
        self.error_name().as_str()
    }

    /// A single field error as an `InvalidRequest`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidRequest(FieldError::new(field, reason).into())
    }
}

impl From<PortError> for TaskError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Throttled { .. } => Self::Throttled(e),
            PortError::Conflict { .. } => Self::Conflict(e),
            PortError::Unavailable { .. } => Self::AwsUnavailable(e),
            _ => Self::AwsError(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_errors_map_to_retryable_task_errors() {
        let throttled = PortError::Throttled { service: Service::Lambda, message: "slow down".into() };
        assert!(throttled.is_retryable());
        assert_eq!(TaskError::from(throttled).name(), "Throttled");
        let conflict = PortError::Conflict { service: Service::Lambda, message: "busy".into() };
        assert_eq!(TaskError::from(conflict).name(), "Conflict");
        let down = PortError::Unavailable { service: Service::Ssm, message: "timeout".into() };
        assert_eq!(TaskError::from(down).name(), "AwsUnavailable");
        let denied = PortError::Other { service: Service::Ssm, message: "AccessDenied".into() };
        assert!(!denied.is_retryable());
        assert_eq!(TaskError::from(denied).name(), "AwsError");
    }

    #[test]
    fn every_variant_name_is_listed() {
        let port = PortError::Other { service: Service::Lambda, message: String::new() };
        let all = [
            TaskError::invalid("f", "r"),
            TaskError::DeploymentInProgress {
                target: "f:a".into(),
                holder: "h".into(),
                candidate: "2".into(),
                since: "t".into(),
            },
            TaskError::AliasDrift { function: "f".into(), alias: "a".into(), detail: "d".into() },
            TaskError::RecordDrift { record: "r".into(), detail: "d".into() },
            TaskError::EndpointDrift { endpoint: "e".into(), detail: "d".into() },
            TaskError::EndpointUpdateFailed { endpoint: "e".into(), reason: "r".into() },
            TaskError::NotInSync("x".into()),
            TaskError::LockLost { target: "f:a".into(), holder: "h".into() },
            TaskError::Throttled(port.clone()),
            TaskError::Conflict(port.clone()),
            TaskError::AwsUnavailable(port.clone()),
            TaskError::AwsError(port),
            TaskError::InvalidTaskInput("x".into()),
            TaskError::HookFailed("x".into()),
            TaskError::Aborted("x".into()),
        ];
        let names: Vec<_> = all.iter().map(TaskError::error_name).collect();
        assert_eq!(names, TaskError::NAMES);
        assert!(all.iter().all(|e| e.name() == e.error_name().as_str()));
    }

    #[test]
    fn field_errors_display_every_field() {
        let errors = FieldErrors(vec![
            FieldError::new("targets[0].version", "must not be $LATEST"),
            FieldError::new("strategy", "unknown preset"),
        ]);
        assert_eq!(errors.to_string(), "targets[0].version: must not be $LATEST; strategy: unknown preset");
        assert!(errors.names("strategy"));
    }
}
