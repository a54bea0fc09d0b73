//! The stable version's own history: "Begin deployment" reads it through the alias
//! before the first shift, and keeps this compact summary in the plan. Once the
//! candidate has all traffic (the lock-in, or any 100% step), it is the baseline the
//! candidate is compared with ([`crate::compare`]).
//!
//! For a Lambda alias: the stable version's per-minute Invocations, Errors and Throttles
//! over `health.baseline.history_seconds`, its Duration p99 over the same hour, and the
//! invocations slower than that p99 (CloudWatch's `TC(p99:)` with Duration's
//! SampleCount). That p99 is the threshold of "slow" for the whole deployment, so slow
//! invocations are counted the same way before and during it. It takes two
//! GetMetricData calls, because the second needs the threshold the first reads.
//!
//! For a Route53 record: blue's CloudFront minutes (requests, 5xx and 4xx).

use serde::{Deserialize, Serialize};

use crate::compare::BaselineRate;
use crate::deployment::PlannedTarget;
use crate::error::PortError;
use crate::ports::{MetricQuery, MetricSeriesKey, MetricsSource, VersionMetrics};
use crate::request::HealthSettings;
use crate::route53::health::DistributionMetricsSource;
use crate::time::Timestamp;

/// A summary of the stable version's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Start of the history, inclusive.
    pub start: Timestamp,
    /// End of the history (the deployment's start minute), exclusive.
    pub end: Timestamp,
    /// Minutes in which the stable version served traffic.
    pub minutes: u32,
    /// Errors (5xx for a front end) over invocations (requests).
    pub errors: BaselineRate,
    /// 4xx over requests, for a front end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_errors: Option<BaselineRate>,
    /// Duration p99 over the history, ms: the threshold of "slow".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_above_ms: Option<f64>,
    /// Invocations slower than `slow_above_ms`, over Duration's sample count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<BaselineRate>,
    /// Throttles over the history.
    pub throttles: u64,
}

impl History {
    /// A summary of `metrics` over `[start, end)`, with slow counts above `slow_above_ms`.
    pub fn from_metrics(
        start: Timestamp,
        end: Timestamp,
        metrics: &VersionMetrics,
        slow_above_ms: Option<f64>,
    ) -> Self {
        let t = metrics.totals();
        Self {
            start,
            end,
            minutes: metrics.minutes.iter().filter(|m| m.invocations > 0).count() as u32,
            errors: BaselineRate { invocations: t.invocations, events: t.errors },
            client_errors: None,
            slow_above_ms,
            slow: slow_above_ms
                .filter(|_| t.durations > 0)
                .map(|_| BaselineRate { invocations: t.durations, events: t.slow }),
            throttles: t.throttles,
        }
    }

    /// Whether it holds enough traffic to be a baseline.
    pub fn usable(&self) -> bool {
        self.errors.usable()
    }
}

/// The history window of a deployment that started at `started_at`.
pub fn window(health: &HealthSettings, started_at: Timestamp) -> (Timestamp, Timestamp) {
    let end = started_at.floor_minute();
    let secs = i64::try_from(health.baseline.history_seconds).unwrap_or(0);
    (end.plus_secs(-secs), end)
}

/// Reads the history of every target, in order; `None` for every target when the
/// request asks for none.
pub async fn read<P: MetricsSource + DistributionMetricsSource>(
    ports: &P,
    targets: &[PlannedTarget],
    health: &HealthSettings,
    started_at: Timestamp,
) -> Result<Vec<Option<History>>, PortError> {
    if health.baseline.history_seconds == 0 {
        return Ok(vec![None; targets.len()]);
    }
    let (start, end) = window(health, started_at);
    let mut out: Vec<Option<History>> = vec![None; targets.len()];

    let aliases: Vec<usize> = (0..targets.len()).filter(|i| targets[*i].record.is_none()).collect();
    if !aliases.is_empty() {
        let key = |i: usize| MetricSeriesKey {
            function: targets[i].function.clone(),
            alias: targets[i].alias.clone(),
            version: targets[i].stable.clone(),
        };
        let sums: Vec<MetricQuery> = aliases.iter().map(|i| MetricQuery::sums(key(*i))).collect();
        let first = ports.fetch(&sums, start, end).await?;
        let thresholds: Vec<Option<f64>> = first.iter().map(|m| m.p99_duration_ms).collect();
        let metrics = if thresholds.iter().any(Option::is_some) {
            let slow: Vec<MetricQuery> = aliases
                .iter()
                .zip(&thresholds)
                .map(|(i, t)| MetricQuery { slow_above_ms: *t, ..MetricQuery::sums(key(*i)) })
                .collect();
            ports.fetch(&slow, start, end).await?
        } else {
            first
        };
        for ((i, m), t) in aliases.iter().zip(&metrics).zip(&thresholds) {
            out[*i] = Some(History::from_metrics(start, end, m, *t));
        }
    }
    for (i, t) in targets.iter().enumerate() {
        let Some(blue) = t.record.as_ref().and_then(|r| r.target.blue.distribution_id.clone()) else { continue };
        let found = ports.distribution_metrics(std::slice::from_ref(&blue), start, end).await?;
        let Some(d) = found.first() else { continue };
        let as_metrics = |minutes| VersionMetrics { minutes, p99_duration_ms: None };
        let mut h = History::from_metrics(start, end, &as_metrics(d.minutes_5xx()), None);
        let four = as_metrics(d.minutes_4xx()).totals();
        h.client_errors = Some(BaselineRate { invocations: four.invocations, events: four.errors });
        out[i] = Some(h);
    }
    Ok(out)
}
