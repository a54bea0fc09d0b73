//! The stable version's own history: "Begin deployment" reads it through the alias
//! before the first shift, and keeps this compact summary in the plan. Once the
//! candidate has all traffic (the lock-in, or any 100% step), it is the baseline the
//! candidate is compared with ([`crate::compare`]).
//!
//! Each router reads it its own way ([`crate::routers::Observes::history`]): for a
//! Lambda alias, the stable version's per-minute Invocations, Errors and Throttles over
//! `health.baseline.history_seconds`, its Duration p99 over the same hour, and the
//! invocations slower than that p99, so slow invocations are counted the same way
//! before and during the deployment; for a Route53 record, blue's CloudFront minutes
//! (requests, 5xx and 4xx); a Web Function endpoint has none per revision.

use serde::{Deserialize, Serialize};

use crate::compare::BaselineRate;
use crate::deployment::PlannedTarget;
use crate::error::PortError;
use crate::ports::VersionMetrics;
use crate::request::HealthSettings;
use crate::routers::{self, ObservePorts};
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
    /// Each custom rule's history (`health.metrics`), in rule order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<crate::custom::CustomHistory>,
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
            custom: Vec::new(),
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

/// Reads the history of every target, in order, through its router
/// ([`crate::routers::Observes::history`]); `None` for every target when the request
/// asks for none.
pub async fn read<P: ObservePorts>(
    ports: &P,
    targets: &[PlannedTarget],
    health: &HealthSettings,
    started_at: Timestamp,
) -> Result<Vec<Option<History>>, PortError> {
    if health.baseline.history_seconds == 0 {
        return Ok(vec![None; targets.len()]);
    }
    let (start, end) = window(health, started_at);
    routers::history(ports, targets, &health.metrics, start, end).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Call, MemoryAws};
    use crate::ports::{MetricSeriesKey, MinuteCounts};

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000).floor_minute().plus_secs(60 * minute)
    }

    fn target() -> PlannedTarget {
        let route = crate::routers::Route::Alias(crate::routers::alias::AliasRoute {
            function: "orders".into(),
            alias: "live".into(),
        });
        PlannedTarget::new(route, "41", "42")
    }

    fn key() -> MetricSeriesKey {
        MetricSeriesKey { function: "orders".into(), alias: "live".into(), version: "41".into() }
    }

    #[tokio::test]
    async fn the_hour_before_the_start_with_its_p99_as_the_slow_threshold() {
        let aws = MemoryAws::new(at(0));
        // 60 minutes before the start, and 5 after it that must not count.
        let minutes = (-60..5)
            .map(|i| MinuteCounts { start: at(i), invocations: 100, errors: 1, ..Default::default() })
            .collect();
        aws.put_metrics(key(), VersionMetrics { minutes, p99_duration_ms: None, custom: Vec::new() });
        for i in -60..5 {
            aws.put_durations(key(), at(i), &[(40.0, 97), (180.0, 2), (900.0, 1)]);
        }
        let got = read(&aws, &[target()], &HealthSettings::default(), at(0).plus_secs(30)).await.unwrap();
        let h = got[0].clone().unwrap();
        assert_eq!((h.start, h.end, h.minutes), (at(-60), at(0), 60));
        assert_eq!(h.errors, BaselineRate { invocations: 6000, events: 60 });
        // The 99th of every 100 is 180 ms: the slow ones are those above it.
        assert_eq!(h.slow_above_ms, Some(180.0));
        assert_eq!(h.slow, Some(BaselineRate { invocations: 6000, events: 60 }));
        assert_eq!(aws.calls()[&Call::GetMetricData], 2, "the p99 first, then the count above it");
        assert!(h.usable());
    }

    #[tokio::test]
    async fn none_asked_for_reads_nothing() {
        let aws = MemoryAws::new(at(0));
        let mut health = HealthSettings::default();
        health.baseline.history_seconds = 0;
        assert_eq!(read(&aws, &[target()], &health, at(0)).await.unwrap(), vec![None]);
        assert_eq!(aws.calls().get(&Call::GetMetricData), None);
    }

    #[tokio::test]
    async fn a_function_without_traffic_has_an_unusable_history() {
        let aws = MemoryAws::new(at(0));
        let got = read(&aws, &[target()], &HealthSettings::default(), at(0)).await.unwrap();
        let h = got[0].clone().unwrap();
        assert_eq!((h.errors.invocations, h.slow_above_ms, h.slow), (0, None, None));
        assert!(!h.usable());
        assert_eq!(aws.calls()[&Call::GetMetricData], 1, "no p99, so no second call");
    }
}
