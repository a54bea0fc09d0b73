//! Turns SDK errors into [`PortError`]s that say whether a retry may help.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use stepshift_core::{PortError, Service};

/// Error codes that mean "slow down". Lambda says TooManyRequestsException, CloudWatch
/// and SSM say ThrottlingException (or Throttling in the query protocol).
const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyUpdates",
    // Route53: another change to the zone is still being applied.
    "PriorRequestNotComplete",
];
const NOT_FOUND: &[&str] =
    &["ResourceNotFoundException", "ParameterNotFound", "ResourceNotFound", "NoSuchHostedZone", "NoSuchChange"];
const CONFLICT: &[&str] = &[
    "ResourceConflictException",
    "ResourceInUseException",
    "ConcurrentModificationException",
    // Lambda Web: the endpoint is being modified by another request.
    "ConflictException",
];
const INVALID: &[&str] = &[
    "InvalidParameterValueException",
    "ValidationException",
    "InvalidParameterValue",
    "InvalidRequestContentException",
    "InvalidInput",
];
const UNAVAILABLE: &[&str] = &[
    "ServiceException",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalServiceFault",
    "ServiceUnavailable",
];

/// Classifies an SDK error from `service`.
pub fn classify<E>(service: Service, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = DisplayErrorContext(&err).to_string();
    let (code, status) = match &err {
        SdkError::ServiceError(e) => (e.err().code().unwrap_or("").to_owned(), e.raw().status()),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            return PortError::Unavailable { service, message };
        }
        _ => return PortError::Other { service, message },
    };
    let is = |set: &[&str]| set.contains(&code.as_str());
    if is(THROTTLED) {
        PortError::Throttled { service, message }
    } else if is(NOT_FOUND) {
        PortError::NotFound { service, message }
    } else if code == "PreconditionFailedException" || code == "InvalidChangeBatch" {
        // Route53 refuses a batch whose DELETEs or CREATEs do not fit the zone as it is.
        PortError::PreconditionFailed { service, message }
    } else if code == "ParameterAlreadyExists" {
        PortError::AlreadyExists { service, message }
    } else if is(CONFLICT) {
        PortError::Conflict { service, message }
    } else if is(INVALID) {
        PortError::Invalid { service, message }
    } else if is(UNAVAILABLE) || status.is_server_error() {
        PortError::Unavailable { service, message }
    } else {
        PortError::Other { service, message }
    }
}
