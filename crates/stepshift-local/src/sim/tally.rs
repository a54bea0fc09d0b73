//! The simulated fast path: what the `tally` Lambda would publish for a function whose
//! log group carries a stepshift subscription filter, 10-second buckets of the same
//! invocations the minute metrics count, each bucket arriving after a delivery delay
//! (CloudWatch Logs' batching, tally's invocation and PutMetricData). One draw per
//! function and bucket: a subscription delivers a log group's lines in batches, so both
//! versions' lines of the same seconds travel together.
//!
//! It splits each slice of simulated traffic over the 10-second buckets it covers with
//! a random generator of its own, so that turning the fast path on does not change a
//! single draw of the minute metrics: the CloudWatch-only judge and the judge with the
//! fast path see the same invocations in the same seed.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Hypergeometric};
use stepshift_core::outcomes::{
    BUCKET_SECONDS, BucketCounts, FilterName, LogSubscriptions, OutcomeSeries, OutcomeSink, OutcomeSource, Source,
    bucket_of,
};
use stepshift_core::ports::PortResult;
use stepshift_core::{Clock, Timestamp};

use super::latency::LogNormal;
use super::{Published, SimAws, binomial};

/// One version's bucket as tally would publish it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TallyBucket {
    counts: BucketCounts,
    visible_at: Timestamp,
}

/// What the simulated tally needs to count one stream's slice.
pub(super) struct Feed<'a> {
    /// Delivery delay range, seconds.
    pub delay: (u64, u64),
    /// The filter's slow threshold, if it has one.
    pub slow_above_ms: Option<u64>,
    /// Tally's own random generator.
    pub rng: &'a mut ChaCha8Rng,
}

impl Feed<'_> {
    /// Splits `invoked` invocations with `errors` failures of `version`, served over
    /// `[t, end)` with latencies from `latency`, over the 10-second buckets of that
    /// span, into `buckets`.
    #[allow(clippy::too_many_arguments)]
    pub fn count(
        &mut self,
        buckets: &mut BTreeMap<(String, i64), TallyBucket>,
        arrivals: &mut BTreeMap<i64, Timestamp>,
        version: &str,
        t: Timestamp,
        end: Timestamp,
        invoked: u64,
        errors: u64,
        latency: LogNormal,
    ) {
        let (mut left_n, mut left_e) = (invoked, errors);
        let mut u = t;
        while u < end && left_n > 0 {
            let bucket = bucket_of(u);
            let sub_end = end.min(bucket.plus_secs(BUCKET_SECONDS));
            let share = (sub_end.millis() - u.millis()) as f64 / (end.millis() - u.millis()) as f64;
            let n = if sub_end == end { left_n } else { binomial(left_n, share, self.rng) };
            let e = hypergeometric(left_n, left_e, n, self.rng);
            left_n -= n;
            left_e -= e;
            let slow = self.slow_above_ms.map_or(0, |ms| binomial(n, latency.share_above(ms as f64), self.rng));
            let (delay, rng) = (self.delay, &mut *self.rng);
            let visible_at = *arrivals.entry(bucket.millis()).or_insert_with(|| {
                let delay = rng.random_range(delay.0..=delay.1);
                bucket.plus_secs(BUCKET_SECONDS + i64::try_from(delay).unwrap_or(0))
            });
            let b = buckets.entry((version.to_owned(), bucket.millis())).or_insert_with(|| TallyBucket {
                counts: BucketCounts { start: bucket, ..BucketCounts::default() },
                visible_at,
            });
            b.counts.invocations += n;
            b.counts.failures += e;
            b.counts.slow += slow;
            u = sub_end;
        }
    }
}

/// Failures among `n` invocations drawn from `total` of which `failed` failed.
fn hypergeometric(total: u64, failed: u64, n: u64, rng: &mut ChaCha8Rng) -> u64 {
    if n == 0 || failed == 0 {
        0
    } else if n >= total {
        failed
    } else {
        Hypergeometric::new(total, failed, n).map(|d| d.sample(rng)).unwrap_or(0)
    }
}

impl SimAws {
    /// The stepshift filter on `function`'s log group, if there is one: the simulated
    /// tally counts only while it is subscribed, as the real one does.
    pub(super) fn subscription(&self, function: &str) -> Option<FilterName> {
        let group = format!("/aws/lambda/{function}");
        self.aws.subscription_filters(&group).iter().find_map(|f| FilterName::parse(f))
    }
}

impl OutcomeSource for SimAws {
    async fn outcomes(
        &self,
        series: &[OutcomeSeries],
        start: Timestamp,
        end: Timestamp,
    ) -> PortResult<Vec<Vec<BucketCounts>>> {
        // The call is counted (and faults injected) by the in-memory CloudWatch; the data
        // come from the traffic simulation.
        self.aws.outcomes(&[], start, end).await?;
        self.generate();
        let now = self.aws.now();
        let traffic = self.traffic();
        Ok(series
            .iter()
            .map(|k| {
                let lambda = Published::Lambda { function: k.function.clone(), alias: k.alias.clone() };
                let stream = traffic.streams.iter().find(|s| s.route.published() == lambda);
                let Some(s) = stream.filter(|_| k.source == Source::Logs) else { return Vec::new() };
                let range = (k.version.clone(), start.millis())..(k.version.clone(), end.millis());
                s.tally.range(range).filter(|(_, b)| b.visible_at <= now).map(|(_, b)| b.counts).collect()
            })
            .collect())
    }
}

impl OutcomeSink for SimAws {
    async fn publish(&self, counts: &[(OutcomeSeries, BucketCounts)]) -> PortResult<()> {
        self.aws.publish(counts).await
    }
}

impl LogSubscriptions for SimAws {
    async fn log_group_of(&self, function: &str) -> PortResult<String> {
        self.aws.log_group_of(function).await
    }

    async fn filters(&self, log_group: &str) -> PortResult<Vec<String>> {
        self.aws.filters(log_group).await
    }

    async fn put_filter(&self, log_group: &str, name: &str, pattern: &str, destination_arn: &str) -> PortResult<()> {
        // Traffic before the filter was not counted.
        self.generate();
        self.aws.put_filter(log_group, name, pattern, destination_arn).await
    }

    async fn delete_filter(&self, log_group: &str, name: &str) -> PortResult<()> {
        self.generate();
        self.aws.delete_filter(log_group, name).await
    }
}
