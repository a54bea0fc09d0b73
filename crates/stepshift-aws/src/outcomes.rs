//! [`OutcomeSource`] and [`OutcomeSink`] on CloudWatch: the fast path's outcome counts,
//! high-resolution custom metrics in [`NAMESPACE`] at [`BUCKET_SECONDS`]-second periods.
//!
//! Reading asks for the Sum of every [`OutcomeMetric`] of every series (three queries a
//! series, ids `m{series}_{metric}`), in as many GetMetricData calls as 500 queries a
//! call need. Publishing sends one datum per series, bucket and metric, with
//! `StorageResolution` 1 and unit Count, at most 1000 datums per PutMetricData call.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDatum, StandardUnit};
use stepshift_core::Timestamp;
use stepshift_core::outcomes::{
    BUCKET_SECONDS, BucketCounts, NAMESPACE, OutcomeMetric, OutcomeSeries, OutcomeSink, OutcomeSource, bucket_of,
};
use stepshift_core::ports::PortResult;

use crate::AwsPorts;
use crate::cloudwatch::{err, from_smithy, metric_data, parse_id, query, to_smithy};

/// GetMetricData accepts at most 500 queries a call.
const MAX_QUERIES_PER_CALL: usize = 500;

/// The series one GetMetricData call can cover.
pub const MAX_SERIES_PER_CALL: usize = MAX_QUERIES_PER_CALL / OutcomeMetric::ALL.len();

/// PutMetricData accepts at most 1000 datums a call.
pub const MAX_DATUMS_PER_CALL: usize = 1000;

fn dimensions(series: &OutcomeSeries) -> Vec<Dimension> {
    series.dimensions().into_iter().map(|(name, value)| Dimension::builder().name(name).value(value).build()).collect()
}

fn metric_of(series: &OutcomeSeries, metric: OutcomeMetric) -> Metric {
    Metric::builder().namespace(NAMESPACE).metric_name(metric.name()).set_dimensions(Some(dimensions(series))).build()
}

fn metric_named(name: &str) -> Option<OutcomeMetric> {
    OutcomeMetric::ALL.into_iter().find(|m| m.name() == name)
}

/// The GetMetricData calls for `series`: the queries of each call, the ids numbering
/// the series across all calls.
fn outcome_queries(series: &[OutcomeSeries]) -> Vec<Vec<aws_sdk_cloudwatch::types::MetricDataQuery>> {
    let period = BUCKET_SECONDS as i32;
    series
        .iter()
        .enumerate()
        .collect::<Vec<_>>()
        .chunks(MAX_SERIES_PER_CALL)
        .map(|chunk| {
            chunk
                .iter()
                .flat_map(|(i, s)| {
                    OutcomeMetric::ALL
                        .into_iter()
                        .map(move |m| query(format!("m{i}_{}", m.name()), metric_of(s, m), period, "Sum"))
                })
                .collect()
        })
        .collect()
}

/// The datums of `counts`, in order: per series and bucket, one per metric.
fn datums(counts: &[(OutcomeSeries, BucketCounts)]) -> Vec<MetricDatum> {
    let mut out = Vec::with_capacity(counts.len() * OutcomeMetric::ALL.len());
    for (series, bucket) in counts {
        let dims = dimensions(series);
        for metric in OutcomeMetric::ALL {
            out.push(
                MetricDatum::builder()
                    .metric_name(metric.name())
                    .set_dimensions(Some(dims.clone()))
                    .timestamp(to_smithy(bucket.start))
                    .value(bucket.get(metric) as f64)
                    .unit(StandardUnit::Count)
                    .storage_resolution(1)
                    .build(),
            );
        }
    }
    out
}

impl OutcomeSource for AwsPorts {
    async fn outcomes(
        &self,
        series: &[OutcomeSeries],
        start: Timestamp,
        end: Timestamp,
    ) -> PortResult<Vec<Vec<BucketCounts>>> {
        let mut buckets: Vec<BTreeMap<i64, BucketCounts>> = vec![BTreeMap::new(); series.len()];
        for queries in outcome_queries(series) {
            for result in metric_data(&self.cloudwatch, queries, start, end).await? {
                let Some((index, name)) = result.id().and_then(parse_id) else { continue };
                let (Some(slot), Some(metric)) = (buckets.get_mut(index), metric_named(name)) else { continue };
                for (t, v) in result.timestamps().iter().zip(result.values()) {
                    let at = bucket_of(from_smithy(t));
                    // CloudWatch rounds a StartTime that is not on a minute down to the
                    // minute; the contract is [start, end).
                    if at < start || at >= end {
                        continue;
                    }
                    let b = slot.entry(at.millis()).or_insert(BucketCounts { start: at, ..Default::default() });
                    let n = v.max(0.0).round() as u64;
                    match metric {
                        OutcomeMetric::Invocations => b.invocations += n,
                        OutcomeMetric::Failures => b.failures += n,
                        OutcomeMetric::Slow => b.slow += n,
                    }
                }
            }
        }
        Ok(buckets.into_iter().map(|b| b.into_values().collect()).collect())
    }
}

impl OutcomeSink for AwsPorts {
    async fn publish(&self, counts: &[(OutcomeSeries, BucketCounts)]) -> PortResult<()> {
        let data = datums(counts);
        for chunk in data.chunks(MAX_DATUMS_PER_CALL) {
            self.cloudwatch
                .put_metric_data()
                .namespace(NAMESPACE)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use stepshift_core::outcomes::Source;

    use super::*;

    fn series(i: usize) -> OutcomeSeries {
        OutcomeSeries { function: format!("fn{i}"), alias: "live".into(), version: "42".into(), source: Source::Logs }
    }

    #[test]
    fn queries_are_split_at_500_and_ids_number_series_across_calls() {
        let all: Vec<_> = (0..170).map(series).collect();
        let calls = outcome_queries(&all);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [498, 12]);
        assert_eq!(calls[1][0].id(), Some("m166_Invocations"));
        assert_eq!(calls[1][11].id(), Some("m169_Slow"));
        assert_eq!(parse_id("m166_Failures"), Some((166, "Failures")));
        assert!(outcome_queries(&[]).is_empty());
    }

    #[test]
    fn one_datum_per_metric_at_the_bucket_start() {
        let b = BucketCounts { start: Timestamp::from_secs(1_800_000_010), invocations: 5, failures: 2, slow: 1 };
        let d = datums(&[(series(0), b)]);
        let got: Vec<_> = d.iter().map(|d| (d.metric_name().unwrap(), d.value().unwrap())).collect();
        assert_eq!(got, [("Invocations", 5.0), ("Failures", 2.0), ("Slow", 1.0)]);
        assert!(d.iter().all(|d| d.storage_resolution() == Some(1) && d.unit() == Some(&StandardUnit::Count)));
        assert_eq!(d[0].timestamp().unwrap().secs(), 1_800_000_010);
    }
}
