//! tally's handler on the in-memory ports: every input shape, told apart.

use serde_json::{Value, json};
use stepshift_core::memory::{Call, Fault, MemoryAws};
use stepshift_core::outcomes::{BucketCounts, OutcomeSeries, Source};
use stepshift_core::{PortError, Service, TaskError, Timestamp};

const TALLY: &str = "arn:aws:lambda:us-east-1:123456789012:function:stepshift-tally";
const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:stepshift:orders-42";
const T0: i64 = 1_795_550_400_000; // 2026-11-24T20:00:00Z

fn sample_text(name: &str) -> String {
    let path = format!("{}/tests/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn sample(name: &str) -> Value {
    serde_json::from_str(&sample_text(name)).unwrap()
}

/// A batch as CloudWatch Logs sends it.
fn awslogs(batch: &Value) -> Value {
    tally::logs::encode_payload(batch)
}

fn series(version: &str, source: Source) -> OutcomeSeries {
    OutcomeSeries { function: "orders".into(), alias: "live".into(), version: version.into(), source }
}

fn bucket(offset_secs: i64, invocations: u64, failures: u64, slow: u64) -> BucketCounts {
    BucketCounts { start: Timestamp::from_millis(T0 + offset_secs * 1000), invocations, failures, slow }
}

fn account() -> MemoryAws {
    let aws = MemoryAws::new(Timestamp::from_millis(T0 + 60_000));
    aws.add_function("orders", 42);
    aws
}

async fn handle(aws: &MemoryAws, input: Value) -> Result<Value, TaskError> {
    tally::handle(aws, TALLY, input).await
}

fn plan() -> Value {
    json!({
        "execution": EXECUTION,
        "started_at": "2026-11-24T20:00:00Z",
        "targets": [{
            "route": {"kind": "alias", "function": "orders", "alias": "live"},
            "stable": "41",
            "candidate": "42",
            "records_before": {},
            "history": {
                "start": "2026-11-24T19:00:00Z", "end": "2026-11-24T20:00:00Z", "minutes": 60,
                "errors": {"invocations": 6000, "events": 6}, "slow_above_ms": 249.5, "throttles": 0
            }
        }],
        "steps": [{"weight_percent": 10.0, "bake_seconds": 300, "approval": false},
                  {"weight_percent": 100.0, "bake_seconds": 0, "approval": false}],
        "health": {"fast_path": {"enabled": true, "check_interval_seconds": 20}},
        "lock_in_seconds": 300,
        "keep_versions": null,
        "approval_timeout_seconds": 86400
    })
}

#[tokio::test]
async fn a_log_batch_is_counted_in_ten_second_buckets_with_one_publish() {
    let aws = account();
    let summary = handle(&aws, awslogs(&sample("text-report-statuses.json"))).await.unwrap();
    assert_eq!(summary["input"], "logs");
    assert_eq!(summary["version"], "42");
    assert_eq!((summary["invocations"].as_u64(), summary["failures"].as_u64()), (Some(5), Some(3)));
    assert_eq!(summary["published"], true);
    // REPORTs at +0.343 s, +4.001 s, +9.1 s | +10.051 s, +11.812 s; slow above 250 ms.
    assert_eq!(aws.published(&series("42", Source::Logs)), [bucket(0, 3, 2, 2), bucket(10, 2, 1, 1)]);
    assert_eq!(aws.calls()[&Call::PutMetricData], 1);
}

#[tokio::test]
async fn a_redelivered_batch_adds_up_but_a_failed_publish_is_not_an_error() {
    let aws = account();
    let batch = awslogs(&sample("rust-text.json"));
    handle(&aws, batch.clone()).await.unwrap();
    let down = PortError::Unavailable { service: Service::CloudWatch, message: "503".into() };
    aws.inject(Call::PutMetricData, Fault::Fail(down));
    let summary = handle(&aws, batch).await.unwrap();
    assert_eq!(summary["published"], false);
    assert!(summary["error"].as_str().unwrap().contains("503"));
    assert_eq!(aws.published(&series("3", Source::Logs)), [bucket(0, 3, 2, 0)]);
}

#[tokio::test]
async fn batches_tally_does_not_count() {
    let aws = account();
    for (name, why) in [("control-message.json", "control"), ("latest.json", "published version")] {
        let summary = handle(&aws, awslogs(&sample(name))).await.unwrap();
        assert!(summary["skipped"].as_str().unwrap().contains(why), "{name}: {summary}");
    }
    let mut foreign = sample("text-report-statuses.json");
    foreign["subscriptionFilters"] = json!(["datadog-forwarder"]);
    let summary = handle(&aws, awslogs(&foreign)).await.unwrap();
    assert!(summary["skipped"].as_str().unwrap().contains("no stepshift subscription filter"));
    let mut shared = sample("text-report-statuses.json");
    shared["logStream"] = "2026/11/24/billing[42]0f1e2d3c".into();
    let summary = handle(&aws, awslogs(&shared)).await.unwrap();
    assert!(summary["skipped"].is_string(), "another function's stream in a shared group: {summary}");
    assert!(aws.published_series().is_empty());
    assert_eq!(aws.calls().get(&Call::PutMetricData), None);

    let e = handle(&aws, json!({"awslogs": {"data": "%%%"}})).await.unwrap_err();
    assert_eq!(e.name(), "InvalidTaskInput");
}

#[tokio::test]
async fn destination_events_count_for_their_alias() {
    let aws = account();
    let ok = handle(&aws, sample("destinations-success.json")).await.unwrap();
    assert_eq!((ok["input"].as_str(), ok["target"].as_str()), (Some("destinations"), Some("orders:live")));
    handle(&aws, sample("destinations-failure.json")).await.unwrap();
    assert_eq!(aws.published(&series("42", Source::Destinations)), [bucket(0, 1, 0, 0), bucket(200, 1, 1, 0)]);

    let mut by_version = sample("destinations-success.json");
    by_version["detail"]["requestContext"]["functionArn"] =
        "arn:aws:lambda:us-east-1:123456789012:function:orders:42".into();
    let skipped = handle(&aws, by_version).await.unwrap();
    assert!(skipped["skipped"].as_str().unwrap().contains("names no alias"));
    assert_eq!(aws.calls()[&Call::PutMetricData], 2);
}

#[tokio::test]
async fn start_and_stop_from_the_state_machine() {
    let aws = account();
    let fast = handle(&aws, json!({"action": "start", "plan": plan()})).await.unwrap();
    assert_eq!(fast["check_every_seconds"], 20);
    assert_eq!(fast["targets"][0]["live"], true);
    assert_eq!(fast["targets"][0]["log_group"], "/aws/lambda/orders");
    assert_eq!(aws.subscription_filters("/aws/lambda/orders"), ["stepshift/orders/live/250/orders-42"]);
    assert_eq!(
        aws.subscription_filter("/aws/lambda/orders", "stepshift/orders/live/250/orders-42").unwrap().destination_arn,
        TALLY
    );
    assert_eq!(aws.published(&series("41", Source::Logs)), [bucket(60, 0, 0, 0)]);

    let mut with_fast_path = plan();
    with_fast_path["fast_path"] = fast;
    let stopped = handle(&aws, json!({"action": "stop", "plan": with_fast_path})).await.unwrap();
    assert_eq!(stopped["removed"], json!(["stepshift/orders/live/250/orders-42"]));
    assert!(aws.subscription_filters("/aws/lambda/orders").is_empty());

    let e = handle(&aws, json!({"action": "begin", "plan": plan()})).await.unwrap_err();
    assert_eq!(e.name(), "InvalidTaskInput");
}

#[tokio::test]
async fn an_ended_execution_loses_its_filters() {
    let aws = account();
    handle(&aws, json!({"action": "start", "plan": plan()})).await.unwrap();
    aws.add_foreign_filter("/aws/lambda/orders", "datadog");
    let request =
        json!({"targets": [{"function": "orders", "alias": "live", "version": "42"}], "strategy": "canary-10-5m"});
    let event = |status: &str| {
        json!({
            "version": "0",
            "id": "315c1398-40ff-a850-213b-158f73e60175",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": "123456789012",
            "time": "2026-11-24T20:20:00Z",
            "region": "us-east-1",
            "resources": [EXECUTION],
            "detail": {
                "executionArn": EXECUTION,
                "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:stepshift",
                "name": "orders-42",
                "status": status,
                "startDate": 1795550400000_i64,
                "stopDate": null,
                "input": request.to_string(),
                "output": null
            }
        })
    };
    let running = handle(&aws, event("RUNNING")).await.unwrap();
    assert!(running["skipped"].is_string());
    assert_eq!(aws.subscription_filters("/aws/lambda/orders").len(), 2);

    let aborted = handle(&aws, event("ABORTED")).await.unwrap();
    assert_eq!(aborted["removed"], json!(["stepshift/orders/live/250/orders-42"]));
    assert_eq!(aws.subscription_filters("/aws/lambda/orders"), ["datadog"]);
    let again = handle(&aws, event("ABORTED")).await.unwrap();
    assert_eq!(again["removed"], json!([]));
}

#[tokio::test]
async fn anything_else_is_refused_with_a_clear_message() {
    let aws = account();
    for input in [json!({"hello": "world"}), json!([1, 2]), json!("awslogs"), json!({"source": "aws.states"})] {
        let e = handle(&aws, input.clone()).await.unwrap_err();
        assert_eq!(e.name(), "InvalidTaskInput", "{input}");
        assert!(e.to_string().contains("expected a CloudWatch Logs subscription batch"), "{e}");
    }
}
