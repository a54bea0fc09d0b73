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
use stepshift_core::ports::{AliasRouter, AliasRouting, MetricQuery, MetricSeriesKey, MetricsSource, ParameterStore};
use stepshift_core::{PortError, Timestamp};

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
    let query = MetricQuery { series, slow_above_ms: Some(181.25), limit_ms: Some(800.0) };
    let start = Timestamp::from_secs(1_800_000_000);
    let got = aws.fetch(&[query], start, start.plus_secs(300)).await.unwrap();
    assert_eq!(get.num_calls(), 1);
    let t = got[0].totals();
    assert_eq!((t.invocations, t.durations, t.slow, t.over_limit), (600, 600, 42, 2));
}

#[tokio::test]
async fn deleting_a_missing_parameter_is_not_an_error() {
    let delete = mock!(aws_sdk_ssm::Client::delete_parameter)
        .then_error(|| DeleteParameterError::ParameterNotFound(ParameterNotFound::builder().build()));
    let aws = ports(&[], &[], &[&delete]);
    aws.delete("/stepshift/orders/live/lock").await.unwrap();
    assert_eq!(delete.num_calls(), 1);
}
