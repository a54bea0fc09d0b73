//! Outcomes into per-version counts in [`BUCKET_SECONDS`]-second buckets, the shape
//! `tally` publishes in one [`OutcomeSink::publish`](stepshift_core::outcomes::OutcomeSink)
//! call per input (the adapter packs them into as few PutMetricData requests as the API
//! allows), never one call per invocation.

use std::collections::BTreeMap;

use serde::Serialize;
use stepshift_core::Timestamp;
use stepshift_core::outcomes::{BUCKET_SECONDS, BucketCounts, OutcomeSeries, Source, bucket_of};

/// One finished invocation, as a log batch or a destination event tells it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// Lambda's request id.
    pub request_id: String,
    /// The version that ran it.
    pub version: String,
    /// When it finished: its REPORT line's time, or the destination event's.
    pub at: Timestamp,
    /// Whether it failed: a function error, a crash, a timeout, out of memory.
    pub failed: bool,
    /// How long it ran, when known (destination events carry no duration).
    pub duration_ms: Option<f64>,
}

/// What a set of counts adds up to, for the invocation's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Invocations counted.
    pub invocations: u64,
    /// Failed ones among them.
    pub failures: u64,
    /// Slow ones among them.
    pub slow: u64,
}

impl Totals {
    /// The totals of `counts`.
    pub fn of(counts: &[(OutcomeSeries, BucketCounts)]) -> Self {
        counts.iter().fold(Self::default(), |t, (_, c)| Self {
            invocations: t.invocations + c.invocations,
            failures: t.failures + c.failures,
            slow: t.slow + c.slow,
        })
    }
}

/// Counts `outcomes` of `function:alias` from `source`, per version and bucket (the
/// bucket of each outcome's finish), oldest bucket first within a version. An outcome is
/// slow when it ran longer than `slow_above_ms` (strictly, as CloudWatch's `TC(x:)`).
pub fn aggregate(
    function: &str,
    alias: &str,
    source: Source,
    slow_above_ms: Option<u64>,
    outcomes: &[Outcome],
) -> Vec<(OutcomeSeries, BucketCounts)> {
    debug_assert_eq!(BUCKET_SECONDS, 10);
    let mut buckets: BTreeMap<(&str, i64), BucketCounts> = BTreeMap::new();
    for o in outcomes {
        let start = bucket_of(o.at);
        let c =
            buckets.entry((o.version.as_str(), start.millis())).or_insert(BucketCounts { start, ..Default::default() });
        c.invocations += 1;
        c.failures += u64::from(o.failed);
        let slow = matches!((slow_above_ms, o.duration_ms), (Some(limit), Some(d)) if d > limit as f64);
        c.slow += u64::from(slow);
    }
    buckets
        .into_iter()
        .map(|((version, _), counts)| {
            let series = OutcomeSeries {
                function: function.to_owned(),
                alias: alias.to_owned(),
                version: version.to_owned(),
                source,
            };
            (series, counts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_550_400_000; // 2026-11-24T20:00:00Z

    fn outcome(version: &str, at_ms: i64, failed: bool, duration_ms: Option<f64>) -> Outcome {
        Outcome {
            request_id: format!("r{at_ms}"),
            version: version.into(),
            at: Timestamp::from_millis(T0 + at_ms),
            failed,
            duration_ms,
        }
    }

    #[test]
    fn buckets_start_at_ten_second_edges_and_an_edge_opens_the_next_bucket() {
        let outcomes = [
            outcome("42", 0, false, Some(10.0)),
            outcome("42", 9_999, true, Some(10.0)),
            outcome("42", 10_000, false, Some(10.0)),
            outcome("41", 5_000, false, Some(10.0)),
            outcome("42", -1, true, Some(10.0)),
        ];
        let counts = aggregate("orders", "live", Source::Logs, None, &outcomes);
        let got: Vec<_> = counts
            .iter()
            .map(|(s, c)| (s.version.as_str(), c.start.millis() - T0, c.invocations, c.failures, c.slow))
            .collect();
        assert_eq!(got, [("41", 0, 1, 0, 0), ("42", -10_000, 1, 1, 0), ("42", 0, 2, 1, 0), ("42", 10_000, 1, 0, 0)]);
        let s = &counts[0].0;
        assert_eq!((s.function.as_str(), s.alias.as_str(), s.source), ("orders", "live", Source::Logs));
        assert_eq!(Totals::of(&counts), Totals { invocations: 5, failures: 2, slow: 0 });
    }

    #[test]
    fn slow_means_strictly_above_the_threshold_and_needs_a_duration() {
        let outcomes = [
            outcome("42", 0, false, Some(250.0)),
            outcome("42", 1, false, Some(250.01)),
            outcome("42", 2, true, Some(3000.0)),
            outcome("42", 3, false, None),
        ];
        let counts = aggregate("orders", "live", Source::Logs, Some(250), &outcomes);
        assert_eq!(counts.len(), 1);
        assert_eq!((counts[0].1.invocations, counts[0].1.failures, counts[0].1.slow), (4, 1, 2));
        let none = aggregate("orders", "live", Source::Destinations, None, &outcomes);
        assert_eq!(none[0].1.slow, 0);
        assert_eq!(none[0].0.source, Source::Destinations);
    }
}
