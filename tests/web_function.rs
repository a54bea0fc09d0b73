//! Lambda Web Function endpoints as a third router: the real state machine, the real
//! handlers, an in-memory `lambda-web` API with the documented rules (asynchronous
//! updates, whole weights over at most two revisions), and a simulated endpoint whose
//! requests reach each revision by the weights of its last successful update. The
//! endpoint is judged on its alarm (its request metrics are per endpoint, not per
//! revision), which the simulation computes from the endpoint's 5xx share.

use serde_json::{Value, json};
use stepshift_core::State;
use stepshift_core::memory::Call;
use stepshift_core::routers::web::{RevisionWeight, UpdateStatus, WebEndpoints};
use stepshift_local::scenario::{CANDIDATE_REVISION, STABLE_REVISION, web_request};
use stepshift_local::sim::{Behavior, VersionModel};
use stepshift_local::{Outcome, Scenario, Simulation};

const KEYS: &str = "/stepshift/lambda-web-orders-web/live";

fn scenario(candidate_5xx: f64) -> Scenario {
    let stable = Behavior { error_rate: 0.002, ..Behavior::default() };
    let candidate = VersionModel::steady(Behavior { error_rate: candidate_5xx, ..stable.clone() });
    Scenario::web_function(candidate).with_stable(stable).with_rps(50.0).with_seed(11).with_lag((60, 120))
}

fn request() -> Value {
    web_request(
        json!([
            {"weight_percent": 10, "bake_seconds": 300},
            {"weight_percent": 50, "bake_seconds": 300},
            {"weight_percent": 100}
        ]),
        300,
    )
}

fn serving(o: &Outcome) -> Vec<RevisionWeight> {
    o.endpoints.iter().find(|(f, e, _)| f == "orders-web" && e == "live").map(|(_, _, w)| w.clone()).unwrap()
}

fn only(revision: &str) -> Vec<RevisionWeight> {
    vec![RevisionWeight { revision: revision.into(), weight: 100 }]
}

#[test]
fn a_healthy_revision_is_promoted_after_each_update_took_effect() {
    let o = Simulation::new(scenario(0.002)).unwrap().run(request());
    assert_eq!(o.status, "SUCCEEDED", "{:?} {:?}", o.error, o.cause);
    assert_eq!(serving(&o), only(CANDIDATE_REVISION));
    // Each step waits for its update (2 reads InProgress) before the bake: the same
    // states as a Route53 step's INSYNC wait.
    let first: Vec<&str> =
        o.path.iter().skip_while(|s| **s != State::ShiftThenSync).take(7).map(String::as_str).collect();
    assert_eq!(
        first,
        [
            State::ShiftThenSync,
            State::InSync,
            State::WaitForSync,
            State::CheckSync,
            State::InSync,
            State::WaitForSync,
            State::CheckSync
        ]
        .map(|s| s.as_str())
    );
    let summary = o.output.as_ref().unwrap()["summary"].as_str().unwrap().to_owned();
    assert_eq!(summary, "Released: orders-web/live now serves revision rev-42 (was revision rev-41).");
    assert_eq!(o.parameter(&format!("{KEYS}/current-version")), Some(CANDIDATE_REVISION));
    assert!(o.parameter(&format!("{KEYS}/lock")).is_none());
    // Two shifts and a promotion: three updates; no Lambda alias or Route53 call.
    assert_eq!(o.calls.get(&Call::UpdateWebFunctionEndpoint), Some(&3));
    assert_eq!(o.calls.get(&Call::UpdateAlias), None);
    assert_eq!(o.calls.get(&Call::ChangeRecordSets), None);
}

#[test]
fn a_failing_revision_trips_the_endpoint_alarm_and_is_rolled_back() {
    let mut sim = Simulation::new(scenario(0.3)).unwrap();
    let o = sim.run(request());
    assert_eq!(o.status, "FAILED");
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{:?}", o.cause);
    let cause = o.cause.clone().unwrap();
    assert!(cause.contains("orders-web-5xx"), "{cause}");
    assert!(cause.starts_with("Rolled back orders-web/live from rev-42 to rev-41"), "{cause}");
    // The rollback's update was accepted; like every endpoint update it takes effect
    // within the endpoint's update time (15 s here), whether anyone waits or not.
    let endpoint = futures_executor::block_on(sim.env.aws.aws.get_endpoint("orders-web", "live")).unwrap();
    assert_eq!(endpoint.weights, only(STABLE_REVISION));
    sim.env.aws.aws.advance(15);
    assert_eq!(sim.env.aws.aws.web_serving("orders-web", "live").unwrap(), only(STABLE_REVISION));
    assert_eq!(o.parameter(&format!("{KEYS}/current-version")), Some(STABLE_REVISION), "the records say rev-41 again");
    assert!(o.parameter(&format!("{KEYS}/lock")).is_none());
}

#[test]
fn a_fractional_step_is_refused_before_anything_moves() {
    let mut request = request();
    request["strategy"][0]["weight_percent"] = json!(2.5);
    let o = Simulation::new(scenario(0.002)).unwrap().run(request);
    assert_eq!(o.error.as_deref(), Some("InvalidRequest"));
    let cause = o.cause.clone().unwrap();
    assert!(cause.contains("step 1 is 2.5%") && cause.contains("use 2 or 3"), "{cause}");
    assert_eq!(serving(&o), only(STABLE_REVISION));
    assert_eq!(o.calls.get(&Call::UpdateWebFunctionEndpoint), None);
}

#[test]
fn a_failed_endpoint_update_rolls_back_with_its_reason() {
    let mut sim = Simulation::new(scenario(0.002)).unwrap();
    sim.env.aws.aws.fail_next_web_update("revision rev-42 could not be scaled");
    let o = sim.run(request());
    assert_eq!(o.error.as_deref(), Some("EndpointUpdateFailed"), "{:?}", o.cause);
    assert!(o.cause.clone().unwrap().contains("revision rev-42 could not be scaled"));
    assert_eq!(serving(&o), only(STABLE_REVISION));
    let state = futures_executor::block_on(sim.env.aws.aws.get_endpoint("orders-web", "live")).unwrap();
    assert_ne!(state.update, UpdateStatus::InProgress);
}
