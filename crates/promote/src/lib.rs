//! The "Promote" task: gives every target's candidate 100% of the alias's traffic and
//! clears the routing configuration, guarded against drift like "Shift traffic".
//!
//! Input: `{"targets": $.plan.targets, "traffic": $.traffic}`. Output: the new `$.traffic`.

mod handler;

pub use handler::handle;
