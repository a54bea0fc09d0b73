//! Scenario tests: the real `statemachine/deployment.asl.json`, run by stepshift-local
//! through the real task handlers on simulated AWS. Each asserts the final alias state,
//! the records, the path through the states and that the lock is released.

use std::sync::Arc;

use serde_json::json;
use stepshift_core::PortError;
use stepshift_core::Service;
use stepshift_core::memory::{Call, Fault};
use stepshift_core::ports::{AlarmValue, AliasRouting};
use stepshift_local::asl::{Execution, Status};
use stepshift_local::runner::{Action, TaskFault, TimedAction};
use stepshift_local::sim::{Behavior, Change, ScheduledAlarm, VersionModel};
use stepshift_local::{Answer, Simulation};
use stepshift_tests::*;

fn run(scenario: stepshift_local::Scenario, request: serde_json::Value) -> stepshift_local::Outcome {
    Simulation::new(scenario).unwrap().run(request)
}

/// The states one traffic step goes through.
const STEP: [&str; 4] = ["Shift traffic", "Bake", "Check health", "Choose next step"];

#[test]
fn healthy_canary_promotes() {
    let o = run(scenario(steady(stable())), request(json!("canary-10-5m")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_eq!(o.parameter("/stepshift/orders/live/previous-version"), Some("41"));
    assert_eq!(o.parameter("/stepshift/orders/live/last-known-good-version"), Some("42"));
    let mut expected = vec!["Begin deployment", "Choose next step"];
    expected.extend(STEP);
    expected.extend([
        "Promote",
        "Record promotion",
        "Bake",
        "Check health",
        "Choose next step",
        "Confirm release",
        "Deployment succeeded",
    ]);
    assert_eq!(o.path, expected);
    let output = o.output.as_ref().unwrap();
    assert_eq!(output["status"], "promoted");
    assert_eq!(output["steps"][0]["weight_percent"], 10.0);
    assert_eq!(output["steps"][0]["status"], "healthy");
    assert_eq!(o.duration_seconds / 60, 10, "5 min canary + 5 min lock-in: {} s", o.duration_seconds);
    let events: Vec<&str> =
        history(&o, "orders").iter().map(|h| h["event"].as_str().unwrap().to_owned()).map(|s| &*s.leak()).collect();
    assert_eq!(events, ["started", "promoted", "confirmed"]);
}

#[test]
fn healthy_linear_promotes_through_every_step() {
    let o = run(scenario(steady(stable())), request(json!("linear-10-every-1m")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_eq!(o.path.iter().filter(|s| *s == "Shift traffic").count(), 9);
    let weights: Vec<f64> = o.output.as_ref().unwrap()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["weight_percent"].as_f64().unwrap())
        .collect();
    assert_eq!(weights, [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]);
}

#[test]
fn all_at_once_promotes_then_watches() {
    let o = run(scenario(steady(stable())), request(json!("all-at-once")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert!(!o.path.contains(&"Shift traffic".to_owned()));
    assert_eq!(&o.path[..3], ["Begin deployment", "Choose next step", "Promote"]);
}

#[test]
fn an_error_regression_rolls_back_at_the_first_step() {
    let o = run(scenario(failing(0.2)), request(json!("linear-10-every-1m")));
    assert_eq!(o.status, "FAILED");
    assert_eq!(o.error.as_deref(), Some("Unhealthy"));
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.starts_with("Rolled back orders:live from 42 to 41: the candidate was unhealthy at step 1 of 10 (10%): orders:live version 42 fails"), "{cause}");
    assert!(cause.contains("orders:live version 42 error rate"), "the absolute limit agrees: {cause}");
    assert_settled(&o, "orders", "41");
    assert_eq!(o.path.iter().filter(|s| *s == "Shift traffic").count(), 1, "caught at the first step");
    assert!(o.path.ends_with(&["Roll back".into(), "Record rollback".into(), "Deployment rolled back".into()]));
    assert_eq!(o.parameter("/stepshift/orders/live/last-known-good-version"), None);
}

#[test]
fn an_error_regression_that_starts_later_is_caught_at_that_step() {
    // Healthy for the first four steps (4 minutes plus checks), then 30% errors.
    let model = VersionModel {
        behavior: stable(),
        changes: vec![Change { after_seconds: 250, behavior: Behavior { error_rate: 0.3, ..stable() } }],
    };
    let o = run(scenario(model), request(json!("linear-10-every-1m")));
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{o:#?}");
    let shifts = o.path.iter().filter(|s| *s == "Shift traffic").count();
    assert!((4..=6).contains(&shifts), "rolled back soon after the onset, at step {shifts}");
    assert_settled(&o, "orders", "41");
}

#[test]
fn a_latency_regression_rolls_back() {
    let slow = steady(Behavior { latency_p50_ms: 400.0, latency_p99_ms: 2500.0, ..stable() });
    let mut req = request(json!("canary-10-5m"));
    req["health"] = json!({"p99_duration": {"max_ms": 1000}});
    let o = run(scenario(slow), req);
    assert_eq!(o.error.as_deref(), Some("Unhealthy"));
    assert!(o.cause.as_deref().unwrap().contains("p99 duration"), "{o:#?}");
    assert_settled(&o, "orders", "41");
}

#[test]
fn an_alarm_in_alarm_rolls_back() {
    let mut s = scenario(steady(stable()));
    s.alarms = vec![ScheduledAlarm { name: "orders-5xx".into(), states: vec![(120, AlarmValue::Alarm)] }];
    let mut req = request(json!("canary-10-5m"));
    req["health"] = json!({"alarms": ["orders-5xx"]});
    let o = run(s, req);
    assert_eq!(o.error.as_deref(), Some("Unhealthy"));
    assert!(o.cause.as_deref().unwrap().contains("alarm orders-5xx is in ALARM"), "{o:#?}");
    assert_settled(&o, "orders", "41");
}

#[test]
fn low_traffic_extends_the_bake_then_rolls_back_by_default() {
    let mut s = scenario(steady(stable()));
    s.functions[0].requests_per_second = 0.005;
    let o = run(s, request(json!("canary-10-5m")));
    assert_eq!(o.error.as_deref(), Some("InsufficientData"), "{o:#?}");
    assert_eq!(o.path.iter().filter(|p| *p == "Bake").count(), 4, "one bake and three extensions");
    assert!(o.cause.as_deref().unwrap().contains("health.insufficient_data.then"), "the cause says how to proceed");
    assert_settled(&o, "orders", "41");
}

#[test]
fn low_traffic_can_be_told_to_proceed() {
    let mut s = scenario(steady(stable()));
    s.functions[0].requests_per_second = 0.005;
    let mut req = request(json!("canary-10-5m"));
    req["health"] = json!({"insufficient_data": {"extensions": 1, "extension_seconds": 60, "then": "proceed"}});
    let o = run(s, req);
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_eq!(o.output.as_ref().unwrap()["steps"][0]["status"], "inconclusive");
}

fn approval_request() -> serde_json::Value {
    let mut req = request(json!([
        {"weight_percent": 10, "bake_seconds": 120},
        {"weight_percent": 50, "bake_seconds": 120, "approval": true},
        {"weight_percent": 100}
    ]));
    req["approval_timeout_seconds"] = json!(600);
    req
}

#[test]
fn an_approved_pause_continues() {
    let mut s = scenario(steady(stable()));
    s.approvals = vec![Answer::Approve { after_seconds: 90 }];
    let mut sim = Simulation::new(s).unwrap();
    let o = sim.run(approval_request());
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_eq!(o.approvals_requested, 1);
    let event = &sim.env.events[0];
    assert_eq!(event["EventBusName"], "stepshift-approvals");
    assert_eq!(event["Detail"]["next_step"]["weight_percent"], 50.0);
    assert!(event["Detail"]["task_token"].as_str().unwrap().len() > 10, "the event carries the token");
    let approval = o.path.iter().position(|p| p == "Await approval").unwrap();
    assert_eq!(o.path[approval + 1..approval + 3], ["Continue after approval", "Shift traffic"]);
}

#[test]
fn a_rejected_pause_rolls_back_with_the_reason() {
    let mut s = scenario(steady(stable()));
    s.approvals = vec![Answer::Reject { after_seconds: 30, reason: "error budget is spent".into() }];
    let o = run(s, approval_request());
    assert_eq!(o.error.as_deref(), Some("ApprovalRejected"));
    assert_eq!(
        o.cause.as_deref(),
        Some(
            "Rolled back orders:live from 42 to 41: the approval for step 2 of 3 (50%) was rejected: error budget is spent."
        )
    );
    assert_settled(&o, "orders", "41");
}

#[test]
fn an_unanswered_pause_times_out_and_rolls_back() {
    let mut s = scenario(steady(stable()));
    s.approvals = vec![Answer::Ignore];
    let o = run(s, approval_request());
    assert_eq!(o.error.as_deref(), Some("ApprovalTimedOut"), "{o:#?}");
    assert!(o.cause.as_deref().unwrap().contains("nobody approved step 2 of 3 (50%) within 600 seconds"));
    assert_settled(&o, "orders", "41");
}

#[test]
fn a_persons_change_mid_deployment_stops_it_without_overwriting() {
    let mut s = scenario(steady(stable()));
    s.actions = vec![TimedAction {
        after_seconds: 100,
        action: Action::SetAlias {
            function: "orders".into(),
            alias: "live".into(),
            routing: AliasRouting::single("40"),
        },
    }];
    let o = run(s, request(json!("canary-10-5m")));
    assert_eq!(o.error.as_deref(), Some("AliasDrift"), "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("orders:live was changed outside this deployment: it routes version 40 (100%)"), "{cause}");
    assert!(cause.contains("was left as someone else set it"), "{cause}");
    assert_eq!(o.routing("orders", "live"), Some(&AliasRouting::single("40")), "the person's change stands");
    assert_eq!(o.parameter("/stepshift/orders/live/lock"), None);
}

#[test]
fn a_second_deployment_of_the_alias_is_rejected_while_the_first_runs() {
    let mut sim = Simulation::new(scenario(steady(stable()))).unwrap();
    let first = sim.options("first");
    let mut a = Execution::start(Arc::clone(&sim.machine), approval_request(), first);
    a.run(&mut sim.env);
    assert!(matches!(a.status(), Status::Waiting { .. }), "A pauses for approval with 10% shifted");
    let before = sim.env.aws.aws.alias("orders", "live").unwrap();

    let o = sim.run(request(json!("all-at-once")));
    assert_eq!(o.error.as_deref(), Some("DeploymentInProgress"));
    assert!(o.cause.as_deref().unwrap().contains(&a.arn), "the cause names the execution holding the lock");
    assert_eq!(o.path, ["Begin deployment", "Record rejection", "Deployment rejected"]);
    assert_eq!(sim.env.aws.aws.alias("orders", "live").unwrap(), before, "B changed nothing");

    let Status::Waiting { token, .. } = a.status().clone() else { unreachable!() };
    a.advance(30, &mut sim.env);
    a.send_task_success(&token, json!({})).unwrap();
    a.run(&mut sim.env);
    let o = sim.outcome(&a);
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
}

#[test]
fn an_invalid_request_is_rejected_before_anything_moves() {
    let mut req = request(json!("canary-10-7m"));
    req["targets"][0]["version"] = json!("99");
    let o = run(scenario(steady(stable())), req);
    assert_eq!(o.error.as_deref(), Some("InvalidRequest"));
    assert_eq!(
        o.cause.as_deref(),
        Some(
            "invalid deployment request: strategy: unknown preset `canary-10-7m`; known presets: all-at-once, canary-10-5m, canary-10-10m, canary-10-15m, canary-10-30m, linear-10-every-1m, linear-10-every-2m, linear-10-every-3m, linear-10-every-10m"
        )
    );
    assert_eq!(o.routing("orders", "live"), Some(&AliasRouting::single("41")));
    assert!(o.parameters.is_empty(), "nothing was written: {:?}", o.parameters);
}

#[test]
fn a_lock_in_failure_after_promotion_rolls_back() {
    let model = VersionModel {
        behavior: stable(),
        changes: vec![Change { after_seconds: 360, behavior: Behavior { error_rate: 0.4, ..stable() } }],
    };
    let mut s = scenario(model);
    s.functions[0].requests_per_second = 5.0;
    let mut req = request(json!("canary-10-5m"));
    req["lock_in_seconds"] = json!(900);
    req["health"] = json!({"check_interval_seconds": 120});
    let o = run(s, req);
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{o:#?}");
    assert!(o.cause.as_deref().unwrap().contains("at step 2 of 2 (100%)"), "{}", o.cause.as_deref().unwrap());
    assert!(o.path.contains(&"Record promotion".to_owned()));
    assert_settled(&o, "orders", "41");
    let events: Vec<String> = history(&o, "orders").iter().map(|h| h["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(events, ["started", "promoted", "rolled_back"]);
    assert_eq!(o.parameter("/stepshift/orders/live/previous-version"), None, "restored to before the deployment");
}

#[test]
fn a_release_of_two_functions_rolls_back_both_when_one_fails() {
    let mut s = scenario(steady(stable()));
    s.functions.push(function("billing", 20.0, failing(0.25)));
    let mut req = request(json!("canary-10-5m"));
    req["targets"] = json!([
        {"function": "orders", "alias": "live", "version": "42"},
        {"function": "billing", "alias": "live", "version": "42"}
    ]);
    let o = run(s, req);
    assert_eq!(o.error.as_deref(), Some("Unhealthy"));
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.starts_with("Rolled back orders:live from 42 to 41 and billing:live from 42 to 41:"), "{cause}");
    assert!(cause.contains("billing:live version 42 error rate"), "{cause}");
    assert_settled(&o, "orders", "41");
    assert_settled(&o, "billing", "41");
}

#[test]
fn a_release_of_two_healthy_functions_promotes_both() {
    let mut s = scenario(steady(stable()));
    s.functions.push(function("billing", 20.0, steady(stable())));
    let mut req = request(json!("canary-10-5m"));
    req["targets"] = json!([
        {"function": "orders", "alias": "live", "version": "42"},
        {"function": "billing", "alias": "live", "version": "42"}
    ]);
    let o = run(s, req);
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_settled(&o, "billing", "42");
    assert_eq!(o.calls["GetMetricData"], 2, "one GetMetricData call per check for both targets");
}

#[test]
fn a_transient_failure_is_retried_and_the_deployment_completes() {
    let mut sim = Simulation::new(scenario(steady(stable()))).unwrap();
    sim.env.aws.aws.inject(
        Call::UpdateAlias,
        Fault::Fail(PortError::Throttled { service: Service::Lambda, message: "Rate exceeded".into() }),
    );
    sim.env.task_faults.push(TaskFault {
        function: "stepshift-promote".into(),
        invocation: 0,
        after_effect: true,
        error: "Lambda.Unknown".into(),
    });
    let o = sim.run(request(json!("canary-10-5m")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    let failed: Vec<&str> = events(&o, "LambdaFunctionFailed").iter().map(|d| d["error"].as_str().unwrap()).collect();
    assert_eq!(failed, ["Throttled", "Lambda.Unknown"]);
    assert_eq!(o.path.iter().filter(|p| *p == "Shift traffic").count(), 1, "a retry is not a new state entry");
}

#[test]
fn a_task_that_keeps_failing_after_the_first_shift_rolls_back() {
    let mut sim = Simulation::new(scenario(steady(stable()))).unwrap();
    for _ in 0..5 {
        sim.env.aws.aws.inject(
            Call::GetMetricData,
            Fault::Fail(PortError::Other { service: Service::CloudWatch, message: "AccessDenied".into() }),
        );
    }
    let o = sim.run(request(json!("canary-10-5m")));
    assert_eq!(o.error.as_deref(), Some("AwsError"), "{o:#?}");
    assert!(o.cause.as_deref().unwrap().starts_with("Rolled back orders:live from 42 to 41: a task failed at step 1 of 2 (10%): AwsError: CloudWatch: AccessDenied"), "{o:#?}");
    assert_settled(&o, "orders", "41");
}

#[test]
fn a_failed_rollback_says_so_and_releases_the_lock() {
    let mut sim = Simulation::new(scenario(failing(0.3))).unwrap();
    let options = sim.options("rollback-fails");
    let mut exec = Execution::start(Arc::clone(&sim.machine), request(json!("canary-10-5m")), options);
    // Step until traffic is split (the first shift succeeded), then make every alias
    // update fail for good, as if the role had lost lambda:UpdateAlias.
    while exec.current_state() != Some("Bake") {
        assert!(!exec.step_once(&mut sim.env).is_terminal());
    }
    for _ in 0..40 {
        sim.env.aws.aws.inject(
            Call::UpdateAlias,
            Fault::Fail(PortError::Other { service: Service::Lambda, message: "AccessDenied".into() }),
        );
    }
    exec.run(&mut sim.env);
    let o = sim.outcome(&exec);
    assert_eq!(o.error.as_deref(), Some("RollbackFailed"), "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(
        cause.starts_with("Rollback FAILED (AwsError: Lambda: AccessDenied) after: the candidate was unhealthy"),
        "{cause}"
    );
    assert!(cause.contains("stepshift rollback --function orders --alias live --to 41"), "{cause}");
    assert_eq!(
        o.routing("orders", "live"),
        Some(&AliasRouting::split("41", "42", 0.1)),
        "still split: that is why it is loud"
    );
    assert_eq!(o.parameter("/stepshift/orders/live/lock"), None);
}
