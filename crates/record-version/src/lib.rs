//! The record-version task, by `action`:
//! - `begin`: validate the request, resolve each alias to its stable version and
//!   RevisionId, take the per-alias locks, plan the steps. Output: the whole state.
//! - `rejected`: release this execution's locks after a failed begin; output `{Error, Cause}`.
//! - `promoted`: current = candidate, previous = stable, deployment timestamp, history.
//! - `rolled_back`: restore the records, release the locks; output `{Error, Cause, ...}`.
//! - `confirmed`: last-known-good = candidate, prune old versions, release the locks;
//!   output the release summary.

mod handler;

pub use handler::handle;
