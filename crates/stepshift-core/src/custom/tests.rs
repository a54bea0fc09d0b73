use serde_json::{Value, json};

use super::*;
use crate::compare::{MinutePair, TestSettings, compare};
use crate::judge::{TargetSample, Verdict, VerdictStatus, VersionSample, Window, judge};
use crate::request::DeploymentRequest;

fn spec(metric: &str) -> Value {
    json!({"namespace": "orders", "metric": metric, "dimensions": {"Service": "orders", "Version": "${version}"}})
}

fn http_5xx() -> Value {
    json!({"name": "http-5xx", "bad": spec("Http5xx"), "all": spec("Requests"), "max_increase_percent": 0, "max_percent": 2})
}

fn request(metrics: Value) -> Value {
    json!({
        "schema": 1,
        "targets": [{"function": "orders", "alias": "live", "version": "42"}],
        "strategy": "canary-10-5m",
        "health": {"metrics": metrics}
    })
}

/// The fields a request with `metrics` is refused on, and the reasons.
fn refused(metrics: Value) -> Vec<(String, String)> {
    match DeploymentRequest::from_value(request(metrics)) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.0.into_iter().map(|e| (e.field, e.reason)).collect(),
    }
}

fn refuses(metrics: Value, field: &str, words: &str) {
    let errors = refused(metrics);
    assert!(
        errors.iter().any(|(f, r)| f == field && r.contains(words)),
        "expected `{field}`: …{words}…, got {errors:?}"
    );
}

#[test]
fn a_rate_rule_reads_its_two_series_per_version_with_the_placeholders_filled_in() {
    let r = DeploymentRequest::from_value(request(json!([http_5xx()]))).unwrap();
    let rule = &r.health.metrics[0];
    assert!(rule.is_test());
    let series = rule.series("orders", "live", "42");
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].metric, "Http5xx");
    assert_eq!(series[1].metric, "Requests");
    assert_eq!(series[0].dimensions, [("Service".to_owned(), "orders".to_owned()), ("Version".into(), "42".into())]);
    assert_eq!(series[0].stat, "Sum", "a rate's counts are sums");
    let gauge = MetricRule {
        name: "p99".into(),
        value: Some(MetricSpec {
            stat: None,
            dimensions: [("Fn".to_owned(), "${function}:${alias}@${version}".to_owned())].into(),
            ..serde_json::from_value(spec("Latency")).unwrap()
        }),
        max: Some(800.0),
        ..MetricRule::default()
    };
    let g = gauge.series("orders", "live", "41");
    assert_eq!(g[0].dimensions[0].1, "orders:live@41");
    assert_eq!(g[0].stat, "Average", "a gauge's default statistic");
    assert!(!gauge.is_test(), "a gauge is a guard outside the budget");
    assert_eq!(query_count(3, &[rule.clone(), gauge]), 3 * 2 * (7 + 3));
}

#[test]
fn validation_names_the_field_and_the_reason() {
    let mut no_version = http_5xx();
    no_version["all"]["dimensions"] = json!({"Service": "orders"});
    refuses(json!([no_version]), "health.metrics[0].all.dimensions", "has no ${version}");

    let mut p99 = http_5xx();
    p99["bad"]["stat"] = json!("p99");
    refuses(json!([p99]), "health.metrics[0].bad.stat", "takes `Sum` only");

    let gauge = json!({"name": "lat", "value": {"namespace": "o", "metric": "L", "dimensions": {"V": "${version}"}, "stat": "p101"}, "max": 3});
    refuses(json!([gauge]), "health.metrics[0].value.stat", "not a CloudWatch statistic");

    let mut both = http_5xx();
    both["good"] = spec("Orders");
    refuses(json!([both]), "health.metrics[0]", "give `bad` and `all`");

    let nothing = json!({"name": "x", "bad": spec("Http5xx"), "all": spec("Requests")});
    refuses(json!([nothing]), "health.metrics[0]", "judges nothing");

    let mut typo = http_5xx();
    typo["bad"]["dimensions"]["Version"] = json!("${verison}");
    refuses(json!([typo]), "health.metrics[0].bad.dimensions.Version", "`${verison}` is not a placeholder");

    refuses(json!([http_5xx(), http_5xx()]), "health.metrics[1].name", "used by another rule");
    refuses(json!([{"name": "bad name!", "value": spec("L"), "max": 1}]), "health.metrics[0].name", "1-64 letters");

    let mut wrong_side = http_5xx();
    wrong_side["min_percent"] = json!(1);
    refuses(json!([wrong_side]), "health.metrics[0].min_percent", "a `bad` rate takes");

    let good = json!({"name": "orders", "good": spec("Orders"), "all": spec("Requests"), "max_decrease_percent": 100});
    refuses(json!([good]), "health.metrics[0].max_decrease_percent", "between 0 and 99");

    let mut strict = http_5xx();
    strict["require_data"] = json!(true);
    let mut r = request(json!([strict]));
    r["health"]["baseline"] = json!({"history_seconds": 0});
    let errors = DeploymentRequest::from_value(r).unwrap_err();
    assert!(errors.names("health.metrics[0].require_data"), "{errors:?}");

    let errors = refused(
        json!([{"name": "x", "bad": spec("Http5xx"), "all": spec("Requests"), "mode": "dry-run", "max_percent": 1}]),
    );
    assert_eq!(errors[0].0, "health.metrics[0].mode", "serde names the field of an unknown mode: {errors:?}");
}

#[test]
fn the_500_query_limit_is_refused_with_its_arithmetic() {
    let rules: Vec<Value> = (0..10)
        .map(|i| json!({"name": format!("r{i}"), "bad": spec("Http5xx"), "all": spec("Requests"), "max_percent": 2}))
        .collect();
    let mut r = request(json!(rules));
    r["targets"] = json!(
        (0..10).map(|i| json!({"function": format!("f{i}"), "alias": "live", "version": "2"})).collect::<Vec<_>>()
    );
    let errors = DeploymentRequest::from_value(r).unwrap_err();
    let e = errors.0.iter().find(|e| e.field == "health.metrics").expect("health.metrics named");
    assert!(e.reason.contains("10 targets × 2 versions × (7 built-in + 20 custom) = 540 queries"), "{}", e.reason);
}

#[test]
fn custom_metrics_are_for_lambda_aliases_only() {
    let mut r = request(json!([http_5xx()]));
    r["targets"] = json!([{"kind": "lambda_web", "function": "web", "endpoint": "live", "revision": "r2"}]);
    r["health"]["alarms"] = json!(["web-5xx"]);
    let errors = DeploymentRequest::from_value(r).unwrap_err();
    assert!(errors.names("health.metrics"), "{errors:?}");
}

#[test]
fn statistics_cloudwatch_knows() {
    for ok in [
        "Sum",
        "Average",
        "p99",
        "p99.9",
        "tm90",
        "TM90",
        "wm99",
        "tc90",
        "ts50",
        "tm(10%:90%)",
        "TC(100:)",
        "pr(10:)",
        "IQM",
    ] {
        assert!(is_statistic(ok), "{ok}");
    }
    for bad in ["sum", "p101", "p", "median", "pr10", "tm(10)", "", "p99.12345678901"] {
        assert!(!is_statistic(bad), "{bad}");
    }
}

fn points(values: &[(i64, f64)]) -> Vec<CustomPoint> {
    values.iter().map(|(m, v)| (Timestamp::from_secs(m * 60), *v)).collect()
}

#[test]
fn a_rates_series_become_minute_counts_and_split_by_rule() {
    let rules = vec![
        MetricRule {
            name: "a".into(),
            value: Some(serde_json::from_value(spec("L")).unwrap()),
            max: Some(1.0),
            ..MetricRule::default()
        },
        serde_json::from_value(http_5xx()).unwrap(),
    ];
    let custom = vec![points(&[(0, 5.0)]), points(&[(0, 2.0), (1, 3.4)]), points(&[(0, 100.0), (1, 50.0), (2, 10.0)])];
    let parts = split(&rules, &custom);
    assert_eq!(parts[0].len(), 1);
    assert_eq!(parts[1].len(), 2);
    let counts = as_counts(parts[1]);
    assert_eq!(counts.iter().map(|m| (m.invocations, m.errors)).collect::<Vec<_>>(), [(100, 2), (50, 3), (10, 0)]);
    assert!(split(&rules, &[]).iter().all(|s| s.is_empty()), "no data: empty series, not a panic");
}

fn settings(lower_is_worse: bool) -> TestSettings {
    TestSettings {
        tolerance: 0.1,
        drift: 0.25,
        alpha: 0.01,
        origin: Timestamp::from_secs(0),
        planned_minutes: 20,
        lower_is_worse,
    }
}

#[test]
fn a_higher_is_better_rate_is_tested_for_a_drop() {
    // Orders per request: 10% on the stable version; the candidate converts at 5%.
    let minutes: Vec<MinutePair> = (0..10)
        .map(|i| MinutePair {
            start: Timestamp::from_secs(i * 60),
            candidate_n: 400,
            candidate_k: 20,
            stable_n: 3600,
            stable_k: 360,
        })
        .collect();
    let dropped = compare(&minutes, None, &settings(true));
    assert!(dropped.regressed(), "a halved conversion is a regression: {dropped:?}");
    let rising = compare(&minutes, None, &settings(false));
    assert!(!rising.regressed(), "and not one where higher is worse");

    let same: Vec<MinutePair> = minutes.iter().map(|m| MinutePair { candidate_k: 40, ..*m }).collect();
    assert!(compare(&same, None, &settings(true)).evidence < 1.0, "the same rate carries evidence against a drop");

    let rate = BaselineRate { invocations: 10_000, events: 1000 };
    assert!(rate.lower_bound(0.001) < 0.1 && rate.upper_bound(0.001) > 0.1);
    assert!(rate.lower_bound(0.001) > 0.085, "ten thousand requests bound the rate closely");
    // At full traffic, against the history: the candidate's 5% against the stable 10%.
    let full: Vec<MinutePair> = (0..10)
        .map(|i| MinutePair {
            start: Timestamp::from_secs(i * 60),
            candidate_n: 1000,
            candidate_k: 50,
            stable_n: 0,
            stable_k: 0,
        })
        .collect();
    assert!(compare(&full, Some(rate), &settings(true)).regressed());
}

fn target(custom: Vec<CustomSample>) -> TargetSample {
    let candidate = VersionSample {
        version: "version 42".into(),
        invocations: 1000,
        errors: 0,
        throttles: 0,
        error_rate_percent: Some(0.0),
        p99_duration_ms: None,
        durations: 1000,
        over_limit: 0,
    };
    TargetSample {
        target: "orders:live".into(),
        candidate,
        baseline: None,
        comparison: None,
        slow: None,
        history: None,
        stable_version: "version 41".into(),
        window: None,
        client_errors: None,
        fast_failures: None,
        fast_slow: None,
        custom,
    }
}

fn rate(events: u64, total: u64) -> CustomValue {
    CustomValue { value: (total > 0).then(|| 100.0 * events as f64 / total as f64), events, total }
}

fn run(rules: Vec<MetricRule>, custom: Vec<CustomSample>) -> Verdict {
    let h = HealthSettings { metrics: rules, ..HealthSettings::default() };
    let window = Window { start: Timestamp::from_secs(0), end: Timestamp::from_secs(300) };
    judge(&h, vec![target(custom)], Vec::new(), window, Timestamp::from_secs(300))
}

fn sample(name: &str, mode: Mode, candidate: CustomValue) -> CustomSample {
    CustomSample {
        name: name.into(),
        mode,
        candidate,
        baseline: Some(rate(3, 9000)),
        comparison: None,
        history_value: None,
    }
}

#[test]
fn handled_5xx_above_the_limit_rolls_back_and_observe_only_reports_it() {
    let rule: MetricRule = serde_json::from_value(http_5xx()).unwrap();
    let v = run(vec![rule.clone()], vec![sample("http-5xx", Mode::Enforce, rate(40, 1000))]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons, ["orders:live version 42 http-5xx 4% is above 2% (40 in 1000)"]);

    let observed = MetricRule { mode: Mode::Observe, ..rule.clone() };
    let v = run(vec![observed], vec![sample("http-5xx", Mode::Observe, rate(40, 1000))]);
    assert_eq!(v.status, VerdictStatus::Healthy, "an observe rule never rolls back");
    assert_eq!(
        v.observed,
        [
            "observe-only, would roll back: orders:live version 42 http-5xx 4% is above 2% (40 in 1000)",
            "observe-only: orders:live version 42 http-5xx 4% (40 in 1000); stable 0.03% (3 in 9000)"
        ]
    );

    // Below the data needed to judge the limit (expect 5 bad at 2%: 250), it passes.
    let v = run(vec![rule.clone()], vec![sample("http-5xx", Mode::Enforce, rate(10, 200))]);
    assert_eq!(v.status, VerdictStatus::Healthy, "{:?}", v.reasons);
    assert!(v.reasons[0].ends_with("; http-5xx 5% (10 in 200)"), "the healthy summary carries it: {}", v.reasons[0]);
}

#[test]
fn no_custom_data_while_the_candidate_serves_is_inconclusive_unless_observed() {
    let rule: MetricRule = serde_json::from_value(http_5xx()).unwrap();
    let v = run(vec![rule.clone()], vec![sample("http-5xx", Mode::Enforce, CustomValue::default())]);
    assert_eq!(v.status, VerdictStatus::Inconclusive);
    assert!(
        v.reasons[0].starts_with("orders:live version 42 http-5xx: no data for orders/Requests"),
        "{:?}",
        v.reasons
    );

    let observed = MetricRule { mode: Mode::Observe, ..rule };
    let v = run(vec![observed], vec![sample("http-5xx", Mode::Observe, CustomValue::default())]);
    assert_eq!(v.status, VerdictStatus::Healthy);
    assert!(v.observed[0].starts_with("observe-only, would wait: "), "{:?}", v.observed);
}

#[test]
fn a_gauge_is_compared_by_tolerance_and_limit() {
    let rule = MetricRule {
        name: "api-p99".into(),
        value: Some(serde_json::from_value(spec("LatencyMs")).unwrap()),
        max_increase_percent: Some(25.0),
        max: Some(800.0),
        ..MetricRule::default()
    };
    let gauge = |c: f64, b: f64| CustomSample {
        name: "api-p99".into(),
        mode: Mode::Enforce,
        candidate: CustomValue { value: Some(c), ..CustomValue::default() },
        baseline: Some(CustomValue { value: Some(b), ..CustomValue::default() }),
        comparison: None,
        history_value: None,
    };
    assert_eq!(run(vec![rule.clone()], vec![gauge(240.0, 200.0)]).status, VerdictStatus::Healthy);
    let v = run(vec![rule.clone()], vec![gauge(260.0, 200.0)]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(
        v.reasons[0].contains("more than 25% above the stable version's over the same minutes, 200"),
        "{:?}",
        v.reasons
    );
    assert!(v.reasons[0].contains("no false-alarm guarantee"));
    let v = run(vec![rule], vec![gauge(900.0, 850.0)]);
    assert_eq!(v.reasons, ["orders:live version 42 api-p99 900 is above 800"]);
}

#[test]
fn built_in_rules_in_observe_mode_report_and_never_roll_back() {
    let mut h = HealthSettings::default();
    h.error_rate.mode = Mode::Observe;
    let mut t = target(Vec::new());
    t.candidate.errors = 100;
    t.candidate.error_rate_percent = Some(10.0);
    let window = Window { start: Timestamp::from_secs(0), end: Timestamp::from_secs(300) };
    let v = judge(&h, vec![t.clone()], Vec::new(), window, Timestamp::from_secs(300));
    assert_eq!(v.status, VerdictStatus::Healthy);
    assert_eq!(
        v.observed,
        [
            "observe-only, would roll back: orders:live version 42 error rate 10% is above 5% (100 errors in 1000 invocations)"
        ]
    );
    h.error_rate.mode = Mode::Enforce;
    assert_eq!(judge(&h, vec![t], Vec::new(), window, Timestamp::from_secs(300)).status, VerdictStatus::Unhealthy);
}
