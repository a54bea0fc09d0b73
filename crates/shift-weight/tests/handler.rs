//! shift-weight's handler on the in-memory ports: weights, drift, idempotency.

use serde_json::{Value, json};
use stepshift_core::memory::{Call, Fault, MemoryAws};
use stepshift_core::ports::AliasRouting;
use stepshift_core::tasks::TaskConfig;
use stepshift_core::{PortError, Service, TaskError, Timestamp};

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/shift-first-step.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// orders live → 41 at rev-1, billing live → 7 at rev-2.
fn account() -> MemoryAws {
    let aws = MemoryAws::new(Timestamp::parse_rfc3339("2026-11-24T20:00:05Z").unwrap());
    aws.add_function("orders", 42);
    aws.add_function("billing", 8);
    aws.put_alias("orders", "live", AliasRouting::single("41"));
    aws.put_alias("billing", "live", AliasRouting::single("7"));
    aws
}

async fn shift(aws: &MemoryAws, input: Value) -> Result<Value, TaskError> {
    shift_weight::handle(aws, &TaskConfig::default(), input).await
}

#[tokio::test]
async fn shifts_every_target_and_records_the_new_revisions() {
    let aws = account();
    let traffic = shift(&aws, fixture()).await.unwrap();
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::split("41", "42", 0.1));
    assert_eq!(aws.alias("billing", "live").unwrap().routing, AliasRouting::split("7", "8", 0.1));
    assert_eq!(traffic["weight_percent"], 10.0);
    assert_eq!(traffic["step_started_at"], "2026-11-24T20:00:05Z");
    assert_eq!(traffic["revisions"][0]["revision_id"], aws.alias("orders", "live").unwrap().revision_id);
    assert_eq!(traffic["revisions"][1]["revision_id"], aws.alias("billing", "live").unwrap().revision_id);

    // The next step starts from the returned traffic.
    let mut next = fixture();
    next["traffic"] = traffic;
    next["cursor"]["index"] = json!(1);
    next["cursor"]["weight_percent"] = json!(50.0);
    shift(&aws, next).await.unwrap();
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::split("41", "42", 0.5));
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_succeeds_without_writing_again() {
    let aws = account();
    // The write lands but its answer is lost (a crash or timeout after Lambda acted).
    aws.inject(
        Call::UpdateAlias,
        Fault::FailAfter(PortError::Unavailable { service: Service::Lambda, message: "timeout".into() }),
    );
    let err = shift(&aws, fixture()).await.unwrap_err();
    assert_eq!(err.name(), "AwsUnavailable");
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::split("41", "42", 0.1));

    // The state machine retries with the same input: the old revision no longer matches,
    // but the alias is already where this step wants it, so that is not drift.
    let updates = aws.calls()[&Call::UpdateAlias];
    let traffic = shift(&aws, fixture()).await.unwrap();
    assert_eq!(traffic["revisions"][0]["revision_id"], aws.alias("orders", "live").unwrap().revision_id);
    assert_eq!(aws.calls()[&Call::UpdateAlias], updates + 1, "only billing still needed its write");
}

#[tokio::test]
async fn a_persons_change_is_drift_and_nothing_is_overwritten() {
    let aws = account();
    aws.put_alias("orders", "live", AliasRouting::single("40"));
    let err = shift(&aws, fixture()).await.unwrap_err();
    assert_eq!(err.name(), "AliasDrift");
    assert_eq!(
        err.to_string(),
        "orders:live was changed outside this deployment: it routes version 40 (100%), where stepshift left version 41 (100%)"
    );
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::single("40"));
    assert_eq!(aws.calls().get(&Call::UpdateAlias), None, "no alias was written, billing included");
}

#[tokio::test]
async fn drift_on_a_later_target_stops_before_any_write() {
    let aws = account();
    aws.put_alias("billing", "live", AliasRouting::split("7", "6", 0.5));
    let err = shift(&aws, fixture()).await.unwrap_err();
    assert!(matches!(&err, TaskError::AliasDrift { function, .. } if function == "billing"), "{err:?}");
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::single("41"));
}

#[tokio::test]
async fn a_change_racing_the_write_is_drift() {
    let aws = account();
    aws.inject(
        Call::UpdateAlias,
        Fault::Fail(PortError::PreconditionFailed { service: Service::Lambda, message: "RevisionId mismatch".into() }),
    );
    let err = shift(&aws, fixture()).await.unwrap_err();
    assert_eq!(err.name(), "AliasDrift");
    assert!(err.to_string().contains("it changed while stepshift was updating it"), "{err}");
}

#[tokio::test]
async fn a_deleted_alias_is_drift() {
    let aws = account();
    let mut input = fixture();
    input["targets"][0]["route"]["alias"] = json!("gone");
    input["traffic"]["revisions"][0]["alias"] = json!("gone");
    let err = shift(&aws, input).await.unwrap_err();
    assert_eq!(err.name(), "AliasDrift");
    assert!(err.to_string().ends_with("the alias no longer exists"), "{err}");
}

#[tokio::test]
async fn throttling_is_retryable_and_changes_nothing() {
    let aws = account();
    aws.inject(
        Call::UpdateAlias,
        Fault::Fail(PortError::Throttled { service: Service::Lambda, message: "Rate exceeded".into() }),
    );
    let err = shift(&aws, fixture()).await.unwrap_err();
    assert_eq!(err.name(), "Throttled");
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::single("41"));
}

#[tokio::test]
async fn the_full_step_is_not_a_shift() {
    let aws = account();
    let mut input = fixture();
    input["cursor"]["weight_percent"] = json!(100.0);
    assert_eq!(shift(&aws, input).await.unwrap_err().name(), "InvalidTaskInput");
    let err = shift(&aws, json!({"targets": []})).await.unwrap_err();
    assert_eq!(err.name(), "InvalidTaskInput");
    assert_eq!(aws.writes(), 0);
}

const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:stepshift-deployment:orders-42";

#[tokio::test]
async fn a_shift_publishes_traffic_shifted_with_its_step_and_weight() {
    let aws = account();
    let mut input = fixture();
    input["execution"] = json!(EXECUTION);
    shift(&aws, input).await.unwrap();
    let events = aws.lifecycle_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail_type.as_str(), "Traffic Shifted");
    let d = serde_json::to_value(&events[0].detail).unwrap();
    assert_eq!(d["execution"], EXECUTION);
    assert_eq!((d["step"].clone(), d["weight_percent"].clone()), (json!(1), json!(10.0)));
    assert_eq!(d["at"], "2026-11-24T20:00:05Z");
    assert_eq!(d["targets"].as_array().unwrap().len(), 2);

    let quiet = account();
    shift(&quiet, fixture()).await.unwrap();
    assert!(quiet.lifecycle_events().is_empty(), "no execution to name, no event");
}

#[tokio::test]
async fn a_shift_whose_event_cannot_be_published_still_succeeds() {
    let aws = account();
    let down = PortError::Unavailable { service: Service::CloudWatch, message: "EventBridge is down".into() };
    aws.inject_at(Call::PutEvents, 1, Fault::Fail(down.clone()));
    aws.inject_at(Call::PutEvents, 2, Fault::Fail(down));
    let mut input = fixture();
    input["execution"] = json!(EXECUTION);
    let traffic = shift(&aws, input).await.unwrap();
    assert_eq!(traffic["weight_percent"], 10.0);
    assert_eq!(aws.calls()[&Call::PutEvents], 2, "tried, retried once, and gave up");
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::split("41", "42", 0.1));
}

#[tokio::test]
async fn a_refused_shift_publishes_nothing() {
    let aws = account();
    aws.put_alias("orders", "live", AliasRouting::single("40"));
    let mut input = fixture();
    input["execution"] = json!(EXECUTION);
    assert!(shift(&aws, input).await.is_err());
    assert_eq!(aws.calls().get(&Call::PutEvents), None);
}
