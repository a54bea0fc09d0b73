//! The "Check health" task: reads the window's per-version Lambda metrics (one
//! GetMetricData call for every target) and the watched alarms, judges the candidate,
//! and returns the progress with the next decision and the verdict's numbers.
//!
//! Input: `{"plan": $.plan, "traffic": $.traffic, "progress": $.progress}`.
//! Output: the new `$.progress`. Publishes `Health Checked`, `Deployment Paused` /
//! `Deployment Resumed` and `Release Confirmed` on the event bus (best effort;
//! [`stepshift_core::events`]).

mod handler;

pub use handler::handle;
