//! The AWS adapters against ministack, a real AWS API emulator: alias routing and
//! RevisionId, versions and pruning, SSM records and locks, CloudWatch metrics (p99
//! included) and alarms. Rules ministack does not enforce (weight range, version
//! existence, $LATEST) are enforced by stepshift's own code and tested with the
//! in-memory ports.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, StandardUnit, StateValue, Statistic};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use stepshift_aws::AwsPorts;
use stepshift_core::ports::{
    AlarmSource, AlarmValue, AliasRouter, AliasRouting, MetricQuery, MetricSeriesKey, MetricsSource, ParameterStore,
    VersionCatalog,
};
use stepshift_core::records::{self, HistoryEntry, HistoryEvent, Lock, RecordKeys, VersionRecords};
use stepshift_core::{Clock, PortError, SystemClock, Timestamp};
use stepshift_testkit::Emulator;

mod common;

async fn config() -> SdkConfig {
    common::config(Emulator::shared_ministack()).await
}

/// A name no other test in this process uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// An empty zip archive: the code is never run by these tests.
fn empty_zip() -> Blob {
    let mut eocd = b"PK\x05\x06".to_vec();
    eocd.extend([0u8; 18]);
    Blob::new(eocd)
}

/// A function with published versions 1..=versions and alias `live` → 1.
async fn function(config: &SdkConfig, versions: u32) -> String {
    let lambda = aws_sdk_lambda::Client::new(config);
    let name = unique("fn");
    lambda
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .role("arn:aws:iam::000000000000:role/stepshift-test")
        .handler("bootstrap")
        .code(FunctionCode::builder().zip_file(empty_zip()).build())
        .send()
        .await
        .expect("create_function");
    for i in 1..=versions {
        lambda
            .update_function_configuration()
            .function_name(&name)
            .description(format!("build {i}"))
            .send()
            .await
            .expect("update_function_configuration");
        let v = lambda.publish_version().function_name(&name).send().await.expect("publish_version");
        assert_eq!(v.version(), Some(i.to_string().as_str()));
    }
    lambda.create_alias().function_name(&name).name("live").function_version("1").send().await.expect("create_alias");
    name
}

#[tokio::test]
async fn alias_routing_round_trips_and_clears() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let f = function(&config, 3).await;

    let start = aws.get_alias(&f, "live").await.unwrap();
    assert_eq!(start.routing, AliasRouting::single("1"));
    assert!(!start.revision_id.is_empty());

    let split =
        aws.update_alias(&f, "live", &AliasRouting::split("1", "2", 0.1), Some(&start.revision_id)).await.unwrap();
    assert_eq!(split.routing, AliasRouting::split("1", "2", 0.1));
    assert_ne!(split.revision_id, start.revision_id, "every update changes the RevisionId");
    assert_eq!(aws.get_alias(&f, "live").await.unwrap(), split);

    let promoted = aws.update_alias(&f, "live", &AliasRouting::single("2"), Some(&split.revision_id)).await.unwrap();
    assert_eq!(promoted.routing, AliasRouting::single("2"), "an empty routing config clears the split");
    assert_eq!(aws.get_alias(&f, "live").await.unwrap().routing, AliasRouting::single("2"));
}

#[tokio::test]
async fn a_stale_revision_is_refused() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let f = function(&config, 2).await;
    let start = aws.get_alias(&f, "live").await.unwrap();
    aws.update_alias(&f, "live", &AliasRouting::single("2"), None).await.unwrap();
    let err =
        aws.update_alias(&f, "live", &AliasRouting::split("1", "2", 0.5), Some(&start.revision_id)).await.unwrap_err();
    assert!(matches!(err, PortError::PreconditionFailed { .. }), "{err:?}");
    assert_eq!(aws.get_alias(&f, "live").await.unwrap().routing, AliasRouting::single("2"), "nothing changed");
}

#[tokio::test]
async fn missing_functions_and_aliases_are_not_found() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let f = function(&config, 1).await;
    assert!(matches!(aws.get_alias(&f, "nope").await, Err(PortError::NotFound { .. })));
    assert!(matches!(aws.get_alias("no-such-function", "live").await, Err(PortError::NotFound { .. })));
    assert!(matches!(aws.list_versions("no-such-function").await, Err(PortError::NotFound { .. })));
}

#[tokio::test]
async fn versions_are_listed_and_pruned_but_routed_ones_are_kept() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let f = function(&config, 5).await;
    let mut versions = aws.list_versions(&f).await.unwrap();
    versions.sort();
    assert_eq!(versions, ["1", "2", "3", "4", "5"], "$LATEST is not a published version");
    aws.update_alias(&f, "live", &AliasRouting::split("4", "5", 0.2), None).await.unwrap();
    let aliases = aws.list_aliases(&f).await.unwrap();
    assert_eq!(aliases, [("live".to_owned(), AliasRouting::split("4", "5", 0.2))]);

    aws.delete_version(&f, "2").await.unwrap();
    let err = aws.delete_version(&f, "5").await.unwrap_err();
    assert!(matches!(err, PortError::Conflict { .. }), "a routed version cannot be deleted: {err:?}");
    let mut left = aws.list_versions(&f).await.unwrap();
    left.sort();
    assert_eq!(left, ["1", "3", "4", "5"]);
}

#[tokio::test]
async fn parameters_create_put_read_and_delete() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let base = format!("/{}", unique("params"));
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    aws.create(&a, "one").await.unwrap();
    assert!(matches!(aws.create(&a, "again").await, Err(PortError::AlreadyExists { .. })));
    aws.put(&a, "two").await.unwrap();
    aws.put(&b, "three").await.unwrap();
    let names: Vec<String> = (0..12).map(|i| format!("{base}/missing-{i}")).chain([a.clone(), b.clone()]).collect();
    let mut found = aws.get_many(&names).await.unwrap();
    found.sort();
    assert_eq!(
        found,
        [(a.clone(), "two".to_owned()), (b.clone(), "three".to_owned())],
        "more than 10 names are chunked"
    );
    aws.delete(&a).await.unwrap();
    aws.delete(&a).await.unwrap();
    assert_eq!(aws.get_many(std::slice::from_ref(&a)).await.unwrap(), []);
}

#[tokio::test]
async fn records_history_and_locks_live_in_ssm() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let keys = RecordKeys::new(&format!("/{}", unique("stepshift")), "orders", "live");
    let now = aws.now();
    let lock = |execution: &str| Lock { execution: execution.into(), candidate: "42".into(), acquired_at: now };
    records::acquire_lock(&aws, &keys, "orders:live", &lock("exec-1")).await.unwrap();
    let err = records::acquire_lock(&aws, &keys, "orders:live", &lock("exec-2")).await.unwrap_err();
    assert_eq!(err.name(), "DeploymentInProgress");

    let after = VersionRecords {
        current: Some("42".into()),
        previous: Some("41".into()),
        last_known_good: None,
        deployed_at: Some(now),
    };
    records::save(&aws, &keys, &VersionRecords::default(), &after).await.unwrap();
    let entry = HistoryEntry {
        at: now,
        event: HistoryEvent::Promoted,
        execution: Some("exec-1".into()),
        from: Some("41".into()),
        to: Some("42".into()),
        detail: None,
    };
    records::append_history(&aws, &keys, &[], entry.clone()).await.unwrap();

    let stored = records::load(&aws, &keys).await.unwrap();
    assert_eq!(stored.records, after);
    assert_eq!(stored.history, [entry]);
    assert_eq!(stored.lock.unwrap().execution, "exec-1");
    assert!(records::release_lock(&aws, &keys, "exec-1").await.unwrap());
    assert_eq!(records::load(&aws, &keys).await.unwrap().lock, None);
}

fn datum(function: &str, version: &str, metric: &str, at: Timestamp, value: f64, unit: StandardUnit) -> MetricDatum {
    let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
    MetricDatum::builder()
        .metric_name(metric)
        .dimensions(dim("FunctionName", function))
        .dimensions(dim("Resource", &format!("{function}:live")))
        .dimensions(dim("ExecutedVersion", version))
        .timestamp(aws_smithy_types::DateTime::from_millis(at.millis()))
        .value(value)
        .unit(unit)
        .build()
}

#[tokio::test]
async fn per_version_metrics_come_back_by_minute_with_p99() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let f = unique("metrics");
    let base = SystemClock.now().plus_secs(-600).floor_minute();
    let mut data = Vec::new();
    for minute in 0..3 {
        let at = base.plus_secs(60 * minute + 10);
        data.push(datum(&f, "2", "Invocations", at, 10.0, StandardUnit::Count));
        data.push(datum(&f, "2", "Errors", at, 1.0, StandardUnit::Count));
        data.push(datum(&f, "1", "Invocations", at, 90.0, StandardUnit::Count));
        data.push(datum(&f, "2", "Throttles", at, 2.0, StandardUnit::Count));
    }
    // 100 durations for the candidate: 1..=100 ms, so p99 is close to 99.
    for ms in 1..=100 {
        data.push(datum(&f, "2", "Duration", base.plus_secs(30), f64::from(ms), StandardUnit::Milliseconds));
    }
    for chunk in data.chunks(500) {
        cloudwatch
            .put_metric_data()
            .namespace("AWS/Lambda")
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .expect("put_metric_data");
    }
    let key = |v: &str| MetricSeriesKey { function: f.clone(), alias: "live".into(), version: v.into() };
    let got = aws
        .fetch(
            &[MetricQuery::sums(key("2")), MetricQuery::sums(key("1")), MetricQuery::sums(key("3"))],
            base,
            base.plus_secs(300),
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    let candidate = got[0].totals();
    assert_eq!((candidate.invocations, candidate.errors, candidate.throttles), (30, 3, 6));
    assert_eq!(got[0].minutes.len(), 3, "one entry per minute with data");
    assert_eq!(got[0].minutes[1].start, base.plus_secs(60));
    let p99 = got[0].p99_duration_ms.expect("p99 over the window");
    assert!((98.0..=100.0).contains(&p99), "p99 was {p99}");
    assert_eq!(got[1].totals().invocations, 270);
    assert_eq!(got[2].totals().invocations, 0, "a version without data is empty, not an error");
    assert_eq!(got[2].p99_duration_ms, None);

    // Data outside the window is not counted.
    let late = aws.fetch(&[MetricQuery::sums(key("2"))], base.plus_secs(120), base.plus_secs(300)).await.unwrap();
    assert_eq!(late[0].totals().invocations, 10);
}

/// CloudFront's metrics, read from us-east-1 by distribution: 5xx counts come out of
/// Requests times 5xxErrorRate, minute by minute.
#[tokio::test]
async fn distribution_metrics_come_back_by_minute() {
    use stepshift_core::routers::route53::health::DistributionMetricsSource;
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let (blue, green) = (unique("EBLUE").replace('-', ""), unique("EGREEN").replace('-', ""));
    let base = SystemClock.now().plus_secs(-600).floor_minute();
    let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
    let datum = |dist: &str, metric: &str, minute: i64, value: f64, unit: StandardUnit| {
        MetricDatum::builder()
            .metric_name(metric)
            .dimensions(dim("DistributionId", dist))
            .dimensions(dim("Region", "Global"))
            .timestamp(aws_smithy_types::DateTime::from_millis(base.plus_secs(60 * minute + 5).millis()))
            .value(value)
            .unit(unit)
            .build()
    };
    let mut data = Vec::new();
    for minute in 0..3 {
        data.push(datum(&blue, "Requests", minute, 900.0, StandardUnit::None));
        data.push(datum(&blue, "5xxErrorRate", minute, 1.0, StandardUnit::Percent));
        data.push(datum(&green, "Requests", minute, 100.0, StandardUnit::None));
        data.push(datum(&green, "5xxErrorRate", minute, 10.0, StandardUnit::Percent));
        data.push(datum(&green, "4xxErrorRate", minute, 2.0, StandardUnit::Percent));
    }
    cloudwatch
        .put_metric_data()
        .namespace("AWS/CloudFront")
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("put_metric_data");
    let got = aws.distribution_metrics(&[green.clone(), blue.clone()], base, base.plus_secs(300)).await.unwrap();
    let (g, b) = (got[0].minutes_5xx(), got[1].minutes_5xx());
    assert_eq!(g.len(), 3, "{g:?}");
    assert_eq!((g[0].start, g[0].invocations, g[0].errors), (base, 100, 10));
    assert_eq!(b.iter().map(|m| m.errors).sum::<u64>(), 27);
    assert_eq!(got[0].error_rate_4xx.len(), 3);
    assert!(got[1].error_rate_4xx.is_empty());
    use stepshift_core::compare::{TestSettings, compare, errors, pair_minutes};
    let settings = TestSettings {
        tolerance: 0.0,
        drift: 0.25,
        alpha: 0.01,
        origin: base,
        planned_minutes: 5,
        lower_is_worse: false,
    };
    let c = compare(&pair_minutes(&g, &b, errors), None, &settings);
    assert!(c.regressed(), "{c:?}");
}

#[tokio::test]
async fn alarm_states_are_read_by_name() {
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let (bad, fine) = (unique("alarm-bad"), unique("alarm-fine"));
    for name in [&bad, &fine] {
        cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/Lambda")
            .metric_name("Errors")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .send()
            .await
            .expect("put_metric_alarm");
    }
    cloudwatch
        .set_alarm_state()
        .alarm_name(&bad)
        .state_value(StateValue::Alarm)
        .state_reason("errors spiked")
        .send()
        .await
        .unwrap();
    cloudwatch
        .set_alarm_state()
        .alarm_name(&fine)
        .state_value(StateValue::Ok)
        .state_reason("quiet")
        .send()
        .await
        .unwrap();
    let names = [bad.clone(), fine.clone(), unique("alarm-missing")];
    let states = aws.alarm_states(&names).await.unwrap();
    assert_eq!(states[0].state, Some(AlarmValue::Alarm));
    assert_eq!(states[0].reason.as_deref(), Some("errors spiked"));
    assert_eq!(states[1].state, Some(AlarmValue::Ok));
    assert_eq!(states[2].state, None);
}

/// Subscription filters on a function's log group. Measured against ministack 1.5.33: it
/// does not enforce CloudWatch Logs' limit of two filters per log group (a third is
/// accepted, so the LimitExceededException path is pinned in `mocked.rs` instead), nor
/// check that the destination exists; it pages DescribeSubscriptionFilters at 50, answers
/// ResourceNotFoundException for a missing log group or filter, and keeps a function's
/// LoggingConfig.LogGroup.
#[tokio::test]
async fn subscription_filters_are_put_listed_and_deleted() {
    use aws_sdk_lambda::types::{LogFormat, LoggingConfig};
    use stepshift_core::outcomes::LogSubscriptions;
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);

    // Where functions log: the default group, or the one their logging configuration names.
    let plain = function(&config, 1).await;
    assert_eq!(aws.log_group_of(&plain).await.unwrap(), format!("/aws/lambda/{plain}"));
    let (shared, group) = (unique("fn-shared-logs"), format!("/{}", unique("shared")));
    lambda
        .create_function()
        .function_name(&shared)
        .runtime(Runtime::Providedal2023)
        .role("arn:aws:iam::000000000000:role/stepshift-test")
        .handler("bootstrap")
        .code(FunctionCode::builder().zip_file(empty_zip()).build())
        .logging_config(LoggingConfig::builder().log_format(LogFormat::Text).log_group(&group).build())
        .send()
        .await
        .expect("create_function");
    assert_eq!(aws.log_group_of(&shared).await.unwrap(), group);
    let err = aws.log_group_of(&unique("no-such-fn")).await.unwrap_err();
    assert!(matches!(err, PortError::NotFound { .. }), "{err:?}");

    // The destination: any function's ARN (this test puts no log events, so nothing is
    // delivered to it).
    let tally = lambda.get_function_configuration().function_name(&plain).send().await.unwrap();
    let tally = tally.function_arn().unwrap().to_owned();
    let missing = format!("/{}", unique("no-such-group"));
    assert!(matches!(aws.filters(&missing).await, Err(PortError::NotFound { .. })));
    let err = aws.put_filter(&missing, "stepshift/a", "REPORT", &tally).await.unwrap_err();
    assert!(matches!(err, PortError::NotFound { .. }), "{err:?}");

    logs.create_log_group().log_group_name(&group).send().await.expect("create_log_group");
    assert_eq!(aws.filters(&group).await.unwrap(), Vec::<String>::new());
    aws.put_filter(&group, "datadog", "", &tally).await.unwrap();
    aws.put_filter(&group, "stepshift/orders/live/250/exec-1", "REPORT", &tally).await.unwrap();
    // A retry replaces the filter rather than adding one.
    aws.put_filter(&group, "stepshift/orders/live/250/exec-1", "?REPORT ?ERROR", &tally).await.unwrap();
    assert_eq!(aws.filters(&group).await.unwrap(), ["datadog", "stepshift/orders/live/250/exec-1"]);
    let stored = logs.describe_subscription_filters().log_group_name(&group).send().await.unwrap();
    let mine = stored.subscription_filters().iter().find(|f| f.filter_name() != Some("datadog")).unwrap();
    assert_eq!((mine.filter_pattern(), mine.destination_arn()), (Some("?REPORT ?ERROR"), Some(tally.as_str())));

    // AWS refuses a third filter (LimitExceededException); ministack accepts it.
    aws.put_filter(&group, "third", "", &tally).await.expect("ministack does not enforce the limit of two filters");
    assert_eq!(aws.filters(&group).await.unwrap().len(), 3);

    // More than one page (ministack answers 50 filters a page).
    for i in 0..55 {
        aws.put_filter(&group, &format!("extra-{i:02}"), "", &tally).await.unwrap();
    }
    let all = aws.filters(&group).await.unwrap();
    assert_eq!(all.len(), 58, "every page is read");
    assert!(all.iter().any(|f| f == "third") && all.iter().any(|f| f == "extra-54"));

    aws.delete_filter(&group, "stepshift/orders/live/250/exec-1").await.unwrap();
    aws.delete_filter(&group, "stepshift/orders/live/250/exec-1").await.expect("a second delete is Ok");
    aws.delete_filter(&missing, "stepshift/orders/live/250/exec-1").await.expect("so is a missing log group");
    let left = aws.filters(&group).await.unwrap();
    assert_eq!(left.len(), 57);
    assert!(!left.iter().any(|f| f.starts_with("stepshift/")));
}

/// The fast path's outcome counts: high-resolution sums per 10-second bucket, two
/// publishes to one bucket adding up, each series apart.
#[tokio::test]
async fn outcome_counts_add_up_per_ten_second_bucket() {
    use stepshift_core::outcomes::{BucketCounts, OutcomeSeries, OutcomeSink, OutcomeSource, Source};
    let config = config().await;
    let aws = AwsPorts::new(&config);
    let f = unique("outcomes");
    let series = |version: &str, source: Source| OutcomeSeries {
        function: f.clone(),
        alias: "live".into(),
        version: version.into(),
        source,
    };
    let (candidate, stable) = (series("2", Source::Logs), series("1", Source::Logs));
    let base = SystemClock.now().plus_secs(-600).floor_minute();
    let bucket =
        |s: i64, invocations, failures, slow| BucketCounts { start: base.plus_secs(s), invocations, failures, slow };
    aws.publish(&[
        (candidate.clone(), bucket(0, 10, 1, 0)),
        (candidate.clone(), bucket(10, 20, 5, 2)),
        (stable.clone(), bucket(10, 100, 1, 3)),
        (candidate.clone(), bucket(70, 9, 9, 9)),
    ])
    .await
    .unwrap();
    // A late batch for a bucket already published adds to it.
    aws.publish(&[(candidate.clone(), bucket(10, 5, 2, 0)), (candidate.clone(), bucket(30, 7, 0, 1))]).await.unwrap();

    let other_source = series("2", Source::Destinations);
    let got = aws
        .outcomes(&[candidate, stable, other_source, series("3", Source::Logs)], base, base.plus_secs(60))
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(
        got[0],
        [bucket(0, 10, 1, 0), bucket(10, 25, 7, 2), bucket(30, 7, 0, 1)],
        "outside the window: not read"
    );
    assert_eq!(got[1], [bucket(10, 100, 1, 3)]);
    assert_eq!(got[2], [], "the Source dimension keeps the inputs apart");
    assert_eq!(got[3], [], "a series without data is empty, not an error");
}
