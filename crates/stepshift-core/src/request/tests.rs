use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::custom::Mode;
use crate::routers::route53::{AliasTarget, Endpoint, RecordTarget, RecordType};

fn valid() -> Value {
    json!({
        "schema": 1,
        "targets": [{"function": "orders-api", "alias": "live", "version": "42"}],
        "strategy": "canary-10-5m"
    })
}

/// Applies `edit` to a valid request and returns the fields its errors name.
fn rejected_fields(edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut v = valid();
    edit(&mut v);
    match DeploymentRequest::from_value(v) {
        Ok(r) => panic!("request was accepted: {r:?}"),
        Err(e) => e.0.into_iter().map(|e| e.field).collect(),
    }
}

fn assert_rejects(field: &str, edit: impl FnOnce(&mut Value)) {
    let fields = rejected_fields(edit);
    assert!(fields.iter().any(|f| f == field), "expected an error on `{field}`, got {fields:?}");
}

#[test]
fn minimal_request_gets_documented_defaults() {
    let r = DeploymentRequest::from_value(valid()).unwrap();
    assert_eq!(r.targets.aliases[0].qualified(), "orders-api:live");
    assert_eq!(r.lock_in_seconds, 300);
    assert_eq!(r.approval_timeout_seconds, 86_400);
    assert_eq!(r.keep_versions, None);
    assert_eq!(r.health.min_invocations, 5);
    assert_eq!(r.health.error_rate.max_percent, Some(5.0));
    assert_eq!(r.health.insufficient_data.then, WhenInsufficient::RollBack);
    let steps = r.steps();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].bake_seconds, 300);
}

#[test]
fn version_may_be_a_json_number() {
    let mut v = valid();
    v["targets"][0]["version"] = json!(42);
    assert_eq!(DeploymentRequest::from_value(v).unwrap().targets.aliases[0].version, "42");
}

#[test]
fn custom_steps_are_expanded_with_their_approvals() {
    let mut v = valid();
    v["strategy"] = json!([
        {"weight_percent": 5, "bake_seconds": 60},
        {"weight_percent": 50, "bake_seconds": 120, "approval": true},
        {"weight_percent": 100}
    ]);
    let steps = DeploymentRequest::from_value(v).unwrap().steps();
    assert_eq!(steps.iter().map(|s| s.weight_percent).collect::<Vec<_>>(), [5.0, 50.0, 100.0]);
    assert_eq!(steps.iter().map(|s| s.approval).collect::<Vec<_>>(), [false, true, false]);
    assert_eq!(steps[2].bake_seconds, 0);
}

#[test]
fn request_round_trips_through_json() {
    let mut v = valid();
    v["strategy"] = json!([{"weight_percent": 20, "bake_seconds": 60}, {"weight_percent": 100}]);
    v["health"] = json!({"alarms": ["orders-5xx"], "p99_duration": {"max_ms": 800}});
    let r = DeploymentRequest::from_value(v).unwrap();
    let again = DeploymentRequest::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(r, again);
}

#[test]
fn json_text_is_parsed_like_a_value() {
    let r = DeploymentRequest::from_json(&valid().to_string()).unwrap();
    assert_eq!(r.targets.len(), 1);
    let err = DeploymentRequest::from_json("{\"schema\": 1, \"targets\": [").unwrap_err();
    assert_eq!(err.fields(), ["request"]);
    assert!(err.to_string().starts_with("request: is not valid JSON"), "{err}");
}

#[test]
fn schema_is_required_and_must_be_one() {
    assert_rejects("schema", |v| {
        v.as_object_mut().unwrap().remove("schema");
    });
    assert_rejects("schema", |v| v["schema"] = json!(2));
    assert_rejects("schema", |v| v["schema"] = json!("1"));
}

#[test]
fn unknown_fields_are_named() {
    assert_rejects("colour", |v| v["colour"] = json!("blue"));
    assert_rejects("targets[0].weight", |v| v["targets"][0]["weight"] = json!(3));
    assert_rejects("health.max_errors", |v| v["health"] = json!({"max_errors": 3}));
    assert_rejects("strategy[0].bake", |v| v["strategy"] = json!([{"weight_percent": 100, "bake": 1}]));
}

#[test]
fn wrong_types_are_named() {
    assert_rejects("targets", |v| v["targets"] = json!("orders-api"));
    assert_rejects("targets[0].function", |v| v["targets"][0]["function"] = json!(7));
    assert_rejects("targets[0].version", |v| v["targets"][0]["version"] = json!(true));
    assert_rejects("strategy", |v| v["strategy"] = json!(10));
    assert_rejects("strategy[0].weight_percent", |v| v["strategy"] = json!([{"weight_percent": "ten"}]));
    assert_rejects("strategy[0].bake_seconds", |v| {
        v["strategy"] = json!([{"weight_percent": 10, "bake_seconds": -5}, {"weight_percent": 100}])
    });
    assert_rejects("lock_in_seconds", |v| v["lock_in_seconds"] = json!("5m"));
}

#[test]
fn missing_fields_are_named() {
    assert_rejects("targets", |v| {
        v.as_object_mut().unwrap().remove("targets");
    });
    assert_rejects("strategy", |v| {
        v.as_object_mut().unwrap().remove("strategy");
    });
    assert_rejects("targets[0].alias", |v| {
        v["targets"][0].as_object_mut().unwrap().remove("alias");
    });
}

#[test]
fn targets_rules() {
    assert_rejects("targets", |v| v["targets"] = json!([]));
    assert_rejects("targets[0].function", |v| v["targets"][0]["function"] = json!(""));
    assert_rejects("targets[0].function", |v| {
        v["targets"][0]["function"] = json!("arn:aws:lambda:us-east-1:123456789012:function:orders-api")
    });
    assert_rejects("targets[0].function", |v| v["targets"][0]["function"] = json!("orders api"));
    assert_rejects("targets[0].function", |v| v["targets"][0]["function"] = json!("f".repeat(65)));
    assert_rejects("targets[0].alias", |v| v["targets"][0]["alias"] = json!("7"));
    assert_rejects("targets[0].alias", |v| v["targets"][0]["alias"] = json!("live/now"));
    assert_rejects("targets[0].version", |v| v["targets"][0]["version"] = json!("$LATEST"));
    assert_rejects("targets[0].version", |v| v["targets"][0]["version"] = json!("v2"));
    assert_rejects("targets[0].version", |v| v["targets"][0]["version"] = json!("0"));
    assert_rejects("targets[0].version", |v| v["targets"][0]["version"] = json!(""));
    assert_rejects("targets[1]", |v| {
        v["targets"] = json!([
            {"function": "a", "alias": "live", "version": "2"},
            {"function": "a", "alias": "live", "version": "3"}
        ])
    });
    assert_rejects("targets", |v| {
        v["targets"] = json!(
            (0..21).map(|i| json!({"function": format!("f{i}"), "alias": "live", "version": "2"})).collect::<Vec<_>>()
        )
    });
}

#[test]
fn strategy_rules() {
    assert_rejects("strategy", |v| v["strategy"] = json!("canary-10-7m"));
    assert_rejects("strategy", |v| v["strategy"] = json!([]));
    assert_rejects("strategy[0].weight_percent", |v| {
        v["strategy"] = json!([{"weight_percent": 0, "bake_seconds": 60}, {"weight_percent": 100}])
    });
    assert_rejects("strategy[0].weight_percent", |v| {
        v["strategy"] = json!([{"weight_percent": -10, "bake_seconds": 60}, {"weight_percent": 100}])
    });
    assert_rejects("strategy[0].weight_percent", |v| v["strategy"] = json!([{"weight_percent": 150}]));
    assert_rejects(
        "strategy[1].weight_percent",
        |v| v["strategy"] = json!([{"weight_percent": 50, "bake_seconds": 60}, {"weight_percent": 20, "bake_seconds": 60}, {"weight_percent": 100}]),
    );
    assert_rejects(
        "strategy[1].weight_percent",
        |v| v["strategy"] = json!([{"weight_percent": 50, "bake_seconds": 60}, {"weight_percent": 50, "bake_seconds": 60}, {"weight_percent": 100}]),
    );
    assert_rejects("strategy[1].weight_percent", |v| {
        v["strategy"] = json!([{"weight_percent": 10, "bake_seconds": 60}, {"weight_percent": 50, "bake_seconds": 60}])
    });
    assert_rejects("strategy[0].bake_seconds", |v| {
        v["strategy"] = json!([{"weight_percent": 10}, {"weight_percent": 100}])
    });
    assert_rejects("strategy[0].bake_seconds", |v| {
        v["strategy"] = json!([{"weight_percent": 10, "bake_seconds": 10_000_000_000u64}, {"weight_percent": 100}])
    });
    assert_rejects("strategy[1].bake_seconds", |v| {
        v["strategy"] =
            json!([{"weight_percent": 10, "bake_seconds": 60}, {"weight_percent": 100, "bake_seconds": 600}])
    });
    assert_rejects("strategy", |v| {
        let steps: Vec<Value> =
            (1..=51).map(|i| json!({"weight_percent": f64::from(i) * 100.0 / 51.0, "bake_seconds": 1})).collect();
        v["strategy"] = json!(steps);
    });
}

#[test]
fn total_duration_must_fit_one_execution() {
    let fields = rejected_fields(|v| {
        let steps: Vec<Value> = (1..=50)
            .map(|i| json!({"weight_percent": f64::from(i) * 2.0, "bake_seconds": MAX_WAIT_SECONDS}))
            .map(|mut s| {
                if s["weight_percent"] == json!(100.0) {
                    s.as_object_mut().unwrap().remove("bake_seconds");
                }
                s
            })
            .collect();
        v["strategy"] = json!(steps);
    });
    assert_eq!(fields, ["strategy"]);
}

#[test]
fn health_rules() {
    assert_rejects("health.error_rate.max_percent", |v| v["health"] = json!({"error_rate": {"max_percent": 101}}));
    assert_rejects("health.error_rate.max_percent", |v| v["health"] = json!({"error_rate": {"max_percent": -1}}));
    assert_rejects("health.p99_duration.max_ms", |v| v["health"] = json!({"p99_duration": {"max_ms": 0}}));
    assert_rejects("health.p99_duration.max_ms", |v| v["health"] = json!({"p99_duration": {"max_ms": 1e9}}));
    assert_rejects("health.throttles.max_count", |v| v["health"] = json!({"throttles": {"max_count": -1}}));
    assert_rejects("health.min_invocations", |v| v["health"] = json!({"min_invocations": 2_000_000_000u64}));
    assert_rejects("health.alarms[1]", |v| v["health"] = json!({"alarms": ["a", "a"]}));
    assert_rejects("health.alarms[0]", |v| v["health"] = json!({"alarms": [" "]}));
    assert_rejects("health.alarms", |v| {
        v["health"] = json!({"alarms": (0..101).map(|i| format!("alarm-{i}")).collect::<Vec<_>>()})
    });
    assert_rejects("health.metric_lag_seconds", |v| v["health"] = json!({"metric_lag_seconds": 7200}));
    assert_rejects("health.check_interval_seconds", |v| v["health"] = json!({"check_interval_seconds": 10}));
    assert_rejects("health.insufficient_data.extensions", |v| {
        v["health"] = json!({"insufficient_data": {"extensions": 1000}})
    });
    assert_rejects("health.insufficient_data.extension_seconds", |v| {
        v["health"] = json!({"insufficient_data": {"extension_seconds": 0}})
    });
    assert_rejects("health.insufficient_data.then", |v| v["health"] = json!({"insufficient_data": {"then": "shrug"}}));
}

#[test]
fn top_level_limits() {
    assert_rejects("lock_in_seconds", |v| v["lock_in_seconds"] = json!(MAX_WAIT_SECONDS + 1));
    assert_rejects("approval_timeout_seconds", |v| v["approval_timeout_seconds"] = json!(0));
    assert_rejects("keep_versions", |v| v["keep_versions"] = json!(0));
    assert_rejects("request", |v| v["health"] = json!({"alarms": ["x".repeat(MAX_REQUEST_BYTES)]}));
    assert_rejects("request", |v| *v = json!([1, 2, 3]));
}

#[test]
fn arrays_are_not_objects() {
    assert_rejects("targets[0]", |v| v["targets"] = json!([["orders-api", "live", "42"]]));
    assert_rejects("strategy[0]", |v| v["strategy"] = json!([[100, 0]]));
    assert_rejects("health", |v| v["health"] = json!([5, 5]));
    assert_rejects("health.error_rate", |v| v["health"] = json!({"error_rate": [5]}));
}

#[test]
fn every_problem_is_reported_at_once() {
    let fields = rejected_fields(|v| {
        v["targets"][0]["version"] = json!("$LATEST");
        v["strategy"] = json!("nope");
        v["keep_versions"] = json!(0);
    });
    assert_eq!(fields, ["targets[0].version", "strategy", "keep_versions"]);
}

#[test]
fn messages_say_why() {
    let mut v = valid();
    v["strategy"] = json!("canary-10-7m");
    let e = DeploymentRequest::from_value(v).unwrap_err();
    assert!(e.to_string().starts_with("strategy: unknown preset `canary-10-7m`; known presets: all-at-once,"), "{e}");
}

proptest! {
    #[test]
    fn increasing_steps_ending_at_100_are_accepted(mut weights in proptest::collection::btree_set(1u32..100, 0..10), bake in 0u64..3600) {
        weights.insert(100);
        let steps: Vec<Value> = weights
            .iter()
            .map(|w| if *w == 100 { json!({"weight_percent": w}) } else { json!({"weight_percent": w, "bake_seconds": bake}) })
            .collect();
        let mut v = valid();
        v["strategy"] = json!(steps);
        let r = DeploymentRequest::from_value(v).unwrap();
        let expanded = r.steps();
        prop_assert_eq!(expanded.len(), weights.len());
        prop_assert!(expanded.windows(2).all(|w| w[0].weight_percent < w[1].weight_percent));
        prop_assert_eq!(expanded.last().unwrap().weight_percent, 100.0);
    }

    #[test]
    fn any_decrease_is_rejected_at_the_step_that_decreases(a in 2u32..99, drop in 1u32..50) {
        let b = a.saturating_sub(drop).max(1);
        let mut v = valid();
        v["strategy"] = json!([
            {"weight_percent": a, "bake_seconds": 1},
            {"weight_percent": b, "bake_seconds": 1},
            {"weight_percent": 100}
        ]);
        let e = DeploymentRequest::from_value(v).unwrap_err();
        prop_assert!(e.names("strategy[1].weight_percent"));
    }
}

fn route53_target() -> Value {
    json!({
        "kind": "route53",
        "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
        "record_name": "www.example.com",
        "record_type": "A",
        "blue": {"alias_target": {"dns_name": "d1.cloudfront.net", "hosted_zone_id": "Z2FDTNDATAQYW2"}, "distribution_id": "E1BLUE"},
        "green": {"alias_target": {"dns_name": "d2.cloudfront.net", "hosted_zone_id": "Z2FDTNDATAQYW2"}, "distribution_id": "E2GREEN"}
    })
}

#[test]
fn a_route53_target_is_read_and_written_back_with_its_kind() {
    let mut v = valid();
    v["targets"] = json!([route53_target()]);
    let r = DeploymentRequest::from_value(v).unwrap();
    assert!(r.targets.aliases.is_empty());
    assert_eq!(r.targets.records[0].label(), "www.example.com. A");
    assert_eq!(r.targets.records[0].green.label(), "E2GREEN");
    let again = serde_json::to_value(&r).unwrap();
    assert_eq!(again["targets"][0]["kind"], "route53");
    assert_eq!(DeploymentRequest::from_value(again).unwrap(), r, "a request survives its own serialization");
    // The default kind may be spelled out.
    let mut v = valid();
    v["targets"][0]["kind"] = json!("lambda");
    assert_eq!(DeploymentRequest::from_value(v).unwrap().targets.aliases.len(), 1);
}

#[test]
fn route53_targets_are_validated_field_by_field() {
    let with = |edit: fn(&mut Value)| {
        let mut t = route53_target();
        edit(&mut t);
        move |v: &mut Value| v["targets"] = json!([t])
    };
    assert_rejects("targets[0].kind", with(|t| t["kind"] = json!("ecs")));
    assert_rejects("targets[0].hosted_zone_id", with(|t| t["hosted_zone_id"] = json!("Z 1")));
    assert_rejects("targets[0].record_type", with(|t| t["record_type"] = json!("MX")));
    assert_rejects(
        "targets[0].blue.alias_target.dns_name",
        with(|t| {
            t["blue"]["alias_target"].as_object_mut().unwrap().remove("dns_name");
        }),
    );
    assert_rejects("targets[0].green", with(|t| t["green"] = t["blue"].clone()));
    assert_rejects("targets[0].green.ttl", with(|t| t["green"] = json!({"values": ["192.0.2.1"]})));
    // With no distribution to read and no alarm, nothing could judge the release.
    assert_rejects(
        "targets[0].blue.distribution_id",
        with(|t| {
            t["blue"].as_object_mut().unwrap().remove("distribution_id");
        }),
    );
    // One release moves one kind, each record once.
    assert_rejects("targets", |v| v["targets"].as_array_mut().unwrap().push(route53_target()));
    assert_rejects("targets[1]", |v| v["targets"] = json!([route53_target(), route53_target()]));
}

#[test]
fn a_bake_shorter_than_the_ttl_is_a_warning_not_an_error() {
    let mut v = valid();
    let mut t = route53_target();
    t["blue"] = json!({"values": ["192.0.2.1"], "ttl": 300, "distribution_id": "E1BLUE"});
    v["targets"] = json!([t]);
    v["strategy"] = json!([{"weight_percent": 10, "bake_seconds": 120}, {"weight_percent": 100}]);
    let r = DeploymentRequest::from_value(v).unwrap();
    let warnings = r.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("bakes 120 s") && warnings[0].contains("300 s"), "{warnings:?}");
}

#[test]
fn every_minute_by_default_with_a_rolling_window_and_an_hour_of_history() {
    let r = DeploymentRequest::from_value(valid()).unwrap();
    assert_eq!(r.health.check_interval_seconds, None);
    assert_eq!(r.check_interval().unwrap(), 60);
    assert_eq!(r.health.window_seconds, 300);
    assert_eq!(r.health.baseline, BaselineSettings { history_seconds: 3600, drift_percent: 25.0 });
    assert_eq!(r.health.p99_duration.max_slow_increase_percent, Some(50.0));
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
}

fn two_weeks() -> Value {
    let mut v = valid();
    v["strategy"] = json!([{"weight_percent": 10, "bake_seconds": MAX_WAIT_SECONDS}, {"weight_percent": 100}]);
    v["lock_in_seconds"] = json!(MAX_WAIT_SECONDS);
    v
}

#[test]
fn a_long_deployment_is_checked_less_often_to_fit_the_history_limit() {
    // A 7-day canary and a 7-day lock-in: 20160 minutes. Besides its checks, it costs
    // 2000 reserved events and 2 steps × (7 + 3 extensions × 9) = 2068, which leaves
    // (25000 - 2068) / 9 = 2548 checks, 1274 per week: every 474.7 s, so every 480 s.
    let r = DeploymentRequest::from_value(two_weeks()).unwrap();
    assert_eq!(r.check_interval().unwrap(), 480);
    assert_eq!(
        r.warnings(),
        [
            "health: checks every 480 s rather than every minute, so that the deployment stays within Step Functions' 25000 history events"
        ]
    );
}

#[test]
fn hooks_count_in_the_history_budget() {
    // 39 one-hour steps checked every minute: 2340 checks of 9 events fit, with the
    // 2000 reserved and 40 × 34 for the steps (24420 in all). Ten step hooks add
    // 39 × (17 + 10 × 12) = 5343 events, so the checks must come less often.
    let mut v = valid();
    let mut steps: Vec<Value> = (1..40).map(|w| json!({"weight_percent": w * 2, "bake_seconds": 3600})).collect();
    steps.push(json!({"weight_percent": 100}));
    v["strategy"] = json!(steps);
    v["lock_in_seconds"] = json!(0);
    let plain = DeploymentRequest::from_value(v.clone()).unwrap();
    assert_eq!(plain.check_interval().unwrap(), 60);
    v["hooks"] = json!({"each_step": (0..10).map(|i| json!({"function": format!("smoke-{i}")})).collect::<Vec<_>>()});
    let hooked = DeploymentRequest::from_value(v.clone()).unwrap();
    assert_eq!(hooked.check_interval().unwrap(), 120);
    v["health"] = json!({"check_interval_seconds": 60});
    let e = DeploymentRequest::from_value(v).unwrap_err();
    assert_eq!(e.0[0].field, "health.check_interval_seconds", "{e:?}");
}

#[test]
fn an_interval_that_cannot_fit_the_history_limit_is_refused_with_the_arithmetic() {
    let mut v = two_weeks();
    v["health"] = json!({"check_interval_seconds": 60});
    let e = DeploymentRequest::from_value(v).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].field, "health.check_interval_seconds");
    assert_eq!(
        e.0[0].reason,
        "checking every 60 s means 20160 checks of 9 history events each, plus 2068 for the steps, retries and the rest: 183508 events, and Step Functions allows 25000 per execution; check every 480 s or more, or leave it unset to have stepshift choose"
    );
    let mut fits = two_weeks();
    fits["health"] = json!({"check_interval_seconds": 480});
    assert_eq!(DeploymentRequest::from_value(fits).unwrap().check_interval().unwrap(), 480);
    // A day-long lock-in checked every minute fits: 1445 checks.
    let mut day = valid();
    day["lock_in_seconds"] = json!(86_400);
    day["health"] = json!({"check_interval_seconds": 60});
    assert_eq!(DeploymentRequest::from_value(day).unwrap().check_interval().unwrap(), 60);
}

#[test]
fn too_many_extensions_for_any_interval_are_refused() {
    let mut v = valid();
    let steps: Vec<Value> = (1..50)
        .map(|i| json!({"weight_percent": i, "bake_seconds": 60}))
        .chain([json!({"weight_percent": 100})])
        .collect();
    v["strategy"] = json!(steps);
    v["health"] = json!({"insufficient_data": {"extensions": 100}});
    assert_rejects("health.insufficient_data.extensions", |r| *r = v);
}

#[test]
fn window_and_baseline_settings_are_checked() {
    assert_rejects("health.window_seconds", |v| v["health"] = json!({"window_seconds": 30}));
    assert_rejects("health.window_seconds", |v| v["health"] = json!({"window_seconds": 7200}));
    assert_rejects("health.baseline.history_seconds", |v| v["health"] = json!({"baseline": {"history_seconds": 60}}));
    assert_rejects("health.baseline.history_seconds", |v| {
        v["health"] = json!({"baseline": {"history_seconds": 90_000}})
    });
    assert_rejects("health.baseline.drift_percent", |v| v["health"] = json!({"baseline": {"drift_percent": -1}}));
    assert_rejects("health.baseline", |v| v["health"] = json!({"baseline": [3600]}));
    assert_rejects("health.p99_duration.max_slow_increase_percent", |v| {
        v["health"] = json!({"p99_duration": {"max_slow_increase_percent": -5}})
    });
    let mut none = valid();
    none["health"] = json!({"baseline": {"history_seconds": 0}});
    assert_eq!(DeploymentRequest::from_value(none).unwrap().health.baseline.history_seconds, 0);
}

#[test]
fn every_missing_and_unknown_field_is_named_with_its_path() {
    let mut v = valid();
    v["targets"] = json!([
        {"function": "a", "alias": "live", "version": "2"},
        {"function": "b", "alais": "live", "version": "2"}
    ]);
    v["health"] = json!({"error_rat": {"max_percent": 5}, "throttles": {"max": 3}});
    let e = DeploymentRequest::from_value(v).unwrap_err();
    assert_eq!(e.fields(), ["targets[1].alias", "targets[1].alais", "health.throttles.max", "health.error_rat"]);
    assert_eq!(e.0[0].reason, "is required");
    assert_eq!(e.0[1].reason, "is not a known field (expected one of `function`, `alias`, `version`, `kind`)");
    assert_eq!(e.0[2].reason, "is not a known field (expected `max_count` or `mode`)");
    assert!(e.0[3].reason.starts_with("is not a known field (expected one of `min_invocations`, `error_rate`,"), "{e}");
}

#[test]
fn a_route53_target_is_walked_against_its_own_fields() {
    let mut v = valid();
    let mut t = route53_target();
    t["weight"] = json!(10);
    t["blue"]["weight"] = json!(10);
    t["green"]["alias_target"].as_object_mut().unwrap().remove("hosted_zone_id");
    v["targets"] = json!([t]);
    let e = DeploymentRequest::from_value(v).unwrap_err();
    assert_eq!(
        e.fields(),
        ["targets[0].blue.weight", "targets[0].green.alias_target.hosted_zone_id", "targets[0].weight"]
    );
    assert_eq!(
        e.0[0].reason,
        "is not a known field (expected one of `alias_target`, `values`, `ttl`, `distribution_id`)"
    );
    assert_eq!(
        e.0[2].reason,
        "is not a known field (expected one of `hosted_zone_id`, `record_name`, `record_type`, `blue`, `green`, `kind`)"
    );
}

#[test]
fn null_is_an_object_only_where_the_model_takes_an_option() {
    let e = DeploymentRequest::from_value({
        let mut v = valid();
        v["health"] = json!(null);
        v
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "health: must be a JSON object, not null");
    let mut v = valid();
    let mut t = route53_target();
    t["blue"] = json!({"alias_target": null, "values": ["192.0.2.1"], "ttl": 60, "distribution_id": "E1BLUE"});
    v["targets"] = json!([t]);
    assert_eq!(DeploymentRequest::from_value(v).unwrap().targets.records[0].blue.alias_target, None);
}

#[test]
fn wrong_types_are_named_in_every_target_and_the_rest_at_once() {
    let mut v = valid();
    let mut record = route53_target();
    record["blue"]["ttl"] = json!("5m");
    v["targets"] = json!([
        {"function": 7, "alias": "live", "version": "2"},
        {"function": "b", "alias": "live", "version": true},
        record
    ]);
    v["lock_in_seconds"] = json!("5m");
    let e = DeploymentRequest::from_value(v).unwrap_err();
    assert_eq!(e.fields(), ["targets[0].function", "targets[1].version", "targets[2].blue.ttl", "lock_in_seconds"]);
}

#[test]
fn an_unknown_kind_is_told_every_kind() {
    let e = DeploymentRequest::from_value({
        let mut v = valid();
        v["targets"][0]["kind"] = json!("ecs");
        v
    })
    .unwrap_err();
    assert_eq!(e.fields(), ["targets[0].kind"]);
    assert!(e.0[0].reason.starts_with("\"ecs\" is not a target kind; use \"lambda\" (the default)"), "{e}");
    for kind in parse::TARGET_KINDS {
        assert!(e.0[0].reason.contains(&format!("\"{}\"", kind.name)), "{e}");
    }
}

#[test]
fn plain_serde_reads_every_kind_of_target_too() {
    for (kind, targets) in a_target_of_every_kind() {
        let written = every_field(targets.clone());
        let read: DeploymentRequest = serde_json::from_value(written).unwrap();
        assert_eq!(read.targets, targets, "{kind}");
    }
    let mut v = valid();
    v["targets"][0]["kind"] = json!("ecs");
    let e = serde_json::from_value::<DeploymentRequest>(v).unwrap_err();
    assert!(e.to_string().contains("kind: \"ecs\" is not a target kind"), "{e}");
}

/// A request with every field of the model set (none is skipped when written), around
/// `targets`, as serde writes it.
fn every_field(targets: Targets) -> Value {
    let request = DeploymentRequest {
        schema: Some(SCHEMA_VERSION),
        targets,
        strategy: super::Strategy::Steps(vec![StepSpec {
            weight_percent: 100.0,
            bake_seconds: Some(0),
            approval: true,
        }]),
        health: HealthSettings {
            throttles: ThrottleRule { max_count: Some(10), mode: Mode::Observe },
            p99_duration: LatencyRule {
                max_slow_increase_percent: Some(50.0),
                max_ms: Some(800.0),
                mode: Mode::Observe,
            },
            error_rate: ErrorRateRule { mode: Mode::Observe, ..ErrorRateRule::default() },
            // Every field of a rule (validation would refuse a rate and a gauge in one).
            metrics: vec![{
                let spec: crate::custom::MetricSpec = serde_json::from_value(json!({
                    "namespace": "orders", "metric": "Http5xx", "dimensions": {"Version": "${version}"}, "stat": "Sum"
                }))
                .unwrap();
                crate::custom::MetricRule {
                    name: "http-5xx".into(),
                    mode: Mode::Observe,
                    bad: Some(spec.clone()),
                    good: Some(spec.clone()),
                    all: Some(spec.clone()),
                    value: Some(spec),
                    max_increase_percent: Some(0.0),
                    max_decrease_percent: Some(10.0),
                    max_percent: Some(2.0),
                    min_percent: Some(1.0),
                    max: Some(800.0),
                    require_data: true,
                }
            }],
            alarms: vec!["orders-5xx".into()],
            check_interval_seconds: Some(60),
            ..HealthSettings::default()
        },
        lock_in_seconds: 300,
        keep_versions: Some(3),
        approval_timeout_seconds: 3600,
        pause_timeout: crate::control::PauseTimeout::Resume,
        // Every field of a hook at every point, for the tables (validation would refuse
        // both kinds in one hook).
        hooks: {
            let hook = crate::hooks::Hook {
                name: Some("smoke".into()),
                invoke_candidate: Some(crate::hooks::InvokeCandidate {
                    // Free JSON, which the walk does not enter: not objects here.
                    payload: serde_json::json!("ping"),
                    expect: crate::hooks::Expectation {
                        status_below: Some(500),
                        contains: Some(serde_json::json!([1])),
                    },
                }),
                function: Some("orders-smoke".into()),
                payload: Some(serde_json::json!(1)),
                timeout_seconds: 30,
            };
            crate::hooks::Hooks {
                before_traffic: vec![hook.clone()],
                each_step: vec![hook.clone()],
                after_promotion: vec![hook],
            }
        },
    };
    serde_json::to_value(request).unwrap()
}

/// A target of every kind, in the order of [`parse::TARGET_KINDS`], with every field set.
fn a_target_of_every_kind() -> Vec<(&'static str, Targets)> {
    let endpoint = |name: &str, distribution: &str| Endpoint {
        alias_target: Some(AliasTarget {
            dns_name: format!("{name}.cloudfront.net"),
            hosted_zone_id: "Z2FDTNDATAQYW2".into(),
            evaluate_target_health: true,
        }),
        values: Some(vec!["192.0.2.1".into()]),
        ttl: Some(60),
        distribution_id: Some(distribution.into()),
    };
    let alias = Target { function: "orders-api".into(), alias: "live".into(), version: "42".into() };
    let record = RecordTarget {
        hosted_zone_id: "Z0123456789ABCDEFGHIJ".into(),
        record_name: "www.example.com".into(),
        record_type: RecordType::A,
        blue: endpoint("d1", "E1BLUE"),
        green: endpoint("d2", "E2GREEN"),
    };
    vec![
        ("lambda", Targets { aliases: vec![alias], ..Targets::default() }),
        (ROUTE53_KIND, Targets { records: vec![record], ..Targets::default() }),
        (crate::routers::web::KIND, Targets { endpoints: vec![web_target()], ..Targets::default() }),
    ]
}

fn web_target() -> crate::routers::web::WebTarget {
    crate::routers::web::WebTarget { function: "orders-web".into(), endpoint: "live".into(), revision: "rev-2".into() }
}

fn web_request() -> Value {
    json!({
        "schema": 1,
        "targets": [{"kind": "lambda_web", "function": "orders-web", "endpoint": "live", "revision": "rev-2"}],
        "strategy": "canary-10-5m",
        "health": {"alarms": ["orders-web-5xx"]}
    })
}

#[test]
fn web_endpoints_parse_and_round_trip() {
    let r = DeploymentRequest::from_value(web_request()).unwrap();
    assert_eq!(r.targets.endpoints, [web_target()]);
    let again = DeploymentRequest::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn web_endpoints_need_alarms_whole_weights_and_their_own_release() {
    let fields = |edit: &dyn Fn(&mut Value)| {
        let mut v = web_request();
        edit(&mut v);
        match DeploymentRequest::from_value(v) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|f| (f.field, f.reason)).collect::<Vec<_>>(),
        }
    };
    let no_alarms = fields(&|v| v["health"] = json!({}));
    assert_eq!(no_alarms.len(), 1, "{no_alarms:?}");
    assert_eq!(no_alarms[0].0, "health.alarms");
    assert!(no_alarms[0].1.contains("per endpoint, not per revision"), "{no_alarms:?}");

    let fractional =
        fields(&|v| v["strategy"] = json!([{"weight_percent": 2.5, "bake_seconds": 60}, {"weight_percent": 100}]));
    assert_eq!(fractional.len(), 1, "{fractional:?}");
    assert_eq!(fractional[0].0, "strategy");
    assert!(fractional[0].1.contains("step 1 is 2.5%"), "{fractional:?}");

    let mixed = fields(&|v| {
        v["targets"].as_array_mut().unwrap().push(json!({"function": "orders", "alias": "live", "version": 42}))
    });
    assert_eq!(mixed[0].0, "targets");
    assert!(mixed[0].1.contains("mixes kinds"), "{mixed:?}");

    let missing = fields(&|v| {
        v["targets"][0].as_object_mut().unwrap().remove("revision");
    });
    assert_eq!(missing[0].0, "targets[0].revision");
    let bad_name = fields(&|v| v["targets"][0]["endpoint"] = json!("live endpoint"));
    assert_eq!(bad_name[0].0, "targets[0].endpoint");
}

#[test]
fn the_field_tables_match_the_model() {
    let kinds = a_target_of_every_kind();
    let names: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
    let table: Vec<&str> = parse::TARGET_KINDS.iter().map(|k| k.name).collect();
    assert_eq!(names, table, "a_target_of_every_kind must hold one target of each kind");
    for (kind, targets) in kinds {
        let request = every_field(targets);
        assert!(serde_json::from_value::<DeploymentRequest>(request.clone()).is_ok(), "{kind}: {request}");
        assert_eq!(parse::shape_problems(&request), [], "{kind}");
        check_table(&request, "", parse::REQUEST, &[]);
    }
}

/// Checks `fields`, the table of the object at `pointer` in `request` (and the tables
/// below it): the names serde writes, besides `also`, and required exactly when serde
/// refuses the request without the field.
fn check_table(request: &Value, pointer: &str, fields: parse::Fields, also: &[&str]) {
    let object =
        request.pointer(pointer).and_then(Value::as_object).unwrap_or_else(|| panic!("no object at {pointer}"));
    let mut written: Vec<&str> = object.keys().map(String::as_str).filter(|k| !also.contains(k)).collect();
    let mut listed: Vec<&str> = fields.iter().map(|f| f.name).collect();
    written.sort_unstable();
    listed.sort_unstable();
    assert_eq!(written, listed, "the fields of the object at `{pointer}`");
    for field in fields {
        let at = format!("{pointer}/{}", field.name);
        let mut without = request.clone();
        without.pointer_mut(pointer).and_then(Value::as_object_mut).unwrap().remove(field.name);
        let refused = serde_json::from_value::<DeploymentRequest>(without).is_err();
        assert_eq!(field.required, refused, "whether `{at}` is required");
        let value = &object[field.name];
        match &field.shape {
            parse::Shape::Value => assert!(!value.is_object(), "`{at}` holds an object; give it its table"),
            parse::Shape::Map => assert!(value.is_object(), "`{at}` is an object of any names"),
            parse::Shape::Object { fields, .. } => check_table(request, &at, fields, &[]),
            parse::Shape::List(fields) => {
                for i in 0..value.as_array().unwrap().len() {
                    check_table(request, &format!("{at}/{i}"), fields, &[]);
                }
            }
            parse::Shape::Targets => {
                for (i, target) in value.as_array().unwrap().iter().enumerate() {
                    let kind = parse::target_kind(target.as_object().unwrap()).unwrap();
                    check_table(request, &format!("{at}/{i}"), kind.fields, &["kind"]);
                }
            }
        }
    }
}

#[test]
fn a_key_repeated_in_the_text_is_refused_by_its_path() {
    let text = r#"{"schema": 1, "targets": [{"function": "orders", "alias": "live", "version": "42"}], "strategy": "all-at-once", "strategy": "canary-10-5m"}"#;
    let e = DeploymentRequest::from_json(text).unwrap_err();
    assert_eq!(e.0[0].field, "strategy");
    assert!(e.0[0].reason.contains("appears twice"), "{e}");
    let once = text.replacen(r#""strategy": "all-at-once", "#, "", 1);
    assert!(DeploymentRequest::from_json(&once).is_ok());
}

#[test]
fn fast_path_settings_are_checked_by_field() {
    assert_rejects("health.fast_path.check_interval_seconds", |v| {
        v["health"] = json!({"fast_path": {"enabled": true, "check_interval_seconds": 5}})
    });
    assert_rejects("health.fast_path.check_interval_seconds", |v| {
        v["health"] = json!({"fast_path": {"enabled": true, "check_interval_seconds": 120}})
    });
    assert_rejects("health.fast_path.sources", |v| v["health"] = json!({"fast_path": {"sources": []}}));
    assert_rejects("health.fast_path.sources[1]", |v| {
        v["health"] = json!({"fast_path": {"sources": ["logs", "logs"]}})
    });
    assert_rejects("health.fast_path.sources[0]", |v| v["health"] = json!({"fast_path": {"sources": ["stdout"]}}));
    assert_rejects("health.fast_path.enabled", |v| v["health"] = json!({"fast_path": {"enabled": "yes"}}));
    assert_rejects("health.fast_path.sampling", |v| v["health"] = json!({"fast_path": {"sampling": 1}}));
}

#[test]
fn the_fast_path_is_off_unless_asked_and_its_cadence_fits_the_history() {
    let r = DeploymentRequest::from_value(valid()).unwrap();
    assert!(!r.health.fast_path.enabled);
    assert_eq!(r.health.fast_path.sources, [crate::outcomes::Source::Logs]);
    let mut v = valid();
    v["health"] = json!({"fast_path": {"enabled": true}});
    let r = DeploymentRequest::from_value(v.clone()).unwrap();
    assert_eq!(r.fast_check_interval().unwrap(), crate::outcomes::DEFAULT_FAST_CHECK_SECONDS);
    // A week-long lock-in: the fast path judges its first 170 minutes only, so 20 s
    // checks (510 of them) still fit next to the minute checks the week needs.
    v["lock_in_seconds"] = json!(7 * 24 * 3600);
    let r = DeploymentRequest::from_value(v.clone()).unwrap();
    let minute = r.check_interval().unwrap();
    assert!(minute > 60, "a week of minute checks does not fit: {minute}");
    assert!(r.fast_check_interval().is_ok());
    // Many steps with many extensions leave less room: an explicit 10 s is refused
    // with the interval that fits, and unset it is lengthened instead.
    let mut steps: Vec<Value> = (1..=48).map(|i| json!({"weight_percent": i, "bake_seconds": 3600})).collect();
    steps.push(json!({"weight_percent": 100}));
    v["strategy"] = json!(steps);
    v["health"] =
        json!({"fast_path": {"enabled": true, "check_interval_seconds": 10}, "insufficient_data": {"extensions": 40}});
    v["lock_in_seconds"] = json!(3600);
    let fields = rejected_fields(|x| *x = v.clone());
    assert!(fields.iter().any(|f| f == "health.fast_path.check_interval_seconds"), "{fields:?}");
    v["health"]["fast_path"] = json!({"enabled": true});
    let r = DeploymentRequest::from_value(v).unwrap();
    assert!(r.fast_check_interval().unwrap() > crate::outcomes::DEFAULT_FAST_CHECK_SECONDS);
}

#[test]
fn the_fast_path_needs_a_lambda_alias_target() {
    let mut v = valid();
    v["targets"] = json!([{
        "kind": "route53", "hosted_zone_id": "Z1", "record_name": "www.example.com.", "record_type": "CNAME",
        "blue": {"values": ["blue.example.com"], "ttl": 60}, "green": {"values": ["green.example.com"], "ttl": 60}
    }]);
    v["health"] = json!({"alarms": ["site-5xx"], "fast_path": {"enabled": true}});
    let fields = rejected_fields(|x| *x = v.clone());
    assert!(fields.iter().any(|f| f == "health.fast_path.enabled"), "{fields:?}");
}

#[test]
fn the_orders_api_example_request_is_valid_and_has_a_hook_at_every_point() {
    let text = include_str!("../../../../examples/orders-api/deploy.json");
    let r = DeploymentRequest::from_json(text).unwrap();
    for point in crate::hooks::Point::ALL {
        assert_eq!(r.hooks.at(point).len(), 1, "{point:?}");
    }
    let health: Value =
        serde_json::from_str(include_str!("../../../../examples/orders-api/health-event.json")).unwrap();
    assert_eq!(r.hooks.before_traffic[0].invoke_candidate.as_ref().unwrap().payload, health);
}
