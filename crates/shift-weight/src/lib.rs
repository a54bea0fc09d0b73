//! The "Shift traffic" task: sets every target alias to `{stable: 1-w, candidate: w}`
//! for the cursor's step, writing with the last RevisionId stepshift saw. If an alias
//! changed behind stepshift's back it fails with `AliasDrift` and changes nothing.
//!
//! Input: `{"targets": $.plan.targets, "traffic": $.traffic, "cursor": $.progress.cursor,
//! "execution": $$.Execution.Id}`. Output: the new `$.traffic`. Publishes `Traffic
//! Shifted` on the event bus (best effort; [`stepshift_core::events`]).

mod handler;

pub use handler::handle;
