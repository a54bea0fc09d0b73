//! The EventBridge adapter (lifecycle events): its exact PutEvents requests and its
//! error classification, pinned with aws-smithy-mocks; then against ministack, where a
//! rule on a bus delivers stepshift's events to an SQS queue and the test reads them back.

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::config::http::HttpResponse;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};
use stepshift_aws::AwsPorts;
use stepshift_core::deployment::{PlannedTarget, Traffic};
use stepshift_core::events::{self, DetailType, LifecycleEvent};
use stepshift_core::ports::EventSink;
use stepshift_core::routers::Route;
use stepshift_core::routers::alias::AliasRoute;
use stepshift_core::{PortError, Timestamp};
use stepshift_testkit::Emulator;

mod common;

const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:stepshift-deployment:orders-42";
const BUS: &str = "stepshift-approvals";

fn at() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-24T20:05:00.250Z").unwrap()
}

fn targets() -> Vec<PlannedTarget> {
    let route = Route::Alias(AliasRoute { function: "orders".into(), alias: "live".into() });
    vec![PlannedTarget::new(route, "41", "42")]
}

/// The Promoted event of `execution`.
fn promoted(execution: &str) -> LifecycleEvent {
    let traffic =
        Traffic { weight_percent: 100.0, step_started_at: Some(at()), revisions: vec![], pending_changes: vec![] };
    events::promoted(execution, &targets(), &traffic, at())
}

fn ports(rules: &[&Rule], bus: Option<&str>) -> AwsPorts {
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, rules.iter().copied(), |c| c
        .retry_config(RetryConfig::disabled()));
    AwsPorts::new(&aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build())
        .with_events(client, bus.map(str::to_owned))
}

fn accepted(n: usize) -> PutEventsOutput {
    let entries = (0..n).map(|i| PutEventsResultEntry::builder().event_id(format!("id-{i}")).build());
    PutEventsOutput::builder().failed_entry_count(0).set_entries(Some(entries.collect())).build()
}

fn error(status: u16, code: &str) -> HttpResponse {
    let mut response = HttpResponse::new(
        status.try_into().unwrap(),
        SdkBody::from(format!(r#"{{"message":"{code} from the mock"}}"#)),
    );
    response.headers_mut().insert("x-amzn-errortype", code.to_owned());
    response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
    response
}

#[tokio::test]
async fn an_event_is_put_on_the_bus_with_source_detail_type_detail_resource_and_time() {
    let put = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r: &PutEventsInput| {
            let [e] = r.entries() else { return false };
            let detail: Value = serde_json::from_str(e.detail().unwrap_or("null")).unwrap();
            e.event_bus_name() == Some(BUS)
                && e.source() == Some("stepshift")
                && e.detail_type() == Some("Deployment Promoted")
                && e.resources() == [EXECUTION]
                && e.time() == Some(&aws_smithy_types::DateTime::from_millis(at().millis()))
                && detail
                    == json!({
                        "schema_version": 1,
                        "execution": EXECUTION,
                        "console_url": events::console_url(EXECUTION),
                        "targets": [{"target": "orders:live", "stable": "41", "candidate": "42"}],
                        "weight_percent": 100.0,
                        "at": "2026-11-24T20:05:00.25Z",
                    })
        })
        .then_output(|| accepted(1));
    let aws = ports(&[&put], Some(BUS));
    aws.publish(&[promoted(EXECUTION)]).await.unwrap();
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn more_than_ten_events_take_several_calls_in_order() {
    let first = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| r.entries().len() == 10 && r.entries()[0].resources() == ["exec-0"])
        .then_output(|| accepted(10));
    let rest = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| {
            let ids: Vec<&[String]> = r.entries().iter().map(|e| e.resources()).collect();
            ids == [["exec-10".to_owned()], ["exec-11".to_owned()]]
        })
        .then_output(|| accepted(2));
    let aws = ports(&[&first, &rest], Some(BUS));
    let many: Vec<LifecycleEvent> = (0..12).map(|i| promoted(&format!("exec-{i}"))).collect();
    aws.publish(&many).await.unwrap();
    assert_eq!((first.num_calls(), rest.num_calls()), (1, 1));
}

#[tokio::test]
async fn without_a_bus_nothing_is_put() {
    let put = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| accepted(1));
    let aws = ports(&[&put], None);
    aws.publish(&[promoted(EXECUTION)]).await.unwrap();
    assert_eq!(put.num_calls(), 0);
}

#[tokio::test]
async fn refused_entries_are_an_error_that_says_which_and_whether_a_retry_may_help() {
    let throttled = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(PutEventsResultEntry::builder().event_id("id-0").build())
            .entries(
                PutEventsResultEntry::builder()
                    .error_code("ThrottlingException")
                    .error_message("Rate exceeded")
                    .build(),
            )
            .build()
    });
    let aws = ports(&[&throttled], Some(BUS));
    let e = aws.publish(&[promoted("exec-0"), promoted("exec-1")]).await.unwrap_err();
    assert!(matches!(e, PortError::Throttled { .. }), "{e:?}");
    assert!(
        e.to_string().contains("refused 1 of 2 events: Deployment Promoted (ThrottlingException: Rate exceeded)"),
        "{e}"
    );

    let denied = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(PutEventsResultEntry::builder().error_code("AccessDeniedException").build())
            .build()
    });
    let aws = ports(&[&denied], Some(BUS));
    let e = aws.publish(&[promoted("exec-0")]).await.unwrap_err();
    assert!(matches!(e, PortError::Other { .. }) && !e.is_retryable(), "{e:?}");
}

#[tokio::test]
async fn service_errors_are_classified() {
    for (status, code, retryable) in [
        (400, "ThrottlingException", true),
        (500, "InternalException", true),
        (404, "ResourceNotFoundException", false),
    ] {
        let put = mock!(aws_sdk_eventbridge::Client::put_events).then_http_response(move || error(status, code));
        let aws = ports(&[&put], Some(BUS));
        let e = aws.publish(&[promoted(EXECUTION)]).await.unwrap_err();
        assert_eq!(e.is_retryable(), retryable, "{code}: {e:?}");
    }
}

#[tokio::test]
async fn the_best_effort_publish_never_fails_and_retries_once() {
    let put = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| r.entries().len() == 1)
        .then_http_response(|| error(500, "InternalException"));
    let aws = ports(&[&put], Some(BUS));
    events::publish(&aws, &[promoted(EXECUTION)]).await;
    assert_eq!(put.num_calls(), 2, "one retry");
}

// ministack: a bus, a rule for every stepshift lifecycle event, an SQS queue.

/// A name no other test in this process uses.
fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A bus whose rule sends the events matching `pattern` to a new queue; the queue's URL.
async fn bus_to_queue(config: &aws_config::SdkConfig, bus: &str, pattern: Value) -> String {
    let eb = aws_sdk_eventbridge::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    eb.create_event_bus().name(bus).send().await.expect("create_event_bus");
    let queue_url =
        sqs.create_queue().queue_name(unique("events")).send().await.unwrap().queue_url().unwrap().to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap();
    let rule = unique("lifecycle");
    eb.put_rule().name(&rule).event_bus_name(bus).event_pattern(pattern.to_string()).send().await.expect("put_rule");
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .expect("put_targets");
    queue_url
}

/// Every message on the queue until `n` arrived or `within` passed, as JSON.
async fn drain(config: &aws_config::SdkConfig, queue_url: &str, n: usize, within: Duration) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        let out =
            sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).wait_time_seconds(1).send().await;
        for m in out.unwrap().messages() {
            got.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message().queue_url(queue_url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn ministack_delivers_the_events_a_rule_matches_to_a_queue() {
    let config = common::config(Emulator::shared_ministack()).await;
    let bus = unique("bus");
    let every: Vec<&str> = DetailType::ALL.iter().map(|d| d.as_str()).collect();
    let queue = bus_to_queue(&config, &bus, json!({"source": [events::SOURCE], "detail-type": every})).await;
    let aws = AwsPorts::new(&config).with_events(aws_sdk_eventbridge::Client::new(&config), Some(bus.clone()));

    // Twelve events (two PutEvents calls), and one the rule does not match.
    let mut sent: Vec<LifecycleEvent> = (0..12).map(|i| promoted(&format!("{EXECUTION}-{i}"))).collect();
    sent[3].detail_type = DetailType::TrafficShifted;
    sent[7].detail_type = DetailType::DeploymentRolledBack;
    sent[7].detail.error = Some("Unhealthy".into());
    sent[7].detail.cause = Some("the candidate was unhealthy at step 1 of 2 (10%): errors".into());
    aws.publish(&sent).await.expect("put_events");
    let other = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(&bus)
        .source("someone-else")
        .detail_type("Deployment Promoted")
        .detail("{}")
        .build();
    aws_sdk_eventbridge::Client::new(&config).put_events().entries(other).send().await.unwrap();

    let mut got = drain(&config, &queue, sent.len() + 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), sent.len(), "every stepshift event, and only those: {got:#?}");
    got.sort_by_key(|e| e["detail"]["execution"].as_str().unwrap().rsplit('-').next().unwrap().parse::<u32>().unwrap());
    for (e, s) in got.iter().zip(&sent) {
        assert_eq!(e["source"], "stepshift");
        assert_eq!(e["detail-type"], s.detail_type.as_str());
        assert_eq!(e["detail"], serde_json::to_value(&s.detail).unwrap(), "the detail arrives as it was sent");
    }
    eprintln!("an event as the queue received it: {:#}", got[7]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_on_one_detail_type_and_a_detail_field_gets_only_those() {
    let config = common::config(Emulator::shared_ministack()).await;
    let bus = unique("bus");
    let pattern = json!({
        "source": ["stepshift"],
        "detail-type": ["Deployment Rolled Back"],
        "detail": {"error": ["Unhealthy"]}
    });
    let queue = bus_to_queue(&config, &bus, pattern).await;
    let aws = AwsPorts::new(&config).with_events(aws_sdk_eventbridge::Client::new(&config), Some(bus));
    let mut unhealthy = promoted(EXECUTION);
    unhealthy.detail_type = DetailType::DeploymentRolledBack;
    unhealthy.detail.error = Some("Unhealthy".into());
    let mut aborted = unhealthy.clone();
    aborted.detail.error = Some("Aborted".into());
    aws.publish(&[promoted(EXECUTION), aborted, unhealthy]).await.unwrap();
    let got = drain(&config, &queue, 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["detail"]["error"], "Unhealthy");
}
