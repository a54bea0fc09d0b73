//! The fast path's contract: what the `tally` Lambda publishes, how its subscription
//! filters are named, and what "Check health" reads back.
//!
//! `tally` turns invocation outcomes (the functions' own log lines through a CloudWatch
//! Logs subscription filter, or Lambda Destinations events through EventBridge) into
//! per-version counts in [`BUCKET_SECONDS`]-second buckets, published as
//! high-resolution custom metrics in [`NAMESPACE`]. "Check health" reads them at the
//! same period and runs the same sequential test as on the minute metrics; that test
//! may only roll back (see [`crate::tasks::check`]).
//!
//! Both sides use these types and constants, so a renamed metric or dimension is a
//! compile error rather than a silent zero.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::time::Timestamp;

/// The CloudWatch namespace of the outcome counts.
pub const NAMESPACE: &str = "Stepshift/Outcomes";

/// The bucket length, in seconds: the period `tally` publishes and checks read.
/// CloudWatch keeps high-resolution data at 10-second periods for 3 hours.
pub const BUCKET_SECONDS: i64 = 10;

/// Dimension: the function's name.
pub const DIM_FUNCTION: &str = "FunctionName";
/// Dimension: `function:alias`, as in AWS/Lambda's `Resource`.
pub const DIM_RESOURCE: &str = "Resource";
/// Dimension: the executed version.
pub const DIM_VERSION: &str = "Version";
/// Dimension: which input counted it ([`Source::name`]).
pub const DIM_SOURCE: &str = "Source";

/// Every subscription filter stepshift creates starts with this.
pub const FILTER_PREFIX: &str = "stepshift";

/// CloudWatch Logs' limit of subscription filters per log group.
pub const MAX_SUBSCRIPTION_FILTERS: usize = 2;

/// Shortest fast-path check interval, in seconds.
pub const MIN_FAST_CHECK_SECONDS: u64 = 10;
/// The fast-path check interval when the request leaves it unset (lengthened in
/// 10-second steps as far as a long deployment needs to fit the history limit).
pub const DEFAULT_FAST_CHECK_SECONDS: u64 = 20;

/// How long into a deployment the fast path judges: CloudWatch keeps 10-second data for
/// 3 hours, and the fast path's test needs every bucket since the deployment began. After
/// this, checks go back to the minute interval and the minute metrics alone.
pub const FAST_PATH_HORIZON_SECONDS: u64 = 3 * 3600 - 600;

/// The metrics `tally` publishes per series and bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeMetric {
    /// Invocations that finished (a REPORT line, or a destination event).
    Invocations,
    /// Those that failed: a function error, a crash, a timeout, out of memory.
    Failures,
    /// Those slower than the deployment's slow threshold (logs only: destination events
    /// carry no duration).
    Slow,
}

impl OutcomeMetric {
    /// All of them, in the order `tally` publishes them.
    pub const ALL: [OutcomeMetric; 3] = [Self::Invocations, Self::Failures, Self::Slow];

    /// The CloudWatch metric name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Invocations => "Invocations",
            Self::Failures => "Failures",
            Self::Slow => "Slow",
        }
    }
}

/// Which input an outcome came from. A target is judged on one source only, so an
/// invocation seen by both inputs is never counted twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The function's log lines, through a subscription filter.
    #[default]
    Logs,
    /// Lambda Destinations events, through an EventBridge rule.
    Destinations,
}

impl Source {
    /// The `Source` dimension's value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Logs => "logs",
            Self::Destinations => "destinations",
        }
    }
}

/// One counted series: a version behind an alias, from one source.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutcomeSeries {
    /// Function name.
    pub function: String,
    /// Alias name.
    pub alias: String,
    /// The executed version.
    pub version: String,
    /// The input that counted it.
    pub source: Source,
}

impl OutcomeSeries {
    /// The series' dimensions, in the order `tally` publishes them.
    pub fn dimensions(&self) -> [(&'static str, String); 4] {
        [
            (DIM_FUNCTION, self.function.clone()),
            (DIM_RESOURCE, format!("{}:{}", self.function, self.alias)),
            (DIM_VERSION, self.version.clone()),
            (DIM_SOURCE, self.source.name().to_owned()),
        ]
    }
}

/// The counts of one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCounts {
    /// Start of the bucket (a multiple of [`BUCKET_SECONDS`]).
    pub start: Timestamp,
    /// Invocations that finished.
    pub invocations: u64,
    /// Failed invocations among them.
    pub failures: u64,
    /// Invocations slower than the slow threshold.
    pub slow: u64,
}

impl BucketCounts {
    /// The value of `metric`.
    pub const fn get(&self, metric: OutcomeMetric) -> u64 {
        match metric {
            OutcomeMetric::Invocations => self.invocations,
            OutcomeMetric::Failures => self.failures,
            OutcomeMetric::Slow => self.slow,
        }
    }
}

/// The start of the bucket `t` falls in.
pub const fn bucket_of(t: Timestamp) -> Timestamp {
    let ms = BUCKET_SECONDS * 1000;
    Timestamp::from_millis(t.millis() - t.millis().rem_euclid(ms))
}

/// The name of the subscription filter stepshift puts on a target function's log
/// group: `stepshift/<function>/<alias>/<slow threshold ms or ->/<execution name>`.
///
/// It carries everything `tally` needs to count a log batch, because `tally` keeps no
/// state: CloudWatch Logs sends the filter's name with every batch. It also names the
/// execution that owns it, so that every ending (and `stepshift unlock`) removes exactly
/// its own filters. Filter names may not contain `:` or `*`; function, alias and
/// execution names cannot contain `/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FilterName {
    /// The function whose log group it is on.
    pub function: String,
    /// The alias being deployed.
    pub alias: String,
    /// Invocations slower than this (whole milliseconds) count as slow.
    pub slow_above_ms: Option<u64>,
    /// The owning execution's name (the last part of its ARN).
    pub execution: String,
}

impl FilterName {
    /// The filter's name.
    pub fn render(&self) -> String {
        let slow = self.slow_above_ms.map_or_else(|| "-".to_owned(), |ms| ms.to_string());
        format!("{FILTER_PREFIX}/{}/{}/{slow}/{}", self.function, self.alias, self.execution)
    }

    /// Reads a filter name; `None` for a filter stepshift did not create.
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split('/');
        if parts.next()? != FILTER_PREFIX {
            return None;
        }
        let function = parts.next().filter(|s| !s.is_empty())?.to_owned();
        let alias = parts.next().filter(|s| !s.is_empty())?.to_owned();
        let slow = parts.next()?;
        let slow_above_ms = if slow == "-" { None } else { Some(slow.parse().ok()?) };
        let execution = parts.next().filter(|s| !s.is_empty())?.to_owned();
        if parts.next().is_some() {
            return None;
        }
        Some(Self { function, alias, slow_above_ms, execution })
    }
}

/// The name of an execution from its ARN (`arn:aws:states:…:execution:machine:NAME`).
pub fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// The fast path of one target, as "Start fast path" left it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastTarget {
    /// The target's label (`orders:live`).
    pub target: String,
    /// The source its checks read.
    pub source: Source,
    /// Whether that source is counting: a log group whose two subscription filters are
    /// taken by others gets none.
    pub live: bool,
    /// The log group subscribed, for the logs source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// Why it is not live, or what to know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The fast path of a deployment: `$.plan.fast_path`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastPath {
    /// Seconds between checks while the fast path is live.
    pub check_every_seconds: u64,
    /// One entry per alias target, in the plan's order.
    #[serde(default)]
    pub targets: Vec<FastTarget>,
}

impl FastPath {
    /// Whether any target's source is counting.
    pub fn live(&self) -> bool {
        self.targets.iter().any(|t| t.live)
    }
}

type PortResult<T> = Result<T, PortError>;

/// Reads the outcome counts (CloudWatch GetMetricData at [`BUCKET_SECONDS`] periods).
pub trait OutcomeSource: Send + Sync {
    /// The buckets with data of each series over `[start, end)`, oldest first, one
    /// entry per series in the same order.
    fn outcomes(
        &self,
        series: &[OutcomeSeries],
        start: Timestamp,
        end: Timestamp,
    ) -> impl Future<Output = PortResult<Vec<Vec<BucketCounts>>>> + Send;
}

/// Publishes outcome counts (CloudWatch PutMetricData, high resolution).
pub trait OutcomeSink: Send + Sync {
    /// Adds each bucket's counts to its series (CloudWatch sums what arrives for the
    /// same bucket, so a late batch adds to what came before).
    fn publish(&self, counts: &[(OutcomeSeries, BucketCounts)]) -> impl Future<Output = PortResult<()>> + Send;
}

/// The subscription filters on the target functions' log groups (CloudWatch Logs), and
/// where each function logs (Lambda's logging configuration).
pub trait LogSubscriptions: Send + Sync {
    /// The function's log group: its logging configuration's, or `/aws/lambda/NAME`.
    fn log_group_of(&self, function: &str) -> impl Future<Output = PortResult<String>> + Send;

    /// The names of the log group's subscription filters.
    fn filters(&self, log_group: &str) -> impl Future<Output = PortResult<Vec<String>>> + Send;

    /// Creates or replaces the filter `name` sending lines matching `pattern` to
    /// `destination_arn`.
    fn put_filter(
        &self,
        log_group: &str,
        name: &str,
        pattern: &str,
        destination_arn: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;

    /// Deletes the filter `name`; a filter that is already gone is not an error.
    fn delete_filter(&self, log_group: &str, name: &str) -> impl Future<Output = PortResult<()>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_names_round_trip_and_foreign_ones_are_ignored() {
        let f = FilterName {
            function: "orders".into(),
            alias: "live".into(),
            slow_above_ms: Some(250),
            execution: "orders-live-20261130T0412".into(),
        };
        assert_eq!(f.render(), "stepshift/orders/live/250/orders-live-20261130T0412");
        assert_eq!(FilterName::parse(&f.render()), Some(f.clone()));
        let none = FilterName { slow_above_ms: None, ..f };
        assert_eq!(FilterName::parse(&none.render()), Some(none));
        for foreign in ["datadog-forwarder", "stepshift/orders/live", "stepshift/orders/live/x/e", "stepshift//a/-/e"] {
            assert_eq!(FilterName::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn buckets_start_on_ten_second_boundaries() {
        assert_eq!(bucket_of(Timestamp::from_millis(1_000_019_999)), Timestamp::from_millis(1_000_010_000));
        assert_eq!(bucket_of(Timestamp::from_secs(100)), Timestamp::from_secs(100));
        assert_eq!(execution_name("arn:aws:states:us-east-1:1:execution:stepshift:abc-1"), "abc-1");
    }
}
