//! Custom metrics on the real state machine: a candidate that answers handled 500s is a
//! success to Lambda, so the built-in judge promotes it; the team's own `Http5xx` metric
//! rolls it back, at a step or in the lock-in, and in observe mode only reports it.

use serde_json::{Value, json};
use stepshift_core::ErrorName;
use stepshift_core::ports::AliasRouting;
use stepshift_local::scenario::{STABLE_HANDLED_RATE, handled_5xx_rule};
use stepshift_local::sim::{Behavior, Change, VersionModel};
use stepshift_local::{Outcome, Scenario, Simulation};
use stepshift_tests::*;

/// A version that answers `rate` of its requests with a handled 500.
fn handled(rate: f64) -> Behavior {
    Behavior { handled_error_rate: rate, ..stable() }
}

/// orders:live at 20 requests/s, the stable version answering 0.1% handled 500s.
fn scenario_with(candidate: VersionModel) -> Scenario {
    scenario(candidate).with_stable(handled(STABLE_HANDLED_RATE))
}

fn with_rule(mut request: Value, rule: Value) -> Value {
    request["health"]["metrics"] = json!([rule]);
    request
}

fn run(scenario: Scenario, request: Value) -> Outcome {
    Simulation::new(scenario).unwrap().run(request)
}

/// Every verdict of the checks, in order.
fn verdicts(o: &Outcome) -> Vec<&Value> {
    events(o, "LambdaFunctionSucceeded")
        .into_iter()
        .map(|e| &e["output"]["verdict"])
        .filter(|v| v.is_object())
        .collect()
}

#[test]
fn handled_500s_pass_the_built_in_judge_and_the_custom_metric_rolls_them_back() {
    let bad = || scenario_with(steady(handled(0.08)));
    let built_in = run(bad(), request(json!("canary-10-5m")));
    assert_eq!(built_in.status, "SUCCEEDED", "Lambda counts a handled 500 as a success: {built_in:#?}");
    assert_settled(&built_in, "orders", "42");

    let o = run(bad(), with_rule(request(json!("canary-10-5m")), handled_5xx_rule()));
    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_eq!(o.error.as_deref(), Some(ErrorName::Unhealthy.as_str()));
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("orders:live version 42 http-5xx is"), "{cause}");
    assert!(cause.contains("rate of version 41 over the same minutes"), "compared with the stable version: {cause}");
    assert!(cause.contains("at step 1 of 2 (10%)"), "caught at the canary: {cause}");
    assert_settled(&o, "orders", "41");
    // The checks read the custom series in the same GetMetricData request as Lambda's.
    let v = verdicts(&o);
    let last = v.last().unwrap();
    assert_eq!(last["targets"][0]["custom"][0]["name"], "http-5xx");
    assert!(last["targets"][0]["custom"][0]["candidate"]["total"].as_u64().unwrap() > 100);
}

#[test]
fn a_healthy_candidate_with_the_rule_promotes() {
    let o = run(
        scenario_with(steady(handled(STABLE_HANDLED_RATE))),
        with_rule(request(json!("canary-10-5m")), handled_5xx_rule()),
    );
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    let v = verdicts(&o);
    assert!(v.iter().all(|v| v["observed"].is_null()), "nothing observed without observe rules");
    assert!(v.last().unwrap()["reasons"][0].as_str().unwrap().contains("; http-5xx "), "{:?}", v.last());
}

#[test]
fn handled_500s_that_begin_in_the_lock_in_are_caught_against_the_history() {
    // Healthy through the canary; 8% handled 500s from 6 minutes in (the lock-in).
    let late = VersionModel {
        behavior: handled(STABLE_HANDLED_RATE),
        changes: vec![Change { after_seconds: 360, behavior: handled(0.08) }],
    };
    let mut req = with_rule(with_lock_in("canary-10-5m", 900), handled_5xx_rule());
    req["health"]["metrics"][0]["max_percent"] = Value::Null;
    let o = run(scenario_with(late), req);
    assert_eq!(o.status, "FAILED", "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("http-5xx"), "{cause}");
    assert!(cause.contains("history"), "the candidate had all traffic: judged against the stable history: {cause}");
    assert!(cause.contains("at step 2 of 2 (100%)"), "in the lock-in: {cause}");
    assert_settled(&o, "orders", "41");
}

#[test]
fn an_observe_rule_reports_what_it_would_do_and_never_rolls_back() {
    let mut rule = handled_5xx_rule();
    rule["mode"] = json!("observe");
    let o = run(scenario_with(steady(handled(0.08))), with_rule(request(json!("canary-10-5m")), rule));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_settled(&o, "orders", "42");
    let observed: Vec<String> = verdicts(&o)
        .iter()
        .flat_map(|v| v["observed"].as_array().cloned().unwrap_or_default())
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert!(
        observed.iter().any(|l| l.starts_with("observe-only, would roll back: orders:live version 42 http-5xx")),
        "{observed:#?}"
    );
    assert!(observed.iter().all(|l| l.starts_with("observe-only")));
}

#[test]
fn a_metric_the_stable_version_never_had_is_refused_with_require_data_and_holds_up_promotion_without() {
    let mut typo = handled_5xx_rule();
    typo["all"]["metric"] = json!("Requets");
    typo["require_data"] = json!(true);
    let o = run(scenario_with(steady(stable())), with_rule(request(json!("canary-10-5m")), typo.clone()));
    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_eq!(o.error.as_deref(), Some(ErrorName::InvalidRequest.as_str()));
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("health.metrics[0].all"), "{cause}");
    assert!(cause.contains("had no datapoint of stepshift-demo/Requets"), "{cause}");
    assert_eq!(o.routing("orders", "live"), Some(&AliasRouting::single("41")), "nothing moved");
    assert_eq!(o.parameter("/stepshift/orders/live/lock"), None, "no lock taken");

    typo["require_data"] = json!(false);
    let o = run(scenario_with(steady(stable())), with_rule(request(json!("canary-10-5m")), typo));
    assert_eq!(o.status, "FAILED", "no data for the candidate either: no promotion without evidence: {o:#?}");
    assert_eq!(o.error.as_deref(), Some(ErrorName::InsufficientData.as_str()));
    let v = verdicts(&o);
    assert!(
        v[0]["notes"].to_string().contains("had no datapoint of stepshift-demo/Requets"),
        "every verdict says so: {}",
        v[0]
    );
}

#[test]
fn the_largest_custom_metrics_request_keeps_every_state_under_step_functions_256_kb() {
    // Five targets with twenty rate rules each is the most GetMetricData's 500 queries
    // allow: 5 × 2 × (7 + 40) = 470. Every check then carries 100 custom samples.
    let names = ["orders", "billing", "search", "basket", "users"];
    let mut s = scenario_with(steady(handled(STABLE_HANDLED_RATE)));
    for name in &names[1..] {
        s.functions.push(function(name, 20.0, steady(handled(STABLE_HANDLED_RATE))));
    }
    let s = s.with_stable(handled(STABLE_HANDLED_RATE));
    let rules: Vec<Value> = (0..20)
        .map(|i| {
            let mut r = handled_5xx_rule();
            r["name"] = json!(format!("http-5xx-{i:02}-with-a-long-name-for-the-verdicts"));
            r
        })
        .collect();
    let mut req = with_lock_in("canary-10-5m", 300);
    req["targets"] =
        json!(names.iter().map(|f| json!({"function": f, "alias": "live", "version": "42"})).collect::<Vec<_>>());
    req["health"]["metrics"] = json!(rules);
    let o = run(s, req);
    assert_eq!(o.status, "SUCCEEDED", "{:?}", o.cause);
    let largest = o.history.iter().map(|e| e.details.to_string().len()).max().unwrap();
    let samples = verdicts(&o).last().unwrap()["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["custom"].as_array().unwrap().len())
        .sum::<usize>();
    assert_eq!(samples, 100);
    assert!(largest < 256 * 1024, "a state's data is {largest} bytes");
    println!("largest state data: {largest} bytes");
}
