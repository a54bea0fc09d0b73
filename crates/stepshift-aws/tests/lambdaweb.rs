//! The Lambda Web adapter's exact requests, its reading of answers, and its error
//! classification, pinned with aws-smithy-mocks. No emulator serves the `lambda-web`
//! API, so these mocks, with answers written as the service's JSON, are what stands
//! between the adapter and AWS; nothing here has been run against AWS itself.

use aws_sdk_lambdaweb::config::http::HttpResponse;
use aws_sdk_lambdaweb::config::retry::RetryConfig;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::body::SdkBody;
use stepshift_aws::AwsPorts;
use stepshift_core::PortError;
use stepshift_core::routers::web::{
    DeploymentMode, EndpointState, RevisionState, RevisionWeight, UpdateStatus, WebEndpoints,
};

fn ports(rules: &[&Rule]) -> AwsPorts {
    let client = mock_client!(aws_sdk_lambdaweb, RuleMode::MatchAny, rules.iter().copied(), |c| c
        .retry_config(RetryConfig::disabled()));
    AwsPorts::new(&aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build())
        .with_lambdaweb(client)
}

fn json(status: u16, body: &str) -> HttpResponse {
    let mut response = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.to_owned()));
    response.headers_mut().insert("content-type", "application/json");
    response
}

fn error(status: u16, code: &str) -> HttpResponse {
    let mut response = json(status, &format!(r#"{{"message":"{code} from the mock"}}"#));
    response.headers_mut().insert("x-amzn-errortype", code.to_owned());
    response
}

/// An endpoint as GetWebFunctionEndpoint and UpdateWebFunctionEndpoint answer it.
fn endpoint(mode: &str, weights: &str, status: &str) -> String {
    format!(
        r#"{{"functionArn":"arn:aws:lambda:us-east-1:123456789012:web-function/orders-web",
            "endpointArn":"arn:aws:lambda:us-east-1:123456789012:web-function/orders-web/endpoint/live",
            "endpointName":"live","endpointType":"HomeRegion","domainName":"live.example.on.aws",
            "authType":"ApplicationManaged","autoDeploymentMode":"{mode}","revisionWeights":{weights},
            "regions":["us-east-1"],"state":"Active","stateReason":"","regionalEndpoints":{{}},
            "createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"{status}}}"#
    )
}

fn w(revision: &str, weight: u8) -> RevisionWeight {
    RevisionWeight { revision: revision.into(), weight }
}

#[tokio::test]
async fn an_endpoint_is_read_with_its_mode_weights_and_update_status() {
    let get = mock!(aws_sdk_lambdaweb::Client::get_web_function_endpoint)
        .match_requests(|r| r.function_name() == Some("orders-web") && r.endpoint_name() == Some("live"))
        .then_http_response(|| {
            json(
                200,
                &endpoint(
                    "Disabled",
                    r#"[{"revisionId":"rev-1","weight":90},{"revisionId":"rev-2","weight":10}]"#,
                    r#","updateStatus":"InProgress""#,
                ),
            )
        });
    let aws = ports(&[&get]);
    let got = aws.get_endpoint("orders-web", "live").await.unwrap();
    assert_eq!(
        got,
        EndpointState {
            mode: DeploymentMode::Disabled,
            weights: vec![w("rev-1", 90), w("rev-2", 10)],
            update: UpdateStatus::InProgress,
        }
    );
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn a_failed_update_carries_its_reason_and_a_missing_status_is_none() {
    let failed = mock!(aws_sdk_lambdaweb::Client::get_web_function_endpoint)
        .match_requests(|r| r.endpoint_name() == Some("live"))
        .then_http_response(|| {
            json(
                200,
                &endpoint(
                    "LatestRevision",
                    r#"[{"revisionId":"rev-1","weight":100}]"#,
                    r#","updateStatus":"Failed","updateStatusReason":"revision rev-2 is not Active""#,
                ),
            )
        });
    let quiet = mock!(aws_sdk_lambdaweb::Client::get_web_function_endpoint)
        .match_requests(|r| r.endpoint_name() == Some("quiet"))
        .then_http_response(|| json(200, &endpoint("Disabled", r#"[{"revisionId":"rev-1","weight":100}]"#, "")));
    let aws = ports(&[&failed, &quiet]);
    let got = aws.get_endpoint("orders-web", "live").await.unwrap();
    assert_eq!(got.mode, DeploymentMode::LatestRevision);
    assert_eq!(got.update, UpdateStatus::Failed("revision rev-2 is not Active".into()));
    assert_eq!(aws.get_endpoint("orders-web", "quiet").await.unwrap().update, UpdateStatus::None);
}

#[tokio::test]
async fn an_update_sends_the_weights_and_nothing_else() {
    let update = mock!(aws_sdk_lambdaweb::Client::update_web_function_endpoint)
        .match_requests(|r| {
            let weights: Vec<(&str, i32)> =
                r.revision_weights().iter().map(|w| (w.revision_id(), w.weight())).collect();
            r.function_name() == Some("orders-web")
                && r.endpoint_name() == Some("live")
                && weights == [("rev-1", 90), ("rev-2", 10)]
                && r.auto_deployment_mode().is_none()
                && r.description().is_none()
                && r.auth_type().is_none()
                && r.scaling_config().is_none()
                && r.throttle_config().is_none()
        })
        .then_http_response(|| {
            json(
                202,
                &endpoint(
                    "Disabled",
                    r#"[{"revisionId":"rev-1","weight":90},{"revisionId":"rev-2","weight":10}]"#,
                    r#","updateStatus":"InProgress""#,
                ),
            )
        });
    let aws = ports(&[&update]);
    let got = aws.update_weights("orders-web", "live", &[w("rev-1", 90), w("rev-2", 10)]).await.unwrap();
    assert_eq!(got.update, UpdateStatus::InProgress);
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn a_revision_state_is_read() {
    let get = mock!(aws_sdk_lambdaweb::Client::get_web_function_revision)
        .match_requests(|r| r.function_name() == Some("orders-web") && r.revision_id() == Some("rev-2"))
        .then_http_response(|| {
            json(
                200,
                r#"{"functionArn":"arn:aws:lambda:us-east-1:123456789012:web-function/orders-web",
                    "revisionArn":"arn:aws:lambda:us-east-1:123456789012:web-function/orders-web/revision/rev-2",
                    "revisionId":"rev-2","state":"Pending","stateReason":"building","createdAt":"2026-01-01T00:00:00Z"}"#,
            )
        });
    let aws = ports(&[&get]);
    assert_eq!(aws.revision_state("orders-web", "rev-2").await.unwrap(), RevisionState::Pending);
}

#[tokio::test]
async fn lambda_web_errors_are_classified_for_retry() {
    let cases = [
        (409, "ConflictException", "conflict"),
        (429, "ThrottlingException", "throttled"),
        (500, "InternalServerException", "unavailable"),
        (404, "ResourceNotFoundException", "not found"),
        (400, "ValidationException", "invalid"),
        (403, "AccessDeniedException", "other"),
    ];
    for (status, code, want) in cases {
        let rule = mock!(aws_sdk_lambdaweb::Client::update_web_function_endpoint)
            .then_http_response(move || error(status, code));
        let aws = ports(&[&rule]);
        let e = aws.update_weights("orders-web", "live", &[w("rev-1", 100)]).await.unwrap_err();
        let got = match e {
            PortError::Conflict { .. } => "conflict",
            PortError::Throttled { .. } => "throttled",
            PortError::Unavailable { .. } => "unavailable",
            PortError::NotFound { .. } => "not found",
            PortError::Invalid { .. } => "invalid",
            _ => "other",
        };
        assert_eq!(got, want, "{code}: {e}");
        assert_eq!(e.is_retryable(), matches!(want, "conflict" | "throttled" | "unavailable"), "{code}");
    }
}
