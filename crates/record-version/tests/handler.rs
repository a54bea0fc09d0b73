//! record-version's handler on the in-memory ports: begin (validation, locks, plans),
//! the outcome records, pruning and lock release.

use serde_json::{Value, json};
use stepshift_core::memory::{Call, MemoryAws};
use stepshift_core::ports::{AlarmValue, AliasRouting};
use stepshift_core::tasks::TaskConfig;
use stepshift_core::{TaskError, Timestamp};

const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:stepshift:orders-42";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// orders (versions 1-42, live → 41) and billing (1-8, live → 7), alarm orders-5xx OK.
fn account() -> MemoryAws {
    let aws = MemoryAws::new(Timestamp::parse_rfc3339("2026-11-24T20:00:01Z").unwrap());
    aws.add_function("orders", 42);
    aws.put_alias("orders", "live", AliasRouting::single("41"));
    aws.add_function("billing", 8);
    aws.put_alias("billing", "live", AliasRouting::single("7"));
    aws.set_alarm("orders-5xx", AlarmValue::Ok);
    aws
}

async fn call(aws: &MemoryAws, input: Value) -> Result<Value, TaskError> {
    record_version::handle(aws, &TaskConfig::default(), input).await
}

fn field_names(e: &TaskError) -> Vec<String> {
    match e {
        TaskError::InvalidRequest(f) => f.0.iter().map(|e| e.field.clone()).collect(),
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn begin_plans_locks_and_records_the_start() {
    let aws = account();
    let state = call(&aws, fixture("begin-canary.json")).await.unwrap();
    let target = &state["plan"]["targets"][0];
    assert_eq!((target["stable"].as_str(), target["candidate"].as_str()), (Some("41"), Some("42")));
    assert_eq!(state["plan"]["steps"].as_array().unwrap().len(), 2);
    assert_eq!(state["progress"]["decision"], "advance");
    assert_eq!(state["progress"]["cursor"]["weight_percent"], 10.0);
    assert_eq!(state["traffic"]["revisions"][0]["revision_id"], aws.alias("orders", "live").unwrap().revision_id);
    assert_eq!(state["failure"], Value::Null);

    let lock: Value = serde_json::from_str(&aws.parameter("/stepshift/orders/live/lock").unwrap()).unwrap();
    assert_eq!(lock["execution"], EXEC);
    let history: Value = serde_json::from_str(&aws.parameter("/stepshift/orders/live/history").unwrap()).unwrap();
    assert_eq!(history[0]["event"], "started");
    assert_eq!(aws.calls().get(&Call::UpdateAlias), None, "begin never moves traffic");
}

#[tokio::test]
async fn begin_retried_by_the_same_execution_succeeds() {
    let aws = account();
    call(&aws, fixture("begin-canary.json")).await.unwrap();
    call(&aws, fixture("begin-canary.json")).await.unwrap();
    let history: Value = serde_json::from_str(&aws.parameter("/stepshift/orders/live/history").unwrap()).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1, "the start is recorded once");
}

#[tokio::test]
async fn a_second_deployment_of_the_alias_is_rejected_naming_the_holder() {
    let aws = account();
    call(&aws, fixture("begin-canary.json")).await.unwrap();
    let mut other = fixture("begin-canary.json");
    other["execution"] = json!("arn:aws:states:us-east-1:123456789012:execution:stepshift:orders-43");
    other["request"]["targets"][0]["version"] = json!("40");
    let err = call(&aws, other).await.unwrap_err();
    assert_eq!(err.name(), "DeploymentInProgress");
    assert!(err.to_string().contains(EXEC), "{err}");
    let lock: Value = serde_json::from_str(&aws.parameter("/stepshift/orders/live/lock").unwrap()).unwrap();
    assert_eq!(lock["execution"], EXEC, "the holder keeps its lock");
}

#[tokio::test]
async fn multi_target_begin_takes_every_lock_or_none() {
    let aws = account();
    let state = call(&aws, fixture("begin-release.json")).await.unwrap();
    let targets = state["plan"]["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!((targets[1]["stable"].as_str(), targets[1]["candidate"].as_str()), (Some("7"), Some("8")));
    assert!(aws.parameter("/stepshift/orders/live/lock").is_some());
    assert!(aws.parameter("/stepshift/billing/live/lock").is_some());
    assert_eq!(state["plan"]["steps"][1]["approval"], true);

    // orders is free, billing is held by someone else: nothing may stay locked.
    let aws = account();
    aws.put_parameter(
        "/stepshift/orders/live/lock",
        r#"{"execution":"other","candidate":"40","acquired_at":"2026-11-24T19:00:00Z"}"#,
    );
    let mut release = fixture("begin-release.json");
    release["request"]["targets"] = json!([
        {"function": "orders", "alias": "live", "version": "42"},
        {"function": "billing", "alias": "live", "version": "8"}
    ]);
    // billing sorts first, so it is locked before orders is refused.
    let err = call(&aws, release).await.unwrap_err();
    assert_eq!(err.name(), "DeploymentInProgress");
    assert!(aws.parameter("/stepshift/billing/live/lock").is_none(), "the lock taken first was released");
}

#[tokio::test]
async fn invalid_requests_name_every_field_and_write_nothing() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("targets[0].function", Box::new(|r| r["targets"][0]["function"] = json!("nope"))),
        ("targets[0].alias", Box::new(|r| r["targets"][0]["alias"] = json!("staging"))),
        ("targets[0].version", Box::new(|r| r["targets"][0]["version"] = json!("99"))),
        ("targets[0].version", Box::new(|r| r["targets"][0]["version"] = json!("41"))),
        ("health.alarms[0]", Box::new(|r| r["health"]["alarms"] = json!(["no-such-alarm"]))),
        ("strategy", Box::new(|r| r["strategy"] = json!("canary-10-1h"))),
        ("schema", Box::new(|r| r["schema"] = json!(3))),
    ];
    for (field, edit) in cases {
        let aws = account();
        let mut input = fixture("begin-canary.json");
        edit(&mut input["request"]);
        let err = call(&aws, input).await.unwrap_err();
        assert_eq!(field_names(&err), [field], "{err}");
        assert_eq!(aws.writes(), 0, "{field}: a rejected request must change nothing");
    }
}

#[tokio::test]
async fn an_alias_that_already_splits_traffic_is_refused() {
    let aws = account();
    aws.put_alias("orders", "live", AliasRouting::split("41", "40", 0.2));
    let err = call(&aws, fixture("begin-canary.json")).await.unwrap_err();
    assert_eq!(field_names(&err), ["targets[0].alias"]);
    assert!(err.to_string().contains("already splits traffic: version 41 (80%) + version 40 (20%)"), "{err}");
    assert_eq!(aws.writes(), 0);
}

#[tokio::test]
async fn throttling_while_resolving_is_retryable_and_writes_nothing() {
    let aws = account();
    aws.inject(
        Call::GetAlias,
        stepshift_core::memory::Fault::Fail(stepshift_core::PortError::Throttled {
            service: stepshift_core::Service::Lambda,
            message: "Rate exceeded".into(),
        }),
    );
    let err = call(&aws, fixture("begin-canary.json")).await.unwrap_err();
    assert_eq!(err.name(), "Throttled");
    assert_eq!(aws.writes(), 0);
}

async fn begun(aws: &MemoryAws) -> Value {
    call(aws, fixture("begin-canary.json")).await.unwrap()
}

#[tokio::test]
async fn promotion_then_confirmation_records_versions_prunes_and_unlocks() {
    let aws = account();
    aws.put_parameter("/stepshift/orders/live/last-known-good-version", "38");
    let state = begun(&aws).await;
    aws.put_alias("orders", "live", AliasRouting::single("42"));
    aws.put_alias("orders", "canary", AliasRouting::single("3"));

    call(&aws, json!({"action": "promoted", "plan": state["plan"]})).await.unwrap();
    assert_eq!(aws.parameter("/stepshift/orders/live/current-version").as_deref(), Some("42"));
    assert_eq!(aws.parameter("/stepshift/orders/live/previous-version").as_deref(), Some("41"));
    let stamped = aws.parameter("/stepshift/orders/live/deployment-timestamp").unwrap();

    aws.advance(600);
    let released =
        call(&aws, json!({"action": "confirmed", "plan": state["plan"], "progress": state["progress"]})).await.unwrap();
    assert_eq!(released["status"], "promoted");
    assert_eq!(released["summary"], "Released: orders:live now serves version 42 (was version 41).");
    assert_eq!(aws.parameter("/stepshift/orders/live/last-known-good-version").as_deref(), Some("42"));
    assert_eq!(aws.parameter("/stepshift/orders/live/deployment-timestamp"), Some(stamped), "promotion time is kept");
    assert!(aws.parameter("/stepshift/orders/live/lock").is_none());
    // keep 3 newest (42, 41, 40); protected: 38 (last-known-good before this release)
    // and 3 (routed by another alias). That leaves 37 to prune: the oldest 20 go now,
    // so that one release cannot burst Lambda's shared control-plane budget.
    let pruned: Vec<&str> =
        released["targets"][0]["pruned"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(pruned.len(), 20);
    assert_eq!(pruned[..3], ["1", "2", "4"], "oldest first, skipping the protected 3");
    assert!(released["warnings"][0].as_str().unwrap().contains("37 versions to prune"), "{}", released["warnings"]);
    assert_eq!(aws.versions("orders").len(), 22);

    // Confirming again (a retry after a crash) still succeeds, and prunes the rest.
    call(&aws, json!({"action": "confirmed", "plan": state["plan"], "progress": state["progress"]})).await.unwrap();
    let left = aws.versions("orders");
    assert_eq!(left, [3, 38, 40, 41, 42]);
    call(&aws, json!({"action": "confirmed", "plan": state["plan"], "progress": state["progress"]})).await.unwrap();
    assert_eq!(aws.versions("orders"), left, "nothing more to prune");
}

#[tokio::test]
async fn a_throttled_prune_stops_with_a_warning_and_the_release_is_confirmed() {
    use stepshift_core::memory::quota::{LAMBDA_CONTROL_PLANE, Quota};
    let aws = account();
    let state = begun(&aws).await;
    aws.put_alias("orders", "live", AliasRouting::single("42"));
    call(&aws, json!({"action": "promoted", "plan": state["plan"]})).await.unwrap();
    // Other deployments share the account's control plane: 5 requests left right now.
    aws.limit_rate(Quota { burst: 5.0, ..LAMBDA_CONTROL_PLANE });
    let released =
        call(&aws, json!({"action": "confirmed", "plan": state["plan"], "progress": state["progress"]})).await.unwrap();
    assert_eq!(released["status"], "promoted");
    assert_eq!(aws.parameter("/stepshift/orders/live/last-known-good-version").as_deref(), Some("42"));
    assert!(aws.parameter("/stepshift/orders/live/lock").is_none(), "released");
    let pruned = released["targets"][0]["pruned"].as_array().unwrap().len();
    assert_eq!(pruned, 3, "ListVersions and ListAliases took 2 of the 5, 3 deletes went through");
    let warnings = released["warnings"].to_string();
    assert!(
        warnings.contains("pruning orders stopped, throttled") && warnings.contains("the next release"),
        "{warnings}"
    );
    assert_eq!(aws.versions("orders").len(), 42 - 3);
}

#[tokio::test]
async fn rollback_restores_the_records_and_explains_itself() {
    let aws = account();
    aws.put_parameter("/stepshift/orders/live/current-version", "41");
    aws.put_parameter("/stepshift/orders/live/previous-version", "39");
    let state = begun(&aws).await;
    call(&aws, json!({"action": "promoted", "plan": state["plan"]})).await.unwrap();

    let mut progress = state["progress"].clone();
    progress["verdict"] = json!({
        "status": "unhealthy",
        "reasons": ["orders:live version 42 error rate 7.5% is above 5% (30 errors in 400 invocations)"],
        "checked_at": "2026-11-24T20:05:00Z",
        "window": {"start": "2026-11-24T19:58:00Z", "end": "2026-11-24T20:06:00Z"},
        "targets": []
    });
    let rollback = json!({"targets": [{"target": "orders:live", "stable": "41", "action": "restored", "now": "version 41 (100%)"}]});
    let outcome = call(
        &aws,
        json!({"action": "rolled_back", "plan": state["plan"], "progress": progress, "rollback": rollback, "failure": null}),
    )
    .await
    .unwrap();
    assert_eq!(outcome["Error"], "Unhealthy");
    assert_eq!(
        outcome["Cause"],
        "Rolled back orders:live from 42 to 41: the candidate was unhealthy at step 1 of 2 (10%): orders:live version 42 error rate 7.5% is above 5% (30 errors in 400 invocations)."
    );
    assert_eq!(aws.parameter("/stepshift/orders/live/current-version").as_deref(), Some("41"));
    assert_eq!(
        aws.parameter("/stepshift/orders/live/previous-version").as_deref(),
        Some("39"),
        "restored, not the failed candidate"
    );
    assert!(aws.parameter("/stepshift/orders/live/lock").is_none());
}

#[tokio::test]
async fn rollback_after_drift_leaves_the_changed_alias_and_says_so() {
    let aws = account();
    let state = begun(&aws).await;
    let rollback = json!({"targets": [{"target": "orders:live", "stable": "41", "action": "left_alone", "now": "version 40 (100%)"}]});
    let failure = json!({"Error": "AliasDrift", "Cause": "{\"errorType\":\"AliasDrift\",\"errorMessage\":\"orders:live was changed outside this deployment: it routes version 40 (100%), where stepshift left version 41 (90%) + version 42 (10%)\"}"});
    let outcome = call(
        &aws,
        json!({"action": "rolled_back", "plan": state["plan"], "progress": state["progress"], "rollback": rollback, "failure": failure}),
    )
    .await
    .unwrap();
    assert_eq!(outcome["Error"], "AliasDrift");
    let cause = outcome["Cause"].as_str().unwrap();
    assert!(
        cause.starts_with("Stopped without moving traffic back: orders:live was changed outside this deployment"),
        "{cause}"
    );
    assert!(cause.ends_with("orders:live was left as someone else set it: version 40 (100%)."), "{cause}");
    assert!(aws.parameter("/stepshift/orders/live/current-version").is_none(), "records untouched");
    assert!(aws.parameter("/stepshift/orders/live/lock").is_none());
}

#[tokio::test]
async fn rejection_releases_only_this_executions_locks() {
    let aws = account();
    begun(&aws).await;
    let other = json!({
        "action": "rejected",
        "execution": "someone-else",
        "request": {"targets": [{"function": "orders", "alias": "live"}, {"function": "../x", "alias": "y"}]},
        "error": {"Error": "DeploymentInProgress", "Cause": "{\"errorType\":\"DeploymentInProgress\",\"errorMessage\":\"orders:live is already being deployed\"}"}
    });
    let outcome = call(&aws, other).await.unwrap();
    assert_eq!(outcome, json!({"Error": "DeploymentInProgress", "Cause": "orders:live is already being deployed"}));
    assert!(aws.parameter("/stepshift/orders/live/lock").is_some(), "someone else's lock is kept");

    let mine = json!({"action": "rejected", "execution": EXEC, "request": fixture("begin-canary.json")["request"], "error": {"Error": "Lambda.Unknown", "Cause": "crashed"}});
    let outcome = call(&aws, mine).await.unwrap();
    assert_eq!(outcome["Cause"], "the deployment could not begin: Lambda.Unknown: crashed");
    assert!(aws.parameter("/stepshift/orders/live/lock").is_none());
}

#[tokio::test]
async fn unknown_actions_and_fields_are_task_input_errors() {
    let aws = account();
    let err = call(&aws, json!({"action": "dance"})).await.unwrap_err();
    assert_eq!(err.name(), "InvalidTaskInput");
    let err = call(&aws, json!({"action": "promoted", "plan": {}})).await.unwrap_err();
    assert_eq!(err.name(), "InvalidTaskInput");
    assert!(err.to_string().contains("record-version"), "{err}");
}
