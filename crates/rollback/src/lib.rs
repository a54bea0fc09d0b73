//! The "Roll back" task: gives every target's stable version 100% of the traffic again.
//! Calling it twice is harmless. An alias someone else moved to another version is left
//! as they set it, and the report says so.
//!
//! Input: `{"targets": $.plan.targets, "traffic": $.traffic}`. Output: `$.rollback`.

mod handler;

pub use handler::handle;
