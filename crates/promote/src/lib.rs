//! The "Promote" task: gives every target's candidate 100% of the alias's traffic and
//! clears the routing configuration, guarded against drift like "Shift traffic".
//!
//! Input: `{"targets": $.plan.targets, "traffic": $.traffic, "execution": $$.Execution.Id}`.
//! Output: the new `$.traffic`. Publishes `Deployment Promoted` on the event bus (best
//! effort; [`stepshift_core::events`]).

mod handler;

pub use handler::handle;
