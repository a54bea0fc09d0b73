//! Health of a front-end release: CloudFront's metrics of a distribution, as the
//! minutes the check compares green against blue with, by the same sequential test the
//! Lambda judge uses ([`crate::compare`]).
//!
//! CloudFront publishes per distribution, in `AWS/CloudFront` in us-east-1 with the
//! dimensions `DistributionId` and `Region=Global`, one-minute `Requests` (Sum) and
//! `5xxErrorRate` / `4xxErrorRate` (Average, in percent). A minute's 5xx count is its
//! requests times its rate, rounded: the test needs counts, and the rate is exactly
//! `errors / requests` over the minute.
//!
//! DNS moves clients, not requests: resolvers and browsers keep an answer for its TTL,
//! so green's share of requests lags its weight. Comparing the observed minutes of both
//! distributions, as the Lambda judge compares the observed split, does not depend on
//! the share being what the weights say.

use std::future::Future;

use crate::ports::{MinuteCounts, PortResult};
use crate::time::Timestamp;

/// One distribution's one-minute CloudFront datapoints, by minute start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DistributionMetrics {
    /// `Requests`, Sum.
    pub requests: Vec<(Timestamp, f64)>,
    /// `5xxErrorRate`, Average, in percent.
    pub error_rate_5xx: Vec<(Timestamp, f64)>,
    /// `4xxErrorRate`, Average, in percent.
    pub error_rate_4xx: Vec<(Timestamp, f64)>,
}

impl DistributionMetrics {
    /// The minutes with 5xx responses counted as errors.
    pub fn minutes_5xx(&self) -> Vec<MinuteCounts> {
        minutes(&self.requests, &self.error_rate_5xx)
    }

    /// The minutes with 4xx responses counted as errors.
    pub fn minutes_4xx(&self) -> Vec<MinuteCounts> {
        minutes(&self.requests, &self.error_rate_4xx)
    }
}

/// Reads CloudFront's metrics of distributions.
pub trait DistributionMetricsSource: Send + Sync {
    /// The metrics of each distribution over `[start, end)`, in the order asked.
    fn distribution_metrics(
        &self,
        distribution_ids: &[String],
        start: Timestamp,
        end: Timestamp,
    ) -> impl Future<Output = PortResult<Vec<DistributionMetrics>>> + Send;
}

/// CloudWatch's namespace for CloudFront.
pub const NAMESPACE: &str = "AWS/CloudFront";
/// CloudFront's metrics live in us-east-1, whatever the stack's region.
pub const METRICS_REGION: &str = "us-east-1";

/// One CloudWatch metric of one distribution: (metric name, statistic).
pub fn metrics() -> [(&'static str, &'static str); 3] {
    [("Requests", "Sum"), ("5xxErrorRate", "Average"), ("4xxErrorRate", "Average")]
}

/// The dimensions of a distribution's metrics.
pub fn dimensions(distribution_id: &str) -> [(&'static str, String); 2] {
    [("DistributionId", distribution_id.to_owned()), ("Region", "Global".to_owned())]
}

/// A distribution's minutes: requests and the rate of one error class, by minute.
/// Minutes with requests but no rate datapoint count no errors; minutes without
/// requests are dropped.
pub fn minutes(requests: &[(Timestamp, f64)], error_rate_percent: &[(Timestamp, f64)]) -> Vec<MinuteCounts> {
    requests
        .iter()
        .filter(|(_, n)| *n >= 1.0)
        .map(|(start, n)| {
            let rate = error_rate_percent.iter().find(|(t, _)| t == start).map_or(0.0, |(_, r)| *r);
            let invocations = n.round() as u64;
            let errors = ((n * rate / 100.0).round() as u64).min(invocations);
            MinuteCounts { start: *start, invocations, errors, ..MinuteCounts::default() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{MinutePair, TestSettings, compare};

    fn minute(i: i64) -> Timestamp {
        Timestamp::from_millis(1_795_000_000_000 + i * 60_000)
    }

    #[test]
    fn counts_come_from_requests_times_rate() {
        let requests = [(minute(0), 1000.0), (minute(1), 0.0), (minute(2), 400.0)];
        let rate = [(minute(0), 0.5), (minute(2), 2.25)];
        let m = minutes(&requests, &rate);
        assert_eq!(m.len(), 2, "a minute without requests is dropped");
        assert_eq!((m[0].invocations, m[0].errors), (1000, 5));
        assert_eq!((m[1].invocations, m[1].errors), (400, 9));
    }

    #[test]
    fn a_5xx_regression_on_green_is_caught_and_an_equal_rate_is_not() {
        // Ten minutes: blue serves 900 requests a minute at 1% 5xx; green serves 100.
        let blue_requests: Vec<_> = (0..10).map(|i| (minute(i), 900.0)).collect();
        let blue = minutes(&blue_requests, &(0..10).map(|i| (minute(i), 1.0)).collect::<Vec<_>>());
        let green_requests: Vec<_> = (0..10).map(|i| (minute(i), 100.0)).collect();
        let same = minutes(&green_requests, &(0..10).map(|i| (minute(i), 1.0)).collect::<Vec<_>>());
        let worse = minutes(&green_requests, &(0..10).map(|i| (minute(i), 10.0)).collect::<Vec<_>>());
        let test = |green: &[MinuteCounts]| {
            let pairs: Vec<MinutePair> = green
                .iter()
                .zip(&blue)
                .map(|(g, b)| MinutePair {
                    start: g.start,
                    candidate_n: g.invocations,
                    candidate_k: g.errors,
                    stable_n: b.invocations,
                    stable_k: b.errors,
                })
                .collect();
            let s = TestSettings {
                tolerance: 0.0,
                drift: 0.25,
                alpha: 0.01,
                origin: minute(0),
                planned_minutes: 10,
                lower_is_worse: false,
            };
            compare(&pairs, None, &s)
        };
        assert!(!test(&same).regressed());
        let c = test(&worse);
        assert!(c.regressed(), "{c:?}");
        assert_eq!((c.candidate_errors, c.stable_errors), (100, 90));
    }

    #[test]
    fn the_metrics_are_global_per_distribution() {
        assert_eq!(dimensions("E2QWRUHEXAMPLE")[1], ("Region", "Global".to_owned()));
        assert!(metrics().contains(&("5xxErrorRate", "Average")));
    }
}
