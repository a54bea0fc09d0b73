//! Front-end blue/green through Route53 weighted records: the real state machine, the
//! real handlers, a simulated hosted zone with Route53's batch rules, and a simulated
//! site whose requests reach the blue or the green CloudFront distribution by the
//! record's weights.

use serde_json::{Value, json};
use stepshift_core::memory::{Call, Fault};
use stepshift_core::routers::route53::{Endpoint, RecordSet, RecordTarget, RecordType};
use stepshift_core::{PortError, Service, State};
use stepshift_local::runner::{Action, TimedAction};
use stepshift_local::sim::{Behavior, VersionModel};
use stepshift_local::{Outcome, Scenario, Simulation};

const ZONE: &str = "Z0123456789ABCDEFGHIJ";
const KEYS: &str = "/stepshift/route53-Z0123456789ABCDEFGHIJ/www.example.com-A";

fn record() -> RecordTarget {
    RecordTarget {
        hosted_zone_id: ZONE.into(),
        record_name: "www.example.com".into(),
        record_type: RecordType::A,
        blue: Endpoint::cloudfront("d111111abcdef8.cloudfront.net", Some("E1BLUE")),
        green: Endpoint::cloudfront("d222222abcdef8.cloudfront.net", Some("E2GREEN")),
    }
}

/// The site at 50 requests/s; blue fails 0.1% of requests, green `green_5xx`.
fn scenario(green_5xx: f64) -> Scenario {
    let blue = Behavior { error_rate: 0.001, ..Behavior::default() };
    let green = VersionModel::steady(Behavior { error_rate: green_5xx, ..blue.clone() });
    Scenario::site(record(), green).with_stable(blue).with_rps(50.0).with_seed(7).with_lag((60, 120))
}

fn request() -> Value {
    let mut target = serde_json::to_value(record()).unwrap();
    target["kind"] = json!("route53");
    json!({
        "schema": 1,
        "targets": [target],
        "strategy": [
            {"weight_percent": 10, "bake_seconds": 300},
            {"weight_percent": 50, "bake_seconds": 300},
            {"weight_percent": 100}
        ],
        "lock_in_seconds": 300
    })
}

fn original() -> RecordSet {
    record().before_release()
}

fn zone(o: &Outcome) -> &[RecordSet] {
    &o.zones[ZONE]
}

fn history_events(o: &Outcome) -> Vec<String> {
    let text = o.parameter(&format!("{KEYS}/history")).unwrap_or("[]");
    let history: Vec<Value> = serde_json::from_str(text).unwrap();
    history.iter().map(|h| h["event"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_healthy_release_waits_for_dns_and_ends_on_a_simple_record_for_green() {
    let mut sim = Simulation::new(scenario(0.001)).unwrap();
    // Every change is still PENDING at the first GetChange poll, as Route53's is for a
    // while, and INSYNC at the second.
    sim.env.aws.aws.set_polls_until_insync(1);
    let o = sim.run(request());
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_eq!(zone(&o), [record().promoted()], "green alone, on a simple record again");
    assert_eq!(o.parameter(&format!("{KEYS}/current-version")), Some("E2GREEN"));
    assert_eq!(o.parameter(&format!("{KEYS}/previous-version")), Some("E1BLUE"));
    assert_eq!(o.parameter(&format!("{KEYS}/last-known-good-version")), Some("E2GREEN"));
    assert_eq!(o.parameter(&format!("{KEYS}/lock")), None, "the lock is released");
    assert_eq!(history_events(&o), ["started", "promoted", "confirmed"]);
    // Each shift waits for INSYNC before the bake: (Wait, Check, in sync?) until it is.
    let first_step: Vec<&str> =
        o.path.iter().skip_while(|s| **s != State::ShiftThenSync).take(9).map(String::as_str).collect();
    assert_eq!(
        first_step,
        [
            State::ShiftThenSync,
            State::InSync,
            State::WaitForSync,
            State::CheckSync,
            State::InSync,
            State::WaitForSync,
            State::CheckSync,
            State::InSync,
            State::Bake
        ]
    );
    assert_eq!(o.path.iter().filter(|s| **s == State::ShiftThenSync).count(), 2);
    assert!(!o.path.iter().any(|s| *s == State::ShiftTraffic), "no Lambda alias is touched");
    // One atomic batch per phase: split, the 50% step, the promotion.
    assert_eq!(o.calls[&Call::ChangeRecordSets], 3, "{:?}", o.calls);
    let output = o.output.as_ref().unwrap();
    assert!(
        output["summary"].as_str().unwrap().contains("www.example.com. A now serves green E2GREEN (was blue E1BLUE)"),
        "{output}"
    );
    let verdict = &output["steps"][1];
    assert_eq!(verdict["status"], "healthy", "{output}");
}

#[test]
fn a_5xx_regression_on_green_restores_the_original_record_exactly() {
    let o = Simulation::new(scenario(0.08)).unwrap().run(request());
    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_eq!(o.error.as_deref(), Some("Unhealthy"));
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("www.example.com. A green E2GREEN"), "{cause}");
    assert!(cause.contains("blue E1BLUE"), "the comparison names the baseline: {cause}");
    assert_eq!(zone(&o), [original()], "the simple record for blue, exactly as it was");
    assert_eq!(o.parameter(&format!("{KEYS}/current-version")), Some("E1BLUE"));
    assert_eq!(o.parameter(&format!("{KEYS}/lock")), None);
    assert_eq!(history_events(&o), ["started", "rolled_back"]);
    assert!(!o.path.iter().any(|s| *s == State::Promote), "{:?}", o.path);
}

#[test]
fn a_record_changed_by_hand_stops_the_release_and_is_left_alone() {
    let mut theirs = original();
    theirs.alias_target.as_mut().unwrap().dns_name = "d333333abcdef8.cloudfront.net.".into();
    let mut s = scenario(0.001);
    s.actions = vec![TimedAction {
        after_seconds: 200,
        action: Action::SetRecords { hosted_zone_id: ZONE.into(), records: vec![theirs.clone()] },
    }];
    let o = Simulation::new(s).unwrap().run(request());
    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_eq!(o.error.as_deref(), Some("RecordDrift"));
    assert!(o.cause.as_deref().unwrap().contains("changed outside stepshift"), "{o:#?}");
    assert_eq!(zone(&o), [theirs], "stepshift does not overwrite a person's change");
    assert_eq!(o.parameter(&format!("{KEYS}/lock")), None);
    assert_eq!(o.calls[&Call::ChangeRecordSets], 1, "only the first shift wrote");
}

#[test]
fn route53_throttling_is_retried() {
    let mut sim = Simulation::new(scenario(0.001)).unwrap();
    let throttled = PortError::Throttled { service: Service::Route53, message: "Rate exceeded".into() };
    sim.env.aws.aws.inject(Call::ChangeRecordSets, Fault::Fail(throttled.clone()));
    sim.env.aws.aws.inject(Call::GetChange, Fault::FailAfter(throttled));
    let o = sim.run(request());
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_eq!(zone(&o), [record().promoted()]);
}

#[test]
fn a_record_that_is_not_on_blue_is_refused_and_nothing_changes() {
    let mut bad = request();
    // The request says blue is a distribution the record does not point at.
    bad["targets"][0]["blue"]["alias_target"]["dns_name"] = json!("d999999abcdef8.cloudfront.net");
    let o = Simulation::new(scenario(0.001)).unwrap().run(bad);
    assert_eq!(o.status, "FAILED");
    assert_eq!(o.error.as_deref(), Some("InvalidRequest"));
    assert!(o.cause.as_deref().unwrap().contains("targets[0]: www.example.com. A points at"), "{o:#?}");
    assert_eq!(zone(&o), [original()]);
    assert_eq!(o.parameter(&format!("{KEYS}/lock")), None);
    assert_eq!(o.calls.get(&Call::ChangeRecordSets), None);

    let mut missing = request();
    missing["targets"][0]["hosted_zone_id"] = json!("ZNOSUCHZONE");
    let o = Simulation::new(scenario(0.001)).unwrap().run(missing);
    assert_eq!(o.error.as_deref(), Some("InvalidRequest"));
    assert!(o.cause.as_deref().unwrap().contains("targets[0].hosted_zone_id: no hosted zone ZNOSUCHZONE"), "{o:#?}");
}

#[test]
fn a_change_that_never_syncs_stops_the_release_instead_of_hanging() {
    let mut sim = Simulation::new(scenario(0.001)).unwrap();
    sim.env.aws.aws.set_polls_until_insync(u32::MAX);
    let o = sim.run(request());
    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_eq!(o.error.as_deref(), Some("NotInSync"));
    assert!(o.cause.as_deref().unwrap().contains("www.example.com. A (C000001) was still not in effect"), "{o:#?}");
    assert_eq!(zone(&o), [original()], "rolled back to the original record");
    assert!(o.duration_seconds < 900, "gave up after about 10 minutes: {} s", o.duration_seconds);
}

#[test]
fn green_failing_in_the_lock_in_is_compared_with_blues_history_and_rolled_back() {
    let mut s = scenario(0.001);
    let blue = Behavior { error_rate: 0.001, ..Behavior::default() };
    // Green serves well through both steps, then answers 5% 5xx from 14 minutes in,
    // 4 minutes into a 30-minute lock-in.
    let onset = 14 * 60;
    s.sites[0].behaviors.insert(
        "E2GREEN".into(),
        VersionModel {
            behavior: blue.clone(),
            changes: vec![stepshift_local::sim::Change {
                after_seconds: onset,
                behavior: Behavior { error_rate: 0.05, ..blue },
            }],
        },
    );
    let mut req = request();
    req["lock_in_seconds"] = json!(1800);
    let o = Simulation::new(s).unwrap().run(req);
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{:?}", o.cause);
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("at step 3 of 3 (100%)"), "{cause}");
    assert!(cause.contains("fails") && cause.contains("blue E1BLUE's history 08:00-09:00"), "{cause}");
    assert_eq!(zone(&o), [original()], "the record is restored exactly");
    assert_eq!(o.parameter(&format!("{KEYS}/last-known-good-version")), None);
}
