//! stepshift's domain, free of AWS SDKs and of the Lambda runtime.
//!
//! - [`contract`]: the state and error names shared with the state machine definition;
//! - [`request`]: the execution input and its validation;
//! - [`strategy`]: presets and steps;
//! - [`judge`]: the health judge, and [`custom`]: the team's own per-version metrics in it;
//! - [`deployment`]: the state the state machine carries, and the step progression;
//! - [`records`]: version records, history, locks and pruning;
//! - [`routers`]: what moves traffic: Lambda alias weights ([`routers::alias`]), Route53
//!   weighted records ([`routers::route53`]) and Lambda Web Function endpoints
//!   ([`routers::web`]), behind one abstraction;
//! - [`outcomes`]: the fast path's contract between `tally` and "Check health";
//! - [`ports`]: the capabilities stepshift needs from AWS;
//! - [`tasks`]: what each task Lambda does, generic over the ports;
//! - [`memory`]: in-memory ports for tests and simulation.

pub mod baseline;
pub mod compare;
pub mod contract;
pub mod control;
pub mod custom;
pub mod deployment;
pub mod error;
pub mod events;
pub mod hooks;
pub mod judge;
pub mod memory;
pub mod outcomes;
pub mod ports;
pub mod records;
pub mod request;
pub mod routers;
pub mod strategy;
pub mod tasks;
pub mod time;

pub use contract::{ErrorName, State};
pub use error::{FieldError, FieldErrors, PortError, Service, TaskError};
pub use time::{Clock, SystemClock, Timestamp};

/// A fraction (0.0 to 1.0) as a percentage with at most two decimals: `0.125` → `12.5`.
pub fn percent_text(fraction: f64) -> String {
    let text = format!("{:.2}", fraction * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Serializes a task's output. Our outputs always serialize; should one not, the
/// task fails loudly rather than returning `null`.
pub fn encode<T: serde::Serialize>(value: T) -> Result<serde_json::Value, TaskError> {
    serde_json::to_value(value)
        .map_err(|e| TaskError::InvalidTaskInput(format!("task output could not be encoded: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_text_trims() {
        assert_eq!(percent_text(0.125), "12.5");
        assert_eq!(percent_text(0.1), "10");
        assert_eq!(percent_text(1.0), "100");
        assert_eq!(percent_text(0.00333), "0.33");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
