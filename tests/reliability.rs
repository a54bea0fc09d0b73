//! Reliability: a randomized fault campaign on the real state machine, and a corpus of
//! bad requests that must each be rejected by the first task, naming the field, with no
//! write to any simulated AWS service.

use serde_json::Value;
use stepshift_core::State;
use stepshift_local::Simulation;
use stepshift_local::campaign;
use stepshift_local::sim::ScheduledAlarm;
use stepshift_tests::*;

/// Deployments per `cargo test` run; `make bench-faults` runs many more.
const DEPLOYMENTS: u32 = 150;

#[test]
fn every_deployment_ends_cleanly_under_random_faults() {
    let report = campaign::run(1, DEPLOYMENTS);
    let listed: Vec<String> = report.violations.iter().map(|v| format!("seed {}: {}", v.seed, v.message)).collect();
    assert!(
        listed.is_empty(),
        "{} invariant violations (reproduce with stepshift_local::campaign::deployment(seed)):\n{}",
        listed.len(),
        listed.join("\n")
    );
    // The campaign must actually have exercised what it claims to.
    assert!(report.faults_struck > DEPLOYMENTS / 2, "only {} faults struck", report.faults_struck);
    assert!(report.outcomes.get("SUCCEEDED").copied().unwrap_or(0) > 20, "{:?}", report.outcomes);
    assert!(report.outcomes.len() >= 4, "a variety of endings: {:?}", report.outcomes);
    assert!(report.faults_injected.keys().any(|k| k.starts_with("crash")), "{:?}", report.faults_injected);
    assert!(report.outcomes.contains_key("HookFailed"), "some validation hooks failed: {:?}", report.outcomes);
    assert!(report.outcomes.contains_key("Aborted"), "some deployments were aborted: {:?}", report.outcomes);
}

/// Fifty deployments started at once in one account whose Lambda control plane and
/// Parameter Store throttle above their real rates (`make bench-scale` runs many fleets).
#[test]
fn fifty_deployments_at_once_in_a_throttling_account_end_cleanly() {
    use stepshift_local::fleet::{self, FleetOptions};
    for (seed, faults) in [(1, true), (2001, false)] {
        let r = fleet::run(&FleetOptions { faults, ..FleetOptions::new(50, seed) });
        let listed: Vec<String> = r
            .violations
            .iter()
            .chain(&r.failed_for_throttling)
            .map(|v| format!("seed {}: {}", v.seed, v.message))
            .collect();
        assert!(listed.is_empty(), "fleet {seed} (faults: {faults}):\n{}", listed.join("\n"));
        assert_eq!(r.ends.len(), 50);
        assert_eq!(r.clock_went_back, 0, "the shared clock never goes back");
        let lambda = &r.quotas["Lambda control plane"];
        assert!(lambda.throttled > 50, "the quota was exercised: {lambda:?}");
        assert!(r.throttled_attempts > 50, "{} task attempts retried", r.throttled_attempts);
        assert_eq!(r.throttled_finally, 0, "no task ran out of retries for throttling");
        assert!(r.outcomes.get("SUCCEEDED").copied().unwrap_or(0) >= 10, "{:?}", r.outcomes);
    }
}

#[test]
fn every_bad_request_is_rejected_naming_its_field_and_writes_nothing() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/bad-requests.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let mut s = scenario(steady(stable()));
        s.alarms = vec![ScheduledAlarm { name: "orders-5xx".into(), states: Vec::new() }];
        let mut sim = Simulation::new(s).unwrap();
        let o = sim.run(case["request"].clone());
        let field = case["field"].as_str().unwrap();
        let cause = o.cause.clone().unwrap_or_default();
        let named = cause.contains(&format!("{field}:")) || cause.contains(&format!("{field} "));
        let problems = [
            (o.error.as_deref() != Some("InvalidRequest"), format!("error {:?}", o.error)),
            (!named, format!("cause does not name {field}: {cause}")),
            (sim.env.aws.aws.writes() != 0, format!("{} writes", sim.env.aws.aws.writes())),
            (
                o.path != [State::BeginDeployment, State::RecordRejection, State::DeploymentRejected],
                format!("path {:?}", o.path),
            ),
            (o.routing("orders", "live").map(|r| r.version.as_str()) != Some("41"), "the alias moved".into()),
        ];
        for (bad, what) in problems {
            if bad {
                failures.push(format!("{}: {what}", case["name"]));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
