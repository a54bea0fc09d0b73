//! Lifecycle events ([`stepshift_core::events`]) of whole simulated deployments: the
//! real `statemachine/deployment.asl.json`, run by stepshift-local through the real task
//! handlers, which publish to the simulated account. `Deployment Started` comes from
//! "Announce the start" (check-health's `announce`), right after Begin.

use serde_json::{Value, json};
use stepshift_core::Service;
use stepshift_core::control::Action as Command;
use stepshift_core::events::{DetailType, EventDetail, LifecycleEvent};
use stepshift_core::memory::{Call, Fault};
use stepshift_core::{PortError, State};
use stepshift_local::hooks::HookBehaviour;
use stepshift_local::runner::{Action, SIMULATED_OPERATOR, TimedAction};
use stepshift_local::{Outcome, Scenario, Simulation};
use stepshift_tests::*;

/// Runs `request` in `scenario`: the outcome, the `Deployment Started` events, and the
/// events published after it, in order.
fn run(scenario: Scenario, request: Value) -> (Outcome, Vec<LifecycleEvent>, Vec<LifecycleEvent>) {
    let mut sim = Simulation::new(scenario).unwrap();
    let o = sim.run(request);
    let (started, events) =
        sim.env.aws.lifecycle_events().into_iter().partition(|e| e.detail_type == DetailType::DeploymentStarted);
    (o, started, events)
}

fn types(events: &[LifecycleEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.detail_type.as_str()).collect()
}

/// `n` times `detail_type`.
fn times(n: usize, detail_type: DetailType) -> Vec<&'static str> {
    vec![detail_type.as_str(); n]
}

/// Every event names the execution, links its console page and lists the target; times
/// never go back.
fn assert_well_formed(o: &Outcome, events: &[LifecycleEvent]) {
    for e in events {
        let d = &e.detail;
        assert_eq!((d.schema_version, d.execution.as_str()), (1, o.execution.as_str()), "{e:?}");
        assert!(d.console_url.ends_with(&o.execution), "{}", d.console_url);
        assert_eq!(d.targets.len(), 1);
        assert_eq!((d.targets[0].target.as_str(), d.targets[0].stable.as_str()), ("orders:live", "41"));
        assert_eq!(d.targets[0].candidate, "42");
    }
    assert!(events.windows(2).all(|w| w[0].detail.at <= w[1].detail.at), "in time order");
}

#[test]
fn a_promoted_canary_announces_each_moment_in_order() {
    let (o, started, events) = run(scenario(steady(stable())), request(json!("canary-10-5m")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_eq!(o.path[1], State::AnnounceTheStart);

    // "Announce the start" published it once, first.
    assert_eq!(started.len(), 1, "{started:?}");
    assert!(started[0].detail.at <= events[0].detail.at);
    let detail = &started[0].detail;
    assert_eq!(detail.execution, o.execution);
    assert_eq!((detail.steps, detail.weights.clone()), (Some(2), Some(vec![10.0, 100.0])));
    assert_eq!(detail.targets[0].target, "orders:live");

    // Checked every minute: five times at 10%, five times in the lock-in.
    let mut expected = vec![DetailType::TrafficShifted.as_str()];
    expected.extend(times(5, DetailType::HealthChecked));
    expected.push(DetailType::DeploymentPromoted.as_str());
    expected.extend(times(5, DetailType::HealthChecked));
    expected.push(DetailType::ReleaseConfirmed.as_str());
    assert_eq!(types(&events), expected);
    assert_well_formed(&o, &events);

    let shifted = &events[0].detail;
    assert_eq!((shifted.step, shifted.weight_percent), (Some(1), Some(10.0)));
    let checks: Vec<&EventDetail> =
        events.iter().filter(|e| e.detail_type == DetailType::HealthChecked).map(|e| &e.detail).collect();
    let decisions: Vec<Value> = checks.iter().map(|d| serde_json::to_value(d.decision).unwrap()).collect();
    assert_eq!(decisions[..5], [json!("wait"), json!("wait"), json!("wait"), json!("wait"), json!("advance")]);
    assert_eq!(decisions[9], "confirm");
    assert!(checks.iter().all(|d| d.verdict.as_ref().is_some_and(|v| !v.reasons.is_empty())));
    assert!(checks[5..].iter().all(|d| d.step == Some(2) && d.steps == Some(2) && d.weight_percent == Some(100.0)));
    assert_eq!(events[6].detail.weight_percent, Some(100.0), "promoted");
    assert_eq!(events[12].detail.step, Some(2), "confirmed at the last step");
}

#[test]
fn an_unhealthy_candidate_announces_the_rollback_with_the_endings_reason() {
    let (o, _, events) = run(scenario(failing(0.2)), request(json!("linear-10-every-1m")));
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{o:#?}");
    // Shifted once; checked every minute until the evidence was enough; rolled back.
    let t = types(&events);
    let n = t.len();
    assert!(n >= 3, "{t:?}");
    assert_eq!((t[0], t[n - 1]), ("Traffic Shifted", "Deployment Rolled Back"), "{t:?}");
    assert!(t[1..n - 1].iter().all(|d| *d == "Health Checked"), "{t:?}");
    assert_well_formed(&o, &events);
    let checked = &events[n - 2].detail;
    assert_eq!(serde_json::to_value(checked.decision).unwrap(), "roll_back");
    let rolled = &events[n - 1].detail;
    assert_eq!(rolled.error.as_deref(), Some("Unhealthy"));
    let cause = rolled.cause.as_deref().unwrap();
    assert!(
        cause.starts_with("the candidate was unhealthy at step 1 of 10 (10%): orders:live version 42 fails"),
        "{cause}"
    );
    assert!(o.cause.as_deref().unwrap().contains(cause), "the same sentence as the ending: {:?}", o.cause);
    assert_eq!((rolled.step, rolled.steps, rolled.weight_percent), (Some(1), Some(10), Some(10.0)));
    assert_eq!(rolled.verdict.as_ref().map(|v| v.status), checked.verdict.as_ref().map(|v| v.status));
}

#[test]
fn a_rollback_decided_inside_test_the_step_carries_its_reason() {
    let mut s = scenario(failing(0.2));
    s.hooks = [("orders-smoke".to_owned(), vec![HookBehaviour::Pass { after_seconds: 5 }; 10])].into_iter().collect();
    let mut req = request(json!("linear-10-every-1m"));
    req["hooks"] = json!({"each_step": [{"function": "orders-smoke"}]});
    let (o, _, events) = run(s, req);
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{o:#?}");
    assert!(o.path.iter().any(|s| *s == State::TestTheStep));
    let last = events.last().unwrap();
    assert_eq!(last.detail_type, DetailType::DeploymentRolledBack, "{:?}", types(&events));
    assert_eq!(last.detail.error.as_deref(), Some("Unhealthy"), "not RollBackDecided");
    assert!(last.detail.cause.as_deref().unwrap().starts_with("the candidate was unhealthy at step 1 of 10"));
    assert_eq!(last.detail.verdict.as_ref().map(|v| v.status), Some(stepshift_core::judge::VerdictStatus::Unhealthy));
}

fn command(after_seconds: u64, command: Command, reason: &str) -> TimedAction {
    TimedAction { after_seconds, action: Action::Command { command, reason: Some(reason.into()) } }
}

#[test]
fn a_pause_and_a_resume_are_announced_with_who_and_why() {
    let mut s = scenario(steady(stable()));
    let until = s.start.plus_secs(3600);
    s.actions.push(command(4 * 60 + 10, Command::Pause { until }, "checking a ticket"));
    s.actions.push(command(9 * 60 + 10, Command::Resume, "ticket closed"));
    let (o, _, events) = run(s, request(json!("canary-10-5m")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_well_formed(&o, &events);
    let t = types(&events);
    let paused = t.iter().position(|d| *d == "Deployment Paused").expect("paused");
    let resumed = t.iter().position(|d| *d == "Deployment Resumed").expect("resumed");
    let promoted = t.iter().position(|d| *d == "Deployment Promoted").unwrap();
    assert!(paused < resumed && resumed < promoted, "{t:?}");
    assert_eq!(t.iter().filter(|d| **d == "Deployment Paused").count(), 1, "announced once: {t:?}");
    assert_eq!(t[paused - 1], "Health Checked", "the check that applied it comes first");
    let pause = events[paused].detail.command.as_ref().unwrap();
    assert_eq!((pause.action.as_str(), pause.by.as_str()), ("pause", SIMULATED_OPERATOR));
    assert_eq!((pause.reason.as_deref(), pause.until), (Some("checking a ticket"), Some(until)));
    let resume = events[resumed].detail.command.as_ref().unwrap();
    assert_eq!((resume.action.as_str(), resume.reason.as_deref()), ("resume", Some("ticket closed")));
    // The pause held the 10% step past its 5-minute bake.
    let held = events[resumed].detail.at.secs_since(events[0].detail.at);
    assert!(held >= 9 * 60, "{held} s");
}

#[test]
fn an_abort_is_announced_as_a_rollback_naming_who_and_why() {
    let mut s = scenario(steady(stable()));
    s.actions.push(command(2 * 60 + 10, Command::Abort, "ticket 42"));
    let (o, _, events) = run(s, request(json!("canary-10-15m")));
    assert_eq!(o.error.as_deref(), Some("Aborted"), "{o:#?}");
    let last = events.last().unwrap();
    assert_eq!(last.detail_type, DetailType::DeploymentRolledBack);
    assert_eq!(last.detail.error.as_deref(), Some("Aborted"));
    let c = last.detail.command.as_ref().unwrap();
    assert_eq!(
        (c.action.as_str(), c.by.as_str(), c.reason.as_deref()),
        ("abort", SIMULATED_OPERATOR, Some("ticket 42"))
    );
}

#[test]
fn events_that_cannot_be_published_change_nothing_else() {
    let quiet = Simulation::new(scenario(failing(0.2))).unwrap().run(request(json!("linear-10-every-1m")));
    let healthy = Simulation::new(scenario(steady(stable()))).unwrap().run(request(json!("canary-10-5m")));
    for (scenario, strategy, expected) in
        [(scenario(failing(0.2)), "linear-10-every-1m", quiet), (scenario(steady(stable())), "canary-10-5m", healthy)]
    {
        let mut sim = Simulation::new(scenario).unwrap();
        for _ in 0..200 {
            let down = PortError::Unavailable { service: Service::CloudWatch, message: "EventBridge is down".into() };
            sim.env.aws.aws.inject(Call::PutEvents, Fault::Fail(down));
        }
        let o = sim.run(request(json!(strategy)));
        assert!(sim.env.aws.lifecycle_events().is_empty());
        assert!(o.calls[&Call::PutEvents] > 0);
        assert_eq!(
            (o.status.as_str(), o.error.as_deref(), o.cause.as_deref()),
            (expected.status.as_str(), expected.error.as_deref(), expected.cause.as_deref())
        );
        assert_eq!(o.path, expected.path, "the same states");
        assert_eq!(o.duration_seconds, expected.duration_seconds);
    }
}
