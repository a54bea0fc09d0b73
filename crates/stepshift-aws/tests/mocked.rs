//! Exact requests and error classification, pinned with aws-smithy-mocks.

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::operation::get_alias::GetAliasOutput;
use aws_sdk_lambda::operation::update_alias::UpdateAliasOutput;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use aws_sdk_ssm::operation::delete_parameter::DeleteParameterError;
use aws_sdk_ssm::types::error::ParameterNotFound;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::body::SdkBody;
use stepshift_aws::AwsPorts;
use stepshift_core::ports::{
    AliasRouter, AliasRouting, CustomSeries, MAX_METRIC_QUERIES, MetricQuery, MetricSeriesKey, MetricsSource,
    ParameterStore,
};
use stepshift_core::{PortError, Service, Timestamp};

fn ports(lambda: &[&Rule], cloudwatch: &[&Rule], ssm: &[&Rule]) -> AwsPorts {
    AwsPorts::from_clients(
        mock_client!(aws_sdk_lambda, RuleMode::MatchAny, lambda.iter().copied(), |c| c
            .retry_config(RetryConfig::disabled())),
        mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, cloudwatch.iter().copied(), |c| c
            .retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())),
        mock_client!(aws_sdk_ssm, RuleMode::MatchAny, ssm.iter().copied(), |c| c
            .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())),
    )
}

fn json_error(status: u16, code: &str) -> aws_sdk_lambda::config::http::HttpResponse {
    let mut response = aws_sdk_lambda::config::http::HttpResponse::new(
        status.try_into().unwrap(),
        SdkBody::from(format!(r#"{{"Type":"User","message":"{code} from the mock"}}"#)),
    );
    response.headers_mut().insert("x-amzn-errortype", code.to_owned());
    response.headers_mut().insert("content-type", "application/json");
    response
}

#[tokio::test]
async fn promotion_sends_an_empty_routing_map_and_the_revision() {
    let update = mock!(aws_sdk_lambda::Client::update_alias)
        .match_requests(|r| {
            r.function_version() == Some("42")
                && r.revision_id() == Some("rev-7")
                && r.routing_config().and_then(|c| c.additional_version_weights()).is_some_and(|w| w.is_empty())
        })
        .then_output(|| UpdateAliasOutput::builder().function_version("42").revision_id("rev-8").build());
    let aws = ports(&[&update], &[], &[]);
    let state = aws.update_alias("orders", "live", &AliasRouting::single("42"), Some("rev-7")).await.unwrap();
    assert_eq!(state.routing, AliasRouting::single("42"));
    assert_eq!(state.revision_id, "rev-8");
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn a_split_keeps_stable_primary_and_weights_the_candidate() {
    let update = mock!(aws_sdk_lambda::Client::update_alias)
        .match_requests(|r| {
            let weights = r.routing_config().and_then(|c| c.additional_version_weights());
            r.function_version() == Some("41") && weights.is_some_and(|w| w.len() == 1 && w.get("42") == Some(&0.25))
        })
        .then_output(|| {
            UpdateAliasOutput::builder()
                .function_version("41")
                .routing_config(AliasRoutingConfiguration::builder().additional_version_weights("42", 0.25).build())
                .revision_id("rev-9")
                .build()
        });
    let aws = ports(&[&update], &[], &[]);
    let state =
        aws.update_alias("orders", "live", &AliasRouting::split("41", "42", 0.25), Some("rev-8")).await.unwrap();
    assert_eq!(state.routing, AliasRouting::split("41", "42", 0.25));
}

#[tokio::test]
async fn lambda_errors_are_classified_for_retry() {
    let cases = [
        (429, "TooManyRequestsException", "throttled"),
        (409, "ResourceConflictException", "conflict"),
        (412, "PreconditionFailedException", "precondition"),
        (404, "ResourceNotFoundException", "not found"),
        (500, "ServiceException", "unavailable"),
        (403, "AccessDeniedException", "other"),
    ];
    for (status, code, expected) in cases {
        let rule = mock!(aws_sdk_lambda::Client::get_alias).then_http_response(move || json_error(status, code));
        let aws = ports(&[&rule], &[], &[]);
        let err = aws.get_alias("orders", "live").await.unwrap_err();
        let kind = match &err {
            PortError::Throttled { .. } => "throttled",
            PortError::Conflict { .. } => "conflict",
            PortError::PreconditionFailed { .. } => "precondition",
            PortError::NotFound { .. } => "not found",
            PortError::Unavailable { .. } => "unavailable",
            _ => "other",
        };
        assert_eq!(kind, expected, "{code}: {err}");
        assert_eq!(err.is_retryable(), matches!(expected, "throttled" | "conflict" | "unavailable"), "{code}");
    }
}

#[tokio::test]
async fn get_alias_reads_the_routing_config() {
    let get = mock!(aws_sdk_lambda::Client::get_alias).then_output(|| {
        GetAliasOutput::builder()
            .function_version("41")
            .routing_config(AliasRoutingConfiguration::builder().additional_version_weights("42", 0.1).build())
            .revision_id("rev-1")
            .build()
    });
    let aws = ports(&[&get], &[], &[]);
    assert_eq!(aws.get_alias("orders", "live").await.unwrap().routing, AliasRouting::split("41", "42", 0.1));
}

#[tokio::test]
async fn one_get_metric_data_call_covers_every_key() {
    let get = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() == 15)
        .then_output(|| {
            let at = aws_smithy_types::DateTime::from_secs(1_800_000_060);
            GetMetricDataOutput::builder()
                .metric_data_results(MetricDataResult::builder().id("m2_inv").timestamps(at).values(7.0).build())
                .metric_data_results(MetricDataResult::builder().id("m2_err").timestamps(at).values(2.0).build())
                .metric_data_results(MetricDataResult::builder().id("m2_p99").timestamps(at).values(300.0).build())
                .build()
        });
    let aws = ports(&[], &[&get], &[]);
    let key = |f: &str, v: &str| MetricSeriesKey { function: f.into(), alias: "live".into(), version: v.into() };
    let keys = [key("orders", "42"), key("orders", "41"), key("billing", "8")].map(MetricQuery::sums);
    let start = Timestamp::from_secs(1_800_000_000);
    let got = aws.fetch(&keys, start, start.plus_secs(300)).await.unwrap();
    assert_eq!(get.num_calls(), 1);
    assert_eq!(got[2].totals().invocations, 7);
    assert_eq!(got[2].totals().errors, 2);
    assert_eq!(got[2].p99_duration_ms, Some(300.0));
    assert_eq!(got[0].totals().invocations, 0);
}

/// Neither emulator serves CloudWatch's trimmed count (ministack answers the Average,
/// moto refuses it), so the exact slow-invocation queries are pinned here.
#[tokio::test]
async fn slow_invocations_are_trimmed_counts_of_duration_per_minute() {
    let get = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            let q = r.metric_data_queries();
            let stat = |id: &str| {
                q.iter().find(|q| q.id() == Some(id)).and_then(|q| q.metric_stat()).map(|s| {
                    let m = s.metric().unwrap();
                    let dims: Vec<(String, String)> = m
                        .dimensions()
                        .iter()
                        .map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned()))
                        .collect();
                    (
                        m.namespace().unwrap().to_owned(),
                        m.metric_name().unwrap().to_owned(),
                        dims,
                        s.period(),
                        s.stat().unwrap().to_owned(),
                    )
                })
            };
            let dims = vec![
                ("FunctionName".to_owned(), "orders".to_owned()),
                ("Resource".to_owned(), "orders:live".to_owned()),
                ("ExecutedVersion".to_owned(), "42".to_owned()),
            ];
            let duration = |stat: &str| {
                Some(("AWS/Lambda".to_owned(), "Duration".to_owned(), dims.clone(), Some(60), stat.to_owned()))
            };
            q.len() == 7
                && stat("m0_dur") == duration("SampleCount")
                && stat("m0_slow") == duration("TC(181.25:)")
                && stat("m0_over") == duration("TC(800:)")
                && r.scan_by() == Some(&aws_sdk_cloudwatch::types::ScanBy::TimestampAscending)
        })
        .then_output(|| {
            let at = aws_smithy_types::DateTime::from_secs(1_800_000_060);
            let point = |id: &str, v: f64| MetricDataResult::builder().id(id).timestamps(at).values(v).build();
            GetMetricDataOutput::builder()
                .metric_data_results(point("m0_inv", 600.0))
                .metric_data_results(point("m0_dur", 600.0))
                // Trimmed counts are interpolated, so CloudWatch may answer fractions.
                .metric_data_results(point("m0_slow", 41.6))
                .metric_data_results(point("m0_over", 2.4))
                .build()
        });
    let aws = ports(&[], &[&get], &[]);
    let series = MetricSeriesKey { function: "orders".into(), alias: "live".into(), version: "42".into() };
    let query = MetricQuery { slow_above_ms: Some(181.25), limit_ms: Some(800.0), ..MetricQuery::sums(series) };
    let start = Timestamp::from_secs(1_800_000_000);
    let got = aws.fetch(&[query], start, start.plus_secs(300)).await.unwrap();
    assert_eq!(get.num_calls(), 1);
    let t = got[0].totals();
    assert_eq!((t.invocations, t.durations, t.slow, t.over_limit), (600, 600, 42, 2));
}

/// A GetMetricData result: `id`'s datapoints at `at` (seconds since the epoch).
fn data_result(id: &str, at: &[i64], values: &[f64]) -> MetricDataResult {
    MetricDataResult::builder()
        .id(id)
        .set_timestamps(Some(at.iter().map(|s| aws_smithy_types::DateTime::from_secs(*s)).collect()))
        .set_values(Some(values.to_vec()))
        .build()
}

fn orders_series(metric: &str, stat: &str) -> CustomSeries {
    CustomSeries {
        namespace: "orders".into(),
        metric: metric.into(),
        dimensions: vec![("Service".into(), "orders".into()), ("Version".into(), "42".into())],
        stat: stat.into(),
    }
}

/// Custom metrics ride in the same GetMetricData request as Lambda's own: one query per
/// series, `m{i}_c{j}`, with the user's namespace, name, dimensions and statistic.
#[tokio::test]
async fn custom_series_are_read_in_the_same_call_and_come_back_in_order() {
    let get = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            let q = r.metric_data_queries();
            let ids: Vec<&str> = q.iter().filter_map(|q| q.id()).collect();
            let custom = |id: &str| {
                let q = q.iter().find(|q| q.id() == Some(id))?;
                let s = q.metric_stat()?;
                let m = s.metric()?;
                let dims: Vec<(&str, &str)> =
                    m.dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
                Some((m.namespace()?, m.metric_name()?, dims, s.period()?, s.stat()?, q.return_data()))
            };
            let dims = vec![("Service", "orders"), ("Version", "42")];
            let expected = [
                "m0_inv", "m0_err", "m0_thr", "m0_dur", "m0_p99", "m0_c0", "m0_c1", "m1_inv", "m1_err", "m1_thr",
                "m1_dur", "m1_p99",
            ];
            ids == expected
                && custom("m0_c0") == Some(("orders", "Http5xx", dims.clone(), 60, "Sum", Some(true)))
                && custom("m0_c1") == Some(("orders", "Latency", dims, 60, "p99", Some(true)))
                && r.start_time() == Some(&aws_smithy_types::DateTime::from_secs(1_800_000_000))
                && r.end_time() == Some(&aws_smithy_types::DateTime::from_secs(1_800_000_300))
        })
        .then_output(|| {
            let series = data_result;
            GetMetricDataOutput::builder()
                .metric_data_results(series("m0_inv", &[1_800_000_060], &[100.0]))
                // Out of order, and off the minute: sorted, and floored to the minute start.
                .metric_data_results(series("m0_c1", &[1_800_000_125, 1_800_000_000], &[250.5, 180.25]))
                .metric_data_results(series("m0_c0", &[1_800_000_180, 1_800_000_000, 1_800_000_060], &[4.0, 0.0, 2.0]))
                .build()
        });
    let aws = ports(&[], &[&get], &[]);
    let key = |v: &str| MetricSeriesKey { function: "orders".into(), alias: "live".into(), version: v.into() };
    let candidate = MetricQuery {
        custom: vec![orders_series("Http5xx", "Sum"), orders_series("Latency", "p99")],
        ..MetricQuery::sums(key("42"))
    };
    let start = Timestamp::from_secs(1_800_000_000);
    let got = aws.fetch(&[candidate, MetricQuery::sums(key("41"))], start, start.plus_secs(300)).await.unwrap();
    assert_eq!(get.num_calls(), 1, "one GetMetricData call for every series");
    let at = |s: i64| Timestamp::from_secs(1_800_000_000 + s);
    assert_eq!(got[0].custom.len(), 2, "one entry per custom series");
    assert_eq!(got[0].custom[0], [(at(0), 0.0), (at(60), 2.0), (at(180), 4.0)], "oldest first");
    assert_eq!(got[0].custom[1], [(at(0), 180.25), (at(120), 250.5)]);
    assert_eq!(got[0].totals().invocations, 100, "the built-in series are read as before");
    assert!(got[1].custom.is_empty(), "a query without custom series has none");
}

/// One request holds at most 500 queries: 7 per series plus one per custom series.
#[tokio::test]
async fn more_than_500_queries_are_refused_without_a_call() {
    let get = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() == 500)
        .then_output(|| GetMetricDataOutput::builder().build());
    let aws = ports(&[], &[&get], &[]);
    let key = |i: usize| MetricSeriesKey { function: format!("fn{i}"), alias: "live".into(), version: "1".into() };
    let slow =
        |i: usize| MetricQuery { slow_above_ms: Some(200.0), limit_ms: Some(900.0), ..MetricQuery::sums(key(i)) };
    // 71 series of 7 queries and 3 custom series: exactly 500.
    let mut queries: Vec<MetricQuery> = (0..71).map(slow).collect();
    queries[70].custom = vec![orders_series("A", "Sum"), orders_series("B", "Sum"), orders_series("C", "Average")];
    assert_eq!(queries.iter().map(MetricQuery::cost).sum::<usize>(), MAX_METRIC_QUERIES);
    let start = Timestamp::from_secs(1_800_000_000);
    let got = aws.fetch(&queries, start, start.plus_secs(300)).await.unwrap();
    assert_eq!((get.num_calls(), got.len(), got[70].custom.len()), (1, 71, 3));

    // One more custom series: 501.
    queries[0].custom.push(orders_series("D", "Sum"));
    let err = aws.fetch(&queries, start, start.plus_secs(300)).await.unwrap_err();
    let PortError::Invalid { service, message } = &err else { panic!("{err:?}") };
    assert_eq!(*service, Service::CloudWatch);
    assert!(message.starts_with("501 queries") && message.contains("at most 500"), "{message}");
    // 72 plain series are 504 queries.
    let plain: Vec<MetricQuery> = (0..72).map(|i| MetricQuery::sums(key(i))).collect();
    let err = aws.fetch(&plain, start, start.plus_secs(300)).await.unwrap_err();
    assert!(matches!(&err, PortError::Invalid { message, .. } if message.starts_with("504 queries")), "{err:?}");
    assert_eq!(get.num_calls(), 1, "a refused request is never sent");
}

#[tokio::test]
async fn deleting_a_missing_parameter_is_not_an_error() {
    let delete = mock!(aws_sdk_ssm::Client::delete_parameter)
        .then_error(|| DeleteParameterError::ParameterNotFound(ParameterNotFound::builder().build()));
    let aws = ports(&[], &[], &[&delete]);
    aws.delete("/stepshift/orders/live/lock").await.unwrap();
    assert_eq!(delete.num_calls(), 1);
}

// The fast path: outcome counts (CloudWatch, high resolution) and subscription filters
// (CloudWatch Logs, with Lambda's logging configuration).

mod fast_path {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::operation::put_metric_data::{PutMetricDataInput, PutMetricDataOutput};
    use aws_sdk_cloudwatch::types::{MetricDataResult, StandardUnit};
    use aws_sdk_cloudwatchlogs::operation::delete_subscription_filter::{
        DeleteSubscriptionFilterError, DeleteSubscriptionFilterOutput,
    };
    use aws_sdk_cloudwatchlogs::operation::describe_subscription_filters::DescribeSubscriptionFiltersOutput;
    use aws_sdk_cloudwatchlogs::operation::put_subscription_filter::PutSubscriptionFilterOutput;
    use aws_sdk_cloudwatchlogs::types::SubscriptionFilter;
    use aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException;
    use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
    use aws_sdk_lambda::types::{LogFormat, LoggingConfig};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::body::SdkBody;
    use stepshift_aws::AwsPorts;
    use stepshift_core::outcomes::{
        BucketCounts, LogSubscriptions, NAMESPACE, OutcomeSeries, OutcomeSink, OutcomeSource, Source,
    };
    use stepshift_core::{PortError, Service, Timestamp};

    fn ports(lambda: &[&Rule], cloudwatch: &[&Rule], logs: &[&Rule]) -> AwsPorts {
        super::ports(lambda, cloudwatch, &[]).with_logs(mock_client!(
            aws_sdk_cloudwatchlogs,
            RuleMode::MatchAny,
            logs.iter().copied(),
            |c| c.retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
        ))
    }

    fn series(function: &str, version: &str) -> OutcomeSeries {
        OutcomeSeries { function: function.into(), alias: "live".into(), version: version.into(), source: Source::Logs }
    }

    fn pairs(dims: &[aws_sdk_cloudwatch::types::Dimension]) -> Vec<(&str, &str)> {
        dims.iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect()
    }

    const DIMS: [(&str, &str); 4] =
        [("FunctionName", "orders"), ("Resource", "orders:live"), ("Version", "42"), ("Source", "logs")];

    /// CloudWatch Logs speaks awsJson1_1: the error's code is the body's `__type`.
    fn logs_error(status: u16, code: &str, message: &str) -> aws_sdk_cloudwatchlogs::config::http::HttpResponse {
        let mut response = aws_sdk_cloudwatchlogs::config::http::HttpResponse::new(
            status.try_into().unwrap(),
            SdkBody::from(format!(r#"{{"__type":"{code}","message":"{message}"}}"#)),
        );
        response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
        response
    }

    fn is_outcome_put(r: &PutMetricDataInput) -> bool {
        r.namespace() == Some(NAMESPACE)
            && r.metric_data().iter().all(|d| {
                d.storage_resolution() == Some(1) && d.unit() == Some(&StandardUnit::Count) && d.dimensions().len() == 4
            })
    }

    #[tokio::test]
    async fn outcome_counts_are_put_at_one_second_resolution_one_datum_per_metric() {
        let at = Timestamp::from_secs(1_800_000_010);
        let put = mock!(aws_sdk_cloudwatch::Client::put_metric_data)
            .match_requests(move |r| {
                let d = r.metric_data();
                let got: Vec<_> = d.iter().map(|d| (d.metric_name().unwrap(), d.value().unwrap())).collect();
                is_outcome_put(r)
                    && got == [("Invocations", 120.0), ("Failures", 7.0), ("Slow", 0.0)]
                    && d.iter().all(|d| {
                        pairs(d.dimensions()) == DIMS
                            && d.timestamp() == Some(&aws_smithy_types::DateTime::from_millis(at.millis()))
                    })
            })
            .then_output(|| PutMetricDataOutput::builder().build());
        let aws = ports(&[], &[&put], &[]);
        let counts = BucketCounts { start: at, invocations: 120, failures: 7, slow: 0 };
        aws.publish(&[(series("orders", "42"), counts)]).await.unwrap();
        assert_eq!(put.num_calls(), 1);
        aws.publish(&[]).await.unwrap();
        assert_eq!(put.num_calls(), 1, "nothing to publish, no call");
    }

    #[tokio::test]
    async fn more_than_1000_datums_are_put_in_several_calls() {
        let full = mock!(aws_sdk_cloudwatch::Client::put_metric_data)
            .match_requests(|r| is_outcome_put(r) && r.metric_data().len() == 1000)
            .then_output(|| PutMetricDataOutput::builder().build());
        let rest = mock!(aws_sdk_cloudwatch::Client::put_metric_data)
            .match_requests(|r| {
                is_outcome_put(r)
                    && r.metric_data().len() == 203
                    && r.metric_data().last().is_some_and(|d| {
                        d.metric_name() == Some("Slow")
                            && d.timestamp() == Some(&aws_smithy_types::DateTime::from_secs(1_800_000_000 + 10 * 400))
                    })
            })
            .then_output(|| PutMetricDataOutput::builder().build());
        let aws = ports(&[], &[&full, &rest], &[]);
        // 401 buckets of 3 metrics: 1203 datums.
        let counts: Vec<_> = (0..=400)
            .map(|i| {
                let start = Timestamp::from_secs(1_800_000_000 + 10 * i);
                (series("orders", "42"), BucketCounts { start, invocations: 1, failures: 0, slow: 0 })
            })
            .collect();
        aws.publish(&counts).await.unwrap();
        assert_eq!((full.num_calls(), rest.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn outcome_queries_sum_ten_second_periods_of_each_series() {
        let start = Timestamp::from_secs(1_800_000_000);
        let get = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
            .match_requests(move |r| {
                let q = r.metric_data_queries();
                let ids: Vec<_> = q.iter().map(|q| q.id().unwrap()).collect();
                let stat = q[3].metric_stat().unwrap();
                let metric = stat.metric().unwrap();
                ids == ["m0_Invocations", "m0_Failures", "m0_Slow", "m1_Invocations", "m1_Failures", "m1_Slow"]
                    && q.iter().all(|q| {
                        let s = q.metric_stat().unwrap();
                        s.period() == Some(10) && s.stat() == Some("Sum") && q.return_data() == Some(true)
                    })
                    && metric.namespace() == Some(NAMESPACE)
                    && metric.metric_name() == Some("Invocations")
                    && pairs(metric.dimensions()) == DIMS
                    && r.start_time() == Some(&aws_smithy_types::DateTime::from_secs(1_800_000_000))
                    && r.end_time() == Some(&aws_smithy_types::DateTime::from_secs(1_800_000_060))
            })
            .then_output(|| {
                let point = super::data_result;
                GetMetricDataOutput::builder()
                    .metric_data_results(point(
                        "m1_Invocations",
                        // A datapoint before the window (CloudWatch rounds StartTime down to
                        // the minute) is dropped.
                        &[1_799_999_990, 1_800_000_010, 1_800_000_030],
                        &[99.0, 50.0, 60.0],
                    ))
                    .metric_data_results(point("m1_Failures", &[1_800_000_030], &[4.0]))
                    .metric_data_results(point("m1_Slow", &[1_800_000_010], &[1.0]))
                    .build()
            });
        let aws = ports(&[], &[&get], &[]);
        let got = aws.outcomes(&[series("billing", "8"), series("orders", "42")], start, start.plus_secs(60)).await;
        let got = got.unwrap();
        assert_eq!(get.num_calls(), 1);
        assert_eq!(got[0], []);
        let b = |s: i64, invocations, failures, slow| BucketCounts {
            start: Timestamp::from_secs(1_800_000_000 + s),
            invocations,
            failures,
            slow,
        };
        assert_eq!(got[1], [b(10, 50, 0, 1), b(30, 60, 4, 0)]);
    }

    #[tokio::test]
    async fn more_than_166_series_are_read_in_several_calls() {
        let first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
            .match_requests(|r| r.metric_data_queries().len() == 498)
            .then_output(|| GetMetricDataOutput::builder().build());
        let second = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
            .match_requests(|r| {
                r.metric_data_queries().len() == 6 && r.metric_data_queries()[0].id() == Some("m166_Invocations")
            })
            .then_output(|| {
                let at = aws_smithy_types::DateTime::from_secs(1_800_000_020);
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder().id("m167_Failures").timestamps(at).values(3.0).build(),
                    )
                    .build()
            });
        let aws = ports(&[], &[&first, &second], &[]);
        let all: Vec<_> = (0..168).map(|i| series(&format!("fn{i}"), "1")).collect();
        let start = Timestamp::from_secs(1_800_000_000);
        let got = aws.outcomes(&all, start, start.plus_secs(60)).await.unwrap();
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        assert_eq!(got.len(), 168);
        assert_eq!(got[167].iter().map(|b| b.failures).sum::<u64>(), 3);
        assert!(got[..167].iter().all(Vec::is_empty));
    }

    #[tokio::test]
    async fn the_log_group_is_the_logging_configs_or_the_default() {
        let custom = mock!(aws_sdk_lambda::Client::get_function_configuration)
            .match_requests(|r| r.function_name() == Some("orders"))
            .then_output(|| {
                GetFunctionConfigurationOutput::builder()
                    .function_name("orders")
                    .logging_config(
                        LoggingConfig::builder().log_format(LogFormat::Json).log_group("/shared/api").build(),
                    )
                    .build()
            });
        let default = mock!(aws_sdk_lambda::Client::get_function_configuration)
            .match_requests(|r| r.function_name() == Some("arn:aws:lambda:us-east-1:123456789012:function:billing"))
            .then_output(|| {
                // Older functions have no LoggingConfig at all.
                GetFunctionConfigurationOutput::builder().function_name("billing").build()
            });
        let missing = mock!(aws_sdk_lambda::Client::get_function_configuration)
            .match_requests(|r| r.function_name() == Some("nope"))
            .then_http_response(|| super::json_error(404, "ResourceNotFoundException"));
        let aws = ports(&[&custom, &default, &missing], &[], &[]);
        assert_eq!(aws.log_group_of("orders").await.unwrap(), "/shared/api");
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:billing";
        assert_eq!(aws.log_group_of(arn).await.unwrap(), "/aws/lambda/billing");
        let err = aws.log_group_of("nope").await.unwrap_err();
        assert!(matches!(err, PortError::NotFound { service: Service::Lambda, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_subscription_filter_is_put_with_its_pattern_and_destination() {
        let put = mock!(aws_sdk_cloudwatchlogs::Client::put_subscription_filter)
            .match_requests(|r| {
                r.log_group_name() == Some("/aws/lambda/orders")
                    && r.filter_name() == Some("stepshift/orders/live/250/exec-1")
                    && r.filter_pattern() == Some("?REPORT ?ERROR")
                    && r.destination_arn() == Some("arn:aws:lambda:us-east-1:123456789012:function:stepshift-tally")
                    && r.role_arn().is_none()
                    && r.distribution().is_none()
            })
            .then_output(|| PutSubscriptionFilterOutput::builder().build());
        let aws = ports(&[], &[], &[&put]);
        aws.put_filter(
            "/aws/lambda/orders",
            "stepshift/orders/live/250/exec-1",
            "?REPORT ?ERROR",
            "arn:aws:lambda:us-east-1:123456789012:function:stepshift-tally",
        )
        .await
        .unwrap();
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn subscription_filter_errors_are_classified() {
        let cases = [
            ("LimitExceededException", "Resource limit exceeded.", "invalid"),
            ("OperationAbortedException", "Multiple users are modifying the same resource", "conflict"),
            ("ThrottlingException", "Rate exceeded", "throttled"),
            ("ResourceNotFoundException", "The specified log group does not exist.", "not found"),
            ("InvalidParameterException", "Could not execute the lambda function.", "invalid"),
            ("AccessDeniedException", "no", "other"),
        ];
        for (code, message, expected) in cases {
            let rule = mock!(aws_sdk_cloudwatchlogs::Client::put_subscription_filter)
                .then_http_response(move || logs_error(400, code, message));
            let aws = ports(&[], &[], &[&rule]);
            let err = aws.put_filter("/aws/lambda/orders", "stepshift/x", "", "arn:tally").await.unwrap_err();
            let (kind, service) = match &err {
                PortError::Invalid { service, .. } => ("invalid", service),
                PortError::Conflict { service, .. } => ("conflict", service),
                PortError::Throttled { service, .. } => ("throttled", service),
                PortError::NotFound { service, .. } => ("not found", service),
                PortError::Other { service, .. } => ("other", service),
                other => panic!("{code}: {other:?}"),
            };
            assert_eq!((kind, *service), (expected, Service::CloudWatchLogs), "{code}: {err}");
            assert_eq!(err.is_retryable(), matches!(expected, "conflict" | "throttled"), "{code}");
            assert!(err.to_string().contains(message), "{code}: {err}");
        }
        // The limit of two filters: the service's own words, not the SDK's wrapping.
        let rule = mock!(aws_sdk_cloudwatchlogs::Client::put_subscription_filter)
            .then_http_response(|| logs_error(400, "LimitExceededException", "Resource limit exceeded."));
        let aws = ports(&[], &[], &[&rule]);
        assert_eq!(
            aws.put_filter("/aws/lambda/orders", "stepshift/x", "", "arn:tally").await.unwrap_err(),
            PortError::Invalid { service: Service::CloudWatchLogs, message: "Resource limit exceeded.".into() }
        );
    }

    #[tokio::test]
    async fn filters_are_listed_over_every_page() {
        let first = mock!(aws_sdk_cloudwatchlogs::Client::describe_subscription_filters)
            .match_requests(|r| r.log_group_name() == Some("/aws/lambda/orders") && r.next_token().is_none())
            .then_output(|| {
                DescribeSubscriptionFiltersOutput::builder()
                    .subscription_filters(SubscriptionFilter::builder().filter_name("datadog").build())
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(aws_sdk_cloudwatchlogs::Client::describe_subscription_filters)
            .match_requests(|r| r.log_group_name() == Some("/aws/lambda/orders") && r.next_token() == Some("page-2"))
            .then_output(|| {
                DescribeSubscriptionFiltersOutput::builder()
                    .subscription_filters(
                        SubscriptionFilter::builder().filter_name("stepshift/orders/live/-/e").build(),
                    )
                    .build()
            });
        let missing = mock!(aws_sdk_cloudwatchlogs::Client::describe_subscription_filters)
            .match_requests(|r| r.log_group_name() == Some("/aws/lambda/nope"))
            .then_http_response(|| {
                logs_error(400, "ResourceNotFoundException", "The specified log group does not exist.")
            });
        let aws = ports(&[], &[], &[&first, &second, &missing]);
        assert_eq!(aws.filters("/aws/lambda/orders").await.unwrap(), ["datadog", "stepshift/orders/live/-/e"]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        let err = aws.filters("/aws/lambda/nope").await.unwrap_err();
        assert!(matches!(err, PortError::NotFound { service: Service::CloudWatchLogs, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn deleting_a_filter_that_is_gone_is_not_an_error() {
        let delete = mock!(aws_sdk_cloudwatchlogs::Client::delete_subscription_filter)
            .match_requests(|r| r.log_group_name() == Some("/aws/lambda/orders") && r.filter_name() == Some("mine"))
            .then_output(|| DeleteSubscriptionFilterOutput::builder().build());
        let gone = mock!(aws_sdk_cloudwatchlogs::Client::delete_subscription_filter)
            .match_requests(|r| r.filter_name() == Some("gone"))
            .then_http_response(|| {
                logs_error(400, "ResourceNotFoundException", "The specified subscription filter does not exist.")
            });
        let typed = mock!(aws_sdk_cloudwatchlogs::Client::delete_subscription_filter)
            .match_requests(|r| r.filter_name() == Some("typed"))
            .then_error(|| {
                DeleteSubscriptionFilterError::ResourceNotFoundException(ResourceNotFoundException::builder().build())
            });
        let busy = mock!(aws_sdk_cloudwatchlogs::Client::delete_subscription_filter)
            .match_requests(|r| r.filter_name() == Some("busy"))
            .then_http_response(|| logs_error(400, "OperationAbortedException", "try again"));
        let aws = ports(&[], &[], &[&delete, &gone, &typed, &busy]);
        aws.delete_filter("/aws/lambda/orders", "mine").await.unwrap();
        aws.delete_filter("/aws/lambda/orders", "gone").await.unwrap();
        aws.delete_filter("/aws/lambda/orders", "typed").await.unwrap();
        let err = aws.delete_filter("/aws/lambda/orders", "busy").await.unwrap_err();
        assert!(matches!(err, PortError::Conflict { .. }) && err.is_retryable(), "{err:?}");
        assert_eq!((delete.num_calls(), gone.num_calls(), typed.num_calls()), (1, 1, 1));
    }
}
