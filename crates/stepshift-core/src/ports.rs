//! The capabilities stepshift needs from AWS, one trait each. `stepshift-aws` implements
//! them on the AWS SDK, [`crate::memory`] in memory, and `stepshift-local` on a simulation.
//!
//! The methods return `impl Future + Send` so that handlers can be generic over the ports
//! without boxing, and still run on a multi-threaded runtime.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::time::Timestamp;

/// Result of a port call.
pub type PortResult<T> = Result<T, PortError>;

/// What a Lambda alias routes to: its primary version and at most one additional
/// version with a weight (AWS's rule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AliasRouting {
    /// The version that receives `1 - weight` of the traffic.
    pub version: String,
    /// The additional version and its share of traffic, 0.0 to 1.0.
    pub additional: Option<(String, f64)>,
}

impl AliasRouting {
    /// All traffic to `version`.
    pub fn single(version: impl Into<String>) -> Self {
        Self { version: version.into(), additional: None }
    }

    /// `1 - weight` to `primary` and `weight` to `additional`.
    pub fn split(primary: impl Into<String>, additional: impl Into<String>, weight: f64) -> Self {
        Self { version: primary.into(), additional: Some((additional.into(), weight)) }
    }

    /// The share of traffic `version` receives, 0.0 to 1.0.
    pub fn share_of(&self, version: &str) -> f64 {
        let extra = match &self.additional {
            Some((v, w)) if v == version => *w,
            _ => 0.0,
        };
        let primary =
            if self.version == version { 1.0 - self.additional.as_ref().map_or(0.0, |(_, w)| *w) } else { 0.0 };
        primary + extra
    }

    /// Whether both describe the same routing (weights compared to 1e-9). A split with
    /// weight 0 differs from no split: it still carries a routing configuration.
    pub fn same_as(&self, other: &AliasRouting) -> bool {
        self.version == other.version
            && match (&self.additional, &other.additional) {
                (None, None) => true,
                (Some((va, wa)), Some((vb, wb))) => va == vb && (wa - wb).abs() < 1e-9,
                _ => false,
            }
    }

    /// Every version this routing sends traffic to (or could, at weight 0).
    pub fn versions(&self) -> Vec<&str> {
        let mut v = vec![self.version.as_str()];
        if let Some((extra, _)) = &self.additional {
            v.push(extra);
        }
        v
    }

    /// A short human description: `41 (90%) + 42 (10%)` or `42`.
    pub fn describe(&self) -> String {
        match &self.additional {
            None => format!("version {} (100%)", self.version),
            Some((extra, w)) => format!(
                "version {} ({}%) + version {extra} ({}%)",
                self.version,
                crate::percent_text(1.0 - w),
                crate::percent_text(*w)
            ),
        }
    }
}

/// An alias as Lambda reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AliasState {
    /// Where its traffic goes.
    pub routing: AliasRouting,
    /// Lambda's RevisionId; changes on every update.
    pub revision_id: String,
}

/// Moves traffic between versions behind a Lambda alias.
pub trait AliasRouter: Send + Sync {
    /// The alias's routing and RevisionId. `NotFound` if the function or alias does not exist.
    fn get_alias(&self, function: &str, alias: &str) -> impl Future<Output = PortResult<AliasState>> + Send;

    /// Sets the alias's routing. With `expected_revision`, fails with `PreconditionFailed`
    /// if the alias changed since that revision.
    fn update_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &AliasRouting,
        expected_revision: Option<&str>,
    ) -> impl Future<Output = PortResult<AliasState>> + Send;
}

/// Lists and deletes a function's published versions.
pub trait VersionCatalog: Send + Sync {
    /// The published versions (never `$LATEST`), in any order. `NotFound` if no such function.
    fn list_versions(&self, function: &str) -> impl Future<Output = PortResult<Vec<String>>> + Send;

    /// Every alias of the function with its routing.
    fn list_aliases(&self, function: &str) -> impl Future<Output = PortResult<Vec<(String, AliasRouting)>>> + Send;

    /// Deletes one published version. `Conflict` if an alias still routes to it.
    fn delete_version(&self, function: &str, version: &str) -> impl Future<Output = PortResult<()>> + Send;
}

/// One version behind one alias whose metrics a check needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MetricSeriesKey {
    /// Function name.
    pub function: String,
    /// Alias name; the Resource dimension is `function:alias`.
    pub alias: String,
    /// The ExecutedVersion dimension.
    pub version: String,
}

/// One series a check reads, and the Duration thresholds to count invocations above.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// The version behind the alias.
    pub series: MetricSeriesKey,
    /// Count invocations slower than this many ms per minute (CloudWatch's `TC(x:)`
    /// on Duration) into [`MinuteCounts::slow`].
    pub slow_above_ms: Option<f64>,
    /// Count invocations slower than this many ms per minute into
    /// [`MinuteCounts::over_limit`].
    pub limit_ms: Option<f64>,
    /// The version's custom metrics ([`crate::custom`]), read in the same request: one
    /// 1-minute series each, in [`VersionMetrics::custom`] in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomSeries>,
}

impl MetricQuery {
    /// The plain sums of `series`, with no Duration threshold.
    pub fn sums(series: MetricSeriesKey) -> Self {
        Self { series, slow_above_ms: None, limit_ms: None, custom: Vec::new() }
    }

    /// How many GetMetricData queries it takes: the built-in ones and one per custom series.
    pub fn cost(&self) -> usize {
        BUILT_IN_QUERIES + self.custom.len()
    }
}

/// The most queries one GetMetricData request takes (CloudWatch's limit).
pub const MAX_METRIC_QUERIES: usize = 500;

/// The queries a [`MetricQuery`] makes for Lambda's own metrics, at most: Invocations,
/// Errors and Throttles sums, Duration's sample count, its p99, and two trimmed counts.
pub const BUILT_IN_QUERIES: usize = 7;

/// One custom CloudWatch metric of one version, its placeholders filled in: read in
/// 1-minute periods with `stat`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CustomSeries {
    /// The metric's namespace, e.g. `orders`.
    pub namespace: String,
    /// The metric's name, e.g. `Http5xx`.
    pub metric: String,
    /// Its dimensions as `(name, value)`, in name order.
    pub dimensions: Vec<(String, String)>,
    /// The statistic: `Sum` for a rate's counts; any CloudWatch statistic for a gauge.
    pub stat: String,
}

/// One datapoint of a custom series: the minute and its value.
pub type CustomPoint = (Timestamp, f64);

/// The per-version Lambda metrics of one time window, in 1-minute periods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionMetrics {
    /// Sum of Invocations per minute that had data, oldest first.
    pub minutes: Vec<MinuteCounts>,
    /// p99 of Duration over the whole window, in milliseconds, if there was any data.
    pub p99_duration_ms: Option<f64>,
    /// One series per [`MetricQuery::custom`], in order: the minutes that had a
    /// datapoint, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<Vec<CustomPoint>>,
}

/// Counts of one 1-minute period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteCounts {
    /// Start of the minute.
    pub start: Timestamp,
    /// Sum of Invocations.
    pub invocations: u64,
    /// Sum of Errors.
    pub errors: u64,
    /// Sum of Throttles.
    pub throttles: u64,
    /// Duration's SampleCount: the invocations the slow counts are out of.
    #[serde(default)]
    pub durations: u64,
    /// Invocations slower than the query's `slow_above_ms`.
    #[serde(default)]
    pub slow: u64,
    /// Invocations slower than the query's `limit_ms`.
    #[serde(default)]
    pub over_limit: u64,
}

impl VersionMetrics {
    /// Totals over the window.
    pub fn totals(&self) -> MinuteCounts {
        self.minutes.iter().fold(MinuteCounts::default(), |acc, m| MinuteCounts {
            start: acc.start,
            invocations: acc.invocations + m.invocations,
            errors: acc.errors + m.errors,
            throttles: acc.throttles + m.throttles,
            durations: acc.durations + m.durations,
            slow: acc.slow + m.slow,
            over_limit: acc.over_limit + m.over_limit,
        })
    }
}

/// Reads Lambda's per-version metrics.
pub trait MetricsSource: Send + Sync {
    /// Metrics for every query over `[start, end)`, in one request to the service; the
    /// result has one entry per query, in the same order. `p99_duration_ms` is over the
    /// whole window. Queries that cost more than [`MAX_METRIC_QUERIES`] in all are
    /// refused (`Invalid`): validation keeps requests within it.
    fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Timestamp,
        end: Timestamp,
    ) -> impl Future<Output = PortResult<Vec<VersionMetrics>>> + Send;
}

/// The state of a CloudWatch alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmValue {
    /// The alarm's condition holds.
    Alarm,
    /// It does not.
    Ok,
    /// CloudWatch cannot tell.
    InsufficientData,
}

/// An alarm and its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmStatus {
    /// Alarm name.
    pub name: String,
    /// Its state, or `None` if no such alarm exists.
    pub state: Option<AlarmValue>,
    /// CloudWatch's reason text, if any.
    pub reason: Option<String>,
}

/// Reads CloudWatch alarm states.
pub trait AlarmSource: Send + Sync {
    /// The state of each named alarm, one entry per name in the same order.
    fn alarm_states(&self, names: &[String]) -> impl Future<Output = PortResult<Vec<AlarmStatus>>> + Send;
}

/// A store of named text values (SSM Parameter Store) holding the version records and locks.
pub trait ParameterStore: Send + Sync {
    /// The values of the named parameters that exist, as `(name, value)`.
    fn get_many(&self, names: &[String]) -> impl Future<Output = PortResult<Vec<(String, String)>>> + Send;

    /// Writes a value, replacing any existing one.
    fn put(&self, name: &str, value: &str) -> impl Future<Output = PortResult<()>> + Send;

    /// Writes a value only if the parameter does not exist; `AlreadyExists` otherwise.
    fn create(&self, name: &str, value: &str) -> impl Future<Output = PortResult<()>> + Send;

    /// Deletes a parameter; deleting a missing one is not an error.
    fn delete(&self, name: &str) -> impl Future<Output = PortResult<()>> + Send;
}

/// Publishes lifecycle events ([`crate::events`]) on the deployment's event bus
/// (EventBridge PutEvents, source [`crate::events::SOURCE`]). The tasks publish through
/// [`crate::events::publish`], which never fails them.
pub trait EventSink: Send + Sync {
    /// Publishes every event, in order. An error may leave some of them published.
    fn publish(&self, events: &[crate::events::LifecycleEvent]) -> impl Future<Output = PortResult<()>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        let r = AliasRouting::split("41", "42", 0.25);
        assert_eq!(r.share_of("41"), 0.75);
        assert_eq!(r.share_of("42"), 0.25);
        assert_eq!(r.share_of("40"), 0.0);
        assert_eq!(AliasRouting::single("42").share_of("42"), 1.0);
    }

    #[test]
    fn same_as_compares_versions_and_weights() {
        assert!(!AliasRouting::split("41", "42", 0.0).same_as(&AliasRouting::single("41")));
        assert!(!AliasRouting::split("41", "42", 0.1).same_as(&AliasRouting::single("41")));
        assert!(AliasRouting::split("41", "42", 0.1).same_as(&AliasRouting::split("41", "42", 0.1 + 1e-12)));
        assert!(!AliasRouting::split("41", "42", 0.1).same_as(&AliasRouting::split("41", "43", 0.1)));
    }

    #[test]
    fn describe_reads_well() {
        assert_eq!(AliasRouting::split("41", "42", 0.1).describe(), "version 41 (90%) + version 42 (10%)");
        assert_eq!(AliasRouting::single("42").describe(), "version 42 (100%)");
    }
}
