//! rollback's handler on the in-memory ports: idempotent, and never overwriting a
//! person's change.

use serde_json::Value;
use stepshift_core::memory::{Call, Fault, MemoryAws};
use stepshift_core::ports::AliasRouting;
use stepshift_core::tasks::TaskConfig;
use stepshift_core::{PortError, Service, TaskError, Timestamp};

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/rollback-at-canary.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Both aliases at 10% on their candidates.
fn account() -> MemoryAws {
    let aws = MemoryAws::new(Timestamp::parse_rfc3339("2026-11-24T20:03:00Z").unwrap());
    aws.add_function("orders", 42);
    aws.add_function("billing", 8);
    aws.put_alias("orders", "live", AliasRouting::split("41", "42", 0.1));
    aws.put_alias("billing", "live", AliasRouting::split("7", "8", 0.1));
    aws
}

async fn rollback(aws: &MemoryAws) -> Result<Value, TaskError> {
    rollback::handle(aws, &TaskConfig::default(), fixture()).await
}

fn actions(report: &Value) -> Vec<&str> {
    report["targets"].as_array().unwrap().iter().map(|t| t["action"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn restores_stable_and_is_idempotent() {
    let aws = account();
    let report = rollback(&aws).await.unwrap();
    assert_eq!(actions(&report), ["restored", "restored"]);
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::single("41"));
    assert_eq!(aws.alias("billing", "live").unwrap().routing, AliasRouting::single("7"));

    let again = rollback(&aws).await.unwrap();
    assert_eq!(actions(&again), ["already_stable", "already_stable"]);
}

#[tokio::test]
async fn restores_after_promotion_too() {
    let aws = account();
    aws.put_alias("orders", "live", AliasRouting::single("42"));
    let report = rollback(&aws).await.unwrap();
    assert_eq!(actions(&report), ["restored", "restored"]);
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::single("41"));
}

#[tokio::test]
async fn an_alias_a_person_moved_elsewhere_is_left_alone() {
    let aws = account();
    aws.put_alias("billing", "live", AliasRouting::single("5"));
    let report = rollback(&aws).await.unwrap();
    assert_eq!(actions(&report), ["restored", "left_alone"]);
    assert_eq!(aws.alias("billing", "live").unwrap().routing, AliasRouting::single("5"));
    assert_eq!(report["targets"][1]["now"], "version 5 (100%)");
}

#[tokio::test]
async fn a_weight_a_person_changed_between_our_versions_is_still_rolled_back() {
    let aws = account();
    aws.put_alias("orders", "live", AliasRouting::split("41", "42", 0.6));
    let report = rollback(&aws).await.unwrap();
    assert_eq!(actions(&report)[0], "restored");
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::single("41"));
}

#[tokio::test]
async fn a_change_racing_the_rollback_is_read_again() {
    let aws = account();
    aws.inject(
        Call::UpdateAlias,
        Fault::Fail(PortError::PreconditionFailed { service: Service::Lambda, message: "RevisionId mismatch".into() }),
    );
    let report = rollback(&aws).await.unwrap();
    assert_eq!(actions(&report), ["restored", "restored"]);
    assert_eq!(aws.calls()[&Call::GetAlias], 3, "orders was read twice");
}

#[tokio::test]
async fn throttling_is_reported_for_the_state_machine_to_retry() {
    let aws = account();
    aws.inject(
        Call::UpdateAlias,
        Fault::Fail(PortError::Throttled { service: Service::Lambda, message: "Rate exceeded".into() }),
    );
    assert_eq!(rollback(&aws).await.unwrap_err().name(), "Throttled");
    let report = rollback(&aws).await.unwrap();
    assert_eq!(actions(&report), ["restored", "restored"]);
}

/// The fixture as "Roll back" gets it from the state machine: with the execution, and
/// the plan, progress and failure that say why.
fn with_why(failure: serde_json::Value) -> Value {
    let mut input = fixture();
    let targets = input["targets"].clone();
    input["execution"] = serde_json::json!("arn:aws:states:us-east-1:123456789012:execution:sm:orders-42");
    input["plan"] = serde_json::json!({
        "execution": "arn:aws:states:us-east-1:123456789012:execution:sm:orders-42",
        "started_at": "2026-11-24T20:00:00Z",
        "targets": targets,
        "steps": [
            {"weight_percent": 10.0, "bake_seconds": 300, "approval": false},
            {"weight_percent": 100.0, "bake_seconds": 0, "approval": false}
        ],
        "health": {},
        "lock_in_seconds": 600,
        "keep_versions": null,
        "approval_timeout_seconds": 3600
    });
    input["progress"] = serde_json::json!({
        "cursor": {"index": 0, "weight_percent": 10.0, "approval": false, "promote": false, "wait_seconds": 60, "extensions_used": 0},
        "decision": "advance",
        "verdict": null,
        "steps": []
    });
    input["failure"] = failure;
    input
}

#[tokio::test]
async fn a_rollback_publishes_why() {
    let aws = account();
    let drift = serde_json::json!({"Error": "AliasDrift", "Cause": "{\"errorType\":\"AliasDrift\",\"errorMessage\":\"billing:live was changed\"}"});
    rollback::handle(&aws, &TaskConfig::default(), with_why(drift)).await.unwrap();
    let events = aws.lifecycle_events();
    assert_eq!(events.len(), 1);
    let d = &events[0].detail;
    assert_eq!(events[0].detail_type.as_str(), "Deployment Rolled Back");
    assert_eq!((d.error.as_deref(), d.cause.as_deref()), (Some("AliasDrift"), Some("billing:live was changed")));
    assert_eq!((d.step, d.steps, d.weight_percent), (Some(1), Some(2), Some(10.0)));
}

#[tokio::test]
async fn a_rollback_that_fails_for_good_publishes_deployment_failed_and_still_fails() {
    let aws = account();
    let denied = PortError::Other { service: Service::Lambda, message: "AccessDeniedException".into() };
    aws.inject(Call::UpdateAlias, Fault::Fail(denied));
    let e = rollback::handle(&aws, &TaskConfig::default(), with_why(Value::Null)).await.unwrap_err();
    assert_eq!(e.name(), "AwsError", "the state machine still sees the failure");
    let events = aws.lifecycle_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail_type.as_str(), "Deployment Failed");
    assert_eq!(events[0].detail.error.as_deref(), Some("RollbackFailed"));
    let cause = events[0].detail.cause.as_deref().unwrap();
    assert!(cause.contains("stepshift rollback --function orders --alias live --to 41"), "{cause}");
}

#[tokio::test]
async fn a_rollback_the_state_machine_retries_publishes_nothing_yet() {
    let aws = account();
    aws.inject(
        Call::UpdateAlias,
        Fault::Fail(PortError::Throttled { service: Service::Lambda, message: "Rate exceeded".into() }),
    );
    let e = rollback::handle(&aws, &TaskConfig::default(), with_why(Value::Null)).await.unwrap_err();
    assert_eq!(e.name(), "Throttled");
    assert!(aws.lifecycle_events().is_empty());
}
