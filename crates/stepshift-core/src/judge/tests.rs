use super::*;
use crate::ports::{AlarmStatus, AlarmValue};
use crate::request::HealthSettings;

fn sample(version: &str, invocations: u64, errors: u64) -> VersionSample {
    VersionSample {
        version: version.into(),
        invocations,
        errors,
        throttles: 0,
        error_rate_percent: (invocations > 0).then(|| 100.0 * errors as f64 / invocations as f64),
        p99_duration_ms: Some(120.0),
    }
}

fn target(candidate: VersionSample) -> TargetSample {
    TargetSample {
        function: "orders".into(),
        alias: "live".into(),
        candidate,
        baseline: Some(sample("41", 900, 1)),
        comparison: None,
        client_errors: None,
    }
}

fn run(settings: &HealthSettings, targets: Vec<TargetSample>, alarms: Vec<AlarmStatus>) -> Verdict {
    let window = Window { start: Timestamp::from_secs(0), end: Timestamp::from_secs(300) };
    judge(settings, targets, alarms, window, Timestamp::from_secs(300))
}

#[test]
fn seeds_rule_error_rate_above_threshold_with_enough_invocations() {
    let h = HealthSettings::default(); // 5%, at least 5 invocations
    let v = run(&h, vec![target(sample("42", 100, 6))], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons, ["orders:live version 42 error rate 6% is above 5% (6 errors in 100 invocations)"]);
    assert_eq!(v.targets[0].candidate.errors, 6, "the verdict carries its numbers");

    let at_limit = run(&h, vec![target(sample("42", 100, 5))], vec![]);
    assert_eq!(at_limit.status, VerdictStatus::Healthy, "5% is not above 5%");
}

#[test]
fn too_few_invocations_is_inconclusive_even_with_errors() {
    let h = HealthSettings::default();
    let v = run(&h, vec![target(sample("42", 4, 4))], vec![]);
    assert_eq!(v.status, VerdictStatus::Inconclusive);
    assert_eq!(
        v.reasons,
        ["orders:live version 42 served 4 invocations; 5 needed to judge it (health.min_invocations)"]
    );
    let none = run(&h, vec![target(sample("42", 0, 0))], vec![]);
    assert_eq!(none.status, VerdictStatus::Inconclusive);
}

#[test]
fn p99_limit() {
    let mut h = HealthSettings::default();
    h.p99_duration.max_ms = Some(100.0);
    let v = run(&h, vec![target(sample("42", 100, 0))], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons, ["orders:live version 42 p99 duration 120 ms is above 100 ms"]);
}

#[test]
fn throttles_need_no_minimum() {
    let mut h = HealthSettings::default();
    h.throttles.max_count = Some(2);
    let mut c = sample("42", 0, 0);
    c.throttles = 3;
    let v = run(&h, vec![target(c)], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(v.reasons[0].contains("throttled 3 times"), "{:?}", v.reasons);
}

#[test]
fn an_alarm_in_alarm_is_unhealthy_and_a_missing_one_inconclusive() {
    let h = HealthSettings::default();
    let alarm = |state| AlarmStatus { name: "orders-5xx".into(), state, reason: None };
    let v = run(&h, vec![target(sample("42", 100, 0))], vec![alarm(Some(AlarmValue::Alarm))]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons, ["alarm orders-5xx is in ALARM"]);
    let ok = run(&h, vec![target(sample("42", 100, 0))], vec![alarm(Some(AlarmValue::InsufficientData))]);
    assert_eq!(ok.status, VerdictStatus::Healthy);
    let gone = run(&h, vec![target(sample("42", 100, 0))], vec![alarm(None)]);
    assert_eq!(gone.status, VerdictStatus::Inconclusive);
}

#[test]
fn failures_outrank_gaps_and_every_target_counts() {
    let h = HealthSettings::default();
    let thin = TargetSample { function: "billing".into(), ..target(sample("7", 1, 0)) };
    let bad = target(sample("42", 100, 50));
    let v = run(&h, vec![thin.clone(), bad], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons.len(), 1);
    let v = run(&h, vec![thin, target(sample("42", 100, 0))], vec![]);
    assert_eq!(v.status, VerdictStatus::Inconclusive);
    assert!(v.reasons[0].starts_with("billing:live version 7 served 1 invocations"));
}

#[test]
fn healthy_verdict_summarizes_both_versions() {
    let v = run(&HealthSettings::default(), vec![target(sample("42", 200, 1))], vec![]);
    assert_eq!(v.status, VerdictStatus::Healthy);
    assert_eq!(
        v.reasons,
        [
            "orders:live version 42 healthy: 0.5% errors (1 in 200 invocations), p99 120 ms; stable version 41: 0.11% errors (1 in 900)"
        ]
    );
}

#[test]
fn disabled_rules_do_not_judge() {
    let mut h = HealthSettings::default();
    h.error_rate.max_percent = None;
    let v = run(&h, vec![target(sample("42", 100, 100))], vec![]);
    assert_eq!(v.status, VerdictStatus::Healthy);
}

#[test]
fn the_absolute_limit_waits_for_enough_invocations_to_expect_five_errors() {
    let h = HealthSettings::default(); // 5%: 100 invocations
    let v = run(&h, vec![target(sample("42", 30, 2))], vec![]);
    assert_eq!(v.status, VerdictStatus::Healthy, "2 in 30 (6.7%) is chance at these numbers: {:?}", v.reasons);
    let v = run(&h, vec![target(sample("42", 100, 7))], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
}

#[test]
fn a_confident_error_rate_increase_is_unhealthy_with_its_numbers() {
    use crate::compare::compare_error_rates;
    use crate::ports::MinuteCounts;
    let minute = |i: i64, invocations, errors| MinuteCounts {
        start: Timestamp::from_secs(60 * i),
        invocations,
        errors,
        throttles: 0,
    };
    let c: Vec<_> = (0..5).map(|i| minute(i, 60, 3)).collect();
    let s: Vec<_> = (0..5).map(|i| minute(i, 540, 5)).collect();
    let mut t = target(sample("42", 300, 15));
    t.comparison = Some(compare_error_rates(&c, &s, 0.2, 0.01));
    let v = run(&HealthSettings::default(), vec![t], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(
        v.reasons,
        [
            "orders:live version 42 fails 5.4x as often as version 41 (15 errors in 300 invocations against 25 in 2700): worse, with 99% confidence"
        ]
    );
    assert!(v.targets[0].comparison.as_ref().unwrap().evidence > 100.0, "the verdict carries the evidence");

    let mut off = HealthSettings::default();
    off.error_rate.max_increase_percent = None;
    let mut t = target(sample("42", 300, 18));
    t.comparison = Some(compare_error_rates(&c, &s, 0.2, 0.01));
    let v = run(&off, vec![t], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy, "the 5% limit still applies");
    assert!(v.reasons[0].contains("error rate 6% is above 5%"), "{:?}", v.reasons);
}

#[test]
fn a_slower_p99_than_the_stable_version_is_unhealthy() {
    let h = HealthSettings::default(); // +50% and 20 ms, 500 invocations each
    let mut slow = sample("42", 600, 0);
    slow.p99_duration_ms = Some(400.0);
    let v = run(&h, vec![target(slow.clone())], vec![]);
    assert_eq!(v.reasons, ["orders:live version 42 p99 duration 400 ms is more than 50% above version 41's 120 ms"]);
    let mut thin = slow.clone();
    thin.invocations = 400;
    assert_eq!(
        run(&h, vec![target(thin)], vec![]).status,
        VerdictStatus::Healthy,
        "too few invocations to compare p99s"
    );
    let mut close = slow;
    close.p99_duration_ms = Some(135.0);
    let mut fast = HealthSettings::default();
    fast.p99_duration.max_increase_percent = Some(10.0);
    assert_eq!(
        run(&fast, vec![target(close)], vec![]).status,
        VerdictStatus::Healthy,
        "15 ms more is under the 20 ms floor"
    );
}
