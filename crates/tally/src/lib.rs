//! The `tally` Lambda: the fast path's counter, and the task that starts and stops it.
//!
//! It turns invocation outcomes into per-version counts within seconds, published as
//! high-resolution metrics in `Stepshift/Outcomes` ([`stepshift_core::outcomes`]), from
//! two inputs:
//! - the target functions' own log lines, through the subscription filter "Start fast
//!   path" puts on their log groups ([`logs`]: which lines, per runtime);
//! - Lambda Destinations events on an EventBridge bus, for asynchronously invoked
//!   functions ([`destinations`]).
//!
//! It keeps no state: the filter's name carries the function, alias and slow threshold,
//! and the log stream's name the version. Counting never fails an invocation once it
//! could have published anything, because CloudWatch Logs and EventBridge would deliver
//! the batch again and it would count twice: a failure is logged, and the summary it
//! returns says so. The fast path then sees fewer invocations, never more.
//!
//! Its inputs, told apart by their shape ([`handle`]):
//! - `{"awslogs": {"data": ...}}`: a log batch;
//! - an EventBridge event whose `detail-type` is `Lambda Function Invocation Result -
//!   Success` or `- Failure`: a destination record;
//! - a `Step Functions Execution Status Change` event (`source` `aws.states`): when the
//!   execution has ended, its subscription filters are removed, whichever way it ended;
//! - `{"action": "start", "plan": $.plan}` ("Start fast path", returns the
//!   [`FastPath`](stepshift_core::outcomes::FastPath)) and `{"action": "stop", "plan":
//!   $.plan}` ("Stop fast path", returns what it removed).

pub mod aggregate;
pub mod destinations;
mod handler;
pub mod logs;

pub use aggregate::{Outcome, Totals, aggregate};
pub use handler::{STATUS_CHANGE, handle};

/// A Lambda function's ARN without its qualifier (`...:function:NAME:live` →
/// `...:function:NAME`): the destination a subscription filter names.
pub fn unqualified_arn(arn: &str) -> &str {
    match arn.match_indices(':').nth(6) {
        Some((at, _)) => &arn[..at],
        None => arn,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unqualified_arns() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:stepshift-tally";
        assert_eq!(super::unqualified_arn(arn), arn);
        assert_eq!(super::unqualified_arn(&format!("{arn}:live")), arn);
        assert_eq!(super::unqualified_arn(&format!("{arn}:$LATEST")), arn);
    }
}
