//! In-memory fast-path ports: CloudWatch Logs subscription filters, Lambda's logging
//! configuration, and the `Stepshift/Outcomes` high-resolution metrics.
//!
//! The rules modelled are AWS's documented ones:
//! - a log group has at most two subscription filters; a third is refused with
//!   `LimitExceededException`, which this model (like the SDK adapter's classification)
//!   reports as [`PortError::Other`]: it is not retryable, and retrying would not help;
//! - PutSubscriptionFilter with the name of an existing filter replaces it (and does
//!   not count against the limit);
//! - DeleteSubscriptionFilter of a filter that does not exist, and any call on a log
//!   group that does not exist, is `ResourceNotFoundException` ([`PortError::NotFound`]);
//! - a function's log group is its logging configuration's (see
//!   [`MemoryAws::set_log_group`]), else `/aws/lambda/NAME`; GetFunctionConfiguration
//!   of a function that does not exist is not found;
//! - counts published for the same series and bucket add up (CloudWatch sums the
//!   values of a period), and a read returns the buckets of `[start, end)` that have
//!   any data, oldest first (a published zero is data).
//!
//! Log groups exist unless deleted with [`MemoryAws::delete_log_group`]: a function's
//! group is created by Lambda on its first invocation, and the simulation's functions
//! have all been invoked.

use std::collections::{BTreeMap, BTreeSet};

use super::{Call, MemoryAws, not_found};
use crate::error::{PortError, Service};
use crate::outcomes::{BucketCounts, LogSubscriptions, OutcomeSeries, OutcomeSink, OutcomeSource, bucket_of};
use crate::ports::PortResult;
use crate::time::Timestamp;

pub use crate::outcomes::MAX_SUBSCRIPTION_FILTERS;

/// One subscription filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// The filter pattern.
    pub pattern: String,
    /// Where matching events go (a Lambda function's ARN).
    pub destination_arn: String,
}

#[derive(Debug, Default)]
pub(super) struct OutcomeState {
    /// Functions' logging configuration: function → log group.
    log_groups: BTreeMap<String, String>,
    /// Subscription filters by log group, then name.
    filters: BTreeMap<String, BTreeMap<String, SubscriptionFilter>>,
    /// Log groups that do not exist.
    deleted: BTreeSet<String>,
    /// Published counts by series and bucket start (ms).
    counts: BTreeMap<(OutcomeSeries, i64), BucketCounts>,
}

impl OutcomeState {
    fn group_of(&self, function: &str) -> String {
        self.log_groups.get(function).cloned().unwrap_or_else(|| format!("/aws/lambda/{function}"))
    }

    fn existing(&mut self, group: &str) -> PortResult<&mut BTreeMap<String, SubscriptionFilter>> {
        if self.deleted.contains(group) {
            return Err(not_found(
                Service::CloudWatchLogs,
                format!("ResourceNotFoundException: the log group {group} does not exist"),
            ));
        }
        Ok(self.filters.entry(group.to_owned()).or_default())
    }
}

impl MemoryAws {
    /// Sets the function's logging configuration to log to `group` (which then exists).
    pub fn set_log_group(&self, function: &str, group: &str) {
        let mut s = self.lock();
        s.outcomes.log_groups.insert(function.to_owned(), group.to_owned());
        s.outcomes.deleted.remove(group);
    }

    /// Deletes a log group and its subscription filters.
    pub fn delete_log_group(&self, group: &str) {
        let mut s = self.lock();
        s.outcomes.filters.remove(group);
        s.outcomes.deleted.insert(group.to_owned());
    }

    /// Puts a filter someone else owns on `group`, bypassing the limit (test setup).
    pub fn add_foreign_filter(&self, group: &str, name: &str) {
        let filter = SubscriptionFilter {
            pattern: String::new(),
            destination_arn: "arn:aws:lambda:us-east-1:123456789012:function:someone-else".into(),
        };
        let mut s = self.lock();
        s.outcomes.deleted.remove(group);
        s.outcomes.filters.entry(group.to_owned()).or_default().insert(name.to_owned(), filter);
    }

    /// The names of the group's subscription filters, sorted, without counting a call.
    pub fn subscription_filters(&self, group: &str) -> Vec<String> {
        self.lock().outcomes.filters.get(group).map(|f| f.keys().cloned().collect()).unwrap_or_default()
    }

    /// One subscription filter, without counting a call.
    pub fn subscription_filter(&self, group: &str, name: &str) -> Option<SubscriptionFilter> {
        self.lock().outcomes.filters.get(group)?.get(name).cloned()
    }

    /// Every bucket published for `series`, oldest first, without counting a call.
    pub fn published(&self, series: &OutcomeSeries) -> Vec<BucketCounts> {
        self.lock().outcomes.counts.iter().filter(|((s, _), _)| s == series).map(|(_, c)| *c).collect()
    }

    /// Every series anything was published for, without counting a call.
    pub fn published_series(&self) -> Vec<OutcomeSeries> {
        let s = self.lock();
        let all: BTreeSet<&OutcomeSeries> = s.outcomes.counts.keys().map(|(series, _)| series).collect();
        all.into_iter().cloned().collect()
    }
}

impl OutcomeSource for MemoryAws {
    async fn outcomes(
        &self,
        series: &[OutcomeSeries],
        start: Timestamp,
        end: Timestamp,
    ) -> PortResult<Vec<Vec<BucketCounts>>> {
        self.serve(Call::GetMetricData, |s| {
            Ok(series
                .iter()
                .map(|one| {
                    s.outcomes
                        .counts
                        .range((one.clone(), start.millis())..(one.clone(), end.millis()))
                        .map(|(_, c)| *c)
                        .collect()
                })
                .collect())
        })
    }
}

impl OutcomeSink for MemoryAws {
    async fn publish(&self, counts: &[(OutcomeSeries, BucketCounts)]) -> PortResult<()> {
        self.serve(Call::PutMetricData, |s| {
            for (series, c) in counts {
                let start = bucket_of(c.start);
                let sum = s
                    .outcomes
                    .counts
                    .entry((series.clone(), start.millis()))
                    .or_insert(BucketCounts { start, ..BucketCounts::default() });
                sum.invocations += c.invocations;
                sum.failures += c.failures;
                sum.slow += c.slow;
            }
            Ok(())
        })
    }
}

impl LogSubscriptions for MemoryAws {
    async fn log_group_of(&self, function: &str) -> PortResult<String> {
        self.serve(Call::GetFunctionConfiguration, |s| {
            if !s.functions.contains_key(function) && !s.outcomes.log_groups.contains_key(function) {
                return Err(not_found(Service::Lambda, format!("function {function}")));
            }
            Ok(s.outcomes.group_of(function))
        })
    }

    async fn filters(&self, log_group: &str) -> PortResult<Vec<String>> {
        self.serve(Call::DescribeSubscriptionFilters, |s| Ok(s.outcomes.existing(log_group)?.keys().cloned().collect()))
    }

    async fn put_filter(&self, log_group: &str, name: &str, pattern: &str, destination_arn: &str) -> PortResult<()> {
        self.serve(Call::PutSubscriptionFilter, |s| {
            let filters = s.outcomes.existing(log_group)?;
            if !filters.contains_key(name) && filters.len() >= MAX_SUBSCRIPTION_FILTERS {
                return Err(PortError::Other {
                    service: Service::CloudWatchLogs,
                    message: format!(
                        "LimitExceededException: {log_group} already has {MAX_SUBSCRIPTION_FILTERS} subscription filters"
                    ),
                });
            }
            let filter = SubscriptionFilter { pattern: pattern.to_owned(), destination_arn: destination_arn.to_owned() };
            filters.insert(name.to_owned(), filter);
            Ok(())
        })
    }

    async fn delete_filter(&self, log_group: &str, name: &str) -> PortResult<()> {
        self.serve(Call::DeleteSubscriptionFilter, |s| {
            s.outcomes.existing(log_group)?.remove(name).map(|_| ()).ok_or_else(|| {
                not_found(
                    Service::CloudWatchLogs,
                    format!("ResourceNotFoundException: {log_group} has no subscription filter {name}"),
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::Source;

    fn series(version: &str) -> OutcomeSeries {
        OutcomeSeries { function: "orders".into(), alias: "live".into(), version: version.into(), source: Source::Logs }
    }

    fn counts(secs: i64, invocations: u64, failures: u64) -> BucketCounts {
        BucketCounts { start: Timestamp::from_secs(secs), invocations, failures, slow: 0 }
    }

    #[tokio::test]
    async fn a_log_group_takes_two_filters_and_a_put_of_the_same_name_replaces() {
        let aws = MemoryAws::new(Timestamp::from_secs(1_000));
        aws.add_function("orders", 2);
        let group = aws.log_group_of("orders").await.unwrap();
        assert_eq!(group, "/aws/lambda/orders");
        aws.put_filter(&group, "a", "", "arn:1").await.unwrap();
        aws.put_filter(&group, "b", "", "arn:1").await.unwrap();
        aws.put_filter(&group, "b", "REPORT", "arn:2").await.unwrap();
        assert_eq!(aws.subscription_filter(&group, "b").unwrap().pattern, "REPORT");
        let third = aws.put_filter(&group, "c", "", "arn:1").await.unwrap_err();
        assert!(matches!(third, PortError::Other { .. }) && !third.is_retryable(), "{third}");
        assert_eq!(aws.filters(&group).await.unwrap(), ["a", "b"]);
        aws.delete_filter(&group, "a").await.unwrap();
        assert!(matches!(aws.delete_filter(&group, "a").await, Err(PortError::NotFound { .. })));
        assert_eq!(aws.calls()[&Call::PutSubscriptionFilter], 4);
        assert!(matches!(aws.log_group_of("nobody").await, Err(PortError::NotFound { .. })));
        aws.delete_log_group(&group);
        assert!(matches!(aws.filters(&group).await, Err(PortError::NotFound { .. })));
    }

    #[tokio::test]
    async fn published_counts_add_up_and_reads_return_the_window_oldest_first() {
        let aws = MemoryAws::new(Timestamp::from_secs(1_000));
        aws.publish(&[(series("2"), counts(1_000, 0, 0)), (series("1"), counts(990, 5, 1))]).await.unwrap();
        aws.publish(&[(series("2"), counts(1_005, 3, 1)), (series("2"), counts(1_010, 4, 0))]).await.unwrap();
        aws.publish(&[(series("2"), counts(980, 1, 1))]).await.unwrap();
        let read = aws
            .outcomes(&[series("2"), series("1"), series("9")], Timestamp::from_secs(990), Timestamp::from_secs(1_010))
            .await
            .unwrap();
        assert_eq!(read[0], [counts(1_000, 3, 1)]);
        assert_eq!(read[1], [counts(990, 5, 1)]);
        assert!(read[2].is_empty());
        assert_eq!(aws.published(&series("2")).len(), 3);
        assert_eq!(aws.calls()[&Call::PutMetricData], 3);
    }
}
