//! promote's handler on the in-memory ports.

use serde_json::Value;
use stepshift_core::memory::{Call, MemoryAws};
use stepshift_core::ports::AliasRouting;
use stepshift_core::tasks::TaskConfig;
use stepshift_core::{TaskError, Timestamp};

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/promote-after-canary.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// orders live at 10% on 42 (rev-2), as the canary step left it.
fn account() -> MemoryAws {
    let aws = MemoryAws::new(Timestamp::parse_rfc3339("2026-11-24T20:05:10Z").unwrap());
    aws.add_function("orders", 42);
    aws.put_alias("orders", "live", AliasRouting::single("41"));
    aws.put_alias("orders", "live", AliasRouting::split("41", "42", 0.1));
    aws
}

async fn promote(aws: &MemoryAws, input: Value) -> Result<Value, TaskError> {
    promote::handle(aws, &TaskConfig::default(), input).await
}

#[tokio::test]
async fn gives_the_candidate_everything_and_clears_the_routing() {
    let aws = account();
    let traffic = promote(&aws, fixture()).await.unwrap();
    let alias = aws.alias("orders", "live").unwrap();
    assert_eq!(alias.routing, AliasRouting::single("42"));
    assert_eq!(traffic["weight_percent"], 100.0);
    assert_eq!(traffic["step_started_at"], "2026-11-24T20:05:10Z");
    assert_eq!(traffic["revisions"][0]["revision_id"], alias.revision_id);

    let writes = aws.writes();
    promote(&aws, fixture()).await.unwrap();
    assert_eq!(aws.writes(), writes, "promoting twice writes once");
}

#[tokio::test]
async fn drift_stops_the_promotion() {
    let aws = account();
    aws.put_alias("orders", "live", AliasRouting::split("41", "42", 0.5));
    let err = promote(&aws, fixture()).await.unwrap_err();
    assert_eq!(err.name(), "AliasDrift");
    assert_eq!(aws.alias("orders", "live").unwrap().routing, AliasRouting::split("41", "42", 0.5));
    assert_eq!(aws.calls().get(&Call::UpdateAlias), None);
}

#[tokio::test]
async fn a_promotion_publishes_deployment_promoted() {
    let aws = account();
    let mut input = fixture();
    input["execution"] = serde_json::json!("arn:aws:states:us-east-1:123456789012:execution:sm:orders-42");
    promote(&aws, input).await.unwrap();
    let events = aws.lifecycle_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail_type.as_str(), "Deployment Promoted");
    assert_eq!(events[0].detail.weight_percent, Some(100.0));
    assert_eq!(events[0].detail.at, Timestamp::parse_rfc3339("2026-11-24T20:05:10Z").unwrap());
    assert_eq!(events[0].detail.targets[0].target, "orders:live");
}
