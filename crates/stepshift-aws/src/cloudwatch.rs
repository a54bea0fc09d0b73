//! [`MetricsSource`] and [`AlarmSource`] on CloudWatch.
//!
//! One GetMetricData call per check covers every target and both versions: Invocations,
//! Errors and Throttles as 1-minute sums, Duration's 1-minute SampleCount and the
//! invocations slower than the query's thresholds (`TC(x:)`, CloudWatch's trimmed count,
//! which counts values above `x`), and Duration p99 over the whole window, with the
//! dimensions FunctionName, Resource (`function:alias`) and ExecutedVersion.
//!
//! The same request reads each query's custom metrics ([`MetricQuery::custom`]): the
//! user's own metric, by its namespace, name and dimensions as given, in 1-minute periods
//! with the series' statistic, one query (`m{i}_c{j}`) per series. A request holds at most
//! [`MAX_METRIC_QUERIES`] queries ([`MetricQuery::cost`] summed); more are refused.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricDataResult, MetricStat, ScanBy, StateValue,
};
use stepshift_core::ports::{
    AlarmSource, AlarmStatus, AlarmValue, CustomSeries, MAX_METRIC_QUERIES, MetricQuery, MetricSeriesKey,
    MetricsSource, MinuteCounts, PortResult, VersionMetrics,
};
use stepshift_core::routers::route53::health::{self, DistributionMetrics, DistributionMetricsSource};
use stepshift_core::{PortError, Service, Timestamp};

use crate::{AwsPorts, classify};

pub(crate) fn to_smithy(t: Timestamp) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.millis())
}

pub(crate) fn from_smithy(t: &aws_smithy_types::DateTime) -> Timestamp {
    Timestamp::from_millis(t.to_millis().unwrap_or(0))
}

pub(crate) fn err<E>(
    e: aws_sdk_cloudwatch::error::SdkError<E, aws_sdk_cloudwatch::config::http::HttpResponse>,
) -> PortError
where
    E: aws_sdk_cloudwatch::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(Service::CloudWatch, e)
}

/// The queries of one key, in id order: sums of Invocations, Errors, Throttles, then
/// Duration's sample count, its p99, and the trimmed counts above the thresholds.
const SUMS: [(&str, &str); 3] = [("inv", "Invocations"), ("err", "Errors"), ("thr", "Throttles")];

/// CloudWatch's trimmed count of the values above `ms`: `TC(ms:)`.
pub fn above(ms: f64) -> String {
    // Up to 10 decimals are accepted; three keep microseconds and stay readable.
    let text = format!("{ms:.3}");
    format!("TC({}:)", text.trim_end_matches('0').trim_end_matches('.'))
}

fn metric(key: &MetricSeriesKey, name: &str) -> Metric {
    let dim = |n: &str, v: String| Dimension::builder().name(n).value(v).build();
    Metric::builder()
        .namespace("AWS/Lambda")
        .metric_name(name)
        .dimensions(dim("FunctionName", key.function.clone()))
        .dimensions(dim("Resource", format!("{}:{}", key.function, key.alias)))
        .dimensions(dim("ExecutedVersion", key.version.clone()))
        .build()
}

/// A custom series' metric: its namespace, name and dimensions exactly as given.
fn custom_metric(series: &CustomSeries) -> Metric {
    let mut metric = Metric::builder().namespace(&series.namespace).metric_name(&series.metric);
    for (name, value) in &series.dimensions {
        metric = metric.dimensions(Dimension::builder().name(name).value(value).build());
    }
    metric.build()
}

pub(crate) fn query(id: String, metric: Metric, period: i32, stat: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(MetricStat::builder().metric(metric).period(period).stat(stat).build())
        .return_data(true)
        .build()
}

/// The queries for `wanted` over a window of `window_secs`: per query, the built-in ones
/// (`m{i}_inv` … `m{i}_over`), then one per custom series (`m{i}_c{j}`).
pub fn queries(wanted: &[MetricQuery], window_secs: i64) -> Vec<MetricDataQuery> {
    // p99 over the whole window in one datapoint: the period must be a multiple of 60.
    let whole = i32::try_from(((window_secs.max(60) + 59) / 60) * 60).unwrap_or(i32::MAX);
    let mut out = Vec::with_capacity(wanted.iter().map(MetricQuery::cost).sum());
    for (i, q) in wanted.iter().enumerate() {
        let key = &q.series;
        for (suffix, name) in SUMS {
            out.push(query(format!("m{i}_{suffix}"), metric(key, name), 60, "Sum"));
        }
        out.push(query(format!("m{i}_dur"), metric(key, "Duration"), 60, "SampleCount"));
        out.push(query(format!("m{i}_p99"), metric(key, "Duration"), whole, "p99"));
        if let Some(ms) = q.slow_above_ms {
            out.push(query(format!("m{i}_slow"), metric(key, "Duration"), 60, &above(ms)));
        }
        if let Some(ms) = q.limit_ms {
            out.push(query(format!("m{i}_over"), metric(key, "Duration"), 60, &above(ms)));
        }
        for (j, series) in q.custom.iter().enumerate() {
            out.push(query(format!("m{i}_c{j}"), custom_metric(series), 60, &series.stat));
        }
    }
    out
}

/// Which custom series a query kind `c{j}` reads.
fn custom_index(kind: &str) -> Option<usize> {
    kind.strip_prefix('c')?.parse().ok()
}

impl MetricsSource for AwsPorts {
    async fn fetch(&self, keys: &[MetricQuery], start: Timestamp, end: Timestamp) -> PortResult<Vec<VersionMetrics>> {
        let cost: usize = keys.iter().map(MetricQuery::cost).sum();
        if cost > MAX_METRIC_QUERIES {
            return Err(PortError::Invalid {
                service: Service::CloudWatch,
                message: format!(
                    "{cost} queries asked for ({} series and their custom metrics); at most \
                     {MAX_METRIC_QUERIES} fit one GetMetricData call",
                    keys.len()
                ),
            });
        }
        let results = metric_data(&self.cloudwatch, queries(keys, end.secs_since(start)), start, end).await?;
        // Per key: minute start → counts, the largest p99 datapoint, and per custom series
        // minute start → value (one per minute: a repeated minute keeps the last value).
        let mut minutes: Vec<BTreeMap<i64, MinuteCounts>> = vec![BTreeMap::new(); keys.len()];
        let mut p99: Vec<Option<f64>> = vec![None; keys.len()];
        let mut custom: Vec<Vec<BTreeMap<i64, (Timestamp, f64)>>> =
            keys.iter().map(|k| vec![BTreeMap::new(); k.custom.len()]).collect();
        for result in &results {
            let Some((index, kind)) = result.id().and_then(parse_id) else {
                continue;
            };
            let Some(slot) = minutes.get_mut(index) else {
                continue;
            };
            let points = result.timestamps().iter().zip(result.values());
            if let Some(j) = custom_index(kind) {
                let Some(series) = custom[index].get_mut(j) else { continue };
                for (t, v) in points {
                    let start = from_smithy(t).floor_minute();
                    series.insert(start.millis(), (start, *v));
                }
                continue;
            }
            if kind == "p99" {
                for (_, v) in points {
                    p99[index] = Some(p99[index].map_or(*v, |p: f64| p.max(*v)));
                }
                continue;
            }
            let field: fn(&mut MinuteCounts) -> &mut u64 = match kind {
                "inv" => |m| &mut m.invocations,
                "err" => |m| &mut m.errors,
                "thr" => |m| &mut m.throttles,
                "dur" => |m| &mut m.durations,
                "slow" => |m| &mut m.slow,
                "over" => |m| &mut m.over_limit,
                _ => continue,
            };
            for (t, v) in points {
                let start = from_smithy(t).floor_minute();
                let m = slot.entry(start.millis()).or_insert(MinuteCounts { start, ..Default::default() });
                // Trimmed counts are interpolated and may be fractional.
                *field(m) += v.max(0.0).round() as u64;
            }
        }
        Ok(minutes
            .into_iter()
            .zip(p99)
            .zip(custom)
            .map(|((m, p99_duration_ms), custom)| VersionMetrics {
                minutes: m.into_values().collect(),
                p99_duration_ms,
                custom: custom.into_iter().map(|c| c.into_values().collect()).collect(),
            })
            .collect())
    }
}

impl DistributionMetricsSource for AwsPorts {
    /// One GetMetricData call (three queries a distribution) in us-east-1.
    async fn distribution_metrics(
        &self,
        distribution_ids: &[String],
        start: Timestamp,
        end: Timestamp,
    ) -> PortResult<Vec<DistributionMetrics>> {
        let per = health::metrics();
        if distribution_ids.len() * per.len() > 500 {
            return Err(PortError::Invalid {
                service: Service::CloudWatch,
                message: format!("{} distributions asked for; at most 166 fit one call", distribution_ids.len()),
            });
        }
        let mut queries = Vec::new();
        for (i, id) in distribution_ids.iter().enumerate() {
            for (name, stat) in &per {
                let mut metric = Metric::builder().namespace(health::NAMESPACE).metric_name(*name);
                for (n, v) in health::dimensions(id) {
                    metric = metric.dimensions(Dimension::builder().name(n).value(v).build());
                }
                queries.push(query(format!("m{i}_{name}"), metric.build(), 60, stat));
            }
        }
        // CloudFront's metrics are in us-east-1 whatever the stack's region. The client is
        // derived when needed, so no function pays for it at init; it shares the HTTP
        // client, and with it the connection pool, of the configured one.
        let config =
            self.cloudwatch.config().to_builder().region(aws_config::Region::from_static(health::METRICS_REGION));
        let client = aws_sdk_cloudwatch::Client::from_conf(config.build());
        let mut out = vec![DistributionMetrics::default(); distribution_ids.len()];
        for result in metric_data(&client, queries, start, end).await? {
            let Some((i, name)) = result.id().and_then(parse_id) else { continue };
            let Some(d) = out.get_mut(i) else { continue };
            let series = match name {
                "Requests" => &mut d.requests,
                "5xxErrorRate" => &mut d.error_rate_5xx,
                _ => &mut d.error_rate_4xx,
            };
            series.extend(
                result.timestamps().iter().zip(result.values()).map(|(t, v)| (from_smithy(t).floor_minute(), *v)),
            );
        }
        Ok(out)
    }
}

/// Every result of one GetMetricData request over all its pages, oldest datapoints first.
pub(crate) async fn metric_data(
    client: &aws_sdk_cloudwatch::Client,
    queries: Vec<MetricDataQuery>,
    start: Timestamp,
    end: Timestamp,
) -> PortResult<Vec<MetricDataResult>> {
    let mut pages = client
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(to_smithy(start))
        .end_time(to_smithy(end))
        .scan_by(ScanBy::TimestampAscending)
        .into_paginator()
        .send();
    let mut results = Vec::new();
    while let Some(page) = pages.next().await {
        results.extend(page.map_err(err)?.metric_data_results().iter().cloned());
    }
    Ok(results)
}

/// A query id `m{index}_{kind}`: which key (or distribution) and which series.
pub(crate) fn parse_id(id: &str) -> Option<(usize, &str)> {
    let (index, kind) = id.strip_prefix('m')?.split_once('_')?;
    Some((index.parse().ok()?, kind))
}

impl AlarmSource for AwsPorts {
    async fn alarm_states(&self, names: &[String]) -> PortResult<Vec<AlarmStatus>> {
        let mut found: BTreeMap<String, (AlarmValue, Option<String>)> = BTreeMap::new();
        // DescribeAlarms takes at most 100 names a call.
        for chunk in names.chunks(100) {
            let mut pages = self
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(err)?;
                let metric = page.metric_alarms().iter().map(|a| (a.alarm_name(), a.state_value(), a.state_reason()));
                let composite =
                    page.composite_alarms().iter().map(|a| (a.alarm_name(), a.state_value(), a.state_reason()));
                for (name, state, reason) in metric.chain(composite) {
                    if let (Some(name), Some(state)) = (name, state) {
                        found.insert(name.to_owned(), (alarm_value(state), reason.map(str::to_owned)));
                    }
                }
            }
        }
        Ok(names
            .iter()
            .map(|n| {
                let hit = found.get(n);
                AlarmStatus { name: n.clone(), state: hit.map(|h| h.0), reason: hit.and_then(|h| h.1.clone()) }
            })
            .collect())
    }
}

fn alarm_value(state: &StateValue) -> AlarmValue {
    match state {
        StateValue::Alarm => AlarmValue::Alarm,
        StateValue::Ok => AlarmValue::Ok,
        _ => AlarmValue::InsufficientData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: &str) -> MetricSeriesKey {
        MetricSeriesKey { function: "orders".into(), alias: "live".into(), version: version.into() }
    }

    #[test]
    fn queries_per_key_with_the_per_version_dimensions() {
        let slow = MetricQuery { slow_above_ms: Some(181.25), limit_ms: Some(800.0), ..MetricQuery::sums(key("42")) };
        let q = queries(&[slow, MetricQuery::sums(key("41"))], 330);
        assert_eq!(q.len(), 12);
        let ids: Vec<&str> = q.iter().filter_map(|q| q.id()).collect();
        assert_eq!(
            ids,
            [
                "m0_inv", "m0_err", "m0_thr", "m0_dur", "m0_p99", "m0_slow", "m0_over", "m1_inv", "m1_err", "m1_thr",
                "m1_dur", "m1_p99"
            ]
        );
        let stats: Vec<(&str, Option<i32>)> =
            q[3..7].iter().map(|q| q.metric_stat().unwrap()).map(|s| (s.stat().unwrap(), s.period())).collect();
        assert_eq!(
            stats,
            [("SampleCount", Some(60)), ("p99", Some(360)), ("TC(181.25:)", Some(60)), ("TC(800:)", Some(60))]
        );
        let stat = q[4].metric_stat().unwrap();
        assert_eq!(
            (stat.period(), stat.stat()),
            (Some(360), Some("p99")),
            "p99 spans the window, rounded up to minutes"
        );
        let dims: Vec<(&str, &str)> =
            stat.metric().unwrap().dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
        assert_eq!(dims, [("FunctionName", "orders"), ("Resource", "orders:live"), ("ExecutedVersion", "42")]);
        assert_eq!(q[0].metric_stat().unwrap().period(), Some(60));
    }

    #[test]
    fn custom_series_follow_the_built_in_queries_of_their_key() {
        let series = |metric: &str, stat: &str| CustomSeries {
            namespace: "orders".into(),
            metric: metric.into(),
            dimensions: vec![("Service".into(), "orders".into()), ("Version".into(), "42".into())],
            stat: stat.into(),
        };
        let first = MetricQuery { custom: vec![series("Http5xx", "Sum")], ..MetricQuery::sums(key("42")) };
        let second = MetricQuery { custom: vec![series("Latency", "p99")], ..MetricQuery::sums(key("41")) };
        let q = queries(&[first, second], 300);
        let ids: Vec<&str> = q.iter().filter_map(|q| q.id()).collect();
        assert_eq!(
            ids,
            [
                "m0_inv", "m0_err", "m0_thr", "m0_dur", "m0_p99", "m0_c0", "m1_inv", "m1_err", "m1_thr", "m1_dur",
                "m1_p99", "m1_c0"
            ]
        );
        let stat = q[11].metric_stat().unwrap();
        let metric = stat.metric().unwrap();
        assert_eq!((stat.period(), stat.stat()), (Some(60), Some("p99")));
        assert_eq!((metric.namespace(), metric.metric_name()), (Some("orders"), Some("Latency")));
        let dims: Vec<(&str, &str)> =
            metric.dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
        assert_eq!(dims, [("Service", "orders"), ("Version", "42")]);
        assert_eq!(q[5].return_data(), Some(true));
        assert_eq!(parse_id("m1_c0").and_then(|(i, kind)| Some((i, custom_index(kind)?))), Some((1, 0)));
        assert_eq!(custom_index("c12"), Some(12));
        assert_eq!(custom_index("inv"), None);
    }

    #[test]
    fn trimmed_counts_name_their_threshold_exactly() {
        assert_eq!(above(180.0), "TC(180:)");
        assert_eq!(above(0.5), "TC(0.5:)");
        assert_eq!(above(1234.56789), "TC(1234.568:)");
    }

    #[test]
    fn ids_parse_back() {
        assert_eq!(parse_id("m12_err"), Some((12, "err")));
        assert_eq!(parse_id("x1_err"), None);
    }
}
