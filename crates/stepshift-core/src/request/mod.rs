//! The execution input: a versioned, strictly validated deployment request.
//!
//! Reading a request ([`DeploymentRequest::from_value`]) takes three stages, each of which
//! reports every problem it finds, each naming its field (a [`crate::FieldError`]):
//! 1. the shape (`parse`): every object is walked against a table of its fields, so that a
//!    missing or unknown field, or an array where an object belongs, is named with its
//!    full path (`targets[1].alias`);
//! 2. the types (`parse`, into the types of `model`): serde reads the model, and
//!    serde_path_to_error names the field whose value has the wrong type;
//! 3. the rules (`validate`): [`DeploymentRequest::validate`] checks what the types
//!    cannot express.
//!
//! Read from text ([`DeploymentRequest::from_json`]), a key repeated in one object is
//! refused first, by its path ([`first_repeated_key`]).

mod duplicates;
mod model;
mod parse;
mod validate;

pub use duplicates::{REPEATED_KEY, first_repeated_key};
pub use model::{
    BaselineSettings, DeploymentRequest, ErrorRateRule, HealthSettings, InsufficientData, LatencyRule, ROUTE53_KIND,
    SCHEMA_VERSION, StepSpec, Strategy, Target, Targets, ThrottleRule, WhenInsufficient,
};
pub use parse::MAX_REQUEST_BYTES;
pub use validate::{
    EVENTS_PER_CHECK, EVENTS_PER_DNS_SYNC, EVENTS_PER_STEP, HISTORY_EVENT_LIMIT, MAX_ALARMS, MAX_STEPS, MAX_TARGETS,
    MAX_TOTAL_SECONDS, MAX_WAIT_SECONDS, MIN_CHECK_INTERVAL_SECONDS, RESERVED_EVENTS, is_resource_name,
};

#[cfg(test)]
mod tests;
