//! Custom metrics against ministack, a real AWS API emulator: a user's own CloudWatch
//! metrics, put with PutMetricData, come back from [`MetricsSource::fetch`] per version
//! and minute, in the same GetMetricData request as Lambda's own metrics.

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use stepshift_aws::AwsPorts;
use stepshift_core::ports::{CustomSeries, MetricQuery, MetricSeriesKey, MetricsSource};
use stepshift_core::{Clock, SystemClock, Timestamp};
use stepshift_testkit::Emulator;

mod common;

async fn config() -> SdkConfig {
    common::config(Emulator::shared_ministack()).await
}

/// A user's own metrics (namespace `orders`, dimensions Service and Version), read in the
/// same request as Lambda's: per version, per minute, with the series' statistic.
#[tokio::test]
async fn custom_metrics_come_back_per_version_and_minute() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let f = format!("custom-{}", std::process::id());
    let base = SystemClock.now().plus_secs(-600).floor_minute();
    let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
    let datum = |version: &str, metric: &str, at: Timestamp, value: f64| {
        MetricDatum::builder()
            .metric_name(metric)
            .dimensions(dim("Service", "orders"))
            .dimensions(dim("Version", version))
            .timestamp(aws_smithy_types::DateTime::from_millis(at.millis()))
            .value(value)
            .unit(StandardUnit::Count)
            .build()
    };
    let mut data = Vec::new();
    // Minutes 0..4; the window below ends before minute 3.
    let per_minute = [(0, 1.0, 100.0, 7.0), (1, 4.0, 120.0, 8.0), (2, 0.0, 90.0, 9.0), (3, 50.0, 500.0, 10.0)];
    for (minute, errors_42, requests_42, errors_41) in per_minute {
        let at = base.plus_secs(60 * minute + 10);
        data.push(datum("42", "Http5xx", at, errors_42));
        data.push(datum("42", "Requests", at, requests_42));
        data.push(datum("41", "Http5xx", at, errors_41));
        data.push(datum("41", "Requests", at, 900.0));
    }
    // Two datapoints in one minute add up under Sum.
    data.push(datum("42", "Http5xx", base.plus_secs(70), 3.0));
    // A gauge for 42: 1..=100 ms in minute 1, read as its p99 and its Average.
    for ms in 1..=100 {
        data.push(datum("42", "Latency", base.plus_secs(90), f64::from(ms)));
    }
    cloudwatch.put_metric_data().namespace("orders").set_metric_data(Some(data)).send().await.expect("put_metric_data");

    let series = |version: &str, metric: &str, stat: &str| CustomSeries {
        namespace: "orders".into(),
        metric: metric.into(),
        dimensions: vec![("Service".into(), "orders".into()), ("Version".into(), version.into())],
        stat: stat.into(),
    };
    let key = |v: &str| MetricSeriesKey { function: f.clone(), alias: "live".into(), version: v.into() };
    let candidate = MetricQuery {
        custom: vec![
            series("42", "Http5xx", "Sum"),
            series("42", "Requests", "Sum"),
            series("42", "Latency", "p99"),
            series("42", "Latency", "Average"),
        ],
        ..MetricQuery::sums(key("42"))
    };
    let unknown = MetricQuery { custom: vec![series("43", "Http5xx", "Sum")], ..MetricQuery::sums(key("43")) };
    let got = aws.fetch(&[candidate, unknown], base, base.plus_secs(180)).await.unwrap();
    assert_eq!(got.len(), 2);
    let minute = |m: i64| base.plus_secs(60 * m);
    assert_eq!(got[0].custom.len(), 4, "one series per custom query");
    assert_eq!(
        got[0].custom[0],
        [(minute(0), 1.0), (minute(1), 7.0), (minute(2), 0.0)],
        "42's Http5xx per minute, not 41's"
    );
    assert_eq!(got[0].custom[1], [(minute(0), 100.0), (minute(1), 120.0), (minute(2), 90.0)]);
    let p99 = &got[0].custom[2];
    assert_eq!(p99.len(), 1, "{p99:?}");
    assert_eq!(p99[0].0, minute(1));
    assert!((98.0..=100.0).contains(&p99[0].1), "p99 was {}", p99[0].1);
    assert_eq!(got[0].custom[3], [(minute(1), 50.5)], "the same gauge, averaged");
    assert_eq!(got[0].totals().invocations, 0, "no Lambda metrics were put");
    assert_eq!(got[1].custom, [vec![]], "a series without data is empty, not an error");
}
