//! The "Roll back" task: gives every target's stable version 100% of the traffic again.
//! Calling it twice is harmless. An alias someone else moved to another version is left
//! as they set it, and the report says so.
//!
//! Input: `{"targets": $.plan.targets, "traffic": $.traffic, "execution": $$.Execution.Id,
//! "plan": $.plan, "progress": $.progress, "failure": $.failure}`. Output: `$.rollback`.
//! Publishes `Deployment Rolled Back` (with the reason), or `Deployment Failed` when the
//! rollback itself failed for good, on the event bus (best effort; [`stepshift_core::events`]).

mod handler;

pub use handler::handle;
