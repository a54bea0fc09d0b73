//! Scenario tests: the real `statemachine/deployment.asl.json`, run by stepshift-local
//! through the real task handlers on simulated AWS. Each asserts the final alias state,
//! the records, the path through the states and that the lock is released.

use std::sync::Arc;

use serde_json::json;
use stepshift_core::PortError;
use stepshift_core::Service;
use stepshift_core::memory::{Call, Fault};
use stepshift_core::ports::{AlarmValue, AliasRouting};
use stepshift_core::{ErrorName, State};
use stepshift_local::asl::{Execution, Status};
use stepshift_local::runner::{Action, TaskFault, TimedAction};
use stepshift_local::sim::{Behavior, Change, ScheduledAlarm, VersionModel};
use stepshift_local::{Answer, Simulation};
use stepshift_tests::*;

fn run(scenario: stepshift_local::Scenario, request: serde_json::Value) -> stepshift_local::Outcome {
    Simulation::new(scenario).unwrap().run(request)
}

/// The states one traffic step goes through.
const STEP: [State; 4] = [State::ShiftTraffic, State::Bake, State::CheckHealth, State::ChooseNextStep];

#[test]
fn healthy_canary_promotes() {
    let o = run(scenario(steady(stable())), request(json!("canary-10-5m")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_eq!(o.parameter("/stepshift/orders/live/previous-version"), Some("41"));
    assert_eq!(o.parameter("/stepshift/orders/live/last-known-good-version"), Some("42"));
    // Checked every minute: the 5-minute canary five times, then the 5-minute lock-in.
    const CHECK: [State; 3] = [State::Bake, State::CheckHealth, State::ChooseNextStep];
    let mut expected = vec![
        State::BeginDeployment,
        State::AnnounceTheStart,
        State::TestsBeforeTrafficChoice,
        State::FastPathChoice,
        State::ChooseNextStep,
    ];
    expected.extend(STEP);
    expected.extend(CHECK.repeat(4));
    expected.extend([State::Promote, State::RecordPromotion, State::TestsAfterPromotionChoice]);
    expected.extend(CHECK.repeat(5));
    expected.extend([State::ConfirmRelease, State::ReleasedWithFastPath, State::DeploymentSucceeded]);
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
    assert_eq!(o.path.iter().filter(|s| **s == State::ShiftTraffic).count(), 9);
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
    assert!(!o.path.iter().any(|s| *s == State::ShiftTraffic));
    assert_eq!(
        &o.path[..6],
        [
            State::BeginDeployment,
            State::AnnounceTheStart,
            State::TestsBeforeTrafficChoice,
            State::FastPathChoice,
            State::ChooseNextStep,
            State::Promote
        ]
    );
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
    assert_eq!(o.path.iter().filter(|s| **s == State::ShiftTraffic).count(), 1, "caught at the first step");
    assert_eq!(
        o.path[o.path.len() - 4..],
        [State::RollBack, State::RecordRollback, State::RolledBackWithFastPath, State::DeploymentRolledBack]
    );
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
    let shifts = o.path.iter().filter(|s| **s == State::ShiftTraffic).count();
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
    // The slow-invocation test or the absolute limit, whichever has its evidence first.
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("p99 duration is above 1000 ms") || cause.contains("is slower than"), "{o:#?}");
    assert!(!o.path.iter().any(|s| *s == State::Promote), "caught in the canary");
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
    assert_eq!(o.path.iter().filter(|p| **p == State::Bake).count(), 8, "five one-minute waits and three extensions");
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

#[test]
fn an_approved_pause_continues() {
    let mut s = scenario(steady(stable()));
    s.approvals = vec![Answer::Approve { after_seconds: 90 }];
    let mut sim = Simulation::new(s).unwrap();
    let o = sim.run(approval_request());
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_eq!(o.approvals_requested, 1);
    let event = sim.env.approval_requests().next().unwrap();
    assert_eq!(event["EventBusName"], "stepshift-approvals");
    assert_eq!(event["Detail"]["next_step"]["weight_percent"], 50.0);
    assert!(event["Detail"]["task_token"].as_str().unwrap().len() > 10, "the event carries the token");
    let approval = o.path.iter().position(|p| *p == State::AwaitApproval).unwrap();
    assert_eq!(o.path[approval + 1..approval + 3], [State::ContinueAfterApproval, State::ShiftTraffic]);
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
    // The approval's own States.Timeout goes through the state that names it.
    let at = o.path.iter().position(|p| *p == State::ApprovalTimedOut).expect("the approval timed out");
    assert_eq!(o.path[at - 1..at + 2], [State::AwaitApproval, State::ApprovalTimedOut, State::RollBack]);
}

#[test]
fn a_task_timeout_at_a_step_that_needed_approval_is_not_an_approval_timeout() {
    // Approved after 60 s; then "Shift traffic" to the approved 50% step runs out of
    // time on its first attempt and on both retries (invocations 1-3: the 10% shift
    // was invocation 0).
    let mut sim = Simulation::new(scenario(steady(stable()))).unwrap();
    for invocation in 1..=3 {
        sim.env.task_faults.push(TaskFault {
            function: "stepshift-shift-weight".into(),
            invocation,
            after_effect: false,
            error: ErrorName::StatesTimeout.to_string(),
        });
    }
    let o = sim.run(approval_request());
    assert_eq!(o.approvals_requested, 1);
    assert_eq!(o.error.as_deref(), Some("States.Timeout"), "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("a task failed at step 2 of 3 (50%): States.Timeout"), "{cause}");
    assert!(!o.path.iter().any(|p| *p == State::ApprovalTimedOut), "{:?}", o.path);
    let approval = o.path.iter().position(|p| *p == State::AwaitApproval).unwrap();
    assert_eq!(
        o.path[approval + 1..approval + 4],
        [State::ContinueAfterApproval, State::ShiftTraffic, State::RollBack]
    );
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
    assert_eq!(o.path, [State::BeginDeployment, State::RecordRejection, State::DeploymentRejected]);
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
    assert!(o.path.iter().any(|s| *s == State::RecordPromotion));
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
    let checks = o.path.iter().filter(|p| **p == State::CheckHealth).count() as u64;
    assert!(checks >= 10, "every minute of the 5-minute bake and the 5-minute lock-in: {checks}");
    assert_eq!(
        o.calls[&Call::GetMetricData],
        checks + 2,
        "one GetMetricData call per check for both targets, and two for both histories at the start"
    );
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
    assert_eq!(o.path.iter().filter(|p| **p == State::ShiftTraffic).count(), 1, "a retry is not a new state entry");
}

#[test]
fn a_task_that_keeps_failing_after_the_first_shift_rolls_back() {
    let mut sim = Simulation::new(scenario(steady(stable()))).unwrap();
    // The first two calls read the history at the start; the checks fail from then on.
    for nth in 3..8 {
        sim.env.aws.aws.inject_at(
            Call::GetMetricData,
            nth,
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
    while exec.current_state() != Some(State::Bake.as_str()) {
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

// The judge never looks away: every minute of every bake and of the whole lock-in is
// checked, against a baseline in every phase.

/// Seconds from the start to the first time `state` was entered.
fn entered(o: &stepshift_local::Outcome, state: State) -> Option<i64> {
    let start = o.history.first()?.timestamp;
    o.history
        .iter()
        .find(|e| e.kind == "TaskStateEntered" && e.details["name"] == state.as_str())
        .map(|e| e.timestamp.secs_since(start))
}

/// A candidate that behaves like the stable version until `after` seconds, then as `then`.
fn breaks_after(after: u64, then: Behavior) -> VersionModel {
    VersionModel { behavior: stable(), changes: vec![Change { after_seconds: after, behavior: then }] }
}

#[test]
fn a_spike_inside_the_lock_in_rolls_back_within_minutes_and_leaves_last_known_good_alone() {
    // 6% errors (60 times the stable version's) from 35 minutes in: 20 minutes into a
    // 60-minute lock-in that follows a 15-minute canary.
    let onset = 35 * 60;
    let o = run(
        scenario(breaks_after(onset, Behavior { error_rate: 0.06, ..stable() })),
        with_lock_in("canary-10-15m", 3600),
    );
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{:?}", o.cause);
    let rolled_back = entered(&o, State::RollBack).unwrap();
    assert!(
        (onset as i64..onset as i64 + 8 * 60).contains(&rolled_back),
        "rolled back {} s after the onset",
        rolled_back - onset as i64
    );
    assert!(entered(&o, State::Promote).unwrap() < onset as i64, "it was promoted before the spike");
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("version 41's history 08:00-09:00"), "compared with the stable history: {cause}");
    assert_eq!(o.routing("orders", "live"), Some(&AliasRouting::single("41")));
    assert_eq!(o.parameter("/stepshift/orders/live/current-version"), Some("41"));
    assert_eq!(o.parameter("/stepshift/orders/live/last-known-good-version"), None, "42 never became last-known-good");
    assert_eq!(o.parameter("/stepshift/orders/live/lock"), None);
}

#[test]
fn a_spike_after_the_lock_in_is_not_rolled_back() {
    // canary-10-5m, then a 10-minute lock-in: the release is confirmed at 15 minutes,
    // and what the candidate does at 20 is no longer the deployment's to judge.
    let o = run(
        scenario(breaks_after(20 * 60, Behavior { error_rate: 0.2, ..stable() })),
        with_lock_in("canary-10-5m", 600),
    );
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_eq!(o.parameter("/stepshift/orders/live/last-known-good-version"), Some("42"));
}

#[test]
fn a_latency_only_regression_rolls_back_during_the_canary() {
    // p99 three times the stable version's 180 ms, errors unchanged, at 20 req/s: the
    // canary serves about 120 invocations a minute.
    let slow = Behavior { latency_p99_ms: 540.0, ..stable() };
    let o = run(scenario(steady(slow)), request(json!("canary-10-5m")));
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{:?}", o.cause);
    assert!(!o.path.iter().any(|s| *s == State::Promote), "rolled back before promotion: {:?}", o.path);
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("is slower than") && cause.contains("(the stable p99)"), "{cause}");
    assert_settled(&o, "orders", "41");
}

#[test]
fn a_healthy_60_minute_lock_in_checked_every_minute_promotes() {
    let o = run(scenario(steady(stable())), with_lock_in("canary-10-5m", 3600));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    let checks = o.path.iter().filter(|s| **s == State::CheckHealth).count();
    assert!((65..=70).contains(&checks), "a check a minute through 65 minutes of bake and lock-in: {checks}");
    let last = o.output.as_ref().unwrap()["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["weight_percent"], 100.0);
    assert!(last["checks"].as_u64().unwrap() >= 60, "{last}");
    let reason = last["reason"].as_str().unwrap();
    assert!(reason.contains("errors against version 41's history 08:00-09:00"), "{last}");
    assert!(reason.contains("slow against version 41's history 08:00-09:00"), "{last}");
}

#[test]
fn a_new_function_with_no_history_promotes_on_the_absolute_limits_and_says_so() {
    let mut s = scenario(steady(stable()));
    s.history_seconds = 0; // the alias served nothing before the deployment
    let o = run(s, request(json!("all-at-once")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    let reason = o.output.as_ref().unwrap()["steps"][0]["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("no baseline (version 41 served 0 invocations over 08:00-09:00, fewer than"), "{reason}");
    assert!(reason.ends_with("judged on the absolute limits only"), "{reason}");
}

/// The stable version of the fast-path scenarios: 1% errors.
fn one_percent() -> Behavior {
    Behavior { error_rate: 0.01, ..stable() }
}

/// At 100 req/s, the canary request, with or without the fast path.
fn fast_path_run(fast: bool, candidate: VersionModel, seed: u64) -> stepshift_local::Outcome {
    let scenario =
        stepshift_local::Scenario::orders(candidate).with_seed(seed).with_rps(100.0).with_stable(one_percent());
    let mut r = request(json!("canary-10-15m"));
    if fast {
        r["health"] = json!({"fast_path": {"enabled": true}});
    }
    run(scenario, r)
}

fn rollback_after_seconds(o: &stepshift_local::Outcome) -> i64 {
    let shift = o.history.iter().find(|e| e.details["name"] == State::ShiftTraffic.as_str()).unwrap().timestamp;
    let back = o.history.iter().find(|e| e.details["name"] == State::RollBack.as_str()).unwrap().timestamp;
    back.secs_since(shift)
}

#[test]
fn the_fast_path_rolls_back_a_regression_before_the_minute_metrics_arrive() {
    let bad = || steady(Behavior { error_rate: 0.05, ..one_percent() });
    let slow = fast_path_run(false, bad(), 7);
    let fast = fast_path_run(true, bad(), 7);
    for o in [&slow, &fast] {
        assert_eq!(o.status, "FAILED", "{o:#?}");
        assert_settled(o, "orders", "41");
    }
    let (slow_s, fast_s) = (rollback_after_seconds(&slow), rollback_after_seconds(&fast));
    // CloudWatch delivers a minute 60-180 s after it ends; tally's buckets 3-30 s after theirs.
    assert!(slow_s >= 120, "the minute metrics cannot roll back before they arrive: {slow_s} s");
    assert!(fast_s < slow_s, "fast path {fast_s} s, minute metrics {slow_s} s");
    // Over five seeds (the detection time depends on where the buckets fall): always
    // before the minute metrics, and half of the time within 90 s.
    let mut times: Vec<(i64, i64)> = (1..=5)
        .map(|seed| {
            let f = rollback_after_seconds(&fast_path_run(true, bad(), seed));
            let s = rollback_after_seconds(&fast_path_run(false, bad(), seed));
            (f, s)
        })
        .collect();
    assert!(times.iter().all(|(f, s)| f < s), "{times:?}");
    times.sort();
    assert!(times[2].0 <= 90, "median fast path {} s: {times:?}", times[2].0);
    assert!(fast.path.iter().any(|s| *s == State::StartFastPath), "{:?}", fast.path);
    assert!(fast.cause.as_deref().unwrap_or_default().contains("10-second counts"), "{:?}", fast.cause);
    // The ending removed the filter; the deployment without a fast path never made one.
    assert_eq!(fast.path[fast.path.len() - 2..], [State::StopFastPathRolledBack, State::DeploymentRolledBack]);
    assert_eq!(fast.log_filters["/aws/lambda/orders"], Vec::<String>::new());
    assert!(!slow.path.iter().any(|s| *s == State::StartFastPath || *s == State::StopFastPathRolledBack));
}

#[test]
fn a_healthy_candidate_with_the_fast_path_promotes_and_leaves_no_filter() {
    let o = fast_path_run(true, steady(one_percent()), 3);
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    assert_eq!(
        o.path[o.path.len() - 3..],
        [State::ReleasedWithFastPath, State::StopFastPathReleased, State::DeploymentSucceeded]
    );
    assert_eq!(o.log_filters["/aws/lambda/orders"], Vec::<String>::new());
    // Checked every 20 s while live: three times as many checks as minute checks.
    let checks = o.path.iter().filter(|p| **p == State::CheckHealth).count();
    assert!(checks >= 3 * 20 - 3, "{checks} checks over 15 + 5 minutes");
}

#[test]
fn a_log_group_with_two_other_filters_gets_no_fast_path_and_the_verdict_says_so() {
    let scenario = stepshift_local::Scenario::orders(steady(stable())).with_rps(100.0).with_stable(stable());
    let mut sim = Simulation::new(scenario).unwrap();
    for name in ["datadog-forwarder", "splunk"] {
        sim.env.aws.aws.add_foreign_filter("/aws/lambda/orders", name);
    }
    let mut r = request(json!("canary-10-5m"));
    r["health"] = json!({"fast_path": {"enabled": true}});
    let o = sim.run(r);
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_eq!(o.log_filters["/aws/lambda/orders"], ["datadog-forwarder", "splunk"], "others' filters untouched");
    let notes = o.output.as_ref().map(|v| v.to_string()).unwrap_or_default();
    let checked = o.history.iter().filter_map(|e| e.details.get("output")).map(|v| v.to_string()).collect::<String>();
    assert!(
        checked.contains("two subscription filters") || notes.contains("two subscription filters"),
        "the verdicts say why there is no fast path"
    );
    // Not live: checked at the minute cadence after the first check.
    assert!(o.path.iter().filter(|p| **p == State::CheckHealth).count() <= 12);
}

#[test]
fn a_silent_fast_path_is_reported_down_and_the_minute_metrics_still_roll_back() {
    // A regression that begins 4 minutes in; the filter is removed by hand at 2 minutes.
    let bad = Behavior { error_rate: 0.05, ..one_percent() };
    let candidate =
        VersionModel { behavior: one_percent(), changes: vec![Change { after_seconds: 240, behavior: bad }] };
    let mut scenario =
        stepshift_local::Scenario::orders(candidate).with_seed(5).with_rps(100.0).with_stable(one_percent());
    scenario.actions = vec![TimedAction {
        after_seconds: 120,
        action: Action::RemoveLogFilters { log_group: "/aws/lambda/orders".into() },
    }];
    let mut r = request(json!("canary-10-15m"));
    r["health"] = json!({"fast_path": {"enabled": true}});
    let o = run(scenario, r);
    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_settled(&o, "orders", "41");
    let checks: Vec<&serde_json::Value> = events(&o, "LambdaFunctionSucceeded")
        .into_iter()
        .filter(|e| e["output"]["verdict"]["notes"].is_array())
        .collect();
    let notes = |e: &serde_json::Value| e["output"]["verdict"]["notes"].to_string();
    assert!(checks.iter().any(|e| notes(e).contains("fast path: down")), "a check says the fast path is down");
    // Rolled back on the minute metrics: CloudWatch's reasons, not the fast path's.
    assert!(!o.cause.as_deref().unwrap_or_default().contains("10-second counts"), "{:?}", o.cause);
}

// Validation hooks ([`stepshift_core::hooks`]): the Map, Parallel and lambda:invoke
// states of the real ASL, with simulated test functions and candidate versions.

fn hooked(strategy: serde_json::Value, hooks: serde_json::Value) -> serde_json::Value {
    let mut req = request(strategy);
    req["hooks"] = hooks;
    req
}

fn with_hooks(
    candidate: VersionModel,
    scripts: &[(&str, Vec<stepshift_local::hooks::HookBehaviour>)],
) -> stepshift_local::Scenario {
    let mut s = scenario(candidate);
    s.hooks = scripts.iter().map(|(f, b)| ((*f).to_owned(), b.clone())).collect();
    s
}

use stepshift_local::hooks::HookBehaviour;

fn pass(after_seconds: u64) -> HookBehaviour {
    HookBehaviour::Pass { after_seconds }
}

fn fail(reason: &str) -> HookBehaviour {
    HookBehaviour::Fail { after_seconds: 2, reason: reason.into() }
}

#[test]
fn a_failing_invoke_candidate_before_traffic_moves_nothing() {
    let s = with_hooks(steady(stable()), &[("orders:42", vec![fail("missing env var DB_URL")])]);
    let mut sim = Simulation::new(s).unwrap();
    let o = sim.run(hooked(
        json!("canary-10-5m"),
        json!({"before_traffic": [{"invoke_candidate": {"payload": {"path": "/health"}}}]}),
    ));
    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_eq!(o.error.as_deref(), Some("HookFailed"));
    let cause = o.cause.as_deref().unwrap();
    assert_eq!(
        cause,
        "Stopped before any traffic moved: the tests before traffic failed: invoke orders:42: Error: missing env var \
         DB_URL."
    );
    assert_settled(&o, "orders", "41");
    assert_eq!(o.calls.get(&Call::UpdateAlias), None, "no alias write at all: {:?}", o.calls);
    assert!(!o.path.iter().any(|s| *s == State::ShiftTraffic || *s == State::ShiftThenTest));
    // The candidate version itself was invoked, by its qualified name, with the payload.
    let calls = &sim.env.hooks.calls;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function, "orders:42");
    assert_eq!(calls[0].payload, json!({"path": "/health"}));
    let events: Vec<String> = history(&o, "orders").iter().map(|h| h["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(events, ["started", "rolled_back"], "the history says it ended");
}

#[test]
fn a_failing_step_hook_rolls_back_at_that_step() {
    let s = with_hooks(steady(stable()), &[("orders-smoke", vec![pass(5), pass(5), fail("checkout returned 502")])]);
    let mut sim = Simulation::new(s).unwrap();
    let o = sim.run(hooked(json!("linear-10-every-1m"), json!({"each_step": [{"function": "orders-smoke"}]})));
    assert_eq!(o.error.as_deref(), Some("HookFailed"), "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("the tests at step 3 failed: orders-smoke: checkout returned 502"), "{cause}");
    assert_settled(&o, "orders", "41");
    assert_eq!(o.path.iter().filter(|s| **s == State::ShiftThenTest).count(), 3, "{:?}", o.path);
    assert_eq!(o.path.iter().filter(|s| **s == State::TestTheStep).count(), 3);
    // The test function got an event naming the candidate, the step and the weight.
    let calls = &sim.env.hooks.calls;
    assert_eq!(calls.len(), 3);
    let event: stepshift_core::hooks::HookEvent = serde_json::from_value(calls[2].payload.clone()).unwrap();
    assert_eq!(event.step, Some(2));
    assert_eq!(event.weight_percent, 30.0);
    assert_eq!(event.point, stepshift_core::hooks::Point::EachStep);
    assert_eq!(event.candidate.version, "42");
    assert_eq!(event.candidate.function.as_deref(), Some("orders"));
    assert_eq!(
        event.candidate.qualified_arn.as_deref(),
        Some("arn:aws:lambda:us-east-1:000000000000:function:orders:42")
    );
    assert!(event.execution.contains(":execution:"), "{}", event.execution);
}

#[test]
fn a_hook_that_never_answers_fails_at_its_timeout_and_rolls_back() {
    let s = with_hooks(steady(stable()), &[("orders-load", vec![HookBehaviour::Hang])]);
    let mut sim = Simulation::new(s).unwrap();
    let mut exec = sim.start(hooked(
        json!([{"weight_percent": 10, "bake_seconds": 900}, {"weight_percent": 100}]),
        json!({"each_step": [{"function": "orders-load", "timeout_seconds": 120}]}),
    ));
    exec.run(&mut sim.env);
    let o = sim.outcome(&exec);
    assert_eq!(o.error.as_deref(), Some("HookFailed"), "{o:#?}");
    assert!(o.cause.as_deref().unwrap().contains("orders-load: did not answer within 120 s"), "{:?}", o.cause);
    assert_settled(&o, "orders", "41");
    // The 15-minute bake was cut short: the rollback came at the hook's timeout.
    let shifted = o.history.iter().find(|e| e.details["name"] == State::TestTheStep.as_str()).unwrap().timestamp;
    let rolled = o.history.iter().find(|e| e.details["name"] == State::RollBack.as_str()).unwrap().timestamp;
    let after = rolled.secs_since(shifted);
    assert!((120..=125).contains(&after), "rolled back {after} s after the step began");
}

#[test]
fn hooks_at_one_point_run_in_parallel() {
    let s = with_hooks(
        steady(stable()),
        &[("smoke-a", vec![pass(40)]), ("smoke-b", vec![pass(50)]), ("smoke-c", vec![pass(30)])],
    );
    let mut sim = Simulation::new(s).unwrap();
    let o = sim.run(hooked(
        json!("canary-10-5m"),
        json!({"before_traffic": [{"function": "smoke-a"}, {"function": "smoke-b"}, {"function": "smoke-c"}]}),
    ));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    let calls = &sim.env.hooks.calls;
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.at == calls[0].at), "all three start together");
    let begun = o.history.iter().find(|e| e.details["name"] == State::TestBeforeTraffic.as_str()).unwrap().timestamp;
    let judged =
        o.history.iter().find(|e| e.details["name"] == State::JudgeTestsBeforeTraffic.as_str()).unwrap().timestamp;
    let took = judged.secs_since(begun);
    assert!((50..=52).contains(&took), "as long as the slowest (50 s), not the sum: {took} s");
}

#[test]
fn a_passing_set_of_hooks_promotes_and_a_failing_one_after_promotion_rolls_back() {
    let scripts = [("orders-smoke", vec![pass(3)]), ("orders:42", vec![pass(1)])];
    let hooks = json!({
        "before_traffic": [{"invoke_candidate": {"payload": {"rawPath": "/"}, "expect": {"status_below": 500}}}],
        "each_step": [{"function": "orders-smoke"}],
        "after_promotion": [{"function": "orders-smoke", "name": "post-smoke"}]
    });
    let o = run(with_hooks(steady(stable()), &scripts), hooked(json!("linear-10-every-1m"), hooks.clone()));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    for state in [State::TestBeforeTraffic, State::TestAfterPromotion, State::JudgeTestsAtStep] {
        assert!(o.path.iter().any(|s| *s == state), "{state}: {:?}", o.path);
    }
    // Nine traffic steps, and the promotion's lock-in beside the tests after promotion.
    assert_eq!(o.path.iter().filter(|s| **s == State::TestTheStep).count(), 10);

    // canary-10-5m: one traffic step (the first answer), then the promotion (the second).
    let scripts = [("orders-smoke", vec![pass(3), fail("refunds broken")])];
    let o = run(
        with_hooks(steady(stable()), &scripts),
        hooked(
            json!("canary-10-5m"),
            json!({"each_step": [{"function": "orders-smoke"}], "after_promotion": [{"function": "orders-smoke", "name": "post-smoke"}]}),
        ),
    );
    assert_eq!(o.error.as_deref(), Some("HookFailed"), "{o:#?}");
    assert!(o.cause.as_deref().unwrap().contains("the tests after promotion failed: post-smoke: refunds broken"));
    assert_settled(&o, "orders", "41");
    assert!(o.path.iter().any(|s| *s == State::Promote));
}

#[test]
fn an_unhealthy_check_during_a_tested_step_rolls_back_with_its_verdict() {
    // The hook runs for the whole step; the check finds 20% errors at its first minute.
    let s = with_hooks(failing(0.2), &[("orders-load", vec![pass(600)])]);
    let o = run(
        s,
        hooked(json!("canary-10-5m"), json!({"each_step": [{"function": "orders-load", "timeout_seconds": 900}]})),
    );
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("the candidate was unhealthy at step 1 of 2 (10%)"), "the carried verdict: {cause}");
    assert_settled(&o, "orders", "41");
    assert!(o.path.iter().any(|s| *s == State::StepRollsBack));
    // Rolled back at the first check with data (CloudWatch delivers 1-2 minutes late),
    // while the hook had 7 more minutes to run.
    assert!(o.duration_seconds < 240, "the running hook did not hold the rollback: {} s", o.duration_seconds);
    assert_eq!(o.output, None);
}

#[test]
fn hooks_cost_the_transitions_the_readme_states() {
    let s = || with_hooks(steady(stable()), &[("orders-smoke", vec![pass(2)])]);
    let plain = run(s(), request(json!("linear-10-every-1m")));
    let smoke = json!([{"function": "orders-smoke"}]);
    let cost = |hooks: serde_json::Value| {
        let o = run(s(), hooked(json!("linear-10-every-1m"), hooks));
        assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
        o.transitions - plain.transitions
    };
    // A traffic step with hooks: 6 more, and 3 per hook (its Choice, task, Succeed).
    assert_eq!(cost(json!({"each_step": smoke})), 9 * (6 + 3));
    assert_eq!(
        cost(json!({"each_step": [{"function": "orders-smoke"}, {"function": "orders-smoke", "name": "b"}]})),
        9 * (6 + 6)
    );
    // Before traffic: the Map and the judging task, and 3 per hook. After promotion, the
    // lock-in runs beside them in "Test the step": as much as a traffic step's.
    assert_eq!(cost(json!({"before_traffic": smoke})), 2 + 3);
    assert_eq!(cost(json!({"after_promotion": smoke})), 6 + 3);
}
